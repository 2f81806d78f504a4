/* container-hook.c: containers launched by scmd (containers/container.h).
 *
 * Each container gets an endpoint of its own, labelled with the container's
 * name and carrying its profiles; the runtime binds it at /run/scm/scm.sock
 * inside, and it is the container's only door out. The container's sandbox
 * comes from the same effective profile that decides its connects, and the
 * default sandbox's limits fill what no profile sets. Output goes through a
 * pipe that scmd drains into the container's log, a capped and rotated file
 * on disk in the state directory (and, for an attached `scmctl container
 * run`, into a second pipe scmctl copies to the terminal; scmd never blocks
 * on it; from a terminal, a pty of its own whose master scmctl gets
 * instead). When the container ends, its
 * endpoint is removed (revoking its channels), its cgroups and state are
 * gone, and an "exited" record stays for `show` and `logs` until removed. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "container.h"
#include "policy.h"
#include "scmd.h"

#define EXITED_KEEP 64     /* exited records kept for show/logs */
#define STOP_TIMEOUT_MS 5000
#define DRAIN_READS 16     /* reads of the output pipe per wakeup (256 KiB) */

struct waiter {
	struct list node;
	struct conn *conn;
	uint32_t call_id;
};

struct ctr {
	struct list node;
	char *name, *log_path, *cmdline;
	container *c;
	struct watch pidw, outw;
	int log_fd, attach_fd;
	int64_t log_size;     /* bytes in the current file */
	int64_t log_file_max; /* what one file may hold */
	int log_files;        /* rotated files kept beside the current one */
	struct endpoint *ep;
	struct service *provider_of; /* this container runs that service's provider */
	bool exited;
	int status;
	uint64_t started, ended;
	struct list waiters;
};

