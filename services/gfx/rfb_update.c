/* rfb_update.c: what the proxy sends viewers, and a new desktop size.
 *
 * libvncserver would send an update from rfbUpdateClient() as soon as it
 * runs; rfb_server.c sets a deferral that never runs out and sends them
 * here instead (see gfx_rfb_send_pending), and resizes the desktop when a
 * viewer asks (SetDesktopSize). */
#include <rfb/rfb.h>
#include <rfb/rfbregion.h>

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

/* Sends every viewer what it asked for and what changed. A viewer that
 * speaks ExtDesktopSize has each non-incremental request answered by an
 * update carrying the size alone, with the pixels still pending: a
 * libvncserver that loops on rfbProcessEvents() sends them on its next
 * turn, but ours runs only when a socket wakes it, so they go out here at
 * once rather than after the viewer's next message. Returns whether a
 * viewer was closed on the way (a failed write). */
bool gfx_rfb_send_pending(rfbScreenInfoPtr s, const gfx_compositor *c)
{
	bool gone = false;
	rfbClientIteratorPtr it = rfbGetClientIterator(s);
	for (rfbClientPtr cl; (cl = rfbClientIteratorNext(it));) {
		for (int k = 0; k < 2; k++) {
			/* A size answer alone (a refused SetDesktopSize) counts
			 * too; libvncserver's own loop would wait for pixels. */
			if (cl->sock == RFB_INVALID_SOCKET || cl->state != RFB_NORMAL || cl->onHold ||
			    !(FB_UPDATE_PENDING(cl) || cl->newFBSizePending) || sraRgnEmpty(cl->requestedRegion))
				break;
			bool size_only = cl->useNewFBSize && cl->newFBSizePending;
			send_update(c, cl);
			if (!size_only)
				break;
		}
		gone |= cl->sock == RFB_INVALID_SOCKET;
	}
	rfbReleaseClientIterator(it);
	return gone;
}
