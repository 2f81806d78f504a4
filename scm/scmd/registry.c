/* registry.c: services and their providers.
 *
 * A service comes from a JSON manifest (manifest.c): name, interface (an
 * IDL found on the IDL path), the provider's command, activation
 * (on-demand or always), restart policy with exponential backoff,
 * activation timeout, and until the policy engine decides, an allow list
 * of endpoint labels. scmd starts
 * the provider with one end of a control socketpair as fd 3
 * ($SCM_PROVIDER_FD); the provider says "ready" over it, then receives
 * channels. A provider that does not say ready in time is killed, and the
 * connects waiting for it get a clear error. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include "scm-internal/wire.h"
#include "scmd.h"
#include "scm-internal/error.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 30000
#define STABLE_USEC (10 * 1000000ull) /* up this long: the next failure starts backoff afresh */

static void provider_ctl_io(struct scmd *d, struct watch *w, uint32_t events);
static void service_timer(struct scmd *d, struct watch *w, uint32_t events);

struct service *service_find(struct scmd *d, const char *name)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &d->services)
	{
		struct service *s = list_entry(p, struct service, node);
		if (strcmp(s->name, name) == 0)
			return s;
	}
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP(scm_idl *, scm_idl_free)

/* Finds NAME.json on the colon-separated IDL path. */
static char *find_idl(struct scmd *d, const char *iface)
{
	_cleanup_free_ char *path = strdup(d->idl_path);
	char *save = NULL;

	for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *f;
		if (asprintf(&f, "%s/%s.json", dir, iface) < 0)
			return NULL;
		if (access(f, R_OK) == 0)
			return f;
		free(f);
	}
	return NULL;
}

/* Reads a whole file of at most max bytes; a service keeps its IDL text
 * for as long as it is registered, so allocate what the file needs. */
static char *read_text(const char *path, size_t max)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	struct stat st;
	if (!f || fstat(fileno(f), &st) < 0)
		return NULL;
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
	if (buf)
		buf[n] = 0;
	return buf;
}

int service_register(struct scmd *d, json_object *m, const char *origin, struct service **ret,
		     scm_error **ret_err)
{
	_cleanup_(manifest_done) struct manifest mf = { 0 };

	if (manifest_parse(m, origin, &mf, ret_err) != 0)
		return SCM_E_INVALID;
	if (service_find(d, mf.name))
		return scm_fail(ret_err, SCM_E_EXISTS, "%s: service '%s' is registered already", origin, mf.name);

	_cleanup_(scm_idl_freep) scm_idl *idl = NULL;
	_cleanup_free_ char *idl_path = find_idl(d, mf.iface), *idl_text = NULL;
	if (!idl_path)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "%s: /interface: no %s.json on the IDL path %s",
				origin, mf.iface, d->idl_path);
	idl_text = read_text(idl_path, 1024 * 1024);
	if (!idl_text || scm_idl_parse(idl_text, strlen(idl_text), idl_path, &idl, ret_err) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: /interface: unusable definition", origin);
	/* the live profiles, linted again with this service in view */
	if (scmd_policy_check_grant_rules(idl, idl_path, ret_err) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: /interface: unusable definition", origin);
	if (scmd_policy_check_service(d, mf.name, idl->name, ret_err) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: policy check", origin);

	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0)
		return scm_fail(ret_err, -errno, "timerfd: %m");
	struct service *s = calloc(1, sizeof(*s));
	if (!s) {
		close(tfd);
		return -ENOMEM;
	}
	s->name = TAKE_PTR(mf.name);
	s->iface_name = strdup(idl->name);
	s->manifest_path = strdup(origin);
	s->idl = TAKE_PTR(idl);
	s->idl_path = TAKE_PTR(idl_path);
	s->idl_text = TAKE_PTR(idl_text);
	s->exec = TAKE_PTR(mf.exec);
	s->allow = TAKE_PTR(mf.allow);
	s->activation = mf.activation;
	s->restart = mf.restart;
	s->timeout_ms = mf.timeout_ms;
	s->in_container = mf.in_container;
	s->recover = mf.recover;
	s->container_profiles = TAKE_PTR(mf.container_profiles);
	s->manifest_json = strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	s->ctl.fd = -1;
	s->ctl.fn = provider_ctl_io;
	s->timer = (struct watch){ tfd, service_timer };
	s->backoff_ms = BACKOFF_MIN_MS;
	list_init(&s->pending);
	list_init(&s->channels);
	watch_add(d, &s->timer, EPOLLIN);
	list_add(d->services.prev, &s->node);
	if (s->activation == ACT_ALWAYS)
		service_activate(d, s);
	if (ret)
		*ret = s;
	return 0;
}

int service_load_file(struct scmd *d, const char *path, scm_error **ret_err)
{
	_cleanup_free_ char *text = read_text(path, 1024 * 1024);
	json_object *m = NULL;
	int r;

	if (!text)
		return scm_fail(ret_err, -errno, "cannot read manifest %s: %m", path);
	r = scm_json_parse(text, strlen(text), &m, ret_err);
	if (r != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "%s: not a valid manifest", path);
	r = service_register(d, m, path, NULL, ret_err);
	json_object_put(m);
	return r;
}

/* Resolves a provider command: a bare name is looked up in scmd's libexec
 * directory first (../libexec/scm as installed, ../libexec in a build
 * tree), then on $PATH (by execvp). */
char *scmd_libexec_path(const char *cmd)
{
	if (strchr(cmd, '/'))
		return strdup(cmd);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = 0;
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = 0;
			static const char *const dirs[] = { "libexec/scm", "libexec" };
			for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
				char *f;
				if (asprintf(&f, "%s/../%s/%s", exe, dirs[i], cmd) < 0)
					break;
				if (access(f, X_OK) == 0)
					return f;
				free(f);
			}
		}
	}
	return strdup(cmd);
}

