// SPDX-License-Identifier: MIT
/*
 * uffd-contract: the documented userfaultfd semantics as subtests with an
 * expected errno, on shmem and hugetlb (and anon where the API is anon-only).
 * Faults are real: a helper thread touches the page and the main thread reads
 * the uffd message, tries the ioctl under test, then resolves the fault.
 *
 * Output: KTAP. A mismatch is "not ok N name # expected EEXIST, saw EINVAL".
 * Where the answer depends on the kernel version the test computes the
 * expectation from uname and prints "# behaviour <what was seen>" before the
 * result line (the same text also follows "#" on a passing result line).
 *
 * Usage: uffd-contract [-b BACKINGS] [-t FILTER] [-l]
 *   -b  comma list of anon,shmem,hugetlb (default all three)
 *   -t  run only subtests whose name contains FILTER
 *   -l  list subtest names and exit
 */
#include "../lib/fl.h"

#include <linux/io_uring.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define FAULT_TIMEOUT_MS 10000

struct tc {
	const char *name;
	enum fl_backing b;
	char why[512];
	char behaviour[256];
	int uffd;
	struct fl_region r;
	char *anon; /* extra anon buffer (COPY source, MOVE peer) */
	size_t anon_len;
};

typedef enum fl_status (*test_fn)(struct tc *);

static size_t psize(const struct tc *t) { return fl_backing_page(t->b); }

