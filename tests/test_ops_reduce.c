/* Tests of the reductions (reduce.c), LayerNormalization (norm.c), Softmax
 * and LogSoftmax on any axis (activation.c) and N-D MatMul (gemm.c).
 *
 * Forward values are compared with PyTorch's: tests/reference/
 * make_reduce_fixtures.py wrote them to fixtures/reduce_ops.json, one case
 * per op configuration. Inputs are not stored: both sides compute them with
 * pat(), whose values are multiples of 1/16 and so exact in float32. Each
 * case is then checked by finite differences (gc_check) on its input and
 * every weight. The graphs have a fixed batch of 2, and end in
 * Reshape([1, -1]) + Z (zeros of shape [2, 1], or [2, 2] for a single
 * value), so that any result, even one reduced over the batch, becomes the
 * [N, classes] output a plan needs; each output row repeats the result.
 *
 * Last, a LayerNorm + attention block exported by torch at opsets 14 and 17
 * (fixtures/ln_attn_op*.onnx) is loaded and compared with torch: output,
 * input gradient, weight gradient norm. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

#define FIXTURES "tests/reference/fixtures"
#define BATCH 2
#define MAXV 1024 /* floats per tensor in these cases */

/* The fixture script's pat(): exact in float32. */
static float pat(int64_t i, int64_t seed)
{
	return (float)((i * 7919 + seed * 104729) % 61 - 30) / 16.0f;
}

static void fill(float *x, int64_t n, int64_t seed, float scale, float offset)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = pat(i, seed) * scale + offset;
}

static json_t *load_json(struct pc_test *t, const char *file)
{
	char path[512];
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s", pc_test_root(), file);
	j = json_load_file(path, 0, &jerr);
	if (!j)
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
	return j;
}

static struct pc_shape json_shape(const json_t *a)
{
	struct pc_shape s = {.ndim = (int)json_array_size(a)};

	for (int i = 0; i < s.ndim && i < PC_MAX_DIMS; i++)
		s.dim[i] = json_integer_value(json_array_get(a, (size_t)i));
	return s;
}

static int64_t count_of(const struct pc_shape *s)
{
	int64_t n = 1;

	for (int i = 0; i < s->ndim; i++)
		n *= s->dim[i];
	return n;
}

/* An int field, or def when absent or null. */
static int64_t jint(const json_t *c, const char *key, int64_t def)
{
	const json_t *v = json_object_get(c, key);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

static double jnum(const json_t *c, const char *key, double def)
{
	const json_t *v = json_object_get(c, key);

	return json_is_number(v) ? json_number_value(v) : def;
}

/* Largest disagreement seen, per family, printed at the end of a test. */
struct worst {
	double abs, rel;
};

static void compare(struct pc_test *t, const char *what, const float *got, const json_t *want, int64_t n,
		    int64_t period, double atol, double rtol, struct worst *w)
{
	int bad = 0;

	for (int64_t i = 0; i < n; i++) {
		double b = json_number_value(json_array_get(want, (size_t)(i % period))), a = got[i];
		double e = fabs(a - b);
		if (e > w->abs)
			w->abs = e;
		if (fabs(b) > 1e-3 && e / fabs(b) > w->rel)
			w->rel = e / fabs(b);
		if (!(e <= atol + rtol * fabs(b)) && bad++ < 5)
			pc_test_fail(t, __FILE__, __LINE__, "%s: [%lld] = %.9g, torch %.9g", what, (long long)i, a, b);
	}
}

/* --- graphs with the common tail ------------------------------------------------------ */

struct tg {
	struct pc_graph *g;
	struct pc_error err;
	int ok;
};

static void tg_begin(struct tg *b, int opset, const struct pc_shape *x)
{
	memset(b, 0, sizeof(*b));
	b->g = pc_graph_new(opset, &b->err);
	b->ok = b->g && !pc_graph_add_input(b->g, "x", x, &b->err);
}

static void tg_float(struct tg *b, const char *name, const struct pc_shape *s, const float *data)
{
	if (b->ok)
		b->ok = !pc_graph_add_float(b->g, name, s, data, &b->err);
}

static void tg_int64(struct tg *b, const char *name, const struct pc_shape *s, const int64_t *data)
{
	if (b->ok)
		b->ok = !pc_graph_add_int64(b->g, name, s, data, &b->err);
}

static void tg_node(struct tg *b, const char *op, const char *name, int n_in, const char *const *in, int n_out,
		    const char *const *out, int n_attr, const struct pc_attr *attr)
{
	if (b->ok)
		b->ok = !pc_graph_add_node(b->g, op, name, n_in, in, n_out, out, n_attr, attr, &b->err);
}

/* Reshape y to [1, -1] and add zeros Z of [BATCH, 1] (or [BATCH, 2] when y
 * has one value); finish. NULL on error, reported as `what`. */
static struct pc_graph *tg_finish(struct pc_test *t, struct tg *b, const char *y, int64_t y_numel,
				  const char *what)
{
	static const int64_t flat[2] = {1, -1};
	static const float zeros[2 * BATCH] = {0};
	struct pc_shape fs = {.ndim = 1, .dim = {2}}, zs = {.ndim = 2, .dim = {BATCH, y_numel == 1 ? 2 : 1}};
	const char *rin[2] = {y, "tail_shape"}, *rout[1] = {"tail_flat"};
	const char *ain[2] = {"tail_flat", "Z"}, *aout[1] = {"out"};
	char msg[800];

	tg_int64(b, "tail_shape", &fs, flat);
	tg_float(b, "Z", &zs, zeros);
	tg_node(b, "Reshape", "tail_reshape", 2, rin, 1, rout, 0, NULL);
	tg_node(b, "Add", "tail_add", 2, ain, 1, aout, 0, NULL);
	if (b->ok)
		b->ok = !pc_graph_add_output(b->g, "out", &b->err) && !pc_graph_finish(b->g, &b->err);
	if (!b->ok) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what, pc_error_format(&b->err, msg, sizeof(msg)));
		pc_graph_free(b->g);
		return NULL;
	}
	return b->g;
}

/* Forward at BATCH with the case's input; checks that each output row is
 * the torch result (n values). Returns the plan for more checks, or NULL. */
