/* vjob.c: the job state machine and the job journal (vjob.h). The journal
 * is text, one "key value" line each in a fixed order, ended by a CRC-32C
 * of everything before the "end" line, so a torn or edited file is refused
 * rather than half believed. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhdx.h"
#include "vjob.h"

static const char *const state_names[VJOB_STATE_MAX] = { "running", "paused", "waiting", "done",
							 "failed", "cancelled" };
static const char *const kind_names[VJOB_KIND_MAX] = { "snapshot", "commit",         "stream",
							 "compact",  "migrate-mirror", "migrate-snapshot",
							 "migrated" };
static const char *const event_names[VJOB_EV_MAX] = { "pause", "resume", "cancel", "switch", "done", "fail" };

const char *vjob_state_name(enum vjob_state s)
{
	return (unsigned)s < VJOB_STATE_MAX ? state_names[s] : "?";
}

const char *vjob_kind_name(enum vjob_kind k)
{
	return (unsigned)k < VJOB_KIND_MAX ? kind_names[k] : "?";
}

int vjob_state_parse(const char *s)
{
	for (int i = 0; i < VJOB_STATE_MAX; i++)
		if (!strcmp(s, state_names[i]))
			return i;
	return -EINVAL;
}

int vjob_kind_parse(const char *s)
{
	for (int i = 0; i < VJOB_KIND_MAX; i++)
		if (!strcmp(s, kind_names[i]))
			return i;
	return -EINVAL;
}

/* The whole machine: what each event does in each state ("-": refused).
 * A paused job may be cancelled; a waiting job (switch-over queued) may be
 * paused, which holds the switch-over back. */
int vjob_transition(enum vjob_state s, enum vjob_event ev, enum vjob_state *ret, scm_error **ret_err)
{
	if ((unsigned)s >= VJOB_STATE_MAX || (unsigned)ev >= VJOB_EV_MAX)
		return scm_fail(ret_err, -EINVAL, "job: no state %d or event %d", (int)s, (int)ev);
	if (vjob_finished(s))
		return scm_fail(ret_err, -EINVAL, "the job is %s already: it cannot %s", state_names[s],
				event_names[ev]);
	enum vjob_state n = s;
	switch (ev) {
	case VJOB_EV_PAUSE: n = VJOB_PAUSED; break;
	case VJOB_EV_RESUME: n = s == VJOB_PAUSED ? VJOB_RUNNING : s; break;
	case VJOB_EV_CANCEL: n = VJOB_CANCELLED; break;
	case VJOB_EV_FAIL: n = VJOB_FAILED; break;
	case VJOB_EV_SWITCH:
		if (s != VJOB_RUNNING)
			return scm_fail(ret_err, -EINVAL, "the job is %s: it cannot switch over", state_names[s]);
		n = VJOB_WAITING;
		break;
	case VJOB_EV_DONE:
		if (s == VJOB_PAUSED)
			return scm_fail(ret_err, -EINVAL, "the job is paused: it cannot finish");
		n = VJOB_DONE;
		break;
	default: break;
	}
	*ret = n;
	return 0;
}

static bool path_ok(const char *p)
{
	return !strchr(p, '\n') && strlen(p) < VJOB_PATH_MAX;
}

int vjob_journal_format(const struct vjob_journal *j, char *buf, size_t size)
{
	if (!j->disk[0] || !path_ok(j->disk) || !path_ok(j->target) || (unsigned)j->kind >= VJOB_KIND_MAX ||
	    (unsigned)j->state >= VJOB_STATE_MAX)
		return -EINVAL;
	int n = snprintf(buf, size,
			 "scm-vdisk-job %u\nid %" PRIu64 "\nkind %s\nstate %s\ndisk %s\ntarget %s\ndone %" PRIu64
			 "\ntotal %" PRIu64 "\n",
			 VJOB_JOURNAL_VERSION, j->id, kind_names[j->kind], state_names[j->state], j->disk,
			 j->target, j->done, j->total);
	if (n < 0 || (size_t)n + 14 > size)
		return -ENOSPC;
	char tail[16];
	int t = snprintf(tail, sizeof tail, "end %08" PRIx32 "\n", vhdx_crc32c(0, buf, (size_t)n));
	memcpy(buf + n, tail, (size_t)t + 1);
	return n + t;
}

/* The next line of [*p, end) that starts with key and a space: its value
 * (NUL-terminated in out). */
