/* jobs.c: scm-vdisk's online commands, which ask the vdisk provider (through
 * scmd, $SCM_ENDPOINT or --endpoint) to run a job on a disk it holds open:
 * snapshot, merge, compact, migrate; and jobs / job ID pause|resume|cancel|wait;
 * migrated DISK [--clear], the mark a migration to an NBD export leaves.
 * compact of a disk the provider does not hold open is done on the file
 * (convert.c), as before. */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scm/vdisk-client.h"
#include "tool.h"
#include "vjob.h"

static const char *endpoint, *service = "vdisk";

static scm_channel *connect_or_die(scm_error **err)
{
	scm_channel *ch = NULL;
	int r = endpoint ? scm_connect_at(endpoint, service, &ch, err) : scm_connect(service, &ch, err);
	return r ? NULL : ch;
}

/* The path as the provider's grant sees it: absolute, the last component
 * as given (a link there is the provider's to refuse). */
char *abs_path(const char *p)
{
	char d[PATH_MAX], b[PATH_MAX], real[PATH_MAX];
	snprintf(d, sizeof d, "%s", p);
	snprintf(b, sizeof b, "%s", p);
	if (!realpath(dirname(d), real))
		return strdup(p);
	char *out = NULL;
	if (asprintf(&out, "%s/%s", strcmp(real, "/") ? real : "", basename(b)) < 0)
		return NULL;
	return out;
}

static void human(double v, char *out, size_t n)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	for (; v >= 1024 && i < 4; i++)
		v /= 1024;
	snprintf(out, n, "%.1f %s", v, u[i]);
}

static const char *jstr(json_object *j, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(j, k, &v) ? json_object_get_string(v) : "";
}

static uint64_t jnum(json_object *j, const char *k)
{
	json_object *v;
	return json_object_object_get_ex(j, k, &v) ? json_object_get_uint64(v) : 0;
}

static void job_line(json_object *j, bool bar)
{
	uint64_t done = jnum(j, "done"), total = jnum(j, "total");
	char d[400], t[400], r[400];
	human((double)done, d, sizeof d);
	human((double)total, t, sizeof t);
	human((double)jnum(j, "rate"), r, sizeof r);
	printf("%-4llu %-8s %-9s ", (unsigned long long)jnum(j, "id"), jstr(j, "kind"), jstr(j, "state"));
	if (bar) {
		int w = 24, f = total ? (int)((double)done / (double)total * w) : 0;
		printf("[%.*s%*s] ", f, "########################", w - f, "");
	}
	/* no rate yet (a job just started, or stalled): its end is unknown,
	 * not near */
	char eta[32] = "-";
	if (jnum(j, "rate") || done >= total)
		snprintf(eta, sizeof eta, "%llus", (unsigned long long)jnum(j, "eta"));
	printf("%s/%s %s/s eta %s %s", d, t, r, eta, jstr(j, "path"));
	if (*jstr(j, "target"))
		printf(" -> %s", jstr(j, "target"));
	if (*jstr(j, "mode")) /* a migration: its passes, and the pause once over */
		printf(" (%s, %s, pass %llu%s", jstr(j, "mode"), jstr(j, "phase"), (unsigned long long)jnum(j, "passes"),
		       jnum(j, "pause_us") ? "" : ")");
	if (*jstr(j, "mode") && jnum(j, "pause_us"))
		printf(", paused I/O %.1f ms)", (double)jnum(j, "pause_us") / 1000);
	json_object *e;
	if (json_object_object_get_ex(j, "error", &e)) {
		scm_error *err = scm_error_from_json(e);
		_cleanup_free_ char *txt = err ? scm_error_text(err) : NULL;
		printf(" (%s)", txt ? txt : "error");
		scm_error_free(err);
	}
}

static json_object *find_job(json_object *arr, uint64_t id)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *j = json_object_array_get_idx(arr, i);
		if (jnum(j, "id") == id)
			return j;
	}
	return NULL;
}

/* Waits for job id: on a terminal a progress bar redrawn from job_list,
 * else one job_wait, with no call timeout. Exit status: 0 done, 1 failed
 * or cancelled. */
static int wait_job(scm_channel *ch, uint64_t id)
{
	scm_error *err = NULL;
	json_object *last = NULL;
	int r;
	if (isatty(STDOUT_FILENO)) {
		for (;;) {
			json_object *arr = NULL;
			if ((r = scm_vdisk_job_list(ch, &arr, &err)) != 0)
				break;
			json_object *j = find_job(arr, id);
			if (!j) {
				json_object_put(arr);
				break; /* pruned: ask job_wait */
			}
			printf("\r\033[K");
			job_line(j, true);
			fflush(stdout);
			if (vjob_finished(vjob_state_parse(jstr(j, "state")))) {
				printf("\n");
				last = json_object_get(j);
				json_object_put(arr);
				break;
			}
			json_object_put(arr);
			nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
		}
	}
	/* a job outlasts any call timeout ($SCM_CALL_TIMEOUT_MS included):
	 * waiting for it is the point; ^C stops the wait, not the job */
	scm_channel_set_timeout(ch, SCM_TIMEOUT_INFINITE);
	if (!last && (r = scm_vdisk_job_wait(ch, id, &last, &err)) != 0) {
		errc(err, r);
		scm_error_free(err);
		return EXIT_FAIL;
	}
	if (!isatty(STDOUT_FILENO)) {
		job_line(last, false);
		printf("\n");
	}
	bool ok = !strcmp(jstr(last, "state"), "done");
	json_object_put(last);
	return ok ? EXIT_OK : EXIT_FAIL;
}

