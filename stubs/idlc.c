/* idlc.c: scm-idlc, the stub generator.
 *
 *   scm-idlc IDL.json OUTDIR
 *
 * writes OUTDIR/NAME-client.{h,c} (typed calls for clients) and
 * OUTDIR/NAME-provider.{h,c} (a handler table and typed replies for
 * providers), NAME being the interface name with '.' and '-' as '_'.
 * Generated code checks every argument and result type on arrival, so
 * handlers and callers only see values of the declared types. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "scm/idl.h"
#include "scm/macro.h"

static char cname[80], CNAME[80];

/* C types for each IDL type: as a parameter, as an output. */
static const char *in_type(enum scm_idl_type t)
{
	static const char *const v[] = { "bool ", "int64_t ", "uint64_t ", "double ",
					 "const char *", "const void *", "int ", "struct json_object *" };
	return v[t];
}
static const char *out_type(enum scm_idl_type t)
{
	static const char *const v[] = { "bool *", "int64_t *", "uint64_t *", "double *",
					 "char **", "void **", "int *", "struct json_object **" };
	return v[t];
}
static const char *const type_enum[] = { "SCM_IDL_BOOL", "SCM_IDL_INT", "SCM_IDL_UINT",
					 "SCM_IDL_DOUBLE", "SCM_IDL_STRING", "SCM_IDL_BYTES",
					 "SCM_IDL_FD", "SCM_IDL_JSON" };

static bool is_json_field(enum scm_idl_type t)
{
	return t != SCM_IDL_BYTES && t != SCM_IDL_FD;
}
static size_t count_json(const scm_idl_field *f, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += is_json_field(f[i].type);
	return k;
}

/* Docs go into C comments: a "*" "/" in one would end the comment early
 * and turn the rest of the doc into code, so it is broken up. */
static void emit_comment(FILE *f, const char *prefix, const char *doc)
{
	fprintf(f, "%s/* ", prefix);
	for (const char *p = doc; *p; p++) {
		fputc(*p, f);
		if (p[0] == '*' && p[1] == '/')
			fputc(' ', f);
	}
	fprintf(f, " */\n");
}

static void upper(char *dst, const char *src, size_t n)
{
	size_t i;
	for (i = 0; src[i] && i + 1 < n; i++)
		dst[i] = (char)toupper((unsigned char)src[i]);
	dst[i] = 0;
}

static void params_decl(FILE *f, const scm_idl_field *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(f, ", %s%s", in_type(p[i].type), p[i].name);
		if (p[i].type == SCM_IDL_BYTES)
			fprintf(f, ", size_t %s_len", p[i].name);
	}
}

static void client_proto(FILE *f, const scm_idl_method *m)
{
	fprintf(f, "int scm_%s_%s(scm_channel *ch", cname, m->name);
	params_decl(f, m->params, m->n_params);
	for (size_t i = 0; i < m->n_results; i++) {
		fprintf(f, ", %sret_%s", out_type(m->results[i].type), m->results[i].name);
		if (m->results[i].type == SCM_IDL_BYTES)
			fprintf(f, ", size_t *ret_%s_len", m->results[i].name);
	}
	fprintf(f, ", scm_error **ret_err)");
}

static void reply_proto(FILE *f, const scm_idl_method *m)
{
	fprintf(f, "int scm_%s_%s_reply(scm_call *call", cname, m->name);
	params_decl(f, m->results, m->n_results);
	fprintf(f, ")");
}

/* Emits code that builds `var` (a json object) and scm__fds[] from fields.
 * Generated locals are all scm__-prefixed: the IDL refuses such names, so
 * no parameter can shadow or collide with them. */
