/* CORS: the "cors" config object, the preflight answer and the headers answers to allowed browser origins carry. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "confrow.h"
#include "cors.h"
#include "util.h"

/* The headers a browser's script may read from an answer. */
#define EXPOSED "X-Request-Id, request-id, X-Switchyard-Model, " \
	"X-Switchyard-Cache, X-Switchyard-Token-Count, Retry-After"

/* CORS is on when the object is given, and then names its origins. */
static void
cors_check(struct sy_conf *c, const json_t *obj, const char *path,
    void *base)
{
	struct sy_cors *cors = base;
	char p[SY_CONF_PATHLEN];

	if ((cors->enabled = obj != NULL) && cors->norigins == 0)
		sy_conf_fail(c, sy_conf_path_key(p, path, "origins"), "required "
		    "key is missing");
}

#define AT(field) offsetof(struct sy_cors, field)

static const struct sy_conf_row cors_rows[] = {
	{ .name = "origins", .type = SY_CONF_STRINGS, .offset = AT(origins),
	  .count = AT(norigins), .what = "origin",
	  .doc = "origins allowed (\"https://app.example.com\"); \"*\": any" },
	{ .name = "headers", .type = SY_CONF_STRINGS, .offset = AT(headers),
	  .count = AT(nheaders), .what = "header name",
	  .doc = "request headers allowed; none: those a preflight asks for" },
	{ .name = "max_age", .type = SY_CONF_UINT, .offset = AT(max_age),
	  .def.u = 600, .max = 86400,
	  .doc = "seconds a browser keeps a preflight's answer" },
	{ .name = NULL }
};

const struct sy_conf_table sy_cors_table = {
	.path = "cors",
	.rows = cors_rows,
	.size = sizeof(struct sy_cors),
	.check = cors_check
};

const char *
sy_cors_allow(const struct sy_cors *c, const char *origin)
{
	size_t i;

	if (c == NULL || !c->enabled || origin == NULL || *origin == '\0' ||
	    strpbrk(origin, "\r\n") != NULL)
		return NULL;
	for (i = 0; i < c->norigins; i++) {
		if (strcmp(c->origins[i], "*") == 0)
			return "*";
		if (strcasecmp(c->origins[i], origin) == 0)
			return origin;
	}
	return NULL;
}

/* Appends the line "name: value\r\n" at *o within end; 0, or -1 when it does not fit. */
static int
put_line(char **o, char *end, const char *name, const char *value)
{
	int n = snprintf(*o, (size_t)(end - *o), "%s: %s\r\n", name, value);

	if (n < 0 || n >= end - *o)
		return -1;
	*o += n;
	return 0;
}

char *
sy_cors_headers(const struct sy_cors *c, const char *origin, char *buf,
    size_t len)
{
	const char *allow = sy_cors_allow(c, origin);
	char *o = buf;

	buf[0] = '\0';
	if (allow == NULL)
		return buf;
	if (put_line(&o, buf + len, "Access-Control-Allow-Origin", allow) != 0 ||
	    (strcmp(allow, "*") != 0 &&
	    put_line(&o, buf + len, "Vary", "Origin") != 0) ||
	    put_line(&o, buf + len, "Access-Control-Expose-Headers",
	    EXPOSED) != 0) {
		buf[0] = '\0';
		return buf;
	}
	return o;
}

char *
sy_cors_preflight(const struct sy_cors *c, const char *origin,
    const char *asked)
{
	struct evbuffer *b;
	char *out;
	size_t i, n;

	if (sy_cors_allow(c, origin) == NULL)
		return NULL;
	b = evbuffer_new();
	evbuffer_add_printf(b, "Access-Control-Allow-Methods: GET, POST, "
	    "DELETE, OPTIONS\r\nAccess-Control-Max-Age: %u\r\n", c->max_age);
	if (c->nheaders > 0) {
		SY_ADD_LIT(b, "Access-Control-Allow-Headers: ");
		for (i = 0; i < c->nheaders; i++)
			evbuffer_add_printf(b, "%s%s", i > 0 ? ", " : "",
			    c->headers[i]);
		SY_ADD_LIT(b, "\r\n");
	} else if (asked != NULL && strpbrk(asked, "\r\n") == NULL)
		evbuffer_add_printf(b, "Access-Control-Allow-Headers: %s\r\n",
		    asked);
	n = evbuffer_get_length(b);
	out = sy_xmalloc(n + 1);
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}
