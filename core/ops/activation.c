/* ops/activation: Relu, LeakyRelu, Sigmoid, Tanh, Softmax, LogSoftmax and
 * Clip.
 *
 * The pointwise ones are flat loops over the tensor; their backward reads
 * whichever of input or output makes the derivative cheapest and exact
 * (the output for Relu, Sigmoid and Tanh, the input for LeakyRelu).
 *
 * Softmax and LogSoftmax see the tensor as [outer, d, inner] and normalise
 * over d: before opset 13 the input is coerced to 2-D at `axis` (inner is
 * 1, d is everything from axis on); from 13 on d is the single axis. Rows
 * are stabilised by their maximum and summed in double. With inner > 1 the
 * loops run over d outside and inner inside, so every pass is contiguous;
 * the per-column maxima and sums live in the workspace. The last-axis case
 * (inner = 1, attention's [N, heads, T, T]) runs rows in 16 lanes with a
 * vectorizable exp (pc_exp_nonpos, ops_int.h: the arguments, x - max, are
 * never positive), about 4 times faster than a call to expf per element;
 * the strided loops use it too.
 *
 * Clip (opset 11+) takes its bounds as optional scalar inputs read at run
 * time, so a bound may be a constant, an initializer (then a parameter) or
 * computed; a bound with a gradient slot receives the exact gradient (the
 * sum of dY where it is the result). */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- shared ---------------------------------------------------------------- */

static int unary_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	int rc = pc_op_need_float(p, n, 0, err);

	if (rc)
		return rc;
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &pc_op_in(p, n, 0)->shape, err);
}

/* --- Relu ------------------------------------------------------------------ */

int pc_relu_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return unary_infer(p, n, err);
}

/* Gates (pc_plan_set_gates): a byte per element, 1 where the input passes. */
PC_HOT void pc_relu_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	float *restrict y = pc_op_out(p, n, 0)->data;
	unsigned char *restrict gate = pc_op_gate(p, n);
	const float *xd = x->data;

	if (gate && pc_op_gates_frozen(p)) {
		for (int64_t i = 0; i < x->numel; i++)
			y[i] = gate[i] ? xd[i] : 0.0f;
		return;
	}
	for (int64_t i = 0; i < x->numel; i++)
		y[i] = xd[i] > 0.0f ? xd[i] : 0.0f;
	if (gate)
		for (int64_t i = 0; i < x->numel; i++)
			gate[i] = xd[i] > 0.0f;
}

PC_HOT void pc_relu_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	float *restrict dx = x->grad;
	const unsigned char *gate = pc_op_gate(p, n);
	const float *yd = y->data, *g = y->grad;

	if (!dx)
		return;
	if (gate) {
		for (int64_t i = 0; i < x->numel; i++)
			dx[i] += gate[i] ? g[i] : 0.0f;
		return;
	}
	for (int64_t i = 0; i < x->numel; i++)
		dx[i] += yd[i] > 0.0f ? g[i] : 0.0f;
}

/* --- LeakyRelu ------------------------------------------------------------- */

struct leaky_attrs {
	float alpha;
};

int pc_leakyrelu_init(struct pc_node *n, struct pc_error *err)
{
	struct leaky_attrs *a = calloc(1, sizeof(*a));

	if (!a)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	if (pc_attr_float(n, "alpha", 0.01f, &a->alpha, err)) {
		free(a);
		return err ? err->code : PC_ERR_FORMAT;
	}
	free(n->priv);
	n->priv = a;
	return PC_OK;
}

int pc_leakyrelu_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return unary_infer(p, n, err);
}

void pc_leakyrelu_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct leaky_attrs *at = n->priv;
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	float *restrict y = pc_op_out(p, n, 0)->data;
	unsigned char *restrict gate = pc_op_gate(p, n);
	const float *xd = x->data, alpha = at->alpha;

	if (gate && pc_op_gates_frozen(p)) {
		for (int64_t i = 0; i < x->numel; i++)
			y[i] = gate[i] ? xd[i] : alpha * xd[i];
		return;
	}
	for (int64_t i = 0; i < x->numel; i++)
		y[i] = xd[i] > 0.0f ? xd[i] : alpha * xd[i];
	if (gate)
		for (int64_t i = 0; i < x->numel; i++)
			gate[i] = xd[i] > 0.0f;
}

