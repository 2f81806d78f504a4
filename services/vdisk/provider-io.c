/* provider-io.c: the vdisk provider's disk work (provider.h): checked on
 * the loop, deferred, done on the disk's queue in the worker pool
 * (iopool.c), answered back on the loop. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "provider-jobs.h"
#include "provider-offload.h"

static bool refused_buf(scm_call *call, uint64_t length, uint64_t buffer_offset)
{
	if (length <= BUFFER_SIZE && buffer_offset <= BUFFER_SIZE - length)
		return false;
	fail(call, SCM_VDISK_E_BADRANGE, "buffer_offset %llu + length %llu is past the %u-byte data buffer",
	     (unsigned long long)buffer_offset, (unsigned long long)length, BUFFER_SIZE);
	return true;
}

/* ---- disk work, off the loop -------------------------------------------- */

enum op { OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_FLUSH, OP_TRIM, OP_INFO, OP_CLOSE, OP_DISK_CLOSE,
	   OP_ZERO, OP_EXTENTS };

static const char *op_name(enum op op)
{
	static const char *const names[] = { "read", "write", "readv", "writev", "flush", "trim",
					     "info", "close", "close", "zero", "extents" };
	return names[op];
}

struct job {
	struct iopool_job pj; /* first: the pool hands this back */
	scm_task task;
	scm_call *call;
	struct channel *c;
	struct disk *d;
	enum op op;
	bool rw; /* the handle's mode (flush, close) */
	bool unmap; /* zero: whole blocks may become ZERO blocks */
	uint64_t off, len, boff;
	struct vdisk_extent *ex;
	size_t n_ex, bad;
	int r;
	json_object *info;
	scm_error *err; /* why r < 0, from the engine */
	char nexus[VDISK_PR_NEXUS_MAX]; /* the client, for the reservation check */
};

static void job_fail(struct job *j, int r, scm_error *e)
{
	j->r = r;
	scm_error_free(j->err);
	j->err = e;
}

static json_object *info_json(struct disk *d, bool rw, const struct vhdx_info *in, uint64_t local);

/* extents: runs of data and of zeros through the chain, as [[length,
 * kind], ...] (stubs/idl/vdisk.json); neighbours of one kind are one run. */
#define EXTENTS_MAX 1024
static int extents_json(vhdx *h, uint64_t off, uint64_t len, json_object **ret)
{
	json_object *a = json_object_new_array();
	if (!a)
		return -ENOMEM;
	uint64_t run = 0;
	bool run_data = false;
	size_t n = 0;
	while (len) {
		uint64_t l;
		bool data;
		int r = vhdx_alloc_extent(h, off, len, &l, &data);
		if (r < 0) {
			json_object_put(a);
			return r;
		}
		if (run && data != run_data) {
			json_object *e = json_object_new_array();
			json_object_array_add(e, json_object_new_uint64(run));
			json_object_array_add(e, json_object_new_int(!run_data));
			json_object_array_add(a, e);
			run = 0;
			if (++n == EXTENTS_MAX)
				break;
		}
		run_data = data;
		run += l;
		off += l;
		len -= l;
	}
	if (run) {
		json_object *e = json_object_new_array();
		json_object_array_add(e, json_object_new_uint64(run));
		json_object_array_add(e, json_object_new_int(!run_data));
		json_object_array_add(a, e);
	}
	*ret = a;
	return 0;
}

/* On a worker: what a call of op does to d, for a job of a call and for a
 * served NBD connection's request (provider-nbd.c) alike: the reservation
 * asked again as it runs (a preempt may have come since it was queued),
 * a migrated disk's refusal of writes, an offload token's invalidation,
 * the engine's work, and what a job copying the disk must hear of it. */
