/* provider-pr.c: persistent reservations in the provider (reserve.c is
 * the state machine; docs/vdisk.md "Reservations").
 *
 * The state of a disk lives in a file beside it, NAME.scm-pr, written
 * whole to a temporary name, fsynced, renamed over the old one and the
 * directory fsynced, so a crash leaves the old state or the new one. A
 * change is answered only once it is durable; a change that cannot be
 * saved is undone and answered Io. The file names the disk by its page 83
 * GUID (the SCSI identity a VHDX carries, which a copy or a migration
 * keeps and a new disk does not), so a stale file left by another disk of
 * the same name is refused, never applied.
 *
 * The state changes on the provider's loop and is read by the I/O workers
 * (each read and write asks at the moment it runs, so a preempted
 * client's queued writes fail): a mutex guards it. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provider-pr.h"
#include "vjob.h"
#include "vhdx-internal.h"

struct pr_disk {
	pthread_mutex_t lock;
	struct vdisk_pr st;
	bool active; /* a reservation is held: I/O must ask (atomic: read without the lock) */
	int dirfd;   /* the disk's directory (O_PATH) */
	char *name;  /* the state file's name in it */
	char id[39]; /* the disk's page 83 GUID */
};

void pr_nexus(scm_call *call, char out[VDISK_PR_NEXUS_MAX])
{
	const scm_grant *g = scm_call_grant(call);
	snprintf(out, VDISK_PR_NEXUS_MAX, "%s:%ld", g && g->caller && g->caller[0] ? g->caller : "host",
		 g ? (long)g->uid : -1L);
}

bool pr_shared_allowed(const scm_grant *g)
{
	json_object *v;
	/* only a profile's allow rule says so: several writers on one disk
	 * is a cluster's business, never a client's whim */
	return g && g->settings && json_object_object_get_ex(g->settings, "shareable", &v) &&
	       json_object_get_boolean(v);
}

