/* session-leftovers.c: a manager that ended without stopping its desktops
 * (killed, crashed) left them running: containers or host apps, their
 * endpoints, gfx-NAME and its proxy. Nobody owns them any more (their
 * secrets were the dead manager's), so the next manager tears each one
 * down at start, from the 0600 state file it wrote at launch: the same
 * teardown as `stop`. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static const char *str(json_object *o, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
											      : NULL;
}

/* A desktop as its state file names it: enough to tear it down. */
static struct desktop *from_state(json_object *st, const char *name, const char *top)
{
	json_object *v, *apps;
	const char *svc = str(st, "service");
	char want[64];
	snprintf(want, sizeof(want), "gfx-%s", name);
	/* Only what this manager would have made: gfx-NAME, NAME-APP. */
	if (!svc || strcmp(svc, want) != 0)
		return NULL;
	struct desktop *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->name = strdup(name);
	d->service = strdup(svc);
	if (asprintf(&d->dir, "%s/%s.d", top, name) < 0)
		d->dir = NULL;
	d->containers = json_object_object_get_ex(st, "containers", &v) && json_object_get_boolean(v);
	if (json_object_object_get_ex(st, "apps", &apps) && json_object_is_type(apps, json_type_array))
		for (size_t i = 0; i < json_object_array_length(apps) && d->n_apps < SESSION_APPS_MAX; i++) {
			json_object *a = json_object_array_get_idx(apps, i);
			const char *an = str(a, "name");
			if (!an || strlen(an) > 32 || strchr(an, '/'))
				continue;
			struct session_app *sa = &d->apps[d->n_apps++];
			sa->spec.name = strdup(an);
			snprintf(sa->label, sizeof(sa->label), d->containers ? "%s-%s" : "desktop-%s-%s", name, an);
		}
	if (!d->name || !d->service || !d->dir) {
		session_desktop_free(d);
		return NULL;
	}
	return d;
}

void session_leftovers(struct session *s)
{
	char *top = NULL;
	if (asprintf(&top, "%s/desktops", s->runtime_dir) < 0)
		return;
	DIR *dir = opendir(top);
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || l > 37 || strcmp(e->d_name + l - 5, ".json") != 0)
			continue;
		char name[40], p[4096];
		snprintf(name, sizeof(name), "%.*s", (int)(l - 5), e->d_name);
		snprintf(p, sizeof(p), "%s/%s", top, e->d_name);
		json_object *st = json_object_from_file(p);
		struct desktop *d = st ? from_state(st, name, top) : NULL;
		json_object_put(st);
		if (!d)
			continue;
		fprintf(stderr, "desktop %s: left by an earlier session manager; stopping it\n", name);
		session_teardown(s, d, true);
		session_desktop_free(d);
	}
	if (dir)
		closedir(dir);
	free(top);
}
