/* vhdx.h: the VHDX virtual-disk engine (MS-VHDX), as a small C library.
 *
 * A handle is one open VHDX file plus, for a differencing disk, its parent
 * chain (opened read-only). Offsets and lengths given to read/write/trim are
 * bytes and must be multiples of the logical sector size. Metadata updates
 * (BAT entries, sector bitmaps) are written through the VHDX log at flush
 * time, so a crash leaves either the old or the new metadata; data written
 * before a successful vhdx_flush() survives a crash.
 *
 * Threads: a handle is not locked. vhdx_read() calls on a disk without
 * parent may run concurrently with each other (no shared mutable state),
 * but not with write, trim, flush or close.
 *
 * Errors (stubs/include/scm/error.h): functions return 0 or a negative
 * errno. Open and create push an observation chain that names the
 * structure at fault onto *ret_err; on a handle, the last failure's chain
 * stays in the handle (vhdx_error, vhdx_errmsg) until the next one. The
 * engine never prints. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <scm/error.h>

typedef struct vhdx vhdx;

typedef struct vhdx_guid {
	uint8_t b[16]; /* on-disk byte order */
} vhdx_guid;

struct vhdx_scope;

/* Remote parents (docs/vdisk.md "Remote parents"): a differencing disk
 * whose parent locator holds VHDX_LOC_NBD (an NBD URI, instead of paths)
 * reads what it does not hold from there, and a read-write handle keeps
 * what it fetched (copy-on-read). The engine knows no network: a caller
 * that allows remote parents hands it an opener (the scope's, or in host
 * mode vhdx_set_remote_opener's), which checks the URI and connects. */
#define VHDX_LOC_NBD "scm_nbd_parent"
struct vhdx_remote {
	/* reads exactly len bytes at off; on failure pushes why onto *ret_err
	 * and returns -errno (never short or wrong data) */
	int (*pread)(void *ud, void *buf, uint64_t len, uint64_t off, scm_error **ret_err);
	void (*close)(void *ud);
	void *ud;
	uint64_t size; /* the export's size, bytes */
	char *uri;     /* canonical form (malloc'd; the engine frees it) */
};
typedef int (*vhdx_remote_open_fn)(const char *uri, void *userdata, struct vhdx_remote *ret,
				   scm_error **ret_err);
/* Is s a remote parent's URI (nbd://, nbd+unix://, nbds://...) rather
 * than a path? */
bool vhdx_parent_is_remote(const char *s);
/* Host mode (no scope): the opener for remote parents (NULL: refused). */
void vhdx_set_remote_opener(vhdx_remote_open_fn fn, void *userdata);

struct vhdx_create_opts {
	uint64_t size;               /* virtual size, bytes; 0 with parent = parent's */
	uint32_t block_size;         /* 0 = 32 MiB (2 MiB for differencing) */
	uint32_t sector_size;        /* logical: 512 or 4096; 0 = 512 (parent's) */
	uint32_t physical_sector_size; /* 0 = 4096 */
	bool fixed;                  /* allocate every block now */
	const char *parent;          /* differencing: parent path, or a remote
				      * parent's URI (vhdx_parent_is_remote) */
	/* Keep these identities (compact/convert of a disk that has children);
	 * NULL = new random ones. */
	const vhdx_guid *data_write_guid;
	const vhdx_guid *page83;
	/* Refuse a disk whose block table would be larger (0 = no cap): the
	 * provider passes the cap it would open the disk with. */
	uint64_t bat_max;
	/* Create path (and find parent) beneath this scope (see below), or
	 * NULL for host paths. */
	const struct vhdx_scope *scope;
};

