/* provider-jobs.h: the vdisk provider's long operations (snapshot, commit,
 * compact, migrate) as jobs: provider-jobs.c keeps the table, the steering
 * methods and the loop's side; provider-jobstart.c the methods that start
 * a job and the journal read at a disk's first open; provider-jobnew.c
 * makes a job; provider-jobsteps.c does each step on a worker;
 * provider-migrate.c, provider-migcopy.c and provider-mirror.c are live
 * migration. */
#pragma once
#include "provider.h"
#include "vjob.h"

#define BJOB_CHUNK (1u << 20) /* bytes one copy step moves, and the dirty map's grain */

struct bjob {
	struct bjob *next;
	uint64_t id;
	enum vjob_kind kind;
	enum vjob_state state;
	struct disk *d;              /* while it runs (NULL once finished) */
	char *path, *target;         /* the disk as asked for; snapshot: the child; commit: the parent */
	char *name, *target_name;    /* their last components, in dirfd */
	int dirfd;                   /* the disk's directory: the journal lives there */
	json_object *args;           /* the starting call's arguments, for the grant checks */
	/* the scope the job opens files in (a copy of the starter's) */
	int rootfd;
	char *root, *root_real;
	struct vhdx_scope scope;
	bool scoped;
	uint64_t done, total, vsize;
	uint32_t block_size;
	uint64_t t_run, ns_run;      /* when it last started running; time spent running */
	scm_error *err;
	scm_call **waiters;
	size_t n_waiters;
	bool cancel_req, stepping;
	/* the step (provider-jobsteps.c), on a worker */
	struct iopool_job pj;
	scm_task task;
	/* STEP_SIDE (migrate): on the job's own queue, beside the disk's
	 * I/O (a flush of the destination, a throttle's wait) */
	enum { STEP_WORK, STEP_PERSIST, STEP_ROLLBACK, STEP_SIDE } op;
	bool persist;                /* write the journal first (state, progress) */
	enum vjob_state jstate;      /* the state the journal is to say */
	uint64_t cursor;             /* where the work goes on */
	int phase;                   /* commit: 0 first pass, 1 dirty passes */
	unsigned steps;
	vhdx *other;                 /* commit: the parent, read-write */
	uint8_t *dirty;              /* commit: BJOB_CHUNK pieces written since copied */
	uint64_t n_chunks;
	uint8_t *buf;                /* BJOB_CHUNK */
	bool complete, switched;     /* the work is over; the handles moved */
	bool rehomed;                /* the disk's identity follows the switch (loop) */
	int r;
	scm_error *serr;
	struct bmig *mig;            /* migrate: its own state (provider-migrate.c) */
	struct iopool_queue *mig_q;  /* migrate: the queue of its side steps */
	/* across a handover (provider-jobcarry.c) */
	bool held;                   /* a step of it holds the handover */
	bool parked;                 /* stopped at a safe point for a handover */
	json_object *final;          /* a finished job carried over: what it said */
};

extern struct bjob *bjobs;
extern uint64_t bjob_next_id;

/* test hook: $SCM_VDISK_JOB_STEP_US, a pause in each work step, so that a
 * test can pause, cancel or kill a job in the middle of a small disk */
extern unsigned bjob_step_us;
/* test hook: $SCM_VDISK_JOB_LIMIT (provider-jobsteps.c) */
bool bjob_limited(const struct bjob *b);
/* test hook: $SCM_VDISK_MIRQ_US, a pause before each client's write the
 * mirror migration's queue applies to DEST (provider-mirq.c), so that a
 * test can have the queue long while the copy's passes and the
 * switch-over meet it */
extern unsigned bjob_mirq_us;
/* reads the test hooks' variables: once, as the provider starts */
void bjob_hooks_init(void);

/* provider-jobsteps.c */
void bjob_step_run(struct iopool_job *pj);
int bjob_journal(struct bjob *b, enum vjob_state st, scm_error **ret_err);
/* marks [off, off + len) written since copied (the dirty map) */
void bjob_dirty(struct bjob *b, uint64_t off, uint64_t len);
/* provider-mirror.c: provider-io.c calls these on the disk's queue after
 * a client's write, trim or zero (buf: a write's data) and after its
 * flush succeeded on a disk with a job (b, or NULL): a mirror migration
 * applies it to its destination too, any other job marks the dirty map */
enum bjob_wop { BW_WRITE, BW_ZERO, BW_TRIM };
void bjob_written(struct bjob *b, enum bjob_wop op, const void *buf, uint64_t off, uint64_t len, bool unmap);
int bjob_flushed(struct bjob *b);

uint64_t bjob_dirty_next(const struct bjob *b, uint64_t from, uint64_t *count);

