/* ipc-bench.c: round trip of a 64-byte request/reply through each IPC
 * contender, and connect latency, in one run, interleaved.
 *
 * Every IPC contender runs with 1 and 2 client processes, each both pinned
 * to CPU 0 (client, server and any bus daemon or broker: per-message cost)
 * and unpinned (what users see, dominated by cross-CPU wake-ups on small
 * VMs). Pinned and unpinned runs use separate processes, so one's CPU
 * placement history cannot leak into the other. All instances and clients
 * are started first; then rounds go through every (contender, clients,
 * pinning) in turn, so drift of the machine hits them all alike. A round's
 * figure is the median of its operations; the report gives the median of
 * those per-round medians, their min..max, the aggregate operations per
 * second and the ratio to the baseline measured in the same run (raw
 * SEQPACKET for round trips, a bare unix connect for connects).
 *
 *   ipc-bench    environment: IPC_BENCH_ROUNDS (default 9),
 *                IPC_BENCH_ROUND_MS (default 100),
 *                IPC_BENCH_PINNING (pinned|unpinned: only those lines),
 *                IPC_BENCH_ONLY ("ipc scm,connect": only those contenders
 *                and the baselines) */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "scm/macro.h"

#define MAX_SAMPLES 60000u
#define WARMUP_CALLS 20u

/* The first of each kind is the baseline the others are divided by. */
static const ipc_ops *const contenders[] = {
	&ipc_seqpacket_ops,	  &ipc_pipe_ops,	     &ipc_relay_ops,
	&ipc_dbus_daemon_ops,	  &ipc_dbus_broker_ops,	     &ipc_scm_ops,
	&connect_unix_ops,	  &connect_dbus_daemon_ops, &connect_dbus_broker_ops,
	&connect_scm_ops,
};
#define N_CONTENDERS ELEMENTSOF(contenders)

/* What a client writes back for one round, in memory shared with us. */
typedef struct slot {
	uint64_t start_ns, end_ns;
	int32_t status;
	char why[160]; /* ipc_client_error when status < 0 */
	uint32_t n;
	uint32_t ns[MAX_SAMPLES];
} slot;

typedef struct client {
	pid_t pid;
	int go_fd;   /* we write the number of round trips to run */
	int done_fd; /* the client writes one byte when its slot is filled */
	slot *slot;
} client;

typedef struct instance {
	ipc_instance ii;
	bool available;
	char why[200];
	client clients[IPC_MAX_CLIENTS];
} instance;

/* One line of the report: an instance with one pinning. */
typedef struct config {
	instance *inst;
	bool pinned;
	uint32_t calls; /* per client per round, from calibration */
	double *lat_us, *rate; /* per round */
	size_t rounds;
	bool failed;
	char why[200];
} config;

static _Noreturn void client_main(ipc_instance *ii, unsigned idx, int go_fd, int done_fd,
				  slot *s)
{
	uint8_t req[IPC_MSG_SIZE], reply[IPC_MSG_SIZE];
	void *c = NULL;
	bool echo = !strcmp(ii->ops->kind, "ipc");
	uint32_t k;
	int r;

	for (unsigned i = 0; i < IPC_MSG_SIZE; i++)
		req[i] = (uint8_t)(i * 7 + idx);
	r = ii->ops->client_open(ii, idx, &c);
	while (read(go_fd, &k, sizeof(k)) == sizeof(k) && k > 0) {
		s->status = r;
		s->n = 0;
		for (uint32_t i = 0; r >= 0 && i < WARMUP_CALLS; i++)
			r = ii->ops->client_call(c, req, reply);
		s->start_ns = ipc_now_ns();
		for (uint32_t i = 0; r >= 0 && i < k && i < MAX_SAMPLES; i++) {
			uint64_t t0 = ipc_now_ns(), t1;

			r = ii->ops->client_call(c, req, reply);
			t1 = ipc_now_ns();
			if (r >= 0 && echo && memcmp(req, reply, IPC_MSG_SIZE) != 0)
				r = -EBADMSG; /* an echo that is not an echo */
			s->ns[i] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
			s->n = i + 1;
		}
		s->end_ns = ipc_now_ns();
		s->status = r;
		if (r < 0)
			snprintf(s->why, sizeof(s->why), "%s",
				 ipc_client_error[0] ? ipc_client_error : strerror(-r));
		if (write(done_fd, "\n", 1) != 1)
			_exit(1);
	}
	_exit(0);
}

