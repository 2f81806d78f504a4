/* export.c: `scm-vdisk export`, a vdisk served over NBD. A plain (unix
 * socket, no TLS) export is served by the provider itself: this process
 * does the handshake and hands each connection over (nbdserve.c). With
 * TLS, or --nbdkit, nbdkit speaks the protocol (and TLS) and our plugin
 * (nbdkit-scm-vdisk.c) is a client of the vdisk provider with the caller's
 * grant. This file makes the listening
 * socket itself (so loopback-only and "TCP needs TLS" are decided here,
 * before anything listens), hands it to nbdkit by socket activation, waits
 * until the plugin has the disk open (its ready_fd), and keeps a record
 * per export for --list and --stop (docs/vdisk.md "NBD export"). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exportrec.h"
#include "scmutil.h"
#include "tool.h"

static const char export_usage[] =
	"Usage: scm-vdisk export DISK --nbd unix:PATH|tcp:ADDR:PORT [--readonly] [--name NAME]\n"
	"                        [--tls-psk FILE | --tls-certificates DIR [--tls-verify-peer]]\n"
	"                        [--allow-remote] [--detach] [--nbdkit [--lanes N] [--no-ring]] [--endpoint EP] [--service NAME]\n"
	"       scm-vdisk export --list [--json]\n"
	"       scm-vdisk export --stop NAME\n"
	"Serves DISK (its whole chain) over NBD through the vdisk provider, with the\n"
	"caller's grant. TCP needs TLS and binds a loopback address unless\n"
	"--allow-remote. Without --detach it serves until interrupted. A plain\n"
	"export is served by the provider; TLS, or --nbdkit, goes through nbdkit.\n";

struct opts {
	const char *disk, *nbd, *name, *psk, *certs, *endpoint, *service;
	bool readonly, verify_peer, allow_remote, detach, no_ring, nbdkit;
	int lanes;
};

static char *records_dir(void)
{
	const char *d = getenv("SCM_EXPORT_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	char *out = NULL;
	if (d && *d)
		out = strdup(d);
	else if (asprintf(&out, "%s/scm/exports", getuid() == 0 || !xdg || !*xdg ? "/run" : xdg) < 0)
		out = NULL;
	return out;
}

static char *record_path(const char *dir, const char *name)
{
	char *p = NULL;
	return asprintf(&p, "%s/%s.json", dir, name) < 0 ? NULL : p;
}

/* Reads DIR/NAME.json; 0, -ENOENT, or another error said on stderr. */
static int record_read(const char *dir, const char *name, struct export_record *ret)
{
	_cleanup_free_ char *p = record_path(dir, name);
	int fd = p ? open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	if (fd < 0)
		return -errno;
	char buf[EXPORT_RECORD_MAX + 1];
	ssize_t n = read(fd, buf, sizeof buf);
	close(fd);
	if (n < 0)
		return -errno;
	scm_error *e = NULL;
	int r = export_record_parse(buf, (size_t)n, ret, &e);
	if (r < 0) {
		scm_fail(&e, r, "%s", p);
		errc(e, r);
	}
	scm_error_free(e);
	return r;
}

/* Is pid an export still, nbdkit or our own server? (The record may
 * outlive it, and a pid comes back.) Returns a pidfd on it, or -1. */
static int nbdkit_pidfd(pid_t pid)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return -1;
	/* "PID (nbdkit) S ..." or "(scm-vdisk)": the name, and not a zombie
	 * (a stopped export nobody has reaped yet) */
	char p[64], st[128] = "";
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, st, sizeof st - 1) : -1;
	if (fd >= 0)
		close(fd);
	const char *name = n > 0 ? strchr(st, '(') : NULL;
	size_t k = !name ? 0 : !strncmp(name, "(nbdkit) ", 9) ? 9 : !strncmp(name, "(scm-vdisk) ", 12) ? 12 : 0;
	if (!k || name[k] == 'Z' || name[k] == 'X') {
		close(pfd);
		return -1;
	}
	return pfd;
}