static void emit_pack(FILE *f, const scm_idl_field *p, size_t n, const char *var)
{
	size_t k = 0;
	if (count_json(p, n))
		fprintf(f, "\tjson_object *%s = json_object_new_object();\n", var);
	else
		fprintf(f, "\tjson_object *%s = NULL;\n", var);
	for (size_t i = 0; i < n; i++) {
		const char *nm = p[i].name;
		switch (p[i].type) {
		case SCM_IDL_BOOL:
			fprintf(f, "\tjson_object_object_add(%s, \"%s\", json_object_new_boolean(%s));\n", var, nm, nm);
			break;
		case SCM_IDL_INT:
			fprintf(f, "\tjson_object_object_add(%s, \"%s\", json_object_new_int64(%s));\n", var, nm, nm);
			break;
		case SCM_IDL_UINT:
			fprintf(f, "\tjson_object_object_add(%s, \"%s\", scm__new_uint(%s));\n", var, nm, nm);
			break;
		case SCM_IDL_DOUBLE:
			fprintf(f, "\tjson_object_object_add(%s, \"%s\", json_object_new_double(%s));\n", var, nm, nm);
			break;
		case SCM_IDL_STRING:
			fprintf(f, "\tjson_object_object_add(%s, \"%s\", json_object_new_string(%s ? %s : \"\"));\n",
				var, nm, nm, nm);
			break;
		case SCM_IDL_JSON:
			fprintf(f, "\tjson_object_object_add(%s, \"%s\", json_object_get(%s));\n", var, nm, nm);
			break;
		default:
			break;
		}
	}
	fprintf(f, "\tint scm__fds[%u] = { -1 };\n\tsize_t scm__n_fds = 0;\n", SCM_FDS_MAX);
	for (size_t i = 0; i < n; i++)
		if (p[i].type == SCM_IDL_FD)
			fprintf(f, "\tscm__fds[scm__n_fds++] = %s;\n", p[i].name), k++;
	fprintf(f, "\tconst void *scm__bin = NULL;\n\tsize_t scm__bin_len = 0;\n");
	for (size_t i = 0; i < n; i++)
		if (p[i].type == SCM_IDL_BYTES)
			fprintf(f, "\tscm__bin = %s;\n\tscm__bin_len = %s_len;\n", p[i].name, p[i].name);
	(void)k;
}

/* An fd argument or result must be an fd: a negative one would reach
 * sendmsg() as EBADF, so refuse it here with its name. `fail` is the
 * statement that returns the refusal, with a %s for the name. */
static void emit_fd_checks(FILE *f, const scm_idl_field *p, size_t n, const char *fail)
{
	for (size_t i = 0; i < n; i++)
		if (p[i].type == SCM_IDL_FD) {
			fprintf(f, "\tif (%s < 0)\n\t\t", p[i].name);
			fprintf(f, fail, p[i].name);
			fprintf(f, "\n");
		}
}

static void emit_defines(FILE *h, const scm_idl *idl)
{
	fprintf(h, "#define SCM_%s_INTERFACE \"%s\"\n#define SCM_%s_VERSION %u\n", CNAME, idl->name,
		CNAME, idl->version);
	for (size_t i = 0; i < idl->n_methods; i++) {
		char M[80];
		upper(M, idl->methods[i].name, sizeof(M));
		fprintf(h, "#define SCM_%s_%s %u\n", CNAME, M, idl->methods[i].id);
	}
	for (size_t i = 0; i < idl->n_errors; i++) {
		char E[80];
		upper(E, idl->errors[i].name, sizeof(E));
		for (char *q = E; *q; q++)
			if (!isalnum((unsigned char)*q))
				*q = '_';
		fprintf(h, "#define SCM_%s_E_%s %d\n", CNAME, E, idl->errors[i].code);
	}
}

