/* Fault injection: a test that crashes half-way (SIGSEGV on a NULL write) after one result. */
#include <stdio.h>

int main(void)
{
	volatile int *nowhere = NULL;

	printf("TAP version 13\n1..2\nok 1 before the crash\n");
	fflush(stdout);
	*nowhere = 1;
	printf("ok 2 after the crash\n");
	return 0;
}
