/* dbusloop.h: the bridge's one loop, serving scm channels and libdbus's
 * connections together, so nothing ever blocks on the bus. */
#pragma once
#include <dbus/dbus.h>

#include "scm/scm.h"

/* Hands conn's watches and timeouts to the loop and lists it for
 * dispatch; 0 or -ENOMEM. */
int dloop_add(DBusConnection *conn);
/* Closes conn, lets its pending calls complete (with an error), and
 * forgets it; drops the caller's reference. */
void dloop_drop(DBusConnection *conn);
/* Calls fn(data) once, after_ms from now, from the loop; an id (0: too
 * many timers) for dloop_timer_cancel. */
unsigned dloop_timer_add(long long after_ms, void (*fn)(void *), void *data);
void dloop_timer_cancel(unsigned id);
/* Runs until scmd closes the provider's control connection (0), or a
 * failure (< 0, *ret_err set). */
int dloop_run(scm_provider *p, scm_error **ret_err);
