/* nbdkit-scm-vdisk-ring.c: the plugin's reads through a lane's read ring
 * (vring.h, docs/vdisk.md "The read ring"): a slot in the memfd the
 * provider shares, a doorbell when its thread sleeps, and the ways out
 * when nobody answers (the provider gone, a slot not taken within 1 s, a
 * slot taken and not answered within SCM_VDISK_RING_WAIT_MS): the lane
 * then reads through calls. */
#define NBDKIT_API_VERSION 2
#include <errno.h>
#include <nbdkit-plugin.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nbdkit-scm-vdisk.h"
#include "scm/vdisk-client.h"
#include "vring.h"

#define SPIN_NS 20000 /* a ring reader polls its slot this long, then sleeps */
static unsigned ring_wait_ms = 30000; /* a slot the provider took, answered within (SCM_VDISK_RING_WAIT_MS) */

/* The lane's read ring, when the provider gives one (not for a disk with a
 * parent, nor a grant without "ring"): reads without a call. */
void lane_ring_open(struct lane *l)
{
	scm_error *e = NULL;
	int fd = -1, bell = -1;
	uint64_t size = 0;
	if (scm_vdisk_ring(l->ch, l->handle, &fd, &bell, &size, &e)) {
		char *t = scm_error_text(e);
		nbdkit_debug("no read ring: %s", t ? t : "");
		free(t);
		scm_error_free(e);
		return;
	}
	void *m = size == VRING_SIZE ? mmap(NULL, VRING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
	close(fd);
	struct vring_hdr *h = m;
	if (m == MAP_FAILED || h->magic != VRING_MAGIC || h->version != VRING_VERSION || h->slots != VRING_SLOTS ||
	    h->data_size != VRING_DATA_SIZE || h->hdr_size != VRING_HDR_SIZE) {
		nbdkit_debug("no read ring: a ring of another layout (%llu bytes)", (unsigned long long)size);
		if (m != MAP_FAILED)
			munmap(m, VRING_SIZE);
		close(bell);
		return;
	}
	l->ring = h, l->bell = bell, l->rfree = ~0ull;
	const char *w = getenv("SCM_VDISK_RING_WAIT_MS");
	if (w && *w)
		ring_wait_ms = (unsigned)strtoul(w, NULL, 10);
}

/* The provider is gone (its end of the channel closed)? */
static bool provider_gone(struct lane *l)
{
	struct pollfd p = { .fd = scm_channel_fd(l->ch), .events = POLLRDHUP };
	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

/* The lane reads through calls from now on; readers waiting for a slot
 * go there too. */
static void lane_ring_off(struct lane *l)
{
	pthread_mutex_lock(&l->lock);
	atomic_store(&l->ring_off, true);
	pthread_cond_broadcast(&l->rcond);
	pthread_mutex_unlock(&l->lock);
}

/* A read through the ring: 0 done, -1 failed (nbdkit's error set), 1 the
 * ring stopped (the caller uses calls). */
int lane_ring_read(struct lane *l, void *dst, uint32_t len, uint64_t off)
{
	pthread_mutex_lock(&l->lock);
	/* a slot comes back with every answer, and once the ring is off */
	while (!l->rfree && !atomic_load(&l->ring_off))
		pthread_cond_wait(&l->rcond, &l->lock);
	if (atomic_load(&l->ring_off)) {
		pthread_mutex_unlock(&l->lock);
		return 1;
	}
	unsigned i = (unsigned)__builtin_ctzll(l->rfree);
	l->rfree &= ~(1ull << i);
	pthread_mutex_unlock(&l->lock);
	struct vring_slot *s = &l->ring->slot[i];
	s->op = VRING_OP_READ;
	s->handle = l->handle;
	s->offset = off;
	s->length = len;
	s->data = i;
	atomic_store(&s->state, VRING_SUBMITTED);
	int ret = 0;
	uint32_t v = VRING_SUBMITTED;
	if (atomic_load(&l->ring->dead) && atomic_compare_exchange_strong(&s->state, &v, VRING_FREE)) {
		ret = 1;
		goto out;
	}
	if (atomic_load(&l->ring->sleeping)) {
		uint64_t one = 1;
		(void)!write(l->bell, &one, sizeof one);
	}
	/* awake a little first: a cached read is done before a wake-up */
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load_explicit(&s->state, memory_order_acquire) != VRING_DONE) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((uint64_t)(t.tv_sec - t0.tv_sec) * 1000000000u + (uint64_t)(t.tv_nsec - t0.tv_nsec) >= SPIN_NS)
			break;
		sched_yield();
	}
	unsigned waited_ms = 0;
	while ((v = atomic_load_explicit(&s->state, memory_order_acquire)) != VRING_DONE) {
		struct timespec ts = { 1, 0 };
		if (syscall(SYS_futex, &s->state, FUTEX_WAIT, v, &ts, NULL, 0) == 0 || errno != ETIMEDOUT)
			continue;
		waited_ms += 1000;
		if (provider_gone(l)) {
			nbdkit_error("read %s: the vdisk provider is gone", disk);
			nbdkit_set_error(EIO);
			/* nobody will answer it: the slot back (the ring is
			 * not used again, so nobody fills it either), and the
			 * lane's next reads are calls, which fail at once */
			lane_ring_off(l);
			ret = -1;
			goto out;
		}
		/* not taken in a second: maybe nobody serves the ring (a
		 * provider that crashed before its checkpoint named the ring
		 * while scmd kept the channel): the slot back, and calls */
		v = VRING_SUBMITTED;
		if (atomic_compare_exchange_strong(&s->state, &v, VRING_FREE)) {
			nbdkit_debug("read %s: the ring took no slot within 1 s: reads by calls from now on", disk);
			lane_ring_off(l);
			ret = 1;
			goto out;
		}
		if (v == VRING_TAKEN && waited_ms >= ring_wait_ms) {
			lane_ring_off(l);
			nbdkit_error("read %s: the vdisk provider took the read but gave no answer within %u ms "
				     "(SCM_VDISK_RING_WAIT_MS): the ring is not used again", disk, ring_wait_ms);
			nbdkit_set_error(EIO);
			return -1; /* the slot stays taken: it may still be answered */
		}
	}
	if (s->status == -ESHUTDOWN)
		ret = 1;
	else if (s->status < 0) {
		char msg[VRING_MSG_MAX];
		memcpy(msg, s->msg, sizeof msg);
		msg[sizeof msg - 1] = 0;
		nbdkit_error("read %s: %s", disk, msg);
		nbdkit_set_error(code_errno((int)s->code));
		ret = -1;
	} else
		memcpy(dst, (uint8_t *)l->ring + VRING_HDR_SIZE + (uint64_t)i * VRING_DATA_SIZE, len);
	atomic_store(&s->state, VRING_FREE);
out:
	pthread_mutex_lock(&l->lock);
	l->rfree |= 1ull << i;
	pthread_cond_signal(&l->rcond);
	pthread_mutex_unlock(&l->lock);
	return ret;
}
