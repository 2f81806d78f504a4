/* vmap.c: the correspondence record (vmap.h). Strict: one spelling per
 * value (decimals without leading zeros, GUIDs as vhdx_guid_format writes
 * them, lower-case hex hashes), lines in a fixed order, a CRC-32C of all
 * of it, so that what is accepted formats back to the same bytes and a
 * torn or edited record is refused rather than half believed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmap.h"

#define LINE_MAX_LEN (VMAP_PATH_MAX + 64)

void vmap_clear(struct vmap *m)
{
	free(m->ext);
	m->ext = NULL;
	m->n = 0;
}

size_t vmap_max_size(uint64_t vsize, uint32_t chunk)
{
	/* header (two paths) + one line a piece (3 numbers, kind, 64 hex) */
	return 2 * VMAP_PATH_MAX + 512 + (size_t)((vsize + chunk - 1) / chunk) * (3 * 21 + 6 + 66);
}

static bool path_ok(const char *p)
{
	return p[0] && !strchr(p, '\n') && strlen(p) < VMAP_PATH_MAX;
}

int vmap_format(const struct vmap *m, char **ret_text, size_t *ret_len)
{
	if (!path_ok(m->source) || !path_ok(m->dest))
		return -EINVAL;
	char *text = NULL, g[3][39];
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	if (!f)
		return -ENOMEM;
	vhdx_guid_format(&m->source_dwg, g[0]);
	vhdx_guid_format(&m->dest_dwg, g[1]);
	vhdx_guid_format(&m->page83, g[2]);
	fprintf(f,
		"scm-vdisk-map %d\nsource %s\ndest %s\nvirtual_size %" PRIu64 "\nchunk %" PRIu32
		"\nsource_data_write_guid %s\ndata_write_guid %s\npage83 %s\n",
		VMAP_VERSION, m->source, m->dest, m->virtual_size, m->chunk, m->source_dwg_set ? g[0] : "none", g[1],
		g[2]);
	int r = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct vmap_extent *e = &m->ext[i];
		if (i && e->dst <= m->ext[i - 1].dst)
			r = -EINVAL;
		fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 " %s ", e->src, e->dst, e->len, e->zero ? "zero" : "data");
		for (int k = 0; k < 32; k++)
			fprintf(f, "%02x", e->hash[k]);
		fputc('\n', f);
	}
	fflush(f);
	fprintf(f, "end %08" PRIx32 "\n", vhdx_crc32c(0, text, size));
	if (fclose(f) != 0 || !text) {
		free(text);
		return -ENOMEM;
	}
	if (r < 0) {
		free(text);
		return r;
	}
	*ret_text = text;
	*ret_len = size;
	return 0;
}

/* The next line of [*p, end), NUL-terminated in out (without its newline). */
static int line(const char **p, const char *end, char *out, unsigned no, scm_error **ret_err)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (!nl)
		return scm_fail(ret_err, -EINVAL, "correspondence record line %u: missing or without its newline", no);
	size_t n = (size_t)(nl - *p);
	if (n >= LINE_MAX_LEN || memchr(*p, 0, n))
		return scm_fail(ret_err, -EINVAL, "correspondence record line %u: too long, or a NUL byte", no);
	memcpy(out, *p, n);
	out[n] = 0;
	*p = nl + 1;
	return 0;
}

/* "key VALUE": VALUE (a pointer into l), or NULL */
static const char *value(const char *l, const char *key)
{
	size_t k = strlen(key);
	return !strncmp(l, key, k) && l[k] == ' ' ? l + k + 1 : NULL;
}

static bool number(const char *s, uint64_t *ret)
{
	char *e;
	if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1]))
		return false;
	for (const char *c = s; *c; c++)
		if (*c < '0' || *c > '9')
			return false;
	errno = 0;
	unsigned long long x = strtoull(s, &e, 10);
	if (errno || *e)
		return false;
	*ret = x;
	return true;
}

