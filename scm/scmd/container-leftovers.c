/* container-leftovers.c: what a previous scmd on the same runtime
 * directory left behind when it died without stopping its containers:
 * their processes (found by state file and by cgroup), cgroups, state
 * files and logs. scmd kills and removes them at start, logging each, so
 * nothing runs untracked and no cgroup name is reused by accident. Also
 * the removal of this scmd's own cgroup parent at exit, and the state file
 * each running container has (RUNTIME/containers/NAME.state: PID 1 and its
 * start time), written at launch and removed at exit, which is how the
 * next scmd finds them (moved here from container-hook.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "container-hook.h"
#include "scmd.h"

/* Where a cgroup tree may be: v2 (pure or hybrid) and the v1 controllers
 * the runtime uses. */
static const char *const cg_roots[] = { "/sys/fs/cgroup",	   "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory",
					"/sys/fs/cgroup/pids", "/sys/fs/cgroup/cpu",	 "/sys/fs/cgroup/freezer" };

void cgroup_parent_remove(struct scmd *d)
{
	for (size_t i = 0; i < ELEMENTSOF(cg_roots); i++) {
		char dir[512];
		snprintf(dir, sizeof(dir), "%s/%s", cg_roots[i], d->cgroup_parent);
		(void)rmdir(dir);
	}
}

struct reaplist {
	int fds[256];
	size_t n;
};

/* SIGKILL through a pidfd, kept to wait for the exit. */
static void kill_pid(struct reaplist *rl, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return;
	(void)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
	if (rl->n < ELEMENTSOF(rl->fds))
		rl->fds[rl->n++] = fd;
	else
		close(fd);
}

static void reaplist_wait(struct reaplist *rl, int timeout_ms)
{
	uint64_t deadline = now_usec() + (uint64_t)timeout_ms * 1000;
	for (size_t i = 0; i < rl->n; i++) {
		struct pollfd pfd = { .fd = rl->fds[i], .events = POLLIN };
		uint64_t now = now_usec();
		if (now < deadline)
			(void)poll(&pfd, 1, (int)((deadline - now) / 1000) + 1);
		close(rl->fds[i]);
	}
	rl->n = 0;
}

/* Kills every process of the cgroup dir and its children; rmdir comes
 * later, once they are gone. */
static void write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0) {
		(void)!write(fd, text, strlen(text));
		close(fd);
	}
}

static void cgroup_kill_tree(const char *dir, struct reaplist *rl)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (f) {
		int pid;
		while (fscanf(f, "%d", &pid) == 1)
			kill_pid(rl, pid);
		fclose(f);
	}
	/* a container paused when its scmd died takes SIGKILL once thawed */
	snprintf(path, sizeof(path), "%s/freezer.state", dir);
	(void)write_text(path, "THAWED");
	snprintf(path, sizeof(path), "%s/cgroup.freeze", dir);
	(void)write_text(path, "0");
	DIR *dd = opendir(dir);
	struct dirent *e;
	while (dd && (e = readdir(dd))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		cgroup_kill_tree(path, rl);
	}
	if (dd)
		closedir(dd);
}

static void cgroup_rmdir_tree(const char *dir)
{
	char path[4200];
	DIR *dd = opendir(dir);
	struct dirent *e;
	while (dd && (e = readdir(dd))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		cgroup_rmdir_tree(path);
	}
	if (dd)
		closedir(dd);
	if (rmdir(dir) == 0)
		log_notice("removed cgroup %s left by a previous scmd", dir);
	else if (errno != ENOENT)
		log_warning("cannot remove cgroup %s left by a previous scmd: %m", dir);
}

/* A previous scmd on this runtime directory died without stopping its
 * containers: they run untracked, holding cgroups and state. Nothing can
 * reach them any more (their endpoints died with it), so they are killed
 * and everything they held is removed, each logged. Runs at start-up,
 * before any client is served, so waiting here delays no one. */
