/* nbd-parent.c: the reader behind a remote parent (vhdx.h, struct
 * vhdx_remote), with libnbd. It connects to the parts nbd_uri_parse found
 * (never handing libnbd a URI to read its own way, so what a grant allowed
 * is what is reached), checks the export's size on every connection, and
 * when a connection is lost, connects again with backoff for up to the
 * configured wait before the read fails: a read is never answered with
 * anything but the export's bytes. Every wait on the network (connect,
 * handshake, TLS, a read's answer) is bounded: libnbd's own calls are
 * not, so we drive its state machine with nbd_poll against a deadline.
 * nbds URIs require TLS, with the material the reader was configured with
 * (struct nbd_parent_opts), never what a URI or a disk says. Not part of libscmvdisk.a (only the
 * programs that read remote parents link libnbd). */
#include <errno.h>
#include <limits.h>
#include <libnbd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <scm/macro.h>

#include "nbd-parent.h"
#include "scm-internal/error.h"

struct nbd_parent {
	struct nbd_uri u;
	char *canon;
	struct nbd_handle *nbd; /* NULL while disconnected */
	uint64_t size;
	unsigned wait_ms, connect_ms;
	char *tls_certificates, *tls_psk_file, *tls_username;
	pthread_mutex_t lock; /* the connection, for the provider's workers */
};

/* libnbd refuses requests over 64 MiB; blocks may be 256 MiB */
#define NBD_CHUNK (32u << 20)

static unsigned env_ms(const char *name, unsigned dflt)
{
	const char *e = getenv(name);
	char *end;
	unsigned long v = e && *e ? strtoul(e, &end, 10) : 0;
	if (!e || !*e || *end || v > 3600000)
		return dflt;
	return (unsigned)v;
}

unsigned nbd_parent_wait_ms(void)
{
	return env_ms("SCM_VDISK_NBD_WAIT_MS", NBD_PARENT_WAIT_MS);
}

unsigned nbd_parent_connect_ms(void)
{
	unsigned v = env_ms("SCM_VDISK_NBD_CONNECT_MS", NBD_PARENT_CONNECT_MS);
	return v ? v : NBD_PARENT_CONNECT_MS;
}

