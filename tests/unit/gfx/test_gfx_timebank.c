/* test_gfx_timebank.c: the time bank shares time by weight, is fair
 * between equals, does not let an idle client hold others back, and caps
 * what an idle client can carry over. The bank is driven with a virtual
 * clock and explicit costs here (test_gfx_server.c drives it with real
 * compositing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gfx.h"

#define MS 1000000LL

/* Serves busy clients for total_ns of virtual time; cost(slot, i) says
 * what the i-th frame of a slot costs. */
static void run(gfx_timebank *tb, const uint32_t *slots, size_t n, int64_t total_ns,
		int64_t (*cost)(uint32_t slot, uint64_t i))
{
	int64_t now = 0;
	while (now < total_ns) {
		for (size_t k = 0; k < n; k++)
			gfx_tb_set_ready(tb, slots[k], true);
		int s = gfx_tb_pick(tb, now);
		assert_true(s >= 0);
		int64_t c = cost((uint32_t)s, tb->c[s].served);
		gfx_tb_charge(tb, (uint32_t)s, c);
		now += c;
	}
}

static int64_t cost_fixed(uint32_t slot, uint64_t i)
{
	return 300000; /* 0.3 ms a frame */
}

static int64_t cost_varied(uint32_t slot, uint64_t i)
{
	/* Clients with very different frame costs, each varying. */
	static const int64_t base[] = { 100000, 700000, 250000, 1900000 };
	return base[slot % 4] + (int64_t)((i * 7919) % 5) * 50000;
}

static void test_weights_1_3(void **state)
{
	gfx_timebank tb;
	uint32_t s[2];
	gfx_tb_init(&tb, 10 * MS, 4, 0);
	assert_int_equal(gfx_tb_add(&tb, 1, &s[0]), 0);
	assert_int_equal(gfx_tb_add(&tb, 3, &s[1]), 0);
	run(&tb, s, 2, 2000 * MS, cost_fixed);
	double share = (double)tb.c[s[0]].used_ns / (double)(tb.c[s[0]].used_ns + tb.c[s[1]].used_ns);
	/* 1:3 means a quarter; within 5% of it. */
	assert_true(share > 0.25 * 0.95 && share < 0.25 * 1.05);
}

static void test_weights_1_3_varied_costs(void **state)
{
	gfx_timebank tb;
	uint32_t s[2];
	gfx_tb_init(&tb, 10 * MS, 4, 0);
	assert_int_equal(gfx_tb_add(&tb, 3, &s[0]), 0); /* slot 0: cheap frames */
	assert_int_equal(gfx_tb_add(&tb, 1, &s[1]), 0); /* slot 1: dear frames */
	run(&tb, s, 2, 5000 * MS, cost_varied);
	double ratio = (double)tb.c[s[0]].used_ns / (double)tb.c[s[1]].used_ns;
	assert_true(ratio > 3 * 0.95 && ratio < 3 * 1.05);
}

