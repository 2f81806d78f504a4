/* Unit tests of scmd's offload token registry (scm/scmd/tokens.c) without
 * a daemon: two services whose control sockets are socketpairs the test
 * reads as the providers, channels made by channel_new, and the providers'
 * calls handed to tokens_control() as the control handler would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scmd.h"

struct fx {
	struct scmd d;
	struct endpoint ep;
	struct service src, dst;
	int src_prov, dst_prov; /* the providers' ends of their control sockets */
	struct channel *src_ch, *dst_ch;
	uint32_t next_id;
};

static void service_init(struct service *s, const char *name, int fd, pid_t pid)
{
	*s = (struct service){ .name = (char *)name, .iface_name = "vdisk", .state = P_READY, .pid = pid,
			       .ctl = { fd, NULL }, .timer = { -1, NULL } };
	list_init(&s->pending);
	list_init(&s->channels);
}

static struct channel *chan(struct fx *f, struct service *s)
{
	int sp[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	close(sp[0]);
	struct ucred cr = { .pid = 42, .uid = 1000, .gid = 1000 };
	struct channel *ch = channel_new(&f->d, s, &f->ep, &cr, sp[1], "test");
	assert_non_null(ch);
	channel_link(&f->d, ch);
	return ch;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	int a[2], b[2];
	f->d.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	list_init(&f->d.endpoints);
	list_init(&f->d.services);
	list_init(&f->d.channels);
	list_init(&f->d.dead_conns);
	list_init(&f->d.containers);
	list_init(&f->d.tokens);
	f->d.token_ttl_ms = TOKEN_TTL_DEFAULT_MS;
	f->ep = (struct endpoint){ .name = "app", .limit = { .channels = 256, .pending = 2, .conns = 8, .queued = 1 << 20 } };
	list_init(&f->ep.conns);
	list_init(&f->ep.channels);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, b), 0);
	service_init(&f->src, "va", a[0], 100);
	service_init(&f->dst, "vb", b[0], 200);
	f->src_prov = a[1];
	f->dst_prov = b[1];
	f->src_ch = chan(f, &f->src);
	f->dst_ch = chan(f, &f->dst);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	struct list *p, *t;
	list_for_each_safe(p, t, &f->d.channels) channel_free(&f->d, list_entry(p, struct channel, node));
	assert_true(list_empty(&f->d.tokens)); /* every token went with its channel */
	scm_outq_clear(&f->src.ctl_q);
	scm_outq_clear(&f->dst.ctl_q);
	close(f->src.ctl.fd);
	close(f->dst.ctl.fd);
	close(f->src_prov);
	close(f->dst_prov);
	close(f->d.epoll_fd);
	free(f);
	return 0;
}

/* The provider of s calls op; returns scmd's answer (REPLY or ERROR). */
static scm_message *call(struct fx *f, struct service *s, int prov, json_object *args)
{
	scm_message m = { .type = SCM_FRAME_CALL, .call_id = ++f->next_id, .json = args };
	assert_true(tokens_control(&f->d, s, &m));
	json_object_put(args);
	scm_message *r = NULL;
	assert_int_equal(scm_wire_recv(prov, MSG_DONTWAIT, &r, NULL), 0);
	assert_int_equal(r->call_id, f->next_id);
	return r;
}

static int code_of(scm_message *r)
{
	if (r->type != SCM_FRAME_ERROR)
		return 0;
	scm_error *e = scm_message_error(r);
	int c = e ? e->code : -1;
	scm_error_free(e);
	return c;
}

static const char *hex(char c)
{
	static char h[129];
	memset(h, c, 128);
	h[128] = 0;
	return h;
}

static json_object *reg_args(uint64_t channel, const char *token, uint64_t ttl)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "op", json_object_new_string("token.register"));
	json_object_object_add(a, "channel", json_object_new_uint64(channel));
	json_object_object_add(a, "token", json_object_new_string(token));
	json_object_object_add(a, "length", json_object_new_uint64(1 << 20));
	json_object_object_add(a, "ttl_ms", json_object_new_uint64(ttl));
	return a;
}

