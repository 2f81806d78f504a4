/* provider-jobs.c: jobs, the loop's side (provider-jobs.h). A job is
 * started by a method on a disk the provider holds open (snapshot, merge,
 * compact: the disk's clients keep their handles and channels), runs as a
 * chain of steps on the disk's queue (provider-jobsteps.c), and is driven
 * from here: after each step the loop decides the next one (work, a
 * journal write, a rollback) or stops (paused, finished). Nothing here
 * waits for the storage: journal writes are steps too.
 *
 * The methods that start one, and the journal that starts one again at a
 * disk's first open, are provider-jobstart.c.
 *
 * Who may see or steer a job: a caller whose grant allows the method that
 * started it with the arguments it was started with (a grant for compact
 * on /srv/disks may pause a compact job there). job_wait is deferred and
 * answered when the job finishes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provider-jobs.h"
#include "provider-migrate.h"
#include "provider-offload.h"

#define FINISHED_KEPT 16 /* finished jobs job_list still shows */

unsigned bjob_step_us;
struct bjob *bjobs;
uint64_t bjob_next_id = 1;

static const char *kind_method(enum vjob_kind k)
{
	return k == VJOB_SNAPSHOT			  ? "snapshot"
	       : k == VJOB_COMPACT			  ? "compact"
	       : k == VJOB_MIGRATE_MIRROR || k == VJOB_MIGRATE_SNAPSHOT ? "migrate"
							  : "merge";
}

static bool visible(scm_call *call, const struct bjob *b)
{
	const scm_grant *g = scm_call_grant(call);
	if (!g)
		return false;
	scm_error *e = NULL;
	int r = scm_grant_check(g, kind_method(b->kind), b->args, &e);
	scm_error_free(e);
	return r == 0;
}

json_object *bjob_json(const struct bjob *b)
{
	if (b->final) { /* finished before a handover: as it was then */
		json_object *c = NULL;
		return json_object_deep_copy(b->final, &c, NULL) < 0 ? NULL : c;
	}
	json_object *j = json_object_new_object();
	if (!j)
		return NULL;
	uint64_t ns = b->ns_run + (b->state == VJOB_RUNNING || b->state == VJOB_WAITING ? mono_ns() - b->t_run : 0);
	uint64_t rate = ns ? (uint64_t)((double)b->done * 1e9 / (double)ns) : 0;
	json_object_object_add(j, "id", json_object_new_uint64(b->id));
	json_object_object_add(j, "kind", json_object_new_string(b->mig ? "migrate" : vjob_kind_name(b->kind)));
	json_object_object_add(j, "state", json_object_new_string(vjob_state_name(b->state)));
	json_object_object_add(j, "path", json_object_new_string(b->path));
	json_object_object_add(j, "target", json_object_new_string(b->target ? b->target : ""));
	json_object_object_add(j, "done", json_object_new_uint64(b->done));
	json_object_object_add(j, "total", json_object_new_uint64(b->total));
	json_object_object_add(j, "rate", json_object_new_uint64(rate));
	json_object_object_add(j, "eta", json_object_new_uint64(rate && b->total > b->done ? (b->total - b->done) / rate : 0));
	if (b->err)
		json_object_object_add(j, "error", scm_error_to_json(b->err));
	if (b->mig)
		mig_json(b, j);
	return j;
}

static void bjob_step_done(struct iopool_job *pj)
{
	struct bjob *b = (struct bjob *)((char *)pj - offsetof(struct bjob, pj));
	scm_provider_post(provider, &b->task);
}

static void submit_step(struct bjob *b, int op)
{
	if (!b->held && bjob_holds(b)) { /* a handover waits for the step */
		scm_provider_hold(provider, 1);
		b->held = true;
	}
	b->op = op;
	b->stepping = true;
	b->pj.run = bjob_step_run;
	b->pj.done = bjob_step_done;
	b->pj.shared = false;
	if (op == STEP_WORK && b->mig && mig_step_quick(b) && iopool_try_inline(&b->d->q)) {
		/* a step that only takes pieces (microseconds, no I/O), the queue
		 * idle: done here as its exclusive job (no ring enters), so a
		 * request never waits behind it for a worker to wake */
		bjob_step_run(&b->pj);
		iopool_end_inline(&b->d->q);
		scm_provider_post(provider, &b->task);
		return;
	}
	iopool_submit(op == STEP_SIDE ? b->mig_q : &b->d->q, &b->pj);
}

