/* freeze.c: what changes while a container runs: pause and resume through
 * the cgroup freezer, its limits, and a seccomp filter narrowed for what
 * it starts next (container.h). The freezer cgroup is made at launch, so
 * every process the container ever has is in it: nothing is moved later,
 * and nothing forks its way around a pause. */
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

static bool is_fs(const char *path, long magic)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int r = n < 0 ? -errno : 0;
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return r;
}

void freezer_setup(cgroup_set *cg, const char *parent, const char *id)
{
	char dir[4096];
	cg->procs_fd[CG_FREEZER] = -1;
	/* a v2 cgroup the container has already freezes it all (cgroup.freeze
	 * is in every non-root v2 cgroup, no controller needed) */
	for (int k = 0; k < CG_FREEZER; k++)
		if (cg->dirs[k] && cg->v2[k]) {
			cg->dirs[CG_FREEZER] = strdup(cg->dirs[k]);
			cg->v2[CG_FREEZER] = true;
			return;
		}
	bool v2 = false;
	if (is_fs("/sys/fs/cgroup/freezer", CGROUP_SUPER_MAGIC))
		snprintf(dir, sizeof(dir), "/sys/fs/cgroup/freezer/%s/%s", parent, id);
	else if (is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC) || is_fs("/sys/fs/cgroup/unified", CGROUP2_SUPER_MAGIC)) {
		snprintf(dir, sizeof(dir), "%s/%s/%s",
			 is_fs("/sys/fs/cgroup", CGROUP2_SUPER_MAGIC) ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified",
			 parent, id);
		v2 = true;
	} else
		return;
	/* best effort: without one (rootless, no delegation) pause says so */
	if (mkdir_p(dir, 0755) < 0)
		return;
	char p[4200];
	snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || !(cg->dirs[CG_FREEZER] = strdup(dir))) {
		safe_close(fd);
		(void)rmdir(dir);
		return;
	}
	cg->procs_fd[CG_FREEZER] = fd;
	cg->v2[CG_FREEZER] = v2;
	/* joined by writing, with the v1 ones (as devices.c's BPF cgroup) */
	cg->all_v2 = false;
}

static const char *freezer_dir(const container *c, scm_error **ret_err)
{
	if (c->reaped) {
		ctr_fail(ret_err, -ESRCH, "container %s has ended", c->id);
		return NULL;
	}
	if (!c->cg.dirs[CG_FREEZER])
		ctr_fail(ret_err, CONTAINER_E_UNSUPPORTED,
			 "container %s has no freezer cgroup (no v1 freezer hierarchy and no writable v2 "
			 "cgroup when it started): it cannot be paused",
			 c->id);
	return c->cg.dirs[CG_FREEZER];
}

int container_freeze(container *c, bool freeze, scm_error **ret_err)
{
	const char *dir = freezer_dir(c, ret_err);
	if (!dir)
		return c->reaped ? -ESRCH : CONTAINER_E_UNSUPPORTED;
	char p[4200];
	bool v2 = c->cg.v2[CG_FREEZER];
	snprintf(p, sizeof(p), "%s/%s", dir, v2 ? "cgroup.freeze" : "freezer.state");
	int r = write_file(p, v2 ? (freeze ? "1" : "0") : (freeze ? "FROZEN" : "THAWED"));
	if (r < 0)
		return ctr_fail(ret_err, r, "%s %s: writing %s: %s", freeze ? "pausing" : "resuming", c->id, p,
				strerror(-r));
	c->cg.frozen = freeze;
	return 0;
}

