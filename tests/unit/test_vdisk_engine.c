/* test_vdisk_engine.c: unit tests of the VHDX engine's I/O: block state
 * transitions, sector bitmaps in differencing disks, trim, 512/4096-byte
 * sectors across block sizes (table-driven), and the refusals. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vhdx-internal.h"

/* The last failure's chain on one line (err is reset before each call). */
#define FRESH(e) (scm_error_free(e), (e) = NULL, &(e))
static const char *msg_of(const scm_error *e)
{
	static char *t;
	free(t);
	t = scm_error_text(e);
	return t ? t : "";
}

static char dir[] = "/tmp/vdisk-unit-XXXXXX";

static char *path_of(const char *name)
{
	static char p[4][128];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd);
}

static vhdx *make(const char *name, uint64_t size, uint32_t bs, uint32_t lsec, const char *parent)
{
	struct vhdx_create_opts o = { .size = size, .block_size = bs, .sector_size = lsec, .parent = parent };
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	vhdx *h = NULL;
	unlink(path_of(name));
	if (vhdx_create(path_of(name), &o, FRESH(err)) < 0)
		fail_msg("create: %s", msg_of(err));
	if (vhdx_open(path_of(name), 0, &h, FRESH(err)) < 0)
		fail_msg("open: %s", msg_of(err));
	return h;
}

static unsigned state_of(vhdx *h, uint64_t block)
{
	return BAT_STATE(h->bat[vhdx_bat_index(h, block)]);
}

