/*
 * A flaky test: fails on its first attempt, passes on the next. Retries run on a pristine
 * guest (restored from the snapshot), so nothing in the guest can remember the first
 * attempt: the harness's FAULTLINE_ATTEMPT (unset on the first, 2 on the first retry) tells.
 */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	const char *attempt = getenv("FAULTLINE_ATTEMPT");

	if (attempt && atoi(attempt) >= 2) {
		printf("attempt %s: pass\n", attempt);
		return 0;
	}
	printf("first run: failing on purpose\n");
	return 1;
}
