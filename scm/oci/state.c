/* state.c: scm-oci's state under --root, one directory per container id
 * (runc's layout): state.json (what `state` reports and how to find the
 * container in scmd), config.json (the translated bundle scmd reads),
 * shim.sock (the monitor of a created container), "started" once scmd
 * launched it. The status is decided from the monitor's life: alive and
 * not started = created, alive and started = running, gone = stopped
 * (the monitor lives exactly as long as the container; its start time in
 * /proc guards against a reused pid). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "oci.h"
#include "scm/macro.h"
#include "scmutil.h"

struct oci_globals oci_g;

const char *oci_root_dir(void)
{
	static char buf[PATH_MAX];
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (oci_g.root)
		return oci_g.root;
	if (geteuid() != 0 && x && *x) {
		snprintf(buf, sizeof(buf), "%s/scm-oci", x);
		return buf;
	}
	return "/run/scm-oci";
}

int oci_state_dir(const char *id, bool create, int *ret_fd, scm_error **ret_err)
{
	const char *root = oci_root_dir();
	struct stat st;
	if (create && mkdir_p(root, 0711) < 0)
		return scm_fail(ret_err, -errno, "--root %s: %m", root);
	/* the container's mapped ids walk through to its rootfs (expose.c) */
	if (create && (stat(root, &st) < 0 || ((st.st_mode & 0011) != 0011 && chmod(root, (st.st_mode & 07777) | 0011) < 0)))
		return scm_fail(ret_err, -errno, "--root %s: %m", root);
	_cleanup_close_ int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0) {
		if (errno == ENOENT)
			return scm_fail(ret_err, SCM_E_NOT_FOUND, "container \"%s\" does not exist", id);
		return scm_fail(ret_err, -errno, "--root %s: %m", root);
	}
	if (create && mkdirat(rfd, id, 0711) < 0)
		return errno == EEXIST ? scm_fail(ret_err, SCM_E_EXISTS, "container \"%s\" already exists", id)
				       : scm_fail(ret_err, -errno, "%s/%s: %m", root, id);
	int fd = openat(rfd, id, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? scm_fail(ret_err, SCM_E_NOT_FOUND, "container \"%s\" does not exist", id)
				       : scm_fail(ret_err, -errno, "%s/%s: %m", root, id);
	*ret_fd = fd;
	return 0;
}

int oci_write_file(int dirfd, const char *name, const char *text, scm_error **ret_err)
{
	char tmp[NAME_MAX + 1];
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	_cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "writing %s: %m", name);
	size_t n = strlen(text);
	if (write(fd, text, n) != (ssize_t)n || renameat(dirfd, tmp, dirfd, name) < 0)
		return scm_fail(ret_err, -errno, "writing %s: %m", name);
	return 0;
}

char *oci_read_file(int dirfd, const char *name)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	for (ssize_t k; buf; n += (size_t)k) {
		if (n + 1 >= cap) {
			if (cap >= (16u << 20)) { /* no state or config is this large */
				free(buf);
				return NULL;
			}
			char *b = realloc(buf, cap *= 2);
			if (!b) {
				free(buf);
				return NULL;
			}
			buf = b;
		}
		if ((k = read(fd, buf + n, cap - n - 1)) <= 0) {
			if (k < 0) {
				free(buf);
				return NULL;
			}
			break;
		}
	}
	if (buf)
		buf[n] = 0;
	return buf;
}

int oci_state_save(int dirfd, const struct oci_state *st, scm_error **ret_err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(o, "name", json_object_new_string(st->name));
	json_object_object_add(o, "bundle", json_object_new_string(st->bundle));
	json_object_object_add(o, "created", json_object_new_string(st->created));
	json_object_object_add(o, "scm_runtime_dir", json_object_new_string(oci_scm_runtime_dir()));
	json_object_object_add(o, "shim_pid", json_object_new_int64(st->shim_pid));
	json_object_object_add(o, "shim_start", json_object_new_uint64(st->shim_start));
	json_object_object_add(o, "annotations", json_object_get(st->annotations));
	json_object_object_add(o, "binds", json_object_get(st->binds));
	int r = oci_write_file(dirfd, "state.json", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
			       ret_err);
	json_object_put(o);
	return r;
}

