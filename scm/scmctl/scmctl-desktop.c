/* scmctl-desktop.c: `scmctl desktop launch|list|show|viewers|screenshot|
 * app add|app remove|stop`, a client of the desktop session manager.
 *
 * The manager (scm-desktop-session, stubs/idl/desktop.json) is a provider
 * like any other: the service "desktop", which scmctl registers on first
 * use (allow: host; the manager itself refuses everyone but the host its
 * lifecycle methods and secrets). scmctl reaches it over the control
 * socket as the host identity, asks, and prints; the manager owns the
 * desktops, starts their proxies and apps through scmd and keeps them
 * running whether viewers come or go, until `stop`.
 *
 * The viewer secrets (VNC password, view-only password, websocket token)
 * are printed by launch (the owner's terminal) and show, never by list;
 * the manager also keeps them in RUNTIME/desktops/NAME.json, 0600 in a
 * 0700 directory. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scm/desktop-client.h"
#include "scm/macro.h"
#include "scmutil.h"
#include "scmctl.h"

#define LAUNCH_TIMEOUT_MS 180000
#define SPEC_MAX (1 << 20)

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
		if (w <= 0 || (size_t)w >= n || access(buf, X_OK) != 0)
			continue;
		char *real = realpath(buf, NULL);
		size_t rl = real ? strlen(real) : n;
		if (rl < n)
			memcpy(buf, real, rl + 1);
		free(real);
		return buf;
	}
	return prog;
}

/* The manager's manifest: registered once per scmd, by whoever needs it
 * first. The apps' uid comes from $SCM_DESKTOP_USER (default nobody). */
static int ensure_service(scm_error **ret_err)
{
	json_object *a = json_object_new_object(), *res = NULL;
	json_object_object_add(a, "name", json_object_new_string("desktop"));
	scm_error *e = NULL;
	int r = scmctl_control_call("service.show", a, &res, &e);
	json_object_put(a);
	json_object_put(res);
	scm_error_free(e);
	if (r == 0)
		return 0;
	char prog[PATH_MAX + 64]; /* exe's dir, /../libexec/scm/, the name */
	const char *user = getenv("SCM_DESKTOP_USER");
	json_object *man = json_object_new_object(), *ex = json_object_new_array(), *allow = json_object_new_array();
	json_object_array_add(ex, json_object_new_string(libexec_path("scm-desktop-session", prog, sizeof(prog))));
	json_object_array_add(ex, json_object_new_string("--runtime-dir"));
	json_object_array_add(ex, json_object_new_string(scmctl_runtime_dir()));
	json_object_array_add(ex, json_object_new_string("--user"));
	json_object_array_add(ex, json_object_new_string(user && *user ? user : "65534"));
	json_object_array_add(allow, json_object_new_string("host"));
	json_object_object_add(man, "name", json_object_new_string("desktop"));
	json_object_object_add(man, "interface", json_object_new_string("desktop"));
	json_object_object_add(man, "description", json_object_new_string("the desktop session manager"));
	json_object_object_add(man, "exec", ex);
	json_object_object_add(man, "allow", allow);
	a = json_object_new_object();
	json_object_object_add(a, "manifest", man);
	json_object_object_add(a, "origin", json_object_new_string("(scmctl desktop)"));
	r = scmctl_control_call("service.register", a, &res, ret_err);
	json_object_put(a);
	json_object_put(res);
	if (r == SCM_E_EXISTS) { /* another scmctl was first */
		scm_error_free(*ret_err);
		*ret_err = NULL;
		r = 0;
	}
	return r;
}

/* A channel to the manager as the host identity; register says whether
 * to register it first (list and stop do not start a manager for
 * nothing). Returns 0, 1 when it is not registered, or an scm code. */
static int manager(bool reg, scm_channel **ret, scm_error **ret_err)
{
	extern int scmctl_last_fd;
	json_object *a = json_object_new_object(), *res = NULL, *v;
	int r = reg ? ensure_service(ret_err) : 0;
	if (r != 0) {
		json_object_put(a);
		return r;
	}
	json_object_object_add(a, "service", json_object_new_string("desktop"));
	r = scmctl_control_call("connect", a, &res, ret_err);
	json_object_put(a);
	if (r == SCM_E_NO_SERVICE && !reg) {
		scm_error_free(*ret_err);
		*ret_err = NULL;
		json_object_put(res);
		return 1;
	}
	if (r == 0) {
		int fd = TAKE_FD(scmctl_last_fd);
		uint64_t id = json_object_object_get_ex(res, "channel", &v) ? (uint64_t)json_object_get_int64(v) : 0;
		if (scm_channel_from_fd(fd, id, "desktop", ret) != 0) {
			safe_close(fd);
			r = scm_fail(ret_err, SCM_E_PROTOCOL, "no channel to the desktop session manager");
		} else
			scm_channel_set_timeout(*ret, LAUNCH_TIMEOUT_MS);
	}
	json_object_put(res);
	return r;
}

