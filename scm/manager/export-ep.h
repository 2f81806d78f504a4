/* export-ep.h: scm-dbus-export's requests to scmd, and the endpoints it
 * makes for its callers (docs/dbus.md, "Container services on the host
 * bus"): made, reused and removed only when provably its own. */
#pragma once
#include <stdbool.h>

#include "scm/error.h"

struct json_object;

/* How long scmd may take to answer one control request (a decision, an
 * endpoint made): scmd answers them from its loop, never calling out. */
#define XP_SCMD_TIMEOUT_MS 10000

/* One control request to scmd at runtime_dir/control.sock, bounded by
 * XP_SCMD_TIMEOUT_MS. */
int xp_scmd(const char *runtime_dir, const char *op, struct json_object *args, struct json_object **ret,
	    scm_error **ret_err);

/* Makes endpoint name (owned by this euid, mode 0600, with profiles) and
 * records it as this export's in runtime_dir/dbus-export/NAME.lock, which
 * stays locked (flock) in *ret_lockfd while the export runs. An endpoint
 * of that name already there is replaced only when the record of a dead
 * export names it (the same socket); otherwise, or when a running export
 * holds the lock, it is refused with SCM_E_EXISTS naming the endpoint. */
int xp_endpoint_make(const char *runtime_dir, const char *name, char *const *profiles, int *ret_lockfd,
		     scm_error **ret_err);
/* Removes what xp_endpoint_make made (nothing when lockfd < 0). */
void xp_endpoint_remove(const char *runtime_dir, const char *name, int lockfd);
