/* provider-mignbd.c: a mirror migration whose destination is an NBD
 * export (docs/vdisk.md "Live migration", "To an NBD export"), typically
 * another host's `scmctl vdisk export` of a disk of the same size, with
 * libnbd. The copy passes, the dirty map and the active mirroring are
 * provider-migpiece.c's and provider-mirror.c's, as for a file; what
 * differs is only where the bytes go, here:
 *
 * - the connection is made in the job's first side step (beside the
 *   disk's I/O, bounded by SCM_VDISK_NBD_CONNECT_MS), TLS as the grant
 *   names it (the settings remote parents use), never as the URI says;
 * - BLOCK_STATUS (base:allocation) tells which pieces of the export read
 *   as zeros already: a piece of the disk that is zero or unallocated
 *   there moves nothing; elsewhere it is made zero with WRITE_ZEROES (a
 *   hole allowed) rather than written;
 * - data goes as WRITE, clients' writes mirror as WRITE or WRITE_ZEROES,
 *   their flushes as FLUSH, and the switch-over ends with a FLUSH;
 * - at the switch-over no handle moves (a handle is a file here): the
 *   disk stops taking writes (disk->moved_to; reads go on, from a file
 *   that holds what the export holds) and the clients move to the other
 *   host, as a VM does after qemu's storage migration to an NBD target.
 *
 * Every request waits for its answer against a bound
 * (SCM_VDISK_NBD_WAIT_MS of silence, and a limit bytes moving do not push
 * back: nbd_wait); a request that failed or got no answer fails the
 * job, and the disk is as it was (nothing of it depended on the export). A lost connection (the server gone, the connection
 * reset) is made again for up to SCM_VDISK_NBD_RETRY_MS, the request sent
 * again and what the old connection wrote since its last FLUSH marked
 * dirty (reconnect). One request at a time on the connection (n->lock): libnbd's
 * handle is thread-safe, but two threads polling it would each wait for
 * bytes the other took. */
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbd-parent.h"
#include "provider-migrate.h"

#define NBD_REQ_MAX (32u << 20)   /* a WRITE's bytes (libnbd refuses over 64 MiB) */
#define NBD_ZERO_MAX (1u << 30)   /* a WRITE_ZEROES's or BLOCK_STATUS's range */

struct mig_nbd {
	struct nbd_handle *nbd; /* NULL while connecting again */
	char *uri; /* canonical */
	unsigned wait_ms;
	bool can_zero, can_flush;
	bool dead; /* a request failed: every later one fails (__atomic) */
	pthread_mutex_t lock;
	uint8_t *zeros; /* a WRITE's worth, for a server without WRITE_ZEROES */
	/* connecting again after a lost connection (reconnect) */
	struct bjob *b;
	struct nbd_parent_opts o; /* its strings: the bmig's */
	unsigned retry_ms;
	uint8_t *unflushed; /* pieces written since the last FLUSH answered (under lock) */
	uint64_t n_chunks;
	unsigned gen; /* connections made again (__atomic) */
};

bool mig_is_nbd(const char *dest)
{
	return !strncmp(dest, "nbd://", 6) || !strncmp(dest, "nbds://", 7) || !strncmp(dest, "nbd+unix://", 11) ||
	       !strncmp(dest, "nbds+unix://", 12);
}

/* The failure of a request: libnbd's words (this thread's last error). */
static int req_error(struct mig_nbd *n, int k, const char *what, uint64_t off, uint64_t len, scm_error **err)
{
	int e = k == -ETIMEDOUT ? ETIMEDOUT : nbd_get_errno();
	const char *msg = k == -ETIMEDOUT ? NULL : nbd_get_error();
	char why[128];
	snprintf(why, sizeof why, "no answer within %u ms (SCM_VDISK_NBD_WAIT_MS), or not done within its time "
		 "limit (that, a second, and a second a MiB)", n->wait_ms);
	return scm_fail(err, e > 0 ? -e : -EIO, "migration destination %s: %s %llu+%llu: %s", n->uri, what,
			(unsigned long long)off, (unsigned long long)len, msg ? msg : why);
}

