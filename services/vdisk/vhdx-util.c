/* vhdx-util.c: small pieces every part of the engine uses: error text,
 * GUIDs, whole-buffer file I/O (with the pending-log overlay applied). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vhdx-internal.h"
#include "scm-internal/error.h"

void vhdx_fail_set(vhdx *h, scm_error *e)
{
	pthread_mutex_lock(&h->err_lock);
	scm_error *old = h->err;
	h->err = e;
	pthread_mutex_unlock(&h->err_lock);
	scm_error_free(old);
}

int vhdx_fail_at(vhdx *h, const char *where, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vhdx_fail_set(h, scm_error_newv(code, where, fmt, ap));
	va_end(ap);
	return code;
}

scm_error *vhdx_error_prefix(scm_error *why, int code, const char *prefix)
{
	if (!why)
		return scm_error_new(code, NULL, "%s", prefix);
	scm_error *e = scm_error_new(code, why->where, "%s: %s", prefix, why->message ? why->message : "");
	if (!e)
		return why;
	e->cause = TAKE_PTR(why->cause);
	scm_error_free(why);
	return e;
}

int vhdx_fail_prefix(vhdx *h, scm_error *why, int code, const char *prefix)
{
	vhdx_fail_set(h, vhdx_error_prefix(why, code, prefix));
	return code;
}

int vhdx_fail_parent(vhdx *h, int r)
{
	vhdx_fail_set(h, vhdx_error(h->parent));
	return r;
}

void vhdx_fail_take(vhdx *h, scm_error **ret_err)
{
	pthread_mutex_lock(&h->err_lock);
	scm_error *e = TAKE_PTR(h->err);
	pthread_mutex_unlock(&h->err_lock);
	scm_error_push(ret_err, e);
}

scm_error *vhdx_error(vhdx *h)
{
	if (!h)
		return NULL;
	pthread_mutex_lock(&h->err_lock);
	scm_error *e = h->err ? scm_error_copy(h->err) : NULL;
	pthread_mutex_unlock(&h->err_lock);
	return e;
}

const char *vhdx_errmsg(vhdx *h)
{
	static __thread char *text;
	if (!h)
		return "";
	free(text);
	pthread_mutex_lock(&h->err_lock);
	text = h->err ? scm_error_text(h->err) : strdup("");
	pthread_mutex_unlock(&h->err_lock);
	return text ? text : "out of memory";
}

const char *vhdx_path(const vhdx *h)
{
	return h->path;
}

const char *vhdx_state_name(unsigned state)
{
	switch (state) {
	case VHDX_PB_NOT_PRESENT: return "not_present";
	case VHDX_PB_UNDEFINED: return "undefined";
	case VHDX_PB_ZERO: return "zero";
	case VHDX_PB_UNMAPPED: return "unmapped";
	case VHDX_PB_FULLY_PRESENT: return "fully_present";
	case VHDX_PB_PARTIALLY_PRESENT: return "partially_present";
	default: return "invalid";
	}
}

/* GUIDs: the first three fields are little-endian on disk, the last eight
 * bytes are stored as written. */
