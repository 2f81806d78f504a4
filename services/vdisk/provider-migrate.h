/* provider-migrate.h: live migration's own state, shared by
 * provider-migrate.c (the method, the phases, the switch-over),
 * provider-migcopy.c (copying a piece, the correspondence record, folding
 * a child back, recovery) and provider-mirror.c (clients' writes applied
 * to the destination too). Internal to scm-vdisk-provider. */
#pragma once
#include <linux/aio_abi.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "nbd-uri.h"
#include "provider-jobs.h"
#include "scm-internal/error.h"

#define MIG_PASSES_MAX 16        /* dirty passes before switching over anyway */
#define MIG_PASSES_EAGER 4       /* dirty passes aiming at none left, before what fits in max_pause will do */
#define MIG_MAX_PAUSE_MS 10      /* the default --max-pause */
#define MIG_SCAN_MAX 256         /* pieces one step may look at without copying */
#define MIG_BATCH_MAX 8          /* pieces of data one copy step may move */
#define MIG_HASH_BUFS 3          /* batch buffers: the copy's, and those awaiting their hash */
#define MIG_HASH_STEP (256u << 10) /* hashed between two breathers (mig_breathe) */
#define MIG_BATCH_NS 20000000ull /* and no more once a step has run this long */
#define MIG_WRITEBACK (64u << 20) /* copied bytes after which dest's early flush is asked for */
#define MIG_MIRQ_BYTES (4u << 20) /* clients' writes queued for dest before a client waits (provider-mirq.c) */
#define MIG_CHILD_SUFFIX ".migrate.avhdx" /* snapshot mode: the child beside the disk */
#define MIG_REC_SUFFIX ".scm-map"         /* the correspondence record beside dest */
#define MIG_NEW_SUFFIX ".scm-new"         /* dest while it is being made */
#define MIG_REC_VERSION 1

enum mig_phase { MP_CREATE, MP_SNAP, MP_COPY, MP_REPARENT, MP_COMMIT, MP_DIRTY, MP_SWITCH, MP_FINAL };
enum mig_side { SIDE_NONE, SIDE_CREATE, SIDE_SLEEP, SIDE_FLUSH, SIDE_FINAL, SIDE_WRITE };

/* What the destination holds of one BJOB_CHUNK piece, as copied.
 * REC_HASHING: the bytes the copy wrote, their hash still being made by
 * the job's hasher (provider-mighash.c); like REC_UNKNOWN to everyone
 * else (it vouches for nothing), and never carried to a successor.
 * REC_LATER (mirror mode of a disk without parent, m->hash_later): dest
 * holds data there, whatever the disk holds at the switch-over; hashed
 * from the disk's old file after the job (provider-miglater.c); like
 * REC_UNKNOWN until then. */
enum { REC_UNKNOWN, REC_NONE, REC_ZERO, REC_DATA, REC_HASHING, REC_LATER };
struct mig_rec {
	uint8_t st;
	uint8_t hash[32]; /* SHA-256 of the piece's contents */
};
/* Does the entry's hash say what dest holds there? */
static inline bool mig_rec_known(uint8_t st)
{
	return st == REC_NONE || st == REC_ZERO || st == REC_DATA;
}

/* The job's hasher (provider-mighash.c): a thread that makes the record's
 * hashes of the pieces the copy wrote where dest held nothing it knew, off
 * the copy's path. The side step hands it its batch buffer once the
 * writes are done and takes a free one; the hasher sets each entry (if no
 * write changed the piece since: its sequence number) and frees the
 * buffer. Its queue and buffers are under hlock; the record under dlock. */
struct mig_hbatch {
	uint8_t *buf;
	unsigned n;
	struct { uint64_t c; uint32_t seq, len; uint8_t slot; } p[MIG_BATCH_MAX];
};
struct mig_hasher {
	pthread_mutex_t hlock;
	pthread_cond_t hcond;   /* a batch queued, one done, or stop */
	pthread_t thread;
	bool started, stop;
	uint8_t *bufs[MIG_HASH_BUFS];
	uint8_t *free[MIG_HASH_BUFS];
	unsigned n_free;
	struct mig_hbatch q[MIG_HASH_BUFS]; /* FIFO: head, count */
	unsigned head, count;
	uint64_t busy_ns, wait_ns; /* its hashing; the copy's hashing in its stead, and waits for it */
};

