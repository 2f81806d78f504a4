/* provider-impl.h: the provider skeleton's own structures, shared by
 * stubs/provider.c (the loop, calls, deferred replies) and
 * stubs/provider-handover.c (a restart with the channels). Internal to
 * libscm. */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "scm/scm.h"
#include "scm-internal/provider-ctl.h"
#include "scm-internal/wire.h"

#define MAX_METHODS 256 /* grant bitmap size; an IDL may not have more */

struct chan {
	int fd;
	scm_grant grant;
	char *service, *caller, *token;
	bool allowed[MAX_METHODS + 1];
	void *data;
	bool broken;          /* drop it after this call */
	struct scm_outq outq; /* replies the client has no room for yet */
	struct scm_call *deferred; /* calls whose owner will reply later */
	unsigned n_deferred;
	unsigned n_carriable; /* of them, calls a handover may carry (scm_call_set_carriable) */
	struct chan *next, **pprev;
};

struct scm_provider {
	const scm_interface_def *iface;
	void *userdata;
	int ctl_fd, epoll_fd;
	struct chan *chans;
	void (*on_close)(const scm_grant *g, void *chdata, void *userdata);
	/* the epoll batch being handled, so a channel closed in it is skipped */
	struct epoll_event *batch;
	int batch_i, batch_n;
	unsigned defer_max;
	bool sweep;  /* a deferred reply broke a channel: close it after the batch */
	int task_fd; /* eventfd: scm_provider_post() woke us */
	pthread_mutex_t task_lock;
	scm_task *task_head, *task_tail;
	struct ctl_calls ctl_calls; /* the provider's own calls to scmd (provider-ctl.c) */
	struct provider_ho *ho;     /* handover (provider-handover.c), NULL until asked */
	int holds;                  /* scm_provider_hold: work a handover waits for */
	void (*on_quiesce)(bool quiet, void *userdata);
	/* checkpoints (provider-checkpoint.c) */
	uint64_t ckpt_last_us; /* when the last one was sent */
	bool ckpt_due;         /* asked for, waits for its turn */
	bool ckpt_saving;      /* save() runs for a checkpoint */
	bool recovered;        /* this process restored a checkpoint after a crash */
};

struct scm_call {
	scm_provider *p;
	struct chan *ch; /* NULL once cancelled */
	uint32_t call_id;
	bool no_reply, replied;
	const char *method;
	/* a deferred call: on the heap, on ch->deferred */
	bool deferred;
	bool carriable, carried; /* may wait across a handover; saved in its state */
	atomic_bool cancelled;
	struct scm_call *heap; /* on the handler's stack copy: where it went */
	struct scm_call *next, **pprev;
};

/* provider.c, for provider-handover.c */
void provider_chan_close_(scm_provider *p, struct chan *c);
/* Watches c for events (0: removes it from the epoll set). */
void provider_chan_watch_(scm_provider *p, struct chan *c, uint32_t events);
int provider_add_channel_(scm_provider *p, scm_message *m);

/* provider-handover.c, for provider.c */
/* A control frame about a handover (op "handover", "handover.abort");
 * false when m is not one. */
bool provider_ho_control_(scm_provider *p, scm_message *m);
/* After each batch: a quiescing provider whose calls are all answered
 * saves its state and answers scmd. */
void provider_ho_poll_(scm_provider *p);
/* The first dispatch of a provider started with a state it never took. */
int provider_ho_check_(scm_provider *p, scm_error **ret_err);
/* A channel handed over by scmd: its saved data, restored (0), or a
 * refusal (the channel is closed). */
int provider_ho_channel_(scm_provider *p, struct chan *c, json_object *grant);
bool provider_ho_quiet_(const scm_provider *p); /* no channel is read */
/* provider-handover.c: a deferred call on the heap, on c's list (made by
 * scm_call_defer, and for a call restored from a handover); NULL: no memory */
scm_call *provider_call_deferred_(scm_provider *p, struct chan *c, uint32_t call_id, const char *method,
				  bool no_reply);
bool provider_ho_handed_(const scm_provider *p); /* state saved: channel ends are not shut down */
void provider_ho_free_(scm_provider *p);
/* provider-handover.c, for provider-checkpoint.c: the state saved as for a
 * handover (memfd in *ret_fd, its fds in *ret_fds until _done_) */
int provider_ho_save_(scm_provider *p, int *ret_fd, const int **ret_fds, size_t *ret_n_fds, scm_error **ret_err);
void provider_ho_save_done_(scm_provider *p);
/* provider-checkpoint.c, for provider.c: the epoll timeout that lets a
 * checkpoint that waits for its turn go in time, and sending it then */
int provider_ckpt_timeout_(scm_provider *p, int timeout_ms);
void provider_ckpt_poll_(scm_provider *p);
/* provider.c: marks the task eventfd in the epoll set */
extern char provider_task_marker_;
/* provider-setup.c: runs the tasks workers posted */
void provider_run_tasks_(scm_provider *p);
/* provider-setup.c: the "ready" event (restored: after a handover) */
int provider_send_ready_(scm_provider *p, bool restored);
/* provider-handover.c: started to take over ($SCM_PROVIDER_HANDOVER) */
int provider_ho_started_(scm_provider *p);
