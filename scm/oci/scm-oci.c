/* scm-oci: an OCI runtime front end with runc's command line, so podman,
 * containerd (io.containerd.runc.v2 with BinaryName) and CRI-O can run
 * scm containers. The containers are scmd's (identity, policy, endpoint):
 * this program translates the engine's bundle, keeps runc-style state and
 * leaves the monitor the engine watches (oci.h). docs/oci.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "container.h"
#include "oci.h"
#include "scm/macro.h"
#include "scmutil.h"

#define SCM_OCI_VERSION "0.1"

int oci_fail(scm_error *e)
{
	_cleanup_free_ char *text = scm_error_text(e);
	fprintf(stderr, "scm-oci: ");
	scm_error_print(e, stderr);
	if (oci_g.log) {
		FILE *f = fopen(oci_g.log, "ae");
		if (f) {
			char ts[64];
			time_t t = time(NULL);
			strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
			if (oci_g.log_json) {
				json_object *o = json_object_new_object();
				json_object_object_add(o, "level", json_object_new_string("error"));
				json_object_object_add(o, "msg", json_object_new_string(text ? text : "?"));
				json_object_object_add(o, "time", json_object_new_string(ts));
				fprintf(f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
				json_object_put(o);
			} else
				fprintf(f, "time=\"%s\" level=error msg=\"%s\"\n", ts, text ? text : "?");
			fclose(f);
		}
	}
	scm_error_free(e);
	return 1;
}

static int usage(const char *fmt, ...) _printf_(1, 2);
static int usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = scm_error_newv(SCM_E_INVALID, "scm-oci", fmt, ap);
	va_end(ap);
	oci_fail(e);
	fprintf(stderr, "Try 'scm-oci --help'.\n");
	return 1;
}

static int need_id(int argc, char **argv, const char *cmd)
{
	if (optind != argc - 1 && !(strcmp(cmd, "kill") == 0 && optind == argc - 2))
		return usage("%s needs one container id", cmd);
	if (!oci_id_valid(argv[optind]))
		return usage("container id \"%.80s\" is not valid: 1-1024 of [A-Za-z0-9_+.-]", argv[optind]);
	return 0;
}

/* Missing mount points in the engine's rootfs, made as its owner (the
 * container's mapped root cannot), resolved by fd inside it. */
static int make_mountpoints(json_object *cfg, json_object *binds, scm_error **ret_err)
{
	json_object *root, *path, *ms;
	json_object_object_get_ex(cfg, "root", &root);
	json_object_object_get_ex(root, "path", &path);
	const char *rp = json_object_get_string(path);
	_cleanup_close_ int rfd = open(rp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0)
		return scm_fail(ret_err, CONTAINER_E_ROOTFS, "config.json /root/path: %s: %m", rp);
	int r = container_rootfs_mountpoint(rfd, "/run/scm", false);
	for (int k = 0; r >= 0 && k < 2; k++) {
		json_object *arr = k == 0 ? (json_object_object_get_ex(cfg, "mounts", &ms) ? ms : NULL) : binds;
		for (size_t i = 0; r >= 0 && arr && i < json_object_array_length(arr); i++) {
			json_object *m = json_object_array_get_idx(arr, i), *d, *s;
			if (!json_object_object_get_ex(m, "destination", &d) || !json_object_is_type(d, json_type_string))
				continue;
			bool file = false;
			struct stat st;
			if (k == 1 && json_object_object_get_ex(m, "source", &s) &&
			    stat(json_object_get_string(s), &st) == 0)
				file = !S_ISDIR(st.st_mode);
			if ((r = container_rootfs_mountpoint(rfd, json_object_get_string(d), file)) < 0)
				return scm_fail(ret_err, CONTAINER_E_ROOTFS, "mount point %s in %s: %s",
						json_object_get_string(d), rp, strerror(-r));
		}
	}
	if (r < 0)
		return scm_fail(ret_err, CONTAINER_E_ROOTFS, "mount point %s in %s: %s", "/run/scm", rp,
				strerror(-r));
	return 0;
}

