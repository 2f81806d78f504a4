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
#include <inttypes.h>
#include <signal.h>
#include <sys/epoll.h>
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

/* A desktop is its owner's (the uid that launched it) and root's: the
 * host identity is root or scmd's own user (the control socket admits no
 * one else), and a rootless scmd's user does not drive or see what root
 * launched there, nor the reverse. */
static bool is_owner(scm_call *call, const struct desktop *d)
{
	const scm_grant *g = scm_call_grant(call);
	return is_host(call) && (g->uid == 0 || g->uid == d->owner);
}

static int refuse(scm_call *call, const char *what)
{
	const scm_grant *g = scm_call_grant(call);
	return scm_call_reply_error(call, SCM_DESKTOP_E_NOTALLOWED, "%s is for the host only, not '%s'", what,
				    g && g->caller ? g->caller : "?");
}

static int refuse_owner(scm_call *call, const char *what, const struct desktop *d)
{
	const scm_grant *g = scm_call_grant(call);
	return scm_call_reply_error(call, SCM_DESKTOP_E_NOTALLOWED,
				    "%s of desktop %s is for its owner (uid %u) and root only, not uid %u", what, d->name,
				    (unsigned)d->owner, g ? (unsigned)g->uid : 0);
}

static int reply_chain(scm_call *call, scm_error *e)
{
	int r = scm_call_reply_error_chain(call, e);
	scm_error_free(e);
	return r;
}

/* A desktop that answers: running, or (any) starting with operations
 * queued behind its launch; not one being stopped. */
static struct desktop *find(scm_call *call, const char *name, bool running)
{
	struct desktop *d = session_find(&S, name);
	if (!d || d->stop_queued)
		scm_call_reply_error(call, SCM_DESKTOP_E_NODESKTOP, "no desktop '%s' is running%s", name,
				     d ? " (it is being stopped)" : "");
	else if (running && d->state != DESKTOP_RUNNING)
		scm_call_reply_error(call, SCM_DESKTOP_E_NODESKTOP, "desktop '%s' is being launched: not running yet", name);
	else
		return d;
	return NULL;
}

/* A spec the parser refused: BadSpec with the parser's whole chain. */
static int bad_spec(scm_call *call, int r, scm_error *e)
{
	_cleanup_free_ char *text = e ? scm_error_text(e) : NULL;
	scm_error_free(e);
	if (!text)
		return r < 0 ? r : -ENOMEM;
	return scm_call_reply_error(call, SCM_DESKTOP_E_BADSPEC, "%s", text);
}

static int do_launch(scm_call *call, const char *spec_text, bool containers, uint64_t rfb_port, uint64_t ws_port,
		     uint64_t novnc_port, void *ud)
{
	if (!is_host(call))
		return refuse(call, "launch");
	desktop_spec *spec = NULL;
	scm_error *pe = NULL;
	int r = desktop_spec_parse(spec_text, strlen(spec_text), &spec, &pe);
	if (r)
		return bad_spec(call, r, pe);
	/* Answered when the desktop is up (or is not); the loop goes on. */
	return session_op_launch(&S, call, spec, containers, (unsigned)(rfb_port > 65536 ? 65536 : rfb_port),
				 (unsigned)(ws_port > 65536 ? 65536 : ws_port),
				 (unsigned)(novnc_port > 65536 ? 65536 : novnc_port), scm_call_grant(call)->uid);
}

/* The proxy's stats for one desktop, or NULL: asked on the channel the
 * manager keeps to it, so a proxy that ended is not started from here
 * (its resync does that) and no call waits for scmd. */
static json_object *proxy_stats(const struct desktop *d)
{
	json_object *stats = NULL;
	scm_error *e = NULL;
	if (d->state == DESKTOP_RUNNING && d->watch)
		(void)scm_gfx_stats(d->watch, &stats, &e);
	scm_error_free(e);
	return stats;
}

/* The size the desktop has now: a viewer may have resized it
 * (SetDesktopSize, when the spec allows), which only the proxy knows.
 * "size" is the proxy's when it answered, "spec_size" the spec's. */
static void current_size(json_object *o, json_object *stats)
{
	json_object *w, *h, *spec;
	if (!json_object_object_get_ex(o, "size", &spec))
		return;
	json_object_object_add(o, "spec_size", json_object_get(spec));
	if (!stats || !json_object_object_get_ex(stats, "width", &w) || !json_object_object_get_ex(stats, "height", &h))
		return;
	char buf[64];
	snprintf(buf, sizeof(buf), "%" PRId64 "x%" PRId64, json_object_get_int64(w), json_object_get_int64(h));
	json_object_object_add(o, "size", json_object_new_string(buf));
}

/* While the proxy is being started again, the secrets are the old ones. */
static void mark_restarting(json_object *o, const struct desktop *d)
{
	if (d->state == DESKTOP_RUNNING && !d->watch)
		json_object_object_add(o, "proxy", json_object_new_string("restarting"));
}

/* Who is watching a desktop (addresses, view-only or not) is its owner's
 * business, and a profile's that grants `viewers` to someone else; another
 * host user sees how many, not who. */