static void provider_kill(struct scmd *d, struct service *s, int sig)
{
	scm_error *e = NULL;
	if (s->in_container) {
		if (s->container_name && scmd_ctr_signal(d, s->container_name, sig, &e) != 0)
			scm_error_free(e);
	} else if (s->pid > 0)
		kill(s->pid, sig);
}

static void provider_failed(struct scmd *d, struct service *s, int code, const char *fmt, ...)
	_printf_(4, 5);
static void provider_failed(struct scmd *d, struct service *s, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = scm_error_newv(code, "scmd/activation", fmt, ap);
	va_end(ap);
	e = scm_error_wrap(e, SCM_E_ACTIVATION, "scmd/activation", "service '%s' could not be activated",
			   s->name);
	broker_fail_pending(d, s, e);
	scm_error_free(e);
}

/* The provider in a container of its own: its endpoint is its control
 * socket, which its skeleton connects to ($SCM_PROVIDER_ENDPOINT). Returns
 * once the child is cloned: a launch that fails later or hangs comes back
 * through service_container_failed (or the activation timer), with
 * pending connects answered either way. */
static void activate_in_container(struct scmd *d, struct service *s)
{
	_cleanup_free_ char *prog = scmd_libexec_path(s->exec[0]);
	char *name = NULL;
	pid_t pid = -1;
	scm_error *e = NULL;
	if (!prog || provider_ctr_start(d, s, prog, false, &name, &pid, &e) != 0) {
		e = scm_error_wrap(e, SCM_E_ACTIVATION, "scmd/activation", "service '%s' could not be activated", s->name);
		broker_fail_pending(d, s, e);
		scm_error_free(e);
		return;
	}
	free(s->container_name);
	s->container_name = name;
	s->pid = pid;
	s->n_activations++;
	s->started_at = now_usec();
	s->state = P_STARTING;
	timer_arm(&s->timer, s->timeout_ms);
}

void service_provider_connected(struct scmd *d, struct service *s, const char *ep_name, int fd)
{
	if (s->ho && svc_restart_connected(d, s, ep_name, fd))
		return;
	/* one control connection per activation, from its container only (a
	 * replaced one may still be exiting) */
	if (s->state != P_STARTING || s->ctl.fd >= 0 || !s->container_name || strcmp(ep_name, s->container_name) != 0) {
		close(fd);
		return;
	}
	s->ctl.fd = fd;
	watch_add(d, &s->ctl, EPOLLIN);
}

