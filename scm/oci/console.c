/* console.c: `terminal: true`, runc's way. The runtime makes the pty and
 * hands its master to the engine over the unix socket named by
 * --console-socket (one SCM_RIGHTS message, the pty's name as the data),
 * before `create` (or `exec`) returns; conmon and containerd's shim wait
 * for it there. The slave stays with scm-oci's monitor: for a container
 * it relays between this pty and the one scmd makes for the container
 * (whose slave is the container's controlling terminal), for an exec it
 * is the process's stdio. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "oci.h"
#include "scm/macro.h"

int oci_console_open(json_object *process, int *ret_master, int *ret_slave, scm_error **ret_err)
{
	_cleanup_close_ int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	int unlock = 0;
	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0)
		return scm_fail(ret_err, -errno, "a pty for the terminal (/dev/ptmx): %m");
	/* process.consoleSize, so the program's first look is right; the
	 * engine resizes through the master afterwards */
	json_object *cs, *v;
	struct winsize ws = { 0 };
	if (process && json_object_object_get_ex(process, "consoleSize", &cs)) {
		if (json_object_object_get_ex(cs, "height", &v))
			ws.ws_row = (unsigned short)json_object_get_int(v);
		if (json_object_object_get_ex(cs, "width", &v))
			ws.ws_col = (unsigned short)json_object_get_int(v);
		if ((ws.ws_row || ws.ws_col) && ioctl(m, TIOCSWINSZ, &ws) < 0)
			return scm_fail(ret_err, -errno, "the terminal's size: %m");
	}
	/* through the master, not a name in /dev/pts that could be swapped */
	int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return scm_fail(ret_err, -errno, "the terminal's slave: %m");
	*ret_master = TAKE_FD(m);
	*ret_slave = s;
	return 0;
}

int oci_console_send(const char *path, int master, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return scm_fail(ret_err, SCM_E_INVALID, "--console-socket %s: name too long", path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return scm_fail(ret_err, -errno, "--console-socket %s: %m", path);
	char name[64] = "/dev/ptmx";
	(void)ptsname_r(master, name, sizeof(name));
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	struct iovec iov = { name, strlen(name) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &master, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return scm_fail(ret_err, -errno, "--console-socket %s: sending the terminal: %m", path);
	return 0;
}

int oci_console_check(json_object *process, const char *console_socket, const char *where, scm_error **ret_err)
{
	json_object *t;
	bool term = process && json_object_object_get_ex(process, "terminal", &t) && json_object_get_boolean(t);
	if (term && !console_socket)
		return scm_fail(ret_err, SCM_E_INVALID,
				"%s /process/terminal is true: --console-socket is needed to hand the terminal over",
				where);
	if (!term && console_socket)
		return scm_fail(ret_err, SCM_E_INVALID,
				"--console-socket %s given, but %s /process/terminal is not true", console_socket, where);
	return 0;
}

/* One direction of the relay: what was read and not yet written. */
struct pump {
	int from, to;
	char buf[16384];
	size_t len, off;
	bool eof;
};

static void pump_read(struct pump *p)
{
	ssize_t k = read(p->from, p->buf, sizeof(p->buf));
	if (k > 0) {
		p->len = (size_t)k;
		p->off = 0;
	} else if (k == 0 || (errno != EINTR && errno != EAGAIN))
		p->eof = true; /* EIO: every slave of that pty is closed */
}

/* false: `to` is gone */
static bool pump_write(struct pump *p)
{
	ssize_t w = write(p->to, p->buf + p->off, p->len);
	if (w > 0) {
		p->off += (size_t)w;
		p->len -= (size_t)w;
	} else if (w < 0 && errno != EINTR && errno != EAGAIN) {
		p->len = 0;
		return false;
	}
	return true;
}

void oci_console_relay(int outer, int inner, int sfd, void (*on_signal)(int sig, void *data), void *data)
{
	fcntl(outer, F_SETFL, fcntl(outer, F_GETFL) | O_NONBLOCK);
	fcntl(inner, F_SETFL, fcntl(inner, F_GETFL) | O_NONBLOCK);
	struct pump *out = calloc(1, sizeof(*out)), *in = calloc(1, sizeof(*in));
	if (!out || !in) {
		free(out);
		free(in);
		return;
	}
	*out = (struct pump){ .from = inner, .to = outer };
	*in = (struct pump){ .from = outer, .to = inner };
	bool outer_gone = false;
	/* The container's output decides the end. The engine's side may go
	 * first (its master closed: input ends, output is dropped) without
	 * ending the container; the hangup's SIGHUP is forwarded like any. */
	while (!out->eof || out->len > 0) {
		short ei = (out->len == 0 && !out->eof ? POLLIN : 0) | (in->len > 0 ? POLLOUT : 0);
		short eo = outer_gone ? 0 : (in->len == 0 && !in->eof ? POLLIN : 0) | (out->len > 0 ? POLLOUT : 0);
		/* an fd with nothing asked of it stays out: a hung-up pty
		 * reports POLLHUP for ever */
		struct pollfd p[3] = { { ei ? inner : -1, ei, 0 }, { eo ? outer : -1, eo, 0 }, { sfd, POLLIN, 0 } };
		if (poll(p, 3, -1) < 0)
			continue;
		if (p[2].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				on_signal((int)si.ssi_signo, data);
		}
		if (p[0].revents && out->len == 0 && !out->eof)
			pump_read(out);
		if (p[1].revents && in->len == 0 && !in->eof)
			pump_read(in);
		if (out->len > 0 && (outer_gone || !pump_write(out))) {
			outer_gone = true;
			in->eof = true;
			out->len = 0;
		}
		if (in->len > 0 && !pump_write(in))
			in->eof = true; /* the container's terminal refused: no more input */
	}
	free(out);
	free(in);
}
