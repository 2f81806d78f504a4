/* bench-containers: launch-to-exit of /bin/true in the full sandbox (all
 * namespaces, seccomp, no capabilities, PID 1) with libscmcontainers, in
 * process (as scmd uses it) and through the scm-run CLI, against bwrap,
 * crun, `unshare -Urmpf` and a bare fork+exec, in interleaved rounds;
 * launches per second one at a time and two in parallel; and the memory
 * an idle container costs. Prints `container <name>: <value> <unit>
 * (ratio ...)` lines for tests/bench/run-all.
 *
 * crun refuses hybrid cgroup hosts, so (as /work/shared/ANCHORS.md says)
 * the whole bench runs in a private mount namespace with cgroup2 mounted
 * on /sys/fs/cgroup, and crun's config has no linux.resources. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "container.h"

extern char **environ;

static const char *scm_run_path;
static char crun_bundle[PATH_MAX + 64], crun_root[PATH_MAX + 64], crun_rootfs[PATH_MAX + 128],
	state_dir[PATH_MAX];
static int devnull = -1;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int run_argv(char *const *argv)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, devnull, 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	pid_t pid;
	int r = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		return -r;
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* ---- launchers: each runs /bin/true once, returns 0 on success ---- */

static int launch_lib_opts(const container_sandbox *sb)
{
	char *argv[] = {"/bin/true", NULL};
	container_spec *spec = NULL;
	container *c = NULL;
	scm_error *err = NULL;
	/* As scmd launches: in a user namespace on a subordinate range. */
	static const container_idrange range = {CONTAINER_SUBID_DEFAULT_START, CONTAINER_SUBID_DEFAULT_COUNT,
						CONTAINER_SUBID_DEFAULT_START, CONTAINER_SUBID_DEFAULT_COUNT};
	container_opts o = CONTAINER_OPTS_INIT;
	o.state_dir = state_dir;
	o.sandbox = sb;
	o.idrange = &range;
	int r = container_spec_quick(argv, &spec);
	if (r == 0 && sb)
		r = container_sandbox_apply(spec, sb);
	if (r == 0)
		r = container_start(spec, &o, &c, &err);
	int status = -1;
	if (r == 0)
		r = container_wait(c, &status);
	if (r == 0 && status != 0)
		r = -EIO;
	if (err) {
		fprintf(stderr, "scm: %s\n", err->message);
		scm_error_free(err);
	}
	container_free(c);
	container_spec_free(spec);
	return r;
}

static int launch_lib(void)
{
	return launch_lib_opts(NULL);
}

static container_sandbox *limits_sb;
static int launch_lib_limits(void)
{
	return launch_lib_opts(limits_sb);
}

static int launch_cli(void)
{
	char *argv[] = {(char *)scm_run_path, "--state-dir", state_dir, "--subids", "2147483648:65536",
			"--", "/bin/true", NULL};
	return run_argv(argv);
}

static int launch_bwrap(void)
{
	char *argv[] = {"/usr/bin/bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
			"--dev", "/dev", "true", NULL};
	return run_argv(argv);
}

static int launch_crun(void)
{
	static unsigned n;
	char id[64];
	snprintf(id, sizeof(id), "bench-%d-%u", (int)getpid(), __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED));
	char *argv[] = {"/usr/bin/crun", "--root", crun_root, "run", "-b", crun_bundle, id, NULL};
	return run_argv(argv);
}

static int launch_unshare(void)
{
	char *argv[] = {"/usr/bin/unshare", "-Urmpf", "--mount-proc", "/bin/true", NULL};
	return run_argv(argv);
}

static int launch_fork(void)
{
	char *argv[] = {"/bin/true", NULL};
	return run_argv(argv);
}

typedef struct launcher {
	const char *name;
	int (*fn)(void);
	bool available;
	double *samples;
	size_t n;
	double median, per_s1, per_s2;
} launcher;

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(double), cmp_double);
	return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

typedef struct par_arg {
	int (*fn)(void);
	int count, failures;
} par_arg;

static void *par_thread(void *p)
{
	par_arg *a = p;
	for (int i = 0; i < a->count; i++)
		if (a->fn() < 0)
			a->failures++;
	return NULL;
}

/* Launches per second with `width` launchers side by side. */
static double rate(int (*fn)(void), int width, int count)
{
	pthread_t t[2];
	par_arg a[2];
	double t0 = now_ms();
	for (int i = 0; i < width; i++) {
		a[i] = (par_arg){fn, count, 0};
		pthread_create(&t[i], NULL, par_thread, &a[i]);
	}
	int fails = 0;
	for (int i = 0; i < width; i++) {
		pthread_join(t[i], NULL);
		fails += a[i].failures;
	}
	double ms = now_ms() - t0;
	return fails ? 0 : width * count * 1000.0 / ms;
}

