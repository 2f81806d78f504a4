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
