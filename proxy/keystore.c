/* Dynamic API keys: made, listed, updated and revoked through the admin API, kept in Redis as key objects under their hash, and known to every instance within a second (each keeps what it read for at most that long). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/rand.h>

#include "keystore.h"
#include "redis.h"
#include "util.h"

/* How long what was read of a key is used, and when it is read again. */
#define KNOWN_MS 1000
#define REFRESH_MS 500
/* How long a key read while Redis was up may still be used while it is away. */
#define STALE_MS 60000
#define SLOTS 256

/* What this process read of one key (key NULL: there is none). */
struct known {
	struct known *next;
	unsigned char hash[SY_KEY_HASH_LEN];
	struct sy_key *key;
	uint64_t read_ms;		/* monotonic */
	int refreshing;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct known *table[SLOTS];

struct sy_keystore_op {
	struct sy_redis_cmd *cmd;
	unsigned char hash[SY_KEY_HASH_LEN];
	sy_keystore_fn cb;		/* NULL: a background refresh */
	void *arg;
};

static uint64_t
now_ms(void)
{
	return sy_now_us() / 1000;
}

/* Under lock: the entry of hash, or NULL. */
static struct known *
find(const unsigned char *hash)
{
	struct known *k;

	for (k = table[hash[0] % SLOTS]; k != NULL; k = k->next)
		if (memcmp(k->hash, hash, SY_KEY_HASH_LEN) == 0)
			return k;
	return NULL;
}

/* Notes what Redis said of hash (key: taken, or NULL: no such key). */
static void
remember(const unsigned char *hash, struct sy_key *key)
{
	struct known *k;

	pthread_mutex_lock(&lock);
	if ((k = find(hash)) == NULL) {
		k = sy_xcalloc(1, sizeof *k);
		memcpy(k->hash, hash, SY_KEY_HASH_LEN);
		k->next = table[hash[0] % SLOTS];
		table[hash[0] % SLOTS] = k;
	}
	sy_key_unref(k->key);
	k->key = key;
	k->read_ms = now_ms();
	k->refreshing = 0;
	pthread_mutex_unlock(&lock);
}

/* The key object Redis held (rep), for hash; NULL when none or not one of ours. */
static struct sy_key *
key_of(const redisReply *rep, const unsigned char *hash)
{
	struct sy_key *k;
	json_t *o;
	char *err = NULL;

	if (rep->type != REDIS_REPLY_STRING)
		return NULL;
	o = json_loadb(rep->str, rep->len, 0, NULL);
	k = sy_xcalloc(1, sizeof *k);
	if (sy_key_parse(o, k, &err) != 0 ||
	    memcmp(k->hash, hash, SY_KEY_HASH_LEN) != 0) {
		sy_log(SY_LOG_WARN, "keys: a key object in Redis is not "
		    "valid: %s", err != NULL ? err : "its hash differs");
		free(err);
		sy_key_clear(k);
		free(k);
		json_decref(o);
		return NULL;
	}
	json_decref(o);
	k->dynamic = 1;
	return k;
}

static void
on_key(void *arg, const redisReply *rep)
{
	struct sy_keystore_op *op = arg;
	struct sy_key *key = NULL;
	struct known *k;
	enum sy_keystore_result result;

	op->cmd = NULL;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		/* Redis away: what was known, if it is not too old. */
		pthread_mutex_lock(&lock);
		if ((k = find(op->hash)) != NULL) {
			k->refreshing = 0;
			if (k->key != NULL && now_ms() - k->read_ms < STALE_MS)
				key = sy_key_ref(k->key);
		}
		pthread_mutex_unlock(&lock);
		result = key != NULL ? SY_KEYSTORE_FOUND :
		    SY_KEYSTORE_UNAVAILABLE;
	} else {
		key = key_of(rep, op->hash);
		remember(op->hash, key != NULL ? sy_key_ref(key) : NULL);
		result = key != NULL ? SY_KEYSTORE_FOUND : SY_KEYSTORE_UNKNOWN;
	}
	if (op->cb != NULL)
		op->cb(op->arg, result, key);
	else
		sy_key_unref(key);
	free(op);
}

