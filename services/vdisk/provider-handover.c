/* provider-handover.c: the vdisk provider restarted with its channels
 * (`scmctl service restart vdisk`, docs/handover.md, docs/vdisk.md).
 *
 * What the new process cannot make again by itself travels as fds in the
 * state (scm_handover_fd_add): every file of each open disk's chain, whose
 * image locks (vhdx-lock.c) are OFD locks and so belong to the open file
 * description, not to a process: the new process adopts the very same
 * descriptions (vhdx_open_adopt), and a qemu-img in between never finds the
 * disk unlocked. Reopening by path would also let a file renamed in the
 * meantime be taken for the disk. The reservation state's directory goes
 * the same way (the file itself is persisted at each change: the new
 * process reads it again), and each channel's data buffer, a memfd the
 * client has mapped, goes whole, with the channel's handles by disk.
 *
 * Nothing is committed or synced while the clients wait: durability is
 * what the client's flushes asked for (those committed already), and a
 * flush in the new process syncs the same file. The block table pages a
 * rw disk changed since its last commit go in the state as they are
 * ("bat", vhdx_carry_get), and the new process applies them over the table
 * it reads from the file, checked as that one is, and commits them at its
 * next flush or close; only what cannot go so (a differencing disk's
 * bitmaps, other metadata pages, over CARRY_PAGES_MAX pages) is committed
 * into the file first (vhdx_commit, through the log). Had the handover
 * been called off, the old process still has them pending as before. The
 * old one then frees its handles without a commit or an unlock
 * (vhdx_abandon): the new one owns the files. What is refused, the old
 * process serving on: a job queued, running or paused on a disk (finish,
 * cancel or wait for it), a disk
 * being closed, a disk with a remote (NBD) parent. At most
 * SCM_HANDOVER_FDS_MAX fds in all (disk files, reservation directories,
 * channel buffers): past it the handover is refused; served NBD sockets
 * take the room left, the connections past it are ended. Not carried: the
 * accounts' open debts (start from zero), offload tokens (a copy through a
 * token fails after the restart, as after scmd's), the granted directories
 * each channel opened (opened again from its grant at its next call). */
#include "provider-jobs.h"

#define STATE_VERSION 4 /* 2: jobs, job waits and the finished jobs' list; 3: "bat"; 4: a channel's "nbd" */
#define CARRY_PAGES_MAX 16 /* block table pages a disk carries instead of a commit */

bool provider_handed_over;

/* restore(): the disks in the state's order, for restore_channel() */
static struct disk **restored;
static size_t n_restored;

static json_object *refuse_save(scm_error **ret_err, int code, const char *fmt, const char *path, uint64_t n)
{
	scm_fail(ret_err, code, fmt, path, (unsigned long long)n);
	return NULL;
}

int ho_fd_add(json_object *o, const char *key, int fd, scm_error **ret_err)
{
	int i = scm_handover_fd_add(provider, fd);
	if (i < 0)
		return scm_fail(ret_err, i == -EMFILE ? SCM_VDISK_E_LIMIT : i,
				"%s: the state takes at most %u fds: %s", key, SCM_HANDOVER_FDS_MAX, strerror(-i));
	json_object_object_add(o, key, json_object_new_int(i));
	return 0;
}