static struct ctr *ctr_find(struct scmd *d, const char *name)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct ctr *t = list_entry(p, struct ctr, node);
		if (strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

/* ---- the log -------------------------------------------------------------
 * STATE/logs/NAME.log and, rotated, NAME.log.1 .. NAME.log.K (newest
 * first). Each file holds at most max_bytes / (K + 1), so together they
 * never pass the cap whatever the container writes; a rotation cuts at a
 * line end when one is in reach. Rotating is K renames and an open, done at
 * most once per file's worth of output. */

static void log_file(const struct ctr *t, int k, char *buf, size_t len)
{
	if (k == 0)
		snprintf(buf, len, "%s", t->log_path);
	else
		snprintf(buf, len, "%s.%d", t->log_path, k);
}

static void log_unlink_all(const struct ctr *t)
{
	char p[PATH_MAX];
	if (!t->log_path)
		return;
	for (int k = 0; k < CONTAINERS_LOG_FDS_MAX; k++) {
		log_file(t, k, p, sizeof(p));
		(void)unlink(p);
	}
}

static int log_create(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
}

/* sb: the profiles' sandbox (its "log" size), or NULL for the default. */
static int log_open(struct scmd *d, struct ctr *t, const container_sandbox *sb)
{
	int64_t max = sb && sb->log_max_bytes > 0 ? sb->log_max_bytes : CONTAINER_DEFAULT_LOG_BYTES;
	int64_t files = sb && sb->log_files > 0 ? sb->log_files : CONTAINER_DEFAULT_LOG_FILES;
	if (files > CONTAINERS_LOG_FDS_MAX - 1)
		files = CONTAINERS_LOG_FDS_MAX - 1;
	t->log_files = (int)files;
	t->log_file_max = max / (files + 1);
	t->log_size = 0;
	t->log_fd = -1;
	if (asprintf(&t->log_path, "%s/logs/%s.log", d->state_dir, t->name) < 0) {
		t->log_path = NULL;
		return -ENOMEM;
	}
	log_unlink_all(t); /* what a container of that name left before scmd restarted */
	t->log_fd = log_create(t->log_path);
	return t->log_fd < 0 ? -errno : 0;
}

static void log_rotate(struct ctr *t)
{
	char from[PATH_MAX], to[PATH_MAX];
	t->log_fd = safe_close(t->log_fd);
	for (int k = t->log_files; k >= 1; k--) {
		log_file(t, k - 1, from, sizeof(from));
		log_file(t, k, to, sizeof(to));
		(void)rename(from, to); /* over the oldest */
	}
	t->log_fd = log_create(t->log_path);
	t->log_size = 0;
}

static void log_write(struct ctr *t, const char *buf, size_t n)
{
	size_t cap = (size_t)t->log_file_max, keep = cap * (size_t)(t->log_files + 1);
	if (n > keep) { /* no file would keep the head: skip its writes */
		buf += n - keep;
		n = keep;
	}
	while (n > 0 && t->log_fd >= 0) {
		size_t room = (size_t)t->log_size < cap ? cap - (size_t)t->log_size : 0, w = n;
		bool full = n > room;
		if (full) {
			const char *nl = room ? memrchr(buf, '\n', room) : NULL;
			w = nl ? (size_t)(nl - buf) + 1 : room;
		}
		if (w > 0) {
			ssize_t k = write(t->log_fd, buf, w);
			if (k < 0 || (size_t)k != w)
				return; /* disk full: this output is lost, the next may fit */
			t->log_size += k;
			buf += k;
			n -= (size_t)k;
		}
		if (full)
			log_rotate(t);
	}
}

/* Bounded work per wakeup: a container that writes without pause gets
 * DRAIN_READS reads, then the other watches of this epoll batch have
 * their turn; the pipe (blocking on the container's side) holds it back
 * meanwhile. */
static void drain_output(struct scmd *d, struct ctr *t)
{
	char buf[16384];
	for (int i = 0; i < DRAIN_READS; i++) {
		ssize_t n = read(t->outw.fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				watch_del(d, &t->outw);
				t->outw.fd = safe_close(t->outw.fd);
				t->attach_fd = safe_close(t->attach_fd); /* EOF for the attached client */
			}
			return;
		}
		log_write(t, buf, (size_t)n);
		/* The attached terminal gets what fits; the log keeps the latest. */
		if (t->attach_fd >= 0 && write(t->attach_fd, buf, (size_t)n) < 0 && errno != EAGAIN)
			t->attach_fd = safe_close(t->attach_fd);
	}
}

static void on_output(struct scmd *d, struct watch *w, uint32_t events)
{
	drain_output(d, (struct ctr *)((char *)w - offsetof(struct ctr, outw)));
}

static json_object *status_json(int status)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "exit_code", json_object_new_int(container_wait_status_to_exit(status)));
	if (WIFSIGNALED(status))
		json_object_object_add(o, "signal", json_object_new_int(WTERMSIG(status)));
	return o;
}

static void evict_old(struct scmd *d)
{
	size_t n = 0;
	struct list *p, *t;
	for (p = d->containers.next; p != &d->containers; p = p->next)
		n += list_entry(p, struct ctr, node)->exited;
	list_for_each_safe(p, t, &d->containers)
	{
		struct ctr *c = list_entry(p, struct ctr, node);
		if (n <= EXITED_KEEP)
			break;
		if (!c->exited)
			continue;
		list_del(&c->node);
		log_unlink_all(c);
		free(c->name);
		free(c->log_path);
		free(c->cmdline);
		free(c);
		n--;
	}
}

/* The container ended: answer waiters, drop its endpoint, free the runtime
 * object (cgroups, state), keep a record. */
