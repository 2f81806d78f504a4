/* proxy-handover.c: scm-gfx-proxy restarted with its channels, clients
 * and viewers (`scmctl service restart gfx-NAME`, docs/handover.md,
 * docs/gfx.md "Restarting the proxy").
 *
 * The old process, asked to save, freezes the RFB side first (no viewer
 * is read or written, no connection accepted: from now on the bytes in
 * those sockets are the new process's), then saves the desktop
 * (server_handover.c: surfaces, eventfds, windows; rfb_handover.c:
 * secrets, listening sockets, viewers) and the list of apps. If the new
 * process refuses, libscm reads the channels again and the main loop
 * sees that (scm_provider_handed_over() false while frozen) and thaws
 * the viewers, which get what changed meanwhile. If it took over, the
 * old process lets go of every socket without a shutdown.
 *
 * The new process starts as the old one did (the same command line, so
 * the same size, TLS and security types) and takes from the state what
 * must stay: the secrets (viewers and the session manager keep theirs),
 * the listening sockets (the ports stay, and connections that arrived
 * meanwhile wait in their queue), the desktop size a viewer may have
 * changed, the apps allowed to draw, every client and viewer. Each
 * channel that had a surface gets its client back, with the clipboard
 * rules of its grant. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proxy.h"
#include "scm/gfx-provider.h"
#include "scm/macro.h"

#define STATE_VERSION 1

static scm_provider *provider;
/* restore(): the saved clients by index, for restore_channel() */
static gfx_client *restored[GFX_CLIENTS_MAX];
static size_t n_restored;

static int fd_add(void *ud, int fd)
{
	return scm_handover_fd_add(ud, fd);
}

static int fd_take(void *ud, int64_t index)
{
	return scm_handover_fd_take(ud, index);
}

bool proxy_handover_frozen(scm_provider *p)
{
	gfx_rfb *rfb = proxy_srv ? gfx_server_rfb(proxy_srv) : NULL;
	if (!rfb || !gfx_rfb_frozen(rfb))
		return false;
	if (scm_provider_handed_over(p))
		return true;
	gfx_rfb_freeze(rfb, false); /* refused or aborted: serve on */
	return false;
}

static json_object *save(void *ud, scm_error **ret_err)
{
	gfx_rfb *rfb = gfx_server_rfb(proxy_srv);
	if (rfb)
		gfx_rfb_freeze(rfb, true);
	json_object *st = gfx_server_save(proxy_srv, fd_add, provider, ret_err);
	if (!st) {
		if (rfb)
			gfx_rfb_freeze(rfb, false);
		return NULL;
	}
	json_object *a = json_object_new_array();
	for (size_t i = 0; proxy_apps && proxy_apps[i]; i++)
		json_object_array_add(a, json_object_new_string(proxy_apps[i]));
	json_object_object_add(st, "apps", proxy_apps ? a : NULL);
	if (!proxy_apps)
		json_object_put(a);
	json_object *cb = gfx_clip_save(proxy_clip, fd_add, provider, ret_err);
	if (!cb) {
		json_object_put(st);
		if (rfb)
			gfx_rfb_freeze(rfb, false);
		return NULL;
	}
	json_object_object_add(st, "clipboard", cb);
	return st;
}

static json_object *save_channel(const scm_grant *g, void *chdata, void *ud)
{
	gfx_client *c = chdata;
	if (!c)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "client", json_object_new_int(gfx_client_ho_index(c)));
	return o;
}

static const char *secret(json_object *o, const char *k, size_t min, size_t max)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	size_t n = (size_t)json_object_get_string_len(v);
	return n >= min && n <= max ? json_object_get_string(v) : NULL;
}

