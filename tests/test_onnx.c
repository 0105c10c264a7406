/* ONNX loading: a valid model runs; each kind of malformed file fails with
 * an error that names the problem, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "onnx_build.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

static int load(struct ob_model *b, struct pc_graph **g, struct pc_error *err)
{
	size_t len;
	unsigned char *buf = ob_pack(b, &len);
	int rc = pc_onnx_load_buffer(buf, len, g, err);

	free(buf);
	return rc;
}

/* Load must fail with `code` and a message containing `needle`. */
static void expect_error(struct pc_test *t, struct ob_model *b, enum pc_status code, const char *needle)
{
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	char msg[800];
	int rc = load(b, &g, &err);

	pc_error_format(&err, msg, sizeof(msg));
	CHECK_MSG(rc == (int)code, "expected %s, got %s: %s", pc_status_name(code), pc_status_name(rc), msg);
	CHECK_MSG(strstr(msg, needle) != NULL, "message '%s' lacks '%s'", msg, needle);
	/* the problem object is built from err.code: it must be the code returned */
	CHECK_MSG(err.code == code, "error recorded as %s, returned as %s", pc_status_name(err.code),
		  pc_status_name(code));
	CHECK(g == NULL);
	pc_graph_free(g);
}

TEST(onnx_valid_mlp_runs)
{
	struct ob_model b;
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	struct pc_plan *p;
	const float x[8] = {1, 2, 3, 4, -1, 0.5f, 0, 2};
	char msg[800];

	ob_mlp(&b);
	REQUIRE(load(&b, &g, &err) == PC_OK || (pc_test_fail(t, __FILE__, __LINE__, "%s",
							     pc_error_format(&err, msg, sizeof(msg))),
						0));
	CHECK_INT(pc_graph_opset(g), 13);
	CHECK_INT(pc_graph_param_count(g), 15);
	REQUIRE(pc_graph_param_tensors(g) == 2);
	CHECK(strcmp(pc_graph_param(g, 0)->name, "W") == 0);
	CHECK(strcmp(pc_graph_param(g, 0)->node, "gemm0") == 0);
	CHECK_INT(pc_graph_param(g, 1)->offset, 12);
	CHECK_INT(pc_graph_classes(g), 3);
	p = pc_plan_new(g, 2, 0, &err);
	REQUIRE(p);
	memcpy(pc_plan_input(p), x, sizeof(x));
	pc_plan_forward(p);
	/* y = relu(x W^T + b), by hand */
	{
		const float w[12] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f, 0.9f, 1.0f, -1.1f, 1.2f};
		const float bias[3] = {0.01f, -0.02f, 0.03f};
		for (int n = 0; n < 2; n++)
			for (int j = 0; j < 3; j++) {
				double acc = bias[j];
				for (int k = 0; k < 4; k++)
					acc += (double)x[n * 4 + k] * w[j * 4 + k];
				CHECK_CLOSE(pc_plan_output(p)[n * 3 + j], acc > 0 ? acc : 0, 1e-6, 1e-6);
			}
	}
	pc_plan_free(p);
	pc_graph_free(g);
}

TEST(onnx_every_truncation_fails_cleanly)
{
	struct ob_model b;
	size_t len;
	unsigned char *buf;
	int failures = 0;

	ob_mlp(&b);
	buf = ob_pack(&b, &len);
	REQUIRE(buf);
	for (size_t cut = 0; cut < len; cut++) {
		struct pc_graph *g = NULL;
		struct pc_error err = {0};
		/* a private copy so ASan sees reads past the cut */
		unsigned char *part = malloc(cut ? cut : 1);
		memcpy(part, buf, cut);
		if (pc_onnx_load_buffer(part, cut, &g, &err) != PC_OK)
			failures++;
		else
			pc_test_fail(t, __FILE__, __LINE__, "a file cut at %zu of %zu bytes loaded", cut, len);
		CHECK(err.text[0] || cut == 0 || err.code != PC_OK);
		pc_graph_free(g);
		free(part);
	}
	CHECK_INT(failures, len);
	free(buf);
}

