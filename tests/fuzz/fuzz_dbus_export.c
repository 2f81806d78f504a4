/* fuzz_dbus_export.c: libFuzzer target for what scm-dbus-export reads from
 * a bus peer (scm/manager/export-map.c). Input: one byte picking a method
 * of a fixed interface (every IDL type among its params), then a D-Bus
 * message as the wire carries it; what libdbus demarshals is read as that
 * method's call. libdbus's own checks are fatal (DBUS_FATAL_WARNINGS). A
 * call that reads is turned back into a reply by the results of the same
 * types, which must always append. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "export-map.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char idl_text[] =
	"{\"interface\":\"fz\",\"version\":1,\"methods\":["
	"{\"name\":\"ping\"},"
	"{\"name\":\"all_types\",\"params\":[{\"name\":\"b\",\"type\":\"bool\"},{\"name\":\"i\",\"type\":\"int\"},"
	"{\"name\":\"u\",\"type\":\"uint\"},{\"name\":\"d\",\"type\":\"double\"},{\"name\":\"s\",\"type\":\"string\"},"
	"{\"name\":\"j\",\"type\":\"json\"},{\"name\":\"data\",\"type\":\"bytes\"}],"
	"\"results\":[{\"name\":\"b\",\"type\":\"bool\"},{\"name\":\"i\",\"type\":\"int\"},"
	"{\"name\":\"u\",\"type\":\"uint\"},{\"name\":\"d\",\"type\":\"double\"},{\"name\":\"s\",\"type\":\"string\"},"
	"{\"name\":\"j\",\"type\":\"json\"},{\"name\":\"data\",\"type\":\"bytes\"}]},"
	"{\"name\":\"greet\",\"params\":[{\"name\":\"name\",\"type\":\"string\"}],"
	"\"results\":[{\"name\":\"greeting\",\"type\":\"string\"}]},"
	"{\"name\":\"read_fd\",\"params\":[{\"name\":\"file\",\"type\":\"fd\"},{\"name\":\"max\",\"type\":\"uint\"}]}"
	"]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static scm_idl *idl;
	char why[512];
	if (!idl) {
		setenv("DBUS_FATAL_WARNINGS", "1", 1);
		if (scm_idl_parse(idl_text, strlen(idl_text), "fuzz", &idl, NULL) != 0)
			abort();
		char *xml = xp_introspect(idl, "org.example.Fz");
		if (!xml)
			abort();
		free(xml);
	}
	if (size < 1 || size > 65536)
		return 0;
	const scm_idl_method *meth = &idl->methods[data[0] % idl->n_methods];
	DBusError e;
	dbus_error_init(&e);
	DBusMessage *m = dbus_message_demarshal((const char *)data + 1, (int)size - 1, &e);
	dbus_error_free(&e);
	if (!m)
		return 0;
	xp_call c = { 0 };
	if (xp_call_from_dbus(meth, m, &c, why, sizeof(why)) == 0) {
		/* the reply direction: the call's own values as the results */
		scm_message reply = { .json = c.args, .bin = c.bin, .bin_len = c.bin_len };
		DBusMessage *out = dbus_message_new_method_call("org.a.B", "/a", "org.a.I", "M");
		if (!out)
			abort();
		int r = xp_reply_to_dbus(meth, &reply, out, why, sizeof(why));
		if (r == -ENOMEM)
			abort();
		dbus_message_unref(out);
		xp_call_done(&c);
	}
	dbus_message_unref(m);
	return 0;
}
