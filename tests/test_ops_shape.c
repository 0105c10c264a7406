/* Tests of the norm and shape op families: BatchNormalization in inference
 * mode, data movement (Transpose, Concat, Pad, aliases), and the int64
 * shape arithmetic that dynamic-batch exports fold at prepare time.
 *
 * Values are checked against plain loops written here; gradients by finite
 * differences (gradcheck). Static values inside a plan (folded shapes,
 * constants) are read through pc_plan_value (plan.h). */
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "paracorr/plan.h"
#include "paracorr/runner.h"
#include "test.h"

/* --- building helpers ------------------------------------------------------------- */

static struct pc_shape sh(int ndim, const int64_t *dims)
{
	struct pc_shape s = {.ndim = ndim};

	for (int i = 0; i < ndim; i++)
		s.dim[i] = dims[i];
	return s;
}

#define SH(...) sh((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR ((struct pc_shape){.ndim = 0})

static struct pc_attr a_int(const char *name, int64_t v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_INT, .i = v};
}

static struct pc_attr a_ints(const char *name, int n, const int64_t *v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_INTS, .n = n, .ints = v};
}

static struct pc_attr a_float(const char *name, float v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_FLOAT, .f = v};
}

static struct pc_attr a_floats(const char *name, int n, const float *v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_FLOATS, .n = n, .floats = v};
}

static struct pc_attr a_str(const char *name, const char *s)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_STRING, .s = s};
}

static struct pc_attr a_tensor(const char *name, enum pc_dtype dt, struct pc_shape s, const void *data)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_TENSOR, .tdtype = dt, .tshape = s, .tdata = data};
}

/* Split "a,b,,c" into names (an empty entry is an omitted input/output). */
static int split_names(const char *list, char *buf, size_t size, const char **names, int max)
{
	int count = 0;
	char *s;

	if (!list[0])
		return 0;
	snprintf(buf, size, "%s", list);
	s = buf;
	while (count < max) {
		char *comma = strchr(s, ',');
		names[count++] = s;
		if (!comma)
			break;
		*comma = '\0';
		s = comma + 1;
	}
	return count;
}

/* A node with comma-separated input and output names. */
static void node(struct pc_graph *g, const char *op, const char *name, const char *ins, const char *outs, int n_attr,
		 const struct pc_attr *attrs, struct pc_error *err)
{
	char ibuf[256], obuf[256];
	const char *in[16], *out[16];
	int n_in = split_names(ins, ibuf, sizeof(ibuf), in, 16);
	int n_out = split_names(outs, obuf, sizeof(obuf), out, 16);

	pc_graph_add_node(g, op, name, n_in, in, n_out, out, n_attr, attrs, err);
}

static struct pc_graph *graph_with_input(int opset, struct pc_shape x, struct pc_error *err)
{
	struct pc_graph *g = pc_graph_new(opset, err);

	if (g)
		pc_graph_add_input(g, "x", &x, err);
	return g;
}

/* Set the output and finish; reports the first error of the whole build. */
static int finish(struct pc_test *t, int line, struct pc_graph *g, const char *output, struct pc_error *err)
{
	char msg[700];

	if (!err->code)
		pc_graph_add_output(g, output, err);
	if (!err->code && pc_graph_finish(g, err) == PC_OK)
		return 1;
	pc_test_fail(t, __FILE__, line, "graph: %s", pc_error_format(err, msg, sizeof(msg)));
	return 0;
}

#define FINISH(g, out, err) finish(t, __LINE__, g, out, err)

/* Finishing must fail with code, naming node, with needle in the text. */
static void expect_fail(struct pc_test *t, int line, struct pc_graph *g, const char *output, struct pc_error *err,
			enum pc_status code, const char *node_name, const char *needle)
{
	char msg[700], where[160];
	int rc = err->code;

	if (!rc) {
		pc_graph_add_output(g, output, err);
		rc = pc_graph_finish(g, err);
	}
	pc_error_format(err, msg, sizeof(msg));
	if (rc != (int)code)
		pc_test_fail(t, __FILE__, line, "expected %s, got %s: %s", pc_status_name(code), pc_status_name(rc),
			     msg);
	snprintf(where, sizeof(where), "node '%s'", node_name);
	if (!strstr(err->where, where))
		pc_test_fail(t, __FILE__, line, "error '%s' does not name %s", msg, where);
	if (needle && !strstr(msg, needle))
		pc_test_fail(t, __FILE__, line, "error '%s' lacks '%s'", msg, needle);
	pc_graph_free(g);
}

#define EXPECT_FAIL(g, out, err, code, node_name, needle) expect_fail(t, __LINE__, g, out, err, code, node_name, needle)

/* A plan at batch with the input filled from x (or a ramp when x is NULL),
 * run forward once. */
