// SPDX-License-Identifier: MIT
/*
 * uffd-lat: per-fault userfaultfd round-trip latency with one outstanding fault.
 *
 * The faulting thread (main, pinned to the 1st CPU) takes t0, touches the page,
 * takes t3. The handler thread (pinned to the 2nd CPU) takes t1 when read()
 * returns the uffd message and t2 when the resolving ioctl returns (for MINOR
 * it also takes tf after filling the page through the alias mapping).
 *   total = t3 - t0, notify = t1 - t0, resolve = t2 - tf, fill = tf - t1.
 * Each page is reset outside the timed region; warm-up iterations are dropped.
 *
 * Output: KTAP; before each result line, "# metric name=value unit" lines and
 * "# hist total_ns k:count ..." (log2 buckets). See tests/lib/fl.h.
 *
 * Usage: uffd-lat [-c CASES] [-b BACKINGS] [-m blocking|poll|both] [-n N] [-w W]
 *                 [-r RAWDIR] [-D BUDGET_MS] [-T SECONDS] [-l]
 *   CASES/BACKINGS are comma lists (-l lists the cases). -n/-w default to
 *   500/20 for 4 KiB pages and 100/5 for 2 MiB pages; 1 GiB pages are capped at 16/2.
 *   Without -n a case also stops after 2.5 s of measuring (-D), keeping >= 20
 *   samples, so a slow TCG guest finishes in bounded time; with -n counts are exact.
 */
#include "../lib/fl.h"

#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

enum kind {
	K_FIRST_TOUCH,
	K_MISSING_COPY,
	K_MISSING_ZEROPAGE,
	K_MINOR_CONTINUE,
	K_MOVE,
	K_MOVE_THP,
	K_WP,
	K_WP_ASYNC,
	K_NKIND
};
static const char *const kind_names[K_NKIND] = {
	"first-touch", "missing-copy", "missing-zeropage", "minor-continue", "move", "move-thp", "wp", "wp-async",
};
/* Which backings each case runs on (bit per enum fl_backing). */
#define B(x) (1u << (x))
static const unsigned kind_backings[K_NKIND] = {
	[K_FIRST_TOUCH] = B(FL_ANON) | B(FL_SHMEM) | B(FL_SHMEM_THP) | B(FL_HUGETLB) | B(FL_HUGETLB_1G),
	[K_MISSING_COPY] = B(FL_ANON) | B(FL_SHMEM) | B(FL_HUGETLB),
	[K_MISSING_ZEROPAGE] = B(FL_ANON) | B(FL_SHMEM),
	[K_MINOR_CONTINUE] = B(FL_SHMEM) | B(FL_SHMEM_THP) | B(FL_HUGETLB) | B(FL_HUGETLB_1G),
	[K_MOVE] = B(FL_ANON),
	[K_MOVE_THP] = B(FL_ANON),
	[K_WP] = B(FL_ANON) | B(FL_SHMEM) | B(FL_HUGETLB) | B(FL_HUGETLB_1G),
	[K_WP_ASYNC] = B(FL_ANON) | B(FL_SHMEM) | B(FL_HUGETLB) | B(FL_HUGETLB_1G),
};
static bool kind_has_handler(enum kind k) { return k != K_FIRST_TOUCH && k != K_WP_ASYNC; }

enum hmode { M_NONE, M_BLOCKING, M_POLL };
static const char *const mode_names[] = {"", "blocking", "poll"};

struct lcase {
	enum kind kind;
	enum fl_backing backing;
	enum hmode mode;
	char name[96];
};

struct opts {
	unsigned kinds;    /* bitmask of enum kind */
	unsigned backings; /* bitmask of enum fl_backing */
	bool blocking, poll;
	long iters, warm; /* -1: default by page size */
	long budget_ms;   /* stop measuring a case after this long (0: never); default only without -n */
	const char *rawdir;
	unsigned timeout_s;
};

/* State shared by the faulting thread and the handler of one case. */
struct lctx {
	const struct lcase *c;
	int uffd, stopfd;
	struct fl_region r;
	char *src; /* COPY source / MOVE source */
	size_t src_len, unit;
	int handler_cpu;
	/* handler -> faulter; t1/tf/t2 are published by the release store of seq */
	atomic_ulong seq;
	uint64_t t1, tf, t2;
	atomic_int herr;
	char herrmsg[256];
	atomic_int stop;
};

static char watchdog_msg[160];
static void on_alarm(int sig)
{
	(void)sig;
	fl_bail_async(watchdog_msg);
}

