/* scmctl: the command-line tool for scmd. See scmctl(1).
 *
 * Each subcommand is a thin client of the control socket; `call` is a
 * client of a service like any other program, through an endpoint (or as
 * the "host" identity through the control socket). Listings print a table,
 * or JSON with --json. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "scm-internal/wire.h"
#include "scm/idl.h"
#include "scm/macro.h"
#include "scmctl.h"
#include "scm-internal/error.h"

static const char *runtime_dir_opt;
static bool json_out;

enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,
	EXIT_USAGE = 2,
	EXIT_UNREACHABLE = 3,
	EXIT_DENIED = 4,
	EXIT_NOT_FOUND = 5,
	EXIT_QUOTA = 6,
	EXIT_TIMEOUT = 7,
};

const char *scmctl_runtime_dir(void)
{
	static char buf[PATH_MAX];
	const char *e = getenv("SCM_RUNTIME_DIR"), *x = getenv("XDG_RUNTIME_DIR");
	if (runtime_dir_opt)
		return runtime_dir_opt;
	if (e && *e)
		return e;
	if (geteuid() != 0 && x && *x) {
		snprintf(buf, sizeof(buf), "%s/scm", x);
		return buf;
	}
	return "/run/scm";
}

int scmctl_exit_code(int code)
{
	switch (code) {
	case 0: return EXIT_OK;
	case SCM_E_DENIED:
	case SCM_E_CONTAINER_DENIED: return EXIT_DENIED;
	case SCM_E_NO_SERVICE:
	case SCM_E_NOT_FOUND:
	case SCM_E_NO_METHOD: return EXIT_NOT_FOUND;
	case SCM_E_QUOTA: return EXIT_QUOTA;
	case SCM_E_TIMEOUT:
	case SCM_E_ACTIVATION: return EXIT_TIMEOUT;
	case -ENOENT:
	case -ECONNREFUSED:
	case -EACCES: return EXIT_UNREACHABLE;
	default: return EXIT_FAIL;
	}
}

int scmctl_fail(scm_error *e)
{
	int code = e ? e->code : SCM_E_INTERNAL;
	fprintf(stderr, "scmctl: ");
	scm_error_print(e, stderr);
	scm_error_free(e);
	return scmctl_exit_code(code);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "scmctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'scmctl --help'.\n");
	return EXIT_USAGE;
}

int scmctl_control_open(scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", scmctl_runtime_dir());
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		if (r == -ENOENT || r == -ECONNREFUSED)
			return scm_fail(ret_err, r, "scmd is not running at %s (start it with 'scmd', or set --runtime-dir / $SCM_RUNTIME_DIR)",
					scmctl_runtime_dir());
		return scm_fail(ret_err, r, "cannot reach scmd's control socket %s: %s%s", sa.sun_path,
				strerror(-r), r == -EACCES ? " (the control socket is for root)" : "");
	}
	return fd;
}

/* One request/reply on the control socket; the first max_ret fds of the
 * reply (a channel for "connect", the log files for "container.logs") are
 * handed back in ret_fds when it is set, -1 where the reply had none. */
static int control_request(const char *op, json_object *args, const int *fds, size_t n_fds,
			   json_object **ret_result, int *ret_fds, size_t max_ret, scm_error **ret_err)
{
	_cleanup_close_ int fd = scmctl_control_open(ret_err);
	if (fd < 0)
		return fd;
	return scm_wire_control_request(fd, op, args, fds, n_fds, ret_result, ret_fds, max_ret, ret_err);
}

/* The fd that came with the last control reply ("connect" returns one). */
int scmctl_last_fd = -1;

int scmctl_control_call(const char *op, json_object *args, json_object **ret_result, scm_error **ret_err)
{
	if (scmctl_last_fd >= 0)
		scmctl_last_fd = safe_close(scmctl_last_fd);
	return control_request(op, args, NULL, 0, ret_result, &scmctl_last_fd, 1, ret_err);
}

int scmctl_control_call_fds(const char *op, json_object *args, const int *fds, size_t n_fds,
			    json_object **ret_result, int *ret_fd, scm_error **ret_err)
{
	return control_request(op, args, fds, n_fds, ret_result, ret_fd, 1, ret_err);
}

int scmctl_control_call_fdv(const char *op, json_object *args, json_object **ret_result, int *ret_fds,
			    size_t max_fds, scm_error **ret_err)
{
	return control_request(op, args, NULL, 0, ret_result, ret_fds, max_fds, ret_err);
}

