/* scm-test-helper: a small static program the security and lifecycle
 * tests run inside containers (in the manner of crun's tests/init.c).
 *
 * try-syscall NAME... calls each system call with bad arguments, so an
 * allowed call fails in the kernel (EBADF, EFAULT, EINVAL, ENOENT ...) and
 * a filtered one fails with the filter's EPERM; it prints "NAME: ERRNO".
 * The other subcommands print what the tests look at. Exit 0 means the
 * subcommand did what it says (for probes such as open: it succeeded). */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define BAD ((long)1) /* a pointer no call can read */

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "E?";
}

/* Returns the errno the call ended with, 0 for success. */
static int try_one(const char *name)
{
	long r = -2;
	errno = 0;
#define IS(x) (strcmp(name, x) == 0)
	if (IS("mount")) r = syscall(SYS_mount, 0, 0, 0, 0, 0);
	else if (IS("umount2")) r = syscall(SYS_umount2, 0, 0xffff);
	else if (IS("pivot_root")) r = syscall(SYS_pivot_root, 0, 0);
	else if (IS("chroot")) r = syscall(SYS_chroot, 0);
	else if (IS("fsopen")) r = syscall(SYS_fsopen, 0, 0);
	else if (IS("fsconfig")) r = syscall(SYS_fsconfig, -1, 0, 0, 0, 0);
	else if (IS("fsmount")) r = syscall(SYS_fsmount, -1, 0, 0);
	else if (IS("fspick")) r = syscall(SYS_fspick, -1, 0, 0);
	else if (IS("move_mount")) r = syscall(SYS_move_mount, -1, 0, -1, 0, 0);
	else if (IS("open_tree")) r = syscall(SYS_open_tree, -1, 0, 0);
	else if (IS("mount_setattr")) r = syscall(SYS_mount_setattr, -1, 0, 0, 0, 0);
	else if (IS("kexec_load")) r = syscall(SYS_kexec_load, 0, 0x7fffffffL, 0, 0);
	else if (IS("kexec_file_load")) r = syscall(SYS_kexec_file_load, -1, -1, 0, 0, -1L);
	else if (IS("init_module")) r = syscall(SYS_init_module, 0, 0, 0);
	else if (IS("finit_module")) r = syscall(SYS_finit_module, -1, 0, 0);
	else if (IS("delete_module")) r = syscall(SYS_delete_module, 0, 0);
	else if (IS("create_module")) r = syscall(SYS_create_module, 0, 0);
	else if (IS("bpf")) r = syscall(SYS_bpf, -1, 0, 0);
	else if (IS("perf_event_open")) r = syscall(SYS_perf_event_open, 0, 0, -1, -1, 0);
	else if (IS("lookup_dcookie")) r = syscall(SYS_lookup_dcookie, 0, 0, 0);
	else if (IS("uselib")) r = syscall(SYS_uselib, 0);
	else if (IS("iopl")) r = syscall(SYS_iopl, 99);
	else if (IS("ioperm")) r = syscall(SYS_ioperm, 0xffffffffL, 1, 0);
	else if (IS("syslog")) r = syscall(SYS_syslog, -1, 0, 0);
	else if (IS("keyctl")) r = syscall(SYS_keyctl, -1, 0, 0, 0, 0);
	else if (IS("add_key")) r = syscall(SYS_add_key, 0, 0, 0, 0, 0);
	else if (IS("request_key")) r = syscall(SYS_request_key, 0, 0, 0, 0);
	else if (IS("ptrace")) r = syscall(SYS_ptrace, -1L, 0, 0, 0);
	else if (IS("process_vm_readv")) r = syscall(SYS_process_vm_readv, getpid(), BAD, 1, BAD, 1, 0);
	else if (IS("process_vm_writev")) r = syscall(SYS_process_vm_writev, getpid(), BAD, 1, BAD, 1, 0);
	else if (IS("reboot")) r = syscall(SYS_reboot, 0, 0, 0, 0);
	else if (IS("swapon")) r = syscall(SYS_swapon, 0, 0);
	else if (IS("swapoff")) r = syscall(SYS_swapoff, 0);
	else if (IS("acct")) r = syscall(SYS_acct, BAD);
	else if (IS("quotactl")) r = syscall(SYS_quotactl, 0, 0, 0, 0);
	else if (IS("quotactl_fd")) r = syscall(SYS_quotactl_fd, -1, 0, 0, 0);
	else if (IS("clock_settime")) r = syscall(SYS_clock_settime, 0, 0);
	else if (IS("settimeofday")) r = syscall(SYS_settimeofday, BAD, 0);
	else if (IS("adjtimex")) r = syscall(SYS_adjtimex, 0);
	else if (IS("clock_adjtime")) r = syscall(SYS_clock_adjtime, 0, 0);
	else if (IS("open_by_handle_at")) r = syscall(SYS_open_by_handle_at, -1, 0, 0);
	else if (IS("name_to_handle_at")) r = syscall(SYS_name_to_handle_at, -1, 0, 0, 0, 0);
	else if (IS("userfaultfd")) r = syscall(SYS_userfaultfd, -1);
	else if (IS("unshare")) r = syscall(SYS_unshare, 1);
	else if (IS("setns")) r = syscall(SYS_setns, -1, 0);
	else if (IS("mknod")) r = syscall(SYS_mknod, "/nonexistent/dev", S_IFCHR | 0600, makedev(1, 3));
	else if (IS("mknodat")) r = syscall(SYS_mknodat, AT_FDCWD, "/nonexistent/dev", S_IFBLK | 0600, makedev(7, 0));
	else if (IS("mknod-fifo")) r = syscall(SYS_mknod, "/nonexistent/fifo", S_IFIFO | 0600, 0);
	else if (IS("ioctl-tiocsti")) r = syscall(SYS_ioctl, -1, TIOCSTI, 0);
	else if (IS("ioctl-tiocsti-high")) r = syscall(SYS_ioctl, -1, 0x100000000UL | TIOCSTI, 0);
	else if (IS("ioctl-tioclinux")) r = syscall(SYS_ioctl, -1, TIOCLINUX, 0);
	else if (IS("io_uring_setup")) r = syscall(SYS_io_uring_setup, 0, 0);
	else if (IS("io_uring_enter")) r = syscall(SYS_io_uring_enter, -1, 0, 0, 0, 0, 0);
	else if (IS("io_uring_register")) r = syscall(SYS_io_uring_register, -1, 0, 0, 0);
	else if (IS("pidfd_getfd")) r = syscall(SYS_pidfd_getfd, -1, 0, 0);
	else if (IS("kcmp")) r = syscall(SYS_kcmp, getpid(), getpid(), 99, 0, 0);
	else if (IS("process_madvise")) r = syscall(SYS_process_madvise, -1, BAD, 1, 0, 0);
	else if (IS("move_pages")) r = syscall(SYS_move_pages, 0, 1, BAD, 0, BAD, ~0L);
	else if (IS("migrate_pages")) r = syscall(SYS_migrate_pages, -1, 0, BAD, BAD);
	else if (IS("fanotify_init")) r = syscall(SYS_fanotify_init, ~0u, 0);
	else if (IS("clone3")) r = syscall(SYS_clone3, 0, 0);
	else if (IS("socket-packet") || IS("socket-raw")) {
		r = IS("socket-packet") ? socket(AF_PACKET, SOCK_RAW, 0) : socket(AF_INET, SOCK_RAW, 1);
		if (r >= 0)
			close((int)r);
	} else if (!strncmp(name, "clone-new", 9)) {
		long flag = IS("clone-newuser") ? CLONE_NEWUSER : IS("clone-newns") ? CLONE_NEWNS
			  : IS("clone-newnet") ? CLONE_NEWNET : IS("clone-newpid") ? CLONE_NEWPID : 0;
		if (!flag)
			return -1;
		r = syscall(SYS_clone, flag | SIGCHLD, 0, 0, 0, 0);
		if (r == 0)
			_exit(0);
		if (r > 0)
			waitpid((pid_t)r, NULL, 0);
	}
	/* Controls: always allowed, to show the method works. */
	else if (IS("dup")) r = syscall(SYS_dup, -1);
	else if (IS("read")) r = syscall(SYS_read, -1, 0, 0);
	else return -1;
	return r < 0 ? errno : 0;
}

