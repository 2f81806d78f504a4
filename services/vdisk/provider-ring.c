/* provider-ring.c: the read ring of a handle (vring.h, docs/vdisk.md "The
 * read ring"): reads a client puts in shared memory, served by a thread of
 * the provider without a frame, JSON or the loop per request.
 *
 * The ring is opened through a checked call (ring: the handle is the
 * channel's, the grant allows the method, the reservation allows reads)
 * and serves that handle's reads only. Every request is checked again
 * from the fields it holds (vring_entry_parse, each read once: the client
 * may change them under us), and against the reservation as a queued read
 * is (pr_check). A read runs as one of the disk queue's shared jobs would:
 * beside other reads, never beside a write or a chain change
 * (iopool_enter_shared), or queued behind them as a job when the queue is
 * busy. The ring stops (its header says so, the client goes on with calls)
 * when its handle is closed, its channel closes or the provider is handed
 * over; stopping waits for a read the thread does itself in the queue, a
 * local one (a disk with a parent, possibly remote, has no ring), never
 * for one it queued as a job: that one is left to its worker. After a crash the ring's memory
 * is in the checkpoint (provider-recover.c): the new process marks it
 * stopped and hands back every read the dead one left, so the client
 * sends them as calls. */
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "provider.h"
#include "vring.h"

struct ring {
	struct vring_hdr *hdr;
	uint8_t *data;
	int memfd, efd;
	int stopfd; /* ours alone: the client can read efd, and eat a wake-up */
	struct disk *d;
	struct vring_limits lim;
	char nexus[VDISK_PR_NEXUS_MAX];
	pthread_t th;
	atomic_bool stop;
	uint64_t spin_ns;
	/* the owner (the handle), the thread, and each read queued as a job:
	 * the last one frees the ring (ring_put) */
	atomic_uint refs;
	pthread_mutex_t mu; /* stop's effect on the thread; a queued read's end */
	pthread_cond_t cv;
	bool inside; /* the thread reads in the disk's queue itself (mu) */
};

/* On the heap: a thread told to stop leaves it behind (abandoned), and
 * the worker that runs it frees it. */
struct ring_job {
	struct iopool_job pj;
	struct ring *r;
	uint8_t *buf;
	uint32_t len;
	uint64_t off;
	int res;
	bool done, abandoned; /* mu */
};

