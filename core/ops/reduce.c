/* ops/reduce: ReduceSum, ReduceMean, ReduceMax and ReduceMin.
 *
 * Axes come from the `axes` attribute, or from input 1 where the opset
 * moved them there (ReduceSum from 13, the others from 18); input 1 must
 * then be a static int64 list. No axes, or an empty list, reduces every
 * axis, except that an empty axes input with noop_with_empty_axes = 1 makes
 * the op the identity. keepdims (default 1) keeps reduced axes as 1.
 *
 * The input is seen as its axes merged into runs that are all kept or all
 * reduced (axes of extent 1 dropped): [N, T, D] reduced over T is the three
 * runs [N kept, T reduced, D kept], over D the two runs [N*T kept, D
 * reduced]. The last run is walked by a tight loop over contiguous memory,
 * the runs before it by an odometer that tracks the output offset, so every
 * case, however the axes fall, reads the input once and in order.
 *
 * Sums (and means) accumulate in double, one accumulator per output element
 * in the workspace, and are rounded once. Max and min propagate NaN, as
 * torch.amax/amin do. Their gradient follows torch.amax/amin too: the
 * output gradient is shared evenly between the elements equal to the result
 * (a tie of k elements gives each 1/k), so that the gradient matches a
 * model exported from amax/amin; a NaN result passes no gradient.
 *
 * int64 inputs (shape arithmetic, token ids) are summed, maxed and minned
 * in int64 with no gradient; their sum wraps as two's complement, never UB.
 * ReduceMean of int64 is refused: ONNX leaves its rounding unspecified. */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum red_kind { RED_SUM, RED_MEAN, RED_MAX, RED_MIN };

struct red_attrs {
	enum red_kind kind;
	int keepdims;
	int noop_empty;	 /* noop_with_empty_axes */
	int axes_input;	 /* this opset takes axes as input 1 */
	int n_axes;	 /* attribute form: -1 when absent */
	int64_t axes[PC_MAX_DIMS];
};

/* The input as runs of merged axes; see the top of the file. */
struct red_geom {
	int identity;		      /* noop_with_empty_axes on an empty list */
	int nd;			      /* runs; 0 when the input is a scalar */
	int64_t ext[PC_MAX_DIMS];     /* each run's extent */
	unsigned char red[PC_MAX_DIMS]; /* the run is reduced */
	int64_t ostep[PC_MAX_DIMS];   /* output step per index of a kept run */
	int64_t r;		      /* input elements per output element */
	int64_t in_numel, out_numel;
	struct pc_shape out;
};

static int flag_attr(struct pc_node *n, const char *name, int64_t def, int *out, struct pc_error *err)
{
	int64_t v;
	int rc;

	if ((rc = pc_attr_int(n, name, def, &v, err)))
		return rc;
	if (v != 0 && v != 1)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "attribute '%s' is %lld; it must be 0 or 1", name,
				     (long long)v);
	*out = (int)v;
	return PC_OK;
}

int pc_reduce_init(struct pc_node *n, struct pc_error *err)
{
	struct red_attrs a = {0}, *pr;
	int opset = pc_op_opset(n), rc;

	switch (n->op) {
	case PC_OP_REDUCESUM:
		a.kind = RED_SUM;
		break;
	case PC_OP_REDUCEMEAN:
		a.kind = RED_MEAN;
		break;
	case PC_OP_REDUCEMAX:
		a.kind = RED_MAX;
		break;
	case PC_OP_REDUCEMIN:
		a.kind = RED_MIN;
		break;
	default:
		return pc_node_error(err, n, PC_ERR_INTERNAL, "not a reduction");
	}
	a.axes_input = opset >= (a.kind == RED_SUM ? 13 : 18);
	if ((rc = flag_attr(n, "keepdims", 1, &a.keepdims, err)))
		return rc;
	a.n_axes = -1;
	if (a.axes_input) {
		if (pc_attr_get(n, "axes"))
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "attribute 'axes' was replaced by input 1 at opset %d; the model is at %d",
					     a.kind == RED_SUM ? 13 : 18, opset);
		if ((rc = flag_attr(n, "noop_with_empty_axes", 0, &a.noop_empty, err)))
			return rc;
	} else {
		if (n->n_in > 1 && n->in[1] >= 0)
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "axes as input 1 exist from opset %d; the model is at %d (use the attribute)",
					     a.kind == RED_SUM ? 13 : 18, opset);
		if (pc_attr_get(n, "noop_with_empty_axes"))
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "attribute 'noop_with_empty_axes' exists from opset %d; the model is at %d",
					     a.kind == RED_SUM ? 13 : 18, opset);
		if ((rc = pc_attr_ints(n, "axes", PC_MAX_DIMS, a.axes, &a.n_axes, err)))
			return rc;
	}
	pr = malloc(sizeof(*pr));
	if (!pr)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	*pr = a;
	free(n->priv);
	n->priv = pr;
	return PC_OK;
}

