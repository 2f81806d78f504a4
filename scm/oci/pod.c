/* pod.c: a pod's namespaces. podman puts the containers of a pod into its
 * infra container's network, ipc and uts namespaces, by the path
 * /proc/PID/ns/TYPE with the PID `state` reported for the infra
 * container. scm-oci reports its monitor's pid, and the monitor lives in
 * the host's namespaces: such a path is turned into the one of the scmd
 * container's PID 1, where that container's namespaces are. Any other
 * path stays as the engine gave it (podman's network namespaces under
 * /run/netns); scm's runtime checks each by fd (type, nsfs) at create.
 * The namespaces are opened then and kept by the monitor, which hands them
 * to scmd at start: a path names a process, whose pid may be another's by
 * then (the infra container gone, its pid reused). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "container.h"
#include "oci.h"
#include "scm/macro.h"

static int join_index(const char *type)
{
	return !strcmp(type, "net") ? CONTAINER_JOIN_NET : !strcmp(type, "ipc") ? CONTAINER_JOIN_IPC
			: !strcmp(type, "uts") ? CONTAINER_JOIN_UTS : -1;
}

/* The pid of the named scmd container's PID 1 (0: none), in ret. */
static int init_pid(const char *name, int *ret, scm_error **ret_err)
{
	json_object *a = json_object_new_object(), *res = NULL, *v;
	json_object_object_add(a, "name", json_object_new_string(name));
	int r = oci_scmd_call("container.show", a, NULL, 0, &res, NULL, ret_err);
	*ret = r == 0 && json_object_object_get_ex(res, "pid", &v) ? json_object_get_int(v) : 0;
	json_object_put(a);
	json_object_put(res);
	return r;
}

/* The id whose monitor is pid (its start time guards against a reused
 * pid), in ret (a state to oci_state_done); false when none. */
static bool find_monitor(pid_t pid, struct oci_state *ret)
{
	DIR *d = opendir(oci_root_dir());
	bool found = false;
	for (struct dirent *de; d && !found && (de = readdir(d));) {
		if (de->d_name[0] == '.' || !oci_id_valid(de->d_name))
			continue;
		struct oci_state st = { 0 };
		scm_error *e = NULL;
		if (oci_state_load(de->d_name, &st, &e) != 0) {
			scm_error_free(e);
			continue;
		}
		if (st.shim_pid == pid && st.shim_start == oci_proc_start(pid)) {
			*ret = st;
			found = true;
		} else
			oci_state_done(&st);
	}
	if (d)
		closedir(d);
	return found;
}

static int fix_one(json_object *n, size_t i, const char *path, struct oci_pod_pins *pins, scm_error **ret_err)
{
	int pid, end = 0;
	char type[16];
	if (sscanf(path, "/proc/%d/ns/%15[a-z]%n", &pid, type, &end) != 2 || path[end] || pid <= 0)
		return 0;
	struct oci_state st = { 0 };
	if (!find_monitor(pid, &st))
		return 0;
	_cleanup_close_ int dfd = -1;
	int r = oci_state_dir(st.id, false, &dfd, ret_err);
	enum oci_status s = r == 0 ? oci_status(dfd, &st) : OCI_STOPPED;
	if (r == 0 && s != OCI_RUNNING)
		r = scm_fail(ret_err, SCM_E_INVALID,
			     "config.json /linux/namespaces/%zu/path: %s belongs to container \"%s\", which is %s: "
			     "its namespaces exist once it runs", i, path, st.id, oci_status_name(s));
	int init = 0, k = join_index(type);
	if (r == 0)
		r = init_pid(st.name, &init, ret_err);
	if (r == 0 && init <= 1)
		r = scm_fail(ret_err, SCM_E_NOT_FOUND, "config.json /linux/namespaces/%zu/path: container \"%s\" "
			     "has no process left", i, st.id);
	if (r == 0) {
		char np[64];
		snprintf(np, sizeof(np), "/proc/%d/ns/%s", init, type);
		json_object_object_add(n, "path", json_object_new_string(np));
		if (pins && k >= 0) {
			free(pins->name[k]);
			pins->name[k] = strdup(st.name);
			pins->pid[k] = init;
		}
	}
	oci_state_done(&st);
	return r;
}

int oci_fix_ns_paths(json_object *cfg, struct oci_pod_pins *pins, scm_error **ret_err)
{
	json_object *lin, *ns, *p;
	if (!json_object_object_get_ex(cfg, "linux", &lin) || !json_object_object_get_ex(lin, "namespaces", &ns) ||
	    !json_object_is_type(ns, json_type_array))
		return 0;
	for (size_t i = 0; i < json_object_array_length(ns); i++) {
		json_object *n = json_object_array_get_idx(ns, i);
		if (!json_object_is_type(n, json_type_object) || !json_object_object_get_ex(n, "path", &p) ||
		    !json_object_is_type(p, json_type_string))
			continue;
		int r = fix_one(n, i, json_object_get_string(p), pins, ret_err);
		if (r != 0)
			return r;
	}
	return 0;
}

int oci_pod_pins_check(const struct oci_pod_pins *pins, scm_error **ret_err)
{
	/* Opened after the first look: the same PID 1 now means the one
	 * looked at lived all along, so its namespaces are the ones open. */
	for (int k = 0; k < 3; k++) {
		int now = 0;
		if (!pins->name[k])
			continue;
		int r = init_pid(pins->name[k], &now, ret_err);
		if (r != 0)
			return r;
		if (now != pins->pid[k])
			return scm_fail(ret_err, SCM_E_INVALID, "the pod's container \"%s\" ended while its namespaces "
				     "were being opened (its PID 1 was %d)", pins->name[k], pins->pid[k]);
	}
	return 0;
}

void oci_pod_pins_done(struct oci_pod_pins *pins)
{
	for (int k = 0; k < 3; k++)
	{
		free(pins->name[k]);
		pins->name[k] = NULL;
	}
}