static int cmd_list(bool json)
{
	_cleanup_free_ char *dir = records_dir();
	DIR *d = dir ? opendir(dir) : NULL;
	if (json)
		printf("[");
	bool first = true;
	for (struct dirent *de; d && (de = readdir(d));) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		char name[EXPORT_NAME_MAX + 1];
		if (n - 5 > EXPORT_NAME_MAX)
			continue;
		memcpy(name, de->d_name, n - 5);
		name[n - 5] = 0;
		struct export_record r;
		if (!export_name_valid(name) || record_read(dir, name, &r) < 0)
			continue;
		int pfd = nbdkit_pidfd(r.pid);
		if (pfd < 0) { /* gone without --stop: forget it */
			_cleanup_free_ char *p = record_path(dir, name);
			if (p)
				unlink(p);
			if (r.socket)
				unlink(r.socket);
			export_record_done(&r);
			continue;
		}
		close(pfd);
		if (json) {
			_cleanup_free_ char *s = export_record_format(&r);
			printf("%s%s", first ? "" : ",", s ? s : "null");
		} else {
			printf("%-16s %-8d %-3s %s %s\n", r.name, (int)r.pid, r.readonly ? "ro" : "rw", r.uri, r.disk);
		}
		first = false;
		export_record_done(&r);
	}
	if (json)
		printf("]\n");
	if (d)
		closedir(d);
	return EXIT_OK;
}

static int cmd_stop(const char *name)
{
	if (!export_name_valid(name)) {
		errf("export --stop: \"%s\" is not an export name", name);
		return EXIT_USAGE;
	}
	_cleanup_free_ char *dir = records_dir();
	struct export_record r;
	int rr = dir ? record_read(dir, name, &r) : -ENOMEM;
	if (rr < 0) {
		if (rr == -ENOENT)
			errf("export --stop: no export named %s", name);
		return EXIT_FAIL;
	}
	int pfd = nbdkit_pidfd(r.pid);
	if (pfd >= 0) {
		/* nbdkit finishes the requests in flight and the plugin closes
		 * (flushes) its handles, then it exits */
		syscall(SYS_pidfd_send_signal, pfd, SIGTERM, NULL, 0);
		struct pollfd p = { pfd, POLLIN, 0 };
		if (poll(&p, 1, 30000) == 0) {
			errf("export --stop: %s (pid %d) did not stop in 30 s: killed", name, (int)r.pid);
			syscall(SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
			poll(&p, 1, -1);
		}
		close(pfd);
	}
	_cleanup_free_ char *p = record_path(dir, name);
	if (p)
		unlink(p);
	if (r.socket)
		unlink(r.socket);
	export_record_done(&r);
	return EXIT_OK;
}

static bool loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	return sa->sa_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* The listening socket for unix:PATH or tcp:ADDR:PORT, and the URI a
 * client uses (without the export name). -1 with the reason said. */
static int listen_on(const struct opts *o, char **ret_uri, char **ret_socket)
{
	const char *spec = o->nbd;
	if (!strncmp(spec, "unix:", 5)) {
		/* absolute: the URI and the record (--stop removes the socket)
		 * must mean the same file from any directory */
		char cwd[PATH_MAX], abs_path[PATH_MAX + 110];
		const char *path = spec + 5;
		if (*path && *path != '/' && getcwd(cwd, sizeof cwd)) {
			snprintf(abs_path, sizeof abs_path, "%s/%s", strcmp(cwd, "/") ? cwd : "", path);
			path = abs_path;
		}
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		if (!*path || strlen(path) >= sizeof sa.sun_path) {
			errf("--nbd %s: the socket path is empty or longer than %zu bytes", spec, sizeof sa.sun_path - 1);
			return -1;
		}
		strcpy(sa.sun_path, path);
		/* the socket is the caller's alone (0600): whoever may connect
		 * uses the caller's grant; a chmod widens it on purpose */
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		mode_t um = umask(0177);
		int b = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof sa);
		umask(um);
		if (fd < 0 || b < 0 || listen(fd, SOMAXCONN) < 0) {
			errf("--nbd %s: %s%m", spec, errno == EADDRINUSE ? "the path exists: " : "");
			if (fd >= 0)
				close(fd);
			return -1;
		}
		*ret_socket = strdup(path);
		if (asprintf(ret_uri, "%s+unix:///%%s?socket=%s", o->psk || o->certs ? "nbds" : "nbd", path) < 0)
			*ret_uri = NULL;
		return fd;
	}
	if (strncmp(spec, "tcp:", 4)) {
		errf("--nbd %s: expected unix:PATH or tcp:ADDR:PORT", spec);
		return -1;
	}
	char host[256];
	const char *hp = spec + 4, *colon = strrchr(hp, ':');
	if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof host) {
		errf("--nbd %s: expected tcp:ADDR:PORT (an IPv6 address in brackets)", spec);
		return -1;
	}
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = 0;
	char *h = host;
	size_t hl = strlen(h);
	if (h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = 0;
		h++;
	}
	if (!o->psk && !o->certs) {
		errf("--nbd %s: NBD over TCP needs TLS: give --tls-psk FILE or --tls-certificates DIR", spec);
		return -1;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE },
			*ai = NULL;
	int g = getaddrinfo(h, colon + 1, &hints, &ai);
	if (g) {
		errf("--nbd %s: %s (a numeric address and port)", spec, gai_strerror(g));
		return -1;
	}
	if (!loopback(ai->ai_addr) && !o->allow_remote) {
		errf("--nbd %s: %s is not a loopback address; serving other hosts needs --allow-remote", spec, h);
		freeaddrinfo(ai);
		return -1;
	}
	int one = 1, fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0) {
		errf("--nbd %s: %m", spec);
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char port[16] = "0";
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, port, sizeof port, NI_NUMERICSERV);
	bool v6 = strchr(h, ':') != NULL;
	if (asprintf(ret_uri, "nbds://%s%s%s:%s/%%s", v6 ? "[" : "", h, v6 ? "]" : "", port) < 0)
		*ret_uri = NULL;
	*ret_socket = NULL;
	return fd;
}