static void print_json(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static const char *js(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}
static int64_t ji(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* Runs op and prints the result: JSON with --json, else through show(). */
static int simple(const char *op, json_object *args, void (*show)(json_object *))
{
	json_object *res = NULL;
	scm_error *e = NULL;
	int r = scmctl_control_call(op, args, &res, &e);
	json_object_put(args);
	if (r != 0)
		return scmctl_fail(e);
	if (json_out)
		print_json(res);
	else if (show)
		show(res);
	json_object_put(res);
	return 0;
}

static void show_lat(json_object *l, const char *name)
{
	json_object *s;
	if (!json_object_object_get_ex(l, name, &s) || ji(s, "n") == 0) {
		printf("  %-9s -\n", name);
		return;
	}
	printf("  %-9s median %6lld us   p99 %6lld us   max %6lld us   (%lld samples)\n", name,
	       (long long)ji(s, "median_us"), (long long)ji(s, "p99_us"), (long long)ji(s, "max_us"),
	       (long long)ji(s, "n"));
}

static void show_status(json_object *o)
{
	json_object *l;
	printf("scmd pid %lld, up %llds, runtime %s, config %s\n", (long long)ji(o, "pid"),
	       (long long)ji(o, "uptime_s"), js(o, "runtime_dir"), js(o, "config_dir"));
	if (ji(o, "generation"))
		printf("restarted in place %lld times\n", (long long)ji(o, "generation"));
	printf("%lld services, %lld endpoints, %lld live channels\n", (long long)ji(o, "services"),
	       (long long)ji(o, "endpoints"), (long long)ji(o, "channels"));
	printf("connect latency (last 1024 connects):\n");
	if (json_object_object_get_ex(o, "connect_latency", &l)) {
		show_lat(l, "decide");
		show_lat(l, "activate");
		show_lat(l, "handoff");
		show_lat(l, "total");
	}
	if (json_object_object_get_ex(o, "log_compression", &l) && ji(l, "files") > 0) {
		json_object *lv, *r;
		printf("rotated logs compressed: %lld files, %lld -> %lld bytes (ratio %.2f), levels", (long long)ji(l, "files"),
		       (long long)ji(l, "bytes_in"), (long long)ji(l, "bytes_out"),
		       json_object_object_get_ex(l, "ratio", &r) ? json_object_get_double(r) : 0.0);
		if (json_object_object_get_ex(l, "levels", &lv)) {
			json_object_object_foreach(lv, k, v)
				printf(" %s:%d", k, json_object_get_int(v));
		}
		printf("\n");
	}
}

static void show_services(json_object *o)
{
	json_object *a;
	json_object_object_get_ex(o, "services", &a);
	printf("%-16s %-12s %-9s %7s %8s %8s %7s %8s\n", "SERVICE", "INTERFACE", "STATE", "PID", "CHANNELS",
	       "CONNECTS", "DENIED", "FAILURES");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *s = json_object_array_get_idx(a, i);
		printf("%-16s %-12s %-9s %7lld %8lld %8lld %7lld %8lld\n", js(s, "name"), js(s, "interface"),
		       js(s, "state"), (long long)ji(s, "pid"), (long long)ji(s, "channels"),
		       (long long)ji(s, "connects"), (long long)ji(s, "denied"), (long long)ji(s, "failures"));
	}
}

static void show_endpoints(json_object *o)
{
	json_object *a;
	json_object_object_get_ex(o, "endpoints", &a);
	printf("%-16s %6s %8s %5s  %s\n", "ENDPOINT", "OWNER", "CHANNELS", "CONNS", "PATH");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *s = json_object_array_get_idx(a, i);
		printf("%-16s %6lld %8lld %5lld  %s\n", js(s, "name"), (long long)ji(s, "owner"),
		       (long long)ji(s, "channels"), (long long)ji(s, "connections"), js(s, "path"));
	}
}

static void show_channels(json_object *o)
{
	json_object *a;
	json_object_object_get_ex(o, "channels", &a);
	printf("%6s %-16s %-16s %6s %8s %10s  %s\n", "ID", "SERVICE", "ENDPOINT", "UID", "PID", "AGE(ms)", "ALLOWED BY");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *s = json_object_array_get_idx(a, i);
		printf("%6lld %-16s %-16s %6lld %8lld %10lld  %s\n", (long long)ji(s, "id"), js(s, "service"),
		       js(s, "endpoint"), (long long)ji(s, "uid"), (long long)ji(s, "pid"),
		       (long long)ji(s, "age_ms"), js(s, "origin"));
	}
}