/* The same, and the connection is not used again: a request that got no
 * answer may still be at the server, and NBD does not order requests in
 * flight, so a stale WRITE could land after any later one (even after the
 * switch-over's FLUSH). Every later request fails, so the job fails and
 * never switches over to the export. */
static int req_fail(struct mig_nbd *n, int k, const char *what, uint64_t off, uint64_t len, scm_error **err)
{
	int r = req_error(n, k, what, off, len, err);
	if (!__atomic_exchange_n(&n->dead, true, __ATOMIC_ACQ_REL))
		(void)nbd_shutdown(n->nbd, LIBNBD_SHUTDOWN_ABANDON_PENDING);
	return r;
}

/* After a failed request: none is sent again on this connection (nor
 * on another, once connecting again failed: n->nbd NULL). */
static int dead_fail(struct mig_nbd *n, const char *what, uint64_t off, uint64_t len, scm_error **err)
{
	if (!n->nbd)
		return scm_fail(err, -EHOSTDOWN, "migration destination %s: %s %llu+%llu: the connection was lost, and "
				"attempts to connect again failed for %u ms (SCM_VDISK_NBD_RETRY_MS=%u)", n->uri, what,
				(unsigned long long)off, (unsigned long long)len, n->retry_ms, n->retry_ms);
	return scm_fail(err, -EIO, "migration destination %s: %s %llu+%llu: an earlier request failed: the "
			"connection is not used again", n->uri, what, (unsigned long long)off, (unsigned long long)len);
}

static bool is_dead(struct mig_nbd *n)
{
	return __atomic_load_n(&n->dead, __ATOMIC_ACQUIRE);
}

/* How long a migration tries to connect again to an export whose
 * connection was lost (ms): SCM_VDISK_NBD_RETRY_MS, else this. */
#define NBD_RETRY_MS 30000u

static unsigned retry_ms(void)
{
	const char *e = getenv("SCM_VDISK_NBD_RETRY_MS");
	char *end;
	unsigned long v = e && *e ? strtoul(e, &end, 10) : 0;
	return e && *e && !*end && v <= 3600000 ? (unsigned)v : NBD_RETRY_MS;
}

/* Was the connection lost (the server gone or reset), rather than a
 * request refused by a server still there, or left unanswered? Silence is
 * no loss: the request may still be at the server and land after the
 * resent one, so it fails the job as before. */
static bool lost(struct mig_nbd *n, int k)
{
	return k != -ETIMEDOUT && !nbd_aio_is_ready(n->nbd);
}

/* The pieces [off, off + len) the export acknowledged but was not asked
 * to flush since (under n->lock). */
static void unflushed_mark(struct mig_nbd *n, uint64_t off, uint64_t len)
{
	for (uint64_t c = off / BJOB_CHUNK; len && c <= (off + len - 1) / BJOB_CHUNK && c < n->n_chunks; c++)
		n->unflushed[c / 8] |= (uint8_t)(1u << (c % 8));
}

/* Under n->lock, after a request found the connection lost: the old one
 * closed, connect again with backoff (50 ms doubling to 1 s) until
 * *t0 + retry_ms (*t0: the first loss of this request, set here). The
 * export must still be writable and of the disk's size. What the old
 * connection wrote since its last FLUSH may be gone with a restarted
 * server: those pieces are marked dirty, so the copy sends them again
 * (the switch-over copies and flushes again if it connected again
 * meanwhile, mig_nbd_gen). 0, or the job's error (n is dead then). */
