/* policy-hook.c: scmd's use of the policy engine (policy/policy.h).
 *
 * An endpoint made with profiles is decided by their merged, compiled
 * effective profile; an endpoint without profiles falls back to the
 * manifest's allow list (for host endpoints and quick experiments). The
 * profile set is CONFIG/profiles; `policy reload` swaps it atomically:
 * a set that does not load and lint keeps the old one, and every live
 * channel is re-checked against its endpoint's new effective profile and
 * revoked, with an audit entry, if its grant is no longer covered.
 *
 * Deleting a profile is how an administrator takes rights away, so a set
 * in which a live endpoint's profile no longer exists is not refused (that
 * would leave the deleted rules deciding for everyone): that endpoint gets
 * a deny-all effective profile, which revokes its channels and denies its
 * connects until a reload brings the profile back, and the rest of the set
 * applies. The reply and the audit log name those endpoints. */
#include <errno.h>
#include <fnmatch.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/stat.h>

#include "policy.h"
#include "scmd.h"

DEFINE_TRIVIAL_CLEANUP(policy_store *, policy_store_free)
DEFINE_TRIVIAL_CLEANUP(policy_idl_set *, policy_idl_set_free)

/* Every interface on the IDL path, plus each registered service under its
 * own name (services may share an interface). Read from disk once, then
 * kept: again only at `policy reload` (fresh) or when the set of service
 * aliases changed, never per container or endpoint create (a slow or
 * large IDL directory would stall every client). The caller borrows it. */
static policy_idl_set *idl_cache;
static char *idl_cache_aliases;

static char *alias_signature(struct scmd *d)
{
	char *sig = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&sig, &len);
	if (!f)
		return NULL;
	for (struct list *p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (!s->unregistering && strcmp(s->name, s->iface_name) != 0)
			fprintf(f, "%s=%s\n", s->name, s->iface_name);
	}
	fputc(0, f);
	fclose(f);
	return sig;
}

/* A new interface set from the IDL path and the live aliases, owned by
 * the caller. */
static int load_idl_set(struct scmd *d, policy_idl_set **ret, scm_error **ret_err)
{
	_cleanup_(policy_idl_set_freep) policy_idl_set *set = policy_idl_set_new();
	_cleanup_free_ char *path = strdup(d->idl_path);
	char *save = NULL;
	struct stat st;

	if (!set || !path)
		return -ENOMEM;
	for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save))
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && policy_idl_set_load_dir(set, dir, ret_err) != 0)
			return scm_fail(ret_err, SCM_E_INVALID, "loading interfaces from %s", dir);
	for (struct list *p = d->services.next; p != &d->services; p = p->next) {
		struct service *s = list_entry(p, struct service, node);
		if (!s->unregistering && strcmp(s->name, s->iface_name) != 0)
			policy_idl_set_alias(set, s->name, s->iface_name, NULL);
	}
	*ret = TAKE_PTR(set);
	return 0;
}

/* The cached set (not the caller's to free): read from disk when fresh
 * (start, reload) or when the aliases changed, else reused. */
static int build_idl_set(struct scmd *d, bool fresh, const policy_idl_set **ret, scm_error **ret_err)
{
	_cleanup_free_ char *sig = alias_signature(d);
	policy_idl_set *set = NULL;
	if (!sig)
		return -ENOMEM;
	if (!fresh && idl_cache && idl_cache_aliases && strcmp(sig, idl_cache_aliases) == 0) {
		*ret = idl_cache;
		return 0;
	}
	int r = load_idl_set(d, &set, ret_err);
	if (r != 0)
		return r;
	policy_idl_set_free(idl_cache);
	free(idl_cache_aliases);
	idl_cache = set;
	idl_cache_aliases = TAKE_PTR(sig);
	*ret = idl_cache;
	return 0;
}

static char *profiles_dir(struct scmd *d)
{
	char *p = NULL;
	if (asprintf(&p, "%s/profiles", d->config_dir) < 0)
		return NULL;
	return p;
}

/* Loads and lints CONFIG/profiles. No directory: no store (allow lists
 * decide). A broken set: an error, nothing loaded. */
static int load_store(struct scmd *d, policy_store **ret, scm_error **ret_err)
{
	_cleanup_free_ char *dir = profiles_dir(d);
	const policy_idl_set *idl = NULL;
	struct stat st;

	if (!dir)
		return -ENOMEM;
	if (stat(dir, &st) < 0) {
		*ret = NULL;
		return 0;
	}
	int r = build_idl_set(d, true, &idl, ret_err); /* init and reload: from disk */
	if (r != 0)
		return r;
	return policy_store_load(dir, idl, ret, ret_err);
}

