/* Exporter quirks in the loader, and what counts as a parameter.
 *
 *   PyTorch exports (tests/reference/make_quirk_fixtures.py): running
 *   statistics that arrive as Identity(weight), weights that arrive as
 *   Identity(running statistics), a fresh model whose equal weights were
 *   merged by the exporter, a train-mode export. Each is checked against
 *   PyTorch: the parameter names and count, the logits, and the logits
 *   after one weight is shifted in PyTorch (where statistics are tensors of
 *   their own), and for the copies a save and reload.
 *   Built graphs: a weight read by three nodes (one directly, one through
 *   Transpose, one through Identity) is one parameter whose gradient is the
 *   sum of the three uses' gradients, checked against the same graph with
 *   three separate weights and by finite differences; an attention mask
 *   with -inf (and other non-finite initializers) is a constant; two
 *   attributes of one name and names that are not UTF-8 are refused with
 *   the node, attribute or byte offset; 50,000-node chains load and run;
 *   100,000 unknown ops are reported by the first names and a count. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "onnx_build.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

#define FIXTURES "tests/reference/fixtures"

static int load_ob(struct ob_model *b, struct pc_graph **g, struct pc_error *err)
{
	size_t len;
	unsigned char *buf = ob_pack(b, &len);
	int rc = pc_onnx_load_buffer(buf, len, g, err);

	free(buf);
	return rc;
}

/* The buffer must fail to load with `code` and a message containing each
 * of the NULL-terminated needles. */
static void expect_refused(struct pc_test *t, int line, const unsigned char *buf, size_t len, enum pc_status code,
			   const char *const *needles)
{
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	char msg[800];
	int rc = pc_onnx_load_buffer(buf, len, &g, &err);

	pc_error_format(&err, msg, sizeof(msg));
	if (rc != (int)code)
		pc_test_fail(t, __FILE__, line, "expected %s, got %s: %s", pc_status_name(code), pc_status_name(rc), msg);
	for (int i = 0; needles[i]; i++)
		if (!strstr(msg, needles[i]))
			pc_test_fail(t, __FILE__, line, "message '%s' lacks '%s'", msg, needles[i]);
	if (g)
		pc_test_fail(t, __FILE__, line, "a graph was returned");
	pc_graph_free(g);
}

#define EXPECT_REFUSED(buf, len, code, ...) expect_refused(t, __LINE__, buf, len, code, (const char *const[]){__VA_ARGS__, NULL})

/* --- refused at load --------------------------------------------------------- */

TEST(quirks_duplicate_attribute_refused)
{
	struct ob_model b;
	size_t len;
	unsigned char *buf;

	ob_mlp(&b);
	ob_attr_int(&b.nodes[0], &b, "transB", 0);
	buf = ob_pack(&b, &len);
	REQUIRE(buf);
	EXPECT_REFUSED(buf, len, PC_ERR_FORMAT, "node 'gemm0' (Gemm)", "attribute 'transB' appears more than once");
	free(buf);
}

