/* nbdkit-scm-vdisk.c: the nbdkit plugin behind `scm-vdisk export`
 * (nbdkit-scmvdisk-plugin.so). nbdkit speaks NBD (newstyle fixed, OPT_GO
 * and OPT_INFO, structured replies, TLS, block status); this plugin is a
 * client of the vdisk provider through scmd, like any other: it opens the
 * disk with the caller's grant (path rules, read-only constraint, the
 * provider's image locks and writer rules) and moves data through the
 * channel's shared buffer. So an export can do no more than its caller
 * could with `vdisk-client`, the disk stays in the provider's one engine
 * handle (its other clients and its jobs see the export's writes at once),
 * and nothing is served when the open is refused: get_ready fails and
 * nbdkit exits before it accepts anyone.
 *
 * Parameters: disk=PATH (required), readonly=BOOL, endpoint=EP (else
 * $SCM_ENDPOINT), service=NAME (vdisk), name=EXPORT (the one export name
 * served; "" is taken as it too), lanes=N (channels, 1-8: lane 0 holds the
 * handle that writes, the others read-only handles for reads in parallel),
 * ready_fd=N (gets "ready PID\n" once the disk is open and nbdkit serves),
 * ring=BOOL (default true: reads of up to VRING_DATA_SIZE go through each
 * lane's read ring, vring.h, when the provider gives one; false: calls). */
#define NBDKIT_API_VERSION 2
#include <errno.h>
#include <json-c/json.h>
#include <nbdkit-plugin.h>
#include <endian.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nbdkit-scm-vdisk.h"
#include "scm/vdisk-client.h"
#include "vring.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
char *disk;
static char *endpoint, *service, *export_name;
static bool readonly, use_ring = true;
static int lanes_n = 4, ready_fd = -1;
static struct lane lanes[LANES_MAX];
static uint64_t vsize;
static uint32_t lsec, psec = 4096;
static bool extents_ok;
static atomic_bool no_readv; /* the grant refuses readv: one read a call */
static atomic_uint next_lane;

static int config(const char *key, const char *value)
{
	char **dst = !strcmp(key, "disk")	? &disk
		     : !strcmp(key, "endpoint") ? &endpoint
		     : !strcmp(key, "service")	? &service
		     : !strcmp(key, "name")	? &export_name
						: NULL;
	if (dst) {
		free(*dst);
		if (!(*dst = strdup(value))) {
			nbdkit_error("out of memory");
			return -1;
		}
		return 0;
	}
	if (!strcmp(key, "readonly") || !strcmp(key, "ring")) {
		int r = nbdkit_parse_bool(value);
		if (r < 0)
			return -1;
		*(!strcmp(key, "ring") ? &use_ring : &readonly) = r;
		return 0;
	}
	if (!strcmp(key, "lanes") || !strcmp(key, "ready_fd")) {
		int v;
		if (nbdkit_parse_int(key, value, &v) < 0)
			return -1;
		if (!strcmp(key, "lanes") && (v < 1 || v > LANES_MAX)) {
			nbdkit_error("lanes=%s: from 1 to %d", value, LANES_MAX);
			return -1;
		}
		*(!strcmp(key, "lanes") ? &lanes_n : &ready_fd) = v;
		return 0;
	}
	nbdkit_error("unknown parameter '%s' (disk, readonly, endpoint, service, name, lanes, ready_fd, ring)", key);
	return -1;
}

static int config_complete(void)
{
	if (!disk || disk[0] != '/') {
		nbdkit_error("disk=PATH is required, an absolute path as the grant names it");
		return -1;
	}
	return 0;
}

int code_errno(int code)
{
	return code == SCM_VDISK_E_READONLY   ? EROFS
	       : code == SCM_VDISK_E_BADRANGE ? EINVAL
	       : code == SCM_E_DENIED	      ? EPERM
					      : EIO;
}

/* Says what failed, the provider's chain on one line, and returns the
 * errno for the NBD reply (a refused write on a read-only handle is EROFS,
 * a bad range EINVAL, anything else EIO). */
static int failed_errno(const char *what, int r, scm_error *e)
{
	char *t = e ? scm_error_text(e) : NULL;
	nbdkit_error("%s %s: %s", what, disk, t ? t : strerror(r < 0 ? -r : EIO));
	int code = e ? e->code : r;
	free(t);
	scm_error_free(e);
	return code_errno(code);
}

/* failed_errno() for the calling thread's reply (nbdkit's errno is per
 * thread): -1. */
