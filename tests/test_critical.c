/* Tests of the critical-radius search (core/critical.c) on analytic
 * accuracy curves: the radius found within the tolerance, and the
 * evaluations against bisection's count (worked out by hand) or bounds. */
#include <math.h>

#include "paracorr/critical.h"
#include "test.h"

struct curve {
	int kind; /* 0: 1 / (1 + eps); 1: step at 0.3; 2: constant 0.9; 3: step at ctx->at;
		     4: 0.87 - 0.5 (1 - exp(-(eps / at)^2)) */
	double at;
	int calls;
};

static double curve_value(const struct curve *c, double eps)
{
	switch (c->kind) {
	case 0:
		return 1 / (1 + eps);
	case 1:
		return eps < 0.3 ? 0.9 : 0.1;
	case 2:
		return 0.9;
	case 4:
		return 0.87 - 0.5 * (1 - exp(-(eps / c->at) * (eps / c->at)));
	default:
		return eps <= c->at ? 1.0 : 0.0;
	}
}

static int curve_eval(void *ctx, double eps, double *accuracy, struct pc_error *err)
{
	struct curve *c = ctx;
	c->calls++;
	*accuracy = curve_value(c, eps);
	return 0;
}

static void known_of(struct curve *c, const double *eps, int n, double *acc)
{
	for (int i = 0; i < n; i++)
		acc[i] = curve_value(c, eps[i]);
}

/* 1/(1+eps) < 0.75 from eps = 1/3 on; the sweep brackets it in [0.2, 0.5],
 * where bisection takes 7 evaluations; ITP's interpolation on this smooth
 * curve takes 4 */
TEST(critical_monotone_bracketed_by_the_sweep)
{
	struct curve c = {.kind = 0};
	const double eps[] = {1.0, 0.1, 0.5, 0.2};
	double acc[4];
	known_of(&c, eps, 4, acc);
	struct pc_critical_opts o = {.clean = 1, .drop = 0.25, .tolerance = 0.01, .start = 1};
	struct pc_critical_result r;
	struct pc_error err = {0};
	REQUIRE(pc_critical_search(&o, eps, acc, 4, curve_eval, &c, &r, &err) == 0);
	CHECK(r.reached && r.converged);
	CHECK_MSG(r.evaluations == 4 && c.calls == 4, "%d evaluations, %d calls", r.evaluations, c.calls);
	CHECK(r.epsilon >= 1.0 / 3 && r.lower <= 1.0 / 3 && r.lower >= 0.2);
	CHECK(r.epsilon - r.lower <= 0.01 * r.epsilon);
	CHECK_CLOSE(r.accuracy, 1 / (1 + r.epsilon), 1e-15, 0);
}

/* a step at 0.3 past the sweep's last radius 0.2: accuracy has not moved,
 * so the search steps 8-fold (1.6), then narrows [0.2, 1.6]: a step is
 * ITP's worst case, bisection's ceil(log2(1.4 / (0.01 x 0.2))) = 10 plus
 * its one spare, 12 in all */
TEST(critical_step_found_by_doubling)
{
	struct curve c = {.kind = 1};
	const double eps[] = {0.1, 0.2};
	double acc[2];
	known_of(&c, eps, 2, acc);
	struct pc_critical_opts o = {.clean = 0.9, .drop = 0.05, .tolerance = 0.01, .start = 1};
	struct pc_critical_result r;
	struct pc_error err = {0};
	REQUIRE(pc_critical_search(&o, eps, acc, 2, curve_eval, &c, &r, &err) == 0);
	CHECK(r.reached && r.converged);
	CHECK_MSG(r.evaluations <= 1 + 10 + PC_CRITICAL_ITP_N0, "%d evaluations", r.evaluations);
	CHECK(r.epsilon >= 0.3 && r.lower < 0.3 && r.epsilon - r.lower <= 0.01 * r.epsilon);
	CHECK(r.accuracy == 0.1);
}

/* accuracy never moves: 8-fold steps from 0.2 while they stay within a
 * million times it, 1.6 .. 52428.8, six of them */
TEST(critical_never_reached)
{
	struct curve c = {.kind = 2};
	const double eps[] = {0.1, 0.2};
	double acc[2];
	known_of(&c, eps, 2, acc);
	struct pc_critical_opts o = {.clean = 0.9, .drop = 0.05, .tolerance = 0.01, .start = 1};
	struct pc_critical_result r;
	struct pc_error err = {0};
	REQUIRE(pc_critical_search(&o, eps, acc, 2, curve_eval, &c, &r, &err) == 0);
	CHECK(!r.reached);
	CHECK(isnan(r.epsilon) && isnan(r.accuracy));
	CHECK_INT(r.evaluations, 6);
	CHECK_CLOSE(r.lower, 0.2 * 262144, 1e-9, 0);
}

/* below the budget already at the smallest radius 1: halvings of [0, 1]
 * until lo > 0 (two: 0.5 below, 0.25 within), then ITP on [0.25, 0.5] */
TEST(critical_below_at_the_smallest_radius)
{
	struct curve c = {.kind = 0};
	const double eps[] = {1, 2};
	double acc[2];
	known_of(&c, eps, 2, acc);
	struct pc_critical_opts o = {.clean = 1, .drop = 0.25, .tolerance = 0.01, .start = 1};
	struct pc_critical_result r;
	struct pc_error err = {0};
	REQUIRE(pc_critical_search(&o, eps, acc, 2, curve_eval, &c, &r, &err) == 0);
	CHECK(r.reached && r.converged);
	CHECK_MSG(r.evaluations <= 6, "%d evaluations (bisection: 9)", r.evaluations);
	CHECK(r.epsilon >= 1.0 / 3 && r.epsilon - 1.0 / 3 <= 0.01 * r.epsilon);
}

