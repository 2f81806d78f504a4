/* convert.c: scm-vdisk convert (raw <-> VHDX, a differencing chain read
 * through to its base) and compact (rewrite a VHDX without its unused
 * space). Both write a temporary file beside DST and rename it into place
 * only when everything is written and flushed, so a failure leaves no
 * half-written DST. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

#define CHUNK (1024 * 1024)

struct disk {
	vhdx *h;
	int fd;
	uint64_t size;
	uint32_t sector;
};

static int disk_read(struct disk *d, void *buf, size_t len, uint64_t off)
{
	if (d->h) {
		int r = vhdx_read(d->h, buf, len, off);
		if (r < 0)
			errf("read: %s", vhdx_errmsg(d->h));
		return r;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(d->fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errf("read: %m");
			return -errno;
		}
		if (n == 0) {
			memset((char *)buf + done, 0, len - done);
			break;
		}
		done += (size_t)n;
	}
	return 0;
}

static bool is_zero(const void *buf, size_t len)
{
	const uint64_t *p = buf;
	for (size_t i = 0; i < len / 8; i++)
		if (p[i])
			return false;
	return true;
}

struct progress {
	bool on;
	int last;
};

static void progress(struct progress *p, uint64_t done, uint64_t total)
{
	if (!p->on || !total)
		return;
	int pct = (int)(done * 100 / total);
	if (pct == p->last)
		return;
	p->last = pct;
	char bar[41];
	int fill = pct * 40 / 100;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(40 - fill));
	bar[40] = 0;
	fprintf(stderr, "\r[%s] %3d%%", bar, pct);
	if (pct == 100)
		fputc('\n', stderr);
	fflush(stderr);
}

/* A name beside dst that nothing else uses. */
static char *temp_name(const char *dst)
{
	char *t;
	unsigned rnd = (unsigned)getpid() ^ (unsigned)(uintptr_t)&t;
	if (asprintf(&t, "%s.tmp-%u", dst, rnd) < 0)
		return NULL;
	return t;
}

static int open_src(const char *path, const char *fmt, unsigned flags, struct disk *d)
{
	*d = (struct disk){ .fd = -1, .sector = 512 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errf("%s: %m", path);
		return -errno;
	}
	bool vh;
	if (fmt) {
		vh = !strcmp(fmt, "vhdx");
	} else {
		int r = vhdx_probe_fd(fd);
		if (r < 0) {
			errf("%s: %s", path, strerror(-r));
			close(fd);
			return r;
		}
		vh = r == 1;
	}
	if (vh) {
		close(fd);
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		int r = vhdx_open(path, VHDX_O_RDONLY | flags, &d->h, &err);
		if (r < 0) {
			errc(err, 0);
			return r;
		}
		struct vhdx_info in;
		vhdx_get_info(d->h, &in);
		d->size = in.virtual_size;
		d->sector = in.logical_sector_size;
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		errf("%s: %m", path);
		close(fd);
		return -errno;
	}
	d->fd = fd;
	d->size = (uint64_t)st.st_size;
	return 0;
}

