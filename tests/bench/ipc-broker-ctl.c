/* ipc-broker-ctl.c: runs dbus-broker without systemd or its launcher.
 *
 * dbus-broker takes a controller connection (--controller FD): a private
 * D-Bus peer connection on which the controller calls
 * org.bus1.DBus.Broker.AddListener(o path, h socket, v policy). We are that
 * controller: we do the SASL handshake by hand, let libdbus marshal the one
 * method call (libdbus cannot wrap an existing socket in a connection) and
 * send it with the listening socket attached. The policy allows everything
 * for every uid, as a developer session bus would.
 *
 * The policy's type grew over releases: "...a(ss)b" (AppArmor flag) and
 * later "...a(ss)bs" (plus the bus type). We try the newer form first and
 * fall back to the older one on a fresh broker. */
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "ipc-broker-ctl.h"
#include "scm/macro.h"

#define BATCH_T "bta(btbs)a(btssssuutt)a(btssssuutt)"
#define POLICY_T_OLD "(a(u(" BATCH_T "))a(buu(" BATCH_T "))a(ss)b)"
#define POLICY_T_NEW "(a(u(" BATCH_T "))a(buu(" BATCH_T "))a(ss)bs)"

static bool put(DBusMessageIter *it, int type, const void *v)
{
	return dbus_message_iter_append_basic(it, type, v);
}

/* One allow-everything send or receive rule: (allow, priority, name, path,
 * interface, member, type, broadcast, min_fds, max_fds). */
static bool put_xmit(DBusMessageIter *batch)
{
	DBusMessageIter a, r;
	dbus_bool_t yes = TRUE;
	dbus_uint64_t prio = 1, min_fds = 0, max_fds = UINT64_MAX;
	dbus_uint32_t zero = 0;
	const char *any = "";

	return dbus_message_iter_open_container(batch, DBUS_TYPE_ARRAY, "(btssssuutt)", &a) &&
	       dbus_message_iter_open_container(&a, DBUS_TYPE_STRUCT, NULL, &r) &&
	       put(&r, DBUS_TYPE_BOOLEAN, &yes) && put(&r, DBUS_TYPE_UINT64, &prio) &&
	       put(&r, DBUS_TYPE_STRING, &any) && put(&r, DBUS_TYPE_STRING, &any) &&
	       put(&r, DBUS_TYPE_STRING, &any) && put(&r, DBUS_TYPE_STRING, &any) &&
	       put(&r, DBUS_TYPE_UINT32, &zero) && put(&r, DBUS_TYPE_UINT32, &zero) &&
	       put(&r, DBUS_TYPE_UINT64, &min_fds) && put(&r, DBUS_TYPE_UINT64, &max_fds) &&
	       dbus_message_iter_close_container(&a, &r) &&
	       dbus_message_iter_close_container(batch, &a);
}

/* The allow-all batch: connect allowed, any name may be owned (prefix ""),
 * any message may be sent and received. */
static bool put_batch(DBusMessageIter *parent)
{
	DBusMessageIter batch, own, rule;
	dbus_bool_t yes = TRUE;
	dbus_uint64_t prio = 1;
	const char *any = "";

	return dbus_message_iter_open_container(parent, DBUS_TYPE_STRUCT, NULL, &batch) &&
	       put(&batch, DBUS_TYPE_BOOLEAN, &yes) && put(&batch, DBUS_TYPE_UINT64, &prio) &&
	       dbus_message_iter_open_container(&batch, DBUS_TYPE_ARRAY, "(btbs)", &own) &&
	       dbus_message_iter_open_container(&own, DBUS_TYPE_STRUCT, NULL, &rule) &&
	       put(&rule, DBUS_TYPE_BOOLEAN, &yes) && put(&rule, DBUS_TYPE_UINT64, &prio) &&
	       put(&rule, DBUS_TYPE_BOOLEAN, &yes) && put(&rule, DBUS_TYPE_STRING, &any) &&
	       dbus_message_iter_close_container(&own, &rule) &&
	       dbus_message_iter_close_container(&batch, &own) && put_xmit(&batch) &&
	       put_xmit(&batch) && dbus_message_iter_close_container(parent, &batch);
}

