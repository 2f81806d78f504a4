/* restart-handoff.c: the switch of a restart in place, with the successor
 * loaded before scmd stops serving (docs/restart.md, "The switch").
 *
 * What a new scmd costs before it can serve (the dynamic loader, the
 * policy, the audit sink, its loop) is paid while clients are still
 * served, so the blackout is only: the state written, its fds passed, the
 * tables rebuilt. The pid must not change (providers and exec'd processes
 * are scmd's children, systemd knows scmd by it), so it is not the
 * successor that is started beside scmd but a copy of scmd that goes on
 * serving:
 *
 *   scmd (pid P)  --fork-->  copy C: serves endpoints (connects, provider
 *        |                   control sockets) while P loads
 *        execve(NEW ... --standby FD)          |
 *        loads everything, then "ready" -----> quiet moment, state written
 *        <---- state memfd, then every fd (SCM_RIGHTS, by batches)
 *        restores, "done" -------------------> _exit(0); P reaps it
 *
 * The copy does nothing that makes a child (it is not the parent of P's
 * children and could not reap them): it does not read the control socket
 * (the daemon.restart call is answered by the successor, other control
 * calls wait in the queue as they did during an exec), does not activate
 * providers (a connect waits, carried as pending) and does not watch
 * containers or signals (what ends meanwhile is seen by P after the
 * restore: SIGCHLD stays pending for P, a pidfd stays readable). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "container-hook.h"
#include "restart.h"

#define HANDOFF_MAGIC "SCMDHAND"
#define EARLY_MAGIC "SCMDEARL" /* the early part, sent by the old scmd before its exec */
/* The early part waits in the socket until the successor reads it, and a
 * socketpair holds about 90 messages of 250 fds before a send blocks (the
 * old scmd would wait for a successor it has not exec'd yet): at most 512
 * containers (16 fds each at most) and 8192 channels go early. */
#define EARLY_MAX_CTRS 512
#define EARLY_MAX_CHANS 8192
#define FDS_PER_MSG 250 /* under the kernel's SCM_MAX_FD (253) */
#define QUIET_RETRY_MS 2
#define QUIET_WAIT_MS 10000

struct handoff_hdr {
	char magic[8];
	uint32_t n_fds; /* sent after this message, FDS_PER_MSG at a time */
	int32_t copy_pid; /* the sender, our child: reaped at its SIGCHLD (SO_PEERCRED
			   * would name the socketpair's maker, scmd itself) */
};

/* The serving copy's side. */
struct handoff {
	struct watch sp;    /* the socketpair to the successor */
	struct watch timer; /* quiet-moment retries */
	struct conn *reply; /* the daemon.restart call, or NULL */
	uint32_t call_id;
	char *refused; /* why the successor could not take over (handoff_fall_back) */
	struct scmd *d;
	/* what the old scmd sent early (early_expect): the channels whose fds
	 * went, by id, and whether the containers went */
	struct early_chan *early_chans;
	size_t n_early_chans;
	bool early_frozen;
	uint64_t wait_until;
};

static struct handoff *the_handoff; /* in the copy only */

static void early_forget(struct handoff *h);
static size_t fds_not_sent(struct scmd *d, struct handoff *h, int *fds, size_t n);
static int cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

void handoff_conn_gone(struct conn *c)
{
	if (the_handoff && the_handoff->reply == c)
		the_handoff->reply = NULL;
}

static int send_fds(int sp, const void *data, size_t len, const int *fds, size_t n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)] = { 0 };
	struct iovec iov = { (void *)data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n) {
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	ssize_t k;
	do
		k = sendmsg(sp, &mh, MSG_NOSIGNAL);
	while (k < 0 && errno == EINTR);
	return k == (ssize_t)len ? 0 : -errno;
}

/* What the quiet moment still waits for after its deadline is dropped:
 * the copy cannot give the restart up any more (the successor has its
 * pid). A client that does not read its replies is disconnected, a
 * provider that does not take its hand-offs in is stopped (activated
 * again by the successor). */
