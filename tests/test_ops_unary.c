/* Tests of the elementwise math ops (core/ops/unary.c): Abs, Neg,
 * Reciprocal, Sqrt, Exp, Log, Erf, HardSwish, HardSigmoid and Pow.
 *
 * Three kinds of evidence:
 *  - PyTorch's float32 outputs and autograd gradients on inputs that include
 *    the edges (0 and -0, the kinks at +-3, Log and Sqrt outside their
 *    domain, +-inf, NaN), from tests/reference/fixtures/unary_ops.json
 *    (made by tests/reference/make_unary_fixtures.py); non-finite values
 *    must match exactly, finite ones within per-op tolerances;
 *  - central finite differences (gc_check) on random inputs inside each
 *    op's smooth region, for the input and for weights in either Pow slot;
 *  - small models exported by torch.onnx.export at opsets 11, 14 and 17
 *    (unary_op*.onnx), loaded from file, against the nn.Module's output and
 *    gradients (unary_model.json).
 * Plus the load-time errors: wrong opset forms, types and shapes. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

#define FIXTURES "tests/reference/fixtures"

/* --- small helpers ----------------------------------------------------------- */

static struct pc_shape shape_of(int ndim, const int64_t *dims)
{
	struct pc_shape s = {.ndim = ndim};

	for (int i = 0; i < ndim; i++)
		s.dim[i] = dims[i];
	return s;
}

#define SHP(...) shape_of((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR ((struct pc_shape){.ndim = 0})

static int64_t count_of(const struct pc_shape *s)
{
	int64_t n = 1;

	for (int i = 0; i < s->ndim; i++)
		n *= s->dim[i];
	return n;
}

static struct pc_attr a_float(const char *name, float v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_FLOAT, .f = v};
}

static struct pc_attr a_tensor(enum pc_dtype dt, struct pc_shape s, const void *data)
{
	return (struct pc_attr){.name = "value", .type = PC_ATTR_TENSOR, .tdtype = dt, .tshape = s, .tdata = data};
}

static int add_node(struct pc_graph *g, const char *op, const char *name, int n_in, const char *const *in,
		    const char *out, int n_attr, const struct pc_attr *attr, struct pc_error *err)
{
	const char *outs[1] = {out};

	return pc_graph_add_node(g, op, name, n_in, in, 1, outs, n_attr, attr, err);
}

/* Ends the graph at `y`, through a Flatten when y is not [N, classes]. */
static int finish(struct pc_graph *g, const char *y, int rank, struct pc_error *err)
{
	if (rank > 2) {
		const char *in[1] = {y};
		if (add_node(g, "Flatten", "flat", 1, in, "out", 0, NULL, err))
			return err->code;
		y = "out";
	}
	if (pc_graph_add_output(g, y, err))
		return err->code;
	return pc_graph_finish(g, err);
}

/* NaN matches NaN, an infinity itself (with its sign); finite values
 * within atol + rtol * |want|. */
static int matches(double got, double want, double atol, double rtol)
{
	if (isnan(want))
		return isnan(got);
	if (isinf(want))
		return got == want;
	return fabs(got - want) <= atol + rtol * fabs(want);
}

/* The relative error of a finite comparison, for the reports. */
static double rel_error(double got, double want)
{
	if (!isfinite(want) || !isfinite(got))
		return 0.0;
	return fabs(got - want) / (fabs(want) > 1e-30 ? fabs(want) : 1e-30);
}

/* The largest disagreements seen, for the test's summary line: relative
 * over references above 1e-6 in magnitude (below, the absolute part of the
 * tolerance rules), and absolute over all finite ones. */
struct worst {
	double rel, abs;
};

static void check_values(struct pc_test *t, const char *what, const float *got, const float *want, int64_t n,
			 double atol, double rtol, struct worst *w)
{
	int bad = 0;

	for (int64_t i = 0; i < n; i++) {
		if (!matches(got[i], want[i], atol, rtol) && bad++ < 6)
			pc_test_fail(t, __FILE__, __LINE__, "%s[%lld] = %.9g, expected %.9g (atol %g, rtol %g)", what,
				     (long long)i, (double)got[i], (double)want[i], atol, rtol);
		if (fabs(want[i]) > 1e-6 && rel_error(got[i], want[i]) > w->rel)
			w->rel = rel_error(got[i], want[i]);
		if (isfinite(want[i]) && isfinite(got[i]) && fabs((double)got[i] - want[i]) > w->abs)
			w->abs = fabs((double)got[i] - want[i]);
	}
}

/* --- the JSON fixtures --------------------------------------------------------- */

static json_t *load_fixture(struct pc_test *t, const char *name)
{
	char path[512];
	json_error_t jerr;
	json_t *j;

	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s", pc_test_root(), name);
	j = json_load_file(path, 0, &jerr);
	if (!j)
		pc_test_fail(t, __FILE__, __LINE__, "%s: line %d: %s", path, jerr.line, jerr.text);
	return j;
}

/* A float written as a number, or as "inf", "-inf", "nan". */
static float json_float(const json_t *v)
{
	const char *s = json_string_value(v);

	if (!s)
		return (float)json_number_value(v);
	if (!strcmp(s, "inf"))
		return INFINITY;
	if (!strcmp(s, "-inf"))
		return -INFINITY;
	return NAN;
}

