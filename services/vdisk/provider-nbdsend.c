/* provider-nbdsend.c: the replies of the NBD connections the provider
 * serves (provider-nbd.c): built by whichever thread finished a request,
 * queued on the connection, and written by the connection's sender thread
 * only, without blocking and within a deadline per reply, so no pool
 * worker and no lock ever waits for a client. */
#include <poll.h>
#include <signal.h>
#include <time.h>

#include "provider-nbd.h"

static uint32_t nbd_errno(int r)
{
	switch (-r) {
	case 0: return 0;
	case EPERM: case EROFS: case EBADE: case EACCES: return NBD_EPERM;
	case EINVAL: return NBD_EINVAL;
	case EOVERFLOW: return NBD_EOVERFLOW;
	case ENOSPC: return NBD_ENOSPC;
	case ENOMEM: return NBD_ENOMEM;
	case ESHUTDOWN: return NBD_ESHUTDOWN;
	default: return NBD_EIO;
	}
}

static void be16put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32put(uint8_t *p, uint32_t v)
{
	be16put(p, (uint16_t)(v >> 16));
	be16put(p + 2, (uint16_t)v);
}

static void be64put(uint8_t *p, uint64_t v)
{
	be32put(p, (uint32_t)(v >> 32));
	be32put(p + 4, (uint32_t)v);
}

/* All of iov within the reply's deadline, or the connection is broken:
 * shut down (its reader ends) and nothing more is sent. Never blocks
 * beyond the deadline; whoever set n->sending (the sender, or the reader
 * for its own reply). */
static void send_reply(struct nbdconn *n, struct iovec *iov, int cnt)
{
	size_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	uint64_t now = mono_ns() / 1000000, wait = NBD_SEND_IDLE_MS + (uint64_t)total * 1000 / NBD_SEND_RATE;
	uint64_t deadline = now + (wait < NBD_SEND_HARD_MS ? wait : NBD_SEND_HARD_MS);
	while (cnt > 0 && !atomic_load(&n->broken)) {
		ssize_t w = sendmsg(n->fd, &(struct msghdr){ .msg_iov = iov, .msg_iovlen = (size_t)cnt },
				    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			uint64_t t0 = mono_ns();
			now = t0 / 1000000;
			if (atomic_load(&n->pause) && nbd_client_wait(n, t0) > (uint64_t)NBD_PAUSE_MS * 1000000) {
				/* a handover waits for this reply: no longer */
				fprintf(stderr, "vdisk-provider: nbd: the client did not read a reply of %zu bytes: "
					"it made a handover's pause wait %u ms: connection closed\n", total,
					NBD_PAUSE_MS);
				break;
			}
			if (now >= deadline) {
				fprintf(stderr, "vdisk-provider: nbd: the client did not read a reply of %zu bytes "
					"within %llu ms: connection closed\n", total,
					(unsigned long long)(wait < NBD_SEND_HARD_MS ? wait : NBD_SEND_HARD_MS));
				break;
			}
			struct pollfd pfd = { .fd = n->fd, .events = POLLOUT };
			uint64_t left = deadline - now, most = atomic_load(&n->pause) ? 100 : 1000;
			poll(&pfd, 1, left > most ? (int)most : (int)left);
			nbd_client_waited(n, t0, mono_ns()); /* waiting for room: the client's doing */
			continue;
		}
		if (w <= 0)
			break;
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	if (cnt > 0) {
		atomic_store(&n->broken, true);
		shutdown(n->fd, SHUT_RDWR);
	}
}

/* Builds into o the answer to a request: data for a good READ, descriptors
 * for BLOCK STATUS, else its error. Structured for READ and BLOCK_STATUS
 * when agreed, simple otherwise. Any thread; sends nothing. */
void nbd_build(struct nbdconn *n, struct nout *o, const struct nbd_request *q, int res, const char *msg,
		  const uint8_t *data, uint32_t (*desc)[2], unsigned ndesc)
{
	uint8_t *hdr = o->hdr, *dbuf = NULL;
	struct iovec *iov = o->iov;
	int cnt = 1;
	if (msg != o->msg)
		snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "");
	msg = o->msg;
	uint32_t err = nbd_errno(res);
	bool structured = n->lim.structured && (q->type == NBD_CMD_READ || q->type == NBD_CMD_BLOCK_STATUS);
	if (!structured) {
		be32put(hdr, NBD_SIMPLE_REPLY_MAGIC);
		be32put(hdr + 4, err);
		be64put(hdr + 8, q->cookie);
		iov[0] = (struct iovec){ hdr, 16 };
		if (!err && q->type == NBD_CMD_READ)
			iov[cnt++] = (struct iovec){ (void *)data, q->length };
	} else {
		be32put(hdr, NBD_STRUCTURED_REPLY_MAGIC);
		be16put(hdr + 4, NBD_REPLY_FLAG_DONE);
		be64put(hdr + 8, q->cookie);
		if (err) {
			uint16_t ml = (uint16_t)strnlen(msg ? msg : "", NBD_MSG_MAX - 1);
			be16put(hdr + 6, NBD_REPLY_TYPE_ERROR);
			be32put(hdr + 16, 4 + 2 + ml);
			be32put(hdr + 20, err);
			be16put(hdr + 24, ml);
			iov[0] = (struct iovec){ hdr, 26 };
			if (ml)
				iov[cnt++] = (struct iovec){ (void *)msg, ml };
		} else if (q->type == NBD_CMD_READ) {
			be16put(hdr + 6, NBD_REPLY_TYPE_OFFSET_DATA);
			be32put(hdr + 16, 8 + q->length);
			be64put(hdr + 20, q->offset);
			iov[0] = (struct iovec){ hdr, 28 };
			iov[cnt++] = (struct iovec){ (void *)data, q->length };
		} else {
			be16put(hdr + 6, NBD_REPLY_TYPE_BLOCK_STATUS);
			be32put(hdr + 16, 4 + 8 * ndesc);
			be32put(hdr + 20, n->meta_id);
			iov[0] = (struct iovec){ hdr, 24 };
			dbuf = malloc(8 * (size_t)ndesc);
			for (unsigned i = 0; dbuf && i < ndesc; i++) {
				be32put(dbuf + 8 * i, desc[i][0]);
				be32put(dbuf + 8 * i + 4, desc[i][1]);
			}
			if (!dbuf) { /* the header promised them: nothing sane to send */
				atomic_store(&n->broken, true);
				shutdown(n->fd, SHUT_RDWR);
				o->cnt = 0;
				return;
			}
			iov[cnt++] = (struct iovec){ dbuf, 8 * (size_t)ndesc };
		}
	}
	o->cnt = cnt;
	o->dbuf = dbuf;
}

