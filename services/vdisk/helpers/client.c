/* client.c: vdisk-client, a small client of the vdisk service for tests and
 * the bench: it connects through an scm endpoint, opens a disk, and moves
 * data through the channel's shared buffer.
 *   vdisk-client [--endpoint EP] copy-in DISK RAW     raw file -> disk (rw)
 *   vdisk-client [--endpoint EP] copy-out DISK RAW    disk -> raw file (ro)
 *   vdisk-client [--endpoint EP] copy-out-rw DISK RAW [PAUSE]   the same, opened read-write
 *                         (a remote parent's data is copied on read); with PAUSE, after
 *                         PAUSE bytes it says "paused" and reads a line of stdin first
 *   vdisk-client [--endpoint EP] hold DISK ro|rw|shared   open, say "open", wait for stdin EOF
 *   vdisk-client [--endpoint EP] vcopy-in|vcopy-out DISK RAW   the same through writev/readv
 *   vdisk-client [--endpoint EP] badvec DISK [ro]     malformed writev batches, all refused
 *   vdisk-client [--endpoint EP] badring DISK        malformed read ring slots, all refused
 *                                                     (ro: a good batch on a read-only handle)
 *   vdisk-client [--endpoint EP] rings DISK N        N read-only handles, a read ring asked for
 *                                                     each: how many rings the provider gives
 *   vdisk-client [--endpoint EP] channels DISK N     N channels, each with a data buffer (an open
 *                                                     and a close), held until stdin EOF
 *   vdisk-client [--endpoint EP] info DISK
 *   vdisk-client [--endpoint EP] many DISK N          open read-only up to N handles on one
 *                                                     channel, say how many, wait for stdin EOF
 *   vdisk-client [--endpoint EP] opens DISK N         open read-only N times; one line each:
 *                                                     the virtual size, or "refused"
 *   vdisk-client [--endpoint EP] bench DISK           seq 1M / rand 4K through the provider
 *                                                     (client-bench.c)
 *   vdisk-client [--endpoint EP] bench-read DISK      4K qd1/qd32 and 1M reads (read-only)
 *   vdisk-client [--endpoint EP] write-flush-exit DISK MIB   write, send flush + read, exit at once
 *   vdisk-client [--endpoint EP] pr DISK [--ro] CMD ARGS [-- CMD ARGS]...
 *                         persistent reservations (client-pr.c)
 *   vdisk-client [--endpoint EP] pattern DISK EXPECTED N [STOPFILE]
 *                         writes with known contents while a job runs (client-pattern.c)
 *   vdisk-client [--endpoint EP] rounds STOPFILE K DISK...
 *                         4 KiB write + read back round robin, long rounds logged
 *                         (client-rounds.c: handover-bench)
 *   vdisk-client [--endpoint EP] flush-latency DISK_A DISK_B MIB
 *                         B's 4 KiB read latency while A flushes MIB MiB (client-latency.c)
 * Exit: 0 ok, 1 failure, 10+code for a refusal with an interface code. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "scm/macro.h"
#include "scm/vdisk-client.h"

static scm_channel *g_ch; /* freed on the way out, so LeakSanitizer keeps our exit code */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int die(int r, scm_error *e)
{
	scm_channel_free(g_ch);
	g_ch = NULL;
	fprintf(stderr, "vdisk-client: ");
	if (e)
		scm_error_print(e, stderr);
	else
		fprintf(stderr, "%s\n", strerror(r < 0 ? -r : EIO));
	int code = e ? e->code : r;
	scm_error_free(e);
	return code > 0 ? 10 + (code >= 100 ? code - 100 + 20 : code) : 1;
}

