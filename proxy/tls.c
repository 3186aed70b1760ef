/* TLS on the client listener: the "tls" config object, and the server context it builds at load (certificate and key checked, ALPN http/1.1, optional client certificates). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "confrow.h"
#include "tls.h"
#include "util.h"

/* The one protocol offered, in ALPN's wire form. */
static const unsigned char alpn_http11[] = "\x08http/1.1";

/* What sessions are resumed for: this listener. */
static const unsigned char session_context[] = "switchyard";

/* "min_version": the lowest TLS version a client may speak. */
static const char *const version_words[] = { "1.2", "1.3", NULL };
static const int versions[] = { TLS1_2_VERSION, TLS1_3_VERSION };

/* Selects http/1.1 when the client offers it; a client offering only others is refused. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
    const unsigned char *in, unsigned inlen, void *arg)
{
	unsigned char *sel;

	if (SSL_select_next_proto(&sel, outlen, alpn_http11,
	    sizeof alpn_http11 - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* The first OpenSSL error's reason ("no start line"), or dflt; clears the queue. */
static const char *
ssl_reason(const char *dflt)
{
	unsigned long e = ERR_peek_error();
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r != NULL ? r : dflt;
}

/* Writes t as "Jan  1 00:00:00 2030 GMT" into buf (len bytes). */
static void
time_text(const ASN1_TIME *t, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	if (b != NULL && ASN1_TIME_print(b, t))
		n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

/*
 * Whether file (key key of path) can be read; reports why not.  Returns 0
 * or -1.
 */
static int
readable(struct sy_conf *c, const char *path, const char *key,
    const char *file)
{
	char p[SY_CONF_PATHLEN];
	FILE *f;

	if ((f = fopen(file, "r")) != NULL) {
		fclose(f);
		return 0;
	}
	sy_conf_fail(c, sy_conf_path_key(p, path, key), "%s: cannot read: %s",
	    file, strerror(errno));
	return -1;
}

/* Loads the certificate chain of t into ctx and checks its dates; 0 or -1. */
static int
load_cert(struct sy_conf *c, const char *path, struct sy_tls_conf *t,
    SSL_CTX *ctx)
{
	char p[SY_CONF_PATHLEN], when[64];
	X509 *x;

	sy_conf_path_key(p, path, "cert_file");
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, t->cert_file) != 1) {
		sy_conf_fail(c, p, "%s: not a PEM certificate: %s",
		    t->cert_file, ssl_reason("unreadable"));
		return -1;
	}
	x = SSL_CTX_get0_certificate(ctx);
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
		time_text(X509_get0_notAfter(x), when, sizeof when);
		sy_conf_fail(c, p, "%s: the certificate expired on %s",
		    t->cert_file, when);
		return -1;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
		time_text(X509_get0_notBefore(x), when, sizeof when);
		sy_conf_fail(c, p, "%s: the certificate is not valid before %s",
		    t->cert_file, when);
		return -1;
	}
	return 0;
}

/* Loads the private key of t into ctx and checks that it is the certificate's; 0 or -1. */
static int
load_key(struct sy_conf *c, const char *path, struct sy_tls_conf *t,
    SSL_CTX *ctx)
{
	char p[SY_CONF_PATHLEN];
	EVP_PKEY *key = NULL;
	BIO *b;
	int r = -1;

	sy_conf_path_key(p, path, "key_file");
	ERR_clear_error();
	if ((b = BIO_new_file(t->key_file, "r")) != NULL)
		key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (key == NULL)
		sy_conf_fail(c, p, "%s: not a PEM private key: %s", t->key_file,
		    ssl_reason("unreadable"));
	else if (X509_check_private_key(SSL_CTX_get0_certificate(ctx),
	    key) != 1)
		sy_conf_fail(c, p, "%s: the key does not match the certificate "
		    "in %s", t->key_file, t->cert_file);
	else if (SSL_CTX_use_PrivateKey(ctx, key) != 1)
		sy_conf_fail(c, p, "%s: the key cannot be used: %s",
		    t->key_file, ssl_reason("unknown reason"));
	else
		r = 0;
	EVP_PKEY_free(key);
	ERR_clear_error();
	return r;
}

