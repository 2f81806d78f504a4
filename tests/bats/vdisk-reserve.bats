#!/usr/bin/env bats
# Shared disks with persistent reservations (docs/vdisk.md "Reservations"):
# two clients of a private scmd, on endpoints carrying the cluster example's
# profile (examples/cluster/, its /srv/disks/cluster turned into a scratch
# directory), fence each other through the provider; the bytes on disk, the
# conflicts and the state across a provider restart are checked.
load helpers

V=$SCM_BUILD/bin/scm-vdisk
C=$SCM_BUILD/libexec/vdisk-client
WERO=write-exclusive-registrants-only

pre_start() {
	mkdir -p "$SCMT/cfg/profiles" "$SCMT/disks"
	for p in "$SCM_SRC"/examples/cluster/cluster-*.json; do
		sed "s#/srv/disks/cluster#$SCMT/disks#g" "$p" >"$SCMT/cfg/profiles/$(basename "$p")"
	done
}

setup() {
	start_scmd --subids "2147483648:65536"
	D=$SCMT/disks
	cat >"$SCMT/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk", "exec": ["$SCM_BUILD/libexec/scm-vdisk-provider"],
  "activation": "on-demand", "restart": "on-failure" }
JSON
	"$SCMCTL" service register "$SCMT/vdisk.json" >/dev/null
	"$SCMCTL" endpoint create hosta --profiles cluster-node >/dev/null
	"$SCMCTL" endpoint create hostb --profiles cluster-node >/dev/null
	"$SCMCTL" endpoint create observer --profiles cluster-observer >/dev/null
	"$V" create --size 8M --block-size 1M "$D/shared.vhdx"
}

teardown() {
	stop_scmd
}

a() { "$C" --endpoint "$(ep hosta)" pr "$D/shared.vhdx" "$@"; }
b() { "$C" --endpoint "$(ep hostb)" pr "$D/shared.vhdx" "$@"; }
provider_pid() { pgrep -P "$SCMD_PID" -f scm-vdisk-provider | head -1; }
ondisk() { # OFFSET: the distinct bytes of 4 KiB there, as the file holds them ("aa " when all are 0xaa)
	"$V" read -U --offset "$1" --length 4096 "$D/shared.vhdx" | od -An -v -tx1 | tr -s ' \n' '\n' | grep . | sort -u | tr '\n' ' '
}

@test "reserve: node A fences node B (preempt and abort); B's write does not land; state survives a provider restart" {
	a register 0 0xa1
	b register 0 0xb1
	a reserve 0xa1 $WERO
	# registrants only: both registered nodes write
	a write 0 4096 0xaa
	b write 1048576 4096 0xbb
	run a read
	[[ $output == *'"keys":[ 161, 177 ]'* || $output == *'"keys":[161,177]'* ]]
	[[ $output == *"\"type\":\"$WERO\",\"key\":161"* ]]
	[[ $output == *'"holder":true'* ]]
	# A preempts and aborts B: B's registration goes
	a preempt-abort 0xa1 0xb1 $WERO
	run b write 0 4096 0xcc
	[ "$status" -eq 39 ] # 10 + ReservationConflict (109 - 100 + 20)
	[[ $output == *"reservation conflict"* ]]
	# write-exclusive types let anyone read
	run b check 0 4096
	[ "$status" -eq 0 ]
	[ "$output" = "byte 0xaa" ]
	# B cannot get back in with its old key
	run b reserve 0xb1 $WERO
	[ "$status" -eq 39 ]
	[ "$(ondisk 0)" = "aa " ]
	[ "$(ondisk 1048576)" = "bb " ]
	# the state file is next to the disk and names the disk
	head -1 "$D/shared.vhdx.scm-pr" | grep -qx 'scm-vdisk-pr 1'
	grep -q "^disk {" "$D/shared.vhdx.scm-pr"

	# the provider dies; scmd starts it again on the next call
	pid=$(provider_pid)
	[ -n "$pid" ]
	kill -9 "$pid"
	gone() { ! kill -0 "$pid" 2>/dev/null; }
	wait_until 60 gone
	run b write 0 4096 0xcc
	[ "$status" -eq 39 ]
	[ "$(provider_pid)" != "$pid" ]
	run a read
	[[ $output == *"\"type\":\"$WERO\",\"key\":161"* ]]
	[[ $output == *'"keys":[ 161 ]'* || $output == *'"keys":[161]'* ]]
	a write 4096 4096 0xab
	[ "$(ondisk 0)" = "aa " ]
	[ "$(ondisk 4096)" = "ab " ]
	# B registers anew (ignoring its old key) and may write again: registrants only
	b register-ignore 0xb2
	b write 8192 4096 0xbc
	[ "$(ondisk 8192)" = "bc " ]
}

