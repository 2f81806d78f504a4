#!/usr/bin/env bats
# Remote parents (issue 14 item 3): a differencing disk whose parent is a
# VHDX served by qemu-nbd, read on demand with libnbd. The bytes are
# checked against the same chain held locally and against qemu-img's
# copy of the parent with the child's writes laid over it; the
# grant's nbd_parents decides which exports a client's disks may reach
# (and a listener shows nothing else is connected to); a server killed in
# the middle of a read gives a clear error and no data, and is used again
# when it returns; a stream makes the child stand alone while a client
# writes. An open whose parent never answers holds up only itself (the
# provider connects from a thread), an open connects once (a counting
# proxy in front of qemu-nbd), and info of a child whose parent is gone
# says what the file holds.
load helpers
load vdisk

pre_start() {
	D=$SCMT/disks
	S1=$SCMT/p.sock
	S3=$SCMT/count.sock # a proxy to S1 that counts connections
	S4=$SCMT/stuck.sock # accepts, never answers
	NP="nbd+unix:///p?socket=$S1 nbd+unix:///p?socket=$S3 nbd+unix:///p?socket=$S4 nbd://127.0.0.1:1/unused"
	mkdir -p "$D" "$SCMT/cfg/profiles"
	# rp may open disks under D whose remote parent is S1's export "p"
	cat >"$SCMT/cfg/profiles/remote.json" <<JSON
{ "name": "remote", "priority": 25, "services": [
  { "service": "vdisk", "methods": ["open", "create"], "action": "allow", "args": { "path": { "path_prefix": "$D" } },
    "settings": { "nbd_parents": "$NP" } },
  { "service": "vdisk", "methods": ["read", "write", "readv", "writev", "flush", "info", "close", "extents",
                                    "merge", "job_list", "job_wait"], "action": "allow",
    "settings": { "nbd_parents": "$NP" } } ] }
JSON
	sed "s#/srv/disks#$D#g" "$SCM_SRC/examples/profiles/vdisk-writer.json" >"$SCMT/cfg/profiles/vdisk-writer.json"
}

setup() {
	command -v qemu-nbd >/dev/null || { echo "qemu-nbd (qemu-utils) is a test dependency" >&2; return 1; }
	# a lost parent is waited for 1.5 s, then the read fails; a connection
	# that is not answered is given 2 minutes (a server that never answers
	# is ended by the test, so no timing decides the order it checks)
	vdisk_setup --env SCM_VDISK_NBD_WAIT_MS=1500 --env SCM_VDISK_NBD_CONNECT_MS=120000 \
		rp:remote writer:vdisk-writer
	cat >"$SCMT/proxy.py" <<'PY'
import socket, sys, threading
# proxy.py LISTEN TARGET LOG: forwards each connection to TARGET, one line a connection in LOG
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept()
    with open(sys.argv[3], "a") as f:
        f.write("connected\n")
    u = socket.socket(socket.AF_UNIX); u.connect(sys.argv[2])
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
PY
	# the parent: 16 MiB in 1 MiB blocks, made and written by qemu
	qemu-img create -q -f vhdx -o subformat=dynamic,block_size=1M "$SCMT/parent.vhdx" 16M
	qemu-io -f vhdx -c 'write -P 0xab 0 3M' -c 'write -P 0x5c 9M 1M' -c 'write -P 0x11 15M 512' \
		"$SCMT/parent.vhdx" >/dev/null
	qemu-img convert -O raw "$SCMT/parent.vhdx" "$SCMT/parent.raw"
	URI="nbd+unix:///p?socket=$S1"
	serve
}

teardown() {
	[ -z "${QNBD:-}" ] || { kill "$QNBD" 2>/dev/null || true; wait "$QNBD" 2>/dev/null || true; }
	vdisk_teardown
}

# serve: qemu-nbd exports the parent read-only as "p" on S1, until unserve
serve() {
	rm -f "$S1"
	qemu-nbd -f vhdx -r -x p -k "$S1" --persistent --shared=8 "$SCMT/parent.vhdx" 2>"$SCMT/qemu-nbd.log" &
	QNBD=$!
	for _ in $(seq 600); do
		[ -S "$S1" ] && return 0
		sleep 0.05
	done
	cat "$SCMT/qemu-nbd.log"; return 1
}

unserve() { kill "$QNBD"; wait "$QNBD" 2>/dev/null || true; QNBD=""; }

