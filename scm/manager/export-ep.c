/* export-ep.c: see export-ep.h.
 *
 * Why a record: an endpoint is named dbus-BUS.NAME-UID, a name an admin
 * may have given one of their own. Found at start, it is only replaced
 * when it is provably a dead export's: the record this export wrote when
 * it made it (runtime_dir/dbus-export/NAME.lock) names the very socket
 * scmd serves it on (device, inode, change time). A running export keeps
 * its record locked, so a second export of the name (on another bus)
 * does not take the endpoints of the first. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "export-ep.h"
#include "scm-internal/error.h"
#include "scm-internal/wire.h"
#include "scm/macro.h"

#define RECORD_DIR "dbus-export"

int xp_scmd(const char *runtime_dir, const char *op, json_object *args, json_object **ret, scm_error **ret_err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { XP_SCMD_TIMEOUT_MS / 1000, (XP_SCMD_TIMEOUT_MS % 1000) * 1000 };
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", runtime_dir) >= sizeof(sa.sun_path))
		return scm_fail(ret_err, -ENAMETOOLONG, "runtime dir %s is too long", runtime_dir);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return scm_fail(ret_err, -errno, "cannot reach scmd at %s: %m", sa.sun_path);
	/* bounded: a stuck scmd fails the request rather than hold the export */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return scm_wire_control_request(fd, op, args, NULL, 0, ret, NULL, 0, ret_err);
}

/* What identifies the endpoint's socket now ("" when there is none). */
static void socket_id(int rundir, const char *name, char *buf, size_t n)
{
	char file[128];
	struct stat st;
	buf[0] = 0;
	snprintf(file, sizeof(file), "endpoints/%s.sock", name);
	if (fstatat(rundir, file, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
		snprintf(buf, n, "scm-dbus-export endpoint %s socket %llu:%llu ctime %lld.%09ld\n", name,
			 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (long long)st.st_ctim.tv_sec,
			 st.st_ctim.tv_nsec);
}

static int create(const char *runtime_dir, const char *name, char *const *profiles, scm_error **ret_err)
{
	json_object *a = json_object_new_object(), *ps = json_object_new_array();
	for (char *const *p = profiles; *p; p++)
		json_object_array_add(ps, json_object_new_string(*p));
	json_object_object_add(a, "name", json_object_new_string(name));
	json_object_object_add(a, "owner", json_object_new_int64(geteuid()));
	json_object_object_add(a, "mode", json_object_new_int(0600));
	json_object_object_add(a, "profiles", ps);
	int r = xp_scmd(runtime_dir, "endpoint.create", a, NULL, ret_err);
	json_object_put(a);
	return r;
}

static int scmd_remove(const char *runtime_dir, const char *name)
{
	json_object *n = json_object_new_object();
	json_object_object_add(n, "name", json_object_new_string(name));
	int r = xp_scmd(runtime_dir, "endpoint.remove", n, NULL, NULL);
	json_object_put(n);
	return r;
}

int xp_endpoint_make(const char *runtime_dir, const char *name, char *const *profiles, int *ret_lockfd,
		     scm_error **ret_err)
{
	char lock[128], now[256], was[256];
	struct stat st;
	*ret_lockfd = -1;
	snprintf(lock, sizeof(lock), "%s.lock", name);
	_cleanup_close_ int rundir = open(runtime_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rundir < 0)
		return scm_fail(ret_err, -errno, "scmd's runtime directory %s: %m", runtime_dir);
	if (mkdirat(rundir, RECORD_DIR, 0700) < 0 && errno != EEXIST)
		return scm_fail(ret_err, -errno, "%s/%s: %m", runtime_dir, RECORD_DIR);
	_cleanup_close_ int dir = openat(rundir, RECORD_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0 || fstat(dir, &st) < 0)
		return scm_fail(ret_err, -errno, "%s/%s: %m", runtime_dir, RECORD_DIR);
	if (st.st_uid != geteuid() || (st.st_mode & 022))
		return scm_fail(ret_err, SCM_E_DENIED, "%s/%s is not this user's alone: its records prove nothing",
				runtime_dir, RECORD_DIR);
	_cleanup_close_ int fd = openat(dir, lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "%s/%s/%s: %m", runtime_dir, RECORD_DIR, lock);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return scm_fail(ret_err, SCM_E_EXISTS,
				"endpoint '%s' belongs to a running scm-dbus-export (it holds %s/%s/%s): one export of a "
				"name at a time",
				name, runtime_dir, RECORD_DIR, lock);
	ssize_t n = pread(fd, was, sizeof(was) - 1, 0);
	was[n > 0 ? n : 0] = 0;
	scm_error *e = NULL;
	int r = create(runtime_dir, name, profiles, &e);
	if (r == SCM_E_EXISTS) {
		socket_id(rundir, name, now, sizeof(now));
		if (!now[0] || strcmp(now, was) != 0) {
			scm_error_free(e);
			return scm_fail(ret_err, SCM_E_EXISTS,
					"endpoint '%s' exists and is not one an export left (no record of it in %s/%s): "
					"scm-dbus-export replaces only its own; remove it (scmctl endpoint remove %s) or "
					"export under another --name",
					name, runtime_dir, RECORD_DIR, name);
		}
		/* a dead export's, by its record: made anew */
		scm_error_free(e);
		e = NULL;
		scmd_remove(runtime_dir, name);
		r = create(runtime_dir, name, profiles, &e);
	}
	if (r != 0) {
		scm_error_push(ret_err, e);
		return scm_fail(ret_err, r, "making endpoint '%s'", name);
	}
	socket_id(rundir, name, now, sizeof(now));
	size_t len = strlen(now);
	if (!len || ftruncate(fd, 0) < 0 || pwrite(fd, now, len, 0) != (ssize_t)len) {
		r = -errno;
		scmd_remove(runtime_dir, name);
		return scm_fail(ret_err, r ? r : -EIO, "recording endpoint '%s' in %s/%s/%s: %s", name, runtime_dir,
				RECORD_DIR, lock, len ? strerror(r ? -r : EIO) : "its socket is not in endpoints/");
	}
	*ret_lockfd = TAKE_FD(fd);
	return 0;
}

void xp_endpoint_remove(const char *runtime_dir, const char *name, int lockfd)
{
	char lock[128];
	if (lockfd < 0)
		return;
	snprintf(lock, sizeof(lock), "%s.lock", name);
	if (scmd_remove(runtime_dir, name) == 0) {
		_cleanup_close_ int rundir = open(runtime_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		_cleanup_close_ int dir =
			rundir < 0 ? -1 : openat(rundir, RECORD_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir >= 0)
			unlinkat(dir, lock, 0); /* still locked: no other export is using it */
	}
	close(lockfd);
}
