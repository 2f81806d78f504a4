/* devices.c: device access for a spec whose linux.resources.devices rules
 * allow something.
 *
 * By default no rule allows, and then every mount the container gets is
 * nodev (rootfs.c) but its devpts and /dev, whose few nodes are binds: no
 * cgroup is needed, or made. A spec that allows devices (say, to use a
 * node in its rootfs, or a bind of the host's /dev/fuse) keeps device
 * access on its rootfs and binds, and the kernel enforces the rules
 * through a v1 devices cgroup: everything denied, then the spec's rules in
 * order, then the nodes the runtime gives every container (runc's order).
 * Refused where that cannot be done: under a profile's sandbox (a profile
 * grants no devices), rootless (no writable devices hierarchy), and on a
 * host without the v1 controller (a BPF_PROG_TYPE_CGROUP_DEVICE program
 * on cgroup v2 is not written yet). */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

#define DEVICES_ROOT "/sys/fs/cgroup/devices"

/* /dev's nodes (rootfs.c), /dev/ptmx and the container's ptys. */
static const char *const runtime_nodes[] = {
	"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
	"c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm", NULL,
};

bool devices_allowed(const container_spec *s)
{
	for (size_t i = 0; i < s->n_devices; i++)
		if (s->devices[i].allow)
			return true;
	return false;
}

static int refuse(char **err, const char *why)
{
	if (err && !*err)
		(void)asprintf(err, "/linux/resources/devices: a rule allows devices, but %s", why);
	return CONTAINER_E_DENIED;
}

static void number(char *buf, size_t len, int64_t n)
{
	if (n < 0)
		snprintf(buf, len, "*");
	else
		snprintf(buf, len, "%lld", (long long)n);
}

int devices_setup(cgroup_set *cg, const container_spec *s, const container_sandbox *sb,
		  const char *parent, const char *id, bool rootless, char **err)
{
	struct statfs fs;
	char dir[4096], path[4200], line[64], ma[24], mi[24];
	int r;
	if (!devices_allowed(s))
		return 0;
	if (sb)
		return refuse(err, "a profile's sandbox grants no device access");
	if (rootless)
		return refuse(err, "a rootless runtime cannot make a devices cgroup to enforce them");
	if (statfs(DEVICES_ROOT, &fs) < 0 || fs.f_type != CGROUP_SUPER_MAGIC)
		return refuse(err, "this host has no v1 devices controller to enforce them "
				   "(cgroup v2 device programs are not supported)");
	snprintf(dir, sizeof(dir), "%s/%s/%s", DEVICES_ROOT, parent, id);
	if ((r = mkdir_p(dir, 0755)) < 0) {
		if (err)
			(void)asprintf(err, "cgroup: creating %s: %s", dir, strerror(-r));
		return r;
	}
	/* Recorded at once: cgroup_remove takes it away on any failure. */
	if (!(cg->dirs[CG_DEVICES] = strdup(dir)))
		return -ENOMEM;
	cg->v2[CG_DEVICES] = false;
	cg->all_v2 = false; /* the child must join this one by writing */
	const char *text = "a";
	snprintf(path, sizeof(path), "%s/devices.deny", dir);
	if ((r = write_file(path, text)) < 0)
		goto fail;
	for (size_t i = 0; i < s->n_devices; i++) {
		const container_device_rule *d = &s->devices[i];
		number(ma, sizeof(ma), d->major);
		number(mi, sizeof(mi), d->minor);
		snprintf(line, sizeof(line), "%c %s:%s %s", d->type, ma, mi, d->access);
		snprintf(path, sizeof(path), "%s/devices.%s", dir, d->allow ? "allow" : "deny");
		if ((r = write_file(path, (text = line))) < 0)
			goto fail;
	}
	snprintf(path, sizeof(path), "%s/devices.allow", dir);
	for (const char *const *n = runtime_nodes; *n; n++)
		if ((r = write_file(path, (text = *n))) < 0)
			goto fail;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if ((cg->procs_fd[CG_DEVICES] = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		if (err)
			(void)asprintf(err, "cgroup: %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
fail:
	if (err)
		(void)asprintf(err, "cgroup: writing \"%s\" to %s: %s", text, path, strerror(-r));
	return r;
}
