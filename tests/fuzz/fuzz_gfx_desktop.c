/* fuzz_gfx_desktop.c: the desktop part's parsers of untrusted input: an
 * XWD header as Xvfb in an app container leaves it (the first input byte
 * picks this), and a desktop session spec. Whatever xwd_parse accepts must
 * lie inside the buffer it was given. */
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
	} else {
		desktop_spec *s = NULL;
		if (desktop_spec_parse((const char *)data + 1, size - 1, &s, &err) == 0)
			desktop_spec_free(s);
	}
	scm_error_free(err);
	return 0;
}