int io_work(struct disk *d, enum io_op op, uint8_t *buf, uint64_t off, uint64_t len, bool unmap, bool rw,
	    const char *nexus, scm_error **ret_err)
{
	vhdx *h = d->h;
	bool wr = op == IO_WRITE || op == IO_TRIM || op == IO_ZERO;
	int r = 0;
	*ret_err = NULL;
	if (op != IO_FLUSH && pr_check(d->pr, nexus, wr) < 0)
		return -EBADE;
	/* migrated to an NBD export: the export is the disk; a write here
	 * would be one the destination never sees (the switch-over ran
	 * exclusive on the disk's queue: no write is half on either side) */
	if (d->moved_to && wr) {
		*ret_err = scm_error_new(-EROFS, SCM_HERE, "%s was migrated to %s: it takes no more writes here "
				 "(write to the destination; reads here still work)", d->path, d->moved_to);
		return -EROFS;
	}
	/* before the data changes: an offload copy that checks its token
	 * after this cannot have missed the write (provider-offload.c) */
	if (op == IO_WRITE || op == IO_TRIM)
		offload_touch(d, NULL, 0, off, len);
	switch (op) {
	case IO_READ: r = vhdx_read(h, buf, len, off); break;
	case IO_WRITE: r = vhdx_write(h, buf, len, off); break;
	case IO_TRIM: r = vhdx_trim(h, len, off); break;
	case IO_ZERO: r = vhdx_write_zeroes(h, len, off, unmap); break;
	case IO_FLUSH:
		r = rw ? vhdx_flush(h) : 0;
		/* a mirror migration's destination holds what was promised too */
		if (r >= 0 && rw)
			r = bjob_flushed(d->bjob_io);
		/* after a migration's switch-over: its commit point durable
		 * before any flush on the new file is answered */
		if (r >= 0 && (r = mig_commit_sync(d)) < 0) {
			*ret_err = scm_error_new(r, SCM_HERE, "fsync of the migrated disk's directory: %s", strerror(-r));
			return r;
		}
		break;
	}
	if (r < 0) {
		*ret_err = vhdx_error(h);
		/* a failed write may have changed part of its range: copied again */
		if (d->bjob_io && wr)
			bjob_dirty(d->bjob_io, off, len);
		return r;
	}
	/* a job copying the disk copies it again, or (a mirror migration) the
	 * write goes to its destination too, before the client hears of it */
	struct bjob *b = d->bjob_io;
	if (b && op == IO_WRITE)
		bjob_written(b, BW_WRITE, buf, off, len, false);
	else if (b && op == IO_ZERO)
		bjob_written(b, BW_ZERO, NULL, off, len, unmap);
	else if (b && op == IO_TRIM)
		bjob_written(b, BW_TRIM, NULL, off, len, false);
	return 0;
}

