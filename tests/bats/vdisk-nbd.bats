#!/usr/bin/env bats
# NBD export (issue 14 item 2): `scm-vdisk export` serves a vdisk with the
# caller's grant: a plain one by the provider itself (the command does the
# handshake and hands the connection over), TLS through nbdkit and our
# plugin, a client of the provider.
# Real NBD clients (nbdinfo, nbdcopy, nbdsh, qemu-img, qemu-io) read and
# write it; the bytes and block states are checked in the VHDX afterwards,
# and refusals are checked by what is (not) served and (not) written.
load helpers

load vdisk-nbd

@test "nbd: nbdinfo shows the size, block sizes, multi-conn and our allocation map" {
	base_disk "$D/m.vhdx"
	export_ reader m "$D/m.vhdx" --readonly --nbd "unix:$S"
	[[ $URI == "nbd+unix:///m?socket=$S" ]]
	# whoever connects uses the caller's grant: the socket is the caller's
	[ "$(stat -c %a "$S")" = 600 ]
	# as a new user would: the default export name is this export
	run qemu-img info "nbd+unix:///?socket=$S"
	echo "$output"
	[[ $output == *"virtual size: 64 MiB (67108864 bytes)"* ]]
	run nbdinfo --json "$URI"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | python3 -c '
import json, sys
e = json.load(sys.stdin)["exports"][0]
assert e["export-size"] == 64 << 20, e
assert e["is_read_only"] is True, e
assert e["can_multi_conn"] is True, e
assert e["block_size_minimum"] == 512, e
assert e["block_size_preferred"] == 4096, e
assert e["block_size_maximum"] == 4 << 20, e
'
	our_map "$D/m.vhdx" >"$SCMT/ours"
	nbd_map "$URI" >"$SCMT/theirs"
	cat "$SCMT/ours" "$SCMT/theirs"
	diff "$SCMT/ours" "$SCMT/theirs"
	# the zeros written at 16M are data (allocated), the rest holes
	grep -q "^16777216 2097152 data$" "$SCMT/theirs" || grep -q "^16777216 .* data$" "$SCMT/theirs"
	grep -q "^4194304 12582912 hole$" "$SCMT/theirs"
}

@test "nbd: qemu-img convert of the export equals our convert (whole differencing chain)" {
	"$V" create --size 32M --block-size 1M "$D/base.vhdx"
	head -c 32M /dev/urandom | "$V" write --offset 0 "$D/base.vhdx"
	"$V" create --parent "$D/base.vhdx" "$D/child.vhdx"
	head -c 4096 /dev/urandom | "$V" write --offset 1M "$D/child.vhdx"
	head -c 3M /dev/zero | "$V" write --offset 8M "$D/child.vhdx"
	head -c 512 /dev/urandom | "$V" write --offset 20M "$D/child.vhdx"
	"$V" trim --offset 24M --length 2M "$D/child.vhdx"
	"$V" convert -O raw "$D/child.vhdx" "$SCMT/ours.raw"
	export_ reader c "$D/child.vhdx" --readonly --nbd "unix:$S"
	qemu-img convert -f raw -O raw "$URI" "$SCMT/qemu.raw"
	cmp "$SCMT/ours.raw" "$SCMT/qemu.raw"
	qemu-img compare -f raw -F raw "$SCMT/ours.raw" "$URI"
	nbdcopy "$URI" "$SCMT/nbdcopy.raw"
	cmp "$SCMT/ours.raw" "$SCMT/nbdcopy.raw"
	# block status through the chain: data where any file holds it
	nbd_map "$URI" | grep -q "^0 33554432 data$"
}

