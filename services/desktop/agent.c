/* agent.c: scm-desktop-agent, the in-container half of a desktop app.
 *
 * It runs beside Xvfb inside the app's container, maps the screen that
 * Xvfb keeps in its -fbdir XWD file, and every interval copies the rows
 * that changed (found by comparing with a shadow copy: a memcmp per row,
 * cheap next to compositing) into its gfx surface and presents them as
 * damage. Input the proxy routes to this app (because it has the focus)
 * is injected into Xvfb with XTest. It exits when Xvfb or the channel
 * goes away.
 *
 *   scm-desktop-agent [--display :N] [--fbdir DIR] [--interval MS]
 *
 * $DISPLAY and $SCM_DESKTOP_FBDIR are the defaults; the gfx service
 * ($SCM_GFX_SERVICE, default "gfx") is reached through $SCM_ENDPOINT like
 * any scm client; $SCM_GFX_WEIGHT, if set, is passed on as the time-bank
 * weight (the policy decides). */
#include <X11/Xlib.h>
#include <X11/extensions/XTest.h>
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "agent-clipboard.h"
#include "scm/gfx-client.h"
#include "agent-windows.h"
#include "scm/macro.h"
#include "xwd.h"

#define MAX_RECTS 64

static int die(const char *what, int r, scm_error *err)
{
	fprintf(stderr, "scm-desktop-agent: %s (%d)\n", what, r);
	if (err)
		scm_error_print(err, stderr);
	scm_error_free(err);
	return 1;
}

static scm_error *clip_warn(const char *what, scm_error *err)
{
	fprintf(stderr, "scm-desktop-agent: %s: ", what);
	scm_error_print(err, stderr);
	return scm_error_free(err);
}

static void inject(Display *dpy, aw_state *aw, const gfx_input_event *ev, uint8_t *buttons, uint32_t w,
		   uint32_t h)
{
	if (ev->type == GFX_INPUT_FOCUS || ev->type == GFX_INPUT_CLOSE) {
		(ev->type == GFX_INPUT_FOCUS ? aw_focus : aw_close)(aw, ev->window);
		return;
	}
	if (ev->type == GFX_INPUT_KEY) {
		KeyCode kc = XKeysymToKeycode(dpy, (KeySym)ev->keysym);
		if (kc)
			XTestFakeKeyEvent(dpy, kc, ev->down ? True : False, CurrentTime);
		return;
	}
	/* The proxy sends surface coordinates; clamp anyway, it costs nothing. */
	int x = ev->x < 0 ? 0 : ev->x >= (int32_t)w ? (int)w - 1 : ev->x;
	int y = ev->y < 0 ? 0 : ev->y >= (int32_t)h ? (int)h - 1 : ev->y;
	XTestFakeMotionEvent(dpy, -1, x, y, CurrentTime);
	for (unsigned b = 0; b < 8; b++) {
		uint8_t bit = (uint8_t)(1u << b);
		if ((ev->buttons ^ *buttons) & bit)
			XTestFakeButtonEvent(dpy, b + 1, (ev->buttons & bit) ? True : False, CurrentTime);
	}
	*buttons = ev->buttons;
}

/* Every X event Xlib has: the window tracker and the clipboard each take
 * what is theirs (a finished copy goes to the proxy at once). */
static void drain_x(Display *dpy, aw_state *aw, agent_clip *clip, scm_channel *ch)
{
	while (XPending(dpy)) {
		XEvent xe;
		char *text;
		size_t len;
		XNextEvent(dpy, &xe);
		aw_event(aw, &xe);
		if (agent_clip_event(clip, &xe, &text, &len) == 1) {
			scm_error *serr = NULL;
			/* A refusal (too big, or the user copied again) ends
			 * this copy only. */
			if (agent_clip_put(ch, text, len, &serr))
				clip_warn("clipboard_put", serr);
			free(text);
		}
	}
}

