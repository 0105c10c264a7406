/* The plan's dtype contract: constant folding of nodes whose inputs are all
 * known at load, bool constants, sequence outputs [N, T, V], the budget on
 * constants computed at load, and long alias chains. */
#include "test.h"

#include "paracorr/graph.h"
#include "paracorr/plan.h"

#include <stdlib.h>
#include <string.h>

static struct pc_shape sh2(int64_t a, int64_t b)
{
	struct pc_shape s = {.ndim = 2, .dim = {a, b}};
	return s;
}

static struct pc_attr tensor_attr(enum pc_dtype dtype, struct pc_shape shape, const void *data)
{
	struct pc_attr a = {.name = "value", .type = PC_ATTR_TENSOR, .tdtype = dtype, .tshape = shape, .tdata = data};
	return a;
}

static int node(struct pc_graph *g, const char *op, const char *name, int n_in, const char *const *in,
		const char *out, int n_attr, const struct pc_attr *attr, struct pc_error *err)
{
	return pc_graph_add_node(g, op, name, n_in, in, 1, &out, n_attr, attr, err);
}

/* y = Gemm(x, Transpose(C)) with C a Constant node: the Transpose has only
 * a constant input, so the plan computes it at load; nothing is a
 * parameter, and the result is exact. */
TEST(plan_folds_a_constant_subgraph)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	static const float c[6] = {1, 2, 3, 4, 5, 6}; /* [2,3]: W^T of a [3,2] weight */
	struct pc_shape xs = sh2(-1, 3);
	struct pc_attr cv = tensor_attr(PC_DTYPE_FLOAT, sh2(2, 3), c);
	const char *tin[] = {"C"}, *gin[] = {"x", "Ct"};
	struct pc_attr tb = {.name = "transB", .type = PC_ATTR_INT, .i = 0};
	struct pc_plan *p;
	char msg[512];

	REQUIRE(g);
	REQUIRE(!pc_graph_add_input(g, "x", &xs, &err));
	REQUIRE(!node(g, "Constant", "c", 0, NULL, "C", 1, &cv, &err));
	REQUIRE(!node(g, "Transpose", "t", 1, tin, "Ct", 0, NULL, &err));
	REQUIRE(!node(g, "Gemm", "gemm", 2, gin, "y", 1, &tb, &err));
	REQUIRE(!pc_graph_add_output(g, "y", &err));
	REQUIRE_MSG(!pc_graph_finish(g, &err), "%s", pc_error_format(&err, msg, sizeof(msg)));
	CHECK_INT(pc_graph_param_count(g), 0);
	p = pc_plan_new(g, 2, 0, &err);
	REQUIRE_MSG(p, "%s", pc_error_format(&err, msg, sizeof(msg)));
	{
		const float x[6] = {1, 0, -1, 0.5f, 2, 3};
		/* Ct = [[1,4],[2,5],[3,6]]; y = x Ct */
		const float want[4] = {1 - 3, 4 - 6, 0.5f + 4 + 9, 2 + 10 + 18};
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		for (int i = 0; i < 4; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], want[i], 0, 0);
	}
	CHECK(pc_plan_input_int64(p) == NULL);
	CHECK_INT(pc_plan_input_dtype(p), PC_DTYPE_FLOAT);
	pc_plan_free(p);
	pc_graph_free(g);
}

/* A bool Constant (Dropout's training_mode, a mask) loads as BOOL. */
TEST(plan_bool_constant_loads)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	static const int64_t flag[1] = {0};
	struct pc_shape xs = sh2(-1, 3), one = {.ndim = 0};
	struct pc_attr bv = tensor_attr(PC_DTYPE_BOOL, one, flag);
	const char *din[] = {"x", "", "mode"};
	char msg[512];

	REQUIRE(g);
	REQUIRE(!pc_graph_add_input(g, "x", &xs, &err));
	REQUIRE(!node(g, "Constant", "c", 0, NULL, "mode", 1, &bv, &err));
	REQUIRE(!node(g, "Dropout", "drop", 3, din, "y", 0, NULL, &err));
	REQUIRE(!pc_graph_add_output(g, "y", &err));
	CHECK_MSG(!pc_graph_finish(g, &err), "%s", pc_error_format(&err, msg, sizeof(msg)));
	pc_graph_free(g);
}

/* x[N,2,4] + b[4]: an [N, T, V] output is a sequence model's. */
TEST(plan_sequence_output_shape)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	struct pc_shape xs = {.ndim = 3, .dim = {-1, 2, 4}}, bs = {.ndim = 1, .dim = {4}};
	static const float b[4] = {0.5f, -1, 2, 0};
	const char *in[] = {"x", "b"};
	struct pc_plan *p;
	char msg[512];

	REQUIRE(g);
	REQUIRE(!pc_graph_add_input(g, "x", &xs, &err));
	REQUIRE(!pc_graph_add_float(g, "b", &bs, b, &err));
	REQUIRE(!node(g, "Add", "add", 2, in, "y", 0, NULL, &err));
	REQUIRE(!pc_graph_add_output(g, "y", &err));
	REQUIRE_MSG(!pc_graph_finish(g, &err), "%s", pc_error_format(&err, msg, sizeof(msg)));
	CHECK_INT(pc_graph_classes(g), 4);
	CHECK_INT(pc_graph_positions(g), 2);
	p = pc_plan_new(g, 3, PC_PLAN_GRAD, &err);
	REQUIRE_MSG(p, "%s", pc_error_format(&err, msg, sizeof(msg)));
	CHECK_INT(pc_plan_classes(p), 4);
	CHECK_INT(pc_plan_positions(p), 2);
	for (int i = 0; i < 24; i++)
		pc_plan_input(p)[i] = (float)i;
	pc_plan_forward(p);
	for (int i = 0; i < 24; i++)
		CHECK_CLOSE(pc_plan_output(p)[i], (float)i + b[i % 4], 0, 0);
	pc_plan_free(p);
	pc_graph_free(g);
}

