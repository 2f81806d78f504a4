/* nbdproto.h: the NBD protocol's wire formats, as far as the provider-served
 * export needs them (docs/vdisk.md "NBD export"): the newstyle fixed
 * handshake's options, answered by scm-vdisk export (nbd_hs_option), and
 * the transmission phase's 28-byte requests, served by the provider
 * (nbd_request_parse). Both parse what an untrusted client sends: they
 * never read past what they are given, and a refusal always says why. Pure
 * functions (no I/O), fuzzed by tests/fuzz/fuzz_vdisk_nbdreq.c and
 * fuzz_vdisk_nbdopt.c. Numbers follow the NBD protocol document. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NBD_MAGIC UINT64_C(0x4e42444d41474943)	   /* "NBDMAGIC" */
#define NBD_IHAVEOPT UINT64_C(0x49484156454f5054) /* "IHAVEOPT" */
#define NBD_REP_MAGIC UINT64_C(0x0003e889045565a9)
#define NBD_REQUEST_MAGIC 0x25609513u
#define NBD_SIMPLE_REPLY_MAGIC 0x67446698u
#define NBD_STRUCTURED_REPLY_MAGIC 0x668e33efu

/* handshake flags (server), client flags */
#define NBD_FLAG_FIXED_NEWSTYLE 1u
#define NBD_FLAG_NO_ZEROES 2u

/* options */
enum {
	NBD_OPT_EXPORT_NAME = 1, NBD_OPT_ABORT = 2, NBD_OPT_LIST = 3, NBD_OPT_STARTTLS = 5, NBD_OPT_INFO = 6,
	NBD_OPT_GO = 7, NBD_OPT_STRUCTURED_REPLY = 8, NBD_OPT_LIST_META_CONTEXT = 9, NBD_OPT_SET_META_CONTEXT = 10,
};
/* option replies */
#define NBD_REP_ACK 1u
#define NBD_REP_SERVER 2u
#define NBD_REP_INFO 3u
#define NBD_REP_META_CONTEXT 4u
#define NBD_REP_ERR_UNSUP 0x80000001u
#define NBD_REP_ERR_POLICY 0x80000002u
#define NBD_REP_ERR_INVALID 0x80000003u
#define NBD_REP_ERR_UNKNOWN 0x80000006u
#define NBD_REP_ERR_SHUTDOWN 0x80000007u
#define NBD_REP_ERR_TOO_BIG 0x80000009u
/* NBD_REP_INFO types */
#define NBD_INFO_EXPORT 0
#define NBD_INFO_NAME 1
#define NBD_INFO_DESCRIPTION 2
#define NBD_INFO_BLOCK_SIZE 3

/* transmission flags */
#define NBD_FLAG_HAS_FLAGS (1u << 0)
#define NBD_FLAG_READ_ONLY (1u << 1)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define NBD_FLAG_SEND_FUA (1u << 3)
#define NBD_FLAG_SEND_TRIM (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define NBD_FLAG_SEND_DF (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN (1u << 8)

/* commands, command flags */
enum { NBD_CMD_READ = 0, NBD_CMD_WRITE = 1, NBD_CMD_DISC = 2, NBD_CMD_FLUSH = 3, NBD_CMD_TRIM = 4,
       NBD_CMD_WRITE_ZEROES = 6, NBD_CMD_BLOCK_STATUS = 7 };
#define NBD_CMD_FLAG_FUA (1u << 0)
#define NBD_CMD_FLAG_NO_HOLE (1u << 1)
#define NBD_CMD_FLAG_DF (1u << 2)
#define NBD_CMD_FLAG_REQ_ONE (1u << 3)

/* structured reply chunks */
#define NBD_REPLY_FLAG_DONE 1u
#define NBD_REPLY_TYPE_NONE 0
#define NBD_REPLY_TYPE_OFFSET_DATA 1
#define NBD_REPLY_TYPE_BLOCK_STATUS 5
#define NBD_REPLY_TYPE_ERROR 0x8001
#define NBD_STATE_HOLE 1u
#define NBD_STATE_ZERO 2u

