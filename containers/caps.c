/* caps.c: dropping capabilities in crun's order (names: util/caps.c):
 * bounding set, keepcaps, setres[gu]id, capset, ambient. The cap_t is
 * built before the clone so the child only makes system calls. */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

/* The highest capability this kernel knows (libcap reads it once). */
int cap_last_supported(void)
{
	int last = (int)cap_max_bits() - 1;
	return last > 63 ? 63 : last;
}

int caps_prepare(const container_caps *caps, cap_t *ret)
{
	cap_t c = cap_init();
	if (!c)
		return -errno;
	int last = cap_last_supported();
	for (int i = 0; i <= last; i++) {
		cap_value_t v = i;
		uint64_t bit = 1ull << i;
		if ((caps->effective & bit) && cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_SET) < 0)
			goto fail;
		if ((caps->permitted & bit) && cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_SET) < 0)
			goto fail;
		if ((caps->inheritable & bit) &&
		    cap_set_flag(c, CAP_INHERITABLE, 1, &v, CAP_SET) < 0)
			goto fail;
	}
	*ret = c;
	return 0;
fail:;
	int r = -errno;
	cap_free(c);
	return r;
}

/* Runs in the container just before exec. Returns 0 or a negative errno,
 * with *step naming what failed. */
int caps_apply(const launch_plan *p, const char **step)
{
	const container_caps *caps = &p->spec->caps;
	int last = cap_last_supported();
	for (int i = 0; i <= last; i++)
		if (!(caps->bounding & (1ull << i)) && cap_drop_bound(i) < 0 && errno != EINVAL) {
			*step = "drop the bounding set";
			return -errno;
		}
	/* Keep the permitted set across the uid change; capset decides. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		*step = "PR_SET_KEEPCAPS";
		return -errno;
	}
	/* Raw system calls: glibc's wrappers broadcast to every thread it
	 * believes exists, and after a raw clone of a threaded runtime (scmd)
	 * those threads are not here to answer. */
	if (p->set_groups &&
	    syscall(SYS_setgroups, p->spec->n_additional_gids, p->spec->additional_gids) < 0) {
		*step = "setgroups";
		return -errno;
	}
	if (syscall(SYS_setresgid, p->spec->gid, p->spec->gid, p->spec->gid) < 0) {
		*step = "setresgid";
		return -errno;
	}
	if (syscall(SYS_setresuid, p->spec->uid, p->spec->uid, p->spec->uid) < 0) {
		*step = "setresuid";
		return -errno;
	}
	if (cap_set_proc(p->caps) < 0) {
		*step = "capset";
		return -errno;
	}
	if (cap_reset_ambient() < 0 && errno != EINVAL) {
		*step = "clear the ambient set";
		return -errno;
	}
	/* The kernel raises an ambient capability only when it is both
	 * permitted and inheritable; others are left out, as runc does. */
	uint64_t amb = caps->ambient & caps->permitted & caps->inheritable;
	for (int i = 0; i <= last; i++)
		if ((amb & (1ull << i)) && cap_set_ambient(i, CAP_SET) < 0) {
			*step = "raise an ambient capability";
			return -errno;
		}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) {
		*step = "PR_SET_KEEPCAPS";
		return -errno;
	}
	return 0;
}
