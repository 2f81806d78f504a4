/* echo-client: a program outside the tree, built against the installed
 * libscm with pkg-config, calling the echo service through scmd.
 *
 *   cc -o echo-client echo-client.c $(pkg-config --cflags --libs libscm)
 *   SCM_ENDPOINT=/run/scm/endpoints/demo.sock ./echo-client hello
 *
 * It uses the generic call API with the method numbers of echo's IDL;
 * `scm-idlc echo.json DIR` generates typed stubs instead. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include <scm/scm.h>

#define ECHO_ECHO 2   /* stubs/idl/echo.json: methods are numbered from 1 */
#define ECHO_GREET 3

int main(int argc, char **argv)
{
	const char *word = argc > 1 ? argv[1] : "world";
	scm_channel *ch = NULL;
	scm_message *reply = NULL;
	scm_error *err = NULL;

	if (scm_connect("echo", &ch, &err) != 0)
		goto fail;

	json_object *args = json_object_new_object();
	json_object_object_add(args, "name", json_object_new_string(word));
	int r = scm_call_sync(ch, ECHO_GREET, args, NULL, 0, NULL, 0, &reply, &err);
	json_object_put(args);
	if (r != 0)
		goto fail;
	printf("%s\n", json_object_get_string(json_object_object_get(reply->json, "greeting")));
	scm_message_free(reply);

	if (scm_call_sync(ch, ECHO_ECHO, NULL, word, strlen(word), NULL, 0, &reply, &err) != 0)
		goto fail;
	printf("echoed %zu bytes: %.*s\n", reply->bin_len, (int)reply->bin_len, (const char *)reply->bin);
	scm_message_free(reply);
	scm_channel_free(ch);
	return 0;
fail:
	fprintf(stderr, "echo-client: ");
	scm_error_print(err, stderr);
	scm_error_free(err);
	scm_channel_free(ch);
	return 1;
}