static struct pc_plan *run(struct pc_test *t, int line, const struct pc_graph *g, int batch, unsigned flags,
			   const float *x)
{
	struct pc_error err = {0};
	struct pc_plan *p = pc_plan_new(g, batch, flags, &err);
	char msg[700];
	int64_t n;

	if (!p) {
		pc_test_fail(t, __FILE__, line, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		return NULL;
	}
	n = (int64_t)batch * pc_plan_sample_numel(p);
	for (int64_t i = 0; i < n; i++)
		pc_plan_input(p)[i] = x ? x[i] : 0.25f * (float)i - 1.0f;
	pc_plan_forward(p);
	return p;
}

#define RUN(g, batch, x) run(t, __LINE__, g, batch, 0, x)

/* The named value has exactly this shape. */
static void check_shape(struct pc_test *t, int line, const struct pc_plan *p, const char *name, struct pc_shape want)
{
	struct pc_plan_value value;
	const struct pc_plan_value *v = pc_plan_value(p, name, &value, NULL) == PC_OK ? &value : NULL;
	char a[96], b[96];

	if (!v) {
		pc_test_fail(t, __FILE__, line, "no value '%s'", name);
		return;
	}
	if (!pc_shape_equal(&v->shape, &want))
		pc_test_fail(t, __FILE__, line, "'%s' has shape %s, expected %s", name,
			     pc_shape_format(&v->shape, a, sizeof(a)), pc_shape_format(&want, b, sizeof(b)));
}

#define CHECK_SHAPE(p, name, want) check_shape(t, __LINE__, p, name, want)

/* The named value is static int64 with these values. */
static void check_ints(struct pc_test *t, int line, const struct pc_plan *p, const char *name, int n,
		       const int64_t *want)
{
	struct pc_plan_value value;
	const struct pc_plan_value *v = pc_plan_value(p, name, &value, NULL) == PC_OK ? &value : NULL;

	if (!v || v->dtype != PC_DTYPE_INT64 || !v->is_static || v->numel != n || !v->ival) {
		pc_test_fail(t, __FILE__, line, "'%s' is not a static int64 tensor of %d values", name, n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (v->ival[i] != want[i])
			pc_test_fail(t, __FILE__, line, "'%s'[%d] = %lld, expected %lld", name, i, (long long)v->ival[i],
				     (long long)want[i]);
}

#define CHECK_INTS(p, name, ...)                                                                                  \
	check_ints(t, __LINE__, p, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                \
		   (int64_t[]){__VA_ARGS__})

/* The named value is static float with these values. */
static void check_floats(struct pc_test *t, int line, const struct pc_plan *p, const char *name, int n,
			 const float *want)
{
	struct pc_plan_value value;
	const struct pc_plan_value *v = pc_plan_value(p, name, &value, NULL) == PC_OK ? &value : NULL;

	if (!v || v->dtype != PC_DTYPE_FLOAT || !v->is_static || v->numel != n || !v->data) {
		pc_test_fail(t, __FILE__, line, "'%s' is not a static float tensor of %d values", name, n);
		return;
	}
	for (int i = 0; i < n; i++)
		if (v->data[i] != want[i])
			pc_test_fail(t, __FILE__, line, "'%s'[%d] = %g, expected %g", name, i, (double)v->data[i],
				     (double)want[i]);
}

#define CHECK_FLOATS(p, name, ...)                                                                                \
	check_floats(t, __LINE__, p, name, (int)(sizeof((float[]){__VA_ARGS__}) / sizeof(float)),                 \
		     (float[]){__VA_ARGS__})

static const struct gc_opts grad_opts = {.batch = 3, .eps = 1e-2, .atol = 1e-3, .rtol = 1e-2, .seed = 11,
					 .check_input = 1};

/* --- BatchNormalization ----------------------------------------------------------------- */

static const float bn_scale[3] = {1.5f, -0.5f, 2.0f}, bn_bias[3] = {0.1f, 0.2f, -0.3f};
static const float bn_mean[3] = {0.25f, -1.0f, 0.5f}, bn_var[3] = {0.5f, 2.0f, 0.1f};

/* x[N,3,(2,2)] -> BN -> Flatten -> y, with `outs` outputs for the BN. */
static struct pc_graph *bn_graph(int opset, int spatial, const char *outs, int n_attr, const struct pc_attr *attrs,
				 struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(opset, spatial ? SH(-1, 3, 2, 2) : SH(-1, 3), err);
	struct pc_shape c = SH(3);

	if (!g)
		return NULL;
	pc_graph_add_float(g, "scale", &c, bn_scale, err);
	pc_graph_add_float(g, "bias", &c, bn_bias, err);
	pc_graph_add_float(g, "mean", &c, bn_mean, err);
	pc_graph_add_float(g, "var", &c, bn_var, err);
	node(g, "BatchNormalization", "bn0", "x,scale,bias,mean,var", outs, n_attr, attrs, err);
	node(g, "Flatten", "flat", "b", "y", 0, NULL, err);
	return g;
}

/* The output of a finished bn_graph against the formula, and the table. */
static void bn_check(struct pc_test *t, struct pc_graph *g, int spatial, float eps)
{
	int s = spatial ? 4 : 1, batch = 2;
	struct pc_plan *p;

	CHECK_INT(pc_graph_param_tensors(g), 2);
	CHECK_INT(pc_graph_param_count(g), 6);
	CHECK(pc_graph_find_param(g, "scale") >= 0);
	CHECK(pc_graph_find_param(g, "bias") >= 0);
	CHECK_INT(pc_graph_find_param(g, "mean"), -1);
	CHECK_INT(pc_graph_find_param(g, "var"), -1);
	p = RUN(g, batch, NULL);
	if (!p)
		return;
	for (int n = 0; n < batch; n++)
		for (int c = 0; c < 3; c++)
			for (int k = 0; k < s; k++) {
				int i = (n * 3 + c) * s + k;
				double x = 0.25 * i - 1.0;
				double y = (x - bn_mean[c]) / sqrt((double)bn_var[c] + eps) * bn_scale[c] + bn_bias[c];
				CHECK_CLOSE(pc_plan_output(p)[i], y, 1e-5, 1e-5);
			}
	pc_plan_free(p);
}

TEST(ops_shape_batchnorm_forward)
{
	for (int spatial = 0; spatial < 2; spatial++) {
		struct pc_error err = {0};
		struct pc_attr eps = a_float("epsilon", 1e-3f);
		struct pc_graph *g = bn_graph(13, spatial, "b", 1, &eps, &err);
		if (FINISH(g, "y", &err))
			bn_check(t, g, spatial, 1e-3f);
		pc_graph_free(g);
	}
	/* default epsilon */
	{
		struct pc_error err = {0};
		struct pc_graph *g = bn_graph(11, 1, "b", 0, NULL, &err);
		if (FINISH(g, "y", &err))
			bn_check(t, g, 1, 1e-5f);
		pc_graph_free(g);
	}
}

/* The value query names what it cannot find, and finds what it should. */
TEST(ops_shape_plan_value_not_found)
{
	struct pc_error err = {0};
	struct pc_graph *g = bn_graph(13, 0, "b", 0, NULL, &err);
	struct pc_plan *p;
	struct pc_plan_value v;

	if (!FINISH(g, "y", &err)) {
		pc_graph_free(g);
		return;
	}
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK(pc_plan_value(p, "no_such_value", &v, &err) == PC_ERR_NOT_FOUND);
		CHECK(err.code == PC_ERR_NOT_FOUND && strstr(err.text, "no_such_value") != NULL);
		CHECK(strcmp(err.where, "no_such_value") == 0);
		CHECK(pc_plan_value(p, "y", &v, &err) == PC_OK && v.dtype == PC_DTYPE_FLOAT && v.numel > 0 &&
		      v.data != NULL && v.producer >= 0 && !v.is_static);
		CHECK(pc_graph_node_output_name(g, v.producer, 0) != NULL &&
		      strcmp(pc_graph_node_output_name(g, v.producer, 0), "y") == 0);
		CHECK(pc_graph_node_output_name(g, v.producer, 1) == NULL);
		CHECK(pc_graph_node_output_name(g, -1, 0) == NULL);
		CHECK(pc_graph_node_output_name(g, pc_graph_node_count(g), 0) == NULL);
	}
	pc_plan_free(p);
	pc_graph_free(g);
}

TEST(ops_shape_batchnorm_training_exports)
{
	/* opset 14+: Y, running_mean, running_var; before: Y, mean, var,
	 * saved_mean, saved_var. Both run in inference mode regardless. */
	struct {
		int opset;
		const char *outs;
	} forms[] = {{14, "b,rm,rv"}, {15, "b,rm,rv"}, {13, "b,rm,rv,sm,sv"}, {12, "b,,rv,sm,"}};

	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		struct pc_error err = {0};
		struct pc_attr attrs[] = {a_int("training_mode", 1), a_float("momentum", 0.1f)};
		struct pc_graph *g = bn_graph(forms[f].opset, 1, forms[f].outs, forms[f].opset >= 14 ? 2 : 1,
					      forms[f].opset >= 14 ? attrs : attrs + 1, &err);
		struct pc_plan *p;
		if (!FINISH(g, "y", &err)) {
			pc_graph_free(g);
			continue;
		}
		bn_check(t, g, 1, 1e-5f);
		/* nothing reads the statistics outputs: the load drops them */
		p = RUN(g, 2, NULL);
		if (p) {
			struct pc_plan_value rv;
			CHECK((pc_plan_value(p, "rv", &rv, NULL) == PC_OK) && rv.producer == -1);
			pc_plan_free(p);
		}
		pc_graph_free(g);
	}
}

TEST(ops_shape_batchnorm_grad)
{
	const char *outs[] = {"b", "b,rm,rv"};

	for (int f = 0; f < 2; f++)
		for (int spatial = 0; spatial < 2; spatial++) {
			struct pc_error err = {0};
			struct pc_graph *g = bn_graph(14, spatial, outs[f], 0, NULL, &err);
			if (FINISH(g, "y", &err))
				CHECK(gc_check(t, g, &grad_opts) >= 6);
			pc_graph_free(g);
		}
}

/* Training mode: the gradient through the batch statistics, by finite
 * differences, for the scale, the bias and the input. */
TEST(ops_shape_batchnorm_training_grad)
{
	struct gc_opts o = grad_opts;

	o.batch = 4;
	o.training = 1;
	o.eps = 1e-3;
	for (int spatial = 0; spatial < 2; spatial++) {
		struct pc_error err = {0};
		struct pc_graph *g = bn_graph(14, spatial, "b", 0, NULL, &err);
		if (FINISH(g, "y", &err))
			CHECK(gc_check(t, g, &o) >= 6);
		pc_graph_free(g);
	}
}

/* Training mode: normalised by the real rows' statistics (padding left
 * out), and the running statistics moved by momentum with the unbiased
 * variance. */
TEST(ops_shape_batchnorm_training_stats)
{
	struct pc_error err = {0};
	struct pc_attr mom = a_float("momentum", 0.8f);
	struct pc_graph *g = bn_graph(14, 1, "b", 1, &mom, &err);
	struct pc_plan *p;
	const int rows = 3, s = 4;
	double mean[3] = {0}, var[3] = {0};

	if (!FINISH(g, "y", &err)) {
		pc_graph_free(g);
		return;
	}
	p = pc_plan_new(g, 4, 0, &err);
	REQUIRE(p);
	for (int64_t i = 0; i < 4 * 3 * s; i++)
		pc_plan_input(p)[i] = i < rows * 3 * s ? (float)((i * 7) % 11) - 3.0f : 1000.0f; /* padding */
	for (int c = 0; c < 3; c++) {
		for (int n = 0; n < rows; n++)
			for (int k = 0; k < s; k++)
				mean[c] += pc_plan_input(p)[(n * 3 + c) * s + k] / (double)(rows * s);
		for (int n = 0; n < rows; n++)
			for (int k = 0; k < s; k++) {
				double dx = pc_plan_input(p)[(n * 3 + c) * s + k] - mean[c];
				var[c] += dx * dx / (double)(rows * s);
			}
	}
	pc_plan_set_training(p, 1, 1);
	pc_plan_set_rows(p, rows);
	pc_plan_forward(p);
	for (int n = 0; n < rows; n++)
		for (int c = 0; c < 3; c++)
			for (int k = 0; k < s; k++) {
				int i = (n * 3 + c) * s + k;
				double want = (pc_plan_input(p)[i] - mean[c]) / sqrt(var[c] + 1e-5) * bn_scale[c] + bn_bias[c];
				CHECK_CLOSE(pc_plan_output(p)[i], want, 1e-4, 1e-4);
			}
	{
		int64_t n;
		const char *mn, *vn;
		const float *rm = pc_plan_stats(p, 0, &n, &mn), *rv = pc_plan_stats(p, 1, NULL, &vn);

		REQUIRE(pc_plan_stats_count(p) == 2 && n == 3 && !strcmp(mn, "mean") && !strcmp(vn, "var"));
		for (int c = 0; c < 3; c++) {
			/* the graph's are as loaded */
			CHECK(pc_graph_buffer(g, "mean", NULL)[c] == bn_mean[c]);
			CHECK(pc_graph_buffer(g, "var", NULL)[c] == bn_var[c]);
			CHECK_CLOSE(rm[c], 0.8 * bn_mean[c] + 0.2 * mean[c], 1e-5, 1e-5);
			CHECK_CLOSE(rv[c], 0.8 * bn_var[c] + 0.2 * var[c] * (rows * s) / (rows * s - 1), 1e-5, 1e-5);
		}
	}
	/* inference again reads the moved statistics */
	pc_plan_set_training(p, 0, 0);
	pc_plan_forward(p);
	{
		const float *rm = pc_plan_stats(p, 0, NULL, NULL), *rv = pc_plan_stats(p, 1, NULL, NULL);
		double want = (pc_plan_input(p)[0] - rm[0]) / sqrt((double)rv[0] + 1e-5) * bn_scale[0] + bn_bias[0];
		CHECK_CLOSE(pc_plan_output(p)[0], want, 1e-4, 1e-4);
	}
	pc_plan_free(p);
	pc_graph_free(g);
}

/* The running statistics a training pass moves are the plan's own: a
 * second plan of the same graph, and the graph, keep theirs bit for bit;
 * a runner's plans share one copy, as one model has. */
TEST(ops_shape_batchnorm_training_moves_only_its_plans_stats)
{
	struct pc_error err = {0};
	struct pc_attr mom = a_float("momentum", 0.5f);
	struct pc_graph *g = bn_graph(14, 1, "b", 1, &mom, &err);
	struct pc_plan *a, *b;
	struct pc_runner *r;
	float before[4 * 12], moved[3];
	int64_t numel = 4 * 12;

	if (!FINISH(g, "y", &err)) {
		pc_graph_free(g);
		return;
	}
	a = pc_plan_new(g, 4, 0, &err);
	b = pc_plan_new(g, 4, 0, &err);
	REQUIRE(a && b);
	for (int64_t i = 0; i < numel; i++)
		pc_plan_input(a)[i] = pc_plan_input(b)[i] = (float)((i * 5) % 13) - 4.0f;
	pc_plan_forward(b);
	memcpy(before, pc_plan_output(b), sizeof(before));
	/* a trains: its statistics move far from the loaded ones */
	pc_plan_set_training(a, 1, 1);
	for (int step = 0; step < 3; step++)
		pc_plan_forward(a);
	REQUIRE(pc_plan_stats_count(a) == 2);
	memcpy(moved, pc_plan_stats(a, 0, NULL, NULL), sizeof(moved));
	for (int c = 0; c < 3; c++) {
		CHECK(moved[c] != bn_mean[c]);
		CHECK(pc_plan_stats(b, 0, NULL, NULL)[c] == bn_mean[c]);
		CHECK(pc_plan_stats(b, 1, NULL, NULL)[c] == bn_var[c]);
		CHECK(pc_graph_buffer(g, "mean", NULL)[c] == bn_mean[c]);
		CHECK(pc_graph_buffer(g, "var", NULL)[c] == bn_var[c]);
	}
	pc_plan_forward(b);
	CHECK_MSG(!memcmp(before, pc_plan_output(b), sizeof(before)), "the other plan's outputs changed");
	/* a plan made after the training starts from the graph's, not a's */
	pc_plan_free(b);
	b = pc_plan_new(g, 4, 0, &err);
	REQUIRE(b);
	for (int64_t i = 0; i < numel; i++)
		pc_plan_input(b)[i] = (float)((i * 5) % 13) - 4.0f;
	pc_plan_forward(b);
	CHECK_MSG(!memcmp(before, pc_plan_output(b), sizeof(before)), "a new plan's outputs changed");
	/* a runner: worker 1 reads and moves worker 0's statistics */
	r = pc_runner_new(g, 4, 2, 0, &err);
	REQUIRE(r);
	CHECK(pc_plan_stats(pc_runner_plan(r, 1), 0, NULL, NULL) == pc_plan_stats(pc_runner_plan(r, 0), 0, NULL, NULL));
	CHECK(pc_plan_stats(pc_runner_plan(r, 1), 1, NULL, NULL) == pc_plan_stats(pc_runner_plan(r, 0), 1, NULL, NULL));
	CHECK(pc_plan_stats(pc_runner_plan(r, 0), 0, NULL, NULL) != pc_plan_stats(a, 0, NULL, NULL));
	pc_runner_free(r);
	pc_plan_free(a);
	pc_plan_free(b);
	pc_graph_free(g);
}

TEST(ops_shape_batchnorm_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_shape c2 = SH(2), c = SH(3);
	const float bad_var[3] = {0.5f, -1.0f, 0.1f};

	/* 5 outputs only exist before opset 14; unread ones are dropped at
	 * load, so this loads as the 1-output form */
	g = bn_graph(14, 1, "b,rm,rv,sm,sv", 0, NULL, &err);
	CHECK(FINISH(g, "y", &err));
	pc_graph_free(g);
	/* scale of the wrong size */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 3, 2), &err);
	pc_graph_add_float(g, "scale", &c2, bn_scale, &err);
	pc_graph_add_float(g, "bias", &c, bn_bias, &err);
	pc_graph_add_float(g, "mean", &c, bn_mean, &err);
	pc_graph_add_float(g, "var", &c, bn_var, &err);
	node(g, "BatchNormalization", "bn0", "x,scale,bias,mean,var", "b", 0, NULL, &err);
	node(g, "Flatten", "flat", "b", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "bn0", "scale");
	/* a negative running variance would make NaNs */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 3, 2), &err);
	pc_graph_add_float(g, "scale", &c, bn_scale, &err);
	pc_graph_add_float(g, "bias", &c, bn_bias, &err);
	pc_graph_add_float(g, "mean", &c, bn_mean, &err);
	pc_graph_add_float(g, "var", &c, bad_var, &err);
	node(g, "BatchNormalization", "bn0", "x,scale,bias,mean,var", "b", 0, NULL, &err);
	node(g, "Flatten", "flat", "b", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "bn0", "variance");
}

