/* rfb_server.c: serves the desktop to RFB viewers through libvncserver.
 *
 * libvncserver speaks the protocol and its encodings (Tight and JPEG,
 * ZRLE, zlib, CopyRect, the cursor) straight from the compositor's
 * framebuffer, which it shares (the desktop is X8R8G8B8, described to it
 * by shifts 16/8/0), and it does VNC authentication and websockets. What
 * stays ours: the sockets. We listen on 127.0.0.1 ourselves (libvncserver
 * would bind every address and scan 5900..5999) and hand accepted
 * connections to rfbNewClient() (rfb_accept.c); a websocket is read up to
 * its request line first and turned away with 403 unless it carries the
 * token, so a browser without the URL never reaches the RFB handshake. A websocket on
 * the RFB port is refused too (libvncserver would accept one there).
 *
 * With TLS offered (VeNCrypt, tls.h), RFB connections go to the TLS
 * worker first, which hands back a socketpair per viewer once it has
 * done the handshake up to VNC authentication; libvncserver gets that as
 * it would a TCP socket, and the gate below treats it alike. The getters
 * and the JSON of `stats` are in rfb_stats.c.
 *
 * No other threads: libvncserver's sockets join our epoll set, and its event
 * processing runs when one of them is readable; updates go out right
 * after the compositor reports damage. libvncserver writes with its own
 * bounded waits, so a viewer that stops reading stalls the proxy for at
 * most rfbMaxClientWait (set to 2 s here) before it is dropped.
 *
 * libvncserver's reads block too (rfbReadExact waits up to rfbMaxClientWait
 * per missing chunk), so a client that has not authenticated is never
 * handed to it with half a message: before each rfbProcessEvents() every
 * connection still in the handshake is peeked at, and one whose next
 * message (12-byte ProtocolVersion, 1-byte security type, 16-byte VNC
 * authentication response) is not all there is put on hold (cl->onHold,
 * which rfbCheckFds skips) and watched edge-triggered until more arrives.
 * A handshake has GFX_RFB_HANDSHAKE_NS overall; at most
 * GFX_RFB_PREAUTH_MAX connections may be in it, a new one closes the
 * oldest; only authenticated viewers count against GFX_RFB_VIEWERS_MAX. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <rfb/rfb.h>
#include <rfb/rfbregion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "rfb_private.h"
#include "rfb_update.h"
#include "scm/macro.h"

/* A browser on a loaded machine runs noVNC's side of the handshake (its
 * DES included) in a renderer that waits for a CPU: 10 s turned away a
 * real viewer now and then; the count (GFX_RFB_PREAUTH_MAX) is what
 * bounds idle connections, the time only frees their slots. */
#define GFX_RFB_HANDSHAKE_NS (30LL * 1000000000LL)

gfx_rfb *gfx_rfb_free(gfx_rfb *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < WS_PENDING_MAX; i++)
		gfx_rfb_pending_drop(r, i);
	gfx_tls_free(r->tls);
	if (r->screen) {
		rfbShutdownServer(r->screen, TRUE);
		/* The framebuffer is the compositor's. */
		r->screen->frameBuffer = NULL;
		rfbScreenCleanup(r->screen);
	}
	safe_close(r->rfb_fd);
	safe_close(r->ws_fd);
	safe_close(r->epfd);
	safe_close(r->timer_fd);
	free(r->shadow);
	free(r);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP(gfx_rfb *, gfx_rfb_free)

/* The shadow starts (and after a resize starts again) as the whole
 * framebuffer, which every viewer is sent whole first. */
void gfx_rfb_shadow_reset(gfx_rfb *r)
{
	free(r->shadow);
	r->shadow = malloc((size_t)r->comp->width * r->comp->height * 4);
	if (r->shadow)
		memcpy(r->shadow, r->comp->fb, (size_t)r->comp->width * r->comp->height * 4);
}

static bool authenticated(rfbClientPtr cl)
{
	return cl->sock != RFB_INVALID_SOCKET &&
	       (cl->state == RFB_NORMAL || cl->state == RFB_INITIALISATION || cl->state == RFB_INITIALISATION_SHARED);
}

static bool in_handshake(rfbClientPtr cl)
{
	return cl->sock != RFB_INVALID_SOCKET && !authenticated(cl) && cl->state != RFB_SHUTDOWN;
}

