/* The auth stage: with "auth": "keys", the client's API key (Authorization: Bearer, or x-api-key) is hashed and found among the config's keys or the dynamic ones in Redis; a missing, unknown, expired or revoked key gets 401. */
#include <string.h>
#include <strings.h>

#include "config.h"
#include "exchange.h"
#include "http1.h"
#include "keystore.h"
#include "tenants.h"
#include "util.h"
#include "worker.h"

/* The key the client presents, or NULL; *len its length. */
static const char *
presented(const struct sy_http1_msg *head, size_t *len)
{
	const char *v;

	if (head == NULL)
		return NULL;
	if ((v = sy_http1_header(head, "authorization")) != NULL &&
	    strncasecmp(v, "Bearer ", 7) == 0) {
		for (v += 7; *v == ' '; v++)
			;
	} else if ((v = sy_http1_header(head, "x-api-key")) == NULL)
		return NULL;
	*len = strlen(v);
	return *len > 0 ? v : NULL;
}

/* The request is the key's (a reference taken over), or 401 when it has expired. */
static enum sy_verdict
identify(struct sy_exchange *x, struct sy_key *key)
{
	struct sy_req *req = &x->req;

	if (key->expires_ms != 0 &&
	    (int64_t)(sy_wall_us() / 1000) >= key->expires_ms) {
		sy_key_unref(key);
		return sy_exchange_fail(x, 401, NULL, "expired_api_key",
		    "the API key has expired", NULL);
	}
	req->key = key;
	req->key_id = key->id;
	req->team = key->team;
	return SY_NEXT;
}

/* A missing, unknown or revoked key. */
static enum sy_verdict
refuse(struct sy_exchange *x, const char *code, const char *message)
{
	return sy_exchange_fail(x, 401, NULL, code, message,
	    "WWW-Authenticate: Bearer\r\n");
}

/* What the key store said of a dynamic key. */
static enum sy_verdict
looked_up(struct sy_exchange *x, enum sy_keystore_result r,
    struct sy_key *key)
{
	switch (r) {
	case SY_KEYSTORE_FOUND:
		return identify(x, key);
	case SY_KEYSTORE_UNAVAILABLE:
		return sy_exchange_fail(x, 503, "server_error",
		    "key_store_unavailable", "the key store cannot be reached; "
		    "retry later", "Retry-After: 1\r\n");
	default:
		return refuse(x, "invalid_api_key", "the API key is not "
		    "valid (unknown or revoked)");
	}
}

static void
on_lookup(void *arg, enum sy_keystore_result r, struct sy_key *key)
{
	struct sy_exchange *x = arg;

	x->auth.op = NULL;
	sy_drive(x, looked_up(x, r, key));
}

static enum sy_verdict
auth_enter(struct sy_exchange *x)
{
	const struct sy_tenancy *t = &x->req.cfg->tenancy;
	unsigned char hash[SY_KEY_HASH_LEN];
	const struct sy_key *sk;
	struct sy_key *dk;
	enum sy_keystore_result r;
	const char *key;
	size_t len;

	if (!t->keys_required)
		return SY_NEXT;
	if ((key = presented(x->req.head, &len)) == NULL)
		return refuse(x, "missing_api_key", "an API key is required "
		    "(Authorization: Bearer KEY, or x-api-key: KEY)");
	sy_key_hash(key, len, hash);
	if ((sk = sy_tenancy_key(t, hash)) != NULL)
		return identify(x, (struct sy_key *)sk);
	if (x->w->redis == NULL)
		return refuse(x, "invalid_api_key", "the API key is not valid");
	r = sy_keystore_lookup(x->w->redis, t->redis_prefix, hash, &dk,
	    on_lookup, x, &x->auth.op);
	if (r == SY_KEYSTORE_PENDING)
		return SY_WAIT;
	return looked_up(x, r, dk);
}

static void
auth_end(struct sy_exchange *x)
{
	sy_keystore_cancel(x->auth.op);
}

const struct sy_stage sy_stage_auth = {
	.name = "auth",
	.enter = auth_enter,
	.end = auth_end
};
