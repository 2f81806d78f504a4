/* service-recover.c: a provider that crashes gets its channels back
 * (docs/handover.md, "A provider that crashes").
 *
 * A service whose manifest says "recover": true has its provider send
 * checkpoints on its control socket: {"op":"checkpoint","fds":N} with a
 * sealed memfd in the handover's state format, right behind N fds in
 * "checkpoint.fds" events of up to SCM_FDS_MAX. scmd keeps the last one
 * per service, bounded (CKPT_BYTES_MAX, SCM_HANDOVER_FDS_MAX fds, a rate of
 * CKPT_PER_SEC with a burst of CKPT_BURST): one over a bound is refused,
 * logged, and the one held before is dropped too (a recovery from a state
 * known to be stale is not attempted; the next checkpoint that fits is
 * taken).
 *
 * When such a provider dies of a failure with live channels and a
 * checkpoint held, scmd keeps the channels (the provider ends it holds for
 * revocation), writes {"op":"provider.recovering","dead_at_us":T} into
 * each (libscm's client fails the calls in progress that were sent before
 * T, keeps the channel), and starts a new
 * process as for a handover: "handover.waiting", then the checkpoint
 * ("handover.state" with "recovery": true, its fds) and every channel
 * marked "handover". Connects wait meanwhile (P_HANDOVER). Its "ready"
 * ("restored": true) ends the recovery. A refusal, a plain ready, the
 * manifest's timeout or its death kill it and its channels are revoked as
 * for any crash; so is a crash within RECOVER_STABLE_USEC of the last
 * recovery: a provider that crashes on its own state is not restarted
 * with it over and over. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scm-internal/error.h"
#include "scm-internal/wire.h"
#include "restart.h"
#include "scmd.h"

#define WHERE "scmd/service-recover"
#define CKPT_SEALS (F_SEAL_SEAL | F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)

struct svc_recover {
	/* the checkpoint held: memfd (-1: none) and its fds */
	int state_fd;
	int *fds;
	size_t n_fds;
	uint64_t bytes, at_us, n_taken, n_refused;
	/* "checkpoint.fds" received ahead of the next checkpoint */
	int *next_fds;
	size_t n_next;
	bool next_over;
	uint64_t tat_us; /* the rate's theoretical arrival time (GCRA) */
	/* a recovery under way */
	bool active;
	bool passed; /* its state went to the new process: once per recovery */
	pid_t dead_pid;
	uint64_t t_crash;
	size_t channels;
	uint64_t n_recoveries, recovered_at;
};

static void close_fds(int **fds, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		safe_close((*fds)[i]);
	free(*fds);
	*fds = NULL;
	*n = 0;
}

static void drop_held(struct svc_recover *rc)
{
	rc->state_fd = safe_close(rc->state_fd);
	close_fds(&rc->fds, &rc->n_fds);
	rc->bytes = 0;
}

static struct svc_recover *rc_get(struct service *s)
{
	if (!s->rec && (s->rec = calloc(1, sizeof(*s->rec))))
		s->rec->state_fd = -1;
	return s->rec;
}

void svc_recover_free(struct service *s)
{
	struct svc_recover *rc = s->rec;
	if (!rc)
		return;
	drop_held(rc);
	close_fds(&rc->next_fds, &rc->n_next);
	free(rc);
	s->rec = NULL;
}

/* The provider's process is gone or replaced: what it checkpointed, and
 * its fds ahead of a checkpoint, are not the next process's state. */
void svc_recover_forget(struct service *s)
{
	struct svc_recover *rc = s->rec;
	if (!rc)
		return;
	drop_held(rc);
	close_fds(&rc->next_fds, &rc->n_next);
	rc->next_over = false;
}

static const char *op_of(scm_message *m)
{
	json_object *op;
	if (m->json && json_object_object_get_ex(m->json, "op", &op) && json_object_is_type(op, json_type_string))
		return json_object_get_string(op);
	return "";
}

