/* Unit tests of the provider skeleton's deferred replies and the client's
 * call timeouts: a real skeleton on a control socketpair (the test plays
 * scmd) and a real client channel, in one process. Run under ASan too
 * (make B=build-asan SAN=1): the cancellation tests are about memory. The
 * last one: work held and a carriable call across a handover. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scm/scm.h"
#include "scm-internal/wire.h"

enum { M_DEFER = 1, M_NOW = 2, M_WORK = 3, M_HANG = 4 };

/* What the handlers deferred, for the test to answer (loop thread only). */
static scm_call *held[128];
static size_t n_held;
static int closes;

static int h_defer(scm_call *call, const scm_message *m, void *ud)
{
	scm_call *d = scm_call_defer(call);
	if (d)
		held[n_held++] = d;
	return 0;
}

static int h_now(scm_call *call, const scm_message *m, void *ud)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "now", json_object_new_boolean(true));
	int r = scm_call_reply(call, j, NULL, 0, NULL, 0);
	json_object_put(j);
	return r;
}

/* A worker thread does the "work" and posts the reply back. */
struct job {
	scm_task task;
	scm_provider *p;
	scm_call *call;
	int ms;
	bool saw_cancel;
};
static scm_provider *the_provider;
static bool job_saw_cancel;

static void job_done(scm_task *t)
{
	struct job *j = (struct job *)t;
	job_saw_cancel = scm_call_cancelled(j->call);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "worked", json_object_new_int(j->ms));
	int r = scm_call_reply(j->call, o, NULL, 0, NULL, 0);
	json_object_put(o);
	assert_int_equal(r, job_saw_cancel ? -ECANCELED : 0);
	free(j);
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	struct timespec ts = { 0, j->ms * 1000000L };
	nanosleep(&ts, NULL);
	j->task.fn = job_done;
	scm_provider_post(j->p, &j->task);
	return NULL;
}

static pthread_t workers[16];
static size_t n_workers;

static int h_work(scm_call *call, const scm_message *m, void *ud)
{
	json_object *v;
	struct job *j = calloc(1, sizeof *j);
	j->p = the_provider;
	j->ms = m->json && json_object_object_get_ex(m->json, "ms", &v) ? json_object_get_int(v) : 10;
	j->call = scm_call_defer(call);
	if (!j->call) {
		free(j);
		return 0;
	}
	pthread_create(&workers[n_workers++], NULL, job_run, j);
	return 0;
}

static const scm_method_def methods[] = {
	{ "defer", M_DEFER, h_defer },
	{ "now", M_NOW, h_now },
	{ "work", M_WORK, h_work },
	{ "hang", M_HANG, h_defer },
};
static const scm_interface_def iface = { "t", 1, methods, 4 };

static void on_close(const scm_grant *g, void *chdata, void *ud)
{
	closes++;
}

struct fixture {
	int scmd; /* our end of the control connection */
	scm_provider *p;
	scm_channel *ch;
};

static struct fixture fx;

static void add_channel(uint64_t id, scm_channel **ret)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "op", json_object_new_string("channel"));
	json_object_object_add(j, "channel", json_object_new_int64((int64_t)id));
	json_object_object_add(j, "service", json_object_new_string("tsvc"));
	json_object_object_add(j, "caller", json_object_new_string("test"));
	json_object_object_add(j, "methods", json_object_new_string("*"));
	assert_int_equal(scm_wire_send_json(fx.scmd, 0, SCM_FRAME_EVENT, 0, 0, 0, j, NULL, 0, &sp[0], 1), 0);
	json_object_put(j);
	close(sp[0]);
	assert_int_equal(scm_channel_from_fd(sp[1], id, "t", ret), 0);
	/* the provider takes it in */
	assert_int_equal(scm_provider_dispatch(fx.p, 1000, NULL), 0);
}

static int setup(void **state)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	fx.scmd = sp[1];
	scm_error *e = NULL;
	assert_int_equal(scm_provider_new_fd(&iface, sp[0], NULL, &fx.p, &e), 0);
	the_provider = fx.p;
	scm_provider_on_close(fx.p, on_close);
	scm_message *ready = NULL;
	assert_int_equal(scm_wire_recv(fx.scmd, 0, &ready, NULL), 0);
	scm_message_free(ready);
	n_held = 0;
	closes = 0;
	n_workers = 0;
	add_channel(7, &fx.ch);
	return 0;
}

static bool tearing_down; /* pending callbacks point at a finished test's stack */

