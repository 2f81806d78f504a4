#!/usr/bin/env bash
# vdisk-nbd-bench: reads of one VHDX three ways, in the same run: the
# engine in process (vdisk-bench --read-lines), through the vdisk provider
# (vdisk-client bench-read: a client of a private scmd, calls pipelined on
# its channel for queue depth 32), and qemu-nbd serving the same file,
# driven by fio's nbd engine (libnbd). All three read a hot page cache:
# the lines compare the software between a reader and the file. Then the
# latency another client's 4 KiB reads see while one client flushes 1.5 GiB
# of dirty data on another disk. Prints
#   vdisk read <pattern>: engine X, provider Y (R x engine), qemu-nbd Z (provider S x qemu-nbd)
#   vdisk latency under flush: ...
#   vdisk target ...: met | NOT met
# Needs $SCM_BUILD and $SCM_SRC (tests/bench/run-all sets them);
# $VDISK_PROVIDER runs another provider binary (to compare builds).
set -eu
B=${SCM_BUILD:?}
S=${SCM_SRC:?}
T=$(mktemp -d "${VDISK_BENCH_DIR:-$B}/vdisk-nbench.XXXXXX")
pid= npid=
cleanup() {
	[ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/cfg/services" "$T/run"
"$B/bin/scmd" --runtime-dir "$T/run" --config "$T/cfg" --idl-path "$S/stubs/idl" 2>"$T/scmd.log" &
pid=$!
for _ in $(seq 200); do [ -S "$T/run/control.sock" ] && break; sleep 0.02; done
export SCM_RUNTIME_DIR=$T/run
cat >"$T/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk", "exec": ["${VDISK_PROVIDER:-$B/libexec/scm-vdisk-provider}"], "allow": ["bench"] }
JSON
"$B/bin/scmctl" service register "$T/vdisk.json" >/dev/null
"$B/bin/scmctl" endpoint create bench >/dev/null
EP=$T/run/endpoints/bench.sock

head -c 512M /dev/urandom >"$T/raw"
"$B/bin/scm-vdisk" create --size 512M "$T/d.vhdx"
"$B/libexec/vdisk-client" --endpoint "$EP" copy-in "$T/d.vhdx" "$T/raw"
rm -f "$T/raw"
cat "$T/d.vhdx" >/dev/null # hot for everyone

"$B/libexec/vdisk-bench" --read-lines "$T/d.vhdx" >"$T/res"
"$B/libexec/vdisk-client" --endpoint "$EP" bench-read "$T/d.vhdx" >>"$T/res"

have_nbd=
if command -v qemu-nbd >/dev/null && command -v fio >/dev/null && fio --enghelp 2>/dev/null | grep -qw nbd; then
	have_nbd=1
	qemu-nbd -r -f vhdx --cache=writeback --shared=8 --persistent -k "$T/nbd.sock" "$T/d.vhdx" 2>"$T/qemu-nbd.log" &
	npid=$!
	for _ in $(seq 200); do [ -S "$T/nbd.sock" ] && break; sleep 0.02; done
	fio_run() { # NAME RW BS QD -> prints "qemu-nbd NAME VALUE" (IOPS, or MiB/s for 1M)
		local out
		out=$(fio --name="$1" --ioengine=nbd --uri="nbd+unix:///?socket=$T/nbd.sock" --rw="$2" --bs="$3" \
			--iodepth="$4" --time_based --runtime=3 --ramp_time=1 --output-format=json 2>>"$T/fio.log" |
			sed -n '/^{/,$p') # the engine says "connected" on stdout first
		python3 -c 'import json,sys
j=json.loads(sys.stdin.read())["jobs"][0]["read"]
print("qemu-nbd %s %.1f" % (sys.argv[1], j["iops"] if sys.argv[2] != "1M" else j["bw_bytes"] / 1048576))' "$1" "$3" <<<"$out"
	}
	fio_run rand-read-4k-qd1 randread 4k 1 >>"$T/res"
	fio_run rand-read-4k-qd32 randread 4k 32 >>"$T/res"
	fio_run seq-read-1m read 1M 1 >>"$T/res"
	# fio's nbd engine tops out low on large requests whatever qemu-nbd
	# serves (a raw file too): nbdcopy's whole-disk read is the fairer
	# figure for qemu-nbd's sequential speed
	if command -v nbdcopy >/dev/null; then
		t0=$(date +%s.%N)
		nbdcopy "nbd+unix:///?socket=$T/nbd.sock" null: 2>>"$T/fio.log" &&
			awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "nbdcopy seq-read %.1f\n", 512 / (b - a) }' >>"$T/res"
	fi
	kill "$npid"; wait "$npid" 2>/dev/null || true; npid=
