/* container-control.c: the container.* ops of the control socket, and the
 * processes `container exec` starts (children of scmd, reaped here and
 * answered with their exit status). */
#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "container-hook.h"
#include "restart.h"

/* An exec'd process is a child of scmd: its error pipe says when it
 * exec'd (or why it did not), a timer gives up on one that never gets to
 * execve (stopped by the container, stuck on a dead mount), and SIGCHLD
 * reaps it and answers with its exit status. None of it waits. */
struct exec_wait {
	struct exec_wait *next;
	pid_t pid;
	struct conn *conn;
	uint32_t call_id;
	struct watch errw, timer;
	char *name;
	bool failed; /* answered with an error already */
};
static struct exec_wait *execs;

static void exec_unwatch(struct scmd *d, struct exec_wait *x)
{
	if (x->errw.fd >= 0) {
		watch_del(d, &x->errw);
		x->errw.fd = safe_close(x->errw.fd);
	}
	if (x->timer.fd >= 0) {
		watch_del(d, &x->timer);
		x->timer.fd = safe_close(x->timer.fd);
	}
}

static void exec_fail(struct scmd *d, struct exec_wait *x, int code, const char *fmt, ...) _printf_(4, 5);
static void exec_fail(struct scmd *d, struct exec_wait *x, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = scm_error_newv(code, "scmd/container", fmt, ap);
	va_end(ap);
	if (x->conn)
		conn_send_error(d, x->conn, x->call_id, e);
	scm_error_free(e);
	x->conn = NULL;
	x->failed = true;
}

/* EOF: exec'd, the reply waits for the exit. A record: it failed. */
static void exec_read(struct scmd *d, struct exec_wait *x)
{
	char rec[CONTAINER_RECORD_SIZE];
	ssize_t n = read(x->errw.fd, rec, sizeof(rec));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	exec_unwatch(d, x);
	if (n > 0) {
		scm_error *e = scm_error_wrap(container_record_error(rec, (size_t)n, -EIO), -EIO, "scmd/container",
					      "exec in '%s'", x->name);
		if (x->conn)
			conn_send_error(d, x->conn, x->call_id, e);
		scm_error_free(e);
		x->conn = NULL;
		x->failed = true;
	}
}

static void on_exec_err(struct scmd *d, struct watch *w, uint32_t events)
{
	exec_read(d, (struct exec_wait *)((char *)w - offsetof(struct exec_wait, errw)));
}

static void on_exec_timer(struct scmd *d, struct watch *w, uint32_t events)
{
	struct exec_wait *x = (struct exec_wait *)((char *)w - offsetof(struct exec_wait, timer));
	exec_unwatch(d, x);
	kill(x->pid, SIGKILL); /* the process in the container has PDEATHSIG */
	exec_fail(d, x, SCM_E_TIMEOUT,
		  "exec in '%s' did not reach its program within %u ms (stopped or stuck before exec); killed it",
		  x->name, d->exec_timeout_ms);
}

void scmd_ctr_reap_execs(struct scmd *d)
{
	for (struct exec_wait **pp = &execs; *pp;) {
		struct exec_wait *x = *pp;
		int status;
		if (waitpid(x->pid, &status, WNOHANG) != x->pid) {
			pp = &x->next;
			continue;
		}
		if (x->errw.fd >= 0)
			exec_read(d, x); /* it ended before we heard how it started */
		exec_unwatch(d, x);
		if (x->conn && !x->failed) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "exit_code", json_object_new_int(container_wait_status_to_exit(status)));
			conn_send(d, x->conn, SCM_FRAME_REPLY, x->call_id, o, NULL, 0);
			json_object_put(o);
		}
		*pp = x->next;
		free(x->name);
		free(x);
	}
}

void scmd_ctr_conn_closed(struct scmd *d, struct conn *c);

static void execs_conn_closed(struct conn *c)
{
	for (struct exec_wait *x = execs; x; x = x->next)
		if (x->conn == c)
			x->conn = NULL; /* still reaped, nobody told */
}

