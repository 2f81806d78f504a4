/* provider-offload-copy.c: offload copies, the destination side
 * (offload_write; provider-offload.h, docs/vdisk.md "Offload copy").
 *
 * 1. On the loop: the handle must be writable; the token is redeemed
 *    through scmd (token.redeem on the control connection), which checks
 *    it, forgets it (one use) and hands us a channel to the provider that
 *    issued it, for that token only.
 * 2. For a destination without parent, the whole blocks the range covers
 *    get space reserved past every block of the file (an exclusive job on
 *    the disk's queue: vhdx_reserve), which no block table entry points
 *    at, so no reader sees it. The partial blocks at the ends, and every
 *    byte of a differencing destination, go to an unnamed staging file
 *    (O_TMPFILE) beside the disk instead.
 * 3. On a thread of its own (provider-offload-stage.c; it waits on the
 *    source, which may be this very provider, whose workers must stay
 *    free): the range is copied there. File mode: reflink (FICLONERANGE)
 *    or copy_file_range from the source's read-only fd, so the bytes
 *    never enter a process; channel
 *    mode: offload_fetch into the token channel's buffer. Zero ranges are
 *    not copied. Then offload_check: the source says whether a write met
 *    the range since offload_read. A failed check ends it here: the
 *    reserved space is punched, the destination untouched.
 * 4. On the destination disk's queue, alone: the block table adopts the
 *    reserved blocks (vhdx_adopt: through the log, their old space
 *    punched), the ends are written from the staging file, zero ranges
 *    trimmed (so they stay unallocated); then the client's reply. So the
 *    destination never holds half-old data: either the whole range as it
 *    was at offload_read, or nothing new. */
#include <endian.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "provider-offload-copy.h"
#include "scm/vdisk-client.h"
#include "scm-internal/error.h"

static unsigned copies; /* running, on the loop */
struct ocopy *ocopies;
static uint64_t next_job = OFFLOAD_JOB_ID0;
unsigned ocopy_step_us;

static void ocopy_end(struct ocopy *o)
{
	for (struct ocopy **p = &ocopies; *p; p = &(*p)->next)
		if (*p == o) {
			*p = o->next;
			break;
		}
	free(o->caller);
	free(o->source);
	safe_close(o->chfd);
	safe_close(o->tmp);
	if (o->rfd >= 0 && !o->adopted) /* never seen by anyone: give it back */
		fallocate(o->rfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)o->res, (off_t)(o->b - o->a));
	safe_close(o->rfd);
	o->c->jobs--;
	channel_put(o->c);
	o->d->jobs--;
	disk_put(o->d);
	copies--;
	scm_error_free(o->err);
	free(o->ex);
	free(o);
}

void ocopy_fail(struct ocopy *o, int code, scm_error *e, const char *what)
{
	if (e)
		fail_chain(o->call, code, e, "offload_write: %s", what);
	else
		fail(o->call, code, "offload_write: %s", what);
	ocopy_end(o);
}