void pc_leakyrelu_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct leaky_attrs *at = n->priv;
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	float *restrict dx = x->grad;
	const unsigned char *gate = pc_op_gate(p, n);
	const float *xd = x->data, *g = y->grad, alpha = at->alpha;

	if (!dx)
		return;
	if (gate) {
		for (int64_t i = 0; i < x->numel; i++)
			dx[i] += gate[i] ? g[i] : alpha * g[i];
		return;
	}
	for (int64_t i = 0; i < x->numel; i++)
		dx[i] += xd[i] > 0.0f ? g[i] : alpha * g[i];
}

/* --- Sigmoid --------------------------------------------------------------- */

int pc_sigmoid_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return unary_infer(p, n, err);
}

void pc_sigmoid_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	float *restrict y = pc_op_out(p, n, 0)->data;
	const float *xd = x->data;

	/* exp of a non-positive argument only: no overflow either way */
	for (int64_t i = 0; i < x->numel; i++) {
		float v = xd[i];
		if (v >= 0.0f) {
			y[i] = 1.0f / (1.0f + expf(-v));
		} else {
			float e = expf(v);
			y[i] = e / (1.0f + e);
		}
	}
}

void pc_sigmoid_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	float *restrict dx = x->grad;
	const float *yd = y->data, *g = y->grad;

	if (!dx)
		return;
	for (int64_t i = 0; i < x->numel; i++)
		dx[i] += g[i] * yd[i] * (1.0f - yd[i]);
}

/* --- Tanh ------------------------------------------------------------------ */

int pc_tanh_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return unary_infer(p, n, err);
}

void pc_tanh_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	float *restrict y = pc_op_out(p, n, 0)->data;
	const float *xd = x->data;

	for (int64_t i = 0; i < x->numel; i++)
		y[i] = tanhf(xd[i]);
}

void pc_tanh_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	float *restrict dx = x->grad;
	const float *yd = y->data, *g = y->grad;

	if (!dx)
		return;
	for (int64_t i = 0; i < x->numel; i++)
		dx[i] += g[i] * (1.0f - yd[i] * yd[i]);
}

/* --- Softmax and LogSoftmax ------------------------------------------------ */

struct softmax_attrs {
	int64_t axis;
	int coerce_2d; /* opset < 13 */
};

struct sm_geom {
	int64_t outer, d, inner;
};

static int softmax_init_common(struct pc_node *n, struct pc_error *err)
{
	struct softmax_attrs *a = calloc(1, sizeof(*a));

	if (!a)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	a->coerce_2d = pc_op_opset(n) < 13;
	if (pc_attr_int(n, "axis", a->coerce_2d ? 1 : -1, &a->axis, err)) {
		free(a);
		return err ? err->code : PC_ERR_FORMAT;
	}
	free(n->priv);
	n->priv = a;
	return PC_OK;
}

static int sm_geometry(const struct pc_node *n, const struct pc_shape *s, struct sm_geom *gm, struct pc_error *err)
{
	const struct softmax_attrs *at = n->priv;
	int ax = pc_axis(at->axis, s->ndim);
	char buf[96];

	if (ax < 0)
		return pc_node_error(err, n, PC_ERR_SHAPE, "attribute 'axis' = %lld is out of range for input %s",
				     (long long)at->axis, pc_shape_format(s, buf, sizeof(buf)));
	gm->outer = pc_shape_span(s, 0, ax);
	if (at->coerce_2d) {
		gm->d = pc_shape_span(s, ax, s->ndim);
		gm->inner = 1;
	} else {
		gm->d = s->dim[ax];
		gm->inner = pc_shape_span(s, ax + 1, s->ndim);
	}
	return PC_OK;
}