static void show_endpoint(json_object *o)
{
	printf("endpoint %s at %s\n", js(o, "name"), js(o, "path"));
	printf("give it to a client with: SCM_ENDPOINT=%s\n", js(o, "path"));
}

static void show_registered(json_object *o)
{
	printf("registered %s (interface %s, %s)\n", js(o, "name"), js(o, "interface"), js(o, "activation"));
}

static json_object *name_arg(const char *name)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "name", json_object_new_string(name));
	return a;
}

static void show_service_restart(json_object *o)
{
	printf("service %s restarted with its channels: pid %lld -> %lld, %lld channels handed over, switch %lld us\n",
	       js(o, "name"), (long long)ji(o, "old_pid"), (long long)ji(o, "pid"), (long long)ji(o, "channels"),
	       (long long)ji(o, "switch_us"));
}

/* service restart NAME [--exec PATH]: a new provider process takes over
 * the running one's state and channels (docs/handover.md). */
static int service_restart(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("service restart needs a service name");
	json_object *a = name_arg(argv[1]);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--exec") == 0 && i + 1 < argc) {
			char *abs = realpath(argv[++i], NULL);
			if (!abs) {
				json_object_put(a);
				return usage_error("--exec %s: %s", argv[i], strerror(errno));
			}
			json_object_object_add(a, "exec", json_object_new_string(abs));
			free(abs);
		} else {
			json_object_put(a);
			return usage_error("service restart takes NAME [--exec PATH], got '%s'", argv[i]);
		}
	}
	return simple("service.restart", a, show_service_restart);
}

static int exec_helper(const char *name, int argc, char **argv);

static int cmd_service(int argc, char **argv)
{
	if (argc < 1)
		return usage_error("service needs a command: register, unregister, restart, list, show, export-dbus");
	const char *sub = argv[0];
	if (strcmp(sub, "export-dbus") == 0) {
		/* libexec/scm-dbus-export, told where scmd is */
		char **v = calloc((size_t)argc + 3, sizeof(char *));
		if (!v)
			return EXIT_FAIL;
		v[0] = (char *)"scm-dbus-export";
		v[1] = (char *)"--runtime-dir";
		v[2] = (char *)scmctl_runtime_dir();
		memcpy(v + 3, argv + 1, (size_t)(argc - 1) * sizeof(char *));
		return exec_helper("dbus-export", argc + 2, v);
	}
	if (strcmp(sub, "list") == 0)
		return simple("service.list", NULL, show_services);
	if (strcmp(sub, "register") == 0) {
		if (argc < 2)
			return usage_error("service register needs a manifest file");
		int rc = 0;
		for (int i = 1; i < argc; i++) {
			char real[PATH_MAX];
			json_object *man = json_object_from_file(argv[i]);
			if (!man) {
				fprintf(stderr, "scmctl: %s: cannot read a JSON manifest: %s\n", argv[i],
					json_util_get_last_err() ? json_util_get_last_err() : "invalid");
				rc = EXIT_FAIL;
				continue;
			}
			json_object *a = json_object_new_object();
			json_object_object_add(a, "manifest", man);
			json_object_object_add(a, "origin",
					       json_object_new_string(realpath(argv[i], real) ? real : argv[i]));
			int r = simple("service.register", a, show_registered);
			if (r)
				rc = r;
		}
		return rc;
	}
	if (strcmp(sub, "unregister") == 0) {
		if (argc != 2)
			return usage_error("service unregister needs one service name");
		return simple("service.unregister", name_arg(argv[1]), NULL);
	}
	if (strcmp(sub, "restart") == 0)
		return service_restart(argc, argv);
	if (strcmp(sub, "show") == 0) {
		if (argc != 2)
			return usage_error("service show needs one service name");
		json_object *res = NULL;
		scm_error *e = NULL;
		scm_idl *idl = NULL;
		json_object *a = name_arg(argv[1]);
		int r = scmctl_control_call("service.show", a, &res, &e);
		json_object_put(a);
		if (r)
			return scmctl_fail(e);
		if (json_out) {
			print_json(res);
		} else {
			printf("service %s: %s, %s, pid %lld, %lld channels\n  manifest %s\n  interface %s\n\n",
			       js(res, "name"), js(res, "state"), js(res, "activation"), (long long)ji(res, "pid"),
			       (long long)ji(res, "channels"), js(res, "manifest"), js(res, "idl_path"));
			const char *t = js(res, "idl");
			if (scm_idl_parse(t, strlen(t), js(res, "idl_path"), &idl, &e) == 0)
				scm_idl_print(idl, stdout);
			else
				scmctl_fail(e);
			scm_idl_free(idl);
		}
		json_object_put(res);
		return 0;
	}
	return usage_error("unknown service command '%s'", sub);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *ret)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 0);
	if (errno || *end || !*s || v > max || s[0] == '-')
		return -EINVAL;
	*ret = v;
	return 0;
}