static const unsigned char *find_bytes(const unsigned char *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

/* ob_mlp with `placeholder` (a name in it) overwritten in the packed file by
 * the same number of bytes `bad`: must be refused naming `field` and the
 * offset of the first bad byte (bad[first]). */
static void check_bad_name(struct pc_test *t, void (*edit)(struct ob_model *), const char *placeholder,
			   const char *bad, size_t first, const char *field)
{
	struct ob_model b;
	size_t len;
	unsigned char *buf, *at;
	char offset[160];

	ob_mlp(&b);
	edit(&b);
	buf = ob_pack(&b, &len);
	REQUIRE(buf);
	at = (unsigned char *)find_bytes(buf, len, placeholder);
	REQUIRE_MSG(at, "%s not in the packed file", placeholder);
	memcpy(at, bad, strlen(placeholder));
	if (bad[first])
		snprintf(offset, sizeof(offset), "byte 0x%02x at byte offset %zu", (unsigned char)bad[first],
			 (size_t)(at - buf) + first);
	else
		snprintf(offset, sizeof(offset), "holds a NUL byte at byte offset %zu", (size_t)(at - buf) + first);
	expect_refused(t, __LINE__, buf, len, PC_ERR_FORMAT, (const char *const[]){field, offset, NULL});
	free(buf);
}

static void edit_node_name(struct ob_model *b)
{
	b->nodes[1].name = "relu@@@";
}
/* Only the name changes: the wire check refuses the file before anything
 * would notice that the node still reads the old one. */
static void edit_init_name(struct ob_model *b)
{
	b->inits[1].name = "bias@@@";
}
static void edit_input_name(struct ob_model *b)
{
	b->vi[0].name = "xin@@@";
}
static void edit_output_name(struct ob_model *b)
{
	b->vi[1].name = "yout@@@";
}
static void edit_op_type(struct ob_model *b)
{
	b->nodes[1].op_type = "Relu@@@";
}

TEST(quirks_names_that_are_not_utf8_refused)
{
	/* nodes come before initializers in the packed GraphProto (field 1 < 5) */
	check_bad_name(t, edit_node_name, "relu@@@", "relu\xff@@", 4, "graph.node[1].name is not valid UTF-8");
	check_bad_name(t, edit_op_type, "Relu@@@", "Relu\xc3(@", 4, "graph.node[1].op_type is not valid UTF-8");
	check_bad_name(t, edit_input_name, "xin@@@", "xin\xc0\xaf@", 3, "graph.input[0].name is not valid UTF-8");
	check_bad_name(t, edit_output_name, "yout@@@", "yout\xed\xa0\x80", 4,
		       "graph.output[0].name is not valid UTF-8");
	check_bad_name(t, edit_node_name, "relu@@@", "relu\xf4\x90\x80", 4, "graph.node[1].name is not valid UTF-8");
	check_bad_name(t, edit_node_name, "relu@@@", "relu\xe2\x82", 4, "graph.node[1].name is not valid UTF-8");
	check_bad_name(t, edit_node_name, "relu@@@", "rel\0u@@", 3, "graph.node[1].name");
	/* valid multi-byte names load */
	{
		struct ob_model b;
		struct pc_graph *g = NULL;
		struct pc_error err = {0};
		ob_mlp(&b);
		b.nodes[1].name = "r\xc3\xa9lu \xe2\x9c\x93 \xf0\x9f\x98\x80";
		CHECK(load_ob(&b, &g, &err) == PC_OK);
		CHECK(g && strcmp(pc_graph_node_name(g, 1), "r\xc3\xa9lu \xe2\x9c\x93 \xf0\x9f\x98\x80") == 0);
		pc_graph_free(g);
	}
	check_bad_name(t, edit_init_name, "bias@@@", "bias\x80@@", 4, "graph.initializer[1].name is not valid UTF-8");
}

/* The builder checks names too (without the file offset). */
TEST(quirks_builder_refuses_names_that_are_not_utf8)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(13, &err);
	struct pc_shape s = {.ndim = 1, .dim = {2}};
	const float v[2] = {1, 2};

	REQUIRE(g);
	CHECK(pc_graph_add_float(g, "w\xfe", &s, v, &err) == PC_ERR_FORMAT);
	CHECK(strstr(err.text, "a value's name is not valid UTF-8 (byte 1 is 0xfe)") != NULL);
	pc_error_clear(&err);
	CHECK(pc_graph_add_node(g, "Relu", "r\xff", 1, (const char *const[]){"x"}, 1, (const char *const[]){"y"}, 0,
				NULL, &err) == PC_ERR_FORMAT);
	CHECK(strstr(err.text, "the node's name is not valid UTF-8") != NULL);
	CHECK(strcmp(err.where, "node #0") == 0);
	pc_graph_free(g);
}

