/* quota.h: the per-endpoint ledger of what clients make scmd hold.
 *
 * Every endpoint has a limit and a count of what it uses: live channels,
 * connects waiting for an activation, open connections and bytes of
 * replies queued for clients that do not read. The rules live here, so
 * the broker, the endpoint listener and the out queues ask one place, and
 * the unit tests drive them without a socket (tests/unit/scmd). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct quota {
	unsigned channels;  /* live channels */
	unsigned pending;   /* connects waiting for an activation */
	unsigned conns;     /* open connections to the endpoint */
	size_t queued;      /* bytes scmd holds for the endpoint's unread replies */
};

enum quota_res { QUOTA_CHANNELS, QUOTA_PENDING, QUOTA_CONNS };

/* May one more of r be taken? Connects waiting for an activation become
 * channels: they count against the channel limit too, or pipelined
 * connects during a start-up would bypass it. */
bool quota_room(const struct quota *used, const struct quota *limit, enum quota_res r);
void quota_charge(struct quota *used, enum quota_res r);
/* Gives one of r back; false (and the count left at 0) when none was
 * charged, which is a bookkeeping bug the tests look for. */
bool quota_release(struct quota *used, enum quota_res r);
/* Charges n queued bytes; false when the endpoint is now over its limit
 * (the caller drops the connection that queued them). */
bool quota_charge_bytes(struct quota *used, const struct quota *limit, size_t n);
bool quota_release_bytes(struct quota *used, size_t n);
