/* tokens.c: the offload token registry (vdisk's offload_read and
 * offload_write; docs/vdisk.md "Offload copy", docs/protocol.md "Offload
 * tokens").
 *
 * scmd is the only party both providers of an offload copy trust. The
 * source provider mints a token (512 random bits) for a client's channel
 * and registers it here (token.register): scmd records which service and
 * provider instance issued it, for which channel (so for whose grant), how
 * long it lives. The destination provider, asked by a client to write a
 * token's data, redeems it (token.redeem): scmd checks that the token is
 * known, not expired, its issuing provider the same process, its channel
 * alive (a policy reload that revokes the channel, or the client leaving,
 * drops its tokens), then forgets it (one use), and brokers a channel
 * from the destination provider to the source provider for that token
 * alone: the source gets it as a grant with "token" set and only the
 * internal methods, constrained to the token, which no client grant can
 * carry. Identity comes from the control socket a frame arrived on: a
 * provider registers tokens for its own channels only, and redeems for its
 * own channels only.
 *
 * Bounded: TOKENS_PER_CLIENT per endpoint, TOKENS_PER_PROVIDER per
 * service; expired tokens are swept whenever one is registered. */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scmd.h"

#define TOKEN_BYTES 64

struct token {
	struct list node;
	uint8_t tok[TOKEN_BYTES];
	struct service *svc;
	pid_t pid;          /* the provider instance that issued it */
	uint64_t channel;   /* the client's channel it was issued on */
	struct endpoint *ep; /* that client's endpoint, charged for it */
	uid_t uid;
	uint64_t expires;   /* now_usec() */
	uint64_t length;
};

static void token_free(struct token *t)
{
	list_del(&t->node);
	explicit_bzero(t->tok, sizeof t->tok);
	free(t);
}

void tokens_drop_channel(struct scmd *d, uint64_t channel)
{
	if (!d->tokens.next)
		return;
	struct list *p, *n;
	list_for_each_safe(p, n, &d->tokens)
	{
		struct token *t = list_entry(p, struct token, node);
		if (t->channel == channel)
			token_free(t);
	}
}

