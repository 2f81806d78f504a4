/* ipc-broker-ctl.h: start dbus-broker as its own controller (no systemd). */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

/* Starts dbus-broker (on CPU 0 if pinned) listening on socket_path with an
 * allow-all policy.
 * Returns its pid and the controller socket (*ret_ctl, keep it open for the
 * broker's lifetime), or a negative errno. */
pid_t ipc_broker_start(const char *socket_path, bool pinned, int *ret_ctl);
