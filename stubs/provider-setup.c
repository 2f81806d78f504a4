/* provider-setup.c: making a provider, the skeleton's side of scmd's
 * start-up: the control connection (an inherited fd, or a container's
 * endpoint), the epoll set with the task eventfd, and "ready", which a
 * provider started to take over from a running one ($SCM_PROVIDER_HANDOVER,
 * docs/handover.md) says only once it has its predecessor's state; the
 * task queue workers hand results back through; the small accessors. */
#include <errno.h>
#include <pthread.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "scm/macro.h"
#include "scm-internal/error.h"
#include "scm-internal/provider-impl.h"
#include "scm-internal/wire.h"

#define TASKS ((void *)&provider_task_marker_)

int provider_send_ready_(scm_provider *p, bool restored)
{
	json_object *hello = json_object_new_object();
	json_object_object_add(hello, "op", json_object_new_string("ready"));
	json_object_object_add(hello, "interface", json_object_new_string(p->iface->name));
	json_object_object_add(hello, "version", json_object_new_int((int)p->iface->version));
	if (restored)
		json_object_object_add(hello, "restored", json_object_new_boolean(true));
	int r = scm_wire_send_json(p->ctl_fd, 0, SCM_FRAME_EVENT, 0, 0, 0, hello, NULL, 0, NULL, 0);
	json_object_put(hello);
	return r;
}

/* handover: started to take over from a running provider; ready is said
 * once scm_provider_handover() restored its state. */
static int provider_new(const scm_interface_def *iface, int control_fd, bool handover, void *userdata,
			scm_provider **ret, scm_error **ret_err)
{
	for (size_t i = 0; i < iface->n_methods; i++)
		if (iface->methods[i].id < 1 || iface->methods[i].id > MAX_METHODS)
			return scm_fail(ret_err, -EINVAL, "method %s has id %u outside 1..%d",
					iface->methods[i].name, iface->methods[i].id, MAX_METHODS);

	scm_provider *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->iface = iface;
	p->userdata = userdata;
	p->ctl_fd = control_fd;
	p->defer_max = SCM_DEFER_MAX_DEFAULT;
	pthread_mutex_init(&p->task_lock, NULL);
	p->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	p->task_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct epoll_event tev = { .events = EPOLLIN, .data.ptr = TASKS };
	if (p->epoll_fd < 0 || p->task_fd < 0 ||
	    epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, control_fd, &ev) < 0 ||
	    epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, p->task_fd, &tev) < 0) {
		int r = -errno;
		safe_close(p->epoll_fd);
		safe_close(p->task_fd);
		pthread_mutex_destroy(&p->task_lock);
		free(p);
		return scm_fail(ret_err, r, "setting up the provider's epoll: %s", strerror(-r));
	}

	int r = handover ? provider_ho_started_(p) : provider_send_ready_(p, false);
	if (r < 0) {
		provider_ho_free_(p);
		safe_close(p->epoll_fd);
		safe_close(p->task_fd);
		pthread_mutex_destroy(&p->task_lock);
		free(p);
		return scm_fail(ret_err, r, "telling scmd the provider is ready: %s", strerror(-r));
	}
	*ret = p;
	return 0;
}

int scm_provider_new_fd(const scm_interface_def *iface, int control_fd, void *userdata,
			scm_provider **ret, scm_error **ret_err)
{
	return provider_new(iface, control_fd, false, userdata, ret, ret_err);
}

/* A provider that scmd runs in a container reaches it through the
 * container's endpoint instead of an inherited fd: $SCM_PROVIDER_ENDPOINT
 * names the socket, and that endpoint exists only for this provider. */
static int connect_control(const char *path, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return scm_fail(ret_err, -ENAMETOOLONG, "$SCM_PROVIDER_ENDPOINT is too long");
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "socket: %m");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return scm_fail(ret_err, r, "cannot reach scmd at %s: %s", path, strerror(-r));
	}
	return fd;
}

int scm_provider_new(const scm_interface_def *iface, void *userdata, scm_provider **ret,
		     scm_error **ret_err)
{
	const char *s = getenv("SCM_PROVIDER_FD"), *ep = getenv("SCM_PROVIDER_ENDPOINT");
	char *end;
	/* scmd starts this provider to take over from a running one (in a
	 * container of its own too: docs/handover.md) */
	const char *ho = getenv("SCM_PROVIDER_HANDOVER");
	bool handover = ho && strcmp(ho, "1") == 0;
	unsetenv("SCM_PROVIDER_HANDOVER"); /* not for the provider's children */

	if ((!s || !*s) && ep && *ep) {
		int fd = connect_control(ep, ret_err);
		if (fd < 0)
			return fd;
		int r = provider_new(iface, fd, handover, userdata, ret, ret_err);
		if (r != 0)
			close(fd);
		return r;
	}
	if (!s || !*s)
		return scm_fail(ret_err, -ENOTCONN,
				"$SCM_PROVIDER_FD is not set: providers are started by scmd (register the service with scmctl)");
	long fd = strtol(s, &end, 10);
	if (*end || fd < 0 || fd > 65535)
		return scm_fail(ret_err, -EINVAL, "$SCM_PROVIDER_FD='%s' is not an fd", s);
	return provider_new(iface, (int)fd, handover, userdata, ret, ret_err);
}

void provider_run_tasks_(scm_provider *p)
{
	uint64_t n;
	(void)!read(p->task_fd, &n, sizeof n); /* reset the count; EAGAIN is fine */
	pthread_mutex_lock(&p->task_lock);
	scm_task *t = p->task_head;
	p->task_head = p->task_tail = NULL;
	pthread_mutex_unlock(&p->task_lock);
	while (t) {
		scm_task *next = t->next_; /* fn may free t */
		t->fn(t);
		t = next;
	}
}

void scm_provider_post(scm_provider *p, scm_task *t)
{
	uint64_t one = 1;
	t->next_ = NULL;
	pthread_mutex_lock(&p->task_lock);
	bool wake = !p->task_head;
	if (p->task_tail)
		p->task_tail->next_ = t;
	else
		p->task_head = t;
	p->task_tail = t;
	pthread_mutex_unlock(&p->task_lock);
	/* One write per batch: the loop takes the whole list when it wakes. An
	 * eventfd write fails only when the counter would overflow, which one
	 * write per empty-to-non-empty transition cannot reach. */
	if (wake)
		(void)!write(p->task_fd, &one, sizeof one);
}

void scm_provider_set_defer_max(scm_provider *p, unsigned max)
{
	p->defer_max = max;
}

int scm_provider_fd(const scm_provider *p)
{
	return p->epoll_fd;
}

void scm_provider_on_close(scm_provider *p,
			   void (*fn)(const scm_grant *g, void *chdata, void *userdata))
{
	p->on_close = fn;
}

const scm_grant *scm_call_grant(const scm_call *call)
{
	return call->ch ? &call->ch->grant : NULL;
}
bool scm_call_allows(const scm_call *call, const char *method)
{
	if (!call->ch || !method)
		return false;
	for (size_t i = 0; i < call->p->iface->n_methods; i++)
		if (!strcmp(call->p->iface->methods[i].name, method))
			return call->ch->allowed[call->p->iface->methods[i].id];
	return false;
}
void *scm_call_channel_data(const scm_call *call)
{
	return call->ch ? call->ch->data : NULL;
}
void scm_call_set_channel_data(scm_call *call, void *data)
{
	if (call->ch)
		call->ch->data = data;
}
