/* marshal.h: JSON to a D-Bus message body by signature, and back. */
#pragma once
#include <dbus/dbus.h>
#include <stddef.h>

struct json_object;

/* Appends args (a JSON array, one element a complete type of sig) to m.
 * Returns 0, or -EINVAL with why naming the argument, -ENOMEM. Variants
 * are ["SIG", value], dicts are objects (keys as strings), structs are
 * arrays; "h" (file descriptors) is refused. */
int br_marshal(DBusMessage *m, const char *sig, struct json_object *args, char *why, size_t whysz);

/* The body of m as a JSON array in the same forms; NULL with why filled. */
struct json_object *br_unmarshal(DBusMessage *m, char *why, size_t whysz);
