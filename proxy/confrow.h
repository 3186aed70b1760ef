/* Config rows: one typed row per key (name, type, place, default, bounds, doc), one table per object, read by one engine. */
#ifndef SY_CONFROW_H
#define SY_CONFROW_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Adding a key to an object is one row in its table (the module that
 * uses the key owns the table), the field it fills in that module's
 * struct, and one line in the object's table in docs/configuration.md
 * (tests/unit/test_confrow.c fails until the docs list it).  A new object
 * is a table, an OBJECT row naming it in its parent's table, a line in
 * sy_conf_tables (proxy/config.c) and a "<!-- keys: PATH -->" table in
 * the docs.  A backend kind's own keys are its params table.
 */

/* The longest JSON path kept whole in messages. */
#define SY_CONF_PATHLEN 512

/* One load of a config: its text, positions and errors (proxy/confrow.c). */
struct sy_conf;
struct sy_conf_row;
struct sy_conf_table;

/*
 * Reads value v of row (at path, never NULL unless the row is .always)
 * into base.  Reports errors with sy_conf_fail; returns 0 or -1.
 */
typedef int (*sy_conf_parse_fn)(struct sy_conf *c,
    const struct sy_conf_row *row, const json_t *v, const char *path,
    void *base);

/*
 * Checks what a table's rows read into base from obj (at path; obj is NULL
 * when the object was left out: the rows hold their defaults), and derives
 * what depends on several keys.
 */
typedef void (*sy_conf_check_fn)(struct sy_conf *c, const json_t *obj,
    const char *path, void *base);

/*
 * Writes the tables of every plug-in whose keys may stand in an object
 * beside the common rows into out (at most max); returns how many.
 */
typedef size_t (*sy_conf_plugins_fn)(const struct sy_conf_table **out,
    size_t max);

enum sy_conf_type {
	SY_CONF_UINT,		/* unsigned, from .min to .max */
	SY_CONF_UINT64,		/* uint64_t, from .min to .max */
	SY_CONF_SIZE,		/* size_t, from .min to .max */
	SY_CONF_INT,		/* int, from .min to .max */
	SY_CONF_MS,		/* unsigned milliseconds, from .min to .max */
	SY_CONF_NUMBER,		/* double, from .lo to .hi (an integer too) */
	SY_CONF_FRACTION,	/* double from 0 to 1 */
	SY_CONF_BOOL,		/* int, 0 or 1 */
	SY_CONF_STRING,		/* char *, non-empty, malloc'd; at most .max
				   bytes when .max > 0 */
	SY_CONF_STRING_OR_NULL,	/* as SY_CONF_STRING; null: NULL.  .what
				   names the string in messages */
	SY_CONF_PATH,		/* as SY_CONF_STRING: an HTTP path, starting
				   with '/', without spaces or controls */
	SY_CONF_WORD,		/* unsigned: the index of the value in .words */
	SY_CONF_FLAGS,		/* unsigned: bit i for .words[i]; a non-empty
				   array, each word once (.what: a word) */
	SY_CONF_STRINGS,	/* char ** (malloc'd, each malloc'd) and its
				   size_t count at .count; non-empty strings,
				   each once (.what: an element) */
	SY_CONF_SECRET,		/* char *: the value of the environment
				   variable the key names (the key ends in
				   "_env"; .what: what it holds, "a password");
				   the name too at .name_at when .keep_name */
	SY_CONF_OBJECT,		/* an object read against .table into
				   base + offset (absent: .table's defaults),
				   or handed to .parse */
	SY_CONF_ARRAY,		/* a non-empty array handed to .parse (.what:
				   an element, for the messages) */
	SY_CONF_CUSTOM,		/* any value, handed to .parse */
	SY_CONF_PLUGIN		/* no key (.name is a label): the keys of
				   .plugins' tables stand here in the object,
				   read by the object's check function */
};

/* The default of a row, by its type. */
union sy_conf_default {
	unsigned long long u;	/* integers, durations, words, flags, bools */
	double d;		/* numbers, fractions */
	const char *s;		/* strings (copied), NULL for none */
};