/* An array of floats into a new buffer; *n receives the count. */
static float *json_floats(const json_t *a, int64_t *n)
{
	size_t len = json_array_size(a);
	float *v = malloc((len ? len : 1) * sizeof(float));

	if (!v)
		return NULL;
	for (size_t i = 0; i < len; i++)
		v[i] = json_float(json_array_get(a, i));
	if (n)
		*n = (int64_t)len;
	return v;
}

static struct pc_shape json_shape(const json_t *a)
{
	struct pc_shape s = {.ndim = (int)json_array_size(a)};

	for (int i = 0; i < s.ndim && i < PC_MAX_DIMS; i++)
		s.dim[i] = json_integer_value(json_array_get(a, (size_t)i));
	return s;
}

/* --- the op-level cases ------------------------------------------------------- */

/* Tolerances against torch, per op. The others compute torch's formula in
 * torch's order with correctly rounded operations, so they get rtol 1e-6
 * and no absolute slack (which would hide a formula that cancels near a
 * zero of the output). Exp, Log, Erf and Pow come from a different libm
 * than torch's (Sleef), an ulp or two apart, and Pow's broadcast
 * gradients are sums torch rounds in another order: 2e-6 and an absolute
 * 1e-7 for outputs near 0. */
struct tol {
	double atol, rtol;
};

static struct tol case_tol(const char *op)
{
	if (!strcmp(op, "Exp") || !strcmp(op, "Log") || !strcmp(op, "Erf") || !strcmp(op, "Pow"))
		return (struct tol){1e-7, 2e-6};
	return (struct tol){0.0, 1e-6};
}

struct case_graph {
	struct pc_graph *g;
	struct pc_shape xs; /* the input at its batch */
	int rank;
	const char *param; /* the weight compared with dparam, or NULL */
};

static int build_case(const json_t *c, struct case_graph *cg, struct pc_error *err)
{
	const char *kind = json_string_value(json_object_get(c, "kind"));
	const json_t *ex = json_object_get(c, "exp"), *bs = json_object_get(c, "base");
	struct pc_shape in;
	float *vals = NULL;
	int64_t *ivals = NULL;
	int rc = PC_OK;

	cg->xs = json_shape(json_object_get(c, "shape"));
	cg->rank = cg->xs.ndim;
	cg->param = NULL;
	in = cg->xs;
	in.dim[0] = -1;
	cg->g = pc_graph_new(17, err);
	if (!cg->g)
		return err->code;
	if ((rc = pc_graph_add_input(cg->g, "x", &in, err)))
		goto out;
	if (!strcmp(kind, "unary")) {
		const char *op = json_string_value(json_object_get(c, "op")), *ins[1] = {"x"};
		const json_t *at = json_object_get(c, "attrs");
		struct pc_attr attrs[2];
		int na = 0;
		if (json_object_get(at, "alpha"))
			attrs[na++] = a_float("alpha", (float)json_number_value(json_object_get(at, "alpha")));
		if (json_object_get(at, "beta"))
			attrs[na++] = a_float("beta", (float)json_number_value(json_object_get(at, "beta")));
		rc = add_node(cg->g, op, "op", 1, ins, "y", na, attrs, err);
	} else if (!strcmp(kind, "pow_const") || !strcmp(kind, "pow_param_exp")) {
		struct pc_shape es = json_shape(json_object_get(ex, "shape"));
		const json_t *ev = json_object_get(ex, "values");
		const char *ins[2] = {"x", "e"};
		int is_int = !strcmp(json_string_value(json_object_get(ex, "dtype")), "int64");
		vals = json_floats(ev, NULL);
		ivals = malloc((json_array_size(ev) + 1) * sizeof(int64_t));
		if (!vals || !ivals) {
			rc = PC_ERR_NOMEM;
			goto out;
		}
		for (size_t i = 0; i < json_array_size(ev); i++)
			ivals[i] = json_integer_value(json_array_get(ev, i));
		if (!strcmp(kind, "pow_const")) {
			struct pc_attr v = a_tensor(is_int ? PC_DTYPE_INT64 : PC_DTYPE_FLOAT, es,
						    is_int ? (const void *)ivals : (const void *)vals);
			rc = add_node(cg->g, "Constant", "econst", 0, NULL, "e", 1, &v, err);
		} else {
			rc = pc_graph_add_float(cg->g, "e", &es, vals, err);
			cg->param = "e";
		}
		if (!rc)
			rc = add_node(cg->g, "Pow", "op", 2, ins, "y", 0, NULL, err);
	} else {
		struct pc_shape ps = json_shape(json_object_get(bs, "shape"));
		const char *ins[2] = {"b", "x"};
		vals = json_floats(json_object_get(bs, "values"), NULL);
		if (!vals) {
			rc = PC_ERR_NOMEM;
			goto out;
		}
		rc = pc_graph_add_float(cg->g, "b", &ps, vals, err);
		cg->param = "b";
		if (!rc)
			rc = add_node(cg->g, "Pow", "op", 2, ins, "y", 0, NULL, err);
	}
	if (!rc)
		rc = finish(cg->g, "y", cg->rank, err);
out:
	free(vals);
	free(ivals);
	if (rc) {
		pc_graph_free(cg->g);
		cg->g = NULL;
	}
	return rc;
}

/* Runs one case: forward against y, backward with output gradient r
 * against dx (and dparam), recording the largest errors in *wf and *wg. */
