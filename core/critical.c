/* critical: bracketing and bisection of the critical radius (critical.h). */
#include "paracorr/critical.h"

#include <math.h>

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
	double hi = INFINITY, hi_acc = NAN, lo = 0, top = 0;
	for (int i = 0; i < n; i++) {
		if (eps[i] > top)
			top = eps[i];
		if (acc[i] < budget && eps[i] < hi) {
			hi = eps[i];
			hi_acc = acc[i];
		}
	}
	for (int i = 0; i < n; i++)
		if (eps[i] < hi && eps[i] > lo)
			lo = eps[i];

	if (isinf(hi)) {
		double e = top > 0 ? 2 * top : o->start;
		if (!(e > 0) || !isfinite(e))
			return pc_error_set(err, PC_ERR_INVALID, where, "start radius must be > 0");
		for (int d = 0; d < PC_CRITICAL_MAX_DOUBLINGS; d++, e *= 2) {
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
		}
		if (isinf(hi)) {
			r->lower = lo;
			return 0;
		}
	}

	for (int b = 0; b < PC_CRITICAL_MAX_BISECTIONS && !(hi - lo <= o->tolerance * hi); b++) {
		double mid = 0.5 * (lo + hi), a;
		int rc = f(ctx, mid, &a, err);
		r->evaluations++;
		if (rc)
			return rc;
		if (a < budget) {
			hi = mid;
			hi_acc = a;
		} else {
			lo = mid;
		}
	}
	r->reached = 1;
	r->converged = hi - lo <= o->tolerance * hi;
	r->epsilon = hi;
	r->accuracy = hi_acc;
	r->lower = lo;
	return 0;
}