static bool sees_viewers(scm_call *call, const struct desktop *d)
{
	return !is_host(call) || is_owner(call, d);
}

static int do_list(scm_call *call, void *ud)
{
	json_object *arr = json_object_new_array();
	for (struct desktop *d = S.desktops; d; d = d->next) {
		json_object *o = session_desktop_json(d, false), *stats = proxy_stats(d), *v;
		mark_restarting(o, d);
		current_size(o, stats);
		if (stats && json_object_object_get_ex(stats, "viewers", &v))
			json_object_object_add(o, "viewers", json_object_get(v));
		if (sees_viewers(call, d) && stats && json_object_object_get_ex(stats, "viewer_list", &v))
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
	struct desktop *d = find(call, name, true);
	if (!d)
		return 0;
	if (!is_owner(call, d))
		return refuse_owner(call, "show (the viewer secrets)", d);
	json_object *o = session_desktop_json(d, true), *stats = proxy_stats(d);
	mark_restarting(o, d);
	current_size(o, stats);
	json_object_object_add(o, "stats", stats);
	int r = scm_desktop_show_reply(call, o);
	json_object_put(o);
	return r;
}

static int do_viewers(scm_call *call, const char *name, void *ud)
{
	struct desktop *d = find(call, name, true);
	if (!d)
		return 0;
	if (!sees_viewers(call, d))
		return refuse_owner(call, "viewers", d);
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
	struct desktop *d = find(call, name, true);
	if (!d)
		return 0;
	if (!is_owner(call, d))
		return refuse_owner(call, "screenshot", d);
	if (!d->watch)
		return scm_call_reply_error(call, SCM_DESKTOP_E_START, "the graphics proxy %s is being started again",
					    d->service);
	scm_error *e = NULL;
	if (scm_gfx_snapshot(d->watch, file, &e) != 0)
		return reply_chain(call, e);
	return scm_desktop_screenshot_reply(call);
}

static int do_app_add(scm_call *call, const char *name, struct json_object *app, void *ud)
{
	if (!is_host(call))
		return refuse(call, "app_add");
	struct desktop *d = find(call, name, false);
	if (!d)
		return 0;
	if (!is_owner(call, d))
		return refuse_owner(call, "app_add", d);
	desktop_app spec;
	scm_error *pe = NULL;
	int r = desktop_app_parse(app, d->width, d->height, &spec, &pe);
	if (r)
		return bad_spec(call, r, pe);
	session_op_app_add(&S, call, d, &spec);
	return 0;
}

static int do_app_remove(scm_call *call, const char *name, const char *app, void *ud)
{
	if (!is_host(call))
		return refuse(call, "app_remove");
	struct desktop *d = find(call, name, false);
	if (!d)
		return 0;
	if (!is_owner(call, d))
		return refuse_owner(call, "app_remove", d);
	session_op_app_remove(&S, call, d, app);
	return 0;
}

static int do_stop(scm_call *call, const char *name, void *ud)
{
	if (!is_host(call))
		return refuse(call, "stop");
	struct desktop *d = find(call, name, false);
	if (!d)
		return 0;
	if (!is_owner(call, d))
		return refuse_owner(call, "stop", d);
	session_op_stop(&S, call, d);
	return 0;
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
	S.provider = p;
	/* One epoll for the provider and the channels kept to the proxies. */
	S.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event pev = { .events = EPOLLIN, .data.ptr = NULL };
	if (r == 0 && (S.epfd < 0 || epoll_ctl(S.epfd, EPOLL_CTL_ADD, scm_provider_fd(p), &pev) < 0))
		r = scm_fail(&err, -errno, "epoll: %m");
	if (r == 0)
		session_leftovers(&S);
	/* A second's timeout: the apps and page servers run here without
	 * containers, and are reaped between calls. */
	while (r == 0 && !got_term) {
		struct epoll_event ev[16];
		int nev = epoll_wait(S.epfd, ev, 16, 1000);
		bool provider = false;
		/* The proxies' channels first: a stop the provider's calls
		 * start takes its desktop's channel out of the set. */
		for (int i = 0; i < nev; i++) {
			struct desktop *d = ev[i].data.ptr;
			scm_error *e = NULL;
			if (!d)
				provider = true;
			else if (d->watch && (scm_channel_dispatch(d->watch, &e) != 0 ||
					      (ev[i].events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR))))
				session_op_proxy_gone(&S, d);
			scm_error_free(e);
		}
		if (provider)
			r = scm_provider_dispatch(p, 0, &err);
		session_reap(&S);
	}
	/* Workers give up their waits and are joined; their results are
	 * applied (and callers answered) as the provider is freed. */
	session_ops_quit(&S);
	scm_provider_free(p);
	while (S.desktops) {
		fprintf(stderr, "desktop %s: stopped as the session manager ends\n", S.desktops->name);
		session_stop(&S, S.desktops);
	}
	if (r < 0) {
		fprintf(stderr, "scm-desktop-session: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		return 1;
	}
	return 0;
}
