/* fuzz_gfx_windows.c: set_windows' list from a hostile app, fed through
 * to a real window manager and compositor (title bars, taskbar, pop-ups
 * following their parents), then the input's bytes as a viewer's pointer
 * (drags, buttons, taskbar clicks). Whatever the parser accepts must lie
 * inside the surface, and nothing may touch memory outside the desktop
 * (ASan watches). */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>

#include "gfx.h"
#include "wm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gfx_compositor *comp;
static gfx_surface *surf;
static gfx_wm wm;
static int owner;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!comp) {
		if (gfx_comp_new(160, 120, 0, 2, &comp) || gfx_surface_new(90, 70, &surf))
			abort();
		comp->title_px = GFX_TITLE_PX;
		comp->taskbar_px = GFX_TASKBAR_PX;
		gfx_wm_init(&wm, comp);
		if (gfx_wm_add(&wm, &owner, surf, 10, 30, 0xFF0000, "fuzz", NULL))
			abort();
	}
	struct json_tokener *tok = json_tokener_new_ex(16);
	if (!tok)
		return 0;
	struct json_object *j = json_tokener_parse_ex(tok, (const char *)data, (int)(size > 65536 ? 65536 : size));
	json_tokener_free(tok);
	gfx_window_decl d[GFX_WINDOWS_MAX];
	size_t n = 0;
	scm_error *err = NULL;
	int r = gfx_parse_windows(j, 90, 70, d, GFX_WINDOWS_MAX, &n, &err);
	/* every refusal says why, under the code it returns; success says nothing */
	if (r ? !err || err->code != r || !err->message : err != NULL)
		abort();
	err = scm_error_free(err);
	if (r == 0) {
		for (size_t i = 0; i < n; i++)
			if (d[i].r.x < 0 || d[i].r.y < 0 || d[i].r.x + d[i].r.w > 90 || d[i].r.y + d[i].r.h > 70 ||
			    d[i].r.w <= 0 || d[i].r.h <= 0 || d[i].id == 0)
				abort();
		if (gfx_wm_set_windows(&wm, &owner, surf, 10, 30, 0xFF0000, "fuzz", d, n))
			abort();
	}
	json_object_put(j);
	/* The raw bytes as pointer events: x, y, buttons. */
	gfx_wm_action a[GFX_WM_ACTIONS_MAX];
	for (size_t i = 0; i + 3 <= size && i < 96; i += 3)
		gfx_wm_pointer(&wm, data[i + 2] & 1, (int32_t)data[i] - 20, (int32_t)data[i + 1] - 20, a);
	gfx_comp_render(comp, NULL);
	return 0;
}
