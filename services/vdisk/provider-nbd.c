/* provider-nbd.c: NBD connections the provider serves itself (nbd_serve,
 * docs/vdisk.md "NBD export"). scm-vdisk export does the handshake, then
 * hands the connected socket over its channel with the handle it opened;
 * from then on no other process is in a request's path.
 *
 * A thread per connection reads the 28-byte requests and checks each
 * (nbd_request_parse: magic, command, flags, lengths up to the agreed
 * maximum, offset and length within the disk, whole sectors, the export's
 * read-only); a request is then what the call of its kind would be on the
 * handle: the reservation is asked as the request runs, a write goes
 * through io_work() as a write call's job does (migration, offload
 * tokens). A read the disk's queue lets run at once is done on the
 * connection's thread (iopool_enter_shared, as the read ring does: one
 * thread switch each way, the client's); anything else becomes a job of
 * the disk's queue, answered by the worker that ran it, so several
 * requests of a connection are in flight at once (up to NBD_INFLIGHT, and
 * NBD_INFLIGHT_BYTES of data; the reader waits for room). No worker
 * sends: a finished request's reply goes on the connection's queue (its
 * request still counts in flight, so the queue has the same bounds) and
 * the connection's sender thread writes it without blocking, within a
 * total deadline per reply (provider-nbdsend.c: NBD_SEND_IDLE_MS plus its bytes
 * at NBD_SEND_RATE, at most NBD_SEND_HARD_MS); past it the socket is shut
 * down and the connection ends. A client that does not read its replies
 * holds only its own connection, never the pool. The reader's own replies
 * (inline reads, refusals) it sends itself, under the same deadline, when
 * nothing is queued or being sent; else they are queued and waited for. A
 * violation of the protocol ends the connection without an answer; a bad
 * request that is not one gets its error and the connection goes on.
 *
 * What the connection may do is what the grant allows (do_nbd_serve): reads
 * only unless "write" is allowed, and trim, write zeroes, flush and block
 * status each only if the method of that name is (EPERM otherwise). A
 * client (account) has at most NBD_CONNS_CLIENT connections served, the
 * provider NBD_CONNS_TOTAL.
 *
 * The connection ends when the client disconnects, its handle is closed
 * or its channel closes. Ending one shuts its socket down both ways, so
 * nothing waits on the client any more: the loop waits only for the
 * requests the disk is running (answers to a socket shut down are
 * dropped). A crash closes them with the process.
 *
 * Across a handover the connections go on (nbd_quiesce, nbd_save_channel,
 * nbd_restore_channel): the reader stops at the next request boundary (a
 * flag it checks before each request, and a signal, repeated by the
 * sender until it stopped, that interrupts its recv() when it waits for
 * one; a request begun is read whole first), its requests in flight are
 * answered and their replies sent, and both threads end with the socket
 * left as it is ("parked"), each connection holding the handover until
 * then (scm_provider_hold). What the client sends meanwhile waits in the
 * socket. The state carries the socket with its channel (the handle's
 * number, structured replies, the meta context id, read-only and what the
 * grant allowed); the new process adopts it on the same handle and reads
 * again. Called off, the old process reads again. A connection whose
 * client makes the pause wait NBD_PAUSE_MS (nbd_client_wait: in recv()
 * inside a request, replies not read) ends as a broken client would;
 * waits for the disk or for room in flight are not the client's and are
 * let finish (scmd bounds the whole quiesce). Connections the state has
 * no fds left for are ended (nbd_shed). The old process closes its
 * copies without shutdown(), which would end them for the new one too. */
#include "provider-nbd.h"

#define NBD_CONNS_MAX 16		   /* per channel */
#define NBD_CONNS_CLIENT 16		   /* per client (account) */
#define NBD_CONNS_TOTAL 64		   /* per provider */
#define NBD_INFLIGHT 64			   /* requests per connection */
#define NBD_INFLIGHT_BYTES (64u << 20)	   /* their data */
#define NBD_MAX_PAYLOAD (4u << 20)	   /* the maximum block size offered */
#define NBD_STATUS_MAX 256		   /* block status descriptors per reply */

static struct nbdconn *conns; /* the loop's */
static unsigned conns_total;
static void stop_where(bool all, const struct channel *c, const struct handle *h);

