/* provider.c: scm-vdisk-provider, the vdisk service (stubs/idl/vdisk.json)
 * on top of the VHDX engine.
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
 * create still run there.) A client's fsync of a large dirty disk or a 4 MiB
 * transfer so holds up only the calls queued behind it on that disk, in
 * the order they came (writes then flush; a read after an acknowledged
 * write sees it). A job keeps its channel and its disk alive until its
 * reply went out, even if the client left meanwhile. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scm/macro.h"
#include "scm/vdisk-provider.h"
#include "extents.h"
#include "iopool.h"
#include "provider-pr.h"
#include "vhdx.h"

#define BUFFER_SIZE (4u << 20)
#define HANDLES_MAX 64
#define CHAIN_BAT_MAX (32ull << 20)
#define GRANT_DISKS_MAX 32
#define GRANT_BYTES_MAX (256ull << 20)
/* An open reads and checks the chain's block tables on the loop (up to
 * CHAIN_BAT_MAX: 25 ms for 24 MiB on an idle machine, 500 ms on a busy
 * one), and every client waits behind it. Each client's opens are charged
 * the block table bytes they read, as a debt paid back at OPEN_RATE bytes
 * a second; while the debt is over OPEN_BURST its opens are refused
 * "busy". The burst lets a client open its whole GRANT_BYTES_MAX at once;
 * a client looping over opens gets OPEN_RATE, about a second of a busy
 * loop in twenty. (Bytes, not time: the same for every load, so a client
 * on a busy machine is not punished for the others.) */
#define OPEN_RATE (32ull << 20)
#define OPEN_BURST (GRANT_BYTES_MAX + CHAIN_BAT_MAX)
static uint64_t open_cost; /* set by do_open_loop: the bytes its probe read */

/* What one client (endpoint label and uid) holds, across its channels. */
struct account {
	struct account *next;
	char *caller;
	uid_t uid;
	unsigned handles;
	uint64_t bytes;
	uint64_t open_debt;   /* block table bytes owed for opens, see OPEN_RATE */
	uint64_t open_paid;   /* when the debt was last brought up to date (CLOCK_MONOTONIC ns) */
};

/* Reads up to this size that the page cache holds are done on the loop: a
 * copy of 1 MiB takes about 0.1 ms, less than the hand-off to a worker and
 * back costs on a busy machine; a 4 MiB transfer goes to the pool. */
#define INLINE_READ_MAX (1u << 20)

struct disk {
	struct disk *next;
	dev_t dev;
	ino_t ino;
	char *path;
	vhdx *h;
	bool rw;          /* h is open read-write */
	unsigned users;   /* open handles, all channels */
	unsigned writers; /* of which writers */
	bool shared;      /* the writers opened it shared */
	uint64_t virtual_size;
	uint32_t sector_size;
	bool parallel_reads; /* no parent: reads may run side by side (vhdx.h) */
	unsigned jobs;       /* queued or running, until their reply went out */
	bool closing;        /* its engine handle is being closed on a worker */
	struct pr_disk *pr;  /* persistent reservations (provider-pr.c) */
	struct iopool_queue q;
};

struct handle {
	struct disk *d;
	bool rw;
	struct account *acct;
	uint64_t bytes; /* charged to acct */
};

struct channel {
	int memfd;
	uint8_t *buf;
	struct handle h[HANDLES_MAX]; /* index + 1 is the handle number */
	/* the granted directory, opened once: the prefix and its fd */
	char *root;
	char *root_real;
	int rootfd;
	unsigned jobs;                /* in flight: the buffer stays mapped */
	bool closed;                  /* the client is gone; free after the last job */
};

static struct disk *disks;
static struct account *accounts;
static scm_provider *provider;

static struct account *account_get(const scm_grant *g)
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

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void account_release(struct account *acct, uint64_t bytes)
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

DEFINE_TRIVIAL_CLEANUP(json_object *, json_object_put)

/* Replies with an error; returns what sending it returned (0 when sent), so
 * a handler may return it. Checks that refuse a call return true after
 * calling it, never its value: 0 would read as "passed". */
