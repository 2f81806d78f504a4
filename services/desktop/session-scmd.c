/* session-scmd.c: the session manager's way to scmd, its control socket
 * (the same requests scmctl makes). The manager runs as scmd's user, so
 * SO_PEERCRED lets it in, and what it connects to it reaches as the host
 * identity. One request a connection, like scmctl: nothing to resync
 * when scmd restarts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "scm-internal/wire.h"
#include "scm/macro.h"
#include "session.h"
#include "scm-internal/error.h"

static int control_open(const struct session *s, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", s->runtime_dir) >= sizeof(sa.sun_path))
		return scm_fail(ret_err, -ENAMETOOLONG, "runtime dir %s is too long", s->runtime_dir);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return scm_fail(ret_err, r, "cannot reach scmd at %s: %s", sa.sun_path, strerror(-r));
	}
	return fd;
}

int scmd_request(const struct session *s, const char *op, json_object *args, json_object **ret, int *ret_fds,
		 size_t max_fds, scm_error **ret_err)
{
	for (size_t i = 0; ret_fds && i < max_fds; i++)
		ret_fds[i] = -1;
	_cleanup_close_ int fd = control_open(s, ret_err);
	if (fd < 0)
		return fd;
	return scm_wire_control_request(fd, op, args, NULL, 0, ret, ret_fds, max_fds, ret_err);
}

static json_object *named(const char *key, const char *name)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, key, json_object_new_string(name));
	return a;
}

int scmd_channel(const struct session *s, const char *service, scm_channel **ret, scm_error **ret_err)
{
	json_object *a = named("service", service), *res = NULL, *v;
	int fd = -1;
	int r = scmd_request(s, "connect", a, &res, &fd, 1, ret_err);
	json_object_put(a);
	if (r == 0 && fd < 0)
		r = scm_fail(ret_err, SCM_E_PROTOCOL, "scmd sent no channel for %s", service);
	if (r == 0) {
		uint64_t id = json_object_object_get_ex(res, "channel", &v) ? (uint64_t)json_object_get_int64(v) : 0;
		r = scm_channel_from_fd(fd, id, json_object_object_get_ex(res, "interface", &v) ? json_object_get_string(v) : NULL,
					ret);
		if (r != 0) {
			close(fd);
			r = scm_fail(ret_err, r, "channel to %s: %s", service, strerror(-r));
		}
	}
	json_object_put(res);
	return r;
}

void scmd_container_remove(const struct session *s, const char *name)
{
	json_object *a = named("name", name);
	scm_error *e = NULL;
	json_object_object_add(a, "timeout_ms", json_object_new_int(2000));
	if (scmd_request(s, "container.stop", a, NULL, NULL, 0, &e) == 0)
		(void)scmd_request(s, "container.wait", a, NULL, NULL, 0, &e);
	scm_error_free(e);
	e = NULL;
	(void)scmd_request(s, "container.rm", a, NULL, NULL, 0, &e);
	scm_error_free(e);
	json_object_put(a);
}

/* The first line starting "agent " in fd, from its start. */
static int agent_line(int fd, char *line, size_t n)
{
	char buf[16384];
	ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);
	if (k <= 0)
		return -ENOENT;
	buf[k] = 0;
	for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		char *nl = strchr(p, '\n');
		if (!nl)
			break; /* not complete yet */
		if (strncmp(p, "agent ", 6) == 0) {
			size_t l = (size_t)(nl - p);
			if (l >= n)
				l = n - 1;
			memcpy(line, p, l);
			line[l] = 0;
			return 0;
		}
	}
	return -ENOENT;
}

int scmd_container_agent_line(const struct session *s, const char *name, char *line, size_t n)
{
	if (name[0] == '/') {
		_cleanup_close_ int fd = open(name, O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -ENOENT : agent_line(fd, line, n);
	}
	int fds[8];
	json_object *a = named("name", name);
	scm_error *e = NULL;
	int r = scmd_request(s, "container.logs", a, NULL, fds, 8, &e);
	json_object_put(a);
	scm_error_free(e);
	if (r != 0)
		return -ENOENT;
	r = -ENOENT;
	for (size_t i = 0; i < 8; i++) {
		if (fds[i] >= 0 && r != 0)
			r = agent_line(fds[i], line, n);
		safe_close(fds[i]);
	}
	return r;
}
