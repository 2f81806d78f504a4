/* fuzz_gfx_present.c: the present (damage) and input-event messages, as
 * JSON from a hostile client, fed through to a real compositor: whatever
 * the parser accepts must be inside the surface and composite without
 * touching memory outside the desktop (ASan watches). */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>

#include "gfx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gfx_compositor *comp;
static gfx_surface *surf;
static uint32_t id;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!comp) {
		if (gfx_comp_new(96, 64, 0, 2, &comp) || gfx_surface_new(50, 40, &surf) ||
		    gfx_comp_add(comp, surf, 60, 40, 0xFF0000, GFX_BLEND_ALPHA | GFX_BLEND_KEY, 0x00FF00, &id))
			abort();
	}
	struct json_tokener *tok = json_tokener_new_ex(16);
	if (!tok)
		return 0;
	struct json_object *j = json_tokener_parse_ex(tok, (const char *)data, (int)(size > 65536 ? 65536 : size));
	json_tokener_free(tok);
	gfx_rect rects[GFX_DAMAGE_MAX];
	size_t n = 0;
	scm_error *err = NULL;
	if (gfx_parse_damage(j, 50, 40, rects, GFX_DAMAGE_MAX, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			if (rects[i].x < 0 || rects[i].y < 0 || rects[i].x + rects[i].w > 50 ||
			    rects[i].y + rects[i].h > 40 || rects[i].w <= 0 || rects[i].h <= 0)
				abort();
		gfx_comp_damage_surface(comp, id, rects, n);
		gfx_comp_render(comp, NULL);
	}
	gfx_input_event evs[64];
	err = scm_error_free(err);
	(void)gfx_input_from_json(j, evs, 64, &n, &err);
	scm_error_free(err);
	json_object_put(j);
	return 0;
}
