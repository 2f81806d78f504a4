/* test_gfx_server.c: the proxy engine with real compositing: weighted
 * sharing, hostile clients (wrong sizes, damage outside the surface,
 * floods of presents, malformed present messages), input routed to the
 * focused client only. */
#include <json-c/json.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server.h"
#include "scm/macro.h"

/* The failure's message ("" when none); err is reset before each call. */
#define MSG(e) ((e) && (e)->message ? (e)->message : "")
#define FRESH(e) (scm_error_free(e), (e) = NULL, &(e))

static gfx_server *new_server(uint32_t w, uint32_t h)
{
	gfx_server *s = NULL;
	gfx_server_config cfg = { .width = w, .height = h, .background = 0x303030 };
	assert_int_equal(gfx_server_new(&cfg, &s), 0);
	return s;
}

static void paint(gfx_client *c, uint32_t v)
{
	gfx_surface *sf = gfx_client_surface(c);
	for (size_t i = 0; i < (size_t)sf->width * sf->height; i++)
		sf->pixels[i] = v;
}

static void test_weighted_share_real_work(void **state)
{
	gfx_server *s = new_server(800, 600);
	gfx_client *a, *b;
	assert_int_equal(gfx_client_new(s, "light", 300, 300, 1, &a), 0);
	assert_int_equal(gfx_client_new(s, "heavy", 300, 300, 3, &b), 0);
	paint(a, 0x112233);
	paint(b, 0x445566);
	gfx_server_work(s, INT64_MAX);
	gfx_timebank *tb = gfx_server_timebank(s);
	uint64_t base_a = tb->c[0].used_ns, base_b = tb->c[1].used_ns;
	/* Both always have a frame queued: the bank alone decides. */
	for (int i = 0; i < 20000; i++) {
		gfx_client_present(a, NULL, 0);
		gfx_client_present(a, &(gfx_rect){ 0, 0, 300, 300 }, 1);
		gfx_client_present(b, &(gfx_rect){ 0, 0, 300, 300 }, 1);
		gfx_server_work(s, 0); /* one serve per round */
	}
	double ua = (double)(tb->c[0].used_ns - base_a), ub = (double)(tb->c[1].used_ns - base_b);
	double share = ua / (ua + ub);
	print_message("# weights 1:3, light client's share %.4f (ideal 0.25)\n", share);
	assert_true(share > 0.25 * 0.95 && share < 0.25 * 1.05);
	/* The light one had its surplus frames coalesced, and it says so. */
	struct json_object *st = gfx_server_stats(s), *cl, *v;
	assert_true(json_object_object_get_ex(st, "clients", &cl));
	assert_true(json_object_object_get_ex(json_object_array_get_idx(cl, 0), "frames_dropped", &v));
	assert_true(json_object_get_int64(v) > 0);
	json_object_put(st);
	gfx_server_free(s);
}

static void test_flood_does_not_starve(void **state)
{
	gfx_server *s = new_server(640, 480);
	gfx_client *flood, *calm;
	assert_int_equal(gfx_client_new(s, "flood", 200, 200, 1, &flood), 0);
	assert_int_equal(gfx_client_new(s, "calm", 200, 200, 1, &calm), 0);
	gfx_server_work(s, INT64_MAX);
	gfx_timebank *tb = gfx_server_timebank(s);
	for (int round = 0; round < 200; round++) {
		for (int k = 0; k < 500; k++) {
			gfx_rect r = { (k * 13) % 400 - 100, (k * 7) % 400 - 100, 1 + k % 300, 1 + k % 250 };
			gfx_client_present(flood, &r, 1);
		}
		paint(calm, 0xABCDEF - (uint32_t)round);
		gfx_client_present(calm, &(gfx_rect){ 0, 0, 200, 200 }, 1);
		gfx_server_work(s, INT64_MAX);
	}
	/* Every calm frame reached the desktop despite 100000 hostile presents. */
	assert_int_equal(tb->c[1].served, 200 + 0);
	assert_int_equal(tb->c[1].dropped, 0);
	/* Rects entirely outside the surface queue nothing; the rest coalesce. */
	print_message("# flood: %llu presents coalesced\n", (unsigned long long)tb->c[0].dropped);
	assert_true(tb->c[0].dropped > 200 * 300);
	gfx_compositor *c = gfx_server_compositor(s);
	gfx_overlay *o = gfx_comp_find(c, gfx_client_id(calm));
	assert_int_equal(c->fb[(size_t)o->y * c->width + o->x], 0xFF000000 | (0xABCDEF - 199));
	assert_int_equal(gfx_client_present(flood, NULL, GFX_DAMAGE_MAX + 1), GFX_E_LIMIT);
	gfx_server_free(s);
}

