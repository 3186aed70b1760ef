/* jscan: validates JSON text and finds members of its top-level object, without building a tree or allocating. */
#ifndef SY_JSCAN_H
#define SY_JSCAN_H

#include <stddef.h>
#include <stdint.h>

/* The kind of a JSON value; SY_JSON_NONE when absent or not JSON. */
enum sy_json_kind {
	SY_JSON_NONE = 0,
	SY_JSON_OBJECT,
	SY_JSON_ARRAY,
	SY_JSON_STRING,
	SY_JSON_INTEGER,
	SY_JSON_REAL,
	SY_JSON_TRUE,
	SY_JSON_FALSE,
	SY_JSON_NULL
};

/* A member of the top-level object to look for, and what was found. */
struct sy_jscan_member {
	const char *key;		/* in: its name, as decoded (NUL-terminated) */
	enum sy_json_kind kind;		/* out: its value's kind, NONE when absent */
	const char *value;		/* out: its value's text, inside the input */
	size_t len;			/* out: bytes of that text */
	const char *member;		/* out: where the member starts (its
					   key's opening quote) */
};

/*
 * Validates len bytes of text as one JSON value, accepting what jansson's
 * json_loadb(text, len, JSON_DECODE_ANY, NULL) accepts: RFC 8259 within
 * jansson's limits (strict UTF-8, no \u0000 in strings, integers within
 * int64_t, reals that do not overflow a double, nesting at most 2048
 * deep).  One difference: jansson skips a NUL byte right after a number
 * or a literal ("[1\0]"), jscan refuses every NUL byte.  Returns the kind
 * of the top-level value, or SY_JSON_NONE when text is not JSON.  When it is an object, each of the n members is
 * filled from the member of that name (the last one when a name repeats,
 * as jansson keeps it); a member not there, or any member when the text
 * is not an object, gets kind SY_JSON_NONE and value NULL.  Only the
 * top-level object's own members are found, never nested ones.
 */
enum sy_json_kind sy_jscan(const char *text, size_t len,
    struct sy_jscan_member *members, size_t n);

/*
 * The value of integer text (len bytes) that sy_jscan found of kind
 * SY_JSON_INTEGER; such text always fits in int64_t.
 */
int64_t sy_jscan_integer(const char *text, size_t len);

/*
 * The bytes [*from, *to) of text (len bytes, an object sy_jscan scanned)
 * whose removal takes member m (found, kind not SY_JSON_NONE) out of it
 * and leaves valid JSON: the member and one comma beside it.
 */
void sy_jscan_cut(const char *text, size_t len,
    const struct sy_jscan_member *m, size_t *from, size_t *to);

/*
 * Whether the text (len bytes) of a value sy_jscan found of kind
 * SY_JSON_ARRAY or SY_JSON_OBJECT has no element.
 */
int sy_jscan_empty(const char *text, size_t len);

/*
 * Calls fn for each member of the object, or each element of the array,
 * that text is (len bytes of a value sy_jscan validated as
 * SY_JSON_OBJECT or SY_JSON_ARRAY): key and klen the member's name as
 * written, without its quotes (NULL, 0 for an element), value and vlen
 * its value's text, kind its kind.  fn returns 0 to go on, else the walk
 * stops and that is returned.  Returns 0 after the last one.
 */
typedef int (*sy_jscan_each_fn)(const char *key, size_t klen,
    const char *value, size_t vlen, enum sy_json_kind kind, void *arg);
int sy_jscan_each(const char *text, size_t len, sy_jscan_each_fn fn,
    void *arg);

#endif
