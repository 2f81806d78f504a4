/* nbdkit-scm-vdisk.h: what the export's nbdkit plugin shares between its
 * files (nbdkit-scm-vdisk.c, the plugin; nbdkit-scm-vdisk-ring.c, its
 * reads through a read ring). */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "scm/scm.h"

#define LANES_MAX 8

/* A read waiting for its lane: reads that queue up while the lane's call
 * is out go together in its next call (readv), one round trip for many. */
struct rreq {
	struct rreq *next;
	uint64_t off;
	uint32_t len;
	void *dst;
	int err;   /* errno for the NBD reply, 0 when done well */
	bool done;
};

struct lane {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool busy;               /* a call is out: the buffer is in use */
	struct rreq *head, **tail;
	scm_channel *ch;
	uint64_t handle;
	uint8_t *buf;
	uint64_t buf_size;
	/* the read ring, or NULL: its slots free (a bit each, under lock) */
	struct vring_hdr *ring;
	int bell;
	uint64_t rfree;
	pthread_cond_t rcond;
	atomic_bool ring_off; /* a slot went unanswered: calls from now on */
};

extern char *disk; /* the disk=PATH parameter */

/* The errno for an NBD reply to the provider's error code. */
int code_errno(int code);

/* The lane's read ring, when the provider gives one (l->ring stays NULL
 * otherwise). */
void lane_ring_open(struct lane *l);
/* A read through the ring: 0 done, -1 failed (nbdkit's error set), 1 the
 * ring stopped (the caller uses calls). */
int lane_ring_read(struct lane *l, void *dst, uint32_t len, uint64_t off);
