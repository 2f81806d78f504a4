/* restart-state.c: the state a restarting scmd hands its successor, in a
 * sealed memfd: a header (magic, version, flags, length; struct
 * state_header), JSON text and, from version 2 on, the channel table
 * (restart-chans.c). Read back, the header and every member's
 * type are checked before anything is believed; the fds it names are
 * checked where they are used (restart-load.c). The same reader is the
 * dry run (`scmd --check-state FD`), so a binary that cannot read the
 * state says so while the old scmd still runs. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "container.h"
#include "restart.h"

/* Version 2's table starts on an 8-byte boundary behind the JSON. */
static size_t chans_offset(uint64_t json_len)
{
	return (sizeof(struct state_header) + json_len + 7) & ~(size_t)7;
}

int state_memfd_write(const char *json, size_t len, const uint8_t *chans, size_t chans_len, uint32_t version,
		      int *ret_fd, scm_error **ret_err)
{
	static const uint8_t zero[8];
	struct state_header h = { .version = htole32(version), .length = htole64(len) };
	memcpy(h.magic, SCMD_STATE_MAGIC, sizeof(h.magic));
	_cleanup_close_ int fd = memfd_create("scmd-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "memfd_create: %m");
	size_t pad = chans ? chans_offset(len) - sizeof(h) - len : 0;
	struct iovec iov[4] = { { &h, sizeof(h) }, { (void *)json, len }, { (void *)zero, pad }, { (void *)chans, chans_len } };
	size_t want = sizeof(h) + len + pad + (chans ? chans_len : 0);
	ssize_t n = writev(fd, iov, chans ? 4 : 2);
	if (n < 0 || (size_t)n != want)
		return scm_fail(ret_err, n < 0 ? -errno : -EIO, "writing the state: %s", n < 0 ? strerror(errno) : "short");
	/* nobody changes it once written: the successor reads what we checked */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		return scm_fail(ret_err, -errno, "sealing the state: %m");
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int state_out_memfd(struct state_out *o, int *ret_fd, scm_error **ret_err)
{
	size_t len = 0;
	const char *text = json_object_to_json_string_length(o->json, JSON_C_TO_STRING_PLAIN, &len);
	if (!text)
		return scm_fail(ret_err, -ENOMEM, "the state's JSON");
	return state_memfd_write(text, len, o->chans, o->chans_len, SCMD_STATE_VERSION, ret_fd, ret_err);
}

void state_out_done(struct state_out *o)
{
	json_object_put(o->json);
	free(o->chans);
	free(o->fds);
	*o = (struct state_out){ 0 };
}

static int validate(json_object *st, uint32_t version, bool deep, scm_error **ret_err);

static int state_read(int fd, json_object **ret, uint32_t *ret_version, struct state_chans *ret_chans, bool deep,
		      scm_error **ret_err)
{
	struct state_header h;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return scm_fail(ret_err, -errno, "state fd %d: %m", fd);
	if (!S_ISREG(st.st_mode))
		return scm_fail(ret_err, SCM_E_INVALID, "state fd %d: not a memfd or file", fd);
	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || memcmp(h.magic, SCMD_STATE_MAGIC, 8) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "state fd %d: no scmd state header (magic %s)", fd,
				SCMD_STATE_MAGIC);
	h.version = le32toh(h.version);
	h.flags = le32toh(h.flags);
	h.length = le64toh(h.length);
	if (h.version < SCMD_STATE_MIN_VERSION || h.version > SCMD_STATE_VERSION)
		return scm_fail(ret_err, SCM_E_INVALID,
				"state version %u: this scmd reads versions %u to %u", h.version,
				SCMD_STATE_MIN_VERSION, SCMD_STATE_VERSION);
	if (h.flags != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "state flags 0x%x: this scmd knows none", h.flags);
	bool table = h.version >= SCMD_STATE_CHANS_VERSION;
	if (h.length > SCMD_STATE_MAX_BYTES || (uint64_t)st.st_size > SCMD_STATE_MAX_BYTES ||
	    (!table && (uint64_t)st.st_size != sizeof(h) + h.length) ||
	    (table && (uint64_t)st.st_size < chans_offset(h.length) + SCMD_CHANS_HEADER))
		return scm_fail(ret_err, SCM_E_INVALID, "state length %llu does not match the memfd (%lld bytes)",
				(unsigned long long)h.length, (long long)st.st_size);
	_cleanup_free_ char *text = malloc(h.length + 1);
	if (!text)
		return -ENOMEM;
	if (pread(fd, text, h.length, sizeof(h)) != (ssize_t)h.length)
		return scm_fail(ret_err, -EIO, "reading the state: short");
	text[h.length] = 0;
	/* not scm_json_parse: that is for frames, and a state with thousands
	 * of containers is far over a frame's limit; the length is checked above */
	json_tokener *tok = json_tokener_new_ex(32);
	if (!tok)
		return -ENOMEM;
	json_object *o = json_tokener_parse_ex(tok, text, (int)h.length);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!o || je != json_tokener_success || used != h.length) {
		json_object_put(o);
		return scm_fail(ret_err, SCM_E_INVALID, "state version %u: not JSON (%s at byte %zu)", h.version,
				je == json_tokener_success ? "trailing data" : json_tokener_error_desc(je), used);
	}
	int r;
	struct state_chans chans = { 0 };
	if ((r = validate(o, h.version, deep, ret_err)) == 0 && table) {
		size_t off = chans_offset(h.length), len = (size_t)st.st_size - off;
		_cleanup_free_ uint8_t *bin = malloc(len ? len : 1);
		if (!bin)
			r = -ENOMEM;
		else if (pread(fd, bin, len, (off_t)off) != (ssize_t)len)
			r = scm_fail(ret_err, -EIO, "reading the state's channel table: short");
		else
			r = chans_decode(bin, len, json_object_array_length(json_object_object_get(o, "services")),
					 json_object_array_length(json_object_object_get(o, "endpoints")), &chans,
					 ret_err);
	}
	if (r != 0) {
		json_object_put(o);
		return r;
	}
	*ret = o;
	if (ret_version)
		*ret_version = h.version;
	if (ret_chans)
		*ret_chans = chans;
	else
		state_chans_free(&chans);
	return 0;
}

