#!/usr/bin/env bash
# oci-bench: `podman run --rm IMAGE /bin/true` with scm-oci as podman's
# runtime, against crun and runc (those installed, and able to run here:
# crun refuses a hybrid cgroup host) in the same run, rounds interleaved.
# Issue 16's target: scm-oci faster than both. One line a runtime:
#   oci podman run --rm /bin/true, RUNTIME: MEDIAN ms (min MIN, N runs), RATIO x scm-oci
#   ROUNDS=10 oci-bench
set -u
B=${SCM_BUILD:-$PWD/build}
BIN=$B/bin
ROUNDS=${ROUNDS:-10}
command -v podman >/dev/null || { echo "oci podman run --rm /bin/true: n/a (no podman)"; exit 0; }
T=$(mktemp -d /tmp/oci-bench.XXXXXX)
chmod 711 "$T"
export SCM_RUNTIME_DIR=$T/run
mkdir -p "$T/cfg"
"$BIN/scmd" --runtime-dir "$T/run" --state-dir "$T/state" --config "$T/cfg" --idl-path "${SCM_SRC:-.}/stubs/idl" 2>"$T/scmd.log" &
SCMD=$!
P=(podman --root "$T/storage" --runroot "$T/runroot" --tmpdir "$T/ptmp" --cgroup-manager cgroupfs --events-backend file)
cleanup() {
	"${P[@]}" rm -af -t 0 >/dev/null 2>&1
	grep -o " $T/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
	kill "$SCMD" 2>/dev/null; wait "$SCMD" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
for _ in $(seq 200); do [ -S "$T/run/control.sock" ] && break; sleep 0.02; done
R=$T/image
mkdir -p "$R/bin"
cp /bin/busybox "$R/bin/" && ln -s busybox "$R/bin/true"
tar -C "$R" -cf "$T/image.tar" .
"${P[@]}" import -q "$T/image.tar" localhost/oci-bench >/dev/null
OPTS=(--rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/oci-bench /bin/true)
runtimes=("$BIN/scm-oci")
for r in crun runc; do
	p=$(command -v "$r") || continue
	# one try: a runtime that cannot run here is left out, saying why
	if ! err=$("${P[@]}" --runtime "$p" run "${OPTS[@]}" 2>&1); then
		echo "oci podman run --rm /bin/true, $r: n/a ($(echo "$err" | tail -n1))"
		continue
	fi
	runtimes+=("$p")
done
"${P[@]}" --runtime "$BIN/scm-oci" --runtime-flag "scm-runtime-dir=$T/run" run "${OPTS[@]}" || exit 1
declare -A ms
for _ in $(seq "$ROUNDS"); do
	for rt in "${runtimes[@]}"; do
		flags=()
		[ "$rt" = "$BIN/scm-oci" ] && flags=(--runtime-flag "scm-runtime-dir=$T/run")
		t0=$(date +%s%N)
		"${P[@]}" --runtime "$rt" "${flags[@]}" run "${OPTS[@]}" || exit 1
		t1=$(date +%s%N)
		ms[$rt]+="$(( (t1 - t0) / 1000 )) "
	done
done
stat() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f %.1f %d", v[int((NR + 1) / 2)] / 1000, v[1] / 1000, NR }'; }
read -r base _ _ <<<"$(stat <<<"${ms[$BIN/scm-oci]}")"
for rt in "${runtimes[@]}"; do
	read -r med min n <<<"$(stat <<<"${ms[$rt]}")"
	name=$(basename "$rt")
	echo "oci podman run --rm /bin/true, $name: $med ms (min $min, $n runs), $(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", a / b }')x scm-oci"
done