@test "nbd: writes through qemu-io and nbdsh land in the VHDX; check and qemu-img check are clean" {
	base_disk "$D/w.vhdx"
	"$V" convert -O raw "$D/w.vhdx" "$SCMT/expected.raw"
	export_ writer w "$D/w.vhdx" --nbd "unix:$S"
	qemu-io -f raw -c 'write -P 0xab 1M 64k' -c 'write -P 0xcd 5000 3000' -c 'write -P 0x5a 63M 1M' "$URI"
	nbdsh -u "$URI" -c 'h.pwrite(b"\x77" * 8192, 30 * 1024 * 1024, nbd.CMD_FLAG_FUA)' -c 'h.flush()'
	python3 - "$SCMT/expected.raw" <<'PY'
import sys
f = open(sys.argv[1], "r+b")
for off, n, b in ((1 << 20, 64 << 10, 0xab), (5000, 3000, 0xcd), (63 << 20, 1 << 20, 0x5a), (30 << 20, 8192, 0x77)):
    f.seek(off); f.write(bytes([b]) * n)
PY
	# the export reads it back as the mirror says, then the file does
	nbdcopy "$URI" "$SCMT/via-nbd.raw"
	cmp "$SCMT/expected.raw" "$SCMT/via-nbd.raw"
	stop_ w
	convert_free "$D/w.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/expected.raw" "$SCMT/got.raw"
	"$V" check "$D/w.vhdx"
	qemu-img check -f vhdx "$D/w.vhdx"
}

@test "nbd: nbdcopy into the export, then out of it" {
	"$V" create --size 16M --block-size 1M "$D/cp.vhdx"
	head -c 16M /dev/urandom >"$SCMT/in.raw"
	export_ writer cp "$D/cp.vhdx" --nbd "unix:$S"
	nbdcopy "$SCMT/in.raw" "$URI"
	nbdcopy "$URI" "$SCMT/out.raw"
	cmp "$SCMT/in.raw" "$SCMT/out.raw"
	stop_ cp
	convert_free "$D/cp.vhdx" "$SCMT/got.raw"
	cmp "$SCMT/in.raw" "$SCMT/got.raw"
}

@test "nbd: --readonly refuses writes and the file is unchanged" {
	base_disk "$D/ro.vhdx"
	sum=$(sha256sum <"$D/ro.vhdx")
	export_ writer ro "$D/ro.vhdx" --readonly --nbd "unix:$S"
	[ "$(nbdinfo --is read-only "$URI"; echo $?)" = 0 ]
	run qemu-io -f raw -c 'write -P 0xee 0 64k' "$URI"
	echo "$output"
	[[ $output == *"read-only"* || $output == *"Operation not permitted"* || $output == *"Permission denied"* ]]
	run nbdsh -u "$URI" -c 'h.pwrite(b"\xee" * 4096, 0)'
	[ "$status" -ne 0 ]
	run nbdsh -u "$URI" -c 'h.trim(1 << 20, 0)'
	[ "$status" -ne 0 ]
	stop_ ro
	[ "$(sha256sum <"$D/ro.vhdx")" = "$sum" ]
}

@test "nbd: trim and write-zeroes show as holes in block status and as UNMAPPED and ZERO blocks" {
	"$V" create --size 16M --block-size 1M "$D/t.vhdx"
	head -c 16M /dev/urandom | "$V" write --offset 0 "$D/t.vhdx"
	export_ writer t "$D/t.vhdx" --nbd "unix:$S"
	nbd_map "$URI" | grep -q "^0 16777216 data$"
	# trim 2 blocks, zero 3 with holes allowed, zero 1 without (stays data)
	nbdsh -u "$URI" -c 'h.trim(2 << 20, 2 << 20)' \
		-c 'h.zero(3 << 20, 8 << 20)' \
		-c 'h.zero(1 << 20, 12 << 20, nbd.CMD_FLAG_NO_HOLE)' -c 'h.flush()'
	nbd_map "$URI" >"$SCMT/map"
	cat "$SCMT/map"
	grep -q "^2097152 2097152 hole$" "$SCMT/map"
	grep -q "^8388608 3145728 hole$" "$SCMT/map"
	grep -q "^11534336 5242880 data$" "$SCMT/map" # 11M to the end: data, the NO_HOLE zeros at 12M too
	# the zeros read as zeros
	nbdsh -u "$URI" -c 'assert h.pread(3 << 20, 8 << 20) == bytes(3 << 20)' \
		-c 'assert h.pread(1 << 20, 12 << 20) == bytes(1 << 20)' \
		-c 'assert h.pread(2 << 20, 2 << 20) == bytes(2 << 20)'
	stop_ t
	run "$V" info --json "$D/t.vhdx"
	echo "$output"
	echo "$output" | python3 -c '
import json, sys
b = json.load(sys.stdin)["blocks"]
assert b["unmapped"] == 2 and b["zero"] == 3, b'
	"$V" check "$D/t.vhdx"
}

