/* tls.c: the VeNCrypt worker (tls.h). One thread, one epoll set,
 * everything non-blocking and edge-triggered: each connection is stepped
 * until it can make no progress, and an edge on either of its sockets
 * steps it again, so a viewer that sends one byte a second, or stops
 * reading, holds only its own connection.
 *
 * A connection goes through three phases: the RFB/VeNCrypt dialogue
 * (vencrypt.c; at most GFX_RFB_PREAUTH_MAX connections at once, the
 * newest closes the oldest, and GFX_TLS_HANDSHAKE_NS for it and the TLS
 * handshake together), the TLS handshake (GnuTLS, anonymous for TLSVnc,
 * the desktop's certificate for X509Vnc), then the relay: a socketpair
 * whose other end libvncserver gets, primed with the replayed
 * ProtocolVersion and choice of VNC authentication; libvncserver's own
 * answer to that replay is checked and dropped, everything else is
 * copied both ways. After libvncserver hangs up, what it wrote still
 * goes out for GFX_TLS_DRAIN_NS at most. A viewer that chose plain VNC
 * authentication is not relayed: its own socket goes to the proxy's
 * thread with the replay (hand_plain), which a restarted proxy can then
 * carry. Why a thread and not the
 * proxy's loop: libvncserver writes an update with blocking waits, and a
 * full update is larger than a socketpair holds, so someone must drain
 * the other end while the proxy's thread is inside libvncserver. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "rfb.h"
#include "scm/macro.h"
#include "tls.h"

#define TLS_BUF 16384 /* a TLS record's payload */
#define GFX_TLS_HANDSHAKE_NS (10LL * 1000000000LL)
#define GFX_TLS_DRAIN_NS (2LL * 1000000000LL)
#define QUEUE_MAX 16

enum phase { PH_VENC, PH_TLS, PH_RELAY };

typedef struct tconn tconn;
typedef struct ep_ref {
	tconn *c;
} ep_ref;

struct tconn {
	tconn *next;
	int fd, pair; /* the viewer; our end of libvncserver's socketpair */
	gnutls_session_t s; /* NULL: plain VNC authentication */
	gfx_venc v;
	size_t out_off;
	enum phase ph;
	int64_t since; /* accepted; in the relay, when libvncserver hung up */
	char peer[64];
	uint8_t up[TLS_BUF], down[TLS_BUF]; /* viewer to libvncserver, and back */
	size_t up_len, up_off, down_len, down_off;
	uint8_t greet[16];
	size_t greet_len, greet_seen;
	bool pair_eof;
	ep_ref ref;
};

typedef gfx_tls_conn qent;

