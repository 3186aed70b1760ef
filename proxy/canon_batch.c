/* The canonical form's batches: the inputs of a batchable request, one request made of several requests' inputs, and its answer split back into one answer each. */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "canon.h"
#include "req.h"
#include "util.h"

/* ==== Inputs ==== */

const char *
sy_canon_batch_inputs(int api, const json_t *body, json_t **out)
{
	const json_t *input = json_object_get(body, api == SY_API_EMBEDDINGS ?
	    "input" : "prompt");
	const char *msg = api == SY_API_EMBEDDINGS ?
	    "'input' must be a string, an array of strings, or token ids" :
	    "'prompt' must be a string, an array of strings, or token ids";
	const json_t *v, *t;
	size_t i, j;

	if (json_is_string(input)) {
		*out = json_pack("[O]", input);
		return NULL;
	}
	if (!json_is_array(input) || json_array_size(input) == 0)
		return msg;
	if (json_is_integer(json_array_get(input, 0))) {
		json_array_foreach(input, i, v)
			if (!json_is_integer(v))
				return msg;
		*out = json_pack("[O]", input);
		return NULL;
	}
	json_array_foreach(input, i, v) {
		if (json_is_string(v))
			continue;
		if (!json_is_array(v) || json_array_size(v) == 0)
			return msg;
		json_array_foreach(v, j, t)
			if (!json_is_integer(t))
				return msg;
	}
	*out = json_copy((json_t *)input);
	return NULL;
}

uint64_t
sy_canon_input_tokens(const json_t *v)
{
	if (json_is_array(v))
		return json_array_size(v);
	return (uint64_t)sy_text_tokens(json_string_value(v),
	    json_string_length(v));
}

/* ==== Answers ==== */

/*
 * Splits total among n parts in proportion to weights w (all 0: evenly),
 * by largest remainder, so that the parts add up to total exactly; every
 * part is -1 when total is (unknown).
 */
static void
shares(int64_t total, const uint64_t *w, size_t n, int64_t *out)
{
	uint64_t sum = 0;
	double *frac = sy_xcalloc(n, sizeof *frac), best;
	int64_t given = 0;
	size_t i, k;

	for (i = 0; i < n; i++)
		sum += w[i];
	for (i = 0; i < n; i++) {
		double exact = total < 0 ? 0 : sum == 0 ? (double)total / n :
		    (double)total * (double)w[i] / (double)sum;

		out[i] = total < 0 ? -1 : (int64_t)exact;
		frac[i] = exact - (double)out[i];
		given += out[i];
	}
	for (; total >= 0 && given < total; given++) {
		for (i = 0, k = 0, best = -1; i < n; i++)
			if (frac[i] > best) {
				best = frac[i];
				k = i;
			}
		out[k]++;
		frac[k] = -1;
	}
	free(frac);
}

/* Bytes of text in the choices of one member (at least 1 each), for shares. */
static uint64_t
choices_text(json_t *const *items, size_t n)
{
	uint64_t bytes = 0;
	size_t i;

	for (i = 0; i < n; i++)
		bytes += json_string_length(json_object_get(items[i], "text")) + 1;
	return bytes;
}

/*
 * The answer's items (data or choices) in the order of their "index"
 * (their position when they carry none), into a new array of borrowed
 * pointers, and in *per how many there are per input: exactly one
 * embedding per input, or completions' "n" choices per prompt (as many
 * as the backend gave, the same for each); NULL otherwise.
 */
static json_t **
items_in_order(int api, const json_t *items, size_t inputs, size_t *per)
{
	json_t **v, *it, *ix;
	size_t i, at, n = json_array_size(items);

	if (!json_is_array(items) || inputs == 0 || n == 0 || n % inputs != 0 ||
	    (api == SY_API_EMBEDDINGS && n != inputs))
		return NULL;
	*per = n / inputs;
	v = sy_xcalloc(n, sizeof *v);
	json_array_foreach(items, i, it) {
		ix = json_object_get(it, "index");
		at = json_is_integer(ix) ? (size_t)json_integer_value(ix) : i;
		if (!json_is_object(it) || at >= n || v[at] != NULL) {
			free(v);
			return NULL;
		}
		v[at] = it;
	}
	return v;
}

