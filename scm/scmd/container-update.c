/* container-update.c: what changes while a container runs (docs/
 * containers.md, "Pause, resume, update"): `container.pause` and
 * `container.resume` through the runtime's freezer, and
 * `container.update`: live limits and a new list of profiles, whose grants
 * take effect for new connects and are re-checked for live channels (as a
 * policy reload does), whose seccomp rules may only narrow, and whose
 * other sandbox parts are reported as needing a restart. Nothing here
 * waits: a pause answers at once and the freezer's progress shows in the
 * container's state ("pausing", then "paused"). */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "container-hook.h"
#include "policy.h"
#include "scm-internal/error.h"
#include "scmutil.h"

const char *ctr_run_state(const struct scmd_ctr *t)
{
	if (!t->paused)
		return "running";
	return container_freeze_state(t->c) == CONTAINER_FROZEN ? "paused" : "pausing";
}

static void reply(struct scmd *d, struct conn *c, uint32_t id, json_object *o)
{
	conn_send(d, c, SCM_FRAME_REPLY, id, o, NULL, 0);
	json_object_put(o);
}

static void reply_state(struct scmd *d, struct conn *c, uint32_t id, struct scmd_ctr *t)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(ctr_run_state(t)));
	reply(d, c, id, o);
}

/* A limit argument: absent -1, else a whole number in [lo, hi]. */
static int limit_arg(json_object *a, const char *key, int64_t lo, int64_t hi, int64_t *ret, scm_error **ret_err)
{
	json_object *v;
	*ret = -1;
	if (!json_object_object_get_ex(a, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo || json_object_get_int64(v) > hi)
		return scm_fail(ret_err, SCM_E_INVALID, "container.update: %s must be a number %lld-%lld", key,
				(long long)lo, (long long)hi);
	*ret = json_object_get_int64(v);
	return 0;
}

static void need_restart(json_object *arr, const char *what, const char *why)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "what", json_object_new_string(what));
	json_object_object_add(o, "why", json_object_new_string(why));
	json_object_array_add(arr, o);
}

static bool same_mounts(const container_sandbox *a, const container_sandbox *b)
{
	if (a->n_mounts != b->n_mounts)
		return false;
	for (size_t i = 0; i < a->n_mounts; i++)
		if (strcmp(a->mounts[i].source, b->mounts[i].source) ||
		    strcmp(a->mounts[i].destination, b->mounts[i].destination) ||
		    a->mounts[i].writable != b->mounts[i].writable)
			return false;
	return true;
}


/* The sandbox the container started with (NULL: the default one) and the
 * new profiles' (the default one when they say nothing). */
static int sandbox_pair(const char *old_json, const char *new_json, container_sandbox **ret_old,
			container_sandbox **ret_new, scm_error **ret_err)
{
	if (old_json && container_sandbox_parse(old_json, strlen(old_json), ret_old, ret_err) != 0)
		return scm_fail(ret_err, SCM_E_INTERNAL, "the container's sandbox as it started");
	int r = new_json ? container_sandbox_parse(new_json, strlen(new_json), ret_new, ret_err) : 0;
	if (r != 0)
		return scm_fail(ret_err, r, "the new profiles' sandbox");
	if (!*ret_new && !(*ret_new = container_sandbox_new()))
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	return 0;
}

