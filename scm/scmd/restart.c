/* restart.c: scmd restarts in place (`scmctl daemon restart [--exec
 * PATH]`, SIGUSR2; docs/restart.md).
 *
 * The steps, none of which blocks the loop:
 *   1. the dry run: the new binary is started as `PATH --check-state 3`
 *      with a copy of the state as it is now; it reads it with its own
 *      reader and exits 0, or says why not. Until it has, nothing changed:
 *      a binary that cannot read the state (a newer format, not scmd at
 *      all) is refused with its words, and this scmd goes on.
 *   2. a quiet moment: no container launching, no exec on its way, no
 *      provider hand-off or reply queued (all short); retried every few
 *      ms up to RESTART_WAIT_MS.
 *   3. the switch (restart-handoff.c): a copy of scmd serves the
 *      endpoints while this process execs `PATH ARGS... --standby FD`
 *      and loads; once it is ready the copy writes the state and passes
 *      its fds, and the successor restores. The pid stays: providers and
 *      exec'd processes stay our children, and clients see no hang-up.
 *      Requests that arrive during the blackout wait in the sockets'
 *      queues (SOCK_SEQPACKET: whole frames, so nothing is half read).
 * The successor answers the daemon.restart call (restart_answer). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "restart.h"

#define CHECK_TIMEOUT_MS 10000
#define RESTART_WAIT_MS 10000
#define RETRY_MS 2

struct scmd_restart {
	struct conn *conn; /* the daemon.restart call, or NULL (SIGUSR2) */
	uint32_t call_id;
	char *exe;
	pid_t check_pid;
	struct watch check_w; /* the dry run's pidfd */
	int check_out;        /* what it printed */
	struct watch timer;   /* the dry run's deadline, then the quiet-moment retries */
	bool checked;
	bool standby; /* its dry run says it takes --standby (restart-handoff.c) */
	bool early;   /* ... and the containers early */
	uint64_t wait_until;
};

static void restart_free(struct scmd *d, struct scmd_restart *r)
{
	if (r->check_w.fd >= 0) {
		watch_del(d, &r->check_w);
		close(r->check_w.fd);
	}
	if (r->check_pid > 0) {
		kill(r->check_pid, SIGKILL);
		(void)waitpid(r->check_pid, NULL, 0);
	}
	safe_close(r->check_out);
	watch_del(d, &r->timer);
	safe_close(r->timer.fd);
	free(r->exe);
	free(r);
	d->restart = NULL;
}

/* The restart is given up: e (taken) says why; scmd goes on as it was. */
static void restart_fail(struct scmd *d, scm_error *e)
{
	struct scmd_restart *r = d->restart;
	e = scm_error_wrap(e, e ? e->code : SCM_E_INTERNAL, "scmd/restart", "restart in place refused, scmd %d goes on",
			   (int)getpid());
	log_error_chain(LOG_ERR, e, "restart:");
	audit_event(d->audit, "daemon-restart-refused", "\"exec\":%s", audit_quote(r->exe ? r->exe : ""));
	if (r->conn)
		conn_send_error(d, r->conn, r->call_id, e);
	scm_error_free(e);
	restart_free(d, r);
}

void restart_conn_gone(struct scmd *d, struct conn *c)
{
	if (d->restart && d->restart->conn == c)
		d->restart->conn = NULL;
	handoff_conn_gone(c);
}

/* Replies still queued are sent now if the client has room; one that has
 * not read them yet is waited for (the queue is not part of the state). */
static const char *conns_quiet(struct scmd *d, struct list *head)
{
	for (struct list *q = head->next; q != head; q = q->next) {
		struct conn *c = list_entry(q, struct conn, node);
		if (!c->outq.frames || c->dead)
			continue;
		size_t before = c->outq.bytes;
		int k = scm_outq_flush(c->w.fd, &c->outq);
		quota_release_bytes(&c->ep->used, before - c->outq.bytes);
		if (k < 0 && k != -EAGAIN)
			conn_kill(d, c);
		else if (c->outq.frames)
			return "a client has not read its replies yet";
	}
	return NULL;
}

const char *restart_quiet(struct scmd *d)
{
	const char *why = restart_ctr_busy(d);
	if (why)
		return why;
	for (struct list *p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (s->unregistering && s->pid > 0)
			return "an unregistered provider is still exiting";
		if (s->state == P_HANDOVER && !s->ho)
			return "a crashed provider's channels are being recovered";
		if (s->ctl_q.frames && (scm_outq_flush(s->ctl.fd, &s->ctl_q) != 0 || s->ctl_q.frames))
			return "a provider has not taken its channels in yet";
	}
	if (logzip_busy(d))
		return "the log compressor has files in flight";
	if ((why = svc_restart_busy(d)))
		return why;
	why = conns_quiet(d, &d->host.conns);
	for (struct list *p = d->endpoints.next; !why && p != &d->endpoints; p = p->next)
		why = conns_quiet(d, &list_entry(p, struct endpoint, node)->conns);
	return why;
}

