/* client-ring.c: vdisk-client badring DISK: the read ring (vring.h) used as
 * an attacker would: the ring's memfd must refuse a new size (else the
 * provider could be made to fault on it), every malformed slot must come
 * back refused with a message naming the field, slots scribbled with
 * garbage must not stop the ring, and a good read after all that must
 * return what a call returns. Prints one line per case; exits 0 when
 * every case went as it must. */
#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client.h"
#include "scm/vdisk-client.h"
#include "vring.h"

/* Submits slot i as it stands and waits for the provider's answer (as
 * long as it takes: the test's own bound ends a hang). */
static int submit_wait(struct vring_hdr *r, int bell, unsigned i)
{
	struct vring_slot *s = &r->slot[i];
	atomic_store(&s->state, VRING_SUBMITTED);
	uint64_t one = 1;
	if (atomic_load(&r->sleeping))
		(void)!write(bell, &one, sizeof one);
	uint32_t v;
	while ((v = atomic_load(&s->state)) != VRING_DONE) {
		struct timespec ts = { 0, 100000000 };
		syscall(SYS_futex, &s->state, FUTEX_WAIT, v, &ts, NULL, 0);
		if (atomic_load(&r->sleeping))
			(void)!write(bell, &one, sizeof one);
	}
	return s->status;
}

int client_badring(scm_channel *ch, uint64_t h, uint64_t vsize, uint8_t *buf, uint64_t sec)
{
	scm_error *e = NULL;
	int fd, bell, bad = 0;
	uint64_t size;
	int r = scm_vdisk_ring(ch, h, &fd, &bell, &size, &e);
	if (r) {
		char *t = scm_error_text(e);
		fprintf(stderr, "ring: %s\n", t ? t : strerror(-r));
		free(t);
		scm_error_free(e);
		return 1;
	}
	if (size != VRING_SIZE) {
		fprintf(stderr, "ring: %llu bytes, not %llu\n", (unsigned long long)size, (unsigned long long)VRING_SIZE);
		return 1;
	}
	if (ftruncate(fd, 4096) == 0 || ftruncate(fd, (off_t)VRING_SIZE * 2) == 0) {
		printf("resize: ACCEPTED\n");
		bad++;
	} else
		printf("resize: refused (%s)\n", strerror(errno));
	struct vring_hdr *r2 = mmap(NULL, VRING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r2 == MAP_FAILED)
		return 1;
	struct {
		const char *name;
		uint32_t op;
		uint64_t handle, off;
		uint32_t len, data;
	} cases[] = {
		{ "past-end", VRING_OP_READ, h, vsize - sec, 2 * (uint32_t)sec, 0 },
		{ "offset-wraps", VRING_OP_READ, h, UINT64_MAX - sec + 1, (uint32_t)sec, 0 },
		{ "offset-far", VRING_OP_READ, h, vsize + (1ull << 40), (uint32_t)sec, 0 },
		{ "length-zero", VRING_OP_READ, h, 0, 0, 0 },
		{ "length-over-area", VRING_OP_READ, h, 0, VRING_DATA_SIZE + (uint32_t)sec, 0 },
		{ "length-huge", VRING_OP_READ, h, 0, UINT32_MAX, 0 },
		{ "unaligned", VRING_OP_READ, h, 1, (uint32_t)sec, 0 },
		{ "data-area-out", VRING_OP_READ, h, 0, (uint32_t)sec, VRING_SLOTS },
		{ "data-area-huge", VRING_OP_READ, h, 0, (uint32_t)sec, UINT32_MAX },
		{ "other-handle", VRING_OP_READ, h + 1, 0, (uint32_t)sec, 0 },
		{ "handle-zero", VRING_OP_READ, 0, 0, (uint32_t)sec, 0 },
		{ "write-op", 2, h, 0, (uint32_t)sec, 0 },
		{ "op-zero", 0, h, 0, (uint32_t)sec, 0 },
	};
	for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
		unsigned i = (unsigned)(c % VRING_SLOTS);
		struct vring_slot *s = &r2->slot[i];
		s->op = cases[c].op;
		s->handle = cases[c].handle;
		s->offset = cases[c].off;
		s->length = cases[c].len;
		s->data = cases[c].data;
		int st = submit_wait(r2, bell, i);
		char msg[VRING_MSG_MAX];
		memcpy(msg, s->msg, sizeof msg);
		msg[sizeof msg - 1] = 0;
		if (st >= 0 || !msg[0]) {
			printf("%s: ACCEPTED\n", cases[c].name);
			bad++;
		} else
			printf("%s: refused %d (code %u): %s\n", cases[c].name, st, s->code, msg);
		atomic_store(&s->state, VRING_FREE);
	}
	/* garbage everywhere, half of it submitted */
	srand(7);
	for (unsigned i = 0; i < VRING_SLOTS; i++) {
		struct vring_slot *s = &r2->slot[i];
		for (size_t k = sizeof s->state; k < sizeof *s; k++)
			((uint8_t *)s)[k] = (uint8_t)rand();
		atomic_store(&s->state, i % 2 ? VRING_SUBMITTED : (uint32_t)rand());
	}
	uint64_t one = 1;
	(void)!write(bell, &one, sizeof one);
	for (unsigned i = 1; i < VRING_SLOTS; i += 2) {
		uint32_t v;
		while ((v = atomic_load(&r2->slot[i].state)) == VRING_SUBMITTED || v == VRING_TAKEN) {
			struct timespec ts = { 0, 100000000 };
			syscall(SYS_futex, &r2->slot[i].state, FUTEX_WAIT, v, &ts, NULL, 0);
		}
	}
	printf("scribbled: the ring answered every submitted slot\n");
	/* and a good read still reads what a call reads */
	uint32_t len = 64 * 1024 < vsize ? 64 * 1024 : (uint32_t)vsize;
	uint64_t off = vsize - len;
	struct vring_slot *s = &r2->slot[5];
	*s = (struct vring_slot){ .op = VRING_OP_READ, .handle = h, .offset = off, .length = len, .data = 9 };
	int st = submit_wait(r2, bell, 5);
	if ((r = scm_vdisk_read(ch, h, off, len, 0, &e))) {
		scm_error_free(e);
		return 1;
	}
	if (st || memcmp((uint8_t *)r2 + VRING_HDR_SIZE + 9ull * VRING_DATA_SIZE, buf, len)) {
		printf("good read: WRONG (status %d)\n", st);
		bad++;
	} else
		printf("good read: same as the call's\n");
	munmap(r2, VRING_SIZE);
	close(fd);
	close(bell);
	return bad ? 1 : 0;
}

