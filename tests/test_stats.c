/* Tests of the trial summaries (core/stats.c). The t quantiles are the
 * published two-sided 5% points; those past the table (df > 30) come from
 * a numerical inversion of the t distribution function (Simpson's rule on
 * the density, bisection), done apart from the code under test. */
#include <math.h>
#include <stdint.h>

#include "paracorr/stats.h"
#include "test.h"

TEST(stats_t975_known_values)
{
	static const struct {
		int64_t df;
		double t;
	} known[] = {
		{1, 12.7062}, {2, 4.3027}, {4, 2.7764}, {9, 2.2622}, {19, 2.0930}, {29, 2.0452}, {100, 1.9840},
		{INT64_MAX, 1.9600},
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		CHECK_CLOSE(pc_stats_t975(known[i].df), known[i].t, 5e-5, 0);
	CHECK(isnan(pc_stats_t975(0)));
	CHECK(isnan(pc_stats_t975(-3)));
}

/* The asymptotic branch, where the table ends and beyond, against the
 * numerical inversion to 1e-6: the header promises far better than 1e-4. */
TEST(stats_t975_expansion)
{
	CHECK_CLOSE(pc_stats_t975(30), 2.042272456, 1e-9, 0);
	CHECK_CLOSE(pc_stats_t975(31), 2.039513446, 1e-6, 0);
	CHECK_CLOSE(pc_stats_t975(40), 2.021075390, 1e-6, 0);
	CHECK_CLOSE(pc_stats_t975(60), 2.000297822, 1e-6, 0);
	CHECK_CLOSE(pc_stats_t975(100), 1.983971519, 1e-6, 0);
	CHECK_CLOSE(pc_stats_t975(1000), 1.962339081, 1e-6, 0);
	CHECK_CLOSE(pc_stats_t975(INT64_MAX), 1.959963985, 1e-9, 0);
	/* the quantile falls as df grows, also across the seam */
	for (int64_t df = 1; df < 200; df++)
		CHECK_MSG(pc_stats_t975(df + 1) < pc_stats_t975(df), "t975(%lld) >= t975(%lld)", (long long)df + 1,
			  (long long)df);
}

TEST(stats_summary)
{
	/* mean 5, deviations -3 -1 -1 -1 0 0 2 4: sum of squares 32 */
	const double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
	double half = 2.364624252 * sqrt(32.0 / 7.0) / sqrt(8.0);
	struct pc_stats s;
	struct pc_error err = {0};

	REQUIRE(pc_stats_summarize(x, 8, &s, &err) == 0);
	CHECK_INT(s.n, 8);
	CHECK_CLOSE(s.mean, 5.0, 1e-15, 0);
	CHECK_CLOSE(s.std, sqrt(32.0 / 7.0), 1e-15, 0);
	CHECK(s.min == 2.0 && s.max == 9.0);
	CHECK_CLOSE(s.ci95[0], 5.0 - half, 1e-12, 0);
	CHECK_CLOSE(s.ci95[1], 5.0 + half, 1e-12, 0);
	/* a spread tiny against the mean survives the two passes */
	{
		const double y[] = {1e9 + 1, 1e9 + 2, 1e9 + 3};
		REQUIRE(pc_stats_summarize(y, 3, &s, &err) == 0);
		CHECK_CLOSE(s.std, 1.0, 1e-12, 0);
	}
}

TEST(stats_summary_edges)
{
	const double one = 0.25;
	struct pc_stats s;
	struct pc_error err = {0};

	REQUIRE(pc_stats_summarize(&one, 1, &s, &err) == 0);
	CHECK(s.n == 1 && s.mean == 0.25 && s.min == 0.25 && s.max == 0.25);
	CHECK(isnan(s.std) && isnan(s.ci95[0]) && isnan(s.ci95[1]));
	REQUIRE(pc_stats_summarize(NULL, 0, &s, &err) == 0);
	CHECK(s.n == 0 && isnan(s.mean) && isnan(s.min));
	CHECK_INT(pc_stats_summarize(&one, -1, &s, &err), PC_ERR_INVALID);
	CHECK_INT(err.code, PC_ERR_INVALID);
	pc_error_clear(&err);
	CHECK_INT(pc_stats_summarize(NULL, 2, &s, &err), PC_ERR_INVALID);
}
