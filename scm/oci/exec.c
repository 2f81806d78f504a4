/* exec.c: `scm-oci exec`, a process in a running container, through
 * scmd's container.exec (which enters the container as PID 1 did and
 * hands the process the three fds given: here scm-oci's own stdio).
 * conmon runs it as `exec --detach --pid-file F --process P.json ID` and
 * waits for the pid in F: so, as at create, that pid is a monitor, a
 * child that holds the call until scmd answers with the exit status and
 * exits with it. Without --detach scm-oci waits itself. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci.h"
#include "scm/macro.h"
#include "scmutil.h"

/* process.json's args; the rest of a process (env, cwd, user) is the
 * container's, as scmctl container exec gives it. */
static int process_args(const char *path, char ***ret, json_object **ret_process, scm_error **ret_err)
{
	_cleanup_free_ char *text = oci_read_file(AT_FDCWD, path);
	if (!text)
		return scm_fail(ret_err, SCM_E_INVALID, "--process %s: %m", path);
	json_object *o = json_tokener_parse(text), *a;
	const char *why = NULL;
	char **argv = o && json_object_object_get_ex(o, "args", &a) ? strv_from_json(a, 4096, true, &why) : NULL;
	if (!argv || !argv[0]) {
		json_object_put(o);
		strv_free(argv);
		return scm_fail(ret_err, SCM_E_INVALID, "--process %s /args: a non-empty list of strings is required", path);
	}
	*ret = argv;
	*ret_process = o;
	return 0;
}

static int exec_call(const char *name, char **argv, int tty, scm_error **ret_err)
{
	json_object *a = json_object_new_object(), *res = NULL, *v;
	json_object *arr = json_object_new_array();
	for (char **p = argv; *p; p++)
		json_object_array_add(arr, json_object_new_string(*p));
	json_object_object_add(a, "name", json_object_new_string(name));
	json_object_object_add(a, "argv", arr);
	/* a terminal's slave as all three (the process's own session and
	 * controlling terminal are not made: `container.exec` enters as is) */
	int fds[3] = { tty >= 0 ? tty : 0, tty >= 0 ? tty : 1, tty >= 0 ? tty : 2 };
	int r = oci_scmd_call("container.exec", a, fds, 3, &res, NULL, ret_err);
	json_object_put(a);
	int code = r == 0 && json_object_object_get_ex(res, "exit_code", &v) ? json_object_get_int(v) : -1;
	json_object_put(res);
	return r != 0 ? -1 : code;
}

int oci_cmd_exec(int argc, char **argv)
{
	static const struct option opts[] = { { "process", required_argument, NULL, 'p' },
					      { "pid-file", required_argument, NULL, 'P' },
					      { "detach", no_argument, NULL, 'd' },
					      { "tty", no_argument, NULL, 't' },
					      { "console-socket", required_argument, NULL, 'c' },
					      { "cwd", required_argument, NULL, 'w' },
					      { "env", required_argument, NULL, 'e' },
					      {} };
	const char *process = NULL, *pid_file = NULL, *console = NULL;
	bool detach = false, tty_flag = false;
	scm_error *e = NULL;
	/* "+": the command after the id keeps its own options */
	for (int c; (c = getopt_long(argc, argv, "+p:dt", opts, NULL)) != -1;) {
		if (c == 'p')
			process = optarg;
		else if (c == 'P')
			pid_file = optarg;
		else if (c == 'd')
			detach = true;
		else if (c == 't')
			tty_flag = true;
		else if (c == 'c')
			console = optarg;
		else if (c == 'w' || c == 'e')
			return oci_fail(scm_error_new(SCM_E_INVALID, "scm-oci",
						      "exec: --cwd and --env are not supported (the container's own)"));
		else
			return oci_fail(scm_error_new(SCM_E_INVALID, "scm-oci", "exec: unknown option"));
	}
	if (optind >= argc || !oci_id_valid(argv[optind]))
		return oci_fail(scm_error_new(SCM_E_INVALID, "scm-oci", "exec needs a valid container id"));
	const char *id = argv[optind++];
	char **cmd = NULL;
	json_object *proc = NULL;
	if (process) {
		if (process_args(process, &cmd, &proc, &e) != 0)
			return oci_fail(e);
	} else if (optind < argc) {
		cmd = strv_copy(argv + optind);
		proc = json_object_new_object();
		json_object_object_add(proc, "terminal", json_object_new_boolean(tty_flag));
	} else
		return oci_fail(scm_error_new(SCM_E_INVALID, "scm-oci", "exec needs --process FILE or a command"));
	_cleanup_close_ int tty_m = -1, tty_s = -1;
	char where[PATH_MAX + 16];
	snprintf(where, sizeof(where), "%s%s", process ? "--process " : "the command line", process ? process : "");
	if (oci_console_check(proc, console, where, &e) != 0 ||
	    (console && oci_console_open(proc, &tty_m, &tty_s, &e) != 0)) {
		json_object_put(proc);
		strv_free(cmd);
		return oci_fail(e);
	}
	json_object_put(proc);
	struct oci_state st = { 0 };
	_cleanup_close_ int dfd = -1;
	if (oci_state_load(id, &st, &e) != 0 || oci_state_dir(id, false, &dfd, &e) != 0) {
		strv_free(cmd);
		oci_state_done(&st);
		return oci_fail(e);
	}
	int r = 0;
	if (oci_status(dfd, &st) != OCI_RUNNING)
		r = scm_fail(&e, SCM_E_INVALID, "container \"%s\" is %s, not running", id,
			     oci_status_name(oci_status(dfd, &st)));
	/* the engine waits for the terminal before exec returns (detached) */
	if (r == 0 && console && oci_console_send(console, tty_m, &e) != 0)
		r = -1;
	tty_m = safe_close(tty_m);
	if (r == 0 && !detach) {
		int code = exec_call(st.name, cmd, tty_s, &e);
		strv_free(cmd);
		oci_state_done(&st);
		return code < 0 ? oci_fail(e) : code;
	}
	pid_t pid = r == 0 ? fork() : -1;
	if (r == 0 && pid < 0)
		r = scm_fail(&e, -errno, "fork: %m");
	if (pid == 0) {
		setsid();
		int code = exec_call(st.name, cmd, tty_s, &e);
		if (code < 0)
			oci_fail(e);
		_exit(code < 0 ? 126 : code & 0xff);
	}
	if (r == 0 && pid_file) {
		char text[32];
		snprintf(text, sizeof(text), "%d", (int)pid);
		FILE *f = fopen(pid_file, "we");
		if (!f || fputs(text, f) < 0 || fclose(f) != 0)
			r = scm_fail(&e, -errno, "--pid-file %s: %m", pid_file);
	}
	strv_free(cmd);
	oci_state_done(&st);
	return r ? oci_fail(e) : 0;
}