static json_object *save_disk(struct disk *d, scm_error **ret_err)
{
	if (d->closing || d->jobs > (d->bjob != NULL))
		return refuse_save(ret_err, SCM_VDISK_E_BUSY, "%s: being closed (%llu jobs): try again", d->path,
				   d->jobs);
	for (vhdx *c = d->h; c; c = vhdx_parent(c))
		if (vhdx_remote_uri(c))
			return refuse_save(ret_err, SCM_VDISK_E_BUSY,
					   "%s: has a remote parent, whose connection cannot be handed over (%llu)",
					   d->path, 0);
	_cleanup_free_ uint8_t *bat = NULL;
	size_t bat_len = 0;
	if (d->rw) {
		/* the block table pages changed since the last commit go over
		 * as they are (vhdx_carry_get): no commit, no fdatasync while
		 * the clients wait; what cannot go so is committed */
		int r = d->sync_pending ? mig_commit_sync(d) : 0;
		if (r == 0 && (r = vhdx_carry_get(d->h, CARRY_PAGES_MAX, &bat, &bat_len)) == -EAGAIN)
			r = vhdx_commit(d->h);
		if (r < 0) {
			scm_fail(ret_err, SCM_VDISK_E_IO, "%s: committing its metadata before the handover: %s", d->path,
				 r == -ENOMEM ? strerror(ENOMEM) : vhdx_errmsg(d->h));
			return NULL;
		}
	}
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *bat_hex = bat ? ho_hex(bat, bat_len) : NULL;
	if (bat && !bat_hex) { /* never a state without them */
		scm_fail(ret_err, -ENOMEM, "%s: out of memory", d->path);
		return NULL;
	}
	if (bat_hex)
		json_object_object_add(o, "bat", bat_hex);
	json_object *chain = json_object_new_array();
	json_object_object_add(o, "path", json_object_new_string(d->path));
	json_object_object_add(o, "rw", json_object_new_boolean(d->rw));
	json_object_object_add(o, "shared", json_object_new_boolean(d->shared));
	if (d->moved_to) /* migrated to an NBD export: still no writes here */
		json_object_object_add(o, "moved_to", json_object_new_string(d->moved_to));
	json_object_object_add(o, "dev", json_object_new_uint64(d->dev));
	json_object_object_add(o, "ino", json_object_new_uint64(d->ino));
	struct vhdx_session ss;
	vhdx_session_get(d->h, &ss);
	json_object_object_add(o, "session", json_object_new_int((int)ss.touched));
	json_object_object_add(o, "log_seq", json_object_new_uint64(ss.log_seq));
	json_object_object_add(o, "log_head", json_object_new_uint64(ss.log_head));
	json_object_object_add(o, "chain", chain);
	for (vhdx *c = d->h; c; c = vhdx_parent(c)) {
		json_object *f = json_object_new_object();
		json_object_array_add(chain, f);
		json_object_object_add(f, "path", json_object_new_string(vhdx_path(c)));
		if (ho_fd_add(f, "fd", vhdx_fd(c), ret_err) < 0)
			return NULL;
	}
	if (d->pr) {
		const char *name;
		int dirfd = pr_disk_dirfd(d->pr, &name);
		json_object *pr = json_object_new_object();
		json_object_object_add(o, "pr", pr);
		json_object_object_add(pr, "name", json_object_new_string(name));
		if (ho_fd_add(pr, "dirfd", dirfd, ret_err) < 0)
			return NULL;
	}
	if (d->bjob) { /* stopped at a safe point (provider-jobcarry.c), or refused */
		json_object *j = bjob_carry_save(d->bjob, ret_err);
		if (!j)
			return NULL;
		json_object_object_add(o, "job", j);
	}
	return TAKE_PTR(o);
}

static json_object *save(void *userdata, scm_error **ret_err)
{
	if (scm_provider_recovery(provider)) { /* a checkpoint: the channels say it all */
		rec_save_begin();
		json_object *st = json_object_new_object();
		json_object_object_add(st, "disks", json_object_new_array());
		return st;
	}
	/* served NBD connections were parked by the quiesce (nbd_quiesce:
	 * their requests answered, nothing more read): their sockets go over
	 * with their channels, before which no disk is saved */
	unsigned nconn = 0;
	if (nbd_save_check(&nconn, ret_err) < 0)
		return NULL;
	/* every fd the state will take, before any is added: past the quota
	 * the handover is refused as a whole, never a channel left behind;
	 * NBD sockets take what room is left, the connections past it are
	 * ended as a broken client's would be (their clients reconnect) */
	size_t need = channels_live;
	for (struct disk *d = disks; d; d = d->next) {
		need += (d->pr != NULL) + bjob_carry_fds(d->bjob);
		for (vhdx *c = d->h; c; c = vhdx_parent(c))
			need++;
		for (vhdx *c = d->bjob ? d->bjob->other : NULL; c; c = vhdx_parent(c))
			need++;
	}
	if (need > SCM_HANDOVER_FDS_MAX)
		return refuse_save(ret_err, SCM_VDISK_E_LIMIT,
				   "%s: the state would carry %llu fds (disk files, reservation directories, "
				   "channel buffers), over the most a state takes",
				   "the provider's disks and channels", need);
	size_t room = SCM_HANDOVER_FDS_MAX - need;
	const char *hook = getenv("SCM_VDISK_NBD_HANDOVER_FDS"); /* test hook: less room for NBD sockets */
	if (hook && strtoul(hook, NULL, 10) < room)
		room = strtoul(hook, NULL, 10);
	if (nconn > room) {
		unsigned ended = nbd_shed((unsigned)room);
		fprintf(stderr, "vdisk-provider: handover: the state has room for %zu NBD sockets besides its %zu other "
			"fds: %u of %u NBD connections ended\n", room, need, ended, nconn);
	}
	_cleanup_(json_object_putp) json_object *st = json_object_new_object();
	json_object *arr = json_object_new_array();
	json_object_object_add(st, "disks", arr);
	int i = 0;
	for (struct disk *d = disks; d; d = d->next, i++) {
		json_object *o = save_disk(d, ret_err);
		if (!o)
			return NULL;
		d->ho_idx = i;
		json_object_array_add(arr, o);
	}
	json_object_object_add(st, "jobs", bjob_carry_save_all());
	return TAKE_PTR(st);
}