/* Why checkpoint m cannot be held, or NULL; *fd is its memfd. */
static const char *ckpt_check(struct svc_recover *rc, scm_message *m, int fd, char *why, size_t n)
{
	json_object *v;
	int64_t said = json_object_object_get_ex(m->json, "fds", &v) ? json_object_get_int64(v) : 0;
	struct stat st;
	int seals = fd >= 0 ? fcntl(fd, F_GET_SEALS) : -1;
	uint64_t now = now_usec(), step = 1000000u / CKPT_PER_SEC;
	if (fd < 0)
		return "it carries no memfd";
	if (seals < 0 || (seals & CKPT_SEALS) != CKPT_SEALS || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return "its file is not a sealed memfd (write, grow, shrink and seal sealed)";
	if ((uint64_t)st.st_size > CKPT_BYTES_MAX) {
		snprintf(why, n, "%lld bytes, over the bound of %u", (long long)st.st_size, CKPT_BYTES_MAX);
		return why;
	}
	if (rc->next_over || said != (int64_t)rc->n_next) {
		snprintf(why, n, "it names %lld fds, %s%zu came with it (at most %u)", (long long)said,
			 rc->next_over ? "more than " : "", rc->n_next, SCM_HANDOVER_FDS_MAX);
		return why;
	}
	/* GCRA: CKPT_PER_SEC on average, CKPT_BURST in a row */
	uint64_t tat = rc->tat_us > now ? rc->tat_us : now;
	if (tat - now > (CKPT_BURST - 1) * step) {
		snprintf(why, n, "more than %d a second (a burst of %d)", CKPT_PER_SEC, CKPT_BURST);
		return why;
	}
	rc->tat_us = tat + step;
	rc->bytes = (uint64_t)st.st_size;
	return NULL;
}

static void ckpt_take(struct service *s, struct svc_recover *rc, scm_message *m)
{
	char buf[160];
	int fd = scm_message_steal_fd(m, 0);
	uint64_t prev = rc->bytes;
	const char *why = ckpt_check(rc, m, fd, buf, sizeof buf);
	if (why) {
		rc->bytes = prev;
		rc->n_refused++;
		log_warning("service '%s': checkpoint of its provider (pid %d) refused: %s; %s", s->name, s->pid, why,
			    rc->state_fd >= 0 ? "the one held before is dropped (a crash now revokes its channels)"
					      : "none is held (a crash now revokes its channels)");
		safe_close(fd);
		drop_held(rc);
		close_fds(&rc->next_fds, &rc->n_next);
		rc->next_over = false;
		return;
	}
	uint64_t bytes = rc->bytes;
	drop_held(rc);
	rc->state_fd = fd;
	rc->bytes = bytes;
	rc->fds = rc->next_fds;
	rc->n_fds = rc->n_next;
	rc->next_fds = NULL;
	rc->n_next = 0;
	rc->at_us = now_usec();
	rc->n_taken++;
}

static void ckpt_fds(struct svc_recover *rc, scm_message *m)
{
	for (size_t i = 0; i < m->n_fds; i++) {
		int fd = scm_message_steal_fd(m, i);
		int *n = rc->n_next < SCM_HANDOVER_FDS_MAX ? realloc(rc->next_fds, (rc->n_next + 1) * sizeof(int))
							   : NULL;
		if (!n) {
			safe_close(fd);
			rc->next_over = true;
			continue;
		}
		rc->next_fds = n;
		rc->next_fds[rc->n_next++] = fd;
	}
}

/* The channels right behind the checkpoint, as a handover passes them. */
static int pass_state(struct scmd *d, struct service *s, struct svc_recover *rc)
{
	json_object *st = json_object_new_object();
	json_object_object_add(st, "op", json_object_new_string("handover.state"));
	json_object_object_add(st, "fds", json_object_new_int64((int64_t)rc->n_fds));
	json_object_object_add(st, "recovery", json_object_new_boolean(true));
	int r = service_send(d, s, SCM_FRAME_EVENT, 0, st, &rc->state_fd, 1);
	json_object_put(st);
	for (size_t i = 0; r == 0 && i < rc->n_fds; i += SCM_FDS_MAX) {
		size_t k = rc->n_fds - i < SCM_FDS_MAX ? rc->n_fds - i : SCM_FDS_MAX;
		json_object *ev = json_object_new_object();
		json_object_object_add(ev, "op", json_object_new_string("handover.fds"));
		r = service_send(d, s, SCM_FRAME_EVENT, 0, ev, rc->fds + i, k);
		json_object_put(ev);
	}
	struct list *p, *t;
	rc->channels = 0;
	list_for_each_safe(p, t, &s->channels)
	{
		if (r != 0)
			break;
		struct channel *ch = list_entry(p, struct channel, svc_node);
		json_object *g = handover_grant(s, ch);
		size_t len = 0;
		const char *txt = json_object_to_json_string_length(g, JSON_C_TO_STRING_PLAIN, &len);
		r = scm_outq_send(s->ctl.fd, &s->ctl_q, SCM_FRAME_CALL, SCM_FLAG_NO_REPLY, 0, 1, txt, len, NULL, 0,
				  &ch->w.fd, 1);
		json_object_put(g);
		if (r == 1)
			watch_mod(d, &s->ctl, EPOLLIN | EPOLLOUT);
		r = r < 0 ? r : 0;
		rc->channels++;
	}
	return r;
}

/* The recovery failed: the new process is killed; its reaping revokes the
 * channels as for any crash. */
static void fail(struct service *s, const char *fmt, const char *arg)
{
	log_warning("service '%s': the recovery of its channels failed: the new provider (pid %d) %s%s; they are "
		    "revoked",
		    s->name, s->pid, fmt, arg ? arg : "");
	s->rec->active = false;
	s->rec->recovered_at = now_usec(); /* a second try would be a crash loop */
	if (s->pid > 0)
		kill(s->pid, SIGKILL);
}

bool svc_recover_frame(struct scmd *d, struct service *s, scm_message *m)
{
	const char *op = op_of(m);
	if (!s->recover || m->type != SCM_FRAME_EVENT || !*op)
		return false;
	struct svc_recover *rc = rc_get(s);
	if (!rc)
		return false;
	if (strcmp(op, "checkpoint.fds") == 0) {
		ckpt_fds(rc, m);
		return true;
	}
	if (strcmp(op, "checkpoint") == 0) {
		ckpt_take(s, rc, m);
		return true;
	}
	if (!rc->active)
		return false;
	json_object *v;
	if (strcmp(op, "handover.waiting") == 0) {
		/* each pass queues the checkpoint, its fds and every channel again */
		if (rc->passed) {
			fail(s, "asked for its state twice", NULL);
			return true;
		}
		rc->passed = true;
		int r = pass_state(d, s, rc);
		if (r != 0) /* service_send's SCM_E_BUSY is positive, errnos negative */
			fail(s, "could not be given its state: ", r < 0 ? strerror(-r) : scm_code_name(r));
	} else if (strcmp(op, "ready") == 0 && json_object_object_get_ex(m->json, "restored", &v) &&
		   json_object_get_boolean(v)) {
		uint64_t now = now_usec();
		rc->active = false;
		rc->n_recoveries++;
		rc->recovered_at = now;
		s->state = P_READY;
		timer_arm(&s->timer, 0);
		log_info("service '%s' recovered its channels: pid %d crashed, pid %d took %zu channels over from a "
			 "checkpoint of %llu bytes, %zu fds, in %llu us",
			 s->name, rc->dead_pid, s->pid, rc->channels, (unsigned long long)rc->bytes, rc->n_fds,
			 (unsigned long long)(now - rc->t_crash));
		audit_event(d->audit, "service-recover", "\"service\":\"%s\",\"old_pid\":%d,\"pid\":%d,\"channels\":%zu",
			    s->name, rc->dead_pid, s->pid, rc->channels);
		broker_flush_pending(d, s);
	} else if (strcmp(op, "handover.refused") == 0) {
		scm_error *e = scm_error_from_json(m->json);
		_cleanup_free_ char *t = e ? scm_error_text(e) : NULL;
		scm_error_free(e);
		fail(s, "refused the checkpoint: ", t ? t : "?");
	} else if (strcmp(op, "ready") == 0)
		fail(s, "said ready without taking the checkpoint (it does not implement the handover)", NULL);
	else
		return false;
	return true;
}

/* Checkpoints the dead process sent before it died are still in its
 * control socket: the last one is what it meant to be recovered from. */
static void drain(struct scmd *d, struct service *s)
{
	scm_message *m = NULL;
	for (int i = 0; s->ctl.fd >= 0 && i < 4096 && scm_wire_recv(s->ctl.fd, MSG_DONTWAIT, &m, NULL) == 0; i++) {
		svc_recover_frame(d, s, m);
		scm_message_free(m);
		m = NULL;
	}
	if (s->ctl.fd >= 0) {
		watch_del(d, &s->ctl);
		s->ctl.fd = safe_close(s->ctl.fd);
	}
	scm_outq_clear(&s->ctl_q);
}

/* The monotonic offset of a process's time namespace against the initial
 * one (/proc/PID/timens_offsets, "monotonic SECS NSECS"), in us; false when
 * /proc does not say (the process is gone; a kernel without time
 * namespaces has no file, and no offsets: 0). */
static bool monotonic_offset(const char *pid, int64_t *ret_us)
{
	char path[64], line[128];
	snprintf(path, sizeof path, "/proc/%s/timens_offsets", pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		*ret_us = 0;
		return errno == ENOENT && access("/proc/self/ns", F_OK) == 0 && access("/proc/self/ns/time", F_OK) < 0;
	}
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		long long sec, nsec;
		if (sscanf(line, "monotonic %lld %lld", &sec, &nsec) == 2) {
			*ret_us = (int64_t)sec * 1000000 + (int64_t)nsec / 1000;
			found = true;
		}
	}
	fclose(f);
	return found;
}

