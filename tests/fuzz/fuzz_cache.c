/* Fuzz target: the decoder of cache values as Redis returns them; what it accepts encodes back to a value that decodes the same. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "cache.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sy_cache_value *v, *again;
	struct evbuffer *out;

	if ((v = sy_cache_value_decode((const char *)data, size)) == NULL)
		return 0;
	out = evbuffer_new();
	sy_cache_value_encode(v, out);
	again = sy_cache_value_decode((const char *)evbuffer_pullup(out, -1),
	    evbuffer_get_length(out));
	if (again == NULL || again->len != v->len ||
	    memcmp(again->body, v->body, v->len) != 0 ||
	    again->stored_ms != v->stored_ms ||
	    again->usage.prompt_tokens != v->usage.prompt_tokens ||
	    again->usage.completion_tokens != v->usage.completion_tokens ||
	    again->usage.cached_tokens != v->usage.cached_tokens)
		abort();
	sy_cache_value_unref(again);
	sy_cache_value_unref(v);
	evbuffer_free(out);
	return 0;
}
