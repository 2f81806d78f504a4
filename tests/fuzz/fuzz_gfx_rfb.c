/* fuzz_gfx_rfb.c: the websocket request line the proxy reads before
 * libvncserver sees a noVNC connection (wsreq.c), on arbitrary bytes. An
 * accepted target is NUL-terminated inside its buffer, starts with '/',
 * and the token check on it never reads past its end. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rfb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[GFX_WS_REQUEST_MAX];
	scm_error *err = NULL;
	memset(path, 'x', sizeof(path));
	int r = gfx_ws_parse_request(data, size, path, sizeof(path), &err);
	scm_error_free(err);
	if (r == 0) {
		if (path[0] != '/' || !memchr(path, 0, sizeof(path)))
			abort();
		(void)gfx_ws_token_matches(path, "abcdefghijklmnopqrstuvwxyz012345");
	} else if (r != -EAGAIN && r != GFX_E_INVALID) {
		abort();
	}
	return 0;
}
