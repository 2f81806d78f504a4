/* test_gfx_rfb.c: the websocket request line the proxy checks itself (a
 * table: good, short and hostile lines; the token compared as a whole
 * query parameter), and live sessions against libvncserver through the
 * engine: VNC authentication is the only security type offered, None is
 * refused with no ServerInit, a websocket without the token gets 403
 * before any upgrade, one with it gets 101. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "rfb.h"
#include "server.h"
#include "scm/macro.h"

/* The failure's message ("" when none); err is reset before each call. */
#define MSG(e) ((e) && (e)->message ? (e)->message : "")
#define FRESH(e) (scm_error_free(e), (e) = NULL, &(e))

static const struct {
	const char *name, *line;
	int want;
	const char *path;
} req_cases[] = {
	{ "empty", "", -EAGAIN, NULL },
	{ "partial GET", "GE", -EAGAIN, NULL },
	{ "partial line", "GET /websockify?token=a HTTP/1.1", -EAGAIN, NULL },
	{ "good", "GET /websockify?token=abc HTTP/1.1\r\nHost: x\r\n", 0, "/websockify?token=abc" },
	{ "bare LF", "GET / HTTP/1.0\n", 0, "/" },
	{ "POST", "POST / HTTP/1.1\r\n", GFX_E_INVALID, NULL },
	{ "not HTTP at all", "RFB 003.008\n", GFX_E_INVALID, NULL },
	{ "TLS hello", "\x16\x03\x01", GFX_E_INVALID, NULL },
	{ "no version", "GET /\r\n", GFX_E_INVALID, NULL },
	{ "HTTP/2", "GET / HTTP/2\r\n", GFX_E_INVALID, NULL },
	{ "relative target", "GET websockify HTTP/1.1\r\n", GFX_E_INVALID, NULL },
	{ "empty target", "GET  HTTP/1.1\r\n", GFX_E_INVALID, NULL },
	{ "control byte", "GET /a\x01b HTTP/1.1\r\n", GFX_E_INVALID, NULL },
};

static void test_request_table(void **state)
{
	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		char path[256] = "";
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		int r = gfx_ws_parse_request((const uint8_t *)req_cases[i].line, strlen(req_cases[i].line), path,
					     sizeof(path), FRESH(err));
		if (r != req_cases[i].want)
			fail_msg("%s: got %d (%s), want %d", req_cases[i].name, r, MSG(err), req_cases[i].want);
		if (r == 0)
			assert_string_equal(path, req_cases[i].path);
		if (r == GFX_E_INVALID)
			assert_non_null(err);
	}
	/* A target longer than the buffer is an error, not a truncation. */
	char path[8];
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	const char *l = "GET /0123456789 HTTP/1.1\r\n";
	assert_int_equal(gfx_ws_parse_request((const uint8_t *)l, strlen(l), path, sizeof(path), FRESH(err)),
			 GFX_E_INVALID);
	/* No line end within the limit. */
	static uint8_t big[GFX_WS_REQUEST_MAX + 10];
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	assert_int_equal(gfx_ws_parse_request(big, sizeof(big), path, sizeof(path), FRESH(err)), GFX_E_INVALID);
}

static void test_token(void **state)
{
	assert_true(gfx_ws_token_matches("/websockify?token=abc", "abc"));
	assert_true(gfx_ws_token_matches("/w?x=1&token=abc&y=2", "abc"));
	assert_false(gfx_ws_token_matches("/websockify?token=abcd", "abc"));
	assert_false(gfx_ws_token_matches("/websockify?token=ab", "abc"));
	assert_false(gfx_ws_token_matches("/websockify?xtoken=abc", "abc"));
	assert_false(gfx_ws_token_matches("/websockify/token=abc", "abc"));
	assert_false(gfx_ws_token_matches("/websockify?token=", ""));
	assert_false(gfx_ws_token_matches("/websockify", "abc"));
	char a[9], b[9];
	assert_int_equal(gfx_random_secret(a, sizeof(a)), 0);
	assert_int_equal(gfx_random_secret(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), 8);
	assert_string_not_equal(a, b);
}

/* ---- live sessions ---------------------------------------------------- */

typedef struct {
	gfx_server *s;
	gfx_client *a, *b;
} fixture;

static int connect_port(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Runs the server until n bytes arrived on fd (or it closed: returns
 * what came). Waits on both ends with poll, never sleeps blindly. */
static size_t pump(gfx_server *s, int fd, void *buf, size_t n)
{
	size_t got = 0;
	for (int spins = 0; got < n && spins < 2000; spins++) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = gfx_server_fd(s), .events = POLLIN } };
		poll(p, 2, 50);
		gfx_server_dispatch(s);
		if (p[0].revents) {
			ssize_t k = recv(fd, (uint8_t *)buf + got, n - got, MSG_DONTWAIT);
			if (k == 0)
				break;
			if (k > 0)
				got += (size_t)k;
		}
	}
	return got;
}