/* A new service gives a glob in a live profile a meaning it did not have
 * at reload: lint the loaded profiles again as if the service were there,
 * and refuse the registration on any error (a "prefix" on one of its
 * path parameters, a constraint of the wrong type, ...). */
int scmd_policy_check_service(struct scmd *d, const char *name, const char *iface, scm_error **ret_err)
{
	_cleanup_(policy_idl_set_freep) policy_idl_set *idl = NULL;
	policy_lint_report *rep = NULL;

	if (!d->policy)
		return 0;
	/* a private set: the alias below must not reach the cache */
	int r = load_idl_set(d, &idl, ret_err);
	if (r != 0)
		return r;
	if (strcmp(name, iface) != 0 && policy_idl_set_alias(idl, name, iface, ret_err) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "service '%s': interface %s", name, iface);
	r = policy_lint(d->policy, idl, NULL, 0, &rep, ret_err);
	if (r != 0)
		return r;
	if (rep->n_errors == 0) {
		policy_lint_report_free(rep);
		return 0;
	}
	const policy_finding *f = NULL;
	for (size_t i = 0; i < rep->n_findings && !f; i++)
		if (rep->findings[i].severity == POLICY_LINT_ERROR)
			f = &rep->findings[i];
	r = scm_fail(ret_err, SCM_E_INVALID,
		     "service '%s' refused: with it the loaded policy has %zu error(s), first %s:%u:%u: %s: %s [%s]; "
		     "fix the profiles and reload first",
		     name, rep->n_errors, f->file, f->line, f->col, f->pointer, f->message, f->kind);
	policy_lint_report_free(rep);
	return r;
}

int scmd_policy_init(struct scmd *d, scm_error **ret_err)
{
	policy_store *st = NULL;
	int r = load_store(d, &st, ret_err);
	if (r != 0)
		return scm_fail(ret_err, r, "policy profiles in %s/profiles do not load", d->config_dir);
	d->policy = st;
	return 0;
}

void scmd_policy_done(struct scmd *d)
{
	d->policy = policy_store_free(d->policy);
	idl_cache = policy_idl_set_free(idl_cache);
	free(idl_cache_aliases);
	idl_cache_aliases = NULL;
}

int scmd_policy_effective(struct scmd *d, char **profiles, policy_effective **ret, scm_error **ret_err)
{
	const policy_idl_set *idl = NULL;
	size_t n = 0;

	if (!profiles || !profiles[0]) {
		*ret = NULL;
		return 0;
	}
	if (!d->policy)
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "no policy profiles are loaded (%s/profiles does not exist)",
				d->config_dir);
	while (profiles[n])
		n++;
	int r = build_idl_set(d, false, &idl, ret_err);
	if (r != 0)
		return r;
	return policy_effective_build(d->policy, (const char *const *)profiles, n, idl, ret, ret_err);
}

/* The caller's effective rules of each kind the service's interface asks
 * for (IDL "grant_rules", e.g. the graphics proxy's "clipboard") go to the
 * provider in the grant's "rules" member: the provider decides by rules
 * only scmd can vouch for (the clipboard: a flow between two of its apps,
 * by both apps' rules). Each kind asked for is always there (an empty
 * list: no rule), so a provider never mistakes a grant without them for
 * one that allowed anything. Registration refused unknown kinds. */
static void add_grant_rules(const struct policy_effective *eff, struct service *s, json_object *grant)
{
	if (!grant || !s->idl || s->idl->n_grant_rules == 0)
		return;
	json_object *rules = json_object_new_object();
	if (!rules)
		return;
	for (size_t i = 0; i < s->idl->n_grant_rules; i++) {
		json_object *j = NULL;
		if (policy_grant_rules(eff, s->idl->grant_rules[i], &j, NULL) == 0)
			json_object_object_add(rules, s->idl->grant_rules[i], j);
	}
	json_object_object_add(grant, "rules", rules);
}