static int cmd_endpoint(int argc, char **argv)
{
	if (argc < 1)
		return usage_error("endpoint needs a command: create, list, remove");
	if (strcmp(argv[0], "list") == 0)
		return simple("endpoint.list", NULL, show_endpoints);
	if (strcmp(argv[0], "remove") == 0) {
		if (argc != 2)
			return usage_error("endpoint remove needs one endpoint name");
		return simple("endpoint.remove", name_arg(argv[1]), NULL);
	}
	if (strcmp(argv[0], "create") != 0)
		return usage_error("unknown endpoint command '%s'", argv[0]);

	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "mode", required_argument, NULL, 'm' },
		{ "profiles", required_argument, NULL, 'p' },
		{ "quota-channels", required_argument, NULL, 'c' },
		{ "quota-pending", required_argument, NULL, 'P' },
		{ "quota-connections", required_argument, NULL, 'C' },
		{ "quota-bytes", required_argument, NULL, 'b' },
		{ "json", no_argument, NULL, 'j' },
		{},
	};
	json_object *a = json_object_new_object(), *q = json_object_new_object();
	int c;
	unsigned long v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		const char *key = NULL;
		switch (c) {
		case 'o':
			if (parse_uint(optarg, 0xfffffffeUL, &v) < 0)
				return usage_error("--owner wants a numeric uid, got '%s'", optarg);
			json_object_object_add(a, "owner", json_object_new_int64((int64_t)v));
			break;
		case 'm':
			if (parse_uint(optarg, 0777, &v) < 0 || optarg[0] != '0')
				return usage_error("--mode wants octal permissions such as 0660, got '%s'", optarg);
			json_object_object_add(a, "mode", json_object_new_int64((int64_t)v));
			break;
		case 'p': {
			json_object *arr = json_object_new_array();
			_cleanup_free_ char *list = strdup(optarg);
			char *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
				json_object_array_add(arr, json_object_new_string(t));
			json_object_object_add(a, "profiles", arr);
			break;
		}
		case 'c': key = "channels"; break;
		case 'P': key = "pending"; break;
		case 'C': key = "connections"; break;
		case 'b': key = "queued_bytes"; break;
		case 'j': json_out = true; break;
		default: return EXIT_USAGE;
		}
		if (key) {
			if (parse_uint(optarg, 1000000, &v) < 0 || v == 0)
				return usage_error("--quota-%s wants a number from 1 to 1000000, got '%s'", key, optarg);
			json_object_object_add(q, key, json_object_new_int64((int64_t)v));
		}
	}
	if (argc - optind != 1)
		return usage_error("endpoint create needs one name");
	json_object_object_add(a, "name", json_object_new_string(argv[optind]));
	json_object_object_add(a, "quota", q);
	return simple("endpoint.create", a, show_endpoint);
}

static int cmd_channel(int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return simple("channel.list", NULL, show_channels);
	if (argc == 2 && strcmp(argv[0], "revoke") == 0) {
		unsigned long id;
		if (parse_uint(argv[1], ULONG_MAX, &id) < 0)
			return usage_error("channel revoke wants a channel id, got '%s'", argv[1]);
		json_object *a = json_object_new_object();
		json_object_object_add(a, "id", json_object_new_int64((int64_t)id));
		return simple("channel.revoke", a, NULL);
	}
	return usage_error("channel needs: list, or revoke ID");
}

static void show_restart(json_object *o)
{
	printf("scmd restarted in place: pid %lld, generation %lld, state version %lld, switch %lld us\n",
	       (long long)ji(o, "pid"), (long long)ji(o, "generation"), (long long)ji(o, "state_version"),
	       (long long)ji(o, "switch_us"));
}

