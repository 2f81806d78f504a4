/* container-output.c: where a container's output goes. Its stdout and
 * stderr are one pipe that scmd drains (never blocking, a bounded amount per
 * wakeup) into the container's log, a capped and rotated file on disk in
 * the state directory, and, for an attached `scmctl container run`, into a
 * second pipe scmctl copies to the terminal (scmd never blocks on it). An
 * attached run from a terminal gets a pty of its own instead (made in the
 * container, containers/console.c), whose master scmctl gets. `scmctl container logs` reads the log files through
 * scmd_ctr_log_fds. Split from container-hook.c (moves only): the log's
 * size and rotation rules are one concept, kept apart from the life cycle. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "container-hook.h"

#define DRAIN_READS 16     /* reads of the output pipe per wakeup (256 KiB) */

/* ---- the log -------------------------------------------------------------
 * STATE/logs/NAME.log, and the K latest rotated generations beside it:
 * NAME.log.G (G counts up from 1 and is never reused), which the
 * compressor (logzip.c) turns into NAME.log.G.zst soon after. Each file
 * holds at most max_bytes / (K + 1) before compression, so together they
 * never pass the cap whatever the container writes; a rotation cuts at a
 * line end when one is in reach. Rotating is one rename, two unlinks and
 * an open, done at most once per file's worth of output; names never
 * shift, so the compressor's work stays valid whatever rotates meanwhile. */

static void gen_file(const struct scmd_ctr *t, uint64_t gen, bool zst, char *buf, size_t len)
{
	if (gen == 0)
		snprintf(buf, len, "%s", t->log_path);
	else
		snprintf(buf, len, "%s.%llu%s", t->log_path, (unsigned long long)gen, zst ? ".zst" : "");
}

void ctr_logs_unlink(const char *dir, const char *name)
{
	char base[NAME_MAX + 1];
	int bl = snprintf(base, sizeof(base), "%s.log", name);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dd = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!dd)
		return;
	dfd = -1; /* the DIR has it */
	struct dirent *e;
	while ((e = readdir(dd))) {
		/* NAME.log, NAME.log.G, NAME.log.G.zst: not the container
		 * "NAME.log"'s NAME.log.log */
		const char *r = e->d_name + bl;
		if (strncmp(e->d_name, base, (size_t)bl) != 0)
			continue;
		if (*r == '.') {
			size_t digits = strspn(r + 1, "0123456789");
			if (!digits || (r[1 + digits] && strcmp(r + 1 + digits, ".zst") != 0))
				continue;
		} else if (*r)
			continue;
		(void)unlinkat(dirfd(dd), e->d_name, 0);
	}
	closedir(dd);
}

void ctr_log_unlink_all(const struct scmd_ctr *t)
{
	if (!t->log_path)
		return;
	_cleanup_free_ char *dir = strdup(t->log_path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash) {
		*slash = 0;
		ctr_logs_unlink(dir, t->name);
	}
}

static int log_create(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
}

/* sb: the profiles' sandbox (its "log" size), or NULL for the default. */
int ctr_log_open(struct scmd *d, struct scmd_ctr *t, const container_sandbox *sb)
{
	int64_t max = sb && sb->log_max_bytes > 0 ? sb->log_max_bytes : CONTAINER_DEFAULT_LOG_BYTES;
	int64_t files = sb && sb->log_files > 0 ? sb->log_files : CONTAINER_DEFAULT_LOG_FILES;
	if (files > CONTAINERS_LOG_FDS_MAX - 1)
		files = CONTAINERS_LOG_FDS_MAX - 1;
	t->log_files = (int)files;
	t->log_file_max = max / (files + 1);
	t->log_size = 0;
	t->log_gen = 1;
	t->log_fd = -1;
	if (asprintf(&t->log_path, "%s/logs/%s.log", d->state_dir, t->name) < 0) {
		t->log_path = NULL;
		return -ENOMEM;
	}
	ctr_log_unlink_all(t); /* what a container of that name left before scmd restarted */
	t->log_fd = log_create(t->log_path);
	return t->log_fd < 0 ? -errno : 0;
}