static void force_quiet(struct scmd *d)
{
	for (struct list *p = d->endpoints.next; p != &d->endpoints; p = p->next) {
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		for (struct list *q = ep->conns.next; q != &ep->conns; q = q->next) {
			struct conn *c = list_entry(q, struct conn, node);
			if (c->outq.frames && !c->dead) {
				log_warning("restart: a client of endpoint %s did not read its replies: disconnected",
					    ep->name);
				conn_kill(d, c);
			}
		}
	}
	for (struct list *q = d->host.conns.next; q != &d->host.conns; q = q->next) {
		struct conn *c = list_entry(q, struct conn, node);
		if (c->outq.frames && !c->dead)
			conn_kill(d, c);
	}
	conn_reap_dead(d);
	for (struct list *p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (s->ctl_q.frames && s->ctl.fd >= 0) {
			log_warning("restart: the provider of '%s' did not take its channels in: stopped", s->name);
			watch_del(d, &s->ctl);
			s->ctl.fd = safe_close(s->ctl.fd);
			scm_outq_clear(&s->ctl_q);
			if (s->pid > 0)
				kill(s->pid, SIGKILL);
		}
	}
}

/* A part of the hand-off: a header (magic, how many fds follow), a memfd
 * (-1: none) with it, then the fds, FDS_PER_MSG a message, each message's
 * data their numbers here. */
static int send_part(int sp, const char *magic, int memfd, const int *fds, size_t n)
{
	struct handoff_hdr hdr = { .n_fds = (uint32_t)n, .copy_pid = (int32_t)getpid() };
	memcpy(hdr.magic, magic, 8);
	int r = send_fds(sp, &hdr, sizeof(hdr), &memfd, memfd >= 0 ? 1 : 0);
	/* test hook: the early part cut after its first fds, as a send that
	 * fails half way (ENOBUFS) leaves it (tests/bats/core-restart.bats) */
	bool cut = memcmp(magic, EARLY_MAGIC, 8) == 0 && getenv("SCMD_TEST_CUT_EARLY");
	for (size_t i = 0; r == 0 && i < n; i += FDS_PER_MSG) {
		if (cut && i > 0)
			return -ENOBUFS;
		size_t k = n - i < FDS_PER_MSG ? n - i : FDS_PER_MSG;
		int32_t nums[FDS_PER_MSG];
		for (size_t j = 0; j < k; j++)
			nums[j] = fds[i + j];
		r = send_fds(sp, nums, k * sizeof(int32_t), fds + i, k);
	}
	return r;
}

/* "F<why>" from the successor (handoff_fall_back): it could not take over
 * and execs the previous binary, which says "ready" again when loaded. The
 * message is read whole (a seqpacket's rest is lost) into msg[k]. */
static bool took_refusal(struct handoff *h, char *msg, ssize_t k)
{
	if (k < 1 || msg[0] != 'F')
		return false;
	msg[k] = 0;
	free(h->refused);
	h->refused = strdup(msg[1] ? msg + 1 : "(it said nothing)");
	/* the previous binary takes the containers and every fd with the state */
	h->d->handoff_ctrs_early = false;
	early_forget(h);
	log_error("restart: the successor could not take over (%s); the previous binary takes the state back",
		  h->refused ? h->refused : "?");
	return true;
}

/* The copy: the state and every fd it names to the successor, then wait
 * for its word: gone when it took over; back to serving when it could not
 * and our own binary is loading to take the state back. */