static int fail(scm_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(scm_call *call, int code, const char *fmt, ...)
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
static int fail_chain(scm_call *call, int code, scm_error *cause, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail_chain(scm_call *call, int code, scm_error *cause, const char *fmt, ...)
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
static int engine_code(int r)
{
	switch (r) {
	case -EBUSY: return SCM_VDISK_E_BUSY;
	case -ESTALE: return SCM_VDISK_E_PARENTCHANGED;
	case -EEXIST: return SCM_VDISK_E_EXISTS;
	case -EROFS: return SCM_VDISK_E_READONLY;
	case -EINVAL: case -EOPNOTSUPP: case -ELOOP: return SCM_VDISK_E_BADDISK;
	case -EACCES: return SCM_E_DENIED; /* beneath a grant: a link, or out of it */
	case -ENOENT: case -EPERM: return r;
	default: return SCM_VDISK_E_IO;
	}
}

static struct channel *channel_get(scm_call *call)
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
	return c;
fail:
	safe_close(c->memfd);
	free(c);
	return NULL;
}

static void disk_free(struct disk *d)
{
	for (struct disk **p = &disks; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	pr_disk_free(d->pr);
	free(d->path);
	free(d);
}

static bool pool_running;
struct job;
static struct job *disk_close_submit(struct disk *d);

/* Closes a disk nobody has open and no job uses any more: closing commits
 * a writer's metadata (a header write and fsync), so it runs on the disk's
 * queue like any other disk work. Returns the close job, on which the
 * reply to a client's close may ride, or NULL. */
static struct job *disk_put(struct disk *d)
{
	if (d->users || d->jobs || d->closing)
		return NULL;
	if (!pool_running) { /* starting up or shutting down */
		vhdx_close(d->h);
		disk_free(d);
		return NULL;
	}
	d->closing = true;
	return disk_close_submit(d);
}

static struct job *disk_release(struct disk *d, bool rw)
{
	d->users--;
	if (rw)
		d->writers--;
	return disk_put(d);
}

static void channel_put(struct channel *c)
{
	if (!c->closed || c->jobs)
		return;
	safe_close(c->rootfd);
	free(c->root);
	free(c->root_real);
	munmap(c->buf, BUFFER_SIZE);
	safe_close(c->memfd);
	free(c);
}

static void on_close(const scm_grant *g, void *chdata, void *userdata)
{
	struct channel *c = chdata;
	if (!c)
		return;
	for (size_t i = 0; i < HANDLES_MAX; i++)
		if (c->h[i].d) {
			disk_release(c->h[i].d, c->h[i].rw);
			account_release(c->h[i].acct, c->h[i].bytes);
		}
	c->closed = true;
	channel_put(c);
}

static struct handle *handle_get(scm_call *call, uint64_t n)
{
	struct channel *c = scm_call_channel_data(call);
	if (!c || n == 0 || n > HANDLES_MAX || !c->h[n - 1].d)
		return NULL;
	return &c->h[n - 1];
}

/* The directory a method's path is granted under: the path_prefix of
 * its "path" parameter (the method's own set, else "*"), or "/" when the
 * path is constrained to a list of names (eq, in: each file of a chain,
 * top and parents, is then checked by its resolved name against those by
 * allow()). NULL: the path is not constrained at all, and the client may
 * open any file the provider can; or (*ret_bad set) it is constrained in
 * some other way ("prefix", "range", ...), which no file path can be
 * trusted to (a "prefix" admits "DIR/../x"): the call is refused, never
 * scoped to "/" by accident. */
static const char *granted_dir(const scm_grant *g, const char *method, bool *ret_constrained,
			       const char **ret_bad)
{
	const char *sets[2] = { method, "*" }, *best = NULL;
	*ret_constrained = false;
	*ret_bad = NULL;
	if (!g || !g->constraints || !json_object_is_type(g->constraints, json_type_object))
		return NULL;
	for (int i = 0; i < 2; i++) {
		json_object *set, *pc, *pp;
		if (!json_object_object_get_ex(g->constraints, sets[i], &set) ||
		    !json_object_is_type(set, json_type_object) || !json_object_object_get_ex(set, "path", &pc))
			continue;
		*ret_constrained = true;
		if (!json_object_is_type(pc, json_type_object) || json_object_object_length(pc) != 1) {
			*ret_bad = "a malformed constraint";
			return NULL;
		}
		if (json_object_object_get_ex(pc, "path_prefix", &pp) && json_object_is_type(pp, json_type_string)) {
			const char *d = json_object_get_string(pp);
			/* both sets hold: the longer prefix is the narrower one */
			if (!best || strlen(d) > strlen(best))
				best = d;
		} else if (!json_object_object_get_ex(pc, "eq", NULL) && !json_object_object_get_ex(pc, "in", NULL)) {
			json_object_object_foreach(pc, k, v)
			{
				(void)v;
				*ret_bad = k;
			}
			return NULL;
		}
	}
	return *ret_constrained && !best ? "/" : best;
}

struct allow_ctx {
	const scm_grant *g;
	const char *method;
	json_object *args; /* the call's other arguments; "path" is replaced */
};

/* Each file of a chain must pass the grant's constraints on "path", as
 * the top file did in the skeleton. */
static bool allow_path(const char *path, void *userdata)
{
	struct allow_ctx *a = userdata;
	json_object_object_add(a->args, "path", json_object_new_string(path));
	scm_error *e = NULL;
	int r = scm_grant_check(a->g, a->method, a->args, &e);
	scm_error_free(e);
	return r == 0;
}

/* Fills scope for method; false (after replying) when the granted
 * directory cannot be opened. *ret_scoped false: the path is unconstrained. */
static bool scope_get(scm_call *call, struct channel *c, const char *method, struct allow_ctx *actx,
		      struct vhdx_scope *scope, bool *ret_scoped)
{
	bool constrained;
	const char *bad;
	const char *dir = granted_dir(scm_call_grant(call), method, &constrained, &bad);
	if (bad) {
		fail(call, SCM_E_DENIED,
		     "%s: the grant constrains \"path\" by \"%s\", which cannot scope a file path "
		     "(only path_prefix, eq or in can): refused",
		     method, bad);
		return false;
	}
	*ret_scoped = dir != NULL;
	if (!dir)
		return true;
	if (!c->root || strcmp(c->root, dir)) {
		int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			fail(call, SCM_E_DENIED, "%s: the granted directory %s cannot be opened: %m", method, dir);
			return false;
		}
		char real[PATH_MAX];
		char *r = strdup(dir), *rr = realpath(dir, real) ? strdup(real) : NULL;
		if (!r) {
			close(fd);
			free(rr);
			fail(call, SCM_E_INTERNAL, "out of memory");
			return false;
		}
		safe_close(c->rootfd);
		free(c->root);
		free(c->root_real);
		c->rootfd = fd;
		c->root = r;
		c->root_real = rr;
	}
	*scope = (struct vhdx_scope){ .dirfd = c->rootfd, .dir = c->root, .dir_real = c->root_real,
				      .allow = allow_path, .userdata = actx, .bat_max = CHAIN_BAT_MAX };
	return true;
}

static int do_create(scm_call *call, const char *path, uint64_t size, uint64_t block_size,
		     uint64_t sector_size, bool fixed, const char *parent, void *ud)
{
	if (block_size > UINT32_MAX || sector_size > UINT32_MAX)
		return fail(call, SCM_E_BAD_ARGS, "block_size or sector_size out of range");
	size_t pl = strlen(path);
	if (pl >= 7 && !strcmp(path + pl - 7, ".scm-pr")) /* provider-pr.c's files */
		return fail(call, SCM_E_BAD_ARGS, "create %s: names ending in .scm-pr hold disks' reservations", path);
	struct channel *c = channel_get(call);
	if (!c)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "size", json_object_new_uint64(size));
	json_object_object_add(a, "block_size", json_object_new_uint64(block_size));
	json_object_object_add(a, "sector_size", json_object_new_uint64(sector_size));
	json_object_object_add(a, "fixed", json_object_new_boolean(fixed));
	json_object_object_add(a, "parent", json_object_new_string(parent));
	struct allow_ctx actx = { scm_call_grant(call), "create", a };
	struct vhdx_scope scope;
	bool scoped;
	if (!scope_get(call, c, "create", &actx, &scope, &scoped))
		return 0;
	/* a disk we would refuse to open is not made either: its block
	 * table alone would be over the cap */
	struct vhdx_create_opts o = { .size = size, .block_size = (uint32_t)block_size,
				      .sector_size = (uint32_t)sector_size, .fixed = fixed,
				      .parent = parent[0] ? parent : NULL, .bat_max = CHAIN_BAT_MAX,
				      .scope = scoped ? &scope : NULL };
	scm_error *err = NULL;
	int r = vhdx_create(path, &o, &err);
	if (r < 0)
		return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err, "create %s", path);
	return scm_vdisk_create_reply(call);
}

