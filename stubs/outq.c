/* outq.c: frames waiting for room in a peer's socket.
 *
 * A SEQPACKET socket takes only a few unread messages (net.unix.
 * max_dgram_qlen) before sendmsg() says EAGAIN, so whoever must not block
 * (scmd, a provider serving many clients) keeps what did not fit here, in
 * order, and sends it when the peer makes room. The owner bounds the queue
 * (scmd charges it to the endpoint; a provider stops reading a channel
 * while its replies wait, which pushes back on the client). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "scm/macro.h"
#include "scm-internal/wire.h"

struct scm_outframe {
	struct scm_outframe *next;
	uint8_t type;
	uint16_t flags;
	uint32_t call_id, method;
	size_t json_len, bin_len, n_fds;
	int fds[SCM_FDS_MAX];
	char data[]; /* JSON, then binary */
};

int scm_outq_send(int fd, struct scm_outq *q, uint8_t type, uint16_t flags, uint32_t call_id,
		  uint32_t method, const char *json, size_t json_len, const void *bin, size_t bin_len,
		  const int *fds, size_t n_fds)
{
	/* Checked here too: a frame over the limits that got queued behind
	 * others would fail every later flush and wedge the queue for good. */
	if (json_len > SCM_FRAME_MAX || bin_len > SCM_FRAME_MAX ||
	    SCM_WIRE_HDR + json_len + bin_len > SCM_FRAME_MAX || n_fds > SCM_FDS_MAX)
		return -EMSGSIZE;
	if (!q->head) {
		int r = scm_wire_send(fd, MSG_DONTWAIT, type, flags, call_id, method, json, json_len, bin,
				      bin_len, fds, n_fds);
		if (r != -EAGAIN)
			return r;
	}
	struct scm_outframe *f = malloc(sizeof(*f) + json_len + bin_len);
	if (!f)
		return -ENOMEM;
	*f = (struct scm_outframe){ NULL, type, flags, call_id, method, json_len, bin_len, 0, { 0 } };
	if (json_len)
		memcpy(f->data, json, json_len);
	if (bin_len)
		memcpy(f->data + json_len, bin, bin_len);
	/* The caller keeps its fds; the queue holds duplicates until sent. */
	for (size_t i = 0; i < n_fds; i++) {
		f->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (f->fds[i] < 0) {
			int r = -errno;
			for (size_t k = 0; k < i; k++)
				safe_close(f->fds[k]);
			free(f);
			return r;
		}
		f->n_fds++;
	}
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->bytes += sizeof(*f) + json_len + bin_len;
	q->frames++;
	return 1; /* queued */
}

static void pop(struct scm_outq *q)
{
	struct scm_outframe *f = q->head;
	q->head = f->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= sizeof(*f) + f->json_len + f->bin_len;
	q->frames--;
	for (size_t i = 0; i < f->n_fds; i++)
		safe_close(f->fds[i]);
	free(f);
}

int scm_outq_flush(int fd, struct scm_outq *q)
{
	while (q->head) {
		struct scm_outframe *f = q->head;
		int r = scm_wire_send(fd, MSG_DONTWAIT, f->type, f->flags, f->call_id, f->method, f->data,
				      f->json_len, f->data + f->json_len, f->bin_len, f->fds, f->n_fds);
		if (r < 0)
			return r;
		pop(q);
	}
	return 0;
}

void scm_outq_clear(struct scm_outq *q)
{
	while (q->head)
		pop(q);
}
