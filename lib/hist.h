/* Latency histograms: fixed log-linear buckets in microseconds, one writer, merged when read. */
#ifndef SY_HIST_H
#define SY_HIST_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Buckets cover 1 µs .. ~1 hour with ≤ 6.25% relative error (16 linear
 * sub-buckets per power of two).  Values above the top go to the last one.
 */
#define SY_HIST_SUB 16
#define SY_HIST_POW 32
#define SY_HIST_NBUCKETS (SY_HIST_SUB * SY_HIST_POW)

struct sy_hist {
	atomic_ullong count;
	atomic_ullong sum_us;
	atomic_ullong buckets[SY_HIST_NBUCKETS];
};

/* Zeroes h. */
void sy_hist_init(struct sy_hist *h);

/*
 * Adds one value.  Only one thread may add to a given histogram; others may
 * read it at the same time (relaxed atomics, no locks).
 */
void sy_hist_add(struct sy_hist *h, uint64_t us);

/* Adds every count of src into dst (dst is private to the caller). */
void sy_hist_merge(struct sy_hist *dst, const struct sy_hist *src);

/*
 * The value at quantile q (0..1) in µs, interpolated inside its bucket;
 * 0 when h is empty.
 */
uint64_t sy_hist_quantile(const struct sy_hist *h, double q);

/* Number of values ≤ le_us (counts whole buckets whose upper bound ≤ le_us). */
uint64_t sy_hist_count_le(const struct sy_hist *h, uint64_t le_us);

#endif