/* Do two handles reach the same files, top to base? */
static bool same_chain(vhdx *a, vhdx *b)
{
	for (; a && b; a = vhdx_parent(a), b = vhdx_parent(b)) {
		uint64_t ad, ai, bd, bi;
		vhdx_file_id(a, &ad, &ai);
		vhdx_file_id(b, &bd, &bi);
		if (ad != bd || ai != bi)
			return false;
	}
	return !a && !b;
}

static int do_open_loop(scm_call *call, const char *path, bool readonly, bool shared);


/* The open's block table bytes are charged to the client (see
 * OPEN_RATE): a client looping over opens of a disk with a large block
 * table cannot starve the others. */
static int do_open(scm_call *call, const char *path, bool readonly, bool shared, void *ud)
{
	struct account *acct = account_get(scm_call_grant(call));
	if (!acct)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	uint64_t now = mono_ns(), dt = now - acct->open_paid;
	/* dt * OPEN_RATE stays in 64 bits for dt under 64 s */
	uint64_t paid = dt >= 64000000000ull ? UINT64_MAX : dt * OPEN_RATE / 1000000000ull;
	acct->open_debt = acct->open_debt > paid ? acct->open_debt - paid : 0;
	acct->open_paid = now;
	if (acct->open_debt > OPEN_BURST)
		return fail(call, SCM_VDISK_E_BUSY,
			    "this client's opens read %llu MiB of block tables lately, over the %llu MiB it may at once "
			    "(then %llu MiB a second) on the provider's loop, which every client shares; try again in %llu ms",
			    (unsigned long long)(acct->open_debt >> 20), (unsigned long long)(OPEN_BURST >> 20),
			    (unsigned long long)(OPEN_RATE >> 20),
			    (unsigned long long)((acct->open_debt - OPEN_BURST) * 1000 / OPEN_RATE + 1));
	open_cost = 0;
	int r = do_open_loop(call, path, readonly, shared);
	acct->open_debt += open_cost;
	return r;
}

