#!/usr/bin/env python3
"""vdisk-migrate-bench: the issue-13 performance lines (make bench).

Migration of a 2 GiB VHDX, 60% allocated (the first 1.2 GiB), while one
client does 4 KiB random writes at queue depth 1 over its first GiB:
  - `qemu-img convert -t writeback` of the idle disk, which flushes the
    copy when it closes it, as a migration must before its switch-over:
    the copy the totals and the total's target are compared to; and
    `qemu-img convert` with its default cache mode for the output,
    unsafe, which never flushes it (the copy is left in the page cache):
    its ratio is printed too, as information;
  - qemu-storage-daemon's blockdev-mirror of the same image under the same
    load: the daemon driven over QMP on a unix socket (the small QMP client
    below), the load through its NBD export by fio's nbd engine (libnbd);
  - `scm-vdisk migrate --mode mirror` through a private scmd and the vdisk
    provider, the load by vdisk-client randwrite (when this build has the
    migrate command); then `--mode snapshot` of the moved disk the same
    way (its lines have no target of their own);
  for each: total time, the client's write latency p50/p99 during the
  migration against the same client idle just before it, and the pause at
  switch-over (the job's figure, and the longest write the client saw).
Then merge (both ways) and compact as jobs in the provider, in MiB/s of
the data they move or scan, against dd copying as much raw data (fsync'd).
Prints
  vdisk <name>: <value> <unit> (ratio <x> vs <what>)
  vdisk target <what>: <value> (target ...): met | NOT met | not measured
Needs $SCM_BUILD and $SCM_SRC (tests/bench/run-all sets them); work dir
$VDISK_BENCH_DIR, else $SCM_BUILD. $VDISK_MIGRATE_BENCH_LINES (comma
separated: qsd, mirror, snapshot, jobs; all when unset) runs only those
parts, e.g. `mirror,snapshot` to time the migration alone (the idle copy
always runs: every total is compared to it). $VDISK_BENCH_KEEP=1 keeps
the work dir (the clients' latency logs) instead of removing it.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

B = os.environ["SCM_BUILD"]
S = os.environ["SCM_SRC"]
V = f"{B}/bin/scm-vdisk"
C = f"{B}/libexec/vdisk-client"
GIB, MIB = 1 << 30, 1 << 20
SIZE, DATA, SPAN = 2 * GIB, 1229 * MIB, GIB  # disk, allocated, written by the client
IDLE, WARM = 3.0, 0.5  # seconds of idle load measured, after a warm-up
T = tempfile.mkdtemp(prefix="vdisk-mbench.", dir=os.environ.get("VDISK_BENCH_DIR", B))
procs = []
LINES = set((os.environ.get("VDISK_MIGRATE_BENCH_LINES") or "qsd,mirror,snapshot,jobs").split(","))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def start(*cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def wait_path(path, secs=10):
    end = time.time() + secs
    while not os.path.exists(path):
        if time.time() > end:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.02)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def window(samples, t0, t1):
    """latencies (us) of the writes started in [t0, t1) (wall ms)"""
    return [lat for t, lat in samples if t0 <= t < t1]


def make_source(path):
    """2 GiB VHDX, 32 MiB blocks, the first 60% written with random data"""
    raw = f"{T}/src.raw"
    with open(raw, "wb") as f:
        f.truncate(SIZE)
        for off in range(0, DATA, 32 * MIB):
            f.write(os.urandom(min(32 * MIB, DATA - off)))
    run(V, "convert", "--format", "raw", "-O", "vhdx", raw, path)
    os.unlink(raw)
    # on stable storage before anything is timed, as a disk in use is: else
    # the migration's flush of DISK (its last step closes it) writes back
    # the bench's own 1.2 GiB, which the idle copies never flush
    os.sync()


class QMP:
    """A QMP client: JSON objects, one a line, over a unix socket."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.connect(path)
        self.f = self.s.makefile("rw")
        self.events = []
        if "QMP" not in self.read():
            raise RuntimeError("no QMP greeting")
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.f.readline()
        if not line:
            raise RuntimeError("QMP: the daemon closed the connection")
        return json.loads(line)

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            m = self.read()
            if "event" in m:
                self.events.append(m)
            elif "error" in m:
                raise RuntimeError(f"QMP {name}: {m['error'].get('desc')}")
            elif "return" in m:
                return m["return"]

    def event(self, name):
        """waits for event name; returns its wall time in ms"""
        while True:
            for i, m in enumerate(self.events):
                if m["event"] == name:
                    del self.events[i]
                    if name == "BLOCK_JOB_COMPLETED" and m["data"].get("error"):
                        raise RuntimeError(f"mirror failed: {m['data']['error']}")
                    ts = m["timestamp"]
                    return ts["seconds"] * 1e3 + ts["microseconds"] / 1e3
            self.events.append(self.read())


