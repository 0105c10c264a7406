/* corrupt: the corruption mathematics of method.md as pure functions on
 * float vectors (a group P already gathered into one contiguous vector).
 *
 * Norms are p in [1, inf] (INFINITY for linf, any real p >= 1 otherwise);
 * sparsity n is the number of entries a corruption may touch, 0 meaning
 * dense (all of them), n > count meaning count. Every function returns unit
 * (or eps) sized vectors; the caller scales by eps. Nothing here keeps
 * state between calls or touches a global: the functions are thread-safe,
 * and randomness comes only from the 64-bit stream the caller passes. */
#ifndef PARACORR_CORRUPT_H
#define PARACORR_CORRUPT_H

#include <stdint.h>

#include "paracorr/error.h"

/* Indices of a group's gradient sorted by |g| descending, ties lower index
 * first (-0 and +0 are equal). Built once per gradient, reused for every
 * (p, n, eps) of that gradient. */
struct pc_corrupt_order;

/* Sorts g (count entries, 0 <= count <= 2^32) into a new order owned by
 * the caller (free with pc_corrupt_order_free); linear time, 16 bytes an
 * entry while sorting, 8 kept. PC_ERR_INVALID when an entry of g is not
 * finite, PC_ERR_LIMIT when count > 2^32 (pass order NULL to
 * pc_corrupt_gradient instead), PC_ERR_NOMEM. Does not keep g. */
int pc_corrupt_order_new(const float *g, int64_t count, struct pc_corrupt_order **out, struct pc_error *err);
void pc_corrupt_order_free(struct pc_corrupt_order *o); /* NULL is fine */
int64_t pc_corrupt_order_count(const struct pc_corrupt_order *o);
/* The sorted indices (count of them), owned by o. */
const int64_t *pc_corrupt_order_indices(const struct pc_corrupt_order *o);

/* The gradient-based corruption of unit radius for gradient g: writes u
 * (count floats, zero outside the kept support) with ||u||_p = 1 that
 * maximises u.g over { ||u||_p = 1, ||u||_0 <= n }, so a = eps * u, and the
 * dual norm ||h||_q (q = p / (p - 1)) of the kept gradient h in *dual, so
 * the first-order estimate is eps * *dual. The kept support is the n
 * entries of largest |g| (ties lower index first).
 *
 * order: pc_corrupt_order_new(g, count) or NULL; with NULL the kept support
 * is found by a linear-time selection (same result, no allocation). The
 * caller guarantees order was built from this g.
 *
 * When h = 0 (g = 0, or count = 0) there is no direction: u = 0, *dual = 0,
 * *zero = 1 and PC_OK; otherwise *zero = 0. p = 1 gives sign(g_j) at the
 * single j of largest |g|; p = inf gives sign(h_i) on the kept entries
 * (entries with g_i = 0 stay 0); other p give sign(h_i) (|h_i| / ||h||_q)^(q-1).
 * PC_ERR_INVALID for p < 1 or NaN, n < 0, a non-finite g, an order of
 * another size. u may not alias g. */
int pc_corrupt_gradient(const float *g, int64_t count, const struct pc_corrupt_order *order, double p, int64_t n,
			float *u, double *dual, int *zero, struct pc_error *err);

/* ||x||_p in double with max-scaling, so float entries near FLT_MAX or
 * below FLT_MIN neither overflow nor underflow. p = INFINITY allowed.
 * Returns NaN for p < 1 or NaN, or when x holds a NaN; INFINITY when x
 * holds an infinity; 0 for count = 0. */
double pc_corrupt_norm(const float *x, int64_t count, double p);

/* A random corruption direction of unit p-norm (method.md "Random
 * corruption") into u (count floats): support = all entries when n = 0 or
 * n >= count, else n indices drawn uniformly without replacement (Floyd's
 * algorithm); direction: random signs (exactly +-1) for p = inf, otherwise
 * z ~ N(0, I) on the support scaled to z / ||z||_p. The support has exactly
 * n (or count) non-zero entries. Deterministic from `stream` alone
 * (xoshiro256** seeded by splitmix64, polar-method normals in double), bit
 * for bit on every run with the same build; derive one stream per (job
 * seed, group, sparsity, trial) with pc_rng_derive. No allocation.
 * PC_ERR_INVALID for count < 1, p < 1 or NaN, n < 0. */
int pc_corrupt_random(int64_t count, double p, int64_t n, uint64_t stream, float *u, struct pc_error *err);

/* Projection step of multi-step corruption, in place: keep the n largest
 * |a_i| (ties lower index; n = 0 keeps all), zero the rest, then bring a
 * into the ball ||a||_p <= eps:
 *   p = 1    the exact Euclidean projection onto the l1 ball (soft
 *            thresholding at the threshold found by sorting |a|);
 *   p = inf  clipping each entry to [-eps, eps] (also the Euclidean
 *            projection);
 *   other p  radial scaling a * eps / ||a||_p when outside. For p = 2 that
 *            is the Euclidean projection; for other p it is NOT (the exact
 *            one has no closed form), only a point of the ball on the ray.
 * Float rounding never leaves a outside the ball: a last radial shrink by
 * a few ulps is applied when it would. PC_ERR_INVALID for p < 1 or NaN,
 * n < 0, eps not finite and > 0, a non-finite a; PC_ERR_NOMEM when the
 * l1 sort buffer cannot be allocated (a is then unchanged). */
int pc_corrupt_project(float *a, int64_t count, double p, int64_t n, double eps, struct pc_error *err);

/* Rescales a radially to ||a||_p = eps (up to float rounding). No-op when
 * a = 0, when its norm is not finite, or for p < 1 or NaN. */
void pc_corrupt_rescale(float *a, int64_t count, double p, double eps);

/* A well-mixed 64-bit stream seed from a job seed and up to four integers
 * (splitmix64 chaining; unused ones 0). Every argument changes the result. */
uint64_t pc_rng_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d);

#endif
