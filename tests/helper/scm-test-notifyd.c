/* scm-test-notifyd: a small notification daemon for the D-Bus bridge's
 * tests (tests/bats/core-dbus-bridge.bats) and bench.
 *
 *   scm-test-notifyd ADDRESS LOG
 *
 * Owns org.freedesktop.Notifications and org.example.Other on the bus at
 * ADDRESS and writes one line to LOG for every method call it receives,
 * whatever it is (so a test can prove that a refused call never reached
 * the bus): "CALL DEST PATH IFACE.MEMBER SIG" then, for Notify, the app
 * name, summary, body and timeout. Answers Notify (an id), GetCapabilities,
 * GetServerInformation, CloseNotification (which emits ActionInvoked(id,
 * "default") and NotificationClosed(id, 3), for the signal tests) and
 * Introspect; the rest get UnknownMethod. Prints "ready" on stdout once it owns both names. */
#include <dbus/dbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_and_free(DBusConnection *c, DBusMessage *r)
{
	if (r) {
		dbus_connection_send(c, r, NULL);
		dbus_message_unref(r);
	}
}

static void handle(DBusConnection *c, DBusMessage *m, FILE *log)
{
	static dbus_uint32_t next_id = 1;
	const char *iface = dbus_message_get_interface(m), *member = dbus_message_get_member(m);
	const char *dest = dbus_message_get_destination(m), *path = dbus_message_get_path(m);
	fprintf(log, "CALL %s %s %s.%s %s", dest ? dest : "-", path ? path : "-", iface ? iface : "-",
		member ? member : "-", dbus_message_get_signature(m));
	DBusMessage *r = NULL;
	if (iface && strcmp(iface, "org.freedesktop.Notifications") == 0 && strcmp(member, "Notify") == 0) {
		const char *app = "", *icon = "", *summary = "", *body = "";
		dbus_uint32_t replaces = 0;
		DBusMessageIter it;
		dbus_int32_t timeout = 0;
		if (dbus_message_iter_init(m, &it) && strcmp(dbus_message_get_signature(m), "susssasa{sv}i") == 0) {
			dbus_message_iter_get_basic(&it, &app);
			dbus_message_iter_next(&it);
			dbus_message_iter_get_basic(&it, &replaces);
			dbus_message_iter_next(&it);
			dbus_message_iter_get_basic(&it, &icon);
			dbus_message_iter_next(&it);
			dbus_message_iter_get_basic(&it, &summary);
			dbus_message_iter_next(&it);
			dbus_message_iter_get_basic(&it, &body);
			for (int i = 0; i < 3; i++)
				dbus_message_iter_next(&it);
			dbus_message_iter_get_basic(&it, &timeout);
			dbus_uint32_t id = next_id++;
			fprintf(log, " app=%s summary=%s body=%s timeout=%d", app, summary, body, (int)timeout);
			r = dbus_message_new_method_return(m);
			dbus_message_append_args(r, DBUS_TYPE_UINT32, &id, DBUS_TYPE_INVALID);
		} else {
			r = dbus_message_new_error(m, DBUS_ERROR_INVALID_ARGS, "Notify takes susssasa{sv}i");
		}
	} else if (iface && strcmp(iface, "org.freedesktop.Notifications") == 0 &&
		   strcmp(member, "GetCapabilities") == 0) {
		const char *caps[] = { "body", "actions" };
		const char **p = caps;
		r = dbus_message_new_method_return(m);
		dbus_message_append_args(r, DBUS_TYPE_ARRAY, DBUS_TYPE_STRING, &p, 2, DBUS_TYPE_INVALID);
	} else if (iface && strcmp(iface, "org.freedesktop.Notifications") == 0 &&
		   strcmp(member, "GetServerInformation") == 0) {
		const char *name = "scm-test-notifyd", *vendor = "scm", *ver = "1", *spec = "1.2";
		r = dbus_message_new_method_return(m);
		dbus_message_append_args(r, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &vendor, DBUS_TYPE_STRING,
					 &ver, DBUS_TYPE_STRING, &spec, DBUS_TYPE_INVALID);
	} else if (iface && strcmp(iface, "org.freedesktop.Notifications") == 0 &&
		   strcmp(member, "CloseNotification") == 0) {
		/* the spec's NotificationClosed (reason 3: closed by a call),
		 * and ActionInvoked for the tests of signal filtering */
		dbus_uint32_t id = 0, reason = 3;
		const char *action = "default";
		dbus_message_get_args(m, NULL, DBUS_TYPE_UINT32, &id, DBUS_TYPE_INVALID);
		r = dbus_message_new_method_return(m);
		DBusMessage *sig = dbus_message_new_signal("/org/freedesktop/Notifications", "org.freedesktop.Notifications",
							  "ActionInvoked");
		if (sig && dbus_message_append_args(sig, DBUS_TYPE_UINT32, &id, DBUS_TYPE_STRING, &action, DBUS_TYPE_INVALID))
			dbus_connection_send(c, sig, NULL);
		if (sig)
			dbus_message_unref(sig);
		sig = dbus_message_new_signal("/org/freedesktop/Notifications", "org.freedesktop.Notifications",
					      "NotificationClosed");
		if (sig && dbus_message_append_args(sig, DBUS_TYPE_UINT32, &id, DBUS_TYPE_UINT32, &reason, DBUS_TYPE_INVALID))
			dbus_connection_send(c, sig, NULL);
		if (sig)
			dbus_message_unref(sig);
	} else if (iface && strcmp(iface, DBUS_INTERFACE_INTROSPECTABLE) == 0) {
		const char *xml = "<node><interface name=\"org.freedesktop.Notifications\"/></node>";
		r = dbus_message_new_method_return(m);
		dbus_message_append_args(r, DBUS_TYPE_STRING, &xml, DBUS_TYPE_INVALID);
	} else {
		r = dbus_message_new_error(m, DBUS_ERROR_UNKNOWN_METHOD, "no such method here");
	}
	fputc('\n', log);
	fflush(log);
	reply_and_free(c, r);
}

int main(int argc, char **argv)
{
	DBusError e;
	if (argc != 3) {
		fprintf(stderr, "usage: scm-test-notifyd ADDRESS LOG\n");
		return 2;
	}
	FILE *log = fopen(argv[2], "ae");
	if (!log) {
		perror(argv[2]);
		return 1;
	}
	dbus_error_init(&e);
	DBusConnection *c = dbus_connection_open_private(argv[1], &e);
	if (!c || !dbus_bus_register(c, &e)) {
		fprintf(stderr, "scm-test-notifyd: %s: %s\n", argv[1], e.message ? e.message : "cannot connect");
		return 1;
	}
	const char *names[] = { "org.freedesktop.Notifications", "org.example.Other" };
	for (int i = 0; i < 2; i++)
		if (dbus_bus_request_name(c, names[i], DBUS_NAME_FLAG_DO_NOT_QUEUE, &e) !=
		    DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER) {
			fprintf(stderr, "scm-test-notifyd: cannot own %s: %s\n", names[i], e.message ? e.message : "taken");
			return 1;
		}
	printf("ready\n");
	fflush(stdout);
	while (dbus_connection_read_write(c, -1)) {
		DBusMessage *m;
		while ((m = dbus_connection_pop_message(c))) {
			if (dbus_message_get_type(m) == DBUS_MESSAGE_TYPE_METHOD_CALL)
				handle(c, m, log);
			dbus_message_unref(m);
		}
	}
	return 0;
}
