/*
 * A new failure no known issue explains: a run that is otherwise green but for known issues
 * must still exit 1 and name this, and only this, as its failure.
 */
#include <stdio.h>

int main(void)
{
	printf("TAP version 13\n1..1\n");
	printf("not ok 1 new failure\n");
	return 1;
}