static int do_open_loop(scm_call *call, const char *path, bool readonly, bool shared)
{
	struct channel *c = channel_get(call);
	if (!c)
		return fail(call, SCM_E_INTERNAL, "no memory for the data buffer");
	size_t slot;
	for (slot = 0; slot < HANDLES_MAX && c->h[slot].d; slot++)
		;
	if (slot == HANDLES_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "%d handles are open on this channel", HANDLES_MAX);
	struct account *acct = account_get(scm_call_grant(call));
	if (!acct)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	if (acct->handles >= GRANT_DISKS_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "this client holds %u open disks, the most it may", acct->handles);
	if (acct->bytes >= GRANT_BYTES_MAX)
		return fail(call, SCM_VDISK_E_LIMIT, "this client's open disks take %llu MiB of block tables, the most it may",
			    (unsigned long long)(acct->bytes >> 20));
	_cleanup_(json_object_putp) json_object *a = json_object_new_object();
	if (!a)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	json_object_object_add(a, "readonly", json_object_new_boolean(readonly));
	json_object_object_add(a, "shared", json_object_new_boolean(shared));
	struct allow_ctx actx = { scm_call_grant(call), "open", a };
	struct vhdx_scope scope;
	bool scoped;
	if (!scope_get(call, c, "open", &actx, &scope, &scoped))
		return 0;
	uint64_t left = GRANT_BYTES_MAX - acct->bytes;
	scope.bat_max = left < CHAIN_BAT_MAX ? left : CHAIN_BAT_MAX;
	/* First a look without locks: which files this client's grant
	 * reaches (the top one by fd, never by name again), and whether the
	 * disk is open already (the same inode, whatever the path). */
	scm_error *err = NULL;
	vhdx *probe = NULL;
	int r = scoped ? vhdx_open_scoped(&scope, path, VHDX_O_RDONLY | VHDX_O_NO_LOCK, &probe, &err)
		       : vhdx_open_fd(-1, path, NULL, VHDX_O_RDONLY | VHDX_O_NO_LOCK, &probe, &err);
	if (r < 0)
		return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err, "open %s", path);
	open_cost = vhdx_memory(probe);
	uint64_t dev, ino;
	vhdx_file_id(probe, &dev, &ino);
	struct disk *d;
	for (d = disks; d; d = d->next)
		if (d->dev == dev && d->ino == ino) {
			if (!d->closing)
				break;
			iopool_drain(&d->q); /* its lock goes with it: wait, then open anew */
		}
	if (d && !same_chain(d->h, probe)) {
		vhdx_close(probe);
		return fail(call, SCM_VDISK_E_BADDISK, "%s: parent not available under the grant", path);
	}
	if (!readonly && shared && !pr_shared_allowed(scm_call_grant(call))) {
		vhdx_close(probe);
		return fail(call, SCM_E_DENIED, "%s: this client's grant does not make disks shareable "
			    "(the profile's allow rule needs \"settings\": {\"shareable\": true})", path);
	}
	if (d && !readonly && d->writers && (!shared || !d->shared)) {
		vhdx_close(probe);
		return fail(call, SCM_VDISK_E_BUSY,
			    "%s is open for writing by another client%s", path,
			    shared ? " that did not open it shared" : " (open it shared to write alongside)");
	}
	const struct vhdx_scope *sp = scoped ? &scope : NULL;
	if (!d) {
		d = calloc(1, sizeof *d);
		if (!d || !(d->path = strdup(path))) {
			free(d);
			vhdx_close(probe);
			return fail(call, SCM_E_INTERNAL, "out of memory");
		}
		/* the real open, locked, from the file the probe holds */
		r = vhdx_open_fd(vhdx_fd(probe), path, sp, readonly ? VHDX_O_RDONLY : 0, &d->h, &err);
		vhdx_close(probe);
		if (r < 0) {
			free(d->path);
			free(d);
			return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err, "open %s",
					  path);
		}
		struct vhdx_info in;
		vhdx_get_info(d->h, &in);
		if ((r = pr_disk_open(&d->pr, sp, path, &in.page83, &err)) < 0) {
			vhdx_close(d->h);
			free(d->path);
			free(d);
			return fail_chain(call, r == -EINVAL ? SCM_VDISK_E_BADDISK : engine_code(r), err, "open %s", path);
		}
		d->dev = dev;
		d->ino = ino;
		d->virtual_size = in.virtual_size;
		d->sector_size = in.logical_sector_size;
		d->parallel_reads = !in.differencing;
		d->rw = !readonly;
		d->next = disks;
		disks = d;
	} else if (!readonly && !d->rw) {
		/* readers only so far: reopen the same file read-write through
		 * /proc/self/fd, never by a path, after dropping the readers'
		 * locks (ours would stop us: OFD locks are per open) */
		vhdx *nh;
		iopool_drain(&d->q); /* no job may use the handle we swap */
		vhdx_unlock(d->h);
		r = vhdx_open_fd(vhdx_fd(probe), path, sp, 0, &nh, &err);
		vhdx_close(probe);
		if (r < 0) {
			if (vhdx_relock(d->h) < 0)
				fprintf(stderr, "vdisk-provider: %s: locks not retaken: %s\n", d->path,
					vhdx_errmsg(d->h));
			return fail_chain(call, r == -EFBIG ? SCM_VDISK_E_LIMIT : engine_code(r), err,
					  "open %s for writing", path);
		}
		if (!same_chain(d->h, nh)) {
			/* a parent was swapped in between: the clients already
			 * there were granted the old chain, not this one */
			vhdx_close(nh);
			if (vhdx_relock(d->h) < 0)
				fprintf(stderr, "vdisk-provider: %s: locks not retaken: %s\n", d->path,
					vhdx_errmsg(d->h));
			return fail(call, SCM_VDISK_E_BUSY, "%s: its chain changed while it was open; try again", path);
		}
		vhdx_close(d->h);
		d->h = nh;
		d->rw = true;
	} else {
		vhdx_close(probe);
	}
	if (!readonly) {
		d->shared = d->writers ? d->shared && shared : shared;
		d->writers++;
	}
	d->users++;
	uint64_t bytes = vhdx_memory(d->h);
	acct->handles++;
	acct->bytes += bytes;
	c->h[slot] = (struct handle){ d, !readonly, acct, bytes };
	return scm_vdisk_open_reply(call, slot + 1, c->memfd, BUFFER_SIZE, d->virtual_size,
				    d->sector_size, readonly);
}

