/*
 * The same UFFDIO_ZEROPAGE checks as zeropage-wake.c, reported as KTAP: one test per mode
 * (0: wake; DONTWAKE), each on its own registered anonymous page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* 0 when UFFDIO_ZEROPAGE in `mode` maps a page of zeros; else the errno (or EIO for a wrong result). */
static int zeropage(int uffd, long page, unsigned long long mode)
{
	struct uffdio_register reg = { 0 };
	struct uffdio_zeropage zp = { 0 };
	char *area = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (area == MAP_FAILED)
		return errno;
	reg.range.start = (unsigned long)area;
	reg.range.len = page;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		return errno;
	zp.range = reg.range;
	zp.mode = mode;
	if (ioctl(uffd, UFFDIO_ZEROPAGE, &zp))
		return errno;
	return zp.zeropage == page && area[0] == 0 && area[page - 1] == 0 ? 0 : EIO;
}

static void report(int n, const char *name, int err)
{
	if (err)
		printf("# %s: %s\nnot ok %d %s\n", name, strerror(err), n, name);
	else
		printf("ok %d %s\n", n, name);
}

int main(void)
{
	struct uffdio_api api = { .api = UFFD_API };
	long page = sysconf(_SC_PAGESIZE);
	int uffd, wake, dontwake;

	printf("TAP version 13\n1..2\n");
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		printf("Bail out! userfaultfd: %s\n", strerror(errno));
		return 1;
	}
	wake = zeropage(uffd, page, 0);
	dontwake = zeropage(uffd, page, UFFDIO_ZEROPAGE_MODE_DONTWAKE);
	report(1, "zeropage-wake", wake);
	report(2, "zeropage-dontwake", dontwake);
	return wake || dontwake ? 1 : 0;
}
