/* ops/index: ops that pick, cut, repeat or overwrite elements without
 * arithmetic: Gather, Slice, Split, Expand, Tile and ScatterND.
 *
 * Every op here moves float, int64 and bool tensors alike (float elements
 * live in t->data, int64 and bool ones in t->ival) and has a backward for
 * float data. What decides an output's shape (Slice's starts, ends, axes
 * and steps, Split's sizes, Expand's shape, Tile's repeats) must be static,
 * so that every shape is known at prepare. A node whose inputs are all
 * static is folded by the plan, which runs its forward once at prepare (a
 * Gather or Slice of a Shape feeding a Reshape). Indices (Gather,
 * ScatterND) may be run-time values: static ones are range-checked at
 * prepare, but forward cannot fail, so a run-time index out of range
 * yields zeros (Gather) or is skipped (ScatterND) and never reads or writes
 * outside a buffer. The data path checks token ids before a run against
 * pc_plan_input_id_limit.
 *
 * Slice, Split, Expand and Tile are one strided walk (struct walk): the
 * output in order, each element read at a linear offset of the input whose
 * per-axis strides may be negative (a reversed slice), zero (a broadcast
 * axis) or split in two (Tile's repeat and period). */
#include "../graph_int.h"

#include <stdlib.h>
#include <string.h>

/* --- shared helpers --------------------------------------------------------------------- */

/* The element types these ops move: float in t->data, int64 and bool
 * (0/1) alike as one int64_t per element in t->ival. */
static int movable(enum pc_dtype d)
{
	return d == PC_DTYPE_FLOAT || d == PC_DTYPE_INT64 || d == PC_DTYPE_BOOL;
}

static int need_movable(struct pc_plan *p, const struct pc_node *n, int i, struct pc_error *err)
{
	const struct pc_tensor *t = pc_op_in(p, n, i);

	if (!t)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d is missing", i);
	if (!movable(t->dtype))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d is %s; this op takes float, int64 or bool",
				     i, pc_dtype_name(t->dtype));
	return PC_OK;
}

/* An index into an axis of size len, negative counting from the end (as
 * Gather and ScatterND take them); -1 when outside [-len, len). */
static int64_t wrap_index(int64_t v, int64_t len)
{
	if (v < 0)
		v += len; /* v < 0 and len >= 0: cannot overflow */
	return v >= 0 && v < len ? v : -1;
}

/* --- the strided walk --------------------------------------------------------------------- */

#define WALK_MAX (2 * PC_MAX_DIMS)

/* Output element number k, counted row-major over dim[], reads the source
 * at base + sum(idx[i] * stride[i]). The product of dim[] is the output's
 * element count. */
struct walk {
	int nd;
	int64_t base;
	int64_t dim[WALK_MAX], stride[WALK_MAX];
};

/* Forward copies src into dst along the walk; backward adds dst's gradient
 * into src's at the same places (a source element read several times, as
 * Expand and Tile do, receives the sum). */
static void walk_run(const struct walk *w, const struct pc_tensor *src, const struct pc_tensor *dst, int backward)
{
	int nd = w->nd;
	int64_t inner = nd ? w->dim[nd - 1] : 1, s = nd ? w->stride[nd - 1] : 0;
	int64_t idx[WALK_MAX] = {0}, off = w->base, rows;

	if (dst->numel == 0 || inner == 0)
		return;
	rows = dst->numel / inner;
	for (int64_t r = 0; r < rows; r++) {
		if (backward) {
			const float *dy = dst->grad + r * inner;
			float *dx = src->grad + off;
			if (s == 0) {
				double acc = 0.0;
				for (int64_t j = 0; j < inner; j++)
					acc += dy[j];
				dx[0] += (float)acc;
			} else {
				for (int64_t j = 0; j < inner; j++)
					dx[j * s] += dy[j];
			}
		} else if (src->dtype == PC_DTYPE_FLOAT) {
			const float *x = src->data + off;
			float *y = dst->data + r * inner;
			if (s == 1)
				memcpy(y, x, (size_t)inner * sizeof(float));
			else
				for (int64_t j = 0; j < inner; j++)
					y[j] = x[j * s];
		} else {
			const int64_t *x = src->ival + off;
			int64_t *y = dst->ival + r * inner;
			if (s == 1)
				memcpy(y, x, (size_t)inner * sizeof(int64_t));
			else
				for (int64_t j = 0; j < inner; j++)
					y[j] = x[j * s];
		}
		for (int i = nd - 2; i >= 0; i--) {
			off += w->stride[i];
			if (++idx[i] < w->dim[i])
				break;
			off -= w->stride[i] * w->dim[i];
			idx[i] = 0;
		}
	}
}

