/* Finite-difference gradient checks for ops and graphs.
 *
 * The scalar checked is L = sum(output * R) for a fixed random R, so every
 * output element is exercised; L is summed in double. Each parameter tensor
 * and the input are checked on up to `samples` elements each (all when the
 * tensor is smaller) by central differences with step eps:
 *   |analytic - numeric| <= atol + rtol * |numeric|.
 *
 * Outputs of any rank count: [N, C] and a sequence model's [N, T, V] alike
 * (batch * positions * classes elements). An input of int64 token ids is
 * filled with ids drawn uniformly below the bound the plan reports (the
 * rows of the embedding the ids index), or below `tokens` when set; ids
 * have no gradient, so check_input is refused for such a graph. */
#ifndef PARACORR_GRADCHECK_H
#define PARACORR_GRADCHECK_H

#include <stdint.h>

#include "paracorr/graph.h"
#include "test.h"

struct gc_opts {
	int batch;
	double eps;
	double atol, rtol;
	int samples;	    /* elements checked per tensor; 0 = 64 */
	uint64_t seed;
	int check_input;    /* also the input gradient */
	float input_lo, input_hi; /* input drawn uniformly from [lo, hi]; both 0 = [-1, 1] */
	int training;	    /* the plan in training mode (batch statistics, Dropout masks) */
	int64_t tokens;	    /* int64 input: ids drawn from [0, tokens); 0 = the plan's id limit */
};

/* What a check compared: elements, those whose numeric gradient exceeds
 * 10 * atol (where the check means something beyond its noise bound), and
 * the largest |analytic - numeric|. */
struct gc_stats {
	int checked, significant;
	double worst;
};

/* Runs the check, reporting every mismatch through t. Returns the number of
 * elements compared (so a test can assert that something was checked). */
int gc_check(struct pc_test *t, const struct pc_graph *g, const struct gc_opts *o);
/* The same, filling *st (may be NULL). */
int gc_check_stats(struct pc_test *t, const struct pc_graph *g, const struct gc_opts *o, struct gc_stats *st);

/* Deterministic uniform floats in [lo, hi] (xorshift64*). */
void gc_fill(float *x, int64_t n, uint64_t seed, float lo, float hi);
/* Deterministic uniform ids in [0, limit). */
void gc_fill_ids(int64_t *x, int64_t n, uint64_t seed, int64_t limit);

#endif