/* The job's early flushes of dest (provider-migflush.c): a thread that
 * fdatasyncs dest's file (and in mirror mode the source's) when the copy
 * asks, beside it, through open files of its own. Under lock. */
struct mig_flusher {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop, want, busy;
	int fd[2];              /* dest's, the source's (-1: none) */
	uint64_t ns;            /* time in its flushes */
	unsigned n;             /* flushes done */
};

/* Clients' writes mirrored to dest behind their reply (provider-mirq.c),
 * in mirror mode to a file: a FIFO of copies applied by a thread of the
 * job. Under lock. */
/* The thread the copy's writes run on (provider-migside.c), SCHED_BATCH,
 * at nice 19 in mirror mode to a file. want: a batch handed to it, until
 * done. Under lock. */
struct mig_sider {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop, want;
};

struct mig_mentry;
struct mig_mirq {
	pthread_mutex_t lock;
	pthread_cond_t cond;    /* queued, applied or dropped (room, a flush's wait), stop */
	pthread_t thread;
	bool started, stop, discard;
	struct mig_mentry *head, *tail;
	uint64_t bytes, seq;    /* queued (and being applied); the last entry's number */
	bool applying, raced;   /* an entry out of the queue, in dest's write; a piece of it taken meanwhile */
	uint64_t a_seq, a_c0, a_c1; /* its number and pieces */
	uint64_t waits, dropped; /* pushes that waited for room; bytes the copy carried instead */
};

