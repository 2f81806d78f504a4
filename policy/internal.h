/* internal.h: the typed structs behind policy.h, shared by the files of
 * policy/ only. A profile is parsed once into these; nothing past
 * profile.c sees a json_object of a profile. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonscan.h"
#include "scmutil.h"
#include "policy.h"

/* ---- values and argument constraints ------------------------------------ */

typedef enum pval_kind { PV_BOOL, PV_INT, PV_DOUBLE, PV_STRING } pval_kind;

typedef struct pval {
	pval_kind kind;
	bool b;
	int64_t i;
	double d;
	char *s;
} pval;

typedef enum pcons_kind { PC_EQ, PC_PREFIX, PC_PATH_PREFIX, PC_RANGE, PC_IN } pcons_kind;

typedef struct pcons {
	char *param;
	pcons_kind kind;
	pval v;      /* eq; prefix and path_prefix (string) */
	pval lo, hi; /* range (numbers) */
	pval *set;   /* in */
	size_t n_set;
} pcons;

/* ---- profiles ----------------------------------------------------------- */

/* One per-service setting an allow rule carries (settings.c). */
typedef struct rsetting {
	char *name;
	pval value;
} rsetting;

typedef struct prule {
	char *service;
	bool glob;
	char **methods; /* sorted, unique */
	size_t n_methods;
	bool all_methods;
	bool allow;
	pcons *args; /* sorted by param */
	size_t n_args;
	rsetting *settings; /* sorted by name; allow rules only */
	size_t n_settings;
	char *pointer; /* "/services/3" */
	size_t index;
	const policy_profile *profile;
} prule;

/* One sandbox setting as a profile states it: key ("syscall:read",
 * "cap:CAP_CHOWN", "mount:/data", "network", "limit:memory")
 * and a canonical value string, so one merge serves every kind. */
typedef struct psetting {
	char *key;
	char *value;
	char *pointer;
	const policy_profile *profile;
} psetting;

/* A clipboard rule (policy/clipboard.c): the flow from -> to, patterns
 * as scm-internal/clipflow.h defines them. */
typedef struct pclip {
	char *from, *to;
	bool allow;
	char *pointer; /* "/clipboard/2" */
	size_t index;
	const policy_profile *profile;
} pclip;

/* A D-Bus bridge rule (policy/dbus.c): which method calls a container may
 * make on a host bus through the bridge provider. */
typedef struct pdbus {
	char *bus;         /* "session", "system" or an address */
	char *destination; /* a well-known name */
	char *path_prefix; /* canonical object path prefix */
	char *interface;
	char **methods; /* sorted, unique; NULL with all_methods */
	size_t n_methods;
	bool all_methods;
	bool allow;
	pcons *args; /* "arg0".. "arg63", sorted by param; allow rules only */
	size_t n_args;
	char *pointer; /* "/dbus/1" */
	size_t index;
	const policy_profile *profile;
} pdbus;

struct policy_profile {
	char *name;
	char *file;
	char *description;
	int priority;
	prule *rules;
	size_t n_rules;
	psetting *settings; /* sorted by key */
	size_t n_settings;
	pclip *clips; /* file order */
	size_t n_clips;
	pdbus *dbus; /* file order */
	size_t n_dbus;
	jscan_result pos; /* where values start, for messages */
};

struct policy_store {
	unsigned ref;
	policy_profile **profiles; /* sorted by name */
	size_t n;
};

/* ---- interfaces --------------------------------------------------------- */

typedef struct pidl_param {
	char *name;
	char *type; /* bool int uint double string bytes fd json */
	bool is_path; /* "format": "path": a file path, constrained by path_prefix */
} pidl_param;

typedef struct pidl_method {
	char *name;
	pidl_param *params;
	size_t n_params;
	bool params_known; /* from an IDL file: params is the complete list */
} pidl_method;

typedef struct pidl_service {
	char *name;
	pidl_method *methods; /* sorted by name */
	size_t n_methods;
	/* the interface's settings schema (name and type; doc not kept):
	 * what an allow rule's "settings" may hold */
	struct scm_idl_setting *settings;
	size_t n_settings;
} pidl_service;

struct policy_idl_set {
	pidl_service *services; /* sorted by name */
	size_t n;
	size_t cap;
};

const pidl_service *pidl_find(const policy_idl_set *s, const char *name);
const pidl_method *pidl_find_method(const pidl_service *s, const char *name);
const pidl_param *pidl_find_param(const pidl_method *m, const char *name);
policy_idl_set *pidl_copy(const policy_idl_set *s);
/* NULL when svc's interface declares setting name and v fits it, else why
 * (static text). */
const char *pidl_setting_check(const pidl_service *svc, const char *name, struct json_object *v);

/* ---- effective profiles ------------------------------------------------- */

typedef enum emethod_state { EM_DEFAULT_DENY, EM_ALLOW, EM_DENY, EM_CONFLICT } emethod_state;

typedef struct emethod {
	char *name; /* "*" for methods no IDL names */
	emethod_state state;
	const prule *winner;     /* NULL for default deny */
	const prule **ties;      /* other rules at the winning priority */
	size_t n_ties;
	const prule **overrode;  /* lower-priority rules that matched */
	size_t n_overrode;
} emethod;

typedef struct eservice {
	char *name;
	bool in_idl;
	emethod *methods; /* sorted by name; a "*" entry last when present */
	size_t n_methods;
	bool allowed;
	char *origin;
	char *grant_json;
	/* the grant's "settings" alone, or NULL when it has none: a reload's
	 * recheck parses this (rarely there) rather than the whole grant */
	char *settings_json;
} eservice;