/* Exit status: "no such desktop" (or app) is "not found", as elsewhere. */
static int fail(scm_error *e)
{
	int root = e ? e->code : 0;
	if (root == SCM_DESKTOP_E_NODESKTOP || root == SCM_DESKTOP_E_NOAPP) {
		scmctl_fail(e);
		return scmctl_exit_code(SCM_E_NOT_FOUND);
	}
	return scmctl_fail(e);
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static void print_app(json_object *a)
{
	json_object *v;
	printf("app %s at %d,%d border %s\n", jstr(a, "name"),
	       json_object_object_get_ex(a, "x", &v) ? json_object_get_int(v) : 0,
	       json_object_object_get_ex(a, "y", &v) ? json_object_get_int(v) : 0, jstr(a, "border"));
	printf("display %s %s\n", jstr(a, "name"), jstr(a, "display"));
}

static char *read_small(const char *path, scm_error **ret_err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		scm_fail(ret_err, -errno, "%s: %m", path);
		return NULL;
	}
	char *buf = malloc(SPEC_MAX + 1);
	size_t n = 0;
	ssize_t k;
	while (buf && n < SPEC_MAX && (k = read(fd, buf + n, SPEC_MAX - n)) > 0)
		n += (size_t)k;
	close(fd);
	if (buf)
		buf[n] = 0;
	return buf;
}

static int cmd_launch(int argc, char **argv)
{
	const char *spec = NULL;
	unsigned long ports[3] = { 0, 0, 0 }; /* rfb, ws, novnc */
	bool containers = true;
	static const char *const popts[] = { "--rfb-port", "--ws-port", "--novnc" };

	for (int i = 0; i < argc; i++) {
		int k = -1;
		for (int j = 0; j < 3; j++)
			if (strcmp(argv[i], popts[j]) == 0)
				k = j;
		char *end = NULL;
		if (k >= 0 && i + 1 < argc) {
			ports[k] = strtoul(argv[++i], &end, 10);
			if (*end || ports[k] > 65535) {
				fprintf(stderr, "scmctl: %s wants a port 0..65535, got '%s'\n", popts[k], argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "--no-containers") == 0)
			containers = false;
		else if (!spec && argv[i][0] != '-')
			spec = argv[i];
		else {
			fprintf(stderr, "scmctl: usage: desktop launch SPEC [--rfb-port N] [--ws-port N] [--novnc PORT] [--no-containers]\n");
			return 2;
		}
	}
	if (!spec) {
		fprintf(stderr, "scmctl: desktop launch needs a spec (see examples/desktops/)\n");
		return 2;
	}
	scm_error *e = NULL;
	_cleanup_free_ char *text = read_small(spec, &e);
	if (!text)
		return scmctl_fail(e);
	scm_channel *ch = NULL;
	json_object *d = NULL, *apps;
	int r = manager(true, &ch, &e);
	if (r == 0)
		r = scm_desktop_launch(ch, text, containers, ports[0], ports[1], ports[2], &d, &e);
	scm_channel_free(ch);
	if (r != 0)
		return fail(e);
	if (json_object_object_get_ex(d, "apps", &apps))
		for (size_t i = 0; i < json_object_array_length(apps); i++)
			print_app(json_object_array_get_idx(apps, i));
	printf("vnc %s\nwebsocket %s\npassword %s\nviewonly %s\ntoken %s\n", jstr(d, "vnc"), jstr(d, "websocket"),
	       jstr(d, "password"), jstr(d, "viewonly_password"), jstr(d, "token"));
	if (jstr(d, "novnc"))
		printf("novnc %s\n", jstr(d, "novnc"));
	printf("ready\n");
	json_object_put(d);
	return 0;
}

static int cmd_list(bool json)
{
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	json_object *arr = NULL;
	int r = manager(false, &ch, &e);
	if (r == 0)
		r = scm_desktop_list(ch, &arr, &e);
	scm_channel_free(ch);
	if (r == 1)
		arr = json_object_new_array(); /* no manager: no desktops */
	else if (r != 0)
		return fail(e);
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "desktops", arr);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return 0;
	}
	printf("%-16s %-8s %8s %7s %-10s %-22s %s\n", "DESKTOP", "STATE", "PID", "VIEWERS", "SIZE", "VNC", "NOVNC");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *st = json_object_array_get_idx(arr, i);