static void set_cloexec(const int *fds, size_t n, bool on)
{
	for (size_t i = 0; i < n; i++) {
		int f = fcntl(fds[i], F_GETFD);
		if (f >= 0)
			(void)fcntl(fds[i], F_SETFD, on ? f | FD_CLOEXEC : f & ~FD_CLOEXEC);
	}
}

/* The switch for a successor that does not take --standby (an scmd from
 * before it, its dry run does not say so): the state read back here, then
 * execve with every fd it names inherited at its number (--restore). */
static void do_exec(struct scmd *d)
{
	struct scmd_restart *r = d->restart;
	scm_error *e = NULL;
	int memfd = -1;
	struct state_out so;

	conn_reap_dead(d);
	restart_save(d, false, r->conn ? r->conn->w.fd : -1, r->call_id, &so);
	json_object_object_add(json_object_object_get(so.json, "scmd"), "exec_at", json_object_new_int64((int64_t)now_usec()));
	json_object *back = NULL;
	int k = state_out_memfd(&so, &memfd, &e);
	struct stat sb;
	size_t len = k == 0 && fstat(memfd, &sb) == 0 ? (size_t)sb.st_size : 0;
	int *fds = so.fds;
	size_t n = so.n_fds;
	so.fds = NULL;
	state_out_done(&so);
	/* what the successor will read, read here first with the same reader */
	if (k == 0)
		k = state_memfd_read(memfd, &back, NULL, NULL, &e);
	json_object_put(back);
	if (k != 0) {
		free(fds);
		safe_close(memfd);
		restart_fail(d, e);
		return;
	}
	char fdarg[16], **argv = NULL;
	size_t argc = strv_length(d->argv);
	snprintf(fdarg, sizeof(fdarg), "%d", memfd);
	argv = calloc(argc + 3, sizeof(char *));
	if (!argv) {
		free(fds);
		close(memfd);
		restart_fail(d, scm_error_new(-ENOMEM, "scmd/restart", "out of memory"));
		return;
	}
	argv[0] = r->exe;
	for (size_t i = 1; i < argc; i++)
		argv[i] = d->argv[i];
	argv[argc] = (char *)"--restore";
	argv[argc + 1] = fdarg;
	log_notice("restarting in place: exec %s (state version %u, %zu bytes, %zu fds)", r->exe,
		   SCMD_STATE_VERSION, len, n);
	audit_event(d->audit, "daemon-restart", "\"exec\":%s,\"generation\":%llu", audit_quote(r->exe),
		    (unsigned long long)d->generation + 1);
	/* the compressor helper is idle (quiet): a child the successor would
	 * not know; it starts one when a log rotates */
	logzip_stop(d);
	set_cloexec(fds, n, false);
	set_cloexec(&memfd, 1, false);
	execv(r->exe, argv);
	int err = errno;
	set_cloexec(fds, n, true);
	close(memfd);
	free(fds);
	free(argv);
	restart_fail(d, scm_error_new(-err, "scmd/restart", "exec %s: %s", r->exe, strerror(err)));
}

/* The switch (restart-handoff.c): the successor is started and loaded
 * while a copy of us serves; in the copy this returns, with the copy's
 * loop set up, and the restart object is no longer wanted there. */
static void do_switch(struct scmd *d)
{
	struct scmd_restart *r = d->restart;
	scm_error *e = NULL;
	conn_reap_dead(d);
	int k = handoff_start(d, r->exe, r->early, r->conn, r->call_id, &e);
	if (k < 0) {
		restart_fail(d, e);
		return;
	}
	r->conn = NULL;
	restart_free(d, r);
}

static void try_switch(struct scmd *d)
{
	struct scmd_restart *r = d->restart;
	const char *why = restart_quiet(d);
	if (!why) {
		if (r->standby)
			do_switch(d);
		else
			do_exec(d);
		return;
	}
	if (now_usec() >= r->wait_until) {
		restart_fail(d, scm_error_new(SCM_E_BUSY, "scmd/restart", "no quiet moment within %d ms: %s",
					      RESTART_WAIT_MS, why));
		return;
	}
	timer_arm(&r->timer, RETRY_MS);
}