static int instance_start(instance *in, const ipc_ops *ops, unsigned n_clients, bool pinned)
{
	const char *why = "not available";
	int r;

	in->ii.ops = ops;
	in->ii.n_clients = n_clients;
	in->ii.pinned = pinned;
	r = ops->start(&in->ii, &why);
	if (r != 0) {
		snprintf(in->why, sizeof(in->why), "%s", r > 0 ? why : strerror(-r));
		return r;
	}
	snprintf(in->why, sizeof(in->why), "a client could not be started");
	for (unsigned i = 0; i < n_clients; i++) {
		client *c = &in->clients[i];
		int go[2], done[2];
		pid_t pid;

		c->slot = mmap(NULL, sizeof(slot), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (c->slot == MAP_FAILED)
			return -errno;
		if (pipe2(go, O_CLOEXEC) < 0) {
			r = -errno;
			munmap(c->slot, sizeof(slot));
			return r;
		}
		if (pipe2(done, O_CLOEXEC) < 0) {
			r = -errno;
			safe_close(go[0]);
			safe_close(go[1]);
			munmap(c->slot, sizeof(slot));
			return r;
		}
		pid = ipc_fork(pinned);
		if (pid < 0) {
			safe_close(go[0]);
			safe_close(go[1]);
			safe_close(done[0]);
			safe_close(done[1]);
			munmap(c->slot, sizeof(slot));
			return pid;
		}
		if (pid == 0) {
			close(go[1]);
			close(done[0]);
			client_main(&in->ii, i, go[0], done[1], c->slot);
		}
		close(go[0]);
		close(done[1]);
		c->pid = pid;
		c->go_fd = go[1];
		c->done_fd = done[0];
	}
	in->available = true;
	return 0;
}

static void instance_stop(instance *in)
{
	for (unsigned i = 0; i < in->ii.n_clients; i++) {
		client *c = &in->clients[i];

		if (c->pid <= 0)
			continue;
		c->go_fd = safe_close(c->go_fd); /* EOF: the client exits */
		c->done_fd = safe_close(c->done_fd);
		ipc_kill_reap(c->pid);
		munmap(c->slot, sizeof(slot));
		c->pid = 0;
	}
	if (in->ii.ops && in->available)
		in->ii.ops->stop(&in->ii);
	in->available = false;
}

/* Runs one round of `calls` round trips per client. Returns 0 and the
 * round's median latency and aggregate rate, or a negative errno. */
static int run_round(config *cf, uint32_t calls, double *ret_lat_us, double *ret_rate)
{
	instance *in = cf->inst;
	unsigned n = in->ii.n_clients;
	_cleanup_free_ double *all = malloc(sizeof(double) * MAX_SAMPLES * n);
	uint64_t first = UINT64_MAX, last = 0;
	size_t total = 0;

	if (!all)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		if (write(in->clients[i].go_fd, &calls, sizeof(calls)) != sizeof(calls))
			return -EPIPE;
	for (unsigned i = 0; i < n; i++) {
		client *c = &in->clients[i];
		char line[4];
		ssize_t r = ipc_read_line(c->done_fd, line, sizeof(line), 60000);

		if (r == -ETIMEDOUT || r == -EPIPE)
			return (int)r;
		if (c->slot->status < 0) {
			snprintf(cf->why, sizeof(cf->why), "%s", c->slot->why);
			return c->slot->status;
		}
		for (uint32_t k = 0; k < c->slot->n; k++)
			all[total++] = c->slot->ns[k] / 1000.0;
		if (c->slot->start_ns < first)
			first = c->slot->start_ns;
		if (c->slot->end_ns > last)
			last = c->slot->end_ns;
	}
	if (total == 0 || last <= first)
		return -EIO;
	*ret_lat_us = ipc_median(all, total);
	*ret_rate = (double)total * 1e9 / (double)(last - first);
	return 0;
}

static void config_fail(config *cf, int r)
{
	cf->failed = true;
	if (!cf->why[0])
		snprintf(cf->why, sizeof(cf->why), "%s", strerror(r < 0 ? -r : r));
}

static unsigned env_uint(const char *name, unsigned def, unsigned lo, unsigned hi)
{
	const char *v = getenv(name);
	char *end;
	unsigned long x;

	if (!v || !*v)
		return def;
	x = strtoul(v, &end, 10);
	if (*end || x < lo || x > hi) {
		fprintf(stderr, "ipc-bench: ignoring %s=%s (want %u..%u)\n", name, v, lo, hi);
		return def;
	}
	return (unsigned)x;
}

static double median_of(const double *v, size_t n)
{
	double tmp[64];

	memcpy(tmp, v, sizeof(double) * n);
	return ipc_median(tmp, n);
}

static bool usable(const config *cf)
{
	return cf->inst->available && !cf->failed && cf->rounds > 0;
}

/* The first line of the same kind, clients and pinning: the baseline. */
static const config *baseline(const config *cfs, size_t n_cfs, const config *cf)
{
	for (size_t j = 0; j < n_cfs; j++) {
		const ipc_instance *a, *b = &cf->inst->ii;

		if (!cfs[j].inst) /* a line IPC_BENCH_PINNING left out */
			continue;
		a = &cfs[j].inst->ii;

		if (!strcmp(a->ops->kind, b->ops->kind) && a->n_clients == b->n_clients &&
		    a->pinned == b->pinned)
			return usable(&cfs[j]) ? &cfs[j] : NULL;
	}
	return NULL;
}

static void report_line(const config *cfs, size_t n_cfs, const config *cf)
{
	const ipc_instance *ii = &cf->inst->ii;
	bool is_ipc = !strcmp(ii->ops->kind, "ipc");
	const config *base = baseline(cfs, n_cfs, cf);
	double lo, hi, med;

	printf("%s %s ", ii->ops->kind, ii->ops->name);
	if (is_ipc)
		printf("%uc ", ii->n_clients);
	printf("%s: ", cf->pinned ? "pinned" : "unpinned");
	if (!cf->inst->available) {
		printf("n/a (%s)\n", cf->inst->why);
		return;
	}
	if (!usable(cf)) {
		printf("failed (%s)\n", cf->why[0] ? cf->why : "no rounds");
		return;
	}
	ipc_min_max(cf->lat_us, cf->rounds, &lo, &hi);
	med = median_of(cf->lat_us, cf->rounds);
	printf("%.2f us [%.2f..%.2f] %.0f %s", med, lo, hi, median_of(cf->rate, cf->rounds),
	       is_ipc ? "rt/s" : "connects/s");
	if (base)
		printf(", %.2fx %s\n", med / median_of(base->lat_us, base->rounds),
		       is_ipc ? "raw" : "unix");
	else
		printf(", - %s\n", is_ipc ? "raw" : "unix");
}

/* IPC_BENCH_ONLY: comma-separated "kind name" prefixes, such as "ipc scm"
 * or "connect,ipc raw". The baselines always run: ratios need them. */
static bool selected(const ipc_ops *ops, const char *only)
{
	char line[64];
	const char *p = only;

	if (!only || !*only || ops == &ipc_seqpacket_ops || ops == &connect_unix_ops)
		return true;
	snprintf(line, sizeof(line), "%s %s", ops->kind, ops->name);
	while (*p) {
		size_t n = strcspn(p, ",");

		if (n > 0 && !strncmp(line, p, n))
			return true;
		p += n + (p[n] == ',');
	}
	return false;
}

int main(void)
{
	unsigned rounds = env_uint("IPC_BENCH_ROUNDS", 9, 1, 64);
	unsigned round_ms = env_uint("IPC_BENCH_ROUND_MS", 100, 5, 5000);
	const char *pinning = getenv("IPC_BENCH_PINNING");
	const char *only = getenv("IPC_BENCH_ONLY");
	static instance inst[N_CONTENDERS * IPC_MAX_CLIENTS * 2];
	static config cfs[N_CONTENDERS * IPC_MAX_CLIENTS * 2];
	size_t n = 0;
	uint64_t t0 = ipc_now_ns();

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!ipc_runtime_dir())
		return 1;

	/* Start everything first; report order is this order. */
	for (size_t c = 0; c < N_CONTENDERS; c++) {
		for (unsigned nc = 1; nc <= contenders[c]->max_clients; nc++) {
			for (int p = 1; p >= 0; p--) {
				instance *in = &inst[n];
				config *cf = &cfs[n++];
				int r;

				if (pinning && strcmp(pinning, p ? "pinned" : "unpinned") != 0)
					continue;
				if (!selected(contenders[c], only))
					continue;
				for (unsigned i = 0; i < IPC_MAX_CLIENTS; i++)
					in->clients[i].go_fd = in->clients[i].done_fd = -1;
				cf->inst = in;
				cf->pinned = p;
				cf->lat_us = calloc(rounds, sizeof(double));
				cf->rate = calloc(rounds, sizeof(double));
				if (!cf->lat_us || !cf->rate)
					return 1;
				r = instance_start(in, contenders[c], nc, p);
				if (r < 0) {
					/* Keep the message, drop what did start. */
					in->available = true;
					instance_stop(in);
				}
			}
		}
	}

	/* Calibrate: a short round sizes each line's rounds to round_ms.
	 * Clients run side by side, so a round lasts calls x latency. */
	for (size_t i = 0; i < n; i++) {
		config *cf = &cfs[i];
		double lat, rate, want;
		int r;

		if (!cf->inst || !cf->inst->available)
			continue;
		r = run_round(cf, 100, &lat, &rate);
		if (r < 0) {
			config_fail(cf, r);
			continue;
		}
		want = round_ms * 1000.0 / (lat > 0.1 ? lat : 0.1);
		cf->calls = want < 50 ? 50 : want > MAX_SAMPLES ? MAX_SAMPLES : (uint32_t)want;
	}

	for (unsigned round = 0; round < rounds; round++) {
		for (size_t i = 0; i < n; i++) {
			config *cf = &cfs[i];
			int r;

			if (!cf->inst || !cf->inst->available || cf->failed)
				continue;
			r = run_round(cf, cf->calls, &cf->lat_us[cf->rounds], &cf->rate[cf->rounds]);
			if (r < 0)
				config_fail(cf, r);
			else
				cf->rounds++;
		}
	}

	printf("ipc: 64-byte request/reply; connect: one connection made and dropped; "
	       "%u interleaved rounds of ~%u ms per line; median [min..max] of per-round medians\n",
	       rounds, round_ms);
	for (size_t i = 0; i < n; i++)
		if (cfs[i].inst)
			report_line(cfs, n, &cfs[i]);

	for (size_t i = 0; i < n; i++) {
		if (cfs[i].inst)
			instance_stop(&inst[i]);
		free(cfs[i].lat_us);
		free(cfs[i].rate);
	}
	ipc_scm_stop();
	ipc_buses_stop();
	printf("ipc: done in %.1f s\n", (double)(ipc_now_ns() - t0) / 1e9);
	return 0;
}
