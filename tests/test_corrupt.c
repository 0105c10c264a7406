/* Tests of the corruption mathematics (core/corrupt.c).
 *
 * The gradient corruption is checked against method.md's test vectors, then
 * as an optimiser: on random gradients (with zeros and ties) no random
 * feasible corruption may beat it, and the dual norm must equal u.g. The
 * references here are written the slow obvious way (quadratic ranking,
 * bisection for the l1 threshold, pow without scaling on modest values),
 * with a test-local generator so a bug in the library's generator cannot
 * hide itself. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/corrupt.h"
#include "paracorr/rng.h"
#include "test.h"

/* --- test-local helpers --------------------------------------------------- */

struct trng {
	uint64_t x;
};

static uint64_t trng_next(struct trng *r)
{
	return pc_rng_splitmix64(&r->x);
}

static double trng_unit(struct trng *r)
{
	return (double)(trng_next(r) >> 11) / 9007199254740992.0;
}

static int64_t trng_int(struct trng *r, int64_t n)
{
	return (int64_t)(trng_next(r) % (uint64_t)n);
}

static double trng_normal(struct trng *r)
{
	double u1 = trng_unit(r), u2 = trng_unit(r);

	return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* Gradient-like vectors: continuous, integers in [-3, 3] (zeros and ties),
 * or continuous with a third of the entries zeroed. */
static void fill_g(struct trng *r, float *g, int64_t count, int mode)
{
	for (int64_t i = 0; i < count; i++) {
		if (mode == 0)
			g[i] = (float)trng_normal(r);
		else if (mode == 1)
			g[i] = (float)(trng_int(r, 7) - 3);
		else
			g[i] = trng_int(r, 3) == 0 ? 0.0f : (float)trng_normal(r);
	}
}

static double ref_norm(const double *x, int64_t count, double p)
{
	double s = 0.0;

	for (int64_t i = 0; i < count; i++) {
		if (isinf(p))
			s = fabs(x[i]) > s ? fabs(x[i]) : s;
		else
			s += pow(fabs(x[i]), p);
	}
	return isinf(p) ? s : pow(s, 1.0 / p);
}

static double dotf(const float *u, const float *g, int64_t count)
{
	double s = 0.0;

	for (int64_t i = 0; i < count; i++)
		s += (double)u[i] * (double)g[i];
	return s;
}

static int64_t l0(const float *u, int64_t count)
{
	int64_t c = 0;

	for (int64_t i = 0; i < count; i++)
		c += u[i] != 0.0f;
	return c;
}

static int64_t eff_n(int64_t count, int64_t n)
{
	return n == 0 || n > count ? count : n;
}

/* keep[i] = 1 when i is among the k largest |x| (ties lower index), by
 * counting who ranks before i. */
static void ref_topk(const float *x, int64_t count, int64_t k, int *keep)
{
	for (int64_t i = 0; i < count; i++) {
		int64_t rank = 0;
		for (int64_t j = 0; j < count; j++) {
			float aj = fabsf(x[j]), ai = fabsf(x[i]);
			if (aj > ai || (aj == ai && j < i))
				rank++;
		}
		keep[i] = rank < k;
	}
}

/* The dual norm of the kept gradient, straight from the definition. */
static double ref_dual(const float *g, int64_t count, double p, int64_t n)
{
	int keep[256];
	double h[256], q;
	int64_t k = eff_n(count, n);

	ref_topk(g, count, p == 1.0 ? 1 : k, keep);
	for (int64_t i = 0; i < count; i++)
		h[i] = keep[i] ? (double)g[i] : 0.0;
	if (isinf(p))
		q = 1.0;
	else if (p == 1.0)
		q = INFINITY;
	else
		q = p / (p - 1.0);
	return ref_norm(h, count, q);
}

/* --- the gradient corruption ---------------------------------------------- */

TEST(corrupt_method_vectors)
{
	static const float g[4] = {3, -4, 0, 1};
	static const struct {
		double p;
		int64_t n;
		float a[4];
		double phi;
	} rows[] = {
	    {2, 2, {0.6f, -0.8f, 0, 0}, 5},
	    {2, 0, {0.588348f, -0.784465f, 0, 0.196116f}, 5.099020},
	    {INFINITY, 2, {1, -1, 0, 0}, 7},
	    {INFINITY, 0, {1, -1, 0, 1}, 8},
	    {1, 0, {0, -1, 0, 0}, 4},
	    {1, 1, {0, -1, 0, 0}, 4},
	    {1, 2, {0, -1, 0, 0}, 4},
	    {1, 4, {0, -1, 0, 0}, 4},
	    {3, 2, {0.732956f, -0.846345f, 0, 0}, 5.584250},
	    {3, 0, {0.715326f, -0.825987f, 0, 0.412993f}, 5.862917},
	    {1.5, 2, {0.444851f, -0.790847f, 0, 0}, 4.497941},
	};
	struct pc_corrupt_order *o = NULL;
	struct pc_error err = {0};

	REQUIRE(pc_corrupt_order_new(g, 4, &o, &err) == PC_OK);
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		for (int use_order = 0; use_order < 2; use_order++) {
			float u[4] = {9, 9, 9, 9};
			double dual = -1;
			int zero = -1;
			const double eps = 1.0;

			CHECK_INT(pc_corrupt_gradient(g, 4, use_order ? o : NULL, rows[r].p, rows[r].n, u, &dual, &zero,
						      &err),
				  PC_OK);
			CHECK_INT(zero, 0);
			for (int i = 0; i < 4; i++)
				CHECK_MSG(fabs(eps * u[i] - rows[r].a[i]) <= 1e-6,
					  "row %zu (p %g n %lld) a[%d] = %.9g, expected %.9g", r, rows[r].p,
					  (long long)rows[r].n, i, eps * u[i], (double)rows[r].a[i]);
			CHECK_CLOSE(eps * dual, rows[r].phi, 1e-6, 0);
			CHECK_CLOSE(eps * dotf(u, g, 4), rows[r].phi, 1e-6, 0);
		}
	}
	pc_corrupt_order_free(o);
}

