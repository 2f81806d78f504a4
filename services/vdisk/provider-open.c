/* provider-open.c: the vdisk provider's create and open (provider.h):
 * on the loop, with each client's opens charged the block table bytes they
 * read. A disk with a remote parent is first connected from a thread
 * (provider-remote.c), then opened here with that reader. */
#include <stdlib.h>
#include <string.h>

#include "provider-jobs.h"

const char *state_file_suffix(const char *path)
{
	static const char *const sfx[] = { ".scm-pr", ".scm-pr.tmp", ".job", ".job.tmp", ".job.mark", ".scm-map",
					      ".scm-new" };
	size_t pl = strlen(path);
	for (size_t i = 0; i < sizeof sfx / sizeof *sfx; i++) {
		size_t l = strlen(sfx[i]);
		if (pl >= l && !strcmp(path + pl - l, sfx[i]))
			return sfx[i];
	}
	return NULL;
}

/* An open's cost: see OPEN_RATE (provider.h) */
static uint64_t open_cost; /* set by do_open_loop: the bytes its probe read */

int do_create(scm_call *call, const char *path, uint64_t size, uint64_t block_size,
	      uint64_t sector_size, bool fixed, const char *parent, void *ud)
{
	(void)ud;
	return do_create_pre(call, path, size, block_size, sector_size, fixed, parent, NULL);
}

int do_create_pre(scm_call *call, const char *path, uint64_t size, uint64_t block_size, uint64_t sector_size,
		  bool fixed, const char *parent, struct vhdx_remote *pre)
{
	if (block_size > UINT32_MAX || sector_size > UINT32_MAX)
		return fail(call, SCM_E_BAD_ARGS, "block_size or sector_size out of range");
	const char *sfx = state_file_suffix(path);
	if (sfx)
		return fail(call, SCM_E_BAD_ARGS, "create %s: names ending in %s hold the provider's state for a disk",
			    path, sfx);
	struct channel *c = channel_get(call);
	if (!c)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "size", json_object_new_uint64(size));
	json_object_object_add(a, "block_size", json_object_new_uint64(block_size));
	json_object_object_add(a, "sector_size", json_object_new_uint64(sector_size));
	json_object_object_add(a, "fixed", json_object_new_boolean(fixed));
	json_object_object_add(a, "parent", json_object_new_string(parent));
	struct allow_ctx actx = { scm_call_grant(call), "create", a, pre };
	struct vhdx_scope scope;
	bool scoped;
	if (!scope_get(call, c, "create", &actx, &scope, &scoped))
		return 0;
	if (scoped && !pre && vhdx_parent_is_remote(parent)) {
		struct remote_redo redo = { .create = true, .path = path, .size = size, .block_size = block_size,
					    .sector_size = sector_size, .fixed = fixed, .parent = parent };
		remote_defer(call, &actx, parent, &redo);
		return 0;
	}
	/* a disk we would refuse to open is not made either: its block
	 * table alone would be over the cap */
	struct vhdx_create_opts o = { .size = size, .block_size = (uint32_t)block_size,
				      .sector_size = (uint32_t)sector_size, .fixed = fixed,
				      .parent = parent[0] ? parent : NULL, .bat_max = CHAIN_BAT_MAX,
				      .scope = scoped ? &scope : NULL };
	scm_error *err = NULL;
	int r = vhdx_create(path, &o, &err);
	if (r < 0)
		return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err, "create %s", path);
	return scm_vdisk_create_reply(call);
}

bool disk_same_chain(vhdx *a, vhdx *b)
{
	for (; a && b; a = vhdx_parent(a), b = vhdx_parent(b)) {
		uint64_t ad, ai, bd, bi;
		vhdx_file_id(a, &ad, &ai);
		vhdx_file_id(b, &bd, &bi);
		if (ad != bd || ai != bi)
			return false;
	}
	return !a && !b;
}

static int do_open_loop(scm_call *call, const char *path, bool readonly, bool shared, struct vhdx_remote *pre);


/* The open's block table bytes are charged to the client (see
 * OPEN_RATE): a client looping over opens of a disk with a large block
 * table cannot starve the others. */
void handle_attach(struct channel *c, size_t slot, struct disk *d, bool rw, bool shared, struct account *acct)
{
	if (rw) {
		d->shared = d->writers ? d->shared && shared : shared;
		d->writers++;
	}
	d->users++;
	uint64_t bytes = vhdx_memory(d->h);
	acct->handles++;
	acct->bytes += bytes;
	c->h[slot] = (struct handle){ .d = d, .rw = rw, .acct = acct, .bytes = bytes };
}