static rfbBool check_password(rfbClientPtr cl, const char *response, int len)
{
	gfx_rfb *r = cl->screen->screenData;
	rfbBool ok = rfbCheckPasswordByList(cl, response, len);
	if (!ok) {
		r->refused++;
		return FALSE;
	}
	/* Only viewers that got in count against the cap. */
	uint32_t n = 0;
	rfbClientIteratorPtr it = rfbGetClientIterator(cl->screen);
	for (rfbClientPtr o; (o = rfbClientIteratorNext(it));)
		n += o != cl && authenticated(o);
	rfbReleaseClientIterator(it);
	if (n >= GFX_RFB_VIEWERS_MAX) {
		r->refused++;
		return FALSE;
	}
	return TRUE;
}

static void on_client_gone(rfbClientPtr cl)
{
	gfx_rfb_stats_gone(cl->screen->screenData, cl);
	/* libvncserver 0.9.14 never frees a websocket's context (fixed
	 * upstream by LibVNC/libvncserver#575, which frees it right after
	 * this hook and skips a NULL one): a leak per noVNC visit. */
	free(cl->wsctx);
	cl->wsctx = NULL;
	free(cl->clientData);
	cl->clientData = NULL;
}

static enum rfbNewClientAction on_new_client(rfbClientPtr cl)
{
	gfx_rfb *r = cl->screen->screenData;
	cl->clientGoneHook = on_client_gone;
	client_extra *x = calloc(1, sizeof(*x));
	if (!x)
		return RFB_CLIENT_REFUSE;
	x->since = gfx_rfb_now_ns();
	cl->clientData = x;
	/* Relayed: libvncserver sees a socketpair; the viewer is elsewhere. */
	if (r->relay_peer) {
		free(cl->host);
		cl->host = strdup(r->relay_peer);
		x->tls = r->relay_tls;
		x->relayed = r->relaying;
	}
	/* A websocket only through the port that checked its token; the
	 * path is checked again, it costs nothing. */
	if (cl->wsctx && (!r->accepting_ws || !cl->wspath || !gfx_ws_token_matches(cl->wspath, r->token))) {
		r->refused++;
		return RFB_CLIENT_REFUSE;
	}
	/* Connections still in the handshake: the oldest makes room. */
	uint32_t n = 0;
	rfbClientPtr oldest = NULL;
	rfbClientIteratorPtr it = rfbGetClientIterator(cl->screen);
	for (rfbClientPtr o; (o = rfbClientIteratorNext(it));) {
		if (o == cl || !in_handshake(o) || !o->clientData)
			continue;
		n++;
		if (!oldest || ((client_extra *)o->clientData)->since < ((client_extra *)oldest->clientData)->since)
			oldest = o;
	}
	rfbReleaseClientIterator(it);
	if (n >= GFX_RFB_PREAUTH_MAX && oldest) {
		rfbCloseClient(oldest);
		r->refused++;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = gfx_rfb_tag(TAG_CLIENT, cl->sock) };
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, cl->sock, &ev) < 0)
		return RFB_CLIENT_REFUSE;
	int one = 1;
	setsockopt(cl->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return RFB_CLIENT_ACCEPT;
}

static void on_key(rfbBool down, rfbKeySym key, rfbClientPtr cl)
{
	gfx_rfb *r = cl->screen->screenData;
	if (r->ops.key)
		r->ops.key(r->userdata, down, key);
}

static void on_pointer(int buttons, int x, int y, rfbClientPtr cl)
{
	gfx_rfb *r = cl->screen->screenData;
	if (r->ops.pointer)
		r->ops.pointer(r->userdata, (uint8_t)buttons, x, y);
	rfbDefaultPtrAddEvent(buttons, x, y, cl);
}

/* SetDesktopSize from a viewer: the desktop takes the viewer's size when
 * the session allows it. The screen layout asked for is ignored (one
 * screen, the whole desktop); success is answered once the new size has
 * been sent, as libvncserver does. */