TEST(corrupt_order_matches_naive)
{
	static const int64_t sizes[] = {0, 1, 2, 31, 32, 33, 65, 100, 257, 1000};
	struct trng r = {11};
	struct pc_error err = {0};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int64_t count = sizes[s];
		float *g = malloc((size_t)(count ? count : 1) * sizeof(*g));
		REQUIRE(g);
		for (int mode = 0; mode < 3; mode++) {
			struct pc_corrupt_order *o = NULL;
			fill_g(&r, g, count, mode);
			if (count > 3) {
				g[1] = -0.0f; /* -0 and +0 tie */
				g[2] = 0.0f;
			}
			CHECK_INT(pc_corrupt_order_new(g, count, &o, &err), PC_OK);
			if (!o)
				continue;
			CHECK_INT(pc_corrupt_order_count(o), count);
			const int64_t *idx = pc_corrupt_order_indices(o);
			for (int64_t j = 0; j + 1 < count; j++) {
				float a = fabsf(g[idx[j]]), b = fabsf(g[idx[j + 1]]);
				CHECK_MSG(a > b || (a == b && idx[j] < idx[j + 1]), "size %lld mode %d: position %lld",
					  (long long)count, mode, (long long)j);
			}
			/* a permutation */
			{
				char *seen = calloc((size_t)count + 1, 1);
				REQUIRE(seen);
				for (int64_t j = 0; j < count; j++) {
					CHECK(idx[j] >= 0 && idx[j] < count);
					if (idx[j] >= 0 && idx[j] < count) {
						CHECK(!seen[idx[j]]);
						seen[idx[j]] = 1;
					}
				}
				free(seen);
			}
			pc_corrupt_order_free(o);
		}
		free(g);
	}
}

/* u is optimal: every random feasible a (support <= n, ||a||_p = 1) gives
 * a.g <= u.g. */
static void check_optimal(struct pc_test *t, struct trng *r, const float *g, int64_t count, double p, int64_t k,
			  double best)
{
	double a[256];
	int64_t perm[256];

	for (int trial = 0; trial < 2000; trial++) {
		int64_t s = 1 + trng_int(r, k);
		int kind = trial % 3;
		double ag = 0.0, nrm;

		for (int64_t i = 0; i < count; i++) {
			perm[i] = i;
			a[i] = 0.0;
		}
		/* the first s entries of a partial shuffle are a uniform support */
		for (int64_t i = 0; i < s; i++) {
			int64_t j = i + trng_int(r, count - i), tmp = perm[i];
			perm[i] = perm[j];
			perm[j] = tmp;
			if (kind == 0)
				a[perm[i]] = trng_normal(r);
			else if (kind == 1)
				a[perm[i]] = trng_int(r, 2) ? 1.0 : -1.0;
			else /* aligned with g, but with a random profile */
				a[perm[i]] = copysign(trng_unit(r) + 1e-3, (double)g[perm[i]]);
		}
		nrm = ref_norm(a, count, p);
		if (!(nrm > 0.0))
			continue;
		for (int64_t i = 0; i < count; i++)
			ag += a[i] / nrm * (double)g[i];
		if (!(ag <= best + 1e-5 * fabs(best) + 1e-12)) {
			pc_test_fail(t, __FILE__, __LINE__,
				     "count %lld p %g k %lld: a random corruption gives %.9g > %.9g", (long long)count,
				     p, (long long)k, ag, best);
			return;
		}
	}
}

