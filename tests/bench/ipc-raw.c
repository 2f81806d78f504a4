/* ipc-raw.c: the kernel-only contenders, the physical limits the brokered
 * channel is measured against, and what a broker on the data path costs.
 *
 * seqpacket: one AF_UNIX SOCK_SEQPACKET socketpair per client, the server
 * polls all of them and echoes each packet. pipe: a request pipe and a
 * reply pipe per client, same server loop. The server is a plain forked
 * process, so what is timed is the kernel's wake-up and copy cost alone.
 * relay: seqpacket with a forwarding process (epoll) in the middle, the
 * least any daemon on the data path adds; scm keeps scmd off that path. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "scm/macro.h"

typedef struct raw_client {
	int rfd, wfd; /* the same socket for seqpacket */
} raw_client;

/* Echoes every message that arrives on rfd[i] to wfd[i]; exits on EOF or
 * error, which is how stop() (or the parent's death) ends it. */
static _Noreturn void raw_server(const int *rfd, const int *wfd, unsigned n)
{
	struct pollfd p[IPC_MAX_CLIENTS];
	uint8_t buf[IPC_MSG_SIZE];

	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = rfd[i], .events = POLLIN };
	for (;;) {
		if (poll(p, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (unsigned i = 0; i < n; i++) {
			ssize_t k;

			if (!p[i].revents)
				continue;
			k = read(rfd[i], buf, sizeof(buf));
			if (k <= 0)
				_exit(k == 0 ? 0 : 1);
			if (write(wfd[i], buf, (size_t)k) != k)
				_exit(1);
		}
	}
}

typedef struct raw_priv {
	int srv_r[IPC_MAX_CLIENTS], srv_w[IPC_MAX_CLIENTS];
	int relay_keep[IPC_MAX_CLIENTS], relay_keep2[IPC_MAX_CLIENTS]; /* the relay's ends */
	pid_t relay;
} raw_priv;

/* Forwards each packet from a[i] to b[i] and back, for every client. */
static _Noreturn void relay_main(const int *a, const int *b, unsigned n)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint8_t buf[IPC_MSG_SIZE];

	if (ep < 0)
		_exit(1);
	for (unsigned i = 0; i < n; i++) {
		/* data: the index of the fd to read, and which side it is on. */
		struct epoll_event ea = { .events = EPOLLIN, .data.u32 = i };
		struct epoll_event eb = { .events = EPOLLIN, .data.u32 = i | 0x100 };

		if (epoll_ctl(ep, EPOLL_CTL_ADD, a[i], &ea) < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, b[i], &eb) < 0)
			_exit(1);
	}
	for (;;) {
		struct epoll_event ev[2 * IPC_MAX_CLIENTS];
		int k = epoll_wait(ep, ev, (int)ELEMENTSOF(ev), -1);

		if (k < 0 && errno != EINTR)
			_exit(1);
		for (int j = 0; j < k; j++) {
			unsigned i = ev[j].data.u32 & 0xff;
			bool back = ev[j].data.u32 & 0x100;
			ssize_t m = read(back ? b[i] : a[i], buf, sizeof(buf));

			if (m <= 0)
				_exit(m == 0 ? 0 : 1);
			if (write(back ? a[i] : b[i], buf, (size_t)m) != m)
				_exit(1);
		}
	}
}

static void raw_close_all(ipc_instance *inst, raw_priv *rp)
{
	for (unsigned i = 0; i < IPC_MAX_CLIENTS; i++) {
		rp->relay_keep[i] = safe_close(rp->relay_keep[i]);
		rp->relay_keep2[i] = safe_close(rp->relay_keep2[i]);
		if (rp->srv_r[i] != rp->srv_w[i])
			safe_close(rp->srv_w[i]);
		safe_close(rp->srv_r[i]);
		if (inst->client_fd[i][0] != inst->client_fd[i][1])
			safe_close(inst->client_fd[i][1]);
		safe_close(inst->client_fd[i][0]);
		rp->srv_r[i] = rp->srv_w[i] = -1;
		inst->client_fd[i][0] = inst->client_fd[i][1] = -1;
	}
}

