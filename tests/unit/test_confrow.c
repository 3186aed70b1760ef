/* Unit tests of the config rows: the engine on a table of every type, and the reference in docs/configuration.md against every row table. */
#include <float.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "confrow.h"
#include "config.h"
#include "sy_test.h"

/* ==== The engine, on a table of every type ==== */

struct sample {
	unsigned count;
	uint64_t big;
	size_t bytes;
	int port;
	unsigned wait_ms;
	double ratio;
	double share;
	int on;
	char *label;
	char *peer;
	char *path;
	unsigned color;
	unsigned flags;
	char **tags;
	size_t ntags;
	char *secret;
	char *secret_env;
	struct {
		unsigned depth;
	} inner;
};

static const char *const colors[] = { "red", "green", "blue", NULL };

static const struct sy_conf_row inner_rows[] = {
	{ .name = "depth", .type = SY_CONF_UINT, .def.u = 3, .max = 9 },
	{ .name = NULL }
};

static const struct sy_conf_table inner_table = {
	.path = "inner", .rows = inner_rows, .size = sizeof(unsigned)
};

#define S(field) offsetof(struct sample, field)

static const struct sy_conf_row sample_rows[] = {
	{ .name = "count", .type = SY_CONF_UINT, .offset = S(count),
	  .def.u = 7, .min = 1, .max = 10 },
	{ .name = "big", .type = SY_CONF_UINT64, .offset = S(big),
	  .def.u = 5000000000ULL, .max = 9000000000LL },
	{ .name = "bytes", .type = SY_CONF_SIZE, .offset = S(bytes),
	  .def.u = 64, .max = 1 << 20 },
	{ .name = "port", .type = SY_CONF_INT, .offset = S(port),
	  .def.u = 80, .min = 1, .max = 65535 },
	{ .name = "wait_ms", .type = SY_CONF_MS, .offset = S(wait_ms),
	  .def.u = 250, .max = 1000 },
	{ .name = "ratio", .type = SY_CONF_NUMBER, .offset = S(ratio),
	  .def.d = 1.5, .lo = 0, .hi = DBL_MAX },
	{ .name = "share", .type = SY_CONF_FRACTION, .offset = S(share),
	  .def.d = 0.25 },
	{ .name = "on", .type = SY_CONF_BOOL, .offset = S(on), .def.u = 1 },
	{ .name = "label", .type = SY_CONF_STRING, .offset = S(label),
	  .def.s = "none", .max = 8 },
	{ .name = "peer", .type = SY_CONF_STRING_OR_NULL, .offset = S(peer),
	  .def.s = "h:1", .what = "\"HOST:PORT\"" },
	{ .name = "path", .type = SY_CONF_PATH, .offset = S(path),
	  .def.s = "/x" },
	{ .name = "color", .type = SY_CONF_WORD, .offset = S(color),
	  .def.u = 1, .words = colors, .what = "color" },
	{ .name = "flags", .type = SY_CONF_FLAGS, .offset = S(flags),
	  .def.u = 1, .words = colors, .what = "color" },
	{ .name = "tags", .type = SY_CONF_STRINGS, .offset = S(tags),
	  .count = S(ntags), .what = "tag" },
	{ .name = "secret_env", .type = SY_CONF_SECRET, .offset = S(secret),
	  .keep_name = 1, .name_at = S(secret_env), .what = "a secret" },
	{ .name = "inner", .type = SY_CONF_OBJECT, .offset = S(inner),
	  .table = &inner_table },
	{ .name = NULL }
};

static const struct sy_conf_table sample_table = {
	.path = "", .rows = sample_rows, .size = sizeof(struct sample)
};

/* Loads text against the sample table; returns the error (malloc'd) or NULL. */
static char *
sample_load(const char *text, struct sample *s)
{
	char *err;

	memset(s, 0, sizeof *s);
	if (sy_conf_load(text, "s.json", &sample_table, s, &err) == 0)
		return NULL;
	return err;
}

/* Checks that text fails against the sample table with exactly want. */
static void
sample_error(const char *text, const char *want)
{
	struct sample s;
	char *err = sample_load(text, &s);

	SY_CHECK_STR(err, want);
	free(err);
	sy_conf_free(&sample_table, &s);
}

SY_TEST(left_out_keys_take_the_defaults_of_their_rows)
{
	struct sample s;
	char *err = sample_load("{}", &s);

	SY_CHECK(err == NULL);
	SY_CHECK_INT(s.count, 7);
	SY_CHECK(s.big == 5000000000ULL);
	SY_CHECK_INT(s.bytes, 64);
	SY_CHECK_INT(s.port, 80);
	SY_CHECK_INT(s.wait_ms, 250);
	SY_CHECK(s.ratio == 1.5 && s.share == 0.25);
	SY_CHECK_INT(s.on, 1);
	SY_CHECK_STR(s.label, "none");
	SY_CHECK_STR(s.peer, "h:1");
	SY_CHECK_STR(s.path, "/x");
	SY_CHECK_INT(s.color, 1);
	SY_CHECK_INT(s.flags, 1);
	SY_CHECK(s.tags == NULL && s.ntags == 0);
	SY_CHECK(s.secret == NULL && s.secret_env == NULL);
	SY_CHECK_INT(s.inner.depth, 3);
	free(err);
	sy_conf_free(&sample_table, &s);
}

