/* vmap.h: a live migration's data correspondence record (DEST.scm-map,
 * docs/vdisk.md "The correspondence record"): which extent of the source
 * was copied to which extent of the destination, with the SHA-256 of its
 * bytes, as both were at the switch-over. The provider writes it when a
 * migration is done and reads it back when a later migration's
 * destination exists (a copy of the disk a record vouches for is reused:
 * only what changed is copied). Text in a fixed order, ended by a CRC-32C
 * line, as the job journal (vjob.h). Pure functions. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <scm/error.h>

#include "vhdx.h"

#define VMAP_VERSION 1
#define VMAP_PATH_MAX 4096

struct vmap_extent {
	uint64_t src, dst, len; /* virtual offsets and length, bytes */
	bool zero;              /* the extent reads as zeros */
	uint8_t hash[32];       /* SHA-256 of its bytes */
};

struct vmap {
	char source[VMAP_PATH_MAX], dest[VMAP_PATH_MAX];
	uint64_t virtual_size;
	uint32_t chunk;          /* the pieces' size: a power of two, 4 KiB to 256 MiB */
	bool source_dwg_set;     /* the source held these bytes too (mirror mode) */
	vhdx_guid source_dwg;    /* its DataWriteGuid then */
	vhdx_guid dest_dwg;      /* the destination's DataWriteGuid then */
	vhdx_guid page83;        /* the disk's identity, both files' */
	struct vmap_extent *ext; /* in increasing dst order, each on a chunk boundary */
	size_t n;
};

/* The record's text (malloc'd, NUL-terminated) and its length; -EINVAL for
 * a path with a newline, or extents out of order. */
int vmap_format(const struct vmap *m, char **ret_text, size_t *ret_len);
/* Parses a record. -EINVAL with *ret_err naming the line at fault;
 * -EPROTONOSUPPORT for a newer version. ret->ext is malloc'd (vmap_clear). */
int vmap_parse(const char *buf, size_t len, struct vmap *ret, scm_error **ret_err);
void vmap_clear(struct vmap *m);
/* The most bytes a record of a disk of vsize in pieces of chunk takes. */
size_t vmap_max_size(uint64_t vsize, uint32_t chunk);