static void test_wrong_sizes(void **state)
{
	gfx_server *s = new_server(320, 200);
	gfx_client *c = NULL;
	assert_int_equal(gfx_client_new(s, "x", 0, 10, 1, &c), GFX_E_INVALID);
	assert_int_equal(gfx_client_new(s, "x", 10, 0, 1, &c), GFX_E_INVALID);
	assert_int_equal(gfx_client_new(s, "x", 100000, 10, 1, &c), GFX_E_INVALID);
	assert_int_equal(gfx_client_new(s, "x", 8192, 8192, 1, &c), GFX_E_LIMIT);
	assert_int_equal(gfx_client_new(s, "x", 10, 10, 0, &c), GFX_E_INVALID);
	assert_null(c);
	/* A surface bigger than the desktop is fine: it is clipped. */
	assert_int_equal(gfx_client_new(s, "big", 1000, 1000, 1, &c), 0);
	paint(c, 0x00FF00);
	gfx_client_present(c, &(gfx_rect){ -5, -5, 2000, 2000 }, 1);
	gfx_server_work(s, INT64_MAX);
	gfx_compositor *comp = gfx_server_compositor(s);
	/* (the taskbar lies over the bottom 20 rows) */
	assert_int_equal(comp->fb[(size_t)179 * 320 + 319], 0xFF00FF00);
	gfx_server_free(s);
}

static void test_placement(void **state)
{
	gfx_server *s = new_server(800, 600);
	gfx_compositor *c = gfx_server_compositor(s);
	gfx_client *cl[6];
	const uint32_t sz[6][2] = { { 300, 200 }, { 300, 200 }, { 100, 100 }, { 400, 250 }, { 200, 200 }, { 50, 50 } };
	for (int i = 0; i < 6; i++)
		assert_int_equal(gfx_client_new(s, "p", sz[i][0], sz[i][1], 1, &cl[i]), 0);
	/* No two frames overlap while there is room. */
	for (uint32_t i = 0; i < c->n_ov; i++)
		for (uint32_t k = i + 1; k < c->n_ov; k++) {
			gfx_rect a = gfx_overlay_frame(c, c->ov[i]), b = gfx_overlay_frame(c, c->ov[k]), r;
			assert_false(gfx_rect_intersect(&a, &b, &r));
		}
	/* A client that leaves frees its spot for the next one. */
	gfx_overlay *o = gfx_comp_find(c, gfx_client_id(cl[0]));
	int32_t x = o->x, y = o->y;
	gfx_client_free(cl[0]);
	gfx_client *again;
	assert_int_equal(gfx_client_new(s, "q", 300, 200, 1, &again), 0);
	o = gfx_comp_find(c, gfx_client_id(again));
	assert_int_equal(o->x, x);
	assert_int_equal(o->y, y);
	gfx_server_free(s);
}

