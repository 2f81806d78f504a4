/* provider-ctl.c: a provider's own calls to scmd over its control
 * connection (scm_provider_control_call). scmd answers each with a REPLY
 * or ERROR frame carrying the call's id; the skeleton's control handler
 * hands those here, on the loop's thread. Few and short-lived (the vdisk
 * provider's offload tokens), so a list is enough. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "scm/macro.h"
#include "scm-internal/error.h"
#include "scm-internal/provider-ctl.h"
#include "scm-internal/wire.h"

struct ctl_call {
	struct ctl_call *next;
	uint32_t id;
	scm_control_reply_fn cb;
	void *userdata;
};

/* Bounded: a provider that loses track of its calls cannot grow this. */
#define CTL_CALLS_MAX 1024

int scm_provider_control_call(scm_provider *p, json_object *args, scm_control_reply_fn cb, void *userdata,
			      scm_error **ret_err)
{
	struct ctl_calls *cc = provider_ctl_calls_(p);
	size_t n = 0;
	for (struct ctl_call *c = cc->head; c; c = c->next)
		n++;
	if (n >= CTL_CALLS_MAX)
		return scm_fail(ret_err, SCM_E_BUSY, "%zu calls to scmd are waiting for replies, the limit", n);
	struct ctl_call *c = calloc(1, sizeof *c);
	if (!c)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	/* ids never 0 (channel-level frames) */
	if (++cc->next_id == 0)
		cc->next_id = 1;
	c->id = cc->next_id;
	c->cb = cb;
	c->userdata = userdata;
	int r = scm_wire_send_json(provider_ctl_fd_(p), MSG_NOSIGNAL, SCM_FRAME_CALL, 0, c->id, 1, args, NULL, 0,
				   NULL, 0);
	if (r < 0) {
		free(c);
		return scm_fail(ret_err, r, "calling scmd over the control connection: %s", strerror(-r));
	}
	c->next = cc->head;
	cc->head = c;
	return 0;
}

void provider_ctl_reply_(scm_provider *p, scm_message *m)
{
	struct ctl_calls *cc = provider_ctl_calls_(p);
	for (struct ctl_call **pc = &cc->head; *pc; pc = &(*pc)->next) {
		struct ctl_call *c = *pc;
		if (c->id != m->call_id)
			continue;
		*pc = c->next;
		scm_error *e = m->type == SCM_FRAME_ERROR ? scm_message_error(m) : NULL;
		if (m->type == SCM_FRAME_ERROR && !e)
			e = scm_error_new(SCM_E_PROTOCOL, "libscm/provider", "scmd sent an ERROR frame without an error");
		c->cb(p, e ? NULL : m, e, c->userdata);
		scm_error_free(e);
		free(c);
		break;
	}
	scm_message_free(m); /* a reply to nothing we asked: dropped */
}

void provider_ctl_fail_all_(scm_provider *p)
{
	struct ctl_calls *cc = provider_ctl_calls_(p);
	while (cc->head) {
		struct ctl_call *c = cc->head;
		cc->head = c->next;
		scm_error *e = scm_error_new(SCM_E_PROVIDER_GONE, "libscm/provider",
					     "the control connection to scmd ended before it answered");
		c->cb(p, NULL, e, c->userdata);
		scm_error_free(e);
		free(c);
	}
}