static void sweep(struct scmd *d)
{
	uint64_t now = now_usec();
	struct list *p, *n;
	list_for_each_safe(p, n, &d->tokens)
	{
		struct token *t = list_entry(p, struct token, node);
		if (t->expires <= now)
			token_free(t);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* 128 lower-case hex digits. */
static bool token_parse(const char *s, uint8_t out[TOKEN_BYTES])
{
	if (!s || strlen(s) != 2 * TOKEN_BYTES)
		return false;
	for (size_t i = 0; i < TOKEN_BYTES; i++) {
		int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
		if (h < 0 || l < 0)
			return false;
		out[i] = (uint8_t)(h << 4 | l);
	}
	return true;
}

/* Compares all 64 bytes whatever differs first. */
static bool token_equal(const uint8_t *a, const uint8_t *b)
{
	uint8_t x = 0;
	for (size_t i = 0; i < TOKEN_BYTES; i++)
		x |= a[i] ^ b[i];
	return x == 0;
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static bool juint(json_object *o, const char *k, uint64_t *ret)
{
	json_object *v;
	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return false;
	*ret = json_object_get_uint64(v);
	return true;
}

static void reply_fail(struct scmd *d, struct service *s, uint32_t id, int code, const char *fmt, ...)
	_printf_(5, 6);
static void reply_fail(struct scmd *d, struct service *s, uint32_t id, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = scm_error_newv(code, "scmd/tokens", fmt, ap);
	va_end(ap);
	if (e)
		service_reply_error(d, s, id, e);
	scm_error_free(e);
}

/* The channel a provider names must be one of its own. */
static struct channel *own_channel(struct scmd *d, struct service *s, json_object *args)
{
	uint64_t id;
	if (!juint(args, "channel", &id))
		return NULL;
	struct channel *ch = channel_find(d, id);
	return ch && ch->svc == s ? ch : NULL;
}

static void do_register(struct scmd *d, struct service *s, uint32_t id, json_object *args)
{
	uint8_t tok[TOKEN_BYTES];
	uint64_t length = 0, ttl = 0;
	struct channel *ch = own_channel(d, s, args);
	if (!ch) {
		reply_fail(d, s, id, SCM_E_NOT_FOUND, "token.register: \"channel\" is not a live channel of '%s'",
			   s->name);
		return;
	}
	if (!token_parse(jstr(args, "token"), tok) || !juint(args, "length", &length)) {
		reply_fail(d, s, id, SCM_E_INVALID,
			   "token.register needs {\"token\": 128 hex digits, \"length\": bytes, \"channel\": id}");
		return;
	}
	juint(args, "ttl_ms", &ttl);
	if (ttl == 0 || ttl > d->token_ttl_ms)
		ttl = d->token_ttl_ms;
	sweep(d);
	unsigned by_ep = 0, by_svc = 0;
	struct list *p, *n;
	list_for_each_safe(p, n, &d->tokens)
	{
		struct token *t = list_entry(p, struct token, node);
		by_ep += t->ep == ch->ep;
		by_svc += t->svc == s;
		if (token_equal(t->tok, tok)) {
			reply_fail(d, s, id, SCM_E_EXISTS, "token.register: this token is registered already");
			return;
		}
	}
	if (by_ep >= TOKENS_PER_CLIENT || by_svc >= TOKENS_PER_PROVIDER) {
		reply_fail(d, s, id, SCM_E_QUOTA,
			   by_ep >= TOKENS_PER_CLIENT
				   ? "endpoint '%s' holds %u live offload tokens, its limit; use or let some expire"
				   : "service '%s' has issued %u live offload tokens, its limit",
			   by_ep >= TOKENS_PER_CLIENT ? ch->ep->name : s->name,
			   by_ep >= TOKENS_PER_CLIENT ? TOKENS_PER_CLIENT : TOKENS_PER_PROVIDER);
		return;
	}
	struct token *t = calloc(1, sizeof *t);
	if (!t) {
		reply_fail(d, s, id, -ENOMEM, "out of memory");
		return;
	}
	memcpy(t->tok, tok, sizeof tok);
	t->svc = s;
	t->pid = s->pid;
	t->channel = ch->id;
	t->ep = ch->ep;
	t->uid = ch->cred.uid;
	t->length = length;
	t->expires = now_usec() + ttl * 1000;
	list_add(&d->tokens, &t->node);
	json_object *r = json_object_new_object();
	json_object_object_add(r, "ttl_ms", json_object_new_uint64(ttl));
	service_reply(d, s, id, r, NULL, 0);
	json_object_put(r);
}

static void do_redeem(struct scmd *d, struct service *s, uint32_t id, json_object *args)
{
	uint8_t tok[TOKEN_BYTES];
	const char *hex = jstr(args, "token");
	struct channel *dst = own_channel(d, s, args);
	if (!dst) {
		reply_fail(d, s, id, SCM_E_NOT_FOUND, "token.redeem: \"channel\" is not a live channel of '%s'",
			   s->name);
		return;
	}
	if (!token_parse(hex, tok)) {
		reply_fail(d, s, id, SCM_E_INVALID, "token.redeem: a token is 128 lower-case hex digits");
		return;
	}
	struct token *t = NULL;
	struct list *p, *n;
	list_for_each_safe(p, n, &d->tokens)
	{
		struct token *x = list_entry(p, struct token, node);
		if (token_equal(x->tok, tok))
			t = x;
	}
	if (!t) {
		reply_fail(d, s, id, SCM_E_NOT_FOUND,
			   "scmd knows no such token: never issued, already used, or dropped (its source channel ended "
			   "or was revoked)");
		return;
	}
	if (t->expires <= now_usec()) {
		token_free(t);
		reply_fail(d, s, id, SCM_E_TIMEOUT, "the token expired");
		return;
	}
	struct service *src = t->svc;
	if (src->state != P_READY || src->pid != t->pid || src->ctl.fd < 0) {
		token_free(t);
		reply_fail(d, s, id, SCM_E_PROVIDER_GONE, "the provider of '%s' that issued the token is gone",
			   src->name);
		return;
	}
	uint64_t length = t->length;
	token_free(t); /* one use: a replay finds nothing */

	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
		reply_fail(d, s, id, -errno, "socketpair: %m");
		return;
	}
	uint64_t chid = ++d->next_channel;
	/* The grant scmd vouches for: a token channel, the internal methods
	 * only, each constrained to this token. */
	json_object *g = json_object_new_object(), *methods = json_object_new_array(),
		    *cons = json_object_new_object(), *all = json_object_new_object(),
		    *eq = json_object_new_object();
	json_object_object_add(g, "op", json_object_new_string("channel"));
	json_object_object_add(g, "channel", json_object_new_int64((int64_t)chid));
	json_object_object_add(g, "service", json_object_new_string(src->name));
	json_object_object_add(g, "caller", json_object_new_string(dst->ep_name));
	json_object_object_add(g, "uid", json_object_new_int64(dst->cred.uid));
	json_object_object_add(g, "gid", json_object_new_int64(dst->cred.gid));
	json_object_object_add(g, "pid", json_object_new_int64(dst->cred.pid));
	json_object_array_add(methods, json_object_new_string("offload_map"));
	json_object_array_add(methods, json_object_new_string("offload_fetch"));
	json_object_array_add(methods, json_object_new_string("offload_check"));
	json_object_object_add(g, "methods", methods);
	json_object_object_add(eq, "eq", json_object_new_string(hex));
	json_object_object_add(all, "token", eq);
	json_object_object_add(cons, "*", all);
	json_object_object_add(g, "constraints", cons);
	json_object_object_add(g, "token", json_object_new_string(hex));
	int r = service_send(d, src, SCM_FRAME_CALL, SCM_FLAG_NO_REPLY, g, &sp[1], 1);
	json_object_put(g);
	close(sp[1]);
	if (r != 0) {
		close(sp[0]);
		reply_fail(d, s, id, SCM_E_PROVIDER_GONE, "cannot hand the token channel to the provider of '%s'",
			   src->name);
		return;
	}
	json_object *rep = json_object_new_object();
	json_object_object_add(rep, "channel", json_object_new_int64((int64_t)chid));
	json_object_object_add(rep, "service", json_object_new_string(src->name));
	json_object_object_add(rep, "length", json_object_new_uint64(length));
	service_reply(d, s, id, rep, &sp[0], 1);
	json_object_put(rep);
	close(sp[0]);
	log_info("offload token redeemed: '%s' (channel %llu) reads from '%s' over channel %llu", s->name,
		 (unsigned long long)dst->id, src->name, (unsigned long long)chid);
}

bool tokens_control(struct scmd *d, struct service *s, scm_message *m)
{
	const char *op = m->json ? jstr(m->json, "op") : NULL;
	if (!op || strncmp(op, "token.", 6) != 0)
		return false;
	if (!d->tokens.next) {
		reply_fail(d, s, m->call_id, SCM_E_INTERNAL, "no token registry");
		return true;
	}
	if (!strcmp(op, "token.register"))
		do_register(d, s, m->call_id, m->json);
	else if (!strcmp(op, "token.redeem"))
		do_redeem(d, s, m->call_id, m->json);
	else
		reply_fail(d, s, m->call_id, SCM_E_INVALID, "unknown control op '%s'", op);
	return true;
}