SY_TEST(given_keys_are_read_into_their_fields)
{
	struct sample s;
	char *err;

	setenv("SY_TEST_SAMPLE_SECRET", "hush", 1);
	err = sample_load("{\"count\": 10, \"big\": 9000000000, \"bytes\": 0,"
	    " \"port\": 443, \"wait_ms\": 0, \"ratio\": 3, \"share\": 1,"
	    " \"on\": false, \"label\": \"abc\", \"peer\": null,"
	    " \"path\": \"/a/b\", \"color\": \"blue\","
	    " \"flags\": [\"green\", \"blue\"], \"tags\": [\"x\", \"y\"],"
	    " \"secret_env\": \"SY_TEST_SAMPLE_SECRET\","
	    " \"inner\": {\"depth\": 9}}", &s);
	unsetenv("SY_TEST_SAMPLE_SECRET");
	SY_CHECK(err == NULL);
	SY_CHECK_INT(s.count, 10);
	SY_CHECK(s.big == 9000000000ULL);
	SY_CHECK_INT(s.bytes, 0);
	SY_CHECK_INT(s.port, 443);
	SY_CHECK_INT(s.wait_ms, 0);
	SY_CHECK(s.ratio == 3 && s.share == 1);
	SY_CHECK_INT(s.on, 0);
	SY_CHECK_STR(s.label, "abc");
	SY_CHECK(s.peer == NULL);
	SY_CHECK_STR(s.path, "/a/b");
	SY_CHECK_INT(s.color, 2);
	SY_CHECK_INT(s.flags, 6);
	SY_CHECK_INT(s.ntags, 2);
	if (s.ntags == 2) {
		SY_CHECK_STR(s.tags[0], "x");
		SY_CHECK_STR(s.tags[1], "y");
	}
	SY_CHECK_STR(s.secret, "hush");
	SY_CHECK_STR(s.secret_env, "SY_TEST_SAMPLE_SECRET");
	SY_CHECK_INT(s.inner.depth, 9);
	free(err);
	sy_conf_free(&sample_table, &s);
}

SY_TEST(values_out_of_their_rows_bounds_name_the_bounds)
{
	sample_error("{\"count\": 11,\n \"big\": -1,\n \"ratio\": -2,\n"
	    " \"share\": 1.5,\n \"label\": \"123456789\",\n"
	    " \"inner\": {\"depth\": 10}}",
	    "s.json:1:2: count: must be from 1 to 10, got 11\n"
	    "s.json:2:2: big: must be from 0 to 9000000000, got -1\n"
	    "s.json:3:2: ratio: must not be negative, got -2\n"
	    "s.json:4:2: share: must be from 0 to 1, got 1.5\n"
	    "s.json:5:2: label: at most 8 bytes, got 9\n"
	    "s.json:6:12: inner.depth: must be from 0 to 9, got 10");
}

SY_TEST(values_of_the_wrong_type_are_rejected)
{
	sample_error("{\"count\": \"1\",\n \"on\": 1,\n \"peer\": 5,\n"
	    " \"path\": \"x\",\n \"color\": \"pink\",\n"
	    " \"flags\": [\"red\", \"red\"],\n \"tags\": [\"a\", \"\", \"a\"],\n"
	    " \"inner\": []}",
	    "s.json:1:2: count: expected an integer, got a string\n"
	    "s.json:2:2: on: expected true or false, got an integer\n"
	    "s.json:3:2: peer: expected \"HOST:PORT\" or null, got an integer\n"
	    "s.json:4:2: path: must start with '/', got \"x\"\n"
	    "s.json:5:2: color: unknown color \"pink\"; known: red, green, "
	    "blue\n"
	    "s.json:6:19: flags[1]: duplicate color \"red\"\n"
	    "s.json:7:16: tags[1]: expected a tag, got \"\"\n"
	    "s.json:7:20: tags[2]: duplicate tag \"a\"\n"
	    "s.json:8:2: inner: expected an object, got an array");
}

SY_TEST(unknown_keys_list_the_known_ones_from_the_rows)
{
	sample_error("{\"colour\": \"red\", \"secret\": \"x\"}",
	    "s.json:1:2: colour: unknown key \"colour\"; known: count, big, "
	    "bytes, port, wait_ms, ratio, share, on, label, peer, path, color, "
	    "flags, tags, secret_env, inner\n"
	    "s.json:1:19: secret: a secret does not belong in the config file; "
	    "put it in an environment variable and name that in "
	    "\"secret_env\"");
}

