/* ipc-scm.c: the brokered scm channel as an IPC contender, and scm's
 * connect latency.
 *
 * A private scmd runs from this run's directory (--runtime-dir, --config)
 * with the echo service from a manifest we write (allowed for the endpoint
 * "bench", made with scmctl). Clients connect through it with
 * scm_connect_at() and call echo (method 2) with a 64-byte
 * binary body; after the connect, calls go straight to the provider, so
 * this should cost what raw-seqpacket costs plus libscm's framing. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "scm/macro.h"
#include "scm/scm.h"

#define SCM_ECHO_METHOD 2u /* echo is the 2nd method of stubs/idl/echo.json */

typedef struct scm_env {
	bool tried;
	bool pinned;
	pid_t scmd;
	char endpoint[PATH_MAX];
	char why[256];
} scm_env;

static scm_env envs[2] = { { .pinned = false }, { .pinned = true } }; /* [pinned] */

/* $SCM_BUILD and $SCM_SRC as tests/bench/run-all sets them. Run by hand,
 * the build directory is the one this program sits in ($B/tests/bench/),
 * and the source tree its parent (or the current directory). */
static const char *build_dir(void)
{
	static char self[PATH_MAX];
	const char *b = getenv("SCM_BUILD");
	ssize_t n;

	if (b && *b)
		return b;
	if (!self[0]) {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		self[n > 0 ? n : 0] = 0;
		for (int up = 0; up < 3; up++) {
			char *slash = strrchr(self, '/');
			if (slash)
				*slash = 0;
		}
		if (!self[0])
			strcpy(self, "build");
	}
	return self;
}

static const char *src_dir(void)
{
	static char guess[PATH_MAX];
	const char *s = getenv("SCM_SRC");
	int n;

	if (s && *s)
		return s;
	/* A build directory usually sits in the source tree. */
	n = snprintf(guess, sizeof(guess), "%s/../stubs/idl", build_dir());
	if (n > 0 && (size_t)n < sizeof(guess) && access(guess, R_OK) == 0) {
		guess[n - strlen("/stubs/idl")] = 0;
		return guess;
	}
	return ".";
}

static pid_t spawn(char *const argv[], bool pinned, int out_fd)
{
	pid_t pid = ipc_fork(pinned);

	if (pid != 0)
		return pid;
	if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
		_exit(127);
	execv(argv[0], argv);
	fprintf(stderr, "ipc-bench: exec %s: %m\n", argv[0]);
	_exit(127);
}

static int write_manifest(const char *conf)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + 32];
	_cleanup_fclose_ FILE *f = NULL;

	snprintf(dir, sizeof(dir), "%s/services", conf);
	snprintf(path, sizeof(path), "%s/echo.json", dir);
	if (mkdir(dir, 0700) < 0)
		return -errno;
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fprintf(f,
		"{ \"name\": \"echo\", \"interface\": \"echo\",\n"
		"  \"exec\": [ \"%s/libexec/scm-echo-provider\" ],\n"
		"  \"activation\": \"on-demand\", \"allow\": [ \"bench\" ],\n"
		"  \"description\": \"ipc-bench echo\" }\n",
		build_dir());
	return fflush(f) == 0 ? 0 : -errno;
}

/* `scmctl --runtime-dir RUN endpoint create bench` prints
 * "endpoint bench at PATH"; we keep PATH. */
static int create_endpoint(scm_env *e, const char *run)
{
	char scmctl[PATH_MAX + 32], line[PATH_MAX];
	char *argv[] = { scmctl, "--runtime-dir", (char *)run, "endpoint", "create", "bench", NULL };
	int p[2];
	ssize_t r;
	pid_t pid;

	snprintf(scmctl, sizeof(scmctl), "%s/bin/scmctl", build_dir());
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = spawn(argv, e->pinned, p[1]);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return pid;
	}
	e->endpoint[0] = 0;
	while ((r = ipc_read_line(p[0], line, sizeof(line), 10000)) >= 0)
		if (!strncmp(line, "endpoint bench at ", 18))
			snprintf(e->endpoint, sizeof(e->endpoint), "%s", line + 18);
	close(p[0]);
	ipc_kill_reap(pid); /* it has exited (EOF): this reaps it */
	if (!e->endpoint[0]) {
		snprintf(e->why, sizeof(e->why), "scmctl endpoint create printed no endpoint%s",
			 r == -ETIMEDOUT ? " (timed out)" : "");
		return 1;
	}
	return 0;
}

