/*
 * A reproducer as a bug reporter writes one: plain exit code, no KTAP. UFFDIO_ZEROPAGE with
 * mode 0 (wake the faulting threads) on a registered anonymous range must succeed and map
 * zeros; exit 1 with the errno when the kernel refuses it, 4 (kselftest skip) without
 * userfaultfd.
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

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_zeropage zp = { 0 };
	char *area;
	int uffd;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) {
		printf("userfaultfd: %s\n", strerror(errno));
		return errno == ENOSYS ? 4 : 1;
	}
	if (ioctl(uffd, UFFDIO_API, &api)) {
		printf("UFFDIO_API: %s\n", strerror(errno));
		return 1;
	}
	area = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		printf("mmap: %s\n", strerror(errno));
		return 1;
	}
	reg.range.start = (unsigned long)area;
	reg.range.len = page;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		printf("UFFDIO_REGISTER: %s\n", strerror(errno));
		return 1;
	}
	zp.range.start = (unsigned long)area;
	zp.range.len = page;
	zp.mode = 0;
	if (ioctl(uffd, UFFDIO_ZEROPAGE, &zp)) {
		printf("UFFDIO_ZEROPAGE mode 0: %s\n", strerror(errno));
		return 1;
	}
	if (zp.zeropage != page || area[0] != 0 || area[page - 1] != 0) {
		printf("UFFDIO_ZEROPAGE mapped %lld bytes, expected %ld of zeros\n", (long long)zp.zeropage, page);
		return 1;
	}
	printf("UFFDIO_ZEROPAGE mode 0: ok\n");
	return 0;
}