static void ctr_ended(struct scmd *d, struct ctr *t, int status)
{
	struct list *p, *q;

	if (t->outw.fd >= 0)
		drain_output(d, t);
	t->exited = true;
	t->status = status;
	t->ended = now_usec();
	watch_del(d, &t->pidw);
	t->c = container_free(t->c);
	t->pidw.fd = -1;
	if (t->outw.fd >= 0) {
		watch_del(d, &t->outw);
		t->outw.fd = safe_close(t->outw.fd);
	}
	t->attach_fd = safe_close(t->attach_fd);
	t->log_fd = safe_close(t->log_fd);
	if (t->ep) {
		endpoint_remove(d, t->ep);
		t->ep = NULL;
	}
	list_for_each_safe(p, q, &t->waiters)
	{
		struct waiter *w = list_entry(p, struct waiter, node);
		json_object *o = status_json(status);
		json_object_object_add(o, "name", json_object_new_string(t->name));
		conn_send(d, w->conn, SCM_FRAME_REPLY, w->call_id, o, NULL, 0);
		json_object_put(o);
		list_del(&w->node);
		free(w);
	}
	audit_event(d->audit, "container-exit", "\"container\":%s,\"exit_code\":%d", audit_quote(t->name),
		    container_wait_status_to_exit(status));
	if (t->provider_of)
		service_container_exited(d, t->provider_of, status);
	evict_old(d);
}

static void on_pidfd(struct scmd *d, struct watch *w, uint32_t events)
{
	struct ctr *t = (struct ctr *)((char *)w - offsetof(struct ctr, pidw));
	int status;
	if (container_try_wait(t->c, &status) == 0)
		ctr_ended(d, t, status);
}

void containers_service_gone(struct scmd *d, struct service *s)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct ctr *t = list_entry(p, struct ctr, node);
		if (t->provider_of == s)
			t->provider_of = NULL;
		if (t->ep && t->ep->provider_of == s)
			t->ep->provider_of = NULL;
	}
}

/* A conn that goes away stops waiting for anything. */
void containers_conn_closed(struct scmd *d, struct conn *c)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct ctr *t = list_entry(p, struct ctr, node);
		struct list *q, *u;
		list_for_each_safe(q, u, &t->waiters)
		{
			struct waiter *w = list_entry(q, struct waiter, node);
			if (w->conn == c) {
				list_del(&w->node);
				free(w);
			}
		}
	}
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
			scmd_strv_free(env);
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
			scmd_strv_free(env);
			return -ENOMEM;
		}
		memcpy(all, env, k * sizeof(char *));
		for (size_t i = 0; i < m; i++)
			all[k + i] = strdup(spec->env[i]);
		free(env);
		env = all;
	}
	scmd_strv_free(spec->env);
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

/* A pty pair for an attached run: [0] the master (for scmctl), [1] the
 * slave, opened through the master (TIOCGPTPEER) rather than by a name in
 * /dev/pts that could be swapped. */
static int open_pty(const struct container_req *req, int ret[2])
{
	_cleanup_close_ int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	int unlock = 0;
	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0)
		return -errno;
	/* Set before the program runs, so its first look is right. */
	struct winsize ws = { .ws_row = req->tty_rows, .ws_col = req->tty_cols };
	struct termios t;
	if ((ws.ws_row || ws.ws_col) && ioctl(m, TIOCSWINSZ, &ws) < 0)
		return -errno;
	if (req->tty_raw_out && tcgetattr(m, &t) == 0) {
		t.c_oflag &= ~(tcflag_t)OPOST;
		if (tcsetattr(m, TCSANOW, &t) < 0)
			return -errno;
	}
	int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return -errno;
	ret[0] = TAKE_FD(m);
	ret[1] = s;
	return 0;
}