static char *jdup(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string)
		       ? strdup(json_object_get_string(v))
		       : NULL;
}

int oci_state_load(const char *id, struct oci_state *ret, scm_error **ret_err)
{
	_cleanup_close_ int dfd = -1;
	int r = oci_state_dir(id, false, &dfd, ret_err);
	if (r != 0)
		return r;
	_cleanup_free_ char *text = oci_read_file(dfd, "state.json");
	json_object *o = text ? json_tokener_parse(text) : NULL, *v;
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		/* create died before it wrote the state: nothing to run */
		return scm_fail(ret_err, SCM_E_NOT_FOUND, "container \"%s\" does not exist (no state.json: its "
							  "create did not finish)", id);
	}
	*ret = (struct oci_state){ .id = jdup(o, "id"), .name = jdup(o, "name"), .bundle = jdup(o, "bundle"),
				   .created = jdup(o, "created"), .scm_runtime = jdup(o, "scm_runtime_dir") };
	if (!oci_g.scm_runtime && ret->scm_runtime)
		oci_g.scm_runtime = ret->scm_runtime; /* the scmd create talked to */
	ret->shim_pid = json_object_object_get_ex(o, "shim_pid", &v) ? (pid_t)json_object_get_int64(v) : 0;
	ret->shim_start = json_object_object_get_ex(o, "shim_start", &v) ? json_object_get_uint64(v) : 0;
	ret->annotations = json_object_object_get_ex(o, "annotations", &v) ? json_object_get(v) : NULL;
	ret->binds = json_object_object_get_ex(o, "binds", &v) ? json_object_get(v) : NULL;
	json_object_put(o);
	if (!ret->id || !ret->name || !ret->bundle || ret->shim_pid <= 1) {
		oci_state_done(ret);
		return scm_fail(ret_err, SCM_E_INVALID, "container \"%s\": state.json is damaged", id);
	}
	return 0;
}

void oci_state_done(struct oci_state *st)
{
	free(st->id);
	free(st->name);
	free(st->bundle);
	free(st->created);
	if (oci_g.scm_runtime == st->scm_runtime)
		oci_g.scm_runtime = NULL;
	free(st->scm_runtime);
	json_object_put(st->annotations);
	json_object_put(st->binds);
	*st = (struct oci_state){ 0 };
}

unsigned long long oci_proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* after the command's closing parenthesis: state is field 3, start 22 */
	char *p = strrchr(buf, ')');
	unsigned long long start = 0;
	char state = 0;
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
			 &state, &start) != 2 || state == 'Z' || state == 'X')
		return 0;
	return start;
}

enum oci_status oci_status(int dirfd, const struct oci_state *st)
{
	if (oci_proc_start(st->shim_pid) != st->shim_start)
		return OCI_STOPPED;
	return faccessat(dirfd, "started", F_OK, AT_SYMLINK_NOFOLLOW) == 0 ? OCI_RUNNING : OCI_CREATED;
}

const char *oci_status_name(enum oci_status s)
{
	return s == OCI_CREATED ? "created" : s == OCI_RUNNING ? "running" : "stopped";
}

int oci_state_remove(const char *id, scm_error **ret_err)
{
	_cleanup_close_ int pfd = -1;
	int r = oci_state_dir(id, false, &pfd, ret_err);
	if (r != 0)
		return r;
	int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		safe_close(dfd);
		return scm_fail(ret_err, -errno, "container \"%s\": %m", id);
	}
	for (struct dirent *e; (e = readdir(d));)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			if (unlinkat(dfd, e->d_name, 0) < 0 && errno == EISDIR)
				(void)unlinkat(dfd, e->d_name, AT_REMOVEDIR);
	closedir(d);
	_cleanup_close_ int rfd = openat(pfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0 || unlinkat(rfd, id, AT_REMOVEDIR) < 0)
		return scm_fail(ret_err, -errno, "removing the state of \"%s\": %m", id);
	return 0;
}
