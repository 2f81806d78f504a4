/* rfb_handover.c: the RFB side of a proxy restarted with its viewers
 * (`scmctl service restart gfx-NAME`, docs/handover.md, docs/gfx.md).
 *
 * The old process freezes (reads and writes no viewer, accepts nothing)
 * and hands over its listening sockets, its secrets and the socket of
 * each viewer that can be carried. libvncserver has no way to take a
 * client in mid-session, so the new process makes one the ordinary way
 * on one end of a socketpair and plays the viewer's side of the
 * handshake itself on the other (version 3.8, VNC authentication with the
 * viewer's own password so that view-only stays view-only, ClientInit,
 * then the viewer's pixel format and encodings), and then puts the real
 * viewer's socket in the socketpair end's place (dup3 onto the same fd
 * number) and marks the whole desktop for its next update. The viewer
 * never sees the handshake: it gets a full update, as after a request.
 *
 * A websocket viewer (the ws port: noVNC) is carried the same way when
 * its framing is at a frame boundary (rfb_ws_handover.c): the new
 * process replays its upgrade (the same path, so the same token check)
 * on the socketpair, then the handshake in frames, then the swap.
 *
 * What cannot be carried, and is closed (its viewer reconnects with the
 * same secrets): a websocket mid-frame or in base64 text frames, TLS
 * sessions (the TLS worker's thread holds their keys, and their sequence
 * numbers and stream state with them), connections still in the
 * handshake. And no carried viewer keeps an encoding with a zlib
 * stream (Tight, ZRLE, Zlib, ZlibHex): its decoder's stream state goes
 * on from the old process's compressor, which did not come along, and
 * the new process's would start a stream the viewer cannot read. So a
 * carried viewer gets Raw (or its preferred encoding when that keeps no
 * stream: Hextile, RRE, CoRRE, Ultra) for the rest of its connection,
 * even when it sends SetEncodings again (gfx_rfb_carried_fixup). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <rfb/rfb.h>
#include <netinet/in.h>
#include <rfb/rfbregion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rfb_private.h"
#include "rfb_update.h"
#include "scm/macro.h"

DEFINE_TRIVIAL_CLEANUP(json_object *, json_object_put)

void gfx_rfb_freeze(gfx_rfb *r, bool frozen)
{
	if (r->frozen == frozen)
		return;
	r->frozen = frozen;
	if (!frozen) {
		/* what changed while frozen, against what viewers have */
		gfx_region all = { .r = { { 0, 0, (int32_t)r->comp->width, (int32_t)r->comp->height } }, .n = 1 };
		gfx_rfb_damage(r, &all);
	}
}

bool gfx_rfb_frozen(const gfx_rfb *r)
{
	return r->frozen;
}

static bool stateless(int enc)
{
	return enc == rfbEncodingRaw || enc == rfbEncodingHextile || enc == rfbEncodingRRE ||
	       enc == rfbEncodingCoRRE || enc == rfbEncodingUltra;
}

void gfx_rfb_carried_fixup(gfx_rfb *r)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
		client_extra *x = cl->clientData;
		if (x && x->carried && !stateless(cl->preferredEncoding))
			cl->preferredEncoding = rfbEncodingRaw;
	}
	rfbReleaseClientIterator(it);
}

static bool carriable(rfbClientPtr cl)
{
	client_extra *x = cl->clientData;
	int ws = gfx_rfb_ws_state(cl);
	return x && !x->tls && !x->relayed && (ws == GFX_WS_NONE || ws == GFX_WS_QUIET) &&
	       cl->sock != RFB_INVALID_SOCKET && cl->state == RFB_NORMAL;
}

/* The encodings a viewer asked for, as far as libvncserver keeps them:
 * the preferred one (if no stream keeps state), CopyRect and the
 * pseudo-encodings it turned on. The informational ones it was sent
 * already (server identity, supported messages and encodings) are left
 * out, so they are not sent again. */
static json_object *encodings(rfbClientPtr cl)
{
	json_object *a = json_object_new_array();
	int32_t e[16];
	size_t n = 0;
	e[n++] = stateless(cl->preferredEncoding) ? cl->preferredEncoding : rfbEncodingRaw;
	if (cl->useCopyRect)
		e[n++] = rfbEncodingCopyRect;
	if (cl->enableCursorShapeUpdates)
		e[n++] = (int32_t)(cl->useRichCursorEncoding ? rfbEncodingRichCursor : rfbEncodingXCursor);
	if (cl->enableCursorPosUpdates)
		e[n++] = (int32_t)rfbEncodingPointerPos;
	if (cl->enableLastRectEncoding)
		e[n++] = (int32_t)rfbEncodingLastRect;
	if (cl->useNewFBSize)
		e[n++] = (int32_t)rfbEncodingNewFBSize;
	if (cl->useExtDesktopSize)
		e[n++] = (int32_t)rfbEncodingExtDesktopSize;
	if (cl->enableExtendedClipboard)
		e[n++] = (int32_t)rfbEncodingExtendedClipboard;
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int(e[i]));
	return a;
}