static json_object *save_channel(const scm_grant *g, void *chdata, void *userdata)
{
	struct channel *c = chdata;
	if (scm_provider_recovery(provider))
		return rec_save_channel(g, c);
	if (!c || c->closed) { /* no disk: perhaps a job wait */
		json_object *w = bjob_carry_waits(g->channel), *o = NULL;
		if (w && json_object_array_length(w) > 0 && (o = json_object_new_object()))
			json_object_object_add(o, "waits", json_object_get(w));
		json_object_put(w);
		return o;
	}
	/* rings are not handed over: their clients go on with calls */
	ring_stop_channel(c);
	json_object *o = json_object_new_object();
	json_object *hs = json_object_new_array();
	int i = scm_handover_fd_add(provider, c->memfd);
	json_object_object_add(o, "memfd", json_object_new_int(i)); /* < 0: the new process refuses it */
	json_object_object_add(o, "handles", hs);
	for (size_t k = 0; k < HANDLES_MAX; k++) {
		if (!c->h[k].d)
			continue;
		json_object *h = json_object_new_object();
		json_object_object_add(h, "n", json_object_new_uint64(k + 1));
		json_object_object_add(h, "disk", json_object_new_int(c->h[k].d->ho_idx));
		json_object_object_add(h, "rw", json_object_new_boolean(c->h[k].rw));
		json_object_array_add(hs, h);
	}
	json_object_object_add(o, "waits", bjob_carry_waits(g->channel));
	json_object_object_add(o, "nbd", nbd_save_channel(c));
	return o;
}

/* A handle another process is to adopt: its metadata in the file, its
 * chain's fds, its write session (a migration's destination). */
json_object *ho_save_vhdx(vhdx *h, scm_error **ret_err)
{
	if (vhdx_commit(h) < 0) {
		scm_fail(ret_err, SCM_VDISK_E_IO, "%s: committing its metadata before the handover: %s", vhdx_path(h),
			 vhdx_errmsg(h));
		return NULL;
	}
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	json_object *chain = json_object_new_array();
	struct vhdx_session ss;
	vhdx_session_get(h, &ss);
	json_object_object_add(o, "session", json_object_new_int((int)ss.touched));
	json_object_object_add(o, "log_seq", json_object_new_uint64(ss.log_seq));
	json_object_object_add(o, "log_head", json_object_new_uint64(ss.log_head));
	json_object_object_add(o, "chain", chain);
	for (vhdx *c = h; c; c = vhdx_parent(c)) {
		json_object *f = json_object_new_object();
		json_object_array_add(chain, f);
		json_object_object_add(f, "path", json_object_new_string(vhdx_path(c)));
		if (ho_fd_add(f, "fd", vhdx_fd(c), ret_err) < 0)
			return NULL;
	}
	return TAKE_PTR(o);
}

/* ---- the new process ---------------------------------------------------- */

static int64_t get_int(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
											  : -1;
}

