/* Tests of the logic op family (core/ops/logic.c) and Cast: comparisons,
 * boolean logic, Where, Mod, ConstantOfShape, Range, Trilu.
 *
 * Expected values are literals computed with numpy 1.24 / torch 1.13
 * (/usr/bin/python3; the snippets are quoted next to the numbers where
 * they are not obvious), gradients are checked by finite differences
 * (gradcheck). Values inside a plan (folded at prepare, or bool/int64
 * tensors computed at run time) are read through pc_plan_value (plan.h). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

/* --- building helpers --------------------------------------------------------------- */

static struct pc_shape sh(int ndim, const int64_t *dims)
{
	struct pc_shape s = {.ndim = ndim};

	for (int i = 0; i < ndim; i++)
		s.dim[i] = dims[i];
	return s;
}

#define SH(...) sh((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR ((struct pc_shape){.ndim = 0})
#define I64S(...) (const int64_t[]){__VA_ARGS__}
#define F32S(...) (const float[]){__VA_ARGS__}

static struct pc_attr a_int(const char *name, int64_t v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_INT, .i = v};
}

static struct pc_attr a_tensor(const char *name, enum pc_dtype dt, struct pc_shape s, const void *data)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_TENSOR, .tdtype = dt, .tshape = s, .tdata = data};
}

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

/* A node with comma-separated input and output names ("" = omitted). */
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

/* A float constant: a Constant node, since a float initializer is a
 * weight (corruptible, so never folded). */
static void add_f32(struct pc_graph *g, const char *name, struct pc_shape s, const float *v, struct pc_error *err)
{
	char nm[64];
	struct pc_attr value = a_tensor("value", PC_DTYPE_FLOAT, s, v);

	snprintf(nm, sizeof(nm), "%s_const", name);
	node(g, "Constant", nm, "", name, 1, &value, err);
}

/* A float weight. */
static void add_weight(struct pc_graph *g, const char *name, struct pc_shape s, const float *v, struct pc_error *err)
{
	pc_graph_add_float(g, name, &s, v, err);
}

static void add_i64(struct pc_graph *g, const char *name, struct pc_shape s, const int64_t *v, struct pc_error *err)
{
	pc_graph_add_int64(g, name, &s, v, err);
}

/* A bool constant `name`: an int64 initializer through Cast(to=BOOL). */
static void add_bool(struct pc_graph *g, const char *name, struct pc_shape s, const int64_t *v, struct pc_error *err)
{
	char init[64], cast[64];
	struct pc_attr to = a_int("to", PC_DTYPE_BOOL);

	snprintf(init, sizeof(init), "%s_i64", name);
	snprintf(cast, sizeof(cast), "%s_cast", name);
	pc_graph_add_int64(g, init, &s, v, err);
	node(g, "Cast", cast, init, name, 1, &to, err);
}

/* x -> Flatten -> y: the output a graph needs while the values under test
 * are side branches read from the plan. */
static struct pc_graph *side_graph(int opset, struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(opset, SH(-1, 2), err);

	node(g, "Flatten", "flat", "x", "y", 0, NULL, err);
	return g;
}

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

/* Finishing must fail with code, naming the node, with needle in the text;
 * frees g. */
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

/* A plan at batch with the float input filled from x (or a ramp when x is
 * NULL), run forward once. */
static struct pc_plan *run(struct pc_test *t, int line, const struct pc_graph *g, int batch, const float *x)
{
	struct pc_error err = {0};
	struct pc_plan *p = pc_plan_new(g, batch, 0, &err);
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

#define RUN(g, batch, x) run(t, __LINE__, g, batch, x)

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

/* The named value has dtype dt (INT64 or BOOL), is static when
 * want_static is 1 / run-time when 0, and holds these values. */
static void check_ints(struct pc_test *t, int line, const struct pc_plan *p, const char *name, enum pc_dtype dt,
		       int want_static, int n, const int64_t *want)
{
	struct pc_plan_value value;
	const struct pc_plan_value *v = pc_plan_value(p, name, &value, NULL) == PC_OK ? &value : NULL;

	if (!v || v->dtype != dt || v->numel != n || (n && !v->ival)) {
		pc_test_fail(t, __FILE__, line, "'%s' is not a %s tensor of %d values (dtype %s, %lld values)", name,
			     pc_dtype_name(dt), n, v ? pc_dtype_name(v->dtype) : "-", v ? (long long)v->numel : -1LL);
		return;
	}
	if (want_static >= 0 && v->is_static != want_static)
		pc_test_fail(t, __FILE__, line, "'%s' is %s, expected %s", name, v->is_static ? "static" : "run-time",
			     want_static ? "static" : "run-time");
	for (int i = 0; i < n; i++)
		if (v->ival[i] != want[i])
			pc_test_fail(t, __FILE__, line, "'%s'[%d] = %lld, expected %lld", name, i, (long long)v->ival[i],
				     (long long)want[i]);
}

#define NARGS_I(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define CHECK_I64(p, name, ...) check_ints(t, __LINE__, p, name, PC_DTYPE_INT64, 1, NARGS_I(__VA_ARGS__), I64S(__VA_ARGS__))
#define CHECK_BOOL(p, name, ...) check_ints(t, __LINE__, p, name, PC_DTYPE_BOOL, 1, NARGS_I(__VA_ARGS__), I64S(__VA_ARGS__))
#define CHECK_BOOL_RT(p, name, ...)                                                                                \
	check_ints(t, __LINE__, p, name, PC_DTYPE_BOOL, 0, NARGS_I(__VA_ARGS__), I64S(__VA_ARGS__))
#define CHECK_EMPTY(p, name, dt) check_ints(t, __LINE__, p, name, dt, 1, 0, NULL)

/* The named value is static float with exactly these values (NaN matches
 * NaN, -0 only -0). */
static void check_floats(struct pc_test *t, int line, const struct pc_plan *p, const char *name, int n,
			 const float *want)
{
	struct pc_plan_value value;
	const struct pc_plan_value *v = pc_plan_value(p, name, &value, NULL) == PC_OK ? &value : NULL;

	if (!v || v->dtype != PC_DTYPE_FLOAT || !v->is_static || v->numel != n || (n && !v->data)) {
		pc_test_fail(t, __FILE__, line, "'%s' is not a static float tensor of %d values", name, n);
		return;
	}
	for (int i = 0; i < n; i++) {
		float a = v->data[i], b = want[i];
		int same = isnan(b) ? isnan(a) : a == b && signbit(a) == signbit(b);
		if (!same)
			pc_test_fail(t, __FILE__, line, "'%s'[%d] = %.9g, expected %.9g", name, i, (double)a, (double)b);
	}
}

#define NARGS_F(...) (int)(sizeof((float[]){__VA_ARGS__}) / sizeof(float))
#define CHECK_F32(p, name, ...) check_floats(t, __LINE__, p, name, NARGS_F(__VA_ARGS__), F32S(__VA_ARGS__))

static const struct gc_opts grad_opts = {.batch = 3, .eps = 1e-2, .atol = 1e-3, .rtol = 1e-2, .seed = 23,
					 .check_input = 1};

/* --- comparisons ------------------------------------------------------------------------- */

TEST(ops_logic_compare_static)
{
	static const char *const ops[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"};
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);
	struct pc_plan *p;
	char nm[32], out[32];

	/* a [2,3] against b [3], NaN and signed zeros among them */
	add_f32(g, "fa", SH(2, 3), F32S(1.0f, NAN, -0.0f, 2.5f, -1.0f, 3.0f), &err);
	add_f32(g, "fb", SH(3), F32S(1.0f, NAN, 0.0f), &err);
	/* a [3,1] against b [4] */
	add_i64(g, "ia", SH(3, 1), I64S(-2, 0, 5), &err);
	add_i64(g, "ib", SH(4), I64S(-2, 0, 5, INT64_MAX), &err);
	for (int k = 0; k < 5; k++) {
		snprintf(nm, sizeof(nm), "f%d", k);
		snprintf(out, sizeof(out), "fr%d", k);
		node(g, ops[k], nm, "fa,fb", out, 0, NULL, &err);
		snprintf(nm, sizeof(nm), "i%d", k);
		snprintf(out, sizeof(out), "ir%d", k);
		node(g, ops[k], nm, "ia,ib", out, 0, NULL, &err);
	}
	/* bool Equal, [4] against [2,1] */
	add_bool(g, "bp", SH(4), I64S(0, 1, 1, 0), &err);
	add_bool(g, "bq", SH(2, 1), I64S(1, 0), &err);
	node(g, "Equal", "beq", "bp,bq", "bres", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		/* numpy: np.equal(a, b) etc. on the arrays above */
		CHECK_SHAPE(p, "fr0", SH(2, 3));
		CHECK_BOOL(p, "fr0", 1, 0, 1, 0, 0, 0);
		CHECK_BOOL(p, "fr1", 0, 0, 0, 0, 0, 0);
		CHECK_BOOL(p, "fr2", 0, 0, 0, 1, 0, 1);
		CHECK_BOOL(p, "fr3", 1, 0, 1, 0, 0, 0);
		CHECK_BOOL(p, "fr4", 1, 0, 1, 1, 0, 1);
		CHECK_SHAPE(p, "ir0", SH(3, 4));
		CHECK_BOOL(p, "ir0", 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0);
		CHECK_BOOL(p, "ir1", 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1);
		CHECK_BOOL(p, "ir2", 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0);
		CHECK_BOOL(p, "ir3", 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1);
		CHECK_BOOL(p, "ir4", 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0);
		CHECK_SHAPE(p, "bres", SH(2, 4));
		CHECK_BOOL(p, "bres", 0, 1, 1, 0, 1, 0, 0, 1);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* A run-time float input compared with a constant: the bool mask is made
 * at every pass and feeds Where and Cast. y = where(x > c, x, 0) +
 * float(x <= c), i.e. x where x > c and 1 elsewhere. */
TEST(ops_logic_compare_runtime)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 3), &err);
	const float c[3] = {0.0f, -0.5f, 0.5f}, x[6] = {0.25f, -0.75f, 0.5f, -1.0f, 0.0f, 2.0f};
	struct pc_plan *p;