static enum fl_status failf(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum fl_status failf(struct tc *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
	return FL_FAIL;
}

static enum fl_status skipf(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static enum fl_status skipf(struct tc *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
	return FL_SKIP;
}

/* ioctl wrapper: 0 on success, else errno. */
static int xioctl(int fd, unsigned long req, void *arg) { return ioctl(fd, req, arg) ? errno : 0; }

/* Records "what: expected E, saw F" on mismatch; prints the comparison as a diagnostic either way. */
static bool expect_errno(struct tc *t, const char *what, int seen, int expected)
{
	fl_diag("%s: expected %s, saw %s", what, fl_errname(expected), fl_errname(seen));
	if (seen == expected)
		return true;
	snprintf(t->why, sizeof(t->why), "%s: expected %s, saw %s", what, fl_errname(expected), fl_errname(seen));
	return false;
}

static void behaviour(struct tc *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void behaviour(struct tc *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->behaviour, sizeof(t->behaviour), fmt, ap);
	va_end(ap);
	fl_diag("behaviour %s", t->behaviour);
}

static uint64_t feat_missing(enum fl_backing b)
{
	return b == FL_SHMEM ? UFFD_FEATURE_MISSING_SHMEM : fl_backing_hugetlb(b) ? UFFD_FEATURE_MISSING_HUGETLBFS : 0;
}
static uint64_t feat_minor(enum fl_backing b)
{
	return b == FL_SHMEM ? UFFD_FEATURE_MINOR_SHMEM : UFFD_FEATURE_MINOR_HUGETLBFS;
}
static uint64_t feat_wp(enum fl_backing b)
{
	return UFFD_FEATURE_PAGEFAULT_FLAG_WP | (b == FL_ANON ? 0 : UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
}

/* Opens t->uffd with the features; SKIP when the kernel lacks one. */
static enum fl_status open_uffd(struct tc *t, uint64_t features)
{
	int err;
	uint64_t have = fl_uffd_features(&err);
	if (err)
		return skipf(t, "userfaultfd unavailable: %s", strerror(err));
	for (int bit = 0; bit < 64; bit++)
		if ((features & (1ull << bit)) && !(have & (1ull << bit)))
			return skipf(t, "kernel lacks %s", fl_feature_name(1ull << bit));
	t->uffd = fl_uffd_open(O_CLOEXEC | O_NONBLOCK);
	if (t->uffd < 0)
		return skipf(t, "userfaultfd: %s", strerror(-t->uffd));
	int r = fl_uffd_api(t->uffd, features, NULL, NULL);
	if (r)
		return failf(t, "UFFDIO_API features 0x%llx: %s", (unsigned long long)features, strerror(-r));
	return FL_PASS;
}

static enum fl_status alloc_region(struct tc *t, size_t len, int flags)
{
	int r = fl_region_alloc(&t->r, t->b, len, flags, t->why, sizeof(t->why));
	if (r)
		return fl_backing_hugetlb(t->b) ? FL_SKIP : FL_FAIL;
	return FL_PASS;
}

static enum fl_status alloc_anon(struct tc *t, size_t len)
{
	struct fl_region a;
	if (fl_region_alloc(&a, FL_ANON, len, 0, t->why, sizeof(t->why)))
		return FL_FAIL;
	t->anon = a.reg;
	t->anon_len = len;
	return FL_PASS;
}

static enum fl_status reg(struct tc *t, void *addr, size_t len, uint64_t mode)
{
	int r = fl_uffd_register(t->uffd, addr, len, mode, NULL);
	if (r)
		return failf(t, "UFFDIO_REGISTER mode 0x%llx on %s: %s", (unsigned long long)mode,
			     fl_backing_names[t->b], fl_errname(-r));
	return FL_PASS;
}

/* ---------------------------------------------------- pending faults */

struct faulter {
	pthread_t th;
	volatile char *addr;
	bool write;
	uint64_t wval, rval;
	atomic_int done;
};

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	if (f->write)
		*(volatile uint64_t *)f->addr = f->wval;
	else
		f->rval = *(volatile uint64_t *)f->addr;
	atomic_store(&f->done, 1);
	return NULL;
}

static void faulter_start(struct faulter *f, void *addr, bool write, uint64_t wval)
{
	memset(f, 0, sizeof(*f));
	f->addr = addr;
	f->write = write;
	f->wval = wval;
	if (pthread_create(&f->th, NULL, faulter_main, f)) {
		perror("pthread_create");
		exit(3);
	}
}

/* Waits for the faulting thread; if it is still blocked, unregisters everything to release it. */
static bool faulter_finish(struct tc *t, struct faulter *f)
{
	uint64_t deadline = fl_now_ns() + 3000000000ull;
	while (!atomic_load(&f->done) && fl_now_ns() < deadline)
		usleep(1000);
	bool on_its_own = atomic_load(&f->done);
	if (!on_its_own && t->uffd >= 0) {
		/* Closing the uffd wakes every blocked fault; the fault then completes normally. */
		close(t->uffd);
		t->uffd = -1;
		deadline = fl_now_ns() + 3000000000ull;
		while (!atomic_load(&f->done) && fl_now_ns() < deadline)
			usleep(1000);
	}
	if (atomic_load(&f->done))
		pthread_join(f->th, NULL);
	else
		pthread_detach(f->th);
	return on_its_own;
}

/* Reads the next message, which must be a page fault at addr; returns its flags or -errno. */
static long long expect_fault(struct tc *t, void *addr)
{
	struct uffd_msg msg;
	int r = fl_uffd_read_msg(t->uffd, &msg, FAULT_TIMEOUT_MS);
	if (r) {
		snprintf(t->why, sizeof(t->why), "no uffd message for the fault: %s", fl_errname(-r));
		return r;
	}
	if (msg.event != UFFD_EVENT_PAGEFAULT) {
		snprintf(t->why, sizeof(t->why), "unexpected uffd event 0x%x", msg.event);
		return -EIO;
	}
	uint64_t base = (uintptr_t)addr & ~(uint64_t)(psize(t) - 1);
	if ((msg.arg.pagefault.address & ~(uint64_t)(psize(t) - 1)) != base) {
		snprintf(t->why, sizeof(t->why), "fault at 0x%llx, expected page 0x%llx",
			 (unsigned long long)msg.arg.pagefault.address, (unsigned long long)base);
		return -EIO;
	}
	return (long long)msg.arg.pagefault.flags;
}

static int do_copy(struct tc *t, void *dst, void *src, size_t len, uint64_t mode)
{
	struct uffdio_copy c = {.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len, .mode = mode};
	return xioctl(t->uffd, UFFDIO_COPY, &c);
}
static int do_zeropage(struct tc *t, void *dst, size_t len, uint64_t mode)
{
	struct uffdio_zeropage z = {.range = {.start = (uintptr_t)dst, .len = len}, .mode = mode};
	return xioctl(t->uffd, UFFDIO_ZEROPAGE, &z);
}
static int do_continue(struct tc *t, void *dst, size_t len, uint64_t mode)
{
	struct uffdio_continue c = {.range = {.start = (uintptr_t)dst, .len = len}, .mode = mode};
	return xioctl(t->uffd, UFFDIO_CONTINUE, &c);
}
static int do_move(struct tc *t, void *dst, void *src, size_t len, uint64_t mode)
{
	struct uffdio_move m = {.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = len, .mode = mode};
	return xioctl(t->uffd, UFFDIO_MOVE, &m);
}
static int do_wp(struct tc *t, void *dst, size_t len, bool protect)
{
	struct uffdio_writeprotect w = {.range = {.start = (uintptr_t)dst, .len = len},
					.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0};
	return xioctl(t->uffd, UFFDIO_WRITEPROTECT, &w);
}

static long thread_minflt(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

static sigjmp_buf segv_jmp;
static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}
/* Writes *p; returns true if the write raised SIGSEGV. */
static bool write_segfaults(volatile uint64_t *p, uint64_t v)
{
	struct sigaction sa = {.sa_handler = on_segv}, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	bool faulted = false;
	if (sigsetjmp(segv_jmp, 1))
		faulted = true;
	else
		*p = v;
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

#define PATTERN 0xfa0171e5c0ffee00ull
#define CHECK(st)                                                                                           \
	do {                                                                                                \
		enum fl_status s_ = (st);                                                                   \
		if (s_ != FL_PASS)                                                                          \
			return s_;                                                                          \
	} while (0)

/* Shared setup: region with alias, page cache filled (if fill), registered with mode. */
static enum fl_status setup_shared(struct tc *t, uint64_t features, uint64_t mode, int rflags, bool fill)
{
	CHECK(open_uffd(t, features));
	CHECK(alloc_region(t, psize(t), FL_REGION_ALIAS | rflags));
	if (fill)
		*(volatile uint64_t *)t->r.alias = PATTERN;
	return reg(t, t->r.reg, psize(t), mode);
}

/* ------------------------------------------------------------ tests */

/* UFFDIO_CONTINUE on a MISSING fault (no page in the page cache) fails with EFAULT. */
static enum fl_status t_continue_no_page(struct tc *t)
{
	CHECK(setup_shared(t, feat_missing(t->b) | feat_minor(t->b),
			   UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR, 0, false));
	CHECK(alloc_anon(t, psize(t)));
	*(volatile uint64_t *)t->anon = PATTERN;
	struct faulter f;
	faulter_start(&f, t->r.reg, false, 0);
	long long fl = expect_fault(t, t->r.reg);
	bool ok = fl >= 0;
	if (ok && (fl & UFFD_PAGEFAULT_FLAG_MINOR)) {
		snprintf(t->why, sizeof(t->why), "fault on an empty page cache was reported MINOR (flags 0x%llx)", fl);
		ok = false;
	}
	if (ok)
		ok = expect_errno(t, "UFFDIO_CONTINUE on a missing fault", do_continue(t, t->r.reg, psize(t), 0), EFAULT);
	int r = fl >= 0 ? do_copy(t, t->r.reg, t->anon, psize(t), 0) : 0;
	if (ok && r)
		ok = expect_errno(t, "UFFDIO_COPY resolving the fault", r, 0);
	faulter_finish(t, &f);
	if (ok && f.rval != PATTERN)
		return failf(t, "read 0x%llx after COPY, expected 0x%llx", (unsigned long long)f.rval, PATTERN);
	return ok ? FL_PASS : FL_FAIL;
}

/* UFFDIO_COPY / UFFDIO_ZEROPAGE on a MINOR fault: the page exists, so EEXIST (ZEROPAGE on hugetlb: EINVAL). */
static enum fl_status minor_then(struct tc *t, bool zeropage)
{
	CHECK(setup_shared(t, feat_missing(t->b) | feat_minor(t->b),
			   UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR, 0, true));
	CHECK(alloc_anon(t, psize(t)));
	struct faulter f;
	faulter_start(&f, t->r.reg, false, 0);
	long long fl = expect_fault(t, t->r.reg);
	bool ok = fl >= 0;
	if (ok && !(fl & UFFD_PAGEFAULT_FLAG_MINOR)) {
		snprintf(t->why, sizeof(t->why), "fault on a cached page not reported MINOR (flags 0x%llx)", fl);
		ok = false;
	}
	if (ok && !zeropage)
		ok = expect_errno(t, "UFFDIO_COPY on a minor fault", do_copy(t, t->r.reg, t->anon, psize(t), 0), EEXIST);
	if (ok && zeropage)
		ok = expect_errno(t, "UFFDIO_ZEROPAGE on a minor fault", do_zeropage(t, t->r.reg, psize(t), 0),
				  fl_backing_hugetlb(t->b) ? EINVAL : EEXIST);
	int r = fl >= 0 ? do_continue(t, t->r.reg, psize(t), 0) : 0;
	if (ok && r)
		ok = expect_errno(t, "UFFDIO_CONTINUE resolving the fault", r, 0);
	faulter_finish(t, &f);
	if (ok && f.rval != PATTERN)
		return failf(t, "read 0x%llx after CONTINUE, expected the page cache's 0x%llx",
			     (unsigned long long)f.rval, PATTERN);
	return ok ? FL_PASS : FL_FAIL;
}
static enum fl_status t_copy_on_minor(struct tc *t) { return minor_then(t, false); }
static enum fl_status t_zeropage_on_minor(struct tc *t) { return minor_then(t, true); }

/* UFFDIO_ZEROPAGE is not implemented for hugetlb: EINVAL even on a MISSING fault. */
static enum fl_status t_zeropage_missing(struct tc *t)
{
	CHECK(setup_shared(t, feat_missing(t->b), UFFDIO_REGISTER_MODE_MISSING, 0, false));
	CHECK(alloc_anon(t, psize(t)));
	*(volatile uint64_t *)t->anon = PATTERN;
	struct faulter f;
	faulter_start(&f, t->r.reg, false, 0);
	long long fl = expect_fault(t, t->r.reg);
	bool ok = fl >= 0 &&
		  expect_errno(t, "UFFDIO_ZEROPAGE on hugetlb", do_zeropage(t, t->r.reg, psize(t), 0), EINVAL);
	int r = fl >= 0 ? do_copy(t, t->r.reg, t->anon, psize(t), 0) : 0;
	if (ok && r)
		ok = expect_errno(t, "UFFDIO_COPY resolving the fault", r, 0);
	faulter_finish(t, &f);
	return ok ? FL_PASS : FL_FAIL;
}

/*
 * MINOR registration on a MAP_PRIVATE mapping: allowed for hugetlb since 5.13 and
 * shmem since 5.14 (EINVAL before). CONTINUE maps the page-cache page read-only,
 * so a later write COWs and the page cache keeps its contents.
 */
static enum fl_status t_minor_private(struct tc *t)
{
	CHECK(open_uffd(t, feat_minor(t->b)));
	CHECK(alloc_region(t, psize(t), FL_REGION_ALIAS | FL_REGION_PRIVATE));
	*(volatile uint64_t *)t->r.alias = PATTERN;
	unsigned since = t->b == FL_SHMEM ? FL_KVER(5, 14, 0) : FL_KVER(5, 13, 0);
	bool allowed = fl_kver() >= since;
	int r = -fl_uffd_register(t->uffd, t->r.reg, psize(t), UFFDIO_REGISTER_MODE_MINOR, NULL);
	if (!expect_errno(t, "MINOR registration on a private mapping", r, allowed ? 0 : EINVAL))
		return FL_FAIL;
	if (!allowed) {
		behaviour(t, "kernel %s < %u.%u: private MINOR registration refused", fl_kver_str(), since >> 16,
			  (since >> 8) & 0xff);
		return FL_PASS;
	}
	struct faulter f;
	faulter_start(&f, t->r.reg, false, 0);
	long long fl = expect_fault(t, t->r.reg);
	bool ok = fl >= 0;
	if (ok && !(fl & UFFD_PAGEFAULT_FLAG_MINOR)) {
		snprintf(t->why, sizeof(t->why), "fault not reported MINOR (flags 0x%llx)", fl);
		ok = false;
	}
	r = fl >= 0 ? do_continue(t, t->r.reg, psize(t), 0) : 0;
	if (ok)
		ok = expect_errno(t, "UFFDIO_CONTINUE on a private mapping", r, 0);
	faulter_finish(t, &f);
	if (!ok)
		return FL_FAIL;
	if (f.rval != PATTERN)
		return failf(t, "read 0x%llx after CONTINUE, expected 0x%llx", (unsigned long long)f.rval, PATTERN);
	*(volatile uint64_t *)t->r.reg = ~PATTERN;
	if (*(volatile uint64_t *)t->r.alias != PATTERN)
		return failf(t, "write through the private mapping reached the page cache (no COW)");
	behaviour(t, "kernel %s >= %u.%u: private MINOR registration allowed, CONTINUE maps read-only, write COWs",
		  fl_kver_str(), since >> 16, (since >> 8) & 0xff);
	return FL_PASS;
}

/* CONTINUE in a writable shared VMA installs a writable PTE: the next write takes no fault. */
static enum fl_status t_continue_writable(struct tc *t)
{
	CHECK(setup_shared(t, feat_minor(t->b), UFFDIO_REGISTER_MODE_MINOR, 0, true));
	struct faulter f;
	faulter_start(&f, t->r.reg, false, 0);
	long long fl = expect_fault(t, t->r.reg);
	int r = fl >= 0 ? do_continue(t, t->r.reg, psize(t), 0) : 0;
	bool ok = fl >= 0 && expect_errno(t, "UFFDIO_CONTINUE", r, 0);
	faulter_finish(t, &f);
	if (!ok)
		return FL_FAIL;
	long before = thread_minflt();
	*(volatile uint64_t *)t->r.reg = ~PATTERN;
	long faults = thread_minflt() - before;
	fl_diag("write faults after CONTINUE in a PROT_WRITE MAP_SHARED VMA: %ld (expected 0)", faults);
	if (faults)
		return failf(t, "CONTINUE mapped the page read-only in a writable shared VMA (%ld write fault)", faults);
	if (*(volatile uint64_t *)t->r.alias != ~PATTERN)
		return failf(t, "write through the registered mapping not visible through the alias");
	return FL_PASS;
}

/* CONTINUE in a read-only VMA must not install a writable PTE: a write still raises SIGSEGV. */
static enum fl_status t_continue_readonly_vma(struct tc *t)
{
	CHECK(setup_shared(t, feat_minor(t->b), UFFDIO_REGISTER_MODE_MINOR, FL_REGION_RDONLY, true));
	struct faulter f;
	faulter_start(&f, t->r.reg, false, 0);
	long long fl = expect_fault(t, t->r.reg);
	int r = fl >= 0 ? do_continue(t, t->r.reg, psize(t), 0) : 0;
	bool ok = fl >= 0 && expect_errno(t, "UFFDIO_CONTINUE in a PROT_READ VMA", r, 0);
	faulter_finish(t, &f);
	if (!ok)
		return FL_FAIL;
	if (!write_segfaults((volatile uint64_t *)t->r.reg, ~PATTERN))
		return failf(t, "write to a PROT_READ VMA succeeded after CONTINUE (writable PTE installed)");
	if (*(volatile uint64_t *)t->r.alias != PATTERN)
		return failf(t, "page cache changed by a write to a read-only VMA");
	fl_diag("write after CONTINUE in a PROT_READ VMA: SIGSEGV as expected");
	return FL_PASS;
}

/*
 * UFFDIO_CONTINUE_MODE_WP (6.4+): the page is mapped write-protected, so the
 * retried write raises a WP fault. Before 6.4 the mode bit is unknown: EINVAL.
 */
static enum fl_status t_continue_mode_wp(struct tc *t)
{
	CHECK(setup_shared(t, feat_minor(t->b) | feat_wp(t->b), UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP,
			   0, true));
	bool supported = fl_kver() >= FL_KVER(6, 4, 0);
	struct faulter f;
	faulter_start(&f, t->r.reg, true, ~PATTERN);
	long long fl = expect_fault(t, t->r.reg);
	bool ok = fl >= 0;
	if (ok && !(fl & UFFD_PAGEFAULT_FLAG_MINOR)) {
		snprintf(t->why, sizeof(t->why), "first fault not MINOR (flags 0x%llx)", fl);
		ok = false;
	}
	int r = fl >= 0 ? do_continue(t, t->r.reg, psize(t), UFFDIO_CONTINUE_MODE_WP) : 0;
	if (ok)
		ok = expect_errno(t, "UFFDIO_CONTINUE with MODE_WP", r, supported ? 0 : EINVAL);
	if (ok && supported) {
		fl = expect_fault(t, t->r.reg);
		if (fl < 0) {
			ok = false;
		} else if (!(fl & UFFD_PAGEFAULT_FLAG_WP)) {
			snprintf(t->why, sizeof(t->why), "retried write after CONTINUE(WP) not a WP fault (flags 0x%llx)", fl);
			ok = false;
		}
		if (fl >= 0)
			r = do_wp(t, t->r.reg, psize(t), false);
		if (ok)
			ok = expect_errno(t, "UFFDIO_WRITEPROTECT clearing WP", r, 0);
		if (ok)
			behaviour(t, "kernel %s >= 6.4: CONTINUE_MODE_WP maps write-protected, the write raised a WP fault",
				  fl_kver_str());
	} else if (ok) {
		r = do_continue(t, t->r.reg, psize(t), 0);
		ok = expect_errno(t, "UFFDIO_CONTINUE", r, 0);
		if (ok)
			behaviour(t, "kernel %s < 6.4: CONTINUE_MODE_WP refused with EINVAL", fl_kver_str());
	}
	faulter_finish(t, &f);
	if (ok && *(volatile uint64_t *)t->r.alias != ~PATTERN)
		return failf(t, "the faulting write did not land in the page cache");
	return ok ? FL_PASS : FL_FAIL;
}

/* UFFDIO_MOVE only moves between private anonymous VMAs: EINVAL for shmem/hugetlb on either side. */
static enum fl_status move_shared(struct tc *t, bool shared_is_dst)
{
	CHECK(open_uffd(t, UFFD_FEATURE_MOVE | feat_missing(t->b)));
	CHECK(alloc_region(t, psize(t), 0));
	CHECK(alloc_anon(t, psize(t)));
	memset(t->anon, 1, psize(t));
	memset(t->r.reg, 2, psize(t));
	void *dst = shared_is_dst ? (void *)t->r.reg : (void *)t->anon;
	void *src = shared_is_dst ? (void *)t->anon : (void *)t->r.reg;
	if (!shared_is_dst)
		madvise(t->anon, psize(t), MADV_DONTNEED);
	CHECK(reg(t, dst, psize(t), UFFDIO_REGISTER_MODE_MISSING));
	int r = do_move(t, dst, src, psize(t), 0);
	return expect_errno(t, shared_is_dst ? "UFFDIO_MOVE into a shared VMA" : "UFFDIO_MOVE out of a shared VMA", r,
			    EINVAL) ? FL_PASS : FL_FAIL;
}
static enum fl_status t_move_dst_shared(struct tc *t) { return move_shared(t, true); }
static enum fl_status t_move_src_shared(struct tc *t) { return move_shared(t, false); }

/* Anon MOVE pair: dst registered MISSING (empty), src populated. */
static enum fl_status move_pair(struct tc *t, bool populate_src)
{
	CHECK(open_uffd(t, UFFD_FEATURE_MOVE));
	CHECK(alloc_region(t, psize(t), 0));
	CHECK(alloc_anon(t, psize(t)));
	if (populate_src)
		*(volatile uint64_t *)t->anon = PATTERN;
	return reg(t, t->r.reg, psize(t), UFFDIO_REGISTER_MODE_MISSING);
}

static int sys_io_uring_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}
static int sys_io_uring_register(int fd, unsigned op, void *arg, unsigned n)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, n);
}

