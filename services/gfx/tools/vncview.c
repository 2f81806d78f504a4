/* vncview.c: scm-gfx-rfb-input, a VNC viewer for tests and demos on
 * libvncclient. It authenticates (VNC authentication), asks for the
 * encodings it is told to, clicks and types as a person at a viewer
 * would, and captures the decoded desktop as a PNG, so tests compare what
 * a real decoder made of Tight, ZRLE or Raw with the compositor's own
 * snapshot.
 *
 *   scm-gfx-rfb-input PORT [--password-file F] [--security vnc|tls] [--encodings "tight zrle"]
 *        [--no-jpeg] [--quality 0..9] [--compress 0..9] [--key-delay MS] [--click X Y]
 *        [--type TEXT] [--return] [--drag X1 Y1 X2 Y2] [--drag-steps X1 Y1 X2 Y2 N MS]
 *        [--capture OUT.png] [--stay SECONDS] [--shot OUT.png] [--settle MS]
 *        [--key-down SYM] [--key-up SYM] [--down X Y] [--up X Y] [--until-file PATH]
 *        [--chord ctrl+shift+c] [--cut-text TEXT] [--wait-cut-text SECONDS]
 *        [--resize W H] [--latency N X Y W H]
 *
 * --down/--up press and release button 1 (held in between), --key-down
 * and --key-up a keysym (0x... or decimal); --until-file keeps up with
 * updates until PATH exists (at most 60 s), so a test can look at the
 * desktop while a menu is held open.
 *
 * --drag-steps drags in N moves MS ms apart. --settle MS keeps
 * up with (incremental) updates until none came for MS ms; --shot writes
 * what the viewer has decoded so far, without asking for a full update,
 * so a test sees what CopyRect and incremental updates made of a change.
 *
 * --resize asks the server for a new desktop size (SetDesktopSize) and
 * waits for its answer: it prints "resized WxH", or "resize refused
 * (REASON)" and exits 4 (the server's size stays). --latency types N
 * letters one at a time and prints how long each took to come back as a
 * decoded update touching the rect X Y W H ("latency N MEDIAN P90 MAX",
 * in ms): `make bench` measures the proxy and x11vnc with it. 
 * The password comes from --password-file or $SCM_VNC_PASSWORD; with
 * $SCM_VNC_CA (a PEM file) it takes X509Vnc, checking the server's
 * certificate against that CA (TLSVnc needs nothing). --security vnc
 * takes VNC authentication alone (no TLS, as a viewer of a server that
 * offers nothing else would), --security tls VeNCrypt alone; by default
 * libvncclient picks from what the server offers (VeNCrypt first). Exit
 * status: 0 done, 3 authentication refused (nothing else was received),
 * 4 resize refused, 1 anything else. Printable ASCII maps to X keysyms one to one. */
#include <png.h>
#include <rfb/rfbclient.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char password[64];
static bool asked_password;
/* Pixels of framebuffer rectangles received since the last request, and
 * whether an update that ended covered the whole screen: libvncserver
 * also sends updates that hold only pseudo-rectangles (server identity,
 * supported encodings), which must not end a wait. */
static uint64_t area;
static bool full_seen;

static char *get_password(rfbClient *cl)
{
	asked_password = true;
	return strdup(password);
}

/* --latency: the area whose change ends a wait, and whether it did. */
static int lat_x, lat_y, lat_w, lat_h;
static bool lat_hit;

static void got_rect(rfbClient *cl, int x, int y, int w, int h)
{
	area += (uint64_t)w * (uint64_t)h;
	if (x < lat_x + lat_w && lat_x < x + w && y < lat_y + lat_h && lat_y < y + h)
		lat_hit = true;
}

/* A non-incremental request from a viewer that speaks ExtDesktopSize is
 * answered with the size alone; the pixels it asked for stay pending on
 * the server, and an incremental request fetches them (a second
 * non-incremental one would only bring the size again). */
