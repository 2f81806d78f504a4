/* bench.c: vdisk-bench, the VHDX engine against the raw file it sits on.
 * Same file system, same sizes: 1 MiB sequential read/write and 4 KiB
 * random read/write (queue depth 1) on a fully allocated dynamic VHDX,
 * against a raw file opened with O_DIRECT (when the file system allows it)
 * and buffered; plus first-write (allocating) throughput, and qemu-img
 * bench on the same image when qemu-img is there. Prints lines
 *   vdisk <name>: <value> <unit> (ratio <x> vs raw)
 * Work dir: $VDISK_BENCH_DIR, else $SCM_BUILD, else /var/tmp. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scm/macro.h"
#include "vhdx.h"

#define DISK (512ull << 20)
#define SEQ (1u << 20)
#define RND 4096u
#define SECONDS 1.5

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One target: the engine or a raw fd. */
struct target {
	vhdx *h;
	int fd;
};

static int t_io(struct target *t, bool wr, void *buf, size_t len, uint64_t off)
{
	if (t->h)
		return wr ? vhdx_write(t->h, buf, len, off) : vhdx_read(t->h, buf, len, off);
	ssize_t n = wr ? pwrite(t->fd, buf, len, (off_t)off) : pread(t->fd, buf, len, (off_t)off);
	return n == (ssize_t)len ? 0 : -EIO;
}

static bool keep_cache; /* --raw: compare hot with hot, as the provider runs */

static void t_drop_cache(struct target *t, const char *path)
{
	if (keep_cache)
		return;
	int fd = t->h ? open(path, O_RDONLY | O_CLOEXEC) : t->fd;
	if (fd >= 0) {
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	}
	if (t->h && fd >= 0)
		close(fd);
}

/* Runs one pattern for about SECONDS; returns ops per second. */
static double run(struct target *t, const char *path, bool wr, bool random, size_t len, void *buf)
{
	t_drop_cache(t, path);
	uint64_t ops = 0, off = 0, slots = DISK / len;
	double t0 = now(), t1;
	do {
		for (int k = 0; k < 16; k++, ops++) {
			off = random ? (rnd() % slots) * len : (off + len) % DISK;
			if (t_io(t, wr, buf, len, off) < 0) {
				fprintf(stderr, "vdisk-bench: I/O failed at %llu: %s\n", (unsigned long long)off,
					t->h ? vhdx_errmsg(t->h) : strerror(errno));
				exit(1);
			}
		}
		t1 = now();
	} while (t1 - t0 < SECONDS);
	if (wr) {
		if (t->h)
			vhdx_flush(t->h);
		else
			fdatasync(t->fd);
		t1 = now();
	}
	return ops / (t1 - t0);
}

/* Queue depth 32 as 32 threads of synchronous 4 KiB random reads: the
 * engine's reads of a disk without parent touch no shared mutable state
 * (see vhdx.h), so they may run side by side. */
struct qd_arg {
	struct target *t;
	uint64_t seed, ops;
	double until;
};

static void *qd_worker(void *p)
{
	struct qd_arg *a = p;
	void *buf;
	if (posix_memalign(&buf, 4096, RND))
		return NULL;
	uint64_t s = a->seed | 1;
	while (now() < a->until) {
		for (int k = 0; k < 16; k++, a->ops++) {
			s ^= s << 13, s ^= s >> 7, s ^= s << 17;
			if (t_io(a->t, false, buf, RND, (s % (DISK / RND)) * RND) < 0)
				break;
		}
	}
	free(buf);
	return NULL;
}

static double run_qd32(struct target *t, const char *path)
{
	pthread_t th[32];
	struct qd_arg a[32];
	t_drop_cache(t, path);
	double t0 = now();
	for (int i = 0; i < 32; i++) {
		a[i] = (struct qd_arg){ t, (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull, 0, t0 + SECONDS };
		pthread_create(&th[i], NULL, qd_worker, &a[i]);
	}
	uint64_t ops = 0;
	for (int i = 0; i < 32; i++) {
		pthread_join(th[i], NULL);
		ops += a[i].ops;
	}
	return ops / (now() - t0);
}

static void line(const char *name, double v, const char *unit, double raw)
{
	printf("vdisk %s: %.1f %s (ratio %.2f vs raw)\n", name, v, unit, raw > 0 ? v / raw : 0);
}

static double fill_raw(const char *path, void *buf)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	double t0 = now();
	for (uint64_t off = 0; off < DISK; off += SEQ)
		if (pwrite(fd, buf, SEQ, (off_t)off) != SEQ)
			return -1;
	fdatasync(fd);
	double t = now() - t0;
	close(fd);
	return DISK / t / (1 << 20);
}

