/* provider-offload.h: offload copies with tokens (docs/vdisk.md "Offload
 * copy"). provider-offload.c is the source side (tokens, offload_read,
 * the token channel's offload_map, offload_fetch, offload_check);
 * provider-offload-copy.c the destination side (offload_write), whose
 * copying thread is provider-offload-stage.c. Internal to
 * scm-vdisk-provider. */
#pragma once
#include "offload-map.h"
#include "provider.h"

#define OFFLOAD_TOKEN_HEX 128          /* 512 random bits */
#define OFFLOAD_TOKENS_PER_CHANNEL 32  /* live tokens a channel may hold */
#define OFFLOAD_TOKENS_MAX 1024        /* in the provider */
#define OFFLOAD_MAP_MAX 8192           /* extent records per offload_map reply (192 KiB) */
#define OFFLOAD_COPIES_MAX 8           /* offload_write copies running at once */

/* The write/trim hook (provider-io.c, on a worker, before the write): the
 * tokens of d whose range meets what is about to be written are
 * invalidated. ex/n for writev, else [off, off + len). */
void offload_touch(struct disk *d, const struct vdisk_extent *ex, size_t n, uint64_t off, uint64_t len);
/* Every token of d is invalidated (a job starts on it: blocks may move). */
void offload_drop_disk(struct disk *d, const char *why);
/* The tokens issued on handle n of c (0: every handle) are dropped. */
void offload_drop_handle(struct channel *c, uint64_t n);

/* A token channel ended (on_close): its token is used up or abandoned. */
void offload_token_channel_closed(const char *hex);

bool offload_hex_valid(const char *hex);

/* Copies as jobs: listed by job_list (kind "offload", ids from
 * OFFLOAD_JOB_ID0 on, to the client account that started them), and
 * cancelled by job_cancel while they stage (the destination unchanged). */
#define OFFLOAD_JOB_ID0 (1ull << 40)
void offload_jobs_json(scm_call *call, json_object *arr);
int offload_job_cancel(scm_call *call, uint64_t id);
/* The provider stops: running copies are cancelled and their threads
 * waited for (before the worker pool stops). */
void offload_shutdown(void);

int do_offload_read(scm_call *call, uint64_t handle, uint64_t offset, uint64_t length, uint64_t ttl_ms, void *ud);
int do_offload_write(scm_call *call, uint64_t handle, const char *token, uint64_t offset, void *ud);
int do_offload_map(scm_call *call, const char *token, uint64_t offset, void *ud);
int do_offload_fetch(scm_call *call, const char *token, uint64_t offset, uint64_t length, void *ud);
int do_offload_check(scm_call *call, const char *token, void *ud);