/* scmd's CLOCK_MONOTONIC time t as the client that made a channel (pid,
 * as SO_PEERCRED gave it) reads that clock: in a time namespace of its
 * own (another runtime's container) it is shifted by the difference of
 * the two namespaces' offsets. False when that cannot be known (the
 * process is gone): the client is then told no time. */
static bool client_clock(pid_t pid, uint64_t t, uint64_t *ret)
{
	char p[16];
	int64_t mine, theirs;
	snprintf(p, sizeof p, "%d", (int)pid);
	if (pid <= 0 || !monotonic_offset("self", &mine) || !monotonic_offset(p, &theirs))
		return false;
	int64_t v = (int64_t)t - mine + theirs;
	if (v <= 0)
		return false;
	*ret = (uint64_t)v;
	return true;
}

/* The event says when the dead process was found dead (dead_at: after it
 * was reaped): a call the client sent later waits in the socket for the
 * new process, and libscm's client does not fail it. */
static void tell_channels(struct service *s, uint64_t dead_at)
{
	struct list *p;
	char ev[80];
	for (p = s->channels.next; p != &s->channels; p = p->next) {
		struct channel *ch = list_entry(p, struct channel, svc_node);
		uint64_t at;
		int len = client_clock(ch->cred.pid, dead_at, &at)
				  ? snprintf(ev, sizeof ev, "{\"op\":\"provider.recovering\",\"dead_at_us\":%llu}",
					     (unsigned long long)at)
				  : snprintf(ev, sizeof ev, "{\"op\":\"provider.recovering\"}");
		scm_wire_send(ch->w.fd, MSG_DONTWAIT | MSG_NOSIGNAL, SCM_FRAME_EVENT, 0, 0, 0, ev, (size_t)len, NULL,
			      0, NULL, 0);
	}
}