static char *plugin_path(void)
{
	const char *env = getenv("SCM_NBDKIT_PLUGIN");
	if (env && *env)
		return strdup(env);
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return NULL;
	exe[n] = 0;
	char *p = NULL;
	return asprintf(&p, "%s/../lib/nbdkit-scmvdisk-plugin.so", dirname(exe)) < 0 ? NULL : p;
}

static pid_t child;
static void forward(int sig)
{
	if (child > 0)
		kill(child, SIGTERM);
}

/* In the child: nbdkit with the socket as fd 3 (LISTEN_FDS), the ready
 * pipe as fd 4. */
static void exec_nbdkit(const struct opts *o, const char *plugin, const char *disk, int lfd, int rfd,
			int logfd)
{
	if (o->detach) {
		setsid();
		int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
	}
	if (!o->nbdkit) /* our own server, the provider serving */
		_exit(export_serve_here(o->endpoint, o->service, disk, o->name, o->readonly, !o->detach, lfd, rfd));
	/* fds 3 and 4 from wherever they are now, without clobbering */
	int l = fcntl(lfd, F_DUPFD_CLOEXEC, 10), r = fcntl(rfd, F_DUPFD_CLOEXEC, 10);
	if (l < 0 || r < 0 || dup2(l, 3) < 0 || dup2(r, 4) < 0)
		_exit(127);
	char pid[32];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
	unsetenv("LISTEN_FDNAMES");
	char *argv[40], *a_disk, *a_name, *a_ep = NULL, *a_svc = NULL, *a_lanes, *a_psk = NULL, *a_certs = NULL;
	size_t n = 0;
	argv[n++] = "nbdkit";
	if (o->readonly)
		argv[n++] = "-r";
	if (!o->detach)
		argv[n++] = "--exit-with-parent";
	if (o->psk || o->certs) {
		argv[n++] = "--tls=require";
		if (o->psk && asprintf(&a_psk, "--tls-psk=%s", o->psk) > 0)
			argv[n++] = a_psk;
		if (o->certs && asprintf(&a_certs, "--tls-certificates=%s", o->certs) > 0)
			argv[n++] = a_certs;
		if (o->verify_peer)
			argv[n++] = "--tls-verify-peer";
	}
	if (getenv("SCM_NBDKIT_VERBOSE")) /* nbdkit's debug messages, into the log */
		argv[n++] = "-v";
	argv[n++] = (char *)plugin;
	if (asprintf(&a_disk, "disk=%s", disk) < 0 || asprintf(&a_name, "name=%s", o->name) < 0 ||
	    asprintf(&a_lanes, "lanes=%d", o->lanes) < 0)
		_exit(127);
	argv[n++] = a_disk;
	argv[n++] = a_name;
	argv[n++] = a_lanes;
	argv[n++] = o->readonly ? "readonly=true" : "readonly=false";
	argv[n++] = "ready_fd=4";
	if (o->no_ring)
		argv[n++] = "ring=false";
	if (o->endpoint && asprintf(&a_ep, "endpoint=%s", o->endpoint) > 0)
		argv[n++] = a_ep;
	if (o->service && asprintf(&a_svc, "service=%s", o->service) > 0)
		argv[n++] = a_svc;
	argv[n] = NULL;
	execvp("nbdkit", argv);
	fprintf(stderr, "scm-vdisk: export: running nbdkit: %m (is the nbdkit package installed?)\n");
	_exit(127);
}

