/* wsreq.c: the first line of a websocket request, and the session's
 * secrets. The proxy reads the request line of every websocket before
 * libvncserver sees the connection, so a browser without the session's
 * token is turned away before the upgrade; this is the only text the
 * proxy parses on the viewer side, so it stays small and fuzzed
 * (tests/fuzz/fuzz_gfx_rfb.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "rfb.h"

int gfx_ws_parse_request(const uint8_t *buf, size_t len, char *path, size_t path_len,
			 scm_error **ret_err)
{
	const uint8_t *nl = memchr(buf, '\n', len < GFX_WS_REQUEST_MAX ? len : GFX_WS_REQUEST_MAX);
	if (!nl) {
		if (len >= GFX_WS_REQUEST_MAX)
			return scm_fail(ret_err, GFX_E_INVALID, "request line longer than %u bytes", GFX_WS_REQUEST_MAX);
		/* Say no early to what cannot become a GET. */
		if (len > 0 && memcmp(buf, "GET ", len < 4 ? len : 4) != 0)
			return scm_fail(ret_err, GFX_E_INVALID, "not an HTTP GET request");
		return -EAGAIN;
	}
	size_t n = (size_t)(nl - buf);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n < 4 || memcmp(buf, "GET ", 4) != 0)
		return scm_fail(ret_err, GFX_E_INVALID, "not an HTTP GET request");
	for (size_t i = 0; i < n; i++)
		if (buf[i] < 0x20 || buf[i] == 0x7f)
			return scm_fail(ret_err, GFX_E_INVALID, "control byte 0x%02x in the request line", buf[i]);
	const uint8_t *t = buf + 4, *end = buf + n;
	const uint8_t *sp = memchr(t, ' ', (size_t)(end - t));
	if (!sp || end - sp < 9 || memcmp(sp + 1, "HTTP/1.", 7) != 0)
		return scm_fail(ret_err, GFX_E_INVALID, "no HTTP/1.x version after the target");
	size_t tl = (size_t)(sp - t);
	if (tl == 0 || t[0] != '/')
		return scm_fail(ret_err, GFX_E_INVALID, "the target does not start with '/'");
	if (tl + 1 > path_len)
		return scm_fail(ret_err, GFX_E_INVALID, "target longer than %zu bytes", path_len - 1);
	memcpy(path, t, tl);
	path[tl] = 0;
	return 0;
}

bool gfx_ws_token_matches(const char *path, const char *token)
{
	const char *q = strchr(path, '?');
	size_t want = strlen(token);
	if (!q || want == 0)
		return false;
	bool found = false;
	for (const char *p = q + 1; *p;) {
		const char *amp = strchr(p, '&');
		size_t l = amp ? (size_t)(amp - p) : strlen(p);
		if (l == 6 + want && strncmp(p, "token=", 6) == 0) {
			/* Constant time in the token: no early exit on a mismatch. */
			unsigned char d = 0;
			for (size_t i = 0; i < want; i++)
				d |= (unsigned char)(p[6 + i] ^ token[i]);
			found |= d == 0;
		}
		p += l + (amp ? 1 : 0);
	}
	return found;
}

int gfx_random_secret(char *out, size_t n)
{
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
	if (n == 0)
		return -EINVAL;
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char b;
		/* Rejection sampling keeps every character equally likely. */
		do {
			if (getrandom(&b, 1, 0) != 1)
				return -errno;
		} while (b >= 256 - 256 % (sizeof(alphabet) - 1));
		out[i] = alphabet[b % (sizeof(alphabet) - 1)];
	}
	out[n - 1] = 0;
	return 0;
}
