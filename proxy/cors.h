/* CORS: which browser origins may call the gateway, the preflight answer and the headers every answer to them carries. */
#ifndef SY_CORS_H
#define SY_CORS_H

#include <stddef.h>

/* The top-level "cors" object (off when it is not given). */
struct sy_cors {
	int enabled;			/* a "cors" object is given */
	char **origins;			/* allowed origins; "*": any */
	size_t norigins;
	char **headers;			/* request headers allowed; none: those
					   the preflight asks for */
	size_t nheaders;
	unsigned max_age;		/* seconds a preflight is kept */
};

/* Its rows (proxy/cors.c). */
struct sy_conf_table;
extern const struct sy_conf_table sy_cors_table;

/*
 * The value of Access-Control-Allow-Origin for a request from origin (the
 * client's Origin header, may be NULL): "*" or origin itself when c
 * allows it, else NULL (no CORS headers: off, no Origin, or not allowed).
 */
const char *sy_cors_allow(const struct sy_cors *c, const char *origin);

/*
 * Writes the header lines of an answer to a request from origin into buf
 * (len bytes; "" when sy_cors_allow gives NULL or they do not fit):
 * Access-Control-Allow-Origin, Vary and Access-Control-Expose-Headers.
 * Returns the end of what it wrote (the '\0').
 */
char *sy_cors_headers(const struct sy_cors *c, const char *origin, char *buf,
    size_t len);

/*
 * The header lines a preflight (OPTIONS) adds to those of
 * sy_cors_headers when it asks for the request headers asked (its
 * Access-Control-Request-Headers, may be NULL):
 * Access-Control-Allow-Methods, -Allow-Headers and -Max-Age, malloc'd
 * (the caller frees); NULL when origin is not allowed.
 */
char *sy_cors_preflight(const struct sy_cors *c, const char *origin,
    const char *asked);

#endif
