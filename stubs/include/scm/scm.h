/* scm.h: libscm, the client stub and provider skeleton runtime of scm.
 *
 * A client asks scmd for a service by name through its endpoint and gets a
 * private channel to the provider; a provider receives channels from scmd,
 * each with a grant (who called, which methods, which argument constraints),
 * and answers calls. scmd is not on the data path. The frames are described
 * in docs/protocol.md; generated stubs (stubs/scm-idlc) wrap the calls below
 * in typed C functions.
 *
 * Conventions: functions return 0 or a positive SCM_E_* code for an
 * expected refusal, or a negative errno when something broke; on failure,
 * when ret_err is not NULL, *ret_err receives an observation chain that says
 * what each layer saw (scm/error.h: the returned code is the chain's
 * outermost code, the one callers act on). ret_* outputs are untouched on
 * failure. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;

/* Where a client finds its endpoint when $SCM_ENDPOINT is not set: inside a
 * container the runtime binds the container's endpoint here. */
#define SCM_DEFAULT_ENDPOINT "/run/scm/scm.sock"

/* Wire limits (docs/protocol.md). A frame over these is a protocol error and
 * the peer is dropped. */
#define SCM_FRAME_MAX (256u * 1024u) /* header + JSON + binary */
#define SCM_FDS_MAX 8u               /* fds per frame */
#define SCM_JSON_DEPTH_MAX 16        /* JSON nesting */
#define SCM_NAME_MAX 128             /* service, method, endpoint names */

/* ---- messages ----------------------------------------------------------- */

enum scm_frame_type {
	SCM_FRAME_CALL = 1,
	SCM_FRAME_REPLY = 2,
	SCM_FRAME_ERROR = 3,
	SCM_FRAME_EVENT = 4, /* unsolicited: revocation notices, broadcasts */
};
enum {
	SCM_FLAG_NO_REPLY = 1u << 0, /* a call the caller will not wait for */
};

/* A received frame. json is the parsed body (NULL when empty), bin points
 * into the frame's buffer, fds are owned by the message until stolen. */
typedef struct scm_message {
	uint8_t type;
	uint16_t flags;
	uint32_t call_id;
	uint32_t method;
	struct json_object *json;
	const void *bin;
	size_t bin_len;
	int fds[SCM_FDS_MAX];
	size_t n_fds;
	void *buf_; /* private */
} scm_message;

scm_message *scm_message_free(scm_message *m); /* closes fds not stolen */
int scm_message_steal_fd(scm_message *m, size_t i); /* -1 if none */
/* The error chain an ERROR frame carries (NULL for other frames). */
scm_error *scm_message_error(const scm_message *m);

/* ---- client ------------------------------------------------------------- */

typedef struct scm_channel scm_channel;

/* Connects to `service` through the endpoint at $SCM_ENDPOINT, or
 * SCM_DEFAULT_ENDPOINT. */
int scm_connect(const char *service, scm_channel **ret, scm_error **ret_err);
int scm_connect_at(const char *endpoint, const char *service, scm_channel **ret,
		   scm_error **ret_err);
/* Wraps a channel fd received some other way (scmctl gets one from the
 * control socket). Takes fd. */
int scm_channel_from_fd(int fd, uint64_t id, const char *interface, scm_channel **ret);
scm_channel *scm_channel_free(scm_channel *ch);
/* The channel's socket: poll it for input, then scm_channel_dispatch(). */
int scm_channel_fd(const scm_channel *ch);
uint64_t scm_channel_id(const scm_channel *ch);
const char *scm_channel_interface(const scm_channel *ch);

/* Synchronous call: sends, waits for the reply (dispatching other replies
 * meanwhile) and returns it. An ERROR reply becomes the return code plus
 * *ret_err. args is borrowed; fds are duplicated by the kernel, not taken. */
int scm_call_sync(scm_channel *ch, uint32_t method, struct json_object *args, const void *bin,
	     size_t bin_len, const int *fds, size_t n_fds, scm_message **ret_reply,
	     scm_error **ret_err);

