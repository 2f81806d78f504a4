#!/usr/bin/env bash
# make demo: a private scmd, the echo service, an endpoint, calls through
# scmctl and through a C client, a denial, a revocation; then whatever
# parts the tree has (desktop, vdisk) show themselves. Everything lives in
# a temporary runtime directory and is cleaned up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build}
BIN=$PWD/$B/bin
RUN=$(mktemp -d /tmp/scm-demo.XXXXXX)
# containers run as unprivileged host ids (docs/containers.md, "Identity"):
# they must be able to pass through (not list) the runtime directory
chmod 711 "$RUN"
export SCM_RUNTIME_DIR=$RUN/run
mkdir -p "$RUN/cfg/profiles"
cp examples/profiles/*.json "$RUN/cfg/profiles/"   # base, desktop-app, ...

cleanup() {
	[ -n "${SCMD_PID:-}" ] && kill "$SCMD_PID" 2>/dev/null && wait "$SCMD_PID" 2>/dev/null
	rm -rf "$RUN"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@" || true; }

step "start scmd (runtime dir $SCM_RUNTIME_DIR)"
"$BIN/scmd" --runtime-dir "$SCM_RUNTIME_DIR" --config "$RUN/cfg" --idl-path "$PWD/stubs/idl" 2>"$RUN/scmd.log" &
SCMD_PID=$!
for _ in $(seq 100); do [ -S "$SCM_RUNTIME_DIR/control.sock" ] && break; sleep 0.02; done

step "register the echo service and make two endpoints"
run "$BIN/scmctl" service register examples/services/echo.json
run "$BIN/scmctl" endpoint create demo
run "$BIN/scmctl" endpoint create stranger
run "$BIN/scmctl" service show echo

step "call it: the provider starts on demand, the grant names the caller"
run "$BIN/scmctl" call --endpoint demo echo greet '{"name":"demo"}'
run "$BIN/scmctl" call --endpoint demo echo whoami

step "a caller not on the allow list is denied, with the rule named"
run "$BIN/scmctl" call --endpoint stranger echo ping

step "hold a channel open, then revoke it"
"$BIN/scmctl" call --endpoint demo --hold echo ping < <(sleep 30) >"$RUN/hold.out" 2>&1 &
HOLD=$!
for _ in $(seq 100); do "$BIN/scmctl" --json channel list | grep -q '"id"' && break; sleep 0.05; done
run "$BIN/scmctl" channel list
id=$("$BIN/scmctl" --json channel list | sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -n1)
run "$BIN/scmctl" channel revoke "$id"
wait "$HOLD" || true
echo "the client saw:"; sed 's/^/    /' "$RUN/hold.out"

step "status: per-stage connect latency"
run "$BIN/scmctl" status

step "the audit log"
sed 's/^/    /' "$SCM_RUNTIME_DIR/audit.log"

for part in examples/demo.d/*.sh; do
	[ -e "$part" ] || continue
	step "$(sed -n 's/^# demo: //p' "$part")"
	# shellcheck source=/dev/null
	. "$part"
done
echo
echo "demo done."
