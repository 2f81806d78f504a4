/* reserve.c: the persistent reservation state machine (reserve.h), after
 * SPC-4 5.12 (PERSISTENT RESERVE OUT/IN), which NVMe's reservations copy.
 * Who may do what under each type (SPC-4 table 5.12.1):
 *
 * | type | read | write | holder |
 * | --- | --- | --- | --- |
 * | write-exclusive | anyone | holder | the reserving nexus |
 * | exclusive-access | holder | holder | the reserving nexus |
 * | write-exclusive-registrants-only | anyone | registrants | the reserving nexus |
 * | exclusive-access-registrants-only | registrants | registrants | the reserving nexus |
 * | write-exclusive-all-registrants | anyone | registrants | every registrant |
 * | exclusive-access-all-registrants | registrants | registrants | every registrant |
 *
 * Every command but the registers needs the nexus registered with the key
 * it gives, else it is a reservation conflict. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reserve.h"
#include "vhdx.h"

static const struct {
	enum vdisk_pr_type t;
	const char *name;
} types[] = {
	{ VDISK_PR_WE, "write-exclusive" },
	{ VDISK_PR_EA, "exclusive-access" },
	{ VDISK_PR_WERO, "write-exclusive-registrants-only" },
	{ VDISK_PR_EARO, "exclusive-access-registrants-only" },
	{ VDISK_PR_WEAR, "write-exclusive-all-registrants" },
	{ VDISK_PR_EAAR, "exclusive-access-all-registrants" },
};

const char *vdisk_pr_type_name(enum vdisk_pr_type t)
{
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (types[i].t == t)
			return types[i].name;
	return NULL;
}

int vdisk_pr_type_parse(const char *name, enum vdisk_pr_type *ret)
{
	for (size_t i = 0; i < sizeof types / sizeof *types; i++)
		if (!strcmp(types[i].name, name)) {
			*ret = types[i].t;
			return 0;
		}
	return -EINVAL;
}

static bool all_registrants(enum vdisk_pr_type t)
{
	return t == VDISK_PR_WEAR || t == VDISK_PR_EAAR;
}

static bool registrants_type(enum vdisk_pr_type t)
{
	return t == VDISK_PR_WERO || t == VDISK_PR_EARO || all_registrants(t);
}

static bool exclusive_access(enum vdisk_pr_type t)
{
	return t == VDISK_PR_EA || t == VDISK_PR_EARO || t == VDISK_PR_EAAR;
}

const struct vdisk_pr_reg *vdisk_pr_find(const struct vdisk_pr *pr, const char *nexus)
{
	for (size_t i = 0; i < pr->n_regs; i++)
		if (!strcmp(pr->regs[i].nexus, nexus))
			return &pr->regs[i];
	return NULL;
}

bool vdisk_pr_is_holder(const struct vdisk_pr *pr, const char *nexus)
{
	if (pr->type == VDISK_PR_NONE)
		return false;
	if (all_registrants(pr->type))
		return vdisk_pr_find(pr, nexus) != NULL;
	return !strcmp(pr->holder, nexus);
}

uint64_t vdisk_pr_holder_key(const struct vdisk_pr *pr)
{
	if (pr->type == VDISK_PR_NONE || all_registrants(pr->type))
		return 0;
	const struct vdisk_pr_reg *r = vdisk_pr_find(pr, pr->holder);
	return r ? r->key : 0;
}

int vdisk_pr_access(const struct vdisk_pr *pr, const char *nexus, bool write)
{
	if (pr->type == VDISK_PR_NONE || vdisk_pr_is_holder(pr, nexus))
		return 0;
	if (!write && !exclusive_access(pr->type))
		return 0; /* the write-exclusive types let anyone read */
	if (registrants_type(pr->type) && vdisk_pr_find(pr, nexus))
		return 0;
	return -EBADE;
}

static void reservation_drop(struct vdisk_pr *pr)
{
	pr->type = VDISK_PR_NONE;
	pr->holder[0] = 0;
}

