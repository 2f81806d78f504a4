/* devices.c: device access for a spec whose linux.resources.devices rules
 * allow something.
 *
 * By default no rule allows, and then every mount the container gets is
 * nodev (rootfs.c) but its devpts (its /dev nodes are binds, mounts of
 * their own): no cgroup is needed, or made. A spec that allows devices (say, to use a
 * node in its rootfs, or a bind of the host's /dev/fuse) keeps device
 * access on its rootfs and binds, and the kernel enforces the rules
 * through a v1 devices cgroup: everything denied, then the spec's rules in
 * order, then the nodes the runtime gives every container (runc's order).
 * Without the v1 controller (a cgroup v2 host), the same rules become a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to a v2 cgroup of the
 * container's, as crun and runc do. Refused where neither can be done:
 * under a profile's sandbox (a profile grants no devices), rootless (no
 * writable hierarchy, and loading the program needs CAP_SYS_ADMIN). */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

#define DEVICES_ROOT "/sys/fs/cgroup/devices"

/* /dev's nodes (rootfs.c), /dev/ptmx and the container's ptys. */
static const container_device_rule runtime_rules[] = {
	{true, 'c', 1, 3, "rwm"}, {true, 'c', 1, 5, "rwm"}, {true, 'c', 1, 7, "rwm"},
	{true, 'c', 1, 8, "rwm"}, {true, 'c', 1, 9, "rwm"}, {true, 'c', 5, 0, "rwm"},
	{true, 'c', 5, 2, "rwm"}, {true, 'c', 136, -1, "rwm"},
};

/* ---- cgroup v2: the rules as a BPF device program ---------------------- */

#define MAX_INSNS (16 + 11 * (CONTAINER_MAX_DEVICE_RULES + 8))

typedef struct prog {
	struct bpf_insn v[MAX_INSNS];
	size_t n;
} prog;

static void emit(prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	p->v[p->n++] = (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off,
					 .imm = imm};
}

/* One rule: a run of "not this one: skip to the end" tests, then return
 * its verdict. r3 = type, r4 = access asked, r5 = major, r6 = minor. */
static bool emit_rule(prog *p, const container_device_rule *d)
{
	size_t jumps[4], nj = 0;
	uint32_t acc = (strchr(d->access, 'm') ? BPF_DEVCG_ACC_MKNOD : 0) |
		       (strchr(d->access, 'r') ? BPF_DEVCG_ACC_READ : 0) |
		       (strchr(d->access, 'w') ? BPF_DEVCG_ACC_WRITE : 0);
	if (d->type != 'a') {
		jumps[nj++] = p->n;
		emit(p, BPF_JMP | BPF_JNE | BPF_K, 3, 0, 0,
		     d->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK);
	}
	if (acc != (BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE)) {
		/* Applies when everything asked is in the rule's access. */
		emit(p, BPF_ALU64 | BPF_MOV | BPF_X, 7, 4, 0, 0);
		emit(p, BPF_ALU64 | BPF_AND | BPF_K, 7, 0, 0, (int32_t)~acc);
		jumps[nj++] = p->n;
		emit(p, BPF_JMP | BPF_JNE | BPF_K, 7, 0, 0, 0);
	}
	if (d->major >= 0) {
		jumps[nj++] = p->n;
		emit(p, BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int32_t)d->major);
	}
	if (d->minor >= 0) {
		jumps[nj++] = p->n;
		emit(p, BPF_JMP | BPF_JNE | BPF_K, 6, 0, 0, (int32_t)d->minor);
	}
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, d->allow);
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	for (size_t i = 0; i < nj; i++)
		p->v[jumps[i]].off = (int16_t)(p->n - jumps[i] - 1);
	return nj > 0;
}

/* The last rule that applies decides (as the v1 file writes do), so the
 * rules are tested from the last; none applies: denied. A rule that
 * applies to everything ends the program (the verifier refuses code it
 * cannot reach). */