static struct pc_plan *run_case(struct pc_test *t, const struct pc_graph *g, const float *x, const json_t *want,
				int64_t n, double atol, double rtol, const char *what, struct worst *w)
{
	struct pc_error err = {0};
	struct pc_plan *p = pc_plan_new(g, BATCH, 0, &err);
	char msg[800];
	int64_t classes;

	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: plan: %s", what, pc_error_format(&err, msg, sizeof(msg)));
		return NULL;
	}
	memcpy(pc_plan_input(p), x, (size_t)pc_plan_sample_numel(p) * BATCH * sizeof(float));
	pc_plan_forward(p);
	classes = pc_plan_classes(p);
	CHECK_MSG(classes == (n == 1 ? 2 : n), "%s: %lld classes for %lld values", what, (long long)classes,
		  (long long)n);
	if (classes == (n == 1 ? 2 : n))
		compare(t, what, pc_plan_output(p), want, BATCH * classes, n, atol, rtol, w);
	return p;
}

static const struct gc_opts GC_BASE = {
	.batch = BATCH, .eps = 1e-3, .atol = 1e-3, .rtol = 1e-2, .samples = 64, .seed = 5, .check_input = 1};

static void grad_check(struct pc_test *t, const struct pc_graph *g, const char *what, uint64_t seed)
{
	struct gc_opts o = GC_BASE;

	o.seed = seed;
	CHECK_MSG(gc_check(t, g, &o) > 0, "%s: nothing checked", what);
}

/* --- reductions ------------------------------------------------------------------------ */

/* A graph for one reduce case of the fixture. */
static struct pc_graph *reduce_graph(struct pc_test *t, const json_t *c, const char *what)
{
	const json_t *axes = json_object_get(c, "axes");
	struct pc_shape xs = json_shape(json_object_get(c, "shape"));
	struct pc_shape ys = json_shape(json_object_get(c, "out_shape"));
	int axes_input = json_is_true(json_object_get(c, "input"));
	int64_t av[PC_MAX_DIMS];
	struct pc_attr attr[3];
	int n_attr = 0, n_in = 1;
	const char *in[2] = {"x", "axes"}, *out[1] = {"y"};
	struct tg b;

	tg_begin(&b, (int)jint(c, "opset", 13), &xs);
	for (size_t i = 0; i < json_array_size(axes) && i < PC_MAX_DIMS; i++)
		av[i] = json_integer_value(json_array_get(axes, i));
	if (json_is_array(axes)) {
		if (axes_input) {
			struct pc_shape as = {.ndim = 1, .dim = {(int64_t)json_array_size(axes)}};
			tg_int64(&b, "axes", &as, av);
			n_in = 2;
		} else {
			attr[n_attr++] = (struct pc_attr){
				.name = "axes", .type = PC_ATTR_INTS, .n = (int)json_array_size(axes), .ints = av};
		}
	}
	if (json_is_integer(json_object_get(c, "keepdims")))
		attr[n_attr++] = (struct pc_attr){.name = "keepdims", .type = PC_ATTR_INT, .i = jint(c, "keepdims", 1)};
	if (json_is_integer(json_object_get(c, "noop")))
		attr[n_attr++] =
			(struct pc_attr){.name = "noop_with_empty_axes", .type = PC_ATTR_INT, .i = jint(c, "noop", 0)};
	tg_node(&b, json_string_value(json_object_get(c, "op")), "red", n_in, in, 1, out, n_attr, attr);
	return tg_finish(t, &b, "y", count_of(&ys), what);
}

TEST(reduce_values_vs_torch_and_grad)
{
	json_t *j = load_json(t, "reduce_ops.json"), *cases;
	struct worst w = {0, 0};
	size_t k;
	int ran = 0;

	if (!j)
		return;
	cases = json_object_get(j, "reduce");
	for (k = 0; k < json_array_size(cases); k++) {
		const json_t *c = json_array_get(cases, k);
		struct pc_shape xs = json_shape(json_object_get(c, "shape"));
		struct pc_shape ys = json_shape(json_object_get(c, "out_shape"));
		const json_t *want = json_object_get(c, "expected");
		float x[MAXV];
		struct pc_graph *g;
		struct pc_plan *p;
		char what[160];

		snprintf(what, sizeof(what), "case %zu (%s opset %lld)", k, json_string_value(json_object_get(c, "op")),
			 (long long)jint(c, "opset", 0));
		REQUIRE(count_of(&xs) <= MAXV && (int64_t)json_array_size(want) == count_of(&ys));
		fill(x, count_of(&xs), jint(c, "seed", 0), 1.0f, 0.0f);
		g = reduce_graph(t, c, what);
		if (!g)
			continue;
		p = run_case(t, g, x, want, count_of(&ys), 1e-6, 1e-6, what, &w);
		pc_plan_free(p);
		grad_check(t, g, what, 30 + k);
		pc_graph_free(g);
		ran++;
	}
	CHECK(ran == 16);
	printf("  reductions: largest disagreement with torch %.3g (relative %.3g)\n", w.abs, w.rel);
	json_decref(j);
}

/* ReduceMax/ReduceMin pass the output gradient to the elements equal to the
 * result, shared evenly among ties, as torch.amax/amin do: torch gives
 * amax([[1,3,3,2],[5,5,5,0]], dim=1) the gradient [[0,.5,.5,0],[1/3,1/3,1/3,0]]
 * and amin over the same rows [[1,0,0,0],[0,0,0,1]]. */
