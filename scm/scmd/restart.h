/* restart.h: scmd restarts in place (docs/restart.md).
 *
 *   restart.c        daemon.restart and SIGUSR2: the dry run of the new
 *                    binary (--check-state), the wait for a quiet moment,
 *                    the exec with every fd of the state inherited
 *   restart-state.c  the state memfd (magic, version, length, JSON) and
 *                    its validation (the dry run and the successor)
 *   restart-save.c   struct scmd to the state
 *   restart-load.c   the state to struct scmd, every fd checked first
 *   restart-ctr.c    the containers' part of both
 *   restart-handoff.c the switch: a copy of scmd serves while the
 *                    successor loads, then hands it the state and fds
 *   restart-store.c  systemd's fd store: the same state and fds, kept
 *                    current, so a crash and a restart by systemd keep
 *                    endpoints and containers
 * Internal to scm/scmd. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>

#include "scmd.h"

/* The state format. A reader takes every version from
 * SCMD_STATE_MIN_VERSION to its own SCMD_STATE_VERSION and refuses
 * others (a newer writer's) by name; a test builds with a bumped one. */
#ifndef SCMD_STATE_VERSION
#define SCMD_STATE_VERSION 2
#endif
#define SCMD_STATE_MIN_VERSION 1
#define SCMD_STATE_MAGIC "SCMDSTAT"
#define SCMD_STATE_MAX_BYTES (64u << 20)
/* What --check-state prints first when it can read the state. */
#define SCMD_CHECK_OK "scmd-check-state: readable;"
/* ... and then this when it takes --standby (restart-handoff.c); an older
 * scmd is exec'd with --restore instead. */
#define SCMD_CHECK_STANDBY "takes --standby"
/* ... and this when it takes the containers and channels early, while it
 * loads (restart-handoff.c); the old scmd sends them with the state
 * otherwise */
#define SCMD_CHECK_EARLY "takes containers early"

/* The header before the JSON text, all little-endian. */
struct state_header {
	char magic[8];
	uint32_t version;
	uint32_t flags; /* 0 */
	uint64_t length; /* of the JSON that follows */
};

/* From version 2 on, the channels are not in the JSON but in a table of
 * fixed records behind it (restart-chans.c, docs/restart.md). */
#define SCMD_STATE_CHANS_VERSION 2
#define SCMD_CHANS_MAGIC "SCMDCHAN"
#define SCMD_CHANS_HEADER 24     /* magic, count, record size, strings, flags */
#define SCMD_CHAN_RECORD 56      /* the record as version 2 writes it */
#define SCMD_CHAN_NONE UINT32_MAX /* endpoint: the host's; grant: none */
#define SCMD_CHANS_MAX (1u << 20)

/* One channel record, decoded and checked: indexes into the JSON's
 * services and endpoints, strings into the table's string block. */
struct state_chan {
	uint64_t id, created;
	int fd;
	uint32_t pid, uid, gid;
	uint32_t service, endpoint; /* endpoint SCMD_CHAN_NONE: the host */
	const char *origin, *grant; /* grant NULL: none */
};
struct state_chans {
	size_t n;
	struct state_chan *c;
	char *strings; /* owned */
};
void state_chans_free(struct state_chans *t);

/* What a writer produces: the JSON, the channel table (version 2 and
 * later; NULL for version 1), and every fd the state names, sorted. */
struct state_out {
	struct json_object *json;
	uint8_t *chans;
	size_t chans_len;
	int *fds;
	size_t n_fds;
};
void state_out_done(struct state_out *o);

/* restart-state.c */
/* A sealed memfd (close-on-exec) holding the header, the JSON text and,
 * from version 2 on, the channel table (chans, chans_len; padded to 8
 * bytes behind the JSON). */
int state_memfd_write(const char *json, size_t len, const uint8_t *chans, size_t chans_len, uint32_t version,
		      int *ret_fd, scm_error **ret_err);
/* The state out as a memfd (the JSON serialised here). */
int state_out_memfd(struct state_out *o, int *ret_fd, scm_error **ret_err);
/* Reads and validates (header, version range, JSON, structure, the
 * channel table: counts, sizes, indexes, strings). *ret_chans: version 2's
 * table (empty for version 1, whose channels are in the JSON); NULL: only
 * checked. */
int state_memfd_read(int fd, struct json_object **ret, uint32_t *ret_version, struct state_chans *ret_chans,
		     scm_error **ret_err);

