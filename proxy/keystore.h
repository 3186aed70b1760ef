/* Dynamic API keys: made, listed, updated and revoked through the admin API, kept in Redis as key objects under their hash, and known to every instance within a second (each keeps what it read for at most that long). */
#ifndef SY_KEYSTORE_H
#define SY_KEYSTORE_H

#include <stddef.h>

#include "tenants.h"

struct sy_redis;
struct sy_keystore_op;

/* What a lookup of a dynamic key came to. */
enum sy_keystore_result {
	SY_KEYSTORE_FOUND,		/* *key set: a reference the caller drops */
	SY_KEYSTORE_UNKNOWN,		/* no such key (or it was revoked) */
	SY_KEYSTORE_UNAVAILABLE,	/* Redis away, and nothing known of it */
	SY_KEYSTORE_PENDING		/* Redis will tell: cb later */
};

/* Told the result of a pending lookup (key: a reference, or NULL). */
typedef void (*sy_keystore_fn)(void *arg, enum sy_keystore_result result,
    struct sy_key *key);

/*
 * Looks up the dynamic key of hash: what this process read of it less
 * than a second ago (refreshed in the background after half a second),
 * else from Redis through r (keys under prefix).  Returns the result, or
 * SY_KEYSTORE_PENDING with *op set (cb comes later unless cancelled).
 */
enum sy_keystore_result sy_keystore_lookup(struct sy_redis *r,
    const char *prefix, const unsigned char hash[SY_KEY_HASH_LEN],
    struct sy_key **key, sy_keystore_fn cb, void *arg,
    struct sy_keystore_op **op);

/* Forgets a pending lookup. */
void sy_keystore_cancel(struct sy_keystore_op *op);

/* Forgets what this process knows of hash (it was revoked or changed here). */
void sy_keystore_forget(const unsigned char hash[SY_KEY_HASH_LEN]);

/* Frees what the process keeps (at exit). */
void sy_keystore_free(void);

/*
 * A new random key ("sk-sy-" and 40 letters and digits) into buf (at
 * least 64 bytes), for the admin API to hand out once.
 */
void sy_keystore_new_secret(char *buf, size_t len);

#endif