TEST(onnx_garbage_fails)
{
	unsigned char junk[512];
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	uint32_t s = 12345;

	for (size_t i = 0; i < sizeof(junk); i++) {
		s = s * 1103515245u + 12345u;
		junk[i] = (unsigned char)(s >> 16);
	}
	CHECK(pc_onnx_load_buffer(junk, sizeof(junk), &g, &err) != PC_OK);
	CHECK(g == NULL);
	CHECK(pc_onnx_load_buffer(junk, 0, &g, &err) != PC_OK);
}

TEST(onnx_raw_data_too_short)
{
	struct ob_model b;

	ob_mlp(&b);
	b.inits[0].raw_data.len = 44;
	expect_error(t, &b, PC_ERR_FORMAT, "raw_data has 44 bytes; dims [3,4] of float need 48");
}

TEST(onnx_float_data_count_checked)
{
	struct ob_model b;
	float vals[11] = {0};

	ob_mlp(&b);
	b.inits[0].has_raw_data = 0;
	b.inits[0].n_float_data = 11;
	b.inits[0].float_data = vals;
	expect_error(t, &b, PC_ERR_FORMAT, "float_data has 11 values; dims [3,4] need 12");
}

TEST(onnx_typed_float_data_accepted)
{
	struct ob_model b;
	float vals[12] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f, 0.9f, 1.0f, -1.1f, 1.2f};
	struct pc_graph *g = NULL;
	struct pc_error err = {0};

	ob_mlp(&b);
	b.inits[0].has_raw_data = 0;
	b.inits[0].n_float_data = 12;
	b.inits[0].float_data = vals;
	REQUIRE(load(&b, &g, &err) == PC_OK);
	CHECK(pc_graph_params(g)[11] == 1.2f);
	pc_graph_free(g);
}

TEST(onnx_negative_dim)
{
	struct ob_model b;

	ob_mlp(&b);
	b.init_dims[0][0] = -3;
	expect_error(t, &b, PC_ERR_FORMAT, "negative");
}

TEST(onnx_overflowing_dims)
{
	struct ob_model b;

	ob_mlp(&b);
	b.init_dims[0][0] = (int64_t)1 << 40;
	b.init_dims[0][1] = (int64_t)1 << 40;
	expect_error(t, &b, PC_ERR_FORMAT, "more than 2^40 elements");
	ob_mlp(&b);
	b.init_dims[0][0] = INT64_MAX;
	expect_error(t, &b, PC_ERR_FORMAT, "more than 2^40 elements");
	/* empty, but the strides over its other dimension would overflow
	 * (found by fuzz_onnx) */
	ob_mlp(&b);
	b.init_dims[0][0] = 0;
	b.init_dims[0][1] = INT64_MAX / 2 + 1;
	expect_error(t, &b, PC_ERR_FORMAT, "other dimensions span more than 2^40 elements");
}

TEST(onnx_wrong_dims_fail_shape_inference)
{
	struct ob_model b;
	static const float w15[15] = {0};

	ob_mlp(&b);
	b.init_dims[0][1] = 5;
	b.inits[0].raw_data.data = (uint8_t *)w15;
	b.inits[0].raw_data.len = sizeof(w15);
	expect_error(t, &b, PC_ERR_SHAPE, "gemm0");
}

TEST(onnx_unknown_ops_all_named)
{
	struct ob_model b;
	static const char *const in[] = {"y", NULL}, *const out1[] = {"z", NULL}, *const in2[] = {"z", NULL},
				 *const out2[] = {"w", NULL}, *const out3[] = {"v", NULL};

	ob_mlp(&b);
	ob_node(&b, "FancyOp", "f1", in, out1);
	ob_node(&b, "OtherOp", "f2", in2, out2);
	ob_node(&b, "FancyOp", "f3", in2, out3);
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "unsupported ops: FancyOp (opset 13), OtherOp (opset 13)");
}

TEST(onnx_missing_input)
{
	struct ob_model b;

	ob_mlp(&b);
	b.node_in[0][1] = "W_missing";
	expect_error(t, &b, PC_ERR_FORMAT, "input 1 'W_missing' names no value");
}