/* Block status from q's offset on: runs of data (0) and of zeros without
 * storage (hole|zero), neighbours of one kind merged. */
static int block_status(struct nreq *r)
{
	struct nbdconn *n = r->n;
	uint64_t off = r->q.offset, len = r->q.length;
	unsigned max = r->q.flags & NBD_CMD_FLAG_REQ_ONE ? 1 : NBD_STATUS_MAX;
	if (pr_check(n->d->pr, n->nexus, false) < 0)
		return -EBADE;
	r->desc = calloc(max, sizeof *r->desc);
	if (!r->desc)
		return -ENOMEM;
	while (len) {
		uint64_t l;
		bool data;
		int e = vhdx_alloc_extent(n->d->h, off, len, &l, &data);
		if (e < 0)
			return r->ndesc ? 0 : e; /* what was found so far is true */
		if (l == 0 || l > len)
			l = len;
		uint32_t fl = data ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO;
		if (r->ndesc && r->desc[r->ndesc - 1][1] == fl)
			r->desc[r->ndesc - 1][0] += (uint32_t)l;
		else if (r->ndesc == max)
			break;
		else {
			r->desc[r->ndesc][0] = (uint32_t)l;
			r->desc[r->ndesc++][1] = fl;
		}
		off += l;
		len -= l;
	}
	return r->ndesc ? 0 : -EIO;
}

static void nreq_run(struct iopool_job *pj)
{
	struct nreq *r = (struct nreq *)pj;
	struct nbdconn *n = r->n;
	const struct nbd_request *q = &r->q;
	bool fua = q->flags & NBD_CMD_FLAG_FUA;
	scm_error *e = NULL;
	int res = 0;
	switch (q->type) {
	case NBD_CMD_READ:
		res = io_work(n->d, IO_READ, r->buf, q->offset, q->length, false, n->rw, n->nexus, &e);
		break;
	case NBD_CMD_WRITE: {
		/* test hook (vdisk-nbdserve.bats): the process's first write of
		 * 512 bytes this slow, the writes behind it waiting in turn */
		static atomic_bool slow_done;
		static const char *slow;
		if (!slow)
			slow = getenv("SCM_VDISK_NBD_SLOW_WRITE_MS") ? getenv("SCM_VDISK_NBD_SLOW_WRITE_MS") : "";
		if (*slow && q->length == 512 && !atomic_exchange(&slow_done, true)) {
			fprintf(stderr, "vdisk-provider: nbd: a slow write (test hook)\n");
			usleep((useconds_t)strtoul(slow, NULL, 10) * 1000);
		}
		res = io_work(n->d, IO_WRITE, r->buf, q->offset, q->length, false, n->rw, n->nexus, &e);
		break;
	}
	case NBD_CMD_TRIM:
		res = io_work(n->d, IO_TRIM, NULL, q->offset, q->length, false, n->rw, n->nexus, &e);
		break;
	case NBD_CMD_WRITE_ZEROES:
		res = io_work(n->d, IO_ZERO, NULL, q->offset, q->length, !(q->flags & NBD_CMD_FLAG_NO_HOLE), n->rw,
			      n->nexus, &e);
		break;
	case NBD_CMD_FLUSH:
		fua = true;
		break;
	case NBD_CMD_BLOCK_STATUS:
		res = block_status(r);
		break;
	}
	if (res >= 0 && fua) /* FUA: the engine's flush is the whole disk's */
		res = io_work(n->d, IO_FLUSH, NULL, 0, 0, false, n->rw, n->nexus, &e);
	r->res = res < 0 ? res : 0;
	if (res == -EBADE)
		snprintf(r->out.msg, sizeof r->out.msg, "reservation conflict: %.40s may not do this", n->nexus);
	else if (res < 0) {
		char *t = e ? scm_error_text(e) : NULL;
		snprintf(r->out.msg, sizeof r->out.msg, "%s", t ? t : strerror(-res));
		free(t);
	}
	scm_error_free(e);
}

