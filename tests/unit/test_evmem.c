/* Unit tests of libevent's allocator: sizes, reuse of freed blocks, realloc, large blocks, and evbuffers running on it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "evmem.h"
#include "sy_test.h"

SY_TEST(a_freed_block_is_reused_for_the_next_of_its_size)
{
	char *a = sy_evmem_malloc(3000), *b, *c;

	SY_CHECK(a != NULL);
	memset(a, 'x', 3000);
	sy_evmem_free(a);
	/* 2049..4096 bytes share a size: the block comes back. */
	b = sy_evmem_malloc(4096);
	SY_CHECK(b == a);
	/* Another size does not take it. */
	c = sy_evmem_malloc(100);
	SY_CHECK(c != b);
	memset(b, 'y', 4096);
	memset(c, 'z', 100);
	sy_evmem_free(b);
	sy_evmem_free(c);
	sy_evmem_free(NULL);
}

SY_TEST(blocks_of_every_size_are_aligned_and_writable)
{
	size_t sizes[] = { 0, 1, 511, 512, 513, 8192, 8193, 100000 };
	void *p[8];
	size_t i;

	for (i = 0; i < 8; i++) {
		p[i] = sy_evmem_malloc(sizes[i]);
		SY_CHECK(p[i] != NULL);
		SY_CHECK(((uintptr_t)p[i] & 15) == 0);
		memset(p[i], (int)i, sizes[i]);
	}
	for (i = 0; i < 8; i++)
		sy_evmem_free(p[i]);
}

SY_TEST(realloc_keeps_the_bytes_and_grows_past_the_block)
{
	char *p = sy_evmem_malloc(10), *q;
	int i;

	memcpy(p, "0123456789", 10);
	SY_CHECK(sy_evmem_realloc(p, 400) == p);	/* fits its 512 bytes */
	q = sy_evmem_realloc(p, 20000);
	SY_CHECK(q != NULL);
	SY_CHECK(memcmp(q, "0123456789", 10) == 0);
	for (i = 0; i < 20000; i++)
		q[i] = (char)i;
	p = sy_evmem_realloc(q, 30000);
	for (i = 0; i < 20000 && p[i] == (char)i; i++)
		;
	SY_CHECK(i == 20000);
	sy_evmem_free(p);
	p = sy_evmem_realloc(NULL, 64);
	SY_CHECK(p != NULL);
	sy_evmem_free(p);
}

SY_TEST(many_blocks_of_one_size_come_and_go)
{
	void *p[200];
	int i, round;

	for (round = 0; round < 3; round++) {
		for (i = 0; i < 200; i++) {
			p[i] = sy_evmem_malloc(1024);
			memset(p[i], i, 1024);
		}
		for (i = 0; i < 200; i++) {
			SY_CHECK(((unsigned char *)p[i])[1023] == (unsigned char)i);
			sy_evmem_free(p[i]);
		}
	}
}

SY_TEST(evbuffers_work_on_it)
{
	struct evbuffer *b = evbuffer_new(), *c = evbuffer_new();
	char chunk[1500], out[64];
	int i;

	memset(chunk, 'a', sizeof chunk);
	for (i = 0; i < 100; i++)
		evbuffer_add(b, chunk, sizeof chunk);
	evbuffer_add(b, "end", 3);
	SY_CHECK_INT(evbuffer_get_length(b), 150003);
	evbuffer_remove_buffer(b, c, 70000);
	evbuffer_drain(b, 80000);
	SY_CHECK_INT(evbuffer_get_length(b), 3);
	SY_CHECK_INT(evbuffer_remove(b, out, sizeof out), 3);
	SY_CHECK(memcmp(out, "end", 3) == 0);
	SY_CHECK(evbuffer_pullup(c, -1)[69999] == 'a');
	evbuffer_free(b);
	evbuffer_free(c);
}

int
main(void)
{
	sy_evmem_init();
	SY_RUN(a_freed_block_is_reused_for_the_next_of_its_size);
	SY_RUN(blocks_of_every_size_are_aligned_and_writable);
	SY_RUN(realloc_keeps_the_bytes_and_grows_past_the_block);
	SY_RUN(many_blocks_of_one_size_come_and_go);
	SY_RUN(evbuffers_work_on_it);
	return sy_test_done();
}
