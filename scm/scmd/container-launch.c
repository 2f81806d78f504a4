/* container-launch.c: from a `container run` request (or a provider's
 * activation) to a launched container. scmd_ctr_start builds the spec (a
 * bundle or the quick path), applies the effective profile's sandbox (the
 * default sandbox's limits fill what no profile sets), gives the container
 * a clean environment and its endpoint (labelled with its name and
 * profiles; the runtime binds it at /run/scm/scm.sock inside, its only door
 * out), and clones the child. The launch then goes on in the child: its
 * error pipe and a timer are watched, and the launch ends as done (the
 * `run` call is answered) or abandoned (killed; the record goes dying).
 * Split from container-hook.c (moves only). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "container-hook.h"
#include "policy.h"
#include "scm-internal/error.h"

#define CTR_FDS 6          /* pidfd, status pipe, launch pipe, output pipe, log, endpoint socket */

static void launch_done(struct scmd *d, struct scmd_ctr *t, int r, scm_error *why);

static void launch_unwatch(struct scmd *d, struct scmd_ctr *t)
{
	/* The launch fd is the container's; it may be closed already. */
	t->launchw.fd = container_launch_fd(t->c);
	watch_del(d, &t->launchw);
	t->launchw.fd = -1;
	if (t->launch_timer.fd >= 0) {
		watch_del(d, &t->launch_timer);
		t->launch_timer.fd = safe_close(t->launch_timer.fd);
	}
}

/* Reads what the launch said so far; completes it on EOF. */
void ctr_launch_poll(struct scmd *d, struct scmd_ctr *t)
{
	scm_error *why = NULL;
	int r = container_start_finish(t->c, &why);
	if (r == -EAGAIN)
		return;
	launch_done(d, t, r, why);
}

static void on_launch(struct scmd *d, struct watch *w, uint32_t events)
{
	ctr_launch_poll(d, (struct scmd_ctr *)((char *)w - offsetof(struct scmd_ctr, launchw)));
}

/* The launch failed, timed out or was stopped: kill it, answer the run
 * call and the provider's activation, and let the pidfd watch free it. */
/* Gives up on a launch: e (taken) says why, on top of what the runtime
 * said (its chain, when there is one). */
static void launch_abandon_chain(struct scmd *d, struct scmd_ctr *t, scm_error *e)
{
	launch_unwatch(d, t);
	t->launching = false;
	t->dying = true;
	(void)container_signal(t->c, SIGKILL);
	_cleanup_free_ char *text = scm_error_text(e);
	log_error("%s", text ? text : "out of memory");
	if (t->run_conn)
		conn_send_error(d, t->run_conn, t->run_call, e);
	t->run_conn = NULL;
	t->attach_client_fd = safe_close(t->attach_client_fd);
	if (t->ep) {
		endpoint_remove(d, t->ep);
		t->ep = NULL;
	}
	struct service *s = t->provider_of;
	t->provider_of = NULL;
	if (s)
		service_container_failed(d, s, t->name, e);
	scm_error_free(e);
	audit_event(d->audit, "container-failed", "\"container\":%s", audit_quote(t->name));
	/* The pidfd watch (level-triggered) frees it once PID 1 is reaped. */
}

void ctr_launch_abandon(struct scmd *d, struct scmd_ctr *t, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = scm_error_newv(code, "scmd/container", fmt, ap);
	va_end(ap);
	launch_abandon_chain(d, t, e);
}

static void launch_done(struct scmd *d, struct scmd_ctr *t, int r, scm_error *why)
{
	launch_unwatch(d, t);
	if (r != 0) {
		launch_abandon_chain(d, t, why ? scm_error_wrap(why, r, "scmd/container", "container '%s' did not start",
								t->name)
					       : scm_error_new(r, "scmd/container", "container '%s' did not start: %s",
							       t->name, strerror(-r)));
		return;
	}
	t->launching = false;
	if (t->tty)
		t->attach_client_fd = container_pty_take(t->c);
	d->store_dirty = true; /* now it is carried (restart-ctr.c) */
	audit_event(d->audit, "container-start", "\"container\":%s,\"pid\":%d", audit_quote(t->name),
		    container_pid(t->c));
	if (t->run_conn) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(t->name));
		json_object_object_add(o, "pid", json_object_new_int(container_pid(t->c)));
		json_object_object_add(o, "endpoint", json_object_new_string(t->ep->path));
		conn_send(d, t->run_conn, SCM_FRAME_REPLY, t->run_call, o, &t->attach_client_fd,
			  t->attach_client_fd >= 0 ? 1 : 0);
		json_object_put(o);
	}
	t->run_conn = NULL;
	t->attach_client_fd = safe_close(t->attach_client_fd);
}

