/* agent-clipboard.h: the app's own clipboard (its X server's selections),
 * as the desktop agent reads it for a copy and fills it for a paste. */
#pragma once
#include <X11/Xlib.h>
#include <stdbool.h>
#include <stddef.h>

#include "scm/gfx-client.h"

typedef struct agent_clip agent_clip;

agent_clip *agent_clip_new(Display *dpy);
void agent_clip_free(agent_clip *ac);
/* Starts reading the app's selection: CLIPBOARD, or PRIMARY when no
 * client owns CLIPBOARD (xterm's selection), as UTF-8. The answer comes
 * through agent_clip_event(). */
void agent_clip_copy(agent_clip *ac);
/* Owns CLIPBOARD and PRIMARY with this text, so the app's own paste
 * (Ctrl+V, Shift+Insert, the middle button) gets it. */
int agent_clip_own(agent_clip *ac, const char *data, size_t len);
/* Handles one X event. Returns 1 when a copy finished (*ret_data, a
 * malloc'd buffer of *ret_len bytes; an empty one when the app had no
 * selection; *ret_len GFX_CLIP_BYTES_MAX + 1 and no bytes when it was too
 * big), else 0. */
int agent_clip_event(agent_clip *ac, XEvent *xe, char **ret_data, size_t *ret_len);
/* Hands a finished copy to the proxy (clipboard_put, in a sealed memfd). */
int agent_clip_put(scm_channel *ch, const char *data, size_t len, scm_error **ret_err);
/* Fetches a granted paste (clipboard_get) and owns the selections with it. */
int agent_clip_paste(agent_clip *ac, scm_channel *ch, scm_error **ret_err);
