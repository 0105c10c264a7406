/* ops/shape: ops that move data without arithmetic, and the int64 shape
 * arithmetic that exporters emit around them.
 *
 * Reshape-like ops (Flatten, Reshape, Identity, Dropout, Squeeze, Unsqueeze)
 * are aliases: infer only computes the output shape and the plan points the
 * output at the input's buffers. When their input is static (an int64 shape
 * or a float constant), the output must carry the values at once, because
 * the nodes after it read them during their own infer, before the plan
 * wires aliases at allocation.
 *
 * The shape subgraph of a dynamic-batch export (Shape, Gather, Unsqueeze,
 * Concat, Constant, Cast) is folded at prepare time: each plan knows its
 * batch size, so those int64 values are static and Reshape receives a known
 * target shape (Gather and the other indexing ops are in index.c).
 * Transpose and Concat also run on run-time tensors of any element type,
 * Pad on float ones, with backward passes that add into the input
 * gradients. Cast converts between float, int64 and bool (and keeps double,
 * float16 and int32 as those, see below), on static values or at run time;
 * only a float to float cast passes a gradient. */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/rng.h"

/* --- shared helpers --------------------------------------------------------- */

static void *alloc_priv(struct pc_node *n, size_t size, struct pc_error *err)
{
	void *pr = calloc(1, size);

	if (!pr)
		pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	n->priv = pr;
	return pr;
}

static int err_code(const struct pc_error *err)
{
	return err && err->code ? (int)err->code : PC_ERR_INTERNAL;
}

/* Output 0 of an alias op: same dtype and element count as input 0. */
static int alias_output(struct pc_plan *p, const struct pc_node *n, const struct pc_shape *shape,
			struct pc_error *err)
{
	struct pc_tensor *in = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0);
	char a[96], b[96];
	int rc;

	if ((rc = pc_op_set_output(p, n, 0, in->dtype, shape, err)))
		return rc;
	if (out->numel != in->numel)
		return pc_node_error(err, n, PC_ERR_SHAPE, "cannot view input of shape %s as %s",
				     pc_shape_format(&in->shape, a, sizeof(a)), pc_shape_format(shape, b, sizeof(b)));
	if (in->is_static) {
		out->is_static = 1;
		out->data = in->data;
		out->ival = in->ival;
	}
	return PC_OK;
}



/* An odometer over an output shape that tracks the matching offset in a
 * source laid out with other strides (a permutation of axes). */
struct walk {
	int nd;
	int64_t dim[PC_MAX_DIMS], stride[PC_MAX_DIMS], idx[PC_MAX_DIMS];
	int64_t off;
};

static inline void walk_next(struct walk *w)
{
	for (int i = w->nd - 1; i >= 0; i--) {
		w->off += w->stride[i];
		if (++w->idx[i] < w->dim[i])
			return;
		w->off -= w->stride[i] * w->dim[i];
		w->idx[i] = 0;
	}
}

/* --- Flatten -------------------------------------------------------------------- */

struct axis_priv {
	int64_t axis;
};

/* The ops whose one attribute is an axis keep it in an axis_priv. */
static int init_axis(struct pc_node *n, int64_t def, struct pc_error *err)
{
	struct axis_priv *pr;
	int64_t axis;
	int rc;

	if ((rc = pc_attr_int(n, "axis", def, &axis, err)))
		return rc;
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->axis = axis;
	return PC_OK;
}

int pc_flatten_init(struct pc_node *n, struct pc_error *err)
{
	return init_axis(n, 1, err);
}

int pc_flatten_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct axis_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	int r = in->shape.ndim;
	int64_t axis = pr->axis;
	struct pc_shape s;

	/* axis == rank is valid here: everything goes to the first dim */
	if (axis < -r || axis > r)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'axis' is %lld; input has rank %d",
				     (long long)axis, r);
	if (axis < 0)
		axis += r;
	s.ndim = 2;
	s.dim[0] = pc_shape_span(&in->shape, 0, (int)axis);
	s.dim[1] = pc_shape_span(&in->shape, (int)axis, r);
	return alias_output(p, n, &s, err);
}

/* --- Reshape -------------------------------------------------------------------- */

struct reshape_priv {
	int allowzero;
};

int pc_reshape_init(struct pc_node *n, struct pc_error *err)
{
	struct reshape_priv *pr;
	int64_t allowzero;
	int rc;

	if ((rc = pc_attr_int(n, "allowzero", 0, &allowzero, err)))
		return rc;
	if (allowzero != 0 && allowzero != 1)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'allowzero' is %lld; it must be 0 or 1",
				     (long long)allowzero);
	if (allowzero && pc_op_opset(n) < 14)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'allowzero' exists from opset 14; the model is at %d",
				     pc_op_opset(n));
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->allowzero = (int)allowzero;
	return PC_OK;
}

