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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
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
#define CTR_FDS 6          /* pidfd, status pipe, launch pipe, output pipe, log, endpoint socket */
#define STOP_TIMEOUT_MS 5000
#define DRAIN_READS 16     /* reads of the output pipe per wakeup (256 KiB) */
#define SHUTDOWN_TIMEOUT_MS 2000 /* for all containers together */

struct waiter {
	struct list node;
	struct conn *conn;
	uint32_t call_id;
};

/* A container's life in scmd: launching (its setup runs; the error pipe
 * and a timer are watched, the `run` reply waits), running, exited (a
 * record for show/logs). A launch that fails or is abandoned makes it
 * dying: killed, its pidfd watched, and the record freed once reaped. No
 * step waits: every transition comes from a watch. */
struct ctr {
	struct list node;
	char *name, *log_path, *cmdline, *state_path;
	uint64_t serial; /* unique in this scmd: what timers hold, never the name */
	container *c;
	struct watch pidw, outw, launchw, launch_timer;
	int log_fd, attach_fd;
	int64_t log_size;     /* bytes in the current file */
	int64_t log_file_max; /* what one file may hold */
	int log_files;        /* rotated files kept beside the current one */
	struct endpoint *ep;
	struct service *provider_of; /* this container runs that service's provider */
	bool launching, dying, exited;
	int status;
	unsigned fds; /* scmd's fds it holds, charged to d->ctr_fds_used */
	/* the `container run` call answered when the launch completes */
	struct conn *run_conn;
	uint32_t run_call;
	int attach_client_fd;
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
static struct ctr *ctr_find_serial(struct scmd *d, uint64_t serial)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct ctr *t = list_entry(p, struct ctr, node);
		if (t->serial == serial)
			return t;
	}
	return NULL;
}

static void ctr_free_record(struct ctr *t)
{
	log_unlink_all(t);
	free(t->name);
	free(t->log_path);
	free(t->cmdline);
	free(t->state_path);
	free(t);
}

/* The record the next scmd reads if this one dies without cleaning up:
 * PID 1 and its start time (so a reused pid is never killed). */
unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* comm may hold spaces */
	unsigned long long st = 0;
	/* fields after comm: state(3) ... starttime(22) */
	for (int field = 3; p && field <= 22; field++) {
		p = strchr(p + 1, ' ');
		if (p && field == 22)
			st = strtoull(p + 1, NULL, 10);
	}
	return st;
}

static void state_write(struct scmd *d, struct ctr *t)
{
	if (asprintf(&t->state_path, "%s/containers/%s.state", d->runtime_dir, t->name) < 0) {
		t->state_path = NULL;
		return;
	}
	FILE *f = fopen(t->state_path, "we");
	if (!f)
		return;
	fprintf(f, "pid=%d\nstarttime=%llu\ninstance=%s\n", (int)container_pid(t->c),
		proc_starttime(container_pid(t->c)), d->instance);
	fclose(f);
}

static void state_remove(struct ctr *t)
{
	if (t->state_path)
		unlink(t->state_path);
}

static void fds_uncharge(struct scmd *d, struct ctr *t)
{
	d->ctr_fds_used -= t->fds;
	t->fds = 0;
}


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
		ctr_free_record(c);
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
	t->c = container_free(t->c); /* reaped: nothing here waits */
	t->pidw.fd = -1;
	state_remove(t);
	fds_uncharge(d, t);
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

static void launch_done(struct scmd *d, struct ctr *t, int r, char *msg);

static void launch_unwatch(struct scmd *d, struct ctr *t)
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
static void launch_poll(struct scmd *d, struct ctr *t)
{
	char *msg = NULL;
	int r = container_start_finish(t->c, &msg);
	if (r == -EAGAIN)
		return;
	launch_done(d, t, r, msg);
	free(msg);
}

static void on_launch(struct scmd *d, struct watch *w, uint32_t events)
{
	launch_poll(d, (struct ctr *)((char *)w - offsetof(struct ctr, launchw)));
}