/* rings DISK N: N read-only handles on one channel, a read ring asked for
 * each: "rings K" (how many were given), the first refusal's message,
 * then, after the first handle is closed, whether the last refused handle
 * gets one now ("again: ring" / "again: refused"). The rings stay mapped
 * by nobody: the memfds are closed, the provider keeps them. */
int client_rings(scm_channel *ch, const char *disk, long n)
{
	uint64_t hs[64];
	long got = 0, refused = -1;
	scm_error *e = NULL;
	if (n < 1 || n > 64)
		return 2;
	for (long k = 0; k < n; k++) {
		uint64_t bsz, vs, sec, size;
		int bfd, fd, bell;
		bool ro;
		int r = scm_vdisk_open(ch, disk, true, false, &hs[k], &bfd, &bsz, &vs, &sec, &ro, &e);
		if (r) {
			char *t = scm_error_text(e);
			fprintf(stderr, "open %ld: %s\n", k, t ? t : strerror(-r));
			free(t);
			scm_error_free(e);
			return 1;
		}
		close(bfd);
		r = scm_vdisk_ring(ch, hs[k], &fd, &bell, &size, &e);
		if (r == 0) {
			got++;
			close(fd);
			close(bell);
			continue;
		}
		if (refused < 0) {
			char *t = scm_error_text(e);
			printf("refused: code %d: %s\n", r, t ? t : "");
			free(t);
		}
		scm_error_free(e);
		e = NULL;
		refused = k;
	}
	printf("rings %ld\n", got);
	if (refused >= 0) {
		int fd, bell;
		uint64_t size;
		int r = scm_vdisk_close(ch, hs[0], &e);
		if (r == 0)
			r = scm_vdisk_ring(ch, hs[refused], &fd, &bell, &size, &e);
		printf("again: %s\n", r == 0 ? "ring" : "refused");
		if (r == 0) {
			close(fd);
			close(bell);
		}
		scm_error_free(e);
	}
	fflush(stdout);
	return 0;
}