static void finished(rfbClient *cl)
{
	if (area >= (uint64_t)cl->width * (uint64_t)cl->height)
		full_seen = true;
	else
		SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, TRUE);
}

static void quiet(const char *fmt, ...)
{
}

/* WaitForMessage() of libvncclient 0.9.14 selects on the socket only, but
 * its reads take whatever the socket holds (up to 8 KiB) into
 * cl->buf: when a small update (the ExtDesktopSize answer) and the next
 * one (a whole ZRLE or Tight frame, often under 8 KiB) arrive together,
 * the second sits complete in that buffer while select() waits for bytes
 * that never come. That was the intermittent "no first update" (about one
 * connection in 20 with zrle or tight; never raw, whose frame is larger
 * than the buffer). Upstream fixed it later the same way: buffered bytes
 * count as a message waiting. */
static int wait_message(rfbClient *cl, unsigned usecs)
{
	return cl->buffered > 0 ? 1 : WaitForMessage(cl, usecs);
}

/* Size updates (ExtendedDesktopSize) asked for and received. Each
 * non-incremental request brings one: rfbInitClient()'s, each of
 * wait_full()'s, and the one libvncclient sends itself after a size
 * change. libvncclient shows one arriving only by copying its screen
 * (whose id the server never sends as 0) into cl->screen, so the id is
 * zeroed before each message. */
static unsigned sizes_asked = 1, sizes_seen, answers_seen;

static bool handle(rfbClient *cl)
{
	int w = cl->width, h = cl->height;
	uint32_t id = cl->screen.id;
	cl->screen.id = 0;
	rfbBool ok = HandleRFBServerMessage(cl);
	if (cl->screen.id == 0) {
		cl->screen.id = id;
	} else {
		sizes_seen++;
		sizes_asked += cl->width != w || cl->height != h;
	}
	return ok;
}

/* Asks for the whole screen (unless a request is out already) and waits
 * until it has come. */
static int wait_full_ask(rfbClient *cl, bool ask)
{
	area = 0;
	full_seen = false;
	if (ask) {
		SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, FALSE);
		sizes_asked++;
	}
	while (!full_seen) {
		int n = wait_message(cl, 30 * 1000000);
		if (n <= 0 || !handle(cl))
			return -1;
	}
	return 0;
}

static int wait_full(rfbClient *cl)
{
	return wait_full_ask(cl, true);
}