/* A walk reading a source of shape `in` along the output's own shape with
 * the source's strides, starting at base. */
static void walk_plain(struct walk *w, const struct pc_shape *out, const struct pc_shape *in, int64_t base)
{
	int64_t istride[PC_MAX_DIMS];

	pc_shape_strides(in, istride);
	memset(w, 0, sizeof(*w));
	w->nd = out->ndim;
	w->base = base;
	for (int i = 0; i < out->ndim; i++) {
		w->dim[i] = out->dim[i];
		w->stride[i] = istride[i];
	}
}

static void walk_forward(const struct walk *w, struct pc_plan *p, const struct pc_node *n, int out)
{
	walk_run(w, pc_op_in(p, n, 0), pc_op_out(p, n, out), 0);
}

static void walk_backward(const struct walk *w, struct pc_plan *p, const struct pc_node *n, int out)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0), *o = pc_op_out(p, n, out);

	if (in->grad && o && o->grad)
		walk_run(w, in, o, 1);
}

/* --- Gather ------------------------------------------------------------------------------------ */

struct gather_priv {
	int64_t axis;
};

int pc_gather_init(struct pc_node *n, struct pc_error *err)
{
	struct gather_priv *pr;
	int64_t axis;
	int rc;

	if ((rc = pc_attr_int(n, "axis", 0, &axis, err)))
		return rc;
	if (!(pr = calloc(1, sizeof(*pr))))
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	pr->axis = axis;
	n->priv = pr;
	return PC_OK;
}

int pc_gather_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct gather_priv *pr = pc_op_priv(n);
	const struct pc_tensor *data = pc_op_in(p, n, 0), *ind = pc_op_in(p, n, 1);
	int r = data->shape.ndim, axis, rc;
	int64_t len;
	struct pc_shape s;

	if ((rc = need_movable(p, n, 0, err)))
		return rc;
	if (ind->dtype != PC_DTYPE_INT64)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 1 (indices) is %s; Gather takes int64 indices",
				     pc_dtype_name(ind->dtype));
	axis = pc_axis(pr->axis, r);
	if (axis < 0)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'axis' is %lld; the data has rank %d",
				     (long long)pr->axis, r);
	if (r - 1 + ind->shape.ndim > PC_MAX_DIMS)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "the output would have rank %d; at most %d",
				     r - 1 + ind->shape.ndim, PC_MAX_DIMS);
	len = data->shape.dim[axis];
	/* run-time indices are checked by the data path (pc_plan_input_id_limit)
	 * and made harmless by forward */
	if (ind->is_static)
		for (int64_t k = 0; k < ind->numel; k++)
			if (wrap_index(ind->ival[k], len) < 0)
				return pc_node_error(err, n, PC_ERR_SHAPE,
						     "index %lld is out of range for axis %d of size %lld",
						     (long long)ind->ival[k], axis, (long long)len);
	s.ndim = 0;
	for (int i = 0; i < axis; i++)
		s.dim[s.ndim++] = data->shape.dim[i];
	for (int i = 0; i < ind->shape.ndim; i++)
		s.dim[s.ndim++] = ind->shape.dim[i];
	for (int i = axis + 1; i < r; i++)
		s.dim[s.ndim++] = data->shape.dim[i];
	return pc_op_set_output(p, n, 0, data->dtype, &s, err);
}

/* The data as [outer, len, inner] and the output as [outer, count, inner]:
 * output row (a, k) is data row (a, indices[k]). */
struct gather_dims {
	int64_t outer, len, inner, count;
};

static struct gather_dims gather_dims(struct pc_plan *p, const struct pc_node *n)
{
	const struct gather_priv *pr = pc_op_priv(n);
	const struct pc_tensor *data = pc_op_in(p, n, 0);
	int r = data->shape.ndim, axis = pc_axis(pr->axis, r);
	struct gather_dims d;

