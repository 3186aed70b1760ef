/* Config rows and the load they are read in: the text (comments allowed), where each JSON path starts in it, the errors found, and the engine that reads an object against a table of rows. */
#include <errno.h>
#include <float.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confrow.h"
#include "util.h"

#define PATHLEN		SY_CONF_PATHLEN
#define MAX_PLUGINS	16		/* plug-in tables beside one object */

/* Where a JSON path starts in the text: its key, or its array element. */
struct pos {
	char *path;
	int line;
	int col;
};

struct cfg_error {
	int line;
	int col;
	size_t seq;
	char *path;			/* the JSON path it is about */
	char *text;			/* the whole line of *err */
};

struct sy_conf {
	const char *name;		/* file name; NULL for a built root */
	const json_t *root;
	json_t *parsed;			/* root, when parsed from text */
	char *clean;			/* comment-free text, for positions */
	const char *text;
	size_t len;
	int indexed;
	struct pos *pos;
	size_t npos;
	size_t cappos;
	struct cfg_error *errs;
	size_t nerrs;
	size_t caperrs;
	sy_conf_describe_fn describe;	/* origin of a path, with no file */
	void *user;
	const json_t *obj;		/* the object whose row is being read */
};

/* Walks the JSON text, recording where each path starts. */
struct scan {
	struct sy_conf *c;
	const char *p;
	const char *end;
	int line;
	int col;			/* code points read on this line */
	char path[PATHLEN];
};

#define fail sy_conf_fail
#define type_name sy_conf_type_name

/* ==== Small helpers ==== */

/* reallocarray that aborts on failure. */
static void *
xreallocarray(void *p, size_t n, size_t size)
{
	if ((p = reallocarray(p, n ? n : 1, size)) == NULL)
		abort();
	return p;
}

const char *
sy_conf_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		break;
	}
	return "null";
}


/* ==== JSON paths and where they are in the text ==== */

/* Whether key can follow a '.' unquoted in a path. */
static int
plain_key(const char *key)
{
	if (*key == '\0')
		return 0;
	for (; *key != '\0'; key++) {
		if ((*key >= 'a' && *key <= 'z') ||
		    (*key >= 'A' && *key <= 'Z') ||
		    (*key >= '0' && *key <= '9') || *key == '_' || *key == '-')
			continue;
		return 0;
	}
	return 1;
}

/* Appends member key to path (PATHLEN bytes): .key, or ["key"] if needed. */
static void
path_add_key(char *path, const char *key)
{
	size_t n = strlen(path);

	if (plain_key(key)) {
		snprintf(path + n, PATHLEN - n, "%s%s", n ? "." : "", key);
		return;
	}
	if (n + 2 < PATHLEN) {
		path[n++] = '[';
		path[n++] = '"';
	}
	for (; *key != '\0' && n + 3 < PATHLEN; key++) {
		if ((*key == '"' || *key == '\\') && n + 4 < PATHLEN)
			path[n++] = '\\';
		path[n++] = *key;
	}
	if (n + 2 < PATHLEN) {
		path[n++] = '"';
		path[n++] = ']';
	}
	path[n] = '\0';
}

/* Appends [i] to path (PATHLEN bytes). */
static void
path_add_index(char *path, size_t i)
{
	size_t n = strlen(path);

	snprintf(path + n, PATHLEN - n, "[%zu]", i);
}

char *
sy_conf_path_key(char *buf, const char *parent, const char *key)
{
	snprintf(buf, PATHLEN, "%s", parent);
	path_add_key(buf, key);
	return buf;
}

char *
sy_conf_path_index(char *buf, const char *parent, size_t i)
{
	snprintf(buf, PATHLEN, "%s", parent);
	path_add_index(buf, i);
	return buf;
}

#define path_key sy_conf_path_key
#define path_index sy_conf_path_index

/*
 * Copies text (len bytes) with each // or # comment outside strings replaced
 * by spaces up to the end of its line, so positions stay as they were.
 * Returns the copy (NUL-terminated); caller frees.
 */
static char *
strip_comments(const char *text, size_t len)
{
	char *out = sy_xmalloc(len + 1);
	int instr = 0;
	size_t i;

	memcpy(out, text, len);
	out[len] = '\0';
	for (i = 0; i < len; i++) {
		if (instr) {
			if (out[i] == '\\' && i + 1 < len)
				i++;
			else if (out[i] == '"')
				instr = 0;
			continue;
		}
		if (out[i] == '"')
			instr = 1;
		else if (out[i] == '#' || (out[i] == '/' && i + 1 < len &&
		    out[i + 1] == '/')) {
			while (i < len && out[i] != '\n')
				out[i++] = ' ';
		}
	}
	return out;
}

/* Reads one byte, counting lines and code points as jansson does. */
static void
scan_advance(struct scan *s)
{
	unsigned char ch = (unsigned char)*s->p++;

	if (ch == '\n') {
		s->line++;
		s->col = 0;
	} else if ((ch & 0xc0) != 0x80)
		s->col++;
}

