/* vhdx-internal.h: on-disk layout constants of MS-VHDX and the handle
 * structure shared by the engine's files. Not installed. */
#pragma once
#include <endian.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>

#include "scm/macro.h"
#include "vhdx.h"

#define KiB 1024ull
#define MiB (1024ull * 1024ull)

#define VHDX_FTI_OFF 0
#define VHDX_HDR1_OFF (64 * KiB)
#define VHDX_HDR2_OFF (128 * KiB)
#define VHDX_RT1_OFF (192 * KiB)
#define VHDX_RT2_OFF (256 * KiB)
#define VHDX_HDR_SIZE 4096u
#define VHDX_RT_SIZE (64 * KiB)
#define VHDX_RT_MAX_ENTRIES 2047u
#define VHDX_META_TABLE_SIZE (64 * KiB)
#define VHDX_META_MAX_ENTRIES 2047u
#define VHDX_MAX_VSIZE (64ull * 1024 * 1024 * MiB) /* 64 TiB */
#define VHDX_LOG_SECTOR 4096u
#define VHDX_BITMAP_BLOCK MiB
#define VHDX_SECTORS_PER_BITMAP (1ull << 23)

#define SIG_FTI 0x656c696678646876ull /* "vhdxfile" */
#define SIG_HEAD 0x64616568u          /* "head" */
#define SIG_REGI 0x69676572u          /* "regi" */
#define SIG_META 0x617461646174656dull /* "metadata" */
#define SIG_LOGE 0x65676f6cu          /* "loge" */
#define SIG_ZERO 0x6f72657au          /* "zero" */
#define SIG_DESC 0x63736564u          /* "desc" */
#define SIG_DATA 0x61746164u          /* "data" */

#define BAT_STATE(e) ((unsigned)((e)&7u))
#define BAT_OFF(e) (((uint64_t)(e) >> 20) << 20)
#define BAT_MAKE(off, st) ((((uint64_t)(off) / MiB) << 20) | (uint64_t)(st))
#define SB_PRESENT 6u

/* Well-known GUIDs, written as text for readability. */
#define GUID_BAT "{2DC27766-F623-4200-9D64-115E9BFD4A08}"
#define GUID_METADATA "{8B7CA206-4790-4B9A-B8FE-575F050F886E}"
#define GUID_FILE_PARAMS "{CAA16737-FA36-4D43-B3B6-33F0AA44E76B}"
#define GUID_VDISK_SIZE "{2FA54224-CD1B-4876-B211-5DBED83BF4B8}"
#define GUID_PAGE83 "{BECA12AB-B2E6-4523-93EF-C309E000C746}"
#define GUID_LSEC "{8141BF1D-A96F-4709-BA47-F233A8FAAB5F}"
#define GUID_PSEC "{CDA348C7-445D-4471-9CC9-E9885251C556}"
#define GUID_PARENT_LOC "{A8D35F2D-B30B-454D-ABF7-D3D84834AB0C}"
#define GUID_PARENT_TYPE_VHDX "{B04AEFB7-D19E-4A81-B789-25B8E9445913}"

