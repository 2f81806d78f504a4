/* rfb_accept.c: new connections to the RFB server (rfb_server.c has the
 * rest). On the RFB port with VeNCrypt offered, a connection goes to the
 * TLS worker (tls.h), which hands it back at VNC authentication; without,
 * straight to libvncserver. On the websocket port it waits (at most
 * WS_PENDING_MAX at once, each WS_PENDING_NS) until its request line is
 * in, which must carry the token: one without is answered 403 and closed,
 * so a browser without the URL never reaches the RFB handshake. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rfb_private.h"
#include "scm/macro.h"

void gfx_rfb_pending_drop(gfx_rfb *r, size_t i)
{
	if (r->pending[i].fd < 0)
		return;
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->pending[i].fd, NULL);
	safe_close(r->pending[i].fd);
	r->pending[i].fd = -1;
}

static void take(gfx_rfb *r, int fd, bool ws)
{
	r->accepting_ws = ws;
	/* rfbNewClient() makes the socket blocking-with-timeouts its way and
	 * calls on_new_client(), which joins it to our epoll set. */
	rfbNewClient(r->screen, fd);
	r->accepting_ws = false;
}

/* Viewers the TLS worker has brought to VNC authentication. */
void gfx_rfb_take_relayed(gfx_rfb *r)
{
	gfx_tls_conn c;
	while (gfx_tls_next(r->tls, &c) == 1) {
		if (c.plain) { /* the viewer's own socket (rfb_handover.c) */
			gfx_rfb_take_plain(r, &c);
			continue;
		}
		r->relay_peer = c.peer, r->relay_tls = c.tls, r->relaying = true;
		take(r, c.fd, false);
		r->relay_peer = NULL, r->relaying = false;
	}
}

void gfx_rfb_accept(gfx_rfb *r, int lfd, bool ws)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (!ws && r->tls) {
		/* The TLS worker speaks the handshake up to VNC authentication. */
		struct sockaddr_in a;
		socklen_t al = sizeof(a);
		char ip[INET_ADDRSTRLEN] = "?";
		if (getpeername(fd, (struct sockaddr *)&a, &al) == 0)
			inet_ntop(AF_INET, &a.sin_addr, ip, sizeof(ip));
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		gfx_tls_take(r->tls, fd, ip);
		return;
	}
	if (!ws) {
		take(r, fd, false);
		return;
	}
	/* Wait for its request line; the oldest pending one makes room. */
	size_t slot = 0;
	for (size_t i = 0; i < WS_PENDING_MAX; i++) {
		if (r->pending[i].fd < 0) {
			slot = i;
			break;
		}
		if (r->pending[i].since < r->pending[slot].since)
			slot = i;
	}
	gfx_rfb_pending_drop(r, slot);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = gfx_rfb_tag(TAG_WS_PENDING, fd) };
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return;
	}
	r->pending[slot] = (ws_pending){ fd, gfx_rfb_now_ns() };
}

static void ws_refuse(gfx_rfb *r, int fd, const char *why)
{
	char resp[256];
	int n = snprintf(resp, sizeof(resp),
			 "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n\r\n%s\n", strlen(why) + 1, why);
	(void)!send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	r->refused++;
}

void gfx_rfb_ws_check(gfx_rfb *r, int fd)
{
	size_t slot = WS_PENDING_MAX;
	for (size_t i = 0; i < WS_PENDING_MAX; i++)
		if (r->pending[i].fd == fd)
			slot = i;
	if (slot == WS_PENDING_MAX)
		return;
	uint8_t buf[GFX_WS_REQUEST_MAX];
	char path[GFX_WS_REQUEST_MAX];
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	/* Peek: libvncserver reads the request again for its handshake. */
	ssize_t k = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	if (k <= 0) {
		if (k == 0 || (errno != EAGAIN && errno != EINTR))
			gfx_rfb_pending_drop(r, slot);
		return;
	}
	int e = gfx_ws_parse_request(buf, (size_t)k, path, sizeof(path), &err);
	if (e == -EAGAIN)
		return;
	if (e == 0 && !gfx_ws_token_matches(path, r->token)) {
		e = scm_fail(&err, GFX_E_INVALID, "wrong or missing token");
	}
	if (e) {
		ws_refuse(r, fd, err && err->message ? err->message : "out of memory");
		gfx_rfb_pending_drop(r, slot);
		return;
	}
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
	r->pending[slot].fd = -1;
	take(r, fd, true);
}