/* Step 3, on a worker, alone on the destination's queue. */
static void commit_run(struct iopool_job *pj)
{
	struct ocopy *o = (struct ocopy *)pj;
	vhdx *h = o->d->h;
	uint8_t *buf = NULL;
	int r = 0;
	if (!o->d->rw || pr_check(o->d->pr, o->nexus, true) < 0) {
		o->code = o->d->rw ? SCM_VDISK_E_RESERVATIONCONFLICT : SCM_VDISK_E_READONLY;
		o->err = scm_error_new(o->code, SCM_HERE, o->d->rw ? "a reservation refuses the write now"
								   : "the destination is no longer open for writing");
		return;
	}
	if (o->d->moved_to) { /* switched over to an NBD export during the copy (as job_run refuses) */
		o->code = SCM_VDISK_E_READONLY;
		o->err = scm_error_new(-EROFS, SCM_HERE, "%s was migrated to %s: it takes no more writes here "
				       "(write to the destination; reads here still work)", o->d->path, o->d->moved_to);
		return;
	}
	if (o->rfd >= 0 && h != o->rh) { /* a job replaced the disk's file meanwhile: that space is not its */
		o->code = SCM_VDISK_E_IO;
		o->err = scm_error_new(-ESTALE, SCM_HERE, "the destination's file was replaced by a job during the copy");
		return;
	}
	/* before anything changes, as for any write */
	offload_touch(o->d, NULL, 0, o->dst, o->length); /* tokens of the destination's range */
	if (o->d->bjob_io)
		bjob_dirty(o->d->bjob_io, o->dst, o->length);
	if (o->rfd >= 0) { /* the whole blocks: adopt what was copied out of sight */
		if ((r = vhdx_adopt(h, o->a, o->b - o->a, o->res)) < 0) {
			o->code = SCM_VDISK_E_IO;
			o->err = vhdx_error(h);
			return;
		}
		o->adopted = true;
	}
	struct vhdx_info in;
	bool parent = vhdx_parent(h) != NULL;
	uint64_t bs = parent && vhdx_get_info(h, &in) == 0 ? in.block_size : 0;
	for (size_t i = 0; i < o->n_ex && r >= 0; i++) {
		uint64_t off = o->ex[i][0], n = o->ex[i][1], at = o->dst + off;
		if (o->ex[i][2] && !parent) { /* reads zero, and its blocks go */
			r = vhdx_trim(h, n, at);
			continue;
		}
		if (o->ex[i][2] && bs) { /* whole blocks ZERO, the edges written */
			uint64_t a = (at + bs - 1) / bs * bs, b = (at + n) / bs * bs;
			if (a < b && (r = vhdx_zero_blocks(h, b - a, a)) < 0)
				break;
			if (a >= b)
				a = b = at + n;
			if (!buf && !(buf = calloc(1, COPY_CHUNK))) {
				r = -ENOMEM;
				break;
			}
			for (uint64_t x = at; x < a && r >= 0; x += COPY_CHUNK)
				r = vhdx_write(h, buf, a - x < COPY_CHUNK ? a - x : COPY_CHUNK, x);
			for (uint64_t x = b; x < at + n && r >= 0; x += COPY_CHUNK)
				r = vhdx_write(h, buf, at + n - x < COPY_CHUNK ? at + n - x : COPY_CHUNK, x);
			continue;
		}
		if (!o->ex[i][2] && !parent) { /* in the kernel, from the staging file; not the adopted blocks */
			uint64_t e = at + n;
			if (o->rfd < 0)
				r = vhdx_write_fd(h, o->tmp, off, n, at);
			if (o->rfd >= 0 && at < o->a)
				r = vhdx_write_fd(h, o->tmp, off, (e < o->a ? e : o->a) - at, at);
			if (o->rfd >= 0 && e > o->b && r >= 0) {
				uint64_t s0 = at > o->b ? at : o->b;
				r = vhdx_write_fd(h, o->tmp, off + (s0 - at), e - s0, s0);
			}
			continue;
		}
		if (!buf && !(buf = calloc(1, COPY_CHUNK))) {
			r = -ENOMEM;
			break;
		}
		for (uint64_t k = 0; k < n && r >= 0; k += COPY_CHUNK) {
			uint64_t m = n - k < COPY_CHUNK ? n - k : COPY_CHUNK;
			if (o->ex[i][2])
				memset(buf, 0, m);
			else if (pread(o->tmp, buf, m, (off_t)(off + k)) != (ssize_t)m) {
				r = -EIO;
				o->err = scm_error_new(r, SCM_HERE, "reading the staged copy back: %m");
				break;
			}
			r = vhdx_write(h, buf, m, at + k);
		}
	}
	free(buf);
	if (r < 0) {
		o->code = SCM_VDISK_E_IO;
		if (!o->err)
			o->err = vhdx_error(h);
	}
}

static void commit_done(struct iopool_job *pj)
{
	scm_provider_post(provider, &((struct ocopy *)pj)->task);
}

static void ocopy_finish(scm_task *task);

static void ocopy_reply(struct ocopy *o)
{
	json_object *res = json_object_new_object();
	json_object_object_add(res, "length", json_object_new_uint64(o->length));
	json_object_object_add(res, "data", json_object_new_uint64(o->data));
	json_object_object_add(res, "zero", json_object_new_uint64(o->zero));
	json_object_object_add(res, "mode", json_object_new_string(o->mode ? o->mode : "file"));
	json_object_object_add(res, "staged_by", json_object_new_string(o->how ? o->how : "none"));
	scm_vdisk_offload_write_reply(o->call, res);
	json_object_put(res);
	ocopy_end(o);
}

/* On the loop, after staging (then submits the commit) and after it. */
static void ocopy_finish(scm_task *task)
{
	struct ocopy *o = (struct ocopy *)((char *)task - offsetof(struct ocopy, task));
	if (!o->code && !o->pj.run && !pool_running) { /* shutting down */
		o->code = SCM_E_INTERNAL;
		o->err = scm_error_new(-ECANCELED, SCM_HERE, "the provider is stopping");
	}
	if (!o->code && !o->pj.run && scm_call_cancelled(o->call)) { /* nobody waits: write nothing */
		o->code = SCM_E_INTERNAL;
		o->err = scm_error_new(-ECANCELED, SCM_HERE, "the client left");
	}
	if (o->code) {
		ocopy_fail(o, o->code, TAKE_PTR(o->err),
			   o->code == SCM_VDISK_E_TOKENINVALID || o->code == SCM_VDISK_E_JOBSTATE ? "the destination is unchanged"
													  : "the copy failed");
		return;
	}
	if (o->pj.run) { /* committed */
		ocopy_reply(o);
		return;
	}
	o->pj.run = commit_run;
	o->pj.done = commit_done;
	iopool_submit(&o->d->q, &o->pj);
}