static void send_state(struct scmd *d, struct handoff *h)
{
	int memfd = -1;
	struct state_out so;
	scm_error *e = NULL;
	/* the blackout starts here: the switch's log line counts from it */
	uint64_t t0 = now_usec();
	conn_reap_dead(d);
	restart_save(d, false, h->reply ? h->reply->w.fd : -1, h->call_id, &so);
	json_object *st = so.json;
	json_object_object_add(json_object_object_get(st, "scmd"), "exec_at", json_object_new_int64((int64_t)t0));
	json_object *rep = json_object_object_get(st, "reply");
	if (h->refused && rep)
		json_object_object_add(rep, "refused", json_object_new_string(h->refused));
	/* not read back here: the successor's reader checks it whole (the
	 * dry run proved it reads this version) before it takes anything */
	if (state_out_memfd(&so, &memfd, &e) != 0) {
		log_error_chain(LOG_ERR, e, "restart: the state for the successor:");
		_exit(1); /* the successor sees the hang-up and says so */
	}
	int r = send_part(h->sp.fd, HANDOFF_MAGIC, memfd, so.fds, fds_not_sent(d, h, so.fds, so.n_fds));
	if (r != 0) {
		/* the successor waits for the fds promised: an empty message (or
		 * our hang-up) tells it it has none coming and it falls back
		 * (handoff_take_state), so the previous binary can try again */
		log_error("restart: handing the fds to the successor: %s", strerror(-r));
		if (send_fds(h->sp.fd, "", 0, NULL, 0) != 0)
			shutdown(h->sp.fd, SHUT_WR);
	}
	safe_close(memfd);
	state_out_done(&so);
	/* serve nothing more: what we would change now is not in the state */
	char msg[4096];
	ssize_t k;
	do
		k = read(h->sp.fd, msg, sizeof(msg) - 1);
	while (k < 0 && errno == EINTR);
	if (took_refusal(h, msg, k))
		return; /* it says "ready" again when loaded */
	_exit(k == 1 && msg[0] == 'D' ? 0 : 1);
}

static void try_send(struct scmd *d, struct handoff *h)
{
	const char *why = restart_quiet(d);
	if (why && now_usec() < h->wait_until) {
		timer_arm(&h->timer, QUIET_RETRY_MS);
		return;
	}
	if (why)
		force_quiet(d);
	send_state(d, h);
}

static void on_timer(struct scmd *d, struct watch *w, uint32_t events)
{
	uint64_t ticks;
	if (read(w->fd, &ticks, sizeof(ticks)) == sizeof(ticks))
		try_send(d, the_handoff);
}

static void on_successor(struct scmd *d, struct watch *w, uint32_t events)
{
	char msg[4096];
	ssize_t k = read(w->fd, msg, sizeof(msg) - 1);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* it failed before it took the state (its policy did not load...):
	 * serve on until the previous binary says "ready" */
	if (took_refusal(the_handoff, msg, k))
		return;
	if (k != 1 || (msg[0] != 'R' && msg[0] != 'E')) {
		/* the successor died before it was ready: scmd is gone with it */
		log_error("restart: the successor exited before it took the state over");
		_exit(1);
	}
	/* "E": it took what the old scmd sent early; "R": it did not (an
	 * older successor, or our binary taking the state back) */
	d->handoff_ctrs_early = msg[0] == 'E' && the_handoff->early_frozen;
	if (msg[0] != 'E')
		early_forget(the_handoff);
	the_handoff->wait_until = now_usec() + QUIET_WAIT_MS * 1000ull;
	try_send(d, the_handoff);
}

/* The containers' part of the state does not change in the copy: it
 * watches no container (no pidfd, output or timer), reads no control
 * call (no run, stop, wait or exec), and a connection it closes drops
 * only `wait`/`stop` waiters. So a successor that takes them early (its
 * dry run says so) is sent them, with their fds and the provider ends of
 * the channels live at the fork, by the old scmd itself between the fork
 * of the copy and its exec (send_early): the copy serves meanwhile, and
 * the successor reads and checks them before it says it is ready ("E").
 * The state written at the quiet moment then has no containers, and only
 * the fds of what is new since (fds_not_sent). Not when a container has
 * `wait`/`stop` waiters (a connection the copy closes would leave its
 * number in the JSON, and a new connection may get that number) or a
 * stop's SIGKILL deadline (its time left is counted when the state is
 * written): then an empty JSON object, and they come with the state. */
static bool ctrs_frozen(struct scmd *d)
{
	size_t n = 0;
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if (!list_empty(&t->waiters) || (t->kill_at && !t->exited) || ++n > EARLY_MAX_CTRS)
			return false;
	}
	return true;
}

static bool chans_fit(struct scmd *d)
{
	size_t n = 0;
	for (struct list *p = d->channels.next; p != &d->channels; p = p->next)
		if (++n > EARLY_MAX_CHANS)
			return false;
	return true;
}

/* The early part: the containers when with (else {}), their fds and the
 * channels' provider ends. 0: containers sent, 1: {} sent, <0: nothing
 * or a part of it. */
