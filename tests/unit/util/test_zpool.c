/* Unit tests of the adaptive compressor (util/zpool.h): the level
 * controller on fixed queue sequences (deterministic: a burst drops the
 * level at once, quiet raises it a level a job), and the pool end to end:
 * every job comes back, decompresses to its input, and the levels the
 * pool used fall under a burst and rise again once it is idle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "zpool.h"

static void test_controller(void **state)
{
	struct zlevel z;
	zlevel_init(&z, -1, 9);
	/* idle: the strongest level */
	for (int i = 0; i < 5; i++)
		assert_int_equal(zlevel_next(&z, 0), 9);
	/* a burst: 64 waiting per thread; down at once, to the floor soon */
	int l1 = zlevel_next(&z, 64);
	assert_true(l1 < 9);
	int l = l1;
	for (int i = 0; i < 6; i++) {
		int n = zlevel_next(&z, 64);
		assert_true(n <= l);
		l = n;
	}
	assert_int_equal(l, -1);
	/* the burst drains: back up, one level per job, skipping 0 */
	int prev = l, steps = 0;
	while (l < 9 && steps < 40) {
		l = zlevel_next(&z, 0);
		assert_true(l != 0);
		assert_true(l - prev <= (prev == -1 ? 2 : 1));
		prev = l;
		steps++;
	}
	assert_int_equal(l, 9);
	assert_true(steps >= 9); /* never a jump */
	/* a single quiet job in a burst does not buy a strong level */
	zlevel_init(&z, 1, 19);
	for (int i = 0; i < 8; i++)
		zlevel_next(&z, 32);
	int low = z.level;
	assert_true(zlevel_next(&z, 0) <= low + 1);
	/* fixed: min == max */
	zlevel_init(&z, 3, 3);
	assert_int_equal(zlevel_next(&z, 100), 3);
	assert_int_equal(zlevel_next(&z, 0), 3);
}

struct result {
	pthread_mutex_t lock;
	int done, bad, levels[64];
	size_t n_levels;
};

struct probe {
	struct result *res;
	unsigned char *copy;
	size_t len;
};

static void on_done(void *ud, int r, const void *out, size_t out_len, size_t in_len, int level)
{
	struct probe *p = ud;
	void *back = NULL;
	size_t back_len = 0;
	bool ok = r == 0 && in_len == p->len && zpool_decompress(out, out_len, 1 << 24, &back, &back_len) == 0 &&
		  back_len == p->len && memcmp(back, p->copy, p->len) == 0;
	free(back);
	pthread_mutex_lock(&p->res->lock);
	p->res->done++;
	p->res->bad += !ok;
	if (p->res->n_levels < 64)
		p->res->levels[p->res->n_levels++] = level;
	pthread_mutex_unlock(&p->res->lock);
	free(p->copy);
	free(p);
}

struct pending {
	unsigned char *buf;
	struct probe *p;
};

static struct pending make(struct result *res, unsigned seed, size_t len)
{
	unsigned char *buf = malloc(len);
	for (size_t i = 0; i < len; i++) /* text-like: compressible, not trivial */
		buf[i] = (unsigned char)("scm container log line "[(i * 7 + seed) % 23] ^ ((i / 4096) & 1));
	struct probe *p = malloc(sizeof(*p));
	*p = (struct probe){ res, malloc(len), len };
	memcpy(p->copy, buf, len);
	return (struct pending){ buf, p };
}

static void submit(struct zpool *zp, struct pending j)
{
	assert_int_equal(zpool_submit(zp, j.buf, j.p->len, on_done, j.p), 0);
}

static void test_pool(void **state)
{
	struct zpool *zp = NULL;
	struct result res = { .lock = PTHREAD_MUTEX_INITIALIZER };
	assert_int_equal(zpool_new(1, -1, 9, &zp), 0);
	/* a burst of 40 jobs: the one thread sees a long queue */
	struct pending burst[40];
	for (unsigned i = 0; i < 40; i++)
		burst[i] = make(&res, i, 256 << 10);
	for (unsigned i = 0; i < 40; i++)
		submit(zp, burst[i]);
	zpool_drain(zp);
	assert_int_equal(res.done, 40);
	assert_int_equal(res.bad, 0);
	int first = res.levels[0], lowest = 99;
	for (size_t i = 0; i < res.n_levels; i++)
		lowest = res.levels[i] < lowest ? res.levels[i] : lowest;
	assert_true(lowest < 9); /* the burst made it faster */
	(void)first;
	/* idle: one job at a time, each after the last is done: it climbs */
	res.n_levels = 0;
	for (unsigned i = 0; i < 20; i++) {
		submit(zp, make(&res, 100 + i, 64 << 10));
		zpool_drain(zp);
	}
	assert_int_equal(res.levels[res.n_levels - 1], 9);
	assert_true(res.levels[res.n_levels - 1] > lowest);
	struct zpool_stats st;
	zpool_get_stats(zp, &st);
	assert_int_equal(st.jobs, 60);
	assert_int_equal(st.failed, 0);
	assert_true(st.bytes_out < st.bytes_in);
	assert_true(st.queued_max >= 30);
	uint64_t sum = 0;
	for (int i = 0; i < 23; i++)
		sum += st.by_level[i];
	assert_int_equal(sum, 60);
	zpool_free(zp);
}

static void test_bad(void **state)
{
	struct zpool *zp = NULL;
	assert_int_equal(zpool_new(0, 1, 3, &zp), -EINVAL);
	assert_int_equal(zpool_new(9, 1, 3, &zp), -EINVAL);
	assert_int_equal(zpool_new(1, 5, 3, &zp), -EINVAL);
	assert_int_equal(zpool_new(1, 0, 3, &zp), -EINVAL);
	assert_int_equal(zpool_new(1, 1, 20, &zp), -EINVAL);
	void *out;
	size_t n;
	assert_int_equal(zpool_decompress("garbage!", 8, 100, &out, &n), -EBADMSG);
	/* a frame that says it is bigger than allowed is refused before any
	 * allocation of that size */
	char big[64];
	size_t in = 1 << 20, cap = ZSTD_compressBound(in);
	void *src = calloc(1, in), *dst = malloc(cap);
	size_t fl = ZSTD_compress(dst, cap, src, in, 1);
	assert_false(ZSTD_isError(fl));
	assert_int_equal(zpool_decompress(dst, fl, 4096, &out, &n), -EFBIG);
	memcpy(big, dst, sizeof(big) < fl ? sizeof(big) : fl);
	assert_int_not_equal(zpool_decompress(big, fl < 16 ? fl : 16, 1 << 21, &out, &n), 0);
	free(src);
	free(dst);
	zpool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_controller),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
