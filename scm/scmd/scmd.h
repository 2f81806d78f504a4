/* scmd.h: the Service Control Manager's internal structures.
 *
 * One thread, one epoll set. Everything scmd waits on is a `watch`: a
 * listening socket, a client connection, a provider's control socket, the
 * provider end of a channel (watched only for hang-up), a timer, the
 * signalfd. Objects live in intrusive lists; counts per endpoint are the
 * quotas' ledger. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "scm/idl.h"
#include "scm/macro.h"
#include "scm/scm.h"
#include "scmutil.h"
#include "scm-internal/wire.h"
#include "audit.h"
#include "evbatch.h"
#include "log.h"
#include "manifest.h"
#include "quota.h"

struct scmd;
struct json_object;
struct epoll_event;
struct policy_store;
struct policy_effective;
struct fdmap;

struct list {
	struct list *next, *prev;
};
#define LIST_INIT(l) ((struct list){ &(l), &(l) })
#define list_entry(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))
static inline void list_init(struct list *l)
{
	l->next = l->prev = l;
}
static inline void list_add(struct list *head, struct list *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}
static inline void list_del(struct list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}
static inline bool list_empty(const struct list *l)
{
	return l->next == l;
}
#define list_for_each_safe(p, tmp, head) \
	for ((p) = (head)->next, (tmp) = (p)->next; (p) != (head); (p) = (tmp), (tmp) = (p)->next)

struct watch {
	int fd;
	void (*fn)(struct scmd *d, struct watch *w, uint32_t events);
};
int watch_add(struct scmd *d, struct watch *w, uint32_t events);
int watch_mod(struct scmd *d, struct watch *w, uint32_t events);
void watch_del(struct scmd *d, struct watch *w);
/* A timerfd watch armed for ms milliseconds from now (0 disarms). */
int timer_arm(struct watch *w, uint64_t ms);
uint64_t now_usec(void);
/* accept4() failed for lack of fds: stop watching every listening socket
 * for a moment instead of spinning on one that stays readable. */
void accept_pause(struct scmd *d);
int accept_timer_init(struct scmd *d);


enum conn_kind { CONN_CONTROL, CONN_ENDPOINT };

/* An accepted client connection, on the control socket or an endpoint. */
struct conn {
	struct watch w;
	struct list node; /* in endpoint->conns; alone on the control socket */
	enum conn_kind kind;
	struct endpoint *ep; /* NULL on the control socket */
	struct ucred cred;   /* from SO_PEERCRED at accept: the kernel's word */
	struct scm_outq outq; /* replies the client has no room for yet */
	unsigned pending; /* connects of this conn waiting for activation */
	struct event_sub *sub; /* events.c: it carries scmd's events, nothing else */
	bool dead;
	struct list dead_node; /* on scmd->dead_conns once dead, until closed */
};

struct endpoint {
	struct list node;
	char *name, *path;
	struct watch listen;
	struct list conns;
	struct list channels; /* struct channel.ep_node */
	char **profiles;      /* policy profile names, NULL-ended */
	struct policy_effective *eff; /* their merge; NULL: manifest allow lists decide */
	struct quota limit, used;
	uid_t owner;
	struct service *provider_of; /* a provider container's endpoint: its control socket */
	bool builtin; /* the control socket's "host" identity, not a real endpoint */
	bool container; /* a container's door out: removed with the container only */
	bool activated; /* its socket is systemd's (sd.c): closed, never unlinked */
	/* A container's: its own directory (bound read-only at /run/scm), and
	 * the host uids allowed to connect (SO_PEERCRED); count 0 = anyone the
	 * socket's mode lets in. */
	char *dir;
	uid_t peer_uid_min;
	uint32_t peer_uid_count;
};

/* P_HANDOVER: being replaced with its channels (service-restart.c); new
 * connects wait as if it were starting. Never in a restart's state. */
enum pstate { P_STOPPED, P_STARTING, P_READY, P_BACKOFF, P_STOPPING, P_HANDOVER };

struct pending_connect {
	struct list node;
	struct conn *conn;
	uint32_t call_id;
	uint64_t t_start, t_decided;
	struct json_object *grant;
	char *origin;
};

