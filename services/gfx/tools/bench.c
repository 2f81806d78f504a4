/* bench.c: gfx-bench, the graphics proxy's figures for `make bench`.
 *
 * At 1920x1080: frames composited per second with 1, 4 and 16 clients
 * tiling the desktop, with full-frame damage (every client presents its
 * whole surface every frame) and with small damage (a 64x64 rect per
 * client per frame), through the real engine (present, time bank,
 * compositor); alpha blending; an idle desktop's cost; and the latency
 * from a present to the update arriving at an RFB viewer over loopback
 * TCP. Every figure is set against the physical limit: a memcpy of the
 * same 1920x1080x4 frame. Lines read
 *   gfx <name>: <value> <unit> (ratio <x> vs memcpy)
 * Each figure is the median of 5 rounds, each ratio the median of 5
 * ratios to a memcpy round run just before (interleaved); latencies are
 * medians of 200 presents. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"

#define W 1920
#define H 1080
#define ROUNDS 5
#define ROUND_NS 300000000LL

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[n / 2];
}

/* Frames per second of fn over one round of ROUND_NS. */
static double round_fps(void (*fn)(void *), void *arg)
{
	int64_t t0 = now_ns(), t;
	long frames = 0;
	do {
		fn(arg);
		frames++;
		t = now_ns();
	} while (t - t0 < ROUND_NS);
	return frames * 1e9 / (double)(t - t0);
}

static uint32_t *frame_a, *frame_b;
static void do_memcpy(void *arg)
{
	memcpy(frame_b, frame_a, (size_t)W * H * 4);
	__asm__ volatile("" ::"r"(frame_b) : "memory");
}

/* Median frames/s of fn, and the median of its ratio to a memcpy round
 * run right before each of its rounds: interleaving keeps the ratio
 * honest when the machine's load drifts. */
static double fps(void (*fn)(void *), void *arg, double *ret_ratio)
{
	double f[ROUNDS], r[ROUNDS];
	for (int k = 0; k < ROUNDS; k++) {
		double m = round_fps(do_memcpy, NULL);
		f[k] = round_fps(fn, arg);
		r[k] = f[k] / m;
	}
	if (ret_ratio)
		*ret_ratio = median(r, ROUNDS);
	return median(f, ROUNDS);
}

typedef struct {
	gfx_server *s;
	gfx_client *c[16];
	int n;
	bool small;
	uint32_t tick;
} scene;

static void scene_init(scene *sc, int n, uint32_t blend)
{
	gfx_server_config cfg = { .width = W, .height = H, .background = 0x202020, .border_px = 4,
				  .period_ns = 10000000 };
	memset(sc, 0, sizeof(*sc));
	if (gfx_server_new(&cfg, &sc->s))
		exit(1);
	/* Tiles of a square grid, framed and titled, gaps included, covering
	 * the desktop above the taskbar. */
	int side = n == 1 ? 1 : n == 4 ? 2 : 4;
	const uint32_t title = 16, bar = 20, dh = H - bar;
	uint32_t cw = W / (uint32_t)side - 8 - 16, ch = dh / (uint32_t)side - 8 - 16 - title;
	for (int i = 0; i < n; i++) {
		if (gfx_client_new(sc->s, i % 2 ? "bench-odd" : "bench-even", cw, ch, 1, &sc->c[i]))
			exit(1);
		gfx_surface *sf = gfx_client_surface(sc->c[i]);
		for (size_t p = 0; p < (size_t)cw * ch; p++)
			sf->pixels[p] = (uint32_t)(p * 2654435761u) | (blend ? 0x80000000u : 0);
		gfx_client_move(sc->c[i], (i % side) * (W / side) + 12, (i / side) * (dh / side) + 12 + title);
		if (blend)
			gfx_comp_find(gfx_server_compositor(sc->s), gfx_client_id(sc->c[i]))->blend = blend;
	}
	sc->n = n;
	gfx_server_work(sc->s, INT64_MAX);
}

static void scene_frame(void *arg)
{
	scene *sc = arg;
	sc->tick++;
	for (int i = 0; i < sc->n; i++) {
		gfx_surface *sf = gfx_client_surface(sc->c[i]);
		gfx_rect r = { 0, 0, (int32_t)sf->width, (int32_t)sf->height };
		if (sc->small)
			r = (gfx_rect){ (int32_t)((sc->tick * 37) % (sf->width - 64)),
					(int32_t)((sc->tick * 11) % (sf->height - 64)), 64, 64 };
		gfx_client_present(sc->c[i], &r, 1);
	}
	gfx_server_work(sc->s, INT64_MAX);
}

static void idle_frame(void *arg)
{
	gfx_server_work(((scene *)arg)->s, INT64_MAX);
}

/* An RFB viewer on loopback: returns present-to-received latency in ns. */
static int viewer_connect(gfx_server *s)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(gfx_rfb_port(gfx_server_rfb(s))),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	int big = 16 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		exit(1);
	return fd;
}

