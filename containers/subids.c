/* subids.c: the subordinate id range a root runtime maps its containers
 * onto, from /etc/subuid and /etc/subgid (shadow-utils' format, one
 * "NAME:START:COUNT" a line) or from a "START:COUNT" option. A range never
 * holds host id 0 and never reaches (uid_t)-1, which the kernel reserves. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "scm/macro.h"
#include "spec-internal.h"

#define ID_LIMIT 4294967295ull /* (uid_t)-1: not an id */

/* A decimal number of at most 10 digits, the whole of [s, s+n). */
static int parse_u32(const char *s, size_t n, uint64_t *ret)
{
	uint64_t v = 0;
	if (n == 0 || n > 10)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v >= ID_LIMIT)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int check_range(uint64_t start, uint64_t count)
{
	if (start == 0 || count == 0 || start + count > ID_LIMIT)
		return -EINVAL;
	return 0;
}

int container_idrange_parse(const char *text, container_idrange *ret)
{
	if (!text)
		return -EINVAL;
	const char *colon = strchr(text, ':');
	uint64_t start, count;
	if (!colon || parse_u32(text, (size_t)(colon - text), &start) < 0 ||
	    parse_u32(colon + 1, strlen(colon + 1), &count) < 0 || check_range(start, count) < 0)
		return -EINVAL;
	*ret = (container_idrange){(uint32_t)start, (uint32_t)count, (uint32_t)start, (uint32_t)count};
	return 0;
}

int container_subid_find(const char *text, size_t len, const char *user, uid_t uid,
			 uint32_t *ret_start, uint32_t *ret_count)
{
	char num[16];
	snprintf(num, sizeof(num), "%u", (unsigned)uid);
	size_t ulen = user ? strlen(user) : 0;
	for (size_t off = 0; off < len;) {
		const char *line = text + off;
		const char *nl = memchr(line, '\n', len - off);
		size_t n = nl ? (size_t)(nl - line) : len - off;
		off += n + 1;
		const char *c1 = memchr(line, ':', n);
		if (!c1 || line[0] == '#')
			continue;
		size_t nlen = (size_t)(c1 - line);
		bool match = (ulen && nlen == ulen && memcmp(line, user, ulen) == 0) ||
			     (uid != (uid_t)-1 && nlen == strlen(num) && memcmp(line, num, nlen) == 0);
		if (!match)
			continue;
		const char *rest = c1 + 1, *end = line + n;
		const char *c2 = memchr(rest, ':', (size_t)(end - rest));
		uint64_t start, count;
		if (!c2 || parse_u32(rest, (size_t)(c2 - rest), &start) < 0 ||
		    parse_u32(c2 + 1, (size_t)(end - c2 - 1), &count) < 0 ||
		    check_range(start, count) < 0)
			return -EINVAL;
		*ret_start = (uint32_t)start;
		*ret_count = (uint32_t)count;
		return 0;
	}
	return 1;
}

#define SUBID_FILE_MAX (1u << 20)

static int find_in_file(const char *path, const char *user, uint32_t *start, uint32_t *count,
			scm_error **err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		int r = -errno;
		ctr_fail(err, r, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > SUBID_FILE_MAX) {
		ctr_fail(err, -EINVAL, "%s: not a regular file of at most 1 MiB", path);
		return -EINVAL;
	}
	_cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 || (got += (size_t)n) == (size_t)st.st_size)
			break;
	}
	/* By name only: a lookup of the user's uid would load NSS modules
	 * into the runtime. */
	int r = container_subid_find(buf, got, user, (uid_t)-1, start, count);
	if (r < 0)
		ctr_fail(err, r, "%s: the line for \"%s\" is not NAME:START:COUNT with 0 < START and START+COUNT < 2^32",
			       path, user);
	return r;
}

int container_idrange_load(const char *subuid, const char *subgid, const char *user,
			   container_idrange *ret, scm_error **ret_err)
{
	container_idrange r = {0};
	int k = find_in_file(subuid ? subuid : "/etc/subuid", user, &r.uid_start, &r.uid_count, ret_err);
	if (k != 0)
		return k;
	k = find_in_file(subgid ? subgid : "/etc/subgid", user, &r.gid_start, &r.gid_count, ret_err);
	if (k != 0)
		return k;
	*ret = r;
	return 0;
}
