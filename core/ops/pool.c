/* ops/pool: 2-D MaxPool, AveragePool and GlobalAveragePool on NCHW tensors.
 *
 * Design. Attributes are parsed at load into one struct shared by MaxPool
 * and AveragePool; the per-axis geometry (leading pad after auto_pad,
 * output length, padded extent) is recomputed from it and the input shape
 * by infer, forward and backward, so the graph is never written after load.
 * Output lengths follow the ONNX formulas, including ceil_mode and the rule
 * that the last window must start inside the input or the leading pad.
 * Windows that hold no input element at all (possible with large pads or
 * dilations) are rejected at infer: their max or average is meaningless.
 *
 * MaxPool's backward recomputes each window's arg-max (the first maximum in
 * row-major window order, or the first NaN, which forward propagates) rather
 * than keeping indices: the workspace is shared between nodes. No workspace
 * is used at all. Where windows are spans it finds the tap holding the
 * output forward wrote (a backward plan keeps every activation), which
 * needs no branch on the data. */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct pool_attrs {
	enum pc_auto_pad auto_pad;
	int64_t kernel[2];
	int64_t stride[2];
	int64_t dilation[2];
	int64_t pads[4]; /* top, left, bottom, right */
	int ceil_mode;
	int count_include_pad;
};

/* One spatial axis of a pooling. */
struct pool_axis {
	int64_t in, out;
	int64_t k, s, d;
	int64_t lead; /* leading pad */
	int64_t end;  /* in + trailing pad: where the padded input ends */
};

/* A 0/1 INT attribute. */
static int flag_attr(const struct pc_node *n, const char *name, int *out, struct pc_error *err)
{
	int64_t v;
	int rc = pc_attr_int(n, name, 0, &v, err);

	if (rc)
		return rc;
	if (v != 0 && v != 1)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "attribute '%s' is %lld; must be 0 or 1", name,
				     (long long)v);
	*out = (int)v;
	return PC_OK;
}

static int pool_init(struct pc_node *n, int is_max, struct pc_error *err)
{
	struct pool_attrs *a = calloc(1, sizeof(*a));
	const char *auto_pad;
	int present, rc;

	if (!a)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	a->stride[0] = a->stride[1] = 1;
	a->dilation[0] = a->dilation[1] = 1;
	if ((rc = pc_attr_auto_pad(n, &a->auto_pad, &auto_pad, err)) ||
	    (rc = pc_attr_window_ints(n, "kernel_shape", 2, 1, a->kernel, &present, err)))
		goto fail;
	if (!present) {
		rc = pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'kernel_shape' is required");
		goto fail;
	}
	if ((rc = pc_attr_window_ints(n, "strides", 2, 1, a->stride, &present, err)) ||
	    (rc = pc_attr_window_ints(n, "pads", 4, 0, a->pads, &present, err)) ||
	    (rc = flag_attr(n, "ceil_mode", &a->ceil_mode, err)))
		goto fail;
	if (is_max) {
		int storage_order = 0;
		if ((rc = pc_attr_window_ints(n, "dilations", 2, 1, a->dilation, &present, err)) ||
		    (rc = flag_attr(n, "storage_order", &storage_order, err)))
			goto fail;
		if (storage_order != 0) {
			rc = pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					   "attribute 'storage_order' = 1 (column-major indices) is not supported");
			goto fail;
		}
	} else if ((rc = flag_attr(n, "count_include_pad", &a->count_include_pad, err))) {
		goto fail;
	}
	if (a->auto_pad != PC_AUTO_PAD_NOTSET && (a->pads[0] | a->pads[1] | a->pads[2] | a->pads[3])) {
		rc = pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				   "attribute 'pads' cannot be combined with attribute 'auto_pad' = '%s'", auto_pad);
		goto fail;
	}
	free(n->priv);
	n->priv = a;
	return PC_OK;
fail:
	free(a);
	return rc;
}

int pc_maxpool_init(struct pc_node *n, struct pc_error *err)
{
	return pool_init(n, 1, err);
}

int pc_avgpool_init(struct pc_node *n, struct pc_error *err)
{
	return pool_init(n, 0, err);
}

