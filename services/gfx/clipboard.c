/* clipboard.c: the desktop clipboard (clipboard.h).
 *
 * A transfer needs three things: the user's chord in a viewer (an app
 * cannot start one: it may hand over its selection only when asked, and
 * fetch a paste only when one was granted to it), the clipboard rules of
 * both ends from scmd (never from the apps), and room (1 MiB). Each
 * decision becomes an audit record. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipboard.h"
#include "scm/macro.h"
#include "scm/scm.h"

#define ERR(code, ...) scm_fail(ret_err, (code), __VA_ARGS__)

enum { XK_SHIFT_L = 0xffe1, XK_SHIFT_R = 0xffe2, XK_CONTROL_L = 0xffe3, XK_CONTROL_R = 0xffe4 };

typedef struct clip_app {
	gfx_client *c;
	json_object *rules_json; /* as the grant carried it, or NULL */
	scm_clip_rules rules;
	bool copy_asked, paste_granted;
} clip_app;

struct gfx_clip {
	gfx_server *srv;
	gfx_clip_audit_fn audit;
	void *ud;
	clip_app apps[GFX_CLIENTS_MAX];
	/* the desktop clipboard */
	char *data;
	size_t len;
	char source[SCM_NAME_MAX + 1];
	json_object *source_rules; /* the source's rules when it copied */
	/* chord state */
	uint8_t mods; /* 1 ctrl_l, 2 ctrl_r, 4 shift_l, 8 shift_r */
	uint32_t swallow_up; /* keysym whose release is ours too */
	uint64_t copies, pastes, refused;
	json_object *log[GFX_CLIP_LOG];
	size_t log_next;
};

int gfx_clip_new(gfx_server *s, gfx_clip_audit_fn audit, void *ud, gfx_clip **ret)
{
	gfx_clip *cb = calloc(1, sizeof(*cb));
	if (!cb)
		return -ENOMEM;
	cb->srv = s;
	cb->audit = audit;
	cb->ud = ud;
	*ret = cb;
	return 0;
}

gfx_clip *gfx_clip_free(gfx_clip *cb)
{
	if (!cb)
		return NULL;
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++) {
		json_object_put(cb->apps[i].rules_json);
		scm_clip_rules_done(&cb->apps[i].rules);
	}
	for (size_t i = 0; i < GFX_CLIP_LOG; i++)
		json_object_put(cb->log[i]);
	json_object_put(cb->source_rules);
	free(cb->data);
	free(cb);
	return NULL;
}

static clip_app *find(gfx_clip *cb, const gfx_client *c)
{
	for (size_t i = 0; c && i < GFX_CLIENTS_MAX; i++)
		if (cb->apps[i].c == c)
			return &cb->apps[i];
	return NULL;
}

void gfx_clip_detach(gfx_clip *cb, gfx_client *c)
{
	clip_app *a = find(cb, c);
	if (!a)
		return;
	json_object_put(a->rules_json);
	scm_clip_rules_done(&a->rules);
	*a = (clip_app){ 0 };
}

int gfx_clip_attach(gfx_clip *cb, gfx_client *c, json_object *rules, scm_error **ret_err)
{
	clip_app *a = NULL;
	/* A client freed without a detach left an entry under an address a
	 * new client may now have: it must not inherit those rules. */
	gfx_clip_detach(cb, c);
	for (size_t i = 0; !a && i < GFX_CLIENTS_MAX; i++)
		if (!cb->apps[i].c)
			a = &cb->apps[i];
	if (!a)
		return ERR(GFX_E_LIMIT, "no room for another client");
	*a = (clip_app){ .c = c };
	int r = scm_clip_rules_parse(rules, &a->rules, ret_err);
	if (r == 0)
		a->rules_json = json_object_get(rules);
	return r;
}


/* One audit record: {"event":"clipboard","op":..,"from":..,"to":..,
 * "size":..,"decision":"allow"|"refuse","why":..}. */