	add_f32(g, "c", SH(3), c, &err);
	add_f32(g, "zero", SCALAR, F32S(0.0f), &err);
	node(g, "Greater", "gt", "x,c", "mask", 0, NULL, &err);
	node(g, "LessOrEqual", "le", "x,c", "notmask", 0, NULL, &err);
	node(g, "Where", "wh", "mask,x,zero", "kept", 0, NULL, &err);
	node(g, "Cast", "tofloat", "notmask", "ones", 1, (struct pc_attr[]){a_int("to", PC_DTYPE_FLOAT)}, &err);
	node(g, "Add", "add", "kept,ones", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, x))) {
		const float want[6] = {0.25f, 1.0f, 1.0f, 1.0f, 0.0f, 2.0f};
		CHECK_BOOL_RT(p, "mask", 1, 0, 0, 0, 1, 1);
		CHECK_BOOL_RT(p, "notmask", 0, 1, 1, 1, 0, 0);
		for (int i = 0; i < 6; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], want[i], 0, 0);
		/* a second pass sees new inputs: nothing was folded */
		for (int i = 0; i < 6; i++)
			pc_plan_input(p)[i] = -x[i];
		pc_plan_forward(p);
		/* -0 > -0.5 */
		CHECK_BOOL_RT(p, "mask", 0, 1, 0, 1, 1, 0);
		{
			const float want2[6] = {1.0f, 0.75f, 1.0f, 1.0f, 0.0f, 1.0f};
			for (int i = 0; i < 6; i++)
				CHECK_CLOSE(pc_plan_output(p)[i], want2[i], 0, 0);
		}
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_logic_compare_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);

	/* float against int64 */
	add_f32(g, "f", SH(3), F32S(1, 2, 3), &err);
	add_i64(g, "i", SH(3), I64S(1, 2, 3), &err);
	node(g, "Equal", "eqmix", "f,i", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "eqmix", "must match");
	/* bools are not ordered in ONNX */
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_bool(g, "b", SH(2), I64S(0, 1), &err);
	node(g, "Less", "ltbool", "b,b", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "ltbool", "float or int64");
	/* shapes that do not broadcast */
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_f32(g, "f", SH(2, 3), F32S(1, 2, 3, 4, 5, 6), &err);
	add_f32(g, "h", SH(2), F32S(1, 2), &err);
	node(g, "Greater", "gtshape", "f,h", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "gtshape", "[2,3], [2]");
	/* LessOrEqual and GreaterOrEqual exist from opset 12 */
	memset(&err, 0, sizeof(err));
	g = side_graph(11, &err);
	add_f32(g, "f", SH(2), F32S(1, 2), &err);
	node(g, "GreaterOrEqual", "ge11", "f,f", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "ge11", "opset 12");
	/* no attributes */
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_f32(g, "f", SH(2), F32S(1, 2), &err);
	node(g, "Equal", "eqattr", "f,f", "r", 1, (struct pc_attr[]){a_int("axis", 0)}, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "eqattr", "axis");
}

/* Token ids as the graph input: a padding mask Equal(tokens, 0) and the
 * other integer ops at run time. y = concat of float(not(pad)),
 * float(tokens mod 3), float(7 mod tokens) (0 where a token is 0: numpy's
 * x % 0) and where(pad, -100, float(tokens)). */
TEST(ops_logic_token_input)
{
	static const int64_t tok[10] = {-4, 0, 7, 0, 3, -1, 5, 0, -3, 8};
	/* np.mod(tok, 3), np.mod(7, tok) */
	static const float want[2][20] = {
		{1, 0, 1, 0, 1, 2, 0, 1, 0, 0, -1, 0, 0, 0, 1, -4, -100, 7, -100, 3},
		{1, 1, 0, 1, 1, 2, 2, 0, 0, 2, 0, 2, 0, -2, 7, -1, 5, -100, -3, 8},
	};
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	const struct pc_attr to_f = a_int("to", PC_DTYPE_FLOAT);
	struct pc_shape in = SH(-1, 5);
	struct pc_plan *p;

	pc_graph_add_input_typed(g, "tok", &in, PC_DTYPE_INT64, &err);
	add_i64(g, "zero", SCALAR, I64S(0), &err);
	add_i64(g, "three", SH(1), I64S(3), &err);
	add_i64(g, "seven", SCALAR, I64S(7), &err);
	add_f32(g, "fill", SCALAR, F32S(-100.0f), &err);
	node(g, "Equal", "padeq", "tok,zero", "pad", 0, NULL, &err);
	node(g, "Not", "not", "pad", "keep", 0, NULL, &err);
	node(g, "Cast", "keepf", "keep", "kf", 1, &to_f, &err);
	node(g, "Mod", "mod3", "tok,three", "m", 0, NULL, &err);
	node(g, "Cast", "modf", "m", "mf", 1, &to_f, &err);
	node(g, "Mod", "mod7", "seven,tok", "d", 0, NULL, &err);
	node(g, "Cast", "divf", "d", "df", 1, &to_f, &err);
	node(g, "Cast", "tokf", "tok", "tf", 1, &to_f, &err);
	node(g, "Where", "masked", "pad,fill,tf", "wf", 0, NULL, &err);
	node(g, "Concat", "cat", "kf,mf,df,wf", "y", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = pc_plan_new(g, 2, 0, &err);
	REQUIRE_MSG(p, "plan: %s: %s", err.where, err.text);
	REQUIRE(pc_plan_input(p) == NULL && pc_plan_input_int64(p));
	memcpy(pc_plan_input_int64(p), tok, sizeof(tok));
	pc_plan_forward(p);
	CHECK_BOOL_RT(p, "pad", 0, 1, 0, 1, 0, 0, 0, 1, 0, 0);
	check_ints(t, __LINE__, p, "m", PC_DTYPE_INT64, 0, 10, (int64_t[]){2, 0, 1, 0, 0, 2, 2, 0, 0, 2});
	for (int n = 0; n < 2; n++)
		for (int j = 0; j < 20; j++)
			CHECK_CLOSE(pc_plan_output(p)[n * 20 + j], want[n][j], 0, 0);
	pc_plan_free(p);
out:
	pc_graph_free(g);
}

/* --- Not, And, Or, Xor -------------------------------------------------------------------- */

TEST(ops_logic_boolean)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);
	struct pc_plan *p;

	add_bool(g, "bp", SH(4), I64S(0, 1, 1, 0), &err);
	add_bool(g, "bq", SH(2, 1), I64S(1, 0), &err);
	node(g, "Not", "not", "bp", "np", 0, NULL, &err);
	node(g, "And", "and", "bp,bq", "pand", 0, NULL, &err);
	node(g, "Or", "or", "bp,bq", "por", 0, NULL, &err);
	node(g, "Xor", "xor", "bp,bq", "pxor", 0, NULL, &err);
	/* not(not(p)) = p, and Equal of bools is not-xor */
	node(g, "Not", "notnot", "np", "nnp", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		CHECK_BOOL(p, "bp", 0, 1, 1, 0);
		CHECK_BOOL(p, "np", 1, 0, 0, 1);
		CHECK_BOOL(p, "nnp", 0, 1, 1, 0);
		CHECK_SHAPE(p, "pand", SH(2, 4));
		CHECK_BOOL(p, "pand", 0, 1, 1, 0, 0, 0, 0, 0);
		CHECK_BOOL(p, "por", 1, 1, 1, 1, 0, 1, 1, 0);
		CHECK_BOOL(p, "pxor", 1, 0, 0, 1, 0, 1, 1, 0);
		pc_plan_free(p);
	}
	pc_graph_free(g);

	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "i", SH(2), I64S(0, 1), &err);
	node(g, "Not", "notint", "i", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "notint", "bool");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_bool(g, "b", SH(2), I64S(0, 1), &err);
	node(g, "And", "andfloat", "b,x", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "andfloat", "must match");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	node(g, "Or", "orfloat", "x,x", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "orfloat", "bool");
}