bool svc_recover_reaped(struct scmd *d, struct service *s, pid_t pid, int status)
{
	struct svc_recover *rc = s->rec;
	if (!s->recover || !rc)
		return false;
	bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (rc->active) { /* the new process died before it took over */
		log_warning("service '%s': the new provider (pid %d) died before it took its channels over; they "
			    "are revoked",
			    s->name, pid);
		rc->active = false;
		rc->recovered_at = now_usec();
		return false;
	}
	if (s->state != P_READY || s->unregistering || s->ho || d->restart || !failed)
		return false;
	drain(d, s);
	if (list_empty(&s->channels) || rc->state_fd < 0) {
		if (!list_empty(&s->channels))
			log_warning("service '%s': its provider (pid %d) crashed with no checkpoint held; its channels "
				    "are revoked",
				    s->name, pid);
		return false;
	}
	uint64_t now = now_usec();
	if (rc->recovered_at && now - rc->recovered_at < RECOVER_STABLE_USEC) {
		log_warning("service '%s': its provider (pid %d) crashed again within %llu s of a recovery; its "
			    "channels are revoked",
			    s->name, pid, (unsigned long long)(RECOVER_STABLE_USEC / 1000000));
		return false;
	}
	_cleanup_free_ char *prog = scmd_libexec_path(s->exec[0]);
	pid_t npid = -1;
	int ctl = -1;
	scm_error *e = NULL;
	int r = provider_spawn(d, s, prog, true, &npid, &ctl, &e);
	if (r != 0) {
		log_error_chain(LOG_WARNING, e, "service '%s': no new provider for its channels", s->name);
		scm_error_free(e);
		if (npid > 0) { /* its exec failed: it is exiting, not ours to keep */
			safe_close(ctl);
			kill(npid, SIGKILL);
			while (waitpid(npid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		return false;
	}
	s->last_status = status;
	s->n_failures++;
	tell_channels(s, now);
	/* fds the dead one sent ahead of a checkpoint it never sent; the held
	 * checkpoint is the new one's state */
	close_fds(&rc->next_fds, &rc->n_next);
	rc->next_over = false;
	s->pid = npid;
	s->ctl.fd = ctl;
	watch_add(d, &s->ctl, EPOLLIN);
	s->n_activations++;
	s->started_at = now;
	s->state = P_HANDOVER; /* connects wait */
	rc->active = true;
	rc->passed = false;
	rc->dead_pid = pid;
	rc->t_crash = now;
	timer_arm(&s->timer, s->timeout_ms);
	log_warning("service '%s': its provider (pid %d) crashed; recovering its channels with pid %d", s->name, pid,
		    npid);
	return true;
}

bool svc_recover_timeout(struct scmd *d, struct service *s)
{
	(void)d;
	if (!s->rec || !s->rec->active)
		return false;
	char ms[24];
	snprintf(ms, sizeof ms, "%u ms", s->timeout_ms);
	fail(s, "did not take the checkpoint within the manifest's timeout_ms, ", ms);
	return true;
}

void svc_recover_json(struct service *s, json_object *o)
{
	struct svc_recover *rc = s->rec;
	if (!s->recover)
		return;
	json_object_object_add(o, "recoveries", json_object_new_int64(rc ? (int64_t)rc->n_recoveries : 0));
	json_object *c = json_object_new_object();
	json_object_object_add(c, "held", json_object_new_boolean(rc && rc->state_fd >= 0));
	json_object_object_add(c, "bytes", json_object_new_int64(rc ? (int64_t)rc->bytes : 0));
	json_object_object_add(c, "fds", json_object_new_int64(rc ? (int64_t)rc->n_fds : 0));
	json_object_object_add(c, "taken", json_object_new_int64(rc ? (int64_t)rc->n_taken : 0));
	json_object_object_add(c, "refused", json_object_new_int64(rc ? (int64_t)rc->n_refused : 0));
	json_object_object_add(o, "checkpoint", c);
}

/* ---- across a restart in place (restart-save.c, restart-load.c) -------- */

static json_object *fd_array(const int *fds, size_t n, int **all, size_t *n_all, size_t *cap)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object_array_add(a, json_object_new_int(fds[i]));
		fd_list_add(all, n_all, cap, fds[i]);
	}
	return a;
}

json_object *svc_recover_save(struct service *s, int **fds, size_t *n, size_t *cap)
{
	struct svc_recover *rc = s->rec;
	/* counters alone are kept too: service show's recoveries, and the
	 * crash-loop guard (recovered_at, CLOCK_MONOTONIC survives execve) */
	if (!s->recover || !rc)
		return NULL;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "state_fd", json_object_new_int(rc->state_fd));
	fd_list_add(fds, n, cap, rc->state_fd);
	json_object_object_add(o, "fds", fd_array(rc->fds, rc->n_fds, fds, n, cap));
	json_object_object_add(o, "next_fds", fd_array(rc->next_fds, rc->n_next, fds, n, cap));
	json_object_object_add(o, "next_over", json_object_new_boolean(rc->next_over));
	uint64_t v[] = { rc->bytes, rc->at_us, rc->n_taken, rc->n_refused, rc->tat_us, rc->n_recoveries, rc->recovered_at };
	json_object *a = json_object_new_array();
	for (size_t i = 0; i < ELEMENTSOF(v); i++)
		json_object_array_add(a, json_object_new_int64((int64_t)v[i]));
	json_object_object_add(o, "counters", a);
	return o;
}

