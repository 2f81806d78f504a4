/* idl.h: interface definitions (docs/protocol.md, "Interfaces").
 *
 * An interface is a JSON document: name, version, doc, errors and methods
 * with typed parameters and results. Methods are numbered from 1 in file
 * order; that number is what travels in a frame's header. scm-idlc turns a
 * definition into typed C stubs; scmd and scmctl read the same file to
 * show an interface and to call it by name. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scm/scm.h"

struct json_object;

enum scm_idl_type {
	SCM_IDL_BOOL,
	SCM_IDL_INT,    /* int64_t */
	SCM_IDL_UINT,   /* uint64_t */
	SCM_IDL_DOUBLE,
	SCM_IDL_STRING, /* UTF-8 */
	SCM_IDL_BYTES,  /* the frame's binary body: at most one per direction */
	SCM_IDL_FD,     /* SCM_RIGHTS, in order of appearance */
	SCM_IDL_JSON,   /* any JSON value */
	_SCM_IDL_TYPE_MAX,
};

typedef struct scm_idl_field {
	char *name;
	enum scm_idl_type type;
	char *doc;
	bool is_path; /* "format": "path": a file path, for path_prefix rules */
} scm_idl_field;

/* A per-grant setting the service defines: a profile's allow rule may set
 * it ("settings": {"NAME": value}), checked against this, and the provider
 * reads it from its grant (scm_grant.settings). Scalars only: bool, int,
 * uint, double, string; integers may carry an inclusive range. */
typedef struct scm_idl_setting {
	char *name;
	enum scm_idl_type type;
	char *doc;
	bool has_range;
	int64_t min, max;
} scm_idl_setting;

typedef struct scm_idl_method {
	char *name;
	uint32_t id;
	char *doc;
	scm_idl_field *params, *results;
	size_t n_params, n_results;
} scm_idl_method;

typedef struct scm_idl_error {
	char *name;
	int code;
	char *doc;
} scm_idl_error;

typedef struct scm_idl {
	char *name;
	uint32_t version;
	char *doc;
	scm_idl_method *methods;
	size_t n_methods;
	scm_idl_error *errors;
	size_t n_errors;
	scm_idl_setting *settings;
	size_t n_settings;
	/* "grant_rules": the kinds of profile rule (beyond its own methods and
	 * settings) this service's provider is handed with every grant, e.g.
	 * "clipboard": scmd puts the caller's effective rules of that kind in
	 * the grant (scm_grant.rules). Names only; scmd refuses to register a
	 * service that asks for a kind it does not know. */
	char **grant_rules;
	size_t n_grant_rules;
} scm_idl;

/* Parses a definition; errors name the JSON pointer (origin is the file
 * name, for messages). */
int scm_idl_parse(const char *text, size_t len, const char *origin, scm_idl **ret,
		  scm_error **ret_err);
int scm_idl_load(const char *path, scm_idl **ret, scm_error **ret_err);
scm_idl *scm_idl_free(scm_idl *idl);

const scm_idl_method *scm_idl_method_by_name(const scm_idl *idl, const char *name);
const scm_idl_method *scm_idl_method_by_id(const scm_idl *idl, uint32_t id);
const scm_idl_setting *scm_idl_setting_by_name(const scm_idl *idl, const char *name);
/* NULL when v (a json_object) is a valid value of setting s, else a short
 * reason ("is not an integer", "is out of the range 1..10000"). */
const char *scm_idl_setting_check(const scm_idl_setting *s, struct json_object *v);
const char *scm_idl_type_name(enum scm_idl_type t);
/* The interface as a person reads it: signatures with their docs. */
void scm_idl_print(const scm_idl *idl, FILE *f);
