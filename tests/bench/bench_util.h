/* bench_util: what the C benchmarks (gemm_bench, curv_bench) share: the
 * timing of a call, best of rounds so that a neighbour's burst of load
 * costs less, and the --threads list. */
#ifndef PARACORR_BENCH_UTIL_H
#define PARACORR_BENCH_UTIL_H

/* A measured call: nonzero when it failed (the timing stops). */
typedef int (*bench_fn)(void *arg);

/* Best seconds per call over three rounds of at least `seconds` each,
 * after one call that warms the caches and lets OpenBLAS start its
 * threads; -1 when a call failed. */
double bench_time_call(bench_fn fn, void *arg, double seconds);

/* "1,2" into threads[0 .. max): the count, 0 when malformed (each count
 * from 1 to 256). */
int bench_parse_threads(const char *s, int *threads, int max);

#endif