/* errors on the wire */
#define NBD_EPERM 1
#define NBD_EIO 5
#define NBD_ENOMEM 12
#define NBD_EINVAL 22
#define NBD_ENOSPC 28
#define NBD_EOVERFLOW 75
#define NBD_ENOTSUP 95
#define NBD_ESHUTDOWN 108

#define NBD_REQUEST_SIZE 28
#define NBD_MSG_MAX 96
/* the one meta context served, and its id */
#define NBD_META_BASE_ALLOCATION "base:allocation"
#define NBD_META_ID 1u

/* What the transmission phase was agreed on. */
struct nbd_limits {
	uint64_t size;		/* the disk's bytes */
	uint32_t min_block;	/* requests are whole ones (the disk's sector) */
	uint32_t max_payload;	/* a READ's or WRITE's length at most */
	bool readonly, structured, meta;
};

struct nbd_request {
	uint16_t flags, type;
	uint64_t cookie, offset;
	uint32_t length;
	uint32_t payload; /* bytes that follow the request (a WRITE's data) */
};

/* Parses the 28 bytes of a request. 0: serve it. > 0: an NBD error to
 * answer (NBD_EINVAL, NBD_EPERM, NBD_EOVERFLOW ...) after reading and
 * dropping ret->payload bytes; the connection goes on. -EPROTO: a protocol
 * violation (bad magic, a WRITE longer than max_payload): close the
 * connection without answering. msg says why (when not 0). */
int nbd_request_parse(const uint8_t raw[NBD_REQUEST_SIZE], const struct nbd_limits *lim, struct nbd_request *ret,
		      char msg[NBD_MSG_MAX]);

/* ---- the handshake (scm-vdisk export) ------------------------------------ */

#define NBD_OPT_DATA_MAX 4096u /* an option's data at most; longer: closed */
#define NBD_HS_OUT_MAX 8192u

struct nbd_hs {
	/* what the export is */
	const char *name; /* the export's name; "" also names it */
	uint64_t size;
	uint16_t tflags; /* transmission flags */
	uint32_t min_block, pref_block, max_block;
	bool no_meta; /* block status not allowed: no meta context listed or set */
	/* what was agreed */
	bool structured, meta;
	/* the replies to send, built by nbd_hs_option */
	uint8_t out[NBD_HS_OUT_MAX];
	size_t out_len;
	/* NBD_OPT_GO: the final ACK is held back until the provider took
	 * the connection (or replaced by an error); the option's code */
	uint32_t go_opt;
	char msg[NBD_MSG_MAX]; /* why, when an option was refused */
};

enum nbd_hs_step { NBD_HS_MORE, NBD_HS_GO, NBD_HS_EXPORT_NAME, NBD_HS_CLOSE };

/* The greeting, into hs->out. */
void nbd_hs_greeting(struct nbd_hs *hs);
/* The client's 32-bit flags: false to close (an unknown bit, or a client
 * that is not fixed newstyle). *no_zeroes when it asked for no padding. */
bool nbd_hs_client_flags(uint32_t flags, bool *no_zeroes);
/* One option (its data: len bytes, len <= NBD_OPT_DATA_MAX): the replies
 * are appended to hs->out (emptied first). NBD_HS_GO: the export was
 * chosen with GO (hs->out holds its INFO replies; the caller sends them,
 * hands the connection on, then sends nbd_hs_ack(hs, hs->go_opt) or an
 * error). NBD_HS_EXPORT_NAME: the same with EXPORT_NAME (the caller then
 * sends nbd_hs_export_name_reply). NBD_HS_CLOSE: send hs->out, then close. */
enum nbd_hs_step nbd_hs_option(struct nbd_hs *hs, uint32_t opt, const uint8_t *data, uint32_t len);
/* Appends an option reply of type with data to hs->out. */
void nbd_hs_reply(struct nbd_hs *hs, uint32_t opt, uint32_t type, const void *data, uint32_t len);
/* The reply to EXPORT_NAME (size, flags, padding unless no_zeroes), into hs->out. */
void nbd_hs_export_name_reply(struct nbd_hs *hs, bool no_zeroes);