json_object *gfx_rfb_save(gfx_rfb *r, gfx_fd_add_fn add, void *ud, scm_error **ret_err)
{
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *vs = json_object_new_array();
	json_object_object_add(o, "password", json_object_new_string(r->password));
	json_object_object_add(o, "viewonly", json_object_new_string(r->viewonly));
	json_object_object_add(o, "token", json_object_new_string(r->token));
	json_object_object_add(o, "viewers", vs);
	int ri = add(ud, r->rfb_fd), wi = ri < 0 ? ri : add(ud, r->ws_fd);
	if (ri < 0 || wi < 0) {
		scm_fail(ret_err, ri < 0 ? ri : wi, "the listening sockets: %s", strerror(-(ri < 0 ? ri : wi)));
		return NULL;
	}
	json_object_object_add(o, "rfb_fd", json_object_new_int(ri));
	json_object_object_add(o, "ws_fd", json_object_new_int(wi));
	uint32_t left = 0, ws_left = 0;
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
		if (cl->sock == RFB_INVALID_SOCKET)
			continue;
		if (!carriable(cl)) {
			left++;
			ws_left += cl->wsctx != NULL;
			continue;
		}
		int fi = add(ud, cl->sock);
		if (fi < 0) {
			rfbReleaseClientIterator(it);
			scm_fail(ret_err, fi, "viewer %s: %s", cl->host ? cl->host : "?", strerror(-fi));
			return NULL;
		}
		json_object *v = json_object_new_object(), *f = json_object_new_array();
		/* as on the wire (SetPixelFormat): libvncserver keeps the maxima in host order */
		const rfbPixelFormat *pf = &cl->format;
		const int raw[sz_rfbPixelFormat] = { pf->bitsPerPixel, pf->depth, pf->bigEndian, pf->trueColour,
						     pf->redMax >> 8, pf->redMax & 0xff, pf->greenMax >> 8,
						     pf->greenMax & 0xff, pf->blueMax >> 8, pf->blueMax & 0xff,
						     pf->redShift, pf->greenShift, pf->blueShift, 0, 0, 0 };
		for (size_t k = 0; k < sz_rfbPixelFormat; k++)
			json_object_array_add(f, json_object_new_int(raw[k]));
		json_object_object_add(v, "fd", json_object_new_int(fi));
		json_object_object_add(v, "host", json_object_new_string(cl->host ? cl->host : "?"));
		json_object_object_add(v, "view_only", json_object_new_boolean(cl->viewOnly));
		json_object_object_add(v, "requested", json_object_new_boolean(!sraRgnEmpty(cl->requestedRegion)));
		json_object_object_add(v, "format", f);
		json_object_object_add(v, "encodings", encodings(cl));
		if (cl->wsctx) /* the path it upgraded with, token and all */
			json_object_object_add(v, "ws_path", json_object_new_string(cl->wspath));
		json_object_array_add(vs, v);
	}
	rfbReleaseClientIterator(it);
	json_object_object_add(o, "left", json_object_new_int64(left));
	json_object_object_add(o, "ws_left", json_object_new_int64(ws_left));
	return TAKE_PTR(o);
}

/* ---- the new process ---------------------------------------------------- */

/* A listening TCP socket of the proxy's predecessor, checked to be one. */
int gfx_rfb_adopt_listener(int fd, uint16_t *ret_port)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int acc = 0, type = 0;
	socklen_t il = sizeof(int);
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &al) < 0 || a.sin_family != AF_INET ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &il) < 0 || !acc ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) < 0 || type != SOCK_STREAM)
		return -EBADF;
	*ret_port = ntohs(a.sin_port);
	return 0;
}