# the same writes into a child: 4 KiB at 1 MiB, 1 MiB at 9.5 MiB, 512 bytes at 15 MiB
child_writes() {
	head -c 4096 "$SCMT/r1" | "$V" write --offset 1M "$1"
	head -c 1M "$SCMT/r2" | "$V" write --offset 9728K "$1"
	head -c 512 "$SCMT/r1" | "$V" write --offset 15M "$1"
}

local_bytes() { "$V" info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["local_bytes"])'; }

@test "remote: a child over qemu-nbd reads as the same chain held locally; info shows the parent and what is local" {
	head -c 1M /dev/urandom >"$SCMT/r1"
	head -c 1M /dev/urandom >"$SCMT/r2"
	"$V" create --parent "$URI" "$D/rc.vhdx"
	cp "$SCMT/parent.vhdx" "$SCMT/lp.vhdx"
	"$V" create --parent "$SCMT/lp.vhdx" "$SCMT/lc.vhdx"
	child_writes "$D/rc.vhdx"
	child_writes "$SCMT/lc.vhdx"
	run "$V" info "$D/rc.vhdx"
	echo "$output"
	[[ $output == *"remote parent: $URI"* ]]
	[[ $output == *"scm_nbd_parent: $URI"* ]]
	[[ $output == *"local: "*" of 16777216 bytes"* ]]
	# only what the child wrote is here (the 1 MiB write covers 9.5 to 10.5 MiB)
	[ "$(local_bytes "$D/rc.vhdx")" = $((4096 + 1048576 + 512)) ]
	"$V" convert -O raw "$D/rc.vhdx" "$SCMT/remote.raw"
	"$V" convert -O raw "$SCMT/lc.vhdx" "$SCMT/local.raw"
	cmp "$SCMT/remote.raw" "$SCMT/local.raw"
	# qemu has no VHDX differencing: its raw copy of the parent with the
	# child's writes laid over it is the expected image
	cp "$SCMT/parent.raw" "$SCMT/expected.raw"
	dd if="$SCMT/r1" of="$SCMT/expected.raw" bs=4096 count=1 seek=256 conv=notrunc status=none
	dd if="$SCMT/r2" of="$SCMT/expected.raw" bs=1024 count=1024 seek=9728 conv=notrunc status=none
	dd if="$SCMT/r1" of="$SCMT/expected.raw" bs=512 count=1 seek=30720 conv=notrunc status=none
	qemu-img compare -f raw -F raw "$SCMT/expected.raw" "$SCMT/remote.raw"
	# and both differ from the parent where the child wrote
	! cmp -s "$SCMT/remote.raw" "$SCMT/parent.raw"
	"$V" check "$D/rc.vhdx"
}

