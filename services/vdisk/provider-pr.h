/* provider-pr.h: the provider's persistent reservations (provider-pr.c):
 * one state per open disk (reserve.c), loaded from and saved to a file
 * next to the disk, asked before every read and write. */
#ifndef SCM_VDISK_PROVIDER_PR_H
#define SCM_VDISK_PROVIDER_PR_H

#include <stdbool.h>

#include "scm/vdisk-provider.h"
#include "iopool.h"
#include "reserve.h"
#include "vhdx.h"

struct pr_disk;

/* At a disk's first open: its state file is DIR/NAME.scm-pr beside path
 * (beneath scope when not NULL); missing means no registrations. A file
 * that cannot be read or parsed, or that belongs to another disk (id: the
 * page 83 GUID), refuses the open with why in *ret_err. */
int pr_disk_open(struct pr_disk **ret, const struct vhdx_scope *scope, const char *path, const vhdx_guid *id,
		 scm_error **ret_err);
void pr_disk_free(struct pr_disk *p);
/* The handover (provider-handover.c): the directory (O_PATH) the state
 * file lives in and its name; and the state loaded again in the new
 * process from that directory's fd (taken) and name, never by path. */
int pr_disk_dirfd(const struct pr_disk *p, const char **ret_name);
int pr_disk_adopt(struct pr_disk **ret, int dirfd, const char *name, const vhdx_guid *id, scm_error **ret_err);
/* A migration's switch-over: the state goes with the disk to its new
 * place (dirfd, disk_name; a copy keeps the page 83 identity the file
 * names): written there durably when the old place had a file, and saved
 * there from now on. Any thread (under the state's lock). */
int pr_disk_move(struct pr_disk *p, int dirfd, const char *disk_name, scm_error **ret_err);

/* The caller's name as a registrant: its endpoint label and uid. */
void pr_nexus(scm_call *call, char out[VDISK_PR_NEXUS_MAX]);
/* May nexus read or write now? 0 or -EBADE. Any thread. */
int pr_check(struct pr_disk *p, const char *nexus, bool write);
/* On the loop: true after replying ReservationConflict. */
bool pr_refused(scm_call *call, struct pr_disk *p, bool write);
/* Does the grant let the client open disks shared read-write? */
bool pr_shared_allowed(const scm_grant *g);

/* provider.c: the disk of a handle on this channel and its queue; NULL
 * after replying NoHandle. */
struct pr_disk *provider_handle_pr(scm_call *call, uint64_t handle, struct iopool_queue **ret_q);

int pr_do_register(scm_call *call, uint64_t handle, uint64_t key, uint64_t new_key, bool ignore, void *ud);
int pr_do_reserve(scm_call *call, uint64_t handle, uint64_t key, const char *type, void *ud);
int pr_do_release(scm_call *call, uint64_t handle, uint64_t key, const char *type, void *ud);
int pr_do_clear(scm_call *call, uint64_t handle, uint64_t key, void *ud);
int pr_do_preempt(scm_call *call, uint64_t handle, uint64_t key, uint64_t victim_key, const char *type,
		  bool abort, void *ud);
int pr_do_read(scm_call *call, uint64_t handle, void *ud);

#endif
