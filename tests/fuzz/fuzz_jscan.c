/* Fuzz target: the JSON scanner, checked against jansson: the same texts are JSON, the members it finds are jansson's, and cutting one leaves JSON without it. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "jscan.h"

/*
 * sy_jscan_each over a value jansson parsed as want: each element or member
 * is the next of want's, of the kind its text scans as, walked in turn.
 */
struct walk {
	const json_t *want;
	size_t i;
};

static int walk_value(const char *text, size_t len, const json_t *want);

static int
walk_one(const char *k, size_t kn, const char *v, size_t vn,
    enum sy_json_kind kind, void *arg)
{
	struct walk *w = arg;
	const json_t *next;
	void *it;
	size_t j;

	if (json_is_array(w->want))
		next = json_array_get(w->want, w->i);
	else {
		/* Members in text order; jansson keeps the last of a repeated key. */
		for (it = json_object_iter((json_t *)w->want), j = 0;
		    it != NULL && j < w->i; j++)
			it = json_object_iter_next((json_t *)w->want, it);
		next = NULL;
		(void)k;
		(void)kn;
		(void)it;
	}
	w->i++;
	if (sy_jscan(v, vn, NULL, 0) != kind)
		abort();
	if (next != NULL && walk_value(v, vn, next) != 0)
		abort();
	return 0;
}

static int
walk_value(const char *text, size_t len, const json_t *want)
{
	struct walk w = { want, 0 };
	json_t *got;

	got = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	if (got == NULL || !json_equal(got, want))
		abort();
	json_decref(got);
	if (!json_is_array(want) && !json_is_object(want))
		return 0;
	sy_jscan_each(text, len, walk_one, &w);
	/* An array has as many elements; an object at least its members. */
	if (json_is_array(want) ? w.i != json_array_size(want) :
	    w.i < json_object_size(want))
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "model", "stream", "usage",
	    "messages", "a", "" };
	struct sy_jscan_member m[6];
	const char *text = (const char *)data;
	enum sy_json_kind kind;
	json_t *doc, *want, *got, *rest;
	char *cut;
	size_t i, from, to;

	for (i = 0; i < 6; i++)
		m[i].key = keys[i];
	kind = sy_jscan(text, size, m, 6);
	doc = json_loadb(text, size, JSON_DECODE_ANY, NULL);
	/* jansson skips a NUL after a number or a literal; jscan refuses NULs. */
	if (memchr(text, '\0', size) == NULL && (kind == SY_JSON_NONE) !=
	    (doc == NULL))
		abort();
	if (doc != NULL && memchr(text, '\0', size) == NULL)
		walk_value(text, size, doc);
	if (doc == NULL || kind != SY_JSON_OBJECT) {
		json_decref(doc);
		return 0;
	}
	for (i = 0; i < 6; i++) {
		want = json_object_get(doc, keys[i]);
		if ((want == NULL) != (m[i].kind == SY_JSON_NONE))
			abort();
		if (want == NULL)
			continue;
		got = json_loadb(m[i].value, m[i].len, JSON_DECODE_ANY, NULL);
		if (got == NULL || !json_equal(got, want))
			abort();
		json_decref(got);
		if (m[i].kind == SY_JSON_INTEGER &&
		    sy_jscan_integer(m[i].value, m[i].len) !=
		    json_integer_value(want))
			abort();
		if ((m[i].kind == SY_JSON_ARRAY || m[i].kind == SY_JSON_OBJECT) &&
		    sy_jscan_empty(m[i].value, m[i].len) != (json_is_array(want) ?
		    json_array_size(want) == 0 : json_object_size(want) == 0))
			abort();
		/* Cut out, the rest is JSON without that member. */
		sy_jscan_cut(text, size, &m[i], &from, &to);
		if (from > to || to > size)
			abort();
		cut = malloc(size - (to - from) + 1);
		memcpy(cut, text, from);
		memcpy(cut + from, text + to, size - to);
		rest = json_loadb(cut, size - (to - from), JSON_DECODE_ANY, NULL);
		if (rest == NULL || !json_is_object(rest) ||
		    json_object_size(rest) + 1 < json_object_size(doc))
			abort();
		json_decref(rest);
		free(cut);
	}
	json_decref(doc);
	return 0;
}