static void audit(gfx_clip *cb, const char *op, const char *from, const char *to, size_t size, bool allowed,
		  const char *why)
{
	json_object *o = json_object_new_object();
	if (!o)
		return;
	json_object_object_add(o, "event", json_object_new_string("clipboard"));
	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "from", json_object_new_string(from ? from : ""));
	json_object_object_add(o, "to", json_object_new_string(to ? to : ""));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)size));
	json_object_object_add(o, "decision", json_object_new_string(allowed ? "allow" : "refuse"));
	json_object_object_add(o, "why", json_object_new_string(why ? why : ""));
	if (!allowed)
		cb->refused++;
	if (cb->audit)
		cb->audit(cb->ud, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(cb->log[cb->log_next]);
	cb->log[cb->log_next] = o;
	cb->log_next = (cb->log_next + 1) % GFX_CLIP_LOG;
}

static void queue_op(gfx_client *c, uint8_t op)
{
	gfx_input_event ev = { .type = GFX_INPUT_CLIPBOARD, .op = op };
	gfx_client_queue(c, &ev);
}

static void chord_copy(gfx_clip *cb)
{
	gfx_client *f = gfx_server_focused(cb->srv);
	clip_app *a = find(cb, f);
	if (!f || !a) {
		audit(cb, "copy", f ? gfx_client_caller(f) : "", "desktop", 0, false, "no focused app");
		return;
	}
	/* One copy asked at a time: an app that never answered an earlier
	 * chord cannot fill the desktop clipboard later, behind the copy the
	 * user made since. */
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++)
		cb->apps[i].copy_asked = false;
	a->copy_asked = true;
	queue_op(f, GFX_CLIP_OP_COPY);
}

static void chord_paste(gfx_clip *cb)
{
	gfx_client *f = gfx_server_focused(cb->srv);
	clip_app *a = find(cb, f);
	const char *to = f ? gfx_client_caller(f) : "";
	char why_src[512] = "", why_dst[512] = "", why[1100];
	if (!f || !a) {
		audit(cb, "paste", cb->source, to, cb->len, false, "no focused app");
		return;
	}
	if (!cb->data) {
		audit(cb, "paste", "", to, 0, false, "the desktop clipboard is empty");
		return;
	}
	bool ok;
	if (strcmp(cb->source, to) == 0) {
		ok = true; /* back into the app it came from: nothing crosses */
		snprintf(why, sizeof(why), "same container");
	} else {
		bool src_ok = true;
		if (strcmp(cb->source, SCM_CLIP_VIEWER) != 0) {
			scm_clip_rules sr = { 0 };
			/* They parsed when the source attached; failing now, they allow nothing. */
			src_ok = scm_clip_rules_parse(cb->source_rules, &sr, NULL) == 0 &&
				 scm_clip_decide(&sr, cb->source, to, why_src, sizeof(why_src));
			scm_clip_rules_done(&sr);
		}
		bool dst_ok = scm_clip_decide(&a->rules, cb->source, to, why_dst, sizeof(why_dst));
		ok = src_ok && dst_ok;
		snprintf(why, sizeof(why), "%s%s%s%s%s", why_src, *why_src ? " (source); " : "", why_dst,
			 " (destination)", "");
	}
	audit(cb, "paste", cb->source, to, cb->len, ok, why);
	if (!ok)
		return;
	a->paste_granted = true;
	cb->pastes++;
	queue_op(f, GFX_CLIP_OP_PASTE);
}

