/* container-hook.c: containers launched by scmd (containers/container.h),
 * once launched: the record of each, from running to exited (a record for
 * `show` and `logs` until removed, the newest EXITED_KEEP kept) or, for a
 * launch that failed or was abandoned, dying (killed, its pidfd watched,
 * and the record freed once reaped); the control ops on a container
 * (signal, stop, wait, exec, remove); and the containers' part of scmd's
 * startup and shutdown. No step waits: every transition comes from a
 * watch. When a container ends, its endpoint is removed (revoking its
 * channels), its cgroups and state are gone, and waiters are answered.
 *
 * The launch is container-launch.c, the output and log container-output.c,
 * the JSON views container-view.c; container-hook.h is what they share. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container-hook.h"
#include "scm-internal/error.h"

#define EXITED_KEEP 64     /* exited records kept for show/logs */
#define STOP_TIMEOUT_MS 5000
#define SHUTDOWN_TIMEOUT_MS 2000 /* for all containers together */
#define LET_GO_KILL_MS 10000     /* for a replaced provider to exit by itself */

struct scmd_ctr *ctr_find(struct scmd *d, const char *name)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (strcmp(t->name, name) == 0)
			return t;
	}
	return NULL;
}

static struct scmd_ctr *ctr_find_serial(struct scmd *d, uint64_t serial)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (t->serial == serial)
			return t;
	}
	return NULL;
}

void ctr_free_record(struct scmd_ctr *t)
{
	ctr_log_unlink_all(t);
	free(t->name);
	free(t->log_path);
	free(t->cmdline);
	free(t->state_path);
	free(t->sandbox_json);
	free(t);
}

static void fds_uncharge(struct scmd *d, struct scmd_ctr *t)
{
	d->ctr_fds_used -= t->fds;
	t->fds = 0;
}

static void evict_old(struct scmd *d)
{
	size_t n = 0;
	struct list *p, *t;
	for (p = d->containers.next; p != &d->containers; p = p->next)
		n += list_entry(p, struct scmd_ctr, node)->exited;
	list_for_each_safe(p, t, &d->containers)
	{
		struct scmd_ctr *c = list_entry(p, struct scmd_ctr, node);
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
static void ctr_ended(struct scmd *d, struct scmd_ctr *t, int status)
{
	struct list *p, *q;

	if (t->outw.fd >= 0)
		ctr_drain_output(d, t);
	t->exited = true;
	t->status = status;
	t->ended = now_usec();
	d->store_dirty = true;
	watch_del(d, &t->pidw);
	t->c = container_free(t->c); /* reaped: nothing here waits */
	t->pidw.fd = -1;
	ctr_state_remove(t);
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
		json_object *o = ctr_status_json(status);
		json_object_object_add(o, "name", json_object_new_string(t->name));
		conn_send(d, w->conn, SCM_FRAME_REPLY, w->call_id, o, NULL, 0);
		json_object_put(o);
		list_del(&w->node);
		free(w);
	}
	audit_event(d->audit, "container-exit", "\"container\":%s,\"exit_code\":%d", audit_quote(t->name),
		    container_wait_status_to_exit(status));
	/* The service hears it last: it may let go of this very record. */
	struct service *s = t->provider_of;
	_cleanup_free_ char *name = s ? strdup(t->name) : NULL;
	if (t->replaced) {
		list_del(&t->node);
		ctr_free_record(t);
	} else
		evict_old(d);
	if (s && name)
		service_container_exited(d, s, name, status);
}

/* A dying container is gone once reaped: no record, no name kept. */
static void ctr_dead(struct scmd *d, struct scmd_ctr *t)
{
	struct list *p, *q;
	/* Whoever waits (`container stop` does) hears that it is gone. */
	list_for_each_safe(p, q, &t->waiters)
	{
		struct waiter *w = list_entry(p, struct waiter, node);
		json_object *o = ctr_status_json(W_EXITCODE(0, SIGKILL));
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
	ctr_state_remove(t);
	fds_uncharge(d, t);
	t->attach_fd = safe_close(t->attach_fd);
	t->log_fd = safe_close(t->log_fd);
	list_del(&t->node);
	ctr_free_record(t);
	d->store_dirty = true;
}

void ctr_on_pidfd(struct scmd *d, struct watch *w, uint32_t events)
{
	struct scmd_ctr *t = (struct scmd_ctr *)((char *)w - offsetof(struct scmd_ctr, pidw));
	int status;
	if (t->launching)
		ctr_launch_poll(d, t); /* PID 1 is gone: the pipe has said all */
	if (container_try_wait(t->c, &status) != 0)
		return;
	if (t->dying)
		ctr_dead(d, t);
	else
		ctr_ended(d, t, status);
}

void scmd_ctr_let_go(struct scmd *d, const char *name, bool kill)
{
	struct scmd_ctr *t = name ? ctr_find(d, name) : NULL;
	if (!t)
		return;
	t->provider_of = NULL; /* its end is no provider's end */
	t->replaced = true;
	if (t->exited) {
		list_del(&t->node);
		ctr_free_record(t);
		d->store_dirty = true;
		return;
	}
	if (t->dying)
		return; /* freed once reaped */
	if (kill) {
		scm_error *e = NULL;
		if (scmd_ctr_signal(d, name, SIGKILL, &e) != 0)
			scm_error_free(e);
	} else if (!t->launching)
		(void)ctr_kill_timer(d, t, LET_GO_KILL_MS);
}

bool scmd_ctr_replaced_running(struct scmd *d)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (t->replaced && !t->exited)
			return true;
	}
	return false;
}

void scmd_ctr_service_gone(struct scmd *d, struct service *s)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (t->provider_of == s)
			t->provider_of = NULL;
		if (t->ep && t->ep->provider_of == s)
			t->ep->provider_of = NULL;
	}
}

