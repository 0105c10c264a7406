/* Tests of models quantized in ONNX QDQ form: int8/uint8 initializers, the
 * ops QuantizeLinear and DequantizeLinear (core/ops/quant.c), and the int8
 * faults store on the stored integers (core/faults.c).
 *
 * The model-level numbers come from tests/reference/make_qdq_fixtures.py
 * (numpy and torch, not paracorr); the op-level expectations are written
 * out by hand from the ONNX spec. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "allocfail.h"
#include "onnx_build.h"
#include "paracorr/eval.h"
#include "paracorr/faults.h"
#include "paracorr/fstudy.h"
#include "paracorr/graph.h"
#include "paracorr/groups.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "paracorr/sys.h"
#include "test.h"

#define FIXTURES "tests/reference/fixtures"

/* --- the reference model --------------------------------------------------- */

static const char *fixture(char *path, size_t size, const char *name)
{
	snprintf(path, size, "%s/" FIXTURES "/%s", pc_test_root(), name);
	return path;
}

/* The JSON reference or the ONNX model called name; NULL after recording
 * why on t. */
static json_t *load_json(struct pc_test *t, const char *name)
{
	char path[512];
	json_error_t jerr;
	json_t *j = json_load_file(fixture(path, sizeof(path), name), 0, &jerr);

	if (!j)
		pc_test_fail(t, __FILE__, __LINE__, "%s: line %d: %s", path, jerr.line, jerr.text);
	return j;
}

static struct pc_graph *load_model(struct pc_test *t, const char *name)
{
	char path[512], msg[800];
	struct pc_error err = {0};
	struct pc_graph *g = NULL;

	if (pc_onnx_load_file(fixture(path, sizeof(path), name), &g, &err))
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", name, pc_error_format(&err, msg, sizeof(msg)));
	return g;
}

/* An array of numbers into a new buffer of floats; *n its count. */
static float *floats_of(const json_t *a, int64_t *n)
{
	size_t len = json_array_size(a);
	float *v = malloc((len ? len : 1) * sizeof(float));

	*n = (int64_t)len;
	for (size_t i = 0; v && i < len; i++)
		v[i] = (float)json_number_value(json_array_get(a, i));
	return v;
}

/* |got - want| <= atol + rtol |want| for every element; the worst is
 * reported. */
static void check_close(struct pc_test *t, const char *what, const float *got, const float *want, int64_t n,
			double atol, double rtol)
{
	for (int64_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);

		if (!(d <= atol + rtol * fabs(want[i]))) {
			pc_test_fail(t, __FILE__, __LINE__, "%s[%lld]: %.9g, want %.9g", what, (long long)i,
				     (double)got[i], (double)want[i]);
			return;
		}
	}
}

struct qdq_run {
	json_t *ref;
	struct pc_graph *g;
	struct pc_plan *p;
	int32_t labels[4];
	int n;
};