/* On a worker: the engine calls, nothing else. */
static void job_run(struct iopool_job *pj)
{
	struct job *j = (struct job *)pj;
	vhdx *h = j->d->h;
	int r = 0;
	bool reads = j->op == OP_READ || j->op == OP_READV || j->op == OP_INFO || j->op == OP_EXTENTS;
	if (reads && scm_call_cancelled(j->call)) {
		j->r = -ECANCELED; /* nobody waits for a read any more */
		return;
	}
	static const int simple[] = { [OP_READ] = IO_READ + 1, [OP_WRITE] = IO_WRITE + 1, [OP_FLUSH] = IO_FLUSH + 1,
				      [OP_CLOSE] = IO_FLUSH + 1, [OP_TRIM] = IO_TRIM + 1, [OP_ZERO] = IO_ZERO + 1,
				      [OP_EXTENTS] = 0 };
	if (simple[j->op]) {
		scm_error *e = NULL;
		r = io_work(j->d, (enum io_op)(simple[j->op] - 1), j->c ? j->c->buf + j->boff : NULL, j->off, j->len,
			    j->unmap, j->rw, j->nexus, &e);
		if (r < 0)
			job_fail(j, r, e);
		return;
	}
	if (j->op == OP_WRITEV || j->op == OP_READV || j->op == OP_EXTENTS) {
		if (pr_check(j->d->pr, j->nexus, j->op == OP_WRITEV) < 0) {
			j->r = -EBADE;
			return;
		}
	}
	if (j->d->moved_to && j->op == OP_WRITEV) {
		job_fail(j, -EROFS, scm_error_new(-EROFS, SCM_HERE, "%s was migrated to %s: it takes no more writes "
						  "here (write to the destination; reads here still work)",
						  j->d->path, j->d->moved_to));
		return;
	}
	if (j->op == OP_WRITEV)
		offload_touch(j->d, j->ex, j->n_ex, j->off, j->len);
	switch (j->op) {
	case OP_READV:
	case OP_WRITEV:
		for (size_t i = 0; i < j->n_ex && r >= 0; i++) {
			const struct vdisk_extent *e = &j->ex[i];
			r = j->op == OP_WRITEV ? vhdx_write(h, j->c->buf + e->boff, e->len, e->off)
					       : vhdx_read(h, j->c->buf + e->boff, e->len, e->off);
			j->bad = i;
		}
		break;
	case OP_EXTENTS:
		r = extents_json(h, j->off, j->len, &j->info);
		break;
	case OP_DISK_CLOSE:
		r = vhdx_close_checked(h);
		if (r >= 0)
			r = mig_commit_sync(j->d);
		j->d->h = NULL;
		if (r < 0)
			job_fail(j, r, scm_error_new(r, SCM_HERE,
						     "closing the disk failed: the last metadata update may be lost"));
		return;
	case OP_INFO: {
		struct vhdx_info in;
		uint64_t local = 0;
		r = vhdx_get_info(h, &in);
		if (r >= 0 && in.differencing)
			r = vhdx_local_bytes(h, &local);
		/* built here: the chain strings belong to the engine handle */
		if (r >= 0 && !(j->info = info_json(j->d, j->rw, &in, local)))
			r = -ENOMEM;
		break;
	}
	default:
		break; /* the simple ones, above */
	}
	if (r < 0) {
		job_fail(j, r, vhdx_error(h));
		if (j->d->bjob_io && j->op == OP_WRITEV)
			for (size_t i = 0; i < j->n_ex; i++)
				bjob_dirty(j->d->bjob_io, j->ex[i].off, j->ex[i].len);
		return;
	}
	struct bjob *b = j->d->bjob_io;
	if (b && j->op == OP_WRITEV)
		for (size_t i = 0; i < j->n_ex; i++)
			bjob_written(b, BW_WRITE, j->c->buf + j->ex[i].boff, j->ex[i].off, j->ex[i].len, false);
}

static void job_done(struct iopool_job *pj)
{
	struct job *j = (struct job *)pj;
	scm_provider_post(provider, &j->task);
}

