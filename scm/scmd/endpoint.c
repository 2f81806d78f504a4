/* endpoint.c: the doors into scmd.
 *
 * Every caller comes in through a listening socket that scmd made for one
 * identity: a container's endpoint (bound into it at /run/scm/scm.sock) or
 * a labelled endpoint for host processes. The label of the socket a
 * connection arrived on, plus SO_PEERCRED, is the caller's identity; no
 * field of any request can change it. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "scm-internal/wire.h"
#include "policy.h"
#include "scmd.h"

/* A refused peer is told why: its ERROR frame is queued at accept and the
 * socket kept until the peer sends its request or hangs up (closing at
 * once would fail that send with EPIPE before the peer reads anything). At
 * most REFUSED_MAX wait; a new one closes the oldest. */
#define REFUSED_MAX 32
struct refused {
	struct watch w;
	struct list node;
};
static struct list refused = LIST_INIT(refused);
static unsigned n_refused;

static void refused_close(struct scmd *d, struct refused *r)
{
	watch_del(d, &r->w);
	close(r->w.fd);
	list_del(&r->node);
	free(r);
	n_refused--;
}

static void refused_event(struct scmd *d, struct watch *w, uint32_t events)
{
	/* Read what the peer sent first: closing on unread data resets the
	 * peer, which would then see ECONNRESET instead of our frame (fds it
	 * passed are dropped with the truncated control data). */
	char buf[256];
	for (int i = 0; i < 8 && recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
		;
	refused_close(d, (struct refused *)((char *)w - offsetof(struct refused, w)));
}

static void refused_linger(struct scmd *d, int fd)
{
	struct refused *r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return;
	}
	if (n_refused >= REFUSED_MAX)
		refused_close(d, list_entry(refused.next, struct refused, node));
	r->w = (struct watch){ fd, refused_event };
	if (watch_add(d, &r->w, EPOLLIN | EPOLLRDHUP) < 0) {
		close(fd);
		free(r);
		return;
	}
	list_add(refused.prev, &r->node);
	n_refused++;
}

/* A container's endpoint admits only the container's ids: its socket's
 * mode keeps other users out, and this keeps out host root and anyone who
 * got hold of the path some other way (a socket handed outside). */
static bool peer_allowed(struct scmd *d, struct endpoint *ep, int fd)
{
	struct ucred cr = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
	    (uint32_t)(cr.uid - ep->peer_uid_min) < ep->peer_uid_count)
		return true;
	audit_event(d->audit, "endpoint-refused", "\"endpoint\":%s,\"uid\":%u,\"pid\":%d,\"allowed\":\"%u-%u\"",
		    audit_quote(ep->name), (unsigned)cr.uid, (int)cr.pid, (unsigned)ep->peer_uid_min,
		    (unsigned)(ep->peer_uid_min + ep->peer_uid_count - 1));
	scm_error *e = scm_error_new(SCM_E_DENIED, "scmd",
				     "endpoint '%s' belongs to a container: uid %u is not one of its ids",
				     ep->name, (unsigned)cr.uid);
	json_object *j = scm_error_to_json(e);
	size_t jl;
	const char *s = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &jl);
	scm_wire_send(fd, MSG_DONTWAIT, SCM_FRAME_ERROR, 0, 1, 0, s, jl, NULL, 0, NULL, 0);
	json_object_put(j);
	scm_error_free(e);
	return false;
}

static void endpoint_accept(struct scmd *d, struct watch *w, uint32_t events)
{
	struct endpoint *ep = (struct endpoint *)((char *)w - offsetof(struct endpoint, listen));

	for (int i = 0; i < 16; i++) {
		int fd = accept4(w->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				accept_pause(d);
			return; /* EAGAIN, or a transient error: epoll tells us again */
		}
		if (ep->peer_uid_count && !peer_allowed(d, ep, fd)) {
			refused_linger(d, fd);
			continue;
		}
		if (ep->provider_of) {
			/* A provider container's only connection is its control
			 * socket; the registry takes it (or refuses a second). */
			service_provider_connected(d, ep->provider_of, ep->name, fd);
			continue;
		}
		if (!quota_room(&ep->used, &ep->limit, QUOTA_CONNS)) {
			/* Tell the caller why before closing, so it is not a mystery. */
			scm_error *e = scm_error_new(SCM_E_QUOTA, "scmd",
						     "endpoint '%s' has %u open connections, its limit",
						     ep->name, ep->limit.conns);
			json_object *j = scm_error_to_json(e);
			size_t len;
			const char *s = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &len);
			scm_wire_send(fd, MSG_DONTWAIT, SCM_FRAME_ERROR, 0, 1, 0, s, len, NULL, 0, NULL, 0);
			json_object_put(j);
			scm_error_free(e);
			refused_linger(d, fd);
			continue;
		}
		if (!conn_new(d, fd, CONN_ENDPOINT, ep))
			close(fd);
	}
}

