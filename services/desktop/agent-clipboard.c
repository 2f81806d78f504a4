/* agent-clipboard.c: the app's X selections (ICCCM), for the desktop
 * clipboard (docs/gfx.md, Clipboard).
 *
 * Copy: XConvertSelection(CLIPBOARD or PRIMARY, UTF8_STRING) into a
 * property of the agent's own unmapped window, read when SelectionNotify
 * comes; large selections arrive INCR (in chunks, each announced by a
 * PropertyNotify). Paste: the agent owns CLIPBOARD and PRIMARY and answers
 * SelectionRequests for TARGETS, UTF8_STRING, STRING and TEXT from its
 * copy of the text, until another client takes the selection. Anything
 * over the 1 MiB cap is dropped, never buffered. */
#include <X11/Xatom.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "agent-clipboard.h"
#include "clipboard.h"

struct agent_clip {
	Display *dpy;
	Window win;
	Atom clipboard, primary, utf8, targets, text, incr, prop;
	bool reading, incr_reading, too_big;
	char *in;
	size_t in_len;
	char *out; /* what we own, or NULL */
	size_t out_len;
};

agent_clip *agent_clip_new(Display *dpy)
{
	agent_clip *ac = calloc(1, sizeof(*ac));
	if (!ac)
		return NULL;
	ac->dpy = dpy;
	ac->win = XCreateSimpleWindow(dpy, DefaultRootWindow(dpy), -10, -10, 1, 1, 0, 0, 0);
	XSelectInput(dpy, ac->win, PropertyChangeMask);
	ac->clipboard = XInternAtom(dpy, "CLIPBOARD", False);
	ac->primary = XA_PRIMARY;
	ac->utf8 = XInternAtom(dpy, "UTF8_STRING", False);
	ac->targets = XInternAtom(dpy, "TARGETS", False);
	ac->text = XInternAtom(dpy, "TEXT", False);
	ac->incr = XInternAtom(dpy, "INCR", False);
	ac->prop = XInternAtom(dpy, "SCM_CLIPBOARD", False);
	return ac;
}

void agent_clip_free(agent_clip *ac)
{
	if (!ac)
		return;
	free(ac->in);
	free(ac->out);
	free(ac);
}

void agent_clip_copy(agent_clip *ac)
{
	Atom sel = XGetSelectionOwner(ac->dpy, ac->clipboard) != None ? ac->clipboard : ac->primary;
	free(ac->in);
	ac->in = NULL;
	ac->in_len = 0;
	ac->too_big = false;
	ac->incr_reading = false;
	ac->reading = true;
	XDeleteProperty(ac->dpy, ac->win, ac->prop);
	XConvertSelection(ac->dpy, sel, ac->utf8, ac->prop, ac->win, CurrentTime);
	XFlush(ac->dpy);
}

/* Appends the property's value (and deletes it, which tells an INCR
 * sender to go on). Returns the bytes read, -1 on a failure. */
static long take_property(agent_clip *ac, Atom *ret_type)
{
	Atom type;
	int format;
	unsigned long n, after;
	unsigned char *data = NULL;
	/* long_length in 32-bit units: the whole cap and one more byte */
	if (XGetWindowProperty(ac->dpy, ac->win, ac->prop, 0, GFX_CLIP_BYTES_MAX / 4 + 1, True, AnyPropertyType,
			       &type, &format, &n, &after, &data) != Success)
		return -1;
	*ret_type = type;
	size_t bytes = format == 8 ? n : 0;
	if (type == ac->incr || bytes == 0) {
		XFree(data);
		return 0;
	}
	if (after > 0 || ac->in_len + bytes > GFX_CLIP_BYTES_MAX)
		ac->too_big = true;
	if (!ac->too_big) {
		char *nb = realloc(ac->in, ac->in_len + bytes + 1);
		if (!nb) {
			ac->too_big = true;
		} else {
			memcpy(nb + ac->in_len, data, bytes);
			ac->in = nb;
			ac->in_len += bytes;
		}
	}
	XFree(data);
	return (long)bytes;
}

static int finish(agent_clip *ac, char **ret_data, size_t *ret_len)
{
	ac->reading = ac->incr_reading = false;
	if (ac->too_big || !ac->in) {
		free(ac->in);
		ac->in = NULL;
		ac->in_len = 0;
	}
	*ret_data = ac->in ? ac->in : calloc(1, 1);
	/* Too big: say so with a length over the cap (and no bytes), so the
	 * proxy refuses and audits it as that, not as an empty selection. */
	*ret_len = ac->too_big ? GFX_CLIP_BYTES_MAX + 1 : ac->in_len;
	ac->in = NULL;
	ac->in_len = 0;
	return *ret_data ? 1 : 0;
}