void nbd_enqueue(struct nbdconn *n, struct nout *o)
{
	o->next = NULL;
	pthread_mutex_lock(&n->mu);
	*n->qtail = o;
	n->qtail = &o->next;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

/* The reader's replies (data may be the reader's buffer). With nothing
 * queued or being sent, the reader sends it itself, under the same
 * deadline: a hot read then costs no switch to the sender and back (the
 * reader would wait for it anyway, and only this connection waits on its
 * client). Otherwise it is queued behind the workers' and waited for. */
void nbd_reply(struct nbdconn *n, const struct nbd_request *q, int res, const char *msg, const uint8_t *data)
{
	struct nout o = { 0 };
	nbd_build(n, &o, q, res, msg, data, NULL, 0);
	pthread_mutex_lock(&n->mu);
	if (!n->qhead && !n->sending) {
		n->sending = true;
		pthread_mutex_unlock(&n->mu);
		if (o.cnt && !atomic_load(&n->broken))
			send_reply(n, o.iov, o.cnt);
		free(o.dbuf);
		pthread_mutex_lock(&n->mu);
		n->sending = false;
		pthread_cond_broadcast(&n->cv);
		pthread_mutex_unlock(&n->mu);
		return;
	}
	pthread_mutex_unlock(&n->mu);
	nbd_enqueue(n, &o);
	pthread_mutex_lock(&n->mu);
	while (!o.sent)
		pthread_cond_wait(&n->cv, &n->mu);
	pthread_mutex_unlock(&n->mu);
}

/* A pause is asked (a handover) and the reader still reads: a signal
 * interrupts its recv() if it waits for a request (n->mu held). The reader
 * may be just about to block when one comes, so this repeats every
 * NBD_PAUSE_KICK_MS until it stopped. Only the client's waits are bounded
 * (nbd_client_wait: the reader in recv() inside a request, a reply not
 * read): past NBD_PAUSE_MS of them the connection ends as at any other
 * broken client. A reader waiting for the disk (a read it does itself)
 * or for room in flight is let finish: the disk's work has its own
 * bounds, and the connection holds the handover meanwhile. It is
 * signalled only while in recv(): a signal is of no use elsewhere. */
static void kick(struct nbdconn *n)
{
	if (atomic_load(&n->broken)) {
		pthread_cond_wait(&n->cv, &n->mu); /* the reader sees the end */
		return;
	}
	if (nbd_client_wait(n, mono_ns()) > (uint64_t)NBD_PAUSE_MS * 1000000) {
		fprintf(stderr, "vdisk-provider: nbd: the client made a handover's pause wait %u ms "
			"(a request left incomplete, or its replies not read): connection closed\n", NBD_PAUSE_MS);
		atomic_store(&n->broken, true);
		shutdown(n->fd, SHUT_RDWR);
		return;
	}
	if (atomic_load(&n->recv_since))
		pthread_kill(n->reader, nbd_pause_signal());
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += NBD_PAUSE_KICK_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&n->cv, &n->mu, &ts);
}

/* Sends the queued replies in order until the reader is done and the queue
 * empty; once the connection is broken, drops them (their requests leave
 * the count in flight all the same). */
void *nbd_sender_main(void *arg)
{
	struct nbdconn *n = arg;
	for (;;) {
		pthread_mutex_lock(&n->mu);
		while (n->sending || (!n->qhead && !n->rdone)) {
			if (atomic_load(&n->pause) && !n->rstopped)
				kick(n);
			else
				pthread_cond_wait(&n->cv, &n->mu);
		}
		struct nout *o = n->qhead;
		if (o && !(n->qhead = o->next))
			n->qtail = &n->qhead;
		n->sending = o != NULL;
		pthread_mutex_unlock(&n->mu);
		if (!o)
			return NULL;
		if (o->cnt && !atomic_load(&n->broken))
			send_reply(n, o->iov, o->cnt);
		free(o->dbuf);
		o->dbuf = NULL;
		struct nreq *r = o->r;
		pthread_mutex_lock(&n->mu);
		n->sending = false;
		if (!r)
			o->sent = true; /* the reader's: it may go on (o is its own) */
		pthread_cond_broadcast(&n->cv);
		pthread_mutex_unlock(&n->mu);
		if (r)
			nreq_free(r);
	}
}
