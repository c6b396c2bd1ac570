/*
 * Fault injection helper: a test that runs long enough for the host to do something
 * to the guest (stop or kill its QEMU) while it runs.
 */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	printf("fault: sleeping while the host acts on the guest\n");
	fflush(stdout);
	sleep(120);
	return 0;
}
