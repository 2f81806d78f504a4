/* fuzz_dbus_marshal.c: libFuzzer target for the D-Bus bridge's typing of a
 * client's JSON by a signature (services/dbus-bridge/marshal.c). Input:
 * a signature, a newline, the JSON arguments. libdbus's own checks are made
 * fatal (DBUS_FATAL_WARNINGS), so a value the bridge lets through unchecked
 * aborts. What marshals is read back and must marshal again under the
 * message's signature: the reply direction produces only what the call
 * direction accepts. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "marshal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	char why[512];
	if (!init) {
		setenv("DBUS_FATAL_WARNINGS", "1", 1);
		init = true;
	}
	const uint8_t *nl = memchr(data, '\n', size);
	if (!nl || nl - data > 255 || size > 65536)
		return 0;
	char sig[256];
	memcpy(sig, data, (size_t)(nl - data));
	sig[nl - data] = 0;
	if (strlen(sig) != (size_t)(nl - data))
		return 0;
	json_tokener *tok = json_tokener_new_ex(64);
	json_object *args = json_tokener_parse_ex(tok, (const char *)nl + 1, (int)(size - (size_t)(nl - data) - 1));
	json_tokener_free(tok);
	DBusMessage *m = dbus_message_new_method_call("org.a.B", "/a", "org.a.I", "M");
	if (!m)
		abort();
	if (br_marshal(m, sig, args, why, sizeof(why)) == 0) {
		json_object *back = br_unmarshal(m, why, sizeof(why));
		DBusMessage *m2 = dbus_message_new_method_call("org.a.B", "/a", "org.a.I", "M");
		if (!back || br_marshal(m2, dbus_message_get_signature(m), back, why, sizeof(why)) != 0 ||
		    strcmp(dbus_message_get_signature(m), dbus_message_get_signature(m2)) != 0)
			abort();
		dbus_message_unref(m2);
		json_object_put(back);
	}
	dbus_message_unref(m);
	json_object_put(args);
	return 0;
}