/* The reduced axes of input shape s into mark[]; *identity when the op
 * reduces nothing. err may be NULL (forward and backward re-derive what
 * infer has checked). */
static int red_axes(struct pc_plan *p, const struct pc_node *n, const struct pc_shape *s, unsigned char *mark,
		    int *identity, struct pc_error *err)
{
	const struct red_attrs *at = pc_op_priv(n);
	const int64_t *axes = at->axes;
	int count = at->n_axes, rc;

	*identity = 0;
	memset(mark, 0, PC_MAX_DIMS);
	if (at->axes_input) {
		const struct pc_tensor *t = pc_op_in(p, n, 1);
		count = -1;
		if (t) {
			if ((rc = pc_op_need_static_int64(p, n, 1, err)))
				return rc;
			if (t->shape.ndim > 1)
				return pc_node_error(err, n, PC_ERR_FORMAT,
						     "input 1 (axes) has rank %d; it must be a 1-D list", t->shape.ndim);
			if (t->numel > s->ndim)
				return pc_node_error(err, n, PC_ERR_FORMAT,
						     "input 1 (axes) has %lld values; the input has rank %d",
						     (long long)t->numel, s->ndim);
			axes = t->ival;
			count = (int)t->numel;
		}
		if (count <= 0 && at->noop_empty) {
			*identity = 1;
			return PC_OK;
		}
	} else if (count > s->ndim) {
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'axes' has %d values; the input has rank %d",
				     count, s->ndim);
	}
	if (count <= 0) {
		/* absent or empty: every axis */
		memset(mark, 1, (size_t)s->ndim);
		return PC_OK;
	}
	for (int i = 0; i < count; i++) {
		int ax = pc_axis(axes[i], s->ndim);
		if (ax < 0)
			return pc_node_error(err, n, PC_ERR_FORMAT, "axis %lld is out of range for rank %d",
					     (long long)axes[i], s->ndim);
		if (mark[ax])
			return pc_node_error(err, n, PC_ERR_FORMAT, "axis %lld is listed twice", (long long)axes[i]);
		mark[ax] = 1;
	}
	return PC_OK;
}

static int red_geometry(struct pc_plan *p, const struct pc_node *n, struct red_geom *g, struct pc_error *err)
{
	const struct red_attrs *at = pc_op_priv(n);
	const struct pc_shape *s = &pc_op_in(p, n, 0)->shape;
	unsigned char mark[PC_MAX_DIMS];
	int64_t step = 1;
	int rc;

	memset(g, 0, sizeof(*g));
	if ((rc = red_axes(p, n, s, mark, &g->identity, err)))
		return rc;
	g->in_numel = pc_shape_count(s);
	g->r = 1;
	g->out.ndim = 0;
	for (int i = 0; i < s->ndim; i++) {
		int64_t d = s->dim[i];
		int red = mark[i] && !g->identity;
		if (red)
			g->r *= d;
		if (!red || at->keepdims)
			g->out.dim[g->out.ndim++] = red ? 1 : d;
		if (d == 1)
			continue; /* moves nothing: no run */
		if (g->nd > 0 && g->red[g->nd - 1] == red) {
			g->ext[g->nd - 1] *= d;
		} else {
			g->ext[g->nd] = d;
			g->red[g->nd] = (unsigned char)red;
			g->nd++;
		}
	}
	g->out_numel = pc_shape_count(&g->out);
	for (int i = g->nd - 1; i >= 0; i--) {
		g->ostep[i] = g->red[i] ? 0 : step;
		if (!g->red[i])
			step *= g->ext[i];
	}
	return PC_OK;
}

int pc_reduce_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct red_attrs *at = pc_op_priv(n);
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	struct red_geom g;
	int rc;

	if (!x)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 0 is missing");
	if (x->dtype != PC_DTYPE_FLOAT && x->dtype != PC_DTYPE_INT64)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 0 is %s; this op takes float or int64",
				     pc_dtype_name(x->dtype));
	if (x->dtype == PC_DTYPE_INT64 && at->kind == RED_MEAN)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "ReduceMean of an int64 tensor is not supported (its rounding is unspecified)");
	if ((rc = red_geometry(p, n, &g, err)))
		return rc;
	/* one double per output: the sums, or the tie counts of max/min */
	if (x->dtype == PC_DTYPE_FLOAT && !g.identity)
		pc_op_reserve_ws(p, (size_t)g.out_numel * 2);
	return pc_op_set_output(p, n, 0, x->dtype, &g.out, err);
}