int pc_reshape_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct reshape_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	const int64_t *want;
	struct pc_shape s;
	int count, infer_at = -1, has_zero = 0, rc;
	int64_t known = 1;
	char a[96];

	if ((rc = pc_op_static_list(p, n, 1, PC_MAX_DIMS, &want, &count, err)))
		return rc;
	s.ndim = count;
	for (int i = 0; i < count; i++) {
		int64_t d = want[i];
		if (d == -1) {
			if (infer_at >= 0)
				return pc_node_error(err, n, PC_ERR_FORMAT, "the target shape has more than one -1");
			infer_at = i;
			s.dim[i] = 1;
			continue;
		}
		if (d < -1)
			return pc_node_error(err, n, PC_ERR_FORMAT, "the target shape has dimension %lld", (long long)d);
		if (d == 0 && !pr->allowzero) {
			if (i >= in->shape.ndim)
				return pc_node_error(err, n, PC_ERR_SHAPE,
						     "target dimension %d is 0 (copy the input's) but the input %s has "
						     "rank %d",
						     i, pc_shape_format(&in->shape, a, sizeof(a)), in->shape.ndim);
			d = in->shape.dim[i];
		} else if (d == 0) {
			has_zero = 1;
		}
		s.dim[i] = d;
		if (d != 0 && known > PC_MAX_NUMEL / d)
			return pc_node_error(err, n, PC_ERR_SHAPE, "the target shape is too large");
		known *= d;
	}
	if (infer_at >= 0) {
		if (has_zero)
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "with allowzero=1 the target shape cannot hold both 0 and -1");
		if (known == 0 || in->numel % known != 0) {
			char b[96];
			for (int i = 0; i < count; i++)
				s.dim[i] = want[i];
			return pc_node_error(err, n, PC_ERR_SHAPE, "cannot reshape input %s to %s",
					     pc_shape_format(&in->shape, a, sizeof(a)), pc_shape_format(&s, b, sizeof(b)));
		}
		s.dim[infer_at] = in->numel / known;
	}
	return alias_output(p, n, &s, err);
}

/* --- Identity, Dropout -------------------------------------------------------------- */

int pc_identity_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0);

	/* Dropout at inference is the identity; its mask would be a bool tensor,
	 * a type paracorr does not carry. */
	if (n->op == PC_OP_DROPOUT && pc_op_out(p, n, 1))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "the mask output '%s' is not supported; only Dropout without a mask output runs",
				     p->g->values[n->out[1]].name);
	return alias_output(p, n, &in->shape, err);
}

/* Training: y = x * m / (1 - ratio), m ~ Bernoulli(1 - ratio) per element,
 * from a hash of (the plan's dropout seed, the node, the sample's place in
 * its dataset, the element), so the same sample gets the same mask on any
 * worker, and backward recomputes it instead of storing it. */
int pc_dropout_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0), *ratio = pc_op_in(p, n, 1);
	float r;
	int rc;

	if (pc_plan_aliases(p, n))
		return pc_identity_infer(p, n, err);
	if (pc_op_out(p, n, 1))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "the mask output is not supported");
	if (ratio && (!ratio->is_static || ratio->dtype != PC_DTYPE_FLOAT || ratio->numel != 1))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 'ratio' must be a constant float scalar");
	if ((rc = pc_attr_float(n, "ratio", 0.5f, &r, err)))
		return rc;
	if (ratio)
		r = ratio->data[0];
	if (!(r >= 0.0f && r < 1.0f))
		return pc_node_error(err, n, PC_ERR_FORMAT, "ratio %g is outside [0, 1)", (double)r);
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &in->shape, err);
}

static float dropout_ratio(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *ratio = pc_op_in(p, n, 1);
	float r = 0.5f;

	if (ratio)
		return ratio->data[0];
	pc_attr_float(n, "ratio", 0.5f, &r, NULL);
	return r;
}

/* Applies the mask and scale of each row to src into dst (+= when add). */
static void dropout_apply(struct pc_plan *p, const struct pc_node *n, const float *src, float *dst, int add)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	int64_t batch = x->shape.dim[0], row = x->numel / (batch > 0 ? batch : 1);
	float ratio = dropout_ratio(p, n), scale = 1.0f / (1.0f - ratio);
	uint64_t threshold = (uint64_t)((double)ratio * 18446744073709551616.0), node = (uint64_t)(n - p->g->nodes);

	for (int64_t i = 0; i < batch; i++) {
		uint64_t row_key = node * PC_RNG_GOLDEN + (uint64_t)(p->first_row + i);
		uint64_t base = pc_rng_mix64(p->dropout_seed ^ pc_rng_mix64(row_key));

		for (int64_t k = 0; k < row; k++) {
			int drop = pc_rng_mix64(base + (uint64_t)k * PC_RNG_GOLDEN) < threshold;
			float v = drop ? 0.0f : src[i * row + k] * scale;

			if (add)
				dst[i * row + k] += v;
			else
				dst[i * row + k] = v;
		}
	}
}

void pc_dropout_forward(struct pc_plan *p, const struct pc_node *n)
{
	dropout_apply(p, n, pc_op_in(p, n, 0)->data, pc_op_out(p, n, 0)->data, 0);
}