@test "nbd: TCP needs TLS and a loopback address; a client without TLS is refused" {
	"$V" create --size 8M "$D/n.vhdx"
	run "$V" export --endpoint "$(ep writer)" --detach "$D/n.vhdx" --nbd tcp:127.0.0.1:0
	echo "$output"
	[ "$status" -eq 2 ]
	[[ $output == *"NBD over TCP needs TLS"* ]]
	psktool -u alice -p "$SCMT/keys.psk" >/dev/null
	run "$V" export --endpoint "$(ep writer)" --detach "$D/n.vhdx" --nbd tcp:0.0.0.0:0 --tls-psk "$SCMT/keys.psk"
	echo "$output"
	[ "$status" -eq 2 ]
	[[ $output == *"not a loopback address"* ]]
	[ "$("$V" export --list)" = "" ]
	export_ writer n "$D/n.vhdx" --nbd tcp:127.0.0.1:0 --tls-psk "$SCMT/keys.psk"
	[[ $URI == nbds://127.0.0.1:*/n ]]
	plain=${URI/nbds:/nbd:}
	run nbdinfo --size "$plain"
	echo "$output"
	[ "$status" -ne 0 ]
	# and the same client with the key is served
	psk=${URI/nbds:\/\//nbds://alice@}
	[ "$(nbdinfo --size "$psk?tls-psk-file=$SCMT/keys.psk")" = 8388608 ]
}

@test "nbd: TCP with PSK and with x509 certificates (nbdinfo, nbdcopy, qemu-img's tls-creds)" {
	base_disk "$D/x.vhdx"
	"$V" convert -O raw "$D/x.vhdx" "$SCMT/ours.raw"
	psktool -u alice -p "$SCMT/keys.psk" >/dev/null
	export_ reader p "$D/x.vhdx" --readonly --nbd tcp:127.0.0.1:0 --tls-psk "$SCMT/keys.psk"
	psk="${URI/nbds:\/\//nbds://alice@}?tls-psk-file=$SCMT/keys.psk"
	nbdcopy "$psk" "$SCMT/psk.raw"
	cmp "$SCMT/ours.raw" "$SCMT/psk.raw"
	# qemu's PSK credentials read DIR/keys.psk
	port=${URI##*:}; port=${port%%/*}
	qemu-img convert --object "tls-creds-psk,id=tls0,endpoint=client,dir=$SCMT,username=alice" \
		--image-opts "driver=nbd,host=127.0.0.1,port=$port,export=p,tls-creds=tls0" -O raw "$SCMT/qpsk.raw"
	cmp "$SCMT/ours.raw" "$SCMT/qpsk.raw"
	stop_ p
	# x509: a CA, a server certificate for 127.0.0.1, made here
	X=$SCMT/x509
	mkdir -p "$X/server" "$X/client"
	certtool --generate-privkey --outfile "$X/ca-key.pem" 2>/dev/null
	printf 'cn = scm test CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$X/ca.info"
	certtool --generate-self-signed --load-privkey "$X/ca-key.pem" --template "$X/ca.info" \
		--outfile "$X/server/ca-cert.pem" 2>/dev/null
	cp "$X/server/ca-cert.pem" "$X/client/ca-cert.pem"
	certtool --generate-privkey --outfile "$X/server/server-key.pem" 2>/dev/null
	printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' >"$X/server.info"
	certtool --generate-certificate --load-ca-certificate "$X/server/ca-cert.pem" --load-ca-privkey "$X/ca-key.pem" \
		--load-privkey "$X/server/server-key.pem" --template "$X/server.info" \
		--outfile "$X/server/server-cert.pem" 2>/dev/null
	export_ reader c "$D/x.vhdx" --readonly --nbd tcp:127.0.0.1:0 --tls-certificates "$X/server"
	[ "$(nbdinfo --size "$URI?tls-certificates=$X/client")" = $((64 << 20)) ]
	nbdcopy "$URI?tls-certificates=$X/client" "$SCMT/x509.raw"
	cmp "$SCMT/ours.raw" "$SCMT/x509.raw"
	port=${URI##*:}; port=${port%%/*}
	qemu-img convert --object "tls-creds-x509,id=tls0,endpoint=client,dir=$X/client" \
		--image-opts "driver=nbd,host=127.0.0.1,port=$port,export=c,tls-creds=tls0" -O raw "$SCMT/qemu.raw"
	cmp "$SCMT/ours.raw" "$SCMT/qemu.raw"
	# a client that does not trust the CA is refused
	mkdir -p "$X/other"
	certtool --generate-privkey --outfile "$X/o-key.pem" 2>/dev/null
	certtool --generate-self-signed --load-privkey "$X/o-key.pem" --template "$X/ca.info" \
		--outfile "$X/other/ca-cert.pem" 2>/dev/null
	run nbdinfo --size "$URI?tls-certificates=$X/other"
	[ "$status" -ne 0 ]
}

@test "nbd: a disk outside the caller's grant is refused and nothing is served" {
	"$V" create --size 8M "$D/b/out.vhdx"
	run "$V" export --endpoint "$(ep writer_a)" --detach "$D/b/out.vhdx" --nbd "unix:$S"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"nothing is served"* ]]
	[[ $output == *"path"* ]]
	[ ! -e "$S" ]
	[ "$("$V" export --list)" = "" ]
	# a reader's grant opens read-only only: a read-write export is refused
	run "$V" export --endpoint "$(ep reader)" --detach "$D/b/out.vhdx" --nbd "unix:$S"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"readonly"* ]]
	[ ! -e "$S" ]
	# inside its grant the same writer is served
	"$V" create --size 8M "$D/a/in.vhdx"
	export_ writer_a in "$D/a/in.vhdx" --nbd "unix:$S"
	[ "$(nbdinfo --size "$URI")" = 8388608 ]
}

@test "nbd: the lock rules: a disk open read-write elsewhere conflicts, readers share" {
	"$V" create --size 8M "$D/l.vhdx"
	# another client of the provider holds it read-write: a read-write
	# export is Busy, a read-only one shares the provider's handle
	hold writer "$D/l.vhdx" rw
	run "$V" export --endpoint "$(ep writer)" --detach --name l "$D/l.vhdx" --nbd "unix:$S"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"open for writing by another client"* ]]
	[ ! -e "$S" ]
	export_ reader lr "$D/l.vhdx" --readonly --nbd "unix:$S"
	[ "$(nbdinfo --size "$URI")" = 8388608 ]
	stop_ lr
	for p in $HOLDS; do kill "$p"; wait "$p" 2>/dev/null || true; done
	HOLDS=""
	# a read-write export holds qemu's write lock: qemu-img and scm-vdisk
	# cannot write the file meanwhile (once the provider has closed the
	# holder's handle: it syncs the disk first, which a loaded machine
	# makes slow)
	unlocked() { "$V" info "$D/l.vhdx" >/dev/null 2>&1; }
	wait_until 120 unlocked
	export_ writer lw "$D/l.vhdx" --nbd "unix:$S"
	run qemu-io -f vhdx -c 'write 0 4k' "$D/l.vhdx"
	echo "$output"
	[[ $output == *"lock"* ]]
	run "$V" trim --offset 0 --length 1M "$D/l.vhdx"
	[ "$status" -ne 0 ]
	stop_ lw
	# (a write open, not info: info reads beside a writer, so it says
	# nothing of whether the provider has let the write lock go yet)
	qemu_can_write() { qemu-io -f vhdx -c 'read 0 512' "$D/l.vhdx" >/dev/null 2>&1; }
	wait_until 120 qemu_can_write
	# and qemu holding it for writing makes the export Busy
	# (qemu-io tried again until it has the lock: in a full run the
	# provider was seen to hold it a moment longer than the write open
	# above showed)
	( until qemu-io -f vhdx -c 'write 0 4k' -c 'sleep 600000' "$D/l.vhdx" >/dev/null 2>&1; do sleep 0.2; done ) 3>&- &
	HOLDS="$!"
	qemu_holds() { ! unlocked; }
	wait_until 120 qemu_holds
	kill -0 "$HOLDS"
	run "$V" export --endpoint "$(ep writer)" --detach --name q "$D/l.vhdx" --nbd "unix:$S"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"in use by another process"* ]]
	[ ! -e "$S" ]
	kill "$HOLDS"
	HOLDS=""
	pkill -f -- "-c sleep 600000 $D/l.vhdx" || true
}

