/* provider-ctl.h: between the provider skeleton (stubs/provider.c) and its
 * calls to scmd (stubs/provider-ctl.c). Internal to libscm. */
#pragma once
#include <stdint.h>

#include "scm/scm.h"

struct ctl_call;
struct ctl_calls {
	struct ctl_call *head;
	uint32_t next_id;
};

int provider_ctl_fd_(scm_provider *p);
struct ctl_calls *provider_ctl_calls_(scm_provider *p);
/* A REPLY or ERROR frame on the control connection (m is taken). */
void provider_ctl_reply_(scm_provider *p, scm_message *m);
/* The control connection ended: every call waiting gets an error. */
void provider_ctl_fail_all_(scm_provider *p);