TEST(corrupt_gradient_properties)
{
	static const int64_t sizes[] = {1, 2, 5, 17, 64, 200};
	static const double ps[] = {1, 1.5, 2, 3, INFINITY};
	struct trng r = {7};
	struct pc_error err = {0};
	float g[256], u[256], v[256];
	int keep[256];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int64_t count = sizes[s];
		const int64_t ns[] = {0, 1, 3, count / 2, count + 5};
		for (int mode = 0; mode < 3; mode++) {
			struct pc_corrupt_order *o = NULL;
			fill_g(&r, g, count, mode);
			REQUIRE(pc_corrupt_order_new(g, count, &o, &err) == PC_OK);
			for (size_t pi = 0; pi < sizeof(ps) / sizeof(ps[0]); pi++) {
				for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
					double p = ps[pi], dual = -1, dual2 = -1;
					int64_t n = ns[ni], k = eff_n(count, n);
					int zero = -1, zero2 = -1, all_zero = 1;

					CHECK_INT(pc_corrupt_gradient(g, count, o, p, n, u, &dual, &zero, &err), PC_OK);
					CHECK_INT(pc_corrupt_gradient(g, count, NULL, p, n, v, &dual2, &zero2, &err),
						  PC_OK);
					/* the selection path gives the sorted path's bytes */
					CHECK(memcmp(u, v, (size_t)count * sizeof(*u)) == 0);
					CHECK(dual == dual2 && zero == zero2);
					for (int64_t i = 0; i < count; i++)
						all_zero &= g[i] == 0.0f;
					CHECK_INT(zero, all_zero);
					if (zero) {
						CHECK(dual == 0.0 && l0(u, count) == 0);
						continue;
					}
					CHECK_CLOSE(pc_corrupt_norm(u, count, p), 1.0, 0, 1e-5);
					CHECK(l0(u, count) <= (p == 1.0 ? 1 : k));
					/* zero outside the kept support */
					ref_topk(g, count, k, keep);
					for (int64_t i = 0; i < count; i++)
						CHECK(keep[i] || u[i] == 0.0f);
					CHECK_CLOSE(dotf(u, g, count), dual, 0, 1e-5);
					CHECK_CLOSE(dual, ref_dual(g, count, p, n), 0, 1e-5);
					check_optimal(t, &r, g, count, p, k, dotf(u, g, count));
				}
			}
			pc_corrupt_order_free(o);
		}
	}
}

TEST(corrupt_gradient_extreme_p)
{
	static const double ps[] = {1.0001, 1.001, 1.01, 100, 1e3, 1e6, 1e17};
	struct trng r = {3};
	struct pc_error err = {0};
	float g[50], u[50];

	fill_g(&r, g, 50, 0);
	for (size_t pi = 0; pi < sizeof(ps) / sizeof(ps[0]); pi++) {
		for (int64_t n = 0; n <= 10; n += 5) {
			double dual = -1, p = ps[pi];
			int zero = -1;
			CHECK_INT(pc_corrupt_gradient(g, 50, NULL, p, n, u, &dual, &zero, &err), PC_OK);
			CHECK_INT(zero, 0);
			CHECK(isfinite(dual));
			for (int i = 0; i < 50; i++)
				CHECK(isfinite(u[i]));
			CHECK_CLOSE(pc_corrupt_norm(u, 50, p), 1.0, 0, 1e-5);
			CHECK_CLOSE(dotf(u, g, 50), dual, 0, 1e-5);
			/* the ends approach the l1 and linf answers */
			if (p < 1.01)
				CHECK_CLOSE(dual, ref_dual(g, 50, 1.0, n), 0, 1e-2);
			if (p >= 1e6)
				CHECK_CLOSE(dual, ref_dual(g, 50, INFINITY, n), 0, 1e-4);
		}
	}
}

TEST(corrupt_gradient_ties)
{
	static const float g[4] = {1, -1, 1, -1};
	struct pc_corrupt_order *o = NULL;
	struct pc_error err = {0};
	float u[4];
	double dual;
	int zero;

	REQUIRE(pc_corrupt_order_new(g, 4, &o, &err) == PC_OK);
	for (int i = 0; i < 4; i++)
		CHECK_INT(pc_corrupt_order_indices(o)[i], i);
	for (int use_order = 0; use_order < 2; use_order++) {
		const struct pc_corrupt_order *oo = use_order ? o : NULL;

		CHECK_INT(pc_corrupt_gradient(g, 4, oo, 2.0, 2, u, &dual, &zero, &err), PC_OK);
		CHECK_CLOSE(u[0], 1 / sqrt(2.0), 1e-7, 0);
		CHECK_CLOSE(u[1], -1 / sqrt(2.0), 1e-7, 0);
		CHECK(u[2] == 0.0f && u[3] == 0.0f);
		CHECK_CLOSE(dual, sqrt(2.0), 1e-12, 0);

		CHECK_INT(pc_corrupt_gradient(g, 4, oo, INFINITY, 2, u, &dual, &zero, &err), PC_OK);
		CHECK(u[0] == 1.0f && u[1] == -1.0f && u[2] == 0.0f && u[3] == 0.0f);
		CHECK(dual == 2.0);

		CHECK_INT(pc_corrupt_gradient(g, 4, oo, 1.0, 0, u, &dual, &zero, &err), PC_OK);
		CHECK(u[0] == 1.0f && u[1] == 0.0f && u[2] == 0.0f && u[3] == 0.0f);
		CHECK(dual == 1.0);
	}
	pc_corrupt_order_free(o);

	/* many equal magnitudes, some -0: the first n indices */
	{
		float big[1000], w[1000];
		for (int i = 0; i < 1000; i++)
			big[i] = i % 2 ? -1.0f : 1.0f;
		big[0] = -0.0f;
		big[1] = 0.0f;
		CHECK_INT(pc_corrupt_gradient(big, 1000, NULL, INFINITY, 500, w, &dual, &zero, &err), PC_OK);
		for (int i = 0; i < 1000; i++)
			CHECK(w[i] == (i >= 2 && i < 502 ? big[i] : 0.0f));
		CHECK(dual == 500.0);
	}
}

