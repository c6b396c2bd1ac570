// SPDX-License-Identifier: MIT
/*
 * postcopy: both ends of a postcopy live migration, as the minor-fault design intends.
 *
 * A forked "source" process holds the authoritative page contents (generated
 * from a seed) and streams every page over a unix socketpair in background
 * order, sending a page out of order as soon as the destination requests it.
 * The "destination" maps a memfd twice: the registered view the "vCPUs"
 * (worker threads) use, and an alias. In minor mode the page cache is first
 * filled with stale data (the precopy image), the view is registered MINOR,
 * and each received page is written through the alias then mapped with
 * UFFDIO_CONTINUE; in copy mode the view is registered MISSING and pages are
 * placed with UFFDIO_COPY (the classic design, also on anon). Workers touch
 * their pages in random order; a fault on a page not yet placed makes the
 * handler thread request it. At the end every page is verified by checksum.
 *
 * Metrics (before each result line, see tests/lib/fl.h):
 *   fault_* : latency of worker accesses that found the page not yet placed (ns)
 *   blocktime_sum : sum over workers of those latencies (ns)
 *   blocktime_all : time all workers were blocked at once (QEMU's total blocktime, ns)
 *   pages_per_s, mib_per_s : pages placed per second of migration wall time
 *   stale_reads, bad_pages : integrity errors (a pass requires both 0)
 *
 * Usage: postcopy [-b BACKINGS] [-m minor|copy|both] [-s MIB] [-t WORKERS] [-B MIBPS] [-S SEED] [-T SEC]
 */
#include "../lib/fl.h"

#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#define REQ_START UINT64_MAX

struct page_hdr {
	uint64_t idx;
	uint64_t urgent;
};

struct opts {
	unsigned backings;
	bool minor, copy;
	long size_mib; /* -1: default per page size */
	int workers;
	long bw_mibps;
	uint64_t seed;
	unsigned timeout_s;
};

static inline uint64_t page_word(uint64_t seed, uint64_t idx, uint64_t w)
{
	return fl_mix64(seed ^ (idx << 24) ^ w);
}

static void gen_page(uint64_t seed, uint64_t idx, uint64_t *dst, size_t psize)
{
	for (size_t w = 0; w < psize / 8; w++)
		dst[w] = page_word(seed, idx, w);
}

static uint64_t page_sum(const uint64_t *p, size_t psize)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t w = 0; w < psize / 8; w++)
		h = (h ^ p[w]) * 0x100000001b3ull;
	return h;
}

static int writen(int fd, const struct iovec *iov_in, int cnt)
{
	struct iovec iov[2];
	memcpy(iov, iov_in, sizeof(*iov) * (size_t)cnt);
	int i = 0;
	while (i < cnt) {
		ssize_t n = writev(fd, iov + i, cnt - i);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		while (i < cnt && (size_t)n >= iov[i].iov_len) {
			n -= (ssize_t)iov[i].iov_len;
			i++;
		}
		if (i < cnt) {
			iov[i].iov_base = (char *)iov[i].iov_base + n;
			iov[i].iov_len -= (size_t)n;
		}
	}
	return 0;
}

