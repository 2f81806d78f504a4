/* client-bench.c: vdisk-client bench, the vdisk service measured from a
 * client: one call per operation (what a naive client gets), calls
 * pipelined (several in flight against different parts of the channel's
 * buffer: the provider never waits for the client), and batches of 4 KiB
 * extents in one readv/writev call. Each pattern runs for 1.5 s. */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "scm/vdisk-client.h"

#define RUN_S 1.5

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

struct pipeline {
	unsigned inflight;
	int err;
};

static void on_reply(scm_channel *ch, scm_message *reply, const scm_error *err, void *userdata)
{
	struct pipeline *p = userdata;
	p->inflight--;
	if (err && !p->err)
		p->err = err->code ? err->code : -EIO;
}

/* Sequential 1 MiB reads or writes with qd calls in flight, each on its own
 * 1 MiB of the buffer. Writes to one disk complete in order (they run one
 * at a time on its queue), so the slot a new call uses is the one whose
 * call just completed; reads may complete out of order and then share a
 * slot, which only a benchmark may do (rand_qd() tracks its slots). */
static int seq_pipelined(scm_channel *ch, uint64_t h, uint64_t vsize, bool wr, unsigned qd,
			 double *ret_mibs, scm_error **ret_err)
{
	struct pipeline p = { 0, 0 };
	uint64_t off = 0, ops = 0;
	double t0 = now(), t1 = t0;
	while (t1 - t0 < RUN_S || p.inflight) {
		while (p.inflight < qd && t1 - t0 < RUN_S) {
			json_object *a = json_object_new_object();
			json_object_object_add(a, "handle", json_object_new_uint64(h));
			json_object_object_add(a, "offset", json_object_new_uint64(off));
			json_object_object_add(a, "length", json_object_new_uint64(1 << 20));
			json_object_object_add(a, "buffer_offset", json_object_new_uint64((ops % qd) << 20));
			int r = scm_call_async(ch, wr ? SCM_VDISK_WRITE : SCM_VDISK_READ, a, NULL, 0, NULL, 0,
					       on_reply, &p, ret_err);
			json_object_put(a);
			if (r)
				return r;
			p.inflight++;
			ops++;
			off = (off + (1 << 20)) % vsize;
		}
		struct pollfd pfd = { scm_channel_fd(ch), POLLIN, 0 };
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
		int r = scm_channel_dispatch(ch, ret_err);
		if (r)
			return r;
		if (p.err)
			return p.err;
		t1 = now();
	}
	*ret_mibs = ops / (t1 - t0);
	return 0;
}

/* Random 4 KiB reads or writes, batch extents per call (1: read/write). */
static int rand_batched(scm_channel *ch, uint64_t h, uint64_t vsize, bool wr, unsigned batch,
			double *ret_iops, scm_error **ret_err)
{
	uint8_t ext[1024 * 24];
	uint64_t ops = 0;
	double t0 = now(), t1;
	do {
		int r;
		if (batch == 1) {
			uint64_t off = next_rand() % (vsize / 4096) * 4096;
			r = wr ? scm_vdisk_write(ch, h, off, 4096, 0, ret_err)
			       : scm_vdisk_read(ch, h, off, 4096, 0, ret_err);
		} else {
			for (unsigned i = 0; i < batch; i++) {
				uint64_t v[3] = { next_rand() % (vsize / 4096) * 4096, 4096, (uint64_t)i * 4096 };
				for (int k = 0; k < 3; k++)
					for (int b = 0; b < 8; b++)
						ext[i * 24 + k * 8 + b] = (uint8_t)(v[k] >> (8 * b));
			}
			r = wr ? scm_vdisk_writev(ch, h, ext, batch * 24, ret_err)
			       : scm_vdisk_readv(ch, h, ext, batch * 24, ret_err);
		}
		if (r)
			return r;
		ops += batch;
		t1 = now();
	} while (t1 - t0 < RUN_S);
	*ret_iops = ops / (t1 - t0);
	return 0;
}

