/* audit.c: the audit log, one JSON object per line.
 *
 * Every connect decision is recorded with the rule that made it. Denials
 * repeat when a client retries in a loop, so a denial of the same
 * (endpoint, service, reason) within FOLD_USEC of the last one written is
 * counted instead of written; the next line written for that key carries
 * "folded": N, the number of denials it stands for besides itself. */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "scmd.h"

#define FOLD_USEC (10 * 1000000ull)
#define FOLD_SLOTS 64

struct fold {
	uint64_t hash, last;
	unsigned suppressed;
};

struct audit {
	FILE *f;
	struct fold folds[FOLD_SLOTS];
};

struct audit *audit_open(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	struct audit *a = calloc(1, sizeof(*a));
	if (!a || !(a->f = fdopen(fd, "a"))) {
		close(fd);
		free(a);
		return NULL;
	}
	setvbuf(a->f, NULL, _IOLBF, 0);
	return a;
}

struct audit *audit_close(struct audit *a)
{
	if (a) {
		fclose(a->f);
		free(a);
	}
	return NULL;
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
	if (!allowed) {
		/* Names of services that do not exist are the caller's to choose:
		 * fold those per endpoint, or cycling names would flood the log. */
		uint64_t h = fnv(fnv(fnv(0xcbf29ce484222325ull, ep->name),
				     code == SCM_E_NO_SERVICE ? "" : service), reason);
		uint64_t now = now_usec();
		struct fold *slot = &a->folds[h % FOLD_SLOTS];
		if (slot->hash == h && now - slot->last < FOLD_USEC) {
			slot->suppressed++;
			return;
		}
		if (slot->hash == h)
			folded = slot->suppressed;
		*slot = (struct fold){ h, now, 0 };
	}
	stamp(a->f, "connect");
	fprintf(a->f, ",\"endpoint\":%s", audit_quote(ep->name));
	fprintf(a->f, ",\"uid\":%u,\"pid\":%d,\"service\":%s", cred->uid, cred->pid, audit_quote(service));
	fprintf(a->f, ",\"profiles\":[");
	for (char **p = ep->profiles; p && *p; p++)
		fprintf(a->f, "%s%s", p == ep->profiles ? "" : ",", audit_quote(*p));
	fprintf(a->f, "],\"decision\":\"%s\"", allowed ? "allow" : "deny");
	if (!allowed)
		fprintf(a->f, ",\"code\":\"%s\",\"reason\":%s", scm_code_name(code), audit_quote(reason));
	fprintf(a->f, ",\"origin\":%s", audit_quote(origin));
	if (channel)
		fprintf(a->f, ",\"channel\":%llu", (unsigned long long)channel);
	if (folded)
		fprintf(a->f, ",\"folded\":%u", folded);
	fputs("}\n", a->f);
}

void audit_event(struct audit *a, const char *event, const char *fmt, ...)
{
	va_list ap;
	if (!a)
		return;
	stamp(a->f, event);
	fputc(',', a->f);
	va_start(ap, fmt);
	vfprintf(a->f, fmt, ap);
	va_end(ap);
	fputs("}\n", a->f);
}