static int cmd_try_syscall(int argc, char **argv)
{
	int rc = 0;
	for (int i = 0; i < argc; i++) {
		int e = try_one(argv[i]);
		if (e < 0) {
			printf("%s: unknown\n", argv[i]);
			rc = 2;
		} else
			printf("%s: %s\n", argv[i], e ? ename(e) : "OK");
	}
	return rc;
}

static int cmd_caps(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	if (!f)
		return 1;
	static const char *const keys[][2] = {{"CapInh:", "inheritable"}, {"CapPrm:", "permitted"},
					      {"CapEff:", "effective"}, {"CapBnd:", "bounding"},
					      {"CapAmb:", "ambient"}};
	while (fgets(line, sizeof(line), f))
		for (size_t k = 0; k < 5; k++)
			if (!strncmp(line, keys[k][0], strlen(keys[k][0])))
				printf("%s=%s", keys[k][1], line + strlen(keys[k][0]) + 1);
	fclose(f);
	return 0;
}

static int grep_status(const char *key)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			fputs(line, stdout);
	fclose(f);
	return 0;
}

static int cmd_ls(const char *path, bool only_pids)
{
	DIR *d = opendir(path);
	if (!d) {
		printf("%s: %s\n", path, ename(errno));
		return 1;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (only_pids && strspn(de->d_name, "0123456789") != strlen(de->d_name))
			continue;
		printf("%s\n", de->d_name);
	}
	closedir(d);
	return 0;
}

