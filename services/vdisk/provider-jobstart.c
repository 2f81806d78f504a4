/* provider-jobstart.c: how a job starts (provider-jobs.h): the methods
 * snapshot, merge (commit into the parent, or stream from it) and compact
 * on a disk the provider holds open, each checked and prepared for its
 * kind before bjob_start (provider-jobs.c) runs it; and, at a disk's first
 * open, a journal beside it that says a job was under way (bjob_recover).
 * Migrations start in provider-migrate.c. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider-jobs.h"

static bool same_dir(const char *a, const char *b)
{
	const char *sa = strrchr(a, '/'), *sb = strrchr(b, '/');
	return sa && sb && sa - a == sb - b && !memcmp(a, b, (size_t)(sa - a));
}

int do_snapshot(scm_call *call, const char *path, const char *new, void *ud)
{
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "path", json_object_new_string(path));
	json_object_object_add(a, "new", json_object_new_string(new));
	/* the child beside the disk: beneath the same grant, and a rollback
	 * after a crash removes it by name in the disk's directory only */
	if (!same_dir(path, new) || !new[strlen(new) - 1] || new[strlen(new) - 1] == '/')
		return fail(call, SCM_E_BAD_ARGS, "snapshot: %s must be in the directory of %s", new, path);
	if (state_file_suffix(new))
		return fail(call, SCM_E_BAD_ARGS, "snapshot: %s: names ending in %s hold the provider's state for a disk",
			    new, state_file_suffix(new));
	struct vhdx_scope scope;
	bool scoped;
	struct disk *d = bjob_disk_of(call, "snapshot", path, a, &scope, &scoped);
	if (!d)
		return 0;
	scm_error *err = NULL;
	struct bjob *b = bjob_new(d, VJOB_SNAPSHOT, path, new, a, &scope, scoped, &err);
	if (!b)
		return fail_chain(call, SCM_E_INTERNAL, err, "snapshot");
	if (faccessat(b->dirfd, b->target_name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		bjob_free(b);
		return fail(call, SCM_VDISK_E_EXISTS, "snapshot: %s exists", new);
	}
	/* a differencing disk's reads may not run side by side (vhdx.h): from
	 * the switch-over on, the handle is one */
	d->parallel_reads = false;
	return bjob_start_reply(call, b, scm_vdisk_snapshot_reply);
}

/* commit's start, on the loop (as open's reopen for writing does): the
 * queue drained, the chain's locks dropped (ours on the parent would stop
 * our own writer: OFD locks are per open), the parent opened read-write
 * keeping its identity, the child's locks taken back. */
static int commit_open(struct bjob *b, struct disk *d, scm_error **ret_err)
{
	struct vhdx_info in;
	vhdx_get_info(d->h, &in);
	vhdx *parent = vhdx_parent(d->h);
	if (!parent || in.chain_len < 2)
		return scm_fail(ret_err, -EINVAL, "%s has no parent to merge into", b->path);
	free(b->target);
	free(b->target_name);
	b->target = strdup(in.chain[1]);
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s", in.chain[1]);
	b->target_name = strdup(basename(tmp));
	b->n_chunks = (b->vsize + BJOB_CHUNK - 1) / BJOB_CHUNK;
	b->dirty = calloc(b->n_chunks / 8 + 1, 1);
	if (!b->target || !b->target_name || !b->dirty)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	/* held, not drained: a read ring (opened before a snapshot gave the
	 * disk its parent) enters the queue from its own thread, and could
	 * keep it from ever being idle while the loop waits */
	iopool_hold(&d->q);
	vhdx_unlock(d->h);
	int r = vhdx_open_fd(vhdx_fd(parent), b->target, b->scoped ? &b->scope : NULL, VHDX_O_KEEP_IDENTITY,
			     &b->other, ret_err);
	if (r < 0) {
		vhdx_relock(d->h);
		iopool_release(&d->q);
		return scm_fail(ret_err, r, "opening the parent %s for writing", b->target);
	}
	/* the child locked again (the parent is, by the handle just opened):
	 * nobody else opens either while the job runs */
	if ((r = vhdx_relock_top(d->h)) < 0) {
		b->other = vhdx_close(b->other);
		vhdx_relock(d->h);
		iopool_release(&d->q);
		return scm_fail(ret_err, r, "%s: its lock was taken meanwhile", b->path);
	}
	iopool_release(&d->q);
	return 0;
}

/* stream's start: the disk must have a parent; its reads no longer run
 * side by side (they do not already: a differencing disk). */
static int stream_check(struct bjob *b, struct disk *d, scm_error **ret_err)
{
	if (!vhdx_parent(d->h) && !vhdx_remote_uri(d->h))
		return scm_fail(ret_err, -EINVAL, "%s has no parent to stream from", b->path);
	return 0;
}

