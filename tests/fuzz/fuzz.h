/* What the fuzz targets share: cutting an input into the pieces a socket would deliver. */
#ifndef SY_FUZZ_H
#define SY_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* The entry point libFuzzer calls with each input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Cuts [data, data + size) into pieces whose lengths come from the bytes
 * of seed (each 1 to 64, cycling): the read sizes of a peer that writes
 * at arbitrary boundaries.  Calls fn with each piece; stops when fn
 * returns non-zero, and returns that.
 */
static inline int
sy_fuzz_pieces(const uint8_t *data, size_t size, uint8_t seed,
    int (*fn)(const char *p, size_t n, void *arg), void *arg)
{
	size_t at = 0, n;
	unsigned s = seed ? seed : 1;
	int rc;

	while (at < size) {
		s = s * 1103515245u + 12345u;
		n = 1 + (s >> 16) % 64;
		if (n > size - at)
			n = size - at;
		if ((rc = fn((const char *)data + at, n, arg)) != 0)
			return rc;
		at += n;
	}
	return 0;
}

#endif