struct endpoint *endpoint_find(struct scmd *d, const char *name)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &d->endpoints)
	{
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		if (strcmp(ep->name, name) == 0)
			return ep;
	}
	return NULL;
}

/* A new endpoint's name: valid, not "host", not taken. */
static int check_name(struct scmd *d, const char *name, scm_error **ret_err)
{
	if (!name_valid(name, 64, NAME_FILE) || strcmp(name, "host") == 0)
		return scm_fail(ret_err, SCM_E_INVALID,
				"endpoint name '%s' is not valid: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-', and not 'host' (reserved)",
				name);
	if (endpoint_find(d, name))
		return scm_fail(ret_err, SCM_E_EXISTS, "endpoint '%s' exists already", name);
	return 0;
}

/* Lists a listening socket as endpoint name; takes fd, path and dir
 * (closed, and unless activated unlinked and removed, on failure). */
static int add(struct scmd *d, const char *name, int fd, char *path, char *dir, uid_t owner, char **profiles,
	       const struct quota *limit, bool activated, struct endpoint **ret, scm_error **ret_err)
{
	struct endpoint *ep = calloc(1, sizeof(*ep));
	int r;

	if (!ep || !(ep->name = strdup(name))) {
		free(ep);
		r = scm_fail(ret_err, -ENOMEM, "endpoint '%s': out of memory", name);
		goto fail;
	}
	ep->path = path;
	ep->dir = dir;
	ep->owner = owner;
	ep->profiles = profiles;
	ep->limit = *limit;
	ep->activated = activated;
	ep->listen = (struct watch){ fd, endpoint_accept };
	list_init(&ep->conns);
	list_init(&ep->channels);
	if (watch_add(d, &ep->listen, EPOLLIN) < 0) {
		r = scm_fail(ret_err, -errno, "epoll: %m");
		free(ep->name);
		free(ep);
		goto fail;
	}
	list_add(d->endpoints.prev, &ep->node);
	d->store_dirty = true;
	if (ret)
		*ret = ep;
	return 0;
fail:
	safe_close(fd);
	if (!activated)
		unlink(path);
	if (dir)
		rmdir(dir);
	free(path);
	free(dir);
	return r;
}

static int create(struct scmd *d, const char *name, bool in_dir, uid_t owner, mode_t mode, char **profiles,
		  const struct quota *limit, struct endpoint **ret, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *path = NULL, *dir = NULL;

	int rn = check_name(d, name, ret_err);
	if (rn != 0)
		return rn;
	if (in_dir) {
		/* The container's ids must reach scm.sock through it. */
		if (asprintf(&dir, "%s/endpoints/%s", d->runtime_dir, name) < 0 ||
		    asprintf(&path, "%s/scm.sock", dir) < 0)
			return -ENOMEM;
		unlink(path);
		(void)rmdir(dir); /* a stale one from a previous scmd */
		if (mkdir(dir, 0755) < 0 || chmod(dir, 0755) < 0)
			return scm_fail(ret_err, -errno, "endpoint directory %s: %m", dir);
	} else if (asprintf(&path, "%s/endpoints/%s.sock", d->runtime_dir, name) < 0)
		return -ENOMEM;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		if (dir)
			rmdir(dir);
		return scm_fail(ret_err, SCM_E_INVALID, "endpoint path %s is too long for a socket", path);
	}
	strcpy(sa.sun_path, path);

	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int k = -errno;
		if (dir)
			rmdir(dir);
		return scm_fail(ret_err, k, "socket: %s", strerror(-k));
	}
	unlink(path); /* a stale socket from a previous scmd */
	/* Create it with no access, then open it up: no window in which a
	 * process of the wrong user can connect. */
	mode_t old = umask(0777);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0) {
		r = -errno;
		if (dir)
			rmdir(dir);
		return scm_fail(ret_err, r, "bind %s: %s", path, strerror(-r));
	}
	/* A rootless scmd owns its sockets already, and may not give them away. */
	if ((owner != geteuid() && chown(path, owner, (gid_t)-1) < 0) || chmod(path, mode) < 0 ||
	    listen(fd, 128) < 0) {
		r = -errno;
		unlink(path);
		if (dir)
			rmdir(dir);
		return scm_fail(ret_err, r, "preparing endpoint %s: %s", path, strerror(-r));
	}

	r = add(d, name, TAKE_FD(fd), TAKE_PTR(path), TAKE_PTR(dir), owner, profiles, limit, false, ret, ret_err);
	return r;
}

