// SPDX-License-Identifier: MIT
/* faultline shared helpers; see fl.h. */
#include "fl.h"

#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/utsname.h>

/* ---------------------------------------------------------------- KTAP */

static int ktap_n, ktap_pass, ktap_fail, ktap_skip;

void fl_ktap_header(int planned)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n1..%d\n", planned);
}

static void print_reason(const char *reason)
{
	/* One line only: a newline would break the result line. */
	for (const char *p = reason; *p; p++)
		putchar(*p == '\n' || *p == '#' ? ' ' : *p);
}

void fl_ktap_result(enum fl_status st, const char *name, const char *reason)
{
	ktap_n++;
	switch (st) {
	case FL_PASS:
		ktap_pass++;
		printf("ok %d %s", ktap_n, name);
		if (reason && *reason) {
			fputs(" # ", stdout); /* kept out of the directive: plain note */
			print_reason(reason);
		}
		break;
	case FL_SKIP:
		ktap_skip++;
		printf("ok %d %s # SKIP ", ktap_n, name);
		print_reason(reason ? reason : "");
		break;
	case FL_FAIL:
		ktap_fail++;
		printf("not ok %d %s", ktap_n, name);
		if (reason && *reason) {
			fputs(" # ", stdout);
			print_reason(reason);
		}
		break;
	}
	putchar('\n');
	fflush(stdout);
}

int fl_ktap_finish(void)
{
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", ktap_pass, ktap_fail, ktap_skip);
	fflush(stdout);
	return ktap_fail ? 1 : 0;
}