static int take(const char **p, const char *end, const char *key, char *out, size_t outsz, unsigned line,
		scm_error **ret_err)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t kl = strlen(key);
	if (!nl)
		return scm_fail(ret_err, -EINVAL, "job journal line %u: missing (expected \"%s\")", line, key);
	if ((size_t)(nl - *p) <= kl || memcmp(*p, key, kl) || (*p)[kl] != ' ')
		return scm_fail(ret_err, -EINVAL, "job journal line %u: expected \"%s VALUE\"", line, key);
	size_t vl = (size_t)(nl - *p) - kl - 1;
	if (vl >= outsz)
		return scm_fail(ret_err, -EINVAL, "job journal line %u: the %s is too long", line, key);
	memcpy(out, *p + kl + 1, vl);
	out[vl] = 0;
	if (memchr(out, 0, vl))
		return scm_fail(ret_err, -EINVAL, "job journal line %u: a NUL byte in the %s", line, key);
	*p = nl + 1;
	return 0;
}

static int take_u64(const char **p, const char *end, const char *key, uint64_t *ret, unsigned line,
		    scm_error **ret_err)
{
	char v[32], *e;
	int r = take(p, end, key, v, sizeof v, line, ret_err);
	if (r < 0)
		return r;
	/* digits only, no sign, space or leading zero: one spelling per number */
	bool digits = v[0] != 0;
	for (const char *c = v; *c; c++)
		digits = digits && *c >= '0' && *c <= '9';
	errno = 0;
	unsigned long long x = digits ? strtoull(v, &e, 10) : 0;
	if (!digits || *e || errno || (v[0] == '0' && v[1]))
		return scm_fail(ret_err, -EINVAL, "job journal line %u: %s \"%s\" is not a decimal number", line,
				key, v);
	*ret = x;
	return 0;
}

int vjob_journal_parse(const char *buf, size_t len, struct vjob_journal *ret, scm_error **ret_err)
{
	const char *p = buf, *end = buf + len;
	char v[32];
	uint64_t ver, u;
	int r;
	memset(ret, 0, sizeof *ret);
	if (len > VJOB_JOURNAL_MAX)
		return scm_fail(ret_err, -EINVAL, "job journal: %zu bytes, more than a journal takes (%d)", len,
				VJOB_JOURNAL_MAX);
	if ((r = take_u64(&p, end, "scm-vdisk-job", &ver, 1, ret_err)) < 0)
		return r;
	if (ver != VJOB_JOURNAL_VERSION)
		return scm_fail(ret_err, ver > VJOB_JOURNAL_VERSION ? -EPROTONOSUPPORT : -EINVAL,
				"job journal: version %" PRIu64 ", this provider reads version %d", ver,
				VJOB_JOURNAL_VERSION);
	ret->version = (unsigned)ver;
	if ((r = take_u64(&p, end, "id", &ret->id, 2, ret_err)) < 0)
		return r;
	if ((r = take(&p, end, "kind", v, sizeof v, 3, ret_err)) < 0)
		return r;
	if ((r = vjob_kind_parse(v)) < 0)
		return scm_fail(ret_err, -EINVAL, "job journal line 3: no job kind \"%s\"", v);
	ret->kind = r;
	if ((r = take(&p, end, "state", v, sizeof v, 4, ret_err)) < 0)
		return r;
	if ((r = vjob_state_parse(v)) < 0)
		return scm_fail(ret_err, -EINVAL, "job journal line 4: no job state \"%s\"", v);
	ret->state = r;
	if ((r = take(&p, end, "disk", ret->disk, sizeof ret->disk, 5, ret_err)) < 0)
		return r;
	if (!ret->disk[0])
		return scm_fail(ret_err, -EINVAL, "job journal line 5: the disk is empty");
	if ((r = take(&p, end, "target", ret->target, sizeof ret->target, 6, ret_err)) < 0)
		return r;
	if ((r = take_u64(&p, end, "done", &ret->done, 7, ret_err)) < 0 ||
	    (r = take_u64(&p, end, "total", &ret->total, 8, ret_err)) < 0)
		return r;
	if (ret->done > ret->total)
		return scm_fail(ret_err, -EINVAL, "job journal: done %" PRIu64 " is past total %" PRIu64, ret->done,
				ret->total);
	uint32_t crc = vhdx_crc32c(0, buf, (size_t)(p - buf));
	if ((r = take(&p, end, "end", v, sizeof v, 9, ret_err)) < 0)
		return r;
	char *e;
	bool hex = strlen(v) == 8;
	for (const char *c = v; *c; c++)
		hex = hex && ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f'));
	errno = 0;
	u = hex ? strtoull(v, &e, 16) : 0;
	if (!hex || *e || errno || u != crc)
		return scm_fail(ret_err, -EINVAL, "job journal line 9: checksum \"%s\", the lines above sum to %08" PRIx32,
				v, crc);
	if (p != end)
		return scm_fail(ret_err, -EINVAL, "job journal: %zu bytes after the end line", (size_t)(end - p));
	return 0;
}