/* A whole number for --throttle or --max-pause, at most max. */
static int parse_count(const char *opt, const char *v, uint64_t max, uint64_t *ret)
{
	char *e;
	errno = 0;
	unsigned long long x = *v >= '0' && *v <= '9' ? strtoull(v, &e, 10) : 0;
	if (*v < '0' || *v > '9' || *e || errno || x > max) {
		errf("migrate: %s \"%s\": expected a whole number from 0 to %llu", opt, v, (unsigned long long)max);
		return -EINVAL;
	}
	*ret = x;
	return 0;
}

/* snapshot / merge / compact / migrate: starts the job; waits unless --detach.
 * Returns -1 for compact when the disk is not served (do it offline). */
int cmd_online(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' }, { "service", required_argument, NULL, 's' },
		{ "detach", no_argument, NULL, 'd' },         { "into-parent", no_argument, NULL, 'i' },
		{ "from-parent", no_argument, NULL, 'f' },    { "online", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },           { "mode", required_argument, NULL, 'm' },
		{ "throttle", required_argument, NULL, 't' }, { "max-pause", required_argument, NULL, 'p' },
		{ 0 },
	};
	bool detach = false, online = false, mig = !strcmp(cmd, "migrate");
	const char *dir = NULL, *mode = "mirror";
	uint64_t throttle = 0, max_pause = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': endpoint = optarg; break;
		case 's': service = optarg; break;
		case 'd': detach = true; break;
		case 'o': online = true; break;
		case 'i': dir = "into-parent"; break;
		case 'f': dir = "from-parent"; break;
		case 'm':
			mode = optarg;
			if (!mig || (strcmp(mode, "mirror") && strcmp(mode, "snapshot"))) {
				errf("%s: --mode \"%s\": expected mirror or snapshot (migrate only)", cmd, mode);
				return EXIT_USAGE;
			}
			break;
		case 't':
		case 'p':
			if (!mig) {
				errf("%s: --throttle and --max-pause are migrate's options", cmd);
				return EXIT_USAGE;
			}
			if (parse_count(c == 't' ? "--throttle" : "--max-pause", optarg, c == 't' ? 1u << 20 : 60000,
					c == 't' ? &throttle : &max_pause) < 0)
				return EXIT_USAGE;
			break;
		case 'h':
			/* this command's line only: it lists no other's options */
			printf("Usage: scm-vdisk %s\n",
			       !strcmp(cmd, "snapshot") ? "snapshot [--detach] [--endpoint EP] DISK NEW"
			       : !strcmp(cmd, "merge")  ? "merge (--into-parent|--from-parent) [--detach] [--endpoint EP] DISK"
			       : mig ? "migrate [--mode mirror|snapshot] [--throttle MiB/s] [--max-pause MS]\n"
				       "                         [--detach] [--endpoint EP] DISK DEST|nbd[s]://HOST:PORT/NAME"
				     : "compact [--online] [--detach] [--endpoint EP] DISK");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	int want = !strcmp(cmd, "snapshot") || mig ? 2 : 1;
	if (argc - optind != want || (!strcmp(cmd, "merge") && !dir)) {
		errf("%s: expected %s (see --help)", cmd,
		     mig ? "DISK DEST" : want == 2 ? "DISK NEW" : !strcmp(cmd, "merge") ? "--into-parent or --from-parent, and DISK" : "DISK");
		return EXIT_USAGE;
	}
	_cleanup_free_ char *path = abs_path(argv[optind]);
	/* migrate's DEST may be an NBD URI (another host's export): as given */
	const char *dst = want == 2 ? argv[optind + 1] : NULL;
	_cleanup_free_ char *nw = !dst ? NULL : mig && strstr(dst, "://") ? strdup(dst) : abs_path(dst);
	scm_error *err = NULL;
	scm_channel *ch = connect_or_die(&err);
	if (!ch) {
		if (!strcmp(cmd, "compact") && !online) {
			scm_error_free(err);
			return -1;
		}
		errc(err, -EIO);
		scm_error_free(err);
		return EXIT_FAIL;
	}
	uint64_t id = 0;
	int r = mig ? scm_vdisk_migrate(ch, path, nw, mode, throttle, max_pause, &id, &err)
		: !strcmp(cmd, "snapshot") ? scm_vdisk_snapshot(ch, path, nw, &id, &err)
		: !strcmp(cmd, "merge")  ? scm_vdisk_merge(ch, path, dir, &id, &err)
					 : scm_vdisk_compact(ch, path, &id, &err);
	/* not served here (not open, no such service, not granted): the file */
	if ((r == SCM_VDISK_E_NOTOPEN || (r > 0 && r < SCM_E_APP)) && !strcmp(cmd, "compact") && !online) {
		scm_error_free(err);
		scm_channel_free(ch);
		return -1;
	}
	if (r) {
		errc(err, r);
		scm_error_free(err);
		scm_channel_free(ch);
		return EXIT_FAIL;
	}
	int ret = EXIT_OK;
	if (detach)
		printf("%llu\n", (unsigned long long)id);
	else
		ret = wait_job(ch, id);
	scm_channel_free(ch);
	return ret;
}