struct bmig {
	bool snapshot;
	enum mig_phase phase;
	enum mig_side side, side_run;
	uint64_t throttle;      /* bytes a second, 0: none */
	uint64_t max_pause_us;
	unsigned passes;
	uint64_t copied, skipped, pause_us, slept_us, dirty_bytes;
	uint64_t pause_wait_us, pause_flush_us; /* parts of pause_us: in-flight requests; flushing dest */
	uint64_t copy_ns, copy_bytes; /* time spent copying data: the rate estimate */
	uint64_t tb_last;       /* the throttle's bucket: last refill (ns), tokens (bytes) */
	int64_t tokens;
	uint64_t sleep_us;
	uint64_t t_submit;      /* when the switch-over step was queued (loop) */
	int pending_r;          /* a side step's failure, for the next work step */
	scm_error *pending_err;
	struct iopool_queue q;  /* side steps */
	/* the destination: its grant's directory, its own directory */
	struct vhdx_scope dscope;
	bool dscoped, dest_made, reuse; /* reuse: dest existed, a record vouches for it */
	int drootfd, ddirfd;
	char *droot, *droot_real, *dname;
	uint32_t block_size, lsec, psec;
	bool fixed;
	vhdx_guid dwg, page83;
	vhdx_guid src_dwg, dst_dwg; /* both files' DataWriteGuids at the switch-over */
	/* snapshot mode: the child that takes the writes while the parent is copied */
	char *child, *child_name;
	bool child_made;
	vhdx *old;              /* after the switch: the disk's old handle, closed by the last step */
	struct mig_rec *rec;    /* per piece */
	uint32_t *rseq;         /* per piece: bumped each time the copy hands it to the hasher */
	struct mig_hasher hs;
	/* active mirroring (provider-mirror.c): dlock serialises the
	 * destination's handle between clients' mirrored writes and flushes
	 * (on the disk's queue) and the side step's flush (beside it) */
	pthread_mutex_t dlock;
	bool dest_unflushed;    /* the job wrote dest since its last flush */
	uint64_t mirrored;      /* bytes of clients' writes applied to dest too */
	uint64_t switch_bytes;  /* copied in the switch-over's pause */
	uint64_t wb_mark;       /* m->copied when dest's early flush was last asked for */
	bool hash_later;        /* the record's hashes made after the job (provider-miglater.c) */
	bool renewed;           /* dest's DataWriteGuid renewed before the switch-over (provider-mirror.c) */
	bool renewed_in_pause;  /* ... in the switch-over's pause (the disk's first write came after the flush) */
	bool cpus_held;         /* mig_cpus_hold: from mig_init to the job's end */
	struct mig_flusher fl;
	struct mig_mirq mq;
	struct mig_sider sd;
	uint64_t flush_us, final_us; /* side steps: flushing dest before the switch; the last step */
	/* where the time went (the bench's breakdown): steps and side steps
	 * run, time hashing, time steps spent queued before they started */
	uint64_t n_side, hash_ns, queued_ns, t_queued;
	/* the copy passes in two halves (provider-migcopy.c): a step on the
	 * disk's queue takes pieces (dirty bit cleared, marked in flight) and
	 * reads into wbuf only what it cannot leave to the side step (a
	 * chain's data); the side step after it reads the rest straight from
	 * the source's file (pread at the block's place, beside the disk's
	 * I/O: a client's write meanwhile marks the piece dirty again, as in
	 * qemu's mirror), writes them to dest through dfd (O_DIRECT where the
	 * file system has it), hashes them, and clears their in-flight bits.
	 * A client's write to a piece in flight, or (first pass) one the copy
	 * has not taken yet, only marks the dirty map; elsewhere it mirrors. */
	uint8_t *wbuf;          /* MIG_BATCH_MAX pieces, 4 KiB aligned: one of hs.bufs */
	struct mig_pend {
		uint64_t c;
		uint64_t foff;    /* deferred: where its bytes lie in rfd */
		int rfd;          /* >= 0: the side step reads it (the source's file, no chain) */
		uint8_t cl, slot; /* its class (CL_*); where its data is in wbuf */
	} wpend[MIG_SCAN_MAX];
	unsigned n_wpend;
	uint8_t *inflight;      /* per piece: taken by a step, not yet in dest (set on the disk's queue, cleared under dlock) */
	bool direct;            /* dfd was opened O_DIRECT */
	uint64_t redirtied;     /* clients' writes to a piece in flight: marked dirty, not held */
	/* after MIG_PASSES_EAGER dirty passes such a write waits for the side
	 * step instead (then mirrors), so a writer cannot keep the passes
	 * from converging: pcond (with dlock) says pieces left flight, or the
	 * side step failed (wfail) */
	pthread_cond_t pcond;
	bool wfail;
	uint64_t held;
	uint64_t side_read_ns;  /* the side steps' reads of the source */
	uint64_t write_wait_ns; /* the side steps' waits for their writes to dest */
	int dfd;                /* dest for the side step's writes, or -1: dest's own fd */
	aio_context_t aio;      /* for dfd: a piece's write in flight while it is hashed (0: none) */
	bool aio_lost;          /* waiting for dfd's writes failed: some may still be in flight */
	enum mig_side side_also; /* a side step the write step does after its own */
	uint8_t zero_hash[32];
	/* the destination is an NBD export (provider-mignbd.c): b->target is
	 * its canonical URI, b->other stays NULL, nbd is the connection
	 * (set under dlock once made); rec says what the export reads as */
	bool to_nbd;
	struct nbd_uri nbd_u;
	char *nbd_certs, *nbd_psk, *nbd_user; /* the grant's TLS settings */
	struct mig_nbd *nbd;
};

/* provider-migrate.c: a new job's migration state (no fds, lock and
 * condition made, b->mig_q set) */
void mig_init(struct bjob *b, struct bmig *m);
/* provider-migrate.c: dest made (or an existing copy opened), a side step */
int mig_create(struct bjob *b);
/* provider-mirror.c: the copy's own fd of dest opened (m->dfd, m->aio;
 * both unset when O_DIRECT or AIO is not to be had), and closed (no
 * write of it in flight) */
void mig_direct_open(struct bmig *m, vhdx *dst);
void mig_direct_close(struct bmig *m);
/* provider-mirror.c: should dest's DataWriteGuid be renewed now, before
 * it becomes the disk (mirror mode to a file, the disk written in this
 * session: its DataWriteGuid renewed by its own writes, so no child or
 * record can know that value from before; dest not renewed yet)? */