SY_TEST(copies_compare_equal_until_a_field_changes)
{
	struct sample a, b;
	char *err = sample_load("{\"tags\": [\"x\"], \"label\": \"l\"}", &a);

	SY_CHECK(err == NULL);
	memset(&b, 0, sizeof b);
	sy_conf_copy(&sample_table, &b, &a);
	SY_CHECK(b.label != a.label);
	SY_CHECK_INT(sy_conf_differ(&sample_table, &a, &b), 0);
	b.inner.depth++;
	SY_CHECK_INT(sy_conf_differ(&sample_table, &a, &b), 1);
	b.inner.depth--;
	free(b.tags[0]);
	b.tags[0] = strdup("z");
	SY_CHECK_INT(sy_conf_differ(&sample_table, &a, &b), 1);
	free(err);
	sy_conf_free(&sample_table, &a);
	sy_conf_free(&sample_table, &b);
}

/* ==== The reference against the rows ==== */

#define MAXDOC	64		/* reference tables */
#define MAXKEYS	32		/* keys of one */

/* One reference table of docs/configuration.md. */
struct doc_table {
	char path[64];			/* from its "<!-- keys: PATH -->" line */
	int line;
	size_t n;
	char keys[MAXKEYS][48];
	char defaults[MAXKEYS][128];	/* the Default column */
};

static struct doc_table docs[MAXDOC];
static size_t ndocs;
static int docs_read;

/* Copies the cell of row (a table line) that starts at *p into buf. */
static void
cell(const char **p, char *buf, size_t len)
{
	const char *end = strchr(*p, '|');
	size_t n;

	if (end == NULL)
		end = *p + strlen(*p);
	while (**p == ' ')
		(*p)++;
	n = (size_t)(end - *p);
	while (n > 0 && (*p)[n - 1] == ' ')
		n--;
	snprintf(buf, len, "%.*s", (int)n, *p);
	*p = *end == '|' ? end + 1 : end;
}

/* Reads the reference tables of docs/configuration.md once; 0 or -1. */
static int
read_docs(void)
{
	const char *src = getenv("SY_SRCDIR");
	char file[512], line[4096], marker[64] = "", key[64], type[64];
	struct doc_table *d = NULL;
	const char *p;
	int lineno = 0, unmarked = 0, marked = 0;
	FILE *f;

	if (docs_read)
		return 0;
	snprintf(file, sizeof file, "%s/docs/configuration.md",
	    src != NULL ? src : ".");
	if ((f = fopen(file, "r")) == NULL) {
		printf("# cannot read %s\n", file);
		return -1;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "<!-- keys: %63s -->", marker) == 1) {
			if (strcmp(marker, "(top)") == 0)
				marker[0] = '\0';
			marked = 1;
			continue;
		}
		if (strncmp(line, "| Key | Type | Default |", 24) == 0) {
			if (!marked) {
				printf("# docs line %d: a reference table "
				    "without a keys line before it\n", lineno);
				unmarked = 1;
			}
			marked = 0;
			if (ndocs == MAXDOC)
				break;
			d = &docs[ndocs++];
			snprintf(d->path, sizeof d->path, "%s", marker);
			d->line = lineno;
			marker[0] = '\0';
			continue;
		}
		if (d == NULL || line[0] != '|') {
			if (line[0] != '|')
				d = NULL;
			continue;
		}
		p = line + 1;
		cell(&p, key, sizeof key);
		if (key[0] != '`' || d->n == MAXKEYS)
			continue;
		snprintf(d->keys[d->n], sizeof d->keys[d->n], "%.*s",
		    (int)strcspn(key + 1, "`"), key + 1);
		cell(&p, type, sizeof type);
		cell(&p, d->defaults[d->n], sizeof d->defaults[d->n]);
		d->n++;
	}
	fclose(f);
	docs_read = 1;
	return unmarked ? -1 : 0;
}

/* The documented Default of key in the tables of path, or NULL. */
static const char *
doc_default(const char *path, const char *key)
{
	size_t i, j;

	for (i = 0; i < ndocs; i++)
		for (j = 0; j < docs[i].n; j++)
			if (strcmp(docs[i].path, path) == 0 &&
			    strcmp(docs[i].keys[j], key) == 0)
				return docs[i].defaults[j];
	return NULL;
}

