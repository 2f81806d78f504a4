/* provider-remote.c: opens and creates of disks whose parent is served
 * over NBD, connected off the loop (provider.h, "remote_defer").
 *
 * Connecting (TCP, the NBD handshake, TLS) waits on another host, up to
 * SCM_VDISK_NBD_CONNECT_MS: on the loop, one client opening a disk whose
 * parent is slow or gone would hold every other client of the provider
 * that long. So the handler checks the URI against the grant on the loop,
 * defers the call and connects from a thread of its own (not the I/O
 * pool: a server that never answers must not take a worker that disk I/O
 * needs). The thread posts the result back; the loop then runs the open
 * or create again from the start, and the scope's opener hands it the
 * connected reader instead of connecting (one connection an open). Each
 * client may have REMOTE_CONNECTING_MAX of these at once, the provider
 * REMOTE_THREADS_MAX: threads are what a client could otherwise pile up. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-parent.h"
#include "provider.h"

#define REMOTE_CONNECTING_MAX 4u
#define REMOTE_THREADS_MAX 32u

struct pending {
	scm_task task;
	scm_call *call;
	struct account *acct;
	struct remote_redo redo; /* its strings: path, parent below */
	char *path, *parent;
	struct nbd_uri u;
	struct nbd_parent_opts o; /* its strings: the copies below */
	char *tls_certificates, *tls_psk_file, *tls_username;
	/* the thread's result */
	int r;
	struct vhdx_remote remote;
	scm_error *err;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static unsigned threads; /* running, under lock */

static void pending_free(struct pending *p)
{
	nbd_uri_clear(&p->u);
	if (p->remote.close)
		p->remote.close(p->remote.ud); /* not taken by the open */
	free(p->remote.uri);
	scm_error_free(p->err);
	free(p->path);
	free(p->parent);
	free(p->tls_certificates);
	free(p->tls_psk_file);
	free(p->tls_username);
	free(p);
}

/* On the loop: the connection is made (or not); open or create again. */
static void connected(scm_task *t)
{
	struct pending *p = (struct pending *)t;
	p->acct->connecting--;
	if (!pool_running || scm_call_cancelled(p->call)) {
		/* the client is gone (or the provider is going): only freed */
		scm_call_reply_error(p->call, SCM_E_INTERNAL, "the provider is stopping");
	} else if (p->r < 0) {
		scm_error *e = p->err;
		p->err = NULL;
		fail_chain(p->call, engine_code(p->r), e, "%s %s: remote parent", p->redo.create ? "create" : "open",
			   p->path);
	} else if (p->redo.create) {
		const struct remote_redo *d = &p->redo;
		do_create_pre(p->call, p->path, d->size, d->block_size, d->sector_size, d->fixed, p->parent,
			      &p->remote);
	} else {
		do_open_pre(p->call, p->path, p->redo.readonly, p->redo.shared, &p->remote);
	}
	pending_free(p); /* closes the reader when the redo did not take it */
}

static void *connect_thread(void *arg)
{
	struct pending *p = arg;
	p->r = nbd_parent_open(&p->u, &p->o, &p->remote, &p->err);
	/* posted and counted under the lock: remote_shutdown's wait covers
	 * the post, so the provider is not freed under it */
	pthread_mutex_lock(&lock);
	scm_provider_post(provider, &p->task);
	threads--;
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&lock);
	return NULL;
}

static bool dup_str(char **dst, const char *src)
{
	return !src || (*dst = strdup(src)) != NULL;
}

void remote_defer(scm_call *call, const struct allow_ctx *a, const char *uri, const struct remote_redo *redo)
{
	const char *what = redo->create ? "create" : "open";
	struct account *acct = account_get(scm_call_grant(call));
	if (!acct) {
		fail(call, SCM_E_INTERNAL, "out of memory");
		return;
	}
	if (acct->connecting >= REMOTE_CONNECTING_MAX) {
		fail(call, SCM_VDISK_E_BUSY, "%s %s: this client has %u disks waiting for their remote parents to "
		     "connect, the most it may; try again when one is done", what, redo->path, acct->connecting);
		return;
	}
	struct pending *p = calloc(1, sizeof *p);
	scm_error *err = NULL;
	_cleanup_free_ char *canon = NULL;
	if (!p) {
		fail(call, SCM_E_INTERNAL, "out of memory");
		return;
	}
	int r = remote_check(a, uri, &p->u, &canon, &p->o, &err);
	if (r < 0) {
		free(p);
		fail_chain(call, engine_code(r), err, "%s %s: remote parent", what, redo->path);
		return;
	}
	p->task.fn = connected;
	p->acct = acct;
	p->redo = *redo;
	if (!dup_str(&p->path, redo->path) || !dup_str(&p->parent, redo->parent) ||
	    !dup_str(&p->tls_certificates, p->o.tls_certificates) || !dup_str(&p->tls_psk_file, p->o.tls_psk_file) ||
	    !dup_str(&p->tls_username, p->o.tls_username)) {
		pending_free(p);
		fail(call, SCM_E_INTERNAL, "out of memory");
		return;
	}
	p->o.tls_certificates = p->tls_certificates;
	p->o.tls_psk_file = p->tls_psk_file;
	p->o.tls_username = p->tls_username;
	pthread_mutex_lock(&lock);
	bool full = threads >= REMOTE_THREADS_MAX;
	pthread_mutex_unlock(&lock);
	if (full) {
		pending_free(p);
		fail(call, SCM_VDISK_E_BUSY, "%s %s: %u disks are waiting for their remote parents to connect, the "
		     "most the provider connects at once; try again", what, redo->path, REMOTE_THREADS_MAX);
		return;
	}
	if (!(p->call = scm_call_defer(call))) {
		pending_free(p); /* replied to: too many deferred calls */
		return;
	}
	pthread_attr_t at;
	pthread_t tid;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&lock);
	threads++;
	r = pthread_create(&tid, &at, connect_thread, p);
	if (r)
		threads--;
	pthread_mutex_unlock(&lock);
	pthread_attr_destroy(&at);
	if (r) {
		scm_call_reply_error(p->call, SCM_E_INTERNAL, "%s %s: no thread to connect its remote parent: %s",
				     what, redo->path, strerror(r));
		pending_free(p);
		return;
	}
	acct->connecting++;
}

void remote_shutdown(void)
{
	pthread_mutex_lock(&lock);
	while (threads)
		pthread_cond_wait(&idle, &lock);
	pthread_mutex_unlock(&lock);
}