static int restore_apps(json_object *a, scm_error **ret_err)
{
	if (!a)
		return 0; /* whoever policy lets in */
	size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 65;
	if (n > 64)
		return scm_fail(ret_err, SCM_E_INVALID, "/apps: not an array of at most 64 names");
	char **v = calloc(n + 1, sizeof(*v));
	for (size_t i = 0; v && i < n; i++) {
		const char *s = json_object_get_string(json_object_array_get_idx(a, i));
		if (!(v[i] = strdup(s ? s : "")))
			break;
	}
	for (size_t i = 0; proxy_apps && proxy_apps[i]; i++)
		free(proxy_apps[i]);
	free(proxy_apps);
	proxy_apps = v;
	return v ? 0 : scm_fail(ret_err, -ENOMEM, "out of memory");
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int restore(json_object *st, uint32_t version, void *ud, scm_error **ret_err)
{
	int64_t t0 = mono_us();
	if (!proxy_srv)
		return scm_fail(ret_err, SCM_E_INTERNAL, "no desktop made before the state came");
	json_object *rfb = json_object_object_get(st, "rfb");
	int64_t w = json_object_get_int64(json_object_object_get(st, "width"));
	int64_t h = json_object_get_int64(json_object_object_get(st, "height"));
	if (w < 1 || h < 1 || w > GFX_DIM_MAX || h > GFX_DIM_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "/width, /height: not a desktop size");
	bool has_rfb = gfx_server_rfb(proxy_srv) != NULL;
	if (has_rfb != (rfb != NULL))
		return scm_fail(ret_err, SCM_E_INVALID, "/rfb: the old proxy %s viewers, this one %s",
				rfb ? "had" : "had no", has_rfb ? "must" : "must not");
	const char *pw = NULL, *vo = NULL, *tok = NULL;
	int rfd = -1, wfd = -1;
	if (rfb) {
		pw = secret(rfb, "password", GFX_RFB_PASSWORD_LEN, GFX_RFB_PASSWORD_LEN);
		vo = secret(rfb, "viewonly", 0, GFX_RFB_PASSWORD_LEN);
		tok = secret(rfb, "token", 16, GFX_RFB_TOKEN_LEN);
		if (!pw || !vo || !tok)
			return scm_fail(ret_err, SCM_E_INVALID, "/rfb: no password, view-only password or token");
		rfd = fd_take(provider, json_object_get_int64(json_object_object_get(rfb, "rfb_fd")));
		wfd = fd_take(provider, json_object_get_int64(json_object_object_get(rfb, "ws_fd")));
	}
	/* takes the fds in every case */
	int r = gfx_server_adopt(proxy_srv, rfd, wfd, pw, vo, tok, (uint32_t)w, (uint32_t)h);
	if (r)
		return scm_fail(ret_err, r < 0 ? r : SCM_E_INVALID, "/rfb: %s",
				r == -EBADF ? "no listening sockets in the state" : "its secrets or its size are refused");
	if ((r = restore_apps(json_object_object_get(st, "apps"), ret_err)) != 0)
		return r;
	json_object *cb = json_object_object_get(st, "clipboard");
	if (cb && (r = gfx_clip_restore(proxy_clip, cb, fd_take, provider, ret_err)) != 0)
		return r;
	r = gfx_server_restore_clients(proxy_srv, st, fd_take, provider, restored, GFX_CLIENTS_MAX, &n_restored,
				       ret_err);
	if (r)
		return r;
	gfx_server_work(proxy_srv, INT64_MAX); /* the desktop drawn before any viewer sees it */
	if (rfb) {
		uint32_t carried = 0, dropped = 0, ws = 0;
		gfx_rfb_restore_viewers(gfx_server_rfb(proxy_srv), json_object_object_get(rfb, "viewers"), fd_take,
					provider, &carried, &dropped, &ws);
		fprintf(stderr,
			"scm-gfx-proxy: took over %zu clients and %u viewers (%u dropped, %lld left to reconnect; "
			"%u websockets carried, %lld left) in %lld us\n",
			n_restored, carried, dropped, (long long)json_object_get_int64(json_object_object_get(rfb, "left")),
			ws, (long long)json_object_get_int64(json_object_object_get(rfb, "ws_left")),
			(long long)(mono_us() - t0));
	}
	/* test hook: refuse once every viewer was adopted, as a later failure
	 * would (gfx-handover.bats: the old proxy's viewers must live on) */
	if (getenv("SCM_GFX_RESTORE_FAIL"))
		return scm_fail(ret_err, SCM_E_INVALID, "refused after adopting the viewers ($SCM_GFX_RESTORE_FAIL)");
	return 0;
}

static int restore_channel(const scm_grant *g, json_object *saved, uint32_t version, void **ret_chdata, void *ud)
{
	json_object *v;
	if (!saved || !json_object_object_get_ex(saved, "client", &v))
		return 0;
	int64_t i = json_object_get_int64(v);
	if (i < 0 || (uint64_t)i >= n_restored || !restored[i])
		return -EINVAL;
	gfx_client *c = restored[i];
	restored[i] = NULL; /* one channel a client */
	struct json_object *rules = NULL;
	_cleanup_(scm_error_freep) scm_error *cerr = NULL;
	if (g->rules)
		json_object_object_get_ex(g->rules, "clipboard", &rules);
	if (gfx_clip_attach(proxy_clip, c, rules, &cerr) != 0)
		fprintf(stderr, "scm-gfx-proxy: %s: its clipboard rules; it takes part in no clipboard flow\n",
			gfx_client_caller(c));
	*ret_chdata = c;
	return 0;
}

int proxy_handover(scm_provider *p, gfx_server_config *cfg, bool taking_over, scm_error **ret_err)
{
	scm_handover_ops ops = { .version = STATE_VERSION, .min_version = 1, .save = save,
				 .save_channel = save_channel, .restore = restore, .restore_channel = restore_channel };
	provider = p;
	/* Started to take over: everything but what the state gives is made
	 * now, while the old process still serves (most of the time a
	 * restore would take otherwise: the engine, libvncserver, TLS). */
	if (taking_over) {
		cfg->adopt = true;
		int r = gfx_server_new(cfg, &proxy_srv);
		if (r)
			return scm_fail(ret_err, r < 0 ? r : SCM_E_INVALID, "cannot start: %s",
					r < 0 ? strerror(-r) : "bad desktop size");
		if ((r = proxy_clip_new()) < 0)
			return scm_fail(ret_err, r, "the desktop clipboard: %s", strerror(-r));
	}
	return scm_provider_handover(p, &ops, ret_err);
}
