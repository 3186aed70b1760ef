/* jscan: a JSON validator that builds no tree (accepting what jansson accepts) and finds the top-level object's members. */
#include <string.h>

#include "jscan.h"

#define JSCAN_MAX_DEPTH	2048		/* jansson's JSON_PARSER_MAX_DEPTH */
#define JSCAN_EXP_CAP	1000000000LL	/* exponents beyond decide alone */

#define ONES		0x0101010101010101ULL
#define HIGHS		0x8080808080808080ULL

/*
 * The least magnitude that strtod rounds to infinity (ERANGE), which
 * jansson refuses as "real number overflow": 2^1024 - 2^970, 309 digits.
 */
static const char dbl_overflow[] =
    "1797693134862315807937289714053034150799341327100378269361737789804449"
    "6829276475094664901797758720709633028641669288791094655554785194040263"
    "0657488671505820681908902000708383676273854845817711531764475730270069"
    "8555713669596228429148198608349364752927190741684443655107043427115596"
    "99508093042880177904174497792";

/* Whether c is a decimal digit. */
static int
is_digit(unsigned char c)
{
	return (unsigned char)(c - '0') < 10;
}

/* Whether c is JSON whitespace. */
static int
is_ws(unsigned char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

/* Skips JSON whitespace from p; returns the first other byte, or e. */
static const unsigned char *
skip_ws(const unsigned char *p, const unsigned char *e)
{
	while (p < e && is_ws(*p))
		p++;
	return p;
}

/*
 * The high bits of the bytes of w (eight bytes read from memory) that may
 * need a look inside a string: '"', '\\', a control character or a byte
 * >= 0x80.  Never misses one, and the lowest bit set is exact (a false
 * hit only follows a true one).
 */
static uint64_t
word_special(uint64_t w)
{
	uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');

	return (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) |
	    ((b - ONES) & ~b) | w) & HIGHS;
}

/*
 * Length of the well-formed UTF-8 sequence at p (before e) whose first
 * byte is >= 0x80, or 0: no overlong forms, surrogates or code points
 * above U+10FFFF, as jansson checks every byte it reads.
 */
static size_t
utf8_seq(const unsigned char *p, const unsigned char *e)
{
	uint32_t cp;
	size_t n, i;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)	/* never overlong nor a surrogate */
		return e - p >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if ((size_t)(e - p) < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
		return 0;
	return n;
}