/* Whether scmd can hand every kind of rule an interface asks for. */
int scmd_policy_check_grant_rules(const scm_idl *idl, const char *origin, scm_error **ret_err)
{
	for (size_t i = 0; i < idl->n_grant_rules; i++)
		if (!policy_grant_rule_known(idl->grant_rules[i]))
			return scm_fail(ret_err, SCM_E_INVALID,
					"%s: /grant_rules/%zu: no kind of profile rule is called '%s' (known: clipboard, dbus)",
					origin, i, idl->grant_rules[i]);
	return 0;
}

void scmd_policy_decide(struct scmd *d, struct endpoint *ep, struct service *s, struct decision *dec)
{
	if (ep->eff) {
		policy_decision pd = { 0 };
		int r = policy_decide(ep->eff, s->name, &pd);
		dec->allowed = r == 0 && pd.allowed;
		dec->code = dec->allowed ? 0 : SCM_E_DENIED;
		snprintf(dec->origin, sizeof(dec->origin), "%s", pd.origin ? pd.origin : "default deny");
		if (dec->allowed) {
			dec->grant = pd.grant_json ? json_tokener_parse(pd.grant_json) : NULL;
			add_grant_rules(ep->eff, s, dec->grant);
			if (!dec->grant) {
				dec->allowed = false;
				dec->code = SCM_E_INTERNAL;
				snprintf(dec->reason, sizeof(dec->reason), "the policy engine produced no grant");
			}
		} else
			snprintf(dec->reason, sizeof(dec->reason),
				 "the profiles of endpoint '%s' do not allow service '%s'", ep->name, s->name);
		policy_decision_clear(&pd);
		return;
	}
	/* No profiles: the manifest's allow list, by endpoint label or glob. */
	for (size_t i = 0; s->allow && s->allow[i]; i++) {
		if (fnmatch(s->allow[i], ep->name, 0) == 0) {
			dec->allowed = true;
			snprintf(dec->origin, sizeof(dec->origin), "%s#/allow/%zu", s->manifest_path, i);
			dec->grant = json_object_new_object();
			json_object_object_add(dec->grant, "methods", json_object_new_string("*"));
			return;
		}
	}
	dec->allowed = false;
	dec->code = SCM_E_DENIED;
	snprintf(dec->reason, sizeof(dec->reason), "endpoint '%s' is not on the allow list of service '%s'",
		 ep->name, s->name);
	snprintf(dec->origin, sizeof(dec->origin), "%s#/allow (default deny)", s->manifest_path);
}

/* ---- control ops ------------------------------------------------------- */

static struct endpoint *ep_arg(struct scmd *d, struct conn *c, uint32_t id, json_object *a)
{
	json_object *v;
	const char *name = a && json_object_object_get_ex(a, "endpoint", &v) ? json_object_get_string(v) : NULL;
	struct endpoint *ep = name ? endpoint_find(d, name) : NULL;
	if (!ep)
		conn_reply_fail(d, c, id, SCM_E_NOT_FOUND, "no endpoint or container '%s'", name ? name : "");
	else if (!ep->eff)
		conn_reply_fail(d, c, id, SCM_E_NOT_FOUND,
				"endpoint '%s' has no profiles: the manifests' allow lists decide for it", name);
	else
		return ep;
	return NULL;
}

static void reply_json(struct scmd *d, struct conn *c, uint32_t id, json_object *o)
{
	conn_send(d, c, SCM_FRAME_REPLY, id, o, NULL, 0);
	json_object_put(o);
}

static void op_effective(struct scmd *d, struct conn *c, uint32_t id, json_object *a)
{
	struct endpoint *ep = ep_arg(d, c, id, a);
	json_object *o = NULL;
	scm_error *e = NULL;
	if (!ep)
		return;
	if (policy_effective_to_json(ep->eff, &o, &e) != 0) {
		conn_send_error(d, c, id, e);
		scm_error_free(e);
		return;
	}
	reply_json(d, c, id, o);
}

static void op_explain(struct scmd *d, struct conn *c, uint32_t id, json_object *a)
{
	struct endpoint *ep = ep_arg(d, c, id, a);
	json_object *v, *o = NULL;
	scm_error *e = NULL;
	if (!ep)
		return;
	const char *svc = json_object_object_get_ex(a, "service", &v) ? json_object_get_string(v) : NULL;
	const char *method = json_object_object_get_ex(a, "method", &v) ? json_object_get_string(v) : NULL;
	const char *args = json_object_object_get_ex(a, "args", &v) ? json_object_get_string(v) : NULL;
	if (!svc) {
		conn_reply_fail(d, c, id, SCM_E_INVALID, "policy.explain needs a service");
		return;
	}
	if (policy_explain(ep->eff, svc, method, args, &o, &e) != 0) {
		conn_send_error(d, c, id, e);
		scm_error_free(e);
		return;
	}
	reply_json(d, c, id, o);
}

