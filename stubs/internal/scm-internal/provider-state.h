/* provider-state.h: the memfd a provider's state travels in from the old
 * process to the new one (docs/handover.md, "The state format"). Internal
 * to libscm; tests/fuzz/fuzz_provider_state.c fuzzes the reader. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "scm/error.h"

struct json_object;

#define PROVIDER_STATE_MAGIC "SCMPSTAT"
#define PROVIDER_STATE_ENVELOPE 1u        /* the header and the members libscm writes */
#define PROVIDER_STATE_HEADER 24u
#define PROVIDER_STATE_MAX (64u << 20)    /* bytes of JSON a reader takes */

/* doc ({"interface", "saved_us", "state", "channels"}) into a new sealed
 * memfd, stamped with the provider's format version. */
int provider_state_write(struct json_object *doc, uint32_t version, int *ret_fd, scm_error **ret_err);
/* Reads and checks a state memfd: header, envelope version, length, JSON
 * and its members' types. *ret_version is the provider's format version
 * (the caller decides whether it reads it). */
int provider_state_read(int fd, uint32_t *ret_version, struct json_object **ret_doc, scm_error **ret_err);
int provider_state_parse(const void *buf, size_t len, uint32_t *ret_version, struct json_object **ret_doc,
			 scm_error **ret_err);