void scmd_ctr_cleanup_leftovers(struct scmd *d, const char *dir)
{
	struct reaplist rl = { .n = 0 };
	char prev[128] = "", path[4200];
	snprintf(path, sizeof(path), "%s/instance", dir);
	FILE *f = fopen(path, "re");
	if (f) {
		if (!fgets(prev, sizeof(prev), f))
			prev[0] = 0;
		prev[strcspn(prev, "\n")] = 0;
		fclose(f);
	}
	DIR *dd = opendir(dir);
	struct dirent *e;
	while (dd && (e = readdir(dd))) {
		size_t l = strlen(e->d_name);
		if (l > 6 && strcmp(e->d_name + l - 6, ".state") == 0) {
			char nm[256];
			snprintf(nm, sizeof(nm), "%.*s", (int)(l - 6 < 255 ? l - 6 : 255), e->d_name);
			struct scmd_ctr *own = ctr_find(d, nm);
			if (own && !own->exited)
				continue; /* adopted from systemd's fd store: ours */
			int pid = 0;
			unsigned long long st = 0;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			f = fopen(path, "re");
			if (f) {
				if (fscanf(f, "pid=%d starttime=%llu", &pid, &st) != 2)
					pid = 0;
				fclose(f);
			}
			/* The start time tells the container's PID 1 from a
			 * process that got its pid later. */
			if (pid > 1 && st && proc_starttime(pid) == st) {
				log_warning("container '%.*s' (pid %d) was left running by a previous scmd: killing it",
					(int)(l - 6), e->d_name, pid);
				kill_pid(&rl, pid);
			} else
				log_notice("removing the stale state of container '%.*s'", (int)(l - 6), e->d_name);
			unlink(path);
			/* and its log files, which no record leads to any more */
			_cleanup_free_ char *logs = NULL, *cname = strndup(e->d_name, l - 6);
			if (cname && asprintf(&logs, "%s/logs", d->state_dir) >= 0)
				ctr_logs_unlink(logs, cname);
		}
	}
	if (dd)
		closedir(dd);
	/* a restore from the fd store keeps its predecessor's cgroups */
	if (prev[0] && strcmp(prev, d->instance) == 0)
		prev[0] = 0;
	if (prev[0] && name_valid(prev, 64, NAME_FILE)) {
		for (size_t i = 0; i < ELEMENTSOF(cg_roots); i++) {
			snprintf(path, sizeof(path), "%s/scm/%s", cg_roots[i], prev);
			if (access(path, F_OK) == 0) {
				log_warning("cgroup %s was left by a previous scmd: killing what runs in it", path);
				cgroup_kill_tree(path, &rl);
			}
		}
	}
	reaplist_wait(&rl, 5000);
	if (prev[0] && name_valid(prev, 64, NAME_FILE))
		for (size_t i = 0; i < ELEMENTSOF(cg_roots); i++) {
			snprintf(path, sizeof(path), "%s/scm/%s", cg_roots[i], prev);
			if (access(path, F_OK) == 0)
				cgroup_rmdir_tree(path);
		}
}

/* The record the next scmd reads if this one dies without cleaning up:
 * PID 1 and its start time (so a reused pid is never killed). */
unsigned long long proc_starttime(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = strrchr(buf, ')'); /* comm may hold spaces */
	unsigned long long st = 0;
	/* fields after comm: state(3) ... starttime(22) */
	for (int field = 3; p && field <= 22; field++) {
		p = strchr(p + 1, ' ');
		if (p && field == 22)
			st = strtoull(p + 1, NULL, 10);
	}
	return st;
}

void ctr_state_write(struct scmd *d, struct scmd_ctr *t)
{
	if (asprintf(&t->state_path, "%s/containers/%s.state", d->runtime_dir, t->name) < 0) {
		t->state_path = NULL;
		return;
	}
	FILE *f = fopen(t->state_path, "we");
	if (!f)
		return;
	fprintf(f, "pid=%d\nstarttime=%llu\ninstance=%s\n", (int)container_pid(t->c),
		proc_starttime(container_pid(t->c)), d->instance);
	fclose(f);
}

void ctr_state_remove(struct scmd_ctr *t)
{
	if (t->state_path)
		unlink(t->state_path);
}
