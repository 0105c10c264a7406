/* ops/norm: BatchNormalization, and LayerNormalization (at the end).
 *
 * paracorr measures a trained model, so the running mean and variance
 * (inputs 3 and 4, buffers with no gradient) normalise every batch,
 * whatever training_mode says. Only a plan in training mode (fine-tuning,
 * pc_plan_set_training) normalises with the batch's own statistics over
 * its real samples, differentiates through them, and, when asked, moves
 * the running statistics towards them by the node's momentum (ONNX:
 * running = running * momentum + batch * (1 - momentum), with the unbiased
 * variance, as PyTorch keeps them). A model exported in training
 * mode has extra outputs (running or saved statistics); they are set as
 * static copies of the running statistics, since nothing differentiates
 * through them. Per channel, y = x * a + b with a = scale / sqrt(var + eps)
 * and b = bias - mean * a; a and b are recomputed on each pass (one sqrt per
 * channel) rather than cached, because scale and bias are corruptible
 * weights that may change between passes. */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>

struct bn_priv {
	float epsilon;
	float momentum;
};

/* The statistics outputs ONNX defines for the node's opset: running mean
 * and var (opset 14+), or mean, var, saved mean, saved var (before). */
static int bn_max_outputs(const struct pc_node *n)
{
	return pc_op_opset(n) >= 14 ? 3 : 5;
}

int pc_batchnorm_init(struct pc_node *n, struct pc_error *err)
{
	struct bn_priv *pr;
	float eps, momentum;
	int64_t training;
	int rc;

	if ((rc = pc_attr_float(n, "epsilon", 1e-5f, &eps, err)) ||
	    (rc = pc_attr_float(n, "momentum", 0.9f, &momentum, err)) ||
	    (rc = pc_attr_int(n, "training_mode", 0, &training, err)))
		return rc;
	if (!(eps >= 0.0f) || isinf(eps))
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'epsilon' is %g; it must be finite and >= 0",
				     (double)eps);
	if (pc_op_n_out(n) > bn_max_outputs(n))
		return pc_node_error(err, n, PC_ERR_FORMAT, "has %d outputs; BatchNormalization at opset %d has at most %d",
				     pc_op_n_out(n), pc_op_opset(n), bn_max_outputs(n));
	pr = malloc(sizeof(*pr));
	if (!pr)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	pr->epsilon = eps;
	pr->momentum = momentum;
	n->priv = pr;
	return PC_OK;
}

int pc_batchnorm_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	static const char *const role[5] = {"X", "scale", "B", "input_mean", "input_var"};
	const struct bn_priv *pr = pc_op_priv(n);
	struct pc_tensor *x, *mean, *var;
	struct pc_shape cs;
	int64_t c;
	int rc;

	for (int i = 0; i < 5; i++)
		if ((rc = pc_op_need_float(p, n, i, err)))
			return rc;
	x = pc_op_in(p, n, 0);
	if (x->shape.ndim < 2) {
		char buf[96];
		return pc_node_error(err, n, PC_ERR_SHAPE, "input X has shape %s; it needs rank >= 2 (N, C, ...)",
				     pc_shape_format(&x->shape, buf, sizeof(buf)));
	}
	c = x->shape.dim[1];
	for (int i = 1; i < 5; i++) {
		const struct pc_tensor *t = pc_op_in(p, n, i);
		if (t->numel != c)
			return pc_node_error(err, n, PC_ERR_SHAPE, "input %d (%s) has %lld values; X has %lld channels",
					     i, role[i], (long long)t->numel, (long long)c);
	}
	mean = pc_op_in(p, n, 3);
	var = pc_op_in(p, n, 4);
	/* Inference reads the running statistics, so they must be known before
	 * the run (initializers or constants), never computed activations. */
	if (!mean->is_static || !var->is_static)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "the running mean and variance (inputs 3 and 4) must be constants");
	for (int64_t k = 0; k < c; k++)
		if (!(var->data[k] + pr->epsilon > 0.0f) || isinf(var->data[k]))
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "running variance of channel %lld is %g; var + epsilon must be positive",
					     (long long)k, (double)var->data[k]);
	if ((rc = pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &x->shape, err)))
		return rc;
	/* training mode keeps the batch's mean and 1/std per channel */
	pc_op_reserve_state(p, n, (size_t)(2 * c));
	cs.ndim = 1;
	cs.dim[0] = c;
	for (int j = 1; j < pc_op_n_out(n); j++) {
		const struct pc_tensor *src = (j % 2) ? mean : var;
		float *dst;
		if (!pc_op_out(p, n, j))
			continue;
		dst = pc_op_static_float(p, n, j, &cs, err);
		if (!dst)
			return err ? err->code : PC_ERR_INTERNAL;
		for (int64_t k = 0; k < c; k++)
			dst[k] = src->data[k];
	}
	return PC_OK;
}