/* Readers only so far: the same file opened again read-write through the
 * probe's fd, never by a path, after dropping the readers' locks (ours
 * would stop us: OFD locks are per open). A parent swapped in between
 * leaves d as it was (1). Nothing may use the handle swapped: no job, and
 * no read ring's read, which enters the queue from its own thread. */
int disk_open_rw(struct disk *d, vhdx *probe, const char *path, const struct vhdx_scope *sp, scm_error **ret_err)
{
	vhdx *nh = NULL;
	iopool_hold(&d->q);
	vhdx_unlock(d->h);
	int r = vhdx_open_fd(vhdx_fd(probe), path, sp, 0, &nh, ret_err);
	vhdx_close(probe);
	if (r == 0 && !disk_same_chain(d->h, nh)) {
		vhdx_close(nh);
		r = 1;
	}
	if (r != 0) {
		if (vhdx_relock(d->h) < 0)
			fprintf(stderr, "vdisk-provider: %s: locks not retaken: %s\n", d->path, vhdx_errmsg(d->h));
		iopool_release(&d->q);
		return r;
	}
	vhdx_close(d->h);
	d->h = nh;
	iopool_release(&d->q);
	d->rw = true;
	return 0;
}

int do_open(scm_call *call, const char *path, bool readonly, bool shared, void *ud)
{
	struct account *acct = account_get(scm_call_grant(call));
	if (!acct)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	uint64_t now = mono_ns(), dt = now - acct->open_paid;
	/* dt * OPEN_RATE stays in 64 bits for dt under 64 s */
	uint64_t paid = dt >= 64000000000ull ? UINT64_MAX : dt * OPEN_RATE / 1000000000ull;
	acct->open_debt = acct->open_debt > paid ? acct->open_debt - paid : 0;
	acct->open_paid = now;
	if (acct->open_debt > OPEN_BURST)
		return fail(call, SCM_VDISK_E_BUSY,
			    "this client's opens read %llu MiB of block tables lately, over the %llu MiB it may at once "
			    "(then %llu MiB a second) on the provider's loop, which every client shares; try again in %llu ms",
			    (unsigned long long)(acct->open_debt >> 20), (unsigned long long)(OPEN_BURST >> 20),
			    (unsigned long long)(OPEN_RATE >> 20),
			    (unsigned long long)((acct->open_debt - OPEN_BURST) * 1000 / OPEN_RATE + 1));
	return do_open_pre(call, path, readonly, shared, NULL);
}

int do_open_pre(scm_call *call, const char *path, bool readonly, bool shared, struct vhdx_remote *pre)
{
	struct account *acct = account_get(scm_call_grant(call));
	if (!acct)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	open_cost = 0;
	int r = do_open_loop(call, path, readonly, shared, pre);
	acct->open_debt += open_cost;
	return r;
}