/* `ps [--format json|table] ID`: the host pids of every process in the
 * container (those in its PID 1's pid namespace), as runc prints them. */
int oci_cmd_ps(int argc, char **argv)
{
	static const struct option opts[] = { { "format", required_argument, NULL, 'f' }, {} };
	bool json = false;
	scm_error *e = NULL;
	for (int c; (c = getopt_long(argc, argv, "+f:", opts, NULL)) != -1;) {
		if (c == 'f' && (strcmp(optarg, "json") == 0 || strcmp(optarg, "table") == 0))
			json = strcmp(optarg, "json") == 0;
		else
			return oci_fail(scm_error_new(SCM_E_INVALID, "scm-oci", "ps: --format table or json"));
	}
	if (optind != argc - 1 || !oci_id_valid(argv[optind]))
		return oci_fail(scm_error_new(SCM_E_INVALID, "scm-oci", "ps needs one valid container id"));
	struct oci_state st = { 0 };
	_cleanup_close_ int dfd = -1;
	if (oci_state_load(argv[optind], &st, &e) != 0 || oci_state_dir(argv[optind], false, &dfd, &e) != 0) {
		oci_state_done(&st);
		return oci_fail(e);
	}
	json_object *a = json_object_new_object(), *res = NULL, *v;
	json_object_object_add(a, "name", json_object_new_string(st.name));
	int r = oci_status(dfd, &st) == OCI_RUNNING ? oci_scmd_call("container.show", a, NULL, 0, &res, NULL, &e)
						    : scm_fail(&e, SCM_E_INVALID, "container \"%s\" is not running",
							       st.id);
	json_object_put(a);
	pid_t init = r == 0 && json_object_object_get_ex(res, "pid", &v) ? (pid_t)json_object_get_int(v) : 0;
	json_object_put(res);
	char path[64], want[64] = "", link[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)init);
	if (r == 0 && (init <= 1 || readlink(path, want, sizeof(want) - 1) <= 0))
		r = scm_fail(&e, SCM_E_NOT_FOUND, "container \"%s\": its processes are gone", st.id);
	oci_state_done(&st);
	if (r != 0)
		return oci_fail(e);
	DIR *d = opendir("/proc");
	json_object *pids = json_object_new_array();
	if (!json)
		puts("PID CMD");
	for (struct dirent *de; d && (de = readdir(d));) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/ns/pid", pid);
		ssize_t n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0 || (link[n] = 0, strcmp(link, want) != 0))
			continue;
		json_object_array_add(pids, json_object_new_int((int)pid));
		if (!json) {
			snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
			_cleanup_free_ char *comm = oci_read_file(AT_FDCWD, path);
			printf("%ld %s", pid, comm ? comm : "?\n");
		}
	}
	if (d)
		closedir(d);
	if (json)
		puts(json_object_to_json_string_ext(pids, JSON_C_TO_STRING_PLAIN));
	json_object_put(pids);
	return 0;
}
