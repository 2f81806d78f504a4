/* test_gfx_rfb.c: the RFB wire format (a table of client messages, good,
 * short and hostile) and live sessions against the server over TCP:
 * 3.3 and 3.8 handshakes, pixel format negotiation with the padding byte
 * at 0xFF, incremental updates carrying only damage, key events reaching
 * the focused client, and a hostile viewer dropped without harm. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "rfb.h"
#include "server.h"

static const struct {
	const char *name;
	const char *bytes;
	size_t len;
	int want;
	size_t used;
} msg_cases[] = {
	{ "empty", "", 0, -EAGAIN, 0 },
	{ "pixel format 32bpp", "\0\0\0\0\x20\x18\0\1\0\xff\0\xff\0\xff\x10\x08\0\0\0\0", 20, 0, 20 },
	{ "pixel format short", "\0\0\0\0\x20\x18\0\1", 8, -EAGAIN, 0 },
	{ "pixel format colour map", "\0\0\0\0\x08\x08\0\0\0\x07\0\x07\0\x03\0\3\6\0\0\0", 20, GFX_E_INVALID, 0 },
	{ "pixel format 24bpp", "\0\0\0\0\x18\x18\0\1\0\xff\0\xff\0\xff\x10\x08\0\0\0\0", 20, GFX_E_INVALID, 0 },
	{ "pixel format shift out", "\0\0\0\0\x10\x10\0\1\0\xff\0\xff\0\xff\x10\x08\0\0\0\0", 20, GFX_E_INVALID, 0 },
	{ "pixel format max not 2^n-1", "\0\0\0\0\x20\x18\0\1\0\xfe\0\xff\0\xff\x10\x08\0\0\0\0", 20, GFX_E_INVALID, 0 },
	{ "encodings raw", "\x02\0\0\x02\0\0\0\0\xff\xff\xff\x21", 12, 0, 12 },
	{ "encodings short list", "\x02\0\0\x02\0\0\0\0", 8, -EAGAIN, 0 },
	{ "encodings too many", "\x02\0\xff\xff", 4, GFX_E_INVALID, 0 },
	{ "update request", "\x03\x01\0\0\0\0\x01\0\x01\0", 10, 0, 10 },
	{ "update request short", "\x03\x01\0\0\0\0\x01", 7, -EAGAIN, 0 },
	{ "key", "\x04\x01\0\0\0\0\xff\x0d", 8, 0, 8 },
	{ "pointer", "\x05\x01\0\x10\0\x20", 6, 0, 6 },
	{ "cut text", "\x06\0\0\0\0\0\0\x03" "abc", 11, 0, 11 },
	{ "cut text huge", "\x06\0\0\0\x7f\xff\xff\xff", 8, GFX_E_INVALID, 0 },
	{ "cut text pending", "\x06\0\0\0\0\0\0\x03" "a", 9, -EAGAIN, 0 },
	{ "unknown type", "\x07\0\0\0", 4, GFX_E_INVALID, 0 },
	{ "type 255", "\xff", 1, GFX_E_INVALID, 0 },
};

static void test_msg_table(void **state)
{
	for (size_t i = 0; i < sizeof(msg_cases) / sizeof(msg_cases[0]); i++) {
		gfx_rfb_msg m;
		size_t used = 0;
		char err[160] = "";
		int r = gfx_rfb_parse_msg((const uint8_t *)msg_cases[i].bytes, msg_cases[i].len, &m, &used, err,
					  sizeof(err));
		if (r != msg_cases[i].want)
			fail_msg("%s: got %d want %d (%s)", msg_cases[i].name, r, msg_cases[i].want, err);
		if (r == 0 && used != msg_cases[i].used)
			fail_msg("%s: used %zu want %zu", msg_cases[i].name, used, msg_cases[i].used);
		if (r == GFX_E_INVALID && err[0] == '\0')
			fail_msg("%s: refused without a message", msg_cases[i].name);
	}
}

static void test_versions(void **state)
{
	int minor = 0;
	assert_int_equal(gfx_rfb_parse_version((const uint8_t *)"RFB 003.008\n", &minor), 0);
	assert_int_equal(minor, 8);
	assert_int_equal(gfx_rfb_parse_version((const uint8_t *)"RFB 003.003\n", &minor), 0);
	assert_int_equal(minor, 3);
	assert_int_equal(gfx_rfb_parse_version((const uint8_t *)"RFB 003.005\n", &minor), 0);
	assert_int_equal(minor, 3);
	assert_int_equal(gfx_rfb_parse_version((const uint8_t *)"RFB 003.889\n", &minor), 0);
	assert_int_equal(minor, 8);
	assert_int_equal(gfx_rfb_parse_version((const uint8_t *)"RFB 004.001\n", &minor), GFX_E_INVALID);
	assert_int_equal(gfx_rfb_parse_version((const uint8_t *)"HTTP/1.1 200", &minor), GFX_E_INVALID);
	assert_int_equal(gfx_rfb_parse_version((const uint8_t *)"RFB 003.0x8\n", &minor), GFX_E_INVALID);
}

static void test_pack(void **state)
{
	uint32_t px[2] = { 0xFF102030, 0xFFFFFFFF };
	uint8_t out[8];
	/* noVNC's format: R at byte 0; its raw decoder takes byte 3 as alpha. */
	gfx_pixfmt novnc = { 32, 24, 0, 1, 255, 255, 255, 0, 8, 16 };
	assert_int_equal(gfx_rfb_pack(&novnc, px, 1, out), 4);
	assert_memory_equal(out, "\x10\x20\x30\xff", 4);
	gfx_pixfmt rgb565be = { 16, 16, 1, 1, 31, 63, 31, 11, 5, 0 };
	assert_int_equal(gfx_rfb_pack(&rgb565be, px, 2, out), 4);
	assert_memory_equal(out + 2, "\xff\xff", 2);
	uint16_t v = (uint16_t)(out[0] << 8 | out[1]);
	assert_int_equal(v >> 11, (0x10 * 31 + 127) / 255);
	assert_int_equal(gfx_rfb_pack(&gfx_pixfmt_desktop, px, 1, out), 4);
	assert_memory_equal(out, "\x30\x20\x10\xff", 4);
}

