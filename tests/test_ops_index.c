/* Tests of the indexing ops (core/ops/index.c: Gather, Slice, Split, Expand,
 * Tile, ScatterND) and of the data-movement ops of shape.c on int64 values.
 *
 * Expected values come from numpy (tests/reference/make_index_reference.py
 * prints them; the input is the ramp x.flat[i] = 0.25 i - 1, so every value
 * is exact in float and compared exactly) or are derived by hand where
 * marked. Gradients are checked by finite differences (gradcheck), and the
 * scatter-adds (Gather's embedding gradient, ScatterND's) exactly, with
 * small integer output gradients. Intermediate values are read through
 * pc_plan_value (plan.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

/* --- building helpers (as in test_ops_shape.c) ------------------------------------------------- */

static struct pc_shape sh(int ndim, const int64_t *dims)
{
	struct pc_shape s = {.ndim = ndim};

	for (int i = 0; i < ndim; i++)
		s.dim[i] = dims[i];
	return s;
}

#define SH(...) sh((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR ((struct pc_shape){.ndim = 0})
#define IMAX INT64_MAX
#define IMIN INT64_MIN

static struct pc_attr a_int(const char *name, int64_t v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_INT, .i = v};
}

static struct pc_attr a_ints(const char *name, int n, const int64_t *v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_INTS, .n = n, .ints = v};
}

static struct pc_attr a_str(const char *name, const char *s)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_STRING, .s = s};
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

/* A 1-D int64 initializer. */
static void ints(struct pc_graph *g, const char *name, int n, const int64_t *v, struct pc_error *err)
{
	struct pc_shape s = {.ndim = 1, .dim = {n}};

	pc_graph_add_int64(g, name, &s, v, err);
}

#define INTS(g, name, err, ...)                                                                                   \
	ints(g, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}, err)

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
	memset(err, 0, sizeof(*err));
}

#define EXPECT_FAIL(g, out, err, code, node_name, needle) expect_fail(t, __LINE__, g, out, err, code, node_name, needle)

/* A plan at batch with the input filled from x (or the ramp when x is NULL),
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

/* The named value has this shape and these float values, exactly. */
static void check_floats(struct pc_test *t, int line, const struct pc_plan *p, const char *name,
			 struct pc_shape want_shape, const float *want)
{
	struct pc_plan_value value;
	const struct pc_plan_value *v = pc_plan_value(p, name, &value, NULL) == PC_OK ? &value : NULL;
	char a[96], b[96];
	int bad = 0;

	if (!v || v->dtype != PC_DTYPE_FLOAT) {
		pc_test_fail(t, __FILE__, line, "'%s' is not a float value", name);
		return;
	}
	if (!pc_shape_equal(&v->shape, &want_shape)) {
		pc_test_fail(t, __FILE__, line, "'%s' has shape %s, expected %s", name,
			     pc_shape_format(&v->shape, a, sizeof(a)), pc_shape_format(&want_shape, b, sizeof(b)));
		return;
	}
	for (int64_t i = 0; i < v->numel; i++)
		if (v->data[i] != want[i] && bad++ < 5)
			pc_test_fail(t, __FILE__, line, "'%s'[%lld] = %g, expected %g", name, (long long)i,
				     (double)v->data[i], (double)want[i]);
}

#define CHECK_FLOATS(p, name, shape, want) check_floats(t, __LINE__, p, name, shape, want)

/* The named value is int64 with this shape and these values; `folded`
 * says whether it must be static (computed at prepare) or run-time. */
static void check_ints(struct pc_test *t, int line, const struct pc_plan *p, const char *name, int folded,
		       struct pc_shape want_shape, const int64_t *want)
{
	struct pc_plan_value value;
	const struct pc_plan_value *v = pc_plan_value(p, name, &value, NULL) == PC_OK ? &value : NULL;
	char a[96], b[96];

	if (!v || v->dtype != PC_DTYPE_INT64 || !v->ival || v->is_static != folded) {
		pc_test_fail(t, __FILE__, line, "'%s' is not a %s int64 tensor", name, folded ? "static" : "run-time");
		return;
	}
	if (!pc_shape_equal(&v->shape, &want_shape)) {
		pc_test_fail(t, __FILE__, line, "'%s' has shape %s, expected %s", name,
			     pc_shape_format(&v->shape, a, sizeof(a)), pc_shape_format(&want_shape, b, sizeof(b)));
		return;
	}
	for (int64_t i = 0; i < v->numel; i++)
		if (v->ival[i] != want[i])
			pc_test_fail(t, __FILE__, line, "'%s'[%lld] = %lld, expected %lld", name, (long long)i,
				     (long long)v->ival[i], (long long)want[i]);
}

#define CHECK_INTS(p, name, folded, shape, ...) check_ints(t, __LINE__, p, name, folded, shape, (int64_t[]){__VA_ARGS__})

static const struct gc_opts grad_opts = {.batch = 2, .eps = 1e-2, .atol = 1e-3, .rtol = 1e-3, .seed = 5,
					 .check_input = 1};

/* --- reference values (tests/reference/make_index_reference.py) ----------------------------------- */

