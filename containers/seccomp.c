/* seccomp.c: the container's syscall filter. A default deny list in the
 * spirit of Docker's (see docs/containers.md), minus what the sandbox
 * allows, plus the sandbox's and the spec's rules. Compiling with
 * libseccomp dominates launch time, so the BPF is cached by the text of the
 * rules: in memory for this process and as a file in the cache dir. The
 * rule text is stored with the BPF and compared on load, so a hash
 * collision can never hand out the wrong filter. */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launch-internal.h"
#include "spec-internal.h"

static const char *const default_denied[] = {
	/* mounts and the root */
	"mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount",
	"fspick", "move_mount", "open_tree", "mount_setattr",
	/* kernel code and state */
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"create_module", "bpf", "perf_event_open", "lookup_dcookie", "uselib", "iopl", "ioperm",
	"_sysctl", "nfsservctl", "get_kernel_syms", "query_module", "syslog", "vhangup",
	/* kernel keyring */
	"keyctl", "add_key", "request_key",
	/* other processes: their memory, their fds, their pages */
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp",
	"process_madvise", "move_pages", "migrate_pages",
	/* io_uring runs its work outside the filter (Docker and the distros
	 * dropped it from their defaults after a run of kernel bugs) */
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	/* fanotify watches the whole mount; vm86 is a 32-bit relic */
	"fanotify_init", "vm86", "vm86old",
	/* the machine */
	"reboot", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
	/* time */
	"clock_settime", "clock_settime64", "settimeofday", "stime", "adjtimex", "clock_adjtime",
	"clock_adjtime64",
	/* file handles bypass path checks */
	"open_by_handle_at", "name_to_handle_at",
	"userfaultfd",
	/* new namespaces (clone's flags are filtered below) */
	"unshare", "setns",
	NULL,
};

const char *const *container_default_denied_syscalls(void)
{
	return default_denied;
}

typedef struct rule {
	const char *name;
	int nr;
	uint32_t action;
} rule;

static uint32_t to_action(int action, int errno_ret)
{
	switch (action) {
	case CONTAINER_SC_ALLOW: return SCMP_ACT_ALLOW;
	case CONTAINER_SC_ERRNO: return SCMP_ACT_ERRNO((uint16_t)errno_ret);
	case CONTAINER_SC_KILL: return SCMP_ACT_KILL_PROCESS;
	case CONTAINER_SC_TRAP: return SCMP_ACT_TRAP;
	case CONTAINER_SC_LOG: return SCMP_ACT_LOG;
	}
	return SCMP_ACT_KILL_PROCESS;
}

/* The canonical text of everything that shapes the filter: the cache key. */
static char *rules_text(const container_spec *spec, const container_sandbox *sb)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fprintf(f, "scm-seccomp 2 arch=%u\n", seccomp_arch_native());
	fprintf(f, "default %d %d\n", spec->has_seccomp ? spec->seccomp_default : 0,
		spec->seccomp_default_errno);
	for (size_t i = 0; i < spec->n_seccomp_rules; i++)
		fprintf(f, "spec %s %d %d\n", spec->seccomp_rules[i].name,
			spec->seccomp_rules[i].action, spec->seccomp_rules[i].errno_ret);
	for (size_t i = 0; sb && sb->syscalls_allowed && sb->syscalls_allowed[i]; i++)
		fprintf(f, "allow %s\n", sb->syscalls_allowed[i]);
	for (size_t i = 0; sb && sb->syscalls_denied && sb->syscalls_denied[i]; i++)
		fprintf(f, "deny %s\n", sb->syscalls_denied[i]);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

/* One decision per syscall: spec rules, then the default list (unless the
 * sandbox, or with no sandbox the spec, allows it), then sandbox denials. */
static int add_rule(rule *rules, size_t *n, const char *name, uint32_t action)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return -ENOENT;
	for (size_t i = 0; i < *n; i++)
		if (rules[i].nr == nr) {
			rules[i].action = action;
			return 0;
		}
	rules[(*n)++] = (rule){name, nr, action};
	return 0;
}

