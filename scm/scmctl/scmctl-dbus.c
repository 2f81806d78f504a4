/* scmctl-dbus.c: `scmctl dbus call`, a host D-Bus method call through
 * scm's bridge (services/dbus-bridge, docs/dbus.md), shaped like
 * `busctl call`:
 *
 *   scmctl dbus call [--endpoint NAME|PATH] [--service NAME] BUS DEST PATH
 *         INTERFACE METHOD [SIGNATURE [ARG...]]
 *
 * Each ARG is one complete type of SIGNATURE as JSON ("hi", 5, ["s",
 * "x"] for a variant, {"k": ...} for a dict); a word that is not JSON is
 * taken as a string, so `s hello` works unquoted. Prints the reply's body
 * as a JSON array. Refusals come back as scm errors (exit 4: the profile
 * said no). */
#include <getopt.h>
#include <string.h>

#include "scm/dbus-client.h"
#include "scm/macro.h"
#include "scmctl.h"

/* A word as JSON, else as a string. Parsed inside brackets: json-c
 * cannot tell that a bare number ("5000") has ended. */
static json_object *word_json(const char *w)
{
	json_object *v = NULL;
	_cleanup_free_ char *b = NULL;
	json_tokener *tok = json_tokener_new_ex(64);
	if (tok && asprintf(&b, "[%s]", w) >= 0) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
		v = json_tokener_parse_ex(tok, b, (int)strlen(b));
		if (json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != strlen(b)) {
			json_object_put(v);
			v = NULL;
		}
	}
	if (tok)
		json_tokener_free(tok);
	if (json_object_is_type(v, json_type_array) && json_object_array_length(v) == 1) {
		json_object *e = json_object_get(json_object_array_get_idx(v, 0));
		json_object_put(v);
		return e;
	}
	json_object_put(v);
	return json_object_new_string(w);
}

static int dbus_call(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "service", required_argument, NULL, 's' },
		{},
	};
	const char *endpoint = NULL, *service = "dbus";
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:s:", opts, NULL)) != -1) {
		if (c == 'e')
			endpoint = optarg;
		else if (c == 's')
			service = optarg;
		else
			return 2;
	}
	int n = argc - optind;
	if (n < 5) {
		fprintf(stderr, "scmctl: usage: dbus call [--endpoint NAME|PATH] [--service NAME] BUS DEST PATH "
				"INTERFACE METHOD [SIGNATURE [ARG...]]\n");
		return 2;
	}
	char **a = argv + optind;
	const char *sig = n > 5 ? a[5] : "";
	json_object *args = json_object_new_array();
	for (int i = 6; args && i < n; i++)
		json_object_array_add(args, word_json(a[i]));
	if (!args)
		return 1;
	scm_error *e = NULL;
	scm_channel *ch = NULL;
	char *rsig = NULL;
	json_object *body = NULL;
	int r = scmctl_connect(endpoint, service, &ch, &e);
	if (r == 0)
		r = scm_dbus_call(ch, a[0], a[1], a[2], a[3], a[4], sig, args, &rsig, &body, &e);
	json_object_put(args);
	scm_channel_free(ch);
	if (r != 0)
		return scmctl_fail(e);
	printf("%s\n", json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	free(rsig);
	json_object_put(body);
	return 0;
}

/* dbus subscribe: prints "subscribed N" once the bridge has the match in
 * place, then each signal as a JSON line, until --count signals came (or
 * for ever). */
static int dbus_subscribe(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "service", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'c' },
		{},
	};
	const char *endpoint = NULL, *service = "dbus";
	long count = -1;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:s:c:", opts, NULL)) != -1) {
		if (c == 'e')
			endpoint = optarg;
		else if (c == 's')
			service = optarg;
		else if (c == 'c')
			count = atol(optarg);
		else
			return 2;
	}
	if (argc - optind != 5 || count == 0) {
		fprintf(stderr, "scmctl: usage: dbus subscribe [--endpoint NAME|PATH] [--service NAME] [--count N] BUS SENDER "
				"PATH INTERFACE MEMBER\n");
		return 2;
	}
	char **a = argv + optind;
	scm_error *e = NULL;
	scm_channel *ch = NULL;
	uint64_t id = 0;
	int r = scmctl_connect(endpoint, service, &ch, &e);
	if (r == 0)
		r = scm_dbus_subscribe(ch, a[0], a[1], a[2], a[3], a[4], &id, &e);
	if (r == 0) {
		printf("subscribed %llu\n", (unsigned long long)id);
		fflush(stdout);
	}
	while (r == 0 && count != 0) {
		json_object *sigs = NULL;
		uint64_t dropped = 0;
		if ((r = scm_dbus_signals(ch, 20000, &sigs, &dropped, &e)) != 0)
			break;
		if (dropped)
			fprintf(stderr, "scmctl: %llu signals were dropped (the bridge's queue was full)\n",
				(unsigned long long)dropped);
		for (size_t i = 0; count != 0 && i < json_object_array_length(sigs); i++, count--)
			printf("%s\n", json_object_to_json_string_ext(json_object_array_get_idx(sigs, i),
								      JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
		json_object_put(sigs);
	}
	scm_channel_free(ch);
	return r != 0 ? scmctl_fail(e) : 0;
}

int scmctl_dbus(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "call") == 0)
		return dbus_call(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "subscribe") == 0)
		return dbus_subscribe(argc - 1, argv + 1);
	fprintf(stderr, "scmctl: usage: dbus call|subscribe ...\n");
	return 2;
}