def qemu_convert(src, *opts):
    dst = f"{T}/qconv.vhdx"
    t0 = time.monotonic()
    run("qemu-img", "convert", *opts, "-f", "vhdx", "-O", "vhdx", src, dst)
    t = time.monotonic() - t0
    os.unlink(dst)
    return t


def qsd_mirror(src):
    """blockdev-mirror under fio's 4K QD1 random writes through NBD"""
    dst, qmp, nbd = f"{T}/qdst.vhdx", f"{T}/qmp.sock", f"{T}/nbd.sock"
    run("qemu-img", "create", "-q", "-f", "vhdx", dst, str(SIZE))
    qsd = start("qemu-storage-daemon", "--chardev", f"socket,id=qmp,path={qmp},server=on,wait=off",
                "--monitor", "chardev=qmp",
                "--blockdev", f"driver=file,node-name=srcf,filename={src}",
                "--blockdev", "driver=vhdx,node-name=src,file=srcf",
                "--nbd-server", f"addr.type=unix,addr.path={nbd}",
                "--export", "type=nbd,id=e0,node-name=src,name=disk,writable=on",
                stderr=open(f"{T}/qsd.log", "w"))
    try:
        wait_path(nbd)
        q = QMP(qmp)
        fio = start("fio", "--name=w", "--ioengine=nbd", f"--uri=nbd+unix:///disk?socket={nbd}",
                    "--rw=randwrite", "--bs=4k", "--iodepth=1", "--time_based", "--runtime=600",
                    f"--size={SPAN}", f"--write_lat_log={T}/fio", "--log_avg_msec=0",
                    "--log_unix_epoch=1", "--output-format=terse",
                    stdout=subprocess.DEVNULL, stderr=open(f"{T}/fio.log", "w"))
        # (its latency log is written when it ends)
        for _ in range(500):
            if "connected" in open(f"{T}/fio.log").read() or fio.poll() is not None:
                break
            time.sleep(0.02)
        if fio.poll() is not None:
            raise RuntimeError("fio ended early: " + open(f"{T}/fio.log").read())
        time.sleep(WARM)
        i0 = time.time() * 1e3
        time.sleep(IDLE)
        q.cmd("blockdev-add", driver="vhdx", **{"node-name": "dst"},
              file={"driver": "file", "filename": dst})
        t0 = time.time() * 1e3
        q.cmd("blockdev-mirror", **{"job-id": "m"}, device="src", target="dst", sync="full")
        q.event("BLOCK_JOB_READY")
        tc = time.time() * 1e3
        q.cmd("block-job-complete", device="m")
        t1 = q.event("BLOCK_JOB_COMPLETED")
        stop(fio, signal.SIGINT)
        samples = []
        with open(f"{T}/fio_lat.1.log") as f:
            for line in f:
                t, ns = line.split(",")[:2]
                samples.append((float(t), int(ns) / 1e3))
        return (t1 - t0) / 1e3, window(samples, i0, i0 + IDLE * 1e3), window(samples, t0, t1), t1 - tc
    finally:
        stop(qsd)


class Scmd:
    """a private scmd with the vdisk provider, as the other vdisk benches"""

    def __init__(self):
        os.makedirs(f"{T}/cfg/services")
        os.makedirs(f"{T}/run")
        self.p = start(f"{B}/bin/scmd", "--runtime-dir", f"{T}/run", "--config", f"{T}/cfg",
                       "--idl-path", f"{S}/stubs/idl", stderr=open(f"{T}/scmd.log", "w"))
        wait_path(f"{T}/run/control.sock")
        os.environ["SCM_RUNTIME_DIR"] = f"{T}/run"
        with open(f"{T}/vdisk.json", "w") as f:
            json.dump({"name": "vdisk", "interface": "vdisk", "allow": ["bench"],
                       "exec": [f"{B}/libexec/scm-vdisk-provider"]}, f)
        run(f"{B}/bin/scmctl", "service", "register", f"{T}/vdisk.json")
        run(f"{B}/bin/scmctl", "endpoint", "create", "bench")
        self.ep = f"{T}/run/endpoints/bench.sock"
        os.environ["SCM_ENDPOINT"] = self.ep

    def hold(self, disk):
        """a client holding disk open read-write (jobs run on open disks)"""
        h = start(C, "--endpoint", self.ep, "hold", disk, "rw", stdin=subprocess.PIPE,
                  stdout=subprocess.PIPE, text=True)
        h.stdout.readline()
        return h


