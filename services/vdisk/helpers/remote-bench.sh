#!/usr/bin/env bash
# vdisk-remote-bench: remote parents (docs/vdisk.md "Remote parents").
# qemu-nbd serves a 256 MiB VHDX of random data on a unix socket; a child
# over it is opened, read cold and streamed through the engine
# (vdisk-remote-lines), and the stream compared with libnbd reading the
# export alone. The server's page cache is hot: the lines measure the
# software between the child and the export, not a network or a disk.
# Then the same over TCP on loopback from nbdkit's file plugin (the
# server our export runs), in the clear and with TLS (PSK, nbds://): what
# TLS adds to the first read and to the stream. (Not qemu-nbd for these:
# its TLS replies wait for the client's delayed ACK, ~40 ms a request,
# which would measure qemu-nbd, not us.)
# Needs $SCM_BUILD (tests/bench/run-all sets it), qemu-utils, nbdkit, gnutls-bin.
set -eu
B=${SCM_BUILD:?}
T=$(mktemp -d "${VDISK_BENCH_DIR:-$B}/vdisk-rbench.XXXXXX")
qpid=
cleanup() {
	[ -n "$qpid" ] && kill "$qpid" 2>/dev/null && wait "$qpid" 2>/dev/null
	rm -rf "$T"
}
stop() { kill "$qpid"; wait "$qpid" 2>/dev/null || true; qpid=; }
# a free port from the kernel (released again for the server to take)
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# tcp_up PORT: until the server listens
tcp_up() {
	for _ in $(seq 600); do
		python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" \
			2>/dev/null && return 0
		sleep 0.05
	done
	cat "$T/qemu-nbd.log"; return 1
}
trap cleanup EXIT
head -c 256M /dev/urandom >"$T/parent.raw"
qemu-img convert -f raw -O vhdx -o subformat=dynamic "$T/parent.raw" "$T/parent.vhdx"
qemu-nbd -f vhdx -r -x p -k "$T/p.sock" --persistent "$T/parent.vhdx" 2>"$T/qemu-nbd.log" &
qpid=$!
for _ in $(seq 600); do [ -S "$T/p.sock" ] && break; sleep 0.05; done
# warm the server's cache, so both readers see the same
cat "$T/parent.vhdx" >/dev/null
echo "unix socket:"
"$B/libexec/vdisk-remote-lines" "nbd+unix:///p?socket=$T/p.sock" "$T"
stop
port=$(free_port)
nbdkit -f -r -e p -i 127.0.0.1 -p "$port" file "$T/parent.raw" 2>"$T/qemu-nbd.log" &
qpid=$!
tcp_up "$port"
echo "TCP (loopback, nbdkit), no TLS:"
"$B/libexec/vdisk-remote-lines" "nbd://127.0.0.1:$port/p" "$T"
stop
psktool -u bench -p "$T/keys.psk" >/dev/null
port=$(free_port)
nbdkit -f -r -e p -i 127.0.0.1 -p "$port" --tls=require --tls-psk="$T/keys.psk" file "$T/parent.raw" \
	2>"$T/qemu-nbd.log" &
qpid=$!
tcp_up "$port"
echo "TCP (loopback, nbdkit), TLS (PSK):"
SCM_VDISK_NBD_TLS_PSK_FILE=$T/keys.psk SCM_VDISK_NBD_TLS_USERNAME=bench \
	"$B/libexec/vdisk-remote-lines" "nbds://127.0.0.1:$port/p" "$T"
