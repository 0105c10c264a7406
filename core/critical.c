/* critical: bracketing and bisection of the critical radius (critical.h). */
#include "paracorr/critical.h"

#include <math.h>

/* The next radius of the upward search from e, where accuracy is a: as
 * far as a straight line from (0, clean) through (e, a) says the budget
 * is, between 2 and PC_CRITICAL_MAX_STEP times e. Accuracy that falls
 * faster than linearly (random corruption's, about quadratic) is crossed
 * sooner than the line says, so the step overshoots, which the bracketing
 * wants; the cap keeps the bracket narrow enough for few evaluations. */
static double grow(double e, double a, double clean, double drop)
{
	double lost = clean - a, factor = PC_CRITICAL_MAX_STEP;

	if (lost > 0 && drop / lost < factor)
		factor = drop / lost;
	return e * (factor < 2 ? 2 : factor);
}

/* The next radius down from hi, below the budget with accuracy a, while
 * no radius within it is known: half of where the straight line from
 * (0, clean) through (hi, a) meets the budget, between hi / 8 and hi / 2.
 * Accuracy usually falls fastest first (the curve lies below that line),
 * so the line's point tends to be below the budget too; half of it tends
 * to be within, which gives the bracket its lower end. */
static double shrink(double hi, double a, double clean, double drop)
{
	double lost = clean - a, factor = lost > 0 ? 0.5 * drop / lost : 0.5;

	if (!(factor >= 1 / PC_CRITICAL_MAX_STEP))
		factor = 1 / PC_CRITICAL_MAX_STEP;
	return hi * (factor > 0.5 ? 0.5 : factor);
}

int pc_critical_search(const struct pc_critical_opts *o, const double *eps, const double *acc, int n,
		       pc_critical_eval_fn f, void *ctx, struct pc_critical_result *r, struct pc_error *err)
{
	static const char *where = "pc_critical_search";
	if (!o || !r || !f || n < 0 || (n > 0 && (!eps || !acc)))
		return pc_error_set(err, PC_ERR_INVALID, where, "missing argument");
	if (!(o->drop > 0 && o->drop <= 1))
		return pc_error_set(err, PC_ERR_INVALID, where, "accuracy_drop must be in (0, 1]");
	if (!(o->tolerance > 0 && o->tolerance <= 0.5))
		return pc_error_set(err, PC_ERR_INVALID, where, "tolerance must be in (0, 0.5]");
	if (!isfinite(o->clean))
		return pc_error_set(err, PC_ERR_INVALID, where, "clean accuracy must be finite");
	for (int i = 0; i < n; i++)
		if (!(eps[i] > 0) || !isfinite(eps[i]))
			return pc_error_set(err, PC_ERR_INVALID, where, "known radius %d must be > 0", i);

	const double budget = o->clean - o->drop;
	r->reached = 0;
	r->converged = 0;
	r->epsilon = NAN;
	r->accuracy = NAN;
	r->lower = 0;
	r->evaluations = 0;

	/* hi: the smallest known radius below the budget; lo: the largest under it */
	double hi = INFINITY, hi_acc = NAN, lo = 0, lo_acc = o->clean, top = 0;
	for (int i = 0; i < n; i++) {
		if (eps[i] > top)
			top = eps[i];
		if (acc[i] < budget && eps[i] < hi) {
			hi = eps[i];
			hi_acc = acc[i];
		}
	}
	for (int i = 0; i < n; i++)
		if (eps[i] < hi && eps[i] > lo) {
			lo = eps[i];
			lo_acc = acc[i];
		}

	if (isinf(hi)) {
		double e = top > 0 ? top : o->start, limit;
		if (!(e > 0) || !isfinite(e))
			return pc_error_set(err, PC_ERR_INVALID, where, "start radius must be > 0");
		limit = e * PC_CRITICAL_MAX_GROWTH;
		e = top > 0 ? grow(e, lo_acc, o->clean, o->drop) : e;
		for (int d = 0; d < PC_CRITICAL_MAX_DOUBLINGS && e <= limit; d++) {
			double a;
			int rc = f(ctx, e, &a, err);
			r->evaluations++;
			if (rc)
				return rc;
			if (a < budget) {
				hi = e;
				hi_acc = a;
				break;
			}
			lo = e;
			lo_acc = a;
			e = grow(e, a, o->clean, o->drop);
		}
		if (isinf(hi)) {
			r->lower = lo;
			return 0;
		}
	}

	/* While lo is 0 there is no relative scale yet: steps down (shrink).
	 * Then ITP on
	 * y = budget - accuracy (y(lo) <= 0 < y(hi)) with eps = tolerance * lo / 2:
	 * its iterate is regula falsi's, pushed towards the midpoint by
	 * kappa1 (hi - lo)^2 and kept within the radius that still lets the
	 * search end in as many evaluations as bisection plus PC_CRITICAL_ITP_N0,
	 * so a smooth curve takes a few and a step no more than that. */
	int b = 0;
	while (b < PC_CRITICAL_MAX_BISECTIONS && lo == 0 && !(hi - lo <= o->tolerance * hi)) {
		double mid = shrink(hi, hi_acc, o->clean, o->drop), a;
		int rc = f(ctx, mid, &a, err);
		b++;
		r->evaluations++;
		if (rc)
			return rc;
		if (a < budget) {
			hi = mid;
			hi_acc = a;
		} else {
			lo = mid;
			lo_acc = a;
		}
	}
	if (lo > 0 && !(hi - lo <= o->tolerance * hi)) {
		const double half_width = 0.5 * o->tolerance * lo;
		const double kappa1 = 0.2 / (hi - lo);
		const int n_max = (int)ceil(log2((hi - lo) / (2 * half_width))) + PC_CRITICAL_ITP_N0;
		for (int j = 0; b < PC_CRITICAL_MAX_BISECTIONS && !(hi - lo <= o->tolerance * hi); j++, b++) {
			double ya = budget - lo_acc, yb = budget - hi_acc, mid = 0.5 * (lo + hi), x, a;
			double rad = half_width * ldexp(1.0, n_max - j) - 0.5 * (hi - lo);
			double delta = kappa1 * (hi - lo) * (hi - lo);
			double xf = yb > ya && isfinite(ya) && isfinite(yb) ? (yb * lo - ya * hi) / (yb - ya) : mid;
			double sigma = mid >= xf ? 1.0 : -1.0;
			double xt = delta <= fabs(mid - xf) ? xf + sigma * delta : mid;
			int rc;

			x = fabs(xt - mid) <= rad ? xt : mid - sigma * fmax(rad, 0.0);
			if (!(x > lo && x < hi))
				x = mid;
			rc = f(ctx, x, &a, err);
			r->evaluations++;
			if (rc)
				return rc;
			if (a < budget) {
				hi = x;
				hi_acc = a;
			} else {
				lo = x;
				lo_acc = a;
			}
		}
	}
	r->reached = 1;
	r->converged = hi - lo <= o->tolerance * hi;
	r->epsilon = hi;
	r->accuracy = hi_acc;
	r->lower = lo;
	return 0;
}
