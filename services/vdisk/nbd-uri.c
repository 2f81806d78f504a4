/* nbd-uri.c: NBD URIs (nbd-uri.h). A URI reaches us from a user's command
 * line, from a disk's parent locator (any file a client hands us) and from
 * a profile's list of allowed parents: all three go through this one
 * parser, and a grant compares what it yields, part by part. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-uri.h"
#include "scmutil.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes [s, s + n) (percent escapes) into a new string; NUL bytes,
 * encoded or not, are refused. */
static int decode(const char *s, size_t n, const char *what, char **ret, scm_error **ret_err)
{
	char *out = malloc(n + 1), *w = out;
	if (!out)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] != '%') {
			*w++ = s[i];
			continue;
		}
		if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0 ||
		    (hi == 0 && lo == 0)) {
			free(out);
			return scm_fail(ret_err, -EINVAL, "NBD URI: %s: a bad percent escape at \"%.8s\"", what, s + i);
		}
		*w++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*w = 0;
	*ret = out;
	return 0;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* HOST[:PORT] or [V6]:PORT (authority of nbd://) */
static int parse_authority(const char *a, size_t n, struct nbd_uri *u, scm_error **ret_err)
{
	if (memchr(a, '@', n))
		return scm_fail(ret_err, -EINVAL, "NBD URI: user information (\"...@\") is not taken");
	const char *hend, *colon = NULL;
	const char *h = a;
	size_t hl;
	if (n && a[0] == '[') {
		hend = memchr(a, ']', n);
		if (!hend)
			return scm_fail(ret_err, -EINVAL, "NBD URI: an IPv6 host without \"]\"");
		h = a + 1;
		hl = (size_t)(hend - h);
		for (size_t i = 0; i < hl; i++)
			if (hexval(h[i]) < 0 && h[i] != ':' && h[i] != '.')
				return scm_fail(ret_err, -EINVAL, "NBD URI: host: \"%.*s\" is not an IPv6 address",
						(int)hl, h);
		if (hend + 1 < a + n) {
			if (hend[1] != ':')
				return scm_fail(ret_err, -EINVAL, "NBD URI: text after the IPv6 host");
			colon = hend + 1;
		}
	} else {
		colon = memchr(a, ':', n);
		hl = colon ? (size_t)(colon - a) : n;
		for (size_t i = 0; i < hl; i++)
			if (!host_char(a[i]))
				return scm_fail(ret_err, -EINVAL, "NBD URI: host: '%c' is not allowed in a host name",
						a[i]);
	}
	if (!hl || hl > 253)
		return scm_fail(ret_err, -EINVAL, "NBD URI: %s host", hl ? "an over-long" : "no");
	if (!(u->host = strndup(h, hl)))
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	for (char *c = u->host; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	u->port = NBD_DEFAULT_PORT;
	if (colon) {
		const char *p = colon + 1, *end = a + n;
		unsigned long v = 0;
		if (p == end || end - p > 5)
			return scm_fail(ret_err, -EINVAL, "NBD URI: port: not 1 to 65535");
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				return scm_fail(ret_err, -EINVAL, "NBD URI: port: '%c' is not a digit", *p);
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (!v || v > 65535)
			return scm_fail(ret_err, -EINVAL, "NBD URI: port %lu: not 1 to 65535", v);
		u->port = (uint16_t)v;
	}
	return 0;
}

static int parse_query(const char *q, struct nbd_uri *u, scm_error **ret_err)
{
	for (const char *p = q; *p;) {
		const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (!eq || eq - p != 6 || strncmp(p, "socket", 6))
			return scm_fail(ret_err, -EINVAL, "NBD URI: query \"%.*s\": only socket=PATH is taken "
					"(TLS material is the reader's configuration, never the URI's)",
					(int)(end - p > 40 ? 40 : end - p), p);
		if (u->socket)
			return scm_fail(ret_err, -EINVAL, "NBD URI: socket given twice");
		int r = decode(eq + 1, (size_t)(end - eq - 1), "socket", &u->socket, ret_err);
		if (r < 0)
			return r;
		size_t l = strlen(u->socket);
		if (!path_is_clean(u->socket) || (l > 1 && u->socket[l - 1] == '/') || l >= 108)
			return scm_fail(ret_err, -EINVAL, "NBD URI: socket \"%.80s\": not an absolute path of one "
					"spelling (no \".\", \"..\" or \"//\"), under 108 bytes", u->socket);
		p = amp ? amp + 1 : end;
	}
	return 0;
}

int nbd_uri_parse(const char *s, struct nbd_uri *ret, scm_error **ret_err)
{
	struct nbd_uri u = { 0 };
	size_t len = strlen(s);
	int r;
	if (len > NBD_URI_MAX)
		return scm_fail(ret_err, -EINVAL, "NBD URI: longer than %d bytes", NBD_URI_MAX);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return scm_fail(ret_err, -EINVAL, "NBD URI: byte 0x%02x at %zu: spaces, control and "
					"non-ASCII bytes must be percent-encoded", (unsigned char)s[i], i);
	if (strchr(s, '#'))
		return scm_fail(ret_err, -EINVAL, "NBD URI: a fragment (\"#...\") is not taken");
	/* the four schemes of the NBD URI specification we read: "s" is TLS */
	static const struct {
		const char *prefix;
		bool tls, unix_socket;
	} schemes[] = { { "nbd://", false, false },
			{ "nbds://", true, false },
			{ "nbd+unix://", false, true },
			{ "nbds+unix://", true, true } };
	const char *rest = NULL;
	for (size_t i = 0; i < sizeof schemes / sizeof schemes[0] && !rest; i++)
		if (!strncmp(s, schemes[i].prefix, strlen(schemes[i].prefix))) {
			rest = s + strlen(schemes[i].prefix);
			u.tls = schemes[i].tls;
			u.unix_socket = schemes[i].unix_socket;
		}
	if (!rest)
		return scm_fail(ret_err, -EINVAL, "NBD URI \"%.40s\": the scheme is none of nbd://, nbds://, "
				"nbd+unix:// or nbds+unix://", s);
	const char *path = strchr(rest, '/'), *query = strchr(rest, '?');
	if (query && path && path > query)
		path = NULL;
	const char *aend = path ? path : query ? query : rest + strlen(rest);
	if (u.unix_socket) {
		if (aend != rest)
			r = scm_fail(ret_err, -EINVAL, "NBD URI: nbd+unix:// takes no host (nbd+unix:///EXPORT?socket=PATH)");
		else if (!query)
			r = scm_fail(ret_err, -EINVAL, "NBD URI: nbd+unix:// needs ?socket=PATH");
		else
			r = parse_query(query + 1, &u, ret_err);
		if (r == 0 && !u.socket)
			r = scm_fail(ret_err, -EINVAL, "NBD URI: nbd+unix:// needs ?socket=PATH");
	} else if (query) {
		r = scm_fail(ret_err, -EINVAL, "NBD URI: nbd:// and nbds:// take no query (\"?...\"; TLS material is the reader's configuration, never the URI's)");
	} else {
		r = parse_authority(rest, (size_t)(aend - rest), &u, ret_err);
	}
	if (r == 0) {
		const char *pend = query ? query : rest + strlen(rest);
		r = path ? decode(path + 1, (size_t)(pend - path - 1), "export name", &u.export_name, ret_err)
			 : (u.export_name = strdup("")) ? 0 : scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	if (r == 0 && strlen(u.export_name) > NBD_EXPORT_NAME_MAX)
		r = scm_fail(ret_err, -EINVAL, "NBD URI: export name over %d bytes", NBD_EXPORT_NAME_MAX);
	if (r < 0) {
		nbd_uri_clear(&u);
		return r;
	}
	*ret = u;
	return 0;
}

/* Unreserved characters and "/" stay; everything else is escaped. */
static char *encode(char *w, const char *s, bool slash)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~' || (slash && *p == '/'))
			*w++ = (char)*p;
		else
			w += sprintf(w, "%%%02X", *p);
	}
	*w = 0;
	return w;
}

char *nbd_uri_format(const struct nbd_uri *u)
{
	size_t n = 64 + 3 * strlen(u->export_name) + (u->host ? strlen(u->host) : 0) +
		   3 * (u->socket ? strlen(u->socket) : 0);
	char *out = malloc(n), *w = out;
	if (!out)
		return NULL;
	if (u->unix_socket) {
		w = stpcpy(w, u->tls ? "nbds+unix:///" : "nbd+unix:///");
		w = encode(w, u->export_name, true);
		w = stpcpy(w, "?socket=");
		encode(w, u->socket, true);
	} else {
		bool v6 = strchr(u->host, ':') != NULL;
		w += sprintf(w, "%s://%s%s%s:%u/", u->tls ? "nbds" : "nbd", v6 ? "[" : "", u->host, v6 ? "]" : "", u->port);
		encode(w, u->export_name, true);
	}
	return out;
}

void nbd_uri_clear(struct nbd_uri *u)
{
	free(u->host);
	free(u->socket);
	free(u->export_name);
	*u = (struct nbd_uri){ 0 };
}