static int sandbox_apply(struct scmd_ctr *t, const container_sandbox *old_sb, const container_sandbox *sb,
			 container_limits *lim, json_object *applied, json_object *restart, scm_error **ret_err)
{
	int r;
	scm_error *why = NULL;
	r = container_narrow_seccomp(t->c, old_sb, sb, NULL, &why);
	if (r == 1)
		json_object_array_add(applied, json_object_new_string("seccomp (narrowed, for processes started from now on)"));
	else if (r == CONTAINER_E_DENIED) {
		_cleanup_free_ char *text = scm_error_text(why);
		need_restart(restart, "seccomp", text ? text : "it would allow more");
	} else if (r < 0) {
		scm_error_push(ret_err, why);
		return scm_fail(ret_err, r, "narrowing the seccomp filter");
	}
	scm_error_free(why);
	uint64_t old_caps = old_sb ? old_sb->caps_keep : 0;
	if (old_caps != sb->caps_keep)
		need_restart(restart, "capabilities",
			     "a running process's capability bounding set cannot be changed from outside");
	if (!(old_sb ? same_mounts(old_sb, sb) : sb->n_mounts == 0))
		need_restart(restart, "mounts", "binds are made when the container's mount namespace is");
	if ((old_sb ? old_sb->network : false) != sb->network)
		need_restart(restart, "network", "the network namespace is made at start");
	/* limits the caller did not name follow the new profiles */
	if (lim->memory < 0 && sb->memory_limit > 0 && (!old_sb || old_sb->memory_limit != sb->memory_limit))
		lim->memory = sb->memory_limit;
	if (lim->pids < 0 && sb->pids_limit > 0 && (!old_sb || old_sb->pids_limit != sb->pids_limit))
		lim->pids = sb->pids_limit;
	return 0;
}

/* The sandbox parts of a new profile list: seccomp narrows, limits the
 * caller did not give follow the profiles, the rest waits for a restart. */
static int sandbox_update(struct scmd_ctr *t, const char *new_json, container_limits *lim, json_object *applied,
			  json_object *restart, scm_error **ret_err)
{
	container_sandbox *old_sb = NULL, *sb = NULL;
	int r = sandbox_pair(t->sandbox_json, new_json, &old_sb, &sb, ret_err);
	if (r == 0)
		r = sandbox_apply(t, old_sb, sb, lim, applied, restart, ret_err);
	container_sandbox_free(old_sb);
	container_sandbox_free(sb);
	return r;
}

/* The endpoint's profiles become these, its channels are re-checked. */
static int profiles_update(struct scmd *d, struct scmd_ctr *t, char **profiles, container_limits *lim,
			   json_object *out, scm_error **ret_err)
{
	struct policy_effective *eff = NULL;
	_cleanup_free_ char *sandbox_json = NULL;
	int r = scmd_policy_effective(d, profiles, &eff, ret_err);
	if (r != 0)
		return scm_fail(ret_err, r, "the new profiles");
	if (eff && policy_effective_conflicts(eff) > 0) {
		r = scm_fail(ret_err, SCM_E_INVALID,
			     "the new profiles have %zu equal-priority conflict(s) (see scmctl policy lint --profiles)",
			     policy_effective_conflicts(eff));
		goto fail;
	}
	if (eff && (r = policy_sandbox_to_json(eff, &sandbox_json, ret_err)) != 0)
		goto fail;
	json_object *applied = json_object_new_array(), *restart = json_object_new_array();
	json_object_object_add(out, "applied", applied);
	json_object_object_add(out, "restart_needed", restart);
	if ((r = sandbox_update(t, sandbox_json, lim, applied, restart, ret_err)) != 0)
		goto fail;
	struct endpoint *ep = t->ep;
	char **copy = strv_copy(profiles);
	if (!copy) {
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
		goto fail;
	}
	strv_free(ep->profiles);
	ep->profiles = copy;
	policy_effective_unref(ep->eff);
	ep->eff = eff;
	size_t kept, revoked;
	scmd_policy_recheck(d, ep, NULL, &kept, &revoked);
	json_object_array_add(applied, json_object_new_string("profiles (new connects; live channels re-checked)"));
	json_object_object_add(out, "channels_kept", json_object_new_int64((int64_t)kept));
	json_object_object_add(out, "channels_revoked", json_object_new_int64((int64_t)revoked));
	/* what a later update narrows from, once all of it holds */
	if (json_object_array_length(restart) == 0) {
		free(t->sandbox_json);
		t->sandbox_json = TAKE_PTR(sandbox_json);
	}
	return 0;
fail:
	policy_effective_unref(eff);
	return r;
}

