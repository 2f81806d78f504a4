/* ipc-buses.c: the two D-Bus contenders, dbus-daemon and dbus-broker.
 *
 * Each bus is started once per run and pinning on a private socket in the
 * run's directory and shared by the 1- and 2-client instances and the
 * connect benchmark. In a pinned run the bus daemon, which carries every
 * message, runs on CPU 0 with the clients and the echo server. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "ipc-broker-ctl.h"
#include "scm/macro.h"

typedef struct bus {
	const char *name;
	bool pinned;
	pid_t pid;
	pid_t echo; /* the echo server on this bus */
	int ctl;    /* dbus-broker's controller socket */
	char address[300];
	char why[200];
	bool tried;
} bus;

/* [pinned] */
static bus daemon_bus[2] = { { .name = "dbus-daemon", .ctl = -1 },
			     { .name = "dbus-daemon", .pinned = true, .ctl = -1 } };
static bus broker_bus[2] = { { .name = "dbus-broker", .ctl = -1 },
			     { .name = "dbus-broker", .pinned = true, .ctl = -1 } };

static const char config_fmt[] =
	"<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
	" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
	"<busconfig>\n"
	"  <type>session</type>\n"
	"  <listen>unix:path=%s</listen>\n"
	"  <auth>EXTERNAL</auth>\n"
	"  <policy context=\"default\">\n"
	"    <allow user=\"*\"/>\n"
	"    <allow own=\"*\"/>\n"
	"    <allow send_destination=\"*\"/>\n"
	"    <allow receive_sender=\"*\"/>\n"
	"  </policy>\n"
	"</busconfig>\n";