struct gfx_tls {
	gfx_sec_types types;
	struct gfx_tls_cert cert; /* X509Vnc */
	gnutls_anon_server_credentials_t anon;
	gnutls_priority_t prio, prio_anon;
	void (*log)(void *, const char *);
	void *log_ud;
	int epfd, wake, timer, ready;
	bool timer_armed;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	pthread_mutex_t lock; /* the two queues */
	qent in[QUEUE_MAX], out[QUEUE_MAX];
	size_t n_in, n_out;
	atomic_uint_fast64_t refused, sessions;
	tconn *conns; /* the worker's own */
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void say(gfx_tls *t, const tconn *c, const char *fmt, const char *what)
{
	char line[256];
	snprintf(line, sizeof(line), "VeNCrypt: %s: %s%s", c->peer, fmt, what ? what : "");
	if (t->log)
		t->log(t->log_ud, line);
}

static void conn_close(gfx_tls *t, tconn *c)
{
	for (tconn **p = &t->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	if (c->s) {
		if (c->ph == PH_RELAY)
			(void)gnutls_bye(c->s, GNUTLS_SHUT_WR); /* best effort, non-blocking */
		gnutls_deinit(c->s);
	}
	/* Closing an fd takes it out of the epoll set. */
	safe_close(c->fd);
	safe_close(c->pair);
	free(c);
}

static void refuse(gfx_tls *t, tconn *c, const char *why, const char *what)
{
	say(t, c, why, what);
	atomic_fetch_add(&t->refused, 1);
	conn_close(t, c);
}

/* Plain VNC authentication: the viewer's own socket goes to the proxy's
 * thread, which gives libvncserver the replay and the viewer the rest of
 * libvncserver's answer (the challenge), with nothing relayed after: a
 * direct socket is what a restarted proxy can carry (rfb_handover.c).
 * Returns 0 with c closed (its fd no longer ours), or a negative errno. */
static int hand_plain(gfx_tls *t, tconn *c)
{
	pthread_mutex_lock(&t->lock);
	bool room = t->n_out < QUEUE_MAX;
	if (room) {
		qent *q = &t->out[t->n_out++];
		*q = (qent){ .fd = c->fd, .plain = true };
		snprintf(q->peer, sizeof(q->peer), "%s", c->peer);
		q->replay_len = gfx_venc_replay(&c->v, q->replay);
		uint8_t g[16];
		q->greet_len = gfx_venc_greeting(&c->v, g);
	}
	pthread_mutex_unlock(&t->lock);
	if (!room)
		return -EBUSY;
	epoll_ctl(t->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->fd = -1;
	conn_close(t, c);
	uint64_t one = 1;
	(void)!write(t->ready, &one, sizeof(one));
	return 0;
}

/* libvncserver's end goes to the proxy's thread. */
static int hand_over(gfx_tls *t, tconn *c)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	uint8_t replay[13];
	size_t n = gfx_venc_replay(&c->v, replay);
	/* An empty socketpair takes 13 bytes at once. */
	if (send(sp[0], replay, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n) {
		close(sp[0]), close(sp[1]);
		return -EIO;
	}
	if (fcntl(sp[0], F_SETFL, O_NONBLOCK) < 0) {
		close(sp[0]), close(sp[1]);
		return -errno;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &c->ref };
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, sp[0], &ev) < 0) {
		close(sp[0]), close(sp[1]);
		return -errno;
	}
	pthread_mutex_lock(&t->lock);
	bool room = t->n_out < QUEUE_MAX;
	if (room) {
		qent *q = &t->out[t->n_out++];
		*q = (qent){ .fd = sp[1], .tls = c->s != NULL };
		snprintf(q->peer, sizeof(q->peer), "%s", c->peer);
	}
	pthread_mutex_unlock(&t->lock);
	if (!room) {
		close(sp[0]), close(sp[1]);
		return -EBUSY;
	}
	c->pair = sp[0];
	c->greet_len = gfx_venc_greeting(&c->v, c->greet);
	c->ph = PH_RELAY;
	if (c->s)
		atomic_fetch_add(&t->sessions, 1);
	uint64_t one = 1;
	(void)!write(t->ready, &one, sizeof(one));
	return 0;
}

static int start_tls(gfx_tls *t, tconn *c)
{
	bool x509 = c->v.subtype == GFX_VENC_X509VNC;
	if (gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0)
		return -ENOMEM;
	int g = gnutls_priority_set(c->s, x509 ? t->prio : t->prio_anon);
	if (g >= 0)
		g = x509 ? gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, t->cert.cred)
			 : gnutls_credentials_set(c->s, GNUTLS_CRD_ANON, t->anon);
	if (g < 0)
		return -EIO;
	/* Our own deadline covers it (the timer); none of GnuTLS's. */
	gnutls_handshake_set_timeout(c->s, 0);
	gnutls_transport_set_int(c->s, c->fd);
	c->ph = PH_TLS;
	return 0;
}