TEST(corrupt_gradient_zero)
{
	static const double ps[] = {1, 1.5, 2, 3, INFINITY};
	static const float zeros[5] = {0};
	float g[5] = {0, -0.0f, 0, 0, -0.0f}, u[5];
	struct pc_error err = {0};
	struct pc_corrupt_order *o = NULL;

	REQUIRE(pc_corrupt_order_new(g, 5, &o, &err) == PC_OK);
	for (size_t pi = 0; pi < sizeof(ps) / sizeof(ps[0]); pi++) {
		for (int64_t n = 0; n <= 3; n++) {
			double dual = -1;
			int zero = -1;
			for (int i = 0; i < 5; i++)
				u[i] = 7.0f;
			CHECK_INT(pc_corrupt_gradient(g, 5, n % 2 ? o : NULL, ps[pi], n, u, &dual, &zero, &err), PC_OK);
			CHECK_INT(zero, 1);
			CHECK(dual == 0.0);
			CHECK(memcmp(u, zeros, sizeof(u)) == 0); /* +0, not -0 */
		}
	}
	pc_corrupt_order_free(o);
	/* an empty group */
	{
		double dual = -1;
		int zero = -1;
		CHECK_INT(pc_corrupt_gradient(g, 0, NULL, 2.0, 0, u, &dual, &zero, &err), PC_OK);
		CHECK_INT(zero, 1);
		CHECK(dual == 0.0);
	}
}

TEST(corrupt_gradient_huge_tiny)
{
	static const float base[4] = {3, -4, 0, 1};
	static const double ps[] = {1, 1.5, 2, 3, 20, INFINITY};
	static const double scales[] = {1e30, 1e-30, 1e-40};
	struct pc_error err = {0};

	for (size_t si = 0; si < sizeof(scales) / sizeof(scales[0]); si++) {
		float g[4], u[4], u1[4];
		double sc = scales[si]; /* 1e-40 is a float subnormal: coarse values */
		for (int i = 0; i < 4; i++)
			g[i] = (float)(base[i] * sc);
		for (size_t pi = 0; pi < sizeof(ps) / sizeof(ps[0]); pi++) {
			double p = ps[pi], dual = -1, dual1 = -1, expect_norm;
			double h[4];
			int zero = -1;
			CHECK_INT(pc_corrupt_gradient(g, 4, NULL, p, 0, u, &dual, &zero, &err), PC_OK);
			CHECK_INT(pc_corrupt_gradient(base, 4, NULL, p, 0, u1, &dual1, &zero, &err), PC_OK);
			CHECK_INT(zero, 0);
			CHECK(isfinite(dual) && dual > 0);
			/* the same direction as for the unscaled gradient, the dual
			 * norm scaled (g holds the float-rounded values) */
			for (int i = 0; i < 4; i++)
				CHECK_CLOSE(u[i], u1[i], si == 2 ? 1e-4 : 1e-6, 0);
			CHECK_CLOSE(dual, dual1 * ((double)g[1] / -4.0), 0, si == 2 ? 1e-4 : 1e-6);
			/* and the norm of the scaled vector */
			for (int i = 0; i < 4; i++)
				h[i] = base[i];
			expect_norm = ref_norm(h, 4, p) * ((double)g[1] / -4.0);
			CHECK_CLOSE(pc_corrupt_norm(g, 4, p), expect_norm, 0, si == 2 ? 1e-4 : 1e-6);
		}
	}
	/* near FLT_MAX, many entries */
	{
		float g[1000], u[1000];
		double dual;
		int zero;
		for (int i = 0; i < 1000; i++)
			g[i] = i % 2 ? FLT_MAX : -FLT_MAX / 2;
		CHECK_CLOSE(pc_corrupt_norm(g, 1000, 2.0), FLT_MAX * sqrt(500 * 1.25), 0, 1e-6);
		CHECK(isfinite(pc_corrupt_norm(g, 1000, 3.0)));
		CHECK_INT(pc_corrupt_gradient(g, 1000, NULL, 1.5, 0, u, &dual, &zero, &err), PC_OK);
		CHECK(isfinite(dual));
		CHECK_CLOSE(pc_corrupt_norm(u, 1000, 1.5), 1.0, 0, 1e-5);
		CHECK_CLOSE(dotf(u, g, 1000), dual, 0, 1e-5);
	}
}

