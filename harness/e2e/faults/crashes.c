/*
 * Fault injection: a test that crashes half-way (SIGSEGV on a NULL write) after one result,
 * on its first attempt only; a retry (FAULTLINE_ATTEMPT set) runs to its end.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	volatile int *nowhere = NULL;

	printf("TAP version 13\n1..2\nok 1 before the crash\n");
	fflush(stdout);
	if (!getenv("FAULTLINE_ATTEMPT"))
		*nowhere = 1;
	printf("ok 2 after the crash\n");
	return 0;
}