int containers_start(struct scmd *d, const struct container_req *req, struct container_started *ret,
		     scm_error **ret_err)
{
	_cleanup_free_ char *errmsg = NULL, *sandbox_json = NULL;
	container_spec *spec = NULL;
	container_sandbox *sb = NULL;
	struct policy_effective *eff = NULL;
	struct endpoint *ep = NULL;
	int outp[2] = { -1, -1 }, attp[2] = { -1, -1 }, pty[2] = { -1, -1 }, r;
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
		if (!scmd_name_valid(req->name, 48))
			return scm_fail(ret_err, SCM_E_INVALID,
					"container name '%s' is not valid: 1-48 of [A-Za-z0-9._-], not starting with '.' or '-'",
					req->name);
		snprintf(name, sizeof(name), "%s", req->name);
	} else
		snprintf(name, sizeof(name), "c%llu", (unsigned long long)++d->next_container);
	if (ctr_find(d, name) || endpoint_find(d, name))
		return scm_fail(ret_err, SCM_E_EXISTS, "the name '%s' is taken by a container or endpoint", name);

	if (req->bundle)
		r = container_spec_load(req->bundle, &spec, &errmsg);
	else
		r = container_spec_quick(req->argv, &spec);
	if (r != 0)
		return scm_fail(ret_err, r > 0 ? SCM_E_INVALID : r, "%s: %s", req->bundle ? req->bundle : "command",
				errmsg ? errmsg : strerror(-r));

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
		r = container_sandbox_parse(sandbox_json, strlen(sandbox_json), &sb, &errmsg);
		if (r != 0) {
			r = scm_fail(ret_err, SCM_E_INVALID, "the profiles' sandbox: %s", errmsg ? errmsg : "invalid");
			goto fail;
		}
		container_sandbox_apply(spec, sb);
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
	uid_t owner = containers_host_uid(d, spec);
	if ((r = containers_add_binds(spec, sb, req->binds, ret_err)) != 0)
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
	containers_endpoint_peers(d, ep);
	prof_copy = NULL; /* the endpoint owns them */
	ep->eff = TAKE_PTR(eff);
	ep->provider_of = req->provider;
	ep->container = true;

	struct ctr *t = calloc(1, sizeof(*t));
	if (!t || pipe2(outp, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    (req->attach && !req->tty && pipe2(attp, O_CLOEXEC | O_NONBLOCK) < 0) ||
	    (req->tty && (errno = -open_pty(req, pty)) != 0)) {
		r = scm_fail(ret_err, -errno, "pipe or pty: %m");
		free(t);
		goto fail;
	}
	/* The container writes blocking; only scmd's read end is non-blocking. */
	fcntl(outp[1], F_SETFL, 0);
	t->name = strdup(name);
	(void)log_open(d, t, sb); /* without a log the container still runs */
	t->attach_fd = attp[1];
	list_init(&t->waiters);

	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	container_opts opts = CONTAINER_OPTS_INIT;
	opts.id = name;
	opts.endpoint = ep->dir;
	container_idrange range;
	containers_idrange(d, &range);
	opts.idrange = &range;
	opts.stdin_fd = req->stdin_fd >= 0 ? req->stdin_fd : devnull;
	opts.stdout_fd = outp[1];
	opts.stderr_fd = outp[1];
	if (req->tty) {
		/* Its output goes to the pty only: the log stays empty. */
		opts.stdin_fd = opts.stdout_fd = opts.stderr_fd = pty[1];
		opts.pty = true;
	}
	/* A bundle's "terminal" would keep scmd's session, and with it
	 * scmd's controlling terminal (/dev/tty): here it is a pty or none. */
	spec->terminal = false;
	opts.state_dir = d->runtime_dir;
	opts.sandbox = sb;
	r = container_start(spec, &opts, &t->c, &errmsg);
	safe_close(devnull);
	outp[1] = safe_close(outp[1]);
	pty[1] = safe_close(pty[1]);
	if (r != 0) {
		r = scm_fail(ret_err, r > 0 ? (r == CONTAINER_E_DENIED ? SCM_E_DENIED : SCM_E_INVALID) : r,
			     "container '%s' did not start: %s", name, errmsg ? errmsg : strerror(-r));
		safe_close(t->log_fd);
		log_unlink_all(t);
		free(t->log_path);
		free(t->name);
		free(t);
		goto fail;
	}
	t->ep = ep;
	ep = NULL;
	t->provider_of = req->provider;
	t->started = now_usec();
	t->cmdline = strdup(req->bundle ? req->bundle : (spec->args && spec->args[0] ? spec->args[0] : "?"));
	t->pidw = (struct watch){ container_pidfd(t->c), on_pidfd };
	t->outw = (struct watch){ TAKE_FD(outp[0]), on_output };
	watch_add(d, &t->pidw, EPOLLIN);
	watch_add(d, &t->outw, EPOLLIN);
	list_add(d->containers.prev, &t->node);
	audit_event(d->audit, "container-start", "\"container\":%s,\"pid\":%d", audit_quote(name),
		    container_pid(t->c));
	ret->name = t->name;
	ret->pid = container_pid(t->c);
	ret->endpoint = t->ep->path;
	ret->attach_fd = req->tty ? TAKE_FD(pty[0]) : TAKE_FD(attp[0]);
	container_sandbox_free(sb);
	container_spec_free(spec);
	return 0;

fail:
	if (ep)
		endpoint_remove(d, ep);
	scmd_strv_free(prof_copy);
	policy_effective_unref(eff);
	safe_close(outp[0]);
	safe_close(outp[1]);
	safe_close(attp[0]);
	safe_close(attp[1]);
	safe_close(pty[0]);
	safe_close(pty[1]);
	container_sandbox_free(sb);
	container_spec_free(spec);
	return r;
}