static int send_ctrs(struct scmd *d, int sp, bool with)
{
	int *fds = NULL, memfd = -1;
	size_t n = 0, cap = 0;
	json_object *a = with ? restart_save_containers(d, false, &fds, &n, &cap) : NULL;
	const char *text = a ? json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN) : NULL;
	bool ok = text && state_memfd_write(text, strlen(text), NULL, 0, SCMD_STATE_VERSION, &memfd, NULL) == 0;
	if (!ok) {
		n = 0;
		if (state_memfd_write("{}", 2, NULL, 0, SCMD_STATE_VERSION, &memfd, NULL) != 0)
			memfd = -1; /* no memfd at all: with the state too */
	}
	bool chans = chans_fit(d);
	for (struct list *p = d->channels.next; chans && p != &d->channels; p = p->next)
		fd_list_add(&fds, &n, &cap, list_entry(p, struct channel, node)->w.fd);
	int r = send_part(sp, EARLY_MAGIC, memfd, fds, n);
	safe_close(memfd);
	json_object_put(a);
	free(fds);
	return r < 0 ? r : ok ? 0 : 1;
}

/* The old scmd, after the fork of the copy: true when the early part went
 * whole, as the copy expects it (the containers exactly when frozen). */
static bool send_early(struct scmd *d, int sp)
{
	bool frozen = ctrs_frozen(d);
	int r = send_ctrs(d, sp, frozen);
	if (r < 0 || r != (frozen ? 0 : 1)) {
		log_warning("restart: the containers and channels could not be sent early (%s): they go with the state",
			    r < 0 ? strerror(-r) : "out of memory");
		return false;
	}
	return true;
}

/* The channels live at the fork, whose fds the old scmd sent early: not
 * sent again while the channel lives under the same number. */
struct early_chan {
	uint64_t id;
	int fd;
};

static int cmp_early(const void *a, const void *b)
{
	const struct early_chan *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

/* The copy, at its start: what the old scmd sends early, from the same
 * tables (taken at "E", forgotten at "R"). */
static void early_expect(struct scmd *d, struct handoff *h)
{
	size_t n = 0;
	bool chans = chans_fit(d);
	for (struct list *p = d->channels.next; chans && p != &d->channels; p = p->next)
		n++;
	struct early_chan *ec = calloc(n + 1, sizeof(*ec));
	if (!ec)
		_exit(1); /* the successor sees the hang-up and says so */
	size_t i = 0;
	for (struct list *p = d->channels.next; n && p != &d->channels; p = p->next, i++)
		ec[i] = (struct early_chan){ list_entry(p, struct channel, node)->id,
					     list_entry(p, struct channel, node)->w.fd };
	qsort(ec, n, sizeof(*ec), cmp_early);
	h->early_chans = ec;
	h->n_early_chans = n;
	h->early_frozen = ctrs_frozen(d);
}

static void early_forget(struct handoff *h)
{
	free(h->early_chans);
	h->early_chans = NULL;
	h->n_early_chans = 0;
}

/* The state's fds (sorted) less those of channels that went early and
 * live under the same number: the successor has them. */
static size_t fds_not_sent(struct scmd *d, struct handoff *h, int *fds, size_t n)
{
	if (!h->n_early_chans)
		return n;
	_cleanup_free_ int *skip = calloc(h->n_early_chans + 1, sizeof(int));
	size_t k = 0;
	for (struct list *p = d->channels.next; skip && p != &d->channels; p = p->next) {
		struct channel *ch = list_entry(p, struct channel, node);
		struct early_chan key = { ch->id, 0 };
		struct early_chan *e = bsearch(&key, h->early_chans, h->n_early_chans, sizeof(key), cmp_early);
		if (e && e->fd == ch->w.fd && k < h->n_early_chans)
			skip[k++] = ch->w.fd;
	}
	if (!skip)
		return n;
	qsort(skip, k, sizeof(int), cmp_int);
	size_t out = 0, j = 0;
	for (size_t i = 0; i < n; i++) {
		while (j < k && skip[j] < fds[i])
			j++;
		if (j < k && skip[j] == fds[i])
			continue;
		fds[out++] = fds[i];
	}
	return out;
}

/* The copy sets up its own loop: endpoints' listening sockets and
 * connections, providers' control sockets, the successor. */
static void become_copy(struct scmd *d, int sp, struct conn *reply, uint32_t call_id, bool early)
{
	static struct handoff h;
	h = (struct handoff){ .sp = { sp, on_successor }, .reply = reply, .call_id = call_id, .d = d,
			      .timer = { timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK), on_timer } };
	the_handoff = &h;
	int old = d->epoll_fd;
	d->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	close(old);
	if (d->batch)
		d->batch->n = d->batch->i + 1; /* the rest of the batch is the successor's */
	d->restoring = true;  /* nothing activates (registry.c) */
	d->handoff_numbers = true;
	channel_unqueue_watches(d); /* it watches no channel */
	d->fdstore = NULL;    /* systemd hears from P only */
	d->store_dirty = false;
	if (d->epoll_fd < 0 || h.timer.fd < 0 || watch_add(d, &h.sp, EPOLLIN) < 0 || watch_add(d, &h.timer, EPOLLIN) < 0)
		_exit(1);
	for (struct list *p = d->endpoints.next; p != &d->endpoints; p = p->next) {
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		if (ep->listen.fd >= 0)
			watch_add(d, &ep->listen, EPOLLIN);
		for (struct list *q = ep->conns.next; q != &ep->conns; q = q->next) {
			struct conn *c = list_entry(q, struct conn, node);
			if (!c->dead)
				watch_add(d, &c->w, EPOLLIN | (c->outq.frames ? EPOLLOUT : 0));
		}
	}
	for (struct list *p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (s->ctl.fd >= 0)
			watch_add(d, &s->ctl, EPOLLIN | (s->ctl_q.frames ? EPOLLOUT : 0));
	}
	if (early)
		early_expect(d, &h);
}

