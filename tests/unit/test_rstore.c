/* Unit tests of the stored Responses' memory store: records kept by id, looked up several at once, forgotten, bounded in bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rstore.h"
#include "sy_test.h"

/* The records of n ids in s (memory: found at once), a new array. */
static json_t *
get_all(struct sy_rstore *s, const char *const *ids, size_t n)
{
	struct sy_rstore_op *op;
	json_t *recs;

	if (sy_rstore_get(s, NULL, "sy:", ids, n, &recs, NULL, NULL, &op) !=
	    SY_RSTORE_FOUND || op != NULL)
		return NULL;
	return recs;
}

/* Keeps {"n": n} under id for ttl_s. */
static void
put_n(struct sy_rstore *s, const char *id, int n, unsigned ttl_s)
{
	json_t *rec = json_pack("{s:i}", "n", n);

	sy_rstore_put(s, NULL, "sy:", id, rec, ttl_s);
	json_decref(rec);
}

SY_TEST(records_are_found_by_id_in_the_order_asked)
{
	struct sy_rstore *s = sy_rstore_new(1 << 20);
	const char *ids[] = { "msg_b", "resp_missing", "resp_a" };
	json_t *recs;

	put_n(s, "resp_a", 1, 60);
	put_n(s, "msg_b", 2, 60);
	recs = get_all(s, ids, 3);
	SY_CHECK(json_array_size(recs) == 3);
	SY_CHECK_INT(json_integer_value(json_object_get(json_array_get(recs,
	    0), "n")), 2);
	SY_CHECK(json_is_null(json_array_get(recs, 1)));
	SY_CHECK_INT(json_integer_value(json_object_get(json_array_get(recs,
	    2), "n")), 1);
	json_decref(recs);
	sy_rstore_free(s);
}

SY_TEST(a_forgotten_record_is_not_found)
{
	struct sy_rstore *s = sy_rstore_new(1 << 20);
	const char *ids[] = { "resp_a", "msg_b" };
	json_t *recs;

	put_n(s, "resp_a", 1, 60);
	put_n(s, "msg_b", 2, 60);
	sy_rstore_del(s, NULL, "sy:", ids, 2);
	recs = get_all(s, ids, 2);
	SY_CHECK(json_is_null(json_array_get(recs, 0)));
	SY_CHECK(json_is_null(json_array_get(recs, 1)));
	json_decref(recs);
	sy_rstore_free(s);
}

SY_TEST(ids_that_cannot_be_keys_find_nothing)
{
	struct sy_rstore *s = sy_rstore_new(1 << 20);
	const char *ids[] = { "", "resp a", "resp_\n", "../resp" };
	json_t *recs;
	char longid[300];
	size_t i;

	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	SY_CHECK(!sy_rstore_id_valid(longid));
	SY_CHECK(sy_rstore_id_valid("resp_AZaz09-_"));
	for (i = 0; i < 4; i++) {
		SY_CHECK(!sy_rstore_id_valid(ids[i]));
		put_n(s, ids[i], 1, 60);
	}
	recs = get_all(s, ids, 4);
	for (i = 0; i < 4; i++)
		SY_CHECK(json_is_null(json_array_get(recs, i)));
	json_decref(recs);
	sy_rstore_free(s);
}

SY_TEST(the_memory_store_keeps_within_its_bytes)
{
	struct sy_rstore *s = sy_rstore_new(4096);
	const char *first[] = { "resp_0" }, *last[] = { "resp_99" };
	json_t *recs;
	char id[16];
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof id, "resp_%d", i);
		put_n(s, id, i, 60);
	}
	recs = get_all(s, first, 1);
	SY_CHECK(json_is_null(json_array_get(recs, 0)));
	json_decref(recs);
	recs = get_all(s, last, 1);
	SY_CHECK_INT(json_integer_value(json_object_get(json_array_get(recs,
	    0), "n")), 99);
	json_decref(recs);
	sy_rstore_free(s);
}

SY_TEST(without_memory_nothing_is_kept)
{
	struct sy_rstore *s = sy_rstore_new(0);
	const char *ids[] = { "resp_a" };
	json_t *recs;

	put_n(s, "resp_a", 1, 60);
	recs = get_all(s, ids, 1);
	SY_CHECK(json_is_null(json_array_get(recs, 0)));
	json_decref(recs);
	sy_rstore_free(s);
}

int
main(void)
{
	SY_RUN(records_are_found_by_id_in_the_order_asked);
	SY_RUN(a_forgotten_record_is_not_found);
	SY_RUN(ids_that_cannot_be_keys_find_nothing);
	SY_RUN(the_memory_store_keeps_within_its_bytes);
	SY_RUN(without_memory_nothing_is_kept);
	return sy_test_done();
}
