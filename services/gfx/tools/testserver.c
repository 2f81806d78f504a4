/* testserver.c: scm-gfx-testserver, the proxy engine with synthetic
 * clients and no broker, for end-to-end tests and demos of the
 * compositor, time bank and RFB output with real viewers.
 *
 *   scm-gfx-testserver [--size WxH] [--port N] [--info FILE]
 *                      [--snapshot FILE] [--animate MS] [--password P]
 *                      [--viewonly P] [--resize] [--photo] [--scroll ROWS:FRAMES]
 *                      --client NAME:WxH[:WEIGHT[:RRGGBB]] ...
 *                      [--window NAME:ID:X,Y,W,H[:TITLE]] ...
 *
 * --window declares a window of client NAME (set_windows): the rect of
 * its surface the proxy shows as window ID. Input the engine routes to a
 * client is printed as "input NAME {json}"; a close event makes the
 * client act as an app would: the window goes, or (window 0, a client
 * that declared none) the whole client.
 *
 * Each client paints its colour with diagonal stripes of the inverse
 * colour every 16 pixels and presents it. --animate moves a bar through
 * every client each MS milliseconds (damage-only presents). --photo
 * paints smooth gradients instead of stripes: what Tight sends as JPEG
 * when the viewer asks for a quality level. --resize lets viewers resize
 * the desktop; --viewonly sets the view-only password. --scroll paints
 * rows of text-like blocks instead, and each SIGUSR2 starts FRAMES ticks
 * of --animate in which every client scrolls its content up by ROWS rows
 * and paints new ones below, as a terminal does ("scrolled" is printed
 * after the last). --info writes
 * the engine's stats (port, client positions, borders, time bank) as
 * JSON once the first frame is composited and again on SIGUSR1, which
 * also writes --snapshot. SIGTERM/SIGINT end it. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "server.h"
#include "wm.h"

typedef struct {
	gfx_client *c;
	char name[64];
	uint32_t colour;
	uint32_t bar;
	uint32_t next_row; /* --scroll: the next row of text to paint */
	gfx_window_decl win[GFX_WINDOWS_MAX];
	size_t n_win;
} synth;

static bool photo;
static uint32_t scroll_rows, scroll_frames;

/* Row n of the endless text --scroll shows: blocks of ink in rows 2..10
 * of each 13, placed by a hash of the row's line and the column. */
static void text_row(synth *s, gfx_surface *sf, uint32_t y, uint32_t n)
{
	uint32_t line = n / 13, k = n % 13;
	for (uint32_t x = 0; x < sf->width; x++) {
		uint32_t h = (line * 2654435761u) ^ ((x / 6) * 40503u);
		h ^= h >> 15;
		h *= 2246822519u;
		h ^= h >> 13;
		bool ink = k >= 2 && k <= 10 && x % 6 != 5 && h % 3 == 0;
		sf->pixels[(size_t)y * sf->width + x] = ink ? (~s->colour & 0xFFFFFF) : s->colour;
	}
}

static void scroll(synth *s)
{
	gfx_surface *sf = gfx_client_surface(s->c);
	uint32_t n = scroll_rows < sf->height ? scroll_rows : sf->height;
	memmove(sf->pixels, sf->pixels + (size_t)n * sf->width, (size_t)(sf->height - n) * sf->width * 4);
	for (uint32_t y = sf->height - n; y < sf->height; y++)
		text_row(s, sf, y, s->next_row++);
	gfx_rect all = { 0, 0, (int32_t)sf->width, (int32_t)sf->height };
	gfx_client_present(s->c, &all, 1);
}

/* Prints what the engine routed to each client; closes as asked. */
static void drain(synth *syn, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		gfx_input_event ev[64];
		size_t k;
		while (syn[i].c && (k = gfx_client_take_input(syn[i].c, ev, 64)) > 0) {
			struct json_object *j = gfx_input_to_json(ev, k), *arr;
			if (j && json_object_object_get_ex(j, "events", &arr))
				for (size_t e = 0; e < json_object_array_length(arr); e++)
					printf("input %s %s\n", syn[i].name,
					       json_object_to_json_string_ext(json_object_array_get_idx(arr, e),
									      JSON_C_TO_STRING_PLAIN));
			json_object_put(j);
			for (size_t e = 0; e < k; e++) {
				if (ev[e].type != GFX_INPUT_CLOSE)
					continue;
				size_t w = 0;
				for (size_t m = 0; m < syn[i].n_win; m++)
					if (syn[i].win[m].id != ev[e].window)
						syn[i].win[w++] = syn[i].win[m];
				if (ev[e].window == 0 || w == 0) {
					syn[i].c = gfx_client_free(syn[i].c);
					printf("closed %s\n", syn[i].name);
					break;
				}
				syn[i].n_win = w;
				gfx_client_set_windows(syn[i].c, syn[i].win, w);
				printf("closed %s %u\n", syn[i].name, ev[e].window);
			}
		}
	}
	fflush(stdout);
}

