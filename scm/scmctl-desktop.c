/* scmctl-desktop.c: `scmctl desktop launch|list|show|screenshot|stop`.
 *
 * A desktop session is a set of scm objects: a graphics proxy registered
 * as the service gfx-NAME, and one container per app whose profiles allow
 * it to draw there. scm-desktop-run (services/desktop) builds and tears
 * down that set; scmctl starts it in the background, waits until it says
 * "ready", and keeps the session's state in RUNTIME/desktops/NAME.json so
 * the other commands find it. show and screenshot ask the proxy itself,
 * through scmd, as the "host" identity.
 *
 * The state file holds the session's viewer secrets (the VNC password, the
 * view-only one, the websocket token), so it is 0600 in a 0700 directory;
 * `show` prints them, `list` does not. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scm-internal/wire.h"
#include "scm/idl.h"
#include "scm/macro.h"
#include "scmctl.h"

#define LAUNCH_TIMEOUT_MS 60000

static char *state_path(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/desktops/%s.json", scmctl_runtime_dir(), name) < 0)
		return NULL;
	return p;
}

static bool alive(pid_t pid)
{
	return pid > 0 && kill(pid, 0) == 0;
}

static json_object *load_state(const char *name)
{
	_cleanup_free_ char *p = state_path(name);
	json_object *o = p ? json_object_from_file(p) : NULL;
	if (!o)
		fprintf(stderr, "scmctl: no desktop '%s' (see scmctl desktop list)\n", name);
	return o;
}

/* A helper program: in ../libexec/scm as installed, ../libexec in a build
 * tree, else on $PATH. */
static const char *libexec_path(const char *prog, char *buf, size_t n)
{
	char exe[PATH_MAX];
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k <= 0)
		return prog;
	exe[k] = 0;
	*strrchr(exe, '/') = 0;
	static const char *const dirs[] = { "libexec/scm", "libexec" };
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		int w = snprintf(buf, n, "%s/../%s/%s", exe, dirs[i], prog);
		if (w > 0 && (size_t)w < n && access(buf, X_OK) == 0)
			return buf;
	}
	return prog;
}

static bool desktop_name_valid(const char *name);

