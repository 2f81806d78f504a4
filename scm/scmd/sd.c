/* sd.c: scmd under systemd: readiness, status, the watchdog, and sockets
 * systemd made for it (socket activation).
 *
 * Everything here is a no-op when systemd did not start scmd: sd_notify()
 * does nothing without $NOTIFY_SOCKET, sd_listen_fds_with_names() finds no
 * fds, sd_watchdog_enabled() says no. So the same binary runs under a
 * service manager, from a shell, and in the tests (which stand in for
 * systemd with systemd-socket-activate and a NOTIFY_SOCKET listener).
 *
 * Activated sockets are taken by name (the socket unit's
 * FileDescriptorName=): "control" is the control socket, "endpoint-NAME"
 * a labelled endpoint for host processes (systemd forbids ':' in a name,
 * it separates $LISTEN_FDNAMES). Before scmd trusts one it checks what it
 * is: AF_UNIX, SOCK_SEQPACKET, listening, and bound to the path scmctl and
 * clients will look for; a socket that is something else is refused by
 * name, not served. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "scmd.h"

/* Without a watchdog, STATUS= is refreshed this often (with one, at
 * every ping). */
#define STATUS_REFRESH_MS 10000
#define ENDPOINT_FD_PREFIX "endpoint-"

int scmd_sd_listen(struct scmd *d, scm_error **ret_err)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);

	if (n < 0)
		return scm_fail(ret_err, n, "socket activation: $LISTEN_FDS: %s", strerror(-n));
	d->sd.fds = n > 0 ? calloc((size_t)n, sizeof(int)) : NULL;
	if (n > 0 && !d->sd.fds) {
		strv_free(names);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++)
		d->sd.fds[i] = SD_LISTEN_FDS_START + i;
	d->sd.names = names;
	d->sd.tick.fd = -1;
	d->sd.n_fds = (size_t)n;
	return 0;
}

int scmd_sd_take(struct scmd *d, const char *name)
{
	for (size_t i = 0; i < d->sd.n_fds; i++)
		if (d->sd.fds[i] >= 0 && d->sd.names && strcmp(d->sd.names[i], name) == 0)
			return TAKE_FD(d->sd.fds[i]);
	return -1;
}

/* 0 when fd is a listening AF_UNIX SOCK_SEQPACKET socket bound to want,
 * else what it is instead; fd is then made non-blocking (the accept loops
 * stop at EAGAIN). */
static int check_socket(int fd, const char *what, const char *want, scm_error **ret_err)
{
	struct sockaddr_un sa = {};
	socklen_t len = sizeof(sa);
	int type = 0, listening = 0;
	socklen_t il = sizeof(int);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return scm_fail(ret_err, -errno, "activated %s (fd %d) is not a socket: %m", what, fd);
	if (sa.sun_family != AF_UNIX)
		return scm_fail(ret_err, SCM_E_INVALID, "activated %s (fd %d) is not an AF_UNIX socket (family %d)",
				what, fd, sa.sun_family);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) < 0 || type != SOCK_SEQPACKET)
		return scm_fail(ret_err, SCM_E_INVALID,
				"activated %s (fd %d) is not SOCK_SEQPACKET (type %d): use ListenSequentialPacket=",
				what, fd, type);
	il = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &il) < 0 || !listening)
		return scm_fail(ret_err, SCM_E_INVALID, "activated %s (fd %d) is not listening", what, fd);
	size_t pl = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0;
	if (pl == 0 || sa.sun_path[0] == 0 || strnlen(sa.sun_path, pl) != strlen(want) ||
	    strncmp(sa.sun_path, want, pl) != 0)
		return scm_fail(ret_err, SCM_E_INVALID,
				"activated %s (fd %d) is bound to %.*s, not %s: make the socket unit's path and scmd's --runtime-dir agree",
				what, fd, sa.sun_path[0] ? (int)strnlen(sa.sun_path, pl) : 8,
				sa.sun_path[0] ? sa.sun_path : "(none)", want);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return scm_fail(ret_err, -errno, "activated %s (fd %d): fcntl: %m", what, fd);
	return 0;
}

