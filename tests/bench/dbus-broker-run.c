/* dbus-broker-run: a private dbus-broker for the D-Bus bridge bench, with
 * no systemd and no launcher: this program is its controller
 * (ipc-broker-ctl.c) and keeps the controller socket open until SIGTERM.
 *   scm-dbus-broker-run SOCKET-PATH
 * Prints "ready" once the broker listens; the broker dies with it. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ipc-bench.h"
#include "ipc-broker-ctl.h"

int main(int argc, char **argv)
{
	sigset_t set;
	int ctl = -1, sig = 0;
	if (argc != 2) {
		fprintf(stderr, "usage: scm-dbus-broker-run SOCKET-PATH\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	pid_t pid = ipc_broker_start(argv[1], false, &ctl);
	if (pid < 0) {
		fprintf(stderr, "scm-dbus-broker-run: cannot start dbus-broker: %s\n", strerror((int)-pid));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	ipc_kill_reap(pid);
	close(ctl);
	return 0;
}