static void answer(agent_clip *ac, XSelectionRequestEvent *rq)
{
	XSelectionEvent ev = { .type = SelectionNotify, .display = rq->display, .requestor = rq->requestor,
			       .selection = rq->selection, .target = rq->target, .property = None, .time = rq->time };
	Atom prop = rq->property != None ? rq->property : rq->target; /* obsolete clients */
	long max = XExtendedMaxRequestSize(ac->dpy) ? XExtendedMaxRequestSize(ac->dpy) : XMaxRequestSize(ac->dpy);
	if (ac->out && rq->target == ac->targets) {
		Atom t[4] = { ac->targets, ac->utf8, XA_STRING, ac->text };
		XChangeProperty(ac->dpy, rq->requestor, prop, XA_ATOM, 32, PropModeReplace, (unsigned char *)t, 4);
		ev.property = prop;
	} else if (ac->out && (rq->target == ac->utf8 || rq->target == XA_STRING || rq->target == ac->text) &&
		   (long)ac->out_len < max * 4 - 256) {
		/* Text the app can paste; STRING is Latin-1 by ICCCM, but
		 * nearly every client asks for UTF8_STRING first. */
		XChangeProperty(ac->dpy, rq->requestor, prop, rq->target == XA_STRING ? XA_STRING : ac->utf8, 8,
				PropModeReplace, (unsigned char *)ac->out, (int)ac->out_len);
		ev.property = prop;
	}
	XSendEvent(ac->dpy, rq->requestor, False, NoEventMask, (XEvent *)&ev);
	XFlush(ac->dpy);
}

int agent_clip_own(agent_clip *ac, const char *data, size_t len)
{
	char *copy = malloc(len + 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	copy[len] = '\0';
	free(ac->out);
	ac->out = copy;
	ac->out_len = len;
	XSetSelectionOwner(ac->dpy, ac->clipboard, ac->win, CurrentTime);
	XSetSelectionOwner(ac->dpy, ac->primary, ac->win, CurrentTime);
	XFlush(ac->dpy);
	return 0;
}

int agent_clip_event(agent_clip *ac, XEvent *xe, char **ret_data, size_t *ret_len)
{
	Atom type = None;
	switch (xe->type) {
	case SelectionNotify:
		if (!ac->reading || xe->xselection.requestor != ac->win)
			return 0;
		if (xe->xselection.property == None) /* no owner, or no text */
			return finish(ac, ret_data, ret_len);
		if (take_property(ac, &type) < 0 || type != ac->incr)
			return finish(ac, ret_data, ret_len);
		ac->incr_reading = true; /* chunks follow, each a new value */
		XFlush(ac->dpy);
		return 0;
	case PropertyNotify:
		if (!ac->incr_reading || xe->xproperty.window != ac->win || xe->xproperty.atom != ac->prop ||
		    xe->xproperty.state != PropertyNewValue)
			return 0;
		long k = take_property(ac, &type);
		XFlush(ac->dpy);
		if (k <= 0) /* the zero-length chunk ends it */
			return finish(ac, ret_data, ret_len);
		return 0;
	case SelectionRequest:
		answer(ac, &xe->xselectionrequest);
		return 0;
	}
	/* SelectionClear: another client owns that selection now, and the X
	 * server asks it, not us; the text stays for the other one. */
	return 0;
}

int agent_clip_put(scm_channel *ch, const char *data, size_t len, scm_error **ret_err)
{
	int fd = -1;
	uint64_t size;
	int r = gfx_clip_memfd(len > GFX_CLIP_BYTES_MAX ? NULL : data, len, &fd);
	if (r < 0)
		return scm_fail(ret_err, r, "clipboard memfd: %s", strerror(-r));
	r = scm_gfx_clipboard_put(ch, fd, &size, ret_err);
	close(fd);
	return r;
}

int agent_clip_paste(agent_clip *ac, scm_channel *ch, scm_error **ret_err)
{
	int fd = -1;
	uint64_t size;
	char *data = NULL;
	size_t len;
	int r = scm_gfx_clipboard_get(ch, &fd, &size, ret_err);
	if (r)
		return r;
	r = gfx_clip_read_memfd(fd, &data, &len, ret_err);
	close(fd);
	if (r)
		return scm_fail(ret_err, r < 0 ? r : SCM_E_INVALID, "the desktop clipboard");
	r = agent_clip_own(ac, data, len);
	free(data);
	return r;
}
