/* scm-run: run one container with libscmcontainers, for tests and the
 * bench (scmd drives the same library for `scmctl container run`).
 *
 *   scm-run [OPTIONS] -- CMD ARGS     the quick path (host / read-only)
 *   scm-run [OPTIONS] --bundle DIR    an OCI bundle
 *
 * Exits with the container's status (128+N when killed by signal N),
 * 125 when the container could not be started. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container.h"
#include "scm/macro.h"

DEFINE_TRIVIAL_CLEANUP(container_spec *, container_spec_free)
#define spec_freep container_spec_freep
DEFINE_TRIVIAL_CLEANUP(container_sandbox *, container_sandbox_free)
#define sandbox_freep container_sandbox_freep

static void usage(FILE *f)
{
	fputs("usage: scm-run [OPTIONS] -- CMD [ARGS...]\n"
	      "       scm-run [OPTIONS] --bundle DIR\n"
	      "  --profile-sandbox JSON|@FILE  the sandbox the profile grants\n"
	      "  --endpoint SOCK|DIR  bind SOCK at " CONTAINER_ENDPOINT_PATH " (DIR, holding\n"
	      "                     scm.sock, at /run/scm) inside, read-only\n"
	      "  --subids START:COUNT  as root: a user namespace mapping 0..COUNT-1 onto\n"
	      "                     host ids START.. (as scmd does; default: none)\n"
	      "  --log FILE         stdout and stderr to FILE (appended)\n"
	      "  --id ID            container id (cgroup scm/ID)\n"
	      "  --cgroup-parent P  cgroup parent (default scm)\n"
	      "  --state-dir DIR    runtime state (default /run/scm or $XDG_RUNTIME_DIR/scm)\n"
	      "  --stop-timeout MS  on SIGTERM/SIGINT: forward, then SIGKILL after MS (default 10000)\n"
	      "  --check            parse and check only, print nothing on success\n"
	      "  --exec \"CMD ARGS\"  once the container runs, run CMD inside it too (words split\n"
	      "                     on spaces), wait for it, stop the container, exit with CMD's status\n",
	      f);
}

static char *read_arg(const char *arg)
{
	if (arg[0] != '@')
		return strdup(arg);
	FILE *f = fopen(arg + 1, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	if (m)
		fclose(m);
	return buf;
}

/* --exec: what `scmctl container exec` does, for tests. */
/* A chain on one line, as scm-run has always said it. */
static const char *errtext(const scm_error *e)
{
	static char *t;
	free(t);
	t = scm_error_text(e);
	return t ? t : "out of memory";
}

