# container-common.bash: shared set-up for tests/bats/container-*.bats.
# Tests run as root (the test runner's user) and as an unprivileged user
# (scmtest, created here if missing) through setpriv, with the binaries
# copied to a world-readable directory so the user can run them wherever
# the build tree lives.

TEST_USER=scmtest
. "$SCM_SRC/tests/bats/wait.bash" # wait_until

container_setup_file() {
	[ "$(id -u)" = 0 ] || { echo "container tests need root (they also test rootless through $TEST_USER)" >&2; return 1; }
	[ -x "$SCM_BUILD/bin/scm-run" ] || { echo "no $SCM_BUILD/bin/scm-run: build first" >&2; return 1; }
	[ -x "$SCM_BUILD/libexec/scm-test-helper" ] || { echo "no scm-test-helper" >&2; return 1; }
	if ! getent passwd "$TEST_USER" >/dev/null; then
		useradd -r -M -s /usr/sbin/nologin "$TEST_USER" || return 1
	fi
	# Not under /tmp or /run: the quick path hides those.
	BIN=$(mktemp -d /var/tmp/scm-ctest.XXXXXX)
	chmod 755 "$BIN"
	cp "$SCM_BUILD/bin/scm-run" "$SCM_BUILD/libexec/scm-test-helper" "$BIN/"
	export BIN
}

container_teardown_file() {
	[ -n "${BIN:-}" ] && rm -rf "$BIN"
}

RUN() { "$BIN/scm-run" "$@"; }
H() { echo "$BIN/scm-test-helper"; }

# as WHO CMD...: WHO is root, user, or remap (root with a subordinate
# range, as scmd runs containers: CMD must be scm-run).
as() {
	local who=$1; shift
	if [ "$who" = root ]; then
		"$@"
	elif [ "$who" = remap ]; then
		local prog=$1; shift
		"$prog" --subids 2147483648:65536 "$@"
	else
		setpriv --reuid="$TEST_USER" --regid="$TEST_USER" --clear-groups --reset-env \
			env PATH=/usr/local/bin:/usr/bin:/bin "$@"
	fi
}

# A bundle from `crun spec` with rootfs in a fresh directory holding only
# mount points; the helper is bound in at /helper. $1 = dir, rest = args.
make_bundle() {
	local dir=$1; shift
	mkdir -p "$dir/rootfs"
	(cd "$dir" && crun spec) || return 1
	local args
	args=$(printf '%s\n' /helper "$@" | jq -R . | jq -s .)
	jq --arg h "$BIN/scm-test-helper" --argjson a "$args" \
		'.process.terminal=false | .process.args=$a |
		 .mounts += [{"destination":"/helper","type":"bind","source":$h,"options":["rbind","ro"]}]' \
		"$dir/config.json" >"$dir/config.json.new" && mv "$dir/config.json.new" "$dir/config.json"
	chmod -R a+rX "$dir"
}

# bundle_own WHO DIR: a bundle's files belong to whoever is root inside:
# the user (rootless), the range's first id (remap), root.
bundle_own() {
	case $1 in
	user) chown -R "$TEST_USER" "$2";;
	remap) chown -R 2147483648:2147483648 "$2";;
	esac
}

# Edits a bundle's config.json with a jq program.
bundle_edit() {
	local dir=$1 prog=$2
	jq "$prog" "$dir/config.json" >"$dir/config.json.new" && mv "$dir/config.json.new" "$dir/config.json"
}

mount_count() { wc -l </proc/self/mountinfo; }

# Every cgroup directory the runtime could have left for id $1.
leftover_cgroups() {
	find /sys/fs/cgroup -maxdepth 4 -type d -path "*/scm/$1" 2>/dev/null
}
