/* Unit tests of jscan: JSON validation as jansson does it, top-level members, integers, on a corpus, recorded payloads and mutations. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jscan.h"
#include "sy_test.h"

/* The kind jansson gives text (parsed with JSON_DECODE_ANY), or NONE. */
static enum sy_json_kind
jansson_kind(const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	enum sy_json_kind kind = SY_JSON_NONE;

	if (j == NULL)
		return SY_JSON_NONE;
	switch (json_typeof(j)) {
	case JSON_OBJECT: kind = SY_JSON_OBJECT; break;
	case JSON_ARRAY: kind = SY_JSON_ARRAY; break;
	case JSON_STRING: kind = SY_JSON_STRING; break;
	case JSON_INTEGER: kind = SY_JSON_INTEGER; break;
	case JSON_REAL: kind = SY_JSON_REAL; break;
	case JSON_TRUE: kind = SY_JSON_TRUE; break;
	case JSON_FALSE: kind = SY_JSON_FALSE; break;
	case JSON_NULL: kind = SY_JSON_NULL; break;
	}
	json_decref(j);
	return kind;
}

static enum sy_json_kind
kind_of(const char *text)
{
	return sy_jscan(text, strlen(text), NULL, 0);
}

/* Checks that jscan and jansson agree on text (len bytes); returns 1 if so. */
static int
agrees(const char *text, size_t len)
{
	enum sy_json_kind want = jansson_kind(text, len);
	enum sy_json_kind got = sy_jscan(text, len, NULL, 0);

	if (got == want)
		return 1;
	printf("# jscan says %d, jansson %d, for %zu bytes: %.*s\n", got, want,
	    len, len < 200 ? (int)len : 200, text);
	return 0;
}

/* Valid JSON, every kind, whitespace everywhere, escapes, numbers. */
static const char *const valid[] = {
	"{}", "[]", "{ }", "[ ]", " \t\r\n{} \t\r\n", "0", "-0", "1", "-1",
	"\"\"", "\"x\"", "true", "false", "null", " null ",
	"{\"a\":1}", "{ \"a\" : 1 , \"b\" : [ 1 , 2 ] }",
	"\n{\n\t\"a\"\n:\n[\r\n1\r\n,\r\n{}\r\n]\r\n}\n",
	"[1,-1,0,-0,10,0.5,-0.5,1e5,1E5,1e+5,1e-5,1.5e10,-1.25E-3,0e0,0.0]",
	"9223372036854775807", "-9223372036854775808",
	"1.7976931348623157e308", "-1.7976931348623157e308", "1e-400",
	"0e999999999999999999999", "0.000e400", "123.456e-789",
	"[\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"]",
	"\"\\u00e9 \\u00E9 caf\xc3\xa9 \\u20ac \xe2\x82\xac\"",
	"\"\\ud83d\\ude00 \xf0\x9f\x98\x80\"", "\"\\uDBFF\\uDFFF\"",
	"\"\x7f\"", "\"\xf4\x8f\xbf\xbf\"", "\"\xed\x9f\xbf\"",
	"{\"\":\"\"}", "{\"a\":{\"a\":{\"a\":{}}}}", "[[[[[[[[]]]]]]]]",
	"{\"a\":1,\"a\":2}", "[true,false,null,\"\",{},[]]",
	NULL
};

/* Not JSON, or JSON jansson refuses. */
static const char *const invalid[] = {
	"", " ", "{", "}", "[", "]", "{]", "[}", "{\"a\"}", "{\"a\":}",
	"{\"a\" 1}", "{a:1}", "{'a':1}", "{\"a\":1,}", "[1,]", "[,1]", "[1 2]",
	"{\"a\":1 \"b\":2}", "{} {}", "{}x", "[]]", "{}}", "1 2", "\"a\" \"b\"",
	"01", "-01", "00", "+1", "-", ".5", "1.", "1.e5", "1e", "1e+", "1E-",
	"0x10", "1_000", "Infinity", "-Infinity", "NaN", "nul", "nulll",
	"truex", "True", "NULL", "tru", "[tru]",
	"9223372036854775808", "-9223372036854775809",
	"100000000000000000000", "1e309", "-1e309", "1.8e308", "1e99999999999",
	"\"", "\"abc", "\"\\\"", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"",
	"\"\\u0000\"", "{\"\\u0000\":1}", "\"\\ud800\"", "\"\\udc00\"",
	"\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\ud800\\ud800\"",
	"\"a\nb\"", "\"a\tb\"", "\"\x01\"", "\"\x1f\"",
	"\"\xff\"", "\"\xc0\xaf\"", "\"\xc3\"", "\"\xe2\x82\"", "\"\x80\"",
	"\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xf5\x80\x80\x80\"",
	"\"\xe0\x80\xaf\"", "\"\xf0\x80\x80\xaf\"",
	"\xef\xbb\xbf{}", "{}\xc3\xa9", "[1]\x0b", "\x0c[]", "//\n{}",
	"{\"a\":1}/*c*/",
	NULL
};

