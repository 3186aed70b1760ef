/* Waking an event base's thread from any other thread: one eventfd, one callback; what to do travels in the waker's own queue or fields. */
#ifndef SY_WAKE_H
#define SY_WAKE_H

struct event_base;
struct sy_wake;

/* Called on the thread of the base, after one or more sy_wake_post. */
typedef void (*sy_wake_fn)(void *arg);

/*
 * A waker on base that calls fn(arg) on base's thread after each batch of
 * posts.  Returns it, or NULL (errno set) when no eventfd can be made.
 */
struct sy_wake *sy_wake_new(struct event_base *base, sy_wake_fn fn,
    void *arg);

/* Makes w's callback run soon; any thread.  Never blocks. */
void sy_wake_post(struct sy_wake *w);

/* Frees w (NULL is ignored), on its base's thread; later posts are bugs. */
void sy_wake_free(struct sy_wake *w);

#endif
