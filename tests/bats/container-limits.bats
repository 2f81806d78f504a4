#!/usr/bin/env bats
# The default sandbox: containers scmd runs without a profile that sets
# limits still get pids and memory limits (swap counted in), bounded tmpfs
# /tmp, /run and /dev/shm whose pages count against the container's
# memory, and a log that is capped, rotated and kept on disk in the state
# directory. Each test checks the effect on the host: processes counted in
# the container's pid namespace, the cgroup's own files, the host's Shmem,
# the bytes on disk. As root and, where it applies, under a rootless scmd.
load helpers

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/small.json" <<'JSON'
{"name":"small","priority":10,"sandbox":{"limits":{"memory":67108864}}}
JSON
	cat >"$SCMT/cfg/profiles/smalllog.json" <<'JSON'
{"name":"smalllog","priority":10,"sandbox":{"log":{"max_bytes":1048576,"files":3}}}
JSON
}

setup() {
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
	start_scmd
	N=lim$$ # cgroups are scm/NAME host-wide: names no other test uses
	CTL=("$SCMCTL")
}

teardown() {
	"${CTL[@]}" --json container list 2>/dev/null | python3 -c '
import json,sys
for c in json.load(sys.stdin)["containers"]:
    if c["state"]=="running": print(c["name"])' | while read -r n; do "${CTL[@]}" container kill "$n" >/dev/null 2>&1 || true; done
	if [ -n "${UPID:-}" ]; then kill "$UPID" 2>/dev/null || true; wait "$UPID" 2>/dev/null || true; fi
	[ -z "${U:-}" ] || rm -rf "$U"
	stop_scmd
}

# A second scmd run by scmtest (rootless), state under XDG_STATE_HOME (the
# default for a user); scmctl for it is "${CTL[@]}".
start_user_scmd() {
	U=$(mktemp -d /tmp/scm-limits-user.XXXXXX)
	mkdir -p "$U/cfg"
	chmod 755 "$U"; chown -R scmtest "$U"
	setpriv --reuid scmtest --regid scmtest --clear-groups env XDG_STATE_HOME="$U/xdg" \
		"$SCMD" --runtime-dir "$U/run" --config "$U/cfg" --idl-path "$SCM_SRC/stubs/idl" 2>"$U/scmd.log" &
	UPID=$!
	wait_until 60 test -S "$U/run/control.sock" || { cat "$U/scmd.log"; return 1; }
	CTL=(setpriv --reuid scmtest --regid scmtest --clear-groups env SCM_RUNTIME_DIR="$U/run" "$SCMCTL")
}

wait_log() { # NAME TEXT: until the container's log has TEXT
	wait_until 60 log_has "$1" "$2" && return 0
	echo "no '$2' in the log of $1:"; "${CTL[@]}" container logs "$1"
	return 1
}

log_has() { "${CTL[@]}" container logs "$1" 2>/dev/null | grep -q "$2"; }

wait_exited() { # NAME
	for _ in $(seq 1200); do
		"${CTL[@]}" container show "$1" 2>/dev/null | grep -q '"state":"exited"' && return 0
		sleep 0.05
	done
	return 1
}

# Processes in the pid namespace of the container NAME (its PID 1 included).
ns_procs() {
	local pid ns n=0 p
	pid=$("${CTL[@]}" --json container show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	ns=$(readlink "/proc/$pid/ns/pid")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] && n=$((n + 1))
	done
	echo "$n"
}