bool mig_renew_due(const struct bjob *b);

/* provider-mignbd.c: an NBD destination. mig_is_nbd: does dest name one
 * (an nbd, nbds, nbd+unix or nbds+unix URI)? mig_nbd_open: connected
 * (its first side step), checked, its zeros known; error in b->serr.
 * mig_dest_state: what the destination holds of piece c, as a VHDX_PB_*
 * (a file's block state; an export's: ZERO where it reads zeros, else
 * FULLY_PRESENT). The rest: the export's requests, errors into *err. */
struct mig_nbd;
bool mig_is_nbd(const char *dest);
/* On the loop, at the method: dest (an NBD URI) checked (mirror mode, the
 * grant's nbd_migrate_dests, TLS material for nbds), m->nbd_u and the TLS
 * settings kept, b->target made the canonical URI; <0 after replying. */
int mig_nbd_dest(scm_call *call, struct bjob *b, const char *dest);
int mig_nbd_open(struct bjob *b);
void mig_nbd_close(struct mig_nbd *n);
int mig_dest_state(struct bjob *b, uint64_t c);
int mig_nbd_write(struct bjob *b, const void *buf, uint64_t len, uint64_t off, scm_error **err);
int mig_nbd_zeroes(struct bjob *b, uint64_t len, uint64_t off, bool unmap, scm_error **err);
int mig_nbd_flush(struct bjob *b, scm_error **err);
/* How often the connection was made again after it was lost (0 for a
 * file): what was written since the last flush before it is dirty again. */
unsigned mig_nbd_gen(struct bjob *b);
/* provider-migmark.c: the mark a migration to an export leaves. prepare:
 * written and fsynced as DISK.job.mark (the job's first step; error in
 * b->serr); commit: renamed over the journal at the switch-over (0 or
 * -errno); drop: a rolled back migration's removed. */
int mig_mark_prepare(struct bjob *b);
int mig_mark_commit(struct bjob *b);
void mig_mark_drop(int dirfd, const char *disk_name);

/* Piece c: its bytes (the last may be short) and the block holding it. */
struct mig_piece { uint64_t off, len, bstart, blen; };
static inline struct mig_piece mig_piece_of(const struct bjob *b, uint64_t c)
{
	uint64_t bs = b->mig->block_size, off = c * BJOB_CHUNK, bstart = off / bs * bs;
	return (struct mig_piece){ off, b->vsize - off < BJOB_CHUNK ? b->vsize - off : BJOB_CHUNK, bstart,
				   b->vsize - bstart < bs ? b->vsize - bstart : bs };
}
static inline bool mig_all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}
static inline bool mig_inflight(const struct bmig *m, uint64_t c)
{
	/* (read by a client's write without dlock: provider-mirror.c) */
	return __atomic_load_n(&m->inflight[c / 8], __ATOMIC_ACQUIRE) & (1u << (c % 8));
}

/* provider-mirq.c: mig_mirq_on: is it used (mirror mode to a file)?
 * mig_mirq_setup (mig_init): its lock. push: a client's write or zeroing (op a bjob_wop) of
 * a settled piece queued for dest (its thread started when needed);
 * false: not queued (no memory, stopping), the caller marks it dirty.
 * take: piece c taken by the copy (on the disk's queue): queued writes to
 * it dropped, one being applied makes it dirty again once it landed.
 * wait: every write queued so far applied (a client's flush, the flush
 * before the switch-over). stop: its thread gone, the rest applied
 * (apply_rest) or dropped; a later push starts it again. free: stopped,
 * dropped, its lock gone. */
/* provider-migside.c: mig_sider_setup (mig_init): its lock.
 * mig_write_beside: the side step's writes of the pieces the last step
 * took (mig_write_pieces), on the job's copy thread (made when first
 * needed), waited for. free: the thread gone (no step running), its lock
 * too. */
void mig_sider_setup(struct mig_sider *s);
void mig_write_beside(struct bjob *b);
void mig_sider_free(struct bmig *m);
/* mig_cpus: the CPUs the job's own threads run on (provider-migside.c's
 * opening comment), false when they run where the provider may (it may
 * use one CPU, or its mask cannot be read). mig_cpus_enter: the calling
 * thread moved onto them. mig_cpus_text: them as a list ("1", "6-7"),
 * empty when false, cut at the last whole range that fits; buf returned. */