static int write_pid_file(const char *path, pid_t pid, scm_error **ret_err)
{
	char tmp[PATH_MAX], text[32];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.scm-oci-tmp", path) >= sizeof(tmp))
		return scm_fail(ret_err, -ENAMETOOLONG, "--pid-file %s: too long", path);
	snprintf(text, sizeof(text), "%d", (int)pid);
	_cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || rename(tmp, path) < 0)
		return scm_fail(ret_err, -errno, "--pid-file %s: %m", path);
	return 0;
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = { { "bundle", required_argument, NULL, 'b' },
					      { "pid-file", required_argument, NULL, 'p' },
					      { "console-socket", required_argument, NULL, 'c' },
					      { "no-pivot", no_argument, NULL, 'n' },
					      { "no-new-keyring", no_argument, NULL, 'k' },
					      { "preserve-fds", required_argument, NULL, 'f' },
					      {} };
	const char *bundle = ".", *pid_file = NULL, *console = NULL;
	for (int c; (c = getopt_long(argc, argv, "b:", opts, NULL)) != -1;) {
		if (c == 'b')
			bundle = optarg;
		else if (c == 'p')
			pid_file = optarg;
		else if (c == 'c')
			console = optarg;
		else if (c == 'f' && strcmp(optarg, "0") != 0)
			return usage("--preserve-fds %s: passing fds is not supported", optarg);
		else if (c == '?')
			return usage("create: unknown option");
	}
	if (need_id(argc, argv, "create"))
		return 1;
	const char *id = argv[optind];
	scm_error *e = NULL;
	char babs[PATH_MAX];
	if (!realpath(bundle, babs))
		return oci_fail(scm_error_new(-errno, "scm-oci", "--bundle %s: %s", bundle, strerror(errno)));
	_cleanup_close_ int bfd = open(babs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int cfd = bfd < 0 ? -1 : openat(bfd, "config.json", O_RDONLY | O_CLOEXEC);
	if (cfd < 0)
		return oci_fail(scm_error_new(SCM_E_INVALID, "scm-oci", "--bundle %s: no config.json: %s", babs,
					      strerror(errno)));
	_cleanup_free_ char *text = oci_read_file(bfd, "config.json");
	json_object *cfg = NULL, *binds = NULL, *ann = NULL;
	if (!text)
		return oci_fail(scm_error_new(-EIO, "scm-oci", "%s/config.json: unreadable", babs));
	int r = oci_translate(text, strlen(text), babs, &cfg, &binds, &e);
	if (r != 0)
		return oci_fail(scm_error_wrap(e, r, "scm-oci", "bundle %s", babs));
	json_object *process = NULL;
	json_object_object_get_ex(cfg, "process", &process);
	if ((r = oci_console_check(process, console, "config.json", &e)) != 0)
		return oci_fail(e);
	_cleanup_close_ int dfd = -1, tty_m = -1, tty_s = -1;
	struct oci_state st = { .id = (char *)id, .bundle = babs };
	struct oci_pod_pins pins = { 0 };
	int join[3] = { -1, -1, -1 };
	char name[49], created[64];
	oci_scm_name(id, name);
	st.name = name;
	if ((r = oci_state_dir(id, true, &dfd, &e)) != 0)
		goto fail_put;
	bool made = true;
	if ((r = oci_fix_ns_paths(cfg, &pins, &e)) != 0 || (r = oci_expose(dfd, cfg, binds, &e)) != 0)
		goto fail;
	const char *ctext = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN);
	if ((r = oci_write_file(dfd, "config.json", ctext, &e)) != 0)
		goto fail;
	/* scm's own parser on the result: its error names the field now, not
	 * at start */
	char self[64], sdir[PATH_MAX];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", dfd);
	ssize_t n = readlink(self, sdir, sizeof(sdir) - 1);
	sdir[n > 0 ? n : 0] = 0;
	container_spec *spec = NULL;
	if ((r = container_spec_load(sdir, &spec, &e)) != 0) {
		r = scm_fail(&e, r, "bundle %s, as scm takes it", babs);
		goto fail;
	}
	/* Pinned now, kept by the monitor, handed to scmd at start. */
	r = container_spec_open_joins(spec, join, &e);
	container_spec_free(spec);
	if (r == 0)
		r = oci_pod_pins_check(&pins, &e);
	if (r != 0) {
		r = scm_fail(&e, r, "bundle %s", babs);
		goto fail;
	}
	if ((r = make_mountpoints(cfg, binds, &e)) != 0)
		goto fail;
	if (console && (r = oci_console_open(process, &tty_m, &tty_s, &e)) != 0)
		goto fail;
	int sp[2];
	if (pipe2(sp, O_CLOEXEC) < 0) {
		r = scm_fail(&e, -errno, "pipe: %m");
		goto fail;
	}
	pid_t pid = fork();
	if (pid < 0) {
		r = scm_fail(&e, -errno, "fork: %m");
		goto fail;
	}
	if (pid == 0) {
		close(sp[0]);
		oci_shim_main(dfd, id, sp[1], tty_s, join);
	}
	close(sp[1]);
	for (int i = 0; i < 3; i++)
		join[i] = safe_close(join[i]);
	tty_s = safe_close(tty_s);
	char b;
	ssize_t k = read(sp[0], &b, 1);
	close(sp[0]);
	if (k != 1) {
		int status = 0;
		waitpid(pid, &status, 0);
		r = scm_fail(&e, -EIO, "the container's monitor did not start");
		goto fail;
	}
	/* the engine waits for the terminal before create returns */
	if (console && (r = oci_console_send(console, tty_m, &e)) != 0) {
		kill(pid, SIGKILL);
		goto fail;
	}
	time_t t = time(NULL);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	json_object_object_get_ex(cfg, "annotations", &ann);
	st.created = created;
	st.shim_pid = pid;
	st.shim_start = oci_proc_start(pid);
	st.annotations = ann;
	st.binds = binds;
	if ((r = oci_state_save(dfd, &st, &e)) != 0 || (pid_file && (r = write_pid_file(pid_file, pid, &e)) != 0)) {
		kill(pid, SIGKILL);
		goto fail;
	}
	json_object_put(cfg);
	json_object_put(binds);
	oci_pod_pins_done(&pins);
	return 0;
