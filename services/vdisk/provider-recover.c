/* provider-recover.c: the vdisk provider's channels back after a crash
 * (docs/handover.md, "A provider that crashes"; docs/vdisk.md).
 *
 * With "recover": true in the service's manifest, every open and close of
 * a handle sends a checkpoint to scmd (scm_provider_checkpoint, before the
 * reply). A checkpoint is small and derived: per channel, its data buffer
 * (the memfd the client has mapped: it must stay the same memory) and its
 * handles by number, with the disk's path as it was opened, rw and
 * shared, and its read ring's memory if it has one (stopped at the
 * recovery, so the client goes on with calls). No disk fds: their OFD locks would be held by scmd past the
 * crash, and a write session the crash cut must be replayed from the log
 * by an ordinary open, not adopted. No jobs: a job's journal beside its
 * disk makes it resume or roll back at that open, as after any crash.
 *
 * After the crash, the new process opens each disk again by its path,
 * beneath the channel's grant as any open is (the grant scmd passed with
 * the channel is the one it was made with), and gives the handle its
 * number back. The disk is one engine handle for every channel, as in a
 * live open, and the channels come back in scmd's order (newest first), not
 * the order their handles were opened in: a read-write handle that finds
 * the disk opened again by another channel's reader has it opened
 * read-write (disk_open_rw), so every handle valid before the crash comes
 * back. A handle that cannot be opened again (the file is gone,
 * the grant no longer reaches it, another channel's handle took it in a
 * way this one cannot share) is left out: the client's calls on it fail
 * with "no handle", the channel and its other handles go on. */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "provider-jobs.h"

void rec_checkpoint(void)
{
	scm_error *e = NULL;
	if (scm_provider_checkpoint(provider, &e) != 0) {
		_cleanup_free_ char *t = scm_error_text(e);
		fprintf(stderr, "vdisk-provider: %s\n", t ? t : "checkpoint failed");
		scm_error_free(e);
	}
}

/* The checkpoint holds SCM_HANDOVER_FDS_MAX fds in all, shared out so
 * that no client crowds the others out of a recovery: a client (endpoint
 * and uid) gets at most CK_FDS_CLIENT of them, and read rings (which a
 * recovery only stops: the plugin takes its slots back by itself and
 * reads through calls) only the first half of the table, so channels'
 * buffers always have the rest. What is left out is logged: a channel
 * not in the checkpoint is not restored after a crash, the client's calls
 * on it fail and it connects again. */
#define CK_FDS_CLIENT (SCM_HANDOVER_FDS_MAX / 4)
#define CK_CLIENTS 64
static struct ck_client {
	char caller[64];
	uid_t uid;
	unsigned fds;
} ck[CK_CLIENTS];
static unsigned ck_n, ck_total;

void rec_save_begin(void)
{
	ck_n = 0;
	ck_total = 0;
}

/* g's count of fds in this checkpoint (NULL: past CK_CLIENTS clients,
 * which then share nothing but the table's own bound). */
static struct ck_client *ck_client(const scm_grant *g)
{
	const char *who = g && g->caller ? g->caller : "";
	uid_t uid = g ? g->uid : (uid_t)-1;
	for (unsigned i = 0; i < ck_n; i++)
		if (ck[i].uid == uid && !strncmp(ck[i].caller, who, sizeof ck[i].caller - 1))
			return &ck[i];
	if (ck_n == CK_CLIENTS)
		return NULL;
	struct ck_client *k = &ck[ck_n++];
	snprintf(k->caller, sizeof k->caller, "%s", who);
	k->uid = uid;
	k->fds = 0;
	return k;
}

/* Whether to log a left-out channel or ring now: checkpoints come up to
 * 40 a second, and one client with many channels would fill the log. */
static bool ck_say(void)
{
	static uint64_t said;
	uint64_t now = mono_ns();
	if (said && now - said < 10000000000ull)
		return false;
	said = now;
	return true;
}

/* fd into the checkpoint for g's client: its index, or < 0. */
static int ck_fd_add(const scm_grant *g, int fd, bool ring)
{
	struct ck_client *k = ck_client(g);
	if (k && k->fds >= CK_FDS_CLIENT)
		return -EDQUOT;
	if (ring && ck_total >= SCM_HANDOVER_FDS_MAX / 2)
		return -EMFILE;
	int i = scm_handover_fd_add(provider, fd);
	if (i < 0)
		return i;
	ck_total++;
	if (k)
		k->fds++;
	return i;
}

