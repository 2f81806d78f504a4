#!/usr/bin/env bats
# vdisk crash consistency: a writer doing random writes and flushes is
# killed with SIGKILL at random moments; after each kill, reopening (log
# replay) returns every flushed write and qemu-img check finds no errors.
# Every round kills the writer only after its first flush, and checks that
# the count it verifies is above zero: a round with nothing flushed would
# verify nothing and pass whatever replay did.

setup() {
	V=$SCM_BUILD/bin/scm-vdisk
	W=$SCM_BUILD/libexec/vdisk-crashwriter
	T=$(mktemp -d)
	cd "$T"
}

teardown() {
	cd /
	rm -rf "$T"
}

# Starts the writer on FILE with SEED, waits for its first flush, lets it
# run 0..750 ms more (the kill lands wherever it is), kills it, and sets n
# to the last flushed count, which must be at least 1.
write_then_kill() { # FILE SEED
	local pid k
	# emptied here, not only by the writer's redirection, which happens
	# after the fork: the loop below must not read the last round's lines
	: >w.out
	"$W" write "$1" "$2" > w.out 2> w.err &
	pid=$!
	# the first flush is an fsync: with the other test lane writing too
	# it can take many seconds, so the bound is generous
	for ((k = SECONDS + 180; SECONDS < k; )); do
		grep -q '^flushed ' w.out && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	grep -q '^flushed ' w.out || { kill -9 "$pid"; echo "round $2: the writer never flushed:"; cat w.err; return 1; }
	sleep "0.$(printf '%03d' $((RANDOM % 750)))"
	kill -9 "$pid"
	wait "$pid" || true
	n=$(grep '^flushed ' w.out | tail -n 1 | awk '{print $2}')
	[ "${n:-0}" -ge 1 ] || { echo "round $2: no flushed write to verify"; return 1; }
}

crash_rounds() { # FILE ROUNDS
	local f=$1 rounds=$2 i n
	for ((i = 1; i <= rounds; i++)); do
		write_then_kill "$f" "$i"
		# read-only first (the pending log is replayed in memory) ...
		"$W" verify "$f" "$i" "$n"
		# ... then replayed into the file, checked by qemu, and read again
		"$V" check --repair "$f"
		qemu-img check "$f"
		"$W" verify "$f" "$i" "$n"
		echo "round $i: $n flushed writes verified"
	done
}

@test "SIGKILL during random writes: flushed data survives, qemu-img check clean (dynamic, 1 MiB blocks)" {
	"$V" create --size 256M --block-size 1M d.vhdx
	crash_rounds d.vhdx 12
}

@test "SIGKILL during random writes: differencing disk" {
	"$V" create --size 128M base.vhdx
	head -c 4M /dev/urandom | "$V" write --offset 0 base.vhdx
	"$V" create --parent base.vhdx d.vhdx
	local i n
	for ((i = 1; i <= 8; i++)); do
		write_then_kill d.vhdx "$i"
		"$W" verify d.vhdx "$i" "$n"
		"$V" check --repair d.vhdx
		"$W" verify d.vhdx "$i" "$n"
	done
	# the parent was never written
	"$V" check base.vhdx
}
