/* session-main.c: scm-desktop-session, the desktop session manager as an
 * scm provider (stubs/idl/desktop.json). `scmctl desktop` registers it as
 * the service "desktop" (allow: host) and is its client.
 *
 *   scm-desktop-session --runtime-dir DIR [--user UID]
 *
 * Who may call what (docs/gfx.md, "Sessions"): scmd's policy decides who
 * reaches the service at all; the manifest allows the host identity only
 * (scmctl over the control socket: root or scmd's own user), and no
 * example profile grants "desktop", so everyone else is denied by
 * default. A profile may grant list and viewers (no secrets, no pixels)
 * to a container or endpoint; launch, app_add, app_remove, stop, show
 * (the secrets) and screenshot (the pixels) answer the host only,
 * whatever a profile says (NotAllowed).
 *
 * The manager owns what it starts: a desktop runs, with or without
 * viewers, until stop, or until the manager ends (scmd stopping,
 * unregistering "desktop", SIGTERM), which stops every desktop it runs. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scm/desktop-provider.h"
#include "scm/gfx-client.h"
#include "scm/macro.h"
#include "session.h"

static struct session S;
static volatile sig_atomic_t got_term;

static void on_term(int sig)
{
	got_term = sig;
}

static bool is_host(scm_call *call)
{
	const scm_grant *g = scm_call_grant(call);
	return g && g->caller && strcmp(g->caller, "host") == 0;
}

static int refuse(scm_call *call, const char *what)
{
	const scm_grant *g = scm_call_grant(call);
	return scm_call_reply_error(call, SCM_DESKTOP_E_NOTALLOWED, "%s is for the host only, not '%s'", what,
				    g && g->caller ? g->caller : "?");
}

static int reply_chain(scm_call *call, scm_error *e)
{
	int r = scm_call_reply_error_chain(call, e);
	scm_error_free(e);
	return r;
}

static struct desktop *find(scm_call *call, const char *name)
{
	struct desktop *d = session_find(&S, name);
	if (!d)
		scm_call_reply_error(call, SCM_DESKTOP_E_NODESKTOP, "no desktop '%s' is running", name);
	return d;
}

static int do_launch(scm_call *call, const char *spec_text, bool containers, uint64_t rfb_port, uint64_t ws_port,
		     uint64_t novnc_port, void *ud)
{
	if (!is_host(call))
		return refuse(call, "launch");
	desktop_spec *spec = NULL;
	char err[256];
	int r = desktop_spec_parse(spec_text, strlen(spec_text), &spec, err, sizeof(err));
	if (r)
		return r < 0 ? r : scm_call_reply_error(call, SCM_DESKTOP_E_BADSPEC, "%s", err);
	struct desktop *d = NULL;
	scm_error *e = NULL;
	r = session_launch(&S, spec, containers, (unsigned)(rfb_port > 65536 ? 65536 : rfb_port),
			   (unsigned)(ws_port > 65536 ? 65536 : ws_port), (unsigned)(novnc_port > 65536 ? 65536 : novnc_port),
			   &d, &e);
	desktop_spec_free(spec);
	if (r != 0)
		return reply_chain(call, e);
	fprintf(stderr, "desktop %s: launched (%zu apps, vnc 127.0.0.1:%u)\n", d->name, d->n_apps, d->rfb_port);
	json_object *o = session_desktop_json(d, true);
	r = scm_desktop_launch_reply(call, o);
	json_object_put(o);
	return r;
}

/* The proxy's stats for one desktop, or NULL. */
static json_object *proxy_stats(const struct desktop *d)
{
	scm_channel *ch = NULL;
	json_object *stats = NULL;
	scm_error *e = NULL;
	if (scmd_channel(&S, d->service, &ch, &e) == 0)
		(void)scm_gfx_stats(ch, &stats, &e);
	scm_channel_free(ch);
	scm_error_free(e);
	return stats;
}

static int do_list(scm_call *call, void *ud)
{
	json_object *arr = json_object_new_array();
	for (struct desktop *d = S.desktops; d; d = d->next) {
		json_object *o = session_desktop_json(d, false), *stats = proxy_stats(d), *v;
		if (stats && json_object_object_get_ex(stats, "viewers", &v))
			json_object_object_add(o, "viewers", json_object_get(v));
		if (stats && json_object_object_get_ex(stats, "viewer_list", &v))
			json_object_object_add(o, "viewer_list", json_object_get(v));
		json_object_put(stats);
		json_object_array_add(arr, o);
	}
	int r = scm_desktop_list_reply(call, arr);
	json_object_put(arr);
	return r;
}

static int do_show(scm_call *call, const char *name, void *ud)
{
	if (!is_host(call))
		return refuse(call, "show (the viewer secrets)");
	struct desktop *d = find(call, name);
	if (!d)
		return 0;
	json_object *o = session_desktop_json(d, true), *stats = proxy_stats(d);
	json_object_object_add(o, "stats", stats);
	int r = scm_desktop_show_reply(call, o);
	json_object_put(o);
	return r;
}

