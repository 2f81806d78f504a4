/* test_vdisk_reserve.c: the persistent reservation state machine
 * (services/vdisk/reserve.c) against SPC-4's tables: who may read and
 * write under each type (holder, registrant, stranger), registration and
 * key rules, release, clear, preempt (of the holder, of a registrant, of
 * everyone under all-registrants), generations, and the state file. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "reserve.h"

#define ID "{01234567-89ab-cdef-0123-456789abcdef}"

/* the result of call, its error chain (in e) dropped */
#define OK(call)                                                                                           \
	({                                                                                                 \
		int _r = (call);                                                                           \
		scm_error_free(e);                                                                         \
		e = NULL;                                                                                  \
		_r;                                                                                        \
	})
#define REG(pr, n, k, nk) OK(vdisk_pr_register((pr), (n), (k), (nk), false, &e))
#define RES(pr, n, k, t) OK(vdisk_pr_reserve((pr), (n), (k), (t), &e))
#define REL(pr, n, k, t) OK(vdisk_pr_release((pr), (n), (k), (t), &e))
#define PRE(pr, n, k, v, t) OK(vdisk_pr_preempt((pr), (n), (k), (v), (t), &e))

/* Access under each type, SPC-4 table 5.12.1: read and write for the
 * holder (A), another registrant (B), a stranger (C). 1 = allowed. */
static const struct {
	enum vdisk_pr_type t;
	int hr, hw, rr, rw, sr, sw;
} access_table[] = {
	{ VDISK_PR_WE, 1, 1, 1, 0, 1, 0 },
	{ VDISK_PR_EA, 1, 1, 0, 0, 0, 0 },
	{ VDISK_PR_WERO, 1, 1, 1, 1, 1, 0 },
	{ VDISK_PR_EARO, 1, 1, 1, 1, 0, 0 },
	{ VDISK_PR_WEAR, 1, 1, 1, 1, 1, 0 },
	{ VDISK_PR_EAAR, 1, 1, 1, 1, 0, 0 },
};

static void test_access_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof access_table / sizeof *access_table; i++) {
		struct vdisk_pr pr = { 0 };
		scm_error *e = NULL;
		assert_int_equal(REG(&pr, "A", 0, 0xa), 0);
		assert_int_equal(REG(&pr, "B", 0, 0xb), 0);
		/* no reservation: everyone does everything */
		assert_int_equal(vdisk_pr_access(&pr, "C", true), 0);
		assert_int_equal(RES(&pr, "A", 0xa, access_table[i].t), 0);
		const char *who[3] = { "A", "B", "C" };
		int want[6] = { access_table[i].hr, access_table[i].hw, access_table[i].rr,
				access_table[i].rw, access_table[i].sr, access_table[i].sw };
		for (int w = 0; w < 3; w++)
			for (int wr = 0; wr < 2; wr++) {
				int got = vdisk_pr_access(&pr, who[w], wr) == 0;
				if (got != want[w * 2 + wr])
					fail_msg("%s: %s %s: got %d", vdisk_pr_type_name(access_table[i].t), who[w],
						 wr ? "write" : "read", got);
			}
		bool ar = access_table[i].t == VDISK_PR_WEAR || access_table[i].t == VDISK_PR_EAAR;
		assert_true(vdisk_pr_is_holder(&pr, "A"));
		assert_int_equal(vdisk_pr_is_holder(&pr, "B"), ar);
		assert_int_equal(vdisk_pr_holder_key(&pr), ar ? 0 : 0xa);
		/* a second reserve: the holder again with the same type is
		 * fine, anyone else (or another type) conflicts */
		assert_int_equal(RES(&pr, "A", 0xa, access_table[i].t), 0);
		assert_int_equal(RES(&pr, "A", 0xa, access_table[i].t == VDISK_PR_WE ? VDISK_PR_EA : VDISK_PR_WE),
				 -EBADE);
		assert_int_equal(RES(&pr, "B", 0xb, access_table[i].t), ar ? 0 : -EBADE);
		assert_int_equal(RES(&pr, "C", 0xc, access_table[i].t), -EBADE);
	}
}

