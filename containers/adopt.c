/* adopt.c: a running container handed from one runtime process to the
 * next (scmd's restart in place, docs/restart.md).
 *
 * container_serialise() writes what the object holds as JSON: the fds by
 * number (pidfd, PID 1's status pipe, the rootless namespace fds), the
 * cgroup directories, and what exec needs later (the exec copy of the
 * spec, the seccomp filters as BPF text). The successor inherits the fds
 * across execve (or from systemd's fd store, whose numbers differ: a
 * mapping turns old numbers into new ones) and container_adopt() rebuilds
 * the object, trusting no fd it has not checked: the pidfd must name the
 * recorded pid, the status pipe must be a pipe, a namespace fd must live
 * on nsfs. check_only validates the JSON alone (scmd --check-state). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"
#include "scm-internal/error.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

#define J(o, k, v) json_object_object_add((o), (k), (v))
#define JI(i) json_object_new_int64((int64_t)(i))

static json_object *filter_json(const sc_filter *f)
{
	if (!f)
		return NULL;
	/* one "code jt jf k" group of hex per instruction */
	size_t n = f->prog.len;
	char *s = malloc(n * 22 + 1), *p = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct sock_filter *x = &f->prog.filter[i];
		p += sprintf(p, "%04x%02x%02x%08x ", x->code, x->jt, x->jf, x->k);
	}
	*p = 0;
	json_object *o = json_object_new_string(s);
	free(s);
	return o;
}

static int filter_parse(const char *s, sc_filter **ret)
{
	size_t len = strlen(s), n = len / 17;
	if (len % 17 || n == 0 || n > BPF_MAXINSNS)
		return -EINVAL;
	sc_filter *f = calloc(1, sizeof(*f) + n * sizeof(struct sock_filter));
	if (!f)
		return -ENOMEM;
	struct sock_filter *ins = (struct sock_filter *)(f + 1);
	for (size_t i = 0; i < n; i++) {
		/* by hand: a state carries a filter per container, and sscanf
		 * was most of the successor's time reading one */
		const char *g = s + i * 17;
		uint64_t v = 0;
		for (int j = 0; j < 16; j++) {
			char ch = g[j];
			int x = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
			if (x < 0) {
				free(f);
				return -EINVAL;
			}
			v = v << 4 | (uint64_t)x;
		}
		if (g[16] != ' ') {
			free(f);
			return -EINVAL;
		}
		ins[i] = (struct sock_filter){ (uint16_t)(v >> 48), (uint8_t)(v >> 40), (uint8_t)(v >> 32), (uint32_t)v };
	}
	f->prog = (struct sock_fprog){ .len = (unsigned short)n, .filter = ins };
	*ret = f;
	return 0;
}