/* sl_tail: shape [2, 5, 5] */
static const float sl_tail[50] = {-0.75, -0.5, -0.25, 0, 0.25, 0.75, 1, 1.25, 1.5, 1.75, 2.25, 2.5, 2.75, 3, 3.25, 3.75, 4, 4.25, 4.5, 4.75, 5.25, 5.5, 5.75, 6, 6.25, 6.75, 7, 7.25, 7.5, 7.75, 8.25, 8.5, 8.75, 9, 9.25, 9.75, 10, 10.25, 10.5, 10.75, 11.25, 11.5, 11.75, 12, 12.25, 12.75, 13, 13.25, 13.5, 13.75};
/* sl_neg: shape [2, 1, 6] */
static const float sl_neg[12] = {3.5, 3.75, 4, 4.25, 4.5, 4.75, 11, 11.25, 11.5, 11.75, 12, 12.25};
/* sl_rev: shape [2, 5, 6] */
static const float sl_rev[60] = {0.25, 0, -0.25, -0.5, -0.75, -1, 1.75, 1.5, 1.25, 1, 0.75, 0.5, 3.25, 3, 2.75, 2.5, 2.25, 2, 4.75, 4.5, 4.25, 4, 3.75, 3.5, 6.25, 6, 5.75, 5.5, 5.25, 5, 7.75, 7.5, 7.25, 7, 6.75, 6.5, 9.25, 9, 8.75, 8.5, 8.25, 8, 10.75, 10.5, 10.25, 10, 9.75, 9.5, 12.25, 12, 11.75, 11.5, 11.25, 11, 13.75, 13.5, 13.25, 13, 12.75, 12.5};
/* sl_rev2: shape [2, 2, 6] */
static const float sl_rev2[24] = {5, 5.25, 5.5, 5.75, 6, 6.25, 2, 2.25, 2.5, 2.75, 3, 3.25, 12.5, 12.75, 13, 13.25, 13.5, 13.75, 9.5, 9.75, 10, 10.25, 10.5, 10.75};
/* sl_past: shape [2, 5, 0] */
static const float sl_past[1] = {0};
/* sl_under: shape [2, 5, 3] */
static const float sl_under[30] = {-1, -0.75, -0.5, 0.5, 0.75, 1, 2, 2.25, 2.5, 3.5, 3.75, 4, 5, 5.25, 5.5, 6.5, 6.75, 7, 8, 8.25, 8.5, 9.5, 9.75, 10, 11, 11.25, 11.5, 12.5, 12.75, 13};
/* sl_over_rev: shape [2, 5, 2] */
static const float sl_over_rev[20] = {0.25, -0.5, 1.75, 1, 3.25, 2.5, 4.75, 4, 6.25, 5.5, 7.75, 7, 9.25, 8.5, 10.75, 10, 12.25, 11.5, 13.75, 13};
/* sl_multi: shape [2, 2, 2] */
static const float sl_multi[8] = {1, 1.5, 4, 4.5, 8.5, 9, 11.5, 12};
/* sl_bigstep: shape [2, 5, 1] */
static const float sl_bigstep[10] = {-1, 0.5, 2, 3.5, 5, 6.5, 8, 9.5, 11, 12.5};
/* sl_minstep: shape [2, 5, 1] */
static const float sl_minstep[10] = {0.25, 1.75, 3.25, 4.75, 6.25, 7.75, 9.25, 10.75, 12.25, 13.75};
/* sl_rev_end: shape [2, 5, 3] */
static const float sl_rev_end[30] = {-0.5, -0.75, -1, 1, 0.75, 0.5, 2.5, 2.25, 2, 4, 3.75, 3.5, 5.5, 5.25, 5, 7, 6.75, 6.5, 8.5, 8.25, 8, 10, 9.75, 9.5, 11.5, 11.25, 11, 13, 12.75, 12.5};
/* sl_empty: shape [2, 0, 6] */
static const float sl_empty[1] = {0};
/* sl_rev_empty: shape [2, 0, 6] */
static const float sl_rev_empty[1] = {0};
/* sl_minstart: shape [2, 3, 6] */
static const float sl_minstart[36] = {-1, -0.75, -0.5, -0.25, 0, 0.25, 2, 2.25, 2.5, 2.75, 3, 3.25, 5, 5.25, 5.5, 5.75, 6, 6.25, 6.5, 6.75, 7, 7.25, 7.5, 7.75, 9.5, 9.75, 10, 10.25, 10.5, 10.75, 12.5, 12.75, 13, 13.25, 13.5, 13.75};
/* sl_int: shape [2, 3] */
static const int64_t sl_int[6] = {18, 17, 16, 13, 12, 11};
/* ga_ax1: shape [2, 2, 2, 6] */
static const float ga_ax1[48] = {2, 2.25, 2.5, 2.75, 3, 3.25, 2, 2.25, 2.5, 2.75, 3, 3.25, -1, -0.75, -0.5, -0.25, 0, 0.25, 2, 2.25, 2.5, 2.75, 3, 3.25, 9.5, 9.75, 10, 10.25, 10.5, 10.75, 9.5, 9.75, 10, 10.25, 10.5, 10.75, 6.5, 6.75, 7, 7.25, 7.5, 7.75, 9.5, 9.75, 10, 10.25, 10.5, 10.75};
/* ga_last: shape [2, 5, 3] */
static const float ga_last[30] = {0.25, -1, 0.25, 1.75, 0.5, 1.75, 3.25, 2, 3.25, 4.75, 3.5, 4.75, 6.25, 5, 6.25, 7.75, 6.5, 7.75, 9.25, 8, 9.25, 10.75, 9.5, 10.75, 12.25, 11, 12.25, 13.75, 12.5, 13.75};
/* sp_a: shape [2, 4, 2] */
static const float sp_a[16] = {-1, -0.75, 0.5, 0.75, 2, 2.25, 3.5, 3.75, 5, 5.25, 6.5, 6.75, 8, 8.25, 9.5, 9.75};
/* sp_c: shape [2, 4, 4] */
static const float sp_c[32] = {-0.5, -0.25, 0, 0.25, 1, 1.25, 1.5, 1.75, 2.5, 2.75, 3, 3.25, 4, 4.25, 4.5, 4.75, 5.5, 5.75, 6, 6.25, 7, 7.25, 7.5, 7.75, 8.5, 8.75, 9, 9.25, 10, 10.25, 10.5, 10.75};
/* sp_eq0: shape [2, 2, 2] */
static const float sp_eq0[8] = {-1, -0.75, -0.5, -0.25, 2, 2.25, 2.5, 2.75};
/* sp_eq1: shape [2, 2, 2] */
static const float sp_eq1[8] = {0, 0.25, 0.5, 0.75, 3, 3.25, 3.5, 3.75};
/* sp_eq2: shape [2, 2, 2] */
static const float sp_eq2[8] = {1, 1.25, 1.5, 1.75, 4, 4.25, 4.5, 4.75};
/* ex_mid: shape [2, 4, 3] */
static const float ex_mid[24] = {-1, -0.75, -0.5, -1, -0.75, -0.5, -1, -0.75, -0.5, -1, -0.75, -0.5, -0.25, 0, 0.25, -0.25, 0, 0.25, -0.25, 0, 0.25, -0.25, 0, 0.25};
/* ex_lead: shape [2, 2, 1, 3] */
static const float ex_lead[12] = {-1, -0.75, -0.5, -0.25, 0, 0.25, -1, -0.75, -0.5, -0.25, 0, 0.25};
/* ti: shape [2, 4, 9] */
static const float ti[72] = {-1, -0.75, -0.5, -1, -0.75, -0.5, -1, -0.75, -0.5, -0.25, 0, 0.25, -0.25, 0, 0.25, -0.25, 0, 0.25, -1, -0.75, -0.5, -1, -0.75, -0.5, -1, -0.75, -0.5, -0.25, 0, 0.25, -0.25, 0, 0.25, -0.25, 0, 0.25, 0.5, 0.75, 1, 0.5, 0.75, 1, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 1.25, 1.5, 1.75, 1.25, 1.5, 1.75, 0.5, 0.75, 1, 0.5, 0.75, 1, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 1.25, 1.5, 1.75, 1.25, 1.5, 1.75};
/* sc_k2: shape [2, 4, 3] */
static const float sc_k2[24] = {-1, -0.75, -0.5, 30, 31, 32, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75, 4, 20, 21, 22};
/* sc_k3: shape [2, 4, 3] */
static const float sc_k3[24] = {-1, -0.75, 8, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25, 2.5, 2.75, 3, 3.25, 7, 3.75, 4, 4.25, 4.5, 4.75};

/* mv_rs: shape [2, 3] */
static const int64_t mv_rs[6] = {0, 3, 1, 4, 2, 5};
/* mv_cat: shape [2, 7] */
static const int64_t mv_cat[14] = {0, 3, 1, 0, 1, 2, 6, 4, 2, 5, 3, 4, 5, 7};
/* mv_sl: shape [2, 4] */
static const int64_t mv_sl[8] = {6, 1, 1, 0, 7, 4, 5, 4};
/* mv_p4: shape [2, 4] */
static const int64_t mv_p4[8] = {0, 1, 2, 6, 3, 4, 5, 7};
/* mv_ex: shape [2, 2, 3] */
static const int64_t mv_ex[12] = {0, 3, 1, 4, 2, 5, 0, 3, 1, 4, 2, 5};
/* mv_sc: shape [2, 8] */
static const int64_t mv_sc[16] = {6, 1, 1, 0, 6, 1, 1, 8, 9, 4, 5, 4, 7, 4, 5, 4};

/* --- Slice ------------------------------------------------------------------------------------------ */

struct slice_case {
	const char *name;
	int n;				 /* values in starts and ends */
	int64_t starts[3], ends[3], axes[3], steps[3];
	int has_axes, has_steps;
	struct pc_shape shape;		 /* numpy's result shape */
	const float *want;
};

/* x[2,5,6] sliced every way ONNX clamps: numpy x[a:b:c] is the reference. */
static const struct slice_case slice_cases[] = {
	{"sl_tail", 1, {1}, {IMAX}, {2}, {0}, 1, 0, {3, {2, 5, 5}}, sl_tail},
	{"sl_neg", 1, {-2}, {-1}, {1}, {0}, 1, 0, {3, {2, 1, 6}}, sl_neg},
	{"sl_rev", 1, {-1}, {IMIN}, {2}, {-1}, 1, 1, {3, {2, 5, 6}}, sl_rev},
	{"sl_rev2", 1, {4}, {0}, {1}, {-2}, 1, 1, {3, {2, 2, 6}}, sl_rev2},
	{"sl_past", 1, {10}, {20}, {2}, {0}, 1, 0, {3, {2, 5, 0}}, sl_past},
	{"sl_under", 1, {-100}, {3}, {2}, {0}, 1, 0, {3, {2, 5, 3}}, sl_under},
	{"sl_over_rev", 1, {100}, {-100}, {-1}, {-3}, 1, 1, {3, {2, 5, 2}}, sl_over_rev},
	{"sl_multi", 3, {0, 1, 2}, {IMAX, 4, 6}, {0}, {1, 2, 2}, 0, 1, {3, {2, 2, 2}}, sl_multi},
	{"sl_bigstep", 1, {0}, {IMAX}, {-1}, {IMAX}, 1, 1, {3, {2, 5, 1}}, sl_bigstep},
	{"sl_minstep", 1, {-1}, {IMIN}, {-1}, {IMIN}, 1, 1, {3, {2, 5, 1}}, sl_minstep},
	{"sl_rev_end", 1, {2}, {-10}, {2}, {-1}, 1, 1, {3, {2, 5, 3}}, sl_rev_end},
	{"sl_empty", 1, {3}, {3}, {1}, {0}, 1, 0, {3, {2, 0, 6}}, sl_empty},
	{"sl_rev_empty", 1, {1}, {3}, {1}, {-1}, 1, 1, {3, {2, 0, 6}}, sl_rev_empty},
	{"sl_minstart", 1, {IMIN}, {IMAX}, {1}, {2}, 1, 1, {3, {2, 3, 6}}, sl_minstart},
};

#define N_SLICE_CASES ((int)(sizeof(slice_cases) / sizeof(slice_cases[0])))

/* x[N,5,6] -> one Slice per case (value named as the case); y = Flatten(case `out`). */
static struct pc_graph *slice_graph(int out, struct pc_error *err)
{
	struct pc_graph *g = graph_with_input(13, SH(-1, 5, 6), err);
	char names[4][64], ins[300];

