/* provider-state.c: writing and reading the sealed memfd that carries a
 * provider's state to its successor (docs/handover.md). The reader trusts
 * nothing: the file came from another process, possibly another version
 * of the provider, so every length and member type is checked before the
 * provider's restore() sees it. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scm/macro.h"
#include "scm/scm.h"
#include "scm-internal/error.h"
#include "scm-internal/provider-state.h"
#include "scm-internal/wire.h"

#define WHERE "libscm/handover"

static void put32(unsigned char *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}
static void put64(unsigned char *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t get64(const unsigned char *b)
{
	return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno ?: -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int provider_state_write(json_object *doc, uint32_t version, uint32_t n_fds, int *ret_fd, scm_error **ret_err)
{
	size_t len = 0;
	if (n_fds)
		json_object_object_add(doc, "fds", json_object_new_int64(n_fds));
	const char *text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN, &len);
	if (!text)
		return scm_fail(ret_err, -ENOMEM, "out of memory writing the state");
	if (len > PROVIDER_STATE_MAX)
		return scm_fail(ret_err, -EFBIG, "the state is %zu bytes, over the %u a reader takes", len,
				PROVIDER_STATE_MAX);
	int fd = memfd_create("scm-provider-state", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return scm_fail(ret_err, -errno, "memfd_create: %m");
	unsigned char h[PROVIDER_STATE_HEADER];
	memcpy(h, PROVIDER_STATE_MAGIC, 8);
	put32(h + 8, n_fds ? PROVIDER_STATE_ENVELOPE : 1u);
	put32(h + 12, version);
	put64(h + 16, len);
	int r = write_all(fd, h, sizeof h);
	if (r == 0)
		r = write_all(fd, text, len);
	if (r == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		r = -errno;
	if (r < 0) {
		close(fd);
		return scm_fail(ret_err, r, "writing the state memfd: %s", strerror(-r));
	}
	*ret_fd = fd;
	return 0;
}

int provider_state_parse(const void *buf, size_t len, uint32_t *ret_version, uint32_t *ret_n_fds,
			 json_object **ret_doc, scm_error **ret_err)
{
	const unsigned char *b = buf;
	if (len < PROVIDER_STATE_HEADER || memcmp(b, PROVIDER_STATE_MAGIC, 8) != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "not a provider state (no %s header)", PROVIDER_STATE_MAGIC);
	uint32_t envelope = get32(b + 8), version = get32(b + 12);
	uint64_t n = get64(b + 16);
	if (envelope < PROVIDER_STATE_ENVELOPE_MIN || envelope > PROVIDER_STATE_ENVELOPE)
		return scm_fail(ret_err, SCM_E_INVALID, "state envelope %u: this libscm reads envelopes %u to %u",
				envelope, PROVIDER_STATE_ENVELOPE_MIN, PROVIDER_STATE_ENVELOPE);
	if (version == 0)
		return scm_fail(ret_err, SCM_E_INVALID, "state version 0 is not a version");
	if (n > PROVIDER_STATE_MAX || n != len - PROVIDER_STATE_HEADER)
		return scm_fail(ret_err, SCM_E_INVALID, "the state says %llu bytes of JSON, the file holds %zu",
				(unsigned long long)n, len - PROVIDER_STATE_HEADER);
	json_object *doc = NULL;
	int r = scm_json_parse((const char *)b + PROVIDER_STATE_HEADER, (size_t)n, &doc, ret_err);
	if (r != 0)
		return scm_fail(ret_err, SCM_E_INVALID, "the state's JSON is malformed");
	json_object *v, *chans;
	const char *bad = NULL;
	int64_t n_fds = 0;
	if (!json_object_is_type(doc, json_type_object))
		bad = "";
	else if (!json_object_object_get_ex(doc, "interface", &v) || !json_object_is_type(v, json_type_string))
		bad = "/interface";
	else if (!json_object_object_get_ex(doc, "state", &v))
		bad = "/state";
	else if (!json_object_object_get_ex(doc, "channels", &chans) || !json_object_is_type(chans, json_type_array))
		bad = "/channels";
	else if (envelope >= 2 && json_object_object_get_ex(doc, "fds", &v)) {
		n_fds = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
		if (n_fds < 0 || n_fds > SCM_HANDOVER_FDS_MAX) {
			json_object_put(doc);
			return scm_fail(ret_err, SCM_E_INVALID,
					"the state's /fds is not a count from 0 to %u (the most a state carries)",
					SCM_HANDOVER_FDS_MAX);
		}
	}
	for (size_t i = 0; !bad && i < json_object_array_length(chans); i++) {
		json_object *c = json_object_array_get_idx(chans, i);
		if (!json_object_is_type(c, json_type_object) || !json_object_object_get_ex(c, "channel", &v) ||
		    !json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0)
			bad = "/channels/N/channel";
	}
	if (bad) {
		json_object_put(doc);
		return scm_fail(ret_err, SCM_E_INVALID, "the state's JSON lacks %s or it has the wrong type",
				*bad ? bad : "an object at the top");
	}
	*ret_version = version;
	*ret_n_fds = (uint32_t)n_fds;
	*ret_doc = doc;
	return 0;
}

int provider_state_read(int fd, uint32_t *ret_version, uint32_t *ret_n_fds, json_object **ret_doc,
			scm_error **ret_err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return scm_fail(ret_err, -errno, "the state fd: %m");
	if (!S_ISREG(st.st_mode) || st.st_size < PROVIDER_STATE_HEADER ||
	    (uint64_t)st.st_size > PROVIDER_STATE_MAX + PROVIDER_STATE_HEADER)
		return scm_fail(ret_err, SCM_E_INVALID, "the state fd is not a state file (%lld bytes)",
				(long long)st.st_size);
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return scm_fail(ret_err, -errno, "mapping the state: %m");
	int r = provider_state_parse(m, (size_t)st.st_size, ret_version, ret_n_fds, ret_doc, ret_err);
	munmap(m, (size_t)st.st_size);
	return r;
}
