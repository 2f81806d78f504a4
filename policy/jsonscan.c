/* jsonscan.c: strict RFC 8259 validation of profile bytes before json-c
 * sees them (see jsonscan.h for why). Recursive descent, bounded by the
 * depth limit, so the C stack stays small whatever the input. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"

#define POS_MAX 65536 /* positions remembered; later values use an ancestor */
#define NUMBER_MAX 64 /* characters in a number literal */

typedef struct key {
	char *s;
	size_t len;
	unsigned line, col;
} key;

typedef struct scan {
	const unsigned char *p;
	size_t len, i;
	unsigned line, col;
	unsigned max_depth;
	jscan_result *res;
	const char *file;
	scm_error **ret_err;
	size_t pos_cap;
	char *path;
	size_t path_len, path_cap;
	int err;
} scan;

/* The first failure is the one reported; later ones are its consequences. */
static int fail_where(scan *s, const char *where, unsigned line, unsigned col, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int fail_where(scan *s, const char *where, unsigned line, unsigned col, const char *fmt, ...)
{
	if (s->err == 0) {
		char *what = NULL;
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&what, fmt, ap) < 0)
			what = NULL;
		va_end(ap);
		s->res->line = line;
		s->res->col = col;
		s->err = -EINVAL;
		scm_fail_at(s->ret_err, SCM_E_INVALID, where, "%s:%u:%u: syntax error: %s", s->file, line, col,
			    what ? what : "(out of memory)");
		free(what);
	}
	return s->err;
}
#define fail_at(s, line, col, ...) fail_where((s), __FILE__ ":" _SCM_STR(__LINE__), (line), (col), __VA_ARGS__)
#define fail(s, ...) fail_at((s), (s)->line, (s)->col, __VA_ARGS__)

static int oom(scan *s)
{
	if (s->err == 0) {
		s->err = -ENOMEM;
		scm_fail(s->ret_err, -ENOMEM, "%s: out of memory", s->file);
	}
	return s->err;
}

/* Every byte is consumed here, so line and column (in characters, not
 * bytes) stay right without rescanning a line. */
static void adv(scan *s)
{
	unsigned char c = s->p[s->i++];
	if (c == '\n') {
		s->line++;
		s->col = 1;
	} else if ((c & 0xC0) != 0x80) {
		s->col++;
	}
}

static void skip_ws(scan *s)
{
	while (s->i < s->len) {
		unsigned char c = s->p[s->i];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		adv(s);
	}
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0: no overlongs, no
 * surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		if (p[0] == 0xE0 && p[1] < 0xA0)
			return 0; /* overlong */
		if (p[0] == 0xED && p[1] >= 0xA0)
			return 0; /* surrogate */
		return 3;
	}
	if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
			return 0;
		if (p[0] == 0xF0 && p[1] < 0x90)
			return 0;
		if (p[0] == 0xF4 && p[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}

static int path_push(scan *s, const char *seg, size_t n)
{
	size_t need = s->path_len + 1 + 2 * n + 1;
	if (need > s->path_cap) {
		size_t cap = need * 2;
		char *np = realloc(s->path, cap);
		if (!np)
			return oom(s);
		s->path = np;
		s->path_cap = cap;
	}
	s->path[s->path_len++] = '/';
	for (size_t k = 0; k < n; k++) {
		if (seg[k] == '~') {
			s->path[s->path_len++] = '~';
			s->path[s->path_len++] = '0';
		} else if (seg[k] == '/') {
			s->path[s->path_len++] = '~';
			s->path[s->path_len++] = '1';
		} else {
			s->path[s->path_len++] = seg[k];
		}
	}
	s->path[s->path_len] = 0;
	return 0;
}

static int record(scan *s, unsigned depth, unsigned line, unsigned col)
{
	jscan_result *r = s->res;
	if (depth > JSCAN_POS_DEPTH || r->n_pos >= POS_MAX)
		return 0;
	if (r->n_pos == s->pos_cap) {
		size_t cap = s->pos_cap ? s->pos_cap * 2 : 64;
		jscan_pos *np = realloc(r->pos, cap * sizeof(*np));
		if (!np)
			return oom(s);
		r->pos = np;
		s->pos_cap = cap;
	}
	char *ptr = strdup(s->path ? s->path : "");
	if (!ptr)
		return oom(s);
	r->pos[r->n_pos++] = (jscan_pos){ ptr, line, col };
	return 0;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int read_u4(scan *s, unsigned *ret)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		int h = s->i < s->len ? hexval(s->p[s->i]) : -1;
		if (h < 0)
			return fail(s, "bad \\u escape: expected 4 hex digits");
		v = v * 16 + (unsigned)h;
		adv(s);
	}
	*ret = v;
	return 0;
}