void pc_dropout_backward(struct pc_plan *p, const struct pc_node *n)
{
	const float *dy = pc_op_out(p, n, 0)->grad;
	float *dx = pc_op_in(p, n, 0)->grad;

	if (dy && dx)
		dropout_apply(p, n, dy, dx, 1);
}

/* --- Transpose ------------------------------------------------------------------ */

struct transpose_priv {
	int n; /* -1: reverse the axes */
	int64_t perm[PC_MAX_DIMS];
};

int pc_transpose_init(struct pc_node *n, struct pc_error *err)
{
	struct transpose_priv *pr;
	int64_t perm[PC_MAX_DIMS];
	int count, rc;

	if ((rc = pc_attr_ints(n, "perm", PC_MAX_DIMS, perm, &count, err)))
		return rc;
	for (int i = 0; i < count; i++) {
		if (perm[i] < 0 || perm[i] >= count)
			return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'perm' has %lld; not a permutation of 0..%d",
					     (long long)perm[i], count - 1);
		for (int j = 0; j < i; j++)
			if (perm[j] == perm[i])
				return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'perm' repeats axis %lld",
						     (long long)perm[i]);
	}
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->n = count;
	memcpy(pr->perm, perm, sizeof(perm));
	return PC_OK;
}

/* The walk of the output in order, with offsets into the input. */
static void transpose_walk(const struct pc_node *n, const struct pc_shape *in, struct walk *w)
{
	const struct transpose_priv *pr = pc_op_priv(n);
	int64_t istride[PC_MAX_DIMS];

	pc_shape_strides(in, istride);
	memset(w, 0, sizeof(*w));
	w->nd = in->ndim;
	for (int i = 0; i < in->ndim; i++) {
		int src = pr->n < 0 ? in->ndim - 1 - i : (int)pr->perm[i];
		w->dim[i] = in->dim[src];
		w->stride[i] = istride[src];
	}
}

int pc_transpose_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct transpose_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	struct walk w;
	struct pc_shape s;

	if (pr->n >= 0 && pr->n != in->shape.ndim)
		return pc_node_error(err, n, PC_ERR_SHAPE, "attribute 'perm' has %d axes; the input has rank %d", pr->n,
				     in->shape.ndim);
	transpose_walk(n, &in->shape, &w);
	s.ndim = w.nd;
	for (int i = 0; i < w.nd; i++)
		s.dim[i] = w.dim[i];
	/* a static input is folded by the plan through the forward */
	return pc_op_set_output(p, n, 0, in->dtype, &s, err);
}

/* The walk over every output row but the innermost axis, and that axis's
 * length and input stride: a row is then one memcpy (stride 1) or a
 * strided loop, instead of a walk step per element. */
static void transpose_rows(const struct pc_node *n, const struct pc_shape *in, struct walk *w, int64_t *len,
			   int64_t *stride)
{
	transpose_walk(n, in, w);
	*len = 1;
	*stride = 1;
	if (w->nd > 0) {
		w->nd--;
		*len = w->dim[w->nd];
		*stride = w->stride[w->nd];
	}
}

void pc_transpose_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0);
	int fl = in->dtype == PC_DTYPE_FLOAT; /* else int64 or bool: both one int64_t per element */
	struct walk w;
	int64_t len, st;

	transpose_rows(n, &in->shape, &w, &len, &st);
	if (len <= 0)
		return;
	for (int64_t k = 0; k < in->numel; k += len, walk_next(&w)) {
		if (fl && st == 1)
			memcpy(out->data + k, in->data + w.off, (size_t)len * sizeof(float));
		else if (fl)
			for (int64_t j = 0; j < len; j++)
				out->data[k + j] = in->data[w.off + j * st];
		else
			for (int64_t j = 0; j < len; j++)
				out->ival[k + j] = in->ival[w.off + j * st];
	}
}

void pc_transpose_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	const float *dy = pc_op_out(p, n, 0)->grad;
	struct walk w;
	int64_t len, st;

	if (!in->grad || !dy)
		return;
	transpose_rows(n, &in->shape, &w, &len, &st);
	if (len <= 0)
		return;
	for (int64_t k = 0; k < in->numel; k += len, walk_next(&w))
		for (int64_t j = 0; j < len; j++)
			in->grad[w.off + j * st] += dy[k + j];
}

/* --- Concat ----------------------------------------------------------------------- */

int pc_concat_init(struct pc_node *n, struct pc_error *err)
{
	if (!pc_attr_get(n, "axis"))
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'axis' is required");
	return init_axis(n, 0, err);
}

/* Elements of input i per outer index: its slab along the axis. */
static int64_t concat_slab(const struct pc_tensor *t, int axis)
{
	return pc_shape_span(&t->shape, axis, t->shape.ndim);
}

