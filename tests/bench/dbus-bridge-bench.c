/* dbus-bridge-bench: one D-Bus method call (GetCapabilities on the test
 * notification daemon) made directly on the bus with libdbus, the same
 * call through scm's D-Bus bridge (scm channel -> bridge -> bus) and,
 * given its address, through xdg-dbus-proxy (libdbus -> proxy -> bus),
 * rounds interleaved so all see the same machine.
 *   dbus-bridge-bench BUS-NAME BUS-ADDRESS ENDPOINT ROUNDS [PROXY-ADDRESS]
 * Prints p50 and p99 of each in microseconds, and the ratios of the p50s. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dbus/dbus.h>
#include <json-c/json.h>

#include "scm/dbus-client.h"

#define DEST "org.freedesktop.Notifications"
#define PATH "/org/freedesktop/Notifications"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static DBusConnection *bus_open(const char *addr)
{
	DBusError e;
	dbus_error_init(&e);
	DBusConnection *c = dbus_connection_open_private(addr, &e);
	if (!c || !dbus_bus_register(c, &e)) {
		fprintf(stderr, "dbus-bridge-bench: %s: %s\n", addr, e.message);
		exit(1);
	}
	return c;
}

/* one GetCapabilities on c; its time in us */
static double direct_call(DBusConnection *c, const char *what)
{
	DBusError e;
	dbus_error_init(&e);
	double t0 = now_us();
	DBusMessage *m = dbus_message_new_method_call(DEST, PATH, DEST, "GetCapabilities");
	DBusMessage *r = dbus_connection_send_with_reply_and_block(c, m, 5000, &e);
	double t1 = now_us();
	if (!r) {
		fprintf(stderr, "dbus-bridge-bench: %s: %s\n", what, e.message);
		exit(1);
	}
	dbus_message_unref(m);
	dbus_message_unref(r);
	return t1 - t0;
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


int main(int argc, char **argv)
{
	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: dbus-bridge-bench BUS-NAME BUS-ADDRESS ENDPOINT ROUNDS [PROXY-ADDRESS]\n");
		return 2;
	}
	const char *busname = argv[1], *bus = argv[2], *proxy = argc == 6 ? argv[5] : NULL;
	size_t n = strtoul(argv[4], NULL, 10);
	DBusConnection *c = bus_open(bus), *pc = proxy ? bus_open(proxy) : NULL;
	scm_channel *ch = NULL;
	scm_error *err = NULL;
	if (n == 0)
		return 2;
	if (scm_connect_at(argv[3], "dbus", &ch, &err) != 0) {
		fprintf(stderr, "dbus-bridge-bench: ");
		scm_error_print(err, stderr);
		return 1;
	}
	double *direct = calloc(n, sizeof(double)), *bridge = calloc(n, sizeof(double)), *px = calloc(n, sizeof(double));
	json_object *args = json_object_new_array();
	for (size_t i = 0; i < n + 50; i++) { /* 50 warm-up rounds, not counted */
		double td = direct_call(c, "direct");
		double tp = pc ? direct_call(pc, "xdg-dbus-proxy") : 0;
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
			direct[i - 50] = td;
			px[i - 50] = tp;
			bridge[i - 50] = t3 - t2;
		}
	}
	double d50 = pct(direct, n, 0.5), d99 = pct(direct, n, 0.99);
	double b50 = pct(bridge, n, 0.5), b99 = pct(bridge, n, 0.99);
	printf("dbus-bridge GetCapabilities direct on %s (libdbus): p50 %.1f us, p99 %.1f us (%zu calls)\n", busname, d50,
	       d99, n);
	if (pc) {
		double p50 = pct(px, n, 0.5), p99 = pct(px, n, 0.99);
		printf("dbus-bridge GetCapabilities through xdg-dbus-proxy --filter (libdbus -> proxy -> %s): p50 %.1f us, "
		       "p99 %.1f us (%zu calls): %.2fx direct\n", busname, p50, p99, n, p50 / d50);
		printf("dbus-bridge GetCapabilities through scm's bridge (channel -> bridge -> %s): p50 %.1f us, p99 %.1f us "
		       "(%zu calls): %.2fx direct, %.2fx xdg-dbus-proxy (targets: within 1.3x direct, faster than the "
		       "proxy)\n", busname, b50, b99, n, b50 / d50, b50 / p50);
		dbus_connection_close(pc);
		dbus_connection_unref(pc);
	} else {
		printf("dbus-bridge GetCapabilities through scm's bridge (channel -> bridge -> %s): p50 %.1f us, p99 %.1f us "
		       "(%zu calls): %.2fx direct\n", busname, b50, b99, n, b50 / d50);
	}
	json_object_put(args);
	scm_channel_free(ch);
	dbus_connection_close(c);
	dbus_connection_unref(c);
	free(direct);
	free(bridge);
	free(px);
	return 0;
}
