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

/* Connects to u (one attempt) and fills ret (the engine's reader). */
int nbd_parent_open(const struct nbd_uri *u, unsigned wait_ms, struct vhdx_remote *ret, scm_error **ret_err);
/* vhdx_remote_open_fn for host mode: any URI the parser takes. */
int nbd_parent_host_opener(const char *uri, void *userdata, struct vhdx_remote *ret, scm_error **ret_err);