def has_migrate():
    return "migrate" in subprocess.run([V, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True).stdout


def scm_migrate(sc, src, mode, dst):
    """scm-vdisk migrate --mode MODE under vdisk-client's 4K QD1 writes"""
    lat, stopf = f"{T}/scm-lat-{mode}.log", f"{T}/scm-stop-{mode}"
    w = start(C, "--endpoint", sc.ep, "randwrite", src, lat, stopf, str(SPAN))
    wait_path(lat)
    time.sleep(WARM)
    i0 = time.time() * 1e3
    time.sleep(IDLE)
    t0 = time.time() * 1e3
    run(V, "migrate", "--mode", mode, src, dst)
    t1 = time.time() * 1e3
    # mirror mode of a disk without parent: the correspondence record is
    # made after the job, from the old file (closed, so flushed, then
    # hashed); the client goes on writing until it is there, so that what
    # that costs the client is measured too (information: the target is
    # the migration's own time)
    t2 = None
    if mode == "mirror":
        rec = f"{dst}.scm-map"
        for _ in range(600):
            if os.path.exists(rec):
                t2 = time.time() * 1e3
                break
            time.sleep(0.005)
    open(stopf, "w").close()
    if w.wait(60):
        raise RuntimeError("vdisk-client randwrite failed")
    pause, how = None, ""
    for j in json.loads(run(V, "jobs", "--json")):
        if j.get("kind") == "migrate" and "pause_us" in j and j.get("target") == dst:
            pause = j["pause_us"] / 1e3
            parts = [f"{j.get('passes')} passes", f"{j.get('bytes_copied', 0) / MIB:.0f} MiB copied"]
            if "bytes_mirrored" in j:
                parts.append(f"{j['bytes_mirrored'] / MIB:.1f} MiB of writes mirrored, "
                             f"{j.get('pause_bytes', 0) / MIB:.0f} MiB copied in the pause")
            for k, what in (("copy_us", "copying"), ("flush_us", "flushing DEST before the switch"),
                            ("final_us", "the last step"), ("early_flush_us", "early flushes")):
                if k in j:
                    parts.append(f"{j[k] / 1e6:.2f} s {what}")
            if "steps" in j:
                parts.append(f"{j['steps']} steps and {j.get('side_steps', 0)} beside the I/O"
                             f"{' (O_DIRECT)' if j.get('direct') else ''}, "
                             f"{j.get('hash_us', 0) / 1e6:.2f} s hashing, "
                             f"{j.get('hash_wait_us', 0) / 1e6:.2f} s waiting for the hashes, "
                             f"{j.get('write_wait_us', 0) / 1e6:.2f} s waiting for writes to DEST, "
                             f"{j.get('side_read_us', 0) / 1e6:.2f} s reading the source beside the I/O, "
                             f"{j.get('queued_us', 0) / 1e6:.2f} s steps queued, "
                             f"{j.get('writes_redirtied', 0)} writes to a piece in flight marked dirty, "
                             f"{j.get('writes_held', 0)} held for its write to DEST")
            for k, what in (("pause_wait_us", "waiting for I/O"), ("pause_flush_us", "flushing")):
                if k in j:
                    parts.append(f"{j[k] / 1e3:.2f} ms {what}")
            how = f" ({', '.join(parts)})"
    samples = []
    with open(lat) as f:
        for line in f:
            t, us = line.split()
            samples.append((float(t), float(us)))
    after = (t2 - t1, window(samples, t1, t2)) if t2 else None
    return (t1 - t0) / 1e3, window(samples, i0, i0 + IDLE * 1e3), window(samples, t0, t1), pause, how, after


def dd_rate(src, n):
    """MiB/s of dd copying n bytes of src to a new file, fsync'd"""
    t0 = time.monotonic()
    run("dd", f"if={src}", f"of={T}/ddcopy", "bs=1M", f"count={n // MIB}", "conv=fsync", "status=none")
    t = time.monotonic() - t0
    os.unlink(f"{T}/ddcopy")
    return n / MIB / t


def fill(disk, off, n, zero=False):
    with open("/dev/zero" if zero else "/dev/urandom", "rb") as src:
        p = subprocess.Popen([V, "write", "--offset", str(off), disk], stdin=subprocess.PIPE)
        for _ in range(0, n, 8 * MIB):
            p.stdin.write(src.read(8 * MIB))
        p.stdin.close()
        if p.wait():
            raise RuntimeError(f"scm-vdisk write {disk} failed")


def job(sc, hold_disk, *cmd):
    """seconds a job takes (the command waits for it), the disk held open"""
    h = sc.hold(hold_disk)
    t0 = time.monotonic()
    run(V, *cmd)
    t = time.monotonic() - t0
    h.stdin.close()
    h.wait(30)
    return t


def jobs_lines(sc):
    n = 512 * MIB
    raw = f"{T}/data.raw"
    with open(raw, "wb") as f:
        for _ in range(0, n, 32 * MIB):
            f.write(os.urandom(32 * MIB))
    rate = dd_rate(raw, n)
    os.unlink(raw)
    print(f"vdisk raw copy (dd bs=1M conv=fsync, 512 MiB): {rate:.2f} MiB/s", flush=True)
    # commit: the child's 512 MiB into its parent
    base, top = f"{T}/mb.vhdx", f"{T}/mt.vhdx"
    run(V, "create", "--size", "1G", base)
    run(V, "create", "--parent", base, top)
    fill(top, 0, n)
    t = job(sc, top, "merge", "--into-parent", top)
    line("merge --into-parent (512 MiB of the child)", n / MIB / t, "MiB/s", rate, "dd copy")
    # stream: the parent's 512 MiB into a new child (the old one is stale)
    os.unlink(top)
    run(V, "create", "--parent", base, top)
    t = job(sc, top, "merge", "--from-parent", top)
    line("merge --from-parent (512 MiB of the parent)", n / MIB / t, "MiB/s", rate, "dd copy")
    # compact: 512 MiB of data and 512 MiB of zeros, all allocated, scanned
    c = f"{T}/mc.vhdx"
    run(V, "create", "--size", "1G", c)
    fill(c, 0, n)
    fill(c, n, n, zero=True)
    t = job(sc, c, "compact", c)
    line("compact (1 GiB allocated, half zeros)", 2 * n / MIB / t, "MiB/s", dd_rate(c, 2 * n),
         "dd copy")


def line(name, v, unit, ref, what):
    r = v / ref if ref and ref > 0 else 0
    print(f"vdisk {name}: {v:.2f} {unit} (ratio {r:.2f} vs {what})", flush=True)


def lat_line(who, total, idle, during, ref_name, ref, pause, longest, extra="", how=""):
    p99i, p99d = pct(idle, 0.99), pct(during, 0.99)
    print(f"vdisk {who}: {total:.2f} s (ratio {total / ref:.2f} vs {ref_name}){extra}", flush=True)
    print(f"vdisk {who} client 4K write latency: p50 {pct(during, 0.5):.0f} us, p99 {p99d:.0f} us "
          f"during ({len(during)} writes); idle p50 {pct(idle, 0.5):.0f} us, p99 {p99i:.0f} us "
          f"(ratio {p99d / p99i:.2f} vs idle p99)", flush=True)
    ps = "n/a" if pause is None else f"{pause:.2f} ms"
    print(f"vdisk {who} switch-over: pause {ps}{how}; longest client write {longest / 1e3:.2f} ms",
          flush=True)


def target(what, value, limit, unit=""):
    if value is None:
        print(f"vdisk target {what}: not measured")
        return
    ok = "met" if value <= limit else "NOT met"
    print(f"vdisk target {what}: {value:.2f}{unit} (target <= {limit}{unit}): {ok}")


def missing(*progs):
    """the first of progs not installed, or None"""
    return next((p for p in progs if not shutil.which(p)), None)


def attempt(name, fn, *args):
    """fn(*args), or None after a "failed (why)" line: one broken peer or
    job does not hide the other lines"""
    try:
        return fn(*args)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
        why = getattr(e, "stderr", None) or str(e)
        print(f"vdisk {name}: failed ({str(why).strip().splitlines()[-1]})", flush=True)
        log(f"{name}: {e!r}")
        return None


def main():
    src = f"{T}/src.vhdx"
    make_source(src)
    info = json.loads(run(V, "info", "--json", src))
    qv = "no qemu-storage-daemon"
    if not missing("qemu-storage-daemon"):
        qv = run("qemu-storage-daemon", "--version").splitlines()[0]
    print(f"vdisk migrate bench: 2 GiB disk, {info.get('block_size', 0) >> 20} MiB blocks, "
          f"{DATA / SIZE:.0%} allocated; the client writes 4 KiB at QD1 over the first GiB; "
          f"{qv}; in {T}", flush=True)
    idle = qt = None
    if missing("qemu-img"):
        print("vdisk copy, idle (qemu-img convert -O vhdx): n/a (no qemu-img: qemu-utils)")
    else:
        idle = attempt("copy, idle (qemu-img convert -O vhdx)", qemu_convert, src)
    durable = None
    if idle:
        print(f"vdisk copy, idle (qemu-img convert -O vhdx): {idle:.2f} s", flush=True)
        durable = attempt("copy, idle, flushed (qemu-img convert -t writeback)", qemu_convert, src, "-t", "writeback")
    if durable:
        print(f"vdisk copy, idle, flushed (qemu-img convert -t writeback -O vhdx): {durable:.2f} s", flush=True)
    ref, ref_name = (durable, "qemu-img convert -t writeback idle") if durable else (idle, "qemu-img convert idle")
    m = missing("qemu-storage-daemon", "fio")
    if "qsd" not in LINES:
        pass
    elif m:
        print(f"vdisk qsd blockdev-mirror: n/a (no {m}: see scripts/deps/bench-vdisk.txt)")
    elif idle:
        qsrc = f"{T}/qsrc.vhdx"
        shutil.copyfile(src, qsrc)
        os.sync()  # (its copy written back before it is timed: see below)
        q = attempt("qsd blockdev-mirror", qsd_mirror, qsrc)
        if q:
            qt, qi, qd, qc = q
            lat_line("qsd blockdev-mirror", qt, qi, qd, ref_name, ref, qc,
                     max(qd, default=0), how=" (block-job-complete to BLOCK_JOB_COMPLETED)")
        os.unlink(qsrc)
    # each line starts with nothing of the one before left to write back:
    # qemu-storage-daemon's 2 GiB DEST, still dirty in the page cache, went
    # out during the next line's migration (the kernel's writeback, 30 s
    # after) and its latency was the device's, not the migration's
    os.sync()
    sc = Scmd()
    try:
        res = None
        if not has_migrate():
            print("vdisk migrate --mode mirror: not available (this build's scm-vdisk has no migrate command)")
        elif idle and "mirror" in LINES:
            res = attempt("migrate --mode mirror", scm_migrate, sc, src, "mirror", f"{T}/sdst.vhdx")
        if res:
            st, si, sd, sp, how, after = res
            vs = f", ratio {st / qt:.2f} vs qsd blockdev-mirror" if qt else ""
            if durable:
                vs = f", ratio {st / idle:.2f} vs qemu-img convert idle unflushed{vs}"
            lat_line("migrate --mode mirror", st, si, sd, ref_name, ref, sp, max(sd, default=0), vs, how)
            # vs the flushed copy: a migration makes DEST durable before its switch-over; qemu-img's default (unsafe) never flushes
            target(f"migrate total vs idle copy ({'flushed' if durable else 'unflushed: no flushed copy'})",
                   st / ref, 1.3, "x")
            print(f"vdisk migrate total vs idle unflushed copy (qemu-img convert's default): {st / idle:.2f}x "
                  f"(information: no fsync, the copy left in the page cache)", flush=True)
            if after and after[1]:
                ms, sa = after
                print(f"vdisk migrate --mode mirror after the job, until its record is written ({ms:.0f} ms): "
                      f"client 4K write p50 {pct(sa, 0.5):.0f} us, p99 {pct(sa, 0.99):.0f} us ({len(sa)} writes; "
                      f"ratio {pct(sa, 0.99) / pct(si, 0.99):.2f} vs idle p99; information)", flush=True)
            target("migrate client p99 vs idle", pct(sd, 0.99) / pct(si, 0.99), 3, "x")
            target("migrate switch-over pause", sp, 10, " ms")
        else:
            for w in ("migrate total vs idle copy", "migrate client p99 vs idle", "migrate switch-over pause"):
                target(w, None, 0)
        # snapshot mode (no target of its own): the disk just moved, still
        # 60% allocated, moves on the same way under the same load
        if res and "snapshot" in LINES:
            sn = attempt("migrate --mode snapshot", scm_migrate, sc, f"{T}/sdst.vhdx", "snapshot",
                         f"{T}/sdst2.vhdx")
            if sn:
                st, si, sd, sp, how, _ = sn
                vs = f", ratio {st / qt:.2f} vs qsd blockdev-mirror" if qt else ""
                lat_line("migrate --mode snapshot", st, si, sd, ref_name, ref, sp, max(sd, default=0), vs, how)
        if "jobs" in LINES:
            attempt("merge and compact", jobs_lines, sc)
    finally:
        stop(sc.p)


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if os.environ.get("VDISK_BENCH_KEEP") == "1":
            log(f"kept {T}")
        else:
            shutil.rmtree(T, ignore_errors=True)
