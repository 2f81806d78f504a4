/* vhdx-header.c: the two VHDX headers (selection by sequence number, the
 * update protocol that renews FileWriteGuid/DataWriteGuid) and the region
 * table that locates the BAT and the metadata region. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "vhdx-internal.h"

int vhdx_header_parse(const uint8_t *buf, struct vhdx_header *ret, scm_error **ret_err)
{
	struct vhdx_header h = { 0 };
	if (get32(buf) != SIG_HEAD)
		return scm_fail(ret_err, -EINVAL, "bad signature 0x%08x (want \"head\")", get32(buf));
	static const uint8_t zero4[4];
	uint32_t got = vhdx_crc32c(0, buf, 4);
	got = vhdx_crc32c(got, zero4, 4);
	got = vhdx_crc32c(got, buf + 8, VHDX_HDR_SIZE - 8);
	uint32_t want = get32(buf + 4);
	if (want != got)
		return scm_fail(ret_err, -EINVAL, "checksum 0x%08x does not match CRC-32C 0x%08x", want, got);
	h.seq = get64(buf + 8);
	memcpy(h.file_write.b, buf + 16, 16);
	memcpy(h.data_write.b, buf + 32, 16);
	memcpy(h.log_guid.b, buf + 48, 16);
	h.log_version = get16(buf + 64);
	h.version = get16(buf + 66);
	h.log_length = get32(buf + 68);
	h.log_offset = get64(buf + 72);
	if (h.version != 1)
		return scm_fail(ret_err, -EINVAL, "version %u (only 1 is defined)", h.version);
	if (h.log_version != 0)
		return scm_fail(ret_err, -EINVAL, "log version %u (only 0 is defined)", h.log_version);
	if (h.log_length == 0 || h.log_length % MiB || h.log_offset < MiB || h.log_offset % MiB)
		return scm_fail(ret_err, -EINVAL, "log at 0x%llx length 0x%x is not 1 MiB aligned past 1 MiB",
			 (unsigned long long)h.log_offset, h.log_length);
	h.valid = true;
	*ret = h;
	return 0;
}

void vhdx_header_build(const struct vhdx_header *h, uint8_t buf[VHDX_HDR_SIZE])
{
	memset(buf, 0, VHDX_HDR_SIZE);
	put32(buf, SIG_HEAD);
	put64(buf + 8, h->seq);
	memcpy(buf + 16, h->file_write.b, 16);
	memcpy(buf + 32, h->data_write.b, 16);
	memcpy(buf + 48, h->log_guid.b, 16);
	put16(buf + 64, h->log_version);
	put16(buf + 66, h->version);
	put32(buf + 68, h->log_length);
	put64(buf + 72, h->log_offset);
	put32(buf + 4, vhdx_crc32c(0, buf, VHDX_HDR_SIZE));
}

/* Writes h->hdr with the next sequence number into the non-current slot,
 * flushes, then does it once more so that both copies hold the new state
 * (a crash in between leaves one good copy, whichever it is). */
int vhdx_header_update(vhdx *h)
{
	uint8_t buf[VHDX_HDR_SIZE];
	for (int i = 0; i < 2; i++) {
		int slot = 1 - h->hdr_slot;
		h->hdr.seq++;
		vhdx_header_build(&h->hdr, buf);
		int r = vhdx_pwrite(h, buf, sizeof buf, slot ? VHDX_HDR2_OFF : VHDX_HDR1_OFF);
		if (r < 0)
			return r;
		if (fdatasync(h->fd) < 0)
			return vhdx_fail(h, -errno, "%s: header %d: fdatasync: %m", h->path, slot + 1);
		h->hdr_slot = slot;
	}
	h->hdr_other_valid = true;
	return 0;
}

/* Parses one 64 KiB region table copy into h (bat_*, meta_*). */
int vhdx_region_parse(const uint8_t *buf, uint64_t file_size, vhdx *h, scm_error **ret_err)
{
	if (get32(buf) != SIG_REGI)
		return scm_fail(ret_err, -EINVAL, "bad signature 0x%08x (want \"regi\")", get32(buf));
	/* CRC over the table with the checksum field taken as zero */
	static const uint8_t zero4[4];
	uint32_t got = vhdx_crc32c(0, buf, 4);
	got = vhdx_crc32c(got, zero4, 4);
	got = vhdx_crc32c(got, buf + 8, VHDX_RT_SIZE - 8);
	uint32_t want = get32(buf + 4);
	if (want != got)
		return scm_fail(ret_err, -EINVAL, "checksum 0x%08x does not match CRC-32C 0x%08x", want, got);
	uint32_t n = get32(buf + 8);
	if (n > VHDX_RT_MAX_ENTRIES)
		return scm_fail(ret_err, -EINVAL, "entry count %u exceeds %u", n, VHDX_RT_MAX_ENTRIES);
	vhdx_guid gbat, gmeta;
	vhdx_guid_const(GUID_BAT, &gbat);
	vhdx_guid_const(GUID_METADATA, &gmeta);
	uint64_t bat_off = 0, bat_len = 0, meta_off = 0, meta_len = 0;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *e = buf + 16 + 32 * (size_t)i;
		vhdx_guid g;
		memcpy(g.b, e, 16);
		uint64_t off = get64(e + 16);
		uint32_t len = get32(e + 24);
		bool required = get32(e + 28) & 1;
		char gs[39];
		vhdx_guid_format(&g, gs);
		if (off % MiB || off < MiB || len == 0 || len % MiB)
			return scm_fail(ret_err, -EINVAL, "entry %u %s: file offset 0x%llx length 0x%x not 1 MiB aligned", i,
				 gs, (unsigned long long)off, len);
		if (off + len > file_size)
			return scm_fail(ret_err, -EINVAL, "entry %u %s: file offset 0x%llx + length 0x%x past end of file (0x%llx)",
				 i, gs, (unsigned long long)off, len, (unsigned long long)file_size);
		for (uint32_t j = 0; j < i; j++) {
			const uint8_t *o = buf + 16 + 32 * (size_t)j;
			uint64_t ooff = get64(o + 16), olen = get32(o + 24);
			if (off < ooff + olen && ooff < off + len)
				return scm_fail(ret_err, -EINVAL, "entry %u %s overlaps entry %u", i, gs, j);
			if (memcmp(o, e, 16) == 0)
				return scm_fail(ret_err, -EINVAL, "entry %u %s appears twice", i, gs);
		}
		if (vhdx_guid_eq(&g, &gbat)) {
			bat_off = off;
			bat_len = len;
		} else if (vhdx_guid_eq(&g, &gmeta)) {
			meta_off = off;
			meta_len = len;
		} else if (required)
			return scm_fail(ret_err, -EOPNOTSUPP, "entry %u: unknown required region %s", i, gs);
	}
	if (!bat_len || !meta_len)
		return scm_fail(ret_err, -EINVAL, "no %s region", bat_len ? "metadata" : "BAT");
	h->bat_off = bat_off;
	h->bat_len = bat_len;
	h->meta_off = meta_off;
	h->meta_len = meta_len;
	return 0;
}