static void on_timer(struct scmd *d, struct watch *w, uint32_t events)
{
	uint64_t ticks;
	if (read(w->fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (!d->restart->checked) {
		restart_fail(d, scm_error_new(SCM_E_TIMEOUT, "scmd/restart",
					      "%s --check-state did not answer within %d ms", d->restart->exe,
					      CHECK_TIMEOUT_MS));
		return;
	}
	try_switch(d);
}

static void on_check_done(struct scmd *d, struct watch *w, uint32_t events)
{
	struct scmd_restart *r = d->restart;
	int status = 0;
	if (waitpid(r->check_pid, &status, WNOHANG) != r->check_pid)
		return;
	r->check_pid = 0;
	watch_del(d, &r->check_w);
	r->check_w.fd = safe_close(r->check_w.fd);
	char out[2048];
	ssize_t n = read(r->check_out, out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = 0;
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && strncmp(out, SCMD_CHECK_OK, strlen(SCMD_CHECK_OK)) != 0) {
		restart_fail(d, scm_error_new(SCM_E_INVALID, "scmd/restart",
					      "%s cannot take over: its dry run (--check-state) exited 0 but did not say '%s'"
					      " (not an scmd?): %s", r->exe, SCMD_CHECK_OK, out[0] ? out : "(it said nothing)"));
		return;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		restart_fail(d, scm_error_new(SCM_E_INVALID, "scmd/restart",
					      "%s cannot take over: its dry run (--check-state) %s %d: %s", r->exe,
					      WIFEXITED(status) ? "exited with status" : "was killed by signal",
					      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
					      out[0] ? out : "(it said nothing)"));
		return;
	}
	r->checked = true;
	r->standby = strstr(out, SCMD_CHECK_STANDBY) != NULL;
	r->early = r->standby && strstr(out, SCMD_CHECK_EARLY) != NULL;
	r->wait_until = now_usec() + RESTART_WAIT_MS * 1000ull;
	try_switch(d);
}

/* Starts `exe --check-state 3` on a copy of the state; 0 or -errno.
 * The state is written by the forked child from its copy of our tables,
 * not by us: with a thousand channels and fifty containers, building and
 * writing it took the loop 5 to 15 ms, a blackout before the switch that
 * every client felt. Here the loop pays for the fork only; the child's
 * snapshot is as consistent as ours (nothing runs in it but this). */
static int start_check(struct scmd *d, struct scmd_restart *r, scm_error **ret_err)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return scm_fail(ret_err, -errno, "pipe: %m");
	pid_t pid = fork();
	if (pid == 0) {
		/* behind the loop that serves: the dry run is no hurry */
		(void)setpriority(PRIO_PROCESS, 0, 19);
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC), memfd = -1;
		if (null >= 0)
			dup2(null, 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		struct state_out so;
		scm_error *e = NULL;
		restart_save(d, false, -1, 0, &so);
		if (state_out_memfd(&so, &memfd, &e) != 0) {
			_cleanup_free_ char *t = scm_error_text(e);
			dprintf(1, "the old scmd could not write its state for it: %s", t ? t : "?");
			_exit(127);
		}
		if (dup2(memfd, 3) < 0 || fcntl(3, F_SETFD, 0) < 0)
			_exit(127);
		close_range(4, ~0U, 0);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execl(r->exe, r->exe, "--check-state", "3", (char *)NULL);
		dprintf(2, "cannot run it: %s", strerror(errno));
		_exit(127);
	}
	close(out[1]);
	if (pid < 0) {
		close(out[0]);
		return scm_fail(ret_err, -errno, "fork: %m");
	}
	r->check_pid = pid;
	r->check_out = out[0];
	r->check_w = (struct watch){ (int)syscall(SYS_pidfd_open, pid, 0), on_check_done };
	if (r->check_w.fd < 0 || watch_add(d, &r->check_w, EPOLLIN) < 0)
		return scm_fail(ret_err, -errno, "pidfd_open: %m");
	return 0;
}

void restart_request(struct scmd *d, struct conn *c, uint32_t call_id, const char *exec_path)
{
	scm_error *e = NULL;
	if (d->restart) {
		if (c)
			conn_reply_fail(d, c, call_id, SCM_E_BUSY, "a restart in place is on its way already");
		return;
	}
	struct scmd_restart *r = calloc(1, sizeof(*r));
	if (!r) {
		if (c)
			conn_reply_fail(d, c, call_id, -ENOMEM, "out of memory");
		return;
	}
	*r = (struct scmd_restart){ .conn = c, .call_id = call_id, .check_w = { -1, NULL }, .check_out = -1,
			       .timer = { timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), on_timer } };
	d->restart = r;
	if (exec_path) {
		if (exec_path[0] != '/' || access(exec_path, X_OK) < 0) {
			restart_fail(d, scm_error_new(SCM_E_INVALID, "scmd/restart",
						      "--exec %s: give the absolute path of an executable", exec_path));
			return;
		}
		r->exe = strdup(exec_path);
	} else {
		/* our own binary; replaced on disk (an upgrade), its new file */
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = 0;
			size_t l = strlen(exe);
			if (l > 10 && strcmp(exe + l - 10, " (deleted)") == 0)
				exe[l - 10] = 0;
			r->exe = strdup(exe);
		}
	}
	if (!r->exe || r->timer.fd < 0 || watch_add(d, &r->timer, EPOLLIN) < 0) {
		restart_fail(d, scm_error_new(-EIO, "scmd/restart", "cannot find our own binary or make a timer"));
		return;
	}
	log_notice("restart in place asked (%s): checking that %s reads our state", c ? "daemon.restart" : "SIGUSR2",
		   r->exe);
	if (start_check(d, r, &e) != 0) {
		restart_fail(d, e);
		return;
	}
	timer_arm(&r->timer, CHECK_TIMEOUT_MS);
}

