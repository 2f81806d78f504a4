#!/usr/bin/env bash
# vdisk-offload-bench: an offload copy (docs/vdisk.md "Offload copy") of
# 256 MiB between two providers (two services of a private scmd), against
# `cp --reflink=never` of the same VHDX file and against a client that
# reads the data out through one provider and writes it in through the
# other (vdisk-client copy-out, copy-in). Prints
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
head -c 256M /dev/urandom >"$T/raw"
"$V" create --size 256M --block-size 32M "$T/src.vhdx"
"$V" write --offset 0 "$T/src.vhdx" <"$T/raw"
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
newdst='rm -f "$T/dst.vhdx" "$T/cp.vhdx" "$T/out.raw"; "$V" create --size 256M --block-size 32M "$T/dst.vhdx"'
off=$(best "$newdst" "$V" offload-copy --service va --dest-service vb "$T/src.vhdx" "$T/dst.vhdx")
"$V" convert -O raw "$T/dst.vhdx" "$T/check.raw"
cmp "$T/raw" "$T/check.raw"
cp=$(best 'rm -f "$T/cp.vhdx"' cp --reflink=never "$T/src.vhdx" "$T/cp.vhdx")
# the provider makes the copy durable when the handle closes (fdatasync):
# cp followed by an fsync of the copy is the like-for-like anchor
cps=$(best 'rm -f "$T/cp.vhdx"' sh -c "cp --reflink=never '$T/src.vhdx' '$T/cp.vhdx' && sync '$T/cp.vhdx'")
thru=$(best "$newdst" sh -c "'$C' --service va copy-out '$T/src.vhdx' '$T/out.raw' && '$C' --service vb copy-in '$T/dst.vhdx' '$T/out.raw'")
mib=256
awk -v o="$off" -v c="$cp" -v cs="$cps" -v t="$thru" -v m=$mib 'BEGIN {
	split(o, O, " "); split(c, C, " "); split(cs, S, " "); split(t, X, " ")
	printf "vdisk offload copy %d MiB: %.3f s, %.0f MiB/s (ratio %.2f vs cp --reflink=never %.3f s)\n", m, O[1], m / O[1], O[1] / C[1], C[1]
	printf "vdisk offload copy %d MiB, durable: %.3f s (ratio %.2f vs cp --reflink=never + fsync %.3f s)\n", m, O[1], O[1] / S[1], S[1]
	printf "vdisk offload copy %d MiB vs the client reading and writing through the providers: %.3f s (ratio %.2f vs %.3f s)\n", m, O[1], O[1] / X[1], X[1]
	printf "vdisk offload copy client CPU: %.3f s (ratio %.3f vs the client through the providers %.3f s)\n", O[2], (X[2] > 0 ? O[2] / X[2] : 0), X[2]
}'
