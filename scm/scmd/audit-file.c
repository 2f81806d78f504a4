/* audit-file.c: the audit file sink, bounded and rotated.
 *
 * RUNTIME is a tmpfs as root: an audit file that grows without end would
 * fill memory. Before a line would take the file over max_bytes, the file
 * becomes path.1 (path.1 becomes path.2, ..., path.KEEP is dropped) and a
 * fresh one starts, so the audit trail holds at most (KEEP + 1) * max_bytes
 * (a single line longer than max_bytes still gets a file of its own). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"

struct audit_file {
	char *path;
	int fd;
	size_t size, max;
	unsigned keep;
};

static int reopen(struct audit_file *f, int flags)
{
	struct stat st;
	int fd = open(f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | flags, 0600);
	if (fd < 0)
		return -errno;
	if (f->fd >= 0)
		close(f->fd);
	f->fd = fd;
	f->size = fstat(fd, &st) == 0 ? (size_t)st.st_size : 0;
	return 0;
}

int audit_file_open(const char *path, size_t max_bytes, unsigned keep, struct audit_file **ret,
		    scm_error **ret_err)
{
	struct audit_file *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	f->fd = -1;
	f->max = max_bytes;
	f->keep = keep;
	int r = reopen(f, 0);
	if (r < 0) {
		free(f->path);
		free(f);
		return scm_fail(ret_err, r, "cannot open the audit file %s: %s", path, strerror(-r));
	}
	*ret = f;
	return 0;
}

static int rotate(struct audit_file *f)
{
	if (f->keep == 0)
		return reopen(f, O_TRUNC);
	for (unsigned i = f->keep; i > 0; i--) {
		char *from = NULL, *to = NULL;
		int ok = (i == 1 ? asprintf(&from, "%s", f->path) : asprintf(&from, "%s.%u", f->path, i - 1)) >= 0 &&
			 asprintf(&to, "%s.%u", f->path, i) >= 0;
		if (ok)
			rename(from, to); /* ENOENT: fewer rotated files so far */
		free(from);
		free(to);
		if (!ok)
			return -ENOMEM;
	}
	return reopen(f, O_TRUNC);
}

int audit_file_write(struct audit_file *f, const char *line, size_t len)
{
	if (f->size > 0 && f->size + len > f->max) {
		int r = rotate(f);
		if (r < 0)
			return r;
	}
	ssize_t n = write(f->fd, line, len);
	if (n < 0)
		return -errno;
	f->size += (size_t)n;
	return 0;
}

struct audit_file *audit_file_close(struct audit_file *f)
{
	if (f) {
		if (f->fd >= 0)
			close(f->fd);
		free(f->path);
		free(f);
	}
	return NULL;
}