static void run_case(struct pc_test *t, const json_t *c, struct worst *wf, struct worst *wg)
{
	const char *name = json_string_value(json_object_get(c, "name"));
	const char *op = json_object_get(c, "op") ? json_string_value(json_object_get(c, "op")) : "Pow";
	struct tol tl = case_tol(op);
	struct pc_error err = {0};
	struct case_graph cg;
	struct pc_plan *p = NULL;
	float *x = NULL, *r = NULL, *y = NULL, *dx = NULL, *dp = NULL;
	int64_t nx, nr, ny, ndx, ndp = 0;
	char msg[800], what[160];

	if (build_case(c, &cg, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: build: %s", name, pc_error_format(&err, msg, sizeof(msg)));
		return;
	}
	x = json_floats(json_object_get(c, "x"), &nx);
	r = json_floats(json_object_get(c, "r"), &nr);
	y = json_floats(json_object_get(c, "y"), &ny);
	dx = json_floats(json_object_get(c, "dx"), &ndx);
	if (cg.param)
		dp = json_floats(json_object_get(c, "dparam"), &ndp);
	if (!x || !r || !y || !dx || (cg.param && !dp)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: out of memory", name);
		goto out;
	}
	p = pc_plan_new(cg.g, (int)cg.xs.dim[0], PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: plan: %s", name, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	if (nx != count_of(&cg.xs) || ny != nx || nr != ny || ndx != nx) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: fixture sizes do not fit the graph", name);
		goto out;
	}
	memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
	pc_plan_forward(p);
	snprintf(what, sizeof(what), "%s: y", name);
	check_values(t, what, pc_plan_output(p), y, ny, tl.atol, tl.rtol, wf);

	memcpy(pc_plan_output_grad(p), r, (size_t)nr * sizeof(float));
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	snprintf(what, sizeof(what), "%s: dx", name);
	check_values(t, what, pc_plan_input_grad(p), dx, ndx, tl.atol, tl.rtol, wg);
	if (cg.param) {
		int k = pc_graph_find_param(cg.g, cg.param);
		if (k < 0 || pc_graph_param(cg.g, k)->count != ndp) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: weight '%s' missing or of the wrong size", name, cg.param);
			goto out;
		}
		snprintf(what, sizeof(what), "%s: d%s", name, cg.param);
		/* sums over the broadcast axes: an absolute floor for cancellation */
		check_values(t, what, pc_plan_weight_grad(p) + pc_graph_param(cg.g, k)->offset, dp, ndp, 1e-6,
				 tl.rtol, wg);
	}
out:
	pc_plan_free(p);
	pc_graph_free(cg.g);
	free(x);
	free(r);
	free(y);
	free(dx);
	free(dp);
}

TEST(ops_unary_match_torch)
{
	json_t *j = load_fixture(t, "unary_ops.json"), *cases, *c;
	struct worst wf = {0}, wg = {0};
	size_t i;
	int seen_pow = 0, seen_unary = 0;

	REQUIRE(j);
	cases = json_object_get(j, "cases");
	CHECK(json_array_size(cases) >= 25);
	json_array_foreach(cases, i, c)
	{
		const char *kind = json_string_value(json_object_get(c, "kind"));
		seen_pow += kind && !strncmp(kind, "pow", 3);
		seen_unary += kind && !strcmp(kind, "unary");
		run_case(t, c, &wf, &wg);
	}
	CHECK(seen_pow >= 15 && seen_unary >= 12);
	printf("  largest disagreement with PyTorch: outputs %.3g relative (%.3g absolute), gradients %.3g (%.3g)\n",
	       wf.rel, wf.abs, wg.rel, wg.abs);
	json_decref(j);
}

/* --- finite differences ---------------------------------------------------------- */

/* One op on the input, checked on every input element (batch 3 of 8). */
static void gc_unary(struct pc_test *t, const char *op, int n_attr, const struct pc_attr *attrs, float lo, float hi,
		     uint64_t seed)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(14, &err);
	struct pc_shape xs = SHP(-1, 8);
	const char *ins[1] = {"x"};
	struct gc_opts o = {.batch = 3, .eps = 1e-3, .atol = 1e-3, .rtol = 1e-3, .samples = 64, .seed = seed,
			    .check_input = 1, .input_lo = lo, .input_hi = hi};
	char msg[800];

	REQUIRE(g);
	if (pc_graph_add_input(g, "x", &xs, &err) || add_node(g, op, "op", 1, ins, "y", n_attr, attrs, &err) ||
	    finish(g, "y", 2, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", op, pc_error_format(&err, msg, sizeof(msg)));
		pc_graph_free(g);
		return;
	}
	CHECK_MSG(gc_check(t, g, &o) == 24, "%s: not every element was checked", op);
	pc_graph_free(g);
}

