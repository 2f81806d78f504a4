/* busopen.h: the bus a manager program is told to use (--bus
 * system|session|ADDRESS), for scm-dbus-manager and scm-dbus-export. */
#pragma once
#include <dbus/dbus.h>

/* A private connection, registered on the bus (Hello said), that does
 * not exit the process when the bus goes away; NULL with *err set. */
DBusConnection *manager_bus_open(const char *busarg, DBusError *err);