/* daemon restart [--exec PATH]: scmd execs itself (or PATH) keeping every
 * socket, channel and container (docs/restart.md). */
static int cmd_daemon(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "restart") != 0)
		return usage_error("daemon needs: restart [--exec PATH]");
	json_object *a = json_object_new_object();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--exec") == 0 && i + 1 < argc) {
			char *abs = realpath(argv[++i], NULL);
			if (!abs) {
				json_object_put(a);
				return usage_error("--exec %s: %s", argv[i], strerror(errno));
			}
			json_object_object_add(a, "exec", json_object_new_string(abs));
			free(abs);
		} else {
			json_object_put(a);
			return usage_error("daemon restart takes --exec PATH only, got '%s'", argv[i]);
		}
	}
	return simple("daemon.restart", a, show_restart);
}

static const char help_text[] =
	"usage: scmctl [--runtime-dir DIR] [--json] COMMAND ...\n\n"
	       "  status                              scmd's state and per-stage connect latency\n"
	       "  service register MANIFEST...        register services from JSON manifests\n"
	       "  service unregister NAME             unregister (revokes its channels)\n"
	       "  service restart NAME [--exec PATH]  a new provider process (or PATH) takes over\n"
	       "                                      the running one's state and channels\n"
	       "  service list                        registered services\n"
	       "  service show NAME                   a service and its interface\n"
	       "  service export-dbus NAME --name BUS.NAME [--bus session|system|ADDRESS]\n"
	       "                  --caller UID|USER|*=PROFILE[,PROFILE]... [--path /OBJ]\n"
	       "                  [--interface IFACE] [--bus-policy-dir DIR | --no-bus-policy]\n"
	       "                  [--max-calls-per-caller N] [--max-calls N] [--call-timeout SECONDS]\n"
	       "                                      serve NAME on a D-Bus bus (docs/dbus.md)\n"
	       "  endpoint create NAME [--owner UID] [--mode 0600] [--profiles A,B]\n"
	       "                  [--quota-channels N] [--quota-pending N]\n"
	       "                  [--quota-connections N] [--quota-bytes N]\n"
	       "  endpoint list | remove NAME\n"
	       "  channel list | revoke ID\n"
	       "  events [--count N] [PATTERN...]     what scmd does, live: its audit records as they\n"
	       "                                      are written (PATTERN: e.g. 'container-*')\n"
	       "  daemon restart [--exec PATH]        restart scmd in place (or as PATH), keeping\n"
	       "                                      sockets, channels and containers\n"
	       "  call [--endpoint NAME|PATH] [--hold] SERVICE METHOD [ARGS-JSON]\n"
	       "  dbus call [--endpoint NAME|PATH] BUS DEST PATH INTERFACE METHOD [SIGNATURE [ARG...]]\n"
	       "  dbus subscribe [--endpoint NAME|PATH] [--count N] BUS SENDER PATH INTERFACE MEMBER\n"
	       "  container run [--name N] [--profile P]... [--env K=V]... [-d | -t]\n"
	       "                [--user UID[:GID]] [--bind SRC[:DST][:rw]]...\n"
	       "                (--bundle DIR | -- CMD ARGS)  run a container (attached unless -d)\n"
	       "  container list | show N | logs N | stop N [--timeout MS] | kill N [SIG]\n"
	       "  container exec N -- CMD ARGS | rm N\n"
	       "  container pause N | resume N          freeze and thaw every process (cgroup freezer)\n"
	       "  container update N [--memory SIZE] [--pids N] [--cpu-weight W] [--profile P]...\n"
	       "                live limits and profiles; says what needs a restart\n"
	       "  desktop launch SPEC [--novnc PORT] | list | show N | viewers N | screenshot N FILE.png | stop N\n"
	       "  desktop app add DESKTOP APP.json | app remove DESKTOP APP\n"
	       "  policy ...                          author and debug policy (scmctl policy --help)\n"
	       "  vdisk ...                           virtual disks (scmctl vdisk --help)\n\n"
	       "Exit status: 0 ok, 1 failed, 2 usage, 3 scmd unreachable, 4 denied,\n"
	       "5 no such service/object/method, 6 quota, 7 timeout or activation failure.\n"
	       "See scmctl(1).\n";

static void help(void)
{
	fputs(help_text, stdout);
}

/* `scmctl COMMAND ... --help`: the lines of the help about COMMAND (each
 * "  COMMAND ..." line and the more indented ones that continue it). */
