/* rfb_server.c: serves the desktop to RFB viewers on 127.0.0.1.
 *
 * One epoll set holds the listening socket and every viewer; all sockets
 * are non-blocking. A viewer walks the handshake (version, security None,
 * ClientInit/ServerInit) and then sends requests; an update is built only
 * when the viewer asked for one and its previous update has left the
 * output buffer, so a slow viewer gets fewer, fresher frames instead of a
 * growing queue. Damage between updates accumulates per viewer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rfb.h"
#include "scm/macro.h"

enum vstate { V_VERSION, V_SECURITY, V_CLIENT_INIT, V_NORMAL };

typedef struct viewer {
	int fd;
	enum vstate state;
	int minor;
	gfx_pixfmt pf;
	uint8_t in[GFX_RFB_MSG_MAX + 64];
	size_t in_len;
	uint8_t *out;
	size_t out_cap, out_off, out_len;
	bool want, want_full; /* an update request is pending */
	gfx_rect req;
	gfx_region dirty;
	bool epollout;
} viewer;

struct gfx_rfb {
	gfx_compositor *comp;
	int listen_fd, epfd;
	uint16_t port;
	char name[64];
	gfx_rfb_ops ops;
	void *userdata;
	viewer *v[GFX_RFB_VIEWERS_MAX];
};

static void viewer_drop(gfx_rfb *r, size_t i)
{
	viewer *v = r->v[i];
	if (!v)
		return;
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, v->fd, NULL);
	safe_close(v->fd);
	free(v->out);
	free(v);
	r->v[i] = NULL;
}

gfx_rfb *gfx_rfb_free(gfx_rfb *r)
{
	if (!r)
		return NULL;
	for (size_t i = 0; i < GFX_RFB_VIEWERS_MAX; i++)
		viewer_drop(r, i);
	safe_close(r->listen_fd);
	safe_close(r->epfd);
	free(r);
	return NULL;
}
DEFINE_TRIVIAL_CLEANUP(gfx_rfb *, gfx_rfb_free)

int gfx_rfb_new(gfx_compositor *c, uint16_t port, const char *name, const gfx_rfb_ops *ops,
		void *userdata, gfx_rfb **ret)
{
	_cleanup_(gfx_rfb_freep) gfx_rfb *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->listen_fd = r->epfd = -1;
	r->comp = c;
	snprintf(r->name, sizeof(r->name), "%s", name ? name : "scm desktop");
	if (ops)
		r->ops = *ops;
	r->userdata = userdata;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0)
		return -errno;
	r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (r->listen_fd < 0)
		return -errno;
	int one = 1;
	setsockopt(r->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(r->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(r->listen_fd, 8) < 0)
		return -errno;
	socklen_t al = sizeof(a);
	if (getsockname(r->listen_fd, (struct sockaddr *)&a, &al) < 0)
		return -errno;
	r->port = ntohs(a.sin_port);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = UINT64_MAX };
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->listen_fd, &ev) < 0)
		return -errno;
	*ret = TAKE_PTR(r);
	return 0;
}

uint16_t gfx_rfb_port(const gfx_rfb *r)
{
	return r->port;
}
int gfx_rfb_fd(const gfx_rfb *r)
{
	return r->epfd;
}
uint32_t gfx_rfb_viewers(const gfx_rfb *r)
{
	uint32_t n = 0;
	for (size_t i = 0; i < GFX_RFB_VIEWERS_MAX; i++)
		n += r->v[i] && r->v[i]->state == V_NORMAL;
	return n;
}

static int reserve(viewer *v, size_t extra)
{
	if (v->out_len + extra <= v->out_cap)
		return 0;
	size_t cap = v->out_cap ? v->out_cap : 4096;
	while (cap < v->out_len + extra)
		cap *= 2;
	uint8_t *p = realloc(v->out, cap);
	if (!p)
		return -ENOMEM;
	v->out = p;
	v->out_cap = cap;
	return 0;
}

static int put(viewer *v, const void *data, size_t n)
{
	int r = reserve(v, n);
	if (r < 0)
		return r;
	memcpy(v->out + v->out_len, data, n);
	v->out_len += n;
	return 0;
}

