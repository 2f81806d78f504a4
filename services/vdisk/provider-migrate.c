/* provider-migrate.c: live migration of a disk the provider serves
 * (issue 13 item 2; docs/vdisk.md "Live migration"): the migrate method,
 * the job's phases and its switch-over. The copy passes are in
 * provider-migpiece.c; copying a piece in a step, the correspondence
 * record and the recovery after a crash in provider-migcopy.c.
 *
 * mirror (qemu's drive-mirror sync=full, VMware's first Storage vMotion):
 * dest is made with the disk's geometry and identity (DataWriteGuid, page
 * 83), the whole chain flattened into it, while the dirty map (the one
 * commit uses, marked by provider-io.c) records what clients write
 * meanwhile; passes over the dirty pieces follow until what is left can
 * be copied within max_pause at the rate measured so far; then one step,
 * which holds every request queued after it and starts after those before
 * it, copies the rest, flushes dest, removes the journal (the commit
 * point) and puts dest under every handle.
 *
 * snapshot (VMware's later method): a differencing child beside the disk
 * takes every handle, its now read-only parent is copied to dest, the
 * child is re-parented onto the copy (which kept the parent's
 * DataWriteGuid, so the child's parent_linkage holds) and merged into it
 * as commit does, with the same dirty passes and switch-over.
 *
 * Until the journal goes, the source is the disk: a cancel or a failure
 * (or, after a crash, the next open: mig_recover) folds a snapshot child
 * back and removes dest. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "provider-migrate.h"

void mig_free(struct bjob *b)
{
	struct bmig *m = b->mig;
	if (!m)
		return;
	mig_sider_free(m); /* (no side step runs: the job is not stepping) */
	mig_flush_stop(&m->fl); /* its descriptors, before the files go */
	mig_cpus_release(&m->cpus_held); /* (at the job's end already, unless it never ended) */
	mig_mirq_free(b); /* (stopped already where dest's handle closed first) */
	vhdx_close(m->old);
	safe_close(m->drootfd);
	safe_close(m->ddirfd);
	free(m->droot);
	free(m->droot_real);
	free(m->dname);
	free(m->child);
	free(m->child_name);
	mig_hash_free(m); /* first: its thread fills m->rec */
	mig_flush_free(&m->fl); /* (before the files it flushes are closed) */
	free(m->rec);
	free(m->inflight);
	mig_direct_close(m);
	mig_nbd_close(m->nbd);
	nbd_uri_clear(&m->nbd_u);
	free(m->nbd_certs);
	free(m->nbd_psk);
	free(m->nbd_user);
	pthread_mutex_destroy(&m->dlock);
	pthread_cond_destroy(&m->pcond);
	scm_error_free(m->pending_err);
	free(m);
	b->mig = NULL;
	b->mig_q = NULL;
}

bool mig_write_pending(const struct bjob *b)
{
	return b->mig->side == SIDE_WRITE;
}

/* Is b's next work step one that only takes pieces of a source without
 * parent (block table lookups, no I/O; mig_read_piece leaves the reading
 * to the side step), with no journal write or failure to handle in it? */
bool mig_step_quick(const struct bjob *b)
{
	const struct bmig *m = b->mig;
	vhdx *src = m->phase == MP_COPY && m->snapshot ? vhdx_parent(b->d->h) : b->d->h;
	if (b->persist || bjob_step_us || m->pending_r || m->side != SIDE_NONE || bjob_limited(b))
		return false;
	if (m->phase != MP_COPY && !(m->phase == MP_DIRTY && !m->snapshot))
		return false;
	return src && !vhdx_parent(src) && !vhdx_remote_uri(src);
}

/* On the loop: a side step when the last step asked for one, else work. */
void mig_next(struct bjob *b)
{
	struct bmig *m = b->mig;
	if (b->switched && b->d->moved_to)
		rec_checkpoint(); /* a recovery after a crash still refuses writes here */
	/* making dest touches nothing of the disk: beside its I/O, with the
	 * journal's first write (so clients wait for neither's fsyncs); a
	 * failure is the next work step's */
	if (m->phase == MP_CREATE && !m->pending_r && m->side == SIDE_NONE)
		m->side = SIDE_CREATE;
	m->t_queued = mono_ns();
	if (m->side != SIDE_NONE) {
		m->side_run = m->side;
		m->side = SIDE_NONE;
		bjob_submit(b, STEP_SIDE);
		return;
	}
	if (m->phase == MP_SWITCH)
		m->t_submit = mono_ns(); /* requests after it wait from now on */
	bjob_submit(b, STEP_WORK);
}