/* Appends code point cp as UTF-8 to a key buffer (keys only). */
static void put_utf8(char *b, size_t *n, unsigned cp)
{
	if (cp < 0x80) {
		b[(*n)++] = (char)cp;
	} else if (cp < 0x800) {
		b[(*n)++] = (char)(0xC0 | cp >> 6);
		b[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		b[(*n)++] = (char)(0xE0 | cp >> 12);
		b[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[(*n)++] = (char)(0x80 | (cp & 0x3F));
	} else {
		b[(*n)++] = (char)(0xF0 | cp >> 18);
		b[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[(*n)++] = (char)(0x80 | (cp & 0x3F));
	}
}

/* A string at s->i (the opening quote). With ret_key, the decoded bytes
 * are returned (decoded text is never longer than its escaped form). */
static int scan_string(scan *s, key *ret_key)
{
	size_t start = s->i;
	char *buf = NULL;
	size_t n = 0;
	adv(s); /* " */
	if (ret_key) {
		/* the raw length bounds the decoded one; find the end cheaply */
		size_t e = s->i;
		while (e < s->len && s->p[e] != '"')
			e += s->p[e] == '\\' ? 2 : 1;
		buf = malloc(e - start + 1);
		if (!buf)
			return oom(s);
	}
	for (;;) {
		if (s->i >= s->len) {
			free(buf);
			return fail(s, "unterminated string");
		}
		unsigned char c = s->p[s->i];
		if (c == '"') {
			adv(s);
			break;
		}
		if (c < 0x20) {
			free(buf);
			return fail(s, "control character 0x%02x in a string (escape it)", c);
		}
		if (c == '\\') {
			adv(s);
			if (s->i >= s->len) {
				free(buf);
				return fail(s, "unterminated string");
			}
			unsigned char e = s->p[s->i];
			unsigned cp = 0;
			const char *simple = strchr("\"\\/bfnrt", e);
			if (e && simple) {
				static const char out[] = "\"\\/\b\f\n\r\t";
				adv(s);
				if (buf)
					buf[n++] = out[simple - "\"\\/bfnrt"];
				continue;
			}
			if (e != 'u') {
				free(buf);
				return fail(s, "bad escape \\%c in a string", e >= 0x20 && e < 0x7f ? e : '?');
			}
			adv(s);
			if (read_u4(s, &cp) < 0) {
				free(buf);
				return s->err;
			}
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				unsigned lo;
				if (s->i + 1 >= s->len || s->p[s->i] != '\\' || s->p[s->i + 1] != 'u') {
					free(buf);
					return fail(s, "lone UTF-16 surrogate \\u%04X in a string", cp);
				}
				adv(s);
				adv(s);
				if (read_u4(s, &lo) < 0) {
					free(buf);
					return s->err;
				}
				if (lo < 0xDC00 || lo > 0xDFFF) {
					free(buf);
					return fail(s, "bad UTF-16 surrogate pair in a string");
				}
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				free(buf);
				return fail(s, "lone UTF-16 surrogate \\u%04X in a string", cp);
			}
			if (cp == 0) {
				free(buf);
				return fail(s, "NUL character (\\u0000) in a string");
			}
			if (buf)
				put_utf8(buf, &n, cp);
			continue;
		}
		size_t k = utf8_seq(s->p + s->i, s->len - s->i);
		if (k == 0) {
			free(buf);
			return fail(s, "invalid UTF-8 in a string");
		}
		if (buf)
			memcpy(buf + n, s->p + s->i, k);
		n += k;
		while (k--)
			adv(s);
	}
	if (ret_key) {
		buf[n] = 0;
		ret_key->s = buf;
		ret_key->len = n;
	}
	return 0;
}

static int scan_number(scan *s)
{
	size_t start = s->i;
	unsigned line = s->line, col = s->col;
	bool integer = true;
	if (s->p[s->i] == '-')
		adv(s);
	if (s->i >= s->len || s->p[s->i] < '0' || s->p[s->i] > '9')
		return fail(s, "bad number: expected a digit");
	if (s->p[s->i] == '0') {
		adv(s);
	} else {
		while (s->i < s->len && s->p[s->i] >= '0' && s->p[s->i] <= '9')
			adv(s);
	}
	if (s->i < s->len && s->p[s->i] == '.') {
		integer = false;
		adv(s);
		if (s->i >= s->len || s->p[s->i] < '0' || s->p[s->i] > '9')
			return fail(s, "bad number: expected a digit after '.'");
		while (s->i < s->len && s->p[s->i] >= '0' && s->p[s->i] <= '9')
			adv(s);
	}
	if (s->i < s->len && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
		integer = false;
		adv(s);
		if (s->i < s->len && (s->p[s->i] == '+' || s->p[s->i] == '-'))
			adv(s);
		if (s->i >= s->len || s->p[s->i] < '0' || s->p[s->i] > '9')
			return fail(s, "bad number: expected a digit in the exponent");
		while (s->i < s->len && s->p[s->i] >= '0' && s->p[s->i] <= '9')
			adv(s);
	}
	size_t n = s->i - start;
	if (n > NUMBER_MAX)
		return fail_at(s, line, col, "number too long (%zu characters)", n);
	char tmp[NUMBER_MAX + 1];
	memcpy(tmp, s->p + start, n);
	tmp[n] = 0;
	errno = 0;
	if (integer) {
		(void)strtoll(tmp, NULL, 10);
		if (errno == ERANGE)
			return fail_at(s, line, col, "integer %s out of range (64-bit signed)", tmp);
	} else {
		double d = strtod(tmp, NULL);
		if (!isfinite(d) || (errno == ERANGE && fabs(d) > 1.0))
			return fail_at(s, line, col, "number %s out of range", tmp);
	}
	return 0;
}

static int scan_literal(scan *s, const char *lit)
{
	size_t n = strlen(lit);
	if (s->len - s->i < n || memcmp(s->p + s->i, lit, n) != 0)
		return fail(s, "unexpected character (expected a value)");
	for (size_t k = 0; k < n; k++)
		adv(s);
	return 0;
}

static int key_cmp(const void *a, const void *b)
{
	const key *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = memcmp(x->s, y->s, n);
	if (r)
		return r;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

static int scan_value(scan *s, unsigned depth);

static int check_dups(scan *s, key *keys, size_t n)
{
	if (n < 2)
		return 0;
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (size_t k = 1; k < n; k++)
		if (keys[k].len == keys[k - 1].len && memcmp(keys[k].s, keys[k - 1].s, keys[k].len) == 0)
			return fail_at(s, keys[k].line, keys[k].col,
				       "duplicate key \"%.60s\" (first at line %u column %u)", keys[k].s,
				       keys[k - 1].line, keys[k - 1].col);
	return 0;
}

static int scan_object(scan *s, unsigned depth)
{
	key *keys = NULL;
	size_t n = 0, cap = 0;
	size_t base = s->path_len;
	int r = 0;
	adv(s); /* { */
	skip_ws(s);
	if (s->i < s->len && s->p[s->i] == '}') {
		adv(s);
		return 0;
	}
	for (;;) {
		skip_ws(s);
		if (s->i >= s->len || s->p[s->i] != '"') {
			r = fail(s, s->i >= s->len ? "unexpected end of input (expected a key)"
						   : "expected a string key");
			break;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 8;
			key *nk = realloc(keys, nc * sizeof(*nk));
			if (!nk) {
				r = oom(s);
				break;
			}
			keys = nk;
			cap = nc;
		}
		keys[n].line = s->line;
		keys[n].col = s->col;
		if ((r = scan_string(s, &keys[n])) < 0)
			break;
		n++;
		skip_ws(s);
		if (s->i >= s->len || s->p[s->i] != ':') {
			r = fail(s, "expected ':' after a key");
			break;
		}
		adv(s);
		if ((r = path_push(s, keys[n - 1].s, keys[n - 1].len)) < 0)
			break;
		r = scan_value(s, depth);
		s->path_len = base;
		s->path[base] = 0;
		if (r < 0)
			break;
		skip_ws(s);
		if (s->i < s->len && s->p[s->i] == ',') {
			adv(s);
			continue;
		}
		if (s->i < s->len && s->p[s->i] == '}') {
			adv(s);
			r = check_dups(s, keys, n);
			break;
		}
		r = fail(s, s->i >= s->len ? "unexpected end of input (expected ',' or '}')"
					   : "expected ',' or '}' in an object");
		break;
	}
	for (size_t k = 0; k < n; k++)
		free(keys[k].s);
	free(keys);
	return r;
}

static int scan_array(scan *s, unsigned depth)
{
	size_t base = s->path_len;
	adv(s); /* [ */
	skip_ws(s);
	if (s->i < s->len && s->p[s->i] == ']') {
		adv(s);
		return 0;
	}
	for (size_t idx = 0;; idx++) {
		char seg[24];
		int m = snprintf(seg, sizeof(seg), "%zu", idx);
		if (path_push(s, seg, (size_t)m) < 0)
			return s->err;
		int r = scan_value(s, depth);
		s->path_len = base;
		s->path[base] = 0;
		if (r < 0)
			return r;
		skip_ws(s);
		if (s->i < s->len && s->p[s->i] == ',') {
			adv(s);
			continue;
		}
		if (s->i < s->len && s->p[s->i] == ']') {
			adv(s);
			return 0;
		}
		return fail(s, s->i >= s->len ? "unexpected end of input (expected ',' or ']')"
					  : "expected ',' or ']' in an array");
	}
}

static int scan_value(scan *s, unsigned depth)
{
	skip_ws(s);
	if (s->i >= s->len)
		return fail(s, "unexpected end of input (expected a value)");
	if (record(s, depth, s->line, s->col) < 0)
		return s->err;
	unsigned char c = s->p[s->i];
	switch (c) {
	case '{':
	case '[':
		if (depth + 1 > s->max_depth)
			return fail(s, "nesting deeper than %u levels", s->max_depth);
		return c == '{' ? scan_object(s, depth + 1) : scan_array(s, depth + 1);
	case '"':
		return scan_string(s, NULL);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return scan_number(s);
		if (c >= 0x80 && utf8_seq(s->p + s->i, s->len - s->i) == 0)
			return fail(s, "invalid UTF-8");
		return fail(s, "unexpected character '%s%c' (expected a value)",
			    c < 0x20 || c >= 0x7f ? "\\x" : "", c < 0x20 || c >= 0x7f ? '?' : c);
	}
}

static int pos_cmp(const void *a, const void *b)
{
	return strcmp(((const jscan_pos *)a)->pointer, ((const jscan_pos *)b)->pointer);
}

int jscan_check(const char *data, size_t len, unsigned max_depth, const char *file, jscan_result *res,
		scm_error **ret_err)
{
	scan s = { .p = (const unsigned char *)data, .len = len, .line = 1, .col = 1,
		   .max_depth = max_depth, .res = res, .file = file, .ret_err = ret_err };
	memset(res, 0, sizeof(*res));
	skip_ws(&s);
	if (s.i >= s.len) {
		fail(&s, "empty document");
	} else if (scan_value(&s, 0) == 0) {
		skip_ws(&s);
		if (s.i < s.len)
			fail(&s, "unexpected data after the document");
	}
	free(s.path);
	if (s.err < 0) {
		for (size_t k = 0; k < res->n_pos; k++)
			free(res->pos[k].pointer);
		free(res->pos);
		res->pos = NULL;
		res->n_pos = 0;
		return s.err == -EINVAL ? SCM_E_INVALID : s.err;
	}
	if (res->n_pos)
		qsort(res->pos, res->n_pos, sizeof(*res->pos), pos_cmp);
	return 0;
}

void jscan_result_clear(jscan_result *res)
{
	for (size_t k = 0; k < res->n_pos; k++)
		free(res->pos[k].pointer);
	free(res->pos);
	res->pos = NULL;
	res->n_pos = 0;
}

const jscan_pos *jscan_lookup(const jscan_result *res, const char *pointer)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", pointer);
	for (;;) {
		size_t lo = 0, hi = res->n_pos;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			int c = strcmp(res->pos[mid].pointer, buf);
			if (c == 0)
				return &res->pos[mid];
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		char *slash = strrchr(buf, '/');
		if (!slash)
			return NULL;
		*slash = 0;
	}
}
