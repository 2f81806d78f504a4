/* zpool-bench: the adaptive compressor (util/zpool.h) against fixed zstd
 * levels 1, 3 and 9 on the same data and the same producer, one thread as
 * scmd's helper runs it. Two kinds of data (container log lines, and a
 * desktop framebuffer's pages: flat areas, gradients, text-like detail)
 * and two producers: steady (a job every period, the period set so that
 * level 3 is busy 70% of the time) and bursty (64 jobs at once, the same
 * average rate). Per configuration: input throughput over the whole run
 * (MB/s, including the wait for the queue to drain), ratio, the delay
 * from submit to done (p50, p99) and how often the producer found the
 * queue full. The adaptive pool should keep the delay of level 1 under
 * bursts and get closer to level 9's ratio when there is time. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zpool.h"

#define JOB (1u << 20)
#define JOBS 192

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void gen_log(unsigned char *b, size_t n)
{
	static const char *const what[] = { "GET /api/v1/items", "POST /login", "worker ready",
					    "cache miss for key", "retrying connection to db",
					    "request done in" };
	size_t o = 0;
	while (o < n) {
		char line[160];
		int l = snprintf(line, sizeof(line), "2026-12-06T07:%02u:%02u.%06u [%s] pid=%u %s %llu\n",
				 (unsigned)(next() % 60), (unsigned)(next() % 60), (unsigned)(next() % 1000000),
				 next() % 10 ? "info" : "warn", 1000 + (unsigned)(next() % 50), what[next() % 6],
				 (unsigned long long)(next() % 100000));
		for (int i = 0; i < l && o < n; i++)
			b[o++] = (unsigned char)line[i];
	}
}

static void gen_pixels(unsigned char *b, size_t n)
{
	/* 1280-pixel rows of BGRA: a flat desktop, a gradient title bar,
	 * and windows of text (dark glyph-like runs on white) */
	for (size_t i = 0; i + 4 <= n; i += 4) {
		size_t px = i / 4, x = px % 1280, y = px / 1280 % 720;
		unsigned char v;
		if (y % 240 < 24)
			v = (unsigned char)(40 + x / 8);
		else if (x % 640 < 400 && (y % 16) < 12)
			v = (next() % 7 == 0) ? 20 : 250;
		else
			v = 60;
		b[i] = v, b[i + 1] = v, b[i + 2] = (unsigned char)(v / 2 + 40), b[i + 3] = 255;
	}
}

struct run {
	pthread_mutex_t lock;
	double t_submit[JOBS], delay[JOBS];
	unsigned done;
	uint64_t in, out;
};

struct tag {
	struct run *r;
	unsigned i;
};

static void on_done(void *ud, int rc, const void *out, size_t out_len, size_t in_len, int level)
{
	struct tag *t = ud;
	pthread_mutex_lock(&t->r->lock);
	t->r->delay[t->i] = now() - t->r->t_submit[t->i];
	t->r->done++;
	t->r->in += in_len;
	t->r->out += rc ? in_len : out_len;
	pthread_mutex_unlock(&t->r->lock);
	free(t);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* period: seconds between jobs (steady) or between bursts of burst jobs */
static void run_one(const char *label, const unsigned char *data, int lo, int hi, double period, unsigned burst)
{
	struct zpool *zp;
	if (zpool_new(1, lo, hi, &zp) < 0) {
		printf("%s: could not start the pool\n", label);
		return;
	}
	struct run r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	unsigned full = 0;
	double t0 = now(), due = t0;
	for (unsigned i = 0; i < JOBS; i++) {
		if (i % burst == 0) {
			while (now() < due)
				usleep(200);
			due += period;
		}
		void *buf = malloc(JOB);
		memcpy(buf, data + (size_t)(i % 8) * JOB, JOB);
		struct tag *t = malloc(sizeof(*t));
		*t = (struct tag){ &r, i };
		r.t_submit[i] = now();
		while (zpool_submit(zp, buf, JOB, on_done, t) == -EAGAIN) {
			full++;
			usleep(500);
		}
	}
	zpool_drain(zp);
	double wall = now() - t0;
	struct zpool_stats st;
	zpool_get_stats(zp, &st);
	zpool_free(zp);
	qsort(r.delay, JOBS, sizeof(double), cmp);
	char levels[23 * 16] = "";
	size_t o = 0;
	for (int l = ZPOOL_LEVEL_MIN; l <= ZPOOL_LEVEL_MAX; l++)
		if (st.by_level[l - ZPOOL_LEVEL_MIN]) {
			char one[16];
			snprintf(one, sizeof(one), " %d:%u", l, (unsigned)(st.by_level[l - ZPOOL_LEVEL_MIN] % 100000));
			memcpy(levels + o, one, strlen(one) + 1);
			o += strlen(one);
		}
	printf("%-34s %7.1f MB/s  ratio %6.2f  delay p50 %7.1f ms p99 %7.1f ms  queue max %3u  full %u  levels%s\n",
	       label, (double)r.in / wall / 1e6, (double)r.in / (double)r.out, r.delay[JOBS / 2] * 1e3,
	       r.delay[JOBS * 99 / 100] * 1e3, st.queued_max, full, levels);
}

/* seconds per job at a fixed level, one thread, idle */
static double cost(const unsigned char *data, int level)
{
	struct zpool *zp;
	struct run r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	zpool_new(1, level, level, &zp);
	double t0 = now();
	for (unsigned i = 0; i < 16; i++) {
		void *buf = malloc(JOB);
		memcpy(buf, data + (size_t)(i % 8) * JOB, JOB);
		struct tag *t = malloc(sizeof(*t));
		*t = (struct tag){ &r, i };
		r.t_submit[i] = now();
		zpool_submit(zp, buf, JOB, on_done, t);
	}
	zpool_drain(zp);
	double c = (now() - t0) / 16;
	zpool_free(zp);
	return c;
}

int main(void)
{
	unsigned char *log = malloc(8 * JOB), *pix = malloc(8 * JOB);
	gen_log(log, 8 * JOB);
	gen_pixels(pix, 8 * JOB);
	struct {
		const char *name;
		const unsigned char *data;
	} kinds[] = { { "log text", log }, { "framebuffer pages", pix } };
	for (size_t k = 0; k < 2; k++) {
		double c3 = cost(kinds[k].data, 3);
		/* level 3 busy 70% of the time, on average, in both shapes */
		double period = c3 / 0.7;
		printf("zpool %s: 1 MiB jobs, level 3 costs %.2f ms a job; producer every %.2f ms on average\n",
		       kinds[k].name, c3 * 1e3, period * 1e3);
		static const struct {
			const char *name;
			int lo, hi;
		} cfg[] = { { "adaptive -1..9", -1, 9 }, { "fixed 1", 1, 1 }, { "fixed 3", 3, 3 }, { "fixed 9", 9, 9 } };
		for (int shape = 0; shape < 2; shape++)
			for (size_t i = 0; i < 4; i++) {
				char label[96];
				snprintf(label, sizeof(label), "zpool %s, %s: %s", kinds[k].name,
					 shape ? "bursty" : "steady", cfg[i].name);
				run_one(label, kinds[k].data, cfg[i].lo, cfg[i].hi, shape ? period * 64 : period,
					shape ? 64 : 1);
			}
	}
	free(log);
	free(pix);
	return 0;
}
