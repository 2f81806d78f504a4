/* scmctl-container.c: `scmctl container ...`.
 *
 * `run` without -d is attached. Without a terminal on stdin, scmctl hands
 * its stdin to the container and copies the output pipe scmd gives it to
 * its stdout until the container closes it. With one (or with -t), the
 * container gets a pty of its own, never the caller's terminal: scmd
 * hands scmctl the master, scmctl puts its terminal in raw mode, relays
 * both ways, passes on window size changes and puts the terminal back as
 * it was on the way out, signals included. Then it asks scmd for the exit
 * status and exits with it (128+N for a signal), as a shell would.
 * Signals scmctl gets (^C without a pty) are forwarded. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <zstd.h>

#include "scm/macro.h"
#include "scmctl.h"

static volatile sig_atomic_t got_signal, got_winch;
static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else
		got_signal = sig;
}

/* The caller's terminal as it was before raw mode; put back on every way
 * out (return, exit, and the signals that end scmctl by default are
 * caught and end the loop instead). */
static struct termios saved_tio;
static bool tio_saved;
static void restore_terminal(void)
{
	if (tio_saved && tcsetattr(0, TCSAFLUSH, &saved_tio) == 0)
		tio_saved = false;
}

static void copy_winsize(int master)
{
	struct winsize ws;
	if (ioctl(0, TIOCGWINSZ, &ws) == 0)
		(void)ioctl(master, TIOCSWINSZ, &ws);
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

static void forward_signal(const char *name);

/* Relays stdin to the pty master and the master to stdout until the
 * container's side is gone (EIO on the master). */
static void relay_pty(int master, const char *name)
{
	if (isatty(0) && tcgetattr(0, &saved_tio) == 0) {
		struct termios raw = saved_tio;
		cfmakeraw(&raw);
		tio_saved = true;
		atexit(restore_terminal);
		(void)tcsetattr(0, TCSANOW, &raw);
		copy_winsize(master);
	}
	bool in_open = true;
	for (;;) {
		struct pollfd p[2] = { { master, POLLIN, 0 }, { in_open ? 0 : -1, POLLIN, 0 } };
		int n = poll(p, 2, -1);
		if (got_winch) {
			got_winch = 0;
			copy_winsize(master);
		}
		if (got_signal)
			forward_signal(name);
		if (n <= 0)
			continue;
		char buf[65536];
		if (p[0].revents) {
			ssize_t k = read(master, buf, sizeof(buf));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				break; /* EIO: every slave fd is closed */
			(void)write_all(1, buf, (size_t)k);
		}
		if (p[1].revents) {
			ssize_t k = read(0, buf, sizeof(buf));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0 || write_all(master, buf, (size_t)k) < 0) {
				/* stdin ended: the pty's end-of-file character, so a
				 * program reading a line sees EOF too. */
				struct termios t;
				char eof = tcgetattr(master, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
				if (k == 0)
					(void)write_all(master, &eof, 1);
				in_open = false;
			}
		}
	}
	restore_terminal();
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
		if (write_all(to, buf, (size_t)n) < 0)
			return -1;
	return n < 0 ? -1 : 0;
}

/* A rotated log file scmd compressed (a zstd frame) is decompressed as
 * it streams out, in bounded memory; any other file is copied. */
static int copy_log(int from, int to)
{
	static const unsigned char magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	unsigned char head[4];
	if (pread(from, head, sizeof(head), 0) != (ssize_t)sizeof(head) || memcmp(head, magic, 4) != 0)
		return copy_fd(from, to);
	ZSTD_DStream *ds = ZSTD_createDStream();
	static char in[65536], out[131072];
	int r = ds ? 0 : -1;
	ssize_t n = 0;
	while (r == 0 && (n = read(from, in, sizeof(in))) > 0) {
		ZSTD_inBuffer ib = { in, (size_t)n, 0 };
		while (r == 0 && ib.pos < ib.size) {
			ZSTD_outBuffer ob = { out, sizeof(out), 0 };
			size_t z = ZSTD_decompressStream(ds, &ob, &ib);
			if (ZSTD_isError(z)) {
				fprintf(stderr, "scmctl: a compressed log file is damaged: %s\n", ZSTD_getErrorName(z));
				r = -1;
			} else
				r = write_all(to, out, ob.pos);
		}
	}
	ZSTD_freeDStream(ds);
	return n < 0 ? -1 : r;
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

/* pause answers once the freezer is asked; the freezer stops every
 * process soon after: wait (10 s at most) until the state says so. */
static int cmd_pause(const char *sub, const char *name)
{
	json_object *res = NULL, *v;
	char op[32];
	snprintf(op, sizeof(op), "container.%s", sub);
	int r = call(op, name_args(name), NULL, 0, &res, NULL);
	if (r < 0)
		return -r;
	for (int i = 0; i < 10000; i++) {
		const char *st = json_object_object_get_ex(res, "state", &v) ? json_object_get_string(v) : "?";
		if (strcmp(st, "pausing") != 0) {
			printf("%s\n", st);
			json_object_put(res);
			return 0;
		}
		json_object_put(res);
		res = NULL;
		(void)usleep(1000);
		if ((r = call("container.show", name_args(name), NULL, 0, &res, NULL)) < 0)
			return -r;
	}
	json_object_put(res);
	fprintf(stderr, "scmctl: %s is still pausing after 10 s (a process stuck in the kernel?)\n", name);
	return 1;
}

/* 512, 64K, 256M, 2G: bytes */
static int parse_size(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	int shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if (errno || end == s || *end || s[0] == '-' || v > (unsigned long long)INT64_MAX >> shift)
		return -EINVAL;
	*ret = (int64_t)(v << shift);
	return 0;
}

static int cmd_update(int argc, char **argv, bool json)
{
	json_object *a = name_args(argv[2]), *profiles = NULL, *res = NULL, *v;
	for (int i = 3; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t n;
		char *end;
		if (!val)
			goto usage;
		i++;
		if (strcmp(opt, "--memory") == 0) {
			if (parse_size(val, &n) < 0) {
				fprintf(stderr, "scmctl: --memory '%s' is not a size (bytes, or with K, M, G)\n", val);
				goto bad;
			}
			json_object_object_add(a, "memory", json_object_new_int64(n));
		} else if (strcmp(opt, "--pids") == 0 || strcmp(opt, "--cpu-weight") == 0) {
			errno = 0;
			n = strtoll(val, &end, 10);
			if (errno || end == val || *end || n <= 0) {
				fprintf(stderr, "scmctl: %s '%s' is not a positive number\n", opt, val);
				goto bad;
			}
			json_object_object_add(a, opt[2] == 'p' ? "pids" : "cpu_weight", json_object_new_int64(n));
		} else if (strcmp(opt, "--profile") == 0) {
			if (!profiles)
				json_object_object_add(a, "profiles", profiles = json_object_new_array());
			json_object_array_add(profiles, json_object_new_string(val));
		} else
			goto usage;
	}
	int r = call("container.update", a, NULL, 0, &res, NULL);
	if (r < 0)
		return -r;
	if (json) {
		puts(json_object_to_json_string_ext(res, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else {
		json_object *arr;
		if (json_object_object_get_ex(res, "applied", &arr))
			for (size_t i = 0; i < json_object_array_length(arr); i++)
				printf("applied %s\n", json_object_get_string(json_object_array_get_idx(arr, i)));
		if (json_object_object_get_ex(res, "channels_revoked", &v))
			printf("channels revoked %d\n", json_object_get_int(v));
		if (json_object_object_get_ex(res, "restart_needed", &arr))
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				json_object *o = json_object_array_get_idx(arr, i), *w, *y;
				json_object_object_get_ex(o, "what", &w);
				json_object_object_get_ex(o, "why", &y);
				printf("needs a restart: %s (%s)\n", json_object_get_string(w), json_object_get_string(y));
			}
	}
	json_object_put(res);
	return 0;
usage:
	fprintf(stderr, "scmctl: usage: container update NAME [--memory SIZE] [--pids N] [--cpu-weight 1-10000] "
			"[--profile P]...\n");
bad:
	json_object_put(a);
	return 2;
}

/* --bind SRC[:DST][:ro|:rw] (podman's -v): SRC made absolute here, as the
 * caller means it; DST defaults to SRC. */
static json_object *parse_bind(const char *arg)
{
	_cleanup_free_ char *copy = strdup(arg);
	char *parts[3] = { NULL, NULL, NULL };
	size_t n = 0;
	for (char *save = NULL, *t = copy ? strtok_r(copy, ":", &save) : NULL; t; t = strtok_r(NULL, ":", &save)) {
		if (n == 3) {
			n = 4;
			break;
		}
		parts[n++] = t;
	}
	bool rw = false;
	if (n >= 2 && (strcmp(parts[n - 1], "rw") == 0 || strcmp(parts[n - 1], "ro") == 0)) {
		rw = strcmp(parts[--n], "rw") == 0;
		parts[n] = NULL;
	}
	char real[PATH_MAX];
	if (n < 1 || n > 2 || (parts[1] && parts[1][0] != '/')) {
		fprintf(stderr, "scmctl: --bind wants SRC[:DST][:ro|:rw] with DST absolute, got '%s'\n", arg);
		return NULL;
	}
	if (!realpath(parts[0], real)) {
		fprintf(stderr, "scmctl: --bind %s: %m\n", parts[0]);
		return NULL;
	}
	json_object *b = json_object_new_object();
	json_object_object_add(b, "source", json_object_new_string(real));
	json_object_object_add(b, "destination", json_object_new_string(parts[1] ? parts[1] : real));
	json_object_object_add(b, "writable", json_object_new_boolean(rw));
	return b;
}

static void forward_signal(const char *name)
{
	json_object *k = name_args(name);
	json_object_object_add(k, "signal", json_object_new_int(got_signal));
	call("container.kill", k, NULL, 0, NULL, NULL);
	got_signal = 0;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },  { "profile", required_argument, NULL, 'p' },
		{ "env", required_argument, NULL, 'e' },   { "bundle", required_argument, NULL, 'b' },
		{ "detach", no_argument, NULL, 'd' },      { "user", required_argument, NULL, 'u' },
		{ "bind", required_argument, NULL, 'v' },
		{ "tty", no_argument, NULL, 't' },
		{},
	};
	json_object *a = json_object_new_object(), *profiles = json_object_new_array(),
		    *env = json_object_new_array(), *binds = json_object_new_array();
	bool detach = false, tty = false;
	const char *bundle = NULL;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+n:p:e:b:du:v:t", opts, NULL)) != -1) {
		switch (c) {
		case 'v': {
			json_object *b = parse_bind(optarg);
			if (!b)
				return 2;
			json_object_array_add(binds, b);
			break;
		}
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
		case 't': tty = true; break;
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
	if (json_object_array_length(binds))
		json_object_object_add(a, "binds", json_object_get(binds));
	json_object_put(binds);
	json_object_object_add(a, "attach", json_object_new_boolean(!detach));
	if (tty && detach) {
		fprintf(stderr, "scmctl: --tty is for attached runs (not with -d)\n");
		return 2;
	}
	/* A terminal on stdin means a pty: the terminal itself never goes. */
	tty = !detach && (tty || isatty(0));
	if (tty) {
		struct winsize ws;
		json_object_object_add(a, "tty", json_object_new_boolean(true));
		if (ioctl(0, TIOCGWINSZ, &ws) == 0) {
			json_object_object_add(a, "tty_rows", json_object_new_int(ws.ws_row));
			json_object_object_add(a, "tty_cols", json_object_new_int(ws.ws_col));
		}
		/* Output to a file or pipe: no \r\n translation on the way. */
		if (!isatty(1))
			json_object_object_add(a, "tty_raw_out", json_object_new_boolean(true));
	}
	bool pass_stdin = !detach && !tty;

	json_object *res = NULL, *v;
	int out = -1, in = 0;
	int r = call("container.run", a, pass_stdin ? &in : NULL, pass_stdin ? 1 : 0, &res, &out);
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
	if (tty) {
		sigaction(SIGHUP, &sa, NULL);
		sigaction(SIGQUIT, &sa, NULL);
		sigaction(SIGWINCH, &sa, NULL);
		relay_pty(out, name);
		close(out);
		return wait_exit(name);
	}
	for (;;) {
		struct pollfd p = { out, POLLIN, 0 };
		int n = poll(&p, 1, -1);
		if (got_signal)
			forward_signal(name);
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
	/* The name column is as wide as the longest name (provider containers'
	 * names, provider-SERVICE-N, are often past 20). */
	int w = 20;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		const char *n = json_object_get_string(json_object_object_get(json_object_array_get_idx(arr, i), "name"));
		if (n && strlen(n) > (size_t)w && strlen(n) <= 255)
			w = (int)strlen(n);
	}
	printf("%-*s %-8s %8s %6s %9s  %s\n", w, "NAME", "STATE", "PID", "EXIT", "UP(ms)", "COMMAND");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *v;
		char ex[16] = "-";
		if (json_object_object_get_ex(o, "exit_code", &v))
			snprintf(ex, sizeof(ex), "%d", json_object_get_int(v));
		printf("%-*s %-8s %8d %6s %9lld  %s\n", w, json_object_get_string(json_object_object_get(o, "name")),
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
	if (strcmp(sub, "pause") == 0 || strcmp(sub, "resume") == 0)
		return argc == 3 ? cmd_pause(sub, name) : (fprintf(stderr, "scmctl: usage: container %s NAME\n", sub), 2);
	if (strcmp(sub, "update") == 0)
		return cmd_update(argc, argv, json);
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
				bad |= copy_log(fds[i], 1) < 0;
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
		/* exec still hands over scmctl's stdio (no pty yet): at least the
		 * terminal's settings come back as they were. */
		tio_saved = isatty(0) && tcgetattr(0, &saved_tio) == 0;
		r = call("container.exec", a, fds, 3, &res, NULL);
		restore_terminal();
		if (r < 0)
			return -r;
		json_object *v;
		int code = json_object_object_get_ex(res, "exit_code", &v) ? json_object_get_int(v) : 1;
		json_object_put(res);
		return code;
	}
	fprintf(stderr, "scmctl: unknown container command '%s'\n", sub);
	return 2;
}