/* --- Where ---------------------------------------------------------------------------------- */

TEST(ops_logic_where_values)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);
	struct pc_plan *p;

	/* cond [2,1,3], x [4,1], y scalar: out [2,4,3] */
	add_bool(g, "c", SH(2, 1, 3), I64S(1, 0, 1, 0, 0, 1), &err);
	add_f32(g, "fx", SH(4, 1), F32S(1.5f, -2.0f, 3.0f, 4.25f), &err);
	add_f32(g, "fy", SCALAR, F32S(-9.0f), &err);
	node(g, "Where", "wf", "c,fx,fy", "rf", 0, NULL, &err);
	/* int64 and bool operands */
	add_bool(g, "c3", SH(3), I64S(0, 1, 1), &err);
	add_i64(g, "ix", SH(3), I64S(10, 20, INT64_MIN), &err);
	add_i64(g, "iy", SH(1), I64S(-1), &err);
	node(g, "Where", "wi", "c3,ix,iy", "ri", 0, NULL, &err);
	add_bool(g, "bx", SH(2, 1), I64S(1, 0), &err);
	add_bool(g, "by", SH(3), I64S(0, 0, 1), &err);
	node(g, "Where", "wb", "c3,bx,by", "rb", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		/* np.where(c, x, y) */
		CHECK_SHAPE(p, "rf", SH(2, 4, 3));
		CHECK_F32(p, "rf", 1.5f, -9.0f, 1.5f, -2.0f, -9.0f, -2.0f, 3.0f, -9.0f, 3.0f, 4.25f, -9.0f, 4.25f, -9.0f,
			  -9.0f, 1.5f, -9.0f, -9.0f, -2.0f, -9.0f, -9.0f, 3.0f, -9.0f, -9.0f, 4.25f);
		CHECK_I64(p, "ri", -1, 20, INT64_MIN);
		CHECK_SHAPE(p, "rb", SH(2, 3));
		CHECK_BOOL(p, "rb", 0, 1, 1, 0, 0, 0);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_logic_where_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);

	add_f32(g, "f", SH(2), F32S(1, 0), &err);
	node(g, "Where", "wfloatcond", "f,f,f", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "wfloatcond", "must be bool");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_bool(g, "c", SH(2), I64S(1, 0), &err);
	add_f32(g, "f", SH(2), F32S(1, 0), &err);
	add_i64(g, "i", SH(2), I64S(1, 0), &err);
	node(g, "Where", "wmix", "c,f,i", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "wmix", "must match");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_bool(g, "c", SH(3), I64S(1, 0, 1), &err);
	node(g, "Where", "wshape", "c,x,x", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "wshape", "do not broadcast");
}

/* Where with a run-time X broadcast against a weight W, then a weight V
 * broadcast against that: the masked gradients reach x, W and V, summed
 * over the broadcast axes. */
TEST(ops_logic_where_grad)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3), &err);
	const float w[3] = {0.5f, -1.0f, 2.0f}, v[2] = {3.0f, -4.0f};
	struct pc_plan *p;

	add_bool(g, "c", SH(2, 3), I64S(1, 0, 1, 0, 0, 1), &err);
	add_bool(g, "c2", SH(3), I64S(0, 1, 0), &err);
	add_weight(g, "W", SH(3), w, &err);
	add_weight(g, "V", SH(2, 1), v, &err);
	node(g, "Where", "w1", "c,x,W", "t1", 0, NULL, &err);
	node(g, "Where", "w2", "c2,V,t1", "t2", 0, NULL, &err);
	node(g, "Flatten", "flat", "t2", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	CHECK_INT(pc_graph_param_tensors(g), 2);
	if ((p = RUN(g, 2, NULL))) {
		for (int n = 0; n < 2; n++)
			for (int i = 0; i < 2; i++)
				for (int j = 0; j < 3; j++) {
					static const int c[2][3] = {{1, 0, 1}, {0, 0, 1}}, c2[3] = {0, 1, 0};
					int k = (n * 2 + i) * 3 + j;
					float t1 = c[i][j] ? 0.25f * (float)k - 1.0f : w[j];
					CHECK_CLOSE(pc_plan_output(p)[k], c2[j] ? v[i] : t1, 0, 0);
				}
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) >= 5);
out:
	pc_graph_free(g);
}

/* --- Mod ------------------------------------------------------------------------------------- */

TEST(ops_logic_mod_values)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);
	struct pc_attr fmod1 = a_int("fmod", 1), fmod0 = a_int("fmod", 0);
	struct pc_plan *p;

	add_i64(g, "a", SH(8), I64S(-7, 7, -7, 7, 0, INT64_MIN, 5, -5), &err);
	add_i64(g, "b", SH(8), I64S(3, -3, -3, 3, 5, -1, 7, 7), &err);
	node(g, "Mod", "floor", "a,b", "rfloor", 0, NULL, &err);
	node(g, "Mod", "floor0", "a,b", "rfloor0", 1, &fmod0, &err);
	node(g, "Mod", "trunc", "a,b", "rtrunc", 1, &fmod1, &err);
	/* [2,1] against [3] */
	add_i64(g, "A", SH(2, 1), I64S(10, -10), &err);
	add_i64(g, "B", SH(3), I64S(3, -4, 7), &err);
	node(g, "Mod", "bfloor", "A,B", "rbfloor", 0, NULL, &err);
	node(g, "Mod", "btrunc", "A,B", "rbtrunc", 1, &fmod1, &err);
	add_f32(g, "fa", SH(6), F32S(5.5f, -5.5f, 5.5f, -5.5f, 0.75f, -0.0f), &err);
	add_f32(g, "fb", SH(6), F32S(2.0f, 2.0f, -2.0f, -2.0f, 0.2f, 3.0f), &err);
	node(g, "Mod", "fmodf", "fa,fb", "rf", 1, &fmod1, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		/* np.mod (the divisor's sign) and np.fmod (the dividend's) */
		CHECK_I64(p, "rfloor", 2, -2, -1, 1, 0, 0, 5, 2);
		CHECK_I64(p, "rfloor0", 2, -2, -1, 1, 0, 0, 5, 2);
		CHECK_I64(p, "rtrunc", -1, 1, -1, 1, 0, 0, 5, -5);
		CHECK_SHAPE(p, "rbfloor", SH(2, 3));
		CHECK_I64(p, "rbfloor", 1, -2, 3, 2, -2, 4);
		CHECK_I64(p, "rbtrunc", 1, 2, 3, -1, -2, -3);
		/* np.fmod in float32 */
		CHECK_F32(p, "rf", 1.5f, -1.5f, 1.5f, -1.5f, 0.14999999105930328f, -0.0f);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_logic_mod_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);

	add_f32(g, "f", SH(2), F32S(1, 2), &err);
	node(g, "Mod", "floatfloor", "f,f", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "floatfloor", "fmod=1");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "i", SH(2), I64S(1, 2), &err);
	node(g, "Mod", "fmod2", "i,i", "r", 1, (struct pc_attr[]){a_int("fmod", 2)}, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "fmod2", "'fmod'");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "i", SH(2), I64S(1, 2), &err);
	add_i64(g, "z", SH(2), I64S(3, 0), &err);
	node(g, "Mod", "byzero", "i,z", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_INVALID, "byzero", "by zero");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "i", SH(2), I64S(1, 2), &err);
	add_f32(g, "f", SH(2), F32S(1, 2), &err);
	node(g, "Mod", "modmix", "i,f", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "modmix", "must match");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_bool(g, "b", SH(2), I64S(1, 1), &err);
	node(g, "Mod", "modbool", "b,b", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "modbool", "float or int64");
}