void service_activate(struct scmd *d, struct service *s)
{
	if (s->state != P_STOPPED || s->unregistering || d->restoring)
		return;
	if (s->in_container) {
		activate_in_container(d, s);
		return;
	}
	_cleanup_free_ char *prog = scmd_libexec_path(s->exec[0]);
	pid_t pid = -1;
	int ctl = -1;
	scm_error *e = NULL;
	int r = provider_spawn(d, s, prog, false, &pid, &ctl, &e);
	if (pid < 0) {
		e = scm_error_wrap(e, SCM_E_ACTIVATION, "scmd/activation", "service '%s' could not be activated",
				   s->name);
		broker_fail_pending(d, s, e);
		scm_error_free(e);
		return;
	}
	s->pid = pid;
	s->n_activations++;
	s->started_at = now_usec();
	s->ctl.fd = ctl;
	watch_add(d, &s->ctl, EPOLLIN);
	s->state = P_STARTING;
	if (r != 0) {
		/* Reaped by SIGCHLD as usual; fail the waiters now with the cause. */
		e = scm_error_wrap(e, SCM_E_ACTIVATION, "scmd/activation", "service '%s' could not be activated",
				   s->name);
		broker_fail_pending(d, s, e);
		scm_error_free(e);
		s->state = P_STOPPING;
		return;
	}
	timer_arm(&s->timer, s->timeout_ms);
}

static void provider_ready(struct scmd *d, struct service *s)
{
	if (s->state != P_STARTING)
		return;
	s->state = P_READY;
	timer_arm(&s->timer, 0);
	broker_flush_pending(d, s);
}

#define CTL_QUEUE_MAX 4096 /* frames waiting for a provider that does not read */

int service_send(struct scmd *d, struct service *s, uint8_t type, uint16_t flags,
		 json_object *body, const int *fds, size_t n_fds)
{
	size_t len = 0;
	const char *t = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);

	if (s->ctl.fd < 0)
		return -ENOTCONN;
	if (s->ctl_q.frames >= CTL_QUEUE_MAX)
		return SCM_E_BUSY;
	int r = scm_outq_send(s->ctl.fd, &s->ctl_q, type, flags, 0, 1, t, len, NULL, 0, fds, n_fds);
	if (r == 1)
		watch_mod(d, &s->ctl, EPOLLIN | EPOLLOUT);
	return r < 0 ? r : 0;
}

int service_reply(struct scmd *d, struct service *s, uint32_t call_id, json_object *body, const int *fds,
		  size_t n_fds)
{
	size_t len = 0;
	const char *t = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	if (s->ctl.fd < 0)
		return -ENOTCONN;
	int r = scm_outq_send(s->ctl.fd, &s->ctl_q, SCM_FRAME_REPLY, 0, call_id, 0, t, len, NULL, 0, fds, n_fds);
	if (r == 1)
		watch_mod(d, &s->ctl, EPOLLIN | EPOLLOUT);
	return r < 0 ? r : 0;
}

int service_reply_error(struct scmd *d, struct service *s, uint32_t call_id, const scm_error *e)
{
	json_object *body = scm_error_to_json(e);
	if (!body)
		return -ENOMEM;
	size_t len = 0;
	const char *t = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
	int r = s->ctl.fd < 0 ? -ENOTCONN
			      : scm_outq_send(s->ctl.fd, &s->ctl_q, SCM_FRAME_ERROR, 0, call_id, 0, t, len, NULL, 0,
					      NULL, 0);
	json_object_put(body);
	if (r == 1)
		watch_mod(d, &s->ctl, EPOLLIN | EPOLLOUT);
	return r < 0 ? r : 0;
}

static void ctl_close(struct scmd *d, struct service *s)
{
	if (s->ctl.fd < 0)
		return;
	watch_del(d, &s->ctl);
	s->ctl.fd = safe_close(s->ctl.fd);
	scm_outq_clear(&s->ctl_q);
}

