/* fuzz_clipflow.c: the clipboard rule list the graphics proxy reads from
 * a grant (scm-internal/clipflow.h), as hostile JSON: whatever it accepts must hold
 * valid patterns in priority order, and every decision on it must be
 * total (no crash, an answer for any pair of names, the viewer reached by
 * no glob). The tail of the input also serves as a name to match. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scm-internal/clipflow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new_ex(16);
	if (!tok)
		return 0;
	size_t n = size > 65536 ? 65536 : size;
	struct json_object *j = json_tokener_parse_ex(tok, (const char *)data, (int)n);
	json_tokener_free(tok);
	scm_clip_rules r;
	char why[1024];
	scm_error *err = NULL;
	int pr = scm_clip_rules_parse(j, &r, &err);
	/* every refusal says why, under the code it returns, and keeps no rule */
	if (pr ? !err || err->code != pr || !err->message || r.n != 0 : err != NULL)
		abort();
	scm_error_free(err);
	if (pr == 0) {
		for (size_t i = 0; i < r.n; i++) {
			if (!scm_clip_pattern_valid(r.v[i].from) || !scm_clip_pattern_valid(r.v[i].to) ||
			    (i > 0 && r.v[i - 1].priority < r.v[i].priority))
				abort();
			/* a rule's own exact names, when it has no glob, match it */
			if (!strpbrk(r.v[i].from, "*?") && !scm_clip_match(r.v[i].from, r.v[i].from))
				abort();
			if (strcmp(r.v[i].from, SCM_CLIP_VIEWER) && scm_clip_match(r.v[i].from, SCM_CLIP_VIEWER))
				abort();
		}
		char name[64];
		size_t k = size < sizeof(name) - 1 ? size : sizeof(name) - 1;
		memcpy(name, data + size - k, k);
		name[k] = '\0';
		const char *names[] = { "a", "b", SCM_CLIP_VIEWER, name };
		for (size_t x = 0; x < 4; x++)
			for (size_t y = 0; y < 4; y++)
				(void)scm_clip_decide(&r, names[x], names[y], why, sizeof(why));
		scm_clip_rules_done(&r);
	}
	json_object_put(j);
	return 0;
}
