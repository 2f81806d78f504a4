/* client-rounds.c: vdisk-client's "rounds" mode, the client of
 * handover-bench's vdisk part (tests/bench/handover-bench.sh):
 *   vdisk-client [--endpoint EP] rounds STOPFILE K DISK...
 * opens each DISK read-write on one channel and, until STOPFILE exists,
 * writes 4 KiB to one disk after the other and reads it back, checking
 * it ($VDISK_ROUNDS_STRIDE bytes further on the same disk each time, 4 KiB
 * by default, from $VDISK_ROUNDS_FROM, 0 by default: a stride of a block
 * or more allocates blocks as it goes). Each round that takes over 1 ms
 * is logged to $PINGS_LOG as
 * "START_US LENGTH_US" (CLOCK_MONOTONIC), so the bench can find the round
 * across a provider's handover. Prints "started", then "calls N failed N
 * longest_us N topK_median_us N" like scm-test-client pings. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "scm/vdisk-client.h"

#define DISKS_MAX 16

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int client_rounds(scm_channel *ch, const char *stop, size_t k, char **disks, size_t n, scm_error **ret_err)
{
	uint64_t h[DISKS_MAX], bsz = 0, vsize[DISKS_MAX], sec;
	uint8_t *buf = NULL;
	bool ro;
	int r;
	if (n == 0 || n > DISKS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int fd;
		if ((r = scm_vdisk_open(ch, disks[i], false, false, &h[i], &fd, &bsz, &vsize[i], &sec, &ro, ret_err)))
			return r;
		if (!buf && (buf = mmap(NULL, bsz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) == MAP_FAILED)
			return -errno;
		close(fd);
	}
	const char *sv = getenv("VDISK_ROUNDS_STRIDE"), *fv = getenv("VDISK_ROUNDS_FROM");
	uint64_t stride = sv ? strtoull(sv, NULL, 0) : 4096, from = fv ? strtoull(fv, NULL, 0) : 0;
	if (stride == 0 || stride % 4096 || from % 4096)
		return scm_fail(ret_err, -EINVAL, "$VDISK_ROUNDS_STRIDE and $VDISK_ROUNDS_FROM: multiples of 4096 "
				"(a stride not 0)");
	const char *logp = getenv("PINGS_LOG");
	FILE *log = logp ? fopen(logp, "we") : NULL;
	size_t cap = 1 << 20, nr = 0;
	uint32_t *rounds = calloc(cap, sizeof *rounds);
	unsigned long calls = 0, failed = 0;
	uint64_t longest = 0;
	printf("started\n");
	fflush(stdout);
	for (uint64_t i = 0;; i++) {
		if ((i & 15) == 0 && access(stop, F_OK) == 0)
			break;
		size_t d = i % n;
		uint64_t off = (from + i / n * stride) % vsize[d] / 4096 * 4096, t0 = mono_us();
		memset(buf, (int)(i & 0xff), 4096);
		r = scm_vdisk_write(ch, h[d], off, 4096, 0, ret_err);
		if (r == 0) {
			memset(buf, 0, 4096);
			r = scm_vdisk_read(ch, h[d], off, 4096, 0, ret_err);
		}
		if (r == 0 && (buf[0] != (uint8_t)i || buf[4095] != (uint8_t)i))
			r = scm_fail(ret_err, -EIO, "disk %zu at %llu reads otherwise than written", d,
				     (unsigned long long)off);
		uint64_t dt = mono_us() - t0;
		calls += 2;
		if (r) {
			failed++;
			break;
		}
		longest = dt > longest ? dt : longest;
		if (log && dt > 1000)
			fprintf(log, "%llu %llu\n", (unsigned long long)t0, (unsigned long long)dt);
		if (rounds && nr < cap)
			rounds[nr++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
	}
	if (log)
		fclose(log);
	uint32_t top = 0;
	if (rounds && k && nr >= k) {
		qsort(rounds, nr, sizeof *rounds, cmp_u32);
		top = rounds[nr - k + k / 2]; /* the median of the k longest */
	}
	free(rounds);
	printf("calls %lu failed %lu longest_us %llu top%zu_median_us %u\n", calls, failed, (unsigned long long)longest,
	       k, top);
	fflush(stdout);
	return r;
}