/* The per-channel affine map: y = x * a + b. */
static void bn_affine(struct pc_plan *p, const struct pc_node *n, int64_t ch, float *a, float *b, float *inv_std)
{
	const struct bn_priv *pr = pc_op_priv(n);
	const float *scale = pc_op_in(p, n, 1)->data, *bias = pc_op_in(p, n, 2)->data;
	const float *mean = pc_op_in(p, n, 3)->data, *var = pc_op_in(p, n, 4)->data;
	float inv = 1.0f / sqrtf(var[ch] + pr->epsilon);

	*inv_std = inv;
	*a = scale[ch] * inv;
	*b = bias[ch] - mean[ch] * *a;
}

/* Training mode: batch statistics over the real rows, saved for backward. */
static void bn_forward_training(struct pc_plan *p, const struct pc_node *n)
{
	const struct bn_priv *pr = pc_op_priv(n);
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	const float *scale = pc_op_in(p, n, 1)->data, *bias = pc_op_in(p, n, 2)->data;
	float *rmean = pc_op_in(p, n, 3)->data, *rvar = pc_op_in(p, n, 4)->data;
	float *y = pc_op_out(p, n, 0)->data, *st = pc_op_state(p, n);
	int64_t batch = x->shape.dim[0], c = x->shape.dim[1];
	int64_t s = pc_shape_span(&x->shape, 2, x->shape.ndim), rows = p->rows ? p->rows : batch, m = rows * s;

	for (int64_t ch = 0; ch < c; ch++) {
		double sum = 0, sq = 0, mean, var;
		float inv, a, b;

		for (int64_t i = 0; i < rows; i++) {
			const float *xs = x->data + (i * c + ch) * s;
			for (int64_t k = 0; k < s; k++)
				sum += xs[k];
		}
		mean = sum / (double)m;
		/* two passes: the variance without cancellation */
		for (int64_t i = 0; i < rows; i++) {
			const float *xs = x->data + (i * c + ch) * s;
			for (int64_t k = 0; k < s; k++)
				sq += ((double)xs[k] - mean) * ((double)xs[k] - mean);
		}
		var = sq / (double)m;
		inv = (float)(1.0 / sqrt(var + pr->epsilon));
		st[ch] = (float)mean;
		st[c + ch] = inv;
		a = scale[ch] * inv;
		b = bias[ch] - (float)mean * a;
		for (int64_t i = 0; i < batch; i++) {
			const float *xs = x->data + (i * c + ch) * s;
			float *ys = y + (i * c + ch) * s;
			for (int64_t k = 0; k < s; k++)
				ys[k] = xs[k] * a + b;
		}
		if (p->update_stats) {
			double unbiased = m > 1 ? sq / (double)(m - 1) : var;

			rmean[ch] = (float)(rmean[ch] * (double)pr->momentum + mean * (1.0 - pr->momentum));
			rvar[ch] = (float)(rvar[ch] * (double)pr->momentum + unbiased * (1.0 - pr->momentum));
		}
	}
}

/* Training mode: the gradient through the batch statistics,
 *   dx = scale * inv / m * (m dy - sum dy - xhat sum(dy xhat)),
 * over the real rows; padding gets none. */