fi

val() { awk -v w="$1" -v p="$2" '$1 == w && $2 == p { print $3 }' "$T/res"; }
met_all=1
for pat in rand-read-4k-qd1 rand-read-4k-qd32 seq-read-1m; do
	unit=IOPS; [ "$pat" = seq-read-1m ] && unit=MiB/s
	e=$(val engine "$pat"); p=$(val provider "$pat"); q=$(val qemu-nbd "$pat")
	if [ -n "$q" ]; then
		awk -v n="$pat" -v e="$e" -v p="$p" -v q="$q" -v u="$unit" 'BEGIN {
			printf "vdisk read %s: engine %.1f %s, provider %.1f %s (%.2fx engine), qemu-nbd+fio %.1f %s (provider %.2fx qemu-nbd)\n",
				n, e, u, p, u, p / e, q, u, p / q }'
		awk -v p="$p" -v q="$q" 'BEGIN { exit !(p > q) }' || met_all=
	else
		awk -v n="$pat" -v e="$e" -v p="$p" -v u="$unit" 'BEGIN {
			printf "vdisk read %s: engine %.1f %s, provider %.1f %s (%.2fx engine), qemu-nbd n/a (no qemu-nbd or fio nbd engine)\n",
				n, e, u, p, u, p / e }'
		met_all=
	fi
done

n=$(val nbdcopy seq-read)
[ -n "$n" ] && echo "vdisk read seq whole disk: qemu-nbd+nbdcopy (its default parallelism) $n MiB/s; provider 1M qd1 $(val provider seq-read-1m) MiB/s"

"$B/bin/scm-vdisk" create --size 2G "$T/a.vhdx"
"$B/bin/scm-vdisk" create --size 64M "$T/b.vhdx"
head -c 64M /dev/urandom >"$T/b.raw"
"$B/libexec/vdisk-client" --endpoint "$EP" copy-in "$T/b.vhdx" "$T/b.raw"
lat=$("$B/libexec/vdisk-client" --endpoint "$EP" flush-latency "$T/a.vhdx" "$T/b.vhdx" 1536)
echo "vdisk latency under flush (client A flushes 1.5 GiB dirty on disk a, client B reads 4K of disk b): $lat"

e=$(val engine rand-read-4k-qd32); p=$(val provider rand-read-4k-qd32); pv=$(val provider rand-read-4k-readv32)
awk -v e="$e" -v p="$pv" 'BEGIN { printf "vdisk read rand-read-4k 32 per readv call: provider %.1f IOPS (%.2fx engine qd32)\n", p, p / e }'
if awk -v e="$e" -v p="$p" 'BEGIN { exit !(p >= 0.9 * e) }'; then r=met; else r="NOT met"; fi
echo "vdisk target: provider rand-read 4K qd32 (32 calls in flight) within 0.9x of the engine in process: $(awk -v e="$e" -v p="$p" 'BEGIN { printf "%.2fx", p / e }'), $r"
echo "vdisk target: provider ahead of qemu-nbd on every read line: $([ -n "$met_all" ] && echo met || echo "NOT met")"
