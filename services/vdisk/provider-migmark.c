/* provider-migmark.c: the mark a mirror migration to an NBD export leaves
 * beside the disk (docs/vdisk.md "To an NBD export"). From the switch-over
 * on the export is the disk: this file holds what the export held then,
 * and a write here would make a copy nobody else sees (split brain). While
 * handles stay open the disk refuses their writes (disk->moved_to); the
 * mark keeps refusing once they are closed, across provider restarts and
 * host reboots: an open for writing is refused until the method
 * "migrated" (scmctl vdisk migrated DISK --clear) removes it.
 *
 * The mark is the disk's job journal (vjob.h) of kind "migrated", state
 * done, target the export. At the commit point it replaces the
 * migration's journal in one rename, so there is never a moment with
 * neither: a crash before it finds the journal (the migration is rolled
 * back), after it the mark. It is written and fsynced beforehand, as
 * DISK.job.mark, by the job's first step, so the switch-over's pause
 * waits for no fsync (the directory's fsync is deferred as the journal's
 * removal is, provider-migrate.c); a rolled back migration removes it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provider-migrate.h"

#define MARK_SUFFIX ".job.mark"

static void mark_names(const char *disk_name, char *jn, char *mn, size_t n)
{
	snprintf(jn, n, "%s.job", disk_name);
	snprintf(mn, n, "%s" MARK_SUFFIX, disk_name);
}

int mig_mark_prepare(struct bjob *b)
{
	struct vjob_journal *j = calloc(1, sizeof *j);
	char buf[VJOB_JOURNAL_MAX], jn[PATH_MAX], mn[PATH_MAX];
	if (!j)
		return scm_fail(&b->serr, -ENOMEM, "out of memory");
	*j = (struct vjob_journal){ .version = VJOB_JOURNAL_VERSION, .id = b->id, .kind = VJOB_MIGRATED,
				    .state = VJOB_DONE, .done = b->vsize, .total = b->vsize };
	snprintf(j->disk, sizeof j->disk, "%s", b->d->path);
	snprintf(j->target, sizeof j->target, "%s", b->target);
	int n = vjob_journal_format(j, buf, sizeof buf);
	free(j);
	if (n < 0)
		return scm_fail(&b->serr, n, "the migration's mark for %s cannot be written (a path too long?)",
				b->d->path);
	mark_names(b->name, jn, mn, sizeof jn);
	/* a new file, never one found there (a planted link would be
	 * truncated through) */
	(void)unlinkat(b->dirfd, mn, 0);
	int fd = openat(b->dirfd, mn, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return scm_fail(&b->serr, -errno, "the migration's mark %s: %m", mn);
	ssize_t w = write(fd, buf, (size_t)n);
	int r = w == n ? 0 : w < 0 ? -errno : -EIO;
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0) {
		unlinkat(b->dirfd, mn, 0);
		return scm_fail(&b->serr, r, "the migration's mark %s: writing it failed: %s", mn, strerror(-r));
	}
	return 0;
}

int mig_mark_commit(struct bjob *b)
{
	char jn[PATH_MAX], mn[PATH_MAX];
	mark_names(b->name, jn, mn, sizeof jn);
	return renameat(b->dirfd, mn, b->dirfd, jn) < 0 ? -errno : 0;
}

void mig_mark_drop(int dirfd, const char *disk_name)
{
	char jn[PATH_MAX], mn[PATH_MAX];
	mark_names(disk_name, jn, mn, sizeof jn);
	(void)unlinkat(dirfd, mn, 0);
}

/* The mark beside the disk at path, in its directory dfd: 1 and the
 * export (*ret_dest, the caller's), 0 when there is none (no journal, or
 * a job's), -ENOMEM. A journal that is not believed (unreadable, not the
 * provider's own): 0 without ret_err (an open: bjob_recover reports it),
 * else its error. */
static int mark_read(int dfd, const char *path, char **ret_dest, scm_error **ret_err)
{
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s", path);
	struct vjob_journal *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	scm_error *err = NULL;
	int r = vjob_journal_read(dfd, basename(base), j, &err);
	bool marked = r == 0 && j->kind == VJOB_MIGRATED;
	*ret_dest = marked ? strdup(j->target) : NULL;
	free(j);
	if (r < 0 && r != -ENOENT && ret_err) {
		scm_error_push(ret_err, err);
		return r;
	}
	scm_error_free(err);
	if (!marked)
		return 0;
	return *ret_dest ? 1 : -ENOMEM;
}