bool mig_cpus(cpu_set_t *ret);
void mig_cpus_enter(void);
/* A thread of the job's own, as it starts: confined (mig_cpus_enter),
 * then named (a thread found by its name is confined already). */
void mig_thread_begin(const char *name);
char *mig_cpus_text(char *buf, size_t size);
/* mig_cpus_hold: a migration's threads may run from now (*held set; a
 * second hold of the same flag is none); release: they have stopped.
 * While one is held, the pool's workers keep off mig_cpus:
 * mig_cpus_worker_due and mig_cpus_worker are the pool's placement
 * hooks (iopool_set_place). */
void mig_cpus_hold(bool *held);
void mig_cpus_release(bool *held);
bool mig_cpus_worker_due(void);
void mig_cpus_worker(void);
bool mig_mirq_on(const struct bmig *m);
void mig_mirq_setup(struct mig_mirq *q);
bool mig_mirq_push(struct bjob *b, int op, const void *buf, uint64_t off, uint64_t len, bool unmap);
void mig_mirq_take(struct bjob *b, uint64_t c);
void mig_mirq_wait(struct bjob *b);
void mig_mirq_stop(struct bjob *b, bool apply_rest);
void mig_mirq_free(struct bjob *b);

/* provider-mighash.c: the hasher. mig_hash_setup: its lock (mig_init);
 * mig_hash_alloc: its buffers (m->wbuf set) and the pieces' sequence
 * numbers; -ENOMEM. mig_hash_batch: the side step's new pieces (their
 * entries REC_HASHING, their seq bumped under dlock) handed over with
 * m->wbuf, which becomes a free buffer (waiting for one; the thread
 * started the first time, or the batch hashed there and then when it
 * cannot be). mig_hash_drain: waits until every batch handed over is
 * hashed. mig_hash_free: the thread stopped and joined (what it had not
 * hashed stays REC_HASHING), the buffers freed. mig_hash_start: the
 * thread started now, if not yet (from a worker: a thread inherits its
 * maker's priority, and the copy's thread runs at nice 19). */
void mig_hash_setup(struct bmig *m);
/* The calling thread off the CPU for a moment (a 20 us sleep): a
 * thread of any process waiting for this CPU runs first. (sched_yield
 * lets only this process's threads by: the scheduler picks among groups
 * first, and the provider's group keeps the CPU.) */
void mig_breathe(void);
/* mig_sha256, off the CPU for a moment (mig_breathe) after each
 * MIG_HASH_STEP bytes. */
void mig_sha256_paced(const uint8_t *buf, size_t len, uint8_t out[32]);
int mig_hash_alloc(struct bmig *m, uint64_t n_chunks);
void mig_hash_batch(struct bmig *m, const struct mig_hbatch *hb);
void mig_hash_start(struct bmig *m);
void mig_hash_drain(struct bmig *m);
void mig_hash_free(struct bmig *m);
/* The time spent hashing (inline and the hasher's) and waiting for the
 * hasher, for the status. */
uint64_t mig_hash_ns(const struct bmig *m);
uint64_t mig_hash_wait_ns(const struct bmig *m);

/* provider-migflush.c: the early flushes. setup: its lock (mig_init);
 * kick: a flush of dest_fd and src_fd (either -1: none) asked for, the
 * thread started (with open files of its own) the first time, nothing when
 * one is running; start: the thread started (as kick's first time) with
 * no flush asked for (from a worker, as mig_hash_start); stop: the thread
 * stopped and joined (a flush under way finished) and its descriptors
 * closed, before either file is (no more after it); free: stopped, its
 * lock gone (mig_free). */
void mig_flush_setup(struct mig_flusher *fl);
void mig_flush_kick(struct mig_flusher *fl, int dest_fd, int src_fd);
void mig_flush_start(struct mig_flusher *fl, int dest_fd, int src_fd);
void mig_flush_stop(struct mig_flusher *fl);
void mig_flush_free(struct mig_flusher *fl);
/* fd's file fdatasynced through an open file of its own (a writeback
 * error reported there leaves the engine's open file to report it too);
 * 0 or -errno. */
