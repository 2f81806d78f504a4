/* session.c: one desktop's life, as scm-desktop-run lived it in shell:
 * register the proxy (gfx-NAME) and ask it for the viewer secrets (which
 * starts it, so a proxy that cannot start fails the launch at once), then
 * each app in spec order, waiting for its agent's line, so the proxy
 * places them in that order; then the optional noVNC page server.
 * Teardown is the same list backwards, best effort, and leaves no
 * container, endpoint or service behind. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "scm/desktop-provider.h"
#include "scm/gfx-client.h"
#include "scm/macro.h"
#include "session.h"

#define APP_WAIT_MS 20000
#define STEP_MS 50

void session_nap(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

struct desktop *session_find(struct session *s, const char *name)
{
	for (struct desktop *d = s->desktops; d; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

json_object *session_app_json(const struct session_app *a)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(a->spec.name));
	json_object_object_add(o, "identity", json_object_new_string(a->label));
	json_object_object_add(o, "x", json_object_new_int(a->x));
	json_object_object_add(o, "y", json_object_new_int(a->y));
	json_object_object_add(o, "border", json_object_new_string(a->border));
	json_object_object_add(o, "display", json_object_new_string(a->display));
	return o;
}

static char *novnc_url(const struct desktop *d, bool secrets)
{
	char *u = NULL;
	if (!d->novnc_port)
		return NULL;
	if (!secrets)
		return asprintf(&u, "http://127.0.0.1:%u/vnc.html", d->novnc_port) < 0 ? NULL : u;
	if (asprintf(&u, "http://127.0.0.1:%u/vnc.html#autoconnect=1&reconnect=true&host=127.0.0.1&port=%u&path=websockify%%3Ftoken%%3D%s&password=%s",
		     d->novnc_port, d->ws_port, d->token, d->password) < 0)
		return NULL;
	return u;
}

/* full: what is there so far even while starting (the state file). */
static json_object *desktop_json(const struct desktop *d, bool secrets, bool full)
{
	json_object *o = json_object_new_object(), *apps = json_object_new_array();
	char buf[64];
	static const char *const states[] = { "starting", "running", "stopping" };
	json_object_object_add(o, "name", json_object_new_string(d->name));
	json_object_object_add(o, "state", json_object_new_string(states[d->state]));
	json_object_object_add(o, "owner", json_object_new_int64((int64_t)d->owner));
	json_object_object_add(o, "pid", json_object_new_int(getpid())); /* its manager's */
	if (d->state != DESKTOP_RUNNING && !full) { /* a worker is changing the rest */
		json_object_put(apps);
		return o;
	}
	json_object_object_add(o, "service", json_object_new_string(d->service));
	if (d->restarts)
		json_object_object_add(o, "proxy_restarts", json_object_new_int64(d->restarts));
	json_object_object_add(o, "containers", json_object_new_boolean(d->containers));
	snprintf(buf, sizeof(buf), "%ux%u", d->width, d->height);
	json_object_object_add(o, "size", json_object_new_string(buf));
	for (size_t i = 0; i < d->n_apps; i++)
		json_object_array_add(apps, session_app_json(&d->apps[i]));
	json_object_object_add(o, "apps", apps);
	snprintf(buf, sizeof(buf), "127.0.0.1:%u", d->rfb_port);
	json_object_object_add(o, "vnc", json_object_new_string(buf));
	snprintf(buf, sizeof(buf), "127.0.0.1:%u", d->ws_port);
	json_object_object_add(o, "websocket", json_object_new_string(buf));
	char *u = novnc_url(d, secrets);
	if (u)
		json_object_object_add(o, "novnc", json_object_new_string(u));
	free(u);
	json_object_object_add(o, "security", json_object_new_string(d->security));
	if (d->tls_fingerprint[0]) {
		json_object_object_add(o, "tls_fingerprint", json_object_new_string(d->tls_fingerprint));
		/* RUNTIME/desktops/NAME.d -> NAME.pem, beside NAME.json */
		char *pem = NULL;
		size_t dl = d->dir ? strlen(d->dir) : 0;
		if (dl > 2 && asprintf(&pem, "%.*s.pem", (int)(dl - 2), d->dir) > 0)
			json_object_object_add(o, "tls_certificate", json_object_new_string(pem));
		free(pem);
	}
	if (secrets) {
		json_object_object_add(o, "password", json_object_new_string(d->password));
		json_object_object_add(o, "viewonly_password", json_object_new_string(d->viewonly));
		json_object_object_add(o, "token", json_object_new_string(d->token));
	}
	return o;
}