enum {
	VHDX_O_RDONLY = 1u << 0,
	/* Open a differencing chain even when a parent's DataWriteGuid does not
	 * match the child's parent_linkage; forces read-only. */
	VHDX_O_IGNORE_PARENT_ID = 1u << 1,
	/* Do not replay a pending log (check without --repair): open reports it
	 * in info.log_pending and serves the replayed view from memory. */
	VHDX_O_NO_REPLAY = 1u << 2,
	/* Writes do not renew DataWriteGuid: for copying the same contents
	 * into a new file (compact) that children must still accept. */
	VHDX_O_KEEP_IDENTITY = 1u << 3,
	/* Payload I/O whose buffer, offset and length are 4 KiB aligned
	 * bypasses the page cache (O_DIRECT), when the file system allows it;
	 * metadata and unaligned I/O stay buffered. */
	VHDX_O_DIRECT = 1u << 4,
	/* Read-only: take the reader's lock byte only and share every
	 * permission, so a writer's locks do not stop us (qemu's force-share,
	 * qemu-img -U). The data may change under the reader. */
	VHDX_O_FORCE_SHARE = 1u << 5,
	/* Take no lock at all (the provider's second look at a chain it
	 * already holds locked). */
	VHDX_O_NO_LOCK = 1u << 6,
	/* Open a differencing disk without its parent (info and check of a
	 * disk whose parent is not here): what the file itself says; reads
	 * are refused. Forces read-only. */
	VHDX_O_NO_PARENT = 1u << 7,
	/* A remote parent is not connected (local parents are opened as
	 * usual): the provider's probe of a chain, which needs its files, not
	 * the network (vhdx_remote_named says what it would connect to).
	 * Reads of what only the parent holds are refused. Forces read-only. */
	VHDX_O_NO_REMOTE = 1u << 8,
};

/* Where a chain may come from (the provider's grant). Every file, the top
 * one and each parent, is opened beneath dirfd with openat2(2)
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (a walk of O_NOFOLLOW opens where
 * openat2 is missing): no symbolic link is followed, no ".." climbs out.
 * Parent locators are read relative to the grant: relative_path against
 * the child's directory, absolute_win32_path only when it names a path
 * under dir (or dir_real). Each file's path must also pass allow(). Any
 * parent that cannot be had this way is refused with one message that
 * says nothing about files outside the grant. */
struct vhdx_scope {
	int dirfd;            /* the granted directory (O_PATH is enough) */
	const char *dir;      /* its path as the grant names it ("/" allowed) */
	const char *dir_real; /* its canonical path, or NULL */
	bool (*allow)(const char *path, void *userdata); /* or NULL */
	void *userdata;
	/* Cap on the block tables of the whole chain, bytes (0 = the engine's
	 * default, VHDX_BAT_MAX): checked before anything is allocated. */
	uint64_t bat_max;
	/* Remote parents this scope allows (the opener checks the URI against
	 * the grant before it connects); NULL: a remote parent is refused. */
	vhdx_remote_open_fn remote;
	void *remote_userdata;
};

/* The directory of path (a file beneath the scope, allowed by it), opened
 * O_RDONLY beneath the scope as create would reach it: for files kept
 * beside a disk (the provider's job journals). */
int vhdx_scope_opendir(const struct vhdx_scope *s, const char *path, int *ret_dirfd, scm_error **ret_err);

/* Without a scope, one file's block table may take this much memory. */
#define VHDX_BAT_MAX (1024ull << 20)

/* Payload block states (BAT entry bits 0-2). */
enum {
	VHDX_PB_NOT_PRESENT = 0,
	VHDX_PB_UNDEFINED = 1,
	VHDX_PB_ZERO = 2,
	VHDX_PB_UNMAPPED = 3,
	VHDX_PB_FULLY_PRESENT = 6,
	VHDX_PB_PARTIALLY_PRESENT = 7,
};

#define VHDX_CHAIN_MAX 16

/* One key/value entry of a parent locator (UTF-8). */
struct vhdx_locator_entry {
	char *key, *value;
};

struct vhdx_info {
	uint64_t virtual_size;
	uint32_t block_size;
	uint32_t logical_sector_size;
	uint32_t physical_sector_size;
	bool fixed;             /* LeaveBlocksAllocated */
	bool differencing;      /* HasParent */
	bool read_only;
	bool log_replayed;      /* a pending log was replayed at open */
	bool log_pending;       /* a pending log was found and not written back */
	uint64_t file_size;     /* apparent size */
	uint64_t disk_usage;    /* allocated bytes (st_blocks) */
	uint64_t blocks_total;
	uint64_t blocks[8];     /* count per payload state (index = state) */
	uint64_t bitmap_blocks_present;
	uint64_t header_sequence;
	vhdx_guid file_write_guid, data_write_guid, log_guid, page83;
	char parent_linkage[40]; /* "{...}" or "" */
	/* chain[0] is this file, chain[n-1] the base */
	size_t chain_len;
	const char *chain[VHDX_CHAIN_MAX];
	/* the parent locator as recorded (Windows separators), or NULL */
	const char *parent_relative_path, *parent_absolute_path;
	const char *parent_volume_path;
	char parent_linkage2[40]; /* "{...}" or "" */
	/* every locator entry as the file records it, in order */
	const struct vhdx_locator_entry *locator;
	size_t locator_len;
	/* opened with VHDX_O_NO_PARENT: a differencing disk seen alone */
	bool parent_missing;
	/* the parent is remote: its URI as recorded (also the chain's last
	 * entry), or NULL */
	const char *remote_parent;
};