/* A page pinned with FOLL_LONGTERM (io_uring fixed buffer) cannot be moved: EBUSY; unpinned it can. */
static enum fl_status t_move_pinned(struct tc *t)
{
	CHECK(move_pair(t, true));
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	int ring = sys_io_uring_setup(4, &p);
	if (ring < 0)
		return skipf(t, "io_uring_setup: %s (needed to pin a page)", strerror(errno));
	struct iovec iov = {.iov_base = t->anon, .iov_len = psize(t)};
	if (sys_io_uring_register(ring, IORING_REGISTER_BUFFERS, &iov, 1)) {
		int e = errno;
		close(ring);
		return skipf(t, "IORING_REGISTER_BUFFERS: %s", strerror(e));
	}
	bool ok = expect_errno(t, "UFFDIO_MOVE of a pinned page", do_move(t, t->r.reg, t->anon, psize(t), 0), EBUSY);
	sys_io_uring_register(ring, IORING_UNREGISTER_BUFFERS, NULL, 0);
	close(ring);
	if (ok)
		ok = expect_errno(t, "UFFDIO_MOVE after unpinning", do_move(t, t->r.reg, t->anon, psize(t), 0), 0);
	if (ok && *(volatile uint64_t *)t->r.reg != PATTERN)
		return failf(t, "moved page does not hold the source contents");
	return ok ? FL_PASS : FL_FAIL;
}