static int cmd_launch(int argc, char **argv)
{
	const char *spec = NULL;
	char *extra[8];
	int n_extra = 0;
	bool containers = true;

	for (int i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "--novnc") == 0 || strcmp(argv[i], "--rfb-port") == 0) && i + 1 < argc && n_extra < 6) {
			extra[n_extra++] = argv[i];
			extra[n_extra++] = argv[++i];
		} else if (strcmp(argv[i], "--no-containers") == 0)
			containers = false;
		else if (!spec && argv[i][0] != '-')
			spec = argv[i];
		else {
			fprintf(stderr, "scmctl: usage: desktop launch SPEC [--rfb-port N] [--novnc PORT] [--no-containers]\n");
			return 2;
		}
	}
	if (!spec) {
		fprintf(stderr, "scmctl: desktop launch needs a spec (see examples/desktops/)\n");
		return 2;
	}
	json_object *sj = json_object_from_file(spec), *v;
	if (!sj || !json_object_object_get_ex(sj, "name", &v) || !json_object_is_type(v, json_type_string)) {
		fprintf(stderr, "scmctl: %s: not a desktop spec (a JSON object with a \"name\")\n", spec);
		json_object_put(sj);
		return 1;
	}
	_cleanup_free_ char *name = strdup(json_object_get_string(v));
	json_object_put(sj);
	if (!desktop_name_valid(name)) {
		fprintf(stderr, "scmctl: %s: /name '%s' may only hold letters, digits, - and _ (1-64)\n", spec, name);
		return 1;
	}

	_cleanup_free_ char *sp = state_path(name), *dir = NULL, *logp = NULL;
	if (asprintf(&dir, "%s/desktops", scmctl_runtime_dir()) < 0 || asprintf(&logp, "%s/desktops/%s.log", scmctl_runtime_dir(), name) < 0)
		return 1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "scmctl: cannot create %s: %m\n", dir);
		return 1;
	}
	json_object *old = json_object_from_file(sp);
	if (old && json_object_object_get_ex(old, "pid", &v) && alive(json_object_get_int(v))) {
		fprintf(stderr, "scmctl: desktop '%s' is running already (scmctl desktop stop %s)\n", name, name);
		json_object_put(old);
		return 1;
	}
	json_object_put(old);

	char real[PATH_MAX], prog[PATH_MAX + 32];
	if (!realpath(spec, real)) {
		fprintf(stderr, "scmctl: %s: %m\n", spec);
		return 1;
	}
	/* Check the spec first, so a bad one is an error about the spec. */
	char checker[PATH_MAX + 32];
	const char *chk = libexec_path("scm-desktop-spec", checker, sizeof(checker));
	pid_t cp = fork();
	if (cp == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		dup2(null, 1);
		execl(chk, chk, real, (char *)NULL);
		fprintf(stderr, "scmctl: cannot run %s: %m\n", chk);
		_exit(127);
	}
	int cst = 0;
	if (cp < 0 || waitpid(cp, &cst, 0) < 0 || !WIFEXITED(cst) || WEXITSTATUS(cst) != 0)
		return 1;
	const char *runner = libexec_path("scm-desktop-run", prog, sizeof(prog));
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return 1;
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		char *av[16] = { (char *)runner, real };
		int k = 2;
		if (containers)
			av[k++] = "--containers";
		for (int i = 0; i < n_extra; i++)
			av[k++] = extra[i];
		av[k] = NULL;
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		dup2(null, 0);
		dup2(pfd[1], 1);
		dup2(logfd >= 0 ? logfd : null, 2);
		setenv("SCM_RUNTIME_DIR", scmctl_runtime_dir(), 1);
		execv(runner, av);
		fprintf(stderr, "exec %s: %m\n", runner);
		_exit(127);
	}
	close(pfd[1]);

	/* Echo the session's lines until "ready"; keep them for the state. */
	json_object *st = json_object_new_object(), *lines = json_object_new_array();
	char buf[4096];
	size_t used = 0;
	bool ready = false;
	while (!ready) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		if (poll(&p, 1, LAUNCH_TIMEOUT_MS) <= 0)
			break;
		ssize_t k = read(pfd[0], buf + used, sizeof(buf) - 1 - used);
		if (k <= 0)
			break;
		used += (size_t)k;
		buf[used] = 0;
		char *nl;
		while ((nl = strchr(buf, '\n'))) {
			*nl = 0;
			printf("%s\n", buf);
			fflush(stdout);
			if (strcmp(buf, "ready") == 0)
				ready = true;
			else if (strncmp(buf, "app ", 4) == 0)
				json_object_array_add(lines, json_object_new_string(buf));
			if (strncmp(buf, "vnc ", 4) == 0)
				json_object_object_add(st, "vnc", json_object_new_string(buf + 4));
			if (strncmp(buf, "novnc ", 6) == 0)
				json_object_object_add(st, "novnc", json_object_new_string(buf + 6));
			if (strncmp(buf, "websocket ", 10) == 0)
				json_object_object_add(st, "websocket", json_object_new_string(buf + 10));
			if (strncmp(buf, "password ", 9) == 0)
				json_object_object_add(st, "password", json_object_new_string(buf + 9));
			if (strncmp(buf, "viewonly ", 9) == 0)
				json_object_object_add(st, "viewonly_password", json_object_new_string(buf + 9));
			if (strncmp(buf, "token ", 6) == 0)
				json_object_object_add(st, "token", json_object_new_string(buf + 6));
			memmove(buf, nl + 1, used - (size_t)(nl + 1 - buf) + 1);
			used -= (size_t)(nl + 1 - buf);
		}
	}
	close(pfd[0]);
	if (!ready) {
		kill(-pid, SIGTERM);
		waitpid(pid, NULL, 0);
		fprintf(stderr, "scmctl: desktop '%s' did not come up; its log (%s):\n", name, logp);
		int fd = open(logp, O_RDONLY | O_CLOEXEC);
		ssize_t k;
		while (fd >= 0 && (k = read(fd, buf, sizeof(buf))) > 0)
			(void)!write(2, buf, (size_t)k);
		safe_close(fd);
		json_object_put(st);
		json_object_put(lines);
		return 1;
	}
	json_object_object_add(st, "name", json_object_new_string(name));
	json_object_object_add(st, "pid", json_object_new_int(pid));
	json_object_object_add(st, "spec", json_object_new_string(real));
	char svc[128];
	snprintf(svc, sizeof(svc), "gfx-%s", name);
	json_object_object_add(st, "service", json_object_new_string(svc));
	json_object_object_add(st, "apps", lines);
	/* 0600 from the start: it holds the secrets. */
	mode_t old_mask = umask(077);
	int wr = json_object_to_file_ext(sp, st, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	umask(old_mask);
	chmod(sp, 0600);
	json_object_put(st);
	if (wr < 0) {
		fprintf(stderr, "scmctl: cannot write %s\n", sp);
		return 1;
	}
	return 0;
}

