/* introspect.c: D-Bus introspection XML into interfaces (introspect.h).
 *
 * expat does the XML (well-formedness, entities: it expands no external
 * ones, and bounds the internal ones' growth). Here: the root <node>'s
 * <interface>s, their <method>s and <signal>s and each one's <arg>s;
 * child <node>s, <property>s and <annotation>s are skipped with what
 * they hold. Every name and type is checked with libdbus's validators,
 * and every count is bounded, before it is kept. */
#include <dbus/dbus.h>
#include <errno.h>
#include <expat.h>
#include <stdlib.h>
#include <string.h>

#include "introspect.h"
#include "scm-internal/error.h"
#include "scm/macro.h"

struct ctx {
	XML_Parser p;
	struct dbi_node *node;
	unsigned depth; /* of the element being read; the root <node> is 1 */
	unsigned skip;	/* inside something skipped: its depth, else 0 */
	bool in_iface, in_member;
	scm_error *err;
};

static const char *attr(const XML_Char **a, const char *name)
{
	for (; a && a[0]; a += 2)
		if (strcmp(a[0], name) == 0)
			return a[1];
	return NULL;
}

static void fail(struct ctx *c, const char *fmt, const char *what)
{
	if (!c->err)
		scm_fail(&c->err, SCM_E_INVALID, "line %lu: %s%s", (unsigned long)XML_GetCurrentLineNumber(c->p), fmt,
			 what ? what : "");
	XML_StopParser(c->p, XML_FALSE);
}

static void *grow(void *arr, size_t n, size_t size)
{
	return reallocarray(arr, n + 1, size);
}

static void add_iface(struct ctx *c, const char *name)
{
	struct dbi_node *n = c->node;
	if (!name || !dbus_validate_interface(name, NULL))
		return fail(c, "<interface> needs a valid interface name, got ", name ? name : "none");
	if (n->n_ifaces >= DBI_MAX_IFACES)
		return fail(c, "more than 64 interfaces", NULL);
	struct dbi_iface *v = grow(n->ifaces, n->n_ifaces, sizeof(*v));
	if (!v)
		return fail(c, "out of memory", NULL);
	n->ifaces = v;
	v[n->n_ifaces] = (struct dbi_iface){ .name = strdup(name) };
	if (!v[n->n_ifaces++].name)
		return fail(c, "out of memory", NULL);
	c->in_iface = true;
}

static void add_member(struct ctx *c, const char *name, bool signal)
{
	struct dbi_iface *i = &c->node->ifaces[c->node->n_ifaces - 1];
	if (!name || !dbus_validate_member(name, NULL))
		return fail(c, signal ? "<signal> needs a valid member name, got " : "<method> needs a valid member name, got ",
			    name ? name : "none");
	for (size_t k = 0; k < i->n_members; k++)
		if (strcmp(i->members[k].name, name) == 0)
			return fail(c, "a second member named ", name);
	if (i->n_members >= DBI_MAX_MEMBERS)
		return fail(c, "more than 256 methods and signals in one interface", NULL);
	struct dbi_member *v = grow(i->members, i->n_members, sizeof(*v));
	if (!v)
		return fail(c, "out of memory", NULL);
	i->members = v;
	v[i->n_members] = (struct dbi_member){ .name = strdup(name), .signal = signal };
	if (!v[i->n_members++].name)
		return fail(c, "out of memory", NULL);
	c->in_member = true;
}

