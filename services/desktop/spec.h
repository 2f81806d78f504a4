/* spec.h: desktop session specs (the JSON files in examples/desktops), parsed and
 * validated into C structs at the boundary.
 *
 *   {"name": "two-apps", "size": "1280x720",
 *    "apps": [{"name": "clock", "command": ["xclock"], "size": "360x360",
 *              "profiles": ["desktop-app"], "weight": 1}, ...]}
 *
 * name: [a-z0-9-]{1,32} (it becomes part of container and endpoint
 * names); size: WxH within 64..8192; apps: 1..16, unique names; command:
 * 1..64 non-empty strings; profiles: 0..16 names; weight: 1..10000,
 * default 1; description: optional string. Unknown keys are refused. */
#pragma once
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <scm/error.h>

#define DESKTOP_APPS_MAX 16

typedef struct desktop_app {
	char *name;
	char **command;  /* NULL-terminated */
	char **profiles; /* NULL-terminated */
	uint32_t width, height, weight;
} desktop_app;

typedef struct desktop_spec {
	char *name;
	uint32_t width, height;
	bool resize; /* viewers may resize the desktop ("resize": true) */
	/* "tls": "required", "preferred" or "off" (NULL: the proxy's default,
	 * preferred); "tls_cert"/"tls_key": absolute paths of PEM files for
	 * X509Vnc instead of the certificate the proxy makes up. */
	char *tls, *tls_cert, *tls_key;
	desktop_app apps[DESKTOP_APPS_MAX];
	size_t n_apps;
} desktop_spec;

/* Returns 0, -ENOMEM, or 100 (invalid) with *ret_err naming the field as a
 * JSON pointer. */
int desktop_spec_parse(const char *text, size_t len, desktop_spec **ret, scm_error **ret_err);
desktop_spec *desktop_spec_free(desktop_spec *s);

struct json_object;
/* One app object (as in "apps"), for adding to a running desktop of
 * max_w x max_h: 0, -ENOMEM or 100 with err naming the field ("/app/..."). */
int desktop_app_parse(struct json_object *a, uint32_t max_w, uint32_t max_h, desktop_app *ret, scm_error **ret_err);
void desktop_app_clear(desktop_app *a);
