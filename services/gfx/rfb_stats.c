/* rfb_stats.c: the RFB server's getters and what `stats` shows of it:
 * the viewers (address, websocket or TLS, view-only, encoding, bytes) and
 * everything sent per encoding, by viewers gone or not. */
#include <json-c/json.h>
#include <rfb/rfb.h>
#include <string.h>

#include "rfb_private.h"

static const int enc_ids[ENC_SLOTS] = { rfbEncodingRaw, rfbEncodingCopyRect, rfbEncodingRRE, rfbEncodingCoRRE,
					rfbEncodingHextile, rfbEncodingZlib, rfbEncodingTight, rfbEncodingZlibHex,
					rfbEncodingUltra, rfbEncodingZRLE, rfbEncodingZYWRLE, (int)rfbEncodingTightPng };

void gfx_rfb_stats_gone(gfx_rfb *r, rfbClientPtr cl)
{
	for (rfbStatList *st = cl->statEncList; st; st = st->Next)
		for (size_t i = 0; i < ENC_SLOTS; i++)
			if ((uint32_t)enc_ids[i] == st->type) {
				r->sent[i].rects += st->sentCount;
				r->sent[i].bytes += st->bytesSent;
				r->sent[i].bytes_if_raw += st->bytesSentIfRaw;
			}
}

uint16_t gfx_rfb_port(const gfx_rfb *r)
{
	return r->port;
}
uint16_t gfx_rfb_ws_port(const gfx_rfb *r)
{
	return r->ws_port;
}
const char *gfx_rfb_password(const gfx_rfb *r)
{
	return r->screen->authPasswdData ? r->password : "";
}
const char *gfx_rfb_viewonly_password(const gfx_rfb *r)
{
	return r->viewonly;
}
const char *gfx_rfb_token(const gfx_rfb *r)
{
	return r->token;
}
int gfx_rfb_fd(const gfx_rfb *r)
{
	return r->epfd;
}
uint64_t gfx_rfb_refused(const gfx_rfb *r)
{
	return r->refused + (r->tls ? gfx_tls_refused(r->tls) : 0);
}
const char *gfx_rfb_security(const gfx_rfb *r)
{
	return r->security;
}
const char *gfx_rfb_tls_fingerprint(const gfx_rfb *r)
{
	return r->tls ? gfx_tls_fingerprint(r->tls) : "";
}
const char *gfx_rfb_tls_cert_pem(const gfx_rfb *r)
{
	return r->tls ? gfx_tls_cert_pem(r->tls) : "";
}
uint64_t gfx_rfb_resizes(const gfx_rfb *r)
{
	return r->resizes;
}

uint64_t gfx_rfb_copies(const gfx_rfb *r, uint64_t *ret_pixels)
{
	if (ret_pixels)
		*ret_pixels = r->copied_px;
	return r->copies;
}

uint32_t gfx_rfb_viewers(const gfx_rfb *r)
{
	uint32_t n = 0;
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));)
		n += cl->sock != RFB_INVALID_SOCKET && cl->state == RFB_NORMAL;
	rfbReleaseClientIterator(it);
	return n;
}

static const char *encoding_name(int e)
{
	switch (e) {
	case rfbEncodingRaw: return "raw";
	case rfbEncodingCopyRect: return "copyrect";
	case rfbEncodingRRE: return "rre";
	case rfbEncodingCoRRE: return "corre";
	case rfbEncodingHextile: return "hextile";
	case rfbEncodingZlib: return "zlib";
	case rfbEncodingTight: return "tight";
	case rfbEncodingZlibHex: return "zlibhex";
	case rfbEncodingUltra: return "ultra";
	case rfbEncodingZRLE: return "zrle";
	case rfbEncodingZYWRLE: return "zywrle";
	case (int)rfbEncodingTightPng: return "tightpng";
	default: return NULL;
	}
}

struct json_object *gfx_rfb_viewers_json(gfx_rfb *r)
{
	struct json_object *arr = json_object_new_array();
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; arr && (cl = rfbClientIteratorNext(it));) {
		if (cl->sock == RFB_INVALID_SOCKET || cl->state != RFB_NORMAL)
			continue;
		struct json_object *v = json_object_new_object(), *rects = json_object_new_object();
		const char *enc = encoding_name(cl->preferredEncoding);
		json_object_object_add(v, "address", json_object_new_string(cl->host ? cl->host : ""));
		json_object_object_add(v, "websocket", json_object_new_boolean(cl->wsctx != NULL));
		json_object_object_add(v, "tls", json_object_new_boolean(cl->clientData && ((client_extra *)cl->clientData)->tls));
		json_object_object_add(v, "view_only", json_object_new_boolean(cl->viewOnly));
		json_object_object_add(v, "encoding", json_object_new_string(enc ? enc : "other"));
		json_object_object_add(v, "bytes_sent", json_object_new_int64(rfbStatGetSentBytes(cl)));
		json_object_object_add(v, "bytes_if_raw", json_object_new_int64(rfbStatGetSentBytesIfRaw(cl)));
		for (rfbStatList *st = cl->statEncList; st; st = st->Next) {
			const char *nm = encoding_name((int)st->type);
			if (nm && st->sentCount)
				json_object_object_add(rects, nm, json_object_new_int64(st->sentCount));
		}
		json_object_object_add(v, "rects", rects);
		json_object_array_add(arr, v);
	}
	rfbReleaseClientIterator(it);
	return arr;
}

struct json_object *gfx_rfb_encodings_json(gfx_rfb *r)
{
	enc_total t[ENC_SLOTS];
	memcpy(t, r->sent, sizeof(t));
	rfbClientIteratorPtr it = rfbGetClientIterator(r->screen);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));)
		for (rfbStatList *st = cl->statEncList; st; st = st->Next)
			for (size_t i = 0; i < ENC_SLOTS; i++)
				if ((uint32_t)enc_ids[i] == st->type) {
					t[i].rects += st->sentCount;
					t[i].bytes += st->bytesSent;
					t[i].bytes_if_raw += st->bytesSentIfRaw;
				}
	rfbReleaseClientIterator(it);
	struct json_object *o = json_object_new_object();
	for (size_t i = 0; o && i < ENC_SLOTS; i++) {
		if (!t[i].rects)
			continue;
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "rects", json_object_new_int64((int64_t)t[i].rects));
		json_object_object_add(e, "bytes", json_object_new_int64((int64_t)t[i].bytes));
		json_object_object_add(e, "bytes_if_raw", json_object_new_int64((int64_t)t[i].bytes_if_raw));
		json_object_object_add(o, encoding_name(enc_ids[i]), e);
	}
	return o;
}
