/* fuzz_dbus_introspect.c: libFuzzer target for the introspection XML
 * reader of scm-dbus-stubgen (services/dbus-bridge/introspect.c). Whatever
 * it accepts holds only names and types that libdbus's validators accept,
 * within the bounds, since the generator writes them into C. */
#include <dbus/dbus.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "introspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dbi_node *n = NULL;
	scm_error *e = NULL;
	if (dbi_parse((const char *)data, size, &n, &e) != 0) {
		if (!e)
			abort(); /* a refusal always says why */
		scm_error_free(e);
		return 0;
	}
	if (n->n_ifaces > DBI_MAX_IFACES)
		abort();
	for (size_t i = 0; i < n->n_ifaces; i++) {
		if (!dbus_validate_interface(n->ifaces[i].name, NULL) || n->ifaces[i].n_members > DBI_MAX_MEMBERS)
			abort();
		for (size_t k = 0; k < n->ifaces[i].n_members; k++) {
			const struct dbi_member *m = &n->ifaces[i].members[k];
			if (!dbus_validate_member(m->name, NULL) || m->n_args > DBI_MAX_ARGS)
				abort();
			for (size_t a = 0; a < m->n_args; a++)
				if (!dbus_signature_validate_single(m->args[a].type, NULL) || (m->signal && !m->args[a].out))
					abort();
		}
	}
	dbi_free(n);
	return 0;
}