/* A page shared with a fork()ed child is not exclusive: EBUSY. */
static enum fl_status t_move_forked(struct tc *t)
{
	CHECK(move_pair(t, true));
	int pipefd[2];
	if (pipe(pipefd))
		return failf(t, "pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		return failf(t, "fork: %s", strerror(errno));
	if (pid == 0) {
		char c;
		close(pipefd[1]);
		ssize_t n = read(pipefd[0], &c, 1); /* hold the shared page until the parent is done */
		_exit(n < 0);
	}
	close(pipefd[0]);
	bool ok = expect_errno(t, "UFFDIO_MOVE of a page shared with a child", do_move(t, t->r.reg, t->anon, psize(t), 0),
			       EBUSY);
	close(pipefd[1]);
	waitpid(pid, NULL, 0);
	return ok ? FL_PASS : FL_FAIL;
}

/* A hole in the source: ENOENT, unless UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES. */
static enum fl_status t_move_src_hole(struct tc *t)
{
	CHECK(move_pair(t, false));
	bool ok = expect_errno(t, "UFFDIO_MOVE from a hole", do_move(t, t->r.reg, t->anon, psize(t), 0), ENOENT) &&
		  expect_errno(t, "UFFDIO_MOVE from a hole with ALLOW_SRC_HOLES",
			       do_move(t, t->r.reg, t->anon, psize(t), UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES), 0);
	return ok ? FL_PASS : FL_FAIL;
}

/* Pages written since the last write-protect, per PAGEMAP_SCAN; -errno if unavailable. */
static long scan_written(void *addr, size_t len)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct page_region vec[4];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uintptr_t)addr,
		.end = (uintptr_t)addr + len,
		.vec = (uintptr_t)vec,
		.vec_len = 4,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long n = ioctl(fd, PAGEMAP_SCAN, &arg);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	long pages = 0;
	for (long i = 0; i < n; i++)
		pages += (long)((vec[i].end - vec[i].start) / (uint64_t)sysconf(_SC_PAGESIZE));
	return pages;
}

