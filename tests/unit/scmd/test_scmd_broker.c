/* Unit tests of scmd's broker logic without a daemon: connects that wait
 * for an activation (scm/scmd/pending.c, scm/scmd/broker.c), the quotas they are
 * charged to, a connection that closes while its connects wait, and
 * revocation (scm/scmd/channel.c). The peers are real: the client and the
 * provider are the other ends of socketpairs, read with the wire codec,
 * so the test sees the frames and fds scmd would send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scmd.h"

#define IDL "{\"interface\":\"echo\",\"version\":3,\"methods\":[{\"name\":\"ping\"}]}"

struct fx {
	struct scmd d;
	struct endpoint ep;
	struct service s;
	int prov; /* the provider's end of its control socket */
};

static char *allow_all[] = { "*", NULL };

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int sp[2];
	scm_error *e = NULL;

	f->d.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	list_init(&f->d.endpoints);
	list_init(&f->d.services);
	list_init(&f->d.channels);
	list_init(&f->d.dead_conns);
	list_init(&f->d.containers);
	f->ep = (struct endpoint){ .name = "app", .limit = { .channels = 8, .pending = 2, .conns = 8, .queued = 1 << 20 } };
	list_init(&f->ep.conns);
	list_init(&f->ep.channels);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
	f->prov = sp[1];
	f->s = (struct service){ .name = "echo", .iface_name = "echo", .manifest_path = "test.json",
				 .allow = allow_all, .state = P_STARTING, .ctl = { sp[0], NULL },
				 .timer = { -1, NULL } };
	assert_int_equal(scm_idl_parse(IDL, strlen(IDL), "test", &f->s.idl, &e), 0);
	list_init(&f->s.pending);
	list_init(&f->s.channels);
	list_add(&f->d.services, &f->s.node);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct list *p, *t;
	list_for_each_safe(p, t, &f->d.channels) channel_free(&f->d, list_entry(p, struct channel, node));
	list_for_each_safe(p, t, &f->ep.conns) conn_close(&f->d, list_entry(p, struct conn, node));
	scm_outq_clear(&f->s.ctl_q);
	close(f->s.ctl.fd);
	close(f->prov);
	close(f->d.epoll_fd);
	scm_idl_free(f->s.idl);
	free(f);
	return 0;
}

/* A client connection on the endpoint; *ret_peer is the client's end. */
static struct conn *client(struct fx *f, int *ret_peer)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
	struct conn *c = conn_new(&f->d, sp[0], CONN_ENDPOINT, &f->ep);
	assert_non_null(c);
	*ret_peer = sp[1];
	return c;
}

static void connect_(struct fx *f, struct conn *c, uint32_t call_id)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "service", json_object_new_string("echo"));
	broker_connect(&f->d, c, call_id, a);
	json_object_put(a);
}

/* The next frame on fd (which must have one). */
static scm_message *recv_frame(int fd)
{
	scm_message *m = NULL;
	scm_error *e = NULL;
	int r = scm_wire_recv(fd, MSG_DONTWAIT, &m, &e);
	if (r != 0)
		fail_msg("expected a frame, got %d (%s)", r, e && e->message ? e->message : "");
	return m;
}

static void assert_nothing(int fd)
{
	scm_message *m = NULL;
	scm_error *e = NULL;
	assert_int_equal(scm_wire_recv(fd, MSG_DONTWAIT, &m, &e), -EAGAIN);
}

static int error_code(const scm_message *m)
{
	scm_error *e = scm_error_from_json(m->json);
	int code = e ? e->code : 0;
	scm_error_free(e);
	return code;
}

static const char *jstr(const scm_message *m, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(m->json, k, &v) ? json_object_get_string(v) : "";
}