/* On the loop: the reply, then the job lets go of its channel and disk. */
static void job_finish(scm_task *t)
{
	struct job *j = (struct job *)((char *)t - offsetof(struct job, task));
	scm_call *call = j->call;
	if (j->op == OP_DISK_CLOSE) {
		if (call && j->r < 0) /* a client's close rode on it */
			fail_chain(call, SCM_VDISK_E_IO, TAKE_PTR(j->err), "close");
		else if (call)
			scm_vdisk_close_reply(call);
		disk_free(j->d);
		scm_error_free(j->err);
		free(j);
		return;
	}
	if (j->op == OP_CLOSE && j->r >= 0) {
		/* the last user's close answers once the disk is closed */
		j->c->jobs--;
		channel_put(j->c);
		j->d->jobs--;
		struct job *cj = disk_release(j->d, j->rw);
		if (cj)
			cj->call = call;
		else
			scm_vdisk_close_reply(call);
		scm_error_free(j->err);
		free(j);
		return;
	}
	int code = j->r == -EINVAL ? SCM_VDISK_E_BADRANGE : SCM_VDISK_E_IO;
	if (j->r == -ECANCELED)
		scm_call_reply_error(call, SCM_E_INTERNAL, "cancelled"); /* frees it */
	else if (j->r == -EBADE)
		fail(call, SCM_VDISK_E_RESERVATIONCONFLICT,
		     "%s: reservation conflict: %s lost its access while the call was queued (preempted)",
		     op_name(j->op), j->nexus);
	else if (j->r < 0 && (j->op == OP_READV || j->op == OP_WRITEV))
		fail_chain(call, code, TAKE_PTR(j->err), "extents[%zu]", j->bad);
	else if (j->r < 0)
		fail_chain(call, j->op == OP_FLUSH || j->op == OP_CLOSE ? SCM_VDISK_E_IO : code, TAKE_PTR(j->err),
			   "%s", op_name(j->op));
	else
		switch (j->op) {
		case OP_READ: scm_vdisk_read_reply(call); break;
		case OP_WRITE: scm_vdisk_write_reply(call); break;
		case OP_READV: scm_vdisk_readv_reply(call); break;
		case OP_WRITEV: scm_vdisk_writev_reply(call); break;
		case OP_FLUSH: scm_vdisk_flush_reply(call); break;
		case OP_TRIM: scm_vdisk_trim_reply(call); break;
		case OP_ZERO: scm_vdisk_zero_reply(call); break;
		case OP_EXTENTS: scm_vdisk_extents_reply(call, j->info); break;
		case OP_INFO: scm_vdisk_info_reply(call, j->info); break;
		case OP_CLOSE: case OP_DISK_CLOSE: break; /* above */
		}
	json_object_put(j->info);
	j->c->jobs--;
	channel_put(j->c);
	j->d->jobs--;
	if (j->op == OP_CLOSE)
		disk_release(j->d, j->rw); /* the handle let go of it when close was called */
	else
		disk_put(j->d);
	free(j->ex);
	scm_error_free(j->err);
	free(j);
}

/* Defers the call and queues the work on the disk's queue. On failure the
 * call has its error and the job is freed. */
static int submit(scm_call *call, struct job *j)
{
	j->call = scm_call_defer(call);
	if (!j->call) { /* over the channel's quota: answered "busy" */
		free(j->ex);
		scm_error_free(j->err);
		free(j);
		return 0;
	}
	j->pj.run = job_run;
	j->pj.done = job_done;
	j->pj.shared = (j->op == OP_READ || j->op == OP_READV || j->op == OP_INFO || j->op == OP_EXTENTS) &&
		       j->d->parallel_reads;
	j->task.fn = job_finish;
	j->c->jobs++;
	j->d->jobs++;
	iopool_submit(&j->d->q, &j->pj);
	return 0;
}

struct job *disk_close_submit(struct disk *d)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j) { /* close it here then */
		vhdx_close(d->h);
		disk_free(d);
		return NULL;
	}
	j->d = d;
	j->op = OP_DISK_CLOSE;
	j->pj.run = job_run;
	j->pj.done = job_done;
	j->task.fn = job_finish;
	iopool_submit(&d->q, &j->pj);
	return j;
}

static struct job *job_new(scm_call *call, struct handle *h, enum op op)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		fail(call, SCM_E_INTERNAL, "out of memory");
		return NULL;
	}
	j->c = scm_call_channel_data(call);
	j->d = h->d;
	pr_nexus(call, j->nexus);
	j->rw = h->rw;
	j->op = op;
	return j;
}

static int do_rw(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length,
		 uint64_t buffer_offset, bool wr)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (wr && !h->rw)
		return fail(call, SCM_VDISK_E_READONLY, "handle %llu is read-only", (unsigned long long)handle);
	if (refused_buf(call, length, buffer_offset))
		return 0;
	if (pr_refused(call, h->d->pr, wr))
		return 0;
	/* A small read of what the page cache holds costs less than the trip
	 * to a worker and back: done here when nothing on the disk's queue
	 * comes before it. Anything that would wait for the storage (-EAGAIN)
	 * or is large goes to the pool. */
	if (!wr && length <= INLINE_READ_MAX && h->d->parallel_reads && iopool_shared_now(&h->d->q)) {
		struct channel *c = scm_call_channel_data(call);
		int r = vhdx_read_nowait(h->d->h, c->buf + buffer_offset, length, offset);
		if (r == -EINVAL)
			return fail_chain(call, SCM_VDISK_E_BADRANGE, vhdx_error(h->d->h), "read");
		if (r >= 0)
			return scm_vdisk_read_reply(call);
	}
	struct job *j = job_new(call, h, wr ? OP_WRITE : OP_READ);
	if (!j)
		return 0;
	j->off = offset;
	j->len = length;
	j->boff = buffer_offset;
	return submit(call, j);
}

