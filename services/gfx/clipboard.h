/* clipboard.h: the desktop clipboard, Qubes-style.
 *
 * Every app keeps its own clipboard (its own X server's selections). The
 * desktop clipboard, held here, moves text between them only when the
 * user asks in the viewer: Ctrl+Shift+C copies the focused app's
 * selection into it, Ctrl+Shift+V pastes it into the focused app. The
 * chords never reach an app. A paste is allowed when both ends' clipboard
 * rules allow the flow (scm-internal/clipflow.h; each app's rules come from scmd
 * in its channel's grant); the viewers' clipboard ("@viewer") has no
 * rules of its own, so the app's alone decide flows to or from it. Every
 * transfer, allowed or refused, is audited. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <scm-internal/clipflow.h>

#include "server.h"

#define GFX_CLIP_BYTES_MAX (1u << 20) /* the desktop clipboard's size cap */
#define GFX_CLIP_LOG 32u              /* audit records kept for stats */

/* Keysyms of the chords: Ctrl+Shift+C and Ctrl+Shift+V (either case). */
#define GFX_CLIP_KEY_COPY 0x0063u
#define GFX_CLIP_KEY_PASTE 0x0076u

typedef struct gfx_clip gfx_clip;

/* Where audit records go (one JSON object per call, no newline); NULL:
 * kept for stats only. */
typedef void (*gfx_clip_audit_fn)(void *ud, const char *json);

int gfx_clip_new(gfx_server *s, gfx_clip_audit_fn audit, void *ud, gfx_clip **ret);
gfx_clip *gfx_clip_free(gfx_clip *cb);

/* A client's clipboard rules, as its grant carries them (JSON array or
 * NULL). A malformed list leaves the client with no rules: no flow (the
 * parser's observation is pushed on *ret_err). */
int gfx_clip_attach(gfx_clip *cb, gfx_client *c, struct json_object *rules, scm_error **ret_err);
void gfx_clip_detach(gfx_clip *cb, gfx_client *c);

/* Key input from a viewer, before it is routed: true when the key belongs
 * to a chord and must not reach the focused app. */
bool gfx_clip_key(gfx_clip *cb, bool down, uint32_t keysym);

/* The app's answer to a copy request: its selection, len bytes. Refused
 * (GFX_E_INVALID, the reason pushed on *ret_err) unless a copy was asked
 * of this client and not answered yet; GFX_E_LIMIT over GFX_CLIP_BYTES_MAX. */
int gfx_clip_put(gfx_clip *cb, gfx_client *c, const void *data, size_t len, scm_error **ret_err);
/* Whether a copy was asked of c and not answered (checked before the
 * proxy reads what c passed). */
bool gfx_clip_asked(const gfx_clip *cb, const gfx_client *c);
/* A paste that was granted to c and not fetched yet: the data (borrowed
 * until the next change) and its length. GFX_E_INVALID when none. */
int gfx_clip_take(gfx_clip *cb, gfx_client *c, const void **ret_data, size_t *ret_len, scm_error **ret_err);

/* Cut text a viewer sent (ClientCutText, UTF-8): it becomes the desktop
 * clipboard with source "@viewer". */
void gfx_clip_from_viewer(gfx_clip *cb, const char *data, size_t len);

/* {"size":..,"source":..,"copies":..,"pastes":..,"refused":..,"log":[..]} */
struct json_object *gfx_clip_stats(const gfx_clip *cb);

/* The bytes travel in sealed memfds (a frame holds 256 KiB at most): a
 * sealed, read-only copy of data (NULL: len zero bytes, a hole); and the
 * contents of one the peer passed, which must be a memfd sealed against
 * writes and resizing (so it cannot change or block under us) of at most
 * GFX_CLIP_BYTES_MAX (GFX_E_LIMIT, with *ret_len its size, otherwise). */
int gfx_clip_memfd(const void *data, size_t len, int *ret_fd);
int gfx_clip_read_memfd(int fd, char **ret_data, size_t *ret_len, scm_error **ret_err);
/* A restarted proxy (clipboard.c): the desktop clipboard (its text in a
 * memfd through add, its source and the source's rules) and counters. */
struct json_object *gfx_clip_save(gfx_clip *cb, gfx_fd_add_fn add, void *ud, scm_error **ret_err);
int gfx_clip_restore(gfx_clip *cb, struct json_object *o, gfx_fd_take_fn take, void *ud, scm_error **ret_err);