TEST(corrupt_norm_values)
{
	static const float x[4] = {3, -4, 0, 1};

	CHECK_CLOSE(pc_corrupt_norm(x, 4, 1.0), 8.0, 0, 1e-15);
	CHECK_CLOSE(pc_corrupt_norm(x, 4, 2.0), sqrt(26.0), 0, 1e-15);
	CHECK_CLOSE(pc_corrupt_norm(x, 4, 3.0), cbrt(92.0), 0, 1e-14);
	CHECK(pc_corrupt_norm(x, 4, INFINITY) == 4.0);
	CHECK_CLOSE(pc_corrupt_norm(x, 4, 1e6), 4.0, 0, 1e-6);
	CHECK(pc_corrupt_norm(x, 0, 2.0) == 0.0);
	CHECK(isnan(pc_corrupt_norm(x, 4, 0.5)));
	CHECK(isnan(pc_corrupt_norm(x, 4, NAN)));
	{
		float y[3] = {1, INFINITY, 2};
		CHECK(isinf(pc_corrupt_norm(y, 3, 2.0)));
		y[1] = NAN;
		CHECK(isnan(pc_corrupt_norm(y, 3, 2.0)));
		CHECK(isnan(pc_corrupt_norm(y, 3, INFINITY)));
	}
}

TEST(corrupt_errors)
{
	float g[4] = {1, 2, 3, 4}, u[4];
	double dual;
	int zero;
	struct pc_corrupt_order *o = NULL;
	struct pc_error err;

#define EXPECT_INVALID(call)                                                                                           \
	do {                                                                                                           \
		pc_error_clear(&err);                                                                                  \
		CHECK_INT(call, PC_ERR_INVALID);                                                                       \
		CHECK_INT(err.code, PC_ERR_INVALID);                                                                   \
		CHECK(err.text[0] != '\0');                                                                            \
	} while (0)

	EXPECT_INVALID(pc_corrupt_gradient(g, 4, NULL, 0.5, 0, u, &dual, &zero, &err));
	EXPECT_INVALID(pc_corrupt_gradient(g, 4, NULL, NAN, 0, u, &dual, &zero, &err));
	EXPECT_INVALID(pc_corrupt_gradient(g, 4, NULL, -INFINITY, 0, u, &dual, &zero, &err));
	EXPECT_INVALID(pc_corrupt_gradient(g, 4, NULL, 2.0, -1, u, &dual, &zero, &err));
	EXPECT_INVALID(pc_corrupt_gradient(g, -1, NULL, 2.0, 0, u, &dual, &zero, &err));
	pc_error_clear(&err);
	REQUIRE(pc_corrupt_order_new(g, 3, &o, &err) == PC_OK);
	EXPECT_INVALID(pc_corrupt_gradient(g, 4, o, 2.0, 0, u, &dual, &zero, &err));
	pc_corrupt_order_free(o);
	o = NULL;
	g[2] = NAN;
	EXPECT_INVALID(pc_corrupt_gradient(g, 4, NULL, 2.0, 0, u, &dual, &zero, &err));
	EXPECT_INVALID(pc_corrupt_order_new(g, 4, &o, &err));
	CHECK(o == NULL);
	EXPECT_INVALID(pc_corrupt_project(g, 4, 2.0, 0, 1.0, &err));
	g[2] = -INFINITY;
	EXPECT_INVALID(pc_corrupt_gradient(g, 4, NULL, INFINITY, 0, u, &dual, &zero, &err));
	g[2] = 3;
	EXPECT_INVALID(pc_corrupt_project(g, 4, 2.0, 0, 0.0, &err));
	EXPECT_INVALID(pc_corrupt_project(g, 4, 2.0, 0, -1.0, &err));
	EXPECT_INVALID(pc_corrupt_project(g, 4, 2.0, 0, INFINITY, &err));
	EXPECT_INVALID(pc_corrupt_project(g, 4, 2.0, 0, NAN, &err));
	EXPECT_INVALID(pc_corrupt_project(g, 4, 0.99, 0, 1.0, &err));
	EXPECT_INVALID(pc_corrupt_project(g, 4, 2.0, -2, 1.0, &err));
	EXPECT_INVALID(pc_corrupt_random(0, 2.0, 0, 1, u, &err));
	EXPECT_INVALID(pc_corrupt_random(4, 0.0, 0, 1, u, &err));
	EXPECT_INVALID(pc_corrupt_random(4, 2.0, -1, 1, u, &err));
#undef EXPECT_INVALID
}

/* --- random corruption ---------------------------------------------------- */

