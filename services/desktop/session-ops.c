/* session-ops.c: launch, app add, app remove, stop and the resync after a
 * proxy restart, without holding up the manager's loop.
 *
 * Each takes seconds, more with many apps (an app has 20 s to come up, a container
 * 2 s to stop), so, as DESIGN.md asks of a handler that would block, the
 * reply is deferred (scm_call_defer) and the blocking part runs on a
 * worker thread, which posts its result back to the loop
 * (scm_provider_post); the loop applies it to the desktop and replies.
 * Meanwhile the loop answers everyone else: list, viewers, show,
 * screenshot, and operations on other desktops.
 *
 * Operations on one desktop run one at a time, in the order they came
 * (an app add behind a launch waits for it; a stop behind an app add
 * comes after it). A second launch of a name that is starting or running
 * is refused at once (Exists). What a worker reads of its desktop does not
 * change while it runs: the loop changes a desktop only here, when an
 * operation ends (session.h). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "scm/desktop-provider.h"
#include "scm/macro.h"
#include "session.h"

struct op {
	scm_task task; /* first: the loop gets the op back from it */
	struct op *next;
	enum op_kind kind;
	struct session *s;
	struct desktop *d;
	scm_call *call;               /* deferred; NULL: nobody to answer (resync) */
	desktop_spec *spec;           /* launch */
	unsigned rfb_port, ws_port;   /* launch */
	struct session_app sa;        /* app add: the new app; app remove: a copy of the one going */
	size_t index;                 /* app remove */
	struct desktop fresh;         /* resync: the new proxy's ports and secrets */
	struct session_app apps[SESSION_APPS_MAX]; /* resync: the apps as they come again */
	scm_channel *watch;           /* launch, resync: the channel to keep */
	int r;
	scm_error *err;
	pthread_t thread;
	bool started, threaded;
};

static void op_free(struct op *op)
{
	desktop_spec_free(op->spec);
	if (op->kind == OP_APP_ADD)
		desktop_app_clear(&op->sa.spec); /* unless the desktop took it */
	if (op->kind == OP_APP_REMOVE && !op->started)
		free(op->sa.spec.name); /* once started, sa is a copy of the desktop's */
	scm_channel_free(op->watch);
	scm_error_free(op->err);
	free(op);
}

static void op_refuse(struct op *op, int code, const char *why)
{
	if (op->call)
		scm_call_reply_error(op->call, code, "%s", why);
	op->call = NULL;
}

static void watch_remove(struct session *s, struct desktop *d)
{
	if (!d->watch)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, scm_channel_fd(d->watch), NULL);
	d->watch = scm_channel_free(d->watch);
}

/* The loop hears of the proxy's end when this channel breaks. */
static void watch_install(struct session *s, struct desktop *d, scm_channel *ch)
{
	watch_remove(s, d);
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = d };
	d->watch = ch;
	/* The loop asks the proxy for stats and snapshots on it: a proxy
	 * that hangs holds the loop this long at most. */
	scm_channel_set_timeout(ch, 5000);
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, scm_channel_fd(ch), &ev) < 0)
		fprintf(stderr, "desktop %s: cannot watch its graphics proxy: %m\n", d->name);
}

static void *worker(void *arg)
{
	struct op *op = arg;
	struct session *s = op->s;
	struct desktop *d = op->d;
	switch (op->kind) {
	case OP_LAUNCH:
		op->r = session_launch_work(s, d, op->spec, op->rfb_port, op->ws_port, &op->watch, &op->err);
		break;
	case OP_APP_ADD:
		op->r = session_app_add_work(s, d, &op->sa, &op->err);
		break;
	case OP_APP_REMOVE:
		session_app_remove_work(s, d, &op->sa);
		break;
	case OP_STOP:
		session_teardown(s, d, true);
		break;
	case OP_RESYNC:
		op->r = session_resync_work(s, d, &op->fresh, op->apps, &op->watch, &op->err);
		break;
	}
	scm_provider_post(s->provider, &op->task);
	return NULL;
}

static void op_done(scm_task *t);

