/* rfb_update.c: what the proxy sends viewers, and a new desktop size.
 *
 * libvncserver would send an update from rfbUpdateClient() as soon as it
 * runs; rfb_server.c sets a deferral that never runs out and sends them
 * here instead (see gfx_rfb_send_pending), and resizes the desktop when a
 * viewer asks (SetDesktopSize). What changed is marked here too: moved
 * pixels as CopyRect, the rest less what did not change (copyfind.c). */
#include <rfb/rfb.h>
#include <rfb/rfbregion.h>
#include <string.h>

#include "rfb_private.h"
#include "rfb_update.h"

/* Hands libvncserver the compositor's new framebuffer. rfbNewFramebuffer()
 * marks it all modified, queues the new size for every viewer that
 * understands one, and resets the pixel format to its default, which is
 * not ours: the shifts go back and every viewer's translation with them. */
static void new_framebuffer(rfbScreenInfoPtr s, const gfx_compositor *c)
{
	rfbNewFramebuffer(s, (char *)c->fb, (int)c->width, (int)c->height, 8, 3, 4);
	s->serverFormat.redShift = 16;
	s->serverFormat.greenShift = 8;
	s->serverFormat.blueShift = 0;
	rfbClientIteratorPtr it = rfbGetClientIterator(s);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));)
		if (cl->sock != RFB_INVALID_SOCKET && cl->state == RFB_NORMAL)
			s->setTranslateFunction(cl);
	rfbReleaseClientIterator(it);
}

int gfx_rfb_resize_desktop(rfbScreenInfoPtr s, gfx_compositor *c, int w, int h, void (*resized)(void *ud),
			   void *ud)
{
	int e = gfx_comp_resize(c, (uint32_t)w, (uint32_t)h);
	if (e)
		return e == GFX_E_INVALID ? rfbExtDesktopSize_InvalidScreenLayout : rfbExtDesktopSize_OutOfResources;
	/* The taskbar follows the bottom by itself (gfx_comp_taskbar); the
	 * windows are the window manager's to move. */
	if (resized)
		resized(ud);
	/* Drawn before anyone reads it; the changed area is all of it, which
	 * rfbNewFramebuffer() marks for every viewer. */
	gfx_comp_render(c, NULL);
	new_framebuffer(s, c);
	return rfbExtDesktopSize_Success;
}

static bool may_send_jpeg(const rfbClientPtr cl)
{
	return (cl->preferredEncoding == rfbEncodingTight || cl->preferredEncoding == (int)rfbEncodingTightPng) &&
	       cl->tightQualityLevel >= 0;
}

/* What the compositor draws itself: the frames round every window (frame,
 * title bar included, minus content), however the windows overlap, and
 * the taskbar. */
static sraRegionPtr frames_region(const gfx_compositor *c)
{
	gfx_rect tb = gfx_comp_taskbar(c);
	sraRegionPtr f = tb.h ? sraRgnCreateRect(tb.x, tb.y, tb.x + tb.w, tb.y + tb.h) : sraRgnCreate();
	for (uint32_t i = 0; i < c->n_ov; i++) {
		const gfx_overlay *o = c->ov[i];
		if (o->hidden)
			continue;
		gfx_rect fr = gfx_overlay_frame(c, o);
		sraRegionPtr ring = sraRgnCreateRect(fr.x, fr.y, fr.x + fr.w, fr.y + fr.h);
		sraRegionPtr in = sraRgnCreateRect(o->x, o->y, o->x + o->src.w, o->y + o->src.h);
		sraRgnSubtract(ring, in);
		sraRgnOr(f, ring);
		sraRgnDestroy(ring);
		sraRgnDestroy(in);
	}
	return f;
}

/* One update to a viewer that asked. Tight with JPEG encodes each
 * rectangle of an update as a whole, and the region libvncserver hands
 * it merges a window's frame with the content beside it, so the frame
 * (the colour that says which container a window belongs to) came out
 * blurred. For such a viewer an update that holds both is sent in two:
 * the rest first, the frames on its next request, where they are flat
 * rectangles of their own that Tight sends as solid fills, exactly. */
static void send_update(const gfx_compositor *c, rfbClientPtr cl)
{
	if (!may_send_jpeg(cl) || cl->newFBSizePending) {
		rfbSendFramebufferUpdate(cl, cl->modifiedRegion);
		return;
	}
	sraRegionPtr frames = frames_region(c), rest = sraRgnCreateRgn(cl->modifiedRegion);
	sraRgnAnd(frames, cl->modifiedRegion);
	sraRgnAnd(frames, cl->requestedRegion);
	sraRgnSubtract(rest, frames);
	sraRgnAnd(rest, cl->requestedRegion);
	if (sraRgnEmpty(frames) || sraRgnEmpty(rest))
		rfbSendFramebufferUpdate(cl, cl->modifiedRegion);
	else
		rfbSendFramebufferUpdate(cl, rest);
	sraRgnDestroy(frames);
	sraRgnDestroy(rest);
}