static double fill_vhdx(const char *path, void *buf)
{
	struct vhdx_create_opts o = { .size = DISK };
	scm_error *err = NULL;
	vhdx *h;
	unlink(path);
	if (vhdx_create(path, &o, &err) < 0 || vhdx_open(path, 0, &h, &err) < 0) {
		fputs("vdisk-bench: ", stderr);
		scm_error_print(err, stderr);
		return -1;
	}
	double t0 = now();
	for (uint64_t off = 0; off < DISK; off += SEQ)
		if (vhdx_write(h, buf, SEQ, off) < 0)
			return -1;
	if (vhdx_close_checked(h) < 0)
		return -1;
	return DISK / (now() - t0) / (1 << 20);
}

/* qemu-img bench on the same image: ops/s from its "Run completed in". */
static double qemu_bench(const char *img, const char *args, uint64_t count)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "qemu-img bench -f vhdx -t none %s -c %llu '%s' 2>&1", args,
		 (unsigned long long)count, img);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char l[512];
	double secs = -1;
	while (fgets(l, sizeof l, p))
		if (sscanf(l, "Run completed in %lf seconds", &secs) == 1)
			break;
	pclose(p);
	return secs > 0 ? count / secs : -1;
}

/* vdisk-bench --raw FILE: the raw-file side alone, buffered, for the
 * provider bench (vdisk-provider-bench) to compare against. */
