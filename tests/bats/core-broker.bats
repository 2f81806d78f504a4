#!/usr/bin/env bats
# The broker end to end: scmd, scmctl, the echo provider and libscm clients.
load helpers

setup() {
	start_scmd
	"$SCMCTL" service register "$(manifest echo)"
	"$SCMCTL" endpoint create demo >/dev/null
	"$SCMCTL" endpoint create stranger >/dev/null
}
teardown() { stop_scmd; }

@test "a registered service is listed and its interface shown" {
	run "$SCMCTL" service list
	[ "$status" -eq 0 ]
	[[ "$output" == *"echo"*"stopped"* ]]
	run "$SCMCTL" --json service list
	echo "$output" | python3 -c 'import json,sys; s=json.load(sys.stdin)["services"]; assert s[0]["name"]=="echo"'
	run "$SCMCTL" service show echo
	[[ "$output" == *"greet(string name) -> (string greeting)"* ]]
}

@test "call through an endpoint activates the provider and answers" {
	run "$SCMCTL" call --endpoint demo echo greet '{"name":"bats"}'
	[ "$status" -eq 0 ]
	[[ "$output" == *'"greeting":"hello, bats"'* ]]
	run "$SCMCTL" service list
	[[ "$output" == *"running"* ]]
}

@test "call as host through the control socket" {
	run "$SCMCTL" call echo echo '{"data":"round trip"}'
	[ "$status" -eq 0 ]
	[[ "$output" == *'"data":"round trip"'* ]]
}

@test "the provider's grant names the endpoint and the kernel's credentials" {
	run "$SCMCTL" call --endpoint demo echo whoami
	[ "$status" -eq 0 ]
	[[ "$output" == *'"caller":"demo"'* ]]
	[[ "$output" == *'"uid":0'* ]]
}

@test "unknown service: clear error, exit 5, audited" {
	run "$SCMCTL" call --endpoint demo nosuch ping
	[ "$status" -eq 5 ]
	[[ "$output" == *"no service 'nosuch' is registered"* ]]
	grep -q '"service":"nosuch".*"decision":"deny"' "$SCMT/run/audit.log"
}

@test "unknown method: exit 5 naming the method" {
	run "$SCMCTL" call --endpoint demo echo frobnicate
	[ "$status" -eq 5 ]
	[[ "$output" == *"no method 'frobnicate'"* ]]
}

@test "denied caller: exit 4, names the rule, provider never started" {
	run "$SCMCTL" call --endpoint stranger echo ping
	[ "$status" -eq 4 ]
	[[ "$output" == *"endpoint 'stranger' is not on the allow list"* ]]
	[[ "$output" == *"#/allow"* ]]
	run "$SCMCTL" --json service list
	[[ "$output" == *'"state":"stopped"'* ]]
}

@test "repeated denials are folded in the audit log" {
	for i in $(seq 30); do "$SCMCTL" call --endpoint stranger echo ping >/dev/null 2>&1 || true; done
	n=$(grep -c '"endpoint":"stranger".*"decision":"deny"' "$SCMT/run/audit.log")
	[ "$n" -eq 1 ]
	run "$SCMCTL" --json service list
	[[ "$output" == *'"denied":30'* ]]
}

@test "a caller cannot claim another identity" {
	export SCM_ENDPOINT=$(ep stranger)
	# stranger may not call echo, whatever the request says about itself
	run "$TC" claim demo
	[ "$status" -eq 1 ]
	[[ "$output" == *"not on the allow list"* ]]
	# and an allowed caller's claim changes nothing in the grant
	"$SCMCTL" endpoint create other-allowed >/dev/null
	"$SCMCTL" service register "$(manifest echo2 '"description":"x"')" >/dev/null
	export SCM_ENDPOINT=$(ep demo)
	run "$TC" claim root-admin
	[ "$status" -eq 0 ]
	[[ "$output" == *"caller=demo"* ]]
}

@test "provider crash mid-call: the client gets an error, no hang, and later calls fail fast" {
	export SCM_ENDPOINT=$(ep demo)
	run timeout 20 "$TC" crash
	[ "$status" -eq 0 ]
	[[ "$output" == *"crash returned provider-gone"* ]]
	[[ "$output" == *"was killed by signal 6"* ]]
	# the service recovers on the next connect
	run "$SCMCTL" call --endpoint demo echo ping
	[ "$status" -eq 0 ]
}

@test "activation timeout: a clear error, no hang" {
	EXTRA_ARGS=', "--hang"' "$SCMCTL" service register "$(EXTRA_ARGS=', "--hang"' manifest slow '"timeout_ms": 300')"
	run timeout 20 "$SCMCTL" call --endpoint demo slow ping
	[ "$status" -eq 7 ]
	[[ "$output" == *"did not say ready within 300 ms"* ]]
	[[ "$output" == *"could not be activated"* ]]
}

