/* Fault injection: crash the guest kernel mid-test (sysrq 'c' panics it). */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	int fd;

	printf("fault: panicking the kernel through /proc/sysrq-trigger\n");
	fflush(stdout);
	sleep(1);
	fd = open("/proc/sysrq-trigger", O_WRONLY);
	if (fd < 0 || write(fd, "c", 1) != 1) {
		perror("sysrq-trigger");
		return 1;
	}
	sleep(30);
	printf("fault: the kernel survived sysrq-c\n");
	return 1;
}