int mig_fdatasync_beside(int fd);

/* provider-migcopy.c */
void mig_sha256(const void *buf, size_t len, uint8_t out[32]);
/* The class (CL_*) of the piece at off: the first file of h's chain that
 * decides. */
int mig_chunk_class(vhdx *h, uint64_t off);
/* The throttle's bucket takes bytes: a SIDE_SLEEP when it runs dry. */
void mig_throttle_take(struct bmig *m, uint64_t bytes);
/* The hash of len zero bytes (buf: BJOB_CHUNK of room). */
void mig_zero_hash(const struct bmig *m, uint8_t *buf, uint64_t len, uint8_t out[32]);
/* r, with dest's error chain as the job's. */
int mig_dst_fail(struct bjob *b, int r);
/* A piece of class zero or none (dst_st: its dest block's state): dest
 * made to read zeros there, its record entry set. */
int mig_no_data(struct bjob *b, uint64_t c, int cl, int dst_st);
/* The piece c of src (read through its chain) into the destination
 * (b->other), as the piece's class says; clear: the dirty bit first. */
int mig_copy_chunk(struct bjob *b, vhdx *src, uint64_t c, bool clear);
/* provider-migpiece.c: a copy pass's halves. Piece c of src taken (its
 * dirty bit cleared first when clear, marked in flight) and queued for
 * the side step, its data read into wbuf's slot now only when the side
 * step cannot read it from src's file, on the disk's queue; then, beside
 * it, every queued piece into dest. Returns the piece's class (data: it
 * took the slot), or -errno. */
int mig_read_piece(struct bjob *b, vhdx *src, uint64_t c, bool clear, unsigned slot);
void mig_write_pieces(struct bjob *b);
/* The steps on the disk's queue that take pieces: a pass over every piece
 * from the cursor (own: only those the top file of src holds itself;
 * base: added to the progress), and the dirty passes, which decide the
 * switch-over too. */
int mig_copy_pass(struct bjob *b, vhdx *src, bool clear, bool own, uint64_t base);
int mig_dirty_step(struct bjob *b);
enum { CL_NONE, CL_ZERO, CL_DATA };
/* Does the top file of h hold anything of piece c itself? */
int mig_own(vhdx *h, uint64_t vsize, uint64_t c, bool *ret);
/* What child holds itself (data, ZERO) written into into. */
int mig_fold(vhdx *child, vhdx *into, uint64_t vsize, uint8_t *buf);
/* The correspondence record beside the destination: its lines
 * (mig_record_map; later: the REC_LATER pieces' too, flagged), written
 * (mig_record_put), or both at once (mig_record_write). */
struct vmap;
int mig_record_map(struct bjob *b, struct vmap *map, bool **later, scm_error **ret_err);
int mig_record_put(int ddirfd, const char *dname, const struct vmap *map, scm_error **ret_err);
int mig_record_write(struct bjob *b, scm_error **ret_err);
/* Mirror mode's record after the job (provider-miglater.c). Whether this
 * job leaves its hashes for then (m->hash_later: a disk without parent,
 * mirrored to a file); the last step's hand-off of the record and of the
 * disk's old handle (m->old, closed by the writer first); whether the
 * writer of the record that would vouch for target, for a migration of
 * path back to it, is still at work, and a wait for it; a wait of at
 * most ms for every writer (a provider stopping), saying how many are
 * still at work. */
void mig_later_decide(struct bjob *b);
void mig_later_start(struct bjob *b);
bool mig_later_pending(const char *path, const char *target);
void mig_later_wait(const char *path, const char *target);
unsigned mig_later_drain(unsigned ms);
/* dest exists (din: what it says): 0 when a correspondence record (beside
 * it or beside the disk) vouches for what it holds, which then fills
 * m->rec; -EEXIST saying why not. */
struct vhdx_info;
int mig_reuse(struct bjob *b, const struct vhdx_info *din, scm_error **ret_err);
