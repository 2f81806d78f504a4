#!/usr/bin/env bats
# The vdisk provider restarted with its channels (docs/handover.md,
# docs/vdisk.md "Restarting the provider"): its open disks travel as the
# very open files (fds in the state), so their image locks never lapse; a
# client writing known patterns keeps going across restarts without a
# failed call, and the disk then reads as what it wrote. A new process
# that refuses the state leaves the old one serving.
load helpers

# the cluster example's profiles (shareable disks, reservations), its
# directory turned into ours
pre_start() {
	mkdir -p "$SCMT/cfg/profiles" "$SCMT/disks"
	for p in "$SCM_SRC"/examples/cluster/cluster-*.json; do
		sed "s#/srv/disks/cluster#$SCMT/disks#g" "$p" >"$SCMT/cfg/profiles/$(basename "$p")"
	done
}

setup() {
	start_scmd
	V=$SCM_BUILD/bin/scm-vdisk
	C=$SCM_BUILD/libexec/vdisk-client
	D=$SCMT/disks
	mkdir -p "$D"
	cat >"$SCMT/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk",
  "exec": ["/bin/sh", "-c", "exec env SCM_VDISK_JOB_STEP_US=20000 $SCM_BUILD/libexec/scm-vdisk-provider"],
  "allow": ["app", "hosta", "hostb"] }
JSON
	"$SCMCTL" service register "$SCMT/vdisk.json" >/dev/null
	"$SCMCTL" endpoint create app >/dev/null
	"$SCMCTL" endpoint create hosta --profiles cluster-node >/dev/null
	"$SCMCTL" endpoint create hostb --profiles cluster-node >/dev/null
}