static void test_register(void **state)
{
	(void)state;
	struct vdisk_pr pr = { 0 };
	scm_error *e = NULL;
	/* unregistered with a non-zero key: conflict; with 0: registers */
	assert_int_equal(REG(&pr, "A", 5, 0xa), -EBADE);
	assert_int_equal(pr.generation, 0);
	assert_int_equal(REG(&pr, "A", 0, 0xa), 0);
	assert_int_equal(pr.generation, 1);
	/* a wrong current key: conflict; the right one changes it */
	assert_int_equal(REG(&pr, "A", 0xb, 0xc), -EBADE);
	assert_int_equal(REG(&pr, "A", 0xa, 0xc), 0);
	assert_int_equal(vdisk_pr_find(&pr, "A")->key, 0xc);
	/* ignore-existing takes any key */
	assert_int_equal(OK(vdisk_pr_register(&pr, "A", 0x999, 0xd, true, &e)), 0);
	assert_int_equal(vdisk_pr_find(&pr, "A")->key, 0xd);
	/* two nexuses may share a key */
	assert_int_equal(REG(&pr, "B", 0, 0xd), 0);
	assert_int_equal(pr.n_regs, 2);
	/* the holder unregistering releases its reservation */
	assert_int_equal(RES(&pr, "A", 0xd, VDISK_PR_EA), 0);
	assert_int_equal(REG(&pr, "A", 0xd, 0), 0);
	assert_int_equal(pr.type, VDISK_PR_NONE);
	assert_null(vdisk_pr_find(&pr, "A"));
	/* all-registrants: the reservation stays until the last one goes */
	assert_int_equal(REG(&pr, "A", 0, 0xa), 0);
	assert_int_equal(RES(&pr, "B", 0xd, VDISK_PR_WEAR), 0);
	assert_int_equal(REG(&pr, "B", 0xd, 0), 0);
	assert_int_equal(pr.type, VDISK_PR_WEAR);
	assert_int_equal(REG(&pr, "A", 0xa, 0), 0);
	assert_int_equal(pr.type, VDISK_PR_NONE);
	/* reserve and release need the registered key */
	assert_int_equal(RES(&pr, "A", 0xa, VDISK_PR_WE), -EBADE);
	/* full */
	for (int i = 0; i < VDISK_PR_REGS_MAX; i++) {
		char n[16];
		snprintf(n, sizeof n, "n%d", i);
		assert_int_equal(REG(&pr, n, 0, 1 + (uint64_t)i), 0);
	}
	assert_int_equal(REG(&pr, "late", 0, 1), -ENOSPC);
}

static void test_release_clear(void **state)
{
	(void)state;
	struct vdisk_pr pr = { 0 };
	scm_error *e = NULL;
	REG(&pr, "A", 0, 0xa);
	REG(&pr, "B", 0, 0xb);
	assert_int_equal(RES(&pr, "A", 0xa, VDISK_PR_WERO), 0);
	uint32_t gen = pr.generation;
	/* not the holder: nothing, no error; wrong type: illegal request */
	assert_int_equal(REL(&pr, "B", 0xb, VDISK_PR_WERO), 0);
	assert_int_equal(pr.type, VDISK_PR_WERO);
	assert_int_equal(REL(&pr, "A", 0xa, VDISK_PR_WE), -EINVAL);
	assert_int_equal(REL(&pr, "A", 0xb, VDISK_PR_WERO), -EBADE);
	assert_int_equal(REL(&pr, "A", 0xa, VDISK_PR_WERO), 0);
	assert_int_equal(pr.type, VDISK_PR_NONE);
	/* reserve and release leave the generation alone */
	assert_int_equal(pr.generation, gen);
	assert_int_equal(RES(&pr, "B", 0xb, VDISK_PR_EA), 0);
	assert_int_equal(OK(vdisk_pr_clear(&pr, "C", 0, &e)), -EBADE);
	assert_int_equal(OK(vdisk_pr_clear(&pr, "A", 0xa, &e)), 0);
	assert_int_equal(pr.type, VDISK_PR_NONE);
	assert_int_equal(pr.n_regs, 0);
	assert_int_equal(pr.generation, gen + 1);
}

static void test_preempt(void **state)
{
	(void)state;
	struct vdisk_pr pr = { 0 };
	scm_error *e = NULL;
	REG(&pr, "A", 0, 0xa);
	REG(&pr, "B", 0, 0xb);
	REG(&pr, "B2", 0, 0xb); /* a second nexus with B's key */
	REG(&pr, "C", 0, 0xc);
	assert_int_equal(RES(&pr, "B", 0xb, VDISK_PR_WERO), 0);
	/* preempting the holder's key: every nexus with it goes, the
	 * issuer holds a reservation of the type it asked */
	assert_int_equal(PRE(&pr, "A", 0xa, 0xb, VDISK_PR_EARO), 0);
	assert_null(vdisk_pr_find(&pr, "B"));
	assert_null(vdisk_pr_find(&pr, "B2"));
	assert_int_equal(pr.type, VDISK_PR_EARO);
	assert_true(vdisk_pr_is_holder(&pr, "A"));
	assert_int_equal(vdisk_pr_access(&pr, "B", true), -EBADE);
	assert_int_equal(vdisk_pr_access(&pr, "B", false), -EBADE);
	assert_int_equal(vdisk_pr_access(&pr, "C", true), 0);
	/* preempting a registrant that does not hold: only the registration */
	assert_int_equal(PRE(&pr, "A", 0xa, 0xc, VDISK_PR_WE), 0);
	assert_null(vdisk_pr_find(&pr, "C"));
	assert_int_equal(pr.type, VDISK_PR_EARO);
	/* a key nobody has: conflict, nothing changes; key 0: illegal */
	uint32_t gen = pr.generation;
	assert_int_equal(PRE(&pr, "A", 0xa, 0x77, VDISK_PR_WE), -EBADE);
	assert_int_equal(PRE(&pr, "A", 0xa, 0, VDISK_PR_WE), -EINVAL);
	assert_int_equal(pr.generation, gen);
	/* an unregistered issuer: conflict */
	assert_int_equal(PRE(&pr, "B", 0xb, 0xa, VDISK_PR_WE), -EBADE);
	/* the issuer's own key is preempted in others, never in itself */
	REG(&pr, "D", 0, 0xa);
	assert_int_equal(PRE(&pr, "A", 0xa, 0xa, VDISK_PR_WE), 0);
	assert_non_null(vdisk_pr_find(&pr, "A"));
	assert_null(vdisk_pr_find(&pr, "D"));
	assert_int_equal(pr.type, VDISK_PR_WE);
	/* no reservation: preempt removes registrations only */
	assert_int_equal(REL(&pr, "A", 0xa, VDISK_PR_WE), 0);
	REG(&pr, "E", 0, 0xe);
	assert_int_equal(PRE(&pr, "A", 0xa, 0xe, VDISK_PR_WE), 0);
	assert_int_equal(pr.type, VDISK_PR_NONE);
	assert_null(vdisk_pr_find(&pr, "E"));
}