static int on_set_desktop_size(int w, int h, int n_screens, struct rfbExtDesktopScreen *screens, rfbClientPtr cl)
{
	gfx_rfb *r = cl->screen->screenData;
	if (!r->resize || cl->viewOnly)
		return rfbExtDesktopSize_ResizeProhibited;
	if (w < (int)GFX_RFB_RESIZE_MIN || h < (int)GFX_RFB_RESIZE_MIN)
		return rfbExtDesktopSize_InvalidScreenLayout;
	if ((uint32_t)w == r->comp->width && (uint32_t)h == r->comp->height) {
		cl->newFBSizePending = TRUE; /* the answer, with nothing changed */
		return rfbExtDesktopSize_Success;
	}
	int e = gfx_rfb_resize_desktop(cl->screen, r->comp, w, h, r->ops.resized, r->userdata);
	if (e == rfbExtDesktopSize_Success) {
		r->resizes++;
		gfx_rfb_shadow_reset(r);
	}
	return e;
}

static int listen_on(uint16_t port, int *ret_fd, uint16_t *ret_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	*ret_fd = fd;
	*ret_port = ntohs(a.sin_port);
	return 0;
}

/* The listening sockets join the epoll set. */
int gfx_rfb_listen_watch(gfx_rfb *r)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = gfx_rfb_tag(TAG_RFB_LISTEN, r->rfb_fd) };
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->rfb_fd, &ev) < 0)
		return -errno;
	ev.data.u64 = gfx_rfb_tag(TAG_WS_LISTEN, r->ws_fd);
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->ws_fd, &ev) < 0)
		return -errno;
	return 0;
}

static int set_secret(char *dst, size_t n, const char *given)
{
	if (given && *given) {
		snprintf(dst, n, "%s", given);
		return 0;
	}
	return gfx_random_secret(dst, n);
}

int gfx_rfb_new(gfx_compositor *c, const gfx_rfb_config *cfg, const gfx_rfb_ops *ops, void *userdata,
		gfx_rfb **ret)
{
	_cleanup_(gfx_rfb_freep) gfx_rfb *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->rfb_fd = r->ws_fd = r->epfd = r->timer_fd = -1;
	for (size_t i = 0; i < WS_PENDING_MAX; i++)
		r->pending[i].fd = -1;
	r->comp = c;
	if (ops)
		r->ops = *ops;
	r->userdata = userdata;
	int e;
	if ((e = set_secret(r->password, sizeof(r->password), cfg->password)) < 0 ||
	    (e = set_secret(r->token, sizeof(r->token), cfg->token)) < 0)
		return e;
	if (cfg->viewonly_password && *cfg->viewonly_password)
		snprintf(r->viewonly, sizeof(r->viewonly), "%s", cfg->viewonly_password);
	r->passwords[0] = r->password;
	r->passwords[1] = r->viewonly[0] ? r->viewonly : NULL;
	r->passwords[2] = NULL;

	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	/* A restarted proxy gets its predecessor's later (gfx_rfb_adopt) */
	if (!cfg->adopt && ((e = listen_on(cfg->port, &r->rfb_fd, &r->port)) < 0 ||
			    (e = listen_on(cfg->ws_port, &r->ws_fd, &r->ws_port)) < 0))
		return e;
	struct epoll_event ev = { .events = EPOLLIN };
	if (!cfg->adopt && (e = gfx_rfb_listen_watch(r)) < 0)
		return e;
	/* Wakes us to end handshakes that ran out of time. */
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (r->timer_fd < 0)
		return -errno;
	ev.data.u64 = gfx_rfb_tag(TAG_TIMER, r->timer_fd);
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->timer_fd, &ev) < 0)
		return -errno;

	rfbLogEnable(getenv("SCM_GFX_RFB_DEBUG") != NULL);
	rfbMaxClientWait = 2000;
	rfbScreenInfoPtr s = rfbGetScreen(NULL, NULL, (int)c->width, (int)c->height, 8, 3, 4);
	if (!s)
		return -ENOMEM;
	r->screen = s;
	s->screenData = r;
	s->desktopName = cfg->name ? cfg->name : "scm desktop";
	/* The compositor's pixels as they are: 0xXXRRGGBB little-endian. */
	s->serverFormat.redShift = 16;
	s->serverFormat.greenShift = 8;
	s->serverFormat.blueShift = 0;
	s->frameBuffer = (char *)c->fb;
	s->paddedWidthInBytes = (int)c->width * 4;
	/* Our own sockets only: no listening by libvncserver, no HTTP. */
	s->port = 0;
	s->ipv6port = 0;
	s->autoPort = FALSE;
	s->httpPort = 0;
	s->http6Port = 0;
	s->httpDir = NULL;
	s->alwaysShared = TRUE;
	/* Updates are sent by gfx_rfb_send_pending() only (libvncserver's own
	 * rfbUpdateClient() would send them whole at once): a deferral this
	 * long never runs out. */
	s->deferUpdateTime = 1 << 30;
	s->newClientHook = on_new_client;
	s->kbdAddEvent = on_key;
	s->ptrAddEvent = on_pointer;
	s->setDesktopSizeHook = on_set_desktop_size;
	r->resize = cfg->resize;
	s->setXCutText = gfx_rfb_on_cut_text;
	s->setXCutTextUTF8 = gfx_rfb_on_cut_text_utf8;
	if (!cfg->insecure_no_auth) {
		s->authPasswdData = r->passwords;
		s->authPasswdFirstViewOnly = 1;
		s->passwordCheck = check_password;
	}
	rfbInitServer(s);
	gfx_sec_types_format(&cfg->security, r->security, sizeof(r->security));
	if (cfg->insecure_no_auth)
		snprintf(r->security, sizeof(r->security), "None");
	else if (!r->security[0])
		snprintf(r->security, sizeof(r->security), "VncAuth");
	if (!cfg->insecure_no_auth && gfx_sec_types_tls(&cfg->security)) {
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		gfx_tls_config tc = { .types = cfg->security, .cert_file = cfg->tls_cert, .key_file = cfg->tls_key,
				      .name = cfg->name, .log = cfg->log, .log_ud = cfg->log_ud };
		if ((e = gfx_tls_new(&tc, &r->tls, &err)) != 0) {
			_cleanup_free_ char *t = scm_error_text(err);
			if (cfg->log && t)
				cfg->log(cfg->log_ud, t);
			return e;
		}
		ev.data.u64 = gfx_rfb_tag(TAG_TLS, gfx_tls_ready_fd(r->tls));
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, gfx_tls_ready_fd(r->tls), &ev) < 0)
			return -errno;
	}
	gfx_rfb_shadow_reset(r);
	*ret = TAKE_PTR(r);
	return 0;
}