	for (int c = 0; c < N_SLICE_CASES; c++) {
		const struct slice_case *sc = &slice_cases[c];
		snprintf(names[0], sizeof(names[0]), "%s_st", sc->name);
		snprintf(names[1], sizeof(names[1]), "%s_en", sc->name);
		snprintf(names[2], sizeof(names[2]), "%s_ax", sc->name);
		snprintf(names[3], sizeof(names[3]), "%s_sp", sc->name);
		ints(g, names[0], sc->n, sc->starts, err);
		ints(g, names[1], sc->n, sc->ends, err);
		if (sc->has_axes)
			ints(g, names[2], sc->n, sc->axes, err);
		if (sc->has_steps)
			ints(g, names[3], sc->n, sc->steps, err);
		/* an omitted axes between given ends and steps stays an empty name */
		snprintf(ins, sizeof(ins), "x,%s,%s,%s,%s", names[0], names[1], sc->has_axes ? names[2] : "",
			 sc->has_steps ? names[3] : "");
		node(g, "Slice", sc->name, ins, sc->name, 0, NULL, err);
	}
	node(g, "Flatten", "flat", slice_cases[out].name, "y", 0, NULL, err);
	return g;
}

TEST(ops_index_slice_cases)
{
	struct pc_error err = {0};
	struct pc_graph *g = slice_graph(0, &err);
	struct pc_plan *p;

	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		for (int c = 0; c < N_SLICE_CASES; c++)
			CHECK_FLOATS(p, slice_cases[c].name, slice_cases[c].shape, slice_cases[c].want);
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

TEST(ops_index_slice_grad)
{
	struct pc_error err = {0};
	struct pc_graph *g;

	/* a negative step, a clamped one, several axes: the gradient lands where each
	 * element was read; elements not read get none */
	for (int c = 0; c < N_SLICE_CASES; c++) {
		const char *name = slice_cases[c].name;
		if (strcmp(name, "sl_rev2") && strcmp(name, "sl_over_rev") && strcmp(name, "sl_multi") &&
		    strcmp(name, "sl_minstep"))
			continue;
		g = slice_graph(c, &err);
		if (FINISH(g, "y", &err))
			CHECK_MSG(gc_check(t, g, &grad_opts) >= 60, "%s: too few elements checked", name);
		pc_graph_free(g);
		memset(&err, 0, sizeof(err));
	}
}

/* Slice of int64 values folds at prepare, as torch's view(x.size(0), -1)
 * exports it: Shape -> Slice -> Concat -> Reshape. */
TEST(ops_index_slice_int64)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 5, 6), &err);
	struct pc_shape s25 = SH(2, 5);
	const int64_t k[10] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
	struct pc_plan *p;

	pc_graph_add_int64(g, "k", &s25, k, &err);
	INTS(g, "ks", &err, -1, 3);
	INTS(g, "ke", &err, IMIN, 0);
	INTS(g, "ka", &err, 0, 1);
	INTS(g, "kp", &err, -1, -1);
	INTS(g, "z", &err, 0);
	INTS(g, "one", &err, 1);
	INTS(g, "m1", &err, -1);
	node(g, "Slice", "slk", "k,ks,ke,ka,kp", "sk", 0, NULL, &err);
	node(g, "Shape", "shp", "x", "s", 0, NULL, &err);
	node(g, "Slice", "sls", "s,z,one", "n", 0, NULL, &err);
	node(g, "Concat", "cat", "n,m1", "shape", 1, (struct pc_attr[]){a_int("axis", 0)}, &err);
	node(g, "Reshape", "rs", "x,shape", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 3, NULL);
	if (p) {
		check_ints(t, __LINE__, p, "sk", 1, SH(2, 3), sl_int);
		CHECK_INTS(p, "n", 1, SH(1), 3);
		CHECK_INTS(p, "shape", 1, SH(2), 3, -1);
		struct pc_shape want = SH(3, 30);
		struct pc_plan_value y;
		CHECK((pc_plan_value(p, "y", &y, NULL) == PC_OK) && pc_shape_equal(&y.shape, &want));
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

TEST(ops_index_slice_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;

#define SLICE_GRAPH(ins)                                                                                          \
	do {                                                                                                      \
		g = graph_with_input(13, SH(-1, 5, 6), &err);                                                     \
		INTS(g, "s1", &err, 0);                                                                           \
		INTS(g, "e1", &err, 2);                                                                           \
		INTS(g, "s2", &err, 0, 0);                                                                        \
		INTS(g, "e2", &err, 2, 2);                                                                        \
		INTS(g, "a22", &err, 2, -1);                                                                      \
		INTS(g, "a9", &err, 3);                                                                           \
		INTS(g, "zero", &err, 0);                                                                         \
		INTS(g, "s4", &err, 0, 0, 0, 0);                                                                  \
		node(g, "Slice", "sl", ins, "s", 0, NULL, &err);                                                   \
		node(g, "Flatten", "flat", "s", "y", 0, NULL, &err);                                              \
	} while (0)

	SLICE_GRAPH("x,s1,e1,,zero");
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sl", "step 0 is 0");
	SLICE_GRAPH("x,s2,e2,a22");
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sl", "sliced twice");
	SLICE_GRAPH("x,s1,e2");
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sl", "must match");
	SLICE_GRAPH("x,s1,e1,a9");
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sl", "out of range for rank 3");
	SLICE_GRAPH("x,s1,e1,a22");
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sl", "axes has 2 values");
	SLICE_GRAPH("x,s4,s4");
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sl", "rank 3");
	/* starts computed at run time cannot give a shape */
	SLICE_GRAPH("x,x,e1");
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "sl", "known before the run");
	/* the opset-1 form with attributes */
	g = graph_with_input(13, SH(-1, 5, 6), &err);
	INTS(g, "s1", &err, 0);
	node(g, "Slice", "sl", "x,s1,s1", "s", 1, (struct pc_attr[]){a_ints("starts", 1, (int64_t[]){0})}, &err);
	node(g, "Flatten", "flat", "s", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "sl", "attribute 'starts'");
#undef SLICE_GRAPH
}

/* --- Gather ----------------------------------------------------------------------------------------- */

TEST(ops_index_gather_float)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 5, 6), &err);
	struct pc_shape s22 = SH(2, 2);
	const int64_t idx2[4] = {2, -3, 0, 2};
	struct pc_plan *p;

	pc_graph_add_int64(g, "i2", &s22, idx2, &err);
	INTS(g, "i3", &err, 5, 0, -1);
	node(g, "Gather", "g1", "x,i2", "ga_ax1", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	node(g, "Gather", "g2", "x,i3", "ga_last", 1, (struct pc_attr[]){a_int("axis", -1)}, &err);
	node(g, "Flatten", "flat", "ga_ax1", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK_FLOATS(p, "ga_ax1", SH(2, 2, 2, 6), ga_ax1);
		CHECK_FLOATS(p, "ga_last", SH(2, 5, 3), ga_last);
		CHECK_INT(pc_plan_input_id_limit(p, NULL), -1); /* the input is data, not ids */
		pc_plan_free(p);
	}
	/* row 2 is read three times: its gradient is the sum */
	CHECK(gc_check(t, g, &grad_opts) >= 60);
out:
	pc_graph_free(g);
}

/* An embedding table W[5,3] (a weight) looked up by fixed ids with
 * repeats; the table's gradient is checked exactly against sums derived by
 * hand from the ids. */
TEST(ops_index_gather_embedding_static)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(2, 9), &err);
	struct pc_shape s53 = SH(5, 3), s23 = SH(2, 3);
	const float w[15] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42};
	const int64_t ids[6] = {1, 3, 1, 4, 1, 0};
	struct pc_plan *p;

	pc_graph_add_float(g, "W", &s53, w, &err);
	pc_graph_add_int64(g, "ids", &s23, ids, &err);
	node(g, "Gather", "emb", "W,ids", "e", 0, NULL, &err);
	node(g, "Flatten", "flat", "e", "ef", 0, NULL, &err);
	node(g, "Add", "add", "x,ef", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	CHECK_INT(pc_graph_param_tensors(g), 1);
	p = run(t, __LINE__, g, 2, PC_PLAN_GRAD, NULL);
	if (p) {
		const float *y = pc_plan_output(p), *gw;
		float *og = pc_plan_output_grad(p);
		/* dW[v] = sum of the output-gradient rows of the tokens equal to v */
		const float want[15] = {16, 17, 18, 1 + 7 + 13, 2 + 8 + 14, 3 + 9 + 15, 0, 0, 0, 4, 5, 6, 10, 11, 12};
		for (int i = 0; i < 18; i++) {
			int tok = i / 3, c = i % 3;
			CHECK_CLOSE(y[i], 0.25 * i - 1.0 + w[ids[tok] * 3 + c], 0, 0);
			og[i] = (float)(i + 1);
		}
		pc_plan_zero_weight_grad(p);
		pc_plan_backward(p);
		gw = pc_plan_weight_grad(p);
		for (int i = 0; i < 15; i++)
			CHECK_MSG(gw[i] == want[i], "dW[%d] = %g, expected %g", i, (double)gw[i], (double)want[i]);
		/* a second backward adds to the gradient, never assigns */
		pc_plan_backward(p);
		for (int i = 0; i < 15; i++)
			CHECK_MSG(gw[i] == 2 * want[i], "dW[%d] = %g after two passes, expected %g", i, (double)gw[i],
				  2.0 * want[i]);
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) >= 15 + 18);
out:
	pc_graph_free(g);
}