fail:
	if (made) {
		scm_error *e2 = NULL;
		oci_unexpose(dfd, json_object_array_length(binds));
		if (oci_state_remove(id, &e2) != 0)
			scm_error_free(e2);
	}
fail_put:
	for (int i = 0; i < 3; i++)
		safe_close(join[i]);
	oci_pod_pins_done(&pins);
	json_object_put(cfg);
	json_object_put(binds);
	return oci_fail(e);
}

static int load(const char *id, struct oci_state *st, int *dfd)
{
	scm_error *e = NULL;
	if (oci_state_load(id, st, &e) != 0 || oci_state_dir(id, false, dfd, &e) != 0) {
		oci_state_done(st);
		return oci_fail(e);
	}
	return 0;
}

static int cmd_start(int argc, char **argv)
{
	if (need_id(argc, argv, "start"))
		return 1;
	struct oci_state st = { 0 };
	_cleanup_close_ int dfd = -1;
	if (load(argv[optind], &st, &dfd))
		return 1;
	scm_error *e = NULL;
	enum oci_status s = oci_status(dfd, &st);
	int r = s != OCI_CREATED ? scm_fail(&e, SCM_E_INVALID, "container \"%s\" is %s, not created", st.id,
					       oci_status_name(s))
				 : oci_shim_start(dfd, st.id, &e);
	oci_state_done(&st);
	return r ? oci_fail(e) : 0;
}

