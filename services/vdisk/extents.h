/* extents.h: the extent lists of the vdisk service's readv and writev
 * (stubs/idl/vdisk.json): untrusted bytes from a client, parsed here. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <scm/error.h>

#define VDISK_EXTENT_SIZE 24 /* offset, length, buffer_offset: u64 LE each */
#define VDISK_EXTENTS_MAX 1024

struct vdisk_extent {
	uint64_t off, len, boff;
};

/* Parses and checks len bytes: 1 to VDISK_EXTENTS_MAX records, each of
 * whole sectors inside a disk of vsize bytes and inside a buffer of bufsize
 * bytes. Returns 0 and fills ret[0..*ret_n) (ret holds VDISK_EXTENTS_MAX),
 * or -EINVAL with *ret_err naming the record; ret may be partly written
 * then. */
int vdisk_extents_parse(const void *bin, size_t len, uint64_t vsize, uint32_t sector, uint64_t bufsize,
			struct vdisk_extent *ret, size_t *ret_n, scm_error **ret_err);
