/* container-view.c: what scmd says about its containers in JSON: the
 * records `scmctl container list` and `show` print, and an exit status as
 * `container wait` and `stop` answer it. Split from container-hook.c
 * (moves only): views read the record and change nothing. */
#include <string.h>
#include <sys/wait.h>

#include "container-hook.h"

json_object *ctr_status_json(int status)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "exit_code", json_object_new_int(container_wait_status_to_exit(status)));
	if (WIFSIGNALED(status))
		json_object_object_add(o, "signal", json_object_new_int(WTERMSIG(status)));
	return o;
}

json_object *scmd_ctr_json(struct scmd *d, const char *only)
{
	json_object *arr = json_object_new_array();
	for (struct list *p = d->containers.next; p != &d->containers; p = p->next) {
		struct scmd_ctr *t = list_entry(p, struct scmd_ctr, node);
		if ((only && strcmp(only, t->name) != 0) || t->dying)
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(t->name));
		json_object_object_add(o, "state", json_object_new_string(t->exited      ? "exited"
									  : t->launching ? "starting"
											 : ctr_run_state(t)));
		if (!t->exited)
			json_object_object_add(o, "fds", json_object_new_int((int)t->fds));
		json_object_object_add(o, "pid", json_object_new_int(t->exited ? 0 : container_pid(t->c)));
		json_object_object_add(o, "command", json_object_new_string(t->cmdline ? t->cmdline : ""));
		json_object_object_add(o, "log", json_object_new_string(t->log_path ? t->log_path : ""));
		uint64_t end = t->exited ? t->ended : now_usec();
		json_object_object_add(o, "uptime_ms", json_object_new_int64((int64_t)((end - t->started) / 1000)));
		if (t->exited)
			json_object_object_add(o, "exit_code", json_object_new_int(container_wait_status_to_exit(t->status)));
		if (t->ep) {
			json_object_object_add(o, "endpoint", json_object_new_string(t->ep->path));
			json_object *pr = json_object_new_array();
			for (char **s = t->ep->profiles; s && *s; s++)
				json_object_array_add(pr, json_object_new_string(*s));
			json_object_object_add(o, "profiles", pr);
			json_object_object_add(o, "channels", json_object_new_int64(t->ep->used.channels));
		}
		if (t->provider_of)
			json_object_object_add(o, "provides", json_object_new_string(t->provider_of->name));
		json_object_array_add(arr, o);
	}
	return arr;
}