static int cmd_state(int argc, char **argv)
{
	if (need_id(argc, argv, "state"))
		return 1;
	struct oci_state st = { 0 };
	_cleanup_close_ int dfd = -1;
	if (load(argv[optind], &st, &dfd))
		return 1;
	enum oci_status s = oci_status(dfd, &st);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ociVersion", json_object_new_string("1.0.2"));
	json_object_object_add(o, "id", json_object_new_string(st.id));
	json_object_object_add(o, "status", json_object_new_string(oci_status_name(s)));
	json_object_object_add(o, "pid", json_object_new_int(s == OCI_STOPPED ? 0 : st.shim_pid));
	json_object_object_add(o, "bundle", json_object_new_string(st.bundle));
	json_object_object_add(o, "rootfs", json_object_new_string(""));
	json_object_object_add(o, "created", json_object_new_string(st.created ? st.created : ""));
	json_object_object_add(o, "annotations", st.annotations ? json_object_get(st.annotations)
								 : json_object_new_object());
	/* where to find it in scmd: `scmctl container show NAME` */
	json_object_object_add(o, "scm_name", json_object_new_string(st.name));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	oci_state_done(&st);
	return 0;
}

static int parse_signal(const char *s)
{
	static const struct { const char *n; int sig; } names[] = {
		{ "HUP", SIGHUP },   { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 },
		{ "USR2", SIGUSR2 }, { "TERM", SIGTERM }, { "CONT", SIGCONT }, { "STOP", SIGSTOP }, { "WINCH", SIGWINCH },
		{ "ALRM", SIGALRM }, { "PIPE", SIGPIPE },
	};
	char *end;
	long v = strtol(s, &end, 10);
	if (*s && !*end)
		return v > 0 && v < 65 ? (int)v : -1;
	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcmp(s, names[i].n) == 0)
			return names[i].sig;
	return -1;
}

static int cmd_kill(int argc, char **argv)
{
	static const struct option opts[] = { { "all", no_argument, NULL, 'a' }, {} };
	for (int c; (c = getopt_long(argc, argv, "a", opts, NULL)) != -1;)
		if (c == '?')
			return usage("kill: unknown option");
	if (need_id(argc, argv, "kill"))
		return 1;
	const char *sigs = optind + 1 < argc ? argv[optind + 1] : "TERM";
	int sig = parse_signal(sigs);
	if (sig < 0)
		return usage("kill: \"%s\" is not a signal (a number or a name such as TERM, SIGKILL)", sigs);
	struct oci_state st = { 0 };
	_cleanup_close_ int dfd = -1;
	if (load(argv[optind], &st, &dfd))
		return 1;
	scm_error *e = NULL;
	int r = 0;
	enum oci_status s = oci_status(dfd, &st);
	if (s == OCI_STOPPED)
		r = scm_fail(&e, SCM_E_NOT_FOUND, "container \"%s\" is not running", st.id);
	else if (s == OCI_CREATED) {
		if (kill(st.shim_pid, sig) < 0)
			r = scm_fail(&e, -errno, "kill: %m");
	} else {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "name", json_object_new_string(st.name));
		json_object_object_add(a, "signal", json_object_new_int(sig));
		r = oci_scmd_call("container.kill", a, NULL, 0, NULL, NULL, &e);
		json_object_put(a);
	}
	oci_state_done(&st);
	return r ? oci_fail(e) : 0;
}

