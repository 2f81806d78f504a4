/* scmctl-container.c: `scmctl container ...`.
 *
 * `run` without -d is attached: scmctl hands its stdin to the container,
 * copies the output pipe scmd gives it to its stdout until the container
 * closes it, then asks scmd for the exit status and exits with it (128+N
 * for a signal), as a shell would. Ctrl-C is forwarded as SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scm/macro.h"
#include "scmctl.h"

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
	got_signal = sig;
}

static json_object *name_args(const char *name)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "name", json_object_new_string(name));
	return a;
}

static int call(const char *op, json_object *args, const int *fds, size_t n, json_object **ret, int *ret_fd)
{
	scm_error *e = NULL;
	json_object *res = NULL;
	int r = scmctl_control_call_fds(op, args, fds, n, &res, ret_fd, &e);
	json_object_put(args);
	if (r != 0)
		return -scmctl_fail(e);
	if (ret)
		*ret = res;
	else
		json_object_put(res);
	return 0;
}

static int copy_fd(int from, int to)
{
	char buf[65536];
	ssize_t n;
	while ((n = read(from, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(to, buf + off, (size_t)(n - off));
			if (w <= 0)
				return -1;
			off += w;
		}
	return n < 0 ? -1 : 0;
}

static int wait_exit(const char *name)
{
	json_object *res = NULL, *v;
	int r = call("container.wait", name_args(name), NULL, 0, &res, NULL);
	if (r < 0)
		return -r;
	int code = json_object_object_get_ex(res, "exit_code", &v) ? json_object_get_int(v) : 1;
	json_object_put(res);
	return code;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },  { "profile", required_argument, NULL, 'p' },
		{ "env", required_argument, NULL, 'e' },   { "bundle", required_argument, NULL, 'b' },
		{ "detach", no_argument, NULL, 'd' },      { "user", required_argument, NULL, 'u' },
		{},
	};
	json_object *a = json_object_new_object(), *profiles = json_object_new_array(),
		    *env = json_object_new_array();
	bool detach = false;
	const char *bundle = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+n:p:e:b:du:", opts, NULL)) != -1) {
		switch (c) {
		case 'u': {
			char *end;
			unsigned long uid = strtoul(optarg, &end, 10), gid = uid;
			if (*end == ':')
				gid = strtoul(end + 1, &end, 10);
			if (*end || optarg[0] == '-' || uid >= 0xffffffffUL || gid >= 0xffffffffUL) {
				fprintf(stderr, "scmctl: --user wants UID[:GID] (numbers), got '%s'\n", optarg);
				return 2;
			}
			json_object_object_add(a, "uid", json_object_new_int64((int64_t)uid));
			json_object_object_add(a, "gid", json_object_new_int64((int64_t)gid));
			break;
		}
		case 'n': json_object_object_add(a, "name", json_object_new_string(optarg)); break;
		case 'p': {
			_cleanup_free_ char *l = strdup(optarg);
			char *save = NULL;
			for (char *t = strtok_r(l, ",", &save); t; t = strtok_r(NULL, ",", &save))
				json_object_array_add(profiles, json_object_new_string(t));
			break;
		}
		case 'e':
			if (!strchr(optarg, '=')) {
				fprintf(stderr, "scmctl: --env wants K=V, got '%s'\n", optarg);
				return 2;
			}
			json_object_array_add(env, json_object_new_string(optarg));
			break;
		case 'b': bundle = optarg; break;
		case 'd': detach = true; break;
		default: return 2;
		}
	}
	if ((bundle && optind < argc) || (!bundle && optind >= argc)) {
		fprintf(stderr, "scmctl: container run needs --bundle DIR or -- CMD ARGS (not both)\n");
		return 2;
	}
	if (bundle) {
		char real[PATH_MAX];
		if (!realpath(bundle, real)) {
			fprintf(stderr, "scmctl: bundle %s: %m\n", bundle);
			return 1;
		}
		json_object_object_add(a, "bundle", json_object_new_string(real));
	} else {
		json_object *av = json_object_new_array();
		for (int i = optind; i < argc; i++)
			json_object_array_add(av, json_object_new_string(argv[i]));
		json_object_object_add(a, "argv", av);
	}
	json_object_object_add(a, "profiles", profiles);
	json_object_object_add(a, "env", env);
	json_object_object_add(a, "attach", json_object_new_boolean(!detach));

	json_object *res = NULL, *v;
	int out = -1, in = 0;
	int r = call("container.run", a, detach ? NULL : &in, detach ? 0 : 1, &res, &out);
	if (r < 0)
		return -r;
	_cleanup_free_ char *name = strdup(json_object_object_get_ex(res, "name", &v) ? json_object_get_string(v) : "");
	json_object_put(res);
	if (detach) {
		printf("%s\n", name);
		return 0;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (;;) {
		struct pollfd p = { out, POLLIN, 0 };
		int n = poll(&p, 1, -1);
		if (got_signal) {
			json_object *k = name_args(name);
			json_object_object_add(k, "signal", json_object_new_int(got_signal));
			call("container.kill", k, NULL, 0, NULL, NULL);
			got_signal = 0;
		}
		if (n <= 0)
			continue;
		char buf[65536];
		ssize_t k = read(out, buf, sizeof(buf));
		if (k <= 0)
			break;
		(void)!write(1, buf, (size_t)k);
	}
	close(out);
	return wait_exit(name);
}

static void print_table(json_object *res)
{
	json_object *arr;
	json_object_object_get_ex(res, "containers", &arr);
	printf("%-20s %-8s %8s %6s %9s  %s\n", "NAME", "STATE", "PID", "EXIT", "UP(ms)", "COMMAND");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		char ex[16] = "-";
		if (json_object_object_get_ex(o, "exit_code", &v))
			snprintf(ex, sizeof(ex), "%d", json_object_get_int(v));
		printf("%-20s %-8s %8d %6s %9lld  %s\n", json_object_get_string(json_object_object_get(o, "name")),
		       json_object_get_string(json_object_object_get(o, "state")),
		       json_object_get_int(json_object_object_get(o, "pid")), ex,
		       (long long)json_object_get_int64(json_object_object_get(o, "uptime_ms")),
		       json_object_get_string(json_object_object_get(o, "command")));
	}
}

int scmctl_container(int argc, char **argv, bool json)
{
	if (argc < 2) {
		fprintf(stderr, "scmctl: container needs a command: run, list, show, logs, stop, kill, exec, rm\n");
		return 2;
	}
	const char *sub = argv[1];
	json_object *res = NULL;
	int r;
	if (strcmp(sub, "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0) {
		if ((r = call("container.list", NULL, NULL, 0, &res, NULL)) < 0)
			return -r;
		if (json)
			puts(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		else
			print_table(res);
		json_object_put(res);
		return 0;
	}
	if (argc < 3) {
		fprintf(stderr, "scmctl: container %s needs a container name\n", sub);
		return 2;
	}
	const char *name = argv[2];
	if (strcmp(sub, "show") == 0) {
		if ((r = call("container.show", name_args(name), NULL, 0, &res, NULL)) < 0)
			return -r;
		puts(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(res);
		return 0;
	}
	if (strcmp(sub, "logs") == 0) {
		/* The rotated files, oldest first, then the current one. */
		int fds[8];
		scm_error *e = NULL;
		json_object *a = name_args(name);
		r = scmctl_control_call_fdv("container.logs", a, NULL, fds, ELEMENTSOF(fds), &e);
		json_object_put(a);
		if (r != 0)
			return scmctl_fail(e);
		int bad = 0;
		for (size_t i = 0; i < ELEMENTSOF(fds); i++)
			if (fds[i] >= 0) {
				bad |= copy_fd(fds[i], 1) < 0;
				close(fds[i]);
			}
		return bad;
	}
	if (strcmp(sub, "stop") == 0 || strcmp(sub, "kill") == 0 || strcmp(sub, "rm") == 0) {
		json_object *a = name_args(name);
		if (strcmp(sub, "stop") == 0 && argc == 5 && strcmp(argv[3], "--timeout") == 0)
			json_object_object_add(a, "timeout_ms", json_object_new_int(atoi(argv[4])));
		else if (strcmp(sub, "kill") == 0 && argc == 4) {
			int sig = atoi(argv[3]);
			if (sig <= 0) {
				char nm[32];
				snprintf(nm, sizeof(nm), "%s", strncmp(argv[3], "SIG", 3) == 0 ? argv[3] + 3 : argv[3]);
				for (int s = 1; s < 65 && sig <= 0; s++)
					if (sigabbrev_np(s) && strcmp(sigabbrev_np(s), nm) == 0)
						sig = s;
			}
			if (sig <= 0) {
				fprintf(stderr, "scmctl: '%s' is not a signal\n", argv[3]);
				json_object_put(a);
				return 2;
			}
			json_object_object_add(a, "signal", json_object_new_int(sig));
		} else if (argc != 3) {
			json_object_put(a);
			fprintf(stderr, "scmctl: usage: container stop NAME [--timeout MS] | kill NAME [SIG] | rm NAME\n");
			return 2;
		}
		char op[32];
		snprintf(op, sizeof(op), "container.%s", sub);
		if ((r = call(op, a, NULL, 0, NULL, NULL)) < 0)
			return -r;
		if (strcmp(sub, "stop") == 0)
			return wait_exit(name) >= 0 ? 0 : 1;
		return 0;
	}
	if (strcmp(sub, "exec") == 0) {
		int k = 3;
		if (k < argc && strcmp(argv[k], "--") == 0)
			k++;
		if (k >= argc) {
			fprintf(stderr, "scmctl: container exec NAME -- CMD ARGS\n");
			return 2;
		}
		json_object *a = name_args(name), *av = json_object_new_array();
		for (int i = k; i < argc; i++)
			json_object_array_add(av, json_object_new_string(argv[i]));
		json_object_object_add(a, "argv", av);
		int fds[3] = { 0, 1, 2 };
		if ((r = call("container.exec", a, fds, 3, &res, NULL)) < 0)
			return -r;
		json_object *v;
		int code = json_object_object_get_ex(res, "exit_code", &v) ? json_object_get_int(v) : 1;
		json_object_put(res);
		return code;
	}
	fprintf(stderr, "scmctl: unknown container command '%s'\n", sub);
	return 2;
}
