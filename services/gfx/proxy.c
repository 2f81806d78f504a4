/* proxy.c: scm-gfx-proxy, the graphics proxy as an scm provider
 * (stubs/idl/gfx.json).
 *
 * scmd starts it with $SCM_PROVIDER_FD and hands it one channel per
 * client. Each channel may create one surface (and declare up to 16
 * windows on it, set_windows); the grant's caller (the
 * container's endpoint label) picks the border colour and the grant's
 * constraints may set the time-bank weight; the grant also carries the
 * caller's clipboard rules, by which the desktop clipboard (clipboard.c)
 * decides each paste. One thread, one epoll set:
 * the provider's channels, the RFB viewers and signals; compositing runs
 * between events in the order the time bank picks.
 *
 *   scm-gfx-proxy [--size WxH] [--rfb-port N] [--ws-port N] [--apps A,B,..]
 *                 [--no-rfb] [--state FILE] [--resize]
 *                 [--tls required|preferred|off] [--security LIST]
 *                 [--tls-cert PEM --tls-key PEM]
 *
 * --tls picks the RFB port's security types (vencrypt.h): preferred (the
 * default, as the proxy listens on 127.0.0.1 only) offers VeNCrypt
 * (TLSVnc; X509Vnc first with --tls-cert) before plain VNC
 * authentication, required only VeNCrypt (X509Vnc, TLSVnc), off only
 * plain VNC authentication. --security gives the list itself in
 * TigerVNC's spelling ("X509Vnc,TLSVnc,VncAuth"). X509Vnc uses
 * --tls-cert/--tls-key, or a self-signed certificate made up at start.
 *
 * --resize lets viewers resize the desktop (SetDesktopSize); the desktop
 * spec's "resize": true asks for it.
 *
 * --apps names the callers (container or endpoint labels) that may create
 * surfaces: the apps `desktop launch` started for this desktop. Policy may
 * let any desktop-app container reach any gfx-* service; the desktop
 * itself decides who draws on it. The viewer secrets (made up here, at
 * start) go to the host identity only.
 *
 * Environment (what scmd or a launcher sets): SCM_GFX_SIZE=WxH,
 * SCM_GFX_RFB_PORT=N, SCM_GFX_STATE=FILE. --state writes
 * {"rfb_port":N,"width":W,"height":H,"pid":P} once listening. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "clipboard.h"
#include "scm/gfx-provider.h"
#include "scm/macro.h"
#include "proxy.h"
#include "wm.h"

#define INPUT_BATCH 64
#define DEFAULT_WEIGHT 1

gfx_server *proxy_srv;
gfx_clip *proxy_clip;
char **proxy_apps; /* NULL: whoever policy lets in */

static bool is_host(const scm_grant *g)
{
	return g->caller && strcmp(g->caller, "host") == 0;
}

static bool is_app(const scm_grant *g)
{
	if (!proxy_apps)
		return true;
	for (size_t i = 0; g->caller && proxy_apps[i]; i++)
		if (strcmp(proxy_apps[i], g->caller) == 0)
			return true;
	return false;
}

static char **split_apps(const char *list)
{
	size_t n = 1;
	for (const char *c = list; *c; c++)
		n += *c == ',';
	char **v = calloc(n + 1, sizeof(*v)), *dup = strdup(list), *save = NULL;
	if (!v || !dup) {
		free(v);
		free(dup);
		return NULL;
	}
	size_t k = 0;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save))
		v[k++] = strdup(t);
	free(dup);
	return v;
}

/* The time-bank weight of a new client, from the grant scmd made:
 * - the grant's setting "weight" (IDL settings; a profile's allow rule
 *   sets it: "settings": {"weight": W}), checked against the IDL's range
 *   by scmd, and again here since a provider trusts no input;
 * - constraints on create_surface's own weight parameter: the value the
 *   client passed, which the skeleton has already checked against them;
 * - otherwise DEFAULT_WEIGHT: a client never picks its own weight. */
