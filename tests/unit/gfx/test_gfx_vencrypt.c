/* test_gfx_vencrypt.c: the VeNCrypt dialogue the proxy's TLS worker
 * speaks before libvncserver (vencrypt.c), table-driven: what each
 * configured list offers, what each viewer's answer leads to, the
 * replay libvncserver gets; and the security-type list parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vencrypt.h"

#define MSG(e) ((e) && (e)->message ? (e)->message : "")

static void test_lists(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out; /* out NULL: refused; else its message part */
		const char *err;
	} t[] = {
		{ "VncAuth", "VncAuth", NULL },
		{ "x509vnc,tlsvnc,VNCAUTH", "X509Vnc,TLSVnc,VncAuth", NULL },
		{ "TLSVnc", "TLSVnc", NULL },
		{ "", NULL, "\"\" unknown" },
		{ "TLSVnc,", NULL, "\"\" unknown" },
		{ "TLSPlain", NULL, "\"TLSPlain\" unknown" },
		{ "None", NULL, "\"None\" unknown" },
		{ "TLSVnc,TLSVnc", NULL, "given twice" },
		{ "VncAuth,X509Vnc,TLSVnc,VncAuth", NULL, "given twice" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		gfx_sec_types s;
		scm_error *err = NULL;
		int r = gfx_sec_types_parse(t[i].in, &s, &err);
		if (t[i].out) {
			char buf[64];
			assert_int_equal(r, 0);
			gfx_sec_types_format(&s, buf, sizeof(buf));
			assert_string_equal(buf, t[i].out);
		} else {
			assert_int_equal(r, GFX_E_INVALID);
			assert_non_null(strstr(MSG(err), t[i].err));
		}
		scm_error_free(err);
	}
	static const struct {
		const char *mode;
		bool cert;
		const char *out;
	} m[] = { { "preferred", false, "TLSVnc,VncAuth" }, { "preferred", true, "X509Vnc,TLSVnc,VncAuth" },
		  { "required", false, "X509Vnc,TLSVnc" },  { "off", true, "VncAuth" },
		  { "on", false, NULL } };
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		gfx_sec_types s;
		scm_error *err = NULL;
		int r = gfx_sec_types_for_mode(m[i].mode, m[i].cert, &s, &err);
		if (!m[i].out) {
			assert_int_equal(r, GFX_E_INVALID);
			assert_non_null(strstr(MSG(err), "want required, preferred or off"));
		} else {
			char buf[64];
			assert_int_equal(r, 0);
			gfx_sec_types_format(&s, buf, sizeof(buf));
			assert_string_equal(buf, m[i].out);
		}
		scm_error_free(err);
	}
}

/* A dialogue: the list, what the viewer sends (all at once, then a byte
 * at a time), the state it ends in, what the server sent, and why. */
static const struct {
	const char *list;
	const char *in;
	size_t in_len;
	enum gfx_venc_state end;
	const char *out; /* after "RFB 003.008\n" */
	size_t out_len;
	uint32_t subtype;
	const char *why;
} dialogues[] = {
#define S(x) x, sizeof(x) - 1
	{ "X509Vnc,TLSVnc,VncAuth", S("RFB 003.008\n\x13\x00\x02\x00\x00\x01\x05"), GFX_VENC_TLS,
	  S("\x02\x13\x02\x00\x02\x00\x02\x00\x00\x01\x05\x00\x00\x01\x02\x01"), 261, "" },
	{ "TLSVnc,VncAuth", S("RFB 003.008\n\x13\x00\x02\x00\x00\x01\x02"), GFX_VENC_TLS,
	  S("\x02\x13\x02\x00\x02\x00\x01\x00\x00\x01\x02\x01"), 258, "" },
	{ "VncAuth,TLSVnc", S("RFB 003.007\n\x02"), GFX_VENC_PLAIN, S("\x02\x02\x13"), 0, "" },
	{ "TLSVnc,VncAuth", S("RFB 003.003\n"), GFX_VENC_PLAIN, S(""), 0, "" },
	{ "TLSVnc,VncAuth", S("RFB 003.005\n"), GFX_VENC_PLAIN, S(""), 0, "" },
	{ "TLSVnc,VncAuth", S("RFB 003.889\n\x02"), GFX_VENC_PLAIN, S("\x02\x13\x02"), 0, "" },
	/* required: no plain, no 3.3 */
	{ "X509Vnc,TLSVnc", S("RFB 003.008\n\x02"), GFX_VENC_FAILED,
	  S("\x01\x13\x00\x00\x00\x01\x00\x00\x00\x1fsecurity type 2 was not offered"), 0,
	  "security type 2 was not offered" },
	{ "X509Vnc,TLSVnc", S("RFB 003.007\n\x01"), GFX_VENC_FAILED, S("\x01\x13\x00\x00\x00\x01"), 0,
	  "security type 1 was not offered" },
	{ "TLSVnc", S("RFB 003.003\n"), GFX_VENC_FAILED,
	  S("\x00\x00\x00\x00\x00\x00\x00\x37TLS is required: RFB 3.3 viewers cannot choose VeNCrypt"), 0,
	  "TLS is required" },
	/* garbage */
	{ "TLSVnc", S("GET / HTTP/1"), GFX_VENC_FAILED, S(""), 0, "not an RFB ProtocolVersion" },
	{ "TLSVnc", S("RFB 004.000\n"), GFX_VENC_FAILED, S(""), 0, "RFB version not 3.3 or later" },
	{ "TLSVnc", S("RFB 003.002\n"), GFX_VENC_FAILED, S(""), 0, "RFB version not 3.3 or later" },
	{ "TLSVnc", S("RFB 0x3.008\n"), GFX_VENC_FAILED, S(""), 0, "not an RFB ProtocolVersion" },
	{ "TLSVnc", S("RFB 003.008\n\x13\x00\x01"), GFX_VENC_FAILED, S("\x01\x13\x00\x02\xff"), 0,
	  "VeNCrypt version 0.1" },
	{ "TLSVnc", S("RFB 003.008\n\x13\x00\x02\x00\x00\x01\x05"), GFX_VENC_FAILED,
	  S("\x01\x13\x00\x02\x00\x01\x00\x00\x01\x02\x00"), 0, "VeNCrypt subtype 261 was not offered" },
	{ "TLSVnc,VncAuth", S("RFB 003.008\n\x13\x00\x02\x00\x00\x00\x02"), GFX_VENC_FAILED,
	  S("\x02\x13\x02\x00\x02\x00\x01\x00\x00\x01\x02\x00"), 0, "VeNCrypt subtype 2 was not offered" },
	/* incomplete: waits */
	{ "TLSVnc", S("RFB 003.008\n\x13\x00\x02\x00\x00"), GFX_VENC_SUBTYPE,
	  S("\x01\x13\x00\x02\x00\x01\x00\x00\x01\x02"), 0, "" },
#undef S
};

