/* crashwriter.c: test helper for crash consistency. Writes random 4 KiB
 * records (each tagged with its sequence number) at random sectors, flushes
 * every few writes, and after each flush prints "flushed N" to stdout; the
 * test kills it with SIGKILL at a random moment and later verifies that
 * every write up to the last reported flush reads back.
 *   vdisk-crashwriter write FILE SEED     (runs until killed)
 *   vdisk-crashwriter verify FILE SEED N  (exit 0 if writes 1..N are there) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx.h"

#define REC 4096

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void record(uint8_t *buf, uint64_t seed, uint64_t i)
{
	for (size_t k = 0; k < REC; k += 8) {
		uint64_t v = seed * 1000003u + i * 7919u + k;
		memcpy(buf + k, &v, 8);
	}
}

int main(int argc, char **argv)
{
	bool verify = argc > 1 && !strcmp(argv[1], "verify");
	if (argc != 4 + verify) {
		fprintf(stderr, "usage: vdisk-crashwriter write FILE SEED | verify FILE SEED N\n");
		return 2;
	}
	uint64_t seed = strtoull(argv[3], NULL, 0), s = seed | 1, n = verify ? strtoull(argv[4], NULL, 0) : 0;
	vhdx *h;
	scm_error *err = NULL;
	if (vhdx_open(argv[2], verify ? VHDX_O_RDONLY : 0, &h, &err) < 0) {
		scm_error_print(err, stderr);
		return 1;
	}
	struct vhdx_info in;
	vhdx_get_info(h, &in);
	uint64_t slots = in.virtual_size / REC;
	uint8_t buf[REC], got[REC];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (verify) {
		/* the last write to each slot wins: replay the sequence to find it */
		uint64_t *last = calloc(slots, sizeof *last);
		for (uint64_t i = 1; i <= n; i++)
			last[rnd(&s) % slots] = i;
		/* writes after the last reported flush may or may not have landed;
		 * the writer flushes every 8, so at most 16 more were issued */
		uint64_t later[16], later_slot[16];
		for (int j = 0; j < 16; j++) {
			later[j] = n + 1 + (uint64_t)j;
			later_slot[j] = rnd(&s) % slots;
		}
		for (uint64_t k = 0; k < slots; k++) {
			if (!last[k])
				continue;
			record(buf, seed, last[k]);
			if (vhdx_read(h, got, REC, k * REC) < 0) {
				fprintf(stderr, "%s\n", vhdx_errmsg(h));
				return 1;
			}
			bool ok = !memcmp(buf, got, REC);
			for (int j = 0; j < 16 && !ok; j++) {
				if (later_slot[j] != k)
					continue;
				record(buf, seed, later[j]);
				ok = !memcmp(buf, got, REC);
			}
			if (!ok) {
				fprintf(stderr, "slot %llu: write %llu is missing\n", (unsigned long long)k,
					(unsigned long long)last[k]);
				return 1;
			}
		}
		free(last);
		vhdx_close(h);
		return 0;
	}
	for (uint64_t i = 1;; i++) {
		record(buf, seed, i);
		if (vhdx_write(h, buf, REC, (rnd(&s) % slots) * REC) < 0) {
			fprintf(stderr, "%s\n", vhdx_errmsg(h));
			return 1;
		}
		if (i % 8 == 0) {
			if (vhdx_flush(h) < 0) {
				fprintf(stderr, "%s\n", vhdx_errmsg(h));
				return 1;
			}
			printf("flushed %llu\n", (unsigned long long)i);
		}
	}
}
