/* export-opts.c: see export-opts.h. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export-opts.h"
#include "scm-internal/error.h"
#include "scm/macro.h"
#include "scmutil.h"

/* UID|USER|*=PROFILE[,PROFILE]... */
int xp_parse_caller(const char *spec, const char *bus_name, struct caller *callers, size_t *n_callers_io,
		    scm_error **ret_err)
{
	const char *eq = strchr(spec, '=');
	size_t n_callers = *n_callers_io;
	struct caller *c = &callers[n_callers];
	*c = (struct caller){ .spec = spec, .lockfd = -1 };
	if (n_callers == CALLERS_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "more than %d --caller", CALLERS_MAX);
	if (!eq || eq == spec || !eq[1])
		return scm_fail(ret_err, SCM_E_INVALID, "--caller %s: expected UID=PROFILE[,PROFILE...]", spec);
	_cleanup_free_ char *who = strndup(spec, (size_t)(eq - spec));
	char *end;
	if (!who)
		return -ENOMEM;
	if (strcmp(who, "*") == 0)
		c->uid = UID_ANY;
	else if ((errno = 0, c->uid = (uid_t)strtoul(who, &end, 10), !*end && !errno && who[0] >= '0' && who[0] <= '9' &&
					  c->uid != UID_ANY))
		;
	else {
		struct passwd *pw = getpwnam(who);
		if (!pw)
			return scm_fail(ret_err, SCM_E_INVALID, "--caller %s: no user '%s'", spec, who);
		c->uid = pw->pw_uid;
	}
	for (size_t i = 0; i < n_callers; i++)
		if (callers[i].uid == c->uid)
			return scm_fail(ret_err, SCM_E_INVALID, "--caller %s: '%s' is mapped twice", spec, who);
	_cleanup_free_ char *list = strdup(eq + 1);
	char *save = NULL;
	if (!list)
		return -ENOMEM;
	for (char *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (!name_valid(p, 128, NAME_FILE))
			return scm_fail(ret_err, SCM_E_INVALID, "--caller %s: '%s' is not a profile name", spec, p);
		if (strv_add(&c->profiles, &c->n_profiles, p) < 0)
			return -ENOMEM;
	}
	if (!c->profiles)
		return scm_fail(ret_err, SCM_E_INVALID, "--caller %s: no profile", spec);
	/* named by the bus name, which one process owns at a time: two exports
	 * never share an endpoint, and one found at start is a dead export's */
	if (c->uid == UID_ANY)
		snprintf(c->endpoint, sizeof(c->endpoint), "dbus-%s-any", bus_name);
	else
		snprintf(c->endpoint, sizeof(c->endpoint), "dbus-%s-%u", bus_name, (unsigned)c->uid);
	if (!name_valid(c->endpoint, 64, NAME_FILE))
		return scm_fail(ret_err, SCM_E_INVALID, "--name %s is too long for scm's endpoint names (%s: 64 at most)",
				bus_name, c->endpoint);
	*n_callers_io = n_callers + 1;
	return 0;
}


/* a positive count up to max, or for --call-timeout seconds (a decimal,
 * at least 1 ms, up to max s) in ms */
bool xp_parse_bound(const char *arg, const char *opt, int max, int *ret)
{
	char *end;
	errno = 0;
	bool secs = strcmp(opt, "--call-timeout") == 0;
	double v = secs ? strtod(arg, &end) : (double)strtol(arg, &end, 10);
	if (secs)
		v *= 1000;
	if (errno || end == arg || *end || !(v >= 1) || v > (secs ? max * 1000.0 : max)) {
		fprintf(stderr, "scm-dbus-export: %s %s: expected %s from %s to %d\n", opt, arg,
			secs ? "seconds" : "a number", secs ? "0.001" : "1", max);
		return false;
	}
	*ret = (int)v;
	return true;
}