/* Window taps i in [0, k) whose index start + i*d lies in [0, in). */
static void taps(int64_t start, int64_t k, int64_t d, int64_t in, int64_t *lo, int64_t *hi)
{
	int64_t l = start >= 0 ? 0 : (-start + d - 1) / d;
	int64_t h = in - 1 - start < 0 ? 0 : (in - 1 - start) / d + 1;

	if (h > k)
		h = k;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

/* Fills ax->out, lead and end from the attributes; 0 on success, or -1
 * when no window fits, -2 when some window holds no input element. */
static int axis_geometry(const struct pool_attrs *a, int axis, int64_t in, struct pool_axis *ax)
{
	int64_t ek, pb = a->pads[axis], pe = a->pads[axis + 2], total;

	ax->in = in;
	ax->k = a->kernel[axis];
	ax->s = a->stride[axis];
	ax->d = a->dilation[axis];
	ek = (ax->k - 1) * ax->d + 1;
	switch (a->auto_pad) {
	case PC_AUTO_PAD_VALID:
		pb = pe = 0;
		ax->out = in < ek ? 0 : (in - ek) / ax->s + 1;
		break;
	case PC_AUTO_PAD_SAME_UPPER:
	case PC_AUTO_PAD_SAME_LOWER:
		ax->out = (in + ax->s - 1) / ax->s;
		total = (ax->out - 1) * ax->s + ek - in;
		if (total < 0)
			total = 0;
		pb = a->auto_pad == PC_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
		pe = total - pb;
		break;
	case PC_AUTO_PAD_NOTSET:
	default:
		if (in + pb + pe < ek) {
			ax->out = 0;
			break;
		}
		ax->out = (in + pb + pe - ek + (a->ceil_mode ? ax->s - 1 : 0)) / ax->s + 1;
		/* the last window must start inside the input or the leading pad */
		if (a->ceil_mode && (ax->out - 1) * ax->s >= in + pb)
			ax->out--;
		break;
	}
	ax->lead = pb;
	ax->end = in + pe;
	if (ax->out < 1)
		return -1;
	for (int64_t o = 0; o < ax->out; o++) {
		int64_t lo, hi;
		taps(o * ax->s - ax->lead, ax->k, ax->d, in, &lo, &hi);
		if (lo == hi)
			return -2;
	}
	return 0;
}

static int pool_geometry(const struct pc_node *n, const struct pool_attrs *a, const struct pc_shape *xs,
			 struct pool_axis ax[2], struct pc_error *err)
{
	char buf[96];

	if (xs->ndim != 4)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input has shape %s; only 2-D pooling (input N x C x H x W) is supported",
				     pc_shape_format(xs, buf, sizeof(buf)));
	for (int i = 0; i < 2; i++) {
		int rc = axis_geometry(a, i, xs->dim[2 + i], &ax[i]);
		if (rc == -1)
			return pc_node_error(
			    err, n, PC_ERR_SHAPE,
			    "kernel %lldx%lld (dilations %lld,%lld) is larger than the padded input %s "
			    "(pads %lld,%lld,%lld,%lld)",
			    (long long)a->kernel[0], (long long)a->kernel[1], (long long)a->dilation[0],
			    (long long)a->dilation[1], pc_shape_format(xs, buf, sizeof(buf)), (long long)a->pads[0],
			    (long long)a->pads[1], (long long)a->pads[2], (long long)a->pads[3]);
		if (rc == -2)
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					     "with input %s, a pooling window along axis %d covers only padding "
					     "(pads %lld,%lld,%lld,%lld)",
					     pc_shape_format(xs, buf, sizeof(buf)), 2 + i, (long long)a->pads[0],
					     (long long)a->pads[1], (long long)a->pads[2], (long long)a->pads[3]);
	}
	return PC_OK;
}

static int pool_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *x;
	struct pool_axis ax[2];
	struct pc_shape ys;
	int rc;

	if ((rc = pc_op_need_float(p, n, 0, err)))
		return rc;
	x = pc_op_in(p, n, 0);
	if ((rc = pool_geometry(n, pc_op_priv(n), &x->shape, ax, err)))
		return rc;
	ys = x->shape;
	ys.dim[2] = ax[0].out;
	ys.dim[3] = ax[1].out;
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &ys, err);
}

int pc_maxpool_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return pool_infer(p, n, err);
}

