/* provider-offload-stage.c: step 3 of an offload copy
 * (provider-offload-copy.c has the whole story), on a thread of its own,
 * since it waits on the source, which may be this very provider, whose
 * workers must stay free: the range copied into the space reserved for
 * its whole blocks and the staging file, by reflink, copy_file_range or
 * read and write from the source's file (file mode) or through the token
 * channel's buffer (channel mode); then the source's offload_check. And
 * offload_shutdown, which wakes and waits for these threads. */
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "provider-offload-copy.h"
#include "scm/vdisk-client.h"
#include "scm-internal/error.h"

/* staging threads still running, and their token channels' sockets, so
 * that a provider shutting down can wake and wait for them */
static pthread_mutex_t th_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t th_cond = PTHREAD_COND_INITIALIZER;
static unsigned threads;

static int stage_add(struct ocopy *o, uint64_t off, uint64_t len, bool zero)
{
	if (o->n_ex == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 256;
		void *p = realloc(o->ex, cap * sizeof *o->ex);
		if (!p)
			return -ENOMEM;
		o->ex = p;
		o->cap = cap;
	}
	o->ex[o->n_ex][0] = off;
	o->ex[o->n_ex][1] = len;
	o->ex[o->n_ex][2] = zero;
	o->n_ex++;
	*(zero ? &o->zero : &o->data) += len;
	return 0;
}

/* A staged piece: progress, the test hook's pause, a cancel asked for. */
static bool step(struct ocopy *o, uint64_t n)
{
	atomic_fetch_add(&o->done, n);
	if (ocopy_step_us)
		usleep(ocopy_step_us);
	if (!atomic_load(&o->cancel))
		return true;
	if (!o->err)
		o->err = scm_error_new(-ECANCELED, SCM_HERE, "cancelled (job_cancel)");
	return false;
}

#define STEP_MAX (1u << 20) /* a kernel copy at a time, between looks at cancel */

/* Where the range's byte x is staged: the reserved space for the whole
 * destination blocks, else the staging file. *ret_n: how far that holds. */
static int target(struct ocopy *o, uint64_t x, uint64_t len, uint64_t *ret_off, uint64_t *ret_n)
{
	uint64_t at = o->dst + x;
	if (o->rfd >= 0 && at >= o->a && at < o->b) {
		*ret_off = o->res + (at - o->a);
		*ret_n = o->b - at < len ? o->b - at : len;
		return o->rfd;
	}
	*ret_off = x;
	*ret_n = o->rfd >= 0 && at < o->a && o->a - at < len ? o->a - at : len;
	return o->tmp;
}

static int copy_to(struct ocopy *o, int src, uint64_t soff, int dfd, uint64_t doff, uint64_t len);

/* len bytes of src at soff to the range at x (split where the target changes). */
static int copy_range(struct ocopy *o, int src, uint64_t soff, uint64_t x, uint64_t len)
{
	while (len) {
		uint64_t toff, n;
		int fd = target(o, x, len, &toff, &n);
		int r = copy_to(o, src, soff, fd, toff, n);
		if (r < 0)
			return r;
		soff += n, x += n, len -= n;
	}
	return 0;
}

/* len bytes of src at soff to dfd at doff: a reflink where the file
 * system shares blocks, else copy_file_range (in the kernel), else
 * read and write. */
static int copy_to(struct ocopy *o, int src, uint64_t soff, int dfd, uint64_t doff, uint64_t len)
{
	if (!(soff % 4096) && !(doff % 4096) && !(len % 4096)) {
		struct file_clone_range fcr = { .src_fd = src, .src_offset = soff, .src_length = len, .dest_offset = doff };
		if (ioctl(dfd, FICLONERANGE, &fcr) == 0) {
			o->how = "reflink";
			return 0;
		}
	}
	while (len) {
		loff_t si = (loff_t)soff, di = (loff_t)doff;
		ssize_t n = copy_file_range(src, &si, dfd, &di, len < STEP_MAX ? len : STEP_MAX, 0);
		if (n <= 0) {
			if (n < 0 && errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS)
				return -errno;
			break;
		}
		if (!o->how || strcmp(o->how, "reflink"))
			o->how = "copy_file_range";
		soff += (uint64_t)n, doff += (uint64_t)n, len -= (uint64_t)n;
		if (!step(o, (uint64_t)n))
			return -ECANCELED;
	}
	static __thread uint8_t *buf;
	if (len && !buf && !(buf = malloc(COPY_CHUNK)))
		return -ENOMEM;
	while (len) {
		size_t n = len < COPY_CHUNK ? len : COPY_CHUNK;
		ssize_t r = pread(src, buf, n, (off_t)soff);
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		if (pwrite(dfd, buf, (size_t)r, (off_t)doff) != r)
			return -errno;
		o->how = "read-write";
		soff += (uint64_t)r, doff += (uint64_t)r, len -= (uint64_t)r;
		if (!step(o, (uint64_t)r))
			return -ECANCELED;
	}
	return 0;
}