static int build(const container_spec *spec, const container_sandbox *sb, scmp_filter_ctx *ret)
{
	uint32_t def = spec->has_seccomp ? to_action(spec->seccomp_default, spec->seccomp_default_errno)
					 : SCMP_ACT_ALLOW;
	const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
	size_t max = spec->n_seccomp_rules + ELEMENTSOF(default_denied) +
		     (sb ? strv_length(sb->syscalls_denied) : 0) + 1;
	_cleanup_free_ rule *rules = calloc(max, sizeof(rule));
	size_t n = 0;
	if (!rules)
		return -ENOMEM;
	for (size_t i = 0; i < spec->n_seccomp_rules; i++)
		(void)add_rule(rules, &n, spec->seccomp_rules[i].name,
			       to_action(spec->seccomp_rules[i].action, spec->seccomp_rules[i].errno_ret));
	for (const char *const *d = default_denied; *d; d++) {
		bool allowed = sb ? strv_contains(sb->syscalls_allowed, *d) : false;
		if (!sb)
			for (size_t i = 0; i < spec->n_seccomp_rules; i++)
				allowed |= strcmp(spec->seccomp_rules[i].name, *d) == 0 &&
					   spec->seccomp_rules[i].action == CONTAINER_SC_ALLOW;
		if (!allowed)
			(void)add_rule(rules, &n, *d, eperm); /* unknown on this arch: fine */
	}
	for (size_t i = 0; sb && sb->syscalls_denied && sb->syscalls_denied[i]; i++)
		(void)add_rule(rules, &n, sb->syscalls_denied[i], eperm);

	scmp_filter_ctx ctx = seccomp_init(def);
	if (!ctx)
		return -ENOMEM;
	int r = 0;
	/* We set no_new_privs ourselves, in order, or not at all. */
	if ((r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
		goto fail;
	bool decided_mknod = false, decided_mknodat = false, decided_socket = false,
	     decided_clone = false, decided_ioctl = false;
	for (size_t i = 0; i < n; i++) {
		decided_mknod |= strcmp(rules[i].name, "mknod") == 0;
		decided_mknodat |= strcmp(rules[i].name, "mknodat") == 0;
		decided_socket |= strcmp(rules[i].name, "socket") == 0;
		decided_clone |= strcmp(rules[i].name, "clone") == 0;
		decided_ioctl |= strcmp(rules[i].name, "ioctl") == 0;
		if (rules[i].action == def)
			continue;
		if ((r = seccomp_rule_add(ctx, rules[i].action, rules[i].nr, 0)) < 0)
			goto fail;
	}
	if (def != SCMP_ACT_ALLOW)
		goto done; /* an allow-list spec: the conditional denials below add nothing */
	/* Device nodes only: mknod of fifos and sockets stays allowed. */
	for (int k = 0; k < 2; k++) {
		unsigned type = k ? S_IFBLK : S_IFCHR;
		if (!decided_mknod &&
		    (r = seccomp_rule_add(ctx, eperm, SCMP_SYS(mknod), 1,
					  SCMP_A1(SCMP_CMP_MASKED_EQ, S_IFMT, type))) < 0)
			goto fail;
		if (!decided_mknodat &&
		    (r = seccomp_rule_add(ctx, eperm, SCMP_SYS(mknodat), 1,
					  SCMP_A2(SCMP_CMP_MASKED_EQ, S_IFMT, type))) < 0)
			goto fail;
	}
	if (!decided_socket) {
		/* Packet sockets and raw IP; netlink keeps its SOCK_RAW. */
		if ((r = seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 1,
					  SCMP_A0(SCMP_CMP_EQ, AF_PACKET, 0))) < 0)
			goto fail;
		for (int fam = 0; fam < 2; fam++)
			if ((r = seccomp_rule_add(ctx, eperm, SCMP_SYS(socket), 2,
						  SCMP_A0(SCMP_CMP_EQ, fam ? AF_INET6 : AF_INET, 0),
						  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW))) < 0)
				goto fail;
	}
	if (!decided_clone) {
		static const unsigned long ns_flags[] = {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID,
							 CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC,
							 CLONE_NEWCGROUP, CLONE_NEWTIME};
		for (size_t k = 0; k < ELEMENTSOF(ns_flags); k++)
			if ((r = seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
						  SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[k],
							  ns_flags[k]))) < 0)
				goto fail;
		/* clone3 hides its flags in memory the filter cannot read:
		 * ENOSYS makes libc fall back to clone, which is filtered. */
		bool c3 = false;
		for (size_t i = 0; i < n; i++)
			c3 |= strcmp(rules[i].name, "clone3") == 0;
		if (!c3 && (r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
			goto fail;
	}
	/* TIOCSTI pushes input into a terminal's queue, TIOCLINUX pastes a
	 * console selection the same way. The kernel reads the request as
	 * 32 bits, so only those are compared (high bits cannot hide it). */
	static const unsigned long tty_denied[] = {TIOCSTI, TIOCLINUX};
	for (size_t k = 0; !decided_ioctl && k < ELEMENTSOF(tty_denied); k++)
		if ((r = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
					  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, tty_denied[k]))) < 0)
			goto fail;
done:
	*ret = ctx;
	return 0;
fail:
	seccomp_release(ctx);
	return r;
}