	d.outer = pc_shape_span(&data->shape, 0, axis);
	d.len = data->shape.dim[axis];
	d.inner = pc_shape_span(&data->shape, axis + 1, r);
	d.count = pc_op_in(p, n, 1)->numel;
	return d;
}

void pc_gather_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0);
	const int64_t *ind = pc_op_in(p, n, 1)->ival;
	struct gather_dims d = gather_dims(p, n);
	size_t esize = data->dtype == PC_DTYPE_FLOAT ? sizeof(float) : sizeof(int64_t);
	const char *src = data->dtype == PC_DTYPE_FLOAT ? (const char *)data->data : (const char *)data->ival;
	char *dst = data->dtype == PC_DTYPE_FLOAT ? (char *)out->data : (char *)out->ival;
	size_t row = (size_t)d.inner * esize;

	if (!row)
		return;
	for (int64_t a = 0; a < d.outer; a++)
		for (int64_t k = 0; k < d.count; k++) {
			int64_t j = wrap_index(ind[k], d.len);
			char *y = dst + (size_t)(a * d.count + k) * row;
			/* a bad run-time index: zeros, never a read outside the data */
			if (j < 0)
				memset(y, 0, row);
			else
				memcpy(y, src + (size_t)(a * d.len + j) * row, row);
		}
}

/* Scatter-add: an embedding row looked up by several tokens receives the
 * sum of their gradients. */
void pc_gather_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0);
	const int64_t *ind = pc_op_in(p, n, 1)->ival;
	struct gather_dims d = gather_dims(p, n);

	if (!data->grad || !out->grad)
		return;
	for (int64_t a = 0; a < d.outer; a++)
		for (int64_t k = 0; k < d.count; k++) {
			int64_t j = wrap_index(ind[k], d.len);
			const float *dy = out->grad + (a * d.count + k) * d.inner;
			float *dx;
			if (j < 0)
				continue;
			dx = data->grad + (a * d.len + j) * d.inner;
			for (int64_t c = 0; c < d.inner; c++)
				dx[c] += dy[c];
		}
}

/* The graph input's bound as token ids: the smallest axis size among the
 * Gathers that take it (or a reshaped view of it) as indices. */
int64_t pc_plan_input_id_limit(const struct pc_plan *p, int *node)
{
	const struct pc_graph *g = p->g;
	int64_t limit = -1;

	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];
		const struct gather_priv *pr = n->priv;
		const struct pc_tensor *data;
		int v, axis;
		if (n->op != PC_OP_GATHER || n->n_in < 2 || n->in[1] < 0 || n->in[0] < 0)
			continue;
		/* through views (Reshape, Unsqueeze, Identity...) back to their root */
		for (v = n->in[1]; g->values[v].kind == PC_VALUE_ACT;) {
			const struct pc_node *m = &g->nodes[g->values[v].producer];
			if (!pc_plan_aliases(p, m) || m->out[0] != v)
				break;
			v = m->in[0];
		}
		if (v != g->input)
			continue;
		data = &p->t[n->in[0]];
		axis = pc_axis(pr->axis, data->shape.ndim);
		if (axis >= 0 && (limit < 0 || data->shape.dim[axis] < limit)) {
			limit = data->shape.dim[axis];
			if (node)
				*node = k;
		}
	}
	return limit;
}

/* --- Slice -------------------------------------------------------------------------------------- */

/* Per axis of the data: the first index read, the step and the count. */
struct slice_plan {
	int64_t start[PC_MAX_DIMS], step[PC_MAX_DIMS], len[PC_MAX_DIMS];
};

/* ONNX Slice (opset 10 on): starts, ends, optional axes and steps, each a
 * static 1-D list of the same length. Negative starts and ends count from
 * the end; then starts clamp to [0, d] (positive step) or [0, d-1]
 * (negative), ends to [0, d] or [-1, d-1], so INT64_MAX and INT64_MIN
 * mean "to the end". */