static int softmax_infer_common(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *x;
	struct sm_geom gm;
	int rc;

	if ((rc = pc_op_need_float(p, n, 0, err)))
		return rc;
	x = pc_op_in(p, n, 0);
	if ((rc = sm_geometry(n, &x->shape, &gm, err)))
		return rc;
	/* strided columns: one double sum (two floats) and one float each */
	if (gm.inner > 1)
		pc_op_reserve_ws(p, (size_t)gm.inner * 3);
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &x->shape, err);
}

/* Lanes of the row loops: 16 floats, one AVX-512 register. Sums keep one
 * double accumulator per lane, so a long row (a vocabulary) loses nothing
 * to float rounding, and the loops still vectorize. */
#define SM_LANES 16

/* A float's bits as an int32 that orders as the floats do (negative
 * floats have their magnitude bits flipped), and back: the same map. An
 * integer max vectorizes where a float one may not (a float max reduction
 * needs -ffinite-math-only). A positive NaN orders above +inf, so a row
 * with NaN has a NaN maximum, and its softmax is NaN as before. */
static inline int32_t order_key(uint32_t u)
{
	return (int32_t)(u ^ ((0u - (u >> 31)) >> 1));
}

static inline float row_max(const float *x, int64_t d)
{
	int32_t k[SM_LANES], best;
	uint32_t u;
	int64_t j = 0;
	float m;

	memcpy(&u, x, sizeof(u));
	for (int l = 0; l < SM_LANES; l++)
		k[l] = order_key(u);
	for (; j + SM_LANES <= d; j += SM_LANES)
		for (int l = 0; l < SM_LANES; l++) {
			int32_t v;
			memcpy(&u, x + j + l, sizeof(u));
			v = order_key(u);
			k[l] = v > k[l] ? v : k[l];
		}
	for (; j < d; j++) {
		int32_t v;
		memcpy(&u, x + j, sizeof(u));
		v = order_key(u);
		k[0] = v > k[0] ? v : k[0];
	}
	best = k[0];
	for (int l = 1; l < SM_LANES; l++)
		best = k[l] > best ? k[l] : best;
	u = (uint32_t)order_key((uint32_t)best);
	memcpy(&m, &u, sizeof(m));
	return m;
}

static inline double lanes_sum(const double *acc)
{
	double s = 0.0;

	for (int l = 0; l < SM_LANES; l++)
		s += acc[l];
	return s;
}

/* Softmax (log_out = 0) or LogSoftmax (1) of rows of d contiguous floats:
 * the attention path ([N, heads, T, T] over the last axis) and every
 * last-axis softmax. */
PC_HOT static void softmax_rows(const float *x, float *restrict y, int64_t rows, int64_t d, int log_out)
{
	for (int64_t r = 0; r < rows; r++, x += d, y += d) {
		float m = row_max(x, d);
		double acc[SM_LANES] = {0};
		int64_t j = 0;
		if (log_out) {
			float lse;
			for (; j + SM_LANES <= d; j += SM_LANES)
				for (int l = 0; l < SM_LANES; l++)
					acc[l] += pc_exp_nonpos(x[j + l] - m);
			for (; j < d; j++)
				acc[0] += pc_exp_nonpos(x[j] - m);
			lse = (float)log(lanes_sum(acc));
			for (j = 0; j < d; j++)
				y[j] = (x[j] - m) - lse;
		} else {
			float inv;
			for (; j + SM_LANES <= d; j += SM_LANES)
				for (int l = 0; l < SM_LANES; l++) {
					float e = pc_exp_nonpos(x[j + l] - m);
					y[j + l] = e;
					acc[l] += e;
				}
			for (; j < d; j++) {
				float e = pc_exp_nonpos(x[j] - m);
				y[j] = e;
				acc[0] += e;
			}
			inv = (float)(1.0 / lanes_sum(acc));
			for (j = 0; j < d; j++)
				y[j] *= inv;
		}
	}
}

