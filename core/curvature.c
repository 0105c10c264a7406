/* curvature: Hessian-vector products by central differences of exact
 * gradients, Lanczos and Hutchinson on top (include/paracorr/curvature.h). */
#include "paracorr/curvature.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/corrupt.h"
#include "paracorr/graph.h"
#include "paracorr/rng.h"

struct pc_curv {
	struct pc_runner *r;
	const struct pc_graph *g;
	const struct pc_dataset *d;
	int64_t limit;
	int *params;
	int n_params;
	int64_t size;
	/* whole weight vectors: the clean ones (the gates' reference) and the
	 * two displaced along v; the gradients at the displaced two */
	struct pc_eval_gated pass;
	double w0_norm; /* of the group */
	double tau;
	int64_t hvps;
	pc_cancel_fn cancel;
	void *cancel_arg;
	void (*product)(void *arg);
	void *product_arg;
};

int pc_curv_new(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const int *params, int n,
		const struct pc_curv_opts *o, struct pc_curv **out, struct pc_error *err)
{
	const struct pc_graph *g = pc_runner_graph(r);
	size_t wbytes = (size_t)pc_graph_param_count(g) * sizeof(float) + 1;
	struct pc_curv *c;
	double s = 0;

	*out = NULL;
	if (n < 1 || !params)
		return pc_error_set(err, PC_ERR_INVALID, "group", "a curvature group needs a parameter tensor");
	for (int j = 0; j < n; j++)
		if (params[j] < 0 || params[j] >= pc_graph_param_tensors(g))
			return pc_error_set(err, PC_ERR_INVALID, "group", "parameter %d is not in the model's table",
					    params[j]);
	c = calloc(1, sizeof(*c));
	if (!c)
		return pc_error_set(err, PC_ERR_NOMEM, "curvature", "out of memory");
	c->r = r;
	c->g = g;
	c->d = d;
	c->limit = limit;
	c->tau = o && o->tau > 0 ? o->tau : PC_CURV_TAU;
	c->cancel = o ? o->cancel : NULL;
	c->cancel_arg = o ? o->cancel_arg : NULL;
	c->product = o ? o->product : NULL;
	c->product_arg = o ? o->product_arg : NULL;
	c->params = malloc((size_t)n * sizeof(int));
	if (!c->params)
		goto nomem;
	memcpy(c->params, params, (size_t)n * sizeof(int));
	c->n_params = n;
	for (int j = 0; j < n; j++)
		c->size += pc_graph_param(g, params[j])->count;
	c->pass.at = malloc(wbytes);
	for (int k = 0; k < 2; k++) {
		c->pass.w[k] = malloc(wbytes);
		c->pass.grad[k] = malloc(wbytes);
	}
	if (!c->pass.at || !c->pass.w[0] || !c->pass.w[1] || !c->pass.grad[0] || !c->pass.grad[1])
		goto nomem;
	/* the runner's weights, not the graph's: they are the clean ones the
	 * caller handed over */
	memcpy(c->pass.at, pc_plan_weights(pc_runner_plan(r, 0)), wbytes - 1);
	memcpy(c->pass.w[0], c->pass.at, wbytes - 1);
	memcpy(c->pass.w[1], c->pass.at, wbytes - 1);
	for (int j = 0; j < n; j++) {
		const struct pc_param *pt = pc_graph_param(g, params[j]);
		for (int64_t i = 0; i < pt->count; i++)
			s += (double)c->pass.at[pt->offset + i] * c->pass.at[pt->offset + i];
	}
	c->w0_norm = sqrt(s);
	*out = c;
	return PC_OK;
nomem:
	pc_curv_free(c);
	return pc_error_set(err, PC_ERR_NOMEM, "curvature", "out of memory");
}

void pc_curv_free(struct pc_curv *c)
{
	if (!c)
		return;
	free(c->params);
	free(c->pass.at);
	for (int k = 0; k < 2; k++) {
		free(c->pass.w[k]);
		free(c->pass.grad[k]);
	}
	free(c);
}

int64_t pc_curv_size(const struct pc_curv *c)
{
	return c->size;
}

int64_t pc_curv_hvp_count(const struct pc_curv *c)
{
	return c->hvps;
}

double pc_curv_displacement(const struct pc_curv *c)
{
	/* a group of zeros still needs a displacement */
	return c->tau * (c->w0_norm > 0 ? c->w0_norm : 1.0);
}

/* w[0] = w0 + h v and w[1] = w0 - h v on the group, the rest clean. */
static void displace(struct pc_curv *c, const double *v, double h)
{
	int64_t off = 0;

	for (int j = 0; j < c->n_params; j++) {
		const struct pc_param *pt = pc_graph_param(c->g, c->params[j]);
		const float *w0 = c->pass.at + pt->offset;
		for (int64_t i = 0; i < pt->count; i++) {
			c->pass.w[0][pt->offset + i] = (float)((double)w0[i] + h * v[off + i]);
			c->pass.w[1][pt->offset + i] = (float)((double)w0[i] - h * v[off + i]);
		}
		off += pt->count;
	}
}