/* The value of the four hex digits at p (before e), or -1. */
static long
hex4(const unsigned char *p, const unsigned char *e)
{
	long v = 0;
	int i;

	if (e - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (is_digit(p[i]))
			v |= p[i] - '0';
		else if (p[i] >= 'a' && p[i] <= 'f')
			v |= p[i] - 'a' + 10;
		else if (p[i] >= 'A' && p[i] <= 'F')
			v |= p[i] - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * Scans a string whose opening quote is just before p.  Returns the byte
 * after its closing quote, or NULL when it is not a string jansson takes
 * (bad escape, lone surrogate, \u0000, control character, bad UTF-8,
 * no end).  Sets *escaped when it holds a backslash.
 */
static const unsigned char *
scan_string(const unsigned char *p, const unsigned char *e, int *escaped)
{
	uint64_t w, special;
	long v;
	size_t n;

	*escaped = 0;
	for (;;) {
		while (e - p >= 8) {
			memcpy(&w, p, 8);
			if ((special = word_special(w)) != 0) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				p += __builtin_ctzll(special) / 8;
#endif
				break;
			}
			p += 8;
		}
		if (p == e)
			return NULL;
		if (*p == '"')
			return p + 1;
		if (*p >= 0x20 && *p < 0x80 && *p != '\\') {
			p++;
			continue;
		}
		if (*p >= 0x80) {
			if ((n = utf8_seq(p, e)) == 0)
				return NULL;
			p += n;
			continue;
		}
		if (*p != '\\' || e - p < 2)
			return NULL;
		*escaped = 1;
		switch (p[1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n':
		case 'r': case 't':
			p += 2;
			continue;
		}
		if (p[1] != 'u' || (v = hex4(p + 2, e)) <= 0 ||
		    (v >= 0xdc00 && v <= 0xdfff))
			return NULL;
		p += 6;
		if (v >= 0xd800 && v <= 0xdbff) {
			if (e - p < 2 || p[0] != '\\' || p[1] != 'u' ||
			    (v = hex4(p + 2, e)) < 0xdc00 || v > 0xdfff)
				return NULL;
			p += 6;
		}
	}
}

/* Whether the n decimal digits at d, negative or not, fit in int64_t. */
static int
integer_fits(const unsigned char *d, size_t n, int negative)
{
	if (n != 19)
		return n < 19;
	return memcmp(d, negative ? "9223372036854775808" :
	    "9223372036854775807", 19) <= 0;
}

/*
 * Whether the real with integer digits [ip, ie), fraction digits [fp, fe)
 * and exponent exp has a magnitude strtod rounds to infinity: at least
 * dbl_overflow once written 0.D × 10^mag with D its significant digits.
 */
static int
real_overflows(const unsigned char *ip, const unsigned char *ie,
    const unsigned char *fp, const unsigned char *fe, long long exp)
{
	const unsigned char *zeros = fp;
	long long mag;
	size_t i;
	char c;

	while (ip < ie && *ip == '0')
		ip++;
	if (ip < ie)
		mag = (long long)(ie - ip) + exp;
	else {
		while (fp < fe && *fp == '0')
			fp++;
		if (fp == fe)
			return 0;	/* zero */
		mag = exp - (long long)(fp - zeros);
	}
	if (mag != (long long)sizeof dbl_overflow - 1)
		return mag > (long long)sizeof dbl_overflow - 1;
	for (i = 0; i < sizeof dbl_overflow - 1; i++) {
		if (ip < ie)
			c = (char)*ip++;
		else if (fp < fe)
			c = (char)*fp++;
		else
			c = '0';
		if (c != dbl_overflow[i])
			return c > dbl_overflow[i];
	}
	return 1;
}

/*
 * Scans a number starting at p.  Returns the byte after it and sets
 * *kind to SY_JSON_INTEGER or SY_JSON_REAL as jansson would type it, or
 * returns NULL when it is malformed or out of jansson's range.
 */
static const unsigned char *
scan_number(const unsigned char *p, const unsigned char *e,
    enum sy_json_kind *kind)
{
	const unsigned char *ip, *ie, *fp, *fe;
	long long exp = 0;
	int negative = 0, exp_negative = 0;

	if (*p == '-') {
		negative = 1;
		p++;
	}
	ip = p;
	if (p < e && *p == '0')
		p++;
	else
		while (p < e && is_digit(*p))
			p++;
	if (p == ip || (p < e && is_digit(*p)))
		return NULL;
	ie = p;
	if (p == e || (*p != '.' && *p != 'e' && *p != 'E')) {
		*kind = SY_JSON_INTEGER;
		return integer_fits(ip, (size_t)(ie - ip), negative) ? p : NULL;
	}
	fp = fe = p;
	if (*p == '.') {
		fp = ++p;
		while (p < e && is_digit(*p))
			p++;
		if (p == fp)
			return NULL;
		fe = p;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			exp_negative = *p++ == '-';
		if (p == e || !is_digit(*p))
			return NULL;
		for (; p < e && is_digit(*p); p++)
			if (exp < JSCAN_EXP_CAP)
				exp = exp * 10 + (*p - '0');
	}
	if (real_overflows(ip, ie, fp, fe, exp_negative ? -exp : exp))
		return NULL;
	*kind = SY_JSON_REAL;
	return p;
}

/* Scans the literal word (n bytes) at p; returns the byte after, or NULL. */
static const unsigned char *
scan_literal(const unsigned char *p, const unsigned char *e, const char *word,
    size_t n)
{
	if ((size_t)(e - p) < n || memcmp(p, word, n) != 0)
		return NULL;
	return p + n;
}

/* Writes code point cp as UTF-8 into u; returns its length. */
static size_t
utf8_put(uint32_t cp, unsigned char *u)
{
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | cp >> 6);
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | cp >> 12);
		u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	u[0] = (unsigned char)(0xf0 | cp >> 18);
	u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
	u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
	u[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Whether the inside [s, e) of a string scan_string accepted decodes to
 * key (NUL-terminated); escaped says whether it holds escapes to decode.
 */
static int
key_is(const unsigned char *s, const unsigned char *e, int escaped,
    const char *key)
{
	const unsigned char *k = (const unsigned char *)key, *ke;
	size_t len = (size_t)(e - s);
	unsigned char u[4];
	uint32_t cp;

	if (!escaped)		/* s holds no NUL: strncmp stops at key's */
		return (len == 0 || *s == *k) &&
		    strncmp((const char *)s, key, len) == 0 && key[len] == '\0';
	ke = k + strlen(key);
	while (s < e) {
		if (*s != '\\') {
			if (k == ke || *k++ != *s++)
				return 0;
			continue;
		}
		switch (s[1]) {
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u': cp = (uint32_t)hex4(s + 2, e); break;
		default: cp = s[1]; break;
		}
		s += s[1] == 'u' ? 6 : 2;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			cp = 0x10000 + ((cp - 0xd800) << 10) +
			    ((uint32_t)hex4(s + 2, e) - 0xdc00);
			s += 6;
		}
		len = utf8_put(cp, u);
		if ((size_t)(ke - k) < len || memcmp(k, u, len) != 0)
			return 0;
		k += len;
	}
	return k == ke;
}

/* Index among the n members of the one named [s, e), or n. */
static size_t
member_index(const unsigned char *s, const unsigned char *e, int escaped,
    const struct sy_jscan_member *members, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (key_is(s, e, escaped, members[i].key))
			break;
	return i;
}

/* Marks every member absent. */
static void
members_clear(struct sy_jscan_member *members, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		members[i].kind = SY_JSON_NONE;
		members[i].value = NULL;
		members[i].len = 0;
		members[i].member = NULL;
	}
}

