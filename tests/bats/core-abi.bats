#!/usr/bin/env bats
# libscm's ABI is exactly its installed headers: libscm.so exports the
# functions they declare, at version LIBSCM_1, and nothing else (no wire
# codec, out queues or chain helpers: those are scm-internal/wire.h, for
# the tree's own programs, which link libscm.a); the version script
# stubs/libscm.sym lists the same names, so neither can drift.

setup_file() {
	export STAGE=$(mktemp -d /tmp/scm-abi.XXXXXX)
	make -s -C "$SCM_SRC" B="${SCM_BUILD#$SCM_SRC/}" SAN="${SCM_SAN:-}" DESTDIR="$STAGE" PREFIX=/usr install >/dev/null
}
teardown_file() { rm -rf "$STAGE"; }

# The scm functions the installed headers declare, one per line, sorted:
# after preprocessing, a name followed by "(" is a declaration (a function
# pointer type reads "(*name)"); static inline helpers (e.g. the cleanup
# scm_error_freep) live in the caller and are not exported, so they are
# left out.
declared() {
	local h text
	text=$(for h in "$STAGE"/usr/include/scm/*.h; do echo "#include <scm/${h##*/}>"; done |
		cc -E -P -I"$STAGE/usr/include" $(pkg-config --cflags json-c) -x c - | tr -s ' \t\n' ' ')
	comm -23 <(grep -oE '\bscm[A-Za-z0-9_]* ?\(' <<<"$text" | sed 's/ *($//' | sort -u) \
		<(grep -oE 'static (inline|__inline__) [^;{(]*\bscm[A-Za-z0-9_]* ?\(' <<<"$text" |
			grep -oE '\bscm[A-Za-z0-9_]* ?\($' | sed 's/ *($//' | sort -u)
}

@test "libscm.so exports exactly the functions its installed headers declare" {
	declared >"$STAGE/declared"
	[ "$(wc -l <"$STAGE/declared")" -gt 40 ]
	nm -D --defined-only "$STAGE/usr/lib/libscm.so.1" >"$STAGE/nm"
	# Every exported symbol is a function of version LIBSCM_1 (the one
	# absolute symbol is the version node itself).
	run awk '!($2 == "T" && $3 ~ /@@LIBSCM_1$/) && !($2 == "A" && $3 == "LIBSCM_1")' "$STAGE/nm"
	[ "$status" -eq 0 ]
	[ -z "$output" ] || { echo "exported but not a LIBSCM_1 function: $output"; false; }
	awk '$2 == "T" { sub(/@@LIBSCM_1$/, "", $3); print $3 }' "$STAGE/nm" | sort >"$STAGE/exported"
	run comm -3 "$STAGE/declared" "$STAGE/exported"
	[ -z "$output" ] || { echo "declared (left) vs exported (right) differ:"; echo "$output"; false; }
}

@test "the version script lists exactly the declared functions" {
	declared >"$STAGE/declared"
	sed -n '/^global:/,/^local:/p' "$SCM_SRC/stubs/libscm.sym" | grep -oE '^[[:space:]]*scm[A-Za-z0-9_]*;' |
		tr -d ' \t;' | sort >"$STAGE/listed"
	run comm -3 "$STAGE/declared" "$STAGE/listed"
	[ -z "$output" ] || { echo "declared (left) vs stubs/libscm.sym (right) differ:"; echo "$output"; false; }
}

@test "no internal symbol is reachable through libscm.so" {
	for s in scm_wire_send scm_wire_recv scm_wire_decode scm_outq_send scm_json_parse \
		scm_error_push scm_error_copy; do
		nm -D --defined-only "$STAGE/usr/lib/libscm.so.1" | grep -qw "$s" && { echo "$s exported"; false; }
		# ... while the static library keeps them for the tree's programs
		nm --defined-only "$STAGE/usr/lib/libscm.a" | grep -qw "T $s" || { echo "$s missing from libscm.a"; false; }
	done
}

@test "each installed header compiles on its own and none is internal" {
	[ ! -e "$STAGE/usr/include/scm-internal" ]
	[ ! -e "$STAGE/usr/include/scm/wire.h" ]
	for h in "$STAGE"/usr/include/scm/*.h; do
		! grep -q 'scm-internal' "$h"
		echo "#include <scm/${h##*/}>" | cc -fsyntax-only -Wall -Werror -I"$STAGE/usr/include" \
			$(pkg-config --cflags json-c) -x c -
	done
}