/* The same over [outer, d, inner] with inner > 1, columns in parallel. */
PC_HOT static void softmax_strided(const float *x, float *restrict y, const struct sm_geom *gm, float *ws, int log_out)
{
	int64_t in = gm->inner, block = gm->d * gm->inner;
	double *s = (double *)ws;
	float *m = ws + 2 * in;

	for (int64_t o = 0; o < gm->outer; o++, x += block, y += block) {
		memcpy(m, x, (size_t)in * sizeof(float));
		for (int64_t j = 1; j < gm->d; j++) {
			const float *xr = x + j * in;
			for (int64_t i = 0; i < in; i++)
				m[i] = xr[i] > m[i] ? xr[i] : m[i];
		}
		for (int64_t i = 0; i < in; i++)
			s[i] = 0.0;
		for (int64_t j = 0; j < gm->d; j++) {
			const float *xr = x + j * in;
			float *yr = y + j * in;
			if (log_out) {
				for (int64_t i = 0; i < in; i++)
					s[i] += pc_exp_nonpos(xr[i] - m[i]);
			} else {
				for (int64_t i = 0; i < in; i++) {
					float e = pc_exp_nonpos(xr[i] - m[i]);
					yr[i] = e;
					s[i] += e;
				}
			}
		}
		/* m becomes the per-column shift (log) or scale (probabilities) */
		for (int64_t i = 0; i < in; i++)
			m[i] = log_out ? m[i] + (float)log(s[i]) : (float)(1.0 / s[i]);
		for (int64_t j = 0; j < gm->d; j++) {
			const float *xr = x + j * in;
			float *yr = y + j * in;
			if (log_out)
				for (int64_t i = 0; i < in; i++)
					yr[i] = xr[i] - m[i];
			else
				for (int64_t i = 0; i < in; i++)
					yr[i] *= m[i];
		}
	}
}

/* dX += y * (g - sum(g * y)) for Softmax; dX += g - exp(y) * sum(g) for
 * LogSoftmax; rows of d contiguous floats. */
PC_HOT static void softmax_rows_grad(const float *y, const float *g, float *restrict dx, int64_t rows, int64_t d,
				     int log_out)
{
	for (int64_t r = 0; r < rows; r++, y += d, g += d, dx += d) {
		double acc[SM_LANES] = {0};
		int64_t j = 0;
		if (log_out) {
			float sg;
			for (; j + SM_LANES <= d; j += SM_LANES)
				for (int l = 0; l < SM_LANES; l++)
					acc[l] += g[j + l];
			for (; j < d; j++)
				acc[0] += g[j];
			sg = (float)lanes_sum(acc);
			for (j = 0; j < d; j++)
				dx[j] += g[j] - pc_exp_nonpos(y[j]) * sg;
		} else {
			float dot;
			for (; j + SM_LANES <= d; j += SM_LANES)
				for (int l = 0; l < SM_LANES; l++)
					acc[l] += (double)g[j + l] * y[j + l];
			for (; j < d; j++)
				acc[0] += (double)g[j] * y[j];
			dot = (float)lanes_sum(acc);
			for (j = 0; j < d; j++)
				dx[j] += y[j] * (g[j] - dot);
		}
	}
}

PC_HOT static void softmax_strided_grad(const float *y, const float *g, float *restrict dx, const struct sm_geom *gm,
					float *ws, int log_out)
{
	int64_t in = gm->inner, block = gm->d * gm->inner;
	double *s = (double *)ws;
	float *sf = ws + 2 * in;

	for (int64_t o = 0; o < gm->outer; o++, y += block, g += block, dx += block) {
		for (int64_t i = 0; i < in; i++)
			s[i] = 0.0;
		for (int64_t j = 0; j < gm->d; j++) {
			const float *yr = y + j * in, *gr = g + j * in;
			if (log_out)
				for (int64_t i = 0; i < in; i++)
					s[i] += gr[i];
			else
				for (int64_t i = 0; i < in; i++)
					s[i] += (double)gr[i] * yr[i];
		}
		for (int64_t i = 0; i < in; i++)
			sf[i] = (float)s[i];
		for (int64_t j = 0; j < gm->d; j++) {
			const float *yr = y + j * in, *gr = g + j * in;
			float *dr = dx + j * in;
			if (log_out)
				for (int64_t i = 0; i < in; i++)
					dr[i] += gr[i] - pc_exp_nonpos(yr[i]) * sf[i];
			else
				for (int64_t i = 0; i < in; i++)
					dr[i] += yr[i] * (gr[i] - sf[i]);
		}
	}
}

