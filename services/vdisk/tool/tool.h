/* tool.h: shared bits of the scm-vdisk command-line tool. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scm/macro.h"
#include "vhdx.h"

/* Exit codes (documented in docs/vdisk.md). */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,    /* the operation failed (bad file, I/O error, ...) */
	EXIT_USAGE = 2,   /* bad command line */
	EXIT_CORRUPT = 3, /* check found errors */
	EXIT_NO_PARENT = 4, /* check: the file is clean, its parent is not available */
};

int parse_size(const char *s, uint64_t *ret);
void json_str(FILE *f, const char *s);
int cmd_convert(int argc, char **argv);
int cmd_compact(int argc, char **argv);
int cmd_io(const char *cmd, int argc, char **argv);
/* jobs.c: the provider's jobs; cmd_online returns -1 for a compact the
 * provider cannot do (the disk is not open there): do it on the file. */
int cmd_online(const char *cmd, int argc, char **argv);
int cmd_jobs(const char *cmd, int argc, char **argv);
int cmd_migrated(int argc, char **argv);
/* The path as the provider's grant sees it: absolute (jobs.c). */
char *abs_path(const char *p);
/* offload.c: offload-read, offload-write, offload-copy (token copies
 * between providers). */
int cmd_offload(const char *cmd, int argc, char **argv);
/* export.c: scm-vdisk export (NBD, through nbdkit and the provider) */
int cmd_export(int argc, char **argv);
/* nbdserve.c: a plain export served by the provider: opens the disk,
 * says "ready PID" on rfd, then hands the connections accepted on lfd to
 * the provider after their handshake, until SIGTERM/SIGINT/SIGHUP. An
 * exit code. */
int export_serve_here(const char *endpoint, const char *service, const char *disk, const char *name,
		      bool readonly, bool foreground, int lfd, int rfd);
void errf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* errf() of a chain on one line, or of strerror(-r) when there is none. */
void errc(const scm_error *e, int r);
/* A read-write open that could not renew a stale parent locator still
 * opened: says why on stderr (a warning, as the engine does not print). */
void warn_note(vhdx *h);