teardown() {
	for p in ${BG:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	# a failure shows what the writer, the providers and scmd said last
	# (CI keeps only the output); $SCM_TEST_KEEP=DIR keeps the whole run
	if [ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${SCMT:-}" ]; then
		diagnose
		if [ -n "${SCM_TEST_KEEP:-}" ]; then
			mkdir -p "$SCM_TEST_KEEP" && cp -a "$SCMT" "$SCM_TEST_KEEP/" 2>/dev/null
			echo "# kept in $SCM_TEST_KEEP/$(basename "$SCMT")"
		fi
	fi
	stop_scmd_sanitized "$SCMT"/run/logs/vdisk.log*
}

diagnose() {
	local f
	for f in "$SCMT/writer.out" "$SCMT"/run/logs/vdisk.log "$SCMT/scmd.log"; do
		[ -s "$f" ] || continue
		echo "# --- $(basename "$f"), its end:"
		tail -n 12 "$f" | sed 's/^/# /'
	done
}

provider_pid() { "$SCMCTL" service list | awk '$1 == "vdisk" { print $4 }'; }
children_are() { [ "$(pgrep -c -P "$SCMD_PID")" -eq "$1" ]; }

# writer DISK: a client writing patterns until $SCMT/stop exists; its copy
# of what the disk must hold is $SCMT/expected
writer() {
	"$V" convert -O raw "$1" "$SCMT/expected"
	"$C" --endpoint "$(ep app)" pattern "$1" "$SCMT/expected" 0 "$SCMT/stop" >"$SCMT/writer.out" 2>&1 &
	WRITER=$!
	BG="${BG:-} $WRITER"
	wait_until 60 test -s "$SCMT/expected.pending"
}

# qemu cannot take the disk: its lock is held (by whichever process)
locked() {
	! qemu-io -f vhdx -c 'write 0 512' "$1" >/dev/null 2>&1
}

# the writer wrote after time T (ns): its pending file is newer
wrote_since() { [ "$(stat -c %.9Y "$SCMT/expected.pending" | tr -d .)" -gt "$1" ]; }
# the writer ended: it says how many it wrote (it ends by itself only on
# a failed call, before $SCMT/stop exists)
writer_ended() { grep -q '^wrote ' "$SCMT/writer.out"; }
went_on_since() { writer_ended || wrote_since "$1"; }

# restart_ok: one service restart, which must succeed with a new pid; the
# disk's lock held right after it
restart_ok() {
	local prev
	prev=$(provider_pid)
	run "$SCMCTL" service restart vdisk
	[ "$status" -eq 0 ] || { echo "restart: $output"; return 1; }
	[[ "$output" == "service vdisk restarted with its channels: pid $prev -> "* ]]
	[ "$(provider_pid)" != "$prev" ]
}

@test "20 restarts while a client writes patterns on 4 open disks: no failed call, no lost write, the lock held throughout" {
	rounds=20
	[ -z "${SCM_SAN:-}" ] || rounds=6
	"$V" create --size 32M --block-size 1M "$D/a.vhdx"
	head -c 4M /dev/urandom | "$V" write --offset 0 "$D/a.vhdx"
	for x in b c d; do
		"$V" create --size 8M "$D/$x.vhdx"
		head -c 512 /dev/urandom | "$V" write --offset 0 "$D/$x.vhdx"
	done
	rm -f "$SCMT/stop"
	VDISK_PATTERN_ALSO="$D/b.vhdx $D/c.vhdx $D/d.vhdx" writer "$D/a.vhdx"
	locked "$D/a.vhdx"
	# a prober beside the restarts: qemu-io trying to write the disk, over
	# and over, must never get in
	(while [ ! -e "$SCMT/stop-probe" ]; do
		if qemu-io -f vhdx -c 'write 0 512' "$D/a.vhdx" >/dev/null 2>&1; then echo in >>"$SCMT/probe"; fi
		echo tried >>"$SCMT/probe.n"
	done) < <(bare true) &
	PROBER=$!
	BG="$BG $PROBER"
	old=$(provider_pid)
	for i in $(seq "$rounds"); do
		restart_ok || { echo "restart $i failed"; false; }
		locked "$D/a.vhdx" || { echo "round $i: qemu-io got in"; false; }
		# the writer goes on with the new process before the next round
		t=$(date +%s%N)
		if ! wait_until 60 went_on_since "$t" || writer_ended; then
			echo "round $i: the writer did not go on with pid $(provider_pid)"
			false
		fi
	done
	# the prober stops before the writer closes the disk
	touch "$SCMT/stop-probe"
	wait "$PROBER"
	touch "$SCMT/stop"
	wait "$WRITER"
	cat "$SCMT/writer.out"
	grep -q "^wrote [1-9]" "$SCMT/writer.out"
	echo "# $rounds restarts: $(cat "$SCMT/writer.out") on 4 open disks, qemu-io tried $(wc -l <"$SCMT/probe.n") times in between" >&3
	[ ! -e "$SCMT/probe" ]
	[ "$(provider_pid)" != "$old" ]
	# every acknowledged write is in the disk, once the provider let it go
	wait_until 60 "$V" convert -O raw "$D/a.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/expected" "$SCMT/got.raw"
	qemu-img check "$D/a.vhdx"
	# replaced processes are gone
	wait_until 60 children_are 1
}

# what PID holds: its regular files and directories under $D, and how
# many sockets
held_files() { for f in /proc/"$1"/fd/*; do readlink "$f"; done | grep "^$D/" | sort; }
held_dirs() { for f in /proc/"$1"/fd/*; do readlink "$f"; done | grep -c "^$D\$"; }
sockets() { for f in /proc/"$1"/fd/*; do readlink "$f"; done | grep -c '^socket:'; }

@test "disks, handles and reservations carry over, with only the old process' fds; a binary that refuses the state leaves the old one serving" {
	for x in a b; do "$V" create --size 8M "$D/$x.vhdx"; done
	# a client holding a shared disk, on which another registers and
	# reserves (write exclusive) through its own channel
	mkfifo "$SCMT/hold.in"
	"$C" --endpoint "$(ep hosta)" hold "$D/a.vhdx" shared <"$SCMT/hold.in" >"$SCMT/hold.out" 2>&1 &
	HOLDER=$!
	BG="${BG:-} $HOLDER"
	exec 7>"$SCMT/hold.in"
	wait_until 60 grep -q open "$SCMT/hold.out"
	"$C" --endpoint "$(ep hosta)" hold "$D/b.vhdx" ro < <(bare sleep 600) >/dev/null 2>&1 7>&- &
	BG="$BG $!"
	"$C" --endpoint "$(ep hosta)" pr "$D/a.vhdx" register 0 7 -- reserve 7 write-exclusive
	old=$(provider_pid)
	held_files "$old" >"$SCMT/old.files"
	old_dirs=$(held_dirs "$old")
	old_sockets=$(sockets "$old")
	# a binary that does not implement the handover: refused, the old one goes on
	run "$SCMCTL" service restart vdisk --exec "$SCM_BUILD/libexec/scm-echo-provider"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"refused; its provider (pid $old) goes on"* ]]
	# a vdisk provider that reads only a newer state: refused, with why
	printf '#!/bin/sh\nexec env SCM_VDISK_STATE_MIN=5 %s\n' "$SCM_BUILD/libexec/scm-vdisk-provider" >"$SCMT/newer"
	chmod +x "$SCMT/newer"
	run "$SCMCTL" service restart vdisk --exec "$SCMT/newer"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"state version 4: this provider reads versions 5 to 5"* ]]
	# one that refuses only after it adopted every disk: the old process
	# finds its files as it left them (no header or log written meanwhile)
	printf '#!/bin/sh\nexec env SCM_VDISK_RESTORE_FAIL=1 %s\n' "$SCM_BUILD/libexec/scm-vdisk-provider" >"$SCMT/late"
	chmod +x "$SCMT/late"
	run "$SCMCTL" service restart vdisk --exec "$SCMT/late"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"refused after adopting 2 disks"* ]]
	[ "$(provider_pid)" = "$old" ]
	locked "$D/a.vhdx"
	"$C" --endpoint "$(ep hosta)" pr "$D/a.vhdx" write 0 512 0x11 -- check 0 512 | grep -q 'byte 0x11'
	restart_ok
	new=$(provider_pid)
	wait_until 60 test ! -e "/proc/$old"
	# the new process holds the very files the old one had (every one
	# open: it got them from the old process, it did not open them), and
	# sockets for the same channels: nothing else scmd has
	held_files "$new" >"$SCMT/new.files"
	diff "$SCMT/old.files" "$SCMT/new.files"
	# the disks' directories (reservation state): those the old one had,
	# less the channels' granted directories, opened again when needed
	[ "$(held_dirs "$new")" -ge 2 ] && [ "$(held_dirs "$new")" -le "$old_dirs" ]
	[ "$(sockets "$new")" = "$old_sockets" ]
	locked "$D/a.vhdx"
	locked "$D/b.vhdx"
	# the reservation holds in the new process: the holder writes, another
	# endpoint may not
	"$C" --endpoint "$(ep hosta)" pr "$D/a.vhdx" write 0 512 0x22 -- check 0 512 | grep -q 'byte 0x22'
	run "$C" --endpoint "$(ep hostb)" pr "$D/a.vhdx" write 0 512 0x33
	[ "$status" -ne 0 ]
	"$C" --endpoint "$(ep hosta)" pr "$D/a.vhdx" read | grep -q '"write-exclusive"\|write_exclusive\|WriteExclusive'
	# the holder's channel and handle went over too: it closes cleanly
	exec 7>&-
	wait "$HOLDER"
	# the provider lets it go once its last handle closed: a sound file
	wait_until 60 qemu-img check "$D/a.vhdx"
}

@test "a paused compact goes over with its id, still paused, and finishes; a commit refuses the restart and the old process goes on with it" {
	# 64 blocks, a step each (20 ms here): paused well before its end
	"$V" create --size 64M --block-size 1M "$D/j.vhdx"
	head -c 2M /dev/urandom | "$V" write --offset 0 "$D/j.vhdx"
	head -c 2M /dev/zero | "$V" write --offset 4M "$D/j.vhdx"
	"$C" --endpoint "$(ep app)" hold "$D/j.vhdx" rw < <(bare sleep 600) >"$SCMT/hold.out" 2>&1 &
	BG="${BG:-} $!"
	wait_until 60 grep -q open "$SCMT/hold.out"
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep app)
	id=$("$V" compact --detach "$D/j.vhdx")
	"$V" job "$id" pause
	"$V" jobs --json | grep -q "\"id\":$id,\"kind\":\"compact\",\"state\":\"paused\""
	restart_ok
	run "$V" jobs --json
	echo "$output"
	[[ $output == *"\"id\":$id,\"kind\":\"compact\",\"state\":\"paused\""* ]]
	"$V" job "$id" resume
	"$V" job "$id" wait
	locked "$D/j.vhdx"
	# a finished job is still listed after the next restart
	restart_ok
	"$V" jobs --json | grep -q "\"id\":$id,\"kind\":\"compact\",\"state\":\"done\""
	# a commit is not carried: refused, the old process goes on with it
	"$V" create --size 64M --block-size 1M "$D/p.vhdx"
	"$V" create --parent "$D/p.vhdx" "$D/c.vhdx"
	head -c 1M /dev/urandom | "$V" write --offset 0 "$D/c.vhdx"
	"$C" --endpoint "$(ep app)" hold "$D/c.vhdx" rw < <(bare sleep 600) >"$SCMT/hold2.out" 2>&1 &
	BG="${BG:-} $!"
	wait_until 60 grep -q open "$SCMT/hold2.out"
	id=$("$V" merge --detach --into-parent "$D/c.vhdx")
	"$V" job "$id" pause
	"$V" jobs --json | grep -q "\"id\":$id,\"kind\":\"commit\",\"state\":\"paused\""
	old=$(provider_pid)
	run "$SCMCTL" service restart vdisk
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"job $id (commit) cannot be carried"*"goes on"* || "$output" == *"goes on"*"job $id ("*"cannot be carried"* ]]
	[ "$(provider_pid)" = "$old" ]
	"$V" job "$id" resume
	"$V" job "$id" wait
	wait_until 60 restart_ok
}