/* On a worker, alone on the destination's queue: the space for the whole
 * blocks, and an fd to fill it through. Without it (an error), everything
 * is staged in the staging file instead. */
static void reserve_run(struct iopool_job *pj)
{
	struct ocopy *o = (struct ocopy *)((char *)pj - offsetof(struct ocopy, rpj));
	vhdx *h = o->d->h;
	char p[64];
	snprintf(p, sizeof p, "/proc/self/fd/%d", vhdx_fd(h));
	if (!o->d->rw || vhdx_reserve(h, o->b - o->a, &o->res) < 0 || (o->rfd = open(p, O_RDWR | O_CLOEXEC)) < 0) {
		o->rfd = -1;
		return;
	}
	o->rh = h;
}

static void reserve_done(struct iopool_job *pj)
{
	struct ocopy *o = (struct ocopy *)((char *)pj - offsetof(struct ocopy, rpj));
	scm_provider_post(provider, &o->rtask);
}

static void reserve_finish(scm_task *t)
{
	struct ocopy *o = (struct ocopy *)((char *)t - offsetof(struct ocopy, rtask));
	if (!pool_running) /* the provider is stopping */
		ocopy_fail(o, SCM_E_INTERNAL, NULL, "the provider is stopping");
	else
		ocopy_stage_start(o);
}