@test "remote: the grant's nbd_parents decides, before anything is connected; reads copy into the child" {
	"$V" create --parent "$URI" "$D/g.vhdx"
	# a grant without nbd_parents: refused, saying why
	run "$C" --endpoint "$(ep writer)" copy-out "$D/g.vhdx" "$SCMT/out.raw"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"remote parent $URI is not among the grant's nbd_parents (the profile sets none)"* ]]
	# a disk naming another export: made while qemu-nbd served it there,
	# then the socket is a listener that logs whoever connects
	S2=$SCMT/other.sock
	qemu-nbd -f vhdx -r -x p -k "$S2" --persistent "$SCMT/parent.vhdx" &
	local q2=$!
	for _ in $(seq 600); do [ -S "$S2" ] && break; sleep 0.05; done
	"$V" create --parent "nbd+unix:///p?socket=$S2" "$D/o.vhdx"
	kill "$q2"; wait "$q2" 2>/dev/null || true
	rm -f "$S2"
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
while True:
    c, _ = s.accept(); open(sys.argv[2], "a").write("connected\n"); c.close()' "$S2" "$SCMT/other.log" &
	BG="${BG:-} $!"
	for _ in $(seq 600); do [ -S "$S2" ] && break; sleep 0.05; done
	run "$C" --endpoint "$(ep rp)" copy-out "$D/o.vhdx" "$SCMT/out.raw"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"remote parent nbd+unix:///p?socket=$S2 is not among the grant's nbd_parents"* ]]
	[ ! -e "$SCMT/other.log" ]
	# the provider's create: the same rule
	mk() { "$SCMCTL" call --endpoint "$(ep rp)" vdisk create "{\"path\":\"$1\",\"size\":0,\"block_size\":0,\"sector_size\":0,\"fixed\":false,\"parent\":\"$2\"}"; }
	run mk "$D/o2.vhdx" "nbd+unix:///p?socket=$S2"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"is not among the grant's nbd_parents"* ]]
	[ ! -e "$D/o2.vhdx" ] && [ ! -e "$SCMT/other.log" ]
	mk "$D/g2.vhdx" "nbd+unix:///p?socket=$S1"
	"$V" info "$D/g2.vhdx" | grep -q "remote parent: $URI"
	# each open connects once: counted by a proxy in front of S1
	python3 "$SCMT/proxy.py" "$S3" "$S1" "$SCMT/count.log" &
	BG="${BG:-} $!"
	wait_until 60 test -S "$S3"
	"$V" create --parent "nbd+unix:///p?socket=$S3" "$D/n.vhdx"
	conns() { if [ -e "$SCMT/count.log" ]; then wc -l <"$SCMT/count.log"; else echo 0; fi; }
	[ "$(conns)" = 1 ]
	mk "$D/n2.vhdx" "nbd+unix:///p?socket=$S3"
	[ "$(conns)" = 2 ]
	"$C" --endpoint "$(ep rp)" copy-out "$D/n.vhdx" "$SCMT/n.raw"
	[ "$(conns)" = 3 ]
	"$C" --endpoint "$(ep rp)" copy-out-rw "$D/n2.vhdx" "$SCMT/n2.raw"
	[ "$(conns)" = 4 ]
	cmp "$SCMT/n.raw" "$SCMT/parent.raw" && cmp "$SCMT/n2.raw" "$SCMT/parent.raw"
	# the granted one: read-write, every block read is kept by the child
	[ "$(local_bytes "$D/g.vhdx")" = 0 ]
	"$C" --endpoint "$(ep rp)" copy-out-rw "$D/g.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/got.raw" "$SCMT/parent.raw"
	# the provider's info says so too
	run "$C" --endpoint "$(ep rp)" info "$D/g.vhdx"
	echo "$output"
	[[ $output == *"\"remote_parent\":\"nbd+unix:\/\/\/p?socket="* ]]
	[[ $output == *'"local_bytes":16777216'* ]]
	for _ in $(seq 200); do
		[ "$(local_bytes "$D/g.vhdx" 2>/dev/null)" = 16777216 ] && break
		sleep 0.05
	done
	[ "$(local_bytes "$D/g.vhdx")" = 16777216 ]
	# copy-on-read left the child's identity alone
	"$V" check "$D/g.vhdx"
}

# pause_read DISK OUT: a read-write client copying DISK out, stopped before
# its read at 8 MiB until a line comes on $SCMT/go (fd 5 holds it open)
pause_read() {
	rm -f "$SCMT/go" "$SCMT/c.out"
	mkfifo "$SCMT/go"
	"$C" --endpoint "$(ep rp)" copy-out-rw "$1" "$2" 8388608 <"$SCMT/go" >"$SCMT/c.out" 2>&1 &
	CPID=$!
	BG="${BG:-} $CPID"
	exec 5>"$SCMT/go"
	for _ in $(seq 600); do
		grep -q paused "$SCMT/c.out" && return 0
		sleep 0.05
	done
	cat "$SCMT/c.out"; return 1
}

