/* provider-scope.c: which directory a client's grant scopes a disk's
 * files to, for the vdisk provider (provider.h). */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nbd-parent.h"
#include "provider.h"

/* The directory a method's path is granted under: the path_prefix of
 * its "path" parameter (the method's own set, else "*"), or "/" when the
 * path is constrained to a list of names (eq, in: each file of a chain,
 * top and parents, is then checked by its resolved name against those by
 * allow()). NULL: the path is not constrained at all, and the client may
 * open any file the provider can; or (*ret_bad set) it is constrained in
 * some other way ("prefix", "range", ...), which no file path can be
 * trusted to (a "prefix" admits "DIR/../x"): the call is refused, never
 * scoped to "/" by accident. */
static const char *granted_dir(const scm_grant *g, const char *method, const char *param,
			       bool *ret_constrained, const char **ret_bad)
{
	const char *sets[2] = { method, "*" }, *best = NULL;
	*ret_constrained = false;
	*ret_bad = NULL;
	if (!g || !g->constraints || !json_object_is_type(g->constraints, json_type_object))
		return NULL;
	for (int i = 0; i < 2; i++) {
		json_object *set, *pc, *pp;
		if (!json_object_object_get_ex(g->constraints, sets[i], &set) ||
		    !json_object_is_type(set, json_type_object) || !json_object_object_get_ex(set, param, &pc))
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

/* A string setting of the grant, or NULL (unset, empty or not a string). */
static const char *grant_setting(const scm_grant *g, const char *key)
{
	json_object *v;
	if (!g || !g->settings || !json_object_object_get_ex(g->settings, key, &v) ||
	    !json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
		return NULL;
	return json_object_get_string(v);
}

/* A remote parent (vhdx.h): allowed when the grant's "nbd_parents"
 * setting (space-separated NBD URIs) names the same export, compared as
 * parsed parts (nbd-uri.h), before anything is connected to. On success
 * *ret_u is the parsed URI, *ret_canon its canonical form and *ret_o the
 * TLS material the grant names (pointers into the grant: valid while the
 * call is). */
static int uri_check(const scm_grant *gr, const char *key, const char *what, const char *uri, struct nbd_uri *ret_u,
		     char **ret_canon, struct nbd_parent_opts *ret_o, scm_error **ret_err)
{
	struct nbd_uri u;
	int r = nbd_uri_parse(uri, &u, ret_err);
	if (r < 0)
		return r;
	_cleanup_free_ char *want = nbd_uri_format(&u);
	json_object *v;
	const char *list = gr && gr->settings && json_object_object_get_ex(gr->settings, key, &v) &&
				   json_object_is_type(v, json_type_string)
			   ? json_object_get_string(v)
			   : "";
	bool allowed = false;
	_cleanup_free_ char *copy = strdup(list);
	char *save = NULL;
	for (char *t = copy ? strtok_r(copy, " \t\n", &save) : NULL; t && want && !allowed;
	     t = strtok_r(NULL, " \t\n", &save)) {
		struct nbd_uri g;
		scm_error *why = NULL;
		if (nbd_uri_parse(t, &g, &why) < 0) {
			scm_error_free(why);
			continue; /* lint checks only that it is a string: a bad entry allows nothing */
		}
		_cleanup_free_ char *have = nbd_uri_format(&g);
		allowed = have && !strcmp(have, want);
		nbd_uri_clear(&g);
	}
	if (!want || !copy) {
		nbd_uri_clear(&u);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	if (!allowed) {
		nbd_uri_clear(&u);
		return scm_fail(ret_err, -EACCES, "%s %s is not among the grant's %s%s", what, want, key,
				list[0] ? "" : " (the profile sets none)");
	}
	/* TLS material comes from the grant's settings, which the profile's
	 * author (the admin) wrote: never from the disk or the client */
	*ret_o = (struct nbd_parent_opts){ .wait_ms = nbd_parent_wait_ms(),
					   .connect_ms = nbd_parent_connect_ms(),
					   .tls_certificates = grant_setting(gr, "nbd_tls_certificates"),
					   .tls_psk_file = grant_setting(gr, "nbd_tls_psk_file"),
					   .tls_username = grant_setting(gr, "nbd_tls_username") };
	*ret_u = u;
	*ret_canon = want;
	want = NULL;
	return 0;
}

int remote_check(const struct allow_ctx *a, const char *uri, struct nbd_uri *ret_u, char **ret_canon,
		 struct nbd_parent_opts *ret_o, scm_error **ret_err)
{
	return uri_check(a->g, "nbd_parents", "remote parent", uri, ret_u, ret_canon, ret_o, ret_err);
}

int dest_check(const scm_grant *g, const char *uri, struct nbd_uri *ret_u, char **ret_canon,
	       struct nbd_parent_opts *ret_o, scm_error **ret_err)
{
	return uri_check(g, "nbd_migrate_dests", "migration destination", uri, ret_u, ret_canon, ret_o, ret_err);
}

/* The scope's opener, on the loop: it never connects there (a server
 * that does not answer would hold every client). The handler connected
 * first, from a thread (provider-remote.c), and left the reader in
 * a->pre: the opener checks the grant again and hands that over. */
static int grant_remote_open(const char *uri, void *userdata, struct vhdx_remote *ret, scm_error **ret_err)
{
	const struct allow_ctx *a = userdata;
	struct nbd_uri u;
	struct nbd_parent_opts o;
	_cleanup_free_ char *want = NULL;
	int r = remote_check(a, uri, &u, &want, &o, ret_err);
	if (r < 0)
		return r;
	nbd_uri_clear(&u);
	if (!a->pre || !a->pre->pread || strcmp(a->pre->uri, want))
		return scm_fail(ret_err, -EAGAIN, "remote parent %s: not connected (the chain changed while its "
				"parent was being connected; try again)", want);
	*ret = *a->pre;
	*a->pre = (struct vhdx_remote){ 0 };
	return 0;
}

/* Fills scope for method under grant g; non-zero with *ret_err when the
 * granted directory cannot be opened. *ret_scoped false: the path is
 * unconstrained. Without a call: a recovery opens disks again with it
 * (provider-recover.c). */
int scope_for(const scm_grant *g, struct channel *c, const char *method, struct allow_ctx *actx,
	      struct vhdx_scope *scope, bool *ret_scoped, scm_error **ret_err)
{
	bool constrained;
	const char *bad;
	const char *dir = granted_dir(g, method, "path", &constrained, &bad);
	if (bad)
		return scm_fail(ret_err, SCM_E_DENIED,
				"%s: the grant constrains \"path\" by \"%s\", which cannot scope a file path "
				"(only path_prefix, eq or in can): refused",
				method, bad);
	*ret_scoped = dir != NULL;
	if (!dir)
		return 0;
	if (!c->root || strcmp(c->root, dir)) {
		int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return scm_fail(ret_err, SCM_E_DENIED, "%s: the granted directory %s cannot be opened: %m",
					method, dir);
		char real[PATH_MAX];
		char *r = strdup(dir), *rr = realpath(dir, real) ? strdup(real) : NULL;
		if (!r) {
			close(fd);
			free(rr);
			return scm_fail(ret_err, SCM_E_INTERNAL, "out of memory");
		}
		safe_close(c->rootfd);
		free(c->root);
		free(c->root_real);
		c->rootfd = fd;
		c->root = r;
		c->root_real = rr;
	}
	*scope = (struct vhdx_scope){ .dirfd = c->rootfd, .dir = c->root, .dir_real = c->root_real,
				      .allow = allow_path, .userdata = actx, .bat_max = CHAIN_BAT_MAX,
				      .remote = grant_remote_open, .remote_userdata = actx };
	return 0;
}

/* The same for a call: false (after replying) when it cannot be made. */
bool scope_get(scm_call *call, struct channel *c, const char *method, struct allow_ctx *actx,
	       struct vhdx_scope *scope, bool *ret_scoped)
{
	scm_error *e = NULL;
	if (scope_for(scm_call_grant(call), c, method, actx, scope, ret_scoped, &e) == 0)
		return true;
	int code = e->code;
	_cleanup_free_ char *t = scm_error_text(e);
	scm_error_free(e);
	fail(call, code, "%s", t ? t : method);
	return false;
}

int scope_param(scm_call *call, const char *method, const char *param, int *ret_fd, char **ret_dir,
		char **ret_real)
{
	bool constrained;
	const char *bad;
	const char *dir = granted_dir(scm_call_grant(call), method, param, &constrained, &bad);
	*ret_fd = -1;
	*ret_dir = *ret_real = NULL;
	if (bad) {
		fail(call, SCM_E_DENIED,
		     "%s: the grant constrains \"%s\" by \"%s\", which cannot scope a file path "
		     "(only path_prefix, eq or in can): refused",
		     method, param, bad);
		return -EACCES;
	}
	if (!dir)
		return 0;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fail(call, SCM_E_DENIED, "%s: the granted directory %s cannot be opened: %m", method, dir);
		return -EACCES;
	}
	char real[PATH_MAX];
	*ret_dir = strdup(dir);
	*ret_real = realpath(dir, real) ? strdup(real) : NULL;
	if (!*ret_dir) {
		close(fd);
		free(*ret_real);
		*ret_real = NULL;
		fail(call, SCM_E_INTERNAL, "out of memory");
		return -ENOMEM;
	}
	*ret_fd = fd;
	return 1;
}