int do_read(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length,
	    uint64_t buffer_offset, void *ud)
{
	return do_rw(call, handle, offset, length, buffer_offset, false);
}

int do_write(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length,
	     uint64_t buffer_offset, void *ud)
{
	return do_rw(call, handle, offset, length, buffer_offset, true);
}

/* readv/writev: one call does what n read/write calls would, at the cost
 * of one round trip; the extents are checked whole first (extents.c), on
 * the loop, and the job gets its own copy of them. */
static int do_vector(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, bool wr)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (wr && !h->rw)
		return fail(call, SCM_VDISK_E_READONLY, "handle %llu is read-only", (unsigned long long)handle);
	if (pr_refused(call, h->d->pr, wr))
		return 0;
	static struct vdisk_extent ex[VDISK_EXTENTS_MAX]; /* parsed on the loop's thread only */
	size_t n;
	scm_error *why = NULL;
	if (vdisk_extents_parse(bin, bin_len, h->d->virtual_size, h->d->sector_size, BUFFER_SIZE, ex, &n,
				&why) < 0)
		return fail_chain(call, SCM_VDISK_E_BADRANGE, why, "%s", wr ? "writev" : "readv");
	/* as read: a batch the page cache holds, small enough, is done here
	 * (the NBD export's plugin sends the reads that queued up together) */
	if (!wr && h->d->parallel_reads && iopool_shared_now(&h->d->q)) {
		struct channel *c = scm_call_channel_data(call);
		uint64_t total = 0;
		size_t i;
		for (i = 0; i < n; i++)
			total += ex[i].len;
		for (i = 0; total <= INLINE_READ_MAX && i < n; i++)
			if (vhdx_read_nowait(h->d->h, c->buf + ex[i].boff, ex[i].len, ex[i].off) < 0)
				break;
		if (total <= INLINE_READ_MAX && i == n)
			return scm_vdisk_readv_reply(call);
	}
	struct job *j = job_new(call, h, wr ? OP_WRITEV : OP_READV);
	if (!j)
		return 0;
	j->ex = malloc(n * sizeof *ex);
	if (!j->ex) {
		scm_error_free(j->err);
		free(j);
		return fail(call, SCM_E_INTERNAL, "out of memory");
	}
	memcpy(j->ex, ex, n * sizeof *ex);
	j->n_ex = n;
	return submit(call, j);
}

int do_readv(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, void *ud)
{
	return do_vector(call, handle, bin, bin_len, false);
}

int do_writev(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, void *ud)
{
	return do_vector(call, handle, bin, bin_len, true);
}

/* A flush on a read-only handle still goes through the queue: it answers
 * after the writes queued before it, which is what a caller waits for. */
int do_flush(scm_call *call, uint64_t handle, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	struct job *j = job_new(call, h, OP_FLUSH);
	return j ? submit(call, j) : 0;
}

/* trim and zero: a write's checks (a read-write handle, the reservation),
 * then a job for the range */
static int range_write_job(scm_call *call, uint64_t handle, enum op op, uint64_t offset, uint64_t length, bool unmap)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (!h->rw)
		return fail(call, SCM_VDISK_E_READONLY, "handle %llu is read-only", (unsigned long long)handle);
	if (pr_refused(call, h->d->pr, true))
		return 0;
	struct job *j = job_new(call, h, op);
	if (!j)
		return 0;
	j->off = offset;
	j->len = length;
	j->unmap = unmap;
	return submit(call, j);
}

int do_trim(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, void *ud)
{
	return range_write_job(call, handle, OP_TRIM, offset, length, false);
}