@test "remote: the export killed in the middle of a read: a clear error, no data; used again when it returns" {
	"$V" create --parent "$URI" "$D/k.vhdx"
	# killed and back before the next read: the client sees nothing
	pause_read "$D/k.vhdx" "$SCMT/a.raw"
	unserve
	serve
	echo go >&5
	exec 5>&-
	wait "$CPID"
	cmp "$SCMT/a.raw" "$SCMT/parent.raw"
	# killed and not back within the wait (1.5 s here): the read fails and
	# says so; nothing of the second half was returned
	"$V" create --parent "$URI" "$D/k2.vhdx"
	pause_read "$D/k2.vhdx" "$SCMT/b.raw"
	unserve
	echo go >&5
	exec 5>&-
	local rc=0
	wait "$CPID" || rc=$?
	cat "$SCMT/c.out"
	[ "$rc" -ne 0 ]
	grep -q "remote parent nbd+unix:///p?socket=$S1 unreachable: .* attempts over .* ms failed (SCM_VDISK_NBD_WAIT_MS=1500); no data was returned" "$SCMT/c.out"
	[ "$(stat -c %s "$SCMT/b.raw")" = 8388608 ]
	cmp "$SCMT/b.raw" "$SCMT/parent.raw" 8388608 2>&1 | grep -q "EOF on $SCMT/b.raw"
	# info while the parent is gone: what the file says, and that the
	# parent is unreachable (exit 0, as for a missing parent file), once
	# the provider let the disk go (on a worker, after the client left)
	wait_until 60 "$V" info "$D/k2.vhdx"
	run "$V" info "$D/k2.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"remote parent: $URI"* ]]
	[[ $output == *"local: 8388608 of 16777216 bytes (50.0%); the rest is the parent's"* ]]
	[[ $output == *"parent: UNREACHABLE ("*"cannot connect"*"); shown is what this file says"* ]]
	"$V" info --json "$D/k2.vhdx" | python3 -c '
import json, sys
j = json.load(sys.stdin)
assert j["parent_available"] is False and "cannot connect" in j["parent_error"], j
assert j["remote_parent"] == sys.argv[1] and j["local_bytes"] == 8388608, j' "$URI"
	# the same disk once the export is back: a new open reads it whole
	serve
	"$C" --endpoint "$(ep rp)" copy-out-rw "$D/k2.vhdx" "$SCMT/c.raw"
	cmp "$SCMT/c.raw" "$SCMT/parent.raw"
	"$V" check "$D/k2.vhdx"
}

@test "remote: an open whose parent accepts and never answers holds up only itself" {
	# made while qemu-nbd served there; then S4 accepts and says nothing
	qemu-nbd -f vhdx -r -x p -k "$S4" --persistent "$SCMT/parent.vhdx" &
	local q=$!
	wait_until 60 test -S "$S4"
	"$V" create --parent "nbd+unix:///p?socket=$S4" "$D/st.vhdx"
	kill "$q"; wait "$q" 2>/dev/null || true
	rm -f "$S4"
	"$V" create --size 4M "$D/local.vhdx"
	head -c 4M /dev/urandom | "$V" write "$D/local.vhdx"
	python3 -c '
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
held = []
while True:
    c, _ = s.accept(); held.append(c); open(sys.argv[2], "a").write("connected\n")
    while not os.path.exists(sys.argv[3]): time.sleep(0.05)
    for c in held: c.close()
    held = []' "$S4" "$SCMT/stuck.log" "$SCMT/release" < <(bare true) &
	BG="${BG:-} $!"
	wait_until 60 test -S "$S4"
	"$C" --endpoint "$(ep rp)" copy-out "$D/st.vhdx" "$SCMT/st.raw" >"$SCMT/st.out" 2>&1 &
	local spid=$!
	BG="${BG:-} $spid"
	wait_until 60 grep -q connected "$SCMT/stuck.log"
	# meanwhile another client opens, reads and closes another disk, five times
	other() {
		for _ in 1 2 3 4 5; do
			"$C" --endpoint "$(ep writer)" copy-out "$D/local.vhdx" "$SCMT/l.raw" || return 1
			echo x >>"$SCMT/other.n"
		done
	}
	other >"$SCMT/other.out" 2>&1 &
	BG="${BG:-} $!"
	other_done() { [ -e "$SCMT/other.n" ] && [ "$(wc -l <"$SCMT/other.n")" = 5 ]; }
	wait_until 60 other_done
	"$V" convert -O raw "$D/local.vhdx" "$SCMT/l.want"
	cmp "$SCMT/l.raw" "$SCMT/l.want"
	# all five were answered while the stuck open still waits
	kill -0 "$spid"
	[ ! -s "$SCMT/st.out" ]
	touch "$SCMT/release"
	local rc=0
	wait "$spid" || rc=$?
	cat "$SCMT/st.out"
	[ "$rc" -ne 0 ]
	grep -q "open $D/st.vhdx: remote parent" "$SCMT/st.out"
	grep -q "nbd+unix:///p?socket=$S4: cannot connect: .*server disconnected" "$SCMT/st.out"
	[ ! -s "$SCMT/st.raw" ]
}