static bool refused_buf(scm_call *call, uint64_t length, uint64_t buffer_offset)
{
	if (length <= BUFFER_SIZE && buffer_offset <= BUFFER_SIZE - length)
		return false;
	fail(call, SCM_VDISK_E_BADRANGE, "buffer_offset %llu + length %llu is past the %u-byte data buffer",
	     (unsigned long long)buffer_offset, (unsigned long long)length, BUFFER_SIZE);
	return true;
}

/* ---- disk work, off the loop -------------------------------------------- */

enum op { OP_READ, OP_WRITE, OP_READV, OP_WRITEV, OP_FLUSH, OP_TRIM, OP_INFO, OP_CLOSE, OP_DISK_CLOSE };

static const char *op_name(enum op op)
{
	static const char *const names[] = { "read", "write", "readv", "writev", "flush",
					     "trim", "info", "close", "close" };
	return names[op];
}

struct job {
	struct iopool_job pj; /* first: the pool hands this back */
	scm_task task;
	scm_call *call;
	struct channel *c;
	struct disk *d;
	enum op op;
	bool rw; /* the handle's mode (flush, close) */
	uint64_t off, len, boff;
	struct vdisk_extent *ex;
	size_t n_ex, bad;
	int r;
	json_object *info;
	scm_error *err; /* why r < 0, from the engine */
	char nexus[VDISK_PR_NEXUS_MAX]; /* the client, for the reservation check */
};

static void job_fail(struct job *j, int r, scm_error *e)
{
	j->r = r;
	scm_error_free(j->err);
	j->err = e;
}

static json_object *info_json(struct disk *d, bool rw, const struct vhdx_info *in);