/* WP_ASYNC: a write to a write-protected page resolves in the kernel, clears the WP bit, sends no message. */
static enum fl_status t_wp_async(struct tc *t)
{
	CHECK(open_uffd(t, UFFD_FEATURE_WP_ASYNC | (t->b == FL_ANON ? 0 : UFFD_FEATURE_WP_HUGETLBFS_SHMEM)));
	CHECK(alloc_region(t, psize(t), 0));
	memset(t->r.reg, 3, psize(t));
	CHECK(reg(t, t->r.reg, psize(t), UFFDIO_REGISTER_MODE_WP));
	int r = do_wp(t, t->r.reg, psize(t), true);
	if (!expect_errno(t, "UFFDIO_WRITEPROTECT", r, 0))
		return FL_FAIL;
	uint64_t pm = fl_pagemap(t->r.reg);
	fl_diag("pagemap before write: 0x%016llx (bit 57 uffd-wp=%d)", (unsigned long long)pm, !!(pm & FL_PM_UFFD_WP));
	if (!(pm & FL_PM_UFFD_WP))
		return failf(t, "pagemap bit 57 (uffd-wp) not set after UFFDIO_WRITEPROTECT");
	long scanned = scan_written(t->r.reg, psize(t));
	fl_diag("PAGEMAP_SCAN written pages before write: %ld", scanned);
	struct faulter f;
	faulter_start(&f, t->r.reg, true, ~PATTERN);
	bool on_its_own = faulter_finish(t, &f);
	if (!on_its_own)
		return failf(t, "write to a WP_ASYNC-protected page blocked");
	struct uffd_msg msg;
	r = fl_uffd_read_msg(t->uffd, &msg, 0);
	if (r != -ETIMEDOUT)
		return failf(t, "WP_ASYNC write produced a uffd message (read: %s, event 0x%x)", fl_errname(-r), msg.event);
	pm = fl_pagemap(t->r.reg);
	fl_diag("pagemap after write: 0x%016llx (bit 57 uffd-wp=%d)", (unsigned long long)pm, !!(pm & FL_PM_UFFD_WP));
	if (pm & FL_PM_UFFD_WP)
		return failf(t, "pagemap bit 57 (uffd-wp) still set after the write");
	long after = scan_written(t->r.reg, psize(t));
	if (after >= 0) {
		fl_diag("PAGEMAP_SCAN written pages after write: %ld (expected %zu)", after, psize(t) / (size_t)sysconf(_SC_PAGESIZE));
		if ((size_t)after != psize(t) / (size_t)sysconf(_SC_PAGESIZE))
			return failf(t, "PAGEMAP_SCAN reports %ld written pages, expected %zu", after,
				     psize(t) / (size_t)sysconf(_SC_PAGESIZE));
	} else {
		fl_diag("PAGEMAP_SCAN unavailable: %s", fl_errname((int)-after));
	}
	return FL_PASS;
}