static int write_png(rfbClient *cl, const char *path)
{
	FILE *f = fopen(path, "wbe");
	if (!f)
		return -1;
	png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = p ? png_create_info_struct(p) : NULL;
	if (!info || setjmp(png_jmpbuf(p))) {
		png_destroy_write_struct(&p, &info);
		fclose(f);
		return -1;
	}
	png_init_io(p, f);
	png_set_IHDR(p, info, (png_uint_32)cl->width, (png_uint_32)cl->height, 8, PNG_COLOR_TYPE_RGB,
		     PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(p, info);
	png_byte *row = malloc((size_t)cl->width * 3);
	for (int y = 0; row && y < cl->height; y++) {
		/* rfbGetClient(8, 3, 4): bytes R, G, B, pad in memory. */
		const uint8_t *src = cl->frameBuffer + (size_t)y * cl->width * 4;
		for (int x = 0; x < cl->width; x++)
			memcpy(row + x * 3, src + x * 4, 3);
		png_write_row(p, row);
	}
	png_write_end(p, NULL);
	png_destroy_write_struct(&p, &info);
	free(row);
	return fclose(f) == 0 && row ? 0 : -1;
}

/* Asks for w x h and waits for the server's ExtendedDesktopSize answer:
 * the first size update after those still due for earlier requests (the
 * server answers in order). 0 resized, 4 refused, 1 no answer. */
static int resize(rfbClient *cl, int w, int h)
{
	if (cl->screen.width == 0 && cl->screen.height == 0) {
		fprintf(stderr, "scm-gfx-rfb-input: the server does not do ExtendedDesktopSize\n");
		return 4;
	}
	/* the size update that answers: after those due, and earlier answers */
	unsigned answer = sizes_asked + answers_seen + 1;
	if (!SendExtDesktopSize(cl, (uint16_t)w, (uint16_t)h))
		return 1;
	time_t end = time(NULL) + 30;
	/* The server sends one size update for all it has pending, so the
	 * count can run ahead of what comes: the new size itself is an
	 * answer too. */
	while (sizes_seen < answer && !(cl->width == w && cl->height == h) && time(NULL) < end) {
		int n = wait_message(cl, 1000000);
		if (n < 0 || (n > 0 && !handle(cl)))
			return 1;
	}
	if (sizes_seen < answer && !(cl->width == w && cl->height == h))
		return 1;
	answers_seen++;
	if (cl->width != w || cl->height != h) {
		printf("resize refused (still %dx%d)\n", cl->width, cl->height);
		return 4;
	}
	printf("resized %dx%d\n", cl->width, cl->height);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Types n characters, one at a time, and times each from the key's
 * release to the first decoded update that touches the area (the app's
 * echo drawn, sent, decoded): what a person typing waits for. Prints
 * "latency N median_ms p90_ms max_ms". */
static int pace(rfbClient *cl, long ms);

static int latency(rfbClient *cl, int n)
{
	double ms[256];
	int got = 0;
	if (n > 256)
		n = 256;
	for (int i = 0; i < n; i++) {
		uint32_t sym = (uint32_t)('a' + i % 26);
		lat_hit = false;
		SendKeyEvent(cl, sym, TRUE);
		SendKeyEvent(cl, sym, FALSE);
		double t0 = now_ms();
		while (!lat_hit && now_ms() - t0 < 2000) {
			int k = wait_message(cl, 100000);
			if (k < 0 || (k > 0 && !handle(cl)))
				return 1;
		}
		if (lat_hit)
			ms[got++] = now_ms() - t0;
		/* let the rest of this key's drawing pass before the next */
		pace(cl, 60);
	}
	if (!got) {
		printf("latency 0 - - -\n");
		return 1;
	}
	qsort(ms, (size_t)got, sizeof(ms[0]), cmp_double);
	printf("latency %d %.1f %.1f %.1f\n", got, ms[got / 2], ms[(got * 9) / 10 < got ? (got * 9) / 10 : got - 1],
	       ms[got - 1]);
	return 0;
}

static long key_delay_ms;

/* Keeps reading updates for ms milliseconds (pacing typed keys). */
static int pace(rfbClient *cl, long ms)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return 0;
		int n = wait_message(cl, (unsigned)left * 1000);
		if (n < 0 || (n > 0 && !handle(cl)))
			return -1;
	}
}

static void key(rfbClient *cl, uint32_t sym)
{
	SendKeyEvent(cl, sym, TRUE);
	SendKeyEvent(cl, sym, FALSE);
	if (key_delay_ms > 0)
		pace(cl, key_delay_ms);
}

/* The viewer's clipboard: what the server sent (ServerCutText). */
static char *cut_text;
static void got_cut_text(rfbClient *cl, const char *text, int len)
{
	free(cut_text);
	cut_text = strndup(text, len > 0 ? (size_t)len : 0);
}

