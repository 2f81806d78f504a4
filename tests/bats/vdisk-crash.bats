#!/usr/bin/env bats
# vdisk crash consistency: a writer doing random writes and flushes is
# killed with SIGKILL at random moments; after each kill, reopening (log
# replay) returns every flushed write and qemu-img check finds no errors.

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

crash_rounds() { # FILE ROUNDS
	local f=$1 rounds=$2 i n pid
	for ((i = 1; i <= rounds; i++)); do
		"$W" write "$f" "$i" > w.out 2> w.err &
		pid=$!
		# let it run 50..800 ms; the kill lands wherever the writer is
		sleep "0.$(printf '%03d' $((RANDOM % 750 + 50)))"
		kill -9 "$pid"
		wait "$pid" || true
		n=$(tail -n 1 w.out | awk '{print $2}')
		n=${n:-0}
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
	for ((i = 1; i <= 8; i++)); do
		"$W" write d.vhdx "$i" > w.out 2> w.err &
		pid=$!
		sleep "0.$(printf '%03d' $((RANDOM % 750 + 50)))"
		kill -9 "$pid"
		wait "$pid" || true
		n=$(tail -n 1 w.out | awk '{print $2}')
		"$W" verify d.vhdx "$i" "${n:-0}"
		"$V" check --repair d.vhdx
		"$W" verify d.vhdx "$i" "${n:-0}"
	done
	# the parent was never written
	"$V" check base.vhdx
}