SY_TEST(valid_corpus_is_accepted_as_jansson_accepts_it)
{
	size_t i;

	for (i = 0; valid[i] != NULL; i++) {
		SY_CHECK(kind_of(valid[i]) != SY_JSON_NONE);
		SY_CHECK(agrees(valid[i], strlen(valid[i])));
	}
}

SY_TEST(invalid_corpus_is_refused_as_jansson_refuses_it)
{
	size_t i;

	for (i = 0; invalid[i] != NULL; i++) {
		if (kind_of(invalid[i]) != SY_JSON_NONE)
			printf("# accepted: %s\n", invalid[i]);
		SY_CHECK(kind_of(invalid[i]) == SY_JSON_NONE);
		SY_CHECK(agrees(invalid[i], strlen(invalid[i])));
	}
}

SY_TEST(kinds_are_the_top_level_values_kinds)
{
	SY_CHECK_INT(kind_of(" {\"a\":[1]} "), SY_JSON_OBJECT);
	SY_CHECK_INT(kind_of("[{}]"), SY_JSON_ARRAY);
	SY_CHECK_INT(kind_of("\"{}\""), SY_JSON_STRING);
	SY_CHECK_INT(kind_of("-12"), SY_JSON_INTEGER);
	SY_CHECK_INT(kind_of("1.0"), SY_JSON_REAL);
	SY_CHECK_INT(kind_of("1e2"), SY_JSON_REAL);
	SY_CHECK_INT(kind_of("true"), SY_JSON_TRUE);
	SY_CHECK_INT(kind_of("false"), SY_JSON_FALSE);
	SY_CHECK_INT(kind_of("null"), SY_JSON_NULL);
}

SY_TEST(a_nul_byte_is_never_json)
{
	SY_CHECK_INT(sy_jscan("{}\0", 3, NULL, 0), SY_JSON_NONE);
	SY_CHECK_INT(sy_jscan("\"a\0\"", 4, NULL, 0), SY_JSON_NONE);
	SY_CHECK_INT(sy_jscan("\0{}", 3, NULL, 0), SY_JSON_NONE);
	SY_CHECK_INT(sy_jscan("{}", 2, NULL, 0), SY_JSON_OBJECT);
}

SY_TEST(special_bytes_are_seen_at_every_offset_of_a_long_string)
{
	static const char *const specials[] = {
		"\\\"", "\\\\", "\\u00e9", "\xc3\xa9", "\xe2\x82\xac",
		"\xf0\x9f\x98\x80", "\\ud83d\\ude00", "\x7f",	/* valid */
		"\"", "\\", "\x01", "\n", "\xff", "\xc3", "\xe2\x82", "\\u00g",
		"\\ud83d", "\xed\xa0\x80", NULL				/* not */
	};
	char text[128];
	size_t i, at;
	int n;

	for (i = 0; specials[i] != NULL; i++)
		for (at = 0; at < 40; at++) {
			n = snprintf(text, sizeof text, "[\"%.*s%s%.*s\"]",
			    (int)at, "abcdefghijklmnopqrstuvwxyz0123456789ABCD",
			    specials[i], 20, "abcdefghijklmnopqrstuvwxyz");
			SY_CHECK(agrees(text, (size_t)n));
			SY_CHECK_INT(sy_jscan(text, (size_t)n, NULL, 0),
			    i < 8 ? SY_JSON_ARRAY : SY_JSON_NONE);
		}
}