@test "remote: stream (merge --from-parent) while a client writes: the child stands alone, the export can go" {
	"$V" create --parent "$URI" "$D/s.vhdx"
	writer "$D/s.vhdx" 0 rp
	SCM_ENDPOINT=$(ep rp) "$V" merge --from-parent "$D/s.vhdx"
	touch "$SCMT/stop"
	wait "$WRITER"
	cat "$SCMT/writer.out"
	grep -q "^wrote [1-9]" "$SCMT/writer.out"
	unserve
	# the provider lets the disk go on a worker after its last user
	for _ in $(seq 600); do
		"$V" info --json "$D/s.vhdx" >"$SCMT/info" 2>/dev/null && break
		sleep 0.05
	done
	cat "$SCMT/info"
	! grep -q differencing "$SCMT/info"
	! grep -q scm_nbd_parent "$SCMT/info"
	"$V" convert -O raw "$D/s.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/expected" "$SCMT/got.raw"
	"$V" check "$D/s.vhdx"
	qemu-img check -f vhdx "$D/s.vhdx"
}

@test "remote: bad URIs and unreachable servers are refused by name, and no file is made" {
	bad() { # URI WORDS...
		local u=$1
		shift
		run "$V" create --parent "$u" "$D/bad.vhdx"
		echo "$output"
		[ "$status" -eq 1 ]
		[[ $output == *"$*"* ]]
		[ ! -e "$D/bad.vhdx" ]
	}
	bad "nbd://host name/x" "byte 0x20 at 10"
	bad "nbd://h/x?socket=/a" "nbd:// and nbds:// take no query"
	bad "nbd+unix:///p" "nbd+unix:// needs ?socket=PATH"
	bad "nbd+unix:///p?socket=$SCMT/../x" "not an absolute path of one spelling"
	bad "nbd+unix:///p?socket=$S1&tls=on" "only socket=PATH is taken"
	bad "nbd://u@h/x" "user information"
	bad "nbd://h:99999/x" "port 99999: not 1 to 65535"
	bad "nbds://h/x" "remote parent nbds://h:10809/x needs TLS material, and none is configured"
	bad "nbds://h/x?tls-psk-file=/etc/k" "nbd:// and nbds:// take no query"
	bad "nbd://h/x%zz" "a bad percent escape"
	bad "nbd+unix:///p?socket=$SCMT/none.sock" "$SCMT/none.sock: cannot connect: nbd_aio_connect_unix: connect: No such file or directory"
	bad "nbd+unix:///nosuch?socket=$S1" "cannot connect"
	# a size that is not the export's
	run "$V" create --size 8M --parent "$URI" "$D/bad.vhdx"
	echo "$output"
	[ "$status" -eq 2 ] || [ "$status" -eq 1 ]
	[ ! -e "$D/bad.vhdx" ]
}

@test "remote: a read whose parent went silent (accepts, never answers) fails clearly; another client keeps being served" {
	"$V" create --parent "$URI" "$D/sl.vhdx"
	"$V" create --size 4M "$D/other.vhdx"
	head -c 4M /dev/urandom | "$V" write "$D/other.vhdx"
	"$V" convert -O raw "$D/other.vhdx" "$SCMT/o.want"
	pause_read "$D/sl.vhdx" "$SCMT/s.raw"
	# the parent's host goes silent: its socket accepts and says nothing
	unserve
	rm -f "$S1"
	python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
held = []
while True:
    c, _ = s.accept(); held.append(c); open(sys.argv[2], "a").write("connected\n")' "$S1" "$SCMT/silent.log" < <(bare true) &
	BG="${BG:-} $!"
	wait_until 60 test -S "$S1"
	# another client of the provider reads a local disk over and over
	others() { while [ ! -e "$SCMT/stop" ]; do
		"$C" --endpoint "$(ep writer)" copy-out "$D/other.vhdx" "$SCMT/o.raw" &&
			cmp -s "$SCMT/o.raw" "$SCMT/o.want" && echo ok >>"$SCMT/others.n"
	done; }
	others >"$SCMT/others.out" 2>&1 3>&- &
	BG="${BG:-} $!"
	echo go >&5
	exec 5>&-
	local rc=0
	wait "$CPID" || rc=$?
	cat "$SCMT/c.out"
	[ "$rc" -ne 0 ]
	# it was the silent host that was tried, and the error says so
	grep -q connected "$SCMT/silent.log"
	grep -q "remote parent nbd+unix:///p?socket=$S1 unreachable: .* attempts over .* ms failed (SCM_VDISK_NBD_WAIT_MS=1500); no data was returned" "$SCMT/c.out"
	grep -q "no answer\|cannot connect" "$SCMT/c.out"
	[ "$(stat -c %s "$SCMT/s.raw")" = 8388608 ]
	# the other client went on: more whole, right reads after the failure
	local n0
	n0=$(cat "$SCMT/others.n" 2>/dev/null | wc -l)
	more() { [ "$(cat "$SCMT/others.n" 2>/dev/null | wc -l)" -ge $((n0 + 3)) ]; }
	wait_until 120 more
	touch "$SCMT/stop"
}

