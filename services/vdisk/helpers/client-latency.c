/* client-latency.c: vdisk-client flush-latency, what one client of the
 * vdisk service sees while another flushes a large dirty disk.
 *
 * Client A (a child process, its own channel) opens DISK_A read-write,
 * writes MIB MiB through its buffer (dirty page cache, nothing on disk
 * yet), says so on a pipe and flushes. Client B (this process) has DISK_B
 * open read-only and, from A's word on, reads 4 KiB again and again until A
 * reports its flush done, timing every read. Prints
 *   flush_ms=<A's flush> reads=<B's reads during it> b_max_ms=<slowest> b_p50_ms=<median>
 *   b_max_started_ms=<when the slowest read started, after A's word>
 * A provider that serves disks on one thread makes B's read that arrives
 * during the flush wait for all of it: b_max_ms close to flush_ms. */
#include <errno.h>
#include <json-c/json.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "scm/vdisk-client.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int open_disk(const char *ep, const char *disk, bool ro, scm_channel **ret_ch, uint64_t *ret_h,
		     uint8_t **ret_buf, uint64_t *ret_bsz, uint64_t *ret_vsize)
{
	scm_error *e = NULL;
	int bfd, r;
	uint64_t sec;
	bool got_ro;
	r = ep ? scm_connect_at(ep, "vdisk", ret_ch, &e) : scm_connect("vdisk", ret_ch, &e);
	if (!r)
		r = scm_vdisk_open(*ret_ch, disk, ro, false, ret_h, &bfd, ret_bsz, ret_vsize, &sec, &got_ro, &e);
	if (r) {
		fprintf(stderr, "vdisk-client: %s: ", disk);
		scm_error_print(e, stderr);
		scm_error_free(e);
		return -1;
	}
	*ret_buf = mmap(NULL, *ret_bsz, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
	close(bfd);
	return *ret_buf == MAP_FAILED ? -1 : 0;
}

/* Client A: write, tell, flush, tell how long the flush took. */
static int flusher(const char *ep, const char *disk, uint64_t mib, int tell)
{
	scm_channel *ch;
	scm_error *e = NULL;
	uint64_t h, bsz, vsize;
	uint8_t *buf;
	if (open_disk(ep, disk, false, &ch, &h, &buf, &bsz, &vsize) < 0)
		return 1;
	for (uint64_t i = 0; i < bsz; i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 13);
	for (uint64_t off = 0; off < mib << 20 && off < vsize; off += bsz)
		if (scm_vdisk_write(ch, h, off, bsz, 0, &e))
			goto fail;
	if (write(tell, "F", 1) != 1)
		return 1;
	double t0 = now_ms();
	if (scm_vdisk_flush(ch, h, &e))
		goto fail;
	if (dprintf(tell, "%.3f\n", now_ms() - t0) < 0)
		return 1;
	scm_vdisk_close(ch, h, NULL);
	scm_channel_free(ch);
	return 0;
fail:
	fprintf(stderr, "vdisk-client: A: ");
	scm_error_print(e, stderr);
	scm_error_free(e);
	return 1;
}

static void ignore_reply(scm_channel *ch, scm_message *reply, const scm_error *err, void *userdata)
{
}

/* write-flush-exit: writes mib MiB, sends a flush and a read without
 * waiting for them and exits: the provider has the calls deferred, on
 * its workers, when the channel ends. */
int client_write_flush_exit(const char *ep, const char *disk, uint64_t mib)
{
	scm_channel *ch;
	scm_error *e = NULL;
	uint64_t h, bsz, vsize;
	uint8_t *buf;
	if (open_disk(ep, disk, false, &ch, &h, &buf, &bsz, &vsize) < 0)
		return 1;
	memset(buf, 0xa5, bsz);
	for (uint64_t off = 0; off < mib << 20 && off < vsize; off += bsz)
		if (scm_vdisk_write(ch, h, off, bsz, 0, &e))
			goto fail;
	json_object *a = json_object_new_object();
	json_object_object_add(a, "handle", json_object_new_uint64(h));
	if (scm_call_async(ch, SCM_VDISK_FLUSH, a, NULL, 0, NULL, 0, ignore_reply, NULL, &e))
		goto fail;
	json_object_object_add(a, "offset", json_object_new_uint64(0));
	json_object_object_add(a, "length", json_object_new_uint64(bsz));
	json_object_object_add(a, "buffer_offset", json_object_new_uint64(0));
	if (scm_call_async(ch, SCM_VDISK_READ, a, NULL, 0, NULL, 0, ignore_reply, NULL, &e))
		goto fail;
	json_object_put(a);
	printf("sent\n");
	fflush(stdout);
	_exit(0); /* no close: the channel ends with the calls in progress */
fail:
	fprintf(stderr, "vdisk-client: ");
	scm_error_print(e, stderr);
	scm_error_free(e);
	return 1;
}

int client_flush_latency(const char *ep, const char *disk_a, const char *disk_b, uint64_t mib)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return 1;
	scm_channel *ch;
	scm_error *e = NULL;
	uint64_t h, bsz, vsize;
	uint8_t *buf;
	pid_t pid = -1;
	if (open_disk(ep, disk_b, true, &ch, &h, &buf, &bsz, &vsize) < 0)
		return 1;
	if (scm_vdisk_read(ch, h, 0, 4096, 0, &e)) /* warm: B's disk is open and hot */
		goto fail;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(p[0]);
		_exit(flusher(ep, disk_a, mib, p[1]));
	}
	close(p[1]);
	char c;
	if (read(p[0], &c, 1) != 1) {
		fprintf(stderr, "vdisk-client: client A failed before its flush\n");
		waitpid(pid, NULL, 0);
		return 1;
	}
	static double lat[1 << 20];
	size_t n = 0;
	uint64_t rng = 88172645463325252ull, span = vsize < (64u << 20) ? vsize : 64u << 20;
	char done[64] = "";
	double tf = now_ms(), worst = 0, worst_at = 0;
	for (;;) {
		struct pollfd pfd = { p[0], POLLIN, 0 };
		if (poll(&pfd, 1, 0) > 0) {
			ssize_t k = read(p[0], done, sizeof done - 1);
			done[k > 0 ? k : 0] = 0;
			break;
		}
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		double t0 = now_ms();
		if (scm_vdisk_read(ch, h, rng % (span / 4096) * 4096, 4096, 0, &e))
			goto fail;
		double l = now_ms() - t0;
		if (l > worst)
			worst = l, worst_at = t0 - tf;
		if (n < sizeof lat / sizeof lat[0])
			lat[n++] = l;
	}
	int st;
	waitpid(pid, &st, 0);
	if (!done[0] || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "vdisk-client: client A failed during its flush\n");
		return 1;
	}
	if (!n) {
		fprintf(stderr, "vdisk-client: B made no read during A's flush\n");
		return 1;
	}
	qsort(lat, n, sizeof lat[0], cmp_double);
	printf("flush_ms=%.1f reads=%zu b_max_ms=%.3f b_p50_ms=%.3f b_max_started_ms=%.1f\n", atof(done), n,
	       lat[n - 1], lat[n / 2], worst_at);
	scm_vdisk_close(ch, h, NULL);
	scm_channel_free(ch);
	return 0;
