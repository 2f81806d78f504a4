/* client-pr.c: vdisk-client pr, persistent reservations from the command
 * line (the cluster example and tests/bats/vdisk-reserve.bats drive it):
 *   vdisk-client [--endpoint EP] pr DISK [--ro] CMD ARGS [-- CMD ARGS]...
 * opens DISK shared read-write (--ro: read-only) and runs each CMD in
 * order on that handle:
 *   register KEY NEWKEY | register-ignore NEWKEY | unregister KEY
 *   reserve KEY TYPE | release KEY TYPE | clear KEY
 *   preempt KEY VICTIM TYPE | preempt-abort KEY VICTIM TYPE
 *   read                          the state as JSON on one line
 *   write OFFSET LENGTH BYTE      LENGTH bytes of BYTE at OFFSET, then flush
 *   check OFFSET LENGTH           reads; prints "byte 0xNN" when every byte
 *                                 is the same, else "mixed"
 *   wait                          prints "waiting", then reads a line of
 *                                 stdin or its end (the channel and handle
 *                                 stay open meanwhile)
 * Keys and numbers take C notation (0x...). The first refusal ends the
 * run: the error on stderr, exit 10 + code as the other commands. */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"
#include "scm/vdisk-client.h"

static int num(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	*ret = strtoull(s, &end, 0);
	return !*s || *end || errno ? -EINVAL : 0;
}

/* One command at argv[0]; returns how many words it took, or -1 (usage)
 * or -2 (refused: *ret_err set). */
static int one(scm_channel *ch, uint64_t h, uint8_t *buf, uint64_t bsz, int argc, char **argv, scm_error **ret_err)
{
	const char *c = argv[0];
	uint64_t a = 0, b = 0, v = 0;
	int need = !strcmp(c, "read") || !strcmp(c, "wait") ? 1
		   : !strcmp(c, "register-ignore") || !strcmp(c, "unregister") || !strcmp(c, "clear") ? 2
		   : !strcmp(c, "register") || !strcmp(c, "reserve") || !strcmp(c, "release") || !strcmp(c, "check") ? 3
		   : !strcmp(c, "write") || !strcmp(c, "preempt") || !strcmp(c, "preempt-abort") ? 4
												     : 0;
	if (!need || argc < need)
		return -1;
	if (need > 1 && num(argv[1], &a) < 0)
		return -1;
	bool typed = !strcmp(c, "reserve") || !strcmp(c, "release") || !strncmp(c, "preempt", 7);
	if (need > 2 && !typed && num(argv[2], &b) < 0)
		return -1;
	if (!strncmp(c, "preempt", 7) && num(argv[2], &b) < 0)
		return -1;
	int r = 0;
	if (!strcmp(c, "wait")) {
		char line[64];
		printf("waiting\n");
		fflush(stdout);
		if (!fgets(line, sizeof line, stdin))
			clearerr(stdin); /* its end: go on as for a line */
	} else if (!strcmp(c, "register"))
		r = scm_vdisk_pr_register(ch, h, a, b, false, ret_err);
	else if (!strcmp(c, "register-ignore"))
		r = scm_vdisk_pr_register(ch, h, 0, a, true, ret_err);
	else if (!strcmp(c, "unregister"))
		r = scm_vdisk_pr_register(ch, h, a, 0, false, ret_err);
	else if (!strcmp(c, "reserve"))
		r = scm_vdisk_pr_reserve(ch, h, a, argv[2], ret_err);
	else if (!strcmp(c, "release"))
		r = scm_vdisk_pr_release(ch, h, a, argv[2], ret_err);
	else if (!strcmp(c, "clear"))
		r = scm_vdisk_pr_clear(ch, h, a, ret_err);
	else if (!strncmp(c, "preempt", 7))
		r = scm_vdisk_pr_preempt(ch, h, a, b, argv[3], !strcmp(c, "preempt-abort"), ret_err);
	else if (!strcmp(c, "read")) {
		json_object *st = NULL;
		if (!(r = scm_vdisk_pr_read(ch, h, &st, ret_err)))
			printf("%s\n", json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN));
		json_object_put(st);
	} else if (!strcmp(c, "write")) {
		if (num(argv[3], &v) < 0 || b > bsz || v > 255)
			return -1;
		memset(buf, (int)v, b);
		r = scm_vdisk_write(ch, h, a, b, 0, ret_err);
		if (!r)
			r = scm_vdisk_flush(ch, h, ret_err);
	} else { /* check */
		if (b > bsz || !b)
			return -1;
		if (!(r = scm_vdisk_read(ch, h, a, b, 0, ret_err))) {
			uint64_t i = 1;
			while (i < b && buf[i] == buf[0])
				i++;
			if (i == b)
				printf("byte 0x%02x\n", buf[0]);
			else
				printf("mixed\n");
		}
	}
	fflush(stdout);
	return r ? -2 : need;
}

int client_pr(const char *ep, const char *svc, int argc, char **argv)
{
	/* argv: DISK [--ro] CMD ... */
	if (argc < 2)
		return 2;
	const char *disk = argv[0];
	argv++;
	argc--;
	bool ro = !strcmp(argv[0], "--ro");
	if (ro) {
		argv++;
		argc--;
	}
	scm_channel *ch = NULL;
	scm_error *e = NULL;
	uint64_t h, bsz, vsize, sec;
	int bfd = -1, r;
	bool got_ro;
	uint8_t *buf = MAP_FAILED;
	r = ep ? scm_connect_at(ep, svc, &ch, &e) : scm_connect(svc, &ch, &e);
	if (!r)
		r = scm_vdisk_open(ch, disk, ro, !ro, &h, &bfd, &bsz, &vsize, &sec, &got_ro, &e);
	if (!r && (buf = mmap(NULL, bsz, PROT_READ | PROT_WRITE, MAP_SHARED, bfd, 0)) == MAP_FAILED)
		r = -errno;
	while (!r && argc > 0) {
		int n = one(ch, h, buf, bsz, argc, argv, &e);
		if (n == -1) {
			fprintf(stderr, "vdisk-client pr: bad command or arguments at \"%s\"\n", argv[0]);
			r = 2;
			break;
		}
		if (n == -2) {
			r = e ? e->code : -EIO;
			break;
		}
		argv += n;
		argc -= n;
		if (argc > 0 && !strcmp(argv[0], "--")) {
			argv++;
			argc--;
		}
	}
	int code = 0;
	if (r == 2 && !e) {
		code = 2;
	} else if (r) {
		fprintf(stderr, "vdisk-client: ");
		if (e)
			scm_error_print(e, stderr);
		else
			fprintf(stderr, "%s\n", strerror(r < 0 ? -r : EIO));
		int c = e ? e->code : r;
		code = c > 0 ? 10 + (c >= 100 ? c - 100 + 20 : c) : 1;
	}
	scm_error_free(e);
	if (buf != MAP_FAILED)
		munmap(buf, bsz);
	if (bfd >= 0)
		close(bfd);
	scm_channel_free(ch);
	return code;
}
