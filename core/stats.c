/* Summaries of repeated trials (stats.h). */
#include <math.h>

#include "paracorr/stats.h"

/* t(0.975, df) for df = 1..30, to 9 decimals: the two-sided 5% points of
 * the standard tables, checked against a numerical inversion of the t
 * distribution function. */
static const double t975_table[30] = {
	12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252, 2.306004135,
	2.262157163,  2.228138852, 2.200985160, 2.178812830, 2.160368656, 2.144786688, 2.131449546, 2.119905299,
	2.109815578,  2.100922040, 2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
	2.059538553,  2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456,
};

double pc_stats_t975(int64_t df)
{
	const double z = 1.959963984540054; /* the normal 0.975 quantile */
	double z2 = z * z, v, g1, g2, g3, g4;

	if (df < 1)
		return NAN;
	if (df <= 30)
		return t975_table[df - 1];
	v = 1.0 / (double)df;
	g1 = z * (z2 + 1.0) / 4.0;
	g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0;
	g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0;
	g4 = z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0;
	return z + v * (g1 + v * (g2 + v * (g3 + v * g4)));
}

int pc_stats_summarize(const double *x, int64_t n, struct pc_stats *out, struct pc_error *err)
{
	double sum = 0.0, dev = 0.0, half;

	out->n = n > 0 ? n : 0;
	out->mean = out->std = out->min = out->max = NAN;
	out->ci95[0] = out->ci95[1] = NAN;
	if (n < 0 || (n > 0 && !x))
		return pc_error_set(err, PC_ERR_INVALID, "stats", "%lld values", (long long)n);
	if (n == 0)
		return 0;
	out->min = out->max = x[0];
	for (int64_t i = 0; i < n; i++) {
		sum += x[i];
		if (x[i] < out->min)
			out->min = x[i];
		if (x[i] > out->max)
			out->max = x[i];
	}
	out->mean = sum / (double)n;
	if (n < 2)
		return 0;
	for (int64_t i = 0; i < n; i++)
		dev += (x[i] - out->mean) * (x[i] - out->mean);
	out->std = sqrt(dev / (double)(n - 1));
	half = pc_stats_t975(n - 1) * out->std / sqrt((double)n);
	out->ci95[0] = out->mean - half;
	out->ci95[1] = out->mean + half;
	return 0;
}
