/* vncview.c: scm-gfx-rfb-input, a VNC viewer for tests and demos on
 * libvncclient. It authenticates (VNC authentication), asks for the
 * encodings it is told to, clicks and types as a person at a viewer
 * would, and captures the decoded desktop as a PNG, so tests compare what
 * a real decoder made of Tight, ZRLE or Raw with the compositor's own
 * snapshot.
 *
 *   scm-gfx-rfb-input PORT [--password-file F] [--encodings "tight zrle"]
 *        [--no-jpeg] [--quality 0..9] [--compress 0..9] [--key-delay MS] [--click X Y]
 *        [--type TEXT] [--return] [--drag X1 Y1 X2 Y2] [--capture OUT.png] [--stay SECONDS]
 *        [--key-down SYM] [--key-up SYM] [--down X Y] [--up X Y] [--until-file PATH]
 *        [--chord ctrl+shift+c] [--cut-text TEXT] [--wait-cut-text SECONDS]
 *
 * --down/--up press and release button 1 (held in between), --key-down
 * and --key-up a keysym (0x... or decimal); --until-file keeps up with
 * updates until PATH exists (at most 60 s), so a test can look at the
 * desktop while a menu is held open.
 *
 * The password comes from --password-file or $SCM_VNC_PASSWORD. Exit
 * status: 0 done, 3 authentication refused (nothing else was received),
 * 1 anything else. Printable ASCII maps to X keysyms one to one. */
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

static void got_rect(rfbClient *cl, int x, int y, int w, int h)
{
	area += (uint64_t)w * (uint64_t)h;
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

/* Asks for the whole screen and waits until it has come. */
static int wait_full(rfbClient *cl)
{
	area = 0;
	full_seen = false;
	SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, FALSE);
	while (!full_seen) {
		int n = WaitForMessage(cl, 30 * 1000000);
		if (n <= 0 || !HandleRFBServerMessage(cl))
			return -1;
	}
	return 0;
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
		int n = WaitForMessage(cl, (unsigned)left * 1000);
		if (n < 0 || (n > 0 && !HandleRFBServerMessage(cl)))
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

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: scm-gfx-rfb-input PORT [--password-file F] [--encodings LIST] [--no-jpeg] "
				"[--quality N] [--compress N] [--click X Y] [--drag X1 Y1 X2 Y2] [--type TEXT] [--return] [--capture PNG]\n");
		return 2;
	}
	const char *env = getenv("SCM_VNC_PASSWORD");
	if (env)
		snprintf(password, sizeof(password), "%s", env);
	rfbClientLog = rfbClientErr = quiet;
	rfbClient *cl = rfbGetClient(8, 3, 4);
	free(cl->serverHost); /* rfbGetClient's "" */
	cl->serverHost = strdup("127.0.0.1");
	cl->serverPort = atoi(argv[1]);
	cl->GetPassword = get_password;
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
	if (wait_full(cl) < 0) {
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
				int n = WaitForMessage(cl, 200000);
				if (n < 0 || (n > 0 && !HandleRFBServerMessage(cl)))
					rc = 1;
				else if (full_seen) {
					full_seen = false;
					area = 0;
					SendFramebufferUpdateRequest(cl, 0, 0, cl->width, cl->height, TRUE);
				}
			}
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
				int n = WaitForMessage(cl, 100000);
				if (n < 0 || (n > 0 && !HandleRFBServerMessage(cl)))
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
