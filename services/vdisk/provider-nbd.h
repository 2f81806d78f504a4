/* provider-nbd.h: what provider-nbd.c (the connections, their requests)
 * and provider-nbdsend.c (their replies) share. */
#pragma once
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "nbdproto.h"
#include "provider.h"

#define NBD_SEND_IDLE_MS 30000		   /* a reply's deadline: this, */
#define NBD_SEND_RATE (1u << 20)	   /* plus its bytes at this many a second, */
#define NBD_SEND_HARD_MS 120000		   /* at most this */
#define NBD_PAUSE_MS 5000		   /* a handover waits this long for the client (nbd_client_wait) */
#define NBD_PAUSE_KICK_MS 2		   /* the reader is signalled this often until it stopped */

/* the signal that interrupts a reader's recv() for a pause (no SA_RESTART) */
int nbd_pause_signal(void);

/* A reply waiting for the sender: built by any thread, sent by the
 * connection's sender (or by the reader, its own, when nothing waits). */
struct nout {
	struct nout *next;
	uint8_t hdr[20 + 8 + 4 + 2];
	struct iovec iov[3];
	int cnt;
	uint8_t *dbuf; /* block status descriptors, owned */
	char msg[NBD_MSG_MAX];
	struct nreq *r; /* a worker's: freed once sent */
	bool sent;	/* the reader's: it waits for this */
};

struct nbdconn {
	struct nbdconn *next;
	struct channel *c;
	struct handle *h;
	struct disk *d;
	int fd;
	bool rw;
	struct nbd_limits lim;
	uint32_t meta_id;
	char nexus[VDISK_PR_NEXUS_MAX];
	uint8_t *rbuf; /* the reader's, for reads done inline */
	uint32_t rbuf_size;
	bool may_trim, may_zero, may_flush, may_extents; /* the grant's */
	struct account *acct;
	pthread_t th, sender;
	pthread_t reader; /* th as the reader itself knows it (pthread_self), for the sender's kicks */
	pthread_mutex_t mu; /* the queue; inflight; rdone; sent; sending */
	pthread_cond_t cv;
	unsigned inflight;
	uint64_t inflight_bytes;
	struct nout *qhead, **qtail;
	bool rdone; /* the reader is done: the sender ends once the queue is empty */
	bool sending; /* a reply is being sent (by the sender, or the reader itself) */
	bool rstopped; /* the reader reads no more requests (the sender stops waking it) */
	atomic_bool stop, finished, broken;
	/* a handover (provider-nbd.c "Across a handover"): pause asks the
	 * reader to stop at the next request boundary; it then lets the
	 * requests in flight finish, their replies go out, and ends both
	 * threads with the socket intact (parked) */
	atomic_bool pause;
	bool at_pause;	     /* the reader's: it stopped for the pause, at a boundary */
	atomic_bool parked;  /* stopped so, the socket intact: the state may carry it */
	atomic_bool done;    /* the reader's thread has ended (joinable) */
	_Atomic uint64_t pause_at; /* when the pause was asked (mono ns) */
	/* what the client made the pause wait (nbd_client_wait): the time
	 * since pause_at in the reader's recv() (recv_since: it is in one
	 * since then, mono ns, else 0) and the replies' senders' poll() for
	 * room, accumulated in client_ns; the disk's work and the wait for
	 * room in flight are not the client's and do not count */
	_Atomic uint64_t recv_since, client_ns;
	bool running;	     /* the loop's: threads started and not joined */
	bool held;	     /* the loop's: this connection holds the handover (scm_provider_hold) */
};

struct nreq {
	struct iopool_job pj;
	struct nbdconn *n;
	struct nbd_request q;
	uint8_t *buf;
	uint32_t (*desc)[2]; /* block status: length, flags */
	unsigned ndesc;
	int res; /* 0 or -errno */
	struct nout out; /* its reply; out.msg is its error's text */
};

void nreq_free(struct nreq *r);
/* How long the client has made a handover's pause wait so far (ns):
 * past NBD_PAUSE_MS its connection ends. */
uint64_t nbd_client_wait(struct nbdconn *n, uint64_t now);
/* Adds the client's wait from start to now, the part after the pause. */
void nbd_client_waited(struct nbdconn *n, uint64_t start, uint64_t now);
/* Builds into o the answer to q (any thread; sends nothing). */
void nbd_build(struct nbdconn *n, struct nout *o, const struct nbd_request *q, int res, const char *msg,
	       const uint8_t *data, uint32_t (*desc)[2], unsigned ndesc);
/* Queues o for the sender. */
void nbd_enqueue(struct nbdconn *n, struct nout *o);
/* The reader's replies: sent by the reader itself when nothing else is
 * queued or being sent, else queued and waited for until sent or dropped. */
void nbd_reply(struct nbdconn *n, const struct nbd_request *q, int res, const char *msg, const uint8_t *data);
/* The connection's sender thread. */
void *nbd_sender_main(void *arg);