/* The same, for a successor that restores the state at once from our own
 * copy (restart-handoff.c): the header, the JSON's structure and the
 * channel table are checked, not the containers' runtime objects and the
 * services' manifests, which the restore checks with the same rules as it
 * takes them (container_adopt, service_register), refusing the state
 * before anything is served (the previous binary then takes it back). The
 * dry run (--check-state) read this state's version with the full checks
 * while the old scmd still ran. */
int state_memfd_read_restore(int fd, struct json_object **ret, struct state_chans *ret_chans, scm_error **ret_err);

/* The containers sent early (restart-handoff.c): a memfd as the state's
 * (header, JSON) holding the state's "containers" array, or {} (they
 * come with the state). Checked as the state's are, with the full checks
 * of container_adopt: it is read before the successor says "ready", out
 * of the blackout. *ret NULL: {}. */
int state_containers_read(int fd, struct json_object **ret, scm_error **ret_err);

/* Appends fd (not when < 0) to a growing list of the state's fds. */
static inline int fd_list_add(int **fds, size_t *n, size_t *cap, int fd)
{
	if (fd < 0)
		return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		int *p = realloc(*fds, c * sizeof(int));
		if (!p)
			return -ENOMEM;
		*fds = p;
		*cap = c;
	}
	(*fds)[(*n)++] = fd;
	return 0;
}

/* restart-chans.c: version 2's channel table of the channels on the list
 * (NULL: none; their fds added to fds), services and endpoints by their index in the
 * state's arrays. */
int chans_encode(struct scmd *d, struct list *channels, struct service **svcs, size_t n_svcs, struct endpoint **eps, size_t n_eps,
		 uint8_t **ret, size_t *ret_len, int **fds, size_t *n, size_t *cap);
/* Checks and decodes a table of len bytes (untrusted: every count, size,
 * offset and index checked against len and the state's n_svcs, n_eps). */
int chans_decode(const uint8_t *p, size_t len, size_t n_svcs, size_t n_eps, struct state_chans *ret,
		 scm_error **ret_err);
/* The structure of a parsed state: every member's type, naming the JSON
 * pointer of the first wrong one. Fds are not looked at (the dry run has
 * none of them). */
int state_validate(struct json_object *st, uint32_t version, scm_error **ret_err);

/* How recorded fd numbers become fds: across execve they are the same;
 * from systemd's fd store, names "fdN" say which. */
struct fdmap {
	int *old_fd, *new_fd;
	size_t n;
	bool *used;
	bool sorted; /* by old_fd: looked up by bisection */
	/* the fds came from our own copy over the socketpair we made
	 * (restart-handoff.c): checked with one system call (take_fd) */
	bool from_copy;
	/* version 2's channel table, which came with the state */
	struct state_chans chans;
	/* the containers' array, when the old scmd sent them early (checked
	 * by state_containers_read); NULL: they are the state's */
	struct json_object *ctrs;
};
int fdmap_get(void *map, int old_fd); /* container_fd_map; -1 when absent */

/* restart-save.c: the state of d (store: only what survives a crash:
 * endpoints, containers, services' manifests, counters). *ret_fds: every
 * fd the state names (sorted), to be inherited. reply_fd/call: the
 * daemon.restart request the successor answers (-1: none). */
void restart_save(struct scmd *d, bool store, int reply_fd, uint32_t reply_call, struct state_out *ret);

/* restart-load.c: rebuilds d's tables; d is set up as at start (lists,
 * epoll, policy) with d->restoring set. On failure d may hold part of it:
 * the caller exits. */
int restart_restore(struct scmd *d, struct json_object *st, struct fdmap *map, scm_error **ret_err);
/* From the state, before anything else is set up: the instance, the
 * lock, counters. */
void restart_restore_early(struct scmd *d, struct json_object *st, struct fdmap *map);
/* The checks of an inherited fd. */
enum fd_kind { FD_LISTEN, FD_SEQPACKET, FD_PIPE, FD_REG, FD_PIPE_OR_TTY };
int fd_check(int fd, enum fd_kind kind, const char *what, scm_error **ret_err);
/* A map's arrays and channel table freed. */
void fdmap_done(struct fdmap *map);