/* The absolute path the grant sees: the directory resolved, the last
 * component as given (a link there is the provider's to refuse). */
static char *grant_path(const char *p)
{
	char d[PATH_MAX], b[PATH_MAX], real[PATH_MAX];
	snprintf(d, sizeof d, "%s", p);
	snprintf(b, sizeof b, "%s", p);
	if (!realpath(dirname(d), real))
		return strdup(p);
	char *out = NULL;
	return asprintf(&out, "%s/%s", strcmp(real, "/") ? real : "", basename(b)) < 0 ? NULL : out;
}

/* A detached nbdkit must not be our child: nbdkit sets PR_SET_PDEATHSIG
 * (SIGTERM) under socket activation, so it would die with us. A middle
 * process forks it and exits; we reap the middle one, and only then let
 * nbdkit go on to exec (through the go pipe): by then it is init's (or a
 * subreaper's) child, whose death it can wait for. Returns 0 in nbdkit's
 * process (which then execs), > 0 here, -1 on failure. */
static pid_t spawn_detached(const struct opts *o, const char *plugin, const char *disk, int lfd, int rfd,
			    int logfd)
{
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return -1;
	pid_t mid = fork();
	if (mid == 0) {
		pid_t g = fork();
		if (g == 0) {
			char c;
			close(go[1]);
			while (read(go[0], &c, 1) < 0 && errno == EINTR)
				;
			close(go[0]);
			exec_nbdkit(o, plugin, disk, lfd, rfd, logfd);
		}
		_exit(g < 0 ? 127 : 0);
	}
	close(go[0]);
	int st = 0;
	if (mid > 0)
		while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
			;
	(void)!write(go[1], "g", 1);
	close(go[1]);
	return mid < 0 || !WIFEXITED(st) || WEXITSTATUS(st) ? -1 : 1;
}

static int listen_undo(int lfd, const char *sock)
{
	close(lfd);
	if (sock)
		unlink(sock);
	return EXIT_FAIL;
}

