/* The prompt cache's pure pieces: Cache-Control, determinism, the canonical key (SHA-256), stored values, and streams replayed from or reassembled into whole answers. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "cache.h"
#include "jscan.h"
#include "req.h"
#include "sse.h"
#include "util.h"

/* ==== Cache-Control ==== */

void
sy_cache_control_parse(const char *value, struct sy_cache_control *cc)
{
	const char *p = value, *tok, *eq;
	size_t len;
	char *end;
	long n;

	memset(cc, 0, sizeof *cc);
	cc->max_age = -1;
	while (p != NULL && *p != '\0') {
		p += strspn(p, " \t,");
		tok = p;
		len = strcspn(p, ",");
		p += len;
		while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '\t'))
			len--;
		if (len == 8 && strncasecmp(tok, "no-cache", 8) == 0)
			cc->no_cache = 1;
		else if (len == 8 && strncasecmp(tok, "no-store", 8) == 0)
			cc->no_store = 1;
		else if (len > 8 && strncasecmp(tok, "max-age", 7) == 0 &&
		    (eq = tok + 7 + strspn(tok + 7, " \t"))[0] == '=') {
			eq += 1 + strspn(eq + 1, " \t\"");
			if (!isdigit((unsigned char)*eq))
				continue;
			n = strtol(eq, &end, 10);
			if (end <= tok + len && (*end == '"' || end == tok + len ||
			    *end == ' ' || *end == '\t'))
				cc->max_age = n;
		}
	}
}

/* ==== Key ==== */

int
sy_cache_deterministic(int api, const json_t *body)
{
	const json_t *t = json_object_get(body, "temperature");
	const json_t *seed = json_object_get(body, "seed");

	if (api == SY_API_EMBEDDINGS || api == SY_API_RERANK)
		return 1;
	if (json_is_integer(seed))
		return 1;
	return json_is_number(t) && json_number_value(t) == 0;
}

/* Whether e is a real that holds a whole number, set in *n. */
static int
whole_real(const json_t *e, json_int_t *n)
{
	double d;

	if (!json_is_real(e))
		return 0;
	d = json_real_value(e);
	if (!(d > -9e15 && d < 9e15) || d != (double)(json_int_t)d)
		return 0;
	*n = (json_int_t)d;
	return 1;
}

/*
 * Whether v holds, at any depth, a real that holds a whole number; with
 * rewrite, writes each as that integer, so that 0 and 0.0 (which clients
 * send alike) make one key.
 */
static int
whole_reals(json_t *v, int rewrite)
{
	const char *k;
	json_int_t n;
	json_t *e;
	size_t i;
	int found = 0;

	if (json_is_object(v)) {
		json_object_foreach(v, k, e) {
			if (whole_real(e, &n) && rewrite)
				json_object_set_new(v, k, json_integer(n));
			else if (!whole_real(e, &n) && !whole_reals(e, rewrite))
				continue;
			if (!rewrite)
				return 1;
			found = 1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e) {
			if (whole_real(e, &n) && rewrite)
				json_array_set_new(v, i, json_integer(n));
			else if (!whole_real(e, &n) && !whole_reals(e, rewrite))
				continue;
			if (!rewrite)
				return 1;
			found = 1;
		}
	}
	return found;
}

int
sy_cache_key(const char *ns, int api, const char *model, const json_t *body,
    unsigned char key[SY_CACHE_KEY_LEN])
{
	static const char magic[] = "switchyard-cache-1";
	json_t *copy;
	char *text, apiname[8];
	unsigned len = 0;
	EVP_MD_CTX *md;
	int rc = -1, deep;

	/* A copy of the top level, deep only when some numbers change. */
	if (!json_is_object(body))
		return -1;
	deep = whole_reals((json_t *)body, 0);
	if ((copy = deep ? json_deep_copy(body) :
	    json_copy((json_t *)body)) == NULL)
		return -1;
	json_object_del(copy, "model");
	json_object_del(copy, "stream");
	json_object_del(copy, "stream_options");
	if (deep)
		whole_reals(copy, 1);
	text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS |
	    JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
	json_decref(copy);
	if (text == NULL)
		return -1;
	snprintf(apiname, sizeof apiname, "%d", api);
	if ((md = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(md, magic, sizeof magic) == 1 &&
	    EVP_DigestUpdate(md, ns, strlen(ns) + 1) == 1 &&
	    EVP_DigestUpdate(md, apiname, strlen(apiname) + 1) == 1 &&
	    EVP_DigestUpdate(md, model, strlen(model) + 1) == 1 &&
	    EVP_DigestUpdate(md, text, strlen(text)) == 1 &&
	    EVP_DigestFinal_ex(md, key, &len) == 1 && len == SY_CACHE_KEY_LEN)
		rc = 0;
	EVP_MD_CTX_free(md);
	free(text);
	return rc;
}

void
sy_cache_key_hex(const unsigned char key[SY_CACHE_KEY_LEN],
    char hex[2 * SY_CACHE_KEY_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < SY_CACHE_KEY_LEN; i++) {
		hex[2 * i] = digits[key[i] >> 4];
		hex[2 * i + 1] = digits[key[i] & 15];
	}
	hex[2 * SY_CACHE_KEY_LEN] = '\0';
}

/* ==== Values ==== */

struct sy_cache_value *
sy_cache_value_new(const char *body, size_t len, const struct sy_usage *usage,
    uint64_t stored_ms)
{
	struct sy_cache_value *v = sy_xmalloc(sizeof *v + len + 1);

	atomic_init(&v->refs, 1);
	v->stored_ms = stored_ms;
	v->usage = *usage;
	v->len = len;
	memcpy(v->body, body, len);
	v->body[len] = '\0';
	return v;
}

struct sy_cache_value *
sy_cache_value_ref(struct sy_cache_value *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
	return v;
}

void
sy_cache_value_unref(struct sy_cache_value *v)
{
	if (v != NULL && atomic_fetch_sub_explicit(&v->refs, 1,
	    memory_order_acq_rel) == 1)
		free(v);
}

void
sy_cache_value_encode(const struct sy_cache_value *v, struct evbuffer *out)
{
	evbuffer_add_printf(out, "SYC1 %" PRIu64 " %" PRId64 " %" PRId64
	    " %" PRId64 "\n", v->stored_ms, v->usage.prompt_tokens,
	    v->usage.completion_tokens, v->usage.cached_tokens);
	evbuffer_add(out, v->body, v->len);
}

struct sy_cache_value *
sy_cache_value_decode(const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len < 128 ? len : 128);
	struct sy_usage u;
	uint64_t stored;
	char head[128];
	int n = 0;

	if (nl == NULL || len < 5 || memcmp(buf, "SYC1 ", 5) != 0)
		return NULL;
	memcpy(head, buf, (size_t)(nl - buf));
	head[nl - buf] = '\0';
	if (sscanf(head, "SYC1 %" SCNu64 " %" SCNd64 " %" SCNd64 " %" SCNd64
	    "%n", &stored, &u.prompt_tokens, &u.completion_tokens,
	    &u.cached_tokens, &n) != 4 || head[n] != '\0')
		return NULL;
	nl++;
	/* Whatever Redis holds, only a JSON object goes to a client. */
	if (sy_jscan(nl, len - (size_t)(nl - buf), NULL, 0) != SY_JSON_OBJECT)
		return NULL;
	return sy_cache_value_new(nl, len - (size_t)(nl - buf), &u, stored);
}