static inline uint16_t get16(const void *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint32_t get32(const void *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t get64(const void *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline void put16(void *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void put32(void *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void put64(void *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

struct vhdx_header {
	bool valid;
	uint64_t seq;
	vhdx_guid file_write, data_write, log_guid;
	uint16_t log_version, version;
	uint32_t log_length;
	uint64_t log_offset;
};

/* A sector overlay: what a pending log says, served from memory when the
 * file is opened without writing the replay back. */
struct vhdx_overlay {
	uint64_t off, len;
	uint8_t *data; /* NULL: zeros */
};

struct vhdx_page {
	uint64_t off;
	uint8_t data[VHDX_LOG_SECTOR];
};

struct vhdx {
	int fd;
	int dfd; /* O_DIRECT twin of fd for aligned payload I/O, or -1 */
	char *path;
	char *rel; /* under a scope: the path relative to the granted directory */
	dev_t dev; /* the file's identity (chains and the provider compare it) */
	ino_t ino;
	unsigned lock_mode; /* VHDX_LOCK_* held on fd */
	bool ro;
	bool keep_identity;
	uint64_t file_size; /* logical end of file (max of st_size, log's LastFileOffset) */
	uint64_t alloc_end; /* where the next block goes, 1 MiB aligned */

	struct vhdx_header hdr; /* current header */
	int hdr_slot;           /* 0 or 1: which copy is current */
	bool hdr_other_valid;

	uint64_t bat_off, bat_len, meta_off, meta_len;
	uint32_t block_size, lsec, psec;
	uint64_t vsize;
	bool has_parent, leave_alloc;
	vhdx_guid page83;
	char parent_linkage[40];
	char parent_linkage2[40]; /* "" when absent or not a GUID */
	char *loc_relative, *loc_absolute, *loc_volume; /* UTF-8 */
	/* every locator entry as recorded, in order (rewrites keep them) */
	struct vhdx_locator_entry *loc_kv;
	size_t n_loc_kv;

	uint64_t chunk_ratio, data_blocks, bitmap_blocks, bat_entries;
	uint64_t *bat;       /* host-endian */
	uint8_t *bat_dirty;  /* per 4 KiB page of the BAT region */
	size_t bat_pages;
	size_t n_dirty;      /* dirty 4 KiB metadata pages, BAT and bitmaps */
	struct vhdx_page *extra; /* other metadata pages for the next commit */
	size_t n_extra;
	uint8_t **bitmap;    /* per chunk: 1 MiB, loaded lazily */
	uint8_t **bm_dirty;  /* per chunk: 256 page flags */

	struct vhdx *parent;
	/* a remote parent (has_parent, parent NULL): remote.pread set */
	struct vhdx_remote remote;

	struct vhdx_overlay *ov;
	size_t n_ov;
	bool log_replayed, log_pending;
	scm_error *log_note; /* why log entries were ignored, for check */
	bool log_note_error;   /* an entry under the header's LogGuid was refused */
	uint64_t log_seq, log_head;

	bool file_touched; /* FileWriteGuid renewed this session */
	bool data_touched; /* DataWriteGuid renewed this session */
	/* The last failure (vhdx_errmsg). Reads may fail on several threads
	 * at once (vhdx.h), so the chain is swapped and read under err_lock. */
	scm_error *err;
	pthread_mutex_t err_lock;
};

/* errors */
/* Replaces h's last failure with one observation made here; returns code. */
#define vhdx_fail(h, code, ...) vhdx_fail_at((h), __FILE__ ":" _SCM_STR(__LINE__), (code), __VA_ARGS__)
int vhdx_fail_at(vhdx *h, const char *where, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Replaces h's last failure with chain e (taken). */
void vhdx_fail_set(vhdx *h, scm_error *e);
/* Replaces h's last failure with why (taken) said as "prefix: what": one
 * observation, still with why's where and causes (a layer that only names
 * the file adds no observation of its own). Returns code. */
int vhdx_fail_prefix(vhdx *h, scm_error *why, int code, const char *prefix);
/* The same for a chain about to be handed up (create): returns it. */
scm_error *vhdx_error_prefix(scm_error *why, int code, const char *prefix);
/* A parse's message, for the places that name two alternatives in one. */
static inline const char *vhdx_why(const scm_error *e)
{
	return e && e->message ? e->message : "out of memory";
}
/* A read through the parent failed with r: h's last failure is the
 * parent's (its chain, where included). Returns r. */
int vhdx_fail_parent(vhdx *h, int r);
/* Moves h's last failure onto *ret_err (the open and create paths). */
void vhdx_fail_take(vhdx *h, scm_error **ret_err);

/* file I/O: full reads (zero past EOF, overlay applied), full writes */
int vhdx_pread(vhdx *h, void *buf, size_t len, uint64_t off);
/* Set by vhdx_read_nowait() for its thread: preads fail with -EAGAIN
 * rather than wait for the storage. */
extern __thread bool vhdx_nowait;
int vhdx_pwrite(vhdx *h, const void *buf, size_t len, uint64_t off);
/* payload I/O: through dfd when aligned (see VHDX_O_DIRECT) */
int vhdx_data_pread(vhdx *h, void *buf, size_t len, uint64_t off);
int vhdx_data_pwrite(vhdx *h, const void *buf, size_t len, uint64_t off);

/* headers (vhdx-header.c) */
int vhdx_header_parse(const uint8_t *buf, struct vhdx_header *ret, scm_error **ret_err);
void vhdx_header_build(const struct vhdx_header *h, uint8_t buf[VHDX_HDR_SIZE]);
int vhdx_header_update(vhdx *h); /* writes the next header seq to both slots */
int vhdx_region_parse(const uint8_t *buf, uint64_t file_size, vhdx *h, scm_error **ret_err);

/* guids */
int vhdx_guid_const(const char *s, vhdx_guid *ret);
bool vhdx_guid_eq(const vhdx_guid *a, const vhdx_guid *b);

/* metadata (vhdx-meta.c) */
int vhdx_meta_load(vhdx *h);
void vhdx_geometry(vhdx *h);
/* (Re)reads the parent locator item into h (loc_*, parent_linkage*). */
int vhdx_locator_parse(vhdx *h, const uint8_t *p, uint32_t len);

/* remote parents (vhdx-remote.c) */
/* Connects h's remote parent when its locator names one (VHDX_LOC_NBD):
 * 0, or -errno; 1 when the parent is a file. Without connect
 * (VHDX_O_NO_REMOTE) it only says which: 0 leaves h without a parent. */
int vhdx_remote_attach(vhdx *h, const struct vhdx_scope *scope, bool connect, scm_error **ret_err);
/* Opens uri for create: the opener of scope (or host mode's). */
int vhdx_remote_connect(const struct vhdx_scope *scope, const char *uri, struct vhdx_remote *ret,
			scm_error **ret_err);
void vhdx_remote_close(struct vhdx_remote *r);
/* Reads [off, off + len) from the remote parent (h's last failure says
 * why not); -EAGAIN under vhdx_nowait (the network is never waited for
 * there). */
int vhdx_remote_fetch(vhdx *h, uint8_t *buf, uint64_t len, uint64_t off);
/* The value of locator key k, or NULL. */
const char *vhdx_locator_get(const vhdx *h, const char *k);

/* parent locator (vhdx-locator.c) */
size_t vhdx_put_utf16(uint8_t *out, const char *s);
size_t vhdx_locator_build(uint8_t *out, size_t cap, const vhdx_guid *parent_dwg, const char *rel,
			  const char *abs);
int vhdx_locator_paths(const char *child, const char *parent, bool canonical, char **ret_rel,
		       char **ret_abs);
int vhdx_locator_rewrite(vhdx *h, const char *child_path, const char *parent_path, bool canonical);
/* Is v a path only Windows can resolve ("C:\\...", "\\\\?\\...", "\\\\server\\...")? */
bool vhdx_locator_win_path(const char *v);
/* The entries to write when the parent was found at rel/abs (our paths):
 * every entry of old kept as it was, except relative_path (renewed) and an
 * absolute_win32_path we wrote ourselves (a host path, renewed); a
 * Windows-form absolute_win32_path, volume_path, parent_linkage2 and keys
 * we do not know stay. Missing path keys are added. Values point into
 * old or at rel/abs (nothing is copied); ret has room for n + 2. */
size_t vhdx_locator_merge(const struct vhdx_locator_entry *old, size_t n, const char *rel,
			  const char *abs, struct vhdx_locator_entry *ret);
size_t vhdx_locator_build_kv(uint8_t *out, size_t cap, const struct vhdx_locator_entry *kv, size_t n);

/* log (vhdx-log.c) */
int vhdx_log_load(vhdx *h, bool write_back);
/* frees h and its chain: closes the fds, commits nothing (vhdx-open.c) */
vhdx *vhdx_free(vhdx *h);
int vhdx_log_commit(vhdx *h); /* dirty BAT/bitmap pages -> log -> final place */

/* blocks (vhdx-io.c) */
static inline uint64_t vhdx_bat_index(const vhdx *h, uint64_t block)
{
	return block + block / h->chunk_ratio;
}
static inline uint64_t vhdx_sb_index(const vhdx *h, uint64_t chunk)
{
	return chunk * (h->chunk_ratio + 1) + h->chunk_ratio;
}
int vhdx_bitmap_get(vhdx *h, uint64_t chunk, uint8_t **ret);
/* Sets a BAT entry and marks its page for the next log commit. */
void vhdx_bat_set(vhdx *h, uint64_t idx, uint64_t v);
int vhdx_bat_validate(vhdx *h);
/* vhdx_open_adopt's carried block table pages, applied (not checked) */
int vhdx_carry_apply(vhdx *h, const uint8_t *buf, size_t len);
int vhdx_bat_unique(vhdx *h);
int vhdx_ensure_writable(vhdx *h, bool user_data);

/* image locks (vhdx-lock.c), qemu's bytes and rules */
enum { VHDX_LOCK_NONE, VHDX_LOCK_READER, VHDX_LOCK_WRITER, VHDX_LOCK_SHARE_ALL };
enum {
	VHDX_PERM_READ = 0x1,            /* BLK_PERM_CONSISTENT_READ */
	VHDX_PERM_WRITE = 0x2,           /* BLK_PERM_WRITE */
	VHDX_PERM_WRITE_UNCHANGED = 0x4, /* BLK_PERM_WRITE_UNCHANGED */
	VHDX_PERM_RESIZE = 0x8,          /* BLK_PERM_RESIZE */
	VHDX_PERM_ALL = 0xf,
};
int vhdx_lock_take(vhdx *h, unsigned mode);
/* the same for a file adopted from a predecessor: applied, not tested */
int vhdx_lock_adopt(vhdx *h, unsigned mode);
void vhdx_lock_release(int fd);

/* scoped paths (vhdx-scope.c) */
int vhdx_scope_rel(const struct vhdx_scope *s, const char *child_rel, const char *loc, char **ret_rel);
char *vhdx_scope_full(const struct vhdx_scope *s, const char *rel, bool canonical);
int vhdx_scope_open(const struct vhdx_scope *s, const char *rel, bool ro, int *ret_fd,
		    scm_error **ret_err);
int vhdx_reopen_fd(int fd, int mode, int *ret_fd);
int vhdx_scope_dir(const struct vhdx_scope *s, const char *path, int *ret_dirfd, const char **ret_name,
		   scm_error **ret_err);