/* Call timeouts. A synchronous call that gets no reply in time fails with
 * SCM_E_TIMEOUT, the error naming the service, the method and the time;
 * the channel stays usable (a late reply is dropped). The default is
 * SCM_CALL_TIMEOUT_DEFAULT_MS (25 s, as sd-bus), or $SCM_CALL_TIMEOUT_MS
 * when set to a positive number of milliseconds ("infinity" or -1 for no
 * limit) when the channel is made; scm_channel_set_timeout() changes it per
 * channel, scm_call_sync_opts() per call. */
#define SCM_CALL_TIMEOUT_DEFAULT_MS 25000
#define SCM_TIMEOUT_INFINITE (-1)
/* timeout_ms > 0, or SCM_TIMEOUT_INFINITE; 0 restores the default. */
void scm_channel_set_timeout(scm_channel *ch, int timeout_ms);
int scm_channel_get_timeout(const scm_channel *ch);

typedef struct scm_call_opts {
	int timeout_ms;          /* 0: the channel's; SCM_TIMEOUT_INFINITE: none */
	const char *method_name; /* for messages; generated stubs set it */
} scm_call_opts;
/* scm_call_sync() with options (opts may be NULL). */
int scm_call_sync_opts(scm_channel *ch, uint32_t method, const scm_call_opts *opts,
		       struct json_object *args, const void *bin, size_t bin_len, const int *fds,
		       size_t n_fds, scm_message **ret_reply, scm_error **ret_err);

/* Asynchronous call: cb runs from scm_channel_dispatch() with the reply, or
 * with reply NULL and err set. The callback owns neither. */
typedef void (*scm_reply_fn)(scm_channel *ch, scm_message *reply, const scm_error *err,
			     void *userdata);
int scm_call_async(scm_channel *ch, uint32_t method, struct json_object *args, const void *bin,
		   size_t bin_len, const int *fds, size_t n_fds, scm_reply_fn cb, void *userdata,
		   scm_error **ret_err);
/* Reads what is ready without blocking and runs callbacks. Returns 0, or an
 * error once the channel is gone (pending callbacks get that error too). */
int scm_channel_dispatch(scm_channel *ch, scm_error **ret_err);
/* Number of async calls still waiting for replies. */
size_t scm_channel_pending(const scm_channel *ch);

/* ---- provider ----------------------------------------------------------- */

/* What scmd tells a provider about a channel: who is on the other end and
 * what they may do. Read-only for handlers. */
typedef struct scm_grant {
	uint64_t channel;
	const char *service;
	const char *caller;   /* the endpoint label the client came in on */
	uid_t uid;            /* SO_PEERCRED of the client, as scmd saw it */
	gid_t gid;
	pid_t pid;
	struct json_object *constraints; /* {"method":{"param":{...}}} or NULL */
	/* {"NAME": value}: the settings the caller's profile gives this grant,
	 * as the interface declares them (IDL "settings", checked by scmd's
	 * policy engine), or NULL */
	struct json_object *settings;
	/* {"KIND": ...}: the caller's effective profile rules of each kind the
	 * interface asks for (IDL "grant_rules", e.g. "clipboard": a list of
	 * rules), always present for each kind asked for (an empty list: no
	 * rule), or NULL when the interface asks for none */
	struct json_object *rules;
	/* Set only on a channel scmd brokered for an offload token (vdisk's
	 * offload_write): the token (hex) the channel was made for; NULL on
	 * every channel a client asked for. */
	const char *token;
} scm_grant;

typedef struct scm_provider scm_provider;
typedef struct scm_call scm_call;

typedef int (*scm_method_fn)(scm_call *call, const scm_message *msg, void *userdata);

/* One method of an interface, as the generator emits it. */
typedef struct scm_method_def {
	const char *name;
	uint32_t id; /* 1-based position in the IDL */
	scm_method_fn fn;
} scm_method_def;

typedef struct scm_interface_def {
	const char *name;
	uint32_t version;
	const scm_method_def *methods;
	size_t n_methods;
} scm_interface_def;

/* Takes the control fd from $SCM_PROVIDER_FD (set by scmd at activation),
 * tells scmd it is ready, and serves channels as they arrive. */
int scm_provider_new(const scm_interface_def *iface, void *userdata, scm_provider **ret,
		     scm_error **ret_err);