static void redeem_reply(scm_provider *p, scm_message *reply, const scm_error *err, void *userdata)
{
	struct ocopy *o = userdata;
	json_object *v;
	if (err) {
		int code = err->code == SCM_E_NOT_FOUND || err->code == SCM_E_TIMEOUT || err->code == SCM_E_PROVIDER_GONE
				   ? SCM_VDISK_E_TOKENINVALID
				   : err->code;
		ocopy_fail(o, code, scm_error_copy(err), "the token was refused (the destination is unchanged)");
		return;
	}
	o->chfd = scm_message_steal_fd(reply, 0);
	if (json_object_object_get_ex(reply->json, "length", &v))
		o->length = json_object_get_uint64(v);
	if (json_object_object_get_ex(reply->json, "channel", &v))
		o->chan_id = json_object_get_uint64(v);
	if (json_object_object_get_ex(reply->json, "service", &v))
		o->source = strdup(json_object_get_string(v));
	if (o->chfd < 0 || !o->length)
		return ocopy_fail(o, SCM_E_PROTOCOL, NULL, "scmd's answer to token.redeem holds no channel");
	if (o->dst % o->d->sector_size || o->length % o->d->sector_size || o->dst > o->d->virtual_size ||
	    o->length > o->d->virtual_size - o->dst) {
		char msg[200];
		snprintf(msg, sizeof msg, "offset %llu + the token's %llu bytes: not whole %u-byte sectors within the %llu-byte disk",
			 (unsigned long long)o->dst, (unsigned long long)o->length, o->d->sector_size,
			 (unsigned long long)o->d->virtual_size);
		return ocopy_fail(o, SCM_VDISK_E_BADRANGE, NULL, msg);
	}
	/* the staging file: unnamed, beside the disk (the granted directory),
	 * so that a reflink can share blocks with the source's file */
	if (o->c->rootfd >= 0)
		o->tmp = openat(o->c->rootfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	else { /* no granted directory: the client may name any file; the disk's own */
		char dir[PATH_MAX];
		snprintf(dir, sizeof dir, "%s", o->d->path);
		o->tmp = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	}
	if (o->tmp < 0)
		o->tmp = memfd_create("vdisk-offload", MFD_CLOEXEC);
	if (o->tmp < 0 || ftruncate(o->tmp, (off_t)o->length) < 0)
		return ocopy_fail(o, SCM_VDISK_E_IO, scm_error_new(-errno, SCM_HERE, "%m"), "no staging file");
	o->task.fn = ocopy_finish;
	uint64_t bs = vhdx_block_size(o->d->h);
	if (!vhdx_parent(o->d->h) && bs) {
		o->a = (o->dst + bs - 1) / bs * bs;
		o->b = (o->dst + o->length) / bs * bs;
	}
	if (o->b > o->a) { /* reserve first, on the disk's queue: the thread starts after */
		o->rpj.run = reserve_run;
		o->rpj.done = reserve_done;
		o->rtask.fn = reserve_finish;
		iopool_submit(&o->d->q, &o->rpj);
		return;
	}
	ocopy_stage_start(o);
}

int do_offload_write(scm_call *call, uint64_t handle, const char *token, uint64_t offset, void *ud)
{
	const scm_grant *g = scm_call_grant(call);
	if (g && g->token)
		return fail(call, SCM_E_DENIED, "offload_write: a token channel cannot write");
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (!h->rw)
		return fail(call, SCM_VDISK_E_READONLY, "handle %llu is read-only", (unsigned long long)handle);
	if (h->d->moved_to) /* the export is the disk: this file would take a write it never sees */
		return fail(call, SCM_VDISK_E_READONLY, "%s was migrated to %s: it takes no more writes here "
			    "(write to the destination; reads here still work)", h->d->path, h->d->moved_to);
	if (!offload_hex_valid(token))
		return fail(call, SCM_VDISK_E_TOKENINVALID, "offload_write: a token is 128 lower-case hex digits");
	if (pr_refused(call, h->d->pr, true))
		return 0;
	if (copies >= OFFLOAD_COPIES_MAX)
		return fail(call, SCM_E_BUSY, "offload_write: %u copies are running, the limit; try again", copies);
	struct ocopy *o = calloc(1, sizeof *o);
	if (!o)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	*o = (struct ocopy){ .c = scm_call_channel_data(call), .d = h->d, .dst = offset, .chfd = -1, .tmp = -1, .chsock = -1, .rfd = -1,
			     .id = next_job++, .t0 = mono_ns(), .uid = g ? g->uid : (uid_t)-1,
			     .caller = strdup(g && g->caller ? g->caller : "") };
	const char *us = getenv("SCM_VDISK_OFFLOAD_STEP_US");
	ocopy_step_us = us ? (unsigned)strtoul(us, NULL, 10) : 0;
	o->next = ocopies;
	ocopies = o;
	snprintf(o->hex, sizeof o->hex, "%s", token);
	pr_nexus(call, o->nexus);
	json_object *args = json_object_new_object();
	json_object_object_add(args, "op", json_object_new_string("token.redeem"));
	json_object_object_add(args, "channel", json_object_new_uint64(g ? g->channel : 0));
	json_object_object_add(args, "token", json_object_new_string(token));
	if (!(o->call = scm_call_defer(call))) {
		json_object_put(args);
		free(o);
		return 0;
	}
	o->c->jobs++;
	o->d->jobs++;
	copies++;
	scm_error *e = NULL;
	if (scm_provider_control_call(provider, args, redeem_reply, o, &e) != 0)
		ocopy_fail(o, e->code, e, "redeeming the token");
	json_object_put(args);
	return 0;
}

/* ---- as a job ----------------------------------------------------------- */

static bool mine(scm_call *call, const struct ocopy *o)
{
	const scm_grant *g = scm_call_grant(call);
	return g && !g->token && g->uid == o->uid && o->caller && !strcmp(g->caller ? g->caller : "", o->caller);
}

void offload_jobs_json(scm_call *call, json_object *arr)
{
	for (struct ocopy *o = ocopies; o; o = o->next) {
		if (!mine(call, o))
			continue;
		json_object *j = json_object_new_object();
		uint64_t done = atomic_load(&o->done), ns = mono_ns() - o->t0;
		uint64_t rate = ns ? (uint64_t)((double)done * 1e9 / (double)ns) : 0;
		json_object_object_add(j, "id", json_object_new_uint64(o->id));
		json_object_object_add(j, "kind", json_object_new_string("offload"));
		json_object_object_add(j, "state", json_object_new_string(atomic_load(&o->cancel) ? "cancelling" : "running"));
		json_object_object_add(j, "path", json_object_new_string(o->d->path ? o->d->path : ""));
		json_object_object_add(j, "target", json_object_new_string(o->source ? o->source : ""));
		json_object_object_add(j, "done", json_object_new_uint64(done));
		json_object_object_add(j, "total", json_object_new_uint64(o->length));
		json_object_object_add(j, "rate", json_object_new_uint64(rate));
		json_object_object_add(j, "eta", json_object_new_uint64(rate && o->length > done ? (o->length - done) / rate : 0));
		json_object_array_add(arr, j);
	}
}

int offload_job_cancel(scm_call *call, uint64_t id)
{
	for (struct ocopy *o = ocopies; o; o = o->next)
		if (o->id == id && mine(call, o)) {
			if (o->staged) /* writing the destination: too late, it finishes */
				return fail(call, SCM_VDISK_E_JOBSTATE, "job %llu: the offload copy is writing its destination",
					    (unsigned long long)id);
			atomic_store(&o->cancel, true);
			return scm_vdisk_job_cancel_reply(call);
		}
	return fail(call, SCM_VDISK_E_NOTOPEN, "no job %llu (or not one this client started)", (unsigned long long)id);
}
