/* provider.c: scm-vdisk-provider, the vdisk service (stubs/idl/vdisk.json)
 * on top of the VHDX engine. This file: the tables of disks, channels,
 * handles and client accounts, and main; the rest is in provider-*.c
 * (provider.h says which).
 *
 * Per channel: a table of handles and one data buffer (a memfd, sealed so
 * that neither side can shrink or grow it under the other's mapping); read
 * and write copy between the disk and that buffer. Across channels: one
 * engine handle per disk file (by device and inode), shared by every
 * client that has it open, so readers see a writer's data and the file's
 * image locks (qemu's lock bytes, vhdx-lock.c) are taken once. A second
 * writer is refused unless it and the writers already there all opened the
 * disk shared. Which paths a client may open, and whether read-only, is
 * the grant's business: the skeleton checks the arguments against it
 * before a handler runs, and every file of a chain is then opened beneath
 * the granted directory (the grant's path_prefix) by fd, so neither a
 * symbolic link nor a parent locator leads out of it.
 *
 * Limits: one open chain's block tables may take CHAIN_BAT_MAX bytes, and
 * each client (endpoint and uid) GRANT_DISKS_MAX handles and
 * GRANT_BYTES_MAX bytes of block tables, so no client can make the
 * provider, which every client shares, run out of memory.
 *
 * Disk work that may wait for the storage does not run on the loop: read,
 * write, readv, writev, trim, flush, info and close are checked on the
 * loop (handle, ranges), then the call is deferred and the work queued on
 * the disk's queue in a small pool of threads (iopool.c); the result comes
 * back through scm_provider_post() and the loop replies. (A read the page
 * cache already holds is done on the loop, with RWF_NOWAIT; open and
 * create still run there, except the connection to a remote parent,
 * made from a thread first: provider-remote.c.) A client's fsync of a
 * large dirty disk or a 4 MiB transfer so holds up only the calls queued behind it on that disk, in
 * the order they came (writes then flush; a read after an acknowledged
 * write sees it). A job keeps its channel and its disk alive until its
 * reply went out, even if the client left meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nbd-parent.h"
#include "provider-jobs.h"
#include "provider-migrate.h"
#include "provider-offload.h"

struct disk *disks;
unsigned channels_live;
static struct account *accounts;
scm_provider *provider;
bool pool_running;

struct account *account_get(const scm_grant *g)
{
	const char *caller = g && g->caller ? g->caller : "";
	uid_t uid = g ? g->uid : (uid_t)-1;
	for (struct account *a = accounts; a; a = a->next)
		if (a->uid == uid && !strcmp(a->caller, caller))
			return a;
	struct account *a = calloc(1, sizeof *a);
	if (!a || !(a->caller = strdup(caller))) {
		free(a);
		return NULL;
	}
	a->uid = uid;
	a->next = accounts;
	accounts = a;
	return a;
}

uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void account_release(struct account *acct, uint64_t bytes)
{
	if (!acct)
		return;
	acct->handles--;
	acct->bytes -= bytes;
	/* an open debt outlives the handles: closing the last one must not
	 * wipe it (the account is freed by a later release once paid) */
	if (acct->handles || acct->open_debt > (mono_ns() - acct->open_paid) / 1000000000ull * OPEN_RATE)
		return;
	for (struct account **p = &accounts; *p; p = &(*p)->next)
		if (*p == acct) {
			*p = acct->next;
			break;
		}
	free(acct->caller);
	free(acct);
}


/* Replies with an error; returns what sending it returned (0 when sent), so
 * a handler may return it. Checks that refuse a call return true after
 * calling it, never its value: 0 would read as "passed". */
int fail(scm_call *call, int code, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	int r = scm_call_reply_error(call, code, "%s", msg ? msg : "out of memory");
	free(msg);
	return r;
}

/* Replies code with what the provider saw on top of the engine's chain
 * (cause, taken): the client reads every layer, with its where. */
int fail_chain(scm_call *call, int code, scm_error *cause, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	scm_error *e = scm_error_newv(code, "vdisk", fmt, ap); /* as scm_call_reply_error says */
	va_end(ap);
	if (!e) {
		scm_error_free(cause);
		return scm_call_reply_error(call, code, "out of memory");
	}
	e->cause = cause;
	int r = scm_call_reply_error_chain(call, e);
	scm_error_free(e);
	return r;
}