static void softmax_forward_common(struct pc_plan *p, const struct pc_node *n, int log_out)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	float *y = pc_op_out(p, n, 0)->data;
	struct sm_geom gm;

	if (x->numel == 0 || sm_geometry(n, &x->shape, &gm, NULL))
		return;
	if (gm.inner == 1)
		softmax_rows(x->data, y, gm.outer, gm.d, log_out);
	else
		softmax_strided(x->data, y, &gm, pc_op_ws(p), log_out);
}

static void softmax_backward_common(struct pc_plan *p, const struct pc_node *n, int log_out)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	struct sm_geom gm;

	if (!x->grad || x->numel == 0 || sm_geometry(n, &x->shape, &gm, NULL))
		return;
	if (gm.inner == 1)
		softmax_rows_grad(y->data, y->grad, x->grad, gm.outer, gm.d, log_out);
	else
		softmax_strided_grad(y->data, y->grad, x->grad, &gm, pc_op_ws(p), log_out);
}

int pc_softmax_init(struct pc_node *n, struct pc_error *err)
{
	return softmax_init_common(n, err);
}

int pc_softmax_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return softmax_infer_common(p, n, err);
}

void pc_softmax_forward(struct pc_plan *p, const struct pc_node *n)
{
	softmax_forward_common(p, n, 0);
}

void pc_softmax_backward(struct pc_plan *p, const struct pc_node *n)
{
	softmax_backward_common(p, n, 0);
}

int pc_logsoftmax_init(struct pc_node *n, struct pc_error *err)
{
	return softmax_init_common(n, err);
}

int pc_logsoftmax_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return softmax_infer_common(p, n, err);
}

void pc_logsoftmax_forward(struct pc_plan *p, const struct pc_node *n)
{
	softmax_forward_common(p, n, 1);
}

void pc_logsoftmax_backward(struct pc_plan *p, const struct pc_node *n)
{
	softmax_backward_common(p, n, 1);
}

/* --- Clip ------------------------------------------------------------------ */

int pc_clip_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	int rc = unary_infer(p, n, err);

	if (rc)
		return rc;
	for (int i = 1; i <= 2; i++) {
		const struct pc_tensor *b = pc_op_in(p, n, i);
		char buf[96];
		if (!b)
			continue;
		if ((rc = pc_op_need_float(p, n, i, err)))
			return rc;
		if (b->numel != 1)
			return pc_node_error(err, n, PC_ERR_SHAPE, "%s (input %d) must be a scalar; it has shape %s",
					     i == 1 ? "min" : "max", i, pc_shape_format(&b->shape, buf, sizeof(buf)));
	}
	return PC_OK;
}

static void clip_bounds(struct pc_plan *p, const struct pc_node *n, float *lo, float *hi)
{
	const struct pc_tensor *tmin = pc_op_in(p, n, 1), *tmax = pc_op_in(p, n, 2);

	*lo = tmin ? tmin->data[0] : -INFINITY;
	*hi = tmax ? tmax->data[0] : INFINITY;
}

/* A Clip's gate: which piece each element took, and so where its
 * gradient goes (see the backward). */
enum clip_piece {
	CLIP_INSIDE,  /* min < x < max: y = x, dX */
	CLIP_BELOW,   /* x < min: y = min, dmin */
	CLIP_ABOVE,   /* x > max, or min > max: y = max, dmax */
	CLIP_AT_MIN,  /* x == min: y = min, no one */
	CLIP_AT_MAX,  /* x == max: y = max, no one */
	CLIP_NAN      /* y = x, no one */
};