static int slice_resolve(struct pc_plan *p, const struct pc_node *n, struct slice_plan *sp, struct pc_error *err)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0);
	const int64_t *starts, *ends, *axes = NULL, *steps = NULL;
	int r = data->shape.ndim, count, c, rc;
	unsigned char seen[PC_MAX_DIMS] = {0};

	if ((rc = pc_op_static_list(p, n, 1, PC_MAX_DIMS, &starts, &count, err)) ||
	    (rc = pc_op_static_list(p, n, 2, PC_MAX_DIMS, &ends, &c, err)))
		return rc;
	if (c != count)
		return pc_node_error(err, n, PC_ERR_FORMAT, "starts has %d values and ends %d; they must match", count,
				     c);
	if (pc_op_in(p, n, 3)) {
		if ((rc = pc_op_static_list(p, n, 3, PC_MAX_DIMS, &axes, &c, err)))
			return rc;
		if (c != count)
			return pc_node_error(err, n, PC_ERR_FORMAT, "axes has %d values; starts has %d", c, count);
	} else if (count > r) {
		return pc_node_error(err, n, PC_ERR_FORMAT, "starts has %d values; the data has rank %d", count, r);
	}
	if (pc_op_in(p, n, 4)) {
		if ((rc = pc_op_static_list(p, n, 4, PC_MAX_DIMS, &steps, &c, err)))
			return rc;
		if (c != count)
			return pc_node_error(err, n, PC_ERR_FORMAT, "steps has %d values; starts has %d", c, count);
	}
	for (int i = 0; i < r; i++) {
		sp->start[i] = 0;
		sp->step[i] = 1;
		sp->len[i] = data->shape.dim[i];
	}
	for (int i = 0; i < count; i++) {
		int a = axes ? pc_axis(axes[i], r) : i;
		int64_t d, st = steps ? steps[i] : 1, b = starts[i], e = ends[i];
		if (a < 0)
			return pc_node_error(err, n, PC_ERR_FORMAT, "axis %lld is out of range for rank %d",
					     (long long)axes[i], r);
		if (seen[a]++)
			return pc_node_error(err, n, PC_ERR_FORMAT, "axis %d is sliced twice", a);
		if (st == 0)
			return pc_node_error(err, n, PC_ERR_FORMAT, "step %d is 0", i);
		d = data->shape.dim[a];
		if (d == 0) {
			sp->len[a] = 0;
			sp->step[a] = st > 0 ? 1 : -1;
			continue;
		}
		/* a step past the axis reads at most one element: capping it to d
		 * changes nothing and keeps the arithmetic below in range */
		if (st > d)
			st = d;
		if (st < -d)
			st = -d;
		if (b < 0)
			b += d;
		if (e < 0)
			e += d;
		if (st > 0) {
			b = b < 0 ? 0 : b > d ? d : b;
			e = e < 0 ? 0 : e > d ? d : e;
			sp->len[a] = e > b ? (e - b + st - 1) / st : 0;
		} else {
			b = b < 0 ? 0 : b > d - 1 ? d - 1 : b;
			e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
			sp->len[a] = b > e ? (b - e - st - 1) / -st : 0;
		}
		sp->start[a] = b;
		sp->step[a] = st;
	}
	return PC_OK;
}

static void slice_walk(struct pc_plan *p, const struct pc_node *n, const struct slice_plan *sp, struct walk *w)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0);
	int64_t istride[PC_MAX_DIMS];

	pc_shape_strides(&data->shape, istride);
	memset(w, 0, sizeof(*w));
	w->nd = data->shape.ndim;
	for (int i = 0; i < w->nd; i++) {
		w->dim[i] = sp->len[i];
		w->stride[i] = istride[i] * sp->step[i];
		w->base += sp->start[i] * istride[i];
	}
}

int pc_slice_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0);
	struct slice_plan sp;
	struct pc_shape s;
	int rc;

	if ((rc = need_movable(p, n, 0, err)) || (rc = slice_resolve(p, n, &sp, err)))
		return rc;
	s.ndim = data->shape.ndim;
	for (int i = 0; i < s.ndim; i++)
		s.dim[i] = sp.len[i];
	return pc_op_set_output(p, n, 0, data->dtype, &s, err);
}

void pc_slice_forward(struct pc_plan *p, const struct pc_node *n)
{
	struct slice_plan sp;
	struct walk w;

	slice_resolve(p, n, &sp, NULL); /* checked by infer */
	slice_walk(p, n, &sp, &w);
	walk_forward(&w, p, n, 0);
}

void pc_slice_backward(struct pc_plan *p, const struct pc_node *n)
{
	struct slice_plan sp;
	struct walk w;

	slice_resolve(p, n, &sp, NULL);
	slice_walk(p, n, &sp, &w);
	walk_backward(&w, p, n, 0);
}