static void names(const char *disk_name, char *jn, char *tn, size_t n)
{
	snprintf(jn, n, "%s.job", disk_name);
	snprintf(tn, n, "%s.job.tmp", disk_name);
}

int vjob_journal_write(int dirfd, const char *disk_name, const struct vjob_journal *j, scm_error **ret_err)
{
	char buf[VJOB_JOURNAL_MAX], jn[VJOB_PATH_MAX + 16], tn[VJOB_PATH_MAX + 16];
	int n = vjob_journal_format(j, buf, sizeof buf);
	if (n < 0)
		return scm_fail(ret_err, n, "job journal of %s: cannot be written (a path too long or with a newline)",
				disk_name);
	names(disk_name, jn, tn, sizeof jn);
	/* a new file, never one found there: a hard link planted under the
	 * temporary name would have us truncate whatever it leads to */
	(void)unlinkat(dirfd, tn, 0);
	int fd = openat(dirfd, tn, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "job journal %s: %m", tn);
	ssize_t w = write(fd, buf, (size_t)n);
	int r = w == n ? 0 : w < 0 ? -errno : -EIO;
	if (!r && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (!r && renameat(dirfd, tn, dirfd, jn) < 0)
		r = -errno;
	if (!r && fsync(dirfd) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dirfd, tn, 0);
		return scm_fail(ret_err, r, "job journal %s: writing it failed: %s", jn, strerror(-r));
	}
	return 0;
}

int vdisk_own_file(int fd, const char *what, const char *name, scm_error **ret_err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return scm_fail(ret_err, -errno, "%s %s: %m", what, name);
	if (!S_ISREG(st.st_mode))
		return scm_fail(ret_err, -EPERM, "%s %s: not a regular file: not believed", what, name);
	if (st.st_uid != geteuid() || (st.st_mode & 022))
		return scm_fail(ret_err, -EPERM,
				"%s %s: not the provider's own (owned by uid %u, mode %o; the provider runs as "
				"uid %u and writes it 0600): not believed",
				what, name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
	return 0;
}

int vjob_journal_read(int dirfd, const char *disk_name, struct vjob_journal *ret, scm_error **ret_err)
{
	char buf[VJOB_JOURNAL_MAX + 1], jn[VJOB_PATH_MAX + 16], tn[VJOB_PATH_MAX + 16];
	names(disk_name, jn, tn, sizeof jn);
	int fd = openat(dirfd, jn, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : scm_fail(ret_err, -errno, "job journal %s: %m", jn);
	/* a journal steers a job the provider runs, so one someone else wrote
	 * (or may rewrite) is not believed */
	int r = vdisk_own_file(fd, "job journal", jn, ret_err);
	if (r < 0) {
		close(fd);
		return r;
	}
	errno = 0;
	ssize_t n = read(fd, buf, sizeof buf);
	int e = errno;
	close(fd);
	if (n < 0)
		return scm_fail(ret_err, -e, "job journal %s: %s", jn, strerror(e));
	r = vjob_journal_parse(buf, (size_t)n, ret, ret_err);
	return r < 0 ? scm_fail(ret_err, r, "job journal %s", jn) : 0;
}

int vjob_journal_remove(int dirfd, const char *disk_name, scm_error **ret_err)
{
	char jn[VJOB_PATH_MAX + 16], tn[VJOB_PATH_MAX + 16];
	names(disk_name, jn, tn, sizeof jn);
	if (unlinkat(dirfd, jn, 0) < 0 && errno != ENOENT)
		return scm_fail(ret_err, -errno, "job journal %s: %m", jn);
	if (fsync(dirfd) < 0)
		return scm_fail(ret_err, -errno, "job journal %s: fsync of its directory: %m", jn);
	return 0;
}
