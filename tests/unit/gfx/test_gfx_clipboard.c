/* test_gfx_clipboard.c: the desktop clipboard in the engine: the chords
 * are taken before routing (the focused app never sees the C or V), a
 * copy is asked of the focused app only and answered once, a paste is
 * granted only when both ends' rules allow the flow, fetched once, and
 * every decision leaves an audit record; the memfd checks. */
#include <fcntl.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "clipboard.h"

static char last_audit[2048];
static unsigned n_audit;
static void on_audit(void *ud, const char *json)
{
	snprintf(last_audit, sizeof(last_audit), "%s", json);
	n_audit++;
}

typedef struct fixture {
	gfx_server *s;
	gfx_clip *cb;
	gfx_client *a, *b, *c;
} fixture;

static void attach(gfx_clip *cb, gfx_client *c, const char *rules)
{
	json_object *j = rules ? json_tokener_parse(rules) : NULL;
	assert_int_equal(gfx_clip_attach(cb, c, j, NULL), 0);
	json_object_put(j);
}

/* A refusal pushed one observation: code, a message saying why, and the
 * where of the check that refused. Frees it. */
static void assert_refused(scm_error **err, int code, const char *text, const char *file)
{
	assert_non_null(*err);
	assert_int_equal((*err)->code, code);
	if (!strstr((*err)->message, text) || !strstr((*err)->where, file))
		fail_msg("got \"%s\" (%s), want \"%s\" from %s", (*err)->message, (*err)->where, text, file);
	assert_null((*err)->cause);
	*err = scm_error_free(*err);
}

#define A_TO_B "[{\"from\":\"a\",\"to\":\"b\",\"allow\":true,\"priority\":1,\"origin\":\"ab\"}]"

static bool hook_key(void *ud, bool down, uint32_t keysym)
{
	return gfx_clip_key(ud, down, keysym);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	gfx_server_config cfg = { .width = 600, .height = 200 };
	assert_int_equal(gfx_server_new(&cfg, &f->s), 0);
	assert_int_equal(gfx_clip_new(f->s, on_audit, NULL, &f->cb), 0);
	gfx_server_hooks h = { hook_key, NULL, f->cb };
	gfx_server_set_hooks(f->s, &h);
	assert_int_equal(gfx_client_new(f->s, "a", 100, 100, 1, &f->a), 0);
	assert_int_equal(gfx_client_new(f->s, "b", 100, 100, 1, &f->b), 0);
	assert_int_equal(gfx_client_new(f->s, "c", 100, 100, 1, &f->c), 0);
	attach(f->cb, f->a, A_TO_B);
	attach(f->cb, f->b, A_TO_B);
	attach(f->cb, f->c, NULL); /* c's profiles say nothing: no flow */
	n_audit = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	gfx_clip_free(f->cb);
	gfx_server_free(f->s);
	free(f);
	return 0;
}

static void chord(gfx_server *s, uint32_t key)
{
	gfx_server_key(s, true, 0xffe3);
	gfx_server_key(s, true, 0xffe1);
	gfx_server_key(s, true, key);
	gfx_server_key(s, false, key);
	gfx_server_key(s, false, 0xffe1);
	gfx_server_key(s, false, 0xffe3);
}

/* The focused client's queue: the keys it saw and the clipboard ops. */
static void drain(gfx_client *c, unsigned *keys, unsigned *copies, unsigned *pastes)
{
	gfx_input_event ev[64];
	size_t n = gfx_client_take_input(c, ev, 64);
	*keys = *copies = *pastes = 0;
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == GFX_INPUT_KEY) {
			(*keys)++;
			assert_true(ev[i].keysym == 0xffe3 || ev[i].keysym == 0xffe1);
		} else if (ev[i].type == GFX_INPUT_CLIPBOARD) {
			*copies += ev[i].op == GFX_CLIP_OP_COPY;
			*pastes += ev[i].op == GFX_CLIP_OP_PASTE;
		}
	}
}