int pc_curv_hvp(struct pc_curv *c, const double *v, double *hv, struct pc_error *err)
{
	struct pc_eval ev;
	double nv = 0, h;
	int64_t off = 0;
	int rc;

	for (int64_t i = 0; i < c->size; i++)
		nv += v[i] * v[i];
	nv = sqrt(nv);
	if (!isfinite(nv))
		return pc_error_set(err, PC_ERR_INVALID, "vector", "the vector is not finite");
	if (nv == 0) {
		memset(hv, 0, (size_t)c->size * sizeof(double));
		return PC_OK;
	}
	h = pc_curv_displacement(c) / nv;
	displace(c, v, h);
	if ((rc = pc_eval_run_gated(c->r, c->d, c->limit, &c->pass, c->cancel, c->cancel_arg, &ev, err)))
		return rc;
	c->hvps++;
	if (c->product)
		c->product(c->product_arg);
	for (int j = 0; j < c->n_params; j++) {
		const struct pc_param *pt = pc_graph_param(c->g, c->params[j]);
		const float *gp = c->pass.grad[0] + pt->offset, *gm = c->pass.grad[1] + pt->offset;
		for (int64_t i = 0; i < pt->count; i++)
			hv[off + i] = ((double)gp[i] - (double)gm[i]) / (2.0 * h);
		off += pt->count;
	}
	return PC_OK;
}

void pc_curv_seeded_vector(uint64_t seed, int64_t n, double *v)
{
	uint64_t s = seed;

	for (int64_t i = 0; i < n; i++)
		v[i] = 2.0 * (double)(pc_rng_splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0) - 1.0;
}