/* ---- the steps, on a worker --------------------------------------------- */

/* A record beside dest (the one that vouched for a copy reused here, or
 * one an older migration left) says what dest held before this job: it
 * goes, durably, before the job writes anything to dest. Else a crash
 * after the switch-over but before this job's own record left it
 * vouching for bytes dest no longer holds (dest keeps its DataWriteGuid
 * until the first write after the switch-over). */
static int drop_record(struct bjob *b)
{
	struct bmig *m = b->mig;
	char rn[PATH_MAX];
	snprintf(rn, sizeof rn, "%s%s", m->dname, MIG_REC_SUFFIX);
	if (unlinkat(m->ddirfd, rn, 0) < 0)
		return errno == ENOENT ? 0 : scm_fail(&b->serr, -errno, "%s%s: %m", b->target, MIG_REC_SUFFIX);
	if (fsync(m->ddirfd) < 0)
		return scm_fail(&b->serr, -errno, "the directory of %s: %m", b->target);
	return 0;
}

int mig_create(struct bjob *b)
{
	struct bmig *m = b->mig;
	if (m->to_nbd)
		return mig_nbd_open(b);
	if (m->reuse) { /* a copy a record vouches for: only what changed goes */
		/* (the record that made this disk out of dest, when its writer
		 * is still at work: provider-miglater.c; it holds dest's lock
		 * until dest is flushed) */
		mig_later_wait(b->path, b->target);
		int r = m->dscoped ? vhdx_open_scoped(&m->dscope, b->target, VHDX_O_KEEP_IDENTITY, &b->other, &b->serr)
				   : vhdx_open(b->target, VHDX_O_KEEP_IDENTITY, &b->other, &b->serr);
		if (r < 0)
			return r;
		struct vhdx_info in;
		vhdx_get_info(b->other, &in);
		if (memcmp(&in.data_write_guid, &m->dst_dwg, sizeof in.data_write_guid)) {
			b->other = vhdx_close(b->other); /* not ours to discard */
			return scm_fail(&b->serr, -ESTALE, "%s was written since the migration started: its record no "
					"longer says what it holds", b->target);
		}
		/* the record again, now that it is not being written (one the
		 * job may have been taken on trust for) */
		if ((r = mig_reuse(b, &in, &b->serr)) < 0) {
			b->other = vhdx_close(b->other);
			return r;
		}
		mig_later_decide(b);
		m->dest_made = true; /* discarded like a new one unless the job finishes */
		if ((r = drop_record(b)) < 0)
			return r;
		mig_direct_open(m, b->other);
		m->phase = MP_COPY;
		return 0;
	}
	int r = drop_record(b);
	if (r < 0)
		return r;
	m->dst_dwg = m->dwg;
	struct vhdx_create_opts o = { .size = b->vsize,
				      .block_size = m->block_size,
				      .sector_size = m->lsec,
				      .physical_sector_size = m->psec,
				      .fixed = m->fixed,
				      .data_write_guid = &m->dwg,
				      .page83 = &m->page83,
				      .bat_max = CHAIN_BAT_MAX,
				      .scope = m->dscoped ? &m->dscope : NULL };
	/* made under a name of ours, then renamed into place: a crash in the
	 * middle of making it leaves no half file under dest's name */
	char *tmp = NULL, *tname = NULL;
	if (asprintf(&tmp, "%s%s", b->target, MIG_NEW_SUFFIX) < 0 || asprintf(&tname, "%s%s", m->dname, MIG_NEW_SUFFIX) < 0) {
		free(tmp);
		return scm_fail(&b->serr, -ENOMEM, "out of memory");
	}
	(void)unlinkat(m->ddirfd, tname, 0);
	r = vhdx_create(tmp, &o, &b->serr);
	if (r >= 0 && renameat2(m->ddirfd, tname, m->ddirfd, m->dname, RENAME_NOREPLACE) < 0) {
		/* a file system without RENAME_NOREPLACE: a link refuses an
		 * existing name too */
		if ((errno != EINVAL && errno != ENOSYS) || linkat(m->ddirfd, tname, m->ddirfd, m->dname, 0) < 0)
			r = scm_fail(&b->serr, -errno, "%s: %m", b->target);
		unlinkat(m->ddirfd, tname, 0);
	}
	free(tmp);
	free(tname);
	if (r < 0)
		return r;
	m->dest_made = true;
	/* written keeping the identity until the switch-over: a snapshot
	 * child's parent_linkage names it */
	r = m->dscoped ? vhdx_open_scoped(&m->dscope, b->target, VHDX_O_KEEP_IDENTITY, &b->other, &b->serr)
		       : vhdx_open(b->target, VHDX_O_KEEP_IDENTITY, &b->other, &b->serr);
	if (r < 0)
		return r;
	mig_direct_open(m, b->other);
	mig_later_decide(b);
	m->phase = m->snapshot ? MP_SNAP : MP_COPY;
	return 0;
}

