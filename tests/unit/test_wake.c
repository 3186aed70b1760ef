/* Unit tests of lib/wake.c: a thread wakes another's event base. */
#include <pthread.h>
#include <stdatomic.h>

#include <event2/event.h>

#include "sy_test.h"
#include "wake.h"

#define POSTS 10000

struct mail {
	struct event_base *base;
	struct sy_wake *wake;
	atomic_int posted;		/* items the poster put in the box */
	int taken;			/* items the base's thread took */
	int calls;
};

static void
on_wake(void *arg)
{
	struct mail *m = arg;

	m->calls++;
	m->taken = atomic_load(&m->posted);
	if (m->taken == POSTS)
		event_base_loopbreak(m->base);
}

static void *
poster(void *arg)
{
	struct mail *m = arg;
	int i;

	for (i = 0; i < POSTS; i++) {
		atomic_fetch_add(&m->posted, 1);
		sy_wake_post(m->wake);
	}
	return NULL;
}

SY_TEST(posts_from_another_thread_wake_the_base_until_the_last)
{
	struct mail m = { 0 };
	pthread_t t;

	m.base = event_base_new();
	m.wake = sy_wake_new(m.base, on_wake, &m);
	SY_CHECK(m.wake != NULL);
	pthread_create(&t, NULL, poster, &m);
	event_base_dispatch(m.base);
	pthread_join(t, NULL);
	SY_CHECK_INT(m.taken, POSTS);
	/* Posts that come together wake once. */
	SY_CHECK(m.calls >= 1 && m.calls <= POSTS);
	sy_wake_free(m.wake);
	event_base_free(m.base);
}

SY_TEST(a_post_before_the_loop_runs_is_not_lost)
{
	struct mail m = { 0 };

	m.base = event_base_new();
	m.wake = sy_wake_new(m.base, on_wake, &m);
	atomic_store(&m.posted, POSTS);
	sy_wake_post(m.wake);
	event_base_dispatch(m.base);
	SY_CHECK_INT(m.calls, 1);
	SY_CHECK_INT(m.taken, POSTS);
	sy_wake_free(m.wake);
	event_base_free(m.base);
}

int
main(void)
{
	SY_RUN(posts_from_another_thread_wake_the_base_until_the_last);
	SY_RUN(a_post_before_the_loop_runs_is_not_lost);
	return sy_test_done();
}
