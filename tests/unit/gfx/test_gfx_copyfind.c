/* test_gfx_copyfind.c: what the proxy sends a viewer as CopyRect is
 * exactly the old pixels moved. Each case draws an old desktop, changes
 * it (a terminal scrolling up or down, a window dragged, unrelated
 * changes), and plays the viewer: it applies the copy to the old pixels,
 * then paints only what gfx_changed_parts() reports outside the copy; the
 * result must be the new desktop pixel for pixel, whatever was found. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gfx.h"

#define W 320
#define H 200
#define BG 0xFF202020u
#define LINE 13 /* rows per text line */

static uint32_t seed;
static uint32_t rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return seed >> 8;
}

/* One text line at row y of rect r: glyph-like columns on the background. */
static void text_line(uint32_t *fb, const gfx_rect *r, int32_t y, uint32_t salt)
{
	seed = salt * 2654435761u + 1;
	for (int32_t k = 0; k < LINE; k++)
		for (int32_t x = r->x; x < r->x + r->w; x++) {
			uint32_t v = rnd();
			fb[(size_t)(y + k) * W + x] = (k > 1 && k < LINE - 2 && v % 5 == 0) ? 0xFFD0D0D0u : BG;
		}
}

static void fill(uint32_t *fb, uint32_t v)
{
	for (size_t i = 0; i < (size_t)W * H; i++)
		fb[i] = v;
}

/* A terminal of n lines in r, the first showing line number first. */
static void terminal(uint32_t *fb, const gfx_rect *r, uint32_t first)
{
	for (int32_t l = 0; (l + 1) * LINE <= r->h; l++)
		text_line(fb, r, r->y + l * LINE, first + (uint32_t)l);
}

static bool in_copy(const gfx_copy *c, int32_t x, int32_t y)
{
	for (uint32_t i = 0; i < c->n; i++)
		if (x >= c->r[i].x && x < c->r[i].x + c->r[i].w && y >= c->r[i].y && y < c->r[i].y + c->r[i].h)
			return true;
	return false;
}

typedef struct viewer {
	uint32_t *fb;
	const uint32_t *cur;
	const gfx_copy *copy;
	uint64_t painted;
} viewer;

static void paint(void *ud, const gfx_rect *p)
{
	viewer *v = ud;
	assert_true(p->x >= 0 && p->y >= 0 && p->w > 0 && p->h > 0 && p->x + p->w <= W && p->y + p->h <= H);
	for (int32_t y = p->y; y < p->y + p->h; y++)
		for (int32_t x = p->x; x < p->x + p->w; x++)
			if (!in_copy(v->copy, x, y)) {
				v->fb[(size_t)y * W + x] = v->cur[(size_t)y * W + x];
				v->painted++;
			}
}

/* The viewer's side: copy first (from what it had), then the parts. */
static uint64_t replay(const uint32_t *old, const uint32_t *cur, const gfx_region *changed, const gfx_copy *c)
{
	uint32_t *fb = malloc((size_t)W * H * 4);
	assert_non_null(fb);
	memcpy(fb, old, (size_t)W * H * 4);
	for (uint32_t i = 0; i < c->n; i++) {
		const gfx_rect *r = &c->r[i];
		for (int32_t y = r->y; y < r->y + r->h; y++)
			for (int32_t x = r->x; x < r->x + r->w; x++)
				fb[(size_t)y * W + x] = old[(size_t)(y - c->dy) * W + (x - c->dx)];
	}
	viewer v = { fb, cur, c, 0 };
	for (uint32_t i = 0; i < changed->n; i++)
		gfx_changed_parts(old, cur, W, H, &changed->r[i], paint, &v);
	for (size_t i = 0; i < (size_t)W * H; i++)
		if (fb[i] != cur[i])
			fail_msg("pixel %zu,%zu: viewer has %08x, desktop %08x", i % W, i / W, fb[i], cur[i]);
	free(fb);
	return v.painted;
}

static uint64_t copied(const gfx_copy *c)
{
	uint64_t a = 0;
	for (uint32_t i = 0; i < c->n; i++)
		a += (uint64_t)c->r[i].w * (uint64_t)c->r[i].h;
	return a;
}

enum { SCROLL_UP, SCROLL_DOWN, SCROLL_LINES, DRAG, DRAG_WRONG_HINT, SCATTER, FLAT, NOTHING };
static const struct {
	const char *name;
	int kind;
	int32_t want_dx, want_dy; /* the copy expected (0, 0: none) */
	uint64_t min_copied;
} cases[] = {
	{ "terminal scrolls up 3 lines", SCROLL_UP, 0, -3 * LINE, 200 * 9 * LINE },
	{ "terminal scrolls down 1 line", SCROLL_DOWN, 0, LINE, 200 * 11 * LINE },
	{ "terminal scrolls up 2 lines, damage per line", SCROLL_LINES, 0, -2 * LINE, 200 * 9 * (LINE - 4) },
	{ "window dragged by (37, 11), with the hint", DRAG, 37, 11, 100 * 80 },
	{ "window dragged, the hint wrong: verified away", DRAG_WRONG_HINT, 0, 0, 0 },
	{ "scattered changes: no copy", SCATTER, 0, 0, 0 },
	{ "a flat area repainted: no copy", FLAT, 0, 0, 0 },
	{ "nothing changed inside the damage", NOTHING, 0, 0, 0 },
};

