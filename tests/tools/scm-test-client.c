/* scm-test-client: a client of the echo service for the end-to-end tests.
 * It uses libscm and the generated echo stubs like any program would, plus
 * a raw mode that sends hand-made frames to probe scmd's defences.
 *
 *   scm-test-client hold N              open N channels to echo, report, wait for stdin EOF
 *   scm-test-client async N             N asynchronous echo calls on one channel
 *   scm-test-client burst N             the same, all sent before any reply is read
 *   scm-test-client crash               call echo.crash, expect provider-gone
 *   scm-test-client passfd FILE         read_fd with FILE passed as an fd
 *   scm-test-client claim LABEL         connect with a request that claims another identity
 *   scm-test-client raw KIND            send a malformed frame to the endpoint, report
 *   scm-test-client flood N             N connect requests without reading replies
 *   scm-test-client loop N SERVICE      connect to SERVICE and close, N times over
 *   scm-test-client pings STOPFILE [K]  until STOPFILE exists: ping one channel; the
 *                                       longest round (a provider's handover as a
 *                                       client sees it), and the median of the K
 *                                       longest (K restarts: the typical one);
 *                                       $PINGS_LOG: "START_US LENGTH_US" of each round
 *                                       over 1 ms (CLOCK_MONOTONIC)
 *   scm-test-client recover STOPFILE    greet, then until STOPFILE exists ping one channel,
 *                                       then greet again on it: what failed, the first
 *                                       call answered after a failure ("answered again
 *                                       END"), the rounds over 1 ms ("round START END
 *                                       ok|failed"; CLOCK_REALTIME us: a test places a
 *                                       crash against them); $RECOVER_GO=FILE: the
 *                                       pings start once FILE exists
 *   scm-test-client recover-idle GOFILE greet, then read nothing until GOFILE exists (a
 *                                       crash and recovery meanwhile), then ping and greet
 *                                       on the same channel: "ping ok" or "ping failed ..."
 *   scm-test-client churn STOPFILE      until STOPFILE exists: ping on a channel held
 *                                       throughout, and connect, ping, close a new one;
 *                                       reports calls, failures and the longest call
 *                                       ($SCM_CHURN_ROUNDS=FILE: rounds over 1 ms, start and length)
 *
 * The endpoint comes from $SCM_ENDPOINT. Exit 0 when the expected thing
 * happened, 1 otherwise; what happened is printed on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "scm-internal/wire.h"
#include "scm/echo-client.h"
#include "scm/macro.h"

static int fail_chain(const char *what, scm_error *e)
{
	printf("%s: %s [%s]\n", what, e && e->message ? e->message : "?", scm_code_name(e ? e->code : 0));
	for (scm_error *x = e ? e->cause : NULL; x; x = x->cause)
		printf("  <- %s [%s]\n", x->message, scm_code_name(x->code));
	scm_error_free(e);
	return 1;
}

static int raw_socket(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", getenv("SCM_ENDPOINT"));
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("connect: %m\n");
		exit(1);
	}
	return fd;
}

static void wait_stdin(void)
{
	char buf[64];
	while (read(0, buf, sizeof(buf)) > 0)
		;
}

static int do_hold(int n)
{
	scm_channel **chs = calloc((size_t)n, sizeof(*chs));
	int k;
	for (k = 0; k < n; k++) {
		scm_error *e = NULL;
		if (scm_connect("echo", &chs[k], &e) != 0) {
			printf("opened %d\n", k);
			fail_chain("connect", e);
			break;
		}
	}
	if (k == n)
		printf("opened %d\n", k);
	fflush(stdout);
	wait_stdin();
	for (int i = 0; i < k; i++)
		scm_channel_free(chs[i]);
	free(chs);
	return k == n ? 0 : 1;
}

struct tally {
	int ok, bad;
};

static void on_reply(scm_channel *ch, scm_message *reply, const scm_error *err, void *ud)
{
	struct tally *t = ud;
	if (reply && reply->bin_len == 8)
		t->ok++;
	else
		t->bad++;
}

static int do_async(int n, bool burst)
{
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	struct tally t = { 0, 0 };
	if (scm_connect("echo", &ch, &e) != 0)
		return fail_chain("connect", e);
	for (int i = 0; i < n; i++) {
		char buf[8];
		memcpy(buf, &i, sizeof(i));
		memcpy(buf + 4, "ping", 4);
		if (scm_call_async(ch, SCM_ECHO_ECHO, NULL, buf, 8, NULL, 0, on_reply, &t, &e) != 0)
			return fail_chain("call_async", e);
		/* Keep the provider's queue from filling: drain as we go. */
		if (!burst && scm_channel_pending(ch) > 32) {
			struct pollfd p = { scm_channel_fd(ch), POLLIN, 0 };
			poll(&p, 1, 5000);
			if (scm_channel_dispatch(ch, &e) != 0)
				return fail_chain("dispatch", e);
		}
	}
	while (scm_channel_pending(ch) > 0) {
		struct pollfd p = { scm_channel_fd(ch), POLLIN, 0 };
		if (poll(&p, 1, 5000) <= 0)
			break;
		if (scm_channel_dispatch(ch, &e) != 0)
			return fail_chain("dispatch", e);
	}
	printf("replies %d ok %d bad\n", t.ok, t.bad);
	scm_channel_free(ch);
	return t.ok == n ? 0 : 1;
}