static void gen_client(FILE *h, FILE *c, const scm_idl *idl, const char *base)
{
	fprintf(h, "/* Generated by scm-idlc from interface %s version %u. Do not edit. */\n"
		   "#pragma once\n#include <stdbool.h>\n#include <stdint.h>\n#include <scm/scm.h>\n\n",
		idl->name, idl->version);
	emit_defines(h, idl);
	fprintf(h, "\n");
	fprintf(c, "/* Generated by scm-idlc. Do not edit. */\n#include <errno.h>\n#include <stdlib.h>\n"
		   "#include <string.h>\n#include <unistd.h>\n#include <scm/stub-rt.h>\n#include \"%s-client.h\"\n\n",
		base);

	for (size_t i = 0; i < idl->n_methods; i++) {
		const scm_idl_method *m = &idl->methods[i];
		char M[80];
		upper(M, m->name, sizeof(M));
		if (m->doc && *m->doc)
			emit_comment(h, "", m->doc);
		client_proto(h, m);
		fprintf(h, ";\n");

		client_proto(c, m);
		fprintf(c, "\n{\n");
		emit_fd_checks(c, m->params, m->n_params,
			       "return scm_fail(ret_err, SCM_E_INVALID, \"argument '%s' is not an fd\");");
		emit_pack(c, m->params, m->n_params, "scm__args");
		fprintf(c, "\tscm_message *scm__reply = NULL;\n"
			   "\tstatic const scm_call_opts scm__opts = { .method_name = \"%s\" };\n"
			   "\tint scm__r = scm_call_sync_opts(ch, SCM_%s_%s, &scm__opts, scm__args, scm__bin, scm__bin_len, scm__fds, scm__n_fds, &scm__reply, ret_err);\n"
			   "\tjson_object_put(scm__args);\n\tif (scm__r != 0)\n\t\treturn scm__r;\n",
			m->name, CNAME, M);
		/* Check every result and make every copy before handing any
		 * out, so outputs stay untouched on failure: copies live in
		 * scm__s_ and scm__b_ locals, declared before the first goto. */
		bool gotos = false;
		for (size_t j = 0; j < m->n_results; j++) {
			const scm_idl_field *rf = &m->results[j];
			if (is_json_field(rf->type))
				fprintf(c, "\tjson_object *scm__v_%s = NULL;\n", rf->name);
			if (rf->type == SCM_IDL_STRING)
				fprintf(c, "\tchar *scm__s_%s = NULL;\n", rf->name);
			if (rf->type == SCM_IDL_BYTES)
				fprintf(c, "\tvoid *scm__b_%s = NULL;\n", rf->name);
		}
		size_t k = 0;
		for (size_t j = 0; j < m->n_results; j++) {
			const scm_idl_field *rf = &m->results[j];
			if (is_json_field(rf->type)) {
				fprintf(c, "\tif ((scm__r = scm__result(scm__reply, \"%s\", %s, &scm__v_%s, ret_err)) != 0)\n"
					   "\t\tgoto out;\n",
					rf->name, type_enum[rf->type], rf->name);
				gotos = true;
			} else if (rf->type == SCM_IDL_FD) {
				fprintf(c, "\tif (scm__reply->n_fds <= %zu) {\n"
					   "\t\tscm__r = scm_fail(ret_err, SCM_E_PROTOCOL, \"reply lacks fd result '%s'\");\n"
					   "\t\tgoto out;\n\t}\n",
					k, rf->name);
				k++;
				gotos = true;
			}
		}
		for (size_t j = 0; j < m->n_results; j++) {
			const char *n = m->results[j].name;
			if (m->results[j].type == SCM_IDL_STRING)
				fprintf(c, "\tif (ret_%s && !(scm__s_%s = strdup(json_object_get_string(scm__v_%s)))) {\n"
					   "\t\tscm__r = scm_fail(ret_err, -ENOMEM, \"out of memory for result '%s'\");\n"
					   "\t\tgoto out;\n\t}\n",
					n, n, n, n);
			else if (m->results[j].type == SCM_IDL_BYTES)
				fprintf(c, "\tif (ret_%s) {\n"
					   "\t\tif (!(scm__b_%s = malloc(scm__reply->bin_len ? scm__reply->bin_len : 1))) {\n"
					   "\t\t\tscm__r = scm_fail(ret_err, -ENOMEM, \"out of memory for result '%s'\");\n"
					   "\t\t\tgoto out;\n\t\t}\n"
					   "\t\tif (scm__reply->bin_len)\n\t\t\tmemcpy(scm__b_%s, scm__reply->bin, scm__reply->bin_len);\n"
					   "\t}\n",
					n, n, n, n);
			else
				continue;
			gotos = true;
		}
		k = 0;
		for (size_t j = 0; j < m->n_results; j++) {
			const scm_idl_field *rf = &m->results[j];
			const char *n = rf->name;
			switch (rf->type) {
			case SCM_IDL_BOOL:
				fprintf(c, "\tif (ret_%s)\n\t\t*ret_%s = json_object_get_boolean(scm__v_%s);\n", n, n, n);
				break;
			case SCM_IDL_INT:
				fprintf(c, "\tif (ret_%s)\n\t\t*ret_%s = json_object_get_int64(scm__v_%s);\n", n, n, n);
				break;
			case SCM_IDL_UINT:
				fprintf(c, "\tif (ret_%s)\n\t\t*ret_%s = json_object_get_uint64(scm__v_%s);\n", n, n, n);
				break;
			case SCM_IDL_DOUBLE:
				fprintf(c, "\tif (ret_%s)\n\t\t*ret_%s = json_object_get_double(scm__v_%s);\n", n, n, n);
				break;
			case SCM_IDL_STRING:
				fprintf(c, "\tif (ret_%s) {\n\t\t*ret_%s = scm__s_%s;\n\t\tscm__s_%s = NULL;\n\t}\n", n, n, n, n);
				break;
			case SCM_IDL_JSON:
				fprintf(c, "\tif (ret_%s)\n\t\t*ret_%s = json_object_get(scm__v_%s);\n", n, n, n);
				break;
			case SCM_IDL_BYTES:
				fprintf(c, "\tif (ret_%s) {\n\t\t*ret_%s = scm__b_%s;\n\t\tscm__b_%s = NULL;\n\t}\n"
					   "\tif (ret_%s_len)\n\t\t*ret_%s_len = scm__reply->bin_len;\n",
					n, n, n, n, n, n);
				break;
			case SCM_IDL_FD:
				fprintf(c, "\tif (ret_%s)\n\t\t*ret_%s = scm_message_steal_fd(scm__reply, %zu);\n", n, n, k);
				k++;
				break;
			default:
				break;
			}
		}
		if (gotos)
			fprintf(c, "out:\n");
		for (size_t j = 0; j < m->n_results; j++) {
			if (m->results[j].type == SCM_IDL_STRING)
				fprintf(c, "\tfree(scm__s_%s);\n", m->results[j].name);
			else if (m->results[j].type == SCM_IDL_BYTES)
				fprintf(c, "\tfree(scm__b_%s);\n", m->results[j].name);
		}
		fprintf(c, "\tscm_message_free(scm__reply);\n\treturn scm__r;\n}\n\n");
	}
}

