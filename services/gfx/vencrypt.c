/* vencrypt.c: the VeNCrypt part of the RFB handshake as a state machine
 * on bytes (vencrypt.h), and the security-type lists the proxy is
 * configured with. No I/O: the TLS worker (tls.c) feeds it, and
 * tests/fuzz/fuzz_gfx_vencrypt.c feeds it anything. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vencrypt.h"

static const struct {
	const char *name;
	uint32_t type;
} sec_names[] = { { "VncAuth", GFX_SEC_VNCAUTH }, { "TLSVnc", GFX_VENC_TLSVNC }, { "X509Vnc", GFX_VENC_X509VNC } };

bool gfx_sec_types_has(const gfx_sec_types *t, uint32_t type)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->t[i] == type)
			return true;
	return false;
}

bool gfx_sec_types_tls(const gfx_sec_types *t)
{
	return gfx_sec_types_has(t, GFX_VENC_TLSVNC) || gfx_sec_types_has(t, GFX_VENC_X509VNC);
}

int gfx_sec_types_parse(const char *s, gfx_sec_types *ret, scm_error **ret_err)
{
	gfx_sec_types t = { 0 };
	const char *p = s;
	for (;;) {
		size_t len = strcspn(p, ",");
		uint32_t type = 0;
		for (size_t i = 0; i < sizeof(sec_names) / sizeof(sec_names[0]); i++)
			if (strlen(sec_names[i].name) == len && strncasecmp(p, sec_names[i].name, len) == 0)
				type = sec_names[i].type;
		if (!type)
			return scm_fail(ret_err, GFX_E_INVALID,
					"security type \"%.*s\" unknown (want X509Vnc, TLSVnc or VncAuth)",
					(int)(len > 32 ? 32 : len), p);
		if (gfx_sec_types_has(&t, type))
			return scm_fail(ret_err, GFX_E_INVALID, "security type \"%.*s\" given twice", (int)len, p);
		t.t[t.n++] = type;
		if (!p[len])
			break;
		p += len + 1;
	}
	*ret = t;
	return 0;
}

int gfx_sec_types_for_mode(const char *mode, bool have_cert, gfx_sec_types *ret, scm_error **ret_err)
{
	const char *list;
	if (strcmp(mode, "required") == 0)
		list = "X509Vnc,TLSVnc";
	else if (strcmp(mode, "preferred") == 0)
		list = have_cert ? "X509Vnc,TLSVnc,VncAuth" : "TLSVnc,VncAuth";
	else if (strcmp(mode, "off") == 0)
		list = "VncAuth";
	else
		return scm_fail(ret_err, GFX_E_INVALID, "tls \"%.16s\": want required, preferred or off", mode);
	return gfx_sec_types_parse(list, ret, ret_err);
}

void gfx_sec_types_format(const gfx_sec_types *t, char *buf, size_t n)
{
	size_t at = 0;
	if (n)
		buf[0] = '\0';
	for (uint32_t i = 0; i < t->n && at < n; i++)
		for (size_t k = 0; k < sizeof(sec_names) / sizeof(sec_names[0]); k++)
			if (sec_names[k].type == t->t[i]) {
				int w = snprintf(buf + at, n - at, "%s%s", i ? "," : "", sec_names[k].name);
				at += w > 0 ? (size_t)w : 0;
			}
}

static void put(gfx_venc *v, const void *p, size_t n)
{
	if (n > sizeof(v->out) - v->out_len)
		n = sizeof(v->out) - v->out_len; /* never: the messages are short */
	memcpy(v->out + v->out_len, p, n);
	v->out_len += n;
}