int scmd_sd_control(struct scmd *d, const char *path, int *ret_fd, scm_error **ret_err)
{
	_cleanup_close_ int fd = scmd_sd_take(d, "control");
	*ret_fd = -1;
	if (fd < 0)
		return 0;
	int r = check_socket(fd, "control socket", path, ret_err);
	if (r != 0)
		return r;
	d->sd.control_activated = true;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

void scmd_sd_adopt_endpoints(struct scmd *d)
{
	for (size_t i = 0; i < d->sd.n_fds; i++) {
		const char *fdname = d->sd.names ? d->sd.names[i] : "";
		if (d->sd.fds[i] < 0 || strncmp(fdname, ENDPOINT_FD_PREFIX, strlen(ENDPOINT_FD_PREFIX)) != 0)
			continue;
		const char *name = fdname + strlen(ENDPOINT_FD_PREFIX);
		_cleanup_close_ int fd = TAKE_FD(d->sd.fds[i]);
		_cleanup_free_ char *path = NULL, *what = NULL;
		scm_error *e = NULL;
		struct stat st;
		int r;

		if (asprintf(&path, "%s/endpoints/%s.sock", d->runtime_dir, name) < 0 ||
		    asprintf(&what, "endpoint '%s'", name) < 0)
			return;
		r = check_socket(fd, what, path, &e);
		/* The socket file's owner is the endpoint's (SocketUser=). */
		if (r == 0 && lstat(path, &st) < 0)
			r = scm_fail(&e, -errno, "activated %s: %s: %m", what, path);
		if (r == 0 && !S_ISSOCK(st.st_mode))
			r = scm_fail(&e, SCM_E_INVALID, "activated %s: %s is not a socket", what, path);
		if (r == 0)
			r = endpoint_adopt(d, name, TAKE_FD(fd), path, st.st_uid, &e);
		if (r != 0) {
			/* as a bad manifest: one bad socket keeps no other down */
			log_error_chain(LOG_WARNING, e, "not serving activated socket '%s':", fdname);
			scm_error_free(e);
			continue;
		}
		log_info("endpoint '%s' from socket activation, %s, owner uid %u", name, path, (unsigned)st.st_uid);
	}
}

void scmd_sd_listen_done(struct scmd *d)
{
	for (size_t i = 0; i < d->sd.n_fds; i++)
		if (d->sd.fds[i] >= 0) {
			log_warning("socket activation: fd %d named '%s' is not one scmd knows (control, endpoint-NAME); closed",
				    d->sd.fds[i], d->sd.names ? d->sd.names[i] : "");
			safe_close(d->sd.fds[i]);
			d->sd.fds[i] = -1;
		}
}

static void status_text(struct scmd *d, char *buf, size_t n)
{
	size_t ns, ne, nc, nk;
	scmd_counts(d, &ns, &ne, &nc, &nk);
	snprintf(buf, n, "%zu services, %zu endpoints, %zu containers, %zu channels", ns, ne, nk, nc);
}

/* STATUS= when it changed since the last one sent (or always). */
static void send_status(struct scmd *d, const char *prefix, bool always)
{
	char s[sizeof(d->sd.status)];
	status_text(d, s, sizeof(s));
	if (!always && strcmp(s, d->sd.status) == 0)
		return;
	memcpy(d->sd.status, s, sizeof(s));
	sd_notifyf(0, "%sSTATUS=%s", prefix, s);
}

static uint64_t tick_ms(const struct scmd *d)
{
	if (d->sd.watchdog_usec) {
		uint64_t ms = d->sd.watchdog_usec / 2000; /* half the interval, as sd_watchdog_enabled(3) advises */
		return ms ? ms : 1;
	}
	return STATUS_REFRESH_MS;
}

static void on_tick(struct scmd *d, struct watch *w, uint32_t events)
{
	uint64_t n;
	(void)!read(w->fd, &n, sizeof(n));
	if (d->sd.watchdog_usec)
		sd_notify(0, "WATCHDOG=1");
	send_status(d, "", false);
	/* re-armed, not periodic: pings are never closer than half the
	 * interval, even after the loop was held up */
	timer_arm(w, tick_ms(d));
}

int scmd_sd_ready(struct scmd *d)
{
	uint64_t usec = 0;

	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		d->sd.watchdog_usec = usec;
	send_status(d, "READY=1\n", true);
	d->sd.tick = (struct watch){ -1, on_tick };
	/* nobody to tell: no timer */
	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	d->sd.tick.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->sd.tick.fd < 0 || watch_add(d, &d->sd.tick, EPOLLIN) < 0 || timer_arm(&d->sd.tick, tick_ms(d)) < 0) {
		int r = -errno;
		log_error("watchdog and status timer: %m");
		return r;
	}
	if (d->sd.watchdog_usec)
		log_info("watchdog: a ping every %llu ms", (unsigned long long)tick_ms(d));
	return 0;
}

void scmd_sd_reloading(struct scmd *d)
{
	sd_notify(0, "RELOADING=1");
}

void scmd_sd_reloaded(struct scmd *d)
{
	send_status(d, "READY=1\n", true);
}

void scmd_sd_stopping(struct scmd *d)
{
	sd_notify(0, "STOPPING=1\nSTATUS=stopping: containers, endpoints, providers");
	if (d->sd.tick.fd >= 0) {
		watch_del(d, &d->sd.tick);
		safe_close(d->sd.tick.fd);
		d->sd.tick.fd = -1;
	}
	free(d->sd.fds);
	d->sd.fds = NULL;
	d->sd.n_fds = 0;
	strv_free(d->sd.names);
	d->sd.names = NULL;
}