static bool put_policy(DBusMessageIter *args, bool with_bus_type)
{
	DBusMessageIter v, s, uids, entry, gids, selinux;
	dbus_uint32_t fallback_uid = UINT32_MAX;
	dbus_bool_t no = FALSE;
	const char *bus_type = "session";

	if (!dbus_message_iter_open_container(args, DBUS_TYPE_VARIANT,
					      with_bus_type ? POLICY_T_NEW : POLICY_T_OLD, &v) ||
	    !dbus_message_iter_open_container(&v, DBUS_TYPE_STRUCT, NULL, &s) ||
	    !dbus_message_iter_open_container(&s, DBUS_TYPE_ARRAY, "(u(" BATCH_T "))", &uids) ||
	    !dbus_message_iter_open_container(&uids, DBUS_TYPE_STRUCT, NULL, &entry) ||
	    !put(&entry, DBUS_TYPE_UINT32, &fallback_uid) || !put_batch(&entry) ||
	    !dbus_message_iter_close_container(&uids, &entry) ||
	    !dbus_message_iter_close_container(&s, &uids) ||
	    !dbus_message_iter_open_container(&s, DBUS_TYPE_ARRAY, "(buu(" BATCH_T "))", &gids) ||
	    !dbus_message_iter_close_container(&s, &gids) ||
	    !dbus_message_iter_open_container(&s, DBUS_TYPE_ARRAY, "(ss)", &selinux) ||
	    !dbus_message_iter_close_container(&s, &selinux) ||
	    !put(&s, DBUS_TYPE_BOOLEAN, &no)) /* AppArmor off */
		return false;
	if (with_bus_type && !put(&s, DBUS_TYPE_STRING, &bus_type))
		return false;
	return dbus_message_iter_close_container(&v, &s) &&
	       dbus_message_iter_close_container(args, &v);
}

static int write_all(int fd, const char *s)
{
	size_t n = strlen(s) + (s[0] ? 0 : 1); /* the leading NUL byte */
	return write(fd, s, n) == (ssize_t)n ? 0 : -EIO;
}

/* SASL EXTERNAL with our uid, then fd passing, then BEGIN. */
static int sasl(int fd)
{
	static const char digits[] = "0123456789abcdef";
	char line[256], cmd[128];
	char uid[16], hex[2 * sizeof(uid) + 1];
	size_t i;
	ssize_t r;

	snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
	for (i = 0; uid[i]; i++) {
		hex[2 * i] = digits[(unsigned char)uid[i] >> 4];
		hex[2 * i + 1] = digits[(unsigned char)uid[i] & 15];
	}
	hex[2 * i] = 0;
	snprintf(cmd, sizeof(cmd), "AUTH EXTERNAL %s\r\n", hex);
	if (write(fd, "", 1) != 1 || write_all(fd, cmd) < 0)
		return -EIO;
	r = ipc_read_line(fd, line, sizeof(line), 5000);
	if (r < 0)
		return (int)r;
	if (strncmp(line, "OK ", 3) != 0) {
		fprintf(stderr, "ipc-bench: dbus-broker SASL: %s\n", line);
		return -EACCES;
	}
	if (write_all(fd, "NEGOTIATE_UNIX_FD\r\n") < 0)
		return -EIO;
	r = ipc_read_line(fd, line, sizeof(line), 5000);
	if (r < 0)
		return (int)r;
	if (strncmp(line, "AGREE_UNIX_FD", 13) != 0) {
		fprintf(stderr, "ipc-bench: dbus-broker SASL: %s\n", line);
		return -EPROTO;
	}
	return write_all(fd, "BEGIN\r\n");
}

static int send_with_fd(int fd, const char *data, size_t len, int pass_fd)
{
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl = { 0 };
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -errno;
}

static int read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t k = read(fd, buf + got, len - got);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k == 0 ? -EPIPE : -errno;
		got += (size_t)k;
	}
	return 0;
}

/* Reads messages until the reply to serial 1 arrives; anything the broker
 * sends us before it (none expected) is skipped. */
