/* error.h: the one error model of scm: codes and observation chains.
 *
 * Every part of the tree (libscm, scmd, scmctl, the policy engine, the
 * container runtime, the vdisk engine, gfx and desktop) reports failure the
 * same way: a function returns 0, or an int code (below), and when its
 * caller passed a non-NULL `scm_error **ret_err`, pushes one observation
 * (code, message, where) onto *ret_err. A layer that calls a lower layer
 * passes its own ret_err down and, when the call fails, adds what it saw on
 * top (scm_fail): the lower layer's observations, with their `where`, stay
 * in the chain as causes. Nothing is flattened into a string buffer.
 *
 * The rule for acting on a chain: callers act on the OUTERMOST code, which
 * is the code the failing function returned (e->code of the head). Each
 * layer that adds an observation picks the code that means something to its
 * own callers (often the code it got from below); the causes keep the
 * detail for people (and for scm_error_root_code(), which is for
 * diagnostics and tests, not for decisions).
 *
 * The code registry (one space; each part owns a range):
 *   < 0         -errno: something broke (from the system or a peer)
 *   0           success
 *   1 - 99      SCM_E_* below: libscm, scmd, scmctl, the policy engine;
 *               on the wire, stable
 *   100 - 999   service-defined (SCM_E_APP + n, from the service's IDL;
 *               e.g. GFX_E_*, SCM_VDISK_E_*): on the wire, meaning is the
 *               service's
 *   1000 - 1099 the container runtime (SCM_E_CONTAINER_*, which
 *               containers/container.h calls CONTAINER_E_*): they reach
 *               scmctl through scmd unchanged
 *   1100 -      unassigned: a new part takes the next range of 100 here
 *               and names its codes in stubs/error.c
 * The vdisk engine, gfx and desktop libraries use -errno and the service
 * codes of their IDL; they own no range. */
#pragma once
#include <stdarg.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

#ifndef _scm_printf
#define _scm_printf(a, b) __attribute__((format(printf, a, b)))
#endif
#define _SCM_STR2(x) #x
#define _SCM_STR(x) _SCM_STR2(x)
/* The `where` of an observation made here: "file.c:123". */
#define SCM_HERE __FILE__ ":" _SCM_STR(__LINE__)

/* Expected outcomes; negative values are -errno. Stable, on the wire. */
enum {
	SCM_OK = 0,
	SCM_E_DENIED = 1,        /* policy said no */
	SCM_E_NO_SERVICE = 2,    /* no such service registered */
	SCM_E_NO_METHOD = 3,     /* the interface has no such method */
	SCM_E_BAD_ARGS = 4,      /* arguments do not match the interface */
	SCM_E_QUOTA = 5,         /* a per-caller limit was reached */
	SCM_E_ACTIVATION = 6,    /* the provider could not be started */
	SCM_E_TIMEOUT = 7,       /* something did not answer in time */
	SCM_E_REVOKED = 8,       /* the channel was cut by scmd */
	SCM_E_PROVIDER_GONE = 9, /* the provider exited or closed the channel */
	SCM_E_PROTOCOL = 10,     /* a malformed frame */
	SCM_E_EXISTS = 11,       /* the name is taken */
	SCM_E_NOT_FOUND = 12,    /* no such object (endpoint, channel, ...) */
	SCM_E_INVALID = 13,      /* a request that makes no sense */
	SCM_E_BUSY = 14,         /* refused for now: the object is in use */
	SCM_E_INTERNAL = 15,     /* a bug or resource failure on the far side */
	SCM_E_APP = 100,         /* first code a service's IDL may define */
	SCM_E_CONTAINER = 1000,  /* the container runtime's range: */
	SCM_E_CONTAINER_SPEC = 1001,    /* the spec is malformed */
	SCM_E_CONTAINER_DENIED = 1002,  /* the spec asks for more than the sandbox allows */
	SCM_E_CONTAINER_ROOTFS = 1003,  /* root.path missing or not a directory */
	SCM_E_CONTAINER_MAPPING = 1004, /* uid/gid mappings impossible for this caller */
	SCM_E_CONTAINER_UNSUPPORTED = 1005, /* a live change this container cannot take: needs a restart */
	SCM_E_UNASSIGNED = 1100, /* first code no part owns yet */
};
/* "denied", "container-spec", "EPIPE", "app-101", ... */
const char *scm_code_name(int code);

/* One layer of an error chain: code, message, where. The newest (outermost)
 * observation is first; ->cause points at what it was built on. */
typedef struct scm_error {
	int code;
	char *message;
	char *where;
	struct scm_error *cause;
} scm_error;

scm_error *scm_error_new(int code, const char *where, const char *fmt, ...) _scm_printf(3, 4);
scm_error *scm_error_newv(int code, const char *where, const char *fmt, va_list ap) _scm_printf(3, 0);
/* Adds an observation on top of cause (which it takes) and returns it. */
scm_error *scm_error_wrap(scm_error *cause, int code, const char *where, const char *fmt, ...)
	_scm_printf(4, 5);
scm_error *scm_error_free(scm_error *e);
/* For __attribute__((cleanup)): frees the chain a variable holds. */
static inline void scm_error_freep(scm_error **e)
{
	scm_error_free(*e);
}
/* The innermost code: for diagnostics and tests. Decisions use the
 * outermost code (e->code), see the rule above. */
int scm_error_root_code(const scm_error *e);
/* "message [name] (where)" per layer, outermost first, indented. */
void scm_error_print(const scm_error *e, FILE *f);
/* The messages joined on one line, outermost first: "a: b: c" (a layer
 * whose message is empty is skipped). malloc'd; NULL only without memory. */
char *scm_error_text(const scm_error *e);
/* {"error":[{"code":..,"name":..,"message":..,"where":..}, ...]} form. */
struct json_object *scm_error_to_json(const scm_error *e);
scm_error *scm_error_from_json(struct json_object *j);

/* Pushes one observation on top of *ret_err (which may hold the cause the
 * caller got from below, or nothing) when ret_err is set, and returns code.
 * `where` is filled from the call site. */
#define scm_fail(ret_err, code, ...) scm_fail_at((ret_err), (code), SCM_HERE, __VA_ARGS__)
int scm_fail_at(scm_error **ret_err, int code, const char *where, const char *fmt, ...) _scm_printf(4, 5);
int scm_fail_atv(scm_error **ret_err, int code, const char *where, const char *fmt, va_list ap)
	_scm_printf(4, 0);

#ifdef __cplusplus
}
#endif