/* --- registration / mode / feature combinations refused with EINVAL (or EPERM) --- */

static enum fl_status t_api_bad_version(struct tc *t)
{
	int fd = fl_uffd_open(O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return skipf(t, "userfaultfd: %s", strerror(-fd));
	struct uffdio_api api = {.api = UFFD_API + 1};
	int r = xioctl(fd, UFFDIO_API, &api);
	close(fd);
	return expect_errno(t, "UFFDIO_API with api != UFFD_API", r, EINVAL) ? FL_PASS : FL_FAIL;
}

static enum fl_status t_api_unknown_feature(struct tc *t)
{
	int fd = fl_uffd_open(O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return skipf(t, "userfaultfd: %s", strerror(-fd));
	struct uffdio_api api = {.api = UFFD_API, .features = 1ull << 63};
	int r = xioctl(fd, UFFDIO_API, &api);
	close(fd);
	return expect_errno(t, "UFFDIO_API with an unknown feature bit", r, EINVAL) ? FL_PASS : FL_FAIL;
}

static enum fl_status t_api_twice(struct tc *t)
{
	CHECK(open_uffd(t, 0));
	struct uffdio_api api = {.api = UFFD_API};
	return expect_errno(t, "second UFFDIO_API", xioctl(t->uffd, UFFDIO_API, &api), EINVAL) ? FL_PASS : FL_FAIL;
}

static enum fl_status register_expect(struct tc *t, uint64_t features, uint64_t mode, int expected, const char *what)
{
	CHECK(open_uffd(t, features));
	CHECK(alloc_region(t, psize(t), 0));
	int r = -fl_uffd_register(t->uffd, t->r.reg, psize(t), mode, NULL);
	return expect_errno(t, what, r, expected) ? FL_PASS : FL_FAIL;
}
static enum fl_status t_register_mode_zero(struct tc *t)
{
	return register_expect(t, 0, 0, EINVAL, "UFFDIO_REGISTER with mode 0");
}
static enum fl_status t_register_mode_unknown(struct tc *t)
{
	return register_expect(t, 0, UFFDIO_REGISTER_MODE_MISSING | (1ull << 7), EINVAL,
			       "UFFDIO_REGISTER with an unknown mode bit");
}
static enum fl_status t_register_minor_anon(struct tc *t)
{
	return register_expect(t, 0, UFFDIO_REGISTER_MODE_MINOR, EINVAL, "MINOR registration on anonymous memory");
}

static enum fl_status t_register_unaligned_hugetlb(struct tc *t)
{
	CHECK(open_uffd(t, 0));
	CHECK(alloc_region(t, psize(t), 0));
	int r = -fl_uffd_register(t->uffd, t->r.reg, (size_t)sysconf(_SC_PAGESIZE), UFFDIO_REGISTER_MODE_MISSING, NULL);
	return expect_errno(t, "UFFDIO_REGISTER of a hugetlb range not hugepage-aligned", r, EINVAL) ? FL_PASS : FL_FAIL;
}

/* MAP_SHARED without write permission to the file (no VM_MAYWRITE): EPERM, else COPY could fill its holes. */
static enum fl_status t_register_no_maywrite(struct tc *t)
{
	CHECK(open_uffd(t, feat_missing(t->b)));
	CHECK(alloc_region(t, psize(t), 0));
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", t->r.fd);
	int rofd = open(path, O_RDONLY | O_CLOEXEC);
	if (rofd < 0)
		return failf(t, "reopen memfd read-only: %s", strerror(errno));
	void *ro = mmap(NULL, psize(t), PROT_READ, MAP_SHARED, rofd, 0);
	close(rofd);
	if (ro == MAP_FAILED)
		return failf(t, "mmap read-only: %s", strerror(errno));
	int r = -fl_uffd_register(t->uffd, ro, psize(t), UFFDIO_REGISTER_MODE_MISSING, NULL);
	munmap(ro, psize(t));
	return expect_errno(t, "UFFDIO_REGISTER of a read-only file mapping", r, EPERM) ? FL_PASS : FL_FAIL;
}

/* Registered MISSING only, no fault pending: ioctls with bad modes. */
static enum fl_status t_bad_ioctl_modes(struct tc *t)
{
	CHECK(open_uffd(t, feat_missing(t->b) | feat_minor(t->b)));
	CHECK(alloc_region(t, psize(t), FL_REGION_ALIAS));
	CHECK(alloc_anon(t, psize(t)));
	CHECK(reg(t, t->r.reg, psize(t), UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR));
	*(volatile uint64_t *)t->r.alias = PATTERN; /* so CONTINUE would otherwise succeed */
	bool ok = expect_errno(t, "UFFDIO_COPY with an unknown mode bit",
			       do_copy(t, t->r.reg, t->anon, psize(t), 1ull << 5), EINVAL) &&
		  expect_errno(t, "UFFDIO_COPY_MODE_WP on a range not registered WP",
			       do_copy(t, t->r.reg, t->anon, psize(t), UFFDIO_COPY_MODE_WP), EINVAL) &&
		  expect_errno(t, "UFFDIO_CONTINUE with an unknown mode bit",
			       do_continue(t, t->r.reg, psize(t), 1ull << 5), EINVAL) &&
		  expect_errno(t, "UFFDIO_CONTINUE_MODE_WP on a range not registered WP",
			       do_continue(t, t->r.reg, psize(t), UFFDIO_CONTINUE_MODE_WP), EINVAL) &&
		  expect_errno(t, "UFFDIO_CONTINUE with an unaligned length",
			       do_continue(t, t->r.reg, psize(t) / 2, 0), EINVAL);
	if (ok && !fl_backing_hugetlb(t->b))
		ok = expect_errno(t, "UFFDIO_ZEROPAGE with an unknown mode bit",
				  do_zeropage(t, t->r.reg, psize(t), 1ull << 5), EINVAL);
	return ok ? FL_PASS : FL_FAIL;
}

static enum fl_status t_move_bad_modes(struct tc *t)
{
	CHECK(move_pair(t, true));
	bool ok = expect_errno(t, "UFFDIO_MOVE with an unknown mode bit", do_move(t, t->r.reg, t->anon, psize(t), 1ull << 5),
			       EINVAL) &&
		  expect_errno(t, "UFFDIO_MOVE with an unaligned length", do_move(t, t->r.reg, t->anon, 100, 0), EINVAL);
	return ok ? FL_PASS : FL_FAIL;
}

/* ------------------------------------------------------------ table */

#define BA (1u << FL_ANON)
#define BS (1u << FL_SHMEM)
#define BH (1u << FL_HUGETLB)
static const struct contract_test {
	const char *name;
	unsigned backings;
	test_fn fn;
} tests[] = {
	{"continue-no-page", BS | BH, t_continue_no_page},
	{"copy-on-minor", BS | BH, t_copy_on_minor},
	{"zeropage-on-minor", BS | BH, t_zeropage_on_minor},
	{"zeropage-missing", BH, t_zeropage_missing},
	{"minor-private", BS | BH, t_minor_private},
	{"continue-writable", BS | BH, t_continue_writable},
	{"continue-readonly-vma", BS | BH, t_continue_readonly_vma},
	{"continue-mode-wp", BS | BH, t_continue_mode_wp},
	{"move-dst-shared", BS | BH, t_move_dst_shared},
	{"move-src-shared", BS | BH, t_move_src_shared},
	{"move-pinned", BA, t_move_pinned},
	{"move-forked", BA, t_move_forked},
	{"move-src-hole", BA, t_move_src_hole},
	{"wp-async-no-msg", BA | BS | BH, t_wp_async},
	{"einval/api-bad-version", BA, t_api_bad_version},
	{"einval/api-unknown-feature", BA, t_api_unknown_feature},
	{"einval/api-twice", BA, t_api_twice},
	{"einval/register-mode-zero", BA | BS | BH, t_register_mode_zero},
	{"einval/register-mode-unknown", BA | BS | BH, t_register_mode_unknown},
	{"einval/register-minor-anon", BA, t_register_minor_anon},
	{"einval/register-unaligned", BH, t_register_unaligned_hugetlb},
	{"einval/ioctl-modes", BS | BH, t_bad_ioctl_modes},
	{"einval/move-modes", BA, t_move_bad_modes},
	{"eperm/register-no-maywrite", BS | BH, t_register_no_maywrite},
};
#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static void usage(void)
{
	fprintf(stderr, "usage: uffd-contract [-b anon,shmem,hugetlb] [-t FILTER] [-l]\n");
	exit(2);
}

/* -b's comma list as a mask of backings; an unsupported one is bad input (exit 2). */
static unsigned parse_backings(const char *arg)
{
	unsigned backings = 0;
	char *dup = strdup(arg), *save = NULL;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int b = fl_backing_parse(tok);
		if (b != FL_ANON && b != FL_SHMEM && b != FL_HUGETLB) {
			fprintf(stderr, "uffd-contract: backing '%s' not supported (anon, shmem, hugetlb)\n", tok);
			exit(2);
		}
		backings |= 1u << b;
	}
	free(dup);
	return backings;
}

/* One test on one backing: run it, print its KTAP line, free what it left behind. */
static void run_case(const struct contract_test *test, enum fl_backing b, const char *name)
{
	struct tc t;
	memset(&t, 0, sizeof(t));
	t.name = name;
	t.b = b;
	t.uffd = -1;
	t.r.fd = -1;
	enum fl_status st = test->fn(&t);
	if (st == FL_PASS && t.behaviour[0]) {
		char note[300];
		snprintf(note, sizeof(note), "behaviour: %s", t.behaviour);
		fl_ktap_result(st, t.name, note);
	} else {
		fl_ktap_result(st, t.name, t.why);
	}
	if (t.uffd >= 0)
		close(t.uffd);
	fl_region_free(&t.r);
	if (t.anon)
		munmap(t.anon, t.anon_len);
}

int main(int argc, char **argv)
{
	unsigned backings = BA | BS | BH;
	const char *filter = NULL;
	bool list = false;
	int opt;
	while ((opt = getopt(argc, argv, "b:t:lh")) != -1) {
		switch (opt) {
		case 'b': backings = parse_backings(optarg); break;
		case 't': filter = optarg; break;
		case 'l': list = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	struct {
		unsigned idx;
		enum fl_backing b;
		char name[96];
	} run[NTESTS * 3];
	int n = 0;
	for (unsigned i = 0; i < NTESTS; i++)
		for (int b = 0; b < FL_NBACKING; b++) {
			if (!(tests[i].backings & backings & (1u << b)))
				continue;
			snprintf(run[n].name, sizeof(run[n].name), "%s/%s", tests[i].name, fl_backing_names[b]);
			if (filter && !strstr(run[n].name, filter))
				continue;
			run[n].idx = i;
			run[n].b = b;
			n++;
		}
	if (list) {
		for (int i = 0; i < n; i++)
			puts(run[i].name);
		return 0;
	}
	fl_ktap_header(n);
	int ferr;
	uint64_t feats = fl_uffd_features(&ferr);
	fl_diag("uffd-contract: kernel %s, uffd features 0x%llx%s%s", fl_kver_str(), (unsigned long long)feats,
		ferr ? ", userfaultfd unavailable: " : "", ferr ? strerror(ferr) : "");
	for (int i = 0; i < n; i++)
		run_case(&tests[run[i].idx], run[i].b, run[i].name);
	return fl_ktap_finish();
}
