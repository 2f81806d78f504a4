/* client.c: scm-gfx-client, a small gfx client for tests and demos that
 * goes through scmd like any containerized app: it connects to the "gfx"
 * service at $SCM_ENDPOINT (or the default endpoint).
 *
 *   scm-gfx-client paint W H RRGGBB [FLOOD]  draw stripes, present, then
 *        hold the surface until stdin closes, printing input events; with
 *        FLOOD, first send that many presents of random (partly hostile)
 *        damage without waiting
 *   scm-gfx-client hostile                    malformed requests; prints
 *        each refusal and "hostile ok" when every one was refused right
 *   scm-gfx-client snapshot FILE.png | stats | viewer   administration
 *   scm-gfx-client rounds STOPFILE [K]        4 surfaces (4 channels), each
 *        drawn and presented in turn until STOPFILE exists; prints what
 *        scm-test-client pings does (make bench: the proxy's handover as
 *        its clients see it; $PINGS_LOG gets rounds over 1 ms)
 *
 * $SCM_GFX_SERVICE names the service (default "gfx"). $SCM_GFX_WEIGHT, when set, is passed as the time-bank weight (honoured
 * only where the policy constrains it). */
#include "clipboard.h"
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gfx.h"
#include "scm/gfx-client.h"
#include "scm/macro.h"

static int fail(const char *what, int r, scm_error *err)
{
	fprintf(stderr, "scm-gfx-client: %s failed (%d)\n", what, r);
	if (err)
		scm_error_print(err, stderr);
	scm_error_free(err);
	return 1;
}

static uint64_t weight_arg(void)
{
	const char *w = getenv("SCM_GFX_WEIGHT");
	return w && *w ? strtoull(w, NULL, 10) : 0;
}

