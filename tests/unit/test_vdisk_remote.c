/* test_vdisk_remote.c: remote parents in the engine (vhdx-remote.c) and
 * the NBD URI parser (nbd-uri.c). The engine's side runs with a reader
 * over memory handed in through the host opener (the engine only calls
 * it; libnbd is nbd-parent.c's, driven by tests/bats/vdisk-remote.bats):
 * reads come from it, a read-write child keeps them (copy-on-read) without
 * renewing DataWriteGuid, a read-only one does not, a failed fetch
 * returns no data and says why, the no-wait path never calls it, an open
 * with VHDX_O_NO_REMOTE does not connect, and a stream's end (detach) lets
 * it go. The parser's side is a table. */
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

#include "nbd-uri.h"
#include "vhdx.h"

#define MiB (1u << 20)
#define SIZE (8 * MiB)

static uint8_t parent_data[SIZE];
static int fetches, fail_next, closed, opens;

static int mem_pread(void *ud, void *buf, uint64_t len, uint64_t off, scm_error **ret_err)
{
	(void)ud;
	if (fail_next) {
		fail_next = 0;
		return scm_fail(ret_err, -EHOSTDOWN, "test export gone");
	}
	fetches++;
	memcpy(buf, parent_data + off, len);
	return 0;
}

static void mem_close(void *ud)
{
	(void)ud;
	closed++;
}

static int mem_open(const char *uri, void *userdata, struct vhdx_remote *ret, scm_error **ret_err)
{
	(void)userdata;
	opens++;
	if (strcmp(uri, "nbd://test:10809/p"))
		return scm_fail(ret_err, -EACCES, "%s: not the test export", uri);
	*ret = (struct vhdx_remote){ .pread = mem_pread, .close = mem_close, .size = SIZE, .uri = strdup(uri) };
	return ret->uri ? 0 : -ENOMEM;
}

static void test_engine(void **state)
{
	(void)state;
	char dir[] = "/tmp/vdisk-remote-XXXXXX"; /* mkdtemp's template */
	for (size_t i = 0; i < SIZE; i++)
		parent_data[i] = (uint8_t)(i * 7 + i / 4096);
	assert_non_null(mkdtemp(dir));
	char child[64];
	snprintf(child, sizeof child, "%s/c.vhdx", dir);
	scm_error *e = NULL;
	struct vhdx_create_opts o = { .parent = "nbd://test:10809/p", .block_size = MiB };
	/* no opener: refused, saying so */
	vhdx_set_remote_opener(NULL, NULL);
	assert_int_equal(vhdx_create(child, &o, &e), -EACCES);
	char *txt = scm_error_text(e);
	assert_non_null(strstr(txt, "remote"));
	free(txt);
	scm_error_free(e);
	e = NULL;
	vhdx_set_remote_opener(mem_open, NULL);
	assert_true(vhdx_parent_is_remote(o.parent));
	assert_false(vhdx_parent_is_remote("/srv/nbd://x"));
	assert_int_equal(vhdx_create(child, &o, &e), 0);

	/* read-only: read through, nothing kept */
	vhdx *h;
	assert_int_equal(vhdx_open(child, VHDX_O_RDONLY, &h, &e), 0);
	struct vhdx_info in;
	assert_int_equal(vhdx_get_info(h, &in), 0);
	assert_string_equal(in.remote_parent, "nbd://test:10809/p");
	assert_int_equal(in.chain_len, 2);
	uint8_t *buf = malloc(SIZE);
	assert_non_null(buf);
	assert_int_equal(vhdx_read(h, buf, 4096, 3 * MiB), 0);
	assert_memory_equal(buf, parent_data + 3 * MiB, 4096);
	uint64_t local;
	assert_int_equal(vhdx_local_bytes(h, &local), 0);
	assert_int_equal(local, 0);
	/* the loop's no-wait read never reaches the network */
	int before = fetches;
	assert_int_equal(vhdx_read_nowait(h, buf, 4096, 0), -EAGAIN);
	assert_int_equal(fetches, before);
	vhdx_close(h);
	assert_int_equal(closed, 2); /* create's connection, and this one */

	/* VHDX_O_NO_REMOTE (the provider's probe): the opener is not
	 * called, the URI is named, reads of the parent's part are refused */
	int o0 = opens;
	assert_int_equal(vhdx_open(child, VHDX_O_RDONLY | VHDX_O_NO_REMOTE, &h, &e), 0);
	assert_int_equal(opens, o0);
	assert_string_equal(vhdx_remote_named(h), "nbd://test:10809/p");
	assert_null(vhdx_remote_uri(h));
	assert_int_equal(vhdx_read(h, buf, 4096, 0), -ENXIO);
	vhdx_close(h);
	assert_int_equal(closed, 2);

	/* read-write: a fetched range is kept; DataWriteGuid stays */
	assert_int_equal(vhdx_open(child, 0, &h, &e), 0);
	assert_int_equal(vhdx_get_info(h, &in), 0);
	vhdx_guid dwg = in.data_write_guid;
	assert_int_equal(vhdx_read(h, buf, 64 << 10, 5 * MiB), 0);
	assert_memory_equal(buf, parent_data + 5 * MiB, 64 << 10);
	assert_int_equal(vhdx_local_bytes(h, &local), 0);
	assert_int_equal(local, 64 << 10);
	before = fetches;
	assert_int_equal(vhdx_read(h, buf, 64 << 10, 5 * MiB), 0);
	assert_int_equal(fetches, before); /* from the child now */
	/* a failed fetch: no data, the reason in the handle */
	memset(buf, 0x5a, 4096);
	fail_next = 1;
	assert_int_equal(vhdx_read(h, buf, 4096, 7 * MiB), -EHOSTDOWN);
	assert_non_null(strstr(vhdx_errmsg(h), "test export gone"));
	assert_int_equal(vhdx_local_bytes(h, &local), 0);
	assert_int_equal(local, 64 << 10);
	/* the whole disk, then the child stands alone */
	assert_int_equal(vhdx_read(h, buf, SIZE, 0), 0);
	assert_memory_equal(buf, parent_data, SIZE);
	assert_int_equal(vhdx_local_bytes(h, &local), 0);
	assert_int_equal(local, SIZE);
	assert_int_equal(vhdx_get_info(h, &in), 0);
	assert_memory_equal(&in.data_write_guid, &dwg, sizeof dwg);
	assert_int_equal(vhdx_detach_parent(h), 0);
	assert_null(vhdx_remote_uri(h));
	assert_int_equal(vhdx_close_checked(h), 0);
	assert_int_equal(closed, 3);

	/* no opener needed any more */
	vhdx_set_remote_opener(NULL, NULL);
	assert_int_equal(vhdx_open(child, VHDX_O_RDONLY, &h, &e), 0);
	memset(buf, 0, SIZE);
	assert_int_equal(vhdx_read(h, buf, SIZE, 0), 0);
	assert_memory_equal(buf, parent_data, SIZE);
	vhdx_close(h);
	free(buf);
	unlink(child);
	rmdir(dir);
}