/* "[" × n, then inner, then "]" × n; caller frees. */
static char *
nested(size_t n, const char *open, const char *inner, const char *close)
{
	size_t lo = strlen(open), li = strlen(inner), lc = strlen(close), i;
	char *s = malloc(n * (lo + lc) + li + 1), *p = s;

	for (i = 0; i < n; i++, p += lo)
		memcpy(p, open, lo);
	memcpy(p, inner, li);
	p += li;
	for (i = 0; i < n; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	return s;
}

SY_TEST(nesting_is_limited_to_jansson_depth)
{
	static const struct {
		size_t n;
		const char *open, *inner, *close;
		enum sy_json_kind want;
	} cases[] = {
		{ 2048, "[", "", "]", SY_JSON_ARRAY },
		{ 2049, "[", "", "]", SY_JSON_NONE },
		{ 2047, "[", "1", "]", SY_JSON_ARRAY },
		{ 2048, "[", "1", "]", SY_JSON_NONE },
		{ 2047, "{\"a\":", "{}", "}", SY_JSON_OBJECT },
		{ 2048, "{\"a\":", "{}", "}", SY_JSON_NONE },
		{ 1000, "[{\"k\":", "[]", "}]", SY_JSON_ARRAY },
		{ 1024, "[{\"k\":", "[]", "}]", SY_JSON_NONE },
		{ 5000, "[", "", "", SY_JSON_NONE },
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		s = nested(cases[i].n, cases[i].open, cases[i].inner,
		    cases[i].close);
		SY_CHECK_INT(kind_of(s), cases[i].want);
		SY_CHECK(agrees(s, strlen(s)));
		free(s);
	}
}

SY_TEST(integers_are_read_to_the_int64_limits)
{
	static const char *const texts[] = {
		"0", "-0", "7", "-7", "31", "1234567890123",
		"9223372036854775807", "-9223372036854775808",
		"-9223372036854775807", NULL
	};
	size_t i;

	for (i = 0; texts[i] != NULL; i++) {
		SY_CHECK_INT(kind_of(texts[i]), SY_JSON_INTEGER);
		SY_CHECK(sy_jscan_integer(texts[i], strlen(texts[i])) ==
		    strtoll(texts[i], NULL, 10));
	}
	SY_CHECK(sy_jscan_integer("-9223372036854775808", 20) == INT64_MIN);
}

/* 2^1024 - 2^970: the least magnitude strtod rounds to infinity. */
static const char dbl_edge[] = "1797693134862315807937289714053034150799341"
    "3271003782693617377898044496829276475094664901797758720709633028641669"
    "2887910946555547851940402630657488671505820681908902000708383676273854"
    "8458177115317644757302700698555713669596228429148198608349364752927190"
    "74168444365510704342711559699508093042880177904174497792";

/* Checks that text is judged as jansson judges it and has kind want. */
static void
check_real(const char *text, enum sy_json_kind want)
{
	SY_CHECK(agrees(text, strlen(text)));
	if (kind_of(text) != want)
		printf("# %s\n", text);
	SY_CHECK_INT(kind_of(text), want);
}

SY_TEST(reals_overflow_exactly_where_strtod_says)
{
	char buf[1024];
	double v;
	int d;

	SY_CHECK_INT(strlen(dbl_edge), 309);
	snprintf(buf, sizeof buf, "%.1s.%se308", dbl_edge, dbl_edge + 1);
	check_real(buf, SY_JSON_NONE);
	buf[strlen(buf) - 6] = '1';		/* ...7791e308: just under */
	check_real(buf, SY_JSON_REAL);
	snprintf(buf, sizeof buf, "-%.3s.%se306", dbl_edge, dbl_edge + 3);
	check_real(buf, SY_JSON_NONE);
	snprintf(buf, sizeof buf, "0.000%se312", dbl_edge);
	check_real(buf, SY_JSON_NONE);
	snprintf(buf, sizeof buf, "0.000%.308s0000001e312", dbl_edge);
	check_real(buf, SY_JSON_REAL);		/* ...7910000001: under */
	snprintf(buf, sizeof buf, "000%.1s.%s00001e0308", dbl_edge,
	    dbl_edge + 1);
	check_real(buf, SY_JSON_NONE);		/* "0001" is not JSON */
	snprintf(buf, sizeof buf, "%.1s.%s00001e+0308", dbl_edge, dbl_edge + 1);
	check_real(buf, SY_JSON_NONE);
	snprintf(buf, sizeof buf, "%s.0e-1", dbl_edge);
	check_real(buf, SY_JSON_REAL);		/* an integer's digits, / 10 */
	snprintf(buf, sizeof buf, "%s.0", dbl_edge);
	check_real(buf, SY_JSON_NONE);
	check_real("1e308", SY_JSON_REAL);
	check_real("10e308", SY_JSON_NONE);
	check_real("0.1e309", SY_JSON_REAL);
	check_real("0.00000e99999999999999999999", SY_JSON_REAL);
	check_real("1e-99999999999999999999", SY_JSON_REAL);

	/* Every double near DBL_MAX, at precisions either side of the edge. */
	for (d = 1; d < 40; d++)
		for (v = 1.79769313486231e308; isfinite(v);
		    v = nextafter(v, INFINITY)) {
			snprintf(buf, sizeof buf, "%.*e", d, v);
			SY_CHECK(agrees(buf, strlen(buf)));
		}
}

/* A top-level member of text named key, found by sy_jscan. */
static struct sy_jscan_member
member(const char *text, const char *key)
{
	struct sy_jscan_member m = { key, SY_JSON_NONE, NULL, 0, NULL };

	sy_jscan(text, strlen(text), &m, 1);
	return m;
}

/* The text of member key of text, or "-" when absent; static buffer. */
static const char *
member_text(const char *text, const char *key)
{
	static char buf[256];
	struct sy_jscan_member m = member(text, key);

	if (m.value == NULL)
		return "-";
	snprintf(buf, sizeof buf, "%.*s", (int)m.len, m.value);
	return buf;
}

SY_TEST(member_is_found_at_any_position)
{
	SY_CHECK_STR(member_text("{\"usage\":{\"a\":1}}", "usage"),
	    "{\"a\":1}");
	SY_CHECK_STR(member_text("{\"x\":1,\"usage\":{\"a\":1},\"y\":[2]}",
	    "usage"), "{\"a\":1}");
	SY_CHECK_STR(member_text("{\"x\":[1,{\"b\":2}],\"usage\" : { } }",
	    "usage"), "{ }");
	SY_CHECK_STR(member_text(" { \"a\" : 1 , \"usage\" :\n[ 1 ,2 ]\n} ",
	    "usage"), "[ 1 ,2 ]");
	SY_CHECK_STR(member_text("{\"usage\":\"s\\\"\"}", "usage"),
	    "\"s\\\"\"");
	SY_CHECK_STR(member_text("{\"usage\":-1.5e3,\"z\":0}", "usage"),
	    "-1.5e3");
	SY_CHECK_INT(member("{\"usage\":null}", "usage").kind, SY_JSON_NULL);
	SY_CHECK_INT(member("{\"usage\":true}", "usage").kind, SY_JSON_TRUE);
	SY_CHECK_INT(member("{\"usage\":12}", "usage").kind, SY_JSON_INTEGER);
}

SY_TEST(nested_members_are_not_top_level_members)
{
	const char *text = "{\"choices\":[{\"usage\":{\"a\":1}}],"
	    "\"x\":{\"usage\":2,\"error\":{}},\"usage_\":3,\"usag\":4,"
	    "\"s\":\"\\\"usage\\\":{}\"}";

	SY_CHECK_STR(member_text(text, "usage"), "-");
	SY_CHECK_STR(member_text(text, "error"), "-");
	SY_CHECK_INT(member(text, "usage").kind, SY_JSON_NONE);
	SY_CHECK_STR(member_text("[{\"usage\":1}]", "usage"), "-");
	SY_CHECK_STR(member_text("{\"a\":{\"usage\":1},\"usage\":2}", "usage"),
	    "2");
}

SY_TEST(repeated_member_is_the_last_one_as_in_jansson)
{
	SY_CHECK_STR(member_text("{\"usage\":{},\"usage\":7}", "usage"), "7");
	SY_CHECK_STR(member_text("{\"usage\":7,\"a\":0,\"usage\":{}}", "usage"),
	    "{}");
}

SY_TEST(escaped_key_matches_its_decoded_name)
{
	SY_CHECK_STR(member_text("{\"us\\u0061ge\":1}", "usage"), "1");
	SY_CHECK_STR(member_text("{\"\\u0075sage\":2}", "usage"), "2");
	SY_CHECK_STR(member_text("{\"caf\\u00e9\":3}", "caf\xc3\xa9"), "3");
	SY_CHECK_STR(member_text("{\"caf\xc3\xa9\":4}", "caf\xc3\xa9"), "4");
	SY_CHECK_STR(member_text("{\"\\ud83d\\ude00\":5}", "\xf0\x9f\x98\x80"),
	    "5");
	SY_CHECK_STR(member_text("{\"a\\\"b\":6}", "a\"b"), "6");
	SY_CHECK_STR(member_text("{\"a\\\\b\":7}", "a\\b"), "7");
	SY_CHECK_STR(member_text("{\"a\\/b\\n\":8}", "a/b\n"), "8");
	SY_CHECK_STR(member_text("{\"usage\\n\":1}", "usage"), "-");
	SY_CHECK_STR(member_text("{\"usag\\u0065x\":1}", "usage"), "-");
	SY_CHECK_STR(member_text("{\"u\":1}", "usage"), "-");
	SY_CHECK_STR(member_text("{\"\":9}", ""), "9");
}

SY_TEST(no_member_is_found_in_what_is_not_json)
{
	struct sy_jscan_member m[2] = { { "usage", SY_JSON_NONE, NULL, 0, NULL },
	    { "id", SY_JSON_NONE, NULL, 0, NULL } };

	SY_CHECK_INT(sy_jscan("{\"usage\":{},\"id\":1,}", 20, m, 2),
	    SY_JSON_NONE);
	SY_CHECK(m[0].value == NULL && m[0].kind == SY_JSON_NONE);
	SY_CHECK(m[1].value == NULL && m[1].kind == SY_JSON_NONE);
	SY_CHECK_INT(sy_jscan("{\"usage\":{},\"id\":1}", 19, m, 2),
	    SY_JSON_OBJECT);
	SY_CHECK_INT(m[0].kind, SY_JSON_OBJECT);
	SY_CHECK_INT(m[1].kind, SY_JSON_INTEGER);
	SY_CHECK_INT(sy_jscan("{\"usage\":{},\"id\":1} x", 21, m, 2),
	    SY_JSON_NONE);
	SY_CHECK(m[0].value == NULL && m[1].value == NULL);
}

SY_TEST(empty_tells_empty_containers)
{
	SY_CHECK(sy_jscan_empty("[]", 2));
	SY_CHECK(sy_jscan_empty("[ \n]", 4));
	SY_CHECK(sy_jscan_empty("{ }", 3));
	SY_CHECK(!sy_jscan_empty("[0]", 3));
	SY_CHECK(!sy_jscan_empty("[ {} ]", 6));
	SY_CHECK(!sy_jscan_empty("{\"a\":1}", 7));
}

/* Checks a recorded answer: agreement, members, every prefix refused. */
static void
check_recorded(const char *name, const char *key, enum sy_json_kind kind)
{
	size_t len, i;
	char *text = sy_test_fixture(name, &len);
	struct sy_jscan_member m = { key, SY_JSON_NONE, NULL, 0, NULL };
	int failed = 0;

	SY_CHECK_INT(sy_jscan(text, len, &m, 1), SY_JSON_OBJECT);
	SY_CHECK_INT(m.kind, kind);
	SY_CHECK(agrees(text, len));
	for (i = 0; i < len && !failed; i++)
		if (text[i] != ' ' && text[i] != '\n' &&
		    sy_jscan(text, i, NULL, 0) != SY_JSON_NONE) {
			printf("# prefix of %zu bytes accepted\n", i);
			failed = 1;
		}
	SY_CHECK(!failed);
	free(text);
}

SY_TEST(recorded_answers_are_objects_and_their_prefixes_are_not)
{
	check_recorded("llama-server/chat.json", "usage", SY_JSON_OBJECT);
	check_recorded("llama-server/completion.json", "usage",
	    SY_JSON_OBJECT);
	check_recorded("llama-server/models.json", "data", SY_JSON_ARRAY);
	check_recorded("llama-server/embeddings_2inputs_truncated.json",
	    "usage", SY_JSON_OBJECT);
}

SY_TEST(recorded_usage_reads_as_jansson_reads_it)
{
	size_t len;
	char *text = sy_test_fixture("llama-server/chat.json", &len);
	struct sy_jscan_member top = { "usage", SY_JSON_NONE, NULL, 0, NULL };
	struct sy_jscan_member u[2] = {
		{ "prompt_tokens", SY_JSON_NONE, NULL, 0, NULL },
		{ "completion_tokens", SY_JSON_NONE, NULL, 0, NULL }
	};

	SY_CHECK_INT(sy_jscan(text, len, &top, 1), SY_JSON_OBJECT);
	SY_CHECK_INT(sy_jscan(top.value, top.len, u, 2), SY_JSON_OBJECT);
	SY_CHECK_INT(u[0].kind, SY_JSON_INTEGER);
	SY_CHECK_INT(sy_jscan_integer(u[0].value, u[0].len), 52);
	SY_CHECK_INT(sy_jscan_integer(u[1].value, u[1].len), 8);
	free(text);
}

/* A small deterministic generator for the mutation test. */
static uint32_t
next_rand(uint64_t *state)
{
	*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*state >> 33);
}

