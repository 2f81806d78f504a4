/* winjson.c: the window list an app declares with set_windows.
 *
 * [{"id":N,"x":X,"y":Y,"w":W,"h":H,"title":"...","popup":false,"parent":P},
 *  ...] in surface coordinates. Checked like damage: member types, int32
 * range, w and h >= 1, at most GFX_WINDOWS_MAX windows, unique ids,
 * titles of at most 256 bytes (shown as printable ASCII, cut to
 * GFX_TITLE_MAX characters), no unknown keys; the rects are then clipped
 * to the surface, and a window wholly outside it is dropped. An error
 * names the offending field as a JSON pointer. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "wm.h"

#define ERR(code, ...) scm_fail(ret_err, (code), __VA_ARGS__)
#define TITLE_BYTES_MAX 256u

static int get_int(struct json_object *v, int64_t lo, int64_t hi, int64_t *ret)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return -1;
	errno = 0;
	int64_t x = json_object_get_int64(v);
	/* json-c saturates out-of-range numbers and sets errno. */
	if (errno != 0 || x < lo || x > hi)
		return -1;
	*ret = x;
	return 0;
}

static void clean_title(const char *in, size_t len, char *out)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n < GFX_TITLE_MAX; i++) {
		unsigned char ch = (unsigned char)in[i];
		/* UTF-8 continuation bytes add nothing; any other byte the
		 * font lacks becomes one '?'. */
		if ((ch & 0xC0) == 0x80)
			continue;
		out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[n] = 0;
}

int gfx_parse_windows(struct json_object *arr, uint32_t width, uint32_t height, gfx_window_decl *out,
		      size_t max, size_t *ret_n, scm_error **ret_err)
{
	gfx_rect surf = { 0, 0, (int32_t)width, (int32_t)height };
	size_t n = 0;

	if (max > GFX_WINDOWS_MAX)
		max = GFX_WINDOWS_MAX;
	if (!arr || !json_object_is_type(arr, json_type_array))
		return ERR(GFX_E_INVALID, "/windows: must be an array of windows");
	size_t len = json_object_array_length(arr);
	if (len > max)
		return ERR(GFX_E_LIMIT, "/windows: %zu windows, at most %zu", len, max);
	for (size_t i = 0; i < len; i++) {
		struct json_object *w = json_object_array_get_idx(arr, i);
		gfx_window_decl d = { 0 };
		int64_t v[5] = { 0 };
		bool seen[5] = { false };
		static const char *const num[5] = { "id", "x", "y", "w", "h" };
		if (!w || !json_object_is_type(w, json_type_object))
			return ERR(GFX_E_INVALID, "/windows/%zu: must be an object", i);
		json_object_object_foreach(w, key, val) {
			size_t k;
			for (k = 0; k < 5 && strcmp(key, num[k]) != 0; k++)
				;
			if ((k == 0 && get_int(val, 1, UINT32_MAX, &v[0]) == 0) ||
			    (k >= 1 && k <= 2 && get_int(val, INT32_MIN, INT32_MAX, &v[k]) == 0) ||
			    (k >= 3 && k <= 4 && get_int(val, 1, INT32_MAX, &v[k]) == 0)) {
				seen[k] = true;
				continue;
			}
			if (k < 5)
				return ERR(GFX_E_INVALID, "/windows/%zu/%s: must be an integer in %s", i, key,
					   k == 0 ? "1..4294967295" : k >= 3 ? "1..2147483647" : "int32 range");
			if (strcmp(key, "title") == 0 && json_object_is_type(val, json_type_string) &&
			    (size_t)json_object_get_string_len(val) <= TITLE_BYTES_MAX) {
				clean_title(json_object_get_string(val), (size_t)json_object_get_string_len(val), d.title);
			} else if (strcmp(key, "title") == 0) {
				return ERR(GFX_E_INVALID, "/windows/%zu/title: must be a string of at most %u bytes", i,
					   TITLE_BYTES_MAX);
			} else if (strcmp(key, "popup") == 0 && json_object_is_type(val, json_type_boolean)) {
				d.popup = json_object_get_boolean(val);
			} else if (strcmp(key, "popup") == 0) {
				return ERR(GFX_E_INVALID, "/windows/%zu/popup: must be a boolean", i);
			} else if (strcmp(key, "parent") == 0) {
				int64_t p;
				if (get_int(val, 0, UINT32_MAX, &p) < 0)
					return ERR(GFX_E_INVALID, "/windows/%zu/parent: must be an integer in 0..4294967295", i);
				d.parent = (uint32_t)p;
			} else {
				return ERR(GFX_E_INVALID, "/windows/%zu/%.32s: unknown key", i, key);
			}
		}
		for (size_t k = 0; k < 5; k++)
			if (!seen[k])
				return ERR(GFX_E_INVALID, "/windows/%zu/%s: missing", i, num[k]);
		d.id = (uint32_t)v[0];
		for (size_t k = 0; k < n; k++)
			if (out[k].id == d.id)
				return ERR(GFX_E_INVALID, "/windows/%zu/id: %u is there twice", i, d.id);
		gfx_rect in = { (int32_t)v[1], (int32_t)v[2], (int32_t)v[3], (int32_t)v[4] };
		if (!gfx_rect_intersect(&in, &surf, &d.r))
			continue;
		out[n++] = d;
	}
	/* A parent must be a top-level window in the same list. */
	for (size_t i = 0; i < n; i++) {
		bool ok = false;
		for (size_t k = 0; out[i].parent && k < n; k++)
			ok |= out[k].id == out[i].parent && !out[k].popup;
		if (!ok)
			out[i].parent = 0;
	}
	*ret_n = n;
	return 0;
}

