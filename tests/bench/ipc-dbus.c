/* ipc-dbus.c: the D-Bus echo used for both bus contenders (libdbus).
 *
 * The server owns IPC_DBUS_NAME and answers the method call
 * org.scm.Bench.Echo(ay) with the same byte array; the client makes one
 * blocking method call per round trip, building a fresh message each time,
 * as a real libdbus client does. What is timed is therefore client library
 * + bus daemon + server library, which is what a D-Bus user pays. */
#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "scm/macro.h"

#define BENCH_PATH "/org/scm/Bench"
#define BENCH_IFACE "org.scm.Bench"

static DBusConnection *bus_open(const char *address)
{
	DBusError err = DBUS_ERROR_INIT;
	DBusConnection *c = dbus_connection_open_private(address, &err);

	if (!c) {
		fprintf(stderr, "ipc-bench: dbus open %s: %s\n", address, err.message);
		dbus_error_free(&err);
		return NULL;
	}
	dbus_connection_set_exit_on_disconnect(c, FALSE);
	if (!dbus_bus_register(c, &err)) {
		fprintf(stderr, "ipc-bench: dbus Hello on %s: %s\n", address, err.message);
		dbus_error_free(&err);
		dbus_connection_close(c);
		dbus_connection_unref(c);
		return NULL;
	}
	return c;
}

static void bus_close(DBusConnection *c)
{
	dbus_connection_close(c);
	dbus_connection_unref(c);
}

static bool echo_one(DBusConnection *c, DBusMessage *m)
{
	DBusMessage *reply;
	DBusError err = DBUS_ERROR_INIT;
	const uint8_t *data;
	int n;
	bool ok;

	if (!dbus_message_is_method_call(m, BENCH_IFACE, "Echo"))
		return true;
	if (!dbus_message_get_args(m, &err, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &data, &n,
				   DBUS_TYPE_INVALID)) {
		reply = dbus_message_new_error(m, DBUS_ERROR_INVALID_ARGS, err.message);
		dbus_error_free(&err);
	} else {
		reply = dbus_message_new_method_return(m);
		if (reply &&
		    !dbus_message_append_args(reply, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &data, n,
					      DBUS_TYPE_INVALID)) {
			dbus_message_unref(reply);
			reply = NULL;
		}
	}
	if (!reply)
		return false;
	ok = dbus_connection_send(c, reply, NULL);
	dbus_message_unref(reply);
	return ok;
}

static _Noreturn void echo_server(const char *address, int ready_fd)
{
	DBusConnection *c = bus_open(address);
	DBusError err = DBUS_ERROR_INIT;
	int r;

	if (!c)
		_exit(1);
	r = dbus_bus_request_name(c, IPC_DBUS_NAME, DBUS_NAME_FLAG_DO_NOT_QUEUE, &err);
	if (r != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
		fprintf(stderr, "ipc-bench: RequestName %s: %s\n", IPC_DBUS_NAME,
			dbus_error_is_set(&err) ? err.message : "not primary owner");
		_exit(1);
	}
	if (write(ready_fd, "\n", 1) != 1)
		_exit(1);
	close(ready_fd);
	/* read_write() blocks until there is input, then everything queued is
	 * answered and flushed before blocking again. */
	while (dbus_connection_read_write(c, -1)) {
		DBusMessage *m;

		while ((m = dbus_connection_pop_message(c))) {
			bool ok = echo_one(c, m);

			dbus_message_unref(m);
			if (!ok)
				_exit(1);
		}
		dbus_connection_flush(c);
	}
	_exit(0);
}

pid_t ipc_dbus_echo_server(const char *address, bool pinned)
{
	int p[2];
	char line[8];
	pid_t pid;
	ssize_t r;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid = ipc_fork(pinned);
	if (pid < 0) {
		safe_close(p[0]);
		safe_close(p[1]);
		return pid;
	}
	if (pid == 0) {
		close(p[0]);
		echo_server(address, p[1]);
	}
	close(p[1]);
	r = ipc_read_line(p[0], line, sizeof(line), 5000);
	close(p[0]);
	if (r < 0) {
		fprintf(stderr, "ipc-bench: dbus echo server on %s did not start: %s\n", address,
			strerror((int)-r));
		ipc_kill_reap(pid);
		return (pid_t)r;
	}
	return pid;
}

int ipc_dbus_client_open(const char *address, void **ret_client)
{
	DBusConnection *c = bus_open(address);

	if (!c)
		return -ECONNREFUSED;
	*ret_client = c;
	return 0;
}

int ipc_dbus_client_call(void *client, const uint8_t *req, uint8_t *reply)
{
	DBusConnection *c = client;
	DBusError err = DBUS_ERROR_INIT;
	DBusMessage *m, *r;
	const uint8_t *data;
	int n = 0;

	m = dbus_message_new_method_call(IPC_DBUS_NAME, BENCH_PATH, BENCH_IFACE, "Echo");
	if (!m)
		return -ENOMEM;
	if (!dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &req, IPC_MSG_SIZE,
				      DBUS_TYPE_INVALID)) {
		dbus_message_unref(m);
		return -ENOMEM;
	}
	r = dbus_connection_send_with_reply_and_block(c, m, 10000, &err);
	dbus_message_unref(m);
	if (!r) {
		fprintf(stderr, "ipc-bench: dbus Echo: %s\n", err.message);
		dbus_error_free(&err);
		return -EIO;
	}
	if (!dbus_message_get_args(r, &err, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &data, &n,
				   DBUS_TYPE_INVALID) ||
	    n != IPC_MSG_SIZE) {
		dbus_error_free(&err);
		dbus_message_unref(r);
		return -EBADMSG;
	}
	memcpy(reply, data, IPC_MSG_SIZE);
	dbus_message_unref(r);
	return 0;
}

int ipc_dbus_connect_once(const char *address)
{
	DBusConnection *c = bus_open(address);

	if (!c)
		return -ECONNREFUSED;
	bus_close(c);
	return 0;
}