static const char *get_str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static bool get_bool(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

/* An fd of the state, checked to be what the state says it is. */
int ho_take_file(json_object *o, const char *key, bool dir, int mode, scm_error **ret_err)
{
	int fd = scm_handover_fd_take(provider, get_int(o, key));
	struct stat st;
	if (fd < 0)
		return scm_fail(ret_err, SCM_E_INVALID, "/%s: no such fd in the state", key);
	int fl = fcntl(fd, F_GETFL);
	bool ok = fstat(fd, &st) == 0 && fl >= 0 &&
		  (dir ? S_ISDIR(st.st_mode) : (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) && !(fl & O_PATH) &&
							(fl & O_ACCMODE) == mode);
	if (!ok) {
		close(fd);
		return scm_fail(ret_err, SCM_E_INVALID, "/%s: the fd is not %s", key,
				dir ? "a directory" : mode == O_RDWR ? "a file open read-write" : "a file open read-only");
	}
	return fd;
}

int ho_restore_vhdx(json_object *o, unsigned flags, vhdx **ret, scm_error **ret_err)
{
	json_object *chain = json_object_object_get(o, "chain");
	size_t n = json_object_is_type(chain, json_type_array) ? json_object_array_length(chain) : 0;
	bool rw = !(flags & VHDX_O_RDONLY);
	int fds[VHDX_CHAIN_MAX];
	const char *paths[VHDX_CHAIN_MAX];
	size_t got = 0;
	int r = 0;
	if (n == 0 || n > VHDX_CHAIN_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "/chain: not 1 to %d files", VHDX_CHAIN_MAX);
	for (; got < n; got++) {
		json_object *f = json_object_array_get_idx(chain, got);
		paths[got] = get_str(f, "path");
		fds[got] = paths[got] ? ho_take_file(f, "fd", false, got == 0 && rw ? O_RDWR : O_RDONLY, ret_err) : -1;
		if (fds[got] < 0) {
			r = scm_fail(ret_err, SCM_E_INVALID, "/chain/%zu", got);
			goto out;
		}
	}
	r = vhdx_open_adopt(fds, paths, n, flags, NULL, 0, ret, ret_err);
	if (r < 0)
		goto out;
	struct vhdx_session ss = { (unsigned)get_int(o, "session") & (VHDX_SESSION_FILE | VHDX_SESSION_DATA),
				   (uint64_t)get_int(o, "log_seq"), (uint64_t)get_int(o, "log_head") };
	if (rw && (get_int(o, "log_seq") < 0 || vhdx_session_set(*ret, &ss) < 0)) {
		r = scm_fail(ret_err, SCM_E_INVALID, "%s: no usable log position: %s", paths[0], vhdx_errmsg(*ret));
		*ret = vhdx_abandon(*ret);
	}
out:
	for (size_t i = 0; i < got; i++)
		safe_close(fds[i]);
	return r;
}

/* The block table pages the old process carried instead of a commit
 * ("bat": hex of vhdx_carry_get's records), for vhdx_open_adopt. */
static int carry_bytes(json_object *hex, uint8_t **ret, size_t *ret_len)
{
	size_t n = json_object_is_type(hex, json_type_string) ? (size_t)json_object_get_string_len(hex) / 2 : 0;
	*ret = NULL;
	*ret_len = 0;
	if (!hex)
		return 0;
	if (n == 0 || !(*ret = malloc(n)))
		return n == 0 ? -EINVAL : -ENOMEM;
	if (ho_unhex(hex, *ret, n) < 0) {
		free(*ret);
		*ret = NULL;
		return -EINVAL;
	}
	*ret_len = n;
	return 0;
}

static struct disk *restore_disk(json_object *o, size_t idx, scm_error **ret_err)
{
	json_object *chain = json_object_object_get(o, "chain"), *pr;
	const char *path = get_str(o, "path");
	size_t n = json_object_is_type(chain, json_type_array) ? json_object_array_length(chain) : 0;
	if (!path || n == 0 || n > VHDX_CHAIN_MAX) {
		scm_fail(ret_err, SCM_E_INVALID, "/disks/%zu: no path or no chain of 1 to %d files", idx,
			 VHDX_CHAIN_MAX);
		return NULL;
	}
	bool rw = get_bool(o, "rw");
	int fds[VHDX_CHAIN_MAX];
	const char *paths[VHDX_CHAIN_MAX];
	size_t got = 0, carry_len = 0;
	_cleanup_free_ uint8_t *carry = NULL;
	struct disk *d = NULL;
	int r = 0;
	for (; got < n; got++) {
		json_object *f = json_object_array_get_idx(chain, got);
		paths[got] = get_str(f, "path");
		fds[got] = paths[got] ? ho_take_file(f, "fd", false, got == 0 && rw ? O_RDWR : O_RDONLY, ret_err) : -1;
		if (fds[got] < 0) {
			r = scm_fail(ret_err, SCM_E_INVALID, "/disks/%zu/chain/%zu: %s", idx, got, path);
			goto out;
		}
	}
	struct stat st;
	if (fstat(fds[0], &st) < 0 || (int64_t)st.st_dev != get_int(o, "dev") || (int64_t)st.st_ino != get_int(o, "ino")) {
		r = scm_fail(ret_err, SCM_E_INVALID, "/disks/%zu: %s: the fd is not the file the state names", idx, path);
		goto out;
	}
	d = calloc(1, sizeof *d);
	if (!d || !(d->path = strdup(path))) {
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
		goto out;
	}
	if (carry_bytes(json_object_object_get(o, "bat"), &carry, &carry_len) < 0) {
		r = scm_fail(ret_err, SCM_E_INVALID, "/disks/%zu/bat: %s: not a hex string", idx, path);
		goto out;
	}
	r = vhdx_open_adopt(fds, paths, n, rw ? 0 : VHDX_O_RDONLY, carry, carry_len, &d->h, ret_err);
	if (r < 0) {
		r = scm_fail(ret_err, engine_code(r), "/disks/%zu: %s", idx, path);
		goto out;
	}
	/* the write session goes on: no new identity, the same log */
	struct vhdx_session ss = { (unsigned)get_int(o, "session") & (VHDX_SESSION_FILE | VHDX_SESSION_DATA),
				   (uint64_t)get_int(o, "log_seq"), (uint64_t)get_int(o, "log_head") };
	if (rw && (get_int(o, "log_seq") < 0 || vhdx_session_set(d->h, &ss) < 0)) {
		r = scm_fail(ret_err, SCM_E_INVALID, "/disks/%zu: %s: no usable log position: %s", idx, path,
			     vhdx_errmsg(d->h));
		goto out;
	}
	struct vhdx_info in;
	vhdx_get_info(d->h, &in);
	if (json_object_object_get_ex(o, "pr", &pr)) {
		const char *name = get_str(pr, "name");
		int dirfd = name ? ho_take_file(pr, "dirfd", true, 0, ret_err) : -1;
		if (dirfd < 0 || pr_disk_adopt(&d->pr, dirfd, name, &in.page83, ret_err) < 0) {
			r = scm_fail(ret_err, SCM_E_INVALID, "/disks/%zu/pr: %s", idx, path);
			goto out;
		}
	}
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	d->virtual_size = in.virtual_size;
	d->sector_size = in.logical_sector_size;
	d->parallel_reads = !in.differencing;
	d->rw = rw;
	d->shared = get_bool(o, "shared");
	const char *moved = get_str(o, "moved_to"); /* absent (an older state): not moved */
	if (moved && !(d->moved_to = strdup(moved)))
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
out:
	for (size_t i = 0; i < got; i++)
		safe_close(fds[i]);
	if (r < 0 && d) {
		vhdx_abandon(d->h); /* the old process's still: no commit */
		pr_disk_free(d->pr);
		free(d->path);
		free(d);
		d = NULL;
	}
	return d;
}

static int restore(json_object *state, uint32_t version, void *userdata, scm_error **ret_err)
{
	json_object *arr = json_object_object_get(state, "disks");
	if (!json_object_is_type(arr, json_type_array))
		return scm_fail(ret_err, SCM_E_INVALID, "/disks: not an array");
	size_t n = json_object_array_length(arr);
	restored = calloc(n ? n : 1, sizeof *restored);
	if (!restored)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct disk *d = restore_disk(json_object_array_get_idx(arr, i), i, ret_err);
		if (!d)
			return scm_fail(ret_err, SCM_E_INVALID, "restoring disk %zu of %zu", i + 1, n);
		d->next = disks;
		disks = d;
		restored[n_restored++] = d;
		json_object *job = json_object_object_get(json_object_array_get_idx(arr, i), "job");
		if (job && bjob_carry_restore(d, job, ret_err) < 0)
			return scm_fail(ret_err, SCM_E_INVALID, "/disks/%zu/job: %s", i, d->path);
	}
	json_object *jobs = json_object_object_get(state, "jobs");
	if (jobs)
		bjob_carry_restore_all(jobs);
	/* test hook: refuse after adopting every disk, as a later failure
	 * would (tests/bats/vdisk-handover.bats: the old process must find
	 * its files as it left them) */
	if (getenv("SCM_VDISK_RESTORE_FAIL"))
		return scm_fail(ret_err, SCM_E_INVALID, "refused after adopting %zu disks ($SCM_VDISK_RESTORE_FAIL)",
				n_restored);
	return 0;
}