static int daemon_start(bus *b, const char *dir)
{
	char conf[300], sock[280], line[512], arg_conf[320];
	_cleanup_fclose_ FILE *f = NULL;
	const char *tag = b->pinned ? "pinned" : "unpinned";
	int p[2];
	ssize_t r;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/dbus-daemon-%s.conf", dir, tag);
	snprintf(sock, sizeof(sock), "%s/dbus-daemon-%s.sock", dir, tag);
	f = fopen(conf, "we");
	if (!f || fprintf(f, config_fmt, sock) < 0 || fflush(f) != 0)
		return -errno;
	snprintf(arg_conf, sizeof(arg_conf), "--config-file=%s", conf);
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = ipc_fork(b->pinned);
	if (pid < 0) {
		safe_close(p[0]);
		safe_close(p[1]);
		return pid;
	}
	if (pid == 0) {
		/* --print-address on fd 3 is the readiness signal. Its stderr
		 * is ours (run-all keeps it in bench-logs/). */
		if (dup2(p[1], 3) < 0)
			_exit(127);
		execlp("dbus-daemon", "dbus-daemon", arg_conf, "--nofork", "--nopidfile",
		       "--print-address=3", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	r = ipc_read_line(p[0], line, sizeof(line), 10000);
	close(p[0]);
	if (r <= 0) {
		ipc_kill_reap(pid);
		return r < 0 ? (int)r : -EPIPE;
	}
	b->pid = pid;
	snprintf(b->address, sizeof(b->address), "unix:path=%s", sock);
	return 0;
}

static int broker_start(bus *b, const char *dir)
{
	char sock[280];
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/dbus-broker-%s.sock", dir,
		 b->pinned ? "pinned" : "unpinned");
	pid = ipc_broker_start(sock, b->pinned, &b->ctl);
	if (pid < 0)
		return pid;
	b->pid = pid;
	snprintf(b->address, sizeof(b->address), "unix:path=%s", sock);
	return 0;
}

static const char *bus_address(bus *b, int (*start)(bus *, const char *), const char **ret_why)
{
	if (!b->tried) {
		const char *dir = ipc_runtime_dir();
		int r;

		b->tried = true;
		r = dir ? start(b, dir) : -ENOENT;
		if (r < 0)
			snprintf(b->why, sizeof(b->why), "%s did not start: %s", b->name,
				 strerror(-r));
	}
	if (b->pid <= 0) {
		if (ret_why)
			*ret_why = b->why;
		return NULL;
	}
	return b->address;
}

const char *ipc_dbus_daemon_address(bool pinned, const char **ret_why)
{
	return bus_address(&daemon_bus[pinned], daemon_start, ret_why);
}

const char *ipc_dbus_broker_address(bool pinned, const char **ret_why)
{
	return bus_address(&broker_bus[pinned], broker_start, ret_why);
}

void ipc_buses_stop(void)
{
	for (int p = 0; p < 2; p++) {
		bus *bs[] = { &daemon_bus[p], &broker_bus[p] };

		for (size_t i = 0; i < ELEMENTSOF(bs); i++) {
			ipc_kill_reap(bs[i]->echo);
			ipc_kill_reap(bs[i]->pid);
			bs[i]->echo = bs[i]->pid = 0;
			bs[i]->ctl = safe_close(bs[i]->ctl);
		}
	}
}

/* ---- the IPC contenders --------------------------------------------------- */

/* One echo server per bus: two would fight over the well-known name. The
 * 1- and 2-client instances share it; ipc_buses_stop() ends it. */
static int bus_instance_start(ipc_instance *inst, bus *b,
			      const char *(*address)(bool, const char **), const char **ret_why)
{
	const char *a = address(inst->pinned, ret_why);

	if (!a)
		return 1;
	if (b->echo <= 0) {
		pid_t pid = ipc_dbus_echo_server(a, inst->pinned);
		if (pid < 0)
			return pid;
		b->echo = pid;
	}
	inst->address = a;
	return 0;
}

static int daemon_inst_start(ipc_instance *inst, const char **ret_why)
{
	return bus_instance_start(inst, &daemon_bus[inst->pinned], ipc_dbus_daemon_address,
				  ret_why);
}

static int broker_inst_start(ipc_instance *inst, const char **ret_why)
{
	return bus_instance_start(inst, &broker_bus[inst->pinned], ipc_dbus_broker_address,
				  ret_why);
}

static int bus_client_open(ipc_instance *inst, unsigned idx, void **ret_client)
{
	return ipc_dbus_client_open(inst->address, ret_client);
}

static void bus_inst_stop(ipc_instance *inst)
{
}

const ipc_ops ipc_dbus_daemon_ops = {
	.name = "dbus-daemon",
	.kind = "ipc",
	.max_clients = IPC_MAX_CLIENTS,
	.start = daemon_inst_start,
	.client_open = bus_client_open,
	.client_call = ipc_dbus_client_call,
	.stop = bus_inst_stop,
};

const ipc_ops ipc_dbus_broker_ops = {
	.name = "dbus-broker",
	.kind = "ipc",
	.max_clients = IPC_MAX_CLIENTS,
	.start = broker_inst_start,
	.client_open = bus_client_open,
	.client_call = ipc_dbus_client_call,
	.stop = bus_inst_stop,
};

/* ---- connect: open, SASL, Hello, close ------------------------------------ */

static int daemon_connect_start(ipc_instance *inst, const char **ret_why)
{
	inst->address = ipc_dbus_daemon_address(inst->pinned, ret_why);
	return inst->address ? 0 : 1;
}

static int broker_connect_start(ipc_instance *inst, const char **ret_why)
{
	inst->address = ipc_dbus_broker_address(inst->pinned, ret_why);
	return inst->address ? 0 : 1;
}

static int bus_connect_open(ipc_instance *inst, unsigned idx, void **ret_client)
{
	*ret_client = (void *)inst->address;
	return 0;
}

static int bus_connect_once(void *client, const uint8_t *req, uint8_t *reply)
{
	return ipc_dbus_connect_once(client);
}

const ipc_ops connect_dbus_daemon_ops = {
	.name = "dbus-daemon",
	.kind = "connect",
	.max_clients = 1,
	.start = daemon_connect_start,
	.client_open = bus_connect_open,
	.client_call = bus_connect_once,
	.stop = bus_inst_stop,
};

const ipc_ops connect_dbus_broker_ops = {
	.name = "dbus-broker",
	.kind = "connect",
	.max_clients = 1,
	.start = broker_connect_start,
	.client_open = bus_connect_open,
	.client_call = bus_connect_once,
	.stop = bus_inst_stop,
};
