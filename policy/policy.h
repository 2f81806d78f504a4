/* policy.h: scm's policy engine, the API scmd, the container runtime and
 * `scmctl policy` use.
 *
 * Profiles (JSON files NAME.json in a directory, see docs/policy.md) are
 * parsed into typed structs at the edge; a container's list of profiles is
 * merged by priority into an effective profile whose service part is
 * compiled into a hash table, so a connect decision is one lookup. Every
 * effective rule remembers its origin (profile, file, JSON pointer) and the
 * lower rules it overrode, which explain and lint print.
 *
 * Conventions as in scm.h: 0 or a positive SCM_E_* code for an expected
 * refusal, a negative errno for breakage, *ret_err gets an observation chain,
 * ret_* untouched on failure. Stores, IDL sets and effective profiles are
 * immutable after they are built, so any number of threads may read them. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <scm/scm.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

#define POLICY_DEFAULT_DIR "/etc/scm/profiles"
#define POLICY_DEFAULT_IDL_DIR "/usr/share/scm/idl"
#define POLICY_FILE_MAX (1024u * 1024u) /* bytes per profile file */
#define POLICY_DEPTH_MAX 16             /* JSON nesting in a profile */
#define POLICY_PRIORITY_MAX 1000000     /* |priority| */

typedef struct policy_idl_set policy_idl_set;
typedef struct policy_profile policy_profile;
typedef struct policy_store policy_store;
typedef struct policy_effective policy_effective;

/* ---- interfaces the rules are checked against --------------------------- */

policy_idl_set *policy_idl_set_new(void);
policy_idl_set *policy_idl_set_free(policy_idl_set *s);
/* Adds every stubs/idl-style *.json file of dir (service name = the
 * "interface" field). A bad file fails the whole call, naming it. */
int policy_idl_set_load_dir(policy_idl_set *s, const char *dir, scm_error **ret_err);
int policy_idl_set_load_file(policy_idl_set *s, const char *path, scm_error **ret_err);
/* Adds (or replaces) one service with its method names (no parameter
 * types, so argument constraints on it are not type-checked). */
int policy_idl_set_add(policy_idl_set *s, const char *service, const char *const *methods,
		       size_t n_methods, scm_error **ret_err);
/* Adds service with the methods (and parameters) of an already known
 * interface. SCM_E_NOT_FOUND when the interface is unknown. */
int policy_idl_set_alias(policy_idl_set *s, const char *service, const char *interface,
			 scm_error **ret_err);
size_t policy_idl_set_size(const policy_idl_set *s);

/* ---- profiles and stores ------------------------------------------------ */

/* Parses one profile file (hostile input welcome: every error names the
 * file, the JSON pointer, and for syntax errors line and column). */
int policy_profile_load(const char *path, policy_profile **ret, scm_error **ret_err);
/* Same for bytes in memory; `file` is only used in messages and origins. */
int policy_profile_parse(const char *file, const char *data, size_t len, policy_profile **ret,
			 scm_error **ret_err);
policy_profile *policy_profile_free(policy_profile *p);
const char *policy_profile_name(const policy_profile *p);
int policy_profile_priority(const policy_profile *p);

/* Loads every NAME.json of dir, then lints the whole set against idl (NULL:
 * skip the service/method checks). Any error (parse or lint) fails the call
 * and keeps nothing; warnings are allowed. */
int policy_store_load(const char *dir, const policy_idl_set *idl, policy_store **ret,
		      scm_error **ret_err);
/* Builds a store from explicit files (scmctl policy lint FILES). No lint. */
int policy_store_load_files(char *const *paths, size_t n, policy_store **ret, scm_error **ret_err);
/* Same as load_dir without the lint step. */
int policy_store_load_dir(const char *dir, policy_store **ret, scm_error **ret_err);
policy_store *policy_store_free(policy_store *s);
size_t policy_store_size(const policy_store *s);
/* Profiles are kept sorted by name; index < size. */
const policy_profile *policy_store_at(const policy_store *s, size_t i);
const policy_profile *policy_store_get(const policy_store *s, const char *name);

/* ---- lint --------------------------------------------------------------- */

typedef enum policy_severity {
	POLICY_LINT_WARNING = 1, /* shadowed or dead rules */
	POLICY_LINT_ERROR = 2,   /* conflicts, unknown services, ... */
} policy_severity;

