/* introspect.h: D-Bus introspection XML (the format of
 * org.freedesktop.DBus.Introspectable.Introspect, as the D-Bus
 * specification describes it) read into interfaces, methods, signals and
 * their typed arguments, for scm-dbus-stubgen. Read with expat; nothing
 * else of the document (properties, annotations, child nodes) is kept.
 * Names and signatures are checked as D-Bus checks them, so what comes
 * out can be written into C and sent on a bus. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "scm/scm.h"

#define DBI_MAX_BYTES (1024 * 1024)
#define DBI_MAX_IFACES 64
#define DBI_MAX_MEMBERS 256 /* methods and signals of an interface */
#define DBI_MAX_ARGS 64

struct dbi_arg {
	char *name; /* NULL when the document names none */
	char *type; /* one complete type */
	bool out;   /* a method's result (a signal's are all out) */
};

struct dbi_member {
	char *name;
	bool signal;
	struct dbi_arg *args;
	size_t n_args;
};

struct dbi_iface {
	char *name;
	struct dbi_member *members;
	size_t n_members;
};

struct dbi_node {
	struct dbi_iface *ifaces;
	size_t n_ifaces;
};

/* Parses len bytes of XML. Errors name the line and what is wrong. */
int dbi_parse(const char *xml, size_t len, struct dbi_node **ret, scm_error **ret_err);
struct dbi_node *dbi_free(struct dbi_node *n);
