/* The registry of client-facing API dialects: which dialect serves which path. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "clientapi.h"
#include "util.h"

const struct sy_client_api *const sy_client_apis[] = {
	&sy_client_openai,
	&sy_client_anthropic,
	&sy_client_responses,
	NULL
};

const struct sy_client_api *
sy_client_api_for(const char *path, enum sy_api *api)
{
	const struct sy_client_path *p;
	size_t i;

	for (i = 0; sy_client_apis[i] != NULL; i++)
		for (p = sy_client_apis[i]->paths; p->path != NULL; p++)
			if (strcmp(p->path, path) == 0) {
				*api = p->api;
				return sy_client_apis[i];
			}
	return NULL;
}

void
sy_client_api_paths(char *buf, size_t len)
{
	const struct sy_client_path *p;
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; sy_client_apis[i] != NULL; i++)
		for (p = sy_client_apis[i]->paths; p->path != NULL && n < len;
		    p++)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
			    n > 0 ? ", " : "", p->path);
}

const struct sy_client_api *
sy_client_api_at(size_t i)
{
	return sy_registry_at((const void *const *)sy_client_apis, i);
}

json_t *
sy_client_body(const char *text, size_t len, char **err)
{
	json_error_t jerr;
	json_t *in;

	*err = NULL;
	in = json_loadb(text != NULL ? text : "", len, 0, &jerr);
	if (in == NULL) {
		sy_fail(err, "request body is not valid JSON: %s (line %d, column "
		    "%d)", jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(in)) {
		json_decref(in);
		sy_fail(err, "request body must be a JSON object");
		return NULL;
	}
	return in;
}

void
sy_client_random_id(char *buf, size_t n, const char *prefix)
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz";
	size_t i, p = strlen(prefix);
	uint64_t r = 0;

	if (n < p + 25) {
		buf[0] = '\0';
		return;
	}
	memcpy(buf, prefix, p);
	for (i = 0; i < 24; i++) {
		if (i % 8 == 0)
			r = sy_rand64();
		buf[p + i] = digits[r % 62];
		r /= 62;
	}
	buf[p + 24] = '\0';
}
