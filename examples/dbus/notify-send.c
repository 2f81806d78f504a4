/* scm-notify-send: a desktop notification from a container, through
 * scm's D-Bus bridge, with the typed calls scm-dbus-stubgen made from
 * notifications.xml (the interface as its specification gives it):
 *
 *   scm-notify-send [--app NAME] [--timeout MS] BUS SUMMARY [BODY]
 *
 * BUS is "session", "system" or an address, as the caller's profile's
 * dbus rules name it (docs/dbus.md). It connects to the "dbus" service
 * through the endpoint in $SCM_ENDPOINT (a container's own), prints the
 * daemon's capabilities and then the new notification's id. A call the
 * profile does not allow fails with the bridge's reason. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <scm/scm.h>

#include "notifications.h"

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "app", required_argument, NULL, 'a' },
					      { "timeout", required_argument, NULL, 't' },
					      {} };
	const char *app = "scm-notify-send";
	int32_t timeout = -1, o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o == 'a')
			app = optarg;
		else if (o == 't')
			timeout = (int32_t)strtol(optarg, NULL, 10);
		else
			return 2;
	}
	if (argc - optind < 2) {
		fprintf(stderr, "usage: scm-notify-send [--app NAME] [--timeout MS] BUS SUMMARY [BODY]\n");
		return 2;
	}
	const struct scm_dbus_target t = { argv[optind], "org.freedesktop.Notifications",
					   "/org/freedesktop/Notifications" };
	scm_channel *ch = NULL;
	scm_error *err = NULL;
	json_object *caps = NULL, *actions = json_object_new_array(), *hints = json_object_new_object();
	uint32_t id = 0;
	int r = scm_connect("dbus", &ch, &err);
	if (r == 0)
		r = org_freedesktop_notifications_get_capabilities(ch, &t, &caps, &err);
	if (r == 0) {
		printf("capabilities %s\n", json_object_to_json_string_ext(caps, JSON_C_TO_STRING_PLAIN));
		r = org_freedesktop_notifications_notify(ch, &t, app, 0, "", argv[optind + 1],
							 optind + 2 < argc ? argv[optind + 2] : "", actions, hints,
							 timeout, &id, &err);
	}
	if (r == 0)
		printf("id %u\n", id);
	else {
		fprintf(stderr, "scm-notify-send: ");
		scm_error_print(err, stderr);
	}
	scm_error_free(err);
	json_object_put(caps);
	json_object_put(actions);
	json_object_put(hints);
	scm_channel_free(ch);
	return r == 0 ? 0 : 1;
}
