#!/usr/bin/env bats
# Offload copies with tokens (issue 14 item 1): a client asks the provider
# of the source disk for a token (offload_read) and hands it to the
# provider of the destination (offload_write); the two providers move the
# data between them, scmd vouching for the token. Two services ("va",
# "vb": two registrations, two provider processes) stand for two
# providers that know nothing of each other. Every refusal is checked on
# the destination's bytes, not only on the exit status.
load helpers

V=$SCM_BUILD/bin/scm-vdisk
C=$SCM_BUILD/libexec/vdisk-client

profile() { # NAME SERVICES-JSON
	printf '{"name":"%s","priority":10,"services":%s}\n' "$1" "$2" >"$SCMT/cfg/profiles/$1.json"
}

pre_start() {
	mkdir -p "$SCMT/cfg/profiles"
	# the copier: both services, every client method
	profile copier '[{"service":"v*","methods":"*","action":"allow"}]'
	# reads va; on vb everything but offload_write
	profile nowrite '[{"service":"va","methods":"*","action":"allow"},
		{"service":"vb","methods":["open","read","write","close","flush","info"],"action":"allow"}]'
	profile source '[{"service":"va","methods":"*","action":"allow"}]'
	# the services are known before the profiles that name them load
	for s in va vb; do
		cat >"$SCMT/cfg/services/$s.json" <<JSON
{ "name": "$s", "interface": "vdisk", "exec": ["$SCM_BUILD/libexec/scm-vdisk-provider"] }
JSON
	done
	# a destination that stages slowly (a pause per MiB, a test hook), so
	# that a copy can be caught in the middle
	cat >"$SCMT/cfg/services/vslow.json" <<JSON
{ "name": "vslow", "interface": "vdisk", "exec": ["env", "SCM_VDISK_OFFLOAD_STEP_US=500000", "$SCM_BUILD/libexec/scm-vdisk-provider"] }
JSON
	# one provider with a single I/O thread: a copy within it must not
	# wait on itself
	cat >"$SCMT/cfg/services/vone.json" <<JSON
{ "name": "vone", "interface": "vdisk", "exec": ["env", "SCM_VDISK_THREADS=1", "$SCM_BUILD/libexec/scm-vdisk-provider"] }
JSON
}

setup() {
	start_scmd
	"$SCMCTL" endpoint create app --profiles copier >/dev/null
	"$SCMCTL" endpoint create ro --profiles nowrite >/dev/null
	"$SCMCTL" endpoint create src --profiles source >/dev/null
	D=$SCMT/disks
	mkdir -p "$D"
	# the source: 16 MiB of data at 1 MiB, the rest never written
	"$V" create --size 64M --block-size 1M "$D/src.vhdx"
	head -c 16M /dev/urandom >"$SCMT/data.raw"
	"$V" write --offset 1M "$D/src.vhdx" <"$SCMT/data.raw"
	"$V" create --size 64M --block-size 1M "$D/dst.vhdx"
	export SCM_ENDPOINT
	SCM_ENDPOINT=$(ep app)
	BG=""
}

