/* restart-store.c: systemd's fd store (sd_notify FDSTORE=1, FDNAME=), so
 * a crash of scmd and its restart by systemd keep endpoints and running
 * containers (docs/restart.md; systemd.service(5) FileDescriptorStoreMax=).
 *
 * When NOTIFY_SOCKET is set, scmd keeps in the store: every fd the store
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
	const char *ns = getenv("NOTIFY_SOCKET");
	if (!ns || !*ns)
		return;
	d->fdstore = calloc(1, sizeof(*d->fdstore));
	if (!d->fdstore)
		return;
	/* what a predecessor stored under its fd numbers goes; ours come in */
	for (char **n = taken_names; n && *n; n++)
		store_remove(*n);
	strv_free(taken_names);
	taken_names = NULL;
	d->store_dirty = true;
	fdstore_sync(d);
	(void)sd_pid_notify(0, 0, "READY=1");
}

void fdstore_sync(struct scmd *d)
{
	struct fdstore *s = d->fdstore;
	int *fds = NULL, memfd = -1;
	size_t n = 0, len = 0;
	char name[32];

	if (!s)
		return;
	d->store_dirty = false;
	json_object *st = restart_save(d, true, -1, 0, &fds, &n);
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
	const char *text = json_object_to_json_string_length(st, JSON_C_TO_STRING_PLAIN, &len);
	if (state_memfd_write(text, len, SCMD_STATE_VERSION, &memfd, NULL) == 0) {
		store_remove("state");
		if (store_add("state", memfd) <= 0)
			log_warning("cannot put the state into systemd's fd store (FileDescriptorStoreMax= unset?)");
		close(memfd);
	}
	json_object_put(st);
	free(fds);
}

int fdstore_take(json_object **ret_st, struct fdmap *ret_map, scm_error **ret_err)
{
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	if (n <= 0) {
		strv_free(names);
		return 0;
	}
	int state = -1;
	for (int i = 0; i < n; i++)
		if (names && names[i] && strcmp(names[i], "state") == 0)
			state = SD_LISTEN_FDS_START + i;
	taken_names = names; /* removed from the store once we are up */
	if (state < 0) {
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		return 0;
	}
	uint32_t version = 0;
	int r = state_memfd_read(state, ret_st, &version, ret_err);
	if (r != 0) {
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		return scm_fail(ret_err, r, "the state in systemd's fd store");
	}
	ret_map->old_fd = calloc((size_t)n, sizeof(int));
	ret_map->new_fd = calloc((size_t)n, sizeof(int));
	ret_map->used = calloc((size_t)n, sizeof(bool));
	if (!ret_map->old_fd || !ret_map->new_fd || !ret_map->used)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i, old;
		char end;
		if (fd == state || !names[i] || sscanf(names[i], "fd%d%c", &old, &end) != 1 || old < 0) {
			if (fd != state)
				close(fd);
			continue;
		}
		ret_map->old_fd[ret_map->n] = old;
		ret_map->new_fd[ret_map->n++] = fd;
	}
	close(state);
	log_notice("restoring from systemd's fd store: state version %u, %zu fds", version, ret_map->n);
	return 1;
}