struct service {
	struct list node;
	char *name, *iface_name, *manifest_path, *idl_path, *idl_text;
	scm_idl *idl;
	char **exec;  /* argv */
	char **allow; /* endpoint labels; "*" for any */
	enum activation activation;
	enum restart restart;
	unsigned timeout_ms;
	bool in_container;         /* the provider runs in a container of its own */
	char **container_profiles; /* its profiles (sandbox and its own connects) */
	char *container_name;      /* of the running provider */
	/* provider state */
	enum pstate state;
	pid_t pid;
	struct watch ctl;   /* our end of the provider's control socketpair */
	struct scm_outq ctl_q; /* hand-offs the provider has not taken in yet */
	struct watch timer; /* activation timeout or restart backoff */
	unsigned backoff_ms;
	uint64_t started_at;
	int last_status;
	bool unregistering;
	struct list pending;  /* struct pending_connect */
	struct list channels; /* struct channel.svc_node */
	/* counters for `service list` */
	uint64_t n_connects, n_denied, n_activations, n_failures;
	char *manifest_json; /* what it was registered with: a successor registers it again */
	struct svc_handover *ho; /* `service restart` on its way (service-restart.c), or NULL */
	uint64_t n_restarts;     /* providers replaced with their channels */
	bool recover;             /* manifest "recover": a crash keeps the channels (service-recover.c) */
	struct svc_recover *rec;  /* its checkpoint and recovery, or NULL */
};

struct channel {
	uint64_t id;
	struct watch w; /* the provider's end, kept to revoke; watched for hang-up */
	struct list svc_node, ep_node, node;
	struct service *svc;
	struct endpoint *ep;
	char *ep_name;
	struct ucred cred;
	uint64_t created;
	char *origin;     /* the rule that allowed it */
	char *grant_json; /* what the provider was told, re-checked at policy reload */
	bool linked;      /* on the lists and charged (channel_link) */
	/* restored by a restart in place, its hang-up watch not added yet:
	 * on d->chan_watch_q (channel_link_unwatched) */
	bool watch_deferred;
	struct list defer_node;
};

/* Latency samples per connect stage, for `scmctl status`. */
#define LAT_SAMPLES 1024
struct latency {
	uint32_t us[LAT_SAMPLES];
	size_t n, next;
};

/* sd.c: what systemd handed scmd and what scmd tells it. */
struct scmd_sd {
	int *fds;       /* activated fds not taken yet (-1 once taken) */
	char **names;   /* their FileDescriptorName= */
	size_t n_fds;
	bool control_activated; /* the control socket is systemd's: not unlinked */
	uint64_t watchdog_usec; /* 0: no watchdog */
	struct watch tick;      /* WATCHDOG=1 and STATUS= refresh */
	char status[128];       /* the last STATUS= sent */
};

struct scmd {
	int epoll_fd;
	char *runtime_dir, *config_dir, *idl_path;
	char *state_dir; /* on disk: logs/ of containers (--state-dir) */
	struct watch control, sigfd;
	struct list endpoints, services, channels;
	struct endpoint host; /* identity of control-socket callers */
	struct endpoint events;	 /* events.c: the ledger of event subscribers */
	struct list event_subs;	 /* struct event_sub.node */
	uint64_t next_channel;
	uint64_t started;
	bool quit;
	struct latency lat_decide, lat_activate, lat_handoff, lat_total;
	struct audit *audit;
	struct quota default_limit;
	struct policy_store *policy; /* CONFIG/profiles, or NULL */
	struct list containers;
	uint64_t next_container;
	struct list dead_conns; /* closed by the main loop after each handler */
	struct scmd_sd sd;      /* sd.c: systemd's fds, readiness, watchdog */
	struct watch accept_timer; /* resumes accepting after running out of fds */
	bool accept_paused;
	/* The epoll batch being dispatched: watch_del() forgets the events
	 * still pending in it for a watch whose owner is being freed. */
	struct evbatch *batch;
	/* Root: the subordinate ids every container is mapped onto
	 * (container-identity.c); zero counts when rootless. */
	uint32_t subuid_start, subuid_count, subgid_start, subgid_count;
	/* containers (container-hook.c and the container-*.c beside it) */
	char instance[48];   /* scmd-PID-RANDOM: this scmd's cgroups are scm/INSTANCE */
	char *cgroup_parent; /* "scm/" INSTANCE */
	int lock_fd;         /* flock on RUNTIME/containers/lock while we live */
	uint64_t ctr_serial;
	unsigned ctr_fds_used, ctr_fds_limit;
	unsigned launch_timeout_ms, exec_timeout_ms;
	/* restart in place (restart*.c, docs/restart.md) */
	struct scmd_restart *restart;/* the one in progress, or NULL */
	char **argv;              /* how this scmd was started, for its successor */
	bool restoring;           /* rebuilding from a predecessor's state: nothing activates */
	bool store_restore;       /* ... from systemd's fd store, after a crash */
	uint64_t generation;      /* restarts in place since the first start */
	struct fdstore *fdstore;  /* systemd's fd store, when NOTIFY_SOCKET is set */
	bool store_dirty;         /* endpoints or containers changed since the store was fed */
	struct fdmap *restore_map; /* during restart_restore: the state's fd numbers to ours */
	/* channels restored without their hang-up watch yet, added a batch
	 * per loop iteration (channel_link_unwatched) */
	struct list chan_watch_q;
	pid_t handoff_pid;        /* the copy that served while this scmd loaded, until reaped */
	/* in the serving copy (restart-handoff.c): the containers were sent
	 * to the successor early, so the state has none */
	bool handoff_ctrs_early;
	bool handoff_numbers; /* the copy: fds go with their numbers, "fds" is empty */
	/* when the successor had the fds, the state parsed, the tables, the
	 * policy re-check: the switch's breakdown in its log line */
	struct { uint64_t fds, parsed, tables, checked, cpu0, chans_us, ctrs_us; } restart_clock;
	struct logzip *logzip; /* rotated logs' compressor (logzip.c), started when first needed */
	/* offload tokens (tokens.c); tokens.next NULL: not set up (unit tests) */
	struct list tokens;
	unsigned token_ttl_ms; /* default and longest lifetime (--token-ttl-ms) */
	/* providers replaced by `service restart`, exiting: reaped by pid */
	pid_t *old_providers;
	size_t n_old_providers;
};