int handoff_start(struct scmd *d, const char *exe, bool early, struct conn *reply, uint32_t call_id,
		  scm_error **ret_err)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return scm_fail(ret_err, -errno, "socketpair: %m");
	/* the compressor helper is idle (quiet): a child the successor would
	 * not know; it starts one when a log rotates */
	logzip_stop(d);
	pid_t pid = fork();
	if (pid < 0) {
		int r = -errno;
		close(sp[0]);
		close(sp[1]);
		return scm_fail(ret_err, r, "fork: %s", strerror(-r));
	}
	if (pid == 0) {
		close(sp[0]);
		become_copy(d, sp[1], reply, call_id, early);
		return 1;
	}
	/* how much heap our tables take: the successor faults that much in
	 * before it says it is ready (handoff_prefault) */
	struct mallinfo2 mi = mallinfo2();
	/* the containers and channels, sent early on the copy's end while it
	 * serves; the successor is told to read them first (",1") only when
	 * they went whole. (Lowering this process's priority meanwhile, so
	 * the copy that serves comes first, was tried and dropped: a busy
	 * container then stretched the copy's lone serving 3-fold, and a
	 * successor that could not take the value back would have run, and
	 * forked every provider and container, at nice 19.) */
	if (early)
		early = send_early(d, sp[1]);
	close(sp[1]);
	char fdarg[96], **argv = NULL;
	size_t argc = strv_length(d->argv);
	argv = calloc(argc + 3, sizeof(char *));
	if (!argv)
		abort(); /* the copy sees the hang-up */
	argv[0] = (char *)exe;
	for (size_t i = 1; i < argc; i++)
		argv[i] = d->argv[i];
	argv[argc] = (char *)"--standby";
	argv[argc + 1] = fdarg;
	/* our own binary, for the successor to fall back on (handoff_fall_back) */
	int self = open("/proc/self/exe", O_PATH);
	/* ",1": the containers and channels went early (only to a successor
	 * whose dry run said it takes them: an older one refuses the field) */
	char tail[24] = "";
	if (early)
		snprintf(tail, sizeof(tail), ",1");
	snprintf(fdarg, sizeof(fdarg), "%d,%zu,%d,%zu%s", sp[0], mi.arena, self, argc, tail);
	log_notice("restarting in place: exec %s (state version %u) while a copy (pid %d) serves", exe,
		   SCMD_STATE_VERSION, (int)pid);
	audit_event(d->audit, "daemon-restart", "\"exec\":%s,\"generation\":%llu", audit_quote(exe),
		    (unsigned long long)d->generation + 1);
	int f = fcntl(sp[0], F_GETFD);
	(void)fcntl(sp[0], F_SETFD, f & ~FD_CLOEXEC);
	execv(exe, argv);
	/* The dry run of this very file passed a moment ago. Our tables are
	 * the copy's now: this binary takes them back as any successor. */
	log_error("restart: exec %s: %m; taking the state back with %s", exe, "/proc/self/exe");
	argv[0] = (char *)"/proc/self/exe";
	execv(argv[0], argv);
	log_error("restart: exec /proc/self/exe: %m; scmd stops");
	kill(pid, SIGKILL);
	_exit(1);
}

