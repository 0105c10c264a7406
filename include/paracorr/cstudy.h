/* cstudy: the "curvature" block of a spec (spec.h) run on a study's
 * runner: the top eigenvalues and the trace of the Hessian of the mean
 * loss for the whole model and for each group of the kinds the block
 * lists, and the quadratic form a gradient corruption's second-order
 * estimate needs (curvature.h does the arithmetic).
 *
 * The report's "curvature" object is the model's numbers, {parameters,
 * eigenvalues [k, descending], converged, lanczos_steps, trace (null
 * without trace samples), trace_ci95 [lo, hi] (null likewise),
 * trace_samples, hvp_count}, and "groups": {name: the same}, names as the
 * corruption groups have them ("tensor:conv1.weight", "layer:conv1"),
 * plus "tau", the relative displacement of the products. Every number is
 * reproducible: the Lanczos start vector and the Rademacher vectors of
 * group i come from the spec's seed, stream pc_rng_derive(seed,
 * PC_CSTUDY_STREAM, i, 0 or 1, 0). */
#ifndef PARACORR_CSTUDY_H
#define PARACORR_CSTUDY_H

#include <jansson.h>
#include <stdint.h>

#include "paracorr/curvature.h"
#include "paracorr/spec.h"

#define PC_CSTUDY_STREAM 0x63757276u /* "curv" */
/* Passes one Hessian-vector product costs in a study's count (a forward
 * pass and two forward and backward passes, spec.h's formula). */
#define PC_CSTUDY_PASSES_PER_PRODUCT 3

struct pc_cstudy_opts {
	pc_cancel_fn cancel; /* may be NULL */
	void *cancel_arg;
	/* after each product: the products since the last call (1), and the
	 * planned ones that will not run, now known (Lanczos converged) */
	void (*progress)(void *arg, int64_t products, int64_t dropped);
	void *progress_arg;
};

/* Runs spec's curvature block on runner r (PC_PLAN_GRAD plans holding the
 * clean weights) over the first `limit` samples of d; *out is the report's
 * "curvature" object. The runner's weights are never written. */
int pc_cstudy_run_spec(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const struct pc_spec *spec,
		       const struct pc_cstudy_opts *o, json_t **out, struct pc_error *err);

/* u^T H_G u for the direction u (count floats, the group's elements in
 * table order) of the group of params[0..n-1]: one product. */
int pc_cstudy_quadratic(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const int *params, int n,
			const float *u, int64_t count, const struct pc_cstudy_opts *o, double *out,
			struct pc_error *err);

#endif
