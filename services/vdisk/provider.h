/* provider.h: what the vdisk provider's files share (provider.c: the
 * tables of disks, channels, handles and client accounts, and main;
 * provider-scope.c: grants to directories; provider-open.c: open and
 * create; provider-io.c: disk work on the worker pool; provider-pr.c:
 * persistent reservations, provider-pr.h; provider-jobs.c,
 * provider-jobnew.c and provider-jobsteps.c: jobs, provider-jobs.h;
 * provider-migrate.c, provider-migcopy.c and provider-mirror.c: live migration,
 * provider-migrate.h). Internal to scm-vdisk-provider. */
#pragma once
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scm/macro.h"
#include "scm/vdisk-provider.h"
#include "extents.h"
#include "iopool.h"
#include "provider-pr.h"
#include "vhdx.h"

#define BUFFER_SIZE (4u << 20)
#define HANDLES_MAX 64
#define CHAIN_BAT_MAX (32ull << 20)
#define GRANT_DISKS_MAX 32
#define GRANT_BYTES_MAX (256ull << 20)
/* An open reads and checks the chain's block tables on the loop (up to
 * CHAIN_BAT_MAX: 25 ms for 24 MiB on an idle machine, 500 ms on a busy
 * one), and every client waits behind it. Each client's opens are charged
 * the block table bytes they read, as a debt paid back at OPEN_RATE bytes
 * a second; while the debt is over OPEN_BURST its opens are refused
 * "busy". The burst lets a client open its whole GRANT_BYTES_MAX at once;
 * a client looping over opens gets OPEN_RATE, about a second of a busy
 * loop in twenty. (Bytes, not time: the same for every load, so a client
 * on a busy machine is not punished for the others.) */
#define OPEN_RATE (32ull << 20)
#define OPEN_BURST (GRANT_BYTES_MAX + CHAIN_BAT_MAX)

/* What one client (endpoint label and uid) holds, across its channels. */
struct account {
	struct account *next;
	char *caller;
	uid_t uid;
	unsigned handles;
	uint64_t bytes;
	uint64_t open_debt;   /* block table bytes owed for opens, see OPEN_RATE */
	uint64_t open_paid;   /* when the debt was last brought up to date (CLOCK_MONOTONIC ns) */
	unsigned connecting;  /* its opens and creates waiting for a remote parent (provider-remote.c) */
	unsigned rings;       /* its handles' read rings (provider-ring.c), at most RINGS_MAX */
	unsigned nbd_conns;   /* NBD connections served for its handles (provider-nbd.c) */
};

/* A read ring is VRING_SIZE of shared memory and a thread: a client gets
 * this many (an export's 8 lanes), beyond GRANT_BYTES_MAX; its other
 * handles read through calls. */
#define RINGS_MAX 8

/* Reads up to this size that the page cache holds are done on the loop: a
 * copy of 1 MiB takes about 0.1 ms, less than the hand-off to a worker and
 * back costs on a busy machine; a 4 MiB transfer goes to the pool. */
#define INLINE_READ_MAX (1u << 20)

struct disk {
	struct disk *next;
	dev_t dev;
	ino_t ino;
	char *path;
	vhdx *h;
	bool rw;          /* h is open read-write */
	unsigned users;   /* open handles, all channels */
	unsigned writers; /* of which writers */
	bool shared;      /* the writers opened it shared */
	uint64_t virtual_size;
	uint32_t sector_size;
	bool parallel_reads; /* no parent: reads may run side by side (vhdx.h) */
	unsigned jobs;       /* queued or running, until their reply went out */
	bool closing;        /* its engine handle is being closed on a worker */
	struct pr_disk *pr;  /* persistent reservations (provider-pr.c) */
	struct iopool_queue q;
	struct bjob *bjob;    /* the job running on it (provider-jobs.c), for the loop */
	struct bjob *bjob_io; /* the same, for writes on workers: set and cleared by its steps */
	/* a migration's switch-over removed its journal in this directory
	 * without waiting for the directory: the next flush (or the job's
	 * last step) makes that durable first (provider-migrate.c) */
	bool sync_pending;
	int sync_dirfd;
	int ho_idx; /* its index in a handover's saved state (provider-handover.c) */
	/* a mirror migration to an NBD export switched over: the export is
	 * the disk now, so writes here are refused (reads go on); the URI */
	char *moved_to;
};

/* provider-migrate.c: 0, or the fsync's error (any thread) */
int mig_commit_sync(struct disk *d);

struct handle {
	struct disk *d;
	bool rw;
	struct account *acct;
	uint64_t bytes; /* charged to acct */
	struct ring *ring; /* its read ring (provider-ring.c), or NULL */
};

