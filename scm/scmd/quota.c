/* quota.c: the per-endpoint ledger (see quota.h). */
#include "quota.h"

static unsigned *slot(struct quota *q, enum quota_res r)
{
	switch (r) {
	case QUOTA_CHANNELS: return &q->channels;
	case QUOTA_PENDING: return &q->pending;
	case QUOTA_CONNS: break;
	}
	return &q->conns;
}

bool quota_room(const struct quota *used, const struct quota *limit, enum quota_res r)
{
	switch (r) {
	case QUOTA_CHANNELS: return (unsigned long long)used->channels + used->pending < limit->channels;
	case QUOTA_PENDING: return used->pending < limit->pending;
	case QUOTA_CONNS: break;
	}
	return used->conns < limit->conns;
}

void quota_charge(struct quota *used, enum quota_res r)
{
	(*slot(used, r))++;
}

bool quota_release(struct quota *used, enum quota_res r)
{
	unsigned *n = slot(used, r);
	if (*n == 0)
		return false;
	(*n)--;
	return true;
}

bool quota_charge_bytes(struct quota *used, const struct quota *limit, size_t n)
{
	used->queued += n;
	return used->queued <= limit->queued;
}

bool quota_release_bytes(struct quota *used, size_t n)
{
	if (n > used->queued) {
		used->queued = 0;
		return false;
	}
	used->queued -= n;
	return true;
}