/* Small updates held back. A viewer told where another one's pointer is
 * gets a 16-byte update of its own, and over TLS a record of 45 bytes or
 * more; the pixels the pointer moved (a dragged window) follow within a
 * few ms and carry the position too, so a position alone waits up to
 * CURSOR_HOLD_NS for them. The frames sent apart from the rest to a JPEG
 * viewer (send_update) would be one more update per step of a drag: they
 * wait until no update went for FRAMES_QUIET_NS, at most FRAMES_MAX_NS,
 * and go together. Returns 0 to send now, or when to look again. */
#define CURSOR_HOLD_NS (30LL * 1000000)
#define FRAMES_QUIET_NS (100LL * 1000000)
#define FRAMES_MAX_NS (300LL * 1000000)

static int64_t earliest(int64_t a, int64_t b)
{
	return a && (!b || a < b) ? a : b;
}

static bool frames_only(const gfx_compositor *c, rfbClientPtr cl)
{
	sraRegionPtr rest = sraRgnCreateRgn(cl->modifiedRegion), frames = frames_region(c);
	sraRgnSubtract(rest, frames);
	bool only = sraRgnEmpty(rest);
	sraRgnDestroy(rest);
	sraRgnDestroy(frames);
	return only;
}

static int64_t held_until(const gfx_compositor *c, rfbClientPtr cl, int64_t now)
{
	client_extra *x = cl->clientData;
	/* A new size, a new cursor shape, a cursor drawn into the pixels:
	 * nothing to gain. */
	if (!x || (cl->useNewFBSize && cl->newFBSizePending) || !cl->enableCursorShapeUpdates ||
	    cl->cursorWasChanged || !sraRgnEmpty(cl->copyRegion))
		return 0;
	int64_t until = 0;
	if (!sraRgnEmpty(cl->modifiedRegion)) {
		if (!may_send_jpeg(cl) || !frames_only(c, cl))
			return 0;
		if (!x->frames_since)
			x->frames_since = now;
		until = earliest(x->last_sent + FRAMES_QUIET_NS, x->frames_since + FRAMES_MAX_NS);
	} else if (!(cl->enableCursorPosUpdates && cl->cursorWasMoved)) {
		return 0;
	}
	if (cl->enableCursorPosUpdates && cl->cursorWasMoved) {
		if (!x->cursor_since)
			x->cursor_since = now;
		until = earliest(until, x->cursor_since + CURSOR_HOLD_NS);
	}
	return now < until ? until : 0;
}

/* Sends every viewer what it asked for and what changed, less what is
 * held back (held_until; *ret_wake: the earliest time to look again, 0
 * if none). A viewer that
 * speaks ExtDesktopSize has each non-incremental request answered by an
 * update carrying the size alone, with the pixels still pending: a
 * libvncserver that loops on rfbProcessEvents() sends them on its next
 * turn, but ours runs only when a socket wakes it, so they go out here at
 * once rather than after the viewer's next message. Returns whether a
 * viewer was closed on the way (a failed write). */
bool gfx_rfb_send_pending(rfbScreenInfoPtr s, const gfx_compositor *c, int64_t now, int64_t *ret_wake)
{
	bool gone = false;
	int64_t wake = 0;
	rfbClientIteratorPtr it = rfbGetClientIterator(s);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
		for (int k = 0; k < 2; k++) {
			/* A size answer alone (a refused SetDesktopSize) counts
			 * too; libvncserver's own loop would wait for pixels. */
			if (cl->sock == RFB_INVALID_SOCKET || cl->state != RFB_NORMAL || cl->onHold ||
			    !(FB_UPDATE_PENDING(cl) || cl->newFBSizePending) || sraRgnEmpty(cl->requestedRegion))
				break;
			int64_t until = held_until(c, cl, now);
			if (until) {
				wake = earliest(wake, until);
				break;
			}
			bool size_only = cl->useNewFBSize && cl->newFBSizePending;
			send_update(c, cl);
			client_extra *x = cl->clientData;
			if (x) {
				x->last_sent = now;
				x->cursor_since = 0;
				x->frames_since = sraRgnEmpty(cl->modifiedRegion) ? 0 : x->frames_since ? x->frames_since : now;
			}
			if (!size_only)
				break;
		}
		gone |= cl->sock == RFB_INVALID_SOCKET;
	}
	rfbReleaseClientIterator(it);
	*ret_wake = wake;
	return gone;
}

