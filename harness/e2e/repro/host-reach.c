/*
 * Can the guest reach services on the host? One KTAP test per address: `ok` when the
 * connection fails, `not ok` (with what answered) when it gets through. The same check
 * as harness/suites/fixtures/program/host-isolation.c, over every way out of QEMU's user
 * network: 10.0.2.2 (the host's loopback), 10.0.2.3 (slirp's DNS alias: other ports go to
 * the host's resolver address) and the host's own addresses. harness/e2e/isolation
 * replaces the TARGETS line with the ports of listeners it opens for the run.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define TARGETS "10.0.2.2:8123 10.0.2.3:8123"

/* 1 when host:port accepted a connection; its first line goes to `line`. */
static int reach(const char *host, int port, char *line, size_t len)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 5 };
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	line[0] = '\0';
	if (fd < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		close(fd);
		return 0;
	}
	if ((n = read(fd, line, len - 1)) > 0) {
		line[n] = '\0';
		line[strcspn(line, "\r\n")] = '\0';
	}
	close(fd);
	return 1;
}

int main(int argc, char **argv)
{
	char targets[] = TARGETS, line[256], *save = NULL, *t;
	int count = 0, failed = 0, i = 0;

	for (t = targets; *t; t++)
		count += *t == ' ';
	printf("TAP version 13\n1..%d\n", count + 1);
	printf("# backing %s\n", argc > 1 ? argv[1] : "(none)");
	fflush(stdout);
	for (t = strtok_r(targets, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		char *colon = strchr(t, ':');
		int reached;

		*colon = '\0';
		reached = reach(t, atoi(colon + 1), line, sizeof(line));
		if (reached)
			printf("# reached host service %s:%s: it answered \"%s\"\n", t, colon + 1, line);
		printf("%s %d guest-cannot-reach-%s\n", reached ? "not ok" : "ok", ++i, t);
		failed += reached;
		fflush(stdout);
	}
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n", i - failed, failed);
	return failed ? 1 : 0;
}