/* Asks every client for a certificate signed by a CA of t's client_ca_file; 0 or -1. */
static int
load_client_ca(struct sy_conf *c, const char *path, struct sy_tls_conf *t,
    SSL_CTX *ctx)
{
	char p[SY_CONF_PATHLEN];
	STACK_OF(X509_NAME) *names;

	sy_conf_path_key(p, path, "client_ca_file");
	ERR_clear_error();
	if (SSL_CTX_load_verify_locations(ctx, t->client_ca_file, NULL) != 1 ||
	    (names = SSL_load_client_CA_file(t->client_ca_file)) == NULL) {
		sy_conf_fail(c, p, "%s: no PEM CA certificate: %s",
		    t->client_ca_file, ssl_reason("none found"));
		return -1;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

/* TLS is on when the object is given; then the files must be there, valid and matching. */
static void
tls_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	struct sy_tls_conf *t = base;
	char p[SY_CONF_PATHLEN];
	SSL_CTX *ctx;
	int bad = 0;

	if (!(t->enabled = obj != NULL))
		return;
	if (t->cert_file == NULL && !sy_conf_failed(c,
	    sy_conf_path_key(p, path, "cert_file")))
		sy_conf_fail(c, p, "required key is missing");
	if (t->key_file == NULL && !sy_conf_failed(c,
	    sy_conf_path_key(p, path, "key_file")))
		sy_conf_fail(c, p, "required key is missing");
	if (t->cert_file == NULL || t->key_file == NULL)
		return;
	bad |= readable(c, path, "cert_file", t->cert_file);
	bad |= readable(c, path, "key_file", t->key_file);
	if (t->client_ca_file != NULL)
		bad |= readable(c, path, "client_ca_file", t->client_ca_file);
	if (bad)
		return;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		sy_conf_fail(c, path, "cannot make a TLS context: %s",
		    ssl_reason("out of memory"));
		return;
	}
	SSL_CTX_set_min_proto_version(ctx, versions[t->min_version]);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	/* Resumed sessions need it, client certificates or not. */
	SSL_CTX_set_session_id_context(ctx, session_context,
	    sizeof session_context - 1);
	if (load_cert(c, path, t, ctx) != 0 || load_key(c, path, t, ctx) != 0 ||
	    (t->client_ca_file != NULL &&
	    load_client_ca(c, path, t, ctx) != 0)) {
		SSL_CTX_free(ctx);
		return;
	}
	t->ctx = ctx;
}

#define AT(field) offsetof(struct sy_tls_conf, field)

static const struct sy_conf_row tls_rows[] = {
	{ .name = "cert_file", .type = SY_CONF_STRING, .offset = AT(cert_file),
	  .doc = "PEM file of the certificate, then its chain" },
	{ .name = "key_file", .type = SY_CONF_STRING, .offset = AT(key_file),
	  .doc = "PEM file of the certificate's private key" },
	{ .name = "client_ca_file", .type = SY_CONF_STRING,
	  .offset = AT(client_ca_file),
	  .doc = "PEM file of CAs; given: every client needs a certificate "
	  "signed by one" },
	{ .name = "min_version", .type = SY_CONF_WORD,
	  .offset = AT(min_version), .words = version_words,
	  .what = "TLS version",
	  .doc = "lowest TLS version accepted: \"1.2\" or \"1.3\"" },
	{ .name = NULL }
};

const struct sy_conf_table sy_tls_table = {
	.path = "tls",
	.rows = tls_rows,
	.size = sizeof(struct sy_tls_conf),
	.check = tls_check
};

void
sy_tls_conf_clear(struct sy_tls_conf *t)
{
	if (t->ctx != NULL)
		SSL_CTX_free(t->ctx);
	t->ctx = NULL;
}