/* On a worker: the engine calls, nothing else. */
static void job_run(struct iopool_job *pj)
{
	struct job *j = (struct job *)pj;
	vhdx *h = j->d->h;
	int r = 0;
	if ((j->op == OP_READ || j->op == OP_READV || j->op == OP_INFO) && scm_call_cancelled(j->call)) {
		j->r = -ECANCELED; /* nobody waits for a read any more */
		return;
	}
	/* asked again as it runs: a preempt may have come since it was queued */
	if (j->op <= OP_WRITEV || j->op == OP_TRIM) {
		if (pr_check(j->d->pr, j->nexus, j->op != OP_READ && j->op != OP_READV) < 0) {
			j->r = -EBADE;
			return;
		}
	}
	switch (j->op) {
	case OP_READ:
		r = vhdx_read(h, j->c->buf + j->boff, j->len, j->off);
		break;
	case OP_WRITE:
		r = vhdx_write(h, j->c->buf + j->boff, j->len, j->off);
		break;
	case OP_READV:
	case OP_WRITEV:
		for (size_t i = 0; i < j->n_ex && r >= 0; i++) {
			const struct vdisk_extent *e = &j->ex[i];
			r = j->op == OP_WRITEV ? vhdx_write(h, j->c->buf + e->boff, e->len, e->off)
					       : vhdx_read(h, j->c->buf + e->boff, e->len, e->off);
			j->bad = i;
		}
		break;
	case OP_FLUSH:
	case OP_CLOSE:
		r = j->rw ? vhdx_flush(h) : 0;
		break;
	case OP_TRIM:
		r = vhdx_trim(h, j->len, j->off);
		break;
	case OP_DISK_CLOSE:
		r = vhdx_close_checked(h);
		j->d->h = NULL;
		if (r < 0)
			job_fail(j, r, scm_error_new(r, SCM_HERE,
						     "closing the disk failed: the last metadata update may be lost"));
		return;
	case OP_INFO: {
		struct vhdx_info in;
		r = vhdx_get_info(h, &in);
		/* built here: the chain strings belong to the engine handle */
		if (r >= 0 && !(j->info = info_json(j->d, j->rw, &in)))
			r = -ENOMEM;
		break;
	}
	}
	if (r < 0)
		job_fail(j, r, vhdx_error(h));
}

static void job_done(struct iopool_job *pj)
{
	struct job *j = (struct job *)pj;
	scm_provider_post(provider, &j->task);
}

/* On the loop: the reply, then the job lets go of its channel and disk. */
static void job_finish(scm_task *t)
{
	struct job *j = (struct job *)((char *)t - offsetof(struct job, task));
	scm_call *call = j->call;
	if (j->op == OP_DISK_CLOSE) {
		if (call && j->r < 0) /* a client's close rode on it */
			fail_chain(call, SCM_VDISK_E_IO, TAKE_PTR(j->err), "close");
		else if (call)
			scm_vdisk_close_reply(call);
		disk_free(j->d);
		scm_error_free(j->err);
		free(j);
		return;
	}
	if (j->op == OP_CLOSE && j->r >= 0) {
		/* the last user's close answers once the disk is closed */
		j->c->jobs--;
		channel_put(j->c);
		j->d->jobs--;
		struct job *cj = disk_release(j->d, j->rw);
		if (cj)
			cj->call = call;
		else
			scm_vdisk_close_reply(call);
		scm_error_free(j->err);
		free(j);
		return;
	}
	int code = j->r == -EINVAL ? SCM_VDISK_E_BADRANGE : SCM_VDISK_E_IO;
	if (j->r == -ECANCELED)
		scm_call_reply_error(call, SCM_E_INTERNAL, "cancelled"); /* frees it */
	else if (j->r == -EBADE)
		fail(call, SCM_VDISK_E_RESERVATIONCONFLICT,
		     "%s: reservation conflict: %s lost its access while the call was queued (preempted)",
		     op_name(j->op), j->nexus);
	else if (j->r < 0 && (j->op == OP_READV || j->op == OP_WRITEV))
		fail_chain(call, code, TAKE_PTR(j->err), "extents[%zu]", j->bad);
	else if (j->r < 0)
		fail_chain(call, j->op == OP_FLUSH || j->op == OP_CLOSE ? SCM_VDISK_E_IO : code, TAKE_PTR(j->err),
			   "%s", op_name(j->op));
	else
		switch (j->op) {
		case OP_READ: scm_vdisk_read_reply(call); break;
		case OP_WRITE: scm_vdisk_write_reply(call); break;
		case OP_READV: scm_vdisk_readv_reply(call); break;
		case OP_WRITEV: scm_vdisk_writev_reply(call); break;
		case OP_FLUSH: scm_vdisk_flush_reply(call); break;
		case OP_TRIM: scm_vdisk_trim_reply(call); break;
		case OP_INFO: scm_vdisk_info_reply(call, j->info); break;
		case OP_CLOSE: case OP_DISK_CLOSE: break; /* above */
		}
	json_object_put(j->info);
	j->c->jobs--;
	channel_put(j->c);
	j->d->jobs--;
	if (j->op == OP_CLOSE)
		disk_release(j->d, j->rw); /* the handle let go of it when close was called */
	else
		disk_put(j->d);
	free(j->ex);
	scm_error_free(j->err);
	free(j);
}

/* Defers the call and queues the work on the disk's queue. On failure the
 * call has its error and the job is freed. */
static int submit(scm_call *call, struct job *j)
{
	j->call = scm_call_defer(call);
	if (!j->call) { /* over the channel's quota: answered "busy" */
		free(j->ex);
		scm_error_free(j->err);
		free(j);
		return 0;
	}
	j->pj.run = job_run;
	j->pj.done = job_done;
	j->pj.shared = (j->op == OP_READ || j->op == OP_READV || j->op == OP_INFO) && j->d->parallel_reads;
	j->task.fn = job_finish;
	j->c->jobs++;
	j->d->jobs++;
	iopool_submit(&j->d->q, &j->pj);
	return 0;
}