@test "activation failure: exit status and log path in the error" {
	"$SCMCTL" service register "$(EXTRA_ARGS=', "--fail-start"' manifest broken '"restart":"no"')"
	run timeout 20 "$SCMCTL" call --endpoint demo broken ping
	[ "$status" -eq 7 ]
	[[ "$output" == *"exited with status 3 before it was ready"* ]]
	grep -q "failing at start" "$SCMT/run/logs/broken.log"
}

@test "a provider command that does not exist" {
	cat >"$SCMT/ghost.json" <<JSON
{"name":"ghost","interface":"echo","exec":["/nonexistent/provider"],"allow":["demo"],"restart":"no"}
JSON
	"$SCMCTL" service register "$SCMT/ghost.json"
	run timeout 20 "$SCMCTL" call --endpoint demo ghost ping
	[ "$status" -eq 7 ]
	[[ "$output" == *"cannot run provider '/nonexistent/provider': No such file or directory"* ]]
}

@test "malformed frames: each gets a clear error, the peer is dropped, scmd serves others" {
	export SCM_ENDPOINT=$(ep demo)
	for kind in short magic version type lengths json deep utf8 fds oversized; do
		run timeout 10 "$TC" raw $kind
		echo "$kind: $output"
		[ "$status" -eq 0 ]
		[[ "$output" == *"then: closed"* ]]
	done
	run "$TC" raw magic
	[[ "$output" == *"bad magic"* ]]
	run "$TC" raw deep
	[[ "$output" == *"JSON"* ]]
	scmd_alive
	run "$SCMCTL" call --endpoint demo echo ping
	[ "$status" -eq 0 ]
}

@test "channel quota: the endpoint's limit is enforced and named" {
	"$SCMCTL" endpoint create greedy --quota-channels 3 >/dev/null
	# allow greedy too
	"$SCMCTL" service unregister echo
	cat >"$SCMT/e.json" <<JSON
{"name":"echo","interface":"echo","exec":["$SCM_BUILD/libexec/scm-echo-provider"],"allow":["greedy","demo"]}
JSON
	"$SCMCTL" service register "$SCMT/e.json"
	export SCM_ENDPOINT=$(ep greedy)
	run bash -c "sleep 2 | '$TC' hold 5"
	[ "$status" -eq 1 ]
	[[ "$output" == *"opened 3"* ]]
	[[ "$output" == *"has 3 live channels, its limit"* ]]
	[[ "$output" == *"[quota]"* ]]
	# others are not affected
	run "$SCMCTL" call --endpoint demo echo ping
	[ "$status" -eq 0 ]
}

@test "queued-bytes quota: a client that floods without reading is dropped" {
	"$SCMCTL" endpoint create flood --quota-bytes 4096 >/dev/null
	export SCM_ENDPOINT=$(ep flood)
	run timeout 20 "$TC" flood 2000
	[[ "$output" == *"dropped yes"* ]]
	scmd_alive
	run "$SCMCTL" call --endpoint demo echo ping
	[ "$status" -eq 0 ]
}

@test "connection quota" {
	"$SCMCTL" endpoint create few --quota-connections 2 >/dev/null
	export SCM_ENDPOINT=$(ep few)
	python3 - "$SCM_ENDPOINT" <<'PY'
import socket, sys, struct
socks = []
for i in range(2):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1]); socks.append(s)
import time; time.sleep(0.2)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])
data = s.recv(4096)
assert b"open connections, its limit" in data, data
print("third refused")
PY
}

@test "revocation: the holding client gets a clear error" {
	id=$(hold_start demo)
	run "$SCMCTL" channel revoke "$id"
	[ "$status" -eq 0 ]
	out=$(hold_wait)
	echo "$out"
	[[ "$out" == *"was cut: revoked by an administrator"* ]]
	[[ "$out" == *"[revoked]"* ]]
	[[ "$out" == *"exit 1"* ]]
	grep -q '"event":"revoke"' "$SCMT/run/audit.log"
}

@test "removing an endpoint revokes its channels" {
	hold_start demo
	"$SCMCTL" endpoint remove demo
	out=$(hold_wait)
	[[ "$out" == *"endpoint 'demo' was removed"* ]]
	[ ! -e "$(ep demo)" ]
}

@test "asynchronous calls and fd passing through libscm" {
	export SCM_ENDPOINT=$(ep demo)
	run "$TC" async 500
	[ "$status" -eq 0 ]
	[[ "$output" == *"replies 500 ok 0 bad"* ]]
	# far more calls in flight than a socket queues: neither side blocks the other
	run timeout 30 "$TC" burst 2000
	[ "$status" -eq 0 ]
	[[ "$output" == *"replies 2000 ok 0 bad"* ]]
	echo "passed by fd" >"$SCMT/f.txt"
	run "$TC" passfd "$SCMT/f.txt"
	[ "$status" -eq 0 ]
	[[ "$output" == *"read 13 bytes: passed by fd"* ]]
}

