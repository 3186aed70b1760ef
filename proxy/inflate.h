#ifndef SY_INFLATE_H
#define SY_INFLATE_H

#include <stddef.h>

struct evbuffer;

/* What sy_inflate_body found. */
enum sy_inflate_result {
	SY_INFLATE_OK = 0,		/* body now holds the decoded bytes */
	SY_INFLATE_UNSUPPORTED,		/* an encoding other than gzip/deflate */
	SY_INFLATE_TOO_LARGE,		/* decoded size or ratio past the caps */
	SY_INFLATE_CORRUPT		/* not a valid stream of that encoding */
};

/*
 * Decodes a request body sent with Content-Encoding encoding (the header's
 * value; NULL or "identity" leave body as it is).  "gzip", "x-gzip" and
 * "deflate" (zlib, or raw deflate as some clients send) are decoded in
 * place: body's bytes are replaced by the decoded ones when the result is
 * SY_INFLATE_OK, left as they were otherwise.  The decoded size may not pass
 * max_out bytes nor max_ratio times the encoded size (0: no encoding is
 * accepted).  Takes no ownership.
 */
enum sy_inflate_result sy_inflate_body(struct evbuffer *body,
    const char *encoding, size_t max_out, unsigned max_ratio);

#endif
