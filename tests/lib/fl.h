/* SPDX-License-Identifier: MIT */
/*
 * faultline shared helpers for the userfaultfd test programs (uffd-lat,
 * uffd-contract, postcopy): KTAP output, timing and statistics, userfaultfd
 * setup, test-memory backings, and fallbacks for uapi constants that older
 * kernel headers lack (the programs then detect support at run time).
 *
 * Output conventions shared by all programs (parsed by harness/suites/parsers):
 *   # metric <name>=<number> <unit>      one metric, belongs to the next result line
 *   # hist <name> <k>:<count> ...        log2 histogram: bucket k counts samples v
 *                                        with 2^k <= v < 2^(k+1) (k=0 also holds v=0)
 *   # behaviour <text>                   which version-dependent behaviour was seen
 */
#ifndef FAULTLINE_FL_H
#define FAULTLINE_FL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/memfd.h>
#include <linux/userfaultfd.h>

/* ---- uapi fallbacks: values are ABI, identical to the 6.12 headers ---- */
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif
#ifndef UFFD_FEATURE_MISSING_HUGETLBFS
#define UFFD_FEATURE_MISSING_HUGETLBFS (1 << 4)
#endif
#ifndef UFFD_FEATURE_MISSING_SHMEM
#define UFFD_FEATURE_MISSING_SHMEM (1 << 5)
#endif
#ifndef UFFD_FEATURE_MINOR_HUGETLBFS
#define UFFD_FEATURE_MINOR_HUGETLBFS (1 << 9)
#endif
#ifndef UFFD_FEATURE_MINOR_SHMEM
#define UFFD_FEATURE_MINOR_SHMEM (1 << 10)
#endif
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef UFFD_PAGEFAULT_FLAG_MINOR
#define UFFD_PAGEFAULT_FLAG_MINOR (1 << 2)
#endif
#ifndef UFFDIO_REGISTER_MODE_MINOR
#define UFFDIO_REGISTER_MODE_MINOR ((__u64)1 << 2)
#endif
#ifndef UFFDIO_COPY_MODE_WP
#define UFFDIO_COPY_MODE_WP ((__u64)1 << 1)
#endif
#ifndef _UFFDIO_CONTINUE
#define _UFFDIO_CONTINUE (0x07)
#endif
#ifndef UFFDIO_CONTINUE
struct uffdio_continue {
	struct uffdio_range range;
#define UFFDIO_CONTINUE_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 mapped;
};
#define UFFDIO_CONTINUE _IOWR(UFFDIO, _UFFDIO_CONTINUE, struct uffdio_continue)
#endif
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
	__u64 mode;
	__s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef PAGEMAP_SCAN
struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};
struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21U << 26)
#endif
#ifndef MFD_HUGE_1GB
#define MFD_HUGE_1GB (30U << 26)
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_NOHUGEPAGE
#define MADV_NOHUGEPAGE 15
#endif

#define FL_PM_UFFD_WP (1ULL << 57) /* /proc/self/pagemap: pte is uffd-wp write-protected */

#define FL_KB 1024UL
#define FL_MB (1024UL * 1024)
#define FL_GB (1024UL * 1024 * 1024)
#define FL_KVER(a, b, c) (((a) << 16) | ((b) << 8) | (c))

/* ---- KTAP ---- */
enum fl_status { FL_PASS, FL_FAIL, FL_SKIP };

void fl_ktap_header(int planned);
/* Prints "ok N name", "ok N name # SKIP reason" or "not ok N name # reason". */
void fl_ktap_result(enum fl_status st, const char *name, const char *reason);
/* Prints the "# Totals:" line; returns the process exit code (1 when anything failed). */
int fl_ktap_finish(void);
void fl_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fl_metric(const char *name, double value, const char *unit);
void fl_metric_u(const char *name, uint64_t value, const char *unit);
/* Async-signal-safe "Bail out!" + _exit(3), for watchdogs. */
void fl_bail_async(const char *msg);

/* ---- time and statistics ---- */
static inline uint64_t fl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline void fl_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}
/*
 * Emits <prefix>_{min,mean,p50,p90,p99,p99_9,max} in ns as metrics, using the
 * nearest-rank definition on the sorted samples (index ceil(p*n)-1). Sorts v.
 */