/* --- Split -------------------------------------------------------------------------------------- */

#define SPLIT_MAX 1024 /* outputs, as the table's arity */

struct split_priv {
	int64_t axis;
	int n;		 /* values of the 'split' attribute (before opset 13); -1: none */
	int64_t split[]; /* n values */
};

/* Before opset 13 the sizes are the 'split' attribute; from 13 input 1. */
int pc_split_init(struct pc_node *n, struct pc_error *err)
{
	const struct pc_attr *a = pc_attr_get(n, "split");
	struct split_priv *pr;
	int64_t axis;
	int rc, count = a && a->type == PC_ATTR_INTS && a->n > 0 ? a->n : 0;

	if ((rc = pc_attr_int(n, "axis", 0, &axis, err)))
		return rc;
	if (pc_op_opset(n) >= 13 && a)
		return pc_node_error(err, n, PC_ERR_FORMAT,
				     "attribute 'split' was replaced by input 1 at opset 13; the model is at %d",
				     pc_op_opset(n));
	if (pc_op_opset(n) < 13 && n->n_in > 1 && n->in[1] >= 0)
		return pc_node_error(
		    err, n, PC_ERR_FORMAT,
		    "split sizes as input 1 exist from opset 13; the model is at %d (use the attribute)",
		    pc_op_opset(n));
	if (count > SPLIT_MAX)
		count = SPLIT_MAX + 1; /* pc_attr_ints refuses it below */
	if (!(pr = calloc(1, sizeof(*pr) + (size_t)count * sizeof(int64_t) + 1)))
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	n->priv = pr;
	pr->axis = axis;
	return pc_attr_ints(n, "split", SPLIT_MAX, pr->split, &pr->n, err);
}

/* The sizes listed for node n in this plan, or NULL (then equal parts). */
static const int64_t *split_list(struct pc_plan *p, const struct pc_node *n, int *count)
{
	const struct split_priv *pr = pc_op_priv(n);
	const struct pc_tensor *t = pc_op_in(p, n, 1);

	if (pc_op_opset(n) < 13) {
		*count = pr->n;
		return pr->n >= 0 ? pr->split : NULL;
	}
	*count = t ? (int)t->numel : -1;
	return t ? t->ival : NULL;
}

int pc_split_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct split_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	int axis = pc_axis(pr->axis, in->shape.ndim), outs = pc_op_n_out(n), count, rc;
	const int64_t *sizes;
	int64_t d, sum = 0;
	struct pc_shape s;

	if ((rc = need_movable(p, n, 0, err)))
		return rc;
	if (axis < 0)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'axis' is %lld; the input has rank %d",
				     (long long)pr->axis, in->shape.ndim);
	if (pc_op_opset(n) >= 13 && pc_op_in(p, n, 1) &&
	    (rc = pc_op_static_list(p, n, 1, SPLIT_MAX, &sizes, &count, err)))
		return rc;
	d = in->shape.dim[axis];
	sizes = split_list(p, n, &count);
	if (sizes) {
		if (count != outs)
			return pc_node_error(err, n, PC_ERR_FORMAT, "split has %d sizes for %d outputs", count, outs);
		for (int j = 0; j < count; j++) {
			if (sizes[j] < 0 || sizes[j] > d - sum)
				return pc_node_error(
				    err, n, PC_ERR_SHAPE,
				    "split sizes do not add up to axis %d of size %lld (size %d is %lld)", axis,
				    (long long)d, j, (long long)sizes[j]);
			sum += sizes[j];
		}
		if (sum != d)
			return pc_node_error(err, n, PC_ERR_SHAPE, "split sizes add up to %lld; axis %d has size %lld",
					     (long long)sum, axis, (long long)d);
	} else if (d % outs) {
		return pc_node_error(err, n, PC_ERR_SHAPE, "axis %d of size %lld does not split into %d equal parts",
				     axis, (long long)d, outs);
	}
	s = in->shape;
	for (int j = 0; j < outs; j++) {
		s.dim[axis] = sizes ? sizes[j] : d / outs;
		if ((rc = pc_op_set_output(p, n, j, in->dtype, &s, err)))
			return rc;
	}
	return PC_OK;
}