static bool guid(const char *s, vhdx_guid *ret)
{
	char back[39];
	if (vhdx_guid_parse(s, ret) < 0)
		return false;
	vhdx_guid_format(ret, back);
	return !strcmp(back, s); /* the one spelling */
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int header(const char **p, const char *end, struct vmap *m, char *l, scm_error **ret_err)
{
	const char *v;
	uint64_t x;
	int r;
	if ((r = line(p, end, l, 1, ret_err)) < 0)
		return r;
	if (!(v = value(l, "scm-vdisk-map")) || !number(v, &x))
		return scm_fail(ret_err, -EINVAL, "correspondence record line 1: expected \"scm-vdisk-map VERSION\"");
	if (x != VMAP_VERSION)
		return scm_fail(ret_err, x > VMAP_VERSION ? -EPROTONOSUPPORT : -EINVAL,
				"correspondence record: version %" PRIu64 ", this provider reads version %d", x,
				VMAP_VERSION);
	static const char *const keys[] = { "source", "dest", "virtual_size", "chunk", "source_data_write_guid",
					    "data_write_guid", "page83" };
	for (unsigned i = 0; i < 7; i++) {
		if ((r = line(p, end, l, i + 2, ret_err)) < 0)
			return r;
		if (!(v = value(l, keys[i])))
			return scm_fail(ret_err, -EINVAL, "correspondence record line %u: expected \"%s VALUE\"", i + 2,
					keys[i]);
		bool ok = true;
		switch (i) {
		case 0: ok = path_ok(v) && (strcpy(m->source, v), true); break;
		case 1: ok = path_ok(v) && (strcpy(m->dest, v), true); break;
		case 2: ok = number(v, &m->virtual_size) && m->virtual_size && m->virtual_size <= (64ull << 40); break;
		case 3:
			ok = number(v, &x) && x >= 4096 && x <= (256u << 20) && !(x & (x - 1));
			m->chunk = (uint32_t)x;
			break;
		case 4:
			m->source_dwg_set = strcmp(v, "none") != 0;
			ok = !m->source_dwg_set || guid(v, &m->source_dwg);
			break;
		case 5: ok = guid(v, &m->dest_dwg); break;
		default: ok = guid(v, &m->page83); break;
		}
		if (!ok)
			return scm_fail(ret_err, -EINVAL, "correspondence record line %u: bad %s \"%.80s\"", i + 2, keys[i], v);
	}
	return 0;
}

static int extent(const char *l, const struct vmap *m, struct vmap_extent *e, uint64_t prev_end, unsigned no,
		  scm_error **ret_err)
{
	char f[5][80];
	size_t n = 0;
	for (const char *s = l; *s && n < 5; n++) {
		const char *sp = strchr(s, ' ');
		size_t k = sp ? (size_t)(sp - s) : strlen(s);
		if (k == 0 || k >= sizeof f[0] || (n == 4 && sp))
			return scm_fail(ret_err, -EINVAL, "correspondence record line %u: expected \"SRC DST LEN data|zero SHA256\"", no);
		memcpy(f[n], s, k);
		f[n][k] = 0;
		s = sp ? sp + 1 : s + k;
		if (sp && !*s)
			return scm_fail(ret_err, -EINVAL, "correspondence record line %u: a trailing space", no);
	}
	bool zero = !strcmp(f[3], "zero");
	if (n != 5 || !number(f[0], &e->src) || !number(f[1], &e->dst) || !number(f[2], &e->len) ||
	    (!zero && strcmp(f[3], "data")) || strlen(f[4]) != 64)
		return scm_fail(ret_err, -EINVAL, "correspondence record line %u: expected \"SRC DST LEN data|zero SHA256\"", no);
	for (int k = 0; k < 32; k++) {
		int hi = hexval(f[4][2 * k]), lo = hexval(f[4][2 * k + 1]);
		if (hi < 0 || lo < 0)
			return scm_fail(ret_err, -EINVAL, "correspondence record line %u: the hash is not 64 lower-case hex digits", no);
		e->hash[k] = (uint8_t)(hi << 4 | lo);
	}
	e->zero = zero;
	if (!e->len || e->len > m->chunk || e->dst % m->chunk || e->src % m->chunk || e->dst < prev_end ||
	    e->dst > m->virtual_size - e->len || e->src > m->virtual_size - e->len ||
	    (e->len < m->chunk && e->dst + e->len != m->virtual_size))
		return scm_fail(ret_err, -EINVAL,
				"correspondence record line %u: extent %" PRIu64 "+%" PRIu64 " -> %" PRIu64
				" is not a piece of the disk in order",
				no, e->src, e->len, e->dst);
	return 0;
}

int vmap_parse(const char *buf, size_t len, struct vmap *ret, scm_error **ret_err)
{
	const char *p = buf, *end = buf + len;
	char *l = malloc(LINE_MAX_LEN);
	int r;
	memset(ret, 0, sizeof *ret);
	if (!l)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	if ((r = header(&p, end, ret, l, ret_err)) < 0)
		goto fail;
	if (len > vmap_max_size(ret->virtual_size, ret->chunk)) {
		r = scm_fail(ret_err, -EINVAL, "correspondence record: %zu bytes, more than one of this disk takes", len);
		goto fail;
	}
	size_t cap = 0;
	uint64_t prev_end = 0;
	for (unsigned no = 9;; no++) {
		const char *at = p;
		if ((r = line(&p, end, l, no, ret_err)) < 0)
			goto fail;
		const char *v = value(l, "end");
		if (v) {
			uint32_t crc = vhdx_crc32c(0, buf, (size_t)(at - buf));
			char want[16];
			snprintf(want, sizeof want, "%08" PRIx32, crc);
			if (strcmp(v, want)) {
				r = scm_fail(ret_err, -EINVAL, "correspondence record line %u: checksum \"%.16s\", the lines above sum to %s",
					     no, v, want);
				goto fail;
			}
			if (p != end) {
				r = scm_fail(ret_err, -EINVAL, "correspondence record: %zu bytes after the end line", (size_t)(end - p));
				goto fail;
			}
			free(l);
			return 0;
		}
		if (ret->n == cap) {
			size_t nc = cap ? 2 * cap : 64;
			struct vmap_extent *ne = realloc(ret->ext, nc * sizeof *ne);
			if (!ne) {
				r = scm_fail(ret_err, -ENOMEM, "out of memory");
				goto fail;
			}
			ret->ext = ne;
			cap = nc;
		}
		if ((r = extent(l, ret, &ret->ext[ret->n], prev_end, no, ret_err)) < 0)
			goto fail;
		prev_end = ret->ext[ret->n].dst + ret->ext[ret->n].len;
		ret->n++;
	}
fail:
	free(l);
	vmap_clear(ret);
	return r;
}