void fl_diag(const char *fmt, ...)
{
	va_list ap;
	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void fl_metric(const char *name, double value, const char *unit)
{
	printf("# metric %s=%.3f %s\n", name, value, unit);
}

void fl_metric_u(const char *name, uint64_t value, const char *unit)
{
	printf("# metric %s=%llu %s\n", name, (unsigned long long)value, unit);
}

void fl_bail_async(const char *msg)
{
	static const char pre[] = "Bail out! ";
	ssize_t r = write(STDOUT_FILENO, pre, sizeof(pre) - 1);
	r = write(STDOUT_FILENO, msg, strlen(msg));
	r = write(STDOUT_FILENO, "\n", 1);
	(void)r;
	_exit(3);
}

/* ----------------------------------------------------------- statistics */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t fl_percentile(const uint64_t *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	/* epsilon: 99.9% of 1000 must be rank 999, not 1000 from rounding */
	double rank = ceil(p / 100.0 * (double)n - 1e-9);
	size_t idx = rank < 1 ? 0 : (size_t)rank - 1;
	if (idx >= n)
		idx = n - 1;
	return sorted[idx];
}

void fl_stats_emit(const char *prefix, uint64_t *v, size_t n)
{
	char name[96];
	if (!n)
		return;
	qsort(v, n, sizeof(*v), cmp_u64);
	long double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += v[i];
	static const struct {
		const char *suffix;
		double p;
	} pct[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99_9", 99.9}};
	snprintf(name, sizeof(name), "%s_min", prefix);
	fl_metric_u(name, v[0], "ns");
	snprintf(name, sizeof(name), "%s_mean", prefix);
	fl_metric_u(name, (uint64_t)(sum / n + 0.5L), "ns");
	for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++) {
		snprintf(name, sizeof(name), "%s_%s", prefix, pct[i].suffix);
		fl_metric_u(name, fl_percentile(v, n, pct[i].p), "ns");
	}
	snprintf(name, sizeof(name), "%s_max", prefix);
	fl_metric_u(name, v[n - 1], "ns");
}

void fl_hist_emit(const char *prefix, const uint64_t *v, size_t n)
{
	uint64_t bucket[65] = {0};
	for (size_t i = 0; i < n; i++) {
		int k = v[i] ? 63 - __builtin_clzll(v[i]) : 0;
		bucket[k]++;
	}
	printf("# hist %s_ns", prefix);
	for (int k = 0; k < 64; k++)
		if (bucket[k])
			printf(" %d:%llu", k, (unsigned long long)bucket[k]);
	putchar('\n');
}

/* ---------------------------------------------------------- system info */

static struct utsname uts;
static unsigned kver_cached;

unsigned fl_kver(void)
{
	if (!kver_cached) {
		unsigned a = 0, b = 0, c = 0;
		uname(&uts);
		sscanf(uts.release, "%u.%u.%u", &a, &b, &c);
		kver_cached = FL_KVER(a, b, c > 255 ? 255 : c);
	}
	return kver_cached;
}

const char *fl_kver_str(void)
{
	fl_kver();
	return uts.release;
}

long fl_read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

const char *fl_sysfs_choice(const char *path, char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen(path, "r");
	buf[0] = 0;
	if (!f)
		return buf;
	if (fgets(line, sizeof(line), f)) {
		char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
		if (a && b && (size_t)(b - a) < len) {
			memcpy(buf, a + 1, b - a - 1);
			buf[b - a - 1] = 0;
		}
	}
	fclose(f);
	return buf;
}

long fl_hugepages_free(unsigned long page_size)
{
	char path[128];
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/free_hugepages", page_size / 1024);
	return fl_read_long(path);
}

long fl_smaps_kb(const void *addr, const char *field)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	long val = -1;
	size_t flen = strlen(field);
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			if (in)
				break;
			in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
			continue;
		}
		if (in && !strncmp(line, field, flen)) {
			val = strtol(line + flen, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

uint64_t fl_pagemap(const void *addr)
{
	static int fd = -1;
	uint64_t ent = 0;
	if (fd < 0)
		fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	off_t off = (off_t)((uintptr_t)addr / (uintptr_t)sysconf(_SC_PAGESIZE)) * 8;
	if (pread(fd, &ent, sizeof(ent), off) != (ssize_t)sizeof(ent)) {
		errno = errno ? errno : EIO;
		return 0;
	}
	return ent;
}

static cpu_set_t initial_affinity;
static bool initial_affinity_set;

/* CPUs the process may use, as it was before fl_pin_self() narrowed the main thread. */
int fl_ncpus(void)
{
	if (!initial_affinity_set) {
		if (sched_getaffinity(0, sizeof(initial_affinity), &initial_affinity))
			return 1;
		initial_affinity_set = true;
	}
	return CPU_COUNT(&initial_affinity);
}

int fl_pin_self(int idx)
{
	if (!initial_affinity_set) {
		if (sched_getaffinity(0, sizeof(initial_affinity), &initial_affinity))
			return -1;
		initial_affinity_set = true;
	}
	int seen = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &initial_affinity))
			continue;
		if (seen++ == idx) {
			cpu_set_t one;
			CPU_ZERO(&one);
			CPU_SET(cpu, &one);
			return pthread_setaffinity_np(pthread_self(), sizeof(one), &one) ? -1 : cpu;
		}
	}
	return -1;
}

const char *fl_errname(int err)
{
	switch (err) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ENOTTY: return "ENOTTY";
	case ENOSYS: return "ENOSYS";
	case ESRCH: return "ESRCH";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EIO: return "EIO";
	default: {
		static __thread char buf[24];
		snprintf(buf, sizeof(buf), "errno%d", err);
		return buf;
	}
	}
}

/* ----------------------------------------------------------- userfaultfd */

int fl_uffd_open(int flags)
{
	int fd = (int)syscall(__NR_userfaultfd, flags);
	if (fd >= 0)
		return fd;
	int err = errno;
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -err;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, flags);
	err = errno;
	close(dev);
	return fd >= 0 ? fd : -err;
}

int fl_uffd_api(int fd, uint64_t want, uint64_t *features, uint64_t *ioctls)
{
	struct uffdio_api api = {.api = UFFD_API, .features = want};
	if (ioctl(fd, UFFDIO_API, &api))
		return -errno;
	if (features)
		*features = api.features;
	if (ioctls)
		*ioctls = api.ioctls;
	return 0;
}

