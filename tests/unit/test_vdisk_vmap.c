/* test_vdisk_vmap.c: the live migration's correspondence record (vmap.c):
 * a round trip, a table of damaged records each refused with the line at
 * fault; and vhdx_set_parent, which re-parents a child onto a copy of its
 * parent that kept the parent's DataWriteGuid. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scm/macro.h"
#include "vhdx.h"
#include "vmap.h"

#define MiB (1024ull * 1024)

static char *sample(size_t *ret_len)
{
	struct vmap m = { .virtual_size = 3 * MiB + 4096, .chunk = MiB, .source_dwg_set = true };
	strcpy(m.source, "/srv/disks/a.vhdx");
	strcpy(m.dest, "/srv/fast/a.vhdx");
	vhdx_guid_parse("{11111111-2222-3333-4444-555555555555}", &m.source_dwg);
	vhdx_guid_parse("{AAAAAAAA-2222-3333-4444-555555555555}", &m.dest_dwg);
	vhdx_guid_parse("{BBBBBBBB-2222-3333-4444-555555555555}", &m.page83);
	struct vmap_extent ext[3] = {
		{ .src = 0, .dst = 0, .len = MiB, .hash = { 1, 2, 3 } },
		{ .src = 2 * MiB, .dst = 2 * MiB, .len = MiB, .zero = true, .hash = { 0xfe } },
		{ .src = 3 * MiB, .dst = 3 * MiB, .len = 4096, .hash = { 0xab } },
	};
	m.ext = ext;
	m.n = 3;
	char *t = NULL;
	assert_int_equal(vmap_format(&m, &t, ret_len), 0);
	return t;
}

static void test_round_trip(void **state)
{
	size_t n;
	_cleanup_free_ char *t = sample(&n);
	struct vmap m;
	_cleanup_(scm_error_freep) scm_error *e = NULL;
	assert_int_equal(vmap_parse(t, n, &m, &e), 0);
	assert_string_equal(m.source, "/srv/disks/a.vhdx");
	assert_int_equal(m.n, 3);
	assert_true(m.ext[1].zero);
	assert_int_equal(m.ext[2].len, 4096);
	assert_int_equal(m.ext[0].hash[2], 3);
	char *back = NULL;
	size_t bn;
	assert_int_equal(vmap_format(&m, &back, &bn), 0);
	assert_int_equal(bn, n);
	assert_memory_equal(back, t, n);
	free(back);
	vmap_clear(&m);
	assert_non_null(strstr(t, "\nsource_data_write_guid {11111111-2222-3333-4444-555555555555}\n"));
}

/* Each row: text replaced in the sample (the CRC line is then made right
 * again unless the row is about it), and what the refusal names. */
