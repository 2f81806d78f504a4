/* session-launch.c: a desktop comes up, and comes back after its proxy
 * ended. The loop checks the spec and makes a desktop (starting); a
 * worker registers the proxy (gfx-NAME) and asks it for the viewer
 * secrets (which starts it, so a proxy that cannot start fails the launch
 * at once), then starts each app in spec order, waiting for its agent's
 * line, so the proxy places them in that order; then the optional noVNC
 * page server. A launch that fails halfway undoes what it did. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scm/desktop-provider.h"
#include "scm/gfx-client.h"
#include "scm/macro.h"
#include "session.h"

int session_desktop_new(struct session *s, const desktop_spec *spec, bool containers, unsigned rfb_port,
			unsigned ws_port, unsigned novnc_port, struct desktop **ret, scm_error **ret_err)
{
	struct desktop *o = session_find(s, spec->name);
	if (o)
		return scm_fail(ret_err, SCM_DESKTOP_E_EXISTS, o->state == DESKTOP_STARTING
								 ? "desktop '%s' is being launched already"
								 : "desktop '%s' is running already (scmctl desktop stop %s)",
				spec->name, spec->name);
	if (rfb_port > 65535 || ws_port > 65535 || novnc_port > 65535)
		return scm_fail(ret_err, SCM_DESKTOP_E_BADSPEC, "a port is over 65535");
	struct desktop *d = calloc(1, sizeof(*d));
	if (!d || !(d->name = strdup(spec->name)) || asprintf(&d->service, "gfx-%s", spec->name) < 0) {
		session_desktop_free(d);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	d->width = spec->width, d->height = spec->height, d->containers = containers, d->novnc_port = novnc_port;
	d->state = DESKTOP_STARTING;
	for (size_t i = 0; i < spec->n_apps; i++) {
		struct session_app tmp = { .spec = spec->apps[i] };
		char where[32];
		snprintf(where, sizeof(where), "/apps/%zu", i);
		int r = session_set_label(d, &tmp, where, ret_err);
		if (r != 0) {
			session_desktop_free(d);
			return r;
		}
	}
	*ret = d;
	return 0;
}

/* The proxy's manifest: only this desktop's apps (and the host) may draw. */
static json_object *proxy_manifest(const struct session *s, const struct desktop *d, const desktop_spec *spec,
				   unsigned rfb_port, unsigned ws_port)
{
	json_object *man = json_object_new_object(), *ex = json_object_new_array(), *allow = json_object_new_array();
	char buf[4096];
	_cleanup_free_ char *apps = NULL;
	for (size_t i = 0; i < spec->n_apps; i++) {
		struct session_app tmp = { .spec = spec->apps[i] };
		(void)session_set_label(d, &tmp, "", NULL); /* checked by session_desktop_new */
		char *n = NULL;
		if (asprintf(&n, "%s%s%s", apps ? apps : "", apps ? "," : "", tmp.label) < 0)
			n = NULL;
		free(apps);
		apps = n;
		if (d->containers)
			json_object_array_add(allow, json_object_new_string(tmp.label));
	}
	/* Without containers the endpoints' labels: the later app add ones too
	 * (endpoints are made by the host only; the proxy's --apps decides). */
	snprintf(buf, sizeof(buf), "desktop-%s-*", d->name);
	if (!d->containers)
		json_object_array_add(allow, json_object_new_string(buf));
	json_object_array_add(allow, json_object_new_string("host"));
	snprintf(buf, sizeof(buf), "%s/scm-gfx-proxy", s->libexec);
	json_object_array_add(ex, json_object_new_string(buf));
	json_object_array_add(ex, json_object_new_string("--size"));
	snprintf(buf, sizeof(buf), "%ux%u", d->width, d->height);
	json_object_array_add(ex, json_object_new_string(buf));
	json_object_array_add(ex, json_object_new_string("--rfb-port"));
	snprintf(buf, sizeof(buf), "%u", rfb_port);
	json_object_array_add(ex, json_object_new_string(buf));
	json_object_array_add(ex, json_object_new_string("--ws-port"));
	snprintf(buf, sizeof(buf), "%u", ws_port);
	json_object_array_add(ex, json_object_new_string(buf));
	/* "resize": true in the spec: viewers may resize the desktop. */
	if (spec->resize)
		json_object_array_add(ex, json_object_new_string("--resize"));
	/* "tls" and the certificate's files, when the spec names them. */
	const char *tls_args[][2] = { { "--tls", spec->tls }, { "--tls-cert", spec->tls_cert },
				      { "--tls-key", spec->tls_key } };
	for (size_t i = 0; i < 3; i++)
		if (tls_args[i][1]) {
			json_object_array_add(ex, json_object_new_string(tls_args[i][0]));
			json_object_array_add(ex, json_object_new_string(tls_args[i][1]));
		}
	json_object_array_add(ex, json_object_new_string("--apps"));
	json_object_array_add(ex, json_object_new_string(apps ? apps : ""));
	json_object_object_add(man, "name", json_object_new_string(d->service));
	json_object_object_add(man, "interface", json_object_new_string("gfx"));
	snprintf(buf, sizeof(buf), "graphics proxy of desktop %s", d->name);
	json_object_object_add(man, "description", json_object_new_string(buf));
	json_object_object_add(man, "exec", ex);
	if (d->containers) {
		json_object *c = json_object_new_object(), *p = json_object_new_array();
		json_object_array_add(p, json_object_new_string("gfx-proxy"));
		json_object_object_add(c, "profiles", p);
		json_object_object_add(man, "container", c);
	}
	json_object_object_add(man, "allow", allow);
	return man;
}

