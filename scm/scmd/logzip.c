/* logzip.c: rotated container logs are compressed by libexec/scm-zpool,
 * a helper process with the adaptive pool of threads (util/zpool.h), so
 * scmd stays single-threaded and its loop never waits: a rotation hands
 * the helper the finished file and an unnamed file to write the frame
 * to, and the reply, an event like any other, gives the frame its name
 * (NAME.log.G.zst) and removes the raw file, in one step of the loop, so
 * a reader always finds one or the other. Without the helper (it could
 * not start, it died, its queue is full) the raw file simply stays. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "scm-zpool.h"
#include "scmd.h"
#include "zpool.h"

#define LOGZIP_PENDING_MAX 64 /* rotations waiting for the helper */

struct zpending {
	uint64_t id;
	int out_fd; /* O_TMPFILE in the logs directory: named on success */
	char *raw, *zst;
};

struct logzip {
	struct watch w;
	pid_t pid;
	bool failed; /* could not start: do not try again on every rotation */
	uint64_t next_id;
	struct zpending pend[LOGZIP_PENDING_MAX];
	size_t n_pend;
	struct zpool_stats st;
};

static void pend_drop(struct zpending *p)
{
	safe_close(p->out_fd);
	free(p->raw);
	free(p->zst);
}

static void helper_gone(struct scmd *d, struct logzip *z)
{
	if (z->w.fd >= 0) {
		watch_del(d, &z->w);
		z->w.fd = safe_close(z->w.fd);
	}
	for (size_t i = 0; i < z->n_pend; i++)
		pend_drop(&z->pend[i]); /* their raw files stay */
	z->n_pend = 0;
	/* its exit is reaped by logzip_reap (SIGCHLD) */
}

void logzip_reap(struct scmd *d)
{
	struct logzip *z = d->logzip;
	if (z && z->pid > 0 && waitpid(z->pid, NULL, WNOHANG) == z->pid) {
		z->pid = 0;
		if (z->w.fd >= 0) {
			log_warning("the log compressor (scm-zpool) ended; it is started again when needed");
			helper_gone(d, z);
		}
	}
}

/* The frame is complete: it takes the raw file's place, if that is still
 * there (a container removed meanwhile, or its oldest generation dropped,
 * took it away: then the frame goes too). */
static void finish(struct logzip *z, struct zpending *p, const struct zrep *rep)
{
	if (rep->r == 0 && access(p->raw, F_OK) == 0) {
		char fdpath[64];
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", p->out_fd);
		if (linkat(AT_FDCWD, fdpath, AT_FDCWD, p->zst, AT_SYMLINK_FOLLOW) == 0) {
			(void)unlink(p->raw);
			z->st.jobs++;
			z->st.bytes_in += rep->in_len;
			z->st.bytes_out += rep->out_len;
			if (rep->level >= ZPOOL_LEVEL_MIN && rep->level <= ZPOOL_LEVEL_MAX)
				z->st.by_level[rep->level - ZPOOL_LEVEL_MIN]++;
		} else {
			log_warning("log %s: naming its compressed copy %s: %m; it stays as it is", p->raw, p->zst);
			z->st.failed++;
		}
	} else if (rep->r != 0) {
		log_warning("log %s: not compressed: %s; it stays as it is", p->raw, strerror(-rep->r));
		z->st.failed++;
	}
}

static void on_reply(struct scmd *d, struct watch *w, uint32_t events)
{
	struct logzip *z = (struct logzip *)w;
	for (int k = 0; k < 16; k++) {
		struct zrep rep;
		ssize_t n = recv(z->w.fd, &rep, sizeof(rep), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n != (ssize_t)sizeof(rep)) {
			if (n != 0)
				log_warning("the log compressor sent a bad reply; restarting it when next needed");
			helper_gone(d, z);
			return;
		}
		for (size_t i = 0; i < z->n_pend; i++)
			if (z->pend[i].id == rep.id) {
				finish(z, &z->pend[i], &rep);
				pend_drop(&z->pend[i]);
				z->pend[i] = z->pend[--z->n_pend];
				break;
			}
	}
}