/* snapshot mode: the child beside the disk takes every handle, as the
 * snapshot job's one step does; the disk is its read-only parent. */
static int take_snapshot(struct bjob *b)
{
	struct bmig *m = b->mig;
	vhdx **hp = &b->d->h, *nh = NULL;
	int r = vhdx_flush(*hp);
	if (r < 0)
		return r;
	vhdx_unlock(*hp);
	struct vhdx_create_opts o = { .parent = b->path, .block_size = m->block_size,
				      .scope = b->scoped ? &b->scope : NULL };
	r = vhdx_create(m->child, &o, &b->serr);
	if (r >= 0) {
		m->child_made = true;
		r = b->scoped ? vhdx_open_scoped(&b->scope, m->child, 0, &nh, &b->serr) : vhdx_open(m->child, 0, &nh, &b->serr);
	}
	if (r < 0) {
		if (m->child_made)
			unlinkat(b->dirfd, m->child_name, 0);
		m->child_made = false;
		vhdx_relock(*hp);
		return r;
	}
	vhdx *old = *hp;
	*hp = nh;
	vhdx_close(old);
	m->phase = MP_COPY;
	return 0;
}

/* The switch-over: the disk's I/O is held (an exclusive step), the last
 * dirty pieces go, dest is made durable, the journal removed (from here
 * on dest is the disk), and every handle is on dest. The old handle is
 * closed by the last step, beside the I/O. dest is durable already when
 * the job wrote nothing to it since the side step's flush: what clients
 * wrote to it since (mirror mode) is as durable as on the source, since
 * each client flush flushed dest too (provider-mirror.c), so no flush
 * waits in the pause then. */