/* Runs the server until n bytes arrived on the viewer socket. */
static void pump(gfx_server *s, int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = gfx_server_fd(s), .events = POLLIN } };
		poll(p, 2, 100);
		gfx_server_dispatch(s);
		if (p[0].revents) {
			ssize_t k = recv(fd, buf + got, n - got, MSG_DONTWAIT);
			if (k == 0)
				exit(1);
			if (k > 0)
				got += (size_t)k;
		}
	}
}

static double latency_us(int rw, int rh)
{
	/* The raw viewer below speaks security None: a bench-only server. */
	gfx_server_config cfg = { .width = W, .height = H, .background = 0x202020, .rfb = true,
				  .insecure_no_auth = true };
	gfx_server *s;
	gfx_client *c;
	if (gfx_server_new(&cfg, &s) || gfx_client_new(s, "bench", W - 48, H - 48, 1, &c))
		exit(1);
	gfx_server_work(s, INT64_MAX);
	int fd = viewer_connect(s);
	static uint8_t buf[4 + 12 + W * H * 4 + 64];
	pump(s, fd, buf, 12);
	send(fd, "RFB 003.008\n", 12, 0);
	pump(s, fd, buf, 2);
	send(fd, "\1", 1, 0);
	pump(s, fd, buf, 4);
	send(fd, "\1", 1, 0);
	pump(s, fd, buf, 24);
	pump(s, fd, buf, buf[23]);
	const uint8_t req[10] = { 3, 0, 0, 0, 0, 0, W >> 8, W & 0xff, H >> 8, H & 0xff };
	send(fd, req, 10, 0);
	pump(s, fd, buf, 4 + 12 + (size_t)W * H * 4);
	double v[200];
	for (int i = 0; i < 200; i++) {
		uint8_t inc[10];
		memcpy(inc, req, 10);
		inc[1] = 1;
		send(fd, inc, 10, 0);
		/* Let the request land before the clock starts. */
		struct pollfd p = { .fd = gfx_server_fd(s), .events = POLLIN };
		poll(&p, 1, 100);
		gfx_server_dispatch(s);
		gfx_surface *sf = gfx_client_surface(c);
		sf->pixels[0] = (uint32_t)i;
		int64_t t0 = now_ns();
		gfx_client_present(c, &(gfx_rect){ 0, 0, rw, rh }, 1);
		gfx_server_work(s, INT64_MAX);
		pump(s, fd, buf, 4 + 12 + (size_t)rw * rh * 4);
		v[i] = (double)(now_ns() - t0) / 1000.0;
	}
	close(fd);
	gfx_server_free(s);
	return median(v, 200);
}

int main(void)
{
	frame_a = aligned_alloc(64, (size_t)W * H * 4);
	frame_b = aligned_alloc(64, (size_t)W * H * 4);
	if (!frame_a || !frame_b)
		return 1;
	memset(frame_a, 0x5a, (size_t)W * H * 4);
	memset(frame_b, 0, (size_t)W * H * 4);
	double mc = fps(do_memcpy, NULL, NULL), ratio;
	double mc_us = 1e6 / mc;
	printf("gfx memcpy 1920x1080x4: %.0f frames/s (ratio 1.00 vs memcpy)\n", mc);
	printf("gfx memcpy 1920x1080x4 time: %.0f us (ratio 1.00 vs memcpy)\n", mc_us);
	fflush(stdout);

	const int ns[3] = { 1, 4, 16 };
	for (int small = 0; small < 2; small++)
		for (int k = 0; k < 3; k++) {
			scene sc;
			scene_init(&sc, ns[k], 0);
			sc.small = small;
			double f = fps(scene_frame, &sc, &ratio);
			printf("gfx composite %d client%s %s damage: %.0f frames/s (ratio %.2f vs memcpy)\n", ns[k],
			       ns[k] > 1 ? "s" : "", small ? "small (64x64 each)" : "full-frame", f, ratio);
			fflush(stdout);
			gfx_server_free(sc.s);
		}
	scene sc;
	scene_init(&sc, 4, GFX_BLEND_ALPHA);
	double f = fps(scene_frame, &sc, &ratio);
	printf("gfx composite 4 clients full-frame alpha blend: %.0f frames/s (ratio %.2f vs memcpy)\n", f, ratio);
	gfx_server_free(sc.s);
	scene_init(&sc, 16, 0);
	f = fps(idle_frame, &sc, &ratio);
	printf("gfx idle desktop, 16 clients, no damage: %.0f frames/s (ratio %.0f vs memcpy)\n", f, ratio);
	gfx_server_free(sc.s);
	fflush(stdout);

	double l = latency_us(64, 64);
	printf("gfx present-to-viewer latency 64x64 (RFB over loopback): %.1f us (ratio %.3f vs memcpy)\n", l,
	       l / mc_us);
	l = latency_us(W - 48, H - 48);
	printf("gfx present-to-viewer latency full frame (RFB over loopback): %.0f us (ratio %.2f vs memcpy)\n", l,
	       l / mc_us);
	return 0;
}