/* The dialogue before TLS. Returns 1 on progress, 0 when waiting, -1 when c is gone. */
static int step_venc(gfx_tls *t, tconn *c)
{
	if (c->out_off < c->v.out_len) {
		ssize_t k = send(c->fd, c->v.out + c->out_off, c->v.out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		if (k <= 0) {
			conn_close(t, c);
			return -1;
		}
		c->out_off += (size_t)k;
		return 1;
	}
	switch (c->v.state) {
	case GFX_VENC_FAILED:
		refuse(t, c, "", c->v.why);
		return -1;
	case GFX_VENC_TLS:
		if (start_tls(t, c) < 0) {
			refuse(t, c, "cannot start TLS", NULL);
			return -1;
		}
		return 1;
	case GFX_VENC_PLAIN: {
		int r = hand_plain(t, c);
		if (r < 0)
			refuse(t, c, "cannot hand over: ", strerror(-r));
		return -1; /* no longer the worker's, either way */
	}
	default: break;
	}
	uint8_t buf[12];
	ssize_t k = recv(c->fd, buf, gfx_venc_need(&c->v), MSG_DONTWAIT);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (k <= 0) {
		refuse(t, c, "closed during the handshake", NULL);
		return -1;
	}
	c->out_off = c->v.out_len = 0;
	gfx_venc_feed(&c->v, buf, (size_t)k);
	return 1;
}

/* GnuTLS may say "again" with bytes still in the socket (a handshake
 * message in pieces is taken a record a call): with edge-triggered
 * wakeups nothing would call it again, so look. */
static bool tls_more(const tconn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	return gnutls_record_get_direction(c->s) == 0 && poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

static int step_tls(gfx_tls *t, tconn *c)
{
	int g = gnutls_handshake(c->s);
	if (g == GNUTLS_E_AGAIN || g == GNUTLS_E_INTERRUPTED)
		return tls_more(c);
	if (g < 0 && !gnutls_error_is_fatal(g))
		return 1;
	if (g < 0) {
		refuse(t, c, "TLS handshake failed: ", gnutls_strerror(g));
		return -1;
	}
	int r = hand_over(t, c);
	if (r < 0) {
		refuse(t, c, "cannot hand over: ", strerror(-r));
		return -1;
	}
	return 1;
}

static bool again(const tconn *c, ssize_t k)
{
	return c->s ? k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED : errno == EAGAIN || errno == EINTR;
}

static int step_relay(gfx_tls *t, tconn *c)
{
	int progress = 0;
	if (c->up_len == 0) {
		ssize_t k = c->s ? gnutls_record_recv(c->s, c->up, TLS_BUF) : recv(c->fd, c->up, TLS_BUF, MSG_DONTWAIT);
		if (k > 0)
			c->up_len = (size_t)k, c->up_off = 0, progress = 1;
		else if (k < 0 && again(c, k))
			progress |= c->s && tls_more(c);
		else {
			if (k < 0 && c->s && !gnutls_error_is_fatal((int)k))
				return 1;
			conn_close(t, c); /* the viewer left */
			return -1;
		}
	}
	if (c->up_off < c->up_len) {
		ssize_t k = send(c->pair, c->up + c->up_off, c->up_len - c->up_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(t, c); /* libvncserver dropped it */
			return -1;
		}
		if (k > 0 && (c->up_off += (size_t)k) == c->up_len)
			c->up_len = c->up_off = 0;
		progress |= k > 0;
	}
	if (c->down_len == 0 && !c->pair_eof) {
		ssize_t k = recv(c->pair, c->down, TLS_BUF, MSG_DONTWAIT);
		if (k > 0) {
			size_t i = 0;
			for (; i < (size_t)k && c->greet_seen < c->greet_len; i++, c->greet_seen++)
				if (c->down[i] != c->greet[c->greet_seen]) {
					refuse(t, c, "libvncserver did not answer the replay as expected", NULL);
					return -1;
				}
			c->down_off = i, c->down_len = (size_t)k;
			if (c->down_off == c->down_len)
				c->down_len = c->down_off = 0;
			progress = 1;
		} else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
			c->pair_eof = true;
			c->since = now_ns();
			progress = 1;
		}
	}
	if (c->down_off < c->down_len) {
		ssize_t k = c->s ? gnutls_record_send(c->s, c->down + c->down_off, c->down_len - c->down_off)
				 : send(c->fd, c->down + c->down_off, c->down_len - c->down_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && !again(c, k)) {
			conn_close(t, c);
			return -1;
		}
		if (k > 0 && (c->down_off += (size_t)k) == c->down_len)
			c->down_len = c->down_off = 0;
		progress |= k > 0;
	}
	if (c->pair_eof && c->down_len == 0) {
		conn_close(t, c); /* libvncserver is done with it, and all it said went out */
		return -1;
	}
	return progress;
}

static void step(gfx_tls *t, tconn *c)
{
	for (int r = 1; r > 0;)
		r = c->ph == PH_VENC ? step_venc(t, c) : c->ph == PH_TLS ? step_tls(t, c) : step_relay(t, c);
}

static void arm_timer(gfx_tls *t)
{
	bool want = false;
	for (tconn *c = t->conns; c && !want; c = c->next)
		want = c->ph != PH_RELAY || c->pair_eof;
	if (want == t->timer_armed)
		return;
	struct itimerspec its = { 0 };
	if (want)
		its.it_value.tv_sec = its.it_interval.tv_sec = 1;
	timerfd_settime(t->timer, 0, &its, NULL);
	t->timer_armed = want;
}

static void on_tick(gfx_tls *t)
{
	int64_t now = now_ns();
	for (tconn *c = t->conns, *next; c; c = next) {
		next = c->next;
		if (c->ph != PH_RELAY && now - c->since > GFX_TLS_HANDSHAKE_NS)
			refuse(t, c, "handshake not done within 10 s", NULL);
		else if (c->ph == PH_RELAY && c->pair_eof && now - c->since > GFX_TLS_DRAIN_NS)
			conn_close(t, c);
	}
}

static void conn_new(gfx_tls *t, const qent *q)
{
	/* Connections still in the handshake: the oldest makes room. */
	uint32_t n = 0;
	tconn *oldest = NULL;
	for (tconn *o = t->conns; o; o = o->next)
		if (o->ph != PH_RELAY) {
			n++;
			if (!oldest || o->since < oldest->since)
				oldest = o;
		}
	if (n >= GFX_RFB_PREAUTH_MAX && oldest)
		refuse(t, oldest, "too many handshakes at once, the oldest is closed", NULL);
	tconn *c = calloc(1, sizeof(*c));
	if (!c) {
		close(q->fd);
		return;
	}
	c->fd = q->fd, c->pair = -1, c->since = now_ns(), c->ref.c = c;
	snprintf(c->peer, sizeof(c->peer), "%s", q->peer);
	gfx_venc_init(&c->v, &t->types);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = &c->ref };
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
		close(c->fd);
		free(c);
		return;
	}
	c->next = t->conns;
	t->conns = c;
	step(t, c);
}

