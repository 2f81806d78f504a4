/* provider-miglater.c: a mirror migration's correspondence record, made
 * after the job (provider-migrate.h).
 *
 * The record holds the SHA-256 of every piece DEST holds. Hashing them
 * beside the copy took a CPU for as long as the copy ran (1.3 GiB: 0.8 s
 * of SHA-NI, 1.5-2 s with its pauses), which on two CPUs the clients'
 * requests and the copy itself queued behind. In mirror mode the disk's
 * old file holds, at the switch-over, exactly what DEST holds, and no one
 * writes it after: so the copy leaves those hashes (REC_LATER), and once
 * the job is done a thread of its own reads each such piece from the old
 * file, hashes it, closes the old file (its flush: the record vouches for
 * it as a source too) and writes the record. It runs as SCHED_IDLE and
 * leaves its CPU every 256 KiB (mig_breathe): clients and jobs go first.
 *
 * Until then the record is missing, never wrong: a crash or a provider
 * restart meanwhile leaves none (a migration back then finds no record
 * that vouches for the old file, as after a crash before the last
 * step). A migration that starts meanwhile and would reuse its dest on
 * the strength of a record is taken on trust, and its first step (beside
 * the disk's I/O) waits for the writers, then checks the record. Only a
 * disk without parent: the old handle's parents may be DEST's too, and
 * those serve clients. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider-migrate.h"
#include "vmap.h"

static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t later_cond = PTHREAD_COND_INITIALIZER;
static unsigned later_writers;

struct later {
	vhdx *old;          /* the disk's old handle, this thread's alone */
	int ddirfd;         /* dest's directory */
	char *dname, *path; /* dest's name in it; the disk's path, for errors */
	struct vmap map;
	bool *todo;         /* per extent: its hash still to make */
};

void mig_later_decide(struct bjob *b)
{
	struct bmig *m = b->mig;
	vhdx *h = b->d->h;
	m->hash_later = !m->snapshot && !m->to_nbd && h && !vhdx_parent(h) && !vhdx_remote_uri(h);
}

static void later_free(struct later *l)
{
	if (l->ddirfd >= 0)
		close(l->ddirfd);
	free(l->dname);
	free(l->path);
	free(l->todo);
	vmap_clear(&l->map);
	free(l);
}

static void write_record(struct later *l)
{
	scm_error *e = NULL;
	uint8_t *buf = NULL;
	int r = posix_memalign((void **)&buf, 4096, BJOB_CHUNK) ? scm_fail(&e, -ENOMEM, "out of memory") : 0;
	for (size_t k = 0; r >= 0 && k < l->map.n; k++) {
		struct vmap_extent *x = &l->map.ext[k];
		if (!l->todo[k])
			continue;
		if ((r = vhdx_read(l->old, buf, x->len, x->src)) < 0)
			scm_fail(&e, r, "%s: reading it for the correspondence record: %s", l->path, vhdx_errmsg(l->old));
		else
			mig_sha256_paced(buf, x->len, x->hash);
	}
	free(buf);
	int rc = vhdx_close_checked(l->old);
	if (r >= 0 && rc < 0)
		r = scm_fail(&e, rc, "%s: closing it after the migration: %s", l->path, strerror(-rc));
	if (r >= 0)
		r = mig_record_put(l->ddirfd, l->dname, &l->map, &e);
	if (r < 0) {
		_cleanup_free_ char *t = scm_error_text(e);
		fprintf(stderr, "vdisk-provider: no correspondence record for %s: %s\n", l->map.dest,
			t ? t : strerror(-r));
	}
	scm_error_free(e);
	later_free(l);
	pthread_mutex_lock(&later_lock);
	later_writers--;
	pthread_cond_broadcast(&later_cond);
	pthread_mutex_unlock(&later_lock);
}

static void *writer(void *arg)
{
	struct sched_param sp = { 0 };
	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	(void)pthread_setname_np(pthread_self(), "vdisk-migrec");
	write_record(arg);
	return NULL;
}

void mig_later_start(struct bjob *b)
{
	struct bmig *m = b->mig;
	scm_error *e = NULL;
	struct later *l = calloc(1, sizeof *l);
	if (!l || (l->ddirfd = -1, mig_record_map(b, &l->map, &l->todo, &e) < 0) ||
	    (l->ddirfd = fcntl(m->ddirfd, F_DUPFD_CLOEXEC, 3)) < 0 || !(l->dname = strdup(m->dname)) ||
	    !(l->path = strdup(b->path))) {
		/* no record: the old file closed here, as before */
		_cleanup_free_ char *t = scm_error_text(e);
		fprintf(stderr, "vdisk-provider: no correspondence record for %s: %s\n", b->target,
			t ? t : "out of memory");
		scm_error_free(e);
		if (l)
			later_free(l);
		int r = vhdx_close_checked(m->old);
		if (r < 0)
			fprintf(stderr, "vdisk-provider: %s: closing it after the migration: %s\n", b->path, strerror(-r));
		m->old = NULL;
		return;
	}
	l->old = TAKE_PTR(m->old);
	pthread_mutex_lock(&later_lock);
	later_writers++;
	pthread_mutex_unlock(&later_lock);
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, writer, l) != 0)
		write_record(l); /* no thread to be had: here, the job done after it */
	pthread_attr_destroy(&a);
}

bool mig_later_pending(void)
{
	pthread_mutex_lock(&later_lock);
	bool p = later_writers > 0;
	pthread_mutex_unlock(&later_lock);
	return p;
}

void mig_later_wait(void)
{
	pthread_mutex_lock(&later_lock);
	while (later_writers)
		pthread_cond_wait(&later_cond, &later_lock);
	pthread_mutex_unlock(&later_lock);
}