static int raw_start(ipc_instance *inst, bool use_pipes, bool use_relay)
{
	raw_priv *rp = calloc(1, sizeof(*rp));
	int relay_a[IPC_MAX_CLIENTS], relay_b[IPC_MAX_CLIENTS];
	pid_t pid;

	if (!rp)
		return -ENOMEM;
	for (unsigned i = 0; i < IPC_MAX_CLIENTS; i++) {
		rp->srv_r[i] = rp->srv_w[i] = -1;
		rp->relay_keep[i] = rp->relay_keep2[i] = -1;
		inst->client_fd[i][0] = inst->client_fd[i][1] = -1;
	}
	inst->priv = rp;
	for (unsigned i = 0; i < inst->n_clients; i++) {
		int a[2], b[2];

		if (use_pipes) {
			/* O_DIRECT: packet mode, one write is one read, as with
			 * SEQPACKET, so neither side can see a short message. */
			if (pipe2(a, O_CLOEXEC | O_DIRECT) < 0)
				goto fail;
			if (pipe2(b, O_CLOEXEC | O_DIRECT) < 0) {
				safe_close(a[0]);
				safe_close(a[1]);
				goto fail;
			}
			rp->srv_r[i] = a[0];
			inst->client_fd[i][1] = a[1];
			inst->client_fd[i][0] = b[0];
			rp->srv_w[i] = b[1];
		} else {
			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, a) < 0)
				goto fail;
			rp->srv_r[i] = rp->srv_w[i] = a[0];
			inst->client_fd[i][0] = inst->client_fd[i][1] = a[1];
			if (!use_relay)
				continue;
			/* client <-> relay_a[i] ... relay_b[i] <-> server */
			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, b) < 0)
				goto fail;
			relay_a[i] = rp->relay_keep[i] = a[0];
			relay_b[i] = rp->relay_keep2[i] = b[0];
			rp->srv_r[i] = rp->srv_w[i] = b[1];
		}
	}
	if (use_relay) {
		pid = ipc_fork(inst->pinned);
		if (pid < 0) {
			errno = -pid;
			goto fail;
		}
		if (pid == 0)
			relay_main(relay_a, relay_b, inst->n_clients);
		rp->relay = pid;
	}
	pid = ipc_fork(inst->pinned);
	if (pid < 0) {
		errno = -pid;
		goto fail;
	}
	if (pid == 0)
		raw_server(rp->srv_r, rp->srv_w, inst->n_clients);
	inst->server = pid;
	return 0;
fail:
	fprintf(stderr, "ipc-bench: %s: %m\n", use_pipes ? "pipe2" : "socketpair");
	raw_close_all(inst, rp);
	return -errno;
}

static int seqpacket_start(ipc_instance *inst, const char **ret_why)
{
	return raw_start(inst, false, false);
}

static int pipe_start(ipc_instance *inst, const char **ret_why)
{
	return raw_start(inst, true, false);
}

static int relay_start(ipc_instance *inst, const char **ret_why)
{
	return raw_start(inst, false, true);
}

static int raw_client_open(ipc_instance *inst, unsigned idx, void **ret_client)
{
	raw_client *c = malloc(sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->rfd = inst->client_fd[idx][0];
	c->wfd = inst->client_fd[idx][1];
	*ret_client = c;
	return 0;
}

static int raw_client_call(void *client, const uint8_t *req, uint8_t *reply)
{
	raw_client *c = client;
	ssize_t k;

	if (write(c->wfd, req, IPC_MSG_SIZE) != IPC_MSG_SIZE)
		return -EIO;
	k = read(c->rfd, reply, IPC_MSG_SIZE);
	if (k != IPC_MSG_SIZE)
		return k < 0 ? -errno : -EPIPE;
	return 0;
}

static void raw_stop(ipc_instance *inst)
{
	ipc_kill_reap(inst->server);
	inst->server = 0;
	if (inst->priv)
		ipc_kill_reap(((raw_priv *)inst->priv)->relay);
	if (inst->priv)
		raw_close_all(inst, inst->priv);
	free(inst->priv);
	inst->priv = NULL;
}

const ipc_ops ipc_seqpacket_ops = {
	.name = "raw-seqpacket",
	.kind = "ipc",
	.max_clients = IPC_MAX_CLIENTS,
	.start = seqpacket_start,
	.client_open = raw_client_open,
	.client_call = raw_client_call,
	.stop = raw_stop,
};

const ipc_ops ipc_pipe_ops = {
	.name = "pipe",
	.kind = "ipc",
	.max_clients = IPC_MAX_CLIENTS,
	.start = pipe_start,
	.client_open = raw_client_open,
	.client_call = raw_client_call,
	.stop = raw_stop,
};

const ipc_ops ipc_relay_ops = {
	.name = "relay",
	.kind = "ipc",
	.max_clients = IPC_MAX_CLIENTS,
	.start = relay_start,
	.client_open = raw_client_open,
	.client_call = raw_client_call,
	.stop = raw_stop,
};
