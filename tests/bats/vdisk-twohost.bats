#!/usr/bin/env bats
# Between two hosts (issue 14 item 4): two network namespaces made with
# `ip netns`, joined by a veth pair (10.231.0.1 is A, 10.231.0.2 is B),
# one scmd per "host" in its own namespace with its own runtime, state and
# configuration. A exports a base disk over TCP with TLS (x509 and PSK
# material made here with certtool and psktool); B's provider reads it as
# the remote parent (nbds://) of differencing children, under a grant that
# names the export and the TLS material. A container on B reads and
# writes through B's vdisk service and boots a workload from a child
# whose stream has not finished; the bytes are checked against the same
# chain held locally; A's export killed in the middle of a read gives a
# clear error and no data, and is used again once it is back. A disk on A
# migrates live (mirror mode) to an export of B's, over TLS (PSK), while a
# client on A writes: B's disk then equals the client's copy, and A's disk
# takes no more writes.
load helpers

V=$SCM_BUILD/bin/scm-vdisk
C=$SCM_BUILD/libexec/vdisk-client
ADDR_A=10.231.0.1
ADDR_B=10.231.0.2
START=2147483648

# in_ns A|B CMD...: CMD in that host's network namespace, nothing else
# changed (nsenter: ip netns exec would also give it a /sys of its own)
in_ns() {
	local h=$1; shift
	nsenter --net="/run/netns/$NS$h" -- "$@"
}

# start_host A|B: scmd in the host's namespace; its dirs under $T/A or $T/B
start_host() {
	local h=$1 d=$T/$1
	mkdir -p "$d/cfg/services" "$d/cfg/profiles"
	# nsenter execs scmd (a network namespace needs no fork): $! is scmd
	nsenter --net="/run/netns/$NS$h" -- "$SCMD" --runtime-dir "$d/run" --state-dir "$d/state" --config "$d/cfg" \
		--idl-path "$SCM_SRC/stubs/idl" --subids "$START:65536" 2>"$d/scmd.log" 3>&- &
	echo $! >"$d/scmd.pid"
	wait_until 60 test -S "$d/run/control.sock" || { cat "$d/scmd.log"; return 1; }
}

# ctl A|B ARGS...: that host's scmctl
ctl() { local h=$1; shift; SCM_RUNTIME_DIR=$T/$h/run "$SCMCTL" "$@"; }
epa() { echo "$T/A/run/endpoints/$1.sock"; }
epb() { echo "$T/B/run/endpoints/$1.sock"; }

# profile FILE NAME PRIORITY SETTINGS-JSON: B's grant on DB, with SETTINGS
# (each profile its own priority: equal ones that allow the same would
# conflict)
profile() {
	cat >"$1" <<JSON
{ "name": "$2", "priority": $3, "services": [
  { "service": "vdisk", "methods": ["open", "create"], "action": "allow", "args": { "path": { "path_prefix": "$DB" } },
    "settings": $4 },
  { "service": "vdisk", "methods": ["read", "write", "readv", "writev", "flush", "info", "close", "extents",
                                    "merge", "job_list", "job_wait", "job_pause", "job_resume"], "action": "allow",
    "settings": $4 } ] }
JSON
}

# migration_profiles: A's clients may open and migrate disks under DA to
# B's export (PSK), or to a port where nothing listens; B's export may open
# disks under DB read-write
migration_profiles() {
	local set="{ \"nbd_migrate_dests\": \"nbds://$ADDR_B:10811/dst nbds://$ADDR_B:10813/gone\",
	             \"nbd_tls_psk_file\": \"$T/keys.psk\", \"nbd_tls_username\": \"alice\" }"
	cat >"$T/A/cfg/profiles/migr.json" <<JSON
{ "name": "migr", "priority": 29, "services": [
  { "service": "vdisk", "methods": ["open", "migrate"], "action": "allow", "args": { "path": { "path_prefix": "$DA" } },
    "settings": $set },
  { "service": "vdisk", "methods": ["read", "write", "readv", "writev", "flush", "info", "close", "extents",
                                    "job_list", "job_wait", "job_pause", "job_resume", "job_cancel"], "action": "allow",
    "settings": $set } ] }
JSON
	cat >"$T/B/cfg/profiles/exportw.json" <<JSON
{ "name": "exportw", "priority": 30, "services": [
  { "service": "vdisk", "methods": ["open"], "action": "allow", "args": { "path": { "path_prefix": "$DB" } } },
  { "service": "vdisk", "methods": ["read", "readv", "write", "writev", "flush", "trim", "zero", "info", "close",
                                    "extents"], "action": "allow" } ] }
JSON
}