/* The usage object of one part's share. */
static json_t *
usage_json(const struct sy_usage *u, int api, int details)
{
	return sy_canon_usage_json(u, (api == SY_API_EMBEDDINGS ?
	    SY_USAGE_EMBEDDING : 0) | (details && u->cached_tokens >= 0 ?
	    SY_USAGE_DETAILS : 0));
}

int
sy_canon_batch_split(int api, struct evbuffer *body,
    const struct sy_usage *total, struct sy_canon_part *parts, size_t n)
{
	const char *member = api == SY_API_EMBEDDINGS ? "data" : "choices";
	size_t i, j, off = 0, k, per, inputs = 0;
	uint64_t *wp = sy_xcalloc(n, sizeof *wp), *wc = sy_xcalloc(n, sizeof *wc);
	int64_t *sp = sy_xcalloc(n, sizeof *sp), *sc = sy_xcalloc(n, sizeof *sc);
	int64_t *sk = sy_xcalloc(n, sizeof *sk);
	json_t *root, **items, *arr, *out, *it;
	struct sy_canon_part *p;
	int details, rc = -1;
	char *text;

	for (i = 0; i < n; i++)
		inputs += parts[i].ninputs;
	root = json_loadb((const char *)evbuffer_pullup(body, -1),
	    evbuffer_get_length(body), 0, NULL);
	items = items_in_order(api, json_object_get(root, member), inputs, &per);
	if (items == NULL)
		goto done;
	for (i = 0; i < n; i++) {
		wp[i] = parts[i].prompt_weight;
		wc[i] = choices_text(items + off * per, parts[i].ninputs * per);
		off += parts[i].ninputs;
	}
	shares(total->prompt_tokens, wp, n, sp);
	shares(total->completion_tokens, wc, n, sc);
	shares(total->cached_tokens, wp, n, sk);
	details = json_object_get(json_object_get(root, "usage"),
	    "prompt_tokens_details") != NULL;
	for (i = 0, off = 0; i < n; i++) {
		p = &parts[i];
		arr = json_array();
		for (j = 0; j < p->ninputs * per; j++) {
			k = off * per + j;
			it = json_copy(items[k]);
			json_object_set_new(it, "index", json_integer(
			    (json_int_t)j));
			json_array_append_new(arr, it);
		}
		off += p->ninputs;
		p->usage.prompt_tokens = sp[i];
		p->usage.completion_tokens = api == SY_API_COMPLETIONS ?
		    sc[i] : -1;
		p->usage.cached_tokens = sk[i];
		out = json_copy(root);
		json_object_set_new(out, member, arr);
		/* Never the batch's own figures: the part's share, or none. */
		if (total->prompt_tokens >= 0 || total->completion_tokens >= 0)
			json_object_set_new(out, "usage", usage_json(&p->usage,
			    api, details));
		else
			json_object_del(out, "usage");
		text = json_dumps(out, JSON_COMPACT);
		json_decref(out);
		p->body = evbuffer_new();
		if (text != NULL)
			evbuffer_add(p->body, text, strlen(text));
		free(text);
	}
	rc = 0;
done:
	free(items);
	json_decref(root);
	free(wp);
	free(wc);
	free(sp);
	free(sc);
	free(sk);
	return rc;
}

void
sy_canon_batch_request(int api, const json_t *params,
    json_t *const *inputs, size_t n, struct evbuffer *out)
{
	json_t *obj = json_copy((json_t *)params), *all = json_array();
	char *text;
	size_t i;

	for (i = 0; i < n; i++)
		json_array_extend(all, inputs[i]);
	json_object_set_new(obj, api == SY_API_EMBEDDINGS ? "input" : "prompt",
	    all);
	text = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (text != NULL)
		evbuffer_add(out, text, strlen(text));
	free(text);
}