/* How many bytes libvncserver reads next from a client in the handshake. */
static size_t handshake_need(const rfbClientPtr cl)
{
	switch (cl->state) {
	case RFB_PROTOCOL_VERSION: return sz_rfbProtocolVersionMsg;
	case RFB_AUTHENTICATION: return CHALLENGESIZE;
	default: return 1;
	}
}

static void set_held(gfx_rfb *r, rfbClientPtr cl, bool held)
{
	client_extra *x = cl->clientData;
	cl->onHold = held;
	if (x->held == held)
		return;
	x->held = held;
	/* Held: woken by each new arrival only (level-triggered, a partial
	 * message would wake us in a loop). */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | (held ? EPOLLET : 0u),
				  .data.u64 = gfx_rfb_tag(TAG_CLIENT, cl->sock) };
	epoll_ctl(r->epfd, EPOLL_CTL_MOD, cl->sock, &ev);
}

/* Before libvncserver reads: holds back every client in the handshake
 * whose next message is not complete, closes the ones out of time.
 * Returns whether any client is in the handshake. A websocket carried
 * the token to get here, and its bytes are framed: it is not held. */
static bool gate(gfx_rfb *r)
{
	bool any = false;
	int64_t t = gfx_rfb_now_ns();
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
		client_extra *x = cl->clientData;
		if (!x || cl->sock == RFB_INVALID_SOCKET)
			continue;
		if (!in_handshake(cl)) {
			if (x->held)
				set_held(r, cl, false);
			continue;
		}
		if (t - x->since > GFX_RFB_HANDSHAKE_NS) {
			rfbCloseClient(cl);
			r->refused++;
			continue;
		}
		any = true;
		if (cl->wsctx)
			continue;
		uint8_t buf[sz_rfbProtocolVersionMsg > CHALLENGESIZE ? sz_rfbProtocolVersionMsg : CHALLENGESIZE];
		size_t need = handshake_need(cl);
		ssize_t k = recv(cl->sock, buf, need, MSG_PEEK | MSG_DONTWAIT);
		struct pollfd p = { .fd = cl->sock, .events = POLLRDHUP };
		/* Complete, or the peer is gone: libvncserver reads without waiting. */
		bool ready = (k >= 0 && (size_t)k >= need) || k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR) ||
			     (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)));
		set_held(r, cl, !ready);
	}
	rfbReleaseClientIterator(it);
	return any;
}