TEST(onnx_missing_output_value)
{
	struct ob_model b;

	ob_mlp(&b);
	b.vi[1].name = "nowhere";
	expect_error(t, &b, PC_ERR_FORMAT, "output 'nowhere' names no value");
}

TEST(onnx_external_data_refused)
{
	struct ob_model b;

	ob_mlp(&b);
	b.inits[0].has_data_location = 1;
	b.inits[0].data_location = 1;
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "external");
}

TEST(onnx_subgraph_refused)
{
	struct ob_model b;
	Onnx__AttributeProto *a;
	Onnx__GraphProto sub;

	ob_mlp(&b);
	onnx__graph_proto__init(&sub);
	a = ob_attr_int(&b.nodes[1], &b, "then_branch", 0);
	a->type = 5;
	a->has_i = 0;
	a->g = &sub;
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "subgraph");
}

TEST(onnx_foreign_domain_refused)
{
	struct ob_model b;

	ob_mlp(&b);
	b.nodes[1].domain = "com.microsoft";
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "domain 'com.microsoft'");
}

TEST(onnx_opset_range)
{
	struct ob_model b;

	ob_mlp(&b);
	b.opset.version = 10;
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "opset 10 is not supported (supported: 11 to 17)");
	ob_mlp(&b);
	b.opset.version = 18;
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "opset 18");
	ob_mlp(&b);
	b.opset.domain = "ai.onnx.ml";
	expect_error(t, &b, PC_ERR_FORMAT, "no opset for the default ONNX domain");
}

TEST(onnx_cycle_detected)
{
	struct ob_model b;
	static const char *const a_in[] = {"y", "q", NULL}, *const a_out[] = {"p", NULL};
	static const char *const c_in[] = {"p", NULL}, *const c_out[] = {"q", NULL};

	ob_mlp(&b);
	ob_node(&b, "Add", "a", a_in, a_out);
	ob_node(&b, "Relu", "c", c_in, c_out);
	expect_error(t, &b, PC_ERR_FORMAT, "cycle");
}

TEST(onnx_duplicate_value)
{
	struct ob_model b;

	ob_mlp(&b);
	b.node_out[1][0] = "h";
	expect_error(t, &b, PC_ERR_FORMAT, "value 'h' is defined twice");
}

TEST(onnx_unknown_attribute)
{
	struct ob_model b;

	ob_mlp(&b);
	ob_attr_int(&b.nodes[1], &b, "frobnicate", 1);
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "attribute 'frobnicate' is not supported");
}

TEST(onnx_unsupported_dtype)
{
	struct ob_model b;

	ob_mlp(&b);
	b.inits[1].data_type = 10; /* float16 */
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "float16");
}

TEST(onnx_nodes_out_of_order_are_sorted)
{
	struct ob_model b;
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	Onnx__NodeProto *tmp;

	ob_mlp(&b);
	tmp = b.node_ptrs[0];
	b.node_ptrs[0] = b.node_ptrs[1];
	b.node_ptrs[1] = tmp;
	REQUIRE(load(&b, &g, &err) == PC_OK);
	CHECK(strcmp(pc_graph_node_op(g, 0), "Gemm") == 0);
	CHECK(strcmp(pc_graph_node_op(g, 1), "Relu") == 0);
	pc_graph_free(g);
}

TEST(onnx_input_without_shape)
{
	struct ob_model b;

	ob_mlp(&b);
	b.ttypes[0].shape = NULL;
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "graph input has no shape");
}

TEST(onnx_second_data_input_refused)
{
	struct ob_model b;

	ob_mlp(&b);
	/* the output's value info doubles as a second, differently named input */
	b.in_ptrs[1] = &b.vi[1];
	b.graph.n_input = 2;
	b.vi[1].name = "x2";
	b.out_ptrs[0] = &b.vi[0]; /* keep an output list that names something */
	expect_error(t, &b, PC_ERR_UNSUPPORTED, "more than one data input");
}