/* An effective profile of no profiles: every connect is denied by default.
 * Not NULL, which would hand the endpoint to the manifests' allow lists. */
static int deny_all_effective(struct scmd *d, policy_effective **ret, scm_error **ret_err)
{
	const policy_idl_set *idl = NULL; /* the cache's: not ours to free */
	_cleanup_(policy_store_freep) policy_store *empty = NULL;
	int r = build_idl_set(d, false, &idl, ret_err);
	if (r != 0)
		return r;
	if (!d->policy && (r = policy_store_load_files(NULL, 0, &empty, ret_err)) != 0)
		return r;
	/* the effective profile holds its own reference on the store */
	return policy_effective_build(d->policy ? d->policy : empty, NULL, 0, idl, ret, ret_err);
}

/* The endpoint's profile names that the store (NULL: no profiles at all)
 * does not have, as a JSON array; NULL when none is missing. */
static json_object *missing_profiles(const policy_store *st, char **profiles)
{
	json_object *missing = NULL;
	for (char **p = profiles; p && *p; p++) {
		if (st && policy_store_get(st, *p))
			continue;
		if (!missing)
			missing = json_object_new_array();
		json_object_array_add(missing, json_object_new_string(*p));
	}
	return missing;
}

static char *join_names(char **v)
{
	size_t n = 1;
	for (char **p = v; *p; p++)
		n += strlen(*p) + 1;
	char *s = calloc(1, n);
	for (char **p = v; s && *p; p++) {
		if (p != v)
			strcat(s, ",");
		strcat(s, *p);
	}
	return s;
}

/* The missing profiles of endpoint name if this reload cut it (cut as
 * op_reload builds it), as JSON text; NULL otherwise. */
static const char *deleted_profiles(json_object *cut, const char *name)
{
	for (size_t i = 0; i < json_object_array_length(cut); i++) {
		json_object *one = json_object_array_get_idx(cut, i), *v, *m;
		if (json_object_object_get_ex(one, "endpoint", &v) && strcmp(json_object_get_string(v), name) == 0 &&
		    json_object_object_get_ex(one, "missing_profiles", &m))
			return json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN);
	}
	return NULL;
}

/* Swaps in a new profile set, rebuilds every endpoint's effective profile
 * and re-checks live channels. All or nothing: effective profiles are
 * built for every endpoint before any is swapped. `scmctl policy reload`
 * and SIGHUP both come here. */
void scmd_policy_recheck(struct scmd *d, struct endpoint *only, json_object *cut, size_t *ret_kept,
			 size_t *ret_revoked)
{
	struct list *p, *t;
	size_t kept = 0, revoked = 0;
	list_for_each_safe(p, t, &d->channels)
	{
		struct channel *ch = list_entry(p, struct channel, node);
		if ((only && ch->ep != only) || !ch->ep->eff || !ch->grant_json)
			continue;
		bool keep = false;
		char *why = NULL;
		if (policy_grant_recheck(ch->ep->eff, ch->svc->name, ch->grant_json, &keep, &why, NULL) != 0)
			keep = false;
		const char *gone = cut ? deleted_profiles(cut, ch->ep->name) : NULL;
		if (keep)
			kept++;
		else if (gone) {
			revoked++;
			channel_revoke(d, ch, SCM_E_REVOKED,
				       "policy reload: the profile(s) %s of endpoint '%s' were deleted, it is denied everything",
				       gone, ch->ep->name);
		} else {
			revoked++;
			channel_revoke(d, ch, SCM_E_REVOKED, "%s: %s", only ? "container update" : "policy reload",
				       why ? why : "no longer allowed");
		}
		free(why);
	}
	*ret_kept = kept;
	*ret_revoked = revoked;
}