void bjob_submit(struct bjob *b, int op)
{
	submit_step(b, op);
}

/* Only the last FINISHED_KEPT finished jobs stay listed. */
static void prune(void)
{
	unsigned n = 0;
	for (struct bjob **p = &bjobs; *p;) {
		if (vjob_finished((*p)->state) && ++n > FINISHED_KEPT) {
			struct bjob *b = *p;
			*p = b->next;
			bjob_free(b);
			continue;
		}
		p = &(*p)->next;
	}
}

static void set_state(struct bjob *b, enum vjob_state s)
{
	bool was = b->state == VJOB_RUNNING || b->state == VJOB_WAITING;
	bool is = s == VJOB_RUNNING || s == VJOB_WAITING;
	uint64_t now = mono_ns();
	if (was && !is)
		b->ns_run += now - b->t_run;
	if (!was && is)
		b->t_run = now;
	b->state = s;
}

/* The handles are on another file now: new opens of it find it. */
static void rehome(struct bjob *b)
{
	struct disk *d = b->d;
	/* (migrated to an NBD export: the disk is this file still, frozen) */
	if (b->rehomed || d->moved_to)
		return;
	b->rehomed = true;
	uint64_t dev, ino;
	struct vhdx_info in;
	vhdx_file_id(d->h, &dev, &ino);
	vhdx_get_info(d->h, &in);
	d->dev = dev;
	d->ino = ino;
	d->parallel_reads = !in.differencing;
	d->rw = true;
	char *p = strdup(b->target);
	if (p) {
		free(d->path);
		d->path = p;
	}
}

static void finish(struct bjob *b, enum vjob_state s)
{
	set_state(b, s);
	if (b->mig)
		mig_cpus_release(&b->mig->cpus_held); /* its threads are done (a record writer holds its own) */
	struct disk *d = b->d;
	if (b->switched)
		rehome(b);
	if (s == VJOB_DONE && b->kind == VJOB_STREAM)
		d->parallel_reads = true; /* no parent any more */
	if (b->kind == VJOB_MIGRATE_SNAPSHOT && !b->switched)
		d->parallel_reads = !vhdx_parent(d->h) && !vhdx_remote_uri(d->h); /* the child folded back, or not */
	json_object *j = bjob_json(b);
	for (size_t i = 0; i < b->n_waiters; i++)
		scm_vdisk_job_wait_reply(b->waiters[i], j);
	json_object_put(j);
	b->n_waiters = 0;
	b->d = NULL;
	d->bjob = NULL;
	d->jobs--;
	disk_put(d);
	prune();
}

static void go_on(struct bjob *b);

/* On the loop, after each step: what comes next. */
static void step_finish(scm_task *t)
{
	struct bjob *b = (struct bjob *)((char *)t - offsetof(struct bjob, task));
	b->stepping = false;
	if (b->held) {
		scm_provider_hold(provider, -1);
		b->held = false;
	}
	if (!pool_running)
		return; /* shutting down: the journal says where to go on */
	if (b->op == STEP_ROLLBACK) {
		finish(b, VJOB_CANCELLED);
		return;
	}
	if (b->r < 0 && b->op != STEP_ROLLBACK) {
		b->err = scm_error_wrap(TAKE_PTR(b->serr), b->r, SCM_HERE, "%s job %llu on %s failed",
					vjob_kind_name(b->kind), (unsigned long long)b->id, b->path);
		finish(b, VJOB_FAILED);
		return;
	}
	if (b->complete) {
		finish(b, VJOB_DONE);
		return;
	}
	if (b->switched)
		rehome(b); /* a migration's last step is still to come */
	if (b->mig && mig_write_pending(b)) {
		/* what a migration's step read goes to DEST first, whatever
		 * comes next: a client's write there waits for it */
		mig_next(b);
		return;
	}
	if (b->cancel_req && !b->switched) {
		submit_step(b, STEP_ROLLBACK);
		return;
	}
	if (bjob_parking() && b->state != VJOB_PAUSED && bjob_parkable(b)) {
		b->parked = true; /* a handover carries it from here */
		return;
	}
	go_on(b);
}

