#!/usr/bin/env bats
# vdisk live migration (issue 13 item 2): `scm-vdisk migrate DISK DEST`
# moves a disk the provider serves while a client keeps writing known
# patterns through its handle (mirror and snapshot modes); afterwards DEST
# reads as the client's own copy, and the client's handle is on DEST. The
# correspondence record, block states, throttle, cancel and bad input.
# The SIGKILL rounds are in vdisk-jobs.bats (kill_round's kinds migrate and
# migrate-snapshot).
load helpers
load vdisk

setup() {
	vdisk_start
	# (test hooks: a mirror migration's record is held back while
	# record.hold exists; its queue of clients' writes for DEST applies
	# each after $SCM_VDISK_MIRQ_US)
	local mirq_us=0
	[[ $BATS_TEST_DESCRIPTION == *"queue for DEST slow"* ]] && mirq_us=3000
	vdisk_register --env 'SCM_VDISK_JOB_STEP_US=${STEP_US:-5000}' --env "SCM_VDISK_RECORD_HOLD=$SCMT/record.hold" \
		--env "SCM_VDISK_MIRQ_US=$mirq_us" app admin
	mkdir -p "$SCMT/far"
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep admin)
}

teardown() {
	vdisk_teardown
}

# more_writes: the writer got through a few more writes (each one names
# its range in expected.pending before it starts)
more_writes() {
	local seen=0 last cur
	last=$(cat "$SCMT/expected.pending")
	wait_until 60 three_more
}
three_more() { # (more_writes' seen, last, cur)
	cur=$(cat "$SCMT/expected.pending" 2>/dev/null || true)
	if [ -n "$cur" ] && [ "$cur" != "$last" ]; then seen=$((seen + 1)); last=$cur; fi
	[ $seen -ge 3 ]
}

base_disk() { # FILE: 32 MiB, 1 MiB blocks: data, zeros written, a ZERO block, unallocated rest
	"$V" create --size 32M --block-size 1M "$1"
	head -c 8M /dev/urandom | "$V" write --offset 0 "$1"
	head -c 4M /dev/zero | "$V" write --offset 16M "$1"
	head -c 2M /dev/urandom | "$V" write --offset 24M "$1"
	"$V" trim --offset 25M --length 1M "$1"
}

# hold_open DISK: a client holds the disk open, idle, until hold_close
hold_open() {
	rm -f "$SCMT/hold.in" "$SCMT/hold.out"
	mkfifo "$SCMT/hold.in"
	"$C" --endpoint "$(ep app)" hold "$1" rw <"$SCMT/hold.in" >"$SCMT/hold.out" &
	HOLD=$!
	BG="${BG:-} $HOLD"
	exec 7>"$SCMT/hold.in"
	wait_until 60 grep -q open "$SCMT/hold.out"
}

hold_close() {
	exec 7>&-
	wait "$HOLD"
}

zero_4k() { "$V" write --offset 0 "$1" < <(head -c 4096 /dev/zero) 2>/dev/null; } # DISK (offline)

write_4k() { # DISK OFFSET: $SCMT/w4k written there (offline), once the provider let go of it
	"$V" write --offset "$2" "$1" <"$SCMT/w4k" 2>/dev/null
}

job_json() { # ID: the job's entry of jobs --json
	"$V" jobs --json | python3 -c "import json,sys; print(json.dumps([j for j in json.load(sys.stdin) if j['id'] == $1][0], separators=(',', ':')))"
}