static int switch_over(struct bjob *b)
{
	struct bmig *m = b->mig;
	struct disk *d = b->d;
	uint64_t n, t1 = mono_ns(), t0 = m->t_submit ? m->t_submit : t1, t2;
	int r;
	unsigned gen, rounds = 0;
	m->pause_wait_us = (t1 - t0) / 1000; /* for the requests before it */
	/* clients' writes queued for dest: applied (most were, by the flush
	 * before this step); from here on no write mirrors */
	mig_mirq_stop(b, true);
again:
	gen = mig_nbd_gen(b);
	for (uint64_t c = bjob_dirty_next(b, 0, &n); c != UINT64_MAX; c = bjob_dirty_next(b, c + 1, &n)) {
		if ((r = mig_copy_chunk(b, d->h, c, true)) < 0)
			return r;
		m->switch_bytes += BJOB_CHUNK;
	}
	t2 = mono_ns();
	if (mig_renew_due(b)) {
		/* the disk's first write of this session came after the side
		 * step's flush renewed nothing (provider-mirror.c, side_flush):
		 * dest still says the identity the disk had before it, which
		 * the disk's older children name as their parent's, and holds
		 * that write. Renewed here, in the pause (rare); else dest, the
		 * disk from now on, would match those children again if no
		 * write came after the switch-over */
		if ((r = vhdx_renew_identity(b->other)) < 0) {
			scm_error_free(b->serr);
			b->serr = vhdx_error(b->other);
			return r;
		}
		m->renewed = m->renewed_in_pause = true;
	}
	if (m->to_nbd) {
		/* whatever went to the export (the job's copy, clients'
		 * mirrored writes, flushed or not) is durable there first */
		if ((r = mig_nbd_flush(b, &b->serr)) < 0)
			return r;
		/* connected again meanwhile (provider-mignbd.c): what went
		 * since the last flush is dirty again, and goes again (the
		 * retry time bounds this) */
		if (mig_nbd_gen(b) != gen && ++rounds < 8)
			goto again;
		if (mig_nbd_gen(b) != gen)
			return scm_fail(&b->serr, -EIO, "migration destination %s: the connection was lost again in "
					"each of 8 rounds of the switch-over", b->target);
	} else if (m->dest_unflushed && (r = vhdx_flush(b->other)) < 0) {
		scm_error_free(b->serr);
		b->serr = vhdx_error(b->other);
		return r;
	}
	m->dest_unflushed = false;
	m->pause_flush_us = (mono_ns() - t2) / 1000;
	struct vhdx_info in;
	vhdx_get_info(d->h, &in); /* the record says the source held the same then */
	m->src_dwg = in.data_write_guid;
	/* persistent reservations follow the disk (the copy has its page 83);
	 * an export's disk has its own */
	if (!m->to_nbd && (r = pr_disk_move(d->pr, m->ddirfd, m->dname, &b->serr)) < 0)
		return r;
	/* The commit point. The directory's fsync waits for the next flush
	 * (or the last step, which comes at once): DEST is durable already,
	 * so the removal may reach the disk any time, and until a flush is
	 * answered no write made on DEST was promised to survive. */
	int sfd = fcntl(b->dirfd, F_DUPFD_CLOEXEC, 3);
	char jn[PATH_MAX];
	snprintf(jn, sizeof jn, "%s.job", b->name);
	if (sfd < 0)
		r = -errno;
	else if (m->to_nbd) /* the journal becomes the mark that keeps the
			     * disk from taking writes, in one rename
			     * (provider-migmark.c) */
		r = mig_mark_commit(b);
	else
		r = unlinkat(b->dirfd, jn, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (r < 0) {
		r = scm_fail(&b->serr, r, "job journal %s: %s", jn, strerror(-r));
		safe_close(sfd);
		if (!m->to_nbd)
			pr_disk_move(d->pr, b->dirfd, b->name, NULL); /* the source stays the disk */
		return r;
	}
	d->sync_dirfd = sfd;
	__atomic_store_n(&d->sync_pending, true, __ATOMIC_RELEASE);
	if (m->to_nbd) {
		/* the export is the disk: no handle can move there (a handle
		 * is a file), so from the next request on writes here are
		 * refused, reads go on (this file holds what the export does),
		 * and the clients carry on on the other host */
		if (!(d->moved_to = strdup(b->target)))
			d->moved_to = strdup("another host");
	} else {
		vhdx_set_keep_identity(b->other, false); /* its next write renews DataWriteGuid */
		m->old = d->h;
		d->h = b->other;
		b->other = NULL;
	}
	b->switched = true;
	m->pause_us = (mono_ns() - t0) / 1000;
	m->dirty_bytes = 0;
	m->phase = MP_FINAL;
	m->side = SIDE_FINAL;
	return 0;
}

int mig_step(struct bjob *b)
{
	struct bmig *m = b->mig;
	struct disk *d = b->d;
	int r = 0;
	m->queued_ns += mono_ns() - m->t_queued;
	if (m->pending_r) { /* a side step's failure */
		r = m->pending_r;
		m->pending_r = 0;
		scm_error_free(b->serr);
		b->serr = TAKE_PTR(m->pending_err);
		return r;
	}
	m->side = SIDE_NONE;
	switch (m->phase) {
	case MP_CREATE: return mig_create(b); /* (normally a side step: mig_next) */
	case MP_SNAP: return take_snapshot(b);
	case MP_COPY:
		if ((r = mig_copy_pass(b, m->snapshot ? vhdx_parent(d->h) : d->h, !m->snapshot, false, 0)) < 0)
			return r;
		/* over once the side step wrote the last pieces read: until then
		 * a client's write to them is only marked dirty */
		if (b->cursor >= b->n_chunks && !m->n_wpend) {
			b->cursor = 0;
			if (m->snapshot) {
				m->phase = MP_REPARENT;
				if (m->side == SIDE_NONE)
					m->side = SIDE_FLUSH;
			} else {
				m->phase = MP_DIRTY;
				b->phase = 1;
			}
		}
		return 0;
	case MP_REPARENT:
		/* dest durable first: the child will name it as its parent */
		if ((r = vhdx_flush(b->other)) < 0) {
			scm_error_free(b->serr);
			b->serr = vhdx_error(b->other);
			return r;
		}
		m->dest_unflushed = false;
		if ((r = vhdx_set_parent(d->h, b->target, &m->dwg)) < 0 || (r = vhdx_flush(d->h)) < 0)
			return r;
		/* every piece the child holds is merged next: what it is
		 * written from now on is dirty again */
		memset(b->dirty, 0, b->n_chunks / 8 + 1);
		m->phase = MP_COMMIT;
		return 0;
	case MP_COMMIT:
		if ((r = mig_copy_pass(b, d->h, true, true, b->vsize)) < 0)
			return r;
		if (b->cursor >= b->n_chunks && !m->n_wpend) {
			b->cursor = 0;
			m->phase = MP_DIRTY;
			b->phase = 1;
		}
		return 0;
	case MP_DIRTY: return mig_dirty_step(b);
	case MP_SWITCH: return switch_over(b);
	case MP_FINAL: m->side = SIDE_FINAL; return 0; /* resumed before its last step */
	}
	return -EINVAL;
}

static pthread_mutex_t commit_lock = PTHREAD_MUTEX_INITIALIZER;

int mig_commit_sync(struct disk *d)
{
	int r = 0;
	if (!__atomic_load_n(&d->sync_pending, __ATOMIC_ACQUIRE))
		return 0;
	/* a flush that found it pending returns only once it is durable */
	pthread_mutex_lock(&commit_lock);
	if (d->sync_pending) {
		r = fsync(d->sync_dirfd) < 0 ? -errno : 0;
		if (r == 0) {
			close(d->sync_dirfd);
			__atomic_store_n(&d->sync_pending, false, __ATOMIC_RELEASE);
		}
	}
	pthread_mutex_unlock(&commit_lock);
	return r;
}

/* Cancel or failure before the switch-over: a snapshot child is folded
 * back into its parent, which takes the handles again; dest is removed.
 * Exclusive on the disk's queue. */
int mig_rollback(struct bjob *b)
{
	struct bmig *m = b->mig;
	struct disk *d = b->d;
	if (b->switched)
		return 0;
	mig_flush_stop(&m->fl);
	mig_mirq_stop(b, false); /* dest goes: what was queued for it too */
	mig_direct_close(m);
	b->other = vhdx_close(b->other);
	if (m->nbd) { /* what the export got is left there: it is not the disk */
		pthread_mutex_lock(&m->dlock);
		mig_nbd_close(m->nbd);
		m->nbd = NULL;
		pthread_mutex_unlock(&m->dlock);
		mig_mark_drop(b->dirfd, b->name); /* the mark it had ready */
	}
	if (m->child_made) {
		vhdx *c = d->h, *s = NULL;
		vhdx_unlock(c);
		int r = vhdx_open_fd(vhdx_fd(vhdx_parent(c)), b->path, b->scoped ? &b->scope : NULL, 0, &s, &b->serr);
		if (r >= 0 && (r = mig_fold(c, s, b->vsize, b->buf)) < 0)
			scm_error_push(&b->serr, vhdx_error(s));
		if (r < 0) {
			vhdx_close(s);
			vhdx_relock(c);
			return r;
		}
		d->h = s;
		vhdx_close(c);
		unlinkat(b->dirfd, m->child_name, 0);
		m->child_made = false;
	}
	if (m->dest_made) {
		unlinkat(m->ddirfd, m->dname, 0);
		fsync(m->ddirfd);
		m->dest_made = false;
	}
	return 0;
}

/* ---- the method, on the loop ---------------------------------------------- */

/* dest's directory: beneath the grant's directory for dest when it has
 * one, else beneath the one for path (dest must then pass the grant's
 * constraints on path too), else by its name. */
static int dest_scope(scm_call *call, struct bmig *m, const char *dest, json_object *args,
		      const struct vhdx_scope *scope, bool scoped)
{
	int r = scope_param(call, "migrate", "dest", &m->drootfd, &m->droot, &m->droot_real);
	if (r < 0)
		return r;
	if (r == 0 && scoped) {
		_cleanup_(json_object_putp) json_object *a = NULL;
		if (json_object_deep_copy(args, &a, NULL) < 0)
			return fail(call, SCM_E_INTERNAL, "out of memory"), -ENOMEM;
		json_object_object_add(a, "path", json_object_new_string(dest));
		scm_error *e = NULL;
		if (scm_grant_check(scm_call_grant(call), "migrate", a, &e) != 0) {
			fail_chain(call, SCM_E_DENIED, e, "migrate: the grant does not cover %s (outside what it allows for path)",
				   dest);
			return -EACCES;
		}
		m->drootfd = fcntl(scope->dirfd, F_DUPFD_CLOEXEC, 3);
		m->droot = strdup(scope->dir);
		m->droot_real = scope->dir_real ? strdup(scope->dir_real) : NULL;
		if (m->drootfd < 0 || !m->droot)
			return fail(call, SCM_E_INTERNAL, "out of memory"), -ENOMEM;
		r = 1;
	}
	m->dscoped = r == 1;
	if (m->dscoped)
		m->dscope = (struct vhdx_scope){ .dirfd = m->drootfd, .dir = m->droot, .dir_real = m->droot_real,
						 .bat_max = CHAIN_BAT_MAX };
	return 0;
}

/* dest exists: a mirror migration reuses it when it is a copy of this
 * disk that a correspondence record vouches for (a disk migrated back to
 * where it came from); anything else is refused. On the loop: its
 * headers and block table are read once. */
static int existing(scm_call *call, struct bjob *b, const char *dest)
{
	struct bmig *m = b->mig;
	scm_error *err = NULL;
	vhdx *h = NULL;
	unsigned fl = VHDX_O_RDONLY | VHDX_O_NO_LOCK | VHDX_O_NO_PARENT;
	if (m->snapshot)
		return fail(call, SCM_VDISK_E_EXISTS, "migrate: %s exists (a migration makes its destination; only "
			    "mirror mode reuses a copy a record vouches for)", dest), -EEXIST;
	int r = m->dscoped ? vhdx_open_scoped(&m->dscope, dest, fl, &h, &err) : vhdx_open(dest, fl, &h, &err);
	if (r < 0)
		return fail_chain(call, SCM_VDISK_E_EXISTS, err, "migrate: %s exists (a migration makes its destination)",
				  dest), -EEXIST;
	struct vhdx_info in;
	uint64_t dev, ino;
	vhdx_get_info(h, &in);
	vhdx_file_id(h, &dev, &ino);
	vhdx_close(h);
	for (struct disk *d = disks; d; d = d->next)
		if (d->dev == dev && d->ino == ino)
			return fail(call, SCM_VDISK_E_BUSY, "migrate: %s is open in the provider", dest), -EBUSY;
	const char *why = NULL;
	if (in.differencing)
		why = "a differencing disk";
	else if (in.virtual_size != b->vsize || in.block_size != m->block_size || in.logical_sector_size != m->lsec ||
		 in.physical_sector_size != m->psec)
		why = "another geometry";
	else if (memcmp(&in.page83, &m->page83, sizeof in.page83))
		why = "another disk (page 83 identity)";
	if (why)
		return fail(call, SCM_VDISK_E_EXISTS, "migrate: %s exists (a migration makes its destination; it is %s)",
			    dest, why), -EEXIST;
	/* the record of the migration that made this disk out of dest, still
	 * being written (provider-miglater.c), may vouch for it: the job's
	 * first step checks, once it is there */
	bool pending = mig_later_pending(b->path, dest); /* (first: it may end meanwhile) */
	if ((r = mig_reuse(b, &in, &err)) < 0 && pending)
		scm_error_free(TAKE_PTR(err));
	else if (r < 0)
		return fail_chain(call, SCM_VDISK_E_EXISTS, err,
				  "migrate: %s exists (a migration makes its destination, or reuses a copy of this disk "
				  "that a correspondence record vouches for)", dest), -EEXIST;
	m->reuse = true;
	m->dst_dwg = in.data_write_guid; /* checked again when the job opens it */
	return 0;
}

/* A migration's own state as a new job has it: no fds, its lock and its
 * condition (on CLOCK_MONOTONIC, for the bounded waits), its side queue
 * the job's. */
void mig_init(struct bjob *b, struct bmig *m)
{
	m->drootfd = m->ddirfd = m->dfd = -1;
	pthread_mutex_init(&m->dlock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->pcond, &ca);
	pthread_condattr_destroy(&ca);
	mig_hash_setup(m);
	mig_flush_setup(&m->fl);
	mig_mirq_setup(&m->mq);
	mig_sider_setup(&m->sd);
	mig_cpus_hold(&m->cpus_held);
	b->mig_q = &m->q;
}

static int setup(scm_call *call, struct bjob *b, const char *dest, bool snapshot, uint64_t throttle,
		 uint64_t max_pause, json_object *args, const struct vhdx_scope *scope, bool scoped)
{
	struct bmig *m = b->mig = calloc(1, sizeof *b->mig);
	char tmp[PATH_MAX];
	scm_error *err = NULL;
	if (!m)
		return fail(call, SCM_E_INTERNAL, "out of memory"), -ENOMEM;
	mig_init(b, m);
	m->snapshot = snapshot;
	m->throttle = throttle << 20;
	m->max_pause_us = (max_pause ? max_pause : MIG_MAX_PAUSE_MS) * 1000;
	m->phase = MP_CREATE;
	int r = 0;
	if (mig_is_nbd(dest))
		r = mig_nbd_dest(call, b, dest);
	else if ((r = dest_scope(call, m, dest, args, scope, scoped)) < 0)
		return r;
	if (r < 0)
		return r;
	if (snapshot && (m->dscoped != scoped || (scoped && strcmp(m->droot, scope->dir))))
		return fail(call, SCM_E_BAD_ARGS,
			    "migrate: in snapshot mode %s must be under the granted directory of %s (the child "
			    "reads its parent through it)", dest, b->path), -EINVAL;
	snprintf(tmp, sizeof tmp, "%s", dest);
	if (m->to_nbd)
		; /* no file of ours: no directory, no name */
	else if (!(m->dname = strdup(basename(tmp))))
		return fail(call, SCM_E_INTERNAL, "out of memory"), -ENOMEM;
	else if (m->dscoped)
		r = vhdx_scope_opendir(&m->dscope, dest, &m->ddirfd, &err);
	else if ((m->ddirfd = open(dirname(tmp), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		r = scm_fail(&err, -errno, "the directory of %s: %m", dest);
	if (r < 0)
		return fail_chain(call, engine_code(r), err, "migrate %s to %s", b->path, dest), r;
	struct vhdx_info in;
	vhdx_get_info(b->d->h, &in);
	m->block_size = in.block_size;
	m->lsec = in.logical_sector_size;
	m->psec = in.physical_sector_size;
	m->fixed = in.fixed;
	m->dwg = in.data_write_guid;
	m->page83 = in.page83;
	b->n_chunks = (b->vsize + BJOB_CHUNK - 1) / BJOB_CHUNK;
	b->dirty = calloc(b->n_chunks / 8 + 1, 1);
	m->rec = calloc(b->n_chunks, sizeof *m->rec);
	m->inflight = calloc(b->n_chunks / 8 + 1, 1);
	if (!b->dirty || !m->rec || !m->inflight || mig_hash_alloc(m, b->n_chunks) < 0)
		return fail(call, SCM_E_INTERNAL, "out of memory"), -ENOMEM;
	memset(b->buf, 0, BJOB_CHUNK);
	mig_sha256(b->buf, BJOB_CHUNK, m->zero_hash);
	for (uint64_t c = 0; c < b->n_chunks; c++) { /* a new disk reads zeros */
		uint64_t len = b->vsize - c * BJOB_CHUNK < BJOB_CHUNK ? b->vsize - c * BJOB_CHUNK : BJOB_CHUNK;
		m->rec[c].st = REC_NONE;
		if (len == BJOB_CHUNK)
			memcpy(m->rec[c].hash, m->zero_hash, 32);
		else
			mig_sha256(b->buf, len, m->rec[c].hash);
	}
	if (!m->to_nbd && faccessat(m->ddirfd, m->dname, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
	    (r = existing(call, b, dest)) < 0)
		return r;
	b->total = snapshot ? 2 * b->vsize : b->vsize;
	if (snapshot) {
		if (asprintf(&m->child, "%s%s", b->path, MIG_CHILD_SUFFIX) < 0 ||
		    asprintf(&m->child_name, "%s%s", b->name, MIG_CHILD_SUFFIX) < 0)
			return fail(call, SCM_E_INTERNAL, "out of memory"), -ENOMEM;
		if (faccessat(b->dirfd, m->child_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return fail(call, SCM_VDISK_E_EXISTS, "migrate: %s exists (snapshot mode makes it)", m->child),
			       -EEXIST;
		/* a differencing disk's reads may not run side by side (vhdx.h) */
		b->d->parallel_reads = false;
	}
	return 0;
}

int do_migrate(scm_call *call, const char *path, const char *dest, const char *mode, uint64_t throttle,
	       uint64_t max_pause, void *ud)
{
	bool snapshot = !strcmp(mode, "snapshot");
	if (!snapshot && strcmp(mode, "mirror"))
		return fail(call, SCM_E_BAD_ARGS, "migrate: mode \"%s\" is neither mirror nor snapshot", mode);
	if (throttle > (1u << 20))
		return fail(call, SCM_E_BAD_ARGS, "migrate: throttle %llu MiB/s is over the most it may be, 1048576 "
			    "(0: no limit)", (unsigned long long)throttle);
	if (max_pause > 60000)
		return fail(call, SCM_E_BAD_ARGS, "migrate: max_pause %llu ms is over the most it may be, 60000",
			    (unsigned long long)max_pause);
	size_t dl = strlen(dest);
	if (!mig_is_nbd(dest) && (dest[0] != '/' || dest[dl - 1] == '/'))
		return fail(call, SCM_E_BAD_ARGS, "migrate: dest \"%s\" is neither an absolute file path nor an NBD URI "
			    "(nbd://, nbds://, nbd+unix://, nbds+unix://)", dest);
	if (!strcmp(path, dest))
		return fail(call, SCM_VDISK_E_EXISTS, "migrate: %s is the disk itself", dest);
	if (state_file_suffix(dest))
		return fail(call, SCM_E_BAD_ARGS, "migrate: %s: names ending in %s hold the provider's state for a disk",
			    dest, state_file_suffix(dest));
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "path", json_object_new_string(path));
	json_object_object_add(a, "dest", json_object_new_string(dest));
	json_object_object_add(a, "mode", json_object_new_string(mode));
	json_object_object_add(a, "throttle", json_object_new_uint64(throttle));
	json_object_object_add(a, "max_pause", json_object_new_uint64(max_pause));
	struct vhdx_scope scope;
	bool scoped;
	struct disk *d = bjob_disk_of(call, "migrate", path, a, &scope, &scoped);
	if (!d)
		return 0;
	scm_error *err = NULL;
	struct bjob *b = bjob_new(d, snapshot ? VJOB_MIGRATE_SNAPSHOT : VJOB_MIGRATE_MIRROR, path, dest, a, &scope,
				  scoped, &err);
	if (!b)
		return fail_chain(call, SCM_E_INTERNAL, err, "migrate");
	if (setup(call, b, dest, snapshot, throttle, max_pause, a, &scope, scoped) < 0) {
		bjob_free(b);
		return 0;
	}
	return bjob_start_reply(call, b, scm_vdisk_migrate_reply);
}
