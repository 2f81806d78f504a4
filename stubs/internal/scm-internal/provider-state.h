/* provider-state.h: the memfd a provider's state travels in from the old
 * process to the new one (docs/handover.md, "The state format"). Internal
 * to libscm; tests/fuzz/fuzz_provider_state.c fuzzes the reader. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "scm/error.h"

struct json_object;

#define PROVIDER_STATE_MAGIC "SCMPSTAT"
/* the header and the members libscm writes: 1, JSON only; 2, plus "fds"
 * (the count of fds that travel beside the memfd). A reader takes both. */
#define PROVIDER_STATE_ENVELOPE 2u
#define PROVIDER_STATE_ENVELOPE_MIN 1u
#define PROVIDER_STATE_HEADER 24u
#define PROVIDER_STATE_MAX (64u << 20)    /* bytes of JSON a reader takes */

/* doc ({"interface", "saved_us", "state", "channels"}) into a new sealed
 * memfd, stamped with the provider's format version. With n_fds > 0 the
 * envelope is 2 and doc gets "fds": n_fds; without, it stays 1 (a libscm
 * that knows only 1 still reads a state that carries no fds). */
int provider_state_write(struct json_object *doc, uint32_t version, uint32_t n_fds, int *ret_fd,
			 scm_error **ret_err);
/* Reads and checks a state memfd: header, envelope version, length, JSON
 * and its members' types. *ret_version is the provider's format version
 * (the caller decides whether it reads it). */
/* *ret_n_fds: how many fds the writer passed beside the memfd (0 for
 * envelope 1; at most SCM_HANDOVER_FDS_MAX). */
int provider_state_read(int fd, uint32_t *ret_version, uint32_t *ret_n_fds, struct json_object **ret_doc,
			scm_error **ret_err);
int provider_state_parse(const void *buf, size_t len, uint32_t *ret_version, uint32_t *ret_n_fds,
			 struct json_object **ret_doc, scm_error **ret_err);
