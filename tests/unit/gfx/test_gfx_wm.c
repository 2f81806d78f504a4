/* test_gfx_wm.c: the window manager as pure functions: the title font,
 * hit testing of title bars, buttons and the taskbar, title bars the app
 * cannot paint over, stacking (raise with pop-ups, minimise, restore),
 * dragging with the title kept in reach, set_windows' list and its
 * parser's refusals. */
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "font.h"
#include "gfx.h"
#include "wm.h"

static int owner_a, owner_b;

typedef struct fixture {
	gfx_compositor *c;
	gfx_surface *sa, *sb;
	gfx_wm wm;
	uint32_t a, b; /* whole-surface windows of a and b */
} fixture;

static void setup_fx(fixture *f)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(gfx_comp_new(400, 300, 0x2b2b2b, 4, &f->c), 0);
	f->c->title_px = GFX_TITLE_PX;
	f->c->taskbar_px = GFX_TASKBAR_PX;
	gfx_wm_init(&f->wm, f->c);
	assert_int_equal(gfx_surface_new(100, 80, &f->sa), 0);
	assert_int_equal(gfx_surface_new(120, 90, &f->sb), 0);
	for (size_t i = 0; i < 100 * 80; i++)
		f->sa->pixels[i] = 0xC03030;
	for (size_t i = 0; i < 120 * 90; i++)
		f->sb->pixels[i] = 0x30A040;
	assert_int_equal(gfx_wm_add(&f->wm, &owner_a, f->sa, 20, 40, 0x1E88E5, "alpha", &f->a), 0);
	assert_int_equal(gfx_wm_add(&f->wm, &owner_b, f->sb, 200, 40, 0xFDD835, "beta", &f->b), 0);
}

static void free_fx(fixture *f)
{
	gfx_comp_free(f->c);
	gfx_surface_free(f->sa);
	gfx_surface_free(f->sb);
}

static uint32_t px(const gfx_compositor *c, int x, int y)
{
	return c->fb[(size_t)y * c->width + x] & 0xFFFFFFu;
}

static void test_font(void **state)
{
	/* Anything the font lacks is '?'. */
	assert_ptr_equal(gfx_font_glyph(0x07), gfx_font_glyph('?'));
	assert_ptr_equal(gfx_font_glyph(0xE9), gfx_font_glyph('?'));
	assert_ptr_not_equal(gfx_font_glyph('A'), gfx_font_glyph('?'));
	assert_int_equal(gfx_font_width("abc", 64), 3 * GFX_FONT_W);
	assert_int_equal(gfx_font_width("abc", 2), 2 * GFX_FONT_W);
	uint32_t fb[40 * 20] = { 0 };
	gfx_rect all = { 0, 0, 40, 20 }, left = { 0, 0, 5, 20 };
	uint32_t n = gfx_font_draw(fb, 40, &all, 1, 2, "HI", 0xFFFFFF);
	assert_true(n > 10);
	/* Only the text's cells, only inside the clip. */
	for (int y = 0; y < 20; y++)
		for (int x = 0; x < 40; x++)
			if (fb[y * 40 + x])
				assert_true(x >= 1 && x < 1 + 2 * GFX_FONT_W && y >= 2 && y < 2 + GFX_FONT_H);
	memset(fb, 0, sizeof(fb));
	assert_true(gfx_font_draw(fb, 40, &left, 1, 2, "HI", 0xFFFFFF) < n);
	for (int y = 0; y < 20; y++)
		for (int x = 5; x < 40; x++)
			assert_int_equal(fb[y * 40 + x], 0);
	/* Far outside the clip: nothing, and no arithmetic surprise. */
	assert_int_equal(gfx_font_draw(fb, 40, &all, -100000, 2, "HI", 0xFFFFFF), 0);
}