static int serve(struct opts *o)
{
	_cleanup_free_ char *disk = grant_path(o->disk), *dir = records_dir(), *plugin = plugin_path();
	char dn[PATH_MAX], *dot;
	if (!disk || !dir || !plugin)
		return errf("export: out of memory"), EXIT_FAIL;
	snprintf(dn, sizeof dn, "%s", basename(disk));
	if ((dot = strrchr(dn, '.')) && dot != dn)
		*dot = 0;
	if (!o->name)
		o->name = dn;
	if (!export_name_valid(o->name))
		return errf("export: --name %s: 1 to %d of a-z A-Z 0-9 . _ - (not first . or -)%s", o->name,
			    EXPORT_NAME_MAX, o->name == dn ? "; the disk's name does not do, give --name" : ""),
		       EXIT_USAGE;
	struct export_record old;
	if (mkdir_p(dir, 0700) < 0)
		return errf("export: %s: %m", dir), EXIT_FAIL;
	if (record_read(dir, o->name, &old) == 0) {
		int pfd = nbdkit_pidfd(old.pid);
		export_record_done(&old);
		if (pfd >= 0) {
			close(pfd);
			errf("export: an export named %s runs already (scm-vdisk export --list); give another --name",
			     o->name);
			return EXIT_FAIL;
		}
	}
	_cleanup_free_ char *uri_fmt = NULL, *sock = NULL;
	int lfd = listen_on(o, &uri_fmt, &sock);
	if (lfd < 0)
		return EXIT_USAGE;
	_cleanup_free_ char *uri = NULL, *log = NULL;
	if (!uri_fmt || asprintf(&uri, uri_fmt, o->name) < 0 || asprintf(&log, "%s/%s.log", dir, o->name) < 0)
		return errf("export: out of memory"), EXIT_FAIL;
	int logfd = o->detach ? open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600) : -1;
	int rp[2];
	if ((o->detach && logfd < 0) || pipe2(rp, O_CLOEXEC) < 0) {
		errf("export: %s: %m", o->detach ? log : "pipe");
		return listen_undo(lfd, sock);
	}
	child = o->detach ? spawn_detached(o, plugin, disk, lfd, rp[1], logfd) : fork();
	if (o->detach && child > 0)
		child = 0; /* not ours to signal until the plugin names it */
	if (child < 0) {
		errf("export: fork: %m");
		return listen_undo(lfd, sock);
	}
	if (child == 0 && !o->detach)
		exec_nbdkit(o, plugin, disk, lfd, rp[1], logfd);
	close(rp[1]);
	close(lfd);
	signal(SIGINT, forward);
	signal(SIGTERM, forward);
	signal(SIGHUP, forward);
	char buf[16] = "";
	ssize_t n;
	do
		n = read(rp[0], buf, sizeof buf - 1);
	while (n < 0 && errno == EINTR);
	close(rp[0]);
	if (n <= 0 || strncmp(buf, "ready ", 6)) {
		int st = 0;
		if (!o->detach) /* a detached nbdkit is not our child */
			while (waitpid(child, &st, 0) < 0 && errno == EINTR)
				;
		if (o->detach) { /* what nbdkit and the plugin said */
			char b[4096];
			int f = open(log, O_RDONLY | O_CLOEXEC);
			ssize_t k;
			while (f >= 0 && (k = read(f, b, sizeof b)) > 0)
				(void)!write(2, b, (size_t)k);
			if (f >= 0)
				close(f);
			unlink(log);
		}
		if (o->detach)
			errf("export %s: nothing is served: the export exited before serving", disk);
		else
			errf("export %s: nothing is served: %s %s %d", disk, o->nbdkit ? "nbdkit" : "the export",
			     WIFEXITED(st) ? "exited with status" : "died of signal",
			     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		if (sock)
			unlink(sock);
		return EXIT_FAIL;
	}
	child = (pid_t)atoi(buf + 6); /* nbdkit's, as the plugin says it */
	struct export_record rec = { .pid = child, .disk = disk, .uri = uri, .socket = sock,
				     .readonly = o->readonly, .started = (long long)time(NULL) };
	snprintf(rec.name, sizeof rec.name, "%s", o->name);
	_cleanup_free_ char *text = export_record_format(&rec), *rpath = record_path(dir, o->name);
	_cleanup_free_ char *tmp = NULL;
	if (!text || !rpath || asprintf(&tmp, "%s.tmp", rpath) < 0)
		return errf("export: out of memory"), EXIT_FAIL;
	unlink(tmp);
	int rf = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (rf < 0 || write(rf, text, strlen(text)) != (ssize_t)strlen(text) || rename(tmp, rpath) < 0)
		errf("export: %s: %m (--list will not show this export)", rpath);
	if (rf >= 0)
		close(rf);
	printf("%s %s\n", o->name, uri);
	fflush(stdout);
	if (o->detach)
		return EXIT_OK;
	int st = 0;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	unlink(rpath);
	if (sock)
		unlink(sock);
	/* stopped by a signal we forwarded: a normal end */
	return WIFEXITED(st) && WEXITSTATUS(st) ? EXIT_FAIL : EXIT_OK;
}

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nbd", required_argument, NULL, 'n' },	   { "readonly", no_argument, NULL, 'r' },
		{ "name", required_argument, NULL, 'N' },	   { "tls-psk", required_argument, NULL, 'p' },
		{ "tls-certificates", required_argument, NULL, 'c' }, { "tls-verify-peer", no_argument, NULL, 'v' },
		{ "allow-remote", no_argument, NULL, 'a' },	   { "detach", no_argument, NULL, 'd' },
		{ "lanes", required_argument, NULL, 'l' },	   { "endpoint", required_argument, NULL, 'e' },
		{ "service", required_argument, NULL, 's' },	   { "list", no_argument, NULL, 'L' },
		{ "json", no_argument, NULL, 'j' },		   { "stop", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },		   { "no-ring", no_argument, NULL, 'R' },
		{ "nbdkit", no_argument, NULL, 'K' },
		{ 0 },
	};
	struct opts o = { .lanes = 4 };
	const char *stop = NULL;
	bool list = false, json = false;
	int c;
	while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.nbd = optarg; break;
		case 'r': o.readonly = true; break;
		case 'N': o.name = optarg; break;
		case 'p': o.psk = optarg; break;
		case 'c': o.certs = optarg; break;
		case 'v': o.verify_peer = true; break;
		case 'a': o.allow_remote = true; break;
		case 'd': o.detach = true; break;
		case 'R': o.no_ring = o.nbdkit = true; break;
		case 'K': o.nbdkit = true; break;
		case 'l':
			o.lanes = atoi(optarg);
			if (o.lanes < 1 || o.lanes > 8) {
				errf("export: --lanes %s: from 1 to 8", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'e': o.endpoint = optarg; break;
		case 's': o.service = optarg; break;
		case 'L': list = true; break;
		case 'j': json = true; break;
		case 'S': stop = optarg; break;
		case 'h': fputs(export_usage, stdout); return EXIT_OK;
		default: return EXIT_USAGE;
		}
	}
	if (list)
		return optind == argc && !stop ? cmd_list(json) : (errf("export --list takes nothing else"), EXIT_USAGE);
	if (stop)
		return optind == argc ? cmd_stop(stop) : (errf("export --stop NAME takes nothing else"), EXIT_USAGE);
	if (optind != argc - 1 || !o.nbd) {
		errf("export: expected DISK and --nbd unix:PATH|tcp:ADDR:PORT (see --help)");
		return EXIT_USAGE;
	}
	if (o.psk && o.certs) {
		errf("export: --tls-psk and --tls-certificates: one or the other");
		return EXIT_USAGE;
	}
	if (o.verify_peer && !o.certs) {
		errf("export: --tls-verify-peer needs --tls-certificates");
		return EXIT_USAGE;
	}
	o.disk = argv[optind];
	if (o.psk || o.certs) /* TLS: nbdkit's */
		o.nbdkit = true;
	return serve(&o);
}