static int restore_channel(const scm_grant *g, json_object *saved, uint32_t version, void **ret_chdata,
			   void *userdata)
{
	if (!saved)
		return 0;
	if (scm_provider_recovery(provider))
		return rec_restore_channel(g, saved, ret_chdata);
	if (!json_object_object_get(saved, "memfd")) { /* a channel without disks: its job waits */
		bjob_carry_waits_restore(json_object_object_get(saved, "waits"));
		return 0;
	}
	json_object *hs = json_object_object_get(saved, "handles");
	int r;
	struct channel *c = channel_adopt(g, saved, "saved", &r);
	if (!c)
		return r;
	for (size_t i = 0; i < json_object_array_length(hs); i++) {
		json_object *h = json_object_array_get_idx(hs, i);
		int64_t k = get_int(h, "n"), di = get_int(h, "disk");
		bool rw = get_bool(h, "rw");
		struct account *acct = NULL;
		if (k < 1 || k > HANDLES_MAX || c->h[k - 1].d || di < 0 || (uint64_t)di >= n_restored ||
		    (rw && !restored[di]->rw) || !(acct = account_get(g))) {
			/* not a handle this state can give back: the client's calls on it fail */
			fprintf(stderr, "vdisk-provider: channel %llu: handle %lld (disk %lld of %zu%s) not given back\n",
				(unsigned long long)g->channel, (long long)k, (long long)di, n_restored,
				rw ? ", read-write" : "");
			continue;
		}
		struct disk *d = restored[di];
		uint64_t bytes = vhdx_memory(d->h);
		acct->handles++;
		acct->bytes += bytes;
		d->users++;
		d->writers += rw;
		c->h[k - 1] = (struct handle){ .d = d, .rw = rw, .acct = acct, .bytes = bytes };
	}
	*ret_chdata = c;
	bjob_carry_waits_restore(json_object_object_get(saved, "waits"));
	/* its served NBD connections read again here (state version 4) */
	nbd_restore_channel(g, c, json_object_object_get(saved, "nbd"));
	return 0;
}

