/* nbd-parent.h: remote parents read over NBD with libnbd (nbd-parent.c),
 * for the programs that allow them: scm-vdisk (host mode, the owner's
 * files) and the provider (each URI checked against the client's grant
 * first). */
#pragma once
#include "nbd-uri.h"
#include "vhdx.h"

/* How long a read waits for a lost connection to come back before it
 * fails (ms): SCM_VDISK_NBD_WAIT_MS, else this. */
#define NBD_PARENT_WAIT_MS 10000u
unsigned nbd_parent_wait_ms(void);
/* At most max reads of remote parents wait for a lost connection at once
 * (each holds the thread it runs on: the provider's I/O workers, of which
 * it has workers); others fail at once. 0: none waits. Not called: no
 * cap (scm-vdisk). */
void nbd_parent_set_waiters(unsigned max, unsigned workers);

/* How long one connection attempt (TCP, handshake, TLS) may take (ms):
 * SCM_VDISK_NBD_CONNECT_MS, else this. The attempt at open runs on the
 * provider's loop: this is what bounds a stall there. */
#define NBD_PARENT_CONNECT_MS 3000u
unsigned nbd_parent_connect_ms(void);

/* How a remote parent is reached, besides its URI. The TLS material is
 * named by whoever configures the reader (the grant's settings in the
 * provider, the environment for scm-vdisk), never by the URI. */
struct nbd_parent_opts {
	unsigned wait_ms, connect_ms;
	const char *tls_certificates; /* x509: a directory with ca-cert.pem (client-cert.pem, client-key.pem) */
	const char *tls_psk_file;     /* PSK: psktool's USER:HEXKEY lines */
	const char *tls_username;     /* the PSK identity (or x509 user); NULL: libnbd's default */
};
/* The opts from the environment (scm-vdisk, host mode):
 * SCM_VDISK_NBD_TLS_CERTIFICATES, SCM_VDISK_NBD_TLS_PSK_FILE,
 * SCM_VDISK_NBD_TLS_USERNAME, and the two waits above. */
void nbd_parent_opts_from_env(struct nbd_parent_opts *ret);

/* Connects to u (one attempt, bounded by connect_ms) and fills ret (the
 * engine's reader). An nbds URI needs tls_certificates or tls_psk_file
 * (refused before connecting otherwise); x509 peers are verified against
 * the CA and the host name or address of the URI. */
int nbd_parent_open(const struct nbd_uri *u, const struct nbd_parent_opts *o, struct vhdx_remote *ret,
		    scm_error **ret_err);
/* One connection to u, made as the reader makes its own (TLS as o names
 * it, required for nbds; bounded by o->connect_ms), for a writer: a
 * mirror migration's destination (provider-mignbd.c). alloc: the
 * base:allocation context is asked for (BLOCK_STATUS). */
struct nbd_handle;
int nbd_dial(const struct nbd_uri *u, const struct nbd_parent_opts *o, bool alloc, struct nbd_handle **ret,
	     scm_error **ret_err);
/* The slowest transfer a request may make (bytes a second): a request of
 * n bytes gets its wait for silence, a second and n / NBD_MIN_RATE
 * seconds in all, however its bytes trickle (nbd_wait, a remote parent's
 * reads). */
#define NBD_MIN_RATE (1ull << 20)
/* Drives nbd until the command cookie completes: 0; -1 when it failed or
 * the connection died (libnbd's error says why); -ETIMEDOUT after idle_ms
 * in which no byte moved, or once idle_ms + 1 s + bytes / NBD_MIN_RATE
 * passed since the call, bytes moving or not (bytes: what the request
 * carries, a WRITE's data; 0 for the others). */
int nbd_wait(struct nbd_handle *nbd, int64_t cookie, unsigned idle_ms, uint64_t bytes);
/* vhdx_remote_open_fn for host mode: any URI the parser takes, with the
 * environment's opts. */
int nbd_parent_host_opener(const char *uri, void *userdata, struct vhdx_remote *ret, scm_error **ret_err);