/* The walk: calls visit once per block of the last run, with the block's
 * input and output offsets. Blocks come in input order. */
struct red_walk {
	const struct red_geom *g;
	int64_t inner;	   /* extent of the last run */
	int inner_red;	   /* the last run is reduced */
	int64_t blocks;	   /* product of the other runs */
	int64_t idx[PC_MAX_DIMS];
	int64_t ooff;
};

static void walk_start(struct red_walk *w, const struct red_geom *g)
{
	memset(w, 0, sizeof(*w));
	w->g = g;
	w->inner = g->nd ? g->ext[g->nd - 1] : 1;
	w->inner_red = g->nd ? g->red[g->nd - 1] : 0;
	w->blocks = g->nd ? g->in_numel / w->inner : 1;
}

/* Moves to the next block: the odometer over runs 0 .. nd-2. */
static void walk_next(struct red_walk *w)
{
	const struct red_geom *g = w->g;

	for (int i = g->nd - 2; i >= 0; i--) {
		w->ooff += g->ostep[i];
		if (++w->idx[i] < g->ext[i])
			return;
		w->ooff -= g->ostep[i] * g->ext[i];
		w->idx[i] = 0;
	}
}

/* NaN-propagating max and min: once NaN, stays NaN. */
static inline float fmax_nan(float m, float v)
{
	return (v > m || v != v) ? v : m;
}

static inline float fmin_nan(float m, float v)
{
	return (v < m || v != v) ? v : m;
}

static void forward_float(const struct red_geom *g, enum red_kind kind, const float *x, float *y, double *acc)
{
	struct red_walk w;

	walk_start(&w, g);
	if (kind == RED_SUM || kind == RED_MEAN) {
		double scale = kind == RED_MEAN ? 1.0 / (double)g->r : 1.0;
		for (int64_t o = 0; o < g->out_numel; o++)
			acc[o] = 0.0;
		for (int64_t b = 0; b < w.blocks; b++, x += w.inner) {
			double *a = acc + w.ooff;
			if (w.inner_red) {
				double s = 0.0;
				for (int64_t j = 0; j < w.inner; j++)
					s += x[j];
				a[0] += s;
			} else {
				for (int64_t j = 0; j < w.inner; j++)
					a[j] += x[j];
			}
			walk_next(&w);
		}
		for (int64_t o = 0; o < g->out_numel; o++)
			y[o] = (float)(acc[o] * scale);
		return;
	}
	for (int64_t o = 0; o < g->out_numel; o++)
		y[o] = kind == RED_MAX ? -INFINITY : INFINITY;
	for (int64_t b = 0; b < w.blocks; b++, x += w.inner) {
		float *yo = y + w.ooff;
		if (w.inner_red) {
			float m = yo[0];
			if (kind == RED_MAX)
				for (int64_t j = 0; j < w.inner; j++)
					m = fmax_nan(m, x[j]);
			else
				for (int64_t j = 0; j < w.inner; j++)
					m = fmin_nan(m, x[j]);
			yo[0] = m;
		} else if (kind == RED_MAX) {
			for (int64_t j = 0; j < w.inner; j++)
				yo[j] = fmax_nan(yo[j], x[j]);
		} else {
			for (int64_t j = 0; j < w.inner; j++)
				yo[j] = fmin_nan(yo[j], x[j]);
		}
		walk_next(&w);
	}
}

static void forward_int64(const struct red_geom *g, enum red_kind kind, const int64_t *x, int64_t *y)
{
	struct red_walk w;

	walk_start(&w, g);
	/* the identity of max is the least value, of min the greatest */
	for (int64_t o = 0; o < g->out_numel; o++)
		y[o] = kind == RED_SUM ? 0 : kind == RED_MAX ? INT64_MIN : INT64_MAX;
	for (int64_t b = 0; b < w.blocks; b++, x += w.inner) {
		for (int64_t j = 0; j < w.inner; j++) {
			int64_t *yo = y + w.ooff + (w.inner_red ? 0 : j);
			if (kind == RED_SUM)
				*yo = (int64_t)((uint64_t)*yo + (uint64_t)x[j]);
			else if (kind == RED_MAX)
				*yo = x[j] > *yo ? x[j] : *yo;
			else
				*yo = x[j] < *yo ? x[j] : *yo;
		}
		walk_next(&w);
	}
}