TEST(reduce_max_min_ties_split_like_torch)
{
	static const float x[8] = {1, 3, 3, 2, 5, 5, 5, 0};
	static const float want_max[8] = {0, 0.5f, 0.5f, 0, 1.0f / 3, 1.0f / 3, 1.0f / 3, 0};
	static const float want_min[8] = {1, 0, 0, 0, 0, 0, 0, 1};
	static const char *const ops[2] = {"ReduceMax", "ReduceMin"};
	const int64_t ax[1] = {1};

	for (int o = 0; o < 2; o++) {
		struct pc_shape xs = {.ndim = 2, .dim = {BATCH, 4}};
		struct pc_attr attr[2] = {{.name = "axes", .type = PC_ATTR_INTS, .n = 1, .ints = ax},
					  {.name = "keepdims", .type = PC_ATTR_INT, .i = 1}};
		const char *in[1] = {"x"}, *out[1] = {"y"};
		const float *want = o ? want_min : want_max;
		struct pc_error err = {0};
		struct pc_graph *g;
		struct pc_plan *p;
		struct tg b;
		float *og;

		tg_begin(&b, 13, &xs);
		tg_node(&b, ops[o], "red", 1, in, 1, out, 2, attr);
		g = tg_finish(t, &b, "y", 2, ops[o]);
		REQUIRE(g);
		p = pc_plan_new(g, BATCH, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
		REQUIRE(p);
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		CHECK_CLOSE(pc_plan_output(p)[0], o ? 1.0f : 3.0f, 0, 0);
		CHECK_CLOSE(pc_plan_output(p)[1], o ? 0.0f : 5.0f, 0, 0);
		/* out is [2, 2] = y^T repeated: d out[0][j] / d y[j] = 1 */
		og = pc_plan_output_grad(p);
		og[0] = 1.0f;
		og[1] = 1.0f;
		og[2] = og[3] = 0.0f;
		pc_plan_backward(p);
		for (int i = 0; i < 8; i++)
			CHECK_MSG(fabsf(pc_plan_input_grad(p)[i] - want[i]) <= 1e-7f, "%s: dx[%d] = %.9g, torch %.9g",
				  ops[o], i, (double)pc_plan_input_grad(p)[i], (double)want[i]);
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

/* NaN wins a max or a min (torch.amax/amin propagate it) and passes no
 * gradient, since nothing equals it. */
TEST(reduce_max_propagates_nan)
{
	const float x[8] = {1, NAN, 3, 2, 5, 4, 5, 0};
	struct pc_shape xs = {.ndim = 2, .dim = {BATCH, 4}};
	const int64_t ax[1] = {-1};
	struct pc_attr attr[1] = {{.name = "axes", .type = PC_ATTR_INTS, .n = 1, .ints = ax}};
	const char *in[1] = {"x"}, *out[1] = {"y"};
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_plan *p;
	struct tg b;

	for (int o = 0; o < 2; o++) {
		tg_begin(&b, 13, &xs);
		tg_node(&b, o ? "ReduceMin" : "ReduceMax", "red", 1, in, 1, out, 1, attr);
		g = tg_finish(t, &b, "y", 2, "nan");
		REQUIRE(g);
		p = pc_plan_new(g, BATCH, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
		REQUIRE(p);
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		CHECK(isnan(pc_plan_output(p)[0]));
		CHECK_CLOSE(pc_plan_output(p)[1], o ? 0.0f : 5.0f, 0, 0);
		for (int i = 0; i < 4; i++)
			pc_plan_output_grad(p)[i] = 1.0f;
		pc_plan_backward(p);
		/* dy = 2 per row (two output rows repeat y); row 1's result is
		 * a tie of two 5s for the max, the single 0 for the min */
		for (int i = 0; i < 4; i++)
			CHECK_CLOSE(pc_plan_input_grad(p)[i], 0.0, 0, 0);
		for (int i = 4; i < 8; i++)
			CHECK_CLOSE(pc_plan_input_grad(p)[i], o ? (i == 7 ? 2.0 : 0.0) : (i == 4 || i == 6 ? 1.0 : 0.0), 0, 0);
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

/* A reduce graph that must fail at finish with `code`, naming the node. */
static void reduce_rejects(struct pc_test *t, const char *op, int opset, int n_attr, const struct pc_attr *attr,
			   const int64_t *axes_in, int n_axes_in, enum pc_status code, const char *what)
{
	struct pc_shape xs = {.ndim = 3, .dim = {BATCH, 3, 4}};
	const char *in[2] = {"x", "axes"}, *out[1] = {"y"};
	struct tg b;
	char msg[800];

	tg_begin(&b, opset, &xs);
	if (axes_in) {
		struct pc_shape as = {.ndim = 1, .dim = {n_axes_in}};
		tg_int64(&b, "axes", &as, axes_in);
	}
	tg_node(&b, op, "bad_reduce", axes_in ? 2 : 1, in, 1, out, n_attr, attr);
	if (b.ok) {
		static const int64_t flat[2] = {BATCH, -1};
		struct pc_shape fs = {.ndim = 1, .dim = {2}};
		const char *rin[2] = {"y", "s"}, *rout[1] = {"out"};
		tg_int64(&b, "s", &fs, flat);
		tg_node(&b, "Reshape", "r", 2, rin, 1, rout, 0, NULL);
		b.ok = !pc_graph_add_output(b.g, "out", &b.err) && !pc_graph_finish(b.g, &b.err);
	}
	pc_error_format(&b.err, msg, sizeof(msg));
	CHECK_MSG(!b.ok, "%s: the graph was accepted", what);
	CHECK_MSG(b.err.code == code, "%s: expected %s, got %s: %s", what, pc_status_name(code),
		  pc_status_name(b.err.code), msg);
	CHECK_MSG(strstr(b.err.where, "bad_reduce") != NULL, "%s: '%s' does not name the node", what, msg);
	pc_graph_free(b.g);
}

TEST(reduce_rejects_bad_axes_and_attributes)
{
	const int64_t out_of_range[1] = {3}, twice[2] = {1, -2}, one[1] = {1}, too_many[4] = {0, 1, 2, 0};
	struct pc_attr a_range = {.name = "axes", .type = PC_ATTR_INTS, .n = 1, .ints = out_of_range};
	struct pc_attr a_twice = {.name = "axes", .type = PC_ATTR_INTS, .n = 2, .ints = twice};
	struct pc_attr a_one = {.name = "axes", .type = PC_ATTR_INTS, .n = 1, .ints = one};
	struct pc_attr a_many = {.name = "axes", .type = PC_ATTR_INTS, .n = 4, .ints = too_many};
	struct pc_attr keep2 = {.name = "keepdims", .type = PC_ATTR_INT, .i = 2};
	struct pc_attr noop = {.name = "noop_with_empty_axes", .type = PC_ATTR_INT, .i = 1};
	struct pc_attr noop3 = {.name = "noop_with_empty_axes", .type = PC_ATTR_INT, .i = 3};
	struct pc_attr unknown = {.name = "select_last_index", .type = PC_ATTR_INT, .i = 1};

	reduce_rejects(t, "ReduceMean", 13, 1, &a_range, NULL, 0, PC_ERR_FORMAT, "axis 3 of rank 3");
	reduce_rejects(t, "ReduceMax", 13, 1, &a_twice, NULL, 0, PC_ERR_FORMAT, "axis listed twice");
	reduce_rejects(t, "ReduceMin", 13, 1, &a_many, NULL, 0, PC_ERR_FORMAT, "more axes than the rank");
	reduce_rejects(t, "ReduceSum", 13, 0, NULL, out_of_range, 1, PC_ERR_FORMAT, "axes input out of range");
	reduce_rejects(t, "ReduceSum", 13, 0, NULL, twice, 2, PC_ERR_FORMAT, "axes input listed twice");
	reduce_rejects(t, "ReduceSum", 13, 1, &a_one, NULL, 0, PC_ERR_FORMAT, "axes attribute at opset 13");
	reduce_rejects(t, "ReduceSum", 11, 0, NULL, one, 1, PC_ERR_FORMAT, "axes input at opset 11");
	reduce_rejects(t, "ReduceMean", 13, 0, NULL, one, 1, PC_ERR_FORMAT, "ReduceMean axes input at opset 13");
	reduce_rejects(t, "ReduceMean", 13, 1, &noop, NULL, 0, PC_ERR_FORMAT, "noop_with_empty_axes before 18");
	reduce_rejects(t, "ReduceSum", 13, 1, &noop3, NULL, 0, PC_ERR_UNSUPPORTED, "noop_with_empty_axes = 3");
	reduce_rejects(t, "ReduceMean", 13, 1, &keep2, NULL, 0, PC_ERR_UNSUPPORTED, "keepdims = 2");
	reduce_rejects(t, "ReduceMax", 13, 1, &unknown, NULL, 0, PC_ERR_UNSUPPORTED, "unknown attribute");
}

/* The axes input must be known before the run: a float activation there
 * is refused at load. */
TEST(reduce_axes_input_must_be_static_int64)
{
	struct pc_shape xs = {.ndim = 2, .dim = {BATCH, 4}};
	const char *in[2] = {"x", "x"}, *out[1] = {"out"};
	struct tg b;
	char msg[800];

	tg_begin(&b, 13, &xs);
	tg_node(&b, "ReduceSum", "bad_reduce", 2, in, 1, out, 0, NULL);
	b.ok = b.ok && !pc_graph_add_output(b.g, "out", &b.err) && !pc_graph_finish(b.g, &b.err);
	pc_error_format(&b.err, msg, sizeof(msg));
	CHECK(!b.ok);
	CHECK_MSG(b.err.code == PC_ERR_UNSUPPORTED, "%s", msg);
	CHECK_MSG(strstr(msg, "int64") != NULL && strstr(b.err.where, "bad_reduce"), "%s", msg);
	pc_graph_free(b.g);
}

/* int64 reductions fold at load when their input is a constant: a Reshape
 * target computed by ReduceSum / ReduceMax / ReduceMin of an int64
 * initializer over axis 0 must be [0, 6], and x [N, 2, 3] becomes [N, 6]. */
TEST(reduce_int64_folds_a_shape)
{
	static const int64_t sum_in[4] = {0, 1, 0, 5}, max_in[4] = {0, 2, -3, 6}, min_in[4] = {0, 6, 4, 9};
	static const char *const ops[3] = {"ReduceSum", "ReduceMax", "ReduceMin"};
	const int64_t *data[3] = {sum_in, max_in, min_in}, ax0[1] = {0};

	for (int o = 0; o < 3; o++) {
		struct pc_shape xs = {.ndim = 3, .dim = {-1, 2, 3}}, is = {.ndim = 2, .dim = {2, 2}};
		struct pc_shape as = {.ndim = 1, .dim = {1}};
		int input_form = o == 0; /* ReduceSum at opset 13 takes axes as input 1 */
		struct pc_attr attr[2] = {{.name = "keepdims", .type = PC_ATTR_INT, .i = 0},
					  {.name = "axes", .type = PC_ATTR_INTS, .n = 1, .ints = ax0}};
		const char *rin[2] = {"I", "A"}, *rout[1] = {"S"}, *min[2] = {"x", "S"}, *mout[1] = {"y"};
		struct pc_error err = {0};
		struct pc_plan *p;
		struct tg b;
		char msg[800];

		tg_begin(&b, 13, &xs);
		tg_int64(&b, "I", &is, data[o]);
		if (input_form)
			tg_int64(&b, "A", &as, ax0);
		tg_node(&b, ops[o], "fold", input_form ? 2 : 1, rin, 1, rout, input_form ? 1 : 2, attr);
		tg_node(&b, "Reshape", "reshape", 2, min, 1, mout, 0, NULL);
		b.ok = b.ok && !pc_graph_add_output(b.g, "y", &b.err) && !pc_graph_finish(b.g, &b.err);
		if (!b.ok) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", ops[o], pc_error_format(&b.err, msg, sizeof(msg)));
			pc_graph_free(b.g);
			continue;
		}
		p = pc_plan_new(b.g, 3, 0, &err);
		REQUIRE(p);
		CHECK_INT(pc_plan_classes(p), 6);
		{
			struct pc_plan_value st;
			REQUIRE((pc_plan_value(p, "S", &st, NULL) == PC_OK));
			CHECK(st.is_static && st.dtype == PC_DTYPE_INT64 && st.numel == 2);
			CHECK(st.ival[0] == 0 && st.ival[1] == 6);
		}
		pc_plan_free(p);
		pc_graph_free(b.g);
	}
}

/* A run-time int64 tensor (token ids) reduced at run time: the results are
 * read inside the plan, since a float output would need a cast of run-time
 * int64 that the plan does not do (yet). The output is a parameter's own
 * sum, so the graph is valid; the ReduceMax/ReduceSum nodes run anyway. */
TEST(reduce_int64_at_run_time)
{
	static const float w[6] = {1, 2, 3, 4, 5, 6};
	struct pc_shape xs = {.ndim = 2, .dim = {-1, 4}}, ws = {.ndim = 2, .dim = {2, 3}};
	struct pc_shape as = {.ndim = 1, .dim = {1}};
	const int64_t ax[1] = {1}, ids[8] = {5, -7, 12, 3, INT64_MAX, 1, 0, 0};
	struct pc_attr keep0 = {.name = "keepdims", .type = PC_ATTR_INT, .i = 0};
	struct pc_attr axes = {.name = "axes", .type = PC_ATTR_INTS, .n = 1, .ints = ax};
	struct pc_attr mx[2] = {keep0, axes};
	const char *sin[2] = {"ids", "A"}, *sout[1] = {"S"}, *xin[1] = {"ids"}, *xout[1] = {"M"};
	const char *nin[1] = {"ids"}, *nout[1] = {"Mn"}, *ain[2] = {"W", "W"}, *aout[1] = {"y"};
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	struct pc_plan *p;
	char msg[800];

	REQUIRE(g);
	REQUIRE(!pc_graph_add_input_typed(g, "ids", &xs, PC_DTYPE_INT64, &err));
	REQUIRE(!pc_graph_add_float(g, "W", &ws, w, &err));
	REQUIRE(!pc_graph_add_int64(g, "A", &as, ax, &err));
	REQUIRE(!pc_graph_add_node(g, "ReduceSum", "sum", 2, sin, 1, sout, 1, &keep0, &err));
	REQUIRE(!pc_graph_add_node(g, "ReduceMax", "max", 1, xin, 1, xout, 2, mx, &err));
	REQUIRE(!pc_graph_add_node(g, "ReduceMin", "min", 1, nin, 1, nout, 2, mx, &err));
	REQUIRE(!pc_graph_add_node(g, "Add", "add", 2, ain, 1, aout, 0, NULL, &err));
	REQUIRE(!pc_graph_add_output(g, "y", &err));
	REQUIRE_MSG(!pc_graph_finish(g, &err), "%s", pc_error_format(&err, msg, sizeof(msg)));
	p = pc_plan_new(g, 2, 0, &err);
	REQUIRE_MSG(p, "%s", pc_error_format(&err, msg, sizeof(msg)));
	REQUIRE(pc_plan_input_int64(p));
	memcpy(pc_plan_input_int64(p), ids, sizeof(ids));
	pc_plan_forward(p);
	{
		struct pc_plan_value ts, tm, tn;
		REQUIRE((pc_plan_value(p, "S", &ts, NULL) == PC_OK) && (pc_plan_value(p, "M", &tm, NULL) == PC_OK) &&
			(pc_plan_value(p, "Mn", &tn, NULL) == PC_OK));
		CHECK(!ts.is_static && ts.dtype == PC_DTYPE_INT64 && ts.numel == 2);
		CHECK_INT(ts.ival[0], 13);
		/* INT64_MAX + 1 wraps (two's complement), never UB */
		CHECK(ts.ival[1] == INT64_MIN);
		CHECK_INT(tm.ival[0], 12);
		CHECK(tm.ival[1] == INT64_MAX);
		CHECK_INT(tn.ival[0], -7);
		CHECK_INT(tn.ival[1], 0);
	}
	pc_plan_free(p);
	pc_graph_free(g);
}

/* ReduceMean of int64 is refused (ONNX does not say how it rounds). */
TEST(reduce_mean_int64_refused)
{
	static const int64_t iv[4] = {1, 2, 3, 4};
	struct pc_shape xs = {.ndim = 2, .dim = {-1, 2}}, is = {.ndim = 1, .dim = {4}};
	const char *rin[1] = {"I"}, *rout[1] = {"S"}, *min[2] = {"x", "S"}, *mout[1] = {"y"};
	struct tg b;
	char msg[800];

	tg_begin(&b, 13, &xs);
	tg_int64(&b, "I", &is, iv);
	tg_node(&b, "ReduceMean", "bad_reduce", 1, rin, 1, rout, 0, NULL);
	tg_node(&b, "Reshape", "reshape", 2, min, 1, mout, 0, NULL);
	b.ok = b.ok && !pc_graph_add_output(b.g, "y", &b.err) && !pc_graph_finish(b.g, &b.err);
	pc_error_format(&b.err, msg, sizeof(msg));
	CHECK(!b.ok);
	CHECK_MSG(b.err.code == PC_ERR_UNSUPPORTED && strstr(b.err.where, "bad_reduce") && strstr(msg, "int64"), "%s",
		  msg);
	pc_graph_free(b.g);
}

/* --- LayerNormalization -------------------------------------------------------------------- */

static struct pc_graph *ln_graph(struct pc_test *t, const json_t *c, float *w, float *bias, const char *what)
{
	struct pc_shape xs = json_shape(json_object_get(c, "shape"));
	struct pc_shape ss = json_shape(json_object_get(c, "scale"));
	const json_t *bj = json_object_get(c, "bias");
	int stats = json_is_true(json_object_get(c, "stats"));
	struct pc_attr attr[3];
	int n_attr = 0;
	const char *in[3] = {"x", "S", "B"}, *out[3] = {"y", "M", "I"};
	struct tg b;

	tg_begin(&b, 17, &xs);
	fill(w, count_of(&ss), jint(c, "seed", 0) + 50, 0.5f, 1.0f);
	tg_float(&b, "S", &ss, w);
	if (json_is_array(bj)) {
		struct pc_shape bs = json_shape(bj);
		fill(bias, count_of(&bs), jint(c, "seed", 0) + 60, 0.25f, 0.0f);
		tg_float(&b, "B", &bs, bias);
	}
	attr[n_attr++] = (struct pc_attr){.name = "axis", .type = PC_ATTR_INT, .i = jint(c, "axis", -1)};
	if (json_is_number(json_object_get(c, "epsilon")))
		attr[n_attr++] =
			(struct pc_attr){.name = "epsilon", .type = PC_ATTR_FLOAT, .f = (float)jnum(c, "epsilon", 0)};
	if (json_is_integer(json_object_get(c, "stash_type")))
		attr[n_attr++] = (struct pc_attr){.name = "stash_type", .type = PC_ATTR_INT, .i = jint(c, "stash_type", 1)};
	tg_node(&b, "LayerNormalization", "ln", json_is_array(bj) ? 3 : 2, in, stats ? 3 : 1, out, n_attr, attr);
	if (stats) {
		/* y + M * I: both statistics feed the output, so both carry gradient */
		const char *mi[2] = {"M", "I"}, *mo[1] = {"MI"}, *yi[2] = {"y", "MI"}, *yo[1] = {"y2"};
		tg_node(&b, "Mul", "mi", 2, mi, 1, mo, 0, NULL);
		tg_node(&b, "Add", "y_mi", 2, yi, 1, yo, 0, NULL);
		return tg_finish(t, &b, "y2", count_of(&xs), what);
	}
	return tg_finish(t, &b, "y", count_of(&xs), what);
}

static const float *plan_value(struct pc_plan *p, const char *name)
{
	struct pc_plan_value v;

	return (pc_plan_value(p, name, &v, NULL) == PC_OK) ? v.data : NULL;
}

TEST(layernorm_values_vs_torch_and_grad)
{
	json_t *j = load_json(t, "reduce_ops.json"), *cases;
	struct worst w = {0, 0};
	int ran = 0;

	if (!j)
		return;
	cases = json_object_get(j, "layernorm");
	for (size_t k = 0; k < json_array_size(cases); k++) {
		const json_t *c = json_array_get(cases, k);
		struct pc_shape xs = json_shape(json_object_get(c, "shape"));
		const json_t *want = json_object_get(c, "expected");
		int stats = json_is_true(json_object_get(c, "stats"));
		float x[MAXV], sw[MAXV], bw[MAXV];
		struct pc_graph *g;
		struct pc_plan *p;
		int64_t n = count_of(&xs);
		char what[96];

		snprintf(what, sizeof(what), "layernorm case %zu (axis %lld)", k, (long long)jint(c, "axis", -1));
		REQUIRE(n <= MAXV && (int64_t)json_array_size(want) == n);
		fill(x, n, jint(c, "seed", 0), 1.0f, (float)jnum(c, "offset", 0.0));
		g = ln_graph(t, c, sw, bw, what);
		if (!g)
			continue;
		if (!stats) {
			p = run_case(t, g, x, want, n, 1e-5, 1e-5, what, &w);
		} else {
			/* the output is y + mean * invstd; check the three apart */
			const json_t *jm = json_object_get(c, "mean"), *ji = json_object_get(c, "invstd");
			struct pc_error err = {0};
			p = pc_plan_new(g, BATCH, 0, &err);
			REQUIRE(p);
			memcpy(pc_plan_input(p), x, (size_t)n * sizeof(float));
			pc_plan_forward(p);
			compare(t, "Y", plan_value(p, "y"), want, n, n, 1e-5, 1e-5, &w);
			compare(t, "Mean", plan_value(p, "M"), jm, (int64_t)json_array_size(jm),
				(int64_t)json_array_size(jm), 0, 1e-7, &w);
			compare(t, "InvStdDev", plan_value(p, "I"), ji, (int64_t)json_array_size(ji),
				(int64_t)json_array_size(ji), 0, 1e-6, &w);
		}
		pc_plan_free(p);
		grad_check(t, g, what, 60 + k);
		pc_graph_free(g);
		ran++;
	}
	CHECK(ran == 6);
	printf("  layernorm: largest disagreement with torch %.3g (relative %.3g)\n", w.abs, w.rel);
	json_decref(j);
}

/* Far from zero the statistics must not cancel: rows of [1000 + small]
 * keep their shape (the fixture case with offset 1000 checks the values;
 * here the gradient at that offset, where a float one-pass variance would
 * be noise). */
TEST(layernorm_grad_far_from_zero)
{
	struct pc_shape xs = {.ndim = 2, .dim = {BATCH, 6}}, ss = {.ndim = 1, .dim = {6}};
	const float s[6] = {1, 0.5f, 2, -1, 1.5f, 0.25f}, bias[6] = {0.1f, 0, -0.1f, 0.2f, 0, 0.3f};
	const char *in[3] = {"x", "S", "B"}, *out[1] = {"y"};
	struct gc_opts o = GC_BASE;
	struct pc_graph *g;
	struct tg b;

	tg_begin(&b, 17, &xs);
	tg_float(&b, "S", &ss, s);
	tg_float(&b, "B", &ss, bias);
	tg_node(&b, "LayerNormalization", "ln", 3, in, 1, out, 0, NULL);
	g = tg_finish(t, &b, "y", 12, "far");
	REQUIRE(g);
	o.input_lo = 999.0f;
	o.input_hi = 1001.0f;
	o.eps = 2e-3; /* the spacing of floats near 1000 is 6e-5 */
	o.rtol = 2e-2;
	CHECK(gc_check(t, g, &o) == 6 + 6 + 2 + 12); /* S, B, Z, x */
	pc_graph_free(g);
}

static void ln_rejects(struct pc_test *t, int opset, const struct pc_shape *ss, int n_attr, const struct pc_attr *attr,
		       enum pc_status code, const char *what)
{
	struct pc_shape xs = {.ndim = 3, .dim = {BATCH, 3, 4}};
	const float s[24] = {0}; /* the largest Scale below: [2, 3, 4] */
	const char *in[2] = {"x", "S"}, *out[1] = {"y"};
	struct tg b;
	char msg[800];

	tg_begin(&b, opset, &xs);
	tg_float(&b, "S", ss, s);
	tg_node(&b, "LayerNormalization", "bad_ln", 2, in, 1, out, n_attr, attr);
	if (b.ok) {
		static const int64_t flat[2] = {BATCH, -1};
		struct pc_shape fs = {.ndim = 1, .dim = {2}};
		const char *rin[2] = {"y", "s"}, *rout[1] = {"out"};
		tg_int64(&b, "s", &fs, flat);
		tg_node(&b, "Reshape", "r", 2, rin, 1, rout, 0, NULL);
		b.ok = !pc_graph_add_output(b.g, "out", &b.err) && !pc_graph_finish(b.g, &b.err);
	}
	pc_error_format(&b.err, msg, sizeof(msg));
	CHECK_MSG(!b.ok, "%s: the graph was accepted", what);
	CHECK_MSG(b.err.code == code, "%s: expected %s, got %s: %s", what, pc_status_name(code),
		  pc_status_name(b.err.code), msg);
	CHECK_MSG(strstr(b.err.where, "bad_ln") != NULL, "%s: '%s' does not name the node", what, msg);
	pc_graph_free(b.g);
}

TEST(layernorm_rejects_bad_attributes_and_shapes)
{
	struct pc_shape s4 = {.ndim = 1, .dim = {4}}, s3 = {.ndim = 1, .dim = {3}}, s31 = {.ndim = 2, .dim = {3, 1}};
	struct pc_shape s134 = {.ndim = 3, .dim = {1, 3, 4}}, s234 = {.ndim = 3, .dim = {2, 3, 4}};
	struct pc_attr half = {.name = "stash_type", .type = PC_ATTR_INT, .i = 10};
	struct pc_attr axis4 = {.name = "axis", .type = PC_ATTR_INT, .i = 4};
	struct pc_attr axism4 = {.name = "axis", .type = PC_ATTR_INT, .i = -4};
	struct pc_attr axis2 = {.name = "axis", .type = PC_ATTR_INT, .i = 2};
	struct pc_attr neg_eps = {.name = "epsilon", .type = PC_ATTR_FLOAT, .f = -1.0f};
	struct pc_attr nan_eps = {.name = "epsilon", .type = PC_ATTR_FLOAT, .f = NAN};
	struct pc_attr eps_int = {.name = "epsilon", .type = PC_ATTR_INT, .i = 1};

	ln_rejects(t, 16, &s4, 0, NULL, PC_ERR_UNSUPPORTED, "opset 16");
	ln_rejects(t, 17, &s4, 1, &half, PC_ERR_UNSUPPORTED, "stash_type float16");
	ln_rejects(t, 17, &s4, 1, &axis4, PC_ERR_SHAPE, "axis 4 of rank 3");
	ln_rejects(t, 17, &s4, 1, &axism4, PC_ERR_SHAPE, "axis -4 of rank 3");
	ln_rejects(t, 17, &s4, 1, &neg_eps, PC_ERR_FORMAT, "negative epsilon");
	ln_rejects(t, 17, &s4, 1, &nan_eps, PC_ERR_FORMAT, "NaN epsilon");
	ln_rejects(t, 17, &s4, 1, &eps_int, PC_ERR_FORMAT, "epsilon given as an int");
	ln_rejects(t, 17, &s3, 0, NULL, PC_ERR_SHAPE, "Scale [3] for normalised [4]");
	ln_rejects(t, 17, &s31, 1, &axis2, PC_ERR_SHAPE, "Scale [3,1] under axis 2");
	ln_rejects(t, 17, &s134, 0, NULL, PC_ERR_SHAPE, "Scale [1,3,4] for normalised [4]");
	ln_rejects(t, 17, &s234, 0, NULL, PC_ERR_SHAPE, "Scale over the batch");
}

/* --- Softmax and LogSoftmax ----------------------------------------------------------------- */

TEST(softmax_any_axis_vs_torch_and_grad)
{
	json_t *j = load_json(t, "reduce_ops.json"), *cases;
	struct worst w = {0, 0};
	int ran = 0;

	if (!j)
		return;
	cases = json_object_get(j, "softmax");
	for (size_t k = 0; k < json_array_size(cases); k++) {
		const json_t *c = json_array_get(cases, k);
		struct pc_shape xs = json_shape(json_object_get(c, "shape"));
		const json_t *want = json_object_get(c, "expected");
		const char *op = json_string_value(json_object_get(c, "op"));
		struct pc_attr attr = {.name = "axis", .type = PC_ATTR_INT, .i = jint(c, "axis", 0)};
		const char *in[1] = {"x"}, *out[1] = {"y"};
		float x[MAXV];
		struct pc_graph *g;
		struct pc_plan *p;
		struct tg b;
		int64_t n = count_of(&xs);
		char what[96];

		snprintf(what, sizeof(what), "%s case %zu (opset %lld)", op, k, (long long)jint(c, "opset", 0));
		REQUIRE(n <= MAXV && (int64_t)json_array_size(want) == n);
		fill(x, n, jint(c, "seed", 0), (float)jnum(c, "scale", 1.0), 0.0f);
		tg_begin(&b, (int)jint(c, "opset", 13), &xs);
		tg_node(&b, op, "sm", 1, in, 1, out, json_is_integer(json_object_get(c, "axis")) ? 1 : 0, &attr);
		g = tg_finish(t, &b, "y", n, what);
		if (!g)
			continue;
		p = run_case(t, g, x, want, n, 1e-6, 1e-5, what, &w);
		pc_plan_free(p);
		grad_check(t, g, what, 90 + k);
		pc_graph_free(g);
		ran++;
	}
	CHECK(ran == 10);
	printf("  softmax: largest disagreement with torch %.3g (relative %.3g)\n", w.abs, w.rel);
	json_decref(j);
}

/* A masked position (-inf, as causal attention masks are exported) gets
 * exactly 0 probability and -inf log-probability; the others are exact
 * formulas: softmax([0, -inf, 1, -inf]) = [1, 0, e, 0] / (1 + e). A row of
 * only -inf is NaN, as in torch. Each row is 20 long, so the 16-lane loop
 * and its tail both see masked entries. */
TEST(softmax_masked_minus_inf)
{
	struct pc_shape xs = {.ndim = 2, .dim = {BATCH, 20}};
	const char *in[1] = {"x"}, *out[1] = {"y"};
	float x[2 * 20];

	for (int i = 0; i < 20; i++) {
		x[i] = i == 3 ? 1.0f : i == 17 ? 0.0f : -INFINITY;
		x[20 + i] = -INFINITY;
	}
	for (int lg = 0; lg < 2; lg++) {
		struct pc_error err = {0};
		struct pc_graph *g;
		struct pc_plan *p;
		struct tg b;
		const float *y;
		double z = 1.0 + exp(1.0);

		tg_begin(&b, 13, &xs);
		tg_node(&b, lg ? "LogSoftmax" : "Softmax", "sm", 1, in, 1, out, 0, NULL);
		g = tg_finish(t, &b, "y", 40, "masked");
		REQUIRE(g);
		p = pc_plan_new(g, BATCH, 0, &err);
		REQUIRE(p);
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		y = pc_plan_output(p); /* row 0 of the output repeats the 40 values */
		for (int i = 0; i < 20; i++) {
			if (i == 3)
				CHECK_CLOSE(y[i], lg ? 1.0 - log(z) : exp(1.0) / z, 1e-7, 1e-6);
			else if (i == 17)
				CHECK_CLOSE(y[i], lg ? -log(z) : 1.0 / z, 1e-7, 1e-6);
			else if (lg)
				CHECK_MSG(isinf(y[i]) && y[i] < 0, "LogSoftmax masked [%d] = %g", i, (double)y[i]);
			else
				CHECK_MSG(y[i] == 0.0f, "Softmax masked [%d] = %g, not 0", i, (double)y[i]);
			CHECK_MSG(isnan(y[20 + i]), "%s of a row of -inf: [%d] = %g", lg ? "LogSoftmax" : "Softmax", i,
				  (double)y[20 + i]);
		}
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

/* --- MatMul ------------------------------------------------------------------------------------ */

TEST(matmul_nd_vs_torch_and_grad)
{
	json_t *j = load_json(t, "reduce_ops.json"), *cases;
	struct worst w = {0, 0};
	int ran = 0;

	if (!j)
		return;
	cases = json_object_get(j, "matmul");
	for (size_t k = 0; k < json_array_size(cases); k++) {
		const json_t *c = json_array_get(cases, k);
		struct pc_shape xs = json_shape(json_object_get(c, "x"));
		struct pc_shape ys = json_shape(json_object_get(c, "out_shape"));
		const json_t *wj = json_object_get(c, "w"), *want = json_object_get(c, "expected");
		int w_first = json_is_true(json_object_get(c, "w_first"));
		float x[MAXV], wv[MAXV];
		const char *in[2] = {w_first ? "W" : "x", w_first ? "x" : "W"}, *out[1] = {"y"};
		struct pc_graph *g;
		struct pc_plan *p;
		struct tg b;
		char what[96];

		snprintf(what, sizeof(what), "matmul case %zu", k);
		REQUIRE(count_of(&xs) <= MAXV && (int64_t)json_array_size(want) == count_of(&ys));
		fill(x, count_of(&xs), jint(c, "seed", 0), 1.0f, 0.0f);
		tg_begin(&b, 13, &xs);
		if (json_is_array(wj)) {
			struct pc_shape ws = json_shape(wj);
			REQUIRE(count_of(&ws) <= MAXV);
			fill(wv, count_of(&ws), jint(c, "seed", 0) + 50, 1.0f, 0.0f);
			tg_float(&b, "W", &ws, wv);
		} else {
			/* x times its own transpose: both operands are activations */
			int64_t perm[PC_MAX_DIMS];
			struct pc_attr pa = {.name = "perm", .type = PC_ATTR_INTS, .n = xs.ndim, .ints = perm};
			const char *ti[1] = {"x"}, *to[1] = {"W"};
			for (int i = 0; i < xs.ndim; i++)
				perm[i] = i;
			perm[xs.ndim - 2] = xs.ndim - 1;
			perm[xs.ndim - 1] = xs.ndim - 2;
			tg_node(&b, "Transpose", "xT", 1, ti, 1, to, 1, &pa);
		}
		tg_node(&b, "MatMul", "mm", 2, in, 1, out, 0, NULL);
		g = tg_finish(t, &b, "y", count_of(&ys), what);
		if (!g)
			continue;
		p = run_case(t, g, x, want, count_of(&ys), 1e-5, 1e-5, what, &w);
		pc_plan_free(p);
		grad_check(t, g, what, 120 + k);
		pc_graph_free(g);
		ran++;
	}
	CHECK(ran == 8);
	printf("  matmul: largest disagreement with torch %.3g (relative %.3g)\n", w.abs, w.rel);
	json_decref(j);
}

/* --- the exported LayerNorm + attention block ------------------------------------------------ */

/* Returns 1 when the model ran (0: skipped or failed). */
static int check_block(struct pc_test *t, const char *opset, struct worst *w)
{
	json_t *j = load_json(t, "ln_attn.json");
	const json_t *jx, *jy, *jg;
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_plan *p = NULL;
	char path[512], msg[800], what[64];
	int64_t nx, ny, batch;
	float *r = NULL;
	double g2 = 0.0, want_g2;
	int ran = 0;

	if (!j)
		return 0;
	jx = json_object_get(j, "input");
	jy = json_object_get(j, "output");
	jg = json_object_get(j, "input_grad");
	batch = jint(j, "batch", 0);
	nx = (int64_t)json_array_size(jx);
	ny = (int64_t)json_array_size(jy);
	snprintf(what, sizeof(what), "ln_attn opset %s", opset);
	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s", pc_test_root(),
		 json_string_value(json_object_get(json_object_get(j, "models"), opset)));
	if (pc_onnx_load_file(path, &g, &err)) {
		pc_error_format(&err, msg, sizeof(msg));
		/* the opset-14 export decomposes LayerNorm into Pow and Sqrt, which
		 * another branch adds; until then the model cannot load */
		if (err.code == PC_ERR_UNSUPPORTED && (strstr(msg, "Pow") || strstr(msg, "Sqrt"))) {
			char why[900];
			snprintf(why, sizeof(why), "%s: %s", what, msg);
			pc_test_skip(t, why);
		} else {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what, msg);
		}
		goto out;
	}
	p = pc_plan_new(g, (int)batch, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	if (pc_plan_sample_numel(p) * batch != nx || pc_plan_classes(p) * batch != ny) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: the model's sizes differ from the fixture's", what);
		goto out;
	}
	for (int64_t i = 0; i < nx; i++)
		pc_plan_input(p)[i] = (float)json_number_value(json_array_get(jx, (size_t)i));
	pc_plan_forward(p);
	compare(t, what, pc_plan_output(p), jy, ny, ny, 1e-5, 1e-5, w);
	/* the gradient of sum(y * R), R from the script's pat(seed 501) */
	r = pc_plan_output_grad(p);
	fill(r, ny, jint(j, "r_seed", 0), 1.0f, 0.0f);
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	compare(t, what, pc_plan_input_grad(p), jg, nx, nx, 1e-5, 1e-4, w);
	for (int64_t i = 0; i < pc_graph_param_count(g); i++)
		g2 += (double)pc_plan_weight_grad(p)[i] * pc_plan_weight_grad(p)[i];
	want_g2 = jnum(j, "weight_grad_l2", -1);
	CHECK_MSG(fabs(sqrt(g2) - want_g2) <= 1e-5 * want_g2, "%s: weight gradient l2 %.9g, torch %.9g", what,
		  sqrt(g2), want_g2);
	{
		struct gc_opts o = GC_BASE;
		o.batch = (int)batch;
		o.seed = 7;
		CHECK_MSG(gc_check(t, g, &o) > 64, "%s: gradient check", what);
	}
	ran = 1;
out:
	pc_plan_free(p);
	pc_graph_free(g);
	json_decref(j);
	return ran;
}

TEST(ln_attention_block_op17_vs_torch)
{
	struct worst w = {0, 0};

	if (check_block(t, "17", &w))
		printf("  ln_attn op17: largest disagreement with torch %.3g (relative %.3g)\n", w.abs, w.rel);
}

TEST(ln_attention_block_op14_vs_torch)
{
	struct worst w = {0, 0};

	if (check_block(t, "14", &w))
		printf("  ln_attn op14: largest disagreement with torch %.3g (relative %.3g)\n", w.abs, w.rel);
}