static void test_refused(void **state)
{
	static const struct {
		const char *from, *to, *why;
		bool keep_crc;
	} rows[] = {
		{ "scm-vdisk-map 1", "scm-vdisk-map 2", "version 2, this provider reads version 1", false },
		{ "scm-vdisk-map 1", "scm-vdisk-map 01", "line 1", false },
		{ "\nchunk 1048576", "\nchunk 1000000", "line 5: bad chunk", false },
		{ "\nvirtual_size 3149824", "\nvirtual_size 0", "line 4: bad virtual_size", false },
		{ "{AAAAAAAA-2222", "{aaaaaaaa-2222", "line 7: bad data_write_guid", false },
		{ "\ndest ", "\ndst ", "line 3: expected \"dest VALUE\"", false },
		{ "\n0 0 1048576 data", "\n0 0 1048576 both", "line 9", false },
		{ "\n0 0 1048576 data", "\n0 0 2097152 data", "is not a piece of the disk in order", false },
		{ "\n2097152 2097152 1048576 zero", "\n0 0 1048576 zero", "is not a piece of the disk in order", false },
		{ "\n3145728 3145728 4096", "\n3145728 3145728 8192", "is not a piece of the disk in order", false },
		{ "0102030000", "0102030OO0", "64 lower-case hex digits", false },
		{ "\nend ", "\nend 0", "checksum", true },
		{ "\nend ", "\nfin ", "expected \"SRC DST LEN", false },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t n;
		_cleanup_free_ char *t = sample(&n);
		char buf[8192];
		char *at = strstr(t, rows[i].from);
		assert_non_null(at);
		assert_true(n < sizeof buf / 2);
		memcpy(buf, t, (size_t)(at - t));
		strcpy(buf + (at - t), rows[i].to);
		strcat(buf, at + strlen(rows[i].from));
		int k = (int)strlen(buf);
		if (!rows[i].keep_crc) { /* the CRC of the new text, so the row's own fault is found */
			char *end = strstr(buf, "\nend ");
			if (end) {
				end++;
				k = (int)(end - buf) + snprintf(end, sizeof buf - (size_t)(end - buf), "end %08x\n",
								vhdx_crc32c(0, buf, (size_t)(end - buf)));
			}
		}
		struct vmap m;
		_cleanup_(scm_error_freep) scm_error *e = NULL;
		int r = vmap_parse(buf, (size_t)k, &m, &e);
		print_message("row %zu: %d %s\n", i, r, e ? e->message : "");
		assert_true(r < 0);
		assert_non_null(e);
		assert_non_null(strstr(e->message, rows[i].why));
	}
	/* bytes after the end line */
	size_t n;
	_cleanup_free_ char *t = sample(&n);
	char buf[8192];
	assert_true(n < sizeof buf - 2);
	memcpy(buf, t, n);
	buf[n] = 'x';
	struct vmap m;
	_cleanup_(scm_error_freep) scm_error *e = NULL;
	assert_int_equal(vmap_parse(buf, n + 1, &m, &e), -EINVAL);
	assert_non_null(strstr(e->message, "after the end line"));
}

static void test_set_parent(void **state)
{
	char dir[] = "/tmp/vdisk-vmap-XXXXXX", base[64], copy[64], child[64], buf[4096];
	assert_non_null(mkdtemp(dir));
	snprintf(base, sizeof base, "%s/base.vhdx", dir);
	snprintf(copy, sizeof copy, "%s/copy.vhdx", dir);
	snprintf(child, sizeof child, "%s/child.vhdx", dir);
	_cleanup_(scm_error_freep) scm_error *e = NULL;
	struct vhdx_create_opts o = { .size = 4 * MiB, .block_size = MiB };
	assert_int_equal(vhdx_create(base, &o, &e), 0);
	struct vhdx_info in;
	vhdx *h;
	assert_int_equal(vhdx_open(base, VHDX_O_RDONLY, &h, &e), 0);
	vhdx_get_info(h, &in);
	vhdx_close(h);
	/* the copy keeps the base's DataWriteGuid (as a migration's does) */
	struct vhdx_create_opts oc = { .size = 4 * MiB, .block_size = MiB, .data_write_guid = &in.data_write_guid };
	assert_int_equal(vhdx_create(copy, &oc, &e), 0);
	struct vhdx_create_opts ok = { .parent = base };
	assert_int_equal(vhdx_create(child, &ok, &e), 0);
	assert_int_equal(vhdx_open(child, 0, &h, &e), 0);
	memset(buf, 0x5a, sizeof buf);
	assert_int_equal(vhdx_write(h, buf, sizeof buf, 0), 0);
	/* not a differencing disk: refused */
	vhdx *b;
	assert_int_equal(vhdx_open(copy, 0, &b, &e), 0);
	assert_int_equal(vhdx_set_parent(b, base, &in.data_write_guid), -EINVAL);
	vhdx_close(b);
	assert_int_equal(vhdx_set_parent(h, copy, &in.data_write_guid), 0);
	assert_int_equal(vhdx_close_checked(h), 0);
	/* the child now opens onto the copy, even with the old parent gone */
	assert_int_equal(unlink(base), 0);
	assert_int_equal(vhdx_open(child, VHDX_O_RDONLY, &h, &e), 0);
	vhdx_get_info(h, &in);
	assert_int_equal(in.chain_len, 2);
	assert_non_null(strstr(in.chain[1], "copy.vhdx"));
	assert_string_equal(in.parent_relative_path, ".\\copy.vhdx");
	assert_int_equal(vhdx_read(h, buf, sizeof buf, 0), 0);
	assert_int_equal(buf[0], 0x5a);
	vhdx_close(h);
	unlink(copy);
	unlink(child);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_set_parent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