static void test_hit_parts(void **state)
{
	fixture f;
	setup_fx(&f);
	gfx_overlay *o = gfx_comp_find(f.c, f.a);
	uint32_t id;
	gfx_rect t = gfx_wm_title_rect(f.c, o);
	assert_int_equal(t.x, 16);
	assert_int_equal(t.y, 40 - 4 - 16);
	assert_int_equal(t.w, 108);
	assert_int_equal(t.h, 16);
	gfx_rect close = gfx_wm_button_rect(f.c, o, GFX_PART_CLOSE);
	gfx_rect mini = gfx_wm_button_rect(f.c, o, GFX_PART_MINIMISE);
	assert_true(close.x > mini.x && close.x + close.w <= t.x + t.w);
	assert_int_equal(gfx_wm_hit(f.c, 25, 45, &id), GFX_PART_CONTENT);
	assert_int_equal(id, f.a);
	assert_int_equal(gfx_wm_hit(f.c, 18, 45, &id), GFX_PART_BORDER);
	assert_int_equal(gfx_wm_hit(f.c, 30, 25, &id), GFX_PART_TITLE);
	assert_int_equal(gfx_wm_hit(f.c, close.x + 1, close.y + 1, &id), GFX_PART_CLOSE);
	assert_int_equal(gfx_wm_hit(f.c, mini.x + 1, mini.y + 1, &id), GFX_PART_MINIMISE);
	assert_int_equal(gfx_wm_hit(f.c, 5, 5, &id), GFX_PART_NONE);
	assert_int_equal(id, 0);
	/* The taskbar: entries in the order windows came. */
	uint32_t ids[4];
	assert_int_equal(gfx_wm_taskbar_entries(f.c, ids, 4), 2);
	assert_int_equal(ids[0], f.a);
	assert_int_equal(ids[1], f.b);
	gfx_rect e1 = gfx_wm_taskbar_entry(f.c, 1, 2);
	assert_int_equal(gfx_wm_hit(f.c, e1.x + 3, e1.y + 3, &id), GFX_PART_TASKBAR);
	assert_int_equal(id, f.b);
	assert_int_equal(gfx_wm_hit(f.c, 399, 299, &id), GFX_PART_TASKBAR);
	assert_int_equal(id, 0);
	/* The compositor's own hit test gives no content under the taskbar. */
	int32_t lx, ly;
	gfx_wm_move(&f.wm, f.a, 20, 250);
	assert_false(gfx_comp_hit(f.c, 25, 290, &id, &lx, &ly));
	free_fx(&f);
}

static void test_title_outside_surface(void **state)
{
	fixture f;
	setup_fx(&f);
	/* The app paints its whole surface in its own border colour and
	 * white: nothing changes in the title bar or the taskbar. */
	for (size_t i = 0; i < 100 * 80; i++)
		f.sa->pixels[i] = i % 2 ? 0x1E88E5 : 0xFFFFFF;
	gfx_comp_render(f.c, NULL);
	uint32_t before[16 * 108], k = 0;
	gfx_rect t = gfx_wm_title_rect(f.c, gfx_comp_find(f.c, f.a));
	for (int y = t.y; y < t.y + t.h; y++)
		for (int x = t.x; x < t.x + t.w; x++)
			before[k++] = px(f.c, x, y);
	for (size_t i = 0; i < 100 * 80; i++)
		f.sa->pixels[i] = 0x000000;
	gfx_rect all = { -1000, -1000, 5000, 5000 };
	gfx_comp_damage_surface(f.c, f.a, &all, 1);
	gfx_comp_render(f.c, NULL);
	k = 0;
	for (int y = t.y; y < t.y + t.h; y++)
		for (int x = t.x; x < t.x + t.w; x++)
			assert_int_equal(px(f.c, x, y), before[k++]);
	/* The bar is the border colour with text ("[alpha]") on it: white
	 * once focused, halfway to the bar's colour before. */
	uint32_t grey = 0;
	for (int y = t.y; y < t.y + t.h; y++)
		for (int x = t.x; x < t.x + 60; x++)
			grey += px(f.c, x, y) == ((0xFFFFFFu >> 1 & 0x7F7F7Fu) + (0x1E88E5u >> 1 & 0x7F7F7Fu));
	assert_true(grey > 20);
	gfx_wm_focus(&f.wm, f.a);
	gfx_comp_render(f.c, NULL);
	assert_int_equal(px(f.c, t.x + 1, t.y + 1), 0x1E88E5);
	uint32_t text = 0;
	for (int y = t.y; y < t.y + t.h; y++)
		for (int x = t.x; x < t.x + 60; x++)
			text += px(f.c, x, y) == 0xFFFFFF;
	assert_true(text > 20);
	assert_int_equal(gfx_wm_text_colour(0xFDD835), 0x000000);
	assert_int_equal(gfx_wm_text_colour(0x1E88E5), 0xFFFFFF);
	free_fx(&f);
}