static void gen_provider(FILE *h, FILE *c, const scm_idl *idl, const char *base)
{
	fprintf(h, "/* Generated by scm-idlc from interface %s version %u. Do not edit.\n"
		   " * Handlers get arguments already type-checked; fds are borrowed (dup to keep),\n"
		   " * strings and bytes live until the handler returns. Each handler replies with\n"
		   " * its _reply() function or scm_call_reply_error(), or returns an error code. */\n"
		   "#pragma once\n#include <stdbool.h>\n#include <stdint.h>\n#include <scm/scm.h>\n\n",
		idl->name, idl->version);
	fprintf(h, "typedef struct scm_%s_handlers {\n", cname);
	for (size_t i = 0; i < idl->n_methods; i++) {
		const scm_idl_method *m = &idl->methods[i];
		fprintf(h, "\tint (*%s)(scm_call *call", m->name);
		params_decl(h, m->params, m->n_params);
		fprintf(h, ", void *userdata);\n");
	}
	fprintf(h, "} scm_%s_handlers;\n\n", cname);
	fprintf(h, "/* What the caller keeps alive for the provider's lifetime. */\n"
		   "typedef struct scm_%s_skeleton {\n\tconst scm_%s_handlers *handlers;\n\tvoid *userdata;\n} scm_%s_skeleton;\n\n",
		cname, cname, cname);
	emit_defines(h, idl);
	fprintf(h, "const scm_interface_def *scm_%s_interface(void);\n", cname);
	fprintf(h, "/* scm_provider_new() for this interface: userdata of every method is sk. */\n"
		   "int scm_%s_provider_new(scm_%s_skeleton *sk, scm_provider **ret, scm_error **ret_err);\n\n",
		cname, cname);
	for (size_t i = 0; i < idl->n_methods; i++) {
		reply_proto(h, &idl->methods[i]);
		fprintf(h, ";\n");
	}

	fprintf(c, "/* Generated by scm-idlc. Do not edit. */\n#include <scm/stub-rt.h>\n#include \"%s-provider.h\"\n\n",
		base);
	for (size_t i = 0; i < idl->n_methods; i++) {
		const scm_idl_method *m = &idl->methods[i];
		fprintf(c, "static int tramp_%s(scm_call *call, const scm_message *m, void *ud)\n{\n"
			   "\tconst scm_%s_skeleton *sk = ud;\n"
			   "\tif (!sk->handlers->%s)\n"
			   "\t\treturn scm_call_reply_error(call, SCM_E_NO_METHOD, \"%s.%s is not implemented by this provider\"), 0;\n",
			m->name, cname, m->name, idl->name, m->name);
		size_t k = 0;
		for (size_t j = 0; j < m->n_params; j++) {
			const scm_idl_field *p = &m->params[j];
			const char *n = p->name;
			if (is_json_field(p->type))
				fprintf(c, "\tjson_object *v_%s;\n\tif (scm__arg(call, m, \"%s\", %s, &v_%s) < 0)\n\t\treturn 0;\n",
					n, n, type_enum[p->type], n);
			else if (p->type == SCM_IDL_FD) {
				fprintf(c, "\tif (m->n_fds <= %zu)\n\t\treturn scm_call_reply_error(call, SCM_E_BAD_ARGS, \"missing fd argument '%s'\"), 0;\n",
					k, n);
				k++;
			}
		}
		fprintf(c, "\treturn sk->handlers->%s(call", m->name);
		k = 0;
		for (size_t j = 0; j < m->n_params; j++) {
			const scm_idl_field *p = &m->params[j];
			const char *n = p->name;
			switch (p->type) {
			case SCM_IDL_BOOL: fprintf(c, ", json_object_get_boolean(v_%s)", n); break;
			case SCM_IDL_INT: fprintf(c, ", json_object_get_int64(v_%s)", n); break;
			case SCM_IDL_UINT: fprintf(c, ", json_object_get_uint64(v_%s)", n); break;
			case SCM_IDL_DOUBLE: fprintf(c, ", json_object_get_double(v_%s)", n); break;
			case SCM_IDL_STRING: fprintf(c, ", json_object_get_string(v_%s)", n); break;
			case SCM_IDL_JSON: fprintf(c, ", v_%s", n); break;
			case SCM_IDL_BYTES: fprintf(c, ", m->bin, m->bin_len"); break;
			case SCM_IDL_FD: fprintf(c, ", m->fds[%zu]", k++); break;
			default: break;
			}
		}
		fprintf(c, ", sk->userdata);\n}\n\n");
	}
	fprintf(c, "static const scm_method_def methods[] = {\n");
	for (size_t i = 0; i < idl->n_methods; i++)
		fprintf(c, "\t{ \"%s\", %u, tramp_%s },\n", idl->methods[i].name, idl->methods[i].id,
			idl->methods[i].name);
	fprintf(c, "};\n\nstatic const scm_interface_def iface = { \"%s\", %u, methods, %zu };\n\n",
		idl->name, idl->version, idl->n_methods);
	fprintf(c, "const scm_interface_def *scm_%s_interface(void)\n{\n\treturn &iface;\n}\n\n", cname);
	fprintf(c, "int scm_%s_provider_new(scm_%s_skeleton *sk, scm_provider **ret, scm_error **ret_err)\n"
		   "{\n\treturn scm_provider_new(&iface, sk, ret, ret_err);\n}\n\n",
		cname, cname);
	for (size_t i = 0; i < idl->n_methods; i++) {
		const scm_idl_method *m = &idl->methods[i];
		reply_proto(c, m);
		fprintf(c, "\n{\n");
		emit_fd_checks(c, m->results, m->n_results,
			       "return scm_call_reply_error(call, SCM_E_INTERNAL, \"result '%s' is not an fd\");");
		emit_pack(c, m->results, m->n_results, "scm__res");
		fprintf(c, "\tint scm__r = scm_call_reply(call, scm__res, scm__bin, scm__bin_len, scm__fds, scm__n_fds);\n"
			   "\tjson_object_put(scm__res);\n\treturn scm__r;\n}\n\n");
	}
}