/* The loop's part before the worker's; 0 when the worker is on its way. */
static int op_begin(struct session *s, struct desktop *d, struct op *op)
{
	scm_error *e = NULL;
	switch (op->kind) {
	case OP_LAUNCH:
		break;
	case OP_APP_ADD:
		if (session_app_check(s, d, &op->sa, &e) != 0) {
			if (op->call)
				scm_call_reply_error_chain(op->call, e);
			op->call = NULL;
			scm_error_free(e);
			return -1;
		}
		break;
	case OP_APP_REMOVE:
		while (op->index < d->n_apps && strcmp(d->apps[op->index].spec.name, op->sa.spec.name) != 0)
			op->index++;
		if (op->index == d->n_apps) {
			if (op->call)
				scm_call_reply_error(op->call, SCM_DESKTOP_E_NOAPP, "desktop %s has no app '%s'", d->name,
						     op->sa.spec.name);
			op->call = NULL;
			return -1;
		}
		free(op->sa.spec.name);
		op->sa = d->apps[op->index]; /* a copy: the worker stops it, the loop forgets it */
		break;
	case OP_STOP:
		d->state = DESKTOP_STOPPING;
		watch_remove(s, d); /* its end is ours, not a crash */
		break;
	case OP_RESYNC:
		if (d->state != DESKTOP_RUNNING || d->stop_queued)
			return -1;
		op->fresh = *d;
		memcpy(op->apps, d->apps, sizeof(op->apps));
		break;
	}
	op->started = true;
	op->task.fn = op_done;
	/* The worker takes no signal: SIGTERM is for the loop's epoll_wait. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	op->threaded = pthread_create(&op->thread, NULL, worker, op) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!op->threaded)
		worker(op); /* no thread to be had: slow, but done */
	return 0;
}

/* Starts the first queued operation that can start; those that cannot
 * (their checks failed) are answered and dropped. */
static void run_queue(struct session *s, struct desktop *d)
{
	while (d->ops && !d->ops->started) {
		struct op *op = d->ops;
		if (atomic_load(&s->quitting))
			op_refuse(op, SCM_DESKTOP_E_START, "the desktop session manager is ending");
		else if (op_begin(s, d, op) == 0)
			return;
		d->ops = op->next;
		op_free(op);
	}
}

static void enqueue(struct session *s, struct desktop *d, struct op *op)
{
	struct op **p = &d->ops;
	while (*p)
		p = &(*p)->next;
	*p = op;
	run_queue(s, d);
}

static struct op *op_new(struct session *s, struct desktop *d, enum op_kind kind, scm_call *call)
{
	struct op *op = calloc(1, sizeof(*op));
	if (!op) {
		if (call)
			scm_call_reply_error(call, SCM_DESKTOP_E_START, "out of memory");
		return NULL;
	}
	op->s = s, op->d = d, op->kind = kind, op->call = call;
	return op;
}

static void reply_chain(struct op *op)
{
	if (op->call)
		scm_call_reply_error_chain(op->call, op->err);
	op->call = NULL;
}

/* Back on the loop: the worker's result goes into the desktop, the
 * caller gets the reply, and the next operation starts. */
static void op_done(scm_task *t)
{
	struct op *op = (struct op *)t;
	struct session *s = op->s;
	struct desktop *d = op->d;
	bool gone = false;
	json_object *o = NULL;
	if (op->threaded)
		pthread_join(op->thread, NULL);
	switch (op->kind) {
	case OP_LAUNCH:
		if (op->r == 0) {
			d->state = DESKTOP_RUNNING;
			watch_install(s, d, TAKE_PTR(op->watch));
			session_write_state(s, d);
			fprintf(stderr, "desktop %s: launched (%zu apps, vnc 127.0.0.1:%u, owner uid %u)\n", d->name,
				d->n_apps, d->rfb_port, (unsigned)d->owner);
			o = session_desktop_json(d, true);
			if (op->call)
				scm_desktop_launch_reply(op->call, o);
		} else {
			fprintf(stderr, "desktop %s: launch failed\n", d->name);
			reply_chain(op);
			gone = true;
		}
		break;
	case OP_APP_ADD:
		if (op->r == 0) {
			struct session_app *a = &d->apps[d->n_apps++];
			*a = op->sa;
			op->sa = (struct session_app){ 0 }; /* the desktop's now */
			session_write_state(s, d);
			fprintf(stderr, "desktop %s: app %s added\n", d->name, a->spec.name);
			o = session_app_json(a);
			if (op->call)
				scm_desktop_app_add_reply(op->call, o);
		} else
			reply_chain(op);
		break;
	case OP_APP_REMOVE:
		fprintf(stderr, "desktop %s: app %s removed\n", d->name, d->apps[op->index].spec.name);
		desktop_app_clear(&d->apps[op->index].spec);
		memmove(&d->apps[op->index], &d->apps[op->index + 1], (d->n_apps - op->index - 1) * sizeof(d->apps[0]));
		d->n_apps--;
		session_write_state(s, d);
		if (op->call)
			scm_desktop_app_remove_reply(op->call);
		break;
	case OP_STOP:
		fprintf(stderr, "desktop %s: stopped\n", d->name);
		if (op->call)
			scm_desktop_stop_reply(op->call);
		gone = true;
		break;
	case OP_RESYNC:
		if (op->r == 1) {
			watch_install(s, d, TAKE_PTR(op->watch));
			fprintf(stderr, "desktop %s: its channel to %s was closed; the proxy is the same\n", d->name,
				d->service);
		} else if (op->r == 0) {
			d->rfb_port = op->fresh.rfb_port, d->ws_port = op->fresh.ws_port;
			memcpy(d->password, op->fresh.password, sizeof(d->password));
			memcpy(d->viewonly, op->fresh.viewonly, sizeof(d->viewonly));
			memcpy(d->token, op->fresh.token, sizeof(d->token));
			memcpy(d->security, op->fresh.security, sizeof(d->security));
			memcpy(d->tls_fingerprint, op->fresh.tls_fingerprint, sizeof(d->tls_fingerprint));
			memcpy(d->tls_cert, op->fresh.tls_cert, sizeof(d->tls_cert));
			session_write_state(s, d);
			for (size_t i = 0; i < d->n_apps; i++) {
				struct session_app *a = &d->apps[i], *b = &op->apps[i];
				a->pid = b->pid, a->x = b->x, a->y = b->y;
				memcpy(a->border, b->border, sizeof(a->border));
				memcpy(a->display, b->display, sizeof(a->display));
			}
			d->restarts++;
			watch_install(s, d, TAKE_PTR(op->watch));
			session_write_state(s, d);
			fprintf(stderr, "desktop %s: its graphics proxy was restarted: new secrets, vnc 127.0.0.1:%u, %zu apps started again\n",
				d->name, d->rfb_port, d->n_apps);
		} else {
			fprintf(stderr, "desktop %s: its graphics proxy ended and did not come back: ", d->name);
			scm_error_print(op->err, stderr);
		}
		break;
	}
	json_object_put(o);
	d->ops = op->next;
	op->call = NULL;
	op_free(op);
	if (!gone) {
		run_queue(s, d);
		return;
	}
	while (d->ops) { /* behind the stop, or a launch that failed */
		struct op *q = d->ops;
		d->ops = q->next;
		op_refuse(q, SCM_DESKTOP_E_NODESKTOP, "the desktop is gone");
		op_free(q);
	}
	session_unlist(s, d);
}

