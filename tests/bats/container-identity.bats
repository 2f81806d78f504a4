#!/usr/bin/env bats
# Who a container is on the host (docs/containers.md, "Identity", "Host
# view", "Endpoint"): a root scmd maps every container onto its subordinate
# range, so uid 0 inside is an unprivileged host id; the quick path sees
# /usr and a filtered /etc, not the host's /; the endpoint cannot be
# changed from inside and admits only the container's ids. Each test
# checks the host: /proc/PID/status, file owners and modes, audit records.
load helpers

H=$SCM_BUILD/libexec/scm-test-helper
START=1000000
COUNT=65536

setup() {
	id scmtest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin scmtest
	# reachable by the container's ids: not under a 0700 directory
	D=$(mktemp -d /var/tmp/scm-idtest.XXXXXX)
	chmod 755 "$D"
	start_scmd --subids "$START:$COUNT"
}
teardown() {
	[ -z "${upid:-}" ] || { kill "$upid" 2>/dev/null; wait "$upid" 2>/dev/null || true; }
	"$SCMCTL" --json container list 2>/dev/null | python3 -c '
import json,sys
for c in json.load(sys.stdin)["containers"]:
    if c["state"]=="running": print(c["name"])' | while read -r n; do "$SCMCTL" container kill "$n" >/dev/null 2>&1 || true; done
	stop_scmd
	rm -rf "$D"
}

wait_state() { # NAME STATE
	wait_until 60 state_is "$1" "$2"
}
state_is() { "$SCMCTL" container show "$1" 2>/dev/null | grep -q "\"state\":\"$2\""; }

pid_of() { "$SCMCTL" --json container show "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }

@test "root: uid 0 inside is a host id of the subordinate range, never host 0" {
	run "$SCMCTL" container run -- sh -c 'id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(sed -n 1p <<<"$output")" = 0 ]
	[ "$(sed -n 2p <<<"$output")" = 0 ]
	[ "$(sed -n 3p <<<"$output" | tr -s ' ' | sed 's/^ //')" = "0 $START $COUNT" ]
	[ "$(sed -n 4p <<<"$output" | tr -s ' ' | sed 's/^ //')" = "0 $START $COUNT" ]
	# The host's view of the running container's processes.
	"$SCMCTL" container run -d --name idle -- sleep 300
	wait_state idle running
	local p1 main
	p1=$(pid_of idle)
	main_found() { main=$(pgrep -P "$p1" | head -1); [ -n "$main" ]; }
	wait_until 60 main_found
	for p in "$p1" "$main"; do
		grep -E '^(Uid|Gid):' "/proc/$p/status"
		[ "$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$p/status")" = "$START $START $START $START" ]
		[ "$(awk '/^Gid:/ {print $2, $3, $4, $5}' "/proc/$p/status")" = "$START $START $START $START" ]
		# and none of scmd's supplementary groups (root's gid 0)
		[ -z "$(awk '/^Groups:/ {$1=""; print}' "/proc/$p/status" | tr -d ' ')" ]
	done
	# exec enters the user namespace too
	run "$SCMCTL" container exec idle -- sh -c 'id -u; grep ^Groups: /proc/self/status'
	echo "$output"
	[ "$(sed -n 1p <<<"$output")" = 0 ]
	[ "$(sed -n 2p <<<"$output" | tr -d '[:space:]')" = "Groups:" ]
}

@test "root: /etc/shadow, /root and a 0700 directory's file are not read" {
	mkdir -m 700 "$D/private"
	echo "s3cret-$$" >"$D/private/secret"
	chmod 644 "$D/private/secret"
	local shadow_head
	shadow_head=$(head -c 12 /etc/shadow)
	run "$SCMCTL" container run --bind "$D" -- sh -c \
		"$H read /etc/shadow; $H read /etc/gshadow; $H open /root; $H read $D/private/secret; $H read /proc/kpageflags; $H read /proc/slabinfo; cat /etc/shadow; echo done"
	echo "$output"
	[[ "$output" == *"read /etc/shadow: EACCES"* ]]
	[[ "$output" == *"read /etc/gshadow: EACCES"* ]]
	[[ "$output" == *"open /root: ENOENT"* ]]
	[[ "$output" == *"read $D/private/secret: EACCES"* ]]
	[[ "$output" == *"read /proc/kpageflags: EACCES"* ]]
	[[ "$output" == *"read /proc/slabinfo: EACCES"* ]]
	[[ "$output" == *"cat: /etc/shadow: Permission denied"* ]]
	[[ "$output" != *"s3cret-$$"* && "$output" != *"$shadow_head"* ]]
	# /etc itself is there, with what programs need
	run "$SCMCTL" container run -- sh -c 'grep -c "^root:" /etc/passwd'
	[ "$output" = 1 ]
}

@test "root: /home, /root, /var, /srv, /mnt, /media, /opt are absent; /usr, /bin, /etc are there" {
	run "$SCMCTL" container run -- sh -c \
		"for p in /home /root /var /srv /mnt /media /opt /usr /bin /etc /lib; do $H open \$p; done; readlink /bin"
	echo "$output"
	for p in /home /root /var /srv /mnt /media /opt; do
		[[ "$output" == *"open $p: ENOENT"* ]]
	done
	for p in /usr /bin /etc /lib; do
		[[ "$output" == *"open $p: OK"* ]]
	done
	# a link into /usr on the host is a link here too
	[ "$(tail -1 <<<"$output")" = "$(readlink /bin)" ]
}

@test "root: files made on a writable bind belong to the mapped uid; a setuid file is not setuid-root" {
	mkdir "$D/w"
	chmod 777 "$D/w"
	run "$SCMCTL" container run --bind "$D/w:/w:rw" -- sh -c \
		'touch /w/f && cp /bin/sh /w/sush && chmod 4755 /w/sush && ls -ln /w'
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(stat -c %u:%g "$D/w/f")" = "$START:$START" ]
	[ "$(stat -c %u "$D/w/sush")" = "$START" ]
	# Run on the host by another user, it is that user or the mapped
	# uid, never root.
	local who
	who=$(setpriv --reuid scmtest --regid scmtest --clear-groups "$D/w/sush" -p -c 'id -u' 2>&1)
	echo "host run: $who"
	[ "$who" != 0 ]
	# Read-only unless :rw
	run "$SCMCTL" container run --bind "$D/w:/w" -- sh -c 'touch /w/g'
	[ "$status" -ne 0 ]
	[ ! -e "$D/w/g" ]
	# The mounts a container gets are nosuid (its root, /usr, /tmp, binds).
	run "$SCMCTL" container run --bind "$D/w:/w:rw" -- sh -c "awk '\$5 == \"/\" || \$5 == \"/usr\" || \$5 == \"/tmp\" || \$5 == \"/w\" {print \$5, \$6}' /proc/self/mountinfo"
	echo "$output"
	[ "$(grep -c nosuid <<<"$output")" -eq 4 ]
}

@test "root: --bind refuses what is not a clean absolute path" {
	run "$SCMCTL" container run --bind "$D/nothere" -- true
	[ "$status" -ne 0 ]
	[[ "$output" == *"$D/nothere"* ]]
	run "$SCMCTL" container run --bind "$D:relative" -- true
	[ "$status" -ne 0 ]
	[[ "$output" == *"--bind wants SRC[:DST]"* ]]
	run "$SCMCTL" container run --bind "$D:/x/../etc" -- true
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"without '.', '..'"* ]]
	scmd_alive
}