static void add_arg(struct ctx *c, const XML_Char **a)
{
	struct dbi_iface *i = &c->node->ifaces[c->node->n_ifaces - 1];
	struct dbi_member *m = &i->members[i->n_members - 1];
	const char *name = attr(a, "name"), *type = attr(a, "type"), *dir = attr(a, "direction");
	if (!type || !dbus_signature_validate_single(type, NULL))
		return fail(c, "<arg> needs one complete D-Bus type, got ", type ? type : "none");
	if (name && (!*name || strlen(name) > 255))
		return fail(c, "<arg> name must be 1-255 characters", NULL);
	if (dir && strcmp(dir, "in") != 0 && strcmp(dir, "out") != 0)
		return fail(c, "<arg> direction must be \"in\" or \"out\", got ", dir);
	if (m->signal && dir && strcmp(dir, "out") != 0)
		return fail(c, "a signal's <arg> cannot be \"in\"", NULL);
	if (m->n_args >= DBI_MAX_ARGS)
		return fail(c, "more than 64 arguments", NULL);
	struct dbi_arg *v = grow(m->args, m->n_args, sizeof(*v));
	if (!v)
		return fail(c, "out of memory", NULL);
	m->args = v;
	/* a method's arg is "in" unless it says; a signal's are its values */
	v[m->n_args] = (struct dbi_arg){ .name = name ? strdup(name) : NULL, .type = strdup(type),
					 .out = m->signal || (dir && strcmp(dir, "out") == 0) };
	if (!v[m->n_args].type || (name && !v[m->n_args].name)) {
		free(v[m->n_args].name);
		free(v[m->n_args].type);
		return fail(c, "out of memory", NULL);
	}
	m->n_args++;
}

static void XMLCALL on_start(void *ud, const XML_Char *el, const XML_Char **a)
{
	struct ctx *c = ud;
	c->depth++;
	if (c->skip)
		return;
	if (c->depth == 1) {
		if (strcmp(el, "node") != 0)
			fail(c, "the document's root must be <node>, not <", el);
	} else if (c->depth == 2 && strcmp(el, "interface") == 0)
		add_iface(c, attr(a, "name"));
	else if (c->depth == 3 && c->in_iface && (strcmp(el, "method") == 0 || strcmp(el, "signal") == 0))
		add_member(c, attr(a, "name"), el[0] == 's');
	else if (c->depth == 4 && c->in_member && strcmp(el, "arg") == 0)
		add_arg(c, a);
	else
		c->skip = c->depth; /* a child node, property, annotation, or what we do not know */
}

static void XMLCALL on_end(void *ud, const XML_Char *el)
{
	struct ctx *c = ud;
	(void)el;
	if (c->skip == c->depth)
		c->skip = 0;
	else if (c->depth == 3)
		c->in_member = false;
	else if (c->depth == 2)
		c->in_iface = false;
	c->depth--;
}

int dbi_parse(const char *xml, size_t len, struct dbi_node **ret, scm_error **ret_err)
{
	if (len > DBI_MAX_BYTES)
		return scm_fail(ret_err, SCM_E_INVALID, "the document is %zu bytes, at most %d", len, DBI_MAX_BYTES);
	struct ctx c = { .p = XML_ParserCreate("UTF-8"), .node = calloc(1, sizeof(struct dbi_node)) };
	if (!c.p || !c.node) {
		if (c.p)
			XML_ParserFree(c.p);
		free(c.node);
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	}
	XML_SetUserData(c.p, &c);
	XML_SetElementHandler(c.p, on_start, on_end);
	int r = 0;
	if (XML_Parse(c.p, xml, (int)len, XML_TRUE) != XML_STATUS_OK) {
		if (c.err) {
			scm_error_push(ret_err, TAKE_PTR(c.err));
			r = SCM_E_INVALID;
		} else
			r = scm_fail(ret_err, SCM_E_INVALID, "line %lu: %s", (unsigned long)XML_GetCurrentLineNumber(c.p),
				     XML_ErrorString(XML_GetErrorCode(c.p)));
	}
	XML_ParserFree(c.p);
	if (r != 0) {
		dbi_free(c.node);
		return r;
	}
	*ret = c.node;
	return 0;
}

struct dbi_node *dbi_free(struct dbi_node *n)
{
	if (!n)
		return NULL;
	for (size_t i = 0; i < n->n_ifaces; i++) {
		struct dbi_iface *f = &n->ifaces[i];
		for (size_t k = 0; k < f->n_members; k++) {
			for (size_t a = 0; a < f->members[k].n_args; a++) {
				free(f->members[k].args[a].name);
				free(f->members[k].args[a].type);
			}
			free(f->members[k].args);
			free(f->members[k].name);
		}
		free(f->members);
		free(f->name);
	}
	free(n->ifaces);
	free(n);
	return NULL;
}
