/* provider-offload-copy.h: an offload copy (offload_write) as its two
 * halves share it: the loop's side (provider-offload-copy.c: the token
 * redeemed, the reserve and the commit on the disk's queue, the reply, the
 * job list) and the staging thread (provider-offload-stage.c). Internal to
 * scm-vdisk-provider. */
#pragma once
#include <stdatomic.h>

#include "provider-jobs.h"
#include "provider-offload.h"

#define COPY_CHUNK (4u << 20)

struct ocopy {
	struct iopool_job pj; /* the commit, on the destination's queue */
	scm_task task;
	scm_call *call;
	struct channel *c;
	struct disk *d;
	char hex[OFFLOAD_TOKEN_HEX + 1];
	char nexus[VDISK_PR_NEXUS_MAX];
	uint64_t dst, length;
	uint64_t chan_id;
	int chfd, tmp;
	int chsock; /* the token channel's socket while the thread has it (th_lock) */
	/* the whole destination blocks [a, b) of the range are copied into
	 * space reserved past the disk's blocks (res, through rfd) and adopted
	 * by the block table at commit: one copy, out of sight until then */
	uint64_t a, b, res;
	int rfd;
	vhdx *rh; /* the engine handle the space was reserved in */
	bool adopted;
	struct iopool_job rpj;
	scm_task rtask;
	uint64_t (*ex)[3]; /* staged: {offset, length, zero} */
	size_t n_ex, cap;
	uint64_t data, zero;
	const char *how, *mode;
	atomic_bool staged;
	/* as a job: the list (loop), progress and cancel (both threads) */
	struct ocopy *next;
	uint64_t id, t0;
	char *caller, *source;
	uid_t uid;
	_Atomic uint64_t done;
	atomic_bool cancel;
	int code;
	scm_error *err;
};

/* the copies running, on the loop (offload_shutdown walks it under the
 * staging threads' lock) */
extern struct ocopy *ocopies;
/* test hook: $SCM_VDISK_OFFLOAD_STEP_US, a pause per staged MiB */
extern unsigned ocopy_step_us;

/* provider-offload-copy.c: o fails (the call's error reply) and is freed */
void ocopy_fail(struct ocopy *o, int code, scm_error *e, const char *what);
/* provider-offload-stage.c: step 3, o's staging thread started; it posts
 * o->task to the loop when done */
void ocopy_stage_start(struct ocopy *o);
