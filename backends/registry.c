/* The backend registry: every wire-protocol adapter, found by kind name. */
#include <stdio.h>

#include "backend.h"
#include "config.h"
#include "util.h"

extern const struct sy_backend_kind sy_backend_openai;
extern const struct sy_backend_kind sy_backend_azure;
extern const struct sy_backend_kind sy_backend_anthropic;
extern const struct sy_backend_kind sy_backend_tgi;
extern const struct sy_backend_kind sy_backend_ollama;
extern const struct sy_backend_kind sy_backend_kserve;
extern const struct sy_backend_kind sy_backend_openai_responses;

static const void *const kinds[] = {
	&sy_backend_openai,
	&sy_backend_azure,
	&sy_backend_anthropic,
	&sy_backend_tgi,
	&sy_backend_ollama,
	&sy_backend_kserve,
	&sy_backend_openai_responses,
	NULL
};

const struct sy_backend_kind *
sy_backend_kind_find(const char *name)
{
	return sy_registry_find(kinds, name);
}

void
sy_backend_kind_names(char *buf, size_t len)
{
	sy_registry_names(kinds, buf, len);
}

size_t
sy_backend_kind_params(const struct sy_conf_table **out, size_t max)
{
	const struct sy_backend_kind *kind;
	size_t i, n = 0;

	for (i = 0; kinds[i] != NULL && n < max; i++) {
		kind = kinds[i];
		if (kind->params != NULL)
			out[n++] = kind->params;
	}
	return n;
}

int
sy_backend_key_header(const struct sy_endpoint *ep, const char *name,
    char *buf, size_t len)
{
	int n;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (ep->api_key == NULL)
		return 0;
	n = snprintf(buf, len, "%s%s\r\n", name, ep->api_key);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -1;
	}
	return n;
}

int
sy_backend_bearer(const struct sy_endpoint *ep, char *buf, size_t len)
{
	return sy_backend_key_header(ep, "Authorization: Bearer ", buf, len);
}

int
sy_backend_credentials(const struct sy_backend_kind *kind,
    const struct sy_endpoint *ep, char *buf, size_t len)
{
	return kind->credentials != NULL ? kind->credentials(ep, buf, len) :
	    sy_backend_bearer(ep, buf, len);
}

const struct sy_backend_kind *
sy_backend_kind_at(size_t i)
{
	return sy_registry_at(kinds, i);
}
