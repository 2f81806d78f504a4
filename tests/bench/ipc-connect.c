/* ipc-connect.c: the baseline for connect latency, the least a connect can
 * cost: socket(), connect() to a SEQPACKET listener, wait for the one byte
 * the acceptor sends once it has accept()ed, close. A brokered connect
 * (scm) and a D-Bus connect (SASL + Hello) are reported as ratios to it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "scm/macro.h"

static _Noreturn void acceptor(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			_exit(1);
		}
		(void)send(fd, "k", 1, MSG_NOSIGNAL);
		close(fd);
	}
}

static int unix_start(ipc_instance *inst, const char **ret_why)
{
	const char *dir = ipc_runtime_dir();
	struct sockaddr_un *sa = calloc(1, sizeof(*sa));
	_cleanup_close_ int lfd = -1;

	if (!sa || !dir) {
		free(sa);
		return -ENOMEM;
	}
	inst->priv = sa;
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/connect-%s.sock", dir,
		 inst->pinned ? "pinned" : "unpinned");
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(lfd, 64) < 0)
		return -errno;
	inst->server = ipc_fork(inst->pinned);
	if (inst->server < 0)
		return inst->server;
	if (inst->server == 0)
		acceptor(lfd);
	return 0;
}

static int unix_open(ipc_instance *inst, unsigned idx, void **ret_client)
{
	*ret_client = inst->priv;
	return 0;
}

static int unix_once(void *client, const uint8_t *req, uint8_t *reply)
{
	const struct sockaddr_un *sa = client;
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	char b;

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		return -errno;
	if (recv(fd, &b, 1, 0) != 1)
		return -EPIPE;
	return 0;
}

static void unix_stop(ipc_instance *inst)
{
	ipc_kill_reap(inst->server);
	inst->server = 0;
	free(inst->priv);
	inst->priv = NULL;
}

const ipc_ops connect_unix_ops = {
	.name = "unix",
	.kind = "connect",
	.max_clients = 1,
	.start = unix_start,
	.client_open = unix_open,
	.client_call = unix_once,
	.stop = unix_stop,
};