# tls_material: a CA, a server certificate for A's address, a second CA
# B does not trust, and a PSK file
tls_material() {
	X=$T/x509
	mkdir -p "$X/server" "$X/client" "$X/other"
	certtool --generate-privkey --outfile "$X/ca-key.pem" 2>/dev/null
	printf 'cn = scm two-host CA\nca\ncert_signing_key\nexpiration_days = 2\n' >"$X/ca.info"
	certtool --generate-self-signed --load-privkey "$X/ca-key.pem" --template "$X/ca.info" \
		--outfile "$X/server/ca-cert.pem" 2>/dev/null
	cp "$X/server/ca-cert.pem" "$X/client/ca-cert.pem"
	certtool --generate-privkey --outfile "$X/server/server-key.pem" 2>/dev/null
	printf 'cn = host-a\nip_address = %s\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' \
		"$ADDR_A" >"$X/server.info"
	certtool --generate-certificate --load-ca-certificate "$X/server/ca-cert.pem" --load-ca-privkey "$X/ca-key.pem" \
		--load-privkey "$X/server/server-key.pem" --template "$X/server.info" \
		--outfile "$X/server/server-cert.pem" 2>/dev/null
	certtool --generate-privkey --outfile "$X/o-key.pem" 2>/dev/null
	certtool --generate-self-signed --load-privkey "$X/o-key.pem" --template "$X/ca.info" \
		--outfile "$X/other/ca-cert.pem" 2>/dev/null
	psktool -u alice -p "$T/keys.psk" >/dev/null
}

setup_file() {
	command -v nbdkit >/dev/null && command -v certtool >/dev/null && command -v psktool >/dev/null &&
		command -v jq >/dev/null || {
		echo "nbdkit, gnutls-bin, jq are test dependencies (scripts/deps/test-vdisk.txt)" >&2; return 1; }
	[ "$(id -u)" = 0 ] || skip "network namespaces and containers need root"
	# Not under /tmp: containers get a private /tmp, and read their
	# endpoint and the client from here
	T=$(mktemp -d /var/tmp/scm-twohost.XXXXXX)
	chmod 755 "$T"
	NS=scmth$$
	export T NS
	ip netns add "${NS}A"
	ip netns add "${NS}B"
	ip link add "${NS}a" netns "${NS}A" type veth peer name "${NS}b" netns "${NS}B"
	ip -n "${NS}A" addr add "$ADDR_A/24" dev "${NS}a"
	ip -n "${NS}B" addr add "$ADDR_B/24" dev "${NS}b"
	for h in A B; do
		ip -n "$NS$h" link set lo up
		ip -n "$NS$h" link set "$NS${h,,}" up
	done
	tls_material
	DA=$T/A/disks DB=$T/B/disks
	export DA DB X
	mkdir -p "$DA" "$DB" "$T/A/cfg/profiles" "$T/B/cfg/profiles" "$T/in"
	chmod 755 "$T/A" "$T/B" "$DB" "$T/in"
	sed "s#/srv/disks#$DA#g" "$SCM_SRC/examples/profiles/vdisk-reader.json" >"$T/A/cfg/profiles/vdisk-reader.json"
	local x509="{ \"nbd_parents\": \"nbds://$ADDR_A:10809/base\", \"nbd_tls_certificates\": \"$X/client\" }"
	profile "$T/B/cfg/profiles/twohost.json" twohost 25 "$x509"
	profile "$T/B/cfg/profiles/psk.json" psk 26 \
		"{ \"nbd_parents\": \"nbds://$ADDR_A:10810/basep\", \"nbd_tls_psk_file\": \"$T/keys.psk\", \"nbd_tls_username\": \"alice\" }"
	profile "$T/B/cfg/profiles/notls.json" notls 27 "{ \"nbd_parents\": \"nbds://$ADDR_A:10809/base\" }"
	profile "$T/B/cfg/profiles/wrongca.json" wrongca 28 \
		"{ \"nbd_parents\": \"nbds://$ADDR_A:10809/base\", \"nbd_tls_certificates\": \"$X/other\" }"
	migration_profiles
	start_host A
	start_host B
	# A's provider gives a migration's connection a minute (one test holds
	# B's export stopped while it connects), and a lost one 2 s to come
	# back (one test kills B's export for good)
	cat >"$T/A/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk",
  "exec": ["/usr/bin/env", "SCM_VDISK_NBD_CONNECT_MS=60000", "SCM_VDISK_NBD_RETRY_MS=2000",
           "$SCM_BUILD/libexec/scm-vdisk-provider"] }
