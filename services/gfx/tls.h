/* tls.h: VeNCrypt for the RFB port (tls.c, tls_cert.c).
 *
 * When the security types allow TLS, accepted RFB connections go to a
 * worker thread instead of libvncserver: it speaks the start of the
 * handshake (vencrypt.c), runs the TLS handshake non-blocking, and hands
 * the proxy one end of a socketpair per viewer, ready for rfbNewClient();
 * from then on it relays bytes between the viewer (decrypting and
 * encrypting when TLS was chosen) and libvncserver. Its own epoll loop,
 * non-blocking everywhere: a slow or hostile viewer stalls no one, and
 * libvncserver's writes of large updates into the socketpair are drained
 * while the proxy's thread is busy. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "vencrypt.h"

typedef struct gfx_tls gfx_tls;

typedef struct gfx_tls_config {
	gfx_sec_types types;
	/* PEM files for X509Vnc; NULL: a self-signed certificate and key are
	 * made up in memory (tls_cert.c). */
	const char *cert_file, *key_file;
	const char *name; /* the desktop, in the made-up certificate's CN */
	/* A line on each refused connection (why), from the worker thread. */
	void (*log)(void *ud, const char *line);
	void *log_ud;
} gfx_tls_config;

#define GFX_TLS_PRIORITY "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1"
/* Anonymous key exchange exists in TLS 1.2 only. Anonymous ECDH has only
 * CBC-SHA1 suites (RFC 4492), whose records cost 42-57 bytes each against
 * GCM's 29, and a desktop sends many small records (a pointer position,
 * one step of a dragged window): anonymous DH with AES-GCM goes first,
 * in our order rather than the viewer's (libvncclient asks for ECDH
 * first). ECDH stays for viewers that offer nothing else. */
#define GFX_TLS_PRIORITY_ANON "NORMAL:-VERS-TLS1.0:-VERS-TLS1.1:-VERS-TLS1.3:+ANON-DH:+ANON-ECDH:%SERVER_PRECEDENCE"

int gfx_tls_new(const gfx_tls_config *cfg, gfx_tls **ret, scm_error **ret_err);
gfx_tls *gfx_tls_free(gfx_tls *t);
/* Gives the worker an accepted RFB connection (non-blocking); peer is the
 * viewer's address for the logs and libvncserver's client record. */
void gfx_tls_take(gfx_tls *t, int fd, const char *peer);
/* An eventfd, readable while connections are ready for libvncserver. */
int gfx_tls_ready_fd(const gfx_tls *t);
/* A connection ready for libvncserver. With TLS: fd is libvncserver's
 * end of the socketpair the worker relays. Plain VNC authentication
 * (plain): fd is the viewer's own socket, not relayed, the dialogue done
 * up to the choice of VNC authentication: libvncserver must be given
 * replay (the viewer's ProtocolVersion and choice) first, and the first
 * greet_len bytes of its answer are not for the viewer (rfb_handover.c,
 * gfx_rfb_take_plain). */
typedef struct gfx_tls_conn {
	int fd;
	bool tls, plain;
	char peer[64];
	uint8_t replay[13];
	size_t replay_len, greet_len;
} gfx_tls_conn;
/* The next one: 1 with *ret filled; 0 when none. */
int gfx_tls_next(gfx_tls *t, gfx_tls_conn *ret);
/* SHA-256 of the X509Vnc certificate (DER), 64 lowercase hex digits;
 * "" without X509Vnc. */
const char *gfx_tls_fingerprint(const gfx_tls *t);
/* The certificate, PEM; "" without X509Vnc. */
const char *gfx_tls_cert_pem(const gfx_tls *t);
/* Connections refused before libvncserver saw them. */
uint64_t gfx_tls_refused(const gfx_tls *t);
/* Connections relayed with TLS so far. */
uint64_t gfx_tls_sessions(const gfx_tls *t);

/* tls_cert.c: the X509Vnc credentials. */
struct gfx_tls_cert {
	void *cred; /* gnutls_certificate_credentials_t */
	char fingerprint[65];
	char *pem;
};
int gfx_tls_cert_load(const char *cert_file, const char *key_file, struct gfx_tls_cert *ret, scm_error **ret_err);
int gfx_tls_cert_make(const char *name, struct gfx_tls_cert *ret, scm_error **ret_err);
void gfx_tls_cert_done(struct gfx_tls_cert *c);