static void *worker(void *arg)
{
	gfx_tls *t = arg;
	while (!atomic_load(&t->stop)) {
		struct epoll_event evs[32];
		int n = epoll_wait(t->epfd, evs, 32, -1);
		for (int i = 0; i < n && !atomic_load(&t->stop); i++) {
			if (evs[i].data.ptr == &t->wake) {
				uint64_t v;
				(void)!read(t->wake, &v, sizeof(v));
				qent in[QUEUE_MAX];
				pthread_mutex_lock(&t->lock);
				size_t k = t->n_in;
				memcpy(in, t->in, k * sizeof(qent));
				t->n_in = 0;
				pthread_mutex_unlock(&t->lock);
				for (size_t j = 0; j < k; j++)
					conn_new(t, &in[j]);
			} else if (evs[i].data.ptr == &t->timer) {
				uint64_t v;
				(void)!read(t->timer, &v, sizeof(v));
				on_tick(t);
			} else {
				/* A connection closed earlier in this batch left no
				 * event behind: closing its fds dropped them, and an
				 * fd number reused since is registered anew. */
				ep_ref *ref = evs[i].data.ptr;
				bool live = false;
				for (tconn *c = t->conns; c && !live; c = c->next)
					live = &c->ref == ref;
				if (live)
					step(t, ref->c);
			}
		}
		arm_timer(t);
	}
	while (t->conns)
		conn_close(t, t->conns);
	return NULL;
}