/* --- Transpose ------------------------------------------------------------------------------ */

TEST(ops_shape_transpose_forward_grad)
{
	struct pc_error err = {0};
	struct pc_attr perm = a_ints("perm", 4, (int64_t[]){0, 3, 1, 2});
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3, 4), &err);
	struct pc_plan *p;

	node(g, "Transpose", "tr", "x", "xt", 1, &perm, &err);
	node(g, "Flatten", "flat", "xt", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK_SHAPE(p, "xt", SH(2, 4, 2, 3));
		/* y[n][d][b][c] = x[n][b][c][d] */
		for (int n = 0; n < 2; n++)
			for (int d = 0; d < 4; d++)
				for (int b = 0; b < 2; b++)
					for (int c = 0; c < 3; c++) {
						int xi = ((n * 2 + b) * 3 + c) * 4 + d, yi = ((n * 4 + d) * 2 + b) * 3 + c;
						CHECK_CLOSE(pc_plan_output(p)[yi], 0.25 * xi - 1.0, 0, 0);
					}
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) > 0);
out:
	pc_graph_free(g);
}

TEST(ops_shape_transpose_default_and_folded)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3), &err);
	struct pc_shape s23 = SH(2, 3);
	const int64_t k[6] = {1, 2, 3, 4, 5, 6};
	struct pc_plan *p;

	/* reversing twice is the identity; the middle has the batch last */
	pc_graph_add_int64(g, "k", &s23, k, &err);
	node(g, "Transpose", "tr1", "x", "a", 0, NULL, &err);
	node(g, "Transpose", "tr2", "a", "b", 0, NULL, &err);
	node(g, "Flatten", "flat", "b", "y", 0, NULL, &err);
	node(g, "Transpose", "trk", "k", "kt", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 4, NULL);
	if (p) {
		CHECK_SHAPE(p, "a", SH(3, 2, 4));
		for (int i = 0; i < 24; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], 0.25 * i - 1.0, 0, 0);
		CHECK_SHAPE(p, "kt", SH(3, 2));
		CHECK_INTS(p, "kt", 1, 4, 2, 5, 3, 6);
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) > 0);
out:
	pc_graph_free(g);

	/* perm of the wrong length, and one that repeats an axis */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	{
		struct pc_attr perm = a_ints("perm", 2, (int64_t[]){1, 0});
		node(g, "Transpose", "trbad", "x", "a", 1, &perm, &err);
	}
	node(g, "Flatten", "flat", "a", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "trbad", "perm");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	{
		struct pc_attr perm = a_ints("perm", 3, (int64_t[]){0, 1, 1});
		node(g, "Transpose", "trbad", "x", "a", 1, &perm, &err);
	}
	node(g, "Flatten", "flat", "a", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "trbad", "perm");
}