static uint32_t pick_weight(const scm_grant *g, uint64_t weight)
{
	struct json_object *m, *p;
	if (g->settings && json_object_object_get_ex(g->settings, "weight", &p) &&
	    json_object_is_type(p, json_type_int)) {
		int64_t w = json_object_get_int64(p);
		return w >= 1 && w <= GFX_WEIGHT_MAX ? (uint32_t)w : DEFAULT_WEIGHT;
	}
	if (!g->constraints)
		return DEFAULT_WEIGHT;
	bool constrained = false;
	const char *keys[] = { "create_surface", "*" };
	for (size_t i = 0; i < 2; i++)
		if (json_object_object_get_ex(g->constraints, keys[i], &m) &&
		    json_object_is_type(m, json_type_object) && json_object_object_get_ex(m, "weight", &p))
			constrained = true;
	if (!constrained)
		return DEFAULT_WEIGHT;
	return weight >= 1 && weight <= GFX_WEIGHT_MAX ? (uint32_t)weight : DEFAULT_WEIGHT;
}

/* Replies code with the method on top of what the engine saw (cause,
 * taken), as do_present does: the client reads every layer, the one
 * naming the field among them. */
static int reply_chain(scm_call *call, int code, scm_error *cause, const char *method)
{
	scm_error *e = scm_error_wrap(cause, code, "gfx", "%s", method);
	if (!e || e == cause) { /* no memory for the layer that carries code */
		scm_error_free(e);
		return scm_call_reply_error(call, code, "%s: out of memory", method);
	}
	int r = scm_call_reply_error_chain(call, e);
	scm_error_free(e);
	return r;
}

static int do_create_surface(scm_call *call, uint64_t width, uint64_t height, uint64_t weight, void *ud)
{
	const scm_grant *g = scm_call_grant(call);
	if (!is_app(g))
		return scm_call_reply_error(call, SCM_GFX_E_NOTYOURS, "'%s' is not an app of this desktop",
					    g->caller ? g->caller : "?");
	if (scm_call_channel_data(call))
		return scm_call_reply_error(call, SCM_GFX_E_SURFACEEXISTS, "this channel already has a surface");
	size_t bytes;
	if (width > GFX_DIM_MAX || height > GFX_DIM_MAX ||
	    gfx_check_size((uint32_t)width, (uint32_t)height, &bytes) != 0)
		return scm_call_reply_error(call, SCM_GFX_E_BADSIZE,
					    "/width, /height: %llux%llu is outside 1..%u or over %u MiB",
					    (unsigned long long)width, (unsigned long long)height, GFX_DIM_MAX,
					    GFX_SURFACE_BYTES_MAX >> 20);
	gfx_client *c;
	int r = gfx_client_new(proxy_srv, g->caller && *g->caller ? g->caller : "unknown", (uint32_t)width,
			       (uint32_t)height, pick_weight(g, weight), &c);
	if (r > 0)
		return scm_call_reply_error(call, SCM_GFX_E_LIMIT, "no room for another client (at most %u)",
					    GFX_CLIENTS_MAX);
	if (r < 0)
		return scm_call_reply_error(call, r, "creating the surface: %s", strerror(-r));
	/* The app's clipboard rules, from scmd's grant: gfx.json asks for
	 * them ("grant_rules": ["clipboard"]), so scmd puts the caller's
	 * effective ones in the grant's rules. None (a grant without them):
	 * the app takes part in no flow. */
	struct json_object *rules = NULL;
	_cleanup_(scm_error_freep) scm_error *cerr = NULL;
	if (g->rules)
		json_object_object_get_ex(g->rules, "clipboard", &rules);
	if (gfx_clip_attach(proxy_clip, c, rules, &cerr) != 0) {
		_cleanup_free_ char *why = scm_error_text(cerr);
		fprintf(stderr, "scm-gfx-proxy: %s: %s; it takes part in no clipboard flow\n", gfx_client_caller(c),
			why ? why : "out of memory");
	}
	scm_call_set_channel_data(call, c);
	gfx_overlay *o = gfx_comp_find(gfx_server_compositor(proxy_srv), gfx_client_id(c));
	char border[8];
	snprintf(border, sizeof(border), "#%06x", gfx_client_border(c) & 0xFFFFFFu);
	return scm_gfx_create_surface_reply(call, gfx_client_surface(c)->fd, gfx_client_event_fd(c), o->x, o->y,
					    border);
}