TEST(ops_index_gather_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_shape s8 = SH(1, 1, 1, 1, 1, 1, 1, 2), s11 = SH(1, 1);
	const float w8[2] = {1, 2};
	const int64_t zero2[1] = {0};

	/* a static index past the end, and before the start */
	g = graph_with_input(13, SH(-1, 5, 6), &err);
	INTS(g, "i", &err, 0, 6);
	node(g, "Gather", "gbad", "x,i", "gx", 1, (struct pc_attr[]){a_int("axis", 2)}, &err);
	node(g, "Flatten", "flat", "gx", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "gbad", "index 6 is out of range for axis 2 of size 6");
	g = graph_with_input(13, SH(-1, 5, 6), &err);
	INTS(g, "i", &err, -6);
	node(g, "Gather", "gbad", "x,i", "gx", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	node(g, "Flatten", "flat", "gx", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "gbad", "index -6 is out of range");
	/* axis out of range */
	g = graph_with_input(13, SH(-1, 5, 6), &err);
	INTS(g, "i", &err, 0);
	node(g, "Gather", "gax", "x,i", "gx", 1, (struct pc_attr[]){a_int("axis", 3)}, &err);
	node(g, "Flatten", "flat", "gx", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "gax", "attribute 'axis' is 3");
	/* rank 8 data by rank 2 indices: rank 9 */
	g = graph_with_input(13, SH(-1, 2), &err);
	pc_graph_add_float(g, "w8", &s8, w8, &err);
	pc_graph_add_int64(g, "i", &s11, zero2, &err);
	node(g, "Gather", "grank", "w8,i", "gx", 0, NULL, &err);
	node(g, "Flatten", "flat", "gx", "y", 0, NULL, &err);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "grank", "rank 9");
}

/* --- Split ------------------------------------------------------------------------------------------ */

TEST(ops_index_split_sizes)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 4, 6), &err);
	struct pc_plan *p;

	/* a part of size 0 in the middle; the parts put back in reverse order */
	INTS(g, "sizes", &err, 2, 0, 4);
	node(g, "Split", "sp", "x,sizes", "a,b,c", 1, (struct pc_attr[]){a_int("axis", -1)}, &err);
	node(g, "Concat", "cat", "c,b,a", "r", 1, (struct pc_attr[]){a_int("axis", 2)}, &err);
	node(g, "Flatten", "flat", "r", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK_FLOATS(p, "a", SH(2, 4, 2), sp_a);
		CHECK_FLOATS(p, "b", SH(2, 4, 0), sp_a);
		CHECK_FLOATS(p, "c", SH(2, 4, 4), sp_c);
		for (int i = 0; i < 8; i++)
			for (int j = 0; j < 6; j++)
				CHECK_CLOSE(pc_plan_output(p)[i * 6 + j], j < 4 ? sp_c[i * 4 + j] : sp_a[i * 2 + j - 4], 0, 0);
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) >= 48);
out:
	pc_graph_free(g);
}

/* Equal parts; outputs nobody reads still count: dropping the unused last
 * two must not make the first one the whole axis. */
TEST(ops_index_split_equal_unused)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 6, 2), &err);
	struct pc_plan *p;

	node(g, "Split", "sp", "x", "e0,e1,e2", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	node(g, "Flatten", "flat", "e0", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK_FLOATS(p, "e0", SH(2, 2, 2), sp_eq0);
		CHECK_INT(pc_plan_classes(p), 4);
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) >= 24);
out:
	pc_graph_free(g);

	/* the middle one unused */
	g = graph_with_input(13, SH(-1, 6, 2), &err);
	node(g, "Split", "sp", "x", "e0,e1,e2", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	node(g, "Concat", "cat", "e2,e0", "c", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	node(g, "Flatten", "flat", "c", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		CHECK_FLOATS(p, "e0", SH(2, 2, 2), sp_eq0);
		CHECK_FLOATS(p, "e2", SH(2, 2, 2), sp_eq2);
		struct pc_plan_value e1;
		CHECK((pc_plan_value(p, "e1", &e1, NULL) == PC_OK) && e1.dtype == PC_DTYPE_UNDEFINED); /* never made */
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* Before opset 13 the sizes are an attribute. */
TEST(ops_index_split_opset11)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(11, SH(-1, 6, 2), &err);
	struct pc_attr attrs[2] = {a_int("axis", 1), a_ints("split", 2, (int64_t[]){2, 4})};
	struct pc_plan *p;

	node(g, "Split", "sp", "x", "u,v", 2, attrs, &err);
	node(g, "Flatten", "flat", "v", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		/* v = x[:, 2:6]: the rows of sp_eq1 and sp_eq2, per sample */
		float want[16];
		for (int n = 0; n < 2; n++) {
			memcpy(want + n * 8, sp_eq1 + n * 4, 4 * sizeof(float));
			memcpy(want + n * 8 + 4, sp_eq2 + n * 4, 4 * sizeof(float));
		}
		CHECK_FLOATS(p, "u", SH(2, 2, 2), sp_eq0);
		CHECK_FLOATS(p, "v", SH(2, 4, 2), want);
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

TEST(ops_index_split_int64)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2), &err);
	struct pc_plan *p;

	INTS(g, "k", &err, 7, 8, 9, 10, 11, 12);
	INTS(g, "sizes", &err, 1, 5);
	node(g, "Split", "sp", "k,sizes", "k1,k5", 0, NULL, &err);
	node(g, "Split", "sp2", "k", "h1,h2", 0, NULL, &err);
	/* read every part, or the unused ones are dropped at load */
	node(g, "Concat", "catk", "k5,k1", "kc", 1, (struct pc_attr[]){a_int("axis", 0)}, &err);
	node(g, "Concat", "cath", "h2,h1", "hc", 1, (struct pc_attr[]){a_int("axis", 0)}, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	if (FINISH(g, "y", &err) && (p = RUN(g, 2, NULL))) {
		CHECK_INTS(p, "k1", 1, SH(1), 7);
		CHECK_INTS(p, "k5", 1, SH(5), 8, 9, 10, 11, 12);
		CHECK_INTS(p, "h1", 1, SH(3), 7, 8, 9);
		CHECK_INTS(p, "h2", 1, SH(3), 10, 11, 12);
		CHECK_INTS(p, "kc", 1, SH(6), 8, 9, 10, 11, 12, 7);
		CHECK_INTS(p, "hc", 1, SH(6), 10, 11, 12, 7, 8, 9);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

TEST(ops_index_split_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_attr axis2 = a_int("axis", 2);

#define SPLIT_GRAPH(opset, ins, outs, n_attr, attrs)                                                              \
	do {                                                                                                      \
		g = graph_with_input(opset, SH(-1, 4, 6), &err);                                                  \
		INTS(g, "s24", &err, 2, 2);                                                                       \
		INTS(g, "s6", &err, 6);                                                                           \
		INTS(g, "sneg", &err, 8, -2);                                                                     \
		node(g, "Split", "sp", ins, outs, n_attr, attrs, &err);                                           \
		node(g, "Flatten", "flat", "a", "y", 0, NULL, &err);                                              \
	} while (0)

	SPLIT_GRAPH(13, "x,s24", "a,b", 1, &axis2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "sp", "add up to 4; axis 2 has size 6");
	SPLIT_GRAPH(13, "x,s6", "a,b", 1, &axis2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sp", "1 sizes for 2 outputs");
	SPLIT_GRAPH(13, "x,sneg", "a,b", 1, &axis2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "sp", "size 0 is 8");
	SPLIT_GRAPH(13, "x", "a,b,c,d", 1, &axis2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "sp", "4 equal parts");
	SPLIT_GRAPH(13, "x", "a,b", 1, (struct pc_attr[]){a_int("axis", 3)});
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sp", "attribute 'axis' is 3");
	SPLIT_GRAPH(13, "x", "a,b", 1, (struct pc_attr[]){a_ints("split", 2, (int64_t[]){3, 3})});
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sp", "replaced by input 1 at opset 13");
	SPLIT_GRAPH(11, "x,s24", "a,b", 1, &axis2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sp", "exist from opset 13");
	/* sizes computed at run time */
	SPLIT_GRAPH(13, "x,x", "a,b", 1, &axis2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "sp", "known before the run");
#undef SPLIT_GRAPH
}

/* --- Expand, Tile ----------------------------------------------------------------------------------- */

TEST(ops_index_expand)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 1, 3), &err);
	struct pc_plan *p;

	INTS(g, "s141", &err, 1, 4, 1);
	INTS(g, "s2111", &err, 2, 1, 1, 1);
	INTS(g, "s3", &err, 3);
	INTS(g, "one", &err, 7);
	INTS(g, "s_3", &err, 3);
	node(g, "Expand", "ex1", "x,s141", "ex_mid", 0, NULL, &err);
	node(g, "Expand", "ex2", "x,s2111", "ex_lead", 0, NULL, &err);
	node(g, "Expand", "ex3", "x,s3", "ex_same", 0, NULL, &err);
	node(g, "Expand", "exk", "one,s_3", "k3", 0, NULL, &err);
	node(g, "Flatten", "flat", "ex_mid", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		const float x[6] = {-1, -0.75f, -0.5f, -0.25f, 0, 0.25f};
		CHECK_FLOATS(p, "ex_mid", SH(2, 4, 3), ex_mid);
		CHECK_FLOATS(p, "ex_lead", SH(2, 2, 1, 3), ex_lead);
		CHECK_FLOATS(p, "ex_same", SH(2, 1, 3), x);
		CHECK_INTS(p, "k3", 1, SH(3), 7, 7, 7);
		pc_plan_free(p);
	}
	/* each input element feeds 4 outputs: its gradient sums them */
	CHECK(gc_check(t, g, &grad_opts) >= 6);
out:
	pc_graph_free(g);
}

TEST(ops_index_expand_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;

#define EXPAND_GRAPH(...)                                                                                         \
	do {                                                                                                      \
		g = graph_with_input(13, SH(-1, 2, 3), &err);                                                     \
		INTS(g, "s", &err, __VA_ARGS__);                                                                  \
		node(g, "Expand", "ex", "x,s", "e", 0, NULL, &err);                                               \
		node(g, "Flatten", "flat", "e", "y", 0, NULL, &err);                                              \
	} while (0)

	EXPAND_GRAPH(2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "ex", "[2,2,3] does not broadcast to [2]");
	EXPAND_GRAPH(1, -1, 3);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "ex", "dimension -1");
	/* 2^60 elements: refused at load, not allocated */
	EXPAND_GRAPH((int64_t)1 << 20, (int64_t)1 << 20, (int64_t)1 << 20, 1, 1, 1);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "ex", "would have shape");
#undef EXPAND_GRAPH
}

TEST(ops_index_tile)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2, 3), &err);
	struct pc_plan *p;

	INTS(g, "r", &err, 1, 2, 3);
	INTS(g, "r0", &err, 1, 0, 1);
	INTS(g, "k", &err, 1, 2);
	INTS(g, "r3", &err, 3);
	node(g, "Tile", "ti", "x,r", "ti", 0, NULL, &err);
	node(g, "Tile", "ti0", "x,r0", "t0", 0, NULL, &err);
	node(g, "Tile", "tik", "k,r3", "tk", 0, NULL, &err);
	node(g, "Flatten", "flat", "ti", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK_FLOATS(p, "ti", SH(2, 4, 9), ti);
		CHECK_FLOATS(p, "t0", SH(2, 0, 3), ti);
		CHECK_INTS(p, "tk", 1, SH(6), 1, 2, 1, 2, 1, 2);
		pc_plan_free(p);
	}
	/* each input element appears 6 times */
	CHECK(gc_check(t, g, &grad_opts) >= 12);