int container_freeze_state(const container *c)
{
	const char *dir = c->cg.dirs[CG_FREEZER];
	if (!dir)
		return CONTAINER_THAWED;
	char p[4200], buf[256];
	bool v2 = c->cg.v2[CG_FREEZER];
	snprintf(p, sizeof(p), "%s/%s", dir, v2 ? "cgroup.events" : "freezer.state");
	int r = read_small(p, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (!v2)
		return strncmp(buf, "FROZEN", 6) == 0   ? CONTAINER_FROZEN
		       : strncmp(buf, "FREEZING", 8) == 0 ? CONTAINER_FREEZING
							  : CONTAINER_THAWED;
	/* v2: "frozen 1" once every process stopped; asked but not yet there */
	const char *f = strstr(buf, "frozen ");
	bool done = f && f[7] == '1';
	return done ? CONTAINER_FROZEN : c->cg.frozen ? CONTAINER_FREEZING : CONTAINER_THAWED;
}

static int set_knob(const container *c, int k, const char *file, long long v, scm_error **ret_err)
{
	char p[4200], val[32];
	snprintf(p, sizeof(p), "%s/%s", c->cg.dirs[k], file);
	snprintf(val, sizeof(val), "%lld", v);
	int r = write_file(p, val);
	return r < 0 ? ctr_fail(ret_err, r, "%s: writing %s to %s: %s", c->id, val, p, strerror(-r)) : 0;
}

int container_update_limits(container *c, const container_limits *l, scm_error **ret_err)
{
	static const char *const what[] = {"memory", "pids", "cpu"};
	const int64_t want[] = {l->memory, l->pids, l->cpu_weight};
	if (c->reaped)
		return ctr_fail(ret_err, -ESRCH, "container %s has ended", c->id);
	/* all or nothing as far as can be known beforehand */
	for (int k = CG_MEMORY; k <= CG_CPU; k++)
		if (want[k] >= 0 && !c->cg.dirs[k])
			return ctr_fail(ret_err, CONTAINER_E_UNSUPPORTED,
					"%s: it was started without a %s cgroup (no %s limit then, or no controller): "
					"the %s limit needs a restart",
					c->id, what[k], what[k], what[k]);
	if (l->cpu_weight == 0 || l->cpu_weight > 10000)
		return ctr_fail(ret_err, CONTAINER_E_SPEC, "cpu weight %lld is not 1-10000", (long long)l->cpu_weight);
	int r = 0;
	if (l->memory >= 0) {
		bool v2 = c->cg.v2[CG_MEMORY];
		if (v2)
			r = set_knob(c, CG_MEMORY, "memory.max", l->memory, ret_err);
		else {
			/* v1: memsw is never below memory; lowering moves memory
			 * first, raising memsw first */
			char p[4200];
			snprintf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", c->cg.dirs[CG_MEMORY]);
			bool memsw = access(p, F_OK) == 0;
			if (memsw && (r = set_knob(c, CG_MEMORY, "memory.memsw.limit_in_bytes", l->memory, NULL)) < 0) {
				r = set_knob(c, CG_MEMORY, "memory.limit_in_bytes", l->memory, ret_err);
				if (r == 0)
					r = set_knob(c, CG_MEMORY, "memory.memsw.limit_in_bytes", l->memory, ret_err);
			} else
				r = set_knob(c, CG_MEMORY, "memory.limit_in_bytes", l->memory, ret_err);
		}
		/* the kernel refuses a limit below what is in use (EBUSY) */
		if (r == -EBUSY)
			return ctr_fail(ret_err, r, "%s uses more memory than %lld bytes: the limit was not lowered",
					c->id, (long long)l->memory);
		if (r < 0)
			return r;
	}
	if (l->pids >= 0 && (r = set_knob(c, CG_PIDS, "pids.max", l->pids, ret_err)) < 0)
		return r;
	if (l->cpu_weight > 0) {
		if (c->cg.v2[CG_CPU])
			r = set_knob(c, CG_CPU, "cpu.weight", l->cpu_weight, ret_err);
		else /* cpu.shares 2-262144, weight 1-10000, 100 = 1024 as systemd maps them */
			r = set_knob(c, CG_CPU, "cpu.shares", (l->cpu_weight * 1024 + 50) / 100, ret_err);
		if (r < 0)
			return r;
	}
	return 0;
}

static bool in(char **v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* True when name is denied under sb: on the default list and not
 * allowed back, or denied on top of it. */
static bool denied(const container_sandbox *sb, const char *name)
{
	if (!sb)
		return in((char **)container_default_denied_syscalls(), name);
	if (in(sb->syscalls_denied, name))
		return true;
	return in((char **)container_default_denied_syscalls(), name) && !in(sb->syscalls_allowed, name);
}

int container_narrow_seccomp(container *c, const container_sandbox *old_sb, const container_sandbox *sb,
			     const char *cache_dir, scm_error **ret_err)
{
	if (c->reaped)
		return ctr_fail(ret_err, -ESRCH, "container %s has ended", c->id);
	/* what the old sandbox denies stays denied: a stacked filter could
	 * not allow it anyway, and the update would claim what it cannot do */
	const char *const *dflt = container_default_denied_syscalls();
	for (size_t i = 0; dflt[i]; i++)
		if (denied(old_sb, dflt[i]) && !denied(sb, dflt[i]))
			return ctr_fail(ret_err, CONTAINER_E_DENIED,
					"the new sandbox allows %s, which %s's denies: widening the seccomp filter "
					"needs a restart",
					dflt[i], c->id);
	for (char **v = old_sb ? old_sb->syscalls_denied : NULL; v && *v; v++)
		if (!denied(sb, *v))
			return ctr_fail(ret_err, CONTAINER_E_DENIED,
					"the new sandbox allows %s, which %s's denies: widening the seccomp filter "
					"needs a restart",
					*v, c->id);
	bool narrower = false;
	for (size_t i = 0; dflt[i] && !narrower; i++)
		narrower = denied(sb, dflt[i]) && !denied(old_sb, dflt[i]);
	for (char **v = sb->syscalls_denied; v && *v && !narrower; v++)
		narrower = !denied(old_sb, *v);
	if (!narrower)
		return 0;
	const sc_filter *f = NULL;
	int r = seccomp_prepare(c->spec, sb, cache_dir, &f, ret_err);
	if (r < 0)
		return r;
	c->narrowed = f;
	return 1;
}
