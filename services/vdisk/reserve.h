/* reserve.h: persistent reservations of a shared disk, SCSI-3 PR (SPC-4
 * 5.12) / NVMe reservations, as a pure state machine: no I/O, no clock,
 * no locks. The provider keeps one per disk, asks it before every read
 * and write, and saves it (vdisk_pr_format) after every change.
 *
 * A "nexus" is who issues a command: SCSI's I_T nexus, NVMe's host. The
 * provider names it by the client's identity as scmd reports it (endpoint
 * label and uid), so it outlives a channel and a provider restart. */
#ifndef SCM_VDISK_RESERVE_H
#define SCM_VDISK_RESERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scm/error.h"

#define VDISK_PR_NEXUS_MAX 128 /* bytes, with the NUL */
#define VDISK_PR_REGS_MAX 64   /* registrations per disk */
#define VDISK_PR_FILE_MAX 32768 /* 64 registrations of the longest names fit */

enum vdisk_pr_type {
	VDISK_PR_NONE = 0,
	VDISK_PR_WE = 1,   /* write exclusive */
	VDISK_PR_EA = 3,   /* exclusive access */
	VDISK_PR_WERO = 5, /* write exclusive, registrants only */
	VDISK_PR_EARO = 6, /* exclusive access, registrants only */
	VDISK_PR_WEAR = 7, /* write exclusive, all registrants */
	VDISK_PR_EAAR = 8, /* exclusive access, all registrants */
};

struct vdisk_pr_reg {
	uint64_t key;
	char nexus[VDISK_PR_NEXUS_MAX];
};

struct vdisk_pr {
	uint32_t generation; /* PRgeneration: + 1 per register, clear, preempt */
	enum vdisk_pr_type type; /* VDISK_PR_NONE: no reservation */
	char holder[VDISK_PR_NEXUS_MAX]; /* for the types that are not all-registrants */
	size_t n_regs;
	struct vdisk_pr_reg regs[VDISK_PR_REGS_MAX];
};

/* Results: 0, -EBADE (a reservation conflict, as SCSI's RESERVATION
 * CONFLICT status), -EINVAL (SCSI's ILLEGAL REQUEST: a bad type, a
 * release of another type, a preempt of key 0), -ENOSPC (registrations
 * full). Failures leave the state as it was and say why in *ret_err. */

/* "write-exclusive", ..., "exclusive-access-all-registrants"; NULL for none. */
const char *vdisk_pr_type_name(enum vdisk_pr_type t);
/* -EINVAL for an unknown name. */
int vdisk_pr_type_parse(const char *name, enum vdisk_pr_type *ret);

/* REGISTER (ignore false) and REGISTER AND IGNORE EXISTING KEY (true):
 * new_key 0 unregisters. */
int vdisk_pr_register(struct vdisk_pr *pr, const char *nexus, uint64_t key, uint64_t new_key, bool ignore,
		      scm_error **ret_err);
int vdisk_pr_reserve(struct vdisk_pr *pr, const char *nexus, uint64_t key, enum vdisk_pr_type type,
		     scm_error **ret_err);
int vdisk_pr_release(struct vdisk_pr *pr, const char *nexus, uint64_t key, enum vdisk_pr_type type,
		     scm_error **ret_err);
int vdisk_pr_clear(struct vdisk_pr *pr, const char *nexus, uint64_t key, scm_error **ret_err);
/* PREEMPT (and PREEMPT AND ABORT: the same change; the caller aborts the
 * preempted nexuses' queued commands, which the access check then refuses). */
int vdisk_pr_preempt(struct vdisk_pr *pr, const char *nexus, uint64_t key, uint64_t victim_key,
		     enum vdisk_pr_type type, scm_error **ret_err);

/* May nexus read (write false) or write? 0 or -EBADE. */
int vdisk_pr_access(const struct vdisk_pr *pr, const char *nexus, bool write);
/* The nexus's registration, or NULL. */
const struct vdisk_pr_reg *vdisk_pr_find(const struct vdisk_pr *pr, const char *nexus);
bool vdisk_pr_is_holder(const struct vdisk_pr *pr, const char *nexus);
/* The reservation key READ RESERVATION reports: the holder's key, 0 for
 * the all-registrants types. */
uint64_t vdisk_pr_holder_key(const struct vdisk_pr *pr);

/* The state file (docs/vdisk.md "Reservations"): text, versioned, with a
 * CRC-32C over everything before its last line. id is the disk's
 * identity (its page 83 GUID as text); a file for another disk is
 * refused. Returns the length written (0 when cap is too small). */
size_t vdisk_pr_format(const struct vdisk_pr *pr, const char *id, char *out, size_t cap);
/* Parses len bytes (not NUL-terminated). id NULL: any disk; the file's id
 * is copied to ret_id (40 bytes) when not NULL. -EINVAL naming the line. */
int vdisk_pr_parse(const char *buf, size_t len, const char *id, struct vdisk_pr *ret, char *ret_id,
		   scm_error **ret_err);

#endif