static int put32(viewer *v, uint32_t x)
{
	uint8_t b[4] = { (uint8_t)(x >> 24), (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x };
	return put(v, b, 4);
}

/* Writes what is queued; arms EPOLLOUT for the rest. */
static int flush(gfx_rfb *r, viewer *v)
{
	while (v->out_off < v->out_len) {
		ssize_t n = send(v->fd, v->out + v->out_off, v->out_len - v->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -EPIPE;
		v->out_off += (size_t)n;
	}
	if (v->out_off == v->out_len)
		v->out_off = v->out_len = 0;
	bool want_out = v->out_len > 0;
	if (want_out != v->epollout) {
		struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0) };
		for (size_t i = 0; i < GFX_RFB_VIEWERS_MAX; i++)
			if (r->v[i] == v)
				ev.data.u64 = i;
		epoll_ctl(r->epfd, EPOLL_CTL_MOD, v->fd, &ev);
		v->epollout = want_out;
	}
	return 0;
}

static int send_rect(viewer *v, const uint32_t *fb, uint32_t stride, const gfx_rect *rc)
{
	size_t bpp = v->pf.bpp / 8;
	uint8_t h[12] = { (uint8_t)(rc->x >> 8), (uint8_t)rc->x, (uint8_t)(rc->y >> 8), (uint8_t)rc->y,
			  (uint8_t)(rc->w >> 8), (uint8_t)rc->w, (uint8_t)(rc->h >> 8), (uint8_t)rc->h,
			  0, 0, 0, 0 /* raw */ };
	int e = put(v, h, sizeof(h));
	if (e < 0)
		return e;
	size_t row = (size_t)rc->w * bpp;
	e = reserve(v, row * (size_t)rc->h);
	if (e < 0)
		return e;
	for (int32_t y = rc->y; y < rc->y + rc->h; y++)
		v->out_len += gfx_rfb_pack(&v->pf, fb + (size_t)y * stride + rc->x, (size_t)rc->w,
					   v->out + v->out_len);
	return 0;
}

/* Sends an update if one was asked for and there is something to send. */
static int maybe_update(gfx_rfb *r, viewer *v)
{
	if (v->state != V_NORMAL || !v->want || v->out_len > 0)
		return 0;
	gfx_region send_rg;
	gfx_region_clear(&send_rg);
	if (v->want_full)
		gfx_region_add(&send_rg, &v->req, &v->req);
	else
		gfx_region_add_region(&send_rg, &v->dirty, &v->req);
	if (gfx_region_empty(&send_rg))
		return 0;
	uint8_t h[4] = { 0, 0, (uint8_t)(send_rg.n >> 8), (uint8_t)send_rg.n };
	int e = put(v, h, 4);
	for (uint32_t i = 0; e == 0 && i < send_rg.n; i++)
		e = send_rect(v, r->comp->fb, r->comp->width, &send_rg.r[i]);
	if (e < 0)
		return e;
	v->want = v->want_full = false;
	/* What the request covered has been sent; damage outside it stays. */
	uint32_t k = 0;
	for (uint32_t i = 0; i < v->dirty.n; i++) {
		gfx_rect in;
		gfx_rect_intersect(&v->dirty.r[i], &v->req, &in);
		if (in.w != v->dirty.r[i].w || in.h != v->dirty.r[i].h)
			v->dirty.r[k++] = v->dirty.r[i];
	}
	v->dirty.n = k;
	return flush(r, v);
}

static int server_init(gfx_rfb *r, viewer *v)
{
	uint8_t h[4] = { (uint8_t)(r->comp->width >> 8), (uint8_t)r->comp->width,
			 (uint8_t)(r->comp->height >> 8), (uint8_t)r->comp->height };
	uint8_t pf[16];
	gfx_rfb_encode_pixfmt(&v->pf, pf);
	size_t nl = strlen(r->name);
	int e = put(v, h, 4);
	if (!e)
		e = put(v, pf, 16);
	if (!e)
		e = put32(v, (uint32_t)nl);
	if (!e)
		e = put(v, r->name, nl);
	return e;
}

static int handle_msg(gfx_rfb *r, viewer *v, const gfx_rfb_msg *m)
{
	gfx_compositor *c = r->comp;
	switch (m->type) {
	case GFX_RFB_SET_PIXEL_FORMAT:
		v->pf = m->pf;
		/* Damage already queued was for the old format; start over. */
		gfx_comp_damage_all(c);
		break;
	case GFX_RFB_UPDATE_REQUEST: {
		gfx_rect req = { m->x, m->y, m->w, m->h };
		gfx_rect all = { 0, 0, (int32_t)c->width, (int32_t)c->height };
		if (!gfx_rect_intersect(&req, &all, &v->req))
			break;
		v->want = true;
		v->want_full = v->want_full || !m->incremental;
		return maybe_update(r, v);
	}
	case GFX_RFB_KEY:
		if (r->ops.key)
			r->ops.key(r->userdata, m->down, m->key);
		break;
	case GFX_RFB_POINTER:
		if (r->ops.pointer)
			r->ops.pointer(r->userdata, m->buttons, m->x, m->y);
		break;
	default: /* SetEncodings: raw is always allowed; cut text is ignored. */
		break;
	}
	return 0;
}

