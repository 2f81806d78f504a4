/* audit-record.c: an audit record as journal fields.
 *
 * The record is the JSON object the file sink writes as one line; each
 * member becomes SCM_<NAME> (upper case, '-' as '_'), strings as they are
 * and anything else as JSON text, so `journalctl SCM_SERVICE=echo` and
 * `journalctl MESSAGE_ID=...` find records without parsing a message.
 * The endpoint a request came in on is the caller's identity: it is
 * SCM_CALLER in records about a caller, SCM_ENDPOINT in the others. */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "audit.h"

/* One fixed id per kind of record (docs/protocol.md lists them): stable
 * across versions, so a journal query or an alert can rely on them. */
static const struct {
	const char *event, *id;
	int prio;
	bool caller; /* "endpoint" names the caller */
} kinds[] = {
	{ "connect", "b225e8c17d00433da8a99ba2cad0cfe1", LOG_INFO, true },
	{ "revoke", "420d7893f92d4e9fa7479b7f2398e017", LOG_NOTICE, true },
	{ "protocol-error", "225b167d4ed942b18dd4e9cc455d2011", LOG_WARNING, true },
	{ "endpoint-refused", "3b4302bf411b431db6a7a7eee8a86d7a", LOG_WARNING, true },
	{ "endpoint-create", "5af708dd94af480c8ac1bdd70c203391", LOG_INFO, false },
	{ "endpoint-remove", "9ffdb445656a428f8dfcaa9ec61e31a5", LOG_INFO, false },
	{ "service-register", "797e9c85899f4a628c94ad18e7c8bbcc", LOG_INFO, false },
	{ "service-unregister", "93701c9499814438b17ac4541e236d0e", LOG_INFO, false },
	{ "container-start", "bfb5415c327840a39c52013d2be0eefa", LOG_INFO, false },
	{ "container-exit", "b2b007248ff9483bb4d19ddf57050941", LOG_INFO, false },
	{ "container-failed", "71f5630f529c41bba950ae3ec3a0525c", LOG_WARNING, false },
	{ "container-pause", "78ae41cbe95348d09ac32b12d461bbeb", LOG_INFO, false },
	{ "container-resume", "2160680bd7dd4374890231558bfd01f8", LOG_INFO, false },
	{ "container-update", "444c0b8bbe7e40e09c52701466a965c5", LOG_NOTICE, false },
	{ "container-stop", "407fa0ac556f4e81a976ba63d3acc0c2", LOG_INFO, false },
	{ "container-remove", "9833fe810d984295ab583a79fb55c570", LOG_INFO, false },
	{ "policy-reload", "3eb7a3d8ded04e03a1b926f1174841a7", LOG_NOTICE, false },
};
#define OTHER_ID "a6297586b17642a7872e6b24d84414c9"

static int kind(const char *event)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].event, event) == 0)
			return (int)i;
	return -1;
}

const char *audit_message_id(const char *event)
{
	int k = kind(event ? event : "");
	return k < 0 ? OTHER_ID : kinds[k].id;
}

void audit_fields_free(char **fields)
{
	for (char **p = fields; p && *p; p++)
		free(*p);
	free(fields);
}

static const char *text(json_object *v)
{
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v)
		: json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

int audit_record_fields(const char *json, char ***ret_fields, scm_error **ret_err)
{
	json_object *o = json_tokener_parse(json);
	json_object *ev = NULL;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "event", &ev) ||
	    !json_object_is_type(ev, json_type_string)) {
		json_object_put(o);
		return scm_fail(ret_err, SCM_E_INVALID, "an audit record is a JSON object with an \"event\"");
	}
	const char *event = json_object_get_string(ev);
	int k = kind(event);
	int prio = k < 0 ? LOG_INFO : kinds[k].prio;
	json_object *dec;
	if (json_object_object_get_ex(o, "decision", &dec) && strcmp(json_object_get_string(dec), "deny") == 0)
		prio = LOG_NOTICE;

	size_t n = (size_t)json_object_object_length(o) + 5;
	char **f = calloc(n, sizeof(*f));
	char *msg = NULL;
	size_t msg_len = 0, i = 0;
	FILE *m = open_memstream(&msg, &msg_len);
	if (!f || !m) {
		if (m)
			fclose(m);
		free(msg);
		free(f);
		json_object_put(o);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	/* MESSAGE: what journalctl shows, "EVENT key=value ...". */
	fputs(event, m);
	json_object_object_foreach(o, key, val)
	{
		if (strcmp(key, "ts") == 0 || strcmp(key, "event") == 0)
			continue;
		fprintf(m, " %s=%s", key, text(val));
	}
	fclose(m);

	bool ok = asprintf(&f[i++], "MESSAGE=%s", msg) >= 0 &&
		  asprintf(&f[i++], "MESSAGE_ID=%s", audit_message_id(event)) >= 0 &&
		  asprintf(&f[i++], "PRIORITY=%d", prio) >= 0 &&
		  asprintf(&f[i++], "SYSLOG_IDENTIFIER=scmd") >= 0;
	free(msg);
	json_object_object_foreach(o, k2, v2)
	{
		/* the journal stamps each entry itself */
		if (!ok || strcmp(k2, "ts") == 0)
			continue;
		char name[64];
		size_t l = 0;
		const char *src = strcmp(k2, "endpoint") == 0 && k >= 0 && kinds[k].caller ? "caller" : k2;
		for (; src[l] && l < sizeof(name) - 1; l++)
			name[l] = isalnum((unsigned char)src[l]) ? (char)toupper((unsigned char)src[l]) : '_';
		name[l] = 0;
		ok = asprintf(&f[i++], "SCM_%s=%s", name, text(v2)) >= 0;
	}
	json_object_put(o);
	if (!ok) {
		f[i - 1] = NULL;
		audit_fields_free(f);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	*ret_fields = f;
	return 0;
}