static struct json_object *rect_json(gfx_rect r)
{
	struct json_object *a = json_object_new_array();
	int32_t v[4] = { r.x, r.y, r.w, r.h };
	for (size_t i = 0; a && i < 4; i++)
		json_object_array_add(a, json_object_new_int(v[i]));
	return a;
}

struct json_object *gfx_wm_windows_json(gfx_wm *wm, const void *owner)
{
	struct json_object *arr = json_object_new_array();
	uint32_t ovs[GFX_WINDOWS_MAX + 1];
	size_t n = gfx_wm_windows(wm, owner, ovs, GFX_WINDOWS_MAX + 1);
	for (size_t i = 0; arr && i < n; i++) {
		const gfx_window *w = gfx_wm_find(wm, ovs[i]);
		const gfx_overlay *o = gfx_comp_find(wm->comp, ovs[i]);
		struct json_object *j = json_object_new_object();
		if (!j)
			continue;
		json_object_object_add(j, "window", json_object_new_int64(w->wid));
		json_object_object_add(j, "x", json_object_new_int(o->x));
		json_object_object_add(j, "y", json_object_new_int(o->y));
		json_object_object_add(j, "width", json_object_new_int(o->src.w));
		json_object_object_add(j, "height", json_object_new_int(o->src.h));
		json_object_object_add(j, "title", json_object_new_string(o->title));
		json_object_object_add(j, "hidden", json_object_new_boolean(o->hidden));
		json_object_object_add(j, "popup", json_object_new_boolean(w->popup));
		json_object_object_add(j, "focused", json_object_new_boolean(wm->focus_ov == o->id));
		if (o->titled && wm->comp->title_px) {
			json_object_object_add(j, "title_bar", rect_json(gfx_wm_title_rect(wm->comp, o)));
			json_object_object_add(j, "minimise", rect_json(gfx_wm_button_rect(wm->comp, o, GFX_PART_MINIMISE)));
			json_object_object_add(j, "close", rect_json(gfx_wm_button_rect(wm->comp, o, GFX_PART_CLOSE)));
		}
		json_object_array_add(arr, j);
	}
	return arr;
}

struct json_object *gfx_wm_taskbar_json(gfx_wm *wm)
{
	struct json_object *arr = json_object_new_array();
	uint32_t ids[GFX_OVERLAYS_MAX];
	size_t n = wm->comp->taskbar_px ? gfx_wm_taskbar_entries(wm->comp, ids, GFX_OVERLAYS_MAX) : 0;
	for (size_t i = 0; arr && i < n; i++) {
		const gfx_overlay *o = gfx_comp_find(wm->comp, ids[i]);
		struct json_object *j = json_object_new_object();
		if (!j || !o)
			continue;
		json_object_object_add(j, "title", json_object_new_string(o->title));
		json_object_object_add(j, "rect", rect_json(gfx_wm_taskbar_entry(wm->comp, i, n)));
		json_object_object_add(j, "hidden", json_object_new_boolean(o->hidden));
		json_object_array_add(arr, j);
	}
	return arr;
}
