/* console.c: a container's terminal (container_opts.pty), made inside it as
 * runc and crun make theirs. A pty taken from the host's /dev/ptmx belongs
 * to the host's devpts: inside, /dev/pts (the container's own newinstance
 * devpts) has no such slave, so ttyname() fails ("not a tty") and
 * `ls /dev/pts` shows nothing of it. So the main process, after the sandbox
 * is entered and before its exec, opens the container's /dev/ptmx (a link
 * to pts/ptmx), makes the slave its stdio and controlling terminal, and
 * sends the master to the runtime over a socketpair, as runc's
 * --console-socket does. It is sent before the exec, and the exec is what
 * ends the launch (EOF on the error pipe), so the master is queued by the
 * time the runtime finishes the launch: the runtime reads it there,
 * without waiting (container_start_finish). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "launch-internal.h"
#include "scm-internal/error.h"

/* In the main process, in the container: the slave (to become its stdio),
 * or -errno with rec filled. */
int console_make(const launch_plan *p, struct launch_record *rec)
{
	const container_opts *o = p->opts;
	/* /dev/ptmx is the runtime's own link into the container's devpts
	 * (rootfs.c); nothing of the container has run yet. */
	_cleanup_close_ int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return launch_note(rec, errno, "a terminal from the container's /dev/ptmx (a devpts at /dev/pts?)");
	int unlock = 0;
	if (ioctl(m, TIOCSPTLCK, &unlock) < 0)
		return launch_note(rec, errno, "unlocking the terminal");
	/* Set before the program runs, so its first look is right. */
	struct winsize ws = { .ws_row = o->pty_rows, .ws_col = o->pty_cols };
	if ((ws.ws_row || ws.ws_col) && ioctl(m, TIOCSWINSZ, &ws) < 0)
		return launch_note(rec, errno, "the terminal's size");
	struct termios t;
	if (o->pty_raw_out && tcgetattr(m, &t) == 0) {
		t.c_oflag &= ~(tcflag_t)OPOST;
		if (tcsetattr(m, TCSANOW, &t) < 0)
			return launch_note(rec, errno, "the terminal's output mode");
	}
	/* through the master, not by its name in /dev/pts */
	int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	if (s < 0)
		return launch_note(rec, errno, "the terminal's slave");
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	char byte = 'T';
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &m, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(p->console_sock[1], &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != 1) {
		int e = n < 0 ? errno : EIO;
		close(s);
		return launch_note(rec, e, "sending the terminal to the runtime");
	}
	return s;
}

/* The runtime's side, once the launch ended well: the master is queued on
 * c->console_fd (or the main process never sent it: an error). */
int console_receive(container *c, scm_error **ret_err)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u = { 0 };
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	do
		n = recvmsg(c->console_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	int err = n < 0 ? errno : 0;
	c->console_fd = safe_close(c->console_fd);
	struct cmsghdr *h = n == 1 ? CMSG_FIRSTHDR(&msg) : NULL;
	int fd = -1;
	if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS && h->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(h), sizeof(int));
	struct stat st;
	if (fd < 0 || (msg.msg_flags & MSG_CTRUNC) || fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		safe_close(fd);
		return scm_fail(ret_err, -EIO, "the container's terminal did not come back from its main process%s%s",
				err ? ": " : "", err ? strerror(err) : "");
	}
	c->pty_master = fd;
	return 0;
}

int container_pty_take(container *c)
{
	return TAKE_FD(c->pty_master);
}
