/* client-pattern.c: vdisk-client's "pattern" mode, a client that keeps
 * writing while a job (snapshot, merge, compact) runs on its disk:
 *   vdisk-client [--endpoint EP] pattern DISK EXPECTED N [STOPFILE]
 * EXPECTED is a raw copy of the disk's contents as they were; each write
 * (random offset, 4 to 64 KiB, every other one of zeros so that compact
 * has blocks to turn ZERO) is flushed, and only then put into EXPECTED: so
 * EXPECTED always holds every acknowledged write. Before each write its
 * range goes to EXPECTED.pending ("OFFSET LENGTH"), for a test that kills
 * the provider in the middle: that one range may hold either contents.
 * N writes, or (N = 0) until STOPFILE exists. Prints "wrote N".
 * VDISK_PATTERN_SPAN=BYTES keeps the writes in the disk's first BYTES, for
 * a test that needs the rest left as it was. VDISK_PATTERN_ALSO="D1 D2 ..."
 * opens more disks read-only on the same channel and reads 4 KiB of one of
 * them every round (their handles must live as long as the channel: the
 * provider restart test); their first 4 KiB must not change.
 * VDISK_PATTERN_RETRY=1 does a round again when its call failed with
 * provider-gone on a channel that goes on (the provider crashed and scmd
 * recovered it: docs/handover.md), at most 3 times in a row; prints
 * "retried N" too. VDISK_PATTERN_NOFLUSH=1 writes without flushing, and
 * without fsyncing EXPECTED and its pending file: as fast as the disk
 * answers (EXPECTED then holds every answered write, which is what a
 * read sees, not what survives a crash: for a test that kills nothing).
 * VDISK_PATTERN_LINGER=FILE keeps the disk open after the last write
 * until FILE (or STOPFILE) exists, having printed "wrote N": a disk written in this
 * session, idle (for a job that must find no write after it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"
#include "scm/macro.h"
#include "scm/vdisk-client.h"

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int client_pattern(scm_channel *ch, const char *disk, const char *expected, long n, const char *stop,
		   scm_error **ret_err)
{
	uint64_t h, bsz, vsize, sec;
	int bfd, r;
	bool ro;
	if ((r = scm_vdisk_open(ch, disk, false, false, &h, &bfd, &bsz, &vsize, &sec, &ro, ret_err)))
		return r;
	uint8_t *buf = mmap(NULL, bsz, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0);
	close(bfd);
	int ef = open(expected, O_WRONLY | O_CLOEXEC);
	char pend[4096];
	snprintf(pend, sizeof pend, "%s.pending", expected);
	if (buf == MAP_FAILED || ef < 0)
		return -errno;
	uint64_t also[8], na = 0;
	uint8_t first[8][64];
	_cleanup_free_ char *al = getenv("VDISK_PATTERN_ALSO") ? strdup(getenv("VDISK_PATTERN_ALSO")) : NULL;
	char *save = NULL;
	for (char *t = al ? strtok_r(al, " ", &save) : NULL; t && na < 8; t = strtok_r(NULL, " ", &save)) {
		uint64_t ab, av, as;
		int afd;
		bool aro;
		if ((r = scm_vdisk_open(ch, t, true, false, &also[na], &afd, &ab, &av, &as, &aro, ret_err)))
			return r;
		close(afd);
		if ((r = scm_vdisk_read(ch, also[na], 0, 4096, 0, ret_err)))
			return r;
		memcpy(first[na++], buf, 64);
	}
	uint64_t seed = mix((uint64_t)getpid()), span = vsize;
	const char *sp = getenv("VDISK_PATTERN_SPAN");
	if (sp && strtoull(sp, NULL, 0) >= 4096 && strtoull(sp, NULL, 0) < vsize)
		span = strtoull(sp, NULL, 0);
	long i, retried = 0, again = 0;
	bool retry = getenv("VDISK_PATTERN_RETRY") != NULL;
	bool noflush = getenv("VDISK_PATTERN_NOFLUSH") != NULL;
	for (i = 0; n ? i < n : access(stop, F_OK) != 0; i++) {
		if (r == SCM_E_PROVIDER_GONE) { /* the round before failed: this one is it again */
			scm_error_free(*ret_err);
			*ret_err = NULL;
			r = 0;
		}
		uint64_t x = mix(seed + (uint64_t)i);
		uint64_t len = (1 + x % 16) * 4096, off = (x >> 8) % (span / 4096) * 4096;
		if (off + len > span)
			len = span - off;
		for (uint64_t k = 0; k < len; k += 8) {
			uint64_t v = i % 2 ? 0 : mix(x + k) | 1;
			memcpy(buf + k, &v, 8);
		}
		FILE *pf = fopen(pend, "w");
		if (pf) {
			fprintf(pf, "%llu %llu\n", (unsigned long long)off, (unsigned long long)len);
			fflush(pf);
			if (!noflush)
				fsync(fileno(pf));
			fclose(pf);
		}
		if (na) {
			/* the read goes to the buffer's end: the write's data stays */
			uint64_t k = (uint64_t)i % na;
			if ((r = scm_vdisk_read(ch, also[k], 0, 4096, bsz - 4096, ret_err))) {
				if (r == SCM_E_PROVIDER_GONE && retry && again++ < 3) {
					retried++;
					i--;
					continue;
				}
				break;
			}
			if (memcmp(buf + bsz - 4096, first[k], 64)) {
				r = scm_fail(ret_err, -EIO, "the read-only disk %llu reads otherwise", (unsigned long long)k);
				break;
			}
		}
		if ((r = scm_vdisk_write(ch, h, off, len, 0, ret_err)) || (!noflush && (r = scm_vdisk_flush(ch, h, ret_err)))) {
			if (r == SCM_E_PROVIDER_GONE && retry && again++ < 3) {
				retried++;
				i--;
				continue;
			}
			break;
		}
		again = 0;
		if (pwrite(ef, buf, len, (off_t)off) != (ssize_t)len) {
			r = -errno;
			break;
		}
		if (!noflush)
			fsync(ef);
	}
	printf("wrote %ld\n", i);
	if (retry)
		printf("retried %ld\n", retried);
	fflush(stdout);
	close(ef);
	const char *linger = getenv("VDISK_PATTERN_LINGER");
	while (!r && linger && *linger && access(linger, F_OK) != 0 && (!stop || access(stop, F_OK) != 0))
		usleep(10000);
	if (!r)
		r = scm_vdisk_close(ch, h, ret_err);
	return r;
}
