/* tls_cert.c: the certificate X509Vnc viewers see. Either PEM files the
 * configuration names (read by fd, regular files only, at most 64 KiB),
 * or a self-signed one made up when the proxy starts: ECDSA P-256, its
 * subject naming the desktop, valid for localhost, 127.0.0.1 and ::1,
 * marked as its own CA so viewers can pin it as their trust anchor
 * (gtk-vnc's ~/.pki/CA/cacert.pem, TigerVNC's X509CA). Its key never
 * leaves the proxy's memory; viewers check the certificate against the
 * SHA-256 fingerprint `scmctl desktop show` prints. */
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scm/macro.h"
#include "tls.h"

#define PEM_MAX (64 * 1024)

static int read_pem(const char *path, gnutls_datum_t *ret, scm_error **ret_err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	if (fd < 0)
		return scm_fail(ret_err, -errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > PEM_MAX)
		return scm_fail(ret_err, GFX_E_INVALID, "%s: not a regular file of at most 64 KiB", path);
	unsigned char *buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return scm_fail(ret_err, -ENOMEM, "out of memory");
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	if (n != st.st_size) {
		free(buf);
		return scm_fail(ret_err, -EIO, "%s: short read", path);
	}
	buf[n] = 0;
	ret->data = buf;
	ret->size = (unsigned)n;
	return 0;
}

static int finish(gnutls_x509_crt_t crt, struct gfx_tls_cert *c, scm_error **ret_err)
{
	unsigned char fp[32];
	size_t fl = sizeof(fp);
	gnutls_datum_t pem = { 0 };
	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &fl) < 0 || fl != 32 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &pem) < 0)
		return scm_fail(ret_err, -EIO, "cannot export the certificate");
	for (size_t i = 0; i < 32; i++)
		snprintf(c->fingerprint + 2 * i, 3, "%02x", fp[i]);
	c->pem = strndup((const char *)pem.data, pem.size);
	gnutls_free(pem.data);
	return c->pem ? 0 : scm_fail(ret_err, -ENOMEM, "out of memory");
}

void gfx_tls_cert_done(struct gfx_tls_cert *c)
{
	if (c->cred)
		gnutls_certificate_free_credentials(c->cred);
	free(c->pem);
	memset(c, 0, sizeof(*c));
}

int gfx_tls_cert_load(const char *cert_file, const char *key_file, struct gfx_tls_cert *ret, scm_error **ret_err)
{
	gnutls_datum_t cert = { 0 }, key = { 0 };
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_x509_crt_t crt = NULL;
	int r = read_pem(cert_file, &cert, ret_err);
	if (r == 0)
		r = read_pem(key_file, &key, ret_err);
	if (r == 0 && gnutls_certificate_allocate_credentials(&cred) < 0)
		r = scm_fail(ret_err, -ENOMEM, "out of memory");
	int g;
	if (r == 0 && (g = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
		r = scm_fail(ret_err, GFX_E_INVALID, "%s, %s: %s", cert_file, key_file, gnutls_strerror(g));
	if (r == 0 && (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_import(crt, &cert, GNUTLS_X509_FMT_PEM) < 0))
		r = scm_fail(ret_err, GFX_E_INVALID, "%s: no PEM certificate", cert_file);
	struct gfx_tls_cert c = { .cred = cred };
	if (r == 0)
		r = finish(crt, &c, ret_err);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key.data)
		explicit_bzero(key.data, key.size);
	free(cert.data), free(key.data);
	if (r != 0) {
		gfx_tls_cert_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

int gfx_tls_cert_make(const char *name, struct gfx_tls_cert *ret, scm_error **ret_err)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_certificate_credentials_t cred = NULL;
	unsigned char serial[16];
	static const unsigned char lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 };
	char cn[128];
	snprintf(cn, sizeof(cn), "scm desktop %s", name && *name ? name : "");
	time_t now = time(NULL);
	if (getrandom(serial, sizeof(serial), 0) != sizeof(serial))
		return scm_fail(ret_err, -EIO, "getrandom failed");
	serial[0] &= 0x7f; /* a positive serial */
	int g = 0;
	if ((g = gnutls_x509_privkey_init(&key)) < 0 ||
	    (g = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
					      0)) < 0 ||
	    (g = gnutls_x509_crt_init(&crt)) < 0 || (g = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (g = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (g = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (g = gnutls_x509_crt_set_expiration_time(crt, now + 365 * 24 * 3600)) < 0 ||
	    (g = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn))) < 0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_APPEND)) <
		    0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, lo4, 4, GNUTLS_FSAN_APPEND)) < 0 ||
	    (g = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, lo6, 16, GNUTLS_FSAN_APPEND)) < 0 ||
	    (g = gnutls_x509_crt_set_basic_constraints(crt, 1, 0)) < 0 ||
	    (g = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_CERT_SIGN)) < 0 ||
	    (g = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (g = gnutls_x509_crt_set_key(crt, key)) < 0 || (g = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
	    (g = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
	    (g = gnutls_certificate_set_x509_key(cred, &crt, 1, key)) < 0) {
		int r = scm_fail(ret_err, -EIO, "making the desktop's certificate: %s", gnutls_strerror(g));
		if (cred)
			gnutls_certificate_free_credentials(cred);
		if (crt)
			gnutls_x509_crt_deinit(crt);
		if (key)
			gnutls_x509_privkey_deinit(key);
		return r;
	}
	struct gfx_tls_cert c = { .cred = cred };
	int r = finish(crt, &c, ret_err);
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key);
	if (r != 0) {
		gfx_tls_cert_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}