static int do_crash(void)
{
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	if (scm_connect("echo", &ch, &e) != 0)
		return fail_chain("connect", e);
	int r = scm_echo_crash(ch, &e);
	printf("crash returned %s\n", scm_code_name(r));
	fail_chain("error", e);
	e = NULL;
	/* Later calls fail the same way, at once. */
	r = scm_echo_ping(ch, &e);
	printf("ping after crash returned %s\n", scm_code_name(r));
	scm_error_free(e);
	scm_channel_free(ch);
	return r == SCM_E_PROVIDER_GONE ? 0 : 1;
}

static int do_passfd(const char *path)
{
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	void *data = NULL;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || scm_connect("echo", &ch, &e) != 0)
		return fail_chain("connect", e);
	if (scm_echo_read_fd(ch, fd, 64, &data, &len, &e) != 0)
		return fail_chain("read_fd", e);
	printf("read %zu bytes: %.*s\n", len, (int)len, (char *)data);
	free(data);
	scm_channel_free(ch);
	return 0;
}

/* The request carries every way of claiming to be someone else that a
 * careless broker might honour; the grant must still name our endpoint. */
static int do_claim(const char *label)
{
	int fd = raw_socket();
	char *req;
	asprintf(&req, "{\"service\":\"echo\",\"caller\":\"%s\",\"endpoint\":\"%s\",\"uid\":0,\"pid\":1,\"as\":\"%s\"}",
		 label, label, label);
	scm_wire_send(fd, 0, SCM_FRAME_CALL, 0, 1, 1, req, strlen(req), NULL, 0, NULL, 0);
	scm_message *m = NULL;
	scm_error *e = NULL;
	if (scm_wire_recv(fd, 0, &m, &e) != 0)
		return fail_chain("recv", e);
	if (m->type == SCM_FRAME_ERROR)
		return fail_chain("connect", scm_message_error(m));
	scm_channel *ch = NULL;
	scm_channel_from_fd(scm_message_steal_fd(m, 0), 0, "echo", &ch);
	char *caller = NULL;
	uint64_t uid;
	int64_t pid;
	if (scm_echo_whoami(ch, &caller, &uid, &pid, NULL, &e) != 0)
		return fail_chain("whoami", e);
	printf("caller=%s uid=%llu pid=%lld\n", caller, (unsigned long long)uid, (long long)pid);
	int ok = strcmp(caller, label) != 0 && pid == getpid();
	free(caller);
	scm_channel_free(ch);
	scm_message_free(m);
	return ok ? 0 : 1;
}