static int reconnect(struct mig_nbd *n, uint64_t *t0, scm_error *why, scm_error **err)
{
	struct bjob *b = n->b;
	uint64_t now = mono_ns() / 1000000;
	if (!*t0) {
		*t0 = now;
		fprintf(stderr, "vdisk-provider: %s: migration job %llu: the connection to %s was lost; connecting "
			"again for up to %u ms (SCM_VDISK_NBD_RETRY_MS)\n", b->path, (unsigned long long)b->id, n->uri,
			n->retry_ms);
	}
	(void)nbd_shutdown(n->nbd, LIBNBD_SHUTDOWN_ABANDON_PENDING);
	nbd_close(n->nbd);
	n->nbd = NULL;
	unsigned backoff = 50, tries = 0;
	for (;;) {
		struct nbd_handle *h = NULL;
		scm_error *e = NULL;
		/* an attempt gets what is left of the retry time, at least 200 ms */
		struct nbd_parent_opts o = n->o;
		uint64_t left = n->retry_ms > now - *t0 ? n->retry_ms - (now - *t0) : 0;
		if (o.connect_ms > left)
			o.connect_ms = left > 200 ? (unsigned)left : 200;
		int r = nbd_dial(&b->mig->nbd_u, &o, false, &h, &e);
		tries++;
		if (r == 0 && (nbd_is_read_only(h) == 1 || (uint64_t)nbd_get_size(h) != b->vsize)) {
			r = scm_fail(&e, -ESTALE, "%s answers again, but read-only or with another size: not the "
				     "export the copy went to", n->uri);
			nbd_close(h);
		}
		if (r == 0) {
			n->nbd = h;
			n->can_zero = nbd_can_zero(h) == 1;
			n->can_flush = nbd_can_flush(h) == 1;
			uint64_t k = 0;
			for (uint64_t c = 0; c < n->n_chunks; c++)
				if (n->unflushed[c / 8] & (1u << (c % 8))) {
					bjob_dirty(b, c * BJOB_CHUNK, BJOB_CHUNK);
					k++;
				}
			__atomic_add_fetch(&n->gen, 1, __ATOMIC_ACQ_REL);
			fprintf(stderr, "vdisk-provider: %s: migration job %llu: connected to %s again (%u attempt%s); "
				"%llu MiB written since its last flush are sent again\n", b->path,
				(unsigned long long)b->id, n->uri, tries, tries == 1 ? "" : "s", (unsigned long long)k);
			scm_error_free(why);
			scm_error_free(e);
			return 0;
		}
		now = mono_ns() / 1000000;
		if (now - *t0 >= n->retry_ms) {
			scm_error_push(err, why);
			scm_error_push(err, e);
			__atomic_store_n(&n->dead, true, __ATOMIC_RELEASE);
			return scm_fail(err, r, "migration destination %s: the connection was lost, and %u attempt%s to "
					"connect again over %llu ms failed (SCM_VDISK_NBD_RETRY_MS=%u)", n->uri, tries,
					tries == 1 ? "" : "s", (unsigned long long)(now - *t0), n->retry_ms);
		}
		scm_error_free(e);
		left = n->retry_ms - (now - *t0);
		uint64_t d = backoff < left ? backoff : left;
		struct timespec ts = { (time_t)(d / 1000), (long)(d % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		backoff = backoff >= 500 ? 1000 : backoff * 2;
	}
}

/* A request's failure k: connected again (0: send it again), or the
 * job's error. */
static int failed(struct mig_nbd *n, int k, uint64_t *t0, const char *what, uint64_t off, uint64_t len,
		  scm_error **err)
{
	if (!lost(n, k))
		return req_fail(n, k, what, off, len, err);
	scm_error *why = NULL;
	req_error(n, k, what, off, len, &why);
	return reconnect(n, t0, why, err);
}

static int nbd_put(struct mig_nbd *n, const void *buf, uint64_t len, uint64_t off, scm_error **err)
{
	int r = 0;
	uint64_t t0 = 0;
	pthread_mutex_lock(&n->lock);
	for (uint64_t done = 0; done < len && r == 0;) {
		uint64_t k = len - done < NBD_REQ_MAX ? len - done : NBD_REQ_MAX;
		if (is_dead(n)) {
			r = dead_fail(n, "writing", off + done, k, err);
			break;
		}
		int64_t c = nbd_aio_pwrite(n->nbd, (const char *)buf + done, k, off + done, NBD_NULL_COMPLETION, 0);
		int w = nbd_wait(n->nbd, c, n->wait_ms, k);
		if (w < 0) {
			if ((r = failed(n, w, &t0, "writing", off + done, k, err)) == 0)
				continue; /* connected again: the same WRITE */
			break;
		}
		unflushed_mark(n, off + done, k);
		done += k;
	}
	pthread_mutex_unlock(&n->lock);
	return r;
}

/* Zeros at off: WRITE_ZEROES (unmap: the server may leave a hole), or
 * WRITEs of zeros when the server has no WRITE_ZEROES. */
static int put_zeros(struct mig_nbd *n, uint64_t len, uint64_t off, scm_error **err)
{
	for (uint64_t done = 0; done < len;) {
		uint64_t k = len - done < NBD_REQ_MAX ? len - done : NBD_REQ_MAX;
		int r = nbd_put(n, n->zeros, k, off + done, err);
		if (r < 0)
			return r;
		done += k;
	}
	return 0;
}

static int nbd_zeroes(struct mig_nbd *n, uint64_t len, uint64_t off, bool unmap, scm_error **err)
{
	if (!n->can_zero)
		return put_zeros(n, len, off, err);
	int r = 0;
	uint64_t t0 = 0;
	pthread_mutex_lock(&n->lock);
	for (uint64_t done = 0; done < len && r == 0;) {
		uint64_t k = len - done < NBD_ZERO_MAX ? len - done : NBD_ZERO_MAX;
		if (is_dead(n)) {
			r = dead_fail(n, "writing zeroes at", off + done, k, err);
			break;
		}
		if (!n->can_zero) { /* connected again, to a server without it */
			pthread_mutex_unlock(&n->lock);
			return put_zeros(n, len - done, off + done, err);
		}
		int64_t c = nbd_aio_zero(n->nbd, k, off + done, NBD_NULL_COMPLETION, unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE);
		int w = nbd_wait(n->nbd, c, n->wait_ms, 0);
		if (w < 0) {
			if ((r = failed(n, w, &t0, "writing zeroes at", off + done, k, err)) == 0)
				continue;
			break;
		}
		unflushed_mark(n, off + done, k);
		done += k;
	}
	pthread_mutex_unlock(&n->lock);
	return r;
}

static int nbd_sync(struct mig_nbd *n, scm_error **err)
{
	if (is_dead(n))
		return dead_fail(n, "flushing", 0, 0, err);
	if (!n->can_flush) /* the server says its writes need none */
		return 0;
	pthread_mutex_lock(&n->lock);
	uint64_t t0 = 0;
	int r;
	do { /* connected again: a FLUSH there (what it lost is dirty again) */
		if (is_dead(n)) { /* (a request that held the lock failed meanwhile) */
			r = dead_fail(n, "flushing", 0, 0, err);
			break;
		}
		int64_t c = nbd_aio_flush(n->nbd, NBD_NULL_COMPLETION, 0);
		int w = nbd_wait(n->nbd, c, n->wait_ms, 0);
		r = w < 0 ? failed(n, w, &t0, "flushing", 0, 0, err) : 1;
	} while (r == 0);
	if (r > 0) {
		memset(n->unflushed, 0, (n->n_chunks + 7) / 8);
		r = 0;
	}
	pthread_mutex_unlock(&n->lock);
	return r;
}

void mig_nbd_close(struct mig_nbd *n)
{
	if (!n)
		return;
	if (n->nbd) {
		(void)nbd_shutdown(n->nbd, 0);
		nbd_close(n->nbd);
	}
	pthread_mutex_destroy(&n->lock);
	free(n->uri);
	free(n->zeros);
	free(n->unflushed);
	free(n);
}

/* BLOCK_STATUS's answer: each extent that reads as zeros covers whole
 * pieces that need nothing from a piece of zeros. */
struct scan {
	struct bjob *b;
	uint64_t reached;
};

static int extent_cb(void *ud, const char *ctx, uint64_t off, uint32_t *ents, size_t n, int *error)
{
	struct scan *s = ud;
	struct bjob *b = s->b;
	(void)error;
	if (strcmp(ctx, LIBNBD_CONTEXT_BASE_ALLOCATION))
		return 0;
	for (size_t i = 0; i + 1 < n; i += 2) {
		uint64_t len = ents[i], end = off + len;
		if (ents[i + 1] & LIBNBD_STATE_ZERO) {
			/* the pieces wholly inside [off, end) */
			for (uint64_t c = (off + BJOB_CHUNK - 1) / BJOB_CHUNK; c < b->n_chunks; c++) {
				struct mig_piece pc = mig_piece_of(b, c);
				if (pc.off + pc.len > end)
					break;
				b->mig->rec[c].st = REC_ZERO;
			}
		}
		off = end;
	}
	if (off > s->reached)
		s->reached = off;
	return 0;
}

/* Which pieces of the export read as zeros: their entries REC_ZERO, the
 * rest REC_UNKNOWN (the export may hold anything there). */
static int scan(struct bjob *b, struct mig_nbd *n)
{
	struct bmig *m = b->mig;
	for (uint64_t c = 0; c < b->n_chunks; c++)
		m->rec[c].st = REC_UNKNOWN;
	if (nbd_can_meta_context(n->nbd, LIBNBD_CONTEXT_BASE_ALLOCATION) != 1)
		return 0; /* every piece is written, zeros too */
	struct scan s = { b, 0 };
	while (s.reached < b->vsize) {
		uint64_t at = s.reached, k = b->vsize - at < NBD_ZERO_MAX ? b->vsize - at : NBD_ZERO_MAX;
		int64_t c = nbd_aio_block_status(n->nbd, k, at, (nbd_extent_callback){ .callback = extent_cb, .user_data = &s },
						 NBD_NULL_COMPLETION, 0);
		int w = nbd_wait(n->nbd, c, n->wait_ms, 0);
		if (w < 0)
			return req_fail(n, w, "block status of", at, k, &b->serr);
		if (s.reached <= at)
			return scm_fail(&b->serr, -EPROTO, "migration destination %s: block status of %llu+%llu "
					"answered nothing", n->uri, (unsigned long long)at, (unsigned long long)k);
	}
	uint8_t *zb = b->buf;
	for (uint64_t c = 0; c < b->n_chunks; c++)
		if (m->rec[c].st == REC_ZERO)
			mig_zero_hash(m, zb, mig_piece_of(b, c).len, m->rec[c].hash);
	return 0;
}

/* dest is an NBD URI: mirror mode only, the export named in the grant's
 * nbd_migrate_dests, TLS material for an nbds one, all checked before
 * anything is connected to (the job's first side step connects). */
int mig_nbd_dest(scm_call *call, struct bjob *b, const char *dest)
{
	struct bmig *m = b->mig;
	struct nbd_parent_opts o;
	_cleanup_free_ char *canon = NULL;
	scm_error *err = NULL;
	if (m->snapshot)
		return fail(call, SCM_E_BAD_ARGS, "migrate: %s: snapshot mode needs a file destination (the child names "
			    "it as its parent); migrate to an NBD export in mirror mode", dest), -EINVAL;
	int r = dest_check(scm_call_grant(call), dest, &m->nbd_u, &canon, &o, &err);
	if (r < 0)
		return fail_chain(call, r == -EACCES ? SCM_E_DENIED : SCM_E_BAD_ARGS, err, "migrate %s to %s", b->path,
				  dest), r;
	m->to_nbd = true;
	if (m->nbd_u.tls && !o.tls_certificates && !o.tls_psk_file)
		return fail(call, SCM_E_DENIED, "migrate: migration destination %s needs TLS material, and none is "
			    "configured (the grant's nbd_tls_certificates or nbd_tls_psk_file)", canon), -EACCES;
	if ((o.tls_certificates && !(m->nbd_certs = strdup(o.tls_certificates))) ||
	    (o.tls_psk_file && !(m->nbd_psk = strdup(o.tls_psk_file))) ||
	    (o.tls_username && !(m->nbd_user = strdup(o.tls_username))))
		return fail(call, SCM_E_INTERNAL, "out of memory"), -ENOMEM;
	/* the job's target is the canonical form: what its status and
	 * journal say, and what the grant compared */
	free(b->target);
	b->target = TAKE_PTR(canon);
	return 0;
}

/* The job's first side step (mig_create): connected, the export checked
 * (writable, the disk's size), its zeros known. */
int mig_nbd_open(struct bjob *b)
{
	struct bmig *m = b->mig;
	struct nbd_parent_opts o = { .connect_ms = nbd_parent_connect_ms(),
				     .tls_certificates = m->nbd_certs,
				     .tls_psk_file = m->nbd_psk,
				     .tls_username = m->nbd_user };
	struct mig_nbd *n = calloc(1, sizeof *n);
	if (!n || !(n->uri = strdup(b->target)) || !(n->zeros = calloc(1, NBD_REQ_MAX)) ||
	    !(n->unflushed = calloc(1, (b->n_chunks + 7) / 8 + 1))) {
		mig_nbd_close(n);
		return scm_fail(&b->serr, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&n->lock, NULL);
	n->wait_ms = nbd_parent_wait_ms();
	if (n->wait_ms < 200)
		n->wait_ms = 200;
	n->b = b;
	n->o = o;
	n->retry_ms = retry_ms();
	n->n_chunks = b->n_chunks;
	int r = nbd_dial(&m->nbd_u, &o, true, &n->nbd, &b->serr);
	if (r < 0) {
		mig_nbd_close(n);
		return scm_fail(&b->serr, r, "migration destination %s unreachable: nothing was copied", b->target);
	}
	int64_t size = nbd_get_size(n->nbd);
	if (nbd_is_read_only(n->nbd) == 1)
		r = scm_fail(&b->serr, -EROFS, "migration destination %s is exported read-only", b->target);
	else if ((uint64_t)size != b->vsize)
		r = scm_fail(&b->serr, -EINVAL, "migration destination %s is %lld bytes, the disk %llu: a mirror "
			     "migration needs an export of the disk's size", b->target, (long long)size,
			     (unsigned long long)b->vsize);
	n->can_zero = nbd_can_zero(n->nbd) == 1;
	n->can_flush = nbd_can_flush(n->nbd) == 1;
	if (r == 0)
		r = scan(b, n);
	if (r == 0) /* the mark the switch-over puts in the journal's place */
		r = mig_mark_prepare(b);
	if (r < 0) {
		mig_nbd_close(n);
		return r;
	}
	pthread_mutex_lock(&m->dlock);
	m->nbd = n;
	pthread_mutex_unlock(&m->dlock);
	m->phase = MP_COPY; /* (dest_made stays false: nothing of the export is ours to remove) */
	return 0;
}

/* ---- the destination's operations, as the copy and the mirror use them -- */

int mig_dest_state(struct bjob *b, uint64_t c)
{
	struct bmig *m = b->mig;
	if (!m->nbd)
		return vhdx_block_state(b->other, c * BJOB_CHUNK);
	/* what the job knows the export reads there: zeros, or anything */
	uint8_t st = m->rec[c].st;
	return st == REC_ZERO || st == REC_NONE ? VHDX_PB_ZERO : VHDX_PB_FULLY_PRESENT;
}

int mig_nbd_write(struct bjob *b, const void *buf, uint64_t len, uint64_t off, scm_error **err)
{
	return nbd_put(b->mig->nbd, buf, len, off, err);
}

int mig_nbd_zeroes(struct bjob *b, uint64_t len, uint64_t off, bool unmap, scm_error **err)
{
	return nbd_zeroes(b->mig->nbd, len, off, unmap, err);
}

int mig_nbd_flush(struct bjob *b, scm_error **err)
{
	return nbd_sync(b->mig->nbd, err);
}

unsigned mig_nbd_gen(struct bjob *b)
{
	return b->mig->nbd ? __atomic_load_n(&b->mig->nbd->gen, __ATOMIC_ACQUIRE) : 0;
}
