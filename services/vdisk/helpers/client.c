/* client.c: vdisk-client, a small client of the vdisk service for tests and
 * the bench: it connects through an scm endpoint, opens a disk, and moves
 * data through the channel's shared buffer.
 *   vdisk-client [--endpoint EP] copy-in DISK RAW     raw file -> disk (rw)
 *   vdisk-client [--endpoint EP] copy-out DISK RAW    disk -> raw file (ro)
 *   vdisk-client [--endpoint EP] hold DISK ro|rw|shared   open, say "open", wait for stdin EOF
 *   vdisk-client [--endpoint EP] info DISK
 *   vdisk-client [--endpoint EP] bench DISK           seq 1M / rand 4K through the provider
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

#include "scm/macro.h"
#include "scm/vdisk-client.h"

static int die(int r, scm_error *e)
{
	fprintf(stderr, "vdisk-client: ");
	if (e)
		scm_error_print(e, stderr);
	else
		fprintf(stderr, "%s\n", strerror(r < 0 ? -r : EIO));
	int code = e ? scm_error_root_code(e) : r;
	scm_error_free(e);
	return code > 0 ? 10 + (code >= 100 ? code - 100 + 20 : code) : 1;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *ep = NULL;
	if (argc > 2 && !strcmp(argv[1], "--endpoint")) {
		ep = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: vdisk-client [--endpoint EP] copy-in|copy-out|hold|info|bench DISK [ARG]\n");
		return 2;
	}
	const char *cmd = argv[1], *disk = argv[2];
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	int r = ep ? scm_connect_at(ep, "vdisk", &ch, &e) : scm_connect("vdisk", &ch, &e);
	if (r)
		return die(r, e);
	bool ro = !strcmp(cmd, "copy-out") || !strcmp(cmd, "info") ||
		  (!strcmp(cmd, "hold") && argc > 3 && !strcmp(argv[3], "ro"));
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
	} else if (!strcmp(cmd, "info")) {
		json_object *info = NULL;
		if ((r = scm_vdisk_info(ch, h, &info, &e)))
			return die(r, e);
		printf("%s\n", json_object_to_json_string_ext(info, JSON_C_TO_STRING_PLAIN));
		json_object_put(info);
	} else if (!strcmp(cmd, "copy-in") || !strcmp(cmd, "copy-out")) {
		if (argc < 4)
			return 2;
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
				if ((r = scm_vdisk_read(ch, h, off, n, 0, &e)))
					return die(r, e);
				if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
					return die(-EIO, NULL);
			}
		}
		close(fd);
		if (in && (r = scm_vdisk_flush(ch, h, &e)))
			return die(r, e);
	} else if (!strcmp(cmd, "bench")) {
		/* the disk must be open read-write and fully allocated by the caller */
		struct { const char *name; bool wr, rnd; uint64_t len; } pat[] = {
			{ "seq-read 1M", false, false, 1 << 20 }, { "seq-write 1M", true, false, 1 << 20 },
			{ "rand-read 4K qd1", false, true, 4096 }, { "rand-write 4K qd1", true, true, 4096 },
		};
		uint64_t s = 88172645463325252ull;
		for (size_t i = 0; i < 4; i++) {
			uint64_t ops = 0, off = 0;
			double t0 = now(), t1;
			do {
				for (int k = 0; k < 16; k++, ops++) {
					s ^= s << 13, s ^= s >> 7, s ^= s << 17;
					off = pat[i].rnd ? (s % (vsize / pat[i].len)) * pat[i].len
							 : (off + pat[i].len) % vsize;
					r = pat[i].wr ? scm_vdisk_write(ch, h, off, pat[i].len, 0, &e)
						      : scm_vdisk_read(ch, h, off, pat[i].len, 0, &e);
					if (r)
						return die(r, e);
				}
				t1 = now();
			} while (t1 - t0 < 1.5);
			if (pat[i].wr && (r = scm_vdisk_flush(ch, h, &e)))
				return die(r, e);
			t1 = now();
			double v = ops / (t1 - t0);
			printf("%s %.1f %s\n", pat[i].name, v, pat[i].len == 4096 ? "IOPS" : "MiB/s");
		}
	} else {
		return 2;
	}
	if ((r = scm_vdisk_close(ch, h, &e)))
		return die(r, e);
	scm_channel_free(ch);
	return 0;
}