/* Removes registration i; a holder's reservation goes with it (for the
 * all-registrants types, with the last registration). */
static void unregister_at(struct vdisk_pr *pr, size_t i)
{
	bool holder = pr->type != VDISK_PR_NONE && !all_registrants(pr->type) &&
		      !strcmp(pr->holder, pr->regs[i].nexus);
	memmove(&pr->regs[i], &pr->regs[i + 1], (pr->n_regs - i - 1) * sizeof *pr->regs);
	pr->n_regs--;
	if (holder || (all_registrants(pr->type) && !pr->n_regs))
		reservation_drop(pr);
}

static int nexus_ok(const char *nexus, scm_error **ret_err)
{
	size_t n = nexus ? strlen(nexus) : 0;
	if (!n || n >= VDISK_PR_NEXUS_MAX)
		return scm_fail(ret_err, -EINVAL, "the client's name (nexus) is empty or over %d bytes",
				VDISK_PR_NEXUS_MAX - 1);
	return 0;
}

/* The registration check every command but the registers makes. */
static int registered(const struct vdisk_pr *pr, const char *nexus, uint64_t key, scm_error **ret_err)
{
	const struct vdisk_pr_reg *r = vdisk_pr_find(pr, nexus);
	if (!r)
		return scm_fail(ret_err, -EBADE, "reservation conflict: %s is not registered", nexus);
	if (r->key != key)
		return scm_fail(ret_err, -EBADE,
				"reservation conflict: key 0x%llx is not %s's registered key",
				(unsigned long long)key, nexus);
	return 0;
}

int vdisk_pr_register(struct vdisk_pr *pr, const char *nexus, uint64_t key, uint64_t new_key, bool ignore,
		      scm_error **ret_err)
{
	int r = nexus_ok(nexus, ret_err);
	if (r < 0)
		return r;
	struct vdisk_pr_reg *reg = (struct vdisk_pr_reg *)vdisk_pr_find(pr, nexus);
	if (!ignore && (reg ? reg->key != key : key != 0))
		return scm_fail(ret_err, -EBADE,
				"reservation conflict: key 0x%llx is not %s's registered key (%s)",
				(unsigned long long)key, nexus, reg ? "another is" : "none is; register with key 0");
	if (!reg && new_key) {
		if (pr->n_regs == VDISK_PR_REGS_MAX)
			return scm_fail(ret_err, -ENOSPC, "%d registrations already, the most a disk keeps",
					VDISK_PR_REGS_MAX);
		reg = &pr->regs[pr->n_regs++];
		snprintf(reg->nexus, sizeof reg->nexus, "%s", nexus);
		reg->key = new_key;
	} else if (reg && new_key) {
		reg->key = new_key;
	} else if (reg) {
		unregister_at(pr, (size_t)(reg - pr->regs));
	}
	pr->generation++;
	return 0;
}

int vdisk_pr_reserve(struct vdisk_pr *pr, const char *nexus, uint64_t key, enum vdisk_pr_type type,
		     scm_error **ret_err)
{
	if (!vdisk_pr_type_name(type))
		return scm_fail(ret_err, -EINVAL, "reservation type %d is not one of the six", (int)type);
	int r = registered(pr, nexus, key, ret_err);
	if (r < 0)
		return r;
	if (pr->type == VDISK_PR_NONE) {
		pr->type = type;
		snprintf(pr->holder, sizeof pr->holder, "%s", all_registrants(type) ? "" : nexus);
		return 0;
	}
	if (vdisk_pr_is_holder(pr, nexus) && pr->type == type)
		return 0; /* again: nothing changes */
	return scm_fail(ret_err, -EBADE, "reservation conflict: the disk is reserved %s%s%s",
			vdisk_pr_type_name(pr->type), all_registrants(pr->type) ? "" : " by ",
			all_registrants(pr->type) ? "" : pr->holder);
}