@test "status reports per-stage connect latency" {
	"$SCMCTL" call --endpoint demo echo ping >/dev/null
	"$SCMCTL" call --endpoint demo echo ping >/dev/null
	run "$SCMCTL" status
	[ "$status" -eq 0 ]
	[[ "$output" == *"decide"*"median"* ]]
	[[ "$output" == *"handoff"*"median"* ]]
	run "$SCMCTL" --json status
	echo "$output" | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["connect_latency"]["total"]["n"]>=2'
}

@test "bad manifests and bad input to scmctl are refused with the field named" {
	echo '{"name":"x","interface":"echo","exec":"notalist"}' >"$SCMT/bad1.json"
	run "$SCMCTL" service register "$SCMT/bad1.json"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/exec"* ]]
	echo '{"name":"x","interface":"nope","exec":["a"]}' >"$SCMT/bad2.json"
	run "$SCMCTL" service register "$SCMT/bad2.json"
	[[ "$output" == *"no nope.json on the IDL path"* ]]
	echo '{"name":"x","interface":"echo","exec":["a"],"colour":"red"}' >"$SCMT/bad3.json"
	run "$SCMCTL" service register "$SCMT/bad3.json"
	[[ "$output" == *"/colour: unknown key"* ]]
	run "$SCMCTL" endpoint create "../evil"
	[ "$status" -ne 0 ]
	[[ "$output" == *"is not valid"* ]]
	run "$SCMCTL" endpoint create x --quota-channels lots
	[ "$status" -eq 2 ]
	run "$SCMCTL" call --endpoint demo echo greet 'not json'
	[ "$status" -eq 2 ]
	run "$SCMCTL" service list
	[[ "$output" != *" x "* ]]
}

@test "COMMAND --help prints that command's usage and changes nothing" {
	run "$SCMCTL" container run --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"container run [--name N]"* ]]
	[[ "$output" != *"endpoint create"* ]]
	run "$SCMCTL" container list
	[[ "$output" != *" running "* ]]
	run "$SCMCTL" endpoint create --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--quota-channels N"* ]]
	[ ! -e "$SCM_RUNTIME_DIR/endpoints/--help.sock" ]
	# further on, -h is a word of the container's command, not scmctl's
	run "$SCMCTL" container exec nosuch ls -h
	[ "$status" -ne 0 ]
	[[ "$output" != *"usage:"* ]]
	[[ "$output" == *"nosuch"* ]]
	# after --, --help belongs to the container's command
	run "$SCMCTL" container run -- /bin/echo --help
	[ "$status" -eq 0 ]
	[[ "$output" == *"--help"* ]]
	[[ "$output" != *"usage:"* ]]
}

@test "unregistering a service revokes its channels and stops the provider" {
	hold_start demo
	pid=$("$SCMCTL" --json service list | python3 -c 'import json,sys; print(json.load(sys.stdin)["services"][0]["pid"])')
	"$SCMCTL" service unregister echo
	out=$(hold_wait)
	[[ "$out" == *"service 'echo' was unregistered"* ]]
	gone() { ! kill -0 "$pid" 2>/dev/null; }
	wait_until 60 gone
	! kill -0 "$pid" 2>/dev/null
}

@test "the control socket refuses non-root users" {
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
	chmod 755 "$SCMT" "$SCMT/run"
	run setpriv --reuid scmtest --regid scmtest --clear-groups "$SCMCTL" --runtime-dir "$SCMT/run" status
	[ "$status" -eq 3 ]
	[[ "$output" == *"for root"* || "$output" == *"Permission denied"* ]]
}

@test "an interface that asks for an unknown kind of grant rule is refused at registration" {
	stop_scmd
	IDLD=$(mktemp -d /tmp/scm-idl.XXXXXX)
	sed 's/"interface": "echo"/"interface": "echoext"/; s/"version": 1,/"version": 1, "grant_rules": ["telepathy"],/' \
		"$SCM_SRC/stubs/idl/echo.json" >"$IDLD/echoext.json"
	grep -q '"grant_rules": \["telepathy"\]' "$IDLD/echoext.json"
	start_scmd --idl-path "$IDLD:$SCM_SRC/stubs/idl"
	cat >"$SCMT/echox.json" <<JSON
{ "name": "echox", "interface": "echoext", "exec": ["$SCM_BUILD/libexec/scm-echo-provider"], "allow": ["host"] }
JSON
	run "$SCMCTL" service register "$SCMT/echox.json"
	rm -rf "$IDLD"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/grant_rules/0: no kind of profile rule is called 'telepathy'"* ]]
	run "$SCMCTL" service list
	[[ "$output" != *echox* ]]
}