uint64_t fl_uffd_features(int *err)
{
	static bool probed;
	static uint64_t feats;
	static int probe_err;
	if (!probed) {
		probed = true;
		int fd = fl_uffd_open(O_CLOEXEC | O_NONBLOCK);
		if (fd < 0) {
			probe_err = -fd;
		} else {
			int r = fl_uffd_api(fd, 0, &feats, NULL);
			if (r)
				probe_err = -r;
			close(fd);
		}
	}
	if (err)
		*err = probe_err;
	return feats;
}

int fl_uffd_register(int fd, void *addr, size_t len, uint64_t mode, uint64_t *ioctls)
{
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t)addr, .len = len},
		.mode = mode,
	};
	if (ioctl(fd, UFFDIO_REGISTER, &reg))
		return -errno;
	if (ioctls)
		*ioctls = reg.ioctls;
	return 0;
}

int fl_uffd_unregister(int fd, void *addr, size_t len)
{
	struct uffdio_range range = {.start = (uintptr_t)addr, .len = len};
	return ioctl(fd, UFFDIO_UNREGISTER, &range) ? -errno : 0;
}

const char *fl_feature_name(uint64_t bit)
{
	switch (bit) {
	case UFFD_FEATURE_PAGEFAULT_FLAG_WP: return "UFFD_FEATURE_PAGEFAULT_FLAG_WP";
	case UFFD_FEATURE_MISSING_HUGETLBFS: return "UFFD_FEATURE_MISSING_HUGETLBFS";
	case UFFD_FEATURE_MISSING_SHMEM: return "UFFD_FEATURE_MISSING_SHMEM";
	case UFFD_FEATURE_MINOR_HUGETLBFS: return "UFFD_FEATURE_MINOR_HUGETLBFS";
	case UFFD_FEATURE_MINOR_SHMEM: return "UFFD_FEATURE_MINOR_SHMEM";
	case UFFD_FEATURE_WP_HUGETLBFS_SHMEM: return "UFFD_FEATURE_WP_HUGETLBFS_SHMEM";
	case UFFD_FEATURE_WP_UNPOPULATED: return "UFFD_FEATURE_WP_UNPOPULATED";
	case UFFD_FEATURE_POISON: return "UFFD_FEATURE_POISON";
	case UFFD_FEATURE_WP_ASYNC: return "UFFD_FEATURE_WP_ASYNC";
	case UFFD_FEATURE_MOVE: return "UFFD_FEATURE_MOVE";
	default: return "UFFD_FEATURE_?";
	}
}

int fl_uffd_read_msg(int fd, struct uffd_msg *msg, int timeout_ms)
{
	uint64_t deadline = fl_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		ssize_t n = read(fd, msg, sizeof(*msg));
		if (n == (ssize_t)sizeof(*msg))
			return 0;
		if (n >= 0)
			return -EIO;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		uint64_t now = fl_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int left = (int)((deadline - now) / 1000000ull) + 1;
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return -errno;
	}
}

/* -------------------------------------------------------------- backings */

const char *const fl_backing_names[FL_NBACKING] = {"anon", "shmem", "shmem-thp", "hugetlb", "hugetlb-1g"};

int fl_backing_parse(const char *s)
{
	for (int i = 0; i < FL_NBACKING; i++)
		if (!strcmp(s, fl_backing_names[i]))
			return i;
	return -1;
}

size_t fl_backing_page(enum fl_backing b)
{
	switch (b) {
	case FL_HUGETLB: return 2 * FL_MB;
	case FL_HUGETLB_1G: return FL_GB;
	default: return (size_t)sysconf(_SC_PAGESIZE);
	}
}

/* Maps len bytes at an align-aligned address; returns the aligned start, records the reservation. */
static char *map_aligned(size_t len, size_t align, int prot, int flags, int fd, void **reserve, size_t *rlen)
{
	size_t total = len + align;
	char *res = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (res == MAP_FAILED)
		return MAP_FAILED;
	char *start = (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1));
	char *p = mmap(start, len, prot, flags | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		munmap(res, total);
		errno = e;
		return MAP_FAILED;
	}
	/* Trim the unused reservation around the mapping. */
	if (start > res)
		munmap(res, start - res);
	if (res + total > start + len)
		munmap(start + len, res + total - (start + len));
	*reserve = NULL;
	*rlen = 0;
	return p;
}

