/* restart-store.c: systemd's fd store (sd_notify FDSTORE=1, FDNAME=), so
 * a crash of scmd and its restart by systemd keep endpoints and running
 * containers (docs/restart.md; systemd.service(5) FileDescriptorStoreMax=).
 *
 * When NOTIFY_SOCKET and FDSTORE (systemd's FileDescriptorStoreMax=,
 * passed since systemd 254) are set, scmd keeps in the store: every fd the store
 * variant of the state names (the control socket, endpoints' listening
 * sockets, containers' pidfds, status pipes, namespace fds, output pipes
 * and logs), each named "fdN" after its number here, and the state itself
 * (a sealed memfd named "state"). It is fed after each batch of events in
 * which endpoints or containers changed: fds that went away are removed
 * (FDSTOREREMOVE=1), new ones added, the state replaced. At start, the
 * fds systemd passes back (sd_listen_fds_with_names) are mapped from their
 * names to the numbers the state recorded, and the state is restored as
 * after an exec, without connections, channels or providers (they died
 * with the crashed scmd). */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "restart.h"

struct stored {
	int fd;
	dev_t dev;
	ino_t ino;
};
struct fdstore {
	struct stored *v;
	size_t n, cap;
};
static char **taken_names;
static size_t taken_n;

static void store_remove(const char *name)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	(void)sd_pid_notify(0, 0, msg);
}

static int store_add(const char *name, int fd)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	return sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
}

void fdstore_init(struct scmd *d)
{
	/* systemd (254 and later) says how many fds its store takes for us
	 * in $FDSTORE (FileDescriptorStoreMax=); none: no store to feed */
	const char *ns = getenv("NOTIFY_SOCKET"), *max = getenv("FDSTORE");
	if (!ns || !*ns || !max || atoi(max) <= 0)
		return;
	d->fdstore = calloc(1, sizeof(*d->fdstore));
	if (!d->fdstore)
		return;
	/* what a predecessor stored under its fd numbers goes; ours come in */
	for (char **n = taken_names; n && *n; n++)
		store_remove(*n);
	strv_free(taken_names);
	taken_names = NULL;
	taken_n = 0;
	d->store_dirty = true;
	fdstore_sync(d); /* READY=1 is sd.c's */
}

void fdstore_sync(struct scmd *d)
{
	struct fdstore *s = d->fdstore;
	int memfd = -1;
	struct state_out so;
	char name[32];

	if (!s)
		return;
	d->store_dirty = false;
	restart_save(d, true, -1, 0, &so);
	int *fds = so.fds;
	size_t n = so.n_fds;
	/* gone, or the number now holds another file: out of the store */
	for (size_t i = 0; i < s->n;) {
		struct stat sb;
		bool keep = false;
		for (size_t k = 0; k < n && !keep; k++)
			keep = fds[k] == s->v[i].fd && fstat(fds[k], &sb) == 0 && sb.st_dev == s->v[i].dev &&
			       sb.st_ino == s->v[i].ino;
		if (keep) {
			i++;
			continue;
		}
		snprintf(name, sizeof(name), "fd%d", s->v[i].fd);
		store_remove(name);
		s->v[i] = s->v[--s->n];
	}
	for (size_t k = 0; k < n; k++) {
		bool have = false;
		for (size_t i = 0; i < s->n && !have; i++)
			have = s->v[i].fd == fds[k];
		struct stat sb;
		if (have || fstat(fds[k], &sb) < 0)
			continue;
		if (s->n == s->cap) {
			size_t c = s->cap ? s->cap * 2 : 64;
			struct stored *v = realloc(s->v, c * sizeof(*v));
			if (!v)
				break;
			s->v = v;
			s->cap = c;
		}
		snprintf(name, sizeof(name), "fd%d", fds[k]);
		store_remove(name); /* a predecessor's entry of the same number (exec) */
		if (store_add(name, fds[k]) > 0)
			s->v[s->n++] = (struct stored){ fds[k], sb.st_dev, sb.st_ino };
	}
	if (state_out_memfd(&so, &memfd, NULL) == 0) {
		store_remove("state");
		if (store_add("state", memfd) <= 0)
			log_warning("cannot put the state into systemd's fd store (FileDescriptorStoreMax= unset?)");
		close(memfd);
	}
	state_out_done(&so);
}

int fdstore_take(struct scmd *d, json_object **ret_st, struct fdmap *ret_map, scm_error **ret_err)
{
	int state = -1;
	size_t n = d->sd.n_fds;
	for (size_t i = 0; i < n; i++)
		if (d->sd.fds[i] >= 0 && d->sd.names && strcmp(d->sd.names[i], "state") == 0)
			state = TAKE_FD(d->sd.fds[i]);
	if (state < 0)
		return 0;
	uint32_t version = 0;
	int r = state_memfd_read(state, ret_st, &version, &ret_map->chans, ret_err);
	close(state);
	if (r != 0)
		return scm_fail(ret_err, r, "the state in systemd's fd store");
	ret_map->old_fd = calloc(n + 1, sizeof(int));
	ret_map->new_fd = calloc(n + 1, sizeof(int));
	ret_map->used = calloc(n + 1, sizeof(bool));
	if (!ret_map->old_fd || !ret_map->new_fd || !ret_map->used)
		return -ENOMEM; /* main() exits */
	strv_add(&taken_names, &taken_n, "state");
	/* "fdN": ours; other names are socket activation's (sd.c) */
	for (size_t i = 0; i < n; i++) {
		int old;
		char end;
		if (d->sd.fds[i] < 0 || !d->sd.names[i] || sscanf(d->sd.names[i], "fd%d%c", &old, &end) != 1 || old < 0)
			continue;
		strv_add(&taken_names, &taken_n, d->sd.names[i]);
		ret_map->old_fd[ret_map->n] = old;
		ret_map->new_fd[ret_map->n++] = TAKE_FD(d->sd.fds[i]);
	}
	log_notice("restoring from systemd's fd store: state version %u, %zu fds", version, ret_map->n);
	return 1;
}

void fdstore_drop_activated(struct scmd *d)
{
	/* the same sockets, passed again by their socket units: the state's
	 * copies serve, these only say they are systemd's */
	for (size_t i = 0; i < d->sd.n_fds; i++) {
		const char *nm = d->sd.names ? d->sd.names[i] : "";
		if (d->sd.fds[i] < 0)
			continue;
		if (strcmp(nm, "control") == 0)
			d->sd.control_activated = true;
		else if (strncmp(nm, "endpoint-", 9) == 0 && endpoint_find(d, nm + 9))
			endpoint_find(d, nm + 9)->activated = true;
		else
			continue;
		d->sd.fds[i] = safe_close(d->sd.fds[i]);
	}
}