/* restart-ctr.c */
struct json_object *restart_save_containers(struct scmd *d, bool store, int **fds, size_t *n, size_t *cap);
struct json_object *restart_save_execs(struct scmd *d);
int restart_load_containers(struct scmd *d, struct json_object *arr, struct fdmap *map, scm_error **ret_err);
int restart_load_execs(struct scmd *d, struct json_object *arr, struct fdmap *map, scm_error **ret_err);
/* The connection restored from the state's fd number (during the
 * restore), or by our own number (after it). */
struct conn *restart_conn_by_fd(struct scmd *d, int fd);
/* Why a restart must wait (a launch or an exec on its way), or NULL. */
const char *restart_ctr_busy(struct scmd *d);

/* restart.c */
void restart_request(struct scmd *d, struct conn *c, uint32_t call_id, const char *exec_path);
void restart_conn_gone(struct scmd *d, struct conn *c);
/* The successor: answer the request that restarted us. */
void restart_answer(struct scmd *d, struct json_object *st, uint64_t restored_at, int reply_fd);
/* Why a restart must wait for a quiet moment, or NULL. */
const char *restart_quiet(struct scmd *d);

/* restart-handoff.c: the switch. In the old scmd: fork a copy that serves
 * while this process sends the containers and channels early (early: the
 * successor's dry run says it takes them) and execs exe in standby (never
 * returns there); in the copy, 1. <0: nothing happened. */
int handoff_start(struct scmd *d, const char *exe, bool early, struct conn *reply, uint32_t call_id,
		  scm_error **ret_err);
void handoff_conn_gone(struct conn *c);
/* The successor (--standby FD), loaded: the early part first when early
 * (the old scmd sent it before its exec), "ready" ("E" when early, "R"
 * otherwise), then the state and its fds
 * (the map sorted, from the copy's numbers to ours); 1, or -errno or a
 * positive SCM_E_ code. */
int handoff_take_state(int sp, bool early, struct json_object **ret_st, struct fdmap *ret_map, uint64_t *ret_fds_at,
		       uint64_t *ret_ready_cpu, pid_t *ret_copy, scm_error **ret_err);
/* The successor could not take over (e says why): the copy is told, and
 * the previous binary (self_fd, O_PATH) is exec'd in standby, with the
 * first self_argc of args (the previous scmd's own), to take the state
 * back. Returns only when it could not. */
void handoff_fall_back(int sp, int self_fd, size_t self_argc, const scm_error *e, char **args);
/* Restored: the copy may go. */
void handoff_done(int sp);
/* The successor's heap, grown to bytes and touched before "ready"; then
 * malloc's thresholds as they were. */
void handoff_prefault(size_t bytes);
void handoff_prefault_end(void);
/* The fd an old number maps to, without taking it; -1 when absent. */
int fdmap_peek(struct fdmap *map, int old_fd);

/* service-recover.c: a restart in place carries the crash-recovery
 * checkpoint held for a provider: its JSON (NULL: none held), its fds
 * added to the list; the successor takes it back, fds by the map. */
struct json_object *svc_recover_save(struct service *s, int **fds, size_t *n, size_t *cap);
int svc_recover_load(struct service *s, struct json_object *o, struct fdmap *map, scm_error **ret_err);

/* restart-store.c */
void fdstore_init(struct scmd *d);
/* Feeds the store when endpoints or containers changed (d->store_dirty). */
void fdstore_sync(struct scmd *d);
/* At start, from the fds systemd passed (d->sd, sd.c): the state and the
 * fds named "fdN", taken; socket activation's stay. 1 found (*ret_st,
 * *ret_map filled), 0 none. */
int fdstore_take(struct scmd *d, struct json_object **ret_st, struct fdmap *ret_map, scm_error **ret_err);
/* After such a restore: activated sockets the state brought already. */
void fdstore_drop_activated(struct scmd *d);

/* restart-start.c: main()'s side */
int restart_check_main(int fd); /* --check-state: the exit status */
/* --restore FD: 1 and the state, or <0 */
int restart_take_state(int fd, struct json_object **ret_st, struct fdmap *ret_map, scm_error **ret_err);
int restart_finish(struct scmd *d, struct json_object *st, struct fdmap *map, uint64_t t0, scm_error **ret_err);
/* --standby FD: the state from the old scmd's copy, then what main() did
 * before the loop with it (the instance, the lock, containers' set-up). */
int restart_standby_take(struct scmd *d, int sp, bool early, struct json_object **ret_st, struct fdmap *ret_map,
			 scm_error **ret_err);
