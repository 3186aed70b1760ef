/* sy-sim: a ring of the last requests a replica received, for tests. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "sim.h"

/* Bodies are kept up to this size; body_bytes tells the whole size. */
#define MAX_BODY (1024 * 1024)

/*
 * One request as received.  buf holds the URI, then the headers as
 * name NUL value NUL pairs, then the body; it is reused by later requests.
 */
struct reqlog_entry {
	uint64_t	 seq;		/* 0: empty */
	double		 time;
	int		 method;
	int		 status;	/* 0 while unanswered */
	const char	*outcome;
	char		*buf;
	size_t		 cap;
	size_t		 heads_off;
	size_t		 heads_len;
	size_t		 body_off;
	size_t		 body_len;	/* kept */
	size_t		 body_bytes;	/* received */
};

struct sim_reqlog {
	struct reqlog_entry	*v;
	unsigned		 cap;
	uint64_t		 last;	/* seq of the newest entry */
};

/* A log of the last cap requests; cap 0 records nothing. */
struct sim_reqlog *
sim_reqlog_new(unsigned cap)
{
	struct sim_reqlog	*log = sim_xcalloc(1, sizeof *log);

	log->cap = cap;
	log->v = sim_xcalloc(cap, sizeof *log->v);
	return (log);
}

/* Frees log. */
void
sim_reqlog_free(struct sim_reqlog *log)
{
	unsigned	i;

	if (log == NULL)
		return;
	for (i = 0; i < log->cap; i++)
		free(log->v[i].buf);
	free(log->v);
	free(log);
}

/* Empties log (sequence numbers go on). */
void
sim_reqlog_clear(struct sim_reqlog *log)
{
	unsigned	i;

	for (i = 0; i < log->cap; i++)
		log->v[i].seq = 0;
}

/*
 * Records method, URI, headers and body of req.  Returns the entry's
 * sequence number (from 1) for sim_reqlog_outcome, or 0 when log keeps
 * nothing.
 */
uint64_t
sim_reqlog_add(struct sim_reqlog *log, struct evhttp_request *req)
{
	struct evkeyvalq	*heads = evhttp_request_get_input_headers(req);
	struct evbuffer		*body = evhttp_request_get_input_buffer(req);
	struct reqlog_entry	*e;
	struct evkeyval		*kv;
	const char		*uri = evhttp_request_get_uri(req);
	size_t			 need, off, n;

	if (log->cap == 0)
		return (0);
	e = &log->v[log->last % log->cap];
	need = strlen(uri) + 1;
	TAILQ_FOREACH(kv, heads, next)
		need += strlen(kv->key) + strlen(kv->value) + 2;
	e->heads_off = strlen(uri) + 1;
	e->heads_len = need - e->heads_off;
	e->body_off = need;
	e->body_bytes = evbuffer_get_length(body);
	e->body_len = e->body_bytes > MAX_BODY ? MAX_BODY : e->body_bytes;
	need += e->body_len;
	if (need > e->cap) {
		e->cap = need + need / 2;
		free(e->buf);
		e->buf = sim_xmalloc(e->cap);
	}
	memcpy(e->buf, uri, e->heads_off);
	off = e->heads_off;
	TAILQ_FOREACH(kv, heads, next) {
		n = strlen(kv->key) + 1;
		memcpy(e->buf + off, kv->key, n);
		off += n;
		n = strlen(kv->value) + 1;
		memcpy(e->buf + off, kv->value, n);
		off += n;
	}
	evbuffer_copyout(body, e->buf + e->body_off, e->body_len);
	e->seq = ++log->last;
	e->time = sim_wall();
	e->method = evhttp_request_get_command(req);
	e->status = 0;
	e->outcome = "pending";
	return (e->seq);
}

/* Sets the status and outcome of entry seq, if log still holds it. */
void
sim_reqlog_outcome(struct sim_reqlog *log, uint64_t seq, int status,
    const char *outcome)
{
	struct reqlog_entry	*e;

	if (seq == 0 || log->cap == 0)
		return;
	e = &log->v[(seq - 1) % log->cap];
	if (e->seq != seq)
		return;
	e->status = status;
	e->outcome = outcome;
}

/* Name of an evhttp method. */
static const char *
method_name(int method)
{
	switch (method) {
	case EVHTTP_REQ_GET:
		return ("GET");
	case EVHTTP_REQ_POST:
		return ("POST");
	case EVHTTP_REQ_HEAD:
		return ("HEAD");
	case EVHTTP_REQ_PUT:
		return ("PUT");
	case EVHTTP_REQ_DELETE:
		return ("DELETE");
	case EVHTTP_REQ_OPTIONS:
		return ("OPTIONS");
	case EVHTTP_REQ_PATCH:
		return ("PATCH");
	default:
		return ("OTHER");
	}
}

/* The headers of e as an object: names lower-cased, repeats joined by ", ". */
static json_t *
entry_headers(const struct reqlog_entry *e)
{
	json_t		*o = json_object(), *old;
	const char	*p = e->buf + e->heads_off, *end = p + e->heads_len;
	const char	*value;
	char		*name, *joined;
	size_t		 i, n;

	while (p < end) {
		n = strlen(p);
		name = sim_xstrdup(p);
		for (i = 0; i < n; i++)
			name[i] = tolower((unsigned char)name[i]);
		value = p + n + 1;
		p = value + strlen(value) + 1;
		if ((old = json_object_get(o, name)) != NULL) {
			n = strlen(json_string_value(old)) + strlen(value) + 3;
			joined = sim_xmalloc(n);
			snprintf(joined, n, "%s, %s", json_string_value(old),
			    value);
			json_object_set_new(o, name, sim_json_text(joined,
			    strlen(joined)));
			free(joined);
		} else
			json_object_set_new(o, name, sim_json_text(value,
			    strlen(value)));
		free(name);
	}
	return (o);
}

/* Entry e as JSON. */
static json_t *
entry_json(const struct reqlog_entry *e)
{
	json_t		*body = NULL;
	const char	*b = e->buf + e->body_off;

	if (e->body_len == 0)
		body = json_null();
	else if (e->body_len < e->body_bytes ||
	    (body = json_loadb(b, e->body_len, JSON_DECODE_ANY, NULL)) == NULL)
		body = sim_json_text(b, e->body_len);
	return (json_pack("{sI sf ss so so so sI si ss}",
	    "seq", (json_int_t)e->seq,
	    "time", e->time,
	    "method", method_name(e->method),
	    "path", sim_json_text(e->buf, strlen(e->buf)),
	    "headers", entry_headers(e),
	    "body", body,
	    "body_bytes", (json_int_t)e->body_bytes,
	    "status", e->status,
	    "outcome", e->outcome));
}

/* The last n entries of log (all when n is 0), oldest first: a new array. */
json_t *
sim_reqlog_json(const struct sim_reqlog *log, unsigned n)
{
	const struct reqlog_entry	*e;
	json_t				*a = json_array();
	uint64_t			 seq, first;

	if (log->cap == 0)
		return (a);
	if (n == 0 || n > log->cap)
		n = log->cap;
	first = log->last > n ? log->last - n + 1 : 1;
	for (seq = first; seq <= log->last; seq++) {
		e = &log->v[(seq - 1) % log->cap];
		if (e->seq == seq)
			json_array_append_new(a, entry_json(e));
	}
	return (a);
}