/* Step 2, on the copy's own thread. */
static void *stage(void *arg)
{
	struct ocopy *o = arg;
	scm_channel *ch = NULL;
	uint8_t *buf = NULL;
	uint64_t bufsize = 0;
	int r = scm_channel_from_fd(o->chfd, o->chan_id, "vdisk", &ch);
	o->chfd = -1;
	if (r < 0) {
		o->err = scm_error_new(r, SCM_HERE, "the token channel: %s", strerror(-r));
		goto out;
	}
	for (uint64_t next = 0; next < o->length && !o->err;) {
		char *mode = NULL;
		int fd = -1;
		void *ex = NULL;
		size_t exlen = 0;
		uint64_t len = 0, nx = 0, bs = 0;
		if (scm_vdisk_offload_map(ch, o->hex, next, &mode, &fd, &bs, &len, &nx, &ex, &exlen, &o->err) != 0)
			break;
		bool file = !strcmp(mode, "file");
		o->mode = file ? "file" : "channel";
		struct stat st;
		if (!file && !buf && (bs == 0 || bs > (64u << 20) || bs % 4096 || fstat(fd, &st) < 0 || (uint64_t)st.st_size < bs))
			o->err = scm_error_new(SCM_E_PROTOCOL, SCM_HERE, "the token channel's buffer (%llu bytes) is unusable",
					       (unsigned long long)bs);
		if (!file && !buf && !o->err) {
			bufsize = bs;
			buf = mmap(NULL, bufsize, PROT_READ, MAP_SHARED, fd, 0);
			if (buf == MAP_FAILED) {
				buf = NULL;
				o->err = scm_error_new(-errno, SCM_HERE, "mapping the token channel's buffer: %m");
			}
		}
		struct offload_extent *e = o->err ? NULL : calloc(exlen / OFFLOAD_EXTENT_SIZE + 1, sizeof *e);
		int ne = e ? offload_map_parse(ex, exlen, next, nx, o->length, e, &o->err) : -ENOMEM;
		if (!e && !o->err)
			o->err = scm_error_new(-ENOMEM, SCM_HERE, "out of memory");
		for (int i = 0; i < ne && !o->err; i++) {
			uint64_t off = e[i].off, n = e[i].len, fo = e[i].file_off;
			if ((r = stage_add(o, off, n, fo == OFFLOAD_ZERO)) < 0) {
				o->err = scm_error_new(r, SCM_HERE, "out of memory");
				break;
			}
			if (fo == OFFLOAD_ZERO) {
				step(o, n);
				continue;
			}
			if (file) {
				if ((r = copy_range(o, fd, fo, off, n)) < 0 && !o->err)
					o->err = scm_error_new(r, SCM_HERE, "staging the copy: %s", strerror(-r));
				continue;
			}
			for (uint64_t k = 0; k < n && !o->err; k += bufsize) {
				uint64_t m = n - k < bufsize ? n - k : bufsize;
				if (scm_vdisk_offload_fetch(ch, o->hex, off + k, m, &o->err) != 0)
					break;
				for (uint64_t w = 0; w < m && !o->err;) {
					uint64_t toff, tn;
					int tfd = target(o, off + k + w, m - w, &toff, &tn);
					if (pwrite(tfd, buf + w, tn, (off_t)toff) != (ssize_t)tn)
						o->err = scm_error_new(-errno, SCM_HERE, "staging the copy: %m");
					w += tn;
				}
				if (!o->err)
					step(o, m);
			}
			o->how = "channel";
		}
		free(e);
		free(mode);
		free(ex);
		safe_close(fd);
		next = nx;
	}
	/* the copy is whole: was the source written meanwhile? */
	if (!o->err && scm_vdisk_offload_check(ch, o->hex, &o->err) == 0)
		o->staged = true;
out:
	if (buf)
		munmap(buf, bufsize);
	pthread_mutex_lock(&th_lock);
	scm_channel_free(ch);
	o->chsock = -1;
	pthread_mutex_unlock(&th_lock);
	o->code = o->staged ? 0
		  : o->err && o->err->code == SCM_VDISK_E_TOKENINVALID ? SCM_VDISK_E_TOKENINVALID
		  : o->err && o->err->code == -ECANCELED                ? SCM_VDISK_E_JOBSTATE
									: SCM_VDISK_E_IO;
	scm_provider_post(provider, &o->task);
	pthread_mutex_lock(&th_lock);
	threads--;
	pthread_cond_broadcast(&th_cond);
	pthread_mutex_unlock(&th_lock);
	return NULL;
}

void offload_shutdown(void)
{
	pthread_mutex_lock(&th_lock);
	for (struct ocopy *o = ocopies; o; o = o->next) {
		atomic_store(&o->cancel, true);
		if (o->chsock >= 0)
			shutdown(o->chsock, SHUT_RDWR); /* a call waiting on the source returns */
	}
	while (threads)
		pthread_cond_wait(&th_cond, &th_lock);
	pthread_mutex_unlock(&th_lock);
}

void ocopy_stage_start(struct ocopy *o)
{
	o->chsock = o->chfd;
	pthread_mutex_lock(&th_lock);
	threads++;
	pthread_mutex_unlock(&th_lock);
	pthread_t th;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int r = pthread_create(&th, &a, stage, o);
	pthread_attr_destroy(&a);
	if (r) {
		pthread_mutex_lock(&th_lock);
		threads--;
		o->chsock = -1;
		pthread_mutex_unlock(&th_lock);
		ocopy_fail(o, SCM_E_INTERNAL, scm_error_new(-r, SCM_HERE, "%s", strerror(r)), "starting the copy");
	}
}
