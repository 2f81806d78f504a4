/* names.c: the sandbox names a profile may use. A name the kernel does
 * not know is refused when the profile is parsed: `"deny": ["CAP_SYS_ADMN"]`
 * would otherwise deny nothing and let a lower profile's allow of
 * CAP_SYS_ADMIN through, a typo that fails open. System calls are
 * resolved by libseccomp for the native architecture, as the container
 * runtime (containers/seccomp.c) resolves them when it builds the filter;
 * capabilities by libcap (util/caps.c), as the runtime resolves them. */
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include <scm/macro.h>

#include "internal.h"

bool cap_name_known(const char *s)
{
	return cap_number_from_name(s) >= 0;
}

bool syscall_name_known(const char *s)
{
	return seccomp_syscall_resolve_name(s) != __NR_SCMP_ERROR;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[72];
	if (lb >= ELEMENTSOF(row) || la >= ELEMENTSOF(row))
		return (size_t)-1;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

/* The known capability closest to a typo (at most 2 edits), or NULL. */
const char *cap_name_suggest(const char *s)
{
	const char *best = NULL;
	size_t bd = 3;
	const char *name;
	for (int i = 0; (name = cap_name_from_number(i)); i++) {
		size_t d = edit_distance(s, name);
		if (d < bd) {
			bd = d;
			best = name;
		}
	}
	return best;
}