/* Starts a private scmd with the echo service and an endpoint "bench". */
static int env_start(scm_env *e)
{
	const char *dir = ipc_runtime_dir(), *tag = e->pinned ? "pinned" : "unpinned";
	char scmd[PATH_MAX + 32], idl[PATH_MAX + 32], run[PATH_MAX], conf[PATH_MAX], sock[PATH_MAX + 16];
	int r;

	if (!dir)
		return -ENOENT;
	snprintf(scmd, sizeof(scmd), "%s/bin/scmd", build_dir());
	snprintf(idl, sizeof(idl), "%s/stubs/idl", src_dir());
	snprintf(run, sizeof(run), "%s/scm-run-%s", dir, tag);
	snprintf(conf, sizeof(conf), "%s/scm-config-%s", dir, tag);
	snprintf(sock, sizeof(sock), "%s/control.sock", run);
	if (access(scmd, X_OK) < 0) {
		snprintf(e->why, sizeof(e->why), "scmd not built (%.200s)", scmd);
		return 1;
	}
	if (mkdir(run, 0700) < 0 || mkdir(conf, 0700) < 0)
		return -errno;
	r = write_manifest(conf);
	if (r < 0)
		return r;
	{
		char *argv[] = { scmd, "--runtime-dir", run, "--config", conf, "--idl-path", idl, NULL };
		/* A pinned scmd's providers inherit CPU 0 from it. */
		e->scmd = spawn(argv, e->pinned, -1);
		if (e->scmd < 0)
			return e->scmd;
	}
	r = ipc_wait_socket(sock, 10000);
	if (r < 0) {
		snprintf(e->why, sizeof(e->why), "scmd did not open %.200s: %s", sock, strerror(-r));
		return 1;
	}
	return create_endpoint(e, run);
}

static scm_env *env_get(bool pinned, const char **ret_why)
{
	scm_env *e = &envs[pinned];

	if (!e->tried) {
		int r;

		e->tried = true;
		r = env_start(e);
		if (r < 0)
			snprintf(e->why, sizeof(e->why), "scm set-up failed: %s", strerror(-r));
		if (r != 0) {
			ipc_kill_reap(e->scmd);
			e->scmd = 0;
		}
	}
	if (e->scmd <= 0) {
		*ret_why = e->why;
		return NULL;
	}
	return e;
}

void ipc_scm_stop(void)
{
	for (int p = 0; p < 2; p++) {
		ipc_kill_reap(envs[p].scmd);
		envs[p].scmd = 0;
	}
}

/* The full chain goes to stderr; the innermost observation, which says
 * what actually failed, goes to the report line. */
static void print_error(const char *what, int r, scm_error *err)
{
	const scm_error *root = err;

	while (root && root->cause)
		root = root->cause;
	ipc_set_client_error("%s: %s: %s", what, scm_code_name(r),
			     root && root->message ? root->message : "no detail");
	fprintf(stderr, "ipc-bench: %s:\n", what);
	if (err)
		scm_error_print(err, stderr);
	scm_error_free(err);
}

/* ---- IPC contender ------------------------------------------------------- */

static int scm_start(ipc_instance *inst, const char **ret_why)
{
	scm_env *e = env_get(inst->pinned, ret_why);

	if (!e)
		return 1;
	inst->address = e->endpoint;
	return 0;
}

static int scm_client_open(ipc_instance *inst, unsigned idx, void **ret_client)
{
	scm_channel *ch = NULL;
	scm_error *err = NULL;
	int r = scm_connect_at(inst->address, "echo", &ch, &err);

	if (r != 0) {
		print_error("scm_connect_at echo", r, err);
		return r < 0 ? r : -ECONNREFUSED;
	}
	*ret_client = ch;
	return 0;
}

static int scm_client_call(void *client, const uint8_t *req, uint8_t *reply)
{
	scm_message *m = NULL;
	scm_error *err = NULL;
	int r = scm_call_sync(client, SCM_ECHO_METHOD, NULL, req, IPC_MSG_SIZE, NULL, 0, &m, &err);

	if (r != 0) {
		print_error("scm_call echo", r, err);
		return r < 0 ? r : -EPROTO;
	}
	if (m->bin_len != IPC_MSG_SIZE) {
		scm_message_free(m);
		return -EBADMSG;
	}
	memcpy(reply, m->bin, IPC_MSG_SIZE);
	scm_message_free(m);
	return 0;
}

static void scm_stop(ipc_instance *inst)
{
	/* scmd is shared with the connect bench; ipc_scm_stop() ends it. */
}

/* ---- connect latency ------------------------------------------------------ */

/* The driver's untimed warm-up connects activate the provider, so the
 * timed ones see a warm provider, as the target in issue 2 asks. */
static int scm_connect_open(ipc_instance *inst, unsigned idx, void **ret_client)
{
	*ret_client = (void *)inst->address;
	return 0;
}

static int scm_connect_once(void *client, const uint8_t *req, uint8_t *reply)
{
	scm_channel *ch = NULL;
	scm_error *err = NULL;
	int r = scm_connect_at(client, "echo", &ch, &err);

	if (r != 0) {
		print_error("scm_connect_at echo", r, err);
		return r < 0 ? r : -ECONNREFUSED;
	}
	scm_channel_free(ch);
	return 0;
}


const ipc_ops ipc_scm_ops = {
	.name = "scm",
	.kind = "ipc",
	.max_clients = IPC_MAX_CLIENTS,
	.start = scm_start,
	.client_open = scm_client_open,
	.client_call = scm_client_call,
	.stop = scm_stop,
};

const ipc_ops connect_scm_ops = {
	.name = "scm",
	.kind = "connect",
	.max_clients = 1,
	.start = scm_start,
	.client_open = scm_connect_open,
	.client_call = scm_connect_once,
	.stop = scm_stop,
};