static int recv_fds(int sp, void *data, size_t len, int *fds, size_t max, size_t *ret_n, scm_error **ret_err)
{
	char cbuf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
	struct iovec iov = { data, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t k;
	do
		k = recvmsg(sp, &mh, MSG_CMSG_CLOEXEC);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return scm_fail(ret_err, -errno, "receiving from the old scmd: %m");
	if (k == 0)
		return scm_fail(ret_err, -EPIPE, "the old scmd gave up or hung up before it handed its state over");
	size_t n = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t c = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < c; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (n < max)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	if (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
		return scm_fail(ret_err, -EMSGSIZE, "a message from the old scmd was cut (out of fds?)");
	}
	*ret_n = n;
	return (int)k;
}

static int cmp_pair(const void *a, const void *b)
{
	const int *x = a, *y = b;
	return (x[0] > y[0]) - (x[0] < y[0]);
}

/* A part's header read where the previous part's fds were expected: the
 * old scmd's send of that part failed half way (SEQPACKET keeps messages
 * whole, so what came is whole messages, and an fd message, numbers under
 * 2^24, never starts with a magic), and this is the next part, read
 * again by the next recv_part. */
static struct handoff_hdr pending_hdr;
static int pending_memfd = -1;
static bool have_pending;

static bool is_hdr(const void *buf, int k)
{
	return k == (int)sizeof(struct handoff_hdr) &&
	       (memcmp(buf, HANDOFF_MAGIC, 8) == 0 || memcmp(buf, EARLY_MAGIC, 8) == 0);
}

/* One part of the hand-off (send_part): its header into *hdr, its memfd
 * (-1: none), its fds appended to pairs (number there, fd here; *n
 * counts them, and on failure too, for the caller to close). -ENODATA:
 * the part was cut short (its sender failed), the next one waits. */
static int recv_part(int sp, struct handoff_hdr *hdr, int *memfd, int **pairs, size_t *n, scm_error **ret_err)
{
	size_t got = 0;
	*memfd = -1;
	int k;
	if (have_pending) {
		*hdr = pending_hdr;
		*memfd = pending_memfd;
		got = pending_memfd >= 0;
		k = (int)sizeof(*hdr);
		have_pending = false;
		pending_memfd = -1;
	} else if ((k = recv_fds(sp, hdr, sizeof(*hdr), memfd, 1, &got, ret_err)) < 0)
		return k;
	bool state = memcmp(hdr->magic, HANDOFF_MAGIC, 8) == 0, early = memcmp(hdr->magic, EARLY_MAGIC, 8) == 0;
	if ((size_t)k != sizeof(*hdr) || !(state || early) || (state && got != 1) || hdr->n_fds > (1u << 24)) {
		if (got)
			close(*memfd);
		*memfd = -1;
		return scm_fail(ret_err, SCM_E_PROTOCOL, "the old scmd's hand-off does not start with its state");
	}
	if (!got)
		*memfd = -1;
	int *p = realloc(*pairs, (*n + hdr->n_fds + 1) * 2 * sizeof(int));
	if (!p) {
		safe_close(*memfd);
		*memfd = -1;
		return -ENOMEM;
	}
	*pairs = p;
	for (size_t have = 0; have < hdr->n_fds;) {
		int32_t nums[FDS_PER_MSG];
		int fds[FDS_PER_MSG];
		k = recv_fds(sp, nums, sizeof(nums), fds, FDS_PER_MSG, &got, ret_err);
		if (k >= 0 && is_hdr(nums, k) && got <= 1) {
			memcpy(&pending_hdr, nums, sizeof(pending_hdr));
			pending_memfd = got ? fds[0] : -1;
			have_pending = true;
			safe_close(*memfd);
			*memfd = -1;
			return scm_fail(ret_err, -ENODATA, "the old scmd's %s part was cut short after %zu of its %u fds",
					memcmp(hdr->magic, EARLY_MAGIC, 8) == 0 ? "early" : "state", have,
					(unsigned)hdr->n_fds);
		}
		if (k >= 0 && ((size_t)k != got * sizeof(int32_t) || got == 0 || have + got > hdr->n_fds)) {
			for (size_t i = 0; i < got; i++)
				close(fds[i]);
			k = scm_fail(ret_err, SCM_E_PROTOCOL, "the old scmd's fds do not match their numbers");
			if (k >= 0) /* (scm_fail gives the positive code: a failure all the same) */
				k = -EPROTO;
		}
		if (k < 0) {
			safe_close(*memfd);
			*memfd = -1;
			return k;
		}
		for (size_t i = 0; i < got; i++) {
			(*pairs)[2 * *n] = nums[i];
			(*pairs)[2 * *n + 1] = fds[i];
			++*n;
		}
		have += got;
	}
	return 0;
}

static void close_pairs(int *pairs, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		close(pairs[2 * i + 1]);
}

static uint64_t cpu_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int handoff_take_state(int sp, bool early, json_object **ret_st, struct fdmap *ret_map, uint64_t *ret_fds_at,
		       uint64_t *ret_ready_cpu, pid_t *ret_copy, scm_error **ret_err)
{
	struct handoff_hdr hdr;
	int memfd = -1, *pairs = NULL, r;
	size_t n = 0;
	json_object *ctrs = NULL;
	if (early) {
		/* the containers, sent by the copy at its start: read and
		 * checked now, while the copy still serves */
		r = recv_part(sp, &hdr, &memfd, &pairs, &n, ret_err);
		if (r == 0 && memcmp(hdr.magic, EARLY_MAGIC, 8) != 0)
			r = scm_fail(ret_err, SCM_E_PROTOCOL, "the old scmd's copy did not send the containers first");
		if (r == 0 && memfd >= 0)
			r = state_containers_read(memfd, &ctrs, ret_err);
		memfd = safe_close(memfd);
		if (r != 0) {
			close_pairs(pairs, 0, n);
			free(pairs);
			r = scm_fail(ret_err, r, "the containers handed over early by the old scmd");
			return r == 1 ? -EIO : r;
		}
	}
	size_t n_early = n;
	*ret_ready_cpu = cpu_usec(); /* the switch's CPU counts from here */
	/* "E": ready, and the early part taken */
	if (write(sp, early ? "E" : "R", 1) != 1) {
		r = scm_fail(ret_err, -errno, "telling the old scmd we are ready: %m");
		goto fail;
	}
	for (;;) {
		size_t before = n;
		r = recv_part(sp, &hdr, &memfd, &pairs, &n, ret_err);
		if (r == -ENODATA) { /* a part the old scmd could not send whole (the early one): not ours */
			if (ret_err) {
				_cleanup_free_ char *t = scm_error_text(*ret_err);
				log_warning("restart: %s; dropped", t ? t : "a part was cut short");
				scm_error_free(*ret_err);
				*ret_err = NULL;
			}
			close_pairs(pairs, before, n);
			n = before;
			continue;
		}
		if (r != 0)
			goto fail;
		if (memcmp(hdr.magic, HANDOFF_MAGIC, 8) == 0)
			break;
		/* containers sent early to a successor that failed before it
		 * took them (we are the previous binary, taking them with the
		 * state): not ours */
		close_pairs(pairs, before, n);
		n = before;
		memfd = safe_close(memfd);
	}
	*ret_copy = hdr.copy_pid > 0 && hdr.copy_pid != getpid() ? (pid_t)hdr.copy_pid : 0;
	*ret_fds_at = now_usec();
	json_object *st = NULL;
	r = state_memfd_read_restore(memfd, &st, &ret_map->chans, ret_err);
	memfd = safe_close(memfd);
	/* a number in both parts: the early one's channel ended in the copy
	 * and the number was given to another fd since; the state's wins */
	qsort(pairs + 2 * n_early, n - n_early, 2 * sizeof(int), cmp_pair);
	size_t kept = 0;
	for (size_t i = 0; i < n_early; i++) {
		if (bsearch(&pairs[2 * i], pairs + 2 * n_early, n - n_early, 2 * sizeof(int), cmp_pair)) {
			close(pairs[2 * i + 1]);
			continue;
		}
		pairs[2 * kept] = pairs[2 * i];
		pairs[2 * kept + 1] = pairs[2 * i + 1];
		kept++;
	}
	memmove(pairs + 2 * kept, pairs + 2 * n_early, (n - n_early) * 2 * sizeof(int));
	n = kept + (n - n_early);
	qsort(pairs, n, 2 * sizeof(int), cmp_pair);
	ret_map->old_fd = calloc(n + 1, sizeof(int));
	ret_map->new_fd = calloc(n + 1, sizeof(int));
	ret_map->used = calloc(n + 1, sizeof(bool));
	if (r == 0 && (!ret_map->old_fd || !ret_map->new_fd || !ret_map->used))
		r = -ENOMEM;
	if (r != 0) {
		json_object_put(st);
		fdmap_done(ret_map);
		r = scm_fail(ret_err, r, "the state handed over by the old scmd");
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		ret_map->old_fd[i] = pairs[2 * i];
		ret_map->new_fd[i] = pairs[2 * i + 1];
	}
	free(pairs);
	ret_map->n = n;
	ret_map->sorted = true;
	ret_map->from_copy = true; /* take_fd's check: see fd_check_from_copy */
	ret_map->ctrs = ctrs;
	*ret_st = st;
	return 1;
fail:
	safe_close(memfd);
	close_pairs(pairs, 0, n);
	free(pairs);
	json_object_put(ctrs);
	return r == 1 || r == 0 ? -EIO : r; /* never 1: that is success */
}

/* A new process's heap is not there yet: every page the restore touches
 * first costs a page fault (a sixth of the successor's time in the switch
 * with 1,000 channels). So it is grown and touched while the old scmd
 * still serves, and kept (no trimming) until the restore is over. */
void handoff_prefault(size_t bytes)
{
	if (bytes < (4u << 20))
		bytes = 4u << 20;
	if (bytes > (30u << 20)) /* malloc takes no larger M_MMAP_THRESHOLD (32 MiB) */
		bytes = 30u << 20;
	mallopt(M_MMAP_THRESHOLD, (int)(bytes + (1u << 20))); /* from the heap, not an mmap */
	mallopt(M_TRIM_THRESHOLD, (int)(bytes * 2));
	char *p = malloc(bytes);
	if (p)
		memset(p, 0, bytes);
	free(p);
}

void handoff_prefault_end(void)
{
	/* malloc's defaults again (the thresholds are fixed once set: these
	 * are its initial values) */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

void handoff_fall_back(int sp, int self_fd, size_t self_argc, const scm_error *e, char **args)
{
	_cleanup_free_ char *why = scm_error_text(e);
	char msg[4096];
	int n = snprintf(msg, sizeof(msg), "F%s", why ? why : "");
	if (write(sp, msg, (size_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1)) < 0 || self_fd < 0)
		return;
	size_t argc = strv_length(args);
	if (self_argc && self_argc < argc)
		argc = self_argc; /* what the previous scmd ran with, not what a wrapper added */
	char fdarg[48], **argv = calloc(argc + 3, sizeof(char *));
	if (!argv)
		return;
	snprintf(fdarg, sizeof(fdarg), "%d,0,-1,0", sp); /* no further fall-back */
	for (size_t i = 0; i < argc; i++)
		argv[i] = args[i];
	argv[argc] = (char *)"--standby";
	argv[argc + 1] = fdarg;
	int f = fcntl(sp, F_GETFD);
	(void)fcntl(sp, F_SETFD, f & ~FD_CLOEXEC);
	log_notice("restart: the previous scmd binary takes the state back");
	execveat(self_fd, "", argv, environ, AT_EMPTY_PATH);
	log_error("restart: exec of the previous binary: %m");
	free(argv);
}

void handoff_done(int sp)
{
	if (write(sp, "D", 1) != 1)
		log_warning("restart: telling the old scmd's copy to go: %m");
	close(sp);
}
