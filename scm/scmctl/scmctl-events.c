/* scmctl-events.c: `scmctl events [--count N] [PATTERN...]`, scmd's
 * records as they happen (scm/scmd/events.c), one a line:
 *
 *   2026-12-06T17:40:01.123456Z container-start container=web pid=4242
 *
 * or, with --json, each record as scmd sent it. Like `podman events` and
 * `journalctl -f`: it runs until interrupted, until N records came, or
 * until scmd ends the stream (it stopped or restarted in place, or this
 * reader fell behind: scmd drops a reader that does not keep up rather
 * than hold records for it without bound). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scm-internal/error.h"
#include "scm-internal/wire.h"
#include "scm/macro.h"
#include "scmctl.h"

#define EXIT_USAGE 2

static void print_human(json_object *rec)
{
	json_object *ts = NULL, *ev = NULL;
	json_object_object_get_ex(rec, "ts", &ts);
	json_object_object_get_ex(rec, "event", &ev);
	printf("%s %s", ts ? json_object_get_string(ts) : "-", ev ? json_object_get_string(ev) : "?");
	json_object_object_foreach(rec, k, v)
	{
		if (strcmp(k, "ts") == 0 || strcmp(k, "event") == 0)
			continue;
		if (json_object_is_type(v, json_type_string))
			printf(" %s=%s", k, json_object_get_string(v));
		else
			printf(" %s=%s", k, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	putchar('\n');
}

int scmctl_events(int argc, char **argv, bool json)
{
	unsigned long count = 0; /* 0: until interrupted */
	json_object *pats = json_object_new_array();
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			errno = 0;
			count = strtoul(argv[++i], &end, 10);
			if (errno || *end || count == 0 || argv[i][0] == '-') {
				fprintf(stderr, "scmctl: events --count: '%s' is not a positive number\n", argv[i]);
				json_object_put(pats);
				return EXIT_USAGE;
			}
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "scmctl: usage: events [--json] [--count N] [PATTERN...]\n");
			json_object_put(pats);
			return EXIT_USAGE;
		} else
			json_object_array_add(pats, json_object_new_string(argv[i]));
	}
	scm_error *e = NULL;
	_cleanup_close_ int fd = scmctl_control_open(&e);
	if (fd < 0) {
		json_object_put(pats);
		return scmctl_fail(e);
	}
	json_object *a = json_object_new_object();
	json_object_object_add(a, "events", pats);
	int r = scm_wire_control_request(fd, "events.subscribe", a, NULL, 0, NULL, NULL, 0, &e);
	json_object_put(a);
	if (r != 0)
		return scmctl_fail(e);
	for (unsigned long seen = 0; count == 0 || seen < count;) {
		scm_message *m = NULL;
		r = scm_wire_recv(fd, 0, &m, &e);
		if (r == 1) {
			fprintf(stderr, "scmctl: scmd ended the event stream (it stopped or restarted, or this reader fell "
					"behind); what was missed is in the audit trail\n");
			return 1;
		}
		if (r != 0) {
			scm_fail(&e, r, "reading scmd's events");
			return scmctl_fail(e);
		}
		if (m->type == SCM_FRAME_EVENT && m->json) {
			if (json)
				puts(json_object_to_json_string_ext(m->json, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
			else
				print_human(m->json);
			fflush(stdout);
			seen++;
		}
		scm_message_free(m);
	}
	return 0;
}
