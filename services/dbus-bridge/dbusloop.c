/* dbusloop.c: libdbus driven from the bridge's own loop.
 *
 * libdbus tells a main loop what to wait for through watches (an fd and
 * read/write flags, enabled or not) and timeouts (pending calls' reply
 * deadlines); the loop polls them beside the provider's epoll fd, hands
 * readiness back (dbus_watch_handle, dbus_timeout_handle) and dispatches
 * the connections, which runs the pending-call callbacks that answer the
 * scm calls. One thread, no per-call wake-up, and calls on a connection
 * reach the bus in the order they were made. A poll() set rebuilt each
 * round is fine here: a bridge has a few connections (one per channel and
 * bus), not thousands. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbusloop.h"

#define WATCHES_MAX 4096
#define CONNS_MAX 2048

static struct wentry {
	DBusWatch *w;
	DBusConnection *conn;
} watches[WATCHES_MAX];
static size_t n_watches;

static struct tentry {
	DBusTimeout *t;
	long long deadline_ms;
} timeouts[WATCHES_MAX];
static size_t n_timeouts;

static DBusConnection *conns[CONNS_MAX];
static size_t n_conns;
/* connections to close at the top of the next round, never from inside
 * a dispatch (a reply callback may drop the last reference) */
static DBusConnection *dropq[CONNS_MAX];
static size_t n_dropq;

/* the bridge's own timers (a signals call waiting for a signal) */
#define TIMERS_MAX 1024
static struct timer {
	unsigned id;
	long long deadline_ms;
	void (*fn)(void *);
	void *data;
} timers[TIMERS_MAX];
static size_t n_timers;
static unsigned next_timer_id = 1;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static dbus_bool_t add_watch(DBusWatch *w, void *data)
{
	if (n_watches == WATCHES_MAX)
		return FALSE;
	watches[n_watches++] = (struct wentry){ w, data };
	return TRUE;
}

static void remove_watch(DBusWatch *w, void *data)
{
	for (size_t i = 0; i < n_watches; i++)
		if (watches[i].w == w) {
			watches[i] = watches[--n_watches];
			return;
		}
}

static void toggle_watch(DBusWatch *w, void *data)
{
	/* enabled or not is read when the poll set is built */
}

static dbus_bool_t add_timeout(DBusTimeout *t, void *data)
{
	if (n_timeouts == WATCHES_MAX)
		return FALSE;
	timeouts[n_timeouts++] = (struct tentry){ t, now_ms() + dbus_timeout_get_interval(t) };
	return TRUE;
}

static void remove_timeout(DBusTimeout *t, void *data)
{
	for (size_t i = 0; i < n_timeouts; i++)
		if (timeouts[i].t == t) {
			timeouts[i] = timeouts[--n_timeouts];
			return;
		}
}

static void toggle_timeout(DBusTimeout *t, void *data)
{
	for (size_t i = 0; i < n_timeouts; i++)
		if (timeouts[i].t == t)
			timeouts[i].deadline_ms = now_ms() + dbus_timeout_get_interval(t);
}

int dloop_add(DBusConnection *conn)
{
	if (n_conns == CONNS_MAX)
		return -ENOMEM;
	if (!dbus_connection_set_watch_functions(conn, add_watch, remove_watch, toggle_watch, conn, NULL) ||
	    !dbus_connection_set_timeout_functions(conn, add_timeout, remove_timeout, toggle_timeout, conn, NULL))
		return -ENOMEM;
	conns[n_conns++] = conn;
	return 0;
}

unsigned dloop_timer_add(long long after_ms, void (*fn)(void *), void *data)
{
	if (n_timers == TIMERS_MAX)
		return 0;
	if (next_timer_id == 0)
		next_timer_id = 1;
	timers[n_timers] = (struct timer){ next_timer_id++, now_ms() + after_ms, fn, data };
	return timers[n_timers++].id;
}

void dloop_timer_cancel(unsigned id)
{
	for (size_t i = 0; id && i < n_timers; i++)
		if (timers[i].id == id) {
			timers[i] = timers[--n_timers];
			return;
		}
}

/* Fires one expired timer (its fn may add or cancel others); true when
 * one fired. */
static bool fire_timer(long long now)
{
	for (size_t i = 0; i < n_timers; i++)
		if (timers[i].deadline_ms <= now) {
			struct timer t = timers[i];
			timers[i] = timers[--n_timers];
			t.fn(t.data);
			return true;
		}
	return false;
}

