/* test_gfx_surface.c: a surface's memfd is sealed so the client cannot
 * resize it under the proxy, and the client side refuses fds that are
 * too small or unsealed. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "gfx.h"

static void test_sealed(void **state)
{
	gfx_surface *s = NULL;
	assert_int_equal(gfx_surface_new(64, 32, &s), 0);
	struct stat st;
	assert_int_equal(fstat(s->fd, &st), 0);
	assert_int_equal(st.st_size, 64 * 32 * 4);
	int seals = fcntl(s->fd, F_GET_SEALS);
	assert_true(seals & F_SEAL_SHRINK);
	assert_true(seals & F_SEAL_GROW);
	assert_true(seals & F_SEAL_SEAL);
	/* What a hostile client would try with its copy of the fd. */
	assert_int_equal(ftruncate(s->fd, 16), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(ftruncate(s->fd, 1 << 20), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(fcntl(s->fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	assert_int_equal(errno, EPERM);
	/* The client's mapping shares the pixels. */
	gfx_surface *c = NULL;
	int fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 3);
	assert_int_equal(gfx_surface_map(fd, 64, 32, &c), 0);
	c->pixels[64 * 31 + 63] = 0x123456;
	assert_int_equal(s->pixels[64 * 31 + 63], 0x123456);
	gfx_surface_free(c);
	gfx_surface_free(s);
}

static void test_map_refuses(void **state)
{
	gfx_surface *s = NULL, *c = NULL;
	assert_int_equal(gfx_surface_new(16, 16, &s), 0);
	/* Claims a bigger surface than the fd holds. */
	assert_int_equal(gfx_surface_map(s->fd, 32, 16, &c), GFX_E_INVALID);
	assert_null(c);
	gfx_surface_free(s);
	/* An unsealed memfd could shrink under the mapping. */
	int fd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 16 * 16 * 4), 0);
	assert_int_equal(gfx_surface_map(fd, 16, 16, &c), GFX_E_INVALID);
	close(fd);
}

static const struct {
	uint32_t w, h;
	int want;
} sizes[] = {
	{ 0, 10, GFX_E_INVALID },    { 10, 0, GFX_E_INVALID },
	{ 8193, 10, GFX_E_INVALID }, { 10, UINT32_MAX, GFX_E_INVALID },
	{ 8192, 8192, GFX_E_LIMIT }, { 8192, 4097, GFX_E_LIMIT }, /* over 128 MiB */
	{ 8192, 4096, 0 },           { 1, 1, 0 },
};

static void test_size_table(void **state)
{
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t bytes = 0;
		int r = gfx_check_size(sizes[i].w, sizes[i].h, &bytes);
		if (r != sizes[i].want)
			fail_msg("%ux%u: got %d want %d", sizes[i].w, sizes[i].h, r, sizes[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sealed),
		cmocka_unit_test(test_map_refuses),
		cmocka_unit_test(test_size_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