static void test_stacking(void **state)
{
	fixture f;
	setup_fx(&f);
	gfx_wm_action a[GFX_WM_ACTIONS_MAX];
	/* b is on top; a click on a's content raises and focuses a. */
	gfx_wm_move(&f.wm, f.b, 60, 60);
	assert_int_equal(f.c->ov[f.c->n_ov - 1]->id, f.b);
	size_t n = gfx_wm_pointer(&f.wm, 1, 22, 42, a);
	assert_int_equal(n, 2);
	assert_int_equal(a[0].kind, GFX_WM_ACT_FOCUS);
	assert_ptr_equal(a[0].owner, &owner_a);
	assert_int_equal(a[1].kind, GFX_WM_ACT_POINTER);
	assert_int_equal(a[1].x, 2);
	assert_int_equal(a[1].y, 2);
	assert_int_equal(f.c->ov[f.c->n_ov - 1]->id, f.a);
	/* Held, the pointer stays a's even over b. */
	n = gfx_wm_pointer(&f.wm, 1, 150, 120, a);
	assert_int_equal(n, 1);
	assert_ptr_equal(a[0].owner, &owner_a);
	assert_int_equal(gfx_wm_pointer(&f.wm, 0, 150, 120, a), 1);
	/* Minimise a: press and release on its button. */
	gfx_rect m = gfx_wm_button_rect(f.c, gfx_comp_find(f.c, f.a), GFX_PART_MINIMISE);
	assert_int_equal(gfx_wm_pointer(&f.wm, 1, m.x + 2, m.y + 2, a), 0);
	n = gfx_wm_pointer(&f.wm, 0, m.x + 2, m.y + 2, a);
	assert_true(gfx_comp_find(f.c, f.a)->hidden);
	assert_int_equal(n, 1); /* the focus goes to b */
	assert_ptr_equal(a[0].owner, &owner_b);
	uint32_t id;
	assert_int_equal(gfx_wm_hit(f.c, 22, 42, &id), GFX_PART_NONE);
	/* A press on a button that ends elsewhere does nothing. */
	gfx_rect cl = gfx_wm_button_rect(f.c, gfx_comp_find(f.c, f.b), GFX_PART_CLOSE);
	gfx_wm_pointer(&f.wm, 1, cl.x + 1, cl.y + 1, a);
	assert_int_equal(gfx_wm_pointer(&f.wm, 0, 5, 5, a), 0);
	/* The taskbar restores a, on top and focused. */
	gfx_rect e0 = gfx_wm_taskbar_entry(f.c, 0, 2);
	n = gfx_wm_pointer(&f.wm, 1, e0.x + 2, e0.y + 2, a);
	gfx_wm_pointer(&f.wm, 0, e0.x + 2, e0.y + 2, a);
	assert_int_equal(n, 1);
	assert_ptr_equal(a[0].owner, &owner_a);
	assert_false(gfx_comp_find(f.c, f.a)->hidden);
	assert_int_equal(f.c->ov[f.c->n_ov - 1]->id, f.a);
	/* Close is a request to the app; the window stays until it goes. */
	cl = gfx_wm_button_rect(f.c, gfx_comp_find(f.c, f.a), GFX_PART_CLOSE);
	gfx_wm_pointer(&f.wm, 1, cl.x + 1, cl.y + 1, a);
	n = gfx_wm_pointer(&f.wm, 0, cl.x + 1, cl.y + 1, a);
	assert_int_equal(n, 1);
	assert_int_equal(a[0].kind, GFX_WM_ACT_CLOSE);
	assert_ptr_equal(a[0].owner, &owner_a);
	assert_non_null(gfx_comp_find(f.c, f.a));
	free_fx(&f);
}

static void test_drag(void **state)
{
	fixture f;
	setup_fx(&f);
	gfx_wm_action a[GFX_WM_ACTIONS_MAX];
	/* Grab a's title 10 px in, drag by (+50, +70): no pointer reaches the app. */
	assert_int_equal(gfx_wm_pointer(&f.wm, 1, 30, 25, a), 1);
	assert_int_equal(a[0].kind, GFX_WM_ACT_FOCUS);
	assert_int_equal(gfx_wm_pointer(&f.wm, 1, 55, 60, a), 0);
	assert_int_equal(gfx_wm_pointer(&f.wm, 0, 80, 95, a), 0);
	gfx_overlay *o = gfx_comp_find(f.c, f.a);
	assert_int_equal(o->x, 70);
	assert_int_equal(o->y, 110);
	/* Up off the desktop: the title bar stops at the top edge. */
	gfx_wm_pointer(&f.wm, 1, 80, 95, a);
	gfx_wm_pointer(&f.wm, 0, 80, -400, a);
	assert_int_equal(o->y, 4 + 16);
	/* Down under the taskbar, or off a side: some of it stays in reach. */
	gfx_wm_move(&f.wm, f.a, -5000, 5000);
	assert_true(o->x + o->src.w + 4 >= 32);
	assert_true(o->y - 4 <= 300 - 20 - 16);
	free_fx(&f);
}