/* The timer: a tick a second while handshakes or websockets wait, and
 * when held-back updates are due (rfb_update.c). */
static void arm_timer(gfx_rfb *r)
{
	int64_t at = r->ticking ? gfx_rfb_now_ns() + 1000000000LL : 0;
	if (r->wake && (!at || r->wake < at))
		at = r->wake;
	if (r->wake_user && (!at || r->wake_user < at))
		at = r->wake_user;
	struct itimerspec its = { .it_value = { at / 1000000000LL, at % 1000000000LL } };
	timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

void gfx_rfb_wake_at(gfx_rfb *r, int64_t t)
{
	r->wake_user = t;
	arm_timer(r);
}

static void process(gfx_rfb *r)
{
	bool handshakes = gate(r);
	rfbProcessEvents(r->screen, 0);
	gfx_rfb_carried_fixup(r);
	/* A viewer closed by a failed write is freed by rfbProcessEvents();
	 * the gate first, as the first round may have moved handshakes on. */
	if (gfx_rfb_send_pending(r->screen, r->comp, gfx_rfb_now_ns(), &r->wake)) {
		handshakes = gate(r);
		rfbProcessEvents(r->screen, 0);
		gfx_rfb_carried_fixup(r);
	}
	bool ws = false;
	for (size_t i = 0; i < WS_PENDING_MAX; i++)
		ws |= r->pending[i].fd >= 0;
	r->ticking = handshakes || ws;
	arm_timer(r);
}

int gfx_rfb_dispatch(gfx_rfb *r)
{
	struct epoll_event evs[16];
	if (r->frozen)
		return 0;
	int n = epoll_wait(r->epfd, evs, 16, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	bool clients = false;
	for (int i = 0; i < n; i++) {
		int kind = (int)(evs[i].data.u64 >> 32), fd = (int)(uint32_t)evs[i].data.u64;
		if (kind == TAG_RFB_LISTEN)
			gfx_rfb_accept(r, r->rfb_fd, false);
		else if (kind == TAG_WS_LISTEN)
			gfx_rfb_accept(r, r->ws_fd, true);
		else if (kind == TAG_WS_PENDING)
			gfx_rfb_ws_check(r, fd);
		else if (kind == TAG_TLS)
			gfx_rfb_take_relayed(r);
		else if (kind == TAG_TIMER) {
			uint64_t ticks;
			(void)!read(r->timer_fd, &ticks, sizeof(ticks));
			clients = true;
			if (r->wake_user && r->wake_user <= gfx_rfb_now_ns())
				r->wake_user = 0; /* the caller's turn (gfx_server_work) */
		} else
			clients = true;
	}
	int64_t t = gfx_rfb_now_ns();
	for (size_t i = 0; i < WS_PENDING_MAX; i++)
		if (r->pending[i].fd >= 0 && t - r->pending[i].since > WS_PENDING_NS)
			gfx_rfb_pending_drop(r, i);
	/* Reads what viewers sent, answers requests, drops the gone (a closed
	 * socket leaves our epoll set by itself). */
	if (clients || n > 0)
		process(r);
	return 0;
}

void gfx_rfb_damage(gfx_rfb *r, const gfx_region *changed)
{
	if (r->frozen)
		return; /* the shadow keeps what viewers have: a thaw sends the rest */
	if (!r->shadow) {
		for (uint32_t i = 0; i < changed->n; i++) {
			const gfx_rect *rc = &changed->r[i];
			rfbMarkRectAsModified(r->screen, rc->x, rc->y, rc->x + rc->w, rc->y + rc->h);
		}
	} else {
		gfx_rfb_mark_changed(r->screen, r->comp, r->shadow, changed, &r->copies, &r->copied_px);
	}
	/* A viewer that failed a write is closed; free it now, its socket
	 * will not wake us. */
	if (gfx_rfb_send_pending(r->screen, r->comp, gfx_rfb_now_ns(), &r->wake))
		process(r);
	else
		arm_timer(r);
}