static const char *jstr(json_object *a, const char *k)
{
	json_object *v;
	return a && json_object_object_get_ex(a, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static char **jstrv(json_object *a, const char *k, bool *bad)
{
	json_object *v;
	const char *why = NULL;
	*bad = false;
	if (!a || !json_object_object_get_ex(a, k, &v))
		return NULL;
	char **s = strv_from_json(v, 4096, true, &why);
	*bad = s == NULL;
	return s;
}

static void reply(struct scmd *d, struct conn *c, uint32_t id, json_object *o, const int *fds, size_t n)
{
	conn_send(d, c, SCM_FRAME_REPLY, id, o, fds, n);
	json_object_put(o);
}

static void fail(struct scmd *d, struct conn *c, uint32_t id, scm_error *e)
{
	conn_send_error(d, c, id, e);
	scm_error_free(e);
}

static void op_run(struct scmd *d, struct conn *c, scm_message *m)
{
	json_object *a = m->json, *env = NULL, *v;
	scm_error *e = NULL;
	bool bad1, bad2;
	char **argv = jstrv(a, "argv", &bad1), **profiles = jstrv(a, "profiles", &bad2);
	const char *bundle = jstr(a, "bundle");

	if (bad1 || bad2 || (!bundle && (!argv || !argv[0])) || (bundle && argv)) {
		conn_reply_fail(d, c, m->call_id, SCM_E_INVALID,
				"container.run needs \"bundle\" or a non-empty \"argv\" (not both); profiles is a list");
		goto out;
	}
	if (json_object_object_get_ex(a, "env", &env) && !json_object_is_type(env, json_type_array)) {
		conn_reply_fail(d, c, m->call_id, SCM_E_INVALID, "env must be a list of \"K=V\"");
		goto out;
	}
	json_object *binds = NULL;
	if (json_object_object_get_ex(a, "binds", &binds) && !json_object_is_type(binds, json_type_array)) {
		conn_reply_fail(d, c, m->call_id, SCM_E_INVALID,
				"binds must be a list of {\"source\", \"destination\", \"writable\"}");
		goto out;
	}
	/* "join_fds": {"network"|"ipc"|"uts": N}, N an index of the fds sent
	 * (scm-oci's monitor hands over the namespaces it pinned at create);
	 * stdin is the first fd when no namespace takes that index. */
	int join_fds[3] = { -1, -1, -1 };
	json_object *jf = NULL;
	bool stdin0 = m->n_fds > 0;
	if (json_object_object_get_ex(a, "join_fds", &jf)) {
		static const char *const names[3] = { "network", "ipc", "uts" };
		bool badj = !json_object_is_type(jf, json_type_object);
		for (int i = 0; !badj && i < 3; i++) {
			if (!json_object_object_get_ex(jf, names[i], &v))
				continue;
			int64_t k = json_object_get_int64(v);
			badj = !json_object_is_type(v, json_type_int) || k < 0 || (size_t)k >= m->n_fds;
			if (!badj) {
				join_fds[i] = m->fds[k];
				stdin0 &= k != 0;
			}
		}
		if (badj || json_object_object_length(jf) != (join_fds[0] >= 0) + (join_fds[1] >= 0) + (join_fds[2] >= 0)) {
			conn_reply_fail(d, c, m->call_id, SCM_E_INVALID,
					"join_fds must be {\"network\"|\"ipc\"|\"uts\": the index of an fd sent}");
			goto out;
		}
	}
	struct container_req req = {
		.name = jstr(a, "name"),
		.join_fds = jf ? join_fds : NULL,
		.bundle = bundle,
		.argv = argv,
		.profiles = profiles,
		.env = env,
		.binds = binds,
		.stdin_fd = stdin0 ? m->fds[0] : -1,
		.attach = json_object_object_get_ex(a, "attach", &v) && json_object_get_boolean(v),
		.tty = json_object_object_get_ex(a, "tty", &v) && json_object_get_boolean(v),
		.tty_raw_out = json_object_object_get_ex(a, "tty_raw_out", &v) && json_object_get_boolean(v),
		.clip = json_object_object_get_ex(a, "clip", &v) && json_object_get_boolean(v),
		.uid = -1,
		.gid = -1,
	};
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "tty_cols" : "tty_rows";
		if (!json_object_object_get_ex(a, key, &v))
			continue;
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) > 0xffff) {
			conn_reply_fail(d, c, m->call_id, SCM_E_INVALID, "%s must be a number 0-65535", key);
			goto out;
		}
		*(k ? &req.tty_cols : &req.tty_rows) = (uint16_t)json_object_get_int64(v);
	}
	if (json_object_object_get_ex(a, "uid", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) >= 0xffffffffLL) {
			conn_reply_fail(d, c, m->call_id, SCM_E_INVALID, "uid must be a number");
			goto out;
		}
		req.uid = json_object_get_int64(v);
	}
	if (json_object_object_get_ex(a, "gid", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) >= 0xffffffffLL) {
			conn_reply_fail(d, c, m->call_id, SCM_E_INVALID, "gid must be a number");
			goto out;
		}
		req.gid = json_object_get_int64(v);
	}
	/* The reply comes when the launch completes (or fails): scmd serves
	 * everyone else meanwhile. */
	req.reply_conn = c;
	req.call_id = m->call_id;
	struct container_started st;
	if (scmd_ctr_start(d, &req, &st, &e) != 0)
		fail(d, c, m->call_id, e);