int scm_provider_new_fd(const scm_interface_def *iface, int control_fd, void *userdata,
			scm_provider **ret, scm_error **ret_err);
scm_provider *scm_provider_free(scm_provider *p);
/* An epoll fd covering the control connection and every channel. */
int scm_provider_fd(const scm_provider *p);
/* Handles what is ready, waiting up to timeout_ms (-1: forever). Returns 0,
 * or 1 once scmd has closed the control connection (time to exit). */
int scm_provider_dispatch(scm_provider *p, int timeout_ms, scm_error **ret_err);
/* dispatch() until scmd goes away. */
int scm_provider_run(scm_provider *p, scm_error **ret_err);
/* Called when a channel ends (closed, revoked), with its channel data. */
void scm_provider_on_close(scm_provider *p, void (*fn)(const scm_grant *g, void *chdata,
						       void *userdata));

/* ---- calls to scmd --------------------------------------------------------
 *
 * A provider may ask scmd for something over its control connection (the
 * vdisk provider registers and redeems offload tokens: docs/protocol.md,
 * "Offload tokens"). args is a JSON object with "op" (borrowed); cb runs
 * later on the loop's thread with scmd's reply, or with reply NULL and err
 * set (scmd's ERROR frame, or the control connection ended). The callback
 * may steal the reply's fds (scm_message_steal_fd); the message is freed
 * after it returns. Loop thread only. */
typedef void (*scm_control_reply_fn)(scm_provider *p, scm_message *reply, const scm_error *err,
				     void *userdata);
int scm_provider_control_call(scm_provider *p, struct json_object *args, scm_control_reply_fn cb,
			      void *userdata, scm_error **ret_err);

/* ---- handover: restarting a provider with its channels -------------------
 *
 * `scmctl service restart NAME [--exec PATH]` replaces a running provider
 * with a new process without closing a channel (docs/handover.md). A
 * provider that supports it calls scm_provider_handover() once, after
 * scm_provider_new() and before serving.
 *
 * In the old process, when scmd asks, the skeleton stops reading channels,
 * waits until every call (deferred ones too) is answered and every reply
 * has left, then calls save() for the provider's state and save_channel()
 * for each channel's data (the pointer set with scm_call_set_channel_data;
 * may be NULL: channels carry no data), and hands the JSON to scmd in a
 * sealed memfd. save() must leave the provider able to go on: if the new
 * process refuses the state, the old one reads its channels again. When
 * the new process took over, scmd closes the old one's control connection:
 * scm_provider_run() returns 0, and scm_provider_free() closes the channel
 * ends without ending the channels (on_close still runs for each).
 *
 * In the new process (started by scmd with $SCM_PROVIDER_STATE_FD), the
 * skeleton says nothing to scmd until scm_provider_handover() has read the
 * state: restore() gets the saved state and its version; a version outside
 * [min_version, version], another interface's state, or restore() failing
 * is a refusal that scmd reports while the old process goes on (the call
 * then fails: exit). Then scmd hands every live channel over again, and
 * restore_channel() (may be NULL) gives each its data back (*ret_chdata),
 * or refuses it (non-zero: that channel ends). The calls clients sent
 * meanwhile wait in the channels and are served by the new process.
 *
 * In a process not started by a handover, the call only registers the
 * callbacks. The JSON given to save()'s caller is taken (owned) by libscm. */
typedef struct scm_handover_ops {
	uint32_t version;     /* the format save() writes, >= 1 */
	uint32_t min_version; /* the oldest restore() reads, 1 <= min_version <= version */
	struct json_object *(*save)(void *userdata, scm_error **ret_err);
	struct json_object *(*save_channel)(const scm_grant *g, void *chdata, void *userdata);
	int (*restore)(struct json_object *state, uint32_t version, void *userdata, scm_error **ret_err);
	int (*restore_channel)(const scm_grant *g, struct json_object *saved, uint32_t version, void **ret_chdata,
			       void *userdata);
} scm_handover_ops;
int scm_provider_handover(scm_provider *p, const scm_handover_ops *ops, scm_error **ret_err);

