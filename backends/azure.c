/* azure: Azure OpenAI deployments: OpenAI's bodies and streams, the deployment in the base URL, api-version in the query, the key in api-key. */
#include <stdio.h>

#include "backend.h"
#include "framing.h"
#include "config.h"
#include "req.h"

/* The api-version sent when the backend's config names none. */
#define AZURE_API_VERSION "2024-10-21"

/* The key in the api-key header. */
static int
azure_credentials(const struct sy_endpoint *ep, char *buf, size_t len)
{
	int n;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	if (ep->api_key == NULL)
		return 0;
	n = snprintf(buf, len, "api-key: %s\r\n", ep->api_key);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return -1;
	}
	return n;
}

/*
 * The base URL names the deployment (https://R.openai.azure.com/openai/
 * deployments/D): the API path and ?api-version= follow it.
 */
static int
azure_encode(const struct sy_req *req, const struct sy_endpoint *ep,
    struct evbuffer *out, struct sy_upstream_req *up, char **err)
{
	snprintf(up->path, sizeof up->path, "%s?api-version=%s",
	    sy_openai_path(req->api),
	    ep->api_version != NULL ? ep->api_version : AZURE_API_VERSION);
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
	.health_path = "/models?api-version=" AZURE_API_VERSION
};