/* control.c: what scmd holds (named services), for status lines */
void scmd_counts(struct scmd *d, size_t *ret_services, size_t *ret_endpoints, size_t *ret_channels,
		 size_t *ret_containers);

/* logzip.c: compresses a rotated log file (raw) into zst, asynchronously;
 * 0 when queued (the raw file is replaced once done), else the raw file
 * stays. */
int logzip_submit(struct scmd *d, const char *raw, const char *zst);
struct json_object *logzip_json(struct scmd *d); /* for `status` */
void logzip_reap(struct scmd *d);                 /* SIGCHLD */
void logzip_stop(struct scmd *d);
bool logzip_busy(struct scmd *d); /* files in flight (a restart in place waits) */
/* registry.c: a libexec program's path (../libexec/scm or ../libexec
 * beside scmd's binary), else the bare name for $PATH; malloc'd */
char *scmd_libexec_path(const char *cmd);

/* container-hook.c (the life cycle, control ops, startup and shutdown),
 * container-launch.c (scmd_ctr_start), container-output.c (the log),
 * container-view.c (the JSON) */
struct container_req {
	const char *name;    /* NULL: generated */
	const char *bundle;  /* an OCI bundle, or */
	char **argv;         /* the quick path */
	char **profiles;     /* NULL: the bundle's annotation */
	struct json_object *env; /* array of "K=V" */
	struct json_object *binds; /* [{"source","destination","writable"}]: the admin's */
	int stdin_fd;        /* -1: /dev/null */
	const int *join_fds; /* NULL, or by CONTAINER_JOIN_* (-1: none): namespaces
			      * handed over (pinned at create), for the bundle's
			      * paths of those types */
	int64_t uid, gid;    /* the user it runs as; -1: the spec's (root on the quick path) */
	bool attach;         /* a pipe of the output for scmctl */
	bool tty;            /* attached with a pty: attach_fd is its master */
	uint16_t tty_rows, tty_cols; /* its first window size (0: unset) */
	bool tty_raw_out;    /* no output processing (\n stays \n): not a terminal */
	bool clip;           /* a bundle's capabilities and limits narrowed to the
			      * profiles' sandbox instead of refused (an OCI engine's
			      * defaults: scm-oci) */
	struct service *provider; /* the container runs this service's provider */
	struct conn *reply_conn; /* answered (call_id) when the launch completes */
	uint32_t call_id;
};
/* scmd_ctr_start returns once the child is cloned; the launch completes
 * (or fails) later, from the event loop. */
struct container_started {
	const char *name, *endpoint;
	pid_t pid;
	uint64_t serial;
};
int scmd_ctr_init(struct scmd *d);
int scmd_ctr_start(struct scmd *d, const struct container_req *req, struct container_started *ret,
		     scm_error **ret_err);