/* jobs [--json]; job ID pause|resume|cancel|wait */
int cmd_jobs(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' }, { "service", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },           { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'e': endpoint = optarg; break;
		case 's': service = optarg; break;
		case 'j': json = true; break;
		case 'h':
			printf("Usage: scm-vdisk jobs [--json] [--endpoint EP]\n"
			       "       scm-vdisk job [--endpoint EP] ID pause|resume|cancel|wait\n");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	bool list = !strcmp(cmd, "jobs");
	if (argc - optind != (list ? 0 : 2)) {
		errf("%s: expected %s (see --help)", cmd, list ? "no arguments" : "ID and pause, resume, cancel or wait");
		return EXIT_USAGE;
	}
	uint64_t id = 0;
	const char *verb = list ? "" : argv[optind + 1];
	if (!list && (parse_size(argv[optind], &id) < 0 ||
		      (strcmp(verb, "pause") && strcmp(verb, "resume") && strcmp(verb, "cancel") && strcmp(verb, "wait")))) {
		errf("job: expected a job number and pause, resume, cancel or wait, not \"%s %s\"", argv[optind], verb);
		return EXIT_USAGE;
	}
	scm_error *err = NULL;
	scm_channel *ch = connect_or_die(&err);
	if (!ch) {
		errc(err, -EIO);
		scm_error_free(err);
		return EXIT_FAIL;
	}
	int r = 0, ret = EXIT_OK;
	if (list) {
		json_object *arr = NULL;
		if (!(r = scm_vdisk_job_list(ch, &arr, &err))) {
			if (json)
				printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
			else
				for (size_t i = 0; i < json_object_array_length(arr); i++) {
					job_line(json_object_array_get_idx(arr, i), isatty(STDOUT_FILENO));
					printf("\n");
				}
			json_object_put(arr);
		}
	} else if (!strcmp(verb, "wait")) {
		ret = wait_job(ch, id);
	} else {
		r = !strcmp(verb, "pause")  ? scm_vdisk_job_pause(ch, id, &err)
		    : !strcmp(verb, "resume") ? scm_vdisk_job_resume(ch, id, &err)
					      : scm_vdisk_job_cancel(ch, id, &err);
	}
	if (r) {
		errc(err, r);
		scm_error_free(err);
		ret = EXIT_FAIL;
	}
	scm_channel_free(ch);
	return ret;
}

/* migrated [--clear] DISK: where DISK was migrated to (the mark that
 * keeps it from being opened for writing), and --clear removes the mark.
 * Exit status: 0 marked (or cleared), 1 failed or (without --clear) not
 * marked. */
int cmd_migrated(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "endpoint", required_argument, NULL, 'e' }, { "service", required_argument, NULL, 's' },
		{ "clear", no_argument, NULL, 'c' },          { "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool clear = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e': endpoint = optarg; break;
		case 's': service = optarg; break;
		case 'c': clear = true; break;
		case 'h':
			printf("Usage: scm-vdisk migrated [--clear] [--endpoint EP] DISK\n");
			return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		errf("migrated: expected DISK (see --help)");
		return EXIT_USAGE;
	}
	_cleanup_free_ char *path = abs_path(argv[optind]);
	scm_error *err = NULL;
	scm_channel *ch = connect_or_die(&err);
	if (!ch) {
		errc(err, -EIO);
		scm_error_free(err);
		return EXIT_FAIL;
	}
	_cleanup_free_ char *dest = NULL;
	int r = scm_vdisk_migrated(ch, path, clear, &dest, &err);
	scm_channel_free(ch);
	if (r) {
		errc(err, r);
		scm_error_free(err);
		return EXIT_FAIL;
	}
	if (!*dest) {
		printf("%s: not migrated (no mark)\n", path);
		return clear ? EXIT_OK : EXIT_FAIL;
	}
	if (clear)
		printf("%s: the mark of its migration to %s is cleared: it may be opened for writing again\n", path,
		       dest);
	else
		printf("%s: migrated to %s: opens for writing are refused (scm-vdisk migrated --clear %s)\n", path,
		       dest, path);
	return EXIT_OK;
}