static int load(struct pr_disk *p, scm_error **ret_err)
{
	int fd = openat(p->dirfd, p->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return scm_fail(ret_err, -errno, "reservation state %s: %m", p->name);
	struct stat st;
	char buf[VDISK_PR_FILE_MAX];
	int r = 0;
	/* the state decides who may write the disk: one someone else wrote
	 * (or may rewrite) would let them fence or unfence at will */
	if (vdisk_own_file(fd, "reservation state", p->name, ret_err) < 0) {
		r = scm_fail(ret_err, -EPERM, "the disk is not opened (the provider writes this file itself)");
	} else if (fstat(fd, &st) < 0 || st.st_size > VDISK_PR_FILE_MAX) {
		r = scm_fail(ret_err, -EINVAL, "reservation state %s: more than %d bytes", p->name,
			     VDISK_PR_FILE_MAX);
	} else {
		ssize_t n = pread(fd, buf, sizeof buf, 0);
		if (n < 0)
			r = scm_fail(ret_err, -errno, "reservation state %s: %m", p->name);
		else if (vdisk_pr_parse(buf, (size_t)n, p->id, &p->st, NULL, ret_err) < 0)
			r = scm_fail(ret_err, -EINVAL,
				     "reservation state %s is unreadable: not applied, the disk is not opened "
				     "(remove the file to drop every reservation)",
				     p->name);
	}
	close(fd);
	return r;
}

/* Writes the state durably (see the top). */
static int save(struct pr_disk *p, scm_error **ret_err)
{
	char buf[VDISK_PR_FILE_MAX], tmp[PATH_MAX];
	size_t n = vdisk_pr_format(&p->st, p->id, buf, sizeof buf);
	if (!n)
		return scm_fail(ret_err, -ENOSPC, "the reservation state does not fit %d bytes", VDISK_PR_FILE_MAX);
	snprintf(tmp, sizeof tmp, ".%s.tmp", p->name);
	/* a new file, never one found there: a link planted under the
	 * temporary name (by a client that may write the directory) would
	 * have us truncate whatever it leads to */
	(void)unlinkat(p->dirfd, tmp, 0);
	int fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "saving the reservation state: %s: %m", tmp);
	ssize_t w = write(fd, buf, n);
	int r = w == (ssize_t)n && fsync(fd) == 0 ? 0 : (w < 0 || w == (ssize_t)n ? -errno : -EIO);
	close(fd);
	if (r == 0 && renameat(p->dirfd, tmp, p->dirfd, p->name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(p->dirfd, tmp, 0);
		return scm_fail(ret_err, r, "saving the reservation state %s: %s", p->name, strerror(-r));
	}
	int dfd = openat(p->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		r = scm_fail(ret_err, -errno, "saving the reservation state: fsync of its directory: %m");
	if (dfd >= 0)
		close(dfd);
	return r;
}

int pr_disk_open(struct pr_disk **ret, const struct vhdx_scope *scope, const char *path, const vhdx_guid *id,
		 scm_error **ret_err)
{
	struct pr_disk *p = calloc(1, sizeof *p);
	if (!p)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	p->dirfd = -1;
	vhdx_guid_format(id, p->id);
	const char *name;
	int r;
	if (scope) {
		r = vhdx_scope_dir(scope, path, &p->dirfd, &name, ret_err);
	} else {
		char *dup = strdup(path);
		const char *slash = strrchr(path, '/');
		name = slash ? slash + 1 : path;
		p->dirfd = dup ? open(dirname(dup), O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
		r = p->dirfd < 0 ? scm_fail(ret_err, dup ? -errno : -ENOMEM, "the disk's directory: %m") : 0;
		free(dup);
	}
	if (r == 0 && asprintf(&p->name, "%s.scm-pr", name) < 0) {
		p->name = NULL;
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	if (r == 0)
		r = load(p, ret_err);
	if (r < 0) {
		pr_disk_free(p);
		return r;
	}
	p->active = p->st.type != VDISK_PR_NONE;
	*ret = p;
	return 0;
}

int pr_disk_dirfd(const struct pr_disk *p, const char **ret_name)
{
	*ret_name = p->name;
	return p->dirfd;
}

int pr_disk_adopt(struct pr_disk **ret, int dirfd, const char *name, const vhdx_guid *id, scm_error **ret_err)
{
	size_t l = strlen(name);
	if (strchr(name, '/') || l <= 7 || strcmp(name + l - 7, ".scm-pr") || !strcmp(name, "..")) {
		safe_close(dirfd);
		return scm_fail(ret_err, -EINVAL, "'%s' is not the name of a reservation state", name);
	}
	struct pr_disk *p = calloc(1, sizeof *p);
	if (!p || !(p->name = strdup(name))) {
		free(p);
		safe_close(dirfd);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&p->lock, NULL);
	p->dirfd = dirfd;
	vhdx_guid_format(id, p->id);
	int r = load(p, ret_err);
	if (r < 0) {
		pr_disk_free(p);
		return r;
	}
	p->active = p->st.type != VDISK_PR_NONE;
	*ret = p;
	return 0;
}

int pr_disk_move(struct pr_disk *p, int dirfd, const char *disk_name, scm_error **ret_err)
{
	if (!p)
		return 0;
	char *name = NULL;
	int fd = openat(dirfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC), r = 0;
	if (fd < 0 || asprintf(&name, "%s.scm-pr", disk_name) < 0) {
		r = scm_fail(ret_err, fd < 0 ? -errno : -ENOMEM, "moving the reservation state: %m");
		if (fd >= 0)
			close(fd);
		return r;
	}
	pthread_mutex_lock(&p->lock);
	bool had = faccessat(p->dirfd, p->name, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	int ofd = p->dirfd;
	char *oname = p->name;
	p->dirfd = fd;
	p->name = name;
	if (had && (r = save(p, ret_err)) < 0) {
		p->dirfd = ofd;
		p->name = oname;
		ofd = fd;
		oname = name;
	}
	pthread_mutex_unlock(&p->lock);
	close(ofd);
	free(oname);
	return r;
}

void pr_disk_free(struct pr_disk *p)
{
	if (!p)
		return;
	if (p->dirfd >= 0)
		close(p->dirfd);
	pthread_mutex_destroy(&p->lock);
	free(p->name);
	free(p);
}

int pr_check(struct pr_disk *p, const char *nexus, bool write)
{
	/* no reservation, the common case: no lock on the I/O path */
	if (!p || !__atomic_load_n(&p->active, __ATOMIC_ACQUIRE))
		return 0;
	pthread_mutex_lock(&p->lock);
	int r = p->active ? vdisk_pr_access(&p->st, nexus, write) : 0;
	pthread_mutex_unlock(&p->lock);
	return r;
}

bool pr_refused(scm_call *call, struct pr_disk *p, bool write)
{
	char nexus[VDISK_PR_NEXUS_MAX];
	pr_nexus(call, nexus);
	if (pr_check(p, nexus, write) == 0)
		return false;
	pthread_mutex_lock(&p->lock);
	const char *t = vdisk_pr_type_name(p->st.type);
	scm_call_reply_error(call, SCM_VDISK_E_RESERVATIONCONFLICT,
			     "reservation conflict: the disk is reserved %s%s%s; %s may not %s it",
			     t ? t : "?", p->st.holder[0] ? " by " : "", p->st.holder, nexus,
			     write ? "write" : "read");
	pthread_mutex_unlock(&p->lock);
	return true;
}

static int code_of(int r)
{
	return r == -EBADE ? SCM_VDISK_E_RESERVATIONCONFLICT : r == -EINVAL ? SCM_E_BAD_ARGS : SCM_VDISK_E_IO;
}

/* Runs one change under the lock, saves it, and answers: the state is
 * rolled back when it cannot be saved. */
enum pr_op { PR_REGISTER, PR_RESERVE, PR_RELEASE, PR_CLEAR, PR_PREEMPT };
static const char *const op_names[] = { "pr_register", "pr_reserve", "pr_release", "pr_clear", "pr_preempt" };

static int change(scm_call *call, uint64_t handle, enum pr_op op, uint64_t key, uint64_t key2, bool flag,
		  const char *type, bool *ret_ok, struct iopool_queue **ret_q)
{
	struct iopool_queue *q;
	struct pr_disk *p = provider_handle_pr(call, handle, &q);
	*ret_ok = false;
	if (!p)
		return 0;
	enum vdisk_pr_type t = VDISK_PR_NONE;
	if (type && vdisk_pr_type_parse(type, &t) < 0)
		return scm_call_reply_error(call, SCM_E_BAD_ARGS,
					    "type \"%s\" is not a reservation type (write-exclusive, exclusive-access, "
					    "and their -registrants-only and -all-registrants forms)",
					    type);
	char nexus[VDISK_PR_NEXUS_MAX];
	pr_nexus(call, nexus);
	scm_error *e = NULL;
	pthread_mutex_lock(&p->lock);
	struct vdisk_pr old = p->st;
	int r;
	switch (op) {
	case PR_REGISTER: r = vdisk_pr_register(&p->st, nexus, key, key2, flag, &e); break;
	case PR_RESERVE: r = vdisk_pr_reserve(&p->st, nexus, key, t, &e); break;
	case PR_RELEASE: r = vdisk_pr_release(&p->st, nexus, key, t, &e); break;
	case PR_CLEAR: r = vdisk_pr_clear(&p->st, nexus, key, &e); break;
	default: r = vdisk_pr_preempt(&p->st, nexus, key, key2, t, &e); break;
	}
	if (r == 0 && memcmp(&old, &p->st, sizeof old) && (r = save(p, &e)) < 0)
		p->st = old;
	__atomic_store_n(&p->active, p->st.type != VDISK_PR_NONE, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&p->lock);
	if (r < 0) {
		scm_error *top = scm_error_new(code_of(r), "vdisk", "%s", op_names[op]);
		if (!top) {
			scm_error_free(e);
			return scm_call_reply_error(call, SCM_E_INTERNAL, "out of memory");
		}
		top->cause = e;
		int rr = scm_call_reply_error_chain(call, top);
		scm_error_free(top);
		return rr;
	}
	*ret_ok = true;
	*ret_q = q;
	return 0;
}

int pr_do_register(scm_call *call, uint64_t handle, uint64_t key, uint64_t new_key, bool ignore, void *ud)
{
	bool ok;
	struct iopool_queue *q;
	int r = change(call, handle, PR_REGISTER, key, new_key, ignore, NULL, &ok, &q);
	return ok ? scm_vdisk_pr_register_reply(call) : r;
}

int pr_do_reserve(scm_call *call, uint64_t handle, uint64_t key, const char *type, void *ud)
{
	bool ok;
	struct iopool_queue *q;
	int r = change(call, handle, PR_RESERVE, key, 0, false, type, &ok, &q);
	return ok ? scm_vdisk_pr_reserve_reply(call) : r;
}

int pr_do_release(scm_call *call, uint64_t handle, uint64_t key, const char *type, void *ud)
{
	bool ok;
	struct iopool_queue *q;
	int r = change(call, handle, PR_RELEASE, key, 0, false, type, &ok, &q);
	return ok ? scm_vdisk_pr_release_reply(call) : r;
}

int pr_do_clear(scm_call *call, uint64_t handle, uint64_t key, void *ud)
{
	bool ok;
	struct iopool_queue *q;
	int r = change(call, handle, PR_CLEAR, key, 0, false, NULL, &ok, &q);
	return ok ? scm_vdisk_pr_clear_reply(call) : r;
}

int pr_do_preempt(scm_call *call, uint64_t handle, uint64_t key, uint64_t victim_key, const char *type,
		  bool abort, void *ud)
{
	bool ok;
	struct iopool_queue *q;
	int r = change(call, handle, PR_PREEMPT, key, victim_key, false, type, &ok, &q);
	if (!ok)
		return r;
	/* PREEMPT AND ABORT: every command queued before the change asks
	 * again when it runs (and the victims' fail); once what was queued
	 * then is done none of theirs can land, and only then is it
	 * answered. A fence, not a wait for an idle queue: a read ring's
	 * reads may keep the queue from ever being idle, and the loop waits */
	if (abort)
		iopool_fence(q);
	return scm_vdisk_pr_preempt_reply(call);
}

int pr_do_read(scm_call *call, uint64_t handle, void *ud)
{
	struct iopool_queue *q;
	struct pr_disk *p = provider_handle_pr(call, handle, &q);
	if (!p)
		return 0;
	char nexus[VDISK_PR_NEXUS_MAX];
	pr_nexus(call, nexus);
	json_object *o = json_object_new_object(), *keys = json_object_new_array();
	if (!o || !keys) {
		json_object_put(o);
		json_object_put(keys);
		return scm_call_reply_error(call, SCM_E_INTERNAL, "out of memory");
	}
	pthread_mutex_lock(&p->lock);
	const struct vdisk_pr *st = &p->st;
	json_object_object_add(o, "generation", json_object_new_uint64(st->generation));
	for (size_t i = 0; i < st->n_regs; i++)
		json_object_array_add(keys, json_object_new_uint64(st->regs[i].key));
	json_object_object_add(o, "keys", keys);
	if (st->type == VDISK_PR_NONE) {
		json_object_object_add(o, "reservation", NULL);
	} else {
		json_object *rv = json_object_new_object();
		json_object_object_add(rv, "type", json_object_new_string(vdisk_pr_type_name(st->type)));
		json_object_object_add(rv, "key", json_object_new_uint64(vdisk_pr_holder_key(st)));
		json_object_object_add(o, "reservation", rv);
	}
	const struct vdisk_pr_reg *me = vdisk_pr_find(st, nexus);
	json_object_object_add(o, "registered", json_object_new_uint64(me ? me->key : 0));
	json_object_object_add(o, "holder", json_object_new_boolean(vdisk_pr_is_holder(st, nexus)));
	json_object_object_add(o, "nexus", json_object_new_string(nexus));
	pthread_mutex_unlock(&p->lock);
	int r = scm_vdisk_pr_read_reply(call, o);
	json_object_put(o);
	return r;
}