/* --- Concat --------------------------------------------------------------------------------- */

TEST(ops_shape_concat_float)
{
	struct pc_error err = {0};
	struct pc_attr perm = a_ints("perm", 3, (int64_t[]){0, 2, 1}), axis = a_int("axis", -1);
	struct pc_graph *g = graph_with_input(13, SH(-1, 3, 3), &err);
	struct pc_plan *p;

	/* x is read three times: its gradient is the sum of three slices */
	node(g, "Transpose", "tr", "x", "xt", 1, &perm, &err);
	node(g, "Concat", "cat", "x,xt,x", "c", 1, &axis, &err);
	node(g, "Flatten", "flat", "c", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK_SHAPE(p, "c", SH(2, 3, 9));
		for (int n = 0; n < 2; n++)
			for (int i = 0; i < 3; i++)
				for (int j = 0; j < 9; j++) {
					int src = j < 3 ? (n * 3 + i) * 3 + j
						  : j < 6 ? (n * 3 + (j - 3)) * 3 + i
							  : (n * 3 + i) * 3 + (j - 6);
					CHECK_CLOSE(pc_plan_output(p)[(n * 3 + i) * 9 + j], 0.25 * src - 1.0, 0, 0);
				}
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) > 0);
out:
	pc_graph_free(g);
}

TEST(ops_shape_concat_static_and_weight)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(1, 2), &err);
	struct pc_shape s12 = SH(1, 2), s2 = SH(2), s1 = SH(1);
	const float w[2] = {7.0f, 8.0f}, kv[3] = {-1.0f, -2.0f, -3.0f};
	const int64_t i1[2] = {4, 5}, i2[1] = {6};
	struct pc_attr axis1 = a_int("axis", 1), axis0 = a_int("axis", 0);
	struct pc_attr kval = a_tensor("value", PC_DTYPE_FLOAT, SH(1, 3), kv);
	struct gc_opts o = grad_opts;
	struct pc_plan *p;
	const float x[2] = {0.5f, -0.5f};

	/* a runtime input, a folded constant and a weight in one Concat */
	pc_graph_add_float(g, "w", &s12, w, &err);
	pc_graph_add_int64(g, "i1", &s2, i1, &err);
	pc_graph_add_int64(g, "i2", &s1, i2, &err);
	node(g, "Constant", "k", "", "kc", 1, &kval, &err);
	node(g, "Concat", "cat", "x,kc,w", "y", 1, &axis1, &err);
	node(g, "Concat", "cati", "i1,i2", "ic", 1, &axis0, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	CHECK_INT(pc_graph_param_tensors(g), 1);
	p = RUN(g, 1, x);
	if (p) {
		const float want[7] = {0.5f, -0.5f, -1.0f, -2.0f, -3.0f, 7.0f, 8.0f};
		for (int i = 0; i < 7; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], want[i], 0, 0);
		CHECK_INTS(p, "ic", 4, 5, 6);
		pc_plan_free(p);
	}
	o.batch = 1;
	CHECK(gc_check(t, g, &o) >= 4);
out:
	pc_graph_free(g);

	/* dims other than the axis must agree */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	node(g, "Transpose", "tr", "x", "xt", 1, (struct pc_attr[]){a_ints("perm", 3, (int64_t[]){0, 2, 1})}, &err);
	node(g, "Concat", "catbad", "x,xt", "c", 1, &axis1, &err);
	node(g, "Flatten", "flat", "c", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "catbad", "only axis");
}

/* --- Pad ---------------------------------------------------------------------------------------- */

/* x[N,2,3] -> Pad(pads, value) -> Flatten; value: "" none, "v" weight, "vc" constant. */
static struct pc_graph *pad_graph(const int64_t *pads, const char *value, int n_attr, const struct pc_attr *attrs,
				  struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3), err);
	struct pc_shape s6 = SH(6), scalar = SCALAR;
	const float v = 0.5f;
	char ins[32];

	pc_graph_add_int64(g, "pads", &s6, pads, err);
	if (strcmp(value, "v") == 0)
		pc_graph_add_float(g, "v", &scalar, &v, err);
	if (strcmp(value, "vc") == 0) {
		struct pc_attr a = a_float("value_float", 0.5f);
		node(g, "Constant", "vconst", "", "vc", 1, &a, err);
	}
	snprintf(ins, sizeof(ins), "x,pads%s%s", value[0] ? "," : "", value);
	node(g, "Pad", "pad", ins, "pd", n_attr, attrs, err);
	node(g, "Flatten", "flat", "pd", "y", 0, NULL, err);
	return g;
}

