/* Latency histograms: log-linear buckets with one writer and lock-free readers. */
#include <stdatomic.h>
#include <stdint.h>

#include "hist.h"

/*
 * Bucket i < SY_HIST_SUB holds exactly the value i.  Above, row r ≥ 1 holds
 * [2^(r+3), 2^(r+4)) in SY_HIST_SUB equal sub-buckets, so a bucket is never
 * wider than 1/SY_HIST_SUB of its lower bound.  The last bucket also takes
 * every value above its range.
 */
static unsigned
bucket_of(uint64_t v)
{
	unsigned p, i;

	if (v < SY_HIST_SUB)
		return (unsigned)v;
	p = 63 - (unsigned)__builtin_clzll(v);		/* 2^p ≤ v, p ≥ 4 */
	i = (p - 3) * SY_HIST_SUB +
	    (unsigned)((v >> (p - 4)) & (SY_HIST_SUB - 1));
	return i < SY_HIST_NBUCKETS ? i : SY_HIST_NBUCKETS - 1;
}

/* The smallest value of bucket i. */
static uint64_t
bucket_lower(unsigned i)
{
	unsigned row = i / SY_HIST_SUB, sub = i % SY_HIST_SUB;

	if (row == 0)
		return i;
	return (uint64_t)(SY_HIST_SUB + sub) << (row - 1);
}

/* The largest value of bucket i (UINT64_MAX for the last one). */
static uint64_t
bucket_upper(unsigned i)
{
	if (i == SY_HIST_NBUCKETS - 1)
		return UINT64_MAX;
	return bucket_lower(i + 1) - 1;
}

/* a + n, stopping at UINT64_MAX. */
static uint64_t
add_sat(uint64_t a, uint64_t n)
{
	return a + n < a ? UINT64_MAX : a + n;
}

/* Zeroes every counter of h. */
void
sy_hist_init(struct sy_hist *h)
{
	unsigned i;

	atomic_init(&h->count, 0);
	atomic_init(&h->sum_us, 0);
	for (i = 0; i < SY_HIST_NBUCKETS; i++)
		atomic_init(&h->buckets[i], 0);
}

/* Counts us in its bucket and in the sum; h's only writer. */
void
sy_hist_add(struct sy_hist *h, uint64_t us)
{
	atomic_ullong *b = &h->buckets[bucket_of(us)];

	atomic_store_explicit(b,
	    atomic_load_explicit(b, memory_order_relaxed) + 1,
	    memory_order_relaxed);
	atomic_store_explicit(&h->sum_us,
	    add_sat(atomic_load_explicit(&h->sum_us, memory_order_relaxed), us),
	    memory_order_relaxed);
	atomic_store_explicit(&h->count,
	    atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

/*
 * The count of dst grows by the sum of the buckets read from src rather
 * than by src's count, so that a histogram merged while its writer runs
 * stays consistent with its own buckets.
 */
void
sy_hist_merge(struct sy_hist *dst, const struct sy_hist *src)
{
	uint64_t n, total = 0;
	unsigned i;

	for (i = 0; i < SY_HIST_NBUCKETS; i++) {
		n = atomic_load_explicit(&src->buckets[i],
		    memory_order_relaxed);
		if (n == 0)
			continue;
		total += n;
		atomic_store_explicit(&dst->buckets[i],
		    atomic_load_explicit(&dst->buckets[i],
		    memory_order_relaxed) + n, memory_order_relaxed);
	}
	atomic_store_explicit(&dst->count,
	    atomic_load_explicit(&dst->count, memory_order_relaxed) + total,
	    memory_order_relaxed);
	atomic_store_explicit(&dst->sum_us,
	    add_sat(atomic_load_explicit(&dst->sum_us, memory_order_relaxed),
	    atomic_load_explicit(&src->sum_us, memory_order_relaxed)),
	    memory_order_relaxed);
}

/*
 * Walks to the bucket holding the value of rank q × n (target ≤ n, so the
 * walk always stops on a bucket) and places it linearly between that
 * bucket's smallest and largest value; the last bucket, open above,
 * answers its smallest value.
 */
uint64_t
sy_hist_quantile(const struct sy_hist *h, double q)
{
	uint64_t counts[SY_HIST_NBUCKETS], n = 0, lo, hi;
	double target, cum = 0, frac;
	unsigned i;

	for (i = 0; i < SY_HIST_NBUCKETS; i++) {
		counts[i] = atomic_load_explicit(&h->buckets[i],
		    memory_order_relaxed);
		n += counts[i];
	}
	if (n == 0)
		return 0;
	if (!(q >= 0))			/* also NaN */
		q = 0;
	if (q > 1)
		q = 1;
	target = q * (double)n;
	for (i = 0; i < SY_HIST_NBUCKETS; i++) {
		if (counts[i] == 0)
			continue;
		if (cum + (double)counts[i] >= target)
			break;
		cum += (double)counts[i];
	}
	lo = bucket_lower(i);
	if (i == SY_HIST_NBUCKETS - 1)
		return lo;
	hi = bucket_upper(i);
	frac = (target - cum) / (double)counts[i];
	if (frac < 0)
		frac = 0;
	return lo + (uint64_t)(frac * (double)(hi - lo) + 0.5);
}

/* Sums the buckets whose largest value is at most le_us. */
uint64_t
sy_hist_count_le(const struct sy_hist *h, uint64_t le_us)
{
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < SY_HIST_NBUCKETS && bucket_upper(i) <= le_us; i++)
		n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	return n;
}