/* ---- live sessions ---------------------------------------------------- */

typedef struct {
	gfx_server *s;
	gfx_client *a, *b;
} fixture;

static int connect_to(gfx_server *s)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(gfx_rfb_port(gfx_server_rfb(s))),
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

/* Server sends nothing more within a few rounds of dispatch. */
static bool quiet(gfx_server *s, int fd)
{
	for (int i = 0; i < 5; i++) {
		gfx_server_dispatch(s);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 20) > 0)
			return false;
	}
	return true;
}

static void send_all(int fd, const void *b, size_t n)
{
	assert_int_equal(send(fd, b, n, MSG_NOSIGNAL), (ssize_t)n);
}

static int setup(void **state)
{
	static fixture f;
	gfx_server_config cfg = { .width = 320, .height = 200, .background = 0x000040, .rfb = true };
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

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void test_session_33(void **state)
{
	fixture *f = *state;
	int fd = connect_to(f->s);
	uint8_t b[64];
	assert_int_equal(pump(f->s, fd, b, 12), 12);
	assert_memory_equal(b, "RFB 003.008\n", 12);
	send_all(fd, "RFB 003.003\n", 12);
	assert_int_equal(pump(f->s, fd, b, 4), 4);
	assert_memory_equal(b, "\0\0\0\1", 4); /* one uint32: None */
	send_all(fd, "\1", 1);
	assert_int_equal(pump(f->s, fd, b, 24), 24);
	assert_int_equal(be16(b), 320);
	assert_int_equal(be16(b + 2), 200);
	assert_int_equal(b[4], 32); /* bpp */
	uint32_t nl = (uint32_t)b[20] << 24 | (uint32_t)b[21] << 16 | (uint32_t)b[22] << 8 | b[23];
	assert_true(nl < 64);
	assert_int_equal(pump(f->s, fd, b, nl), nl);
	/* noVNC's pixel format, then a full update of one row through a. */
	gfx_overlay *oa = gfx_comp_find(gfx_server_compositor(f->s), gfx_client_id(f->a));
	send_all(fd, "\0\0\0\0\x20\x18\0\1\0\xff\0\xff\0\xff\0\x08\x10\0\0\0", 20);
	uint8_t req[10] = { 3, 0, 0, 0, (uint8_t)(oa->y >> 8), (uint8_t)oa->y, 320 >> 8, 320 & 0xff, 0, 1 };
	send_all(fd, req, 10);
	uint8_t upd[4 + 12 + 320 * 4];
	assert_int_equal(pump(f->s, fd, upd, sizeof(upd)), sizeof(upd));
	assert_int_equal(upd[0], 0);
	assert_int_equal(be16(upd + 2), 1);
	assert_int_equal(be16(upd + 8), 320);
	assert_memory_equal(upd + 12, "\0\0\0\0", 4); /* raw */
	const uint8_t *p = upd + 16 + (size_t)oa->x * 4;
	assert_memory_equal(p, "\x10\x20\x30\xff", 4);
	assert_memory_equal(upd + 16, "\0\0\x40\xff", 4); /* background, padding 0xFF */
	close(fd);
}

static void test_session_38_incremental_and_keys(void **state)
{
	fixture *f = *state;
	int fd = connect_to(f->s);
	uint8_t b[64];
	assert_int_equal(pump(f->s, fd, b, 12), 12);
	send_all(fd, "RFB 003.008\n", 12);
	assert_int_equal(pump(f->s, fd, b, 2), 2);
	assert_memory_equal(b, "\1\1", 2);
	send_all(fd, "\1", 1);
	assert_int_equal(pump(f->s, fd, b, 4), 4);
	assert_memory_equal(b, "\0\0\0\0", 4); /* SecurityResult OK */
	send_all(fd, "\1", 1);
	assert_int_equal(pump(f->s, fd, b, 24), 24);
	uint32_t nl = b[23];
	pump(f->s, fd, b, nl);
	/* Full frame first, then an incremental request waits for damage. */
	send_all(fd, "\x03\0\0\0\0\0\x01\x40\0\xc8", 10);
	static uint8_t full[4 + 12 + 320 * 200 * 4];
	assert_int_equal(pump(f->s, fd, full, sizeof(full)), sizeof(full));
	send_all(fd, "\x03\1\0\0\0\0\x01\x40\0\xc8", 10);
	assert_true(quiet(f->s, fd));
	gfx_surface *sb = gfx_client_surface(f->b);
	sb->pixels[0] = 0xABCDEF;
	gfx_client_present(f->b, &(gfx_rect){ 0, 0, 1, 1 }, 1);
	uint8_t upd[4 + 12 + 4];
	assert_int_equal(pump(f->s, fd, upd, sizeof(upd)), sizeof(upd));
	gfx_overlay *ob = gfx_comp_find(gfx_server_compositor(f->s), gfx_client_id(f->b));
	assert_int_equal(be16(upd + 2), 1);
	assert_int_equal(be16(upd + 4), ob->x);
	assert_int_equal(be16(upd + 6), ob->y);
	assert_int_equal(be16(upd + 8), 1);
	assert_int_equal(be16(upd + 10), 1);
	assert_memory_equal(upd + 16, "\xef\xcd\xab\xff", 4);
	/* Keys go to the focused client (alpha, the first) only; a click on
	 * beta moves the focus and the next key goes there. */
	gfx_input_event ev[4];
	send_all(fd, "\x04\x01\0\0\0\0\0\x61", 8);
	assert_true(quiet(f->s, fd));
	assert_int_equal(gfx_client_take_input(f->a, ev, 4), 1);
	assert_int_equal(ev[0].keysym, 'a');
	assert_int_equal(gfx_client_take_input(f->b, ev, 4), 0);
	uint8_t click[6] = { 5, 1, (uint8_t)((ob->x + 3) >> 8), (uint8_t)(ob->x + 3), (uint8_t)((ob->y + 4) >> 8),
			     (uint8_t)(ob->y + 4) };
	send_all(fd, click, 6);
	click[1] = 0;
	send_all(fd, click, 6);
	send_all(fd, "\x04\x01\0\0\0\0\0\x62", 8);
	quiet(f->s, fd); /* no update was asked for: only input is handled */
	assert_int_equal(gfx_client_take_input(f->a, ev, 4), 0);
	assert_int_equal(gfx_client_take_input(f->b, ev, 4), 3);
	assert_int_equal(ev[0].x, 3);
	assert_int_equal(ev[0].y, 4);
	assert_int_equal(ev[2].keysym, 'b');
	close(fd);
}

static void test_hostile_viewer_dropped(void **state)
{
	fixture *f = *state;
	uint8_t b[64];
	int bad = connect_to(f->s);
	pump(f->s, bad, b, 12);
	send_all(bad, "GET / HTTP/1.1\r\n", 16);
	assert_int_equal(pump(f->s, bad, b, 1), 0); /* closed on us */
	close(bad);
	bad = connect_to(f->s);
	pump(f->s, bad, b, 12);
	send_all(bad, "RFB 003.008\n", 12);
	pump(f->s, bad, b, 2);
	send_all(bad, "\2", 1); /* VNC authentication: not offered */
	size_t n = pump(f->s, bad, b, 64);
	assert_true(n >= 8);
	assert_memory_equal(b, "\0\0\0\1", 4); /* SecurityResult failed, with a reason */
	close(bad);
	/* A viewer in the normal phase that sends garbage is cut. */
	bad = connect_to(f->s);
	pump(f->s, bad, b, 12);
	send_all(bad, "RFB 003.003\n", 12);
	pump(f->s, bad, b, 4);
	send_all(bad, "\1", 1);
	pump(f->s, bad, b, 24);
	pump(f->s, bad, b, b[23]);
	send_all(bad, "\x09garbage", 8);
	assert_int_equal(pump(f->s, bad, b, 1), 0);
	close(bad);
	/* The server still serves. */
	int good = connect_to(f->s);
	assert_int_equal(pump(f->s, good, b, 12), 12);
	close(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_msg_table),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_pack),
		cmocka_unit_test_setup_teardown(test_session_33, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_38_incremental_and_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_viewer_dropped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
