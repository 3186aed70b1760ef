/* TLS on the client listener: the top-level "tls" object and the server context built from it at load. */
#ifndef SY_TLS_H
#define SY_TLS_H

struct ssl_ctx_st;

/* The top-level "tls" object (off when it is not given). */
struct sy_tls_conf {
	int enabled;			/* a "tls" object is given */
	char *cert_file;		/* PEM: the certificate, then its chain */
	char *key_file;			/* PEM: its private key */
	char *client_ca_file;		/* PEM: CAs client certificates must be
					   signed by; NULL: none asked for */
	unsigned min_version;		/* index in "1.2", "1.3" */
	struct ssl_ctx_st *ctx;		/* built by the check once the files
					   are read and valid; NULL when off */
};

/* Its rows (proxy/tls.c). */
struct sy_conf_table;
extern const struct sy_conf_table sy_tls_table;

/* Frees what the load built beside the rows (the context), not the rows. */
void sy_tls_conf_clear(struct sy_tls_conf *t);

#endif
