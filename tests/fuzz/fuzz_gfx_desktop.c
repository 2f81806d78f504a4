/* fuzz_gfx_desktop.c: the desktop part's parsers of untrusted input: an
 * XWD header as Xvfb in an app container leaves it (the first input byte
 * picks this), a desktop session spec, and (bit 1) one app as `desktop
 * app add` passes it. Whatever xwd_parse accepts must lie inside the
 * buffer it was given; an app accepted fits the desktop. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>

#include "spec.h"
#include "xwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scm_error *err = NULL;
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		xwd_info info;
		if (xwd_parse(data + 1, size - 1, &info, &err) == 0 &&
		    info.pixel_offset + (size_t)info.bytes_per_line * info.height > size - 1)
			abort();
	} else if (data[0] & 2) {
		struct json_tokener *tok = json_tokener_new_ex(8);
		struct json_object *o = tok ? json_tokener_parse_ex(tok, (const char *)data + 1, (int)(size - 1)) : NULL;
		desktop_app app;
		if (o && desktop_app_parse(o, 1280, 720, &app, &err) == 0) {
			if (app.width > 1280 || app.height > 720 || !app.command[0])
				abort();
			desktop_app_clear(&app);
		}
		json_object_put(o);
		if (tok)
			json_tokener_free(tok);
	} else {
		desktop_spec *s = NULL;
		if (desktop_spec_parse((const char *)data + 1, size - 1, &s, &err) == 0)
			desktop_spec_free(s);
	}
	scm_error_free(err);
	return 0;
}