/* provider-jobstart.c: a disk's first open looks for a journal next to it */
void bjob_recover(struct disk *d, const struct vhdx_scope *scope);
/* fd is a file a job's vhdx_create left before it was done: one name, and
 * empty, zeros where the signature goes, or a VHDX (nothing written to it
 * yet but what create wrote) */
bool bjob_half_made(int fd);
void bjob_shutdown(void);
int do_snapshot(scm_call *call, const char *path, const char *new, void *ud);
int do_merge(scm_call *call, const char *path, const char *direction, void *ud);
int do_compact(scm_call *call, const char *path, void *ud);
int do_job_list(scm_call *call, void *ud);
int do_job_pause(scm_call *call, uint64_t id, void *ud);
int do_job_resume(scm_call *call, uint64_t id, void *ud);
int do_job_cancel(scm_call *call, uint64_t id, void *ud);
int do_job_wait(scm_call *call, uint64_t id, void *ud);
/* for provider-migrate.c: the job methods' common parts */
struct disk *bjob_disk_of(scm_call *call, const char *method, const char *path, json_object *args,
			  struct vhdx_scope *scope, bool *scoped);
struct bjob *bjob_new(struct disk *d, enum vjob_kind kind, const char *path, const char *target,
		      json_object *args, const struct vhdx_scope *scope, bool scoped, scm_error **ret_err);
void bjob_free(struct bjob *b);
int bjob_start_reply(scm_call *call, struct bjob *b, int (*reply)(scm_call *, uint64_t));
/* provider-jobs.c, for provider-jobstart.c: b listed and its first step
 * submitted (paused: only its journal written) */
void bjob_start(struct bjob *b, enum vjob_state st);
void bjob_submit(struct bjob *b, int op);
int bjob_journal_dir(const char *path, const struct vhdx_scope *scope, int *ret_fd, scm_error **ret_err);

json_object *bjob_json(const struct bjob *b);

/* provider-jobs.c, for provider-jobcarry.c: a job made from a handover's
 * state goes on (its first step once the provider serves); a finished one
 * listed again; the job waits a channel carried, answered once it serves */
void bjob_adopt(struct bjob *b, enum vjob_state st);
void bjob_link_finished(struct bjob *b);
void bjob_unpark(void);
void bjob_carry_waits_restore(json_object *arr);

/* provider-jobcarry.c: jobs across a handover */
bool bjob_holds(const struct bjob *b);    /* its steps hold a handover back */
bool bjob_parkable(const struct bjob *b); /* may stop here and be carried */
bool bjob_parking(void);                  /* a handover is quieting the provider */
void bjob_quiesce(bool quiet, void *userdata); /* scm_provider_on_quiesce's callback */
size_t bjob_carry_fds(const struct bjob *b);   /* fds its state takes */
json_object *bjob_carry_save(struct bjob *b, scm_error **ret_err);
json_object *bjob_carry_waits(uint64_t channel);
json_object *bjob_carry_save_all(void);
int bjob_carry_restore(struct disk *d, json_object *o, scm_error **ret_err);
void bjob_carry_restore_all(json_object *o);
/* provider-handover.c, for provider-jobcarry.c */
int ho_fd_add(json_object *o, const char *key, int fd, scm_error **ret_err);
int ho_take_file(json_object *o, const char *key, bool dir, int mode, scm_error **ret_err);
/* provider-jobcarry.c: bytes as a JSON hex string, and back (exactly n) */
json_object *ho_hex(const void *p, size_t n);
int ho_unhex(json_object *o, void *out, size_t n);
json_object *ho_save_vhdx(vhdx *h, scm_error **ret_err);
int ho_restore_vhdx(json_object *o, unsigned flags, vhdx **ret, scm_error **ret_err);

/* provider-migrate.c */
struct vjob_journal;
int do_migrate(scm_call *call, const char *path, const char *dest, const char *mode, uint64_t throttle,
	       uint64_t max_pause, void *ud);
int mig_step(struct bjob *b);           /* a work step, exclusive on the disk's queue */
void mig_side(struct bjob *b);          /* a side step */
int mig_rollback(struct bjob *b);       /* cancel or failure: the source as it was, dest gone */
void mig_next(struct bjob *b);          /* on the loop: submits the next step */
bool mig_write_pending(const struct bjob *b); /* pieces read, their side step to come */
bool mig_step_quick(const struct bjob *b);    /* its next work step may run on the loop */
void mig_json(const struct bjob *b, json_object *j);
void mig_free(struct bjob *b);
void mig_recover(struct disk *d, const struct vjob_journal *j, const struct vhdx_scope *scope, int dfd);
