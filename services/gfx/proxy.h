/* proxy.h: what proxy.c (the provider) and proxy-handover.c (its
 * restart with channels) share. */
#pragma once
#include <scm/scm.h>

#include "clipboard.h"
#include "server.h"

extern gfx_server *proxy_srv;
extern gfx_clip *proxy_clip;
extern char **proxy_apps; /* NULL: whoever policy lets in */

/* scm_provider_handover() with the proxy's ops. In a process started to
 * take over (taking_over: $SCM_PROVIDER_HANDOVER was 1, which libscm
 * unsets), it makes proxy_srv (cfg: what the command line says) and
 * completes it from the saved state (secrets, sockets, size, clients,
 * viewers, proxy_apps); otherwise it only registers the ops. */
int proxy_handover(scm_provider *p, gfx_server_config *cfg, bool taking_over, scm_error **ret_err);
/* Whether a handover has frozen the viewers; thaws them once it was
 * refused or aborted (the old process serves on). */
bool proxy_handover_frozen(scm_provider *p);
/* proxy.c: proxy_clip for proxy_srv, with the engine's hooks to it. */
int proxy_clip_new(void);