/* File descriptors in the state (docs/handover.md, "Descriptors"): what a
 * new process cannot open again by itself, or must not (an open file whose
 * OFD locks belong to its open file description, a memfd a client has
 * mapped, a socket).
 *
 * scm_handover_fd_add(), only inside save() or save_channel(), adds a
 * duplicate of fd to the state and returns its index (>= 0), which the
 * provider records in its JSON; -EMFILE past SCM_HANDOVER_FDS_MAX fds in
 * one state, -EINVAL outside a save or for a bad fd. The fds go to scmd
 * beside the memfd, and scmd passes those, and only those, to the new
 * process of the same service.
 *
 * scm_handover_fd_take(), inside restore() or restore_channel(), gives the
 * fd at index (the caller owns it; O_CLOEXEC), or -EBADF when the state
 * has no such fd or it was taken already: a provider checks what it got
 * (fstat, seals) before it uses it. Fds nobody took are closed once every
 * saved channel was restored. */
#define SCM_HANDOVER_FDS_MAX 256u
int scm_handover_fd_add(scm_provider *p, int fd);
int scm_handover_fd_take(scm_provider *p, int64_t index);
/* After scm_provider_run() returned: whether this process handed its
 * state and channels to a successor (then it must not undo what the new
 * process now owns: no commit to shared files, no unlocking). */
bool scm_provider_handed_over(const scm_provider *p);

/* Work in progress across a handover (docs/handover.md, "Work in
 * progress"). A provider's own background work (a disk job) is brought to
 * a point its state can describe before save() runs:
 * scm_provider_on_quiesce() sets a callback called with true when a
 * handover starts quieting the provider (bring the work to such a point),
 * and with false when the handover was called off (the old process goes
 * on: resume it). While scm_provider_hold(p, +1) is not matched by a -1,
 * the handover waits (as for a call in progress), bounded by scmd's quiet
 * timeout. Loop thread only. */
void scm_provider_hold(scm_provider *p, int delta);
void scm_provider_on_quiesce(scm_provider *p, void (*fn)(bool quiet, void *userdata));
/* A deferred call may wait across a handover (a "wait for this job"):
 * scm_call_set_carriable() says so; it then does not hold a handover back.
 * In save() or save_channel(), scm_call_save() describes it as JSON (the
 * provider puts it in its state, with the channel's data); after the
 * handover the old process's reply to it is dropped. In restore_channel()
 * of that channel, scm_call_restore() makes it again in the new process,
 * which replies to it as to any deferred call: the client sees one
 * answer. NULL for a call that is not deferred and carriable, outside
 * those callbacks, or for JSON that does not describe a call of this
 * interface. */
int scm_call_set_carriable(scm_call *deferred);
struct json_object *scm_call_save(scm_call *deferred);
scm_call *scm_call_restore(scm_provider *p, struct json_object *saved);

/* Recovery after a crash (docs/handover.md, "A provider that crashes"): a
 * service whose manifest says "recover": true keeps its channels when its
 * provider crashes, and a new process restores them from the last
 * checkpoint scmd holds, as after a handover (scm_provider_handover's
 * callbacks and fd functions; the calls in progress at the crash fail on
 * the client's side with provider-gone).
 *
 * scm_provider_checkpoint() saves the state with save() and save_channel()
 * and sends it to scmd, which keeps the last one: call it whenever what a
 * recovery needs has changed, before replying to the call that changed it
 * (what reached scmd before the crash is what is recovered). At most one
 * goes every SCM_CHECKPOINT_MIN_MS; one asked for sooner goes when its turn
 * comes, from scm_provider_dispatch(). Nothing is sent during a handover,
 * nor for a service without "recover" (scmd then starts the provider
 * without $SCM_PROVIDER_RECOVER=1, and the call returns 0 at once).
 * Non-zero with *ret_err when save() refused or scmd is gone: scmd then
 * keeps the checkpoint it had. scmd refuses one over 4 MiB or with more
 * than SCM_HANDOVER_FDS_MAX fds (and then holds none).
 *
 * scm_provider_recovery() says, in save() and save_channel(), whether they
 * run for a checkpoint (say what a new process can open again by itself,
 * rather than passing fds whose locks must not outlive a crash), and in
 * restore() and restore_channel(), whether the state is a checkpoint
 * restored after a crash (not a predecessor that quiesced: work may have
 * been cut in the middle). */