/* ------------------------------------------------------------ handler */

static int resolve(struct lctx *x, uint64_t addr)
{
	uint64_t base = addr & ~(uint64_t)(x->unit - 1);
	size_t off = base - (uintptr_t)x->r.reg;
	x->tf = x->t1;
	switch (x->c->kind) {
	case K_MISSING_COPY: {
		struct uffdio_copy cp = {.dst = base, .src = (uintptr_t)x->src, .len = x->unit};
		return ioctl(x->uffd, UFFDIO_COPY, &cp) ? -errno : 0;
	}
	case K_MISSING_ZEROPAGE: {
		struct uffdio_zeropage zp = {.range = {.start = base, .len = x->unit}};
		return ioctl(x->uffd, UFFDIO_ZEROPAGE, &zp) ? -errno : 0;
	}
	case K_MINOR_CONTINUE: {
		/* The fill through the alias is what a real MINOR handler does before CONTINUE. */
		memset(x->r.alias + off, (int)(x->seq & 0x7f) + 1, x->unit);
		x->tf = fl_now_ns();
		struct uffdio_continue cn = {.range = {.start = base, .len = x->unit}};
		return ioctl(x->uffd, UFFDIO_CONTINUE, &cn) ? -errno : 0;
	}
	case K_MOVE:
	case K_MOVE_THP: {
		struct uffdio_move mv = {.dst = base, .src = (uintptr_t)x->src, .len = x->unit};
		return ioctl(x->uffd, UFFDIO_MOVE, &mv) ? -errno : 0;
	}
	case K_WP: {
		struct uffdio_writeprotect wp = {.range = {.start = base, .len = x->unit}, .mode = 0};
		return ioctl(x->uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
	}
	default:
		return -EINVAL;
	}
}

static void handler_fail(struct lctx *x, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->herrmsg, sizeof(x->herrmsg), fmt, ap);
	va_end(ap);
	atomic_store(&x->herr, err ? err : EIO);
	/* Release the faulting thread: unregistering wakes blocked faults. */
	fl_uffd_unregister(x->uffd, x->r.reg, x->r.len);
}

static void *handler_main(void *arg)
{
	struct lctx *x = arg;
	if (x->handler_cpu >= 0)
		fl_pin_self(x->handler_cpu);
	while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
		struct uffd_msg msg;
		ssize_t n;
		if (x->c->mode == M_BLOCKING) {
			struct pollfd p[2] = {{.fd = x->uffd, .events = POLLIN}, {.fd = x->stopfd, .events = POLLIN}};
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				handler_fail(x, errno, "poll: %s", strerror(errno));
				return NULL;
			}
			if (p[1].revents)
				break;
			n = read(x->uffd, &msg, sizeof(msg));
		} else {
			while ((n = read(x->uffd, &msg, sizeof(msg))) < 0 && errno == EAGAIN) {
				if (atomic_load_explicit(&x->stop, memory_order_relaxed))
					return NULL;
				fl_cpu_relax();
			}
		}
		uint64_t t1 = fl_now_ns();
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			handler_fail(x, errno, "read uffd: %s", strerror(errno));
			return NULL;
		}
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT) {
			handler_fail(x, EIO, "unexpected uffd message (size %zd, event 0x%x)", n, msg.event);
			return NULL;
		}
		x->t1 = t1;
		int r = resolve(x, msg.arg.pagefault.address);
		uint64_t t2 = fl_now_ns();
		if (r) {
			handler_fail(x, -r, "%s failed: %s (fault flags 0x%llx)", kind_names[x->c->kind], strerror(-r),
				     (unsigned long long)msg.arg.pagefault.flags);
			return NULL;
		}
		x->t2 = t2;
		atomic_fetch_add_explicit(&x->seq, 1, memory_order_release);
	}
	return NULL;
}

/* -------------------------------------------------------------- cases */

struct need {
	uint64_t features; /* requested in UFFDIO_API */
	uint64_t mode;     /* UFFDIO_REGISTER mode */
	uint64_t ioctl;    /* ioctl bit that registration must offer */
	const char *ioctl_name;
};

