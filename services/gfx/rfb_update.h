/* rfb_update.h: rfb_server.c's sending of updates and resizing, on
 * libvncserver's types (private to the RFB side). */
#pragma once
#include <rfb/rfb.h>
#include <stdbool.h>

#include "gfx.h"

/* Sends every viewer that asked what changed (see rfb_update.c), but
 * holds back a pointer position alone or a JPEG viewer's frames alone for
 * a while: *ret_wake is when to call again (CLOCK_MONOTONIC ns; 0: nothing
 * held). now is CLOCK_MONOTONIC ns. Returns whether a viewer was closed
 * on the way (a failed write). */
bool gfx_rfb_send_pending(rfbScreenInfoPtr s, const gfx_compositor *c, int64_t now, int64_t *ret_wake);
/* Resizes the compositor to w x h, calls resized(ud) (if set; the window
 * manager keeps its windows within the new bounds), recomposites and
 * hands libvncserver the new framebuffer. Returns an rfbExtDesktopSize_*
 * result. */
int gfx_rfb_resize_desktop(rfbScreenInfoPtr s, gfx_compositor *c, int w, int h, void (*resized)(void *ud),
			   void *ud);
/* Tells libvncserver what changed on the desktop: moved pixels (found
 * against shadow, the desktop as viewers were last told about it) as one
 * CopyRect region for viewers that take it, then the rest, less what did
 * not change, as modified; shadow then takes the new pixels. Counts the
 * copies and the pixels they covered. */
void gfx_rfb_mark_changed(rfbScreenInfoPtr s, gfx_compositor *c, uint32_t *shadow, const gfx_region *changed,
			  uint64_t *copies, uint64_t *copied_px);