# w_ended N: N of the three readers (WP) have ended
w_ended() { local n=0 i; for i in 1 2 3; do gone_pid "${WP[$i]}" && n=$((n + 1)); done; [ "$n" -eq "$1" ]; }
gone_pid() { ! kill -0 "$1" 2>/dev/null || [[ $(ps -o stat= -p "$1" 2>/dev/null) == Z* ]]; }

@test "remote: reads waiting for lost parents hold at most half the I/O workers; another disk's client is served meanwhile" {
	# the provider again, with 2 workers and a lost parent waited for 10
	# minutes (the test ends the wait by serving the parent again)
	"$SCMCTL" service unregister vdisk
	sed -e 's#SCM_VDISK_NBD_WAIT_MS=1500#SCM_VDISK_NBD_WAIT_MS=600000 SCM_VDISK_THREADS=2#' \
		"$SCMT/vdisk.json" >"$SCMT/vdisk2.json"
	grep -q THREADS=2 "$SCMT/vdisk2.json"
	"$SCMCTL" service register "$SCMT/vdisk2.json" >/dev/null
	"$V" create --size 4M "$D/loc.vhdx"
	head -c 4M /dev/urandom >"$SCMT/loc.in"
	# three clients of three children of the export read half of their
	# disk, then wait for a word
	local i
	WP=()
	for i in 1 2 3; do
		"$V" create --parent "$URI" "$D/w$i.vhdx"
		rm -f "$SCMT/go$i"
		mkfifo "$SCMT/go$i"
		"$C" --endpoint "$(ep rp)" copy-out-rw "$D/w$i.vhdx" "$SCMT/w$i.raw" 8388608 <"$SCMT/go$i" \
			>"$SCMT/w$i.out" 2>&1 &
		WP[$i]=$!
		BG="${BG:-} $!"
	done
	exec 5>"$SCMT/go1" 6>"$SCMT/go2" 7>"$SCMT/go3"
	for i in 1 2 3; do wait_until 60 grep -q paused "$SCMT/w$i.out"; done
	# the export goes, and each reads on into blocks only it had
	unserve
	echo go >&5
	echo go >&6
	echo go >&7
	exec 5>&- 6>&- 7>&-
	# one of them waits for its parent on one worker; the two others are
	# not waited for (one worker stays the other disks'): they fail at
	# once, saying so, with nothing of the second half
	wait_until 60 w_ended 2
	local waiting="" failed=0
	for i in 1 2 3; do
		if gone_pid "${WP[$i]}"; then
			cat "$SCMT/w$i.out"
			grep -q "remote parent $URI unreachable: its connection is lost, and 1 read of other disks already waits for theirs, the most that may (1 of the provider's 2 I/O workers" "$SCMT/w$i.out"
			grep -q "no data was returned" "$SCMT/w$i.out"
			[ "$(stat -c %s "$SCMT/w$i.raw")" = 8388608 ]
			failed=$((failed + 1))
		else
			waiting=$i
		fi
	done
	[ "$failed" -eq 2 ]
	[ -n "$waiting" ]
	# a client of a local disk: its writes, flush and reads (each on a
	# worker) are answered while that read still waits
	"$C" --endpoint "$(ep writer)" copy-in "$D/loc.vhdx" "$SCMT/loc.in" &
	local lp=$!
	BG="${BG:-} $lp"
	wait_until 120 gone_pid "$lp"
	wait "$lp"
	"$C" --endpoint "$(ep writer)" copy-out "$D/loc.vhdx" "$SCMT/loc.out" &
	lp=$!
	BG="${BG:-} $lp"
	wait_until 120 gone_pid "$lp"
	wait "$lp"
	cmp "$SCMT/loc.in" "$SCMT/loc.out"
	kill -0 "${WP[$waiting]}"
	run grep -q unreachable "$SCMT/w$waiting.out"
	[ "$status" -ne 0 ]
	# its parent back, the waiting read goes on and reads the parent's bytes
	serve
	wait "${WP[$waiting]}"
	cmp "$SCMT/w$waiting.raw" "$SCMT/parent.raw"
}
