/* ipc-bench.h: what the IPC benchmark's contenders share.
 *
 * A contender is one way to carry a 64-byte request and its 64-byte reply
 * between a client process and a server process: a raw socketpair, a pipe
 * pair, D-Bus through dbus-daemon or dbus-broker, a brokered scm channel.
 * Connect contenders measure making and dropping one connection instead.
 * The driver (ipc-bench.c) starts one instance of a contender per client
 * count and pinning, forks the clients, and runs timed rounds interleaved
 * across all instances so drift hits every contender alike. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_MSG_SIZE 64
#define IPC_MAX_CLIENTS 2

/* One running instance: a server for n_clients clients. The contender fills
 * in what its clients need (fds, a bus address). */
typedef struct ipc_instance {
	const struct ipc_ops *ops;
	unsigned n_clients;
	bool pinned; /* everything on CPU 0; unpinned instances are never pinned */
	pid_t server; /* a server this instance owns, reaped by stop */
	int client_fd[IPC_MAX_CLIENTS][2]; /* raw/pipe: the client's ends, -1 if unused */
	const char *address;               /* bus/endpoint address for clients */
	void *priv;
} ipc_instance;

typedef struct ipc_ops {
	const char *name;
	/* "ipc": client_call is one 64-byte round trip, checked to be an echo.
	 * "connect": client_call makes one connection and drops it. */
	const char *kind;
	unsigned max_clients;
	/* Starts the server side for inst->n_clients clients, every process
	 * on CPU 0 when inst->pinned. Returns 0, or a negative errno with a
	 * message on stderr; a positive value means "not available on this
	 * build/machine" (*ret_why says why). */
	int (*start)(ipc_instance *inst, const char **ret_why);
	/* In a freshly forked client process: open the client side. */
	int (*client_open)(ipc_instance *inst, unsigned idx, void **ret_client);
	/* One operation: send req (IPC_MSG_SIZE bytes) and wait for the reply,
	 * or one connect. */
	int (*client_call)(void *client, const uint8_t *req, uint8_t *reply);
	/* Kills and reaps what start() created for this instance. */
	void (*stop)(ipc_instance *inst);
} ipc_ops;

extern const ipc_ops ipc_seqpacket_ops, ipc_pipe_ops, ipc_relay_ops, ipc_dbus_daemon_ops,
	ipc_dbus_broker_ops, ipc_scm_ops;
extern const ipc_ops connect_unix_ops, connect_dbus_daemon_ops, connect_dbus_broker_ops,
	connect_scm_ops;

/* ---- helpers shared by the contenders (ipc-util.c) --------------------- */

/* The private directory this run keeps sockets and configs in. */
const char *ipc_runtime_dir(void);
/* Forks a child that dies with its parent. Returns the pid in the parent, 0
 * in the child, negative errno on failure. A pinned child moves to CPU 0
 * before it does anything else (and so do the programs it execs). */
pid_t ipc_fork(bool pinned);
/* SIGKILL and reap; ignores pid <= 0. */
void ipc_kill_reap(pid_t pid);
/* What went wrong in a client, in words, for the report line (a client
 * process sets it before returning an error from client_call). */
extern char ipc_client_error[160];
void ipc_set_client_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Monotonic clock in nanoseconds. */
uint64_t ipc_now_ns(void);
/* Reads one line (up to size-1 bytes, without the newline) from fd within
 * timeout_ms. Returns its length or a negative errno (-ETIMEDOUT). */
ssize_t ipc_read_line(int fd, char *buf, size_t size, int timeout_ms);
/* Waits until path exists as a socket we can connect to, up to timeout_ms. */
int ipc_wait_socket(const char *path, int timeout_ms);

/* ---- libdbus echo (ipc-dbus.c), used by both bus contenders ------------ */

/* Forks an echo server on the bus at address that owns IPC_DBUS_NAME and
 * answers Echo(ay) -> ay. Returns its pid once the name is owned. Pinned
 * first when pinned is set. */
#define IPC_DBUS_NAME "org.scm.Bench"
pid_t ipc_dbus_echo_server(const char *address, bool pinned);
int ipc_dbus_client_open(const char *address, void **ret_client);
int ipc_dbus_client_call(void *client, const uint8_t *req, uint8_t *reply);
/* One connect + Hello + disconnect, for the connect benchmark. */
int ipc_dbus_connect_once(const char *address);

/* Buses started once per run and pinning, shared by the IPC and connect
 * benches: a pinned run never shares a process with an unpinned one, so
 * the scheduler's placement history of one cannot leak into the other. */
const char *ipc_dbus_daemon_address(bool pinned, const char **ret_why);
const char *ipc_dbus_broker_address(bool pinned, const char **ret_why);
void ipc_buses_stop(void);
/* Ends the private scmd instances (ipc-scm.c). */
void ipc_scm_stop(void);

/* ---- statistics (ipc-stats.c) ----------------------------------------- */

/* Median of v[0..n) (sorts v in place); 0 for n == 0. */
double ipc_median(double *v, size_t n);
void ipc_min_max(const double *v, size_t n, double *ret_min, double *ret_max);
