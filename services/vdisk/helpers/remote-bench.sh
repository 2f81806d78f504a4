#!/usr/bin/env bash
# vdisk-remote-bench: remote parents (docs/vdisk.md "Remote parents").
# qemu-nbd serves a 256 MiB VHDX of random data on a unix socket; a child
# over it is opened, read cold and streamed through the engine
# (vdisk-remote-lines), and the stream compared with libnbd reading the
# export alone. The server's page cache is hot: the lines measure the
# software between the child and the export, not a network or a disk.
# Needs $SCM_BUILD (tests/bench/run-all sets it), qemu-utils.
set -eu
B=${SCM_BUILD:?}
T=$(mktemp -d "${VDISK_BENCH_DIR:-$B}/vdisk-rbench.XXXXXX")
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
head -c 256M /dev/urandom >"$T/parent.raw"
qemu-img convert -f raw -O vhdx -o subformat=dynamic "$T/parent.raw" "$T/parent.vhdx"
rm -f "$T/parent.raw"
qemu-nbd -f vhdx -r -x p -k "$T/p.sock" --persistent "$T/parent.vhdx" 2>"$T/qemu-nbd.log" &
qpid=$!
for _ in $(seq 600); do [ -S "$T/p.sock" ] && break; sleep 0.05; done
# warm the server's cache, so both readers see the same
cat "$T/parent.vhdx" >/dev/null
"$B/libexec/vdisk-remote-lines" "nbd+unix:///p?socket=$T/p.sock" "$T"