static void bn_backward_training(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	const float *dy = pc_op_out(p, n, 0)->grad, *scale = pc_op_in(p, n, 1)->data, *st = pc_op_state(p, n);
	float *dx = x->grad, *dscale = pc_op_in(p, n, 1)->grad, *dbias = pc_op_in(p, n, 2)->grad;
	int64_t batch = x->shape.dim[0], c = x->shape.dim[1];
	int64_t s = pc_shape_span(&x->shape, 2, x->shape.ndim), rows = p->rows ? p->rows : batch, m = rows * s;

	for (int64_t ch = 0; ch < c; ch++) {
		double sum_dy = 0, sum_dy_xhat = 0, mean = st[ch], inv = st[c + ch];

		for (int64_t i = 0; i < rows; i++) {
			int64_t off = (i * c + ch) * s;
			for (int64_t k = 0; k < s; k++) {
				sum_dy += dy[off + k];
				sum_dy_xhat += dy[off + k] * ((x->data[off + k] - mean) * inv);
			}
		}
		if (dscale)
			dscale[ch] += (float)sum_dy_xhat;
		if (dbias)
			dbias[ch] += (float)sum_dy;
		if (!dx)
			continue;
		for (int64_t i = 0; i < rows; i++) {
			int64_t off = (i * c + ch) * s;
			for (int64_t k = 0; k < s; k++) {
				double xhat = (x->data[off + k] - mean) * inv;
				dx[off + k] += (float)(scale[ch] * inv / (double)m *
						       ((double)m * dy[off + k] - sum_dy - xhat * sum_dy_xhat));
			}
		}
	}
}

void pc_batchnorm_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	float *y = pc_op_out(p, n, 0)->data;
	int64_t batch = x->shape.dim[0], c = x->shape.dim[1];
	int64_t s = pc_shape_span(&x->shape, 2, x->shape.ndim);

	if (p->training) {
		bn_forward_training(p, n);
		return;
	}
	for (int64_t ch = 0; ch < c; ch++) {
		float a, b, inv;
		bn_affine(p, n, ch, &a, &b, &inv);
		for (int64_t i = 0; i < batch; i++) {
			const float *xs = x->data + (i * c + ch) * s;
			float *ys = y + (i * c + ch) * s;
			for (int64_t k = 0; k < s; k++)
				ys[k] = xs[k] * a + b;
		}
	}
}

void pc_batchnorm_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	const float *dy = pc_op_out(p, n, 0)->grad;
	const float *mean = pc_op_in(p, n, 3)->data;
	float *dx = x->grad, *dscale = pc_op_in(p, n, 1)->grad, *dbias = pc_op_in(p, n, 2)->grad;
	int64_t batch = x->shape.dim[0], c = x->shape.dim[1];
	int64_t s = pc_shape_span(&x->shape, 2, x->shape.ndim);

	if (!dy)
		return;
	if (p->training) {
		bn_backward_training(p, n);
		return;
	}
	for (int64_t ch = 0; ch < c; ch++) {
		double sum_dy = 0.0, sum_dy_xc = 0.0;
		float a, b, inv;
		bn_affine(p, n, ch, &a, &b, &inv);
		for (int64_t i = 0; i < batch; i++) {
			int64_t off = (i * c + ch) * s;
			const float *xs = x->data + off, *dys = dy + off;
			if (dx)
				for (int64_t k = 0; k < s; k++)
					dx[off + k] += dys[k] * a;
			if (dscale || dbias)
				for (int64_t k = 0; k < s; k++) {
					sum_dy += dys[k];
					sum_dy_xc += (double)dys[k] * (xs[k] - mean[ch]);
				}
		}
		if (dscale)
			dscale[ch] += (float)(sum_dy_xc * inv);
		if (dbias)
			dbias[ch] += (float)sum_dy;
	}
}

/* --- LayerNormalization --------------------------------------------------------- */