void pc_reduce_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct red_attrs *at = pc_op_priv(n);
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct red_geom g;

	if (red_geometry(p, n, &g, NULL))
		return;
	if (g.identity) {
		if (x->dtype == PC_DTYPE_FLOAT)
			memcpy(y->data, x->data, (size_t)x->numel * sizeof(float));
		else
			memcpy(y->ival, x->ival, (size_t)x->numel * sizeof(int64_t));
		return;
	}
	/* an empty input gives each output the reduction's identity: 0 for a
	 * sum, NaN (0/0) for a mean, -inf / +inf for max / min */
	if (x->dtype == PC_DTYPE_FLOAT) {
		if (g.in_numel == 0) {
			for (int64_t o = 0; o < g.out_numel; o++)
				y->data[o] = at->kind == RED_SUM ? 0.0f
					     : at->kind == RED_MEAN ? NAN
					     : at->kind == RED_MAX ? -INFINITY
								   : INFINITY;
			return;
		}
		forward_float(&g, at->kind, x->data, y->data, (double *)pc_op_ws(p));
	} else {
		if (g.in_numel == 0) {
			for (int64_t o = 0; o < g.out_numel; o++)
				y->ival[o] = at->kind == RED_SUM ? 0 : at->kind == RED_MAX ? INT64_MIN : INT64_MAX;
			return;
		}
		forward_int64(&g, at->kind, x->ival, y->ival);
	}
}

/* dX += dY / r at every input element (r = 1 for a sum). */
static void backward_sum(const struct red_geom *g, double scale, const float *dy, float *dx)
{
	struct red_walk w;
	float s = (float)scale;

	walk_start(&w, g);
	for (int64_t b = 0; b < w.blocks; b++, dx += w.inner) {
		const float *go = dy + w.ooff;
		if (w.inner_red) {
			float v = go[0] * s;
			for (int64_t j = 0; j < w.inner; j++)
				dx[j] += v;
		} else {
			for (int64_t j = 0; j < w.inner; j++)
				dx[j] += go[j] * s;
		}
		walk_next(&w);
	}
}

/* Max/min: count the elements equal to each result, turn the counts into
 * dY / count, then hand that to every such element. */
static void backward_extreme(const struct red_geom *g, const float *x, const float *y, const float *dy, float *dx,
			     double *share)
{
	struct red_walk w;
	const float *xb = x;

	for (int64_t o = 0; o < g->out_numel; o++)
		share[o] = 0.0;
	walk_start(&w, g);
	for (int64_t b = 0; b < w.blocks; b++, xb += w.inner) {
		const float *yo = y + w.ooff;
		double *so = share + w.ooff;
		if (w.inner_red) {
			for (int64_t j = 0; j < w.inner; j++)
				so[0] += xb[j] == yo[0];
		} else {
			for (int64_t j = 0; j < w.inner; j++)
				so[j] += xb[j] == yo[j];
		}
		walk_next(&w);
	}
	for (int64_t o = 0; o < g->out_numel; o++)
		share[o] = share[o] > 0.0 ? dy[o] / share[o] : 0.0;
	walk_start(&w, g);
	for (int64_t b = 0; b < w.blocks; b++, x += w.inner, dx += w.inner) {
		const float *yo = y + w.ooff;
		const double *so = share + w.ooff;
		if (w.inner_red) {
			float v = (float)so[0];
			for (int64_t j = 0; j < w.inner; j++)
				dx[j] += x[j] == yo[0] ? v : 0.0f;
		} else {
			for (int64_t j = 0; j < w.inner; j++)
				dx[j] += x[j] == yo[j] ? (float)so[j] : 0.0f;
		}
		walk_next(&w);
	}
}

void pc_reduce_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct red_attrs *at = pc_op_priv(n);
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	struct red_geom g;

	if (!x->grad || !y->grad || x->dtype != PC_DTYPE_FLOAT || red_geometry(p, n, &g, NULL) || g.in_numel == 0)
		return;
	if (g.identity) {
		for (int64_t i = 0; i < x->numel; i++)
			x->grad[i] += y->grad[i];
		return;
	}
	if (at->kind == RED_SUM || at->kind == RED_MEAN)
		backward_sum(&g, at->kind == RED_MEAN ? 1.0 / (double)g.r : 1.0, y->grad, x->grad);
	else
		backward_extreme(&g, x->data, y->data, y->grad, x->grad, (double *)pc_op_ws(p));
}