void nbd_parent_opts_from_env(struct nbd_parent_opts *ret)
{
	const char *c = getenv("SCM_VDISK_NBD_TLS_CERTIFICATES"), *p = getenv("SCM_VDISK_NBD_TLS_PSK_FILE"),
		   *n = getenv("SCM_VDISK_NBD_TLS_USERNAME");
	*ret = (struct nbd_parent_opts){ .wait_ms = nbd_parent_wait_ms(),
					 .connect_ms = nbd_parent_connect_ms(),
					 .tls_certificates = c && *c ? c : NULL,
					 .tls_psk_file = p && *p ? p : NULL,
					 .tls_username = n && *n ? n : NULL };
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* A request's own bound, which bytes moving never push back: its wait
 * for silence, a second, and a second for each NBD_MIN_RATE of its bytes.
 * A server that takes a WRITE a window at a time, just inside the silence
 * bound, would otherwise hold it (and the disk's queue behind it) for as
 * long as it likes. */
static uint64_t hard_deadline(unsigned idle_ms, uint64_t bytes)
{
	return now_ms() + idle_ms + 1000 + bytes * 1000 / NBD_MIN_RATE;
}

/* Runs libnbd's state machine until done(nbd) says 1 (0: not yet, -1: it
 * failed) or deadline (ms, now_ms's clock) passes: -ETIMEDOUT. With
 * idle_ms, every poll that moved bytes pushes the deadline to idle_ms from
 * then, never past hard: a slow link that is still answering is not a
 * lost one, a trickle is. libnbd itself has no timeouts; a server that
 * stops answering (a host gone, not a process killed) would otherwise
 * hold a read, or the provider's loop at open, for as long as TCP keeps
 * trying. */
static int poll_until(struct nbd_handle *nbd, int (*done)(struct nbd_handle *, int64_t), int64_t cookie,
		      uint64_t deadline, unsigned idle_ms, uint64_t hard)
{
	for (;;) {
		int r = done(nbd, cookie);
		if (r != 0)
			return r > 0 ? 0 : -1;
		uint64_t now = now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t left = deadline - now;
		int k = nbd_poll(nbd, left > 60000 ? 60000 : (int)left);
		if (k < 0)
			return -1;
		if (k > 0 && idle_ms && now_ms() + idle_ms > deadline)
			deadline = now_ms() + idle_ms < hard ? now_ms() + idle_ms : hard;
	}
}

static int connected(struct nbd_handle *nbd, int64_t cookie)
{
	(void)cookie;
	if (nbd_aio_is_ready(nbd))
		return 1;
	return nbd_aio_is_dead(nbd) || nbd_aio_is_closed(nbd) ? -1 : 0;
}

static int completed(struct nbd_handle *nbd, int64_t cookie)
{
	return nbd_aio_command_completed(nbd, (uint64_t)cookie);
}

static int setup_tls(const struct nbd_uri *u, const char *certs, const char *psk, const char *user,
		     struct nbd_handle *nbd)
{
	if (!u->tls)
		return 0;
	/* required: a server that does not start TLS is refused, not read */
	if (nbd_set_tls(nbd, LIBNBD_TLS_REQUIRE) < 0)
		return -1;
	if (certs && (nbd_set_tls_certificates(nbd, certs) < 0 || nbd_set_tls_verify_peer(nbd, true) < 0))
		return -1;
	if (psk && nbd_set_tls_psk_file(nbd, psk) < 0)
		return -1;
	if (user && nbd_set_tls_username(nbd, user) < 0)
		return -1;
	return 0;
}

int nbd_dial(const struct nbd_uri *u, const struct nbd_parent_opts *o, bool alloc, struct nbd_handle **ret,
	     scm_error **ret_err)
{
	_cleanup_free_ char *canon = nbd_uri_format(u);
	unsigned cms = o->connect_ms ? o->connect_ms : NBD_PARENT_CONNECT_MS;
	struct nbd_handle *nbd = nbd_create();
	if (!nbd || !canon) {
		if (nbd)
			nbd_close(nbd);
		return scm_fail(ret_err, -ENOMEM, "%s: %s", canon ? canon : "nbd", nbd ? "out of memory" : nbd_get_error());
	}
	char port[8];
	snprintf(port, sizeof port, "%u", u->port);
	int r = nbd_set_export_name(nbd, u->export_name);
	if (r == 0)
		r = setup_tls(u, o->tls_certificates, o->tls_psk_file, o->tls_username, nbd);
	if (r == 0 && alloc)
		r = nbd_add_meta_context(nbd, LIBNBD_CONTEXT_BASE_ALLOCATION);
	if (r == 0)
		r = u->unix_socket ? nbd_aio_connect_unix(nbd, u->socket) : nbd_aio_connect_tcp(nbd, u->host, port);
	if (r == 0)
		r = poll_until(nbd, connected, 0, now_ms() + cms, 0, UINT64_MAX);
	if (r == -ETIMEDOUT) {
		scm_fail(ret_err, -ETIMEDOUT, "%s: cannot connect: no answer within %u ms (SCM_VDISK_NBD_CONNECT_MS)",
			 canon, cms);
		nbd_close(nbd);
		return -ETIMEDOUT;
	}
	if (r < 0 || nbd_get_size(nbd) < 0) {
		int e = nbd_get_errno();
		const char *msg = nbd_get_error();
		scm_fail(ret_err, e > 0 ? -e : -ECONNREFUSED, "%s: cannot connect: %s", canon,
			 msg ? msg : "the server closed the connection");
		nbd_close(nbd);
		return e > 0 ? -e : -ECONNREFUSED;
	}
	*ret = nbd;
	return 0;
}

int nbd_wait(struct nbd_handle *nbd, int64_t cookie, unsigned idle_ms, uint64_t bytes)
{
	if (cookie < 0)
		return -1;
	return poll_until(nbd, completed, cookie, now_ms() + idle_ms, idle_ms, hard_deadline(idle_ms, bytes));
}

/* One connection attempt, given until deadline; on failure *ret_err says
 * why, in libnbd's words. */
static int connect_once(struct nbd_parent *p, uint64_t deadline, scm_error **ret_err)
{
	uint64_t now = now_ms();
	struct nbd_parent_opts o = { .connect_ms = deadline > now ? (unsigned)(deadline - now) : 1,
				     .tls_certificates = p->tls_certificates,
				     .tls_psk_file = p->tls_psk_file,
				     .tls_username = p->tls_username };
	struct nbd_handle *nbd = NULL;
	int r = nbd_dial(&p->u, &o, false, &nbd, ret_err);
	if (r < 0)
		return r;
	int64_t size = nbd_get_size(nbd);
	if (p->size && (uint64_t)size != p->size) {
		nbd_close(nbd);
		return scm_fail(ret_err, -ESTALE, "%s: the export's size changed from %llu to %lld since the child "
				"connected: not the same parent", p->canon, (unsigned long long)p->size, (long long)size);
	}
	p->size = (uint64_t)size;
	p->nbd = nbd;
	return 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Reads that wait for a lost connection (reconnects and backoff, up to
 * wait_ms) each hold the thread they run on, in the provider one of its
 * few I/O workers: enough of them would stall every other disk's I/O.
 * At most waiters_max wait at once (0: no cap, scm-vdisk's own reads);
 * another read whose parent is lost fails at once, with the same error. */
static pthread_mutex_t waiters_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned waiters, waiters_workers;
static int waiters_max = -1; /* -1: no cap */

void nbd_parent_set_waiters(unsigned max, unsigned workers)
{
	pthread_mutex_lock(&waiters_lock);
	waiters_max = max > INT_MAX ? INT_MAX : (int)max;
	waiters_workers = workers;
	pthread_mutex_unlock(&waiters_lock);
}

/* A place among the waiters: true, or false with *ret_err saying why the
 * read fails at once (why, the lost connection's error, goes under it). */
static bool waiter_take(struct nbd_parent *p, scm_error *why, scm_error **ret_err)
{
	pthread_mutex_lock(&waiters_lock);
	int max = waiters_max;
	unsigned n = waiters;
	bool ok = max < 0 || n < (unsigned)max;
	if (ok)
		waiters++;
	pthread_mutex_unlock(&waiters_lock);
	if (ok)
		return true;
	if (why)
		scm_error_push(ret_err, why);
	scm_fail(ret_err, -EHOSTDOWN, "remote parent %s unreachable: its connection is lost, and %u read%s of "
		 "other disks already wait%s for theirs, the most that may (%d of the provider's %u I/O workers: the "
		 "other disks' I/O keeps the rest); not waited for, no data was returned",
		 p->canon, n, n == 1 ? "" : "s", n == 1 ? "s" : "", max, waiters_workers);
	return false;
}

static void waiter_put(void)
{
	pthread_mutex_lock(&waiters_lock);
	waiters--;
	pthread_mutex_unlock(&waiters_lock);
}

/* *waiting: it took a place among the waiters (the caller gives it back) */
static int read_locked(struct nbd_parent *p, void *buf, uint64_t len, uint64_t off, bool *waiting,
		       scm_error **ret_err)
{
	uint64_t start = now_ms(), deadline = start + p->wait_ms;
	unsigned backoff = 50, tries = 0;
	/* known lost: reconnecting is waiting */
	if (!p->nbd && !(*waiting = waiter_take(p, NULL, ret_err)))
		return -EHOSTDOWN;
	for (;;) {
		scm_error *why = NULL;
		/* an attempt gets at least 200 ms, so a short wait still tries */
		uint64_t floor = now_ms() + 200;
		int r = p->nbd ? 0 : connect_once(p, min_u64(floor > deadline ? floor : deadline,
							     now_ms() + p->connect_ms), &why);
		if (r == -ESTALE) {
			scm_error_push(ret_err, why);
			return r;
		}
		for (uint64_t done = 0; r == 0 && done < len;) {
			uint64_t n = len - done < NBD_CHUNK ? len - done : NBD_CHUNK;
			int64_t c = nbd_aio_pread(p->nbd, (char *)buf + done, n, off + done, NBD_NULL_COMPLETION, 0);
			/* silence for the wait is a lost link; a slow answer is not */
			int k = c < 0 ? -1
				      : poll_until(p->nbd, completed, c, floor > deadline ? floor : deadline,
						   p->wait_ms > 200 ? p->wait_ms : 200,
						   hard_deadline(p->wait_ms > 200 ? p->wait_ms : 200, n));
			if (k < 0) {
				int e = k == -ETIMEDOUT ? ETIMEDOUT : nbd_get_errno();
				r = scm_fail(&why, e > 0 ? -e : -EIO, "%s: reading %llu+%llu: %s", p->canon,
					     (unsigned long long)(off + done), (unsigned long long)n,
					     k == -ETIMEDOUT ? "no answer" : nbd_get_error());
				/* the server's own answer (a bad range) is no lost link */
				if (k != -ETIMEDOUT && nbd_aio_is_ready(p->nbd)) {
					scm_error_push(ret_err, why);
					return r;
				}
				/* a late answer must never land in a buffer
				 * that is the caller's again: the handle goes */
				nbd_close(p->nbd);
				p->nbd = NULL;
			}
			done += n;
		}
		if (r == 0)
			return 0;
		tries++;
		if (!*waiting && !(*waiting = waiter_take(p, why, ret_err)))
			return -EHOSTDOWN;
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
	bool waiting = false;
	pthread_mutex_lock(&p->lock);
	int r = read_locked(p, buf, len, off, &waiting, ret_err);
	if (waiting)
		waiter_put();
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
	free(p->tls_certificates);
	free(p->tls_psk_file);
	free(p->tls_username);
	free(p);
}

static bool dup_opt(char **dst, const char *src)
{
	return !src || (*dst = strdup(src)) != NULL;
}

int nbd_parent_open(const struct nbd_uri *u, const struct nbd_parent_opts *o, struct vhdx_remote *ret,
		    scm_error **ret_err)
{
	if (u->tls && !o->tls_certificates && !o->tls_psk_file) {
		_cleanup_free_ char *c = nbd_uri_format(u);
		return scm_fail(ret_err, -EACCES, "remote parent %s needs TLS material, and none is configured "
				"(x509: a CA directory, or a PSK file; docs/vdisk.md, \"TLS\")", c ? c : "nbds");
	}
	struct nbd_parent *p = calloc(1, sizeof *p);
	if (!p)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	p->wait_ms = o->wait_ms;
	p->connect_ms = o->connect_ms ? o->connect_ms : NBD_PARENT_CONNECT_MS;
	p->u.tls = u->tls;
	p->u.unix_socket = u->unix_socket;
	p->u.port = u->port;
	p->u.host = u->host ? strdup(u->host) : NULL;
	p->u.socket = u->socket ? strdup(u->socket) : NULL;
	p->u.export_name = strdup(u->export_name);
	p->canon = nbd_uri_format(u);
	char *uri = nbd_uri_format(u);
	if (!p->canon || !uri || !p->u.export_name || (u->host && !p->u.host) || (u->socket && !p->u.socket) ||
	    !dup_opt(&p->tls_certificates, o->tls_certificates) || !dup_opt(&p->tls_psk_file, o->tls_psk_file) ||
	    !dup_opt(&p->tls_username, o->tls_username)) {
		free(uri);
		parent_close(p);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	/* the first connection is tried once: a parent that is not there
	 * when a disk is made or opened is an error to report now */
	int r = connect_once(p, now_ms() + p->connect_ms, ret_err);
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
	struct nbd_parent_opts o;
	nbd_parent_opts_from_env(&o);
	r = nbd_parent_open(&u, &o, ret, ret_err);
	nbd_uri_clear(&u);
	return r;
}