static const struct {
	const char *json;
	int want;
	size_t n;
	const char *err; /* prefix of the message */
} damage_cases[] = {
	{ "{}", 0, 1, NULL },
	{ "{\"damage\":null}", 0, 1, NULL },
	{ "{\"damage\":[]}", 0, 0, NULL },
	{ "{\"damage\":[[0,0,10,10],[5,5,1,1]]}", 0, 2, NULL },
	{ "{\"damage\":[[1000,1000,10,10]]}", 0, 0, NULL }, /* outside: dropped */
	{ "{\"damage\":[[-10,-10,20,20]]}", 0, 1, NULL },
	{ "[1,2]", GFX_E_INVALID, 0, "/:" },
	{ "{\"damage\":7}", GFX_E_INVALID, 0, "/damage:" },
	{ "{\"damage\":[[0,0,10]]}", GFX_E_INVALID, 0, "/damage/0:" },
	{ "{\"damage\":[[0,0,10,10],\"x\"]}", GFX_E_INVALID, 0, "/damage/1:" },
	{ "{\"damage\":[[0,0,1.5,10]]}", GFX_E_INVALID, 0, "/damage/0/2:" },
	{ "{\"damage\":[[0,0,-1,10]]}", GFX_E_INVALID, 0, "/damage/0:" },
	{ "{\"damage\":[[0,4294967296,1,1]]}", GFX_E_INVALID, 0, "/damage/0/1:" },
	{ "{\"damage\":[[0,0,99999999999999999999999,1]]}", GFX_E_INVALID, 0, "/damage/0/2:" },
	{ "{\"damage\":[[0,0,\"1\",1]]}", GFX_E_INVALID, 0, "/damage/0/2:" },
};

