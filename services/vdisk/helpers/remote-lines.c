/* remote-lines.c: vdisk-remote-lines URI DIR, the measuring half of
 * vdisk-remote-bench (remote-bench.sh starts qemu-nbd and calls this).
 * Through the engine and nbd-parent.c, as scm-vdisk and the provider read
 * a remote parent:
 *   - the open of a child over URI (connect and handshake included);
 *   - the first read of a cold block: 4 KiB in each of 16 blocks the child
 *     does not hold (each one fetched and copied into the child);
 *   - a stream: the whole disk read in 1 MiB pieces through a read-write
 *     child (every piece fetched and kept), as merge --from-parent does;
 *   - the same bytes read with libnbd alone, the ceiling for the stream.
 * Prints
 *   vdisk remote open: X ms (connect and handshake)
 *   vdisk remote first read (cold 4 KiB): median X ms, max Y ms
 *   vdisk remote stream: X MiB/s into the child, raw NBD reads Y MiB/s (ratio R) */
#include <errno.h>
#include <libnbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nbd-parent.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int die(const char *what, scm_error *e)
{
	char *t = e ? scm_error_text(e) : NULL;
	fprintf(stderr, "vdisk-remote-lines: %s: %s\n", what, t ? t : "failed");
	free(t);
	scm_error_free(e);
	return 1;
}

static int child(const char *uri, const char *path, vhdx **ret, double *ret_open_s)
{
	scm_error *e = NULL;
	unlink(path);
	struct vhdx_create_opts o = { .parent = uri };
	if (vhdx_create(path, &o, &e) < 0)
		return die("create", e);
	double t0 = now();
	if (vhdx_open(path, 0, ret, &e) < 0)
		return die("open", e);
	*ret_open_s = now() - t0;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: vdisk-remote-lines URI DIR\n");
		return 2;
	}
	vhdx_set_remote_opener(nbd_parent_host_opener, NULL);
	char path[4096];
	snprintf(path, sizeof path, "%s/child.vhdx", argv[2]);
	vhdx *h;
	double open_s;
	if (child(argv[1], path, &h, &open_s))
		return 1;
	struct vhdx_info in;
	vhdx_get_info(h, &in);
	uint64_t size = in.virtual_size, bs = in.block_size;
	uint8_t *buf = malloc(1u << 20);
	if (!buf)
		return 1;
	double lat[16];
	for (int i = 0; i < 16; i++) {
		uint64_t off = (size / bs) * (uint64_t)i / 16 * bs + bs / 2;
		double t0 = now();
		if (vhdx_read(h, buf, 4096, off) < 0)
			return die("read", vhdx_error(h));
		lat[i] = now() - t0;
	}
	vhdx_close(h);
	qsort(lat, 16, sizeof *lat, cmp_double);
	printf("vdisk remote open: %.2f ms (connect and handshake)\n", open_s * 1e3);
	printf("vdisk remote first read (cold 4 KiB): median %.2f ms, max %.2f ms\n", lat[8] * 1e3, lat[15] * 1e3);

	if (child(argv[1], path, &h, &open_s))
		return 1;
	double t0 = now();
	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (vhdx_read(h, buf, size - off < (1u << 20) ? size - off : 1u << 20, off) < 0)
			return die("stream", vhdx_error(h));
	if (vhdx_flush(h) < 0)
		return die("flush", vhdx_error(h));
	double stream_s = now() - t0;
	vhdx_close(h);
	unlink(path);

	struct nbd_uri u;
	scm_error *e = NULL;
	if (nbd_uri_parse(argv[1], &u, &e) < 0)
		return die("uri", e);
	struct nbd_parent_opts o;
	nbd_parent_opts_from_env(&o);
	char port[8];
	snprintf(port, sizeof port, "%u", u.port);
	struct nbd_handle *nbd = nbd_create();
	if (!nbd || nbd_set_export_name(nbd, u.export_name) < 0 ||
	    (u.tls && (nbd_set_tls(nbd, LIBNBD_TLS_REQUIRE) < 0 ||
		       (o.tls_psk_file && nbd_set_tls_psk_file(nbd, o.tls_psk_file) < 0) ||
		       (o.tls_username && nbd_set_tls_username(nbd, o.tls_username) < 0) ||
		       (o.tls_certificates && nbd_set_tls_certificates(nbd, o.tls_certificates) < 0))) ||
	    (u.unix_socket ? nbd_connect_unix(nbd, u.socket) : nbd_connect_tcp(nbd, u.host, port)) < 0) {
		fprintf(stderr, "vdisk-remote-lines: %s\n", nbd_get_error());
		return 1;
	}
	t0 = now();
	for (uint64_t off = 0; off < size; off += 1u << 20)
		if (nbd_pread(nbd, buf, size - off < (1u << 20) ? size - off : 1u << 20, off, 0) < 0) {
			fprintf(stderr, "vdisk-remote-lines: %s\n", nbd_get_error());
			return 1;
		}
	double raw_s = now() - t0;
	nbd_close(nbd);
	nbd_uri_clear(&u);
	double mib = (double)size / (1 << 20);
	printf("vdisk remote stream: %.0f MiB/s into the child, raw NBD reads %.0f MiB/s (ratio %.2f)\n",
	       mib / stream_s, mib / raw_s, raw_s / stream_s);
	free(buf);
	return 0;
}
