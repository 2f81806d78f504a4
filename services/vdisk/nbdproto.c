/* nbdproto.c: the NBD requests the provider serves and the handshake
 * options scm-vdisk export answers (nbdproto.h). Untrusted input: every
 * length is checked against what was given before anything is read. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nbdproto.h"

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

#define REFUSE(err, ...)                                      \
	do {                                                  \
		snprintf(msg, NBD_MSG_MAX, __VA_ARGS__);      \
		return (err);                                 \
	} while (0)

int nbd_request_parse(const uint8_t raw[NBD_REQUEST_SIZE], const struct nbd_limits *lim, struct nbd_request *q,
		      char msg[NBD_MSG_MAX])
{
	msg[0] = 0;
	*q = (struct nbd_request){ .flags = be16(raw + 4), .type = be16(raw + 6), .cookie = be64(raw + 8),
				   .offset = be64(raw + 16), .length = be32(raw + 24) };
	uint32_t magic = be32(raw);
	if (magic != NBD_REQUEST_MAGIC)
		REFUSE(-EPROTO, "bad request magic 0x%08x", magic);
	if (q->type == NBD_CMD_WRITE) {
		/* its data follows: longer than agreed is not read at all */
		if (q->length > lim->max_payload)
			REFUSE(-EPROTO, "write of %u bytes: more than the maximum block size %u", q->length,
			       lim->max_payload);
		q->payload = q->length;
	}
	static const uint16_t allowed[] = {
		[NBD_CMD_READ] = NBD_CMD_FLAG_DF,
		[NBD_CMD_WRITE] = NBD_CMD_FLAG_FUA,
		[NBD_CMD_DISC] = 0,
		[NBD_CMD_FLUSH] = 0,
		[NBD_CMD_TRIM] = NBD_CMD_FLAG_FUA,
		[5] = 0,
		[NBD_CMD_WRITE_ZEROES] = NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE,
		[NBD_CMD_BLOCK_STATUS] = NBD_CMD_FLAG_REQ_ONE,
	};
	if (q->type > NBD_CMD_BLOCK_STATUS || q->type == 5)
		REFUSE(NBD_EINVAL, "unknown command %u", q->type);
	if (q->flags & ~allowed[q->type])
		REFUSE(NBD_EINVAL, "command %u: flags 0x%x not supported", q->type, q->flags);
	if (q->type == NBD_CMD_DISC || q->type == NBD_CMD_FLUSH)
		return 0;
	if (q->type == NBD_CMD_BLOCK_STATUS && !lim->meta)
		REFUSE(NBD_EINVAL, "block status without a meta context negotiated");
	if (q->type == NBD_CMD_READ && q->length > lim->max_payload)
		REFUSE(lim->structured ? NBD_EOVERFLOW : NBD_EINVAL,
		       "read of %u bytes: more than the maximum block size %u", q->length, lim->max_payload);
	if (q->length == 0)
		REFUSE(NBD_EINVAL, "length 0");
	uint32_t mb = lim->min_block ? lim->min_block : 1;
	if (q->offset % mb || q->length % mb)
		REFUSE(NBD_EINVAL, "offset %llu or length %u is not a multiple of the block size %u",
		       (unsigned long long)q->offset, q->length, mb);
	if (q->offset > lim->size || q->length > lim->size - q->offset)
		REFUSE(NBD_EINVAL, "offset %llu + length %u is past the disk's %llu bytes",
		       (unsigned long long)q->offset, q->length, (unsigned long long)lim->size);
	if (lim->readonly && (q->type == NBD_CMD_WRITE || q->type == NBD_CMD_TRIM || q->type == NBD_CMD_WRITE_ZEROES))
		REFUSE(NBD_EPERM, "the export is read-only");
	return 0;
}

/* ---- handshake ------------------------------------------------------------ */

static void put(struct nbd_hs *hs, const void *p, size_t n)
{
	if (!n || n > NBD_HS_OUT_MAX - hs->out_len)
		return; /* (never too long: replies are bounded well below) */
	memcpy(hs->out + hs->out_len, p, n);
	hs->out_len += n;
}

static void put16(struct nbd_hs *hs, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(hs, b, 2);
}

static void put32(struct nbd_hs *hs, uint32_t v)
{
	put16(hs, (uint16_t)(v >> 16));
	put16(hs, (uint16_t)v);
}

static void put64(struct nbd_hs *hs, uint64_t v)
{
	put32(hs, (uint32_t)(v >> 32));
	put32(hs, (uint32_t)v);
}

