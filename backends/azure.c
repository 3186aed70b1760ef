/* azure: Azure OpenAI deployments: OpenAI's bodies and streams, the deployment in the base URL, api-version in the query, the key in api-key. */
#include <stddef.h>
#include <stdio.h>

#include "backend.h"
#include "confrow.h"
#include "framing.h"
#include "config.h"
#include "req.h"

/* The api-version sent when the backend's config names none. */
#define AZURE_API_VERSION "2024-10-21"

/* The azure kind's own keys on a backend. */
struct azure_params {
	char *api_version;
};

static const struct sy_conf_row azure_rows[] = {
	{ .name = "api_version", .type = SY_CONF_STRING,
	  .offset = offsetof(struct azure_params, api_version),
	  .def.s = AZURE_API_VERSION,
	  .doc = "the api-version query parameter" },
	{ .name = NULL }
};

static const struct sy_conf_table azure_table = {
	.path = "backends[]",
	.owner = "azure",
	.rows = azure_rows,
	.size = sizeof(struct azure_params)
};

/* The key in the api-key header. */
static int
azure_credentials(const struct sy_endpoint *ep, char *buf, size_t len)
{
	return sy_backend_key_header(ep, "api-key: ", buf, len);
}

/*
 * The base URL names the deployment (https://R.openai.azure.com/openai/
 * deployments/D): the API path and ?api-version= follow it.
 */
static int
azure_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	const struct azure_params *p = ep->params;

	snprintf(up->path, sizeof up->path, "%s?api-version=%s",
	    sy_openai_path(req->api), p->api_version);
	azure_credentials(ep, up->headers, sizeof up->headers);
	return sy_openai_body(req, out, err);
}

const struct sy_backend_kind sy_backend_azure = {
	.name = "azure",
	.framing = &sy_framing_sse,
	.encode = azure_encode,
	.decode = sy_openai_decode,
	.stream_event = sy_openai_stream_event,
	.credentials = azure_credentials,
	.health_path = "/models?api-version=" AZURE_API_VERSION,
	.params = &azure_table
};