/* One key of an object. */
struct sy_conf_row {
	const char *name;		/* the key; NULL ends a table */
	enum sy_conf_type type;
	size_t offset;			/* of the field in the table's struct */
	union sy_conf_default def;
	long long min, max;		/* integer bounds; .max: longest
					   string */
	double lo, hi;			/* number bounds */
	int required;			/* missing is an error */
	int always;			/* .parse is called when missing too */
	unsigned pass;			/* read by sy_conf_read_more(pass) */
	const char *const *words;	/* WORD, FLAGS: NULL-terminated */
	const char *what;		/* see the types */
	size_t count;			/* STRINGS: offset of its count */
	int keep_name;			/* SECRET: keep the variable's name */
	size_t name_at;			/* SECRET: offset of that char * */
	const struct sy_conf_table *table;	/* OBJECT */
	sy_conf_parse_fn parse;		/* OBJECT without .table, ARRAY,
					   CUSTOM */
	sy_conf_plugins_fn plugins;	/* PLUGIN */
	const char *doc;		/* one line; the reference is
					   docs/configuration.md */
};

/* The keys of one object, and the struct they fill. */
struct sy_conf_table {
	const char *path;		/* JSON path of the object, [] for any
					   element and * for any member:
					   "timeouts", "routes[].retries",
					   "prices.*"; "" for the top level */
	const char *owner;		/* the plug-in (backend kind) whose
					   keys these are, or NULL */
	const struct sy_conf_row *rows;
	size_t size;			/* of the struct the rows fill */
	sy_conf_check_fn check;		/* may be NULL */
};

/* Every table, NULL-terminated (plug-ins' tables through their rows). */
extern const struct sy_conf_table *const sy_conf_tables[];

/* The tables of the modules that own their keys. */
extern const struct sy_conf_table sy_timeouts_table;	/* settings.c */
extern const struct sy_conf_table sy_limits_table;	/* settings.c */
extern const struct sy_conf_table sy_health_table;	/* probe.c */
extern const struct sy_conf_table sy_scrape_table;	/* probe.c */
extern const struct sy_conf_table sy_retry_table;	/* stage_tries.c */
extern const struct sy_conf_table sy_queue_table;	/* stage_tries.c */
extern const struct sy_conf_table sy_ejection_table;	/* outlier.c */
extern const struct sy_conf_table sy_batch_table;	/* batch.c */
extern const struct sy_conf_table sy_route_cache_table;	/* cache.c */
extern const struct sy_conf_table sy_cache_table;	/* cache.c */
extern const struct sy_conf_table sy_redis_table;	/* cache_redis.c */
extern const struct sy_conf_table sy_price_table;	/* accesslog.c */
extern const struct sy_conf_table sy_model_info_table;	/* models.c */

/* ==== Loads ==== */

/*
 * Names where path came from when a load has no file (a command-line
 * flag); returns a malloc'd string.
 */
typedef char *(*sy_conf_describe_fn)(const json_t *root, const char *path);

/*
 * Starts a load of text (JSON with // and # comments) named name in
 * errors.  Sets *root to its JSON (owned by the load), or NULL after
 * reporting where the parser stopped.
 */
struct sy_conf *sy_conf_open(const char *text, const char *name,
    const json_t **root);

/*
 * Starts a load of root (borrowed), built in memory; its errors name
 * describe(root, path).
 */
struct sy_conf *sy_conf_open_json(const json_t *root,
    sy_conf_describe_fn describe);

/* What the loader keeps beside the load (for its parse functions). */
void sy_conf_set_user(struct sy_conf *c, void *user);
void *sy_conf_user(const struct sy_conf *c);

/* How many errors the load found so far. */
size_t sy_conf_nerrs(const struct sy_conf *c);

/* Whether an error about path was reported already. */
int sy_conf_failed(const struct sy_conf *c, const char *path);

/* The object whose row is being read (for a parse function). */
const json_t *sy_conf_object(const struct sy_conf *c);

/*
 * Ends the load: returns its errors in file order, one
 * "FILE:LINE:COL: path: message" line each (malloc'd), or NULL when it
 * found none.
 */