int pc_avgpool_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return pool_infer(p, n, err);
}

/* Index into the plane of the first maximum of the window at (oh, ow). */
static int64_t window_argmax(const float *plane, const struct pool_axis ax[2], int64_t oh, int64_t ow)
{
	int64_t hs = oh * ax[0].s - ax[0].lead, wsr = ow * ax[1].s - ax[1].lead;
	int64_t ilo, ihi, jlo, jhi, best = -1;
	float bv = 0.0f;

	taps(hs, ax[0].k, ax[0].d, ax[0].in, &ilo, &ihi);
	taps(wsr, ax[1].k, ax[1].d, ax[1].in, &jlo, &jhi);
	for (int64_t i = ilo; i < ihi; i++) {
		const float *row = plane + (hs + i * ax[0].d) * ax[1].in;
		for (int64_t j = jlo; j < jhi; j++) {
			int64_t iw = wsr + j * ax[1].d;
			float v = row[iw];
			if (v != v)
				return (hs + i * ax[0].d) * ax[1].in + iw; /* NaN wins and propagates */
			if (best < 0 || v > bv) {
				best = (hs + i * ax[0].d) * ax[1].in + iw;
				bv = v;
			}
		}
	}
	return best;
}

/* The common 2x2, stride-2, unpadded window whose rows lie inside the input:
 * four loads per output, no bounds arithmetic. Index order matches
 * window_argmax: first maximum on ties, first NaN wins. */
static int is_2x2_s2(const struct pool_axis ax[2])
{
	for (int a = 0; a < 2; a++)
		if (ax[a].k != 2 || ax[a].s != 2 || ax[a].d != 1 || ax[a].lead != 0 || ax[a].out * 2 > ax[a].in)
			return 0;
	return 1;
}

static inline int64_t argmax4(const float *r0, const float *r1, int64_t w, int64_t j)
{
	const float v[4] = {r0[2 * j], r0[2 * j + 1], r1[2 * j], r1[2 * j + 1]};
	const int64_t at[4] = {2 * j, 2 * j + 1, w + 2 * j, w + 2 * j + 1};
	int best = 0;

	if (v[0] != v[0])
		return at[0];
	for (int i = 1; i < 4; i++) {
		if (v[i] != v[i])
			return at[i];
		if (v[i] > v[best])
			best = i;
	}
	return at[best];
}

PC_HOT static void maxpool_2x2(const float *x, float *y, int64_t planes, const struct pool_axis ax[2])
{
	int64_t w = ax[1].in, hw = ax[0].in * w, ow = ax[1].out;

	for (int64_t pl = 0; pl < planes; pl++)
		for (int64_t i = 0; i < ax[0].out; i++) {
			const float *r0 = x + pl * hw + 2 * i * w, *r1 = r0 + w;
			float *out = y + (pl * ax[0].out + i) * ow;
			for (int64_t j = 0; j < ow; j++) {
				float a = r0[2 * j], b = r0[2 * j + 1], c = r1[2 * j], d = r1[2 * j + 1];
				float m = b > a ? b : a;
				m = c > m ? c : m;
				m = d > m ? d : m;
				/* a NaN anywhere in the window propagates (the sum is NaN);
				 * written without branches so that the loop vectorizes */
				out[j] = ((a != a) | (b != b) | (c != c) | (d != d)) ? a + b + c + d : m;
			}
		}
}

/* The windows along one axis, computed once per pass instead of once per
 * output: each output's first input index (start + tap * d) and its taps
 * inside the input, [lo, hi). Up to POOL_SPANS outputs, on the stack. */
#define POOL_SPANS 1024

struct pool_span {
	int32_t start, lo, hi;
};

static int pool_spans(const struct pool_axis *a, struct pool_span *sp)
{
	if (a->out > POOL_SPANS || a->in > INT32_MAX / 2 || a->out * a->s > INT32_MAX / 2)
		return 0;
	for (int64_t o = 0; o < a->out; o++) {
		int64_t s = o * a->s - a->lead, lo, hi;
		taps(s, a->k, a->d, a->in, &lo, &hi);
		sp[o].start = (int32_t)s;
		sp[o].lo = (int32_t)lo;
		sp[o].hi = (int32_t)hi;
	}
	return 1;
}