void fl_stats_emit(const char *prefix, uint64_t *v, size_t n);
/* Emits "# hist <prefix>_ns k:count ..." for v (any order). */
void fl_hist_emit(const char *prefix, const uint64_t *v, size_t n);
uint64_t fl_percentile(const uint64_t *sorted, size_t n, double p);

/* ---- system info ---- */
unsigned fl_kver(void);              /* uname release as FL_KVER(a,b,c) */
const char *fl_kver_str(void);       /* uname release string */
long fl_read_long(const char *path); /* first integer in a file, -1 on error */
/* The [selected] word of a sysfs choice file (e.g. THP "always [madvise] never"), "" when absent. */
const char *fl_sysfs_choice(const char *path, char *buf, size_t len);
long fl_hugepages_free(unsigned long page_size);
/* The value (kB) of `field` (e.g. "AnonHugePages:") in /proc/self/smaps for the VMA holding addr; -1 if not found. */
long fl_smaps_kb(const void *addr, const char *field);
/* /proc/self/pagemap entry for addr; 0 with errno set on error. */
uint64_t fl_pagemap(const void *addr);
int fl_ncpus(void);
/* Pins the calling thread to the idx-th CPU of the process's affinity mask; returns the CPU or -1. */
int fl_pin_self(int idx);
const char *fl_errname(int err); /* "EEXIST", "0" for 0 */

/* ---- userfaultfd ---- */
/* New userfaultfd (syscall, then /dev/userfaultfd); -errno on failure. */
int fl_uffd_open(int flags);
/* UFFDIO_API handshake; 0 or -errno. features/ioctls out params may be NULL. */
int fl_uffd_api(int fd, uint64_t want, uint64_t *features, uint64_t *ioctls);
/* Features this kernel supports (probe once); 0 and *err set if userfaultfd unavailable. */
uint64_t fl_uffd_features(int *err);
/* UFFDIO_REGISTER; 0 or -errno. */
int fl_uffd_register(int fd, void *addr, size_t len, uint64_t mode, uint64_t *ioctls);
int fl_uffd_unregister(int fd, void *addr, size_t len);
const char *fl_feature_name(uint64_t bit);
/* Waits up to timeout_ms for one uffd message (fd must be O_NONBLOCK); 0, -ETIMEDOUT or -errno. */
int fl_uffd_read_msg(int fd, struct uffd_msg *msg, int timeout_ms);

/* ---- test memory backings ---- */
enum fl_backing { FL_ANON, FL_SHMEM, FL_SHMEM_THP, FL_HUGETLB, FL_HUGETLB_1G, FL_NBACKING };
extern const char *const fl_backing_names[FL_NBACKING];
int fl_backing_parse(const char *s); /* -1 if unknown */
static inline bool fl_backing_shared(enum fl_backing b) { return b != FL_ANON; }
static inline bool fl_backing_hugetlb(enum fl_backing b) { return b == FL_HUGETLB || b == FL_HUGETLB_1G; }
/* Natural page size of a backing (the unit of a uffd fault on it). */
size_t fl_backing_page(enum fl_backing b);

enum {
	FL_REGION_ALIAS = 1 << 0,   /* also map the memfd a second time (shared backings) */
	FL_REGION_PRIVATE = 1 << 1, /* map the registered view MAP_PRIVATE (shared backings) */
	FL_REGION_RDONLY = 1 << 2,  /* map the registered view PROT_READ only */
	FL_REGION_THP = 1 << 3,     /* align to 2M and MADV_HUGEPAGE (anon: otherwise MADV_NOHUGEPAGE) */
};

struct fl_region {
	enum fl_backing backing;
	size_t len;
	int fd;      /* memfd, -1 for anon */
	char *reg;   /* the view that gets registered */
	char *alias; /* second MAP_SHARED view of the same file, or NULL */
	void *reserve_reg, *reserve_alias; /* unaligned reservations to unmap */
	size_t reserve_len;
};
/* 0 on success; -errno with a human reason in why (e.g. not enough hugepages). */
int fl_region_alloc(struct fl_region *r, enum fl_backing b, size_t len, int flags, char *why, size_t whylen);
void fl_region_free(struct fl_region *r);
/* Drops the page(s) entirely: page cache hole (shared) or MADV_DONTNEED (anon). */
int fl_region_punch(struct fl_region *r, size_t off, size_t len);
/* Drops only the registered view's page table entries (page cache stays). */
int fl_region_zap(struct fl_region *r, size_t off, size_t len);

/* Deterministic page content for integrity checks. */
static inline uint64_t fl_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#endif
