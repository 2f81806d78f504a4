/* fuzz_gfx_state.c: the graphics proxy's saved state as a restarted
 * proxy reads it (server_handover.c: clients, their surfaces and
 * eventfds, the windows, their stacking and focus), fed to a real
 * engine. The state's fds are real: an even index is a sealed 64x48
 * surface memfd, an odd one an eventfd, so what the JSON says about
 * them is checked against what they are. Whatever is accepted must stay
 * inside the desktop (ASan watches); the engine is freed and made again
 * each run. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int take(void *ud, int64_t index)
{
	if (index < 0 || index > 300)
		return -1;
	if (index % 2)
		return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	gfx_surface *s = NULL;
	if (gfx_surface_new(64, 48, &s))
		return -1;
	int fd = dup(s->fd);
	gfx_surface_free(s);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gfx_server_config cfg = { .width = 320, .height = 240, .background = 0x2b2b2b };
	gfx_server *s = NULL;
	if (gfx_server_new(&cfg, &s))
		abort();
	struct json_tokener *tok = json_tokener_new_ex(16);
	struct json_object *j = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)(size > 65536 ? 65536 : size)) : NULL;
	json_tokener_free(tok);
	gfx_client *clients[GFX_CLIENTS_MAX];
	size_t n = 0;
	scm_error *err = NULL;
	gfx_server_restore_clients(s, j, take, NULL, clients, GFX_CLIENTS_MAX, &n, &err);
	scm_error_free(err);
	gfx_server_work(s, INT64_MAX);
	json_object_put(j);
	gfx_server_free(s);
	return 0;
}
