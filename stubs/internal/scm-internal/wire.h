/* scm-internal/wire.h: the frame codec shared by libscm and scmd
 * (docs/protocol.md).
 *
 * INTERNAL to the scm tree: not installed, not part of libscm's ABI (the
 * version script stubs/libscm.sym keeps these symbols out of libscm.so).
 * Programs of this tree that use it (scmd, scmctl, test tools) link the
 * static libscm.a. Applications use only <scm/scm.h> and friends.
 *
 * A frame is one SOCK_SEQPACKET message: a 24-byte little-endian header,
 * then json_len bytes of JSON (an object, or nothing), then bin_len bytes of
 * binary body; fds travel as SCM_RIGHTS beside it. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "scm/scm.h"

#define SCM_WIRE_MAGIC 0x314d4353u /* "SCM1" */
#define SCM_WIRE_VERSION 1
#define SCM_WIRE_HDR 24u

struct scm_wire_hdr {
	uint32_t magic;
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t call_id;
	uint32_t method;
	uint32_t json_len;
	uint32_t bin_len;
};
_Static_assert(sizeof(struct scm_wire_hdr) == SCM_WIRE_HDR, "wire header is 24 bytes");

/* Sends one frame. json may be NULL. msg_flags is passed to sendmsg
 * (MSG_DONTWAIT for a daemon). Returns 0 or -errno (-EMSGSIZE when over the
 * limits, -EAGAIN when the peer's queue is full). */
int scm_wire_send(int fd, int msg_flags, uint8_t type, uint16_t flags, uint32_t call_id,
		  uint32_t method, const char *json, size_t json_len, const void *bin,
		  size_t bin_len, const int *fds, size_t n_fds);
/* The same with a json_object body (NULL for none). */
int scm_wire_send_json(int fd, int msg_flags, uint8_t type, uint16_t flags, uint32_t call_id,
		       uint32_t method, struct json_object *body, const void *bin,
		       size_t bin_len, const int *fds, size_t n_fds);
/* Sends an ERROR frame with the chain e. */
int scm_wire_send_error(int fd, int msg_flags, uint32_t call_id, const scm_error *e);

/* Receives one frame. Returns 0 with *ret set, 1 on end of stream, -EAGAIN
 * when nothing is ready (non-blocking sockets), -errno, or SCM_E_PROTOCOL
 * with *ret_err saying what was wrong with the frame (the caller should
 * drop the peer). Received fds are always closed on failure. */
int scm_wire_recv(int fd, int msg_flags, scm_message **ret, scm_error **ret_err);

/* Decodes a frame from memory (used by scm_wire_recv and the fuzzer). Takes
 * ownership of fds in every case. */
int scm_wire_decode(const void *buf, size_t len, const int *fds, size_t n_fds,
		    scm_message **ret, scm_error **ret_err);

/* One request and its reply on scmd's control socket (fd: connected):
 * {"op": op, ...args} with fds, then the reply's JSON in *ret (when set)
 * and its first max_fds fds in ret_fds (-1 where the reply had none). An
 * error frame from scmd becomes the chain it carried (its code returned).
 * scmctl and the desktop session manager talk to scmd through this. */
int scm_wire_control_request(int fd, const char *op, struct json_object *args, const int *fds, size_t n_fds,
			     struct json_object **ret, int *ret_fds, size_t max_fds, scm_error **ret_err);

/* Parses a JSON object body with the depth, size and UTF-8 limits. */
int scm_json_parse(const char *s, size_t len, struct json_object **ret, scm_error **ret_err);

/* Out queues (outq.c): send now if the peer has room, else keep the frame
 * (copied, fds duplicated) for scm_outq_flush(). */
struct scm_outframe;
struct scm_outq {
	struct scm_outframe *head, *tail;
	size_t bytes, frames;
};
/* Returns 0 sent, 1 queued, or -errno (the peer is gone). */
int scm_outq_send(int fd, struct scm_outq *q, uint8_t type, uint16_t flags, uint32_t call_id,
		  uint32_t method, const char *json, size_t json_len, const void *bin, size_t bin_len,
		  const int *fds, size_t n_fds);
/* Sends what is queued: 0 when empty, -EAGAIN when the peer is full again,
 * or -errno. */
int scm_outq_flush(int fd, struct scm_outq *q);
void scm_outq_clear(struct scm_outq *q);