typedef struct cache_entry {
	uint64_t hash;
	char *text;
	sc_filter *filter;
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry mem_cache[32];
static size_t mem_cache_n;

#define CACHE_MAGIC "SCMBPF1\n"

/* The file: magic, text length (u32), text, BPF. Only trusted when it is
 * ours and nobody else can write it. */
static int cache_read(const char *dir, uint64_t hash, const char *text, sc_filter *out)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/seccomp-%016llx.bpf", dir, (unsigned long long)hash);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return -ENOENT;
	if (st.st_uid != geteuid() || (st.st_mode & 022) || st.st_size > (1 << 22))
		return -EPERM;
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf || read(fd, buf, (size_t)st.st_size) != st.st_size)
		return -EIO;
	size_t tl = strlen(text), ml = strlen(CACHE_MAGIC);
	uint32_t flen;
	if ((size_t)st.st_size < ml + 4 || memcmp(buf, CACHE_MAGIC, ml) != 0)
		return -EINVAL;
	memcpy(&flen, buf + ml, 4);
	size_t off = ml + 4;
	if (flen != tl || (size_t)st.st_size < off + tl || memcmp(buf + off, text, tl) != 0)
		return -EINVAL;
	off += tl;
	size_t blen = (size_t)st.st_size - off;
	if (blen == 0 || blen % sizeof(struct sock_filter) || blen / sizeof(struct sock_filter) > 4096)
		return -EINVAL;
	struct sock_filter *f = malloc(blen);
	if (!f)
		return -ENOMEM;
	memcpy(f, buf + off, blen);
	out->prog = (struct sock_fprog){(unsigned short)(blen / sizeof(*f)), f};
	return 0;
}

static void cache_write(const char *dir, uint64_t hash, const char *text, const sc_filter *flt)
{
	char path[4096], tmp[4200];
	if (mkdir_p(dir, 0700) < 0)
		return;
	snprintf(path, sizeof(path), "%s/seccomp-%016llx.bpf", dir, (unsigned long long)hash);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	uint32_t tl = (uint32_t)strlen(text);
	size_t blen = flt->prog.len * sizeof(struct sock_filter);
	bool ok = write(fd, CACHE_MAGIC, strlen(CACHE_MAGIC)) == (ssize_t)strlen(CACHE_MAGIC) &&
		  write(fd, &tl, 4) == 4 && write(fd, text, tl) == (ssize_t)tl &&
		  write(fd, flt->prog.filter, blen) == (ssize_t)blen;
	/* rename is atomic: a racing launch sees the old file or the new. */
	if (!ok || rename(tmp, path) < 0)
		unlink(tmp);
}

static int compile(const container_spec *spec, const container_sandbox *sb, sc_filter *out)
{
	scmp_filter_ctx ctx = NULL;
	int r = build(spec, sb, &ctx);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = memfd_create("scm-bpf", MFD_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		seccomp_release(ctx);
		return r;
	}
	r = seccomp_export_bpf(ctx, fd);
	seccomp_release(ctx);
	if (r < 0)
		return r;
	off_t len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) || len > (1 << 20))
		return -EIO;
	struct sock_filter *f = malloc((size_t)len);
	if (!f)
		return -ENOMEM;
	if (pread(fd, f, (size_t)len, 0) != len) {
		free(f);
		return -EIO;
	}
	out->prog = (struct sock_fprog){(unsigned short)(len / (off_t)sizeof(*f)), f};
	return 0;
}

int seccomp_prepare(const container_spec *spec, const container_sandbox *sb, const char *cache_dir,
		    const sc_filter **ret, scm_error **ret_err)
{
	_cleanup_free_ char *text = rules_text(spec, sb);
	if (!text)
		return -ENOMEM;
	uint64_t h = fnv1a(text);
	int r = 0;
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < mem_cache_n; i++)
		if (mem_cache[i].hash == h && strcmp(mem_cache[i].text, text) == 0) {
			*ret = mem_cache[i].filter;
			goto out;
		}
	sc_filter f;
	if (!cache_dir || cache_read(cache_dir, h, text, &f) < 0) {
		r = compile(spec, sb, &f);
		if (r < 0) {
			ctr_fail(ret_err, r, "seccomp: compiling the filter: %s",
					       strerror(-r));
			goto out;
		}
		if (cache_dir)
			cache_write(cache_dir, h, text, &f);
	}
	sc_filter *heap = malloc(sizeof(*heap));
	if (!heap) {
		free(f.prog.filter);
		r = -ENOMEM;
		goto out;
	}
	*heap = f;
	/* A full table forgets a slot; the filter itself is never freed, as
	 * running containers may still point at it (32 distinct rule sets
	 * before that happens, each a few KiB). */
	size_t slot = mem_cache_n < ELEMENTSOF(mem_cache) ? mem_cache_n++ : (size_t)(h % ELEMENTSOF(mem_cache));
	if (mem_cache[slot].text)
		free(mem_cache[slot].text);
	mem_cache[slot] = (cache_entry){h, TAKE_PTR(text), heap};
	*ret = heap;
out:
	pthread_mutex_unlock(&cache_lock);
	return r;
}

int sc_filter_load(const sc_filter *f)
{
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &f->prog) < 0)
		return -errno;
	return 0;
}