static void test_uri(void **state)
{
	(void)state;
	static const struct {
		const char *in, *canon; /* canon NULL: refused */
	} t[] = {
		{ "nbd://Example.COM/exp", "nbd://example.com:10809/exp" },
		{ "nbd://h:1/", "nbd://h:1/" },
		{ "nbd://h", "nbd://h:10809/" },
		{ "nbd://[::1]:7/a%20b", "nbd://[::1]:7/a%20b" },
		{ "nbd://h//x", "nbd://h:10809//x" },
		{ "nbd+unix:///d?socket=/run/n.sock", "nbd+unix:///d?socket=/run/n.sock" },
		{ "nbd+unix:///?socket=/a%2Fb", "nbd+unix:///?socket=/a/b" },
		{ "nbd+unix:///x%3Fy?socket=/s", "nbd+unix:///x%3Fy?socket=/s" },
		{ "nbd+unix:///x?socket=/a/../b", NULL },
		{ "nbd+unix:///x?socket=/a//b", NULL },
		{ "nbd+unix:///x?socket=a", NULL },
		{ "nbd+unix:///x?socket=/a/", NULL },
		{ "nbd+unix:///x?socket=/a&socket=/b", NULL },
		{ "nbd+unix://h/x?socket=/a", NULL },
		{ "nbd+unix:///x", NULL },
		{ "nbd://h/x?socket=/a", NULL },
		{ "nbd://u@h/x", NULL },
		{ "nbd://h/x#f", NULL },
		{ "nbd://h:0/x", NULL },
		{ "nbd://h:65536/x", NULL },
		{ "nbd://h:/x", NULL },
		{ "nbd:///x", NULL },
		{ "nbd://h/%00", NULL },
		{ "nbd://h/%4", NULL },
		{ "nbd://h x/", NULL },
		{ "nbd://h_x/", NULL },
		{ "nbds://H:99/x", "nbds://h:99/x" },
		{ "nbds://[::1]/x", "nbds://[::1]:10809/x" },
		{ "nbds+unix:///x?socket=/s", "nbds+unix:///x?socket=/s" },
		{ "nbds://h/x?tls-psk-file=/k", NULL },
		{ "nbds+unix:///x?socket=/s&tls-certificates=/c", NULL },
		{ "nbds+unix://h/x?socket=/s", NULL },
		{ "nbdsx://h/x", NULL },
		{ "nbd+tls://h/x", NULL },
		{ "http://h/x", NULL },
		{ "nbd://[::1/x", NULL },
		{ "nbd://[zz]/x", NULL },
	};
	for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
		struct nbd_uri u;
		scm_error *e = NULL;
		int r = nbd_uri_parse(t[i].in, &u, &e);
		if (!t[i].canon) {
			if (r == 0)
				fail_msg("%s: accepted", t[i].in);
			char *txt = scm_error_text(e);
			assert_non_null(txt);
			assert_non_null(strstr(txt, "NBD URI"));
			free(txt);
			scm_error_free(e);
			continue;
		}
		if (r < 0)
			fail_msg("%s: refused", t[i].in);
		char *c = nbd_uri_format(&u);
		assert_non_null(c);
		if (strcmp(c, t[i].canon))
			fail_msg("%s: %s, not %s", t[i].in, c, t[i].canon);
		free(c);
		nbd_uri_clear(&u);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_engine),
		cmocka_unit_test(test_uri),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
