/* A tiny TAP test harness for the C unit tests: one test, one behaviour. */
#ifndef SY_TEST_H
#define SY_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Usage:
 *	SY_TEST(parses_empty_object) { SY_CHECK(x == 1); SY_CHECK_STR(a, "b"); }
 *	int main(void) { SY_RUN(parses_empty_object); return sy_test_done(); }
 * Each SY_RUN prints "ok N - name" or "not ok N - name"; sy_test_done
 * prints the plan and returns non-zero when any test failed.
 */
static int sy_test_n, sy_test_failed, sy_test_cur_failed;

#define SY_TEST(name) static void test_##name(void)

#define SY_CHECK(cond) do {						\
	if (!(cond)) {							\
		printf("# %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		sy_test_cur_failed = 1;					\
	}								\
} while (0)

#define SY_CHECK_INT(a, b) do {						\
	long long sy_a_ = (long long)(a), sy_b_ = (long long)(b);	\
	if (sy_a_ != sy_b_) {						\
		printf("# %s:%d: %s == %lld, expected %lld\n", __FILE__, __LINE__, #a, sy_a_, sy_b_); \
		sy_test_cur_failed = 1;					\
	}								\
} while (0)

#define SY_CHECK_STR(a, b) do {						\
	const char *sy_a_ = (a), *sy_b_ = (b);				\
	if (sy_a_ == NULL || sy_b_ == NULL || strcmp(sy_a_, sy_b_) != 0) { \
		printf("# %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a, \
		    sy_a_ ? sy_a_ : "(null)", sy_b_ ? sy_b_ : "(null)");	\
		sy_test_cur_failed = 1;					\
	}								\
} while (0)

#define SY_RUN(name) do {						\
	sy_test_cur_failed = 0;						\
	test_##name();							\
	sy_test_n++;							\
	if (sy_test_cur_failed)						\
		sy_test_failed++;					\
	printf("%sok %d - %s\n", sy_test_cur_failed ? "not " : "", sy_test_n, #name); \
	fflush(stdout);							\
} while (0)

static inline int
sy_test_done(void)
{
	printf("1..%d\n", sy_test_n);
	return sy_test_failed ? 1 : 0;
}

/* Reads a whole file under the source tree's tests/fixtures; caller frees. */
static inline char *
sy_test_fixture(const char *rel, size_t *len)
{
	const char *src = getenv("SY_SRCDIR");
	char path[4096];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof path, "%s/tests/fixtures/%s", src ? src : ".", rel);
	if ((f = fopen(path, "rb")) == NULL) {
		printf("# cannot open fixture %s\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
		exit(2);
	buf[n] = '\0';
	fclose(f);
	if (len != NULL)
		*len = (size_t)n;
	return buf;
}

#endif