static void pending_connects_wait_then_get_channels_in_order(void **state)
{
	struct fx *f = *state;
	int peer;
	struct conn *c = client(f, &peer);

	connect_(f, c, 1);
	connect_(f, c, 2);
	/* allowed, but the provider is starting: nobody is answered yet */
	assert_nothing(peer);
	assert_int_equal(f->ep.used.pending, 2);
	assert_int_equal(c->pending, 2);
	/* a third is over the pending quota, refused at once, named */
	connect_(f, c, 3);
	scm_message *m = recv_frame(peer);
	assert_int_equal(m->type, SCM_FRAME_ERROR);
	assert_int_equal(m->call_id, 3);
	assert_int_equal(error_code(m), SCM_E_QUOTA);
	assert_non_null(strstr(json_object_to_json_string(m->json), "connects waiting for activation"));
	scm_message_free(m);
	assert_int_equal(f->ep.used.pending, 2);

	/* the provider says ready: both get channels, first come first served */
	f->s.state = P_READY;
	broker_flush_pending(&f->d, &f->s);
	for (uint32_t id = 1; id <= 2; id++) {
		m = recv_frame(peer);
		assert_int_equal(m->type, SCM_FRAME_REPLY);
		assert_int_equal(m->call_id, id);
		assert_int_equal(m->n_fds, 1);
		assert_string_equal(jstr(m, "interface"), "echo");
		scm_message_free(m);
		m = recv_frame(f->prov); /* the provider's side of the hand-off */
		assert_string_equal(jstr(m, "op"), "channel");
		assert_string_equal(jstr(m, "caller"), "app");
		assert_int_equal(m->n_fds, 1);
		scm_message_free(m);
	}
	assert_int_equal(f->ep.used.pending, 0);
	assert_int_equal(c->pending, 0);
	assert_int_equal(f->ep.used.channels, 2);
	assert_true(list_empty(&f->s.pending));
	close(peer);
}

static void pending_connects_count_against_the_channel_quota(void **state)
{
	struct fx *f = *state;
	int peer;
	struct conn *c = client(f, &peer);

	f->ep.limit.channels = 2;
	f->ep.limit.pending = 10;
	connect_(f, c, 1);
	connect_(f, c, 2);
	connect_(f, c, 3);
	scm_message *m = recv_frame(peer);
	assert_int_equal(m->call_id, 3);
	assert_int_equal(error_code(m), SCM_E_QUOTA);
	assert_non_null(strstr(json_object_to_json_string(m->json), "live channels"));
	scm_message_free(m);
	assert_int_equal(f->ep.used.pending, 2);
	close(peer);
}

static void a_closed_connection_loses_only_its_pending_connects(void **state)
{
	struct fx *f = *state;
	int p1, p2;
	struct conn *c1 = client(f, &p1), *c2 = client(f, &p2);

	connect_(f, c1, 1);
	connect_(f, c2, 7);
	assert_int_equal(f->ep.used.pending, 2);
	assert_int_equal(f->ep.used.conns, 2);
	conn_close(&f->d, c1);
	assert_int_equal(f->ep.used.pending, 1);
	assert_int_equal(f->ep.used.conns, 1);
	f->s.state = P_READY;
	broker_flush_pending(&f->d, &f->s);
	scm_message *m = recv_frame(p2);
	assert_int_equal(m->type, SCM_FRAME_REPLY);
	assert_int_equal(m->call_id, 7);
	scm_message_free(m);
	m = recv_frame(f->prov);
	scm_message_free(m);
	assert_nothing(f->prov); /* one hand-off only: c1's connect is gone */
	assert_int_equal(f->ep.used.channels, 1);
	assert_int_equal(f->ep.used.pending, 0);
	close(p1);
	close(p2);
}

static void a_failed_activation_answers_every_pending_connect(void **state)
{
	struct fx *f = *state;
	int peer;
	struct conn *c = client(f, &peer);

	connect_(f, c, 1);
	connect_(f, c, 2);
	scm_error *why = scm_error_new(SCM_E_ACTIVATION, "test", "provider exited");
	broker_fail_pending(&f->d, &f->s, why);
	scm_error_free(why);
	for (uint32_t id = 1; id <= 2; id++) {
		scm_message *m = recv_frame(peer);
		assert_int_equal(m->type, SCM_FRAME_ERROR);
		assert_int_equal(m->call_id, id);
		assert_int_equal(error_code(m), SCM_E_ACTIVATION);
		scm_message_free(m);
	}
	assert_int_equal(f->ep.used.pending, 0);
	assert_int_equal(c->pending, 0);
	assert_int_equal(f->ep.used.channels, 0);
	assert_nothing(f->prov);
	close(peer);
}