JSON
	# B's provider waits 1.5 s for a lost parent, then the read fails
	cat >"$T/B/vdisk.json" <<JSON
{ "name": "vdisk", "interface": "vdisk",
  "exec": ["/usr/bin/env", "SCM_VDISK_NBD_WAIT_MS=1500", "$SCM_BUILD/libexec/scm-vdisk-provider"] }
JSON
	ctl A service register "$T/A/vdisk.json" >/dev/null
	ctl B service register "$T/B/vdisk.json" >/dev/null
	ctl A endpoint create exporter --profiles vdisk-reader >/dev/null
	for p in twohost psk notls wrongca; do ctl B endpoint create "$p" --profiles "$p" >/dev/null; done
	ctl A endpoint create migr --profiles migr >/dev/null
	ctl B endpoint create exportw --profiles exportw >/dev/null
	# A's base: 16 MiB in 1 MiB blocks; random data in the first 8 MiB, a
	# workload (a tar archive) at 12 MiB, a few bytes at the end
	head -c 8M /dev/urandom >"$T/r0"
	mkdir -p "$T/w"
	printf 'the data file of the workload\n' >"$T/w/data.txt"
	printf '#!/bin/sh\necho "booted: $(cat "${0%%/*}/data.txt")"\n' >"$T/w/boot.sh"
	tar -C "$T" -cf "$T/w.tar" w
	"$V" create --size 16M --block-size 1M "$DA/base.vhdx"
	"$V" write --offset 0 "$DA/base.vhdx" <"$T/r0"
	"$V" write --offset 12M "$DA/base.vhdx" <"$T/w.tar"
	head -c 512 /dev/urandom | "$V" write --offset 16776704 "$DA/base.vhdx"
	"$V" convert -O raw "$DA/base.vhdx" "$T/base.raw"
	serve base 10809 --tls-certificates "$X/server"
	serve basep 10810 --tls-psk "$T/keys.psk"
	URI=nbds://$ADDR_A:10809/base
	export URI
}

# serve NAME PORT TLS-ARGS...: A exports its base read-only on A's address
serve() {
	local n=$1 port=$2
	shift 2
	in_ns A env SCM_EXPORT_DIR="$T/A/exports" "$V" export --endpoint "$(epa exporter)" --detach --readonly \
		--name "$n" "$DA/base.vhdx" --nbd "tcp:$ADDR_A:$port" --allow-remote "$@"
}
unserve() { SCM_EXPORT_DIR=$T/A/exports "$V" export --stop "$1"; }
# crash NAME: A's nbdkit dies at once (SIGKILL, as a host that goes away
# would: --stop lets requests finish and waits for idle clients), then
# its record goes
crash() {
	local pid
	pid=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/A/exports/$1.json")
	kill -KILL "$pid"
	unserve "$1"
}

teardown_file() {
	[ -n "${T:-}" ] || return 0
	local bad=0 h p
	# B first: its provider's connections to A's exports end with it
	for h in B A; do
		p=$(cat "$T/$h/scmd.pid" 2>/dev/null) || continue
		kill "$p" 2>/dev/null || true
		for _ in $(seq 600); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		if grep -q "Sanitizer" "$T/$h/scmd.log" "$T/$h"/run/logs/vdisk.log* 2>/dev/null; then
			cat "$T/$h/scmd.log" "$T/$h"/run/logs/vdisk.log*; bad=1
		fi
		[ "$h" = A ] || continue
		for n in base basep; do SCM_EXPORT_DIR=$T/A/exports "$V" export --stop "$n" 2>/dev/null || true; done
		SCM_EXPORT_DIR=$T/B/exports "$V" export --stop dst 2>/dev/null || true
	done
	ip netns del "${NS}A" 2>/dev/null || true
	ip netns del "${NS}B" 2>/dev/null || true
	rm -rf "$T"
	return $bad
}