int state_memfd_read(int fd, json_object **ret, uint32_t *ret_version, struct state_chans *ret_chans,
		     scm_error **ret_err)
{
	return state_read(fd, ret, ret_version, ret_chans, true, ret_err);
}

int state_memfd_read_restore(int fd, json_object **ret, struct state_chans *ret_chans, scm_error **ret_err)
{
	return state_read(fd, ret, NULL, ret_chans, false, ret_err);
}

/* ---- the structure ------------------------------------------------------ */


enum ft { T_OPT_BOOL, T_INT, T_FD, T_STR, T_STR_NULL, T_BOOL, T_OBJ, T_OBJ_NULL, T_ARR, T_STRV, T_ANY, T_OPT_OBJ, T_FDV };
struct field {
	const char *key;
	enum ft t;
	const struct field *sub; /* T_OBJ: its members; T_ARR: each element's (objects) */
};

static const struct field f_limit[] = { { "channels", T_INT, NULL }, { "pending", T_INT, NULL }, { "conns", T_INT, NULL },
					{ "queued", T_INT, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_scmd[] = { { "generation", T_INT, NULL }, { "started", T_INT, NULL }, { "next_channel", T_INT, NULL },
				       { "next_container", T_INT, NULL }, { "ctr_serial", T_INT, NULL }, { "instance", T_STR, NULL },
				       { "lock_fd", T_INT, NULL }, { "control_activated", T_OPT_BOOL, NULL },
				       { NULL, T_ANY, NULL } };
static const struct field f_reply[] = { { "fd", T_FD, NULL }, { "call_id", T_INT, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_endpoint[] = { { "name", T_STR, NULL }, { "path", T_STR, NULL }, { "dir", T_STR_NULL, NULL },
					   { "owner", T_INT, NULL }, { "profiles", T_STRV, NULL }, { "limit", T_OBJ, f_limit },
					   { "fd", T_FD, NULL }, { "container", T_BOOL, NULL }, { "provider_of", T_STR_NULL, NULL },
					   { "peer_uid_min", T_INT, NULL }, { "peer_uid_count", T_INT, NULL },
					   { "activated", T_OPT_BOOL, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_conn[] = { { "fd", T_FD, NULL }, { "endpoint", T_STR_NULL, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_pending[] = { { "conn", T_FD, NULL }, { "call_id", T_INT, NULL }, { "t_start", T_INT, NULL },
					  { "t_decided", T_INT, NULL }, { "grant", T_OBJ, NULL }, { "origin", T_STR, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_ckpt[] = { { "state_fd", T_INT, NULL }, { "fds", T_FDV, NULL }, { "next_fds", T_FDV, NULL },
				       { "next_over", T_BOOL, NULL }, { "counters", T_ARR, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_service[] = { { "manifest", T_STR, NULL }, { "origin", T_STR, NULL }, { "state", T_INT, NULL },
					  { "pid", T_INT, NULL }, { "ctl_fd", T_INT, NULL }, { "timer_ms", T_INT, NULL },
					  { "backoff_ms", T_INT, NULL }, { "started_at", T_INT, NULL }, { "last_status", T_INT, NULL },
					  { "counters", T_ARR, NULL }, { "container_name", T_STR_NULL, NULL },
					  { "pending", T_ARR, f_pending }, { "checkpoint", T_OPT_OBJ, f_ckpt }, { NULL, T_ANY, NULL } };
static const struct field f_channel[] = { { "id", T_INT, NULL }, { "fd", T_FD, NULL }, { "service", T_STR, NULL },
					  { "endpoint", T_STR, NULL }, { "pid", T_INT, NULL }, { "uid", T_INT, NULL }, { "gid", T_INT, NULL },
					  { "created", T_INT, NULL }, { "origin", T_STR, NULL }, { "grant", T_STR_NULL, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_ctr[] = { { "name", T_STR, NULL }, { "serial", T_INT, NULL }, { "exited", T_BOOL, NULL },
				      { "status", T_INT, NULL }, { "started", T_INT, NULL }, { "ended", T_INT, NULL },
				      { "log_path", T_STR_NULL, NULL }, { "cmdline", T_STR_NULL, NULL },
				      { "state_path", T_STR_NULL, NULL }, { "sandbox", T_STR_NULL, NULL }, { "paused", T_BOOL, NULL },
				      { "endpoint", T_STR_NULL, NULL }, { "provider_of", T_STR_NULL, NULL }, { "out_fd", T_INT, NULL },
				      { "log_fd", T_INT, NULL }, { "attach_fd", T_INT, NULL }, { "log_size", T_INT, NULL },
				      { "log_file_max", T_INT, NULL }, { "log_files", T_INT, NULL }, { "fds", T_INT, NULL },
				      { "kill_in_ms", T_INT, NULL }, { "waiters", T_ARR, NULL }, { "container", T_OBJ_NULL, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_exec[] = { { "pid", T_INT, NULL }, { "conn", T_INT, NULL }, { "call_id", T_INT, NULL },
				       { "name", T_STR, NULL }, { "failed", T_BOOL, NULL }, { NULL, T_ANY, NULL } };
static const struct field f_top[] = { { "scmd", T_OBJ, f_scmd }, { "store", T_BOOL, NULL }, { "reply", T_OBJ_NULL, f_reply },
				      { "control_fd", T_INT, NULL }, { "endpoints", T_ARR, f_endpoint },
				      { "conns", T_ARR, f_conn }, { "services", T_ARR, f_service },
				      { "containers", T_ARR, f_ctr },
				      { "execs", T_ARR, f_exec }, { "fds", T_ARR, NULL }, { NULL, T_ANY, NULL } };

static const char *const type_names[] = { "true or false", "an integer", "an fd number", "a string", "a string or null",
					  "true or false", "an object", "an object or null", "an array",
					  "an array of strings", "anything", "an object if there", "an array of fd numbers" };

static int check(json_object *o, const struct field *fs, const char *ptr, scm_error **ret_err)
{
	for (const struct field *f = fs; f->key; f++) {
		json_object *v = NULL;
		bool there = json_object_object_get_ex(o, f->key, &v);
		bool ok;
		switch (f->t) {
		case T_INT: ok = json_object_is_type(v, json_type_int); break;
		case T_FD:
			ok = json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0 &&
			     json_object_get_int64(v) < (1 << 24);
			break;
		case T_STR: ok = json_object_is_type(v, json_type_string); break;
		case T_STR_NULL: ok = there && (!v || json_object_is_type(v, json_type_string)); break;
		case T_BOOL: ok = json_object_is_type(v, json_type_boolean); break;
		case T_OPT_BOOL: ok = !there || json_object_is_type(v, json_type_boolean); break;
		case T_OBJ: ok = json_object_is_type(v, json_type_object); break;
		case T_OBJ_NULL: ok = there && (!v || json_object_is_type(v, json_type_object)); break;
		case T_OPT_OBJ: ok = !there || json_object_is_type(v, json_type_object); break;
		case T_ARR: ok = json_object_is_type(v, json_type_array); break;
		case T_STRV:
			ok = json_object_is_type(v, json_type_array);
			for (size_t i = 0; ok && i < json_object_array_length(v); i++)
				ok = json_object_is_type(json_object_array_get_idx(v, i), json_type_string);
			break;
		case T_FDV:
			ok = json_object_is_type(v, json_type_array);
			for (size_t i = 0; ok && i < json_object_array_length(v); i++) {
				json_object *e = json_object_array_get_idx(v, i);
				ok = json_object_is_type(e, json_type_int) && json_object_get_int64(e) >= 0 &&
				     json_object_get_int64(e) < (1 << 24);
			}
			break;
		default: ok = there; break;
		}
		if (!ok)
			return scm_fail(ret_err, SCM_E_INVALID, "state %s/%s: expected %s", ptr, f->key,
					type_names[f->t]);
		if (!f->sub || !v)
			continue;
		char sub[256];
		if (f->t == T_OBJ || f->t == T_OBJ_NULL || f->t == T_OPT_OBJ) {
			snprintf(sub, sizeof(sub), "%s/%s", ptr, f->key);
			int r = check(v, f->sub, sub, ret_err);
			if (r != 0)
				return r;
			continue;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			json_object *e = json_object_array_get_idx(v, i);
			snprintf(sub, sizeof(sub), "%s/%s/%zu", ptr, f->key, i);
			if (!json_object_is_type(e, json_type_object))
				return scm_fail(ret_err, SCM_E_INVALID, "state %s: expected an object", sub);
			int r = check(e, f->sub, sub, ret_err);
			if (r != 0)
				return r;
		}
	}
	return 0;
}

int state_validate(json_object *st, uint32_t version, scm_error **ret_err)
{
	return validate(st, version, true, ret_err);
}

static int validate(json_object *st, uint32_t version, bool deep, scm_error **ret_err)
{
	if (!json_object_is_type(st, json_type_object))
		return scm_fail(ret_err, SCM_E_INVALID, "state version %u: not a JSON object", version);
	int r = check(st, f_top, "", ret_err);
	if (r != 0)
		return r;
	/* version 1's channels are JSON objects; version 2's a table behind
	 * the JSON (restart-chans.c), and the JSON has none */
	static const struct field f_v1[] = { { "channels", T_ARR, f_channel }, { NULL, T_ANY, NULL } };
	if (version < SCMD_STATE_CHANS_VERSION && (r = check(st, f_v1, "", ret_err)) != 0)
		return r;
	if (version >= SCMD_STATE_CHANS_VERSION && json_object_object_get_ex(st, "channels", NULL))
		return scm_fail(ret_err, SCM_E_INVALID, "state version %u: /channels is in its channel table, not the JSON",
				version);
	if (!deep)
		return 0;
	/* containers validate their own part, with the runtime's rules */
	json_object *arr = json_object_object_get(st, "containers");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *c = json_object_object_get(json_object_array_get_idx(arr, i), "container");
		if (c && (r = container_adopt(c, NULL, NULL, true, NULL, ret_err)) != 0)
			return scm_fail(ret_err, SCM_E_INVALID, "state /containers/%zu/container", i);
	}
	/* services' manifests parse as manifests (the successor registers them) */
	arr = json_object_object_get(st, "services");
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *s = json_object_array_get_idx(arr, i);
		const char *m = json_object_get_string(json_object_object_get(s, "manifest"));
		struct manifest mf = { 0 };
		r = manifest_parse_text(m, strlen(m), "state", &mf, ret_err);
		manifest_done(&mf);
		if (r != 0)
			return scm_fail(ret_err, SCM_E_INVALID, "state /services/%zu/manifest", i);
	}
	return 0;
}

int state_containers_read(int fd, json_object **ret, scm_error **ret_err)
{
	struct state_header h;
	struct stat st;
	*ret = NULL;
	if (fstat(fd, &st) < 0 || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, SCMD_STATE_MAGIC, 8) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "containers fd %d: no scmd state header", fd);
	h.version = le32toh(h.version);
	h.length = le64toh(h.length);
	if (h.version < SCMD_STATE_MIN_VERSION || h.version > SCMD_STATE_VERSION || le32toh(h.flags) != 0 ||
	    h.length > SCMD_STATE_MAX_BYTES || (uint64_t)st.st_size != sizeof(h) + h.length)
		return scm_fail(ret_err, SCM_E_INVALID, "containers: version %u, flags or length %llu wrong", h.version,
				(unsigned long long)h.length);
	_cleanup_free_ char *text = malloc(h.length + 1);
	if (!text)
		return -ENOMEM;
	if (pread(fd, text, h.length, sizeof(h)) != (ssize_t)h.length)
		return scm_fail(ret_err, -EIO, "reading the containers: short");
	json_tokener *tok = json_tokener_new_ex(32);
	if (!tok)
		return -ENOMEM;
	json_object *o = json_tokener_parse_ex(tok, text, (int)h.length);
	bool whole = json_tokener_get_error(tok) == json_tokener_success && json_tokener_get_parse_end(tok) == h.length;
	json_tokener_free(tok);
	if (!whole) {
		json_object_put(o);
		return scm_fail(ret_err, SCM_E_INVALID, "containers: not JSON");
	}
	int r = 0;
	if (json_object_is_type(o, json_type_object) && json_object_object_length(o) == 0) {
		json_object_put(o);
		return 0; /* {}: with the state */
	}
	if (!json_object_is_type(o, json_type_array))
		r = scm_fail(ret_err, SCM_E_INVALID, "containers: expected an array or {}");
	for (size_t i = 0; r == 0 && i < json_object_array_length(o); i++) {
		json_object *e = json_object_array_get_idx(o, i), *c = json_object_object_get(e, "container");
		char ptr[64];
		snprintf(ptr, sizeof(ptr), "/containers/%zu", i);
		if (!json_object_is_type(e, json_type_object))
			r = scm_fail(ret_err, SCM_E_INVALID, "state %s: expected an object", ptr);
		else if ((r = check(e, f_ctr, ptr, ret_err)) == 0 && c &&
			 (r = container_adopt(c, NULL, NULL, true, NULL, ret_err)) != 0)
			r = scm_fail(ret_err, SCM_E_INVALID, "state %s/container", ptr);
	}
	if (r != 0) {
		json_object_put(o);
		return r;
	}
	*ret = o;
	return 0;
}