typedef struct policy_finding {
	policy_severity severity;
	char *file;    /* the profile file */
	char *pointer; /* JSON pointer in it ("" for the document) */
	unsigned line, col; /* where that value starts, 0 if unknown */
	char *kind;    /* "conflict", "shadowed", "dead", "unknown-service",
			  "unknown-method", "unknown-param", "bad-constraint",
			  "prefix-on-path" */
	char *message; /* one line, names both sides for conflicts */
} policy_finding;

typedef struct policy_lint_report {
	policy_finding *findings; /* sorted by file, pointer */
	size_t n_findings;
	size_t n_errors;
	size_t n_warnings;
} policy_lint_report;

/* Lints profiles against idl (NULL: skip the service/method checks).
 * names NULL: the whole store as a profile directory: every profile, and
 * the profiles of each priority merged as a group, for conflicts between
 * any two of them (errors: any container may carry just those two,
 * whatever a higher profile would mask). names given: that combination, as one container carries
 * it: conflicts are errors, and rules the combination makes useless are
 * warnings (shadowed, dead). SCM_E_NOT_FOUND for an unknown name. */
int policy_lint(const policy_store *s, const policy_idl_set *idl, const char *const *names, size_t n,
		policy_lint_report **ret, scm_error **ret_err);
policy_lint_report *policy_lint_report_free(policy_lint_report *r);
/* "file:line:col: error: pointer: message [kind]" lines. */
void policy_lint_report_print(const policy_lint_report *r, FILE *f);

/* ---- effective profiles ------------------------------------------------- */

/* Merges the named profiles of store (in any order: the result does not
 * depend on it) into an effective profile. idl names the known services
 * and their methods, against which globs and "*" are expanded; the set is
 * copied, the caller may free it. SCM_E_NOT_FOUND for an unknown profile
 * name, SCM_E_INVALID for a name given twice. Conflicts do not fail: they
 * deny (fail closed) and are listed by policy_effective_to_json(). */
int policy_effective_build(const policy_store *store, const char *const *names, size_t n,
			   const policy_idl_set *idl, policy_effective **ret, scm_error **ret_err);
/* Effective profiles are reference counted so scmd can swap one at reload
 * while a connect still reads the old one. */
policy_effective *policy_effective_ref(policy_effective *e);
policy_effective *policy_effective_unref(policy_effective *e);
/* The merged profile with origins, overrides and conflicts (what
 * `scmctl policy effective` prints). */
int policy_effective_to_json(const policy_effective *e, struct json_object **ret,
			     scm_error **ret_err);
/* Renders policy_effective_to_json()'s JSON (also what scmd's
 * policy.effective returns) as text. */
void policy_effective_print(struct json_object *effective, FILE *f);
/* Number of equal-priority conflicts the merge met (each fails closed). */
size_t policy_effective_conflicts(const policy_effective *e);

/* ---- connect decisions -------------------------------------------------- */

typedef struct policy_decision {
	bool allowed;           /* at least one method is allowed */
	const char *origin;     /* the deciding rule(s), human readable */
	const char *grant_json; /* {"methods":[..],"constraints":{..}}; NULL if denied */
	void *priv_;            /* private: storage of slow-path decisions */
} policy_decision;

/* Decides a connect to service: a hash lookup for every service known at
 * build time (IDL set or named in a rule); other names go through the glob
 * rules. Returns 0 (allowed), SCM_E_DENIED (ret->allowed false, origin says
 * why), or -ENOMEM. The strings borrow from e (and ret->priv_): keep e
 * referenced until policy_decision_clear(). */
int policy_decide(const policy_effective *e, const char *service, policy_decision *ret);
void policy_decision_clear(policy_decision *d);

/* Decides one call (service, method, args JSON object or NULL) exactly as
 * the provider skeleton would with the grant: 0 allowed, SCM_E_DENIED. */
int policy_check_call(const policy_effective *e, const char *service, const char *method,
		      struct json_object *args, char **ret_reason);

/* Re-evaluates a live channel after a reload: *ret_keep is true when the
 * grant it was made with (grant_json as policy_decide gave it) is still
 * covered by e, i.e. every granted method is still allowed with
 * constraints no looser than before. Otherwise scmd revokes the channel;
 * *ret_reason (optional, free()) says why. */