out:
	pc_graph_free(g);
}

TEST(ops_index_tile_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;

#define TILE_GRAPH(...)                                                                                           \
	do {                                                                                                      \
		g = graph_with_input(13, SH(-1, 2, 3), &err);                                                     \
		INTS(g, "r", &err, __VA_ARGS__);                                                                  \
		node(g, "Tile", "ti", "x,r", "e", 0, NULL, &err);                                                 \
		node(g, "Flatten", "flat", "e", "y", 0, NULL, &err);                                              \
	} while (0)

	TILE_GRAPH(1, 2);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "ti", "repeats has 2 values; the input has rank 3");
	TILE_GRAPH(1, -2, 1);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "ti", "repeats[1] is -2");
	/* one axis past 2^40 */
	TILE_GRAPH(1, (int64_t)1 << 40, 1);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "ti", "too large");
	/* INT64_MAX repeats: the check must not overflow */
	TILE_GRAPH(1, INT64_MAX, 1);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "ti", "too large");
	/* each axis fits, the product does not */
	TILE_GRAPH(1, (int64_t)1 << 30, (int64_t)1 << 30);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "ti", "would have shape");
#undef TILE_GRAPH
}

/* --- ScatterND -------------------------------------------------------------------------------------- */

/* x[2,4,3] with rows (0,1), (1,3) and (0,1) again replaced by the weight
 * U[3,3]: the last write wins, and so does its gradient. */
TEST(ops_index_scatternd_rows)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(2, 4, 3), &err);
	struct pc_shape s32 = SH(3, 2), s33 = SH(3, 3);
	const int64_t ind[6] = {0, 1, 1, -1, 0, 1};
	const float u[9] = {10, 11, 12, 20, 21, 22, 30, 31, 32};
	struct pc_plan *p;

	pc_graph_add_int64(g, "ind", &s32, ind, &err);
	pc_graph_add_float(g, "U", &s33, u, &err);
	node(g, "ScatterND", "sc", "x,ind,U", "sc_k2", 0, NULL, &err);
	node(g, "Flatten", "flat", "sc_k2", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = run(t, __LINE__, g, 2, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, NULL);
	if (p) {
		float *og = pc_plan_output_grad(p);
		const float *gu, *gx;
		CHECK_FLOATS(p, "sc_k2", SH(2, 4, 3), sc_k2);
		for (int i = 0; i < 24; i++)
			og[i] = (float)(i + 1);
		pc_plan_zero_weight_grad(p);
		pc_plan_backward(p);
		gu = pc_plan_weight_grad(p);
		gx = pc_plan_input_grad(p);
		/* U[0] lost (0,1) to U[2]; U[1] wrote (1,3) = elements 21..23 */
		for (int c = 0; c < 3; c++) {
			CHECK_CLOSE(gu[c], 0, 0, 0);
			CHECK_CLOSE(gu[3 + c], 22 + c, 0, 0);
			CHECK_CLOSE(gu[6 + c], 4 + c, 0, 0);
		}
		for (int i = 0; i < 24; i++)
			CHECK_CLOSE(gx[i], (i >= 3 && i < 6) || i >= 21 ? 0 : i + 1, 0, 0);
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) >= 24 + 9);
out:
	pc_graph_free(g);
}

TEST(ops_index_scatternd_elements_int64)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(16, SH(2, 4, 3), &err);
	struct pc_shape s23 = SH(2, 3), s2 = SH(2), s21 = SH(2, 1);
	const int64_t ind[6] = {1, 2, 0, 0, 0, -1}, kind[2] = {4, 0};
	const float u[2] = {7, 8};
	struct pc_plan *p;

	pc_graph_add_int64(g, "ind", &s23, ind, &err);
	pc_graph_add_float(g, "U", &s2, u, &err);
	pc_graph_add_int64(g, "kind", &s21, kind, &err);
	INTS(g, "k", &err, 1, 2, 3, 4, 5);
	INTS(g, "ku", &err, 40, 10);
	node(g, "ScatterND", "sc", "x,ind,U", "sc_k3", 1, (struct pc_attr[]){a_str("reduction", "none")}, &err);
	node(g, "ScatterND", "sck", "k,kind,ku", "kk", 0, NULL, &err);
	node(g, "Flatten", "flat", "sc_k3", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		CHECK_FLOATS(p, "sc_k3", SH(2, 4, 3), sc_k3);
		CHECK_INTS(p, "kk", 1, SH(5), 10, 2, 3, 4, 40);
		pc_plan_free(p);
	}
	CHECK(gc_check(t, g, &grad_opts) >= 24 + 2);
out:
	pc_graph_free(g);
}