static int op_update(struct scmd *d, struct scmd_ctr *t, json_object *a, json_object **ret, scm_error **ret_err)
{
	container_limits lim = CONTAINER_LIMITS_KEEP;
	json_object *v;
	int r;
	if ((r = limit_arg(a, "memory", 1 << 20, INT64_MAX, &lim.memory, ret_err)) != 0 ||
	    (r = limit_arg(a, "pids", 1, 4194304, &lim.pids, ret_err)) != 0 ||
	    (r = limit_arg(a, "cpu_weight", 1, 10000, &lim.cpu_weight, ret_err)) != 0)
		return r;
	char **profiles = NULL;
	if (json_object_object_get_ex(a, "profiles", &v)) {
		bool bad = !json_object_is_type(v, json_type_array) || json_object_array_length(v) == 0;
		const char *why = NULL;
		profiles = bad ? NULL : strv_from_json(v, 64, false, &why);
		if (bad || !profiles)
			return scm_fail(ret_err, SCM_E_INVALID, "container.update: profiles must be a non-empty list of names");
	}
	if (lim.memory < 0 && lim.pids < 0 && lim.cpu_weight < 0 && !profiles)
		return scm_fail(ret_err, SCM_E_INVALID,
				"container.update: nothing to change (memory, pids, cpu_weight or profiles)");
	if (!t->ep && profiles) {
		strv_free(profiles);
		return scm_fail(ret_err, SCM_E_INVALID, "container '%s' has no endpoint to carry profiles", t->name);
	}
	json_object *o = json_object_new_object();
	/* the profiles first: a refused profile list changes nothing */
	if (profiles && (r = profiles_update(d, t, profiles, &lim, o, ret_err)) != 0) {
		strv_free(profiles);
		json_object_put(o);
		return r;
	}
	strv_free(profiles);
	if (!json_object_object_get_ex(o, "applied", &v)) {
		json_object_object_add(o, "applied", v = json_object_new_array());
		json_object_object_add(o, "restart_needed", json_object_new_array());
	}
	if ((r = container_update_limits(t->c, &lim, ret_err)) != 0) {
		json_object_put(o);
		return scm_fail(ret_err, r, "container '%s'%s", t->name,
				profiles ? " (its profiles were updated, its limits were not)" : "");
	}
	if (lim.memory >= 0)
		json_object_array_add(v, json_object_new_string("memory"));
	if (lim.pids >= 0)
		json_object_array_add(v, json_object_new_string("pids"));
	if (lim.cpu_weight >= 0)
		json_object_array_add(v, json_object_new_string("cpu_weight"));
	json_object_object_add(o, "state", json_object_new_string(ctr_run_state(t)));
	*ret = o;
	return 0;
}

bool ctr_update_control(struct scmd *d, struct conn *c, const char *op, uint32_t id, struct scmd_ctr *t,
			json_object *a)
{
	bool pause = strcmp(op, "pause") == 0, resume = strcmp(op, "resume") == 0;
	if (!pause && !resume && strcmp(op, "update") != 0)
		return false;
	scm_error *e = NULL;
	int r = 0;
	if (!t || t->exited || t->dying)
		r = scm_fail(&e, SCM_E_NOT_FOUND, "no running container '%s'",
			     json_object_get_string(json_object_object_get(a, "name")));
	else if (t->launching)
		r = scm_fail(&e, SCM_E_BUSY, "container '%s' is still starting", t->name);
	else if (pause || resume) {
		if (t->paused == pause) /* already so: nothing to do, as runc says */
			r = scm_fail(&e, SCM_E_BUSY, "container '%s' is %s already", t->name,
				     pause ? ctr_run_state(t) : "running");
		else if ((r = container_freeze(t->c, pause, &e)) == 0) {
			t->paused = pause;
			audit_event(d->audit, pause ? "container-pause" : "container-resume", "\"container\":\"%s\"",
				    t->name);
			reply_state(d, c, id, t);
			return true;
		}
	} else {
		json_object *o = NULL;
		if ((r = op_update(d, t, a, &o, &e)) == 0) {
			audit_event(d->audit, "container-update", "\"container\":\"%s\",\"result\":%s", t->name,
				    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
			reply(d, c, id, o);
			return true;
		}
	}
	conn_send_error(d, c, id, e);
	scm_error_free(e);
	return true;
}