/* Reference constant padding of the ramp input, batch n, rank 3. */
static void pad_check(struct pc_test *t, const struct pc_graph *g, const int64_t *pads, float value)
{
	int64_t od[3];
	struct pc_plan *p = RUN(g, 2, NULL);

	if (!p)
		return;
	const int64_t in[3] = {2, 2, 3};
	for (int i = 0; i < 3; i++)
		od[i] = in[i] + pads[i] + pads[3 + i];
	for (int64_t a = 0; a < od[0]; a++)
		for (int64_t b = 0; b < od[1]; b++)
			for (int64_t c = 0; c < od[2]; c++) {
				int64_t ia = a - pads[0], ib = b - pads[1], ic = c - pads[2];
				double want = value;
				if (ia >= 0 && ia < in[0] && ib >= 0 && ib < in[1] && ic >= 0 && ic < in[2])
					want = 0.25 * (double)((ia * 2 + ib) * 3 + ic) - 1.0;
				CHECK_CLOSE(pc_plan_output(p)[(a * od[1] + b) * od[2] + c], want, 0, 0);
			}
	pc_plan_free(p);
}

TEST(ops_shape_pad_forward_grad)
{
	const int64_t grow[6] = {0, 1, 1, 0, 0, 2}, crop[6] = {0, 0, -1, 0, 1, 1};
	struct pc_error err = {0};
	struct pc_graph *g;

	/* a fill-value initializer is a buffer, not a trained weight */
	g = pad_graph(grow, "v", 0, NULL, &err);
	if (FINISH(g, "y", &err)) {
		CHECK_INT(pc_graph_param_tensors(g), 0);
		pad_check(t, g, grow, 0.5f);
		CHECK(gc_check(t, g, &grad_opts) > 1);
	}
	pc_graph_free(g);
	/* from a Constant, explicit mode, and none (zero) */
	memset(&err, 0, sizeof(err));
	{
		struct pc_attr mode = a_str("mode", "constant");
		g = pad_graph(grow, "vc", 1, &mode, &err);
	}
	if (FINISH(g, "y", &err)) {
		CHECK_INT(pc_graph_param_tensors(g), 0);
		pad_check(t, g, grow, 0.5f);
	}
	pc_graph_free(g);
	memset(&err, 0, sizeof(err));
	g = pad_graph(crop, "", 0, NULL, &err);
	if (FINISH(g, "y", &err)) {
		pad_check(t, g, crop, 0.0f);
		CHECK(gc_check(t, g, &grad_opts) > 0);
	}
	pc_graph_free(g);
}

TEST(ops_shape_pad_errors)
{
	const int64_t grow[6] = {0, 1, 0, 0, 0, 2};
	struct pc_error err = {0};
	struct pc_attr mode = a_str("mode", "reflect");
	struct pc_graph *g = pad_graph(grow, "", 1, &mode, &err);

	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "pad", "'mode'");
	memset(&err, 0, sizeof(err));
	mode = a_str("mode", "edge");
	g = pad_graph(grow, "", 1, &mode, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "pad", "edge");
	/* four pads for a rank-3 input */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	{
		struct pc_shape s4 = SH(4);
		pc_graph_add_int64(g, "pads", &s4, grow, &err);
	}
	node(g, "Pad", "pad", "x,pads", "pd", 0, NULL, &err);
	node(g, "Flatten", "flat", "pd", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "pad", "pads");
}

/* --- the shape subgraph of x.view(x.size(0), -1) ---------------------------------------------------- */

static struct pc_graph *view_graph(int opset, struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(opset, SH(-1, 2, 3), err);
	const int64_t zero = 0, axes0[1] = {0}, minus1[1] = {-1};
	struct pc_attr c0 = a_tensor("value", PC_DTYPE_INT64, SCALAR, &zero);
	struct pc_attr c_axes = a_tensor("value", PC_DTYPE_INT64, SH(1), axes0);
	struct pc_attr c_m1 = a_tensor("value", PC_DTYPE_INT64, SH(1), minus1);
	struct pc_attr axis0 = a_int("axis", 0), axes_attr = a_ints("axes", 1, axes0);

	node(g, "Shape", "Shape_0", "x", "s", 0, NULL, err);
	node(g, "Constant", "Constant_1", "", "c0", 1, &c0, err);
	node(g, "Gather", "Gather_2", "s,c0", "n", 1, &axis0, err);
	if (opset >= 13) {
		node(g, "Constant", "Constant_3", "", "ax", 1, &c_axes, err);
		node(g, "Unsqueeze", "Unsqueeze_4", "n,ax", "u", 0, NULL, err);
	} else {
		node(g, "Unsqueeze", "Unsqueeze_4", "n", "u", 1, &axes_attr, err);
	}
	node(g, "Constant", "Constant_5", "", "m1", 1, &c_m1, err);
	node(g, "Concat", "Concat_6", "u,m1", "shp", 1, &axis0, err);
	node(g, "Reshape", "Reshape_7", "x,shp", "y", 0, NULL, err);
	return g;
}

TEST(ops_shape_view_subgraph_folds)
{
	const int opsets[] = {11, 12, 13, 17};

	for (int k = 0; k < 4; k++) {
		struct pc_error err = {0};
		struct pc_graph *g = view_graph(opsets[k], &err);
		struct pc_plan *p;
		if (!FINISH(g, "y", &err)) {
			pc_graph_free(g);
			continue;
		}
		CHECK_INT(pc_graph_classes(g), 6);
		p = RUN(g, 5, NULL);
		if (p) {
			CHECK_INTS(p, "s", 5, 2, 3);
			CHECK_INTS(p, "n", 5);
			CHECK_SHAPE(p, "n", SCALAR);
			CHECK_INTS(p, "u", 5);
			CHECK_INTS(p, "shp", 5, -1);
			CHECK_SHAPE(p, "y", SH(5, 6));
			CHECK_INT(pc_plan_classes(p), 6);
			for (int i = 0; i < 30; i++)
				CHECK_CLOSE(pc_plan_output(p)[i], 0.25 * i - 1.0, 0, 0);
			pc_plan_free(p);
		}
		CHECK(gc_check(t, g, &grad_opts) > 0);
		pc_graph_free(g);
	}
}

/* --- Reshape ------------------------------------------------------------------------------------------ */

/* x[N,2,3] -> Reshape(target) -> side; the output is Flatten(x). */
static struct pc_graph *reshape_graph(int opset, int n, const int64_t *target, int allowzero, struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(opset, SH(-1, 2, 3), err);
	struct pc_shape s = {.ndim = 1, .dim = {n}};
	struct pc_attr az = a_int("allowzero", allowzero);

	pc_graph_add_int64(g, "target", &s, target, err);
	node(g, "Reshape", "rs", "x,target", "side", allowzero >= 0 ? 1 : 0, &az, err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, err);
	return g;
}

static void reshape_ok(struct pc_test *t, int line, int opset, int n, const int64_t *target, int allowzero,
		       struct pc_shape want)
{
	struct pc_error err = {0};
	struct pc_graph *g = reshape_graph(opset, n, target, allowzero, &err);
	struct pc_plan *p;

