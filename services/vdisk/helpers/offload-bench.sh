#!/usr/bin/env bash
# vdisk-offload-bench: an offload copy (docs/vdisk.md "Offload copy") of
# 1 GiB ($OFFLOAD_MIB) between two providers (two services of a private
# scmd), against `cp --reflink=never` of the same VHDX file, a client that
# reads the data out through one provider and writes it in through the
# other (vdisk-client copy-out, copy-in), `nbdcopy --flush` between two
# exports of the two providers, and `qemu-img convert -t writeback` of
# the VHDX (issue 14's lines). Prints
#   vdisk offload <what>: <value> <unit> (ratio <x> vs <anchor>)
# Warm caches for all (nothing dropped: the machine is shared). Needs
# $SCM_BUILD and $SCM_SRC (tests/bench/run-all sets them).
set -eu
B=${SCM_BUILD:?}
S=${SCM_SRC:?}
T=$(mktemp -d "${VDISK_BENCH_DIR:-$B}/vdisk-obench.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
mkdir -p "$T/cfg/services" "$T/run"
for s in va vb; do
	printf '{ "name": "%s", "interface": "vdisk", "exec": ["%s"], "allow": ["bench"] }\n' \
		"$s" "$B/libexec/scm-vdisk-provider" >"$T/cfg/services/$s.json"
done
"$B/bin/scmd" --runtime-dir "$T/run" --config "$T/cfg" --idl-path "$S/stubs/idl" 2>"$T/scmd.log" &
pid=$!
for _ in $(seq 200); do [ -S "$T/run/control.sock" ] && break; sleep 0.02; done
export SCM_RUNTIME_DIR=$T/run SCM_ENDPOINT=$T/run/endpoints/bench.sock
"$B/bin/scmctl" endpoint create bench >/dev/null
V=$B/bin/scm-vdisk
C=$B/libexec/vdisk-client
MIB=${OFFLOAD_MIB:-1024}
head -c "${MIB}M" /dev/urandom >"$T/raw"
"$V" create --size "${MIB}M" --block-size 32M "$T/src.vhdx"
for ((o = 0; o < MIB; o += 256)); do # (write takes its data in memory: 256 MiB at a time)
	dd if="$T/raw" bs=1M skip="$o" count=256 status=none | "$V" write --offset "$((o << 20))" "$T/src.vhdx"
done
cat "$T/src.vhdx" >/dev/null

# seconds (real) and the client's CPU seconds (user + sys) of a command
measure() {
	local TIMEFORMAT='%R %U %S'
	{ time "$@" >/dev/null 2>"$T/err"; } 2>"$T/time" || { cat "$T/err" >&2; return 1; }
	awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$T/time"
}
best() { # best of 3 runs of: measure CMD (after PREP)
	local prep=$1; shift
	local b="" m
	for _ in 1 2 3; do
		eval "$prep"
		m=$(measure "$@")
		if [ -z "$b" ] || awk -v a="${m% *}" -v b="${b% *}" 'BEGIN { exit !(a < b) }'; then b=$m; fi
	done
	echo "$b"
}
newdst='rm -f "$T/dst.vhdx" "$T/cp.vhdx" "$T/out.raw"; "$V" create --size "${MIB}M" --block-size 32M "$T/dst.vhdx"'
off=$(best "$newdst" "$V" offload-copy --service va --dest-service vb "$T/src.vhdx" "$T/dst.vhdx")
"$V" convert -O raw "$T/dst.vhdx" "$T/check.raw"
cmp "$T/raw" "$T/check.raw"
cp=$(best 'rm -f "$T/cp.vhdx"' cp --reflink=never "$T/src.vhdx" "$T/cp.vhdx")
# the provider makes the copy durable when the handle closes (fdatasync):
# cp followed by an fsync of the copy is the like-for-like anchor
cps=$(best 'rm -f "$T/cp.vhdx"' sh -c "cp --reflink=never '$T/src.vhdx' '$T/cp.vhdx' && sync '$T/cp.vhdx'")
thru=$(best "$newdst" sh -c "'$C' --service va copy-out '$T/src.vhdx' '$T/out.raw' && '$C' --service vb copy-in '$T/dst.vhdx' '$T/out.raw'")
# nbdcopy between two exports (the providers serve them: a read-only one
# of the source on va, a writable one of a new disk on vb), flushed at the
# end as the offload copy is durable at its end
"$V" export --detach --service va --readonly --name osrc "$T/src.vhdx" --nbd "unix:$T/src.sock" >/dev/null
newexp='"$V" export --stop odst >/dev/null 2>&1 || true; '"$newdst"'; "$V" export --detach --service vb --name odst "$T/dst.vhdx" --nbd "unix:$T/dst.sock" >/dev/null'
nbd=$(best "$newexp" nbdcopy --flush "nbd+unix:///osrc?socket=$T/src.sock" "nbd+unix:///odst?socket=$T/dst.sock")
"$V" export --stop odst >/dev/null
"$V" export --stop osrc >/dev/null
"$V" convert -O raw "$T/dst.vhdx" "$T/check.raw"
cmp "$T/raw" "$T/check.raw"
qc=$(best 'rm -f "$T/qc.vhdx"' qemu-img convert -f vhdx -O vhdx -t writeback "$T/src.vhdx" "$T/qc.vhdx")
mib=$MIB
awk -v o="$off" -v c="$cp" -v cs="$cps" -v t="$thru" -v n="$nbd" -v q="$qc" -v m=$mib 'BEGIN {
	split(o, O, " "); split(c, C, " "); split(cs, S, " "); split(t, X, " "); split(n, N, " "); split(q, Q, " ")
	printf "vdisk offload copy %d MiB: %.3f s, %.0f MiB/s (ratio %.2f vs cp --reflink=never %.3f s)\n", m, O[1], m / O[1], O[1] / C[1], C[1]
	printf "vdisk offload copy %d MiB, durable: %.3f s (ratio %.2f vs cp --reflink=never + fsync %.3f s)\n", m, O[1], O[1] / S[1], S[1]
	printf "vdisk offload copy %d MiB vs the client reading and writing through the providers: %.3f s (ratio %.2f vs %.3f s)\n", m, O[1], O[1] / X[1], X[1]
	printf "vdisk offload copy %d MiB vs nbdcopy --flush between two exports: %.3f s (ratio %.2f vs %.3f s)\n", m, O[1], O[1] / N[1], N[1]
	printf "vdisk offload copy %d MiB vs qemu-img convert -t writeback: %.3f s (ratio %.2f vs %.3f s)\n", m, O[1], O[1] / Q[1], Q[1]
	printf "vdisk offload copy client CPU: %.3f s (ratio %.3f vs the client through the providers %.3f s, %.3f vs nbdcopy %.3f s)\n", O[2], (X[2] > 0 ? O[2] / X[2] : 0), X[2], (N[2] > 0 ? O[2] / N[2] : 0), N[2]
}'
