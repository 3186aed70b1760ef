/* Incremental HTTP/1.x message parser and writer, shared by the listener (requests) and the upstream client (responses). */
#ifndef SY_HTTP1_H
#define SY_HTTP1_H

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum sy_http1_kind { SY_HTTP1_REQUEST, SY_HTTP1_RESPONSE };

enum sy_http1_state {
	SY_HTTP1_HEAD,		/* reading the start line and headers */
	SY_HTTP1_BODY,		/* head parsed, body pending */
	SY_HTTP1_DONE,		/* message complete */
	SY_HTTP1_ERROR		/* malformed; see error, error_status */
};

struct sy_http1_header {
	char *name;		/* as received */
	char *value;		/* leading/trailing blanks trimmed */
};

struct sy_http1_msg {
	enum sy_http1_kind kind;
	enum sy_http1_state state;

	/* Request line (SY_HTTP1_REQUEST). */
	char method[16];
	char *target;		/* request-target as received, e.g. "/v1/models?x=1" */
	/* Status line (SY_HTTP1_RESPONSE). */
	int status;
	char *reason;

	int version_minor;	/* HTTP/1.0 → 0, HTTP/1.1 → 1 */
	struct sy_http1_header *headers;
	size_t nheaders;

	/* Framing, derived from the head. */
	int keep_alive;		/* connection may carry another message */
	int chunked;		/* Transfer-Encoding: chunked */
	int64_t content_length;	/* -1 when absent */
	int until_close;	/* response body ends at EOF */
	int expect_continue;	/* request sent Expect: 100-continue */
	int no_body;		/* set by the caller before parsing the body:
				   response to HEAD, 1xx, 204, 304 */

	/* Errors. */
	const char *error;	/* static message when state == ERROR */
	int error_status;	/* 400, 413, 431, 501, 505 for requests */

	/* Limits, set by sy_http1_init. */
	size_t max_head;	/* bytes of start line + headers */
	size_t max_headers;	/* header count */

	/* Body progress (private to the parser). */
	int64_t body_left;	/* bytes left in the body or current chunk */
	int chunk_state;
	int start_checked;	/* a response's status line was checked */
	uint64_t body_bytes;	/* decoded body bytes delivered so far */
};

/*
 * Initialises m to parse one message of the given kind, with limits on the
 * head's size in bytes and on the number of headers (0 picks 16 KiB and 100).
 */
void sy_http1_init(struct sy_http1_msg *m, enum sy_http1_kind kind,
    size_t max_head, size_t max_headers);

/* Frees what m holds and makes it ready for the next message (same limits). */
void sy_http1_reset(struct sy_http1_msg *m);

/* Frees what m holds. */
void sy_http1_free(struct sy_http1_msg *m);

/*
 * Parses the head (start line and headers) from the front of in, consuming
 * it only once complete.  Returns 1 when the head is complete (state becomes
 * BODY, or DONE when there is no body), 0 when more bytes are needed, -1 on
 * a malformed or oversized head (state ERROR, error and error_status set).
 * Accepts CRLF and bare LF line ends; rejects obs-fold, a request with both
 * Content-Length and Transfer-Encoding, conflicting Content-Lengths, and
 * transfer codings other than chunked.
 */
int sy_http1_parse_head(struct sy_http1_msg *m, struct evbuffer *in);

/*
 * Moves body bytes from in to out, decoding chunked framing (chunk
 * extensions and trailers are read and dropped).  Returns 1 when the body
 * is complete (state DONE), 0 when more bytes are needed, -1 on malformed
 * framing.  Leaves any bytes after the body in in (a pipelined message).
 */
int sy_http1_read_body(struct sy_http1_msg *m, struct evbuffer *in,
    struct evbuffer *out);

/*
 * The body bytes m has delivered plus those already promised: the rest of
 * its Content-Length, or of the chunk being read (declared in its size
 * line).  Lets a reader refuse a body over its limit before it arrives.
 */
uint64_t sy_http1_body_declared(const struct sy_http1_msg *m);

/*
 * Tells the parser that the peer closed.  Returns 1 when that ends the
 * message properly (an until_close body), 0 otherwise (truncated).
 */
int sy_http1_eof(struct sy_http1_msg *m);

/* First header named name (case-insensitive), or NULL. */
const char *sy_http1_header(const struct sy_http1_msg *m, const char *name);

/* Whether the comma-separated header name holds token (case-insensitive). */
int sy_http1_header_has(const struct sy_http1_msg *m, const char *name,
    const char *token);

/* Appends data as one chunk ("<hex>\r\n" data "\r\n"), moving data's bytes. */
void sy_http1_write_chunk(struct evbuffer *out, struct evbuffer *data);

/* Appends the last chunk and empty trailer ("0\r\n\r\n"). */
void sy_http1_write_last_chunk(struct evbuffer *out);

/* Standard reason phrase for a status code ("OK", "Bad Gateway", ...). */
const char *sy_http1_reason(int status);

#endif