int fl_region_alloc(struct fl_region *r, enum fl_backing b, size_t len, int flags, char *why, size_t whylen)
{
	memset(r, 0, sizeof(*r));
	r->backing = b;
	r->len = len;
	r->fd = -1;
	r->reg = r->alias = NULL;
	int prot_reg = (flags & FL_REGION_RDONLY) ? PROT_READ : PROT_READ | PROT_WRITE;
	bool thp = (flags & FL_REGION_THP) || b == FL_SHMEM_THP;
	size_t align = thp ? 2 * FL_MB : fl_backing_page(b);

	if (b == FL_ANON) {
		r->reg = map_aligned(len, align, prot_reg, MAP_PRIVATE | MAP_ANONYMOUS, -1, &r->reserve_reg, &r->reserve_len);
		if (r->reg == MAP_FAILED) {
			int e = errno;
			r->reg = NULL;
			snprintf(why, whylen, "mmap anon %zu bytes: %s", len, strerror(e));
			return -e;
		}
		madvise(r->reg, len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		return 0;
	}

	unsigned mfd = MFD_CLOEXEC;
	if (b == FL_HUGETLB)
		mfd |= MFD_HUGETLB | MFD_HUGE_2MB;
	if (b == FL_HUGETLB_1G)
		mfd |= MFD_HUGETLB | MFD_HUGE_1GB;
	r->fd = memfd_create("faultline", mfd);
	if (r->fd < 0) {
		int e = errno;
		snprintf(why, whylen, "memfd_create(%s): %s", fl_backing_names[b], strerror(e));
		return -e;
	}
	if (ftruncate(r->fd, (off_t)len)) {
		int e = errno;
		snprintf(why, whylen, "ftruncate %s memfd to %zu: %s", fl_backing_names[b], len, strerror(e));
		fl_region_free(r);
		return -e;
	}
	int mflags = (flags & FL_REGION_PRIVATE) ? MAP_PRIVATE : MAP_SHARED;
	r->reg = map_aligned(len, align, prot_reg, mflags, r->fd, &r->reserve_reg, &r->reserve_len);
	if (r->reg == MAP_FAILED) {
		int e = errno;
		r->reg = NULL;
		if (fl_backing_hugetlb(b))
			snprintf(why, whylen, "mmap %s %zu bytes: %s (free %lukB hugepages: %ld)", fl_backing_names[b], len,
				 strerror(e), (unsigned long)(fl_backing_page(b) / 1024), fl_hugepages_free(fl_backing_page(b)));
		else
			snprintf(why, whylen, "mmap %s %zu bytes: %s", fl_backing_names[b], len, strerror(e));
		fl_region_free(r);
		return -e;
	}
	if (flags & FL_REGION_ALIAS) {
		r->alias = map_aligned(len, align, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, &r->reserve_alias, &r->reserve_len);
		if (r->alias == MAP_FAILED) {
			int e = errno;
			r->alias = NULL;
			snprintf(why, whylen, "mmap alias of %s: %s", fl_backing_names[b], strerror(e));
			fl_region_free(r);
			return -e;
		}
	}
	if (thp) {
		madvise(r->reg, len, MADV_HUGEPAGE);
		if (r->alias)
			madvise(r->alias, len, MADV_HUGEPAGE);
	}
	return 0;
}

void fl_region_free(struct fl_region *r)
{
	if (r->reg)
		munmap(r->reg, r->len);
	if (r->alias)
		munmap(r->alias, r->len);
	if (r->fd >= 0)
		close(r->fd);
	r->reg = r->alias = NULL;
	r->fd = -1;
}

int fl_region_punch(struct fl_region *r, size_t off, size_t len)
{
	if (r->fd < 0)
		return madvise(r->reg + off, len, MADV_DONTNEED) ? -errno : 0;
	if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len))
		return -errno;
	return 0;
}

int fl_region_zap(struct fl_region *r, size_t off, size_t len)
{
	return madvise(r->reg + off, len, MADV_DONTNEED) ? -errno : 0;
}