int gfx_rfb_adopt(gfx_rfb *r, int rfb_fd, int ws_fd, const char *password, const char *viewonly, const char *token,
		  uint32_t width, uint32_t height)
{
	int e = 0;
	r->rfb_fd = rfb_fd, r->ws_fd = ws_fd; /* ours from here: gfx_rfb_free closes them */
	if (gfx_rfb_adopt_listener(rfb_fd, &r->port) < 0 || gfx_rfb_adopt_listener(ws_fd, &r->ws_port) < 0)
		return -EBADF;
	if (!password || strlen(password) != GFX_RFB_PASSWORD_LEN || !viewonly ||
	    strlen(viewonly) > GFX_RFB_PASSWORD_LEN || !token || strlen(token) > GFX_RFB_TOKEN_LEN)
		return -EINVAL;
	snprintf(r->password, sizeof(r->password), "%s", password);
	snprintf(r->viewonly, sizeof(r->viewonly), "%s", viewonly);
	snprintf(r->token, sizeof(r->token), "%s", token);
	r->passwords[1] = r->viewonly[0] ? r->viewonly : NULL;
	if (width != r->comp->width || height != r->comp->height) {
		e = gfx_rfb_resize_desktop(r->screen, r->comp, (int)width, (int)height, r->ops.resized, r->userdata);
		if (e != rfbExtDesktopSize_Success)
			return -EINVAL;
		gfx_rfb_shadow_reset(r);
	}
	return gfx_rfb_listen_watch(r);
}

/* Our end of the socketpair: a websocket's frames, or bytes. */
typedef struct fake_end {
	int fd;
	bool ws;
	bool said_version; /* before rfbNewClient(): see adopt_viewer() */
	uint64_t left; /* of the frame libvncserver is sending */
} fake_end;

/* Exactly n bytes of what libvncserver wrote to its end; it writes
 * before rfbProcessClientMessage() returns, so they are there. */
static int fake_read(fake_end *fe, void *buf, size_t n)
{
	int fd = fe->fd;
	if (fe->ws)
		return gfx_ws_fake_read(fd, &fe->left, buf, n);
	return gfx_recv_exact(fd, buf, n);
}

/* Sends the viewer's next message and lets libvncserver read it. */
static int fake_say(rfbClientPtr cl, fake_end *fe, const void *buf, size_t n)
{
	if (!buf) /* said already */
		;
	else if (fe->ws ? gfx_ws_fake_send(fe->fd, buf, n) < 0 : send(fe->fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n)
		return -EPIPE;
	rfbProcessClientMessage(cl);
	return cl->sock == RFB_INVALID_SOCKET ? -ECONNRESET : 0;
}

/* The viewer's side of the handshake, up to its pixel format and
 * encodings. */
static int play_viewer(gfx_rfb *r, rfbClientPtr cl, fake_end *fd, bool view_only, const uint8_t *format,
		       const int32_t *enc, size_t n_enc)
{
	uint8_t buf[256], types[255];
	int e;
	if ((e = fake_read(fd, buf, sz_rfbProtocolVersionMsg)) < 0 ||
	    (e = fake_say(cl, fd, fd->said_version ? NULL : "RFB 003.008\n", sz_rfbProtocolVersionMsg)) < 0 || (e = fake_read(fd, buf, 1)) < 0 ||
	    (e = fake_read(fd, types, buf[0])) < 0)
		return e;
	if (!memchr(types, rfbVncAuth, buf[0]))
		return -EPROTO;
	uint8_t t = rfbVncAuth, challenge[CHALLENGESIZE];
	char pw[GFX_RFB_PASSWORD_LEN + 1];
	snprintf(pw, sizeof(pw), "%s", view_only ? r->viewonly : r->password);
	if (!pw[0] || (e = fake_say(cl, fd, &t, 1)) < 0 || (e = fake_read(fd, challenge, CHALLENGESIZE)) < 0)
		return e < 0 ? e : -EPROTO;
	rfbEncryptBytes(challenge, pw);
	explicit_bzero(pw, sizeof(pw));
	if ((e = fake_say(cl, fd, challenge, CHALLENGESIZE)) < 0 || (e = fake_read(fd, buf, 4)) < 0)
		return e;
	if (buf[0] | buf[1] | buf[2] | buf[3])
		return -EACCES;
	uint8_t shared = 1;
	if ((e = fake_say(cl, fd, &shared, 1)) < 0 || (e = fake_read(fd, buf, sz_rfbServerInitMsg)) < 0)
		return e;
	uint32_t name_len = (uint32_t)buf[20] << 24 | (uint32_t)buf[21] << 16 | (uint32_t)buf[22] << 8 | buf[23];
	while (name_len > 0) {
		size_t k = name_len < sizeof(buf) ? name_len : sizeof(buf);
		if ((e = fake_read(fd, buf, k)) < 0)
			return e;
		name_len -= (uint32_t)k;
	}
	uint8_t m[4 + 4 * 16] = { rfbSetPixelFormat };
	memcpy(m + 4, format, sz_rfbPixelFormat);
	if ((e = fake_say(cl, fd, m, sz_rfbSetPixelFormatMsg)) < 0)
		return e;
	m[0] = rfbSetEncodings, m[1] = 0, m[2] = 0, m[3] = (uint8_t)n_enc;
	for (size_t i = 0; i < n_enc; i++) {
		uint32_t v = (uint32_t)enc[i];
		m[4 + 4 * i] = (uint8_t)(v >> 24), m[5 + 4 * i] = (uint8_t)(v >> 16);
		m[6 + 4 * i] = (uint8_t)(v >> 8), m[7 + 4 * i] = (uint8_t)v;
	}
	return fake_say(cl, fd, m, 4 + 4 * n_enc);
}

/* Puts the viewer's socket fd where libvncserver has the socketpair's
 * end (the same fd number, so its records stay right); fd stays the
 * caller's. */
static int swap_socket(gfx_rfb *r, rfbClientPtr cl, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = gfx_rfb_tag(TAG_CLIENT, cl->sock) };
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, cl->sock, NULL);
	if (dup3(fd, cl->sock, O_CLOEXEC) < 0)
		return -errno;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, cl->sock, &ev) < 0) {
		int e = -errno;
		close(cl->sock); /* the viewer's: no shutdown, the old process may serve on */
		cl->sock = RFB_INVALID_SOCKET;
		return e;
	}
	return 0;
}

