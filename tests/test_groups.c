/* Layer groups (paracorr/groups.h): one per PyTorch module, named as
 * PyTorch names it, on what torch 1.13 actually writes (the zoo's eval and
 * preserve exports) and on hand-built graphs for each fallback rule. Every
 * expected count is the module's PyTorch parameter count, written out from
 * the model's configuration (tests/reference/make_lm.py, make_zoo.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "paracorr/graph.h"
#include "paracorr/groups.h"
#include "paracorr/onnx.h"
#include "test.h"

#define ZOO    "tests/reference/fixtures/zoo"
#define GZ_MAX (64u << 20)

/* Loads a committed ONNX file, gzipped (.gz) or not; NULL after recording a
 * failure. */
static struct pc_graph *load(struct pc_test *t, const char *rel)
{
	char path[1024], msg[800];
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	size_t cap = 1u << 20, len = 0;
	unsigned char *buf = malloc(cap);
	gzFile in;
	int n;

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), rel);
	if (!buf || !(in = gzopen(path, "rb"))) {
		free(buf);
		pc_test_fail(t, __FILE__, __LINE__, "%s: cannot open", path);
		return NULL;
	}
	while ((n = gzread(in, buf + len, (unsigned)(cap - len))) > 0) {
		len += (size_t)n;
		if (len == cap) {
			unsigned char *more = cap < GZ_MAX ? realloc(buf, cap * 2) : NULL;
			if (!more) {
				n = -1;
				break;
			}
			buf = more;
			cap *= 2;
		}
	}
	gzclose(in);
	if (n < 0)
		pc_test_fail(t, __FILE__, __LINE__, "%s: cannot read", path);
	else if (pc_onnx_load_buffer(buf, len, &g, &err))
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", rel, pc_error_format(&err, msg, sizeof(msg)));
	free(buf);
	return g;
}

struct expect {
	const char *name;
	long long count;
};

/* The groups of g are exactly `want`, in order, each with the count given
 * and its parameter list ascending, summing to its count and covering every
 * tensor once. */
static void check_groups(struct pc_test *t, const char *what, const struct pc_graph *g, const struct expect *want,
			 int n_want)
{
	struct pc_layer_groups lg;
	struct pc_error err = {0};
	char msg[800];
	int seen_total = 0;
	int *seen = calloc((size_t)pc_graph_param_tensors(g) + 1, sizeof(int));

	REQUIRE(seen);
	if (pc_layer_groups_build(g, &lg, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what, pc_error_format(&err, msg, sizeof(msg)));
		free(seen);
		return;
	}
	CHECK_MSG(lg.n == n_want, "%s: %d groups, want %d", what, lg.n, n_want);
	for (int j = 0; j < lg.n; j++) {
		const struct pc_layer_group *gr = &lg.g[j];
		long long sum = 0;
		if (j < n_want) {
			CHECK_MSG(!strcmp(gr->name, want[j].name), "%s: group %d is %s, want %s", what, j, gr->name,
				  want[j].name);
			CHECK_MSG(gr->count == want[j].count, "%s: %s has %lld weights, want %lld", what, gr->name,
				  (long long)gr->count, want[j].count);
		}
		for (int i = 0; i < gr->n_params; i++) {
			const struct pc_param *pt = pc_graph_param(g, gr->params[i]);
			sum += pt->count;
			CHECK_MSG(i == 0 || gr->params[i] > gr->params[i - 1], "%s: %s's tensors not ascending", what,
				  gr->name);
			CHECK(pt->node_index >= gr->start);
			seen[gr->params[i]]++;
			seen_total++;
		}
		CHECK_MSG(sum == gr->count, "%s: %s counts %lld, its tensors %lld", what, gr->name,
			  (long long)gr->count, sum);
		CHECK_MSG(j == 0 || gr->start >= lg.g[j - 1].start, "%s: %s out of node order", what, gr->name);
	}
	CHECK_INT(seen_total, pc_graph_param_tensors(g));
	for (int i = 0; i < pc_graph_param_tensors(g); i++)
		CHECK_MSG(seen[i] == 1, "%s: tensor %s in %d groups", what, pc_graph_param(g, i)->name, seen[i]);
	free(seen);
	pc_layer_groups_free(&lg);
}