/* "ctrl+shift+c": the modifiers held (left ones), the key, all released. */
static void chord(rfbClient *cl, const char *keys)
{
	uint32_t held[4];
	size_t n = 0;
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", keys);
	for (char *save = NULL, *t = strtok_r(buf, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
		uint32_t sym = strcmp(t, "ctrl") == 0 ? 0xFFE3 : strcmp(t, "shift") == 0 ? 0xFFE1
			       : strcmp(t, "alt") == 0 ? 0xFFE9 : (uint32_t)(unsigned char)t[0];
		SendKeyEvent(cl, sym, TRUE);
		if (n < 4)
			held[n++] = sym;
	}
	while (n > 0)
		SendKeyEvent(cl, held[--n], FALSE);
}

/* X509Vnc: the CA file from $SCM_VNC_CA (a desktop's certificate, which
 * is its own CA); libvncclient frees what it is given. */
static rfbCredential *get_credential(rfbClient *cl, int type)
{
	(void)cl;
	const char *ca = getenv("SCM_VNC_CA");
	rfbCredential *c = type == rfbCredentialTypeX509 && ca ? calloc(1, sizeof(*c)) : NULL;
	if (c && !(c->x509Credential.x509CACertFile = strdup(ca))) {
		free(c);
		return NULL;
	}
	return c;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: scm-gfx-rfb-input PORT [--password-file F] [--encodings LIST] [--no-jpeg] "
				"[--quality N] [--compress N] [--click X Y] [--drag X1 Y1 X2 Y2] [--type TEXT] [--return] [--capture PNG] "
				"[--resize W H] [--latency N X Y W H]\n");
		return 2;
	}
	const char *env = getenv("SCM_VNC_PASSWORD");
	if (env)
		snprintf(password, sizeof(password), "%s", env);
	if (!getenv("SCM_VNC_DEBUG"))
		rfbClientLog = rfbClientErr = quiet;
	rfbClient *cl = rfbGetClient(8, 3, 4);
	free(cl->serverHost); /* rfbGetClient's "" */
	cl->serverHost = strdup("127.0.0.1");
	cl->serverPort = atoi(argv[1]);
	cl->GetPassword = get_password;
	cl->GetCredential = get_credential;
	cl->FinishedFrameBufferUpdate = finished;
	cl->GotFrameBufferUpdate = got_rect;
	cl->GotXCutText = got_cut_text;
	cl->appData.encodingsString = "raw";
	/* The cursor as a shape of its own, so the pixels are the desktop's. */
	cl->appData.useRemoteCursor = TRUE;
	cl->appData.compressLevel = 6;
	cl->appData.qualityLevel = 6;
	cl->canHandleNewFBSize = TRUE;
	int first_action = argc;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--password-file") == 0 && i + 1 < argc) {
			FILE *f = fopen(argv[++i], "re");
			if (!f || !fgets(password, sizeof(password), f)) {
				fprintf(stderr, "scm-gfx-rfb-input: cannot read %s\n", argv[i]);
				return 1;
			}
			fclose(f);
			password[strcspn(password, "\r\n")] = 0;
		} else if (strcmp(argv[i], "--security") == 0 && i + 1 < argc) {
			uint32_t scheme;
			if (strcmp(argv[++i], "vnc") == 0)
				scheme = rfbVncAuth;
			else if (strcmp(argv[i], "tls") == 0)
				scheme = rfbVeNCrypt;
			else {
				fprintf(stderr, "scm-gfx-rfb-input: --security %s: not vnc or tls\n", argv[i]);
				return 1;
			}
			SetClientAuthSchemes(cl, &scheme, 1);
		} else if (strcmp(argv[i], "--encodings") == 0 && i + 1 < argc) {
			cl->appData.encodingsString = argv[++i];
		} else if (strcmp(argv[i], "--no-jpeg") == 0) {
			cl->appData.enableJPEG = FALSE;
		} else if (strcmp(argv[i], "--quality") == 0 && i + 1 < argc) {
			cl->appData.qualityLevel = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--key-delay") == 0 && i + 1 < argc) {
			key_delay_ms = atol(argv[++i]);
		} else if (strcmp(argv[i], "--compress") == 0 && i + 1 < argc) {
			cl->appData.compressLevel = atoi(argv[++i]);
		} else {
			first_action = i;
			break;
		}
	}
	if (!rfbInitClient(cl, NULL, NULL)) {
		/* rfbInitClient freed the client. */
		if (asked_password) {
			fprintf(stderr, "scm-gfx-rfb-input: authentication refused\n");
			return 3;
		}
		fprintf(stderr, "scm-gfx-rfb-input: cannot connect to port %s\n", argv[1]);
		return 1;
	}
	int rc = 0;
	/* rfbInitClient() asked for the whole screen already; a second
	 * request now would leave a size update and pixels in flight after
	 * the first frame, which --resize would take for its answer. */
	if (wait_full_ask(cl, false) < 0) {
		fprintf(stderr, "scm-gfx-rfb-input: no first update\n");
		rc = 1;
	}
	for (int i = first_action; rc == 0 && i < argc; i++) {
		if (strcmp(argv[i], "--click") == 0 && i + 2 < argc) {
			int x = atoi(argv[i + 1]), y = atoi(argv[i + 2]);
			SendPointerEvent(cl, x, y, 0);
			SendPointerEvent(cl, x, y, 1);
			SendPointerEvent(cl, x, y, 0);
			i += 2;
		} else if (strcmp(argv[i], "--drag") == 0 && i + 4 < argc) {
			/* Press, move there in steps as a hand would, release. */
			int x1 = atoi(argv[i + 1]), y1 = atoi(argv[i + 2]), x2 = atoi(argv[i + 3]), y2 = atoi(argv[i + 4]);
			SendPointerEvent(cl, x1, y1, 0);
			SendPointerEvent(cl, x1, y1, 1);
			for (int k = 1; k <= 8; k++)
				SendPointerEvent(cl, x1 + (x2 - x1) * k / 8, y1 + (y2 - y1) * k / 8, 1);
			SendPointerEvent(cl, x2, y2, 0);
			i += 4;
		} else if (strcmp(argv[i], "--drag-steps") == 0 && i + 6 < argc) {
			/* The same at a hand's pace: N moves MS ms apart,
			 * reading updates meanwhile (make bench drags a window
			 * across the screen with it). */
			int p[4], n = atoi(argv[i + 5]);
			long ms = atol(argv[i + 6]);
			for (int k = 0; k < 4; k++)
				p[k] = atoi(argv[i + 1 + k]);
			SendPointerEvent(cl, p[0], p[1], 0);
			SendPointerEvent(cl, p[0], p[1], 1);
			for (int k = 1; rc == 0 && n > 0 && k <= n; k++) {
				SendPointerEvent(cl, p[0] + (p[2] - p[0]) * k / n, p[1] + (p[3] - p[1]) * k / n, 1);
				if (pace(cl, ms) < 0)
					rc = 1;
			}
			SendPointerEvent(cl, p[2], p[3], 0);
			i += 6;
		} else if ((strcmp(argv[i], "--down") == 0 || strcmp(argv[i], "--up") == 0) && i + 2 < argc) {
			SendPointerEvent(cl, atoi(argv[i + 1]), atoi(argv[i + 2]), argv[i][2] == 'd' ? 1 : 0);
			i += 2;
		} else if ((strcmp(argv[i], "--key-down") == 0 || strcmp(argv[i], "--key-up") == 0) && i + 1 < argc) {
			SendKeyEvent(cl, (uint32_t)strtoul(argv[i + 1], NULL, 0), argv[i][6] == 'd' ? TRUE : FALSE);
			i++;
		} else if (strcmp(argv[i], "--until-file") == 0 && i + 1 < argc) {
			time_t end = time(NULL) + 60;
			const char *path = argv[++i];
			while (rc == 0 && access(path, F_OK) != 0 && time(NULL) < end)
				if (pace(cl, 50) < 0)
					rc = 1;
		} else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
			/* As a keyboard does it: Shift held for what a US layout
			 * shifts (the app side maps keysyms to keycodes). */
			for (const char *c = argv[++i]; *c; c++) {
				if (*c < 0x20 || *c >= 0x7f)
					continue;
				bool shift = (*c >= 'A' && *c <= 'Z') || strchr("~!@#$%^&*()_+{}|:\"<>?", *c);
				if (shift)
					SendKeyEvent(cl, 0xFFE1, TRUE);
				key(cl, (uint32_t)(unsigned char)*c);
				if (shift)
					SendKeyEvent(cl, 0xFFE1, FALSE);
			}
		} else if (strcmp(argv[i], "--stay") == 0 && i + 1 < argc) {
			/* Stays connected, keeping up with updates, as a viewer left open. */
			time_t end = time(NULL) + atoi(argv[++i]);
			while (rc == 0 && time(NULL) < end) {
				int n = wait_message(cl, 200000);
				if (n < 0 || (n > 0 && !handle(cl)))
					rc = 1;
				else if (full_seen) {
					full_seen = false;
					area = 0;
					SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, TRUE);
				}
			}
		} else if (strcmp(argv[i], "--settle") == 0 && i + 1 < argc) {
			/* Keeps up with updates until none came for MS ms (at
			 * most 60 s): the desktop stopped changing, and this
			 * viewer has all of it, through incremental updates only. */
			long quiet_ms = atol(argv[++i]);
			time_t end = time(NULL) + 60;
			while (rc == 0 && time(NULL) < end) {
				int n = wait_message(cl, (unsigned)quiet_ms * 1000);
				if (n == 0)
					break;
				if (n < 0 || !handle(cl))
					rc = 1;
				else if (full_seen) {
					full_seen = false;
					area = 0;
					SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, TRUE);
				}
			}
		} else if (strcmp(argv[i], "--shot") == 0 && i + 1 < argc) {
			/* What this viewer has decoded so far, as it is (no new
			 * full update first, unlike --capture). */
			if (write_png(cl, argv[++i]) < 0) {
				fprintf(stderr, "scm-gfx-rfb-input: shot failed\n");
				rc = 1;
			}
		} else if (strcmp(argv[i], "--latency") == 0 && i + 5 < argc) {
			lat_x = atoi(argv[i + 2]);
			lat_y = atoi(argv[i + 3]);
			lat_w = atoi(argv[i + 4]);
			lat_h = atoi(argv[i + 5]);
			rc = latency(cl, atoi(argv[i + 1]));
			lat_w = lat_h = 0;
			i += 5;
		} else if (strcmp(argv[i], "--resize") == 0 && i + 2 < argc) {
			rc = resize(cl, atoi(argv[i + 1]), atoi(argv[i + 2]));
			i += 2;
		} else if (strcmp(argv[i], "--chord") == 0 && i + 1 < argc) {
			chord(cl, argv[++i]);
		} else if (strcmp(argv[i], "--cut-text") == 0 && i + 1 < argc) {
			i++;
			SendClientCutText(cl, argv[i], (int)strlen(argv[i]));
		} else if (strcmp(argv[i], "--wait-cut-text") == 0 && i + 1 < argc) {
			/* Until the server's cut text arrives (or S seconds pass:
			 * then it prints "cuttext-none"). */
			time_t end = time(NULL) + atoi(argv[++i]);
			while (rc == 0 && !cut_text && time(NULL) < end) {
				int n = wait_message(cl, 100000);
				if (n < 0 || (n > 0 && !handle(cl)))
					rc = 1;
			}
			printf(cut_text ? "cuttext %s\n" : "cuttext-none\n", cut_text);
			fflush(stdout);
		} else if (strcmp(argv[i], "--return") == 0) {
			key(cl, 0xFF0D);
		} else if (strcmp(argv[i], "--capture") == 0 && i + 1 < argc) {
			/* A full update after everything sent so far. */
			if (wait_full(cl) < 0 || write_png(cl, argv[++i]) < 0) {
				fprintf(stderr, "scm-gfx-rfb-input: capture failed\n");
				rc = 1;
			}
		} else {
			fprintf(stderr, "scm-gfx-rfb-input: unknown argument '%s'\n", argv[i]);
			rc = 2;
		}
	}
	/* One more round trip: the server has handled every event by then. */
	if (rc == 0 && wait_full(cl) < 0)
		rc = 1;
	/* libvncclient 0.9.14 leaves these to the caller. */
	free(cl->frameBuffer);
	free(cl->rcSource);
	free(cl->rcMask);
	rfbClientCleanup(cl);
	return rc;
}