json_object *session_desktop_json(const struct desktop *d, bool secrets)
{
	return desktop_json(d, secrets, false);
}

/* RUNTIME/desktops/NAME.json: what `scmctl desktop` showed before there
 * was a session manager, kept for the owner: 0600 from the start (it
 * holds the secrets) in a 0700 directory. */
static void write_private(const char *p, const char *text, uid_t owner)
{
	_cleanup_free_ char *tmp = NULL;
	if (asprintf(&tmp, "%s.tmp", p) < 0)
		return;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		/* The owner's, when the manager may give it (root's scmd); a
		 * rootless scmd's manager keeps it as its own user's. */
		bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fchmod(fd, 0600) == 0 &&
			  (geteuid() != 0 || fchown(fd, owner, (gid_t)-1) == 0);
		close(fd);
		if (!ok || rename(tmp, p) < 0)
			unlink(tmp);
	}
}

void session_write_state(const struct session *s, const struct desktop *d)
{
	_cleanup_free_ char *p = NULL, *pem = NULL;
	if (asprintf(&p, "%s/desktops/%s.json", s->runtime_dir, d->name) < 0 ||
	    asprintf(&pem, "%s/desktops/%s.pem", s->runtime_dir, d->name) < 0)
		return;
	/* The X509Vnc certificate, for a viewer's CA file (its key stays in
	 * the proxy); written before the state that names it. */
	if (d->tls_cert[0])
		write_private(pem, d->tls_cert, d->owner);
	json_object *o = desktop_json(d, true, true);
	write_private(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
		      d->owner);
	json_object_put(o);
}