void nreq_free(struct nreq *r)
{
	struct nbdconn *n = r->n;
	uint64_t bytes = r->q.type == NBD_CMD_READ || r->q.type == NBD_CMD_WRITE ? r->q.length : 0;
	free(r->buf);
	free(r->desc);
	free(r);
	pthread_mutex_lock(&n->mu);
	n->inflight--;
	n->inflight_bytes -= bytes;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

/* On a pool worker: queues the reply, never sends */
static void nreq_done(struct iopool_job *pj)
{
	struct nreq *r = (struct nreq *)pj;
	nbd_build(r->n, &r->out, &r->q, r->res, r->out.msg, r->buf, r->desc, r->ndesc);
	r->out.r = r;
	nbd_enqueue(r->n, &r->out);
}

void nbd_client_waited(struct nbdconn *n, uint64_t start, uint64_t now)
{
	if (!atomic_load(&n->pause))
		return;
	uint64_t from = start > n->pause_at ? start : n->pause_at;
	if (now > from)
		atomic_fetch_add(&n->client_ns, now - from);
}

uint64_t nbd_client_wait(struct nbdconn *n, uint64_t now)
{
	uint64_t w = atomic_load(&n->client_ns), s = atomic_load(&n->recv_since);
	if (s) {
		uint64_t from = s > n->pause_at ? s : n->pause_at;
		w += now > from ? now - from : 0;
	}
	return w;
}

/* exactly len bytes, or false (EOF, error, stopped). At a request's first
 * byte (boundary), a pause's signal with nothing read yet stops it too
 * (n->at_pause); inside a request the rest is read first: the client is
 * sending it, within what is left of NBD_PAUSE_MS (the sender ends the
 * connection past it: recv_since says the reader waits on the client). */
static bool recv_all(struct nbdconn *n, void *p, size_t len, bool boundary)
{
	bool got = false;
	while (len) {
		uint64_t t0 = mono_ns();
		atomic_store(&n->recv_since, t0);
		ssize_t k = recv(n->fd, p, len, MSG_WAITALL);
		atomic_store(&n->recv_since, 0);
		if (atomic_load(&n->pause))
			nbd_client_waited(n, t0, mono_ns());
		if (k < 0 && errno == EINTR && !atomic_load(&n->stop)) {
			if (boundary && !got && atomic_load(&n->pause)) {
				n->at_pause = true;
				return false;
			}
			continue;
		}
		if (k <= 0)
			return false;
		got = true;
		p = (uint8_t *)p + k;
		len -= (size_t)k;
	}
	return true;
}

static bool drop(struct nbdconn *n, uint32_t len)
{
	uint8_t b[16384];
	while (len) {
		uint32_t k = len < sizeof b ? len : (uint32_t)sizeof b;
		if (!recv_all(n, b, k, false))
			return false;
		len -= k;
	}
	return true;
}

/* A read the disk's queue lets run now, here, into the connection's own
 * buffer (no allocation, no accounting: the common case of a hot read);
 * false: make it a job. */
static bool read_inline(struct nbdconn *n, const struct nbd_request *q)
{
	struct disk *d = n->d;
	if (q->length > n->rbuf_size) {
		uint8_t *b = realloc(n->rbuf, q->length);
		if (!b)
			return false;
		n->rbuf = b;
		n->rbuf_size = q->length;
	}
	if (!iopool_enter_shared(&d->q))
		return false;
	if (!__atomic_load_n(&d->parallel_reads, __ATOMIC_ACQUIRE)) {
		iopool_leave_shared(&d->q); /* a chain change came: in turn, alone */
		return false;
	}
	int res = pr_check(d->pr, n->nexus, false) < 0 ? -EBADE : vhdx_read(d->h, n->rbuf, q->length, q->offset);
	static const char *slow;
	if (!slow) /* test hook (vdisk-nbdserve.bats): a disk this slow on reads of 512 bytes */
		slow = getenv("SCM_VDISK_NBD_SLOW_READ_MS") ? getenv("SCM_VDISK_NBD_SLOW_READ_MS") : "";
	if (*slow && q->length == 512) {
		fprintf(stderr, "vdisk-provider: nbd: a slow read (test hook)\n");
		usleep((useconds_t)strtoul(slow, NULL, 10) * 1000);
	}
	iopool_leave_shared(&d->q);
	char msg[NBD_MSG_MAX] = "";
	if (res == -EBADE)
		snprintf(msg, sizeof msg, "reservation conflict: %.40s may not read", n->nexus);
	else if (res < 0)
		snprintf(msg, sizeof msg, "read at %llu: %s", (unsigned long long)q->offset, strerror(-res));
	nbd_reply(n, q, res < 0 ? res : 0, msg, n->rbuf);
	return true;
}

/* Does the grant allow what q asks? (read and write: do_nbd_serve, the
 * export's read-only) FUA on any command is a flush of the handle
 * (nreq_run): it needs flush whatever the command. */
static const char *refused(const struct nbdconn *n, const struct nbd_request *q)
{
	if (q->flags & NBD_CMD_FLAG_FUA && !n->may_flush)
		return "flush (FUA)";
	switch (q->type) {
	case NBD_CMD_TRIM: return n->may_trim ? NULL : "trim";
	case NBD_CMD_WRITE_ZEROES: return n->may_zero ? NULL : "zero";
	case NBD_CMD_FLUSH: return n->may_flush ? NULL : "flush";
	case NBD_CMD_BLOCK_STATUS: return n->may_extents ? NULL : "extents";
	default: return NULL;
	}
}

static void conn_exit(struct nbdconn *n, bool parked);

static void *conn_main(void *arg)
{
	struct nbdconn *n = arg;
	uint8_t raw[NBD_REQUEST_SIZE];
	sigset_t ss;
	n->reader = pthread_self();
	sigemptyset(&ss);
	sigaddset(&ss, nbd_pause_signal());
	pthread_sigmask(SIG_UNBLOCK, &ss, NULL);
	int se = pthread_create(&n->sender, NULL, nbd_sender_main, n);
	if (se) {
		fprintf(stderr, "vdisk-provider: nbd: starting the sender: %s: connection closed\n", strerror(se));
		shutdown(n->fd, SHUT_RDWR);
		conn_exit(n, false);
		return NULL;
	}
	for (;;) {
		if (atomic_load(&n->pause)) { /* between two requests: stop here */
			n->at_pause = true;
			break;
		}
		if (atomic_load(&n->stop) || !recv_all(n, raw, sizeof raw, true))
			break;
		struct nbd_request q;
		char msg[NBD_MSG_MAX];
		int p = nbd_request_parse(raw, &n->lim, &q, msg);
		if (p < 0) {
			fprintf(stderr, "vdisk-provider: nbd: %s: connection closed\n", msg);
			break;
		}
		if (p > 0) {
			if (!drop(n, q.payload))
				break;
			nbd_reply(n, &q, p == NBD_EPERM ? -EPERM : p == NBD_EOVERFLOW ? -EOVERFLOW : -EINVAL, msg, NULL);
			continue;
		}
		if (q.type == NBD_CMD_DISC)
			break;
		const char *what = refused(n, &q);
		if (what) { /* a write's data is read (and dropped): the next request follows it */
			if (!drop(n, q.payload))
				break;
			snprintf(msg, sizeof msg, "the grant does not allow %s", what);
			nbd_reply(n, &q, -EPERM, msg, NULL);
			continue;
		}
		if (q.type == NBD_CMD_READ && read_inline(n, &q))
			continue;
		uint64_t bytes = q.type == NBD_CMD_READ || q.type == NBD_CMD_WRITE ? q.length : 0;
		pthread_mutex_lock(&n->mu);
		while (!atomic_load(&n->stop) && n->inflight &&
		       (n->inflight >= NBD_INFLIGHT || n->inflight_bytes + bytes > NBD_INFLIGHT_BYTES))
			pthread_cond_wait(&n->cv, &n->mu);
		n->inflight++;
		n->inflight_bytes += bytes;
		pthread_mutex_unlock(&n->mu);
		struct nreq *r = calloc(1, sizeof *r);
		if (r) {
			r->n = n;
			r->q = q;
		}
		if (r && bytes && !(r->buf = malloc(bytes))) {
			free(r);
			r = NULL;
		}
		if (!r) {
			pthread_mutex_lock(&n->mu);
			n->inflight--;
			n->inflight_bytes -= bytes;
			pthread_mutex_unlock(&n->mu);
			if (!drop(n, q.payload))
				break;
			nbd_reply(n, &q, -ENOMEM, "out of memory", NULL);
			continue;
		}
		if (q.payload && !recv_all(n, r->buf, q.payload, false)) {
			nreq_free(r);
			break;
		}
		r->pj.run = nreq_run;
		r->pj.done = nreq_done;
		r->pj.shared = (q.type == NBD_CMD_READ || q.type == NBD_CMD_BLOCK_STATUS) &&
			       __atomic_load_n(&n->d->parallel_reads, __ATOMIC_ACQUIRE);
		iopool_submit(&n->d->q, &r->pj);
	}
	/* the requests in flight are answered (or dropped, the socket shut
	 * down) first; the sender sends or drops within a deadline, so this
	 * waits for the disk's work only */
	pthread_mutex_lock(&n->mu);
	n->rstopped = true;
	while (n->inflight)
		pthread_cond_wait(&n->cv, &n->mu);
	n->rdone = true;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->sender, NULL);
	/* paused, every reply sent: the socket stays as it is, for the
	 * handover's state (or to read again if it is called off) */
	bool parked = n->at_pause && !atomic_load(&n->broken) && !atomic_load(&n->stop);
	if (!parked)
		shutdown(n->fd, SHUT_RDWR);
	conn_exit(n, parked);
	return NULL;
}

