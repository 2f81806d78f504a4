/* export-opts.h: scm-dbus-export's callers (--caller) and bounds
 * (--max-calls..., --call-timeout), parsed. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "scm/error.h"
#include "scm/scm.h"

#define CALLERS_MAX 32
#define UID_ANY ((uid_t)-1)

struct caller {
	uid_t uid; /* UID_ANY: '*' */
	char **profiles;
	size_t n_profiles;
	char endpoint[160];
	const char *spec; /* the --caller */
	int lockfd;       /* the endpoint's record, held (export-ep.c) */
	scm_channel *ch;  /* opened on the first call, again after it broke */
	unsigned late;    /* its calls timed out and not answered since */
};

/* Adds the caller of spec (UID|USER|*=PROFILE[,PROFILE]...) to callers,
 * its endpoint named after bus_name. */
int xp_parse_caller(const char *spec, const char *bus_name, struct caller *callers, size_t *n_callers_io,
		    scm_error **ret_err);
/* A count from 1 to max into *ret, or for --call-timeout seconds (a
 * decimal, 0.001 to max) in ms; false, said on stderr, when not. */
bool xp_parse_bound(const char *arg, const char *opt, int max, int *ret);