static int do_viewers(scm_call *call, const char *name, void *ud)
{
	struct desktop *d = find(call, name);
	if (!d)
		return 0;
	json_object *stats = proxy_stats(d), *v, *list = NULL;
	if (stats && json_object_object_get_ex(stats, "viewer_list", &v))
		list = json_object_get(v);
	json_object_put(stats);
	if (!list)
		return scm_call_reply_error(call, SCM_DESKTOP_E_START, "the graphics proxy %s did not answer", d->service);
	int r = scm_desktop_viewers_reply(call, list);
	json_object_put(list);
	return r;
}

static int do_screenshot(scm_call *call, const char *name, int file, void *ud)
{
	if (!is_host(call))
		return refuse(call, "screenshot");
	struct desktop *d = find(call, name);
	if (!d)
		return 0;
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	int r = scmd_channel(&S, d->service, &ch, &e);
	if (r == 0)
		r = scm_gfx_snapshot(ch, file, &e);
	scm_channel_free(ch);
	if (r != 0)
		return reply_chain(call, e);
	return scm_desktop_screenshot_reply(call);
}

static int do_app_add(scm_call *call, const char *name, struct json_object *app, void *ud)
{
	if (!is_host(call))
		return refuse(call, "app_add");
	struct desktop *d = find(call, name);
	if (!d)
		return 0;
	desktop_app spec;
	char err[256];
	int r = desktop_app_parse(app, d->width, d->height, &spec, err, sizeof(err));
	if (r)
		return r < 0 ? r : scm_call_reply_error(call, SCM_DESKTOP_E_BADSPEC, "%s", err);
	struct session_app *a = NULL;
	scm_error *e = NULL;
	if (session_app_add(&S, d, &spec, &a, &e) != 0)
		return reply_chain(call, e);
	fprintf(stderr, "desktop %s: app %s added\n", d->name, a->spec.name);
	json_object *o = session_app_json(a);
	r = scm_desktop_app_add_reply(call, o);
	json_object_put(o);
	return r;
}

static int do_app_remove(scm_call *call, const char *name, const char *app, void *ud)
{
	if (!is_host(call))
		return refuse(call, "app_remove");
	struct desktop *d = find(call, name);
	if (!d)
		return 0;
	scm_error *e = NULL;
	if (session_app_remove(&S, d, app, &e) != 0)
		return reply_chain(call, e);
	fprintf(stderr, "desktop %s: app %s removed\n", d->name, app);
	return scm_desktop_app_remove_reply(call);
}

static int do_stop(scm_call *call, const char *name, void *ud)
{
	if (!is_host(call))
		return refuse(call, "stop");
	struct desktop *d = find(call, name);
	if (!d)
		return 0;
	session_stop(&S, d);
	fprintf(stderr, "desktop %s: stopped\n", name);
	return scm_desktop_stop_reply(call);
}

static const scm_desktop_handlers handlers = {
	.launch = do_launch,
	.list = do_list,
	.show = do_show,
	.viewers = do_viewers,
	.screenshot = do_screenshot,
	.app_add = do_app_add,
	.app_remove = do_app_remove,
	.stop = do_stop,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "runtime-dir", required_argument, NULL, 'r' },
					      { "user", required_argument, NULL, 'u' },
					      {} };
	int c;
	S.user = 65534;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': S.runtime_dir = optarg; break;
		case 'u': {
			char *end;
			S.user = strtoul(optarg, &end, 10);
			if (*end || optarg[0] == '-' || S.user >= 0xffffffffUL) {
				fprintf(stderr, "scm-desktop-session: --user wants a uid, got '%s'\n", optarg);
				return 2;
			}
			break;
		}
		default:
			fprintf(stderr, "usage: scm-desktop-session --runtime-dir DIR [--user UID]\n");
			return 2;
		}
	}
	if (!S.runtime_dir) {
		fprintf(stderr, "scm-desktop-session: --runtime-dir (scmd's) is needed to reach scmd\n");
		return 2;
	}
	/* The programs beside this one: scm-gfx-proxy, scm-desktop-app. */
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return 1;
	exe[n] = 0;
	*strrchr(exe, '/') = 0;
	S.libexec = exe;

	struct sigaction sa = { .sa_handler = on_term }; /* no SA_RESTART: epoll_wait returns */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	scm_desktop_skeleton sk = { &handlers, NULL };
	scm_provider *p = NULL;
	scm_error *err = NULL;
	int r = scm_desktop_provider_new(&sk, &p, &err);
	if (r == 0)
		session_leftovers(&S);
	/* A second's timeout: the apps and page servers run here without
	 * containers, and are reaped between calls. */
	while (r == 0 && !got_term && (r = scm_provider_dispatch(p, 1000, &err)) == 0)
		session_reap(&S);
	while (S.desktops) {
		fprintf(stderr, "desktop %s: stopped as the session manager ends\n", S.desktops->name);
		session_stop(&S, S.desktops);
	}
	scm_provider_free(p);
	if (r < 0) {
		fprintf(stderr, "scm-desktop-session: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		return 1;
	}
	return 0;
}