/* A channel made by a connect to a ready provider; *ret_chan is the
 * client's end of it. */
static struct channel *live_channel(struct fx *f, struct conn *c, int peer, int *ret_chan)
{
	f->s.state = P_READY;
	connect_(f, c, 1);
	scm_message *m = recv_frame(peer);
	assert_int_equal(m->type, SCM_FRAME_REPLY);
	*ret_chan = scm_message_steal_fd(m, 0);
	scm_message_free(m);
	m = recv_frame(f->prov);
	scm_message_free(m); /* the provider lets go of its end */
	assert_false(list_empty(&f->d.channels));
	return list_entry(f->d.channels.next, struct channel, node);
}

static void revoke_tells_the_client_and_the_provider_and_frees_the_channel(void **state)
{
	struct fx *f = *state;
	int peer, chan;
	struct conn *c = client(f, &peer);
	struct channel *ch = live_channel(f, c, peer, &chan);
	uint64_t id = ch->id;

	/* an event for the channel still pending later in this batch */
	struct epoll_event evs[2] = { { EPOLLIN, { .ptr = &c->w } }, { EPOLLRDHUP, { .ptr = &ch->w } } };
	struct evbatch bt;
	uint32_t events;
	evbatch_start(&bt, evs, 2);
	f->d.batch = &bt;
	assert_ptr_equal(evbatch_next(&bt, &events), &c->w);
	channel_revoke(&f->d, ch, SCM_E_REVOKED, "test %d", 42);
	assert_null(evbatch_next(&bt, &events)); /* the freed channel's event is gone */
	f->d.batch = NULL;

	/* the client: an error naming the channel and the reason, then the end */
	scm_message *m = recv_frame(chan);
	assert_int_equal(m->type, SCM_FRAME_ERROR);
	assert_int_equal(error_code(m), SCM_E_REVOKED);
	assert_non_null(strstr(json_object_to_json_string(m->json), "was cut: test 42"));
	scm_message_free(m);
	scm_error *e = NULL;
	assert_int_equal(scm_wire_recv(chan, MSG_DONTWAIT, &m, &e), 1);
	/* the provider: told which channel went */
	m = recv_frame(f->prov);
	assert_int_equal(m->type, SCM_FRAME_EVENT);
	assert_string_equal(jstr(m, "op"), "revoke");
	json_object *v;
	assert_true(json_object_object_get_ex(m->json, "channel", &v));
	assert_int_equal(json_object_get_int64(v), (int64_t)id);
	scm_message_free(m);
	/* and the ledger */
	assert_int_equal(f->ep.used.channels, 0);
	assert_true(list_empty(&f->d.channels));
	assert_true(list_empty(&f->s.channels));
	assert_true(list_empty(&f->ep.channels));
	assert_null(channel_find(&f->d, id));
	close(chan);
	close(peer);
}

static void a_client_hang_up_frees_the_channel(void **state)
{
	struct fx *f = *state;
	int peer, chan;
	struct conn *c = client(f, &peer);
	live_channel(f, c, peer, &chan);
	assert_int_equal(f->ep.used.channels, 1);

	close(chan); /* the client leaves: the provider's end sees RDHUP */
	struct epoll_event evs[8];
	int n = epoll_wait(f->d.epoll_fd, evs, 8, 1000);
	struct evbatch bt;
	struct watch *w;
	uint32_t events;
	evbatch_start(&bt, evs, n);
	f->d.batch = &bt;
	while ((w = evbatch_next(&bt, &events)))
		if (w != &c->w) /* the client's conn has nothing to say */
			w->fn(&f->d, w, events);
	f->d.batch = NULL;
	assert_int_equal(f->ep.used.channels, 0);
	assert_true(list_empty(&f->d.channels));
	close(peer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pending_connects_wait_then_get_channels_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(pending_connects_count_against_the_channel_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(a_closed_connection_loses_only_its_pending_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(a_failed_activation_answers_every_pending_connect, setup, teardown),
		cmocka_unit_test_setup_teardown(revoke_tells_the_client_and_the_provider_and_frees_the_channel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_client_hang_up_frees_the_channel, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