static int do_raw(const char *kind)
{
	int fd = raw_socket();
	uint8_t buf[512] = { 0 };
	struct scm_wire_hdr h = { SCM_WIRE_MAGIC, SCM_WIRE_VERSION, SCM_FRAME_CALL, 0, 1, 1, 0, 0 };
	size_t len = sizeof(h);
	int fds[SCM_FDS_MAX];
	size_t n_fds = 0;

	if (strcmp(kind, "short") == 0)
		len = 7;
	else if (strcmp(kind, "magic") == 0)
		h.magic = 0xdeadbeef;
	else if (strcmp(kind, "version") == 0)
		h.version = 9;
	else if (strcmp(kind, "type") == 0)
		h.type = 77;
	else if (strcmp(kind, "lengths") == 0)
		h.json_len = 1000; /* more than is sent */
	else if (strcmp(kind, "json") == 0) {
		const char *j = "{\"service\": \"echo\", ";
		h.json_len = (uint32_t)strlen(j);
		memcpy(buf + sizeof(h), j, h.json_len);
		len += h.json_len;
	} else if (strcmp(kind, "deep") == 0) {
		h.json_len = 200;
		for (int i = 0; i < 100; i++) {
			buf[sizeof(h) + i] = '[';
			buf[sizeof(h) + 100 + i] = ']';
		}
		len += 200;
	} else if (strcmp(kind, "utf8") == 0) {
		const char *j = "{\"service\":\"\xc3\x28\"}";
		h.json_len = (uint32_t)strlen(j);
		memcpy(buf + sizeof(h), j, h.json_len);
		len += h.json_len;
	} else if (strcmp(kind, "fds") == 0) {
		for (n_fds = 0; n_fds < SCM_FDS_MAX; n_fds++)
			fds[n_fds] = 0;
		const char *j = "{\"service\":\"echo\"}";
		h.json_len = (uint32_t)strlen(j);
		memcpy(buf + sizeof(h), j, h.json_len);
		len += h.json_len;
		/* one more than allowed, sent by hand */
		union { struct cmsghdr a; char b[CMSG_SPACE(sizeof(int) * (SCM_FDS_MAX + 1))]; } ctl = { 0 };
		struct iovec iov = { buf, len };
		memcpy(buf, &h, sizeof(h));
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (SCM_FDS_MAX + 1));
		memset(CMSG_DATA(c), 0, sizeof(int) * (SCM_FDS_MAX + 1));
		sendmsg(fd, &mh, 0);
		goto read_answer;
	} else if (strcmp(kind, "oversized") == 0) {
		size_t big = SCM_FRAME_MAX + 4096;
		uint8_t *b = calloc(1, big);
		int sz = 4 * 1024 * 1024;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		h.json_len = (uint32_t)(big - sizeof(h));
		memcpy(b, &h, sizeof(h));
		if (send(fd, b, big, 0) < 0)
			printf("send: %m\n");
		free(b);
		goto read_answer;
	} else {
		printf("unknown kind %s\n", kind);
		return 2;
	}
	memcpy(buf, &h, sizeof(h));
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	(void)n_fds;
	(void)fds;
	sendmsg(fd, &mh, 0);
read_answer:;
	scm_message *m = NULL;
	scm_error *e = NULL;
	int r = scm_wire_recv(fd, 0, &m, &e);
	if (r == 0 && m->type == SCM_FRAME_ERROR) {
		scm_error *x = scm_message_error(m);
		printf("error: %s <- %s\n", x->message, x->cause ? x->cause->message : "");
		scm_error_free(x);
		scm_message_free(m);
		r = scm_wire_recv(fd, 0, &m, &e);
	}
	printf("then: %s\n", r == 1 ? "closed" : "still open");
	scm_error_free(e);
	return r == 1 ? 0 : 1;
}

static int do_flood(int n)
{
	int fd = raw_socket();
	const char *j = "{\"service\":\"echo\"}";
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	int sent = 0;
	for (int i = 0; i < n; i++) {
		if (scm_wire_send(fd, MSG_DONTWAIT, SCM_FRAME_CALL, 0, (uint32_t)i + 1, 1, j, strlen(j), NULL, 0, NULL, 0) < 0)
			break;
		sent++;
	}
	/* Do not read: scmd must bound what it holds for us, then drop us. */
	struct pollfd p = { fd, POLLRDHUP, 0 };
	poll(&p, 1, 10000);
	printf("sent %d, dropped %s\n", sent, (p.revents & (POLLRDHUP | POLLHUP)) ? "yes" : "no");
	return 0;
}

/* A client that connects in a loop: what the audit trail must absorb. */
static int do_loop(int n, const char *service)
{
	int ok = 0, refused = 0;
	for (int i = 0; i < n; i++) {
		scm_channel *ch = NULL;
		scm_error *e = NULL;
		if (scm_connect(service, &ch, &e) == 0)
			ok++;
		else
			refused++;
		scm_channel_free(ch);
		scm_error_free(e);
	}
	printf("connected %d, refused %d\n", ok, refused);
	return 0;
}

static uint64_t usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* What a client sees across scmd's restarts in place: every connect goes
 * through scmd, every ping on the held channel does not. Nothing may
 * fail; the longest round (connect + ping + close) is the blackout a
 * client saw. */