static struct need case_needs(const struct lcase *c)
{
	struct need n = {0};
	bool shm = c->backing == FL_SHMEM || c->backing == FL_SHMEM_THP;
	bool huge = fl_backing_hugetlb(c->backing);
	switch (c->kind) {
	case K_MISSING_COPY:
	case K_MISSING_ZEROPAGE:
		n.features = shm ? UFFD_FEATURE_MISSING_SHMEM : huge ? UFFD_FEATURE_MISSING_HUGETLBFS : 0;
		n.mode = UFFDIO_REGISTER_MODE_MISSING;
		n.ioctl = c->kind == K_MISSING_COPY ? 1ull << _UFFDIO_COPY : 1ull << _UFFDIO_ZEROPAGE;
		n.ioctl_name = c->kind == K_MISSING_COPY ? "UFFDIO_COPY" : "UFFDIO_ZEROPAGE";
		break;
	case K_MINOR_CONTINUE:
		n.features = shm ? UFFD_FEATURE_MINOR_SHMEM : UFFD_FEATURE_MINOR_HUGETLBFS;
		n.mode = UFFDIO_REGISTER_MODE_MINOR;
		n.ioctl = 1ull << _UFFDIO_CONTINUE;
		n.ioctl_name = "UFFDIO_CONTINUE";
		break;
	case K_MOVE:
	case K_MOVE_THP:
		n.features = UFFD_FEATURE_MOVE;
		n.mode = UFFDIO_REGISTER_MODE_MISSING;
		n.ioctl = 1ull << _UFFDIO_MOVE;
		n.ioctl_name = "UFFDIO_MOVE";
		break;
	case K_WP:
		n.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP | (c->backing == FL_ANON ? 0 : UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
		n.mode = UFFDIO_REGISTER_MODE_WP;
		n.ioctl = 1ull << _UFFDIO_WRITEPROTECT;
		n.ioctl_name = "UFFDIO_WRITEPROTECT";
		break;
	case K_WP_ASYNC:
		n.features = UFFD_FEATURE_WP_ASYNC | (c->backing == FL_ANON ? 0 : UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
		n.mode = UFFDIO_REGISTER_MODE_WP;
		n.ioctl = 1ull << _UFFDIO_WRITEPROTECT;
		n.ioctl_name = "UFFDIO_WRITEPROTECT";
		break;
	default:
		break;
	}
	return n;
}

static int wp_range(int uffd, char *p, size_t len, bool protect)
{
	struct uffdio_writeprotect wp = {
		.range = {.start = (uintptr_t)p, .len = len},
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

/* Puts the page back into the pre-fault state; outside the timed region. */
static int reset_page(struct lctx *x)
{
	switch (x->c->kind) {
	case K_FIRST_TOUCH:
	case K_MISSING_COPY:
	case K_MISSING_ZEROPAGE:
		return fl_region_punch(&x->r, 0, x->unit);
	case K_MINOR_CONTINUE:
		return fl_region_zap(&x->r, 0, x->unit);
	case K_MOVE:
	case K_MOVE_THP:
		if (madvise(x->r.reg, x->unit, MADV_DONTNEED))
			return -errno;
		/* Refill the source: a fresh exclusive anon page (a THP for move-thp). */
		*(volatile char *)x->src = 1;
		return 0;
	case K_WP:
	case K_WP_ASYNC:
		return wp_range(x->uffd, x->r.reg, x->unit, true);
	default:
		return -EINVAL;
	}
}

static bool touch_is_read(enum kind k) { return k == K_MISSING_ZEROPAGE; }

static void dump_raw(const char *dir, const char *name, const uint64_t *tot, const uint64_t *ntf,
		     const uint64_t *res, const uint64_t *fill, size_t n)
{
	char path[512], flat[128];
	snprintf(flat, sizeof(flat), "%s", name);
	for (char *p = flat; *p; p++)
		if (*p == '/')
			*p = '_';
	snprintf(path, sizeof(path), "%s/%s.csv", dir, flat);
	FILE *f = fopen(path, "w");
	if (!f) {
		fl_diag("raw dump %s: %s", path, strerror(errno));
		return;
	}
	fprintf(f, "total_ns,notify_ns,resolve_ns,fill_ns\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%llu,%llu,%llu,%llu\n", (unsigned long long)tot[i], (unsigned long long)(ntf ? ntf[i] : 0),
			(unsigned long long)(res ? res[i] : 0), (unsigned long long)(fill ? fill[i] : 0));
	fclose(f);
}

/* One case on the faulting side: the context shared with the handler plus what only the faulter uses. */
struct lrun {
	struct lctx x;
	const struct opts *o;
	struct need nd;
	long iters, warm;
	uint64_t case_start;
	pthread_t th;
	bool th_started;
	uint64_t *tot, *ntf, *res, *fill; /* one sample per measured iteration */
	size_t n;                         /* samples to report: iters, fewer when the time budget ran out */
};

/* The unit one fault resolves: the backing's page, or a 2 MiB THP for the THP cases. */
static size_t case_unit(const struct lcase *c)
{
	if (c->kind == K_MOVE_THP || (c->kind == K_FIRST_TOUCH && c->backing == FL_SHMEM_THP))
		return 2 * FL_MB;
	return fl_backing_page(c->backing);
}

/* -n and -w, or their defaults by page size; 1 GiB pages are capped. */
static void case_counts(const struct opts *o, size_t unit, long *iters, long *warm)
{
	*iters = o->iters;
	*warm = o->warm;
	if (*iters < 0)
		*iters = unit >= 2 * FL_MB ? 100 : 500;
	if (*warm < 0)
		*warm = unit >= 2 * FL_MB ? 5 : 20;
	if (unit >= FL_GB) {
		*iters = *iters > 16 ? 16 : *iters;
		*warm = *warm > 2 ? 2 : *warm;
	}
}

/* FL_PASS when this machine can run the case, else FL_SKIP with the reason in why. */
static enum fl_status check_support(const struct lcase *c, const struct need *nd, char *why, size_t wl)
{
	if (c->mode == M_POLL && fl_ncpus() < 2) {
		snprintf(why, wl, "busy-poll handler needs 2 CPUs, have %d", fl_ncpus());
		return FL_SKIP;
	}
	/* Kernel support: features from UFFDIO_API, ioctls from UFFDIO_REGISTER. */
	if (c->kind != K_FIRST_TOUCH) {
		int err;
		uint64_t have = fl_uffd_features(&err);
		if (err) {
			snprintf(why, wl, "userfaultfd unavailable: %s", strerror(err));
			return FL_SKIP;
		}
		for (int bit = 0; bit < 64; bit++) {
			uint64_t f = 1ull << bit;
			if ((nd->features & f) && !(have & f)) {
				snprintf(why, wl, "kernel lacks %s", fl_feature_name(f));
				return FL_SKIP;
			}
		}
	}
	if (c->kind == K_MOVE_THP || c->backing == FL_SHMEM_THP) {
		char mode[32];
		const char *path = c->backing == FL_SHMEM_THP ? "/sys/kernel/mm/transparent_hugepage/shmem_enabled"
							      : "/sys/kernel/mm/transparent_hugepage/enabled";
		fl_sysfs_choice(path, mode, sizeof(mode));
		if (!*mode || !strcmp(mode, "never") || !strcmp(mode, "deny")) {
			snprintf(why, wl, "THP off (%s=%s)", path, *mode ? mode : "absent");
			return FL_SKIP;
		}
	}
	return FL_PASS;
}

/*
 * Maps the region (and the COPY/MOVE source) and puts the memory in the state the fault needs.
 * FL_PASS, or the status to report; what was mapped is left to teardown_case.
 */
static enum fl_status prepare_memory(struct lrun *run, char *why, size_t wl)
{
	struct lctx *x = &run->x;
	const struct lcase *c = x->c;
	size_t unit = x->unit;
	int rflags = 0;
	if (c->kind == K_MINOR_CONTINUE)
		rflags |= FL_REGION_ALIAS;
	if (c->kind == K_MOVE_THP)
		rflags |= FL_REGION_THP;
	/* shmem-thp MINOR: a 4K fault on a subpage of a 2M folio, so the file spans 2M. */
	size_t region_len = c->backing == FL_SHMEM_THP && unit < 2 * FL_MB ? 2 * FL_MB : unit;
	if (fl_region_alloc(&x->r, c->backing, region_len, rflags, why, wl))
		/* no hugepages of that size (ENODEV, ENOMEM, ...) is the machine's state, not a failure */
		return fl_backing_hugetlb(c->backing) ? FL_SKIP : FL_FAIL;

	if (c->kind == K_MISSING_COPY || c->kind == K_MOVE || c->kind == K_MOVE_THP) {
		x->src_len = unit;
		struct fl_region sr;
		if (fl_region_alloc(&sr, FL_ANON, unit, c->kind == K_MOVE_THP ? FL_REGION_THP : 0, why, wl))
			return FL_FAIL;
		x->src = sr.reg;
		memset(x->src, 0x5a, unit);
	}
	if (c->kind == K_MOVE_THP) {
		long kb = fl_smaps_kb(x->src, "AnonHugePages:");
		if (kb < 2048) {
			snprintf(why, wl, "no THP for the MOVE source (AnonHugePages=%ldkB)", kb);
			return FL_SKIP;
		}
	}
	if (c->kind == K_MINOR_CONTINUE) {
		/* Page cache must hold the page for a MINOR fault. */
		memset(x->r.alias, 0x33, region_len);
		if (c->backing == FL_SHMEM_THP) {
			long kb = fl_smaps_kb(x->r.alias, "ShmemPmdMapped:");
			if (kb < 2048) {
				snprintf(why, wl, "shmem THP not allocated (ShmemPmdMapped=%ldkB)", kb);
				return FL_SKIP;
			}
		}
	}
	if (c->kind == K_WP || c->kind == K_WP_ASYNC)
		memset(x->r.reg, 0x44, unit);
	return FL_PASS;
}

/* Opens the userfaultfd, asks for the case's features and registers the page (first-touch: none). */
static enum fl_status setup_uffd(struct lrun *run, char *why, size_t wl)
{
	struct lctx *x = &run->x;
	const struct lcase *c = x->c;
	const struct need *nd = &run->nd;
	if (c->kind == K_FIRST_TOUCH)
		return FL_PASS;
	x->uffd = fl_uffd_open(O_CLOEXEC | O_NONBLOCK);
	if (x->uffd < 0) {
		snprintf(why, wl, "userfaultfd: %s", strerror(-x->uffd));
		return FL_SKIP;
	}
	int r = fl_uffd_api(x->uffd, nd->features, NULL, NULL);
	if (r) {
		snprintf(why, wl, "UFFDIO_API features 0x%llx: %s", (unsigned long long)nd->features, strerror(-r));
		return r == -EINVAL ? FL_SKIP : FL_FAIL;
	}
	uint64_t ioctls = 0;
	r = fl_uffd_register(x->uffd, x->r.reg, x->unit, nd->mode, &ioctls);
	if (r) {
		snprintf(why, wl, "UFFDIO_REGISTER mode 0x%llx on %s: %s", (unsigned long long)nd->mode,
			 fl_backing_names[c->backing], strerror(-r));
		return r == -EINVAL ? FL_SKIP : FL_FAIL;
	}
	if (!(ioctls & nd->ioctl)) {
		snprintf(why, wl, "registration does not offer %s on %s", nd->ioctl_name, fl_backing_names[c->backing]);
		return FL_SKIP;
	}
	return FL_PASS;
}

/* Starts the handler thread, for the cases that have one; teardown_case stops it. */
static enum fl_status start_handler(struct lrun *run, char *why, size_t wl)
{
	if (!kind_has_handler(run->x.c->kind))
		return FL_PASS;
	run->x.stopfd = eventfd(0, EFD_CLOEXEC);
	if (run->x.stopfd < 0 || pthread_create(&run->th, NULL, handler_main, &run->x)) {
		snprintf(why, wl, "handler thread: %s", strerror(errno));
		return FL_FAIL;
	}
	run->th_started = true;
	return FL_PASS;
}

static enum fl_status alloc_samples(struct lrun *run, char *why, size_t wl)
{
	size_t n = (size_t)run->iters;
	run->n = n;
	run->tot = calloc(n, sizeof(*run->tot));
	run->ntf = calloc(n, sizeof(*run->ntf));
	run->res = calloc(n, sizeof(*run->res));
	run->fill = calloc(n, sizeof(*run->fill));
	if (!run->tot || !run->ntf || !run->res || !run->fill) {
		snprintf(why, wl, "out of memory for %zu samples", n);
		return FL_FAIL;
	}
	return FL_PASS;
}

/* Waits until the handler has resolved fault i, or reports the handler's error. */
static enum fl_status await_handler(struct lctx *x, unsigned long i, char *why, size_t wl)
{
	while (atomic_load_explicit(&x->seq, memory_order_acquire) < i + 1) {
		if (atomic_load(&x->herr))
			break;
		fl_cpu_relax();
	}
	if (atomic_load(&x->herr)) {
		snprintf(why, wl, "iteration %lu: %s", i, x->herrmsg);
		return FL_FAIL;
	}
	return FL_PASS;
}

/*
 * The timed loop: reset the page, touch it between t0 and t3, wait for the handler, keep the
 * sample unless it is a warm-up. *done counts the iterations completed, warm-ups included.
 */
static enum fl_status fault_loop(struct lrun *run, unsigned long *done, char *why, size_t wl)
{
	struct lctx *x = &run->x;
	bool handler = kind_has_handler(x->c->kind), read_touch = touch_is_read(x->c->kind);
	unsigned long warm = (unsigned long)run->warm, total_iters = (unsigned long)(run->warm + run->iters);
	uint64_t budget_ns = (uint64_t)run->o->budget_ms * 1000000ull, loop_start = fl_now_ns();
	for (unsigned long i = 0; i < total_iters; i++) {
		/* Time budget (default counts only): keep at least 20 measured samples. */
		if (budget_ns && i >= warm + 20 && fl_now_ns() - loop_start > budget_ns)
			break;
		int r = reset_page(x);
		if (r) {
			snprintf(why, wl, "reset before iteration %lu: %s", i, strerror(-r));
			return FL_FAIL;
		}
		volatile char *p = x->r.reg;
		uint64_t t0 = fl_now_ns();
		if (read_touch)
			(void)*p;
		else
			*p = (char)i;
		uint64_t t3 = fl_now_ns();
		if (handler && await_handler(x, i, why, wl) != FL_PASS)
			return FL_FAIL;
		*done = i + 1;
		if (i < warm)
			continue;
		size_t k = i - warm;
		run->tot[k] = t3 - t0;
		if (handler) {
			run->ntf[k] = x->t1 > t0 ? x->t1 - t0 : 0;
			run->fill[k] = x->tf - x->t1;
			run->res[k] = x->t2 - x->tf;
		}
	}
	return FL_PASS;
}

/* After the loop: one uffd message per fault, none for WP_ASYNC; notes a budget stop (and trims run->n). */
static enum fl_status check_after_loop(struct lrun *run, unsigned long done, char *why, size_t wl)
{
	struct lctx *x = &run->x;
	const struct lcase *c = x->c;
	if (kind_has_handler(c->kind) && atomic_load(&x->seq) != done) {
		snprintf(why, wl, "%lu uffd messages for %lu faults", atomic_load(&x->seq), done);
		return FL_FAIL;
	}
	if (done < (unsigned long)(run->warm + run->iters)) {
		fl_diag("%s: time budget of %ld ms reached after %lu measured iterations", c->name, run->o->budget_ms,
			done - (unsigned long)run->warm);
		run->n = done - (size_t)run->warm;
	}
	if (c->kind == K_WP_ASYNC && x->uffd >= 0) {
		struct pollfd p = {.fd = x->uffd, .events = POLLIN};
		if (poll(&p, 1, 0) > 0) {
			snprintf(why, wl, "WP_ASYNC write produced a uffd message");
			return FL_FAIL;
		}
	}
	if (c->kind == K_MOVE_THP) {
		long kb = fl_smaps_kb(x->r.reg, "AnonHugePages:");
		fl_diag("move-thp: destination AnonHugePages=%ldkB after the last move (2048 = moved as a PMD)", kb);
	}
	return FL_PASS;
}

/* The measured part of a case, under the -T watchdog. */
static enum fl_status measure(struct lrun *run, char *why, size_t wl)
{
	unsigned long done = 0;
	snprintf(watchdog_msg, sizeof(watchdog_msg), "%s: no progress within %us (-T)", run->x.c->name,
		 run->o->timeout_s);
	alarm(run->o->timeout_s);
	enum fl_status st = fault_loop(run, &done, why, wl);
	alarm(0);
	return st == FL_PASS ? check_after_loop(run, done, why, wl) : st;
}

/* The metric, hist and stats lines before the case's result line (and the -r raw dump). */
static void emit_case(struct lrun *run)
{
	const struct lcase *c = run->x.c;
	bool handler = kind_has_handler(c->kind);
	size_t n = run->n;
	fl_metric_u("iterations", n, "count");
	fl_metric_u("warmup", (uint64_t)run->warm, "count");
	fl_metric_u("page_size", run->x.unit, "bytes");
	fl_metric("wall", (double)(fl_now_ns() - run->case_start) / 1e6, "ms");
	if (run->o->rawdir)
		dump_raw(run->o->rawdir, c->name, run->tot, handler ? run->ntf : NULL, handler ? run->res : NULL,
			 c->kind == K_MINOR_CONTINUE ? run->fill : NULL, n);
	/* After the raw dump: the stats sort their samples in place. */
	fl_hist_emit("total", run->tot, n);
	fl_stats_emit("total", run->tot, n);
	if (handler) {
		fl_stats_emit("notify", run->ntf, n);
		fl_stats_emit("resolve", run->res, n);
		if (c->kind == K_MINOR_CONTINUE)
			fl_stats_emit("fill", run->fill, n);
	}
}

/* Stops the handler and releases whatever the case set up; right after any step of the setup. */
static void teardown_case(struct lrun *run)
{
	struct lctx *x = &run->x;
	alarm(0);
	if (run->th_started) {
		atomic_store(&x->stop, 1);
		uint64_t one = 1;
		if (write(x->stopfd, &one, sizeof(one)) < 0)
			fl_diag("stop handler: %s", strerror(errno));
		pthread_join(run->th, NULL);
	}
	free(run->tot);
	free(run->ntf);
	free(run->res);
	free(run->fill);
	if (x->uffd >= 0)
		close(x->uffd);
	if (x->stopfd >= 0)
		close(x->stopfd);
	fl_region_free(&x->r);
	if (x->src)
		munmap(x->src, x->src_len);
}

/* One subtest: check support, set up, measure, emit; whatever was set up is released before returning. */
static enum fl_status run_case(const struct lcase *c, const struct opts *o, char *why, size_t wl)
{
	struct lrun run;
	memset(&run, 0, sizeof(run));
	run.x.c = c;
	run.x.uffd = run.x.stopfd = run.x.r.fd = -1;
	run.x.handler_cpu = fl_ncpus() >= 2 ? 1 : -1;
	run.case_start = fl_now_ns();
	run.x.unit = case_unit(c);
	run.o = o;
	run.nd = case_needs(c);
	case_counts(o, run.x.unit, &run.iters, &run.warm);

	enum fl_status st = check_support(c, &run.nd, why, wl);
	if (st != FL_PASS)
		return st; /* nothing set up yet */
	st = prepare_memory(&run, why, wl);
	if (st == FL_PASS)
		st = setup_uffd(&run, why, wl);
	if (st == FL_PASS)
		st = start_handler(&run, why, wl);
	if (st == FL_PASS)
		st = alloc_samples(&run, why, wl);
	if (st == FL_PASS)
		st = measure(&run, why, wl);
	if (st == FL_PASS)
		emit_case(&run);
	teardown_case(&run);
	return st;
}

/* Back-to-back clock_gettime: the cost of one timestamp, reported as its own subtest. */
static void clock_overhead(void)
{
	enum { N = 20000 };
	static uint64_t d[N];
	for (int i = 0; i < N; i++) {
		uint64_t a = fl_now_ns();
		uint64_t b = fl_now_ns();
		d[i] = b - a;
	}
	struct timespec res;
	clock_getres(CLOCK_MONOTONIC, &res);
	fl_metric_u("resolution", (uint64_t)res.tv_nsec + (uint64_t)res.tv_sec * 1000000000ull, "ns");
	fl_metric_u("iterations", N, "count");
	fl_stats_emit("clock", d, N);
	fl_ktap_result(FL_PASS, "clock-overhead", NULL);
}

static unsigned parse_list(const char *arg, const char *const *names, int count, const char *what)
{
	unsigned mask = 0;
	char *dup = strdup(arg), *save = NULL;
	for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "all")) {
			mask = ~0u;
			continue;
		}
		int i;
		for (i = 0; i < count; i++)
			if (!strcmp(tok, names[i]))
				break;
		if (i == count) {
			fprintf(stderr, "uffd-lat: unknown %s '%s' (valid:", what, tok);
			for (i = 0; i < count; i++)
				fprintf(stderr, " %s", names[i]);
			fprintf(stderr, ")\n");
			exit(2);
		}
		mask |= 1u << i;
	}
	free(dup);
	return mask;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: uffd-lat [-c CASES] [-b BACKINGS] [-m blocking|poll|both] [-n N] [-w W] [-r RAWDIR] [-D MS] [-T SEC] [-l]\n"
		"  -c  comma list of cases (default all): first-touch,missing-copy,missing-zeropage,\n"
		"      minor-continue,move,move-thp,wp,wp-async\n"
		"  -b  comma list of backings (default anon,shmem,hugetlb): anon,shmem,shmem-thp,hugetlb,hugetlb-1g\n"
		"  -m  handler mode (default both)\n"
		"  -n  measured iterations per case (default 500 for 4K pages, 100 for 2M, max 16 for 1G)\n"
		"  -w  warm-up iterations, discarded (default 20 / 5, max 2 for 1G)\n"
		"  -r  write raw samples as RAWDIR/<case>.csv\n"
		"  -D  per-case measuring budget in ms, min 20 samples (default 2500 without -n, none with -n)\n"
		"  -T  per-case watchdog in seconds (default 300)\n"
		"  -l  list the cases that would run and exit\n");
	exit(2);
}