/* ---- across a handover --------------------------------------------------- */

static atomic_bool task_posted;
static void nbd_task(scm_task *t);
static scm_task task = { .fn = nbd_task };

static void on_pause_signal(int sig)
{
	(void)sig; /* only to interrupt recv() */
}

int nbd_pause_signal(void)
{
	return SIGRTMIN;
}

/* The reader's last act: the loop joins it (nbd_task) */
static void conn_exit(struct nbdconn *n, bool parked)
{
	atomic_store(parked ? &n->parked : &n->finished, true);
	atomic_store(&n->done, true);
	bool f = false;
	if (atomic_compare_exchange_strong(&task_posted, &f, true))
		scm_provider_post(provider, &task);
}

/* A connection's threads, from a fresh state (first, again after a pause
 * called off, or adopted from a predecessor); on the loop. */
static int conn_start(struct nbdconn *n)
{
	static bool sig_set;
	if (!sig_set) {
		struct sigaction sa = { .sa_handler = on_pause_signal }; /* no SA_RESTART */
		sigemptyset(&sa.sa_mask);
		if (sigaction(nbd_pause_signal(), &sa, NULL) < 0)
			return errno;
		sig_set = true;
	}
	n->rdone = n->rstopped = n->at_pause = n->sending = false;
	atomic_store(&n->parked, false);
	atomic_store(&n->done, false);
	int e = pthread_create(&n->th, NULL, conn_main, n);
	n->running = e == 0;
	return e;
}