/* Output j (present or not) reads the input from `at` along the axis. */
static void split_run(struct pc_plan *p, const struct pc_node *n, int backward)
{
	const struct split_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	int axis = pc_axis(pr->axis, in->shape.ndim), outs = pc_op_n_out(n), count;
	const int64_t *sizes = split_list(p, n, &count);
	int64_t istride[PC_MAX_DIMS], at = 0, d = in->shape.dim[axis];

	pc_shape_strides(&in->shape, istride);
	for (int j = 0; j < outs; j++) {
		const struct pc_tensor *out = pc_op_out(p, n, j);
		struct walk w;
		if (out) {
			walk_plain(&w, &out->shape, &in->shape, at * istride[axis]);
			if (backward)
				walk_backward(&w, p, n, j);
			else
				walk_forward(&w, p, n, j);
		}
		at += sizes ? sizes[j] : d / outs;
	}
}

void pc_split_forward(struct pc_plan *p, const struct pc_node *n)
{
	split_run(p, n, 0);
}

void pc_split_backward(struct pc_plan *p, const struct pc_node *n)
{
	split_run(p, n, 1);
}

/* --- Expand ------------------------------------------------------------------------------------- */

/* Bidirectional (numpy) broadcast of the input with the static shape. */
int pc_expand_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	const int64_t *want;
	struct pc_shape target, s;
	int count, rc;
	char a[96], b[96];

	if ((rc = need_movable(p, n, 0, err)) || (rc = pc_op_static_list(p, n, 1, PC_MAX_DIMS, &want, &count, err)))
		return rc;
	target.ndim = count;
	for (int i = 0; i < count; i++) {
		if (want[i] < 0)
			return pc_node_error(err, n, PC_ERR_FORMAT, "the shape has dimension %lld", (long long)want[i]);
		target.dim[i] = want[i];
	}
	if (pc_broadcast_shape(&in->shape, &target, &s))
		return pc_node_error(err, n, PC_ERR_SHAPE, "input %s does not broadcast to %s",
				     pc_shape_format(&in->shape, a, sizeof(a)), pc_shape_format(&target, b, sizeof(b)));
	return pc_op_set_output(p, n, 0, in->dtype, &s, err);
}

static void expand_walk(struct pc_plan *p, const struct pc_node *n, struct walk *w)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0);
	int64_t istride[PC_MAX_DIMS];
	int lead = out->shape.ndim - in->shape.ndim;

	pc_shape_strides(&in->shape, istride);
	memset(w, 0, sizeof(*w));
	w->nd = out->shape.ndim;
	for (int i = 0; i < w->nd; i++) {
		int k = i - lead;
		w->dim[i] = out->shape.dim[i];
		/* an axis the input lacks or has as 1 re-reads the same elements */
		w->stride[i] = k >= 0 && in->shape.dim[k] != 1 ? istride[k] : 0;
	}
}

void pc_expand_forward(struct pc_plan *p, const struct pc_node *n)
{
	struct walk w;

	expand_walk(p, n, &w);
	walk_forward(&w, p, n, 0);
}

void pc_expand_backward(struct pc_plan *p, const struct pc_node *n)
{
	struct walk w;

	expand_walk(p, n, &w);
	walk_backward(&w, p, n, 0);
}

/* --- Tile --------------------------------------------------------------------------------------- */

int pc_tile_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	const int64_t *rep;
	struct pc_shape s;
	int count, rc;

	if ((rc = need_movable(p, n, 0, err)) || (rc = pc_op_static_list(p, n, 1, PC_MAX_DIMS, &rep, &count, err)))
		return rc;
	if (count != in->shape.ndim)
		return pc_node_error(err, n, PC_ERR_SHAPE, "repeats has %d values; the input has rank %d", count,
				     in->shape.ndim);
	s = in->shape;
	for (int i = 0; i < count; i++) {
		if (rep[i] < 0)
			return pc_node_error(err, n, PC_ERR_FORMAT, "repeats[%d] is %lld", i, (long long)rep[i]);
		if (rep[i] && s.dim[i] > PC_MAX_NUMEL / rep[i])
			return pc_node_error(err, n, PC_ERR_SHAPE,
					     "axis %d of size %lld repeated %lld times is too large", i,
					     (long long)s.dim[i], (long long)rep[i]);
		s.dim[i] *= rep[i];
	}
	return pc_op_set_output(p, n, 0, in->dtype, &s, err);
}

