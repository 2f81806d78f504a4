/* scm-internal/error.h: chain helpers for the tree's own code (scmd,
 * scmctl, the container runtime, the providers), which links libscm.a.
 * INTERNAL: never installed and not exported from libscm.so, whose ABI is
 * exactly the public headers (stubs/libscm.sym, tests/bats/core-abi.bats).
 * A program outside the tree builds chains with scm_fail/scm_error_wrap. */
#pragma once

#include "scm/error.h"

/* A deep copy of chain e, or NULL on ENOMEM. */
scm_error *scm_error_copy(const scm_error *e);
/* Puts chain e (taken) on top of *ret_err: for a layer that got a whole
 * chain from elsewhere (a peer's frame, a child's pipe, a handle's last
 * failure) and hands it to its caller. Frees e when ret_err is NULL. */
void scm_error_push(scm_error **ret_err, scm_error *e);