#define SCM_CHECKPOINT_MIN_MS 25
int scm_provider_checkpoint(scm_provider *p, scm_error **ret_err);
bool scm_provider_recovery(const scm_provider *p);

/* ---- deferred replies ---------------------------------------------------
 *
 * A handler that would block (disk I/O, a flush, waiting on another
 * service) takes the call with scm_call_defer() and returns 0; the skeleton
 * then sends nothing for it, goes on serving every channel (this one too:
 * a client may have several calls in progress), and the reply goes out
 * when the owner calls one of the scm_call_reply*() functions on the
 * returned call, from any later point of the loop. The grant was checked
 * before the handler ran. Each reply frees a deferred call; the owner must
 * reply exactly once, even after the call was cancelled.
 *
 * Work done on another thread comes back to the loop through
 * scm_provider_post(): the worker fills in an scm_task and posts it, the
 * loop is woken through an eventfd and runs task->fn, which replies. Apart
 * from scm_provider_post() and scm_call_cancelled(), libscm functions must
 * be called from the loop's thread.
 *
 * A channel that ends (client gone, revoked) while calls are deferred
 * cancels them before on_close runs: scm_call_cancelled() turns true, the
 * reply functions then only free the call (returning -ECANCELED), and
 * scm_call_grant()/scm_call_channel_data() return NULL. So whatever a
 * worker still uses must be kept alive by its owner past on_close (the
 * vdisk provider counts its jobs per channel).
 *
 * Each channel may have at most scm_provider_set_defer_max() calls deferred
 * (SCM_DEFER_MAX_DEFAULT); past that scm_call_defer() replies SCM_E_BUSY
 * to the call itself, naming the limit, and returns NULL: the handler just
 * returns. */
#define SCM_DEFER_MAX_DEFAULT 64u
scm_call *scm_call_defer(scm_call *call);
bool scm_call_cancelled(const scm_call *call); /* any thread */
void scm_provider_set_defer_max(scm_provider *p, unsigned max);
/* Calls deferred and not yet answered on the call's channel. */
unsigned scm_call_deferred_count(const scm_call *call);

typedef struct scm_task {
	void (*fn)(struct scm_task *t); /* runs on the loop's thread */
	struct scm_task *next_;         /* private */
} scm_task;
/* Thread-safe and cannot fail: the task (owned by the caller until fn
 * runs) is queued and the loop woken. Tasks run in the order posted; those
 * still queued when the provider is freed run from scm_provider_free() (so
 * that owners can reply and free), which must not race with a post: stop
 * the workers first. */
void scm_provider_post(scm_provider *p, scm_task *t);

/* NULL once the call is cancelled. */
const scm_grant *scm_call_grant(const scm_call *call);
/* Does the call's channel's grant allow method (a method of the
 * interface, by name)? For a method that would give what another one
 * guards (a read ring is reads): the skeleton checked only the method
 * called. False once the call is cancelled, or for a name the interface
 * does not have. The grant's argument constraints are
 * scm_grant_check()'s. */
bool scm_call_allows(const scm_call *call, const char *method);
/* Per-channel state a provider keeps (open disks, surfaces, ...); NULL
 * once the call is cancelled. */
void *scm_call_channel_data(const scm_call *call);
void scm_call_set_channel_data(scm_call *call, void *data);
/* Each call gets exactly one reply or error; a handler that returns without
 * replying or deferring gets SCM_E_INTERNAL sent for it. On a deferred call
 * these may be called from any later point of the loop, and free it. */
int scm_call_reply(scm_call *call, struct json_object *result, const void *bin, size_t bin_len,
		   const int *fds, size_t n_fds);
int scm_call_reply_error(scm_call *call, int code, const char *fmt, ...) _scm_printf(3, 4);
int scm_call_reply_error_chain(scm_call *call, const scm_error *e);

/* Checks a call's JSON arguments against a grant's constraints for method
 * (used by the skeleton before any handler runs; exported for tests).
 * Returns 0 or SCM_E_DENIED with *ret_err naming the parameter. */
int scm_grant_check(const scm_grant *g, const char *method, struct json_object *args,
		    scm_error **ret_err);

#ifdef __cplusplus
}
#endif
