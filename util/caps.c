/* caps.c: capability names as OCI specs and profiles spell them
 * ("CAP_CHOWN"), through libcap's own table (cap_from_name, cap_to_name),
 * so a capability newer than this code is known as soon as libcap knows
 * it. Kept out of libscm.so (it would need libcap): programs that use
 * these link libcap. */
#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <sys/capability.h>

#include "scmutil.h"

#define CAP_NAMES_MAX 64 /* the sets are uint64_t bit masks */

static char names[CAP_NAMES_MAX][40];
static int n_names;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

/* libcap answers a number it has no name for with the number itself:
 * the table ends at the first such. */
static void names_load(void)
{
	for (int v = 0; v < CAP_NAMES_MAX; v++) {
		char *n = cap_to_name((cap_value_t)v);
		bool ok = n && strncmp(n, "cap_", 4) == 0 && strlen(n) < sizeof(names[v]);
		for (size_t i = 0; ok && n[i]; i++)
			names[v][i] = (char)toupper((unsigned char)n[i]);
		cap_free(n);
		if (!ok)
			break;
		n_names = v + 1;
	}
}

const char *cap_name_from_number(int cap)
{
	pthread_once(&names_once, names_load);
	return cap >= 0 && cap < n_names ? names[cap] : NULL;
}

int cap_number_from_name(const char *name)
{
	cap_value_t v;
	/* libcap also takes "cap_chown", "12" and lists; a spec spells one
	 * name in capitals, exactly */
	if (strncmp(name, "CAP_", 4) != 0 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(name) ||
	    cap_from_name(name, &v) < 0)
		return -1;
	const char *canon = cap_name_from_number((int)v);
	return canon && strcmp(canon, name) == 0 ? (int)v : -1;
}