int scmd_ctr_signal(struct scmd *d, const char *name, int sig, scm_error **ret_err);
int scmd_ctr_stop(struct scmd *d, const char *name, unsigned timeout_ms, scm_error **ret_err);
/* Replies to (c, call_id) when the container ends (at once if it has). */
int scmd_ctr_wait(struct scmd *d, struct conn *c, uint32_t call_id, const char *name,
		    scm_error **ret_err);
/* Starts argv in the container; *ret_errfd reads EOF once it exec'd, or
 * the failing step's text. */
int scmd_ctr_exec(struct scmd *d, const char *name, char **argv, const int fds[3], pid_t *ret_pid,
		    int *ret_errfd, scm_error **ret_err);
/* The container's log files, oldest first (rotated ones, then the current
 * one), at most CONTAINERS_LOG_FDS_MAX; the caller closes them. */
#define CONTAINERS_LOG_FDS_MAX 8
int scmd_ctr_log_fds(struct scmd *d, const char *name, int *ret_fds, size_t *ret_n,
		       scm_error **ret_err);
int scmd_ctr_remove(struct scmd *d, const char *name, scm_error **ret_err);
struct json_object *scmd_ctr_json(struct scmd *d, const char *only);
void scmd_ctr_stop_all(struct scmd *d);
void cgroup_parent_remove(struct scmd *d);
/* container-leftovers.c: kill and remove what a dead scmd left in dir. */
void scmd_ctr_cleanup_leftovers(struct scmd *d, const char *dir);
/* container-leftovers.c: field 22 of /proc/PID/stat (0 when unreadable). */
unsigned long long proc_starttime(pid_t pid);
void scmd_ctr_conn_closed(struct scmd *d, struct conn *c);
/* Forget c everywhere containers wait on it (container and exec waiters). */
void scmd_ctr_conn_gone(struct scmd *d, struct conn *c);
void scmd_ctr_reap_execs(struct scmd *d);
/* Forget s wherever a container or its endpoint refers to it (s is freed). */
void scmd_ctr_service_gone(struct scmd *d, struct service *s);
/* A provider's container its service no longer runs (replaced by a
 * service restart, or a successor given up): its end is no provider's
 * end, and its record goes once it ends. kill: SIGKILL now; else it is
 * to exit by itself, and is killed if it has not within 10 s. */
void scmd_ctr_let_go(struct scmd *d, const char *name, bool kill);
/* Whether such a container has not ended yet (scmd's restart waits). */
bool scmd_ctr_replaced_running(struct scmd *d);
bool scmd_ctr_control(struct scmd *d, struct conn *c, const char *op, scm_message *m);
/* container-identity.c: the subordinate id range and what follows from it. */
struct container_spec;
struct container_sandbox;
struct container_idrange;
int scmd_ctr_subids_init(struct scmd *d, const char *opt); /* --subids or /etc/sub[ug]id */
void scmd_ctr_idrange(const struct scmd *d, struct container_idrange *ret);
uid_t scmd_ctr_host_uid(const struct scmd *d, const struct container_spec *spec);
void scmd_ctr_endpoint_peers(const struct scmd *d, struct endpoint *ep);
int scmd_ctr_add_binds(struct container_spec *spec, struct container_sandbox *sb,
			 struct json_object *binds, scm_error **ret_err);
/* registry.c: a provider container (name) ended / connected its control
 * socket (through its endpoint, ep_name). */
void service_container_exited(struct scmd *d, struct service *s, const char *name, int status);
/* Its launch failed or timed out: pending connects get e. */
void service_container_failed(struct scmd *d, struct service *s, const char *name, const scm_error *e);
void service_provider_connected(struct scmd *d, struct service *s, const char *ep_name, int fd);
/* provider-container.c: starts s's provider (prog) in a container of its
 * own, named provider-NAME-N; handover: to take over from the running one. */
int provider_ctr_start(struct scmd *d, struct service *s, const char *prog, bool handover, char **ret_name,
		       pid_t *ret_pid, scm_error **ret_err);
/* The end of container name's log on one line, into buf ("" if none). */
void provider_ctr_log_tail(struct scmd *d, const char *name, char *buf, size_t len);

struct decision {
	bool allowed;
	int code;
	char reason[256];
	char origin[512];
	struct json_object *grant; /* {"methods":..,"constraints":..} for the provider */
};