/*
 * Checks agreement with jansson on n mutations of seed: bytes replaced by
 * JSON-significant ones, inserted, deleted, and truncations.  NUL bytes are
 * left out: jansson skips one that follows a number or a literal.
 */
static int
check_mutations(const char *seed, int n, uint64_t *state)
{
	static const char alphabet[] = "{}[]\":,\\ \n0123456789-+.eEtrufalsn"
	    "ux\x01\x1f\x7f\x80\xbf\xc3\xa9\xe2\xed\xf0\xf4\xff";
	char buf[4096];
	size_t len, at, i;
	int k, edits, bad = 0;

	for (k = 0; k < n && bad < 5; k++) {
		len = strlen(seed);
		if (len >= sizeof buf - 16)
			len = sizeof buf - 16;
		memcpy(buf, seed, len);
		edits = 1 + (int)(next_rand(state) % 3);
		while (edits-- > 0 && len > 0) {
			at = next_rand(state) % len;
			switch (next_rand(state) % 4) {
			case 0:
				buf[at] = alphabet[next_rand(state) %
				    (sizeof alphabet - 1)];
				break;
			case 1:
				memmove(buf + at + 1, buf + at, len - at);
				buf[at] = alphabet[next_rand(state) %
				    (sizeof alphabet - 1)];
				len++;
				break;
			case 2:
				memmove(buf + at, buf + at + 1, len - at - 1);
				len--;
				break;
			default:
				len = at;
				break;
			}
		}
		for (i = 0; i < len; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		if (!agrees(buf, len))
			bad++;
	}
	return bad == 0;
}

SY_TEST(mutations_are_judged_as_jansson_judges_them)
{
	static const char *const seeds[] = {
		"{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":"
		"1700000000,\"choices\":[{\"index\":0,\"message\":{\"role\":"
		"\"assistant\",\"content\":\"Caf\xc3\xa9 \\u00e9 \\\"q\\\" \\\\ "
		"\\ud83d\\ude00\"},\"finish_reason\":\"stop\",\"logprobs\":null}],"
		"\"usage\":{\"prompt_tokens\":52,\"completion_tokens\":8,"
		"\"total_tokens\":60,\"prompt_tokens_details\":{\"cached_tokens\":"
		"0}},\"timings\":{\"ms\":1.25e-3,\"x\":-0.5,\"t\":true,\"f\":false}}",
		"[1, -2.5e+10, 0, [], {}, [[{\"a\": [null]}]], \"\\u0041\"]",
		"{\"error\":{\"code\":500,\"message\":\"x\",\"type\":\"server_error\"}}",
		"\"\\u00e9\\ud83d\\ude00\\n\xe2\x82\xac\"",
		"9223372036854775807",
		"1.7976931348623157e308",
	};
	uint64_t state = 42;
	size_t i;

	for (i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
		SY_CHECK(check_mutations(seeds[i], 20000, &state));
}

/* Removes member key from text with sy_jscan_cut into out (NUL-terminated). */
static void
cut_member(const char *text, const char *key, char *out)
{
	struct sy_jscan_member m = { .key = key };
	size_t len = strlen(text), from, to;

	sy_jscan(text, len, &m, 1);
	sy_jscan_cut(text, len, &m, &from, &to);
	memcpy(out, text, from);
	strcpy(out + from, text + to);
}

SY_TEST(cut_takes_a_member_out_wherever_it_stands)
{
	char out[256];
	json_t *parsed;

	cut_member("{\"usage\":{\"a\":1},\"b\":2}", "usage", out);
	SY_CHECK_STR(out, "{\"b\":2}");
	cut_member("{\"b\":2, \"usage\" : {\"a\":[1,2]} , \"c\":3}", "usage",
	    out);
	SY_CHECK_STR(out, "{\"b\":2,  \"c\":3}");
	cut_member("{\"b\":2 , \"usage\":{\"a\":1} }", "usage", out);
	SY_CHECK_STR(out, "{\"b\":2  }");
	cut_member("{ \"usage\":null }", "usage", out);
	SY_CHECK_STR(out, "{  }");
	cut_member("{\"u\\u0073age\":1,\"x\":{\"usage\":1}}", "usage", out);
	SY_CHECK_STR(out, "{\"x\":{\"usage\":1}}");
	parsed = json_loads(out, 0, NULL);
	SY_CHECK(json_is_object(parsed));
	json_decref(parsed);
}

/* What sy_jscan_each saw, one line per member or element. */
static int
each_line(const char *k, size_t kn, const char *v, size_t vn,
    enum sy_json_kind kind, void *arg)
{
	char *buf = arg;
	size_t at = strlen(buf);

	snprintf(buf + at, 1024 - at, "%.*s=%.*s:%d;", (int)kn, k ? k : "",
	    (int)vn, v, (int)kind);
	return strncmp(v, "\"stop\"", 6) == 0 ? 7 : 0;
}

SY_TEST(each_walks_members_and_elements_as_written)
{
	static const char obj[] = "{ \"a\" : [1, {\"b\":\"]}\"}] , \"c\":-2.5e3,"
	    "\"d\":null,\"e\\\"\":{}}";
	static const char arr[] = "[ true,\"x\" ,12,[],\"stop\",false]";
	char buf[1024];

	SY_CHECK_INT(sy_jscan(obj, strlen(obj), NULL, 0), SY_JSON_OBJECT);
	buf[0] = '\0';
	SY_CHECK_INT(sy_jscan_each(obj, strlen(obj), each_line, buf), 0);
	SY_CHECK_STR(buf, "a=[1, {\"b\":\"]}\"}]:2;c=-2.5e3:5;d=null:8;"
	    "e\\\"={}:1;");
	buf[0] = '\0';
	SY_CHECK_INT(sy_jscan_each(arr, strlen(arr), each_line, buf), 7);
	SY_CHECK_STR(buf, "=true:6;=\"x\":3;=12:4;=[]:2;=\"stop\":3;");
	buf[0] = '\0';
	SY_CHECK_INT(sy_jscan_each("[]", 2, each_line, buf), 0);
	SY_CHECK_INT(sy_jscan_each("{ }", 3, each_line, buf), 0);
	SY_CHECK_STR(buf, "");
}

int
main(void)
{
	SY_RUN(valid_corpus_is_accepted_as_jansson_accepts_it);
	SY_RUN(invalid_corpus_is_refused_as_jansson_refuses_it);
	SY_RUN(kinds_are_the_top_level_values_kinds);
	SY_RUN(a_nul_byte_is_never_json);
	SY_RUN(special_bytes_are_seen_at_every_offset_of_a_long_string);
	SY_RUN(nesting_is_limited_to_jansson_depth);
	SY_RUN(integers_are_read_to_the_int64_limits);
	SY_RUN(reals_overflow_exactly_where_strtod_says);
	SY_RUN(member_is_found_at_any_position);
	SY_RUN(nested_members_are_not_top_level_members);
	SY_RUN(repeated_member_is_the_last_one_as_in_jansson);
	SY_RUN(escaped_key_matches_its_decoded_name);
	SY_RUN(no_member_is_found_in_what_is_not_json);
	SY_RUN(empty_tells_empty_containers);
	SY_RUN(recorded_answers_are_objects_and_their_prefixes_are_not);
	SY_RUN(recorded_usage_reads_as_jansson_reads_it);
	SY_RUN(mutations_are_judged_as_jansson_judges_them);
	SY_RUN(cut_takes_a_member_out_wherever_it_stands);
	SY_RUN(each_walks_members_and_elements_as_written);
	return sy_test_done();
}