struct endpoint *endpoint_restore(struct scmd *d, const char *name, const char *path, const char *dir,
				uid_t owner, char **profiles, const struct quota *limit, int fd)
{
	struct endpoint *ep = calloc(1, sizeof(*ep));
	if (!ep)
		return NULL;
	ep->name = strdup(name);
	ep->path = strdup(path);
	ep->dir = dir ? strdup(dir) : NULL;
	ep->owner = owner;
	ep->profiles = profiles;
	ep->limit = *limit;
	ep->listen = (struct watch){ fd, endpoint_accept };
	list_init(&ep->conns);
	list_init(&ep->channels);
	if (!ep->name || !ep->path || (dir && !ep->dir) || watch_add(d, &ep->listen, EPOLLIN) < 0) {
		free(ep->name);
		free(ep->path);
		free(ep->dir);
		free(ep);
		return NULL;
	}
	list_add(d->endpoints.prev, &ep->node);
	d->store_dirty = true;
	return ep;
}

int endpoint_create(struct scmd *d, const char *name, uid_t owner, mode_t mode, char **profiles,
		    const struct quota *limit, struct endpoint **ret, scm_error **ret_err)
{
	return create(d, name, false, owner, mode, profiles, limit, ret, ret_err);
}

int endpoint_create_dir(struct scmd *d, const char *name, uid_t owner, char **profiles,
			const struct quota *limit, struct endpoint **ret, scm_error **ret_err)
{
	return create(d, name, true, owner, 0600, profiles, limit, ret, ret_err);
}

int endpoint_adopt(struct scmd *d, const char *name, int fd, const char *path, uid_t owner,
		   scm_error **ret_err)
{
	char *p = NULL;

	int r = check_name(d, name, ret_err);
	if (r == 0 && !(p = strdup(path)))
		r = -ENOMEM;
	if (r != 0) {
		safe_close(fd);
		return r;
	}
	/* No profiles: as `scmctl endpoint create NAME`, the manifests' allow
	 * lists decide by its label. */
	return add(d, name, fd, p, NULL, owner, NULL, &d->default_limit, true, NULL, ret_err);
}

void endpoint_remove(struct scmd *d, struct endpoint *ep)
{
	struct list *p, *t;

	list_for_each_safe(p, t, &ep->channels)
		channel_revoke(d, list_entry(p, struct channel, ep_node), SCM_E_REVOKED,
			       "endpoint '%s' was removed", ep->name);
	list_for_each_safe(p, t, &ep->conns) conn_close(d, list_entry(p, struct conn, node));
	watch_del(d, &ep->listen);
	safe_close(ep->listen.fd);
	/* systemd's socket stays where its unit put it */
	if (!ep->activated)
		unlink(ep->path);
	if (ep->dir)
		rmdir(ep->dir);
	list_del(&ep->node);
	d->store_dirty = true;
	policy_effective_unref(ep->eff);
	for (char **s = ep->profiles; s && *s; s++)
		free(*s);
	free(ep->profiles);
	free(ep->name);
	free(ep->path);
	free(ep->dir);
	free(ep);
}