/* Asks the proxy (starting it if it is not running) where viewers connect
 * and for the secrets, into d; *watch: the channel, kept open. */
static int proxy_viewer(const struct session *s, struct desktop *d, scm_channel **watch, scm_error **ret_err)
{
	scm_channel *ch = NULL;
	char *addr = NULL, *pw = NULL, *vo = NULL, *tok = NULL, *sec = NULL, *fp = NULL, *pem = NULL;
	uint64_t port = 0, wsp = 0;
	int r = scmd_channel(s, d->service, &ch, ret_err);
	if (r == 0)
		r = scm_gfx_viewer(ch, &addr, &port, &wsp, &pw, &vo, &tok, &sec, &fp, &pem, ret_err);
	if (r == 0 && (!port || !pw || strlen(pw) != 8 || !tok || strlen(tok) < 16 || strlen(tok) >= sizeof(d->token)))
		r = scm_fail(ret_err, SCM_DESKTOP_E_START, "%s gave no RFB port or secrets", d->service);
	if (r == 0 && (!sec || strlen(sec) >= sizeof(d->security) || !fp || (*fp && strlen(fp) != 64) || !pem ||
		       strlen(pem) >= sizeof(d->tls_cert)))
		r = scm_fail(ret_err, SCM_DESKTOP_E_START, "%s gave no security types, or a certificate over 8 KiB",
			     d->service);
	if (r == 0) {
		d->rfb_port = (unsigned)port, d->ws_port = (unsigned)wsp;
		snprintf(d->password, sizeof(d->password), "%s", pw);
		snprintf(d->viewonly, sizeof(d->viewonly), "%s", vo ? vo : "");
		snprintf(d->token, sizeof(d->token), "%s", tok);
		snprintf(d->security, sizeof(d->security), "%s", sec);
		snprintf(d->tls_fingerprint, sizeof(d->tls_fingerprint), "%s", fp);
		snprintf(d->tls_cert, sizeof(d->tls_cert), "%s", pem);
		*watch = TAKE_PTR(ch);
	}
	scm_channel_free(ch);
	free(addr), free(pw), free(vo), free(tok), free(sec), free(fp), free(pem);
	return r;
}

/* A deep copy of a spec's app: the spec stays the caller's. */
static void app_copy(desktop_app *to, const desktop_app *from)
{
	size_t nc = 0, np = 0;
	while (from->command[nc])
		nc++;
	while (from->profiles[np])
		np++;
	to->name = strdup(from->name);
	to->command = calloc(nc + 1, sizeof(char *));
	to->profiles = calloc(np + 1, sizeof(char *));
	for (size_t k = 0; to->command && k < nc; k++)
		to->command[k] = strdup(from->command[k]);
	for (size_t k = 0; to->profiles && k < np; k++)
		to->profiles[k] = strdup(from->profiles[k]);
	to->width = from->width, to->height = from->height, to->weight = from->weight;
}

