/* provider-checkpoint.c: a provider's state held by scmd, for a recovery
 * after a crash (docs/handover.md, "A provider that crashes").
 *
 * scm_provider_checkpoint() saves the state with the handover's callbacks
 * (save() and save_channel(), scm_provider_recovery() true in them) into a
 * sealed memfd of the handover's format and sends it to scmd on the
 * control connection: its fds first ("checkpoint.fds" events of up to
 * SCM_FDS_MAX), then {"op":"checkpoint","fds":N} with the memfd. SCM_SEQPACKET
 * keeps them in order, and what was sent before the provider died is
 * still read by scmd after it: a checkpoint sent before a reply is the one
 * a recovery starts from once the client saw that reply.
 *
 * At most one every SCM_CHECKPOINT_MIN_MS: a call sooner marks it due, and
 * the loop sends it when its turn comes (scm_provider_dispatch waits no
 * longer than that), so the last change always reaches scmd. scmd bounds
 * the rate too, and the size, and refuses past them. Only a provider
 * scmd started with $SCM_PROVIDER_RECOVER=1 (its service has "recover":
 * true) sends any. */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scm/macro.h"
#include "scm-internal/error.h"
#include "scm-internal/provider-impl.h"

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int send_now(scm_provider *p, scm_error **ret_err)
{
	const int *fds = NULL;
	size_t n_fds = 0;
	int fd = -1;

	p->ckpt_due = false;
	p->ckpt_last_us = mono_us();
	p->ckpt_saving = true;
	int r = provider_ho_save_(p, &fd, &fds, &n_fds, ret_err);
	p->ckpt_saving = false;
	if (r != 0) {
		provider_ho_save_done_(p);
		return scm_fail(ret_err, r, "no checkpoint: scmd keeps the one it had");
	}
	for (size_t i = 0; r == 0 && i < n_fds; i += SCM_FDS_MAX) {
		static const char ev[] = "{\"op\":\"checkpoint.fds\"}";
		size_t k = n_fds - i < SCM_FDS_MAX ? n_fds - i : SCM_FDS_MAX;
		r = scm_wire_send(p->ctl_fd, MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, ev, sizeof ev - 1, NULL, 0,
				  fds + i, k);
	}
	if (r == 0) {
		char ev[64];
		int len = snprintf(ev, sizeof ev, "{\"op\":\"checkpoint\",\"fds\":%zu}", n_fds);
		r = scm_wire_send(p->ctl_fd, MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, ev, (size_t)len, NULL, 0, &fd, 1);
	}
	close(fd);
	provider_ho_save_done_(p);
	if (r < 0)
		return scm_fail(ret_err, r, "sending the checkpoint to scmd: %s", strerror(-r));
	return 0;
}

/* scmd says it holds checkpoints for this service ("recover": true in its
 * manifest): else there is nothing to send them to. */
static bool wanted(void)
{
	static int w = -1;
	if (w < 0) {
		const char *e = getenv("SCM_PROVIDER_RECOVER");
		w = e && strcmp(e, "1") == 0;
	}
	return w;
}

int scm_provider_checkpoint(scm_provider *p, scm_error **ret_err)
{
	if (!p)
		return scm_fail(ret_err, -EINVAL, "scm_provider_checkpoint: no provider");
	if (!wanted())
		return 0;
	if (provider_ho_quiet_(p) || provider_ho_handed_(p))
		return 0; /* a handover carries the state now */
	uint64_t now = mono_us();
	if (p->ckpt_last_us && now - p->ckpt_last_us < SCM_CHECKPOINT_MIN_MS * 1000u) {
		p->ckpt_due = true;
		return 0;
	}
	return send_now(p, ret_err);
}

int provider_ckpt_timeout_(scm_provider *p, int timeout_ms)
{
	if (!p->ckpt_due)
		return timeout_ms;
	uint64_t now = mono_us(), at = p->ckpt_last_us + SCM_CHECKPOINT_MIN_MS * 1000u;
	int left = now >= at ? 0 : (int)((at - now + 999) / 1000);
	return timeout_ms < 0 || left < timeout_ms ? left : timeout_ms;
}

void provider_ckpt_poll_(scm_provider *p)
{
	if (provider_ho_quiet_(p) || provider_ho_handed_(p)) {
		p->ckpt_due = false;
		return;
	}
	if (mono_us() - p->ckpt_last_us < SCM_CHECKPOINT_MIN_MS * 1000u)
		return;
	scm_error *e = NULL;
	send_now(p, &e); /* a failed one leaves scmd's older checkpoint: nothing else to do here */
	scm_error_free(e);
}
