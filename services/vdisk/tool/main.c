/* main.c: scm-vdisk, the command-line face of the VHDX engine (scmctl vdisk
 * execs it with the same arguments): create, info, check, map; convert and
 * compact live in convert.c. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nbd-parent.h"
#include "tool.h"

static const char usage[] =
	"Usage: scm-vdisk COMMAND [OPTIONS] ...\n"
	"Create, inspect and convert VHDX virtual disks (MS-VHDX: dynamic, fixed,\n"
	"differencing).\n"
	"\n"
	"Commands:\n"
	"  create [--fixed] [--block-size N] [--sector-size 512|4096] (--size N | --parent PARENT) FILE\n"
	"        make a new disk; sizes take K, M, G, T suffixes (powers of 1024); PARENT\n"
	"        may be an NBD URI (nbd[s]://HOST:PORT/EXPORT, nbd[s]+unix:///EXPORT?socket=PATH):\n"
	"        a remote parent, read on demand (nbds: TLS, material from the environment)\n"
	"  info [--json] FILE         sizes, type, block states, chain\n"
	"  check [--repair] FILE      structure, checksums, BAT ranges, overlaps, chain\n"
	"                             linkage; --repair replays a pending log\n"
	"  map [--json] FILE          allocated / zero / unmapped / parent ranges\n"
	"  convert [--format raw|vhdx] [-O raw|vhdx] [--block-size N] [--sector-size 512|4096] SRC DST\n"
	"                             copy the disk's contents (a differencing chain\n"
	"                             read through to its base) into DST\n"
	"  compact [--online|--offline] [--detach] FILE\n"
	"                             a disk the vdisk provider holds open: a job there\n"
	"                             (zero blocks become ZERO); else rewrite FILE without\n"
	"                             unused or trimmed space\n"
	"  snapshot [--detach] DISK NEW   a job in the provider: NEW, a differencing child\n"
	"                             of DISK beside it, takes over every open handle\n"
	"  merge (--into-parent|--from-parent) [--detach] DISK\n"
	"                             a job in the provider: commit DISK into its parent\n"
	"                             (handles move onto the parent), or stream the\n"
	"                             parent's data into DISK until it stands alone\n"
	"  migrate [--mode mirror|snapshot] [--throttle MiB/s] [--max-pause MS] [--detach] DISK DEST|NBD-URI\n"
	"                             a job in the provider: move DISK (the whole chain,\n"
	"                             flattened) to the new file DEST while its clients\n"
	"                             read and write; the handles end on DEST\n"
	"  migrated [--clear] DISK    where a migration to an NBD export took DISK (its\n"
	"                             mark refuses opens for writing); --clear removes it\n"
	"  jobs [--json]              the provider's jobs, with progress\n"
	"  job ID pause|resume|cancel|wait\n"
	"                             steer a job (wait: until it finishes; exit 0 if done)\n"
	"  offload-copy [--dest-endpoint EP] [--dest-service S] SRC[:OFF[:LEN]] DEST[:OFF]\n"
	"                             copy a range between disks two providers serve,\n"
	"                             provider to provider (an offload token), not\n"
	"                             through this command\n"
	"  offload-read [--ttl-ms N] SRC[:OFF[:LEN]]   print a token for the range; it\n"
	"                             stays good until end of input (or it expires)\n"
	"  offload-write TOKEN DEST[:OFF]   write a token's data to DEST\n"
	"  export DISK --nbd unix:PATH|tcp:ADDR:PORT [--readonly] [--name NAME] [--detach]\n"
	"        [--tls-psk FILE | --tls-certificates DIR] [--allow-remote]\n"
	"                             serve DISK over NBD (nbdkit) as a client of the\n"
	"                             provider; export --list, export --stop NAME\n"
	"Online commands reach the provider through $SCM_ENDPOINT or --endpoint EP.\n"
	"  write [--offset N] FILE    write stdin at byte offset N (sector multiples)\n"
	"  read --offset N --length N FILE   copy bytes of the disk to stdout\n"
	"  trim --offset N --length N FILE   discard a range (space is given back)\n"
	"\n"
	"--override-parent-id (info, check, map, read, convert): open a differencing\n"
	"chain whose parent changed since the child was made (read-only).\n"
	"-U, --force-share (info, check, map, read, convert): read a disk that qemu or\n"
	"scm holds open for writing (it may change while read); without it such a\n"
	"disk is refused, as qemu-img does.\n"
	"\n"
	"A differencing disk whose parent is missing: info shows what the file says\n"
	"(exit 0); check checks the file alone (exit 4 when it is clean).\n"
	"\n"
	"Exit status: 0 ok (check: clean, or repaired and now clean), 1 failed,\n"
	"2 bad usage, 3 check found errors, 4 check: the file is clean but its parent\n"
	"is not available.\n";

/* Each command's own --help: its lines of the usage above, nothing else,
 * so a command never advertises another's options. */