/* policy-hook.c */
int scmd_policy_init(struct scmd *d, scm_error **ret_err);
void scmd_policy_done(struct scmd *d);
int scmd_policy_check_service(struct scmd *d, const char *name, const char *iface, scm_error **ret_err);
/* Refuses an interface that asks for a kind of grant rule (IDL
 * "grant_rules") the policy engine does not know. */
int scmd_policy_check_grant_rules(const scm_idl *idl, const char *origin, scm_error **ret_err);
/* The merged profile for a list of names (NULL, and 0, for no names). */
int scmd_policy_effective(struct scmd *d, char **profiles, struct policy_effective **ret,
			  scm_error **ret_err);
void scmd_policy_decide(struct scmd *d, struct endpoint *ep, struct service *s, struct decision *dec);
/* Loads CONFIG/profiles afresh and re-checks live channels (policy.reload,
 * SIGHUP); all or nothing. *ret_result (may be NULL): the reply's body. */
int scmd_policy_reload(struct scmd *d, struct json_object **ret_result, scm_error **ret_err);
/* Re-checks live channels (all, or only's) against their endpoint's
 * effective profile now, revoking those it no longer allows; cut: the
 * reload's endpoints whose profiles were deleted (NULL: none). */
void scmd_policy_recheck(struct scmd *d, struct endpoint *only, struct json_object *cut, size_t *ret_kept,
			 size_t *ret_revoked);
/* Handles policy.* control ops; false if op is not one. */
bool scmd_policy_control(struct scmd *d, struct conn *c, const char *op, uint32_t id,
			 struct json_object *args);

/* conn.c */
struct conn *conn_new(struct scmd *d, int fd, enum conn_kind kind, struct endpoint *ep);
void conn_close(struct scmd *d, struct conn *c);
/* Marks c dead; the main loop closes it once the current handler is done
 * (closing it at once would pull it from under the caller's iteration). */
void conn_kill(struct scmd *d, struct conn *c);
void conn_reap_dead(struct scmd *d);
/* Sends a frame or queues it (charging the endpoint); a connection over its
 * queue quota is dropped. fds are duplicated when queued, never taken. */
int conn_send(struct scmd *d, struct conn *c, uint8_t type, uint32_t call_id,
	      struct json_object *body, const int *fds, size_t n_fds);
/* The same with a body already in JSON text (an event record). */
int conn_send_raw(struct scmd *d, struct conn *c, uint8_t type, uint32_t call_id, const char *json, size_t len);
int conn_send_error(struct scmd *d, struct conn *c, uint32_t call_id, const scm_error *e);

/* events.c: the live feed of audit records ("events.subscribe") */
#define EVENTS_SUBS_MAX 32
#define EVENTS_QUEUE_MAX (64 * 1024)
void events_init(struct scmd *d);
void events_subscribe(struct scmd *d, struct conn *c, uint32_t id, struct json_object *args);
void events_conn_gone(struct scmd *d, struct conn *c);
/* audit_opts.tap: userdata is the struct scmd */
void events_tap(void *userdata, const char *event, const char *json, size_t len);
int conn_reply_fail(struct scmd *d, struct conn *c, uint32_t call_id, int code, const char *fmt, ...)
	_printf_(5, 6);

/* endpoint.c */
/* A container's endpoint: RUNTIME/endpoints/NAME/scm.sock, the directory
 * being what the container gets (read-only). */
int endpoint_create_dir(struct scmd *d, const char *name, uid_t owner, char **profiles,
			const struct quota *limit, struct endpoint **ret, scm_error **ret_err);
int endpoint_create(struct scmd *d, const char *name, uid_t owner, mode_t mode,
		    char **profiles, const struct quota *limit, struct endpoint **ret,
		    scm_error **ret_err);
/* A labelled endpoint on a listening socket scmd did not make (socket
 * activation, sd.c): fd is taken (closed on failure), path is its file. */
int endpoint_adopt(struct scmd *d, const char *name, int fd, const char *path, uid_t owner,
		   scm_error **ret_err);
struct endpoint *endpoint_find(struct scmd *d, const char *name);
/* restart-load.c: an endpoint a predecessor made, with its listening fd
 * (checked by the caller); strings are copied, profiles taken. */
struct endpoint *endpoint_restore(struct scmd *d, const char *name, const char *path, const char *dir,
				  uid_t owner, char **profiles, const struct quota *limit, int fd);