int scmd_policy_reload(struct scmd *d, json_object **ret_result, scm_error **ret_err)
{
	_cleanup_(policy_store_freep) policy_store *st = NULL;
	scm_error *e = NULL;
	size_t n_ep = 0, i = 0, revoked = 0, kept = 0;
	struct list *p;

	if (load_store(d, &st, &e) != 0) {
		audit_event(d->audit, "policy-reload", "\"result\":\"refused\"");
		*ret_err = scm_error_wrap(e, SCM_E_INVALID, "scmd/policy", "reload refused: the old policy stays");
		return SCM_E_INVALID;
	}
	for (p = d->endpoints.next; p != &d->endpoints; p = p->next)
		n_ep++;
	policy_effective **fresh = calloc(n_ep + 1, sizeof(*fresh));
	json_object *cut = json_object_new_array();
	if (!fresh || !cut) {
		free(fresh);
		json_object_put(cut);
		return scm_fail(ret_err, -ENOMEM, "reload refused: out of memory; the old policy stays");
	}
	policy_store *old = d->policy;
	d->policy = st;
	for (p = d->endpoints.next; p != &d->endpoints; p = p->next, i++) {
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		int r = 0;
		json_object *missing = ep->profiles && ep->profiles[0] ? missing_profiles(st, ep->profiles) : NULL;
		if (missing) {
			/* its policy was deleted: deny all, do not refuse the set */
			r = deny_all_effective(d, &fresh[i], &e);
			json_object *one = json_object_new_object();
			json_object_object_add(one, "endpoint", json_object_new_string(ep->name));
			json_object_object_add(one, "missing_profiles", missing);
			json_object_array_add(cut, one);
		} else if (ep->profiles && ep->profiles[0]) {
			r = scmd_policy_effective(d, ep->profiles, &fresh[i], &e);
			/* Profiles that conflict only when combined are fine in a
			 * directory, but not on an endpoint that carries them. */
			if (r == 0 && policy_effective_conflicts(fresh[i]) > 0) {
				_cleanup_free_ char *names = join_names(ep->profiles);
				r = scm_fail(&e, SCM_E_INVALID,
					     "its profiles would have %zu equal-priority conflict(s) (see scmctl policy lint --profiles %s)",
					     policy_effective_conflicts(fresh[i]), names ? names : "");
				fresh[i] = policy_effective_unref(fresh[i]);
			}
		}
		if (r != 0) {
			d->policy = old;
			for (size_t k = 0; k <= i; k++)
				policy_effective_unref(fresh[k]);
			free(fresh);
			json_object_put(cut);
			*ret_err = scm_error_wrap(e, SCM_E_INVALID, "scmd/policy",
						  "reload refused: endpoint '%s' would have no valid policy; the old policy stays",
						  ep->name);
			return SCM_E_INVALID;
		}
	}
	st = old; /* freed on return */
	i = 0;
	for (p = d->endpoints.next; p != &d->endpoints; p = p->next, i++) {
		struct endpoint *ep = list_entry(p, struct endpoint, node);
		policy_effective_unref(ep->eff);
		ep->eff = fresh[i];
	}
	free(fresh);

	scmd_policy_recheck(d, NULL, cut, &kept, &revoked);
	audit_event(d->audit, "policy-reload", "\"result\":\"ok\",\"revoked\":%zu,\"kept\":%zu,\"endpoints_denied\":%s",
		    revoked, kept, json_object_to_json_string_ext(cut, JSON_C_TO_STRING_PLAIN));
	json_object *o = json_object_new_object();
	json_object_object_add(o, "profiles", json_object_new_int64((int64_t)(d->policy ? policy_store_size(d->policy) : 0)));
	json_object_object_add(o, "channels_kept", json_object_new_int64((int64_t)kept));
	json_object_object_add(o, "channels_revoked", json_object_new_int64((int64_t)revoked));
	/* endpoints whose profiles were deleted: now deny-all */
	json_object_object_add(o, "endpoints_denied", cut);
	if (ret_result)
		*ret_result = o;
	else
		json_object_put(o);
	return 0;
}

static void op_reload(struct scmd *d, struct conn *c, uint32_t id)
{
	json_object *o = NULL;
	scm_error *e = NULL;

	if (scmd_policy_reload(d, &o, &e) != 0) {
		conn_send_error(d, c, id, e);
		scm_error_free(e);
		return;
	}
	reply_json(d, c, id, o);
}

bool scmd_policy_control(struct scmd *d, struct conn *c, const char *op, uint32_t id, json_object *a)
{
	if (strcmp(op, "policy.effective") == 0)
		op_effective(d, c, id, a);
	else if (strcmp(op, "policy.explain") == 0)
		op_explain(d, c, id, a);
	else if (strcmp(op, "policy.reload") == 0)
		op_reload(d, c, id);
	else
		return false;
	return true;
}