gfx_tls *gfx_tls_free(gfx_tls *t)
{
	if (!t)
		return NULL;
	if (t->started) {
		atomic_store(&t->stop, true);
		uint64_t one = 1;
		(void)!write(t->wake, &one, sizeof(one));
		pthread_join(t->thread, NULL);
	}
	for (size_t i = 0; i < t->n_in; i++)
		close(t->in[i].fd);
	for (size_t i = 0; i < t->n_out; i++)
		close(t->out[i].fd);
	gfx_tls_cert_done(&t->cert);
	if (t->anon)
		gnutls_anon_free_server_credentials(t->anon);
	if (t->prio)
		gnutls_priority_deinit(t->prio);
	if (t->prio_anon)
		gnutls_priority_deinit(t->prio_anon);
	safe_close(t->epfd);
	safe_close(t->wake);
	safe_close(t->timer);
	safe_close(t->ready);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP(gfx_tls *, gfx_tls_free)

int gfx_tls_new(const gfx_tls_config *cfg, gfx_tls **ret, scm_error **ret_err)
{
	_cleanup_(gfx_tls_freep) gfx_tls *t = calloc(1, sizeof(*t));
	if (!t)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	t->epfd = t->wake = t->timer = t->ready = -1;
	pthread_mutex_init(&t->lock, NULL);
	t->types = cfg->types;
	t->log = cfg->log, t->log_ud = cfg->log_ud;
	int r = 0;
	if (gfx_sec_types_has(&t->types, GFX_VENC_X509VNC)) {
		if (cfg->cert_file || cfg->key_file) {
			if (!cfg->cert_file || !cfg->key_file)
				return scm_fail(ret_err, GFX_E_INVALID, "a TLS certificate needs its key, and a key its certificate");
			r = gfx_tls_cert_load(cfg->cert_file, cfg->key_file, &t->cert, ret_err);
		} else {
			r = gfx_tls_cert_make(cfg->name, &t->cert, ret_err);
		}
		if (r != 0)
			return scm_fail(ret_err, r, "X509Vnc");
	}
	const char *pos;
	if (gnutls_anon_allocate_server_credentials(&t->anon) < 0 ||
	    gnutls_anon_set_server_known_dh_params(t->anon, GNUTLS_SEC_PARAM_MEDIUM) < 0 ||
	    gnutls_priority_init(&t->prio, GFX_TLS_PRIORITY, &pos) < 0 ||
	    gnutls_priority_init(&t->prio_anon, GFX_TLS_PRIORITY_ANON, &pos) < 0)
		return scm_fail(ret_err, -EIO, "setting up GnuTLS");
	t->epfd = epoll_create1(EPOLL_CLOEXEC);
	t->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->ready = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (t->epfd < 0 || t->wake < 0 || t->ready < 0 || t->timer < 0)
		return scm_fail(ret_err, -errno, "TLS worker: %s", strerror(errno));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &t->wake };
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->wake, &ev) < 0)
		return scm_fail(ret_err, -errno, "TLS worker: %s", strerror(errno));
	ev.data.ptr = &t->timer;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->timer, &ev) < 0)
		return scm_fail(ret_err, -errno, "TLS worker: %s", strerror(errno));
	/* Signals are the proxy's thread's (its signalfd): the worker starts
	 * with all of them blocked. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&t->thread, NULL, worker, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return scm_fail(ret_err, -r, "TLS worker: %s", strerror(r));
	t->started = true;
	*ret = TAKE_PTR(t);
	return 0;
}

void gfx_tls_take(gfx_tls *t, int fd, const char *peer)
{
	pthread_mutex_lock(&t->lock);
	bool room = t->n_in < QUEUE_MAX;
	if (room) {
		t->in[t->n_in].fd = fd;
		snprintf(t->in[t->n_in].peer, sizeof(t->in[0].peer), "%s", peer);
		t->n_in++;
	}
	pthread_mutex_unlock(&t->lock);
	if (!room) {
		close(fd);
		atomic_fetch_add(&t->refused, 1);
		return;
	}
	uint64_t one = 1;
	(void)!write(t->wake, &one, sizeof(one));
}

int gfx_tls_ready_fd(const gfx_tls *t)
{
	return t->ready;
}

int gfx_tls_next(gfx_tls *t, gfx_tls_conn *ret)
{
	uint64_t v;
	(void)!read(t->ready, &v, sizeof(v));
	pthread_mutex_lock(&t->lock);
	bool any = t->n_out > 0;
	if (any) {
		*ret = t->out[0];
		memmove(t->out, t->out + 1, --t->n_out * sizeof(qent));
	}
	pthread_mutex_unlock(&t->lock);
	return any;
}

const char *gfx_tls_fingerprint(const gfx_tls *t)
{
	return t->cert.fingerprint;
}
const char *gfx_tls_cert_pem(const gfx_tls *t)
{
	return t->cert.pem ? t->cert.pem : "";
}
uint64_t gfx_tls_refused(const gfx_tls *t)
{
	return atomic_load(&((gfx_tls *)t)->refused);
}
uint64_t gfx_tls_sessions(const gfx_tls *t)
{
	return atomic_load(&((gfx_tls *)t)->sessions);
}
