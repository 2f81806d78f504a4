/* present.c: the JSON forms of a present's damage and of input events.
 *
 * A present carries {"damage":[[x,y,w,h],...]} in surface coordinates.
 * Everything is checked: the member types, that each rect is exactly four
 * integers in int32 range with w, h >= 0, and the count; the rects are
 * then clipped to the surface, so damage outside it just vanishes. An
 * error names the offending field as a JSON pointer. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "gfx.h"

#define ERR(code, ...) scm_fail(ret_err, (code), __VA_ARGS__)

static int get_i32(struct json_object *v, int32_t *ret)
{
	if (!v || !json_object_is_type(v, json_type_int))
		return -1;
	errno = 0;
	int64_t x = json_object_get_int64(v);
	/* json-c saturates out-of-range numbers and sets errno. */
	if (errno != 0 || x < INT32_MIN || x > INT32_MAX)
		return -1;
	*ret = (int32_t)x;
	return 0;
}

/* The optional "window" member: an app's window id, uint32. */
static int get_window(struct json_object *e, uint32_t *ret)
{
	struct json_object *v;
	*ret = 0;
	if (!json_object_object_get_ex(e, "window", &v))
		return 0;
	errno = 0;
	int64_t x = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
	if (errno != 0 || x < 0 || x > UINT32_MAX)
		return -1;
	*ret = (uint32_t)x;
	return 0;
}

int gfx_parse_damage(struct json_object *args, uint32_t width, uint32_t height, gfx_rect *rects,
		     size_t max, size_t *ret_n, scm_error **ret_err)
{
	struct json_object *dmg = NULL;

	if (args && !json_object_is_type(args, json_type_object))
		return ERR(GFX_E_INVALID, "/: arguments must be an object");
	if (args)
		json_object_object_get_ex(args, "damage", &dmg);
	return gfx_parse_damage_list(dmg, width, height, rects, max, ret_n, ret_err);
}

int gfx_parse_damage_list(struct json_object *dmg, uint32_t width, uint32_t height, gfx_rect *rects,
			  size_t max, size_t *ret_n, scm_error **ret_err)
{
	gfx_rect surf = { 0, 0, (int32_t)width, (int32_t)height };
	size_t n = 0;

	if (!dmg) {
		if (max < 1)
			return ERR(GFX_E_LIMIT, "/damage: no room");
		rects[0] = surf;
		*ret_n = 1;
		return 0;
	}
	if (!json_object_is_type(dmg, json_type_array))
		return ERR(GFX_E_INVALID, "/damage: must be an array of [x,y,w,h]");
	size_t len = json_object_array_length(dmg);
	if (len > GFX_DAMAGE_MAX || len > max)
		return ERR(GFX_E_LIMIT, "/damage: %zu rects, at most %zu", len,
			   max < GFX_DAMAGE_MAX ? max : (size_t)GFX_DAMAGE_MAX);
	for (size_t i = 0; i < len; i++) {
		struct json_object *r = json_object_array_get_idx(dmg, i);
		int32_t v[4];
		if (!r || !json_object_is_type(r, json_type_array) || json_object_array_length(r) != 4)
			return ERR(GFX_E_INVALID, "/damage/%zu: must be [x,y,w,h]", i);
		for (size_t k = 0; k < 4; k++)
			if (get_i32(json_object_array_get_idx(r, k), &v[k]) < 0)
				return ERR(GFX_E_INVALID, "/damage/%zu/%zu: must be a 32-bit integer", i, k);
		if (v[2] < 0 || v[3] < 0)
			return ERR(GFX_E_INVALID, "/damage/%zu: negative width or height", i);
		gfx_rect in = { v[0], v[1], v[2], v[3] }, c;
		if (gfx_rect_intersect(&in, &surf, &c))
			rects[n++] = c;
	}
	*ret_n = n;
	return 0;
}

