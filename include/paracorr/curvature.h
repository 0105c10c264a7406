/* curvature: the Hessian of the mean loss (method.md, "Curvature") on a
 * runner: Hessian-vector products, the top eigenvalues by Lanczos and the
 * trace by Hutchinson's estimator, for the whole model or a group of its
 * parameter tensors (the others stay at the clean weights).
 *
 * The plan has reverse mode only, so a Hessian-vector product is a central
 * difference of two exact gradient passes over the same samples in the
 * same order, with the gates of the clean pass (plan.h, pc_plan_set_gates,
 * through pc_eval_run_gated):
 *
 *   H v ~ (g~(w0 + h v) - g~(w0 - h v)) / (2 h),  h = tau * ||w0_G||_2 / ||v||_2
 *
 * g~ is the gradient of the loss whose Relu, LeakyRelu and Clip pieces and
 * MaxPool choices are those of w0, batch by batch: the function PyTorch's
 * double backward differentiates (its Relu has no second derivative), and
 * a smooth one, so the difference has no jumps where a pre-activation
 * changes sign between w0 - h v and w0 + h v. Without the gates those
 * jumps, which do not shrink with h, put products of generic vectors off
 * by 3% to several times on ReLU models. The displacement is a fixed
 * fraction of the group's weight norm whatever the length of v. What is
 * left is truncation, h^2 / 6 * ||D^3 L[v, v, .]||, growing with tau^2,
 * and rounding: each gradient is float32 (per-batch sums in float, the
 * shards in double), about 1e-7 of the per-sample gradients it adds up,
 * divided by 2h, so it grows as 1 / tau; the two passes run the same
 * arithmetic on nearby weights, so much of it cancels.
 *
 * What that gives at the default tau (5e-4), against PyTorch's
 * double-backward products in float64 (tests/test_curvature.c, docs/method.md
 * "Curvature"): products within 3.3e-4 of the whole vector on a tanh MLP, a
 * ReLU MLP and a ReLU + max-pool CNN (v.Hv within 1e-4), top eigenvalues
 * within 0.1%, traces within their 95% intervals, second-order estimates
 * within 1e-4; and within 1e-4 of a double-precision difference of double
 * gradients on a tiny ReLU MLP. Piecewise ops other
 * than those four (Abs, HardSigmoid, HardSwish, ReduceMax, Where on a
 * computed mask) are not frozen: a model with them has their jumps back.
 *
 * Each product costs a forward pass (recording the gates) and two forward
 * and backward passes. Passes are deterministic (fixed shards summed in a
 * fixed order), so a product is the same bits at every thread count, and
 * the runner's weights are never written. */
#ifndef PARACORR_CURVATURE_H
#define PARACORR_CURVATURE_H

#include <stdint.h>

#include "paracorr/data.h"
#include "paracorr/error.h"
#include "paracorr/eval.h"
#include "paracorr/runner.h"
#include "paracorr/stats.h"

/* The default relative displacement tau (see above). */
#define PC_CURV_TAU 5e-4
/* Lanczos steps at most, and the bytes its basis may take (steps x size
 * doubles). */
#define PC_CURV_MAX_ITERATIONS 500
#define PC_CURV_MAX_BASIS_BYTES ((int64_t)1 << 30)
/* A Ritz value is converged when its residual bound |beta_m s_mi| is
 * below this fraction of its magnitude. */
#define PC_CURV_RITZ_TOL 1e-4

struct pc_curv;

struct pc_curv_opts {
	double tau;	     /* <= 0: PC_CURV_TAU */
	pc_cancel_fn cancel; /* may be NULL; polled between batches */
	void *cancel_arg;
	void (*product)(void *arg); /* may be NULL; after each product */
	void *product_arg;
};

/* A study of the block of params[0..n-1] (parameter table indices) of
 * runner r, whose plans were made with PC_PLAN_GRAD and whose current
 * weights are the clean ones, on the first `limit` samples of d (all when
 * limit <= 0). r, d and o's cancel must outlive it. PC_ERR_INVALID
 * ("group") for an empty group or an index outside the table. */
int pc_curv_new(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const int *params, int n,
		const struct pc_curv_opts *o, struct pc_curv **out, struct pc_error *err);
void pc_curv_free(struct pc_curv *c);

/* Elements of the group (the length of every vector below). */
int64_t pc_curv_size(const struct pc_curv *c);
/* Products computed so far. */
int64_t pc_curv_hvp_count(const struct pc_curv *c);
/* The displacement length tau * ||w0_G||_2 a product steps by. */
double pc_curv_displacement(const struct pc_curv *c);

/* hv = H v, both pc_curv_size doubles, the group's elements in table
 * order. v = 0 gives 0 without a pass; PC_ERR_INVALID ("vector") when v
 * is not finite. */
int pc_curv_hvp(struct pc_curv *c, const double *v, double *hv, struct pc_error *err);

/* A vector reproducible anywhere: v_i = 2 u_i - 1, u_i the top 53 bits of
 * splitmix64's (i + 1)-th output from state seed, over 2^53. */
void pc_curv_seeded_vector(uint64_t seed, int64_t n, double *v);

/* The k largest eigenvalues (descending) by Lanczos with full
 * reorthogonalisation from a start vector of stream seed, at most
 * max_steps products (stopped when the k Ritz values have converged,
 * PC_CURV_RITZ_TOL). *steps receives the products used, *converged
 * whether all k converged. PC_ERR_INVALID ("eigenvalues") for k < 1 or
 * k > max_steps, ("iterations") for max_steps outside
 * [1, PC_CURV_MAX_ITERATIONS]; PC_ERR_LIMIT ("iterations") when the basis
 * would pass PC_CURV_MAX_BASIS_BYTES. Fewer than k values only when the
 * group is smaller than k (then *found says how many). */
int pc_curv_top(struct pc_curv *c, int k, int max_steps, uint64_t seed, double *eig, int *found, int *steps,
		int *converged, struct pc_error *err);

/* Hutchinson's trace estimate: the mean of z^T H z over `samples`
 * Rademacher vectors z (sample s from the stream pc_rng_derive(seed, s,
 * ...)), its spread and 95% interval (pc_stats_summarize). PC_ERR_INVALID
 * ("trace_samples") for samples < 1. */
int pc_curv_trace(struct pc_curv *c, int samples, uint64_t seed, struct pc_stats *out, struct pc_error *err);

#endif
