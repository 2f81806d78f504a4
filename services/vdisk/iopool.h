/* iopool.h: the vdisk provider's worker threads, with one ordered queue per
 * disk.
 *
 * Jobs of one queue start in the order they were submitted. A "shared" job
 * (a read of a disk whose reads may run side by side, see vhdx.h) may run
 * beside the shared jobs started before it; any other job runs alone on its
 * queue, after everything before it finished and before anything after it
 * starts. So a read submitted after a write completed sees it, and a flush
 * covers every write submitted before it. Queues are served round robin:
 * one disk's backlog does not hold up another's. */
#pragma once
#include <stdbool.h>

struct iopool_job {
	struct iopool_job *next; /* private */
	bool shared;
	/* run: on a worker, does the work. done: on the same worker, after
	 * the queue was told the job finished: hands the result on (the vdisk
	 * provider posts it to its loop); the job may be freed from then on. */
	void (*run)(struct iopool_job *j);
	void (*done)(struct iopool_job *j);
};

/* iopool_hold()'s job: it holds a worker, exclusive on its queue, until
 * iopool_release(). */
struct iopool_barrier {
	struct iopool_job pj;
	bool running, released;
	bool busy; /* from iopool_hold() until its worker is done with it */
};

struct iopool_queue {
	/* private; zero-initialised is an idle queue */
	struct iopool_job *head, *tail;
	unsigned running_shared;
	bool running_excl, ready;
	struct iopool_queue *rnext, *rprev;
	struct iopool_barrier barrier;
};

/* Starts n worker threads (1..64), named "vdisk-io". Returns 0 or -errno. */
int iopool_start(unsigned n);
/* Where the workers run (provider-migside.c keeps them off a
 * migration's CPUs): due, if set, is asked by each worker when it starts
 * and each time it wakes for work, under the pool's lock (it must be a
 * quick look, taking no lock); when it says so, the worker lets go of the
 * lock, runs place, and looks for work again. Set before iopool_start.
 * iopool_poke wakes every idle worker, so that each asks due now. */
void iopool_set_place(bool (*due)(void), void (*place)(void));
void iopool_poke(void);
/* Queues j on q. The caller keeps q alive until every job it submitted is
 * done. */
void iopool_submit(struct iopool_queue *q, struct iopool_job *j);
/* True when a shared job submitted now would start at once, with nothing
 * before it: the caller may then do that job's work itself (it must be the
 * only submitter of q, so nothing can be queued meanwhile). */
bool iopool_shared_now(struct iopool_queue *q);
/* From any thread: when a shared job submitted now would start at once,
 * counts the caller as one running (true); it does the job's work itself,
 * then iopool_leave_shared(). False: nothing changed, submit a job. */
bool iopool_enter_shared(struct iopool_queue *q);
void iopool_leave_shared(struct iopool_queue *q);
/* True when nothing is queued or running on q: an exclusive job submitted
 * now would start at once; its submitter (the only one of q, as above)
 * may do a short one's work itself. */
bool iopool_idle_now(struct iopool_queue *q);
/* True when a job is queued on q, waiting: a long exclusive job running
 * on q may end early to let it start. */
bool iopool_waiting(struct iopool_queue *q);
/* Waits until q has nothing queued or running (blocks the caller). Only
 * for a queue nothing else enters: a read ring's reads keep coming, and
 * can keep it from ever being idle (use iopool_fence() or iopool_hold()). */
void iopool_drain(struct iopool_queue *q);
/* Queues an exclusive job that does nothing but wait, and waits until it
 * runs: then nothing else runs on q (what was queued before is done, what
 * comes after waits, iopool_enter_shared() says no) until
 * iopool_release(). For the one submitter of q to change what its jobs
 * use (a disk's engine handle) while other threads (a read ring) may
 * enter q, which iopool_drain() cannot keep out. One hold at a time. */
void iopool_hold(struct iopool_queue *q);
void iopool_release(struct iopool_queue *q);
/* Waits until everything queued or running on q when it was called is
 * done (iopool_hold() then iopool_release()): what comes after, a read
 * ring's reads too, waits behind it, so it cannot be starved. */
void iopool_fence(struct iopool_queue *q);
/* Like iopool_idle_now(), and when true the caller runs as q's exclusive
 * job until iopool_end_inline(): nothing else starts or enters. */
bool iopool_try_inline(struct iopool_queue *q);
void iopool_end_inline(struct iopool_queue *q);
/* Waits for every queue to drain, then stops the workers. */
void iopool_stop(void);