void vhdx_guid_format(const vhdx_guid *g, char out[39])
{
	const uint8_t *b = g->b;
	snprintf(out, 39, "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}", get32(b), get16(b + 4),
		 get16(b + 6), b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int vhdx_guid_parse(const char *s, vhdx_guid *ret)
{
	uint8_t raw[16];
	size_t n = 0;
	bool brace = *s == '{';
	if (brace)
		s++;
	for (int i = 0; *s && n < 16; i++) {
		if (*s == '-') {
			s++;
			continue;
		}
		int a = hexval(s[0]), b = a < 0 ? -1 : hexval(s[1]);
		if (a < 0 || b < 0)
			return -EINVAL;
		raw[n++] = (uint8_t)(a << 4 | b);
		s += 2;
	}
	if (n != 16 || (brace ? strcmp(s, "}") : *s != 0))
		return -EINVAL;
	vhdx_guid g;
	/* raw holds the text order; swap the first three fields to disk order */
	g.b[0] = raw[3]; g.b[1] = raw[2]; g.b[2] = raw[1]; g.b[3] = raw[0];
	g.b[4] = raw[5]; g.b[5] = raw[4];
	g.b[6] = raw[7]; g.b[7] = raw[6];
	memcpy(g.b + 8, raw + 8, 8);
	*ret = g;
	return 0;
}

int vhdx_guid_const(const char *s, vhdx_guid *ret)
{
	return vhdx_guid_parse(s, ret);
}

bool vhdx_guid_eq(const vhdx_guid *a, const vhdx_guid *b)
{
	return memcmp(a->b, b->b, 16) == 0;
}

bool vhdx_guid_is_zero(const vhdx_guid *g)
{
	static const vhdx_guid z;
	return vhdx_guid_eq(g, &z);
}

int vhdx_guid_random(vhdx_guid *ret)
{
	vhdx_guid g;
	if (getrandom(g.b, sizeof g.b, 0) != (ssize_t)sizeof g.b)
		return -errno;
	g.b[7] = (g.b[7] & 0x0f) | 0x40; /* version 4 (field 3 is little-endian) */
	g.b[8] = (g.b[8] & 0x3f) | 0x80;
	*ret = g;
	return 0;
}

/* Reads len bytes at off; bytes past the real end of file read as zero (a
 * replayed log may have said the file is longer), then the overlay of a
 * pending log that was not written back is laid over the result. */
__thread bool vhdx_nowait;

int vhdx_pread(vhdx *h, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n;
		if (vhdx_nowait) {
			struct iovec iov = { p + done, len - done };
			n = preadv2(h->fd, &iov, 1, (off_t)(off + done), RWF_NOWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EOPNOTSUPP))
				return -EAGAIN;
		} else
			n = pread(h->fd, p + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vhdx_fail(h, -errno, "%s: read of %zu bytes at 0x%llx: %m", h->path, len,
					 (unsigned long long)off);
		}
		if (n == 0) {
			memset(p + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	for (size_t i = 0; i < h->n_ov; i++) {
		const struct vhdx_overlay *o = &h->ov[i];
		uint64_t s = o->off > off ? o->off : off;
		uint64_t e = o->off + o->len < off + len ? o->off + o->len : off + len;
		if (s >= e)
			continue;
		if (o->data)
			memcpy(p + (s - off), o->data + (s - o->off), e - s);
		else
			memset(p + (s - off), 0, e - s);
	}
	return 0;
}

int vhdx_pwrite(vhdx *h, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(h->fd, p + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return vhdx_fail(h, -errno, "%s: write of %zu bytes at 0x%llx: %m", h->path, len,
					 (unsigned long long)off);
		}
		done += (size_t)n;
	}
	if (off + len > h->file_size)
		h->file_size = off + len;
	return 0;
}

int vhdx_probe_fd(int fd)
{
	uint8_t sig[8];
	ssize_t n = pread(fd, sig, 8, 0);
	if (n < 0)
		return -errno;
	return n == 8 && get64(sig) == SIG_FTI;
}

vhdx *vhdx_parent(vhdx *h)
{
	return h->parent;
}

static bool direct_ok(const vhdx *h, const void *buf, size_t len, uint64_t off)
{
	return h->dfd >= 0 && h->n_ov == 0 && (((uintptr_t)buf | len | off) & 4095) == 0;
}

int vhdx_data_pread(vhdx *h, void *buf, size_t len, uint64_t off)
{
	if (!direct_ok(h, buf, len, off))
		return vhdx_pread(h, buf, len, off);
	if (vhdx_nowait)
		return -EAGAIN; /* O_DIRECT always goes to the storage */
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(h->dfd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vhdx_fail(h, -errno, "%s: direct read at 0x%llx: %m", h->path,
					 (unsigned long long)(off + done));
		if (n == 0) {
			memset((uint8_t *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

int vhdx_data_pwrite(vhdx *h, const void *buf, size_t len, uint64_t off)
{
	if (!direct_ok(h, buf, len, off))
		return vhdx_pwrite(h, buf, len, off);
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(h->dfd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return vhdx_fail(h, -errno, "%s: direct write at 0x%llx: %m", h->path,
					 (unsigned long long)(off + done));
		done += (size_t)n;
	}
	if (off + len > h->file_size)
		h->file_size = off + len;
	return 0;
}

int vhdx_fd(const vhdx *h)
{
	return h->fd;
}

void vhdx_file_id(const vhdx *h, uint64_t *ret_dev, uint64_t *ret_ino)
{
	*ret_dev = h->dev;
	*ret_ino = h->ino;
}

uint64_t vhdx_memory(const vhdx *h)
{
	uint64_t n = 0;
	for (const vhdx *c = h; c; c = c->parent)
		n += c->bat_pages * VHDX_LOG_SECTOR + c->bat_pages;
	return n;
}

static int close_commit(vhdx *h)
{
	if (h->ro)
		return 0;
	int r = vhdx_log_commit(h);
	if (r < 0)
		return r;
	if (h->file_touched && fdatasync(h->fd) < 0)
		return vhdx_fail(h, -errno, "%s: fdatasync: %m", h->path);
	if (!vhdx_guid_is_zero(&h->hdr.log_guid)) {
		/* everything is in place: the log is no longer needed */
		memset(&h->hdr.log_guid, 0, sizeof h->hdr.log_guid);
		r = vhdx_header_update(h);
		if (r < 0)
			return r;
	}
	return 0;
}

int vhdx_close_checked(vhdx *h)
{
	if (!h)
		return 0;
	int r = close_commit(h);
	vhdx_free(h);
	return r;
}

vhdx *vhdx_close(vhdx *h)
{
	vhdx_close_checked(h);
	return NULL;
}

void vhdx_session_get(const vhdx *h, struct vhdx_session *ret)
{
	*ret = (struct vhdx_session){ .touched = (h->file_touched ? VHDX_SESSION_FILE : 0) |
						 (h->data_touched ? VHDX_SESSION_DATA : 0),
				      .log_seq = h->log_seq, .log_head = h->log_head };
}

int vhdx_session_set(vhdx *h, const struct vhdx_session *s)
{
	if (s->log_head >= h->hdr.log_length || s->log_head % VHDX_LOG_SECTOR)
		return vhdx_fail(h, -EINVAL, "%s: log head 0x%llx is not a sector of the %llu-byte log", h->path,
				 (unsigned long long)s->log_head, (unsigned long long)h->hdr.log_length);
	h->file_touched = s->touched & VHDX_SESSION_FILE;
	h->data_touched = s->touched & VHDX_SESSION_DATA;
	h->log_seq = s->log_seq;
	h->log_head = s->log_head;
	return 0;
}

int vhdx_commit(vhdx *h)
{
	return h->ro ? 0 : vhdx_log_commit(h);
}

vhdx *vhdx_abandon(vhdx *h)
{
	return vhdx_free(h);
}

/* One carried page: its index in the BAT region, then its 512 entries,
 * little-endian as in the file. */
#define CARRY_PAGE (4 + VHDX_LOG_SECTOR)

int vhdx_carry_get(const vhdx *h, size_t max, uint8_t **ret, size_t *ret_len)
{
	size_t n = 0;
	*ret = NULL;
	*ret_len = 0;
	if (h->ro || !h->n_dirty)
		return 0;
	for (size_t pg = 0; pg < h->bat_pages; pg++)
		n += h->bat_dirty[pg] != 0;
	/* only block table pages: a bitmap or another page is committed */
	if (h->parent || h->has_parent || h->n_extra || n != h->n_dirty || n > max)
		return -EAGAIN;
	uint8_t *buf = malloc(n * CARRY_PAGE), *b = buf;
	if (!buf)
		return -ENOMEM;
	for (size_t pg = 0; pg < h->bat_pages; pg++) {
		if (!h->bat_dirty[pg])
			continue;
		put32(b, (uint32_t)pg);
		memset(b + 4, 0, VHDX_LOG_SECTOR);
		uint64_t first = pg * (VHDX_LOG_SECTOR / 8);
		for (uint64_t k = 0; k < VHDX_LOG_SECTOR / 8 && first + k < h->bat_entries; k++)
			put64(b + 4 + 8 * k, h->bat[first + k]);
		b += CARRY_PAGE;
	}
	*ret = buf;
	*ret_len = n * CARRY_PAGE;
	return 0;
}

int vhdx_carry_apply(vhdx *h, const uint8_t *buf, size_t len)
{
	if (h->ro || h->has_parent || len % CARRY_PAGE)
		return vhdx_fail(h, -EINVAL, "%s: %zu bytes of carried block table pages%s", h->path, len,
				 h->ro || h->has_parent ? " for a read-only or differencing handle" : ": not whole pages");
	for (const uint8_t *b = buf; b < buf + len; b += CARRY_PAGE) {
		uint32_t pg = get32(b);
		if (pg >= h->bat_pages || h->bat_dirty[pg])
			return vhdx_fail(h, -EINVAL, "%s: carried block table page %u: %s", h->path, pg,
					 pg >= h->bat_pages ? "past the table" : "carried twice");
		uint64_t first = (uint64_t)pg * (VHDX_LOG_SECTOR / 8);
		for (uint64_t k = 0; k < VHDX_LOG_SECTOR / 8 && first + k < h->bat_entries; k++)
			h->bat[first + k] = get64(b + 4 + 8 * k);
		h->bat_dirty[pg] = 1;
		h->n_dirty++;
	}
	return 0;
}
