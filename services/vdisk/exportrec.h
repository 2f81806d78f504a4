/* exportrec.h: the record `scm-vdisk export` keeps for each running NBD
 * export (DIR/NAME.json, docs/vdisk.md "NBD export"): who serves which
 * disk where, so that `export --list` and `--stop` find it. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include <scm/error.h>

#define EXPORT_NAME_MAX 64
#define EXPORT_RECORD_MAX 16384

struct export_record {
	char name[EXPORT_NAME_MAX + 1];
	pid_t pid;           /* nbdkit's */
	char *disk;          /* as the grant names it */
	char *uri;           /* what a client connects to */
	char *socket;        /* the unix socket's path, removed at --stop; or NULL */
	bool readonly;
	long long started;   /* seconds since the epoch */
};

/* A name is 1 to 64 of a-z A-Z 0-9 . _ -, not starting with '.' or '-'. */
bool export_name_valid(const char *s);
/* Parses a record (len bytes, at most EXPORT_RECORD_MAX; need not be
 * NUL-terminated): a JSON object with exactly the keys name, pid, disk,
 * uri, socket (string or null), readonly and started; anything else is
 * refused with the member named. */
int export_record_parse(const char *text, size_t len, struct export_record *ret, scm_error **ret_err);
/* The record as one line of JSON (the caller frees it), or NULL. */
char *export_record_format(const struct export_record *r);
void export_record_done(struct export_record *r);
