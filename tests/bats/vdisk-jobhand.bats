#!/usr/bin/env bats
# vdisk jobs across a provider restart (docs/handover.md "Jobs",
# docs/vdisk.md "Restarting the provider"): `scmctl service restart vdisk`
# while a job runs parks it at a safe point and the new process goes on
# with it, the same id, state and progress; a `job wait` issued before the
# restart gets its answer from the new process; a client writing known
# patterns meanwhile loses nothing.
load helpers
load vdisk

setup() {
	vdisk_start # (SCMT is set from here on)
	vdisk_register --env "SCM_VDISK_JOB_LIMIT=$SCMT/job.limit" --env 'SCM_VDISK_JOB_STEP_US=${STEP_US:-5000}' app admin
	mkdir -p "$SCMT/far"
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep admin)
}

teardown() {
	vdisk_teardown
}

job_field() { # ID FIELD: one field of the job's entry in jobs --json
	"$V" jobs --json | python3 -c "import json,sys; print([j for j in json.load(sys.stdin) if j['id'] == $1][0]['$2'])"
}
done_over() { [ "$(job_field "$1" done)" -gt "$2" ]; }

@test "a throttled mirror migration goes on across restarts while a client writes; a wait issued before them is answered" {
	rounds=3
	[ -z "${SCM_SAN:-}" ] || rounds=2
	# 16 MiB of data at 1 MiB/s, paused between the rounds; in each it
	# may move one step past where it was and no further
	# ($SCM_VDISK_JOB_LIMIT, a test hook): however long a restart takes
	# on a loaded machine, the job is still running after it
	"$V" create --size 32M --block-size 1M "$D/m.vhdx"
	head -c 12M /dev/urandom | "$V" write --offset 0 "$D/m.vhdx"
	head -c 4M /dev/urandom | "$V" write --offset 24M "$D/m.vhdx"
	writer "$D/m.vhdx"
	id=$("$V" migrate --detach --throttle 1 "$D/m.vhdx" "$SCMT/far/m.vhdx")
	"$V" job "$id" pause
	"$V" job "$id" wait >"$SCMT/wait.out" 2>&1 &
	WAITER=$!
	BG="$BG $WAITER"
	for i in $(seq "$rounds"); do
		[ "$(job_field "$id" state)" = paused ]
		d0=$(job_field "$id" done)
		echo $((d0 + 1)) >"$SCMT/job.limit"
		"$V" job "$id" resume
		restart_ok || { echo "round $i"; tail -20 "$SCMT"/run/logs/vdisk.log; false; }
		# the same job goes on in the new process, as does the writer
		run job_field "$id" state
		[[ $output == running || $output == waiting ]]
		wait_until 60 done_over "$id" "$d0"
		wait_until 60 wrote_since "$(date +%s%N)"
		"$V" job "$id" pause
	done
	rm "$SCMT/job.limit"
	"$V" job "$id" resume
	wait "$WAITER"
	cat "$SCMT/wait.out"
	grep -q "migrate  done" "$SCMT/wait.out"
	[ "$(job_field "$id" state)" = done ]
	writer_stop
	same "$SCMT/far/m.vhdx"
	[ ! -e "$D/m.vhdx.job" ]
}

@test "a stream goes on across a restart while a client writes; the child then stands alone" {
	# held after 4 of its 16 blocks ($SCM_VDISK_JOB_LIMIT, a test hook):
	# the restart lands in the middle of the job however slow the machine
	# (a pause per step could not promise it: a restart may outlast them)
	echo $((4 << 20)) >"$SCMT/job.limit"
	"$V" create --size 16M --block-size 1M "$D/p.vhdx"
	head -c 8M /dev/urandom | "$V" write --offset 0 "$D/p.vhdx"
	"$V" create --parent "$D/p.vhdx" "$D/c.vhdx"
	head -c 2M /dev/urandom | "$V" write --offset 3M "$D/c.vhdx"
	writer "$D/c.vhdx"
	id=$("$V" merge --detach --from-parent "$D/c.vhdx")
	wait_until 60 done_over "$id" $(((4 << 20) - 1))
	d0=$(job_field "$id" done)
	[ "$(job_field "$id" total)" -gt "$d0" ]
	restart_ok
	# the new process has the job, running, with its progress
	[ "$(job_field "$id" state)" = running ]
	[ "$(job_field "$id" done)" -ge "$d0" ]
	wait_until 60 wrote_since "$(date +%s%N)"
	rm "$SCMT/job.limit"
	"$V" job "$id" wait
	[ "$(job_field "$id" state)" = done ]
	writer_stop
	same "$D/c.vhdx"
	run "$V" info --json "$D/c.vhdx"
	[[ $output != *differencing* ]]
}

@test "SIGKILL of the process that took a migration over: its journal rolls it back, no acknowledged write lost" {
	"$V" create --size 32M --block-size 1M "$D/k.vhdx"
	head -c 12M /dev/urandom | "$V" write --offset 0 "$D/k.vhdx"
	writer "$D/k.vhdx"
	# held at 2 MiB before the restart and at 4 MiB after it (the job-limit
	# hook): on a loaded machine a throttled copy of 12 MiB could otherwise
	# end between the checks below, its journal gone with it
	echo $((2 << 20)) >"$SCMT/job.limit"
	id=$("$V" migrate --detach --throttle 1 "$D/k.vhdx" "$SCMT/far/k.vhdx")
	wait_until 60 done_over "$id" $(((2 << 20) - 1))
	restart_ok
	d0=$(job_field "$id" done)
	echo $((4 << 20)) >"$SCMT/job.limit"
	wait_until 60 done_over "$id" "$d0"
	[ "$(job_field "$id" state)" = running ]
	grep -q "^state running" "$D/k.vhdx.job"
	kill -KILL "$(provider_pid)"
	wait "$WRITER" || true
	cat "$SCMT/writer.out"
	# the write in flight when the provider died may hold either contents
	read -r off len <"$SCMT/expected.pending"
	: >"$SCMT/stop"
	# the next open for writing (a provider started again) reads the journal
	"$C" --endpoint "$(ep app)" pattern "$D/k.vhdx" "$SCMT/expected" 1 >/dev/null
	[ ! -e "$D/k.vhdx.job" ]
	[ ! -e "$SCMT/far/k.vhdx" ]
	wait_until 60 "$V" convert -O raw "$D/k.vhdx" "$SCMT/got.raw"
	cmp -n "$off" "$SCMT/expected" "$SCMT/got.raw"
	cmp -i "$((off + len))" "$SCMT/expected" "$SCMT/got.raw"
	"$V" check "$D/k.vhdx"
	qemu-img check -q "$D/k.vhdx"
}