/* The next step of a job between two steps: none while paused (but the
 * journal's word), else work. */
static void go_on(struct bjob *b)
{
	if (b->state == VJOB_PAUSED) {
		if (b->jstate != VJOB_PAUSED) {
			b->jstate = VJOB_PAUSED;
			b->persist = true;
			submit_step(b, STEP_PERSIST);
		}
		return;
	}
	if (b->jstate != VJOB_RUNNING) {
		b->jstate = VJOB_RUNNING;
		b->persist = true;
	}
	/* a commit past its first pass copies what was written meanwhile
	 * until the switch-over: "waiting" (the journal says running) */
	if ((b->kind == VJOB_COMMIT || b->mig) && b->phase == 1 && b->state == VJOB_RUNNING)
		set_state(b, VJOB_WAITING);
	if (b->mig)
		mig_next(b);
	else
		submit_step(b, STEP_WORK);
}

/* Starts b: the first step writes the journal, then works. */
void bjob_start(struct bjob *b, enum vjob_state st)
{
	b->next = bjobs;
	bjobs = b;
	b->d->jobs++;
	b->d->bjob = b;
	offload_drop_disk(b->d, "a job started on the source disk (its blocks may move)");
	b->task.fn = step_finish;
	b->state = VJOB_PAUSED;
	set_state(b, st);
	b->jstate = st;
	b->persist = true;
	if (b->mig && st != VJOB_PAUSED)
		mig_next(b); /* its first step is a side step */
	else
		submit_step(b, st == VJOB_PAUSED ? STEP_PERSIST : STEP_WORK);
}

int bjob_start_reply(scm_call *call, struct bjob *b, int (*reply)(scm_call *, uint64_t))
{
	b->id = bjob_next_id++;
	bjob_start(b, VJOB_RUNNING);
	return reply(call, b->id);
}

int do_job_list(scm_call *call, void *ud)
{
	_cleanup_(json_object_putp) json_object *arr = json_object_new_array();
	if (!arr)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	for (struct bjob *b = bjobs; b; b = b->next)
		if (visible(call, b))
			json_object_array_add(arr, bjob_json(b));
	offload_jobs_json(call, arr); /* offload copies running (provider-offload-copy.c) */
	return scm_vdisk_job_list_reply(call, arr);
}

static struct bjob *job_get(scm_call *call, uint64_t id)
{
	for (struct bjob *b = bjobs; b; b = b->next)
		if (b->id == id && visible(call, b))
			return b;
	fail(call, SCM_VDISK_E_NOTOPEN, "no job %llu (or not one on a disk this client's grant reaches)",
	     (unsigned long long)id);
	return NULL;
}

static int steer(scm_call *call, uint64_t id, enum vjob_event ev)
{
	struct bjob *b = job_get(call, id);
	if (!b)
		return 0;
	enum vjob_state n;
	scm_error *e = NULL;
	if (ev == VJOB_EV_CANCEL && b->kind == VJOB_SNAPSHOT && !vjob_finished(b->state))
		return fail(call, SCM_VDISK_E_JOBSTATE, "job %llu: a snapshot is one step: it cannot be cancelled",
			    (unsigned long long)id);
	if (ev == VJOB_EV_CANCEL && b->switched && !vjob_finished(b->state))
		return fail(call, SCM_VDISK_E_JOBSTATE, "job %llu: the handles moved to %s already: it cannot be cancelled",
			    (unsigned long long)id, b->target);
	if (vjob_transition(b->state, ev, &n, &e) < 0)
		return fail_chain(call, SCM_VDISK_E_JOBSTATE, e, "job %llu", (unsigned long long)id);
	if (ev == VJOB_EV_CANCEL) {
		b->cancel_req = true;
		if (!b->stepping)
			submit_step(b, STEP_ROLLBACK);
		return scm_vdisk_job_cancel_reply(call);
	}
	bool was_paused = b->state == VJOB_PAUSED;
	set_state(b, n);
	if (ev == VJOB_EV_RESUME && was_paused && !b->stepping) {
		b->jstate = VJOB_RUNNING;
		b->persist = true;
		if (b->mig)
			mig_next(b);
		else
			submit_step(b, STEP_WORK);
	}
	return ev == VJOB_EV_PAUSE ? scm_vdisk_job_pause_reply(call) : scm_vdisk_job_resume_reply(call);
}

