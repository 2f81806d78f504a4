/* call.c: `scmctl call`, a generic client for any registered interface.
 *
 *   scmctl call [--endpoint NAME|PATH] [--hold] SERVICE METHOD [ARGS-JSON]
 *
 * Arguments are a JSON object keyed by the IDL's parameter names; a bytes
 * parameter takes a string (its UTF-8 bytes), an fd parameter a file path
 * (opened read-only). Results print as a JSON object; bytes print as a
 * string when they are UTF-8, else as {"hex": ...}. --hold keeps the
 * channel open after the call until it ends (revoked, provider gone) or
 * stdin closes, and prints why it ended. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <string.h>

#include "scm-internal/wire.h"
#include "scm/idl.h"
#include "scm/macro.h"
#include "scmctl.h"

#ifndef SCM_DATADIR
#define SCM_DATADIR "/usr/local/share/scm"
#endif

static scm_idl *local_idl(const char *iface)
{
	const char *env = getenv("SCM_IDL_PATH");
	_cleanup_free_ char *path = NULL;
	if (asprintf(&path, "%s%s/etc/scm/idl:%s/idl", env ? env : "", env ? ":" : "", SCM_DATADIR) < 0)
		return NULL;
	char *save = NULL;
	for (char *dir = strtok_r(path, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *f = NULL;
		scm_idl *idl = NULL;
		if (asprintf(&f, "%s/%s.json", dir, iface) >= 0 && access(f, R_OK) == 0 &&
		    scm_idl_load(f, &idl, NULL) == 0)
			return idl;
	}
	return NULL;
}

static bool is_utf8_text(const unsigned char *s, size_t n)
{
	json_object *o = json_object_new_string_len((const char *)s, (int)n);
	json_tokener *tok = json_tokener_new();
	const char *txt = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	json_object *back = json_tokener_parse_ex(tok, txt, (int)strlen(txt));
	bool ok = back && memchr(s, 0, n) == NULL;
	json_object_put(back);
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

static json_object *bytes_json(const void *p, size_t n)
{
	if (is_utf8_text(p, n))
		return json_object_new_string_len(p, (int)n);
	char *hex = malloc(n * 2 + 1);
	for (size_t i = 0; hex && i < n; i++)
		sprintf(hex + 2 * i, "%02x", ((const unsigned char *)p)[i]);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "hex", json_object_new_string(hex ? hex : ""));
	free(hex);
	return o;
}

static int hold(scm_channel *ch)
{
	struct pollfd p[2] = { { scm_channel_fd(ch), POLLIN, 0 }, { 0, POLLIN, 0 } };
	fprintf(stderr, "scmctl: holding channel %llu open; close stdin to end\n",
		(unsigned long long)scm_channel_id(ch));
	for (;;) {
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return 1;
		if (p[0].revents) {
			scm_error *e = NULL;
			if (scm_channel_dispatch(ch, &e) != 0) {
				fprintf(stderr, "scmctl: the channel ended:\n");
				return scmctl_fail(e);
			}
		}
		if (p[1].revents) {
			char buf[256];
			if (read(0, buf, sizeof(buf)) <= 0)
				return 0;
		}
	}
}

/* A channel to service: through endpoint (a name under the runtime
 * directory, a socket path, or $SCM_ENDPOINT), else as the "host"
 * identity over the control socket (root only), decided like any other
 * caller. */
int scmctl_connect(const char *endpoint, const char *service, scm_channel **ret, scm_error **ret_err)
{
	scm_channel *ch = NULL;
	int r;
	if (endpoint || getenv("SCM_ENDPOINT")) {
		char path[PATH_MAX];
		if (!endpoint)
			snprintf(path, sizeof(path), "%s", getenv("SCM_ENDPOINT"));
		else if (strchr(endpoint, '/'))
			snprintf(path, sizeof(path), "%s", endpoint);
		else
			snprintf(path, sizeof(path), "%s/endpoints/%s.sock", scmctl_runtime_dir(), endpoint);
		r = scm_connect_at(path, service, &ch, ret_err);
	} else {
		json_object *a = json_object_new_object(), *res = NULL;
		int fd = -1;
		json_object_object_add(a, "service", json_object_new_string(service));
		r = scmctl_control_call("connect", a, &res, ret_err);
		json_object_put(a);
		if (r == 0) {
			extern int scmctl_last_fd;
			fd = TAKE_FD(scmctl_last_fd);
			json_object *v;
			r = scm_channel_from_fd(fd, json_object_object_get_ex(res, "channel", &v) ? (uint64_t)json_object_get_int64(v) : 0,
						json_object_object_get_ex(res, "interface", &v) ? json_object_get_string(v) : NULL, &ch);
		}
		json_object_put(res);
	}
	if (r == 0)
		*ret = ch;
	return r;
}

