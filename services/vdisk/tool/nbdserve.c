/* nbdserve.c: scm-vdisk export's own NBD server for plain connections
 * (docs/vdisk.md "NBD export"). This process is a client of the vdisk
 * provider with the caller's grant: it opens the disk, accepts on the
 * export's socket, answers each connection's newstyle fixed handshake
 * (nbd_hs_option, services/vdisk/nbdproto.c), and once the client chose
 * the export (GO or EXPORT_NAME) hands the connected socket to the
 * provider (nbd_serve), which serves the transmission phase on its own
 * threads. No process but the provider is in a request's path. TLS
 * exports go through nbdkit (export.c). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nbdproto.h"
#include "scm/vdisk-client.h"
#include "tool.h"

#define HANDSHAKES_MAX 16    /* at once; more wait in the listen queue */
#define HANDSHAKE_TIMEOUT_S 30 /* a client silent this long in the handshake is dropped */
#define OPTIONS_MAX 64       /* options a connection may send */

/* What a connection may do, as the provider said (nbd_serve's results):
 * the handshake advertises exactly this. */
struct allow {
	bool write, trim, zero, flush, extents;
};

struct srv {
	scm_channel *ch;
	pthread_mutex_t mu; /* the channel: one call at a time; allow */
	struct allow allow; /* the provider's last word (the probe, then each connection) */
	uint64_t handle;
	const char *name;
	uint64_t size;
	uint32_t minb, prefb;
	bool readonly;
	atomic_uint handshakes;
};

struct conn {
	struct srv *s;
	int fd;
};

static bool send_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
	}
	return true;
}

