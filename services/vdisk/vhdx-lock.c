/* vhdx-lock.c: image locks that qemu and scm both see.
 *
 * qemu's file-posix driver does not flock: it takes shared open-file-
 * description (OFD) byte-range locks on one byte per permission. Byte
 * 100 + i says "I use permission i", byte 200 + i says "I do not let
 * others use permission i". Every lock is a read lock, so holders never
 * block each other in fcntl(2); a holder instead tests (F_OFD_GETLK, as a
 * write lock) the bytes it must not meet: 200 + i for each permission it
 * wants, 100 + i for each one it refuses to share. We use the same bytes
 * and the same rules, so `qemu-img info` reports our writer ("Failed to
 * get shared "write" lock"), qemu-io cannot write a disk we hold, and we
 * cannot open a disk qemu writes. OFD locks belong to the open file
 * description: two opens of one file in one process do see each other,
 * which is why the provider drops a handle's locks before replacing it.
 * Like qemu, apply first and test afterwards: two openers racing both
 * see the other's bytes and both back off, never both succeed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "vhdx-internal.h"

#define LOCK_PERM_BASE 100
#define LOCK_SHARED_BASE 200
#define LOCK_BITS 4

static const char *const perm_name[LOCK_BITS] = { "consistent read", "write", "write unchanged", "resize" };

static int ofd_lock(int fd, short type, off_t start)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1 };
	return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

/* Is byte start locked by another open file description? */
static int ofd_taken(int fd, off_t start)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = 1 };
	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type != F_UNLCK;
}

void vhdx_lock_release(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = LOCK_PERM_BASE,
			    .l_len = LOCK_SHARED_BASE + LOCK_BITS - LOCK_PERM_BASE };
	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

/* The bytes a mode uses: the permissions it takes, those it shares. */
static void lock_bits(unsigned mode, unsigned *ret_perm, unsigned *ret_shared)
{
	switch (mode) {
	case VHDX_LOCK_NONE:
		*ret_perm = 0;
		*ret_shared = VHDX_PERM_ALL;
		break;
	case VHDX_LOCK_WRITER: /* what a qemu writer of a format node holds */
		*ret_perm = VHDX_PERM_READ | VHDX_PERM_WRITE | VHDX_PERM_WRITE_UNCHANGED | VHDX_PERM_RESIZE;
		*ret_shared = VHDX_PERM_READ | VHDX_PERM_WRITE_UNCHANGED;
		break;
	case VHDX_LOCK_SHARE_ALL: /* force-share: read, let anyone do anything */
		*ret_perm = VHDX_PERM_READ;
		*ret_shared = VHDX_PERM_ALL;
		break;
	default: /* reader: the data must not change under it */
		*ret_perm = VHDX_PERM_READ;
		*ret_shared = VHDX_PERM_READ | VHDX_PERM_WRITE_UNCHANGED;
		break;
	}
}

/* Applies the bytes of a mode (perm, shared) on fd: read locks on each
 * permission held and on each one not shared; the first error, or 0. */
static int lock_apply(int fd, unsigned perm, unsigned shared)
{
	int r = 0;
	for (int i = 0; i < LOCK_BITS && r >= 0; i++) {
		if (perm & (1u << i))
			r = ofd_lock(fd, F_RDLCK, LOCK_PERM_BASE + i);
		if (r >= 0 && !(shared & (1u << i)))
			r = ofd_lock(fd, F_RDLCK, LOCK_SHARED_BASE + i);
	}
	return r;
}

/* A file adopted from a predecessor (vhdx_open_adopt): its open file
 * description holds the locks already, the predecessor's, which tested
 * them when it took them, and relies on them until it exits. Applying
 * them again is a no-op for their holder. Testing them again is not
 * harmless: a qemu probing the disk at that moment (it applies its bytes,
 * then tests ours and backs off) would be seen, and the failure's release
 * would drop the very bytes the predecessor holds, leaving the disk
 * unlocked under a running writer. So: apply, never test, never release. */
int vhdx_lock_adopt(vhdx *h, unsigned mode)
{
	unsigned perm, shared;
	lock_bits(mode, &perm, &shared);
	int r = lock_apply(h->fd, perm, shared);
	if (r == -EINVAL || r == -EOPNOTSUPP || r == -ENOLCK)
		return 0; /* a file system without OFD locks, as at the first open */
	if (r < 0)
		return vhdx_fail(h, -EBUSY, "%s: cannot take its image lock again: %s", h->path, strerror(-r));
	h->lock_mode = mode;
	return 0;
}

int vhdx_lock_take(vhdx *h, unsigned mode)
{
	unsigned perm, shared;
	if (mode == VHDX_LOCK_NONE)
		return 0;
	lock_bits(mode, &perm, &shared);
	int r = lock_apply(h->fd, perm, shared);
	if (r == -EINVAL || r == -EOPNOTSUPP || r == -ENOLCK) {
		/* a file system without OFD locks: as qemu's locking=auto, go on */
		vhdx_lock_release(h->fd);
		return 0;
	}
	if (r < 0) {
		vhdx_lock_release(h->fd);
		return vhdx_fail(h, -EBUSY, "%s: cannot take the image lock: %s", h->path, strerror(-r));
	}
	for (int i = 0; i < LOCK_BITS; i++) {
		int t = 0;
		bool shared_lock = false;
		if (perm & (1u << i))
			t = ofd_taken(h->fd, LOCK_SHARED_BASE + i);
		if (t == 0 && !(shared & (1u << i))) {
			t = ofd_taken(h->fd, LOCK_PERM_BASE + i);
			shared_lock = true;
		}
		if (t > 0) {
			vhdx_lock_release(h->fd);
			return vhdx_fail(h, -EBUSY,
					 "%s: in use by another process (qemu or scm): failed to get %s\"%s\" lock%s",
					 h->path, shared_lock ? "shared " : "", perm_name[i],
					 mode == VHDX_LOCK_WRITER ? "" : " (force-share reads it anyway)");
		}
	}
	h->lock_mode = mode;
	return 0;
}

void vhdx_unlock(vhdx *h)
{
	for (vhdx *c = h; c; c = c->parent)
		vhdx_lock_release(c->fd);
}

int vhdx_relock_top(vhdx *h)
{
	return vhdx_lock_take(h, h->lock_mode);
}

int vhdx_relock(vhdx *h)
{
	for (vhdx *c = h; c; c = c->parent) {
		int r = vhdx_lock_take(c, c->lock_mode);
		if (r < 0) {
			if (c != h) {
				scm_error *e = vhdx_error(c);
				vhdx_fail_set(h, e);
			}
			for (vhdx *u = h; u != c; u = u->parent)
				vhdx_lock_release(u->fd);
			return r;
		}
	}
	return 0;
}