char *sy_conf_close(struct sy_conf *c);

/*
 * The text of the file at path (malloc'd), or NULL with *err (malloc'd)
 * "PATH: cannot read: REASON".
 */
char *sy_conf_read_file(const char *path, char **err);

/* ==== The engine ==== */

/*
 * Reads obj (at path; NULL: left out) against t into base: every row's
 * default first, then each key of pass 0, then t->check.  A key without a
 * row is an error that lists the known keys; so is a missing required key
 * and a value of the wrong type or out of its row's bounds.
 */
void sy_conf_read(struct sy_conf *c, const struct sy_conf_table *t,
    const json_t *obj, const char *path, void *base);

/* Reads the keys of t of pass (> 0) from obj into base. */
void sy_conf_read_more(struct sy_conf *c, const struct sy_conf_table *t,
    const json_t *obj, const char *path, void *base, unsigned pass);

/*
 * As sy_conf_read for a plug-in's table t whose keys stand beside other
 * rows in obj: the other keys are not reported.
 */
void sy_conf_read_shared(struct sy_conf *c, const struct sy_conf_table *t,
    const json_t *obj, const char *path, void *base);

/*
 * Reads text (JSON with comments, named name in errors) against t into
 * base, as sy_conf_read.  Returns 0, or -1 with *err (malloc'd) holding
 * one "NAME:LINE:COL: path: message" line per error.
 */
int sy_conf_load(const char *text, const char *name,
    const struct sy_conf_table *t, void *base, char **err);

/* Gives every field of t's rows in base its default. */
void sy_conf_defaults(const struct sy_conf_table *t, void *base);

/* Frees what the rows of t hold in base (not base). */
void sy_conf_free(const struct sy_conf_table *t, void *base);

/* Copies the fields of t's rows from src to dst (strings copied). */
void sy_conf_copy(const struct sy_conf_table *t, void *dst, const void *src);

/* Whether a field of t's rows differs between a and b. */
int sy_conf_differ(const struct sy_conf_table *t, const void *a,
    const void *b);

/* The row of t called name, or NULL. */
const struct sy_conf_row *sy_conf_row_find(const struct sy_conf_table *t,
    const char *name);

/* Where the field of t's row called name is in base, or NULL. */
const void *sy_conf_field(const struct sy_conf_table *t, const void *base,
    const char *name);

/* ==== For parse and check functions ==== */

/* Reports an error about path: "FILE:LINE:COL: path: message". */
void sy_conf_fail(struct sy_conf *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "a string", "an object", ... for messages. */
const char *sy_conf_type_name(const json_t *v);

/*
 * Writes parent + member key (parent + [i]) into buf (SY_CONF_PATHLEN
 * bytes); returns buf.
 */
char *sy_conf_path_key(char *buf, const char *parent,
    const char *key);
char *sy_conf_path_index(char *buf, const char *parent,
    size_t i);

/*
 * Reads v (at path) as a non-empty string into *s (borrowed).  Returns 0,
 * or -1 after reporting the error.
 */
int sy_conf_string(struct sy_conf *c, const json_t *v, const char *path,
    const char **s);

/*
 * Checks that lo (key lokey of obj, or its default) is below hi (key
 * hikey), or at most hi unless strict.  Reports at lokey when obj has it,
 * else at hikey.
 */
void sy_conf_order(struct sy_conf *c, const json_t *obj, const char *path,
    const char *lokey, unsigned lo, const char *hikey, unsigned hi,
    int strict);

/*
 * Reads a policy value v of row (at path): a name, or an object with
 * "name" and the policy's parameters; NULL: the row's default name.
 * Sets *name (borrowed) and *params (a new object without "name").
 * Returns 0, or -1 after reporting an error.
 */
int sy_conf_policy(struct sy_conf *c, const struct sy_conf_row *row,
    const json_t *v, const char *path, const char **name, json_t **params);

/*
 * Reports that the policy name of v (at path) is unknown, listing names;
 * what says which policy ("batching policy").
 */
void sy_conf_unknown_policy(struct sy_conf *c, const json_t *v,
    const char *path, const char *what, const char *name,
    const char *names);

#endif