/* Copy every input's slabs into dst (elements of esize bytes). */
static void concat_copy(struct pc_plan *p, const struct pc_node *n, int axis, const struct pc_tensor *out,
			void *dst, size_t esize)
{
	int64_t outer = pc_shape_span(&out->shape, 0, axis), row = concat_slab(out, axis), at = 0;

	for (int i = 0; i < pc_op_n_in(n); i++) {
		const struct pc_tensor *t = pc_op_in(p, n, i);
		const char *src = t->dtype == PC_DTYPE_FLOAT ? (const char *)t->data : (const char *)t->ival;
		int64_t slab = concat_slab(t, axis);
		if (slab)
			for (int64_t o = 0; o < outer; o++)
				memcpy((char *)dst + (size_t)(o * row + at) * esize, src + (size_t)(o * slab) * esize,
				       (size_t)slab * esize);
		at += slab;
	}
}

int pc_concat_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct axis_priv *pr = pc_op_priv(n);
	const struct pc_tensor *first = pc_op_in(p, n, 0);
	int r = first->shape.ndim, axis = pc_axis(pr->axis, r);
	struct pc_shape s = first->shape;
	char a[96], b[96];

	if (axis < 0)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'axis' is %lld; the inputs have rank %d",
				     (long long)pr->axis, r);
	s.dim[axis] = 0;
	for (int i = 0; i < pc_op_n_in(n); i++) {
		const struct pc_tensor *t = pc_op_in(p, n, i);
		if (!t)
			return pc_node_error(err, n, PC_ERR_FORMAT, "input %d is missing", i);
		if (t->dtype != first->dtype)
			return pc_node_error(err, n, PC_ERR_FORMAT, "input %d is %s; input 0 is %s", i,
					     pc_dtype_name(t->dtype), pc_dtype_name(first->dtype));
		if (t->shape.ndim != r)
			return pc_node_error(err, n, PC_ERR_SHAPE, "input %d has rank %d; input 0 has rank %d", i,
					     t->shape.ndim, r);
		for (int d = 0; d < r; d++)
			if (d != axis && t->shape.dim[d] != first->shape.dim[d])
				return pc_node_error(err, n, PC_ERR_SHAPE,
						     "input %d has shape %s; input 0 has %s, and only axis %d may differ",
						     i, pc_shape_format(&t->shape, a, sizeof(a)),
						     pc_shape_format(&first->shape, b, sizeof(b)), axis);
		s.dim[axis] += t->shape.dim[axis];
	}
	/* all-static inputs (shape arithmetic) are folded by the plan */
	return pc_op_set_output(p, n, 0, first->dtype, &s, err);
}

void pc_concat_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct axis_priv *pr = pc_op_priv(n);
	const struct pc_tensor *out = pc_op_out(p, n, 0);
	int axis = pc_axis(pr->axis, out->shape.ndim);

	if (out->dtype == PC_DTYPE_FLOAT)
		concat_copy(p, n, axis, out, out->data, sizeof(float));
	else
		concat_copy(p, n, axis, out, out->ival, sizeof(int64_t));
}

void pc_concat_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct axis_priv *pr = pc_op_priv(n);
	const struct pc_tensor *out = pc_op_out(p, n, 0);
	int axis = pc_axis(pr->axis, out->shape.ndim);
	int64_t outer = pc_shape_span(&out->shape, 0, axis), row = concat_slab(out, axis), at = 0;

	if (!out->grad)
		return;
	for (int i = 0; i < pc_op_n_in(n); i++) {
		const struct pc_tensor *t = pc_op_in(p, n, i);
		int64_t slab = concat_slab(t, axis);
		if (t->grad)
			for (int64_t o = 0; o < outer; o++) {
				const float *dy = out->grad + o * row + at;
				float *dx = t->grad + o * slab;
				for (int64_t k = 0; k < slab; k++)
					dx[k] += dy[k];
			}
		at += slab;
	}
}

/* --- Pad ---------------------------------------------------------------------------- */

int pc_pad_init(struct pc_node *n, struct pc_error *err)
{
	const char *mode;
	int rc;

	if ((rc = pc_attr_string(n, "mode", "constant", &mode, err)))
		return rc;
	if (strcmp(mode, "constant") != 0)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'mode' is '%s'; only 'constant' padding is supported", mode);
	return PC_OK;
}

int pc_pad_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *in, *value;
	const int64_t *pads;
	struct pc_shape s;
	int count, r, rc;

	if ((rc = pc_op_need_float(p, n, 0, err)))
		return rc;
	in = pc_op_in(p, n, 0);
	r = in->shape.ndim;
	if (!pc_op_in(p, n, 1))
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 1 (pads) is missing");
	if ((rc = pc_op_static_list(p, n, 1, 2 * PC_MAX_DIMS, &pads, &count, err)))
		return rc;
	if (count != 2 * r)
		return pc_node_error(err, n, PC_ERR_SHAPE, "pads has %d values; the input of rank %d needs %d", count,
				     r, 2 * r);
	/* The fill value is read at run time: an initializer here is a weight. */
	value = pc_op_in(p, n, 2);
	if (value) {
		if ((rc = pc_op_need_float(p, n, 2, err)))
			return rc;
		if (value->numel != 1)
			return pc_node_error(err, n, PC_ERR_SHAPE, "constant_value has %lld values; it must be a scalar",
					     (long long)value->numel);
	}
	s.ndim = r;
	for (int i = 0; i < r; i++) {
		s.dim[i] = in->shape.dim[i] + pads[i] + pads[r + i];
		if (s.dim[i] < 0)
			return pc_node_error(err, n, PC_ERR_SHAPE, "pads crop axis %d of size %lld below zero", i,
					     (long long)in->shape.dim[i]);
	}
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &s, err);
}

