/*
 * A flaky test: fails on its first run in a guest, passes on the next (a marker file in
 * the guest's /tmp remembers the first run).
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char path[128];

	snprintf(path, sizeof(path), "/tmp/fails-once.%.64s", argc > 1 ? argv[1] : "none");
	if (access(path, F_OK) == 0) {
		printf("second run: pass\n");
		return 0;
	}
	close(open(path, O_CREAT | O_WRONLY, 0600));
	printf("first run: failing on purpose\n");
	return 1;
}
