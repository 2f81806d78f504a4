/* provider-migflush.c: a live migration's early flushes of the
 * destination (provider-migrate.h), while the copy goes on.
 *
 * The copy writes dest with O_DIRECT, but that only puts the bytes in the
 * device's volatile cache (on a virtual disk, the host's page cache): the
 * flush before the switch-over (an fdatasync, so a FLUSH to the device)
 * then waited for everything the copy wrote, 0.8-1.0 s for 1.2 GiB here,
 * as long as `qemu-img convert -t writeback` spends closing its copy. So
 * a thread of the job's own fdatasyncs dest's file every MIG_EARLY_FLUSH
 * bytes copied, beside the copy (which it does not hold: the kernel's
 * fdatasync needs no lock of ours, and the engine's own flush of the block
 * table waits for the switch-over's flush as before): the device writes
 * back while the copy reads, and the last flush has only the last stretch
 * left. In mirror mode the source's file is fdatasynced too (clients'
 * writes to it since they last flushed, and whatever the kernel had not
 * written back yet): the last step's close of it flushes it before the
 * record says what it holds, and then finds little left. These are
 * flushes the job does anyway, earlier; none is a promise to anyone.
 *
 * Each goes through an open file of its own (the file opened again
 * through /proc/self/fd), never the engine's descriptor or a duplicate
 * of it: the kernel reports a writeback error once to each open file
 * (errseq), so an error an early flush met on the engine's open file
 * would not show again in the engine's own flush, and dest would be
 * taken for durable. On an open file of its own the error is this
 * flush's and the engine's flush still sees it. (It also holds none of
 * the engine's OFD locks.) */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include "provider-migrate.h"

static void *flusher(void *arg)
{
	struct mig_flusher *fl = arg;
	struct sched_param sp = { 0 };
	(void)pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	mig_thread_begin("vdisk-migflush");
	pthread_mutex_lock(&fl->lock);
	for (;;) {
		while (!fl->want && !fl->stop)
			pthread_cond_wait(&fl->cond, &fl->lock);
		if (fl->stop)
			break;
		fl->want = false;
		fl->busy = true;
		pthread_mutex_unlock(&fl->lock);
		uint64_t t0 = mono_ns();
		for (int i = 0; i < 2; i++)
			if (fl->fd[i] >= 0)
				(void)fdatasync(fl->fd[i]); /* an error shows again in the job's own flush */
		pthread_mutex_lock(&fl->lock);
		fl->busy = false;
		fl->ns += mono_ns() - t0;
		fl->n++;
		pthread_cond_broadcast(&fl->cond);
	}
	pthread_mutex_unlock(&fl->lock);
	return NULL;
}

/* fd's file opened again, read-only: an open file of its own. */
static int reopen(int fd)
{
	char p[64];
	if (fd < 0)
		return -1;
	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	return open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

int mig_fdatasync_beside(int fd)
{
	int own = reopen(fd), r = 0;
	if (own < 0)
		return 0; /* (only an early flush: the engine's own comes anyway) */
	if (fdatasync(own) < 0)
		r = -errno;
	close(own);
	return r;
}

void mig_flush_setup(struct mig_flusher *fl)
{
	pthread_mutex_init(&fl->lock, NULL);
	pthread_cond_init(&fl->cond, NULL);
	fl->fd[0] = fl->fd[1] = -1;
}

/* Under lock. */
static void start(struct mig_flusher *fl, int dest_fd, int src_fd)
{
	if (fl->started || fl->stop)
		return;
	/* open files of its own (above), closed when it stops, which the
	 * job does before it closes either file */
	fl->fd[0] = reopen(dest_fd);
	fl->fd[1] = reopen(src_fd);
	fl->started = pthread_create(&fl->thread, NULL, flusher, fl) == 0;
}

void mig_flush_start(struct mig_flusher *fl, int dest_fd, int src_fd)
{
	pthread_mutex_lock(&fl->lock);
	start(fl, dest_fd, src_fd);
	pthread_mutex_unlock(&fl->lock);
}

void mig_flush_kick(struct mig_flusher *fl, int dest_fd, int src_fd)
{
	pthread_mutex_lock(&fl->lock);
	start(fl, dest_fd, src_fd);
	if (fl->started && !fl->busy) /* (one running: the next mark asks again) */
		fl->want = true;
	pthread_cond_broadcast(&fl->cond);
	pthread_mutex_unlock(&fl->lock);
}

void mig_flush_stop(struct mig_flusher *fl)
{
	pthread_mutex_lock(&fl->lock);
	fl->stop = true;
	pthread_cond_broadcast(&fl->cond);
	pthread_mutex_unlock(&fl->lock);
	if (fl->started)
		pthread_join(fl->thread, NULL);
	fl->started = false;
	for (int i = 0; i < 2; i++)
		if (fl->fd[i] >= 0) {
			close(fl->fd[i]);
			fl->fd[i] = -1;
		}
}

void mig_flush_free(struct mig_flusher *fl)
{
	mig_flush_stop(fl);
	pthread_mutex_destroy(&fl->lock);
	pthread_cond_destroy(&fl->cond);
}