static int qdq_open(struct pc_test *t, struct qdq_run *r, unsigned flags)
{
	struct pc_error err = {0};
	char msg[800];
	float *x;
	int64_t nx;

	memset(r, 0, sizeof(*r));
	if (!(r->ref = load_json(t, "qdq_cnn.json")) || !(r->g = load_model(t, "qdq_cnn_op13.onnx")))
		return 0;
	r->n = (int)json_array_size(json_object_get(r->ref, "labels"));
	if (r->n != 4) {
		pc_test_fail(t, __FILE__, __LINE__, "fixture has %d labels, want 4", r->n);
		return 0;
	}
	for (int i = 0; i < r->n; i++)
		r->labels[i] = (int32_t)json_integer_value(json_array_get(json_object_get(r->ref, "labels"), i));
	if (!(r->p = pc_plan_new(r->g, r->n, flags, &err))) {
		pc_test_fail(t, __FILE__, __LINE__, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		return 0;
	}
	x = floats_of(json_object_get(r->ref, "input"), &nx);
	if (!x || nx != r->n * pc_plan_sample_numel(r->p)) {
		free(x);
		pc_test_fail(t, __FILE__, __LINE__, "fixture input has %lld floats", (long long)nx);
		return 0;
	}
	memcpy(pc_plan_input(r->p), x, (size_t)nx * sizeof(float));
	free(x);
	return 1;
}

static void qdq_close(struct qdq_run *r)
{
	pc_plan_free(r->p);
	pc_graph_free(r->g);
	json_decref(r->ref);
}

/* Mean cross-entropy of the plan's current output; with grad, also its
 * gradient into the output gradient. */
static double qdq_loss(struct qdq_run *r, int grad)
{
	struct pc_eval_sums s = {0};
	struct pc_eval e;

	pc_eval_batch_loss(r->p, r->labels, r->n, 1.0 / r->n, &s, grad ? pc_plan_output_grad(r->p) : NULL);
	pc_eval_finish(&s, r->n, 0, &e);
	return e.loss;
}

TEST(qdq_model_matches_reference)
{
	struct qdq_run r;
	const char *key;
	json_t *val;
	float *want;
	int64_t n;

	if (!qdq_open(t, &r, PC_PLAN_GRAD))
		goto done;
	/* the stored integers and the biases are the weights; scales and zero
	 * points are constants */
	CHECK_INT(pc_graph_param_tensors(r.g), 4);
	CHECK(pc_graph_find_param(r.g, "w1_s") < 0 && pc_graph_find_param(r.g, "zp_in") < 0 &&
	      pc_graph_find_param(r.g, "w2_zp") < 0);
	CHECK_INT(pc_graph_param(r.g, pc_graph_find_param(r.g, "b1"))->stored, PC_STORED_FLOAT);
	pc_plan_forward(r.p);
	want = floats_of(json_object_get(r.ref, "output"), &n);
	REQUIRE(want && n == r.n * pc_plan_classes(r.p));
	check_close(t, "output", pc_plan_output(r.p), want, n, 1e-5, 0);
	free(want);
	CHECK_CLOSE(qdq_loss(&r, 1), json_number_value(json_object_get(r.ref, "loss")), 1e-5, 0);
	pc_plan_zero_weight_grad(r.p);
	pc_plan_backward(r.p);
	json_object_foreach(json_object_get(r.ref, "params"), key, val)
	{
		int k = pc_graph_find_param(r.g, key);
		const struct pc_param *pp;
		float *vals, *grad;
		int64_t nv, ng;

		if (k < 0) {
			pc_test_fail(t, __FILE__, __LINE__, "no parameter '%s'", key);
			continue;
		}
		pp = pc_graph_param(r.g, k);
		CHECK_INT(pp->stored, PC_STORED_INT8);
		vals = floats_of(json_object_get(val, "values"), &nv);
		grad = floats_of(json_object_get(val, "grad"), &ng);
		CHECK_INT(pp->count, nv);
		CHECK_INT(pp->count, ng);
		if (vals && grad && pp->count == nv && pp->count == ng) {
			/* the integers themselves, exactly */
			check_close(t, key, pc_graph_params(r.g) + pp->offset, vals, nv, 0, 0);
			check_close(t, key, pc_plan_weight_grad(r.p) + pp->offset, grad, ng, 1e-6, 1e-4);
		}
		free(vals);
		free(grad);
	}
done:
	qdq_close(&r);
}

/* The Gemm's stored integers feed no QuantizeLinear after them, so the loss
 * is smooth in them and central differences check the gradient. (The Conv's
 * output is quantized again: there the loss is piecewise constant, and only
 * the straight-through reference above applies.) */
TEST(qdq_gradient_finite_differences)
{
	struct qdq_run r;
	const struct pc_param *pp;
	float *w, *grad = NULL;
	const double h = 0.5;

	if (!qdq_open(t, &r, PC_PLAN_GRAD))
		goto done;
	pp = pc_graph_param(r.g, pc_graph_find_param(r.g, "w2_q"));
	w = pc_plan_weights(r.p);
	pc_plan_forward(r.p);
	qdq_loss(&r, 1);
	pc_plan_zero_weight_grad(r.p);
	pc_plan_backward(r.p);
	grad = malloc((size_t)pp->count * sizeof(float));
	REQUIRE(grad);
	memcpy(grad, pc_plan_weight_grad(r.p) + pp->offset, (size_t)pp->count * sizeof(float));
	for (int64_t j = 0; j < pp->count; j += 7) {
		float keep = w[pp->offset + j];
		double up, down, fd;

		w[pp->offset + j] = (float)(keep + h);
		pc_plan_forward(r.p);
		up = qdq_loss(&r, 0);
		w[pp->offset + j] = (float)(keep - h);
		pc_plan_forward(r.p);
		down = qdq_loss(&r, 0);
		w[pp->offset + j] = keep;
		fd = (up - down) / (2 * h);
		CHECK_MSG(fabs(fd - grad[j]) <= 1e-6 + 2e-3 * fabs(fd), "w2_q[%lld]: gradient %.9g, differences %.9g",
			  (long long)j, (double)grad[j], fd);
	}
done:
	free(grad);
	qdq_close(&r);
}

/* The float model the QDQ one came from loads and runs as any float model. */
TEST(qdq_float_model_loads)
{
	struct pc_graph *g = load_model(t, "qdq_float_op13.onnx");
	json_t *ref = load_json(t, "qdq_cnn.json");
	struct pc_plan *p = NULL;
	struct pc_error err = {0};
	float *x = NULL, *want = NULL;
	int64_t nx, nw;

	if (!g || !ref)
		goto done;
	CHECK_INT(pc_graph_param_tensors(g), 4);
	REQUIRE((p = pc_plan_new(g, 4, 0, &err)) != NULL);
	x = floats_of(json_object_get(ref, "input"), &nx);
	want = floats_of(json_object_get(ref, "float_output"), &nw);
	REQUIRE(x && want && nx == 4 * pc_plan_sample_numel(p) && nw == 4 * pc_plan_classes(p));
	memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
	pc_plan_forward(p);
	check_close(t, "float output", pc_plan_output(p), want, nw, 1e-5, 0);
done:
	free(x);
	free(want);
	pc_plan_free(p);
	pc_graph_free(g);
	json_decref(ref);
}

/* The int8 store of the QDQ model is its own integers; flipping bit 7 of one
 * code moves that integer by 128 and the model follows DequantizeLinear of
 * the flipped integer. */
TEST(qdq_faults_int8_store)
{
	struct qdq_run r;
	struct pc_faults_store *s = NULL, *s32 = NULL;
	struct pc_error err = {0};
	const json_t *flip;
	int k1, k2, axis = 7;
	int64_t ns = 5, idx, n;
	float value, *want = NULL;

	if (!qdq_open(t, &r, 0))
		goto done;
	k1 = pc_graph_find_param(r.g, "w1_q");
	k2 = pc_graph_find_param(r.g, "w2_q");
	REQUIRE(k1 >= 0 && k2 >= 0);
	CHECK(pc_faults_quantizable(r.g, k2, &axis) && axis == -1);
	/* per channel too: the stored integers are never re-quantized */
	REQUIRE(pc_faults_encode(r.g, pc_graph_params(r.g), PC_FAULTS_INT8, PC_FAULTS_PER_CHANNEL, &s, &err) == 0);
	for (int k = 0; k < pc_graph_param_tensors(r.g); k++) {
		const struct pc_param *pp = pc_graph_param(r.g, k);

		CHECK_INT(pc_faults_tensor_bits(s, k), pp->stored ? 8 : 0);
		if (!pp->stored)
			continue;
		CHECK(pc_faults_scales(s, k, &ns) == NULL && ns == 0);
		CHECK_INT(pc_faults_axis(s, k), -1);
		for (int64_t j = 0; j < pp->count; j++) {
			float q = pc_graph_params(r.g)[pp->offset + j];

			CHECK_INT(pc_faults_code(s, pp->offset + j), (uint8_t)(int8_t)q);
			CHECK(pc_faults_value(s, pp->offset + j) == q);
		}
	}
	/* float32: the float bits of the integer, as any parameter */
	REQUIRE(pc_faults_encode(r.g, pc_graph_params(r.g), PC_FAULTS_FLOAT32, PC_FAULTS_PER_TENSOR, &s32, &err) == 0);
	idx = pc_graph_param(r.g, k2)->offset;
	CHECK_INT(pc_faults_code(s32, idx), pc_faults_f32_bits(pc_graph_params(r.g)[idx]));
	CHECK_INT(pc_faults_tensor_bits(s32, k2), 32);

	flip = json_object_get(r.ref, "flip");
	REQUIRE(!strcmp(json_string_value(json_object_get(flip, "param")), "w2_q"));
	idx = pc_graph_param(r.g, k2)->offset + json_integer_value(json_object_get(flip, "index"));
	CHECK(pc_faults_value(s, idx) == (float)json_number_value(json_object_get(flip, "before")));
	REQUIRE(pc_faults_flip(s, idx, (int)json_integer_value(json_object_get(flip, "bit")), &value, &err) == 0);
	CHECK(value == (float)json_number_value(json_object_get(flip, "after")));
	CHECK_INT(pc_faults_code(s, idx), (uint8_t)(int8_t)value);
	CHECK(fabsf(value - pc_graph_params(r.g)[idx]) == 128.0f);
	pc_faults_decode(s, pc_plan_weights(r.p));
	pc_plan_forward(r.p);
	want = floats_of(json_object_get(flip, "output"), &n);
	REQUIRE(want && n == r.n * pc_plan_classes(r.p));
	check_close(t, "flipped output", pc_plan_output(r.p), want, n, 1e-5, 0);
done:
	free(want);
	pc_faults_store_free(s);
	pc_faults_store_free(s32);
	qdq_close(&r);
}

/* --- op level: small models built here ----------------------------------- */

/* An int8 (type 3) or uint8 (type 2) initializer as raw bytes; data is
 * borrowed. */
static Onnx__TensorProto *ob_int8(struct ob_model *b, const char *name, int type, int ndim, const int64_t *dims,
				  const uint8_t *data)
{
	Onnx__TensorProto *t = ob_float(b, name, ndim, dims, (const float *)(const void *)data);

	t->data_type = type;
	t->raw_data.len /= sizeof(float);
	return t;
}

static struct pc_graph *load_built(struct ob_model *b, struct pc_error *err)
{
	struct pc_graph *g = NULL;
	size_t len;
	unsigned char *buf = ob_pack(b, &len);

	if (!buf)
		return NULL;
	if (pc_onnx_load_buffer(buf, len, &g, err))
		g = NULL;
	free(buf);
	return g;
}

/* y = op(x) on a batch of one; the output into out[0..n). */
static int run_one(struct pc_test *t, struct ob_model *b, const float *x, int64_t nx, float *out, int64_t n)
{
	struct pc_error err = {0};
	struct pc_graph *g = load_built(b, &err);
	struct pc_plan *p = NULL;
	char msg[800];
	int ok = 0;

	if (!g || !(p = pc_plan_new(g, 1, 0, &err))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	if (pc_plan_sample_numel(p) != nx || pc_plan_classes(p) * pc_plan_positions(p) > n) {
		pc_test_fail(t, __FILE__, __LINE__, "model sizes %lld", (long long)pc_plan_sample_numel(p));
		goto out;
	}
	memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
	pc_plan_forward(p);
	memcpy(out, pc_plan_output(p), (size_t)n * sizeof(float));
	ok = 1;
out:
	pc_plan_free(p);
	pc_graph_free(g);
	return ok;
}

TEST(qdq_quantize_rounding_saturation)
{
	static const float x[12] = {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 3.49f, 200.0f, -300.0f, 127.5f, -128.5f, 0.0f};
	/* int8, zero point 0: half to even, then [-128, 127] (127.5 -> 128 ->
	 * 127; -128.5 -> -128) */
	static const float want_i8[12] = {0, 2, 2, -0.0f, -2, -2, 3, 127, -128, 127, -128, 0};
	/* uint8, zero point 10: rint(x) + 10 in [0, 255] */
	static const float want_u8[12] = {10, 12, 12, 10, 8, 8, 13, 210, 0, 138, 0, 10};
	/* no zero point: uint8 with zero point 0, so negatives saturate at 0 */
	static const float want_none[12] = {0, 2, 2, 0, 0, 0, 3, 200, 0, 128, 0, 0};
	static const float one = 1.0f;
	static const uint8_t zp_i8 = 0, zp_u8 = 10;
	int64_t dims[2] = {-1, 12}, none[1] = {0};
	float got[12];
	struct ob_model b;

	for (int variant = 0; variant < 3; variant++) {
		const char *in_zp[] = {"x", "s", "zp", NULL}, *in_none[] = {"x", "s", NULL}, *out[] = {"y", NULL};
		const float *want = variant == 0 ? want_i8 : variant == 1 ? want_u8 : want_none;

		ob_init(&b, 13, "x", 2, dims, "y");
		ob_float(&b, "s", 0, none, &one);
		if (variant < 2)
			ob_int8(&b, "zp", variant == 0 ? 3 : 2, 0, none, variant == 0 ? &zp_i8 : &zp_u8);
		ob_node(&b, "QuantizeLinear", "q", variant < 2 ? in_zp : in_none, out);
		if (!run_one(t, &b, x, 12, got, 12))
			continue;
		for (int i = 0; i < 12; i++)
			CHECK_MSG(got[i] == want[i], "variant %d x %g: %g, want %g", variant, (double)x[i], (double)got[i],
				  (double)want[i]);
	}
}

/* Per axis: QuantizeLinear over axis 1 of [1, 3, 2] activations, and
 * DequantizeLinear of int8 and uint8 initializers along either axis, added
 * to x so the output shows the dequantized values. */
TEST(qdq_per_axis)
{
	static const float x[6] = {1.0f, -1.0f, 3.0f, 6.0f, -2.0f, 250.0f};
	static const float scale3[3] = {0.5f, 1.0f, 2.0f};
	static const uint8_t zp3[3] = {0, 5, 100};
	/* channel c of x[0, c, :]: rint(x / s[c]) + zp[c], saturated to uint8 */
	static const float want_q[6] = {2, 0, 8, 11, 99, 225};
	static const uint8_t w[6] = {(uint8_t)-3, 7, 0, (uint8_t)-128, 127, 1}; /* int8 [2, 3] */
	static const float s_ax0[2] = {0.25f, 2.0f}, s_ax1[3] = {1.0f, 0.5f, 4.0f};
	static const uint8_t z_ax0[2] = {1, (uint8_t)-2}, z_ax1[3] = {0, 1, (uint8_t)-1};
	static const float want_ax0[6] = {-1.0f, 1.5f, -0.25f, -252.0f, 258.0f, 6.0f};
	static const float want_ax1[6] = {-3.0f, 3.0f, 4.0f, -128.0f, 63.0f, 8.0f};
	static const uint8_t wu[6] = {0, 255, 128, 1, 2, 3}; /* uint8 [2, 3], zero point 128 */
	static const uint8_t zu = 128;
	static const float su = 0.5f;
	static const float want_u[6] = {-64.0f, 63.5f, 0.0f, -63.5f, -63.0f, -62.5f};
	int64_t dx3[3] = {-1, 3, 2}, d3[1] = {3}, d2[1] = {2}, dw[2] = {2, 3}, dx2[2] = {-1, 6}, none[1] = {0},
		d6[1] = {6};
	float got[6], zero[6] = {0};
	struct ob_model b;

	{
		const char *in[] = {"x", "s", "zp", NULL}, *out[] = {"y", NULL};
		ob_init(&b, 13, "x", 3, dx3, "y");
		ob_float(&b, "s", 1, d3, scale3);
		ob_int8(&b, "zp", 2, 1, d3, zp3);
		ob_attr_int(ob_node(&b, "QuantizeLinear", "q", in, out), &b, "axis", 1);
		if (run_one(t, &b, x, 6, got, 6))
			for (int i = 0; i < 6; i++)
				CHECK_MSG(got[i] == want_q[i], "q[%d]: %g, want %g", i, (double)got[i], (double)want_q[i]);
	}
	for (int ax = 0; ax < 2; ax++) {
		const char *dq_in[] = {"w", "s", "zp", NULL}, *dq_out[] = {"wd", NULL};
		const char *rs_in[] = {"wd", "shape", NULL}, *rs_out[] = {"wf", NULL};
		const char *add_in[] = {"x", "wf", NULL}, *add_out[] = {"y", NULL};
		static const int64_t shape[2] = {1, 6};
		int64_t d_shape[1] = {2};
		const float *want = ax == 0 ? want_ax0 : want_ax1;

		ob_init(&b, 13, "x", 2, dx2, "y");
		ob_int8(&b, "w", 3, 2, dw, w);
		ob_float(&b, "s", 1, ax == 0 ? d2 : d3, ax == 0 ? s_ax0 : s_ax1);
		ob_int8(&b, "zp", 3, 1, ax == 0 ? d2 : d3, ax == 0 ? z_ax0 : z_ax1);
		ob_int64(&b, "shape", 1, d_shape, shape);
		ob_attr_int(ob_node(&b, "DequantizeLinear", "dq", dq_in, dq_out), &b, "axis", ax);
		ob_node(&b, "Reshape", "rs", rs_in, rs_out);
		ob_node(&b, "Add", "add", add_in, add_out);
		if (run_one(t, &b, zero, 6, got, 6))
			for (int i = 0; i < 6; i++)
				CHECK_MSG(got[i] == want[i], "axis %d [%d]: %g, want %g", ax, i, (double)got[i],
					  (double)want[i]);
	}
	{
		/* a uint8 weight, per tensor (a [1] shape is not per tensor, a
		 * scalar is) */
		const char *dq_in[] = {"w", "s", "zp", NULL}, *dq_out[] = {"wd", NULL};
		const char *add_in[] = {"x", "wd", NULL}, *add_out[] = {"y", NULL};
		struct pc_error err = {0};
		struct pc_graph *g;
		struct pc_faults_store *s = NULL;
		float v;

		ob_init(&b, 13, "x", 2, dx2, "y");
		ob_int8(&b, "w", 2, 1, d6, wu);
		ob_float(&b, "s", 0, none, &su);
		ob_int8(&b, "zp", 2, 0, none, &zu);
		ob_node(&b, "DequantizeLinear", "dq", dq_in, dq_out);
		ob_node(&b, "Add", "add", add_in, add_out);
		if (run_one(t, &b, zero, 6, got, 6))
			for (int i = 0; i < 6; i++)
				CHECK_MSG(got[i] == want_u[i], "uint8 [%d]: %g, want %g", i, (double)got[i],
					  (double)want_u[i]);
		/* its int8-format codes are the bytes themselves */
		g = load_built(&b, &err);
		REQUIRE(g);
		CHECK_INT(pc_graph_param_tensors(g), 1);
		CHECK_INT(pc_graph_param(g, 0)->stored, PC_STORED_UINT8);
		if (pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR, &s, &err) == 0) {
			for (int i = 0; i < 6; i++)
				CHECK_INT(pc_faults_code(s, i), wu[i]);
			CHECK(pc_faults_flip(s, 1, 7, &v, &err) == 0 && v == 127.0f);
			CHECK(pc_faults_flip(s, 0, 0, &v, &err) == 0 && v == 1.0f);
		} else {
			CHECK(!"encode failed");
		}
		pc_faults_store_free(s);
		pc_graph_free(g);
	}
}

/* A DequantizeLinear model of x + DQ(w) with one thing wrong; the error
 * names what (where) and says what (text). */
struct bad_case {
	const char *what;
	int zp_type;	 /* 3 int8, 2 uint8, 1 float */
	int64_t axis;
	int scale_len;	 /* 0: a scalar */
	int add_reads_w; /* a second, non-DQ read of the int8 initializer */
	size_t raw_len;	 /* 0: as the shape says */
	const char *where, *text;
	int w_type; /* 6: the DequantizeLinear reads an int32 tensor; 0: int8 */
};

TEST(qdq_bad_inputs)
{
	static const uint8_t w[6] = {1, 2, 3, 4, 5, 6}, zp[6] = {0};
	static const float s[6] = {1, 1, 1, 1, 1, 1}, zf[6] = {0};
	static const int32_t w32[6] = {1, 2, 3, 4, 5, 6};
	static const struct bad_case cases[] = {
		{"uint8 zero point of an int8 x", 2, 1, 3, 0, 0, "node 'dq' (DequantizeLinear)", "input 2 (zero point) is uint8", 0},
		{"float zero point", 1, 1, 3, 0, 0, "node 'dq' (DequantizeLinear)", "input 2 (zero point) is float", 0},
		{"axis out of range", 3, 2, 3, 0, 0, "node 'dq' (DequantizeLinear)", "axis 2 is out of range", 0},
		{"negative axis out of range", 3, -3, 3, 0, 0, "node 'dq' (DequantizeLinear)", "axis -3 is out of range", 0},
		{"scale of the wrong length", 3, 1, 2, 0, 0, "node 'dq' (DequantizeLinear)",
		 "input 1 (scale) has 2 values; axis 1 of input 0 has 3", 0},
		{"int8 read by Add", 3, 1, 3, 1, 0, "node 'add' (Add)", "int8 tensor 'w'", 0},
		{"raw_data too short", 3, 1, 3, 0, 5, "w", "raw_data has 5 bytes", 0},
		{"int32 x", 3, 1, 3, 0, 0, "node 'dq' (DequantizeLinear)", "input 0 is an integer tensor", 6},
	};
	int64_t dx[2] = {-1, 3}, dw[2] = {2, 3};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct bad_case *bc = &cases[c];
		const char *dq_in[] = {"w", "s", "zp", NULL}, *dq_out[] = {"wd", NULL};
		const char *add_in[] = {"x", bc->add_reads_w ? "w" : "wd", NULL}, *add_out[] = {"y", NULL};
		int64_t ds[1] = {bc->scale_len};
		struct pc_error err = {0};
		struct pc_graph *g;
		struct ob_model b;
		Onnx__TensorProto *tw;

		ob_init(&b, 13, "x", 2, dx, "y");
		if (bc->w_type == 6) {
			tw = ob_float(&b, "w", 2, dw, (const float *)(const void *)w32);
			tw->data_type = 6;
		} else {
			tw = ob_int8(&b, "w", 3, 2, dw, w);
		}
		if (bc->raw_len)
			tw->raw_data.len = bc->raw_len;
		ob_float(&b, "s", bc->scale_len ? 1 : 0, ds, s);
		if (bc->zp_type == 1)
			ob_float(&b, "zp", bc->scale_len ? 1 : 0, ds, zf);
		else
			ob_int8(&b, "zp", bc->zp_type, bc->scale_len ? 1 : 0, ds, zp);
		ob_attr_int(ob_node(&b, "DequantizeLinear", "dq", dq_in, dq_out), &b, "axis", bc->axis);
		ob_node(&b, "Add", "add", add_in, add_out);
		g = load_built(&b, &err);
		CHECK_MSG(!g, "%s: loaded", bc->what);
		pc_graph_free(g);
		CHECK_MSG(strstr(err.where, bc->where) != NULL, "%s: where '%s', want '%s'", bc->what, err.where, bc->where);
		CHECK_MSG(strstr(err.text, bc->text) != NULL, "%s: '%s', want '%s'", bc->what, err.text, bc->text);
	}
}

