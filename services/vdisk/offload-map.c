/* offload-map.c: the checks on an offload_map reply (offload-map.h). The
 * source is a provider scmd vouched for, but its records decide where the
 * destination writes: a bad one must stop the copy, never land anywhere. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "offload-map.h"

int offload_map_parse(const void *bin, size_t len, uint64_t from, uint64_t next, uint64_t token_len,
		      struct offload_extent *ret, scm_error **ret_err)
{
	if (len == 0 || len % OFFLOAD_EXTENT_SIZE)
		return scm_fail(ret_err, -EPROTO, "offload_map: %zu bytes of extents, not a whole number of %d-byte records",
				len, OFFLOAD_EXTENT_SIZE);
	if (from >= token_len || next <= from || next > token_len)
		return scm_fail(ret_err, -EPROTO,
				"offload_map: asked from %llu of a %llu-byte token, told to go on at %llu",
				(unsigned long long)from, (unsigned long long)token_len, (unsigned long long)next);
	size_t n = len / OFFLOAD_EXTENT_SIZE;
	const uint8_t *p = bin;
	uint64_t at = from;
	for (size_t i = 0; i < n; i++, p += OFFLOAD_EXTENT_SIZE) {
		uint64_t v[3];
		memcpy(v, p, sizeof v);
		struct offload_extent e = { le64toh(v[0]), le64toh(v[1]), le64toh(v[2]) };
		if (e.off != at || e.len == 0 || e.len > next - at)
			return scm_fail(ret_err, -EPROTO,
					"offload_map: extents[%zu] {offset %llu, length %llu}: expected one starting at %llu "
					"and ending by %llu",
					i, (unsigned long long)e.off, (unsigned long long)e.len, (unsigned long long)at,
					(unsigned long long)next);
		if (e.file_off != OFFLOAD_ZERO && e.file_off > UINT64_MAX - 1 - e.len)
			return scm_fail(ret_err, -EPROTO, "offload_map: extents[%zu]: file offset %llu + length past 2^64", i,
					(unsigned long long)e.file_off);
		ret[i] = e;
		at += e.len;
	}
	if (at != next)
		return scm_fail(ret_err, -EPROTO, "offload_map: the extents end at %llu, not at %llu",
				(unsigned long long)at, (unsigned long long)next);
	return (int)n;
}