static void dispatch(DBusConnection *conn)
{
	while (dbus_connection_dispatch(conn) == DBUS_DISPATCH_DATA_REMAINS)
		;
}

void dloop_drop(DBusConnection *conn)
{
	if (conn)
		dropq[n_dropq++] = conn; /* at most one entry per listed connection */
}

static void drop_now(DBusConnection *conn)
{
	dbus_connection_close(conn);
	dispatch(conn); /* pending calls complete with an error now */
	dbus_connection_set_watch_functions(conn, NULL, NULL, NULL, NULL, NULL);
	dbus_connection_set_timeout_functions(conn, NULL, NULL, NULL, NULL, NULL);
	for (size_t i = 0; i < n_watches;)
		if (watches[i].conn == conn)
			watches[i] = watches[--n_watches];
		else
			i++;
	for (size_t i = 0; i < n_conns; i++)
		if (conns[i] == conn) {
			conns[i] = conns[--n_conns];
			break;
		}
	dbus_connection_unref(conn);
}

static bool watch_live(DBusWatch *w)
{
	for (size_t i = 0; i < n_watches; i++)
		if (watches[i].w == w)
			return true;
	return false;
}

int dloop_run(scm_provider *p, scm_error **ret_err)
{
	static struct pollfd pfd[WATCHES_MAX + 1];
	static DBusWatch *pw[WATCHES_MAX + 1];
	for (;;) {
		size_t n = 1;
		while (n_dropq)
			drop_now(dropq[--n_dropq]);
		pfd[0] = (struct pollfd){ .fd = scm_provider_fd(p), .events = POLLIN };
		for (size_t i = 0; i < n_watches; i++) {
			DBusWatch *w = watches[i].w;
			if (!dbus_watch_get_enabled(w))
				continue;
			unsigned f = dbus_watch_get_flags(w);
			pw[n] = w;
			pfd[n++] = (struct pollfd){ .fd = dbus_watch_get_unix_fd(w),
						    .events = (short)((f & DBUS_WATCH_READABLE ? POLLIN : 0) |
								      (f & DBUS_WATCH_WRITABLE ? POLLOUT : 0)) };
		}
		long long now = now_ms(), wait = -1;
		for (size_t i = 0; i < n_timeouts; i++)
			if (dbus_timeout_get_enabled(timeouts[i].t)) {
				long long left = timeouts[i].deadline_ms - now;
				wait = wait < 0 || left < wait ? (left < 0 ? 0 : left) : wait;
			}
		for (size_t i = 0; i < n_timers; i++) {
			long long left = timers[i].deadline_ms - now;
			wait = wait < 0 || left < wait ? (left < 0 ? 0 : left) : wait;
		}
		if (poll(pfd, n, (int)wait) < 0) {
			if (errno == EINTR)
				continue;
			return scm_fail(ret_err, -errno, "poll: %m");
		}
		for (size_t i = 1; i < n; i++) {
			if (!pfd[i].revents || !watch_live(pw[i]))
				continue;
			unsigned f = (pfd[i].revents & POLLIN ? DBUS_WATCH_READABLE : 0) |
				     (pfd[i].revents & POLLOUT ? DBUS_WATCH_WRITABLE : 0) |
				     (pfd[i].revents & POLLERR ? DBUS_WATCH_ERROR : 0) |
				     (pfd[i].revents & POLLHUP ? DBUS_WATCH_HANGUP : 0);
			dbus_watch_handle(pw[i], f);
		}
		now = now_ms();
		for (size_t i = 0; i < n_timeouts; i++)
			if (dbus_timeout_get_enabled(timeouts[i].t) && timeouts[i].deadline_ms <= now) {
				DBusTimeout *t = timeouts[i].t;
				timeouts[i].deadline_ms = now + dbus_timeout_get_interval(t);
				dbus_timeout_handle(t); /* may remove it: the list may change */
				break;
			}
		while (fire_timer(now))
			;
		for (size_t i = 0; i < n_conns; i++)
			dispatch(conns[i]);
		if (pfd[0].revents) {
			int r = scm_provider_dispatch(p, 0, ret_err);
			if (r != 0)
				return r < 0 ? r : 0;
		}
	}
}