/* int32_data holds int8 and uint8 values too; one outside the type is a
 * malformed file. */
TEST(qdq_int32_data_form)
{
	static const float s = 2.0f;
	int32_t vals[3] = {-128, 0, 127};
	int64_t dx[2] = {-1, 3}, dw[1] = {3}, none[1] = {0};
	const char *dq_in[] = {"w", "s", NULL}, *dq_out[] = {"wd", NULL};
	const char *add_in[] = {"x", "wd", NULL}, *add_out[] = {"y", NULL};
	static const float zero[3] = {0}, want[3] = {-256.0f, 0.0f, 254.0f};
	float got[3];
	struct ob_model b;
	struct pc_error err = {0};
	struct pc_graph *g;
	Onnx__TensorProto *tw;

	for (int bad = 0; bad < 2; bad++) {
		ob_init(&b, 13, "x", 2, dx, "y");
		tw = ob_float(&b, "w", 1, dw, NULL);
		tw->data_type = 3;
		tw->has_raw_data = 0;
		tw->raw_data.len = 0;
		tw->n_int32_data = 3;
		tw->int32_data = vals;
		ob_float(&b, "s", 0, none, &s);
		ob_node(&b, "DequantizeLinear", "dq", dq_in, dq_out);
		ob_node(&b, "Add", "add", add_in, add_out);
		vals[2] = bad ? 128 : 127;
		if (!bad) {
			if (run_one(t, &b, zero, 3, got, 3))
				for (int i = 0; i < 3; i++)
					CHECK(got[i] == want[i]);
			continue;
		}
		g = load_built(&b, &err);
		CHECK(!g);
		pc_graph_free(g);
		CHECK(!strcmp(err.where, "w") && strstr(err.text, "int32_data[2] = 128 is outside int8"));
	}
}