static struct job *disk_close_submit(struct disk *d)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j) { /* close it here then */
		vhdx_close(d->h);
		disk_free(d);
		return NULL;
	}
	j->d = d;
	j->op = OP_DISK_CLOSE;
	j->pj.run = job_run;
	j->pj.done = job_done;
	j->task.fn = job_finish;
	iopool_submit(&d->q, &j->pj);
	return j;
}

static struct job *job_new(scm_call *call, struct handle *h, enum op op)
{
	struct job *j = calloc(1, sizeof *j);
	if (!j) {
		fail(call, SCM_E_INTERNAL, "out of memory");
		return NULL;
	}
	j->c = scm_call_channel_data(call);
	j->d = h->d;
	pr_nexus(call, j->nexus);
	j->rw = h->rw;
	j->op = op;
	return j;
}

static int do_rw(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length,
		 uint64_t buffer_offset, bool wr)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (wr && !h->rw)
		return fail(call, SCM_VDISK_E_READONLY, "handle %llu is read-only", (unsigned long long)handle);
	if (refused_buf(call, length, buffer_offset))
		return 0;
	if (pr_refused(call, h->d->pr, wr))
		return 0;
	/* A small read of what the page cache holds costs less than the trip
	 * to a worker and back: done here when nothing on the disk's queue
	 * comes before it. Anything that would wait for the storage (-EAGAIN)
	 * or is large goes to the pool. */
	if (!wr && length <= INLINE_READ_MAX && h->d->parallel_reads && iopool_shared_now(&h->d->q)) {
		struct channel *c = scm_call_channel_data(call);
		int r = vhdx_read_nowait(h->d->h, c->buf + buffer_offset, length, offset);
		if (r == -EINVAL)
			return fail_chain(call, SCM_VDISK_E_BADRANGE, vhdx_error(h->d->h), "read");
		if (r >= 0)
			return scm_vdisk_read_reply(call);
	}
	struct job *j = job_new(call, h, wr ? OP_WRITE : OP_READ);
	if (!j)
		return 0;
	j->off = offset;
	j->len = length;
	j->boff = buffer_offset;
	return submit(call, j);
}

static int do_read(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length,
		   uint64_t buffer_offset, void *ud)
{
	return do_rw(call, handle, offset, length, buffer_offset, false);
}

static int do_write(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length,
		    uint64_t buffer_offset, void *ud)
{
	return do_rw(call, handle, offset, length, buffer_offset, true);
}

/* readv/writev: one call does what n read/write calls would, at the cost
 * of one round trip; the extents are checked whole first (extents.c), on
 * the loop, and the job gets its own copy of them. */
static int do_vector(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, bool wr)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (wr && !h->rw)
		return fail(call, SCM_VDISK_E_READONLY, "handle %llu is read-only", (unsigned long long)handle);
	if (pr_refused(call, h->d->pr, wr))
		return 0;
	static struct vdisk_extent ex[VDISK_EXTENTS_MAX]; /* parsed on the loop's thread only */
	size_t n;
	scm_error *why = NULL;
	if (vdisk_extents_parse(bin, bin_len, h->d->virtual_size, h->d->sector_size, BUFFER_SIZE, ex, &n,
				&why) < 0)
		return fail_chain(call, SCM_VDISK_E_BADRANGE, why, "%s", wr ? "writev" : "readv");
	struct job *j = job_new(call, h, wr ? OP_WRITEV : OP_READV);
	if (!j)
		return 0;
	j->ex = malloc(n * sizeof *ex);
	if (!j->ex) {
		scm_error_free(j->err);
		free(j);
		return fail(call, SCM_E_INTERNAL, "out of memory");
	}
	memcpy(j->ex, ex, n * sizeof *ex);
	j->n_ex = n;
	return submit(call, j);
}

static int do_readv(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, void *ud)
{
	return do_vector(call, handle, bin, bin_len, false);
}

static int do_writev(scm_call *call, uint64_t handle, const void *bin, size_t bin_len, void *ud)
{
	return do_vector(call, handle, bin, bin_len, true);
}

/* A flush on a read-only handle still goes through the queue: it answers
 * after the writes queued before it, which is what a caller waits for. */
static int do_flush(scm_call *call, uint64_t handle, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	struct job *j = job_new(call, h, OP_FLUSH);
	return j ? submit(call, j) : 0;
}