int containers_signal(struct scmd *d, const char *name, int sig, scm_error **ret_err)
{
	struct ctr *t = ctr_find(d, name);
	if (!t || t->exited)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no running container '%s'", name);
	int r = container_signal(t->c, sig);
	return r < 0 ? scm_fail(ret_err, r, "signalling '%s': %s", name, strerror(-r)) : 0;
}

/* stop = SIGTERM now, SIGKILL when the timer fires; the exit is noticed by
 * the pidfd watch like any other. */
struct stop_timer {
	struct watch w;
	char *name;
};

static void on_stop_timer(struct scmd *d, struct watch *w, uint32_t events)
{
	struct stop_timer *st = (struct stop_timer *)w;
	struct ctr *t = ctr_find(d, st->name);
	if (t && !t->exited)
		container_signal(t->c, SIGKILL);
	watch_del(d, w);
	safe_close(w->fd);
	free(st->name);
	free(st);
}

int containers_stop(struct scmd *d, const char *name, unsigned timeout_ms, scm_error **ret_err)
{
	struct stop_timer *st;
	int r = containers_signal(d, name, SIGTERM, ret_err);
	if (r != 0)
		return r;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->w = (struct watch){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), on_stop_timer };
	st->name = strdup(name);
	timer_arm(&st->w, timeout_ms ? timeout_ms : STOP_TIMEOUT_MS);
	watch_add(d, &st->w, EPOLLIN);
	return 0;
}