teardown() {
	for p in ${BG:-}; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	BG=""
}

# in_container CMD...: a quick-path container on B with the twohost profile
in_container() {
	ctl B container run --name "c$RANDOM" --profile twohost --env SCM_IDL_PATH="$SCM_SRC/stubs/idl" \
		--bind "$SCM_SRC/stubs/idl" --bind "$T/in" --env ASAN_OPTIONS=detect_leaks=0 -- "$@"
}

# mkchild NAME: B's child of A's base, made on B by the owner's tool
mkchild() {
	in_ns B env SCM_VDISK_NBD_TLS_CERTIFICATES="$X/client" "$V" create --parent "$URI" "$DB/$1.vhdx"
}

# vb ARGS...: the owner's tool on B's disks, in B's namespace with B's CA
vb() { in_ns B env SCM_VDISK_NBD_TLS_CERTIFICATES="$X/client" "$V" "$@"; }

local_bytes() { vb info --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["local_bytes"])'; }

@test "twohost: B's child over A's TLS export reads and writes as the same chain held locally, from a container on B" {
	mkchild c1
	run vb info "$DB/c1.vhdx"
	echo "$output"
	[[ $output == *"remote parent: $URI"* ]]
	[ "$(local_bytes "$DB/c1.vhdx")" = 0 ]
	# the same chain held locally on B
	cp "$DA/base.vhdx" "$DB/lp.vhdx"
	"$V" create --parent "$DB/lp.vhdx" "$DB/lc.vhdx"
	# a container on B writes 1 MiB at the start, then reads the whole disk
	head -c 1M /dev/urandom >"$T/in/w.raw"
	chmod 644 "$T/in/w.raw"
	in_container "$C" copy-in "$DB/c1.vhdx" "$T/in/w.raw"
	"$V" write --offset 0 "$DB/lc.vhdx" <"$T/in/w.raw"
	run in_container /bin/sh -c "'$C' copy-out '$DB/c1.vhdx' /tmp/o && sha256sum </tmp/o"
	echo "$output"
	[ "$status" -eq 0 ]
	"$V" convert -O raw "$DB/lc.vhdx" "$T/local.raw"
	[[ $output == *"$(sha256sum <"$T/local.raw" | cut -d' ' -f1)"* ]]
	# the file itself, once B's provider lets it go, equals the local chain
	wait_until 60 vb convert -O raw "$DB/c1.vhdx" "$T/remote.raw"
	cmp "$T/remote.raw" "$T/local.raw"
	qemu-img compare -f raw -F raw "$T/local.raw" "$T/remote.raw"
	vb check "$DB/c1.vhdx"
	# PSK: the second export, through the psk grant; the reads copy in
	in_ns B env SCM_VDISK_NBD_TLS_PSK_FILE="$T/keys.psk" SCM_VDISK_NBD_TLS_USERNAME=alice \
		"$V" create --parent "nbds://$ADDR_A:10810/basep" "$DB/p1.vhdx"
	"$C" --endpoint "$(epb psk)" copy-out-rw "$DB/p1.vhdx" "$T/p.raw"
	cmp "$T/p.raw" "$T/base.raw"
}

@test "twohost: TLS is required and its material is the grant's: refusals say why" {
	mkchild c2
	# a grant naming the export but no TLS material: nothing is sent
	run "$C" --endpoint "$(epb notls)" copy-out "$DB/c2.vhdx" "$T/o.raw"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"remote parent $URI needs TLS material, and none is configured"* ]]
	# a CA that did not sign A's certificate
	run "$C" --endpoint "$(epb wrongca)" copy-out "$DB/c2.vhdx" "$T/o.raw"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"$URI: cannot connect: "* ]]
	[[ $output == *"certificate"* ]]
	# plain NBD to a TLS export: A's server refuses it
	run in_ns B "$V" create --parent "nbd://$ADDR_A:10809/base" "$DB/plain.vhdx"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"nbd://$ADDR_A:10809/base: cannot connect: "* ]]
	[ ! -e "$DB/plain.vhdx" ]
	# TLS material in the URI is not taken
	run in_ns B "$V" create --parent "$URI?tls-certificates=$X/client" "$DB/q.vhdx"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"take no query"* ]]
}