static void put32(gfx_venc *v, uint32_t x)
{
	uint8_t b[4] = { (uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x };
	put(v, b, 4);
}

static void fail(gfx_venc *v, const char *why)
{
	snprintf(v->why, sizeof(v->why), "%s", why);
	v->state = GFX_VENC_FAILED;
}

/* A refusal the viewer can read: 3.8 carries a reason (after a
 * SecurityResult or a zero-length type list); 3.3 after a zero type. */
static void refuse_reason(gfx_venc *v, const char *why)
{
	size_t n = strlen(why);
	put32(v, (uint32_t)n);
	put(v, why, n);
	fail(v, why);
}

void gfx_venc_init(gfx_venc *v, const gfx_sec_types *types)
{
	memset(v, 0, sizeof(*v));
	v->types = *types;
	v->state = GFX_VENC_VERSION;
	put(v, "RFB 003.008\n", 12);
}

size_t gfx_venc_need(const gfx_venc *v)
{
	size_t want;
	switch (v->state) {
	case GFX_VENC_VERSION: want = 12; break;
	case GFX_VENC_SECTYPE: want = 1; break;
	case GFX_VENC_VEN_VERSION: want = 2; break;
	case GFX_VENC_SUBTYPE: want = 4; break;
	default: return 0;
	}
	return want - v->in_len;
}

static void on_version(gfx_venc *v)
{
	const uint8_t *b = v->in;
	unsigned major = 0, minor = 0;
	bool ok = memcmp(b, "RFB ", 4) == 0 && b[7] == '.' && b[11] == '\n';
	for (int i = 4; ok && i < 7; i++)
		ok = b[i] >= '0' && b[i] <= '9', major = major * 10 + (unsigned)(b[i] - '0');
	for (int i = 8; ok && i < 11; i++)
		ok = b[i] >= '0' && b[i] <= '9', minor = minor * 10 + (unsigned)(b[i] - '0');
	if (!ok || major != 3 || minor < 3) {
		/* Nothing the viewer would parse: it is not speaking RFB 3.x. */
		fail(v, ok ? "RFB version not 3.3 or later" : "not an RFB ProtocolVersion");
		return;
	}
	/* 3.4-3.6 are 3.3 (the spec), anything after 3.8 is 3.8. */
	v->minor = minor >= 8 ? 8 : minor == 7 ? 7 : 3;
	if (v->minor == 3) {
		/* The server picks; VeNCrypt needs a viewer that can choose. */
		if (gfx_sec_types_has(&v->types, GFX_SEC_VNCAUTH)) {
			v->state = GFX_VENC_PLAIN;
			return;
		}
		put32(v, 0);
		refuse_reason(v, "TLS is required: RFB 3.3 viewers cannot choose VeNCrypt");
		return;
	}
	uint8_t list[1 + GFX_SEC_TYPES_MAX];
	size_t n = 0;
	bool venc = false;
	for (uint32_t i = 0; i < v->types.n; i++) {
		if (v->types.t[i] == GFX_SEC_VNCAUTH)
			list[1 + n++] = GFX_SEC_VNCAUTH;
		else if (!venc)
			list[1 + n++] = GFX_SEC_VENCRYPT, venc = true;
	}
	list[0] = (uint8_t)n;
	put(v, list, 1 + n);
	v->state = GFX_VENC_SECTYPE;
}

static void on_sectype(gfx_venc *v)
{
	uint8_t t = v->in[0];
	if (t == GFX_SEC_VNCAUTH && gfx_sec_types_has(&v->types, GFX_SEC_VNCAUTH)) {
		v->state = GFX_VENC_PLAIN;
		return;
	}
	if (t == GFX_SEC_VENCRYPT && gfx_sec_types_tls(&v->types)) {
		put(v, "\x00\x02", 2); /* VeNCrypt 0.2 */
		v->state = GFX_VENC_VEN_VERSION;
		return;
	}
	char why[64];
	snprintf(why, sizeof(why), "security type %u was not offered", t);
	put32(v, 1); /* SecurityResult: failed */
	if (v->minor >= 8)
		refuse_reason(v, why);
	else
		fail(v, why);
}

static void on_ven_version(gfx_venc *v)
{
	if (v->in[0] != 0 || v->in[1] != 2) {
		char why[64];
		snprintf(why, sizeof(why), "VeNCrypt version %u.%u (only 0.2 is spoken)", v->in[0], v->in[1]);
		put(v, "\xff", 1);
		fail(v, why);
		return;
	}
	uint8_t n = 0;
	for (uint32_t i = 0; i < v->types.n; i++)
		n += v->types.t[i] != GFX_SEC_VNCAUTH;
	put(v, "\x00", 1);
	put(v, &n, 1);
	for (uint32_t i = 0; i < v->types.n; i++)
		if (v->types.t[i] != GFX_SEC_VNCAUTH)
			put32(v, v->types.t[i]);
	v->state = GFX_VENC_SUBTYPE;
}

static void on_subtype(gfx_venc *v)
{
	uint32_t s = (uint32_t)v->in[0] << 24 | (uint32_t)v->in[1] << 16 | (uint32_t)v->in[2] << 8 | v->in[3];
	if (s == GFX_SEC_VNCAUTH || !gfx_sec_types_has(&v->types, s)) {
		char why[64];
		snprintf(why, sizeof(why), "VeNCrypt subtype %u was not offered", s);
		put(v, "\x00", 1);
		fail(v, why);
		return;
	}
	put(v, "\x01", 1);
	v->subtype = s;
	v->state = GFX_VENC_TLS;
}

size_t gfx_venc_feed(gfx_venc *v, const uint8_t *buf, size_t len)
{
	size_t used = 0;
	while (used < len) {
		size_t need = gfx_venc_need(v);
		if (need == 0)
			break;
		size_t k = len - used < need ? len - used : need;
		memcpy(v->in + v->in_len, buf + used, k);
		v->in_len += k;
		used += k;
		if (k < need)
			break;
		enum gfx_venc_state s = v->state;
		v->in_len = 0;
		if (s == GFX_VENC_VERSION)
			on_version(v);
		else if (s == GFX_VENC_SECTYPE)
			on_sectype(v);
		else if (s == GFX_VENC_VEN_VERSION)
			on_ven_version(v);
		else
			on_subtype(v);
	}
	return used;
}

size_t gfx_venc_replay(const gfx_venc *v, uint8_t buf[13])
{
	memcpy(buf, "RFB 003.00", 10);
	buf[10] = (uint8_t)('0' + v->minor % 10);
	buf[11] = '\n';
	if (v->minor < 7)
		return 12;
	buf[12] = GFX_SEC_VNCAUTH;
	return 13;
}

size_t gfx_venc_greeting(const gfx_venc *v, uint8_t buf[16])
{
	memcpy(buf, "RFB 003.008\n", 12);
	/* 3.3: its security type (VNC authentication) is the viewer's to read. */
	if (v->minor < 7)
		return 12;
	buf[12] = 1, buf[13] = GFX_SEC_VNCAUTH;
	return 14;
}