static json_object *strv_json(char **v)
{
	json_object *a = json_object_new_array();
	for (; v && *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

json_object *container_serialise(const container *c)
{
	json_object *o = json_object_new_object(), *ns = json_object_new_array(), *cg = json_object_new_object();
	json_object *dirs = json_object_new_array(), *v2 = json_object_new_array(), *sp = json_object_new_object();
	J(o, "id", json_object_new_string(c->id));
	J(o, "pid", JI(c->pid));
	J(o, "pidfd", JI(c->pidfd));
	J(o, "status_fd", JI(c->status_fd));
	for (size_t i = 0; i < ELEMENTSOF(c->ns_fds); i++)
		json_object_array_add(ns, JI(c->ns_fds[i]));
	J(o, "ns_fds", ns);
	J(o, "namespaces", JI(c->namespaces));
	J(o, "userns", json_object_new_boolean(c->userns));
	J(o, "rootless", json_object_new_boolean(c->rootless));
	for (int k = 0; k < CG_COUNT; k++) {
		json_object_array_add(dirs, c->cg.dirs[k] ? json_object_new_string(c->cg.dirs[k]) : NULL);
		json_object_array_add(v2, json_object_new_boolean(c->cg.v2[k]));
	}
	J(cg, "dirs", dirs);
	J(cg, "v2", v2);
	J(cg, "all_v2", json_object_new_boolean(c->cg.all_v2));
	J(cg, "rlimit_nproc", JI(c->cg.rlimit_nproc));
	J(cg, "rlimit_as", JI(c->cg.rlimit_as));
	J(cg, "frozen", json_object_new_boolean(c->cg.frozen));
	J(o, "cgroups", cg);
	/* the exec copy of the spec (launch.c: exec_spec_copy) */
	const container_spec *s = c->spec;
	J(sp, "uid", JI(s->uid));
	J(sp, "gid", JI(s->gid));
	json_object *caps = json_object_new_array(), *gids = json_object_new_array(), *rl = json_object_new_array();
	uint64_t cv[] = { s->caps.bounding, s->caps.effective, s->caps.permitted, s->caps.inheritable, s->caps.ambient };
	for (size_t i = 0; i < ELEMENTSOF(cv); i++)
		json_object_array_add(caps, JI(cv[i]));
	J(sp, "caps", caps);
	J(sp, "no_new_privileges", json_object_new_boolean(s->no_new_privileges));
	J(sp, "env", strv_json(s->env));
	for (size_t i = 0; i < s->n_additional_gids; i++)
		json_object_array_add(gids, JI(s->additional_gids[i]));
	J(sp, "additional_gids", gids);
	for (size_t i = 0; i < s->n_rlimits; i++) {
		json_object *r = json_object_new_array();
		json_object_array_add(r, JI(s->rlimits[i].resource));
		json_object_array_add(r, JI(s->rlimits[i].soft));
		json_object_array_add(r, JI(s->rlimits[i].hard));
		json_object_array_add(rl, r);
	}
	J(sp, "rlimits", rl);
	const container_resources *res = &s->resources;
	json_object *ra = json_object_new_array();
	int64_t rv[] = { res->memory_limit, res->pids_limit, res->cpu_shares, res->cpu_quota, res->cpu_period,
			 res->defaulted };
	for (size_t i = 0; i < ELEMENTSOF(rv); i++)
		json_object_array_add(ra, JI(rv[i]));
	J(sp, "resources", ra);
	J(o, "spec", sp);
	J(o, "filter", filter_json(c->filter));
	J(o, "narrowed", filter_json(c->narrowed));
	return o;
}

size_t container_fds(const container *c, int *fds, size_t max)
{
	size_t n = 0;
	int all[2 + ELEMENTSOF(c->ns_fds)] = { c->pidfd, c->status_fd };
	for (size_t i = 0; i < ELEMENTSOF(c->ns_fds); i++)
		all[2 + i] = c->ns_fds[i];
	for (size_t i = 0; i < ELEMENTSOF(all) && n < max; i++)
		if (all[i] >= 0)
			fds[n++] = all[i];
	return n;
}

/* ---- adopting --------------------------------------------------------- */

static int bad(scm_error **ret_err, const char *ptr, const char *what)
{
	return scm_fail(ret_err, CONTAINER_E_SPEC, "container state %s: %s", ptr, what);
}

static json_object *get(json_object *o, const char *k, json_type t)
{
	json_object *v;
	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, t))
		return NULL;
	return v;
}

static int64_t geti(json_object *o, const char *k)
{
	return json_object_get_int64(get(o, k, json_type_int));
}

/* The pidfd's fdinfo says which process it refers to ("Pid:"). */
static bool pidfd_is(int fd, pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool ok = false;
	while (fgets(buf, sizeof(buf), f)) {
		int p;
		if (sscanf(buf, "Pid: %d", &p) == 1) {
			ok = p == pid; /* -1 once reaped, and only its parent reaps it */
			break;
		}
	}
	fclose(f);
	return ok;
}

static int map_fd(int64_t v, container_fd_map map, void *ud)
{
	if (v < 0)
		return -1;
	if (v > INT32_MAX)
		return -2;
	return map ? map(ud, (int)v) : (int)v;
}

static int adopt(json_object *o, container_fd_map map, void *ud, bool check_only, bool own, container **ret,
		 scm_error **ret_err);

int container_adopt(json_object *o, container_fd_map map, void *ud, bool check_only, container **ret,
		    scm_error **ret_err)
{
	return adopt(o, map, ud, check_only, false, ret, ret_err);
}

int container_adopt_own(json_object *o, container_fd_map map, void *ud, container **ret, scm_error **ret_err)
{
	return adopt(o, map, ud, false, true, ret, ret_err);
}