static void send_all(int fd, const void *b, size_t n)
{
	assert_int_equal(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

static int setup(void **state)
{
	static fixture f;
	gfx_server_config cfg = { .width = 320, .height = 200, .background = 0x000040, .rfb = true,
				  .password = "s3cretpw", .token = "tok123" };
	assert_int_equal(gfx_server_new(&cfg, &f.s), 0);
	assert_int_equal(gfx_client_new(f.s, "alpha", 100, 80, 1, &f.a), 0);
	assert_int_equal(gfx_client_new(f.s, "beta", 100, 80, 1, &f.b), 0);
	gfx_surface *sa = gfx_client_surface(f.a), *sb = gfx_client_surface(f.b);
	for (size_t i = 0; i < 100 * 80; i++) {
		sa->pixels[i] = 0x102030;
		sb->pixels[i] = 0x405060;
	}
	gfx_client_present(f.a, NULL, 0);
	gfx_client_present(f.b, NULL, 0);
	gfx_server_work(f.s, INT64_MAX);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	gfx_server_free(f->s);
	return 0;
}

static void test_only_vnc_auth(void **state)
{
	fixture *f = *state;
	int fd = connect_port(gfx_rfb_port(gfx_server_rfb(f->s)));
	uint8_t b[64];
	assert_int_equal(pump(f->s, fd, b, 12), 12);
	assert_memory_equal(b, "RFB 003.008\n", 12);
	send_all(fd, "RFB 003.008\n", 12);
	assert_int_equal(pump(f->s, fd, b, 2), 2);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[1], 2); /* VNC authentication, and nothing else */
	send_all(fd, "\1", 1);    /* None anyway */
	/* A failure (and maybe its reason), then the end: never a ServerInit. */
	size_t got = pump(f->s, fd, b, sizeof(b));
	assert_true(got < 24 || b[3] == 1);
	close(fd);
	/* RFB 3.3: the server picks; it picks VNC authentication. */
	fd = connect_port(gfx_rfb_port(gfx_server_rfb(f->s)));
	pump(f->s, fd, b, 12);
	send_all(fd, "RFB 003.003\n", 12);
	assert_int_equal(pump(f->s, fd, b, 4), 4);
	assert_memory_equal(b, "\0\0\0\2", 4);
	close(fd);
	assert_int_equal(gfx_rfb_viewers(gfx_server_rfb(f->s)), 0);
	assert_string_equal(gfx_rfb_password(gfx_server_rfb(f->s)), "s3cretpw");
}

static void test_websocket_token(void **state)
{
	fixture *f = *state;
	uint16_t ws = gfx_rfb_ws_port(gfx_server_rfb(f->s));
	const char *hs = "Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
			 "Origin: http://127.0.0.1\r\nSec-WebSocket-Protocol: binary\r\n\r\n";
	char req[512], b[512];
	const char *paths[] = { "/websockify?token=wrong", "/websockify", "/websockify?token=tok1234" };
	for (size_t i = 0; i < 3; i++) {
		int fd = connect_port(ws);
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n%s", paths[i], hs);
		send_all(fd, req, strlen(req));
		memset(b, 0, sizeof(b));
		pump(f->s, fd, b, 12);
		assert_memory_equal(b, "HTTP/1.1 403", 12);
		close(fd);
	}
	int fd = connect_port(ws);
	snprintf(req, sizeof(req), "GET /websockify?token=tok123 HTTP/1.1\r\n%s", hs);
	send_all(fd, req, strlen(req));
	memset(b, 0, sizeof(b));
	pump(f->s, fd, b, 12);
	assert_memory_equal(b, "HTTP/1.1 101", 12);
	close(fd);
	/* A websocket on the RFB port is not let in either. */
	fd = connect_port(gfx_rfb_port(gfx_server_rfb(f->s)));
	snprintf(req, sizeof(req), "GET /websockify?token=tok123 HTTP/1.1\r\n%s", hs);
	send_all(fd, req, strlen(req));
	memset(b, 0, sizeof(b));
	/* libvncserver answers the upgrade and sends its version; our hook
	 * then closes it before any security type: the read ends. */
	pump(f->s, fd, b, sizeof(b) - 1);
	close(fd);
	assert_int_equal(gfx_rfb_refused(gfx_server_rfb(f->s)), 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_table),
		cmocka_unit_test(test_token),
		cmocka_unit_test_setup_teardown(test_only_vnc_auth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_websocket_token, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