static void provider_ctl_io(struct scmd *d, struct watch *w, uint32_t events)
{
	struct service *s = (struct service *)((char *)w - offsetof(struct service, ctl));

	if (events & EPOLLOUT) {
		int r = scm_outq_flush(w->fd, &s->ctl_q);
		if (r == 0)
			watch_mod(d, w, EPOLLIN);
		else if (r != -EAGAIN)
			events |= EPOLLHUP;
	}

	/* Bounded like a client connection: a provider that floods its
	 * control socket gets its turn back from epoll, not the whole loop. */
	for (int budget = 64; budget > 0; budget--) {
		scm_message *m = NULL;
		scm_error *e = NULL;
		int r = scm_wire_recv(w->fd, MSG_DONTWAIT, &m, &e);
		if (r == -EAGAIN)
			return;
		if (r != 0) {
			/* The provider closed its control socket or sent garbage: it
			 * is of no further use. SIGCHLD does the rest. */
			if (r == SCM_E_PROTOCOL)
				log_warning("provider of '%s' sent a malformed control frame", s->name);
			scm_error_free(e);
			ctl_close(d, s);
			if (s->pid > 0)
				provider_kill(d, s, SIGKILL);
			return;
		}
		json_object *op = NULL;
		if (m->type == SCM_FRAME_CALL && tokens_control(d, s, m)) {
			scm_message_free(m);
			continue;
		}
		if (s->recover && svc_recover_frame(d, s, m)) {
			scm_message_free(m);
			continue;
		}
		if (s->ho && svc_restart_frame(d, s, m)) {
			scm_message_free(m);
			return; /* the handover may have moved on: epoll says if there is more */
		}
		if (m->json && json_object_object_get_ex(m->json, "op", &op) &&
		    json_object_is_type(op, json_type_string) && strcmp(json_object_get_string(op), "ready") == 0) {
			provider_ready(d, s);
			scm_message_free(m);
			continue;
		}
		scm_message_free(m);
	}
}

static void service_timer(struct scmd *d, struct watch *w, uint32_t events)
{
	struct service *s = (struct service *)((char *)w - offsetof(struct service, timer));
	uint64_t ticks;

	if (read(w->fd, &ticks, sizeof(ticks)) != sizeof(ticks))
		return;
	if (s->ho) {
		svc_restart_timeout(d, s);
		return;
	}
	if (svc_recover_timeout(d, s))
		return;
	if (s->state == P_STARTING) {
		provider_failed(d, s, SCM_E_TIMEOUT, "provider '%s' (pid %d) did not say ready within %u ms",
				s->exec[0], s->pid, s->timeout_ms);
		s->state = P_STOPPING;
		provider_kill(d, s, SIGKILL);
	} else if (s->state == P_BACKOFF) {
		s->state = P_STOPPED;
		if (s->activation == ACT_ALWAYS || !list_empty(&s->pending))
			service_activate(d, s);
	}
}

static void describe_status(int status, char *buf, size_t n)
{
	if (WIFEXITED(status))
		snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ?: "?");
	else
		snprintf(buf, n, "ended (status 0x%x)", status);
}

static void service_free(struct scmd *d, struct service *s)
{
	scmd_ctr_service_gone(d, s);
	svc_recover_free(s);
	watch_del(d, &s->timer);
	safe_close(s->timer.fd);
	list_del(&s->node);
	scm_idl_free(s->idl);
	strv_free(s->exec);
	strv_free(s->allow);
	strv_free(s->container_profiles);
	free(s->container_name);
	free(s->name);
	free(s->iface_name);
	free(s->manifest_path);
	free(s->idl_path);
	free(s->idl_text);
	free(s->manifest_json);
	free(s);
}

void service_reap(struct scmd *d, pid_t pid, int status)
{
	struct list *p, *t, *q, *u;
	char how[96];

	describe_status(status, how, sizeof(how));
	list_for_each_safe(p, t, &d->services)
	{
		struct service *s = list_entry(p, struct service, node);
		if (s->pid != pid)
			continue;
		if (s->ho && svc_restart_reaped(d, s, pid, status))
			return;
		if (svc_recover_reaped(d, s, pid, status))
			return;
		bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		s->pid = 0;
		svc_recover_forget(s); /* its channels go: nothing to recover */
		s->last_status = status;
		if (failed)
			s->n_failures++;
		ctl_close(d, s);
		list_for_each_safe(q, u, &s->channels)
			channel_revoke(d, list_entry(q, struct channel, svc_node), SCM_E_PROVIDER_GONE,
				       "the provider of '%s' (pid %d) %s", s->name, pid, how);
		if (s->state == P_STARTING)
			provider_failed(d, s, SCM_E_PROVIDER_GONE,
					"provider '%s' (pid %d) %s before it was ready (see %s/logs/%s.log)",
					s->exec[0], pid, how, d->runtime_dir, s->name);
		if (s->unregistering) {
			service_free(d, s);
			return;
		}
		if (now_usec() - s->started_at > STABLE_USEC)
			s->backoff_ms = BACKOFF_MIN_MS;
		bool again = s->restart == RESTART_ALWAYS || (s->restart == RESTART_ON_FAILURE && failed);
		if ((s->activation == ACT_ALWAYS && again) || !list_empty(&s->pending)) {
			s->state = P_BACKOFF;
			timer_arm(&s->timer, s->backoff_ms);
			s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
		} else
			s->state = P_STOPPED;
		return;
	}
}

