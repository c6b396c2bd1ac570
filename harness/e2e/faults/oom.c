/* Fault injection: take all guest memory until the guest's OOM killer kills us. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	size_t chunk = 16 << 20, total = 0;

	/* Be the OOM killer's choice over sshd and init. */
	FILE *f = fopen("/proc/self/oom_score_adj", "w");
	if (f) {
		fputs("1000", f);
		fclose(f);
	}
	printf("fault: allocating until the OOM killer stops us\n");
	fflush(stdout);
	for (;;) {
		char *p = malloc(chunk);
		if (!p) {
			sleep(1);
			continue;
		}
		memset(p, 0x5a, chunk);
		total += chunk;
	}
	return 1;
}
