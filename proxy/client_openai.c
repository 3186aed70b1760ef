/* The OpenAI dialect: chat completions, completions, embeddings and rerank (the shape vLLM, TEI, Jina and Cohere v2 share), which are the canonical form itself (requests, answers and streams pass as they are). */
#include <event2/buffer.h>

#include "canon.h"
#include "clientapi.h"

static void
openai_error(struct evbuffer *out, int status, const char *type,
    const char *code, const char *message)
{
	sy_canon_error_body(out, status, type, code, message);
}

static const struct sy_client_path openai_paths[] = {
	{ "/v1/chat/completions", SY_API_CHAT },
	{ "/v1/completions", SY_API_COMPLETIONS },
	{ "/v1/embeddings", SY_API_EMBEDDINGS },
	{ "/v1/rerank", SY_API_RERANK },
	{ NULL, 0 }
};

const struct sy_client_api sy_client_openai = {
	.name = "openai",
	.paths = openai_paths,
	.error = openai_error
};