struct json_object *gfx_input_to_json(const gfx_input_event *ev, size_t n)
{
	struct json_object *arr = json_object_new_array(), *root = json_object_new_object();
	if (!arr || !root) {
		json_object_put(arr);
		json_object_put(root);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_new_object();
		if (!e)
			continue;
		if (ev[i].type == GFX_INPUT_KEY) {
			json_object_object_add(e, "type", json_object_new_string("key"));
			json_object_object_add(e, "down", json_object_new_boolean(ev[i].down));
			json_object_object_add(e, "keysym", json_object_new_int64(ev[i].keysym));
		} else if (ev[i].type == GFX_INPUT_CLIPBOARD) {
			json_object_object_add(e, "type", json_object_new_string("clipboard"));
			json_object_object_add(e, "op", json_object_new_string(ev[i].op == GFX_CLIP_OP_COPY ? "copy" : "paste"));
		} else if (ev[i].type == GFX_INPUT_POINTER) {
			json_object_object_add(e, "type", json_object_new_string("pointer"));
			json_object_object_add(e, "x", json_object_new_int(ev[i].x));
			json_object_object_add(e, "y", json_object_new_int(ev[i].y));
			json_object_object_add(e, "buttons", json_object_new_int(ev[i].buttons));
			json_object_object_add(e, "window", json_object_new_int64(ev[i].window));
		} else {
			json_object_object_add(e, "type",
					       json_object_new_string(ev[i].type == GFX_INPUT_FOCUS ? "focus" : "close"));
			json_object_object_add(e, "window", json_object_new_int64(ev[i].window));
		}
		json_object_array_add(arr, e);
	}
	json_object_object_add(root, "events", arr);
	return root;
}

int gfx_input_from_json(struct json_object *j, gfx_input_event *evs, size_t max, size_t *ret_n,
			scm_error **ret_err)
{
	struct json_object *arr, *v;
	size_t n = 0;

	/* The array itself (poll_input's result) or {"events": array}. */
	arr = j;
	if (j && json_object_is_type(j, json_type_object) && !json_object_object_get_ex(j, "events", &arr))
		arr = NULL;
	if (!arr || !json_object_is_type(arr, json_type_array))
		return ERR(GFX_E_INVALID, "/events: must be an array");
	size_t len = json_object_array_length(arr);
	if (len > max)
		return ERR(GFX_E_LIMIT, "/events: %zu events, at most %zu", len, max);
	for (size_t i = 0; i < len; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		gfx_input_event ev = { 0 };
		int32_t x;
		if (!e || !json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "type", &v) || !json_object_is_type(v, json_type_string))
			return ERR(GFX_E_INVALID, "/events/%zu/type: missing", i);
		const char *t = json_object_get_string(v);
		if (strcmp(t, "key") == 0) {
			ev.type = GFX_INPUT_KEY;
			if (!json_object_object_get_ex(e, "down", &v) || !json_object_is_type(v, json_type_boolean))
				return ERR(GFX_E_INVALID, "/events/%zu/down: must be a boolean", i);
			ev.down = json_object_get_boolean(v);
			if (!json_object_object_get_ex(e, "keysym", &v) || get_i32(v, &x) < 0 || x < 0)
				return ERR(GFX_E_INVALID, "/events/%zu/keysym: must be an integer", i);
			ev.keysym = (uint32_t)x;
		} else if (strcmp(t, "pointer") == 0) {
			ev.type = GFX_INPUT_POINTER;
			if (!json_object_object_get_ex(e, "x", &v) || get_i32(v, &ev.x) < 0)
				return ERR(GFX_E_INVALID, "/events/%zu/x: must be an integer", i);
			if (!json_object_object_get_ex(e, "y", &v) || get_i32(v, &ev.y) < 0)
				return ERR(GFX_E_INVALID, "/events/%zu/y: must be an integer", i);
			if (!json_object_object_get_ex(e, "buttons", &v) || get_i32(v, &x) < 0 || x < 0 || x > 255)
				return ERR(GFX_E_INVALID, "/events/%zu/buttons: must be 0..255", i);
			ev.buttons = (uint8_t)x;
			if (get_window(e, &ev.window) < 0)
				return ERR(GFX_E_INVALID, "/events/%zu/window: must be an integer in 0..4294967295", i);
		} else if (strcmp(t, "focus") == 0 || strcmp(t, "close") == 0) {
			ev.type = t[0] == 'f' ? GFX_INPUT_FOCUS : GFX_INPUT_CLOSE;
			if (!json_object_object_get_ex(e, "window", &v) || get_window(e, &ev.window) < 0)
				return ERR(GFX_E_INVALID, "/events/%zu/window: must be an integer in 0..4294967295", i);
		} else if (strcmp(t, "clipboard") == 0) {
			ev.type = GFX_INPUT_CLIPBOARD;
			const char *op = json_object_object_get_ex(e, "op", &v) && json_object_is_type(v, json_type_string)
						 ? json_object_get_string(v) : "";
			if (strcmp(op, "copy") && strcmp(op, "paste"))
				return ERR(GFX_E_INVALID, "/events/%zu/op: must be \"copy\" or \"paste\"", i);
			ev.op = strcmp(op, "copy") == 0 ? GFX_CLIP_OP_COPY : GFX_CLIP_OP_PASTE;
		} else {
			return ERR(GFX_E_INVALID, "/events/%zu/type: unknown \"%.32s\"", i, t);
		}
		evs[n++] = ev;
	}
	*ret_n = n;
	return 0;
}
