/* fuzz_nbd_uri.c: libFuzzer target for the NBD URI parser
 * (services/vdisk/nbd-uri.c), which reads remote parents' URIs from the
 * command line, from any disk's parent locator and from profiles. What it
 * accepts must format to a canonical form that parses again to the same
 * parts and formats to the same string (grants compare that form): TLS
 * (nbds, nbds+unix) included, which must survive the round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-uri.h"

static bool same(const struct nbd_uri *a, const struct nbd_uri *b)
{
	return a->tls == b->tls && a->unix_socket == b->unix_socket && a->port == b->port &&
	       !strcmp(a->export_name, b->export_name) && !a->host == !b->host &&
	       (!a->host || !strcmp(a->host, b->host)) && !a->socket == !b->socket &&
	       (!a->socket || !strcmp(a->socket, b->socket));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 3 * NBD_URI_MAX)
		return 0;
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	struct nbd_uri u, v;
	scm_error *why = NULL;
	if (nbd_uri_parse(s, &u, &why) == 0) {
		char *c = nbd_uri_format(&u);
		if (!c)
			abort();
		if (strlen(c) <= NBD_URI_MAX) {
			if (nbd_uri_parse(c, &v, NULL) < 0 || !same(&u, &v))
				abort();
			char *c2 = nbd_uri_format(&v);
			if (!c2 || strcmp(c, c2))
				abort();
			free(c2);
			nbd_uri_clear(&v);
		}
		free(c);
		nbd_uri_clear(&u);
	}
	scm_error_free(why);
	free(s);
	return 0;
}