/* One viewer: a client made on a socketpair, then the viewer's socket in
 * its place. Takes fd. */
static int adopt_viewer(gfx_rfb *r, int fd, json_object *v)
{
	json_object *f = json_object_object_get(v, "format"), *en = json_object_object_get(v, "encodings");
	const char *host = json_object_get_string(json_object_object_get(v, "host"));
	const char *ws_path = json_object_get_string(json_object_object_get(v, "ws_path"));
	bool view_only = json_object_get_boolean(json_object_object_get(v, "view_only"));
	uint8_t format[sz_rfbPixelFormat];
	int32_t enc[16];
	size_t n_enc = json_object_is_type(en, json_type_array) ? json_object_array_length(en) : 0;
	int type = 0, sv[2] = { -1, -1 };
	socklen_t tl = sizeof(type);
	if (!json_object_is_type(f, json_type_array) || json_object_array_length(f) != sz_rfbPixelFormat ||
	    n_enc == 0 || n_enc > 16 || (ws_path && strlen(ws_path) >= GFX_WS_REQUEST_MAX) ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) {
		close(fd);
		return -EINVAL;
	}
	for (size_t k = 0; k < sz_rfbPixelFormat; k++)
		format[k] = (uint8_t)json_object_get_int(json_object_array_get_idx(f, k));
	for (size_t k = 0; k < n_enc; k++) {
		enc[k] = (int32_t)json_object_get_int64(json_object_array_get_idx(en, k));
		if (enc[k] >= 0 && !stateless(enc[k]) && enc[k] != rfbEncodingCopyRect)
			enc[k] = rfbEncodingRaw; /* only what keeps no stream (above) */
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		close(fd);
		return -errno;
	}
	fake_end fe = { .fd = sv[1], .ws = ws_path != NULL };
	/* a websocket's upgrade first: libvncserver reads it in rfbNewClient()
	 * (and on_new_client() checks its token as for any websocket) */
	/* A plain one's ProtocolVersion first: libvncserver peeks at the first
	 * bytes of every new client for a websocket's GET and, when there are
	 * none yet, waits 100 ms for them; "RFB " tells it at once, and the
	 * peeked bytes stay for its reading of the version. */
	if (!ws_path) {
		fe.said_version = true;
		if (send(sv[1], "RFB 003.008\n", sz_rfbProtocolVersionMsg, MSG_NOSIGNAL) != sz_rfbProtocolVersionMsg) {
			close(sv[0]), close(sv[1]), close(fd);
			return -EPIPE;
		}
	}
	if (ws_path && gfx_ws_fake_upgrade(sv[1], ws_path) < 0) {
		close(sv[0]), close(sv[1]), close(fd);
		return -EPIPE;
	}
	r->relay_peer = host ? host : "?";
	r->accepting_ws = ws_path != NULL;
	rfbClientPtr cl = rfbNewClient(r->screen, sv[0]);
	r->relay_peer = NULL;
	r->accepting_ws = false;
	int e = !cl ? -ECONNREFUSED : ws_path && !cl->wsctx ? -EPROTO : 0;
	if (e == 0 && ws_path)
		e = gfx_ws_fake_response(sv[1]);
	if (e == 0)
		e = play_viewer(r, cl, &fe, view_only, format, enc, n_enc);
	if (e == 0 && (cl->state != RFB_NORMAL || !cl->clientData))
		e = -EPROTO;
	if (e == 0) {
		/* what it said to our end is not the viewer's business */
		char junk[4096];
		while (recv(sv[1], junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		e = swap_socket(r, cl, fd);
	}
	close(sv[1]);
	close(fd);
	if (e < 0) {
		if (cl && cl->sock != RFB_INVALID_SOCKET)
			rfbCloseClient(cl); /* the socketpair's end, or the viewer's: it reconnects */
		return e;
	}
	client_extra *x = cl->clientData;
	x->carried = true;
	if (json_object_get_boolean(json_object_object_get(v, "requested"))) {
		sraRgnDestroy(cl->requestedRegion);
		cl->requestedRegion = sraRgnCreateRect(0, 0, cl->screen->width, cl->screen->height);
	}
	return 0;
}

int gfx_rfb_restore_viewers(gfx_rfb *r, json_object *viewers, gfx_fd_take_fn take, void *ud,
			    uint32_t *ret_carried, uint32_t *ret_dropped, uint32_t *ret_ws)
{
	uint32_t ok = 0, dropped = 0, ws = 0;
	size_t n = json_object_is_type(viewers, json_type_array) ? json_object_array_length(viewers) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(viewers, i);
		int fd = take(ud, json_object_get_int64(json_object_object_get(v, "fd")));
		if (fd < 0 || adopt_viewer(r, fd, v) < 0)
			dropped++;
		else
			ok++, ws += json_object_object_get(v, "ws_path") != NULL;
	}
	/* every viewer gets the whole desktop next, with what changed since */
	rfbMarkRectAsModified(r->screen, 0, 0, r->screen->width, r->screen->height);
	*ret_carried = ok;
	*ret_dropped = dropped;
	*ret_ws = ws;
	return 0;
}

void gfx_rfb_take_plain(gfx_rfb *r, const gfx_tls_conn *c)
{
	int sv[2], e = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		close(c->fd);
		return;
	}
	/* The viewer's ProtocolVersion and choice before libvncserver sees the
	 * socket: it peeks at a new client's first bytes for a websocket's
	 * GET and waits 100 ms when there are none; "RFB " tells it at once
	 * (as for a carried viewer, adopt_viewer()). */
	if (send(sv[1], c->replay, c->replay_len, MSG_NOSIGNAL) != (ssize_t)c->replay_len) {
		close(sv[0]), close(sv[1]), close(c->fd);
		r->refused++;
		return;
	}
	r->relay_peer = c->peer;
	rfbClientPtr cl = rfbNewClient(r->screen, sv[0]);
	r->relay_peer = NULL;
	/* libvncserver's ProtocolVersion, then (3.7+) its security types
	 * and, once it read the choice, the challenge; 3.3: the type and
	 * the challenge at once */
	if (!cl)
		e = -EPIPE;
	for (int i = 0; e == 0 && i < 2 && cl->state != RFB_AUTHENTICATION; i++) {
		rfbProcessClientMessage(cl);
		if (cl->sock == RFB_INVALID_SOCKET)
			e = -ECONNRESET;
	}
	uint8_t buf[64];
	ssize_t k = e == 0 && cl->state == RFB_AUTHENTICATION ? recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT) : -1;
	if (k < (ssize_t)c->greet_len + CHALLENGESIZE)
		e = e ? e : -EPROTO;
	/* what the viewer has not seen yet; a fresh socket's buffer takes it */
	size_t n = e == 0 ? (size_t)k - c->greet_len : 0;
	if (e == 0 && send(c->fd, buf + c->greet_len, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)n)
		e = -EIO;
	if (e == 0)
		e = swap_socket(r, cl, c->fd);
	close(sv[1]);
	close(c->fd);
	if (e < 0 && cl && cl->sock != RFB_INVALID_SOCKET)
		rfbCloseClient(cl);
	if (e < 0)
		r->refused++;
}

void gfx_rfb_abandon(gfx_rfb *r)
{
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
		if (cl->sock == RFB_INVALID_SOCKET || !carriable(cl))
			continue;
		/* no shutdown(): the connection is the new process's now */
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, cl->sock, NULL);
		close(cl->sock);
		cl->sock = RFB_INVALID_SOCKET;
	}
	rfbReleaseClientIterator(it);
}