static int adopt(json_object *o, container_fd_map map, void *ud, bool check_only, bool own, container **ret,
		 scm_error **ret_err)
{
	static const char *const ints[] = { "pid", "pidfd", "status_fd", "namespaces" };
	json_object *ns, *cg, *dirs, *v2, *sp, *caps, *env, *gids, *rl, *res, *v;
	for (size_t i = 0; i < ELEMENTSOF(ints); i++)
		if (!get(o, ints[i], json_type_int))
			return bad(ret_err, ints[i], "expected an integer");
	if (!get(o, "id", json_type_string))
		return bad(ret_err, "/id", "expected a string");
	if (!(ns = get(o, "ns_fds", json_type_array)) || json_object_array_length(ns) != 7)
		return bad(ret_err, "/ns_fds", "expected 7 fd numbers");
	if (!(cg = get(o, "cgroups", json_type_object)) || !(dirs = get(cg, "dirs", json_type_array)) ||
	    !(v2 = get(cg, "v2", json_type_array)) || json_object_array_length(dirs) != CG_COUNT ||
	    json_object_array_length(v2) != CG_COUNT)
		return bad(ret_err, "/cgroups", "expected dirs and v2, one per controller");
	if (!(sp = get(o, "spec", json_type_object)) || !(caps = get(sp, "caps", json_type_array)) ||
	    json_object_array_length(caps) != 5 || !(env = get(sp, "env", json_type_array)) ||
	    !(gids = get(sp, "additional_gids", json_type_array)) || !(rl = get(sp, "rlimits", json_type_array)) ||
	    !(res = get(sp, "resources", json_type_array)) || json_object_array_length(res) != 6 ||
	    !get(sp, "uid", json_type_int) || !get(sp, "gid", json_type_int))
		return bad(ret_err, "/spec", "expected uid, gid, caps[5], env, additional_gids, rlimits, resources[6]");
	for (int k = 0; k < CG_COUNT; k++) {
		json_object *dk = json_object_array_get_idx(dirs, (size_t)k);
		if (dk && (!json_object_is_type(dk, json_type_string) ||
			   strncmp(json_object_get_string(dk), "/sys/fs/cgroup/", 15) != 0 ||
			   strstr(json_object_get_string(dk), "/..")))
			return bad(ret_err, "/cgroups/dirs", "a cgroup directory is a path under /sys/fs/cgroup");
	}
	_cleanup_(strv_freep) char **envv = strv_from_json(env, 4096, false, NULL);
	if (!envv)
		return bad(ret_err, "/spec/env", "expected strings");
	sc_filter *filt[2] = { NULL, NULL };
	const char *fk[2] = { "filter", "narrowed" };
	for (int i = 0; i < 2; i++) {
		if (!json_object_object_get_ex(o, fk[i], &v) || !v)
			continue;
		if (!json_object_is_type(v, json_type_string) || filter_parse(json_object_get_string(v), &filt[i]) < 0) {
			free(filt[0]);
			return bad(ret_err, fk[i], "expected BPF instructions");
		}
	}
	if (check_only) {
		free(filt[0]);
		free(filt[1]);
		return 0;
	}

	container *c = calloc(1, sizeof(*c));
	container_spec *s = calloc(1, sizeof(*s));
	int r = -ENOMEM;
	if (!c || !s)
		goto fail;
	c->pidfd = c->status_fd = c->launch_fd = c->console_fd = c->pty_master = -1;
	for (size_t i = 0; i < ELEMENTSOF(c->ns_fds); i++)
		c->ns_fds[i] = -1;
	c->cg = (cgroup_set){ .procs_fd = { -1, -1, -1, -1, -1 }, .v2_dir_fd = -1 };
	c->spec = s;
	c->owned_filter = filt[0];
	c->owned_narrowed = filt[1];
	c->filter = filt[0];
	c->narrowed = filt[1];
	c->id = strdup(json_object_get_string(get(o, "id", json_type_string)));
	c->pid = (pid_t)geti(o, "pid");
	c->namespaces = (unsigned)geti(o, "namespaces");
	c->userns = json_object_get_boolean(get(o, "userns", json_type_boolean));
	c->rootless = json_object_get_boolean(get(o, "rootless", json_type_boolean));
	/* the fds: each checked before it is believed */
	r = CONTAINER_E_SPEC;
	c->pidfd = map_fd(geti(o, "pidfd"), map, ud);
	if (c->pid <= 1 || c->pidfd < 0 || (!own && !pidfd_is(c->pidfd, c->pid))) {
		c->pidfd = -1;
		bad(ret_err, "/pidfd", "not a pidfd of the recorded pid");
		goto fail;
	}
	struct stat st;
	c->status_fd = map_fd(geti(o, "status_fd"), map, ud);
	if (c->status_fd < 0 || (!own && (fstat(c->status_fd, &st) < 0 || !S_ISFIFO(st.st_mode)))) {
		c->status_fd = -1;
		bad(ret_err, "/status_fd", "not a pipe");
		goto fail;
	}
	for (size_t i = 0; i < ELEMENTSOF(c->ns_fds); i++) {
		struct statfs sf;
		int fd = map_fd(json_object_get_int64(json_object_array_get_idx(ns, i)), map, ud);
		if (fd == -1)
			continue;
		if (fd < 0 || (!own && (fstatfs(fd, &sf) < 0 || sf.f_type != NSFS_MAGIC))) {
			bad(ret_err, "/ns_fds", "not a namespace");
			goto fail;
		}
		c->ns_fds[i] = fd;
	}
	for (int k = 0; k < CG_COUNT; k++) {
		json_object *dk = json_object_array_get_idx(dirs, (size_t)k);
		c->cg.dirs[k] = dk ? strdup(json_object_get_string(dk)) : NULL;
		c->cg.v2[k] = json_object_get_boolean(json_object_array_get_idx(v2, (size_t)k));
	}
	c->cg.all_v2 = json_object_get_boolean(get(cg, "all_v2", json_type_boolean));
	c->cg.rlimit_nproc = geti(cg, "rlimit_nproc");
	c->cg.rlimit_as = geti(cg, "rlimit_as");
	c->cg.frozen = json_object_get_boolean(get(cg, "frozen", json_type_boolean));
	s->uid = (uid_t)geti(sp, "uid");
	s->gid = (gid_t)geti(sp, "gid");
	uint64_t *cv[] = { &s->caps.bounding, &s->caps.effective, &s->caps.permitted, &s->caps.inheritable,
			   &s->caps.ambient };
	for (size_t i = 0; i < ELEMENTSOF(cv); i++)
		*cv[i] = (uint64_t)json_object_get_int64(json_object_array_get_idx(caps, i));
	s->no_new_privileges = json_object_get_boolean(get(sp, "no_new_privileges", json_type_boolean));
	s->env = TAKE_PTR(envv);
	r = -ENOMEM;
	size_t ng = json_object_array_length(gids), nr = json_object_array_length(rl);
	if ((ng && !(s->additional_gids = calloc(ng, sizeof(gid_t)))) ||
	    (nr && !(s->rlimits = calloc(nr, sizeof(container_rlimit)))))
		goto fail;
	for (size_t i = 0; i < ng; i++)
		s->additional_gids[i] = (gid_t)json_object_get_int64(json_object_array_get_idx(gids, i));
	s->n_additional_gids = ng;
	for (size_t i = 0; i < nr; i++) {
		json_object *x = json_object_array_get_idx(rl, i);
		s->rlimits[i] = (container_rlimit){ (int)json_object_get_int64(json_object_array_get_idx(x, 0)),
						    (uint64_t)json_object_get_int64(json_object_array_get_idx(x, 1)),
						    (uint64_t)json_object_get_int64(json_object_array_get_idx(x, 2)) };
	}
	s->n_rlimits = nr;
	int64_t *rv[] = { &s->resources.memory_limit, &s->resources.pids_limit, &s->resources.cpu_shares,
			  &s->resources.cpu_quota, &s->resources.cpu_period };
	for (size_t i = 0; i < ELEMENTSOF(rv); i++)
		*rv[i] = json_object_get_int64(json_object_array_get_idx(res, i));
	s->resources.defaulted = (unsigned)json_object_get_int64(json_object_array_get_idx(res, 5));
	if ((r = caps_prepare(&s->caps, &c->caps)) < 0) {
		scm_fail(ret_err, r, "container state /spec/caps: %s", strerror(-r));
		goto fail;
	}
	if (!c->id)
		goto fail;
	*ret = c;
	return 0;
fail:
	if (c) {
		/* the fds stay the caller's: it closes what it inherited */
		c->pidfd = c->status_fd = -1;
		for (size_t i = 0; i < ELEMENTSOF(c->ns_fds); i++)
			c->ns_fds[i] = -1;
		c->reaped = true; /* nothing to kill: it is not ours */
		for (int k = 0; k < CG_COUNT; k++) {
			free(c->cg.dirs[k]);
			c->cg.dirs[k] = NULL;
		}
		container_free(c);
	} else {
		container_spec_free(s);
		free(filt[0]);
		free(filt[1]);
	}
	return r;
}