/* Asks Redis for hash's key object; NULL when it cannot be asked now. */
static struct sy_keystore_op *
ask(struct sy_redis *r, const char *prefix, const unsigned char *hash,
    sy_keystore_fn cb, void *arg)
{
	struct sy_keystore_op *op = sy_xcalloc(1, sizeof *op);
	char hex[2 * SY_KEY_HASH_LEN + 1];

	memcpy(op->hash, hash, SY_KEY_HASH_LEN);
	op->cb = cb;
	op->arg = arg;
	sy_key_hash_hex(hash, hex);
	if ((op->cmd = sy_redis_commandf(r, on_key, op, "GET %skey:%s", prefix,
	    hex)) == NULL) {
		free(op);
		return NULL;
	}
	return op;
}

enum sy_keystore_result
sy_keystore_lookup(struct sy_redis *r, const char *prefix,
    const unsigned char hash[SY_KEY_HASH_LEN], struct sy_key **key,
    sy_keystore_fn cb, void *arg, struct sy_keystore_op **op)
{
	enum sy_keystore_result result = SY_KEYSTORE_PENDING;
	uint64_t now = now_ms();
	struct known *k;
	int refresh = 0;

	*key = NULL;
	*op = NULL;
	pthread_mutex_lock(&lock);
	if ((k = find(hash)) != NULL && now - k->read_ms < KNOWN_MS) {
		if (k->key != NULL) {
			*key = sy_key_ref(k->key);
			result = SY_KEYSTORE_FOUND;
		} else
			result = SY_KEYSTORE_UNKNOWN;
		if (now - k->read_ms >= REFRESH_MS && !k->refreshing)
			refresh = k->refreshing = 1;
	}
	pthread_mutex_unlock(&lock);
	if (result != SY_KEYSTORE_PENDING) {
		if (refresh && ask(r, prefix, hash, NULL, NULL) == NULL) {
			pthread_mutex_lock(&lock);
			if ((k = find(hash)) != NULL)
				k->refreshing = 0;
			pthread_mutex_unlock(&lock);
		}
		return result;
	}
	if ((*op = ask(r, prefix, hash, cb, arg)) != NULL)
		return SY_KEYSTORE_PENDING;
	/* Redis cannot be asked: what was known, if it is not too old. */
	pthread_mutex_lock(&lock);
	if ((k = find(hash)) != NULL && k->key != NULL &&
	    now - k->read_ms < STALE_MS) {
		*key = sy_key_ref(k->key);
		result = SY_KEYSTORE_FOUND;
	} else
		result = SY_KEYSTORE_UNAVAILABLE;
	pthread_mutex_unlock(&lock);
	return result;
}

void
sy_keystore_cancel(struct sy_keystore_op *op)
{
	if (op == NULL)
		return;
	/* Its answer still refreshes what is known. */
	op->cb = NULL;
}

void
sy_keystore_forget(const unsigned char hash[SY_KEY_HASH_LEN])
{
	struct known **pk, *k;

	pthread_mutex_lock(&lock);
	for (pk = &table[hash[0] % SLOTS]; (k = *pk) != NULL; pk = &k->next)
		if (memcmp(k->hash, hash, SY_KEY_HASH_LEN) == 0) {
			*pk = k->next;
			sy_key_unref(k->key);
			free(k);
			break;
		}
	pthread_mutex_unlock(&lock);
}

void
sy_keystore_free(void)
{
	struct known *k;
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < SLOTS; i++)
		while ((k = table[i]) != NULL) {
			table[i] = k->next;
			sy_key_unref(k->key);
			free(k);
		}
	pthread_mutex_unlock(&lock);
}

void
sy_keystore_new_secret(char *buf, size_t len)
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz";
	unsigned char r[40];
	size_t i, j;

	if (RAND_bytes(r, sizeof r) != 1)
		abort();	/* no randomness: no keys */
	i = (size_t)snprintf(buf, len, "sk-sy-");
	for (j = 0; j < sizeof r && i + 1 < len; j++)
		buf[i++] = digits[r[j] % 62];
	buf[i] = '\0';
}