/* One range of a map: state is "allocated" (data in this file), "zero",
 * "unmapped", "parent" (read from the parent) or "partial" (some sectors in
 * this file, the rest from the parent). */
struct vhdx_map_range {
	uint64_t start, length;
	const char *state;
	uint64_t file_offset; /* of the block, for "allocated"/"partial"; else 0 */
};
typedef int (*vhdx_map_fn)(const struct vhdx_map_range *r, void *userdata);

int vhdx_create(const char *path, const struct vhdx_create_opts *opts, scm_error **ret_err);
int vhdx_open(const char *path, unsigned flags, vhdx **ret, scm_error **ret_err);
/* Opens path (absolute, under scope->dir) and its chain beneath the scope. */
int vhdx_open_scoped(const struct vhdx_scope *scope, const char *path, unsigned flags, vhdx **ret,
		     scm_error **ret_err);
/* Opens the file behind fd (the caller's; the engine keeps a reopened
 * copy of its own, never the path) as path, its chain beneath scope (NULL:
 * parents wherever the locator points, as vhdx_open). */
int vhdx_open_fd(int fd, const char *path, const struct vhdx_scope *scope, unsigned flags, vhdx **ret,
		 scm_error **ret_err);
/* Builds a handle on files another process has open (the vdisk provider
 * handed over, docs/handover.md): fds[0] is the top file, fds[i] its i-th
 * parent, each opened with the access the handle needs (the top O_RDWR
 * unless VHDX_O_RDONLY), paths their names for messages. Nothing is
 * looked up by name or locator: a parent is fds[i], and must still be the
 * one its child's linkage names; n must be the chain's length. The image
 * locks are taken again on the same open file descriptions, which is a
 * no-op for a holder: the locks never lapse. fds are borrowed. carry (may
 * be NULL, carry_len 0): block table pages the old process had not
 * committed (vhdx_carry_get), applied over the top file's table before it
 * is checked, and dirty in the new handle. */
int vhdx_open_adopt(const int *fds, const char *const *paths, size_t n, unsigned flags, const uint8_t *carry,
		    size_t carry_len, vhdx **ret, scm_error **ret_err);
/* The top file's write session: which identity GUIDs its header got anew
 * (MS-VHDX: FileWriteGuid before the first write after an open,
 * DataWriteGuid before the first change of user data) and where its log
 * stands. A handover carries it: the file stays open across it (the same
 * open file description), so the new process renews no GUID and appends
 * to the same log (vhdx_open_adopt reads no log: the old process
 * committed everything in place, and a replay would rewrite the header
 * under it). _set: -EINVAL for a log position outside the log. */
enum { VHDX_SESSION_FILE = 1u << 0, VHDX_SESSION_DATA = 1u << 1 };
struct vhdx_session {
	unsigned touched;
	uint64_t log_seq, log_head;
};
void vhdx_session_get(const vhdx *h, struct vhdx_session *ret);
int vhdx_session_set(vhdx *h, const struct vhdx_session *s);
/* Writes the dirty metadata (block table, bitmaps) through the log into
 * place, without vhdx_flush's final fdatasync: another open of the file
 * then reads what this handle wrote (durable or not, as before). */
int vhdx_commit(vhdx *h);
/* A handover without a commit (provider-handover.c): the block table pages
 * changed since the last commit go to the process that adopts the file,
 * which applies them over the table it reads (vhdx_open_adopt's carry,
 * checked as the file's own table is, then dirty there: committed at its
 * next flush or close). What the client flushed is committed already; the
 * rest was never durable and need not be now. *ret NULL when nothing is
 * pending; -EAGAIN when what is pending cannot be carried (a differencing
 * disk, other metadata pages, more than max pages): commit instead. *ret
 * is the caller's to free: records of a little-endian u32 page index and
 * the page's 4096 bytes as in the file. */
int vhdx_carry_get(const vhdx *h, size_t max, uint8_t **ret, size_t *ret_len);
/* Frees the handle without committing or unlocking anything: for a process
 * whose files another one took over (whatever is not committed is lost
 * for this handle). NULL-safe; returns NULL. */
