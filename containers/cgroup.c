/* cgroup.c: a per-container cgroup scm/<id> for the limits the spec asks
 * for, on cgroup v2 where the controller is available and on the v1
 * memory, pids and cpu hierarchies otherwise (hybrid hosts). Nothing is
 * created for a container without limits: the pid namespace already ties
 * its processes together. A rootless caller without a writable cgroup gets
 * RLIMIT_NPROC/RLIMIT_AS instead for pids and memory. Limits the default
 * sandbox filled in (resources.defaulted) are best effort: where their
 * controller is missing or not writable the container runs without them,
 * and memory gets no RLIMIT_AS stand-in. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

static const char *const cg_names[CG_COUNT] = {"memory", "pids", "cpu"};

int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	int r = n < 0 ? -errno : (size_t)n != len ? -EIO : 0;
	close(fd);
	return r;
}

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

/* Where the v2 hierarchy is and which controllers it offers. */
static const char *v2_root(char *controllers, size_t len)
{
	static const char *const roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
	for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
		if (!is_fs(roots[i], CGROUP2_SUPER_MAGIC))
			continue;
		char p[256];
		snprintf(p, sizeof(p), "%s/cgroup.controllers", roots[i]);
		FILE *f = fopen(p, "re");
		controllers[0] = 0;
		if (f) {
			if (!fgets(controllers, (int)len, f))
				controllers[0] = 0;
			fclose(f);
		}
		return roots[i];
	}
	return NULL;
}

static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *c = list; (c = strstr(c, w)); c += n)
		if ((c == list || c[-1] == ' ') && (c[n] == 0 || c[n] == ' ' || c[n] == '\n'))
			return true;
	return false;
}

static int set_limit(cgroup_set *cg, int k, const char *file, long long v, scm_error **err)
{
	char path[4200], val[64];
	snprintf(path, sizeof(path), "%s/%s", cg->dirs[k], file);
	snprintf(val, sizeof(val), "%lld", v);
	int r = write_file(path, val);
	if (r < 0)
		ctr_fail(err, r, "cgroup: writing %s to %s: %s", val, path, strerror(-r));
	return r;
}

static int write_limits(cgroup_set *cg, const container_resources *res, scm_error **err)
{
	int r = 0;
	if (cg->dirs[CG_MEMORY]) {
		if (cg->v2[CG_MEMORY]) {
			r = set_limit(cg, CG_MEMORY, "memory.max", res->memory_limit, err);
			/* No swap to hide in (absent when swap is off). */
			char p[4200];
			snprintf(p, sizeof(p), "%s/memory.swap.max", cg->dirs[CG_MEMORY]);
			(void)write_file(p, "0");
		} else {
			/* memory first: memsw may never be below it. The memsw
			 * file exists only with swap accounting; where it does,
			 * memory plus swap is held to the same limit, so swap is
			 * no way around it. */
			r = set_limit(cg, CG_MEMORY, "memory.limit_in_bytes", res->memory_limit, err);
			char p[4200];
			snprintf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", cg->dirs[CG_MEMORY]);
			if (r == 0 && access(p, F_OK) == 0)
				r = set_limit(cg, CG_MEMORY, "memory.memsw.limit_in_bytes", res->memory_limit,
					      err);
		}
		if (r < 0)
			return r;
	}
	if (cg->dirs[CG_PIDS] && (r = set_limit(cg, CG_PIDS, "pids.max", res->pids_limit, err)) < 0)
		return r;
	if (cg->dirs[CG_CPU]) {
		long long period = res->cpu_period > 0 ? res->cpu_period : 100000;
		if (cg->v2[CG_CPU]) {
			if (res->cpu_shares > 0 &&
			    (r = set_limit(cg, CG_CPU, "cpu.weight",
					   1 + ((res->cpu_shares - 2) * 9999) / 262142, err)) < 0)
				return r;
			if (res->cpu_quota > 0) {
				char p[4200], v[64];
				snprintf(p, sizeof(p), "%s/cpu.max", cg->dirs[CG_CPU]);
				snprintf(v, sizeof(v), "%lld %lld", (long long)res->cpu_quota, period);
				if ((r = write_file(p, v)) < 0) {
					ctr_fail(err, r, "cgroup: %s: %s", p, strerror(-r));
					return r;
				}
			}
		} else {
			if (res->cpu_shares > 0 &&
			    (r = set_limit(cg, CG_CPU, "cpu.shares", res->cpu_shares, err)) < 0)
				return r;
			if (res->cpu_quota > 0 &&
			    ((r = set_limit(cg, CG_CPU, "cpu.cfs_period_us", period, err)) < 0 ||
			     (r = set_limit(cg, CG_CPU, "cpu.cfs_quota_us", res->cpu_quota, err)) < 0))
				return r;
		}
	}
	return 0;
}