/* y = fmod(x, B) + fmod(A, x) + fmod(x, b) + fmod(a, x) with weights A
 * and B broadcast over the batch, b and a (one value each) over every
 * axis. x in [0.5, 0.6] and the weights chosen so that no quotient comes
 * within 0.08 of an integer: the finite differences never cross a jump,
 * and trunc(A/x) is 2, -3 and 1, so the divisor's gradient is not zero. */
TEST(ops_logic_mod_grad)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 3), &err);
	struct pc_attr fmod1 = a_int("fmod", 1);
	struct gc_opts o = grad_opts;
	const float b[3] = {0.22f, -0.23f, 0.24f}, a[3] = {1.3f, -1.9f, 0.7f};
	const float x[3] = {0.55f, 0.52f, 0.58f};
	struct pc_plan *p;

	add_weight(g, "B", SH(3), b, &err);
	add_weight(g, "A", SH(3), a, &err);
	node(g, "Mod", "m1", "x,B", "r1", 1, &fmod1, &err);
	node(g, "Mod", "m2", "A,x", "r2", 1, &fmod1, &err);
	add_weight(g, "b1", SH(1), F32S(0.23f), &err);
	add_weight(g, "a1", SCALAR, F32S(1.3f), &err);
	node(g, "Mod", "m3", "x,b1", "r3", 1, &fmod1, &err);
	node(g, "Mod", "m4", "a1,x", "r4", 1, &fmod1, &err);
	node(g, "Add", "add", "r1,r2", "s12", 0, NULL, &err);
	node(g, "Add", "add3", "s12,r3", "s123", 0, NULL, &err);
	node(g, "Add", "add4", "s123,r4", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	if ((p = RUN(g, 1, x))) {
		for (int j = 0; j < 3; j++)
			CHECK_CLOSE(pc_plan_output(p)[j],
				    fmodf(x[j], b[j]) + fmodf(a[j], x[j]) + fmodf(x[j], 0.23f) + fmodf(1.3f, x[j]), 1e-6, 0);
		/* against numpy: with f = np.float32, x = f(0.55),
		 * ((np.fmod(x, f(0.22)) + np.fmod(f(1.3), x)) + np.fmod(x, f(0.23))) + np.fmod(f(1.3), x) */
		CHECK_CLOSE(pc_plan_output(p)[0], 0.5999999046325684, 0, 0);
		pc_plan_free(p);
	}
	o.eps = 1e-3;
	o.input_lo = 0.5f;
	o.input_hi = 0.6f;
	CHECK(gc_check(t, g, &o) >= 17);
out:
	pc_graph_free(g);
}

/* --- ConstantOfShape ------------------------------------------------------------------------ */

TEST(ops_logic_constant_of_shape)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2), &err);
	const int64_t seven = 7, yes = 1;
	const float half = 0.5f, neg = -1.5f;
	struct pc_attr v_i = a_tensor("value", PC_DTYPE_INT64, SH(1), &seven);
	struct pc_attr v_b = a_tensor("value", PC_DTYPE_BOOL, SH(1), &yes);
	struct pc_attr v_h = a_tensor("value", PC_DTYPE_FLOAT, SH(1), &half);
	struct pc_attr v_n = a_tensor("value", PC_DTYPE_FLOAT, SCALAR, &neg);
	struct pc_plan *p;

	/* the shape of the input (batch 3 at run): zeros by default */
	node(g, "Shape", "shape", "x", "xs", 0, NULL, &err);
	node(g, "ConstantOfShape", "zeros", "xs", "z", 0, NULL, &err);
	node(g, "ConstantOfShape", "halves", "xs", "h", 1, &v_h, &err);
	add_i64(g, "s23", SH(2), I64S(2, 3), &err);
	add_i64(g, "s20", SH(2), I64S(2, 0), &err);
	pc_graph_add_int64(g, "s_", &(struct pc_shape){.ndim = 1, .dim = {0}}, NULL, &err);
	node(g, "ConstantOfShape", "sevens", "s23", "i7", 1, &v_i, &err);
	node(g, "ConstantOfShape", "trues", "s23", "bt", 1, &v_b, &err);
	node(g, "ConstantOfShape", "empty", "s20", "e", 1, &v_i, &err);
	node(g, "ConstantOfShape", "scalar", "s_", "sc", 1, &v_n, &err);
	/* a folded constant used at run time: y = x + 0.5 */
	node(g, "Add", "add", "x,h", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 3, NULL))) {
		CHECK_SHAPE(p, "z", SH(3, 2));
		CHECK_F32(p, "z", 0, 0, 0, 0, 0, 0);
		CHECK_F32(p, "h", 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f);
		CHECK_SHAPE(p, "i7", SH(2, 3));
		CHECK_I64(p, "i7", 7, 7, 7, 7, 7, 7);
		CHECK_BOOL(p, "bt", 1, 1, 1, 1, 1, 1);
		CHECK_SHAPE(p, "e", SH(2, 0));
		CHECK_EMPTY(p, "e", PC_DTYPE_INT64);
		CHECK_SHAPE(p, "sc", SCALAR);
		CHECK_F32(p, "sc", -1.5f);
		for (int i = 0; i < 6; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], 0.25 * i - 1.0 + 0.5, 0, 0);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_logic_constant_of_shape_errors)
{
	struct pc_error err = {0};
	const float two[2] = {1, 2};
	struct pc_graph *g = side_graph(13, &err);

	add_i64(g, "s", SH(2), I64S(2, -1), &err);
	node(g, "ConstantOfShape", "negdim", "s", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "negdim", "-1");
	/* 2^21 * 2^21 = 2^42 elements, past PC_MAX_NUMEL */
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "s", SH(2), I64S(1 << 21, 1 << 21), &err);
	node(g, "ConstantOfShape", "huge", "s", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "huge", "[2097152,2097152]");
	/* 2^28 elements: a shape, but past the plan's limit on folded constants */
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "s", SH(3), I64S(1 << 13, 1 << 13, 4), &err);
	node(g, "ConstantOfShape", "big", "s", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_LIMIT, "big", "constant output 0");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "s", SH(2), I64S(2, 2), &err);
	node(g, "ConstantOfShape", "twovalues", "s", "r", 1,
	     (struct pc_attr[]){a_tensor("value", PC_DTYPE_FLOAT, SH(2), two)}, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "twovalues", "one element");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	node(g, "ConstantOfShape", "runtime", "x", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "runtime", "known before the run");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "s", SH(1, 2), I64S(2, 2), &err);
	node(g, "ConstantOfShape", "rank2", "s", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "rank2", "1-D");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "s", SH(2), I64S(2, 2), &err);
	node(g, "ConstantOfShape", "notensor", "s", "r", 1, (struct pc_attr[]){a_int("value", 3)}, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "notensor", "'value'");
}

/* --- Range -------------------------------------------------------------------------------------- */