/* LayerNormalization (opset 17) normalises each row of X seen as [rows, h],
 * h the product of the axes from `axis` on, then applies Scale and the
 * optional B. Per row, in double: the mean, then the variance as the mean
 * of squared deviations from it (two passes: no cancellation between E[x^2]
 * and E[x]^2, which loses everything when |mean| >> std), then
 * inv = 1 / sqrt(var + epsilon); Y = (x - mean) * inv * Scale + B, rounded
 * to float once per factor. stash_type 1 (float) asks for stage one in
 * float at least; double is at least that, so 1 and 11 (double) are
 * accepted and compute the same.
 *
 * Scale and B may be the normalised shape or a suffix of it (leading 1s
 * allowed): Scale [D] under axis = -2 repeats along the rows of [T, D]. A
 * broadcast of any other pattern is refused at load.
 *
 * The optional outputs Mean and InvStdDev ([d0 .. d(axis-1), 1 .. 1]) are
 * computed when something reads them, and carry gradient back to X:
 * d mean / dx = 1 / h, d inv / dx = -inv^2 * xhat / h.
 *
 * Backward recomputes each row's statistics from X (the same code, so the
 * same numbers as forward) rather than keeping them: the workspace is
 * shared between nodes, and nothing would be saved that costs more than a
 * pass over the row. With g = dY * Scale and xhat = (x - mean) * inv,
 *   dX += inv * (g - mean(g) - xhat * mean(g * xhat)),
 *   dScale += sum over rows of dY * xhat, dB += sum over rows of dY,
 * the last two accumulated in double in the workspace. */

struct ln_priv {
	int64_t axis;
	float epsilon;
};

struct ln_geom {
	int64_t rows, h;
	int64_t sn, bn; /* Scale's and B's element counts: their period along a row */
	struct pc_shape stat; /* Mean's and InvStdDev's shape */
};

int pc_layernorm_init(struct pc_node *n, struct pc_error *err)
{
	struct ln_priv *pr;
	int64_t axis, stash;
	float eps;
	int rc;

	if (pc_op_opset(n) < 17)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "LayerNormalization exists from opset 17; the model is at %d", pc_op_opset(n));
	if ((rc = pc_attr_int(n, "axis", -1, &axis, err)) || (rc = pc_attr_float(n, "epsilon", 1e-5f, &eps, err)) ||
	    (rc = pc_attr_int(n, "stash_type", 1, &stash, err)))
		return rc;
	if (!(eps >= 0.0f) || isinf(eps))
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'epsilon' is %g; it must be finite and >= 0",
				     (double)eps);
	if (stash != PC_DTYPE_FLOAT && stash != 11)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'stash_type' is %lld; supported: 1 (float) and 11 (double)",
				     (long long)stash);
	pr = malloc(sizeof(*pr));
	if (!pr)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	pr->axis = axis;
	pr->epsilon = eps;
	free(n->priv);
	n->priv = pr;
	return PC_OK;
}

/* Scale or B (input i) must be the normalised shape x[ax..] or a suffix of
 * it, leading 1s allowed. */
static int ln_check_affine(struct pc_plan *p, const struct pc_node *n, int i, int ax, int64_t *period,
			   struct pc_error *err)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *t = pc_op_in(p, n, i);
	const struct pc_shape *xs = &x->shape, *ts = &t->shape;
	int lead = 0, k;
	char a[96], b[96];

	while (lead < ts->ndim && ts->dim[lead] == 1)
		lead++;
	k = ts->ndim - lead; /* rank after the leading 1s */
	if (k > xs->ndim - ax)
		goto bad;
	for (int j = 0; j < k; j++)
		if (ts->dim[lead + j] != xs->dim[xs->ndim - k + j])
			goto bad;
	*period = t->numel;
	return PC_OK;
bad:
	return pc_node_error(err, n, PC_ERR_SHAPE,
			     "%s (input %d) has shape %s; it must be the normalised shape of X %s from axis %d, or "
			     "a suffix of it",
			     i == 1 ? "Scale" : "B", i, pc_shape_format(ts, a, sizeof(a)), pc_shape_format(xs, b, sizeof(b)),
			     ax);
}