void restart_answer(struct scmd *d, json_object *st, uint64_t restored_at, int reply_fd)
{
	json_object *rep = json_object_object_get(st, "reply"), *sc = json_object_object_get(st, "scmd");
	int64_t exec_at = json_object_get_int64(json_object_object_get(sc, "exec_at"));
	uint64_t now = now_usec();
	uint64_t sw = exec_at > 0 && (uint64_t)exec_at < now ? now - (uint64_t)exec_at : 0;
	if (d->store_restore)
		log_notice("restored from systemd's fd store: generation %llu, state version %u (restore %llu us)",
			   (unsigned long long)d->generation, SCMD_STATE_VERSION, (unsigned long long)(now - restored_at));
	else if (d->restart_clock.fds && sw)
		log_notice("restarted in place: generation %llu, state version %u, switch took %llu us (state written and "
			   "fds passed %lld us, state read %lld us, tables %lld us (channels %llu, containers %llu), policy "
			   "re-check %lld us; the successor's CPU time %llu us)",
			   (unsigned long long)d->generation, SCMD_STATE_VERSION, (unsigned long long)sw,
			   (long long)(d->restart_clock.fds - (uint64_t)exec_at),
			   (long long)(d->restart_clock.parsed - d->restart_clock.fds),
			   (long long)(d->restart_clock.tables - d->restart_clock.parsed),
			   (unsigned long long)d->restart_clock.chans_us, (unsigned long long)d->restart_clock.ctrs_us,
			   (long long)(d->restart_clock.checked - d->restart_clock.tables),
			   (unsigned long long)d->restart_clock.cpu0);
	else
		log_notice("restarted in place: generation %llu, state version %u, switch took %llu us (restore %llu us)",
			   (unsigned long long)d->generation, SCMD_STATE_VERSION, (unsigned long long)sw,
			   (unsigned long long)(now - restored_at));
	if (!rep)
		return;
	struct conn *c = reply_fd >= 0 ? restart_conn_by_fd(d, reply_fd) : NULL;
	json_object *refused = json_object_object_get(rep, "refused");
	if (refused) {
		/* the successor could not take over; we are the previous binary */
		scm_error *e = scm_error_new(SCM_E_INVALID, "scmd/restart",
					     "restart in place refused, scmd %d goes on with its previous binary: "
					     "the successor could not take over: %s",
					     (int)getpid(), json_object_get_string(refused));
		audit_event(d->audit, "daemon-restart-refused", "\"exec\":\"\"");
		if (c)
			conn_send_error(d, c, (uint32_t)json_object_get_int64(json_object_object_get(rep, "call_id")), e);
		scm_error_free(e);
		return;
	}
	if (!c)
		return;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)d->generation));
	json_object_object_add(o, "state_version", json_object_new_int(SCMD_STATE_VERSION));
	json_object_object_add(o, "switch_us", json_object_new_int64((int64_t)sw));
	if (sw) { /* the switch's window on CLOCK_MONOTONIC, for a client that times its own calls */
		json_object_object_add(o, "quiet_at_us", json_object_new_int64(exec_at));
		json_object_object_add(o, "ready_at_us", json_object_new_int64((int64_t)now));
	}
	conn_send(d, c, SCM_FRAME_REPLY, (uint32_t)json_object_get_int64(json_object_object_get(rep, "call_id")), o,
		  NULL, 0);
	json_object_put(o);
}