	if (finish(t, line, g, "y", &err) && (p = run(t, line, g, 4, 0, NULL))) {
		struct pc_plan_value value;
		const struct pc_plan_value *side = pc_plan_value(p, "side", &value, NULL) == PC_OK ? &value : NULL;
		check_shape(t, line, p, "side", want);
		/* an alias: the same storage as x */
		if (!side || side->data != pc_plan_input(p))
			pc_test_fail(t, __FILE__, line, "Reshape copied instead of aliasing");
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_shape_reshape_cases)
{
	/* 0 copies the input dim, -1 takes the rest */
	reshape_ok(t, __LINE__, 13, 2, (int64_t[]){0, -1}, -1, SH(4, 6));
	reshape_ok(t, __LINE__, 13, 3, (int64_t[]){0, 3, 2}, -1, SH(4, 3, 2));
	reshape_ok(t, __LINE__, 13, 2, (int64_t[]){-1, 3}, -1, SH(8, 3));
	reshape_ok(t, __LINE__, 13, 4, (int64_t[]){0, 0, 0, 1}, -1, SH(4, 2, 3, 1));
	reshape_ok(t, __LINE__, 14, 2, (int64_t[]){-1, 6}, 1, SH(4, 6));
	reshape_ok(t, __LINE__, 14, 2, (int64_t[]){0, -1}, 0, SH(4, 6));
	reshape_ok(t, __LINE__, 13, 1, (int64_t[]){-1}, -1, SH(24));
}

TEST(ops_shape_reshape_errors)
{
	struct {
		int opset, n, allowzero;
		int64_t target[4];
		enum pc_status code;
		const char *needle;
	} cases[] = {
		{13, 3, -1, {-1, -1, 6}, PC_ERR_FORMAT, "-1"},
		{13, 2, -1, {4, 5}, PC_ERR_SHAPE, "cannot view"},
		{13, 2, -1, {-1, 5}, PC_ERR_SHAPE, "cannot reshape"},
		{13, 2, -1, {-2, 3}, PC_ERR_FORMAT, "-2"},
		{13, 4, -1, {0, 0, 0, 0}, PC_ERR_SHAPE, "rank"},
		/* allowzero: a 0 is a real 0 */
		{14, 2, 1, {0, 6}, PC_ERR_SHAPE, "cannot view"},
		{14, 2, 1, {0, -1}, PC_ERR_FORMAT, "allowzero"},
		{13, 2, 1, {-1, 6}, PC_ERR_FORMAT, "allowzero"},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct pc_error err = {0};
		struct pc_graph *g = reshape_graph(cases[k].opset, cases[k].n, cases[k].target, cases[k].allowzero,
						   &err);
		EXPECT_FAIL(g, "y", &err, cases[k].code, "rs", cases[k].needle);
	}
}

/* --- Flatten --------------------------------------------------------------------------------------------- */

TEST(ops_shape_flatten_axes)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3, 4), &err);
	const int64_t axes[5] = {2, -1, 0, 4, -4};
	struct pc_plan *p;
	char name[16];

	for (int k = 0; k < 5; k++) {
		struct pc_attr a = a_int("axis", axes[k]);
		snprintf(name, sizeof(name), "f%d", k);
		node(g, "Flatten", name, "x", name + 1, 1, &a, &err);
	}
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 3, NULL))) {
		CHECK_SHAPE(p, "0", SH(6, 12));
		CHECK_SHAPE(p, "1", SH(18, 4));
		CHECK_SHAPE(p, "2", SH(1, 72));
		CHECK_SHAPE(p, "3", SH(72, 1));
		CHECK_SHAPE(p, "4", SH(1, 72));
		CHECK_SHAPE(p, "y", SH(3, 24));
		pc_plan_free(p);
	}
	pc_graph_free(g);

	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3, 4), &err);
	node(g, "Flatten", "fbad", "x", "y", 1, (struct pc_attr[]){a_int("axis", 5)}, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "fbad", "axis");
}

/* --- Squeeze and Unsqueeze ------------------------------------------------------------------------------------ */

/* x[N,3] -> Unsqueeze(1,-1) -> [N,1,3,1] -> Squeeze(3,1) -> y[N,3]; the axes
 * as attributes before opset 13, as an initializer and a Constant after. */
static struct pc_graph *squeeze_graph(int opset, struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(opset, SH(-1, 3), err);
	const int64_t uax[2] = {1, -1}, sax[2] = {3, 1};

	if (opset < 13) {
		struct pc_attr ua = a_ints("axes", 2, uax), sa = a_ints("axes", 2, sax);
		node(g, "Unsqueeze", "unsq", "x", "u", 1, &ua, err);
		node(g, "Squeeze", "sq", "u", "y", 1, &sa, err);
	} else {
		struct pc_shape s2 = SH(2);
		struct pc_attr sc = a_tensor("value", PC_DTYPE_INT64, SH(2), sax);
		pc_graph_add_int64(g, "uax", &s2, uax, err);
		node(g, "Constant", "sqaxes", "", "sax", 1, &sc, err);
		node(g, "Unsqueeze", "unsq", "x,uax", "u", 0, NULL, err);
		node(g, "Squeeze", "sq", "u,sax", "y", 0, NULL, err);
	}
	return g;
}

TEST(ops_shape_squeeze_unsqueeze)
{
	for (int opset = 11; opset <= 17; opset += 2) {
		struct pc_error err = {0};
		struct pc_graph *g = squeeze_graph(opset, &err);
		struct pc_plan *p;
		if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
			CHECK_SHAPE(p, "u", SH(2, 1, 3, 1));
			CHECK_SHAPE(p, "y", SH(2, 3));
			for (int i = 0; i < 6; i++)
				CHECK_CLOSE(pc_plan_output(p)[i], 0.25 * i - 1.0, 0, 0);
			pc_plan_free(p);
			CHECK(gc_check(t, g, &grad_opts) > 0);
		}
		pc_graph_free(g);
	}
}

TEST(ops_shape_squeeze_all_and_folded)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 1, 4, 1), &err);
	struct pc_shape s113 = SH(1, 1, 3);
	const int64_t k[3] = {7, 8, 9}, zero[1] = {0};
	struct pc_attr ax0 = a_tensor("value", PC_DTYPE_INT64, SH(1), zero);
	struct pc_plan *p;

	/* no axes: every 1 goes, the batch axis too when the batch is 1 (as
	 * in ONNX), so this Squeeze is not the graph's output */
	pc_graph_add_int64(g, "k", &s113, k, &err);
	node(g, "Squeeze", "sq", "x", "sqx", 0, NULL, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	node(g, "Squeeze", "sqk", "k", "ks", 0, NULL, &err);
	node(g, "Constant", "c0", "", "ax0", 1, &ax0, &err);
	node(g, "Unsqueeze", "unk", "ks,ax0", "ku", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 1, NULL))) {
		CHECK_SHAPE(p, "sqx", SH(4));
		pc_plan_free(p);
	}
	if (!err.code && (p = RUN(g, 2, NULL))) {
		CHECK_SHAPE(p, "sqx", SH(2, 4));
		CHECK_SHAPE(p, "ks", SH(3));
		CHECK_INTS(p, "ks", 7, 8, 9);
		CHECK_SHAPE(p, "ku", SH(1, 3));
		CHECK_INTS(p, "ku", 7, 8, 9);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_shape_squeeze_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;
	const int64_t one[1] = {1};
	struct pc_shape s1 = SH(1);

	/* axis 1 is 3, not 1 */
	g = graph_with_input(11, SH(-1, 3, 1), &err);
	node(g, "Squeeze", "sqbad", "x", "y", 1, (struct pc_attr[]){a_ints("axes", 1, one)}, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "sqbad", "not 1");
	/* opset 13 Unsqueeze without its axes input */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 3), &err);
	node(g, "Unsqueeze", "unbad", "x", "u", 0, NULL, &err);
	node(g, "Flatten", "flat", "u", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "unbad", "axes");
	/* the attribute at opset 13, the input at opset 11 */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 3), &err);
	node(g, "Unsqueeze", "unbad", "x", "u", 1, (struct pc_attr[]){a_ints("axes", 1, one)}, &err);
	node(g, "Flatten", "flat", "u", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "unbad", "opset 13");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(11, SH(-1, 3), &err);
	pc_graph_add_int64(g, "ax", &s1, one, &err);
	node(g, "Unsqueeze", "unbad", "x,ax", "u", 0, NULL, &err);
	node(g, "Flatten", "flat", "u", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "unbad", "opset 13");
	/* axis out of range and repeated */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(11, SH(-1, 3), &err);
	node(g, "Unsqueeze", "unbad", "x", "u", 1, (struct pc_attr[]){a_ints("axes", 2, (int64_t[]){1, -3})}, &err);
	node(g, "Flatten", "flat", "u", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "unbad", "twice");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(11, SH(-1, 3), &err);
	node(g, "Unsqueeze", "unbad", "x", "u", 1, (struct pc_attr[]){a_ints("axes", 1, (int64_t[]){3})}, &err);
	node(g, "Flatten", "flat", "u", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "unbad", "out of range");
}