static void run_one(size_t i, size_t piece)
{
	gfx_sec_types t;
	assert_int_equal(gfx_sec_types_parse(dialogues[i].list, &t, NULL), 0);
	gfx_venc v;
	gfx_venc_init(&v, &t);
	uint8_t out[256];
	size_t out_len = 0, at = 0;
	const uint8_t *in = (const uint8_t *)dialogues[i].in;
	while (at < dialogues[i].in_len) {
		size_t k = dialogues[i].in_len - at < piece ? dialogues[i].in_len - at : piece;
		size_t used = gfx_venc_feed(&v, in + at, k);
		assert_true(used <= k);
		if (used == 0)
			break;
		at += used;
	}
	/* Stops at its end: what follows is the TLS handshake's. */
	assert_int_equal(at, dialogues[i].in_len);
	if (gfx_venc_need(&v) == 0)
		assert_int_equal(gfx_venc_feed(&v, (const uint8_t *)"\x16\x03\x01", 3), 0);
	memcpy(out, v.out, v.out_len);
	out_len = v.out_len;
	assert_int_equal(v.state, dialogues[i].end);
	assert_true(out_len >= 12);
	assert_memory_equal(out, "RFB 003.008\n", 12);
	assert_int_equal(out_len - 12, dialogues[i].out_len);
	assert_memory_equal(out + 12, dialogues[i].out, dialogues[i].out_len);
	if (v.state == GFX_VENC_TLS)
		assert_int_equal(v.subtype, dialogues[i].subtype);
	if (v.state == GFX_VENC_FAILED)
		assert_non_null(strstr(v.why, dialogues[i].why));
}

static void test_dialogues(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dialogues) / sizeof(dialogues[0]); i++) {
		run_one(i, 1024);
		run_one(i, 1);
		run_one(i, 3);
	}
}

static void test_replay(void **state)
{
	(void)state;
	gfx_sec_types t;
	assert_int_equal(gfx_sec_types_parse("TLSVnc,VncAuth", &t, NULL), 0);
	static const struct {
		const char *ver;
		const char *replay;
		size_t replay_len;
		size_t greet_len;
	} r[] = { { "RFB 003.008\n\x02", "RFB 003.008\n\x02", 13, 14 },
		  { "RFB 003.007\n\x02", "RFB 003.007\n\x02", 13, 14 },
		  { "RFB 003.003\n", "RFB 003.003\n", 12, 12 } };
	for (size_t i = 0; i < 3; i++) {
		gfx_venc v;
		gfx_venc_init(&v, &t);
		assert_int_equal(gfx_venc_feed(&v, (const uint8_t *)r[i].ver, strlen(r[i].ver)), strlen(r[i].ver));
		assert_int_equal(v.state, GFX_VENC_PLAIN);
		uint8_t buf[16];
		assert_int_equal(gfx_venc_replay(&v, buf), r[i].replay_len);
		assert_memory_equal(buf, r[i].replay, r[i].replay_len);
		assert_int_equal(gfx_venc_greeting(&v, buf), r[i].greet_len);
		assert_memory_equal(buf, "RFB 003.008\n", 12);
		if (r[i].greet_len == 14)
			assert_memory_equal(buf + 12, "\x01\x02", 2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lists),
		cmocka_unit_test(test_dialogues),
		cmocka_unit_test(test_replay),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