static int read_reply(int fd)
{
	for (;;) {
		char head[16];
		_cleanup_free_ char *msg = NULL;
		DBusError err = DBUS_ERROR_INIT;
		DBusMessage *m;
		int need, type, r;

		r = read_full(fd, head, sizeof(head));
		if (r < 0)
			return r;
		need = dbus_message_demarshal_bytes_needed(head, sizeof(head));
		if (need < (int)sizeof(head) || need > (1 << 20))
			return -EBADMSG;
		msg = malloc((size_t)need);
		if (!msg)
			return -ENOMEM;
		memcpy(msg, head, sizeof(head));
		r = read_full(fd, msg + sizeof(head), (size_t)need - sizeof(head));
		if (r < 0)
			return r;
		m = dbus_message_demarshal(msg, need, &err);
		if (!m) {
			fprintf(stderr, "ipc-bench: dbus-broker reply: %s\n", err.message);
			dbus_error_free(&err);
			return -EBADMSG;
		}
		type = dbus_message_get_type(m);
		if (dbus_message_get_reply_serial(m) != 1) {
			dbus_message_unref(m);
			continue;
		}
		if (type == DBUS_MESSAGE_TYPE_ERROR) {
			fprintf(stderr, "ipc-bench: dbus-broker AddListener: %s\n",
				dbus_message_get_error_name(m));
			dbus_message_unref(m);
			return -EINVAL;
		}
		dbus_message_unref(m);
		return type == DBUS_MESSAGE_TYPE_METHOD_RETURN ? 0 : -EBADMSG;
	}
}

static int add_listener(int ctl, int listen_fd, bool with_bus_type)
{
	DBusMessage *m;
	DBusMessageIter args;
	const char *path = "/org/bus1/DBus/Listener/0";
	char *data = NULL;
	int len = 0, r;

	m = dbus_message_new_method_call(NULL, "/org/bus1/DBus/Broker", "org.bus1.DBus.Broker",
					 "AddListener");
	if (!m)
		return -ENOMEM;
	dbus_message_iter_init_append(m, &args);
	if (!put(&args, DBUS_TYPE_OBJECT_PATH, &path) ||
	    !put(&args, DBUS_TYPE_UNIX_FD, &listen_fd) || !put_policy(&args, with_bus_type)) {
		dbus_message_unref(m);
		return -ENOMEM;
	}
	dbus_message_set_serial(m, 1);
	if (!dbus_message_marshal(m, &data, &len)) {
		dbus_message_unref(m);
		return -ENOMEM;
	}
	dbus_message_unref(m);
	r = send_with_fd(ctl, data, (size_t)len, listen_fd);
	dbus_free(data);
	if (r < 0)
		return r;
	return read_reply(ctl);
}

static pid_t spawn_broker(bool pinned, int *ret_ctl)
{
	int pair[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		return -errno;
	pid = ipc_fork(pinned);
	if (pid < 0) {
		safe_close(pair[0]);
		safe_close(pair[1]);
		return pid;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

		/* dup2() gives fd 3 without O_CLOEXEC, so only it is inherited. */
		if (pair[1] == 3) {
			if (fcntl(3, F_SETFD, 0) < 0)
				_exit(127);
		} else if (dup2(pair[1], 3) < 0) {
			_exit(127);
		}
		if (devnull >= 0)
			dup2(devnull, STDOUT_FILENO);
		execlp("dbus-broker", "dbus-broker", "--controller", "3", "--machine-id",
		       "0123456789abcdef0123456789abcdef", (char *)NULL);
		fprintf(stderr, "ipc-bench: exec dbus-broker: %m\n");
		_exit(127);
	}
	close(pair[1]);
	*ret_ctl = pair[0];
	return pid;
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 256) < 0)
		return -errno;
	return TAKE_FD(fd);
}

pid_t ipc_broker_start(const char *socket_path, bool pinned, int *ret_ctl)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		bool with_bus_type = attempt == 0;
		_cleanup_close_ int lfd = listen_at(socket_path);
		int ctl = -1, r;
		pid_t pid;

		if (lfd < 0)
			return lfd;
		pid = spawn_broker(pinned, &ctl);
		if (pid < 0)
			return pid;
		r = sasl(ctl);
		if (r >= 0)
			r = add_listener(ctl, lfd, with_bus_type);
		if (r >= 0) {
			/* The controller connection must stay open: the broker
			 * exits when it closes. */
			*ret_ctl = ctl;
			return pid;
		}
		safe_close(ctl);
		ipc_kill_reap(pid);
		if (attempt == 0)
			fprintf(stderr, "ipc-bench: retrying dbus-broker with the older policy type\n");
		else
			return r;
	}
	return -EINVAL;
}
