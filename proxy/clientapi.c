/* The registry of client-facing API dialects: which dialect serves which path. */
#include <stdio.h>
#include <string.h>

#include "clientapi.h"
#include "util.h"

const struct sy_client_api *const sy_client_apis[] = {
	&sy_client_openai,
	&sy_client_anthropic,
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