int vdisk_pr_release(struct vdisk_pr *pr, const char *nexus, uint64_t key, enum vdisk_pr_type type,
		     scm_error **ret_err)
{
	int r = registered(pr, nexus, key, ret_err);
	if (r < 0)
		return r;
	if (!vdisk_pr_is_holder(pr, nexus))
		return 0; /* no reservation, or another's: nothing to release */
	if (pr->type != type)
		return scm_fail(ret_err, -EINVAL, "release %s: the reservation is %s",
				vdisk_pr_type_name(type) ? vdisk_pr_type_name(type) : "?",
				vdisk_pr_type_name(pr->type));
	reservation_drop(pr);
	return 0;
}

int vdisk_pr_clear(struct vdisk_pr *pr, const char *nexus, uint64_t key, scm_error **ret_err)
{
	int r = registered(pr, nexus, key, ret_err);
	if (r < 0)
		return r;
	reservation_drop(pr);
	pr->n_regs = 0;
	pr->generation++;
	return 0;
}

/* Removes every registration with key but the issuer's; how many went. */
static size_t remove_key(struct vdisk_pr *pr, uint64_t key, const char *issuer)
{
	size_t n = 0;
	for (size_t i = 0; i < pr->n_regs;) {
		if (pr->regs[i].key == key && strcmp(pr->regs[i].nexus, issuer)) {
			unregister_at(pr, i);
			n++;
		} else {
			i++;
		}
	}
	return n;
}

int vdisk_pr_preempt(struct vdisk_pr *pr, const char *nexus, uint64_t key, uint64_t victim_key,
		     enum vdisk_pr_type type, scm_error **ret_err)
{
	if (!vdisk_pr_type_name(type))
		return scm_fail(ret_err, -EINVAL, "reservation type %d is not one of the six", (int)type);
	int r = registered(pr, nexus, key, ret_err);
	if (r < 0)
		return r;
	struct vdisk_pr save = *pr;
	if (pr->type != VDISK_PR_NONE && all_registrants(pr->type) && victim_key == 0) {
		/* everyone else goes; the issuer holds the new reservation */
		for (size_t i = 0; i < pr->n_regs;)
			if (strcmp(pr->regs[i].nexus, nexus)) {
				memmove(&pr->regs[i], &pr->regs[i + 1], (pr->n_regs - i - 1) * sizeof *pr->regs);
				pr->n_regs--;
			} else {
				i++;
			}
		pr->type = type;
		snprintf(pr->holder, sizeof pr->holder, "%s", all_registrants(type) ? "" : nexus);
		pr->generation++;
		return 0;
	}
	if (victim_key == 0)
		return scm_fail(ret_err, -EINVAL, "preempt: key 0 names no registration (only under an "
						  "all-registrants reservation does it mean everyone else)");
	bool holder_key = pr->type != VDISK_PR_NONE && !all_registrants(pr->type) &&
			  vdisk_pr_holder_key(pr) == victim_key;
	size_t n = remove_key(pr, victim_key, nexus);
	if (holder_key) {
		/* the holder is preempted: its reservation becomes the issuer's */
		pr->type = type;
		snprintf(pr->holder, sizeof pr->holder, "%s", all_registrants(type) ? "" : nexus);
	} else if (!n) {
		*pr = save;
		return scm_fail(ret_err, -EBADE, "reservation conflict: no registration has key 0x%llx",
				(unsigned long long)victim_key);
	}
	pr->generation++;
	return 0;
}

/* ---- the state file ------------------------------------------------------ */

#define MAGIC "scm-vdisk-pr 1\n"

static size_t hex_nexus(const char *s, char *out)
{
	size_t n = 0;
	for (; *s; s++)
		n += (size_t)sprintf(out + n, "%02x", (unsigned char)*s);
	out[n] = 0;
	return n;
}

