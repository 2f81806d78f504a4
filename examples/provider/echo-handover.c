/* echo-handover: the echo service, restartable with its channels
 * (docs/handover.md). It counts calls, in all and per channel; the counts
 * go from the old process to the new one at `scmctl service restart echo`,
 * and clients never see the switch: greet says "call N here, M in all"
 * and the numbers carry on. sleep answers from a thread (a deferred
 * reply): a restart waits for it, the old process answers it.
 *
 * With "recover": true in its manifest it also survives a crash: each
 * call sends a checkpoint of the counts to scmd (rate-limited by libscm),
 * and a new process started after a crash takes the channels over with
 * the counts of the last one (docs/handover.md, "A provider that
 * crashes").
 *
 *   --state-version N  writes state version N (reads 1 to N): what a newer
 *                      build does, for the refusal tests
 *   --pad BYTES        adds BYTES of padding to each state: a checkpoint
 *                      over scmd's bound, for the refusal test */
#include <errno.h>
#include <pthread.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scm/echo-provider.h"

static uint64_t total; /* calls served by this process and its predecessors */
static size_t pad;     /* --pad */
static scm_provider *provider;

struct chan_count {
	uint64_t calls;
};

static uint64_t count(scm_call *call)
{
	struct chan_count *c = scm_call_channel_data(call);
	if (!c && (c = calloc(1, sizeof *c)))
		scm_call_set_channel_data(call, c);
	total++;
	uint64_t n = c ? ++c->calls : 0;
	/* before the reply: a recovery then knows of every call answered
	 * (but those of the last SCM_CHECKPOINT_MIN_MS, which go a little later) */
	scm_error *e = NULL;
	if (scm_provider_checkpoint(provider, &e) != 0)
		scm_error_free(e);
	return n;
}

static int do_ping(scm_call *call, void *ud)
{
	count(call);
	return scm_echo_ping_reply(call);
}

static int do_echo(scm_call *call, const void *data, size_t len, void *ud)
{
	count(call);
	return scm_echo_echo_reply(call, data, len);
}

static int do_greet(scm_call *call, const char *name, void *ud)
{
	char s[256];
	uint64_t here = count(call);
	snprintf(s, sizeof s, "hello, %s (call %llu here, %llu in all)", name, (unsigned long long)here,
		 (unsigned long long)total);
	return scm_echo_greet_reply(call, s);
}

struct nap {
	scm_task task;
	scm_call *call;
	uint64_t ms;
};

static void nap_done(scm_task *t)
{
	struct nap *n = (struct nap *)t;
	scm_echo_sleep_reply(n->call);
	free(n);
}

static void *nap_thread(void *arg)
{
	struct nap *n = arg;
	struct timespec ts = { (time_t)(n->ms / 1000), (long)(n->ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	scm_provider_post(provider, &n->task);
	return NULL;
}

static int do_sleep(scm_call *call, uint64_t ms, void *ud)
{
	count(call);
	if (ms > 60000)
		return scm_call_reply_error(call, SCM_ECHO_E_TOOLONG, "%llu ms is over 60000", (unsigned long long)ms);
	struct nap *n = calloc(1, sizeof *n);
	pthread_t t;
	if (!n)
		return -ENOMEM;
	*n = (struct nap){ .task.fn = nap_done, .ms = ms };
	if (!(n->call = scm_call_defer(call))) {
		free(n);
		return 0; /* answered busy by libscm */
	}
	if (pthread_create(&t, NULL, nap_thread, n) != 0) {
		scm_call_reply_error(n->call, -EAGAIN, "no thread for the sleep");
		free(n);
		return 0;
	}
	pthread_detach(t);
	return 0;
}

static void on_close(const scm_grant *g, void *chdata, void *ud)
{
	free(chdata);
}

/* ---- the handover: what goes from the old process to the new one ---- */
static json_object *save(void *ud, scm_error **ret_err)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "total", json_object_new_int64((int64_t)total));
	if (pad) {
		char *b = malloc(pad + 1);
		if (b) {
			memset(b, 'x', pad);
			b[pad] = 0;
			json_object_object_add(o, "pad", json_object_new_string(b));
			free(b);
		}
	}
	return o;
}

static json_object *save_channel(const scm_grant *g, void *chdata, void *ud)
{
	struct chan_count *c = chdata;
	return c ? json_object_new_int64((int64_t)c->calls) : NULL;
}

static int restore(json_object *state, uint32_t version, void *ud, scm_error **ret_err)
{
	total = (uint64_t)json_object_get_int64(json_object_object_get(state, "total"));
	return 0;
}

static int restore_channel(const scm_grant *g, json_object *saved, uint32_t version, void **ret_chdata,
			   void *ud)
{
	struct chan_count *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->calls = (uint64_t)json_object_get_int64(saved);
	*ret_chdata = c;
	return 0;
}
/* ---- */

static const scm_echo_handlers handlers = { .ping = do_ping, .echo = do_echo, .greet = do_greet,
					    .sleep = do_sleep };

int main(int argc, char **argv)
{
	scm_echo_skeleton sk = { &handlers, NULL };
	scm_handover_ops ops = { .version = 1, .min_version = 1, .save = save, .save_channel = save_channel,
				 .restore = restore, .restore_channel = restore_channel };
	scm_provider *p = NULL;
	scm_error *err = NULL;

	if (argc == 3 && strcmp(argv[1], "--state-version") == 0)
		ops.version = (uint32_t)atoi(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--pad") == 0)
		pad = (size_t)strtoull(argv[2], NULL, 10);
	if (scm_echo_provider_new(&sk, &p, &err) != 0)
		goto fail;
	provider = p;
	scm_provider_on_close(p, on_close);
	if (scm_provider_handover(p, &ops, &err) != 0 || scm_provider_run(p, &err) != 0)
		goto fail;
	scm_provider_free(p);
	return 0;
fail:
	fprintf(stderr, "echo-handover: ");
	scm_error_print(err, stderr);
	scm_error_free(err);
	scm_provider_free(p);
	return 1;
}
