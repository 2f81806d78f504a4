/* offload.c: scm-vdisk's offload copies (docs/vdisk.md "Offload copy"):
 * what a client of two providers does. offload-copy opens the source
 * read-only through one service and the destination read-write through
 * another (or the same), asks the source for a token (offload_read) and
 * hands it to the destination (offload_write); the providers move the
 * data between them. This command never maps the data buffers it is
 * given: it carries no data. offload-read and offload-write are the two
 * halves, for scripts (the token is good while offload-read holds the
 * source handle: until its standard input ends). */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scm/vdisk-client.h"
#include "tool.h"

struct side {
	const char *endpoint, *service;
	scm_channel *ch;
	uint64_t handle, vsize;
};

/* PATH[:OFF[:LEN]]: the part after the last '/' is split at ':'. */
static int parse_spec(const char *spec, char **ret_path, uint64_t *ret_off, uint64_t *ret_len, bool with_len)
{
	const char *slash = strrchr(spec, '/');
	const char *colon = strchr(slash ? slash : spec, ':');
	*ret_off = *ret_len = 0;
	if (colon) {
		char *rest = strdup(colon + 1), *len = strchr(rest, ':');
		if (len)
			*len++ = '\0';
		int bad = !with_len && len ? -EINVAL : parse_size(rest, ret_off);
		if (!bad && len)
			bad = parse_size(len, ret_len);
		free(rest);
		if (bad < 0) {
			errf("%s: expected %s", spec, with_len ? "PATH[:OFFSET[:LENGTH]]" : "PATH[:OFFSET]");
			return -EINVAL;
		}
	}
	_cleanup_free_ char *p = colon ? strndup(spec, (size_t)(colon - spec)) : strdup(spec);
	*ret_path = abs_path(p);
	return 0;
}

static int side_open(struct side *s, const char *path, bool readonly, scm_error **err)
{
	int r = s->endpoint ? scm_connect_at(s->endpoint, s->service, &s->ch, err)
			    : scm_connect(s->service, &s->ch, err);
	if (r)
		return r;
	int buf = -1;
	uint64_t bs, ss;
	bool ro;
	r = scm_vdisk_open(s->ch, path, readonly, false, &s->handle, &buf, &bs, &s->vsize, &ss, &ro, err);
	if (buf >= 0)
		close(buf); /* the data buffer: never mapped, no data goes through here */
	return r;
}

static void side_close(struct side *s)
{
	if (s->ch && s->handle)
		scm_vdisk_close(s->ch, s->handle, NULL);
	scm_channel_free(s->ch);
}

static int write_token(struct side *dst, const char *token, uint64_t off, bool json, scm_error **err)
{
	json_object *res = NULL;
	/* a whole disk may take a while: the providers answer when it is done */
	scm_channel_set_timeout(dst->ch, SCM_TIMEOUT_INFINITE);
	int r = scm_vdisk_offload_write(dst->ch, dst->handle, token, off, &res, err);
	if (r)
		return r;
	if (json)
		printf("%s\n", json_object_to_json_string_ext(res, JSON_C_TO_STRING_PLAIN));
	else {
		json_object *v;
		uint64_t n[3] = { 0 };
		const char *k[3] = { "length", "data", "zero" }, *mode = "", *how = "";
		for (int i = 0; i < 3; i++)
			if (json_object_object_get_ex(res, k[i], &v))
				n[i] = json_object_get_uint64(v);
		if (json_object_object_get_ex(res, "mode", &v))
			mode = json_object_get_string(v);
		if (json_object_object_get_ex(res, "staged_by", &v))
			how = json_object_get_string(v);
		printf("copied %llu bytes (%llu data, %llu zero), %s mode, staged by %s\n", (unsigned long long)n[0],
		       (unsigned long long)n[1], (unsigned long long)n[2], mode, how);
	}
	json_object_put(res);
	return 0;
}

int cmd_offload(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },      { "service", required_argument, NULL, 's' },
		{ "dest-endpoint", required_argument, NULL, 'E' }, { "dest-service", required_argument, NULL, 'S' },
		{ "ttl-ms", required_argument, NULL, 't' },        { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },                { 0 },
	};
	struct side src = { .service = "vdisk" }, dst = { .service = NULL };
	uint64_t ttl = 0;
	bool json = false;
	int c;
	enum { COPY, READ, WRITE } what = !strcmp(cmd, "offload-copy") ? COPY
					  : !strcmp(cmd, "offload-read") ? READ
					  : !strcmp(cmd, "offload-write") ? WRITE
									  : -1;
	if ((int)what < 0) {
		errf("unknown command '%s' (offload-copy, offload-read, offload-write)", cmd);
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'e': src.endpoint = optarg; break;
		case 's': src.service = optarg; break;
		case 'E': dst.endpoint = optarg; break;
		case 'S': dst.service = optarg; break;
		case 'j': json = true; break;
		case 't':
			if (parse_size(optarg, &ttl) < 0) {
				errf("--ttl-ms %s: expected milliseconds", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			printf("Usage: scm-vdisk offload-copy [--endpoint EP] [--service S] [--dest-endpoint EP]\n"
			       "                 [--dest-service S] [--ttl-ms N] [--json] SRC[:OFF[:LEN]] DEST[:OFF]\n"
			       "       scm-vdisk offload-read [--endpoint EP] [--service S] [--ttl-ms N] SRC[:OFF[:LEN]]\n"
			       "       scm-vdisk offload-write [--endpoint EP] [--service S] [--json] TOKEN DEST[:OFF]\n");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	int want = what == READ ? 1 : 2;
	if (argc - optind != want) {
		errf("%s: expected %s (see --help)", cmd,
		     what == COPY ? "SRC[:OFF[:LEN]] DEST[:OFF]" : what == READ ? "SRC[:OFF[:LEN]]" : "TOKEN DEST[:OFF]");
		return EXIT_USAGE;
	}
	if (what == WRITE) { /* its only side is the destination */
		dst.endpoint = src.endpoint;
		dst.service = src.service;
	}
	if (!dst.endpoint)
		dst.endpoint = src.endpoint;
	if (!dst.service)
		dst.service = src.service;
	_cleanup_free_ char *spath = NULL, *dpath = NULL;
	uint64_t soff = 0, slen = 0, doff = 0, unused;
	if ((what != WRITE && parse_spec(argv[optind], &spath, &soff, &slen, true) < 0) ||
	    (what != READ && parse_spec(argv[optind + 1 - (what == READ)], &dpath, &doff, &unused, false) < 0))
		return EXIT_USAGE;
	scm_error *err = NULL;
	int r = 0;
	_cleanup_free_ char *token = NULL;
	uint64_t len = 0, got_ttl = 0;
	if (what != WRITE && (r = side_open(&src, spath, true, &err)) == 0)
		r = scm_vdisk_offload_read(src.ch, src.handle, soff, slen, ttl, &token, &len, &got_ttl, &err);
	if (!r && what == READ) {
		printf("%s %llu %llu\n", token, (unsigned long long)len, (unsigned long long)got_ttl);
		fflush(stdout);
		char b[256];
		while (read(STDIN_FILENO, b, sizeof b) > 0)
			; /* the token lives while the source handle does */
	}
	if (!r && what != READ && (r = side_open(&dst, dpath, false, &err)) == 0)
		r = write_token(&dst, what == WRITE ? argv[optind] : token, doff, json, &err);
	side_close(&dst);
	side_close(&src);
	if (r) {
		errc(err, r);
		scm_error_free(err);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}
