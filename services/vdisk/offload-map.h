/* offload-map.h: the extent records of an offload_map reply
 * (stubs/idl/vdisk.json), which the destination provider reads from the
 * source provider over a token channel: checked here before any is used. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <scm/error.h>

#define OFFLOAD_EXTENT_SIZE 24 /* offset, length, file_offset: u64 LE each */
#define OFFLOAD_ZERO UINT64_MAX /* a record's file_offset: the range reads as zero */

struct offload_extent {
	uint64_t off, len, file_off;
};

/* Checks len bytes of records against the token's length and the map call
 * that asked for them: the first starts at from, each the next where the
 * one before ends, none empty or past token_len, and the last ends at
 * next (where the following map call starts; token_len when done, and
 * past from). Returns the number of records (ret holds len / 24 of them),
 * or -EPROTO with *ret_err naming the record. */
int offload_map_parse(const void *bin, size_t len, uint64_t from, uint64_t next, uint64_t token_len,
		      struct offload_extent *ret, scm_error **ret_err);