TEST(ops_index_scatternd_errors)
{
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_shape s12 = SH(1, 2), s13 = SH(1, 3), s14 = SH(1, 4), s3 = SH(3);
	const int64_t in_range[2] = {1, 3}, past[2] = {1, 4}, four[4] = {0, 0, 0, 0}, u3i[3] = {1, 2, 3};
	const float u3[3] = {1, 2, 3};

#define SCATTER_GRAPH(opset, ishape, ivals)                                                        \
	do {                                                                                                      \
		g = graph_with_input(opset, SH(2, 4, 3), &err);                                                   \
		pc_graph_add_int64(g, "ind", &ishape, ivals, &err);                                                \
		pc_graph_add_float(g, "U13", &s13, u3, &err);                                                      \
		pc_graph_add_float(g, "U3", &s3, u3, &err);                                                        \
		pc_graph_add_int64(g, "U3i", &s3, u3i, &err);                                                      \
	} while (0)
#define SCATTER_NODE(upd, n_attr, attrs)                                                                          \
	do {                                                                                                      \
		node(g, "ScatterND", "sc", "x,ind," upd, "s", n_attr, attrs, &err);                              \
		node(g, "Flatten", "flat", "s", "y", 0, NULL, &err);                                              \
	} while (0)

	SCATTER_GRAPH(13, s12, in_range);
	SCATTER_NODE("U3", 0, NULL);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "sc", "updates have shape [3]; indices and data need [1,3]");
	SCATTER_GRAPH(13, s12, past);
	SCATTER_NODE("U13", 0, NULL);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "sc", "index [1,4] is out of range for data [2,4,3]");
	SCATTER_GRAPH(13, s14, four);
	SCATTER_NODE("U13", 0, NULL);
	EXPECT_FAIL(g, "y", &err, PC_ERR_SHAPE, "sc", "indices address 4 axes; the data has rank 3");
	SCATTER_GRAPH(13, s12, in_range);
	SCATTER_NODE("U3i", 0, NULL);
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sc", "input 2 (updates) is int64; the data is float");
	SCATTER_GRAPH(16, s12, in_range);
	SCATTER_NODE("U13", 1, (struct pc_attr[]){a_str("reduction", "add")});
	EXPECT_FAIL(g, "y", &err, PC_ERR_UNSUPPORTED, "sc", "only 'none'");
	SCATTER_GRAPH(13, s12, in_range);
	SCATTER_NODE("U13", 1, (struct pc_attr[]){a_str("reduction", "none")});
	EXPECT_FAIL(g, "y", &err, PC_ERR_FORMAT, "sc", "exists from opset 16");
#undef SCATTER_GRAPH
#undef SCATTER_NODE
}

/* --- run-time int64 values: token ids --------------------------------------------------------------- */

static struct pc_graph *graph_with_ids(struct pc_shape ids, struct pc_error *err)
{
	struct pc_graph *g = pc_graph_new(13, err);

	if (g)
		pc_graph_add_input_typed(g, "ids", &ids, PC_DTYPE_INT64, err);
	return g;
}

