#!/usr/bin/env python3
"""vdisk-forge.py: hostile or stand-in VHDX files for the vdisk tests, made
by patching a file scm-vdisk created (MS-VHDX layout; CRC-32C fixed up
where the format has one).
  vdisk-forge.py hugebat FILE SIZE     claim SIZE bytes: the BAT region grows
                                       to fit, the file is extended sparsely
  vdisk-forge.py dupbat FILE A B       BAT entry B := BAT entry A
  vdisk-forge.py dwg FILE GUID         set DataWriteGuid in both headers
  vdisk-forge.py parent FILE           print "LINKAGE VSIZE LSEC RELATIVE_PATH" of
                                       a differencing disk (without its parent)
"""
import struct
import sys
import uuid

KiB, MiB = 1024, 1024 * 1024
BAT_GUID = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
META_GUID = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
VSIZE_GUID = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


T = _table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = T[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def with_crc(buf, at=4):
    buf = bytearray(buf)
    buf[at:at + 4] = b"\0\0\0\0"
    buf[at:at + 4] = struct.pack("<I", crc32c(bytes(buf)))
    return bytes(buf)


def regions(f):
    f.seek(192 * KiB)
    rt = bytearray(f.read(64 * KiB))
    n = struct.unpack_from("<I", rt, 8)[0]
    out = {}
    for i in range(n):
        e = 16 + 32 * i
        out[bytes(rt[e:e + 16])] = (e, *struct.unpack_from("<QI", rt, e + 16))
    return rt, out


def hugebat(path, size):
    with open(path, "r+b") as f:
        rt, reg = regions(f)
        meta_off = reg[META_GUID][1]
        f.seek(meta_off)
        mt = f.read(64 * KiB)
        n = struct.unpack_from("<H", mt, 10)[0]
        for i in range(n):
            e = 32 + 32 * i
            if mt[e:e + 16] == VSIZE_GUID:
                off = struct.unpack_from("<I", mt, e + 16)[0]
                f.seek(meta_off + off)
                bs_item = None
                f.write(struct.pack("<Q", size))
        # block size from the file parameters item (first 4 bytes)
        fp = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
        bs = None
        for i in range(n):
            e = 32 + 32 * i
            if mt[e:e + 16] == fp:
                off = struct.unpack_from("<I", mt, e + 16)[0]
                f.seek(meta_off + off)
                bs = struct.unpack("<I", f.read(4))[0]
        ratio = (1 << 23) * 512 // bs
        blocks = (size + bs - 1) // bs
        entries = blocks + (blocks - 1) // ratio
        bat_len = (entries * 8 + MiB - 1) // MiB * MiB
        e, bat_off, _ = reg[BAT_GUID]
        struct.pack_into("<I", rt, e + 24, bat_len)
        rt = with_crc(rt)
        for at in (192 * KiB, 256 * KiB):
            f.seek(at)
            f.write(rt)
        f.truncate(bat_off + bat_len)


def dupbat(path, a, b):
    with open(path, "r+b") as f:
        _, reg = regions(f)
        bat_off = reg[BAT_GUID][1]
        f.seek(bat_off + 8 * a)
        ent = f.read(8)
        f.seek(bat_off + 8 * b)
        f.write(ent)


def dwg(path, guid):
    g = uuid.UUID(guid.strip("{}")).bytes_le
    with open(path, "r+b") as f:
        for at in (64 * KiB, 128 * KiB):
            f.seek(at)
            h = bytearray(f.read(4 * KiB))
            h[32:48] = g
            f.seek(at)
            f.write(with_crc(h))


def meta_items(f):
    _, reg = regions(f)
    meta_off = reg[META_GUID][1]
    f.seek(meta_off)
    mt = f.read(64 * KiB)
    n = struct.unpack_from("<H", mt, 10)[0]
    items = {}
    for i in range(n):
        e = 32 + 32 * i
        off, ln = struct.unpack_from("<II", mt, e + 16)
        f.seek(meta_off + off)
        items[bytes(mt[e:e + 16])] = f.read(ln)
    return items


def parent(path):
    with open(path, "rb") as f:
        items = meta_items(f)
    loc = items[uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le]
    n = struct.unpack_from("<H", loc, 18)[0]
    kv = {}
    for i in range(n):
        ko, vo, kl, vl = struct.unpack_from("<IIHH", loc, 20 + 12 * i)
        kv[loc[ko:ko + kl].decode("utf-16-le")] = loc[vo:vo + vl].decode("utf-16-le")
    vsize = struct.unpack("<Q", items[VSIZE_GUID])[0]
    lsec = struct.unpack("<I", items[uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le])[0]
    rel = kv.get("relative_path", "")
    print(kv["parent_linkage"], vsize, lsec, rel[2:] if rel.startswith(".\\") else rel)


def _locator(f):
    """The locator item's (file offset, bytes, [(key, value, value_off)])."""
    _, reg = regions(f)
    meta_off = reg[META_GUID][1]
    f.seek(meta_off)
    mt = f.read(64 * KiB)
    n = struct.unpack_from("<H", mt, 10)[0]
    want = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
    for i in range(n):
        e = 32 + 32 * i
        if bytes(mt[e:e + 16]) != want:
            continue
        off, ln = struct.unpack_from("<II", mt, e + 16)
        f.seek(meta_off + off)
        loc = f.read(ln)
        kv = []
        for j in range(struct.unpack_from("<H", loc, 18)[0]):
            ko, vo, kl, vl = struct.unpack_from("<IIHH", loc, 20 + 12 * j)
            kv.append((loc[ko:ko + kl].decode("utf-16-le"), loc[vo:vo + vl].decode("utf-16-le"),
                       meta_off + off + vo))
        return kv
    raise SystemExit("no parent locator")


def locator(path):
    """Every locator entry, key=value a line, as the file holds them."""
    with open(path, "rb") as f:
        for k, v, _ in _locator(f):
            print(f"{k}={v}")


def setkey(path, key, value):
    """Overwrites one entry's value in place (same length only)."""
    with open(path, "r+b") as f:
        for k, v, at in _locator(f):
            if k == key:
                if len(value) != len(v):
                    raise SystemExit(f"{key}: new value must be {len(v)} characters")
                f.seek(at)
                f.write(value.encode("utf-16-le"))
                return
    raise SystemExit(f"no {key} entry")


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "hugebat":
        hugebat(sys.argv[2], int(sys.argv[3]))
    elif cmd == "dupbat":
        dupbat(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "parent":
        parent(sys.argv[2])
    elif cmd == "dwg":
        dwg(sys.argv[2], sys.argv[3])
    elif cmd == "locator":
        locator(sys.argv[2])
    elif cmd == "setkey":
        setkey(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
