/* nbd-parent.c: the reader behind a remote parent (vhdx.h, struct
 * vhdx_remote), with libnbd. It connects to the parts nbd_uri_parse found
 * (never handing libnbd a URI to read its own way, so what a grant allowed
 * is what is reached), checks the export's size on every connection, and
 * when a connection is lost, connects again with backoff for up to the
 * configured wait before the read fails: a read is never answered with
 * anything but the export's bytes. Not part of libscmvdisk.a (only the
 * programs that read remote parents link libnbd). */
#include <errno.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nbd-parent.h"
#include "scm-internal/error.h"

struct nbd_parent {
	struct nbd_uri u;
	char *canon;
	struct nbd_handle *nbd; /* NULL while disconnected */
	uint64_t size;
	unsigned wait_ms;
	pthread_mutex_t lock; /* the connection, for the provider's workers */
};

/* libnbd refuses requests over 64 MiB; blocks may be 256 MiB */
#define NBD_CHUNK (32u << 20)

unsigned nbd_parent_wait_ms(void)
{
	const char *e = getenv("SCM_VDISK_NBD_WAIT_MS");
	char *end;
	unsigned long v = e && *e ? strtoul(e, &end, 10) : 0;
	if (!e || !*e || *end || v > 3600000)
		return NBD_PARENT_WAIT_MS;
	return (unsigned)v;
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* One connection attempt; on failure *ret_err says why, in libnbd's words. */
static int connect_once(struct nbd_parent *p, scm_error **ret_err)
{
	struct nbd_handle *nbd = nbd_create();
	if (!nbd)
		return scm_fail(ret_err, -ENOMEM, "%s: %s", p->canon, nbd_get_error());
	char port[8];
	snprintf(port, sizeof port, "%u", p->u.port);
	int r = nbd_set_export_name(nbd, p->u.export_name);
	if (r == 0)
		r = p->u.unix_socket ? nbd_connect_unix(nbd, p->u.socket) : nbd_connect_tcp(nbd, p->u.host, port);
	int64_t size = r == 0 ? nbd_get_size(nbd) : -1;
	if (r < 0 || size < 0) {
		int e = nbd_get_errno();
		scm_fail(ret_err, e > 0 ? -e : -ECONNREFUSED, "%s: cannot connect: %s", p->canon, nbd_get_error());
		nbd_close(nbd);
		return e > 0 ? -e : -ECONNREFUSED;
	}
	if (p->size && (uint64_t)size != p->size) {
		nbd_close(nbd);
		return scm_fail(ret_err, -ESTALE, "%s: the export's size changed from %llu to %lld since the child "
				"connected: not the same parent", p->canon, (unsigned long long)p->size, (long long)size);
	}
	p->size = (uint64_t)size;
	p->nbd = nbd;
	return 0;
}

static int read_locked(struct nbd_parent *p, void *buf, uint64_t len, uint64_t off, scm_error **ret_err)
{
	uint64_t start = now_ms();
	unsigned backoff = 50, tries = 0;
	for (;;) {
		scm_error *why = NULL;
		int r = p->nbd ? 0 : connect_once(p, &why);
		if (r == -ESTALE) {
			scm_error_push(ret_err, why);
			return r;
		}
		for (uint64_t done = 0; r == 0 && done < len;) {
			uint64_t n = len - done < NBD_CHUNK ? len - done : NBD_CHUNK;
			if (nbd_pread(p->nbd, (char *)buf + done, n, off + done, 0) < 0) {
				int e = nbd_get_errno();
				r = scm_fail(&why, e > 0 ? -e : -EIO, "%s: reading %llu+%llu: %s", p->canon,
					     (unsigned long long)(off + done), (unsigned long long)n, nbd_get_error());
				/* the server's own answer (a bad range) is no lost link */
				if (nbd_aio_is_ready(p->nbd)) {
					scm_error_push(ret_err, why);
					return r;
				}
				nbd_close(p->nbd);
				p->nbd = NULL;
			}
			done += n;
		}
		if (r == 0)
			return 0;
		tries++;
		uint64_t spent = now_ms() - start;
		if (spent >= p->wait_ms) {
			scm_error_push(ret_err, why);
			return scm_fail(ret_err, -EHOSTDOWN, "remote parent %s unreachable: %u attempt%s over %llu ms "
					"failed (SCM_VDISK_NBD_WAIT_MS=%u); no data was returned",
					p->canon, tries, tries == 1 ? "" : "s", (unsigned long long)spent, p->wait_ms);
		}
		scm_error_free(why);
		/* backoff: 50 ms doubling to 1 s, never past the wait */
		uint64_t left = p->wait_ms - spent, d = backoff < left ? backoff : left;
		struct timespec ts = { (time_t)(d / 1000), (long)(d % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		backoff = backoff >= 500 ? 1000 : backoff * 2;
	}
}

static int parent_pread(void *ud, void *buf, uint64_t len, uint64_t off, scm_error **ret_err)
{
	struct nbd_parent *p = ud;
	pthread_mutex_lock(&p->lock);
	int r = read_locked(p, buf, len, off, ret_err);
	pthread_mutex_unlock(&p->lock);
	return r;
}

static void parent_close(void *ud)
{
	struct nbd_parent *p = ud;
	if (!p)
		return;
	if (p->nbd)
		nbd_close(p->nbd);
	pthread_mutex_destroy(&p->lock);
	nbd_uri_clear(&p->u);
	free(p->canon);
	free(p);
}

int nbd_parent_open(const struct nbd_uri *u, unsigned wait_ms, struct vhdx_remote *ret, scm_error **ret_err)
{
	struct nbd_parent *p = calloc(1, sizeof *p);
	if (!p)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	p->wait_ms = wait_ms;
	p->u.unix_socket = u->unix_socket;
	p->u.port = u->port;
	p->u.host = u->host ? strdup(u->host) : NULL;
	p->u.socket = u->socket ? strdup(u->socket) : NULL;
	p->u.export_name = strdup(u->export_name);
	p->canon = nbd_uri_format(u);
	char *uri = nbd_uri_format(u);
	if (!p->canon || !uri || !p->u.export_name || (u->host && !p->u.host) || (u->socket && !p->u.socket)) {
		free(uri);
		parent_close(p);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	/* the first connection is tried once: a parent that is not there
	 * when a disk is made or opened is an error to report now */
	int r = connect_once(p, ret_err);
	if (r < 0) {
		free(uri);
		parent_close(p);
		return r;
	}
	*ret = (struct vhdx_remote){ .pread = parent_pread, .close = parent_close, .ud = p, .size = p->size,
				     .uri = uri };
	return 0;
}

int nbd_parent_host_opener(const char *uri, void *userdata, struct vhdx_remote *ret, scm_error **ret_err)
{
	(void)userdata;
	struct nbd_uri u;
	int r = nbd_uri_parse(uri, &u, ret_err);
	if (r < 0)
		return r;
	r = nbd_parent_open(&u, nbd_parent_wait_ms(), ret, ret_err);
	nbd_uri_clear(&u);
	return r;
}