static void test_set_windows(void **state)
{
	fixture f;
	setup_fx(&f);
	gfx_window_decl d[3] = {
		{ .id = 7, .r = { 0, 0, 50, 40 }, .title = "one" },
		{ .id = 9, .r = { 60, 10, 30, 30 }, .title = "two" },
		{ .id = 11, .r = { 20, 20, 30, 20 }, .popup = true, .parent = 7 },
	};
	gfx_wm_focus(&f.wm, f.a);
	assert_int_equal(gfx_wm_set_windows(&f.wm, &owner_a, f.sa, 20, 40, 0x1E88E5, "alpha", d, 3), 0);
	/* a's focus moved on to its new topmost top-level window. */
	assert_int_equal(gfx_wm_find(&f.wm, f.wm.focus_ov)->wid, 9);
	uint32_t ovs[8];
	assert_int_equal(gfx_wm_windows(&f.wm, &owner_a, ovs, 8), 3); /* the whole-surface one went */
	gfx_window *w7 = NULL, *w11 = NULL, *w9 = NULL;
	for (size_t i = 0; i < 3; i++) {
		gfx_window *w = gfx_wm_find(&f.wm, ovs[i]);
		if (w->wid == 7)
			w7 = w;
		if (w->wid == 9)
			w9 = w;
		if (w->wid == 11)
			w11 = w;
	}
	assert_non_null(w7);
	assert_non_null(w9);
	assert_non_null(w11);
	gfx_overlay *o9 = gfx_comp_find(f.c, w9->ov), *o11 = gfx_comp_find(f.c, w11->ov);
	assert_int_equal(o9->x, 80);
	assert_int_equal(o9->y, 50);
	assert_string_equal(o9->title, "[alpha] two");
	assert_false(o11->titled);
	assert_int_equal(w11->parent_ov, w7->ov);
	/* Only top-level windows are in the taskbar. */
	uint32_t ids[8];
	assert_int_equal(gfx_wm_taskbar_entries(f.c, ids, 8), 3); /* 7, 9 and beta's */
	/* The pop-up moves and rises with its parent. */
	gfx_wm_move(&f.wm, w7->ov, 220, 150);
	assert_int_equal(o11->x, 240);
	assert_int_equal(o11->y, 170);
	gfx_wm_focus(&f.wm, f.b);
	gfx_wm_focus(&f.wm, w11->ov);
	assert_int_equal(f.c->ov[f.c->n_ov - 1]->id, w11->ov);
	assert_int_equal(f.wm.focus_ov, w7->ov); /* keys go to the top-level window */
	/* The content maps through the window's offset in the surface. */
	f.sa->pixels[15 * 100 + 65] = 0x00FF00;
	gfx_comp_damage_all(f.c);
	gfx_comp_render(f.c, NULL);
	assert_int_equal(px(f.c, 80 + 5, 50 + 5), 0x00FF00);
	/* Again without 9: 7 keeps its place, 9 goes. */
	d[1] = d[2];
	assert_int_equal(gfx_wm_set_windows(&f.wm, &owner_a, f.sa, 20, 40, 0x1E88E5, "alpha", d, 2), 0);
	assert_int_equal(gfx_wm_windows(&f.wm, &owner_a, ovs, 8), 2);
	assert_int_equal(gfx_comp_find(f.c, w7->ov)->x, 220);
	/* All of an owner's windows go with it. */
	gfx_wm_remove_owner(&f.wm, &owner_a);
	assert_int_equal(gfx_wm_windows(&f.wm, &owner_a, ovs, 8), 0);
	assert_int_equal(f.c->n_ov, 1);
	free_fx(&f);
}

