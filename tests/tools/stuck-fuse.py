#!/usr/bin/env python3
"""stuck-fuse.py MOUNTPOINT: a FUSE file system that never answers a lookup.

Its root answers getattr and statfs (so the mount point can be bound into a
container), but any name looked up inside it waits for ever, as on a hung
NFS or FUSE server: a container launch whose mount source is MOUNTPOINT/x,
or an exec of MOUNTPOINT/x, blocks in the kernel until killed (FUSE waits
are killable). Speaks /dev/fuse directly (no libfuse). Root only; prints
"ready" once mounted. Runs until killed; the mount is aborted with it."""
import ctypes, errno, os, struct, sys

mnt = sys.argv[1]
fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
libc = ctypes.CDLL(None, use_errno=True)
opts = f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other".encode()
if libc.mount(b"stuck-fuse", mnt.encode(), b"fuse.stuck", 0x2 | 0x4, opts) != 0:  # nosuid, nodev
    e = ctypes.get_errno()
    sys.exit(f"stuck-fuse: mount {mnt}: {os.strerror(e)}")

FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR, FUSE_STATFS, FUSE_INIT, FUSE_INTERRUPT = 1, 2, 3, 17, 26, 36
FUSE_BATCH_FORGET, FUSE_DESTROY = 42, 38


def reply(unique, err=0, body=b""):
    os.write(fd, struct.pack("<IiQ", 16 + len(body), -err, unique) + body)


def root_attr():
    # fuse_attr: ino size blocks atime mtime ctime (u64) atimensec mtimensec
    # ctimensec mode nlink uid gid rdev blksize flags (u32)
    attr = struct.pack("<QQQQQQIIIIIIIIII", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0o40755, 2, 0, 0, 0, 4096, 0)
    return struct.pack("<QII", 0, 0, 0) + attr  # attr_valid 0: ask every time


print("ready", flush=True)
while True:
    try:
        req = os.read(fd, 1 << 20 | 4096)
    except OSError as e:
        if e.errno in (errno.EINTR, errno.ENOENT):
            continue
        sys.exit(0)  # ENODEV: unmounted
    length, opcode, unique, nodeid = struct.unpack_from("<IIQQ", req)
    if opcode == FUSE_INIT:
        major, minor, readahead, flags = struct.unpack_from("<IIII", req, 40)
        # fuse_init_out, 64 bytes: major minor max_readahead flags
        # max_background congestion_threshold max_write time_gran max_pages
        # map_alignment flags2 unused[7]
        body = struct.pack("<IIIIHHIIHHI7I", 7, min(minor, 31), readahead, 0, 16, 12, 65536, 1, 32, 0, 0,
                           *([0] * 7))
        reply(unique, 0, body)
    elif opcode == FUSE_GETATTR and nodeid == 1:
        reply(unique, 0, root_attr())
    elif opcode == FUSE_STATFS:
        reply(unique, 0, struct.pack("<QQQQQIIII6I", 0, 0, 0, 0, 0, 4096, 255, 4096, 0, *([0] * 6)))
    elif opcode == FUSE_LOOKUP:
        pass  # the point: never answered
    elif opcode == FUSE_INTERRUPT:
        # A signal reached the waiting process (SIGKILL: the runtime gave
        # up on it). The kernel waits for the interrupted request's answer
        # even then, so answer it: the process can die.
        (orig,) = struct.unpack_from("<Q", req, 40)
        reply(orig, errno.EINTR)
    elif opcode in (FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_DESTROY):
        pass  # no reply expected
    else:
        reply(unique, errno.ENOSYS)
