/* provider-jobcarry.c: jobs across `scmctl service restart vdisk`
 * (docs/handover.md, "Jobs"; docs/vdisk.md, "Restarting the provider").
 *
 * When a handover starts (scm_provider_on_quiesce), each job that can be
 * carried stops at its next safe point, between two steps: a compact or a
 * stream anywhere; a mirror migration while it copies or makes its dirty
 * passes, once what its last read step queued is written to dest (so that
 * nothing it copied lives only in memory). Every job step holds the
 * handover (scm_provider_hold) while it runs, so save() sees only parked
 * or paused jobs. A snapshot (one step) and a migration's switch-over run
 * to their end first. What save() carries for a job: its id, kind, state
 * (a user's pause stays a pause), progress, its scope's directory (an fd),
 * and a mirror migration's own state: the dirty map and correspondence
 * record (in memory only: the journal says only "roll back"), the
 * throttle's bucket, and dest itself as an fd whose OFD lock goes with
 * it, like the disk's files. The new process makes the same job again on
 * the disk it adopted, marks writes in its dirty map (or mirrors them to
 * dest) from the moment it restored it, and starts stepping once it serves:
 * a state refused by the new process never started any of its steps.
 *
 * Not carried (save() refuses, the old process goes on): a commit (its
 * parent is open twice, read-only in the chain and read-write for the
 * copy, and adopting the chain would lock the parent against itself) and
 * a snapshot-mode migration (its child and reparenting). A `job wait`
 * issued before the restart is carried with its channel
 * (scm_call_set_carriable) and answered by the new process; the last
 * finished jobs are carried as they were listed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "provider-migrate.h"

static bool parking;

static bool carried_kind(enum vjob_kind k)
{
	return k == VJOB_COMPACT || k == VJOB_STREAM || k == VJOB_MIGRATE_MIRROR;
}

bool bjob_holds(const struct bjob *b)
{
	return carried_kind(b->kind) || b->kind == VJOB_SNAPSHOT;
}

bool bjob_parking(void)
{
	return parking;
}

/* Whether b may stop here and be carried. */
bool bjob_parkable(const struct bjob *b)
{
	if (!carried_kind(b->kind) || b->switched || b->complete || b->cancel_req || b->stepping)
		return false;
	if (!b->mig)
		return true;
	const struct bmig *m = b->mig;
	if (m->to_nbd) /* its connection is not carried: cancel it, or let it end */
		return false;
	return (m->phase == MP_COPY || m->phase == MP_DIRTY) && (m->side == SIDE_NONE || m->side == SIDE_SLEEP) &&
	       !m->n_wpend && !m->pending_r;
}

void bjob_quiesce(bool quiet, void *userdata)
{
	parking = quiet;
	if (!quiet)
		bjob_unpark(); /* the handover was called off: go on */
}

/* ---- hex, for the maps --------------------------------------------------- */

json_object *ho_hex(const void *p, size_t n)
{
	static const char dig[] = "0123456789abcdef";
	char *s = malloc(2 * n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = dig[((const uint8_t *)p)[i] >> 4];
		s[2 * i + 1] = dig[((const uint8_t *)p)[i] & 15];
	}
	s[2 * n] = 0;
	json_object *o = json_object_new_string_len(s, (int)(2 * n));
	free(s);
	return o;
}