static int cmd_delete(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' }, {} };
	bool force = false;
	for (int c; (c = getopt_long(argc, argv, "f", opts, NULL)) != -1;) {
		if (c == 'f')
			force = true;
		else
			return usage("delete: unknown option");
	}
	if (need_id(argc, argv, "delete"))
		return 1;
	struct oci_state st = { 0 };
	_cleanup_close_ int dfd = -1;
	if (load(argv[optind], &st, &dfd))
		return 1;
	scm_error *e = NULL;
	int r = 0;
	enum oci_status s = oci_status(dfd, &st);
	json_object *a = json_object_new_object();
	json_object_object_add(a, "name", json_object_new_string(st.name));
	if (s == OCI_RUNNING && !force)
		r = scm_fail(&e, SCM_E_BUSY, "container \"%s\" is running: stop it first, or delete --force", st.id);
	else if (s == OCI_CREATED)
		kill(st.shim_pid, SIGKILL);
	else if (faccessat(dfd, "started", F_OK, 0) == 0) {
		/* still running (forced, or its monitor was killed): SIGKILL,
		 * then scmd answers the wait once it is reaped; scmd keeps the
		 * exited record until rm, and one already gone is fine */
		json_object *k = json_object_get(a);
		json_object_object_add(k, "signal", json_object_new_int(SIGKILL));
		scm_error *ke = NULL;
		if (oci_scmd_call("container.kill", k, NULL, 0, NULL, NULL, &ke) == 0) {
			json_object_object_del(a, "signal");
			r = oci_scmd_call("container.wait", a, NULL, 0, NULL, NULL, &e);
		}
		scm_error_free(ke);
		json_object_object_del(a, "signal");
		json_object_put(k);
		if (r == 0)
			r = oci_scmd_call("container.rm", a, NULL, 0, NULL, NULL, &e);
		if (r == SCM_E_NOT_FOUND) {
			scm_error_free(e);
			e = NULL;
			r = 0;
		}
	}
	json_object_put(a);
	if (r == 0) {
		oci_unexpose(dfd, st.binds && json_object_is_type(st.binds, json_type_array)
					  ? json_object_array_length(st.binds) : 0);
		r = oci_state_remove(st.id, &e);
	}
	oci_state_done(&st);
	return r ? oci_fail(e) : 0;
}

static int cmd_features(void)
{
	static const char *const opts[] = { "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "relatime",
					    "norelatime", "strictatime", "noatime", "nodiratime", "bind", "rbind",
					    "private", "rprivate", "slave", "rslave", "shared", "rshared", NULL };
	static const char *const ns[] = { "mount", "pid", "ipc", "uts", "network", "cgroup", "user", NULL };
	json_object *o = json_object_new_object(), *a = json_object_new_array(), *l = json_object_new_object();
	json_object_object_add(o, "ociVersionMin", json_object_new_string("1.0.0"));
	json_object_object_add(o, "ociVersionMax", json_object_new_string("1.1.0"));
	json_object_object_add(o, "hooks", json_object_new_array());
	for (size_t i = 0; opts[i]; i++)
		json_object_array_add(a, json_object_new_string(opts[i]));
	json_object_object_add(o, "mountOptions", a);
	a = json_object_new_array();
	for (size_t i = 0; ns[i]; i++)
		json_object_array_add(a, json_object_new_string(ns[i]));
	json_object_object_add(l, "namespaces", a);
	a = json_object_new_array();
	for (int c = 0; c <= 40; c++) {
		const char *n = cap_name_from_number(c);
		if (n)
			json_object_array_add(a, json_object_new_string(n));
	}
	json_object_object_add(l, "capabilities", a);
	json_object *cg = json_object_new_object(), *sc = json_object_new_object(), *off = json_object_new_object();
	json_object_object_add(cg, "v1", json_object_new_boolean(true));
	json_object_object_add(cg, "v2", json_object_new_boolean(true));
	json_object_object_add(cg, "systemd", json_object_new_boolean(false));
	json_object_object_add(l, "cgroup", cg);
	json_object_object_add(sc, "enabled", json_object_new_boolean(true));
	json_object_object_add(l, "seccomp", sc);
	json_object_object_add(off, "enabled", json_object_new_boolean(false));
	json_object_object_add(l, "apparmor", off);
	json_object_object_add(l, "selinux", json_object_get(off));
	json_object_object_add(o, "linux", l);
	json_object *ann = json_object_new_object();
	json_object_object_add(ann, "org.scm.oci.version", json_object_new_string(SCM_OCI_VERSION));
	json_object_object_add(o, "annotations", ann);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return 0;
}

