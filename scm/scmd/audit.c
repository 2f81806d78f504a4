/* audit.c: what goes into the audit trail, one JSON object per record.
 *
 * Every connect decision is recorded with the rule that made it. Clients
 * that connect in a loop (allowed or denied) would flood the trail, so a
 * record of the same (endpoint, service, decision, reason) within the
 * fold window (10 s, --audit-fold-ms) of the last one written is counted instead of written;
 * the next record written for that key carries "folded": N, the number of
 * records it stands for besides itself. Records go to the journal or to
 * the bounded audit file (audit.h). */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "scmd.h"

#define FOLD_SLOTS 64

struct fold {
	uint64_t hash, last;
	unsigned suppressed;
};

struct audit {
	struct audit_file *file; /* NULL: the journal */
	bool journal_failed;     /* said once */
	uint64_t (*clock)(void);
	uint64_t fold_usec;
	void (*tap)(void *userdata, const char *event, const char *json, size_t len);
	void *tap_data;
	struct fold folds[FOLD_SLOTS];
};

struct audit *audit_open(const struct audit_opts *o, scm_error **ret_err)
{
	struct audit *a = calloc(1, sizeof(*a));
	if (!a) {
		scm_fail(ret_err, -ENOMEM, "out of memory");
		return NULL;
	}
	a->clock = o->clock ? o->clock : now_usec;
	a->fold_usec = o->fold_usec ? o->fold_usec : AUDIT_FOLD_USEC;
	a->tap = o->tap;
	a->tap_data = o->tap_data;
	enum audit_sink sink = o->sink;
	if (sink == AUDIT_AUTO)
		sink = audit_journal_wanted() ? AUDIT_JOURNAL : AUDIT_FILE;
	if (sink == AUDIT_JOURNAL) {
		if (!audit_journal_present()) {
			free(a);
			scm_fail(ret_err, -ENOENT, "--audit=journal: no journal socket (/run/systemd/journal/socket)");
			return NULL;
		}
		return a;
	}
	if (audit_file_open(o->path, o->max_bytes ? o->max_bytes : AUDIT_MAX_BYTES_DEFAULT, o->keep, &a->file,
			    ret_err) != 0) {
		free(a);
		return NULL;
	}
	return a;
}

struct audit *audit_close(struct audit *a)
{
	if (a) {
		audit_file_close(a->file);
		free(a);
	}
	return NULL;
}

const char *audit_sink_name(const struct audit *a)
{
	return a->file ? "file" : "journal";
}

static uint64_t fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull;
}

static void stamp(FILE *f, const char *event)
{
	struct timespec ts;
	struct tm tm;
	char buf[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(f, "{\"ts\":\"%s.%06ldZ\",\"event\":\"%s\"", buf, ts.tv_nsec / 1000, event);
}

/* Ends the record in m and hands it to the sink. */
static void emit(struct audit *a, const char *event, FILE *m, char **linep, size_t *len)
{
	fputs("}\n", m);
	/* open_memstream sets *linep and *len at fclose */
	int closed = fclose(m);
	char *line = *linep;
	if (closed != 0 || !line)
		goto out;
	if (a->tap)
		a->tap(a->tap_data, event, line, *len - 1);
	if (a->file) {
		audit_file_write(a->file, line, *len);
		goto out;
	}
	char **fields = NULL;
	scm_error *e = NULL;
	int r = audit_record_fields(line, &fields, &e);
	if (r == 0)
		r = audit_journal_send(fields);
	audit_fields_free(fields);
	scm_error_free(e);
	if (r != 0 && !a->journal_failed) {
		a->journal_failed = true;
		log_warning("cannot send audit records to the journal (%s); some are lost",
			    strerror(r < 0 ? -r : EINVAL));
	}
out:
	free(line);
}

const char *audit_quote(const char *s)
{
	/* json-c quoting, for values that came from clients. */
	static __thread json_object *o;
	json_object_put(o);
	o = json_object_new_string(s ? s : "");
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

void audit_connect(struct audit *a, const struct endpoint *ep, const struct ucred *cred,
		   const char *service, bool allowed, int code, const char *reason,
		   const char *origin, uint64_t channel)
{
	unsigned folded = 0;

	if (!a)
		return;
	/* Names of services that do not exist are the caller's to choose:
	 * fold those per endpoint, or cycling names would flood the trail. */
	uint64_t h = fnv(fnv(fnv(fnv(0xcbf29ce484222325ull, ep->name), code == SCM_E_NO_SERVICE ? "" : service),
			     reason ? reason : ""), allowed ? "allow" : "deny");
	uint64_t now = a->clock();
	struct fold *slot = &a->folds[h % FOLD_SLOTS];
	if (slot->hash == h && now - slot->last < a->fold_usec) {
		slot->suppressed++;
		return;
	}
	if (slot->hash == h)
		folded = slot->suppressed;
	*slot = (struct fold){ h, now, 0 };

	char *line = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&line, &len);
	if (!m)
		return;
	stamp(m, "connect");
	fprintf(m, ",\"endpoint\":%s", audit_quote(ep->name));
	fprintf(m, ",\"uid\":%u,\"pid\":%d,\"service\":%s", cred->uid, cred->pid, audit_quote(service));
	fprintf(m, ",\"profiles\":[");
	for (char **p = ep->profiles; p && *p; p++)
		fprintf(m, "%s%s", p == ep->profiles ? "" : ",", audit_quote(*p));
	fprintf(m, "],\"decision\":\"%s\"", allowed ? "allow" : "deny");
	if (!allowed)
		fprintf(m, ",\"code\":\"%s\",\"reason\":%s", scm_code_name(code), audit_quote(reason));
	fprintf(m, ",\"origin\":%s", audit_quote(origin));
	if (channel)
		fprintf(m, ",\"channel\":%llu", (unsigned long long)channel);
	if (folded)
		fprintf(m, ",\"folded\":%u", folded);
	emit(a, "connect", m, &line, &len);
}

void audit_revoke(struct audit *a, const struct channel *ch, const char *reason)
{
	audit_event(a, "revoke", "\"channel\":%llu,\"service\":\"%s\",\"endpoint\":\"%s\",\"reason\":%s",
		    (unsigned long long)ch->id, ch->svc->name, ch->ep_name, audit_quote(reason));
}

void audit_event(struct audit *a, const char *event, const char *fmt, ...)
{
	va_list ap;
	char *line = NULL;
	size_t len = 0;

	if (!a)
		return;
	FILE *m = open_memstream(&line, &len);
	if (!m)
		return;
	stamp(m, event);
	fputc(',', m);
	va_start(ap, fmt);
	vfprintf(m, fmt, ap);
	va_end(ap);
	emit(a, event, m, &line, &len);
}
