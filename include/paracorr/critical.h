/* critical: the critical radius of a corruption (method.md "The critical
 * radius"), found on a callback so that it can be tested alone.
 *
 * The radius at which accuracy first falls below clean - drop as eps grows.
 * The radii already evaluated (a study's sweep) are reused: the bracket is
 * [lo, hi] with hi the smallest known radius below the budget and lo the
 * largest known radius under hi (0 if none). When no known radius is below
 * the budget, the search grows from the largest known radius (or from
 * start without any), each step 2 to PC_CRITICAL_MAX_STEP times the last as
 * the accuracy lost so far extrapolates, at most PC_CRITICAL_MAX_DOUBLINGS
 * steps and no further than PC_CRITICAL_MAX_GROWTH times where it began.
 * Then it narrows the bracket until hi - lo <= tolerance * hi: while lo is
 * 0, steps down by 2 to 8 times as the accuracy lost extrapolates, then
 * the ITP method (interpolate, truncate, project;
 * Oliveira and Takahashi 2020), which takes at most PC_CRITICAL_ITP_N0 more
 * evaluations than bisection and far fewer on a smooth curve; at most
 * PC_CRITICAL_MAX_BISECTIONS in all.
 *
 * The reported epsilon is hi: a radius where accuracy is below the budget,
 * with the supremum of the radii within it in [hi (1 - tolerance), hi] when
 * accuracy is monotone. */
#ifndef PARACORR_CRITICAL_H
#define PARACORR_CRITICAL_H

#include "paracorr/error.h"

/* the upward search's steps, each 2 to 8 times the last, and its reach: a
 * million times the largest radius of the sweep */
#define PC_CRITICAL_MAX_DOUBLINGS 20
#define PC_CRITICAL_MAX_STEP 8.0
#define PC_CRITICAL_MAX_GROWTH 1048576.0
#define PC_CRITICAL_ITP_N0 1
#define PC_CRITICAL_MAX_BISECTIONS 30
/* the most new evaluations one search makes */
#define PC_CRITICAL_MAX_EVALUATIONS (PC_CRITICAL_MAX_DOUBLINGS + PC_CRITICAL_MAX_BISECTIONS)
#define PC_CRITICAL_DEFAULT_TOLERANCE 0.01

/* The accuracy of the corruption of radius eps (> 0). */
typedef int (*pc_critical_eval_fn)(void *ctx, double eps, double *accuracy, struct pc_error *err);

struct pc_critical_opts {
	double clean;	  /* clean accuracy */
	double drop;	  /* in (0, 1] */
	double tolerance; /* relative, in (0, 0.5] */
	double start;	  /* first radius to try when no radius is known; > 0 */
};

struct pc_critical_result {
	int reached;	 /* 0: accuracy stayed within the budget up to the last doubling */
	int converged;	 /* the bracket met the tolerance */
	double epsilon;	 /* hi; NaN when not reached */
	double accuracy; /* at epsilon; NaN when not reached */
	double lower;	 /* lo: the largest radius found within the budget, 0 if none */
	int evaluations; /* new calls of f */
};

/* Searches with the n known radii eps[] (> 0, any order) and their
 * accuracies acc[]. PC_ERR_INVALID on bad options; f's error is passed on. */
int pc_critical_search(const struct pc_critical_opts *o, const double *eps, const double *acc, int n,
		       pc_critical_eval_fn f, void *ctx, struct pc_critical_result *r, struct pc_error *err);

#endif
