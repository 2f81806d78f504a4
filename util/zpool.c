/* zpool.c: the adaptive compressor (zpool.h). One mutex and condition
 * guard a FIFO of jobs; each thread keeps its own zstd context and its own
 * level controller, and asks the controller when it takes a job, with the
 * queue length it sees then (per thread). */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "zpool.h"

#define ZPOOL_QUEUE_MAX 256

void zlevel_init(struct zlevel *z, int min_level, int max_level)
{
	*z = (struct zlevel){ .min_level = min_level, .max_level = max_level, .level = max_level, .avg = 0 };
}

int zlevel_next(struct zlevel *z, double queued)
{
	if (queued < 0)
		queued = 0;
	z->avg = (z->avg + queued) / 2;
	/* two levels per doubling of the backlog: 1 waiting costs 2 levels,
	 * 3 cost 4, 15 cost 8 */
	int target = z->max_level - (int)lround(2 * log2(1 + z->avg));
	if (target < z->min_level)
		target = z->min_level;
	if (target < z->level)
		z->level = target;
	else if (target > z->level)
		z->level++;
	/* zstd has no level 0 (it means "the default"): skip it */
	if (z->level == 0)
		z->level = target > 0 ? 1 : -1;
	return z->level;
}

struct job {
	struct job *next;
	void *data;
	size_t len;
	zpool_done_fn done;
	void *ud;
};

struct zpool {
	pthread_mutex_t lock;
	pthread_cond_t more, idle;
	struct job *head, **tail;
	unsigned queued, busy, threads;
	bool stop;
	int min_level, max_level;
	struct zpool_stats st;
	pthread_t tid[8];
};

static void *worker(void *arg)
{
	struct zpool *p = arg;
	struct zlevel ctl;
	zlevel_init(&ctl, p->min_level, p->max_level);
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->more, &p->lock);
		if (!p->head)
			break;
		struct job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = &p->head;
		p->queued--;
		p->busy++;
		int level = zlevel_next(&ctl, (double)p->queued / p->threads);
		pthread_mutex_unlock(&p->lock);

		size_t cap = ZSTD_compressBound(j->len);
		void *out = cctx ? malloc(cap) : NULL;
		size_t n = out ? ZSTD_compressCCtx(cctx, out, cap, j->data, j->len, level) : 0;
		int r = !out ? -ENOMEM : ZSTD_isError(n) ? -EIO : 0;
		free(j->data);
		j->done(j->ud, r, out, r ? 0 : n, j->len, level);
		free(out);

		pthread_mutex_lock(&p->lock);
		p->busy--;
		if (r) {
			p->st.failed++;
		} else {
			p->st.jobs++;
			p->st.bytes_in += j->len;
			p->st.bytes_out += n;
			p->st.by_level[level - ZPOOL_LEVEL_MIN]++;
		}
		free(j);
		if (!p->head && !p->busy)
			pthread_cond_broadcast(&p->idle);
	}
	pthread_mutex_unlock(&p->lock);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

int zpool_new(unsigned threads, int min_level, int max_level, struct zpool **ret)
{
	if (threads < 1 || threads > 8 || min_level > max_level || min_level < ZPOOL_LEVEL_MIN ||
	    max_level > ZPOOL_LEVEL_MAX || min_level == 0 || max_level == 0)
		return -EINVAL;
	struct zpool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->more, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->tail = &p->head;
	p->min_level = min_level;
	p->max_level = max_level;
	for (unsigned i = 0; i < threads; i++) {
		int r = pthread_create(&p->tid[i], NULL, worker, p);
		if (r) {
			zpool_free(p);
			return -r;
		}
		p->threads++;
	}
	*ret = p;
	return 0;
}

int zpool_submit(struct zpool *p, void *data, size_t len, zpool_done_fn done, void *ud)
{
	struct job *j = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct job){ NULL, data, len, done, ud };
	pthread_mutex_lock(&p->lock);
	if (p->queued >= ZPOOL_QUEUE_MAX || p->stop) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return -EAGAIN;
	}
	*p->tail = j;
	p->tail = &j->next;
	p->queued++;
	if (p->queued > p->st.queued_max)
		p->st.queued_max = p->queued;
	pthread_cond_signal(&p->more);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void zpool_get_stats(struct zpool *p, struct zpool_stats *ret)
{
	pthread_mutex_lock(&p->lock);
	*ret = p->st;
	ret->queued = p->queued;
	pthread_mutex_unlock(&p->lock);
}

void zpool_drain(struct zpool *p)
{
	pthread_mutex_lock(&p->lock);
	while (p->head || p->busy)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

void zpool_free(struct zpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true; /* the queue is still done: stop only ends idle waits */
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->threads; i++)
		pthread_join(p->tid[i], NULL);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->more);
	pthread_cond_destroy(&p->idle);
	free(p);
}

int zpool_decompress(const void *in, size_t in_len, size_t max, void **ret, size_t *ret_len)
{
	unsigned long long size = ZSTD_getFrameContentSize(in, in_len);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
		return -EBADMSG;
	if (size > max)
		return -EFBIG;
	void *out = malloc(size ? size : 1);
	if (!out)
		return -ENOMEM;
	size_t n = ZSTD_decompress(out, size, in, in_len);
	if (ZSTD_isError(n) || n != size) {
		free(out);
		return -EBADMSG;
	}
	*ret = out;
	*ret_len = n;
	return 0;
}