/* Output axis i of size r*d is walked as two axes [r, d]: the repeat,
 * which re-reads (stride 0), and the period, which reads the input. */
static void tile_walk(struct pc_plan *p, const struct pc_node *n, struct walk *w)
{
	const struct pc_tensor *in = pc_op_in(p, n, 0), *out = pc_op_out(p, n, 0);
	int64_t istride[PC_MAX_DIMS];

	pc_shape_strides(&in->shape, istride);
	memset(w, 0, sizeof(*w));
	w->nd = 2 * in->shape.ndim;
	for (int i = 0; i < in->shape.ndim; i++) {
		int64_t d = in->shape.dim[i];
		w->dim[2 * i] = d ? out->shape.dim[i] / d : 0;
		w->dim[2 * i + 1] = d;
		w->stride[2 * i + 1] = istride[i];
	}
}

void pc_tile_forward(struct pc_plan *p, const struct pc_node *n)
{
	struct walk w;

	tile_walk(p, n, &w);
	walk_forward(&w, p, n, 0);
}

void pc_tile_backward(struct pc_plan *p, const struct pc_node *n)
{
	struct walk w;

	tile_walk(p, n, &w);
	walk_backward(&w, p, n, 0);
}

/* --- ScatterND ---------------------------------------------------------------------------------- */

int pc_scatternd_init(struct pc_node *n, struct pc_error *err)
{
	const char *red;
	int rc;

	if (pc_attr_get(n, "reduction") && pc_op_opset(n) < 16)
		return pc_node_error(err, n, PC_ERR_FORMAT,
				     "attribute 'reduction' exists from opset 16; the model is at %d", pc_op_opset(n));
	if ((rc = pc_attr_string(n, "reduction", "none", &red, err)))
		return rc;
	if (strcmp(red, "none") != 0)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'reduction' is '%s'; only 'none' is supported", red);
	return PC_OK;
}

/* indices [..., k] address the data's first k axes: `count` tuples, each
 * replacing a slab of `slab` elements. */
struct scatter_dims {
	int k;
	int64_t count, slab, positions;
};

static struct scatter_dims scatter_dims(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0), *ind = pc_op_in(p, n, 1);
	struct scatter_dims d;

	d.k = (int)ind->shape.dim[ind->shape.ndim - 1];
	d.count = pc_shape_span(&ind->shape, 0, ind->shape.ndim - 1);
	d.slab = pc_shape_span(&data->shape, d.k, data->shape.ndim);
	d.positions = pc_shape_span(&data->shape, 0, d.k);
	return d;
}

/* The slab that tuple i addresses, or -1 when an index is out of range. */
static int64_t scatter_position(const struct pc_tensor *data, const int64_t *tuple, int k)
{
	int64_t pos = 0;

	for (int j = 0; j < k; j++) {
		int64_t v = wrap_index(tuple[j], data->shape.dim[j]);
		if (v < 0)
			return -1;
		pos = pos * data->shape.dim[j] + v;
	}
	return pos;
}