bool gfx_clip_key(gfx_clip *cb, bool down, uint32_t keysym)
{
	uint8_t bit = keysym == XK_CONTROL_L ? 1 : keysym == XK_CONTROL_R ? 2 : keysym == XK_SHIFT_L ? 4
		      : keysym == XK_SHIFT_R ? 8 : 0;
	if (bit) {
		cb->mods = down ? cb->mods | bit : cb->mods & ~bit;
		return false; /* modifiers reach the app as usual */
	}
	uint32_t k = keysym >= 'A' && keysym <= 'Z' ? keysym + 32 : keysym;
	if (!down) {
		if (cb->swallow_up && k == cb->swallow_up) {
			cb->swallow_up = 0;
			return true;
		}
		return false;
	}
	if (!(cb->mods & 3) || !(cb->mods & 12) || (k != GFX_CLIP_KEY_COPY && k != GFX_CLIP_KEY_PASTE))
		return false;
	cb->swallow_up = k;
	if (k == GFX_CLIP_KEY_COPY)
		chord_copy(cb);
	else
		chord_paste(cb);
	return true;
}

static void set_clipboard(gfx_clip *cb, const char *source, json_object *rules, const void *data, size_t len)
{
	free(cb->data);
	cb->data = malloc(len + 1);
	cb->len = cb->data ? len : 0;
	if (cb->data) {
		memcpy(cb->data, data, len);
		cb->data[len] = '\0';
	}
	snprintf(cb->source, sizeof(cb->source), "%s", source);
	json_object_put(cb->source_rules);
	cb->source_rules = json_object_get(rules);
	/* a paste granted for the old contents must not fetch the new */
	for (size_t i = 0; i < GFX_CLIENTS_MAX; i++)
		cb->apps[i].paste_granted = false;
	cb->copies++;
}

bool gfx_clip_asked(const gfx_clip *cb, const gfx_client *c)
{
	for (size_t i = 0; c && i < GFX_CLIENTS_MAX; i++)
		if (cb->apps[i].c == c)
			return cb->apps[i].copy_asked;
	return false;
}

int gfx_clip_put(gfx_clip *cb, gfx_client *c, const void *data, size_t len, scm_error **ret_err)
{
	clip_app *a = find(cb, c);
	const char *from = gfx_client_caller(c);
	if (!a || !a->copy_asked)
		return ERR(GFX_E_INVALID, "no copy was asked of this app (the user copies with Ctrl+Shift+C)");
	a->copy_asked = false;
	if (len > GFX_CLIP_BYTES_MAX) {
		audit(cb, "copy", from, "desktop", len, false, "over the 1 MiB the desktop clipboard holds");
		return ERR(GFX_E_LIMIT, "%zu bytes, more than the %u the desktop clipboard holds", len,
			   GFX_CLIP_BYTES_MAX);
	}
	if (len == 0) {
		audit(cb, "copy", from, "desktop", 0, false, "the app has no selection");
		return ERR(GFX_E_INVALID, "the selection is empty");
	}
	set_clipboard(cb, from, a->rules_json, data, len);
	audit(cb, "copy", from, "desktop", len, true, "the user's chord");
	/* The viewers' clipboard joins only where the app's rules say so. */
	gfx_rfb *rfb = gfx_server_rfb(cb->srv);
	char why[512];
	bool ok = scm_clip_decide(&a->rules, from, SCM_CLIP_VIEWER, why, sizeof(why));
	if (rfb && gfx_rfb_viewers(rfb) > 0) {
		audit(cb, "send", from, SCM_CLIP_VIEWER, len, ok, why);
		if (ok)
			gfx_rfb_send_cut_text(rfb, cb->data, cb->len);
	}
	return 0;
}

int gfx_clip_take(gfx_clip *cb, gfx_client *c, const void **ret_data, size_t *ret_len, scm_error **ret_err)
{
	clip_app *a = find(cb, c);
	if (!a || !a->paste_granted || !cb->data)
		return ERR(GFX_E_INVALID, "no paste was granted to this app (the user pastes with Ctrl+Shift+V)");
	a->paste_granted = false;
	*ret_data = cb->data;
	*ret_len = cb->len;
	return 0;
}

void gfx_clip_from_viewer(gfx_clip *cb, const char *data, size_t len)
{
	if (len > GFX_CLIP_BYTES_MAX) {
		audit(cb, "copy", SCM_CLIP_VIEWER, "desktop", len, false, "over the 1 MiB the desktop clipboard holds");
		return;
	}
	set_clipboard(cb, SCM_CLIP_VIEWER, NULL, data, len);
	audit(cb, "copy", SCM_CLIP_VIEWER, "desktop", len, true, "the viewer's cut text");
}