static void test_copy_table(void **state)
{
	uint32_t *old = malloc((size_t)W * H * 4), *cur = malloc((size_t)W * H * 4);
	assert_non_null(old);
	assert_non_null(cur);
	const gfx_rect term = { 40, 20, 200, 12 * LINE }, desk = { 0, 0, W, H };
	for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
		gfx_region changed;
		gfx_region_clear(&changed);
		gfx_move_hint hint[1];
		size_t nh = 0;
		fill(old, BG);
		switch (cases[t].kind) {
		case SCROLL_UP:
		case SCROLL_DOWN:
			terminal(old, &term, 100);
			memcpy(cur, old, (size_t)W * H * 4);
			terminal(cur, &term, cases[t].kind == SCROLL_UP ? 103 : 99);
			gfx_region_add(&changed, &term, &desk);
			break;
		case SCROLL_LINES:
			/* as the agent sees it: the blank rows between lines do
			 * not change, so each line is a damage rect of its own */
			terminal(old, &term, 100);
			memcpy(cur, old, (size_t)W * H * 4);
			terminal(cur, &term, 102);
			for (int32_t l = 0; l < 12; l++)
				gfx_region_add(&changed, &(gfx_rect){ term.x, term.y + l * LINE + 2, term.w, LINE - 4 }, &desk);
			break;
		case DRAG:
		case DRAG_WRONG_HINT: {
			gfx_rect win = { 20, 30, 100, 80 }, to = { 57, 41, 100, 80 };
			terminal(old, &win, 7);
			fill(cur, BG);
			terminal(cur, &to, 7);
			gfx_region_add(&changed, &win, &desk);
			gfx_region_add(&changed, &to, &desk);
			hint[nh++] = (gfx_move_hint){ to, cases[t].kind == DRAG ? 37 : 36, 11 };
			break;
		}
		case SCATTER:
			terminal(old, &term, 100);
			memcpy(cur, old, (size_t)W * H * 4);
			for (int i = 0; i < 50; i++)
				cur[(size_t)(term.y + (int32_t)(rnd() % (uint32_t)term.h)) * W + term.x +
				    (int32_t)(rnd() % (uint32_t)term.w)] ^= 0x00FFFFFFu;
			gfx_region_add(&changed, &term, &desk);
			break;
		case FLAT:
			fill(cur, 0xFF303030u);
			gfx_region_add(&changed, &term, &desk);
			for (int32_t y = 0; y < H; y++)
				for (int32_t x = 0; x < W; x++)
					if (x < term.x || x >= term.x + term.w || y < term.y || y >= term.y + term.h)
						cur[(size_t)y * W + x] = BG;
			break;
		case NOTHING:
			terminal(old, &term, 5);
			memcpy(cur, old, (size_t)W * H * 4);
			gfx_region_add(&changed, &desk, &desk);
			break;
		}
		gfx_copy c;
		bool found = gfx_copy_find(old, cur, W, H, &changed, hint, nh, &c);
		print_message("%s: found %d, (%d, %d), %u rects, %llu px\n", cases[t].name, found, c.dx, c.dy, c.n,
			      (unsigned long long)copied(&c));
		if (cases[t].want_dx || cases[t].want_dy) {
			assert_true(found);
			assert_int_equal(c.dx, cases[t].want_dx);
			assert_int_equal(c.dy, cases[t].want_dy);
			assert_true(copied(&c) >= cases[t].min_copied);
		} else {
			assert_false(found);
			assert_int_equal(c.n, 0);
		}
		uint64_t painted = replay(old, cur, &changed, &c);
		if (cases[t].kind == NOTHING)
			assert_int_equal(painted, 0);
		/* a scroll leaves only the new lines to paint */
		if (cases[t].kind == SCROLL_UP)
			assert_true(painted <= 200u * 3 * LINE);
	}
	free(old);
	free(cur);
}

/* Changed parts: every differing pixel is in one, unchanged bands give
 * none, and hostile rects stay on the desktop. */
static void test_changed_parts(void **state)
{
	uint32_t *old = calloc((size_t)W * H, 4), *cur = calloc((size_t)W * H, 4);
	assert_non_null(old);
	assert_non_null(cur);
	cur[(size_t)70 * W + 33] = 1;
	cur[(size_t)71 * W + 200] = 1;
	gfx_region changed;
	gfx_region_clear(&changed);
	gfx_region_add(&changed, &(gfx_rect){ 0, 0, W, H }, &(gfx_rect){ 0, 0, W, H });
	gfx_copy none = { 0 };
	assert_int_equal(replay(old, cur, &changed, &none), (200 - 33 + 1) * 2);
	static const gfx_rect hostile[] = {
		{ INT32_MIN, INT32_MIN, INT32_MAX, INT32_MAX }, { -10, -10, W + 20, H + 20 },
		{ W, H, 10, 10 }, { 5, 5, 0, 0 }, { INT32_MAX - 1, 0, INT32_MAX, H },
	};
	viewer v = { calloc((size_t)W * H, 4), cur, &none, 0 };
	assert_non_null(v.fb);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		gfx_changed_parts(old, cur, W, H, &hostile[i], paint, &v);
	assert_int_equal(v.painted, (200 - 33 + 1) * 2);
	/* hints far off the desktop are no candidates */
	gfx_move_hint far[] = { { { 0, 0, W, H }, INT32_MIN, INT32_MAX }, { { 0, 0, W, H }, W, 0 },
				{ { INT32_MIN, 0, INT32_MAX, H }, -W + 1, 0 } };
	gfx_copy c;
	assert_false(gfx_copy_find(old, cur, W, H, &changed, far, 3, &c));
	free(v.fb);
	free(old);
	free(cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_table),
		cmocka_unit_test(test_changed_parts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