int pc_scatternd_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0), *ind = pc_op_in(p, n, 1), *upd = pc_op_in(p, n, 2);
	int r = data->shape.ndim, q = ind->shape.ndim, rc;
	int64_t k;
	struct pc_shape want;
	char a[96], b[96];

	if ((rc = need_movable(p, n, 0, err)))
		return rc;
	if (ind->dtype != PC_DTYPE_INT64)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input 1 (indices) is %s; ScatterND takes int64 indices",
				     pc_dtype_name(ind->dtype));
	if (upd->dtype != data->dtype)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 2 (updates) is %s; the data is %s",
				     pc_dtype_name(upd->dtype), pc_dtype_name(data->dtype));
	if (r < 1 || q < 1)
		return pc_node_error(err, n, PC_ERR_SHAPE,
				     "data has rank %d and indices rank %d; both must be at least 1", r, q);
	k = ind->shape.dim[q - 1];
	if (k > r)
		return pc_node_error(err, n, PC_ERR_SHAPE, "indices address %lld axes; the data has rank %d",
				     (long long)k, r);
	/* updates: indices.shape[:-1] + data.shape[k:]; rank q-1+r-k <= r+q-1 */
	want.ndim = q - 1 + r - (int)k;
	if (want.ndim > PC_MAX_DIMS)
		return pc_node_error(err, n, PC_ERR_SHAPE, "updates would have rank %d; at most %d", want.ndim,
				     PC_MAX_DIMS);
	for (int i = 0; i < q - 1; i++)
		want.dim[i] = ind->shape.dim[i];
	for (int i = (int)k; i < r; i++)
		want.dim[q - 1 + i - (int)k] = data->shape.dim[i];
	if (!pc_shape_equal(&upd->shape, &want))
		return pc_node_error(err, n, PC_ERR_SHAPE, "updates have shape %s; indices and data need %s",
				     pc_shape_format(&upd->shape, a, sizeof(a)), pc_shape_format(&want, b, sizeof(b)));
	if (ind->is_static)
		for (int64_t i = 0; i * k < ind->numel && k > 0; i++)
			if (scatter_position(data, ind->ival + i * k, (int)k) < 0) {
				struct pc_shape t = {.ndim = (int)k};
				memcpy(t.dim, ind->ival + i * k, (size_t)k * sizeof(int64_t));
				return pc_node_error(err, n, PC_ERR_SHAPE, "index %s is out of range for data %s",
						     pc_shape_format(&t, a, sizeof(a)),
						     pc_shape_format(&data->shape, b, sizeof(b)));
			}
	/* backward marks the slabs written, one bit each, in the workspace */
	if (p->flags & (PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD))
		pc_op_reserve_ws(p, (size_t)(pc_shape_span(&data->shape, 0, (int)k) + 31) / 32);
	return pc_op_set_output(p, n, 0, data->dtype, &data->shape, err);
}

/* The output is the data with slabs replaced in the order of the indices:
 * with repeated indices the last one wins (ONNX leaves that undefined). */
void pc_scatternd_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0), *upd = pc_op_in(p, n, 2), *out = pc_op_out(p, n, 0);
	const int64_t *ind = pc_op_in(p, n, 1)->ival;
	struct scatter_dims d = scatter_dims(p, n);
	int isf = data->dtype == PC_DTYPE_FLOAT;
	size_t esize = isf ? sizeof(float) : sizeof(int64_t), slab = (size_t)d.slab * esize;
	char *y = isf ? (char *)out->data : (char *)out->ival;
	const char *u = isf ? (const char *)upd->data : (const char *)upd->ival;

	if (data->numel)
		memcpy(y, isf ? (const void *)data->data : (const void *)data->ival, (size_t)data->numel * esize);
	if (!slab)
		return;
	for (int64_t i = 0; i < d.count; i++) {
		int64_t pos = scatter_position(data, ind + i * d.k, d.k);
		if (pos >= 0) /* a bad run-time index writes nothing */
			memcpy(y + (size_t)pos * slab, u + (size_t)i * slab, slab);
	}
}

/* Each written slab's gradient goes to the update that won it (the last
 * one to write it); the data receives the gradient of the slabs no update
 * wrote. */
void pc_scatternd_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *data = pc_op_in(p, n, 0), *upd = pc_op_in(p, n, 2), *out = pc_op_out(p, n, 0);
	const int64_t *ind = pc_op_in(p, n, 1)->ival;
	struct scatter_dims d = scatter_dims(p, n);
	uint32_t *won = (uint32_t *)(void *)pc_op_ws(p);
	const float *dy = out->grad;

	if (!dy || (!data->grad && !upd->grad))
		return;
	memset(won, 0, (size_t)(d.positions + 31) / 32 * sizeof(uint32_t));
	for (int64_t i = d.count - 1; i >= 0; i--) {
		int64_t pos = scatter_position(data, ind + i * d.k, d.k);
		if (pos < 0 || (won[pos / 32] >> (pos % 32) & 1u))
			continue;
		won[pos / 32] |= 1u << (pos % 32);
		if (upd->grad)
			for (int64_t c = 0; c < d.slab; c++)
				upd->grad[i * d.slab + c] += dy[pos * d.slab + c];
	}
	if (data->grad)
		for (int64_t pos = 0; pos < d.positions; pos++) {
			if (won[pos / 32] >> (pos % 32) & 1u)
				continue;
			for (int64_t c = 0; c < d.slab; c++)
				data->grad[pos * d.slab + c] += dy[pos * d.slab + c];
		}
}