/* A dying container is gone once reaped: no record, no name kept. */
static void ctr_dead(struct scmd *d, struct ctr *t)
{
	struct list *p, *q;
	/* Whoever waits (`container stop` does) hears that it is gone. */
	list_for_each_safe(p, q, &t->waiters)
	{
		struct waiter *w = list_entry(p, struct waiter, node);
		json_object *o = status_json(W_EXITCODE(0, SIGKILL));
		json_object_object_add(o, "name", json_object_new_string(t->name));
		conn_send(d, w->conn, SCM_FRAME_REPLY, w->call_id, o, NULL, 0);
		json_object_put(o);
		list_del(&w->node);
		free(w);
	}
	watch_del(d, &t->pidw);
	t->pidw.fd = -1;
	if (t->outw.fd >= 0) {
		watch_del(d, &t->outw);
		t->outw.fd = safe_close(t->outw.fd);
	}
	t->c = container_free(t->c);
	state_remove(t);
	fds_uncharge(d, t);
	t->attach_fd = safe_close(t->attach_fd);
	t->log_fd = safe_close(t->log_fd);
	list_del(&t->node);
	ctr_free_record(t);
}

static void on_pidfd(struct scmd *d, struct watch *w, uint32_t events)
{
	struct ctr *t = (struct ctr *)((char *)w - offsetof(struct ctr, pidw));
	int status;
	if (t->launching)
		launch_poll(d, t); /* PID 1 is gone: the pipe has said all */
	if (container_try_wait(t->c, &status) != 0)
		return;
	if (t->dying)
		ctr_dead(d, t);
	else
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
		if (t->run_conn == c)
			t->run_conn = NULL;
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

/* The launch failed, timed out or was stopped: kill it, answer the run
 * call and the provider's activation, and let the pidfd watch free it. */
static void launch_abandon(struct scmd *d, struct ctr *t, int code, const char *fmt, ...) _printf_(4, 5);
static void launch_abandon(struct scmd *d, struct ctr *t, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = scm_error_newv(code, "scmd/container", fmt, ap);
	va_end(ap);
	launch_unwatch(d, t);
	t->launching = false;
	t->dying = true;
	(void)container_signal(t->c, SIGKILL);
	log_error("%s", e->message);
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
		service_container_failed(d, s, e);
	scm_error_free(e);
	audit_event(d->audit, "container-failed", "\"container\":%s", audit_quote(t->name));
	/* The pidfd watch (level-triggered) frees it once PID 1 is reaped. */
}

static void launch_done(struct scmd *d, struct ctr *t, int r, char *msg)
{
	launch_unwatch(d, t);
	if (r != 0) {
		launch_abandon(d, t, r > 0 ? SCM_E_INVALID : r, "container '%s' did not start: %s", t->name,
			       msg ? msg : strerror(-r));
		return;
	}
	t->launching = false;
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
	struct ctr *t = (struct ctr *)((char *)w - offsetof(struct ctr, launch_timer));
	launch_abandon(d, t, SCM_E_TIMEOUT,
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
	opts.cgroup_parent = d->cgroup_parent;
	opts.sandbox = sb;
	r = container_start_begin(spec, &opts, &t->c, &errmsg);
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
	t->serial = ++d->ctr_serial;
	t->provider_of = req->provider;
	t->started = now_usec();
	t->cmdline = strdup(req->bundle ? req->bundle : (spec->args && spec->args[0] ? spec->args[0] : "?"));
	t->fds = fds;
	d->ctr_fds_used += fds;
	/* The launch goes on in the child; its end is an event. */
	t->launching = true;
	t->run_conn = req->reply_conn;
	t->run_call = req->call_id;
	t->attach_client_fd = req->tty ? TAKE_FD(pty[0]) : TAKE_FD(attp[0]);
	t->launchw = (struct watch){ container_launch_fd(t->c), on_launch };
	t->launch_timer = (struct watch){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK),
					  on_launch_timer };
	t->pidw = (struct watch){ container_pidfd(t->c), on_pidfd };
	t->outw = (struct watch){ TAKE_FD(outp[0]), on_output };
	watch_add(d, &t->launchw, EPOLLIN);
	if (t->launch_timer.fd >= 0) {
		timer_arm(&t->launch_timer, d->launch_timeout_ms);
		watch_add(d, &t->launch_timer, EPOLLIN);
	}
	watch_add(d, &t->pidw, EPOLLIN);
	watch_add(d, &t->outw, EPOLLIN);
	list_add(d->containers.prev, &t->node);
	state_write(d, t);
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
	safe_close(pty[0]);
	safe_close(pty[1]);
	container_sandbox_free(sb);
	container_spec_free(spec);
	return r;
}

int containers_signal(struct scmd *d, const char *name, int sig, scm_error **ret_err)
{
	struct ctr *t = ctr_find(d, name);
	if (!t || t->exited || t->dying)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no running container '%s'", name);
	if (t->launching && sig == SIGKILL) {
		launch_abandon(d, t, SCM_E_REVOKED, "container '%s' was killed while it was starting", name);
		return 0;
	}
	int r = container_signal(t->c, sig);
	return r < 0 ? scm_fail(ret_err, r, "signalling '%s': %s", name, strerror(-r)) : 0;
}

/* stop = SIGTERM now, SIGKILL when the timer fires; the exit is noticed by
 * the pidfd watch like any other. The timer holds the container's serial,
 * never its name: a new container of the same name is another one. */
struct stop_timer {
	struct watch w;
	uint64_t serial;
};

static void on_stop_timer(struct scmd *d, struct watch *w, uint32_t events)
{
	struct stop_timer *st = (struct stop_timer *)w;
	struct ctr *t = ctr_find_serial(d, st->serial);
	if (t && !t->exited && !t->dying)
		container_signal(t->c, SIGKILL);
	watch_del(d, w);
	safe_close(w->fd);
	free(st);
}

int containers_stop(struct scmd *d, const char *name, unsigned timeout_ms, scm_error **ret_err)
{
	struct stop_timer *st;
	struct ctr *t = ctr_find(d, name);
	if (t && t->launching) {
		/* Nothing to ask politely yet: its program has not started. */
		launch_abandon(d, t, SCM_E_REVOKED, "container '%s' was stopped while it was starting", name);
		return 0;
	}
	int r = containers_signal(d, name, SIGTERM, ret_err);
	if (r != 0)
		return r;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->w = (struct watch){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), on_stop_timer };
	if (st->w.fd < 0) {
		free(st);
		return scm_fail(ret_err, -errno, "timerfd: %m");
	}
	st->serial = t->serial;
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
		    int *ret_errfd, scm_error **ret_err)
{
	struct ctr *t = ctr_find(d, name);
	if (!t || t->exited || t->dying)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no running container '%s'", name);
	if (t->launching)
		return scm_fail(ret_err, SCM_E_BUSY, "container '%s' is still starting", name);
	int r = container_exec_begin(t->c, argv, fds[0], fds[1], fds[2], ret_pid, ret_errfd);
	if (r != 0)
		return scm_fail(ret_err, r > 0 ? SCM_E_INVALID : r, "exec in '%s': %s", name, strerror(-r));
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
	if (!t || t->dying)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no container '%s'", name);
	if (!t->exited)
		return scm_fail(ret_err, SCM_E_BUSY, "container '%s' is %s; stop it first", name,
				t->launching ? "starting" : "running");
	list_del(&t->node);
	ctr_free_record(t);
	return 0;
}