static const char *guess_format(const char *dst)
{
	const char *dot = strrchr(dst, '.');
	return dot && !strcasecmp(dot, ".vhdx") ? "vhdx" : "raw";
}

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },   { "output-format", required_argument, NULL, 'O' },
		{ "block-size", required_argument, NULL, 'b' }, { "sector-size", required_argument, NULL, 's' },
		{ "override-parent-id", no_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
		{ "force-share", no_argument, NULL, 'U' },
		{ 0 },
	};
	const char *ifmt = NULL, *ofmt = NULL;
	struct vhdx_create_opts co = { 0 };
	unsigned flags = 0;
	uint64_t v;
	int c;
	while ((c = getopt_long(argc, argv, "f:O:b:s:hU", opts, NULL)) != -1) {
		switch (c) {
		case 'U': flags |= VHDX_O_FORCE_SHARE; break;
		case 'f': ifmt = optarg; break;
		case 'O': ofmt = optarg; break;
		case 'b':
			if (parse_size(optarg, &v) < 0 || v > UINT32_MAX) {
				errf("convert: --block-size: bad size \"%s\"", optarg);
				return EXIT_USAGE;
			}
			co.block_size = (uint32_t)v;
			break;
		case 's': co.sector_size = (uint32_t)atoi(optarg); break;
		case 'o': flags |= VHDX_O_IGNORE_PARENT_ID; break;
		case 'h':
			printf("Usage: scm-vdisk convert [--format raw|vhdx] [-O|--output-format raw|vhdx] [--block-size N]\n"
			       "                         [--sector-size 512|4096] [--override-parent-id] [-U|--force-share]\n"
			       "                         SRC DST\n");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if ((ifmt && strcmp(ifmt, "raw") && strcmp(ifmt, "vhdx")) ||
	    (ofmt && strcmp(ofmt, "raw") && strcmp(ofmt, "vhdx"))) {
		errf("convert: formats are raw and vhdx");
		return EXIT_USAGE;
	}
	if (optind + 2 != argc) {
		errf("convert: expected SRC DST");
		return EXIT_USAGE;
	}
	const char *src = argv[optind], *dst = argv[optind + 1];
	if (!ofmt)
		ofmt = guess_format(dst);
	struct disk in;
	if (open_src(src, ifmt, flags, &in) < 0)
		return EXIT_FAIL;
	int ret = EXIT_FAIL, out_fd = -1;
	vhdx *out = NULL;
	_cleanup_free_ char *tmp = temp_name(dst);
	_cleanup_free_ uint8_t *buf = malloc(CHUNK);
	bool made = false;
	if (!tmp || !buf)
		goto done;
	uint64_t size = in.size;
	if (!strcmp(ofmt, "vhdx")) {
		co.size = (size + 511) / 512 * 512;
		if (!co.sector_size)
			co.sector_size = in.sector;
		if (co.size % co.sector_size)
			co.size = (co.size + co.sector_size - 1) / co.sector_size * co.sector_size;
		_cleanup_(scm_error_freep) scm_error *err = NULL;
		if (vhdx_create(tmp, &co, &err) < 0) {
			errc(err, 0);
			goto done;
		}
		made = true;
		if (vhdx_open(tmp, 0, &out, &err) < 0) {
			errc(err, 0);
			goto done;
		}
	} else {
		out_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (out_fd < 0) {
			errf("%s: %m", tmp);
			goto done;
		}
		made = true;
		if (ftruncate(out_fd, (off_t)size) < 0) {
			errf("%s: %m", tmp);
			goto done;
		}
	}
	struct progress pr = { isatty(2), -1 };
	uint64_t total = out ? co.size : size;
	for (uint64_t off = 0; off < total; off += CHUNK) {
		size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
		if (disk_read(&in, buf, n, off) < 0)
			goto done;
		progress(&pr, off + n, total);
		if (is_zero(buf, n))
			continue;
		if (out) {
			if (vhdx_write(out, buf, n, off) < 0) {
				errf("%s", vhdx_errmsg(out));
				goto done;
			}
		} else {
			for (size_t w = 0; w < n;) {
				ssize_t k = pwrite(out_fd, buf + w, n - w, (off_t)(off + w));
				if (k < 0 && errno != EINTR) {
					errf("%s: %m", tmp);
					goto done;
				}
				if (k > 0)
					w += (size_t)k;
			}
		}
	}
	if (out) {
		int r = vhdx_close_checked(out);
		out = NULL;
		if (r < 0) {
			errf("%s: close failed: %s", tmp, strerror(-r));
			goto done;
		}
	} else if (fsync(out_fd) < 0) {
		errf("%s: %m", tmp);
		goto done;
	}
	if (rename(tmp, dst) < 0) {
		errf("rename %s to %s: %m", tmp, dst);
		goto done;
	}
	made = false;
	ret = EXIT_OK;
done:
	vhdx_close(out);
	safe_close(out_fd);
	if (made)
		unlink(tmp);
	vhdx_close(in.h);
	safe_close(in.fd);
	return ret;
}

int cmd_compact(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && !strcmp(argv[1], "--help")) {
			printf("Usage: scm-vdisk compact [--online|--offline] [--detach] [--endpoint EP] FILE\n"
			       "A disk the vdisk provider holds open for writing: a job there (--detach: print\n"
			       "its id and return); else, or with --offline, FILE is rewritten here.\n");
			return EXIT_OK;
		}
		errf("compact: expected FILE");
		return EXIT_USAGE;
	}
	const char *path = argv[1];
	vhdx *h = NULL, *out = NULL;
	_cleanup_(scm_error_freep) scm_error *err = NULL;
	/* opened for writing to hold the writer lock while we copy */
	if (vhdx_open(path, 0, &h, &err) < 0) {
		errc(err, 0);
		return EXIT_FAIL;
	}
	struct vhdx_info in;
	vhdx_get_info(h, &in);
	int ret = EXIT_FAIL;
	bool made = false;
	_cleanup_free_ char *tmp = temp_name(path);
	_cleanup_free_ uint8_t *buf = malloc(CHUNK);
	if (!tmp || !buf)
		goto done;
	if (in.fixed) {
		printf("%s: fixed disk, nothing to compact\n", path);
		ret = EXIT_OK;
		goto done;
	}
	struct vhdx_create_opts co = {
		.size = in.differencing ? 0 : in.virtual_size,
		.block_size = in.block_size,
		.sector_size = in.logical_sector_size,
		.physical_sector_size = in.physical_sector_size,
		.parent = in.differencing ? vhdx_path(vhdx_parent(h)) : NULL,
		.data_write_guid = &in.data_write_guid,
		.page83 = &in.page83,
	};
	if (vhdx_create(tmp, &co, &err) < 0) {
		errc(err, 0);
		goto done;
	}
	made = true;
	if (vhdx_open(tmp, VHDX_O_KEEP_IDENTITY, &out, &err) < 0) {
		errc(err, 0);
		goto done;
	}
	/* the new file takes the place of the old: every locator entry as the
	 * old one recorded it (a Hyper-V child's Windows paths, volume_path,
	 * parent_linkage2), not only the paths create writes */
	if (in.differencing && vhdx_set_locator(out, in.locator, in.locator_len) < 0) {
		errf("%s", vhdx_errmsg(out));
		goto done;
	}
	for (uint64_t boff = 0; boff < in.virtual_size; boff += in.block_size) {
		uint64_t bend = in.virtual_size - boff < in.block_size ? in.virtual_size : boff + in.block_size;
		int st = vhdx_block_state(h, boff);
		if (st < 0) {
			errf("%s", vhdx_errmsg(h));
			goto done;
		}
		/* ZERO stays ZERO: NOT_PRESENT would promise only undefined
		 * contents (and, in a child, the parent's) */
		if (st == VHDX_PB_ZERO) {
			if (vhdx_zero_blocks(out, bend - boff, boff) < 0) {
				errf("%s", vhdx_errmsg(out));
				goto done;
			}
			continue;
		}
		bool all_zero = true;
		for (uint64_t off = boff; off < bend;) {
			uint64_t n;
			int kind;
			uint64_t want = bend - off < CHUNK ? bend - off : CHUNK;
			if (vhdx_extent(h, off, want, &n, &kind) < 0 || vhdx_read(h, buf, n, off) < 0) {
				errf("%s", vhdx_errmsg(h));
				goto done;
			}
			bool zero = kind != VHDX_EXT_PARENT && is_zero(buf, n);
			all_zero = all_zero && zero;
			/* zeros only need writing where they hide a parent's data */
			bool skip = kind == VHDX_EXT_PARENT || (!in.differencing && zero);
			if (!skip && vhdx_write(out, buf, n, off) < 0) {
				errf("%s", vhdx_errmsg(out));
				goto done;
			}
			off += n;
		}
		/* data that reads as zero in a disk without parent: ZERO says so
		 * (a block left NOT_PRESENT would only be undefined) */
		if (!in.differencing && all_zero && st == VHDX_PB_FULLY_PRESENT &&
		    vhdx_zero_blocks(out, bend - boff, boff) < 0) {
			errf("%s", vhdx_errmsg(out));
			goto done;
		}
	}
	int r = vhdx_close_checked(out);
	out = NULL;
	if (r < 0) {
		errf("%s: close failed: %s", tmp, strerror(-r));
		goto done;
	}
	if (rename(tmp, path) < 0) {
		errf("rename %s to %s: %m", tmp, path);
		goto done;
	}
	made = false;
	ret = EXIT_OK;
done:
	vhdx_close(out);
	if (made)
		unlink(tmp);
	vhdx_close(h);
	return ret;
}