static void test_jain_equal_weights(void **state)
{
	gfx_timebank tb;
	uint32_t s[4];
	gfx_tb_init(&tb, 10 * MS, 4, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(gfx_tb_add(&tb, 1, &s[i]), 0);
	run(&tb, s, 4, 5000 * MS, cost_varied);
	double j = gfx_tb_jain(&tb);
	print_message("# jain index of 4 equal clients with unequal frame costs: %.5f\n", j);
	assert_true(j >= 0.99);
}

static void test_idle_does_not_hold_back(void **state)
{
	gfx_timebank tb;
	uint32_t busy, idle;
	gfx_tb_init(&tb, 10 * MS, 4, 0);
	assert_int_equal(gfx_tb_add(&tb, 1, &busy), 0);
	assert_int_equal(gfx_tb_add(&tb, 100, &idle), 0); /* a big weight, never used */
	/* With the clock standing still the busy client is served every
	 * time: its exhausted budget restarts the period instead of waiting
	 * for the idle one. */
	for (int i = 0; i < 10000; i++) {
		gfx_tb_set_ready(&tb, busy, true);
		assert_int_equal(gfx_tb_pick(&tb, 0), (int)busy);
		gfx_tb_charge(&tb, busy, MS);
	}
	assert_int_equal(tb.c[busy].served, 10000);
	assert_int_equal(tb.c[idle].served, 0);
	/* Nobody ready: nothing to pick. */
	gfx_tb_set_ready(&tb, busy, false);
	assert_int_equal(gfx_tb_pick(&tb, 0), -1);
}

static void test_waits_counted(void **state)
{
	gfx_timebank tb;
	uint32_t dear, cheap;
	gfx_tb_init(&tb, 10 * MS, 4, 0);
	assert_int_equal(gfx_tb_add(&tb, 1, &dear), 0);
	assert_int_equal(gfx_tb_add(&tb, 1, &cheap), 0);
	tb.c[dear].balance_ns = tb.c[cheap].balance_ns = 5 * MS;
	/* The dear client overspends on its second frame and then waits
	 * while the cheap one uses what it has left. */
	int last_dear = -1;
	for (int i = 0; i < 8; i++) {
		gfx_tb_set_ready(&tb, dear, true);
		gfx_tb_set_ready(&tb, cheap, true);
		int s = gfx_tb_pick(&tb, 0);
		if (s == (int)dear)
			last_dear = i;
		gfx_tb_charge(&tb, (uint32_t)s, s == (int)dear ? 4 * MS : 1 * MS);
		if (tb.c[dear].balance_ns <= 0 && tb.c[cheap].balance_ns > 0)
			break;
	}
	assert_true(last_dear >= 0);
	assert_true(tb.c[dear].balance_ns <= 0);
	gfx_tb_set_ready(&tb, dear, true);
	gfx_tb_set_ready(&tb, cheap, true);
	assert_int_equal(gfx_tb_pick(&tb, 0), (int)cheap);
	assert_int_equal(tb.c[dear].waits, 1);
	assert_true(tb.c[dear].waiting);
}

static void test_carry_over_cap(void **state)
{
	gfx_timebank tb;
	uint32_t a, b;
	gfx_tb_init(&tb, 10 * MS, 3, 0);
	assert_int_equal(gfx_tb_add(&tb, 1, &a), 0);
	assert_int_equal(gfx_tb_add(&tb, 1, &b), 0);
	int64_t share = gfx_tb_share_ns(&tb, a);
	assert_int_equal(share, 5 * MS);
	/* An hour of idling earns at most cap_periods shares. */
	assert_int_equal(gfx_tb_pick(&tb, 3600000 * MS), -1);
	assert_int_equal(tb.c[a].balance_ns, 3 * share);
	assert_int_equal(tb.c[b].balance_ns, 3 * share);
	/* Both wake with three shares each and spend them alternately. */
	gfx_tb_set_ready(&tb, a, true);
	gfx_tb_set_ready(&tb, b, true);
	uint64_t b_runs = 0;
	for (int i = 0; i < 6; i++) {
		int s = gfx_tb_pick(&tb, 3600000 * MS);
		b_runs += s == (int)b;
		gfx_tb_charge(&tb, (uint32_t)s, 5 * MS);
	}
	assert_int_equal(b_runs, 3);
}

static void test_refuses(void **state)
{
	gfx_timebank tb;
	uint32_t s;
	gfx_tb_init(&tb, 10 * MS, 4, 0);
	assert_int_equal(gfx_tb_add(&tb, 0, &s), GFX_E_INVALID);
	assert_int_equal(gfx_tb_add(&tb, GFX_WEIGHT_MAX + 1, &s), GFX_E_INVALID);
	for (uint32_t i = 0; i < GFX_TB_MAX; i++)
		assert_int_equal(gfx_tb_add(&tb, 1, &s), 0);
	assert_int_equal(gfx_tb_add(&tb, 1, &s), GFX_E_LIMIT);
	/* Charging a slot that is not there, or a negative time, is ignored. */
	gfx_tb_charge(&tb, GFX_TB_MAX + 5, 100);
	gfx_tb_charge(&tb, 0, -100);
	assert_int_equal(tb.c[0].used_ns, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_weights_1_3),
		cmocka_unit_test(test_weights_1_3_varied_costs),
		cmocka_unit_test(test_jain_equal_weights),
		cmocka_unit_test(test_idle_does_not_hold_back),
		cmocka_unit_test(test_waits_counted),
		cmocka_unit_test(test_carry_over_cap),
		cmocka_unit_test(test_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