TEST(ops_unary_gradcheck)
{
	const struct pc_attr hs_default[1] = {{0}};
	const struct pc_attr hs_torch[2] = {a_float("alpha", 1.0f / 6.0f), a_float("beta", 0.5f)};
	const struct pc_attr hs_other[2] = {a_float("alpha", 0.3f), a_float("beta", -0.1f)};

	/* inputs inside each op's domain; the seeds keep every sample more
	 * than eps away from the kinks (0 for Abs, +-3 for the hard ones) */
	gc_unary(t, "Abs", 0, NULL, -1.0f, 1.0f, 3);
	gc_unary(t, "Neg", 0, NULL, -1.0f, 1.0f, 4);
	gc_unary(t, "Reciprocal", 0, NULL, 0.5f, 2.0f, 5);
	gc_unary(t, "Reciprocal", 0, NULL, -2.0f, -0.5f, 6);
	gc_unary(t, "Sqrt", 0, NULL, 0.3f, 3.0f, 7);
	gc_unary(t, "Exp", 0, NULL, -2.0f, 2.0f, 8);
	gc_unary(t, "Log", 0, NULL, 0.3f, 3.0f, 9);
	gc_unary(t, "Erf", 0, NULL, -2.5f, 2.5f, 10);
	gc_unary(t, "HardSwish", 0, NULL, -5.0f, 5.0f, 11);
	gc_unary(t, "HardSigmoid", 0, hs_default, -4.0f, 4.0f, 12);
	gc_unary(t, "HardSigmoid", 2, hs_torch, -5.0f, 5.0f, 13);
	gc_unary(t, "HardSigmoid", 2, hs_other, -5.0f, 5.0f, 14);
}

/* Pow with the input as base (exponent a Constant, a weight of several
 * shapes, or computed from the input), or as exponent (a weight base). */
TEST(ops_pow_gradcheck)
{
	static const float e_scalars[] = {2.0f, 3.0f, 0.5f, -0.5f, -1.0f, -2.0f, 1.7f, -1.3f, 0.0f, 1.0f};
	struct gc_opts o = {.batch = 3, .eps = 1e-3, .atol = 1e-3, .rtol = 1e-3, .samples = 64, .seed = 21,
			    .check_input = 1, .input_lo = 0.4f, .input_hi = 2.0f};
	struct pc_error err = {0};
	char msg[800];

	for (size_t k = 0; k < sizeof(e_scalars) / sizeof(e_scalars[0]); k++) {
		struct pc_graph *g = pc_graph_new(13, &err);
		struct pc_shape xs = SHP(-1, 2, 4);
		struct pc_attr v = a_tensor(PC_DTYPE_FLOAT, SCALAR, &e_scalars[k]);
		const char *ins[2] = {"x", "e"};
		REQUIRE(g);
		if (pc_graph_add_input(g, "x", &xs, &err) || add_node(g, "Constant", "c", 0, NULL, "e", 1, &v, &err) ||
		    add_node(g, "Pow", "pow", 2, ins, "y", 0, NULL, &err) || finish(g, "y", 3, &err)) {
			pc_test_fail(t, __FILE__, __LINE__, "x**%g: %s", e_scalars[k], pc_error_format(&err, msg, sizeof(msg)));
			pc_graph_free(g);
			continue;
		}
		CHECK_MSG(gc_check(t, g, &o) == 24, "x**%g: not every element checked", e_scalars[k]);
		/* integer exponents on negative bases too */
		if (e_scalars[k] == 2.0f || e_scalars[k] == 3.0f || e_scalars[k] == -1.0f) {
			struct gc_opts on = o;
			on.input_lo = -2.0f;
			on.input_hi = -0.4f;
			CHECK(gc_check(t, g, &on) == 24);
		}
		pc_graph_free(g);
	}

	/* a weight exponent against the input base: [2,4], [4], [2,1], scalar */
	{
		static const int64_t edims[][3] = {{2, 2, 4}, {1, 4, 0}, {2, 2, 1}, {0, 0, 0}};
		float ew[8];
		gc_fill(ew, 8, 31, -1.5f, 2.5f);
		for (size_t k = 0; k < 4; k++) {
			struct pc_graph *g = pc_graph_new(13, &err);
			struct pc_shape xs = SHP(-1, 2, 4), es = shape_of((int)edims[k][0], &edims[k][1]);
			const char *ins[2] = {"x", "W"};
			REQUIRE(g);
			if (pc_graph_add_input(g, "x", &xs, &err) || pc_graph_add_float(g, "W", &es, ew, &err) ||
			    add_node(g, "Pow", "pow", 2, ins, "y", 0, NULL, &err) || finish(g, "y", 3, &err)) {
				pc_test_fail(t, __FILE__, __LINE__, "weight exponent %zu: %s", k,
					     pc_error_format(&err, msg, sizeof(msg)));
				pc_graph_free(g);
				continue;
			}
			CHECK(gc_check(t, g, &o) == 24 + count_of(&es));
			pc_graph_free(g);
		}
	}

	/* a weight base [2,1] (broadcast along the last axis) to the input */
	{
		const float bw[2] = {0.7f, 1.9f};
		struct pc_graph *g = pc_graph_new(13, &err);
		struct pc_shape xs = SHP(-1, 2, 4), bsh = SHP(2, 1);
		const char *ins[2] = {"B", "x"};
		struct gc_opts ox = o;
		REQUIRE(g);
		ox.input_lo = -2.0f;
		ox.input_hi = 2.0f;
		if (pc_graph_add_input(g, "x", &xs, &err) || pc_graph_add_float(g, "B", &bsh, bw, &err) ||
		    add_node(g, "Pow", "pow", 2, ins, "y", 0, NULL, &err) || finish(g, "y", 3, &err)) {
			pc_test_fail(t, __FILE__, __LINE__, "weight base: %s", pc_error_format(&err, msg, sizeof(msg)));
		} else {
			CHECK(gc_check(t, g, &ox) == 24 + 2);
		}
		pc_graph_free(g);
	}

	/* both run-time: Sigmoid(x) [N,3,4] ** MatMul(x, W) [N,3,1], so the
	 * input receives both gradients, one summed over the broadcast axis */
	{
		float w[4];
		struct pc_graph *g = pc_graph_new(13, &err);
		struct pc_shape xs = SHP(-1, 3, 4), ws = SHP(4, 1);
		const char *sin[1] = {"x"}, *min[2] = {"x", "W"}, *pin[2] = {"s", "m"}, *pin2[2] = {"m", "s"};
		struct gc_opts ox = o;
		gc_fill(w, 4, 41, -1.0f, 1.0f);
		REQUIRE(g);
		ox.input_lo = -1.5f;
		ox.input_hi = 1.5f;
		if (pc_graph_add_input(g, "x", &xs, &err) || pc_graph_add_float(g, "W", &ws, w, &err) ||
		    add_node(g, "Sigmoid", "sig", 1, sin, "s", 0, NULL, &err) ||
		    add_node(g, "MatMul", "mm", 2, min, "m", 0, NULL, &err) ||
		    add_node(g, "Pow", "pow", 2, pin, "y1", 0, NULL, &err) || finish(g, "y1", 3, &err)) {
			pc_test_fail(t, __FILE__, __LINE__, "run-time exponent: %s", pc_error_format(&err, msg, sizeof(msg)));
		} else {
			CHECK(gc_check(t, g, &ox) == 36 + 4);
		}
		pc_graph_free(g);

		/* and the broadcast base: Sigmoid(MatMul) [N,3,1] ** x... as m ** s
		 * with m made positive by a Sigmoid of its own */
		g = pc_graph_new(13, &err);
		REQUIRE(g);
		{
			const char *msin[1] = {"m0"};
			const char *min0[2] = {"x", "W"};
			if (pc_graph_add_input(g, "x", &xs, &err) || pc_graph_add_float(g, "W", &ws, w, &err) ||
			    add_node(g, "Sigmoid", "sig", 1, sin, "s", 0, NULL, &err) ||
			    add_node(g, "MatMul", "mm", 2, min0, "m0", 0, NULL, &err) ||
			    add_node(g, "Sigmoid", "sigm", 1, msin, "m", 0, NULL, &err) ||
			    add_node(g, "Pow", "pow", 2, pin2, "y2", 0, NULL, &err) || finish(g, "y2", 3, &err)) {
				pc_test_fail(t, __FILE__, __LINE__, "run-time base: %s",
					     pc_error_format(&err, msg, sizeof(msg)));
			} else {
				CHECK(gc_check(t, g, &ox) == 36 + 4);
			}
		}
		pc_graph_free(g);
	}
}

