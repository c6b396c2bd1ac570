/* Fault injection: kill every sshd in the guest, ours included; the kernel is unharmed. */
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], comm[64];

	printf("fault: killing sshd\n");
	fflush(stdout);
	sleep(1);
	while (d && (e = readdir(d))) {
		FILE *f;

		if (!isdigit((unsigned char)e->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, "sshd", 4) == 0)
			kill(atoi(e->d_name), SIGKILL);
		fclose(f);
	}
	sleep(30);
	return 1;
}