@test "migrate mirror while a client writes: DEST is the disk, the handle moved onto it" {
	base_disk "$D/m.vhdx"
	writer "$D/m.vhdx"
	"$V" migrate --max-pause 20 "$D/m.vhdx" "$SCMT/far/m.vhdx" >"$SCMT/job.out"
	cat "$SCMT/job.out"
	grep -q "migrate  done" "$SCMT/job.out"
	# the writer goes on, on DEST: its writes after the switch land there
	more_writes
	# the source is let go once flushed (by the record's writer, just
	# after the job: writable by anyone then), DEST is held
	wait_until 60 zero_4k "$D/m.vhdx"
	run "$V" write --offset 0 "$SCMT/far/m.vhdx" < <(head -c 4096 /dev/zero)
	[[ $output == *'"write" lock'* ]]
	writer_stop
	same "$SCMT/far/m.vhdx"
	run "$V" jobs --json
	echo "$output"
	[[ $output == *'"kind":"migrate","state":"done"'* ]]
	[[ $output == *'"mode":"mirror"'* ]]
	[[ $output =~ \"pause_us\":[1-9] ]]
	[[ $output =~ \"bytes_copied\":[1-9] ]]
	[ ! -e "$D/m.vhdx.job" ]
	# DEST has the disk's geometry and page 83 identity, and stands alone
	python3 - "$D/m.vhdx" "$SCMT/far/m.vhdx" "$V" <<'PY'
import json, subprocess, sys
a, b = (json.loads(subprocess.check_output([sys.argv[3], "info", "--json", p])) for p in sys.argv[1:3])
for k in ("virtual_size", "block_size", "logical_sector_size", "physical_sector_size", "page83"):
    assert a[k] == b[k], (k, a[k], b[k])
assert b["type"] == "dynamic", b["type"]
PY
}

@test "migrate mirror under a writer running flat out: its writes are mirrored, it converges" {
	# The copy is throttled (2 MiB/s) so that the writer, which never
	# waits between its writes, outruns it: with a dirty map alone every
	# pass would find more to copy. Active mirroring applies each write
	# behind the copy's cursor to DEST before answering it; only a write
	# to a piece the copy has in flight marks it dirty again (it waits
	# for nothing), so the dirty passes after the copy have a few pieces
	# at most; after 4 passes such a write waits for the piece's side
	# step and mirrors, so they converge well before the 16 that would
	# force the switch-over.
	base_disk "$D/f.vhdx"
	writer "$D/f.vhdx"
	id=$("$V" migrate --detach --throttle 2 "$D/f.vhdx" "$SCMT/far/f.vhdx")
	# once the copy is past its first piece the job is paused (so this
	# does not race it) until one of the writer's writes landed behind it
	for _ in $(seq 300); do [[ $(job_json "$id") =~ \"bytes_copied\":[1-9] ]] && break; sleep 0.1; done
	"$V" job "$id" pause
	for _ in $(seq 200); do
		[[ $(job_json "$id") =~ \"bytes_mirrored\":[1-9] ]] && break
		more_writes
	done
	"$V" job "$id" resume
	"$V" job "$id" wait
	more_writes # on DEST now
	writer_stop
	same "$SCMT/far/f.vhdx"
	run job_json "$id"
	echo "$output"
	[[ $output == *'"state":"done"'* ]]
	[[ $output == *'"copy_mode":"write-behind"'* ]]
	[[ $output =~ \"bytes_mirrored\":[1-9] ]]
	python3 - "$output" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
# converged: not forced after 16 passes; the passes and the pause copied
# the redirtied pieces, not the disk again
assert j["passes"] < 16, j["passes"]
assert j["bytes_copied"] <= j["total"] + (j["writes_redirtied"] + 16) * 2 * 1048576, j
assert j["pause_bytes"] <= j["writes_redirtied"] * 2 * 1048576, j
PY
}

@test "migrate mirror, its queue for DEST slow: the switch-over applies it all, DEST is the disk" {
	# each client's write mirrored to DEST waits 3 ms in the job's queue
	# (the hook), and the writer does not flush (a flush waits for the
	# queue), so it writes faster than the queue drains: the queue is long
	# when the dirty passes take pieces again (their queued writes
	# dropped: the pass reads the piece from the disk) and when the
	# switch-over comes, which applies it all before DEST is the disk
	base_disk "$D/q.vhdx"
	VDISK_PATTERN_NOFLUSH=1 writer "$D/q.vhdx"
	"$V" migrate --max-pause 20 "$D/q.vhdx" "$SCMT/far/q.vhdx" >"$SCMT/job.out"
	cat "$SCMT/job.out"
	grep -q "migrate  done" "$SCMT/job.out"
	more_writes
	writer_stop
	same "$SCMT/far/q.vhdx"
	run "$V" jobs --json
	echo "$output"
	[[ $output == *'"copy_mode":"write-behind"'* ]]
	[[ $output =~ \"bytes_mirrored\":[1-9] ]]
}

@test "migrate of an idle disk: block states kept, the correspondence record matches DEST" {
	base_disk "$D/i.vhdx"
	"$V" convert -O raw "$D/i.vhdx" "$SCMT/expected"
	hold_open "$D/i.vhdx"
	"$V" migrate "$D/i.vhdx" "$SCMT/far/i.vhdx"
	hold_close
	convert_free "$SCMT/far/i.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/expected" "$SCMT/got.raw"
	# unallocated stays unallocated, ZERO and unmapped become ZERO, the
	# 4 MiB of written zeros become ZERO (only allocated data moves)
	run "$V" info --json "$SCMT/far/i.vhdx"
	echo "$output"
	python3 - "$output" <<'PY'
import json, sys
b = json.loads(sys.argv[1])["blocks"]
assert b["fully_present"] == 9, b      # 8 MiB + 1 MiB of data
assert b["zero"] == 5, b               # 4 written zeros + 1 trimmed
assert b["not_present"] == 18, b
PY
	# the record (written after the job, from the disk's old file): one
	# line a piece DEST holds, each hash the SHA-256 of DEST's bytes
	# there; a CRC line at the end
	wait_until 60 test -s "$SCMT/far/i.vhdx.scm-map"
	python3 - "$SCMT/far/i.vhdx.scm-map" "$SCMT/got.raw" <<'PY'
import hashlib, sys
lines = open(sys.argv[1]).read().splitlines()
raw = open(sys.argv[2], 'rb').read()
assert lines[0] == "scm-vdisk-map 1", lines[0]
assert lines[-1].startswith("end "), lines[-1]
n = 0
for l in lines[8:-1]:
    so, do, ln, kind, h = l.split()
    so, do, ln = int(so), int(do), int(ln)
    assert so == do and kind in ("data", "zero"), l
    assert hashlib.sha256(raw[do:do + ln]).hexdigest() == h, l
    n += kind == "data"
assert n == 9, n
PY
	grep -q "^dest $SCMT/far/i.vhdx$" "$SCMT/far/i.vhdx.scm-map"
}

@test "migrate of a disk written in this session, nothing written after the switch-over: DEST's DataWriteGuid is renewed" {
	# A disk written while open says so with a new DataWriteGuid (MS-VHDX:
	# renewed at the first write of a session), so a child made against
	# its old identity no longer takes it for its parent. DEST takes over
	# a disk written in this session: it renews its own before the
	# switch-over, beside the I/O, not at the first write after it, of
	# which there is none here. The record keeps the one DEST was made
	# with: it vouches for DEST as the copy left it.
	base_disk "$D/g.vhdx"
	# 20 writes, then the writer keeps the disk open, idle, until
	# $SCMT/linger exists
	VDISK_PATTERN_LINGER=$SCMT/linger writer "$D/g.vhdx" 20
	wait_until 60 grep -q "^wrote 20" "$SCMT/writer.out"
	id=$("$V" migrate --detach "$D/g.vhdx" "$SCMT/far/g.vhdx")
	"$V" job "$id" wait
	touch "$SCMT/linger"
	writer_stop
	wait_until 60 test -s "$SCMT/far/g.vhdx.scm-map"
	made=$(awk '$1 == "data_write_guid" { print $2 }' "$SCMT/far/g.vhdx.scm-map")
	now=$("$V" info --json "$SCMT/far/g.vhdx" | jq -r .data_write_guid)
	echo "made with $made, now $now"
	[ -n "$made" ] && [ -n "$now" ] && [ "$now" != null ]
	[ "$now" != "$made" ]
	# renewed beside the I/O, before the switch-over, not in its pause
	run job_json "$id"
	echo "$output"
	[[ $output == *'"dest_renewed":"beside"'* ]]
	same "$SCMT/far/g.vhdx"
	run "$V" check "$SCMT/far/g.vhdx"
	[ "$status" -eq 0 ]
}

@test "migrate of a differencing chain, both modes: DEST is the chain flattened" {
	base_disk "$D/cb.vhdx"
	"$V" create --parent "$D/cb.vhdx" "$D/ct.vhdx"
	head -c 3M /dev/urandom | "$V" write --offset 4M "$D/ct.vhdx"
	writer "$D/ct.vhdx"
	"$V" migrate "$D/ct.vhdx" "$SCMT/far/flat.vhdx"
	more_writes
	writer_stop
	run "$V" info --json "$SCMT/far/flat.vhdx"
	[[ $output != *differencing* ]]
	mv "$D/cb.vhdx" "$D/cb.away" # DEST needs no parent
	same "$SCMT/far/flat.vhdx"
	# snapshot mode: the parent copied is the chain below the child,
	# flattened; the child re-parented onto it and merged
	base_disk "$D/sb.vhdx"
	"$V" create --parent "$D/sb.vhdx" "$D/st.vhdx"
	head -c 3M /dev/urandom | "$V" write --offset 4M "$D/st.vhdx"
	writer "$D/st.vhdx"
	"$V" migrate --mode snapshot "$D/st.vhdx" "$D/sflat.vhdx"
	more_writes
	writer_stop
	run "$V" info --json "$D/sflat.vhdx"
	[[ $output != *differencing* ]]
	mv "$D/sb.vhdx" "$D/sb.away"
	same "$D/sflat.vhdx"
}

@test "migrate snapshot mode while a client writes: child merged into DEST, handle on DEST" {
	base_disk "$D/s.vhdx"
	writer "$D/s.vhdx"
	"$V" migrate --mode snapshot "$D/s.vhdx" "$D/s2.vhdx" >"$SCMT/job.out"
	cat "$SCMT/job.out"
	grep -q "migrate  done" "$SCMT/job.out"
	more_writes
	run "$V" write --offset 0 "$D/s2.vhdx" < <(head -c 4096 /dev/zero)
	[[ $output == *'"write" lock'* ]]
	writer_stop
	same "$D/s2.vhdx"
	run "$V" info --json "$D/s2.vhdx"
	[[ $output != *differencing* ]]
	# the temporary child is gone, the source is untouched and usable
	[ ! -e "$D/s.vhdx.migrate.avhdx" ]
	[ ! -e "$D/s.vhdx.job" ]
	"$V" check "$D/s.vhdx"
	run "$V" jobs --json
	[[ $output == *'"mode":"snapshot"'* ]]
}

@test "migrate: the throttle is kept and reported; pause, resume; cancel discards DEST in both modes" {
	# 4 MiB of data at 2 MiB/s with a burst of about 1.2 MiB: the copy
	# waited (and says so); no writer, so that no pass follows
	"$V" create --size 16M --block-size 1M "$D/t.vhdx"
	head -c 4M /dev/urandom | "$V" write --offset 2M "$D/t.vhdx"
	"$V" convert -O raw "$D/t.vhdx" "$SCMT/expected"
	hold_open "$D/t.vhdx"
	id=$("$V" migrate --detach --throttle 2 "$D/t.vhdx" "$SCMT/far/t.vhdx")
	"$V" job "$id" wait
	run job_json "$id"
	echo "$output"
	[[ $output == *'"throttle":2097152'* ]]
	[[ $output =~ \"throttled_us\":[1-9] ]]
	hold_close
	same "$SCMT/far/t.vhdx"
	# cancel in the middle (throttled, so it is in the middle): DEST goes
	base_disk "$D/u.vhdx"
	writer "$D/u.vhdx"
	# a record an older migration left beside DEST goes before DEST is
	# written: it would vouch for what DEST no longer holds
	echo stale >"$SCMT/far/u.vhdx.scm-map"
	id=$("$V" migrate --detach --throttle 1 "$D/u.vhdx" "$SCMT/far/u.vhdx")
	wait_until 60 test -e "$SCMT/far/u.vhdx"
	[ ! -e "$SCMT/far/u.vhdx.scm-map" ]
	# pause and resume, as any job
	"$V" job "$id" pause
	run job_json "$id"
	[[ $output == *'"state":"paused"'* ]]
	"$V" job "$id" resume
	"$V" job "$id" cancel
	run "$V" job "$id" wait
	[ "$status" -eq 1 ]
	[[ $output == *cancelled* ]]
	[ ! -e "$SCMT/far/u.vhdx" ]
	[ ! -e "$D/u.vhdx.job" ]
	more_writes # still on the source
	writer_stop
	same "$D/u.vhdx"
	# snapshot mode: the child's writes are folded back into the source
	writer "$D/u.vhdx"
	id=$("$V" migrate --detach --mode snapshot --throttle 1 "$D/u.vhdx" "$D/u2.vhdx")
	wait_until 60 test -e "$D/u.vhdx.migrate.avhdx"
	more_writes
	"$V" job "$id" cancel
	run "$V" job "$id" wait
	[ "$status" -eq 1 ]
	[ ! -e "$D/u2.vhdx" ]
	[ ! -e "$D/u.vhdx.migrate.avhdx" ]
	more_writes
	writer_stop
	same "$D/u.vhdx"
}

# job_threads PID NAME: the Cpus_allowed_list of each of PID's threads
# named NAME, one a line
job_threads() {
	local t
	for t in /proc/"$1"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = "$2" ] && awk '$1 == "Cpus_allowed_list:" { print $2 }' "$t/status"
	done
	true
}
has_thread() { [ -n "$(job_threads "$@")" ]; } # PID NAME
# cpu_split LIST: the highest-numbered quarter of the CPUs in LIST
# ("0-3,6"), one at least, then the rest, each a list on a line of its
# own; two empty lines for a single CPU
cpu_split() {
	python3 - "$1" <<'PY'
import sys
cpus = []
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    cpus += range(int(a), int(b or a) + 1)
def text(s):
    runs = []
    for c in sorted(s):
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)
job = cpus[-((len(cpus) + 3) // 4):] if len(cpus) >= 2 else []
print(text(job))
print(text(c for c in cpus if c not in job) if job else "")
PY
}

# workers_on PID LIST: every I/O worker of PID runs on LIST
workers_on() { [ "$(job_threads "$1" vdisk-io | sort -u)" = "$2" ]; }

@test "migrate: the job's own threads run on the last quarter of the provider's CPUs, the I/O workers on the rest meanwhile" {
	# The copy's thread, the mirror queue's and the early flusher run
	# apart from the clients' requests (provider-migside.c): what the job
	# reports is what the kernel holds for those threads; the pool's
	# workers keep off those CPUs while the job runs and get every CPU
	# back after it; the loop (the main thread) keeps every CPU.
	base_disk "$D/a.vhdx"
	writer "$D/a.vhdx"
	id=$("$V" migrate --detach --throttle 1 "$D/a.vhdx" "$SCMT/far/a.vhdx")
	pid=$(provider_pid)
	wait_until 60 has_thread "$pid" vdisk-migcopy
	wait_until 60 has_thread "$pid" vdisk-mirror
	all=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' /proc/"$pid"/status)
	{ read -r want; read -r rest; } < <(cpu_split "$all")
	run job_json "$id"
	echo "$output"
	[[ $output == *"\"cpus\":\"$want\""* ]]
	[ "$(job_threads "$pid" vdisk-migcopy)" = "${want:-$all}" ]
	[ "$(job_threads "$pid" vdisk-mirror)" = "${want:-$all}" ]
	wait_until 30 workers_on "$pid" "${rest:-$all}"
	[ "$(awk '$1 == "Cpus_allowed_list:" { print $2 }' /proc/"$pid"/status)" = "$all" ]
	"$V" job "$id" cancel
	run "$V" job "$id" wait
	[ "$status" -eq 1 ]
	wait_until 30 workers_on "$pid" "$all"
	more_writes
	writer_stop
	same "$D/a.vhdx"
}

@test "migrate: bad input gets a clear error" {
	base_disk "$D/b.vhdx"
	"$V" create --size 8M "$D/exists.vhdx"
	writer "$D/b.vhdx"
	run "$V" migrate "$D/b.vhdx" "$D/exists.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"$D/exists.vhdx exists"* ]]
	run "$V" migrate --mode sideways "$D/b.vhdx" "$D/x.vhdx"
	[ "$status" -eq 2 ]
	[[ $output == *'--mode "sideways": expected mirror or snapshot'* ]]
	run "$V" migrate --throttle fast "$D/b.vhdx" "$D/x.vhdx"
	[ "$status" -eq 2 ]
	[[ $output == *'--throttle "fast": expected a whole number'* ]]
	run "$V" migrate --throttle 2000000 "$D/b.vhdx" "$D/x.vhdx"
	[ "$status" -eq 2 ]
	run "$V" migrate --max-pause -1 "$D/b.vhdx" "$D/x.vhdx"
	[ "$status" -eq 2 ]
	run "$V" migrate "$D/exists.vhdx" "$D/x.vhdx"
	[ "$status" -eq 1 ]
	[[ $output == *"not open in the provider"* ]]
	run "$V" migrate "$D/b.vhdx" "$SCMT/nodir/x.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[ ! -e "$D/x.vhdx" ]
	# under a grant: DEST outside it is refused, inside it works
	mkdir -p "$SCMT/cfg/profiles" "$SCMT/else"
	local io='"read", "write", "readv", "writev", "flush", "trim", "info", "close"'
	cat >"$SCMT/cfg/profiles/mg.json" <<JSON
{ "name": "mg", "priority": 20, "services": [
  { "service": "vdisk", "methods": ["open"], "action": "allow", "args": { "path": { "path_prefix": "$D" } } },
  { "service": "vdisk", "methods": [$io], "action": "allow" },
  { "service": "vdisk", "methods": ["migrate"], "action": "allow",
    "args": { "path": { "path_prefix": "$D" }, "dest": { "path_prefix": "$SCMT/far" } } },
  { "service": "vdisk", "methods": ["job_list", "job_wait"], "action": "allow" } ] }
JSON
	"$SCMCTL" policy reload
	"$SCMCTL" endpoint create scoped --profiles mg >/dev/null
	run "$V" migrate --endpoint "$(ep scoped)" "$D/b.vhdx" "$SCMT/else/x.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"parameter 'dest' is not a clean path under the allowed directory"* ]]
	[ ! -e "$SCMT/else/x.vhdx" ]
	"$V" migrate --endpoint "$(ep scoped)" "$D/b.vhdx" "$SCMT/far/b.vhdx"
	more_writes
	writer_stop
	same "$SCMT/far/b.vhdx"
}

@test "migrate: the policy lint knows the method and its parameters" {
	mkdir -p "$SCMT/lint/profiles"
	cat >"$SCMT/lint/profiles/mig.json" <<JSON
{ "name": "mig", "priority": 20, "services": [
  { "service": "vdisk", "methods": ["migrate"], "action": "allow",
    "args": { "path": { "path_prefix": "$D" }, "dest": { "path_prefix": "$D" },
              "mode": { "in": ["mirror", "snapshot"] }, "throttle": { "range": [1, 100] } } } ] }
JSON
	run "$SCMCTL" policy lint --config "$SCMT/lint" --idl "$SCM_SRC/stubs/idl"
	echo "$output"
	[ "$status" -eq 0 ]
	sed -i 's#"dest": {#"new": {#' "$SCMT/lint/profiles/mig.json"
	run "$SCMCTL" policy lint --config "$SCMT/lint" --idl "$SCM_SRC/stubs/idl"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *new* ]]
}

@test "migrate: persistent reservations follow the disk to DEST, across a restart" {
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/node.json" <<JSON
{ "name": "node", "priority": 20, "services": [
  { "service": "vdisk", "methods": ["open"], "action": "allow", "settings": { "shareable": true } },
  { "service": "vdisk", "methods": ["read", "write", "readv", "writev", "flush", "info", "close",
                                    "pr_register", "pr_reserve", "pr_read", "migrate", "job_list", "job_wait"],
    "action": "allow", "settings": { "shareable": true } } ] }
JSON
	"$SCMCTL" policy reload
	"$SCMCTL" endpoint create node --profiles node >/dev/null
	"$V" create --size 8M --block-size 1M "$D/r.vhdx"
	pr() { "$C" --endpoint "$(ep node)" pr "$@"; }
	pr "$D/r.vhdx" register 0 0xa1 -- reserve 0xa1 write-exclusive
	# the disk held open (shared) while it moves
	rm -f "$SCMT/hold.in" "$SCMT/hold.out"
	mkfifo "$SCMT/hold.in"
	"$C" --endpoint "$(ep node)" hold "$D/r.vhdx" shared <"$SCMT/hold.in" >"$SCMT/hold.out" &
	HOLD=$!
	BG="${BG:-} $HOLD"
	exec 7>"$SCMT/hold.in"
	wait_until 60 grep -q open "$SCMT/hold.out"
	# (a job needs the right to write under the reservation: the holder's)
	run "$V" migrate "$D/r.vhdx" "$SCMT/far/r.vhdx"
	[ "$status" -eq 1 ]
	[[ $output == *"reservation conflict"* ]]
	"$V" migrate --endpoint "$(ep node)" "$D/r.vhdx" "$SCMT/far/r.vhdx"
	[ -s "$SCMT/far/r.vhdx.scm-pr" ]
	run pr "$SCMT/far/r.vhdx" read
	echo "$output"
	[[ $output == *'"type":"write-exclusive","key":161'* ]]
	exec 7>&-
	wait "$HOLD"
	# a new provider reads the state beside DEST (a call may still reach
	# the killed one before scmd saw it go: provider-gone, asked again)
	local pid
	pid=$(cat "$SCMT/provider.pid")
	kill -KILL "$pid"
	gone() { ! kill -0 "$pid" 2>/dev/null; }
	wait_until 60 gone
	kept() { pr "$SCMT/far/r.vhdx" read | grep -q '"type":"write-exclusive","key":161'; }
	wait_until 60 kept
}

@test "migrate back to where the disk came from: the record lets the copy there be reused" {
	base_disk "$D/a.vhdx"
	"$V" convert -O raw "$D/a.vhdx" "$SCMT/expected"
	hold_open "$D/a.vhdx"
	id1=$("$V" migrate --detach "$D/a.vhdx" "$SCMT/far/a.vhdx")
	"$V" job "$id1" wait
	# back: a.vhdx is the copy far/a.vhdx.scm-map vouches for (the source
	# of a mirror migration, not written since): nothing is copied again
	id2=$("$V" migrate --detach "$SCMT/far/a.vhdx" "$D/a.vhdx")
	"$V" job "$id2" wait
	run job_json "$id2"
	echo "$output"
	[[ $output == *'"bytes_copied":0,"bytes_skipped":9437184'* ]]
	[ -s "$D/a.vhdx.scm-map" ]
	# and forth again after a 4 KiB write: far/a.vhdx is unchanged since it
	# was the source, so only the piece written goes (its hash differs),
	# the other 8 MiB of data are skipped by their hashes, and far/a.vhdx
	# holds the write (same, at the end, once the disk is let go)
	# (written offline: the client lets go of the disk meanwhile)
	hold_close
	head -c 4096 /dev/urandom >"$SCMT/w4k"
	wait_until 60 write_4k "$D/a.vhdx" 1052672
	dd if="$SCMT/w4k" of="$SCMT/expected" bs=4096 seek=257 conv=notrunc status=none
	hold_open "$D/a.vhdx"
	id3=$("$V" migrate --detach "$D/a.vhdx" "$SCMT/far/a.vhdx")
	"$V" job "$id3" wait
	run job_json "$id3"
	echo "$output"
	[[ $output == *'"bytes_copied":1048576,"bytes_skipped":8388608'* ]]
	# a record not the provider's own is not believed
	chmod 666 "$D/a.vhdx.scm-map" "$SCMT/far/a.vhdx.scm-map"
	run "$V" migrate "$SCMT/far/a.vhdx" "$D/a.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"not the provider's own file: not believed"* ]]
	chmod 644 "$D/a.vhdx.scm-map" "$SCMT/far/a.vhdx.scm-map"
	# a copy written since is not reused: refused, and left as it is
	"$V" write --offset 0 "$D/a.vhdx" < <(head -c 4096 /dev/urandom)
	cp "$D/a.vhdx" "$SCMT/a.before"
	run "$V" migrate "$SCMT/far/a.vhdx" "$D/a.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"exists"*"written since"* ]]
	cmp "$D/a.vhdx" "$SCMT/a.before"
	hold_close
	same "$SCMT/far/a.vhdx"
}

@test "migrate: the record comes after the job, never stale; a migration back meanwhile waits for it, then copies nothing" {
	base_disk "$D/r.vhdx"
	"$V" convert -O raw "$D/r.vhdx" "$SCMT/expected"
	hold_open "$D/r.vhdx"
	touch "$SCMT/record.hold"
	"$V" migrate "$D/r.vhdx" "$SCMT/far/r.vhdx"
	# done, its record held back: none, not even half of one
	[ ! -e "$SCMT/far/r.vhdx.scm-map" ] && [ ! -e "$SCMT/far/r.vhdx.scm-map.tmp" ]
	# back, taken on trust: its first step waits for the record, which
	# the hold keeps from coming
	id=$("$V" migrate --detach "$SCMT/far/r.vhdx" "$D/r.vhdx")
	wait_until 60 job_running "$id"
	[ ! -e "$SCMT/far/r.vhdx.scm-map" ]
	run job_json "$id"
	echo "$output"
	[[ $output == *'"state":"running"'* ]]
	rm "$SCMT/record.hold"
	"$V" job "$id" wait
	run job_json "$id"
	echo "$output"
	[[ $output == *'"bytes_copied":0,"bytes_skipped":9437184'* ]]
	hold_close
	same "$D/r.vhdx"
}

@test "migrate: a provider killed before its record is made leaves none; the way back is refused, both files intact" {
	base_disk "$D/k.vhdx"
	"$V" convert -O raw "$D/k.vhdx" "$SCMT/expected"
	hold_open "$D/k.vhdx"
	touch "$SCMT/record.hold"
	"$V" migrate "$D/k.vhdx" "$SCMT/far/k.vhdx"
	kill -9 "$(provider_pid)"
	exec 7>&-
	wait "$HOLD" || true # (its channel went with the provider)
	rm "$SCMT/record.hold"
	[ ! -e "$SCMT/far/k.vhdx.scm-map" ] && [ ! -e "$SCMT/far/k.vhdx.scm-map.tmp" ]
	[ ! -e "$D/k.vhdx.scm-map" ]
	# nothing vouches for the old file: not reused, not touched
	cp "$D/k.vhdx" "$SCMT/k.before"
	hold_open "$SCMT/far/k.vhdx"
	run "$V" migrate "$SCMT/far/k.vhdx" "$D/k.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"exists"*"no correspondence record"* ]]
	hold_close
	cmp "$D/k.vhdx" "$SCMT/k.before"
	same "$SCMT/far/k.vhdx"
	same "$D/k.vhdx"
}

@test "migrate: the old file written before its record is made: no record, the way back refused" {
	base_disk "$D/w.vhdx"
	hold_open "$D/w.vhdx"
	touch "$SCMT/record.hold"
	"$V" migrate "$D/w.vhdx" "$SCMT/far/w.vhdx"
	hold_close
	# the old file, let go, written (its DataWriteGuid renewed) while its
	# hashes wait: hashes of it would not be what DEST held
	head -c 4096 /dev/urandom >"$SCMT/w4k"
	write_4k "$D/w.vhdx" 0
	rm "$SCMT/record.hold"
	wait_until 60 grep -q "no correspondence record for $SCMT/far/w.vhdx: $D/w.vhdx was written after the migration" \
		"$SCMT"/run/logs/vdisk.log
	[ ! -e "$SCMT/far/w.vhdx.scm-map" ] && [ ! -e "$SCMT/far/w.vhdx.scm-map.tmp" ]
	hold_open "$SCMT/far/w.vhdx"
	run "$V" migrate "$SCMT/far/w.vhdx" "$D/w.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"exists"*"no correspondence record"* ]]
	hold_close
}

@test "migrate: the old file rewritten behind the engine's back (raw, same bytes) before its record is made: no record" {
	base_disk "$D/x.vhdx"
	hold_open "$D/x.vhdx"
	touch "$SCMT/record.hold"
	"$V" migrate "$D/x.vhdx" "$SCMT/far/x.vhdx"
	hold_close
	# its last 4 KiB written again as they are: no GUID renewed, only
	# the inode's change time tells
	size=$(stat -c %s "$D/x.vhdx")
	dd if="$D/x.vhdx" of="$SCMT/tail4k" bs=4096 skip=$((size / 4096 - 1)) count=1 status=none
	dd if="$SCMT/tail4k" of="$D/x.vhdx" bs=4096 seek=$((size / 4096 - 1)) conv=notrunc status=none
	rm "$SCMT/record.hold"
	wait_until 60 grep -q "no correspondence record for $SCMT/far/x.vhdx: $D/x.vhdx was written after the migration" \
		"$SCMT"/run/logs/vdisk.log
	[ ! -e "$SCMT/far/x.vhdx.scm-map" ]
}

job_running() { [[ $(job_json "$1") == *'"state":"running"'* ]]; }

# nbd_job ID FIELD: the job's FIELD (jobs --json)
nbd_job() { "$V" jobs --json | jq -r ".[] | select(.id == $1) | .$2"; }
nbd_job_is() { [ "$(nbd_job "$1" "$2")" = "$3" ]; }

@test "migrate to an NBD export (qemu-nbd, unix socket): the export is the writer's copy; a provider killed in it rolls back" {
	command -v qemu-nbd >/dev/null && command -v jq >/dev/null || {
		echo "qemu-nbd (qemu-utils) and jq are test dependencies (scripts/deps)" >&2; return 1; }
	base_disk "$D/n.vhdx"
	# the destination: a raw file of the disk's size holding old data where
	# the disk has none, served by qemu-nbd (not ours: any NBD server does)
	qemu-img create -q -f raw "$SCMT/n.raw" 32M
	head -c 1M /dev/urandom | dd of="$SCMT/n.raw" bs=1M seek=30 conv=notrunc status=none
	qemu-nbd -f raw -x dst -k "$SCMT/n.sock" --persistent --discard=unmap "$SCMT/n.raw" \
		>/dev/null 2>&1 &
	local qpid=$!
	BG="${BG:-} $qpid"
	wait_until 60 test -S "$SCMT/n.sock"
	local uri="nbd+unix:///dst?socket=$SCMT/n.sock"
	mkdir -p "$SCMT/cfg/profiles"
	local set="{ \"nbd_migrate_dests\": \"$uri\" }"
	cat >"$SCMT/cfg/profiles/nm.json" <<JSON
{ "name": "nm", "priority": 20, "services": [
  { "service": "vdisk", "methods": ["open", "migrate"], "action": "allow", "args": { "path": { "path_prefix": "$D" } },
    "settings": $set },
  { "service": "vdisk", "methods": ["read", "write", "readv", "writev", "flush", "trim", "info", "close",
                                    "job_list", "job_wait", "job_pause", "job_resume", "job_cancel"], "action": "allow",
    "settings": $set } ] }
JSON
	"$SCMCTL" policy reload
	"$SCMCTL" endpoint create nm --profiles nm >/dev/null
	writer "$D/n.vhdx"
	# a grant without nbd_migrate_dests reaches no export
	run "$V" migrate "$D/n.vhdx" "$uri"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"is not among the grant's nbd_migrate_dests (the profile sets none)"* ]]
	writer_stop
	# killed in it: a migration held before it copies (qemu-nbd stopped
	# while the job connects, the pause sent meanwhile), then the
	# provider SIGKILLed; the next open rolls it back: the journal goes,
	# the export is left as it is, the disk as the writer left it
	hold_open "$D/n.vhdx"
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep nm)
	kill -STOP "$qpid"
	local id
	id=$("$V" migrate --detach "$D/n.vhdx" "$uri") || { kill -CONT "$qpid"; false; }
	"$V" job "$id" pause || { kill -CONT "$qpid"; false; }
	kill -CONT "$qpid"
	wait_until 60 nbd_job_is "$id" phase copy
	[ "$(nbd_job "$id" target)" = "$uri" ]
	[ "$(nbd_job "$id" dest_nbd)" = true ]
	[ -e "$D/n.vhdx.job" ]
	kill -KILL "$(cat "$SCMT/provider.pid")"
	exec 7>&-
	wait "$HOLD" || true
	"$C" --endpoint "$(ep app)" pattern "$D/n.vhdx" "$SCMT/expected" 1 >/dev/null
	[ ! -e "$D/n.vhdx.job" ]
	grep -q "migration job $id to $uri rolled back: $uri keeps what the job wrote to it" "$SCMT"/run/logs/vdisk.log*
	same "$D/n.vhdx"
	# the migration, under a writer: once over, the writer's next write is
	# refused, and the export holds every write it was answered for (a
	# reader holds the disk open throughout, for the restart below)
	rm -f "$SCMT/hold.in" "$SCMT/hold.out"
	mkfifo "$SCMT/hold.in"
	"$C" --endpoint "$(ep app)" hold "$D/n.vhdx" ro <"$SCMT/hold.in" >"$SCMT/hold.out" &
	HOLD=$!
	BG="${BG:-} $HOLD"
	exec 7>"$SCMT/hold.in"
	wait_until 60 grep -q open "$SCMT/hold.out"
	writer "$D/n.vhdx"
	more_writes
	"$V" migrate --throttle 100 "$D/n.vhdx" "$uri"
	local rc=0
	wait "$WRITER" || rc=$?
	cat "$SCMT/writer.out"
	[ "$rc" -ne 0 ]
	grep -q "was migrated to $uri: it takes no more writes here" "$SCMT/writer.out"
	cmp "$SCMT/expected" "$SCMT/n.raw"
	qemu-img compare -q -f raw -F raw "$SCMT/expected" "$SCMT/n.raw"
	# still after a restart (the handover carries it): a new client's
	# write is refused, the disk unchanged
	"$SCMCTL" service restart vdisk
	run "$C" --endpoint "$(ep app)" pattern "$D/n.vhdx" "$SCMT/expected" 1
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"was migrated to $uri: it takes no more writes here"* ]]
	exec 7>&-
	wait "$HOLD"
	# the disk itself holds the same
	same "$D/n.vhdx"
	# every handle closed and the provider killed: the mark beside the
	# disk (its journal's place) still refuses an open for writing, naming
	# the export and the way out; a read-only open works
	[ "$(sed -n 3p "$D/n.vhdx.job")" = "kind migrated" ]
	kill -KILL "$(cat "$SCMT/provider.pid")"
	run "$C" --endpoint "$(ep app)" pattern "$D/n.vhdx" "$SCMT/expected" 1
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"open $D/n.vhdx for writing: $D/n.vhdx was migrated to $uri: it takes no more writes here"* ]]
	[[ $output == *"scmctl vdisk migrated --clear $D/n.vhdx"* ]]
	"$C" --endpoint "$(ep app)" copy-out "$D/n.vhdx" "$SCMT/ro.raw"
	cmp "$SCMT/expected" "$SCMT/ro.raw"
	same "$D/n.vhdx"
	run "$V" migrated --endpoint "$(ep admin)" "$D/n.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"migrated to $uri"* ]]
	# clearing it is a method the grant must allow (nm's does not)
	run "$V" migrated --clear "$D/n.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"vdisk.migrated is not in this channel's grant"* ]]
	[ -e "$D/n.vhdx.job" ]
	SCM_ENDPOINT=$(ep admin) "$V" migrated --clear "$D/n.vhdx"
	[ ! -e "$D/n.vhdx.job" ]
	run "$V" migrated --endpoint "$(ep admin)" "$D/n.vhdx"
	[ "$status" -eq 1 ]
	[[ $output == *"not migrated"* ]]
	# an ordinary disk again: written, and it holds the writes
	"$C" --endpoint "$(ep app)" pattern "$D/n.vhdx" "$SCMT/expected" 1 >/dev/null
	same "$D/n.vhdx"
	run cmp -s "$SCMT/expected" "$SCMT/n.raw"
	[ "$status" -ne 0 ]
}

# knbd_start: qemu-nbd serves $SCMT/k.raw as "dst" on $SCMT/k.sock (KQ)
knbd_start() {
	rm -f "$SCMT/k.sock"
	qemu-nbd -f raw -x dst -k "$SCMT/k.sock" --persistent --discard=unmap "$SCMT/k.raw" >/dev/null 2>&1 &
	KQ=$!
	BG="${BG:-} $KQ"
	wait_until 60 test -S "$SCMT/k.sock"
}
copied_some() { [ "$(nbd_job "$1" bytes_copied)" -ge $((2 << 20)) ]; }
reconnecting() { grep -q "migration job $1: the connection to $2 was lost; connecting again" "$SCMT"/run/logs/vdisk.log*; }

@test "migrate to an NBD export killed and started again mid-copy: the job connects again, resends, completes" {
	command -v qemu-nbd >/dev/null && command -v jq >/dev/null || {
		echo "qemu-nbd (qemu-utils) and jq are test dependencies (scripts/deps)" >&2; return 1; }
	base_disk "$D/k.vhdx"
	qemu-img create -q -f raw "$SCMT/k.raw" 32M
	knbd_start
	local uri="nbd+unix:///dst?socket=$SCMT/k.sock"
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/km.json" <<JSON
{ "name": "km", "priority": 20, "services": [
  { "service": "vdisk", "methods": ["open", "migrate"], "action": "allow", "args": { "path": { "path_prefix": "$D" } },
    "settings": { "nbd_migrate_dests": "$uri" } },
  { "service": "vdisk", "methods": ["read", "write", "flush", "info", "close", "job_list", "job_wait"],
    "action": "allow", "settings": { "nbd_migrate_dests": "$uri" } } ] }
JSON
	"$SCMCTL" policy reload
	"$SCMCTL" endpoint create km --profiles km >/dev/null
	writer "$D/k.vhdx"
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep km)
	local id
	id=$("$V" migrate --detach --throttle 2 "$D/k.vhdx" "$uri")
	# part of the copy went over; then the export's server is killed and,
	# once the job has noticed, started again on the same file
	wait_until 60 copied_some "$id"
	kill -KILL "$KQ"
	wait "$KQ" 2>/dev/null || true
	wait_until 60 reconnecting "$id" "$uri"
	knbd_start
	"$V" job "$id" wait
	grep -q "migration job $id: connected to $uri again" "$SCMT"/run/logs/vdisk.log*
	# the writer's writes after the switch-over are refused; the export
	# holds every write it was answered for before
	local rc=0
	wait "$WRITER" || rc=$?
	cat "$SCMT/writer.out"
	[ "$rc" -ne 0 ]
	grep -q "was migrated to $uri: it takes no more writes here" "$SCMT/writer.out"
	cmp "$SCMT/expected" "$SCMT/k.raw"
}

@test "migrate to an NBD export that takes a WRITE a window at a time: the request's time limit fails the job" {
	command -v qemu-nbd >/dev/null && command -v jq >/dev/null || {
		echo "qemu-nbd (qemu-utils) and jq are test dependencies (scripts/deps)" >&2; return 1; }
	base_disk "$D/t.vhdx"
	qemu-img create -q -f raw "$SCMT/t.raw" 32M
	qemu-nbd -f raw -x dst -k "$SCMT/t.sock" --persistent "$SCMT/t.raw" >/dev/null 2>&1 &
	BG="${BG:-} $!"
	wait_until 60 test -S "$SCMT/t.sock"
	# bytes keep moving (a socket's buffer, up to 256 KiB, every 5 s:
	# inside the 10 s silence bound), a 1 MiB WRITE takes 20 s, over its
	# limit (10 s + 1 s + 1 s); before the limit, the copy went on at that
	# pace for ever
	bare python3 "$BATS_TEST_DIRNAME/nbd-trickle.py" "$SCMT/slow.sock" "$SCMT/t.sock" 5 </dev/null >/dev/null 2>&1 &
	BG="${BG:-} $!"
	wait_until 60 test -S "$SCMT/slow.sock"
	local uri="nbd+unix:///dst?socket=$SCMT/slow.sock"
	mkdir -p "$SCMT/cfg/profiles"
	cat >"$SCMT/cfg/profiles/nt.json" <<JSON
{ "name": "nt", "priority": 20, "services": [
  { "service": "vdisk", "methods": ["open", "migrate"], "action": "allow",
    "args": { "path": { "path_prefix": "$D" } }, "settings": { "nbd_migrate_dests": "$uri" } },
  { "service": "vdisk", "methods": ["job_list", "job_wait", "job_cancel"], "action": "allow",
    "settings": { "nbd_migrate_dests": "$uri" } } ] }
JSON
	"$SCMCTL" policy reload
	"$SCMCTL" endpoint create nt --profiles nt >/dev/null
	hold_open "$D/t.vhdx"
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep nt)
	local id
	id=$("$V" migrate --detach "$D/t.vhdx" "$uri")
	wait_until 90 nbd_job_is "$id" state failed || { "$V" jobs --json; false; }
	nbd_job "$id" error | tee "$SCMT/err.json"
	grep -q "migration destination $uri: writing .*not done within its time limit" "$SCMT/err.json"
	# the disk is the disk still, and an ordinary one once let go of
	hold_close
	wait_until 60 "$V" check "$D/t.vhdx"
}