TEST(ops_logic_range)
{
	static const struct {
		int64_t start, limit, delta;
	} ic[] = {
		{0, 10, 3}, {10, 0, -3}, {5, 5, 1}, {0, -5, 1}, {-3, 3, 2}, {INT64_MIN, INT64_MAX, (int64_t)1 << 62},
	};
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 3), &err);
	struct pc_plan *p;
	char nm[64];

	for (size_t k = 0; k < sizeof(ic) / sizeof(ic[0]); k++) {
		char s[16], l[16], d[16], ins[64], out[16];
		snprintf(s, sizeof(s), "s%zu", k);
		snprintf(l, sizeof(l), "l%zu", k);
		snprintf(d, sizeof(d), "d%zu", k);
		add_i64(g, s, SCALAR, &ic[k].start, &err);
		add_i64(g, l, SCALAR, &ic[k].limit, &err);
		add_i64(g, d, SCALAR, &ic[k].delta, &err);
		snprintf(ins, sizeof(ins), "%s,%s,%s", s, l, d);
		snprintf(nm, sizeof(nm), "range%zu", k);
		snprintf(out, sizeof(out), "r%zu", k);
		node(g, "Range", nm, ins, out, 0, NULL, &err);
	}
	add_f32(g, "fs", SCALAR, F32S(0.0f), &err);
	add_f32(g, "fl", SCALAR, F32S(1.0f), &err);
	add_f32(g, "fd", SCALAR, F32S(0.1f), &err);
	node(g, "Range", "frange", "fs,fl,fd", "rf", 0, NULL, &err);
	add_f32(g, "gs", SH(1), F32S(1.5f), &err); /* a one-element 1-D start is taken too */
	add_f32(g, "gl", SCALAR, F32S(-1.0f), &err);
	add_f32(g, "gd", SCALAR, F32S(-0.5f), &err);
	node(g, "Range", "grange", "gs,gl,gd", "rg", 0, NULL, &err);
	/* a folded Range used at run time: y = x + [0, 1, 2] */
	add_i64(g, "z", SCALAR, I64S(0), &err);
	add_i64(g, "three", SCALAR, I64S(3), &err);
	add_i64(g, "one", SCALAR, I64S(1), &err);
	node(g, "Range", "idx", "z,three,one", "ri", 0, NULL, &err);
	node(g, "Cast", "idxf", "ri", "rif", 1, (struct pc_attr[]){a_int("to", PC_DTYPE_FLOAT)}, &err);
	node(g, "Add", "add", "x,rif", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		CHECK_I64(p, "r0", 0, 3, 6, 9);
		CHECK_I64(p, "r1", 10, 7, 4, 1);
		CHECK_SHAPE(p, "r2", SH(0));
		CHECK_EMPTY(p, "r2", PC_DTYPE_INT64);
		CHECK_EMPTY(p, "r3", PC_DTYPE_INT64);
		CHECK_I64(p, "r4", -3, -1, 1);
		/* ceil((2^64 - 1) / 2^62) = 4 values, none overflowing */
		CHECK_I64(p, "r5", INT64_MIN, -((int64_t)1 << 62), 0, (int64_t)1 << 62);
		/* start + i * delta rounded once: float32 of 9 * 0.1f is 0.90000004 */
		CHECK_F32(p, "rf", 0.0f, 0.10000000149011612f, 0.20000000298023224f, 0.30000001192092896f,
			  0.4000000059604645f, 0.5f, 0.6000000238418579f, 0.699999988079071f, 0.800000011920929f,
			  0.9000000357627869f);
		CHECK_F32(p, "rg", 1.5f, 1.0f, 0.5f, 0.0f, -0.5f);
		CHECK_I64(p, "ri", 0, 1, 2);
		for (int i = 0; i < 6; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], 0.25 * i - 1.0 + i % 3, 0, 0);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* Range(s, l, d) of int64 scalars must fail at load with code and needle. */
static void range_fail(struct pc_test *t, int line, int64_t s, int64_t l, int64_t d, enum pc_status code,
		       const char *needle)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);

	add_i64(g, "s", SCALAR, &s, &err);
	add_i64(g, "l", SCALAR, &l, &err);
	add_i64(g, "d", SCALAR, &d, &err);
	node(g, "Range", "rbad", "s,l,d", "r", 0, NULL, &err);
	expect_fail(t, line, g, "y", &err, code, "rbad", needle);
}

TEST(ops_logic_range_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;

	range_fail(t, __LINE__, 0, 10, 0, PC_ERR_INVALID, "delta) is 0");
	range_fail(t, __LINE__, 0, (int64_t)1 << 41, 1, PC_ERR_LIMIT, "2^40");
	range_fail(t, __LINE__, INT64_MAX, INT64_MIN, -1, PC_ERR_LIMIT, "2^40");
	/* legal as a shape, but folding it would pass the plan's limit on constants */
	range_fail(t, __LINE__, 0, (int64_t)1 << 30, 1, PC_ERR_LIMIT, "constant output 0");
	/* float: delta 0, a huge count, a value that is not finite */
	g = side_graph(13, &err);
	add_f32(g, "s", SCALAR, F32S(0), &err);
	add_f32(g, "l", SCALAR, F32S(1), &err);
	add_f32(g, "d", SCALAR, F32S(0), &err);
	node(g, "Range", "fzero", "s,l,d", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_INVALID, "fzero", "delta) is 0");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_f32(g, "s", SCALAR, F32S(0), &err);
	add_f32(g, "l", SCALAR, F32S(1e30f), &err);
	add_f32(g, "d", SCALAR, F32S(1), &err);
	node(g, "Range", "fhuge", "s,l,d", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_LIMIT, "fhuge", "2^40");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_f32(g, "s", SCALAR, F32S(0), &err);
	add_f32(g, "l", SCALAR, F32S(INFINITY), &err);
	add_f32(g, "d", SCALAR, F32S(1), &err);
	node(g, "Range", "finf", "s,l,d", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_INVALID, "finf", "not finite");
	/* mixed types, a list, a run-time value */
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_f32(g, "s", SCALAR, F32S(0), &err);
	add_i64(g, "l", SCALAR, I64S(4), &err);
	node(g, "Range", "mixed", "s,l,s", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "mixed", "must match");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_i64(g, "s", SH(2), I64S(0, 1), &err);
	add_i64(g, "l", SCALAR, I64S(4), &err);
	node(g, "Range", "list", "s,l,l", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "list", "scalar");
	memset(&err, 0, sizeof(err));
	g = side_graph(13, &err);
	add_f32(g, "l", SCALAR, F32S(4), &err);
	node(g, "Range", "runtime", "x,l,l", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "runtime", "known before the run");
}

/* --- Trilu -------------------------------------------------------------------------------------- */

