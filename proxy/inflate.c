/*
 * Request bodies sent compressed (Content-Encoding: gzip or deflate):
 * decoded before anything reads them, under a size and a ratio cap so that a
 * small body cannot expand into gigabytes.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <zlib.h>

#include "inflate.h"

#define OUT_STEP 16384

/* Whether s, trimmed of spaces, is the token tok (case-insensitive). */
static int
token_is(const char *s, const char *tok)
{
	size_t n = strlen(tok);

	while (*s == ' ' || *s == '\t')
		s++;
	if (strncasecmp(s, tok, n) != 0)
		return 0;
	for (s += n; *s == ' ' || *s == '\t'; s++)
		;
	return *s == '\0';
}

/* Inflates in[0..len) with zlib's windowBits wbits into out. */
static enum sy_inflate_result
run(const unsigned char *in, size_t len, int wbits, struct evbuffer *out,
    size_t cap)
{
	z_stream z;
	unsigned char buf[OUT_STEP];
	size_t total = 0;
	int rc;

	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, wbits) != Z_OK)
		return SY_INFLATE_CORRUPT;
	z.next_in = (unsigned char *)in;
	z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
	do {
		z.next_out = buf;
		z.avail_out = sizeof buf;
		rc = inflate(&z, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END) {
			inflateEnd(&z);
			return SY_INFLATE_CORRUPT;
		}
		total += sizeof buf - z.avail_out;
		if (total > cap) {
			inflateEnd(&z);
			return SY_INFLATE_TOO_LARGE;
		}
		evbuffer_add(out, buf, sizeof buf - z.avail_out);
		/* Input used up before the stream's end: it was cut. */
		if (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
			inflateEnd(&z);
			return SY_INFLATE_CORRUPT;
		}
	} while (rc != Z_STREAM_END);
	/* Bytes after the end of the stream are not part of any valid body. */
	rc = z.avail_in == 0 ? 0 : -1;
	inflateEnd(&z);
	return rc == 0 ? SY_INFLATE_OK : SY_INFLATE_CORRUPT;
}

enum sy_inflate_result
sy_inflate_body(struct evbuffer *body, const char *encoding, size_t max_out,
    unsigned max_ratio)
{
	size_t len = evbuffer_get_length(body), cap;
	const unsigned char *in;
	struct evbuffer *out;
	enum sy_inflate_result r;
	int wbits;

	if (encoding == NULL || token_is(encoding, "identity"))
		return SY_INFLATE_OK;
	if (token_is(encoding, "gzip") || token_is(encoding, "x-gzip"))
		wbits = 16 + MAX_WBITS;
	else if (token_is(encoding, "deflate"))
		wbits = MAX_WBITS;
	else
		return SY_INFLATE_UNSUPPORTED;
	if (max_ratio == 0)
		return SY_INFLATE_UNSUPPORTED;
	cap = max_out;
	if (len < SIZE_MAX / max_ratio && len * max_ratio < cap)
		cap = len * max_ratio;
	in = evbuffer_pullup(body, -1);
	if ((out = evbuffer_new()) == NULL)
		return SY_INFLATE_TOO_LARGE;
	r = run(in, len, wbits, out, cap);
	/* "deflate" is zlib-wrapped by the RFC; some clients send it raw. */
	if (r == SY_INFLATE_CORRUPT && wbits == MAX_WBITS) {
		evbuffer_drain(out, evbuffer_get_length(out));
		r = run(in, len, -MAX_WBITS, out, cap);
	}
	if (r == SY_INFLATE_OK) {
		evbuffer_drain(body, len);
		evbuffer_add_buffer(body, out);
	}
	evbuffer_free(out);
	return r;
}