int ho_unhex(json_object *o, void *out, size_t n)
{
	const char *s = json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
	if (!s || (size_t)json_object_get_string_len(o) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < 2 * n; i++) {
		int c = s[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -EINVAL;
		((uint8_t *)out)[i / 2] = (uint8_t)(i % 2 ? ((uint8_t *)out)[i / 2] | v : v << 4);
	}
	return 0;
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static uint64_t get_u64(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_int) ? json_object_get_uint64(v)
											  : 0;
}

/* ---- the old process: save ----------------------------------------------- */

size_t bjob_carry_fds(const struct bjob *b)
{
	if (!b)
		return 0;
	size_t n = b->scoped;
	if (b->mig)
		n += 1 + b->mig->dscoped; /* dest's directory, its scope (dest itself: its chain, by the caller) */
	return n;
}

static json_object *refuse(scm_error **ret_err, const struct bjob *b, const char *why)
{
	scm_fail(ret_err, SCM_VDISK_E_BUSY, "%s: job %llu (%s) %s: wait for it or cancel it, then restart the provider",
		 b->path, (unsigned long long)b->id, b->mig ? "migrate" : vjob_kind_name(b->kind), why);
	return NULL;
}

static int save_mig(struct bjob *b, json_object *o, scm_error **ret_err)
{
	struct bmig *m = b->mig;
	json_object *j = json_object_new_object();
	json_object_object_add(o, "mig", j);
	add_u64(j, "phase", m->phase);
	add_u64(j, "side", m->side);
	add_u64(j, "sleep_us", m->sleep_us);
	add_u64(j, "throttle", m->throttle);
	add_u64(j, "max_pause_us", m->max_pause_us);
	add_u64(j, "passes", m->passes);
	add_u64(j, "copied", m->copied);
	add_u64(j, "skipped", m->skipped);
	add_u64(j, "mirrored", m->mirrored);
	add_u64(j, "slept_us", m->slept_us);
	add_u64(j, "copy_ns", m->copy_ns);
	add_u64(j, "copy_bytes", m->copy_bytes);
	add_u64(j, "tb_last", m->tb_last);
	json_object_object_add(j, "tokens", json_object_new_int64(m->tokens));
	add_u64(j, "wb_mark", m->wb_mark);
	json_object_object_add(j, "dest_made", json_object_new_boolean(m->dest_made));
	json_object_object_add(j, "reuse", json_object_new_boolean(m->reuse));
	add_u64(j, "block_size", m->block_size);
	add_u64(j, "lsec", m->lsec);
	add_u64(j, "psec", m->psec);
	json_object_object_add(j, "fixed", json_object_new_boolean(m->fixed));
	json_object_object_add(j, "dwg", ho_hex(&m->dwg, sizeof m->dwg));
	json_object_object_add(j, "page83", ho_hex(&m->page83, sizeof m->page83));
	json_object_object_add(j, "dst_dwg", ho_hex(&m->dst_dwg, sizeof m->dst_dwg));
	/* a hash the hasher has not made yet is not carried: the entry
	 * vouches for nothing (a later migration copies that piece again) */
	struct mig_rec *rc = malloc(b->n_chunks ? b->n_chunks * sizeof *rc : 1);
	if (!rc)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	pthread_mutex_lock(&m->dlock);
	memcpy(rc, m->rec, b->n_chunks * sizeof *rc);
	pthread_mutex_unlock(&m->dlock);
	for (uint64_t c = 0; c < b->n_chunks; c++)
		if (rc[c].st == REC_HASHING)
			rc[c].st = REC_UNKNOWN;
	json_object_object_add(j, "rec", ho_hex(rc, b->n_chunks * sizeof *rc));
	free(rc);
	json_object_object_add(j, "dname", json_object_new_string(m->dname));
	if (ho_fd_add(j, "ddirfd", m->ddirfd, ret_err) < 0)
		return -EMFILE;
	if (m->dscoped) {
		json_object_object_add(j, "droot", json_object_new_string(m->droot));
		if (m->droot_real)
			json_object_object_add(j, "droot_real", json_object_new_string(m->droot_real));
		if (ho_fd_add(j, "drootfd", m->drootfd, ret_err) < 0)
			return -EMFILE;
	}
	/* dest: its metadata in the file, then the file itself (its lock) */
	json_object *dst = ho_save_vhdx(b->other, ret_err);
	if (!dst)
		return -EIO;
	json_object_object_add(j, "dest", dst);
	return 0;
}

json_object *bjob_carry_save(struct bjob *b, scm_error **ret_err)
{
	if (!carried_kind(b->kind) || (b->mig && b->mig->to_nbd))
		return refuse(ret_err, b, "cannot be carried across a restart (docs/handover.md)");
	if (!bjob_parkable(b))
		return refuse(ret_err, b, "is not at a point where it can stop (a step, a switch-over or a cancel "
				  "is under way)");
	_cleanup_(json_object_putp) json_object *o = json_object_new_object();
	add_u64(o, "id", b->id);
	json_object_object_add(o, "kind", json_object_new_string(vjob_kind_name(b->kind)));
	json_object_object_add(o, "state", json_object_new_string(vjob_state_name(b->state)));
	json_object_object_add(o, "path", json_object_new_string(b->path));
	if (b->target)
		json_object_object_add(o, "target", json_object_new_string(b->target));
	json_object_object_add(o, "args", json_object_get(b->args));
	add_u64(o, "done", b->done);
	add_u64(o, "total", b->total);
	add_u64(o, "cursor", b->cursor);
	add_u64(o, "phase", (uint64_t)b->phase);
	add_u64(o, "steps", b->steps);
	uint64_t ns = b->ns_run + (b->state == VJOB_RUNNING || b->state == VJOB_WAITING ? mono_ns() - b->t_run : 0);
	add_u64(o, "ns_run", ns);
	/* clients' writes queued for dest: there first (the clients are
	 * held), before the dirty map is carried: what the queue's thread
	 * could not apply (a failed write, one the copy took a piece of) it
	 * marks dirty, and the new process must see that */
	if (b->mig)
		mig_mirq_stop(b, true);
	if (b->dirty)
		json_object_object_add(o, "dirty", ho_hex(b->dirty, b->n_chunks / 8 + 1));
	if (b->scoped) {
		json_object_object_add(o, "root", json_object_new_string(b->root));
		if (b->root_real)
			json_object_object_add(o, "root_real", json_object_new_string(b->root_real));
		if (ho_fd_add(o, "rootfd", b->rootfd, ret_err) < 0)
			return NULL;
	}
	if (b->mig && save_mig(b, o, ret_err) < 0)
		return NULL;
	return TAKE_PTR(o);
}

json_object *bjob_carry_waits(uint64_t channel)
{
	json_object *arr = json_object_new_array();
	for (struct bjob *b = bjobs; b && arr; b = b->next)
		for (size_t i = 0; i < b->n_waiters; i++) {
			const scm_grant *g = scm_call_grant(b->waiters[i]);
			json_object *c = g && g->channel == channel ? scm_call_save(b->waiters[i]) : NULL;
			if (!c)
				continue;
			json_object *w = json_object_new_object();
			add_u64(w, "job", b->id);
			json_object_object_add(w, "call", c);
			json_object_array_add(arr, w);
		}
	return arr;
}

json_object *bjob_carry_save_all(void)
{
	json_object *o = json_object_new_object(), *fin = json_object_new_array();
	add_u64(o, "next_id", bjob_next_id);
	json_object_object_add(o, "finished", fin);
	for (struct bjob *b = bjobs; b; b = b->next)
		if (vjob_finished(b->state)) {
			json_object *f = json_object_new_object();
			json_object_object_add(f, "kind", json_object_new_string(vjob_kind_name(b->kind)));
			json_object_object_add(f, "args", json_object_get(b->args));
			json_object_object_add(f, "json", bjob_json(b));
			json_object_array_add(fin, f);
		}
	return o;
}

/* ---- the new process: restore -------------------------------------------- */

static int restore_mig(struct bjob *b, json_object *j, scm_error **ret_err)
{
	struct bmig *m = b->mig = calloc(1, sizeof *b->mig);
	if (!m)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	mig_init(b, m);
	m->phase = (enum mig_phase)get_u64(j, "phase");
	m->side = get_u64(j, "side") == SIDE_SLEEP ? SIDE_SLEEP : SIDE_NONE;
	if (m->phase != MP_COPY && m->phase != MP_DIRTY)
		return scm_fail(ret_err, SCM_E_INVALID, "/mig/phase: not a phase a job is carried in");
	m->sleep_us = get_u64(j, "sleep_us");
	m->throttle = get_u64(j, "throttle");
	m->max_pause_us = get_u64(j, "max_pause_us");
	m->passes = (unsigned)get_u64(j, "passes");
	m->copied = get_u64(j, "copied");
	m->skipped = get_u64(j, "skipped");
	m->mirrored = get_u64(j, "mirrored");
	m->slept_us = get_u64(j, "slept_us");
	m->copy_ns = get_u64(j, "copy_ns");
	m->copy_bytes = get_u64(j, "copy_bytes");
	m->tb_last = get_u64(j, "tb_last");
	m->tokens = json_object_get_int64(json_object_object_get(j, "tokens"));
	m->wb_mark = get_u64(j, "wb_mark");
	m->dest_made = json_object_get_boolean(json_object_object_get(j, "dest_made"));
	m->reuse = json_object_get_boolean(json_object_object_get(j, "reuse"));
	m->block_size = (uint32_t)get_u64(j, "block_size");
	m->lsec = (uint32_t)get_u64(j, "lsec");
	m->psec = (uint32_t)get_u64(j, "psec");
	m->fixed = json_object_get_boolean(json_object_object_get(j, "fixed"));
	m->dest_unflushed = true; /* the next flush or switch-over makes sure */
	const char *dn = json_object_get_string(json_object_object_get(j, "dname"));
	m->rec = calloc(b->n_chunks ? b->n_chunks : 1, sizeof *m->rec);
	/* parked with nothing in flight: every piece the copy took is in
	 * dest, those before the cursor included (b->cursor, carried) */
	m->inflight = calloc(b->n_chunks / 8 + 1, 1);
	if (!m->rec || !m->inflight || mig_hash_alloc(m, b->n_chunks) < 0 || !dn || !(m->dname = strdup(dn)) || strchr(dn, '/'))
		return scm_fail(ret_err, SCM_E_INVALID, "/mig: no destination name, or out of memory");
	if (ho_unhex(json_object_object_get(j, "dwg"), &m->dwg, sizeof m->dwg) < 0 ||
	    ho_unhex(json_object_object_get(j, "page83"), &m->page83, sizeof m->page83) < 0 ||
	    ho_unhex(json_object_object_get(j, "dst_dwg"), &m->dst_dwg, sizeof m->dst_dwg) < 0 ||
	    ho_unhex(json_object_object_get(j, "rec"), m->rec, b->n_chunks * sizeof *m->rec) < 0)
		return scm_fail(ret_err, SCM_E_INVALID, "/mig: identities or correspondence record malformed");
	memset(b->buf, 0, BJOB_CHUNK);
	mig_sha256(b->buf, BJOB_CHUNK, m->zero_hash);
	if ((m->ddirfd = ho_take_file(j, "ddirfd", true, 0, ret_err)) < 0)
		return -EINVAL;
	if (json_object_object_get(j, "droot")) {
		const char *dr = json_object_get_string(json_object_object_get(j, "droot"));
		json_object *rr = json_object_object_get(j, "droot_real");
		m->droot = strdup(dr);
		m->droot_real = rr ? strdup(json_object_get_string(rr)) : NULL;
		if ((m->drootfd = ho_take_file(j, "drootfd", true, 0, ret_err)) < 0 || !m->droot)
			return -EINVAL;
		m->dscoped = true;
		m->dscope = (struct vhdx_scope){ .dirfd = m->drootfd, .dir = m->droot, .dir_real = m->droot_real,
						 .bat_max = CHAIN_BAT_MAX };
	}
	int r = ho_restore_vhdx(json_object_object_get(j, "dest"), VHDX_O_KEEP_IDENTITY, &b->other, ret_err);
	if (r < 0)
		return scm_fail(ret_err, r, "/mig/dest: %s", b->target);
	mig_direct_open(m, b->other);
	mig_later_decide(b);
	return 0;
}

int bjob_carry_restore(struct disk *d, json_object *o, scm_error **ret_err)
{
	const char *path = json_object_get_string(json_object_object_get(o, "path"));
	json_object *tg = json_object_object_get(o, "target"), *args = json_object_object_get(o, "args");
	int kind = vjob_kind_parse(json_object_get_string(json_object_object_get(o, "kind")));
	int st = vjob_state_parse(json_object_get_string(json_object_object_get(o, "state")));
	if (!path || kind < 0 || !carried_kind((enum vjob_kind)kind) || st < 0 || vjob_finished((enum vjob_state)st) ||
	    !json_object_is_type(args, json_type_object) || (kind == VJOB_MIGRATE_MIRROR && !tg))
		return scm_fail(ret_err, SCM_E_INVALID, "/job: not a job this provider carries");
	struct vhdx_scope scope = { .dirfd = -1 };
	bool scoped = json_object_object_get(o, "root") != NULL;
	if (scoped) {
		json_object *rr = json_object_object_get(o, "root_real");
		scope = (struct vhdx_scope){ .dirfd = ho_take_file(o, "rootfd", true, 0, ret_err),
					     .dir = json_object_get_string(json_object_object_get(o, "root")),
					     .dir_real = rr ? json_object_get_string(rr) : NULL, .bat_max = CHAIN_BAT_MAX };
		if (scope.dirfd < 0 || !scope.dir)
			return scm_fail(ret_err, SCM_E_INVALID, "/job/rootfd: %s", path);
	}
	struct bjob *b = bjob_new(d, (enum vjob_kind)kind, path, tg ? json_object_get_string(tg) : NULL, args, &scope,
				  scoped, ret_err);
	safe_close(scope.dirfd); /* bjob_new has its own */
	if (!b)
		return scm_fail(ret_err, -ENOMEM, "/job: %s", path);
	b->id = get_u64(o, "id");
	b->done = get_u64(o, "done");
	b->total = get_u64(o, "total");
	b->cursor = get_u64(o, "cursor");
	b->phase = (int)get_u64(o, "phase");
	b->steps = (unsigned)get_u64(o, "steps");
	b->ns_run = get_u64(o, "ns_run");
	int r = 0;
	if (json_object_object_get(o, "dirty") || kind == VJOB_MIGRATE_MIRROR) {
		b->n_chunks = (b->vsize + BJOB_CHUNK - 1) / BJOB_CHUNK;
		b->dirty = calloc(b->n_chunks / 8 + 1, 1);
		if (!b->dirty || ho_unhex(json_object_object_get(o, "dirty"), b->dirty, b->n_chunks / 8 + 1) < 0)
			r = scm_fail(ret_err, SCM_E_INVALID, "/job/dirty: malformed");
	}
	if (r == 0 && kind == VJOB_MIGRATE_MIRROR)
		r = restore_mig(b, json_object_object_get(o, "mig"), ret_err);
	if (r == 0 && b->id == 0)
		r = scm_fail(ret_err, SCM_E_INVALID, "/job/id: 0");
	if (r < 0) {
		if (b->other) /* the old process's still: no commit */
			b->other = vhdx_abandon(b->other);
		bjob_free(b);
		return scm_fail(ret_err, SCM_E_INVALID, "job on %s", path);
	}
	bjob_adopt(b, (enum vjob_state)st);
	return 0;
}

void bjob_carry_restore_all(json_object *o)
{
	json_object *fin = json_object_object_get(o, "finished");
	uint64_t n = get_u64(o, "next_id");
	if (n > bjob_next_id)
		bjob_next_id = n;
	for (size_t i = 0; json_object_is_type(fin, json_type_array) && i < json_object_array_length(fin); i++) {
		json_object *f = json_object_array_get_idx(fin, i), *j = json_object_object_get(f, "json");
		int kind = vjob_kind_parse(json_object_get_string(json_object_object_get(f, "kind")));
		int st = vjob_state_parse(json_object_get_string(json_object_object_get(j, "state")));
		const char *path = json_object_get_string(json_object_object_get(j, "path"));
		struct bjob *b = kind >= 0 && st >= 0 && vjob_finished((enum vjob_state)st) && path ? calloc(1, sizeof *b)
												: NULL;
		if (!b)
			continue;
		b->dirfd = b->rootfd = -1;
		b->id = get_u64(j, "id");
		b->kind = (enum vjob_kind)kind;
		b->state = (enum vjob_state)st;
		b->path = strdup(path);
		b->args = json_object_get(json_object_object_get(f, "args"));
		b->final = json_object_get(j);
		bjob_link_finished(b);
	}
}

/* ---- finished jobs and waits, back in the list ---------------------------- */

void bjob_link_finished(struct bjob *b)
{
	struct bjob **p = &bjobs;
	while (*p)
		p = &(*p)->next;
	*p = b;
	if (b->id >= bjob_next_id)
		bjob_next_id = b->id + 1;
}

/* job waits a channel brought, answered on the loop once it serves */
static struct late {
	scm_call *call;
	uint64_t id;
} *lates;
static size_t n_lates;
static scm_task late_task;

static void late_run(scm_task *t)
{
	for (size_t i = 0; i < n_lates; i++) {
		struct bjob *b = bjobs;
		while (b && b->id != lates[i].id)
			b = b->next;
		scm_call **w = b && !vjob_finished(b->state) ? realloc(b->waiters, (b->n_waiters + 1) * sizeof *w) : NULL;
		if (w) {
			b->waiters = w;
			w[b->n_waiters++] = lates[i].call;
		} else if (b && vjob_finished(b->state)) {
			_cleanup_(json_object_putp) json_object *j = bjob_json(b);
			scm_vdisk_job_wait_reply(lates[i].call, j);
		} else {
			scm_call_reply_error(lates[i].call, b ? SCM_E_INTERNAL : SCM_VDISK_E_NOTOPEN,
					     "job %llu %s across the provider's restart: `scmctl vdisk jobs` lists "
					     "what runs", (unsigned long long)lates[i].id,
					     b ? "could not be waited for (out of memory)" : "was not carried");
		}
	}
	free(lates);
	lates = NULL;
	n_lates = 0;
}

void bjob_carry_waits_restore(json_object *arr)
{
	for (size_t i = 0; json_object_is_type(arr, json_type_array) && i < json_object_array_length(arr); i++) {
		json_object *w = json_object_array_get_idx(arr, i);
		scm_call *dc = scm_call_restore(provider, json_object_object_get(w, "call"));
		struct late *n = dc ? realloc(lates, (n_lates + 1) * sizeof *n) : NULL;
		if (!n) {
			if (dc)
				scm_call_reply_error(dc, SCM_E_INTERNAL, "out of memory");
			continue;
		}
		lates = n;
		lates[n_lates++] = (struct late){ dc, json_object_get_uint64(json_object_object_get(w, "job")) };
		if (n_lates == 1) {
			late_task.fn = late_run;
			scm_provider_post(provider, &late_task);
		}
	}
}