/* Any window on precomputed spans: the maximum, NaN when the window holds
 * one (as window_argmax's first NaN gives), without branches on the data. */
PC_HOT static void maxpool_spans(const float *x, float *y, int64_t planes, const struct pool_axis ax[2],
				 const struct pool_span *rs, const struct pool_span *cs)
{
	int64_t w = ax[1].in, hw = ax[0].in * w, ow = ax[1].out, d0 = ax[0].d, d1 = ax[1].d;

	for (int64_t pl = 0; pl < planes; pl++)
		for (int64_t i = 0; i < ax[0].out; i++) {
			float *out = y + (pl * ax[0].out + i) * ow;
			const float *plane = x + pl * hw;
			for (int64_t j = 0; j < ow; j++) {
				float m = -INFINITY;
				int nan = 0;
				for (int32_t a = rs[i].lo; a < rs[i].hi; a++) {
					const float *row = plane + (rs[i].start + a * d0) * w + cs[j].start;
					for (int32_t b = cs[j].lo; b < cs[j].hi; b++) {
						float v = row[b * d1];
						m = v > m ? v : m;
						nan |= v != v;
					}
				}
				out[j] = nan ? NAN : m;
			}
		}
}

/* For the backward: the first tap of the window holding m, the value
 * forward wrote for it (the first maximum, or with m NaN the first NaN),
 * so the same tap window_argmax gives. Scanned from the last tap with a
 * select instead of a branch on the data: a running arg-max's branches on
 * random activations mispredicted most of its time away. */
static inline int64_t span_find(const float *plane, int64_t w, int64_t d0, int64_t d1, const struct pool_span *rs,
				const struct pool_span *cs, float m)
{
	int64_t at = -1;
	int nan = m != m;

	for (int32_t a = rs->hi - 1; a >= rs->lo; a--) {
		int64_t base = (rs->start + a * d0) * w + cs->start;
		for (int32_t b = cs->hi - 1; b >= cs->lo; b--) {
			float v = plane[base + b * d1];
			at = ((v == m) | (nan & (v != v))) ? base + b * d1 : at;
		}
	}
	return at;
}

/* With gates (pc_plan_set_gates): the index in its plane of the input
 * each output took, recorded as window_argmax finds it, or followed. */
static void maxpool_gated(const float *x, float *y, int64_t *gate, int frozen, int64_t planes, int64_t hw,
			  const struct pool_axis ax[2])
{
	int64_t ohw = ax[0].out * ax[1].out;

	for (int64_t pl = 0; pl < planes; pl++) {
		const float *plane = x + pl * hw;
		int64_t *at = gate + pl * ohw;
		for (int64_t oh = 0; oh < ax[0].out; oh++)
			for (int64_t ow = 0; ow < ax[1].out; ow++) {
				int64_t o = oh * ax[1].out + ow;
				if (!frozen)
					at[o] = window_argmax(plane, ax, oh, ow);
				y[pl * ohw + o] = plane[at[o]];
			}
	}
}

void pc_maxpool_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct pool_axis ax[2];
	int64_t planes, hw, ohw;

	if (pool_geometry(n, pc_op_priv(n), &x->shape, ax, NULL))
		return;
	planes = x->shape.dim[0] * x->shape.dim[1];
	hw = ax[0].in * ax[1].in;
	ohw = ax[0].out * ax[1].out;
	if (pc_op_gate(p, n)) {
		maxpool_gated(x->data, y->data, pc_op_gate(p, n), pc_op_gates_frozen(p), planes, hw, ax);
		return;
	}
	if (is_2x2_s2(ax)) {
		maxpool_2x2(x->data, y->data, planes, ax);
		return;
	}
	{
		struct pool_span rs[POOL_SPANS], cs[POOL_SPANS];
		if (pool_spans(&ax[0], rs) && pool_spans(&ax[1], cs)) {
			maxpool_spans(x->data, y->data, planes, ax, rs, cs);
			return;
		}
	}
	for (int64_t pl = 0; pl < planes; pl++) {
		const float *plane = x->data + pl * hw;
		float *out = y->data + pl * ohw;
		for (int64_t oh = 0; oh < ax[0].out; oh++)
			for (int64_t ow = 0; ow < ax[1].out; ow++)
				out[oh * ax[1].out + ow] = plane[window_argmax(plane, ax, oh, ow)];
	}
}

