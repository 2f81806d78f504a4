#!/usr/bin/env bash
# vdisk-provider-bench: the vdisk service through a private scmd, a client
# moving data through the channel's shared buffer, against the raw file
# (buffered) on the same file system. Prints
#   vdisk provider <name>: <value> <unit> (ratio <x> vs raw)
# Needs $SCM_BUILD (tests/bench/run-all sets it) and $SCM_SRC.
set -eu
B=${SCM_BUILD:?}
S=${SCM_SRC:?}
T=$(mktemp -d "${VDISK_BENCH_DIR:-$B}/vdisk-pbench.XXXXXX")
pid=
cleanup() {
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
{ "name": "vdisk", "interface": "vdisk", "exec": ["$B/libexec/scm-vdisk-provider"], "allow": ["bench"] }
JSON
"$B/bin/scmctl" service register "$T/vdisk.json" >/dev/null
"$B/bin/scmctl" endpoint create bench >/dev/null
head -c 512M /dev/urandom >"$T/raw"
"$B/bin/scm-vdisk" create --size 512M "$T/d.vhdx"
"$B/libexec/vdisk-client" --endpoint "$T/run/endpoints/bench.sock" copy-in "$T/d.vhdx" "$T/raw"
"$B/libexec/vdisk-client" --endpoint "$T/run/endpoints/bench.sock" bench "$T/d.vhdx" >"$T/prov.out"
"$B/libexec/vdisk-bench" --raw "$T/raw" >"$T/raw.out"
# vdisk-client prints NAME<TAB>VALUE<TAB>UNIT<TAB>RAW-PATTERN
while IFS=$'\t' read -r name v unit rawname; do
	r=$(awk -v n="raw $rawname" 'index($0, n" ") == 1 { print $NF }' "$T/raw.out")
	awk -v n="$name" -v v="$v" -v u="$unit" -v r="$r" -v rn="$rawname" \
		'BEGIN { printf "vdisk provider %s: %.1f %s (ratio %.2f vs raw %s)\n", n, v, u, (r > 0 ? v / r : 0), rn }'
done <"$T/prov.out"
