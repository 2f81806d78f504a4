/* scmd.c: the Service Control Manager daemon: set-up and the event loop.
 *
 *   scmd [--runtime-dir DIR] [--state-dir DIR] [--config DIR] [--idl-path DIRS]
 *        [--subids START:COUNT] [--launch-timeout MS] [--exec-timeout MS]
 *        [--audit journal|file|auto] [--audit-max-size BYTES] [--audit-keep N]
 *        [--audit-fold-ms MS]
 *
 * Runtime state lives in DIR (default /run/scm as root, else
 * $XDG_RUNTIME_DIR/scm): control.sock, endpoints/, logs/, audit.log (when
 * the audit does not go to the journal, audit.h). Container logs live on
 * disk in the state directory (default /var/lib/scm as root, else
 * $XDG_STATE_HOME/scm or ~/.local/state/scm): a container that writes
 * without end fills a capped file there, not scmd's tmpfs. Service
 * manifests are read from CONFIG/services/NAME.json at start. SIGHUP
 * reloads the policy; SIGUSR2 restarts scmd in place (restart.c: the
 * successor starts with the hidden --standby FD, and --check-state FD is
 * its dry run); SIGTERM and SIGINT stop scmd. Under systemd it is
 * Type=notify and may be socket-activated (sd.c). Everything but main()
 * is libscmd.a, which the unit tests link (tests/unit/scmd). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "restart.h"
#include "scmd.h"

#ifndef SCM_DATADIR
#define SCM_DATADIR "/usr/local/share/scm"
#endif

static void on_signal(struct scmd *d, struct watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD) {
			/* the copy that served while we loaded (restart-handoff.c) */
			if (d->handoff_pid > 0 && waitpid(d->handoff_pid, NULL, WNOHANG) == d->handoff_pid)
				d->handoff_pid = 0;
			service_reap_children(d);
			scmd_ctr_reap_execs(d);
			logzip_reap(d);
		} else if (si.ssi_signo == SIGHUP) {
			/* the administrator's "reload": as scmctl policy reload */
			scm_error *e = NULL;
			scmd_sd_reloading(d);
			if (scmd_policy_reload(d, NULL, &e) != 0) {
				log_error_chain(LOG_ERR, e, "SIGHUP: policy reload refused, the old policy stays:");
				scm_error_free(e);
			} else
				log_notice("SIGHUP: policy reloaded");
			scmd_sd_reloaded(d);
		} else if (si.ssi_signo == SIGUSR2)
			restart_request(d, NULL, 0, NULL); /* as scmctl daemon restart */
		else
			d->quit = true;
	}
}

/* Root: /var/lib/scm; a user: $XDG_STATE_HOME/scm or ~/.local/state/scm
 * (the XDG base directory rules), never a tmpfs. */
static char *default_state_dir(void)
{
	const char *x = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char *p = NULL;
	if (geteuid() == 0)
		return strdup("/var/lib/scm");
	if (x && x[0] == '/')
		return asprintf(&p, "%s/scm", x) < 0 ? NULL : p;
	if (!home || home[0] != '/') {
		struct passwd *pw = getpwuid(geteuid());
		home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
	}
	if (!home)
		return NULL;
	return asprintf(&p, "%s/.local/state/scm", home) < 0 ? NULL : p;
}

static void load_manifests(struct scmd *d)
{
	_cleanup_free_ char *dir = NULL;
	struct dirent **ents = NULL;

	if (asprintf(&dir, "%s/services", d->config_dir) < 0)
		return;
	int n = scandir(dir, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(ents[i]->d_name);
		if (l > 5 && strcmp(ents[i]->d_name + l - 5, ".json") == 0) {
			_cleanup_free_ char *f = NULL;
			scm_error *e = NULL;
			if (asprintf(&f, "%s/%s", dir, ents[i]->d_name) >= 0 && service_load_file(d, f, &e) != 0) {
				/* One bad manifest must not keep the others down. */
				log_error_chain(LOG_WARNING, e, "skipping %s:", f);
				scm_error_free(e);
			}
		}
		free(ents[i]);
	}
	free(ents);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: scmd [--runtime-dir DIR] [--state-dir DIR] [--config DIR] [--idl-path DIR[:DIR...]]\n"
		   "            [--subids START:COUNT] [--launch-timeout MS] [--exec-timeout MS]\n"
		   "            [--audit journal|file|auto] [--audit-max-size BYTES] [--audit-keep N]\n"
		   "            [--audit-fold-ms MS] [--token-ttl-ms MS]\n"
		   "Runs the Service Control Manager in the foreground; see scmd(8).\n");
}