static void check_file(struct pc_test *t, const char *rel, const struct expect *want, int n_want)
{
	struct pc_graph *g = load(t, rel);

	if (!g)
		return;
	check_groups(t, rel, g, want, n_want);
	pc_graph_free(g);
}

/* make_lm.py's GPT: vocabulary 87, context 32, width 64, MLP 128, 2 blocks,
 * head tied to wte. Eval exports fold the tied head's transpose into a
 * tensor of its own, read by a MatMul at the root scope. */
// clang-format off
#define GPT_BLOCK(b)                                                                                                   \
	{"blocks." #b ".ln1", 128}, {"blocks." #b ".qkv", 64 * 192 + 192}, {"blocks." #b ".proj", 64 * 64 + 64},      \
		{"blocks." #b ".ln2", 128}, {"blocks." #b ".fc1", 64 * 128 + 128}, {"blocks." #b ".fc2", 128 * 64 + 64}
static const struct expect gpt[] = {
	{"wte", 87 * 64}, {"wpe", 32 * 64}, GPT_BLOCK(0), GPT_BLOCK(1), {"ln_f", 128}, {"MatMul", 64 * 87},
};
// clang-format on
#define N_GPT ((int)(sizeof(gpt) / sizeof(gpt[0])))

TEST(groups_zoo_gpt)
{
	check_file(t, ZOO "/lm_gpt_op17_eval.onnx.gz", gpt, N_GPT);
	check_file(t, ZOO "/lm_gpt_op17_preserve.onnx.gz", gpt, N_GPT - 1);
	check_file(t, ZOO "/lm_gpt_op14_preserve.onnx.gz", gpt, N_GPT - 1);
}

/* make_lm.py's LSTM: embedding 87 x 64, a 2-layer LSTM of width 64, head
 * tied to the embedding. Preserve exports keep weight_ih_l0 ... (PyTorch's
 * gate order, biases apart); eval exports one LSTM node per layer with
 * ONNX's gate order and the biases concatenated: the same counts. */
static const struct expect lstm_preserve[] = {
    {"emb", 87 * 64},
    {"lstm.l0", 2 * 256 * 64 + 2 * 256},
    {"lstm.l1", 2 * 256 * 64 + 2 * 256},
    {"head", 87},
};
static const struct expect lstm_eval[] = {
    {"emb", 87 * 64},
    {"lstm.l0", 2 * 256 * 64 + 2 * 256},
    {"lstm.l1", 2 * 256 * 64 + 2 * 256},
    {"head", 64 * 87 + 87},
};

TEST(groups_zoo_lstm)
{
	check_file(t, ZOO "/lm_lstm_op17_eval.onnx.gz", lstm_eval, 4);
	check_file(t, ZOO "/lm_lstm_op17_preserve.onnx.gz", lstm_preserve, 4);
	check_file(t, ZOO "/lm_lstm_op14_preserve.onnx.gz", lstm_preserve, 4);
}

/* LeNet: the five layers of before, by module name, weight and bias each. */
TEST(groups_lenet)
{
	static const struct expect lenet[] = {
	    {"conv1", 6 * 1 * 5 * 5 + 6}, {"conv2", 16 * 6 * 5 * 5 + 16}, {"fc1", 120 * 400 + 120},
	    {"fc2", 84 * 120 + 84},	  {"fc3", 10 * 84 + 10},
	};
	check_file(t, "tests/reference/fixtures/cnn_op17.onnx", lenet, 5);
}

/* Transformers and ConvNeXt have no BatchNormalization to fold: their eval
 * export (constant-folded, weights renamed onnx::MatMul_*) must give the
 * same groups with the same counts as the preserve export (every tensor
 * under its state_dict name). Swin's attention is the one exception in
 * count: eval folds the gather of relative_position_bias_table (2 heads x
 * 49) into the bias it makes ([1, 2, 16, 16]), a different tensor. */
static void same_groups(struct pc_test *t, const char *stem, const char *folded)
{
	char a[256], b[256];
	struct pc_graph *ge, *gp;
	struct pc_layer_groups le = {0}, lp = {0};
	struct pc_error err = {0};
	char msg[800];

	snprintf(a, sizeof(a), ZOO "/%s_op17_eval.onnx.gz", stem);
	snprintf(b, sizeof(b), ZOO "/%s_op17_preserve.onnx.gz", stem);
	ge = load(t, a);
	gp = ge ? load(t, b) : NULL;
	if (!ge || !gp)
		goto out;
	if (pc_layer_groups_build(ge, &le, &err) || pc_layer_groups_build(gp, &lp, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", stem, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	CHECK_MSG(le.n == lp.n && le.n > 10, "%s: %d groups eval, %d preserve", stem, le.n, lp.n);
	/* the same modules; their order follows each export's node order */
	for (int j = 0; j < le.n; j++) {
		int k = 0;
		while (k < lp.n && strcmp(le.g[j].name, lp.g[k].name))
			k++;
		CHECK_MSG(k < lp.n, "%s: %s only in the eval export", stem, le.g[j].name);
		CHECK_MSG(k == lp.n || le.g[j].count == lp.g[k].count || (folded && strstr(le.g[j].name, folded)),
			  "%s: %s has %lld eval, %lld preserve", stem, le.g[j].name, (long long)le.g[j].count,
			  (long long)(k < lp.n ? lp.g[k].count : 0));
		CHECK_MSG(!strchr(le.g[j].name, '/') && !strstr(le.g[j].name, "::"), "%s: %s is not a module path",
			  stem, le.g[j].name);
	}
out:
	pc_layer_groups_free(&le);
	pc_layer_groups_free(&lp);
	pc_graph_free(ge);
	pc_graph_free(gp);
}

TEST(groups_zoo_eval_matches_preserve)
{
	same_groups(t, "vit", NULL);
	same_groups(t, "swin", ".attn");
	same_groups(t, "convnext", NULL);
}

/* torchvision ViT's attention: in_proj_weight and in_proj_bias belong to
 * self_attention itself, out_proj is its own Linear, each MLP Linear too;
 * class_token is a parameter of the root module. */
TEST(groups_zoo_vit_names)
{
	struct pc_graph *g = load(t, ZOO "/vit_op17_eval.onnx.gz");
	struct pc_layer_groups lg;
	struct pc_error err = {0};
	const char *want[] = {"class_token",
			      "encoder.layers.encoder_layer_0.self_attention",
			      "encoder.layers.encoder_layer_0.self_attention.out_proj",
			      "encoder.layers.encoder_layer_0.mlp.0",
			      "encoder.layers.encoder_layer_1.mlp.3",
			      "heads.head"};
	char msg[800];

	if (!g)
		return;
	if (pc_layer_groups_build(g, &lg, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		pc_graph_free(g);
		return;
	}
	for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		int found = 0;
		for (int j = 0; j < lg.n; j++)
			found += !strcmp(lg.g[j].name, want[w]);
		CHECK_MSG(found == 1, "vit: %s found %d times", want[w], found);
	}
	pc_layer_groups_free(&lg);
	pc_graph_free(g);
}

/* The fallback rules on a hand-built graph x[N,4] ->
 *   "/enc/enc.0/fc/Gemm"(onnx::Gemm_1, onnx::Gemm_2)   scope  -> enc.0.fc
 *   "/dec/MatMul"(onnx::MatMul_3) -> "/dec/out/Add"(out.bias)  the Add's -> out
 *   "/MatMul"(onnx::MatMul_4)                           root   -> MatMul
 *   "/Mul"(scale)                                       root   -> scale
 *   ""  MatMul(W)                                       unnamed -> MatMul#5
 *   "plain"  Add(b)                                     not torch -> plain
 * A state_dict name wins over the scope of its reader: "blk.2.norm.weight"
 * read by a node of another scope is blk.2.norm; a node named "/" alone
 * (onnx::Add_9) is as unnamed: Add#8. */
TEST(groups_fallback_rules)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(17, &err);
	struct pc_shape in = {2, {-1, 4}}, m44 = {2, {4, 4}}, v4 = {1, {4}};
	float w16[16] = {0}, w4[4] = {0};
	const char *n0[] = {"x", "onnx::Gemm_1", "onnx::Gemm_2"}, *o0[] = {"h0"};
	const char *n1[] = {"h0", "onnx::MatMul_3"}, *o1[] = {"h1"};
	const char *n2[] = {"h1", "out.bias"}, *o2[] = {"h2"};
	const char *n3[] = {"h2", "onnx::MatMul_4"}, *o3[] = {"h3"};
	const char *n4[] = {"h3", "scale"}, *o4[] = {"h4"};
	const char *n5[] = {"h4", "W"}, *o5[] = {"h5"};
	const char *n6[] = {"h5", "b"}, *o6[] = {"h6"};
	const char *n7[] = {"h6", "blk.2.norm.weight"}, *o7[] = {"h7"};
	const char *n8[] = {"h7", "onnx::Add_9"}, *o8[] = {"y"};
	static const struct expect want[] = {
	    {"enc.0.fc", 20}, {"out", 20},  {"MatMul", 16},    {"scale", 4},
	    {"MatMul#5", 16}, {"plain", 4}, {"blk.2.norm", 4}, {"Add#8", 4},
	};
	char msg[800];

	REQUIRE(g);
	if (pc_graph_add_input(g, "x", &in, &err) || pc_graph_add_float(g, "onnx::Gemm_1", &m44, w16, &err) ||
	    pc_graph_add_float(g, "onnx::Gemm_2", &v4, w4, &err) ||
	    pc_graph_add_float(g, "onnx::MatMul_3", &m44, w16, &err) ||
	    pc_graph_add_float(g, "out.bias", &v4, w4, &err) ||
	    pc_graph_add_float(g, "onnx::MatMul_4", &m44, w16, &err) || pc_graph_add_float(g, "scale", &v4, w4, &err) ||
	    pc_graph_add_float(g, "W", &m44, w16, &err) || pc_graph_add_float(g, "b", &v4, w4, &err) ||
	    pc_graph_add_float(g, "blk.2.norm.weight", &v4, w4, &err) ||
	    pc_graph_add_float(g, "onnx::Add_9", &v4, w4, &err) ||
	    pc_graph_add_node(g, "Gemm", "/enc/enc.0/fc/Gemm", 3, n0, 1, o0, 0, NULL, &err) ||
	    pc_graph_add_node(g, "MatMul", "/dec/MatMul", 2, n1, 1, o1, 0, NULL, &err) ||
	    pc_graph_add_node(g, "Add", "/dec/out/Add", 2, n2, 1, o2, 0, NULL, &err) ||
	    pc_graph_add_node(g, "MatMul", "/MatMul", 2, n3, 1, o3, 0, NULL, &err) ||
	    pc_graph_add_node(g, "Mul", "/Mul", 2, n4, 1, o4, 0, NULL, &err) ||
	    pc_graph_add_node(g, "MatMul", "", 2, n5, 1, o5, 0, NULL, &err) ||
	    pc_graph_add_node(g, "Add", "plain", 2, n6, 1, o6, 0, NULL, &err) ||
	    pc_graph_add_node(g, "Mul", "/other/Mul", 2, n7, 1, o7, 0, NULL, &err) ||
	    pc_graph_add_node(g, "Add", "/", 2, n8, 1, o8, 0, NULL, &err) || pc_graph_add_output(g, "y", &err) ||
	    pc_graph_finish(g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		pc_graph_free(g);
		return;
	}
	check_groups(t, "hand-built", g, want, (int)(sizeof(want) / sizeof(want[0])));
	pc_graph_free(g);
}
