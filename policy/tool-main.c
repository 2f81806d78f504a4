/* tool-main.c: scm-policy, `scmctl policy` without scmctl: the same entry
 * point (scm/scmctl/scmctl-policy.c) with a control call that always fails, so
 * the offline subcommands and their tests work without the daemon. */
#include <errno.h>
#include <stdio.h>

#include <json-c/json.h>

#include <scm/scm.h>

int scmctl_policy(int argc, char **argv);
int scmctl_control_call(const char *method, struct json_object *args,
			struct json_object **ret_result, scm_error **ret_err);

int scmctl_control_call(const char *method, struct json_object *args,
			struct json_object **ret_result, scm_error **ret_err)
{
	return scm_fail(ret_err, SCM_E_NOT_FOUND,
			"%s needs scmd: scm-policy works on files only (use scmctl policy, or --profiles)",
			method);
}

int main(int argc, char **argv)
{
	/* argv[0] plays "policy": scm-policy lint ... == scmctl policy lint ... */
	return scmctl_policy(argc, argv);
}