@test "root: the container cannot chmod, chown or rename its endpoint; the host inode is unchanged" {
	"$SCMCTL" container run -d --name ep1 -- sleep 300
	wait_state ep1 running
	local sock before
	sock=$(ep ep1)
	before=$(stat -c '%a %u %g %i' "$sock")
	echo "before: $before"
	[ "$before" = "600 $START $(stat -c %g "$sock") $(stat -c %i "$sock")" ]
	run "$SCMCTL" container exec ep1 -- sh -c \
		'chmod 666 /run/scm/scm.sock; chown 5:5 /run/scm/scm.sock; mv /run/scm/scm.sock /run/scm/x; touch /run/scm/y; ls -l /run/scm'
	echo "$output"
	[[ "$output" == *"chmod: changing permissions of '/run/scm/scm.sock': Read-only file system"* ]]
	[[ "$output" == *"Read-only file system"*"Read-only file system"*"Read-only file system"* ]]
	[ "$(stat -c '%a %u %g %i' "$sock")" = "$before" ]
	[ ! -e "$(dirname "$sock")/x" ] && [ ! -e "$(dirname "$sock")/y" ]
	# and it still works from inside
	run "$SCMCTL" container exec ep1 -- "$H" connect-unix /run/scm/scm.sock
	[[ "$output" == *"connect /run/scm/scm.sock: OK"* ]]
}