vhdx *vhdx_abandon(vhdx *h);
/* The file's fd (for /proc/self/fd/N), its identity, and the memory its
 * chain's block tables take. */
int vhdx_fd(const vhdx *h);
void vhdx_file_id(const vhdx *h, uint64_t *ret_dev, uint64_t *ret_ino);
uint64_t vhdx_memory(const vhdx *h);
/* Drops or retakes the handle's qemu-compatible locks (whole chain), for
 * a caller that replaces a handle by a read-write one on the same file. */
void vhdx_unlock(vhdx *h);
int vhdx_relock(vhdx *h);
/* Retakes the top file's locks only (its parents stay unlocked: a commit
 * holds the parent open for writing through another handle). */
int vhdx_relock_top(vhdx *h);
vhdx *vhdx_close(vhdx *h); /* flushes; NULL-safe; returns NULL */
/* Like close, but reports a failure of the final flush. */
int vhdx_close_checked(vhdx *h);

int vhdx_read(vhdx *h, void *buf, uint64_t len, uint64_t off);
/* vhdx_read() that never waits for the storage: -EAGAIN (buf then holds
 * anything) as soon as a piece is not in the page cache (RWF_NOWAIT), or
 * the handle reads with O_DIRECT. For a caller that must not block (the
 * provider's loop) and goes to a thread on -EAGAIN. Same thread rules as
 * vhdx_read(); leaves the handle's error message alone on -EAGAIN. */
int vhdx_read_nowait(vhdx *h, void *buf, uint64_t len, uint64_t off);
int vhdx_write(vhdx *h, const void *buf, uint64_t len, uint64_t off);
/* vhdx_write() of len bytes read from fd at fd_off, copied in the kernel
 * (copy_file_range; a reflink where the file system can) into the blocks;
 * a disk without parent only (-EOPNOTSUPP otherwise). */
int vhdx_write_fd(vhdx *h, int fd, uint64_t fd_off, uint64_t len, uint64_t off);
/* Two-step writes for a copy that must not be seen half done (an offload
 * copy, disks without parent): vhdx_reserve() takes len bytes (whole MiB)
 * of new space past every block, which no block uses and no reader sees;
 * the caller fills it through its own fd of the file; vhdx_adopt() then
 * makes whole blocks [off, off + len) of the disk take their data from
 * foff on (their old space is punched), through the log like any block
 * table change. Space never adopted stays unused (punch it). */
uint32_t vhdx_block_size(const vhdx *h);
int vhdx_reserve(vhdx *h, uint64_t len, uint64_t *ret_foff);
int vhdx_adopt(vhdx *h, uint64_t off, uint64_t len, uint64_t foff);
/* Where the bytes of [off, off + len) (within one block of a disk
 * without parent) lie in the file, the block allocated first as
 * vhdx_write() would (its other bytes read as zeros): for a caller that
 * writes them through its own fd of the file (a migration's copy, with
 * O_DIRECT, beside the handle's other writes). */
int vhdx_place(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_foff);
int vhdx_flush(vhdx *h);
int vhdx_trim(vhdx *h, uint64_t len, uint64_t off);
/* Whole blocks [off, off + len) become ZERO (read as zeros whatever a
 * parent holds; their space is given back). off on a block boundary, len
 * whole blocks or up to the end of the disk. */
int vhdx_zero_blocks(vhdx *h, uint64_t len, uint64_t off);
/* Replaces a differencing disk's parent locator by these entries, as they
 * are (compact carries a Hyper-V child's entries over to the new file).
 * parent_linkage and one path entry are required. */
int vhdx_set_locator(vhdx *h, const struct vhdx_locator_entry *kv, size_t n);
/* Points a differencing disk at another parent: the locator is rewritten
 * (through the log) with parent_linkage = linkage and fresh relative and
 * absolute paths to parent_path (which must exist); the entries that
 * described the old parent go. The handle keeps reading through the parent
 * it has open (a migration re-parents a child onto a copy of its parent). */
int vhdx_set_parent(vhdx *h, const char *parent_path, const vhdx_guid *linkage);
/* Switches VHDX_O_KEEP_IDENTITY on or off for the writes to come (off: the
 * next write users can see renews DataWriteGuid, as after a normal open). */
void vhdx_set_keep_identity(vhdx *h, bool keep);
/* Ends keeping identity at once: DataWriteGuid (and FileWriteGuid, if not
 * yet this session) renewed now, by the header update with its two
 * flushes, which the next write would otherwise do before it. */
