/* export-map.h: an scm interface (stubs/idl/NAME.json) as a D-Bus
 * interface, for scm-dbus-export (docs/dbus.md, "Container services on
 * the host bus"). Pure: no bus connection, no scmd, so the unit test and
 * the fuzz target drive it alone.
 *
 * The mapping, for every interface alike: an IDL method `read_fd` is the
 * D-Bus method `ReadFd`; its params are the in-args and its results the
 * out-args, in IDL order, typed bool b, int x, uint t, double d, string s,
 * bytes ay, fd h, json s (the JSON text). */
#pragma once
#include <dbus/dbus.h>
#include <stddef.h>
#include <sys/types.h>

#include "scm/idl.h"
#include "scm/scm.h"

struct json_object;

/* The D-Bus member name of an IDL method ("read_fd" -> "ReadFd"); false
 * when it does not fit buf or is not a valid member name. */
bool xp_member(const char *idl_name, char *buf, size_t n);
/* The IDL method whose member name is member; NULL when none. */
const scm_idl_method *xp_method_by_member(const scm_idl *idl, const char *member);
/* The signature of fields (params or results); false when too long. */
bool xp_signature(const scm_idl_field *f, size_t n, char *buf, size_t bufsz);

/* Introspection XML of the object: iface with every method, plus
 * Introspectable and Peer. NULL on ENOMEM. */
char *xp_introspect(const scm_idl *idl, const char *iface);

/* What one D-Bus call becomes: the JSON object of its non-bytes, non-fd
 * params (by IDL name), the bytes param, the fds (owned: xp_call_done
 * closes what was not taken). */
typedef struct xp_call {
	struct json_object *args;
	void *bin;
	size_t bin_len;
	int fds[SCM_FDS_MAX];
	size_t n_fds;
} xp_call;

/* Reads m's body as method's params: 0, or -EINVAL with why naming the
 * argument (a signature other than the method's, JSON that does not
 * parse), -ENOMEM. */
int xp_call_from_dbus(const scm_idl_method *method, DBusMessage *m, xp_call *ret, char *why, size_t whysz);
void xp_call_done(xp_call *c);

/* Appends the reply's results to out (a method return) by method's
 * results: 0, or -EINVAL with why (a result missing or of the wrong
 * type), -ENOMEM. */
int xp_reply_to_dbus(const scm_idl_method *method, const scm_message *reply, DBusMessage *out, char *why,
		     size_t whysz);

/* export-policy.c: writes DIR/BUS_NAME.conf, a bus policy that lets this
 * user own bus_name and the uids ((uid_t)-1: anyone) send to iface,
 * Introspectable and Peer on it; the directory's fd and the file's name
 * in *ret_dirfd and *ret_file. Asks the bus to ReloadConfig (false, said
 * on stderr, when it did not). */
int xp_write_bus_policy(const char *dir, const char *service, const char *bus_name, const char *iface,
			const uid_t *uids, size_t n_uids, int *ret_dirfd, char **ret_file, scm_error **ret_err);
bool xp_bus_reload(DBusConnection *bus);