static int readn(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------ source */

/*
 * Two channels, as QEMU's postcopy-preempt: the background stream pushes pages
 * in order on its own socket, so a requested page never queues behind it; the
 * urgent socket carries requests in and requested pages out.
 */
struct source {
	int bg, urgent;
	uint64_t seed;
	size_t npages, psize;
	long bw_mibps;
	atomic_uchar *sent;
	atomic_size_t done;
};

static void send_page(struct source *s, int fd, uint64_t idx, uint64_t urgent, uint64_t *buf)
{
	gen_page(s->seed, idx, buf, s->psize);
	struct page_hdr h = {.idx = idx, .urgent = urgent};
	struct iovec iov[2] = {{&h, sizeof(h)}, {buf, s->psize}};
	if (writen(fd, iov, 2))
		_exit(12);
	atomic_fetch_add(&s->done, 1);
}

static void *source_urgent_main(void *arg)
{
	struct source *s = arg;
	uint64_t *buf = aligned_alloc(4096, s->psize);
	uint64_t idx;
	if (!buf)
		_exit(10);
	while (!readn(s->urgent, &idx, sizeof(idx)))
		if (idx < s->npages && !atomic_exchange(&s->sent[idx], 1))
			send_page(s, s->urgent, idx, 1, buf);
	return NULL;
}

static void source_main(int bg, int urgent, uint64_t seed, size_t npages, size_t psize, long bw_mibps)
{
	struct source s = {.bg = bg, .urgent = urgent, .seed = seed, .npages = npages, .psize = psize, .bw_mibps = bw_mibps};
	s.sent = calloc(npages, 1);
	uint64_t *buf = aligned_alloc(4096, psize);
	uint64_t first;
	if (!s.sent || !buf)
		_exit(10);
	if (readn(urgent, &first, sizeof(first)) || first != REQ_START)
		_exit(11);
	pthread_t th;
	if (pthread_create(&th, NULL, source_urgent_main, &s))
		_exit(13);
	uint64_t t_start = fl_now_ns(), nbg = 0;
	for (size_t idx = 0; idx < npages; idx++) {
		if (atomic_exchange(&s.sent[idx], 1))
			continue;
		send_page(&s, bg, idx, 0, buf);
		nbg++;
		if (bw_mibps > 0) {
			uint64_t due = t_start + (uint64_t)((double)nbg * (double)psize / ((double)bw_mibps * FL_MB) * 1e9);
			uint64_t now = fl_now_ns();
			if (due > now) {
				struct timespec ts = {.tv_sec = (time_t)((due - now) / 1000000000ull),
						      .tv_nsec = (long)((due - now) % 1000000000ull)};
				nanosleep(&ts, NULL);
			}
		}
	}
	/*
	 * Every page claimed. Stay until the destination closes the urgent socket
	 * (the urgent thread then sees EOF): exiting earlier with unread requests
	 * queued would reset the connection under pages still in flight.
	 */
	pthread_join(th, NULL);
	_exit(atomic_load(&s.done) == npages ? 0 : 14);
}

/* ------------------------------------------------------- destination */

struct interval {
	uint64_t start, end;
};

struct worker {
	pthread_t th;
	struct dest *d;
	int id;
	uint64_t *lat;
	struct interval *iv;
	size_t nlat;
	uint64_t stale, accesses;
};

struct dest {
	bool minor;
	enum fl_backing b;
	size_t psize, npages;
	uint64_t seed;
	int sock, bgsock, uffd, stopfd; /* sock: urgent channel (requests out, pages in) */
	struct fl_region r;
	atomic_uchar *placed, *requested;
	atomic_size_t nplaced;
	atomic_ulong faults, requests, urgent, wakes;
	atomic_int err;
	char errmsg[256];
	int nworkers;
	struct worker *w;
	pthread_barrier_t go;
	uint64_t t_start, t_all_placed;
};

static void dest_fail(struct dest *d, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void dest_fail(struct dest *d, int err, const char *fmt, ...)
{
	int zero = 0;
	if (!atomic_compare_exchange_strong(&d->err, &zero, err ? err : EIO))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->errmsg, sizeof(d->errmsg), fmt, ap);
	va_end(ap);
	/* Unregistering releases every blocked worker (their accesses then see stale/zero data). */
	fl_uffd_unregister(d->uffd, d->r.reg, d->r.len);
}

struct receiver {
	struct dest *d;
	int fd;
	pthread_t th;
};

static void *receiver_main(void *arg)
{
	struct receiver *rc = arg;
	struct dest *d = rc->d;
	uint64_t *buf = aligned_alloc(4096, d->psize);
	if (!buf) {
		dest_fail(d, ENOMEM, "receiver buffer");
		return NULL;
	}
	while (atomic_load(&d->nplaced) < d->npages && !atomic_load(&d->err)) {
		struct page_hdr h;
		int r = readn(rc->fd, &h, sizeof(h));
		if (r == -EPIPE)
			break; /* channel closed: the other receiver placed the last page */
		if (r || h.idx >= d->npages) {
			dest_fail(d, r ? -r : EIO, "receive page header: %s", r ? strerror(-r) : "index out of range");
			break;
		}
		size_t off = h.idx * d->psize;
		/* minor: receive straight into the page cache through the alias, then map it. */
		r = readn(rc->fd, d->minor ? (void *)(d->r.alias + off) : (void *)buf, d->psize);
		if (r) {
			dest_fail(d, -r, "receive page %llu: %s", (unsigned long long)h.idx, strerror(-r));
			break;
		}
		for (;;) {
			if (d->minor) {
				struct uffdio_continue c = {.range = {.start = (uintptr_t)d->r.reg + off, .len = d->psize}};
				r = ioctl(d->uffd, UFFDIO_CONTINUE, &c) ? errno : 0;
			} else {
				struct uffdio_copy c = {.dst = (uintptr_t)d->r.reg + off, .src = (uintptr_t)buf, .len = d->psize};
				r = ioctl(d->uffd, UFFDIO_COPY, &c) ? errno : 0;
			}
			if (r != EAGAIN)
				break;
		}
		if (r) {
			dest_fail(d, r, "%s page %llu: %s", d->minor ? "UFFDIO_CONTINUE" : "UFFDIO_COPY",
				  (unsigned long long)h.idx, strerror(r));
			break;
		}
		if (h.urgent)
			atomic_fetch_add(&d->urgent, 1);
		atomic_store_explicit(&d->placed[h.idx], 1, memory_order_release);
		if (atomic_fetch_add(&d->nplaced, 1) + 1 == d->npages) {
			d->t_all_placed = fl_now_ns();
			/* Wake the other receiver, blocked on a channel that will carry nothing more. */
			shutdown(d->sock, SHUT_RD);
			shutdown(d->bgsock, SHUT_RD);
		}
	}
	free(buf);
	return NULL;
}

static void *handler_main(void *arg)
{
	struct dest *d = arg;
	struct uffd_msg msgs[16];
	for (;;) {
		struct pollfd p[2] = {{.fd = d->uffd, .events = POLLIN}, {.fd = d->stopfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			dest_fail(d, errno, "poll: %s", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		ssize_t n = read(d->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			dest_fail(d, errno, "read uffd: %s", strerror(errno));
			return NULL;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT) {
				dest_fail(d, EIO, "unexpected uffd event 0x%x", msgs[i].event);
				return NULL;
			}
			uint64_t addr = msgs[i].arg.pagefault.address;
			uint64_t idx = (addr - (uintptr_t)d->r.reg) / d->psize;
			atomic_fetch_add(&d->faults, 1);
			if (!atomic_exchange(&d->requested[idx], 1)) {
				struct iovec iov = {&idx, sizeof(idx)};
				/* Fails harmlessly once the source has sent everything: the page is in flight. */
				if (!writen(d->sock, &iov, 1))
					atomic_fetch_add(&d->requests, 1);
			} else if (atomic_load(&d->placed[idx])) {
				/* Placed while this fault was queued: make sure the faulter is woken. */
				struct uffdio_range rg = {.start = (uintptr_t)d->r.reg + idx * d->psize, .len = d->psize};
				ioctl(d->uffd, UFFDIO_WAKE, &rg);
				atomic_fetch_add(&d->wakes, 1);
			}
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct dest *d = w->d;
	size_t mine = 0;
	for (size_t i = (size_t)w->id; i < d->npages; i += (size_t)d->nworkers)
		mine++;
	uint64_t *order = malloc(mine * sizeof(*order));
	w->lat = malloc(mine * sizeof(*w->lat));
	w->iv = malloc(mine * sizeof(*w->iv));
	if (!order || !w->lat || !w->iv) {
		dest_fail(d, ENOMEM, "worker arrays");
		pthread_barrier_wait(&d->go);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = (size_t)w->id; i < d->npages; i += (size_t)d->nworkers)
		order[k++] = i;
	uint64_t rnd = fl_mix64(d->seed + (uint64_t)w->id * 7919);
	for (size_t i = mine; i > 1; i--) { /* Fisher-Yates */
		rnd = fl_mix64(rnd);
		size_t j = rnd % i;
		uint64_t tmp = order[i - 1];
		order[i - 1] = order[j];
		order[j] = tmp;
	}
	size_t words = d->psize / 8;
	pthread_barrier_wait(&d->go);
	for (size_t i = 0; i < mine && !atomic_load(&d->err); i++) {
		uint64_t idx = order[i];
		rnd = fl_mix64(rnd);
		size_t word = rnd % words;
		bool was_placed = atomic_load_explicit(&d->placed[idx], memory_order_acquire);
		volatile uint64_t *p = (volatile uint64_t *)(d->r.reg + idx * d->psize) + word;
		uint64_t t0 = fl_now_ns();
		uint64_t v = *p;
		uint64_t t1 = fl_now_ns();
		w->accesses++;
		if (v != page_word(d->seed, idx, word))
			w->stale++;
		if (!was_placed) {
			w->lat[w->nlat] = t1 - t0;
			w->iv[w->nlat] = (struct interval){t0, t1};
			w->nlat++;
		}
	}
	free(order);
	return NULL;
}

struct edge {
	uint64_t t;
	int delta;
};
static int cmp_edge(const void *a, const void *b)
{
	const struct edge *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->delta - y->delta; /* ends before starts at the same instant */
}

/* Time during which all n workers were blocked at once. */
static uint64_t blocktime_all(struct worker *w, int n)
{
	size_t total = 0;
	for (int i = 0; i < n; i++)
		total += w[i].nlat;
	struct edge *e = malloc(2 * total * sizeof(*e) + 1);
	if (!e)
		return 0;
	size_t k = 0;
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < w[i].nlat; j++) {
			e[k++] = (struct edge){w[i].iv[j].start, +1};
			e[k++] = (struct edge){w[i].iv[j].end, -1};
		}
	qsort(e, k, sizeof(*e), cmp_edge);
	uint64_t sum = 0, since = 0;
	int blocked = 0;
	for (size_t i = 0; i < k; i++) {
		if (blocked == n)
			sum += e[i].t - since;
		blocked += e[i].delta;
		since = e[i].t;
	}
	free(e);
	return sum;
}

static char watchdog_msg[160];
static void on_alarm(int sig)
{
	(void)sig;
	fl_bail_async(watchdog_msg);
}

static void dest_init(struct dest *d, bool minor, enum fl_backing b, const struct opts *o)
{
	memset(d, 0, sizeof(*d));
	d->minor = minor;
	d->b = b;
	d->psize = fl_backing_page(b);
	d->seed = o->seed;
	d->uffd = d->stopfd = -1;
	d->r.fd = -1;
	d->nworkers = o->workers;
	long mib = o->size_mib > 0 ? o->size_mib : (d->psize >= 2 * FL_MB ? 64 : 32);
	d->npages = (size_t)mib * FL_MB / d->psize;
	if (!d->npages)
		d->npages = 1;
}

/* The UFFDIO_API features the mode needs on this backing. */
static uint64_t dest_features(bool minor, enum fl_backing b)
{
	if (minor)
		return b == FL_SHMEM ? UFFD_FEATURE_MINOR_SHMEM : UFFD_FEATURE_MINOR_HUGETLBFS;
	return b == FL_SHMEM ? UFFD_FEATURE_MISSING_SHMEM : b == FL_HUGETLB ? UFFD_FEATURE_MISSING_HUGETLBFS : 0;
}

/* FL_PASS when the kernel offers the features, else FL_SKIP with the reason in why. */
static enum fl_status check_features(uint64_t need, char *why, size_t wl)
{
	int err;
	uint64_t have = fl_uffd_features(&err);
	if (err) {
		snprintf(why, wl, "userfaultfd unavailable: %s", strerror(err));
		return FL_SKIP;
	}
	if (need & ~have) {
		snprintf(why, wl, "kernel lacks %s", fl_feature_name(need & ~have));
		return FL_SKIP;
	}
	return FL_PASS;
}

/*
 * The destination before migration: guest memory (in minor mode holding the stale precopy
 * image), the bookkeeping arrays, and the userfaultfd registered over the guest's view.
 * FL_PASS, or the status to report; what was set up is left to dest_free.
 */
static enum fl_status dest_setup(struct dest *d, uint64_t need, char *why, size_t wl)
{
	if (fl_region_alloc(&d->r, d->b, d->npages * d->psize, d->minor ? FL_REGION_ALIAS : 0, why, wl))
		return fl_backing_hugetlb(d->b) ? FL_SKIP : FL_FAIL;
	d->placed = calloc(d->npages, 1);
	d->requested = calloc(d->npages, 1);
	d->w = calloc((size_t)d->nworkers, sizeof(*d->w));
	if (!d->placed || !d->requested || !d->w) {
		snprintf(why, wl, "out of memory");
		return FL_FAIL;
	}
	if (d->minor) {
		/* The precopy image: every page present in the page cache, but stale. */
		for (size_t i = 0; i < d->npages; i++) {
			uint64_t *p = (uint64_t *)(d->r.alias + i * d->psize);
			for (size_t w = 0; w < d->psize / 8; w += 512)
				p[w] = 0xdeadbeefdeadbeefull ^ i;
		}
	}
	d->uffd = fl_uffd_open(O_CLOEXEC | O_NONBLOCK);
	if (d->uffd < 0) {
		snprintf(why, wl, "userfaultfd: %s", strerror(-d->uffd));
		return FL_SKIP;
	}
	int r = fl_uffd_api(d->uffd, need, NULL, NULL);
	if (!r)
		r = fl_uffd_register(d->uffd, d->r.reg, d->r.len,
				     d->minor ? UFFDIO_REGISTER_MODE_MINOR : UFFDIO_REGISTER_MODE_MISSING, NULL);
	if (r) {
		snprintf(why, wl, "userfaultfd setup (%s on %s): %s", d->minor ? "MINOR" : "MISSING",
			 fl_backing_names[d->b], strerror(-r));
		return r == -EINVAL ? FL_SKIP : FL_FAIL;
	}
	return FL_PASS;
}

/*
 * Forks the source with both channels (background and urgent); the destination keeps the
 * other ends in d->bgsock and d->sock. Returns the source's pid, or -1 with the reason in why.
 */
static pid_t fork_source(struct dest *d, const struct opts *o, char *why, size_t wl)
{
	int sv[2], bv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		snprintf(why, wl, "socketpair: %s", strerror(errno));
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, bv)) {
		snprintf(why, wl, "socketpair: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	fflush(stdout);
	pid_t src = fork();
	if (src < 0) {
		snprintf(why, wl, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		close(bv[0]);
		close(bv[1]);
		return -1;
	}
	if (src == 0) {
		close(sv[1]);
		close(bv[1]);
		source_main(bv[0], sv[0], d->seed, d->npages, d->psize, o->bw_mibps);
	}
	close(sv[0]);
	close(bv[0]);
	d->sock = sv[1];
	d->bgsock = bv[1];
	return src;
}

/* Starts the workers, the fault handler and both receivers, then tells the source to begin. */
static void start_migration(struct dest *d, pthread_t *hth, struct receiver rcv[2])
{
	pthread_barrier_init(&d->go, NULL, (unsigned)d->nworkers + 1);
	for (int i = 0; i < d->nworkers; i++) {
		d->w[i].d = d;
		d->w[i].id = i;
		pthread_create(&d->w[i].th, NULL, worker_main, &d->w[i]);
	}
	pthread_create(hth, NULL, handler_main, d);
	for (int i = 0; i < 2; i++)
		pthread_create(&rcv[i].th, NULL, receiver_main, &rcv[i]);
	/* START must be the source's first message: send it before any worker can fault. */
	d->t_start = fl_now_ns();
	uint64_t start = REQ_START;
	struct iovec iov = {&start, sizeof(start)};
	if (writen(d->sock, &iov, 1))
		dest_fail(d, EPIPE, "send start");
	pthread_barrier_wait(&d->go);
}

/*
 * Waits for the workers and receivers, stops the handler, closes the channels and reaps the
 * source; anything that went wrong is in d->err. Returns when the workers finished.
 */
static uint64_t finish_migration(struct dest *d, pthread_t hth, struct receiver rcv[2], pid_t src)
{
	for (int i = 0; i < d->nworkers; i++)
		pthread_join(d->w[i].th, NULL);
	uint64_t t_workers = fl_now_ns();
	for (int i = 0; i < 2; i++)
		pthread_join(rcv[i].th, NULL);
	uint64_t one = 1;
	if (write(d->stopfd, &one, sizeof(one)) < 0)
		dest_fail(d, errno, "stop handler");
	pthread_join(hth, NULL);
	if (!atomic_load(&d->err) && atomic_load(&d->nplaced) != d->npages)
		dest_fail(d, EIO, "only %zu of %zu pages arrived", (size_t)atomic_load(&d->nplaced), d->npages);
	close(d->sock);
	close(d->bgsock);
	int wst = 0;
	waitpid(src, &wst, 0);
	alarm(0);
	if (!atomic_load(&d->err) && !(WIFEXITED(wst) && WEXITSTATUS(wst) == 0))
		dest_fail(d, EIO, "source process ended with status 0x%x", wst);
	return t_workers;
}

/* What the workers saw, summed over them, and the outcome of the final check. */
struct tally {
	uint64_t bad_pages, stale, accesses, blocked_sum;
	uint64_t *lat; /* every demand access's latency */
	size_t nlat;
};

/* Verifies every page through the registered view (what the guest sees). */
static uint64_t count_bad_pages(const struct dest *d)
{
	uint64_t bad_pages = 0;
	uint64_t *expect = aligned_alloc(4096, d->psize);
	for (size_t i = 0; i < d->npages && expect; i++) {
		gen_page(d->seed, i, expect, d->psize);
		if (page_sum((const uint64_t *)(d->r.reg + i * d->psize), d->psize) != page_sum(expect, d->psize))
			bad_pages++;
	}
	free(expect);
	return bad_pages;
}

static void tally_workers(const struct dest *d, struct tally *t)
{
	for (int i = 0; i < d->nworkers; i++) {
		t->nlat += d->w[i].nlat;
		t->stale += d->w[i].stale;
		t->accesses += d->w[i].accesses;
	}
	t->lat = malloc((t->nlat + 1) * sizeof(*t->lat));
	size_t k = 0;
	for (int i = 0; i < d->nworkers; i++)
		for (size_t j = 0; j < d->w[i].nlat; j++) {
			t->lat[k++] = d->w[i].lat[j];
			t->blocked_sum += d->w[i].lat[j];
		}
}

static void emit_metrics(struct dest *d, struct tally *t, uint64_t t_workers)
{
	uint64_t wall = (d->t_all_placed > d->t_start ? d->t_all_placed : t_workers) - d->t_start;
	double secs = (double)wall / 1e9;
	fl_metric_u("pages", d->npages, "count");
	fl_metric_u("page_size", d->psize, "bytes");
	fl_metric_u("workers", (uint64_t)d->nworkers, "count");
	fl_metric_u("accesses", t->accesses, "count");
	fl_metric_u("demand_accesses", t->nlat, "count");
	fl_metric_u("faults", atomic_load(&d->faults), "count");
	fl_metric_u("requests", atomic_load(&d->requests), "count");
	fl_metric_u("urgent_pages", atomic_load(&d->urgent), "count");
	fl_metric("wall", (double)wall / 1e6, "ms");
	fl_metric("workers_wall", (double)(t_workers - d->t_start) / 1e6, "ms");
	fl_metric("pages_per_s", secs > 0 ? (double)d->npages / secs : 0, "pages/s");
	fl_metric("mib_per_s", secs > 0 ? (double)d->npages * (double)d->psize / FL_MB / secs : 0, "MiB/s");
	fl_metric_u("blocktime_sum", t->blocked_sum, "ns");
	fl_metric_u("blocktime_all", blocktime_all(d->w, d->nworkers), "ns");
	fl_metric_u("stale_reads", t->stale, "count");
	fl_metric_u("bad_pages", t->bad_pages, "count");
	if (t->nlat) {
		fl_hist_emit("fault", t->lat, t->nlat);
		fl_stats_emit("fault", t->lat, t->nlat);
	}
}

/* After a migration without errors: check the pages, report; a pass needs no wrong page or stale read. */
static enum fl_status verify_and_report(struct dest *d, uint64_t t_workers, char *why, size_t wl)
{
	struct tally t = {0};
	t.bad_pages = count_bad_pages(d);
	tally_workers(d, &t);
	emit_metrics(d, &t, t_workers);
	free(t.lat);
	if (t.bad_pages || t.stale) {
		snprintf(why, wl, "%llu of %zu pages wrong after migration, %llu stale reads by workers",
			 (unsigned long long)t.bad_pages, d->npages, (unsigned long long)t.stale);
		return FL_FAIL;
	}
	return FL_PASS;
}

/* Forks the source, migrates under the -T watchdog and verifies; once forked, the source is always reaped. */
static enum fl_status migrate(struct dest *d, const struct opts *o, const char *name, char *why, size_t wl)
{
	pid_t src = fork_source(d, o, why, wl);
	if (src < 0)
		return FL_FAIL;
	d->stopfd = eventfd(0, EFD_CLOEXEC);
	snprintf(watchdog_msg, sizeof(watchdog_msg), "%s: no progress within %us (-T)", name, o->timeout_s);
	alarm(o->timeout_s);
	pthread_t hth;
	struct receiver rcv[2] = {{.d = d, .fd = d->bgsock}, {.d = d, .fd = d->sock}};
	start_migration(d, &hth, rcv);
	uint64_t t_workers = finish_migration(d, hth, rcv, src);
	enum fl_status st = FL_FAIL;
	if (atomic_load(&d->err))
		snprintf(why, wl, "%s", d->errmsg);
	else
		st = verify_and_report(d, t_workers, why, wl);
	pthread_barrier_destroy(&d->go);
	for (int i = 0; i < d->nworkers; i++) {
		free(d->w[i].lat);
		free(d->w[i].iv);
	}
	return st;
}

/* Releases the destination; right after any step of dest_setup or migrate. */
static void dest_free(struct dest *d)
{
	if (d->stopfd >= 0)
		close(d->stopfd);
	if (d->uffd >= 0)
		close(d->uffd);
	fl_region_free(&d->r);
	free(d->placed);
	free(d->requested);
	free(d->w);
}

/* One subtest: mode (minor or copy) on one backing; whatever was set up is released before returning. */
static enum fl_status run_one(bool minor, enum fl_backing b, const struct opts *o, const char *name, char *why, size_t wl)
{
	struct dest d;
	dest_init(&d, minor, b, o);
	uint64_t need = dest_features(minor, b);
	enum fl_status st = check_features(need, why, wl);
	if (st != FL_PASS)
		return st; /* nothing set up yet */
	st = dest_setup(&d, need, why, wl);
	if (st == FL_PASS)
		st = migrate(&d, o, name, why, wl);
	dest_free(&d);
	return st;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: postcopy [-b BACKINGS] [-m minor|copy|both] [-s MIB] [-t WORKERS] [-B MIBPS] [-S SEED] [-T SEC]\n"
		"  -b  comma list of shmem,hugetlb,anon (default shmem,hugetlb; minor mode skips anon)\n"
		"  -m  resolution mode (default both)\n"
		"  -s  guest memory size in MiB (default 32 for 4K pages, 64 for hugetlb)\n"
		"  -t  worker (vCPU) threads (default 2)\n"
		"  -B  background push bandwidth limit in MiB/s (default 0 = unlimited)\n"
		"  -S  content seed (default 1)\n"
		"  -T  watchdog per subtest in seconds (default 300)\n");
	exit(2);
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || v < lo || v > hi)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.backings = (1u << FL_SHMEM) | (1u << FL_HUGETLB),
		.minor = true,
		.copy = true,
		.size_mib = -1,
		.workers = 2,
		.seed = 1,
		.timeout_s = 300,
	};
	int opt;
	while ((opt = getopt(argc, argv, "b:m:s:t:B:S:T:h")) != -1) {
		switch (opt) {
		case 'b': {
			o.backings = 0;
			char *dup = strdup(optarg), *save = NULL;
			for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				int b = fl_backing_parse(tok);
				if (b != FL_ANON && b != FL_SHMEM && b != FL_HUGETLB) {
					fprintf(stderr, "postcopy: backing '%s' not supported (shmem, hugetlb, anon)\n", tok);
					return 2;
				}
				o.backings |= 1u << b;
			}
			free(dup);
			break;
		}
		case 'm':
			if (!strcmp(optarg, "minor")) o.copy = false;
			else if (!strcmp(optarg, "copy")) o.minor = false;
			else if (strcmp(optarg, "both")) usage();
			break;
		case 's': o.size_mib = num(optarg, 1, 1 << 20); break;
		case 't': o.workers = (int)num(optarg, 1, 256); break;
		case 'B': o.bw_mibps = num(optarg, 0, 1 << 30); break;
		case 'S': o.seed = (uint64_t)num(optarg, 0, LONG_MAX); break;
		case 'T': o.timeout_s = (unsigned)num(optarg, 1, 86400); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	signal(SIGALRM, on_alarm);
	signal(SIGPIPE, SIG_IGN);

	static const enum fl_backing order[] = {FL_SHMEM, FL_HUGETLB, FL_ANON};
	struct {
		bool minor;
		enum fl_backing b;
		char name[64];
	} run[6];
	int n = 0;
	for (int m = 0; m < 2; m++) {
		bool minor = m == 0;
		if ((minor && !o.minor) || (!minor && !o.copy))
			continue;
		for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
			if (!(o.backings & (1u << order[i])) || (minor && order[i] == FL_ANON))
				continue;
			run[n].minor = minor;
			run[n].b = order[i];
			snprintf(run[n].name, sizeof(run[n].name), "%s/%s", minor ? "minor" : "copy", fl_backing_names[order[i]]);
			n++;
		}
	}
	fl_ktap_header(n);
	fl_diag("postcopy: kernel %s, %d CPUs, %d workers, seed %llu, bandwidth limit %ld MiB/s", fl_kver_str(), fl_ncpus(),
		o.workers, (unsigned long long)o.seed, o.bw_mibps);
	for (int i = 0; i < n; i++) {
		char why[512] = "";
		enum fl_status st = run_one(run[i].minor, run[i].b, &o, run[i].name, why, sizeof(why));
		fl_ktap_result(st, run[i].name, why);
	}
	return fl_ktap_finish();
}