static bool recv_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t k = recv(fd, p, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return false;
		p = (uint8_t *)p + k;
		n -= (size_t)k;
	}
	return true;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void timeouts(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* The transmission flags for what a connection may do: a feature the
 * grant refuses is not advertised (the NBD protocol: "the server MUST NOT
 * set the flag for features it does not support"), so qemu or nbdcopy see
 * a read-only export, or one without trim, instead of failing on EPERM.
 * FUA is a flush of the handle, so it needs flush too. */
static uint16_t tflags_of(const struct allow *a)
{
	uint16_t f = NBD_FLAG_HAS_FLAGS | NBD_FLAG_CAN_MULTI_CONN;
	f |= a->write ? 0 : NBD_FLAG_READ_ONLY;
	f |= a->flush ? NBD_FLAG_SEND_FLUSH : 0;
	f |= a->write && a->flush ? NBD_FLAG_SEND_FUA : 0;
	f |= a->trim ? NBD_FLAG_SEND_TRIM : 0;
	f |= a->zero ? NBD_FLAG_SEND_WRITE_ZEROES : 0;
	return f;
}

/* nbd_serve under the channel's lock; what the connection may do goes to
 * *ret and becomes what the next handshakes advertise. */
static int serve(struct srv *s, int fd, bool readonly, bool structured, uint64_t meta_id, struct allow *ret,
		 scm_error **e)
{
	struct allow a = { 0 };
	pthread_mutex_lock(&s->mu);
	int r = scm_vdisk_nbd_serve(s->ch, s->handle, fd, readonly, structured, meta_id, &a.write, &a.trim, &a.zero,
				    &a.flush, &a.extents, e);
	if (!r)
		s->allow = *ret = a;
	pthread_mutex_unlock(&s->mu);
	return r;
}

/* The handshake; true when the provider took the connection. */
static bool handshake(struct srv *s, int fd)
{
	struct nbd_hs hs = { .name = s->name, .size = s->size, .min_block = s->minb, .pref_block = s->prefb,
			     .max_block = 4u << 20 };
	pthread_mutex_lock(&s->mu);
	struct allow a = s->allow;
	pthread_mutex_unlock(&s->mu);
	hs.tflags = tflags_of(&a);
	hs.no_meta = !a.extents;
	nbd_hs_greeting(&hs);
	uint8_t cf[4];
	bool no_zeroes;
	if (!send_all(fd, hs.out, hs.out_len) || !recv_all(fd, cf, 4) || !nbd_hs_client_flags(be32(cf), &no_zeroes))
		return false;
	static _Thread_local uint8_t data[NBD_OPT_DATA_MAX];
	for (int i = 0; i < OPTIONS_MAX; i++) {
		uint8_t h[16];
		if (!recv_all(fd, h, sizeof h) || be32(h) != (uint32_t)(NBD_IHAVEOPT >> 32) ||
		    be32(h + 4) != (uint32_t)NBD_IHAVEOPT)
			return false;
		uint32_t opt = be32(h + 8), len = be32(h + 12);
		if (len > NBD_OPT_DATA_MAX || !recv_all(fd, data, len))
			return false;
		enum nbd_hs_step st = nbd_hs_option(&hs, opt, data, len);
		if (st == NBD_HS_MORE || st == NBD_HS_CLOSE) {
			if (!send_all(fd, hs.out, hs.out_len) || st == NBD_HS_CLOSE)
				return false;
			continue;
		}
		/* chosen: the provider serves it from the next byte on, and
		 * says what it may do before GO's INFO tells the client */
		timeouts(fd, 0);
		scm_error *e = NULL;
		int r = serve(s, fd, s->readonly, hs.structured, hs.meta ? NBD_META_ID : 0, &a, &e);
		if (r) {
			char *t = scm_error_text(e);
			fprintf(stderr, "scm-vdisk: export: the provider did not take a connection: %s\n",
				t ? t : "?");
			if (st == NBD_HS_GO) {
				hs.out_len = 0;
				nbd_hs_reply(&hs, hs.go_opt, NBD_REP_ERR_SHUTDOWN, t ? t : "", t ? (uint32_t)strnlen(t, 256) : 0);
				send_all(fd, hs.out, hs.out_len);
			}
			free(t);
			scm_error_free(e);
			return false;
		}
		hs.tflags = tflags_of(&a);
		if (st == NBD_HS_GO) { /* its INFO again, with these flags (pure: the same replies) */
			nbd_hs_option(&hs, opt, data, len);
			nbd_hs_reply(&hs, hs.go_opt, NBD_REP_ACK, NULL, 0);
		} else {
			nbd_hs_export_name_reply(&hs, no_zeroes);
		}
		send_all(fd, hs.out, hs.out_len);
		return true;
	}
	return false;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	timeouts(c->fd, HANDSHAKE_TIMEOUT_S);
	handshake(c->s, c->fd);
	close(c->fd); /* the provider has its own */
	atomic_fetch_sub(&c->s->handshakes, 1);
	free(c);
	return NULL;
}

static int stop_pipe[2] = { -1, -1 };
static void on_signal(int sig)
{
	(void)!write(stop_pipe[1], "x", 1);
}

/* Does the provider take a connection at all (the grant allows nbd_serve
 * and puts no parameter rules on the methods a connection does), and what
 * may one do? A connection that ends at once, to learn both before
 * anything is served: the first handshakes advertise what it said. */
static int probe(struct srv *s, scm_error **e)
{
	int sp[2];
	struct allow a;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	close(sp[1]);
	int r = serve(s, sp[0], s->readonly, true, NBD_META_ID, &a, e);
	close(sp[0]);
	return r;
}

int export_serve_here(const char *endpoint, const char *service, const char *disk, const char *name,
		      bool readonly, bool foreground, int lfd, int rfd)
{
	if (foreground)
		prctl(PR_SET_PDEATHSIG, SIGTERM);
	struct srv s = { .name = name, .readonly = readonly };
	pthread_mutex_init(&s.mu, NULL);
	scm_error *e = NULL;
	int fd = -1;
	uint64_t bsz = 0, sec = 0;
	bool oro = false;
	json_object *info = NULL;
	int r = endpoint ? scm_connect_at(endpoint, service ? service : "vdisk", &s.ch, &e)
			 : scm_connect(service ? service : "vdisk", &s.ch, &e);
	if (!r) {
		scm_channel_set_timeout(s.ch, SCM_TIMEOUT_INFINITE);
		r = scm_vdisk_open(s.ch, disk, readonly, false, &s.handle, &fd, &bsz, &s.size, &sec, &oro, &e);
	}
	if (fd >= 0)
		close(fd); /* the data buffer: no data goes through this process */
	if (!r)
		r = scm_vdisk_info(s.ch, s.handle, &info, &e);
	if (!r)
		r = probe(&s, &e);
	if (r) {
		char *t = scm_error_text(e);
		fprintf(stderr, "scm-vdisk: export %s: nothing is served: %s\n", disk, t ? t : strerror(r < 0 ? -r : EIO));
		free(t);
		scm_error_free(e);
		json_object_put(info);
		scm_channel_free(s.ch);
		return EXIT_FAIL;
	}
	json_object *ps = NULL;
	uint64_t phys = json_object_object_get_ex(info, "physical_sector_size", &ps) ? json_object_get_uint64(ps) : 0;
	json_object_put(info);
	s.minb = sec ? (uint32_t)sec : 512;
	s.prefb = phys > s.minb && phys <= (1u << 20) ? (uint32_t)phys : 4096 > s.minb ? 4096 : s.minb;
	if (pipe2(stop_pipe, O_CLOEXEC) < 0)
		return EXIT_FAIL;
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	char ready[32];
	int n = snprintf(ready, sizeof ready, "ready %d\n", (int)getpid());
	(void)!write(rfd, ready, (size_t)n);
	close(rfd);
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	for (;;) {
		struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = stop_pipe[0], .events = POLLIN } };
		if (atomic_load(&s.handshakes) >= HANDSHAKES_MAX)
			p[0].fd = -1; /* the listen queue holds them meanwhile */
		if (poll(p, 2, p[0].fd < 0 ? 100 : -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		struct conn *c = malloc(sizeof *c);
		pthread_t th;
		if (c) {
			*c = (struct conn){ &s, cfd };
			atomic_fetch_add(&s.handshakes, 1);
			if (pthread_create(&th, &at, conn_main, c) == 0)
				continue;
			atomic_fetch_sub(&s.handshakes, 1);
			free(c);
		}
		close(cfd);
	}
	close(lfd);
	/* the close flushes; the provider ends the connections it serves for
	 * the handle after answering their requests in flight */
	pthread_mutex_lock(&s.mu);
	r = scm_vdisk_close(s.ch, s.handle, &e);
	pthread_mutex_unlock(&s.mu);
	if (r) {
		char *t = scm_error_text(e);
		fprintf(stderr, "scm-vdisk: export %s: close: %s\n", disk, t ? t : "?");
		free(t);
		scm_error_free(e);
	}
	/* a handshake still running holds s: leave without freeing it */
	return r ? EXIT_FAIL : EXIT_OK;
}