static int do_present(scm_call *call, struct json_object *damage, void *ud)
{
	gfx_client *c = scm_call_channel_data(call);
	if (!c)
		return scm_call_reply_error(call, SCM_GFX_E_NOSURFACE, "present before create_surface");
	gfx_rect rects[GFX_DAMAGE_MAX];
	size_t n = 0;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	gfx_surface *s = gfx_client_surface(c);
	int r = gfx_parse_damage_list(damage, s->width, s->height, rects, GFX_DAMAGE_MAX, &n, &err);
	if (r) /* the parser's observation, with its where, under the service's code */
		return reply_chain(call, r == GFX_E_LIMIT ? SCM_GFX_E_LIMIT : SCM_GFX_E_BADDAMAGE, TAKE_PTR(err),
				   "present");
	if (n > 0)
		gfx_client_present(c, rects, n);
	return scm_gfx_present_reply(call, gfx_client_dropped(c));
}

static int do_set_windows(scm_call *call, struct json_object *windows, void *ud)
{
	gfx_client *c = scm_call_channel_data(call);
	if (!c)
		return scm_call_reply_error(call, SCM_GFX_E_NOSURFACE, "set_windows before create_surface");
	gfx_window_decl d[GFX_WINDOWS_MAX];
	size_t n = 0;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	gfx_surface *s = gfx_client_surface(c);
	int r = gfx_parse_windows(windows, s->width, s->height, d, GFX_WINDOWS_MAX, &n, &err);
	if (r)
		return reply_chain(call, r == GFX_E_LIMIT ? SCM_GFX_E_LIMIT : SCM_GFX_E_BADWINDOWS, TAKE_PTR(err),
				   "set_windows");
	r = gfx_client_set_windows(c, d, n);
	if (r > 0)
		return scm_call_reply_error(call, SCM_GFX_E_LIMIT, "no room on the desktop for more windows");
	if (r < 0)
		return scm_call_reply_error(call, r, "setting the windows: %s", strerror(-r));
	return scm_gfx_set_windows_reply(call, n);
}

static int do_poll_input(scm_call *call, void *ud)
{
	gfx_client *c = scm_call_channel_data(call);
	if (!c)
		return scm_call_reply_error(call, SCM_GFX_E_NOSURFACE, "poll_input before create_surface");
	gfx_input_event ev[INPUT_BATCH];
	size_t n = gfx_client_take_input(c, ev, INPUT_BATCH);
	struct json_object *j = gfx_input_to_json(ev, n), *arr = NULL;
	if (!j)
		return -ENOMEM;
	json_object_object_get_ex(j, "events", &arr);
	int r = scm_gfx_poll_input_reply(call, arr);
	json_object_put(j);
	return r;
}

static int do_clipboard_put(scm_call *call, int data, void *ud)
{
	gfx_client *c = scm_call_channel_data(call);
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	char *buf = NULL;
	size_t len = 0;
	if (!c)
		return scm_call_reply_error(call, SCM_GFX_E_NOSURFACE, "clipboard_put before create_surface");
	/* Unasked, the fd is not even looked at. */
	int r = gfx_clip_asked(proxy_clip, c) ? gfx_clip_read_memfd(data, &buf, &len, &err) : 0;
	/* over the cap: put refuses it by its size alone, audits that and
	 * says so (the read's observation would only repeat it) */
	if (r == GFX_E_LIMIT)
		err = scm_error_free(err);
	if (r == 0 || r == GFX_E_LIMIT)
		r = gfx_clip_put(proxy_clip, c, buf ? buf : "", len, &err);
	free(buf);
	if (r < 0)
		return scm_call_reply_error(call, r, "clipboard_put: %s", strerror(-r));
	if (r)
		return reply_chain(call, SCM_GFX_E_CLIPBOARD, TAKE_PTR(err), "clipboard_put");
	return scm_gfx_clipboard_put_reply(call, len);
}

static int do_clipboard_get(scm_call *call, void *ud)
{
	gfx_client *c = scm_call_channel_data(call);
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	const void *data;
	size_t len;
	int fd = -1;
	if (!c)
		return scm_call_reply_error(call, SCM_GFX_E_NOSURFACE, "clipboard_get before create_surface");
	int r = gfx_clip_take(proxy_clip, c, &data, &len, &err);
	if (r)
		return reply_chain(call, SCM_GFX_E_CLIPBOARD, TAKE_PTR(err), "clipboard_get");
	if ((r = gfx_clip_memfd(data, len, &fd)) < 0)
		return scm_call_reply_error(call, r, "clipboard_get: %s", strerror(-r));
	r = scm_gfx_clipboard_get_reply(call, fd, len);
	close(fd);
	return r;
}