static void test_flow(void **state)
{
	fixture *f = *state;
	unsigned keys, copies, pastes;
	scm_error *err = NULL;
	const void *data;
	size_t len;
	/* unasked, a put is refused and leaves the clipboard empty */
	assert_int_equal(gfx_clip_put(f->cb, f->a, "x", 1, &err), GFX_E_INVALID);
	assert_refused(&err, GFX_E_INVALID, "no copy was asked of this app", "clipboard.c");
	gfx_server_focus(f->s, f->a);
	chord(f->s, 'C');
	drain(f->a, &keys, &copies, &pastes);
	assert_int_equal(keys, 4); /* the modifiers, never the C */
	assert_int_equal(copies, 1);
	assert_false(gfx_clip_asked(f->cb, f->b));
	assert_true(gfx_clip_asked(f->cb, f->a));
	assert_int_equal(gfx_clip_put(f->cb, f->a, "hello", 5, &err), 0);
	assert_null(err);
	assert_non_null(strstr(last_audit, "\"op\":\"copy\",\"from\":\"a\""));
	/* answered once */
	assert_int_equal(gfx_clip_put(f->cb, f->a, "again", 5, NULL), GFX_E_INVALID);
	/* a -> c: c's rules allow nothing, so refused, and c gets no event */
	gfx_server_focus(f->s, f->c);
	chord(f->s, 'v');
	drain(f->c, &keys, &copies, &pastes);
	assert_int_equal(pastes, 0);
	assert_non_null(strstr(last_audit, "\"to\":\"c\",\"size\":5,\"decision\":\"refuse\""));
	assert_int_equal(gfx_clip_take(f->cb, f->c, &data, &len, &err), GFX_E_INVALID);
	assert_refused(&err, GFX_E_INVALID, "no paste was granted to this app", "clipboard.c");
	/* a -> b: both allow */
	gfx_server_focus(f->s, f->b);
	chord(f->s, 'V');
	drain(f->b, &keys, &copies, &pastes);
	assert_int_equal(pastes, 1);
	assert_non_null(strstr(last_audit, "\"to\":\"b\",\"size\":5,\"decision\":\"allow\""));
	assert_int_equal(gfx_clip_take(f->cb, f->b, &data, &len, &err), 0);
	assert_null(err);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "hello", 5);
	/* fetched once */
	assert_int_equal(gfx_clip_take(f->cb, f->b, &data, &len, NULL), GFX_E_INVALID);
	/* b -> a: only a -> b is allowed */
	gfx_server_focus(f->s, f->b);
	chord(f->s, 'c');
	assert_int_equal(gfx_clip_put(f->cb, f->b, "from-b", 6, NULL), 0);
	gfx_server_focus(f->s, f->a);
	chord(f->s, 'v');
	drain(f->a, &keys, &copies, &pastes);
	assert_int_equal(pastes, 0);
	assert_non_null(strstr(last_audit, "\"from\":\"b\",\"to\":\"a\",\"size\":6,\"decision\":\"refuse\""));
	/* back into its own app is no flow: allowed */
	gfx_server_focus(f->s, f->b);
	chord(f->s, 'v');
	drain(f->b, &keys, &copies, &pastes);
	assert_int_equal(pastes, 1);
	/* the stats keep the records */
	json_object *st = gfx_clip_stats(f->cb), *v;
	assert_true(json_object_object_get_ex(st, "log", &v));
	assert_true(json_object_array_length(v) >= 6);
	json_object_put(st);
}

/* An app that did not answer a copy cannot answer it later, after the
 * user asked another app: only the last copy asked may fill the clipboard. */
static void test_stale_copy(void **state)
{
	fixture *f = *state;
	unsigned keys, copies, pastes;
	gfx_server_focus(f->s, f->a);
	chord(f->s, 'c'); /* a never answers */
	drain(f->a, &keys, &copies, &pastes);
	assert_int_equal(copies, 1);
	gfx_server_focus(f->s, f->b);
	chord(f->s, 'c');
	assert_false(gfx_clip_asked(f->cb, f->a));
	assert_true(gfx_clip_asked(f->cb, f->b));
	assert_int_equal(gfx_clip_put(f->cb, f->b, "from-b", 6, NULL), 0);
	/* a's late answer is refused, and the clipboard still holds b's */
	assert_int_equal(gfx_clip_put(f->cb, f->a, "stale", 5, NULL), GFX_E_INVALID);
	json_object *st = gfx_clip_stats(f->cb), *v;
	assert_true(json_object_object_get_ex(st, "source", &v));
	assert_string_equal(json_object_get_string(v), "b");
	json_object_put(st);
}

/* Keys without both modifiers, or other letters, are the app's. */
static void test_not_chords(void **state)
{
	fixture *f = *state;
	unsigned keys, copies, pastes;
	gfx_server_focus(f->s, f->a);
	gfx_server_key(f->s, true, 0xffe3);
	gfx_server_key(f->s, true, 'c');
	gfx_server_key(f->s, false, 'c');
	gfx_server_key(f->s, false, 0xffe3);
	gfx_server_key(f->s, true, 0xffe3);
	gfx_server_key(f->s, true, 0xffe1);
	gfx_server_key(f->s, true, 'x');
	gfx_input_event ev[64];
	size_t n = gfx_client_take_input(f->a, ev, 64);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ev[i].type, GFX_INPUT_KEY);
	drain(f->a, &keys, &copies, &pastes);
	assert_int_equal(n_audit, 0);
}

