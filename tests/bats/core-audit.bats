#!/usr/bin/env bats
# scmd's log lines and audit trail, and SIGHUP: every log line carries an
# sd-daemon priority prefix; the audit file stays bounded (folded connects,
# a size cap, rotation) under a client that connects in a loop; SIGHUP
# reloads the policy (a changed profile takes effect) and scmd runs on.
load helpers

profile() { # profile NAME PRIORITY SERVICES-JSON
	mkdir -p "$SCMT/cfg/profiles"
	printf '{"name":"%s","priority":%s,"services":%s}\n' "$1" "$2" "$3" >"$SCMT/cfg/profiles/$1.json"
}

pre_start() {
	profile app 10 '[{"service":"echo","methods":["ping","whoami"],"action":"allow"}]'
	# a bad manifest at start: a warning, with its error chain
	echo '{"name":"bad","interface":"echo","exec":[]}' >"$SCMT/cfg/services/bad.json"
}
setup() {
	start_scmd --audit-max-size 4096 --audit-keep 1 --audit-fold-ms 1000
	"$SCMCTL" service register "$(manifest echo)" >/dev/null
}
teardown() {
	stop_scmd
}

# Waits until scmd's log has a line matching the pattern.
log_wait() {
	wait_until 60 grep -q "$1" "$SCMT/scmd.log" && return 0
	echo "no log line matching $1:"; cat "$SCMT/scmd.log"; return 1
}

@test "log lines carry sd-daemon priority prefixes" {
	cat "$SCMT/scmd.log"
	grep -q '^<6>scmd: ready, control socket .*, audit to the file$' "$SCMT/scmd.log"
	grep -q '^<4>scmd: skipping .*/bad.json:$' "$SCMT/scmd.log"
	grep -q '^<4>scmd: .*/exec: expected a command' "$SCMT/scmd.log"
	# every line, the error chain's too
	! grep -v '^<[0-7]>scmd: ' "$SCMT/scmd.log"
	run "$SCMD" --audit bogus
	[ "$status" -eq 2 ]
	[[ "$output" == "<3>scmd: --audit bogus: expected journal, file or auto" ]]
}

@test "SIGHUP reloads the policy: a profile change takes effect, scmd runs on" {
	"$SCMCTL" endpoint create app --profiles app >/dev/null
	run "$SCMCTL" call --endpoint app echo ping
	[ "$status" -eq 0 ]
	profile app 10 '[{"service":"echo","methods":["whoami"],"action":"allow"}]'
	kill -HUP "$SCMD_PID"
	log_wait '^<5>scmd: SIGHUP: policy reloaded$'
	scmd_alive
	run "$SCMCTL" call --endpoint app echo ping
	[ "$status" -eq 4 ]
	run "$SCMCTL" call --endpoint app echo whoami
	[ "$status" -eq 0 ]
	grep -q '"event":"policy-reload","result":"ok"' "$SCMT/run/audit.log"
	# a broken set is refused, logged as an error, and changes nothing
	echo '{"name":"app","priority":' >"$SCMT/cfg/profiles/app.json"
	kill -HUP "$SCMD_PID"
	log_wait '^<3>scmd: SIGHUP: policy reload refused, the old policy stays:$'
	scmd_alive
	run "$SCMCTL" call --endpoint app echo whoami
	[ "$status" -eq 0 ]
}

@test "a client connecting in a loop: folded records that count every connect, a bounded file" {
	"$SCMCTL" endpoint create app --profiles app >/dev/null
	run env SCM_ENDPOINT="$(ep app)" "$TC" loop 400 echo
	[ "$output" = "connected 400, refused 0" ]
	run env SCM_ENDPOINT="$(ep app)" "$TC" loop 200 nosuch
	[ "$output" = "connected 0, refused 200" ]
	# past the fold window, one more of each: they carry the counts
	sleep 1.1
	env SCM_ENDPOINT="$(ep app)" "$TC" loop 1 echo
	env SCM_ENDPOINT="$(ep app)" "$TC" loop 1 nosuch
	cat "$SCMT/run/audit.log"
	[ "$(stat -c %s "$SCMT/run/audit.log")" -le 4096 ]
	# a slow machine (ASan) may have rotated once: read both
	touch "$SCMT/run/audit.log.1"
	python3 - "$SCMT/run/audit.log.1" "$SCMT/run/audit.log" <<'PY'
import json, sys
allow = deny = lines = 0
for line in (l for f in sys.argv[1:] for l in open(f)):
    r = json.loads(line)
    lines += 1
    if r["event"] != "connect":
        continue
    n = 1 + r.get("folded", 0)
    if r["decision"] == "allow":
        allow += n
    else:
        deny += n
# every connect is counted, in a handful of lines
assert (allow, deny) == (401, 201), (allow, deny)
assert lines < 25, lines
PY
	grep -q '"decision":"allow".*"folded":[1-9]' "$SCMT/run/audit.log"
}

