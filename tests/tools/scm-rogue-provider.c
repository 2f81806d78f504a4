/* scm-rogue-provider: a provider of the echo interface that lies at a
 * handover, for core-handover.bats: scmd must keep only the fds a state
 * may carry, and refuse a state that does not match them.
 *   SCM_ROGUE=many   sends 264 fds (33 "handover.fds" frames), over the 256
 *   SCM_ROGUE=lie    sends 2 fds and says 3
 * and checkpoints scmd must refuse (core-recover.bats), right after ready:
 *   SCM_ROGUE=ckpt-burst     30 sealed checkpoints at once, over the rate's burst
 *   SCM_ROGUE=ckpt-unsealed  a checkpoint whose memfd is not sealed
 *   SCM_ROGUE=ckpt-fds       264 fds ahead of a checkpoint, over the 256
 * It speaks the provider protocol raw on $SCM_PROVIDER_FD (docs/protocol.md):
 * ready, then it answers "handover" and ignores everything else. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scm/scm.h"
#include "scm-internal/wire.h"

static void send_ev(int ctl, const char *text, const int *fds, size_t n)
{
	json_object *ev = json_tokener_parse(text);
	scm_wire_send_json(ctl, MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, ev, NULL, 0, fds, n);
	json_object_put(ev);
}

static void handover(int ctl, uint32_t call_id, bool many)
{
	int fds[SCM_FDS_MAX];
	for (size_t i = 0; i < SCM_FDS_MAX; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	size_t frames = many ? 33 : 1, per = many ? SCM_FDS_MAX : 2;
	for (size_t i = 0; i < frames; i++)
		send_ev(ctl, "{\"op\":\"handover.fds\"}", fds, per);
	int st = memfd_create("rogue-state", MFD_CLOEXEC);
	json_object *body = json_object_new_object();
	json_object_object_add(body, "channels", json_object_new_int(0));
	json_object_object_add(body, "version", json_object_new_int(1));
	json_object_object_add(body, "fds", json_object_new_int64(many ? (int64_t)(frames * per) : 3));
	scm_wire_send_json(ctl, MSG_NOSIGNAL, SCM_FRAME_REPLY, 0, call_id, 0, body, NULL, 0, &st, 1);
	json_object_put(body);
	close(st);
	for (size_t i = 0; i < SCM_FDS_MAX; i++)
		close(fds[i]);
}

static int memfd(bool sealed)
{
	int fd = memfd_create("rogue-checkpoint", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd >= 0 && (write(fd, "SCMPSTAT", 8) != 8 ||
			(sealed && fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK) < 0)))
		return -1;
	return fd;
}

static void checkpoints(int ctl, const char *mode)
{
	int fds[SCM_FDS_MAX];
	size_t n = 1, extra = 0;
	if (!strcmp(mode, "ckpt-burst"))
		n = 30;
	if (!strcmp(mode, "ckpt-fds")) {
		for (size_t i = 0; i < SCM_FDS_MAX; i++)
			fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		for (; extra < 264; extra += SCM_FDS_MAX)
			send_ev(ctl, "{\"op\":\"checkpoint.fds\"}", fds, SCM_FDS_MAX);
		for (size_t i = 0; i < SCM_FDS_MAX; i++)
			close(fds[i]);
	}
	for (size_t i = 0; i < n; i++) {
		int fd = memfd(strcmp(mode, "ckpt-unsealed") != 0);
		char ev[64];
		snprintf(ev, sizeof ev, "{\"op\":\"checkpoint\",\"fds\":%zu}", extra);
		send_ev(ctl, ev, &fd, 1);
		close(fd);
	}
}

int main(void)
{
	const char *s = getenv("SCM_PROVIDER_FD"), *mode = getenv("SCM_ROGUE");
	if (!s)
		return 2;
	int ctl = atoi(s);
	const char *ho = getenv("SCM_PROVIDER_HANDOVER");
	if (ho && !strcmp(ho, "1")) /* the successor: it waits for a state it never gets */
		send_ev(ctl, "{\"op\":\"handover.waiting\"}", NULL, 0);
	else
		send_ev(ctl, "{\"op\":\"ready\",\"interface\":\"echo\",\"version\":1}", NULL, 0);
	if (mode && !strncmp(mode, "ckpt-", 5))
		checkpoints(ctl, mode);
	for (;;) {
		scm_message *m = NULL;
		int r = scm_wire_recv(ctl, 0, &m, NULL);
		if (r == -EAGAIN || r == -EINTR)
			continue;
		if (r != 0)
			return 0; /* scmd closed the control socket */
		json_object *op = m->json ? json_object_object_get(m->json, "op") : NULL;
		if (m->type == SCM_FRAME_CALL && op && !strcmp(json_object_get_string(op), "handover"))
			handover(ctl, m->call_id, mode && !strcmp(mode, "many"));
		scm_message_free(m);
	}
}
