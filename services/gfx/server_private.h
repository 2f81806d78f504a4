/* server_private.h: the engine's records, shared by server.c and
 * server_handover.c (what a restarted proxy carries over). Not for
 * anyone else. */
#pragma once
#include "server.h"
#include "wm.h"

struct gfx_client {
	gfx_server *srv;
	char caller[64];
	gfx_surface *surf;
	uint32_t slot, weight, border;
	int32_t origin_x, origin_y; /* where surface (0, 0) was placed */
	gfx_region pending;   /* surface coordinates */
	bool queued;
	int64_t queued_at;
	int event_fd;
	gfx_input_event q[GFX_INPUT_QUEUE];
	uint32_t q_head, q_len;
	uint64_t presents, inputs, input_dropped;
	int64_t latency_last, latency_max, latency_sum;
	uint64_t latency_n;
	int32_t ho_idx; /* its index in a handover's state (server_handover.c) */
};

/* A dragged window follows the pointer at most every DRAG_FRAME_NS: each
 * move is an update to every viewer (a CopyRect and the strips it
 * uncovered, each with its header and, over TLS, a record), and a viewer
 * sending motion at 25-60 Hz made one per event. Motion in between is
 * kept, the last of it applied when due (gfx_server_work; the RFB timer
 * wakes the loop) or at once when a button changes. */
#define DRAG_FRAME_NS (50LL * 1000000)

struct gfx_server {
	gfx_compositor *comp;
	gfx_timebank tb;
	gfx_rfb *rfb;
	gfx_client *clients[GFX_CLIENTS_MAX];
	gfx_client *focus;
	gfx_server_hooks hooks; /* the clipboard's chords and cut text (clipboard.c) */
	gfx_wm wm;              /* windows, title bars, taskbar, what the pointer does (wm.c) */
	/* A drag's pointer motion not applied yet (gfx_server_pointer). */
	bool drag_pending;
	uint8_t drag_buttons;
	int32_t drag_x, drag_y;
	int64_t drag_at; /* the dragged window last moved */
};