int session_op_launch(struct session *s, scm_call *call, desktop_spec *spec, bool containers, unsigned rfb_port,
		      unsigned ws_port, unsigned novnc_port, uid_t owner)
{
	struct desktop *d = NULL;
	scm_error *e = NULL;
	int r = session_desktop_new(s, spec, containers, rfb_port, ws_port, novnc_port, &d, &e);
	if (r != 0) {
		desktop_spec_free(spec);
		r = scm_call_reply_error_chain(call, e);
		scm_error_free(e);
		return r;
	}
	d->owner = owner;
	scm_call *c = scm_call_defer(call);
	struct op *op = c ? op_new(s, d, OP_LAUNCH, c) : NULL;
	if (!op) {
		desktop_spec_free(spec);
		session_desktop_free(d);
		return 0;
	}
	op->spec = spec, op->rfb_port = rfb_port, op->ws_port = ws_port;
	/* Listed at once (starting): a second launch of the name is refused. */
	d->next = s->desktops;
	s->desktops = d;
	enqueue(s, d, op);
	return 0;
}

void session_op_app_add(struct session *s, scm_call *call, struct desktop *d, desktop_app *app)
{
	scm_call *c = scm_call_defer(call);
	struct op *op = c ? op_new(s, d, OP_APP_ADD, c) : NULL;
	if (!op) {
		desktop_app_clear(app);
		return;
	}
	op->sa.spec = *app;
	*app = (desktop_app){ 0 };
	enqueue(s, d, op);
}

void session_op_app_remove(struct session *s, scm_call *call, struct desktop *d, const char *app)
{
	scm_call *c = scm_call_defer(call);
	struct op *op = c ? op_new(s, d, OP_APP_REMOVE, c) : NULL;
	if (!op)
		return;
	if (!(op->sa.spec.name = strdup(app))) {
		op_refuse(op, SCM_DESKTOP_E_START, "out of memory");
		op_free(op);
		return;
	}
	enqueue(s, d, op);
}

void session_op_stop(struct session *s, scm_call *call, struct desktop *d)
{
	scm_call *c = scm_call_defer(call);
	struct op *op = c ? op_new(s, d, OP_STOP, c) : NULL;
	if (!op)
		return;
	d->stop_queued = true;
	enqueue(s, d, op);
}

void session_op_proxy_gone(struct session *s, struct desktop *d)
{
	watch_remove(s, d);
	if (d->stop_queued || d->state != DESKTOP_RUNNING)
		return;
	for (struct op *q = d->ops; q; q = q->next)
		if (q->kind == OP_RESYNC)
			return;
	fprintf(stderr, "desktop %s: the channel to its graphics proxy %s broke (the proxy ended?); asking it again\n",
		d->name, d->service);
	struct op *op = op_new(s, d, OP_RESYNC, NULL);
	if (op)
		enqueue(s, d, op);
}

void session_ops_quit(struct session *s)
{
	atomic_store(&s->quitting, true);
	for (struct desktop *d = s->desktops; d; d = d->next)
		if (d->ops && d->ops->started && d->ops->threaded) {
			pthread_join(d->ops->thread, NULL);
			d->ops->threaded = false; /* joined: its task need not */
		}
}