/* The fds of array k of o, taken from the map (any kind: they are the
 * provider's, passed on as they came); -1 and e when one is missing. */
static int load_fds(json_object *o, const char *k, struct fdmap *map, int **ret, size_t *ret_n,
		    const char *svc, scm_error **ret_err)
{
	json_object *a = json_object_object_get(o, k);
	size_t n = json_object_array_length(a);
	if (n > SCM_HANDOVER_FDS_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "service '%s': its checkpoint's %s: %zu fds, over %u", svc, k, n,
				SCM_HANDOVER_FDS_MAX);
	int *v = calloc(n + 1, sizeof(int));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int64_t old = json_object_get_int64(json_object_array_get_idx(a, i));
		v[i] = old >= 0 && old <= INT32_MAX ? fdmap_get(map, (int)old) : -1;
		if (v[i] < 0) {
			*ret = v;
			*ret_n = i;
			return scm_fail(ret_err, SCM_E_INVALID, "service '%s': its checkpoint's %s: fd %lld was not handed "
					"over (or twice)", svc, k, (long long)old);
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int svc_recover_load(struct service *s, json_object *o, struct fdmap *map, scm_error **ret_err)
{
	struct svc_recover *rc = s->recover ? rc_get(s) : NULL;
	if (!rc)
		return s->recover ? -ENOMEM : 0; /* the manifest no longer says "recover": its fds are closed */
	int64_t sf = json_object_get_int64(json_object_object_get(o, "state_fd"));
	if (sf >= 0) {
		rc->state_fd = sf <= INT32_MAX ? fdmap_get(map, (int)sf) : -1;
		/* the provider's memfd as ckpt_check took it: sealed */
		int seals = rc->state_fd >= 0 ? fcntl(rc->state_fd, F_GET_SEALS) : -1;
		if (seals < 0 || (seals & CKPT_SEALS) != CKPT_SEALS)
			return scm_fail(ret_err, SCM_E_INVALID, "service '%s': its checkpoint's fd %lld is not a sealed memfd",
					s->name, (long long)sf);
	}
	int r = load_fds(o, "fds", map, &rc->fds, &rc->n_fds, s->name, ret_err);
	if (r == 0)
		r = load_fds(o, "next_fds", map, &rc->next_fds, &rc->n_next, s->name, ret_err);
	if (r != 0)
		return r;
	rc->next_over = json_object_get_boolean(json_object_object_get(o, "next_over"));
	json_object *c = json_object_object_get(o, "counters");
	uint64_t *v[] = { &rc->bytes, &rc->at_us, &rc->n_taken, &rc->n_refused, &rc->tat_us, &rc->n_recoveries,
			  &rc->recovered_at };
	for (size_t i = 0; i < ELEMENTSOF(v) && i < json_object_array_length(c); i++)
		*v[i] = (uint64_t)json_object_get_int64(json_object_array_get_idx(c, i));
	return 0;
}