static void test_damage_message_table(void **state)
{
	for (size_t i = 0; i < sizeof(damage_cases) / sizeof(damage_cases[0]); i++) {
		struct json_object *j = json_tokener_parse(damage_cases[i].json);
		assert_non_null(j);
		gfx_rect rects[GFX_DAMAGE_MAX];
		size_t n = 99;
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		int r = gfx_parse_damage(j, 100, 100, rects, GFX_DAMAGE_MAX, &n, FRESH(err));
		if (r != damage_cases[i].want)
			fail_msg("%s: got %d want %d (%s)", damage_cases[i].json, r, damage_cases[i].want, MSG(err));
		if (r == 0 && n != damage_cases[i].n)
			fail_msg("%s: %zu rects, want %zu", damage_cases[i].json, n, damage_cases[i].n);
		if (r == 0)
			for (size_t k = 0; k < n; k++)
				assert_true(rects[k].x >= 0 && rects[k].y >= 0 && rects[k].x + rects[k].w <= 100 &&
					    rects[k].y + rects[k].h <= 100);
		if (damage_cases[i].err && strncmp(MSG(err), damage_cases[i].err, strlen(damage_cases[i].err)))
			fail_msg("%s: error \"%s\" does not name %s", damage_cases[i].json, MSG(err),
				 damage_cases[i].err);
		json_object_put(j);
	}
	/* Too many rects. */
	struct json_object *j = json_object_new_object(), *arr = json_object_new_array();
	for (unsigned i = 0; i < GFX_DAMAGE_MAX + 1; i++) {
		struct json_object *r = json_object_new_array();
		for (int k = 0; k < 4; k++)
			json_object_array_add(r, json_object_new_int(1));
		json_object_array_add(arr, r);
	}
	json_object_object_add(j, "damage", arr);
	gfx_rect rects[GFX_DAMAGE_MAX];
	size_t n;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	assert_int_equal(gfx_parse_damage(j, 10, 10, rects, GFX_DAMAGE_MAX, &n, FRESH(err)), GFX_E_LIMIT);
	json_object_put(j);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

static void test_input_to_focused_only(void **state)
{
	gfx_server *s = new_server(800, 400);
	gfx_client *a, *b;
	gfx_input_event ev[8];
	assert_int_equal(gfx_client_new(s, "a", 200, 200, 1, &a), 0);
	assert_int_equal(gfx_client_new(s, "b", 200, 200, 1, &b), 0);
	gfx_compositor *c = gfx_server_compositor(s);
	gfx_overlay *ob = gfx_comp_find(c, gfx_client_id(b));
	assert_ptr_equal(gfx_server_focused(s), a); /* the first client */
	gfx_server_key(s, true, 'x');
	assert_true(readable(gfx_client_event_fd(a)));
	assert_false(readable(gfx_client_event_fd(b)));
	assert_int_equal(gfx_client_take_input(a, ev, 8), 1);
	assert_int_equal(ev[0].keysym, 'x');
	assert_false(readable(gfx_client_event_fd(a)));
	/* Pointer over b without a click: b is not focused, nobody hears it. */
	gfx_server_pointer(s, 0, ob->x + 5, ob->y + 6);
	assert_int_equal(gfx_client_take_input(b, ev, 8), 0);
	assert_int_equal(gfx_client_take_input(a, ev, 8), 0);
	/* Click on b: focus moves (b hears of it), b gets the click in its
	 * own coordinates. */
	gfx_server_pointer(s, 1, ob->x + 5, ob->y + 6);
	assert_ptr_equal(gfx_server_focused(s), b);
	assert_int_equal(gfx_client_take_input(b, ev, 8), 2);
	assert_int_equal(ev[0].type, GFX_INPUT_FOCUS);
	assert_int_equal(ev[0].window, 0);
	assert_int_equal(ev[1].type, GFX_INPUT_POINTER);
	assert_int_equal(ev[1].x, 5);
	assert_int_equal(ev[1].y, 6);
	gfx_server_pointer(s, 0, ob->x + 5, ob->y + 6);
	gfx_server_key(s, true, 'y');
	assert_int_equal(gfx_client_take_input(a, ev, 8), 0);
	assert_int_equal(gfx_client_take_input(b, ev, 8), 2);
	assert_int_equal(ev[1].keysym, 'y');
	/* Clicking the border or the background focuses nobody new. */
	gfx_server_pointer(s, 1, ob->x - 2, ob->y);
	gfx_server_pointer(s, 0, ob->x - 2, ob->y);
	assert_ptr_equal(gfx_server_focused(s), b);
	/* A client that never reads loses the oldest events, not memory. */
	for (int i = 0; i < 1000; i++)
		gfx_server_key(s, i & 1, 'a');
	size_t got = 0, k;
	while ((k = gfx_client_take_input(b, ev, 8)) > 0)
		got += k;
	assert_int_equal(got, GFX_INPUT_QUEUE);
	gfx_server_free(s);
}

static void test_input_json_roundtrip(void **state)
{
	gfx_input_event in[2] = { { .type = GFX_INPUT_KEY, .down = 1, .keysym = 0xff0d },
				  { .type = GFX_INPUT_POINTER, .buttons = 4, .x = -3, .y = 70 } };
	gfx_input_event out[2];
	size_t n;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	struct json_object *j = gfx_input_to_json(in, 2);
	assert_int_equal(gfx_input_from_json(j, out, 2, &n, FRESH(err)), 0);
	assert_int_equal(n, 2);
	assert_memory_equal(in, out, sizeof(in));
	assert_int_equal(gfx_input_from_json(j, out, 1, &n, FRESH(err)), GFX_E_LIMIT);
	json_object_put(j);
	j = json_tokener_parse("{\"events\":[{\"type\":\"pointer\",\"x\":1,\"y\":2,\"buttons\":900}]}");
	assert_int_equal(gfx_input_from_json(j, out, 2, &n, FRESH(err)), GFX_E_INVALID);
	assert_non_null(strstr(MSG(err), "/events/0/buttons"));
	json_object_put(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weighted_share_real_work),
		cmocka_unit_test(test_flood_does_not_starve),
		cmocka_unit_test(test_wrong_sizes),
		cmocka_unit_test(test_placement),
		cmocka_unit_test(test_damage_message_table),
		cmocka_unit_test(test_input_to_focused_only),
		cmocka_unit_test(test_input_json_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