out:
	strv_free(argv);
	strv_free(profiles);
}

bool scmd_ctr_control(struct scmd *d, struct conn *c, const char *op, scm_message *m)
{
	json_object *a = m->json, *v;
	const char *name = jstr(a, "name");
	uint32_t id = m->call_id;
	scm_error *e = NULL;
	int r = 0;

	if (strncmp(op, "container.", 10) != 0)
		return false;
	op += 10;
	if (strcmp(op, "run") == 0) {
		op_run(d, c, m);
		return true;
	}
	if (strcmp(op, "list") == 0) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "containers", scmd_ctr_json(d, NULL));
		reply(d, c, id, o, NULL, 0);
		return true;
	}
	if (!name) {
		conn_reply_fail(d, c, id, SCM_E_INVALID, "container.%s needs a name", op);
		return true;
	}
	/* A name is a name: never a path, whatever the op does with it. */
	if (!name_valid(name, 48, NAME_FILE)) {
		conn_reply_fail(d, c, id, SCM_E_INVALID,
				"container name '%.64s' is not valid: 1-48 of [A-Za-z0-9._-], not starting with '.' or '-'",
				name);
		return true;
	}
	if (strcmp(op, "show") == 0) {
		json_object *arr = scmd_ctr_json(d, name);
		if (json_object_array_length(arr) == 0) {
			json_object_put(arr);
			conn_reply_fail(d, c, id, SCM_E_NOT_FOUND, "no container '%s'", name);
			return true;
		}
		json_object *o = json_object_get(json_object_array_get_idx(arr, 0));
		json_object_put(arr);
		reply(d, c, id, o, NULL, 0);
		return true;
	}
	if (ctr_update_control(d, c, op, id, ctr_find(d, name), a))
		return true;
	if (strcmp(op, "wait") == 0)
		r = scmd_ctr_wait(d, c, id, name, &e);
	else if (strcmp(op, "stop") == 0) {
		unsigned t = json_object_object_get_ex(a, "timeout_ms", &v) ? (unsigned)json_object_get_int(v) : 0;
		if ((r = scmd_ctr_stop(d, name, t, &e)) == 0) {
			audit_event(d->audit, "container-stop", "\"container\":%s,\"timeout_ms\":%u", audit_quote(name), t);
			reply(d, c, id, json_object_new_object(), NULL, 0);
		}
	} else if (strcmp(op, "kill") == 0) {
		int sig = json_object_object_get_ex(a, "signal", &v) ? json_object_get_int(v) : SIGKILL;
		if (sig <= 0 || sig >= 65)
			r = scm_fail(&e, SCM_E_INVALID, "signal %d is not a signal", sig);
		else if ((r = scmd_ctr_signal(d, name, sig, &e)) == 0)
			reply(d, c, id, json_object_new_object(), NULL, 0);
	} else if (strcmp(op, "rm") == 0) {
		if ((r = scmd_ctr_remove(d, name, &e)) == 0) {
			audit_event(d->audit, "container-remove", "\"container\":%s", audit_quote(name));
			reply(d, c, id, json_object_new_object(), NULL, 0);
		}
	} else if (strcmp(op, "logs") == 0) {
		/* Every file of the log, oldest first: scmctl reads them in turn. */
		int fds[CONTAINERS_LOG_FDS_MAX];
		size_t n = 0;
		if ((r = scmd_ctr_log_fds(d, name, fds, &n, &e)) == 0) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "files", json_object_new_int((int)n));
			reply(d, c, id, o, fds, n);
			while (n > 0)
				close(fds[--n]);
		}
	} else if (strcmp(op, "exec") == 0) {
		bool bad;
		char **argv = jstrv(a, "argv", &bad);
		pid_t pid;
		int errfd;
		if (bad || !argv || !argv[0] || m->n_fds != 3)
			r = scm_fail(&e, SCM_E_INVALID, "container.exec needs a non-empty argv and 3 fds (stdin, stdout, stderr)");
		else if ((r = scmd_ctr_exec(d, name, argv, m->fds, &pid, &errfd, &e)) == 0) {
			struct exec_wait *x = calloc(1, sizeof(*x));
			if (!x) {
				kill(pid, SIGKILL);
				close(errfd);
				r = scm_fail(&e, -ENOMEM, "out of memory");
				/* still reaped: a record without a conn */
				x = calloc(1, sizeof(*x));
			}
			if (x) {
				*x = (struct exec_wait){ execs, pid, r ? NULL : c, id,
							 { r ? -1 : errfd, on_exec_err },
							 { timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), on_exec_timer },
							 strdup(name), false };
				execs = x;
				if (x->errw.fd >= 0)
					watch_add(d, &x->errw, EPOLLIN);
				if (x->timer.fd >= 0) {
					timer_arm(&x->timer, d->exec_timeout_ms);
					watch_add(d, &x->timer, EPOLLIN);
				}
			}
		}
		strv_free(argv);
	} else
		r = scm_fail(&e, SCM_E_NO_METHOD, "unknown control op 'container.%s'", op);
	if (r != 0)
		fail(d, c, id, e);
	return true;
}