/* --- Pow of constants, int64 exponents ------------------------------------------- */

/* Both inputs known before the run (the plan may fold it): the values of a
 * constant Pow added to the input. */
TEST(ops_pow_static_operands)
{
	static const float base[4] = {4.0f, 9.0f, 2.0f, 3.0f}, ev[4] = {0.5f, 0.5f, 3.0f, -1.0f}, two = 2.0f;
	static const int64_t iev[4] = {2, 0, 3, -1};
	/* exact results (1/3 rounded once): a float vector exponent, a scalar
	 * one (torch's x*x) and an int64 vector */
	static const float want[3][4] = {{2.0f, 3.0f, 8.0f, 1.0f / 3.0f},
					 {16.0f, 81.0f, 4.0f, 9.0f},
					 {16.0f, 1.0f, 8.0f, 1.0f / 3.0f}};
	const float x[8] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f};

	for (int variant = 0; variant < 3; variant++) {
		struct pc_error err = {0};
		struct pc_graph *g = pc_graph_new(13, &err);
		struct pc_shape xs = SHP(-1, 4);
		struct pc_attr vb = a_tensor(PC_DTYPE_FLOAT, SHP(4), base);
		struct pc_attr ve = variant == 0   ? a_tensor(PC_DTYPE_FLOAT, SHP(4), ev)
				    : variant == 1 ? a_tensor(PC_DTYPE_FLOAT, SCALAR, &two)
						   : a_tensor(PC_DTYPE_INT64, SHP(4), iev);
		const char *pin[2] = {"b", "e"}, *ain[2] = {"x", "pw"};
		struct pc_plan *p;
		char msg[800];
		REQUIRE(g);
		if (pc_graph_add_input(g, "x", &xs, &err) || add_node(g, "Constant", "cb", 0, NULL, "b", 1, &vb, &err) ||
		    add_node(g, "Constant", "ce", 0, NULL, "e", 1, &ve, &err) ||
		    add_node(g, "Pow", "pow", 2, pin, "pw", 0, NULL, &err) ||
		    add_node(g, "Add", "add", 2, ain, "y", 0, NULL, &err) || finish(g, "y", 2, &err)) {
			pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
			pc_graph_free(g);
			continue;
		}
		p = pc_plan_new(g, 2, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
		if (!p) {
			pc_test_fail(t, __FILE__, __LINE__, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		} else {
			const float *w = want[variant];
			memcpy(pc_plan_input(p), x, sizeof(x));
			pc_plan_forward(p);
			/* twice: a folded value must not be lost after the first pass */
			pc_plan_forward(p);
			for (int i = 0; i < 8; i++)
				CHECK_CLOSE(pc_plan_output(p)[i], x[i] + w[i % 4], 0, 0);
			for (int i = 0; i < 8; i++)
				pc_plan_output_grad(p)[i] = (float)(i + 1);
			pc_plan_backward(p);
			for (int i = 0; i < 8; i++)
				CHECK_CLOSE(pc_plan_input_grad(p)[i], i + 1, 0, 0);
		}
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

/* --- load-time errors ------------------------------------------------------------- */

static void expect_error(struct pc_test *t, struct pc_graph *g, int rc, const struct pc_error *err,
			 enum pc_status code, const char *node, const char *words)
{
	char msg[800];

	pc_error_format(err, msg, sizeof(msg));
	CHECK_MSG(rc != PC_OK, "graph finished; expected %s", pc_status_name(code));
	CHECK_MSG(err->code == code, "expected %s, got %s: %s", pc_status_name(code), pc_status_name(err->code), msg);
	CHECK_MSG(strstr(msg, node) != NULL, "error '%s' does not name node '%s'", msg, node);
	CHECK_MSG(!words || strstr(msg, words) != NULL, "error '%s' does not say '%s'", msg, words);
	pc_graph_free(g);
}

/* One op on x [N, 4] with the given second input (a Constant) and
 * attributes, at an opset; returns the finish status. */
static int one_op(struct pc_graph **gp, int opset, const char *op, const struct pc_attr *second, int n_attr,
		  const struct pc_attr *attrs, struct pc_error *err)
{
	struct pc_shape xs = SHP(-1, 4);
	const char *ins[2] = {"x", "c"};
	struct pc_graph *g = pc_graph_new(opset, err);
	int rc;

	*gp = g;
	if (!g)
		return err->code;
	if ((rc = pc_graph_add_input(g, "x", &xs, err)))
		return rc;
	if (second && (rc = add_node(g, "Constant", "const", 0, NULL, "c", 1, second, err)))
		return rc;
	if ((rc = add_node(g, op, "bad", second ? 2 : 1, ins, "y", n_attr, attrs, err)))
		return rc;
	return finish(g, "y", 2, err);
}

TEST(ops_unary_load_errors)
{
	static const int64_t two = 2, i4[4] = {1, 2, 3, 4};
	static const float f3[3] = {1, 2, 3}, f1 = 2.0f;
	struct pc_attr i_scalar = a_tensor(PC_DTYPE_INT64, SCALAR, &two);
	struct pc_attr f_three = a_tensor(PC_DTYPE_FLOAT, SHP(3), f3);
	struct pc_attr f_scalar = a_tensor(PC_DTYPE_FLOAT, SCALAR, &f1);
	struct pc_attr i_vec = a_tensor(PC_DTYPE_INT64, SHP(4), i4);
	struct pc_attr nan_alpha[1] = {a_float("alpha", NAN)}, inf_beta[1] = {a_float("beta", -INFINITY)};
	struct pc_attr int_alpha[1] = {{.name = "alpha", .type = PC_ATTR_INT, .i = 1}};
	struct pc_attr unknown[1] = {a_float("gamma", 1.0f)};
	struct pc_error err = {0};
	struct pc_graph *g;
	int rc;

	/* HardSwish is an opset-14 op */
	rc = one_op(&g, 13, "HardSwish", NULL, 0, NULL, &err);
	expect_error(t, g, rc, &err, PC_ERR_FORMAT, "bad", "opset 14");
	/* Pow-7 (opsets 7..11) has one type for base and exponent */
	err = (struct pc_error){0};
	rc = one_op(&g, 11, "Pow", &i_scalar, 0, NULL, &err);
	expect_error(t, g, rc, &err, PC_ERR_FORMAT, "bad", "opset 12");
	/* exponent [3] against base [N, 4] */
	err = (struct pc_error){0};
	rc = one_op(&g, 13, "Pow", &f_three, 0, NULL, &err);
	expect_error(t, g, rc, &err, PC_ERR_SHAPE, "bad", "broadcast");
	/* HardSigmoid's attributes: finite floats */
	err = (struct pc_error){0};
	rc = one_op(&g, 13, "HardSigmoid", NULL, 1, nan_alpha, &err);
	expect_error(t, g, rc, &err, PC_ERR_FORMAT, "bad", "alpha");
	err = (struct pc_error){0};
	rc = one_op(&g, 13, "HardSigmoid", NULL, 1, inf_beta, &err);
	expect_error(t, g, rc, &err, PC_ERR_FORMAT, "bad", "beta");
	err = (struct pc_error){0};
	rc = one_op(&g, 13, "HardSigmoid", NULL, 1, int_alpha, &err);
	expect_error(t, g, rc, &err, PC_ERR_FORMAT, "bad", "alpha");
	/* an attribute the op does not have */
	err = (struct pc_error){0};
	rc = one_op(&g, 13, "Erf", NULL, 1, unknown, &err);
	expect_error(t, g, rc, &err, PC_ERR_UNSUPPORTED, "bad", "gamma");

	/* a float exponent of the right shape, an int64 one at opset 12+:
	 * accepted, and x ** int64 [1,2,3,4] computes x^k */
	err = (struct pc_error){0};
	rc = one_op(&g, 13, "Pow", &f_scalar, 0, NULL, &err);
	CHECK_MSG(rc == PC_OK, "float exponent refused: %s", err.text);
	pc_graph_free(g);
	err = (struct pc_error){0};
	rc = one_op(&g, 12, "Pow", &i_vec, 0, NULL, &err);
	CHECK_MSG(rc == PC_OK, "int64 exponent at opset 12 refused: %s", err.text);
	if (rc == PC_OK) {
		struct pc_plan *p = pc_plan_new(g, 1, 0, &err);
		const float x[4] = {-1.5f, 3.0f, -2.0f, 0.5f}, want[4] = {-1.5f, 9.0f, -8.0f, 0.0625f};
		REQUIRE(p);
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		for (int i = 0; i < 4; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], want[i], 0, 0);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* --- torch.onnx.export'ed models ----------------------------------------------------- */

static void check_model(struct pc_test *t, const json_t *ref, const char *opset, struct worst *wf, struct worst *wg)
{
	const json_t *m = json_object_get(json_object_get(ref, "models"), opset), *grads = json_object_get(ref, "grads");
	const char *file = json_string_value(json_object_get(m, "file")), *key;
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_plan *p = NULL;
	float *x = NULL, *r = NULL, *out = NULL, *dx = NULL;
	int64_t nx, nr, nout, ndx;
	const json_t *val;
	char path[512], msg[800], what[160];

	REQUIRE_MSG(file, "no model for opset %s", opset);
	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s", pc_test_root(), file);
	if (pc_onnx_load_file(path, &g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", file, pc_error_format(&err, msg, sizeof(msg)));
		return;
	}
	CHECK_INT(pc_graph_opset(g), atoi(opset));
	/* the ops the export wrote are the ones the graph runs */
	json_object_foreach((json_t *)json_object_get(m, "ops"), key, val)
	{
		int count = 0;
		for (int k = 0; k < pc_graph_node_count(g); k++)
			count += !strcmp(pc_graph_node_op(g, k), key);
		CHECK_MSG(count == json_integer_value(val), "%s: %d %s nodes, the export has %lld", file, count, key,
			  (long long)json_integer_value(val));
	}
	CHECK_INT(pc_graph_param_tensors(g), json_object_size(grads));
	x = json_floats(json_object_get(ref, "input"), &nx);
	r = json_floats(json_object_get(ref, "r"), &nr);
	out = json_floats(json_object_get(ref, "output"), &nout);
	dx = json_floats(json_object_get(ref, "input_grad"), &ndx);
	if (!x || !r || !out || !dx)
		goto done;
	p = pc_plan_new(g, 4, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: plan: %s", file, pc_error_format(&err, msg, sizeof(msg)));
		goto done;
	}
	if (nx != 4 * pc_plan_sample_numel(p) || nout != 4 * pc_plan_classes(p) || nr != nout || ndx != nx) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: fixture sizes do not fit the model", file);
		goto done;
	}
	memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
	pc_plan_forward(p);
	snprintf(what, sizeof(what), "%s: output", file);
	check_values(t, what, pc_plan_output(p), out, nout, 1e-6, 1e-5, wf);
	memcpy(pc_plan_output_grad(p), r, (size_t)nr * sizeof(float));
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	snprintf(what, sizeof(what), "%s: input gradient", file);
	check_values(t, what, pc_plan_input_grad(p), dx, ndx, 1e-6, 1e-4, wg);
	json_object_foreach((json_t *)grads, key, val)
	{
		int k = pc_graph_find_param(g, key);
		int64_t n;
		float *want;
		if (k < 0) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: no weight '%s'", file, key);
			continue;
		}
		want = json_floats(json_object_get(val, "values"), &n);
		if (!want)
			continue;
		CHECK_INT(pc_graph_param(g, k)->count, n);
		snprintf(what, sizeof(what), "%s: d %s", file, key);
		if (pc_graph_param(g, k)->count == n)
			check_values(t, what, pc_plan_weight_grad(p) + pc_graph_param(g, k)->offset, want, n, 1e-6, 1e-4, wg);
		free(want);
	}
done:
	pc_plan_free(p);
	pc_graph_free(g);
	free(x);
	free(r);
	free(out);
	free(dx);
}

TEST(ops_unary_onnx_models_match_torch)
{
	json_t *ref = load_fixture(t, "unary_model.json");
	static const char *const opsets[] = {"11", "14", "17"};

	REQUIRE(ref);
	for (int k = 0; k < 3; k++) {
		struct worst wf = {0}, wg = {0};
		check_model(t, ref, opsets[k], &wf, &wg);
		printf("  opset %s: largest disagreement with PyTorch: outputs %.3g relative (%.3g absolute), "
		       "gradients %.3g (%.3g)\n",
		       opsets[k], wf.rel, wf.abs, wg.rel, wg.abs);
	}
	json_decref(ref);
}

/* --- int64 Abs and Neg, folding ------------------------------------------------------- */

/* Run-time int64: token ids through Neg and Abs, turned into floats by
 * Pow(2, ids) (a run-time int64 exponent). INT64_MIN wraps to itself, as
 * in numpy, and 2^INT64_MIN is 0. */
TEST(ops_unary_int64_runtime)
{
	static const int64_t ids[8] = {0, 3, -2, 5, INT64_MIN, 1, -1, 10};
	static const float two = 2.0f;
	static const float want[2][8] = {
		{1.0f, 0.125f, 4.0f, 0.03125f, 0.0f, 0.5f, 2.0f, 0.0009765625f}, /* 2^-id */
		{1.0f, 8.0f, 4.0f, 32.0f, 0.0f, 2.0f, 2.0f, 1024.0f},		  /* 2^|id| */
	};
	static const char *const ops[2] = {"Neg", "Abs"};

	for (int k = 0; k < 2; k++) {
		struct pc_error err = {0};
		struct pc_graph *g = pc_graph_new(13, &err);
		struct pc_shape xs = SHP(-1, 8);
		struct pc_attr v = a_tensor(PC_DTYPE_FLOAT, SCALAR, &two);
		const char *uin[1] = {"ids"}, *pin[2] = {"two", "u"};
		struct pc_plan *p = NULL;
		char msg[800];
		REQUIRE(g);
		if (pc_graph_add_input_typed(g, "ids", &xs, PC_DTYPE_INT64, &err) ||
		    add_node(g, ops[k], "op", 1, uin, "u", 0, NULL, &err) ||
		    add_node(g, "Constant", "c2", 0, NULL, "two", 1, &v, &err) ||
		    add_node(g, "Pow", "pow", 2, pin, "y", 0, NULL, &err) || finish(g, "y", 2, &err) ||
		    !(p = pc_plan_new(g, 2, PC_PLAN_GRAD, &err))) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", ops[k], pc_error_format(&err, msg, sizeof(msg)));
			pc_graph_free(g);
			continue;
		}
		REQUIRE(pc_plan_input_int64(p));
		for (int b = 0; b < 2; b++)
			for (int i = 0; i < 8; i++)
				pc_plan_input_int64(p)[b * 8 + i] = b ? ids[7 - i] : ids[i];
		pc_plan_forward(p);
		for (int b = 0; b < 2; b++)
			for (int i = 0; i < 8; i++)
				CHECK_MSG(pc_plan_output(p)[b * 8 + i] == want[k][b ? 7 - i : i], "%s: out[%d] = %.9g", ops[k],
					  b * 8 + i, (double)pc_plan_output(p)[b * 8 + i]);
		/* no gradient flows into integers; backward must simply run */
		for (int i = 0; i < 16; i++)
			pc_plan_output_grad(p)[i] = 1.0f;
		pc_plan_backward(p);
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

/* Static inputs are folded by the plan through the op's own forward: an
 * int64 Neg or Abs of a Constant gives Reshape its shape, and a float Sqrt
 * of a Constant is added to the input. */
TEST(ops_unary_folded)
{
	static const int64_t neg_shape[2] = {0, -6}, abs_shape[2] = {0, -6};
	static const float c[6] = {4.0f, 2.25f, 0.0f, 1.0f, 16.0f, 0.0625f};
	static const float root[6] = {2.0f, 1.5f, 0.0f, 1.0f, 4.0f, 0.25f};
	static const char *const ops[2] = {"Neg", "Abs"};
	const float x[12] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};

	for (int k = 0; k < 2; k++) {
		struct pc_error err = {0};
		struct pc_graph *g = pc_graph_new(13, &err);
		struct pc_shape xs = SHP(-1, 2, 3);
		struct pc_attr vs = a_tensor(PC_DTYPE_INT64, SHP(2), k ? (const void *)abs_shape : (const void *)neg_shape);
		struct pc_attr vc = a_tensor(PC_DTYPE_FLOAT, SHP(6), c);
		const char *uin[1] = {"s"}, *rin[2] = {"x", "shape"}, *qin[1] = {"cf"}, *ain[2] = {"flat", "root"};
		struct pc_plan *p = NULL;
		char msg[800];
		REQUIRE(g);
		/* Neg([0, -6]) = [0, 6]; Abs the same: Reshape [N,2,3] -> [N,6] */
		if (pc_graph_add_input(g, "x", &xs, &err) || add_node(g, "Constant", "cs", 0, NULL, "s", 1, &vs, &err) ||
		    add_node(g, ops[k], "op", 1, uin, "shape", 0, NULL, &err) ||
		    add_node(g, "Reshape", "rs", 2, rin, "flat", 0, NULL, &err) ||
		    add_node(g, "Constant", "cc", 0, NULL, "cf", 1, &vc, &err) ||
		    add_node(g, "Sqrt", "sq", 1, qin, "root", 0, NULL, &err) ||
		    add_node(g, "Add", "add", 2, ain, "y", 0, NULL, &err) || finish(g, "y", 2, &err) ||
		    !(p = pc_plan_new(g, 2, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err))) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", ops[k], pc_error_format(&err, msg, sizeof(msg)));
			pc_graph_free(g);
			continue;
		}
		CHECK_INT(pc_plan_classes(p), 6);
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		pc_plan_forward(p);
		for (int i = 0; i < 12; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], x[i] + root[i % 6], 0, 0);
		for (int i = 0; i < 12; i++)
			pc_plan_output_grad(p)[i] = (float)i - 5.0f;
		pc_plan_backward(p);
		for (int i = 0; i < 12; i++)
			CHECK_CLOSE(pc_plan_input_grad(p)[i], (float)i - 5.0f, 0, 0);
		pc_plan_free(p);
		pc_graph_free(g);
	}
}