static int setup_crun(void)
{
	snprintf(crun_bundle, sizeof(crun_bundle), "%s/crun-bundle", state_dir);
	snprintf(crun_root, sizeof(crun_root), "%s/crun-root", state_dir);
	snprintf(crun_rootfs, sizeof(crun_rootfs), "%s/rootfs", crun_bundle);
	mkdir(crun_bundle, 0755);
	mkdir(crun_root, 0700);
	mkdir(crun_rootfs, 0755);
	/* The rootfs is a read-only bind of / (crun cannot pivot into "/"),
	 * in our private mount namespace only. */
	if (mount("/", crun_rootfs, NULL, MS_BIND | MS_REC, NULL) < 0 ||
	    mount(NULL, crun_rootfs, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
		return -errno;
	char path[PATH_MAX + 128];
	snprintf(path, sizeof(path), "%s/config.json", crun_bundle);
	FILE *f = fopen(path, "we");
	if (!f)
		return -errno;
	/* crun spec's defaults with the rootfs a read-only bind of / (as the
	 * anchors), /bin/true, no terminal and no linux.resources. */
	fputs("{\"ociVersion\":\"1.0.0\",\"process\":{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0},"
	      "\"args\":[\"/bin/true\"],\"env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"],\"cwd\":\"/\","
	      "\"capabilities\":{\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
	      "\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
	      "\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},"
	      "\"noNewPrivileges\":true},\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"crun\","
	      "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
	      "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
	      "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\",\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\"]},"
	      "{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\",\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},"
	      "{\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"source\":\"tmpfs\",\"options\":[\"nosuid\",\"nodev\"]}],"
	      "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},{\"type\":\"uts\"},{\"type\":\"mount\"}],"
	      "\"maskedPaths\":[\"/proc/kcore\",\"/proc/keys\",\"/proc/timer_list\",\"/sys/firmware\"],"
	      "\"readonlyPaths\":[\"/proc/sys\",\"/proc/sysrq-trigger\",\"/proc/bus\"]}}\n",
	      f);
	fclose(f);
	return 0;
}

/* What an idle container costs: the runtime's own RSS growth per running
 * container (what scmd holds) and the PSS of the container's processes. */
static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static long pss_kib_tree(pid_t pid)
{
	char path[96], line[256];
	long total = 0, v;
	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Pss: %ld", &v) == 1)
			total += v;
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	f = fopen(path, "re");
	int child;
	while (f && fscanf(f, "%d", &child) == 1)
		total += pss_kib_tree(child);
	if (f)
		fclose(f);
	return total;
}

static void idle_memory(void)
{
	enum { N = 32 };
	container *cs[N] = {0};
	char *argv[] = {"/bin/sleep", "1000", NULL};
	container_spec *spec = NULL;
	if (container_spec_quick(argv, &spec) != 0)
		return;
	container_opts o = CONTAINER_OPTS_INIT;
	o.state_dir = state_dir;
	(void)launch_lib(); /* warm: allocator, filter cache */
	long before = rss_kib(getpid());
	int started = 0;
	for (int i = 0; i < N; i++) {
		scm_error *err = NULL;
		if (container_start(spec, &o, &cs[i], &err) == 0)
			started++;
		scm_error_free(err);
	}
	/* container_start returns once each main process has exec'd. */
	long after = rss_kib(getpid()), pss = 0;
	for (int i = 0; i < N; i++)
		if (cs[i])
			pss += pss_kib_tree(container_pid(cs[i]));
	for (int i = 0; i < N; i++)
		container_free(cs[i]);
	container_spec_free(spec);
	if (started)
		printf("container idle-memory runtime: %.1f KiB per container (RSS growth of the "
		       "launching process over %d idle containers)\n"
		       "container idle-memory in-container: %.0f KiB per container (PSS of PID 1 + "
		       "sleep)\n",
		       (double)(after - before) / started, started, (double)pss / started);
}

int main(int argc, char **argv)
{
	int rounds = 7, per_round = 30, rate_count = 60;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--per-round"))
			per_round = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rate-count"))
			rate_count = atoi(argv[i + 1]);
	}
	if (geteuid() != 0) {
		fprintf(stderr, "bench-containers: run as root (crun and cgroups)\n");
		return 1;
	}
	const char *build = getenv("SCM_BUILD");
	static char cli[PATH_MAX];
	snprintf(cli, sizeof(cli), "%s/bin/scm-run", build ? build : "build");
	scm_run_path = cli;
	snprintf(state_dir, sizeof(state_dir), "/run/scm-bench-%d", (int)getpid());
	mkdir(state_dir, 0700);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);

	/* A private mount namespace with cgroup2 on /sys/fs/cgroup, for crun;
	 * the host's namespace stays at hand for the cgroup-limited runs. */
	int host_mnt = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, NULL) < 0)
		fprintf(stderr, "bench-containers: private cgroup2 mount for crun: %m\n");
	setup_crun();
	const char *sbj = "{\"pids\":256,\"memory\":268435456}";
	scm_error *err = NULL;
	container_sandbox_parse(sbj, strlen(sbj), &limits_sb, &err);

	launcher ls[] = {
		{.name = "scm-lib", .fn = launch_lib},
		{.name = "scm-run", .fn = launch_cli},
		{.name = "bwrap", .fn = launch_bwrap},
		{.name = "crun", .fn = launch_crun},
		{.name = "unshare-Urmpf", .fn = launch_unshare},
		{.name = "fork-exec", .fn = launch_fork},
	};
	size_t nl = sizeof(ls) / sizeof(ls[0]);
	for (size_t k = 0; k < nl; k++) {
		ls[k].available = ls[k].fn() == 0; /* warm caches, check it works */
		if (!ls[k].available)
			fprintf(stderr, "bench-containers: %s does not run here; left out\n", ls[k].name);
		ls[k].samples = calloc((size_t)(rounds * per_round), sizeof(double));
	}
	/* Interleaved rounds: every launcher runs a batch per round, so drift
	 * in the machine hits all of them alike. */
	for (int r = 0; r < rounds; r++)
		for (size_t k = 0; k < nl; k++)
			for (int i = 0; ls[k].available && i < per_round; i++) {
				double t0 = now_ms();
				if (ls[k].fn() == 0)
					ls[k].samples[ls[k].n++] = now_ms() - t0;
			}
	for (size_t k = 0; k < nl; k++)
		ls[k].median = median(ls[k].samples, ls[k].n);
	for (size_t k = 0; k < nl; k++)
		if (ls[k].available) {
			ls[k].per_s1 = rate(ls[k].fn, 1, rate_count);
			ls[k].per_s2 = rate(ls[k].fn, 2, rate_count / 2);
		}
	const launcher *bw = &ls[2], *cr = &ls[3];
	for (size_t k = 0; k < nl; k++) {
		if (!ls[k].available)
			continue;
		printf("container launch %s: %.2f ms median of %zu", ls[k].name, ls[k].median, ls[k].n);
		if (k < 2 && bw->available && cr->available)
			printf(" (%.2fx bwrap's %.2f ms, %.2fx crun's %.2f ms; target < 1x bwrap, <= 0.5x crun)",
			       ls[k].median / bw->median, bw->median, ls[k].median / cr->median, cr->median);
		printf("\n");
	}
	for (size_t k = 0; k < nl; k++) {
		if (!ls[k].available)
			continue;
		printf("container launches/s %s: %.0f /s one at a time, %.0f /s two in parallel", ls[k].name,
		       ls[k].per_s1, ls[k].per_s2);
		if (k < 2 && bw->available && cr->available && bw->per_s1 > 0 && cr->per_s1 > 0)
			printf(" (%.2fx bwrap, %.2fx crun one at a time; %.2fx bwrap, %.2fx crun two)",
			       ls[k].per_s1 / bw->per_s1, ls[k].per_s1 / cr->per_s1, ls[k].per_s2 / bw->per_s2,
			       ls[k].per_s2 / cr->per_s2);
		printf("\n");
	}
	/* With cgroup limits (v1 pids+memory here): what a limited launch
	 * costs, back in the host's mount namespace (single-threaded again). */
	if (host_mnt >= 0 && setns(host_mnt, CLONE_NEWNS) < 0)
		fprintf(stderr, "bench-containers: back to the host mount namespace: %m\n");
	if (limits_sb && launch_lib_limits() == 0) {
		double *v = calloc((size_t)per_round * 3, sizeof(double));
		size_t n = 0;
		for (int i = 0; i < per_round * 3; i++) {
			double t0 = now_ms();
			if (launch_lib_limits() == 0)
				v[n++] = now_ms() - t0;
		}
		printf("container launch scm-lib+limits: %.2f ms median of %zu (%.2fx scm-lib; pids+memory cgroup created and removed)\n",
		       median(v, n), n, median(v, n) / ls[0].median);
		free(v);
	}
	idle_memory();
	/* Never recurse into the bind of /: detach it and remove the empty
	 * directory first, and keep rm on one file system anyway. */
	char cmd[PATH_MAX + 64];
	if (umount2(crun_rootfs, MNT_DETACH) < 0 && errno != EINVAL)
		fprintf(stderr, "bench-containers: umount %s: %m\n", crun_rootfs);
	if (rmdir(crun_rootfs) == 0 || errno == ENOENT) {
		snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system %s", state_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "bench-containers: could not remove %s\n", state_dir);
	} else
		fprintf(stderr, "bench-containers: %s not empty, left in place\n", crun_rootfs);
	container_sandbox_free(limits_sb);
	return ls[0].available ? 0 : 1;
}