/* One call to the session's proxy as the host identity; method by name. */
static int proxy_call(json_object *st, const char *method, const int *fds, size_t n_fds,
		      scm_message **ret_reply, scm_error **ret_err)
{
	json_object *v, *res = NULL, *a = json_object_new_object();
	const char *svc = json_object_object_get_ex(st, "service", &v) ? json_object_get_string(v) : "";
	scm_idl *idl = NULL;
	scm_channel *ch = NULL;
	int fd = -1, r;

	json_object_object_add(a, "name", json_object_new_string(svc));
	r = scmctl_control_call("service.show", a, &res, ret_err);
	if (r == 0 && json_object_object_get_ex(res, "idl", &v))
		r = scm_idl_parse(json_object_get_string(v), (size_t)json_object_get_string_len(v), svc, &idl, ret_err);
	json_object_put(res);
	json_object_put(a);
	const scm_idl_method *m = idl ? scm_idl_method_by_name(idl, method) : NULL;
	if (r == 0 && !m)
		r = scm_fail(ret_err, SCM_E_NO_METHOD, "service %s has no method %s", svc, method);
	if (r == 0) {
		a = json_object_new_object();
		json_object_object_add(a, "service", json_object_new_string(svc));
		r = scmctl_control_call_fds("connect", a, NULL, 0, NULL, &fd, ret_err);
		json_object_put(a);
	}
	if (r == 0 && (r = scm_channel_from_fd(fd, 0, svc, &ch)) == 0)
		r = scm_call_sync(ch, m->id, NULL, NULL, 0, fds, n_fds, ret_reply, ret_err);
	else
		safe_close(fd);
	scm_channel_free(ch);
	scm_idl_free(idl);
	return r;
}

static int cmd_list(bool json)
{
	_cleanup_free_ char *dir = NULL;
	if (asprintf(&dir, "%s/desktops", scmctl_runtime_dir()) < 0)
		return 1;
	json_object *arr = json_object_new_array();
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0)
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		json_object *st = json_object_from_file(p), *v;
		if (!st)
			continue;
		pid_t pid = json_object_object_get_ex(st, "pid", &v) ? json_object_get_int(v) : 0;
		json_object_object_add(st, "state", json_object_new_string(alive(pid) ? "running" : "ended"));
		/* The secrets are for `show`; the URL loses its query with them. */
		json_object_object_del(st, "password");
		json_object_object_del(st, "viewonly_password");
		json_object_object_del(st, "token");
		if (json_object_object_get_ex(st, "novnc", &v)) {
			/* The secrets are in the fragment (older sessions: the query). */
			char *u = strdup(json_object_get_string(v)), *q = u ? strpbrk(u, "?#") : NULL;
			if (q)
				*q = 0;
			if (u)
				json_object_object_add(st, "novnc", json_object_new_string(u));
			else
				json_object_object_del(st, "novnc");
			free(u);
		}
		/* Who is watching: the proxy knows. */
		scm_message *reply = NULL;
		scm_error *err = NULL;
		json_object *stats = NULL, *n = NULL, *vl = NULL;
		if (alive(pid) && proxy_call(st, "stats", NULL, 0, &reply, &err) == 0 && reply->json &&
		    json_object_object_get_ex(reply->json, "stats", &stats)) {
			if (json_object_object_get_ex(stats, "viewers", &n))
				json_object_object_add(st, "viewers", json_object_get(n));
			if (json_object_object_get_ex(stats, "viewer_list", &vl))
				json_object_object_add(st, "viewer_list", json_object_get(vl));
		}
		scm_message_free(reply);
		scm_error_free(err);
		json_object_array_add(arr, st);
	}
	if (d)
		closedir(d);
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "desktops", arr);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return 0;
	}
	printf("%-16s %-8s %8s %7s  %-22s %s\n", "DESKTOP", "STATE", "PID", "VIEWERS", "VNC", "NOVNC");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *st = json_object_array_get_idx(arr, i), *v;
