/* io.c: scm-vdisk read / write / trim: byte-level access to a disk from the
 * shell (debugging, scripts, tests), like qemu-io's read/write/discard.
 *   write [--offset N] FILE   < data   (length: what stdin gives, sector-aligned)
 *   read --offset N --length N FILE > data
 *   trim --offset N --length N FILE */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tool.h"

static int io_args(int argc, char **argv, uint64_t *off, uint64_t *len, unsigned *flags)
{
	static const struct option opts[] = {
		{ "offset", required_argument, NULL, 'o' },
		{ "length", required_argument, NULL, 'l' },
		{ "override-parent-id", no_argument, NULL, 'P' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "o:l:Uh", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			printf("Usage: scm-vdisk read --offset N --length N [--override-parent-id] [-U|--force-share] FILE\n"
			       "       scm-vdisk write [--offset N] FILE\n"
			       "       scm-vdisk trim --offset N --length N FILE\n");
			return 1;
		case 'o':
			if (parse_size(optarg, off) < 0) {
				errf("--offset: bad size \"%s\"", optarg);
				return -EINVAL;
			}
			break;
		case 'l':
			if (parse_size(optarg, len) < 0) {
				errf("--length: bad size \"%s\"", optarg);
				return -EINVAL;
			}
			break;
		case 'P': *flags |= VHDX_O_IGNORE_PARENT_ID; break;
		case 'U': *flags |= VHDX_O_FORCE_SHARE; break;
		default: return -EINVAL;
		}
	}
	if (optind + 1 != argc) {
		errf("expected one FILE");
		return -EINVAL;
	}
	return 0;
}

int cmd_io(const char *cmd, int argc, char **argv)
{
	uint64_t off = 0, len = 0;
	unsigned flags = 0;
	int a = io_args(argc, argv, &off, &len, &flags);
	if (a < 0)
		return EXIT_USAGE;
	if (a > 0)
		return EXIT_OK; /* --help */
	bool rd = !strcmp(cmd, "read");
	if (!rd && (flags & VHDX_O_FORCE_SHARE)) {
		errf("%s: --force-share is for commands that only read", cmd);
		return EXIT_USAGE;
	}
	vhdx *h;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	if (vhdx_open(argv[optind], flags | (rd ? VHDX_O_RDONLY : 0), &h, &err) < 0) {
		errc(err, 0);
		return EXIT_FAIL;
	}
	int r = 0;
	_cleanup_free_ uint8_t *buf = NULL;
	if (!strcmp(cmd, "trim")) {
		r = vhdx_trim(h, len, off);
	} else if (rd) {
		if (len > 1024 * 1024 * 1024 || !(buf = malloc(len ? len : 1)))
			r = -ENOMEM;
		else if ((r = vhdx_read(h, buf, len, off)) == 0 && fwrite(buf, 1, len, stdout) != len)
			r = -EIO;
	} else {
		size_t cap = 1 << 20, n = 0;
		buf = malloc(cap);
		for (ssize_t k; buf && (k = read(0, buf + n, cap - n)) != 0;) {
			if (k < 0) {
				if (errno == EINTR)
					continue;
				r = -errno;
				break;
			}
			n += (size_t)k;
			if (n == cap) {
				uint8_t *nb = cap < (1u << 30) ? realloc(buf, cap * 2) : NULL;
				if (!nb) {
					r = -ENOMEM;
					break;
				}
				buf = nb;
				cap *= 2;
			}
		}
		if (!buf)
			r = -ENOMEM;
		if (r == 0)
			r = vhdx_write(h, buf, n, off);
	}
	if (r < 0) {
		errf("%s %s: %s", cmd, argv[optind], vhdx_errmsg(h)[0] ? vhdx_errmsg(h) : strerror(-r));
		vhdx_close(h);
		return EXIT_FAIL;
	}
	r = vhdx_close_checked(h);
	if (r < 0) {
		errf("%s: close: %s", argv[optind], strerror(-r));
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