/* no known radius: steps from start 0.01, as far as the accuracy lost
 * extrapolates (1/(1+eps) falls about linearly there), then ITP */
TEST(critical_without_known_radii)
{
	struct curve c = {.kind = 0};
	struct pc_critical_opts o = {.clean = 1, .drop = 0.25, .tolerance = 0.01, .start = 0.01};
	struct pc_critical_result r;
	struct pc_error err = {0};
	REQUIRE(pc_critical_search(&o, NULL, NULL, 0, curve_eval, &c, &r, &err) == 0);
	CHECK(r.reached && r.converged);
	CHECK_MSG(r.evaluations <= 7, "%d evaluations (doubling and bisection: 14)", r.evaluations);
	CHECK(r.epsilon >= 1.0 / 3 && r.epsilon - 1.0 / 3 <= 0.01 * r.epsilon);
}

/* random corruption's curve: flat, then a quadratic fall, its critical
 * radius 20 to 200 times the one swept radius (0.1, where it has not
 * moved): at most 12 evaluations for every such curve, as issue 16 asks */
TEST(critical_random_like_curve_far_past_the_sweep)
{
	int most = 0;
	for (int k = 0; k <= 100; k++) {
		struct curve c = {.kind = 4};
		c.at = 2.0 * pow(10.0, k / 100.0); /* the curve's scale, 2 .. 20 */
		const double eps[] = {0.1};
		double acc[1];
		known_of(&c, eps, 1, acc);
		struct pc_critical_opts o = {.clean = 0.87, .drop = 0.05, .tolerance = 0.01, .start = 1};
		struct pc_critical_result r;
		struct pc_error err = {0};
		double want = c.at * sqrt(-log(1 - 0.05 / 0.5)); /* where 0.87 - 0.5 (1 - e^(-(e/at)^2)) = 0.82 */
		REQUIRE(pc_critical_search(&o, eps, acc, 1, curve_eval, &c, &r, &err) == 0);
		CHECK(r.reached && r.converged);
		CHECK_MSG(r.epsilon >= want * (1 - 1e-12) && r.epsilon - want <= 0.01 * r.epsilon, "%g for %g", r.epsilon,
			  want);
		if (r.evaluations > most)
			most = r.evaluations;
	}
	CHECK_MSG(most <= 12, "%d evaluations", most);
}

/* the budget of issue 16: at most 12 evaluations per setting at 1%
 * tolerance when the sweep brackets the answer, on the demo's sweep and on
 * a coarse decade sweep, for steps anywhere in the swept range */
TEST(critical_at_most_12_evaluations_when_bracketed)
{
	static const double sweeps[2][7] = {{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}, {0.001, 0.01, 0.1, 1}};
	static const int n_sweep[2] = {7, 4};
	int most = 0;
	for (int s = 0; s < 2; s++) {
		for (int i = 1; i < 1000; i++) {
			struct curve c = {.kind = 3};
			c.at = sweeps[s][0] + i * (sweeps[s][n_sweep[s] - 1] - sweeps[s][0]) / 1000;
			double acc[7];
			known_of(&c, sweeps[s], n_sweep[s], acc);
			struct pc_critical_opts o = {.clean = 1, .drop = 0.05, .tolerance = 0.01, .start = 1};
			struct pc_critical_result r;
			struct pc_error err = {0};
			REQUIRE(pc_critical_search(&o, sweeps[s], acc, n_sweep[s], curve_eval, &c, &r, &err) == 0);
			CHECK(r.reached && r.converged);
			CHECK(r.epsilon >= c.at && r.epsilon - c.at <= 0.01 * r.epsilon);
			if (r.evaluations > most)
				most = r.evaluations;
		}
	}
	CHECK_MSG(most <= 12, "%d evaluations", most);
	CHECK(most >= 7); /* a 1% bracket takes at least log2(100) halvings of [eps, 2 eps] */
}

TEST(critical_rejects_bad_options)
{
	struct curve c = {.kind = 0};
	struct pc_critical_result r;
	const struct pc_critical_opts bad[] = {
		{.clean = 1, .drop = 0, .tolerance = 0.01, .start = 1},
		{.clean = 1, .drop = 1.5, .tolerance = 0.01, .start = 1},
		{.clean = 1, .drop = 0.1, .tolerance = 0, .start = 1},
		{.clean = 1, .drop = 0.1, .tolerance = 0.6, .start = 1},
		{.clean = 1, .drop = 0.1, .tolerance = 0.01, .start = 0},
	};
	for (int i = 0; i < 5; i++) {
		struct pc_error err = {0};
		CHECK(pc_critical_search(&bad[i], NULL, NULL, 0, curve_eval, &c, &r, &err) == PC_ERR_INVALID);
	}
	const double eps[] = {-1};
	const double acc[] = {1};
	struct pc_error err = {0};
	CHECK(pc_critical_search(&bad[0] + 0, eps, acc, 1, curve_eval, &c, &r, &err) == PC_ERR_INVALID);
	CHECK(c.calls == 0);
}