TEST(ops_logic_trilu_values)
{
	static const struct {
		int upper;
		int64_t k;
		float want[24];
	} fc[] = {
		/* np.triu / np.tril of arange(1, 25).reshape(2, 3, 4) */
		{1, 0, {1, 2, 3, 4, 0, 6, 7, 8, 0, 0, 11, 12, 13, 14, 15, 16, 0, 18, 19, 20, 0, 0, 23, 24}},
		{1, 1, {0, 2, 3, 4, 0, 0, 7, 8, 0, 0, 0, 12, 0, 14, 15, 16, 0, 0, 19, 20, 0, 0, 0, 24}},
		{1, -1, {1, 2, 3, 4, 5, 6, 7, 8, 0, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 0, 22, 23, 24}},
		{0, 0, {1, 0, 0, 0, 5, 6, 0, 0, 9, 10, 11, 0, 13, 0, 0, 0, 17, 18, 0, 0, 21, 22, 23, 0}},
		{0, 1, {1, 2, 0, 0, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 0, 0, 17, 18, 19, 0, 21, 22, 23, 24}},
		{0, -2, {0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 21, 0, 0, 0}},
		/* k past every diagonal: all or nothing */
		{1, INT64_MAX, {0}},
		{0, INT64_MAX, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}},
		{1, INT64_MIN, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}},
		{0, INT64_MIN, {0}},
	};
	const size_t ncase = sizeof(fc) / sizeof(fc[0]);
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(14, &err);
	float xf[24];
	int64_t xi[24];
	struct pc_plan *p;

	for (int i = 0; i < 24; i++) {
		xf[i] = (float)(i + 1);
		xi[i] = i + 1;
	}
	add_f32(g, "X", SH(2, 3, 4), xf, &err);
	add_i64(g, "XI", SH(2, 3, 4), xi, &err);
	for (size_t c = 0; c < ncase; c++) {
		char nm[32], kn[32], ins[64], out[32];
		struct pc_attr up = a_int("upper", fc[c].upper);
		snprintf(kn, sizeof(kn), "k%zu", c);
		add_i64(g, kn, SCALAR, &fc[c].k, &err);
		snprintf(nm, sizeof(nm), "tf%zu", c);
		snprintf(ins, sizeof(ins), "X,%s", kn);
		snprintf(out, sizeof(out), "rf%zu", c);
		node(g, "Trilu", nm, ins, out, 1, &up, &err);
		snprintf(nm, sizeof(nm), "ti%zu", c);
		snprintf(ins, sizeof(ins), "XI,%s", kn);
		snprintf(out, sizeof(out), "ri%zu", c);
		node(g, "Trilu", nm, ins, out, 1, &up, &err);
	}
	/* default: upper, k = 0; and rows > cols: [5,2] lower with k = -3 */
	node(g, "Trilu", "tdef", "X", "rdef", 0, NULL, &err);
	add_i64(g, "Y", SH(5, 2), I64S(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), &err);
	add_i64(g, "km3", SH(1), I64S(-3), &err);
	node(g, "Trilu", "ttall", "Y,km3", "rtall", 1, (struct pc_attr[]){a_int("upper", 0)}, &err);
	node(g, "Trilu", "ttallu", "Y,km3", "rtallu", 0, NULL, &err);
	add_i64(g, "km4", SCALAR, I64S(-4), &err);
	node(g, "Trilu", "ttall4", "Y,km4", "rtall4", 1, (struct pc_attr[]){a_int("upper", 0)}, &err);
	add_bool(g, "B", SH(2, 2), I64S(1, 1, 1, 0), &err);
	node(g, "Trilu", "tbool", "B", "rb", 1, (struct pc_attr[]){a_int("upper", 0)}, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		for (size_t c = 0; c < ncase; c++) {
			char out[32];
			int64_t wi[24];
			for (int i = 0; i < 24; i++)
				wi[i] = (int64_t)fc[c].want[i];
			snprintf(out, sizeof(out), "rf%zu", c);
			check_floats(t, __LINE__, p, out, 24, fc[c].want);
			snprintf(out, sizeof(out), "ri%zu", c);
			check_ints(t, __LINE__, p, out, PC_DTYPE_INT64, 1, 24, wi);
		}
		check_floats(t, __LINE__, p, "rdef", 24, fc[0].want);
		/* np.tril(Y, -3), np.triu(Y, -3) */
		CHECK_I64(p, "rtall", 0, 0, 0, 0, 0, 0, 7, 0, 9, 10);
		CHECK_I64(p, "rtallu", 1, 2, 3, 4, 5, 6, 7, 8, 0, 10);
		/* np.tril(Y, -4): k below -cols, still reaching the last row */
		CHECK_I64(p, "rtall4", 0, 0, 0, 0, 0, 0, 0, 0, 9, 0);
		CHECK_BOOL(p, "rb", 1, 0, 1, 0);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* Trilu of a run-time input passes the gradient of the kept triangle. */
TEST(ops_logic_trilu_grad)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(14, SH(-1, 3, 4), &err);
	const float w[4] = {0.5f, -1.0f, 2.0f, 1.5f};
	struct pc_plan *p;

	add_i64(g, "k", SCALAR, I64S(1), &err);
	add_weight(g, "W", SH(4), w, &err);
	node(g, "Mul", "mul", "x,W", "xw", 0, NULL, &err);
	node(g, "Trilu", "tri", "xw,k", "t", 0, NULL, &err);
	node(g, "Flatten", "flat", "t", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	if ((p = RUN(g, 2, NULL))) {
		for (int n = 0; n < 2; n++)
			for (int i = 0; i < 3; i++)
				for (int j = 0; j < 4; j++) {
					int k = (n * 3 + i) * 4 + j;
					double v = j - i >= 1 ? (0.25 * k - 1.0) * w[j] : 0.0;
					CHECK_CLOSE(pc_plan_output(p)[k], v, 1e-6, 0);
				}
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) >= 4);
out:
	pc_graph_free(g);
}

TEST(ops_logic_trilu_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);

	node(g, "Trilu", "tri13", "x", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "tri13", "opset 14");
	memset(&err, 0, sizeof(err));
	g = side_graph(14, &err);
	add_f32(g, "v", SH(3), F32S(1, 2, 3), &err);
	node(g, "Trilu", "rank1", "v", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "rank1", "rank 1");
	memset(&err, 0, sizeof(err));
	g = side_graph(14, &err);
	add_f32(g, "k", SCALAR, F32S(1), &err);
	node(g, "Trilu", "kfloat", "x,k", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "kfloat", "int64");
	memset(&err, 0, sizeof(err));
	g = side_graph(14, &err);
	add_i64(g, "k", SH(2), I64S(1, 2), &err);
	node(g, "Trilu", "klist", "x,k", "r", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "klist", "scalar");
	memset(&err, 0, sizeof(err));
	g = side_graph(14, &err);
	node(g, "Trilu", "up2", "x", "r", 1, (struct pc_attr[]){a_int("upper", 2)}, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "up2", "'upper'");
}

/* --- Cast ------------------------------------------------------------------------------------------ */

/* Known values through every destination type from float, int64 and bool
 * (numpy astype / torch .to agree on each). */
TEST(ops_logic_cast_static)
{
	static const int to[] = {1, 7, 9, 6, 11, 10};
	static const char *const tn[] = {"f", "i64", "b", "i32", "d", "h"};
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);
	struct pc_plan *p;

	add_f32(g, "F", SH(6), F32S(2.7f, -2.5f, 0.0f, 1e-8f, 65519.0f, 70000.0f), &err);
	add_i64(g, "I", SH(6), I64S(-3, 0, 1, ((int64_t)1 << 32) + 1, -((int64_t)1 << 31) - 1, (int64_t)1 << 40), &err);
	add_i64(g, "ID", SH(3), I64S(-3, 0, 1 << 24), &err);
	add_bool(g, "B", SH(3), I64S(0, 1, 5), &err);
	for (int k = 0; k < 6; k++) {
		char nm[32], out[32];
		struct pc_attr a = a_int("to", to[k]);
		snprintf(nm, sizeof(nm), "F_%s", tn[k]);
		snprintf(out, sizeof(out), "F%s", tn[k]);
		node(g, "Cast", nm, "F", out, 1, &a, &err);
		snprintf(nm, sizeof(nm), "B_%s", tn[k]);
		snprintf(out, sizeof(out), "B%s", tn[k]);
		node(g, "Cast", nm, "B", out, 1, &a, &err);
		snprintf(nm, sizeof(nm), "I_%s", tn[k]);
		snprintf(out, sizeof(out), "I%s", tn[k]);
		node(g, "Cast", nm, to[k] == 11 ? "ID" : "I", out, 1, &a, &err);
	}
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		CHECK_F32(p, "Ff", 2.7f, -2.5f, 0.0f, 1e-8f, 65519.0f, 70000.0f);
		CHECK_F32(p, "Fd", 2.7f, -2.5f, 0.0f, 1e-8f, 65519.0f, 70000.0f);
		/* np.float32(F).astype(np.float16).astype(np.float32) */
		CHECK_F32(p, "Fh", 2.69921875f, -2.5f, 0.0f, 0.0f, 65504.0f, INFINITY);
		CHECK_I64(p, "Fi64", 2, -2, 0, 0, 65519, 70000);
		CHECK_I64(p, "Fi32", 2, -2, 0, 0, 65519, 70000);
		CHECK_BOOL(p, "Fb", 1, 1, 0, 1, 1, 1);
		CHECK_F32(p, "If", -3.0f, 0.0f, 1.0f, 4294967296.0f, -2147483648.0f, 1099511627776.0f);
		CHECK_I64(p, "Ii64", -3, 0, 1, ((int64_t)1 << 32) + 1, -((int64_t)1 << 31) - 1, (int64_t)1 << 40);
		/* the low 32 bits: np.int64(...).astype(np.int32), torch .to(torch.int32) */
		CHECK_I64(p, "Ii32", -3, 0, 1, 1, 2147483647, 0);
		CHECK_BOOL(p, "Ib", 1, 0, 1, 1, 1, 1);
		CHECK_F32(p, "Ih", -3.0f, 0.0f, 1.0f, INFINITY, -INFINITY, INFINITY);
		CHECK_F32(p, "Id", -3.0f, 0.0f, 16777216.0f);
		CHECK_BOOL(p, "B", 0, 1, 1);
		CHECK_F32(p, "Bf", 0.0f, 1.0f, 1.0f);
		CHECK_F32(p, "Bd", 0.0f, 1.0f, 1.0f);
		CHECK_F32(p, "Bh", 0.0f, 1.0f, 1.0f);
		CHECK_I64(p, "Bi64", 0, 1, 1);
		CHECK_I64(p, "Bi32", 0, 1, 1);
		CHECK_BOOL(p, "Bb", 0, 1, 1);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* float16 rounding on a run-time input, against numpy's
 * np.float32(v).astype(np.float16).astype(np.float32), and the run-time
 * float -> int64 / int32 / bool conversions against torch 1.13's .to():
 * out of range and NaN give the type's minimum. y = concat of
 * float(half(x)), float(int64(x)), float(int32(x)), float(bool(x)). */
