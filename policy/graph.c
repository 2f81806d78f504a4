/* graph.c: who may call what, as a Graphviz DOT graph. One box per
 * profile, one ellipse per service; an edge per (profile, service) the
 * profile alone would allow (label: the methods, "*" for all of them) and a
 * dashed red edge where it denies. Names are validated identifiers, so
 * quoting them is enough. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void edge(FILE *out, const policy_profile *p, const eservice *s)
{
	size_t allowed = 0, denied = 0, total = 0;
	for (size_t i = 0; i < s->n_methods; i++) {
		if (s->in_idl && strcmp(s->methods[i].name, "*") == 0)
			continue;
		total++;
		allowed += s->methods[i].state == EM_ALLOW;
		denied += s->methods[i].state == EM_DENY || s->methods[i].state == EM_CONFLICT;
	}
	if (allowed) {
		fprintf(out, "  \"profile:%s\" -> \"service:%s\" [label=\"", p->name, s->name);
		if (allowed == total && s->in_idl) {
			fputs("*", out);
		} else {
			const char *sep = "";
			for (size_t i = 0; i < s->n_methods; i++)
				if (s->methods[i].state == EM_ALLOW) {
					fprintf(out, "%s%s%s", sep, s->methods[i].name,
						s->methods[i].winner->n_args ? " (args)" : "");
					sep = "\\n";
				}
		}
		fputs("\"];\n", out);
	}
	if (denied)
		fprintf(out, "  \"profile:%s\" -> \"service:%s\" [style=dashed, color=red, label=\"deny\"];\n",
			p->name, s->name);
}

int policy_graph_dot(const policy_store *st, const policy_idl_set *idl, FILE *out,
		     scm_error **ret_err)
{
	policy_effective *all = NULL;
	const char **names = calloc(st->n + 1, sizeof(char *));
	int r;
	if (!names)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	for (size_t i = 0; i < st->n; i++)
		names[i] = st->profiles[i]->name;
	/* the merge of everything gives the service universe */
	r = policy_effective_build(st, names, st->n, idl, &all, ret_err);
	free(names);
	if (r)
		return r;
	fputs("digraph scm_policy {\n  rankdir=LR;\n  node [fontname=\"sans\"];\n", out);
	for (size_t i = 0; i < st->n; i++)
		fprintf(out, "  \"profile:%s\" [shape=box, label=\"%s\\npriority %d\"];\n",
			st->profiles[i]->name, st->profiles[i]->name, st->profiles[i]->priority);
	for (size_t i = 0; i < all->n_services; i++)
		fprintf(out, "  \"service:%s\" [shape=ellipse, label=\"%s\"];\n", all->services[i].name,
			all->services[i].name);
	for (size_t i = 0; i < st->n; i++) {
		const char *one[1] = { st->profiles[i]->name };
		policy_effective *e = NULL;
		if ((r = policy_effective_build(st, one, 1, idl, &e, ret_err))) {
			policy_effective_unref(all);
			return r;
		}
		for (size_t k = 0; k < e->n_services; k++)
			edge(out, st->profiles[i], &e->services[k]);
		policy_effective_unref(e);
	}
	fputs("}\n", out);
	policy_effective_unref(all);
	if (fflush(out) != 0 || ferror(out))
		return scm_fail(ret_err, -EIO, "cannot write the graph");
	return 0;
}