static void cmd_usage(const char *cmd)
{
	static const struct {
		const char *cmd, *text;
	} u[] = {
		{ "create", "Usage: scm-vdisk create [--fixed] [--block-size N] [--sector-size 512|4096]\n"
			    "                        (--size N | --parent PARENT) FILE\n" },
		{ "info", "Usage: scm-vdisk info [--json] [--override-parent-id] [-U|--force-share] FILE\n" },
		{ "check", "Usage: scm-vdisk check [--repair] [--override-parent-id] [-U|--force-share] FILE\n"
			   "Exit status: 0 clean (or repaired and now clean), 1 failed, 2 bad usage,\n"
			   "3 errors found, 4 the file is clean but its parent is not available.\n" },
		{ "map", "Usage: scm-vdisk map [--json] [--override-parent-id] [-U|--force-share] FILE\n" },
	};
	for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
		if (!strcmp(u[i].cmd, cmd)) {
			fputs(u[i].text, stdout);
			return;
		}
	fputs(usage, stdout);
}

void errf(const char *fmt, ...)
{
	va_list ap;
	fputs("scm-vdisk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void errc(const scm_error *e, int r)
{
	_cleanup_free_ char *text = e ? scm_error_text(e) : NULL;
	errf("%s", text && *text ? text : strerror(r < 0 ? -r : EIO));
}

void warn_note(vhdx *h)
{
	const char *note = vhdx_errmsg(h);
	if (*note)
		fprintf(stderr, "vdisk: %s\n", note);
}

int parse_size(const char *s, uint64_t *ret)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return -EINVAL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	unsigned shift = 0;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' && shift)
		end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*ret = v << shift;
	return 0;
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static unsigned g_open_flags;

static int open_or_die(const char *path, unsigned flags, vhdx **ret)
{
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	int r = vhdx_open(path, flags | g_open_flags, ret, &err);
	if (r < 0)
		errc(err, r);
	else
		warn_note(*ret);
	return r;
}

/* info and check: a differencing disk whose parent is not here (a file
 * missing, or a remote parent that cannot be reached) is still described
 * from what the file itself says (as vhdiinfo does); only a missing or
 * unreachable parent falls back, every other failure is reported as is. */
static int open_maybe_alone(const char *path, unsigned flags, vhdx **ret, char **ret_why)
{
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	*ret_why = NULL;
	int r = vhdx_open(path, flags | g_open_flags, ret, &err);
	if (r < 0 && r != -ENOMEM) {
		vhdx *alone;
		unsigned fl = (flags | g_open_flags | VHDX_O_NO_PARENT | VHDX_O_RDONLY) & ~VHDX_O_NO_REPLAY;
		if (vhdx_open(path, fl, &alone, NULL) == 0) {
			struct vhdx_info in;
			/* a remote parent fails in the network's words (refused,
			 * timed out, reset...), a file only with ENOENT */
			if (vhdx_get_info(alone, &in) == 0 && in.parent_missing &&
			    (r == -ENOENT || vhdx_remote_named(alone))) {
				*ret_why = scm_error_text(err); /* "" without a chain */
				*ret = alone;
				return 0;
			}
			vhdx_close(alone);
		}
	}
	if (r < 0)
		errc(err, r);
	else
		warn_note(*ret);
	return r;
}

static int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "fixed", no_argument, NULL, 'f' },        { "block-size", required_argument, NULL, 'b' },
		{ "sector-size", required_argument, NULL, 's' }, { "size", required_argument, NULL, 'S' },
		{ "parent", required_argument, NULL, 'p' }, { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vhdx_create_opts o = { 0 };
	uint64_t v;
	int c;
	while ((c = getopt_long(argc, argv, "fb:s:S:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f': o.fixed = true; break;
		case 'b':
			if (parse_size(optarg, &v) < 0 || v > UINT32_MAX) {
				errf("create: --block-size: bad size \"%s\"", optarg);
				return EXIT_USAGE;
			}
			o.block_size = (uint32_t)v;
			break;
		case 's':
			if (strcmp(optarg, "512") && strcmp(optarg, "4096")) {
				errf("create: --sector-size: must be 512 or 4096, not \"%s\"", optarg);
				return EXIT_USAGE;
			}
			o.sector_size = (uint32_t)atoi(optarg);
			break;
		case 'S':
			if (parse_size(optarg, &o.size) < 0) {
				errf("create: --size: bad size \"%s\"", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'p': o.parent = optarg; break;
		case 'h': cmd_usage("create"); return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		errf("create: expected one FILE (see --help)");
		return EXIT_USAGE;
	}
	if (!o.size == !o.parent) {
		errf("create: give exactly one of --size N or --parent PARENT");
		return EXIT_USAGE;
	}
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	int r = vhdx_create(argv[optind], &o, &err);
	if (r < 0) {
		errc(err, r);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static const char *type_name(const struct vhdx_info *in)
{
	return in->differencing ? "differencing" : in->fixed ? "fixed" : "dynamic";
}

static int cmd_info(int argc, char **argv, bool json)
{
	if (optind + 1 != argc) {
		errf("info: expected one FILE");
		return EXIT_USAGE;
	}
	vhdx *h;
	_cleanup_free_ char *why = NULL;
	if (open_maybe_alone(argv[optind], VHDX_O_RDONLY, &h, &why) < 0)
		return EXIT_FAIL;
	struct vhdx_info in;
	uint64_t local = 0;
	int r = vhdx_get_info(h, &in);
	/* what is local is the file's own business: known without the parent */
	if (r == 0 && in.differencing)
		r = vhdx_local_bytes(h, &local);
	/* named by the file, reached or not */
	const char *remote = in.remote_parent ? in.remote_parent : vhdx_remote_named(h);
	if (r < 0) {
		errf("%s", vhdx_errmsg(h));
		vhdx_close(h);
		return EXIT_FAIL;
	}
	char fw[39], dw[39], lg[39], p83[39];
	vhdx_guid_format(&in.file_write_guid, fw);
	vhdx_guid_format(&in.data_write_guid, dw);
	vhdx_guid_format(&in.log_guid, lg);
	vhdx_guid_format(&in.page83, p83);
	static const unsigned states[] = { VHDX_PB_NOT_PRESENT, VHDX_PB_UNDEFINED, VHDX_PB_ZERO,
					   VHDX_PB_UNMAPPED, VHDX_PB_FULLY_PRESENT,
					   VHDX_PB_PARTIALLY_PRESENT };
	if (json) {
		printf("{\"file\":");
		json_str(stdout, argv[optind]);
		printf(",\"format\":\"vhdx\",\"type\":\"%s\",\"virtual_size\":%llu,\"block_size\":%u,"
		       "\"logical_sector_size\":%u,\"physical_sector_size\":%u,\"file_size\":%llu,"
		       "\"disk_usage\":%llu,\"header_sequence\":%llu,\"file_write_guid\":\"%s\","
		       "\"data_write_guid\":\"%s\",\"log_guid\":\"%s\",\"page83\":\"%s\",\"log_pending\":%s,"
		       "\"blocks_total\":%llu,\"blocks\":{",
		       type_name(&in), (unsigned long long)in.virtual_size, in.block_size,
		       in.logical_sector_size, in.physical_sector_size, (unsigned long long)in.file_size,
		       (unsigned long long)in.disk_usage, (unsigned long long)in.header_sequence, fw, dw, lg,
		       p83, in.log_pending ? "true" : "false", (unsigned long long)in.blocks_total);
		for (size_t i = 0; i < (sizeof states / sizeof states[0]); i++)
			printf("%s\"%s\":%llu", i ? "," : "", vhdx_state_name(states[i]),
			       (unsigned long long)in.blocks[states[i]]);
		printf("},\"sector_bitmap_blocks\":%llu", (unsigned long long)in.bitmap_blocks_present);
		if (in.parent_linkage[0])
			printf(",\"parent_linkage\":\"%s\"", in.parent_linkage);
		if (in.parent_relative_path) {
			printf(",\"parent_relative_path\":");
			json_str(stdout, in.parent_relative_path);
		}
		if (in.parent_absolute_path) {
			printf(",\"parent_absolute_path\":");
			json_str(stdout, in.parent_absolute_path);
		}
		if (in.parent_volume_path) {
			printf(",\"parent_volume_path\":");
			json_str(stdout, in.parent_volume_path);
		}
		if (in.parent_linkage2[0])
			printf(",\"parent_linkage2\":\"%s\"", in.parent_linkage2);
		if (in.differencing) {
			printf(",\"parent_locator\":[");
			for (size_t i = 0; i < in.locator_len; i++) {
				printf("%s{\"key\":", i ? "," : "");
				json_str(stdout, in.locator[i].key);
				printf(",\"value\":");
				json_str(stdout, in.locator[i].value);
				printf("}");
			}
			printf("],\"parent_available\":%s", in.parent_missing ? "false" : "true");
			if (in.parent_missing) {
				printf(",\"parent_error\":");
				json_str(stdout, why);
			}
		}
		if (remote) {
			printf(",\"remote_parent\":");
			json_str(stdout, remote);
		}
		if (in.differencing)
			printf(",\"local_bytes\":%llu", (unsigned long long)local);
		printf(",\"chain\":[");
		for (size_t i = 0; i < in.chain_len; i++) {
			printf("%s", i ? "," : "");
			json_str(stdout, in.chain[i]);
		}
		printf("]}\n");
	} else {
		printf("file: %s\nformat: vhdx (%s)\n", argv[optind], type_name(&in));
		printf("virtual size: %llu bytes (%.2f GiB)\n", (unsigned long long)in.virtual_size,
		       in.virtual_size / 1073741824.0);
		printf("block size: %u\nsector size: %u logical, %u physical\n", in.block_size,
		       in.logical_sector_size, in.physical_sector_size);
		printf("file size: %llu bytes, on disk %llu bytes\n", (unsigned long long)in.file_size,
		       (unsigned long long)in.disk_usage);
		printf("blocks: %llu:", (unsigned long long)in.blocks_total);
		for (size_t i = 0; i < (sizeof states / sizeof states[0]); i++)
			if (in.blocks[states[i]])
				printf(" %s %llu", vhdx_state_name(states[i]),
				       (unsigned long long)in.blocks[states[i]]);
		printf("\n");
		if (in.differencing)
			printf("sector bitmap blocks: %llu\n", (unsigned long long)in.bitmap_blocks_present);
		printf("header sequence: %llu\nfile write guid: %s\ndata write guid: %s\npage 83: %s\n",
		       (unsigned long long)in.header_sequence, fw, dw, p83);
		if (in.log_pending)
			printf("log: PENDING (run check --repair, or open read-write, to replay)\n");
		if (in.parent_linkage[0])
			printf("parent linkage: %s\n", in.parent_linkage);
		if (in.parent_relative_path)
			printf("parent relative path: %s\n", in.parent_relative_path);
		if (in.parent_absolute_path)
			printf("parent absolute path: %s\n", in.parent_absolute_path);
		if (in.parent_volume_path)
			printf("parent volume path: %s\n", in.parent_volume_path);
		if (in.parent_linkage2[0])
			printf("parent linkage2: %s\n", in.parent_linkage2);
		if (in.differencing) {
			printf("parent locator: %zu entries\n", in.locator_len);
			for (size_t i = 0; i < in.locator_len; i++)
				printf("  %s: %s\n", in.locator[i].key, in.locator[i].value);
		}
		if (remote)
			printf("remote parent: %s\n", remote);
		if (in.differencing)
			printf("local: %llu of %llu bytes (%.1f%%); the rest %s\n",
			       (unsigned long long)local, (unsigned long long)in.virtual_size,
			       100.0 * (double)local / (double)in.virtual_size,
			       in.parent_missing ? "is the parent's" : "reads from the parent");
		if (in.parent_missing)
			printf("parent: %s (%s); shown is what this file says\n",
			       remote ? "UNREACHABLE" : "NOT AVAILABLE", why);
		if (in.chain_len > 1) {
			printf("chain:\n");
			for (size_t i = 0; i < in.chain_len; i++)
				printf("  %zu: %s\n", i, in.chain[i]);
		}
	}
	vhdx_close(h);
	return EXIT_OK;
}

static void report_line(const char *sev, const char *msg, void *ud)
{
	(void)ud;
	printf("%s: %s\n", sev, msg);
}

static int cmd_check(int argc, char **argv, bool repair)
{
	if (optind + 1 != argc) {
		errf("check: expected one FILE");
		return EXIT_USAGE;
	}
	vhdx *h;
	unsigned fl = repair ? 0 : VHDX_O_RDONLY | VHDX_O_NO_REPLAY;
	_cleanup_free_ char *why = NULL;
	if (open_maybe_alone(argv[optind], fl, &h, &why) < 0)
		return EXIT_FAIL;
	struct vhdx_info in;
	vhdx_get_info(h, &in);
	if (in.log_replayed)
		printf("repaired: replayed the pending log\n");
	if (in.parent_missing) {
		/* opened alone (read-only): a pending log is not replayed */
		printf("warning: parent not available (%s): this file is checked alone (the chain is not)\n",
		       why);
		if (repair && in.log_pending)
			printf("warning: not repaired: a disk opened without its parent is opened read-only\n");
	}
	int n = vhdx_check(h, report_line, NULL);
	int r = vhdx_close_checked(h);
	if (n < 0 || r < 0) {
		errf("check %s: %s", argv[optind], strerror(-(n < 0 ? n : r)));
		return EXIT_FAIL;
	}
	printf("%s: %d error%s%s\n", argv[optind], n, n == 1 ? "" : "s",
	       in.parent_missing ? " in this file (parent not available)" : "");
	if (n)
		return EXIT_CORRUPT;
	return in.parent_missing ? EXIT_NO_PARENT : EXIT_OK;
}

struct map_ctx {
	bool json, first;
};

static int map_line(const struct vhdx_map_range *m, void *ud)
{
	struct map_ctx *c = ud;
	if (c->json) {
		printf("%s{\"start\":%llu,\"length\":%llu,\"state\":\"%s\",\"offset\":%llu}",
		       c->first ? "" : ",\n", (unsigned long long)m->start, (unsigned long long)m->length,
		       m->state, (unsigned long long)m->file_offset);
	} else {
		printf("%#18llx %#18llx %-10s", (unsigned long long)m->start, (unsigned long long)m->length,
		       m->state);
		if (m->file_offset)
			printf(" %#llx", (unsigned long long)m->file_offset);
		printf("\n");
	}
	c->first = false;
	return 0;
}

static int cmd_map(int argc, char **argv, bool json)
{
	if (optind + 1 != argc) {
		errf("map: expected one FILE");
		return EXIT_USAGE;
	}
	vhdx *h;
	if (open_or_die(argv[optind], VHDX_O_RDONLY, &h) < 0)
		return EXIT_FAIL;
	struct map_ctx c = { json, true };
	if (json)
		printf("[");
	else
		printf("%18s %18s %-10s %s\n", "start", "length", "state", "file offset");
	vhdx_map(h, map_line, &c);
	if (json)
		printf("]\n");
	vhdx_close(h);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *cmd = argv[1];
	if (cmd[0] == '-') {
		errf("%s: options go after the command (scm-vdisk COMMAND [OPTION...] ARG...; --help lists them)",
		     cmd);
		return EXIT_USAGE;
	}
	/* the owner's tool: a remote parent is read wherever its URI points */
	vhdx_set_remote_opener(nbd_parent_host_opener, NULL);
	argc--;
	argv++;
	if (!strcmp(cmd, "create"))
		return cmd_create(argc, argv);
	if (!strcmp(cmd, "convert"))
		return cmd_convert(argc, argv);
	if (!strcmp(cmd, "compact") && argc == 3 && !strcmp(argv[1], "--offline")) {
		argv[1] = argv[2]; /* on the file, whoever serves it */
		return cmd_compact(2, argv);
	}
	if (!strcmp(cmd, "compact") && !(argc == 2 && !strcmp(argv[1], "--help"))) {
		int r = cmd_online(cmd, argc, argv);
		if (r >= 0)
			return r;
		argv[1] = argv[argc - 1]; /* not served: on the file */
		return cmd_compact(2, argv);
	}
	if (!strcmp(cmd, "compact"))
		return cmd_compact(argc, argv);
	if (!strcmp(cmd, "snapshot") || !strcmp(cmd, "merge") || !strcmp(cmd, "migrate"))
		return cmd_online(cmd, argc, argv);
	if (!strcmp(cmd, "migrated"))
		return cmd_migrated(argc, argv);
	if (!strcmp(cmd, "jobs") || !strcmp(cmd, "job"))
		return cmd_jobs(cmd, argc, argv);
	if (!strcmp(cmd, "export"))
		return cmd_export(argc, argv);
	if (!strcmp(cmd, "read") || !strcmp(cmd, "write") || !strcmp(cmd, "trim"))
		return cmd_io(cmd, argc, argv);
	if (!strncmp(cmd, "offload-", 8))
		return cmd_offload(cmd, argc, argv);
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },  { "repair", no_argument, NULL, 'r' },
		{ "override-parent-id", no_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 },
	};
	bool json = false, repair = false;
	int c;
	while ((c = getopt_long(argc, argv, "jrhU", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'r': repair = true; break;
		case 'U': g_open_flags |= VHDX_O_FORCE_SHARE; break;
		case 'o': g_open_flags |= VHDX_O_IGNORE_PARENT_ID; break;
		case 'h': cmd_usage(cmd); return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if (!strcmp(cmd, "info") && !repair)
		return cmd_info(argc, argv, json);
	if (!strcmp(cmd, "check") && !json)
		return cmd_check(argc, argv, repair);
	if (!strcmp(cmd, "map") && !repair)
		return cmd_map(argc, argv, json);
	errf("unknown command or option combination: %s (see --help)", cmd);
	return EXIT_USAGE;
}
