/* zpool.h: compression that never becomes the bottleneck. A small pool
 * of threads compresses jobs (a buffer in, a zstd frame out); each thread
 * picks its level from the queue waiting for it when it takes a job: a
 * long queue gets a fast level, a short one a strong level, so a burst
 * drains quickly and idle time buys ratio. Used for rotated container
 * logs (scmd) and state handed over on restart. Not part of libscm
 * (it links libzstd and pthreads); internal, like scmutil.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* ---- the level controller: pure and deterministic ------------------------
 * queued is the number of jobs waiting per thread when one is taken. Its
 * moving average (half old, half new) sets a target: max_level with no
 * backlog, two levels lower for each doubling of it, never below
 * min_level. Down is immediate (a burst must drain), up is one level per
 * job (a single quiet moment in a burst does not buy an expensive level). */
struct zlevel {
	int min_level, max_level, level;
	double avg;
};
void zlevel_init(struct zlevel *z, int min_level, int max_level);
int zlevel_next(struct zlevel *z, double queued);

/* ---- the pool -------------------------------------------------------------
 * done runs on a pool thread once the job is compressed (r 0) or failed
 * (r negative errno); out is the zstd frame (content size in its header),
 * freed after done returns. done may do blocking I/O: it is on a worker. */
typedef void (*zpool_done_fn)(void *ud, int r, const void *out, size_t out_len, size_t in_len, int level);

struct zpool;
struct zpool_stats {
	uint64_t jobs, bytes_in, bytes_out, failed;
	uint64_t by_level[23]; /* jobs per level, index level + 3 (levels -3..19) */
	unsigned queued, queued_max;
};
#define ZPOOL_LEVEL_MIN (-3)
#define ZPOOL_LEVEL_MAX 19

/* threads 1-8; min_level <= max_level within ZPOOL_LEVEL_MIN..MAX; a pool
 * with min_level == max_level is a fixed-level one (the bench compares). */
int zpool_new(unsigned threads, int min_level, int max_level, struct zpool **ret);
/* Queues a job; data is the pool's from here on (freed after done). At
 * most max_queued jobs wait (-EAGAIN beyond: the caller keeps its data
 * uncompressed). Never blocks. */
int zpool_submit(struct zpool *p, void *data, size_t len, zpool_done_fn done, void *ud);
void zpool_get_stats(struct zpool *p, struct zpool_stats *ret);
/* Waits until every queued job is done. */
void zpool_drain(struct zpool *p);
/* Drains, stops the threads, frees. NULL is fine. */
void zpool_free(struct zpool *p);

/* Decompresses one frame whose header carries its content size (at most
 * max bytes): 0 and a malloc'd buffer, or a negative errno. */
int zpool_decompress(const void *in, size_t in_len, size_t max, void **ret, size_t *ret_len);

#pragma GCC visibility pop