int do_merge(scm_call *call, const char *path, const char *direction, void *ud)
{
	bool stream = !strcmp(direction, "from-parent");
	if (!stream && strcmp(direction, "into-parent"))
		return fail(call, SCM_E_BAD_ARGS, "merge: direction \"%s\" is neither into-parent nor from-parent",
			    direction);
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "path", json_object_new_string(path));
	json_object_object_add(a, "direction", json_object_new_string(direction));
	struct vhdx_scope scope;
	bool scoped;
	struct disk *d = bjob_disk_of(call, "merge", path, a, &scope, &scoped);
	if (!d)
		return 0;
	scm_error *err = NULL;
	struct bjob *b = bjob_new(d, stream ? VJOB_STREAM : VJOB_COMMIT, path, NULL, a, &scope, scoped, &err);
	int r = !b ? -ENOMEM : stream ? stream_check(b, d, &err) : commit_open(b, d, &err);
	if (r < 0) {
		if (b)
			bjob_free(b);
		return fail_chain(call, engine_code(r), err, "merge %s", path);
	}
	return bjob_start_reply(call, b, scm_vdisk_merge_reply);
}

int do_compact(scm_call *call, const char *path, void *ud)
{
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "path", json_object_new_string(path));
	struct vhdx_scope scope;
	bool scoped;
	struct disk *d = bjob_disk_of(call, "compact", path, a, &scope, &scoped);
	if (!d)
		return 0;
	scm_error *err = NULL;
	struct bjob *b = bjob_new(d, VJOB_COMPACT, path, NULL, a, &scope, scoped, &err);
	if (!b)
		return fail_chain(call, SCM_E_INTERNAL, err, "compact");
	return bjob_start_reply(call, b, scm_vdisk_compact_reply);
}

/* A disk's first open: a journal beside it says a job was under way when
 * the provider stopped. compact goes on where the journal says; commit
 * starts its copy again (the parent got nothing the child does not hide);
 * snapshot rolls back (the child, if made, never held a client's write:
 * the journal is removed before the handles move). A finished job's
 * journal is removed; an unreadable one is left alone and reported. */
void bjob_recover(struct disk *d, const struct vhdx_scope *scope)
{
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s", d->path);
	int dfd;
	scm_error *err = NULL;
	if (bjob_journal_dir(d->path, scope, &dfd, &err) < 0) {
		scm_error_free(err);
		return;
	}
	struct vjob_journal *j = malloc(sizeof *j);
	int r = j ? vjob_journal_read(dfd, basename(base), j, &err) : -ENOMEM;
	if (r == -ENOENT || r == -ENOMEM)
		goto out;
	if (r < 0 || strcmp(j->disk, d->path)) {
		_cleanup_free_ char *t = err ? scm_error_text(err) : NULL;
		fprintf(stderr, "vdisk-provider: %s: %s; left alone\n", d->path,
			t ? t : "a job journal for another path");
		goto out;
	}
	if (j->id >= bjob_next_id)
		bjob_next_id = j->id + 1;
	if (j->kind == VJOB_MIGRATE_MIRROR || j->kind == VJOB_MIGRATE_SNAPSHOT) {
		mig_recover(d, j, scope, dfd); /* rolled back, whatever its state */
		goto out;
	}
	if (j->kind == VJOB_MIGRATED) { /* stays until cleared (provider-migmark.c) */
		if (!d->moved_to)
			d->moved_to = strdup(j->target);
		goto out;
	}
	if (vjob_finished(j->state) || j->kind == VJOB_SNAPSHOT) {
		if (j->kind == VJOB_SNAPSHOT && !vjob_finished(j->state) && same_dir(j->disk, j->target)) {
			const char *tn = strrchr(j->target, '/') + 1;
			int fd = openat(dfd, tn, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			/* only what the job made: the journal names it, and a
			 * journal is a file */
			if (bjob_half_made(fd))
				unlinkat(dfd, tn, 0);
			safe_close(fd);
		}
		vjob_journal_remove(dfd, basename(base), NULL);
		goto out;
	}
	json_object *a = json_object_new_object();
	json_object_object_add(a, "path", json_object_new_string(d->path));
	if (j->kind == VJOB_COMMIT || j->kind == VJOB_STREAM)
		json_object_object_add(a, "direction",
				       json_object_new_string(j->kind == VJOB_COMMIT ? "into-parent" : "from-parent"));
	struct bjob *b = bjob_new(d, j->kind, d->path, NULL, a, scope, scope != NULL, &err);
	json_object_put(a);
	if (b && j->kind == VJOB_COMMIT && (r = commit_open(b, d, &err)) < 0) {
		bjob_free(b);
		b = NULL;
	}
	if (!b) {
		_cleanup_free_ char *t = err ? scm_error_text(err) : NULL;
		fprintf(stderr, "vdisk-provider: %s: job %llu not resumed: %s\n", d->path,
			(unsigned long long)j->id, t ? t : "out of memory");
		goto out;
	}
	b->id = j->id;
	if ((j->kind == VJOB_COMPACT || j->kind == VJOB_STREAM) && j->total == b->vsize) /* where it was, on a block boundary */
		b->cursor = b->done = j->done / b->block_size * b->block_size;
	bjob_start(b, j->state == VJOB_PAUSED ? VJOB_PAUSED : VJOB_RUNNING);
out:
	scm_error_free(err);
	free(j);
	close(dfd);
}
