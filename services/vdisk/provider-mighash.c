/* provider-mighash.c: a live migration's hasher (provider-migrate.h).
 *
 * The correspondence record needs the SHA-256 of every piece the copy
 * writes, but a piece going where dest holds nothing the job knows needs
 * no hash to be copied: only the record wants it, for later passes and
 * later migrations. So the side step writes such pieces and hands their
 * buffer, the data in memory once, to a thread of the job's own, and
 * goes on with a free buffer; the hash is off the copy's path (on the
 * other CPU when there is one: hashing 1.2 GiB takes 0.8 s of CPU here,
 * SHA-NI, about what the device takes to write it).
 *
 * The hasher runs as SCHED_BATCH and leaves the CPU for a moment (a
 * short sleep, mig_breathe) after every 256 KiB it hashes, so
 * that a thread woken where it runs, a client's (another process, and
 * another scheduling group: autogroups, containers) or the provider's
 * own, waits for 0.16 ms of hashing at most. (Hashing a batch in one
 * run, it kept the CPU for the rest of its slice, 1.5 ms and more,
 * whenever a client's request woke a thread there. SCHED_IDLE would not
 * do: it changes nothing for a thread of another group, for which the
 * provider's group is what runs there, and an unprivileged thread cannot
 * leave it again, so a busy machine could starve the last step's wait.)
 * The copy never waits for the hasher: a side step that finds no free
 * buffer (the hasher two batches behind, on a busy machine) hashes its
 * own batch itself, paced the same way, and keeps its buffer.
 *
 * An entry is REC_HASHING from the side step until the hasher fills it,
 * and the hasher fills it only if the piece has not changed since: a
 * client's write mirrored into it (REC_UNKNOWN) or a later pass that
 * copied it again (a new sequence number) makes the pending hash stale.
 * Until then the entry vouches for nothing: never a wrong claim. The last
 * step waits for the hasher before writing the record. */
#include <errno.h>
#include <gnutls/crypto.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#include "provider-migrate.h"

void mig_hash_setup(struct bmig *m)
{
	struct mig_hasher *hs = &m->hs;
	pthread_mutex_init(&hs->hlock, NULL);
	pthread_cond_init(&hs->hcond, NULL);
}

int mig_hash_alloc(struct bmig *m, uint64_t n_chunks)
{
	struct mig_hasher *hs = &m->hs;
	if (!(m->rseq = calloc(n_chunks ? n_chunks : 1, sizeof *m->rseq)))
		return -ENOMEM;
	for (unsigned i = 0; i < MIG_HASH_BUFS; i++) {
		if (posix_memalign((void **)&hs->bufs[i], 2u << 20, (size_t)MIG_BATCH_MAX * BJOB_CHUNK)) {
			hs->bufs[i] = NULL;
			return -ENOMEM;
		}
		/* the copy's O_DIRECT I/O pins these pages for each piece:
		 * 2 MiB pages, where the kernel has them, took the bench's
		 * copy from 2.0-2.6 s to 1.1-1.4 s (fewer pages to pin, fewer
		 * and larger segments in each request) */
		(void)madvise(hs->bufs[i], (size_t)MIG_BATCH_MAX * BJOB_CHUNK, MADV_HUGEPAGE);
	}
	m->wbuf = hs->bufs[0];
	for (unsigned i = 1; i < MIG_HASH_BUFS; i++)
		hs->free[hs->n_free++] = hs->bufs[i];
	return 0;
}

/* 20 us: a sleep of 1 us (the timer slack at 1 ns) had expired before
 * the thread got to leave the CPU, so it never did: traced, the hasher
 * then ran 5 ms at a stretch (29 ms at most), and the clients' requests
 * woken on its CPU waited up to a tick for it. */
void mig_breathe(void)
{
	struct timespec ts = { 0, 20000 };
	nanosleep(&ts, NULL);
}

/* A piece hashed MIG_HASH_STEP bytes at a time, off the CPU for a moment
 * between them (mig_breathe): whoever waits for this CPU waits for one
 * step's hashing at most (about 0.16 ms here). */
void mig_sha256_paced(const uint8_t *buf, size_t len, uint8_t out[32])
{
	gnutls_hash_hd_t hd;
	if (gnutls_hash_init(&hd, GNUTLS_DIG_SHA256) < 0) {
		mig_sha256(buf, len, out);
		return;
	}
	for (size_t o = 0; o < len; o += MIG_HASH_STEP) {
		size_t n = len - o < MIG_HASH_STEP ? len - o : MIG_HASH_STEP;
		if (gnutls_hash(hd, buf + o, n) < 0) {
			gnutls_hash_deinit(hd, NULL);
			memset(out, 0xff, 32); /* as mig_sha256's failure */
			return;
		}
		if (o + n < len)
			mig_breathe();
	}
	gnutls_hash_deinit(hd, out);
}

/* A batch: every piece hashed (paced), then (one short hold of dlock,
 * which clients' mirrored writes take too) each entry filled if it still
 * waits for this hash. */