#define S(k) (json_object_object_get_ex(st, k, &v) ? json_object_get_string(v) : "-")
		printf("%-16s %-8s %8s %7s  %-22s %s\n", S("name"), S("state"), S("pid"), S("viewers"), S("vnc"),
		       S("novnc"));
#undef S
	}
	json_object_put(arr);
	return 0;
}

/* A desktop name names its state file: a name, never a path. */
static bool desktop_name_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64)
		return false;
	for (const char *c = name; *c; c++)
		if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '_'))
			return false;
	return true;
}

static int cmd_stop(const char *name)
{
	json_object *st = load_state(name), *v;
	if (!st)
		return 5;
	pid_t pid = json_object_object_get_ex(st, "pid", &v) ? json_object_get_int(v) : 0;
	json_object_put(st);
	if (alive(pid)) {
		int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
		kill(pid, SIGTERM);
		struct pollfd p = { pfd, POLLIN, 0 };
		if (pfd < 0 || poll(&p, 1, 20000) <= 0) {
			fprintf(stderr, "scmctl: desktop '%s' did not end in 20 s; killing it\n", name);
			kill(-pid, SIGKILL);
		}
		safe_close(pfd);
	}
	_cleanup_free_ char *sp = state_path(name);
	unlink(sp);
	return 0;
}

int scmctl_desktop(int argc, char **argv, bool json)
{
	scm_error *e = NULL;
	scm_message *reply = NULL;

	if (argc < 2) {
		fprintf(stderr, "scmctl: desktop needs a command: launch, list, show, screenshot, stop\n");
		return 2;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "launch") == 0)
		return cmd_launch(argc - 2, argv + 2);
	if (strcmp(sub, "list") == 0)
		return cmd_list(json);
	if (argc < 3) {
		fprintf(stderr, "scmctl: desktop %s needs a desktop name\n", sub);
		return 2;
	}
	const char *name = argv[2];
	if (!desktop_name_valid(name)) {
		fprintf(stderr, "scmctl: desktop name '%s' is not valid: 1-64 letters, digits, - and _\n", name);
		return 2;
	}
	if (strcmp(sub, "stop") == 0)
		return cmd_stop(name);
	json_object *st = load_state(name);
	if (!st)
		return 5;
	int rc = 0;
	if (strcmp(sub, "show") == 0) {
		if (proxy_call(st, "stats", NULL, 0, &reply, &e) != 0) {
			json_object_put(st);
			return scmctl_fail(e);
		}
		json_object *stats = NULL;
		if (reply->json)
			json_object_object_get_ex(reply->json, "stats", &stats);
		json_object_object_add(st, "stats", json_object_get(stats));
		puts(json_object_to_json_string_ext(st, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (strcmp(sub, "screenshot") == 0 && argc == 4) {
		int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "scmctl: %s: %m\n", argv[3]);
			rc = 1;
		} else {
			if (proxy_call(st, "snapshot", &fd, 1, &reply, &e) != 0) {
				unlink(argv[3]);
				rc = scmctl_fail(e);
			}
			close(fd);
		}
	} else {
		fprintf(stderr, "scmctl: usage: desktop show NAME | screenshot NAME FILE.png | stop NAME\n");
		rc = 2;
	}
	scm_message_free(reply);
	json_object_put(st);
	return rc;
}