@test "root: host processes outside the container's ids cannot use its endpoint (mode, then SO_PEERCRED, audited)" {
	"$SCMCTL" container run -d --name ep2 --bind "$SCM_SRC/stubs/idl" --env SCM_IDL_PATH="$SCM_SRC/stubs/idl" -- sleep 300
	wait_state ep2 running
	local sock
	sock=$(ep ep2)
	# Another host user: the socket's mode keeps it out.
	run setpriv --reuid scmtest --regid scmtest --clear-groups "$H" connect-unix "$sock"
	echo "$output"
	[[ "$output" == *"EACCES"* ]]
	# Host root gets past the mode; scmd refuses it by its credentials,
	# before reading any request, and says why.
	run "$SCMCTL" call --endpoint "$sock" echo ping
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"endpoint 'ep2' belongs to a container: uid 0 is not one of its ids"* ]]
	grep '"endpoint-refused"' "$SCMT/run/audit.log" | grep -q '"endpoint":"ep2","uid":0'
	# The container itself is served: scmd answers it.
	run "$SCMCTL" container exec ep2 -- "$SCMCTL" call echo ping
	echo "$output"
	[[ "$output" == *"no service 'echo' is registered"*"(scmd)"* ]]
	scmd_alive
}

@test "root: a bundle's own mappings must lie inside the range; without them it gets the range" {
	mkdir -p "$D/b/rootfs" && cd "$D/b"
	crun spec
	python3 - "$START" <<'PY'
import json, sys
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/sh", "-c", "cat /proc/self/uid_map"]
c["root"] = {"path": "rootfs", "readonly": True}
for d in ["/bin", "/lib", "/lib64", "/usr"]:
    c["mounts"].append({"destination": d, "type": "bind", "source": d, "options": ["rbind", "ro"]})
c["linux"].pop("resources", None)
json.dump(c, open("config.json", "w"))
c["linux"]["namespaces"].append({"type": "user"})
c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": int(sys.argv[1]), "size": 1}]
json.dump(c, open("bad.json", "w"))
PY
	mkdir -p rootfs/bin rootfs/lib rootfs/lib64 rootfs/usr rootfs/proc rootfs/dev rootfs/tmp rootfs/sys rootfs/run/scm
	chmod -R a+rX "$D/b"
	run "$SCMCTL" container run --name b1 --bundle "$D/b"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(tr -s ' ' <<<"$output" | sed 's/^ //')" = "0 $START $COUNT" ]
	mv bad.json config.json
	run "$SCMCTL" container run --name b2 --bundle "$D/b"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"/linux/uidMappings/0: host ids 0-0 are outside the runtime's subordinate range $START-"* ]]
}

@test "scmd: --subids is checked; without it and without an scm entry the default range is used and said" {
	run "$SCMD" --runtime-dir "$SCMT/run2" --state-dir "$SCMT/state2" --subids 0:100
	[ "$status" -ne 0 ]
	[[ "$output" == *"--subids 0:100: expected START:COUNT"* ]]
	run "$SCMD" --runtime-dir "$SCMT/run2" --state-dir "$SCMT/state2" --subids 4294967000:1000
	[ "$status" -ne 0 ]
	if grep -q '^scm:' /etc/subuid 2>/dev/null && grep -q '^scm:' /etc/subgid 2>/dev/null; then
		skip "this host has scm entries in /etc/subuid and /etc/subgid"
	fi
	"$SCMD" --runtime-dir "$SCMT/run2" --state-dir "$SCMT/state2" --config "$SCMT/cfg" 2>"$SCMT/scmd2.log" &
	upid=$!
	wait_until 60 test -S "$SCMT/run2/control.sock"
	grep -q 'no "scm" entry in /etc/subuid and /etc/subgid; containers run as host ids 2147483648-2147549183' "$SCMT/scmd2.log"
	run env SCM_RUNTIME_DIR="$SCMT/run2" "$SCMCTL" container run -- cat /proc/self/uid_map
	[ "$(tr -s ' ' <<<"$output" | sed 's/^ //')" = "0 2147483648 65536" ]
}

