/* Fault injection: a test killed by SIGBUS, a signal sshd cannot name (it sends "SIG@openssh.com"). */
#include <signal.h>
#include <stdio.h>

int main(void)
{
	printf("fault: raising SIGBUS\n");
	fflush(stdout);
	raise(SIGBUS);
	return 0;
}