static int cmd_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("open %s: %s\n", path, ename(errno));
		return 1;
	}
	printf("open %s: OK\n", path);
	close(fd);
	return 0;
}

static int cmd_write(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(text);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
		printf("write %s: %s\n", path, ename(errno));
		return 1;
	}
	printf("write %s: OK\n", path);
	close(fd);
	return 0;
}

/* Everything a container could do to an inode it was shown in place of
 * another: write, chmod, touch, chown. Prints each outcome; exit 0 when
 * every one failed. */
static int cmd_tamper(const char *path)
{
	int ok = 0, fd = open(path, O_WRONLY | O_CLOEXEC);
	int e = fd < 0 ? errno : (write(fd, "x", 1) == 1 ? 0 : errno);
	printf("tamper %s: write %s\n", path, e ? ename(e) : "OK");
	ok += !e;
	if (fd >= 0)
		close(fd);
	e = chmod(path, 0) < 0 ? errno : 0;
	printf("tamper %s: chmod %s\n", path, e ? ename(e) : "OK");
	ok += !e;
	e = utimensat(AT_FDCWD, path, NULL, 0) < 0 ? errno : 0;
	printf("tamper %s: touch %s\n", path, e ? ename(e) : "OK");
	ok += !e;
	e = chown(path, 1, 1) < 0 ? errno : 0;
	printf("tamper %s: chown %s\n", path, e ? ename(e) : "OK");
	ok += !e;
	return ok ? 1 : 0;
}

/* Terminal probes on fd 0: turn echo off (as `stty -echo` would) and push
 * input with TIOCSTI. */
static int cmd_noecho(void)
{
	struct termios t;
	if (tcgetattr(0, &t) < 0) {
		printf("noecho: %s\n", ename(errno));
		return 1;
	}
	t.c_lflag &= ~(tcflag_t)ECHO;
	if (tcsetattr(0, TCSANOW, &t) < 0) {
		printf("noecho: %s\n", ename(errno));
		return 1;
	}
	printf("noecho: OK\n");
	return 0;
}

static int cmd_tiocsti(const char *text)
{
	int e = 0;
	for (const char *c = text; *c && !e; c++)
		if (ioctl(0, TIOCSTI, c) < 0)
			e = errno;
	printf("tiocsti: %s\n", e ? ename(e) : "OK");
	return e ? 1 : 0;
}

static int cmd_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* A SEQPACKET listener refuses a stream connect: try that too. */
		int e = errno;
		if (fd >= 0)
			close(fd);
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (e != EPROTOTYPE || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			printf("connect %s: %s\n", path, ename(e == EPROTOTYPE ? errno : e));
			return 1;
		}
	}
	printf("connect %s: OK\n", path);
	close(fd);
	return 0;
}

/* Listens on PATH (mode 0666 so a rootless container may connect), prints
 * "listening", serves connections until killed. */
static int cmd_listen(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		printf("listen %s: %s\n", path, ename(errno));
		return 1;
	}
	chmod(path, 0666);
	printf("listening\n");
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0)
			close(c);
	}
}

static int cmd_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("read %s: %s\n", path, ename(errno));
		return 1;
	}
	char buf[4096];
	long total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0 && total < (1L << 20))
		total += n;
	printf("read %s: %ld bytes%s%s\n", path, total, n < 0 ? ", then " : "", n < 0 ? ename(errno) : "");
	close(fd);
	return n < 0;
}

static int cmd_forkbomb(void)
{
	long n = 0;
	for (;;) {
		pid_t p = fork();
		if (p == 0) {
			pause();
			_exit(0);
		}
		if (p < 0) {
			printf("forkbomb: stopped after %ld forks: %s\n", n, ename(errno));
			fflush(stdout);
			return 0;
		}
		if (++n >= 100000) {
			printf("forkbomb: not stopped after %ld forks\n", n);
			return 1;
		}
	}
}

