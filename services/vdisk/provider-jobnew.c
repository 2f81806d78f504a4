/* provider-jobnew.c: what every job method does first (provider-jobs.h):
 * find the disk the call names among those the provider holds open for
 * writing, open the directory its journal lives in, and make the job. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider-jobs.h"

void bjob_free(struct bjob *b)
{
	mig_free(b);
	free(b->path);
	free(b->target);
	free(b->name);
	free(b->target_name);
	safe_close(b->dirfd);
	safe_close(b->rootfd);
	free(b->root);
	free(b->root_real);
	json_object_put(b->args);
	scm_error_free(b->err);
	scm_error_free(b->serr);
	free(b->waiters);
	free(b->dirty);
	free(b->buf);
	json_object_put(b->final);
	free(b);
}

/* The disk open at path (the same file, found as open finds it), for a
 * job method; NULL after replying. */
struct disk *bjob_disk_of(scm_call *call, const char *method, const char *path, json_object *args,
			    struct vhdx_scope *scope, bool *scoped)
{
	struct channel *c = channel_get(call);
	if (!c) {
		fail(call, SCM_E_INTERNAL, "out of memory");
		return NULL;
	}
	struct allow_ctx actx = { scm_call_grant(call), method, json_object_get(args), NULL };
	if (!scope_get(call, c, method, &actx, scope, scoped)) {
		json_object_put(actx.args);
		return NULL;
	}
	scope->allow = NULL; /* the path was checked by the skeleton; parents are the open's business */
	scope->remote = NULL; /* actx is gone when a job runs: jobs connect to no remote parent */
	json_object_put(actx.args);
	scm_error *err = NULL;
	vhdx *probe = NULL;
	int r = *scoped ? vhdx_open_scoped(scope, path, VHDX_O_RDONLY | VHDX_O_NO_LOCK | VHDX_O_NO_PARENT, &probe, &err)
			: vhdx_open_fd(-1, path, NULL, VHDX_O_RDONLY | VHDX_O_NO_LOCK | VHDX_O_NO_PARENT, &probe, &err);
	if (r < 0) {
		fail_chain(call, engine_code(r), err, "%s %s", method, path);
		return NULL;
	}
	uint64_t dev, ino;
	vhdx_file_id(probe, &dev, &ino);
	vhdx_close(probe);
	for (struct disk *d = disks; d; d = d->next)
		if (d->dev == dev && d->ino == ino && !d->closing && d->h) {
			if (!d->rw) {
				fail(call, SCM_VDISK_E_NOTOPEN, "%s: %s is open read-only in the provider: work on the file itself",
				     method, path);
				return NULL;
			}
			if (d->moved_to) {
				fail(call, SCM_VDISK_E_READONLY, "%s: %s was migrated to %s: it takes no more writes here",
				     method, path, d->moved_to);
				return NULL;
			}
			if (d->bjob) {
				fail(call, SCM_VDISK_E_JOBSTATE, "%s: job %llu runs on %s already", method,
				     (unsigned long long)d->bjob->id, path);
				return NULL;
			}
			/* A job rewrites the disk (or moves its writers): under a
			 * persistent reservation only a nexus that may write may
			 * start one, or a fenced node would get round the fence. */
			if (pr_refused(call, d->pr, true))
				return NULL;
			return d;
		}
	fail(call, SCM_VDISK_E_NOTOPEN, "%s: %s is not open in the provider: work on the file itself", method, path);
	return NULL;
}

/* The directory the journal of the disk at path lives in: beneath the
 * grant's directory when there is one (no link followed, as for the
 * disk's own files), else by its path. */
int bjob_journal_dir(const char *path, const struct vhdx_scope *scope, int *ret_fd, scm_error **ret_err)
{
	if (scope)
		return vhdx_scope_opendir(scope, path, ret_fd, ret_err);
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", path);
	int fd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "the directory of %s: %m", path);
	*ret_fd = fd;
	return 0;
}

struct bjob *bjob_new(struct disk *d, enum vjob_kind kind, const char *path, const char *target,
			     json_object *args, const struct vhdx_scope *scope, bool scoped, scm_error **ret_err)
{
	struct bjob *b = calloc(1, sizeof *b);
	char dir[PATH_MAX];
	if (!b)
		return NULL;
	b->dirfd = b->rootfd = -1;
	b->kind = kind;
	b->path = strdup(path);
	b->target = target ? strdup(target) : NULL;
	snprintf(dir, sizeof dir, "%s", path);
	b->name = strdup(basename(dir));
	if (target) {
		snprintf(dir, sizeof dir, "%s", target);
		b->target_name = strdup(basename(dir));
	}
	int r = bjob_journal_dir(path, scoped ? scope : NULL, &b->dirfd, ret_err);
	b->args = json_object_get(args);
	b->buf = malloc(BJOB_CHUNK);
	if (r < 0 || !b->path || !b->name || (target && (!b->target || !b->target_name)) || !b->buf) {
		if (r >= 0)
			scm_fail(ret_err, -ENOMEM, "out of memory");
		bjob_free(b);
		return NULL;
	}
	if (scoped) {
		b->rootfd = fcntl(scope->dirfd, F_DUPFD_CLOEXEC, 3);
		b->root = strdup(scope->dir);
		b->root_real = scope->dir_real ? strdup(scope->dir_real) : NULL;
		b->scope = (struct vhdx_scope){ .dirfd = b->rootfd, .dir = b->root, .dir_real = b->root_real,
						.bat_max = CHAIN_BAT_MAX };
		b->scoped = true;
		if (b->rootfd < 0 || !b->root) {
			scm_fail(ret_err, -ENOMEM, "out of memory");
			bjob_free(b);
			return NULL;
		}
	}
	struct vhdx_info in;
	vhdx_get_info(d->h, &in);
	b->vsize = in.virtual_size;
	b->block_size = in.block_size;
	b->total = kind == VJOB_SNAPSHOT ? 0 : in.virtual_size;
	b->d = d;
	return b;
}

/* What a snapshot killed in the middle left at its target: the child (a
 * VHDX), or the file vhdx_create had made but not yet signed (empty, or
 * its first 8 bytes still zero: killed between its O_EXCL open and its
 * first write). Only a regular file with no other name. */
bool bjob_half_made(int fd)
{
	static const uint8_t zero[8];
	uint8_t sig[8];
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1)
		return false;
	if (vhdx_probe_fd(fd) == 1)
		return true;
	ssize_t n = pread(fd, sig, sizeof sig, 0);
	return n == 0 || (n == (ssize_t)sizeof sig && !memcmp(sig, zero, sizeof sig));
}