void scmd_ctr_conn_gone(struct scmd *d, struct conn *c)
{
	scmd_ctr_conn_closed(d, c);
	execs_conn_closed(c);
}

/* Restart in place: an exec'd process stays our child across execve, so
 * its waiter is carried (pid, the client's conn by fd, call); one still
 * on its way to execve has an error pipe and a timer, and is waited for. */
bool scmd_ctr_execs_starting(void)
{
	for (struct exec_wait *x = execs; x; x = x->next)
		if (x->errw.fd >= 0)
			return true;
	return false;
}

json_object *restart_save_execs(struct scmd *d)
{
	json_object *arr = json_object_new_array();
	for (struct exec_wait *x = execs; x; x = x->next) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "pid", json_object_new_int64(x->pid));
		json_object_object_add(o, "conn", json_object_new_int64(x->conn ? x->conn->w.fd : -1));
		json_object_object_add(o, "call_id", json_object_new_int64(x->call_id));
		json_object_object_add(o, "name", json_object_new_string(x->name));
		json_object_object_add(o, "failed", json_object_new_boolean(x->failed));
		json_object_array_add(arr, o);
	}
	(void)d;
	return arr;
}

int restart_load_execs(struct scmd *d, json_object *arr, struct fdmap *map, scm_error **ret_err)
{
	(void)map;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i);
		int64_t pid = json_object_get_int64(json_object_object_get(o, "pid"));
		int64_t cfd = json_object_get_int64(json_object_object_get(o, "conn"));
		if (pid <= 1 || pid > INT32_MAX)
			return scm_fail(ret_err, SCM_E_INVALID, "state /execs/%zu/pid: not a pid", i);
		struct exec_wait *x = calloc(1, sizeof(*x));
		if (!x)
			return -ENOMEM;
		*x = (struct exec_wait){ execs, (pid_t)pid, cfd >= 0 ? restart_conn_by_fd(d, (int)cfd) : NULL,
					 (uint32_t)json_object_get_int64(json_object_object_get(o, "call_id")),
					 { -1, on_exec_err }, { -1, on_exec_timer },
					 strdup(json_object_get_string(json_object_object_get(o, "name"))),
					 json_object_get_boolean(json_object_object_get(o, "failed")) };
		execs = x;
	}
	return 0;
}
