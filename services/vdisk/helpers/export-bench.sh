#!/usr/bin/env bash
# vdisk-export-bench: the NBD export (scm-vdisk export: the provider serves
# the connections itself) against qemu-nbd serving the same VHDX, in the same run,
# both read-only from a hot page cache over a unix socket, driven by fio's
# nbd engine (libnbd): 4 KiB random reads at queue depth 1 and 32, 1 MiB
# sequential reads; and nbdcopy's whole-disk read of each. The export runs
# twice: served by the provider (the default) and through nbdkit and our
# plugin with its read ring (--nbdkit, what TLS exports use). Prints
#   vdisk export <pattern>: export X, qemu-nbd Y (Z x qemu-nbd); through nbdkit C (W x)
#   vdisk export target: ahead of qemu-nbd on every line: met | NOT met
# Needs $SCM_BUILD and $SCM_SRC (tests/bench/run-all sets them).
set -eu
B=${SCM_BUILD:?}
S=${SCM_SRC:?}
for c in nbdkit qemu-nbd fio nbdcopy; do
	command -v "$c" >/dev/null || { echo "vdisk export: n/a ($c missing; scripts/deps/bench-vdisk.txt)"; exit 0; }
done
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "vdisk export: n/a (fio without its nbd engine)"; exit 0; }
T=$(mktemp -d "${VDISK_BENCH_DIR:-$B}/vdisk-xbench.XXXXXX")
pid= npid=
cleanup() {
	SCM_EXPORT_DIR=$T/exports "$B/bin/scm-vdisk" export --stop bench >/dev/null 2>&1 || true
	SCM_EXPORT_DIR=$T/exports "$B/bin/scm-vdisk" export --stop benchc >/dev/null 2>&1 || true
	[ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/cfg/services" "$T/run"
"$B/bin/scmd" --runtime-dir "$T/run" --config "$T/cfg" --idl-path "$S/stubs/idl" 2>"$T/scmd.log" &
pid=$!
for _ in $(seq 200); do [ -S "$T/run/control.sock" ] && break; sleep 0.02; done
export SCM_RUNTIME_DIR=$T/run SCM_EXPORT_DIR=$T/exports
cat >"$T/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk", "exec": ["$B/libexec/scm-vdisk-provider"], "allow": ["bench"] }
JSON
"$B/bin/scmctl" service register "$T/vdisk.json" >/dev/null
"$B/bin/scmctl" endpoint create bench >/dev/null
EP=$T/run/endpoints/bench.sock

head -c 512M /dev/urandom >"$T/raw"
"$B/bin/scm-vdisk" create --size 512M "$T/d.vhdx"
"$B/libexec/vdisk-client" --endpoint "$EP" copy-in "$T/d.vhdx" "$T/raw"
rm -f "$T/raw"
cat "$T/d.vhdx" >/dev/null # hot for both

# fio_run WHO URI NAME RW BS QD -> "WHO NAME VALUE" (IOPS, or MiB/s for 1M)
fio_run() {
	local out
	out=$(fio --name="$3" --ioengine=nbd --uri="$2" --rw="$4" --bs="$5" --iodepth="$6" \
		--time_based --runtime=3 --ramp_time=1 --output-format=json 2>>"$T/fio.log" | sed -n '/^{/,$p')
	python3 -c 'import json,sys
j=json.loads(sys.stdin.read())["jobs"][0]["read"]
print("%s %s %.1f" % (sys.argv[1], sys.argv[2], j["iops"] if sys.argv[3] != "1M" else j["bw_bytes"] / 1048576))' "$1" "$3" "$5" <<<"$out"
}
# copy_run WHO URI -> "WHO nbdcopy MiB/s"
copy_run() {
	local t0
	t0=$(date +%s.%N)
	nbdcopy "$2" null: 2>>"$T/fio.log"
	awk -v w="$1" -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%s nbdcopy %.1f\n", w, 512 / (b - a) }'
}
# the export twice, served by the provider (the default) and through
# nbdkit (--nbdkit, with its read ring), and qemu-nbd, all serving at once; each line is run on
# the three one after the other, so that the load of the machine (shared,
# and it swings) falls on all three alike; VDISK_EXPORT_ROUNDS times
# (default 2), the figures averaged
"$B/bin/scm-vdisk" export --endpoint "$EP" --detach --readonly \
	--name bench "$T/d.vhdx" --nbd "unix:$T/x.sock" >/dev/null
"$B/bin/scm-vdisk" export --endpoint "$EP" --detach --readonly --nbdkit --lanes "${VDISK_EXPORT_LANES:-4}" \
	--name benchc "$T/d.vhdx" --nbd "unix:$T/c.sock" >/dev/null
qemu-nbd -r -f vhdx --cache=writeback --shared=8 --persistent -k "$T/q.sock" "$T/d.vhdx" 2>"$T/qemu-nbd.log" &
npid=$!
for _ in $(seq 200); do [ -S "$T/q.sock" ] && break; sleep 0.02; done
declare -A URIS=([export]="nbd+unix:///bench?socket=$T/x.sock" [nbdkit]="nbd+unix:///benchc?socket=$T/c.sock"
	[qemu-nbd]="nbd+unix:///?socket=$T/q.sock")
for _ in $(seq "${VDISK_EXPORT_ROUNDS:-2}"); do
	for who in export nbdkit qemu-nbd; do fio_run $who "${URIS[$who]}" rand-read-4k-qd1 randread 4k 1; done
	for who in export nbdkit qemu-nbd; do fio_run $who "${URIS[$who]}" rand-read-4k-qd32 randread 4k 32; done
	for who in export nbdkit qemu-nbd; do fio_run $who "${URIS[$who]}" seq-read-1m read 1M 1; done
	for who in export nbdkit qemu-nbd; do copy_run $who "${URIS[$who]}"; done
done >"$T/res"
"$B/bin/scm-vdisk" export --stop bench
"$B/bin/scm-vdisk" export --stop benchc
kill "$npid"; wait "$npid" 2>/dev/null || true; npid=

val() { awk -v w="$1" -v p="$2" '$1 == w && $2 == p { t += $3; n++ } END { print t / n }' "$T/res"; }
met=1
for pat in rand-read-4k-qd1 rand-read-4k-qd32 seq-read-1m nbdcopy; do
	unit=IOPS; [ "$pat" = seq-read-1m ] || [ "$pat" = nbdcopy ] && unit=MiB/s
	x=$(val export "$pat"); q=$(val qemu-nbd "$pat"); c=$(val nbdkit "$pat")
	awk -v n="$pat" -v x="$x" -v q="$q" -v c="$c" -v u="$unit" 'BEGIN {
		printf "vdisk export %s: export %.1f %s, qemu-nbd %.1f %s (%.2fx qemu-nbd); through nbdkit %.1f (%.2fx)\n", n, x, u, q, u, x / q, c, c / q }'
	awk -v x="$x" -v q="$q" 'BEGIN { exit !(x > q) }' || met=
done
echo "vdisk export target: ahead of qemu-nbd on every line: $([ -n "$met" ] && echo met || echo "NOT met")"