static void test_limits(void **state)
{
	fixture *f = *state;
	scm_error *err = NULL;
	gfx_server_focus(f->s, f->a);
	chord(f->s, 'c');
	char *big = calloc(1, GFX_CLIP_BYTES_MAX + 1);
	assert_int_equal(gfx_clip_put(f->cb, f->a, big, GFX_CLIP_BYTES_MAX + 1, &err), GFX_E_LIMIT);
	assert_refused(&err, GFX_E_LIMIT, "1048577 bytes, more than the 1048576 the desktop clipboard holds",
		       "clipboard.c");
	assert_non_null(strstr(last_audit, "\"decision\":\"refuse\""));
	free(big);
	/* the viewer has no rules of its own: b's decide, and allow only a -> b */
	gfx_clip_from_viewer(f->cb, "v", 1);
	gfx_server_focus(f->s, f->b);
	chord(f->s, 'v');
	assert_non_null(strstr(last_audit, "\"from\":\"@viewer\",\"to\":\"b\",\"size\":1,\"decision\":\"refuse\""));
}

/* A malformed rule list from the grant: the parser's observation comes
 * back, and the app is left with no rules, so no flow reaches it. */
static void test_attach_malformed(void **state)
{
	fixture *f = *state;
	unsigned keys, copies, pastes;
	scm_error *err = NULL;
	json_object *j = json_tokener_parse("[1]");
	assert_int_equal(gfx_clip_attach(f->cb, f->b, j, &err), SCM_E_INVALID);
	json_object_put(j);
	assert_refused(&err, SCM_E_INVALID, "clipboard rules: /0: want {\"from\"", "clipflow.c");
	gfx_server_focus(f->s, f->a);
	chord(f->s, 'c');
	assert_int_equal(gfx_clip_put(f->cb, f->a, "hello", 5, NULL), 0);
	gfx_server_focus(f->s, f->b);
	chord(f->s, 'v');
	drain(f->b, &keys, &copies, &pastes);
	assert_int_equal(pastes, 0);
	assert_non_null(strstr(last_audit, "\"to\":\"b\",\"size\":5,\"decision\":\"refuse\""));
}

static void test_memfd(void **state)
{
	char *data;
	scm_error *err = NULL;
	size_t len;
	int fd;
	assert_int_equal(gfx_clip_memfd("abc", 3, &fd), 0);
	assert_int_equal(gfx_clip_read_memfd(fd, &data, &len, &err), 0);
	assert_null(err);
	assert_int_equal(len, 3);
	assert_string_equal(data, "abc");
	free(data);
	assert_true(write(fd, "x", 1) < 0); /* sealed */
	close(fd);
	/* unsealed memfd, a pipe: refused without reading */
	fd = memfd_create("t", MFD_CLOEXEC);
	assert_int_equal(gfx_clip_read_memfd(fd, &data, &len, &err), GFX_E_INVALID);
	assert_refused(&err, GFX_E_INVALID, "/data: not a memfd sealed against writing and resizing", "clipfd.c");
	close(fd);
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(gfx_clip_read_memfd(p[0], &data, &len, &err), GFX_E_INVALID);
	assert_refused(&err, GFX_E_INVALID, "/data: not a memfd", "clipfd.c");
	close(p[0]);
	close(p[1]);
	/* a sealed one over the cap */
	fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_int_equal(ftruncate(fd, GFX_CLIP_BYTES_MAX + 1), 0);
	assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW), 0);
	assert_int_equal(gfx_clip_read_memfd(fd, &data, &len, &err), GFX_E_LIMIT);
	assert_refused(&err, GFX_E_LIMIT, "/data: 1048577 bytes, more than the 1048576", "clipfd.c");
	assert_int_equal(len, GFX_CLIP_BYTES_MAX + 1);
	close(fd);
}

static void test_latin1(void **state)
{
	size_t n;
	char *u = gfx_latin1_to_utf8("caf\xe9", 4, &n);
	assert_int_equal(n, 5);
	assert_string_equal(u, "caf\xc3\xa9");
	char *l = gfx_utf8_to_latin1(u, n, &n);
	assert_int_equal(n, 4);
	assert_string_equal(l, "caf\xe9");
	free(u);
	free(l);
	l = gfx_utf8_to_latin1("\xe2\x82\xac!", 4, &n); /* the euro sign is not Latin-1 */
	assert_string_equal(l, "?!");
	free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_chords, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_attach_malformed, setup, teardown),
		cmocka_unit_test(test_memfd),
		cmocka_unit_test(test_latin1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