int session_launch_work(struct session *s, struct desktop *d, const desktop_spec *spec, unsigned rfb_port,
			unsigned ws_port, scm_channel **watch, scm_error **ret_err)
{
	bool registered = false;
	int r = session_make_dirs(s, d);
	if (r != 0) {
		r = scm_fail(ret_err, SCM_DESKTOP_E_IO, "%s: %s", d->dir ? d->dir : s->runtime_dir, strerror(-r));
		goto fail;
	}
	json_object *reg = json_object_new_object();
	char buf[160];
	json_object_object_add(reg, "manifest", proxy_manifest(s, d, spec, rfb_port, ws_port));
	snprintf(buf, sizeof(buf), "(desktop %s)", d->name);
	json_object_object_add(reg, "origin", json_object_new_string(buf));
	r = scmd_request(s, "service.register", reg, NULL, NULL, 0, ret_err);
	json_object_put(reg);
	if (r != 0) {
		r = scm_fail(ret_err, SCM_DESKTOP_E_START, "registering %s", d->service);
		goto fail;
	}
	registered = true;
	/* The state file from now on, each step written before it is taken:
	 * a manager killed halfway leaves what the next one tears down
	 * (session-leftovers.c). The loop does not touch it while this runs. */
	session_write_state(s, d);
	/* Start the proxy now (the first call activates it): a proxy that
	 * cannot start fails here, with scmd's reason, before any app waits. */
	if ((r = proxy_viewer(s, d, watch, ret_err)) != 0) {
		r = scm_fail(ret_err, SCM_DESKTOP_E_START, "the graphics proxy %s did not start", d->service);
		goto fail;
	}
	for (size_t i = 0; i < spec->n_apps; i++) {
		struct session_app *a = &d->apps[d->n_apps++];
		app_copy(&a->spec, &spec->apps[i]);
		(void)session_set_label(d, a, "", NULL); /* checked by session_desktop_new */
		session_write_state(s, d);
		if ((r = session_start_app(s, d, a, ret_err)) != 0)
			goto fail;
	}
	if (d->novnc_port && (r = session_novnc_start(d, ret_err)) != 0)
		goto fail;
	return 0;
fail:
	scm_channel_free(*watch);
	*watch = NULL;
	session_teardown(s, d, registered);
	return r >= 100 ? r : SCM_DESKTOP_E_START;
}

/* How long a restarted proxy may take to come back: scmd restarts it on
 * the next connect, after it has seen the old one end. */
#define RESYNC_TRIES 50
#define RESYNC_STEP_MS 100

int session_resync_work(struct session *s, struct desktop *d, struct desktop *fresh, struct session_app *apps,
			scm_channel **watch, scm_error **ret_err)
{
	int r = -1;
	for (int i = 0; i < RESYNC_TRIES && r != 0 && !atomic_load(&s->quitting); i++) {
		scm_error_free(*ret_err);
		*ret_err = NULL;
		if ((r = proxy_viewer(s, fresh, watch, ret_err)) != 0)
			session_nap(RESYNC_STEP_MS);
	}
	if (r != 0)
		return scm_fail(ret_err, SCM_DESKTOP_E_START, "the graphics proxy %s did not come back", d->service);
	/* Only the channel went (revoked, say), not the proxy: the same
	 * secrets, and its apps are still on it. */
	if (strcmp(fresh->password, d->password) == 0 && strcmp(fresh->token, d->token) == 0)
		return 1;
	/* The new proxy knows the apps of its command line, not those added
	 * or removed since. */
	if ((r = session_tell_proxy_apps(s, d, NULL, NULL, ret_err)) != 0)
		return scm_fail(ret_err, SCM_DESKTOP_E_START, "telling the new %s its apps", d->service);
	/* The apps' agents ended with their channels to the old proxy (and
	 * with them the apps): each starts afresh, in order, so the new
	 * proxy places them as the first did. */
	for (size_t i = 0; i < d->n_apps; i++) {
		session_stop_app_procs(s, d, &apps[i]);
		if ((r = session_start_app(s, d, &apps[i], ret_err)) != 0)
			return r;
	}
	return 0;
}