static int helper_start(struct scmd *d, struct logzip *z)
{
	int sp[2];
	_cleanup_free_ char *prog = scmd_libexec_path("scm-zpool");
	if (!prog || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(sp[0]);
		close(sp[1]);
		return r;
	}
	if (pid == 0) {
		if (dup2(sp[1], 3) < 0)
			_exit(127);
		close_range(4, ~0u, 0);
		int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull >= 0)
			dup2(devnull, 0);
		execl(prog, "scm-zpool", "--threads", "1", "--min", "-1", "--max", "9", (char *)NULL);
		_exit(127);
	}
	close(sp[1]);
	z->pid = pid;
	z->w = (struct watch){ sp[0], on_reply };
	watch_add(d, &z->w, EPOLLIN);
	return 0;
}

int logzip_submit(struct scmd *d, const char *raw, const char *zst)
{
	struct logzip *z = d->logzip;
	if (!z) {
		if (!(z = calloc(1, sizeof(*z))))
			return -ENOMEM;
		z->w.fd = -1;
		d->logzip = z;
	}
	if (z->failed)
		return -ENOEXEC;
	if (z->w.fd < 0 && helper_start(d, z) < 0) {
		log_warning("the log compressor (scm-zpool) did not start: %m; logs stay uncompressed");
		z->failed = true;
		return -ENOEXEC;
	}
	if (z->n_pend >= LOGZIP_PENDING_MAX)
		return -EAGAIN;
	_cleanup_free_ char *dir = strdup(raw);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	if (!slash)
		return -ENOMEM;
	*slash = 0;
	_cleanup_close_ int in = open(raw, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	_cleanup_close_ int out = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (in < 0 || out < 0)
		return -errno;
	struct zreq req = { ZREQ_MAGIC, 0, ++z->next_id };
	int fds[2] = { in, out };
	char cbuf[CMSG_SPACE(sizeof(fds))] = { 0 };
	struct iovec iov = { &req, sizeof(req) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	if (sendmsg(z->w.fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(req))
		return errno == EAGAIN ? -EAGAIN : -errno;
	struct zpending *p = &z->pend[z->n_pend];
	*p = (struct zpending){ req.id, TAKE_FD(out), strdup(raw), strdup(zst) };
	if (!p->raw || !p->zst) {
		pend_drop(p);
		return -ENOMEM;
	}
	z->n_pend++;
	return 0;
}

json_object *logzip_json(struct scmd *d)
{
	struct logzip *z = d->logzip;
	json_object *o = json_object_new_object(), *lv = json_object_new_object();
	struct zpool_stats st = z ? z->st : (struct zpool_stats){ 0 };
	json_object_object_add(o, "files", json_object_new_int64((int64_t)st.jobs));
	json_object_object_add(o, "bytes_in", json_object_new_int64((int64_t)st.bytes_in));
	json_object_object_add(o, "bytes_out", json_object_new_int64((int64_t)st.bytes_out));
	json_object_object_add(o, "ratio",
			       json_object_new_double(st.bytes_out ? (double)st.bytes_in / (double)st.bytes_out : 0));
	json_object_object_add(o, "failed", json_object_new_int64((int64_t)st.failed));
	json_object_object_add(o, "pending", json_object_new_int64(z ? (int64_t)z->n_pend : 0));
	for (int l = ZPOOL_LEVEL_MIN; l <= ZPOOL_LEVEL_MAX; l++)
		if (st.by_level[l - ZPOOL_LEVEL_MIN]) {
			char k[8];
			snprintf(k, sizeof(k), "%d", l);
			json_object_object_add(lv, k, json_object_new_int64((int64_t)st.by_level[l - ZPOOL_LEVEL_MIN]));
		}
	json_object_object_add(o, "levels", lv);
	return o;
}

bool logzip_busy(struct scmd *d)
{
	return d->logzip && d->logzip->n_pend > 0;
}

void logzip_stop(struct scmd *d)
{
	struct logzip *z = d->logzip;
	if (!z)
		return;
	/* what it has not finished is unnamed files: gone with it, the raw
	 * logs stay */
	helper_gone(d, z);
	if (z->pid > 0) {
		kill(z->pid, SIGKILL);
		(void)waitpid(z->pid, NULL, 0);
	}
	free(z);
	d->logzip = NULL;
}