/* Maps an engine error to the interface's codes. */
int engine_code(int r)
{
	switch (r) {
	case -EBUSY: case -EAGAIN: return SCM_VDISK_E_BUSY;
	case -ESTALE: return SCM_VDISK_E_PARENTCHANGED;
	case -EEXIST: return SCM_VDISK_E_EXISTS;
	case -EROFS: return SCM_VDISK_E_READONLY;
	case -EINVAL: case -EOPNOTSUPP: case -ELOOP: return SCM_VDISK_E_BADDISK;
	case -EACCES: return SCM_E_DENIED; /* beneath a grant: a link, or out of it */
	case -ENOENT: case -EPERM: return r;
	default: return SCM_VDISK_E_IO;
	}
}

struct channel *channel_get(scm_call *call)
{
	struct channel *c = scm_call_channel_data(call);
	if (c)
		return c;
	c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->rootfd = -1;
	c->memfd = memfd_create("vdisk-buffer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (c->memfd < 0 || ftruncate(c->memfd, BUFFER_SIZE) < 0 ||
	    fcntl(c->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	c->buf = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
	if (c->buf == MAP_FAILED)
		goto fail;
	scm_call_set_channel_data(call, c);
	channels_live++;
	return c;
fail:
	safe_close(c->memfd);
	free(c);
	return NULL;
}

void disk_free(struct disk *d)
{
	for (struct disk **p = &disks; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	pr_disk_free(d->pr);
	if (d->sync_pending)
		close(d->sync_dirfd);
	free(d->moved_to);
	free(d->path);
	free(d);
}


/* Closes a disk nobody has open and no job uses any more: closing commits
 * a writer's metadata (a header write and fsync), so it runs on the disk's
 * queue like any other disk work. Returns the close job, on which the
 * reply to a client's close may ride, or NULL. */
struct job *disk_put(struct disk *d)
{
	if (d->users || d->jobs || d->closing)
		return NULL;
	if (!pool_running) { /* starting up or shutting down */
		if (provider_handed_over)
			vhdx_abandon(d->h);
		else
			vhdx_close(d->h);
		disk_free(d);
		return NULL;
	}
	d->closing = true;
	return disk_close_submit(d);
}

struct job *disk_release(struct disk *d, bool rw)
{
	d->users--;
	if (rw)
		d->writers--;
	return disk_put(d);
}

void channel_put(struct channel *c)
{
	if (!c->closed || c->jobs)
		return;
	safe_close(c->rootfd);
	free(c->root);
	free(c->root_real);
	munmap(c->buf, BUFFER_SIZE);
	safe_close(c->memfd);
	free(c);
	channels_live--;
}

static void on_close(const scm_grant *g, void *chdata, void *userdata)
{
	struct channel *c = chdata;
	if (g && g->token)
		offload_token_channel_closed(g->token);
	if (!c)
		return;
	offload_drop_handle(c, 0);
	nbd_stop_channel(c);
	ring_stop_channel(c);
	for (size_t i = 0; i < HANDLES_MAX; i++)
		if (c->h[i].d) {
			disk_release(c->h[i].d, c->h[i].rw);
			account_release(c->h[i].acct, c->h[i].bytes);
		}
	c->closed = true;
	channel_put(c);
}

struct handle *handle_get(scm_call *call, uint64_t n)
{
	struct channel *c = scm_call_channel_data(call);
	if (!c || n == 0 || n > HANDLES_MAX || !c->h[n - 1].d)
		return NULL;
	return &c->h[n - 1];
}

static const scm_vdisk_handlers handlers = {
	.create = do_create, .open = do_open, .read = do_read,   .write = do_write,
	.flush = do_flush,   .trim = do_trim, .info = do_info,   .close = do_close,
	.readv = do_readv,   .writev = do_writev, .ring = do_ring,
	.pr_register = pr_do_register, .pr_reserve = pr_do_reserve, .pr_release = pr_do_release,
	.pr_clear = pr_do_clear, .pr_preempt = pr_do_preempt, .pr_read = pr_do_read,
	.snapshot = do_snapshot, .merge = do_merge, .compact = do_compact, .job_list = do_job_list,
	.job_pause = do_job_pause, .job_resume = do_job_resume, .job_cancel = do_job_cancel,
	.job_wait = do_job_wait, .migrate = do_migrate,
	.offload_read = do_offload_read, .offload_write = do_offload_write, .offload_map = do_offload_map,
	.offload_fetch = do_offload_fetch, .offload_check = do_offload_check,
	.extents = do_extents, .zero = do_zero, .nbd_serve = do_nbd_serve, .migrated = do_migrated,
};

struct pr_disk *provider_handle_pr(scm_call *call, uint64_t handle, struct iopool_queue **ret_q)
{
	struct handle *h = handle_get(call, handle);
	if (!h) {
		fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
		return NULL;
	}
	*ret_q = &h->d->q;
	return h->d->pr;
}

int main(int argc, char **argv)
{
	scm_vdisk_skeleton sk = { &handlers, NULL };
	/* Disk work runs on a few threads: enough that a flush or a slow disk
	 * does not hold up the others, few enough that one client's queue
	 * depth does not crowd a small machine. $SCM_VDISK_THREADS overrides. */
	const char *nt = getenv("SCM_VDISK_THREADS");
	unsigned threads = nt && atoi(nt) > 0 && atoi(nt) <= 64 ? (unsigned)atoi(nt) : 4;
	scm_provider *p = NULL;
	scm_error *err = NULL;
	if (argc > 1 && !strcmp(argv[1], "--help")) {
		printf("scm-vdisk-provider: the vdisk service; started by scmd (SCM_PROVIDER_FD).\n");
		return 0;
	}
	if (scm_vdisk_provider_new(&sk, &p, &err) != 0) {
		fprintf(stderr, "vdisk-provider: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		return 1;
	}
	scm_provider_on_close(p, on_close);
	provider = p;
	bjob_hooks_init();
	iopool_set_place(mig_cpus_worker_due, mig_cpus_worker); /* (off a migration's CPUs while it runs: provider-migside.c) */
	int r = iopool_start(threads);
	if (r < 0) {
		fprintf(stderr, "vdisk-provider: starting %u I/O threads: %s\n", threads, strerror(-r));
		scm_provider_free(p);
		return 1;
	}
	pool_running = true;
	/* reads waiting for a lost remote parent hold workers: half of them
	 * at most, the rest stay the other disks' (nbd-parent.c) */
	nbd_parent_set_waiters(threads / 2, threads);
	/* after the pool, before serving: a process started to take over
	 * restores its predecessor's disks and channels here */
	r = provider_handover_setup(p, &err);
	if (r == 0)
		r = scm_provider_run(p, &err);
	else
		provider_handed_over = true; /* refused: what it adopted is still the old process's */
	if (r != 0) {
		fprintf(stderr, "vdisk-provider: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
	}
	/* the records of migrations just finished: a few seconds for them,
	 * else they are missing (never wrong: provider-miglater.c); not on
	 * a handover, whose successor must take over at once */
	unsigned nrec = provider_handed_over || scm_provider_handed_over(p) ? 0 : mig_later_drain(5000);
	if (nrec)
		fprintf(stderr, "vdisk-provider: stopping: %u correspondence record%s of finished migrations not "
			"written\n", nrec, nrec == 1 ? "" : "s");
	/* the last jobs finish and post their replies, which the provider's
	 * free runs (to cancelled calls: only freed) */
	provider_handed_over = provider_handed_over || scm_provider_handed_over(p);
	offload_shutdown();
	remote_shutdown(); /* their posts are in before the provider is freed */
	nbd_stop_all();    /* their requests are the pool's */
	iopool_stop();
	pool_running = false;
	bjob_shutdown();
	/* freeing the provider ends every channel (on_close releases their
	 * disks, which commits them); anything left is closed here */
	scm_provider_free(p);
	for (struct disk *d = disks, *n; d; d = n) {
		n = d->next;
		if (provider_handed_over)
			vhdx_abandon(d->h);
		else
			vhdx_close(d->h);
		pr_disk_free(d->pr);
		free(d->path);
		free(d);
	}
	return r != 0;
}
