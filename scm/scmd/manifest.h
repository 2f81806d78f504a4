/* manifest.h: a service manifest, parsed and validated (manifest.c).
 *
 * The JSON of CONFIG/services/NAME.json or of `scmctl service register`
 * becomes this struct at the boundary; the registry (registry.c) then
 * finds the interface and starts the provider. Kept apart from the
 * registry so the parser can be fuzzed alone (tests/fuzz/fuzz_manifest). */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "scm/scm.h"

struct json_object;

enum activation { ACT_ON_DEMAND, ACT_ALWAYS };
enum restart { RESTART_NO, RESTART_ON_FAILURE, RESTART_ALWAYS };

struct manifest {
	char *name;        /* 1..64 of a-z 0-9 . _ - */
	char *iface;       /* an interface name, safe as a file name */
	char **exec;       /* argv, at least one */
	char **allow;      /* endpoint labels or globs; NULL: none */
	enum activation activation;
	enum restart restart;
	unsigned timeout_ms;
	bool in_container;
	char **container_profiles;
	bool recover; /* a crash keeps the channels, restored from a checkpoint */
};

/* Errors name the member (origin: /key: what is wrong). ret is filled only
 * on success; manifest_done() frees what it holds. */
int manifest_parse(struct json_object *m, const char *origin, struct manifest *ret, scm_error **ret_err);
int manifest_parse_text(const char *text, size_t len, const char *origin, struct manifest *ret,
			scm_error **ret_err);
void manifest_done(struct manifest *m);
