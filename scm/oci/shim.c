/* shim.c: the monitor scm-oci leaves behind at `create`, and scmd's
 * control socket.
 *
 * Engines watch the pid written to --pid-file as the container: conmon,
 * containerd's shim and CRI-O's conmon are subreapers that wait(2) for it
 * and read the container's output from the stdio they gave the runtime.
 * scmd's containers are scmd's children, so the pid engines get is this
 * monitor's: a child of `scm-oci create` (reparented to the engine's
 * subreaper when create exits) that keeps the engine's stdio, asks scmd to
 * launch the container at `start` (an attached run: scmd hands it the
 * output pipe), copies the output to the engine's stdout, forwards the
 * signals it gets to the container, and exits with the container's
 * status. Nothing here waits on anything but its own sockets and pipe. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "oci.h"
#include "scm-internal/error.h"
#include "scm-internal/wire.h"
#include "scm/macro.h"

const char *oci_scm_runtime_dir(void)
{
	static char buf[PATH_MAX];
	const char *e = getenv("SCM_RUNTIME_DIR"), *x = getenv("XDG_RUNTIME_DIR");
	if (oci_g.scm_runtime)
		return oci_g.scm_runtime;
	if (e && *e)
		return e;
	if (geteuid() != 0 && x && *x) {
		snprintf(buf, sizeof(buf), "%s/scm", x);
		return buf;
	}
	return "/run/scm";
}

int oci_scmd_call(const char *op, json_object *args, const int *fds, size_t n_fds, json_object **ret,
		  int *ret_fd, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", oci_scm_runtime_dir()) >=
	    sizeof(sa.sun_path))
		return scm_fail(ret_err, -ENAMETOOLONG, "scmd's runtime directory %s: name too long", oci_scm_runtime_dir());
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return scm_fail(ret_err, -errno, "cannot reach scmd at %s: %m (start scmd, or give "
						 "--scm-runtime-dir / $SCM_RUNTIME_DIR)", sa.sun_path);
	json_object *res = NULL;
	int r = scm_wire_control_request(fd, op, args, fds, n_fds, &res, ret_fd, ret_fd ? 1 : 0, ret_err);
	if (r == 0 && ret)
		*ret = res;
	else
		json_object_put(res);
	return r;
}

static void sock_path(int dirfd, struct sockaddr_un *sa)
{
	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	/* through the directory's fd: --root may be longer than sun_path */
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/shim.sock", dirfd);
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* container.run for this id: the reply's fd is the output pipe. join:
 * the namespaces to join, opened at create (by CONTAINER_JOIN_*, -1:
 * none), handed over so scmd joins those and not what the bundle's paths
 * name by now. */
static int launch(int dirfd, int tty, const int join[3], int *ret_out, char **ret_name, scm_error **ret_err)
{
	struct oci_state st;
	char self[64], dir[PATH_MAX];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(self, dir, sizeof(dir) - 1);
	if (n <= 0)
		return scm_fail(ret_err, -errno, "the state directory: %m");
	dir[n] = 0;
	const char *id = strrchr(dir, '/') + 1;
	int r = oci_state_load(id, &st, ret_err);
	if (r != 0)
		return r;
	json_object *a = json_object_new_object();
	json_object_object_add(a, "name", json_object_new_string(st.name));
	json_object_object_add(a, "bundle", json_object_new_string(dir));
	json_object_object_add(a, "attach", json_object_new_boolean(true));
	json_object_object_add(a, "clip", json_object_new_boolean(true));
	if (st.binds && json_object_array_length(st.binds) > 0)
		json_object_object_add(a, "binds", json_object_get(st.binds));
	int in = isatty(0) ? -1 : 0; /* conmon gives /dev/null or a pipe */
	struct winsize ws = { 0 };
	if (tty >= 0) {
		/* a pty of its own from scmd, the same size as the engine's */
		in = -1;
		json_object_object_add(a, "tty", json_object_new_boolean(true));
		if (ioctl(tty, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
			json_object_object_add(a, "tty_rows", json_object_new_int(ws.ws_row));
			json_object_object_add(a, "tty_cols", json_object_new_int(ws.ws_col));
		}
	}
	int fds[4];
	size_t n_fds = 0;
	if (in >= 0)
		fds[n_fds++] = in;
	static const char *const jn[3] = { "network", "ipc", "uts" };
	json_object *jf = NULL;
	for (int i = 0; i < 3; i++) {
		if (join[i] < 0)
			continue;
		if (!jf)
			jf = json_object_new_object();
		json_object_object_add(jf, jn[i], json_object_new_int((int)n_fds));
		fds[n_fds++] = join[i];
	}
	if (jf)
		json_object_object_add(a, "join_fds", jf);
	r = oci_scmd_call("container.run", a, fds, n_fds, NULL, ret_out, ret_err);
	json_object_put(a);
	if (r == 0 && *ret_out < 0)
		r = scm_fail(ret_err, SCM_E_INTERNAL, "scmd sent no output pipe for '%s'", st.name);
	if (r == 0)
		*ret_name = TAKE_PTR(st.name);
	oci_state_done(&st);
	return r;
}

static void forward(const char *name, int sig)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "name", json_object_new_string(name));
	json_object_object_add(a, "signal", json_object_new_int(sig));
	scm_error *e = NULL;
	if (oci_scmd_call("container.kill", a, NULL, 0, NULL, NULL, &e) != 0)
		scm_error_free(e); /* it ended meanwhile */
	json_object_put(a);
}