@test "reserve: preempt and abort while the victim is writing; none of its writes lands after the reply" {
	a register 0 0xa1 -- reserve 0xa1 $WERO
	b register 0 0xb1
	# B writes 0xbb over the first 2 MiB again and again, one client, until refused
	args=()
	for i in $(seq 0 1999); do args+=(write $(( (i % 512) * 4096 )) 4096 0xbb --); done
	b "${args[@]}" read >"$SCMT/b.out" 2>&1 &
	bpid=$!
	b_wrote() { [ "$(a check 0 4096)" = "byte 0xbb" ]; }
	wait_until 60 b_wrote
	[ "$(a check 0 4096)" = "byte 0xbb" ]
	a preempt-abort 0xa1 0xb1 $WERO
	# A now owns the range: whatever B had in flight is done or refused
	a write 0 2097152 0xaa
	rc=0
	wait "$bpid" || rc=$?
	cat "$SCMT/b.out"
	[ "$rc" -eq 39 ]
	grep -q "reservation conflict" "$SCMT/b.out"
	[ "$("$V" read -U --offset 0 --length 2M "$D/shared.vhdx" | od -An -v -tx1 | tr -s ' \n' '\n' | grep . | sort -u | tr '\n' ' ')" = "aa " ]
}

@test "reserve: the SCSI-3 types through the service" {
	a register 0 0xa1 -- reserve 0xa1 exclusive-access
	b register 0 0xb1
	# exclusive access: B, registered but not the holder, may neither read nor write
	run b check 0 4096
	[ "$status" -eq 39 ]
	run b write 0 4096 0xbb
	[ "$status" -eq 39 ]
	# another type while A holds one: conflict; a release of the wrong type: bad args
	run b reserve 0xb1 write-exclusive
	[ "$status" -eq 39 ]
	run a release 0xa1 write-exclusive
	[ "$status" -ne 0 ]
	[[ $output == *"the reservation is exclusive-access"* ]]
	a release 0xa1 exclusive-access
	b write 0 4096 0xbb
	# all registrants: every registrant writes, the reservation key reads 0
	b reserve 0xb1 write-exclusive-all-registrants
	a write 4096 4096 0xaa
	run a read
	[[ $output == *'"key":0'* && $output == *'"holder":true'* ]]
	# a wrong key is a conflict; clear drops everything
	run a clear 0xdead
	[ "$status" -eq 39 ]
	a clear 0xa1
	run b read
	[[ $output == *'"reservation":null'* && ( $output == *'"keys":[ ]'* || $output == *'"keys":[]'* ) ]]
	run a reserve 0xa1 write-exclusive
	[ "$status" -eq 39 ]
}

@test "reserve: the state follows the disk's identity: a moved disk with its state file keeps its reservations" {
	a register 0 0xa1 -- reserve 0xa1 exclusive-access -- write 0 4096 0xaa
	b register 0 0xb1
	mkdir "$D/moved"
	mv "$D/shared.vhdx" "$D/shared.vhdx.scm-pr" "$D/moved/"
	run "$C" --endpoint "$(ep hostb)" pr "$D/moved/shared.vhdx" check 0 4096
	[ "$status" -eq 39 ]
	run "$C" --endpoint "$(ep hosta)" pr "$D/moved/shared.vhdx" read -- check 0 4096
	[ "$status" -eq 0 ]
	[[ $output == *'"type":"exclusive-access","key":161'*'"holder":true'*"byte 0xaa"* ]]
}