TEST(ops_logic_cast_runtime)
{
	static const float xin[16] = {0.1f, 1.0f / 3.0f, 65504.0f, 65519.0f, 65520.0f, -65520.0f, 1e-8f, 3e-8f,
				      2.98023224e-08f, 6e-5f, 1e5f, 2049.0f, 2051.0f, -0.0f, 1.0009765625f,
				      1.00048828125f};
	static const float half[16] = {0.0999755859375f, 0.333251953125f, 65504.0f, 65504.0f, INFINITY, -INFINITY,
				       0.0f, 5.960464477539063e-08f, 0.0f, 6.002187728881836e-05f, INFINITY, 2048.0f,
				       2052.0f, -0.0f, 1.0009765625f, 1.0f};
	static const float xi[4] = {NAN, 3e9f, 1e20f, -7.9f};
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 4), &err);
	const struct pc_attr to_f = a_int("to", 1);
	struct pc_plan *p;
	float x[16];

	node(g, "Cast", "h", "x", "xh", 1, (struct pc_attr[]){a_int("to", 10)}, &err);
	node(g, "Cast", "i64", "x", "xi64", 1, (struct pc_attr[]){a_int("to", 7)}, &err);
	node(g, "Cast", "i32", "x", "xi32", 1, (struct pc_attr[]){a_int("to", 6)}, &err);
	node(g, "Cast", "b", "x", "xb", 1, (struct pc_attr[]){a_int("to", 9)}, &err);
	node(g, "Cast", "i64f", "xi64", "fi64", 1, &to_f, &err);
	node(g, "Cast", "i32f", "xi32", "fi32", 1, &to_f, &err);
	node(g, "Cast", "bf", "xb", "fb", 1, &to_f, &err);
	node(g, "Concat", "cat", "xh,fi64,fi32,fb", "y", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	if ((p = RUN(g, 4, xin))) {
		const float *y = pc_plan_output(p);
		for (int n = 0; n < 4; n++)
			for (int j = 0; j < 4; j++) {
				float v = y[n * 16 + j], w = half[n * 4 + j];
				CHECK_MSG(v == w && signbit(v) == signbit(w), "half(%.9g) = %.9g, expected %.9g",
					  (double)xin[n * 4 + j], (double)v, (double)w);
			}
		memcpy(x, xin, sizeof(x));
		for (int j = 0; j < 4; j++)
			x[j] = xi[j];
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		check_ints(t, __LINE__, p, "xi64", PC_DTYPE_INT64, 0, 16,
			   (int64_t[]){INT64_MIN, 3000000000, INT64_MIN, -7, 65520, -65520, 0, 0, 0, 0, 100000, 2049, 2051,
				       0, 1, 1});
		check_ints(t, __LINE__, p, "xi32", PC_DTYPE_INT64, 0, 16,
			   (int64_t[]){INT32_MIN, INT32_MIN, INT32_MIN, -7, 65520, -65520, 0, 0, 0, 0, 100000, 2049, 2051,
				       0, 1, 1});
		check_ints(t, __LINE__, p, "xb", PC_DTYPE_BOOL, 0, 16,
			   (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1});
		CHECK_CLOSE(y[4], -9223372036854775808.0, 0, 0);
		CHECK_CLOSE(y[5], 3e9, 0, 0);
		CHECK_CLOSE(y[7], -7.0, 0, 0);
		CHECK_CLOSE(y[8], -2147483648.0, 0, 0);
		CHECK_CLOSE(y[11], -7.0, 0, 0);
		CHECK_CLOSE(y[15], 1.0, 0, 0);
		/* row 1: 65520 -> 65520, -65520, 1e-8 -> 0 (bool: true), 3e-8 */
		CHECK_CLOSE(y[16 + 4], 65520.0, 0, 0);
		CHECK_CLOSE(y[16 + 5], -65520.0, 0, 0);
		CHECK_CLOSE(y[16 + 12 + 2], 1.0, 0, 0);
		/* row 3: -0 is false */
		CHECK_CLOSE(y[48 + 12 + 1], 0.0, 0, 0);
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

/* Run-time int64 to int32 (low 32 bits), bool and float16 (torch:
 * torch.tensor([2**32 + 1, -2**31 - 1, 2**40]).to(torch.int32) is
 * [1, 2147483647, 0]). y = concat of float(int32(t)), float(bool(t)),
 * half(t). */
TEST(ops_logic_cast_runtime_int64)
{
	static const int64_t tok[3] = {((int64_t)1 << 32) + 1, -((int64_t)1 << 31) - 1, (int64_t)1 << 40};
	static const float want[9] = {1, 2147483647.0f, 0, 1, 1, 1, INFINITY, -INFINITY, INFINITY};
	static const int64_t tok2[3] = {0, -3, 2049};
	static const float want2[9] = {0, -3, 2049, 0, 1, 1, 0, -3, 2048};
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	const struct pc_attr to_f = a_int("to", PC_DTYPE_FLOAT);
	struct pc_shape in = SH(-1, 3);
	struct pc_plan *p;

	pc_graph_add_input_typed(g, "tok", &in, PC_DTYPE_INT64, &err);
	node(g, "Cast", "i32", "tok", "t32", 1, (struct pc_attr[]){a_int("to", 6)}, &err);
	node(g, "Cast", "i32f", "t32", "f32", 1, &to_f, &err);
	node(g, "Cast", "b", "tok", "tb", 1, (struct pc_attr[]){a_int("to", 9)}, &err);
	node(g, "Cast", "bf", "tb", "fb", 1, &to_f, &err);
	node(g, "Cast", "h", "tok", "fh", 1, (struct pc_attr[]){a_int("to", 10)}, &err);
	node(g, "Concat", "cat", "f32,fb,fh", "y", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = pc_plan_new(g, 1, 0, &err);
	REQUIRE_MSG(p, "plan: %s: %s", err.where, err.text);
	memcpy(pc_plan_input_int64(p), tok, sizeof(tok));
	pc_plan_forward(p);
	check_ints(t, __LINE__, p, "t32", PC_DTYPE_INT64, 0, 3, (int64_t[]){1, 2147483647, 0});
	for (int j = 0; j < 9; j++)
		CHECK_MSG(pc_plan_output(p)[j] == want[j], "y[%d] = %g, expected %g", j, (double)pc_plan_output(p)[j],
			  (double)want[j]);
	memcpy(pc_plan_input_int64(p), tok2, sizeof(tok2));
	pc_plan_forward(p);
	for (int j = 0; j < 9; j++)
		CHECK_MSG(pc_plan_output(p)[j] == want2[j], "y[%d] = %g, expected %g", j, (double)pc_plan_output(p)[j],
			  (double)want2[j]);
	pc_plan_free(p);
out:
	pc_graph_free(g);
}

/* Float to float casts pass the gradient unchanged; through float16 as a
 * straight-through estimate (finite differences of a rounding would be 0
 * or huge, so it is checked directly). */
TEST(ops_logic_cast_grad)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 3), &err);
	const float w[3] = {0.5f, -2.0f, 1.5f};
	struct pc_plan *p;

	add_weight(g, "W", SH(3), w, &err);
	node(g, "Mul", "mul", "x,W", "xw", 0, NULL, &err);
	node(g, "Cast", "d", "xw", "xd", 1, (struct pc_attr[]){a_int("to", 11)}, &err);
	node(g, "Cast", "f", "xd", "y", 1, (struct pc_attr[]){a_int("to", 1)}, &err);
	if (FINISH(g, "y", &err))
		CHECK(gc_check(t, g, &grad_opts) >= 6);
	pc_graph_free(g);

	memset(&err, 0, sizeof(err));
	g = graph_with_input(13, SH(-1, 3), &err);
	add_weight(g, "W", SH(3), w, &err);
	node(g, "Mul", "mul", "x,W", "xw", 0, NULL, &err);
	node(g, "Cast", "h", "xw", "y", 1, (struct pc_attr[]){a_int("to", 10)}, &err);
	if (FINISH(g, "y", &err) && (p = pc_plan_new(g, 2, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err))) {
		const float x[6] = {0.1f, 0.2f, 0.3f, -1.0f, 2.0f, 3.0f}, og[6] = {1.0f, -2.0f, 0.5f, 4.0f, 0.25f, -1.0f};
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		memcpy(pc_plan_output_grad(p), og, sizeof(og));
		pc_plan_zero_weight_grad(p);
		pc_plan_backward(p);
		for (int i = 0; i < 6; i++)
			CHECK_CLOSE(pc_plan_input_grad(p)[i], og[i] * w[i % 3], 0, 0);
		for (int j = 0; j < 3; j++)
			CHECK_CLOSE(pc_plan_weight_grad(p)[j], og[j] * x[j] + og[3 + j] * x[3 + j], 1e-6, 1e-6);
		/* half(0.1 * 0.5) */
		CHECK_CLOSE(pc_plan_output(p)[0], 0.04998779296875, 0, 0);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* Cast(to) of input `in` must fail at load with code and needle. */
static void cast_fail(struct pc_test *t, int line, int64_t to, const char *in, enum pc_status code, const char *needle)
{
	struct pc_error err = {0};
	struct pc_graph *g = side_graph(13, &err);
	struct pc_attr a = a_int("to", to);

	add_i64(g, "big", SH(2), I64S(3, (1 << 24) + 1), &err);
	add_f32(g, "f3e9", SH(2), F32S(1.0f, 3e9f), &err);
	add_f32(g, "f1e19", SH(1), F32S(1e19f), &err);
	add_f32(g, "fnan", SH(1), F32S(NAN), &err);
	node(g, "Cast", "castbad", in, "r", 1, &a, &err);
	expect_fail(t, line, g, "y", &err, code, "castbad", needle);
}

TEST(ops_logic_cast_refused)
{
	/* destinations the plan cannot hold, named with their code */
	cast_fail(t, __LINE__, 2, "x", PC_ERR_UNSUPPORTED, "'to' is 2 (uint8)");
	cast_fail(t, __LINE__, 3, "x", PC_ERR_UNSUPPORTED, "'to' is 3 (int8)");
	cast_fail(t, __LINE__, 8, "x", PC_ERR_UNSUPPORTED, "'to' is 8 (string)");
	cast_fail(t, __LINE__, 13, "x", PC_ERR_UNSUPPORTED, "'to' is 13 (uint64)");
	cast_fail(t, __LINE__, 16, "x", PC_ERR_UNSUPPORTED, "'to' is 16 (bfloat16)");
	cast_fail(t, __LINE__, 0, "x", PC_ERR_UNSUPPORTED, "'to' is 0");
	cast_fail(t, __LINE__, -1, "x", PC_ERR_UNSUPPORTED, "'to' is -1");
	cast_fail(t, __LINE__, (int64_t)1 << 40, "x", PC_ERR_UNSUPPORTED, "'to' is 1099511627776 (unknown)");
	/* int64 to double is kept as float: exact only for known values up to 2^24 */
	cast_fail(t, __LINE__, 11, "big", PC_ERR_UNSUPPORTED, "16777217");
	/* known floats that the integer type cannot hold */
	cast_fail(t, __LINE__, 6, "f3e9", PC_ERR_FORMAT, "does not fit in int32");
	cast_fail(t, __LINE__, 7, "f1e19", PC_ERR_FORMAT, "does not fit in int64");
	cast_fail(t, __LINE__, 7, "fnan", PC_ERR_FORMAT, "does not fit in int64");
	/* token ids cast to double at run time could not be kept exactly */
	{
		struct pc_error err = {0};
		struct pc_graph *g = pc_graph_new(13, &err);
		struct pc_shape in = SH(-1, 3);

		pc_graph_add_input_typed(g, "tok", &in, PC_DTYPE_INT64, &err);
		node(g, "Cast", "castbad", "tok", "td", 1, (struct pc_attr[]){a_int("to", 11)}, &err);
		node(g, "Cast", "tf", "tok", "y", 1, (struct pc_attr[]){a_int("to", 1)}, &err);
		EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "castbad", "run-time int64");
	}
}

/* --- a model exported by torch ------------------------------------------------------------------- */

/* Element i of the JSON array `key` of ref, or NAN. */
static double ref_at(json_t *ref, const char *key, size_t i)
{
	json_t *v = json_array_get(json_object_get(ref, key), i);

	return v ? json_number_value(v) : NAN;
}

/* tests/reference/make_logic_fixture.py: torch.onnx.export (opset 14, no
 * constant folding) of a module using Range, Mod, Equal, Where,
 * ConstantOfShape, Trilu, Greater, Not, Less and Cast around a Linear. Its
 * output and the gradients of sum(out * r) for the input and the Linear's
 * weights, against torch's forward and autograd. */
TEST(ops_logic_torch_export)
{
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_plan *p = NULL;
	json_error_t jerr;
	json_t *ref;
	char path[512], msg[700];
	double worst = 0.0, worst_grad = 0.0;
	int64_t n;

	snprintf(path, sizeof(path), "%s/tests/reference/fixtures/logic_op14.json", pc_test_root());
	ref = json_load_file(path, 0, &jerr);
	REQUIRE_MSG(ref, "%s: %s", path, jerr.text);
	snprintf(path, sizeof(path), "%s/tests/reference/fixtures/logic_op14.onnx", pc_test_root());
	if (pc_onnx_load_file(path, &g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	n = (int64_t)json_integer_value(json_array_get(json_object_get(ref, "input_shape"), 0));
	p = pc_plan_new(g, (int)n, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	CHECK_INT(pc_plan_sample_numel(p), 6);
	CHECK_INT(pc_plan_classes(p), 6);
	/* the shape part is folded at load: the Trilu mask is a constant */
	{
		struct pc_plan_value mask;
		const char *name;
		int k, nodes = pc_graph_node_count(g);
		for (k = 0; k < nodes && strcmp(pc_graph_node_op(g, k), "Trilu"); k++)
			;
		REQUIRE(k < nodes);
		name = pc_graph_node_output_name(g, k, 0);
		REQUIRE(name);
		CHECK((pc_plan_value(p, name, &mask, NULL) == PC_OK) && mask.is_static);
	}
	for (int64_t i = 0; i < n * 6; i++) {
		pc_plan_input(p)[i] = (float)ref_at(ref, "input", (size_t)i);
		pc_plan_output_grad(p)[i] = (float)ref_at(ref, "r", (size_t)i);
	}
	pc_plan_forward(p);
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	for (int64_t i = 0; i < n * 6; i++) {
		double want = ref_at(ref, "output", (size_t)i), d = fabs(pc_plan_output(p)[i] - want);
		worst = d > worst ? d : worst;
		CHECK_CLOSE(pc_plan_output(p)[i], want, 1e-5, 1e-5);
		d = fabs(pc_plan_input_grad(p)[i] - ref_at(ref, "grad_input", (size_t)i));
		worst_grad = d > worst_grad ? d : worst_grad;
		CHECK_CLOSE(pc_plan_input_grad(p)[i], ref_at(ref, "grad_input", (size_t)i), 1e-5, 1e-5);
	}
	for (int k = 0; k < 2; k++) {
		static const char *const names[] = {"lin.weight", "lin.bias"};
		char key[32];
		int pi = pc_graph_find_param(g, names[k]);
		const struct pc_param *pt;
		REQUIRE(pi >= 0);
		pt = pc_graph_param(g, pi);
		snprintf(key, sizeof(key), "grad_%s", names[k]);
		CHECK_INT(pt->count, json_array_size(json_object_get(ref, key)));
		for (int64_t i = 0; i < pt->count; i++) {
			double want = ref_at(ref, key, (size_t)i), d = fabs(pc_plan_weight_grad(p)[pt->offset + i] - want);
			worst_grad = d > worst_grad ? d : worst_grad;
			CHECK_CLOSE(pc_plan_weight_grad(p)[pt->offset + i], want, 1e-5, 1e-5);
		}
	}
	CHECK_INT(pc_graph_param_tensors(g), 2);
	if (getenv("PARACORR_TEST_VERBOSE"))
		printf("  logic_op14: largest difference from torch: output %.3g, gradients %.3g\n", worst, worst_grad);
out:
	pc_plan_free(p);
	pc_graph_free(g);
	json_decref(ref);
}