void pc_maxpool_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	struct pool_axis ax[2];
	int64_t planes, hw, ohw;

	if (!x->grad || !y->grad || pool_geometry(n, pc_op_priv(n), &x->shape, ax, NULL))
		return;
	planes = x->shape.dim[0] * x->shape.dim[1];
	hw = ax[0].in * ax[1].in;
	ohw = ax[0].out * ax[1].out;
	if (pc_op_gate(p, n)) {
		const int64_t *at = pc_op_gate(p, n);
		for (int64_t pl = 0; pl < planes; pl++)
			for (int64_t o = 0; o < ohw; o++)
				x->grad[pl * hw + at[pl * ohw + o]] += y->grad[pl * ohw + o];
		return;
	}
	if (!is_2x2_s2(ax)) {
		struct pool_span rs[POOL_SPANS], cs[POOL_SPANS];
		if (pool_spans(&ax[0], rs) && pool_spans(&ax[1], cs)) {
			for (int64_t pl = 0; pl < planes; pl++) {
				const float *plane = x->data + pl * hw, *dy = y->grad + pl * ohw, *ym = y->data + pl * ohw;
				float *dx = x->grad + pl * hw;
				for (int64_t oh = 0; oh < ax[0].out; oh++)
					for (int64_t ow = 0; ow < ax[1].out; ow++) {
						int64_t o = oh * ax[1].out + ow;
						dx[span_find(plane, ax[1].in, ax[0].d, ax[1].d, &rs[oh], &cs[ow], ym[o])] +=
							dy[o];
					}
			}
			return;
		}
	}
	for (int64_t pl = 0; pl < planes; pl++) {
		const float *plane = x->data + pl * hw;
		const float *dy = y->grad + pl * ohw;
		float *dx = x->grad + pl * hw;
		if (is_2x2_s2(ax)) {
			for (int64_t oh = 0; oh < ax[0].out; oh++) {
				const float *r0 = plane + 2 * oh * ax[1].in;
				float *d0 = dx + 2 * oh * ax[1].in;
				for (int64_t ow = 0; ow < ax[1].out; ow++)
					d0[argmax4(r0, r0 + ax[1].in, ax[1].in, ow)] += dy[oh * ax[1].out + ow];
			}
			continue;
		}
		for (int64_t oh = 0; oh < ax[0].out; oh++)
			for (int64_t ow = 0; ow < ax[1].out; ow++)
				dx[window_argmax(plane, ax, oh, ow)] += dy[oh * ax[1].out + ow];
	}
}

/* Taps of the window at `start` that count in the divisor: those inside
 * the input, or with count_include_pad those inside the padded input. */
static int64_t divisor_taps(const struct pool_axis *ax, int64_t start, int include_pad)
{
	int64_t lo, hi;

	if (include_pad) {
		/* start >= -lead always; clip the end to the trailing pad */
		int64_t last = ax->end - 1 - start;
		hi = last < 0 ? 0 : last / ax->d + 1;
		return hi < ax->k ? hi : ax->k;
	}
	taps(start, ax->k, ax->d, ax->in, &lo, &hi);
	return hi - lo;
}

/* Forward (dx == NULL: y = mean) or backward (dx += dy / divisor) of
 * AveragePool over every plane. */
static void avgpool_run(const struct pool_attrs *a, const struct pool_axis ax[2], int64_t planes, const float *x,
			float *y, const float *dy, float *dx)
{
	int64_t hw = ax[0].in * ax[1].in, ohw = ax[0].out * ax[1].out;

	for (int64_t pl = 0; pl < planes; pl++) {
		for (int64_t oh = 0; oh < ax[0].out; oh++) {
			int64_t hs = oh * ax[0].s - ax[0].lead, ilo, ihi;
			int64_t dh = divisor_taps(&ax[0], hs, a->count_include_pad);
			taps(hs, ax[0].k, ax[0].d, ax[0].in, &ilo, &ihi);
			for (int64_t ow = 0; ow < ax[1].out; ow++) {
				int64_t wsr = ow * ax[1].s - ax[1].lead, jlo, jhi, o = pl * ohw + oh * ax[1].out + ow;
				float inv = 1.0f / (float)(dh * divisor_taps(&ax[1], wsr, a->count_include_pad));
				taps(wsr, ax[1].k, ax[1].d, ax[1].in, &jlo, &jhi);
				if (dx) {
					float g = dy[o] * inv;
					for (int64_t i = ilo; i < ihi; i++) {
						float *row = dx + pl * hw + (hs + i * ax[0].d) * ax[1].in;
						for (int64_t j = jlo; j < jhi; j++)
							row[wsr + j * ax[1].d] += g;
					}
				} else {
					float acc = 0.0f;
					for (int64_t i = ilo; i < ihi; i++) {
						const float *row = x + pl * hw + (hs + i * ax[0].d) * ax[1].in;
						for (int64_t j = jlo; j < jhi; j++)
							acc += row[wsr + j * ax[1].d];
					}
					y[o] = acc * inv;
				}
			}
		}
	}
}