/* Forward fills the output; backward adds into the input's gradient the
 * output gradient of the interior, and into the fill value's gradient (when
 * it is a weight) the output gradient of the padding. The walk goes row by
 * row along the last axis, where the interior is one contiguous run. */
static void pad_run(struct pc_plan *p, const struct pc_node *n, int backward)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0), *vt = pc_op_in(p, n, 2);
	const int64_t *pads = pc_op_in(p, n, 1)->ival;
	int r = in->shape.ndim, last = r - 1;
	int64_t istride[PC_MAX_DIMS], idx[PC_MAX_DIMS] = {0};
	int64_t olen, ilen, b, lo, hi, rows;
	float value = vt ? vt->data[0] : 0.0f, *dv = vt ? vt->grad : NULL;
	double gv = 0.0;

	if (r == 0) {
		if (!backward)
			out->data[0] = in->data[0];
		else if (in->grad)
			in->grad[0] += out->grad[0];
		return;
	}
	olen = out->shape.dim[last];
	ilen = in->shape.dim[last];
	b = pads[last];
	if (olen == 0 || out->numel == 0)
		return;
	rows = out->numel / olen;
	lo = b > 0 ? b : 0;
	hi = b + ilen < olen ? b + ilen : olen;
	pc_shape_strides(&in->shape, istride);
	for (int64_t row = 0; row < rows; row++) {
		int64_t ioff = 0, rlo = lo, rhi = hi;
		int inside = 1;
		for (int i = 0; i < last; i++) {
			int64_t k = idx[i] - pads[i];
			if (k < 0 || k >= in->shape.dim[i]) {
				inside = 0;
				break;
			}
			ioff += k * istride[i];
		}
		if (!inside || rhi < rlo)
			rlo = rhi = 0;
		/* output j of the row reads input ioff + j - b */
		if (!backward) {
			float *y = out->data + row * olen;
			for (int64_t j = 0; j < rlo; j++)
				y[j] = value;
			for (int64_t j = rlo; j < rhi; j++)
				y[j] = in->data[ioff + j - b];
			for (int64_t j = rhi; j < olen; j++)
				y[j] = value;
		} else {
			const float *dy = out->grad + row * olen;
			if (in->grad)
				for (int64_t j = rlo; j < rhi; j++)
					in->grad[ioff + j - b] += dy[j];
			if (dv) {
				for (int64_t j = 0; j < rlo; j++)
					gv += dy[j];
				for (int64_t j = rhi; j < olen; j++)
					gv += dy[j];
			}
		}
		for (int i = last - 1; i >= 0; i--) {
			if (++idx[i] < out->shape.dim[i])
				break;
			idx[i] = 0;
		}
	}
	if (dv)
		dv[0] += (float)gv;
}

void pc_pad_forward(struct pc_plan *p, const struct pc_node *n)
{
	pad_run(p, n, 0);
}

void pc_pad_backward(struct pc_plan *p, const struct pc_node *n)
{
	if (pc_op_out(p, n, 0)->grad)
		pad_run(p, n, 1);
}

/* --- Constant ------------------------------------------------------------------------ */

struct constant_priv {
	enum pc_dtype dtype;
	struct pc_shape shape;
	const void *data; /* into the node's attribute, or into one below */
	union {
		float f;
		int64_t i;
	} one;
};

int pc_constant_init(struct pc_node *n, struct pc_error *err)
{
	static const char *const kinds[] = {"value", "value_float", "value_floats", "value_int", "value_ints"};
	static const enum pc_attr_type types[] = {PC_ATTR_TENSOR, PC_ATTR_FLOAT, PC_ATTR_FLOATS, PC_ATTR_INT,
						  PC_ATTR_INTS};
	static const char *const type_names[] = {"a tensor", "a float", "a list of floats", "an int",
						 "a list of ints"};
	const struct pc_attr *a = NULL;
	struct constant_priv *pr;
	int which = -1;

	for (int k = 0; k < 5; k++) {
		const struct pc_attr *c = pc_attr_get(n, kinds[k]);
		if (!c)
			continue;
		if (a)
			return pc_node_error(err, n, PC_ERR_FORMAT, "has both attribute '%s' and '%s'; exactly one is allowed",
					     kinds[which], kinds[k]);
		if (c->type != types[k])
			return pc_node_error(err, n, PC_ERR_FORMAT, "attribute '%s' must be %s", kinds[k], type_names[k]);
		a = c;
		which = k;
	}
	if (!a)
		return pc_node_error(err, n, PC_ERR_FORMAT,
				     "has no value attribute (value, value_float, value_floats, value_int, value_ints)");
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	switch (which) {
	case 0:
		pr->dtype = a->tdtype;
		pr->shape = a->tshape;
		pr->data = a->tdata;
		break;
	case 1:
		pr->dtype = PC_DTYPE_FLOAT;
		pr->one.f = a->f;
		pr->data = &pr->one.f;
		break;
	case 3:
		pr->dtype = PC_DTYPE_INT64;
		pr->one.i = a->i;
		pr->data = &pr->one.i;
		break;
	default: /* the lists: 1-D */
		pr->dtype = which == 2 ? PC_DTYPE_FLOAT : PC_DTYPE_INT64;
		pr->shape.ndim = 1;
		pr->shape.dim[0] = a->n;
		pr->data = which == 2 ? (const void *)a->floats : (const void *)a->ints;
		break;
	}
	if (pr->dtype != PC_DTYPE_FLOAT && pr->dtype != PC_DTYPE_INT64 && pr->dtype != PC_DTYPE_BOOL)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'value' is a %s tensor; only float, int64 and bool",
				     pc_dtype_name(pr->dtype));
	return PC_OK;
}