static void test_preempt_all_registrants(void **state)
{
	(void)state;
	struct vdisk_pr pr = { 0 };
	scm_error *e = NULL;
	REG(&pr, "A", 0, 0xa);
	REG(&pr, "B", 0, 0xb);
	REG(&pr, "C", 0, 0xc);
	assert_int_equal(RES(&pr, "B", 0xb, VDISK_PR_EAAR), 0);
	/* a key: that registration goes, the reservation stays */
	assert_int_equal(PRE(&pr, "A", 0xa, 0xc, VDISK_PR_WE), 0);
	assert_int_equal(pr.type, VDISK_PR_EAAR);
	assert_int_equal(pr.n_regs, 2);
	/* key 0: everyone else goes, the issuer reserves with its type */
	assert_int_equal(PRE(&pr, "A", 0xa, 0, VDISK_PR_WE), 0);
	assert_int_equal(pr.n_regs, 1);
	assert_int_equal(pr.type, VDISK_PR_WE);
	assert_true(vdisk_pr_is_holder(&pr, "A"));
	assert_int_equal(vdisk_pr_access(&pr, "B", false), 0);
	assert_int_equal(vdisk_pr_access(&pr, "B", true), -EBADE);
}

static void test_file(void **state)
{
	(void)state;
	struct vdisk_pr pr = { 0 }, back;
	scm_error *e = NULL;
	REG(&pr, "nodea:1000", 0, 0xa1);
	REG(&pr, "node b:0", 0, 0xffffffffffffffffull);
	RES(&pr, "nodea:1000", 0xa1, VDISK_PR_WERO);
	char buf[VDISK_PR_FILE_MAX], id[40];
	size_t n = vdisk_pr_format(&pr, ID, buf, sizeof buf);
	assert_true(n > 0);
	assert_int_equal(vdisk_pr_parse(buf, n, ID, &back, id, &e), 0);
	assert_string_equal(id, ID);
	assert_int_equal(back.generation, pr.generation);
	assert_int_equal(back.type, VDISK_PR_WERO);
	assert_string_equal(back.holder, "nodea:1000");
	assert_int_equal(back.n_regs, 2);
	assert_string_equal(back.regs[1].nexus, "node b:0");
	assert_int_equal(back.regs[1].key, 0xffffffffffffffffull);
	/* refusals, each naming what is wrong */
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "scm-vdisk-pr 2\n", "another format or version" },
		{ "scm-vdisk-pr 1\ndisk " ID "\ngeneration 1\nreservation none\ncrc32c 00000000\n", "CRC-32C mismatch" },
		{ "scm-vdisk-pr 1\ndisk " ID "\ngeneration 1\nreservation none\n", "\"crc32c\" and 8 hex digits" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(vdisk_pr_parse(bad[i].text, strlen(bad[i].text), ID, &back, NULL, &e), -EINVAL);
		assert_non_null(strstr(e->message, bad[i].why));
		scm_error_free(e);
		e = NULL;
	}
	/* another disk's state */
	assert_int_equal(vdisk_pr_parse(buf, n, "{11111111-89ab-cdef-0123-456789abcdef}", &back, NULL, &e), -EINVAL);
	if (!strstr(e->message, "not of this disk"))
		fail_msg("%s", e->message);
	scm_error_free(e);
	e = NULL;
	/* too small a buffer: nothing */
	assert_int_equal(vdisk_pr_format(&pr, ID, buf, 20), 0);
	/* a body that passes its CRC but names a holder without a
	 * registration: a state the machine never makes */
	struct vdisk_pr odd = { .type = VDISK_PR_EA };
	snprintf(odd.holder, sizeof odd.holder, "ghost");
	n = vdisk_pr_format(&odd, ID, buf, sizeof buf);
	assert_int_equal(vdisk_pr_parse(buf, n, ID, &back, NULL, &e), -EINVAL);
	assert_non_null(strstr(e->message, "holder has no registration"));
	scm_error_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_access_table),
		cmocka_unit_test(test_register),
		cmocka_unit_test(test_release_clear),
		cmocka_unit_test(test_preempt),
		cmocka_unit_test(test_preempt_all_registrants),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