json_object *rec_save_channel(const scm_grant *g, struct channel *c)
{
	if (!c || c->closed)
		return NULL;
	int mi = ck_fd_add(g, c->memfd, false);
	if (mi < 0) {
		if (ck_say())
			fprintf(stderr, "vdisk-provider: channel %llu of %s (uid %u) left out of the checkpoint: %s; its handles are not "
			"opened again after a crash (said once in 10 s)\n", (unsigned long long)(g ? g->channel : 0), g && g->caller ? g->caller : "?",
			g ? (unsigned)g->uid : 0, mi == -EDQUOT ? "its client has its share of the checkpoint's fds"
								: "the checkpoint holds no more fds");
		return NULL;
	}
	json_object *o = json_object_new_object();
	json_object *hs = json_object_new_array();
	json_object_object_add(o, "memfd", json_object_new_int(mi));
	json_object_object_add(o, "handles", hs);
	for (size_t k = 0; k < HANDLES_MAX; k++) {
		struct disk *d = c->h[k].d;
		if (!d)
			continue;
		json_object *h = json_object_new_object();
		json_object_object_add(h, "n", json_object_new_uint64(k + 1));
		json_object_object_add(h, "path", json_object_new_string(d->path));
		json_object_object_add(h, "rw", json_object_new_boolean(c->h[k].rw));
		json_object_object_add(h, "shared", json_object_new_boolean(d->shared));
		if (d->moved_to) /* migrated to an NBD export: still no writes here */
			json_object_object_add(h, "moved_to", json_object_new_string(d->moved_to));
		int ri = ring_fd(&c->h[k]) >= 0 ? ck_fd_add(g, ring_fd(&c->h[k]), true) : -EBADF;
		if (ri >= 0)
			json_object_object_add(h, "ring", json_object_new_int(ri));
		else if (ri != -EBADF && ck_say())
			fprintf(stderr, "vdisk-provider: channel %llu: handle %zu's read ring left out of the checkpoint "
				"(%s): after a crash its reader takes its slots back and reads through calls\n",
				(unsigned long long)(g ? g->channel : 0), k + 1,
				ri == -EDQUOT ? "its client has its share of the checkpoint's fds" : "rings have theirs");
		json_object_array_add(hs, h);
	}
	return o;
}