/* Skips JSON whitespace. */
static void
scan_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' ||
	    *s->p == '\n' || *s->p == '\r'))
		scan_advance(s);
}

/* Records that the current path starts at line:col. */
static void
scan_record(struct scan *s, int line, int col)
{
	struct sy_conf *c = s->c;

	if (c->npos == c->cappos) {
		c->cappos = c->cappos ? c->cappos * 2 : 64;
		c->pos = xreallocarray(c->pos, c->cappos, sizeof *c->pos);
	}
	c->pos[c->npos].path = sy_xstrdup(s->path);
	c->pos[c->npos].line = line;
	c->pos[c->npos].col = col;
	c->npos++;
}

/* Skips the string at s->p, quotes included. */
static void
scan_string(struct scan *s)
{
	scan_advance(s);
	while (s->p < s->end && *s->p != '"') {
		if (*s->p == '\\' && s->p + 1 < s->end)
			scan_advance(s);
		scan_advance(s);
	}
	if (s->p < s->end)
		scan_advance(s);
}

/* The decoded value of the JSON string literal at p (n bytes); caller frees. */
static char *
decode_key(const char *p, size_t n)
{
	json_t *v;
	char *key;

	if (n < 2)
		return sy_xstrdup("");
	if (memchr(p, '\\', n) == NULL) {
		if ((key = strndup(p + 1, n - 2)) == NULL)
			abort();
		return key;
	}
	v = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	key = sy_xstrdup(json_is_string(v) ? json_string_value(v) : "");
	json_decref(v);
	return key;
}

static void scan_value(struct scan *);

/* Reads the object at s->p, recording each member's key. */
static void
scan_object(struct scan *s)
{
	size_t len = strlen(s->path);
	const char *start;
	char *key;
	int line, col;

	scan_advance(s);
	for (;;) {
		scan_ws(s);
		if (s->p >= s->end || *s->p == '}')
			break;
		if (*s->p == ',') {
			scan_advance(s);
			continue;
		}
		if (*s->p != '"')
			break;
		line = s->line;
		col = s->col + 1;
		start = s->p;
		scan_string(s);
		key = decode_key(start, (size_t)(s->p - start));
		path_add_key(s->path, key);
		free(key);
		scan_record(s, line, col);
		scan_ws(s);
		if (s->p < s->end && *s->p == ':')
			scan_advance(s);
		scan_ws(s);
		scan_value(s);
		s->path[len] = '\0';
	}
	if (s->p < s->end)
		scan_advance(s);
}

/* Reads the array at s->p, recording each element. */
static void
scan_array(struct scan *s)
{
	size_t len = strlen(s->path), i = 0;

	scan_advance(s);
	for (;;) {
		scan_ws(s);
		if (s->p >= s->end || *s->p == ']')
			break;
		if (*s->p == ',') {
			scan_advance(s);
			continue;
		}
		path_add_index(s->path, i++);
		scan_record(s, s->line, s->col + 1);
		scan_value(s);
		s->path[len] = '\0';
	}
	if (s->p < s->end)
		scan_advance(s);
}

/* Reads the value at s->p. */
static void
scan_value(struct scan *s)
{
	if (s->p >= s->end)
		return;
	switch (*s->p) {
	case '{':
		scan_object(s);
		break;
	case '[':
		scan_array(s);
		break;
	case '"':
		scan_string(s);
		break;
	default:
		do
			scan_advance(s);
		while (s->p < s->end && strchr(",]} \t\r\n", *s->p) == NULL);
	}
}

/* Builds the position index of c's text (which jansson accepted). */
static void
index_text(struct sy_conf *c)
{
	struct scan s;

	memset(&s, 0, sizeof s);
	s.c = c;
	s.p = c->text;
	s.end = c->text + c->len;
	s.line = 1;
	scan_ws(&s);
	scan_record(&s, s.line, s.col + 1);
	scan_value(&s);
	c->indexed = 1;
}

/*
 * Finds where path starts: its own position, or that of its nearest
 * recorded ancestor (a missing key is reported at its parent).
 */
static void
find_pos(struct sy_conf *c, const char *path, int *line, int *col)
{
	size_t i, l, best = 0;
	int found = 0;

	if (!c->indexed)
		index_text(c);
	*line = 1;
	*col = 1;
	for (i = 0; i < c->npos; i++) {
		l = strlen(c->pos[i].path);
		if (strncmp(c->pos[i].path, path, l) != 0)
			continue;
		if (l != 0 && path[l] != '\0' && path[l] != '.' &&
		    path[l] != '[')
			continue;
		if (!found || l > best) {
			found = 1;
			best = l;
			*line = c->pos[i].line;
			*col = c->pos[i].col;
		}
	}
}

/* ==== Errors ==== */

