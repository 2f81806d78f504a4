/* export-policy.c: the bus policy snippet scm-dbus-export installs for
 * its name (docs/dbus.md, "The bus policy snippet"), and the bus told to
 * read it. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "export-map.h"
#include "scm/macro.h"

int xp_write_bus_policy(const char *dir, const char *service, const char *bus_name, const char *iface,
			const uid_t *uids, size_t n_uids, int *ret_dirfd, char **ret_file, scm_error **ret_err)
{
	_cleanup_free_ char *text = NULL, *tmp = NULL, *file = NULL;
	_cleanup_close_ int dirfd = -1;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct passwd *me = getpwuid(geteuid());
	if (!f)
		return -ENOMEM;
	fprintf(f, "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
		   " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
		   "<!-- written by scm-dbus-export for scm service '%s' and removed when the export ends;\n"
		   "     scm's policy still decides every call (docs/dbus.md) -->\n<busconfig>\n",
		/* no "--" in a comment: the bus would refuse the file, and
		 * its whole configuration with it */
		strstr(service, "--") ? "(its name has \"- -\")" : service);
	fprintf(f, " <policy user=\"%s\">\n  <allow own=\"%s\"/>\n </policy>\n", me ? me->pw_name : "root", bus_name);
	/* the bus lets through only the uids a --caller names ('*': anyone) */
	for (size_t i = 0; i < n_uids; i++) {
		if (uids[i] == (uid_t)-1)
			fprintf(f, " <policy context=\"default\">\n");
		else
			fprintf(f, " <policy user=\"%u\">\n", (unsigned)uids[i]);
		fprintf(f, "  <allow send_destination=\"%s\" send_interface=\"%s\"/>\n"
			   "  <allow send_destination=\"%s\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
			   "  <allow send_destination=\"%s\" send_interface=\"org.freedesktop.DBus.Peer\"/>\n"
			   " </policy>\n",
			bus_name, iface, bus_name, bus_name);
	}
	fprintf(f, "</busconfig>\n");
	if (fclose(f) != 0)
		return -ENOMEM;
	if ((dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return scm_fail(ret_err, -errno, "the bus policy directory %s: %m", dir);
	if (asprintf(&file, "%s.conf", bus_name) < 0 || asprintf(&tmp, ".%s.conf.tmp", bus_name) < 0)
		return -ENOMEM;
	/* A file of that name is not ours: a package's policy for a service
	 * that is not running now, or an export's that died. Replaced, it
	 * would be lost, and removed at exit. */
	if (faccessat(dirfd, file, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return scm_fail(ret_err, -EEXIST,
				"%s/%s exists: scm-dbus-export writes a policy for %s only where none is (a snippet a dead "
				"export left can be removed by hand)",
				dir, file, bus_name);
	/* written whole beside it, then renamed without replacing: the bus
	 * never reads half, and what appeared meanwhile is kept */
	unlinkat(dirfd, tmp, 0); /* ours, left by an export that died */
	_cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || renameat2(dirfd, tmp, dirfd, file, RENAME_NOREPLACE) < 0) {
		int r = -errno;
		if (fd >= 0)
			unlinkat(dirfd, tmp, 0);
		return scm_fail(ret_err, r ? r : -EIO, "writing %s/%s: %s", dir, r == -EEXIST ? file : tmp,
				strerror(r ? -r : EIO));
	}
	*ret_dirfd = TAKE_FD(dirfd);
	*ret_file = TAKE_PTR(file);
	return 0;
}

bool xp_bus_reload(DBusConnection *bus)
{
	DBusError e;
	dbus_error_init(&e);
	DBusMessage *m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS, "ReloadConfig");
	DBusMessage *r = m ? dbus_connection_send_with_reply_and_block(bus, m, 10000, &e) : NULL;
	if (m)
		dbus_message_unref(m);
	if (r)
		dbus_message_unref(r);
	if (dbus_error_is_set(&e)) {
		fprintf(stderr, "scm-dbus-export: the bus did not reload its configuration: %s\n", e.message);
		dbus_error_free(&e);
		return false;
	}
	return r != NULL;
}