/*
 * One pass, no recursion: depth counts the open containers, whose kinds
 * (object or array) are bits of objects.  A value at depth 1 is a member
 * (or element) of the top-level value; want is the index of the member
 * its key named, n when none.
 */
enum sy_json_kind
sy_jscan(const char *text, size_t len, struct sy_jscan_member *members,
    size_t n)
{
	const unsigned char *p = (const unsigned char *)text, *e = p + len;
	const unsigned char *start = p, *key, *mstart = p;
	unsigned char objects[JSCAN_MAX_DEPTH / 8];
	enum sy_json_kind kind = SY_JSON_NONE;
	size_t depth = 0, want = n;
	int escaped, object;

	members_clear(members, n);

value:
	p = skip_ws(p, e);
	if (p == e || depth == JSCAN_MAX_DEPTH)
		goto invalid;
	if (depth == 1)
		start = p;
	switch (*p) {
	case '{':
	case '[':
		object = *p == '{';
		if (object)
			objects[depth / 8] |= (unsigned char)(1 << depth % 8);
		else
			objects[depth / 8] &= (unsigned char)~(1 << depth % 8);
		depth++;
		p = skip_ws(p + 1, e);
		if (p < e && *p == (object ? '}' : ']')) {
			p++;
			depth--;
			kind = object ? SY_JSON_OBJECT : SY_JSON_ARRAY;
			goto done;
		}
		if (object)
			goto key;
		goto value;
	case '"':
		p = scan_string(p + 1, e, &escaped);
		kind = SY_JSON_STRING;
		break;
	case 't':
		p = scan_literal(p, e, "true", 4);
		kind = SY_JSON_TRUE;
		break;
	case 'f':
		p = scan_literal(p, e, "false", 5);
		kind = SY_JSON_FALSE;
		break;
	case 'n':
		p = scan_literal(p, e, "null", 4);
		kind = SY_JSON_NULL;
		break;
	default:
		if (*p != '-' && !is_digit(*p))
			goto invalid;
		p = scan_number(p, e, &kind);
		break;
	}
	if (p == NULL)
		goto invalid;

done:
	/* A value of kind ends at p; depth containers are still open. */
	if (depth == 1 && want < n) {
		members[want].kind = kind;
		members[want].value = (const char *)start;
		members[want].len = (size_t)(p - start);
		members[want].member = (const char *)mstart;
	}
	p = skip_ws(p, e);
	if (depth == 0) {
		if (p != e)
			goto invalid;
		return kind;
	}
	if (p == e)
		goto invalid;
	object = objects[(depth - 1) / 8] >> (depth - 1) % 8 & 1;
	if (*p == ',') {
		p++;
		if (object)
			goto key;
		goto value;
	}
	if (*p != (object ? '}' : ']'))
		goto invalid;
	p++;
	depth--;
	kind = object ? SY_JSON_OBJECT : SY_JSON_ARRAY;
	goto done;

key:
	p = skip_ws(p, e);
	if (p == e || *p != '"')
		goto invalid;
	key = p + 1;
	if ((p = scan_string(key, e, &escaped)) == NULL)
		goto invalid;
	if (depth == 1) {
		want = member_index(key, p - 1, escaped, members, n);
		mstart = key - 1;
	}
	p = skip_ws(p, e);
	if (p == e || *p != ':')
		goto invalid;
	p++;
	goto value;

invalid:
	members_clear(members, n);
	return SY_JSON_NONE;
}

