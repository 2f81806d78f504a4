#!/usr/bin/env bats
# vdisk jobs across a provider restart (docs/handover.md "Jobs",
# docs/vdisk.md "Restarting the provider"): `scmctl service restart vdisk`
# while a job runs parks it at a safe point and the new process goes on
# with it, the same id, state and progress; a `job wait` issued before the
# restart gets its answer from the new process; a client writing known
# patterns meanwhile loses nothing.
load helpers

setup() {
	start_scmd
	V=$SCM_BUILD/bin/scm-vdisk
	C=$SCM_BUILD/libexec/vdisk-client
	D=$SCMT/disks
	mkdir -p "$D" "$SCMT/far"
	cat >"$SCMT/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk",
  "exec": ["/bin/sh", "-c", "exec env SCM_VDISK_DEBUG_HO=1 SCM_VDISK_JOB_STEP_US=\${STEP_US:-5000} $SCM_BUILD/libexec/scm-vdisk-provider"],
  "allow": ["app", "admin"] }
JSON
	"$SCMCTL" service register "$SCMT/vdisk.json" >/dev/null
	"$SCMCTL" endpoint create app >/dev/null
	"$SCMCTL" endpoint create admin >/dev/null
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep admin)
}

teardown() {
	for p in ${BG:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	stop_scmd_sanitized "$SCMT"/run/logs/vdisk.log*
}

provider_pid() { "$SCMCTL" service list | awk '$1 == "vdisk" { print $4 }'; }

# writer DISK: a client writing patterns until $SCMT/stop; its copy of what
# the disk must hold is $SCMT/expected (vdisk-client pattern)
writer() {
	rm -f "$SCMT/stop" "$SCMT/expected.pending"
	"$V" convert -O raw "$1" "$SCMT/expected"
	"$C" --endpoint "$(ep app)" pattern "$1" "$SCMT/expected" 0 "$SCMT/stop" >"$SCMT/writer.out" 2>&1 &
	WRITER=$!
	BG="${BG:-} $WRITER"
	wait_until 60 test -s "$SCMT/expected.pending"
}

writer_stop() {
	touch "$SCMT/stop"
	wait "$WRITER"
	cat "$SCMT/writer.out"
	grep -q "^wrote [1-9]" "$SCMT/writer.out"
}

# the writer wrote after time T (ns): its pending file is newer
wrote_since() { [ "$(stat -c %.9Y "$SCMT/expected.pending" | tr -d .)" -gt "$1" ]; }

job_field() { # ID FIELD: one field of the job's entry in jobs --json
	"$V" jobs --json | python3 -c "import json,sys; print([j for j in json.load(sys.stdin) if j['id'] == $1][0]['$2'])"
}
done_over() { [ "$(job_field "$1" done)" -gt "$2" ]; }

restart_ok() {
	local prev
	prev=$(provider_pid)
	run "$SCMCTL" service restart vdisk
	echo "$output"
	[ "$status" -eq 0 ] && [ "$(provider_pid)" != "$prev" ]
}

# same DISK: reads as the client's copy, and checks clean
same() {
	wait_until 60 "$V" convert -O raw "$1" "$SCMT/got.raw"
	cmp "$SCMT/expected" "$SCMT/got.raw"
	"$V" check "$1"
	qemu-img check -f vhdx "$1" >/dev/null
}

@test "a throttled mirror migration goes on across restarts while a client writes; a wait issued before them is answered" {
	rounds=3
	[ -z "${SCM_SAN:-}" ] || rounds=2
	# 20 MiB of data at 1 MiB/s: the copy outlasts the restarts
	"$V" create --size 32M --block-size 1M "$D/m.vhdx"
	head -c 16M /dev/urandom | "$V" write --offset 0 "$D/m.vhdx"
	head -c 4M /dev/urandom | "$V" write --offset 24M "$D/m.vhdx"
	writer "$D/m.vhdx"
	id=$("$V" migrate --detach --throttle 1 "$D/m.vhdx" "$SCMT/far/m.vhdx")
	"$V" job "$id" wait >"$SCMT/wait.out" 2>&1 &
	WAITER=$!
	BG="$BG $WAITER"
	for i in $(seq "$rounds"); do
		[ "$(job_field "$id" state)" = running ]
		d0=$(job_field "$id" done)
		restart_ok || { echo "round $i"; tail -20 "$SCMT"/run/logs/vdisk.log; false; }
		# the same job goes on in the new process, as does the writer
		run job_field "$id" state
		[[ $output == running || $output == waiting || $output == done ]]
		wait_until 60 done_over "$id" "$d0"
		wait_until 60 wrote_since "$(date +%s%N)"
	done
	wait "$WAITER"
	cat "$SCMT/wait.out"
	grep -q "migrate  done" "$SCMT/wait.out"
	[ "$(job_field "$id" state)" = done ]
	writer_stop
	same "$SCMT/far/m.vhdx"
	[ ! -e "$D/m.vhdx.job" ]
}