int policy_grant_recheck(const policy_effective *e, const char *service, const char *grant_json,
			 bool *ret_keep, char **ret_reason, scm_error **ret_err);

/* Explains a decision: {"service","method","decision":"allow"|"deny",
 * "rule":{..}|null,"origin":"..","overrode":[..],"conflict":[..],
 * "args":{"checked":bool,"ok":bool,"reason":".."}}. method NULL: the
 * connect decision. args_json may be NULL. */
int policy_explain(const policy_effective *e, const char *service, const char *method,
		   const char *args_json, struct json_object **ret, scm_error **ret_err);
/* service "@clipboard", method FROM, args_json TO (a name, not JSON):
 * explains the clipboard flow FROM -> TO as this effective profile (one
 * end of it) decides it. */
/* The effective rules of one kind a grant carries to a provider whose
 * interface asks for them (IDL "grant_rules"; the grant's "rules" member):
 * "clipboard" gives the clipboard rules in merge order, as
 * scm-internal/clipflow.h's scm_clip_rules_parse() reads them. An unknown
 * kind is SCM_E_INVALID naming it; policy_grant_rule_known() says whether
 * a kind exists (scmd refuses to register a service asking for another). */
int policy_grant_rules(const policy_effective *e, const char *kind, struct json_object **ret, scm_error **ret_err);
bool policy_grant_rule_known(const char *kind);
/* Renders policy_explain()'s JSON (also what scmd's policy.explain returns)
 * as text. */
void policy_explain_print(struct json_object *explain, FILE *f);

/* ---- sandbox ------------------------------------------------------------ */

typedef enum policy_network {
	POLICY_NET_NONE = 0, /* the default */
	POLICY_NET_LOOPBACK = 1,
	POLICY_NET_HOST = 2,
} policy_network;

typedef struct policy_sandbox_mount {
	const char *source;
	const char *destination;
	bool readonly;
} policy_sandbox_mount;

/* The effective sandbox: names sorted, each listed once with its winner.
 * Syscalls not listed keep the container runtime's default (its default
 * list, which syscalls_allow widens and syscalls_deny narrows);
 * capabilities not listed are dropped. Limits of 0 are unset (the
 * runtime's default). Network: none and loopback both mean a private
 * network namespace (loopback only); host shares the host's. */
typedef struct policy_sandbox {
	const char *const *syscalls_allow;
	size_t n_syscalls_allow;
	const char *const *syscalls_deny; /* explicitly denied (for -EPERM vs kill) */
	size_t n_syscalls_deny;
	const char *const *caps_allow; /* "CAP_NET_BIND_SERVICE", ... */
	size_t n_caps_allow;
	const policy_sandbox_mount *mounts; /* sorted by destination */
	size_t n_mounts;
	policy_network network;
	uint64_t memory_max; /* bytes */
	uint64_t pids_max;
	uint64_t cpu_weight; /* 1..10000 */
	uint64_t log_max_bytes; /* the container log on disk, all files together */
	uint64_t log_files;     /* rotated files beside the current one, 1..7 */
} policy_sandbox;

const policy_sandbox *policy_effective_sandbox(const policy_effective *e);
/* The same as the container runtime's sandbox JSON (the input of
 * container_sandbox_parse()): {"syscalls":{"deny","allow"},"capabilities",
 * "mounts":[{"source","destination","writable"}],"network":bool,"memory",
 * "pids","cpu":{"shares"},"log":{"max_bytes","files"}}. Syscalls not listed keep the runtime's
 * default; capabilities not listed are dropped. *ret is malloc'd. */
int policy_sandbox_to_json(const policy_effective *e, char **ret, scm_error **ret_err);

/* ---- tools -------------------------------------------------------------- */

/* Who may call what: one DOT graph of the store (profiles -> services,
 * edge labels = methods, dashed = denied). */
int policy_graph_dot(const policy_store *s, const policy_idl_set *idl, FILE *out,
		     scm_error **ret_err);
/* Reads an audit log (JSON lines) and writes, per caller profile set,
 * the allow rules that would have let the denied connects through, as a
 * JSON array of suggestions (for review, never applied). */
int policy_suggest(FILE *audit, const char *audit_name, struct json_object **ret,
		   scm_error **ret_err);

#ifdef __cplusplus
}
#endif
