# wait_until SECS CMD...: runs CMD until it succeeds, failing after SECS.
# The bound is for a loaded machine (two test lanes, CI), not a timing.
# helpers.bash and tests/helper/container-common.bash source this; a bats
# file that loads neither has `load wait`.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# bare CMD...: becomes CMD (exec) with no descriptor above 2. bats waits
# for every process that holds one of its own, so a helper left running
# in the background (a `sleep` keeping a client's stdin open) must not,
# or the test lasts as long as the sleep. Use in a subshell: `< <(bare sleep 60)`.
bare() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
	done
	exec "$@"
}