/* Adds an error line (text, taken) about path, found at line:col. */
static void
add_error(struct sy_conf *c, const char *path, int line, int col, char *text)
{
	if (c->nerrs == c->caperrs) {
		c->caperrs = c->caperrs ? c->caperrs * 2 : 8;
		c->errs = xreallocarray(c->errs, c->caperrs, sizeof *c->errs);
	}
	c->errs[c->nerrs].line = line;
	c->errs[c->nerrs].col = col;
	c->errs[c->nerrs].seq = c->nerrs;
	c->errs[c->nerrs].path = sy_xstrdup(path);
	c->errs[c->nerrs].text = text;
	c->nerrs++;
}

/* As sy_conf_fail, with a va_list. */
static void vfail(struct sy_conf *, const char *, const char *, va_list)
    __attribute__((format(printf, 3, 0)));

static void
vfail(struct sy_conf *c, const char *path, const char *fmt, va_list ap)
{
	char *msg, *flag;
	int line = 0, col = 0;

	if (vasprintf(&msg, fmt, ap) == -1)
		abort();
	if (c->name == NULL) {
		flag = c->describe(c->root, path);
		add_error(c, path, 0, 0, sy_xasprintf("%s: %s", flag, msg));
		free(flag);
	} else {
		find_pos(c, path, &line, &col);
		if (*path == '\0')
			add_error(c, path, line, col, sy_xasprintf(
			    "%s:%d:%d: %s", c->name, line, col, msg));
		else
			add_error(c, path, line, col, sy_xasprintf(
			    "%s:%d:%d: %s: %s", c->name, line, col, path,
			    msg));
	}
	free(msg);
}

void
sy_conf_fail(struct sy_conf *c, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(c, path, fmt, ap);
	va_end(ap);
}

int
sy_conf_failed(const struct sy_conf *c, const char *path)
{
	size_t i;

	for (i = 0; i < c->nerrs; i++)
		if (strcmp(c->errs[i].path, path) == 0)
			return 1;
	return 0;
}

/* Orders errors by position, then by discovery. */
static int
error_cmp(const void *a, const void *b)
{
	const struct cfg_error *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Joins c's errors, in file order, one per line; caller frees. */
static char *
join_errors(struct sy_conf *c)
{
	size_t i, n = 0;
	char *s;

	qsort(c->errs, c->nerrs, sizeof *c->errs, error_cmp);
	for (i = 0; i < c->nerrs; i++)
		n += strlen(c->errs[i].text) + 1;
	s = sy_xmalloc(n);
	n = 0;
	for (i = 0; i < c->nerrs; i++) {
		if (i != 0)
			s[n++] = '\n';
		strcpy(s + n, c->errs[i].text);
		n += strlen(c->errs[i].text);
	}
	s[n] = '\0';
	return s;
}

/* Frees what c holds (not c). */
static void
conf_free(struct sy_conf *c)
{
	size_t i;

	for (i = 0; i < c->npos; i++)
		free(c->pos[i].path);
	free(c->pos);
	for (i = 0; i < c->nerrs; i++) {
		free(c->errs[i].path);
		free(c->errs[i].text);
	}
	free(c->errs);
	free(c->clean);
	json_decref(c->parsed);
}

/* ==== Loads ==== */

struct sy_conf *
sy_conf_open(const char *text, const char *name, const json_t **root)
{
	struct sy_conf *c = sy_xcalloc(1, sizeof *c);
	json_error_t je;
	size_t len = strlen(text);

	c->name = name;
	c->text = c->clean = strip_comments(text, len);
	c->len = len;
	if ((c->parsed = json_loadb(c->clean, len, JSON_REJECT_DUPLICATES,
	    &je)) == NULL)
		add_error(c, "", je.line, je.column, sy_xasprintf(
		    "%s:%d:%d: %s", name, je.line, je.column > 0 ? je.column :
		    1, je.text));
	*root = c->root = c->parsed;
	return c;
}

struct sy_conf *
sy_conf_open_json(const json_t *root, sy_conf_describe_fn describe)
{
	struct sy_conf *c = sy_xcalloc(1, sizeof *c);

	c->root = root;
	c->describe = describe;
	return c;
}

void
sy_conf_set_user(struct sy_conf *c, void *user)
{
	c->user = user;
}

void *
sy_conf_user(const struct sy_conf *c)
{
	return c->user;
}

size_t
sy_conf_nerrs(const struct sy_conf *c)
{
	return c->nerrs;
}

const json_t *
sy_conf_object(const struct sy_conf *c)
{
	return c->obj;
}

char *
sy_conf_close(struct sy_conf *c)
{
	char *err = c->nerrs != 0 ? join_errors(c) : NULL;

	conf_free(c);
	free(c);
	return err;
}

char *
sy_conf_read_file(const char *path, char **err)
{
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;

	if ((f = fopen(path, "rb")) == NULL) {
		*err = sy_xasprintf("%s: cannot read: %s", path,
		    strerror(errno));
		return NULL;
	}
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			text = xreallocarray(text, cap, 1);
		}
		n = fread(text + len, 1, cap - len - 1, f);
		len += n;
	} while (n != 0);
	if (ferror(f)) {
		*err = sy_xasprintf("%s: cannot read: %s", path,
		    strerror(errno));
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	text[len] = '\0';
	if (strlen(text) != len) {
		*err = sy_xasprintf("%s: cannot read: the file holds a NUL "
		    "byte", path);
		free(text);
		return NULL;
	}
	return text;
}

