/* spec-tool.c: scm-desktop-spec, checks a desktop session spec and prints
 * it normalised, one app a line, for launchers written in shell:
 *
 *   scm-desktop-spec FILE
 *   desktop NAME WxH [resize]
 *   app NAME WxH WEIGHT PROFILE,PROFILE -- COMMAND ARGS (shell-quoted)
 *
 * Exit 0, or 1 with "FILE: /json/pointer: reason" on stderr. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

static void quoted(const char *s)
{
	putchar('\'');
	for (; *s; s++)
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	putchar('\'');
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: scm-desktop-spec FILE\n");
		return 2;
	}
	FILE *f = fopen(argv[1], "re");
	if (!f) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	bool big = !feof(f);
	fclose(f);
	desktop_spec *s;
	scm_error *err = NULL;
	int r = big ? scm_fail(&err, 100, "/: over 1 MiB") : desktop_spec_parse(buf, n, &s, &err);
	if (r) {
		fprintf(stderr, "%s: %s\n", argv[1], r < 0 || !err ? strerror(r < 0 ? -r : ENOMEM) : err->message);
		return 1;
	}
	printf("desktop %s %ux%u%s\n", s->name, s->width, s->height, s->resize ? " resize" : "");
	for (size_t i = 0; i < s->n_apps; i++) {
		desktop_app *a = &s->apps[i];
		printf("app %s %ux%u %u ", a->name, a->width, a->height, a->weight);
		for (size_t k = 0; a->profiles[k]; k++)
			printf("%s%s", k ? "," : "", a->profiles[k]);
		printf("%s --", a->profiles[0] ? "" : "-");
		for (size_t k = 0; a->command[k]; k++) {
			putchar(' ');
			quoted(a->command[k]);
		}
		putchar('\n');
	}
	desktop_spec_free(s);
	return 0;
}
