/* client.h: the parts of vdisk-client shared between its files. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <scm/scm.h>

/* Runs the provider bench on an open read-write handle whose disk is fully
 * allocated; prints one line per pattern: NAME<TAB>VALUE<TAB>UNIT<TAB>RAW,
 * RAW being the raw-file pattern it compares with. Returns 0 or a negative
 * errno / positive code with *ret_err set. */
int client_bench(scm_channel *ch, uint64_t handle, uint64_t vsize, scm_error **ret_err);

/* vcopy-in (in) / vcopy-out: the raw file fd to or from the disk through
 * readv/writev batches; badvec: malformed batches, each must be refused. */
int client_vcopy(scm_channel *ch, uint64_t handle, uint64_t vsize, uint8_t *buf, uint64_t bsz,
		 bool in, int fd, scm_error **ret_err);
int client_badvec(scm_channel *ch, uint64_t handle, uint64_t vsize, uint64_t bsz, bool ro);

/* flush-latency: client A (a child) flushes mib MiB of dirty data on
 * disk_a while this process times 4 KiB reads of disk_b (client-latency.c). */
int client_flush_latency(const char *ep, const char *disk_a, const char *disk_b, uint64_t mib);
int client_write_flush_exit(const char *ep, const char *disk, uint64_t mib);

/* randwrite: 4 KiB random writes at queue depth 1 over the first span
 * bytes (0: all) until stop exists, each logged as "<realtime ms>
 * <latency us>" to log (client-latency.c). */
int client_randwrite(const char *ep, const char *disk, const char *log, const char *stop, uint64_t span);

/* bench-read: random 4 KiB reads at queue depth 1 and 32 (pipelined on the
 * channel) and 1 MiB sequential reads on an open handle, after reading the
 * disk once; prints "provider <pattern> <value>" lines. */
int client_bench_read(scm_channel *ch, uint64_t handle, uint64_t vsize, scm_error **ret_err);

/* pattern: writes with known contents, each flushed, mirrored into the raw
 * file expected once acknowledged (client-pattern.c). */
int client_pattern(scm_channel *ch, const char *disk, const char *expected, long n, const char *stop,
		   scm_error **ret_err);

/* badring: the read ring as an attacker uses it (client-ring.c); 0 when
 * every malformed slot was refused and a good read still reads right. */
int client_badring(scm_channel *ch, uint64_t handle, uint64_t vsize, uint8_t *buf, uint64_t sec);
/* rings DISK N: how many read rings one client gets (client-ring.c). */
int client_rings(scm_channel *ch, const char *disk, long n);

/* pr DISK [--ro] CMD ...: persistent reservations (client-pr.c); argv
 * starts at DISK. Returns the exit status. */
int client_pr(const char *ep, const char *svc, int argc, char **argv);

/* rounds STOPFILE K DISK...: write and read back 4 KiB round robin on the
 * disks until STOPFILE exists, rounds over 1 ms logged to $PINGS_LOG
 * (client-rounds.c; handover-bench). */
int client_rounds(scm_channel *ch, const char *stop, size_t k, char **disks, size_t n, scm_error **ret_err);