static void paint(synth *s)
{
	gfx_surface *sf = gfx_client_surface(s->c);
	if (scroll_rows) {
		for (uint32_t y = 0; y < sf->height; y++)
			text_row(s, sf, y, s->next_row++);
		return;
	}
	if (photo) {
		for (uint32_t y = 0; y < sf->height; y++)
			for (uint32_t x = 0; x < sf->width; x++)
				sf->pixels[(size_t)y * sf->width + x] = (x * 255 / sf->width) << 16 |
									 (y * 255 / sf->height) << 8 |
									 ((x + y) * 255 / (sf->width + sf->height));
		return;
	}
	for (uint32_t y = 0; y < sf->height; y++)
		for (uint32_t x = 0; x < sf->width; x++)
			sf->pixels[(size_t)y * sf->width + x] =
				((x + y) / 16) % 4 == 3 ? (~s->colour & 0xFFFFFF) : s->colour;
}

static void animate(synth *s)
{
	gfx_surface *sf = gfx_client_surface(s->c);
	uint32_t old = s->bar;
	s->bar = (s->bar + 4) % sf->width;
	/* Restore the old bar column, draw the new one: small damage. */
	for (uint32_t y = 0; y < sf->height / 8; y++) {
		for (uint32_t x = old; x < old + 4 && x < sf->width; x++)
			sf->pixels[(size_t)y * sf->width + x] =
				((x + y) / 16) % 4 == 3 ? (~s->colour & 0xFFFFFF) : s->colour;
		for (uint32_t x = s->bar; x < s->bar + 4 && x < sf->width; x++)
			sf->pixels[(size_t)y * sf->width + x] = 0xFFFFFF;
	}
	gfx_rect d[2] = { { (int32_t)old, 0, 4, (int32_t)sf->height / 8 },
			  { (int32_t)s->bar, 0, 4, (int32_t)sf->height / 8 } };
	gfx_client_present(s->c, d, 2);
}