fail:
	fprintf(stderr, "vdisk-client: B: ");
	scm_error_print(e, stderr);
	scm_error_free(e);
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return 1;
}

/* randwrite DISK LOG STOPFILE [SPAN]: what a client doing 4 KiB random
 * writes at queue depth 1 sees (the migration bench's load): writes of
 * 4 KiB at random 4 KiB-aligned offsets below SPAN bytes (default: the
 * whole disk), one at a time, no flush, each timed, until STOPFILE exists. LOG gets one line per write,
 *   <CLOCK_REALTIME when it started, ms> <latency, us>
 * so that the bench can pick the writes made while a job ran. */
int client_randwrite(const char *ep, const char *disk, const char *log, const char *stop, uint64_t span)
{
	scm_channel *ch;
	scm_error *e = NULL;
	uint64_t h, bsz, vsize, rng = 0x2545f4914f6cdd1dull ^ (uint64_t)getpid();
	uint8_t *buf;
	FILE *f = fopen(log, "we");
	if (!f) {
		fprintf(stderr, "vdisk-client: %s: %s\n", log, strerror(errno));
		return 1;
	}
	if (open_disk(ep, disk, false, &ch, &h, &buf, &bsz, &vsize) < 0)
		return 1;
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	if (!span || span > vsize)
		span = vsize;
	if (span < 4096) {
		fprintf(stderr, "vdisk-client: randwrite: a span of at least 4096 bytes\n");
		return 1;
	}
	for (unsigned i = 0; i < 4096; i++)
		buf[i] = (uint8_t)(i * 131u + 7u);
	for (unsigned long n = 0; (n & 63) || access(stop, F_OK) != 0; n++) {
		struct timespec wall;
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		memcpy(buf, &rng, sizeof rng); /* not the same block twice */
		clock_gettime(CLOCK_REALTIME, &wall);
		double t0 = now_ms();
		if (scm_vdisk_write(ch, h, rng % (span / 4096) * 4096, 4096, 0, &e)) {
			fprintf(stderr, "vdisk-client: randwrite: ");
			scm_error_print(e, stderr);
			scm_error_free(e);
			return 1;
		}
		fprintf(f, "%.3f %.1f\n", wall.tv_sec * 1e3 + wall.tv_nsec / 1e6, (now_ms() - t0) * 1e3);
	}
	scm_vdisk_close(ch, h, NULL);
	scm_channel_free(ch);
	return fclose(f) ? 1 : 0;
}