/* The channel a saved state or a checkpoint (what: "saved",
 * "checkpointed") names, made again around its data buffer: the memfd the
 * client has mapped, which must be sealed and BUFFER_SIZE long, and an
 * array of handles beside it. NULL and *ret_r (-errno) when not usable,
 * logged. */
struct channel *channel_adopt(const scm_grant *g, json_object *saved, const char *what, int *ret_r)
{
	int fd = scm_handover_fd_take(provider, get_int(saved, "memfd"));
	struct stat st;
	int seals = fd >= 0 ? fcntl(fd, F_GET_SEALS) : -1;
	const int want = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	if (fd < 0 || seals < 0 || (seals & want) != want || fstat(fd, &st) < 0 || st.st_size != BUFFER_SIZE ||
	    !json_object_is_type(json_object_object_get(saved, "handles"), json_type_array)) {
		safe_close(fd);
		fprintf(stderr, "vdisk-provider: channel %llu: its %s data buffer or handles are not usable\n",
			(unsigned long long)g->channel, what);
		*ret_r = -EINVAL;
		return NULL;
	}
	struct channel *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		*ret_r = -ENOMEM;
		return NULL;
	}
	c->rootfd = -1;
	c->memfd = fd;
	c->buf = mmap(NULL, BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c->buf == MAP_FAILED) {
		*ret_r = -errno;
		close(fd);
		free(c);
		return NULL;
	}
	channels_live++; /* channel_put counts it out */
	return c;
}

/* jobs stop at a safe point, served NBD connections at a request boundary */
static void quiesce(bool quiet, void *userdata)
{
	bjob_quiesce(quiet, userdata);
	nbd_quiesce(quiet);
}

int provider_handover_setup(scm_provider *p, scm_error **ret_err)
{
	scm_handover_ops ops = { .version = STATE_VERSION, .min_version = 1, .save = save,
				 .save_channel = save_channel, .restore = restore, .restore_channel = restore_channel };
	/* test hook: a provider that reads only states newer than this one
	 * writes (tests/bats/vdisk-handover.bats) */
	const char *mv = getenv("SCM_VDISK_STATE_MIN");
	if (mv && atoi(mv) > STATE_VERSION)
		ops.version = ops.min_version = (uint32_t)atoi(mv);
	scm_provider_on_quiesce(p, quiesce);
	return scm_provider_handover(p, &ops, ret_err);
}