static void help(void)
{
	puts("Usage: scm-oci [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n"
	     "An OCI runtime (runc's command line) whose containers are scmd's.\n\n"
	     "Commands:\n"
	     "  create --bundle DIR [--pid-file F] [--console-socket S] ID\n"
	     "                                          make the container (its monitor waits for start)\n"
	     "  start ID                                launch it through scmd\n"
	     "  state ID                                the runtime spec's state JSON\n"
	     "  kill ID [SIGNAL]                        signal it (default TERM)\n"
	     "  delete [--force] ID                     remove it (--force: stop it first)\n"
	     "  exec [--detach] [--pid-file F] [--process P.json] [--tty --console-socket S] ID [CMD ARGS...]\n"
	     "                                          a process in the running container\n"
	     "  ps [--format table|json] ID              host pids of its processes\n"
	     "  features                                what this runtime supports, as JSON\n\n"
	     "Global options:\n"
	     "  --root DIR             state (default /run/scm-oci, rootless $XDG_RUNTIME_DIR/scm-oci)\n"
	     "  --log FILE             errors also to FILE;  --log-format text|json\n"
	     "  --scm-runtime-dir DIR  scmd's runtime directory (default $SCM_RUNTIME_DIR or /run/scm)\n"
	     "  --systemd-cgroup, --debug, --rootless=...  accepted (cgroups are scmd's)\n"
	     "  --version\n\n"
	     "The annotation org.scm.profiles names the container's scm profiles. See scm-oci(1).");
}

int main(int argc, char **argv)
{
	static const struct option gopts[] = { { "root", required_argument, NULL, 'r' },
					       { "log", required_argument, NULL, 'l' },
					       { "log-format", required_argument, NULL, 'F' },
					       { "scm-runtime-dir", required_argument, NULL, 's' },
					       { "systemd-cgroup", no_argument, NULL, 'S' },
					       { "debug", no_argument, NULL, 'd' },
					       { "rootless", required_argument, NULL, 'R' },
					       { "criu", required_argument, NULL, 'C' },
					       { "version", no_argument, NULL, 'v' },
					       { "help", no_argument, NULL, 'h' },
					       {} };
	int c;
	/* global options end at the command ("+": no permutation) */
	while ((c = getopt_long(argc, argv, "+hv", gopts, NULL)) != -1) {
		switch (c) {
		case 'r': oci_g.root = optarg; break;
		case 'l': oci_g.log = optarg; break;
		case 'F':
			if (strcmp(optarg, "json") != 0 && strcmp(optarg, "text") != 0)
				return usage("--log-format %s: text or json", optarg);
			oci_g.log_json = strcmp(optarg, "json") == 0;
			break;
		case 's': oci_g.scm_runtime = optarg; break;
		case 'd': oci_g.debug = true; break;
		case 'S': case 'R': case 'C': break;
		case 'v':
			printf("scm-oci version %s\nspec: 1.0.2\n", SCM_OCI_VERSION);
			return 0;
		case 'h': help(); return 0;
		default: return usage("unknown global option");
		}
	}
	if (optind >= argc)
		return usage("a command is needed: create, start, state, kill, delete, features");
	const char *cmd = argv[optind];
	/* each command parses its own options from here */
	argc -= optind;
	argv += optind;
	optind = 1;
	if (strcmp(cmd, "create") == 0)
		return cmd_create(argc, argv);
	if (strcmp(cmd, "start") == 0)
		return cmd_start(argc, argv);
	if (strcmp(cmd, "state") == 0)
		return cmd_state(argc, argv);
	if (strcmp(cmd, "kill") == 0)
		return cmd_kill(argc, argv);
	if (strcmp(cmd, "delete") == 0)
		return cmd_delete(argc, argv);
	if (strcmp(cmd, "features") == 0)
		return cmd_features();
	if (strcmp(cmd, "exec") == 0)
		return oci_cmd_exec(argc, argv);
	if (strcmp(cmd, "ps") == 0)
		return oci_cmd_ps(argc, argv);
	if (strcmp(cmd, "version") == 0) {
		printf("scm-oci version %s\nspec: 1.0.2\n", SCM_OCI_VERSION);
		return 0;
	}
	return usage("unknown command \"%s\" (create, start, state, kill, delete, exec, ps, features)", cmd);
}
