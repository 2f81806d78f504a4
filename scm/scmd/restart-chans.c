/* restart-chans.c: the channel table of state version 2 (docs/restart.md,
 * "Version 2: the channel table").
 *
 * With a thousand live channels, one JSON object per channel was most of
 * the state: written member by member by the old scmd, parsed and
 * checked member by member by the successor, in the blackout. Version 2
 * puts them behind the JSON as fixed records, little-endian with explicit
 * widths, their strings (origin, grant) in one block after the records,
 * each string once (the channels of one client share their grant):
 *
 *   header  magic "SCMDCHAN", u32 count, u32 record size, u32 strings'
 *           length, u32 flags (0)
 *   count records of record size bytes (SCMD_CHAN_RECORD in version 2):
 *     0 u64 id        8 u64 created      16 i32 fd     20 u32 pid
 *    24 u32 uid      28 u32 gid          32 u32 service (index in the
 *    JSON's services)  36 u32 endpoint (index in its endpoints, or
 *    SCMD_CHAN_NONE: the host)  40 u32 origin's offset, 44 its length,
 *    48 u32 grant's offset (SCMD_CHAN_NONE: none), 52 its length
 *   the strings, each followed by a NUL
 *
 * The table is read as untrusted input: the reader checks the header, the
 * sizes against what is there, every index against the state's arrays and
 * every string's bounds and terminator before it believes a record. A
 * record size larger than version 2's is taken (its tail ignored), so a
 * later version may add fields at the end. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "restart.h"

static void put32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

/* The string block, each distinct string once (an open-addressed table of
 * offsets by FNV-1a hash). */
struct pool {
	char *buf;
	size_t len, cap;
	uint32_t *slot; /* offset + 1; 0: empty */
	size_t n_slots;
};

static uint64_t hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

/* The offset of s in the block; UINT32_MAX when out of memory or room. */
static uint32_t pool_add(struct pool *p, const char *s, size_t n)
{
	size_t i = hash(s, n) & (p->n_slots - 1);
	for (; p->slot[i]; i = (i + 1) & (p->n_slots - 1)) {
		const char *have = p->buf + p->slot[i] - 1;
		if (strncmp(have, s, n) == 0 && have[n] == 0)
			return p->slot[i] - 1;
	}
	if (p->len + n + 1 >= UINT32_MAX - 1)
		return UINT32_MAX;
	if (p->len + n + 1 > p->cap) {
		size_t c = (p->len + n + 1) * 2;
		char *b = realloc(p->buf, c);
		if (!b)
			return UINT32_MAX;
		p->buf = b;
		p->cap = c;
	}
	uint32_t off = (uint32_t)p->len;
	memcpy(p->buf + off, s, n);
	p->buf[off + n] = 0;
	p->len += n + 1;
	p->slot[i] = off + 1;
	return off;
}

/* The index of x in v (the channels of one service or endpoint come in
 * runs: the last one found is tried first); SIZE_MAX when absent. */
#define INDEX_OF(v, n, x, hint)                                                   \
	({                                                                        \
		size_t _i = (hint) < (n) && (v)[hint] == (x) ? (hint) : SIZE_MAX; \
		for (size_t _k = 0; _i == SIZE_MAX && _k < (n); _k++)             \
			if ((v)[_k] == (x))                                       \
				_i = (hint) = _k;                                 \
		_i;                                                               \
	})

int chans_encode(struct scmd *d, struct list *channels, struct service **svcs, size_t n_svcs, struct endpoint **eps, size_t n_eps,
		 uint8_t **ret, size_t *ret_len, int **fds, size_t *n, size_t *cap)
{
	size_t count = 0, hs = 0, he = 0;
	for (struct list *p = channels ? channels->next : NULL; p && p != channels; p = p->next)
		count++;
	struct pool pool = { 0 };
	pool.n_slots = 64;
	while (pool.n_slots < 4 * count)
		pool.n_slots *= 2;
	pool.slot = calloc(pool.n_slots, sizeof(uint32_t));
	uint8_t *rec = calloc(count ? count : 1, SCMD_CHAN_RECORD);
	int r = pool.slot && rec ? 0 : -ENOMEM;
	size_t i = 0;
	for (struct list *p = count ? channels->next : NULL; r == 0 && p && p != channels; p = p->next, i++) {
		struct channel *ch = list_entry(p, struct channel, node);
		uint8_t *q = rec + i * SCMD_CHAN_RECORD;
		size_t si = INDEX_OF(svcs, n_svcs, ch->svc, hs);
		size_t ei = ch->ep == &d->host ? SCMD_CHAN_NONE : INDEX_OF(eps, n_eps, ch->ep, he);
		const char *origin = ch->origin ? ch->origin : "";
		/* not in the state's arrays: the successor refuses the state
		 * (an unregistering service's channels are revoked first) */
		if (si == SIZE_MAX || ei == SIZE_MAX)
			si = ei = SCMD_CHAN_NONE - 1;
		put64(q, ch->id);
		put64(q + 8, ch->created);
		put32(q + 16, (uint32_t)ch->w.fd);
		put32(q + 20, (uint32_t)ch->cred.pid);
		put32(q + 24, ch->cred.uid);
		put32(q + 28, ch->cred.gid);
		put32(q + 32, (uint32_t)si);
		put32(q + 36, (uint32_t)ei);
		uint32_t o = pool_add(&pool, origin, strlen(origin));
		uint32_t g = ch->grant_json ? pool_add(&pool, ch->grant_json, strlen(ch->grant_json)) : SCMD_CHAN_NONE;
		if (o == UINT32_MAX || (ch->grant_json && g == UINT32_MAX)) {
			r = -ENOMEM;
			break;
		}
		put32(q + 40, o);
		put32(q + 44, (uint32_t)strlen(origin));
		put32(q + 48, g);
		put32(q + 52, ch->grant_json ? (uint32_t)strlen(ch->grant_json) : 0);
		if (fd_list_add(fds, n, cap, ch->w.fd) < 0)
			r = -ENOMEM;
	}
	size_t len = SCMD_CHANS_HEADER + count * SCMD_CHAN_RECORD + pool.len;
	uint8_t *out = r == 0 ? malloc(len) : NULL;
	if (out) {
		memcpy(out, SCMD_CHANS_MAGIC, 8);
		put32(out + 8, (uint32_t)count);
		put32(out + 12, SCMD_CHAN_RECORD);
		put32(out + 16, (uint32_t)pool.len);
		put32(out + 20, 0);
		if (count)
			memcpy(out + SCMD_CHANS_HEADER, rec, count * SCMD_CHAN_RECORD);
		if (pool.len)
			memcpy(out + SCMD_CHANS_HEADER + count * SCMD_CHAN_RECORD, pool.buf, pool.len);
	} else if (r == 0)
		r = -ENOMEM;
	free(rec);
	free(pool.buf);
	free(pool.slot);
	if (r != 0)
		return r;
	*ret = out;
	*ret_len = len;
	return 0;
}

