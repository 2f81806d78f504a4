/* vhdx-remote.c: a differencing disk whose parent is served from
 * elsewhere (vhdx.h, "Remote parents"). The locator names it by one key
 * of our own (VHDX_LOC_NBD; other readers ignore keys they do not know,
 * and find no parent). The engine holds no network code: an opener the
 * caller hands in (the scope's, which checks the grant, or host mode's)
 * turns the URI into a reader, and the engine only calls it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhdx-internal.h"

static vhdx_remote_open_fn host_opener;
static void *host_userdata;

void vhdx_set_remote_opener(vhdx_remote_open_fn fn, void *userdata)
{
	host_opener = fn;
	host_userdata = userdata;
}

bool vhdx_parent_is_remote(const char *s)
{
	/* a scheme ("nbd", "nbd+unix", "nbds"...) then "://": no path of a
	 * grant looks like that (they are absolute) */
	if (!s || strncmp(s, "nbd", 3))
		return false;
	const char *c = strstr(s, "://");
	return c && !memchr(s, '/', (size_t)(c - s));
}

const char *vhdx_locator_get(const vhdx *h, const char *k)
{
	for (size_t i = 0; i < h->n_loc_kv; i++)
		if (!strcmp(h->loc_kv[i].key, k))
			return h->loc_kv[i].value;
	return NULL;
}

const char *vhdx_remote_uri(const vhdx *h)
{
	return h->remote.pread ? h->remote.uri : NULL;
}

const char *vhdx_remote_named(const vhdx *h)
{
	while (h->parent)
		h = h->parent;
	return h->has_parent ? vhdx_locator_get(h, VHDX_LOC_NBD) : NULL;
}

int vhdx_remote_connect(const struct vhdx_scope *scope, const char *uri, struct vhdx_remote *ret,
			scm_error **ret_err)
{
	vhdx_remote_open_fn fn = scope ? scope->remote : host_opener;
	void *ud = scope ? scope->remote_userdata : host_userdata;
	if (!fn)
		return scm_fail(ret_err, -EACCES, "parent %s is remote, and %s", uri,
				scope ? "this grant allows no remote parents"
				      : "remote parents are read only under a grant that scopes \"path\" "
					"(path_prefix, eq or in) and names them in nbd_parents");
	struct vhdx_remote r = { 0 };
	int k = fn(uri, ud, &r, ret_err);
	if (k < 0)
		return k;
	if (!r.pread || !r.uri) {
		if (r.close)
			r.close(r.ud);
		free(r.uri);
		return scm_fail(ret_err, -EINVAL, "parent %s: the opener gave no reader", uri);
	}
	*ret = r;
	return 0;
}

void vhdx_remote_close(struct vhdx_remote *r)
{
	if (r->close)
		r->close(r->ud);
	free(r->uri);
	*r = (struct vhdx_remote){ 0 };
}

int vhdx_remote_attach(vhdx *h, const struct vhdx_scope *scope, bool connect, scm_error **ret_err)
{
	const char *uri = vhdx_locator_get(h, VHDX_LOC_NBD);
	if (!uri)
		return 1; /* a parent in a file */
	if (!connect)
		return 0; /* VHDX_O_NO_REMOTE: has_parent, neither parent nor reader */
	struct vhdx_remote r;
	int k = vhdx_remote_connect(scope, uri, &r, ret_err);
	if (k < 0)
		return scm_fail(ret_err, k, "%s: remote parent", h->path);
	/* NBD carries no DataWriteGuid: the export's size is what can be
	 * checked (parent_linkage stays the child's own, docs/vdisk.md) */
	if (r.size != h->vsize) {
		scm_fail(ret_err, -EINVAL, "%s: remote parent %s has size %llu, the child %llu", h->path, r.uri,
			 (unsigned long long)r.size, (unsigned long long)h->vsize);
		vhdx_remote_close(&r);
		return -EINVAL;
	}
	h->remote = r;
	return 0;
}

int vhdx_remote_fetch(vhdx *h, uint8_t *buf, uint64_t len, uint64_t off)
{
	if (vhdx_nowait)
		return -EAGAIN; /* the loop never waits for the network */
	scm_error *e = NULL;
	int r = h->remote.pread(h->remote.ud, buf, len, off, &e);
	if (r < 0) {
		if (r > -4096 && !e)
			scm_fail(&e, r, "read failed");
		return vhdx_fail_prefix(h, e, r, h->path);
	}
	return 0;
}