/* Consumes what the viewer sent; returns < 0 to drop it. */
static int process(gfx_rfb *r, viewer *v)
{
	size_t off = 0;
	int e = 0;
	char err[160];

	while (e == 0 && off < v->in_len) {
		const uint8_t *p = v->in + off;
		size_t avail = v->in_len - off;
		if (v->state == V_VERSION) {
			if (avail < 12)
				break;
			if (gfx_rfb_parse_version(p, &v->minor))
				return -EPROTO;
			off += 12;
			if (v->minor == 3) {
				e = put32(v, 1); /* security type None, RFB 3.3 style */
				v->state = V_CLIENT_INIT;
			} else {
				e = put(v, (const uint8_t[]){ 1, 1 }, 2);
				v->state = V_SECURITY;
			}
		} else if (v->state == V_SECURITY) {
			if (p[0] != 1) {
				if (v->minor == 8) {
					static const char why[] = "only security type None is offered";
					put32(v, 1);
					put32(v, sizeof(why) - 1);
					put(v, why, sizeof(why) - 1);
					flush(r, v);
				}
				return -EPROTO;
			}
			off += 1;
			if (v->minor == 8)
				e = put32(v, 0); /* SecurityResult OK */
			v->state = V_CLIENT_INIT;
		} else if (v->state == V_CLIENT_INIT) {
			off += 1; /* shared flag: every viewer shares */
			e = server_init(r, v);
			v->state = V_NORMAL;
		} else {
			gfx_rfb_msg m;
			size_t used;
			int pr = gfx_rfb_parse_msg(p, avail, &m, &used, err, sizeof(err));
			if (pr == -EAGAIN)
				break;
			if (pr)
				return -EPROTO;
			off += used;
			e = handle_msg(r, v, &m);
		}
	}
	memmove(v->in, v->in + off, v->in_len - off);
	v->in_len -= off;
	if (e < 0)
		return e;
	return flush(r, v);
}

static void accept_viewer(gfx_rfb *r)
{
	int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	size_t slot = GFX_RFB_VIEWERS_MAX;
	for (size_t i = 0; i < GFX_RFB_VIEWERS_MAX; i++)
		if (!r->v[i]) {
			slot = i;
			break;
		}
	viewer *v = slot < GFX_RFB_VIEWERS_MAX ? calloc(1, sizeof(*v)) : NULL;
	if (!v) {
		close(fd);
		return;
	}
	int one = 1, sndbuf = 4 << 20;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A full frame is 8 MB at 1080p; a deep send buffer lets the kernel
	 * take most of it in one go instead of a wake-up per 200 KB. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	v->fd = fd;
	v->pf = gfx_pixfmt_desktop;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = slot };
	r->v[slot] = v;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 || put(v, "RFB 003.008\n", 12) < 0 ||
	    flush(r, v) < 0)
		viewer_drop(r, slot);
}

int gfx_rfb_dispatch(gfx_rfb *r)
{
	struct epoll_event evs[16];
	int n = epoll_wait(r->epfd, evs, 16, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == UINT64_MAX) {
			accept_viewer(r);
			continue;
		}
		size_t slot = (size_t)evs[i].data.u64;
		viewer *v = slot < GFX_RFB_VIEWERS_MAX ? r->v[slot] : NULL;
		if (!v)
			continue;
		bool bad = false;
		if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
			ssize_t k = recv(v->fd, v->in + v->in_len, sizeof(v->in) - v->in_len, MSG_DONTWAIT);
			if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
				bad = true;
			else if (k > 0) {
				v->in_len += (size_t)k;
				bad = process(r, v) < 0;
			}
		}
		if (!bad && (evs[i].events & EPOLLOUT))
			bad = flush(r, v) < 0 || maybe_update(r, v) < 0;
		if (bad)
			viewer_drop(r, slot);
	}
	return 0;
}

void gfx_rfb_damage(gfx_rfb *r, const gfx_region *changed)
{
	gfx_rect all = { 0, 0, (int32_t)r->comp->width, (int32_t)r->comp->height };
	for (size_t i = 0; i < GFX_RFB_VIEWERS_MAX; i++) {
		viewer *v = r->v[i];
		if (!v || v->state != V_NORMAL)
			continue;
		gfx_region_add_region(&v->dirty, changed, &all);
		if (maybe_update(r, v) < 0)
			viewer_drop(r, i);
	}
}