/* --- Constant ------------------------------------------------------------------------------------------------ */

TEST(ops_shape_constant_kinds)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 4), &err);
	const float tf[4] = {1.5f, -2.0f, 3.25f, 0.0f}, fl[3] = {0.5f, 0.25f, -8.0f}, one_f = 9.5f;
	const int64_t ti[3] = {-1, 0, 1LL << 40}, il[2] = {3, -4}, one_i = 42;
	struct pc_attr attrs[] = {
		a_tensor("value", PC_DTYPE_FLOAT, SH(2, 2), tf), a_tensor("value", PC_DTYPE_INT64, SH(3), ti),
		a_tensor("value", PC_DTYPE_FLOAT, SCALAR, &one_f), a_float("value_float", -0.75f),
		a_floats("value_floats", 3, fl), a_int("value_int", 17), a_ints("value_ints", 2, il),
		a_tensor("value", PC_DTYPE_INT64, SCALAR, &one_i),
	};
	struct pc_plan *p;
	char name[16];

	for (int k = 0; k < 8; k++) {
		snprintf(name, sizeof(name), "c%d", k);
		node(g, "Constant", name, "", name + 1, 1, &attrs[k], &err);
	}
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		CHECK_SHAPE(p, "0", SH(2, 2));
		CHECK_FLOATS(p, "0", 1.5f, -2.0f, 3.25f, 0.0f);
		CHECK_SHAPE(p, "1", SH(3));
		CHECK_INTS(p, "1", -1, 0, 1LL << 40);
		CHECK_SHAPE(p, "2", SCALAR);
		CHECK_FLOATS(p, "2", 9.5f);
		CHECK_SHAPE(p, "3", SCALAR);
		CHECK_FLOATS(p, "3", -0.75f);
		CHECK_SHAPE(p, "4", SH(3));
		CHECK_FLOATS(p, "4", 0.5f, 0.25f, -8.0f);
		CHECK_SHAPE(p, "5", SCALAR);
		CHECK_INTS(p, "5", 17);
		CHECK_SHAPE(p, "6", SH(2));
		CHECK_INTS(p, "6", 3, -4);
		CHECK_INTS(p, "7", 42);
		pc_plan_free(p);
	}
	CHECK_INT(pc_graph_param_tensors(g), 0);
	pc_graph_free(g);
}

TEST(ops_shape_constant_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 4), &err);
	struct pc_attr two[2] = {a_int("value_int", 1), a_float("value_float", 1.0f)};

	node(g, "Constant", "cnone", "", "c", 0, NULL, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "cnone", "no value");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 4), &err);
	node(g, "Constant", "ctwo", "", "c", 2, two, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "ctwo", "exactly one");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 4), &err);
	node(g, "Constant", "cwrong", "", "c", 1, (struct pc_attr[]){a_float("value_ints", 1.0f)}, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "cwrong", "value_ints");
}

/* --- Shape and Gather -------------------------------------------------------------------------------------------- */

TEST(ops_shape_shape_gather)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(15, SH(-1, 2, 3), &err);
	struct pc_shape s23 = SH(2, 3), s2 = SH(2), sc = SCALAR;
	const int64_t k[6] = {1, 2, 3, 4, 5, 6}, idx2[2] = {2, -3}, first_last[2] = {0, -1}, minus1 = -1;
	struct pc_attr start1 = a_int("start", 1), endm1 = a_int("end", -1), startm1 = a_int("start", -1);
	struct pc_attr big[2] = {a_int("start", -10), a_int("end", 10)}, empty[2] = {a_int("start", 2), a_int("end", 1)};
	struct pc_attr axis1 = a_int("axis", 1);
	struct pc_plan *p;

	pc_graph_add_int64(g, "k", &s23, k, &err);
	pc_graph_add_int64(g, "idx2", &s2, idx2, &err);
	pc_graph_add_int64(g, "fl", &s2, first_last, &err);
	pc_graph_add_int64(g, "m1", &sc, &minus1, &err);
	node(g, "Shape", "sh_all", "x", "s", 0, NULL, &err);
	node(g, "Shape", "sh_s1", "x", "s_1", 1, &start1, &err);
	node(g, "Shape", "sh_em1", "x", "s_e", 1, &endm1, &err);
	node(g, "Shape", "sh_sm1", "x", "s_m", 1, &startm1, &err);
	node(g, "Shape", "sh_big", "x", "s_big", 2, big, &err);
	node(g, "Shape", "sh_empty", "x", "s_empty", 2, empty, &err);
	node(g, "Gather", "g_fl", "s,fl", "g1", 0, NULL, &err);
	node(g, "Gather", "g_m1", "s,m1", "g2", 0, NULL, &err);
	node(g, "Gather", "g_ax1", "k,idx2", "g3", 1, &axis1, &err);
	node(g, "Gather", "g_ax0", "k,m1", "g4", 0, NULL, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 4, NULL))) {
		CHECK_INTS(p, "s", 4, 2, 3);
		CHECK_INTS(p, "s_1", 2, 3);
		CHECK_INTS(p, "s_e", 4, 2);
		CHECK_INTS(p, "s_m", 3);
		CHECK_INTS(p, "s_big", 4, 2, 3);
		CHECK_SHAPE(p, "s_empty", SH(0));
		CHECK_INTS(p, "g1", 4, 3);
		CHECK_SHAPE(p, "g2", SCALAR);
		CHECK_INTS(p, "g2", 3);
		CHECK_SHAPE(p, "g3", SH(2, 2));
		CHECK_INTS(p, "g3", 3, 1, 6, 4);
		CHECK_SHAPE(p, "g4", SH(3));
		CHECK_INTS(p, "g4", 4, 5, 6);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_shape_shape_gather_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_shape s1 = SH(1);
	const int64_t three[1] = {3}, zero[1] = {0};

	/* float indices (Gather on float data is tests/test_ops_index.c's) */
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	pc_graph_add_int64(g, "i", &s1, zero, &err);
	node(g, "Gather", "gfloat", "i,x", "gx", 0, NULL, &err);
	node(g, "Flatten", "flat", "gx", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "gfloat", "int64 indices");
	/* index past the end */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	pc_graph_add_int64(g, "i", &s1, three, &err);
	node(g, "Shape", "shp", "x", "s", 0, NULL, &err);
	node(g, "Gather", "gbad", "s,i", "gs", 0, NULL, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "gbad", "out of range");
	/* Shape's start before opset 15 */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	node(g, "Shape", "shbad", "x", "s", 1, (struct pc_attr[]){a_int("start", 1)}, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "shbad", "opset 15");
}