static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int do_churn(const char *stop)
{
	scm_channel *held = NULL;
	scm_error *e = NULL;
	unsigned long calls = 0, failed = 0;
	uint64_t max_us = 0;
	size_t n = 0, cap = 1 << 20;
	uint32_t *rounds = calloc(cap, sizeof(uint32_t));
	/* $SCM_CHURN_ROUNDS: each round over 1 ms as "START_US DURATION_US"
	 * (CLOCK_MONOTONIC), for the restart bench to tell a switch's rounds */
	const char *rp = getenv("SCM_CHURN_ROUNDS");
	FILE *rf = rp && *rp ? fopen(rp, "we") : NULL;
	if (scm_connect("echo", &held, &e) != 0)
		return fail_chain("connect", e);
	printf("started\n");
	fflush(stdout);
	while (access(stop, F_OK) != 0) {
		uint64_t t0 = usec();
		scm_channel *ch = NULL;
		if (scm_echo_ping(held, &e) != 0 || scm_connect("echo", &ch, &e) != 0 || scm_echo_ping(ch, &e) != 0) {
			failed++;
			_cleanup_free_ char *t = scm_error_text(e);
			printf("failed: %s\n", t ? t : "?");
			scm_error_free(e);
			e = NULL;
		}
		scm_channel_free(ch);
		uint64_t dt = usec() - t0;
		if (dt > max_us)
			max_us = dt;
		if (rf && dt > 1000)
			fprintf(rf, "%llu %llu\n", (unsigned long long)t0, (unsigned long long)dt);
		if (rounds && n < cap)
			rounds[n++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		calls += 3;
	}
	scm_channel_free(held);
	if (rf)
		fclose(rf);
	uint32_t p99 = 0;
	if (rounds && n) {
		qsort(rounds, n, sizeof(uint32_t), cmp_u32);
		p99 = rounds[(n * 99) / 100];
	}
	free(rounds);
	printf("calls %lu failed %lu longest_us %llu p99_us %u\n", calls, failed, (unsigned long long)max_us, p99);
	return failed ? 1 : 0;
}

static uint64_t rt_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int greet(scm_channel *ch, const char *what)
{
	scm_error *e = NULL;
	char *reply = NULL;
	if (scm_echo_greet(ch, "r", &reply, &e) != 0)
		return fail_chain(what, e);
	printf("%s %s\n", what, reply);
	free(reply);
	return 0;
}

/* A channel to echo, greeted once, and "started" said: NULL (said why)
 * when either failed. */
static scm_channel *echo_started(void)
{
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	if (scm_connect("echo", &ch, &e) != 0) {
		fail_chain("connect", e);
		return NULL;
	}
	if (greet(ch, "first") != 0) {
		scm_channel_free(ch);
		return NULL;
	}
	printf("started\n");
	fflush(stdout);
	return ch;
}

/* One channel held across a provider's crash and recovery: the pings
 * may fail only with provider-gone (the call in progress at the crash),
 * and the channel must go on; the last greet's count tells whether the
 * provider's state came back. */
static int do_recover(const char *stop)
{
	scm_error *e = NULL;
	unsigned long calls = 0, failed = 0, after = 0;
	scm_channel *ch = echo_started();
	if (!ch)
		return 1;
	/* RECOVER_GO=FILE: no call until FILE exists (a test does something
	 * to scmd and the provider first) */
	for (const char *go = getenv("RECOVER_GO"); go && access(go, F_OK) != 0;)
		usleep(10000);
	for (;; calls++) {
		if ((calls & 15) == 0 && access(stop, F_OK) == 0)
			break;
		uint64_t t0 = rt_usec();
		int r = scm_echo_ping(ch, &e);
		uint64_t t1 = rt_usec();
		if (r != 0) {
			failed++;
			after = 0;
			_cleanup_free_ char *t = scm_error_text(e);
			printf("failed [%s]: %s\n", scm_code_name(r), t ? t : "?");
			scm_error_free(e);
			e = NULL;
			if (r != SCM_E_PROVIDER_GONE || scm_channel_pending(ch) || failed > 5)
				break;
		} else if (after++ == 0 && failed)
			printf("answered again %llu\n", (unsigned long long)t1);
		if (t1 - t0 > 1000)
			printf("round %llu %llu %s\n", (unsigned long long)t0, (unsigned long long)t1,
			       r ? "failed" : "ok");
		fflush(stdout);
	}
	int r = greet(ch, "last");
	scm_channel_free(ch);
	printf("calls %lu failed %lu after %lu\n", calls, failed, after);
	return r;
}

/* A channel left unread across a provider's crash and recovery: scmd's
 * "provider.recovering" waits in it, queued before the next call is sent,
 * and must not fail that call (libscm compares its time with the call's). */
static int do_recover_idle(const char *go)
{
	scm_error *e = NULL;
	scm_channel *ch = echo_started();
	if (!ch)
		return 1;
	while (access(go, F_OK) != 0)
		usleep(20000);
	int r = scm_echo_ping(ch, &e);
	if (r != 0) {
		_cleanup_free_ char *t = scm_error_text(e);
		printf("ping failed [%s]: %s\n", scm_code_name(r), t ? t : "?");
		scm_error_free(e);
	} else
		printf("ping ok\n");
	if (r == 0)
		r = greet(ch, "last");
	scm_channel_free(ch);
	return r != 0;
}

/* Pings on one channel as fast as it answers: across `service restart`
 * the longest round is the time from the old process' last reply to the
 * new one's first (plus one round trip). */
static int do_pings(const char *stop, size_t k)
{
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	unsigned long calls = 0, failed = 0;
	uint64_t max_us = 0, max_at = 0;
	size_t n = 0, cap = 1 << 22;
	uint32_t *rounds = calloc(cap, sizeof(uint32_t));
	const char *logp = getenv("PINGS_LOG");
	FILE *log = logp ? fopen(logp, "we") : NULL;
	if (scm_connect("echo", &ch, &e) != 0)
		return fail_chain("connect", e);
	printf("started\n");
	fflush(stdout);
	for (;;) {
		if ((calls & 63) == 0 && access(stop, F_OK) == 0)
			break;
		uint64_t t0 = usec();
		if (scm_echo_ping(ch, &e) != 0) {
			failed++;
			_cleanup_free_ char *t = scm_error_text(e);
			printf("failed: %s\n", t ? t : "?");
			scm_error_free(e);
			e = NULL;
		}
		uint64_t dt = usec() - t0;
		if (dt > max_us) {
			max_us = dt;
			max_at = t0;
		}
		if (log && dt > 1000)
			fprintf(log, "%llu %llu\n", (unsigned long long)t0, (unsigned long long)dt);
		if (rounds && n < cap)
			rounds[n++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		calls++;
	}
	scm_channel_free(ch);
	if (log)
		fclose(log);
	uint32_t top = 0;
	if (rounds && k && n >= k) {
		qsort(rounds, n, sizeof(uint32_t), cmp_u32);
		top = rounds[n - k + k / 2]; /* the median of the k longest */
	}
	free(rounds);
	printf("calls %lu failed %lu longest_us %llu top%zu_median_us %u longest_at_us %llu\n", calls, failed,
	       (unsigned long long)max_us, k, top, (unsigned long long)max_at);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (!getenv("SCM_ENDPOINT")) {
		fprintf(stderr, "set SCM_ENDPOINT\n");
		return 2;
	}
	const char *c = argv[1];
	if (strcmp(c, "hold") == 0 && argc == 3)
		return do_hold(atoi(argv[2]));
	if (strcmp(c, "async") == 0 && argc == 3)
		return do_async(atoi(argv[2]), false);
	if (strcmp(c, "burst") == 0 && argc == 3)
		return do_async(atoi(argv[2]), true); /* no reading until all are sent */
	if (strcmp(c, "crash") == 0)
		return do_crash();
	if (strcmp(c, "passfd") == 0 && argc == 3)
		return do_passfd(argv[2]);
	if (strcmp(c, "claim") == 0 && argc == 3)
		return do_claim(argv[2]);
	if (strcmp(c, "raw") == 0 && argc == 3)
		return do_raw(argv[2]);
	if (strcmp(c, "flood") == 0 && argc == 3)
		return do_flood(atoi(argv[2]));
	if (strcmp(c, "pings") == 0 && (argc == 3 || argc == 4))
		return do_pings(argv[2], argc == 4 ? (size_t)atoi(argv[3]) : 0);
	if (strcmp(c, "recover") == 0 && argc == 3)
		return do_recover(argv[2]);
	if (strcmp(c, "recover-idle") == 0 && argc == 3)
		return do_recover_idle(argv[2]);
	if (strcmp(c, "churn") == 0 && argc == 3)
		return do_churn(argv[2]);
	if (strcmp(c, "loop") == 0 && argc == 4)
		return do_loop(atoi(argv[2]), argv[3]);
	fprintf(stderr, "bad usage\n");
	return 2;
}
