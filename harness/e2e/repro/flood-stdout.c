/*
 * A test that floods its output: 4 GiB of text lines on stdout, then exit 0. faultline
 * must kill it at its output bound (PROGRAM_OUTPUT_LIMIT_BYTES) and fail it, saying so.
 */
#include <string.h>
#include <unistd.h>

int main(void)
{
	static char buf[65536];
	unsigned long long left = 4ULL << 30;

	for (size_t i = 0; i < sizeof(buf); i += 64) {
		memset(buf + i, 'x', 63);
		buf[i + 63] = '\n';
	}
	while (left) {
		ssize_t n = write(1, buf, left < sizeof(buf) ? left : sizeof(buf));

		if (n <= 0)
			return 1;
		left -= n;
	}
	return 0;
}