int scmctl_call(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "hold", no_argument, NULL, 'H' },
		{},
	};
	const char *endpoint = NULL;
	bool do_hold = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+e:H", opts, NULL)) != -1) {
		if (c == 'e')
			endpoint = optarg;
		else if (c == 'H')
			do_hold = true;
		else
			return 2;
	}
	if (argc - optind < 2 || argc - optind > 3) {
		fprintf(stderr, "scmctl: usage: call [--endpoint NAME|PATH] [--hold] SERVICE METHOD [ARGS-JSON]\n");
		return 2;
	}
	const char *service = argv[optind], *method = argv[optind + 1];
	json_object *args = NULL;
	if (argc - optind == 3) {
		scm_error *pe = NULL;
		if (scm_json_parse(argv[optind + 2], strlen(argv[optind + 2]), &args, &pe) != 0) {
			fprintf(stderr, "scmctl: ARGS-JSON must be a JSON object:\n");
			return scmctl_fail(pe) ? 2 : 2;
		}
	}

	scm_error *e = NULL;
	scm_channel *ch = NULL;
	int r = scmctl_connect(endpoint, service, &ch, &e);
	if (r != 0) {
		json_object_put(args);
		return scmctl_fail(e);
	}

	/* The interface: from scmd when we may ask it, else from the IDL path. */
	scm_idl *idl = NULL;
	json_object *show = NULL, *na = json_object_new_object();
	json_object_object_add(na, "name", json_object_new_string(service));
	if (scmctl_control_call("service.show", na, &show, NULL) == 0) {
		json_object *t;
		if (json_object_object_get_ex(show, "idl", &t))
			scm_idl_parse(json_object_get_string(t), (size_t)json_object_get_string_len(t), service, &idl, NULL);
	}
	json_object_put(na);
	json_object_put(show);
	if (!idl && scm_channel_interface(ch))
		idl = local_idl(scm_channel_interface(ch));
	if (!idl) {
		fprintf(stderr, "scmctl: cannot find interface '%s' (ask as root, or set $SCM_IDL_PATH)\n",
			scm_channel_interface(ch) ? scm_channel_interface(ch) : "?");
		scm_channel_free(ch);
		json_object_put(args);
		return 1;
	}
	const scm_idl_method *m = scm_idl_method_by_name(idl, method);
	if (!m) {
		fprintf(stderr, "scmctl: interface %s has no method '%s'; see scmctl service show %s\n", idl->name,
			method, service);
		scm_idl_free(idl);
		scm_channel_free(ch);
		json_object_put(args);
		return 5;
	}

	/* Split ARGS into the JSON part, the binary body and fds, per the IDL. */
	json_object *jargs = json_object_new_object();
	const void *bin = NULL;
	size_t bin_len = 0;
	int fds[SCM_FDS_MAX];
	size_t n_fds = 0;
	int rc = 0;
	for (size_t i = 0; i < m->n_params; i++) {
		const scm_idl_field *p = &m->params[i];
		json_object *v = NULL;
		if (!args || !json_object_object_get_ex(args, p->name, &v)) {
			fprintf(stderr, "scmctl: %s needs argument '%s' (%s)\n", method, p->name, scm_idl_type_name(p->type));
			rc = 2;
			goto out;
		}
		if (p->type == SCM_IDL_BYTES) {
			bin = json_object_get_string(v);
			bin_len = (size_t)json_object_get_string_len(v);
		} else if (p->type == SCM_IDL_FD) {
			int fd = open(json_object_get_string(v), O_RDONLY | O_CLOEXEC);
			if (fd < 0) {
				fprintf(stderr, "scmctl: %s: cannot open '%s' for argument %s: %m\n", method,
					json_object_get_string(v), p->name);
				rc = 1;
				goto out;
			}
			fds[n_fds++] = fd;
		} else
			json_object_object_add(jargs, p->name, json_object_get(v));
	}

	scm_message *reply = NULL;
	scm_call_opts copts = { .method_name = m->name }; /* a timeout error names it */
	r = scm_call_sync_opts(ch, m->id, &copts, json_object_object_length(jargs) ? jargs : NULL, bin,
			       bin_len, fds, n_fds, &reply, &e);
	if (r != 0) {
		rc = scmctl_fail(e);
		goto out;
	}
	json_object *out = json_object_new_object();
	size_t k = 0;
	for (size_t i = 0; i < m->n_results; i++) {
		const scm_idl_field *f = &m->results[i];
		json_object *v = NULL;
		if (f->type == SCM_IDL_BYTES)
			json_object_object_add(out, f->name, bytes_json(reply->bin, reply->bin_len));
		else if (f->type == SCM_IDL_FD)
			json_object_object_add(out, f->name, json_object_new_int(k++ < reply->n_fds ? 1 : 0));
		else if (reply->json && json_object_object_get_ex(reply->json, f->name, &v))
			json_object_object_add(out, f->name, json_object_get(v));
	}
	puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(out);
	scm_message_free(reply);
	if (do_hold)
		rc = hold(ch);
out:
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	json_object_put(jargs);
	json_object_put(args);
	scm_idl_free(idl);
	scm_channel_free(ch);
	return rc;
}
