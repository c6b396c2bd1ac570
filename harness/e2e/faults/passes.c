/* A test that passes: run after a fault, it shows the rest of the run was not lost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	const char *backing = getenv("FAULTLINE_BACKING");

	printf("TAP version 13\n1..2\n");
	printf("%s 1 backing in argv\n", argc > 1 ? "ok" : "not ok");
	printf("%s 2 backing in FAULTLINE_BACKING\n", backing && argc > 1 && !strcmp(backing, argv[1]) ? "ok" : "not ok");
	return 0;
}