/* The 2x2 stride-2 window inside the input: every divisor is 4 whatever
 * count_include_pad says, and the sum runs in avgpool_run's order, so the
 * result is the same to the bit. */
PC_HOT static void avgpool_2x2(const float *x, float *y, int64_t planes, const struct pool_axis ax[2])
{
	int64_t w = ax[1].in, hw = ax[0].in * w, ow = ax[1].out;

	for (int64_t pl = 0; pl < planes; pl++)
		for (int64_t i = 0; i < ax[0].out; i++) {
			const float *r0 = x + pl * hw + 2 * i * w, *r1 = r0 + w;
			float *out = y + (pl * ax[0].out + i) * ow;
			for (int64_t j = 0; j < ow; j++)
				out[j] = (r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1]) * 0.25f;
		}
}

void pc_avgpool_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct pool_axis ax[2];

	if (pool_geometry(n, pc_op_priv(n), &x->shape, ax, NULL))
		return;
	if (is_2x2_s2(ax)) {
		avgpool_2x2(x->data, y->data, x->shape.dim[0] * x->shape.dim[1], ax);
		return;
	}
	avgpool_run(pc_op_priv(n), ax, x->shape.dim[0] * x->shape.dim[1], x->data, y->data, NULL, NULL);
}

void pc_avgpool_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	struct pool_axis ax[2];

	if (!x->grad || !y->grad || pool_geometry(n, pc_op_priv(n), &x->shape, ax, NULL))
		return;
	avgpool_run(pc_op_priv(n), ax, x->shape.dim[0] * x->shape.dim[1], NULL, NULL, y->grad, x->grad);
}

/* --- GlobalAveragePool -------------------------------------------------- */

int pc_globalavgpool_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *x;
	struct pc_shape ys;
	char buf[96];
	int rc;

	if ((rc = pc_op_need_float(p, n, 0, err)))
		return rc;
	x = pc_op_in(p, n, 0);
	if (x->shape.ndim != 4)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input has shape %s; only 2-D pooling (input N x C x H x W) is supported",
				     pc_shape_format(&x->shape, buf, sizeof(buf)));
	if (x->shape.dim[2] < 1 || x->shape.dim[3] < 1)
		return pc_node_error(err, n, PC_ERR_SHAPE, "input %s has an empty spatial axis",
				     pc_shape_format(&x->shape, buf, sizeof(buf)));
	ys = x->shape;
	ys.dim[2] = ys.dim[3] = 1;
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &ys, err);
}

void pc_globalavgpool_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	int64_t planes = x->shape.dim[0] * x->shape.dim[1], hw = x->shape.dim[2] * x->shape.dim[3];

	for (int64_t pl = 0; pl < planes; pl++) {
		const float *src = x->data + pl * hw;
		double acc = 0.0;
		for (int64_t q = 0; q < hw; q++)
			acc += src[q];
		y->data[pl] = (float)(acc / (double)hw);
	}
}

void pc_globalavgpool_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);
	int64_t planes = x->shape.dim[0] * x->shape.dim[1], hw = x->shape.dim[2] * x->shape.dim[3];

	if (!x->grad || !y->grad)
		return;
	for (int64_t pl = 0; pl < planes; pl++) {
		float g = y->grad[pl] / (float)hw;
		float *dst = x->grad + pl * hw;
		for (int64_t q = 0; q < hw; q++)
			dst[q] += g;
	}
}
