/* stats: summaries of repeated trials (the bit-fault study's random
 * trials, the corruption study's confidence intervals).
 *
 * Everything is computed in double, in two passes over the values (the
 * mean first, then the squared deviations from it), so that a spread small
 * against the mean is not lost to cancellation. */
#ifndef PARACORR_STATS_H
#define PARACORR_STATS_H

#include <stdint.h>

#include "paracorr/error.h"

struct pc_stats {
	int64_t n;
	double mean;
	double std; /* sample standard deviation (n - 1 in the denominator); NaN for n < 2 */
	double min, max;
	/* 95% confidence interval of the mean, Student's t:
	 * mean -+ t(0.975, n - 1) * std / sqrt(n); NaN for n < 2 */
	double ci95[2];
};

/* The 0.975 quantile of Student's t with df degrees of freedom (the
 * half-width factor of a two-sided 95% interval), df >= 1; NaN for df < 1.
 * df 1..30 come from a table of the exact quantiles (9 decimals); beyond,
 * the Cornish-Fisher expansion in 1/df (Abramowitz and Stegun 26.7.5, four
 * terms around the normal quantile 1.959963984540054), whose error is below
 * 3e-8 from df 31 on and falls with df; INT64_MAX gives the normal
 * quantile. */
double pc_stats_t975(int64_t df);

/* Summary of x[0..n-1] (finite values: the caller leaves the others out).
 * n = 0 gives n 0 and NaN everywhere. PC_ERR_INVALID for n < 0 or a NULL
 * x with n > 0. */
int pc_stats_summarize(const double *x, int64_t n, struct pc_stats *out, struct pc_error *err);

#endif