static void release(struct nbdconn *n)
{
	if (n->held) {
		scm_provider_hold(provider, -1);
		n->held = false;
	}
}

/* On the loop: readers that ended are joined; a parked connection no
 * longer holds the handover, and reads again if the pause was called off
 * meanwhile; the connections that ended are freed. */
static void nbd_task(scm_task *t)
{
	(void)t;
	atomic_store(&task_posted, false);
	for (struct nbdconn *n = conns; n; n = n->next) {
		if (!n->running || !atomic_load(&n->done))
			continue;
		pthread_join(n->th, NULL);
		n->running = false;
		release(n);
		if (atomic_load(&n->parked) && !atomic_load(&n->pause) && conn_start(n) != 0) {
			shutdown(n->fd, SHUT_RDWR);
			atomic_store(&n->finished, true);
		}
	}
	stop_where(false, NULL, NULL);
}

/* scm_provider_on_quiesce (provider-handover.c): true, every connection
 * stops reading at its next request boundary, and holds the handover
 * until its requests in flight are answered; false (called off), they
 * read again. */
void nbd_quiesce(bool quiet)
{
	for (struct nbdconn *n = conns; n; n = n->next) {
		if (atomic_load(&n->finished))
			continue;
		if (quiet && n->running && !n->held) {
			n->held = true;
			scm_provider_hold(provider, 1);
		}
		if (!quiet)
			release(n);
		n->pause_at = mono_ns();
		atomic_store(&n->client_ns, 0);
		atomic_store(&n->pause, quiet);
		pthread_mutex_lock(&n->mu);
		pthread_cond_broadcast(&n->cv); /* the sender starts (or stops) waking the reader */
		pthread_mutex_unlock(&n->mu);
		if (quiet && n->running && atomic_load(&n->recv_since)) /* else the sender's kicks */
			pthread_kill(n->th, nbd_pause_signal());
		if (!quiet && !n->running && atomic_load(&n->parked) && conn_start(n) != 0) {
			shutdown(n->fd, SHUT_RDWR);
			atomic_store(&n->finished, true);
		}
	}
}

