/* nbd-uri.h: NBD URIs as a remote parent names them (the NBD project's
 * doc/uri.md, the forms qemu and libnbd read), parsed into their parts
 * and written back in one canonical form, so that a grant's list and a
 * disk's locator are compared as parts, never as spellings. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include <scm/error.h>

#define NBD_URI_MAX 2048       /* the whole URI, as written */
#define NBD_EXPORT_NAME_MAX 4096 /* the protocol's limit on an export name */
#define NBD_DEFAULT_PORT 10809

struct nbd_uri {
	bool tls;         /* nbds:// or nbds+unix://: TLS is required */
	bool unix_socket; /* nbd+unix: socket is set; else host and port */
	char *host;       /* lower case; an IPv6 address without brackets */
	uint16_t port;
	char *socket;     /* absolute and clean (no "..", "." or "//") */
	char *export_name; /* decoded; "" is the default export */
};

/* Parses s: nbd[s]://HOST[:PORT][/EXPORT] or nbd[s]+unix:///[EXPORT]?socket=PATH
 * (the "s": TLS required). Refused, with the part at fault named: other
 * schemes, user info, fragments, query keys other than socket (TLS
 * material such as tls-psk-file never comes from a URI: the reader's
 * configuration names it), bad percent escapes, a relative or unclean
 * socket path, NUL bytes. */
int nbd_uri_parse(const char *s, struct nbd_uri *ret, scm_error **ret_err);
/* The canonical form (malloc'd), or NULL without memory. */
char *nbd_uri_format(const struct nbd_uri *u);
void nbd_uri_clear(struct nbd_uri *u);