typedef struct esetting {
	const psetting *winner; /* first at the top priority */
	const psetting **ties;
	size_t n_ties;
	const psetting **overrode;
	size_t n_overrode;
	bool conflict;
	char *value; /* effective value (fail-closed one on conflict) */
} esetting;

/* effective_build() flags, for lint: it builds many throw-away merges */
enum {
	EB_SPARSE = 1 << 0,     /* compile only services some rule matches */
	EB_BORROW_IDL = 1 << 1, /* use the caller's IDL set, do not copy it */
};

struct policy_effective {
	unsigned ref;
	unsigned flags;
	policy_store *store; /* referenced: rules point into it */
	policy_idl_set *idl;
	const policy_profile **profiles; /* priority desc, then name */
	size_t n_profiles;
	const prule **globs; /* glob rules, merge order */
	size_t n_globs;
	eservice *services; /* sorted by name */
	size_t n_services;
	uint32_t *slots; /* open addressing: index + 1, 0 empty */
	size_t n_slots;
	esetting *settings; /* sorted by key */
	size_t n_settings;
	size_t n_conflicts;
	policy_sandbox sandbox;
	void *sandbox_mem; /* arrays behind sandbox */
};

/* merge.c */
int effective_build(const policy_store *store, const char *const *names, size_t n,
		    const policy_idl_set *idl, unsigned flags, policy_effective **ret, scm_error **ret_err);
int eservice_compile(const policy_effective *e, const char *name, const prule *const *cands,
		     size_t n_cands, eservice *ret);
void eservice_done(eservice *s);
const eservice *effective_lookup(const policy_effective *e, const char *service);
/* sandbox.c */
int sandbox_merge(policy_effective *e);
void sandbox_done(policy_effective *e);

/* clipboard.c */
/* Could some name match both globs (clipboard patterns)? */
bool clip_overlap(const char *a, const char *b);
/* The effective clipboard rules, merge order, as a grant carries them. */
struct json_object *clip_rules_json(const policy_effective *e);
int clip_explain(const policy_effective *e, const char *from, const char *to, struct json_object **ret,
		 scm_error **ret_err);
void clip_explain_print(struct json_object *x, FILE *f);

/* profile.c: the parse context and its helpers, for the parsers of
 * profile sections in other files (profile-sandbox.c, dbus.c) */
typedef struct pctx {
	policy_profile *p;
	scm_error **ret_err;
} pctx;
int prof_err(pctx *c, const char *pointer, const char *fmt, ...) _scm_printf(3, 4);
const char *prof_type(struct json_object *j);
int prof_keys(pctx *c, struct json_object *o, const char *pointer, const char *const *known);
int prof_string(pctx *c, struct json_object *o, const char *key, const char *pointer, bool required,
		const char **ret);

/* profile-sandbox.c: the "sandbox" section */
int parse_sandbox(pctx *c, struct json_object *o);

/* dbus.c */
int parse_dbus(pctx *c, struct json_object *a);
void dbus_rules_free(policy_profile *p);
/* The effective D-Bus rules, merge order, as a grant carries them. */
struct json_object *dbus_rules_json(const policy_effective *e);
bool dbus_overlap(const pdbus *x, const pdbus *y);

/* constraint.c */
bool pcons_equal(const pcons *a, const pcons *b);
bool prule_same_effect(const prule *a, const prule *b);
/* Checks args against a rule's constraints; reason (static or in buf) on
 * refusal. */
bool pcons_match_all(const pcons *c, size_t n, struct json_object *args, char *buf, size_t bufsz);
struct json_object *pcons_to_json(const pcons *c);
struct json_object *pval_to_json(const pval *v);
/* A bool, number or string (not a uint64 above INT64_MAX, not a NaN);
 * -EINVAL or -ENOMEM. */
int pval_parse(struct json_object *j, pval *ret);
int pcons_from_json(struct json_object *j, pcons *ret, scm_error **ret_err);
void pcons_done(pcons *c);
/* Is old (a grant's constraint object for one param) at least as strict
 * as new? */
bool pcons_within(const pcons *old_c, const pcons *new_c);

/* settings.c */
/* Parses a rule's "settings" into r; on error, *ret_key names the setting
 * at fault (NULL: the object itself) and err says what is wrong. */
/* Parses a rule's "settings" into r (sorted by name). On a bad value
 * -EINVAL with *ret_key the offending key (or NULL for the object) and
 * *ret_why a static reason; the caller words the error with its JSON
 * pointer. -ENOMEM alone. */
int rsettings_from_json(struct json_object *o, prule *r, const char **ret_key, const char **ret_why);
void rsettings_done(prule *r);
/* NULL when s fits svc's interface, else why (static). */
const char *rsetting_check(const pidl_service *svc, const rsetting *s);
/* The settings object of s's grant (NULL when no winner sets any), or
 * *ret_denied, an origin text, when one does not fit the interface idl
 * (NULL: none known). 0 or -ENOMEM. */
int grant_settings(const eservice *s, const pidl_service *idl, struct json_object **ret, char **ret_denied);

/* util.c */
char *rule_origin(const prule *r); /* "profile 'x' (file#pointer, priority p)" */
char *setting_origin(const psetting *s);
/* Sandbox names a kernel knows: capabilities (CAP_*) and system calls of
 * the native architecture. */
bool cap_name_known(const char *s);
bool syscall_name_known(const char *s);
const char *cap_name_suggest(const char *s);
bool glob_match(const char *pattern, const char *s);
unsigned profile_line(const policy_profile *p, const char *pointer, unsigned *ret_col);
int prule_priority_cmp(const prule *a, const prule *b); /* merge order */
