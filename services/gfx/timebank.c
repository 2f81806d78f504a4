/* timebank.c: sharing compositing time between clients by weight.
 *
 * Every period each live client's balance grows by its weighted share of
 * the period (period * weight / sum of weights), up to cap_periods such
 * shares: unused time carries over, but a client that idled for an hour
 * cannot then hog the adapter for an hour. Serving charges the measured
 * time, so a client whose frames are expensive gets fewer of them. A
 * client out of budget waits while clients with budget are served; when
 * every ready client is out, the next period begins at once, so time an
 * idle client does not use is never wasted on waiting for it. */
#include <string.h>

#include "gfx.h"

void gfx_tb_init(gfx_timebank *tb, int64_t period_ns, uint32_t cap_periods, int64_t now_ns)
{
	memset(tb, 0, sizeof(*tb));
	tb->period_ns = period_ns > 0 ? period_ns : 10000000;
	tb->cap_periods = cap_periods ? cap_periods : 1;
	tb->period_start = now_ns;
}

static uint64_t total_weight(const gfx_timebank *tb)
{
	uint64_t w = 0;
	for (uint32_t i = 0; i < GFX_TB_MAX; i++)
		if (tb->c[i].live)
			w += tb->c[i].weight;
	return w;
}

int64_t gfx_tb_share_ns(const gfx_timebank *tb, uint32_t slot)
{
	uint64_t w = total_weight(tb);
	if (slot >= GFX_TB_MAX || !tb->c[slot].live || w == 0)
		return 0;
	return (int64_t)((uint64_t)tb->period_ns * tb->c[slot].weight / w);
}

int gfx_tb_add(gfx_timebank *tb, uint32_t weight, uint32_t *ret_slot)
{
	if (weight == 0 || weight > GFX_WEIGHT_MAX)
		return GFX_E_INVALID;
	for (uint32_t i = 0; i < GFX_TB_MAX; i++) {
		if (tb->c[i].live)
			continue;
		/* A newcomer starts empty and earns from the next refill on:
		 * whatever it got now would be measured against a total weight
		 * that the next newcomer changes. */
		tb->c[i] = (gfx_tb_client){ .live = true, .weight = weight };
		*ret_slot = i;
		return 0;
	}
	return GFX_E_LIMIT;
}

void gfx_tb_remove(gfx_timebank *tb, uint32_t slot)
{
	if (slot < GFX_TB_MAX)
		memset(&tb->c[slot], 0, sizeof(tb->c[slot]));
}

void gfx_tb_set_ready(gfx_timebank *tb, uint32_t slot, bool ready)
{
	if (slot < GFX_TB_MAX && tb->c[slot].live) {
		tb->c[slot].ready = ready;
		if (!ready)
			tb->c[slot].waiting = false;
	}
}

static void refill(gfx_timebank *tb, uint64_t periods)
{
	uint64_t w = total_weight(tb);
	if (w == 0 || periods == 0)
		return;
	for (uint32_t i = 0; i < GFX_TB_MAX; i++) {
		gfx_tb_client *c = &tb->c[i];
		if (!c->live)
			continue;
		int64_t share = (int64_t)((uint64_t)tb->period_ns * c->weight / w);
		int64_t cap = share * (int64_t)tb->cap_periods;
		if (c->balance_ns >= cap)
			continue;
		/* Periods beyond what reaches the cap change nothing. */
		uint64_t need = share > 0 ? (uint64_t)((cap - c->balance_ns) / share) + 1 : 0;
		c->balance_ns += share * (int64_t)(periods < need ? periods : need);
		if (c->balance_ns > cap)
			c->balance_ns = cap;
	}
	tb->periods += periods;
}

/* Periods to refill before the readiest of the ready clients has budget. */
static uint64_t periods_until_budget(const gfx_timebank *tb)
{
	uint64_t w = total_weight(tb), best = UINT64_MAX;
	for (uint32_t i = 0; i < GFX_TB_MAX; i++) {
		const gfx_tb_client *c = &tb->c[i];
		if (!c->live || !c->ready || w == 0)
			continue;
		int64_t share = (int64_t)((uint64_t)tb->period_ns * c->weight / w);
		if (share <= 0)
			continue;
		uint64_t k = c->balance_ns > 0 ? 0 : (uint64_t)(-c->balance_ns / share) + 1;
		if (k < best)
			best = k;
	}
	return best == UINT64_MAX ? 1 : best;
}

int gfx_tb_pick(gfx_timebank *tb, int64_t now_ns)
{
	if (now_ns - tb->period_start >= tb->period_ns) {
		uint64_t n = (uint64_t)((now_ns - tb->period_start) / tb->period_ns);
		/* More periods than the cap can hold change nothing. */
		refill(tb, n > tb->cap_periods ? tb->cap_periods : n);
		tb->period_start += (int64_t)n * tb->period_ns;
	}
	for (int round = 0; round < 2; round++) {
		int best = -1, n_ready = 0;
		double best_norm = 0;
		for (uint32_t i = 0; i < GFX_TB_MAX; i++) {
			gfx_tb_client *c = &tb->c[i];
			if (!c->live || !c->ready)
				continue;
			n_ready++;
			if (c->balance_ns <= 0) {
				if (!c->waiting) {
					c->waiting = true;
					c->waits++;
				}
				continue;
			}
			double norm = (double)c->balance_ns / c->weight;
			if (best < 0 || norm > best_norm) {
				best = (int)i;
				best_norm = norm;
			}
		}
		if (best >= 0) {
			tb->c[best].waiting = false;
			return best;
		}
		if (n_ready == 0)
			return -1;
		/* Everyone who wants time is out of it: start the next period
		 * (or as many as the least indebted needs) now rather than idle
		 * until the clock says so. */
		refill(tb, periods_until_budget(tb));
		tb->period_start = now_ns;
	}
	return -1;
}

void gfx_tb_charge(gfx_timebank *tb, uint32_t slot, int64_t ns)
{
	if (slot >= GFX_TB_MAX || !tb->c[slot].live || ns < 0)
		return;
	gfx_tb_client *c = &tb->c[slot];
	c->balance_ns -= ns;
	/* Debts are kept exactly, so shares stay true even when a frame was
	 * slow because the proxy was preempted; only a pathological frame
	 * (over cap_periods whole periods) is forgiven the excess, so that
	 * it cannot starve its client for long. */
	int64_t floor = -tb->period_ns * (int64_t)tb->cap_periods;
	if (c->balance_ns < floor)
		c->balance_ns = floor;
	c->used_ns += (uint64_t)ns;
	c->served++;
}

void gfx_tb_drop(gfx_timebank *tb, uint32_t slot)
{
	if (slot < GFX_TB_MAX && tb->c[slot].live)
		tb->c[slot].dropped++;
}

double gfx_tb_jain(const gfx_timebank *tb)
{
	double sum = 0, sq = 0;
	int n = 0;
	for (uint32_t i = 0; i < GFX_TB_MAX; i++) {
		const gfx_tb_client *c = &tb->c[i];
		if (!c->live)
			continue;
		double x = (double)c->used_ns / c->weight;
		sum += x;
		sq += x * x;
		n++;
	}
	return n == 0 || sq == 0 ? 1.0 : sum * sum / (n * sq);
}