TEST(corrupt_random_basic)
{
	static const int64_t sizes[] = {1, 7, 100};
	static const double ps[] = {1, 1.5, 2, 3, INFINITY};
	struct pc_error err = {0};
	float u[100], v[100];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int64_t count = sizes[s];
		const int64_t ns[] = {0, 1, 3, count / 2, count + 1};
		for (size_t pi = 0; pi < sizeof(ps) / sizeof(ps[0]); pi++) {
			for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
				double p = ps[pi];
				int64_t n = ns[ni], k = eff_n(count, n);
				uint64_t stream = pc_rng_derive(42, (uint64_t)s, pi, ni, 0);
				int differs = 0;

				if (n == 0 && ni > 0)
					continue; /* count / 2 = 0 for count 1: covered */
				CHECK_INT(pc_corrupt_random(count, p, n, stream, u, &err), PC_OK);
				CHECK_CLOSE(pc_corrupt_norm(u, count, p), 1.0, 0, 1e-5);
				CHECK_INT(l0(u, count), k);
				if (isinf(p))
					for (int64_t i = 0; i < count; i++)
						CHECK(u[i] == 0.0f || u[i] == 1.0f || u[i] == -1.0f);
				for (int64_t i = 0; i < count; i++)
					CHECK(isfinite(u[i]));
				/* same stream, same bytes */
				for (int64_t i = 0; i < count; i++)
					v[i] = 5.0f;
				CHECK_INT(pc_corrupt_random(count, p, n, stream, v, &err), PC_OK);
				CHECK(memcmp(u, v, (size_t)count * sizeof(*u)) == 0);
				/* other streams differ (a one-entry direction is +-1 by
				 * construction, so only the sign can change there) */
				for (uint64_t d = 1; d <= 8; d++) {
					CHECK_INT(pc_corrupt_random(count, p, n, stream + d, v, &err), PC_OK);
					differs |= memcmp(u, v, (size_t)count * sizeof(*u)) != 0;
				}
				CHECK(differs);
			}
		}
	}
}

TEST(corrupt_random_statistics)
{
	enum { COUNT = 10, N = 3, TRIALS = 30000 };
	struct pc_error err = {0};
	double freq[COUNT] = {0}, sum[COUNT] = {0}, pos[COUNT] = {0}, chi2 = 0.0;
	float u[COUNT];

	/* sparse gaussian directions: the support is uniform, the values
	 * symmetric */
	for (int trial = 0; trial < TRIALS; trial++) {
		REQUIRE(pc_corrupt_random(COUNT, 2.0, N, pc_rng_derive(5, 1, 2, (uint64_t)trial, 0), u, &err) == PC_OK);
		for (int i = 0; i < COUNT; i++) {
			freq[i] += u[i] != 0.0f;
			sum[i] += u[i];
		}
	}
	for (int i = 0; i < COUNT; i++) {
		double expect = (double)TRIALS * N / COUNT;
		chi2 += (freq[i] - expect) * (freq[i] - expect) / expect;
		CHECK_MSG(fabs(sum[i] / freq[i]) < 0.03, "mean of u[%d] = %g", i, sum[i] / freq[i]);
	}
	/* 9 degrees of freedom: P(chi2 > 40) is about 1e-5 */
	CHECK_MSG(chi2 < 40.0, "support chi-square %g", chi2);

	/* dense signs: balanced per entry */
	for (int trial = 0; trial < TRIALS; trial++) {
		REQUIRE(pc_corrupt_random(COUNT, INFINITY, 0, pc_rng_derive(6, (uint64_t)trial, 0, 0, 0), u, &err) ==
			PC_OK);
		for (int i = 0; i < COUNT; i++)
			pos[i] += u[i] > 0.0f;
	}
	for (int i = 0; i < COUNT; i++)
		CHECK_CLOSE(pos[i] / TRIALS, 0.5, 0.02, 0);
}

/* The normals behind the l2 direction: sqrt(count) u is close to N(0, 1),
 * and the first-order term has the typical size method.md quotes. */
TEST(corrupt_random_gaussian)
{
	enum { COUNT = 4000 };
	struct pc_error err = {0};
	static float u[COUNT], g[400];
	double m4 = 0.0, inside = 0.0, mean_abs = 0.0, gn;
	struct trng r = {99};

	REQUIRE(pc_corrupt_random(COUNT, 2.0, 0, 1234, u, &err) == PC_OK);
	for (int i = 0; i < COUNT; i++) {
		double z = u[i] * sqrt((double)COUNT);
		m4 += z * z * z * z / COUNT;
		inside += fabs(z) < 1.0;
	}
	CHECK_CLOSE(m4, 3.0, 0.4, 0);
	CHECK_CLOSE(inside / COUNT, 0.6827, 0.03, 0);

	fill_g(&r, g, 400, 0);
	gn = pc_corrupt_norm(g, 400, 2.0);
	for (int trial = 0; trial < 2000; trial++) {
		REQUIRE(pc_corrupt_random(400, 2.0, 0, pc_rng_derive(8, (uint64_t)trial, 0, 0, 0), u, &err) == PC_OK);
		mean_abs += fabs(dotf(u, g, 400)) / 2000;
	}
	CHECK_CLOSE(mean_abs, gn * sqrt(2.0 / (3.141592653589793 * 400)), 0, 0.1);
}

/* The streams are part of every report's reproducibility: pin the derive
 * function and the integer-only part of the generator (support and signs,
 * no libm involved) so a change cannot pass unnoticed. */
TEST(corrupt_random_pinned)
{
	static const float expect[12] = {0, 0, 0, 1, 0, 0, 0, 1, -1, -1, 0, 1};
	struct pc_error err = {0};
	float u[12];

	CHECK(pc_rng_derive(0, 0, 0, 0, 0) == 0x85df073e2e8570c7ULL);
	CHECK(pc_rng_derive(1, 2, 3, 4, 5) == 0xde3e7734c2a6cc18ULL);
	REQUIRE(pc_corrupt_random(12, INFINITY, 5, 77, u, &err) == PC_OK);
	CHECK(memcmp(u, expect, sizeof(u)) == 0);
}