int64_t
sy_jscan_integer(const char *text, size_t len)
{
	uint64_t v = 0;
	size_t i = 0;
	int negative = len > 0 && text[0] == '-';

	for (i = (size_t)negative; i < len; i++)
		v = v * 10 + (uint64_t)(text[i] - '0');
	if (!negative)
		return (int64_t)v;
	return v == 0 ? 0 : -(int64_t)(v - 1) - 1;
}

int
sy_jscan_empty(const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text, *e = p + len;

	if (p == e)
		return 1;
	p = skip_ws(p + 1, e);
	return p == e || *p == ']' || *p == '}';
}

void
sy_jscan_cut(const char *text, size_t len, const struct sy_jscan_member *m,
    size_t *from, size_t *to)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t a = (size_t)(m->member - text), b = (size_t)(m->value - text) +
	    m->len, i;

	for (i = b; i < len && is_ws(t[i]); i++)
		;
	if (i < len && t[i] == ',') {
		/* Not the last member: its comma goes with it. */
		*from = a;
		*to = i + 1;
		return;
	}
	/* The last member: the comma before it goes, if there is one. */
	for (i = a; i > 0 && is_ws(t[i - 1]); i--)
		;
	*from = i > 0 && t[i - 1] == ',' ? i - 1 : a;
	*to = b;
}

/* The kind of the validated value of n bytes at p. */
static enum sy_json_kind
kind_at(const unsigned char *p, size_t n)
{
	size_t i;

	switch (*p) {
	case '{': return SY_JSON_OBJECT;
	case '[': return SY_JSON_ARRAY;
	case '"': return SY_JSON_STRING;
	case 't': return SY_JSON_TRUE;
	case 'f': return SY_JSON_FALSE;
	case 'n': return SY_JSON_NULL;
	}
	for (i = 0; i < n; i++)
		if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
			return SY_JSON_REAL;
	return SY_JSON_INTEGER;
}

/* The end of the validated value starting at p (before e). */
static const unsigned char *
skip_value(const unsigned char *p, const unsigned char *e)
{
	size_t depth = 0;
	int escaped;

	do {
		if (*p == '"') {
			if ((p = scan_string(p + 1, e, &escaped)) == NULL)
				return e;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if (*p == '}' || *p == ']')
			depth--;
		else if (depth == 0) {
			/* A number or a literal: up to its delimiter. */
			while (p < e && *p != ',' && *p != '}' && *p != ']' &&
			    !is_ws(*p))
				p++;
			return p;
		}
		p++;
	} while (depth > 0 && p < e);
	return p;
}

int
sy_jscan_each(const char *text, size_t len, sy_jscan_each_fn fn, void *arg)
{
	const unsigned char *p = (const unsigned char *)text, *e = p + len;
	const unsigned char *key = NULL, *v;
	size_t klen = 0;
	int object, escaped, rc;

	p = skip_ws(p, e);
	if (e - p < 2 || (*p != '{' && *p != '['))
		return 0;
	object = *p == '{';
	for (p = skip_ws(p + 1, e); p < e && *p != '}' && *p != ']';) {
		if (object) {
			key = p + 1;
			if ((p = scan_string(key, e, &escaped)) == NULL)
				return 0;
			klen = (size_t)(p - 1 - key);
			p = skip_ws(p, e);
			p = skip_ws(p + 1, e);	/* the colon */
		}
		if (p >= e)
			return 0;
		v = p;
		p = skip_value(p, e);
		if ((rc = fn(object ? (const char *)key : NULL, klen,
		    (const char *)v, (size_t)(p - v), kind_at(v, (size_t)(p - v)),
		    arg)) != 0)
			return rc;
		p = skip_ws(p, e);
		if (p < e && *p == ',')
			p = skip_ws(p + 1, e);
	}
	return 0;
}
