/* audit.h: scmd's audit trail, to the journal or to a bounded file.
 *
 * audit.c decides what is written (every connect decision, folded when it
 * repeats; revocations, registrations, ...) as one JSON object per record.
 * Where it goes: the journal (audit-journal.c) with structured SCM_*
 * fields and a MESSAGE_ID per kind of record, or RUNTIME/audit.log
 * (audit-file.c), capped and rotated. audit-record.c turns a record into
 * journal fields; it is pure, so the unit tests check the fields on a
 * machine without journald. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "scm/macro.h"
#include "scm/scm.h"

struct endpoint;
struct channel;

enum audit_sink { AUDIT_AUTO, AUDIT_FILE, AUDIT_JOURNAL };

#define AUDIT_MAX_BYTES_DEFAULT (1024 * 1024)
#define AUDIT_KEEP_DEFAULT 3
#define AUDIT_FOLD_USEC (10 * 1000000ull)

struct audit_opts {
	enum audit_sink sink; /* AUDIT_AUTO: the journal when audit_journal_wanted() */
	const char *path;     /* the file sink's RUNTIME/audit.log */
	size_t max_bytes;     /* per file, before it rotates */
	unsigned keep;        /* rotated files kept: path.1 .. path.KEEP */
	uint64_t fold_usec;   /* the folding window; 0: AUDIT_FOLD_USEC */
	uint64_t (*clock)(void); /* monotonic microseconds for folding; NULL: now_usec (tests pass their own) */
	/* Given every record written (one JSON object, no newline) before
	 * its sink: scmd's live feed of them (events.c). */
	void (*tap)(void *userdata, const char *event, const char *json, size_t len);
	void *tap_data;
};

struct audit *audit_open(const struct audit_opts *o, scm_error **ret_err);
struct audit *audit_close(struct audit *a);
/* "journal" or "file", for the log line at start. */
const char *audit_sink_name(const struct audit *a);
/* Records a connect decision. Repeats of the same (endpoint, service,
 * decision, reason) within AUDIT_FOLD_USEC of the last one written are
 * counted instead of written; the next record written for that key
 * carries "folded": N, the number it stands for besides itself. */
void audit_connect(struct audit *a, const struct endpoint *ep, const struct ucred *cred,
		   const char *service, bool allowed, int code, const char *reason,
		   const char *origin, uint64_t channel);
void audit_revoke(struct audit *a, const struct channel *ch, const char *reason);
/* Any other record: fmt gives the members after "event" (JSON text). */
void audit_event(struct audit *a, const char *event, const char *fmt, ...) _printf_(3, 4);
/* s as a JSON string literal; valid until the next call in this thread. */
const char *audit_quote(const char *s);

/* audit-record.c: one record (a JSON object with "event") as journal
 * fields, "KEY=value" strings ending in NULL: MESSAGE, MESSAGE_ID,
 * PRIORITY, SYSLOG_IDENTIFIER and a SCM_* field per member. */
int audit_record_fields(const char *json, char ***ret_fields, scm_error **ret_err);
void audit_fields_free(char **fields);
/* The MESSAGE_ID (32 hex digits) of records of this event kind. */
const char *audit_message_id(const char *event);

/* audit-file.c: an append-only file of lines, rotated at max_bytes into
 * path.1 .. path.KEEP (keep 0: truncated instead). */
struct audit_file;
int audit_file_open(const char *path, size_t max_bytes, unsigned keep, struct audit_file **ret,
		    scm_error **ret_err);
int audit_file_write(struct audit_file *f, const char *line, size_t len);
struct audit_file *audit_file_close(struct audit_file *f);

/* audit-journal.c */
/* AUDIT_AUTO picks the journal: its socket exists and scmd's stderr is a
 * journal stream (started by systemd with its output to the journal). */
bool audit_journal_wanted(void);
bool audit_journal_present(void);
int audit_journal_send(char **fields);