void endpoint_remove(struct scmd *d, struct endpoint *ep);

/* registry.c */
int service_register(struct scmd *d, struct json_object *manifest, const char *origin,
		     struct service **ret, scm_error **ret_err);
int service_load_file(struct scmd *d, const char *path, scm_error **ret_err);
struct service *service_find(struct scmd *d, const char *name);
void service_unregister(struct scmd *d, struct service *s);
/* Starts the provider if it is not running; pending connects wait. */
void service_activate(struct scmd *d, struct service *s);
void service_reap(struct scmd *d, pid_t pid, int status);
void service_reap_children(struct scmd *d);
void service_stop_all(struct scmd *d);
/* restart-load.c: a provider that a predecessor started (pid is still our
 * child; ctl_fd its control socket, or -1), and its timer's remaining ms. */
int service_adopt_provider(struct scmd *d, struct service *s, enum pstate state, pid_t pid, int ctl_fd,
			   uint64_t timer_ms);
/* Forks and execs a provider (fd 3: its control socket; handover: it
 * takes over from the running one). *ret_pid is set whenever a child was
 * made, even when its exec failed (the error says so). */
int provider_spawn(struct scmd *d, struct service *s, const char *prog, bool handover, pid_t *ret_pid,
		   int *ret_ctl, scm_error **ret_err);

/* service-restart.c: `service.restart`, a provider replaced with its
 * channels (docs/handover.md). */
void svc_restart_request(struct scmd *d, struct conn *c, uint32_t call_id, struct json_object *args);
/* A frame on the (old) provider's control socket of a service being
 * restarted; false when it is none of the handover's. */
bool svc_restart_frame(struct scmd *d, struct service *s, scm_message *m);
void svc_restart_timeout(struct scmd *d, struct service *s);
/* The provider pid of s ended during a handover: true when handled. */
bool svc_restart_reaped(struct scmd *d, struct service *s, pid_t pid, int status);
/* Gives up a handover of s (no-op without one): the request is answered. */
void svc_restart_cancel(struct scmd *d, struct service *s, const char *why);
void svc_restart_conn_gone(struct scmd *d, struct conn *c);
/* SIGCHLD: replaced providers, and new ones that died before taking over */
void svc_restart_reap(struct scmd *d);
/* Why a restart in place of scmd must wait, or NULL. */
const char *svc_restart_busy(struct scmd *d);
/* A provider container's control connection (through ep_name), or its end
 * (e: its launch failed, else status): true when it is the successor of a
 * restart of s, which then takes it. */
bool svc_restart_connected(struct scmd *d, struct service *s, const char *ep_name, int fd);
bool svc_restart_ctr_ended(struct scmd *d, struct service *s, const char *name, const scm_error *e, int status);
/* The grant a channel was made with, marked as handed over. */
struct json_object *handover_grant(struct service *s, struct channel *ch);

/* service-recover.c: a crashed provider's channels recovered from its
 * checkpoint (docs/handover.md, "A provider that crashes"). */
#define CKPT_BYTES_MAX (4u << 20) /* one checkpoint's memfd */
#define CKPT_PER_SEC 50           /* checkpoints a second, on average ... */
#define CKPT_BURST 10             /* ... and in a row */
#define RECOVER_STABLE_USEC (10 * 1000000ull) /* a crash sooner after a recovery revokes */
/* A checkpoint or a recovering provider's frame: true when taken. */
bool svc_recover_frame(struct scmd *d, struct service *s, scm_message *m);
/* The provider pid of s died: true when its channels are being recovered
 * (s->pid is then the new process). */
bool svc_recover_reaped(struct scmd *d, struct service *s, pid_t pid, int status);
bool svc_recover_timeout(struct scmd *d, struct service *s);
void svc_recover_free(struct service *s);
void svc_recover_forget(struct service *s);
void svc_recover_json(struct service *s, struct json_object *o);

/* Sends a frame to the provider over its control socket, queueing what it
 * has no room for. 0, SCM_E_BUSY when too much waits, or -errno. */
int service_send(struct scmd *d, struct service *s, uint8_t type, uint16_t flags,
		 struct json_object *body, const int *fds, size_t n_fds);

/* broker.c */
void broker_connect(struct scmd *d, struct conn *c, uint32_t call_id, struct json_object *args);
/* Hands pending connects of s to its now-ready provider, or fails them. */
void broker_flush_pending(struct scmd *d, struct service *s);
void broker_fail_pending(struct scmd *d, struct service *s, const scm_error *why);

