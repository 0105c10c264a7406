/* ops/quant: QuantizeLinear and DequantizeLinear, the two ops of a QDQ
 * graph (ONNX Runtime's quantizer, PyTorch's exporter).
 *
 * The plan holds every value as float: an int8 or uint8 tensor (an
 * initializer the loader converted, graph value `stored`, or a
 * QuantizeLinear output) carries its integers as floats, which is exact.
 * Which integer type a value is comes from the graph: an initializer's
 * stored type, or for a QuantizeLinear output its zero point's type (uint8
 * when the zero point is absent, as the spec says).
 *
 * Scale and zero point are a scalar (per tensor) or a 1-D tensor of the
 * length of x's dim `axis` (per axis, opset 13); both are static (the op
 * table marks them buffers, so initializers are constants, not weights). */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>

struct quant_priv {
	int64_t axis; /* as given; normalised at infer against x's rank */
};

/* The integer type (ONNX elem type, 2 uint8 or 3 int8) of graph value v,
 * or 0 when it is a float. */
static int value_int_type(const struct pc_graph *g, int v)
{
	const struct pc_value *val;
	const struct pc_node *q;

	if (v < 0)
		return 0;
	val = &g->values[v];
	if (val->stored)
		return val->stored;
	if (val->producer < 0)
		return 0;
	q = &g->nodes[val->producer];
	if (q->op != PC_OP_QUANTIZELINEAR)
		return 0;
	if (q->n_in < 3 || q->in[2] < 0)
		return PC_STORED_UINT8;
	return g->values[q->in[2]].stored;
}

static const char *int_type_name(int t)
{
	return t == PC_STORED_INT8 ? "int8" : t == PC_STORED_UINT8 ? "uint8" : "float";
}

static int quant_init(struct pc_node *n, struct pc_error *err)
{
	struct quant_priv *q = calloc(1, sizeof(*q));
	int rc;

	if (!q)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	rc = pc_attr_int(n, "axis", 1, &q->axis, err);
	if (rc) {
		free(q);
		return rc;
	}
	n->priv = q;
	return PC_OK;
}

/* The layout of one node's scale over x: per tensor (channels 1) or per
 * axis, element j of x in channel (j / inner) % channels. */
struct quant_layout {
	int64_t channels, inner;
};

static void quant_layout(struct pc_plan *p, const struct pc_node *n, struct quant_layout *l)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *s = pc_op_in(p, n, 1);
	const struct quant_priv *q = pc_op_priv(n);
	int axis;

	l->channels = 1;
	l->inner = 1;
	if (s->shape.ndim == 0)
		return;
	axis = pc_axis(q->axis, x->shape.ndim);
	l->channels = x->shape.dim[axis];
	l->inner = pc_shape_span(&x->shape, axis + 1, x->shape.ndim);
}

/* Checks scale (input 1) and zero point (input 2) against x and returns
 * the zero point's integer type in *zp_type (0 when absent). */
static int check_params(struct pc_plan *p, const struct pc_node *n, int *zp_type, struct pc_error *err)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *s, *z;
	const struct quant_priv *q = pc_op_priv(n);
	char buf[96];
	int rc, axis;

	if ((rc = pc_op_need_float(p, n, 1, err)))
		return rc;
	s = pc_op_in(p, n, 1);
	if (!s->is_static)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input 1 (scale) is computed; paracorr needs it as an initializer");
	if (s->shape.ndim > 1)
		return pc_node_error(err, n, PC_ERR_SHAPE, "input 1 (scale) has shape %s; a scalar or 1-D",
				     pc_shape_format(&s->shape, buf, sizeof(buf)));
	if (s->shape.ndim == 1) {
		if ((axis = pc_axis(q->axis, x->shape.ndim)) < 0)
			return pc_node_error(err, n, PC_ERR_SHAPE, "axis %lld is out of range for input 0 of rank %d",
					     (long long)q->axis, x->shape.ndim);
		if (s->shape.dim[0] != x->shape.dim[axis])
			return pc_node_error(err, n, PC_ERR_SHAPE,
					     "input 1 (scale) has %lld values; axis %d of input 0 has %lld",
					     (long long)s->shape.dim[0], axis, (long long)x->shape.dim[axis]);
	}
	*zp_type = 0;
	z = pc_op_in(p, n, 2);
	if (!z)
		return PC_OK;
	*zp_type = value_int_type(p->g, n->in[2]);
	if (!*zp_type)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input 2 (zero point) is %s; it must be an int8 or uint8 initializer",
				     z->dtype == PC_DTYPE_FLOAT ? "float" : pc_dtype_name(z->dtype));
	if (!z->is_static)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input 2 (zero point) is computed; paracorr needs it as an initializer");
	if (!pc_shape_equal(&z->shape, &s->shape))
		return pc_node_error(err, n, PC_ERR_SHAPE, "input 2 (zero point) has shape %s; the scale's is %s",
				     pc_shape_format(&z->shape, buf, sizeof(buf)),
				     pc_shape_format(&s->shape, buf + 48, sizeof(buf) - 48));
	return PC_OK;
}