static void fill(uint8_t *b, size_t n, uint32_t seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

struct geo {
	uint32_t bs, lsec;
	uint64_t size;
};

/* Round trip across block sizes and both sector sizes, including a write
 * that spans a block boundary and the last sector of the disk. */
static void test_geometries(void **state)
{
	(void)state;
	static const struct geo table[] = {
		{ 1 * MiB, 512, 8 * MiB },    { 1 * MiB, 4096, 8 * MiB },    { 2 * MiB, 512, 7 * MiB + 512 },
		{ 32 * MiB, 512, 100 * MiB }, { 32 * MiB, 4096, 64 * MiB },  { 256 * MiB, 512, 300 * MiB },
		{ 256 * MiB, 4096, 256 * MiB },
	};
	size_t n = 3 * MiB;
	uint8_t *a = malloc(n + 4096), *b = malloc(n + 4096);
	for (size_t t = 0; t < ELEMENTSOF(table); t++) {
		const struct geo *g = &table[t];
		vhdx *h = make("g.vhdx", g->size, g->bs, g->lsec, NULL);
		assert_int_equal(h->chunk_ratio, (1ull << 23) * g->lsec / g->bs);
		uint64_t off = g->bs - g->lsec; /* crosses into block 1 */
		if (g->size <= g->bs)
			off = 8 * g->lsec; /* one block only: stay clear of the last sector */
		size_t len = (size_t)(g->size - off - g->lsec < n ? g->size - off - g->lsec : n) / g->lsec * g->lsec;
		fill(a, len, (uint32_t)t);
		assert_int_equal(vhdx_write(h, a, len, off), 0);
		fill(a + len, g->lsec, 99);
		assert_int_equal(vhdx_write(h, a + len, g->lsec, g->size - g->lsec), 0);
		assert_int_equal(vhdx_close_checked(h), 0);
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		assert_int_equal(vhdx_open(path_of("g.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), 0);
		assert_int_equal(vhdx_read(h, b, len, off), 0);
		assert_memory_equal(a, b, len);
		assert_int_equal(vhdx_read(h, b, g->lsec, g->size - g->lsec), 0);
		assert_memory_equal(a + len, b, g->lsec);
		/* an unwritten sector reads as zeros */
		if (off >= g->lsec) {
			assert_int_equal(vhdx_read(h, b, g->lsec, 0), 0);
			for (uint32_t i = 0; i < g->lsec; i++)
				assert_int_equal(b[i], 0);
		}
		struct vhdx_info in;
		vhdx_get_info(h, &in);
		assert_int_equal(in.logical_sector_size, g->lsec);
		assert_int_equal(in.block_size, g->bs);
		vhdx_close(h);
	}
	free(a);
	free(b);
}

static void test_block_states(void **state)
{
	(void)state;
	vhdx *h = make("s.vhdx", 8 * MiB, MiB, 512, NULL);
	uint8_t buf[4096];
	memset(buf, 0x5a, sizeof buf);
	assert_int_equal(state_of(h, 2), VHDX_PB_NOT_PRESENT);
	assert_int_equal(vhdx_write(h, buf, sizeof buf, 2 * MiB + 8192), 0);
	assert_int_equal(state_of(h, 2), VHDX_PB_FULLY_PRESENT);
	assert_true(h->n_dirty > 0);
	assert_int_equal(vhdx_flush(h), 0);
	assert_int_equal(h->n_dirty, 0);
	/* partial trim keeps the block, punches the range: it reads zero */
	assert_int_equal(vhdx_trim(h, 4096, 2 * MiB + 8192), 0);
	assert_int_equal(state_of(h, 2), VHDX_PB_FULLY_PRESENT);
	assert_int_equal(vhdx_read(h, buf, 4096, 2 * MiB + 8192), 0);
	for (size_t i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0);
	/* whole-block trim: UNMAPPED, no file offset, reads zero */
	memset(buf, 0x5a, sizeof buf);
	assert_int_equal(vhdx_write(h, buf, sizeof buf, 3 * MiB), 0);
	assert_int_equal(vhdx_trim(h, 2 * MiB, 2 * MiB), 0);
	assert_int_equal(state_of(h, 2), VHDX_PB_UNMAPPED);
	assert_int_equal(state_of(h, 3), VHDX_PB_UNMAPPED);
	assert_int_equal(BAT_OFF(h->bat[vhdx_bat_index(h, 3)]), 0);
	assert_int_equal(vhdx_read(h, buf, 4096, 3 * MiB), 0);
	assert_int_equal(buf[0], 0);
	/* trimming a block that was never written leaves it NOT_PRESENT */
	assert_int_equal(vhdx_trim(h, MiB, 5 * MiB), 0);
	assert_int_equal(state_of(h, 5), VHDX_PB_NOT_PRESENT);
	/* writing an unmapped block allocates it again */
	assert_int_equal(vhdx_write(h, buf, 512, 3 * MiB + 512), 0);
	assert_int_equal(state_of(h, 3), VHDX_PB_FULLY_PRESENT);
	assert_int_equal(vhdx_close_checked(h), 0);
	/* and the states survived a close/open through the log */
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	assert_int_equal(vhdx_open(path_of("s.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), 0);
	assert_int_equal(state_of(h, 2), VHDX_PB_UNMAPPED);
	assert_int_equal(state_of(h, 3), VHDX_PB_FULLY_PRESENT);
	assert_true(vhdx_guid_is_zero(&h->hdr.log_guid));
	vhdx_close(h);
}

static void test_trim_releases_space(void **state)
{
	(void)state;
	vhdx *h = make("t.vhdx", 16 * MiB, MiB, 512, NULL);
	uint8_t *buf = malloc(16 * MiB);
	fill(buf, 16 * MiB, 7);
	assert_int_equal(vhdx_write(h, buf, 16 * MiB, 0), 0);
	assert_int_equal(vhdx_flush(h), 0);
	struct stat st;
	stat(path_of("t.vhdx"), &st);
	uint64_t before = (uint64_t)st.st_blocks * 512;
	assert_int_equal(vhdx_trim(h, 16 * MiB, 0), 0);
	assert_int_equal(vhdx_close_checked(h), 0);
	stat(path_of("t.vhdx"), &st);
	uint64_t after = (uint64_t)st.st_blocks * 512;
	assert_true(before >= 16 * MiB);
	assert_true(after + 15 * MiB <= before);
	free(buf);
}

static void test_sector_bitmap(void **state)
{
	(void)state;
	vhdx *p = make("p.vhdx", 8 * MiB, MiB, 512, NULL);
	uint8_t *pat = malloc(8 * MiB), buf[8192];
	fill(pat, 8 * MiB, 3);
	assert_int_equal(vhdx_write(p, pat, 8 * MiB, 0), 0);
	assert_int_equal(vhdx_close_checked(p), 0);
	vhdx *c = make("c.vhdx", 0, MiB, 0, path_of("p.vhdx"));
	assert_true(c->has_parent);
	assert_int_equal(state_of(c, 1), VHDX_PB_NOT_PRESENT);
	/* sectors 2049 and 2051 of the disk (block 1): bits 2049, 2051 */
	uint8_t one[512];
	memset(one, 0xee, sizeof one);
	assert_int_equal(vhdx_write(c, one, 512, 2049 * 512), 0);
	assert_int_equal(vhdx_write(c, one, 512, 2051 * 512), 0);
	assert_int_equal(state_of(c, 1), VHDX_PB_PARTIALLY_PRESENT);
	uint8_t *bm;
	assert_int_equal(vhdx_bitmap_get(c, 0, &bm), 0);
	assert_int_equal(bm[2048 / 8], 0x0a); /* bits 1 and 3 of that byte */
	assert_int_equal(vhdx_read(c, buf, 2048, 2048 * 512), 0);
	assert_memory_equal(buf, pat + 2048 * 512, 512);        /* parent */
	assert_memory_equal(buf + 512, one, 512);                /* child */
	assert_memory_equal(buf + 1024, pat + 2050 * 512, 512); /* parent */
	assert_memory_equal(buf + 1536, one, 512);               /* child */
	/* trim of a whole child block falls back to the parent */
	assert_int_equal(vhdx_trim(c, MiB, MiB), 0);
	assert_int_equal(state_of(c, 1), VHDX_PB_UNMAPPED);
	assert_int_equal(vhdx_read(c, buf, 512, 2049 * 512), 0);
	assert_memory_equal(buf, pat + 2049 * 512, 512);
	assert_int_equal(vhdx_close_checked(c), 0);
	free(pat);
}

static void test_refusals(void **state)
{
	(void)state;
	vhdx *h = make("r.vhdx", 4 * MiB, MiB, 4096, NULL);
	uint8_t buf[8192] = { 0 };
	assert_int_equal(vhdx_write(h, buf, 512, 0), -EINVAL);
	assert_non_null(strstr(vhdx_errmsg(h), "4096-byte sector"));
	assert_int_equal(vhdx_write(h, buf, 4096, 4 * MiB), -EINVAL);
	assert_non_null(strstr(vhdx_errmsg(h), "past the end"));
	assert_int_equal(vhdx_read(h, buf, 8192, 4 * MiB - 4096), -EINVAL);
	/* a second writer is refused while the first holds the disk */
	vhdx *h2 = NULL;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	assert_int_equal(vhdx_open(path_of("r.vhdx"), 0, &h2, FRESH(err)), -EBUSY);
	assert_null(h2);
	/* and so is a reader (qemu's rules: a writer does not share write),
	 * unless it forces sharing, as qemu-img -U */
	assert_int_equal(vhdx_open(path_of("r.vhdx"), VHDX_O_RDONLY, &h2, FRESH(err)), -EBUSY);
	assert_non_null(strstr(msg_of(err), "failed to get shared \"write\" lock"));
	assert_int_equal(vhdx_open(path_of("r.vhdx"), VHDX_O_FORCE_SHARE, &h2, FRESH(err)), -EINVAL);
	assert_int_equal(vhdx_open(path_of("r.vhdx"), VHDX_O_RDONLY | VHDX_O_FORCE_SHARE, &h2, FRESH(err)), 0);
	assert_int_equal(vhdx_write(h2, buf, 4096, 0), -EROFS);
	vhdx_close(h2);
	vhdx_close(h);
	struct vhdx_create_opts bad[] = {
		{ .size = 0 },
		{ .size = 4 * MiB, .block_size = 3 * MiB },
		{ .size = 4 * MiB, .block_size = 512 * MiB },
		{ .size = 4 * MiB + 512, .sector_size = 4096 },
		{ .size = 4 * MiB, .sector_size = 1024 },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		assert_int_equal(vhdx_create(path_of("bad.vhdx"), &bad[i], FRESH(err)), -EINVAL);
		assert_int_equal(access(path_of("bad.vhdx"), F_OK), -1);
	}
}

/* vhdx_write_fd: bytes from a file land as vhdx_write would put them
 * (across a block boundary, over a written block, into fresh ones), and
 * vhdx_extent_file says where they lie; a differencing disk refuses it. */
static void test_write_fd(void **state)
{
	(void)state;
	vhdx *h = make("w.vhdx", 8 * MiB, MiB, 512, NULL);
	uint8_t *src = malloc(3 * MiB), *got = malloc(3 * MiB);
	fill(src, 3 * MiB, 11);
	int fd = open(path_of("w.src"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, src, 3 * MiB, 0), (ssize_t)(3 * MiB));
	assert_int_equal(vhdx_write(h, src, 4096, MiB), 0); /* a block already there */
	assert_int_equal(vhdx_write_fd(h, fd, 512, 3 * MiB - 512, MiB - 4096), 0);
	assert_int_equal(vhdx_read(h, got, 3 * MiB - 512, MiB - 4096), 0);
	assert_memory_equal(got, src + 512, 3 * MiB - 512);
	uint64_t n, fo;
	int kind;
	assert_int_equal(vhdx_extent_file(h, MiB, 4096, &n, &kind, &fo), 0);
	assert_int_equal(kind, VHDX_EXT_HERE);
	uint8_t sec[512];
	assert_int_equal(pread(vhdx_fd(h), sec, 512, (off_t)fo), 512);
	assert_memory_equal(sec, src + 512 + 4096, 512);
	assert_int_equal(vhdx_extent_file(h, 6 * MiB, MiB, &n, &kind, &fo), 0);
	assert_int_equal(kind, VHDX_EXT_ZERO);
	assert_int_equal(vhdx_close_checked(h), 0);
	/* reopened: the metadata went through the log like any write */
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	assert_int_equal(vhdx_open(path_of("w.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), 0);
	assert_int_equal(vhdx_read(h, got, 3 * MiB - 512, MiB - 4096), 0);
	assert_memory_equal(got, src + 512, 3 * MiB - 512);
	vhdx_close(h);
	vhdx *c = make("wc.vhdx", 0, 0, 0, path_of("w.vhdx"));
	assert_int_equal(vhdx_write_fd(c, fd, 0, 4096, 0), -EOPNOTSUPP);
	vhdx_close(c);
	close(fd);
	free(src);
	free(got);
}

/* vhdx_reserve + vhdx_adopt: space filled out of sight becomes the disk's
 * blocks only when adopted (the old block's space punched); refusals. */
static void test_reserve_adopt(void **state)
{
	(void)state;
	vhdx *h = make("r.vhdx", 8 * MiB, MiB, 512, NULL);
	uint8_t *old = malloc(2 * MiB), *nw = malloc(2 * MiB), *got = malloc(2 * MiB);
	fill(old, 2 * MiB, 3);
	fill(nw, 2 * MiB, 4);
	assert_int_equal(vhdx_write(h, old, 2 * MiB, 2 * MiB), 0);
	uint64_t foff;
	assert_int_equal(vhdx_reserve(h, 2 * MiB, &foff), 0);
	assert_int_equal(pwrite(vhdx_fd(h), nw, 2 * MiB, (off_t)foff), (ssize_t)(2 * MiB));
	assert_int_equal(vhdx_read(h, got, 2 * MiB, 2 * MiB), 0);
	assert_memory_equal(got, old, 2 * MiB); /* not seen before it is adopted */
	assert_int_equal(vhdx_adopt(h, 2 * MiB, 2 * MiB, foff + MiB), -EINVAL); /* past the reserved space */
	assert_int_equal(vhdx_adopt(h, 2 * MiB + 512, MiB, foff), -EINVAL); /* not whole blocks */
	assert_int_equal(vhdx_adopt(h, 2 * MiB, 2 * MiB, foff), 0);
	assert_int_equal(vhdx_read(h, got, 2 * MiB, 2 * MiB), 0);
	assert_memory_equal(got, nw, 2 * MiB);
	assert_int_equal(vhdx_close_checked(h), 0);
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	assert_int_equal(vhdx_open(path_of("r.vhdx"), VHDX_O_RDONLY, &h, FRESH(err)), 0);
	assert_int_equal(vhdx_read(h, got, 2 * MiB, 2 * MiB), 0);
	assert_memory_equal(got, nw, 2 * MiB);
	vhdx_close(h);
	free(old);
	free(nw);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_geometries),      cmocka_unit_test(test_block_states),
		cmocka_unit_test(test_trim_releases_space), cmocka_unit_test(test_sector_bitmap),
		cmocka_unit_test(test_refusals),        cmocka_unit_test(test_write_fd),
		cmocka_unit_test(test_reserve_adopt),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