void nbd_hs_greeting(struct nbd_hs *hs)
{
	hs->out_len = 0;
	put64(hs, NBD_MAGIC);
	put64(hs, NBD_IHAVEOPT);
	put16(hs, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
}

bool nbd_hs_client_flags(uint32_t flags, bool *no_zeroes)
{
	*no_zeroes = flags & NBD_FLAG_NO_ZEROES;
	return (flags & NBD_FLAG_FIXED_NEWSTYLE) && !(flags & ~(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES));
}

void nbd_hs_reply(struct nbd_hs *hs, uint32_t opt, uint32_t type, const void *data, uint32_t len)
{
	put64(hs, NBD_REP_MAGIC);
	put32(hs, opt);
	put32(hs, type);
	put32(hs, len);
	put(hs, data, len);
}

/* an error reply with a message (the spec lets it carry one) */
static enum nbd_hs_step refuse(struct nbd_hs *hs, uint32_t opt, uint32_t type, const char *why)
{
	snprintf(hs->msg, sizeof hs->msg, "%s", why);
	nbd_hs_reply(hs, opt, type, why, (uint32_t)strlen(why));
	return NBD_HS_MORE;
}

static bool names_us(const struct nbd_hs *hs, const uint8_t *name, uint32_t n)
{
	return n == 0 || (n == strlen(hs->name) && !memcmp(name, hs->name, n));
}

static void info_export(struct nbd_hs *hs, uint32_t opt)
{
	uint8_t b[12] = { 0, NBD_INFO_EXPORT };
	for (int i = 0; i < 8; i++)
		b[2 + i] = (uint8_t)(hs->size >> (56 - 8 * i));
	b[10] = (uint8_t)(hs->tflags >> 8);
	b[11] = (uint8_t)hs->tflags;
	nbd_hs_reply(hs, opt, NBD_REP_INFO, b, sizeof b);
}

static void info_block_size(struct nbd_hs *hs, uint32_t opt)
{
	uint8_t b[14] = { 0, NBD_INFO_BLOCK_SIZE };
	const uint32_t v[3] = { hs->min_block, hs->pref_block, hs->max_block };
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 4; i++)
			b[2 + 4 * k + i] = (uint8_t)(v[k] >> (24 - 8 * i));
	nbd_hs_reply(hs, opt, NBD_REP_INFO, b, sizeof b);
}

/* INFO and GO: u32 name length, name, u16 n, n x u16 info types */
static enum nbd_hs_step info_go(struct nbd_hs *hs, uint32_t opt, const uint8_t *d, uint32_t len)
{
	if (len < 6)
		return refuse(hs, opt, NBD_REP_ERR_INVALID, "option too short for a name and its requests");
	uint32_t nl = be32(d);
	if (nl > len - 6)
		return refuse(hs, opt, NBD_REP_ERR_INVALID, "the export name is longer than the option");
	uint16_t n = be16(d + 4 + nl);
	if ((uint32_t)n * 2 != len - 6 - nl)
		return refuse(hs, opt, NBD_REP_ERR_INVALID, "the information requests do not fill the option");
	if (!names_us(hs, d + 4, nl))
		return refuse(hs, opt, NBD_REP_ERR_UNKNOWN, "no export of that name");
	for (uint16_t i = 0; i < n; i++) {
		uint16_t t = be16(d + 6 + nl + 2u * i);
		if (t == NBD_INFO_NAME) {
			uint8_t b[2 + 64] = { 0, NBD_INFO_NAME };
			uint32_t l = (uint32_t)strnlen(hs->name, 64);
			memcpy(b + 2, hs->name, l);
			nbd_hs_reply(hs, opt, NBD_REP_INFO, b, 2 + l);
		}
	}
	info_export(hs, opt);
	info_block_size(hs, opt); /* always: a client may be sent it unasked */
	if (opt == NBD_OPT_INFO) {
		nbd_hs_reply(hs, opt, NBD_REP_ACK, NULL, 0);
		return NBD_HS_MORE;
	}
	hs->go_opt = opt;
	return NBD_HS_GO;
}

/* LIST_META_CONTEXT and SET_META_CONTEXT: u32 name length, name, u32 n,
 * n x (u32 length, query) */
