/* Waking an event base's thread from any other thread: one eventfd, one callback; what to do travels in the waker's own queue or fields. */
#include <sys/eventfd.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "wake.h"

struct sy_wake {
	int fd;				/* eventfd */
	struct event *ev;
	sy_wake_fn fn;
	void *arg;
};

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sy_wake *w = arg;
	uint64_t n;

	(void)what;
	/* EAGAIN: another turn read it already; the callback runs anyway. */
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN && errno != EINTR)
		return;
	w->fn(w->arg);
}

struct sy_wake *
sy_wake_new(struct event_base *base, sy_wake_fn fn, void *arg)
{
	struct sy_wake *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	if ((w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		free(w);
		return NULL;
	}
	w->fn = fn;
	w->arg = arg;
	w->ev = event_new(base, w->fd, EV_READ | EV_PERSIST, wake_cb, w);
	if (w->ev == NULL || event_add(w->ev, NULL) != 0) {
		if (w->ev != NULL)
			event_free(w->ev);
		close(w->fd);
		free(w);
		return NULL;
	}
	return w;
}

void
sy_wake_post(struct sy_wake *w)
{
	uint64_t one = 1;
	ssize_t n;

	/* Only a counter at its limit refuses, and then a wake is pending. */
	do
		n = write(w->fd, &one, sizeof one);
	while (n < 0 && errno == EINTR);
}

void
sy_wake_free(struct sy_wake *w)
{
	if (w == NULL)
		return;
	event_free(w->ev);
	close(w->fd);
	free(w);
}
