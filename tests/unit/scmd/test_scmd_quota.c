/* Unit tests of scmd's quota ledger (scm/scmd/quota.c): what an endpoint may
 * take, what charging and releasing do, and that a release of something
 * never charged is caught rather than wrapping the count around. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdint.h>

#include "quota.h"

static const struct quota limit = { .channels = 3, .pending = 2, .conns = 2, .queued = 100 };

/* Table: a ledger state, a resource, whether one more fits. */
static void room_table(void **state)
{
	static const struct {
		struct quota used;
		enum quota_res r;
		bool room;
	} t[] = {
		{ { 0 }, QUOTA_CHANNELS, true },
		{ { .channels = 2 }, QUOTA_CHANNELS, true },
		{ { .channels = 3 }, QUOTA_CHANNELS, false },
		/* connects waiting for an activation count as channels */
		{ { .channels = 1, .pending = 2 }, QUOTA_CHANNELS, false },
		{ { .channels = 1, .pending = 1 }, QUOTA_CHANNELS, true },
		{ { .channels = 0, .pending = 1 }, QUOTA_PENDING, true },
		{ { .channels = 0, .pending = 2 }, QUOTA_PENDING, false },
		/* channels do not use up the pending quota */
		{ { .channels = 2, .pending = 0 }, QUOTA_PENDING, true },
		{ { .conns = 1 }, QUOTA_CONNS, true },
		{ { .conns = 2 }, QUOTA_CONNS, false },
		/* a count above the limit (the limit was lowered) stays refused */
		{ { .channels = 9 }, QUOTA_CHANNELS, false },
		/* no wrap-around when the sum overflows unsigned */
		{ { .channels = 0xffffffffu, .pending = 1 }, QUOTA_CHANNELS, false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (quota_room(&t[i].used, &limit, t[i].r) != t[i].room)
			fail_msg("row %zu: expected %s", i, t[i].room ? "room" : "no room");
	}
}

static void charge_then_release_returns_to_zero(void **state)
{
	struct quota used = { 0 };
	/* a connect asks for a channel first, then (waiting) for a pending slot */
	while (quota_room(&used, &limit, QUOTA_CHANNELS) && quota_room(&used, &limit, QUOTA_PENDING))
		quota_charge(&used, QUOTA_PENDING);
	assert_int_equal(used.pending, 2); /* the pending limit came first */
	while (quota_room(&used, &limit, QUOTA_CHANNELS))
		quota_charge(&used, QUOTA_CHANNELS);
	assert_int_equal(used.channels, 1); /* 1 live + 2 waiting = the channel limit */
	while (quota_room(&used, &limit, QUOTA_CONNS))
		quota_charge(&used, QUOTA_CONNS);
	assert_int_equal(used.conns, 2);
	/* the waiting ones become channels: released as pending, charged as channels */
	while (quota_release(&used, QUOTA_PENDING))
		quota_charge(&used, QUOTA_CHANNELS);
	assert_int_equal(used.channels, 3);
	assert_false(quota_room(&used, &limit, QUOTA_CHANNELS));
	while (quota_release(&used, QUOTA_CHANNELS))
		;
	while (quota_release(&used, QUOTA_CONNS))
		;
	assert_int_equal(used.channels, 0);
	assert_int_equal(used.pending, 0);
	assert_int_equal(used.conns, 0);
}

static void release_below_zero_is_caught(void **state)
{
	struct quota used = { 0 };
	assert_false(quota_release(&used, QUOTA_PENDING));
	assert_int_equal(used.pending, 0);
	assert_false(quota_release_bytes(&used, 1));
	assert_int_equal(used.queued, 0);
	quota_charge(&used, QUOTA_PENDING);
	assert_true(quota_release(&used, QUOTA_PENDING));
	assert_false(quota_release(&used, QUOTA_PENDING));
}

static void queued_bytes_over_the_limit(void **state)
{
	struct quota used = { 0 };
	assert_true(quota_charge_bytes(&used, &limit, 60));
	assert_true(quota_charge_bytes(&used, &limit, 40)); /* exactly the limit is allowed */
	assert_false(quota_charge_bytes(&used, &limit, 1));
	assert_int_equal(used.queued, 101); /* still charged: the caller drops the conn, which releases it */
	assert_true(quota_release_bytes(&used, 101));
	assert_int_equal(used.queued, 0);
	/* releasing more than was charged is caught, and clamps */
	assert_true(quota_charge_bytes(&used, &limit, 10));
	assert_false(quota_release_bytes(&used, 11));
	assert_int_equal(used.queued, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(room_table),
		cmocka_unit_test(charge_then_release_returns_to_zero),
		cmocka_unit_test(release_below_zero_is_caught),
		cmocka_unit_test(queued_bytes_over_the_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
