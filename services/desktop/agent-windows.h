/* agent-windows.h: the desktop agent's view of its app's windows. */
#pragma once
#include <X11/Xlib.h>
#include <stdbool.h>
#include <stdint.h>

struct json_object;
typedef struct aw_state aw_state;

/* Watches the top-level windows of the app's private X server (screen
 * sw x sh). Installs a quiet X error handler: windows vanish under us. */
int aw_new(Display *dpy, uint32_t sw, uint32_t sh, aw_state **ret);
void aw_free(aw_state *a);
/* An X event: marks the list for a rescan when it may have changed. */
void aw_event(aw_state *a, const XEvent *xe);
/* The window list for set_windows when it changed since the last call
 * (NULL otherwise, or on no memory); the caller puts it. */
struct json_object *aw_changed(aw_state *a);
/* The viewer focused window wid / asked to close it (ignored unless wid
 * is one of the windows last reported). */
void aw_focus(aw_state *a, uint32_t wid);
void aw_close(aw_state *a, uint32_t wid);