static int raw_only(const char *path, void *buf)
{
	struct target t = { NULL, open(path, O_RDWR | O_CLOEXEC) };
	keep_cache = true;
	if (t.fd < 0) {
		fprintf(stderr, "vdisk-bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("raw seq-read 1M %.1f\n", run(&t, path, false, false, SEQ, buf));
	printf("raw seq-write 1M %.1f\n", run(&t, path, true, false, SEQ, buf));
	printf("raw rand-read 4K qd1 %.1f\n", run(&t, path, false, true, RND, buf));
	printf("raw rand-write 4K qd1 %.1f\n", run(&t, path, true, true, RND, buf));
	close(t.fd);
	return 0;
}

/* vdisk-bench --read-lines IMG: the engine in this process, on a disk
 * opened buffered and read once (hot, as the provider and qemu-nbd run
 * in vdisk-nbd-bench), for the lines that compare it with both:
 *   engine <pattern> <value> */
static int read_lines(const char *path, void *buf)
{
	struct target t = { NULL, -1 };
	scm_error *err = NULL;
	keep_cache = true;
	if (vhdx_open(path, VHDX_O_RDONLY, &t.h, &err) < 0) {
		fputs("vdisk-bench: ", stderr);
		scm_error_print(err, stderr);
		return 1;
	}
	for (uint64_t off = 0; off < DISK; off += SEQ)
		if (vhdx_read(t.h, buf, SEQ, off) < 0)
			return 1;
	printf("engine rand-read-4k-qd1 %.1f\n", run(&t, path, false, true, RND, buf));
	printf("engine rand-read-4k-qd32 %.1f\n", run_qd32(&t, path));
	printf("engine seq-read-1m %.1f\n", run(&t, path, false, false, SEQ, buf));
	vhdx_close(t.h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--read-lines")) {
		void *b;
		if (posix_memalign(&b, 4096, SEQ))
			return 1;
		return read_lines(argv[2], b);
	}
	if (argc == 3 && !strcmp(argv[1], "--raw")) {
		void *b;
		if (posix_memalign(&b, 4096, SEQ))
			return 1;
		memset(b, 0x5a, SEQ);
		return raw_only(argv[2], b);
	}
	const char *dir = getenv("VDISK_BENCH_DIR");
	if (!dir)
		dir = getenv("SCM_BUILD");
	if (!dir)
		dir = "/var/tmp";
	char raw[512], img[512];
	snprintf(raw, sizeof raw, "%s/vdisk-bench-%d.raw", dir, getpid());
	snprintf(img, sizeof img, "%s/vdisk-bench-%d.vhdx", dir, getpid());
	void *buf;
	if (posix_memalign(&buf, 4096, SEQ))
		return 1;
	memset(buf, 0x5a, SEQ);
	printf("vdisk bench: %llu MiB disk, 32 MiB blocks, in %s\n", (unsigned long long)(DISK >> 20), dir);

	double raw_first = fill_raw(raw, buf), vh_first = fill_vhdx(img, buf);
	if (raw_first < 0 || vh_first < 0) {
		fprintf(stderr, "vdisk-bench: could not make the test files in %s\n", dir);
		return 1;
	}
	line("first-write 1M seq (allocating)", vh_first, "MiB/s", raw_first);

	struct target rd = { NULL, open(raw, O_RDWR | O_DIRECT | O_CLOEXEC) };
	bool direct = rd.fd >= 0;
	if (!direct)
		rd.fd = open(raw, O_RDWR | O_CLOEXEC);
	struct target rb = { NULL, open(raw, O_RDWR | O_CLOEXEC) };
	struct target vd = { NULL, -1 }, vb = { NULL, -1 };
	scm_error *err = NULL;
	if (rd.fd < 0 || rb.fd < 0 || vhdx_open(img, VHDX_O_DIRECT, &vd.h, &err) < 0) {
		fputs("vdisk-bench: open failed: ", stderr);
		scm_error_print(err, stderr);
		return 1;
	}
	printf("vdisk reference: raw file %s; the engine with VHDX_O_DIRECT against it, and both buffered\n",
	       direct ? "with O_DIRECT" : "buffered (no O_DIRECT on this file system)");
	struct {
		const char *name;
		bool wr, random;
		size_t len;
	} pat[] = {
		{ "seq-read 1M", false, false, SEQ },
		{ "seq-write 1M", true, false, SEQ },
		{ "rand-read 4K qd1", false, true, RND },
		{ "rand-write 4K qd1", true, true, RND },
	};
	for (size_t i = 0; i < ELEMENTSOF(pat); i++) {
		bool seq = pat[i].len == SEQ;
		const char *unit = seq ? "MiB/s" : "IOPS"; /* 1 op of 1 MiB = 1 MiB */
		double r = run(&rd, raw, pat[i].wr, pat[i].random, pat[i].len, buf);
		double v = run(&vd, img, pat[i].wr, pat[i].random, pat[i].len, buf);
		line(pat[i].name, v, unit, r);
	}
	line("rand-read 4K qd32 (32 threads)", run_qd32(&vd, img), "IOPS", run_qd32(&rd, raw));
	vhdx_close(vd.h);
	if (vhdx_open(img, 0, &vb.h, &err) < 0) {
		fputs("vdisk-bench: open failed: ", stderr);
		scm_error_print(err, stderr);
		return 1;
	}
	for (size_t i = 0; i < ELEMENTSOF(pat); i++) {
		bool seq = pat[i].len == SEQ;
		char name[80];
		double r = run(&rb, raw, pat[i].wr, pat[i].random, pat[i].len, buf);
		double v = run(&vb, img, pat[i].wr, pat[i].random, pat[i].len, buf);
		snprintf(name, sizeof name, "%s buffered", pat[i].name);
		line(name, v, seq ? "MiB/s" : "IOPS", r);
	}
	vhdx_close(vb.h);
	close(rd.fd);
	close(rb.fd);
	if (system("command -v qemu-img >/dev/null 2>&1") == 0) {
		double q4 = qemu_bench(img, "-d 1 -s 4096 -S 1044480", 20000);
		double q1 = qemu_bench(img, "-d 1 -s 1M", 1000);
		double q32 = qemu_bench(img, "-d 32 -s 4096 -S 1044480", 40000);
		if (q32 > 0)
			printf("vdisk qemu-img-bench read 4K qd32 (strided): %.1f IOPS\n", q32);
		if (q4 > 0)
			printf("vdisk qemu-img-bench read 4K qd1 (strided): %.1f IOPS\n", q4);
		if (q1 > 0)
			printf("vdisk qemu-img-bench seq-read 1M qd1: %.1f MiB/s\n", q1);
	}
	unlink(raw);
	unlink(img);
	free(buf);
	return 0;
}