int main(int argc, char **argv)
{
	const char *ep = NULL, *svc = "vdisk";
	if (argc > 2 && !strcmp(argv[1], "--endpoint")) {
		ep = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc > 2 && !strcmp(argv[1], "--service")) { /* another service of the vdisk interface */
		svc = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: vdisk-client [--endpoint EP] [--service NAME] COMMAND DISK [ARG]...\n"
				"commands: copy-in copy-out copy-out-rw vcopy-in vcopy-out hold info cat many opens channels\n"
				"          rings bench bench-read pattern rounds pr write-flush-exit flush-latency badvec badring\n"
				"(services/vdisk/helpers/client.c says what each takes)\n");
		return 2;
	}
	const char *cmd = argv[1], *disk = argv[2];
	if (!strcmp(cmd, "write-flush-exit"))
		return argc == 4 ? client_write_flush_exit(ep, argv[2], strtoull(argv[3], NULL, 10)) : 2;
	if (!strcmp(cmd, "pr"))
		return client_pr(ep, svc, argc - 2, argv + 2);
	if (!strcmp(cmd, "randwrite"))
		return argc == 5 || argc == 6 ? client_randwrite(ep, argv[2], argv[3], argv[4],
								argc == 6 ? strtoull(argv[5], NULL, 10) : 0)
					      : 2;
	if (!strcmp(cmd, "channels") && argc > 3) {
		/* a client with many channels, each with a data buffer (an
		 * open, then a close): says how many, holds them until stdin
		 * EOF */
		long n = atol(argv[3]), k;
		scm_channel **chs = calloc((size_t)(n > 0 ? n : 1), sizeof *chs);
		scm_error *ce = NULL;
		if (!chs)
			return 1;
		for (k = 0; k < n; k++) {
			uint64_t oh, obsz, ovsize, osec;
			int ofd;
			bool oro;
			int r = ep ? scm_connect_at(ep, svc, &chs[k], &ce) : scm_connect(svc, &chs[k], &ce);
			if (r == 0 && (r = scm_vdisk_open(chs[k], disk, true, false, &oh, &ofd, &obsz, &ovsize, &osec, &oro,
							  &ce)) == 0) {
				close(ofd);
				r = scm_vdisk_close(chs[k], oh, &ce);
			}
			if (r) {
				printf("channels %ld\n", k);
				fflush(stdout);
				return die(r, ce);
			}
		}
		printf("channels %ld\n", k);
		fflush(stdout);
		char c;
		while (read(0, &c, 1) > 0)
			;
		return 0;
	}
	if (!strcmp(cmd, "flush-latency"))
		return argc == 5 ? client_flush_latency(ep, argv[2], argv[3], strtoull(argv[4], NULL, 10)) : 2;
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	int r = ep ? scm_connect_at(ep, svc, &ch, &e) : scm_connect(svc, &ch, &e);
	if (r)
		return die(r, e);
	g_ch = ch;
	if (!strcmp(cmd, "rounds") && argc > 4) {
		r = client_rounds(ch, argv[2], strtoul(argv[3], NULL, 10), argv + 4, (size_t)argc - 4, &e);
		return r ? die(r, e) : (scm_channel_free(ch), 0);
	}
	if (!strcmp(cmd, "pattern") && argc > 4) {
		r = client_pattern(ch, disk, argv[3], atol(argv[4]), argc > 5 ? argv[5] : "", &e);
		return r ? die(r, e) : (scm_channel_free(ch), 0);
	}
	if (!strcmp(cmd, "rings") && argc > 3) {
		r = client_rings(ch, disk, atol(argv[3]));
		scm_channel_free(ch);
		return r;
	}
	if (!strcmp(cmd, "many") && argc > 3) {
		/* the per-client cap: how many handles does the provider give? */
		long n = atol(argv[3]), k;
		for (k = 0; k < n; k++) {
			uint64_t oh, obsz, ovsize, osec;
			int ofd;
			bool oro;
			r = scm_vdisk_open(ch, disk, true, false, &oh, &ofd, &obsz, &ovsize, &osec, &oro, &e);
			if (r) {
				printf("opened %ld\n", k);
				fflush(stdout);
				return die(r, e);
			}
			close(ofd);
		}
		printf("opened %ld\n", k);
		fflush(stdout);
		char c;
		while (read(0, &c, 1) > 0)
			;
		scm_channel_free(ch);
		return 0;
	}
	if (!strcmp(cmd, "opens") && argc > 3) {
		/* the symlink-swap race test: which file did each open get? */
		long n = atol(argv[3]);
		for (long i = 0; i < n; i++) {
			uint64_t oh, obsz, ovsize, osec;
			int ofd;
			bool oro;
			r = scm_vdisk_open(ch, disk, true, false, &oh, &ofd, &obsz, &ovsize, &osec, &oro, &e);
			if (r) {
				if (getenv("VDISK_CLIENT_VERBOSE"))
					scm_error_print(e, stderr);
				scm_error_free(e);
				e = NULL;
				printf("refused\n");
				fflush(stdout);
				/* a pause, or the spinning clients' CPU, not the
				 * provider, is what the others would measure */
				usleep(2000);
				continue;
			}
			close(ofd);
			printf("%llu\n", (unsigned long long)ovsize);
			fflush(stdout);
			if ((r = scm_vdisk_close(ch, oh, &e)))
				return die(r, e);
		}
		scm_channel_free(ch);
		return 0;
	}
	bool ro = !strcmp(cmd, "cat") || !strcmp(cmd, "copy-out") || !strcmp(cmd, "bench-read") || !strcmp(cmd, "vcopy-out") || !strcmp(cmd, "info") || !strcmp(cmd, "info-latency") || !strcmp(cmd, "badring") ||
		  ((!strcmp(cmd, "hold") || !strcmp(cmd, "badvec")) && argc > 3 && !strcmp(argv[3], "ro"));
	bool shared = !strcmp(cmd, "hold") && argc > 3 && !strcmp(argv[3], "shared");
	uint64_t h, bsz, vsize, sec;
	int bfd;
	bool got_ro;
	r = scm_vdisk_open(ch, disk, ro, shared, &h, &bfd, &bsz, &vsize, &sec, &got_ro, &e);
	if (r)
		return die(r, e);
	uint8_t *buf = mmap(NULL, bsz, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
	if (buf == MAP_FAILED)
		return die(-errno, NULL);
	if (!strcmp(cmd, "hold")) {
		printf("open handle %llu\n", (unsigned long long)h);
		fflush(stdout);
		char c;
		while (read(0, &c, 1) > 0)
			;
	} else if (!strcmp(cmd, "info-latency") && argc > 3) {
		/* a victim's view: N info calls on one handle, timed */
		long n = atol(argv[3]);
		if (n < 1 || n > 100000)
			return 2;
		double *ms = calloc((size_t)n, sizeof *ms);
		if (!ms)
			return die(-ENOMEM, NULL);
		for (long i = 0; i < n; i++) {
			struct timespec a, b;
			json_object *info = NULL;
			clock_gettime(CLOCK_MONOTONIC, &a);
			if ((r = scm_vdisk_info(ch, h, &info, &e))) {
				free(ms);
				return die(r, e);
			}
			clock_gettime(CLOCK_MONOTONIC, &b);
			json_object_put(info);
			ms[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
			usleep(5000);
		}
		qsort(ms, (size_t)n, sizeof *ms, cmp_double);
		printf("infos=%ld p50_ms=%.1f p90_ms=%.1f max_ms=%.1f\n", n, ms[n / 2], ms[(n * 9) / 10], ms[n - 1]);
		free(ms);
	} else if (!strcmp(cmd, "info")) {
		json_object *info = NULL;
		if ((r = scm_vdisk_info(ch, h, &info, &e)))
			return die(r, e);
		printf("%s\n", json_object_to_json_string_ext(info, JSON_C_TO_STRING_PLAIN));
		json_object_put(info);
	} else if (!strcmp(cmd, "vcopy-in") || !strcmp(cmd, "vcopy-out")) {
		if (argc < 4)
			return 2;
		bool in = !strcmp(cmd, "vcopy-in");
		int fd = open(argv[3], in ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return die(-errno, NULL);
		r = client_vcopy(ch, h, vsize, buf, bsz, in, fd, &e);
		close(fd);
		if (r)
			return die(r, e);
	} else if (!strcmp(cmd, "badring")) {
		r = client_badring(ch, h, vsize, buf, sec);
		fflush(stdout);
		return r;
	} else if (!strcmp(cmd, "badvec")) {
		if ((r = client_badvec(ch, h, vsize, bsz, ro)))
			return die(r, NULL);
	} else if (!strcmp(cmd, "copy-in") || !strcmp(cmd, "copy-out") || !strcmp(cmd, "copy-out-rw")) {
		if (argc < 4)
			return 2;
		uint64_t pause = argc > 4 ? strtoull(argv[4], NULL, 0) : UINT64_MAX;
		bool in = !strcmp(cmd, "copy-in");
		int fd = open(argv[3], in ? O_RDONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return die(-errno, NULL);
		for (uint64_t off = 0; off < vsize; off += bsz) {
			uint64_t n = vsize - off < bsz ? vsize - off : bsz;
			if (in) {
				ssize_t k = pread(fd, buf, n, (off_t)off);
				if (k <= 0)
					break;
				n = ((uint64_t)k + sec - 1) / sec * sec;
				memset(buf + k, 0, n - (uint64_t)k);
				if ((r = scm_vdisk_write(ch, h, off, n, 0, &e)))
					return die(r, e);
			} else {
				if (off == pause) {
					char line[16];
					printf("paused\n");
					fflush(stdout);
					if (!fgets(line, sizeof line, stdin))
						return 2;
				}
				if ((r = scm_vdisk_read(ch, h, off, n, 0, &e)))
					return die(r, e);
				if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
					return die(-EIO, NULL);
			}
		}
		close(fd);
		if (!ro && (r = scm_vdisk_flush(ch, h, &e)))
			return die(r, e);
	} else if (!strcmp(cmd, "cat") && argc > 4) {
		/* cat DISK OFFSET LENGTH: a range to stdout (a workload reading
		 * only its files, not the whole disk) */
		uint64_t off = strtoull(argv[3], NULL, 0), len = strtoull(argv[4], NULL, 0);
		if (off > vsize || len > vsize - off)
			return 2;
		for (uint64_t done = 0; done < len;) {
			uint64_t n = len - done < bsz ? len - done : bsz;
			if ((r = scm_vdisk_read(ch, h, off + done, n, 0, &e)))
				return die(r, e);
			for (uint64_t w = 0; w < n;) {
				ssize_t k = write(1, buf + w, n - w);
				if (k <= 0)
					return die(-errno, NULL);
				w += (uint64_t)k;
			}
			done += n;
		}
	} else if (!strcmp(cmd, "bench-read")) {
		if ((r = client_bench_read(ch, h, vsize, &e)))
			return die(r, e);
	} else if (!strcmp(cmd, "bench")) {
		/* the disk must be open read-write and fully allocated by the caller */
		if ((r = client_bench(ch, h, vsize, &e)))
			return die(r, e);
	} else {
		return 2;
	}
	if ((r = scm_vdisk_close(ch, h, &e)))
		return die(r, e);
	scm_channel_free(ch);
	return 0;
}