/* --- size: linear-time building -------------------------------------------- */

/* x[N,4] -> op -> op ... (n nodes) -> y */
static struct pc_graph *chain(int n, const char *op, const char *op_prefix, struct pc_error *err)
{
	struct pc_graph *g = pc_graph_new(13, err);
	struct pc_shape in = {.ndim = 2, .dim = {-1, 4}};
	char a[32], c[32], opn[32], name[32];

	if (!g || pc_graph_add_input(g, "x", &in, err))
		goto fail;
	for (int k = 0; k < n; k++) {
		const char *ins[1] = {a}, *outs[1] = {c};
		snprintf(a, sizeof(a), k ? "v%d" : "x", k);
		snprintf(c, sizeof(c), k + 1 < n ? "v%d" : "y", k + 1);
		snprintf(name, sizeof(name), "n%d", k);
		if (op_prefix)
			snprintf(opn, sizeof(opn), "%s%d", op_prefix, k);
		if (pc_graph_add_node(g, op_prefix ? opn : op, name, 1, ins, 1, outs, 0, NULL, err))
			goto fail;
	}
	if (pc_graph_add_output(g, "y", err) || pc_graph_finish(g, err))
		goto fail;
	return g;
fail:
	pc_graph_free(g);
	return NULL;
}

TEST(quirks_long_chain_loads_and_runs)
{
	struct pc_error err = {0};
	struct pc_graph *g = chain(50000, "Relu", NULL, &err);
	struct pc_plan *p;
	const float x[8] = {1.5f, -2.0f, 0.0f, 3.25f, -0.5f, 0.75f, -1e-3f, 2.0f};
	char msg[800];

	REQUIRE_MSG(g, "%s", pc_error_format(&err, msg, sizeof(msg)));
	CHECK_INT(pc_graph_node_count(g), 50000);
	CHECK(strcmp(pc_graph_node_name(g, 0), "n0") == 0);
	CHECK(strcmp(pc_graph_node_name(g, 49999), "n49999") == 0);
	p = pc_plan_new(g, 2, 0, &err);
	REQUIRE(p);
	memcpy(pc_plan_input(p), x, sizeof(x));
	pc_plan_forward(p);
	for (int i = 0; i < 8; i++)
		CHECK(pc_plan_output(p)[i] == (x[i] > 0 ? x[i] : 0.0f));
	pc_plan_free(p);
	pc_graph_free(g);
}

TEST(quirks_many_unknown_ops_reported_by_count)
{
	struct pc_error err = {0};
	struct pc_graph *g = chain(100000, NULL, "Op", &err);
	char msg[800];
	const char *more, *s;
	int listed = 0;
	long extra = -1;

	CHECK(g == NULL);
	pc_error_format(&err, msg, sizeof(msg));
	CHECK_INT(err.code, PC_ERR_UNSUPPORTED);
	CHECK_MSG(strstr(msg, "unsupported ops: Op0 (opset 13), Op1 (opset 13), Op2 (opset 13)") != NULL, "%s", msg);
	CHECK_MSG(strstr(msg, "(100000 unsupported op types on 100000 nodes)") != NULL, "%s", msg);
	for (s = msg; (s = strstr(s, " (opset 13)")); s++)
		listed++;
	more = strstr(msg, " and ");
	REQUIRE_MSG(more && sscanf(more, " and %ld more", &extra) == 1, "%s", msg);
	CHECK(listed >= 10);
	CHECK_INT(listed + extra, 100000);
	pc_graph_free(g);

	/* one unknown op on every node: named once */
	pc_error_clear(&err);
	g = chain(100000, "Mystery", NULL, &err);
	CHECK(g == NULL);
	pc_error_format(&err, msg, sizeof(msg));
	CHECK_MSG(strcmp(err.text, "unsupported op: Mystery (opset 13)") == 0, "%s", msg);
	pc_graph_free(g);
}