int containers_wait(struct scmd *d, struct conn *c, uint32_t call_id, const char *name, scm_error **ret_err)
{
	struct ctr *t = ctr_find(d, name);
	if (!t)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no container '%s'", name);
	if (t->exited) {
		json_object *o = status_json(t->status);
		json_object_object_add(o, "name", json_object_new_string(t->name));
		conn_send(d, c, SCM_FRAME_REPLY, call_id, o, NULL, 0);
		json_object_put(o);
		return 0;
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->conn = c;
	w->call_id = call_id;
	list_add(&t->waiters, &w->node);
	return 0;
}

int containers_exec(struct scmd *d, const char *name, char **argv, const int fds[3], pid_t *ret_pid,
		    scm_error **ret_err)
{
	_cleanup_free_ char *errmsg = NULL;
	struct ctr *t = ctr_find(d, name);
	if (!t || t->exited)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no running container '%s'", name);
	int r = container_exec(t->c, argv, fds[0], fds[1], fds[2], ret_pid, &errmsg);
	if (r != 0)
		return scm_fail(ret_err, r > 0 ? SCM_E_INVALID : r, "exec in '%s': %s", name,
				errmsg ? errmsg : strerror(-r));
	return 0;
}

int containers_log_fds(struct scmd *d, const char *name, int *ret_fds, size_t *ret_n,
		       scm_error **ret_err)
{
	struct ctr *t = ctr_find(d, name);
	int fds[CONTAINERS_LOG_FDS_MAX];
	size_t n = 0;
	if (!t || !t->log_path)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no container '%s'", name);
	/* Oldest first. scmd is the only writer and rotates only inside this
	 * loop's thread, so the set is consistent; rotations after the reply
	 * rename files, not the inodes the client holds. */
	for (int k = t->log_files; k >= 0 && n < ELEMENTSOF(fds); k--) {
		char p[PATH_MAX];
		log_file(t, k, p, sizeof(p));
		int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
		if (fd >= 0) {
			fds[n++] = fd;
			continue;
		}
		if (errno == ENOENT)
			continue;
		int r = -errno;
		while (n > 0)
			safe_close(fds[--n]);
		return scm_fail(ret_err, r, "opening the log of '%s' (%s): %s", name, p, strerror(-r));
	}
	if (n == 0)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "the log of '%s' is gone (%s)", name, t->log_path);
	memcpy(ret_fds, fds, n * sizeof(int));
	*ret_n = n;
	return 0;
}

int containers_remove(struct scmd *d, const char *name, scm_error **ret_err)
{
	struct ctr *t = ctr_find(d, name);
	if (!t)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no container '%s'", name);
	if (!t->exited)
		return scm_fail(ret_err, SCM_E_BUSY, "container '%s' is running; stop it first", name);
	list_del(&t->node);
	log_unlink_all(t);
	free(t->name);
	free(t->log_path);
	free(t->cmdline);
	free(t);
	return 0;
}

json_object *containers_json(struct scmd *d, const char *only)
{
	json_object *arr = json_object_new_array();
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct ctr *t = list_entry(p, struct ctr, node);
		if (only && strcmp(only, t->name) != 0)
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(t->name));
		json_object_object_add(o, "state", json_object_new_string(t->exited ? "exited" : "running"));
		json_object_object_add(o, "pid", json_object_new_int(t->exited ? 0 : container_pid(t->c)));
		json_object_object_add(o, "command", json_object_new_string(t->cmdline ? t->cmdline : ""));
		json_object_object_add(o, "log", json_object_new_string(t->log_path ? t->log_path : ""));
		uint64_t end = t->exited ? t->ended : now_usec();
		json_object_object_add(o, "uptime_ms", json_object_new_int64((int64_t)((end - t->started) / 1000)));
		if (t->exited)
			json_object_object_add(o, "exit_code", json_object_new_int(container_wait_status_to_exit(t->status)));
		if (t->ep) {
			json_object_object_add(o, "endpoint", json_object_new_string(t->ep->path));
			json_object *pr = json_object_new_array();
			for (char **s = t->ep->profiles; s && *s; s++)
				json_object_array_add(pr, json_object_new_string(*s));
			json_object_object_add(o, "profiles", pr);
			json_object_object_add(o, "channels", json_object_new_int64(t->ep->used.channels));
		}
		if (t->provider_of)
			json_object_object_add(o, "provides", json_object_new_string(t->provider_of->name));
		json_object_array_add(arr, o);
	}
	return arr;
}

void containers_stop_all(struct scmd *d)
{
	struct list *p, *q;
	list_for_each_safe(p, q, &d->containers)
	{
		struct ctr *t = list_entry(p, struct ctr, node);
		if (!t->exited) {
			int status = 0;
			container_stop(t->c, 2000, &status);
			ctr_ended(d, t, status);
		}
	}
}

int containers_init(struct scmd *d)
{
	_cleanup_free_ char *dir = NULL;
	list_init(&d->containers);
	if (asprintf(&dir, "%s/logs", d->state_dir) < 0)
		return -ENOMEM;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}