int
sy_conf_load(const char *text, const char *name,
    const struct sy_conf_table *t, void *base, char **err)
{
	const json_t *root;
	struct sy_conf *c = sy_conf_open(text, name, &root);

	if (root != NULL && !json_is_object(root))
		fail(c, "", "expected an object, got %s", type_name(root));
	else if (root != NULL)
		sy_conf_read(c, t, root, "", base);
	return (*err = sy_conf_close(c)) != NULL ? -1 : 0;
}

/* ==== The row engine ==== */

/* The field of row in base, as a type. */
#define FIELD(type, base, row)	\
	((type *)(void *)((char *)(base) + (row)->offset))

const struct sy_conf_row *
sy_conf_row_find(const struct sy_conf_table *t, const char *name)
{
	const struct sy_conf_row *row;

	for (row = t->rows; row->name != NULL; row++)
		if (row->type != SY_CONF_PLUGIN && strcmp(row->name, name) == 0)
			return row;
	return NULL;
}

const void *
sy_conf_field(const struct sy_conf_table *t, const void *base,
    const char *name)
{
	const struct sy_conf_row *row = sy_conf_row_find(t, name);

	return row != NULL ? (const char *)base + row->offset : NULL;
}

/* The tables of the plug-ins of row (a PLUGIN row) into out; how many. */
static size_t
plugin_tables(const struct sy_conf_row *row,
    const struct sy_conf_table **out)
{
	return row->plugins(out, MAX_PLUGINS);
}

/* Whether key is a key of t: one of its rows or of its plug-ins' tables. */
static int
known_key(const struct sy_conf_table *t, const char *key)
{
	const struct sy_conf_table *ext[MAX_PLUGINS];
	const struct sy_conf_row *row;
	size_t i, n;

	for (row = t->rows; row->name != NULL; row++) {
		if (row->type != SY_CONF_PLUGIN) {
			if (strcmp(row->name, key) == 0)
				return 1;
			continue;
		}
		n = plugin_tables(row, ext);
		for (i = 0; i < n; i++)
			if (sy_conf_row_find(ext[i], key) != NULL)
				return 1;
	}
	return 0;
}

/* Appends name to the list in buf (len bytes) unless it is there. */
static void
list_add(char *buf, size_t len, const char *name)
{
	size_t n = strlen(buf), l = strlen(name);
	const char *p;

	for (p = buf; (p = strstr(p, name)) != NULL; p += l)
		if ((p == buf || p[-1] == ' ') && (p[l] == ',' || p[l] == '\0'))
			return;
	snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name);
}

/* Writes the keys of t, in row order, comma separated, into buf. */
static void
known_keys(const struct sy_conf_table *t, char *buf, size_t len)
{
	const struct sy_conf_table *ext[MAX_PLUGINS];
	const struct sy_conf_row *row, *r;
	size_t i, n;

	buf[0] = '\0';
	for (row = t->rows; row->name != NULL; row++) {
		if (row->type != SY_CONF_PLUGIN) {
			list_add(buf, len, row->name);
			continue;
		}
		n = plugin_tables(row, ext);
		for (i = 0; i < n; i++)
			for (r = ext[i]->rows; r->name != NULL; r++)
				list_add(buf, len, r->name);
	}
}

/* Reports every key of obj (at path) that is no key of t. */
static void
check_keys(struct sy_conf *c, const struct sy_conf_table *t, const json_t *obj,
    const char *path)
{
	const struct sy_conf_row *secret;
	char p[PATHLEN], env[64], known[512];
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v) {
		if (known_key(t, key))
			continue;
		path_key(p, path, key);
		snprintf(env, sizeof env, "%s_env", key);
		if ((secret = sy_conf_row_find(t, env)) != NULL &&
		    secret->type == SY_CONF_SECRET) {
			fail(c, p, "%s does not belong in the config file; put "
			    "it in an environment variable and name that in "
			    "\"%s\"", secret->what, env);
			continue;
		}
		known_keys(t, known, sizeof known);
		fail(c, p, "unknown key \"%s\"; known: %s", key, known);
	}
}