static int teardown(void **state)
{
	tearing_down = true;
	for (size_t i = 0; i < n_workers; i++)
		pthread_join(workers[i], NULL);
	scm_channel_free(fx.ch);
	scm_provider_free(fx.p); /* runs the tasks still queued */
	for (size_t i = 0; i < n_held; i++)
		if (held[i])
			scm_call_reply_error(held[i], SCM_E_INTERNAL, "teardown");
	close(fx.scmd);
	tearing_down = false;
	return 0;
}

struct got {
	int n, err, last_worked, busy;
	char msg[256];
	int order[64];
};

static void on_reply(scm_channel *ch, scm_message *reply, const scm_error *err, void *ud)
{
	struct got *g = ud;
	json_object *v;
	if (tearing_down)
		return;
	if (err) {
		g->err = err->code;
		if (err->code == SCM_E_BUSY)
			g->busy++;
		snprintf(g->msg, sizeof g->msg, "%s", err->message ? err->message : "");
	} else if (reply->json && json_object_object_get_ex(reply->json, "n", &v))
		g->order[g->n] = json_object_get_int(v);
	else if (reply->json && json_object_object_get_ex(reply->json, "worked", &v))
		g->last_worked = json_object_get_int(v);
	g->n++;
}

/* Runs the provider and the client until cond holds (or 2 s pass). */
#define PUMP_UNTIL(cond)                                                             \
	do {                                                                         \
		for (int k_ = 0; k_ < 400 && !(cond); k_++) {                         \
			scm_provider_dispatch(fx.p, 5, NULL);                        \
			if (fx.ch)                                                   \
				scm_channel_dispatch(fx.ch, NULL);                   \
		}                                                                    \
		assert_true(cond);                                                   \
	} while (0)

static void call_async(uint32_t m, struct got *g)
{
	assert_int_equal(scm_call_async(fx.ch, m, NULL, NULL, 0, NULL, 0, on_reply, g, NULL), 0);
}

static void reply_n(scm_call *c, int n)
{
	json_object *j = json_object_new_object();
	json_object_object_add(j, "n", json_object_new_int(n));
	assert_int_equal(scm_call_reply(c, j, NULL, 0, NULL, 0), 0);
	json_object_put(j);
}

/* Three calls deferred, a fourth answered at once meanwhile, then the
 * three answered in reverse order from the loop. */
static void test_defer_later(void **state)
{
	struct got g = { 0 };
	for (int i = 0; i < 3; i++)
		call_async(M_DEFER, &g);
	PUMP_UNTIL(n_held == 3);
	assert_int_equal(scm_call_deferred_count(held[0]), 3);
	assert_non_null(scm_call_grant(held[0]));
	assert_string_equal(scm_call_grant(held[0])->service, "tsvc");
	call_async(M_NOW, &g);
	PUMP_UNTIL(g.n == 1); /* not stuck behind the deferred ones */
	assert_int_equal(g.err, 0);
	for (int i = 2; i >= 0; i--) {
		reply_n(held[i], i);
		held[i] = NULL;
	}
	PUMP_UNTIL(g.n == 4);
	assert_int_equal(g.order[1], 2);
	assert_int_equal(g.order[3], 0);
	assert_int_equal(g.err, 0);
	n_held = 0;
}

/* Replies that come from worker threads through scm_provider_post(). */
static void test_defer_worker(void **state)
{
	struct got g = { 0 };
	for (int i = 0; i < 8; i++)
		call_async(M_WORK, &g);
	PUMP_UNTIL(g.n == 8);
	assert_int_equal(g.err, 0);
	assert_int_equal(g.last_worked, 10);
	assert_false(job_saw_cancel);
}

/* Over the quota the call itself is refused as busy, naming the limit;
 * the channel goes on. */
static void test_defer_quota(void **state)
{
	struct got g = { 0 };
	scm_provider_set_defer_max(fx.p, 2);
	for (int i = 0; i < 3; i++)
		call_async(M_DEFER, &g);
	PUMP_UNTIL(g.n == 1);
	assert_int_equal(n_held, 2);
	assert_int_equal(g.busy, 1);
	assert_non_null(strstr(g.msg, "2 calls in progress, the limit"));
	reply_n(held[0], 0);
	held[0] = NULL;
	PUMP_UNTIL(g.n == 2);
	call_async(M_DEFER, &g); /* room again */
	PUMP_UNTIL(n_held == 3);
}