static int paint(scm_channel *ch, int argc, char **argv)
{
	scm_error *err = NULL;
	if (argc < 5)
		return 2;
	uint32_t w = (uint32_t)strtoul(argv[2], NULL, 10), h = (uint32_t)strtoul(argv[3], NULL, 10);
	uint32_t colour = (uint32_t)strtoul(argv[4], NULL, 16) & 0xFFFFFF;
	long flood = argc > 5 ? strtol(argv[5], NULL, 10) : 0;
	int sfd = -1, efd = -1;
	int64_t x, y;
	char *border = NULL;
	int r = scm_gfx_create_surface(ch, w, h, weight_arg(), &sfd, &efd, &x, &y, &border, &err);
	if (r)
		return fail("create_surface", r, err);
	gfx_surface *s = NULL;
	r = gfx_surface_map(sfd, w, h, &s);
	if (r)
		return fail("mapping the surface", r, NULL);
	for (uint32_t j = 0; j < h; j++)
		for (uint32_t i = 0; i < w; i++)
			s->pixels[(size_t)j * w + i] = ((i + j) / 16) % 4 == 3 ? (~colour & 0xFFFFFF) : colour;
	uint64_t dropped = 0;
	for (long k = 0; k < flood; k++) {
		/* Asynchronous and unanswered: as fast as the socket takes them. */
		struct json_object *a = json_object_new_object(), *d = json_object_new_array(), *rc = json_object_new_array();
		int32_t v[4] = { (int32_t)(k * 37 % (w * 2)) - (int32_t)w / 2, (int32_t)(k * 53 % (h * 2)) - (int32_t)h / 2,
				 (int32_t)(1 + k % w), (int32_t)(1 + k % h) };
		for (int i = 0; i < 4; i++)
			json_object_array_add(rc, json_object_new_int(v[i]));
		json_object_array_add(d, rc);
		json_object_object_add(a, "damage", d);
		r = scm_call_async(ch, SCM_GFX_PRESENT, a, NULL, 0, NULL, 0, NULL, NULL, &err);
		json_object_put(a);
		if (r)
			return fail("flooding presents", r, err);
		if (k % 64 == 63 && (r = scm_channel_dispatch(ch, &err)) != 0)
			return fail("dispatch", r, err);
	}
	r = scm_gfx_present(ch, NULL, &dropped, &err);
	if (r)
		return fail("present", r, err);
	printf("surface %lld %lld %s dropped %llu\n", (long long)x, (long long)y, border,
	       (unsigned long long)dropped);
	fflush(stdout);
	free(border);
	for (;;) {
		struct pollfd p[2] = { { .fd = 0, .events = POLLIN }, { .fd = efd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			char buf[256];
			if (read(0, buf, sizeof(buf)) <= 0)
				break;
		}
		if (p[1].revents) {
			struct json_object *evs = NULL;
			r = scm_gfx_poll_input(ch, &evs, &err);
			if (r)
				return fail("poll_input", r, err);
			for (size_t i = 0; evs && i < json_object_array_length(evs); i++)
				printf("input %s\n", json_object_to_json_string_ext(json_object_array_get_idx(evs, i),
										 JSON_C_TO_STRING_PLAIN));
			fflush(stdout);
			json_object_put(evs);
		}
	}
	gfx_surface_free(s);
	close(efd);
	return 0;
}

/* Each step must be refused with the expected code. */
static int hostile(scm_channel *ch)
{
	scm_error *err = NULL;
	int sfd, efd, bad = 0, r;
	int64_t x, y;
	char *border = NULL;
	uint64_t dropped;
#define EXPECT(what, call, code)                                                                 \
	do {                                                                                     \
		r = (call);                                                                      \
		printf("%s: %d%s\n", what, r, r == (code) ? "" : " UNEXPECTED");                 \
		if (err)                                                                         \
			scm_error_print(err, stdout);                                            \
		err = scm_error_free(err);                                                       \
		bad += r != (code);                                                              \
	} while (0)
	EXPECT("present before create_surface", scm_gfx_present(ch, NULL, &dropped, &err), SCM_GFX_E_NOSURFACE);
	EXPECT("zero width", scm_gfx_create_surface(ch, 0, 10, 0, &sfd, &efd, &x, &y, &border, &err),
	       SCM_GFX_E_BADSIZE);
	EXPECT("width over 2^32", scm_gfx_create_surface(ch, (1ull << 32) + 16, 10, 0, &sfd, &efd, &x, &y, &border, &err),
	       SCM_GFX_E_BADSIZE);
	EXPECT("8192x8192", scm_gfx_create_surface(ch, 8192, 8192, 0, &sfd, &efd, &x, &y, &border, &err),
	       SCM_GFX_E_BADSIZE);
	EXPECT("create 64x64", scm_gfx_create_surface(ch, 64, 64, 0, &sfd, &efd, &x, &y, &border, &err), 0);
	free(border);
	border = NULL;
	/* The desktop clipboard: nothing to put unasked, nothing to get ungranted. */
	int cfd = -1;
	uint64_t csize;
	if (gfx_clip_memfd("forged", 6, &cfd) == 0) {
		EXPECT("clipboard_put unasked", scm_gfx_clipboard_put(ch, cfd, &csize, &err), SCM_GFX_E_CLIPBOARD);
		close(cfd);
	}
	EXPECT("clipboard_get ungranted", scm_gfx_clipboard_get(ch, &cfd, &csize, &err), SCM_GFX_E_CLIPBOARD);
	/* What the client can do to the memfd: neither shrink nor grow it. */
	printf("shrink the memfd: %s\n", ftruncate(sfd, 16) < 0 ? strerror(errno) : "ALLOWED");
	bad += ftruncate(sfd, 16) == 0;
	bad += ftruncate(sfd, 1 << 24) == 0;
	EXPECT("second create_surface", scm_gfx_create_surface(ch, 8, 8, 0, &sfd, &efd, &x, &y, &border, &err),
	       SCM_GFX_E_SURFACEEXISTS);
	static const char *bad_damage[] = { "7", "[[0,0,10]]", "[[0,0,-1,1]]", "[[0,0,1.5,1]]", "[[\"x\",0,1,1]]",
					    "[[0,0,1,4294967296]]", "{\"a\":1}" };
	for (size_t i = 0; i < sizeof(bad_damage) / sizeof(bad_damage[0]); i++) {
		struct json_object *d = json_tokener_parse(bad_damage[i]);
		char what[64];
		snprintf(what, sizeof(what), "damage %s", bad_damage[i]);
		EXPECT(what, scm_gfx_present(ch, d, &dropped, &err), SCM_GFX_E_BADDAMAGE);
		json_object_put(d);
	}
	struct json_object *many = json_object_new_array();
	for (int i = 0; i < 300; i++)
		json_object_array_add(many, json_tokener_parse("[0,0,1,1]"));
	EXPECT("300 damage rects", scm_gfx_present(ch, many, &dropped, &err), SCM_GFX_E_LIMIT);
	json_object_put(many);
	struct json_object *outside = json_tokener_parse("[[1000,1000,5,5],[-99,-99,10,10]]");
	EXPECT("damage outside the surface (clipped, accepted)", scm_gfx_present(ch, outside, &dropped, &err), 0);
	json_object_put(outside);
	/* Windows: parsed as strictly as damage, and no more than 16. */
	uint64_t shown;
	static const char *bad_windows[] = { "{}", "[{\"id\":0,\"x\":0,\"y\":0,\"w\":1,\"h\":1}]",
					     "[{\"id\":1,\"x\":0,\"y\":0,\"w\":1,\"h\":1,\"z\":1}]",
					     "[{\"id\":1,\"x\":0,\"y\":0,\"w\":-1,\"h\":1}]" };
	for (size_t i = 0; i < sizeof(bad_windows) / sizeof(bad_windows[0]); i++) {
		struct json_object *w = json_tokener_parse(bad_windows[i]);
		char what[96];
		snprintf(what, sizeof(what), "windows %s", bad_windows[i]);
		EXPECT(what, scm_gfx_set_windows(ch, w, &shown, &err), SCM_GFX_E_BADWINDOWS);
		json_object_put(w);
	}
	struct json_object *wins = json_object_new_array();
	for (int i = 0; i < 17; i++) {
		struct json_object *w = json_tokener_parse("{\"x\":0,\"y\":0,\"w\":4,\"h\":4}");
		json_object_object_add(w, "id", json_object_new_int(i + 1));
		json_object_array_add(wins, w);
	}
	EXPECT("17 windows", scm_gfx_set_windows(ch, wins, &shown, &err), SCM_GFX_E_LIMIT);
	json_object_array_del_idx(wins, 16, 1);
	EXPECT("16 windows", scm_gfx_set_windows(ch, wins, &shown, &err), 0);
	json_object_put(wins);
	printf(bad ? "hostile FAILED\n" : "hostile ok\n");
	return bad ? 1 : 0;
}

static uint64_t usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

#define ROUND_SURFACES 4
#define ROUND_W 256u
#define ROUND_H 256u

/* The rounds of a bench client with ROUND_SURFACES surfaces: a changed
 * 64x64 square presented on each in turn, one round a present. */
static int rounds(scm_channel *first, const char *stop, size_t k)
{
	scm_channel *ch[ROUND_SURFACES] = { first };
	gfx_surface *s[ROUND_SURFACES] = { 0 };
	scm_error *err = NULL;
	const char *svc = getenv("SCM_GFX_SERVICE");
	for (size_t i = 0; i < ROUND_SURFACES; i++) {
		int sfd = -1, efd = -1, r = i ? scm_connect(svc && *svc ? svc : "gfx", &ch[i], &err) : 0;
		int64_t x, y;
		char *border = NULL;
		if (r == 0)
			r = scm_gfx_create_surface(ch[i], ROUND_W, ROUND_H, 0, &sfd, &efd, &x, &y, &border, &err);
		free(border);
		if (r == 0)
			r = gfx_surface_map(sfd, ROUND_W, ROUND_H, &s[i]);
		if (r)
			return fail("a bench surface", r, err);
		safe_close(efd);
	}
	size_t n = 0, cap = 1 << 22;
	uint32_t *all = calloc(cap, sizeof(uint32_t));
	unsigned long calls = 0, failed = 0;
	uint64_t max_us = 0, max_at = 0;
	const char *logp = getenv("PINGS_LOG");
	FILE *log = logp ? fopen(logp, "we") : NULL;
	printf("started\n");
	fflush(stdout);
	for (;; calls++) {
		if ((calls & 63) == 0 && access(stop, F_OK) == 0)
			break;
		size_t i = calls % ROUND_SURFACES;
		uint32_t colour = (uint32_t)calls * 2654435761u & 0xFFFFFFu;
		for (uint32_t j = 0; j < 64; j++)
			for (uint32_t q = 0; q < 64; q++)
				s[i]->pixels[(size_t)j * ROUND_W + q] = colour;
		struct json_object *d = json_tokener_parse("[[0,0,64,64]]");
		uint64_t dropped, t0 = usec();
		if (scm_gfx_present(ch[i], d, &dropped, &err) != 0) {
			failed++;
			_cleanup_free_ char *t = scm_error_text(err);
			printf("failed: %s\n", t ? t : "?");
			err = scm_error_free(err);
		}
		uint64_t dt = usec() - t0;
		json_object_put(d);
		if (dt > max_us)
			max_us = dt, max_at = t0;
		if (log && dt > 1000)
			fprintf(log, "%llu %llu\n", (unsigned long long)t0, (unsigned long long)dt);
		if (all && n < cap)
			all[n++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
	}
	if (log)
		fclose(log);
	uint32_t top = 0;
	if (all && k && n >= k) {
		qsort(all, n, sizeof(uint32_t), cmp_u32);
		top = all[n - k + k / 2];
	}
	free(all);
	for (size_t i = 0; i < ROUND_SURFACES; i++) {
		gfx_surface_free(s[i]);
		if (i)
			scm_channel_free(ch[i]);
	}
	printf("calls %lu failed %lu longest_us %llu top%zu_median_us %u longest_at_us %llu\n", calls, failed,
	       (unsigned long long)max_us, k, top, (unsigned long long)max_at);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	scm_channel *ch = NULL;
	scm_error *err = NULL;
	if (argc < 2) {
		fprintf(stderr, "usage: scm-gfx-client paint W H RRGGBB [FLOOD] | hostile | snapshot FILE | stats | viewer\n");
		return 2;
	}
	const char *svc = getenv("SCM_GFX_SERVICE"); /* as the agent: default "gfx" */
	int r = scm_connect(svc && *svc ? svc : "gfx", &ch, &err);
	if (r)
		return fail("connecting to gfx", r, err);
	if (strcmp(argv[1], "paint") == 0)
		r = paint(ch, argc, argv);
	else if (strcmp(argv[1], "rounds") == 0 && (argc == 3 || argc == 4))
		r = rounds(ch, argv[2], argc == 4 ? (size_t)atoi(argv[3]) : 0);
	else if (strcmp(argv[1], "hostile") == 0)
		r = hostile(ch);
	else if (strcmp(argv[1], "snapshot") == 0 && argc == 3) {
		_cleanup_close_ int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return fail(argv[2], -errno, NULL);
		r = scm_gfx_snapshot(ch, fd, &err);
		r = r ? fail("snapshot", r, err) : 0;
	} else if (strcmp(argv[1], "stats") == 0) {
		struct json_object *j = NULL;
		r = scm_gfx_stats(ch, &j, &err);
		if (r)
			return fail("stats", r, err);
		printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY));
		json_object_put(j);
	} else if (strcmp(argv[1], "viewer") == 0) {
		char *addr = NULL, *pw = NULL, *vo = NULL, *tok = NULL, *sec = NULL, *fp = NULL, *pem = NULL;
		uint64_t port = 0, ws = 0;
		r = scm_gfx_viewer(ch, &addr, &port, &ws, &pw, &vo, &tok, &sec, &fp, &pem, &err);
		if (r)
			return fail("viewer", r, err);
		/* The secrets stay off stdout: this tool runs as an app. */
		printf("%s %llu ws %llu security %s\n", addr, (unsigned long long)port, (unsigned long long)ws, sec);
		free(sec);
		free(fp);
		free(pem);
		free(addr);
		free(pw);
		free(vo);
		free(tok);
	} else {
		r = 2;
	}
	scm_channel_free(ch);
	return r;
}