/* Loading the QDQ model and a gradient plan on it, with each allocation
 * failed in turn: PC_ERR_NOMEM and nothing leaked. */
static int load_and_plan(void *arg, struct pc_error *err)
{
	struct pc_graph *g = NULL;
	struct pc_plan *p;
	int rc;

	if ((rc = pc_onnx_load_file(arg, &g, err)))
		return rc;
	p = pc_plan_new(g, 2, PC_PLAN_GRAD, err);
	rc = p ? PC_OK : err->code;
	pc_plan_free(p);
	pc_graph_free(g);
	return rc;
}

TEST(qdq_allocation_failures)
{
	char path[512];

	fixture(path, sizeof(path), "qdq_cnn_op13.onnx");
	CHECK(af_sweep(t, "qdq_cnn_op13.onnx", load_and_plan, path) > 0);
}

/* Saving weights (a hardened model) writes a QDQ weight back as the integer
 * type it was, rounded half to even and saturated; the file loads again
 * with the same stored integers. */
TEST(qdq_save_weights_roundtrip)
{
	struct pc_graph *g = load_model(t, "qdq_cnn_op13.onnx"), *back = NULL;
	struct pc_error err = {0};
	unsigned char *src = NULL, *out = NULL;
	size_t len, out_len;
	float *w = NULL;
	const struct pc_param *pp;
	char path[512], msg[800];
	int k;

	if (!g)
		return;
	REQUIRE(pc_sys_read_file(fixture(path, sizeof(path), "qdq_cnn_op13.onnx"), PC_ONNX_MAX_BYTES, &src, &len,
				 &err) == 0);
	w = malloc((size_t)pc_graph_param_count(g) * sizeof(float));
	REQUIRE(w);
	memcpy(w, pc_graph_params(g), (size_t)pc_graph_param_count(g) * sizeof(float));
	pp = pc_graph_param(g, pc_graph_find_param(g, "w2_q"));
	w[pp->offset + 0] = 2.5f;    /* half to even: 2 */
	w[pp->offset + 1] = -3.6f;   /* -4 */
	w[pp->offset + 2] = 1000.0f; /* saturates at 127 */
	w[pp->offset + 3] = -1000.0f;
	if (pc_onnx_save_weights_buffer(src, len, g, w, NULL, &out, &out_len, &err) ||
	    pc_onnx_load_buffer(out, out_len, &back, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		goto done;
	}
	k = pc_graph_find_param(back, "w2_q");
	REQUIRE(k >= 0);
	CHECK_INT(pc_graph_param(back, k)->stored, PC_STORED_INT8);
	CHECK(pc_graph_params(back)[pc_graph_param(back, k)->offset + 0] == 2.0f);
	CHECK(pc_graph_params(back)[pc_graph_param(back, k)->offset + 1] == -4.0f);
	CHECK(pc_graph_params(back)[pc_graph_param(back, k)->offset + 2] == 127.0f);
	CHECK(pc_graph_params(back)[pc_graph_param(back, k)->offset + 3] == -128.0f);
	for (int64_t j = 4; j < pp->count; j++)
		CHECK(pc_graph_params(back)[pc_graph_param(back, k)->offset + j] == w[pp->offset + j]);
done:
	free(w);
	free(src);
	free(out);
	pc_graph_free(back);
	pc_graph_free(g);
}

/* The bit-fault study on the QDQ model: the int8 format's clean numbers are
 * the model's own (nothing re-quantized), and a flip of bit 7 of the Gemm
 * weight's first code, evaluated by the study (which resumes from the
 * layer it changes), gives the reference's loss. */
TEST(qdq_fstudy_int8)
{
	json_t *ref = load_json(t, "qdq_cnn.json");
	struct pc_graph *g = load_model(t, "qdq_cnn_op13.onnx");
	struct pc_dataset *d = NULL;
	struct pc_runner *r = NULL;
	struct pc_fstudy *s = NULL;
	struct pc_error err = {0};
	struct pc_faults_bitref flip;
	struct pc_eval ev;
	const json_t *jf;
	char px[512], py[512], msg[800];

	if (!ref || !g)
		goto done;
	if (pc_dataset_load(fixture(px, sizeof(px), "qdq_inputs_f32.npy"), fixture(py, sizeof(py), "qdq_labels_i64.npy"),
			    NULL, 0, &d, &err) ||
	    !(r = pc_runner_new(g, 4, 1, 0, &err)) ||
	    pc_fstudy_new(r, d, 0, PC_FAULTS_INT8, PC_FAULTS_PER_CHANNEL, NULL, NULL, &s, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		goto done;
	}
	CHECK_CLOSE(pc_fstudy_clean(s)->loss, json_number_value(json_object_get(ref, "loss")), 1e-5, 0);
	jf = json_object_get(ref, "flip");
	flip.elem = pc_graph_param(g, pc_graph_find_param(g, "w2_q"))->offset +
		    json_integer_value(json_object_get(jf, "index"));
	flip.bit = (int)json_integer_value(json_object_get(jf, "bit"));
	REQUIRE(pc_fstudy_eval_flips(s, &flip, 1, &ev, &err) == 0);
	CHECK_CLOSE(ev.loss, json_number_value(json_object_get(jf, "loss")), 1e-5, 0);
	/* a real change of the loss, and the store restored after it */
	CHECK(fabs(ev.loss - pc_fstudy_clean(s)->loss) > 1e-2);
	CHECK(pc_faults_value(pc_fstudy_store(s), flip.elem) == (float)json_number_value(json_object_get(jf, "before")));
done:
	pc_fstudy_free(s);
	pc_runner_free(r);
	pc_dataset_free(d);
	pc_graph_free(g);
	json_decref(ref);
}

/* PyTorch's exporter: a fake-quantized Linear whose zero points are
 * Constant nodes of uint8/int8 values, its float weight passing through
 * QuantizeLinear -> DequantizeLinear (a float parameter, straight-through
 * gradient), against the module's own outputs and gradients. */
TEST(qdq_torch_export)
{
	struct pc_error err = {0};
	struct pc_plan *p = NULL;
	/* input, output, r, input gradient: freed together */
	float *v[4] = {NULL, NULL, NULL, NULL}, *x, *out, *r, *dx;
	int64_t nx, nout, nr, ndx;
	const char *key;
	json_t *val, *ref;
	struct pc_graph *g;

	ref = load_json(t, "qdq_torch.json");
	g = load_model(t, "qdq_torch_op13.onnx");
	if (!ref || !g)
		goto done;
	json_object_foreach(json_object_get(ref, "ops"), key, val)
	{
		int count = 0;

		for (int k = 0; k < pc_graph_node_count(g); k++)
			count += !strcmp(pc_graph_node_op(g, k), key);
		/* the Constant nodes may be folded into the values they make */
		if (strcmp(key, "Constant") != 0)
			CHECK_MSG(count == json_integer_value(val), "%d %s nodes, the export has %lld", count, key,
				  (long long)json_integer_value(val));
	}
	CHECK_INT(pc_graph_param_tensors(g), 2);
	REQUIRE((p = pc_plan_new(g, 4, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err)) != NULL);
	x = v[0] = floats_of(json_object_get(ref, "input"), &nx);
	out = v[1] = floats_of(json_object_get(ref, "output"), &nout);
	r = v[2] = floats_of(json_object_get(ref, "r"), &nr);
	dx = v[3] = floats_of(json_object_get(ref, "input_grad"), &ndx);
	REQUIRE(x && out && r && dx && nx == 4 * pc_plan_sample_numel(p) && nout == 4 * pc_plan_classes(p) &&
		nr == nout && ndx == nx);
	memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
	pc_plan_forward(p);
	check_close(t, "output", pc_plan_output(p), out, nout, 1e-5, 0);
	memcpy(pc_plan_output_grad(p), r, (size_t)nr * sizeof(float));
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	check_close(t, "input gradient", pc_plan_input_grad(p), dx, ndx, 1e-5, 1e-5);
	/* the saturated input gets none */
	CHECK(pc_plan_input_grad(p)[0] == 0.0f);
	json_object_foreach(json_object_get(ref, "grads"), key, val)
	{
		int k = pc_graph_find_param(g, key);
		int64_t n;
		float *want = floats_of(val, &n);

		CHECK_MSG(k >= 0 && pc_graph_param(g, k)->count == n && !pc_graph_param(g, k)->stored, "%s", key);
		if (k >= 0 && want && pc_graph_param(g, k)->count == n)
			check_close(t, key, pc_plan_weight_grad(p) + pc_graph_param(g, k)->offset, want, n, 1e-5, 1e-5);
		free(want);
	}
done:
	for (int i = 0; i < 4; i++)
		free(v[i]);
	pc_plan_free(p);
	pc_graph_free(g);
	json_decref(ref);
}

/* A QDQ weight's layer is the Conv, Gemm or MatMul that reads its
 * DequantizeLinear, not the DequantizeLinear: its int8 weight and its float
 * bias are one group, named as the float model's. */
TEST(qdq_layer_groups)
{
	static const struct {
		const char *model;
		const char *want; /* group: its tensors, ";" between groups */
	} rows[] = {
		{"qdq_cnn_op13.onnx", "conv: w1_q b1; fc: w2_q b2"},
		{"qdq_float_op13.onnx", "conv: w1 b1; fc: w2 b2"},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct pc_graph *g = load_model(t, rows[i].model);
		struct pc_layer_groups lg = {0};
		struct pc_error err = {0};
		char got[512] = "";
		size_t at = 0;

		if (!g)
			continue;
		if (!pc_layer_groups_build(g, &lg, &err)) {
			for (int k = 0; k < lg.n && at < sizeof(got); k++) {
				at += (size_t)snprintf(got + at, sizeof(got) - at, "%s%s:", k ? "; " : "", lg.g[k].name);
				for (int j = 0; j < lg.g[k].n_params && at < sizeof(got); j++)
					at += (size_t)snprintf(got + at, sizeof(got) - at, " %s",
							       pc_graph_param(g, lg.g[k].params[j])->name);
			}
			CHECK_MSG(!strcmp(got, rows[i].want), "%s: groups \"%s\", want \"%s\"", rows[i].model, got,
				  rows[i].want);
		} else
			CHECK_MSG(0, "%s: %s", rows[i].model, err.text);
		pc_layer_groups_free(&lg);
		pc_graph_free(g);
	}
}