static int do_open_loop(scm_call *call, const char *path, bool readonly, bool shared, struct vhdx_remote *pre)
{
	struct channel *c = channel_get(call);
	if (!c)
		return fail(call, SCM_E_INTERNAL, "no memory for the data buffer");
	size_t slot;
	for (slot = 0; slot < HANDLES_MAX && c->h[slot].d; slot++)
		;
	if (slot == HANDLES_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "%d handles are open on this channel", HANDLES_MAX);
	struct account *acct = account_get(scm_call_grant(call));
	if (!acct)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	if (acct->handles >= GRANT_DISKS_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "this client holds %u open disks, the most it may", acct->handles);
	if (acct->bytes >= GRANT_BYTES_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "this client's open disks take %llu MiB of block tables, the most it may",
			    (unsigned long long)(acct->bytes >> 20));
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "readonly", json_object_new_boolean(readonly));
	json_object_object_add(a, "shared", json_object_new_boolean(shared));
	struct allow_ctx actx = { scm_call_grant(call), "open", a, pre };
	struct vhdx_scope scope;
	bool scoped;
	if (!scope_get(call, c, "open", &actx, &scope, &scoped))
		return 0;
	uint64_t left = GRANT_BYTES_MAX - acct->bytes;
	scope.bat_max = left < CHAIN_BAT_MAX ? left : CHAIN_BAT_MAX;
	/* First a look without locks: which files this client's grant
	 * reaches (the top one by fd, never by name again), and whether the
	 * disk is open already (the same inode, whatever the path). It does
	 * not connect a remote parent: only the real open does, once. */
	scm_error *err = NULL;
	vhdx *probe = NULL;
	const unsigned pfl = VHDX_O_RDONLY | VHDX_O_NO_LOCK | VHDX_O_NO_REMOTE;
	int r = scoped ? vhdx_open_scoped(&scope, path, pfl, &probe, &err)
		       : vhdx_open_fd(-1, path, NULL, pfl, &probe, &err);
	if (r < 0)
		return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err, "open %s", path);
	open_cost = vhdx_memory(probe);
	uint64_t dev, ino;
	vhdx_file_id(probe, &dev, &ino);
	struct disk *d;
	for (d = disks; d; d = d->next)
		if (d->dev == dev && d->ino == ino) {
			if (!d->closing)
				break;
			iopool_drain(&d->q); /* its lock goes with it: wait, then open anew */
		}
	if (d && !disk_same_chain(d->h, probe) && d->bjob && d->bjob->kind == VJOB_MIGRATE_SNAPSHOT) {
		/* its handles are on the migration's child meanwhile */
		vhdx_close(probe);
		return fail(call, SCM_VDISK_E_BUSY, "%s: a snapshot-mode migration (job %llu) runs on it; open it "
			    "when it is over", path, (unsigned long long)d->bjob->id);
	}
	if (d && !disk_same_chain(d->h, probe)) {
		vhdx_close(probe);
		return fail(call, SCM_VDISK_E_BADDISK, "%s: parent not available under the grant", path);
	}
	if (!readonly && shared && !pr_shared_allowed(scm_call_grant(call))) {
		vhdx_close(probe);
		return fail(call, SCM_E_DENIED, "%s: this client's grant does not make disks shareable "
			    "(the profile's allow rule needs \"settings\": {\"shareable\": true})", path);
	}
	if (d && !readonly && d->writers && (!shared || !d->shared)) {
		vhdx_close(probe);
		return fail(call, SCM_VDISK_E_BUSY,
			    "%s is open for writing by another client%s", path,
			    shared ? " that did not open it shared" : " (open it shared to write alongside)");
	}
	/* migrated to an NBD export: the export is the disk (a read-only
	 * open goes on) */
	if (!readonly && mig_mark_refused(call, d, path, scoped ? &scope : NULL)) {
		vhdx_close(probe);
		return 0;
	}
	const char *ruri = vhdx_remote_named(probe);
	if (ruri && !pre && scoped && (!d || (!readonly && !d->rw))) {
		/* the real open connects: from a thread, then again here */
		struct remote_redo redo = { .path = path, .readonly = readonly, .shared = shared };
		remote_defer(call, &actx, ruri, &redo);
		vhdx_close(probe);
		return 0;
	}
	const struct vhdx_scope *sp = scoped ? &scope : NULL;
	if (!d) {
		d = calloc(1, sizeof *d);
		if (!d || !(d->path = strdup(path))) {
			free(d);
			vhdx_close(probe);
			return fail(call, SCM_E_INTERNAL, "out of memory");
		}
		/* the real open, locked, from the file the probe holds */
		r = vhdx_open_fd(vhdx_fd(probe), path, sp, readonly ? VHDX_O_RDONLY : 0, &d->h, &err);
		vhdx_close(probe);
		if (r < 0) {
			free(d->path);
			free(d);
			return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err, "open %s",
					  path);
		}
		struct vhdx_info in;
		vhdx_get_info(d->h, &in);
		if ((r = pr_disk_open(&d->pr, sp, path, &in.page83, &err)) < 0) {
			vhdx_close(d->h);
			free(d->path);
			free(d);
			return fail_chain(call, r == -EINVAL ? SCM_VDISK_E_BADDISK : engine_code(r), err, "open %s", path);
		}
		d->dev = dev;
		d->ino = ino;
		d->virtual_size = in.virtual_size;
		d->sector_size = in.logical_sector_size;
		d->parallel_reads = !in.differencing;
		d->rw = !readonly;
		d->next = disks;
		disks = d;
		if (d->rw)
			bjob_recover(d, sp); /* a job's journal beside it */
	} else if (!readonly && !d->rw) {
		r = disk_open_rw(d, probe, path, sp, &err);
		if (r < 0)
			return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err,
					  "open %s for writing", path);
		if (r > 0) /* the clients already there were granted the old chain, not this one */
			return fail(call, SCM_VDISK_E_BUSY, "%s: its chain changed while it was open; try again", path);
	} else {
		vhdx_close(probe);
	}
	handle_attach(c, slot, d, !readonly, shared, acct);
	rec_checkpoint(); /* before the reply: a recovery knows the handle */
	return scm_vdisk_open_reply(call, slot + 1, c->memfd, BUFFER_SIZE, d->virtual_size,
				    d->sector_size, readonly);
}

