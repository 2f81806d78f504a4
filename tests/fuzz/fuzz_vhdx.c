/* fuzz_vhdx.c: libFuzzer target for the VHDX parsers. The input is a file
 * image (in a memfd) that goes through open (headers, log, region table,
 * metadata, parent locator, BAT), info, map, check and a few reads, both
 * read-only (log served from memory) and read-write (log replayed); then
 * adopted read-write as a handover does, with the input's first whole
 * 4100-byte records as carried block table pages (vhdx_open_adopt), then
 * a write, the pages out again (vhdx_carry_get) and a flush.
 *
 * Input: either a raw image, or, when it starts with "VHDXFZ01", a sparse
 * one: records of a little-endian u32 page number followed by 4096 bytes,
 * so that seeds of real 4+ MiB images (mostly zeros) stay a few pages. The
 * seeds in tests/fuzz/corpus/fuzz_vhdx/ are images made by scm-vdisk,
 * qemu-img and vdisk-logtool, encoded that way (nonzero pages only). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vhdx.h"

static int map_cb(const struct vhdx_map_range *r, void *ud)
{
	(void)r;
	(void)ud;
	return 0;
}

static void exercise(const char *path, unsigned flags, const uint8_t *carry, size_t carry_len)
{
	vhdx *h = NULL;
	if (carry_len) { /* adopted as a handover does, with carried pages */
		int fd = open(path, O_RDWR | O_CLOEXEC);
		int r = fd < 0 ? -1 : vhdx_open_adopt(&fd, &path, 1, flags, carry, carry_len, &h, NULL);
		if (fd >= 0)
			close(fd);
		if (r < 0)
			return;
	} else if (vhdx_open(path, flags, &h, NULL) < 0)
		return;
	struct vhdx_info in;
	if (vhdx_get_info(h, &in) == 0) {
		uint8_t buf[8192];
		vhdx_map(h, map_cb, NULL);
		vhdx_check(h, NULL, NULL);
		uint64_t sec = in.logical_sector_size;
		uint64_t offs[] = { 0, in.virtual_size / 2 / sec * sec, in.virtual_size - sec };
		for (size_t i = 0; i < 3; i++)
			vhdx_read(h, buf, sec, offs[i]);
		if (!(flags & VHDX_O_RDONLY)) {
			memset(buf, 0xa5, sizeof buf);
			vhdx_write(h, buf, sec, offs[1]);
			uint8_t *out = NULL;
			size_t out_len = 0;
			vhdx_carry_get(h, 16, &out, &out_len);
			free(out);
			vhdx_flush(h);
		}
	}
	vhdx_close(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz_vhdx", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	/* the seeds are small images with their tail cut off: pad to 4 MiB
	 * so that structures past the input read as zeros, not EOF */
	if (size >= 8 && !memcmp(data, "VHDXFZ01", 8)) {
		for (size_t p = 8; p + 4 + 4096 <= size; p += 4 + 4096) {
			uint32_t page = (uint32_t)data[p] | (uint32_t)data[p + 1] << 8 | (uint32_t)data[p + 2] << 16;
			if (pwrite(fd, data + p + 4, 4096, (off_t)page * 4096) != 4096)
				break;
		}
	} else if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	/* structures past the input read as zeros, not EOF */
	if (lseek(fd, 0, SEEK_END) < (4 << 20) && ftruncate(fd, 4 << 20) < 0) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	exercise(path, VHDX_O_RDONLY | VHDX_O_NO_REPLAY, NULL, 0);
	/* a differencing image seen alone (info/check without the parent):
	 * every locator entry kept, reads refused */
	exercise(path, VHDX_O_NO_PARENT | VHDX_O_NO_REPLAY, NULL, 0);
	exercise(path, 0, NULL, 0);
	size_t carry = size < 2 * 4100 ? size / 4100 * 4100 : 2 * 4100;
	if (carry)
		exercise(path, 0, data, carry);
	close(fd);
	return 0;
}