static void on_launch_timer(struct scmd *d, struct watch *w, uint32_t events)
{
	struct scmd_ctr *t = (struct scmd_ctr *)((char *)w - offsetof(struct scmd_ctr, launch_timer));
	ctr_launch_abandon(d, t, SCM_E_TIMEOUT,
			   "container '%s' did not start within %u ms (its setup is stuck: a mount source on a dead "
			   "filesystem?); killed it", t->name, d->launch_timeout_ms);
}

/* A clean environment: nothing of scmd's leaks into containers. */
static int set_env(container_spec *spec, json_object *extra, bool provider)
{
	size_t n = extra ? json_object_array_length(extra) : 0;
	char **env = calloc(n + 7, sizeof(char *));
	size_t k = 0;
	if (!env)
		return -ENOMEM;
	env[k++] = strdup("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	env[k++] = strdup("HOME=/tmp"); /* private and writable, whoever runs there */
	env[k++] = strdup("SCM_ENDPOINT=" CONTAINER_ENDPOINT_PATH);
	if (provider)
		env[k++] = strdup("SCM_PROVIDER_ENDPOINT=" CONTAINER_ENDPOINT_PATH);
	/* Sanitizer settings are the one thing a sanitized build's containers
	 * must share with scmd (LeakSanitizer cannot ptrace in there). */
	const char *san[] = { "ASAN_OPTIONS", "UBSAN_OPTIONS" };
	for (size_t i = 0; i < ELEMENTSOF(san); i++) {
		const char *v = getenv(san[i]);
		if (v && asprintf(&env[k], "%s=%s", san[i], v) >= 0)
			k++;
	}
	for (size_t i = 0; i < n; i++) {
		const char *e = json_object_get_string(json_object_array_get_idx(extra, i));
		if (!e || !strchr(e, '=')) {
			strv_free(env);
			return -EINVAL;
		}
		env[k++] = strdup(e);
	}
	if (!provider && !spec->quick && spec->env) {
		/* keep a bundle's own environment after ours (the quick path's is
		 * scmd's, which is none of the container's business) */
		size_t m = 0;
		while (spec->env[m])
			m++;
		char **all = calloc(k + m + 1, sizeof(char *));
		if (!all) {
			strv_free(env);
			return -ENOMEM;
		}
		memcpy(all, env, k * sizeof(char *));
		for (size_t i = 0; i < m; i++)
			all[k + i] = strdup(spec->env[i]);
		free(env);
		env = all;
	}
	strv_free(spec->env);
	spec->env = env;
	return 0;
}

static bool under(const char *path, const char *dir)
{
	size_t n = dir ? strlen(dir) : 0;
	return n && strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* The quick path sees /usr, /etc and the runtime's own tree; hide scmd's
 * runtime directory (other endpoints, the control socket) and its state
 * directory (other containers' logs) when one lies in what it sees. */
static int hide_runtime_dir(struct scmd *d, container_spec *spec)
{
	_cleanup_free_ char *self = spec->quick ? container_self_tree() : NULL;
	const char *dirs[] = { d->runtime_dir, d->state_dir };
	for (size_t i = 0; spec->quick && i < ELEMENTSOF(dirs); i++) {
		if (!dirs[i] || !(under(dirs[i], "/usr") || under(dirs[i], "/etc") || under(dirs[i], self)))
			continue;
		container_mount *m = reallocarray(spec->mounts, spec->n_mounts + 1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		spec->mounts = m;
		m[spec->n_mounts++] = (container_mount){ .destination = strdup(dirs[i]), .type = strdup("tmpfs"),
							 .source = strdup("tmpfs"), .data = strdup("mode=0755,size=64k") };
	}
	return 0;
}

int scmd_ctr_start(struct scmd *d, const struct container_req *req, struct container_started *ret,
		     scm_error **ret_err)
{
	_cleanup_free_ char *sandbox_json = NULL;
	container_spec *spec = NULL;
	container_sandbox *sb = NULL;
	struct policy_effective *eff = NULL;
	struct endpoint *ep = NULL;
	int outp[2] = { -1, -1 }, attp[2] = { -1, -1 }, r;
	char name[64];

	/* The caller's terminal is never the container's: through it a
	 * program could leave echo off after it ends or push input (TIOCSTI)
	 * into the caller's shell. An attached run with a terminal asks for a
	 * pty of its own ("tty"), which scmctl relays. */
	if (req->stdin_fd >= 0 && isatty(req->stdin_fd))
		return scm_fail(ret_err, SCM_E_INVALID,
				"stdin is a terminal: ask for a pty (\"tty\": true) instead of passing it");
	if (req->tty && !req->attach)
		return scm_fail(ret_err, SCM_E_INVALID, "\"tty\" needs an attached run");

	if (req->name) {
		if (!name_valid(req->name, 48, NAME_FILE))
			return scm_fail(ret_err, SCM_E_INVALID,
					"container name '%s' is not valid: 1-48 of [A-Za-z0-9._-], not starting with '.' or '-'",
					req->name);
		snprintf(name, sizeof(name), "%s", req->name);
	} else
		snprintf(name, sizeof(name), "c%llu", (unsigned long long)++d->next_container);
	if (ctr_find(d, name) || endpoint_find(d, name))
		return scm_fail(ret_err, SCM_E_EXISTS, "the name '%s' is taken by a container or endpoint", name);
	/* What a container makes scmd hold (pidfd, status and launch pipes,
	 * output and log, the endpoint's socket, namespace fds when rootless):
	 * charged up front against a budget well inside RLIMIT_NOFILE, so
	 * containers can never take the fds clients and logs need. */
	unsigned fds = CTR_FDS + (geteuid() != 0 ? 7 : 0) + (req->attach ? 1 : 0);
	if (d->ctr_fds_used + fds > d->ctr_fds_limit)
		return scm_fail(ret_err, SCM_E_QUOTA,
				"no room for container '%s': containers hold %u of the %u file descriptors scmd allows them",
				name, d->ctr_fds_used, d->ctr_fds_limit);

	if (req->bundle)
		r = container_spec_load(req->bundle, &spec, ret_err);
	else
		r = container_spec_quick(req->argv, &spec);
	if (r != 0)
		return scm_fail(ret_err, r, "%s%s%s", req->bundle ? req->bundle : "command", r < 0 ? ": " : "",
				r < 0 ? strerror(-r) : "");

	/* Profiles: asked for, else the bundle's annotation. */
	char **profiles = req->profiles && req->profiles[0] ? req->profiles : spec->profiles;
	char **prof_copy = NULL;
	if (profiles && profiles[0]) {
		size_t n = 0;
		while (profiles[n])
			n++;
		prof_copy = calloc(n + 1, sizeof(char *));
		for (size_t i = 0; prof_copy && i < n; i++)
			prof_copy[i] = strdup(profiles[i]);
		r = scmd_policy_effective(d, prof_copy, &eff, ret_err);
		if (r != 0)
			goto fail;
		if ((r = policy_sandbox_to_json(eff, &sandbox_json, ret_err)) != 0)
			goto fail;
		r = container_sandbox_parse(sandbox_json, strlen(sandbox_json), &sb, ret_err);
		if (r != 0) {
			r = scm_fail(ret_err, r, "the profiles' sandbox");
			goto fail;
		}
		container_sandbox_apply(spec, sb);
		if (req->clip && !spec->quick)
			container_sandbox_clip(spec, sb);
		/* The quick path asks for nothing itself: it gets what its
		 * profiles allow (every set, ambient too, so a non-root user keeps
		 * them across exec). A bundle gets what it asks for, if allowed. */
		if (spec->quick) {
			uint64_t k = sb->caps_keep;
			spec->caps = (container_caps){ k, k, k, k, k };
		}
	}
	if (!sb)
		container_sandbox_apply(spec, NULL); /* the default sandbox's limits */
	if (spec->quick && !spec->hostname)
		spec->hostname = strdup(name);
	if (req->uid >= 0) {
		spec->uid = (uid_t)req->uid;
		spec->gid = (gid_t)(req->gid >= 0 ? req->gid : req->uid);
	}
	/* The endpoint belongs to the host id the container's user maps to. */
	uid_t owner = scmd_ctr_host_uid(d, spec);
	if ((r = scmd_ctr_add_binds(spec, sb, req->binds, ret_err)) != 0)
		goto fail;
	if ((r = set_env(spec, req->env, req->provider != NULL)) != 0 || (r = hide_runtime_dir(d, spec)) != 0) {
		r = scm_fail(ret_err, r, "preparing the container: %s", strerror(-r));
		goto fail;
	}

	/* Its door out: an endpoint labelled with its name and profiles (for a
	 * provider, the socket its skeleton reports to). */
	struct quota lim = d->default_limit;
	r = endpoint_create_dir(d, name, owner, prof_copy, &lim, &ep, ret_err);
	if (r != 0)
		goto fail;
	scmd_ctr_endpoint_peers(d, ep);
	prof_copy = NULL; /* the endpoint owns them */
	ep->eff = TAKE_PTR(eff);
	ep->provider_of = req->provider;
	ep->container = true;

	struct scmd_ctr *t = calloc(1, sizeof(*t));
	if (!t || pipe2(outp, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (req->attach && !req->tty && pipe2(attp, O_CLOEXEC | O_NONBLOCK) < 0)) {
		r = scm_fail(ret_err, -errno, "pipe: %m");
		free(t);
		goto fail;
	}
	/* The container writes blocking; only scmd's read end is non-blocking. */
	fcntl(outp[1], F_SETFL, 0);
	t->name = strdup(name);
	(void)ctr_log_open(d, t, sb); /* without a log the container still runs */
	t->attach_fd = attp[1];
	list_init(&t->waiters);

	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	container_opts opts = CONTAINER_OPTS_INIT;
	opts.id = name;
	opts.endpoint = ep->dir;
	container_idrange range;
	scmd_ctr_idrange(d, &range);
	opts.idrange = &range;
	opts.stdin_fd = req->stdin_fd >= 0 ? req->stdin_fd : devnull;
	opts.join_fds = req->join_fds;
	opts.stdout_fd = outp[1];
	opts.stderr_fd = outp[1];
	if (req->tty) {
		/* A pty of the container's own devpts, made in there (so `tty`
		 * names it); its master comes back with the launch's end. Its
		 * output goes to the pty only: the log stays empty. */
		opts.pty = true;
		opts.pty_rows = req->tty_rows;
		opts.pty_cols = req->tty_cols;
		opts.pty_raw_out = req->tty_raw_out;
	}
	/* A bundle's "terminal" would keep scmd's session, and with it
	 * scmd's controlling terminal (/dev/tty): here it is a pty or none. */
	spec->terminal = false;
	opts.state_dir = d->runtime_dir;
	opts.cgroup_parent = d->cgroup_parent;
	opts.sandbox = sb;
	scm_error *why = NULL;
	r = container_start_begin(spec, &opts, &t->c, &why);
	safe_close(devnull);
	outp[1] = safe_close(outp[1]);
	if (r != 0) {
		/* the runtime's code goes on as it is: one code space */
		scm_error_push(ret_err, why);
		r = why ? scm_fail(ret_err, r, "container '%s' did not start", name)
			: scm_fail(ret_err, r, "container '%s' did not start: %s", name, strerror(-r));
		safe_close(t->log_fd);
		ctr_log_unlink_all(t);
		free(t->log_path);
		free(t->name);
		free(t);
		goto fail;
	}
	t->ep = ep;
	ep = NULL;
	t->serial = ++d->ctr_serial;
	t->provider_of = req->provider;
	t->started = now_usec();
	t->cmdline = strdup(req->bundle ? req->bundle : (spec->args && spec->args[0] ? spec->args[0] : "?"));
	t->sandbox_json = TAKE_PTR(sandbox_json);
	t->fds = fds;
	d->ctr_fds_used += fds;
	/* The launch goes on in the child; its end is an event. */
	t->launching = true;
	t->run_conn = req->reply_conn;
	t->run_call = req->call_id;
	t->attach_client_fd = TAKE_FD(attp[0]); /* a tty's master: at the launch's end */
	t->tty = req->tty;
	t->launchw = (struct watch){ container_launch_fd(t->c), on_launch };
	t->launch_timer = (struct watch){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
					  on_launch_timer };
	t->pidw = (struct watch){ container_pidfd(t->c), ctr_on_pidfd };
	t->outw = (struct watch){ TAKE_FD(outp[0]), ctr_on_output };
	watch_add(d, &t->launchw, EPOLLIN);
	if (t->launch_timer.fd >= 0) {
		timer_arm(&t->launch_timer, d->launch_timeout_ms);
		watch_add(d, &t->launch_timer, EPOLLIN);
	}
	watch_add(d, &t->pidw, EPOLLIN);
	watch_add(d, &t->outw, EPOLLIN);
	list_add(d->containers.prev, &t->node);
	d->store_dirty = true;
	ctr_state_write(d, t);
	ret->name = t->name;
	ret->pid = container_pid(t->c);
	ret->endpoint = t->ep->path;
	ret->serial = t->serial;
	container_sandbox_free(sb);
	container_spec_free(spec);
	return 0;

fail:
	if (ep)
		endpoint_remove(d, ep);
	strv_free(prof_copy);
	policy_effective_unref(eff);
	safe_close(outp[0]);
	safe_close(outp[1]);
	safe_close(attp[0]);
	safe_close(attp[1]);
	container_sandbox_free(sb);
	container_spec_free(spec);
	return r;
}
