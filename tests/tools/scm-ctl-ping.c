/* scm-ctl-ping: control-socket round trips, timed, for the latency tests
 * and the bench: how long does scmd keep a client waiting while it does
 * other work (a container launch, a hung mount)?
 *
 *   scm-ctl-ping SOCKET COUNT [INTERVAL_MS]
 *
 * One connection, COUNT `status` calls one after another (INTERVAL_MS
 * apart, default 5), each waited for at most 10 s (a call that does not
 * come back in time counts as 10 s and ends the run). Prints
 *   n=COUNT p50_us=.. p99_us=.. max_us=..
 * and exits 0, or 1 when a call failed or timed out. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "scm-internal/wire.h"

#define CALL_TIMEOUT_MS 10000

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: scm-ctl-ping SOCKET COUNT [INTERVAL_MS]\n");
		return 2;
	}
	long count = strtol(argv[2], NULL, 10), interval = argc > 3 ? strtol(argv[3], NULL, 10) : 5;
	if (count <= 0 || count > 1000000 || interval < 0) {
		fprintf(stderr, "scm-ctl-ping: bad COUNT or INTERVAL_MS\n");
		return 2;
	}
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "scm-ctl-ping: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint64_t *lat = calloc((size_t)count, sizeof(*lat));
	long n = 0;
	int rc = 0;
	for (; n < count; n++) {
		json_object *req = json_object_new_object();
		json_object_object_add(req, "op", json_object_new_string("status"));
		uint64_t t0 = now_us();
		int r = scm_wire_send_json(fd, 0, SCM_FRAME_CALL, 0, (uint32_t)n + 1, 0, req, NULL, 0, NULL, 0);
		json_object_put(req);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (r < 0 || poll(&p, 1, CALL_TIMEOUT_MS) != 1) {
			fprintf(stderr, "scm-ctl-ping: call %ld: %s\n", n + 1, r < 0 ? strerror(-r) : "no answer in 10 s");
			lat[n++] = CALL_TIMEOUT_MS * 1000u;
			rc = 1;
			break;
		}
		scm_message *m = NULL;
		scm_error *e = NULL;
		r = scm_wire_recv(fd, 0, &m, &e);
		lat[n] = now_us() - t0;
		if (r != 0 || m->type != SCM_FRAME_REPLY) {
			fprintf(stderr, "scm-ctl-ping: call %ld: bad answer\n", n + 1);
			rc = 1;
		}
		scm_message_free(m);
		scm_error_free(e);
		if (rc)
			break;
		if (interval)
			usleep((useconds_t)interval * 1000);
	}
	if (n == 0)
		return 1;
	qsort(lat, (size_t)n, sizeof(*lat), cmp);
	printf("n=%ld p50_us=%llu p99_us=%llu max_us=%llu\n", n, (unsigned long long)lat[n / 2],
	       (unsigned long long)lat[(n * 99) / 100], (unsigned long long)lat[n - 1]);
	free(lat);
	return rc;
}
