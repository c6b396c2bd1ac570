/* Fault injection: a test that never finishes (the guest-side deadline must end it). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	printf("fault: waiting forever\n");
	fflush(stdout);
	for (;;)
		pause();
}
