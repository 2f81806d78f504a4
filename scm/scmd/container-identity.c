/* container-identity.c: who a container is on the host.
 *
 * A root scmd maps every container onto one subordinate id range (Docker's
 * userns-remap model): the "scm" entries of /etc/subuid and /etc/subgid,
 * `scmd --subids START:COUNT`, or a documented default. Container id N is
 * host id START+N, so a container's root is an unprivileged host user and
 * host root is never inside (docs/containers.md, "Identity"). A rootless
 * scmd maps only itself. A container's endpoint socket belongs to the
 * host id of the user the container runs as, and admits only the
 * container's ids. Extra binds (`scmctl container run --bind`) come from
 * control-socket callers, the host's administrators. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "container.h"
#include "scmd.h"

int scmd_ctr_subids_init(struct scmd *d, const char *opt)
{
	container_idrange r;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	if (geteuid() != 0) {
		if (opt) {
			log_error("--subids needs root: a rootless scmd maps only its own uid");
			return -EPERM;
		}
		return 0;
	}
	if (opt) {
		if (container_idrange_parse(opt, &r) < 0) {
			log_error("--subids %s: expected START:COUNT with 0 < START and START+COUNT < 2^32",
				opt);
			return -EINVAL;
		}
	} else {
		int k = container_idrange_load(NULL, NULL, CONTAINER_SUBID_USER, &r, &err);
		if (k < 0) {
			log_error("%s", err ? err->message : strerror(-k));
			return k;
		}
		if (k > 0) {
			r = (container_idrange){ CONTAINER_SUBID_DEFAULT_START, CONTAINER_SUBID_DEFAULT_COUNT,
						 CONTAINER_SUBID_DEFAULT_START, CONTAINER_SUBID_DEFAULT_COUNT };
			log_notice(
				"no \"" CONTAINER_SUBID_USER "\" entry in /etc/subuid and /etc/subgid; "
				"containers run as host ids %u-%u (the default range; see scmd(8), --subids)",
				r.uid_start, r.uid_start + r.uid_count - 1);
		}
	}
	d->subuid_start = r.uid_start;
	d->subuid_count = r.uid_count;
	d->subgid_start = r.gid_start;
	d->subgid_count = r.gid_count;
	return 0;
}

void scmd_ctr_idrange(const struct scmd *d, container_idrange *ret)
{
	*ret = (container_idrange){ d->subuid_start, d->subuid_count, d->subgid_start, d->subgid_count };
}

/* The host uid of the container's user: its socket's owner. */
uid_t scmd_ctr_host_uid(const struct scmd *d, const container_spec *spec)
{
	if (!d->subuid_count)
		return geteuid();
	for (size_t i = 0; i < spec->n_uid_mappings; i++) {
		const container_idmap *m = &spec->uid_mappings[i];
		if (spec->uid >= m->container_id && spec->uid - m->container_id < m->size)
			return m->host_id + (spec->uid - m->container_id);
	}
	/* Unmapped: container_start refuses it, naming the field. */
	return d->subuid_start + (spec->n_uid_mappings || spec->uid >= d->subuid_count ? 0 : spec->uid);
}

void scmd_ctr_endpoint_peers(const struct scmd *d, struct endpoint *ep)
{
	if (d->subuid_count) {
		ep->peer_uid_min = d->subuid_start;
		ep->peer_uid_count = d->subuid_count;
	} else {
		ep->peer_uid_min = geteuid();
		ep->peer_uid_count = 1;
	}
}

static bool clean_path(const char *p)
{
	if (p[0] != '/' || strlen(p) >= 4096)
		return false;
	for (const char *c = p; *c; c++)
		if (c[0] == '/' && (c[1] == '/' || (c[1] == '.' && (c[2] == '/' || !c[2] || (c[2] == '.' && (c[3] == '/' || !c[3]))))))
			return false;
	return true;
}

#define BINDS_MAX 64

/* binds: [{"source": ABS, "destination": ABS, "writable": bool}], checked
 * here (the container's ids must still reach the source to bind it). */
int scmd_ctr_add_binds(container_spec *spec, container_sandbox *sb, json_object *binds,
			 scm_error **ret_err)
{
	size_t n = binds ? json_object_array_length(binds) : 0;
	if (!n)
		return 0;
	if (n > BINDS_MAX)
		return scm_fail(ret_err, SCM_E_INVALID, "binds: at most %d", BINDS_MAX);
	container_mount *m = reallocarray(spec->mounts, spec->n_mounts + n, sizeof(*m));
	if (!m)
		return -ENOMEM;
	spec->mounts = m;
	if (sb) {
		container_sandbox_mount *sm = reallocarray(sb->mounts, sb->n_mounts + n, sizeof(*sm));
		if (!sm)
			return -ENOMEM;
		sb->mounts = sm;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(binds, i), *v;
		const char *src = NULL, *dst = NULL;
		bool rw = false;
		if (json_object_is_type(b, json_type_object)) {
			if (json_object_object_get_ex(b, "source", &v) && json_object_is_type(v, json_type_string))
				src = json_object_get_string(v);
			dst = src;
			if (json_object_object_get_ex(b, "destination", &v))
				dst = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
			if (json_object_object_get_ex(b, "writable", &v))
				rw = json_object_get_boolean(v);
		}
		if (!src || !dst)
			return scm_fail(ret_err, SCM_E_INVALID, "binds/%zu: expected {\"source\": PATH, \"destination\": PATH, \"writable\": BOOL}", i);
		if (!clean_path(src) || !clean_path(dst) || strcmp(dst, "/") == 0)
			return scm_fail(ret_err, SCM_E_INVALID,
					"binds/%zu: %s:%s: both must be absolute paths without '.', '..' or '//', and not /",
					i, src, dst);
		struct stat st;
		if (stat(src, &st) < 0)
			return scm_fail(ret_err, SCM_E_INVALID, "binds/%zu: %s: %m", i, src);
		container_mount *cm = &spec->mounts[spec->n_mounts];
		*cm = (container_mount){ .flags = MS_BIND | MS_NOSUID | MS_NODEV | (rw ? 0 : MS_RDONLY),
					 .recursive = true, .readonly = !rw };
		if (!(cm->destination = strdup(dst)) || !(cm->source = strdup(src)) || !(cm->type = strdup("bind"))) {
			free(cm->destination);
			free(cm->source);
			return -ENOMEM;
		}
		spec->n_mounts++;
		if (sb) {
			/* The admin's binds are allowed on top of the profiles'. */
			container_sandbox_mount *sm = &sb->mounts[sb->n_mounts];
			*sm = (container_sandbox_mount){ .writable = rw };
			if (!(sm->source = strdup(src)) || !(sm->destination = strdup(dst))) {
				free(sm->source);
				return -ENOMEM;
			}
			sb->n_mounts++;
		}
	}
	return 0;
}