static int do_trim(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	if (!h->rw)
		return fail(call, SCM_VDISK_E_READONLY, "handle %llu is read-only", (unsigned long long)handle);
	if (pr_refused(call, h->d->pr, true))
		return 0;
	struct job *j = job_new(call, h, OP_TRIM);
	if (!j)
		return 0;
	j->off = offset;
	j->len = length;
	return submit(call, j);
}

static json_object *info_json(struct disk *d, bool rw, const struct vhdx_info *in)
{
	json_object *j = json_object_new_object(), *blocks = json_object_new_object(),
		    *chain = json_object_new_array();
	if (!j || !blocks || !chain) {
		json_object_put(j);
		json_object_put(blocks);
		json_object_put(chain);
		return NULL;
	}
	char g[39];
	json_object_object_add(j, "virtual_size", json_object_new_uint64(in->virtual_size));
	json_object_object_add(j, "block_size", json_object_new_uint64(in->block_size));
	json_object_object_add(j, "logical_sector_size", json_object_new_uint64(in->logical_sector_size));
	json_object_object_add(j, "physical_sector_size", json_object_new_uint64(in->physical_sector_size));
	json_object_object_add(j, "type", json_object_new_string(in->differencing ? "differencing"
								 : in->fixed     ? "fixed"
										 : "dynamic"));
	json_object_object_add(j, "read_only", json_object_new_boolean(!rw));
	json_object_object_add(j, "shared", json_object_new_boolean(d->shared));
	json_object_object_add(j, "file_size", json_object_new_uint64(in->file_size));
	json_object_object_add(j, "disk_usage", json_object_new_uint64(in->disk_usage));
	static const unsigned states[] = { 0, 1, 2, 3, 6, 7 };
	for (size_t i = 0; i < ELEMENTSOF(states); i++)
		json_object_object_add(blocks, vhdx_state_name(states[i]),
				       json_object_new_uint64(in->blocks[states[i]]));
	json_object_object_add(j, "blocks", blocks);
	for (size_t i = 0; i < in->chain_len; i++)
		json_object_array_add(chain, json_object_new_string(in->chain[i]));
	json_object_object_add(j, "chain", chain);
	vhdx_guid_format(&in->data_write_guid, g);
	json_object_object_add(j, "data_write_guid", json_object_new_string(g));
	if (in->parent_linkage[0])
		json_object_object_add(j, "parent_linkage", json_object_new_string(in->parent_linkage));
	return j;
}

static int do_info(scm_call *call, uint64_t handle, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	struct job *j = job_new(call, h, OP_INFO);
	return j ? submit(call, j) : 0;
}

/* The handle is gone at once (later calls on it get "no handle"); the
 * flush that commits a writer's data runs on the disk's queue, and the
 * disk is released when it is done. */
static int do_close(scm_call *call, uint64_t handle, void *ud)
{
	struct handle *h = handle_get(call, handle);
	if (!h)
		return fail(call, SCM_VDISK_E_NOHANDLE, "no handle %llu", (unsigned long long)handle);
	account_release(h->acct, h->bytes);
	struct job *j = job_new(call, h, OP_CLOSE);
	if (!j)
		return 0;
	struct disk *d = h->d;
	j->call = scm_call_defer(call);
	if (!j->call) { /* over the quota, answered "busy": the handle stays */
		scm_error_free(j->err);
		free(j);
		return 0;
	}
	*h = (struct handle){ 0 };
	j->pj.run = job_run;
	j->pj.done = job_done;
	j->task.fn = job_finish;
	j->c->jobs++;
	d->jobs++;
	iopool_submit(&d->q, &j->pj);
	return 0;
}

static const scm_vdisk_handlers handlers = {
	.create = do_create, .open = do_open, .read = do_read,   .write = do_write,
	.flush = do_flush,   .trim = do_trim, .info = do_info,   .close = do_close,
	.readv = do_readv,   .writev = do_writev,
	.pr_register = pr_do_register, .pr_reserve = pr_do_reserve, .pr_release = pr_do_release,
	.pr_clear = pr_do_clear, .pr_preempt = pr_do_preempt, .pr_read = pr_do_read,
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
	int r = iopool_start(threads);
	if (r < 0) {
		fprintf(stderr, "vdisk-provider: starting %u I/O threads: %s\n", threads, strerror(-r));
		scm_provider_free(p);
		return 1;
	}
	pool_running = true;
	r = scm_provider_run(p, &err);
	if (r != 0) {
		fprintf(stderr, "vdisk-provider: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
	}
	/* the last jobs finish and post their replies, which the provider's
	 * free runs (to cancelled calls: only freed) */
	iopool_stop();
	pool_running = false;
	/* freeing the provider ends every channel (on_close releases their
	 * disks, which commits them); anything left is closed here */
	scm_provider_free(p);
	for (struct disk *d = disks, *n; d; d = n) {
		n = d->next;
		vhdx_close(d->h);
		pr_disk_free(d->pr);
		free(d->path);
		free(d);
	}
	return r != 0;
}