static int do_stats(scm_call *call, void *ud)
{
	struct json_object *j = gfx_server_stats(proxy_srv);
	if (!j)
		return -ENOMEM;
	json_object_object_add(j, "clipboard", gfx_clip_stats(proxy_clip));
	int r = scm_gfx_stats_reply(call, j);
	json_object_put(j);
	return r;
}

static int do_snapshot(scm_call *call, int file, void *ud)
{
	gfx_server_work(proxy_srv, INT64_MAX);
	int r = gfx_snapshot_png_fd(gfx_server_compositor(proxy_srv), file);
	if (r < 0)
		return scm_call_reply_error(call, SCM_GFX_E_IO, "writing the PNG: %s", strerror(-r));
	return scm_gfx_snapshot_reply(call);
}

static int do_viewer(scm_call *call, void *ud)
{
	gfx_rfb *rfb = gfx_server_rfb(proxy_srv);
	if (!is_host(scm_call_grant(call)))
		return scm_call_reply_error(call, SCM_GFX_E_NOTYOURS, "the viewer secrets are for the host only");
	if (!rfb)
		return scm_gfx_viewer_reply(call, "127.0.0.1", 0, 0, "", "", "", "", "", "");
	return scm_gfx_viewer_reply(call, "127.0.0.1", gfx_rfb_port(rfb), gfx_rfb_ws_port(rfb),
				    gfx_rfb_password(rfb), gfx_rfb_viewonly_password(rfb), gfx_rfb_token(rfb),
				    gfx_rfb_security(rfb), gfx_rfb_tls_fingerprint(rfb), gfx_rfb_tls_cert_pem(rfb));
}

static void apps_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The session manager's hook: its apps change with `desktop app add` and
 * `remove`, so who may draw changes with them. The host's word only. */
static int do_set_apps(scm_call *call, struct json_object *list, void *ud)
{
	if (!is_host(scm_call_grant(call)))
		return scm_call_reply_error(call, SCM_GFX_E_NOTYOURS, "the list of apps is for the host only");
	if (!json_object_is_type(list, json_type_array) || json_object_array_length(list) > 64)
		return scm_call_reply_error(call, SCM_E_BAD_ARGS, "/apps: must be an array of at most 64 names");
	size_t n = json_object_array_length(list);
	char **v = calloc(n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		if (!json_object_is_type(e, json_type_string) || json_object_get_string_len(e) == 0 ||
		    json_object_get_string_len(e) > 128) {
			apps_free(v);
			return scm_call_reply_error(call, SCM_E_BAD_ARGS, "/apps/%zu: must be a name of 1..128 characters", i);
		}
		if (!(v[i] = strdup(json_object_get_string(e)))) {
			apps_free(v);
			return -ENOMEM;
		}
	}
	apps_free(proxy_apps);
	proxy_apps = v;
	return scm_gfx_set_apps_reply(call);
}

static void on_close(const scm_grant *g, void *chdata, void *ud)
{
	gfx_clip_detach(proxy_clip, chdata);
	gfx_client_free(chdata);
}

/* The proxy's audit stream: one line per clipboard decision on stderr,
 * which is the provider's log (the container's log under --containers,
 * which scmd keeps: `scmctl container logs`). */
static void clip_audit(void *ud, const char *json)
{
	fprintf(stderr, "scm-gfx-proxy: audit %s\n", json);
	fflush(stderr);
}

static bool hook_key(void *ud, bool down, uint32_t keysym)
{
	return gfx_clip_key(ud, down, keysym);
}

static void hook_cut_text(void *ud, const char *utf8, size_t len)
{
	gfx_clip_from_viewer(ud, utf8, len);
}

int proxy_clip_new(void)
{
	int r = gfx_clip_new(proxy_srv, clip_audit, NULL, &proxy_clip);
	if (r < 0)
		return r;
	gfx_server_hooks hooks = { hook_key, hook_cut_text, proxy_clip };
	gfx_server_set_hooks(proxy_srv, &hooks);
	return 0;
}