teardown() {
	for p in $BG; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	stop_scmd_sanitized "$SCMT"/run/logs/*.log*
}

raw() { "$V" convert -O raw "$1" "$2"; }

# hold_token SRC[:OFF:LEN] [opts]: offload-read in the background, holding
# its source handle (and so the token) until $SCMT/hold is closed; the
# token in $TOKEN
hold_token() {
	local spec=$1; shift
	rm -f "$SCMT/hold" "$SCMT/token"
	mkfifo "$SCMT/hold"
	"$V" offload-read --service va "$@" "$spec" <"$SCMT/hold" >"$SCMT/token" 2>"$SCMT/token.err" &
	HOLDER=$!
	BG="$BG $HOLDER"
	exec 7>"$SCMT/hold"
	token_or_gone() { [ -s "$SCMT/token" ] || ! kill -0 "$HOLDER" 2>/dev/null; }
	wait_until 60 token_or_gone
	cat "$SCMT/token.err"
	TOKEN=$(cut -d' ' -f1 "$SCMT/token")
	[ ${#TOKEN} -eq 128 ]
}
release_token() { exec 7>&-; wait "$HOLDER" || true; }

@test "a copy between two providers moves the bytes and not through the client" {
	raw "$D/src.vhdx" "$SCMT/src.raw"
	strace -f -qq -e trace=sendmsg,recvmsg,read,write,sendto,recvfrom,readv,writev,pread64,pwrite64 \
		-o "$SCMT/strace" "$V" offload-copy --service va --dest-service vb --json \
		"$D/src.vhdx" "$D/dst.vhdx" >"$SCMT/out"
	cat "$SCMT/out"
	grep -q '"length":67108864,"data":16777216,"zero":50331648,"mode":"file"' "$SCMT/out"
	raw "$D/dst.vhdx" "$SCMT/dst.raw"
	cmp "$SCMT/src.raw" "$SCMT/dst.raw"
	"$V" check "$D/dst.vhdx"
	qemu-img check -q "$D/dst.vhdx"
	# every byte the client sent or received, sockets and files: its
	# frames and its own program files, far below the 16 MiB moved
	local bytes
	bytes=$(grep -oE '= [0-9]+$' "$SCMT/strace" | awk '{s += $2} END {print s + 0}')
	echo "client I/O: $bytes bytes"
	[ "$bytes" -lt 262144 ]
	# the client never mapped a data buffer (it closes what open gives it)
	! grep -q 'mmap.*MAP_SHARED' "$SCMT/strace"
	# the two providers are two processes, and the destination read the
	# source's file: the redemption went through scmd
	grep -q "offload token redeemed: 'vb' (channel [0-9]*) reads from 'va'" "$SCMT/scmd.log"
}

@test "a range lands at an offset; zero ranges stay unallocated at the destination" {
	# the destination holds data where the source's range is zero
	head -c 4M /dev/urandom >"$SCMT/old.raw"
	"$V" write --offset 50M "$D/dst.vhdx" <"$SCMT/old.raw"
	# source [0, 32M) (1 MiB zero, 16 MiB data, 15 MiB zero) to dst at 28M
	"$V" offload-copy --service va --dest-service vb "$D/src.vhdx:0:32M" "$D/dst.vhdx:28M"
	raw "$D/src.vhdx" "$SCMT/src.raw"
	raw "$D/dst.vhdx" "$SCMT/dst.raw"
	cmp <(head -c 32M "$SCMT/src.raw") <(tail -c +$((28 * 1048576 + 1)) "$SCMT/dst.raw" | head -c 32M)
	# outside the range: untouched (zeros before, nothing after 60M)
	cmp <(head -c 28M "$SCMT/dst.raw") <(head -c 28M /dev/zero)
	# the old data at 50M-54M (a zero range of the source) is gone and its
	# blocks with it: only the 16 MiB copied is allocated
	"$V" map --json "$D/dst.vhdx" >"$SCMT/map.json"
	python3 - "$SCMT/map.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
ranges = m if isinstance(m, list) else m.get("ranges", m)
alloc = []
for r in ranges:
    if r["state"] != "allocated":
        continue
    if alloc and alloc[-1][0] + alloc[-1][1] == r["start"]:
        alloc[-1] = (alloc[-1][0], alloc[-1][1] + r["length"])
    else:
        alloc.append((r["start"], r["length"]))
assert alloc == [(29 << 20, 16 << 20)], alloc
PY
}

@test "a range whose ends are not on the destination's block boundaries" {
	# 32 MiB blocks at the destination: [5.5M, 5.5M + 40M) has a partial
	# block at each end and one whole block in the middle
	"$V" create --size 64M --block-size 32M "$D/big.vhdx"
	head -c 64M /dev/urandom >"$SCMT/old.raw"
	"$V" write --offset 0 "$D/big.vhdx" <"$SCMT/old.raw"
	"$V" offload-copy --service va --dest-service vb "$D/src.vhdx:0:40M" "$D/big.vhdx:5632K"
	raw "$D/src.vhdx" "$SCMT/src.raw"
	raw "$D/big.vhdx" "$SCMT/big.raw"
	cmp <(head -c 40M "$SCMT/src.raw") <(tail -c +$((5632 * 1024 + 1)) "$SCMT/big.raw" | head -c 40M)
	cmp <(head -c 5632K "$SCMT/old.raw") <(head -c 5632K "$SCMT/big.raw")
	cmp <(tail -c +$((5632 * 1024 + 40 * 1048576 + 1)) "$SCMT/old.raw") \
		<(tail -c +$((5632 * 1024 + 40 * 1048576 + 1)) "$SCMT/big.raw")
	"$V" check "$D/big.vhdx"
	qemu-img check -q "$D/big.vhdx"
}

@test "a forged, a malformed and a replayed token are refused; the destination is unchanged" {
	raw "$D/dst.vhdx" "$SCMT/before.raw"
	forged=$(head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n')
	run "$V" offload-write --service vb "$forged" "$D/dst.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"token was refused"*"scmd knows no such token"* ]]
	run "$V" offload-write --service vb "not-a-token" "$D/dst.vhdx"
	[ "$status" -eq 1 ]
	[[ "$output" == *"128 lower-case hex digits"* ]]
	# used once, then replayed
	hold_token "$D/src.vhdx:1M:4M"
	"$V" offload-write --service vb "$TOKEN" "$D/dst.vhdx"
	run "$V" offload-write --service vb "$TOKEN" "$D/dst.vhdx:8M"
	release_token
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"scmd knows no such token: never issued, already used"* ]]
	raw "$D/dst.vhdx" "$SCMT/after.raw"
	raw "$D/src.vhdx" "$SCMT/src.raw"
	# the first write landed at 0, nothing at 8M
	cmp <(head -c 4M "$SCMT/after.raw") <(tail -c +$((1048576 + 1)) "$SCMT/src.raw" | head -c 4M)
	cmp <(tail -c +$((4 * 1048576 + 1)) "$SCMT/after.raw") <(tail -c +$((4 * 1048576 + 1)) "$SCMT/before.raw")
}

@test "an expired token is refused" {
	raw "$D/dst.vhdx" "$SCMT/before.raw"
	hold_token "$D/src.vhdx" --ttl-ms 100
	[ "$(cut -d' ' -f3 "$SCMT/token")" = 100 ]
	sleep 0.3
	run "$V" offload-write --service vb "$TOKEN" "$D/dst.vhdx"
	release_token
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"the token expired"* ]]
	raw "$D/dst.vhdx" "$SCMT/after.raw"
	cmp "$SCMT/before.raw" "$SCMT/after.raw"
}

@test "a write to the source range after offload_read invalidates the token; the destination is unchanged" {
	raw "$D/dst.vhdx" "$SCMT/before.raw"
	hold_token "$D/src.vhdx:0:8M"
	# another client writes 4 KiB at 0 through the source's provider
	head -c 4096 /dev/urandom >"$SCMT/new.raw"
	"$C" --service va copy-in "$D/src.vhdx" "$SCMT/new.raw"
	run "$V" offload-write --service vb "$TOKEN" "$D/dst.vhdx"
	release_token
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"token invalidated: its source range was written after offload_read"* ]]
	[[ "$output" == *"the destination is unchanged"* ]]
	raw "$D/dst.vhdx" "$SCMT/after.raw"
	cmp "$SCMT/before.raw" "$SCMT/after.raw"
	# the space the copy had reserved was given back, and the disk is sound
	"$V" check "$D/dst.vhdx"
	[ "$(du -k "$D/dst.vhdx" | cut -f1)" -lt 8192 ]
	# a write outside the range leaves a token good
	hold_token "$D/src.vhdx:8M:8M"
	"$C" --service va copy-in "$D/src.vhdx" "$SCMT/new.raw"
	"$V" offload-write --service vb "$TOKEN" "$D/dst.vhdx"
	release_token
}

@test "a destination whose grant does not allow offload_write is refused; the bytes are unchanged" {
	raw "$D/dst.vhdx" "$SCMT/before.raw"
	run "$V" offload-copy --endpoint "$(ep ro)" --service va --dest-service vb "$D/src.vhdx" "$D/dst.vhdx"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"method vdisk.offload_write is not in this channel's grant"* ]]
	raw "$D/dst.vhdx" "$SCMT/after.raw"
	cmp "$SCMT/before.raw" "$SCMT/after.raw"
}

@test "a token whose source grant a policy reload revoked is refused" {
	raw "$D/dst.vhdx" "$SCMT/before.raw"
	SCM_ENDPOINT=$(ep src) hold_token "$D/src.vhdx"
	# the source endpoint loses the source service
	profile source '[{"service":"vb","methods":"*","action":"allow"}]'
	"$SCMCTL" policy reload
	run "$V" offload-write --service vb "$TOKEN" "$D/dst.vhdx"
	release_token
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"scmd knows no such token"*"revoked"* ]]
	raw "$D/dst.vhdx" "$SCMT/after.raw"
	cmp "$SCMT/before.raw" "$SCMT/after.raw"
}

@test "only a token channel scmd brokered may call the internal methods" {
	hold_token "$D/src.vhdx"
	run "$SCMCTL" call --endpoint app va offload_map "{\"token\":\"$TOKEN\",\"offset\":0}"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"only a token channel scmd brokered for this token may call it"* ]]
	run "$SCMCTL" call --endpoint app va offload_check "{\"token\":\"$TOKEN\"}"
	[ "$status" -ne 0 ]
	# the token is still good after those attempts
	"$V" offload-write --service vb "$TOKEN" "$D/dst.vhdx"
	release_token
}

@test "a differencing source goes over the token channel; a copy within one single-threaded provider" {
	"$V" create --parent "$D/src.vhdx" "$D/child.vhdx"
	head -c 1M /dev/urandom >"$SCMT/c.raw"
	"$V" write --offset 4M "$D/child.vhdx" <"$SCMT/c.raw"
	"$V" offload-copy --service va --dest-service vb --json "$D/child.vhdx" "$D/dst.vhdx" >"$SCMT/out"
	cat "$SCMT/out"
	grep -q '"mode":"channel"' "$SCMT/out"
	raw "$D/child.vhdx" "$SCMT/c.full"
	raw "$D/dst.vhdx" "$SCMT/d.full"
	cmp "$SCMT/c.full" "$SCMT/d.full"
	"$V" create --size 64M --block-size 1M "$D/dst2.vhdx"
	"$V" offload-copy --service vone "$D/src.vhdx" "$D/dst2.vhdx"
	raw "$D/src.vhdx" "$SCMT/s.full"
	raw "$D/dst2.vhdx" "$SCMT/d2.full"
	cmp "$SCMT/s.full" "$SCMT/d2.full"
}

@test "a copy is a job while it runs: listed with its progress, cancelled while it stages" {
	raw "$D/dst.vhdx" "$SCMT/before.raw"
	"$V" offload-copy --service va --dest-service vslow "$D/src.vhdx" "$D/dst.vhdx" >"$SCMT/cp.out" 2>&1 &
	CP=$!
	BG="$BG $CP"
	local id=""
	for _ in $(seq 400); do
		"$V" jobs --json --service vslow >"$SCMT/jobs.json" 2>/dev/null || true
		id=$(python3 -c '
import json, sys
for j in json.load(open(sys.argv[1])):
    if j["kind"] == "offload" and j["done"] > 0 and j["total"] == 67108864 and j["target"] == "va":
        print(j["id"])' "$SCMT/jobs.json" 2>/dev/null || true)
		[ -n "$id" ] && break
		sleep 0.05
	done
	cat "$SCMT/jobs.json"
	[ -n "$id" ]
	# another client's list does not show it
	run "$V" jobs --json --endpoint "$(ep ro)" --service vslow
	[[ "$output" != *offload* ]]
	"$V" job --service vslow "$id" cancel
	local st=0
	wait "$CP" || st=$?
	cat "$SCMT/cp.out"
	[ "$st" -eq 1 ]
	grep -q "cancelled (job_cancel)" "$SCMT/cp.out"
	grep -q "the destination is unchanged" "$SCMT/cp.out"
	raw "$D/dst.vhdx" "$SCMT/after.raw"
	cmp "$SCMT/before.raw" "$SCMT/after.raw"
	# and gone from the list
	run "$V" jobs --json --service vslow
	[[ "$output" != *offload* ]]
}