int client_bench(scm_channel *ch, uint64_t h, uint64_t vsize, scm_error **ret_err)
{
	static const struct {
		const char *name, *raw;
		bool wr, rnd;
		unsigned n; /* queue depth (seq) or batch (rand) */
	} pat[] = {
		{ "seq-read 1M", "seq-read 1M", false, false, 1 },
		{ "seq-write 1M", "seq-write 1M", true, false, 1 },
		{ "seq-read 1M qd4 (pipelined)", "seq-read 1M", false, false, 4 },
		{ "seq-write 1M qd4 (pipelined)", "seq-write 1M", true, false, 4 },
		{ "rand-read 4K qd1", "rand-read 4K qd1", false, true, 1 },
		{ "rand-write 4K qd1", "rand-write 4K qd1", true, true, 1 },
		{ "rand-read 4K batch 64 (readv)", "rand-read 4K qd1", false, true, 64 },
		{ "rand-write 4K batch 64 (writev)", "rand-write 4K qd1", true, true, 64 },
		{ "rand-read 4K batch 1024 (readv)", "rand-read 4K qd1", false, true, 1024 },
	};
	for (size_t i = 0; i < sizeof pat / sizeof pat[0]; i++) {
		double v = 0;
		int r = pat[i].rnd ? rand_batched(ch, h, vsize, pat[i].wr, pat[i].n, &v, ret_err)
				   : seq_pipelined(ch, h, vsize, pat[i].wr, pat[i].n, &v, ret_err);
		if (!r && pat[i].wr)
			r = scm_vdisk_flush(ch, h, ret_err);
		if (r)
			return r;
		printf("%s\t%.1f\t%s\t%s\n", pat[i].name, v, pat[i].rnd ? "IOPS" : "MiB/s", pat[i].raw);
		fflush(stdout);
	}
	return 0;
}

/* ---- bench-read: the lines vdisk-nbd-bench compares ---------------------- */

struct slot_ref {
	struct pipeline *p;
	unsigned slot;
	unsigned *free_slots, *n_free;
};

static void on_slot(scm_channel *ch, scm_message *reply, const scm_error *err, void *userdata)
{
	struct slot_ref *s = userdata;
	on_reply(ch, reply, err, s->p);
	s->free_slots[(*s->n_free)++] = s->slot; /* replies may come in any order */
}

/* Random 4 KiB reads with qd calls in flight on the one channel, each in
 * its own 4 KiB of the buffer. */
static int rand_qd(scm_channel *ch, uint64_t h, uint64_t vsize, unsigned qd, double *ret_iops,
		   scm_error **ret_err)
{
	struct pipeline p = { 0, 0 };
	struct slot_ref refs[256];
	unsigned free_slots[256], n_free = 0;
	uint64_t ops = 0;
	for (unsigned i = 0; i < qd; i++) {
		refs[i] = (struct slot_ref){ &p, i, free_slots, &n_free };
		free_slots[n_free++] = i;
	}
	double t0 = now(), t1 = t0;
	while (t1 - t0 < RUN_S || p.inflight) {
		while (n_free && t1 - t0 < RUN_S) {
			unsigned slot = free_slots[--n_free];
			json_object *a = json_object_new_object();
			json_object_object_add(a, "handle", json_object_new_uint64(h));
			json_object_object_add(a, "offset", json_object_new_uint64(next_rand() % (vsize / 4096) * 4096));
			json_object_object_add(a, "length", json_object_new_uint64(4096));
			json_object_object_add(a, "buffer_offset", json_object_new_uint64((uint64_t)slot * 4096));
			int r = scm_call_async(ch, SCM_VDISK_READ, a, NULL, 0, NULL, 0, on_slot, &refs[slot], ret_err);
			json_object_put(a);
			if (r)
				return r;
			p.inflight++;
			ops++;
		}
		struct pollfd pfd = { scm_channel_fd(ch), POLLIN, 0 };
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
		int r = scm_channel_dispatch(ch, ret_err);
		if (r)
			return r;
		if (p.err)
			return p.err;
		t1 = now();
	}
	*ret_iops = ops / (t1 - t0);
	return 0;
}

int client_bench_read(scm_channel *ch, uint64_t h, uint64_t vsize, scm_error **ret_err)
{
	double v;
	int r;
	/* warm: the whole disk once, as the other two sides do */
	for (uint64_t off = 0; off < vsize; off += 4u << 20)
		if ((r = scm_vdisk_read(ch, h, off, vsize - off < (4u << 20) ? vsize - off : 4u << 20, 0, ret_err)))
			return r;
	if ((r = rand_batched(ch, h, vsize, false, 1, &v, ret_err)))
		return r;
	printf("provider rand-read-4k-qd1 %.1f\n", v);
	fflush(stdout);
	if ((r = rand_qd(ch, h, vsize, 32, &v, ret_err)))
		return r;
	printf("provider rand-read-4k-qd32 %.1f\n", v);
	fflush(stdout);
	/* the same 32 reads in flight, as one readv call of 32 extents */
	if ((r = rand_batched(ch, h, vsize, false, 32, &v, ret_err)))
		return r;
	printf("provider rand-read-4k-readv32 %.1f\n", v);
	fflush(stdout);
	if ((r = seq_pipelined(ch, h, vsize, false, 1, &v, ret_err)))
		return r;
	printf("provider seq-read-1m %.1f\n", v);
	fflush(stdout);
	return 0;
}