json_object *gfx_clip_stats(const gfx_clip *cb)
{
	json_object *o = json_object_new_object(), *log = json_object_new_array();
	if (!o || !log) {
		json_object_put(o);
		json_object_put(log);
		return NULL;
	}
	json_object_object_add(o, "size", json_object_new_int64(cb->data ? (int64_t)cb->len : 0));
	json_object_object_add(o, "source", json_object_new_string(cb->data ? cb->source : ""));
	json_object_object_add(o, "copies", json_object_new_int64((int64_t)cb->copies));
	json_object_object_add(o, "pastes", json_object_new_int64((int64_t)cb->pastes));
	json_object_object_add(o, "refused", json_object_new_int64((int64_t)cb->refused));
	for (size_t i = 0; i < GFX_CLIP_LOG; i++) {
		json_object *r = cb->log[(cb->log_next + i) % GFX_CLIP_LOG];
		if (r)
			json_object_array_add(log, json_object_get(r));
	}
	json_object_object_add(o, "log", log);
	return o;
}

/* ---- a restarted proxy (proxy-handover.c) -------------------------------
 * The desktop clipboard goes over with its source and the source's rules
 * as they were when it copied (a later paste is decided by them, as it
 * would have been); the text in a sealed memfd, read back with the same
 * checks as an app's (gfx_clip_read_memfd). Not carried: the audit log
 * (it went to the log already), a copy asked and not answered, a paste
 * granted and not fetched, the chord keys held. */
json_object *gfx_clip_save(gfx_clip *cb, gfx_fd_add_fn add, void *ud, scm_error **ret_err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "copies", json_object_new_uint64(cb->copies));
	json_object_object_add(o, "pastes", json_object_new_uint64(cb->pastes));
	json_object_object_add(o, "refused", json_object_new_uint64(cb->refused));
	if (!cb->data)
		return o;
	int fd = -1, r = gfx_clip_memfd(cb->data, cb->len, &fd), i = r < 0 ? r : add(ud, fd);
	safe_close(fd);
	if (i < 0) {
		json_object_put(o);
		scm_fail(ret_err, i, "the desktop clipboard: %s", strerror(-i));
		return NULL;
	}
	json_object_object_add(o, "data", json_object_new_int(i));
	json_object_object_add(o, "source", json_object_new_string(cb->source));
	json_object_object_add(o, "rules", json_object_get(cb->source_rules));
	return o;
}

int gfx_clip_restore(gfx_clip *cb, json_object *o, gfx_fd_take_fn take, void *ud, scm_error **ret_err)
{
	json_object *v;
	cb->copies = json_object_get_uint64(json_object_object_get(o, "copies"));
	cb->pastes = json_object_get_uint64(json_object_object_get(o, "pastes"));
	cb->refused = json_object_get_uint64(json_object_object_get(o, "refused"));
	if (!json_object_object_get_ex(o, "data", &v))
		return 0;
	const char *source = json_object_get_string(json_object_object_get(o, "source"));
	json_object *rules = json_object_object_get(o, "rules");
	int fd = take(ud, json_object_get_int64(v));
	char *buf = NULL;
	size_t len = 0;
	if (fd < 0 || !source || strlen(source) > SCM_NAME_MAX || (rules && !json_object_is_type(rules, json_type_array))) {
		safe_close(fd);
		return scm_fail(ret_err, GFX_E_INVALID, "/clipboard: no text, source or rules");
	}
	int r = gfx_clip_read_memfd(fd, &buf, &len, ret_err);
	close(fd);
	if (r)
		return scm_fail(ret_err, r, "/clipboard/data");
	uint64_t copies = cb->copies;
	set_clipboard(cb, source, rules, buf, len);
	cb->copies = copies;
	free(buf);
	return 0;
}
