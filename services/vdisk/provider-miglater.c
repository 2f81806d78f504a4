/* provider-miglater.c: a mirror migration's correspondence record, made
 * after the job (provider-migrate.h).
 *
 * The record holds the SHA-256 of every piece DEST holds. Hashing them
 * beside the copy took a CPU for as long as the copy ran (1.3 GiB: 0.8 s
 * of SHA-NI, 1.5-2 s with its pauses), which on two CPUs the clients'
 * requests and the copy itself queued behind. In mirror mode the disk's
 * old file holds, at the switch-over, exactly what DEST holds: so the copy
 * leaves those hashes (REC_LATER). The last step closes the old file as
 * before (flushed, its lock let go), and hands a fresh descriptor of it to
 * a thread of its own, which opens it without a lock, reads each such
 * piece, hashes it and writes the record, at nice 19 (SCHED_BATCH),
 * leaving its CPU every 256 KiB (mig_breathe): clients and jobs go first.
 *
 * Nothing holds the old file meanwhile, so someone may write it. Every
 * writer of a VHDX (ours, qemu's) renews its DataWriteGuid before its
 * first write, or its FileWriteGuid (ours keeping the identity: a merge
 * into it), and any write changes the inode's change time: the thread
 * checks all three before it hashes and again after (the DataWriteGuid
 * against the switch-over's), and writes no record when one changed.
 * So the record is missing or right (but for a write in the moment
 * between the close and the first check that renews none of the three):
 * a crash or a provider restart meanwhile leaves none either (a migration back then finds no record that vouches
 * for the old file, as after a crash before the last step).
 *
 * A migration back (from DEST to the old file) that starts meanwhile is
 * taken on trust, and its first step (beside the disk's I/O) waits for
 * that writer, then checks the record. Only a disk without parent: the
 * old handle's parents may be DEST's too. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "provider-migrate.h"
#include "vmap.h"

static pthread_mutex_t later_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t later_cond = PTHREAD_COND_INITIALIZER;

struct later {
	struct later *next;  /* (the writers at work, under later_lock) */
	vhdx *old;           /* the disk's old handle, this thread's to close */
	int fd;              /* the old file, read-only, no lock */
	int ddirfd;          /* dest's directory */
	char *dname, *path;  /* dest's name in it; the old file's path */
	vhdx_guid dwg;       /* the old file's DataWriteGuid at the switch-over */
	vhdx_guid fwg;       /* its FileWriteGuid, and its inode's change time, once closed */
	struct timespec ctime;
	struct vmap map;
	bool *unhashed;      /* per extent: its hash is to be made from the old file */
	bool cpus_held;      /* mig_cpus_hold: the workers keep off this thread's CPUs */
};
static struct later *writers;

void mig_later_decide(struct bjob *b)
{
	struct bmig *m = b->mig;
	vhdx *h = b->d->h;
	m->hash_later = !m->snapshot && !m->to_nbd && h && !vhdx_parent(h) && !vhdx_remote_uri(h);
}

static void later_free(struct later *l)
{
	if (l->old) {
		int r = vhdx_close_checked(l->old);
		if (r < 0)
			fprintf(stderr, "vdisk-provider: %s: closing it after the migration: %s\n", l->path,
				strerror(-r));
	}
	if (l->fd >= 0)
		close(l->fd);
	if (l->ddirfd >= 0)
		close(l->ddirfd);
	free(l->dname);
	free(l->path);
	free(l->unhashed);
	vmap_clear(&l->map);
	mig_cpus_release(&l->cpus_held);
	free(l);
}

/* Has the old file been left as it was? Its DataWriteGuid the one it
 * had at the switch-over, and (first: noted; then: compared) its
 * FileWriteGuid, which every writing session renews (ours keeping the
 * identity too: a merge into it), and its inode's change time, which
 * any write changes (a raw one too). A fresh look at its header, no lock
 * taken. */
static int unchanged(struct later *l, bool first, vhdx **keep, scm_error **ret_err)
{
	vhdx *h = NULL;
	struct vhdx_info in;
	struct stat st;
	if (fstat(l->fd, &st) < 0)
		return scm_fail(ret_err, -errno, "%s: %m", l->path);
	int r = vhdx_open_fd(l->fd, l->path, NULL, VHDX_O_RDONLY | VHDX_O_NO_LOCK, &h, ret_err);
	if (r < 0)
		return r;
	vhdx_get_info(h, &in);
	if (first) {
		l->fwg = in.file_write_guid;
		l->ctime = st.st_ctim;
	}
	if (memcmp(&in.data_write_guid, &l->dwg, sizeof l->dwg) || memcmp(&in.file_write_guid, &l->fwg, sizeof l->fwg) ||
	    st.st_ctim.tv_sec != l->ctime.tv_sec || st.st_ctim.tv_nsec != l->ctime.tv_nsec)
		r = scm_fail(ret_err, -ESTALE, "%s was written after the migration", l->path);
	if (r >= 0 && keep)
		*keep = h;
	else
		vhdx_close(h);
	return r;
}