json_object *containers_json(struct scmd *d, const char *only)
{
	json_object *arr = json_object_new_array();
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct ctr *t = list_entry(p, struct ctr, node);
		if ((only && strcmp(only, t->name) != 0) || t->dying)
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(t->name));
		json_object_object_add(o, "state", json_object_new_string(t->exited      ? "exited"
									  : t->launching ? "starting"
											 : "running"));
		if (!t->exited)
			json_object_object_add(o, "fds", json_object_new_int((int)t->fds));
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

/* Shutdown: every container is told at once, and all of them together
 * get one deadline before SIGKILL; then each is reaped (after SIGKILL
 * that takes no time worth a timer). */
void containers_stop_all(struct scmd *d)
{
	struct list *p, *q;
	struct pollfd *pfds;
	size_t n = 0, k = 0;
	for (p = d->containers.next; p != &d->containers; p = p->next)
		n++;
	pfds = calloc(n + 1, sizeof(*pfds));
	list_for_each_safe(p, q, &d->containers)
	{
		struct ctr *t = list_entry(p, struct ctr, node);
		if (t->exited)
			continue;
		if (t->launching) {
			launch_abandon(d, t, SCM_E_REVOKED, "scmd is shutting down");
			continue;
		}
		if (!t->dying)
			(void)container_signal(t->c, SIGTERM);
		if (pfds)
			pfds[k++] = (struct pollfd){ .fd = container_pidfd(t->c), .events = POLLIN };
	}
	uint64_t deadline = now_usec() + SHUTDOWN_TIMEOUT_MS * 1000ull;
	for (;;) {
		size_t left = 0;
		for (size_t i = 0; i < k; i++)
			if (pfds[i].fd >= 0 && !(pfds[i].revents & POLLIN))
				left++;
		uint64_t now = now_usec();
		if (!left || now >= deadline)
			break;
		if (poll(pfds, k, (int)((deadline - now) / 1000) + 1) < 0 && errno != EINTR)
			break;
	}
	free(pfds);
	list_for_each_safe(p, q, &d->containers)
	{
		struct ctr *t = list_entry(p, struct ctr, node);
		if (t->exited)
			continue;
		int status = 0;
		if (container_try_wait(t->c, &status) != 0) {
			(void)container_signal(t->c, SIGKILL);
			(void)container_wait(t->c, &status);
		}
		if (t->dying)
			ctr_dead(d, t);
		else
			ctr_ended(d, t, status);
	}
	cgroup_parent_remove(d);
}