void service_unregister(struct scmd *d, struct service *s)
{
	struct list *p, *t;
	scm_error *e = scm_error_new(SCM_E_NO_SERVICE, "scmd", "service '%s' was unregistered", s->name);

	s->unregistering = true;
	svc_restart_cancel(d, s, "the service was unregistered");
	broker_fail_pending(d, s, e);
	scm_error_free(e);
	list_for_each_safe(p, t, &s->channels)
		channel_revoke(d, list_entry(p, struct channel, svc_node), SCM_E_REVOKED,
			       "service '%s' was unregistered", s->name);
	if (s->pid > 0) {
		/* Closing the control socket tells a well-behaved provider to
		 * exit; SIGTERM covers the rest. Freed when reaped. */
		ctl_close(d, s);
		provider_kill(d, s, SIGTERM);
		list_del(&s->node);
		list_init(&s->node);
		/* Keep it findable for the reaper only: on a private list. */
		list_add(&d->services, &s->node);
		free(s->name);
		s->name = strdup(""); /* no longer matches lookups by name */
		return;
	}
	service_free(d, s);
}

void service_stop_all(struct scmd *d)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &d->services)
	{
		struct service *s = list_entry(p, struct service, node);
		if (s->pid > 0 && !s->in_container)
			kill(s->pid, SIGTERM);
		svc_restart_cancel(d, s, "scmd is stopping");
	}
	for (size_t i = 0; i < d->n_old_providers; i++)
		kill(d->old_providers[i], SIGTERM);
}

void service_container_failed(struct scmd *d, struct service *s, const char *name, const scm_error *e)
{
	if (s->ho && svc_restart_ctr_ended(d, s, name, e, 0))
		return;
	scm_error *w = scm_error_wrap(scm_error_copy(e), SCM_E_ACTIVATION,
				      "scmd/activation", "service '%s' could not be activated", s->name);
	broker_fail_pending(d, s, w);
	scm_error_free(w);
	if (s->pid > 0)
		service_reap(d, s->pid, W_EXITCODE(126, 0));
}

void service_container_exited(struct scmd *d, struct service *s, const char *name, int status)
{
	if (s->ho && svc_restart_ctr_ended(d, s, name, NULL, status))
		return;
	if (!s->container_name || strcmp(name, s->container_name) != 0)
		return; /* not its provider's (any more) */
	if (s->pid > 0)
		service_reap(d, s->pid, status);
}

/* Providers of ours are reaped here, by pid: containers are reaped by the
 * runtime through their pidfds, so scmd never waits for "any child". */
void service_reap_children(struct scmd *d)
{
	struct list *p, *t;
	list_for_each_safe(p, t, &d->services)
	{
		struct service *s = list_entry(p, struct service, node);
		int status;
		if (s->pid > 0 && !s->in_container && waitpid(s->pid, &status, WNOHANG) == s->pid)
			service_reap(d, s->pid, status);
	}
	svc_restart_reap(d);
}

int service_adopt_provider(struct scmd *d, struct service *s, enum pstate state, pid_t pid, int ctl_fd,
			   uint64_t timer_ms)
{
	s->state = state;
	s->pid = pid;
	if (ctl_fd >= 0) {
		s->ctl.fd = ctl_fd;
		if (watch_add(d, &s->ctl, EPOLLIN) < 0) {
			s->ctl.fd = -1;
			return -errno;
		}
	}
	/* what was left of the activation timeout or the backoff */
	if (state == P_STARTING || state == P_BACKOFF)
		timer_arm(&s->timer, timer_ms ? timer_ms : 1);
	return 0;
}