int cgroup_setup(cgroup_set *cg, const char *parent, const char *id,
		 const container_resources *res, bool rootless, scm_error **err)
{
	bool want[CG_COUNT] = {res->memory_limit > 0, res->pids_limit > 0,
			       res->cpu_shares > 0 || res->cpu_quota > 0};
	char ctl[512];
	const char *v2 = NULL;
	int r;
	*cg = (cgroup_set){.procs_fd = {-1, -1, -1, -1, -1}, .v2_dir_fd = -1, .rlimit_nproc = -1,
			   .rlimit_as = -1};
	if (!want[CG_MEMORY] && !want[CG_PIDS] && !want[CG_CPU])
		return 0;
	v2 = v2_root(ctl, sizeof(ctl));
	bool v2_used = false;
	const unsigned defaulted[CG_COUNT] = {res->defaulted & CONTAINER_LIMIT_MEMORY,
					      res->defaulted & CONTAINER_LIMIT_PIDS, 0};
	for (int k = 0; k < CG_COUNT; k++) {
		if (!want[k])
			continue;
		char base[256], dir[4096];
		if (v2 && has_word(ctl, cg_names[k])) {
			snprintf(base, sizeof(base), "%s", v2);
			cg->v2[k] = true;
		} else {
			snprintf(base, sizeof(base), "/sys/fs/cgroup/%s", cg_names[k]);
			if (!is_fs(base, CGROUP_SUPER_MAGIC)) {
				if (defaulted[k]) {
					want[k] = false;
					continue;
				}
				ctr_fail(err, -EOPNOTSUPP, "cgroup: no %s controller on this host",
						       cg_names[k]);
				return -EOPNOTSUPP;
			}
		}
		snprintf(dir, sizeof(dir), "%s/%s/%s", base, parent, id);
		r = mkdir_p(dir, 0755);
		if (r == -EACCES || r == -EPERM || r == -EROFS) {
			/* Rootless, no delegated cgroup: per-user rlimits hold
			 * the container inside its own user namespace. */
			if (rootless && k == CG_PIDS) {
				cg->rlimit_nproc = res->pids_limit;
				continue;
			}
			if (rootless && k == CG_MEMORY && !defaulted[k]) {
				cg->rlimit_as = res->memory_limit;
				continue;
			}
			if (defaulted[k]) {
				want[k] = false;
				continue;
			}
		}
		if (r < 0) {
			ctr_fail(err, r, "cgroup: creating %s: %s", dir, strerror(-r));
			return r;
		}
		if (!(cg->dirs[k] = strdup(dir)))
			return -ENOMEM;
		if (cg->v2[k] && !v2_used) {
			/* Enable the controllers on every level from the root's
			 * subtree down to the parent's (a parent may be nested:
			 * scmd uses scm/INSTANCE). */
			char p[4200], lvl[4096];
			size_t n = (size_t)snprintf(lvl, sizeof(lvl), "%s", base);
			for (const char *c = parent;; c++) {
				if (*c == '/' || *c == 0) {
					snprintf(p, sizeof(p), "%s/cgroup.subtree_control", lvl);
					for (int j = 0; j < CG_COUNT; j++)
						if (want[j] && has_word(ctl, cg_names[j])) {
							char w[32];
							snprintf(w, sizeof(w), "+%s", cg_names[j]);
							(void)write_file(p, w);
						}
				}
				if (*c == 0)
					break;
				if (n + 2 < sizeof(lvl)) {
					if (c == parent || c[-1] == '/')
						lvl[n++] = '/';
					if (*c != '/')
						lvl[n++] = *c;
					lvl[n] = 0;
				}
			}
			v2_used = true;
		}
	}
	if ((r = write_limits(cg, res, err)) < 0)
		return r;
	/* One fd per distinct directory: the child joins by writing "0". */
	cg->all_v2 = true;
	for (int k = 0; k < CG_COUNT; k++) {
		if (!cg->dirs[k])
			continue;
		cg->all_v2 &= cg->v2[k];
		bool dup = false;
		for (int j = 0; j < k; j++)
			dup |= cg->dirs[j] && strcmp(cg->dirs[j], cg->dirs[k]) == 0;
		if (dup)
			continue;
		char p[4200];
		snprintf(p, sizeof(p), "%s/cgroup.procs", cg->dirs[k]);
		cg->procs_fd[k] = open(p, O_WRONLY | O_CLOEXEC);
		if (cg->procs_fd[k] < 0) {
			r = -errno;
			ctr_fail(err, r, "cgroup: %s: %s", p, strerror(-r));
			return r;
		}
		if (cg->v2[k] && cg->v2_dir_fd < 0)
			cg->v2_dir_fd = open(cg->dirs[k], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	return 0;
}

void cgroup_enter_child(const cgroup_set *cg)
{
	for (int k = 0; k < CG_COUNT; k++)
		if (cg->procs_fd[k] >= 0)
			(void)!write(cg->procs_fd[k], "0", 1);
}

void cgroup_close_fds(cgroup_set *cg)
{
	for (int k = 0; k < CG_COUNT; k++)
		cg->procs_fd[k] = safe_close(cg->procs_fd[k]);
	cg->v2_dir_fd = safe_close(cg->v2_dir_fd);
}

int cgroup_remove(cgroup_set *cg)
{
	int ret = 0;
	cgroup_close_fds(cg);
	for (int k = 0; k < CG_COUNT; k++) {
		if (!cg->dirs[k])
			continue;
		bool dup = false;
		for (int j = 0; j < k; j++)
			dup |= cg->dirs[j] && strcmp(cg->dirs[j], cg->dirs[k]) == 0;
		if (!dup && rmdir(cg->dirs[k]) < 0 && errno != ENOENT)
			ret = -errno;
		free(cg->dirs[k]);
		cg->dirs[k] = NULL;
	}
	return ret;
}
