/* scmutil.h: the small internal helpers every part of scm shares (string
 * vectors, known-key checks of JSON objects, name rules, mkdir -p, path
 * spelling). One copy of each, in the style of c-stdaux and libcrun's
 * utils: built into libscmutil.a, linked into every program and library,
 * and never part of libscm.so's ABI (hidden visibility: a program linking
 * libscm.so cannot bind to these, and libscm's copy cannot clash with the
 * program's). Nothing here prints or keeps state. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "scm/macro.h"

struct json_object;

#pragma GCC visibility push(hidden)

/* ---- string vectors: NULL-terminated arrays of malloc'd strings ---------- */

/* Frees v and its strings; returns NULL (v = strv_free(v)). */
char **strv_free(char **v);
DEFINE_TRIVIAL_CLEANUP(char **, strv_free)
size_t strv_length(char *const *v);
/* A deep copy (of NULL: an empty vector); NULL when out of memory. */
char **strv_copy(char *const *v);
bool strv_contains(char *const *v, const char *s);
/* Appends a copy of s; *n is the length, kept by the caller so a long
 * vector is not walked on every append. The vector stays NULL-terminated.
 * 0 or -ENOMEM (v unchanged). */
int strv_add(char ***v, size_t *n, const char *s);
/* A JSON array of at most max strings into a vector; NULL with *ret_why
 * (static text) when a is not an array of strings, is longer than max, or
 * holds an empty string and allow_empty is false. */
char **strv_from_json(struct json_object *a, size_t max, bool allow_empty, const char **ret_why);

/* ---- JSON objects -------------------------------------------------------- */

/* The first key of object o that is not in known (NULL-terminated), or
 * NULL when every key is known (or o is not an object). Schemas refuse
 * unknown keys so a typo ("acton") is an error, never a silently ignored
 * field. */
const char *json_unknown_key(struct json_object *o, const char *const *known);

/* ---- names --------------------------------------------------------------- */

/* Names are 1..max characters of a-z and 0-9, plus what flags add. */
enum {
	NAME_UPPER = 1u << 0,      /* A-Z */
	NAME_DASH = 1u << 1,       /* '-' */
	NAME_UNDERSCORE = 1u << 2, /* '_' */
	NAME_DOT = 1u << 3,        /* '.' */
	NAME_GLOB = 1u << 4,       /* '*' and '?' */
	/* never starts with '.' or '-': the name becomes a file name or a
	 * command-line word ("..", "-rf") */
	NAME_NO_LEADING_PUNCT = 1u << 5,
	/* service, method and parameter names: what an IDL can spell; safe in
	 * messages, DOT files and JSON pointers without escaping */
	NAME_RULE = NAME_UPPER | NAME_DASH | NAME_UNDERSCORE | NAME_DOT,
	/* names that become file names (endpoints, containers) */
	NAME_FILE = NAME_RULE | NAME_NO_LEADING_PUNCT,
};
bool name_valid(const char *s, size_t max, unsigned flags);

/* ---- files and paths ----------------------------------------------------- */

/* mkdir -p: creates path and its missing parents with mode; EEXIST is not
 * an error. 0 or a negative errno. */
int mkdir_p(const char *path, mode_t mode);
/* The same, with parents made with parents_mode (a private leaf under
 * world-readable parents). */
int mkdir_p_parents(const char *path, mode_t parents_mode, mode_t mode);

/* Is path absolute with no empty, "." or ".." component (one spelling of
 * one place, nothing to resolve)? A trailing slash is allowed. */
bool path_is_clean(const char *path);
/* path_is_clean(path), and path continues dir at a component boundary
 * (dir "/" admits every clean path). The rule behind path_prefix grants. */
bool path_under(const char *path, const char *dir);
/* The canonical spelling of an absolute path: no empty or "." component,
 * no trailing slash ("/x/", "/x/." and "/x//" are all "/x"). ".." is
 * refused, not resolved: resolving it by name would be a guess about
 * symlinks. -EINVAL with *ret_why (static) for a relative path, a ".."
 * component or over 4096 bytes; -ENOMEM. */
int path_canon(const char *in, char **ret, const char **ret_why);

/* ---- capabilities (util/caps.c; link libcap) ----------------------------- */

/* "CAP_CHOWN" -> 0; -1 for a name libcap does not know or another
 * spelling ("cap_chown", "0"). */
int cap_number_from_name(const char *name);
/* 0 -> "CAP_CHOWN" (static storage); NULL past the last name libcap knows. */
const char *cap_name_from_number(int cap);

#pragma GCC visibility pop