static void hash_batch(struct bmig *m, const struct mig_hbatch *hb)
{
	uint8_t h[MIG_BATCH_MAX][32];
	uint64_t t0 = mono_ns();
	for (unsigned i = 0; i < hb->n; i++) {
		mig_sha256_paced(hb->buf + (size_t)hb->p[i].slot * BJOB_CHUNK, hb->p[i].len, h[i]);
		if (i + 1 < hb->n)
			mig_breathe();
	}
	pthread_mutex_lock(&m->dlock);
	for (unsigned i = 0; i < hb->n; i++) {
		uint64_t c = hb->p[i].c;
		if (m->rec[c].st == REC_HASHING && m->rseq[c] == hb->p[i].seq) {
			memcpy(m->rec[c].hash, h[i], 32);
			m->rec[c].st = REC_DATA;
		}
	}
	pthread_mutex_unlock(&m->dlock);
	__atomic_add_fetch(&m->hs.busy_ns, mono_ns() - t0, __ATOMIC_RELAXED);
}

static void *hasher(void *arg)
{
	struct bmig *m = arg;
	struct mig_hasher *hs = &m->hs;
	struct sched_param sp = { 0 };
	pthread_mutex_lock(&hs->hlock);
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	(void)prctl(PR_SET_TIMERSLACK, 1ul); /* its breathers: 20 us, not 20 to 70 */
	mig_thread_begin("vdisk-mighash");
	for (;;) {
		while (!hs->count && !hs->stop)
			pthread_cond_wait(&hs->hcond, &hs->hlock);
		if (hs->stop)
			break;
		/* the head stays queued (its buffer not free) until hashed */
		const struct mig_hbatch *hb = &hs->q[hs->head];
		pthread_mutex_unlock(&hs->hlock);
		hash_batch(m, hb);
		pthread_mutex_lock(&hs->hlock);
		hs->free[hs->n_free++] = hb->buf;
		hs->head = (hs->head + 1) % MIG_HASH_BUFS;
		hs->count--;
		pthread_cond_broadcast(&hs->hcond);
	}
	pthread_mutex_unlock(&hs->hlock);
	return NULL;
}

/* Under hlock. */
static void start(struct bmig *m)
{
	struct mig_hasher *hs = &m->hs;
	if (!hs->started && !hs->stop)
		hs->started = pthread_create(&hs->thread, NULL, hasher, m) == 0;
}

void mig_hash_start(struct bmig *m)
{
	pthread_mutex_lock(&m->hs.hlock);
	start(m);
	pthread_mutex_unlock(&m->hs.hlock);
}

void mig_hash_batch(struct bmig *m, const struct mig_hbatch *hb)
{
	struct mig_hasher *hs = &m->hs;
	pthread_mutex_lock(&hs->hlock);
	start(m);
	if (!hs->started || !hs->n_free) {
		/* no thread to be had, or it is behind by every other buffer
		 * (a busy machine): hashed here, the buffer kept */
		pthread_mutex_unlock(&hs->hlock);
		uint64_t t0 = mono_ns();
		hash_batch(m, hb);
		__atomic_add_fetch(&hs->wait_ns, mono_ns() - t0, __ATOMIC_RELAXED);
		return;
	}
	hs->q[(hs->head + hs->count) % MIG_HASH_BUFS] = *hb;
	hs->count++;
	pthread_cond_broadcast(&hs->hcond);
	m->wbuf = hs->free[--hs->n_free];
	pthread_mutex_unlock(&hs->hlock);
}

void mig_hash_drain(struct bmig *m)
{
	struct mig_hasher *hs = &m->hs;
	uint64_t t0 = mono_ns();
	pthread_mutex_lock(&hs->hlock);
	while (hs->count && hs->started && !hs->stop)
		pthread_cond_wait(&hs->hcond, &hs->hlock);
	pthread_mutex_unlock(&hs->hlock);
	__atomic_add_fetch(&hs->wait_ns, mono_ns() - t0, __ATOMIC_RELAXED);
}

void mig_hash_free(struct bmig *m)
{
	struct mig_hasher *hs = &m->hs;
	pthread_mutex_lock(&hs->hlock);
	hs->stop = true;
	pthread_cond_broadcast(&hs->hcond);
	pthread_mutex_unlock(&hs->hlock);
	if (hs->started)
		pthread_join(hs->thread, NULL);
	hs->started = false;
	for (unsigned i = 0; i < MIG_HASH_BUFS; i++)
		free(hs->bufs[i]);
	memset(hs->bufs, 0, sizeof hs->bufs);
	m->wbuf = NULL;
	free(m->rseq);
	m->rseq = NULL;
	pthread_mutex_destroy(&hs->hlock);
	pthread_cond_destroy(&hs->hcond);
}

uint64_t mig_hash_ns(const struct bmig *m)
{
	return m->hash_ns + __atomic_load_n(&m->hs.busy_ns, __ATOMIC_RELAXED);
}

uint64_t mig_hash_wait_ns(const struct bmig *m)
{
	return __atomic_load_n(&m->hs.wait_ns, __ATOMIC_RELAXED);
}
