/* scm-zpool: scmd's compressor, a helper process holding the adaptive
 * pool of threads (util/zpool.h). scmd itself stays single-threaded: it
 * clones containers, and a child cloned from a threaded process could
 * find a lock (malloc's) held forever by a thread that is not there.
 *
 *   scm-zpool [--threads N] [--min LEVEL] [--max LEVEL]   (fd 3: scmd)
 *
 * fd 3 is a SOCK_SEQPACKET socket. Each request is a struct zreq with two
 * fds: the file to compress (read to its end, at most ZREQ_MAX bytes) and
 * where to write the zstd frame. Each reply is a struct zrep (the
 * request's id, 0 or -errno, the level used, the sizes), sent once the
 * frame is written. EOF on fd 3: finish the queue, exit. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scm-zpool.h"
#include "zpool.h"

static int sock = 3;

struct job {
	uint64_t id;
	int out_fd;
};

static void reply(uint64_t id, int r, int level, uint64_t in_len, uint64_t out_len)
{
	struct zrep rep = { id, r, level, in_len, out_len };
	(void)!send(sock, &rep, sizeof(rep), MSG_NOSIGNAL);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void on_done(void *ud, int r, const void *out, size_t out_len, size_t in_len, int level)
{
	struct job *j = ud;
	if (r == 0)
		r = write_all(j->out_fd, out, out_len);
	close(j->out_fd);
	reply(j->id, r, level, in_len, r ? 0 : out_len);
	free(j);
}

static int read_all(int fd, void **ret, size_t *ret_len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > ZREQ_MAX)
		return -EFBIG;
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -errno;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) { /* it grew: take what was there when asked */
			break;
		}
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

int main(int argc, char **argv)
{
	int threads = 1, min = -1, max = 9, c;
	static const struct option opts[] = { { "threads", required_argument, NULL, 't' },
					      { "min", required_argument, NULL, 'm' },
					      { "max", required_argument, NULL, 'M' },
					      {} };
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 't')
			threads = atoi(optarg);
		else if (c == 'm')
			min = atoi(optarg);
		else if (c == 'M')
			max = atoi(optarg);
		else
			return 2;
	}
	struct zpool *zp = NULL;
	int r = zpool_new((unsigned)threads, min, max, &zp);
	if (r < 0) {
		fprintf(stderr, "scm-zpool: %d threads, levels %d..%d: %s\n", threads, min, max, strerror(-r));
		return 2;
	}
	for (;;) {
		struct zreq req;
		char cbuf[CMSG_SPACE(2 * sizeof(int))];
		struct iovec iov = { &req, sizeof(req) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		int fds[2] = { -1, -1 };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(2 * sizeof(int)))
			memcpy(fds, CMSG_DATA(cm), sizeof(fds));
		else if (cm && cm->cmsg_type == SCM_RIGHTS) { /* not two: close what came */
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *f = (int *)CMSG_DATA(cm);
			for (size_t i = 0; i < k; i++)
				close(f[i]);
		}
		if ((size_t)n != sizeof(req) || req.magic != ZREQ_MAGIC || fds[0] < 0) {
			if (fds[0] >= 0) {
				close(fds[0]);
				close(fds[1]);
			}
			reply((size_t)n == sizeof(req) ? req.id : 0, -EBADMSG, 0, 0, 0);
			continue;
		}
		void *data = NULL;
		size_t len = 0;
		r = read_all(fds[0], &data, &len);
		close(fds[0]);
		struct job *j = r ? NULL : malloc(sizeof(*j));
		if (!r && !j)
			r = -ENOMEM;
		if (!r) {
			*j = (struct job){ req.id, fds[1] };
			r = zpool_submit(zp, data, len, on_done, j);
			if (r)
				free(j);
		}
		if (r) {
			free(data);
			close(fds[1]);
			reply(req.id, r, 0, len, 0);
		}
	}
	zpool_free(zp);
	return 0;
}