static int cmd_memhog(long mb)
{
	long got = 0;
	for (; got < mb; got++) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			printf("memhog: stopped after %ld MB: %s\n", got, ename(errno));
			return 1;
		}
		for (size_t i = 0; i < (1u << 20); i += 4096)
			p[i] = 1; /* touch: make it resident */
	}
	printf("memhog: allocated %ld MB\n", got);
	return 0;
}

static volatile sig_atomic_t got_term;
static void on_term(int sig)
{
	got_term = sig;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: scm-test-helper try-syscall NAME...|caps|nnp|id|open PATH|"
				"ls PATH|pids|raw-socket|mknod|connect-unix PATH|forkbomb|memhog MB|"
				"mknod [PATH MAJOR MINOR TEXT]|write PATH [TEXT]|tamper PATH|noecho|tiocsti TEXT|read PATH|listen-unix PATH|trap-term CODE|ignore-term|exit CODE|"
				"sleep SECONDS\n");
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "try-syscall")) return cmd_try_syscall(argc - 2, argv + 2);
	if (!strcmp(c, "caps")) return cmd_caps();
	if (!strcmp(c, "nnp")) return grep_status("NoNewPrivs:");
	if (!strcmp(c, "seccomp")) return grep_status("Seccomp:");
	if (!strcmp(c, "id")) {
		printf("uid=%d gid=%d euid=%d egid=%d pid=%d\n", (int)getuid(), (int)getgid(),
		       (int)geteuid(), (int)getegid(), (int)getpid());
		return 0;
	}
	if (!strcmp(c, "open") && argc == 3) return cmd_open(argv[2]);
	if (!strcmp(c, "ls") && argc == 3) return cmd_ls(argv[2], false);
	if (!strcmp(c, "pids")) return cmd_ls("/proc", true);
	if (!strcmp(c, "write") && (argc == 3 || argc == 4))
		return cmd_write(argv[2], argc == 4 ? argv[3] : "x");
	if (!strcmp(c, "tamper") && argc == 3) return cmd_tamper(argv[2]);
	if (!strcmp(c, "noecho")) return cmd_noecho();
	if (!strcmp(c, "tiocsti") && argc == 3) return cmd_tiocsti(argv[2]);
	if (!strcmp(c, "connect-unix") && argc == 3) return cmd_connect(argv[2]);
	if (!strcmp(c, "raw-socket")) {
		int a = try_one("socket-raw"), b = try_one("socket-packet");
		printf("raw-socket: inet %s, packet %s\n", a ? ename(a) : "OK", b ? ename(b) : "OK");
		return a && b ? 0 : 1;
	}
	if (!strcmp(c, "mknod") && argc == 2) {
		int r = mknod("/tmp/scm-test-null", S_IFCHR | 0666, makedev(1, 3));
		printf("mknod: %s\n", r < 0 ? ename(errno) : "OK");
		return r < 0 ? 0 : 1;
	}
	if (!strcmp(c, "mknod") && argc == 6) {
		/* mknod PATH MAJOR MINOR TEXT: make a char node, then write. */
		int r = mknod(argv[2], S_IFCHR | 0666, makedev(atoi(argv[3]), atoi(argv[4])));
		printf("mknod %s: %s\n", argv[2], r < 0 ? ename(errno) : "OK");
		return r < 0 ? 1 : cmd_write(argv[2], argv[5]);
	}
	if (!strcmp(c, "forkbomb")) return cmd_forkbomb();
	if (!strcmp(c, "listen-unix") && argc == 3) return cmd_listen(argv[2]);
	if (!strcmp(c, "read") && argc == 3) return cmd_read(argv[2]);
	if (!strcmp(c, "memhog") && argc == 3) return cmd_memhog(atol(argv[2]));
	if (!strcmp(c, "exit") && argc == 3) return atoi(argv[2]);
	if (!strcmp(c, "sleep") && argc == 3) {
		sleep((unsigned)atoi(argv[2]));
		return 0;
	}
	if (!strcmp(c, "trap-term") && argc == 3) {
		signal(SIGTERM, on_term);
		printf("ready\n");
		while (!got_term)
			pause();
		printf("got SIGTERM\n");
		return atoi(argv[2]);
	}
	if (!strcmp(c, "ignore-term")) {
		signal(SIGTERM, SIG_IGN);
		printf("ready\n");
		for (;;)
			pause();
	}
	fprintf(stderr, "scm-test-helper: unknown subcommand %s\n", c);
	return 2;
}