/* A conn that goes away stops waiting for anything. */
void scmd_ctr_conn_closed(struct scmd *d, struct conn *c)
{
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
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

int scmd_ctr_signal(struct scmd *d, const char *name, int sig, scm_error **ret_err)
{
	struct scmd_ctr *t = ctr_find(d, name);
	if (!t || t->exited || t->dying)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no running container '%s'", name);
	if (t->launching && sig == SIGKILL) {
		ctr_launch_abandon(d, t, SCM_E_REVOKED, "container '%s' was killed while it was starting", name);
		return 0;
	}
	int r = container_signal(t->c, sig);
	if (r < 0)
		return scm_fail(ret_err, r, "signalling '%s': %s", name, strerror(-r));
	t->paused = false; /* the runtime thaws a paused one to take it */
	return 0;
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
	struct scmd_ctr *t = ctr_find_serial(d, st->serial);
	if (t && !t->exited && !t->dying)
		container_signal(t->c, SIGKILL);
	watch_del(d, w);
	safe_close(w->fd);
	free(st);
}

int scmd_ctr_stop(struct scmd *d, const char *name, unsigned timeout_ms, scm_error **ret_err)
{
	struct scmd_ctr *t = ctr_find(d, name);
	if (t && t->launching) {
		/* Nothing to ask politely yet: its program has not started. */
		ctr_launch_abandon(d, t, SCM_E_REVOKED, "container '%s' was stopped while it was starting", name);
		return 0;
	}
	int r = scmd_ctr_signal(d, name, SIGTERM, ret_err);
	if (r != 0)
		return r;
	r = ctr_kill_timer(d, t, timeout_ms ? timeout_ms : STOP_TIMEOUT_MS);
	return r < 0 ? scm_fail(ret_err, r, "timerfd: %s", strerror(-r)) : 0;
}

int ctr_kill_timer(struct scmd *d, struct scmd_ctr *t, unsigned ms)
{
	struct stop_timer *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->w = (struct watch){ timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), on_stop_timer };
	if (st->w.fd < 0) {
		int r = -errno;
		free(st);
		return r;
	}
	st->serial = t->serial;
	/* a restart in place carries the deadline (restart-ctr.c) */
	uint64_t at = now_usec() + (uint64_t)ms * 1000;
	if (!t->kill_at || at < t->kill_at)
		t->kill_at = at;
	timer_arm(&st->w, ms);
	watch_add(d, &st->w, EPOLLIN);
	return 0;
}

int scmd_ctr_wait(struct scmd *d, struct conn *c, uint32_t call_id, const char *name, scm_error **ret_err)
{
	struct scmd_ctr *t = ctr_find(d, name);
	if (!t)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no container '%s'", name);
	if (t->exited) {
		json_object *o = ctr_status_json(t->status);
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

int scmd_ctr_exec(struct scmd *d, const char *name, char **argv, const int fds[3], pid_t *ret_pid,
		    int *ret_errfd, scm_error **ret_err)
{
	struct scmd_ctr *t = ctr_find(d, name);
	if (!t || t->exited || t->dying)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no running container '%s'", name);
	if (t->launching)
		return scm_fail(ret_err, SCM_E_BUSY, "container '%s' is still starting", name);
	if (t->paused)
		return scm_fail(ret_err, SCM_E_BUSY, "container '%s' is paused; resume it first", name);
	int r = container_exec_begin(t->c, argv, fds[0], fds[1], fds[2], ret_pid, ret_errfd);
	if (r != 0)
		return scm_fail(ret_err, r > 0 ? SCM_E_INVALID : r, "exec in '%s': %s", name, strerror(-r));
	return 0;
}

int scmd_ctr_remove(struct scmd *d, const char *name, scm_error **ret_err)
{
	struct scmd_ctr *t = ctr_find(d, name);
	if (!t || t->dying)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no container '%s'", name);
	if (!t->exited)
		return scm_fail(ret_err, SCM_E_BUSY, "container '%s' is %s; stop it first", name,
				t->launching ? "starting" : "running");
	list_del(&t->node);
	ctr_free_record(t);
	return 0;
}

/* Shutdown: every container is told at once, and all of them together
 * get one deadline before SIGKILL; then each is reaped (after SIGKILL
 * that takes no time worth a timer). */
void scmd_ctr_stop_all(struct scmd *d)
{
	struct list *p, *q;
	struct pollfd *pfds;
	size_t n = 0, k = 0;
	for (p = d->containers.next; p != &d->containers; p = p->next)
		n++;
	pfds = calloc(n + 1, sizeof(*pfds));
	list_for_each_safe(p, q, &d->containers)
	{
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (t->exited)
			continue;
		if (t->launching) {
			ctr_launch_abandon(d, t, SCM_E_REVOKED, "scmd is shutting down");
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
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
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

static int ctr_init_limits(struct scmd *d);

int scmd_ctr_init(struct scmd *d)
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
	 * it belongs to a live one. A restart in place inherits it (the lock
	 * belongs to the open file, which the exec keeps). */
	if (asprintf(&lock, "%s/lock", dir) < 0)
		return -ENOMEM;
	if (d->lock_fd < 0) {
		d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (d->lock_fd < 0)
			return -errno;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		log_error("another scmd runs with the runtime directory %s", d->runtime_dir);
		return -EBUSY;
	}
	/* restoring: the containers are adopted first (restart-load.c), and
	 * the leftovers cleaned after, sparing them */
	if (!d->restoring)
		scmd_ctr_cleanup_leftovers(d, dir);
	if (d->instance[0])
		return ctr_init_limits(d); /* a predecessor's, with its cgroups */
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
	return ctr_init_limits(d);
}

static int ctr_init_limits(struct scmd *d)
{
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