static float zero_point(const struct pc_tensor *z, int64_t c)
{
	return z ? z->data[c] : 0.0f;
}

/* --- QuantizeLinear ----------------------------------------------------- */

int pc_quantize_init(struct pc_node *n, struct pc_error *err)
{
	return quant_init(n, err);
}

int pc_quantize_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	int rc, zp_type;

	if ((rc = pc_op_need_float(p, n, 0, err)) || (rc = check_params(p, n, &zp_type, err)))
		return rc;
	if (value_int_type(p->g, n->in[0]))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 0 is %s; QuantizeLinear takes float",
				     int_type_name(value_int_type(p->g, n->in[0])));
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &pc_op_in(p, n, 0)->shape, err);
}

static void int_range(int type, float *lo, float *hi)
{
	*lo = type == PC_STORED_INT8 ? -128.0f : 0.0f;
	*hi = type == PC_STORED_INT8 ? 127.0f : 255.0f;
}

void pc_quantize_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *s = pc_op_in(p, n, 1), *z = pc_op_in(p, n, 2);
	float *restrict y = pc_op_out(p, n, 0)->data;
	struct quant_layout l;
	float lo, hi;

	quant_layout(p, n, &l);
	int_range(value_int_type(p->g, n->out[0]), &lo, &hi);
	for (int64_t i = 0; i < x->numel; i++) {
		int64_t c = (i / l.inner) % l.channels;
		/* rintf in the default rounding mode: half to even, as the spec */
		float v = rintf(x->data[i] / s->data[c]) + zero_point(z, c);

		y[i] = v < lo ? lo : v > hi ? hi : v;
	}
}

/* Rounding has no useful derivative, so the gradient is the straight-through
 * estimator (Bengio et al. 2013; what PyTorch's fake quantization uses):
 * dy / scale where the unsaturated value lies in the type's range, 0 where
 * it saturated. */
void pc_quantize_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *s = pc_op_in(p, n, 1), *z = pc_op_in(p, n, 2);
	const float *g = pc_op_out(p, n, 0)->grad;
	float *restrict dx = x->grad;
	struct quant_layout l;
	float lo, hi;

	if (!dx)
		return;
	quant_layout(p, n, &l);
	int_range(value_int_type(p->g, n->out[0]), &lo, &hi);
	for (int64_t i = 0; i < x->numel; i++) {
		int64_t c = (i / l.inner) % l.channels;
		float v = rintf(x->data[i] / s->data[c]) + zero_point(z, c);

		if (v >= lo && v <= hi)
			dx[i] += g[i] / s->data[c];
	}
}

/* --- DequantizeLinear ----------------------------------------------------- */

int pc_dequantize_init(struct pc_node *n, struct pc_error *err)
{
	return quant_init(n, err);
}

int pc_dequantize_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	int rc, zp_type, x_type;

	/* ONNX Runtime writes biases as int32 with DequantizeLinear: their
	 * integers pass float's 24 bits, so paracorr does not take them */
	if (x && x->dtype != PC_DTYPE_FLOAT)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input 0 is an integer tensor (int32 or int64); paracorr dequantizes int8 and "
				     "uint8 only");
	if ((rc = pc_op_need_float(p, n, 0, err)))
		return rc;
	x_type = value_int_type(p->g, n->in[0]);
	if (!x_type)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input 0 is float; DequantizeLinear takes int8 or uint8 (an initializer or a "
				     "QuantizeLinear output)");
	if ((rc = check_params(p, n, &zp_type, err)))
		return rc;
	if (zp_type && zp_type != x_type)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 2 (zero point) is %s; input 0 is %s",
				     int_type_name(zp_type), int_type_name(x_type));
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &pc_op_in(p, n, 0)->shape, err);
}

void pc_dequantize_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *s = pc_op_in(p, n, 1), *z = pc_op_in(p, n, 2);
	float *restrict y = pc_op_out(p, n, 0)->data;
	struct quant_layout l;

	quant_layout(p, n, &l);
	for (int64_t i = 0; i < x->numel; i++) {
		int64_t c = (i / l.inner) % l.channels;

		y[i] = (x->data[i] - zero_point(z, c)) * s->data[c];
	}
}

/* Linear in x: dx = dy * scale. This is the gradient with respect to the
 * stored integers, which the corruption and bit-fault studies perturb. */
void pc_dequantize_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *s = pc_op_in(p, n, 1);
	const float *g = pc_op_out(p, n, 0)->grad;
	float *restrict dx = x->grad;
	struct quant_layout l;

	if (!dx)
		return;
	quant_layout(p, n, &l);
	for (int64_t i = 0; i < x->numel; i++)
		dx[i] += g[i] * s->data[(i / l.inner) % l.channels];
}