# pause_read DISK OUT: B's client copying DISK out read-write, stopped
# before its read at 8 MiB until a line comes on $T/go (fd 5 holds it)
pause_read() {
	rm -f "$T/go" "$T/c.out"
	mkfifo "$T/go"
	"$C" --endpoint "$(epb twohost)" copy-out-rw "$1" "$2" 8388608 <"$T/go" >"$T/c.out" 2>&1 &
	CPID=$!
	BG="${BG:-} $CPID"
	exec 5>"$T/go"
	wait_until 60 grep -q paused "$T/c.out" || { cat "$T/c.out"; return 1; }
}

@test "twohost: A's export killed in the middle of a read: a clear error, no data; used again once A is back" {
	mkchild k
	# killed and back before the next read: the same handle reconnects
	# (TLS again) and the client sees nothing
	mkchild k0
	pause_read "$DB/k0.vhdx" "$T/k0.raw"
	crash base
	serve base 10809 --tls-certificates "$X/server"
	echo go >&5
	exec 5>&-
	wait "$CPID"
	cmp "$T/k0.raw" "$T/base.raw"
	# killed and not back within the wait (1.5 s here)
	pause_read "$DB/k.vhdx" "$T/k.raw"
	crash base
	echo go >&5
	exec 5>&-
	local rc=0
	wait "$CPID" || rc=$?
	cat "$T/c.out"
	[ "$rc" -ne 0 ]
	grep -q "remote parent $URI unreachable: .* attempts over .* ms failed (SCM_VDISK_NBD_WAIT_MS=1500); no data was returned" "$T/c.out"
	# the first half arrived, nothing of the second
	[ "$(stat -c %s "$T/k.raw")" = 8388608 ]
	cmp -n 8388608 "$T/k.raw" "$T/base.raw"
	# info on B while A is gone: what the file says (A's URI, the half
	# the read copied in), that the parent is unreachable, exit 0 (once
	# B's provider let the disk go, on a worker after the client left)
	wait_until 60 vb info "$DB/k.vhdx"
	run vb info "$DB/k.vhdx"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"remote parent: $URI"* ]]
	[[ $output == *"local: 8388608 of 16777216 bytes"* ]]
	[[ $output == *"parent: UNREACHABLE ("*"$URI: cannot connect"* ]]
	# A is back: a new open reads it whole, and what the child kept is A's
	serve base 10809 --tls-certificates "$X/server"
	"$C" --endpoint "$(epb twohost)" copy-out-rw "$DB/k.vhdx" "$T/k2.raw"
	cmp "$T/k2.raw" "$T/base.raw"
	wait_until 60 vb convert -O raw "$DB/k.vhdx" "$T/k3.raw"
	cmp "$T/k3.raw" "$T/base.raw"
	vb check "$DB/k.vhdx"
}

job_field() { # ID FIELD: the job's FIELD from B's job list
	SCM_ENDPOINT=$(epb twohost) "$V" jobs --json |
		python3 -c 'import json,sys; j=[x for x in json.load(sys.stdin) if x["id"]==int(sys.argv[1])][0]; print(j[sys.argv[2]])' "$1" "$2"
}

