/* provider-offload.c: offload copies, the source side (provider-offload.h;
 * docs/vdisk.md "Offload copy").
 *
 * offload_read makes a token for a range of an open disk: 512 random bits,
 * registered with scmd (which alone vouches for it to the destination)
 * over the provider's control connection. The token enters the table on
 * the disk's queue, as an exclusive job: every write queued before it is
 * done, none runs beside it, so "the range as it is now" has a meaning.
 * From then on the write/trim path (provider-io.c, offload_touch, called
 * before the data is written) invalidates the tokens whose range it meets;
 * a job starting on the disk, the handle closing or the channel ending do
 * too.
 *
 * The destination provider redeems the token through scmd and gets a token
 * channel to us: a grant with "token" set (only scmd writes grants) and
 * only offload_map, offload_fetch and offload_check, constrained to that
 * token. It maps the range (file mode: a read-only fd of our file and
 * where the data lies in it; channel mode, for a disk with a parent: the
 * channel's buffer and offload_fetch), copies it out of sight, then asks
 * offload_check: good only if no write met the range since the token was
 * made. Since invalidation happens before a write touches the file, a
 * check that passes after the copy proves the copy saw no write.
 *
 * Workers read the table (offload_touch); the loop changes it; one mutex. */
#include <endian.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/random.h>

#include "provider-offload.h"
#include "scm-internal/error.h"

struct otoken {
	struct otoken *next;
	char hex[OFFLOAD_TOKEN_HEX + 1];
	struct disk *d;
	struct channel *c; /* the issuing client's channel; NULL once dropped */
	uint64_t handle;
	uint64_t off, len;
	uint64_t expires;  /* mono_ns(); 0 until scmd registered it */
	const char *why;   /* NULL while good; else why it is not */
	bool linked;       /* in the table (the hook sees it) */
	bool registering;  /* waiting for scmd */
	bool redeemed;     /* a token channel called: scmd checked its expiry, it lives until used */
	unsigned busy;     /* token channel jobs using it */
};

static struct otoken *tokens;
static unsigned n_tokens;
static atomic_uint live; /* linked tokens: the hook's fast path */
static pthread_mutex_t tok_lock = PTHREAD_MUTEX_INITIALIZER;

