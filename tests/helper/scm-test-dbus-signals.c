/* scm-test-dbus-signals BUS: the bridge's unsubscribe, driven from inside a
 * container for tests/bats/core-dbus-bridge.bats. On one channel to the
 * "dbus" service (SCM_ENDPOINT) it subscribes to the test notification
 * daemon's NotificationClosed and ActionInvoked, prints "subscribed A B",
 * and prints every signal as "signal MEMBER BODY" until it has both for
 * id 7; then unsubscribes B, prints "unsubscribed B", and prints signals
 * until NotificationClosed for id 8 came (the test closes 7, then 8 once
 * it reads each line). Last, what unsubscribing B again and an id never
 * given say. The daemon emits ActionInvoked before NotificationClosed on
 * one connection, so an ActionInvoked 8 that got through would be printed
 * before the line the helper stops at. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "scm/dbus-client.h"

#define DEST "org.freedesktop.Notifications"
#define PATH "/org/freedesktop/Notifications"

static int fail(const char *what, scm_error *e)
{
	printf("%s: ", what);
	scm_error_print(e, stdout);
	scm_error_free(e);
	return 1;
}

/* Prints signals until MEMBER with first argument id came (and, for
 * also, that one too). */
static int take(scm_channel *ch, const char *member, uint32_t id, const char *also)
{
	bool got = false, got_also = also == NULL;
	while (!got || !got_also) {
		json_object *sigs = NULL;
		uint64_t dropped = 0;
		scm_error *e = NULL;
		if (scm_dbus_signals(ch, 20000, &sigs, &dropped, &e) != 0)
			return fail("signals", e);
		for (size_t i = 0; i < json_object_array_length(sigs); i++) {
			json_object *s = json_object_array_get_idx(sigs, i), *m, *b;
			if (!json_object_object_get_ex(s, "member", &m) || !json_object_object_get_ex(s, "body", &b))
				continue;
			const char *mem = json_object_get_string(m);
			bool match = json_object_get_int64(json_object_array_get_idx(b, 0)) == id;
			printf("signal %s %s\n", mem, json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
			got |= match && strcmp(mem, member) == 0;
			got_also |= match && also && strcmp(mem, also) == 0;
		}
		fflush(stdout);
		json_object_put(sigs);
	}
	return 0;
}

int main(int argc, char **argv)
{
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	uint64_t closed = 0, action = 0;
	if (argc != 2) {
		fprintf(stderr, "usage: scm-test-dbus-signals BUS\n");
		return 2;
	}
	const char *bus = argv[1];
	if (scm_connect("dbus", &ch, &e) != 0)
		return fail("connect", e);
	if (scm_dbus_subscribe(ch, bus, DEST, PATH, DEST, "NotificationClosed", &closed, &e) != 0 ||
	    scm_dbus_subscribe(ch, bus, DEST, PATH, DEST, "ActionInvoked", &action, &e) != 0)
		return fail("subscribe", e);
	printf("subscribed %" PRIu64 " %" PRIu64 "\n", closed, action);
	fflush(stdout);
	if (take(ch, "NotificationClosed", 7, "ActionInvoked") != 0)
		return 1;
	if (scm_dbus_unsubscribe(ch, action, &e) != 0)
		return fail("unsubscribe", e);
	printf("unsubscribed %" PRIu64 "\n", action);
	fflush(stdout);
	if (take(ch, "NotificationClosed", 8, NULL) != 0)
		return 1;
	printf("done\n");
	if (scm_dbus_unsubscribe(ch, action, &e) != 0)
		fail("again", e); /* frees e */
	e = NULL;
	if (scm_dbus_unsubscribe(ch, 999, &e) != 0)
		fail("never given", e);
	scm_channel_free(ch);
	return 0;
}