static long parse_count(const char *s, const char *opt)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < 0 || v > 100000000) {
		fprintf(stderr, "uffd-lat: %s wants a non-negative integer, got '%s'\n", opt, s);
		exit(2);
	}
	return v;
}

static void parse_opts(int argc, char **argv, struct opts *o, bool *list)
{
	int opt;
	while ((opt = getopt(argc, argv, "c:b:m:n:w:r:T:D:lh")) != -1) {
		switch (opt) {
		case 'c': o->kinds = parse_list(optarg, kind_names, K_NKIND, "case"); break;
		case 'b': o->backings = parse_list(optarg, fl_backing_names, FL_NBACKING, "backing"); break;
		case 'm':
			if (!strcmp(optarg, "blocking")) o->poll = false;
			else if (!strcmp(optarg, "poll")) o->blocking = false;
			else if (strcmp(optarg, "both")) usage();
			break;
		case 'n': o->iters = parse_count(optarg, "-n"); if (!o->iters) usage(); break;
		case 'w': o->warm = parse_count(optarg, "-w"); break;
		case 'r':
			o->rawdir = optarg;
			if (mkdir(optarg, 0755) && errno != EEXIST) {
				fprintf(stderr, "uffd-lat: mkdir %s: %s\n", optarg, strerror(errno));
				exit(2);
			}
			break;
		case 'T': o->timeout_s = (unsigned)parse_count(optarg, "-T"); if (!o->timeout_s) usage(); break;
		case 'D': o->budget_ms = parse_count(optarg, "-D"); break;
		case 'l': *list = true; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (o->budget_ms < 0) /* exact counts when asked for them, else bounded time per case */
		o->budget_ms = o->iters < 0 ? 2500 : 0;
}

/* The selected cases in output order (backing, case, handler mode); returns how many. */
static int build_cases(const struct opts *o, struct lcase *cases)
{
	int ncase = 0;
	for (int b = 0; b < FL_NBACKING; b++) {
		if (!(o->backings & B(b)))
			continue;
		for (int k = 0; k < K_NKIND; k++) {
			if (!(o->kinds & (1u << k)) || !(kind_backings[k] & B(b)))
				continue;
			for (int m = M_NONE; m <= M_POLL; m++) {
				if (kind_has_handler(k) ? m == M_NONE : m != M_NONE)
					continue;
				if ((m == M_BLOCKING && !o->blocking) || (m == M_POLL && !o->poll))
					continue;
				struct lcase *c = &cases[ncase++];
				c->kind = k;
				c->backing = b;
				c->mode = m;
				snprintf(c->name, sizeof(c->name), "%s/%s%s%s", kind_names[k], fl_backing_names[b],
					 m ? "/" : "", mode_names[m]);
			}
		}
	}
	return ncase;
}

/* The diagnostic line that opens the output: kernel, CPUs, clocksource, uffd features. */
static void diag_machine(int cpu)
{
	char cs[64];
	FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
	if (!f || !fgets(cs, sizeof(cs), f))
		snprintf(cs, sizeof(cs), "unknown");
	cs[strcspn(cs, "\n")] = 0;
	if (f)
		fclose(f);
	int ferr;
	uint64_t feats = fl_uffd_features(&ferr);
	fl_diag("uffd-lat: kernel %s, %d CPUs (faulter on cpu %d), clocksource %s, uffd features 0x%llx%s%s",
		fl_kver_str(), fl_ncpus(), cpu, cs, (unsigned long long)feats, ferr ? " unavailable: " : "",
		ferr ? strerror(ferr) : "");
}

int main(int argc, char **argv)
{
	struct opts o = {
		.kinds = ~0u,
		.backings = B(FL_ANON) | B(FL_SHMEM) | B(FL_HUGETLB),
		.blocking = true,
		.poll = true,
		.iters = -1,
		.warm = -1,
		.timeout_s = 300,
		.budget_ms = -1,
	};
	bool list = false;
	parse_opts(argc, argv, &o, &list);
	static struct lcase cases[K_NKIND * FL_NBACKING * 2];
	int ncase = build_cases(&o, cases);
	if (list) {
		for (int i = 0; i < ncase; i++)
			puts(cases[i].name);
		return 0;
	}

	signal(SIGALRM, on_alarm);
	int cpu = fl_pin_self(0);
	fl_ktap_header(ncase + 1);
	diag_machine(cpu);
	clock_overhead();
	for (int i = 0; i < ncase; i++) {
		char why[512] = "";
		enum fl_status st = run_case(&cases[i], &o, why, sizeof(why));
		fl_ktap_result(st, cases[i].name, why);
	}
	return fl_ktap_finish();
}