/* --- Cast ------------------------------------------------------------------------------------------------------------ */

TEST(ops_shape_cast_cases)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3), &err);
	struct pc_shape s3 = SH(3);
	const int64_t iv[3] = {-2, 0, 5};
	const float fv[4] = {2.7f, -1.5f, 3.0f, -0.2f};
	struct pc_attr to_f = a_int("to", PC_DTYPE_FLOAT), to_i = a_int("to", PC_DTYPE_INT64);
	struct pc_attr cf = a_floats("value_floats", 4, fv);
	struct pc_plan *p;

	pc_graph_add_int64(g, "iv", &s3, iv, &err);
	node(g, "Constant", "cfv", "", "fv", 1, &cf, &err);
	node(g, "Cast", "x_f", "x", "xf", 1, &to_f, &err);
	node(g, "Cast", "i_f", "iv", "ivf", 1, &to_f, &err);
	node(g, "Cast", "i_i", "iv", "ivi", 1, &to_i, &err);
	node(g, "Cast", "f_i", "fv", "fvi", 1, &to_i, &err);
	node(g, "Cast", "f_f", "fv", "fvf", 1, &to_f, &err);
	node(g, "Flatten", "flat", "xf", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		for (int i = 0; i < 12; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], 0.25 * i - 1.0, 0, 0);
		CHECK(pc_plan_output(p) != pc_plan_input(p));
		CHECK_FLOATS(p, "ivf", -2.0f, 0.0f, 5.0f);
		CHECK_INTS(p, "ivi", -2, 0, 5);
		/* toward zero, as C and ONNX runtimes do */
		CHECK_INTS(p, "fvi", 2, -1, 3, 0);
		CHECK_FLOATS(p, "fvf", 2.7f, -1.5f, 3.0f, -0.2f);
		pc_plan_free(p);
	}
	if (!err.code)
		CHECK(gc_check(t, g, &grad_opts) > 0);
	pc_graph_free(g);
}

TEST(ops_shape_cast_rejected)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3), &err);

	/* run-time casts to int64, int32, bool and double are accepted (see
	 * test_ops_logic.c); types the plan cannot hold are refused, naming 'to' */
	node(g, "Cast", "castbad", "x", "xi", 1, (struct pc_attr[]){a_int("to", 12)}, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "castbad", "uint32");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	node(g, "Cast", "castbad", "x", "xd", 1, (struct pc_attr[]){a_int("to", 16)}, &err);
	node(g, "Flatten", "flat", "xd", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "castbad", "bfloat16");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	node(g, "Shape", "shp", "x", "s", 0, NULL, &err);
	node(g, "Cast", "castbad", "s", "s16", 1, (struct pc_attr[]){a_int("to", 5)}, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "castbad", "int16");
	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 2, 3), &err);
	node(g, "Cast", "castbad", "x", "xd", 0, NULL, &err);
	node(g, "Flatten", "flat", "xd", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "castbad", "'to'");
}

/* --- Identity and Dropout -------------------------------------------------------------------------------------------------- */

TEST(ops_shape_identity_dropout)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3), &err);
	struct pc_attr ratio = a_float("ratio", 0.5f);
	struct pc_plan *p;

	node(g, "Identity", "id", "x", "a", 0, NULL, &err);
	node(g, "Dropout", "drop1", "a", "b", 0, NULL, &err);
	node(g, "Dropout", "drop2", "b", "c,", 0, NULL, &err);
	node(g, "Flatten", "flat", "c", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		for (int i = 0; i < 12; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], 0.25 * i - 1.0, 0, 0);
		pc_plan_free(p);
		CHECK(gc_check(t, g, &grad_opts) > 0);
	}
	pc_graph_free(g);

	memset(&err, 0, sizeof(err));
	g = graph_with_input(11, SH(-1, 2, 3), &err);
	node(g, "Dropout", "dropmask", "x", "b,mask", 1, &ratio, &err);
	node(g, "Flatten", "flat", "b", "y", 0, NULL, &err);
	/* a mask nobody reads is dropped at load (training-mode exports name it) */
	CHECK(FINISH(g, "y", &err));
	pc_graph_free(g);

	/* a mask that is read cannot be computed: refused */
	memset(&err, 0, sizeof(err));
	g = graph_with_input(11, SH(-1, 2, 3), &err);
	node(g, "Dropout", "dropmask", "x", "b,mask", 1, &ratio, &err);
	node(g, "Flatten", "flatm", "mask", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "dropmask", "mask");
}

/* --- Dropout ------------------------------------------------------------------------ */

static struct pc_graph *dropout_graph(struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(11, SH(-1, 64), err);
	struct pc_attr ratio = a_float("ratio", 0.25f);

	if (g)
		node(g, "Dropout", "drop", "x", "y", 1, &ratio, err);
	return g;
}

/* Inference: the identity. Training: each value dropped or scaled by
 * 1 / (1 - ratio), about ratio of them dropped, the same mask for the same
 * seed and sample place on any plan, and the input gradient the same mask
 * (finite differences). */
TEST(ops_shape_dropout_training)
{
	struct pc_error err = {0};
	struct pc_graph *g = dropout_graph(&err);
	struct pc_plan *inf, *a, *b;
	int64_t zeros = 0, n = 32 * 64;
	struct gc_opts o = grad_opts;

	if (!FINISH(g, "y", &err)) {
		pc_graph_free(g);
		return;
	}
	inf = pc_plan_new(g, 32, 0, &err);
	a = pc_plan_new(g, 32, PC_PLAN_TRAIN, &err);
	b = pc_plan_new(g, 32, PC_PLAN_TRAIN, &err);
	REQUIRE(inf && a && b);
	for (int64_t i = 0; i < n; i++)
		pc_plan_input(inf)[i] = pc_plan_input(a)[i] = pc_plan_input(b)[i] = 0.5f + (float)(i % 97) / 97.0f;
	pc_plan_forward(inf);
	CHECK(!memcmp(pc_plan_output(inf), pc_plan_input(inf), (size_t)n * sizeof(float)));
	pc_plan_set_dropout(a, 5);
	pc_plan_forward(a);
	for (int64_t i = 0; i < n; i++) {
		float y = pc_plan_output(a)[i], x = pc_plan_input(a)[i];

		zeros += y == 0.0f;
		CHECK_MSG(y == 0.0f || y == x * (1.0f / 0.75f), "y[%lld] = %g for x %g", (long long)i, y, x);
	}
	CHECK_MSG(zeros > n * 0.2 && zeros < n * 0.3, "%lld of %lld dropped at ratio 0.25", (long long)zeros,
		  (long long)n);
	/* b: the same seed, its batch one sample later in the dataset: its row
	 * i is a's row i + 1 */
	pc_plan_set_dropout(b, 5);
	pc_plan_set_origin(b, 1);
	pc_plan_forward(b);
	for (int64_t i = 0; i < 31; i++)
		for (int64_t k = 0; k < 64; k++)
			CHECK((pc_plan_output(b)[i * 64 + k] == 0.0f) == (pc_plan_output(a)[(i + 1) * 64 + k] == 0.0f));
	pc_plan_set_dropout(b, 6);
	pc_plan_set_origin(b, 0);
	pc_plan_forward(b);
	CHECK(memcmp(pc_plan_output(a), pc_plan_output(b), (size_t)n * sizeof(float)) != 0);
	o.training = 1;
	o.batch = 4;
	CHECK(gc_check(t, g, &o) > 0);
	pc_plan_free(inf);
	pc_plan_free(a);
	pc_plan_free(b);
	pc_graph_free(g);
}
