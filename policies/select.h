/* Building blocks shared by the model-selection policies: request features, candidate models, regexes, answers. */
#ifndef SY_SELECT_H
#define SY_SELECT_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct evbuffer;
struct sy_answer;
struct sy_route;
struct sy_req;

/* ==== Request features ==== */

/*
 * The estimated prompt tokens of req: the bytes of its texts (message
 * contents and their text parts, a completion's prompt, an embedding's
 * input) divided by 4, rounded up; 0 when it has none.
 */
uint64_t sy_select_prompt_tokens(const struct sy_req *req);

/* The number of messages of req (0 when it has no "messages" array). */
size_t sy_select_messages(const struct sy_req *req);

/* Whether req offers tools: a non-empty "tools" or "functions" array. */
int sy_select_has_tools(const struct sy_req *req);

/* Whether a message of req holds an image part (image_url, image, input_image). */
int sy_select_has_images(const struct sy_req *req);

/* Whether req sets "response_format" to another type than "text". */
int sy_select_has_response_format(const struct sy_req *req);

/* Whether req's "response_format" asks for JSON (json_object, json_schema). */
int sy_select_wants_json(const struct sy_req *req);

/*
 * Whether model has an endpoint in route that is up: weight above 0, not
 * marked down by health checks, not ejected (it may be full).
 */
int sy_select_model_up(const struct sy_route *route, const char *model);

/* req's "max_tokens" (or "max_completion_tokens"), 0 when it sets neither. */
uint64_t sy_select_max_tokens(const struct sy_req *req);

/*
 * The text of the last user message of req (its text parts joined), or
 * of a completion's prompt; "" when none.  Returns a malloc'd string the
 * caller frees.
 */
char *sy_select_last_user(const struct sy_req *req);

/*
 * The model an answer of req's model may escalate to under its route's
 * selection policy (owned by the config), or NULL when the answer is final.
 */
const char *sy_select_next(const struct sy_req *req);

/* ==== Parameters ==== */

/*
 * Finds name (at path, relative to the policy's object; NULL when the
 * value there is not a string) among the served models of route and sets
 * *model to route's own string.  Returns 0, or -1 with *err malloc'd:
 * "PATH: message".
 */
int sy_select_model(const struct sy_route *route, const char *path,
    const char *name, const char **model, char **err);

/*
 * Reads parameter key of params, an array of at least min distinct served
 * models of route, into *models (malloc'd array of route's strings, caller
 * frees) and *n; absent: the route's models (when min allows).  Returns 0
 * or -1 with *err.
 */
int sy_select_models(const json_t *params, const char *key,
    const struct sy_route *route, size_t min, const char ***models,
    size_t *n, char **err);

/*
 * Compiles v (at path), a POSIX extended regular expression, into *re
 * (REG_EXTENDED | REG_NOSUB).  Returns 0, or -1 with *err.
 */
int sy_select_regex(regex_t *re, const char *path, const json_t *v,
    char **err);

/*
 * Checks that route names its models (not a wildcard route) for policy.
 * Returns 0, or -1 with *err.
 */
int sy_select_named(const struct sy_route *route, const char *policy,
    char **err);

#endif