static int exec_into(container *ct, const char *cmd)
{
	_cleanup_free_ char *copy = strdup(cmd);
	char *argv[64];
	size_t n = 0;
	for (char *save = NULL, *w = strtok_r(copy, " ", &save); w && n < 63;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	pid_t pid;
	int status = 0, r = n ? container_exec(ct, argv, -1, -1, -1, &pid, &err) : -EINVAL;
	if (r == 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	else
		fprintf(stderr, "scm-run: %s\n", err ? errtext(err) : strerror(-r));
	int ignored;
	container_stop(ct, 1000, &ignored);
	container_free(ct);
	return r == 0 ? container_wait_status_to_exit(status) : 125;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"profile-sandbox", required_argument, NULL, 's'},
		{"endpoint", required_argument, NULL, 'e'},
		{"bundle", required_argument, NULL, 'b'},
		{"log", required_argument, NULL, 'l'},
		{"id", required_argument, NULL, 'i'},
		{"cgroup-parent", required_argument, NULL, 'c'},
		{"state-dir", required_argument, NULL, 'd'},
		{"stop-timeout", required_argument, NULL, 't'},
		{"check", no_argument, NULL, 'k'},
		{"exec", required_argument, NULL, 'x'},
		{"subids", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *bundle = NULL, *sandbox_arg = NULL, *log = NULL;
	container_opts opts = CONTAINER_OPTS_INIT;
	int stop_timeout = 10000, c;
	bool check_only = false;
	const char *exec_cmd = NULL;
	container_idrange range;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		switch (c) {
		case 's': sandbox_arg = optarg; break;
		case 'e': opts.endpoint = optarg; break;
		case 'b': bundle = optarg; break;
		case 'l': log = optarg; break;
		case 'i': opts.id = optarg; break;
		case 'c': opts.cgroup_parent = optarg; break;
		case 'd': opts.state_dir = optarg; break;
		case 't': stop_timeout = atoi(optarg); break;
		case 'k': check_only = true; break;
		case 'x': exec_cmd = optarg; break;
		case 'u':
			if (container_idrange_parse(optarg, &range) < 0) {
				fprintf(stderr, "scm-run: --subids %s: expected START:COUNT, 0 < START, START+COUNT < 2^32\n",
					optarg);
				return 125;
			}
			opts.idrange = &range;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 125;
		}
	}
	if (!bundle == (optind >= argc)) {
		fprintf(stderr, "scm-run: give either --bundle DIR or -- CMD ARGS\n");
		usage(stderr);
		return 125;
	}

	_cleanup_(spec_freep) container_spec *spec = NULL;
	_cleanup_(sandbox_freep) container_sandbox *sb = NULL;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	int r;
	if (bundle)
		r = container_spec_load(bundle, &spec, &err);
	else
		r = container_spec_quick(argv + optind, &spec);
	if (r != 0) {
		fprintf(stderr, "scm-run: %s\n", err ? errtext(err) : strerror(r < 0 ? -r : EINVAL));
		return 125;
	}
	if (sandbox_arg) {
		_cleanup_free_ char *json = read_arg(sandbox_arg);
		if (!json) {
			fprintf(stderr, "scm-run: --profile-sandbox %s: %m\n", sandbox_arg);
			return 125;
		}
		if ((r = container_sandbox_parse(json, strlen(json), &sb, &err)) != 0) {
			fprintf(stderr, "scm-run: --profile-sandbox: %s\n", err ? errtext(err) : strerror(-r));
			return 125;
		}
		if ((r = container_sandbox_apply(spec, sb)) < 0 ||
		    (r = container_sandbox_check(spec, sb, &err)) != 0) {
			fprintf(stderr, "scm-run: %s\n", err ? errtext(err) : strerror(-r));
			return 125;
		}
		opts.sandbox = sb;
	}
	if (check_only)
		return 0;
	_cleanup_close_ int log_fd = -1;
	if (log) {
		log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (log_fd < 0) {
			fprintf(stderr, "scm-run: --log %s: %m\n", log);
			return 125;
		}
		opts.stdout_fd = opts.stderr_fd = log_fd;
	}

	/* Signals to us go to the container; a second TERM/INT, or the stop
	 * timeout, escalates to SIGKILL. */
	sigset_t mask;
	sigemptyset(&mask);
	int fwd[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
	for (size_t i = 0; i < ELEMENTSOF(fwd); i++)
		sigaddset(&mask, fwd[i]);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	_cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	container *ct = NULL;
	r = container_start(spec, &opts, &ct, &err);
	if (r != 0) {
		fprintf(stderr, "scm-run: %s\n", err ? errtext(err) : strerror(r < 0 ? -r : EINVAL));
		return 125;
	}
	int status = 0, timeout = -1;
	if (exec_cmd)
		return exec_into(ct, exec_cmd);
	for (;;) {
		struct pollfd p[2] = {{.fd = container_pidfd(ct), .events = POLLIN},
				      {.fd = sfd, .events = POLLIN}};
		int n = poll(p, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			container_signal(ct, SIGKILL);
			timeout = -1;
			continue;
		}
		if (p[0].revents)
			break;
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && timeout >= 0)
				container_signal(ct, SIGKILL);
			else
				container_signal(ct, (int)si.ssi_signo);
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				timeout = stop_timeout;
		}
	}
	r = container_wait(ct, &status);
	container_free(ct);
	if (r < 0) {
		fprintf(stderr, "scm-run: wait: %s\n", strerror(-r));
		return 125;
	}
	return container_wait_status_to_exit(status);
}
