/* restart-start.c: the successor's side of a restart in place, from
 * main(): the dry run (`scmd --check-state FD`: read the state with this
 * binary's reader, say what it holds or why it cannot be read, exit), the
 * state handed with `--restore FD` (systemd's store path and older
 * callers) or `--standby FD` (restart-handoff.c), and the end of the restore (what the
 * restored tables still need: activations, reaping what ended during the
 * switch, the policy re-check of live channels, the answer to the
 * daemon.restart call). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "restart.h"

int restart_check_main(int fd)
{
	json_object *st = NULL;
	scm_error *e = NULL;
	uint32_t version = 0;
	struct state_chans chans = { 0 };
	if (state_memfd_read(fd, &st, &version, &chans, &e) != 0) {
		_cleanup_free_ char *t = scm_error_text(e);
		printf("%s\n", t ? t : "unreadable state");
		scm_error_free(e);
		return 1;
	}
	static const char *const parts[] = { "endpoints", "conns", "services", "channels", "containers", "execs" };
	/* the old scmd looks for this line: exit 0 alone proves nothing
	 * (/bin/true exits 0 too) */
	printf(SCMD_CHECK_OK " state version %u (this scmd reads %u to %u):", version, SCMD_STATE_MIN_VERSION, SCMD_STATE_VERSION);
	for (size_t i = 0; i < ELEMENTSOF(parts); i++)
		printf(" %zu %s",
		       strcmp(parts[i], "channels") == 0 && version >= SCMD_STATE_CHANS_VERSION
			       ? chans.n
			       : json_object_array_length(json_object_object_get(st, parts[i])),
		       parts[i]);
	printf("; " SCMD_CHECK_STANDBY "; " SCMD_CHECK_EARLY "\n");
	json_object_put(st);
	state_chans_free(&chans);
	return 0;
}

int restart_take_state(int fd, json_object **ret_st, struct fdmap *ret_map, scm_error **ret_err)
{
	json_object *st = NULL;
	uint32_t version = 0;
	struct state_chans chans = { 0 };
	int r = state_memfd_read(fd, &st, &version, &chans, ret_err);
	close(fd);
	if (r != 0)
		return scm_fail(ret_err, r, "the state handed over with --restore %d", fd);
	/* across execve every fd keeps its number: the map is the list */
	json_object *fds = json_object_object_get(st, "fds");
	size_t n = json_object_array_length(fds);
	ret_map->old_fd = calloc(n + 1, sizeof(int));
	ret_map->new_fd = calloc(n + 1, sizeof(int));
	ret_map->used = calloc(n + 1, sizeof(bool));
	ret_map->chans = chans;
	if (!ret_map->old_fd || !ret_map->new_fd || !ret_map->used) {
		json_object_put(st);
		fdmap_done(ret_map);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t v = json_object_get_int64(json_object_array_get_idx(fds, i));
		if (v < 0 || v > INT32_MAX)
			continue;
		ret_map->old_fd[ret_map->n] = ret_map->new_fd[ret_map->n] = (int)v;
		/* inherited without FD_CLOEXEC: ours again, and no child's */
		int f = fcntl((int)v, F_GETFD);
		if (f >= 0)
			(void)fcntl((int)v, F_SETFD, f | FD_CLOEXEC);
		ret_map->n++;
	}
	ret_map->sorted = true; /* restart-save.c sorts the list */
	*ret_st = st;
	return 1;
}

static uint64_t cpu_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int restart_standby_take(struct scmd *d, int sp, bool early, json_object **ret_st, struct fdmap *ret_map, scm_error **ret_err)
{
	int r = handoff_take_state(sp, early, ret_st, ret_map, &d->restart_clock.fds, &d->restart_clock.cpu0,
				   &d->handoff_pid, ret_err);
	d->restart_clock.parsed = now_usec();
	if (r != 1) /* failures are -errno or a positive SCM_E_ code */
		return scm_fail(ret_err, r, "the state handed over with --standby %d", sp);
	restart_restore_early(d, *ret_st, ret_map);
	r = scmd_ctr_init(d);
	if (r < 0)
		return scm_fail(ret_err, r, "setting containers up: %s", strerror(-r));
	return 0;
}

int restart_finish(struct scmd *d, json_object *st, struct fdmap *map, uint64_t t0, scm_error **ret_err)
{
	json_object *rep = json_object_object_get(st, "reply");
	int reply_fd = rep ? fdmap_peek(map, (int)json_object_get_int64(json_object_object_get(rep, "fd"))) : -1;
	int r = restart_restore(d, st, map, ret_err);
	d->restart_clock.tables = now_usec();
	fdmap_done(map);
	if (r != 0)
		return scm_fail(ret_err, r, "restoring the state of scmd generation %llu",
				(unsigned long long)d->generation - 1);
	if (d->store_restore) {
		/* after a crash: what ran untracked goes, our adopted ones stay */
		_cleanup_free_ char *dir = NULL;
		if (asprintf(&dir, "%s/containers", d->runtime_dir) >= 0)
			scmd_ctr_cleanup_leftovers(d, dir);
	}
	d->restoring = false;
	for (struct list *p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (s->state == P_STOPPED && (s->activation == ACT_ALWAYS || !list_empty(&s->pending)))
			service_activate(d, s);
	}
	/* what ended during the switch: its SIGCHLD is still pending for us */
	service_reap_children(d);
	scmd_ctr_reap_execs(d);
	size_t kept = 0, revoked = 0;
	scmd_policy_recheck(d, NULL, NULL, &kept, &revoked);
	d->restart_clock.checked = now_usec();
	if (d->restart_clock.cpu0) /* from "ready" on: the switch's share, as CPU time */
		d->restart_clock.cpu0 = cpu_usec() - d->restart_clock.cpu0;
	if (revoked)
		log_notice("restart: the policy as it is now revoked %zu live channels (%zu kept)", revoked, kept);
	audit_event(d->audit, "daemon-restarted", "\"generation\":%llu,\"state_version\":%u,\"from_store\":%s",
		    (unsigned long long)d->generation, SCMD_STATE_VERSION, d->store_restore ? "true" : "false");
	restart_answer(d, st, t0, reply_fd);
	return 0;
}