/* Calls fn on every table: the registry's and their plug-ins'. */
static void
each_table(void (*fn)(const struct sy_conf_table *, void *), void *arg)
{
	const struct sy_conf_table *ext[16];
	const struct sy_conf_row *row;
	size_t i, j, n;

	for (i = 0; sy_conf_tables[i] != NULL; i++) {
		fn(sy_conf_tables[i], arg);
		for (row = sy_conf_tables[i]->rows; row->name != NULL; row++) {
			if (row->type != SY_CONF_PLUGIN)
				continue;
			n = row->plugins(ext, 16);
			for (j = 0; j < n; j++)
				fn(ext[j], arg);
		}
	}
}

/*
 * Checks that each row of t is documented under t's path, and that a
 * literal default in the docs is the row's.
 */
static void
check_rows_documented(const struct sy_conf_table *t, void *arg)
{
	const struct sy_conf_row *row;
	const char *def;
	char want[128];

	for (row = t->rows; row->name != NULL; row++) {
		if (row->type == SY_CONF_PLUGIN)
			continue;
		if ((def = doc_default(t->path, row->name)) == NULL) {
			printf("# %s%s%s is not documented in the table of "
			    "\"%s\"\n", t->path, *t->path ? "." : "",
			    row->name, t->path);
			sy_test_cur_failed = 1;
			continue;
		}
		want[0] = '\0';
		if (row->required)
			snprintf(want, sizeof want, "required");
		else if (row->type == SY_CONF_BOOL)
			snprintf(want, sizeof want, "`%s`", row->def.u ?
			    "true" : "false");
		else if (row->def.s != NULL && (row->type == SY_CONF_STRING ||
		    row->type == SY_CONF_STRING_OR_NULL ||
		    row->type == SY_CONF_PATH || row->type == SY_CONF_CUSTOM))
			snprintf(want, sizeof want, "`\"%s\"`", row->def.s);
		else if ((row->type == SY_CONF_NUMBER ||
		    row->type == SY_CONF_FRACTION) && def[0] == '`' &&
		    def[1] >= '0' && def[1] <= '9')
			snprintf(want, sizeof want, "`%g`", row->def.d);
		else if ((row->type <= SY_CONF_MS) && def[0] == '`' &&
		    def[1] >= '0' && def[1] <= '9')
			snprintf(want, sizeof want, "`%llu`", row->def.u);
		if (want[0] != '\0' && strncmp(def, want, strlen(want)) != 0) {
			printf("# %s%s%s: documented default %s, the row "
			    "says %s\n", t->path, *t->path ? "." : "",
			    row->name, def, want);
			sy_test_cur_failed = 1;
		}
	}
}

struct find {
	const char *path;
	const char *key;
	int found;
};

static void
find_row(const struct sy_conf_table *t, void *arg)
{
	struct find *f = arg;

	if (strcmp(t->path, f->path) == 0 &&
	    sy_conf_row_find(t, f->key) != NULL)
		f->found = 1;
}

SY_TEST(every_row_is_documented_under_its_object_with_its_default)
{
	SY_CHECK_INT(read_docs(), 0);
	each_table(check_rows_documented, NULL);
}

SY_TEST(every_documented_key_has_a_row)
{
	struct find f;
	size_t i, j;

	SY_CHECK_INT(read_docs(), 0);
	SY_CHECK(ndocs > 10);
	for (i = 0; i < ndocs; i++) {
		for (j = 0; j < docs[i].n; j++) {
			f.path = docs[i].path;
			f.key = docs[i].keys[j];
			f.found = 0;
			each_table(find_row, &f);
			if (!f.found) {
				printf("# docs line %d: \"%s\" in the table of "
				    "\"%s\" has no row\n", docs[i].line,
				    f.key, f.path);
				sy_test_cur_failed = 1;
			}
		}
	}
}

SY_TEST(every_kind_with_keys_is_reached_from_the_backend_table)
{
	const struct sy_conf_table *ext[16];
	const struct sy_backend_kind *azure = sy_backend_kind_find("azure");
	size_t n = sy_backend_kind_params(ext, 16), i;
	int found = 0;

	for (i = 0; i < n; i++) {
		SY_CHECK_STR(ext[i]->path, "backends[]");
		SY_CHECK(ext[i]->owner != NULL);
		found |= azure != NULL && ext[i] == azure->params;
	}
	SY_CHECK(found);
}

int
main(void)
{
	SY_RUN(left_out_keys_take_the_defaults_of_their_rows);
	SY_RUN(given_keys_are_read_into_their_fields);
	SY_RUN(values_out_of_their_rows_bounds_name_the_bounds);
	SY_RUN(values_of_the_wrong_type_are_rejected);
	SY_RUN(unknown_keys_list_the_known_ones_from_the_rows);
	SY_RUN(copies_compare_equal_until_a_field_changes);
	SY_RUN(every_row_is_documented_under_its_object_with_its_default);
	SY_RUN(every_documented_key_has_a_row);
	SY_RUN(every_kind_with_keys_is_reached_from_the_backend_table);
	return sy_test_done();
}
