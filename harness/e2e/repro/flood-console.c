/*
 * A guest that floods its console: text lines written to /dev/console (the serial port
 * faultline records as console.log) until 8 MiB have gone out, then exit 0: with the
 * boot's lines before them, just past the bound (TCG's serial port takes ~75 KB/s).
 * /dev/kmsg would not do: the kernel rate-limits user writes there. faultline must cut
 * console.log off at its bound (CONSOLE_LOG_LIMIT_BYTES) and fail the program, saying so.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	static char buf[4096];
	unsigned long long left = 8ULL << 20;
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY);

	if (fd < 0) {
		perror("open /dev/console");
		return 1;
	}
	for (size_t i = 0; i < sizeof(buf); i += 64) {
		memset(buf + i, 'c', 63);
		buf[i + 63] = '\n';
	}
	while (left) {
		ssize_t n = write(fd, buf, left < sizeof(buf) ? left : sizeof(buf));

		if (n <= 0)
			return 1;
		left -= n;
	}
	return 0;
}