static void ring_put(struct ring *r)
{
	if (atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	munmap(r->hdr, VRING_SIZE);
	close(r->memfd);
	close(r->efd);
	close(r->stopfd);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}

/* The reservation asked again where the read runs, as job_run does: a
 * PREEMPT AND ABORT answered since serve() checked it fenced the queue,
 * and a victim's read must not land after it. */
static int checked_read(struct ring *r, uint8_t *buf, uint32_t len, uint64_t off)
{
	if (pr_check(r->d->pr, r->nexus, false) < 0)
		return -EBADE;
	return vhdx_read(r->d->h, buf, len, off);
}

static void rjob_run(struct iopool_job *pj)
{
	struct ring_job *j = (struct ring_job *)pj;
	/* stopped: nobody waits for it (the disk is still there: its close
	 * is queued behind this) */
	j->res = atomic_load(&j->r->stop) ? -ESHUTDOWN : checked_read(j->r, j->buf, j->len, j->off);
}

static void rjob_done(struct iopool_job *pj)
{
	struct ring_job *j = (struct ring_job *)pj;
	struct ring *r = j->r;
	pthread_mutex_lock(&r->mu);
	bool abandoned = j->abandoned;
	j->done = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (abandoned) {
		free(j);
		ring_put(r);
	}
}

/* The read, as a shared job of the disk's queue would do it. The disk is
 * touched only with mu held and stop not set, or while inside says so, or
 * by a job queued then: ring_stop() waits for none of it but inside (one
 * local read: a disk with a ring has no parent), so the loop never waits
 * for the queue, where a write may wait for a slow network (a migration's
 * export); after it returns, the thread adds nothing to the queue, and
 * what it queued before runs ahead of the disk's close. */
static int ring_read(struct ring *r, uint8_t *buf, uint32_t len, uint64_t off)
{
	struct disk *d = r->d;
	pthread_mutex_lock(&r->mu);
	if (atomic_load(&r->stop)) {
		pthread_mutex_unlock(&r->mu);
		return -ESHUTDOWN;
	}
	if (iopool_enter_shared(&d->q)) {
		r->inside = true;
		pthread_mutex_unlock(&r->mu);
		bool alone = !__atomic_load_n(&d->parallel_reads, __ATOMIC_ACQUIRE);
		int res = alone ? 0 : checked_read(r, buf, len, off);
		iopool_leave_shared(&d->q);
		pthread_mutex_lock(&r->mu);
		r->inside = false;
		pthread_cond_broadcast(&r->cv);
		if (!alone) {
			pthread_mutex_unlock(&r->mu);
			return res;
		}
		/* a chain change came: in turn, alone */
		if (atomic_load(&r->stop)) {
			pthread_mutex_unlock(&r->mu);
			return -ESHUTDOWN;
		}
	}
	struct ring_job *j = calloc(1, sizeof *j);
	if (!j) {
		pthread_mutex_unlock(&r->mu);
		return -ENOMEM;
	}
	*j = (struct ring_job){ .r = r, .buf = buf, .len = len, .off = off };
	j->pj.run = rjob_run;
	j->pj.done = rjob_done;
	j->pj.shared = __atomic_load_n(&d->parallel_reads, __ATOMIC_ACQUIRE);
	atomic_fetch_add(&r->refs, 1); /* the job's: the ring's memory is its buffer */
	iopool_submit(&d->q, &j->pj);
	while (!j->done && !atomic_load(&r->stop))
		pthread_cond_wait(&r->cv, &r->mu);
	if (!j->done) {
		/* stopped: the read is left to its worker, which frees it */
		j->abandoned = true;
		pthread_mutex_unlock(&r->mu);
		return -ESHUTDOWN;
	}
	pthread_mutex_unlock(&r->mu);
	int res = j->res;
	free(j);
	ring_put(r);
	return res;
}

static void slot_done(struct vring_slot *s, int status, const char *msg)
{
	s->status = status;
	s->code = status == -EBADF		 ? SCM_VDISK_E_NOHANDLE
		  : status == -EBADE		 ? SCM_VDISK_E_RESERVATIONCONFLICT
		  : status == -EINVAL || status == -EOPNOTSUPP ? SCM_VDISK_E_BADRANGE
		  : status < 0			 ? SCM_VDISK_E_IO
						 : 0;
	snprintf(s->msg, VRING_MSG_MAX, "%s", status < 0 ? msg : "");
	atomic_store_explicit(&s->state, VRING_DONE, memory_order_release);
	syscall(SYS_futex, &s->state, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void serve(struct ring *r, struct vring_slot *s)
{
	struct vring_req q;
	char msg[VRING_MSG_MAX];
	int st = vring_entry_parse(s, &r->lim, &q, msg);
	/* the reservation is asked where the read runs (ring_read: never
	 * here, the disk may be gone once the ring is stopped) */
	if (st == 0 && (st = ring_read(r, r->data + (uint64_t)q.data * VRING_DATA_SIZE, q.length, q.offset)) < 0) {
		if (st == -EBADE)
			snprintf(msg, sizeof msg, "reservation conflict: %.40s may not read", r->nexus);
		else
			snprintf(msg, sizeof msg, "read at %llu: %s", (unsigned long long)q.offset, strerror(-st));
	}
	slot_done(s, st < 0 ? st : 0, msg);
}

/* Takes every submitted slot once; true if it found one. */
static bool sweep(struct ring *r)
{
	bool any = false;
	for (unsigned i = 0; i < VRING_SLOTS; i++) {
		struct vring_slot *s = &r->hdr->slot[i];
		uint32_t want = VRING_SUBMITTED;
		if (atomic_compare_exchange_strong(&s->state, &want, VRING_TAKEN)) {
			serve(r, s);
			any = true;
		}
	}
	return any;
}

static void *ring_main(void *arg)
{
	struct ring *r = arg;
	uint64_t idle_since = 0;
	while (!atomic_load(&r->stop)) {
		if (sweep(r)) {
			idle_since = 0;
			continue;
		}
		/* a little while awake: the next request of a busy client
		 * comes sooner than a wake-up would */
		uint64_t now = mono_ns();
		if (!idle_since)
			idle_since = now;
		if (now - idle_since < r->spin_ns) {
			sched_yield();
			continue;
		}
		atomic_store(&r->hdr->sleeping, 1);
		if (sweep(r)) { /* submitted before it saw sleeping */
			atomic_store(&r->hdr->sleeping, 0);
			idle_since = 0;
			continue;
		}
		struct pollfd p[2] = { { .fd = r->efd, .events = POLLIN }, { .fd = r->stopfd, .events = POLLIN } };
		if (poll(p, 2, -1) > 0 && (p[0].revents & POLLIN)) {
			uint64_t v;
			(void)!read(r->efd, &v, sizeof v);
		}
		atomic_store(&r->hdr->sleeping, 0);
		idle_since = 0;
	}
	/* stopped: what is still submitted is handed back to the client,
	 * which takes it to a call */
	atomic_store(&r->hdr->dead, 1);
	for (unsigned i = 0; i < VRING_SLOTS; i++) {
		struct vring_slot *s = &r->hdr->slot[i];
		uint32_t want = VRING_SUBMITTED;
		if (atomic_compare_exchange_strong(&s->state, &want, VRING_TAKEN))
			slot_done(s, -ESHUTDOWN, "the ring stopped: send the read as a call");
	}
	ring_put(r);
	return NULL;
}

/* On the loop: never waits for the disk's queue (ring_read). The thread
 * is detached and ends by itself; the last of it, its queued read and
 * the handle frees the ring. */
void ring_stop(struct handle *h)
{
	struct ring *r = h->ring;
	if (!r)
		return;
	h->ring = NULL;
	if (h->acct)
		h->acct->rings--;
	pthread_mutex_lock(&r->mu);
	atomic_store(&r->stop, true);
	pthread_cond_broadcast(&r->cv);
	while (r->inside)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	uint64_t one = 1;
	(void)!write(r->stopfd, &one, sizeof one);
	pthread_detach(r->th);
	ring_put(r);
}

void ring_stop_channel(struct channel *c)
{
	for (size_t i = 0; i < HANDLES_MAX; i++)
		ring_stop(&c->h[i]);
}

int ring_fd(const struct handle *h)
{
	return h->ring ? h->ring->memfd : -1;
}

void ring_release(int memfd)
{
	struct stat st;
	int seals = fcntl(memfd, F_GET_SEALS);
	void *m = MAP_FAILED;
	if (seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW) &&
	    fstat(memfd, &st) == 0 && (uint64_t)st.st_size == VRING_SIZE)
		m = mmap(NULL, VRING_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (m != MAP_FAILED) {
		struct vring_hdr *hdr = m;
		atomic_store(&hdr->dead, 1);
		/* the dead process's thread took some: nobody answers those */
		for (unsigned i = 0; hdr->magic == VRING_MAGIC && i < VRING_SLOTS; i++) {
			struct vring_slot *s = &hdr->slot[i];
			uint32_t want = VRING_SUBMITTED;
			if (atomic_compare_exchange_strong(&s->state, &want, VRING_TAKEN) || want == VRING_TAKEN)
				slot_done(s, -ESHUTDOWN, "the ring stopped: send the read as a call");
		}
		munmap(m, VRING_HDR_SIZE);
	}
	safe_close(memfd);
}

static uint64_t spin_ns(void)
{
	const char *s = getenv("SCM_VDISK_RING_SPIN_US");
	char *end;
	unsigned long v = s && *s ? strtoul(s, &end, 10) : 50;
	return (s && *s && *end ? 50 : v > 10000 ? 10000 : v) * 1000ull;
}

int do_ring(scm_call *call, uint64_t handle, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (h->ring)
		return fail(call, SCM_VDISK_E_BUSY, "handle %llu has its ring already", (unsigned long long)handle);
	if (!h->d->parallel_reads)
		return fail(call, SCM_VDISK_E_BUSY,
			    "%s has a parent: its reads go one at a time, through calls (no ring)", h->d->path);
	/* a ring is reads: only for a grant that allows read itself (the
	 * skeleton checked ring alone) */
	if (!scm_call_allows(call, "read"))
		return fail(call, SCM_E_DENIED, "ring: the grant does not allow read, and a read ring is reads: no ring");
	/* the grant's per-parameter rules for read are checked per call; the
	 * ring cannot, so it is not for a grant that has them */
	const scm_grant *g = scm_call_grant(call);
	if (g && g->constraints &&
	    (json_object_object_get(g->constraints, "read") || json_object_object_get(g->constraints, "*")))
		return fail(call, SCM_E_DENIED, "the grant constrains read's parameters: no ring, read through calls");
	if (h->acct && h->acct->rings >= RINGS_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "this client has %u read rings already, the provider's cap (each is "
			    "%llu MiB of memory and a thread): close a handle that has one, or read through calls",
			    h->acct->rings, (unsigned long long)(VRING_SIZE >> 20));
	if (pr_refused(call, h->d->pr, false))
		return 0;
	struct ring *r = calloc(1, sizeof *r);
	if (!r)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	r->memfd = memfd_create("vdisk-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	void *m = MAP_FAILED;
	if (r->memfd >= 0 && r->efd >= 0 && r->stopfd >= 0 && ftruncate(r->memfd, (off_t)VRING_SIZE) == 0 &&
	    fcntl(r->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
		m = mmap(NULL, VRING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, r->memfd, 0);
	int err = errno;
	if (m == MAP_FAILED) {
		safe_close(r->memfd);
		safe_close(r->efd);
		safe_close(r->stopfd);
		free(r);
		return fail(call, SCM_E_INTERNAL, "making the ring's memory: %s", strerror(err));
	}
	r->hdr = m;
	r->data = (uint8_t *)m + VRING_HDR_SIZE;
	*r->hdr = (struct vring_hdr){ .magic = VRING_MAGIC, .version = VRING_VERSION, .slots = VRING_SLOTS,
				      .data_size = VRING_DATA_SIZE, .hdr_size = VRING_HDR_SIZE };
	r->d = h->d;
	r->lim = (struct vring_limits){ .handle = handle, .virtual_size = h->d->virtual_size,
					.sector_size = h->d->sector_size };
	pr_nexus(call, r->nexus);
	r->spin_ns = spin_ns();
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	atomic_init(&r->refs, 2); /* the handle's, the thread's */
	int e = pthread_create(&r->th, NULL, ring_main, r);
	if (e) {
		munmap(m, VRING_SIZE);
		close(r->memfd);
		close(r->efd);
		close(r->stopfd);
		free(r);
		return fail(call, SCM_E_INTERNAL, "starting the ring's thread: %s", strerror(e));
	}
	h->ring = r;
	if (h->acct)
		h->acct->rings++;
	rec_checkpoint(); /* a recovery after a crash stops it (ring_release) */
	return scm_vdisk_ring_reply(call, r->memfd, r->efd, VRING_SIZE);
}