struct channel {
	int memfd;
	uint8_t *buf;
	struct handle h[HANDLES_MAX]; /* index + 1 is the handle number */
	/* the granted directory, opened once: the prefix and its fd */
	char *root;
	char *root_real;
	int rootfd;
	unsigned jobs;                /* in flight: the buffer stays mapped */
	bool closed;                  /* the client is gone; free after the last job */
	unsigned nbd_conns;           /* NBD connections served for it (provider-nbd.c) */
};

struct allow_ctx {
	const scm_grant *g;
	const char *method;
	json_object *args; /* the call's other arguments; "path" is replaced */
	/* a remote parent connected off the loop for this call
	 * (provider-remote.c), which the scope's opener hands over */
	struct vhdx_remote *pre;
};

extern struct disk *disks;
extern unsigned channels_live; /* struct channel made and not freed */
extern scm_provider *provider;
extern bool pool_running;

DEFINE_TRIVIAL_CLEANUP(json_object *, json_object_put)

struct account *account_get(const scm_grant *g);
uint64_t mono_ns(void);
void account_release(struct account *acct, uint64_t bytes);
int fail(scm_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fail_chain(scm_call *call, int code, scm_error *cause, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int engine_code(int r);
/* The suffix when PATH names one of the provider's own state files (a
 * reservation state, a job journal, their temporary files), else NULL: no
 * disk is made under such a name, or the provider would believe it, or
 * replace it, as its own state. */
const char *state_file_suffix(const char *path);
struct channel *channel_get(scm_call *call);
void disk_free(struct disk *d);
struct job;
struct job *disk_put(struct disk *d);
struct job *disk_release(struct disk *d, bool rw);
void channel_put(struct channel *c);
struct handle *handle_get(scm_call *call, uint64_t n);

/* provider-scope.c */
bool scope_get(scm_call *call, struct channel *c, const char *method, struct allow_ctx *actx,
	       struct vhdx_scope *scope, bool *ret_scoped);
int scope_for(const scm_grant *g, struct channel *c, const char *method, struct allow_ctx *actx,
	      struct vhdx_scope *scope, bool *ret_scoped, scm_error **ret_err);

/* provider-recover.c: checkpoints, and the channels back after a crash
 * (docs/vdisk.md, "A crash of the provider") */
void rec_checkpoint(void);
/* A checkpoint's save starts (its fds are counted per client from here). */
void rec_save_begin(void);
struct json_object *rec_save_channel(const scm_grant *g, struct channel *c);
int rec_restore_channel(const scm_grant *g, struct json_object *saved, void **ret_chdata);
/* The granted directory of another path parameter (migrate's dest): 1 and
 * it opened O_PATH (*ret_fd, its path and canonical path, the caller's),
 * 0 when param is not constrained, <0 after replying. */
int scope_param(scm_call *call, const char *method, const char *param, int *ret_fd, char **ret_dir,
		char **ret_real);

struct nbd_uri;
struct nbd_parent_opts;
/* Is uri among the grant's nbd_parents? 0 and its parsed and canonical
 * forms and the grant's TLS settings (valid while the call is), or -errno. */
int remote_check(const struct allow_ctx *a, const char *uri, struct nbd_uri *ret_u, char **ret_canon,
		 struct nbd_parent_opts *ret_o, scm_error **ret_err);

/* Is uri among the grant's nbd_migrate_dests (a mirror migration to an
 * NBD export)? The same as remote_check otherwise, with the same TLS
 * settings. */
int dest_check(const scm_grant *g, const char *uri, struct nbd_uri *ret_u, char **ret_canon,
	       struct nbd_parent_opts *ret_o, scm_error **ret_err);

/* provider-remote.c: opens and creates of disks with a remote parent
 * connect from a thread, never on the loop. What to do again once
 * connected: */
struct remote_redo {
	bool create;
	const char *path;
	bool readonly, shared;                     /* open */
	uint64_t size, block_size, sector_size;    /* create */
	bool fixed;
	const char *parent;
};
/* Defers call and connects to uri (checked against the grant first) on a
 * thread; once connected, the loop runs the open or create again with the
 * reader in allow_ctx.pre. Always answers or defers the call. */
void remote_defer(scm_call *call, const struct allow_ctx *a, const char *uri, const struct remote_redo *redo);
/* Waits for the connecting threads (before the provider is freed). */
void remote_shutdown(void);
int do_open_pre(scm_call *call, const char *path, bool readonly, bool shared, struct vhdx_remote *pre);
int do_create_pre(scm_call *call, const char *path, uint64_t size, uint64_t block_size, uint64_t sector_size,
		  bool fixed, const char *parent, struct vhdx_remote *pre);

/* provider-handover.c: restarting the provider with its channels. Once
 * provider_handed_over is set (the old process, after its successor took
 * over), disks are freed without a commit or an unlock: the files are the
 * new process's. */
extern bool provider_handed_over;
int provider_handover_setup(scm_provider *p, scm_error **ret_err);

/* provider-io.c */
struct job *disk_close_submit(struct disk *d);
/* On a worker, inside a job of d's queue (exclusive for writes and
 * flushes): what the call of op does (the reservation asked again, a
 * migrated disk's refusal of writes, offload tokens, a copying job told).
 * 0, or -errno with *ret_err (may be NULL: -EBADE, a reservation
 * conflict). rw: the handle's mode (a flush of a read-only one is none). */
enum io_op { IO_READ, IO_WRITE, IO_FLUSH, IO_TRIM, IO_ZERO };
int io_work(struct disk *d, enum io_op op, uint8_t *buf, uint64_t off, uint64_t len, bool unmap, bool rw,
	    const char *nexus, scm_error **ret_err);

/* the handlers (stubs/idl/vdisk.json) */
int do_create(scm_call *call, const char *path, uint64_t size, uint64_t block_size, uint64_t sector_size,
	      bool fixed, const char *parent, void *ud);
int do_open(scm_call *call, const char *path, bool readonly, bool shared, void *ud);
int do_read(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, uint64_t buffer_offset, void *ud);
int do_write(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, uint64_t buffer_offset, void *ud);
int do_readv(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, void *ud);
int do_writev(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, void *ud);
int do_flush(scm_call *call, uint64_t handle, void *ud);
int do_trim(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, void *ud);
int do_info(scm_call *call, uint64_t handle, void *ud);
int do_close(scm_call *call, uint64_t handle, void *ud);
int do_zero(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, bool unmap, void *ud);
int do_extents(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, void *ud);
int do_ring(scm_call *call, uint64_t handle, void *ud);
int do_nbd_serve(scm_call *call, uint64_t handle, int conn, bool readonly, bool structured, uint64_t meta_id,
		 void *ud);
/* provider-nbd.c: ends the NBD connections a handle serves (waits for
 * their requests in flight), a channel's, or all (the provider ends) */
void nbd_stop_handle(struct handle *h);
void nbd_stop_channel(struct channel *c);
void nbd_stop_all(void);
/* ... across a handover: quiesce(true) parks every connection (stops
 * reading at a request boundary, its requests answered; the handover
 * waits), quiesce(false) reads again; save() checks that all are parked
 * (*ret_n: how many fds they add), save_channel() carries a channel's
 * (socket and what was agreed), restore_channel() adopts them. */
void nbd_quiesce(bool quiet);
int nbd_save_check(unsigned *ret_n, scm_error **ret_err);
json_object *nbd_save_channel(struct channel *c);
/* Ends the parked connections past the first keep (the state has no room
 * for their sockets): how many it ended. */
unsigned nbd_shed(unsigned keep);
void nbd_restore_channel(const scm_grant *g, struct channel *c, json_object *saved);
int do_migrated(scm_call *call, const char *path, bool clear, void *ud);
/* provider-migmark.c: an open of d (NULL: not held yet) at path for
 * writing, refused (true, after replying) when the disk was migrated to
 * an NBD export: its handles say so, or the mark beside it does. */
bool mig_mark_refused(scm_call *call, const struct disk *d, const char *path, const struct vhdx_scope *sp);
/* ... and a disk opened again for writing after a crash takes the mark
 * beside path into d->moved_to (provider-recover.c). */
void mig_mark_apply(struct disk *d, const char *path, const struct vhdx_scope *sp);
/* provider-ring.c: stops a handle's read ring (waits for the read it
 * serves), or a whole channel's; nothing when it has none */
void ring_stop(struct handle *h);
void ring_stop_channel(struct channel *c);
/* The ring's memfd of h, or -1 (for a checkpoint). */
int ring_fd(const struct handle *h);
/* A ring a crashed process served (its memfd, taken): marked stopped, the
 * reads it left handed back to the client (which sends them as calls). */
void ring_release(int memfd);
/* provider-open.c: handle slot of c is now d's, opened rw or not (shared:
 * with other writers), charged to acct. */
void handle_attach(struct channel *c, size_t slot, struct disk *d, bool rw, bool shared, struct account *acct);
/* provider-open.c: do two handles reach the same files, top to base? */
bool disk_same_chain(vhdx *a, vhdx *b);
/* provider-open.c: d, open for readers only so far, open read-write from
 * now on, one engine handle for all as ever: the file probe holds (a probe
 * of d's file, taken) opened again, scoped by sp. 0; 1 when the chain
 * changed meanwhile (d as it was); or the engine's -errno (*ret_err). */
int disk_open_rw(struct disk *d, vhdx *probe, const char *path, const struct vhdx_scope *sp, scm_error **ret_err);
/* provider-handover.c: the channel a saved state or a checkpoint names,
 * around its data buffer (what: "saved", "checkpointed"); NULL and *ret_r. */
struct channel *channel_adopt(const scm_grant *g, json_object *saved, const char *what, int *ret_r);
