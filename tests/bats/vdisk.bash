# vdisk.bash: the vdisk provider behind a private scmd, as the vdisk-*.bats
# files run it (`load helpers` then `load vdisk`), and the helpers of a
# client that writes known patterns (vdisk-client pattern) while a test
# steers the provider: jobs, migrations, restarts, crashes.
#
# Set by vdisk_setup: V (scm-vdisk), C (vdisk-client), D (the disks'
# directory). Background processes a test starts go in BG (or HOLDS, for
# hold), which vdisk_teardown ends.

# vdisk_setup [--env VAR=VALUE]... [--recover] ENDPOINT[:PROFILES]...
# vdisk_start, then vdisk_register with the same arguments.
vdisk_setup() {
	vdisk_start
	vdisk_register "$@"
}

# vdisk_start: starts scmd (start_scmd, so a pre_start of the file runs
# first) and sets V, C and D (made).
vdisk_start() {
	start_scmd
	V=$SCM_BUILD/bin/scm-vdisk
	C=$SCM_BUILD/libexec/vdisk-client
	D=$SCMT/disks
	mkdir -p "$D"
}

# vdisk_register [--env VAR=VALUE]... [--recover] ENDPOINT[:PROFILES]...
# Writes $SCMT/vdisk.json and registers it: the provider, which writes its
# pid to $SCMT/provider.pid as it starts (each new process again), with
# each VAR=VALUE in its environment (the provider's sh expands VALUE, so
# '${STEP_US:-5000}' takes STEP_US from scmd's environment), "recover":
# true with --recover; allowed to the ENDPOINTs, each then created, with
# --profiles PROFILES when a colon names them (writer:vdisk-writer).
vdisk_register() {
	local env="" extra="" allow="" e
	while [ $# -gt 0 ]; do
		case $1 in
		--env) env="$env $2"; shift 2;;
		--recover) extra=', "recover": true'; shift;;
		*) break;;
		esac
	done
	for e in "$@"; do allow="$allow${allow:+, }\"${e%%:*}\""; done
	cat >"$SCMT/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk",
  "exec": ["/bin/sh", "-c", "echo \$\$ >$SCMT/provider.pid; exec env$env $SCM_BUILD/libexec/scm-vdisk-provider"],
  "allow": [$allow]$extra }
JSON
	"$SCMCTL" service register "$SCMT/vdisk.json" >/dev/null
	for e in "$@"; do
		if [[ $e == *:* ]]; then
			"$SCMCTL" endpoint create "${e%%:*}" --profiles "${e#*:}" >/dev/null
		else
			"$SCMCTL" endpoint create "$e" >/dev/null
		fi
	done
}

# vdisk_teardown: ends what the test left in the background (BG, HOLDS),
# then scmd and the provider with it; a sanitizer report, leaks included,
# in scmd's or the provider's log fails the test (stop_scmd_sanitized).
vdisk_teardown() {
	local p
	for p in ${HOLDS:-} ${BG:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	stop_scmd_sanitized "$SCMT"/run/logs/vdisk.log*
}

# provider_pid: the vdisk provider's pid, as scmd lists it
provider_pid() { "$SCMCTL" service list | awk '$1 == "vdisk" { print $4 }'; }

# restart_ok: `scmctl service restart vdisk` succeeds and a new process serves
restart_ok() {
	local prev
	prev=$(provider_pid)
	run "$SCMCTL" service restart vdisk
	echo "$output"
	[ "$status" -eq 0 ] && [ "$(provider_pid)" != "$prev" ]
}

# writer DISK [N [ENDPOINT]]: a client (on ENDPOINT, app by default)
# writing N patterns (0, the default: until $SCMT/stop exists) in the
# background, its pid in WRITER and BG; its copy of what the disk must
# hold is $SCMT/expected (made from the disk first). Returns once it wrote
# something (it has its handle).
writer() {
	rm -f "$SCMT/stop" "$SCMT/expected.pending"
	"$V" convert -O raw "$1" "$SCMT/expected"
	"$C" --endpoint "$(ep "${3:-app}")" pattern "$1" "$SCMT/expected" "${2:-0}" "$SCMT/stop" >"$SCMT/writer.out" 2>&1 &
	WRITER=$!
	BG="${BG:-} $WRITER"
	wait_until 60 test -s "$SCMT/expected.pending" && return 0
	cat "$SCMT/writer.out"; return 1
}

# writer_stop: the writer ends, having written something
writer_stop() {
	touch "$SCMT/stop"
	wait "$WRITER"
	cat "$SCMT/writer.out"
	grep -q "^wrote [1-9]" "$SCMT/writer.out"
}

# wrote_since T: the writer wrote after time T (date +%s%N): its pending
# file is newer
wrote_since() { [ "$(stat -c %.9Y "$SCMT/expected.pending" | tr -d .)" -gt "$1" ]; }

# convert_free DISK RAW: DISK as raw, once the provider let it go (it
# closes a disk on a worker after its last user, a job included, is done)
convert_free() {
	wait_until 60 "$V" convert -O raw "$1" "$2" 2>/dev/null && return 0
	"$V" convert -O raw "$1" "$2"
}

# same DISK: the disk reads as the writer's copy ($SCMT/expected; qemu-img
# compare too), and checks clean with ours and, but for a differencing
# disk (qemu does not open ours), with qemu's check
same() {
	convert_free "$1" "$SCMT/got.raw"
	cmp "$SCMT/expected" "$SCMT/got.raw"
	qemu-img compare -f raw -F raw "$SCMT/expected" "$SCMT/got.raw" >/dev/null
	"$V" check "$1"
	[[ $("$V" info --json "$1") == *differencing* ]] || qemu-img check -f vhdx "$1" >/dev/null
}

# locked DISK: qemu cannot take the disk: its lock is held (by whichever process)
locked() { ! qemu-io -f vhdx -c 'write 0 512' "$1" >/dev/null 2>&1; }

# hold ENDPOINT DISK MODE: a client keeps a handle open (in HOLDS) until
# the test ends; returns once it has it, or shows why not
hold() {
	local out=$SCMT/hold.$RANDOM
	"$C" --endpoint "$(ep "$1")" hold "$2" "$3" >"$out" 2>&1 3>&- < <(bare sleep 60 2>/dev/null) &
	HOLDS="${HOLDS:-} $!"
	wait_until 60 opened_or_failed "$out" || return 1
	grep -q "^open" "$out" && return 0
	cat "$out"; return 1
}
opened_or_failed() { grep -q -e "^open" -e "vdisk-client:" "$1" 2>/dev/null; }