/* The disk at path, open already or opened now, under g's scope. */
static struct disk *reopen(const scm_grant *g, struct channel *c, const char *path, bool rw, bool shared,
			   scm_error **ret_err)
{
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	json_object_object_add(a, "readonly", json_object_new_boolean(!rw));
	json_object_object_add(a, "shared", json_object_new_boolean(shared));
	struct allow_ctx actx = { g, "open", a, NULL };
	struct vhdx_scope scope;
	bool scoped;
	if (scope_for(g, c, "open", &actx, &scope, &scoped, ret_err) != 0)
		return NULL;
	const struct vhdx_scope *sp = scoped ? &scope : NULL;
	vhdx *probe = NULL;
	const unsigned pfl = VHDX_O_RDONLY | VHDX_O_NO_LOCK | VHDX_O_NO_REMOTE;
	int r = scoped ? vhdx_open_scoped(&scope, path, pfl, &probe, ret_err)
		       : vhdx_open_fd(-1, path, NULL, pfl, &probe, ret_err);
	if (r < 0)
		return NULL;
	uint64_t dev, ino;
	vhdx_file_id(probe, &dev, &ino);
	struct disk *d;
	for (d = disks; d; d = d->next)
		if (d->dev == dev && d->ino == ino && !d->closing)
			break;
	if (d) {
		/* as a live open: the same engine handle for every channel, and
		 * the channels come back in any order, so a writer may find the
		 * disk opened again by readers first: it is opened read-write
		 * then (disk_open_rw), as it was before the crash */
		const char *why = NULL;
		int code = SCM_VDISK_E_BUSY;
		if (!disk_same_chain(d->h, probe)) {
			why = "parent not available under the grant";
			code = SCM_VDISK_E_BADDISK;
		} else if (rw && d->writers && !(shared && d->shared))
			why = "open for writing by another channel in a way this handle cannot share";
		if (why || !rw || d->rw) {
			vhdx_close(probe);
			if (why)
				scm_fail(ret_err, code, "%s: %s", path, why);
			return why ? NULL : d;
		}
		r = disk_open_rw(d, probe, path, sp, ret_err);
		if (r != 0) {
			scm_fail(ret_err, r < 0 ? engine_code(r) : SCM_VDISK_E_BUSY, "%s: %s", path,
				 r < 0 ? "opened again for writing" : "its chain changed while it was opened again");
			return NULL;
		}
		if (!d->bjob)
			bjob_recover(d, sp); /* a job's journal beside it */
		mig_mark_apply(d, path, sp);
		return d;
	}
	if (vhdx_remote_named(probe)) {
		vhdx_close(probe);
		scm_fail(ret_err, SCM_VDISK_E_BUSY, "%s: a disk with a remote parent is not opened again after a crash",
			 path);
		return NULL;
	}
	d = calloc(1, sizeof *d);
	if (!d || !(d->path = strdup(path))) {
		free(d);
		vhdx_close(probe);
		scm_fail(ret_err, -ENOMEM, "out of memory");
		return NULL;
	}
	/* an ordinary open: a write session the crash cut is replayed */
	r = vhdx_open_fd(vhdx_fd(probe), path, sp, rw ? 0 : VHDX_O_RDONLY, &d->h, ret_err);
	vhdx_close(probe);
	struct vhdx_info in;
	if (r == 0) {
		vhdx_get_info(d->h, &in);
		r = pr_disk_open(&d->pr, sp, path, &in.page83, ret_err);
		if (r < 0)
			vhdx_close(d->h);
	}
	if (r < 0) {
		free(d->path);
		free(d);
		return NULL;
	}
	d->dev = dev;
	d->ino = ino;
	d->virtual_size = in.virtual_size;
	d->sector_size = in.logical_sector_size;
	d->parallel_reads = !in.differencing;
	d->rw = rw;
	d->next = disks;
	disks = d;
	if (rw) {
		bjob_recover(d, sp); /* a job's journal beside it */
		mig_mark_apply(d, path, sp);
	}
	return d;
}

int rec_restore_channel(const scm_grant *g, json_object *saved, void **ret_chdata)
{
	json_object *hs = json_object_object_get(saved, "handles");
	int r;
	struct channel *c = channel_adopt(g, saved, "checkpointed", &r);
	if (!c)
		return r;
	size_t back = 0, n = json_object_array_length(hs);
	for (size_t i = 0; i < n; i++) {
		json_object *h = json_object_array_get_idx(hs, i), *x;
		int64_t k = json_object_object_get_ex(h, "n", &x) ? json_object_get_int64(x) : 0;
		const char *path = json_object_get_string(json_object_object_get(h, "path"));
		bool rw = json_object_get_boolean(json_object_object_get(h, "rw"));
		bool shared = json_object_get_boolean(json_object_object_get(h, "shared"));
		/* its read ring, if it had one, is stopped whatever happens to it */
		if (json_object_object_get_ex(h, "ring", &x)) {
			int rfd = scm_handover_fd_take(provider, json_object_get_int64(x));
			if (rfd >= 0)
				ring_release(rfd);
		}
		struct account *acct = account_get(g);
		if (k < 1 || k > HANDLES_MAX || c->h[k - 1].d || !path || !acct)
			continue;
		scm_error *e = NULL;
		struct disk *d = reopen(g, c, path, rw, shared, &e);
		if (!d) {
			_cleanup_free_ char *t = scm_error_text(e);
			fprintf(stderr, "vdisk-provider: channel %llu: handle %lld (%s) not opened again: %s\n",
				(unsigned long long)g->channel, (long long)k, path, t ? t : "?");
			scm_error_free(e);
			continue;
		}
		/* absent (an older checkpoint): not moved */
		const char *moved = json_object_object_get_ex(h, "moved_to", &x) ? json_object_get_string(x) : NULL;
		if (moved && !d->moved_to)
			d->moved_to = strdup(moved);
		handle_attach(c, (size_t)k - 1, d, rw, shared, acct);
		back++;
	}
	fprintf(stderr, "vdisk-provider: channel %llu recovered after a crash: %zu of %zu handles opened again\n",
		(unsigned long long)g->channel, back, n);
	*ret_chdata = c;
	return 0;
}
