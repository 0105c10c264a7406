/* ops/norm: BatchNormalization.
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