/* The client goes away while calls are deferred: they are cancelled
 * before on_close runs, and replying only frees them. */
static void test_defer_cancel_on_close(void **state)
{
	struct got g = { 0 };
	for (int i = 0; i < 4; i++)
		call_async(M_DEFER, &g);
	PUMP_UNTIL(n_held == 4);
	fx.ch = scm_channel_free(fx.ch);
	PUMP_UNTIL(closes == 1);
	for (size_t i = 0; i < n_held; i++) {
		assert_true(scm_call_cancelled(held[i]));
		assert_null(scm_call_grant(held[i]));
		assert_null(scm_call_channel_data(held[i]));
		assert_int_equal(scm_call_reply_error(held[i], SCM_E_INTERNAL, "late"), -ECANCELED);
		held[i] = NULL;
	}
	n_held = 0;
}

/* scmd revokes the channel while a worker still has its call: the worker
 * posts afterwards and the reply is dropped, not sent on a freed channel. */
static void test_defer_revoke_with_worker(void **state)
{
	struct got g = { 0 };
	json_object *a = json_object_new_object();
	json_object_object_add(a, "ms", json_object_new_int(200));
	assert_int_equal(scm_call_async(fx.ch, M_WORK, a, NULL, 0, NULL, 0, on_reply, &g, NULL), 0);
	json_object_put(a);
	PUMP_UNTIL(n_workers == 1);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "op", json_object_new_string("revoke"));
	json_object_object_add(j, "channel", json_object_new_int(7));
	assert_int_equal(scm_wire_send_json(fx.scmd, 0, SCM_FRAME_EVENT, 0, 0, 0, j, NULL, 0, NULL, 0), 0);
	json_object_put(j);
	PUMP_UNTIL(closes == 1);
	job_saw_cancel = false;
	pthread_join(workers[0], NULL);
	n_workers = 0;
	PUMP_UNTIL(job_saw_cancel);
	assert_int_equal(g.n, 1); /* the client saw the channel end, not a reply */
	assert_int_not_equal(g.err, 0);
}

/* ---- client call timeouts ------------------------------------------------ */