/* Frees a list of n strings. */
static void
free_strings(char **list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* The bytes of a field of row copied as they are; 0 for the others. */
static size_t
plain_size(const struct sy_conf_row *row)
{
	switch (row->type) {
	case SY_CONF_UINT:
	case SY_CONF_MS:
	case SY_CONF_WORD:
	case SY_CONF_FLAGS:
		return sizeof(unsigned);
	case SY_CONF_UINT64:
		return sizeof(uint64_t);
	case SY_CONF_SIZE:
		return sizeof(size_t);
	case SY_CONF_INT:
	case SY_CONF_BOOL:
		return sizeof(int);
	case SY_CONF_NUMBER:
	case SY_CONF_FRACTION:
		return sizeof(double);
	default:
		return 0;
	}
}

/* Whether row's field is a char * (a secret's value). */
static int
is_string(const struct sy_conf_row *row)
{
	return row->type == SY_CONF_STRING ||
	    row->type == SY_CONF_STRING_OR_NULL ||
	    row->type == SY_CONF_PATH || row->type == SY_CONF_SECRET;
}

/* The char * that keeps the variable's name of secret row, or NULL. */
static char **
secret_name(const struct sy_conf_row *row, const void *base)
{
	if (row->type != SY_CONF_SECRET || !row->keep_name)
		return NULL;
	return (char **)(void *)((char *)base + row->name_at);
}

/* The count of STRINGS row in base. */
static size_t *
strings_count(const struct sy_conf_row *row, const void *base)
{
	return (size_t *)(void *)((char *)base + row->count);
}

/* Frees what the field of row in base holds, leaving it empty. */
static void
clear_field(const struct sy_conf_row *row, void *base)
{
	char **s = FIELD(char *, base, row), **name;

	if (is_string(row)) {
		free(*s);
		*s = NULL;
		if ((name = secret_name(row, base)) != NULL) {
			free(*name);
			*name = NULL;
		}
	} else if (row->type == SY_CONF_STRINGS) {
		free_strings(*FIELD(char **, base, row),
		    *strings_count(row, base));
		*FIELD(char **, base, row) = NULL;
		*strings_count(row, base) = 0;
	} else if (row->type == SY_CONF_OBJECT && row->table != NULL)
		sy_conf_free(row->table, FIELD(char, base, row));
}

/* Gives the field of row in base its default, freeing what it held. */
static void
row_default(const struct sy_conf_row *row, void *base)
{
	clear_field(row, base);
	switch (row->type) {
	case SY_CONF_UINT:
	case SY_CONF_MS:
	case SY_CONF_WORD:
	case SY_CONF_FLAGS:
		*FIELD(unsigned, base, row) = (unsigned)row->def.u;
		break;
	case SY_CONF_UINT64:
		*FIELD(uint64_t, base, row) = row->def.u;
		break;
	case SY_CONF_SIZE:
		*FIELD(size_t, base, row) = (size_t)row->def.u;
		break;
	case SY_CONF_INT:
	case SY_CONF_BOOL:
		*FIELD(int, base, row) = (int)row->def.u;
		break;
	case SY_CONF_NUMBER:
	case SY_CONF_FRACTION:
		*FIELD(double, base, row) = row->def.d;
		break;
	case SY_CONF_STRING:
	case SY_CONF_STRING_OR_NULL:
	case SY_CONF_PATH:
		if (row->def.s != NULL)
			*FIELD(char *, base, row) = sy_xstrdup(row->def.s);
		break;
	case SY_CONF_OBJECT:
		if (row->table != NULL)
			sy_conf_defaults(row->table, FIELD(char, base, row));
		break;
	default:
		break;		/* none, or their parse function's */
	}
}

void
sy_conf_defaults(const struct sy_conf_table *t, void *base)
{
	const struct sy_conf_row *row;

	for (row = t->rows; row->name != NULL; row++)
		row_default(row, base);
}

/* Reads v (at path) as an integer within row's bounds into base. */
static void
read_integer(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	json_int_t n;

	if (!json_is_integer(v)) {
		fail(c, path, "expected an integer, got %s", type_name(v));
		return;
	}
	n = json_integer_value(v);
	if (n < row->min || n > row->max) {
		fail(c, path, "must be from %lld to %lld, got %lld", row->min,
		    row->max, (long long)n);
		return;
	}
	switch (row->type) {
	case SY_CONF_UINT64:
		*FIELD(uint64_t, base, row) = (uint64_t)n;
		break;
	case SY_CONF_SIZE:
		*FIELD(size_t, base, row) = (size_t)n;
		break;
	case SY_CONF_INT:
		*FIELD(int, base, row) = (int)n;
		break;
	default:
		*FIELD(unsigned, base, row) = (unsigned)n;
	}
}

/* Reads v (at path) as a number within row's bounds into base. */
static void
read_number(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	double lo = row->type == SY_CONF_FRACTION ? 0 : row->lo;
	double hi = row->type == SY_CONF_FRACTION ? 1 : row->hi;
	double d;

	if (!json_is_number(v)) {
		if (row->type == SY_CONF_FRACTION)
			fail(c, path, "expected a number from 0 to 1, got %s",
			    type_name(v));
		else
			fail(c, path, "expected a number, got %s",
			    type_name(v));
		return;
	}
	d = json_number_value(v);
	if (d < lo || d > hi) {
		if (hi == DBL_MAX && lo == 0)
			fail(c, path, "must not be negative, got %g", d);
		else if (hi == DBL_MAX)
			fail(c, path, "must be at least %g, got %g", lo, d);
		else
			fail(c, path, "must be from %g to %g, got %g", lo, hi,
			    d);
		return;
	}
	*FIELD(double, base, row) = d;
}

int
sy_conf_string(struct sy_conf *c, const json_t *v, const char *path,
    const char **s)
{
	if (!json_is_string(v)) {
		fail(c, path, "expected a string, got %s", type_name(v));
		return -1;
	}
	if (*json_string_value(v) == '\0') {
		fail(c, path, "must not be empty");
		return -1;
	}
	*s = json_string_value(v);
	return 0;
}

/* Whether s is an HTTP path; reports why not at path. */
static int
http_path(struct sy_conf *c, const char *path, const char *s)
{
	const char *q;

	if (*s != '/') {
		fail(c, path, "must start with '/', got \"%s\"", s);
		return 0;
	}
	for (q = s; *q != '\0'; q++) {
		if ((unsigned char)*q <= ' ' || *q == 0x7f) {
			fail(c, path, "must not contain spaces or control "
			    "characters");
			return 0;
		}
	}
	return 1;
}

/*
 * The value of environment variable name (a secret the config names at
 * path), malloc'd, or NULL after reporting that it is unset or empty.
 */
static char *
env_secret(struct sy_conf *c, const char *path, const char *name)
{
	const char *s = getenv(name);

	if (s == NULL)
		fail(c, path, "environment variable %s is not set", name);
	else if (*s == '\0')
		fail(c, path, "environment variable %s is empty", name);
	else
		return sy_xstrdup(s);
	return NULL;
}

/* Reads v (at path) as a string row (string, path, secret) into base. */
static void
read_string(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	char **field = FIELD(char *, base, row);
	char **name = secret_name(row, base);
	const char *s;

	if (row->type == SY_CONF_STRING_OR_NULL && json_is_null(v)) {
		free(*field);
		*field = NULL;
		return;
	}
	if (row->type == SY_CONF_STRING_OR_NULL && !json_is_string(v)) {
		fail(c, path, "expected %s or null, got %s", row->what,
		    type_name(v));
		return;
	}
	if (sy_conf_string(c, v, path, &s) == -1)
		return;
	if (row->max > 0 && strlen(s) > (size_t)row->max) {
		fail(c, path, "at most %lld bytes, got %zu", row->max,
		    strlen(s));
		return;
	}
	if (row->type == SY_CONF_PATH && !http_path(c, path, s))
		return;
	free(*field);
	if (row->type != SY_CONF_SECRET) {
		*field = sy_xstrdup(s);
		return;
	}
	*field = env_secret(c, path, s);
	if (name != NULL) {
		free(*name);
		*name = sy_xstrdup(s);
	}
}

/* The index of word in words, or -1; known gets the list for messages. */
static int
word_index(const char *const *words, const char *word, char *known,
    size_t len)
{
	int i;

	known[0] = '\0';
	for (i = 0; words[i] != NULL; i++)
		if (strcmp(words[i], word) == 0)
			return i;
	for (i = 0; words[i] != NULL; i++)
		list_add(known, len, words[i]);
	return -1;
}

/* Reads v (at path) as one word of row->words into base. */
static void
read_word(struct sy_conf *c, const struct sy_conf_row *row, const json_t *v,
    const char *path, void *base)
{
	char known[256];
	int i;

	if (!json_is_string(v)) {
		fail(c, path, "expected a %s, got %s", row->what,
		    type_name(v));
		return;
	}
	if ((i = word_index(row->words, json_string_value(v), known,
	    sizeof known)) == -1) {
		fail(c, path, "unknown %s \"%s\"; known: %s", row->what,
		    json_string_value(v), known);
		return;
	}
	*FIELD(unsigned, base, row) = (unsigned)i;
}

/* Reads v (at path), a non-empty array, as flags of row->words into base. */
static void
read_flags(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	char q[PATHLEN], known[256];
	const json_t *e;
	unsigned bits = 0;
	size_t i;
	int w;

	json_array_foreach(v, i, e) {
		path_index(q, path, i);
		if (!json_is_string(e)) {
			fail(c, q, "expected a %s, got %s", row->what,
			    type_name(e));
			continue;
		}
		if ((w = word_index(row->words, json_string_value(e), known,
		    sizeof known)) == -1) {
			fail(c, q, "unknown %s \"%s\"; known: %s", row->what,
			    json_string_value(e), known);
			continue;
		}
		if (bits & (1u << w)) {
			fail(c, q, "duplicate %s \"%s\"", row->what,
			    json_string_value(e));
			continue;
		}
		bits |= 1u << w;
	}
	*FIELD(unsigned, base, row) = bits;
}

/* Reads v (at path) as a list of distinct non-empty strings into base. */
static void
read_strings(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, void *base)
{
	size_t *n = strings_count(row, base);
	char ***list = FIELD(char **, base, row);
	char q[PATHLEN];
	const json_t *e;
	const char *s;
	size_t i, j;

	if (!json_is_array(v)) {
		fail(c, path, "expected an array of %ss, got %s", row->what,
		    type_name(v));
		return;
	}
	row_default(row, base);
	*list = sy_xcalloc(json_array_size(v), sizeof **list);
	json_array_foreach(v, i, e) {
		path_index(q, path, i);
		if (!json_is_string(e) || *json_string_value(e) == '\0') {
			fail(c, q, "expected a %s, got %s", row->what,
			    json_is_string(e) ? "\"\"" : type_name(e));
			continue;
		}
		s = json_string_value(e);
		for (j = 0; j < *n; j++)
			if (strcmp((*list)[j], s) == 0)
				break;
		if (j < *n) {
			fail(c, q, "duplicate %s \"%s\"", row->what, s);
			continue;
		}
		(*list)[(*n)++] = sy_xstrdup(s);
	}
}

static void read_table(struct sy_conf *, const struct sy_conf_table *,
    const json_t *, const char *, void *, unsigned, int);

/* Reads the member of obj (at path) that row describes into base. */
static void
read_row(struct sy_conf *c, const struct sy_conf_row *row, const json_t *obj,
    const char *path, void *base)
{
	const json_t *v = obj != NULL ? json_object_get(obj, row->name) : NULL;
	char p[PATHLEN];

	path_key(p, path, row->name);
	if (row->type == SY_CONF_OBJECT && row->table != NULL) {
		if (v != NULL && !json_is_object(v)) {
			fail(c, p, "expected an object, got %s", type_name(v));
			v = NULL;
		}
		read_table(c, row->table, v, p, FIELD(char, base, row), 0, 1);
		return;
	}
	if (v == NULL) {
		if (row->required && row->type == SY_CONF_ARRAY)
			fail(c, p, "required key is missing; list at least "
			    "one %s", row->what);
		else if (row->required)
			fail(c, p, "required key is missing");
		else if (row->always)
			row->parse(c, row, NULL, p, base);
		return;
	}
	switch (row->type) {
	case SY_CONF_UINT:
	case SY_CONF_UINT64:
	case SY_CONF_SIZE:
	case SY_CONF_INT:
	case SY_CONF_MS:
		read_integer(c, row, v, p, base);
		break;
	case SY_CONF_NUMBER:
	case SY_CONF_FRACTION:
		read_number(c, row, v, p, base);
		break;
	case SY_CONF_BOOL:
		if (!json_is_boolean(v))
			fail(c, p, "expected true or false, got %s",
			    type_name(v));
		else
			*FIELD(int, base, row) = json_is_true(v);
		break;
	case SY_CONF_STRING:
	case SY_CONF_STRING_OR_NULL:
	case SY_CONF_PATH:
	case SY_CONF_SECRET:
		read_string(c, row, v, p, base);
		break;
	case SY_CONF_WORD:
		read_word(c, row, v, p, base);
		break;
	case SY_CONF_STRINGS:
		read_strings(c, row, v, p, base);
		break;
	case SY_CONF_FLAGS:
	case SY_CONF_ARRAY:
		if (!json_is_array(v))
			fail(c, p, "expected an array, got %s", type_name(v));
		else if (json_array_size(v) == 0)
			fail(c, p, "must list at least one %s", row->what);
		else if (row->type == SY_CONF_FLAGS)
			read_flags(c, row, v, p, base);
		else
			row->parse(c, row, v, p, base);
		break;
	case SY_CONF_OBJECT:
		if (!json_is_object(v))
			fail(c, p, "expected an object, got %s", type_name(v));
		else
			row->parse(c, row, v, p, base);
		break;
	case SY_CONF_CUSTOM:
		row->parse(c, row, v, p, base);
		break;
	case SY_CONF_PLUGIN:
		break;
	}
}

/*
 * Reads the rows of pass of t from obj (at path; NULL: left out) into
 * base; pass 0 gives the defaults first, checks the keys (when keys) and
 * ends with t->check.
 */
static void
read_table(struct sy_conf *c, const struct sy_conf_table *t,
    const json_t *obj, const char *path, void *base, unsigned pass, int keys)
{
	const struct sy_conf_row *row;
	const json_t *outer = c->obj;

	if (pass == 0) {
		sy_conf_defaults(t, base);
		if (obj != NULL && keys)
			check_keys(c, t, obj, path);
	}
	c->obj = obj;
	for (row = t->rows; row->name != NULL; row++)
		if (row->pass == pass && row->type != SY_CONF_PLUGIN)
			read_row(c, row, obj, path, base);
	c->obj = outer;
	if (pass == 0 && t->check != NULL)
		t->check(c, obj, path, base);
}

void
sy_conf_read(struct sy_conf *c, const struct sy_conf_table *t,
    const json_t *obj, const char *path, void *base)
{
	read_table(c, t, obj, path, base, 0, 1);
}

void
sy_conf_read_more(struct sy_conf *c, const struct sy_conf_table *t,
    const json_t *obj, const char *path, void *base, unsigned pass)
{
	read_table(c, t, obj, path, base, pass, 1);
}

void
sy_conf_read_shared(struct sy_conf *c, const struct sy_conf_table *t,
    const json_t *obj, const char *path, void *base)
{
	read_table(c, t, obj, path, base, 0, 0);
}

void
sy_conf_free(const struct sy_conf_table *t, void *base)
{
	const struct sy_conf_row *row;

	for (row = t->rows; row->name != NULL; row++)
		clear_field(row, base);
}

/* A copy of s, which may be NULL. */
static char *
dup_or_null(const char *s)
{
	return s != NULL ? sy_xstrdup(s) : NULL;
}

void
sy_conf_copy(const struct sy_conf_table *t, void *dst, const void *src)
{
	const struct sy_conf_row *row;
	char **d, *const *s;
	size_t i, n;

	for (row = t->rows; row->name != NULL; row++) {
		if (plain_size(row) != 0)
			memcpy(FIELD(char, dst, row),
			    FIELD(const char, src, row), plain_size(row));
		else if (is_string(row)) {
			*FIELD(char *, dst, row) = dup_or_null(
			    *FIELD(char *const, src, row));
			if ((d = secret_name(row, dst)) != NULL)
				*d = dup_or_null(*secret_name(row, src));
		} else if (row->type == SY_CONF_STRINGS) {
			n = *strings_count(row, dst) = *strings_count(row, src);
			s = *FIELD(char **const, src, row);
			d = *FIELD(char **, dst, row) = sy_xcalloc(n,
			    sizeof *d);
			for (i = 0; i < n; i++)
				d[i] = sy_xstrdup(s[i]);
		} else if (row->type == SY_CONF_OBJECT && row->table != NULL)
			sy_conf_copy(row->table, FIELD(char, dst, row),
			    FIELD(const char, src, row));
	}
}

/* Whether two strings, either maybe NULL, differ. */
static int
str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

int
sy_conf_differ(const struct sy_conf_table *t, const void *a, const void *b)
{
	const struct sy_conf_row *row;
	char *const *x, *const *y;
	size_t i, n;

	for (row = t->rows; row->name != NULL; row++) {
		if (plain_size(row) != 0) {
			if (memcmp(FIELD(const char, a, row),
			    FIELD(const char, b, row), plain_size(row)) != 0)
				return 1;
		} else if (is_string(row)) {
			if (str_differ(*FIELD(char *const, a, row),
			    *FIELD(char *const, b, row)))
				return 1;
		} else if (row->type == SY_CONF_STRINGS) {
			if ((n = *strings_count(row, a)) !=
			    *strings_count(row, b))
				return 1;
			x = *FIELD(char **const, a, row);
			y = *FIELD(char **const, b, row);
			for (i = 0; i < n; i++)
				if (strcmp(x[i], y[i]) != 0)
					return 1;
		} else if (row->type == SY_CONF_OBJECT && row->table != NULL &&
		    sy_conf_differ(row->table, FIELD(const char, a, row),
		    FIELD(const char, b, row)))
			return 1;
	}
	return 0;
}
/* ==== For parse and check functions ==== */

void
sy_conf_order(struct sy_conf *c, const json_t *obj, const char *path,
    const char *lokey, unsigned lo, const char *hikey, unsigned hi,
    int strict)
{
	char lp[PATHLEN], hp[PATHLEN];

	path_key(lp, path, lokey);
	path_key(hp, path, hikey);
	if (lo < hi || (!strict && lo == hi) || sy_conf_failed(c, lp) ||
	    sy_conf_failed(c, hp))
		return;
	if (json_object_get(obj, lokey) != NULL)
		fail(c, lp, "must be %s %s (%u), got %u", strict ? "less than" :
		    "at most", hikey, hi, lo);
	else
		fail(c, hp, "must be %s %s (%u), got %u", strict ?
		    "greater than" : "at least", lokey, lo, hi);
}

int
sy_conf_policy(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, const char **name, json_t **params)
{
	const json_t *n, *x;
	char q[PATHLEN];
	const char *k;

	if (v != NULL && !json_is_string(v) && !json_is_object(v)) {
		fail(c, path, "expected a policy name or an object with "
		    "\"name\", got %s", type_name(v));
		return -1;
	}
	*params = json_object();
	if (!json_is_object(v)) {
		*name = v != NULL ? json_string_value(v) : row->def.s;
		return 0;
	}
	if ((n = json_object_get(v, "name")) == NULL) {
		fail(c, path_key(q, path, "name"), "required key is missing");
		return -1;
	}
	if (!json_is_string(n)) {
		fail(c, path_key(q, path, "name"), "expected a policy name, "
		    "got %s", type_name(n));
		return -1;
	}
	*name = json_string_value(n);
	json_object_foreach((json_t *)v, k, x)
		if (strcmp(k, "name") != 0)
			json_object_set_new(*params, k, json_deep_copy(x));
	return 0;
}

void
sy_conf_unknown_policy(struct sy_conf *c, const json_t *v, const char *path,
    const char *what, const char *name, const char *names)
{
	char p[PATHLEN];

	snprintf(p, sizeof p, "%s", path);
	if (json_is_object(v))
		path_add_key(p, "name");
	fail(c, p, "unknown %s \"%s\"; known: %s", what, name, names);
}