static const struct {
	const char *json, *err;
	int code;
	size_t n;
} parse_cases[] = {
	{ "[]", NULL, 0, 0 },
	{ "[{\"id\":1,\"x\":0,\"y\":0,\"w\":10,\"h\":10,\"title\":\"t\",\"popup\":false,\"parent\":0}]", NULL, 0, 1 },
	{ "[{\"id\":1,\"x\":500,\"y\":0,\"w\":10,\"h\":10}]", NULL, 0, 0 }, /* outside: dropped */
	{ "{}", "/windows: must be an array", GFX_E_INVALID, 0 },
	{ "[3]", "/windows/0: must be an object", GFX_E_INVALID, 0 },
	{ "[{\"id\":0,\"x\":0,\"y\":0,\"w\":1,\"h\":1}]", "/windows/0/id: must be", GFX_E_INVALID, 0 },
	{ "[{\"id\":1,\"x\":0,\"y\":0,\"w\":0,\"h\":1}]", "/windows/0/w: must be", GFX_E_INVALID, 0 },
	{ "[{\"id\":1,\"x\":0,\"y\":0,\"w\":1}]", "/windows/0/h: missing", GFX_E_INVALID, 0 },
	{ "[{\"id\":1,\"x\":99999999999,\"y\":0,\"w\":1,\"h\":1}]", "/windows/0/x: must be", GFX_E_INVALID, 0 },
	{ "[{\"id\":1,\"x\":0,\"y\":0,\"w\":1,\"h\":1,\"colour\":1}]", "/windows/0/colour: unknown key", GFX_E_INVALID, 0 },
	{ "[{\"id\":1,\"x\":0,\"y\":0,\"w\":1,\"h\":1,\"title\":7}]", "/windows/0/title: must be a string", GFX_E_INVALID, 0 },
	{ "[{\"id\":1,\"x\":0,\"y\":0,\"w\":1,\"h\":1,\"popup\":1}]", "/windows/0/popup: must be a boolean", GFX_E_INVALID, 0 },
	{ "[{\"id\":1,\"x\":0,\"y\":0,\"w\":1,\"h\":1},{\"id\":1,\"x\":0,\"y\":0,\"w\":1,\"h\":1}]",
	  "/windows/1/id: 1 is there twice", GFX_E_INVALID, 0 },
};

static void test_parse_windows(void **state)
{
	gfx_window_decl d[GFX_WINDOWS_MAX];
	scm_error *err = NULL;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		struct json_object *j = json_tokener_parse(parse_cases[i].json);
		size_t n = 99;
		int r = gfx_parse_windows(j, 100, 80, d, GFX_WINDOWS_MAX, &n, &err);
		/* a refusal is one observation, under the code returned, made in the parser */
		const char *msg = err ? err->message : "";
		if (r != parse_cases[i].code || (parse_cases[i].err && !strstr(msg, parse_cases[i].err)) ||
		    (!r && (n != parse_cases[i].n || err)) ||
		    (r && (!err || err->code != r || err->cause || !strstr(err->where, "winjson.c"))))
			fail_msg("%s: got %d '%s' n=%zu", parse_cases[i].json, r, msg, n);
		err = scm_error_free(err);
		json_object_put(j);
	}
	/* Too many windows; a title with control bytes and UTF-8, cut short. */
	struct json_object *arr = json_object_new_array();
	for (int i = 0; i < 17; i++) {
		struct json_object *w = json_tokener_parse("{\"x\":0,\"y\":0,\"w\":5,\"h\":5}");
		json_object_object_add(w, "id", json_object_new_int(i + 1));
		json_object_array_add(arr, w);
	}
	size_t n;
	assert_int_equal(gfx_parse_windows(arr, 100, 80, d, GFX_WINDOWS_MAX, &n, &err), GFX_E_LIMIT);
	assert_non_null(err);
	assert_string_equal(err->message, "/windows: 17 windows, at most 16");
	err = scm_error_free(err);
	json_object_put(arr);
	struct json_object *j = json_tokener_parse("[{\"id\":5,\"x\":-3,\"y\":0,\"w\":500,\"h\":5,"
						   "\"title\":\"a\\u0007b\\u00e9c\",\"popup\":true,\"parent\":5}]");
	assert_int_equal(gfx_parse_windows(j, 100, 80, d, GFX_WINDOWS_MAX, &n, &err), 0);
	assert_null(err);
	assert_int_equal(n, 1);
	assert_string_equal(d[0].title, "a?b?c");
	assert_int_equal(d[0].r.x, 0);
	assert_int_equal(d[0].r.w, 100);
	assert_int_equal(d[0].parent, 0); /* a pop-up is no parent, not even its own */
	json_object_put(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_font),	   cmocka_unit_test(test_hit_parts),
		cmocka_unit_test(test_title_outside_surface), cmocka_unit_test(test_stacking),
		cmocka_unit_test(test_drag),	   cmocka_unit_test(test_set_windows),
		cmocka_unit_test(test_parse_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