static volatile bool stop_loop;
static void *loop_thread(void *arg)
{
	while (!stop_loop)
		scm_provider_dispatch(fx.p, 20, NULL);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A provider that never answers: the call fails with timeout in about the
 * time set, the error names the service, method and time, and the
 * channel still works afterwards. */
static void test_call_timeout(void **state)
{
	pthread_t t;
	stop_loop = false;
	pthread_create(&t, NULL, loop_thread, NULL);

	scm_channel_set_timeout(fx.ch, 300);
	assert_int_equal(scm_channel_get_timeout(fx.ch), 300);
	scm_error *e = NULL;
	scm_call_opts o = { .method_name = "hang" };
	double t0 = now_s();
	int r = scm_call_sync_opts(fx.ch, M_HANG, &o, NULL, NULL, 0, NULL, 0, NULL, &e);
	double took = now_s() - t0;
	assert_int_equal(r, SCM_E_TIMEOUT);
	assert_true(took >= 0.29 && took < 1.5);
	assert_non_null(e);
	assert_non_null(strstr(e->message, "t.hang"));
	assert_non_null(strstr(e->message, "300 ms"));
	e = scm_error_free(e);

	/* per call, shorter than the channel's; no name given: the id */
	o = (scm_call_opts){ .timeout_ms = 100 };
	t0 = now_s();
	r = scm_call_sync_opts(fx.ch, M_HANG, &o, NULL, NULL, 0, NULL, 0, NULL, &e);
	took = now_s() - t0;
	assert_int_equal(r, SCM_E_TIMEOUT);
	assert_true(took >= 0.09 && took < 0.8);
	assert_non_null(strstr(e->message, "t method 4"));
	e = scm_error_free(e);

	/* the channel is still good */
	scm_message *reply = NULL;
	assert_int_equal(scm_call_sync(fx.ch, M_NOW, NULL, NULL, 0, NULL, 0, &reply, &e), 0);
	scm_message_free(reply);

	stop_loop = true;
	pthread_join(t, NULL);
}

static void test_timeout_env(void **state)
{
	scm_channel *ch;
	setenv("SCM_CALL_TIMEOUT_MS", "150", 1);
	assert_int_equal(scm_channel_from_fd(-1, 1, "t", &ch), 0);
	assert_int_equal(scm_channel_get_timeout(ch), 150);
	scm_channel_set_timeout(ch, 0); /* back to the default, which reads the env */
	assert_int_equal(scm_channel_get_timeout(ch), 150);
	setenv("SCM_CALL_TIMEOUT_MS", "infinity", 1);
	scm_channel_set_timeout(ch, 0);
	assert_int_equal(scm_channel_get_timeout(ch), SCM_TIMEOUT_INFINITE);
	setenv("SCM_CALL_TIMEOUT_MS", "12abc", 1);
	scm_channel_set_timeout(ch, 0);
	assert_int_equal(scm_channel_get_timeout(ch), SCM_CALL_TIMEOUT_DEFAULT_MS);
	unsetenv("SCM_CALL_TIMEOUT_MS");
	scm_channel_set_timeout(ch, 0);
	assert_int_equal(scm_channel_get_timeout(ch), SCM_CALL_TIMEOUT_DEFAULT_MS);
	scm_channel_free(ch);
}

/* A handover (the test plays scmd): a step the provider holds keeps it
 * waiting, a carriable deferred call does not; save_channel() describes
 * the call; called off, the provider hears it and still answers the call
 * itself. */
static int quiesced = -1;
static bool saved_call;
static void on_quiesce(bool quiet, void *ud)
{
	quiesced = quiet;
}
static json_object *ho_save(void *ud, scm_error **ret_err)
{
	return json_object_new_object();
}
static json_object *ho_save_channel(const scm_grant *g, void *chdata, void *ud)
{
	json_object *c = n_held ? scm_call_save(held[0]) : NULL;
	saved_call = c != NULL;
	return c;
}
static int ho_restore(json_object *st, uint32_t v, void *ud, scm_error **ret_err)
{
	return 0;
}

static void test_handover_hold_and_carry(void **state)
{
	struct got g = { 0 };
	scm_handover_ops ops = { .version = 1, .min_version = 1, .save = ho_save, .save_channel = ho_save_channel,
				 .restore = ho_restore };
	assert_int_equal(scm_provider_handover(fx.p, &ops, NULL), 0);
	scm_provider_on_quiesce(fx.p, on_quiesce);
	call_async(M_DEFER, &g);
	PUMP_UNTIL(n_held == 1);
	assert_null(scm_call_save(held[0])); /* not carriable, and not in a save */
	assert_int_equal(scm_call_set_carriable(held[0]), 0);
	assert_null(scm_call_save(held[0])); /* not in a save */
	scm_provider_hold(fx.p, 1);
	json_object *j = json_object_new_object();
	json_object_object_add(j, "op", json_object_new_string("handover"));
	assert_int_equal(scm_wire_send_json(fx.scmd, 0, SCM_FRAME_CALL, 0, 99, 0, j, NULL, 0, NULL, 0), 0);
	json_object_put(j);
	PUMP_UNTIL(quiesced == 1);
	for (int k = 0; k < 5; k++)
		scm_provider_dispatch(fx.p, 5, NULL);
	scm_message *m = NULL;
	assert_int_equal(scm_wire_recv(fx.scmd, MSG_DONTWAIT, &m, NULL), -EAGAIN); /* held */
	scm_provider_hold(fx.p, -1);
	scm_provider_dispatch(fx.p, 5, NULL);
	struct pollfd pf = { fx.scmd, POLLIN, 0 };
	assert_int_equal(poll(&pf, 1, 2000), 1);
	assert_int_equal(scm_wire_recv(fx.scmd, 0, &m, NULL), 0);
	assert_int_equal(m->type, SCM_FRAME_REPLY); /* the carriable call did not hold it */
	assert_int_equal(m->call_id, 99);
	assert_true(saved_call);
	scm_message_free(m);
	j = json_object_new_object();
	json_object_object_add(j, "op", json_object_new_string("handover.abort"));
	assert_int_equal(scm_wire_send_json(fx.scmd, 0, SCM_FRAME_EVENT, 0, 0, 0, j, NULL, 0, NULL, 0), 0);
	json_object_put(j);
	PUMP_UNTIL(quiesced == 0);
	/* called off: the old process answers the call itself */
	reply_n(held[0], 5);
	held[0] = NULL;
	n_held = 0;
	PUMP_UNTIL(g.n == 1);
	assert_int_equal(g.err, 0);
	assert_int_equal(g.order[0], 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defer_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_cancel_on_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_revoke_with_worker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_timeout, setup, teardown),
		cmocka_unit_test(test_timeout_env),
		cmocka_unit_test_setup_teardown(test_handover_hold_and_carry, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
