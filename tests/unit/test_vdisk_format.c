/* test_vdisk_format.c: unit tests of the VHDX engine's format pieces:
 * CRC-32C vectors, GUID text, header checksums and the choice between the
 * two headers by sequence number. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void test_crc32c_vectors(void **state)
{
	(void)state;
	/* RFC 3720 (iSCSI) appendix B.4 vectors and the classic check value */
	uint8_t buf[32];
	assert_int_equal(vhdx_crc32c(0, "123456789", 9), 0xe3069283u);
	memset(buf, 0, sizeof buf);
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, sizeof buf);
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(vhdx_crc32c(0, buf, 32), 0x113fdb5cu);
	/* running value: split anywhere, same result (also unaligned starts) */
	uint8_t big[1000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7 + 3);
	uint32_t whole = vhdx_crc32c(0, big, sizeof big);
	for (size_t cut = 0; cut <= sizeof big; cut += 37)
		assert_int_equal(vhdx_crc32c(vhdx_crc32c(0, big, cut), big + cut, sizeof big - cut), whole);
}

static void test_guid_text(void **state)
{
	(void)state;
	vhdx_guid g;
	char s[39];
	assert_int_equal(vhdx_guid_parse("{2DC27766-F623-4200-9D64-115E9BFD4A08}", &g), 0);
	/* first three fields little-endian on disk */
	assert_int_equal(g.b[0], 0x66);
	assert_int_equal(g.b[3], 0x2d);
	assert_int_equal(g.b[4], 0x23);
	assert_int_equal(g.b[8], 0x9d);
	vhdx_guid_format(&g, s);
	assert_string_equal(s, "{2DC27766-F623-4200-9D64-115E9BFD4A08}");
	assert_int_equal(vhdx_guid_parse("2dc27766-f623-4200-9d64-115e9bfd4a08", &g), 0);
	vhdx_guid_format(&g, s);
	assert_string_equal(s, "{2DC27766-F623-4200-9D64-115E9BFD4A08}");
	static const char *const bad[] = { "", "{}", "{2DC27766-F623-4200-9D64-115E9BFD4A0}",
					   "{2DC27766-F623-4200-9D64-115E9BFD4A08",
					   "{2DC27766-F623-4200-9D64-115E9BFD4A08}x", "{ZZC27766-F623-4200-9D64-115E9BFD4A08}" };
	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		assert_int_equal(vhdx_guid_parse(bad[i], &g), -EINVAL);
	vhdx_guid r1, r2;
	assert_int_equal(vhdx_guid_random(&r1), 0);
	assert_int_equal(vhdx_guid_random(&r2), 0);
	assert_false(vhdx_guid_eq(&r1, &r2));
	assert_false(vhdx_guid_is_zero(&r1));
}

static void test_header_roundtrip(void **state)
{
	(void)state;
	struct vhdx_header h = { .seq = 77, .version = 1, .log_length = MiB, .log_offset = MiB }, out;
	vhdx_guid_random(&h.file_write);
	vhdx_guid_random(&h.data_write);
	uint8_t buf[VHDX_HDR_SIZE];
	_cleanup_(scm_error_freep) scm_error *why = NULL;
	vhdx_header_build(&h, buf);
	assert_int_equal(vhdx_header_parse(buf, &out, FRESH(why)), 0);
	assert_int_equal(out.seq, 77);
	assert_true(vhdx_guid_eq(&out.data_write, &h.data_write));
	/* any flipped bit in the 4 KiB breaks the checksum */
	for (size_t bit = 0; bit < VHDX_HDR_SIZE * 8; bit += 997) {
		if (bit / 8 >= 4 && bit / 8 < 8)
			continue;
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(vhdx_header_parse(buf, &out, FRESH(why)), -EINVAL);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	/* valid checksum, bad fields */
	struct vhdx_header bad = h;
	bad.version = 2;
	vhdx_header_build(&bad, buf);
	assert_int_equal(vhdx_header_parse(buf, &out, FRESH(why)), -EINVAL);
	assert_non_null(strstr(msg_of(why), "version"));
	bad = h;
	bad.log_offset = 4096;
	vhdx_header_build(&bad, buf);
	assert_int_equal(vhdx_header_parse(buf, &out, FRESH(why)), -EINVAL);
	assert_non_null(strstr(msg_of(why), "log"));
}

/* Which header wins: table of (seq1, valid1, seq2, valid2, winner). */
struct pick {
	uint64_t seq[2];
	bool valid[2];
	int winner; /* 0, 1, or -1 for "cannot open" */
};

static void test_header_selection(void **state)
{
	(void)state;
	static const struct pick table[] = {
		{ { 5, 6 }, { true, true }, 1 },   { { 9, 6 }, { true, true }, 0 },
		{ { 9, 6 }, { false, true }, 1 },  { { 5, 6 }, { true, false }, 0 },
		{ { 5, 6 }, { false, false }, -1 }, { { 1ull << 40, 3 }, { true, true }, 0 },
	};
	char dir[] = "/tmp/vdisk-unit-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof path, "%s/h.vhdx", dir);
	for (size_t t = 0; t < ELEMENTSOF(table); t++) {
		struct vhdx_create_opts o = { .size = 8 * MiB };
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		unlink(path);
		assert_int_equal(vhdx_create(path, &o, FRESH(err)), 0);
		vhdx_guid dw[2];
		FILE *f = fopen(path, "r+");
		assert_non_null(f);
		for (int i = 0; i < 2; i++) {
			struct vhdx_header h = { .seq = table[t].seq[i], .version = 1, .log_length = MiB,
						 .log_offset = MiB };
			vhdx_guid_random(&h.file_write);
			vhdx_guid_random(&dw[i]);
			h.data_write = dw[i];
			uint8_t buf[VHDX_HDR_SIZE];
			vhdx_header_build(&h, buf);
			if (!table[t].valid[i])
				buf[100] ^= 1;
			fseek(f, i ? VHDX_HDR2_OFF : VHDX_HDR1_OFF, SEEK_SET);
			assert_int_equal(fwrite(buf, 1, sizeof buf, f), sizeof buf);
		}
		fclose(f);
		vhdx *h = NULL;
		int r = vhdx_open(path, VHDX_O_RDONLY, &h, FRESH(err));
		if (table[t].winner < 0) {
			assert_int_equal(r, -EINVAL);
			assert_non_null(strstr(msg_of(err), "no valid header"));
			continue;
		}
		assert_int_equal(r, 0);
		struct vhdx_info in;
		assert_int_equal(vhdx_get_info(h, &in), 0);
		assert_true(vhdx_guid_eq(&in.data_write_guid, &dw[table[t].winner]));
		assert_int_equal(in.header_sequence, table[t].seq[table[t].winner]);
		vhdx_close(h);
	}
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_guid_text),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_selection),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