static int refuse(scm_call *call, const char *path, const char *dest)
{
	return fail(call, SCM_VDISK_E_READONLY,
		    "open %s for writing: %s was migrated to %s: it takes no more writes here (the export is the disk "
		    "now; a write here would make a copy nobody else sees); open it read-only, or make it an "
		    "ordinary disk again with \"scmctl vdisk migrated --clear %s\"",
		    path, path, dest, path);
}

bool mig_mark_refused(scm_call *call, const struct disk *d, const char *path, const struct vhdx_scope *sp)
{
	if (d && d->moved_to) {
		refuse(call, path, d->moved_to);
		return true;
	}
	if (d && d->rw) /* open for writing, and not migrated since: no mark */
		return false;
	int dfd;
	scm_error *err = NULL;
	if (bjob_journal_dir(path, sp, &dfd, &err) < 0) {
		/* the open itself found the file there a moment ago */
		fail_chain(call, SCM_VDISK_E_IO, err, "open %s: its directory, for a migration's mark", path);
		return true;
	}
	_cleanup_free_ char *dest = NULL;
	int r = mark_read(dfd, path, &dest, NULL);
	close(dfd);
	if (r == 0)
		return false;
	if (r < 0)
		fail(call, SCM_E_INTERNAL, "out of memory");
	else
		refuse(call, path, dest);
	return true;
}

/* A disk opened again for writing after a crash: the mark beside it, by
 * the directory and name of the path this handle used (bjob_recover
 * believes a journal only for the path it names, and the disk may have
 * come back first under another spelling of it), so a switch-over the
 * checkpoint never heard of still refuses the writes. */
void mig_mark_apply(struct disk *d, const char *path, const struct vhdx_scope *sp)
{
	if (d->moved_to)
		return;
	int dfd;
	scm_error *err = NULL;
	if (bjob_journal_dir(path, sp, &dfd, &err) < 0) {
		scm_error_free(err);
		return;
	}
	char *dest = NULL;
	if (mark_read(dfd, path, &dest, NULL) > 0)
		d->moved_to = dest;
	else
		free(dest);
	close(dfd);
}

int do_migrated(scm_call *call, const char *path, bool clear, void *ud)
{
	(void)ud;
	struct channel *c = channel_get(call);
	if (!c)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "clear", json_object_new_boolean(clear));
	struct allow_ctx actx = { scm_call_grant(call), "migrated", a, NULL };
	struct vhdx_scope scope;
	bool scoped;
	if (!scope_get(call, c, "migrated", &actx, &scope, &scoped))
		return 0;
	int dfd;
	scm_error *err = NULL;
	int r = bjob_journal_dir(path, scoped ? &scope : NULL, &dfd, &err);
	if (r < 0)
		return fail_chain(call, engine_code(r), err, "migrated %s", path);
	_cleanup_free_ char *dest = NULL;
	r = mark_read(dfd, path, &dest, &err);
	if (r < 0) {
		close(dfd);
		return fail_chain(call, r == -ENOMEM ? SCM_E_INTERNAL : SCM_VDISK_E_BADDISK, err,
				  "migrated %s: its job journal cannot be read", path);
	}
	if (r == 0 || !clear) {
		close(dfd);
		return scm_vdisk_migrated_reply(call, dest ? dest : "");
	}
	/* the disk, if the provider holds it: the same file, by fd */
	char base[PATH_MAX];
	snprintf(base, sizeof base, "%s", path);
	const char *name = basename(base);
	struct stat st;
	struct disk *d = NULL;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		for (d = disks; d; d = d->next)
			if (d->dev == st.st_dev && d->ino == st.st_ino && !d->closing)
				break;
	if (d && d->writers) {
		close(dfd);
		return fail(call, SCM_VDISK_E_BUSY,
			    "migrated %s: %u handle%s opened for writing before the migration %s open: they keep "
			    "refusing writes; clear the mark once they are closed",
			    path, d->writers, d->writers == 1 ? "" : "s", d->writers == 1 ? "is" : "are");
	}
	/* Not fsynced: a crash may bring the mark back, which refuses
	 * writes: the safe side. */
	char jn[PATH_MAX], mn[PATH_MAX];
	mark_names(name, jn, mn, sizeof jn);
	r = unlinkat(dfd, jn, 0) < 0 && errno != ENOENT ? -errno : 0;
	close(dfd);
	if (r < 0)
		return fail(call, SCM_VDISK_E_IO, "migrated %s: removing the mark %s: %s", path, jn, strerror(-r));
	if (d) {
		free(d->moved_to);
		d->moved_to = NULL;
	}
	fprintf(stderr, "vdisk-provider: %s: the mark of its migration to %s was cleared: an ordinary disk again\n",
		path, dest);
	return scm_vdisk_migrated_reply(call, dest);
}