TEST(corrupt_rng_derive)
{
	struct trng r = {21};
	double bits = 0.0;
	int trials = 0;

	CHECK(pc_rng_derive(1, 2, 3, 4, 5) == pc_rng_derive(1, 2, 3, 4, 5));
	/* every argument matters, and one flipped bit changes about half */
	for (int rep = 0; rep < 200; rep++) {
		uint64_t v[5], base;
		for (int i = 0; i < 5; i++)
			v[i] = rep % 2 ? trng_next(&r) : (uint64_t)trng_int(&r, 4);
		base = pc_rng_derive(v[0], v[1], v[2], v[3], v[4]);
		for (int i = 0; i < 5; i++) {
			uint64_t w[5], h;
			memcpy(w, v, sizeof(w));
			w[i] ^= 1ULL << trng_int(&r, 64);
			h = pc_rng_derive(w[0], w[1], w[2], w[3], w[4]);
			CHECK(h != base);
			bits += __builtin_popcountll(h ^ base);
			trials++;
		}
	}
	CHECK_CLOSE(bits / trials, 32.0, 1.0, 0);
	/* argument positions are not interchangeable */
	CHECK(pc_rng_derive(0, 1, 2, 0, 0) != pc_rng_derive(0, 2, 1, 0, 0));
}

/* --- projection ------------------------------------------------------------ */

/* The l1-ball projection by bisection on the threshold: slow and obvious. */
static void ref_project_l1(const float *a, double *out, int64_t count, double eps)
{
	double lo = 0.0, hi = 0.0, s = 0.0;

	for (int64_t i = 0; i < count; i++) {
		s += fabs((double)a[i]);
		hi = fabs((double)a[i]) > hi ? fabs((double)a[i]) : hi;
	}
	if (s <= eps) {
		for (int64_t i = 0; i < count; i++)
			out[i] = a[i];
		return;
	}
	for (int it = 0; it < 200; it++) {
		double th = 0.5 * (lo + hi), f = 0.0;
		for (int64_t i = 0; i < count; i++)
			f += fmax(fabs((double)a[i]) - th, 0.0);
		if (f > eps)
			lo = th;
		else
			hi = th;
	}
	for (int64_t i = 0; i < count; i++)
		out[i] = copysign(fmax(fabs((double)a[i]) - 0.5 * (lo + hi), 0.0), (double)a[i]);
}

TEST(corrupt_project_ball)
{
	static const int64_t sizes[] = {1, 2, 5, 17, 64};
	static const double ps[] = {1, 1.5, 2, 3, INFINITY};
	static const double epss[] = {0.5, 1.0, 3.0};
	struct trng r = {17};
	struct pc_error err = {0};
	float a0[64], a[64], kept[64];
	double ref[64];
	int keep[64];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int64_t count = sizes[s];
		const int64_t ns[] = {0, 1, 3, count / 2};
		for (int mode = 0; mode < 6; mode++) {
			/* modes 0-2 mostly outside the ball, 3-5 small */
			fill_g(&r, a0, count, mode % 3);
			if (mode >= 3)
				for (int64_t i = 0; i < count; i++)
					a0[i] *= 0.01f;
			for (size_t pi = 0; pi < sizeof(ps) / sizeof(ps[0]); pi++) {
				for (size_t ni = 0; ni < sizeof(ns) / sizeof(ns[0]); ni++) {
					for (size_t ei = 0; ei < sizeof(epss) / sizeof(epss[0]); ei++) {
						double p = ps[pi], eps = epss[ei], nk;
						int64_t n = ns[ni], k = eff_n(count, n);

						memcpy(a, a0, (size_t)count * sizeof(*a));
						CHECK_INT(pc_corrupt_project(a, count, p, n, eps, &err), PC_OK);
						CHECK(pc_corrupt_norm(a, count, p) <= eps);
						CHECK(l0(a, count) <= k);
						ref_topk(a0, count, k, keep);
						for (int64_t i = 0; i < count; i++)
							kept[i] = keep[i] ? a0[i] : 0.0f;
						nk = pc_corrupt_norm(kept, count, p);
						for (int64_t i = 0; i < count; i++) {
							double e;
							if (isinf(p))
								e = fmax(-eps, fmin(eps, (double)kept[i]));
							else if (p == 1.0)
								e = 0.0; /* below */
							else
								e = nk > eps ? kept[i] * eps / nk : kept[i];
							if (p != 1.0)
								CHECK_CLOSE(a[i], e, 1e-7, 1e-6);
						}
						if (p == 1.0) {
							ref_project_l1(kept, ref, count, eps);
							for (int64_t i = 0; i < count; i++)
								CHECK_CLOSE(a[i], ref[i], 1e-6, 1e-6);
						}
						/* inside stays put exactly */
						if (nk <= eps && !isinf(p))
							CHECK(memcmp(a, kept, (size_t)count * sizeof(*a)) == 0);
					}
				}
			}
		}
	}
}

/* The l1 projection is the nearest point of the ball: no sampled point of
 * the ball is closer to the input. */