int do_job_pause(scm_call *call, uint64_t id, void *ud)
{
	return steer(call, id, VJOB_EV_PAUSE);
}

int do_job_resume(scm_call *call, uint64_t id, void *ud)
{
	return steer(call, id, VJOB_EV_RESUME);
}

int do_job_cancel(scm_call *call, uint64_t id, void *ud)
{
	if (id >= OFFLOAD_JOB_ID0)
		return offload_job_cancel(call, id);
	return steer(call, id, VJOB_EV_CANCEL);
}

int do_job_wait(scm_call *call, uint64_t id, void *ud)
{
	struct bjob *b = job_get(call, id);
	if (!b)
		return 0;
	if (vjob_finished(b->state)) {
		_cleanup_(json_object_putp) json_object *j = bjob_json(b);
		return scm_vdisk_job_wait_reply(call, j);
	}
	scm_call **w = realloc(b->waiters, (b->n_waiters + 1) * sizeof *w);
	if (!w)
		return fail(call, SCM_E_INTERNAL, "out of memory");
	b->waiters = w;
	scm_call *dc = scm_call_defer(call);
	if (dc) {
		scm_call_set_carriable(dc); /* a provider restart hands it over with the job */
		b->waiters[b->n_waiters++] = dc;
	}
	return 0;
}

/* ---- across a handover (provider-jobcarry.c) ------------------------------ */

void bjob_unpark(void)
{
	for (struct bjob *b = bjobs; b; b = b->next)
		if (b->parked) {
			b->parked = false;
			go_on(b);
		}
}

/* The first dispatch of the new process: the job's steps go on. */
static void kick(scm_task *t)
{
	struct bjob *b = (struct bjob *)((char *)t - offsetof(struct bjob, task));
	b->stepping = false;
	b->task.fn = step_finish;
	if (pool_running)
		go_on(b);
}

void bjob_adopt(struct bjob *b, enum vjob_state st)
{
	b->next = bjobs;
	bjobs = b;
	b->d->jobs++;
	b->d->bjob = b;
	b->d->bjob_io = b; /* clients' writes mark its map (or mirror) from now on */
	b->state = VJOB_PAUSED;
	set_state(b, st);
	b->jstate = st == VJOB_PAUSED ? VJOB_PAUSED : VJOB_RUNNING;
	b->persist = st != VJOB_PAUSED;
	if (b->id >= bjob_next_id)
		bjob_next_id = b->id + 1;
	/* not before the provider serves: a state the new process refuses
	 * must not have started anything (a report queued: shutdown keeps it) */
	b->stepping = true;
	b->task.fn = kick;
	scm_provider_post(provider, &b->task);
}

/* The provider stops: the workers are gone, the journals say where each
 * job was; the parents commit jobs opened are let go. A job whose last
 * step's report is still queued for the loop stays allocated (the
 * provider's free runs that report, which then does nothing). */
void bjob_shutdown(void)
{
	while (bjobs) {
		struct bjob *b = bjobs;
		bjobs = b->next;
		if (b->mig)
			mig_mirq_stop(b, false); /* its thread writes dest's handle */
		if (provider_handed_over) /* the new process's now (provider-jobcarry.c) */
			vhdx_abandon(b->other);
		else
			vhdx_close(b->other);
		b->other = NULL;
		if (b->mig)
			mig_free(b); /* its handles closed: the journal says the rest */
		for (size_t i = 0; i < b->n_waiters; i++)
			scm_call_reply_error(b->waiters[i], SCM_E_INTERNAL, "the provider is stopping");
		if (b->d) {
			b->d->jobs--;
			b->d->bjob = b->d->bjob_io = NULL;
		}
		b->n_waiters = 0;
		if (!b->stepping)
			bjob_free(b);
	}
}