static double dot(const double *a, const double *b, int64_t n)
{
	double s = 0;

	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* Eigen-decomposition of the symmetric m x m matrix a (destroyed) by
 * cyclic Jacobi rotations: values into ev, vectors into the columns of v.
 * m is a Lanczos step count, small enough for its O(m^3) sweeps. */
static void jacobi(double *a, int m, double *ev, double *v)
{
	for (int i = 0; i < m * m; i++)
		v[i] = 0;
	for (int i = 0; i < m; i++)
		v[i * m + i] = 1;
	for (int sweep = 0; sweep < 100; sweep++) {
		double off = 0, diag = 0;
		for (int i = 0; i < m; i++) {
			diag += a[i * m + i] * a[i * m + i];
			for (int j = i + 1; j < m; j++)
				off += a[i * m + j] * a[i * m + j];
		}
		if (off <= 1e-30 * diag || off == 0)
			break;
		for (int p = 0; p < m; p++)
			for (int q = p + 1; q < m; q++) {
				double apq = a[p * m + q], theta, t, cs, sn;
				if (apq == 0)
					continue;
				theta = (a[q * m + q] - a[p * m + p]) / (2 * apq);
				t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
				cs = 1 / sqrt(t * t + 1);
				sn = t * cs;
				for (int k = 0; k < m; k++) { /* columns p, q */
					double akp = a[k * m + p], akq = a[k * m + q];
					a[k * m + p] = cs * akp - sn * akq;
					a[k * m + q] = sn * akp + cs * akq;
				}
				for (int k = 0; k < m; k++) { /* rows p, q */
					double apk = a[p * m + k], aqk = a[q * m + k];
					a[p * m + k] = cs * apk - sn * aqk;
					a[q * m + k] = sn * apk + cs * aqk;
				}
				for (int k = 0; k < m; k++) {
					double vkp = v[k * m + p], vkq = v[k * m + q];
					v[k * m + p] = cs * vkp - sn * vkq;
					v[k * m + q] = sn * vkp + cs * vkq;
				}
			}
	}
	for (int i = 0; i < m; i++)
		ev[i] = a[i * m + i];
}

/* The k largest Ritz values of the m-step tridiagonal (alpha, beta) into
 * eig, descending; whether each residual |beta_m s_mi| is within tolerance. */
static int ritz(const double *alpha, const double *beta, int m, double bm, int k, double *eig, double *work)
{
	double *a = work, *ev = a + m * m, *v = ev + m;
	int ok = 1;

	memset(a, 0, (size_t)m * m * sizeof(double));
	for (int i = 0; i < m; i++) {
		a[i * m + i] = alpha[i];
		if (i + 1 < m)
			a[i * m + i + 1] = a[(i + 1) * m + i] = beta[i];
	}
	jacobi(a, m, ev, v);
	for (int j = 0; j < k && j < m; j++) {
		int best = -1;
		for (int i = 0; i < m; i++)
			if (best < 0 || ev[i] > ev[best])
				best = i;
		eig[j] = ev[best];
		ok &= fabs(bm * v[(m - 1) * m + best]) <= PC_CURV_RITZ_TOL * fabs(ev[best]);
		ev[best] = -INFINITY; /* taken */
	}
	return ok;
}

int pc_curv_top(struct pc_curv *c, int k, int max_steps, uint64_t seed, double *eig, int *found, int *steps,
		int *converged, struct pc_error *err)
{
	int64_t n = c->size;
	int m = max_steps < n ? max_steps : (int)n, rc = PC_OK, j;
	double *Q = NULL, *w = NULL, *alpha = NULL, *beta = NULL, *work = NULL, nrm;

	*found = 0;
	*steps = 0;
	*converged = 0;
	if (max_steps < 1 || max_steps > PC_CURV_MAX_ITERATIONS)
		return pc_error_set(err, PC_ERR_INVALID, "iterations", "must be in [1, %d], not %d",
				    PC_CURV_MAX_ITERATIONS, max_steps);
	if (k < 1 || k > max_steps)
		return pc_error_set(err, PC_ERR_INVALID, "eigenvalues", "must be in [1, iterations = %d], not %d",
				    max_steps, k);
	if ((double)m * (double)n * 8.0 > (double)PC_CURV_MAX_BASIS_BYTES)
		return pc_error_set(err, PC_ERR_LIMIT, "iterations",
				    "%d Lanczos vectors of %lld parameters pass the %lld-byte basis limit", m,
				    (long long)n, (long long)PC_CURV_MAX_BASIS_BYTES);
	Q = malloc(((size_t)m + 1) * (size_t)n * sizeof(double));
	w = malloc((size_t)n * sizeof(double) + 1);
	alpha = calloc((size_t)m + 1, sizeof(double));
	beta = calloc((size_t)m + 1, sizeof(double));
	work = malloc(((size_t)m * m * 2 + (size_t)m + 1) * sizeof(double));
	if (!Q || !w || !alpha || !beta || !work) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "curvature", "out of memory for the Lanczos basis");
		goto out;
	}
	pc_curv_seeded_vector(seed, n, Q);
	nrm = sqrt(dot(Q, Q, n));
	for (int64_t i = 0; i < n; i++)
		Q[i] /= nrm;
	for (j = 0; j < m; j++) {
		double *q = Q + (int64_t)j * n, b;
		int ok;
		if ((rc = pc_curv_hvp(c, q, w, err)))
			goto out;
		alpha[j] = dot(w, q, n);
		/* full reorthogonalisation, twice (Gram-Schmidt is not stable once) */
		for (int pass = 0; pass < 2; pass++)
			for (int l = 0; l <= j; l++) {
				const double *ql = Q + (int64_t)l * n;
				double r = dot(w, ql, n);
				for (int64_t i = 0; i < n; i++)
					w[i] -= r * ql[i];
			}
		b = sqrt(dot(w, w, n));
		ok = ritz(alpha, beta, j + 1, b, k, eig, work);
		*steps = j + 1;
		*found = k < j + 1 ? k : j + 1;
		if ((ok && j + 1 >= k) || b == 0 || j + 1 == n) {
			*converged = j + 1 >= k || j + 1 == n;
			break;
		}
		beta[j] = b;
		if (j + 1 < m)
			for (int64_t i = 0; i < n; i++)
				Q[(int64_t)(j + 1) * n + i] = w[i] / b;
	}
out:
	free(Q);
	free(w);
	free(alpha);
	free(beta);
	free(work);
	return rc;
}

int pc_curv_trace(struct pc_curv *c, int samples, uint64_t seed, struct pc_stats *out, struct pc_error *err)
{
	int64_t n = c->size;
	double *z = NULL, *hz = NULL, *vals = NULL;
	int rc = PC_OK;

	if (samples < 1)
		return pc_error_set(err, PC_ERR_INVALID, "trace_samples", "must be >= 1, not %d", samples);
	z = malloc((size_t)n * sizeof(double) + 1);
	hz = malloc((size_t)n * sizeof(double) + 1);
	vals = malloc((size_t)samples * sizeof(double));
	if (!z || !hz || !vals) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "curvature", "out of memory");
		goto out;
	}
	for (int s = 0; s < samples; s++) {
		uint64_t st = pc_rng_derive(seed, (uint64_t)s, 0, 0, 0), bits = 0;
		for (int64_t i = 0; i < n; i++) {
			if ((i & 63) == 0)
				bits = pc_rng_splitmix64(&st);
			z[i] = (bits >> (i & 63)) & 1 ? 1.0 : -1.0;
		}
		if ((rc = pc_curv_hvp(c, z, hz, err)))
			goto out;
		vals[s] = dot(z, hz, n);
	}
	rc = pc_stats_summarize(vals, samples, out, err);
out:
	free(z);
	free(hz);
	free(vals);
	return rc;
}