void state_chans_free(struct state_chans *t)
{
	free(t->c);
	free(t->strings);
	*t = (struct state_chans){ 0 };
}

/* A string of the block: inside it, NUL-terminated, no NUL within. */
static const char *string_at(const char *s, size_t len, uint32_t off, uint32_t n)
{
	if (off >= len || n >= len - off || s[off + n] != 0 || memchr(s + off, 0, n))
		return NULL;
	return s + off;
}

int chans_decode(const uint8_t *p, size_t len, size_t n_svcs, size_t n_eps, struct state_chans *ret,
		 scm_error **ret_err)
{
	if (len < SCMD_CHANS_HEADER || memcmp(p, SCMD_CHANS_MAGIC, 8) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "state channel table: no header (magic %s)", SCMD_CHANS_MAGIC);
	uint32_t count = get32(p + 8), size = get32(p + 12), slen = get32(p + 16), flags = get32(p + 20);
	if (flags != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "state channel table: flags 0x%x: this scmd knows none", flags);
	if (size < SCMD_CHAN_RECORD || size > 4096)
		return scm_fail(ret_err, SCM_E_INVALID, "state channel table: records of %u bytes (this scmd reads %u to 4096)",
				size, SCMD_CHAN_RECORD);
	if (count > SCMD_CHANS_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "state channel table: %u channels, over %u", count, SCMD_CHANS_MAX);
	/* 64-bit sums: count * size stays under 2^32 by the bounds above */
	if ((uint64_t)SCMD_CHANS_HEADER + (uint64_t)count * size + slen != len)
		return scm_fail(ret_err, SCM_E_INVALID,
				"state channel table: %u records of %u bytes and %u bytes of strings are not its %zu bytes",
				count, size, slen, len);
	struct state_chans t = { .n = count };
	t.c = calloc(count ? count : 1, sizeof(*t.c));
	t.strings = malloc(slen ? slen : 1);
	if (!t.c || !t.strings) {
		state_chans_free(&t);
		return -ENOMEM;
	}
	memcpy(t.strings, p + SCMD_CHANS_HEADER + (size_t)count * size, slen);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *q = p + SCMD_CHANS_HEADER + (size_t)i * size;
		struct state_chan *c = &t.c[i];
		uint32_t go = get32(q + 48);
		c->id = get64(q);
		c->created = get64(q + 8);
		c->fd = (int32_t)get32(q + 16);
		c->pid = get32(q + 20);
		c->uid = get32(q + 24);
		c->gid = get32(q + 28);
		c->service = get32(q + 32);
		c->endpoint = get32(q + 36);
		c->origin = string_at(t.strings, slen, get32(q + 40), get32(q + 44));
		c->grant = go == SCMD_CHAN_NONE ? NULL : string_at(t.strings, slen, go, get32(q + 52));
		const char *bad = c->fd < 0 || c->fd >= (1 << 24)          ? "its fd"
				  : c->pid > INT32_MAX                      ? "its pid"
				  : c->service >= n_svcs                    ? "its service"
				  : c->endpoint != SCMD_CHAN_NONE && c->endpoint >= n_eps ? "its endpoint"
				  : !c->origin                              ? "its origin"
				  : go != SCMD_CHAN_NONE && !c->grant       ? "its grant"
									    : NULL;
		if (bad) {
			state_chans_free(&t);
			return scm_fail(ret_err, SCM_E_INVALID, "state channel table, record %u: %s is out of range", i, bad);
		}
	}
	*ret = t;
	return 0;
}