@test "nbd: export --list and --stop; an export name is checked; a second export of one name is refused" {
	"$V" create --size 8M "$D/s.vhdx"
	export_ reader s "$D/s.vhdx" --readonly --nbd "unix:$S"
	run "$V" export --list
	echo "$output"
	[[ $output == "s "*" ro  nbd+unix:///s?socket=$S $D/s.vhdx" ]]
	pid=$(echo "$output" | awk '{print $2}')
	[ "$(cat /proc/"$pid"/comm)" = scm-vdisk ]
	"$V" export --list --json | python3 -c 'import json,sys; l=json.load(sys.stdin); assert l[0]["name"]=="s" and l[0]["readonly"], l'
	run "$V" export --endpoint "$(ep reader)" --detach --readonly --name s "$D/s.vhdx" --nbd "unix:$SCMT/other.sock"
	[ "$status" -eq 1 ]
	[[ $output == *"runs already"* ]]
	run "$V" export --endpoint "$(ep reader)" --detach --readonly --name "../x" "$D/s.vhdx" --nbd "unix:$SCMT/o2.sock"
	[ "$status" -eq 2 ]
	[ ! -e "$SCMT/o2.sock" ]
	# a client asking for another export name is refused
	run nbdinfo --size "nbd+unix:///nosuch?socket=$S"
	[ "$status" -ne 0 ]
	stop_ s
	gone "$pid"
	[ ! -e "$S" ]
	[ "$("$V" export --list)" = "" ]
	run "$V" export --stop s
	[ "$status" -eq 1 ]
	# a relative socket path is made absolute: the URI and --stop from
	# elsewhere mean the same file
	(cd "$SCMT" && "$V" export --endpoint "$(ep reader)" --detach --readonly --name rel "$D/s.vhdx" --nbd unix:rel.sock) >"$SCMT/rel.out"
	EXPORTS="$EXPORTS rel"
	cat "$SCMT/rel.out"
	grep -q "^rel nbd+unix:///rel?socket=$SCMT/rel.sock$" "$SCMT/rel.out"
	[ "$(nbdinfo --size "nbd+unix:///rel?socket=$SCMT/rel.sock")" = 8388608 ]
	(cd / && "$V" export --stop rel)
	[ ! -e "$SCMT/rel.sock" ]
}

@test "nbd: a foreground export serves until interrupted, then the disk is closed clean" {
	"$V" create --size 8M "$D/f.vhdx"
	"$V" export --endpoint "$(ep writer)" --name f "$D/f.vhdx" --nbd "unix:$S" >"$SCMT/fg.out" 2>&1 &
	FG=$!
	HOLDS="$FG"
	wait_until 60 grep -q "^f " "$SCMT/fg.out"
	cat "$SCMT/fg.out"
	URI=$(awk '$1 == "f" { print $2 }' "$SCMT/fg.out")
	nbdsh -u "$URI" -c 'h.pwrite(b"\x42" * 65536, 1 << 20)'
	kill -INT "$FG"
	wait "$FG"
	HOLDS=""
	[ ! -e "$S" ]
	wait_until 60 "$V" check "$D/f.vhdx" >/dev/null 2>&1
	"$V" check "$D/f.vhdx"
	"$V" read --offset 1M --length 64K "$D/f.vhdx" | cmp - <(head -c 65536 /dev/zero | tr '\0' '\102')
}

# ring_mapped NAME: the export's nbdkit maps a read ring of the provider
# (--nbdkit: a plain export served by the provider has no ring)
ring_mapped() {
	local pid
	pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$SCM_EXPORT_DIR/$1.json")
	grep -q "vdisk-ring" "/proc/$pid/maps"
}

@test "nbd: through nbdkit, reads go through the read ring; an attacker's slots are refused and the others are served meanwhile" {
	"$V" create --size 32M --block-size 1M "$D/r.vhdx"
	head -c 32M /dev/urandom >"$SCMT/r.raw"
	"$V" write "$D/r.vhdx" <"$SCMT/r.raw"
	export_ reader rg "$D/r.vhdx" --readonly --nbdkit --nbd "unix:$S"
	ring_mapped rg
	nbdcopy "$URI" "$SCMT/out1.raw"
	cmp "$SCMT/r.raw" "$SCMT/out1.raw"
	# an export reading the whole disk over and over while a second
	# client of the same provider writes garbage into its own ring
	reads() { while [ ! -e "$SCMT/stop" ]; do
		nbdcopy "$URI" "$SCMT/loop.raw" && cmp -s "$SCMT/r.raw" "$SCMT/loop.raw" && echo ok >>"$SCMT/reads.n"
	done; }
	reads 3>&- &
	BG="${BG:-} $!"
	run "$C" --endpoint "$(ep reader)" badring "$D/r.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"resize: refused"* ]]
	[[ $output == *"past-end: refused"*"past the disk's 33554432 bytes"* ]]
	[[ $output == *"offset-wraps: refused"* ]]
	[[ $output == *"length-over-area: refused"*"1 to 262144 bytes"* ]]
	[[ $output == *"data-area-out: refused"*"data area 64 of 64"* ]]
	[[ $output == *"other-handle: refused"*"serves handle"* ]]
	[[ $output == *"write-op: refused"*"only reads"* ]]
	[[ $output == *"scribbled: the ring answered every submitted slot"* ]]
	[[ $output == *"good read: same as the call's"* ]]
	[[ $output != *ACCEPTED* ]]
	# the export's reads went on right: progress counted after the attack
	local n0
	n0=$(cat "$SCMT/reads.n" 2>/dev/null | wc -l)
	more_reads() { [ "$(cat "$SCMT/reads.n" 2>/dev/null | wc -l)" -ge $((n0 + 2)) ]; }
	wait_until 120 more_reads
	# a writer's open of the disk swaps its engine handle for a writable
	# one (readers only so far): never under a ring's read
	run "$C" --endpoint "$(ep writer)" opens "$D/r.vhdx" 20
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^33554432$' <<<"$output")" -eq 20 ]
	n0=$(cat "$SCMT/reads.n" 2>/dev/null | wc -l)
	wait_until 120 more_reads
	touch "$SCMT/stop"
	# and through plain calls too
	"$C" --endpoint "$(ep reader)" copy-out "$D/r.vhdx" "$SCMT/out2.raw"
	cmp "$SCMT/r.raw" "$SCMT/out2.raw"
	# --no-ring: the same bytes through calls, and no ring
	stop_ rg
	export_ reader rg2 "$D/r.vhdx" --readonly --no-ring --nbd "unix:$S"
	! ring_mapped rg2
	nbdcopy "$URI" "$SCMT/out3.raw"
	cmp "$SCMT/r.raw" "$SCMT/out3.raw"
}