static int failed(const char *what, int r, scm_error *e)
{
	nbdkit_set_error(failed_errno(what, r, e));
	return -1;
}
static int lane_open(struct lane *l, bool ro)
{
	scm_error *e = NULL;
	int r = endpoint ? scm_connect_at(endpoint, service ? service : "vdisk", &l->ch, &e)
			 : scm_connect(service ? service : "vdisk", &l->ch, &e);
	if (r)
		return failed("connecting to the vdisk provider for", r, e);
	/* a flush of a large dirty disk may take longer than a call's default */
	scm_channel_set_timeout(l->ch, SCM_TIMEOUT_INFINITE);
	int fd;
	uint64_t sec, vs;
	bool oro;
	r = scm_vdisk_open(l->ch, disk, ro, false, &l->handle, &fd, &l->buf_size, &vs, &sec, &oro, &e);
	if (r)
		return failed("open", r, e);
	l->buf = mmap(NULL, l->buf_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (l->buf == MAP_FAILED) {
		l->buf = NULL;
		nbdkit_error("mapping the data buffer: %m");
		return -1;
	}
	vsize = vs;
	lsec = (uint32_t)sec;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	pthread_cond_init(&l->rcond, NULL);
	l->tail = &l->head;
	if (use_ring)
		lane_ring_open(l);
	return 0;
}

/* The disk is opened here, before nbdkit serves anyone: a refusal (the
 * grant, the lock rules) ends nbdkit with the provider's reason. */
static int get_ready(void)
{
	if (lane_open(&lanes[0], readonly) < 0)
		return -1;
	/* more lanes if the provider gives them (each is a handle in the
	 * client's cap): fewer parallel reads, not a refusal */
	for (int i = 1; i < lanes_n; i++)
		if (lane_open(&lanes[i], true) < 0) {
			nbdkit_debug("serving with %d lanes", i);
			if (lanes[i].ch)
				scm_channel_free(lanes[i].ch);
			lanes[i] = (struct lane){ 0 };
			lanes_n = i;
			break;
		}
	scm_error *e = NULL;
	json_object *info = NULL, *v;
	if (scm_vdisk_info(lanes[0].ch, lanes[0].handle, &info, &e) == 0) {
		if (json_object_object_get_ex(info, "physical_sector_size", &v))
			psec = (uint32_t)json_object_get_uint64(v);
		json_object_put(info);
	}
	scm_error_free(e);
	e = NULL;
	/* block status needs the grant to allow "extents"; without it the
	 * export says "all data", as a server without block status does */
	json_object *ex = NULL;
	extents_ok = scm_vdisk_extents(lanes[0].ch, lanes[0].handle, 0, lsec, &ex, &e) == 0;
	json_object_put(ex);
	if (!extents_ok) {
		char *t = scm_error_text(e);
		nbdkit_debug("no block status: %s", t ? t : "");
		free(t);
	}
	scm_error_free(e);
	return 0;
}

static int after_fork(void)
{
	if (ready_fd >= 0) {
		dprintf(ready_fd, "ready %d\n", (int)getpid());
		close(ready_fd);
		ready_fd = -1;
	}
	return 0;
}

static void unload(void)
{
	for (int i = 0; i < lanes_n; i++) {
		struct lane *l = &lanes[i];
		if (!l->ch)
			continue;
		scm_error *e = NULL;
		if (l->buf && scm_vdisk_close(l->ch, l->handle, &e) != 0) /* the flush */
			failed("close", -EIO, e);
		if (l->buf)
			munmap(l->buf, l->buf_size);
		if (l->ring) {
			munmap(l->ring, VRING_SIZE);
			close(l->bell);
		}
		scm_channel_free(l->ch);
	}
	free(disk);
	free(endpoint);
	free(service);
	free(export_name);
}

static void *open_conn(int ro)
{
	const char *want = nbdkit_export_name();
	if (export_name && want && want[0] && strcmp(want, export_name)) {
		nbdkit_error("no export named \"%s\" here (this one is \"%s\")", want, export_name);
		return NULL;
	}
	return lanes; /* every connection shares the lanes */
}

static int list_exports(int ro, int is_tls, struct nbdkit_exports *exports)
{
	return nbdkit_add_export(exports, export_name ? export_name : "", disk);
}

static const char *default_export(int ro, int is_tls)
{
	return export_name ? export_name : "";
}

static int64_t get_size(void *h)
{
	return (int64_t)vsize;
}

static int block_size(void *h, uint32_t *minimum, uint32_t *preferred, uint32_t *maximum)
{
	*minimum = lsec;
	*preferred = psec > lsec ? psec : lsec;
	*maximum = (uint32_t)lanes[0].buf_size;
	return 0;
}

static int can_write(void *h) { return !readonly; }
static int can_flush(void *h) { return 1; }
static int can_trim(void *h) { return !readonly; }
static int can_zero(void *h) { return !readonly; }
static int can_fua(void *h) { return NBDKIT_FUA_NATIVE; }
static int can_extents(void *h) { return extents_ok; }
static int is_rotational(void *h) { return 0; }
/* Every connection's I/O goes to the provider's one engine handle of the
 * disk, so a flush on any connection makes every connection's completed
 * writes durable: what NBD_FLAG_CAN_MULTI_CONN promises. */
static int can_multi_conn(void *h) { return 1; }

/* Everything but reads takes a lane whole: waits until no call is out on
 * it, marks it busy, and lane_put() lets the next one go. Everything that
 * writes goes to lane 0, which holds the read-write handle, in order. */
static struct lane *lane_get(bool wr)
{
	struct lane *l = &lanes[wr ? 0 : atomic_fetch_add(&next_lane, 1) % (unsigned)lanes_n];
	pthread_mutex_lock(&l->lock);
	while (l->busy)
		pthread_cond_wait(&l->cond, &l->lock);
	l->busy = true;
	pthread_mutex_unlock(&l->lock);
	return l;
}

static void lane_put(struct lane *l)
{
	pthread_mutex_lock(&l->lock);
	l->busy = false;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

/* With the lane locked and free: sends the reads queued on it (as many as
 * fit the buffer, up to 1024) in one call, readv when there are several,
 * and copies each to its reader. The lock is let go during the call. */
#define BATCH_MAX 1024
static void read_batch(struct lane *l)
{
	struct rreq *b[BATCH_MAX];
	static _Thread_local uint8_t ex[BATCH_MAX * 24];
	size_t n = 0;
	uint64_t boff = 0;
	while (l->head && n < BATCH_MAX && boff + l->head->len <= l->buf_size) {
		struct rreq *r = l->head;
		if (!(l->head = r->next))
			l->tail = &l->head;
		uint64_t rec[3] = { htole64(r->off), htole64(r->len), htole64(boff) };
		memcpy(ex + n * 24, rec, 24);
		b[n++] = r;
		boff += r->len;
	}
	l->busy = true;
	pthread_mutex_unlock(&l->lock);
	scm_error *e = NULL;
	int r, err = 0;
	if (n == 1 || atomic_load(&no_readv)) {
		for (size_t i = 0; i < n && !err; i++) {
			uint64_t o;
			memcpy(&o, ex + i * 24 + 16, 8);
			if ((r = scm_vdisk_read(l->ch, l->handle, b[i]->off, b[i]->len, le64toh(o), &e)))
				err = failed_errno("read", r, e);
		}
	} else if ((r = scm_vdisk_readv(l->ch, l->handle, ex, n * 24, &e))) {
		if (e && e->code == SCM_E_DENIED) { /* the grant has read, not readv */
			atomic_store(&no_readv, true);
			scm_error_free(e);
			e = NULL;
			for (size_t i = 0, o = 0; i < n && !err; o += b[i]->len, i++)
				if ((r = scm_vdisk_read(l->ch, l->handle, b[i]->off, b[i]->len, o, &e)))
					err = failed_errno("read", r, e);
		} else {
			err = failed_errno("read", r, e);
		}
	}
	boff = 0;
	for (size_t i = 0; i < n; i++) {
		if (!err)
			memcpy(b[i]->dst, l->buf + boff, b[i]->len);
		boff += b[i]->len;
	}
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < n; i++) {
		b[i]->err = err;
		b[i]->done = true;
	}
	l->busy = false;
	pthread_cond_broadcast(&l->cond);
}

static int pread_(void *h, void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct lane *l = &lanes[atomic_fetch_add(&next_lane, 1) % (unsigned)lanes_n];
	/* the ring, unless it stopped (a handover): then calls */
	if (l->ring && count <= VRING_DATA_SIZE && !atomic_load(&l->ring->dead) && !atomic_load(&l->ring_off)) {
		int r = lane_ring_read(l, buf, count, offset);
		if (r <= 0)
			return r;
	}
	/* block_size says at most the buffer; a larger request, one piece at
	 * a time */
	for (uint32_t done = 0; done < count;) {
		struct rreq r = { .off = offset + done, .dst = (uint8_t *)buf + done };
		r.len = count - done < l->buf_size ? count - done : (uint32_t)l->buf_size;
		pthread_mutex_lock(&l->lock);
		*l->tail = &r;
		l->tail = &r.next;
		/* the first to find the lane free sends what has queued up,
		 * its own read among it; the others wait for their turn or
		 * for their read to be done by another */
		while (!r.done) {
			if (!l->busy)
				read_batch(l);
			else
				pthread_cond_wait(&l->cond, &l->lock);
		}
		pthread_mutex_unlock(&l->lock);
		if (r.err) {
			nbdkit_set_error(r.err);
			return -1;
		}
		done += r.len;
	}
	return 0;
}

/* On a lane taken whole (lane_get). */
static int flush_locked(struct lane *l)
{
	scm_error *e = NULL;
	int r = scm_vdisk_flush(l->ch, l->handle, &e);
	return r ? failed("flush", r, e) : 0;
}

static int pwrite_(void *h, const void *buf, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct lane *l = lane_get(true);
	int ret = 0;
	for (uint32_t done = 0; done < count;) {
		uint32_t n = count - done < l->buf_size ? count - done : (uint32_t)l->buf_size;
		memcpy(l->buf, (const uint8_t *)buf + done, n);
		scm_error *e = NULL;
		int r = scm_vdisk_write(l->ch, l->handle, offset + done, n, 0, &e);
		if (r) {
			ret = failed("write", r, e);
			break;
		}
		done += n;
	}
	if (!ret && (flags & NBDKIT_FLAG_FUA))
		ret = flush_locked(l);
	lane_put(l);
	return ret;
}

static int flush(void *h, uint32_t flags)
{
	struct lane *l = lane_get(true);
	int ret = flush_locked(l);
	lane_put(l);
	return ret;
}

static int trim(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct lane *l = lane_get(true);
	scm_error *e = NULL;
	int r = scm_vdisk_trim(l->ch, l->handle, offset, count, &e);
	int ret = r ? failed("trim", r, e) : 0;
	if (!ret && (flags & NBDKIT_FLAG_FUA))
		ret = flush_locked(l);
	lane_put(l);
	return ret;
}

static int zero(void *h, uint32_t count, uint64_t offset, uint32_t flags)
{
	struct lane *l = lane_get(true);
	scm_error *e = NULL;
	int r = scm_vdisk_zero(l->ch, l->handle, offset, count, flags & NBDKIT_FLAG_MAY_TRIM, &e);
	int ret = r ? failed("zero", r, e) : 0;
	if (!ret && (flags & NBDKIT_FLAG_FUA))
		ret = flush_locked(l);
	lane_put(l);
	return ret;
}

/* base:allocation from the provider's runs: data, or a hole that reads
 * as zeros (nothing in the chain holds it). */
static int extents(void *h, uint32_t count, uint64_t offset, uint32_t flags, struct nbdkit_extents *ex)
{
	struct lane *l = lane_get(false);
	scm_error *e = NULL;
	json_object *a = NULL;
	int r = scm_vdisk_extents(l->ch, l->handle, offset, count, &a, &e);
	lane_put(l);
	if (r)
		return failed("block status of", r, e);
	size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
	int ret = n ? 0 : -1;
	if (!n) {
		nbdkit_error("block status of %s: the provider sent no extent", disk);
		nbdkit_set_error(EIO);
	}
	for (size_t i = 0; i < n && !ret; i++) {
		json_object *it = json_object_array_get_idx(a, i);
		uint64_t len = json_object_get_uint64(json_object_array_get_idx(it, 0));
		bool z = json_object_get_int(json_object_array_get_idx(it, 1)) == 1;
		ret = nbdkit_add_extent(ex, offset, len, z ? NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO : 0);
		offset += len;
		if (flags & NBDKIT_FLAG_REQ_ONE)
			break;
	}
	json_object_put(a);
	return ret;
}

static struct nbdkit_plugin plugin = {
	.name = "scmvdisk",
	.longname = "scm vdisk export (VHDX through the vdisk provider)",
	.version = "1",
	.description = "Serves a vdisk (whole chain) as a client of the scm vdisk provider.",
	.config = config,
	.config_complete = config_complete,
	.config_help = "disk=PATH [readonly=BOOL] [endpoint=EP] [service=NAME] [name=EXPORT] [lanes=N] [ready_fd=N]",
	.magic_config_key = "disk",
	.get_ready = get_ready,
	.after_fork = after_fork,
	.unload = unload,
	.open = open_conn,
	.list_exports = list_exports,
	.default_export = default_export,
	.get_size = get_size,
	.block_size = block_size,
	.can_write = can_write,
	.can_flush = can_flush,
	.can_trim = can_trim,
	.can_zero = can_zero,
	.can_fua = can_fua,
	.can_extents = can_extents,
	.can_multi_conn = can_multi_conn,
	.is_rotational = is_rotational,
	.pread = pread_,
	.pwrite = pwrite_,
	.flush = flush,
	.trim = trim,
	.zero = zero,
	.extents = extents,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