int pc_constant_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct constant_priv *pr = pc_op_priv(n);
	size_t esize = pc_dtype_size(pr->dtype);
	void *dst = pc_op_static(p, n, 0, pr->dtype, &pr->shape, err);

	if (!dst)
		return err_code(err);
	if (pc_op_out(p, n, 0)->numel)
		memcpy(dst, pr->data, (size_t)pc_op_out(p, n, 0)->numel * esize);
	return PC_OK;
}

/* --- Shape ------------------------------------------------------------------------------ */

struct shape_priv {
	int64_t start, end;
	int has_end;
};

int pc_shapeop_init(struct pc_node *n, struct pc_error *err)
{
	struct shape_priv *pr;
	int64_t start, end;
	int rc;

	if (pc_op_opset(n) < 15 && (pc_attr_get(n, "start") || pc_attr_get(n, "end")))
		return pc_node_error(err, n, PC_ERR_FORMAT,
				     "attributes 'start' and 'end' exist from opset 15; the model is at %d",
				     pc_op_opset(n));
	if ((rc = pc_attr_int(n, "start", 0, &start, err)) || (rc = pc_attr_int(n, "end", 0, &end, err)))
		return rc;
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->start = start;
	pr->end = end;
	pr->has_end = pc_attr_get(n, "end") != NULL;
	return PC_OK;
}

/* start/end as Python slices of the dims, clamped to [0, rank]. */
static int64_t clamp_dim_index(int64_t v, int r)
{
	if (v < 0)
		v += r;
	return v < 0 ? 0 : v > r ? r : v;
}

int pc_shapeop_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct shape_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	int r = in->shape.ndim;
	int64_t start = clamp_dim_index(pr->start, r), end = pr->has_end ? clamp_dim_index(pr->end, r) : r;
	struct pc_shape s;
	int64_t *o;

	s.ndim = 1;
	s.dim[0] = end > start ? end - start : 0;
	if (!(o = pc_op_static_int64(p, n, 0, &s, err)))
		return err_code(err);
	for (int64_t i = 0; i < s.dim[0]; i++)
		o[i] = in->shape.dim[start + i];
	return PC_OK;
}

/* --- Unsqueeze, Squeeze ---------------------------------------------------------------------- */

struct axes_priv {
	int n; /* -1: no axes attribute */
	int64_t axes[PC_MAX_DIMS];
};

/* Before opset 13 axes are an attribute; from 13 they are input 1. */
static int axes_init(struct pc_node *n, int required, struct pc_error *err)
{
	struct axes_priv *pr;
	int64_t axes[PC_MAX_DIMS];
	int count, rc;

	if (pc_op_opset(n) >= 13) {
		if (pc_attr_get(n, "axes"))
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "attribute 'axes' was replaced by input 1 at opset 13; the model is at %d",
					     pc_op_opset(n));
		count = -1;
	} else {
		if (n->n_in > 1 && n->in[1] >= 0)
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "axes as input 1 exist from opset 13; the model is at %d (use the attribute)",
					     pc_op_opset(n));
		if ((rc = pc_attr_ints(n, "axes", PC_MAX_DIMS, axes, &count, err)))
			return rc;
		if (count < 0 && required)
			return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'axes' is required");
	}
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->n = count;
	if (count > 0)
		memcpy(pr->axes, axes, (size_t)count * sizeof(axes[0]));
	return PC_OK;
}

/* The node's axes as listed: from the attribute before opset 13, from
 * input 1 after; *count is -1 when there are none. */
static int axes_list(struct pc_plan *p, const struct pc_node *n, const int64_t **axes, int *count,
		     struct pc_error *err)
{
	const struct axes_priv *pr = pc_op_priv(n);

	if (pc_op_opset(n) < 13) {
		*axes = pr->axes;
		*count = pr->n;
		return PC_OK;
	}
	*axes = NULL;
	*count = -1;
	if (!pc_op_in(p, n, 1))
		return PC_OK;
	return pc_op_static_list(p, n, 1, PC_MAX_DIMS, axes, count, err);
}