static const scm_gfx_handlers handlers = {
	.create_surface = do_create_surface,
	.present = do_present,
	.set_windows = do_set_windows,
	.poll_input = do_poll_input,
	.stats = do_stats,
	.snapshot = do_snapshot,
	.viewer = do_viewer,
	.set_apps = do_set_apps,
	.clipboard_put = do_clipboard_put,
	.clipboard_get = do_clipboard_get,
};

static int write_state(const char *path)
{
	char tmp[4096];
	struct json_object *j = json_object_new_object();
	gfx_compositor *c = gfx_server_compositor(proxy_srv);
	gfx_rfb *rfb = gfx_server_rfb(proxy_srv);
	json_object_object_add(j, "rfb_port", json_object_new_int(rfb ? gfx_rfb_port(rfb) : 0));
	json_object_object_add(j, "width", json_object_new_int64(c->width));
	json_object_object_add(j, "height", json_object_new_int64(c->height));
	json_object_object_add(j, "pid", json_object_new_int(getpid()));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int r = json_object_to_file(tmp, j) < 0 || rename(tmp, path) < 0 ? -EIO : 0;
	json_object_put(j);
	return r;
}

/* The TLS worker's refusals, from its thread (one fprintf a line). */
static void log_line(void *ud, const char *line)
{
	(void)ud;
	fprintf(stderr, "scm-gfx-proxy: %s\n", line);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "size", required_argument, NULL, 's' },
					      { "rfb-port", required_argument, NULL, 'p' },
					      { "no-rfb", no_argument, NULL, 'n' },
					      { "state", required_argument, NULL, 'S' },
					      { "ws-port", required_argument, NULL, 'w' },
					      { "apps", required_argument, NULL, 'a' },
					      { "resize", no_argument, NULL, 'r' },
					      { "tls", required_argument, NULL, 'T' },
					      { "security", required_argument, NULL, 'L' },
					      { "tls-cert", required_argument, NULL, 'C' },
					      { "tls-key", required_argument, NULL, 'K' },
					      { 0 } };
	scm_error *perr = NULL;
	const char *tls_mode = "preferred", *security = NULL;
	char viewonly[GFX_RFB_PASSWORD_LEN + 1];
	gfx_server_config cfg = { .width = 1280, .height = 800, .background = 0x2b2b2b, .rfb = true,
				  .name = "scm desktop" };
	const char *state = getenv("SCM_GFX_STATE"), *e;
	if ((e = getenv("SCM_GFX_SIZE")) && sscanf(e, "%ux%u", &cfg.width, &cfg.height) != 2) {
		fprintf(stderr, "scm-gfx-proxy: $SCM_GFX_SIZE: want WxH, got \"%s\"\n", e);
		return 2;
	}
	if ((e = getenv("SCM_GFX_RFB_PORT")))
		cfg.rfb_port = (uint16_t)strtoul(e, NULL, 10);
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		if (o == 's' && sscanf(optarg, "%ux%u", &cfg.width, &cfg.height) == 2)
			continue;
		if (o == 'p') {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end == '\0' && v <= 65535) {
				cfg.rfb_port = (uint16_t)v;
				continue;
			}
		}
		if (o == 'n') {
			cfg.rfb = false;
			continue;
		}
		if (o == 'r') {
			cfg.resize = true;
			continue;
		}
		if (o == 'S') {
			state = optarg;
			continue;
		}
		if (o == 'w') {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end == '\0' && v <= 65535) {
				cfg.ws_port = (uint16_t)v;
				continue;
			}
		}
		if (o == 'T' || o == 'L') {
			*(o == 'T' ? &tls_mode : &security) = optarg;
			continue;
		}
		if (o == 'C' || o == 'K') {
			*(o == 'C' ? &cfg.tls_cert : &cfg.tls_key) = optarg;
			continue;
		}
		if (o == 'a' && *optarg) {
			if (!(proxy_apps = split_apps(optarg)))
				return 1;
			continue;
		}
		fprintf(stderr, "usage: scm-gfx-proxy [--size WxH] [--rfb-port N] [--ws-port N] [--apps A,B,..] "
				"[--no-rfb] [--state FILE] [--resize] [--tls required|preferred|off] [--security LIST] "
				"[--tls-cert PEM --tls-key PEM]\n");
		return 2;
	}
	if ((security ? gfx_sec_types_parse(security, &cfg.security, &perr)
		      : gfx_sec_types_for_mode(tls_mode, cfg.tls_cert != NULL, &cfg.security, &perr)) != 0) {
		fprintf(stderr, "scm-gfx-proxy: --%s: ", security ? "security" : "tls");
		scm_error_print(perr, stderr);
		scm_error_free(perr);
		return 2;
	}
	cfg.log = log_line;
	/* Two secrets: the full one and the view-only one (the engine makes
	 * up the full one and the websocket token itself). */
	if (gfx_random_secret(viewonly, sizeof(viewonly)) < 0)
		return 1;
	cfg.viewonly_password = viewonly;
	scm_gfx_skeleton sk = { &handlers, NULL };
	scm_provider *p = NULL;
	scm_error *err = NULL;
	/* read before libscm unsets it */
	const char *ho = getenv("SCM_PROVIDER_HANDOVER");
	bool taking_over = ho && strcmp(ho, "1") == 0;
	int r = scm_gfx_provider_new(&sk, &p, &err);
	if (r == 0) {
		scm_provider_on_close(p, on_close);
		/* Started to take over from a running proxy: its state makes the
		 * engine (proxy-handover.c); otherwise it only keeps the ops. */
		r = proxy_handover(p, &cfg, taking_over, &err);
	}
	if (r != 0) {
		fprintf(stderr, "scm-gfx-proxy: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		scm_provider_free(p);
		/* a state refused halfway: what it held is still the old
		 * process's (no shutdown of its viewers' sockets) */
		if (proxy_srv)
			gfx_server_abandon(proxy_srv);
		gfx_clip_free(proxy_clip);
		gfx_server_free(proxy_srv);
		return 1;
	}
	if (!proxy_srv && (r = gfx_server_new(&cfg, &proxy_srv)) != 0) {
		fprintf(stderr, "scm-gfx-proxy: cannot start: %s\n",
			r < 0 ? strerror(-r) : "bad desktop size (1..8192, at most 128 MiB)");
		scm_provider_free(p);
		return 1;
	}
	if (!proxy_clip && proxy_clip_new() < 0)
		return 1;
	if (state && write_state(state) < 0)
		fprintf(stderr, "scm-gfx-proxy: cannot write %s\n", state);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	_cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	if (sfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, scm_provider_fd(p), &ev) < 0)
		return 1;
	ev.data.u32 = 2;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	bool watching = gfx_server_fd(proxy_srv) >= 0;
	if (watching) {
		ev.data.u32 = 1;
		epoll_ctl(ep, EPOLL_CTL_ADD, gfx_server_fd(proxy_srv), &ev);
	}
	int rc = 0;
	for (bool run = true; run;) {
		struct epoll_event evs[8];
		/* Queued frames the bank has not served yet: do not sleep. */
		int n = epoll_wait(ep, evs, 8, gfx_server_has_work(proxy_srv) ? 0 : -1);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == 0) {
				r = scm_provider_dispatch(p, 0, &err);
				if (r == 1)
					run = false;
				else if (r < 0) {
					fprintf(stderr, "scm-gfx-proxy: ");
					scm_error_print(err, stderr);
					err = scm_error_free(err);
					run = false;
					rc = 1;
				}
			} else if (evs[i].data.u32 == 2) {
				run = false;
			}
		}
		gfx_server_dispatch(proxy_srv);
		/* A handover froze the viewers: not watched (they are not read)
		 * until it is refused or aborted, when they are thawed. */
		bool frozen = proxy_handover_frozen(p);
		if (gfx_server_fd(proxy_srv) >= 0 && frozen == watching) {
			ev.data.u32 = 1;
			epoll_ctl(ep, frozen ? EPOLL_CTL_DEL : EPOLL_CTL_ADD, gfx_server_fd(proxy_srv), &ev);
			watching = !frozen;
		}
	}
	/* Handed over: the sockets are the new process's, left without a
	 * shutdown (which would end its viewers' connections too). */
	if (scm_provider_handed_over(p))
		gfx_server_abandon(proxy_srv);
	scm_provider_free(p);
	gfx_server_free(proxy_srv);
	gfx_clip_free(proxy_clip);
	return rc;
}