/* zero and extents: what an NBD export (nbdkit-scm-vdisk.c) asks besides
 * reads and writes. Ranges are checked by the engine on the worker (a bad
 * one answers BadRange). */
int do_zero(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, bool unmap, void *ud)
{
	return range_write_job(call, handle, OP_ZERO, offset, length, unmap);
}

int do_extents(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (pr_refused(call, h->d->pr, false))
		return 0;
	struct job *j = job_new(call, h, OP_EXTENTS);
	if (!j)
		return 0;
	j->off = offset;
	j->len = length;
	return submit(call, j);
}

static json_object *info_json(struct disk *d, bool rw, const struct vhdx_info *in, uint64_t local)
{
	json_object *j = json_object_new_object(), *blocks = json_object_new_object(),
		    *chain = json_object_new_array();
	if (!j || !blocks || !chain) {
		json_object_put(j);
		json_object_put(blocks);
		json_object_put(chain);
		return NULL;
	}
	char g[39];
	json_object_object_add(j, "virtual_size", json_object_new_uint64(in->virtual_size));
	json_object_object_add(j, "block_size", json_object_new_uint64(in->block_size));
	json_object_object_add(j, "logical_sector_size", json_object_new_uint64(in->logical_sector_size));
	json_object_object_add(j, "physical_sector_size", json_object_new_uint64(in->physical_sector_size));
	json_object_object_add(j, "type", json_object_new_string(in->differencing ? "differencing"
								 : in->fixed     ? "fixed"
										 : "dynamic"));
	json_object_object_add(j, "read_only", json_object_new_boolean(!rw));
	json_object_object_add(j, "shared", json_object_new_boolean(d->shared));
	json_object_object_add(j, "file_size", json_object_new_uint64(in->file_size));
	json_object_object_add(j, "disk_usage", json_object_new_uint64(in->disk_usage));
	static const unsigned states[] = { 0, 1, 2, 3, 6, 7 };
	for (size_t i = 0; i < ELEMENTSOF(states); i++)
		json_object_object_add(blocks, vhdx_state_name(states[i]),
				       json_object_new_uint64(in->blocks[states[i]]));
	json_object_object_add(j, "blocks", blocks);
	for (size_t i = 0; i < in->chain_len; i++)
		json_object_array_add(chain, json_object_new_string(in->chain[i]));
	json_object_object_add(j, "chain", chain);
	vhdx_guid_format(&in->data_write_guid, g);
	json_object_object_add(j, "data_write_guid", json_object_new_string(g));
	if (in->parent_linkage[0])
		json_object_object_add(j, "parent_linkage", json_object_new_string(in->parent_linkage));
	if (in->remote_parent)
		json_object_object_add(j, "remote_parent", json_object_new_string(in->remote_parent));
	if (in->differencing)
		json_object_object_add(j, "local_bytes", json_object_new_uint64(local));
	return j;
}

int do_info(scm_call *call, uint64_t handle, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	struct job *j = job_new(call, h, OP_INFO);
	return j ? submit(call, j) : 0;
}

/* The handle is gone at once (later calls on it get "no handle"); the
 * flush that commits a writer's data runs on the disk's queue, and the
 * disk is released when it is done. */
int do_close(scm_call *call, uint64_t handle, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	nbd_stop_handle(h); /* before the handle goes: they serve it */
	ring_stop(h);
	account_release(h->acct, h->bytes);
	offload_drop_handle(scm_call_channel_data(call), handle);
	struct job *j = job_new(call, h, OP_CLOSE);
	if (!j)
		return 0;
	struct disk *d = h->d;
	j->call = scm_call_defer(call);
	if (!j->call) { /* over the quota, answered "busy": the handle stays */
		scm_error_free(j->err);
		free(j);
		return 0;
	}
	*h = (struct handle){ 0 };
	rec_checkpoint();
	j->pj.run = job_run;
	j->pj.done = job_done;
	j->task.fn = job_finish;
	j->c->jobs++;
	d->jobs++;
	iopool_submit(&d->q, &j->pj);
	return 0;
}