static void write_record(struct later *l)
{
	scm_error *e = NULL;
	vhdx *h = NULL;
	uint8_t *buf = NULL;
	/* closed, and at once what the file is like noted: a moment unlocked */
	int r = vhdx_close_checked(TAKE_PTR(l->old));
	if (r < 0)
		scm_fail(&e, r, "%s: closing it after the migration: %s", l->path, strerror(-r));
	else
		r = unchanged(l, true, &h, &e);
	/* test hook: the record held back while this file exists */
	const char *hold = getenv("SCM_VDISK_RECORD_HOLD");
	while (hold && *hold && access(hold, F_OK) == 0)
		usleep(10000);
	if (r >= 0 && posix_memalign((void **)&buf, 4096, BJOB_CHUNK))
		r = scm_fail(&e, -ENOMEM, "out of memory");
	for (size_t k = 0; r >= 0 && k < l->map.n; k++) {
		struct vmap_extent *x = &l->map.ext[k];
		if (!l->unhashed[k])
			continue;
		if ((r = vhdx_read(h, buf, x->len, x->src)) < 0)
			scm_fail(&e, r, "%s: reading it: %s", l->path, vhdx_errmsg(h));
		else
			mig_sha256_paced(buf, x->len, x->hash);
	}
	free(buf);
	if (h)
		vhdx_close(h);
	if (r >= 0)
		r = unchanged(l, false, NULL, &e);
	if (r >= 0)
		r = mig_record_put(l->ddirfd, l->dname, &l->map, &e);
	if (r < 0) {
		_cleanup_free_ char *t = scm_error_text(e);
		fprintf(stderr, "vdisk-provider: no correspondence record for %s: %s\n", l->map.dest,
			t ? t : strerror(-r));
	}
	scm_error_free(e);
	pthread_mutex_lock(&later_lock);
	for (struct later **p = &writers; *p; p = &(*p)->next)
		if (*p == l) {
			*p = l->next;
			break;
		}
	pthread_cond_broadcast(&later_cond);
	pthread_mutex_unlock(&later_lock);
	later_free(l);
}

static void *writer(void *arg)
{
	struct sched_param sp = { 0 };
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
	mig_thread_begin("vdisk-migrec");
	write_record(arg);
	return NULL;
}

void mig_later_start(struct bjob *b)
{
	struct bmig *m = b->mig;
	scm_error *e = NULL;
	char p[64];
	int r = 0;
	snprintf(p, sizeof p, "/proc/self/fd/%d", vhdx_fd(m->old));
	struct later *l = calloc(1, sizeof *l);
	if (!l) {
		(void)vhdx_close_checked(TAKE_PTR(m->old));
		fprintf(stderr, "vdisk-provider: no correspondence record for %s: out of memory\n", b->target);
		return;
	}
	*l = (struct later){ .old = TAKE_PTR(m->old), .fd = -1, .ddirfd = -1, .dwg = m->src_dwg };
	mig_cpus_hold(&l->cpus_held);
	if (!(l->path = strdup(b->path)) || !(l->dname = strdup(m->dname)))
		r = scm_fail(&e, -ENOMEM, "out of memory");
	else if ((l->fd = open(p, O_RDONLY | O_CLOEXEC)) < 0 || (l->ddirfd = fcntl(m->ddirfd, F_DUPFD_CLOEXEC, 3)) < 0)
		r = scm_fail(&e, -errno, "%m");
	else
		r = mig_record_map(b, &l->map, &l->unhashed, &e);
	if (r < 0) {
		/* no record: the old file closed here, as before */
		_cleanup_free_ char *t = scm_error_text(e);
		fprintf(stderr, "vdisk-provider: no correspondence record for %s: %s\n", b->target,
			t ? t : strerror(-r));
		scm_error_free(e);
		later_free(l);
		return;
	}
	pthread_mutex_lock(&later_lock);
	l->next = writers;
	writers = l;
	pthread_mutex_unlock(&later_lock);
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, writer, l) != 0)
		write_record(l); /* no thread to be had: here, the job done after it */
	pthread_attr_destroy(&a);
}

/* The writer of the record that would vouch for target as the source of
 * a migration to path (a migration of path back to target), under
 * later_lock. */
static struct later *writer_of(const char *path, const char *target)
{
	for (struct later *l = writers; l; l = l->next)
		if (!strcmp(l->map.dest, path) && !strcmp(l->map.source, target))
			return l;
	return NULL;
}

bool mig_later_pending(const char *path, const char *target)
{
	pthread_mutex_lock(&later_lock);
	bool p = writer_of(path, target) != NULL;
	pthread_mutex_unlock(&later_lock);
	return p;
}

void mig_later_wait(const char *path, const char *target)
{
	pthread_mutex_lock(&later_lock);
	while (writer_of(path, target))
		pthread_cond_wait(&later_cond, &later_lock);
	pthread_mutex_unlock(&later_lock);
}

unsigned mig_later_drain(unsigned ms)
{
	struct timespec until;
	unsigned n = 0;
	clock_gettime(CLOCK_REALTIME, &until); /* (the condition's clock) */
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&later_lock);
	while (writers && pthread_cond_timedwait(&later_cond, &later_lock, &until) == 0)
		;
	for (struct later *l = writers; l; l = l->next)
		n++;
	pthread_mutex_unlock(&later_lock);
	return n;
}