static void log_rotate(struct scmd *d, struct scmd_ctr *t)
{
	char raw[PATH_MAX], zst[PATH_MAX];
	t->log_fd = safe_close(t->log_fd);
	uint64_t gen = t->log_gen++;
	gen_file(t, gen, false, raw, sizeof(raw));
	(void)rename(t->log_path, raw);
	if (gen > (uint64_t)t->log_files) { /* the oldest kept goes */
		for (int z = 0; z < 2; z++) {
			char old[PATH_MAX];
			gen_file(t, gen - (uint64_t)t->log_files, z, old, sizeof(old));
			(void)unlink(old);
		}
	}
	t->log_fd = log_create(t->log_path);
	t->log_size = 0;
	gen_file(t, gen, true, zst, sizeof(zst));
	(void)logzip_submit(d, raw, zst); /* else it stays as it is */
}

static void log_write(struct scmd *d, struct scmd_ctr *t, const char *buf, size_t n)
{
	size_t cap = (size_t)t->log_file_max, keep = cap * (size_t)(t->log_files + 1);
	if (n > keep) { /* no file would keep the head: skip its writes */
		buf += n - keep;
		n = keep;
	}
	while (n > 0 && t->log_fd >= 0) {
		size_t room = (size_t)t->log_size < cap ? cap - (size_t)t->log_size : 0, w = n;
		bool full = n > room;
		if (full) {
			const char *nl = room ? memrchr(buf, '\n', room) : NULL;
			w = nl ? (size_t)(nl - buf) + 1 : room;
		}
		if (w > 0) {
			ssize_t k = write(t->log_fd, buf, w);
			if (k < 0 || (size_t)k != w)
				return; /* disk full: this output is lost, the next may fit */
			t->log_size += k;
			buf += k;
			n -= (size_t)k;
		}
		if (full)
			log_rotate(d, t);
	}
}

/* Bounded work per wakeup: a container that writes without pause gets
 * DRAIN_READS reads, then the other watches of this epoll batch have
 * their turn; the pipe (blocking on the container's side) holds it back
 * meanwhile. */
void ctr_drain_output(struct scmd *d, struct scmd_ctr *t)
{
	char buf[16384];
	for (int i = 0; i < DRAIN_READS; i++) {
		ssize_t n = read(t->outw.fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				watch_del(d, &t->outw);
				t->outw.fd = safe_close(t->outw.fd);
				t->attach_fd = safe_close(t->attach_fd); /* EOF for the attached client */
			}
			return;
		}
		log_write(d, t, buf, (size_t)n);
		/* The attached terminal gets what fits; the log keeps the latest. */
		if (t->attach_fd >= 0 && write(t->attach_fd, buf, (size_t)n) < 0 && errno != EAGAIN)
			t->attach_fd = safe_close(t->attach_fd);
	}
}

void ctr_on_output(struct scmd *d, struct watch *w, uint32_t events)
{
	ctr_drain_output(d, (struct scmd_ctr *)((char *)w - offsetof(struct scmd_ctr, outw)));
}

int scmd_ctr_log_fds(struct scmd *d, const char *name, int *ret_fds, size_t *ret_n,
		       scm_error **ret_err)
{
	struct scmd_ctr *t = ctr_find(d, name);
	int fds[CONTAINERS_LOG_FDS_MAX];
	size_t n = 0;
	if (!t || !t->log_path)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no container '%s'", name);
	/* Oldest first: each kept generation (compressed or not yet), then
	 * the current file. scmd is the only writer and renames only inside
	 * this loop's thread, so the set is consistent; rotations after the
	 * reply rename files, not the inodes the client holds. */
	uint64_t first = t->log_gen > (uint64_t)t->log_files ? t->log_gen - (uint64_t)t->log_files : 1;
	for (uint64_t g = first; g <= t->log_gen && n < ELEMENTSOF(fds); g++) {
		char p[PATH_MAX];
		bool cur = g == t->log_gen;
		int fd = -1;
		for (int z = cur ? 0 : 1; z >= 0 && fd < 0; z--) {
			gen_file(t, cur ? 0 : g, z, p, sizeof(p));
			fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
			if (fd < 0 && errno != ENOENT)
				break;
		}
		if (fd >= 0) {
			fds[n++] = fd;
			continue;
		}
		if (errno == ENOENT)
			continue;
		int r = -errno;
		while (n > 0)
			safe_close(fds[--n]);
		return scm_fail(ret_err, r, "opening the log of '%s' (%s): %s", name, p, strerror(-r));
	}
	if (n == 0)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "the log of '%s' is gone (%s)", name, t->log_path);
	memcpy(ret_fds, fds, n * sizeof(int));
	*ret_n = n;
	return 0;
}
