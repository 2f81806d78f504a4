# Shared set-up for the end-to-end tests: a private scmd per test file,
# in a temporary runtime directory, driven through the real scmctl.
: "${SCM_BUILD:?run through tests/run-all or set SCM_BUILD}"
: "${SCM_SRC:?}"
SCMCTL=$SCM_BUILD/bin/scmctl
SCMD=$SCM_BUILD/bin/scmd
TC=$SCM_BUILD/libexec/scm-test-client

# Starts scmd in $SCMT/run (state, such as container logs, in $SCMT/state)
# with config dir $SCMT/cfg; waits for its socket.
start_scmd() {
	SCMT=$(mktemp -d /tmp/scm-bats.XXXXXX)
	# containers run as unprivileged host ids (a subordinate range) and
	# must reach the runtime directory under it
	chmod 711 "$SCMT"
	export SCMT SCM_RUNTIME_DIR=$SCMT/run
	mkdir -p "$SCMT/cfg/services"
	# a test file may write configuration before scmd reads it
	if declare -F pre_start >/dev/null; then pre_start; fi
	"$SCMD" --runtime-dir "$SCMT/run" --state-dir "$SCMT/state" --config "$SCMT/cfg" --idl-path "$SCM_SRC/stubs/idl" "$@" \
		2>"$SCMT/scmd.log" &
	SCMD_PID=$!
	wait_until 60 test -S "$SCMT/run/control.sock" && return 0
	echo "scmd did not start:" >&2; cat "$SCMT/scmd.log" >&2
	return 1
}

stop_scmd() {
	if [ -n "${SCMD_PID:-}" ]; then
		kill "$SCMD_PID" 2>/dev/null || true
		wait "$SCMD_PID" 2>/dev/null || true
	fi
	# A sanitizer report from scmd fails the test that provoked it.
	if [ -n "${SCMT:-}" ] && grep -qE "ERROR: AddressSanitizer|runtime error:" "$SCMT/scmd.log" 2>/dev/null; then
		echo "scmd reported a memory error:"; cat "$SCMT/scmd.log"
		rm -rf "$SCMT"
		return 1
	fi
	# scmd must have survived everything the test threw at it until now.
	[ -z "${SCMT:-}" ] || rm -rf "$SCMT"
}

# stop_scmd_sanitized LOG...: stops scmd and its providers (they exit with
# it), then stop_scmd; a sanitizer report, leaks included, in scmd's log or
# one of the LOGs fails the test (shown).
stop_scmd_sanitized() {
	kill "$SCMD_PID" 2>/dev/null || true
	wait "$SCMD_PID" 2>/dev/null || true
	local bad=0 f
	for f in "$SCMT/scmd.log" "$@"; do
		if grep -q "Sanitizer" "$f" 2>/dev/null; then cat "$f"; bad=1; fi
	done
	stop_scmd
	return $bad
}

# A manifest for the echo provider with extra keys: manifest NAME JSON-FIELDS
manifest() {
	local name=$1; shift
	cat >"$SCMT/$name.json" <<JSON
{ "name": "$name", "interface": "echo", "exec": ["$SCM_BUILD/libexec/scm-echo-provider" ${EXTRA_ARGS:-}],
  "allow": ["demo", "host"] ${1:+, $1} }
JSON
	echo "$SCMT/$name.json"
}

# A container's endpoint is a directory holding scm.sock (bound read-only
# at /run/scm inside); a labelled endpoint is a socket.
ep() {
	if [ -d "$SCMT/run/endpoints/$1" ]; then echo "$SCMT/run/endpoints/$1/scm.sock"
	else echo "$SCMT/run/endpoints/$1.sock"; fi
}

scmd_alive() { kill -0 "$SCMD_PID"; }

# wait_until SECS CMD...: runs CMD until it succeeds, failing after SECS.
. "$SCM_SRC/tests/bats/wait.bash"

# Starts `scmctl call --hold` in the background (output in $SCMT/hold.out)
# and waits until scmd lists its channel; prints the channel id.
hold_start() {
	( rc=0; "$SCMCTL" call --endpoint "$1" --hold echo ping >"$SCMT/hold.out" 2>&1 < <(bare sleep 60) || rc=$?; echo "exit $rc" >>"$SCMT/hold.out" ) >/dev/null 2>&1 &
	HOLD_PID=$!
	wait_until 60 hold_listed || return 1
	echo "$id"
}
hold_listed() { # sets id to the last channel scmd lists
	id=$("$SCMCTL" --json channel list | python3 -c 'import json,sys; c=json.load(sys.stdin)["channels"]; print(c[-1]["id"] if c else "")')
	[ -n "$id" ]
}
# Waits for the held client to end; its output is then in $SCMT/hold.out.
hold_wait() {
	wait_until 60 grep -q '^exit ' "$SCMT/hold.out" 2>/dev/null && { cat "$SCMT/hold.out"; return 0; }
	echo "held client did not end:"; cat "$SCMT/hold.out"; return 1
}

# busybox_scmctl_rootfs DIR APPLET...: an image's root file system made of
# the host's busybox-static (with links for the applets named), scmctl
# with the libraries it links, and the echo interface in /idl, for the
# OCI engines' tests to pack in their own image format.
busybox_scmctl_rootfs() {
	local r=$1 c l
	shift
	mkdir -p "$r/bin" "$r/idl" "$r/etc"
	cp /bin/busybox "$r/bin/"
	for c in "$@"; do ln -s busybox "$r/bin/$c"; done
	cp "$SCMCTL" "$r/bin/scmctl"
	cp "$SCM_SRC/stubs/idl/echo.json" "$r/idl/"
	for l in $(ldd "$SCMCTL" | grep -o '/[^ ]*'); do
		mkdir -p "$r$(dirname "$l")"
		cp "$l" "$r$l"
	done
}