@test "twohost: a container boots its workload from the child while the stream runs; the stream ends self-contained under a writer" {
	mkchild s
	# a client writing in the first 8 MiB until told to stop; its copy of
	# what the disk must hold is $T/expected
	cp "$T/base.raw" "$T/expected"
	VDISK_PATTERN_SPAN=8388608 "$C" --endpoint "$(epb twohost)" pattern "$DB/s.vhdx" "$T/expected" 0 "$T/stop" \
		>"$T/writer.out" 2>&1 &
	BG="${BG:-} $!"
	WRITER=$!
	wait_until 60 test -s "$T/expected.pending"
	# the link from A is slowed to 4 Mbit/s, so the 16 MiB stream would
	# take half a minute; it starts, and is paused before anything else
	# happens (the pause, not a timing, is what the checks below rely on;
	# the slow link only keeps the stream from ending before the pause)
	tc -n "${NS}A" qdisc add dev "${NS}a" root tbf rate 4mbit burst 64kbit latency 2s
	id=$(SCM_ENDPOINT=$(epb twohost) "$V" merge --from-parent --detach "$DB/s.vhdx")
	SCM_ENDPOINT=$(epb twohost) "$V" job "$id" pause
	[ "$(job_field "$id" state)" = paused ]
	[ "$(job_field "$id" done)" -lt "$(job_field "$id" total)" ]
	tc -n "${NS}A" qdisc del dev "${NS}a" root
	# the workload: a container reads its files (the tar at 12 MiB) from the
	# child, which fetches them from A, and runs them
	run in_container /bin/sh -c "'$C' cat '$DB/s.vhdx' 12582912 1048576 | tar -x -C /tmp && sh /tmp/w/boot.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"booted: the data file of the workload"* ]]
	# the stream had not finished: the disk still reads from A
	[ "$(job_field "$id" state)" = paused ]
	vb info -U "$DB/s.vhdx" | grep -q "remote parent: $URI"
	SCM_ENDPOINT=$(epb twohost) "$V" job "$id" resume
	SCM_ENDPOINT=$(epb twohost) "$V" job "$id" wait
	touch "$T/stop"
	wait "$WRITER"
	cat "$T/writer.out"
	grep -q "^wrote [1-9]" "$T/writer.out"
	# A's export can go: the child stands alone, and holds the writer's copy
	unserve base
	wait_until 60 "$V" info --json "$DB/s.vhdx" >"$T/info"
	"$V" info --json "$DB/s.vhdx" >"$T/info"
	! grep -q scm_nbd_parent "$T/info"
	wait_until 60 "$V" convert -O raw "$DB/s.vhdx" "$T/got.raw"
	cmp "$T/expected" "$T/got.raw"
	"$V" check "$DB/s.vhdx"
	qemu-img check -f vhdx "$DB/s.vhdx"
	serve base 10809 --tls-certificates "$X/server"
}

# ma ARGS...: scm-vdisk as A's migrating client
ma() { SCM_ENDPOINT=$(epa migr) "$V" "$@"; }
mjob() { ma jobs --json | jq -r ".[] | select(.id == $1) | .$2"; } # ID FIELD: from A's job list
# serve_dst: B exports its dst.vhdx read-write on B's address, TLS with PSK
serve_dst() {
	in_ns B env SCM_EXPORT_DIR="$T/B/exports" "$V" export --endpoint "$(epb exportw)" --detach --name dst \
		"$DB/dst.vhdx" --nbd "tcp:$ADDR_B:10811" --allow-remote --tls-psk "$T/keys.psk"
}
# held_migration ARGS...: a migration of A's m.vhdx to B's export, paused
# before it copies anything, whatever the timing: B's nbdkit is stopped
# (SIGSTOP) while the job connects, so the job is still in its first step
# when the pause comes; MID is its id
held_migration() {
	local pid
	pid=$(jq -r .pid "$T/B/exports/dst.json")
	kill -STOP "$pid"
	MID=$(ma migrate --detach "$@" "$DA/m.vhdx" "$MURI") || { kill -CONT "$pid"; return 1; }
	ma job "$MID" pause || { kill -CONT "$pid"; return 1; }
	kill -CONT "$pid"
	wait_until 60 job_is "$MID" phase copy
	[ "$(mjob "$MID" state)" = paused ]
	[ "$(mjob "$MID" bytes_copied)" = 0 ]
}
job_is() { [ "$(mjob "$1" "$2")" = "$3" ]; }
pending_moved() { [ "$(cat "$T/mexpected.pending" 2>/dev/null)" != "$1" ]; }