static int write_info(gfx_server *srv, const char *path)
{
	char tmp[4096];
	struct json_object *j = gfx_server_stats(srv);
	if (!j)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int r = json_object_to_file_ext(tmp, j, JSON_C_TO_STRING_PRETTY) < 0 || rename(tmp, path) < 0 ? -EIO : 0;
	json_object_put(j);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },   { "port", required_argument, NULL, 'p' },
		{ "info", required_argument, NULL, 'i' },   { "snapshot", required_argument, NULL, 'o' },
		{ "animate", required_argument, NULL, 'a' }, { "client", required_argument, NULL, 'c' },
		{ "password", required_argument, NULL, 'P' }, { "window", required_argument, NULL, 'w' },
		{ "viewonly", required_argument, NULL, 'v' }, { "resize", no_argument, NULL, 'r' },
		{ "photo", no_argument, NULL, 'g' }, { "scroll", required_argument, NULL, 'S' },
		{ 0 }
	};
	gfx_server_config cfg = { .width = 640, .height = 400, .background = 0x2b2b2b, .rfb = true,
				  .name = "scm-gfx-testserver" };
	const char *info = NULL, *snap = NULL;
	char *clients[GFX_CLIENTS_MAX], *windows[GFX_OVERLAYS_MAX];
	size_t n_clients = 0, n_windows = 0;
	long anim_ms = 0;
	uint32_t frames_left = 0;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (o) {
		case 's':
			if (sscanf(optarg, "%ux%u", &cfg.width, &cfg.height) != 2) {
				fprintf(stderr, "testserver: --size: want WxH, got \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'p':
			cfg.rfb_port = (uint16_t)strtoul(optarg, NULL, 10);
			break;
		case 'P':
			cfg.password = optarg;
			break;
		case 'v':
			cfg.viewonly_password = optarg;
			break;
		case 'r':
			cfg.resize = true;
			break;
		case 'g':
			photo = true;
			break;
		case 'S':
			if (sscanf(optarg, "%u:%u", &scroll_rows, &scroll_frames) != 2 || scroll_rows == 0) {
				fprintf(stderr, "testserver: --scroll: want ROWS:FRAMES, got \"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'i':
			info = optarg;
			break;
		case 'o':
			snap = optarg;
			break;
		case 'a':
			anim_ms = strtol(optarg, NULL, 10);
			break;
		case 'c':
			if (n_clients == GFX_CLIENTS_MAX)
				return 2;
			clients[n_clients++] = optarg;
			break;
		case 'w':
			if (n_windows == GFX_OVERLAYS_MAX)
				return 2;
			windows[n_windows++] = optarg;
			break;
		default:
			return 2;
		}
	}
	gfx_server *srv;
	int r = gfx_server_new(&cfg, &srv);
	if (r) {
		fprintf(stderr, "testserver: cannot start the engine: %d\n", r);
		return 1;
	}
	synth syn[GFX_CLIENTS_MAX];
	for (size_t i = 0; i < n_clients; i++) {
		char name[64];
		uint32_t w, h, weight = 1, colour = 0x3080C0;
		int k = sscanf(clients[i], "%63[^:]:%ux%u:%u:%x", name, &w, &h, &weight, &colour);
		if (k < 3) {
			fprintf(stderr, "testserver: --client: want NAME:WxH[:WEIGHT[:RRGGBB]], got \"%s\"\n",
				clients[i]);
			return 2;
		}
		syn[i] = (synth){ .colour = colour & 0xFFFFFF };
		snprintf(syn[i].name, sizeof(syn[i].name), "%s", name);
		r = gfx_client_new(srv, name, w, h, weight, &syn[i].c);
		if (r) {
			fprintf(stderr, "testserver: client %s refused: %d\n", name, r);
			return 1;
		}
		paint(&syn[i]);
		gfx_client_present(syn[i].c, NULL, 0);
	}
	for (size_t i = 0; i < n_windows; i++) {
		char name[64], title[GFX_TITLE_MAX + 1] = "";
		gfx_window_decl d = { 0 };
		size_t k;
		if (sscanf(windows[i], "%63[^:]:%u:%d,%d,%d,%d:%63[^\n]", name, &d.id, &d.r.x, &d.r.y, &d.r.w, &d.r.h,
			   title) < 6) {
			fprintf(stderr, "testserver: --window: want NAME:ID:X,Y,W,H[:TITLE], got \"%s\"\n", windows[i]);
			return 2;
		}
		snprintf(d.title, sizeof(d.title), "%s", title);
		for (k = 0; k < n_clients && strcmp(syn[k].name, name) != 0; k++)
			;
		if (k == n_clients || syn[k].n_win == GFX_WINDOWS_MAX)
			return 2;
		syn[k].win[syn[k].n_win++] = d;
		if ((r = gfx_client_set_windows(syn[k].c, syn[k].win, syn[k].n_win)) != 0) {
			fprintf(stderr, "testserver: windows of %s refused: %d\n", name, r);
			return 1;
		}
	}
	gfx_server_work(srv, INT64_MAX);
	if (snap && gfx_snapshot_png(gfx_server_compositor(srv), snap) < 0)
		fprintf(stderr, "testserver: snapshot %s failed\n", snap);
	if (info && write_info(srv, info) < 0)
		fprintf(stderr, "testserver: cannot write %s\n", info);
	/* Blocked before the port is printed: a test may signal right after. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	gfx_rfb *rfb = gfx_server_rfb(srv);
	printf("rfb 127.0.0.1:%u\n", gfx_rfb_port(rfb));
	printf("secret %s %s %u\n", gfx_rfb_password(rfb), gfx_rfb_token(rfb), gfx_rfb_ws_port(rfb));
	fflush(stdout);

	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || tfd < 0 || ep < 0)
		return 1;
	if (anim_ms > 0) {
		struct itimerspec it = { { anim_ms / 1000, (anim_ms % 1000) * 1000000 },
					 { anim_ms / 1000, (anim_ms % 1000) * 1000000 } };
		timerfd_settime(tfd, 0, &it, NULL);
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	epoll_ctl(ep, EPOLL_CTL_ADD, gfx_server_fd(srv), &ev);
	ev.data.u32 = 1;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.u32 = 2;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	for (bool run = true; run;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, -1);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == 1) {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGUSR2) {
					frames_left = scroll_frames;
				} else if (si.ssi_signo == SIGUSR1) {
					gfx_server_work(srv, INT64_MAX);
					if (snap)
						gfx_snapshot_png(gfx_server_compositor(srv), snap);
					if (info)
						write_info(srv, info);
				} else {
					run = false;
				}
			} else if (evs[i].data.u32 == 2) {
				uint64_t ticks;
				if (read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks))
					continue;
				if (scroll_rows && frames_left == 0)
					continue;
				for (size_t k = 0; k < n_clients; k++)
					if (syn[k].c)
						(scroll_rows ? scroll : animate)(&syn[k]);
				if (scroll_rows && --frames_left == 0) {
					/* What the last frame presented, composited first. */
					gfx_server_work(srv, INT64_MAX);
					printf("scrolled\n");
					fflush(stdout);
				}
			}
		}
		gfx_server_dispatch(srv);
		drain(syn, n_clients);
	}
	gfx_server_free(srv);
	close(ep);
	close(tfd);
	close(sfd);
	return 0;
}
