/* jsonscan.h: a strict JSON pre-scanner for profile files.
 *
 * json-c is lenient where a policy file must not be: it keeps the last of
 * two duplicate keys, clamps huge integers, and reports errors by byte
 * offset only. The scanner runs first over the raw bytes and refuses what
 * json-c would paper over, with line and column; it also remembers where
 * each shallow value starts so later (semantic) errors can name a line. */
#pragma once
#include <stddef.h>

#include <scm/error.h>

typedef struct jscan_pos {
	char *pointer; /* JSON pointer of a value, depth <= JSCAN_POS_DEPTH */
	unsigned line, col;
} jscan_pos;

#define JSCAN_POS_DEPTH 4

typedef struct jscan_result {
	/* on error: where the scan stopped */
	unsigned line, col;
	/* on success: value positions, sorted by pointer */
	jscan_pos *pos;
	size_t n_pos;
} jscan_result;

/* Returns 0, or SCM_E_INVALID with line and col filled and *ret_err
 * saying "FILE:LINE:COL: syntax error: what" (a syntax error, invalid
 * UTF-8, nesting deeper than max_depth, a duplicate key, a number that does
 * not fit int64/double, a NUL in a string), or -ENOMEM. file names the
 * input in the message. */
int jscan_check(const char *data, size_t len, unsigned max_depth, const char *file, jscan_result *res,
		scm_error **ret_err);
void jscan_result_clear(jscan_result *res);
/* Position of pointer, or of its nearest recorded ancestor. */
const jscan_pos *jscan_lookup(const jscan_result *res, const char *pointer);