static enum nbd_hs_step meta(struct nbd_hs *hs, uint32_t opt, const uint8_t *d, uint32_t len)
{
	if (!hs->structured && opt == NBD_OPT_SET_META_CONTEXT)
		return refuse(hs, opt, NBD_REP_ERR_INVALID, "meta contexts need structured replies first");
	if (len < 8)
		return refuse(hs, opt, NBD_REP_ERR_INVALID, "option too short for a name and its queries");
	uint32_t nl = be32(d);
	if (nl > len - 8)
		return refuse(hs, opt, NBD_REP_ERR_INVALID, "the export name is longer than the option");
	if (!names_us(hs, d + 4, nl))
		return refuse(hs, opt, NBD_REP_ERR_UNKNOWN, "no export of that name");
	uint32_t n = be32(d + 4 + nl), at = 8 + nl;
	bool want = opt == NBD_OPT_LIST_META_CONTEXT && n == 0; /* list them all */
	for (uint32_t i = 0; i < n; i++) {
		if (len - at < 4)
			return refuse(hs, opt, NBD_REP_ERR_INVALID, "a query is cut short");
		uint32_t ql = be32(d + at);
		at += 4;
		if (ql > len - at)
			return refuse(hs, opt, NBD_REP_ERR_INVALID, "a query is longer than the option");
		const char *q = (const char *)d + at;
		if ((ql == 15 && !memcmp(q, NBD_META_BASE_ALLOCATION, 15)) ||
		    (opt == NBD_OPT_LIST_META_CONTEXT && ql == 5 && !memcmp(q, "base:", 5)))
			want = true;
		at += ql;
	}
	if (at != len)
		return refuse(hs, opt, NBD_REP_ERR_INVALID, "bytes after the last query");
	want = want && !hs->no_meta; /* a valid query that selects nothing */
	if (opt == NBD_OPT_SET_META_CONTEXT)
		hs->meta = want;
	if (want) {
		uint8_t b[4 + 15] = { 0, 0, 0, NBD_META_ID };
		memcpy(b + 4, NBD_META_BASE_ALLOCATION, 15);
		nbd_hs_reply(hs, opt, NBD_REP_META_CONTEXT, b, sizeof b);
	}
	nbd_hs_reply(hs, opt, NBD_REP_ACK, NULL, 0);
	return NBD_HS_MORE;
}

enum nbd_hs_step nbd_hs_option(struct nbd_hs *hs, uint32_t opt, const uint8_t *d, uint32_t len)
{
	hs->out_len = 0;
	hs->msg[0] = 0;
	if (len > NBD_OPT_DATA_MAX) { /* the caller does not read it */
		snprintf(hs->msg, sizeof hs->msg, "option %u: %u bytes of data, more than %u", opt, len,
			 NBD_OPT_DATA_MAX);
		return NBD_HS_CLOSE;
	}
	switch (opt) {
	case NBD_OPT_EXPORT_NAME:
		if (!names_us(hs, d, len)) { /* no way to say why: closed */
			snprintf(hs->msg, sizeof hs->msg, "EXPORT_NAME of another export");
			return NBD_HS_CLOSE;
		}
		return NBD_HS_EXPORT_NAME;
	case NBD_OPT_ABORT:
		nbd_hs_reply(hs, opt, NBD_REP_ACK, NULL, 0);
		return NBD_HS_CLOSE;
	case NBD_OPT_LIST:
		if (len)
			return refuse(hs, opt, NBD_REP_ERR_INVALID, "LIST takes no data");
		{
			uint8_t b[4 + 64];
			uint32_t nl = (uint32_t)strnlen(hs->name, 64);
			b[0] = b[1] = b[2] = 0;
			b[3] = (uint8_t)nl;
			memcpy(b + 4, hs->name, nl);
			nbd_hs_reply(hs, opt, NBD_REP_SERVER, b, 4 + nl);
		}
		nbd_hs_reply(hs, opt, NBD_REP_ACK, NULL, 0);
		return NBD_HS_MORE;
	case NBD_OPT_STARTTLS:
		return refuse(hs, opt, NBD_REP_ERR_POLICY,
			      "TLS is not offered on this export (scm-vdisk export --tls-psk or --tls-certificates)");
	case NBD_OPT_INFO:
	case NBD_OPT_GO:
		return info_go(hs, opt, d, len);
	case NBD_OPT_STRUCTURED_REPLY:
		if (len)
			return refuse(hs, opt, NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
		hs->structured = true;
		nbd_hs_reply(hs, opt, NBD_REP_ACK, NULL, 0);
		return NBD_HS_MORE;
	case NBD_OPT_LIST_META_CONTEXT:
	case NBD_OPT_SET_META_CONTEXT:
		return meta(hs, opt, d, len);
	default:
		return refuse(hs, opt, NBD_REP_ERR_UNSUP, "option not supported");
	}
}

void nbd_hs_export_name_reply(struct nbd_hs *hs, bool no_zeroes)
{
	hs->out_len = 0;
	put64(hs, hs->size);
	put16(hs, hs->tflags);
	static const uint8_t zeroes[124];
	if (!no_zeroes)
		put(hs, zeroes, sizeof zeroes);
}