TEST(corrupt_project_l1_nearest)
{
	struct trng r = {23};
	struct pc_error err = {0};

	for (int rep = 0; rep < 50; rep++) {
		int64_t count = 1 + trng_int(&r, 4);
		float a0[4], a[4];
		double eps = 0.2 + trng_unit(&r), dmin = 0.0;

		for (int64_t i = 0; i < count; i++)
			a0[i] = (float)(2.0 * trng_normal(&r));
		memcpy(a, a0, sizeof(a));
		CHECK_INT(pc_corrupt_project(a, count, 1.0, 0, eps, &err), PC_OK);
		for (int64_t i = 0; i < count; i++)
			dmin += ((double)a[i] - a0[i]) * ((double)a[i] - a0[i]);
		for (int trial = 0; trial < 2000; trial++) {
			double b[4], nb, d = 0.0, rad = trng_unit(&r);
			for (int64_t i = 0; i < count; i++)
				b[i] = trng_normal(&r);
			nb = ref_norm(b, count, 1.0);
			for (int64_t i = 0; i < count; i++) {
				b[i] *= eps * (trial % 2 ? 1.0 : rad) / nb;
				d += (b[i] - a0[i]) * (b[i] - a0[i]);
			}
			if (!(d >= dmin - 1e-6)) {
				pc_test_fail(t, __FILE__, __LINE__, "a point of the ball is nearer: %g < %g", d, dmin);
				break;
			}
		}
	}
	/* a point already inside is kept as it is */
	{
		float a[3] = {0.25f, -0.5f, 0.125f}, b[3];
		memcpy(b, a, sizeof(a));
		CHECK_INT(pc_corrupt_project(a, 3, 1.0, 0, 1.0, &err), PC_OK);
		CHECK(memcmp(a, b, sizeof(a)) == 0);
		CHECK_INT(pc_corrupt_project(a, 3, 1.0, 0, 0.875, &err), PC_OK);
		CHECK(memcmp(a, b, sizeof(a)) == 0);
	}
	/* hand-worked: (3, -1, 0.5) onto eps 2: theta 1 gives (2, 0, 0) */
	{
		float a[3] = {3, -1, 0.5f};
		CHECK_INT(pc_corrupt_project(a, 3, 1.0, 0, 2.0, &err), PC_OK);
		CHECK_CLOSE(a[0], 2.0, 1e-6, 0);
		CHECK(a[1] == 0.0f && a[2] == 0.0f);
		float b[3] = {3, -2.5f, 0.5f}; /* theta 1.75: (1.25, -0.75, 0) */
		CHECK_INT(pc_corrupt_project(b, 3, 1.0, 0, 2.0, &err), PC_OK);
		CHECK_CLOSE(b[0], 1.25, 1e-6, 0);
		CHECK_CLOSE(b[1], -0.75, 1e-6, 0);
		CHECK(b[2] == 0.0f);
	}
}

TEST(corrupt_project_ties_and_rescale)
{
	static const double ps[] = {1, 1.5, 2, 3, INFINITY};
	struct pc_error err = {0};
	struct trng r = {31};
	float a[4] = {1, -1, 1, -1};

	CHECK_INT(pc_corrupt_project(a, 4, 2.0, 2, 10.0, &err), PC_OK);
	CHECK(a[0] == 1.0f && a[1] == -1.0f && a[2] == 0.0f && a[3] == 0.0f);

	for (size_t pi = 0; pi < sizeof(ps) / sizeof(ps[0]); pi++) {
		for (int rep = 0; rep < 20; rep++) {
			float x[30], z[30] = {0};
			double eps = 0.1 + 3.0 * trng_unit(&r);
			fill_g(&r, x, 30, rep % 3);
			x[0] = 1.0f; /* never all zero */
			pc_corrupt_rescale(x, 30, ps[pi], eps);
			CHECK_CLOSE(pc_corrupt_norm(x, 30, ps[pi]), eps, 0, 1e-6);
			pc_corrupt_rescale(z, 30, ps[pi], eps);
			for (int i = 0; i < 30; i++)
				CHECK(z[i] == 0.0f);
		}
	}
	/* linf clipping to a radius that is not a float stays inside */
	{
		float b[2] = {5, -5};
		double eps = 0.1;
		CHECK_INT(pc_corrupt_project(b, 2, INFINITY, 0, eps, &err), PC_OK);
		CHECK((double)b[0] <= eps && (double)-b[1] <= eps);
		CHECK_CLOSE(b[0], eps, 1e-8, 0);
		CHECK(b[1] == -b[0]);
	}
}

/* Orders stop at 2^32 entries (indices are packed in 32 bits): refused
 * before g is read. */
TEST(corrupt_order_limit)
{
	float g[1] = {1};
	struct pc_corrupt_order *o = (struct pc_corrupt_order *)g;
	struct pc_error err = {0};

	CHECK_INT(pc_corrupt_order_new(g, ((int64_t)1 << 32) + 1, &o, &err), PC_ERR_LIMIT);
	CHECK(o == NULL);
	CHECK_INT(err.code, PC_ERR_LIMIT);
}