# The container's file FILE of cgroup controller CTRL (v2 or v1), or nothing.
cg_file() { # NAME CTRL FILE: in the cgroups of this scmd's instance (scm/INSTANCE/NAME)
	local f inst
	inst=$(cat "$SCM_RUNTIME_DIR/containers/instance")
	for f in "/sys/fs/cgroup/unified/scm/$inst/$1/$3" "/sys/fs/cgroup/scm/$inst/$1/$3" \
		"/sys/fs/cgroup/$2/scm/$inst/$1/$3"; do
		[ -e "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

shmem_kb() { awk '/^Shmem:/ {print $2}' /proc/meminfo; }

# KiB the host holds for the container NAME's tmpfs mounts DIR...: what
# their files take, counted through the container's root from outside.
# Unlike the host's Shmem, no other test on the machine moves it.
held_kb() { # CTL... -- NAME DIR...
	local ctl=() pid d n=0 k
	while [ "$1" != -- ]; do ctl+=("$1"); shift; done
	shift
	pid=$("${ctl[@]}" --json container show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	shift
	for d in "$@"; do
		k=$(du -sk -x "/proc/$pid/root$d" | cut -f1)
		n=$((n + k))
	done
	echo "$n"
}

# Forks 1000 sleeps in a subshell (a shell gives up at its first failed
# fork), then says so and stays.
FORKS='( i=0; while [ $i -lt 1000 ]; do sleep 300 & i=$((i+1)); done ) 2>/dev/null; echo forks-done; sleep 300'

check_pids() {
	run "${CTL[@]}" container run -d --name "$N-pids" -- /bin/sh -c "$FORKS"
	[ "$status" -eq 0 ]
	wait_log "$N-pids" forks-done
	local n
	n=$(ns_procs "$N-pids")
	echo "processes in the container: $n"
	[ "$n" -gt 100 ]  # it did fork
	[ "$n" -le 512 ]  # the default pids limit
}

@test "root: a quick-path container without a profile cannot fork past the default pids limit" {
	check_pids
	# The limit is the cgroup's, with its own count.
	[ "$(cat "$(cg_file "$N-pids" pids pids.max)")" = 512 ]
	[ "$(cat "$(cg_file "$N-pids" pids pids.current)")" -le 512 ]
}

@test "rootless: a quick-path container without a profile cannot fork past the default pids limit" {
	# No delegated cgroup here: RLIMIT_NPROC, counted in the container's
	# user namespace, stands in (docs/containers.md).
	start_user_scmd
	check_pids
}

@test "root: the default memory limit holds swap too (memsw on v1, swap.max on v2)" {
	run "$SCMCTL" container run -d --name "$N-mem" -- /bin/sleep 300
	[ "$status" -eq 0 ]
	local f
	if f=$(cg_file "$N-mem" memory memory.max); then
		[ "$(cat "$f")" = 536870912 ]
		[ ! -e "${f%/*}/memory.swap.max" ] || [ "$(cat "${f%/*}/memory.swap.max")" = 0 ]
	else
		f=$(cg_file "$N-mem" memory memory.limit_in_bytes)
		[ "$(cat "$f")" = 536870912 ]
		[ ! -e "${f%/*}/memory.memsw.limit_in_bytes" ] || [ "$(cat "${f%/*}/memory.memsw.limit_in_bytes")" = 536870912 ]
	fi
}

@test "root: a bundle without limits gets the default sandbox's; its own limit stays" {
	local b="$SCMT/bundle"
	mkdir -p "$b"
	jq 'del(.linux.resources, .annotations) | .process.args=["/bin/sleep","300"]' \
		"$SCM_SRC/examples/bundles/host-ro/config.json" >"$b/config.json"
	run "$SCMCTL" container run -d --name "$N-bun" --bundle "$b"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(cat "$(cg_file "$N-bun" pids pids.max)")" = 512 ]
	local f
	f=$(cg_file "$N-bun" memory memory.max || cg_file "$N-bun" memory memory.limit_in_bytes)
	[ "$(cat "$f")" = 536870912 ]
	# A limit of its own is its own (a profile could still bound it).
	jq 'del(.annotations) | .linux.resources={"pids":{"limit":2048}} | .process.args=["/bin/sleep","300"]' \
		"$SCM_SRC/examples/bundles/host-ro/config.json" >"$b/config.json"
	run "$SCMCTL" container run -d --name "$N-bun2" --bundle "$b"
	[ "$status" -eq 0 ]
	[ "$(cat "$(cg_file "$N-bun2" pids pids.max)")" = 2048 ]
	f=$(cg_file "$N-bun2" memory memory.max || cg_file "$N-bun2" memory memory.limit_in_bytes)
	[ "$(cat "$f")" = 536870912 ]
}

# Raising a hard limit takes CAP_SYS_RESOURCE in the initial user
# namespace: scmd sets a bundle's rlimits on PID 1 from the host before
# the container takes its ids, as runc does (podman asks for nofile
# 1048576 whatever the session allows). Inside, the setrlimit alone fails.
@test "root: a bundle's rlimit above scmd's own hard limit is set from the host (run and exec)" {
	(( ($(awk '/^CapEff/ {print "0x" $2}' /proc/self/status) >> 24) & 1 )) ||
		skip "root here lacks CAP_SYS_RESOURCE: nobody can raise a hard limit"
	local want=$(($(ulimit -Hn) + 1024)) b="$SCMT/bundle-rl"
	[ "$want" -le "$(cat /proc/sys/fs/nr_open)" ] || skip "the hard limit is fs.nr_open already"
	mkdir -p "$b"
	jq --argjson n "$want" 'del(.annotations) | .process.rlimits=[{"type":"RLIMIT_NOFILE","hard":$n,"soft":1024}] |
		.process.args=["/bin/sh","-c","echo hard=$(ulimit -Hn); sleep 300"]' \
		"$SCM_SRC/examples/bundles/host-ro/config.json" >"$b/config.json"
	run "$SCMCTL" container run -d --name "$N-rl" --bundle "$b"
	echo "$output"
	[ "$status" -eq 0 ]
	wait_log "$N-rl" "hard=$want"
	run "$SCMCTL" container exec "$N-rl" -- /bin/sh -c 'ulimit -Hn'
	echo "$output"
	[ "$output" = "$want" ]
}

# Writes 2 GiB into each of /tmp, /run and /dev/shm, keeps what it got and
# reports; the host measures while the pages are held.
FILL='for d in /tmp /run /dev/shm; do dd if=/dev/zero of=$d/fill bs=1M count=2048 2>&1 | grep -o "No space left on device" || echo "$d: filled"; done; echo fill-done; sleep 300'

check_fill() {
	local before after
	before=$(shmem_kb)
	run "${CTL[@]}" container run -d --name "$N-fill" -- /bin/sh -c "$FILL"
	[ "$status" -eq 0 ]
	wait_log "$N-fill" fill-done
	after=$(shmem_kb)
	"${CTL[@]}" container logs "$N-fill"
	# Every write stopped short of 2 GiB.
	! "${CTL[@]}" container logs "$N-fill" | grep -q filled
	[ "$("${CTL[@]}" container logs "$N-fill" | grep -c 'No space left on device')" -eq 3 ]
	# The host holds what the tmpfs sizes allow (352 MiB), not 6 GiB.
	# (The host's Shmem is shown too, but other tests move it.)
	local held
	held=$(held_kb "${CTL[@]}" -- "$N-fill" /tmp /run /dev/shm)
	echo "the host holds $((held / 1024)) MiB for the container's tmpfs; host Shmem grew by $(((after - before) / 1024)) MiB"
	[ "$held" -le $((352 * 1024)) ]
	[ "$held" -ge $((300 * 1024)) ]
}

@test "root: 2 GiB written into /tmp, /run and /dev/shm stop at their sizes, charged to the container's memory cgroup" {
	check_fill
	# The pages are the container's: its cgroup holds them, under its limit.
	local usage max
	usage=$(cat "$(cg_file "$N-fill" memory memory.current || cg_file "$N-fill" memory memory.usage_in_bytes)")
	max=$(cat "$(cg_file "$N-fill" memory memory.peak || cg_file "$N-fill" memory memory.max_usage_in_bytes)")
	echo "cgroup usage $((usage >> 20)) MiB, peak $((max >> 20)) MiB"
	[ "$usage" -ge $((300 << 20)) ]
	[ "$max" -le $((512 << 20)) ]
}

@test "rootless: 2 GiB written into /tmp, /run and /dev/shm stop at their sizes" {
	start_user_scmd
	check_fill
}

@test "root: a profile's memory sizes the tmpfs, whose pages its cgroup pays for: 64 MiB gives a 32 MiB /tmp" {
	local before after
	before=$(shmem_kb)
	run "$SCMCTL" container run -d --name "$N-small" --profile small -- /bin/sh -c \
		'df -k /tmp | tail -1; dd if=/dev/zero of=/tmp/fill bs=1M count=2048 2>&1 | grep -o "No space left on device"; echo fill-done; sleep 300'
	[ "$status" -eq 0 ]
	wait_log "$N-small" fill-done
	after=$(shmem_kb)
	"$SCMCTL" container logs "$N-small"
	# /tmp is half the memory, and full before the memory is: ENOSPC, not
	# the cgroup's OOM killer (the container is still there).
	"$SCMCTL" container logs "$N-small" | grep -Eq '^tmpfs +32768 '
	"$SCMCTL" container logs "$N-small" | grep -q 'No space left on device'
	"$SCMCTL" container show "$N-small" | grep -q '"state":"running"'
	# The 32 MiB are the container's: in its cgroup's usage, not beyond.
	local usage
	usage=$(cat "$(cg_file "$N-small" memory memory.current || cg_file "$N-small" memory memory.usage_in_bytes)")
	local held
	held=$(held_kb "$SCMCTL" -- "$N-small" /tmp)
	echo "cgroup usage $((usage >> 20)) MiB; the host holds $((held / 1024)) MiB for its /tmp; host Shmem grew by $(((after - before) / 1024)) MiB"
	[ "$usage" -ge $((32 << 20)) ]
	[ "$(cat "$(cg_file "$N-small" memory memory.peak || cg_file "$N-small" memory memory.max_usage_in_bytes)")" -le $((64 << 20)) ]
	[ "$held" -le $((32 * 1024)) ]
	[ "$held" -ge $((31 * 1024)) ]
}

# 200 MiB of output, then a last line.
SPEW='yes "a line of log output, again and again and again" | head -c 209715200; echo; echo last-line-of-the-log'

log_bytes() { # DIR NAME: bytes of NAME.log*
	cat "$1/logs/$2".log* | wc -c
}

check_log_cap() { # STATE_DIR RUNTIME_DIR CAP [PROFILE]
	local state=$1 rt=$2 cap=$3
	run "${CTL[@]}" container run -d --name "$N-spew" ${4:+--profile "$4"} -- /bin/sh -c "$SPEW"
	[ "$status" -eq 0 ]
	wait_exited "$N-spew"
	ls -l "$state/logs"
	# On disk, in the state directory, at most the cap.
	local n
	n=$(log_bytes "$state" "$N-spew")
	echo "log bytes on disk: $n (cap $cap; rotated files are compressed)"
	[ "$n" -le "$cap" ]
	# Nothing of it in the runtime directory (a tmpfs).
	[ -z "$(find "$rt" -type f -size +64k)" ]
	[ -z "$(find "$rt" -name "$N-spew*")" ]
	# `container logs` reads across the rotation and ends with the latest.
	run "${CTL[@]}" container logs "$N-spew"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = last-line-of-the-log ]
	[ "${#output}" -le "$cap" ]
	[ "${#output}" -ge $((cap / 4)) ]
	# Whole lines but the cut at the oldest end.
	[ "$(printf '%s\n' "${lines[@]:1}" | grep -vc '^a line of log output, again and again and again$')" -le 2 ]
	# rm takes every file of it.
	"${CTL[@]}" container rm "$N-spew"
	[ -z "$(ls "$state/logs" | grep "$N-spew")" ]
}

@test "root: a container writing 200 MiB leaves a log of at most 4 MiB on disk, none in the runtime dir" {
	check_log_cap "$SCMT/state" "$SCMT/run" $((4 << 20))
}

@test "root: a profile's log size: 1 MiB in the current file and 3 rotated ones" {
	run "$SCMCTL" container run -d --name "$N-spew" --profile smalllog -- /bin/sh -c "$SPEW"
	wait_exited "$N-spew"
	# the compressor catches up with the last rotations
	none_pending() { "$SCMCTL" --json status | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["log_compression"]["pending"])'; }
	wait_until 60 none_pending
	ls -l "$SCMT/state/logs"
	# the current file and the 3 latest generations (NAME.log.G, or
	# NAME.log.G.zst once compressed), each at most a quarter before
	# compression; the older ones are gone
	local f files=0 zst=0 g
	for f in "$SCMT/state/logs/$N-spew".log*; do
		files=$((files + 1))
		case $f in
		*.zst)
			zst=$((zst + 1))
			# a zstd frame holding at most the file's share
			[ "$(head -c4 "$f" | od -An -tx1 | tr -d ' ')" = 28b52ffd ]
			[ "$(zstd -lv "$f" 2>/dev/null | sed -n 's/.*Decompressed Size: .*(\([0-9]*\) B).*/\1/p')" -le 262144 ] ;;
		*) [ "$(stat -c %s "$f")" -le 262144 ] ;;
		esac
	done
	[ "$files" -eq 4 ]
	# (800 rotations in a second outrun the compressor, more so under
	# ASan: the latest ones may stay raw, which is allowed; that the
	# compressor works is checked from scmd's count below)
	echo "kept generations compressed: $zst of 3"
	# the kept generations are the latest three, in a row
	g=$(ls "$SCMT/state/logs" | sed -n "s/^$N-spew\.log\.\([0-9]*\).*/\1/p" | sort -n)
	[ "$(echo "$g" | wc -l)" -eq 3 ]
	[ "$(echo "$g" | tail -1)" -eq $(($(echo "$g" | head -1) + 2)) ]
	# That the compressor works: the burst may have outrun it entirely (a
	# frame whose raw generation was dropped meanwhile counts for
	# nothing), so a writer that rotates twice, with the queue empty, is
	# what it must compress.
	"$SCMCTL" container run -d --name "$N-slow" --profile smalllog -- \
		/bin/sh -c 'yes "a slower line of log output" | head -c 600000' >/dev/null
	wait_exited "$N-slow"
	compressed_some() { "$SCMCTL" --json status | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["log_compression"]["files"] == 0)'; }
	wait_until 60 compressed_some
	"$SCMCTL" container rm "$N-slow"
	# scmd says what it compressed, and how well
	run "$SCMCTL" status
	echo "$output"
	[[ "$output" == *"rotated logs compressed:"*"levels"* ]]
	"$SCMCTL" --json status | python3 -c '
import json,sys
z=json.load(sys.stdin)["log_compression"]
assert z["files"] > 0 and z["ratio"] > 2 and sum(z["levels"].values()) == z["files"], z'
	"$SCMCTL" container rm "$N-spew"
	check_log_cap "$SCMT/state" "$SCMT/run" $((1 << 20)) smalllog
}

@test "rootless: the log is capped and kept under XDG_STATE_HOME/scm" {
	start_user_scmd
	check_log_cap "$U/xdg/scm" "$U/run" $((4 << 20))
}

@test "scmd: a state directory that cannot be made stops scmd with a message naming it" {
	run "$SCMD" --runtime-dir "$SCMT/run2" --state-dir /proc/nope/state --config "$SCMT/cfg"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"state directory /proc/nope/state"* ]]
}

@test "root: a state directory the quick path would show is hidden from containers (no other container's log)" {
	stop_scmd
	local sd
	# Under the runtime's own tree, which the quick path's host view binds
	# (a directory elsewhere under /var is not in the view at all).
	sd=$(mktemp -d "$SCM_BUILD/scm-limits-state.XXXXXX")
	start_scmd --state-dir "$sd"  # the later option wins
	run "$SCMCTL" container run --name "$N-a" -- /bin/sh -c 'echo secret-of-a'
	[ -s "$sd/logs/$N-a.log" ]
	run "$SCMCTL" container run --name "$N-b" -- /bin/sh -c \
		"cat '$sd/logs/$N-a.log' 2>/dev/null || echo unreadable; ls -A '$sd' | wc -l"
	echo "$output"
	[ "$output" = "unreadable
0" ]
	rm -rf "$sd"
}

@test "root: a container writing without pause does not starve other clients of scmd" {
	run "$SCMCTL" container run -d --name "$N-yes" -- /usr/bin/yes
	[ "$status" -eq 0 ]
	wait_log "$N-yes" '^y$'
	local i t0 t1 worst=0
	for i in $(seq 20); do
		t0=$(date +%s%N)
		timeout 5 "$SCMCTL" status >/dev/null
		t1=$(date +%s%N)
		[ $(((t1 - t0) / 1000000)) -le "$worst" ] || worst=$(((t1 - t0) / 1000000))
	done
	echo "slowest status while it writes: $worst ms"
	[ "$worst" -lt 1000 ]
	# It kept writing all along, into a log that stays at its cap.
	[ "$(log_bytes "$SCMT/state" "$N-yes")" -le $((4 << 20)) ]
	"$SCMCTL" container kill "$N-yes"
}