/* An int64 token input is typed and never a parameter. */
TEST(plan_int64_input_is_typed)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	struct pc_shape xs = sh2(-1, 5);

	REQUIRE(g);
	CHECK(pc_graph_add_input_typed(g, "tokens", &xs, PC_DTYPE_BOOL, &err) == PC_ERR_UNSUPPORTED);
	CHECK(strstr(err.text, "bool") != NULL);
	pc_graph_free(g);
}

/* Concatenating a 16 MiB int64 constant into ever longer constants: each
 * is under the per-tensor cap, and together they pass the plan's budget on
 * constants computed at load, which names the node that crossed it. */
TEST(plan_constant_budget_names_the_node)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	struct pc_shape xs = sh2(-1, 4), cs = {.ndim = 1, .dim = {1 << 21}}, one = {.ndim = 1, .dim = {1}};
	int64_t *c = calloc((size_t)1 << 21, sizeof(int64_t));
	static const int64_t m1[1] = {-1}, four[1] = {4};
	char prev[16] = "C", cur[16], name[16];
	char msg[512];

	REQUIRE(g && c);
	REQUIRE(!pc_graph_add_input(g, "x", &xs, &err));
	REQUIRE(!pc_graph_add_int64(g, "C", &cs, c, &err));
	REQUIRE(!pc_graph_add_int64(g, "m1", &one, m1, &err));
	REQUIRE(!pc_graph_add_int64(g, "four", &one, four, &err));
	free(c);
	for (int k = 0; k < 8; k++) {
		const char *in[] = {prev, "C"};
		snprintf(cur, sizeof(cur), "X%d", k);
		snprintf(name, sizeof(name), "cat%d", k);
		struct pc_attr ax = {.name = "axis", .type = PC_ATTR_INT, .i = 0};
		REQUIRE(!node(g, "Concat", name, 2, in, cur, 1, &ax, &err));
		strcpy(prev, cur);
	}
	{
		/* shape [-1, 4] = Concat(Shape(X7) - Shape(X7) + (-1), 4) */
		const char *s_in[] = {prev}, *sub_in[] = {"S", "S"}, *add_in[] = {"Z", "m1"}, *cat_in[] = {"M", "four"};
		const char *r_in[] = {"x", "target"};
		struct pc_attr ax = {.name = "axis", .type = PC_ATTR_INT, .i = 0};
		REQUIRE(!node(g, "Shape", "shape", 1, s_in, "S", 0, NULL, &err));
		REQUIRE(!node(g, "Sub", "sub", 2, sub_in, "Z", 0, NULL, &err));
		REQUIRE(!node(g, "Add", "add", 2, add_in, "M", 0, NULL, &err));
		REQUIRE(!node(g, "Concat", "target_cat", 2, cat_in, "target", 1, &ax, &err));
		REQUIRE(!node(g, "Reshape", "reshape", 2, r_in, "y", 0, NULL, &err));
	}
	REQUIRE(!pc_graph_add_output(g, "y", &err));
	CHECK(pc_graph_finish(g, &err) == PC_ERR_LIMIT);
	pc_error_format(&err, msg, sizeof(msg));
	CHECK_MSG(strstr(msg, "in all") && strstr(msg, "cat"), "%s", msg);
	pc_graph_free(g);
}

/* 50,000 Identity nodes in a chain: every alias resolves to the input's
 * storage (one pass, not a walk per value) and the output is the input. */
TEST(plan_long_alias_chain)
{
	enum { CHAIN = 50000 };
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	struct pc_shape xs = sh2(-1, 3);
	char a[16] = "x", b[16], name[16];
	struct pc_plan *p;
	char msg[512];

	REQUIRE(g);
	REQUIRE(!pc_graph_add_input(g, "x", &xs, &err));
	for (int k = 0; k < CHAIN; k++) {
		const char *in[] = {a};
		snprintf(b, sizeof(b), "v%d", k);
		snprintf(name, sizeof(name), "id%d", k);
		REQUIRE(!node(g, k == CHAIN - 1 ? "Relu" : "Identity", name, 1, in, b, 0, NULL, &err));
		strcpy(a, b);
	}
	REQUIRE(!pc_graph_add_output(g, a, &err));
	REQUIRE_MSG(!pc_graph_finish(g, &err), "%s", pc_error_format(&err, msg, sizeof(msg)));
	p = pc_plan_new(g, 2, PC_PLAN_GRAD, &err);
	REQUIRE_MSG(p, "%s", pc_error_format(&err, msg, sizeof(msg)));
	for (int i = 0; i < 6; i++)
		pc_plan_input(p)[i] = (float)i - 2.5f;
	pc_plan_forward(p);
	for (int i = 0; i < 6; i++)
		CHECK_CLOSE(pc_plan_output(p)[i], i < 3 ? 0.0f : (float)i - 2.5f, 0, 0);
	pc_plan_free(p);
	pc_graph_free(g);
}