struct relay_ctx {
	const char *name;
	int outer, inner;
};

/* The engine resized its terminal: the container's follows (its
 * foreground process group gets SIGWINCH from the kernel). */
static void relay_signal(int sig, void *data)
{
	struct relay_ctx *x = data;
	struct winsize ws;
	if (sig != SIGWINCH)
		forward(x->name, sig);
	else if (ioctl(x->outer, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(x->inner, TIOCSWINSZ, &ws);
}

/* Copies the container's output to the engine's stdout (or relays its
 * terminal) until the container closes it, forwarding signals; then its
 * exit status. */
static _Noreturn void run_phase(int out, int sfd, int tty, const char *name)
{
	bool open_out = tty < 0;
	if (tty >= 0) {
		struct relay_ctx x = { name, tty, out };
		oci_console_relay(tty, out, sfd, relay_signal, &x);
	}
	while (open_out) {
		struct pollfd p[2] = { { out, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGWINCH)
				forward(name, (int)si.ssi_signo);
		}
		if (p[0].revents) {
			char buf[65536];
			ssize_t k = read(out, buf, sizeof(buf));
			if (k < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (k <= 0)
				open_out = false;
			else
				(void)write_all(1, buf, (size_t)k); /* an engine gone: dropped */
		}
	}
	close(out);
	json_object *a = json_object_new_object(), *res = NULL, *v;
	json_object_object_add(a, "name", json_object_new_string(name));
	scm_error *e = NULL;
	int code = 255;
	if (oci_scmd_call("container.wait", a, NULL, 0, &res, NULL, &e) == 0 &&
	    json_object_object_get_ex(res, "exit_code", &v))
		code = json_object_get_int(v);
	scm_error_free(e);
	json_object_put(res);
	json_object_put(a);
	_exit(code & 0xff);
}

_Noreturn void oci_shim_main(int dirfd, const char *id, int sync, int tty, const int join[3])
{
	(void)id;
	setsid();
	signal(SIGPIPE, SIG_IGN);
	if (tty >= 0) {
		/* the engine's terminal as this session's: its resizes come as
		 * SIGWINCH; raw, so the container's own pty does the line
		 * discipline once, not twice */
		struct termios t;
		if (ioctl(tty, TIOCSCTTY, 0) < 0 || tcgetattr(tty, &t) < 0)
			_exit(125);
		cfmakeraw(&t);
		if (tcsetattr(tty, TCSANOW, &t) < 0)
			_exit(125);
	}
	sigset_t ss;
	sigemptyset(&ss);
	int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
	for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
		sigaddset(&ss, sigs[i]);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	int sfd = signalfd(-1, &ss, SFD_CLOEXEC);
	struct sockaddr_un sa;
	sock_path(dirfd, &sa);
	int ls = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sfd < 0 || ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 4) < 0)
		_exit(125);
	(void)!write(sync, "1", 1);
	close(sync);
	for (;;) {
		struct pollfd p[2] = { { ls, POLLIN, 0 }, { sfd, POLLIN, 0 } };
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[1].revents) {
			/* killed while created: nothing ran, the engine sees the signal */
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGWINCH)
				_exit(128 + (int)si.ssi_signo);
		}
		if (!p[0].revents)
			continue;
		_cleanup_close_ int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		char req[16];
		if (c < 0 || read(c, req, sizeof(req)) != 5 || memcmp(req, "start", 5) != 0)
			continue;
		scm_error *e = NULL;
		char *name = NULL;
		int out = -1;
		scm_error *se = NULL;
		if (launch(dirfd, tty, join, &out, &name, &e) == 0 && oci_write_file(dirfd, "started", "", &se) != 0)
			scm_error_free(se); /* `state` then says created: cosmetic */
		json_object *o = e ? scm_error_to_json(e) : json_object_new_object();
		const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		(void)!write(c, text, strlen(text));
		json_object_put(o);
		if (e) {
			/* the engine says the start failed and deletes us */
			scm_error_free(e);
			_exit(125);
		}
		close(ls);
		/* scmd holds the joined namespaces now (the container is in them) */
		for (int i = 0; i < 3; i++)
			if (join[i] >= 0)
				close(join[i]);
		run_phase(out, sfd, tty, name);
	}
}

int oci_shim_start(int dirfd, const char *id, scm_error **ret_err)
{
	struct sockaddr_un sa;
	sock_path(dirfd, &sa);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || write(fd, "start", 5) != 5)
		return scm_fail(ret_err, SCM_E_INVALID, "container \"%s\" is not in the created state (its monitor "
							"is gone: %m)", id);
	char buf[65536];
	ssize_t n;
	do
		n = read(fd, buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return scm_fail(ret_err, -EIO, "container \"%s\": its monitor ended without an answer", id);
	buf[n] = 0;
	json_object *o = json_tokener_parse(buf);
	scm_error *e = o && json_object_object_length(o) > 0 ? scm_error_from_json(o) : NULL;
	json_object_put(o);
	if (!e)
		return 0;
	int code = e->code;
	scm_error_push(ret_err, e);
	return scm_fail(ret_err, code, "starting \"%s\"", id);
}