/* Axes normalised to [0, rank) into mark[] (1 = listed). */
static int axes_mark(const struct pc_node *n, const int64_t *axes, int count, int rank, unsigned char *mark,
		     struct pc_error *err)
{
	memset(mark, 0, PC_MAX_DIMS);
	for (int i = 0; i < count; i++) {
		int a = pc_axis(axes[i], rank);
		if (a < 0)
			return pc_node_error(err, n, PC_ERR_FORMAT, "axis %lld is out of range for rank %d",
					     (long long)axes[i], rank);
		if (mark[a])
			return pc_node_error(err, n, PC_ERR_FORMAT, "axis %lld is listed twice", (long long)axes[i]);
		mark[a] = 1;
	}
	return PC_OK;
}

int pc_unsqueeze_init(struct pc_node *n, struct pc_error *err)
{
	return axes_init(n, 1, err);
}

int pc_unsqueeze_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	const int64_t *axes;
	unsigned char mark[PC_MAX_DIMS];
	struct pc_shape s;
	int count, rank, j = 0, rc;

	if ((rc = axes_list(p, n, &axes, &count, err)))
		return rc;
	if (count < 0)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 1 (axes) is required from opset 13");
	/* the axes index the output, whose rank grows by one per axis */
	rank = in->shape.ndim + count;
	if (rank > PC_MAX_DIMS)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "the output would have rank %d; at most %d", rank,
				     PC_MAX_DIMS);
	if ((rc = axes_mark(n, axes, count, rank, mark, err)))
		return rc;
	s.ndim = rank;
	for (int i = 0; i < rank; i++)
		s.dim[i] = mark[i] ? 1 : in->shape.dim[j++];
	return alias_output(p, n, &s, err);
}

int pc_squeeze_init(struct pc_node *n, struct pc_error *err)
{
	return axes_init(n, 0, err);
}

int pc_squeeze_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	const int64_t *axes;
	unsigned char mark[PC_MAX_DIMS];
	struct pc_shape s;
	int count, rc;
	char a[96];

	if ((rc = axes_list(p, n, &axes, &count, err)) ||
	    (rc = axes_mark(n, axes, count, in->shape.ndim, mark, err)))
		return rc;
	s.ndim = 0;
	for (int i = 0; i < in->shape.ndim; i++) {
		int64_t d = in->shape.dim[i];
		if (count < 0 ? d == 1 : mark[i]) {
			if (d != 1)
				return pc_node_error(err, n, PC_ERR_SHAPE, "axis %d of input %s is %lld, not 1", i,
						     pc_shape_format(&in->shape, a, sizeof(a)), (long long)d);
			continue;
		}
		s.dim[s.ndim++] = d;
	}
	return alias_output(p, n, &s, err);
}

/* --- Cast ------------------------------------------------------------------------------------- */

/* The plan stores float, int64 and bool elements only, so each destination
 * type is kept as one of them, and only where its values can be held
 * exactly:
 *   FLOAT, DOUBLE, FLOAT16 -> float. DOUBLE from float or bool is exact
 *     (every float is a double); from int64 only known values up to 2^24
 *     in magnitude are (float holds them exactly), others are refused.
 *     FLOAT16 rounds each value to the nearest half (ties to even; past
 *     65504 to infinity) and keeps it as float. Arithmetic after the cast
 *     is float32 either way, more precise than a double or half graph
 *     would be only in the last bits.
 *   INT64, INT32 -> int64. INT32 keeps what an int32 would hold: an int64
 *     keeps its low 32 bits (wraps, as numpy and torch do); a float is
 *     truncated toward zero.
 *   BOOL -> bool: 0 is false, anything else (NaN too) true.
 * A float that does not fit the integer type is an error at load when it
 * is known then; at run time it becomes the type's minimum, as x86's
 * conversion (and so torch and onnxruntime there) gives for it and for NaN.
 * Every other destination is refused at load, naming `to`. A gradient
 * flows only from a float output to a float input (unrounded through
 * FLOAT16, as a straight-through estimate). */
struct cast_priv {
	int to;		    /* the ONNX type code */
	enum pc_dtype store; /* how the plan keeps it */
};

int pc_cast_init(struct pc_node *n, struct pc_error *err)
{
	struct cast_priv *pr;
	enum pc_dtype store;
	int64_t to;
	int rc;

	if (!pc_attr_get(n, "to"))
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'to' is required");
	if ((rc = pc_attr_int(n, "to", 0, &to, err)))
		return rc;
	switch (to) {
	case 1:	 /* float */
	case 10: /* float16 */
	case 11: /* double */
		store = PC_DTYPE_FLOAT;
		break;
	case 6: /* int32 */
	case 7: /* int64 */
		store = PC_DTYPE_INT64;
		break;
	case 9:
		store = PC_DTYPE_BOOL;
		break;
	default:
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'to' is %lld (%s); Cast supports float, double, float16, int64, int32 "
				     "and bool",
				     (long long)to, to >= 0 && to <= 64 ? pc_dtype_name((int)to) : "unknown");
	}
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->to = (int)to;
	pr->store = store;
	return PC_OK;
}