@test "reserve: a shared read-write open needs the shareable setting; a damaged state file refuses the disk" {
	run "$C" --endpoint "$(ep observer)" pr "$D/shared.vhdx" read
	[ "$status" -ne 0 ]
	[[ $output == *"does not make disks shareable"* ]]
	run "$C" --endpoint "$(ep observer)" pr "$D/shared.vhdx" --ro read
	[ "$status" -eq 0 ]
	# nobody creates a disk under a state file's name
	cat >"$SCMT/cfg/profiles/maker.json" <<'JSON'
{ "name": "maker", "priority": 30, "services": [ { "service": "vdisk", "methods": "*", "action": "allow" } ] }
JSON
	"$SCMCTL" policy reload >/dev/null
	"$SCMCTL" endpoint create maker --profiles maker >/dev/null
	run "$SCMCTL" call --endpoint maker vdisk create "{\"path\":\"$D/other.vhdx.scm-pr\",\"size\":1048576,\"block_size\":0,\"sector_size\":0,\"fixed\":false,\"parent\":\"\"}"
	[ "$status" -ne 0 ]
	[[ $output == *"names ending in .scm-pr hold the provider's state"* ]]
	[ ! -e "$D/other.vhdx.scm-pr" ]
	for n in other.vhdx.job other.vhdx.job.tmp .other.vhdx.scm-pr.tmp; do
		run "$SCMCTL" call --endpoint maker vdisk create "{\"path\":\"$D/$n\",\"size\":1048576,\"block_size\":0,\"sector_size\":0,\"fixed\":false,\"parent\":\"\"}"
		[ "$status" -ne 0 ]
		[[ $output == *"hold the provider's state for a disk"* ]]
		[ ! -e "$D/$n" ]
	done
	# a state file the provider did not write is not believed: someone who
	# may write the directory cannot fence or unfence the disk with one
	a register 0 0xa1 -- reserve 0xa1 exclusive-access
	chown 4242 "$D/shared.vhdx.scm-pr"
	run b read
	[ "$status" -ne 0 ]
	[[ $output == *"not the provider's own (owned by uid 4242"* ]]
	chown 0 "$D/shared.vhdx.scm-pr"
	chmod 0666 "$D/shared.vhdx.scm-pr"
	run b read
	[ "$status" -ne 0 ]
	[[ $output == *"mode 666"* ]]
	chmod 0600 "$D/shared.vhdx.scm-pr"
	run b read # its own again: believed, A's reservation stands
	[ "$status" -eq 0 ]
	[[ $output == *'"reservation":{"type":"exclusive-access","key":161}'* ]]
	rm "$D/shared.vhdx.scm-pr"
	a register 0 0xa1
	sed -i 's/^generation .*/generation 99/' "$D/shared.vhdx.scm-pr"
	run b read
	[ "$status" -ne 0 ]
	[[ $output == *"CRC-32C mismatch"* && $output == *"shared.vhdx.scm-pr is unreadable"* ]]
	# a state file of another disk (page 83 id) is not applied either
	rm "$D/shared.vhdx.scm-pr"
	a register 0 0xa1 -- reserve 0xa1 exclusive-access
	cp "$D/shared.vhdx.scm-pr" "$SCMT/saved.pr"
	rm "$D/shared.vhdx"
	"$V" create --size 8M "$D/shared.vhdx"
	cp "$SCMT/saved.pr" "$D/shared.vhdx.scm-pr"
	run b read
	[ "$status" -ne 0 ]
	[[ $output == *"not of this disk"* ]]
}

@test "reserve: the cluster example, two containers fencing each other" {
	[ "$(id -u)" = 0 ] || skip "containers with subordinate ids need root"
	# the provider runs on the host; the containers reach it through
	# their endpoints, and see the disk directory bound read-only
	chmod 755 "$D"
	run env SCMCTL="$SCMCTL" VDISK_CLIENT="$C" SCM_IDL_PATH="$SCM_SRC/stubs/idl" CLUSTER_ENV=ASAN_OPTIONS=detect_leaks=0 \
		"$SCM_SRC/examples/cluster/cluster.sh" "$D/shared.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"reservation conflict"* ]]
	[ "$(ondisk 0)" = "aa " ]
	[ "$(ondisk 1048576)" = "bb " ]
}
