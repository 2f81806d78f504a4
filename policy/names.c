/* names.c: the sandbox names a profile may use. A name the kernel does
 * not know is refused when the profile is parsed: `"deny": ["CAP_SYS_ADMN"]`
 * would otherwise deny nothing and let a lower profile's allow of
 * CAP_SYS_ADMIN through, a typo that fails open. System calls are
 * resolved by libseccomp for the native architecture, as the container
 * runtime (containers/seccomp.c) resolves them when it builds the filter. */
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>

#include <scm/macro.h>

#include "internal.h"

/* linux/capability.h, 0 .. CAP_LAST_CAP (40, CAP_CHECKPOINT_RESTORE) */
static const char *const cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
};

bool cap_name_known(const char *s)
{
	for (size_t i = 0; i < ELEMENTSOF(cap_names); i++)
		if (strcmp(cap_names[i], s) == 0)
			return true;
	return false;
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
	for (size_t i = 0; i < ELEMENTSOF(cap_names); i++) {
		size_t d = edit_distance(s, cap_names[i]);
		if (d < bd) {
			bd = d;
			best = cap_names[i];
		}
	}
	return best;
}