static bool copyrect_viewers(rfbScreenInfoPtr s)
{
	bool any = false;
	rfbClientIteratorPtr it = rfbGetClientIterator(s);
	for (rfbClientPtr cl; !any && (cl = rfbClientIteratorNext(it));)
		any = cl->sock != RFB_INVALID_SOCKET && cl->state == RFB_NORMAL && cl->useCopyRect;
	rfbReleaseClientIterator(it);
	return any;
}

/* The windows the window manager moved since the last look, as hints. */
static size_t move_hints(gfx_compositor *c, gfx_move_hint *h, size_t max)
{
	size_t n = 0;
	for (uint32_t i = 0; i < c->n_ov; i++) {
		gfx_overlay *o = c->ov[i];
		if (!o->hidden && (o->x != o->seen_x || o->y != o->seen_y) && n < max)
			h[n++] = (gfx_move_hint){ gfx_overlay_frame(c, o), o->x - o->seen_x, o->y - o->seen_y };
		o->seen_x = o->x;
		o->seen_y = o->y;
	}
	return n;
}

static void add_part(void *ud, const gfx_rect *p)
{
	sraRegionPtr part = sraRgnCreateRect(p->x, p->y, p->x + p->w, p->y + p->h);
	sraRgnOr(ud, part);
	sraRgnDestroy(part);
}

/* Each rect of an update costs a header and, in Tight and ZRLE, a
 * compression flush and a palette of its own: a terminal whose lines
 * differ in a few columns only (a counter in a listing) changes a column
 * of small rects, which cost more as rects than as pixels. When their
 * bounding box adds little area, it goes as one rect instead (less what
 * goes as a copy). */
static sraRegionPtr fewer_rects(sraRegionPtr mod, sraRegionPtr copy)
{
	if (sraRgnCountRects(mod) < 2)
		return mod;
	uint64_t area = 0;
	sraRectangleIterator *it = sraRgnGetIterator(mod);
	for (sraRect rc; sraRgnIteratorNext(it, &rc);)
		area += (uint64_t)(rc.x2 - rc.x1) * (uint64_t)(rc.y2 - rc.y1);
	sraRgnReleaseIterator(it);
	sraRegionPtr box = sraRgnBBox(mod);
	sraRect b;
	if (!sraRgnPopRect(box, &b, 0) || (uint64_t)(b.x2 - b.x1) * (uint64_t)(b.y2 - b.y1) > 2 * area + 64 * 64) {
		sraRgnDestroy(box);
		return mod;
	}
	sraRgnDestroy(box);
	sraRgnDestroy(mod);
	mod = sraRgnCreateRect(b.x1, b.y1, b.x2, b.y2);
	if (copy)
		sraRgnSubtract(mod, copy);
	return mod;
}

/* What changed goes to viewers in two parts: earlier pixels moved (a
 * scroll, a dragged window) as one CopyRect region, scheduled first so
 * that its source is what viewers have now, and the rest, less what did
 * not change at all, as modified. The shadow then takes the new pixels. */
void gfx_rfb_mark_changed(rfbScreenInfoPtr s, gfx_compositor *c, uint32_t *shadow, const gfx_region *changed,
			  uint64_t *copies, uint64_t *copied_px)
{
	gfx_move_hint hints[16];
	size_t nh = move_hints(c, hints, 16);
	sraRegionPtr mod = sraRgnCreate(), copy = NULL;
	gfx_copy cp;
	if (copyrect_viewers(s) && gfx_copy_find(shadow, c->fb, c->width, c->height, changed, hints, nh, &cp)) {
		copy = sraRgnCreate();
		for (uint32_t i = 0; i < cp.n; i++) {
			add_part(copy, &cp.r[i]);
			*copied_px += (uint64_t)cp.r[i].w * (uint64_t)cp.r[i].h;
		}
		(*copies)++;
		rfbScheduleCopyRegion(s, copy, cp.dx, cp.dy);
	}
	gfx_rect desk = { 0, 0, (int32_t)c->width, (int32_t)c->height };
	for (uint32_t i = 0; i < changed->n; i++)
		gfx_changed_parts(shadow, c->fb, c->width, c->height, &changed->r[i], add_part, mod);
	if (copy)
		sraRgnSubtract(mod, copy);
	mod = fewer_rects(mod, copy);
	if (!sraRgnEmpty(mod))
		rfbMarkRegionAsModified(s, mod);
	sraRgnDestroy(mod);
	if (copy)
		sraRgnDestroy(copy);
	for (uint32_t i = 0; i < changed->n; i++) {
		gfx_rect v;
		if (!gfx_rect_intersect(&changed->r[i], &desk, &v))
			continue;
		for (int32_t y = v.y; y < v.y + v.h; y++)
			memcpy(shadow + (size_t)y * c->width + v.x, c->fb + (size_t)y * c->width + v.x,
			       (size_t)v.w * 4);
	}
}