static struct json_object *damage_json(const gfx_rect *r, size_t n)
{
	struct json_object *arr = json_object_new_array();
	for (size_t i = 0; arr && i < n; i++) {
		struct json_object *a = json_object_new_array();
		json_object_array_add(a, json_object_new_int(r[i].x));
		json_object_array_add(a, json_object_new_int(r[i].y));
		json_object_array_add(a, json_object_new_int(r[i].w));
		json_object_array_add(a, json_object_new_int(r[i].h));
		json_object_array_add(arr, a);
	}
	return arr;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "display", required_argument, NULL, 'd' },
					      { "fbdir", required_argument, NULL, 'f' },
					      { "interval", required_argument, NULL, 'i' },
					      { 0 } };
	const char *display = getenv("DISPLAY"), *fbdir = getenv("SCM_DESKTOP_FBDIR");
	long interval = 20;
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (o == 'd')
			display = optarg;
		else if (o == 'f')
			fbdir = optarg;
		else if (o == 'i' && (interval = strtol(optarg, NULL, 10)) > 0 && interval <= 10000)
			continue;
		else {
			fprintf(stderr, "usage: scm-desktop-agent [--display :N] [--fbdir DIR] [--interval MS]\n");
			return 2;
		}
	}
	if (!display || !fbdir) {
		fprintf(stderr, "scm-desktop-agent: need --display (or $DISPLAY) and --fbdir (or $SCM_DESKTOP_FBDIR)\n");
		return 2;
	}
	char path[4096];
	snprintf(path, sizeof(path), "%s/Xvfb_screen0", fbdir);
	xwd_view xv;
	scm_error *err = NULL;
	int r = xwd_open(path, &xv, &err);
	if (r) {
		fputs("scm-desktop-agent: ", stderr);
		scm_error_print(err, stderr);
		return 1;
	}
	Display *dpy = XOpenDisplay(display);
	int ev_base, err_base, maj, min;
	if (!dpy || !XTestQueryExtension(dpy, &ev_base, &err_base, &maj, &min)) {
		fprintf(stderr, "scm-desktop-agent: cannot open display %s with XTest\n", display);
		return 1;
	}
	agent_clip *clip = agent_clip_new(dpy);
	if (!clip)
		return die("out of memory", -ENOMEM, NULL);
	uint32_t w = xv.info.width, h = xv.info.height;
	scm_channel *ch = NULL;
	scm_error *serr = NULL;
	const char *service = getenv("SCM_GFX_SERVICE");
	if ((r = scm_connect(service && *service ? service : "gfx", &ch, &serr)))
		return die("connecting to the gfx service", r, serr);
	int sfd = -1, efd = -1;
	int64_t x, y;
	char *border = NULL;
	const char *wenv = getenv("SCM_GFX_WEIGHT");
	uint64_t weight = wenv && *wenv ? strtoull(wenv, NULL, 10) : 0;
	r = scm_gfx_create_surface(ch, w, h, weight, &sfd, &efd, &x, &y, &border, &serr);
	if (r)
		return die("create_surface", r, serr);
	gfx_surface *surf = NULL;
	if ((r = gfx_surface_map(sfd, w, h, &surf)))
		return die("mapping the surface", r, NULL);
	uint32_t *shadow = calloc((size_t)w * h, 4);
	aw_state *aw = NULL;
	if (!shadow || aw_new(dpy, w, h, &aw) < 0)
		return die("out of memory", -ENOMEM, NULL);
	printf("agent %s %ux%u at %lld,%lld border %s\n", display, w, h, (long long)x, (long long)y, border);
	fflush(stdout);
	free(border);

	_cleanup_close_ int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	struct itimerspec it = { { interval / 1000, (interval % 1000) * 1000000 }, { 0, 1 } };
	if (tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &it, NULL) < 0)
		return die("timerfd", -errno, NULL);
	int fds[4] = { tfd, efd, scm_channel_fd(ch), ConnectionNumber(dpy) };
	for (uint32_t i = 0; i < 4; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			return die("epoll", -errno, NULL);
	}
	uint8_t buttons = 0;
	uint64_t frames = 0;
	for (;;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep, evs, 4, -1);
		if (n < 0 && errno != EINTR)
			return die("epoll_wait", -errno, NULL);
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u32) {
			case 0: {
				uint64_t ticks;
				(void)!read(tfd, &ticks, sizeof(ticks));
				/* The app's windows first, so new ones come with their pixels.
				 * Events Xlib read during earlier round trips wait in its
				 * queue, where epoll does not see them: take them here. */
				drain_x(dpy, aw, clip, ch);
				struct json_object *wl = aw_changed(aw);
				uint64_t shown;
				if (wl && (r = scm_gfx_set_windows(ch, wl, &shown, &serr)) != 0) {
					if (r < 0)
						return die("set_windows", r, serr);
					fprintf(stderr, "scm-desktop-agent: set_windows: ");
					scm_error_print(serr, stderr);
					serr = scm_error_free(serr);
				}
				json_object_put(wl);
				gfx_rect rects[MAX_RECTS];
				size_t k = xwd_diff(xv.map + xv.info.pixel_offset, xv.info.bytes_per_line, w, h, shadow,
						    surf->pixels, rects, MAX_RECTS);
				if (k == 0)
					break;
				struct json_object *d = damage_json(rects, k);
				uint64_t dropped;
				r = scm_gfx_present(ch, d, &dropped, &serr);
				json_object_put(d);
				if (r)
					return die("present", r, serr);
				frames++;
				break;
			}
			case 1: {
				struct json_object *events = NULL;
				gfx_input_event in[64];
				size_t k = 0;
				if ((r = scm_gfx_poll_input(ch, &events, &serr)))
					return die("poll_input", r, serr);
				scm_error *ierr = NULL;
				if (gfx_input_from_json(events, in, 64, &k, &ierr) == 0) {
					for (size_t j = 0; j < k; j++) {
						if (in[j].type != GFX_INPUT_CLIPBOARD)
							inject(dpy, aw, &in[j], &buttons, w, h);
						else if (in[j].op == GFX_CLIP_OP_COPY)
							agent_clip_copy(clip);
						else if ((r = agent_clip_paste(clip, ch, &serr)))
							serr = clip_warn("clipboard_get", serr);
					}
					XFlush(dpy);
				} else {
					fputs("scm-desktop-agent: input from the proxy: ", stderr);
					scm_error_print(ierr, stderr);
					scm_error_free(ierr);
				}
				json_object_put(events);
				break;
			}
			case 2:
				/* Nothing is pending, so input here means the channel
				 * was closed or revoked: dispatch says which. */
				if ((r = scm_channel_dispatch(ch, &serr)) != 0)
					return die("the gfx channel ended", r, serr);
				break;
			case 3:
				break; /* drained below */
			}
		}
		/* X events, read now whatever woke us: Xlib may already have
		 * queued them while doing something else (a round trip such as
		 * XGetSelectionOwner reads what the server sent meanwhile), and
		 * then the socket would not wake us for them again. Xlib's I/O
		 * error handler ends us when Xvfb goes. */
		drain_x(dpy, aw, clip, ch);
	}
}