static int load_program(const container_spec *s, int *ret_fd, char *log, size_t loglen)
{
	prog *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	emit(p, BPF_LDX | BPF_W | BPF_MEM, 2, 1, 0, 0); /* access_type */
	emit(p, BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0);
	emit(p, BPF_ALU64 | BPF_AND | BPF_K, 3, 0, 0, 0xffff);
	emit(p, BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0);
	emit(p, BPF_ALU64 | BPF_RSH | BPF_K, 4, 0, 0, 16);
	emit(p, BPF_LDX | BPF_W | BPF_MEM, 5, 1, 4, 0); /* major */
	emit(p, BPF_LDX | BPF_W | BPF_MEM, 6, 1, 8, 0); /* minor */
	bool open_end = true;
	for (size_t i = ELEMENTSOF(runtime_rules); open_end && i-- > 0;)
		open_end = emit_rule(p, &runtime_rules[i]);
	for (size_t i = s->n_devices; open_end && i-- > 0;)
		open_end = emit_rule(p, &s->devices[i]);
	if (open_end) {
		emit(p, BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
		emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	}
	union bpf_attr a = {
		.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE,
		.insns = (uint64_t)(uintptr_t)p->v,
		.insn_cnt = (uint32_t)p->n,
		.license = (uint64_t)(uintptr_t)"GPL",
	};
	int fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (fd < 0 && errno != EPERM) {
		/* Again with the verifier's log, for the error message only. */
		a.log_buf = (uint64_t)(uintptr_t)log;
		a.log_size = (uint32_t)loglen;
		a.log_level = 1;
		fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	}
	int r = fd < 0 ? -errno : 0;
	free(p);
	if (r == 0)
		*ret_fd = fd;
	return r;
}

static const char *v2_root(void)
{
	static const char *const roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
	struct statfs fs;
	for (size_t i = 0; i < ELEMENTSOF(roots); i++)
		if (statfs(roots[i], &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC)
			return roots[i];
	return NULL;
}

/* The devices hierarchy's cgroup.procs, kept open: the launch joins the
 * container to it by fd. */
static int open_procs(cgroup_set *cg, const char *dir, scm_error **err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if ((cg->procs_fd[CG_DEVICES] = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		int r = -errno;
		ctr_fail(err, r, "cgroup: %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

static int setup_bpf(cgroup_set *cg, const container_spec *s, const char *v2, const char *parent,
		     const char *id, scm_error **err)
{
	char dir[4096], log[4096] = "";
	int r;
	snprintf(dir, sizeof(dir), "%s/%s/%s", v2, parent, id);
	if ((r = mkdir_p(dir, 0755)) < 0) {
		ctr_fail(err, r, "cgroup: creating %s: %s", dir, strerror(-r));
		return r;
	}
	if (!(cg->dirs[CG_DEVICES] = strdup(dir)))
		return -ENOMEM;
	cg->v2[CG_DEVICES] = true;
	cg->all_v2 = false; /* joined by writing, with the v1 ones */
	_cleanup_close_ int progfd = -1, dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if ((r = load_program(s, &progfd, log, sizeof(log))) < 0) {
		ctr_fail(err, r, "cgroup: loading the device program: %s%s%.200s",
				       strerror(-r), log[0] ? ": " : "", log);
		return r;
	}
	union bpf_attr a = {
		.target_fd = (uint32_t)dirfd,
		.attach_bpf_fd = (uint32_t)progfd,
		.attach_type = BPF_CGROUP_DEVICE,
		.attach_flags = BPF_F_ALLOW_MULTI,
	};
	/* The cgroup holds the program from here; it goes with the cgroup. */
	if (syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof(a)) < 0) {
		r = -errno;
		ctr_fail(err, r, "cgroup: attaching the device program to %s: %s", dir,
				       strerror(-r));
		return r;
	}
	return open_procs(cg, dir, err);
}

bool devices_allowed(const container_spec *s)
{
	for (size_t i = 0; i < s->n_devices; i++)
		if (s->devices[i].allow)
			return true;
	return false;
}

static int refuse(scm_error **err, const char *why)
{
	ctr_fail(err, CONTAINER_E_DENIED, "/linux/resources/devices: a rule allows devices, but %s", why);
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
		  const char *parent, const char *id, bool rootless, scm_error **err)
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
	/* SCM_DEVICES_BPF=1 takes the v2 way on a host that has both (tests). */
	const char *force = getenv("SCM_DEVICES_BPF"), *v2 = v2_root();
	bool v1 = statfs(DEVICES_ROOT, &fs) == 0 && fs.f_type == CGROUP_SUPER_MAGIC;
	if (v2 && (!v1 || (force && strcmp(force, "1") == 0)))
		return setup_bpf(cg, s, v2, parent, id, err);
	if (!v1)
		return refuse(err, "this host has neither a v1 devices controller nor cgroup v2 to "
				   "enforce them");
	snprintf(dir, sizeof(dir), "%s/%s/%s", DEVICES_ROOT, parent, id);
	if ((r = mkdir_p(dir, 0755)) < 0) {
		ctr_fail(err, r, "cgroup: creating %s: %s", dir, strerror(-r));
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
	for (size_t i = 0; i < s->n_devices + ELEMENTSOF(runtime_rules); i++) {
		const container_device_rule *d = i < s->n_devices ? &s->devices[i]
								  : &runtime_rules[i - s->n_devices];
		number(ma, sizeof(ma), d->major);
		number(mi, sizeof(mi), d->minor);
		snprintf(line, sizeof(line), "%c %s:%s %s", d->type, ma, mi, d->access);
		snprintf(path, sizeof(path), "%s/devices.%s", dir, d->allow ? "allow" : "deny");
		if ((r = write_file(path, (text = line))) < 0)
			goto fail;
	}
	return open_procs(cg, dir, err);
fail:
	ctr_fail(err, r, "cgroup: writing \"%s\" to %s: %s", text, path, strerror(-r));
	return r;
}