static unsigned char clip_piece(float x, float lo, float hi)
{
	if (lo > hi)
		return CLIP_ABOVE;
	if (x != x)
		return CLIP_NAN;
	if (x < lo)
		return CLIP_BELOW;
	if (x > hi)
		return CLIP_ABOVE;
	if (x == lo)
		return CLIP_AT_MIN;
	return x == hi ? CLIP_AT_MAX : CLIP_INSIDE;
}

void pc_clip_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	float *restrict y = pc_op_out(p, n, 0)->data;
	unsigned char *gate = pc_op_gate(p, n);
	const float *xd = x->data;
	float lo, hi;

	clip_bounds(p, n, &lo, &hi);
	if (gate && pc_op_gates_frozen(p)) {
		for (int64_t i = 0; i < x->numel; i++) {
			unsigned char c = gate[i];
			y[i] = c == CLIP_INSIDE || c == CLIP_NAN			? xd[i]
			       : c == CLIP_BELOW || c == CLIP_AT_MIN ? lo
								      : hi;
		}
		return;
	}
	/* min > max gives max everywhere, as the spec says; NaN passes through */
	for (int64_t i = 0; i < x->numel; i++) {
		float v = xd[i] < lo ? lo : xd[i];
		y[i] = v > hi ? hi : v;
	}
	if (gate)
		for (int64_t i = 0; i < x->numel; i++)
			gate[i] = clip_piece(xd[i], lo, hi);
}

/* The backward with gates: each element's recorded piece says where its
 * gradient goes, as clip_piece's table. */
static void clip_backward_gated(const struct pc_tensor *x, const float *g, const unsigned char *gate, float *dmin,
				float *dmax)
{
	double smin = 0.0, smax = 0.0;

	for (int64_t i = 0; i < x->numel; i++) {
		if (gate[i] == CLIP_INSIDE && x->grad)
			x->grad[i] += g[i];
		else if (gate[i] == CLIP_BELOW)
			smin += g[i];
		else if (gate[i] == CLIP_ABOVE)
			smax += g[i];
	}
	if (dmin)
		dmin[0] += (float)smin;
	if (dmax)
		dmax[0] += (float)smax;
}

/* dX where min < x < max (strict, as PyTorch's hardtanh/ReLU6, which
 * export to Clip); dmin where x < min, dmax where x > max, everything to
 * max when min > max. Ties feed no one. */
void pc_clip_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	const struct pc_tensor *tmin = pc_op_in(p, n, 1), *tmax = pc_op_in(p, n, 2);
	float *dmin = tmin ? tmin->grad : NULL, *dmax = tmax ? tmax->grad : NULL;
	const float *xd = x->data, *g = y->grad;
	float lo, hi;

	if (pc_op_gate(p, n)) {
		clip_backward_gated(x, g, pc_op_gate(p, n), dmin, dmax);
		return;
	}
	clip_bounds(p, n, &lo, &hi);
	if (lo > hi) {
		if (dmax) {
			double s = 0.0;
			for (int64_t i = 0; i < x->numel; i++)
				s += g[i];
			dmax[0] += (float)s;
		}
		return;
	}
	if (x->grad) {
		float *restrict dx = x->grad;
		for (int64_t i = 0; i < x->numel; i++)
			dx[i] += (xd[i] > lo && xd[i] < hi) ? g[i] : 0.0f;
	}
	if (dmin) {
		double s = 0.0;
		for (int64_t i = 0; i < x->numel; i++)
			s += xd[i] < lo ? g[i] : 0.0f;
		dmin[0] += (float)s;
	}
	if (dmax) {
		double s = 0.0;
		for (int64_t i = 0; i < x->numel; i++)
			s += xd[i] > hi ? g[i] : 0.0f;
		dmax[0] += (float)s;
	}
}