/* A start that fails: with --standby, before the state is taken, the
 * previous binary takes it back (handoff_fall_back, which returns if it
 * cannot). e is logged and freed. */
static int start_failed(struct scmd *d, int standby_fd, int standby_self, size_t standby_argc, scm_error *e)
{
	log_error_chain(LOG_ERR, e, "cannot start:");
	if (standby_fd >= 0)
		handoff_fall_back(standby_fd, standby_self, standby_argc, e, d->argv);
	scm_error_free(e);
	return 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runtime-dir", required_argument, NULL, 'r' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "idl-path", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ "subids", required_argument, NULL, 'U' }, /* long only */
		{ "launch-timeout", required_argument, NULL, 'L' },
		{ "exec-timeout", required_argument, NULL, 'E' },
		{ "audit", required_argument, NULL, 'A' },
		{ "audit-max-size", required_argument, NULL, 'S' },
		{ "audit-keep", required_argument, NULL, 'K' },
		{ "audit-fold-ms", required_argument, NULL, 'F' },
		{ "token-ttl-ms", required_argument, NULL, 'T' },
		{ "restore", required_argument, NULL, 'R' },     /* hidden: restart.c */
		{ "check-state", required_argument, NULL, 'C' }, /* hidden: restart.c */
		{ "standby", required_argument, NULL, 'Y' },     /* hidden: restart-handoff.c */
		{},
	};
	struct scmd d = { .epoll_fd = -1, .lock_fd = -1 };
	scm_error *e = NULL;
	const char *subids = NULL;
	struct audit_opts ao = { .sink = AUDIT_AUTO, .max_bytes = AUDIT_MAX_BYTES_DEFAULT, .keep = AUDIT_KEEP_DEFAULT };
	int c, restore_fd = -1, check_fd = -1, standby_fd = -1;
	size_t standby_heap = 0;
	bool standby_early = false;
	int standby_self = -1;
	size_t standby_argc = 0;
	json_object *st = NULL;
	struct fdmap map = { 0 };

	log_init();

	while ((c = getopt_long(argc, argv, "r:s:c:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': d.runtime_dir = strdup(optarg); break;
		case 's': d.state_dir = strdup(optarg); break;
		case 'c': d.config_dir = strdup(optarg); break;
		case 'i': d.idl_path = strdup(optarg); break;
		case 'U': subids = optarg; break;
		case 'L':
		case 'E': {
			char *end;
			unsigned long ms = strtoul(optarg, &end, 10);
			if (*end || ms == 0 || ms > 3600000) {
				log_error("--%s: give milliseconds, 1 to 3600000",
					c == 'L' ? "launch-timeout" : "exec-timeout");
				return 2;
			}
			*(c == 'L' ? &d.launch_timeout_ms : &d.exec_timeout_ms) = (unsigned)ms;
			break;
		}
		case 'A':
			if (strcmp(optarg, "journal") == 0)
				ao.sink = AUDIT_JOURNAL;
			else if (strcmp(optarg, "file") == 0)
				ao.sink = AUDIT_FILE;
			else if (strcmp(optarg, "auto") != 0) {
				log_error("--audit %s: expected journal, file or auto", optarg);
				return 2;
			}
			break;
		case 'S':
		case 'K':
		case 'F': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);
			bool bad = *end || !*optarg || optarg[0] == '-' ||
				   (c == 'S' ? v < 1024 || v > (1ull << 32) : c == 'K' ? v > 100 : v < 1 || v > 3600000);
			if (bad) {
				log_error(c == 'S'   ? "--audit-max-size %s: give bytes, 1024 to 4294967296"
					  : c == 'K' ? "--audit-keep %s: give a number of files, 0 to 100"
						     : "--audit-fold-ms %s: give milliseconds, 1 to 3600000",
					  optarg);
				return 2;
			}
			if (c == 'S')
				ao.max_bytes = (size_t)v;
			else if (c == 'K')
				ao.keep = (unsigned)v;
			else
				ao.fold_usec = v * 1000;
			break;
		}
		case 'R':
		case 'C':
		case 'Y': {
			char *end;
			long v = strtol(optarg, &end, 10);
			/* --standby FD,HEAP,SELF,ARGC: HEAP the old scmd's heap in
			 * bytes, SELF an O_PATH fd of its binary to fall back on (-1:
			 * none), ARGC how many of our arguments were its own */
			if (c == 'Y' && *end == ',' && end[1] >= '0' && end[1] <= '9')
				standby_heap = (size_t)strtoull(end + 1, &end, 10);
			if (c == 'Y' && *end == ',') {
				long sf = strtol(end + 1, &end, 10);
				standby_self = sf >= 0 && sf <= INT32_MAX ? (int)sf : -1;
			}
			if (c == 'Y' && *end == ',' && end[1] >= '0' && end[1] <= '9')
				standby_argc = (size_t)strtoull(end + 1, &end, 10);
			/* ,1: the containers and channels came early (restart-handoff.c) */
			if (c == 'Y' && strncmp(end, ",1", 2) == 0 && (end[2] == 0 || end[2] == ',')) {
				standby_early = true;
				end += 2;
				/* ,N: a nice value an earlier build passed (no
				 * longer lowered, so nothing to take back) */
				if (*end == ',' && (end[1] == '-' || (end[1] >= '0' && end[1] <= '9')))
					(void)strtol(end + 1, &end, 10);
			}
			if (*end || v < 0 || v > INT32_MAX) {
				log_error("--%s %s: give an fd number",
					  c == 'R' ? "restore" : c == 'C' ? "check-state" : "standby", optarg);
				return 2;
			}
			*(c == 'R' ? &restore_fd : c == 'C' ? &check_fd : &standby_fd) = (int)v;
			break;
		}
		case 'T': {
			char *end;
			unsigned long ms = strtoul(optarg, &end, 10);
			if (*end || !*optarg || optarg[0] == '-' || ms == 0 || ms > 3600000) {
				log_error("--token-ttl-ms %s: give milliseconds, 1 to 3600000", optarg);
				return 2;
			}
			d.token_ttl_ms = (unsigned)ms;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (check_fd >= 0)
		return restart_check_main(check_fd);
	/* the successor's argv: ours, without a --restore or --standby
	 * (restart-handoff.c adds its own) */
	d.argv = calloc((size_t)argc + 1, sizeof(char *));
	for (int i = 0, k = 0; d.argv && i < argc; i++) {
		if ((strcmp(argv[i], "--restore") == 0 || strcmp(argv[i], "--standby") == 0) && i + 1 < argc) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--restore=", 10) != 0 && strncmp(argv[i], "--standby=", 10) != 0)
			d.argv[k++] = argv[i];
	}
	if (!d.argv)
		return 1;
	int rs = restore_fd >= 0 ? restart_take_state(restore_fd, &st, &map, &e) : 0;
	if (rs < 0) {
		log_error_chain(LOG_ERR, e, "cannot restore:");
		return 1;
	}
	if (st) {
		d.restoring = true;
		d.store_restore = restore_fd < 0;
		restart_restore_early(&d, st, &map);
	}
	/* --standby: everything that needs no state is set up first, while
	 * the old scmd's copy still serves; the state comes after the policy */
	if (standby_fd >= 0)
		d.restoring = true;
	if (standby_self >= 0) /* not for our children; execveat takes it as it is */
		(void)fcntl(standby_self, F_SETFD, FD_CLOEXEC);
	uint64_t restore_t0 = now_usec();
	if (!d.runtime_dir) {
		const char *x = getenv("XDG_RUNTIME_DIR");
		if (geteuid() == 0 || !x)
			d.runtime_dir = strdup("/run/scm");
		else if (asprintf(&d.runtime_dir, "%s/scm", x) < 0)
			return 1;
	}
	if (!d.state_dir && !(d.state_dir = default_state_dir())) {
		log_error("no state directory: set --state-dir, XDG_STATE_HOME or HOME");
		return 1;
	}
	if (!d.config_dir)
		d.config_dir = strdup("/etc/scm");
	if (scmd_ctr_subids_init(&d, subids) < 0) {
		/* it said what */
		scm_fail(&e, -EPERM, "the subordinate ids");
		return start_failed(&d, standby_fd, standby_self, standby_argc, e);
	}
	if (!d.idl_path && asprintf(&d.idl_path, "%s/idl:%s/idl", d.config_dir, SCM_DATADIR) < 0)
		return 1;

	/* Every channel and container costs scmd fds; ask for all the room
	 * the hard limit gives (containers get half, see scmd_ctr_init). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	signal(SIGPIPE, SIG_IGN);

	char sub[3][16] = { "", "/endpoints", "/logs" };
	for (int i = 0; i < 3; i++) {
		_cleanup_free_ char *p = NULL;
		if (asprintf(&p, "%s%s", d.runtime_dir, sub[i]) < 0)
			return 1;
		int r = mkdir_p_parents(p, 0755, i == 0 ? 0755 : 0711);
		if (r < 0) {
			scm_fail(&e, r, "cannot create %s: %s", p, strerror(-r));
			return start_failed(&d, standby_fd, standby_self, standby_argc, e);
		}
	}

	/* The state directory holds what outlives a boot of scmd (container
	 * logs); made like the runtime directory, private below it. */
	int sr = mkdir_p_parents(d.state_dir, 0755, 0700);
	if (sr < 0) {
		scm_fail(&e, sr, "cannot create the state directory %s: %s", d.state_dir, strerror(-sr));
		return start_failed(&d, standby_fd, standby_self, standby_argc, e);
	}

	/* systemd's sockets, before anything binds (sd.c): taken by name below */
	if (scmd_sd_listen(&d, &e) != 0)
		return start_failed(&d, standby_fd, standby_self, standby_argc, e);
	/* after a crash under systemd: the state and fds its store kept
	 * (restart-store.c), passed with the activated sockets */
	if (!st && standby_fd < 0) {
		int fr = fdstore_take(&d, &st, &map, &e);
		if (fr < 0) {
			log_error_chain(LOG_ERR, e, "cannot restore:");
			return 1;
		}
		if (st) {
			d.restoring = true;
			d.store_restore = true;
			restart_restore_early(&d, st, &map);
		}
	}
	list_init(&d.endpoints);
	list_init(&d.services);
	list_init(&d.channels);
	list_init(&d.chan_watch_q);
	list_init(&d.dead_conns);
	list_init(&d.tokens);
	if (!d.token_ttl_ms)
		d.token_ttl_ms = TOKEN_TTL_DEFAULT_MS;
	int cr = 0;
	if (standby_fd >= 0)
		list_init(&d.containers); /* scmd_ctr_init once the state is here */
	else
		cr = scmd_ctr_init(&d);
	if (cr < 0) {
		/* scmd_ctr_init said what (another scmd, a directory) */
		return 1;
	}
	d.default_limit = (struct quota){ .channels = 1024, .pending = 64, .conns = 256, .queued = 256 * 1024 };
	d.host = (struct endpoint){ .name = "host", .limit = { 1 << 20, 1024, 256, 1 << 20 } };
	list_init(&d.host.conns);
	list_init(&d.host.channels);
	if (!d.restoring)
		d.started = now_usec();

	d.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	d.sigfd = (struct watch){ signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK), on_signal };
	if (d.epoll_fd < 0 || d.sigfd.fd < 0 || watch_add(&d, &d.sigfd, EPOLLIN) < 0 || accept_timer_init(&d) < 0) {
		int er = errno;
		scm_fail(&e, -er, "cannot set up the event loop: %s", strerror(er));
		return start_failed(&d, standby_fd, standby_self, standby_argc, e);
	}

	_cleanup_free_ char *audit_path = NULL;
	if (asprintf(&audit_path, "%s/audit.log", d.runtime_dir) < 0)
		return 1;
	ao.path = audit_path;
	ao.tap = events_tap;
	ao.tap_data = &d;
	events_init(&d);
	d.audit = audit_open(&ao, &e);
	if (!d.audit) {
		/* asked for the journal and it is not there: say so, do not start */
		if (ao.sink == AUDIT_JOURNAL)
			return start_failed(&d, standby_fd, standby_self, standby_argc, e);
		log_error_chain(LOG_WARNING, e, "running without an audit trail:");
		scm_error_free(e);
		e = NULL;
	}

	/* Policy before the control socket: a profile set that does not load
	 * keeps scmd from starting rather than running with no policy. */
	if (!d.restoring)
		load_manifests(&d);
	if (standby_fd >= 0)
		handoff_prefault(standby_heap);
	if (scmd_policy_init(&d, &e) != 0 || (!d.restoring && control_listen(&d, &e) != 0) ||
	    (standby_fd >= 0 && (restore_t0 = now_usec(), restart_standby_take(&d, standby_fd, standby_early, &st, &map, &e)) != 0) ||
	    (d.restoring && restart_finish(&d, st, &map, restore_t0, &e) != 0)) {
		start_failed(&d, standby_fd, standby_self, standby_argc, e);
		service_stop_all(&d);
		return 1;
	}
	if (standby_self >= 0)
		close(standby_self);
	if (standby_fd >= 0) {
		handoff_done(standby_fd); /* the copy exits: reaped at its SIGCHLD */
		handoff_prefault_end();
	}
	if (st)
		fdstore_drop_activated(&d); /* what the state brought already */
	json_object_put(st);
	scmd_sd_adopt_endpoints(&d);
	scmd_sd_listen_done(&d);
	log_info("ready, control socket %s/control.sock%s, audit to the %s", d.runtime_dir,
		 d.sd.control_activated ? " (socket-activated)" : "", d.audit ? audit_sink_name(d.audit) : "void");
	if (scmd_sd_ready(&d) < 0) {
		service_stop_all(&d);
		return 1;
	}
	fdstore_init(&d);

	while (!d.quit) {
		struct epoll_event evs[64];
		struct evbatch b;
		struct watch *w;
		uint32_t events;
		/* channels restored by a restart wait for their watches: a
		 * batch per iteration, the loop never sleeping meanwhile */
		bool more = !list_empty(&d.chan_watch_q) && channel_watch_queued(&d, CHAN_WATCH_BATCH);
		int n = epoll_wait(d.epoll_fd, evs, ELEMENTSOF(evs), more ? 0 : -1);
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %m");
			break;
		}
		evbatch_start(&b, evs, n);
		d.batch = &b;
		/* skips events whose owner an earlier handler freed (evbatch.h) */
		while ((w = evbatch_next(&b, &events))) {
			w->fn(&d, w, events);
			conn_reap_dead(&d);
		}
		d.batch = NULL;
		if (d.store_dirty && d.fdstore)
			fdstore_sync(&d);
	}

	log_info("shutting down");
	scmd_sd_stopping(&d);
	scmd_ctr_stop_all(&d);
	logzip_stop(&d);
	struct list *p, *t;
	list_for_each_safe(p, t, &d.endpoints) endpoint_remove(&d, list_entry(p, struct endpoint, node));
	service_stop_all(&d);
	_cleanup_free_ char *ctl = NULL;
	/* an activated control socket is systemd's: it keeps listening */
	if (!d.sd.control_activated && asprintf(&ctl, "%s/control.sock", d.runtime_dir) >= 0)
		unlink(ctl);
	scmd_policy_done(&d);
	audit_close(d.audit);
	free(d.runtime_dir);
	free(d.state_dir);
	free(d.config_dir);
	free(d.idl_path);
	free(d.argv);
	free(d.old_providers);
	return 0;
}