int containers_init(struct scmd *d)
{
	_cleanup_free_ char *dir = NULL, *logs = NULL, *lock = NULL, *inst = NULL;
	list_init(&d->containers);
	/* Logs on disk (STATE/logs), the rest of the containers' state with
	 * the runtime's (RUNTIME/containers). */
	if (asprintf(&logs, "%s/logs", d->state_dir) < 0 || asprintf(&dir, "%s/containers", d->runtime_dir) < 0)
		return -ENOMEM;
	if (mkdir(logs, 0700) < 0 && errno != EEXIST) {
		int r = -errno;
		log_error("cannot create %s: %s", logs, strerror(-r));
		return r;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int r = -errno;
		log_error("cannot create %s: %s", dir, strerror(-r));
		return r;
	}
	/* One scmd per runtime directory: the lock says whether the state in
	 * it belongs to a live one. */
	if (asprintf(&lock, "%s/lock", dir) < 0)
		return -ENOMEM;
	d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0)
		return -errno;
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("another scmd runs with the runtime directory %s", d->runtime_dir);
		return -EBUSY;
	}
	containers_cleanup_leftovers(d, dir);
	/* Cgroups of its own: scm/scmd-PID-RANDOM, so no two scmds (at once,
	 * or one after another) ever share a container's cgroup. */
	unsigned rnd = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (unsigned)now_usec();
	snprintf(d->instance, sizeof(d->instance), "scmd-%d-%08x", (int)getpid(), rnd);
	if (asprintf(&d->cgroup_parent, "scm/%s", d->instance) < 0)
		return -ENOMEM;
	if (asprintf(&inst, "%s/instance", dir) < 0)
		return -ENOMEM;
	FILE *f = fopen(inst, "we");
	if (f) {
		fprintf(f, "%s\n", d->instance);
		fclose(f);
	}
	/* Containers may hold at most half of scmd's fds: the rest is for
	 * clients, channels and logs. */
	struct rlimit rl;
	d->ctr_fds_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
				   ? (unsigned)(rl.rlim_cur > 1u << 20 ? 1u << 19 : rl.rlim_cur / 2)
				   : 512;
	if (!d->launch_timeout_ms)
		d->launch_timeout_ms = 30000;
	if (!d->exec_timeout_ms)
		d->exec_timeout_ms = 10000;
	return 0;
}
