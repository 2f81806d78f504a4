/* extents.c: parsing the extent list of readv/writev (see extents.h).
 * Every record is checked before any is used, so a bad batch does nothing. */
#include <errno.h>
#include <stdio.h>

#include "extents.h"

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

int vdisk_extents_parse(const void *bin, size_t len, uint64_t vsize, uint32_t sector, uint64_t bufsize,
			struct vdisk_extent *ret, size_t *ret_n, scm_error **ret_err)
{
	if (len == 0 || len % VDISK_EXTENT_SIZE || len / VDISK_EXTENT_SIZE > VDISK_EXTENTS_MAX)
		return scm_fail(ret_err, -EINVAL, "extents: %zu bytes is not 1 to %d records of %d bytes", len,
			 VDISK_EXTENTS_MAX, VDISK_EXTENT_SIZE);
	if (sector == 0)
		return scm_fail(ret_err, -EINVAL, "extents: the disk has no sector size");
	size_t n = len / VDISK_EXTENT_SIZE;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = (const uint8_t *)bin + i * VDISK_EXTENT_SIZE;
		struct vdisk_extent e = { le64(p), le64(p + 8), le64(p + 16) };
		if (e.len == 0 || e.len % sector || e.off % sector || e.off > vsize || e.len > vsize - e.off)
			return scm_fail(ret_err, -EINVAL, "extents[%zu]: offset %llu length %llu: not whole %u-byte sectors inside the %llu-byte disk",
				 i, (unsigned long long)e.off, (unsigned long long)e.len, sector,
				 (unsigned long long)vsize);
		if (e.len > bufsize || e.boff > bufsize - e.len)
			return scm_fail(ret_err, -EINVAL, "extents[%zu]: buffer_offset %llu + length %llu is past the %llu-byte data buffer",
				 i, (unsigned long long)e.boff, (unsigned long long)e.len,
				 (unsigned long long)bufsize);
		ret[i] = e;
	}
	*ret_n = n;
	return 0;
}