/* Float to int64 / int32 as the type holds it; out of range (and NaN)
 * gives the minimum (see above). */
static int64_t float_to_int64(float v)
{
	return v >= -9223372036854775808.0f && v < 9223372036854775808.0f ? (int64_t)v : INT64_MIN;
}

static int64_t float_to_int32(float v)
{
	return (double)v > -2147483649.0 && (double)v < 2147483648.0 ? (int64_t)(int32_t)v : INT32_MIN;
}

static int64_t wrap_int32(int64_t v)
{
	int64_t low = (int64_t)((uint64_t)v & 0xffffffffu);

	return low >= ((int64_t)1 << 31) ? low - ((int64_t)1 << 32) : low;
}

/* f rounded to the nearest float16 value, kept as float: 11 significant
 * bits, steps of 2^-24 below the smallest normal half (2^-14). */
static float round_half(float f)
{
	int e, q;
	float r;

	if (!isfinite(f) || f == 0.0f)
		return f;
	frexpf(f, &e); /* |f| in [2^(e-1), 2^e) */
	q = e - 1 - 10;
	if (q < -24)
		q = -24;
	/* exact scalings by powers of two around one rounding to an integer,
	 * in the default mode: to nearest, ties to even */
	r = ldexpf(rintf(ldexpf(f, -q)), q);
	return fabsf(r) > 65504.0f ? copysignf(INFINITY, f) : r;
}

int pc_cast_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct cast_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);

	if (!in)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 0 is missing");
	if (in->dtype != PC_DTYPE_FLOAT && in->dtype != PC_DTYPE_INT64 && in->dtype != PC_DTYPE_BOOL)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 0 is %s; Cast takes float, int64 or bool",
				     pc_dtype_name(in->dtype));
	if (pr->to == 11 && in->dtype == PC_DTYPE_INT64) {
		if (!in->is_static || !in->ival)
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					     "attribute 'to' is 11 (double): a run-time int64 tensor cast to double "
					     "cannot be kept exactly as float");
		for (int64_t k = 0; k < in->numel; k++)
			if (in->ival[k] > ((int64_t)1 << 24) || in->ival[k] < -((int64_t)1 << 24))
				return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
						     "attribute 'to' is 11 (double): value %lld is kept as float, which "
						     "is exact only up to 2^24",
						     (long long)in->ival[k]);
	}
	/* known floats that no integer of the type holds: a broken shape */
	if (in->dtype == PC_DTYPE_FLOAT && pr->store == PC_DTYPE_INT64 && in->is_static && in->data)
		for (int64_t k = 0; k < in->numel; k++) {
			float v = in->data[k];
			int fits = pr->to == 6 ? (double)v > -2147483649.0 && (double)v < 2147483648.0
					       : v >= -9223372036854775808.0f && v < 9223372036854775808.0f;
			if (!fits)
				return pc_node_error(err, n, PC_ERR_FORMAT, "value %g does not fit in %s", (double)v,
						     pc_dtype_name(pr->to));
		}
	return pc_op_set_output(p, n, 0, pr->store, &in->shape, err);
}

void pc_cast_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct cast_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	struct pc_tensor *out = pc_op_out(p, n, 0);
	int64_t count = in->numel;

	if (count == 0)
		return;
	if (pr->store == PC_DTYPE_FLOAT) {
		float *y = out->data;
		if (in->dtype == PC_DTYPE_FLOAT)
			memcpy(y, in->data, (size_t)count * sizeof(float));
		else
			for (int64_t k = 0; k < count; k++)
				y[k] = (float)in->ival[k];
		if (pr->to == 10)
			for (int64_t k = 0; k < count; k++)
				y[k] = round_half(y[k]);
	} else if (pr->store == PC_DTYPE_INT64) {
		int64_t *y = out->ival;
		if (in->dtype == PC_DTYPE_FLOAT && pr->to == 6)
			for (int64_t k = 0; k < count; k++)
				y[k] = float_to_int32(in->data[k]);
		else if (in->dtype == PC_DTYPE_FLOAT)
			for (int64_t k = 0; k < count; k++)
				y[k] = float_to_int64(in->data[k]);
		else if (pr->to == 6)
			for (int64_t k = 0; k < count; k++)
				y[k] = wrap_int32(in->ival[k]);
		else
			memcpy(y, in->ival, (size_t)count * sizeof(int64_t));
	} else {
		int64_t *y = out->ival;
		if (in->dtype == PC_DTYPE_FLOAT)
			for (int64_t k = 0; k < count; k++)
				y[k] = in->data[k] != 0.0f;
		else
			for (int64_t k = 0; k < count; k++)
				y[k] = in->ival[k] != 0;
	}
}

void pc_cast_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0);
	const float *dy = out->grad;

	if (!in->grad || !dy || in->dtype != PC_DTYPE_FLOAT || out->dtype != PC_DTYPE_FLOAT)
		return;
	for (int64_t k = 0; k < in->numel; k++)
		in->grad[k] += dy[k];
}