static int ln_geometry(struct pc_plan *p, const struct pc_node *n, struct ln_geom *g, struct pc_error *err)
{
	const struct ln_priv *pr = pc_op_priv(n);
	const struct pc_shape *xs = &pc_op_in(p, n, 0)->shape;
	int64_t axis = pr->axis < 0 ? pr->axis + xs->ndim : pr->axis;
	char buf[96];
	int ax, rc;

	if (axis < 0 || axis > xs->ndim)
		return pc_node_error(err, n, PC_ERR_SHAPE, "attribute 'axis' = %lld is out of range for X %s",
				     (long long)pr->axis, pc_shape_format(xs, buf, sizeof(buf)));
	ax = (int)axis;
	g->rows = pc_shape_span(xs, 0, ax);
	g->h = pc_shape_span(xs, ax, xs->ndim);
	g->bn = 0;
	if ((rc = ln_check_affine(p, n, 1, ax, &g->sn, err)))
		return rc;
	if (pc_op_in(p, n, 2) && (rc = ln_check_affine(p, n, 2, ax, &g->bn, err)))
		return rc;
	g->stat = *xs;
	for (int i = ax; i < xs->ndim; i++)
		g->stat.dim[i] = 1;
	return PC_OK;
}

int pc_layernorm_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	struct ln_geom g;
	int rc;

	if ((rc = pc_op_need_float(p, n, 0, err)) || (rc = pc_op_need_float(p, n, 1, err)))
		return rc;
	if (pc_op_in(p, n, 2) && (rc = pc_op_need_float(p, n, 2, err)))
		return rc;
	if ((rc = ln_geometry(p, n, &g, err)))
		return rc;
	if ((rc = pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &pc_op_in(p, n, 0)->shape, err)) ||
	    (rc = pc_op_set_output(p, n, 1, PC_DTYPE_FLOAT, &g.stat, err)) ||
	    (rc = pc_op_set_output(p, n, 2, PC_DTYPE_FLOAT, &g.stat, err)))
		return rc;
	/* backward's double accumulators of dScale and dB */
	pc_op_reserve_ws(p, (size_t)(g.sn + g.bn) * 2);
	return PC_OK;
}

/* One row's mean and 1 / sqrt(var + eps), in double. */
/* Lanes of the row sums: one double accumulator per lane, so that the
 * loops vectorize (a single running sum is a dependency chain GCC may not
 * reorder) and the summation order is still fixed. */
#define LN_LANES 8

PC_HOT static void ln_stats(const float *x, int64_t h, double eps, double *mean, double *inv)
{
	double s[LN_LANES] = {0}, sq[LN_LANES] = {0}, st = 0.0, sqt = 0.0, m;
	int64_t j = 0, tail = h - h % LN_LANES;

	for (j = 0; j < tail; j += LN_LANES)
		for (int l = 0; l < LN_LANES; l++)
			s[l] += x[j + l];
	for (; j < h; j++)
		st += x[j];
	for (int l = 0; l < LN_LANES; l++)
		st += s[l];
	m = st / (double)h;
	for (j = 0; j < tail; j += LN_LANES)
		for (int l = 0; l < LN_LANES; l++) {
			double d = (double)x[j + l] - m;
			sq[l] += d * d;
		}
	for (; j < h; j++) {
		double d = (double)x[j] - m;
		sqt += d * d;
	}
	for (int l = 0; l < LN_LANES; l++)
		sqt += sq[l];
	*mean = m;
	*inv = 1.0 / sqrt(sqt / (double)h + eps);
}

/* y = (x - mean) inv * scale (+ bias) over one row, in periods of Scale
 * (and B): no index arithmetic inside. */
PC_HOT static void ln_row(const float *restrict xr, float *restrict yr, int64_t h, double mean, double inv,
			  const float *restrict s, int64_t sn, const float *restrict b, int64_t bn)
{
	for (int64_t base = 0; base < h; base += sn)
		for (int64_t k = 0; k < sn; k++)
			yr[base + k] = (float)(((double)xr[base + k] - mean) * inv) * s[k];
	if (b)
		for (int64_t base = 0; base < h; base += bn)
			for (int64_t k = 0; k < bn; k++)
				yr[base + k] += b[k];
}