int vhdx_renew_identity(vhdx *h);
/* Has DataWriteGuid been renewed in this session (a write changed what
 * users see since the file was opened)? */
bool vhdx_data_touched(const vhdx *h);
/* Makes a differencing disk that holds every sector itself (no range of
 * it reads from the parent any more: after a stream) a disk without
 * parent: HasParent cleared and the parent locator removed from the
 * metadata (through the log), partially present blocks (all of whose
 * sectors are here) fully present, the sector bitmaps let go; the parent
 * handle is closed. -EBUSY, naming the block, when a range still reads
 * from the parent. */
int vhdx_detach_parent(vhdx *h);
/* The payload state (VHDX_PB_*) of the block holding off, or -errno. */
int vhdx_block_state(vhdx *h, uint64_t off);

int vhdx_get_info(vhdx *h, struct vhdx_info *ret);
/* The bytes of the disk this file decides itself (its data, or ZERO
 * blocks; the rest reads from the parent): the whole size for a disk
 * without parent. Reads sector bitmaps: for info, not for every open. */
int vhdx_local_bytes(vhdx *h, uint64_t *ret);
int vhdx_map(vhdx *h, vhdx_map_fn fn, void *userdata);

/* check: problems are reported one line each through fn (severity
 * "error"/"warning"); returns the number of errors found (>= 0) or a
 * negative errno when the check itself could not run. */
typedef void (*vhdx_report_fn)(const char *severity, const char *msg, void *userdata);
int vhdx_check(vhdx *h, vhdx_report_fn fn, void *userdata);

enum { VHDX_EXT_HERE, VHDX_EXT_ZERO, VHDX_EXT_PARENT };
int vhdx_extent(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_len, int *ret_kind);
/* vhdx_extent(), and for VHDX_EXT_HERE where the run's data lies in this
 * file (*ret_file_off; the run is contiguous there): an offload copy's
 * source hands the file and these offsets to the destination. */
int vhdx_extent_file(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_len, int *ret_kind,
		     uint64_t *ret_file_off);
/* NBD's base:allocation: the run at off (at most len, whole sectors)
 * that the chain either holds (*ret_data true: some file of the chain has
 * the data) or reads as zeros without storage (unallocated, ZERO or
 * UNMAPPED down to the base). */
int vhdx_alloc_extent(vhdx *h, uint64_t off, uint64_t len, uint64_t *ret_len, bool *ret_data);
/* Makes [off, off + len) read as zeros: with unmap, whole blocks become
 * ZERO blocks (no storage) and the pieces at either end are written with
 * zeros; without, everything is written (storage stays allocated). */
int vhdx_write_zeroes(vhdx *h, uint64_t len, uint64_t off, bool unmap);
/* The parent handle of a differencing disk (NULL for a base, and for a
 * remote parent). */
vhdx *vhdx_parent(vhdx *h);
/* The URI of a remote parent the handle reads from, or NULL. */
const char *vhdx_remote_uri(const vhdx *h);
/* The URI the chain's last file names as its remote parent (connected or
 * not: opened with VHDX_O_NO_REMOTE or VHDX_O_NO_PARENT), or NULL. */
const char *vhdx_remote_named(const vhdx *h);

/* A copy of the last failure on h (NULL when none; the caller frees it):
 * a chain, outermost first. A read-write open that could not renew a stale
 * parent locator leaves why here (the disk is usable as found). */
scm_error *vhdx_error(vhdx *h);
/* The same on one line ("" when none), valid until this thread's next
 * call. */
const char *vhdx_errmsg(vhdx *h);
const char *vhdx_path(const vhdx *h);
const char *vhdx_state_name(unsigned state);
void vhdx_guid_format(const vhdx_guid *g, char out[39]); /* "{8-4-4-4-12}" */
int vhdx_guid_parse(const char *s, vhdx_guid *ret);
int vhdx_guid_random(vhdx_guid *ret);
bool vhdx_guid_is_zero(const vhdx_guid *g);
uint32_t vhdx_crc32c(uint32_t crc, const void *buf, size_t len);
/* Test hook: commits pending metadata to the log only, as if the process
 * died right after the log write; abandon the handle afterwards. */
int vhdx_debug_log_only(vhdx *h);
/* Is this file a VHDX (by its file type identifier)? 1 yes, 0 no, <0 error. */
int vhdx_probe_fd(int fd);