static int help_for(const char *cmd)
{
	size_t n = strlen(cmd);
	bool in = false, any = false;
	for (const char *l = help_text; *l;) {
		const char *e = strchrnul(l, '\n');
		if (strncmp(l, "  ", 2) == 0 && l[2] != ' ')
			in = strncmp(l + 2, cmd, n) == 0 && (l[2 + n] == ' ' || l[2 + n] == '\n');
		else if (strncmp(l, "   ", 3) != 0)
			in = false;
		if (in) {
			if (!any)
				printf("usage: scmctl [--runtime-dir DIR] [--json]\n");
			printf("%.*s\n", (int)(e - l), l);
			any = true;
		}
		l = *e ? e + 1 : e;
	}
	if (any)
		printf("See scmctl(1).\n");
	return any ? 0 : usage_error("unknown command '%s'", cmd);
}

/* `--help` right after the command or its subcommand (`container run
 * --help`): never further on, where it may be a word of the container's
 * command (`container exec web ls -h`) or a D-Bus argument. */
static bool wants_help(int argc, char **argv)
{
	for (int k = 0; k < argc && k < 2 && strcmp(argv[k], "--") != 0; k++)
		if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0)
			return true;
	return false;
}

/* Subcommands that are programs of their own (scm-NAME next to scmctl, or
 * in ../libexec/scm as installed, or ../libexec as in a build tree), like
 * git's. */
static int exec_helper(const char *name, int argc, char **argv)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		*slash = 0;
		const char *dirs[] = { "", "/../libexec/scm", "/../libexec" };
		for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
			snprintf(path, sizeof(path), "%s%s/scm-%s", exe, dirs[i], name);
			if (access(path, X_OK) == 0) {
				argv[0] = path;
				execv(path, argv);
			}
		}
	}
	fprintf(stderr, "scmctl: the '%s' commands are not installed (no scm-%s next to scmctl)\n", name, name);
	(void)argc;
	return EXIT_FAIL;
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json_out = true;
		else if (strcmp(argv[i], "--runtime-dir") == 0 && i + 1 < argc)
			runtime_dir_opt = argv[++i];
		else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			help();
			return 0;
		} else
			return usage_error("unknown option '%s'", argv[i]);
	}
	if (i >= argc) {
		help();
		return EXIT_USAGE;
	}
	/* --json may also come after the command. */
	for (int k = i + 1; k < argc; k++) {
		if (strcmp(argv[k], "--") == 0)
			break;
		if (strcmp(argv[k], "--json") == 0 && strcmp(argv[i], "call") != 0 &&
		    strcmp(argv[i], "vdisk") != 0 && strcmp(argv[i], "policy") != 0) {
			json_out = true;
			memmove(&argv[k], &argv[k + 1], (size_t)(argc - k) * sizeof(char *));
			argc--;
			k--;
		}
	}
	const char *cmd = argv[i];
	int n = argc - i - 1;
	char **rest = argv + i + 1;
	/* policy and vdisk are programs with a help of their own */
	if (strcmp(cmd, "policy") != 0 && strcmp(cmd, "vdisk") != 0 && wants_help(n, rest))
		return help_for(cmd);
	if (strcmp(cmd, "status") == 0)
		return simple("status", NULL, show_status);
	if (strcmp(cmd, "service") == 0)
		return cmd_service(n, rest);
	if (strcmp(cmd, "endpoint") == 0)
		return cmd_endpoint(n, rest);
	if (strcmp(cmd, "channel") == 0)
		return cmd_channel(n, rest);
	if (strcmp(cmd, "daemon") == 0)
		return cmd_daemon(n, rest);
	if (strcmp(cmd, "call") == 0)
		return scmctl_call(n + 1, argv + i);
	if (strcmp(cmd, "dbus") == 0)
		return scmctl_dbus(n + 1, argv + i);
	if (strcmp(cmd, "events") == 0)
		return scmctl_events(n + 1, argv + i, json_out);
	if (strcmp(cmd, "policy") == 0)
		return scmctl_policy(n + 1, argv + i);
	if (strcmp(cmd, "container") == 0)
		return scmctl_container(n + 1, argv + i, json_out);
	if (strcmp(cmd, "desktop") == 0)
		return scmctl_desktop(n + 1, argv + i, json_out);
	if (strcmp(cmd, "vdisk") == 0)
		return exec_helper("vdisk", n + 1, argv + i);
	return usage_error("unknown command '%s'", cmd);
}