@test "the audit file is capped and rotated: at most --audit-keep old files of --audit-max-size" {
	for i in $(seq 40); do
		"$SCMCTL" endpoint create "endpoint-with-a-long-name-$i" >/dev/null
		"$SCMCTL" endpoint remove "endpoint-with-a-long-name-$i" >/dev/null
	done
	ls -l "$SCMT/run/"
	[ "$(stat -c %s "$SCMT/run/audit.log")" -le 4096 ]
	[ "$(stat -c %s "$SCMT/run/audit.log.1")" -le 4096 ]
	[ "$(stat -c %s "$SCMT/run/audit.log.1")" -gt 3000 ]
	[ ! -e "$SCMT/run/audit.log.2" ]
	# whole lines only: each file parses line by line
	python3 -c 'import json,sys; [json.loads(l) for f in sys.argv[1:] for l in open(f)]' \
		"$SCMT/run/audit.log" "$SCMT/run/audit.log.1"
	grep -q '"event":"endpoint-remove","endpoint":"endpoint-with-a-long-name-40"' "$SCMT/run/audit.log"
}

# journald is not running in CI containers, and sd_journal_send(3) cannot
# be pointed elsewhere: in a private mount namespace, a stand-in listens on
# /run/systemd/journal/socket (tests/bats/fake-journald.py) and a second
# scmd, asked for --audit=journal, sends its records there.
@test "--audit=journal: records reach the journal socket with structured fields and a MESSAGE_ID" {
	[ "$(id -u)" = 0 ] || skip "needs root for a mount namespace"
	unshare -m --propagation private true 2>/dev/null || skip "no mount namespaces"
	local J=$SCMT/j
	mkdir -p "$J/cfg/services"
	cp "$SCMT/echo.json" "$J/cfg/services/"
	run unshare -m --propagation private bash -c '
		set -e
		J=$1; SCMD=$2; SCMCTL=$3; TC=$4; SRC=$5
		mount -t tmpfs tmpfs /run
		python3 "$SRC/tests/bats/fake-journald.py" "$J/journal.jsonl" & fj=$!
		for _ in $(seq 3000); do [ -S /run/systemd/journal/socket ] && break; sleep 0.02; done
		"$SCMD" --audit=journal --runtime-dir "$J/run" --state-dir "$J/state" --config "$J/cfg" \
			--idl-path "$SRC/stubs/idl" 2>"$J/scmd.log" & pid=$!
		for _ in $(seq 3000); do [ -S "$J/run/control.sock" ] && break; sleep 0.02; done
		SCM_RUNTIME_DIR=$J/run "$SCMCTL" endpoint create demo >/dev/null
		SCM_ENDPOINT=$J/run/endpoints/demo.sock "$TC" loop 20 echo
		SCM_ENDPOINT=$J/run/endpoints/demo.sock "$TC" loop 3 nosuch
		kill $pid; wait $pid || true
		kill $fj
	' _ "$J" "$SCMD" "$SCMCTL" "$TC" "$SCM_SRC"
	echo "$output"; cat "$J/scmd.log"; cat "$J/journal.jsonl"
	[ "$status" -eq 0 ]
	[ "$output" = $'connected 20, refused 0\nconnected 0, refused 3' ]
	grep -q '^<6>scmd: ready, .*audit to the journal$' "$J/scmd.log"
	[ ! -e "$J/run/audit.log" ]
	python3 - "$J/journal.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
conn = [r for r in recs if r.get("SCM_EVENT") == "connect"]
allow = [r for r in conn if r["SCM_DECISION"] == "allow"]
deny = [r for r in conn if r["SCM_DECISION"] == "deny"]
# folded like the file: within the window, one record per kind of
# outcome (the first connect waited for the activation, the rest did not)
assert 1 <= len(allow) <= 2 and len(deny) == 1, conn
assert all("CODE_FILE" not in r for r in recs), recs
a, d = allow[0], deny[0]
assert a["MESSAGE_ID"] == "b225e8c17d00433da8a99ba2cad0cfe1", a
assert a["SYSLOG_IDENTIFIER"] == "scmd" and a["PRIORITY"] == "6", a
assert a["SCM_CALLER"] == "demo" and a["SCM_SERVICE"] == "echo", a
assert a["MESSAGE"].startswith("connect endpoint=demo "), a
assert d["PRIORITY"] == "5" and d["SCM_SERVICE"] == "nosuch" and d["SCM_CODE"] == "no-service", d
ec = [r for r in recs if r.get("SCM_EVENT") == "endpoint-create"]
assert ec and ec[0]["SCM_ENDPOINT"] == "demo" and ec[0]["MESSAGE_ID"] == "5af708dd94af480c8ac1bdd70c203391", ec
PY
}