static json_object *redeem_args(uint64_t channel, const char *token)
{
	json_object *a = json_object_new_object();
	json_object_object_add(a, "op", json_object_new_string("token.redeem"));
	json_object_object_add(a, "channel", json_object_new_uint64(channel));
	json_object_object_add(a, "token", json_object_new_string(token));
	return a;
}

static int reg(struct fx *f, const char *token, uint64_t ttl, uint64_t *ret_ttl)
{
	scm_message *r = call(f, &f->src, f->src_prov, reg_args(f->src_ch->id, token, ttl));
	int c = code_of(r);
	json_object *v;
	if (!c && ret_ttl && json_object_object_get_ex(r->json, "ttl_ms", &v))
		*ret_ttl = json_object_get_uint64(v);
	scm_message_free(r);
	return c;
}

static int redeem(struct fx *f, const char *token)
{
	scm_message *r = call(f, &f->dst, f->dst_prov, redeem_args(f->dst_ch->id, token));
	int c = code_of(r);
	scm_message_free(r);
	return c;
}

static void test_register_redeem_once(void **state)
{
	struct fx *f = *state;
	uint64_t ttl = 0;
	/* the lifetime: scmd's default, never longer */
	assert_int_equal(reg(f, hex('a'), 0, &ttl), 0);
	assert_int_equal(ttl, TOKEN_TTL_DEFAULT_MS);
	assert_int_equal(reg(f, hex('b'), 10 * TOKEN_TTL_DEFAULT_MS, &ttl), 0);
	assert_int_equal(ttl, TOKEN_TTL_DEFAULT_MS);
	assert_int_equal(reg(f, hex('a'), 0, NULL), SCM_E_EXISTS);

	scm_message *r = call(f, &f->dst, f->dst_prov, redeem_args(f->dst_ch->id, hex('a')));
	assert_int_equal(r->type, SCM_FRAME_REPLY);
	assert_int_equal(r->n_fds, 1);
	json_object *v;
	assert_true(json_object_object_get_ex(r->json, "service", &v));
	assert_string_equal(json_object_get_string(v), "va");
	assert_true(json_object_object_get_ex(r->json, "length", &v));
	assert_int_equal(json_object_get_uint64(v), 1 << 20);
	/* the source provider got the other end, as a token channel */
	scm_message *g = NULL;
	assert_int_equal(scm_wire_recv(f->src_prov, MSG_DONTWAIT, &g, NULL), 0);
	assert_int_equal(g->n_fds, 1);
	assert_true(json_object_object_get_ex(g->json, "token", &v));
	assert_string_equal(json_object_get_string(v), hex('a'));
	assert_true(json_object_object_get_ex(g->json, "caller", &v));
	assert_string_equal(json_object_get_string(v), "app");
	assert_true(json_object_object_get_ex(g->json, "methods", &v));
	assert_int_equal(json_object_array_length(v), 3);
	const char *cons = json_object_to_json_string_ext(json_object_object_get(g->json, "constraints"),
							  JSON_C_TO_STRING_PLAIN);
	assert_non_null(strstr(cons, "{\"*\":{\"token\":{\"eq\":\"aaaa"));
	/* the two ends are one socketpair */
	assert_int_equal(send(r->fds[0], "x", 1, 0), 1);
	char c;
	assert_int_equal(recv(g->fds[0], &c, 1, 0), 1);
	scm_message_free(g);
	scm_message_free(r);
	/* one use */
	assert_int_equal(redeem(f, hex('a')), SCM_E_NOT_FOUND);
	assert_int_equal(redeem(f, hex('b')), 0);
	scm_message *g2 = NULL;
	assert_int_equal(scm_wire_recv(f->src_prov, MSG_DONTWAIT, &g2, NULL), 0);
	scm_message_free(g2);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	/* forged and malformed */
	assert_int_equal(reg(f, hex('c'), 0, NULL), 0);
	assert_int_equal(redeem(f, hex('d')), SCM_E_NOT_FOUND);
	assert_int_equal(redeem(f, "c0ffee"), SCM_E_INVALID);
	assert_int_equal(redeem(f, hex('C')), SCM_E_INVALID);
	assert_int_equal(reg(f, hex('g'), 0, NULL), SCM_E_INVALID);
	/* a provider names only its own channels: the source cannot register
	 * on the destination's channel, nor the destination redeem for the
	 * source's */
	scm_message *r = call(f, &f->src, f->src_prov, reg_args(f->dst_ch->id, hex('e'), 0));
	assert_int_equal(code_of(r), SCM_E_NOT_FOUND);
	scm_message_free(r);
	r = call(f, &f->dst, f->dst_prov, redeem_args(f->src_ch->id, hex('c')));
	assert_int_equal(code_of(r), SCM_E_NOT_FOUND);
	scm_message_free(r);
	/* the issuing provider restarted: its tokens mean nothing */
	f->src.pid = 101;
	assert_int_equal(redeem(f, hex('c')), SCM_E_PROVIDER_GONE);
	f->src.pid = 100;
	/* unknown op */
	json_object *a = json_object_new_object();
	json_object_object_add(a, "op", json_object_new_string("token.steal"));
	r = call(f, &f->src, f->src_prov, a);
	assert_int_equal(code_of(r), SCM_E_INVALID);
	scm_message_free(r);
	/* not a token op: left to the caller */
	scm_message m = { .type = SCM_FRAME_CALL, .json = json_object_new_object() };
	json_object_object_add(m.json, "op", json_object_new_string("ready"));
	assert_false(tokens_control(&f->d, &f->src, &m));
	json_object_put(m.json);
}

