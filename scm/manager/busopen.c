/* busopen.c: see busopen.h. */
#include <string.h>

#include "busopen.h"

DBusConnection *manager_bus_open(const char *busarg, DBusError *err)
{
	DBusConnection *bus;
	if (strcmp(busarg, "system") == 0)
		bus = dbus_bus_get_private(DBUS_BUS_SYSTEM, err);
	else if (strcmp(busarg, "session") == 0)
		bus = dbus_bus_get_private(DBUS_BUS_SESSION, err);
	else if ((bus = dbus_connection_open_private(busarg, err)) && !dbus_bus_register(bus, err)) {
		dbus_connection_close(bus);
		dbus_connection_unref(bus);
		bus = NULL;
	}
	if (bus)
		dbus_connection_set_exit_on_disconnect(bus, FALSE);
	return bus;
}