/* pending.c: a connect waiting for s's activation; grant is taken. */
struct pending_connect *pending_add(struct service *s, struct conn *c, uint32_t call_id, uint64_t t_start,
				    uint64_t t_decided, struct json_object *grant, const char *origin);
void pending_free(struct pending_connect *pc);
/* c is closing: forget its pending connects, wherever they wait. */
void pending_drop_conn(struct scmd *d, struct conn *c);

/* channel.c */
/* A channel to s for a caller on ep; provider_fd is the provider's end,
 * owned by the channel from now on (closed by channel_free). */
struct channel *channel_new(struct scmd *d, struct service *s, struct endpoint *ep,
			    const struct ucred *cred, int provider_fd, const char *origin);
/* Lists it, charges ep's channel quota and watches it for hang-up. */
void channel_link(struct scmd *d, struct channel *ch);
/* The same without the hang-up watch, which is queued on d->chan_watch_q:
 * a restart in place serves before it has registered a thousand
 * channels' watches (restart-load.c). Everything else is as after
 * channel_link: listed, counted against the quota, revocable. */
void channel_link_unwatched(struct scmd *d, struct channel *ch);
#define CHAN_WATCH_BATCH 128 /* watches added per loop iteration (~0.25 ms) */
/* Adds up to max queued watches; true while some are left. */
bool channel_watch_queued(struct scmd *d, size_t max);
/* Empties the queue without adding them (the serving copy of a restart,
 * which watches no channel). */
void channel_unqueue_watches(struct scmd *d);
void channel_free(struct scmd *d, struct channel *ch);
void channel_revoke(struct scmd *d, struct channel *ch, int code, const char *fmt, ...) _printf_(4, 5);
struct channel *channel_find(struct scmd *d, uint64_t id);

/* tokens.c: the offload token registry (docs/protocol.md, "Offload
 * tokens"). A provider's CALL on its control socket (token.register,
 * token.redeem) is answered there; false if op is not one. */
#define TOKEN_TTL_DEFAULT_MS 30000u
#define TOKENS_PER_CLIENT 64u    /* live tokens of one endpoint's clients */
#define TOKENS_PER_PROVIDER 1024u /* of one service */
bool tokens_control(struct scmd *d, struct service *s, scm_message *m);
/* A channel ended: the tokens issued on it are dropped (its grant is gone). */
void tokens_drop_channel(struct scmd *d, uint64_t channel);
/* Replies to a provider's call on its control socket. */
int service_reply(struct scmd *d, struct service *s, uint32_t call_id, struct json_object *body,
		  const int *fds, size_t n_fds);
int service_reply_error(struct scmd *d, struct service *s, uint32_t call_id, const scm_error *e);

/* control.c */
void control_dispatch(struct scmd *d, struct conn *c, scm_message *m);
int control_listen(struct scmd *d, scm_error **ret_err);
int control_adopt(struct scmd *d, int fd); /* a predecessor's control socket */

/* sd.c: systemd. scmd_sd_listen takes $LISTEN_FDS (at start, before
 * anything binds); scmd_sd_take hands one fd over by name (-1: none);
 * scmd_sd_control checks and takes "control" (*ret_fd -1 when there is
 * none; an error when it is not what scmd would bind); scmd_sd_adopt_endpoints makes an endpoint of every valid
 * "endpoint-NAME"; scmd_sd_listen_done closes what nobody took. The rest
 * speak sd_notify(3): READY=1 and STATUS=, WATCHDOG=1 pings on a timer at
 * half of $WATCHDOG_USEC, RELOADING=1 around SIGHUP, STOPPING=1. */
int scmd_sd_listen(struct scmd *d, scm_error **ret_err);
int scmd_sd_take(struct scmd *d, const char *name);
int scmd_sd_control(struct scmd *d, const char *path, int *ret_fd, scm_error **ret_err);
void scmd_sd_adopt_endpoints(struct scmd *d);
void scmd_sd_listen_done(struct scmd *d);
int scmd_sd_ready(struct scmd *d);
void scmd_sd_reloading(struct scmd *d);
void scmd_sd_reloaded(struct scmd *d);
void scmd_sd_stopping(struct scmd *d);

/* stats */
void latency_add(struct latency *l, uint64_t us);
struct json_object *latency_json(const struct latency *l);