bool offload_hex_valid(const char *hex)
{
	if (!hex || strlen(hex) != OFFLOAD_TOKEN_HEX)
		return false;
	for (const char *p = hex; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Under tok_lock. */
static void tok_unlink(struct otoken *t)
{
	if (!t->linked)
		return;
	for (struct otoken **p = &tokens; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->linked = false;
	atomic_fetch_sub(&live, 1);
}

/* Under tok_lock: frees t once nobody uses it and it can serve no more. */
static void tok_maybe_free(struct otoken *t)
{
	bool over = !t->c || (!t->redeemed && t->expires && mono_ns() > t->expires);
	if (!over || t->registering || t->busy)
		return;
	tok_unlink(t);
	n_tokens--;
	explicit_bzero(t->hex, sizeof t->hex);
	free(t);
}

static bool overlaps(const struct otoken *t, uint64_t off, uint64_t len)
{
	return off < t->off + t->len && t->off < off + len;
}

void offload_touch(struct disk *d, const struct vdisk_extent *ex, size_t n, uint64_t off, uint64_t len)
{
	if (atomic_load(&live) == 0)
		return;
	pthread_mutex_lock(&tok_lock);
	for (struct otoken *t = tokens; t; t = t->next) {
		if (t->d != d || t->why)
			continue;
		bool hit = false;
		if (ex)
			for (size_t i = 0; i < n && !hit; i++)
				hit = overlaps(t, ex[i].off, ex[i].len);
		else
			hit = overlaps(t, off, len);
		if (hit)
			t->why = "its source range was written after offload_read";
	}
	pthread_mutex_unlock(&tok_lock);
}

void offload_drop_disk(struct disk *d, const char *why)
{
	pthread_mutex_lock(&tok_lock);
	for (struct otoken *t = tokens; t; t = t->next)
		if (t->d == d && !t->why)
			t->why = why;
	pthread_mutex_unlock(&tok_lock);
}

void offload_drop_handle(struct channel *c, uint64_t n)
{
	pthread_mutex_lock(&tok_lock);
	for (struct otoken *t = tokens, *next; t; t = next) {
		next = t->next;
		if (t->c != c || (n && t->handle != n))
			continue;
		if (!t->why)
			t->why = n ? "its source handle was closed" : "its source channel ended (closed or revoked)";
		t->c = NULL;
		tok_maybe_free(t);
	}
	pthread_mutex_unlock(&tok_lock);
}

/* ---- offload_read ---------------------------------------------------- */

struct oread {
	struct iopool_job pj;
	scm_task task;
	scm_call *call;
	struct otoken *t;
	struct channel *c;
	uint64_t ttl_ms;
};

/* On a worker, alone on the disk's queue: the token's point in time. */
static void oread_run(struct iopool_job *pj)
{
	struct oread *o = (struct oread *)pj;
	pthread_mutex_lock(&tok_lock);
	o->t->next = tokens;
	tokens = o->t;
	o->t->linked = true;
	atomic_fetch_add(&live, 1);
	pthread_mutex_unlock(&tok_lock);
}

static void oread_done(struct iopool_job *pj)
{
	struct oread *o = (struct oread *)pj;
	scm_provider_post(provider, &o->task);
}

static void register_reply(scm_provider *p, scm_message *reply, const scm_error *err, void *userdata)
{
	struct oread *o = userdata;
	struct otoken *t = o->t;
	uint64_t ttl = 0;
	json_object *v;
	if (reply && reply->json && json_object_object_get_ex(reply->json, "ttl_ms", &v))
		ttl = json_object_get_uint64(v);
	pthread_mutex_lock(&tok_lock);
	t->registering = false;
	if (!err && !t->why && ttl) {
		t->expires = mono_ns() + ttl * 1000000ull;
		pthread_mutex_unlock(&tok_lock);
		scm_vdisk_offload_read_reply(o->call, t->hex, t->len, ttl);
		free(o);
		return;
	}
	const char *why = t->why;
	t->c = NULL;
	tok_maybe_free(t);
	pthread_mutex_unlock(&tok_lock);
	if (err)
		fail_chain(o->call, err->code, scm_error_copy(err), "offload_read: scmd did not register the token");
	else
		fail(o->call, SCM_VDISK_E_TOKENINVALID, "offload_read: %s", why ? why : "scmd gave the token no lifetime");
	free(o);
}

static void oread_finish(scm_task *task)
{
	struct oread *o = (struct oread *)((char *)task - offsetof(struct oread, task));
	struct disk *d = o->t->d;
	const scm_grant *g = scm_call_grant(o->call);
	/* the handle closed while the job waited: the token must not outlive it */
	pthread_mutex_lock(&tok_lock);
	if (g && !o->t->why && o->c->h[o->t->handle - 1].d != d)
		o->t->why = "its source handle was closed";
	pthread_mutex_unlock(&tok_lock);
	o->c->jobs--;
	channel_put(o->c);
	d->jobs--;
	disk_put(d);
	scm_error *e = NULL;
	json_object *args = NULL;
	if (g && !o->t->why) {
		args = json_object_new_object();
		json_object_object_add(args, "op", json_object_new_string("token.register"));
		json_object_object_add(args, "channel", json_object_new_uint64(g->channel));
		json_object_object_add(args, "token", json_object_new_string(o->t->hex));
		json_object_object_add(args, "length", json_object_new_uint64(o->t->len));
		json_object_object_add(args, "ttl_ms", json_object_new_uint64(o->ttl_ms));
		if (scm_provider_control_call(provider, args, register_reply, o, &e) == 0) {
			json_object_put(args);
			return;
		}
		json_object_put(args);
	}
	pthread_mutex_lock(&tok_lock);
	const char *why = o->t->why;
	o->t->registering = false;
	o->t->c = NULL;
	tok_maybe_free(o->t);
	pthread_mutex_unlock(&tok_lock);
	if (e)
		fail_chain(o->call, e->code, e, "offload_read");
	else if (g)
		fail(o->call, SCM_VDISK_E_TOKENINVALID, "offload_read: %s", why);
	else
		scm_call_reply_error(o->call, SCM_E_INTERNAL, "cancelled"); /* only frees it */
	free(o);
}

static void sweep_expired(void)
{
	uint64_t now = mono_ns();
	pthread_mutex_lock(&tok_lock);
	for (struct otoken *t = tokens, *next; t; t = next) {
		next = t->next;
		if (t->expires && now > t->expires) {
			t->c = NULL;
			tok_maybe_free(t);
		}
	}
	pthread_mutex_unlock(&tok_lock);
}

int do_offload_read(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, uint64_t ttl_ms, void *ud)
{
	const scm_grant *g = scm_call_grant(call);
	if (g && g->token)
		return fail(call, SCM_E_DENIED, "offload_read: a token channel cannot issue tokens");
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	struct disk *d = h->d;
	if (length == 0 && offset < d->virtual_size)
		length = d->virtual_size - offset;
	if (offset % d->sector_size || length % d->sector_size || length == 0 || offset > d->virtual_size ||
	    length > d->virtual_size - offset)
		return fail(call, SCM_VDISK_E_BADRANGE,
			    "offload_read: offset %llu length %llu: not whole %u-byte sectors within the %llu-byte disk",
			    (unsigned long long)offset, (unsigned long long)length, d->sector_size,
			    (unsigned long long)d->virtual_size);
	if (pr_refused(call, d->pr, false))
		return 0;
	struct channel *c = scm_call_channel_data(call);
	sweep_expired();
	unsigned mine = 0;
	pthread_mutex_lock(&tok_lock);
	for (struct otoken *t = tokens; t; t = t->next)
		mine += t->c == c;
	unsigned all = n_tokens;
	pthread_mutex_unlock(&tok_lock);
	if (mine >= OFFLOAD_TOKENS_PER_CHANNEL || all >= OFFLOAD_TOKENS_MAX)
		return fail(call, SCM_VDISK_E_LIMIT,
			    mine >= OFFLOAD_TOKENS_PER_CHANNEL
				    ? "offload_read: this channel holds %u live tokens, the limit; use them or let them expire"
				    : "offload_read: the provider holds %u live tokens, its limit",
			    mine >= OFFLOAD_TOKENS_PER_CHANNEL ? OFFLOAD_TOKENS_PER_CHANNEL : OFFLOAD_TOKENS_MAX);
	uint8_t rnd[OFFLOAD_TOKEN_HEX / 2];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return fail(call, SCM_E_INTERNAL, "offload_read: getrandom: %m");
	struct otoken *t = calloc(1, sizeof *t);
	struct oread *o = calloc(1, sizeof *o);
	if (!t || !o) {
		free(t);
		free(o);
		return fail(call, SCM_E_INTERNAL, "out of memory");
	}
	*t = (struct otoken){ .d = d, .c = c, .handle = handle, .off = offset, .len = length, .registering = true };
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(t->hex + 2 * i, 3, "%02x", rnd[i]);
	explicit_bzero(rnd, sizeof rnd);
	o->t = t;
	o->c = c;
	o->ttl_ms = ttl_ms;
	if (!(o->call = scm_call_defer(call))) {
		free(t);
		free(o);
		return 0;
	}
	pthread_mutex_lock(&tok_lock);
	n_tokens++;
	pthread_mutex_unlock(&tok_lock);
	o->pj.run = oread_run;
	o->pj.done = oread_done;
	o->task.fn = oread_finish;
	c->jobs++;
	d->jobs++;
	iopool_submit(&d->q, &o->pj);
	return 0;
}

/* ---- the token channel: offload_map, offload_fetch, offload_check ------- */

/* The token of a token channel's call, under tok_lock (the caller unlocks),
 * or NULL after replying. Only a channel scmd brokered for this very token
 * gets here: the grant's "token" is scmd's word, never the caller's. */
static struct otoken *tok_for_call(scm_call *call, const char *method, const char *hex)
{
	const scm_grant *g = scm_call_grant(call);
	if (!g || !g->token || strcmp(g->token, hex) != 0) {
		fail(call, SCM_E_DENIED, "%s: only a token channel scmd brokered for this token may call it", method);
		return NULL;
	}
	pthread_mutex_lock(&tok_lock);
	struct otoken *t = tokens;
	while (t && strcmp(t->hex, hex) != 0)
		t = t->next;
	/* no expiry here: scmd refused an expired token at redemption, and a
	 * long copy may outlast the lifetime; the token lives until used or
	 * until its token channel ends */
	const char *why = !t ? "the source provider no longer holds it"
			  : !t->c ? "its source handle was closed"
				  : t->why;
	if (why) {
		pthread_mutex_unlock(&tok_lock);
		fail(call, SCM_VDISK_E_TOKENINVALID, "token invalidated: %s", why);
		return NULL;
	}
	t->redeemed = true;
	return t;
}

void offload_token_channel_closed(const char *hex)
{
	pthread_mutex_lock(&tok_lock);
	for (struct otoken *t = tokens; t; t = t->next)
		if (!strcmp(t->hex, hex)) {
			if (!t->why)
				t->why = "its token channel ended";
			t->c = NULL;
			tok_maybe_free(t);
			break;
		}
	pthread_mutex_unlock(&tok_lock);
}

enum ojob_op { OJ_MAP, OJ_FETCH };

struct ojob {
	struct iopool_job pj;
	scm_task task;
	scm_call *call;
	enum ojob_op op;
	struct otoken *t;
	struct disk *d;
	struct channel *c; /* the token channel's (its data buffer) */
	uint64_t off, len;
	int r, fd;
	scm_error *err;
	bool file_mode;
	uint64_t next;
	uint64_t (*ex)[3];
	size_t n_ex;
};

static void map_add(struct ojob *j, uint64_t off, uint64_t len, uint64_t fo)
{
	if (j->n_ex) {
		uint64_t *p = j->ex[j->n_ex - 1];
		bool zero = fo == OFFLOAD_ZERO, pzero = p[2] == OFFLOAD_ZERO;
		if (p[0] + p[1] == off && zero == pzero && (zero || !j->file_mode || p[2] + p[1] == fo)) {
			p[1] += len;
			return;
		}
	}
	j->ex[j->n_ex][0] = htole64(off);
	j->ex[j->n_ex][1] = htole64(len);
	j->ex[j->n_ex][2] = htole64(fo);
	j->n_ex++;
}

static void ojob_run(struct iopool_job *pj)
{
	struct ojob *j = (struct ojob *)pj;
	vhdx *h = j->d->h;
	if (j->op == OJ_FETCH) {
		if ((j->r = vhdx_read(h, j->c->buf, j->len, j->t->off + j->off)) < 0)
			j->err = vhdx_error(h);
		return;
	}
	/* the map: alone on the queue, so the block table holds still */
	uint64_t pos = j->t->off + j->off, end = j->t->off + j->t->len;
	while (pos < end && j->n_ex < OFFLOAD_MAP_MAX - 1) {
		uint64_t n, fo;
		int kind;
		if ((j->r = vhdx_extent_file(h, pos, end - pos, &n, &kind, &fo)) < 0) {
			j->err = vhdx_error(h);
			return;
		}
		map_add(j, pos - j->t->off, n,
			kind == VHDX_EXT_ZERO ? OFFLOAD_ZERO : j->file_mode ? fo : 0);
		pos += n;
	}
	j->next = pos - j->t->off;
	if (j->file_mode) {
		char p[64];
		snprintf(p, sizeof p, "/proc/self/fd/%d", vhdx_fd(h));
		j->fd = open(p, O_RDONLY | O_CLOEXEC);
		if (j->fd < 0) {
			j->r = -errno;
			j->err = scm_error_new(j->r, SCM_HERE, "reopening the source file read-only: %m");
		}
	}
}

static void ojob_done(struct iopool_job *pj)
{
	struct ojob *j = (struct ojob *)pj;
	scm_provider_post(provider, &j->task);
}

static void ojob_finish(scm_task *task)
{
	struct ojob *j = (struct ojob *)((char *)task - offsetof(struct ojob, task));
	if (j->r < 0)
		fail_chain(j->call, SCM_VDISK_E_IO, TAKE_PTR(j->err), "%s", j->op == OJ_MAP ? "offload_map" : "offload_fetch");
	else if (j->op == OJ_FETCH)
		scm_vdisk_offload_fetch_reply(j->call);
	else
		scm_vdisk_offload_map_reply(j->call, j->file_mode ? "file" : "channel", j->file_mode ? j->fd : j->c->memfd,
					    BUFFER_SIZE, j->t->len, j->next, j->ex, j->n_ex * sizeof *j->ex);
	safe_close(j->fd);
	pthread_mutex_lock(&tok_lock);
	j->t->busy--;
	tok_maybe_free(j->t);
	pthread_mutex_unlock(&tok_lock);
	j->c->jobs--;
	channel_put(j->c);
	j->d->jobs--;
	disk_put(j->d);
	scm_error_free(j->err);
	free(j->ex);
	free(j);
}

static int ojob_submit(scm_call *call, struct otoken *t, enum ojob_op op, uint64_t off, uint64_t len)
{
	/* under tok_lock, t good */
	struct channel *c = channel_get(call);
	struct ojob *j = calloc(1, sizeof *j);
	uint64_t(*ex)[3] = op == OJ_MAP ? calloc(OFFLOAD_MAP_MAX, sizeof *ex) : NULL;
	if (!c || !j || (op == OJ_MAP && !ex)) {
		pthread_mutex_unlock(&tok_lock);
		free(ex);
		free(j);
		return fail(call, SCM_E_INTERNAL, "out of memory");
	}
	*j = (struct ojob){ .op = op, .t = t, .d = t->d, .c = c, .off = off, .len = len, .fd = -1, .ex = ex,
			    .file_mode = !vhdx_parent(t->d->h) };
	t->busy++;
	pthread_mutex_unlock(&tok_lock);
	if (!(j->call = scm_call_defer(call))) {
		pthread_mutex_lock(&tok_lock);
		t->busy--;
		pthread_mutex_unlock(&tok_lock);
		free(j->ex);
		free(j);
		return 0;
	}
	j->pj.run = ojob_run;
	j->pj.done = ojob_done;
	j->pj.shared = op == OJ_FETCH && j->d->parallel_reads;
	j->task.fn = ojob_finish;
	c->jobs++;
	j->d->jobs++;
	iopool_submit(&j->d->q, &j->pj);
	return 0;
}

int do_offload_map(scm_call *call, const char *token, uint64_t offset, void *ud)
{
	struct otoken *t = tok_for_call(call, "offload_map", token);
	if (!t)
		return 0;
	if (offset > t->len || offset % t->d->sector_size) {
		pthread_mutex_unlock(&tok_lock);
		return fail(call, SCM_VDISK_E_BADRANGE, "offload_map: offset %llu is not a sector within the token's %llu bytes",
			    (unsigned long long)offset, (unsigned long long)t->len);
	}
	return ojob_submit(call, t, OJ_MAP, offset, 0);
}

int do_offload_fetch(scm_call *call, const char *token, uint64_t offset, uint64_t length, void *ud)
{
	struct otoken *t = tok_for_call(call, "offload_fetch", token);
	if (!t)
		return 0;
	if (length == 0 || length > BUFFER_SIZE || offset % t->d->sector_size || length % t->d->sector_size ||
	    offset > t->len || length > t->len - offset) {
		pthread_mutex_unlock(&tok_lock);
		return fail(call, SCM_VDISK_E_BADRANGE,
			    "offload_fetch: offset %llu length %llu: not whole sectors of the token's %llu bytes, "
			    "at most the %u-byte buffer",
			    (unsigned long long)offset, (unsigned long long)length, (unsigned long long)t->len,
			    BUFFER_SIZE);
	}
	return ojob_submit(call, t, OJ_FETCH, offset, length);
}

/* Good only if no write met the range since the token was made; uses it up. */
int do_offload_check(scm_call *call, const char *token, void *ud)
{
	struct otoken *t = tok_for_call(call, "offload_check", token);
	if (!t)
		return 0;
	t->why = "it was used already";
	t->c = NULL;
	tok_maybe_free(t);
	pthread_mutex_unlock(&tok_lock);
	return scm_vdisk_offload_check_reply(call);
}