/* Appends to out (cap bytes) at *n; false when it does not fit. */
static bool put(char *out, size_t cap, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool put(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(out + *n, cap - *n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= cap - *n)
		return false;
	*n += (size_t)k;
	return true;
}

size_t vdisk_pr_format(const struct vdisk_pr *pr, const char *id, char *out, size_t cap)
{
	char hx[2 * VDISK_PR_NEXUS_MAX + 1];
	size_t n = 0;
	if (!cap || !put(out, cap, &n, MAGIC "disk %s\ngeneration %u\n", id, pr->generation))
		return 0;
	if (pr->type == VDISK_PR_NONE) {
		if (!put(out, cap, &n, "reservation none\n"))
			return 0;
	} else {
		hex_nexus(pr->holder, hx);
		if (!put(out, cap, &n, "reservation %s %s\n", vdisk_pr_type_name(pr->type), hx[0] ? hx : "-"))
			return 0;
	}
	for (size_t i = 0; i < pr->n_regs; i++) {
		hex_nexus(pr->regs[i].nexus, hx);
		if (!put(out, cap, &n, "register %016llx %s\n", (unsigned long long)pr->regs[i].key, hx))
			return 0;
	}
	uint32_t crc = vhdx_crc32c(0, out, n);
	return put(out, cap, &n, "crc32c %08x\n", crc) ? n : 0;
}

static int unhex_nexus(const char *s, size_t len, char *out)
{
	if (!len || len % 2 || len / 2 >= VDISK_PR_NEXUS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 2) {
		unsigned v;
		char b[3] = { s[i], s[i + 1], 0 };
		char *end;
		if (!strchr("0123456789abcdef", b[0]) || !strchr("0123456789abcdef", b[1]))
			return -EINVAL;
		v = (unsigned)strtoul(b, &end, 16);
		if (!v)
			return -EINVAL; /* no NUL inside a name */
		out[i / 2] = (char)v;
	}
	out[len / 2] = 0;
	return 0;
}

/* Splits the line at p into at most 3 space-separated words. */
static size_t words(char *line, char *w[3])
{
	size_t n = 0;
	for (char *s = line; *s && n < 3;) {
		w[n++] = s;
		char *sp = strchr(s, ' ');
		if (!sp)
			break;
		*sp = 0;
		s = sp + 1;
		if (n == 3 && *s)
			return 4; /* too many */
	}
	return n;
}

static bool hex_u64(const char *s, size_t digits, uint64_t *ret)
{
	if (strlen(s) != digits || strspn(s, "0123456789abcdef") != digits)
		return false;
	*ret = strtoull(s, NULL, 16);
	return true;
}

int vdisk_pr_parse(const char *buf, size_t len, const char *id, struct vdisk_pr *ret, char *ret_id,
		   scm_error **ret_err)
{
	if (len > VDISK_PR_FILE_MAX)
		return scm_fail(ret_err, -EINVAL, "%zu bytes, over the %d a state file may have", len, VDISK_PR_FILE_MAX);
	if (len < strlen(MAGIC) || memcmp(buf, MAGIC, strlen(MAGIC)))
		return scm_fail(ret_err, -EINVAL, "line 1: not \"scm-vdisk-pr 1\" (another format or version)");
	if (memchr(buf, 0, len) || buf[len - 1] != '\n')
		return scm_fail(ret_err, -EINVAL, "a NUL byte, or no newline at the end");
	/* the last line is the CRC of everything before it */
	size_t last = len - 1;
	while (last > 0 && buf[last - 1] != '\n')
		last--;
	uint64_t crc;
	char tail[32];
	if (len - last >= sizeof tail || len - last < 8)
		return scm_fail(ret_err, -EINVAL, "the last line is not \"crc32c\" and 8 hex digits");
	memcpy(tail, buf + last, len - last - 1);
	tail[len - last - 1] = 0;
	if (strncmp(tail, "crc32c ", 7) || !hex_u64(tail + 7, 8, &crc))
		return scm_fail(ret_err, -EINVAL, "the last line is not \"crc32c\" and 8 hex digits");
	if ((uint32_t)crc != vhdx_crc32c(0, buf, last))
		return scm_fail(ret_err, -EINVAL, "CRC-32C mismatch: the file is damaged");
	struct vdisk_pr pr = { 0 };
	bool have_disk = false, have_gen = false, have_resv = false;
	char *copy = strndup(buf, last);
	if (!copy)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	int r = 0;
	unsigned lineno = 1;
	char *save = NULL;
	strtok_r(copy, "\n", &save); /* the magic */
	for (char *line; (line = strtok_r(NULL, "\n", &save)) && r == 0;) {
		char *w[3] = { 0 };
		lineno++;
		size_t n = words(line, w);
		uint64_t v;
		if (n == 2 && !strcmp(w[0], "disk") && !have_disk) {
			if (strlen(w[1]) != 38 || w[1][0] != '{')
				r = scm_fail(ret_err, -EINVAL, "line %u: disk id is not a {GUID}", lineno);
			else if (id && strcmp(w[1], id))
				r = scm_fail(ret_err, -EINVAL, "line %u: the state of disk %s, not of this disk %s",
					     lineno, w[1], id);
			else if (ret_id)
				memcpy(ret_id, w[1], 39);
			have_disk = true;
		} else if (n == 2 && !strcmp(w[0], "generation") && !have_gen) {
			char *end;
			errno = 0;
			unsigned long g = strtoul(w[1], &end, 10);
			if (*end || !*w[1] || errno || g > UINT32_MAX || w[1][0] == '-' || w[1][0] == '+')
				r = scm_fail(ret_err, -EINVAL, "line %u: generation is not a 32-bit number", lineno);
			pr.generation = (uint32_t)g;
			have_gen = true;
		} else if (n >= 2 && !strcmp(w[0], "reservation") && !have_resv) {
			have_resv = true;
			if (n == 2 && !strcmp(w[1], "none"))
				continue;
			if (n != 3 || vdisk_pr_type_parse(w[1], &pr.type) < 0)
				r = scm_fail(ret_err, -EINVAL, "line %u: not \"reservation TYPE HOLDER\"", lineno);
			else if (all_registrants(pr.type) ? strcmp(w[2], "-")
							  : unhex_nexus(w[2], strlen(w[2]), pr.holder) < 0)
				r = scm_fail(ret_err, -EINVAL, "line %u: holder is not a hex name (or \"-\")", lineno);
		} else if (n == 3 && !strcmp(w[0], "register")) {
			if (pr.n_regs == VDISK_PR_REGS_MAX)
				r = scm_fail(ret_err, -EINVAL, "line %u: over %d registrations", lineno,
					     VDISK_PR_REGS_MAX);
			else if (!hex_u64(w[1], 16, &v) || !v)
				r = scm_fail(ret_err, -EINVAL, "line %u: key is not 16 hex digits, not 0", lineno);
			else if (unhex_nexus(w[2], strlen(w[2]), pr.regs[pr.n_regs].nexus) < 0)
				r = scm_fail(ret_err, -EINVAL, "line %u: name is not hex", lineno);
			else if (vdisk_pr_find(&pr, pr.regs[pr.n_regs].nexus))
				r = scm_fail(ret_err, -EINVAL, "line %u: a second registration of one name", lineno);
			else
				pr.regs[pr.n_regs++].key = v;
		} else {
			r = scm_fail(ret_err, -EINVAL, "line %u: unknown or repeated line \"%.40s\"", lineno, w[0]);
		}
	}
	free(copy);
	if (r < 0)
		return r;
	if (!have_disk || !have_gen || !have_resv)
		return scm_fail(ret_err, -EINVAL, "missing the %s line",
				!have_disk ? "disk" : !have_gen ? "generation" : "reservation");
	/* a holder must be registered: a reservation without one is no state
	 * the machine can reach */
	if (pr.type != VDISK_PR_NONE && !all_registrants(pr.type) && !vdisk_pr_find(&pr, pr.holder))
		return scm_fail(ret_err, -EINVAL, "the reservation's holder has no registration");
	if (all_registrants(pr.type) && !pr.n_regs)
		return scm_fail(ret_err, -EINVAL, "an all-registrants reservation without registrations");
	*ret = pr;
	return 0;
}