static void test_expiry(void **state)
{
	struct fx *f = *state;
	uint64_t ttl = 0;
	f->d.token_ttl_ms = 1;
	assert_int_equal(reg(f, hex('1'), 0, &ttl), 0);
	assert_int_equal(ttl, 1);
	nanosleep(&(struct timespec){ 0, 5000000 }, NULL); /* past it, whatever the clock's grain */
	assert_int_equal(redeem(f, hex('1')), SCM_E_TIMEOUT);
	assert_int_equal(redeem(f, hex('1')), SCM_E_NOT_FOUND); /* and forgotten */
}

static void test_channel_end_drops_tokens(void **state)
{
	struct fx *f = *state;
	assert_int_equal(reg(f, hex('2'), 0, NULL), 0);
	channel_free(&f->d, f->src_ch); /* closed, or revoked by a reload */
	f->src_ch = chan(f, &f->src);
	assert_int_equal(redeem(f, hex('2')), SCM_E_NOT_FOUND);
}

static void test_quota(void **state)
{
	struct fx *f = *state;
	char t[129];
	for (unsigned i = 0; i < TOKENS_PER_CLIENT; i++) {
		snprintf(t, sizeof t, "%0128x", i);
		assert_int_equal(reg(f, t, 0, NULL), 0);
	}
	snprintf(t, sizeof t, "%0128x", TOKENS_PER_CLIENT);
	assert_int_equal(reg(f, t, 0, NULL), SCM_E_QUOTA);
	/* a used token makes room */
	snprintf(t, sizeof t, "%0128x", 0);
	assert_int_equal(redeem(f, t), 0);
	scm_message *g = NULL;
	assert_int_equal(scm_wire_recv(f->src_prov, MSG_DONTWAIT, &g, NULL), 0);
	scm_message_free(g);
	snprintf(t, sizeof t, "%0128x", TOKENS_PER_CLIENT);
	assert_int_equal(reg(f, t, 0, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_register_redeem_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_channel_end_drops_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