@test "rootless: the container is its user; its endpoint refuses host root (SO_PEERCRED)" {
	local R
	R=$(mktemp -d /var/tmp/scm-idrl.XXXXXX)
	chmod 755 "$R"; chown scmtest "$R"
	# a rootless scmd has no range to give (no newuidmap)
	run setpriv --reuid scmtest --regid scmtest --clear-groups "$SCMD" --runtime-dir "$R/run" --state-dir "$R/state" --subids 100000:65536
	[ "$status" -ne 0 ]
	[[ "$output" == *"--subids needs root"* ]]
	setpriv --reuid scmtest --regid scmtest --clear-groups "$SCMD" --runtime-dir "$R/run" --state-dir "$R/state" --config "$R/cfg" \
		2>"$R/scmd.log" &
	upid=$!
	wait_until 60 test -S "$R/run/control.sock"
	as_user() { setpriv --reuid scmtest --regid scmtest --clear-groups env SCM_RUNTIME_DIR="$R/run" "$@"; }
	as_user "$SCMCTL" container run -d --name rl -- sleep 300
	rl_running() { as_user "$SCMCTL" container show rl 2>/dev/null | grep -q '"state":"running"'; }
	wait_until 60 rl_running
	local sock=$R/run/endpoints/rl/scm.sock p1
	[ "$(stat -c %U "$sock")" = scmtest ]
	p1=$(as_user "$SCMCTL" --json container show rl | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	[ "$(awk '/^Uid:/ {print $2}' "/proc/$p1/status")" = "$(id -u scmtest)" ]
	run env SCM_RUNTIME_DIR="$R/run" "$SCMCTL" call --endpoint "$sock" echo ping
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"uid 0 is not one of its ids"* ]]
	grep '"endpoint-refused"' "$R/run/audit.log" | grep -q '"endpoint":"rl","uid":0' 
	# the same minimal view
	run as_user "$SCMCTL" container run -- sh -c "$H read /etc/shadow; $H open /home; $H open /root; $H open /var; $H open /usr"
	echo "$output"
	[[ "$output" == *"read /etc/shadow: EACCES"* && "$output" == *"open /home: ENOENT"* ]]
	[[ "$output" == *"open /root: ENOENT"* && "$output" == *"open /var: ENOENT"* && "$output" == *"open /usr: OK"* ]]
	run as_user "$SCMCTL" container exec rl -- chmod 666 /run/scm/scm.sock
	[ "$status" -ne 0 ]
	[ "$(stat -c %a "$sock")" = 600 ]
	as_user "$SCMCTL" container kill rl >/dev/null 2>&1 || true
	kill "$upid"; wait "$upid" || true
	upid=
	rm -rf "$R"
}

@test "as a new user would: id, ls /root, cat /etc/shadow" {
	run "$SCMCTL" container run -- sh -c 'id; ls /root; cat /etc/shadow'
	echo "$output"
	[[ "$output" == *"uid=0(root) gid=0(root)"* ]]
	[[ "$output" == *"ls: cannot access '/root': No such file or directory"* ]]
	[[ "$output" == *"cat: /etc/shadow: Permission denied"* ]]
}

@test "root: scmd's supplementary groups reach neither a container nor an exec into it" {
	setpriv --groups 0,4 "$SCMD" --runtime-dir "$SCMT/run3" --state-dir "$SCMT/state3" --config "$SCMT/cfg" --subids "$START:$COUNT" \
		2>"$SCMT/scmd3.log" &
	upid=$!
	wait_until 60 test -S "$SCMT/run3/control.sock"
	grep -q '^Groups:.*\b4\b' "/proc/$upid/status"
	local c="env SCM_RUNTIME_DIR=$SCMT/run3 $SCMCTL"
	$c container run -d --name g -- sleep 300
	g_running() { $c container show g 2>/dev/null | grep -q '"state":"running"'; }
	wait_until 60 g_running
	run $c container exec g -- grep ^Groups: /proc/self/status
	echo "exec: $output"
	[ "$(tr -d '[:space:]' <<<"$output")" = "Groups:" ]
	local p1
	p1=$($c --json container show g | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
	grep ^Groups: "/proc/$p1/status"
	[ "$(grep ^Groups: "/proc/$p1/status" | tr -d '[:space:]')" = "Groups:" ]
	$c container kill g >/dev/null 2>&1 || true
}

@test "root: scmd's runtime directory is hidden when it lies in the tree the containers see" {
	local R=$SCM_BUILD/rt-idtest-$$
	"$SCMD" --runtime-dir "$R" --state-dir "$SCMT/state4" --config "$SCMT/cfg" --subids "$START:$COUNT" 2>"$SCMT/scmd4.log" &
	upid=$!
	wait_until 60 test -S "$R/control.sock"
	run env SCM_RUNTIME_DIR="$R" "$SCMCTL" container run -- sh -c "ls -A '$R'; $H connect-unix '$R/control.sock'; ls '$SCM_BUILD/bin'"
	echo "$output"
	kill "$upid"; wait "$upid" || true
	upid=
	rm -rf "$R"
	[[ "$output" == *"connect $R/control.sock: ENOENT"* ]]
	[[ "$output" != *"endpoints"* ]]
	[[ "$output" == *"scmctl"* ]] # the rest of the tree is there
}