static FILE *open_out(const char *dir, const char *base, const char *suffix, char **ret_path)
{
	if (asprintf(ret_path, "%s/%s%s.tmp", dir, base, suffix) < 0)
		return NULL;
	return fopen(*ret_path, "we");
}

/* Writes to NAME.tmp and renames, so a failed run never leaves half a
 * file that make would take as up to date. */
static int finish(FILE *f, char *tmp)
{
	int bad = ferror(f) | fclose(f);
	char *dst = strndup(tmp, strlen(tmp) - 4);
	if (bad || !dst || rename(tmp, dst) < 0) {
		fprintf(stderr, "scm-idlc: writing %s failed\n", dst ? dst : tmp);
		free(dst);
		return -1;
	}
	free(dst);
	free(tmp);
	return 0;
}

int main(int argc, char **argv)
{
	scm_idl *idl = NULL;
	scm_error *err = NULL;

	if (argc != 3) {
		fprintf(stderr, "usage: scm-idlc IDL.json OUTDIR\n"
				"writes OUTDIR/NAME-client.{h,c} and OUTDIR/NAME-provider.{h,c}\n");
		return 2;
	}
	if (scm_idl_load(argv[1], &idl, &err) != 0) {
		fprintf(stderr, "scm-idlc: ");
		scm_error_print(err, stderr);
		scm_error_free(err);
		return 1;
	}
	size_t i;
	for (i = 0; idl->name[i] && i + 1 < sizeof(cname); i++)
		cname[i] = (idl->name[i] == '.' || idl->name[i] == '-') ? '_' : idl->name[i];
	cname[i] = 0;
	upper(CNAME, cname, sizeof(CNAME));

	char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
	FILE *ch = open_out(argv[2], cname, "-client.h", &p1);
	FILE *cc = open_out(argv[2], cname, "-client.c", &p2);
	FILE *ph = open_out(argv[2], cname, "-provider.h", &p3);
	FILE *pc = open_out(argv[2], cname, "-provider.c", &p4);
	if (!ch || !cc || !ph || !pc) {
		fprintf(stderr, "scm-idlc: cannot write to %s: %s\n", argv[2], strerror(errno));
		FILE *fs[] = { ch, cc, ph, pc };
		char *ps[] = { p1, p2, p3, p4 };
		for (size_t k = 0; k < 4; k++) {
			if (fs[k]) {
				fclose(fs[k]);
				unlink(ps[k]);
			}
			free(ps[k]);
		}
		scm_idl_free(idl);
		return 1;
	}
	gen_client(ch, cc, idl, cname);
	gen_provider(ph, pc, idl, cname);
	int r = finish(ch, p1) | finish(cc, p2) | finish(ph, p3) | finish(pc, p4);
	scm_idl_free(idl);
	return r ? 1 : 0;
}
