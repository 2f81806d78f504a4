/* vjob.h: the vdisk provider's long operations ("jobs": snapshot, commit,
 * stream, compact) as a state machine, and their journal, the small file
 * next to the disk through which a job survives a provider restart
 * (format: docs/vdisk.md, "Job journal"). Pure functions plus the
 * journal's file I/O; the provider (provider-jobs.c) runs the jobs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <scm/error.h>

enum vjob_state {
	VJOB_RUNNING,
	VJOB_PAUSED,
	VJOB_WAITING, /* copying done, waiting for the switch-over step */
	VJOB_DONE,
	VJOB_FAILED,
	VJOB_CANCELLED,
	VJOB_STATE_MAX,
};

/* migrate-mirror and migrate-snapshot: live migration in either mode
 * (provider-migrate.c); their target is the destination. migrated is no
 * job but the mark a mirror migration to an NBD export leaves at its
 * switch-over (state done, target the export's URI): the disk takes no
 * writes here until it is cleared (provider-migmark.c). */
enum vjob_kind {
	VJOB_SNAPSHOT,
	VJOB_COMMIT,
	VJOB_STREAM,
	VJOB_COMPACT,
	VJOB_MIGRATE_MIRROR,
	VJOB_MIGRATE_SNAPSHOT,
	VJOB_MIGRATED,
	VJOB_KIND_MAX
};

enum vjob_event {
	VJOB_EV_PAUSE,
	VJOB_EV_RESUME,
	VJOB_EV_CANCEL,
	VJOB_EV_SWITCH, /* the copy converged: the switch-over comes next */
	VJOB_EV_DONE,
	VJOB_EV_FAIL,
	VJOB_EV_MAX,
};

/* The state after ev in state s: 0 and *ret, or -EINVAL when the event
 * makes no sense there (pausing a finished job, ...) with *ret_err saying
 * so in words a user reads. Pausing a paused job or resuming a running one
 * is allowed and changes nothing. */
int vjob_transition(enum vjob_state s, enum vjob_event ev, enum vjob_state *ret, scm_error **ret_err);
static inline bool vjob_finished(enum vjob_state s)
{
	return s == VJOB_DONE || s == VJOB_FAILED || s == VJOB_CANCELLED;
}
const char *vjob_state_name(enum vjob_state s);
const char *vjob_kind_name(enum vjob_kind k);
int vjob_state_parse(const char *s); /* the enum, or -EINVAL */
int vjob_kind_parse(const char *s);

#define VJOB_JOURNAL_VERSION 1
#define VJOB_JOURNAL_MAX 8192   /* bytes: a larger file is not a journal */
#define VJOB_PATH_MAX 4096

struct vjob_journal {
	unsigned version;
	uint64_t id;
	enum vjob_kind kind;
	enum vjob_state state;
	char disk[VJOB_PATH_MAX];   /* the disk the job runs on */
	char target[VJOB_PATH_MAX]; /* snapshot: the new child; commit: the parent; migrate: the destination; else "" */
	uint64_t done, total;       /* bytes */
};

/* The journal's text (NUL-terminated) into buf; its length, or -ENOSPC /
 * -EINVAL (a path with a newline or empty disk). */
int vjob_journal_format(const struct vjob_journal *j, char *buf, size_t size);
/* Parses a journal's bytes. -EINVAL with *ret_err naming the line at
 * fault; -EPROTONOSUPPORT for a journal of a newer version. */
int vjob_journal_parse(const char *buf, size_t len, struct vjob_journal *ret, scm_error **ret_err);

/* The journal of the disk named disk_name in directory dirfd is the file
 * "<disk_name>.job" there. write: a temporary file, fsync, rename over,
 * fsync of the directory. read: -ENOENT when there is none. */
int vjob_journal_write(int dirfd, const char *disk_name, const struct vjob_journal *j, scm_error **ret_err);
/* The provider believes state files beside a disk (the job journal, the
 * reservation state) only when they are its own: a regular file owned by
 * its uid that nobody else may write. Else -EPERM, naming owner and mode. */
int vdisk_own_file(int fd, const char *what, const char *name, scm_error **ret_err);
int vjob_journal_read(int dirfd, const char *disk_name, struct vjob_journal *ret, scm_error **ret_err);
int vjob_journal_remove(int dirfd, const char *disk_name, scm_error **ret_err);
