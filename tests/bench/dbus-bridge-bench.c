/* dbus-bridge-bench: one D-Bus method call (GetCapabilities on the test
 * notification daemon) made directly on the bus with libdbus, and the same
 * call through scm's D-Bus bridge (scm channel -> bridge -> bus), rounds
 * interleaved in blocks so both see the same machine.
 *   dbus-bridge-bench BUS-ADDRESS ENDPOINT ROUNDS
 * Prints p50 and p99 of each in microseconds, and the ratio of the p50s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dbus/dbus.h>
#include <json-c/json.h>

#include "scm/dbus-client.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(double), cmp);
	return v[(size_t)(p * (double)(n - 1))];
}

#define DEST "org.freedesktop.Notifications"
#define PATH "/org/freedesktop/Notifications"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: dbus-bridge-bench BUS-ADDRESS ENDPOINT ROUNDS\n");
		return 2;
	}
	const char *bus = argv[1];
	size_t n = strtoul(argv[3], NULL, 10);
	DBusError e;
	dbus_error_init(&e);
	DBusConnection *c = dbus_connection_open_private(bus, &e);
	if (!c || !dbus_bus_register(c, &e)) {
		fprintf(stderr, "dbus-bridge-bench: %s\n", e.message);
		return 1;
	}
	scm_channel *ch = NULL;
	scm_error *err = NULL;
	if (scm_connect_at(argv[2], "dbus", &ch, &err) != 0) {
		fprintf(stderr, "dbus-bridge-bench: ");
		scm_error_print(err, stderr);
		return 1;
	}
	double *direct = calloc(n, sizeof(double)), *bridge = calloc(n, sizeof(double));
	json_object *args = json_object_new_array();
	for (size_t i = 0; i < n + 50; i++) { /* 50 warm-up rounds, not counted */
		double t0 = now_us();
		DBusMessage *m = dbus_message_new_method_call(DEST, PATH, DEST, "GetCapabilities");
		DBusMessage *r = dbus_connection_send_with_reply_and_block(c, m, 5000, &e);
		double t1 = now_us();
		if (!r) {
			fprintf(stderr, "dbus-bridge-bench: direct: %s\n", e.message);
			return 1;
		}
		dbus_message_unref(m);
		dbus_message_unref(r);
		char *sig = NULL;
		json_object *body = NULL;
		double t2 = now_us();
		if (scm_dbus_call(ch, bus, DEST, PATH, DEST, "GetCapabilities", "", args, &sig, &body, &err) != 0) {
			fprintf(stderr, "dbus-bridge-bench: bridge: ");
			scm_error_print(err, stderr);
			return 1;
		}
		double t3 = now_us();
		free(sig);
		json_object_put(body);
		if (i >= 50) {
			direct[i - 50] = t1 - t0;
			bridge[i - 50] = t3 - t2;
		}
	}
	double d50 = pct(direct, n, 0.5), d99 = pct(direct, n, 0.99);
	double b50 = pct(bridge, n, 0.5), b99 = pct(bridge, n, 0.99);
	printf("dbus-bridge GetCapabilities direct on dbus-daemon (libdbus): p50 %.1f us, p99 %.1f us (%zu calls)\n", d50,
	       d99, n);
	printf("dbus-bridge GetCapabilities through scm's bridge (channel -> bridge -> bus): p50 %.1f us, p99 %.1f us "
	       "(%zu calls): %.2fx direct\n", b50, b99, n, b50 / d50);
	json_object_put(args);
	scm_channel_free(ch);
	dbus_connection_close(c);
	dbus_connection_unref(c);
	free(direct);
	free(bridge);
	return 0;
}