void pc_layernorm_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct ln_priv *pr = pc_op_priv(n);
	const struct pc_tensor *x = pc_op_in(p, n, 0), *sc = pc_op_in(p, n, 1), *bi = pc_op_in(p, n, 2);
	struct pc_tensor *tm = pc_op_out(p, n, 1), *ti = pc_op_out(p, n, 2);
	float *y = pc_op_out(p, n, 0)->data;
	struct ln_geom g;

	if (ln_geometry(p, n, &g, NULL))
		return;
	for (int64_t r = 0; r < g.rows; r++) {
		const float *xr = x->data + r * g.h;
		float *yr = y + r * g.h;
		double mean = NAN, inv = NAN;
		if (g.h > 0)
			ln_stats(xr, g.h, pr->epsilon, &mean, &inv);
		if (tm)
			tm->data[r] = (float)mean;
		if (ti)
			ti->data[r] = (float)inv;
		ln_row(xr, yr, g.h, mean, inv, sc->data, g.sn, bi ? bi->data : NULL, g.bn);
	}
}

void pc_layernorm_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct ln_priv *pr = pc_op_priv(n);
	const struct pc_tensor *x = pc_op_in(p, n, 0), *sc = pc_op_in(p, n, 1), *bi = pc_op_in(p, n, 2);
	const struct pc_tensor *tm = pc_op_out(p, n, 1), *ti = pc_op_out(p, n, 2);
	const float *dy = pc_op_out(p, n, 0)->grad;
	const float *dmean = tm ? tm->grad : NULL, *dinv = ti ? ti->grad : NULL;
	float *dx = x->grad, *ds = sc->grad, *db = bi ? bi->grad : NULL;
	double *acc_s = (double *)pc_op_ws(p), *acc_b;
	struct ln_geom g;

	if (ln_geometry(p, n, &g, NULL) || g.h == 0)
		return;
	acc_b = acc_s + g.sn;
	for (int64_t k = 0; k < g.sn + g.bn; k++)
		acc_s[k] = 0.0;
	for (int64_t r = 0; r < g.rows; r++) {
		const float *xr = x->data + r * g.h, *gr = dy ? dy + r * g.h : NULL;
		const float *s = sc->data;
		double mean, inv, sum_g = 0.0, sum_gx = 0.0, h = (double)g.h, c_mean, c_x;
		ln_stats(xr, g.h, pr->epsilon, &mean, &inv);
		if (gr) {
			for (int64_t base = 0; base < g.h; base += g.sn)
				for (int64_t k = 0; k < g.sn; k++) {
					double gj = (double)gr[base + k] * s[k], xh = ((double)xr[base + k] - mean) * inv;
					sum_g += gj;
					sum_gx += gj * xh;
					if (ds)
						acc_s[k] += (double)gr[base + k] * xh;
				}
			if (db)
				for (int64_t base = 0; base < g.h; base += g.bn)
					for (int64_t k = 0; k < g.bn; k++)
						acc_b[k] += gr[base + k];
		}
		if (!dx)
			continue;
		/* dx_j = inv * g_j + c_mean + c_x * xhat_j */
		c_mean = -inv * sum_g / h + (dmean ? dmean[r] / h : 0.0);
		c_x = -inv * sum_gx / h - (dinv ? dinv[r] * inv * inv / h : 0.0);
		for (int64_t base = 0; base < g.h; base += g.sn)
			for (int64_t k = 0; k < g.sn; k++) {
				double gj = gr ? (double)gr[base + k] * s[k] : 0.0, xh = ((double)xr[base + k] - mean) * inv;
				dx[r * g.h + base + k] += (float)(inv * gj + c_mean + c_x * xh);
			}
	}
	if (ds)
		for (int64_t k = 0; k < g.sn; k++)
			ds[k] += (float)acc_s[k];
	if (db)
		for (int64_t k = 0; k < g.bn; k++)
			db[k] += (float)acc_b[k];
}