#define S(k) (jstr(st, k) ? jstr(st, k) : "-")
		printf("%-16s %-8s %8s %7s %-10s %-22s %s\n", S("name"), S("state"), S("pid"), S("viewers"), S("size"), S("vnc"),
		       S("novnc"));
#undef S
	}
	json_object_put(arr);
	return 0;
}

/* A desktop name: the spec's rule, [a-z0-9-], 1..32. */
static bool desktop_name_valid(const char *name)
{
	return name_valid(name, 32, NAME_DASH);
}

static int cmd_app(int argc, char **argv)
{
	/* app add DESKTOP SPEC | app remove DESKTOP APP */
	if (argc != 4 || (strcmp(argv[1], "add") != 0 && strcmp(argv[1], "remove") != 0)) {
		fprintf(stderr, "scmctl: usage: desktop app add DESKTOP APP.json | app remove DESKTOP APP\n");
		return 2;
	}
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	int r;
	if (strcmp(argv[1], "add") == 0) {
		/* A file holding one app object (an entry of a spec's "apps"),
		 * or that object itself. */
		_cleanup_free_ char *text = argv[3][0] == '{' ? strdup(argv[3]) : read_small(argv[3], &e);
		if (!text)
			return scmctl_fail(e);
		json_object *app = json_tokener_parse(text), *res = NULL;
		if (!app) {
			fprintf(stderr, "scmctl: %s: not a JSON app object\n", argv[3]);
			return 1;
		}
		r = manager(true, &ch, &e);
		if (r == 0)
			r = scm_desktop_app_add(ch, argv[2], app, &res, &e);
		json_object_put(app);
		scm_channel_free(ch);
		if (r != 0)
			return fail(e);
		print_app(res);
		json_object_put(res);
		return 0;
	}
	r = manager(false, &ch, &e);
	if (r == 0)
		r = scm_desktop_app_remove(ch, argv[2], argv[3], &e);
	scm_channel_free(ch);
	if (r == 1) {
		fprintf(stderr, "scmctl: no desktop '%s' (see scmctl desktop list)\n", argv[2]);
		return scmctl_exit_code(SCM_E_NOT_FOUND);
	}
	return r ? fail(e) : 0;
}

int scmctl_desktop(int argc, char **argv, bool json)
{
	if (argc < 2) {
		fprintf(stderr, "scmctl: desktop needs a command: launch, list, show, viewers, screenshot, app, stop\n");
		return 2;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "launch") == 0)
		return cmd_launch(argc - 2, argv + 2);
	if (strcmp(sub, "list") == 0)
		return cmd_list(json);
	if (strcmp(sub, "app") == 0)
		return cmd_app(argc - 1, argv + 1);
	if (argc < 3) {
		fprintf(stderr, "scmctl: desktop %s needs a desktop name\n", sub);
		return 2;
	}
	const char *name = argv[2];
	if (!desktop_name_valid(name)) {
		fprintf(stderr, "scmctl: desktop name '%s' is not valid: 1-32 of a-z, 0-9 and -\n", name);
		return 2;
	}
	bool shot = strcmp(sub, "screenshot") == 0;
	if (!(strcmp(sub, "show") == 0 || strcmp(sub, "viewers") == 0 || strcmp(sub, "stop") == 0 || shot) ||
	    argc != (shot ? 4 : 3)) {
		fprintf(stderr, "scmctl: usage: desktop show NAME | viewers NAME | screenshot NAME FILE.png | stop NAME\n");
		return 2;
	}
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	json_object *res = NULL;
	int r = manager(false, &ch, &e), fd = -1;
	if (r == 1) {
		fprintf(stderr, "scmctl: no desktop '%s' (see scmctl desktop list)\n", name);
		return scmctl_exit_code(SCM_E_NOT_FOUND);
	}
	if (r == 0 && strcmp(sub, "show") == 0)
		r = scm_desktop_show(ch, name, &res, &e);
	else if (r == 0 && strcmp(sub, "viewers") == 0)
		r = scm_desktop_viewers(ch, name, &res, &e);
	else if (r == 0 && strcmp(sub, "stop") == 0)
		r = scm_desktop_stop(ch, name, &e);
	else if (r == 0) {
		fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			r = scm_fail(&e, -errno, "%s: %m", argv[3]);
		else if ((r = scm_desktop_screenshot(ch, name, fd, &e)) != 0)
			unlink(argv[3]);
		safe_close(fd);
	}
	scm_channel_free(ch);
	if (r != 0)
		return fail(e);
	if (res)
		puts(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(res);
	return 0;
}