/* A plan with the token ids filled in, run forward once. */
static struct pc_plan *run_ids(struct pc_test *t, int line, const struct pc_graph *g, int batch, unsigned flags,
			       const int64_t *ids)
{
	struct pc_error err = {0};
	struct pc_plan *p = pc_plan_new(g, batch, flags, &err);
	char msg[700];

	if (!p) {
		pc_test_fail(t, __FILE__, line, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		return NULL;
	}
	if (!pc_plan_input_int64(p)) {
		pc_test_fail(t, __FILE__, line, "the plan has no int64 input");
		pc_plan_free(p);
		return NULL;
	}
	memcpy(pc_plan_input_int64(p), ids, (size_t)(batch * pc_plan_sample_numel(p)) * sizeof(int64_t));
	pc_plan_forward(p);
	return p;
}

/* An embedding W[6,2] looked up by ids[N,4] (output [N, T, V] = [N,4,2]):
 * repeated ids sum their gradients, a negative id counts from the end, and
 * ids out of range read zeros and receive nothing. The expected gradient
 * is summed by hand from the ids below. */
TEST(ops_index_embedding_tokens)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_ids(SH(-1, 4), &err);
	struct pc_shape s62 = SH(6, 2);
	const float w[12] = {0, -0.5f, 1, -1.5f, 2, -2.5f, 3, -3.5f, 4, -4.5f, 5, -5.5f};
	/* rows: 1 5 1 5 | bad bad 0 1 | 5 5 2 3 */
	const int64_t ids[12] = {1, 5, 1, -1, 6, -7, 0, 1, 5, 5, 2, 3};
	const int64_t row[12] = {1, 5, 1, 5, -1, -1, 0, 1, 5, 5, 2, 3};
	/* dW[v] += (2t+1, 2t+2) for each token t with row v */
	const float want[12] = {13, 14, 1 + 5 + 15, 2 + 6 + 16, 21, 22, 23, 24, 0, 0, 3 + 7 + 17 + 19, 4 + 8 + 18 + 20};
	struct pc_plan *p;

	pc_graph_add_float(g, "W", &s62, w, &err);
	node(g, "Gather", "emb", "W,ids", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	CHECK_INT(pc_graph_input_dtype(g), PC_DTYPE_INT64);
	CHECK_INT(pc_graph_positions(g), 4);
	p = run_ids(t, __LINE__, g, 3, PC_PLAN_GRAD, ids);
	if (p) {
		const float *y = pc_plan_output(p), *gw;
		float *og = pc_plan_output_grad(p);
		CHECK_INT(pc_plan_input_id_limit(p, NULL), 6);
		for (int tok = 0; tok < 12; tok++)
			for (int c = 0; c < 2; c++) {
				float v = row[tok] < 0 ? 0.0f : w[row[tok] * 2 + c];
				CHECK_MSG(y[tok * 2 + c] == v, "y[%d][%d] = %g, expected %g", tok, c, (double)y[tok * 2 + c],
					  (double)v);
				og[tok * 2 + c] = (float)(tok * 2 + c + 1);
			}
		pc_plan_zero_weight_grad(p);
		pc_plan_backward(p);
		gw = pc_plan_weight_grad(p);
		for (int i = 0; i < 12; i++)
			CHECK_MSG(gw[i] == want[i], "dW[%d] = %g, expected %g", i, (double)gw[i], (double)want[i]);
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

/* The id bound follows the ids through views and takes the smallest table;
 * a Gather that reads the ids as data does not bound them. */
TEST(ops_index_id_limit_views)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_ids(SH(-1, 3), &err);
	struct pc_shape s72 = SH(7, 2), s42 = SH(4, 2);
	float w7[14], w4[8];
	const int64_t ids[6] = {0, 3, 2, 1, 1, 3};
	struct pc_plan *p;

	for (int i = 0; i < 14; i++)
		w7[i] = (float)i;
	for (int i = 0; i < 8; i++)
		w4[i] = (float)(100 + i);
	pc_graph_add_float(g, "W7", &s72, w7, &err);
	pc_graph_add_float(g, "W4", &s42, w4, &err);
	INTS(g, "ax2", &err, 2);
	INTS(g, "col", &err, 0);
	INTS(g, "flat6", &err, -1, 6);
	node(g, "Unsqueeze", "un", "ids,ax2", "u", 0, NULL, &err);
	node(g, "Gather", "e7", "W7,u", "a", 0, NULL, &err);	     /* [N,3,1,2] */
	node(g, "Gather", "e4", "W4,ids", "b", 0, NULL, &err);	     /* [N,3,2] */
	node(g, "Gather", "pick", "ids,col", "c", 1, (struct pc_attr[]){a_int("axis", 1)}, &err); /* ids as data */
	node(g, "Reshape", "ra", "a,flat6", "af", 0, NULL, &err);
	node(g, "Reshape", "rb", "b,flat6", "bf", 0, NULL, &err);
	node(g, "Add", "add", "af,bf", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = run_ids(t, __LINE__, g, 2, 0, ids);
	if (p) {
		CHECK_INT(pc_plan_input_id_limit(p, NULL), 4);
		CHECK_INTS(p, "c", 0, SH(2, 1), 0, 1);
		for (int tok = 0; tok < 6; tok++)
			for (int k = 0; k < 2; k++)
				CHECK_CLOSE(pc_plan_output(p)[tok * 2 + k], w7[ids[tok] * 2 + k] + w4[ids[tok] * 2 + k], 0, 0);
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

/* Token ids moved at run time by every data-movement op, then looked up:
 * the int64 values on the way are run-time tensors, checked against numpy
 * (make_index_reference.py); the output is W[id] = (id, -id). */
TEST(ops_index_int64_runtime_moves)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_ids(SH(2, 3), &err);
	struct pc_shape s21 = SH(2, 1), s22 = SH(2, 2), s102 = SH(10, 2), s2 = SH(2);
	const int64_t ids[6] = {0, 1, 2, 3, 4, 5}, k[2] = {6, 7}, scind[4] = {0, 7, 1, 0}, scupd[2] = {8, 9};
	struct pc_attr perm = a_ints("perm", 3, (int64_t[]){2, 0, 1});
	float w[20];
	struct pc_plan *p;

	for (int i = 0; i < 10; i++) {
		w[2 * i] = (float)i;
		w[2 * i + 1] = -(float)i;
	}
	pc_graph_add_float(g, "W", &s102, w, &err);
	pc_graph_add_int64(g, "K", &s21, k, &err);
	pc_graph_add_int64(g, "scind", &s22, scind, &err);
	pc_graph_add_int64(g, "scupd", &s2, scupd, &err);
	INTS(g, "ax1", &err, 1);
	INTS(g, "ax2", &err, 2);
	INTS(g, "s23", &err, 2, 3);
	INTS(g, "sl_s", &err, -1);
	INTS(g, "sl_e", &err, IMIN);
	INTS(g, "sl_p", &err, -2);
	INTS(g, "sizes", &err, 3, 4);
	INTS(g, "s223", &err, 2, 2, 3);
	INTS(g, "rep", &err, 1, 2);
	node(g, "Unsqueeze", "un", "ids,ax1", "u", 0, NULL, &err);
	node(g, "Transpose", "tr", "u", "tr", 1, &perm, &err);
	node(g, "Squeeze", "sq", "tr,ax2", "sq", 0, NULL, &err);
	node(g, "Reshape", "rs", "sq,s23", "rs", 0, NULL, &err);
	node(g, "Concat", "cat", "rs,ids,K", "cat", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	node(g, "Slice", "sl", "cat,sl_s,sl_e,ax1,sl_p", "sl", 0, NULL, &err);
	node(g, "Split", "sp", "cat,sizes", "p3,p4", 1, (struct pc_attr[]){a_int("axis", 1)}, &err);
	node(g, "Expand", "ex", "p3,s223", "ex", 0, NULL, &err);
	node(g, "Tile", "ti", "sl,rep", "ti", 0, NULL, &err);
	node(g, "ScatterND", "sc", "ti,scind,scupd", "sc", 0, NULL, &err);
	node(g, "Gather", "emb", "W,sc", "y", 0, NULL, &err);
	/* keep p4 and ex alive: unused values are not computed */
	node(g, "Concat", "keep", "p4,p4", "keep4", 1, (struct pc_attr[]){a_int("axis", 0)}, &err);
	node(g, "Concat", "keepx", "ex,ex", "keepx", 1, (struct pc_attr[]){a_int("axis", 0)}, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = run_ids(t, __LINE__, g, 2, 0, ids);
	if (p) {
		check_ints(t, __LINE__, p, "rs", 0, SH(2, 3), mv_rs);
		check_ints(t, __LINE__, p, "cat", 0, SH(2, 7), mv_cat);
		check_ints(t, __LINE__, p, "sl", 0, SH(2, 4), mv_sl);
		check_ints(t, __LINE__, p, "p4", 0, SH(2, 4), mv_p4);
		check_ints(t, __LINE__, p, "ex", 0, SH(2, 2, 3), mv_ex);
		check_ints(t, __LINE__, p, "sc", 0, SH(2, 8), mv_sc);
		for (int i = 0; i < 16; i++) {
			CHECK_CLOSE(pc_plan_output(p)[2 * i], (double)mv_sc[i], 0, 0);
			CHECK_CLOSE(pc_plan_output(p)[2 * i + 1], -(double)mv_sc[i], 0, 0);
		}
		CHECK_INT(pc_plan_input_id_limit(p, NULL), -1); /* the ids reach the Gather through real ops */
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

/* Bool values (masks) move like int64 and keep their type; all-static
 * inputs, so the plan computes them at load. */
TEST(ops_index_bool_moves)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_input(13, SH(-1, 2), &err);
	struct pc_shape s23 = SH(2, 3);
	const int64_t mask[6] = {1, 0, 0, 1, 1, 0};
	struct pc_plan_value value;
	const struct pc_plan_value *v;
	struct pc_plan *p;

	pc_graph_add_initializer(g, "M", &s23, PC_DTYPE_BOOL, mask, &err);
	INTS(g, "z", &err, 0);
	INTS(g, "e2", &err, 2);
	INTS(g, "ax1", &err, 1);
	INTS(g, "i", &err, 1, 0);
	INTS(g, "rep", &err, 2, 1);
	INTS(g, "s223", &err, 2, 2, 3);
	node(g, "Transpose", "tr", "M", "mt", 0, NULL, &err);			   /* [3,2] */
	node(g, "Slice", "sl", "M,z,e2,ax1", "ms", 0, NULL, &err);		   /* [2,2] */
	node(g, "Gather", "ga", "M,i", "mg", 0, NULL, &err);			   /* rows swapped */
	node(g, "Concat", "cat", "M,mg", "mc", 1, (struct pc_attr[]){a_int("axis", 0)}, &err); /* [4,3] */
	node(g, "Tile", "ti", "M,rep", "mti", 0, NULL, &err);			   /* [4,3] */
	node(g, "Expand", "ex", "M,s223", "mex", 0, NULL, &err);		   /* [2,2,3] */
	node(g, "Split", "sp", "M", "m0,m1", 0, NULL, &err);
	node(g, "Concat", "cat2", "m1,m0", "msw", 1, (struct pc_attr[]){a_int("axis", 0)}, &err);
	node(g, "Flatten", "flat", "x", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = RUN(g, 2, NULL);
	if (p) {
		static const struct {
			const char *name;
			int n;
			int64_t want[12];
		} cases[] = {
			{"mt", 6, {1, 1, 0, 1, 0, 0}},
			{"ms", 4, {1, 0, 1, 1}},
			{"mg", 6, {1, 1, 0, 1, 0, 0}},
			{"mc", 12, {1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0}},
			{"mti", 12, {1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0}},
			{"mex", 12, {1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0}},
			{"msw", 6, {1, 1, 0, 1, 0, 0}},
		};
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			v = pc_plan_value(p, cases[c].name, &value, NULL) == PC_OK ? &value : NULL;
			REQUIRE(v);
			CHECK_MSG(v->dtype == PC_DTYPE_BOOL && v->is_static && v->numel == cases[c].n,
				  "'%s': dtype %d, static %d, %lld elements", cases[c].name, v->dtype, v->is_static,
				  (long long)v->numel);
			for (int i = 0; i < cases[c].n && i < v->numel; i++)
				CHECK_MSG(v->ival[i] == cases[c].want[i], "'%s'[%d] = %lld", cases[c].name, i,
					  (long long)v->ival[i]);
		}
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

/* ScatterND at run-time indices: an index out of range writes nothing and
 * takes no gradient; rows 0-1 of the result are the output. */
TEST(ops_index_scatternd_runtime_indices)
{
	struct pc_error err = {0};
	struct pc_graph *g = graph_with_ids(SH(2, 1), &err);
	struct pc_shape s43 = SH(4, 3), s23 = SH(2, 3);
	const float d[12] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32};
	const float u[6] = {-1, -2, -3, -4, -5, -6};
	const int64_t ids[2] = {1, 9};
	struct pc_plan *p;

	pc_graph_add_float(g, "D", &s43, d, &err);
	pc_graph_add_float(g, "U", &s23, u, &err);
	INTS(g, "z", &err, 0);
	INTS(g, "two", &err, 2);
	node(g, "ScatterND", "sc", "D,ids,U", "s", 0, NULL, &err);
	node(g, "Slice", "sl", "s,z,two", "y", 0, NULL, &err);
	if (!FINISH(g, "y", &err))
		goto out;
	p = run_ids(t, __LINE__, g, 2, PC_PLAN_GRAD, ids);
	if (p) {
		const float want_y[6] = {0, 1, 2, -1, -2, -3};
		/* dD: row 0 read, row 1 overwritten, rows 2-3 sliced off; dU: U[0] wrote row 1, U[1] nothing */
		const float want_gw[18] = {1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 5, 6, 0, 0, 0};
		float *og = pc_plan_output_grad(p);
		const float *gw;
		int gd = pc_graph_find_param(g, "D"), gu = pc_graph_find_param(g, "U");
		for (int i = 0; i < 6; i++) {
			CHECK_CLOSE(pc_plan_output(p)[i], want_y[i], 0, 0);
			og[i] = (float)(i + 1);
		}
		pc_plan_zero_weight_grad(p);
		pc_plan_backward(p);
		gw = pc_plan_weight_grad(p);
		REQUIRE(gd >= 0 && gu >= 0);
		for (int i = 0; i < 12; i++)
			CHECK_CLOSE(gw[pc_graph_param(g, gd)->offset + i], want_gw[i], 0, 0);
		for (int i = 0; i < 6; i++)
			CHECK_CLOSE(gw[pc_graph_param(g, gu)->offset + i], want_gw[12 + i], 0, 0);
		pc_plan_free(p);
	}
out:
	pc_graph_free(g);
}

/* --- models as torch.onnx.export writes them ---------------------------------------------------------- */

/* tests/reference/make_index_fixture.py: for each file, token ids, torch's
 * output for them and torch's embedding gradient of sum(y * R), with
 * R[k] = (k % 7) - 3. */
/* index_tokens_op13.onnx ops: Concat, Constant, Gather, Mul, Reshape, Shape, Slice, Split, Transpose, Unsqueeze */
/* tok_ids: shape [3, 6] */
static const int64_t tok_ids[18] = {1, 2, 3, 4, 5, 10, 0, 0, 7, 7, 9, 1, 10, 9, 8, 3, 3, 3};
/* tok_y: shape [3, 13, 4] */
static const float tok_y[156] = {0.551176012, 0.47270453, -2.08890629, -1.52929568, 0.0352586918, 0.0478375778, 0.846230507, -1.67019296, -1.0980922, 0.147537559, 1.50893438, -0.417541027, 0.27679345, -0.164607495, 0.331145138, -1.45803702, -0.147967204, -0.0712654069, -0.495849162, 0.082519412, -1.06155443, -0.464742035, -0.464742035, -1.06155443, 0.91315192, 0.204341114, 0.573984683, 0.416331291, 0.261501163, 0.931124449, -0.514461994, -1.65166545, 1.04602277, 0.522186995, -0.166809157, 0.0530334003, 0.957780421, -1.28901005, -1.64831591, 0.829036295, -0.305975705, 0.204341114, 0.931124449, 0.522186995, 0.248501748, 0.573984683, -0.514461994, -0.166809157, -0.222560838, 0.416331291, -1.65166545, 0.0530334003, 0.122378565, 0.583206296, 0.224267021, 0.0475544557, 0.0528442822, -0.190373003, 0.273062557, 0.0518032014, 0.0530657209, 0.0913692713, -0.713603854, -0.108427785, 0.0530657209, 0.0913692713, -0.713603854, -0.108427785, -0.00548219262, -0.281433403, -0.281433403, -0.00548219262, -0.00548219262, -0.281433403, -0.281433403, -0.00548219262, -1.51588452, 0.91251725, 0.253887087, -0.69236362, -1.51588452, 0.91251725, 0.253887087, -0.69236362, 0.724239349, -0.349177331, -0.528988004, -0.689474463, 0.664839387, -0.286780298, 1.62055075, -1.59670806, 0.35988152, 0.91251725, 0.91251725, -0.349177331, -0.782016814, 0.253887087, 0.253887087, -0.528988004, 0.0715277344, -0.69236362, -0.69236362, -0.689474463, 0.398753971, -0.739872038, -0.336818695, 0.75703609, 0.398753971, -0.739872038, -0.336818695, 0.75703609, 0.398753971, -0.739872038, -0.336818695, 0.75703609, -0.137617648, 0.48593843, -3.64676428, -0.377563, -0.660365164, 0.681870878, 0.57555455, 0.600420713, 0.794034719, 2.12469578, 2.12469578, 0.794034719, -0.455423951, 2.21241832, -0.376985759, -0.143683925, 0.91315192, 0.204341114, 0.573984683, 0.416331291, 0.91315192, 0.204341114, 0.573984683, 0.416331291, 0.91315192, 0.204341114, 0.573984683, 0.416331291, -0.349177331, 2.21241832, 0.204341114, 0.204341114, -0.528988004, -0.376985759, 0.573984683, 0.573984683, -0.689474463, -0.143683925, 0.416331291, 0.416331291};
/* tok_dw: shape [11, 4] */
static const float tok_dw[44] = {2.83231473, 0.150397003, 4.87304974, 3.94964337, -0.0543539524, -2.46735811, 6.73035526, -6.47655392, -3.19341612, 3.62055063, -1, 2.33516073, 4.85148859, -3.21333647, 6.29569912, -1.6703217, -4.5967083, -5, 0.286780298, -3.32967877, 5.79012394, 4.86165237, 4.42643929, -3.33516073, 0, 0, 0, 0, 2.85694456, -5.34605026, 0.35988152, 3.07664442, -3.48710895, -2.94494772, -2.5780201, 5.95778036, -2.17096376, 0.782016814, -4.43075275, 2.31437206, -0.764734864, -5.14147329, 7.00647449, 2.92229652};
/* index_scatter_op13.onnx ops: Add, Cast, Concat, Constant, ConstantOfShape, Equal, Expand, Gather, Mul, Range, Reshape, ScatterND, Shape, Slice, Tile, Unsqueeze, Where */
/* sct_ids: shape [3, 6] */
static const int64_t sct_ids[18] = {1, 2, 3, 4, 5, 10, 0, 0, 7, 7, 9, 1, 10, 9, 8, 3, 3, 3};
/* sct_y: shape [3, 6, 4] */
static const float sct_y[72] = {-1.73672581, -0.410110563, 0.795121551, -1.73672581, -0.0910443664, 0.00294069946, 0.301007748, -0.0910443664, -0.00563096255, -0.000669658184, -1.33794606, -0.00563096255, 1.42286587, -0.386178464, 0.635041654, 1.42286587, 1.91693425, -0.0221914649, 1.09117949, 1.91693425, -0.847077966, -1.06170595, 0.186303988, -0.847077966, -1.882833, 2.52649355, -0.36753878, -1.882833, -1.0426209, 0.912023306, 0.294423401, -1.0426209, 0.230756178, 1.61318278, -2.74698925, 0.230756178, 0.107152931, 1.88320184, 2.19277287, 0.107152931, -0.909788251, -0.0621556342, 0.487662911, -0.909788251, 0.129901111, -0.899274826, -7.06370449, 0.129901111, -1.61716771, 0.57813561, 0.0189402327, -1.61716771, -0.765157282, 0.302565902, -0.00726465508, -0.765157282, -0.0249030665, 2.84745121, 0.456846714, -0.0249030665, -0.00563096255, -0.000669658184, -1.33794606, -0.00563096255, -0.0102803819, 0.0601933338, -1.7838484, -0.0102803819, -0.0522936061, 0.173725948, -0.714727163, -0.0522936061};
/* sct_dw: shape [11, 4] */
static const float sct_dw[44] = {2.56999111, -2.98023224e-08, 13.4085407, 0, 4.55730867, 1.4258275, 9.32198811, 0, -7.104846, -4.02868176, 0.0285455585, 0, -4.6430645, 7.74910259, 2.15823603, 0, 0, 3, -3, 0, 1, 0, 1, 0, 0, 0, 0, 0, -3.10750222, 0.443935394, -7.40854073, 0, -2.83887911, -1.95330477, 6.06845474, 0, 6.89258623, -2, -8.53422737, 0, 2.92207003, -4.33759785, 5.62953568, 0};

/* The file at batch 3 against torch: output within out_tol (absolute), the
 * embedding gradient within 1e-5 (absolute and relative). */
static void check_torch_model(struct pc_test *t, int line, const char *file, const int64_t *ids, const float *want_y,
			      int64_t positions, const float *want_dw, double out_tol)
{
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_plan *p;
	char path[512], msg[700];
	int64_t ny = 3 * positions * 4;

	snprintf(path, sizeof(path), "%s/tests/reference/fixtures/%s", pc_test_root(), file);
	if (pc_onnx_load_file(path, &g, &err) != PC_OK) {
		pc_test_fail(t, __FILE__, line, "%s: %s", file, pc_error_format(&err, msg, sizeof(msg)));
		return;
	}
	CHECK_INT(pc_graph_input_dtype(g), PC_DTYPE_INT64);
	CHECK_INT(pc_graph_positions(g), positions);
	CHECK_INT(pc_graph_classes(g), 4);
	CHECK_INT(pc_graph_param_tensors(g), 1);
	p = run_ids(t, line, g, 3, PC_PLAN_GRAD, ids);
	if (p) {
		float *og = pc_plan_output_grad(p);
		const float *gw;
		int bad = 0;
		CHECK_INT(pc_plan_input_id_limit(p, NULL), 11);
		for (int64_t k = 0; k < ny; k++) {
			if (!(fabs((double)pc_plan_output(p)[k] - want_y[k]) <= out_tol) && bad++ < 5)
				pc_test_fail(t, __FILE__, line, "%s: y[%lld] = %.9g, torch %.9g", file, (long long)k,
					     (double)pc_plan_output(p)[k], (double)want_y[k]);
			og[k] = (float)(k % 7 - 3);
		}
		pc_plan_zero_weight_grad(p);
		pc_plan_backward(p);
		gw = pc_plan_weight_grad(p);
		for (int i = 0; i < 44; i++)
			if (!(fabs((double)gw[i] - want_dw[i]) <= 1e-5 + 1e-5 * fabs(want_dw[i])) && bad++ < 10)
				pc_test_fail(t, __FILE__, line, "%s: dW[%d] = %.9g, torch %.9g", file, i, (double)gw[i],
					     (double)want_dw[i]);
		pc_plan_free(p);
	}
	pc_graph_free(g);
}

/* Data movement and one multiply: torch's float32 values, bit for bit. */
TEST(ops_index_torch_token_model)
{
	check_torch_model(t, __LINE__, "index_tokens_op13.onnx", tok_ids, tok_y, 13, tok_dw, 0);
}

/* Tile, Expand and ScatterND with the index subgraphs torch writes for
 * repeat, expand(-1, ...) and index_put; an add and a multiply per element. */
TEST(ops_index_torch_scatter_model)
{
	check_torch_model(t, __LINE__, "index_scatter_op13.onnx", sct_ids, sct_y, 6, sct_dw, 0);
}