static void conn_end(struct nbdconn *n)
{
	atomic_store(&n->stop, true);
	/* both ways: the reader sees the end, the sender's next send fails at
	 * once and it drops the rest; the join waits for the requests the
	 * disk is running only, never for the client. Not once handed over:
	 * the socket is the new process's (a parked connection has no
	 * threads, its fd is only closed) */
	atomic_store(&n->broken, true);
	if (!(provider_handed_over || scm_provider_handed_over(provider)) || n->running)
		shutdown(n->fd, SHUT_RDWR);
	pthread_mutex_lock(&n->mu);
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
	if (n->running)
		pthread_join(n->th, NULL);
	release(n);
	close(n->fd);
	free(n->rbuf);
	n->c->nbd_conns--;
	if (n->acct)
		n->acct->nbd_conns--;
	conns_total--;
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->cv);
	free(n);
}

/* Ends the connections that match (all: every one; else those of c, or
 * of h), and reaps those that ended by themselves. */
static void stop_where(bool all, const struct channel *c, const struct handle *h)
{
	for (struct nbdconn **p = &conns; *p;) {
		struct nbdconn *n = *p;
		if (all || n->c == c || n->h == h || atomic_load(&n->finished)) {
			*p = n->next;
			conn_end(n);
		} else {
			p = &n->next;
		}
	}
}

void nbd_stop_handle(struct handle *h)
{
	stop_where(false, NULL, h);
}

void nbd_stop_channel(struct channel *c)
{
	stop_where(false, c, NULL);
}

void nbd_stop_all(void)
{
	stop_where(true, NULL, NULL);
}