int session_make_dirs(const struct session *s, struct desktop *d)
{
	_cleanup_free_ char *top = NULL;
	if (asprintf(&top, "%s/desktops", s->runtime_dir) < 0 || asprintf(&d->dir, "%s/%s.d", top, d->name) < 0)
		return -ENOMEM;
	if (mkdir(top, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(d->dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* The desktop's own directory (0700, made at launch): app logs, the page
 * server's log, and what host apps left in the HOME they had there.
 * Symbolic links are removed, never followed. */
static void rm_dir(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static bool port_open(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	safe_close(fd);
	return ok;
}

/* Static pages only; they hold no secret (the URL's fragment does, and
 * never reaches this server), and it logs no requests all the same. */
static const char novnc_py[] =
	"import functools, http.server, sys\n"
	"class Quiet(http.server.SimpleHTTPRequestHandler):\n"
	"    def log_message(self, *args):\n"
	"        pass\n"
	"h = functools.partial(Quiet, directory='/usr/share/novnc')\n"
	"http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), h).serve_forever()\n";

pid_t session_spawn(char *const argv[], char *const env[], const char *out, const char *err)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* no link an app planted in the desktop's directory (its HOME) */
	int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	int e = err ? open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : o;
	dup2(null, 0);
	dup2(o >= 0 ? o : null, 1);
	dup2(e >= 0 ? e : null, 2);
	close_range(3, ~0U, 0);
	setsid();
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (size_t i = 0; env && env[i]; i++)
		putenv(env[i]);
	execvp(argv[0], argv);
	_exit(127);
}

int session_novnc_start(struct desktop *d, scm_error **ret_err)
{
	char port_s[16], logp[4096];
	snprintf(port_s, sizeof(port_s), "%u", d->novnc_port);
	snprintf(logp, sizeof(logp), "%s/novnc-http.log", d->dir);
	char *argv[] = { "python3", "-c", (char *)novnc_py, port_s, NULL };
	d->novnc_pid = session_spawn(argv, NULL, logp, NULL);
	for (int i = 0; i < 100 && !port_open(d->novnc_port); i++)
		session_nap(STEP_MS);
	if (!port_open(d->novnc_port))
		return scm_fail(ret_err, SCM_DESKTOP_E_START, "the noVNC page server on 127.0.0.1:%u did not start (see %s)",
				d->novnc_port, logp);
	return 0;
}

void session_kill_wait(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGTERM);
	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		pid_t w = waitpid(pid, NULL, WNOHANG);
		if (w == pid || (w < 0 && errno == ECHILD))
			return;
		session_nap(STEP_MS);
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* An app's container that has exited will not say "agent" any more. */
static bool container_ended(const struct session *s, const char *name)
{
	json_object *a = json_object_new_object(), *res = NULL, *v;
	scm_error *e = NULL;
	json_object_object_add(a, "name", json_object_new_string(name));
	bool ended = scmd_request(s, "container.show", a, &res, NULL, 0, &e) == 0 &&
		     json_object_object_get_ex(res, "state", &v) && strcmp(json_object_get_string(v), "exited") == 0;
	json_object_put(a);
	json_object_put(res);
	scm_error_free(e);
	return ended;
}

int session_start_app(struct session *s, const struct desktop *d, struct session_app *a, scm_error **ret_err)
{
	char weight[40], svc[128], size[32], logp[4096], errp[4096], app[4096], line[256];
	int r;
	snprintf(weight, sizeof(weight), "SCM_GFX_WEIGHT=%u", a->spec.weight);
	snprintf(svc, sizeof(svc), "SCM_GFX_SERVICE=%s", d->service);
	snprintf(size, sizeof(size), "%ux%u", a->spec.width, a->spec.height);
	snprintf(app, sizeof(app), "%s/scm-desktop-app", s->libexec);
	snprintf(logp, sizeof(logp), "%s/%s.out", d->dir, a->spec.name);
	snprintf(errp, sizeof(errp), "%s/%s.err", d->dir, a->spec.name);
	if (d->containers) {
		json_object *r_args = json_object_new_object(), *av = json_object_new_array(), *env = json_object_new_array(),
			    *prof = json_object_new_array();
		json_object_array_add(av, json_object_new_string(app));
		json_object_array_add(av, json_object_new_string("--size"));
		json_object_array_add(av, json_object_new_string(size));
		json_object_array_add(av, json_object_new_string("--"));
		for (char **c = a->spec.command; *c; c++)
			json_object_array_add(av, json_object_new_string(*c));
		for (char **p = a->spec.profiles; *p; p++)
			json_object_array_add(prof, json_object_new_string(*p));
		json_object_array_add(env, json_object_new_string(svc));
		json_object_array_add(env, json_object_new_string(weight));
		json_object_object_add(r_args, "name", json_object_new_string(a->label));
		json_object_object_add(r_args, "uid", json_object_new_int64((int64_t)s->user));
		json_object_object_add(r_args, "gid", json_object_new_int64((int64_t)s->user));
		json_object_object_add(r_args, "argv", av);
		json_object_object_add(r_args, "profiles", prof);
		json_object_object_add(r_args, "env", env);
		json_object_object_add(r_args, "attach", json_object_new_boolean(false));
		r = scmd_request(s, "container.run", r_args, NULL, NULL, 0, ret_err);
		json_object_put(r_args);
		if (r != 0)
			goto fail;
	} else {
		json_object *ea = json_object_new_object();
		json_object_object_add(ea, "name", json_object_new_string(a->label));
		r = scmd_request(s, "endpoint.create", ea, NULL, NULL, 0, ret_err);
		json_object_put(ea);
		if (r != 0)
			goto fail;
		char ep[4096];
		snprintf(ep, sizeof(ep), "SCM_ENDPOINT=%s/endpoints/%s.sock", s->runtime_dir, a->label);
		char *argv[8 + 64] = { app, "--size", size, "--" };
		size_t k = 4;
		for (char **c = a->spec.command; *c && k < 8 + 63; c++)
			argv[k++] = *c;
		/* A HOME of the desktop's own (0700): the app's shell must not
		 * wait on, or write to, the host user's dotfiles. */
		char home[4096];
		snprintf(home, sizeof(home), "HOME=%s", d->dir);
		char *env[] = { ep, svc, weight, home, NULL };
		a->pid = session_spawn(argv, env, logp, errp);
		if (a->pid < 0) {
			r = scm_fail(ret_err, -errno, "fork: %m");
			goto fail;
		}
	}
	/* One app at a time, so that the proxy places them in spec order. */
	r = -ENOENT;
	for (int waited = 0; waited < APP_WAIT_MS && r != 0 && !atomic_load(&s->quitting); waited += STEP_MS) {
		r = scmd_container_agent_line(s, d->containers ? a->label : logp, line, sizeof(line));
		if (r == 0)
			break;
		if (!d->containers && waitpid(a->pid, NULL, WNOHANG) == a->pid) {
			a->pid = 0;
			break;
		}
		if (d->containers && waited % 1000 == 0 && container_ended(s, a->label))
			break;
		session_nap(STEP_MS);
	}
	if (r != 0) {
		char tail[512] = "";
		int fd = d->containers ? -1 : open(errp, O_RDONLY | O_CLOEXEC);
		ssize_t k = fd >= 0 ? read(fd, tail, sizeof(tail) - 1) : 0;
		tail[k > 0 ? k : 0] = 0;
		safe_close(fd);
		r = scm_fail(ret_err, SCM_DESKTOP_E_START, "app %s did not come up%s%s%s", a->spec.name,
			     d->containers ? " (see scmctl container logs " : ": ", d->containers ? a->label : tail,
			     d->containers ? ")" : "");
		goto fail;
	}
	/* agent :N WxH at X,Y border #RRGGBB */
	if (sscanf(line, "agent %15s %*s at %d,%d border %15s", a->display, &a->x, &a->y, a->border) != 4) {
		r = scm_fail(ret_err, SCM_DESKTOP_E_START, "app %s: unexpected agent line '%s'", a->spec.name, line);
		goto fail;
	}
	return 0;
fail:
	return scm_fail(ret_err, r > 0 && r >= 100 ? r : SCM_DESKTOP_E_START, "starting app %s of desktop %s",
			     a->spec.name, d->name);
}

/* Its container, or its process and endpoint; the spec stays. */
void session_stop_app_procs(struct session *s, const struct desktop *d, struct session_app *a)
{
	if (d->containers) {
		scmd_container_remove(s, a->label);
	} else {
		session_kill_wait(a->pid);
		a->pid = 0;
		json_object *ea = json_object_new_object();
		scm_error *e = NULL;
		json_object_object_add(ea, "name", json_object_new_string(a->label));
		(void)scmd_request(s, "endpoint.remove", ea, NULL, NULL, 0, &e);
		scm_error_free(e);
		json_object_put(ea);
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s.out", d->dir, a->spec.name);
		unlink(p);
		snprintf(p, sizeof(p), "%s/%s.err", d->dir, a->spec.name);
		unlink(p);
	}
}

static void stop_app(struct session *s, struct desktop *d, struct session_app *a)
{
	session_stop_app_procs(s, d, a);
	desktop_app_clear(&a->spec);
}

/* The proxy learns who may draw: exactly the apps running now. */
int session_tell_proxy_apps(const struct session *s, const struct desktop *d, const char *extra, const char *skip,
			   scm_error **ret_err)
{
	scm_channel *ch = NULL;
	json_object *l = json_object_new_array();
	for (size_t i = 0; i < d->n_apps; i++)
		if (!skip || strcmp(d->apps[i].label, skip) != 0)
			json_object_array_add(l, json_object_new_string(d->apps[i].label));
	if (extra)
		json_object_array_add(l, json_object_new_string(extra));
	int r = scmd_channel(s, d->service, &ch, ret_err);
	if (r == 0)
		r = scm_gfx_set_apps(ch, l, ret_err);
	json_object_put(l);
	scm_channel_free(ch);
	return r;
}

/* The caller the proxy will see: a container's name (1..48) or an
 * endpoint's (1..64), so long desktop and app names together may not fit. */
int session_set_label(const struct desktop *d, struct session_app *a, const char *where, scm_error **ret_err)
{
	size_t max = d->containers ? 48 : 64;
	int n = snprintf(a->label, sizeof(a->label), d->containers ? "%s-%s" : "desktop-%s-%s", d->name, a->spec.name);
	if (n < 0 || (size_t)n > max)
		return scm_fail(ret_err, SCM_DESKTOP_E_BADSPEC, "%s/name: '%s' is over %zu characters, the longest %s name",
				where, a->label, max, d->containers ? "container" : "endpoint");
	return 0;
}

void session_desktop_free(struct desktop *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_apps; i++)
		desktop_app_clear(&d->apps[i].spec);
	scm_channel_free(d->watch);
	free(d->name);
	free(d->service);
	free(d->dir);
	free(d);
}

void session_teardown(struct session *s, struct desktop *d, bool registered)
{
	session_kill_wait(d->novnc_pid);
	d->novnc_pid = 0;
	for (size_t i = d->n_apps; i-- > 0;)
		stop_app(s, d, &d->apps[i]);
	d->n_apps = 0;
	if (registered) {
		json_object *a = json_object_new_object(), *res = NULL, *arr;
		scm_error *e = NULL;
		json_object_object_add(a, "name", json_object_new_string(d->service));
		(void)scmd_request(s, "service.unregister", a, NULL, NULL, 0, &e);
		json_object_put(a);
		scm_error_free(e);
		e = NULL;
		/* Unregistering stops the proxy's container; its record
		 * (provider-gfx-NAME-N, one per activation) goes too. */
		char prefix[160];
		snprintf(prefix, sizeof(prefix), "provider-%s-", d->service);
		if (d->containers && scmd_request(s, "container.list", NULL, &res, NULL, 0, &e) == 0 &&
		    json_object_object_get_ex(res, "containers", &arr)) {
			for (size_t i = 0; i < json_object_array_length(arr); i++) {
				json_object *n = json_object_object_get(json_object_array_get_idx(arr, i), "name");
				const char *nm = n ? json_object_get_string(n) : "";
				if (strncmp(nm, prefix, strlen(prefix)) == 0 && strspn(nm + strlen(prefix), "0123456789") ==
											 strlen(nm + strlen(prefix)))
					scmd_container_remove(s, nm);
			}
		}
		json_object_put(res);
		scm_error_free(e);
	}
	if (d->dir) {
		rm_dir(d->dir);
		char p[4096];
		snprintf(p, sizeof(p), "%s/desktops/%s.json", s->runtime_dir, d->name);
		unlink(p);
		snprintf(p, sizeof(p), "%s/desktops/%s.pem", s->runtime_dir, d->name);
		unlink(p);
	}
}


/* Checked on the loop, before the worker: the name is free, there is room,
 * and the label fits. */
int session_app_check(struct session *s, struct desktop *d, struct session_app *a, scm_error **ret_err)
{
	(void)s;
	for (size_t i = 0; i < d->n_apps; i++)
		if (strcmp(d->apps[i].spec.name, a->spec.name) == 0)
			return scm_fail(ret_err, SCM_DESKTOP_E_EXISTS, "desktop %s has an app %s already", d->name,
					a->spec.name);
	if (d->n_apps == SESSION_APPS_MAX)
		return scm_fail(ret_err, SCM_DESKTOP_E_BADSPEC, "desktop %s has %d apps, the most it may", d->name,
				SESSION_APPS_MAX);
	return session_set_label(d, a, "/app", ret_err);
}

int session_app_add_work(struct session *s, struct desktop *d, struct session_app *a, scm_error **ret_err)
{
	/* The proxy first, so the app's surface is let in. */
	int r = session_tell_proxy_apps(s, d, a->label, NULL, ret_err);
	if (r != 0)
		return scm_fail(ret_err, SCM_DESKTOP_E_START, "telling %s about app %s", d->service, a->spec.name);
	r = session_start_app(s, d, a, ret_err);
	if (r != 0) {
		session_stop_app_procs(s, d, a);
		scm_error *e = NULL;
		(void)session_tell_proxy_apps(s, d, NULL, NULL, &e);
		scm_error_free(e);
	}
	return r;
}

void session_app_remove_work(struct session *s, struct desktop *d, struct session_app *a)
{
	/* Stopping the app closes its channel: the proxy drops its surface. */
	session_stop_app_procs(s, d, a);
	scm_error *e = NULL;
	(void)session_tell_proxy_apps(s, d, NULL, a->label, &e);
	scm_error_free(e);
}

void session_unlist(struct session *s, struct desktop *d)
{
	for (struct desktop **p = &s->desktops; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	session_desktop_free(d);
}

void session_stop(struct session *s, struct desktop *d)
{
	session_teardown(s, d, true);
	session_unlist(s, d);
}

/* Apps on the host and page servers are this process's children; those
 * of a desktop an operation is using are its worker's to wait for (and a
 * pid reaped here could be reused before the worker signals it). */
void session_reap(struct session *s)
{
	for (struct desktop *d = s->desktops; d; d = d->next) {
		if (d->ops || d->state != DESKTOP_RUNNING)
			continue;
		if (d->novnc_pid > 0 && waitpid(d->novnc_pid, NULL, WNOHANG) == d->novnc_pid)
			d->novnc_pid = 0;
		for (size_t i = 0; i < d->n_apps; i++)
			if (d->apps[i].pid > 0 && waitpid(d->apps[i].pid, NULL, WNOHANG) == d->apps[i].pid)
				d->apps[i].pid = 0;
	}
}