@test "twohost: a disk on A migrates live to B's export while a client on A writes; B's disk is the client's copy" {
	MURI=nbds://$ADDR_B:10811/dst
	# A's disk: data in its first 8 MiB, the rest never written
	"$V" create --size 16M --block-size 1M "$DA/m.vhdx"
	"$V" write --offset 0 "$DA/m.vhdx" <"$T/r0"
	"$V" convert -O raw "$DA/m.vhdx" "$T/mexpected"
	# B's disk of the same size, holding old data at 14 MiB where A's
	# reads zeros; served read-write over TCP with TLS (PSK)
	"$V" create --size 16M --block-size 1M "$DB/dst.vhdx"
	head -c 1M /dev/urandom | "$V" write --offset 14M "$DB/dst.vhdx"
	serve_dst
	# a client on A writes patterns in the first 8 MiB (each flushed, then
	# put in its copy) until its disk refuses a write
	VDISK_PATTERN_SPAN=8388608 "$C" --endpoint "$(epa migr)" pattern "$DA/m.vhdx" "$T/mexpected" 0 "$T/mstop" \
		>"$T/mwriter.out" 2>&1 &
	WRITER=$!
	BG="${BG:-} $WRITER"
	wait_until 60 test -s "$T/mexpected.pending"
	# bad destinations: refused by name, nothing copied, the writer goes on
	run ma migrate "$DA/m.vhdx" "nbds://$ADDR_B:99999/dst"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"port"* ]]
	run ma migrate "$DA/m.vhdx" "nbds://$ADDR_B:10812/other"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"migration destination nbds://$ADDR_B:10812/other is not among the grant's nbd_migrate_dests"* ]]
	run ma migrate --mode snapshot "$DA/m.vhdx" "$MURI"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"snapshot mode needs a file destination"* ]]
	run ma migrate "$DA/m.vhdx" "nbds://$ADDR_B:10813/gone"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ $output == *"migration destination nbds://$ADDR_B:10813/gone unreachable: nothing was copied"* ]]
	[[ $output == *"cannot connect"* ]]
	# a cancelled migration leaves the disk as it was
	held_migration
	id=$MID
	ma job "$id" cancel
	run ma job "$id" wait
	[ "$status" -ne 0 ]
	[ "$(mjob "$id" state)" = cancelled ]
	kill -0 "$WRITER"
	# B's export killed (SIGKILL) while a migration is paused: resumed, the
	# job fails saying so, and the disk (still the writer's) loses nothing
	held_migration
	id=$MID
	kill -KILL "$(jq -r .pid "$T/B/exports/dst.json")"
	SCM_EXPORT_DIR=$T/B/exports "$V" export --stop dst
	ma job "$id" resume
	run ma job "$id" wait
	echo "$output"
	[ "$status" -ne 0 ]
	[ "$(mjob "$id" state)" = failed ]
	[[ $output == *"migration destination $MURI"*"the connection was lost, and "*"attempts to connect again "*"(SCM_VDISK_NBD_RETRY_MS=2000)"* ]]
	kill -0 "$WRITER"
	# (once B's provider let go of the killed export's handle)
	wait_until 60 serve_dst
	# the migration: started, paused, and held there while the writer
	# makes two more writes (so writes land during the copy, whatever the
	# timing), then resumed to its end
	held_migration --throttle 64
	id=$MID
	local p
	p=$(cat "$T/mexpected.pending")
	wait_until 60 pending_moved "$p"
	p=$(cat "$T/mexpected.pending")
	wait_until 60 pending_moved "$p"
	ma job "$id" resume
	ma job "$id" wait
	[ "$(mjob "$id" state)" = done ]
	[ "$(mjob "$id" target)" = "$MURI" ]
	# the writer's next write was refused: A's disk takes no more
	local rc=0
	wait "$WRITER" || rc=$?
	cat "$T/mwriter.out"
	[ "$rc" -ne 0 ]
	grep -q "^wrote [1-9]" "$T/mwriter.out"
	grep -q "$DA/m.vhdx was migrated to $MURI: it takes no more writes here" "$T/mwriter.out"
	# B's disk holds every write the client was answered for, and zeros
	# where A's disk had none (the old data at 14 MiB is gone, its block
	# let go rather than written with zeros)
	SCM_EXPORT_DIR=$T/B/exports "$V" export --stop dst
	wait_until 60 "$V" convert -O raw "$DB/dst.vhdx" "$T/mgot.raw"
	cmp "$T/mexpected" "$T/mgot.raw"
	qemu-img compare -f raw -F vhdx "$T/mexpected" "$DB/dst.vhdx"
	"$V" check "$DB/dst.vhdx"
	"$V" map --json "$DB/dst.vhdx" | python3 -c '
import json, sys
m = json.load(sys.stdin)
bad = [e for e in m if e["start"] + e["length"] > 8 << 20 and e["state"] != "zero"]
assert not bad, bad'
	# A's disk is complete as of the switch-over: the same bytes
	wait_until 60 "$V" convert -O raw "$DA/m.vhdx" "$T/msrc.raw"
	cmp "$T/mexpected" "$T/msrc.raw"
}