int do_nbd_serve(scm_call *call, uint64_t handle, int conn, bool readonly, bool structured, uint64_t meta_id,
		 void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	struct channel *c = scm_call_channel_data(call);
	stop_where(false, NULL, NULL); /* reaps the ended ones */
	if (!scm_call_allows(call, "read"))
		return fail(call, SCM_E_DENIED, "nbd_serve: the grant does not allow read");
	if (c->nbd_conns >= NBD_CONNS_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "%u NBD connections are served for this channel already: no more",
			    NBD_CONNS_MAX);
	if (h->acct && h->acct->nbd_conns >= NBD_CONNS_CLIENT)
		return fail(call, SCM_VDISK_E_LIMIT, "%u NBD connections are served for this client already: no more",
			    NBD_CONNS_CLIENT);
	if (conns_total >= NBD_CONNS_TOTAL)
		return fail(call, SCM_VDISK_E_LIMIT, "the provider serves %u NBD connections already: no more",
			    NBD_CONNS_TOTAL);
	if (meta_id > UINT32_MAX)
		return fail(call, SCM_E_BAD_ARGS, "meta_id %llu: more than 32 bits", (unsigned long long)meta_id);
	/* a grant that allows nbd_serve lets the connection do what the
	 * handle may and the grant allows (read; write, trim, zero, flush,
	 * extents each if allowed): per-parameter rules on those cannot be checked per
	 * request, so such a grant exports through nbdkit's calls instead */
	const scm_grant *g = scm_call_grant(call);
	static const char *const ruled[] = { "*", "read", "write", "trim", "zero", "flush", "extents" };
	for (size_t i = 0; g && g->constraints && i < ELEMENTSOF(ruled); i++)
		if (json_object_object_get(g->constraints, ruled[i]))
			return fail(call, SCM_E_DENIED, "the grant constrains %s's parameters: a served connection "
				    "cannot check them per request (scm-vdisk export --nbdkit)", ruled[i]);
	int type = 0;
	socklen_t tl = sizeof type;
	if (getsockopt(conn, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM)
		return fail(call, SCM_E_BAD_ARGS, "conn: not a stream socket");
	if (pr_refused(call, h->d->pr, false))
		return 0;
	struct nbdconn *n = calloc(1, sizeof *n);
	int fd = fcntl(conn, F_DUPFD_CLOEXEC, 3);
	if (!n || fd < 0) {
		free(n);
		safe_close(fd);
		return fail(call, SCM_E_INTERNAL, "out of memory or fds");
	}
	/* blocking for the reader, whatever the caller left; the sender sends
	 * with MSG_DONTWAIT within its deadline */
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	bool rw = h->rw && scm_call_allows(call, "write"), w = rw && !readonly;
	*n = (struct nbdconn){ .c = c, .h = h, .d = h->d, .fd = fd, .rw = rw, .meta_id = (uint32_t)meta_id,
			       .may_trim = w && scm_call_allows(call, "trim"),
			       .may_zero = w && scm_call_allows(call, "zero"),
			       .may_flush = scm_call_allows(call, "flush"),
			       .may_extents = scm_call_allows(call, "extents"), .acct = h->acct,
			       .lim = { .size = h->d->virtual_size, .min_block = h->d->sector_size,
					.max_payload = NBD_MAX_PAYLOAD, .readonly = readonly || !rw,
					.structured = structured, .meta = structured && meta_id } };
	pr_nexus(call, n->nexus);
	n->qtail = &n->qhead;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	int e = conn_start(n);
	if (e) {
		close(fd);
		pthread_mutex_destroy(&n->mu);
		pthread_cond_destroy(&n->cv);
		free(n);
		return fail(call, SCM_E_INTERNAL, "starting the connection's thread: %s", strerror(e));
	}
	c->nbd_conns++;
	if (n->acct)
		n->acct->nbd_conns++;
	conns_total++;
	n->next = conns;
	conns = n;
	return scm_vdisk_nbd_serve_reply(call, !n->lim.readonly, n->may_trim, n->may_zero, n->may_flush,
					 n->may_extents);
}

/* Readers that ended and were not joined yet (their task may still be
 * queued): joined now, so save() sees where each connection stands. */
static void reap_done(void)
{
	for (struct nbdconn *n = conns; n; n = n->next)
		if (n->running && atomic_load(&n->done)) {
			pthread_join(n->th, NULL);
			n->running = false;
			release(n);
		}
	stop_where(false, NULL, NULL);
}

int nbd_save_check(unsigned *ret_n, scm_error **ret_err)
{
	unsigned k = 0;
	reap_done();
	for (struct nbdconn *n = conns; n; n = n->next, k++)
		if (n->running || !atomic_load(&n->parked))
			return scm_fail(ret_err, SCM_VDISK_E_BUSY,
					"an NBD connection is still finishing its requests: try again");
	*ret_n = k;
	return 0;
}

unsigned nbd_shed(unsigned keep)
{
	unsigned k = 0, ended = 0;
	for (struct nbdconn **p = &conns; *p;) {
		struct nbdconn *n = *p;
		if (k++ < keep) {
			p = &n->next;
			continue;
		}
		*p = n->next;
		conn_end(n); /* parked: its socket shut down (not handed over yet), closed */
		ended++;
	}
	return ended;
}

json_object *nbd_save_channel(struct channel *c)
{
	json_object *arr = json_object_new_array();
	for (struct nbdconn *n = conns; arr && n; n = n->next) {
		if (n->c != c || n->running || !atomic_load(&n->parked))
			continue;
		json_object *o = json_object_new_object();
		json_object_array_add(arr, o);
		/* < 0 (no room: save() counted them first): the new process
		 * refuses it, and the socket closes with both processes' fds */
		json_object_object_add(o, "fd", json_object_new_int(scm_handover_fd_add(provider, n->fd)));
		json_object_object_add(o, "handle", json_object_new_uint64((uint64_t)(n->h - c->h) + 1));
		json_object_object_add(o, "rw", json_object_new_boolean(n->rw));
		json_object_object_add(o, "readonly", json_object_new_boolean(n->lim.readonly));
		json_object_object_add(o, "structured", json_object_new_boolean(n->lim.structured));
		json_object_object_add(o, "meta_id", json_object_new_uint64(n->lim.meta ? n->meta_id : 0));
		json_object_object_add(o, "may_trim", json_object_new_boolean(n->may_trim));
		json_object_object_add(o, "may_zero", json_object_new_boolean(n->may_zero));
		json_object_object_add(o, "may_flush", json_object_new_boolean(n->may_flush));
		json_object_object_add(o, "may_extents", json_object_new_boolean(n->may_extents));
	}
	return arr;
}

static bool jbool(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static int64_t jint(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
											  : -1;
}

/* One saved connection of channel c, adopted; -errno and why when not. */
static int adopt(const scm_grant *g, struct channel *c, json_object *o, const char **ret_why)
{
	int64_t k = jint(o, "handle"), meta_id = jint(o, "meta_id");
	int fd = scm_handover_fd_take(provider, jint(o, "fd")), type = 0;
	socklen_t tl = sizeof type;
	struct handle *h = k >= 1 && k <= HANDLES_MAX ? &c->h[k - 1] : NULL;
	bool rw = jbool(o, "rw");
	*ret_why = fd < 0 ? "no such fd in the state"
		   : getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ? "not a stream socket"
		   : !h || !h->d ? "no such handle on the channel"
		   : rw && !h->rw ? "read-write on a read-only handle"
		   : meta_id < 0 || meta_id > UINT32_MAX ? "no meta_id of 32 bits"
		   /* test hook (vdisk-nbdserve.bats): a successor that cannot adopt it */
		   : getenv("SCM_VDISK_NBD_NOADOPT") ? "refused ($SCM_VDISK_NBD_NOADOPT)"
							 : NULL;
	struct nbdconn *n = *ret_why ? NULL : calloc(1, sizeof *n);
	if (!n) {
		if (fd >= 0) { /* the new process's own now: ended cleanly */
			shutdown(fd, SHUT_RDWR);
			close(fd);
		}
		if (!*ret_why)
			*ret_why = "out of memory";
		return -EINVAL;
	}
	bool w = rw && !jbool(o, "readonly"), structured = jbool(o, "structured");
	*n = (struct nbdconn){ .c = c, .h = h, .d = h->d, .fd = fd, .rw = rw, .meta_id = (uint32_t)meta_id,
			       .may_trim = w && jbool(o, "may_trim"), .may_zero = w && jbool(o, "may_zero"),
			       .may_flush = jbool(o, "may_flush"), .may_extents = jbool(o, "may_extents"),
			       .acct = h->acct,
			       .lim = { .size = h->d->virtual_size, .min_block = h->d->sector_size,
					.max_payload = NBD_MAX_PAYLOAD, .readonly = !w, .structured = structured,
					.meta = structured && meta_id } };
	/* who asks the reservation: the grant's caller, as pr_nexus says it */
	snprintf(n->nexus, sizeof n->nexus, "%s:%ld", g->caller && g->caller[0] ? g->caller : "host", (long)g->uid);
	n->qtail = &n->qhead;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, NULL);
	int e = conn_start(n);
	if (e) {
		shutdown(fd, SHUT_RDWR);
		close(fd);
		pthread_mutex_destroy(&n->mu);
		pthread_cond_destroy(&n->cv);
		free(n);
		*ret_why = strerror(e);
		return -e;
	}
	c->nbd_conns++;
	if (n->acct)
		n->acct->nbd_conns++;
	conns_total++;
	n->next = conns;
	conns = n;
	return 0;
}

void nbd_restore_channel(const scm_grant *g, struct channel *c, json_object *saved)
{
	size_t len = json_object_is_type(saved, json_type_array) ? json_object_array_length(saved) : 0;
	for (size_t i = 0; i < len; i++) {
		const char *why = NULL;
		if (adopt(g, c, json_object_array_get_idx(saved, i), &why) < 0)
			fprintf(stderr, "vdisk-provider: channel %llu: NBD connection %zu not adopted (%s): closed\n",
				(unsigned long long)g->channel, i, why);
	}
}
