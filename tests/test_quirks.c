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

/* --- PyTorch exports ------------------------------------------------------- */

struct fixture {
	json_t *ref;
	struct pc_graph *g;
	unsigned char *onnx;
	size_t onnx_len;
};

static void fixture_free(struct fixture *f)
{
	json_decref(f->ref);
	pc_graph_free(f->g);
	free(f->onnx);
}

static int fixture_load(struct pc_test *t, const char *name, struct fixture *f)
{
	char path[600], msg[800];
	struct pc_error err = {0};
	json_error_t jerr;
	FILE *fp;
	long size;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s.json", pc_test_root(), name);
	if (!(f->ref = json_load_file(path, 0, &jerr))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s.onnx", pc_test_root(), name);
	if (!(fp = fopen(path, "rb")) || fseek(fp, 0, SEEK_END) || (size = ftell(fp)) <= 0 || fseek(fp, 0, SEEK_SET) ||
	    !(f->onnx = malloc((size_t)size)) || fread(f->onnx, 1, (size_t)size, fp) != (size_t)size) {
		pc_test_fail(t, __FILE__, __LINE__, "cannot read %s", path);
		if (fp)
			fclose(fp);
		return 0;
	}
	fclose(fp);
	f->onnx_len = (size_t)size;
	if (pc_onnx_load_buffer(f->onnx, f->onnx_len, &f->g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", name, pc_error_format(&err, msg, sizeof(msg)));
		return 0;
	}
	return 1;
}

static int has_param(const struct pc_graph *g, const char *name, int64_t numel)
{
	int k = pc_graph_find_param(g, name);

	return k >= 0 && pc_graph_param(g, k)->count == numel;
}

/* The graph's parameters are PyTorch's, by name and size. */
static void check_params_are_pytorch(struct pc_test *t, const char *what, const struct fixture *f)
{
	json_t *params = json_object_get(f->ref, "params");
	size_t i;
	json_t *p;

	CHECK_MSG(pc_graph_param_count(f->g) == json_integer_value(json_object_get(f->ref, "param_count")),
		  "%s: %lld parameters; PyTorch has %lld", what, (long long)pc_graph_param_count(f->g),
		  (long long)json_integer_value(json_object_get(f->ref, "param_count")));
	CHECK_MSG(pc_graph_param_tensors(f->g) == (int)json_array_size(params), "%s: %d tensors; PyTorch has %zu",
		  what, pc_graph_param_tensors(f->g), json_array_size(params));
	json_array_foreach(params, i, p)
	{
		const char *name = json_string_value(json_array_get(p, 0));
		CHECK_MSG(has_param(f->g, name, json_integer_value(json_array_get(p, 1))),
			  "%s: PyTorch's %s (%lld values) is not a parameter here", what, name,
			  (long long)json_integer_value(json_array_get(p, 1)));
	}
}

/* Logits of the fixture's input, with `shift` added to the weight `name`
 * (none when NULL), against the JSON array `key`. */
static double check_logits(struct pc_test *t, const char *what, const struct fixture *f, const char *name,
			   float shift, const char *key)
{
	struct pc_error err = {0};
	json_t *in = json_object_get(f->ref, "input"), *want = json_object_get(f->ref, key);
	struct pc_plan *p = pc_plan_new(f->g, 2, 0, &err);
	double worst = 0;
	size_t i;
	json_t *v;

	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: no plan", what);
		return 0;
	}
	if (pc_plan_sample_numel(p) * 2 != (int64_t)json_array_size(in) || !want) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: the fixture's input does not fit", what);
		pc_plan_free(p);
		return 0;
	}
	json_array_foreach(in, i, v) pc_plan_input(p)[i] = (float)json_real_value(v);
	if (name) {
		const struct pc_param *pt = pc_graph_param(f->g, pc_graph_find_param(f->g, name));
		for (int64_t k = 0; k < pt->count; k++)
			pc_plan_weights(p)[pt->offset + k] += shift;
	}
	pc_plan_forward(p);
	if (json_array_size(want) != (size_t)(2 * pc_plan_classes(p))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %zu logits", what, json_array_size(want));
		pc_plan_free(p);
		return 0;
	}
	json_array_foreach(want, i, v)
	{
		double a = pc_plan_output(p)[i], b = json_real_value(v);
		if (fabs(a - b) > worst)
			worst = fabs(a - b);
		CHECK_MSG(fabs(a - b) <= 1e-5 + 1e-5 * fabs(b), "%s %s[%zu]: %.8g, PyTorch %.8g", what, key, i, a, b);
	}
	pc_plan_free(p);
	return worst;
}

static int count_op(const struct pc_graph *g, const char *op)
{
	int n = 0;

	for (int k = 0; k < pc_graph_node_count(g); k++)
		n += strcmp(pc_graph_node_op(g, k), op) == 0;
	return n;
}

/* A float buffer of the graph holds `numel` copies of v, and lives outside
 * the parameters (corrupting them cannot reach it). */
static void check_buffer(struct pc_test *t, const struct pc_graph *g, const char *name, float v, int64_t numel)
{
	int64_t n = 0;
	const float *b = pc_graph_buffer(g, name, &n);
	const float *w = pc_graph_params(g);

	REQUIRE_MSG(b != NULL, "%s is not a buffer", name);
	CHECK_INT(n, numel);
	CHECK_MSG(pc_graph_find_param(g, name) < 0, "%s is a parameter", name);
	CHECK_MSG(b + n <= w || b >= w + pc_graph_param_count(g), "%s lies inside the parameters", name);
	for (int64_t i = 0; i < n; i++)
		CHECK_MSG(b[i] == v, "%s[%lld] = %g, expected %g", name, (long long)i, (double)b[i], (double)v);
}

TEST(quirks_stats_through_identity_of_a_weight)
{
	struct fixture f;
	double worst;

	if (!fixture_load(t, "quirk_stats_via_weight_op13", &f)) {
		fixture_free(&f);
		return;
	}
	/* the file: bn1/bn2 running_mean = Identity(bn1.bias), running_var =
	 * Identity(bn1.weight) */
	CHECK_INT(json_array_size(json_object_get(f.ref, "identities")), 4);
	check_params_are_pytorch(t, "stats via weight", &f);
	CHECK_INT(count_op(f.g, "Identity"), 0);
	check_buffer(t, f.g, "bn1.running_mean", 0.0f, 4);
	check_buffer(t, f.g, "bn2.running_mean", 0.0f, 4);
	check_buffer(t, f.g, "bn1.running_var", 1.0f, 4);
	check_buffer(t, f.g, "bn2.running_var", 1.0f, 4);
	CHECK(pc_graph_buffer(f.g, "bn1.running_mean", NULL) != pc_graph_buffer(f.g, "bn2.running_mean", NULL));
	worst = check_logits(t, "stats via weight", &f, NULL, 0, "logits");
	/* bn1.bias moved, its statistics copies did not (as in PyTorch) */
	worst = fmax(worst, check_logits(t, "stats via weight", &f, "bn1.bias", 0.5f, "logits_shifted"));
	CHECK(worst < 1e-5);
	/* a training-mode pass updates the copies, never the weights */
	{
		struct pc_error err = {0};
		struct pc_plan *p = pc_plan_new(f.g, 2, 0, &err);
		const struct pc_param *b1 = pc_graph_param(f.g, pc_graph_find_param(f.g, "bn1.bias"));
		float *w0 = malloc((size_t)pc_graph_param_count(f.g) * sizeof(float));
		REQUIRE(p && w0);
		memcpy(w0, pc_plan_weights(p), (size_t)pc_graph_param_count(f.g) * sizeof(float));
		gc_fill(pc_plan_input(p), 2 * pc_plan_sample_numel(p), 5, -1, 1);
		pc_plan_set_training(p, 1, 1);
		pc_plan_forward(p);
		CHECK(memcmp(w0, pc_plan_weights(p), (size_t)pc_graph_param_count(f.g) * sizeof(float)) == 0);
		for (int64_t k = 0; k < b1->count; k++)
			CHECK(pc_graph_params(f.g)[b1->offset + k] == 0.0f);
		free(w0);
		pc_plan_free(p);
	}
	fixture_free(&f);
}

TEST(quirks_weights_through_identity_of_stats)
{
	struct fixture f;
	struct pc_error err = {0};
	struct pc_graph *g2 = NULL;
	unsigned char *saved = NULL;
	size_t saved_len = 0;
	float *w;
	char msg[800];

	if (!fixture_load(t, "quirk_weight_via_stats_op13", &f)) {
		fixture_free(&f);
		return;
	}
	/* the file: bn2.weight = Identity(bn1.running_var), bn2.bias =
	 * Identity(bn1.running_mean); both are weights of their own here */
	check_params_are_pytorch(t, "weight via stats", &f);
	CHECK_INT(count_op(f.g, "Identity"), 0);
	check_buffer(t, f.g, "bn1.running_mean", 0.0f, 4);
	check_buffer(t, f.g, "bn2.running_mean", 0.0f, 4);
	check_buffer(t, f.g, "bn1.running_var", 1.0f, 4);
	check_logits(t, "weight via stats", &f, NULL, 0, "logits");
	check_logits(t, "weight via stats", &f, "bn2.bias", 0.5f, "logits_shifted");
	/* saved with bn2.bias shifted: the copies become initializers of their
	 * own, and the reloaded model is PyTorch's shifted one */
	w = malloc((size_t)pc_graph_param_count(f.g) * sizeof(float));
	REQUIRE(w);
	memcpy(w, pc_graph_params(f.g), (size_t)pc_graph_param_count(f.g) * sizeof(float));
	{
		const struct pc_param *pt = pc_graph_param(f.g, pc_graph_find_param(f.g, "bn2.bias"));
		for (int64_t k = 0; k < pt->count; k++)
			w[pt->offset + k] += 0.5f;
	}
	if (pc_onnx_save_weights_buffer(f.onnx, f.onnx_len, f.g, w, NULL, &saved, &saved_len, &err) ||
	    pc_onnx_load_buffer(saved, saved_len, &g2, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "save and reload: %s", pc_error_format(&err, msg, sizeof(msg)));
	} else {
		struct fixture f2 = {.ref = f.ref, .g = g2};
		check_params_are_pytorch(t, "saved", &f2);
		check_buffer(t, g2, "bn1.running_mean", 0.0f, 4);
		check_buffer(t, g2, "bn2.running_mean", 0.0f, 4);
		check_buffer(t, g2, "bn2.running_var", 1.0f, 4);
		check_logits(t, "saved", &f2, NULL, 0, "logits_shifted");
	}
	pc_graph_free(g2);
	free(saved);
	free(w);
	fixture_free(&f);
}

/* The model as constructed: bn2.weight and bn2.bias equal bn1's, and the
 * exporter merged them (Identity(bn1.weight) feeds bn2's scale). The file
 * has one initializer for the two, and the rule is that a weight read
 * through Identity is the one parameter: 395 - 4 - 4 here, where PyTorch
 * counts 395. The logits are PyTorch's all the same. */
TEST(quirks_fresh_model_merged_weights_are_one_parameter)
{
	struct fixture f;

	if (!fixture_load(t, "quirk_fresh_op13", &f)) {
		fixture_free(&f);
		return;
	}
	CHECK_INT(json_integer_value(json_object_get(f.ref, "param_count")), 395);
	CHECK_INT(pc_graph_param_count(f.g), 387);
	CHECK(pc_graph_find_param(f.g, "bn2.weight") < 0 && pc_graph_find_param(f.g, "bn2.bias") < 0);
	CHECK(has_param(f.g, "bn1.weight", 4) && has_param(f.g, "bn1.bias", 4));
	/* bn1.weight is read by bn1 and, through Identity, by bn2 */
	CHECK_INT(count_op(f.g, "Identity"), 2);
	check_buffer(t, f.g, "bn2.running_var", 1.0f, 4);
	check_logits(t, "fresh", &f, NULL, 0, "logits");
	fixture_free(&f);
}

TEST(quirks_train_mode_export)
{
	struct fixture f;

	if (!fixture_load(t, "quirk_train_op13", &f)) {
		fixture_free(&f);
		return;
	}
	check_params_are_pytorch(t, "train-mode export", &f);
	check_logits(t, "train-mode export", &f, NULL, 0, "logits");
	check_logits(t, "train-mode export", &f, "bn1.bias", 0.5f, "logits_shifted");
	fixture_free(&f);
}

/* x[N,3] -> BN(x, s1, b1, m1, v1) -> Add(Identity(m1) = "b2") -> Add(Identity(m1)
 * = "b3") -> y: m1 is bn's running mean, and two weights equal to it were
 * merged into it by the exporter. The weights become one parameter, a copy
 * named b2 (b3 reads it), and m1 stays the statistics. */
static const float st_s1[3] = {1.5f, 0.5f, -1.0f}, st_b1[3] = {0.2f, -0.1f, 0.3f}, st_m1[3] = {0.25f, -0.5f, 1.0f},
		   st_v1[3] = {2.0f, 0.5f, 1.0f};

static void stats_shared_model(struct ob_model *b)
{
	static const int64_t in_dims[2] = {-1, 3}, c_dims[1] = {3};

	ob_init(b, 13, "x", 2, in_dims, "y");
	ob_float(b, "s1", 1, c_dims, st_s1);
	ob_float(b, "b1", 1, c_dims, st_b1);
	ob_float(b, "m1", 1, c_dims, st_m1);
	ob_float(b, "v1", 1, c_dims, st_v1);
	ob_node(b, "Identity", "id_b2", (const char *const[]){"m1", NULL}, (const char *const[]){"b2", NULL});
	ob_node(b, "Identity", "id_b3", (const char *const[]){"m1", NULL}, (const char *const[]){"b3", NULL});
	ob_node(b, "BatchNormalization", "bn", (const char *const[]){"x", "s1", "b1", "m1", "v1", NULL},
		(const char *const[]){"h", NULL});
	ob_node(b, "Add", "add2", (const char *const[]){"h", "b2", NULL}, (const char *const[]){"h2", NULL});
	ob_node(b, "Add", "add3", (const char *const[]){"h2", "b3", NULL}, (const char *const[]){"y", NULL});
}

TEST(quirks_weights_merged_into_stats_are_one_parameter)
{
	struct ob_model b;
	struct pc_graph *g = NULL, *g2 = NULL;
	struct pc_error err = {0};
	unsigned char *src, *saved = NULL;
	size_t len, saved_len = 0;
	char msg[800];
	float w[9];

	stats_shared_model(&b);
	src = ob_pack(&b, &len);
	REQUIRE(src);
	if (pc_onnx_load_buffer(src, len, &g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		free(src);
		return;
	}
	/* s1, b1 and the one copy b2 */
	CHECK_INT(pc_graph_param_tensors(g), 3);
	CHECK(has_param(g, "s1", 3) && has_param(g, "b1", 3) && has_param(g, "b2", 3));
	CHECK(pc_graph_find_param(g, "b3") < 0 && pc_graph_find_param(g, "m1") < 0);
	CHECK(strcmp(pc_graph_param(g, pc_graph_find_param(g, "b2"))->node, "add2") == 0);
	CHECK_INT(count_op(g, "Identity"), 1); /* b3 = Identity(b2) */
	for (int c = 0; c < 3; c++) {
		CHECK(pc_graph_buffer(g, "m1", NULL)[c] == st_m1[c]);
		CHECK(pc_graph_params(g)[pc_graph_param(g, pc_graph_find_param(g, "b2"))->offset + c] == st_m1[c]);
	}
	/* the gradient of b2 sums both Adds' (each is dY), by finite differences */
	{
		struct gc_opts o = {.batch = 3, .eps = 1e-2, .atol = 1e-4, .rtol = 1e-3, .samples = 9, .seed = 5,
				    .check_input = 1};
		CHECK_INT(gc_check(t, g, &o), 3 * 3 + 9);
	}
	/* saved with b2 moved: b2 an initializer of its own, b3 = Identity(b2),
	 * m1 as it was */
	memcpy(w, pc_graph_params(g), sizeof(w));
	for (int c = 0; c < 3; c++)
		w[pc_graph_param(g, pc_graph_find_param(g, "b2"))->offset + c] += 1.0f;
	if (pc_onnx_save_weights_buffer(src, len, g, w, NULL, &saved, &saved_len, &err) ||
	    pc_onnx_load_buffer(saved, saved_len, &g2, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "save and reload: %s", pc_error_format(&err, msg, sizeof(msg)));
	} else {
		CHECK_INT(pc_graph_param_tensors(g2), 3);
		CHECK(has_param(g2, "b2", 3) && pc_graph_find_param(g2, "b3") < 0);
		CHECK_INT(count_op(g2, "Identity"), 1);
		for (int c = 0; c < 3; c++) {
			CHECK(pc_graph_buffer(g2, "m1", NULL)[c] == st_m1[c]);
			CHECK(pc_graph_params(g2)[pc_graph_param(g2, pc_graph_find_param(g2, "b2"))->offset + c] ==
			      st_m1[c] + 1.0f);
		}
		/* y = s1 (x - m1) / sqrt(v1 + eps) + b1 + 2 (m1 + 1): both Adds read
		 * the moved weight */
		{
			struct pc_plan *p = pc_plan_new(g2, 2, 0, &err);
			const float x[6] = {0.5f, -1.0f, 2.0f, 1.5f, 0.0f, -0.75f};
			REQUIRE(p);
			memcpy(pc_plan_input(p), x, sizeof(x));
			pc_plan_forward(p);
			for (int i = 0; i < 6; i++) {
				int c = i % 3;
				double want = st_s1[c] * (x[i] - st_m1[c]) / sqrt(st_v1[c] + 1e-5) + st_b1[c] +
					      2.0 * (st_m1[c] + 1.0);
				CHECK_CLOSE(pc_plan_output(p)[i], want, 1e-5, 1e-5);
			}
			pc_plan_free(p);
		}
	}
	pc_graph_free(g2);
	pc_graph_free(g);
	free(saved);
	free(src);
}

/* --- one weight, several readers ----------------------------------------- */

static const float tied_w[12] = {0.3f, -0.7f, 0.2f, 0.5f, -0.4f, 0.9f, 0.1f, -0.6f, 0.8f, -0.2f, 0.4f, -0.5f};

/* x[N,4] -> h = Gemm(x, W1, transB) [N,3] -> z = MatMul(h, W2) [N,4]
 *        -> y = MatMul(z, Transpose(Identity(W3))) [N,3].
 * tied: W1, W2, W3 are one initializer W. */
static void tied_model(struct ob_model *b, int tied)
{
	static const int64_t in_dims[2] = {-1, 4}, w_dims[2] = {3, 4};
	static int64_t perm[2] = {1, 0};
	const char *w1 = tied ? "W" : "W1", *w2 = tied ? "W" : "W2", *w3 = tied ? "W" : "W3";
	const char *gemm_in[] = {"x", w1, NULL}, *mm_in[] = {"h", w2, NULL}, *id_in[] = {w3, NULL};

	ob_init(b, 13, "x", 2, in_dims, "y");
	ob_float(b, w1, 2, w_dims, tied_w);
	if (!tied) {
		ob_float(b, w2, 2, w_dims, tied_w);
		ob_float(b, w3, 2, w_dims, tied_w);
	}
	ob_attr_int(ob_node(b, "Gemm", "gemm", gemm_in, (const char *const[]){"h", NULL}), b, "transB", 1);
	ob_node(b, "MatMul", "mm1", mm_in, (const char *const[]){"z", NULL});
	ob_node(b, "Identity", "head_weight", id_in, (const char *const[]){"head.weight", NULL});
	ob_attr_ints(ob_node(b, "Transpose", "tr", (const char *const[]){"head.weight", NULL},
			     (const char *const[]){"Wt", NULL}),
		     b, "perm", 2, perm);
	ob_node(b, "MatMul", "mm2", (const char *const[]){"z", "Wt", NULL}, (const char *const[]){"y", NULL});
}

/* Forward and backward of g at batch 2 on a fixed input and output
 * gradient; the weight gradient into gw (param_count floats). */
static int grad_of(const struct pc_graph *g, float *y, float *gw)
{
	struct pc_error err = {0};
	struct pc_plan *p = pc_plan_new(g, 2, PC_PLAN_GRAD, &err);

	if (!p)
		return -1;
	gc_fill(pc_plan_input(p), 8, 3, -1, 1);
	pc_plan_forward(p);
	memcpy(y, pc_plan_output(p), 6 * sizeof(float));
	gc_fill(pc_plan_output_grad(p), 6, 4, -1, 1);
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	memcpy(gw, pc_plan_weight_grad(p), (size_t)pc_graph_param_count(g) * sizeof(float));
	pc_plan_free(p);
	return 0;
}

TEST(quirks_tied_weight_is_one_parameter_with_summed_gradient)
{
	struct ob_model b;
	struct pc_graph *tied = NULL, *untied = NULL;
	struct pc_error err = {0};
	float y_t[6], y_u[6], g_t[12], g_u[36], x[8];
	double worst = 0;
	char msg[800];

	tied_model(&b, 1);
	REQUIRE_MSG(load_ob(&b, &tied, &err) == PC_OK, "tied: %s", pc_error_format(&err, msg, sizeof(msg)));
	tied_model(&b, 0);
	REQUIRE_MSG(load_ob(&b, &untied, &err) == PC_OK, "untied: %s", pc_error_format(&err, msg, sizeof(msg)));
	/* one parameter, reported under its first reader */
	CHECK_INT(pc_graph_param_tensors(tied), 1);
	CHECK_INT(pc_graph_param_count(tied), 12);
	CHECK(strcmp(pc_graph_param(tied, 0)->name, "W") == 0);
	CHECK(strcmp(pc_graph_param(tied, 0)->node, "gemm") == 0);
	CHECK(pc_graph_find_param(tied, "head.weight") < 0);
	CHECK_INT(pc_graph_param_count(untied), 36);
	REQUIRE(grad_of(tied, y_t, g_t) == 0 && grad_of(untied, y_u, g_u) == 0);
	/* the forward, by hand: y = ((x W^T) W) W^T */
	gc_fill(x, 8, 3, -1, 1);
	for (int n = 0; n < 2; n++) {
		double h[3] = {0}, z[4] = {0};
		for (int j = 0; j < 3; j++)
			for (int k = 0; k < 4; k++)
				h[j] += (double)x[n * 4 + k] * tied_w[j * 4 + k];
		for (int k = 0; k < 4; k++)
			for (int j = 0; j < 3; j++)
				z[k] += h[j] * tied_w[j * 4 + k];
		for (int j = 0; j < 3; j++) {
			double yv = 0;
			for (int k = 0; k < 4; k++)
				yv += z[k] * tied_w[j * 4 + k];
			CHECK_CLOSE(y_t[n * 3 + j], yv, 1e-6, 1e-5);
			CHECK(y_t[n * 3 + j] == y_u[n * 3 + j]);
		}
	}
	/* the tied gradient is the sum of the three uses' */
	for (int i = 0; i < 12; i++) {
		double sum = (double)g_u[i] + g_u[12 + i] + g_u[24 + i];
		worst = fmax(worst, fabs(g_t[i] - sum));
		CHECK_CLOSE(g_t[i], sum, 1e-6, 1e-5);
		CHECK(fabs(g_u[i]) > 1e-3 && fabs(g_u[12 + i]) > 1e-3 && fabs(g_u[24 + i]) > 1e-3);
	}
	CHECK(worst < 1e-5);
	/* and by finite differences: the objective is cubic in W, so central
	 * differences are exact but for float rounding */
	{
		struct gc_opts o = {.batch = 3, .eps = 1e-2, .atol = 1e-4, .rtol = 1e-3, .samples = 12, .seed = 9,
				    .check_input = 1};
		CHECK_INT(gc_check(t, tied, &o), 12 + 12);
	}
	pc_graph_free(tied);
	pc_graph_free(untied);
}

/* The tied LM as PyTorch exports it (emb.weight read by Gather and, through
 * Transpose, by the head's MatMul): one parameter, logits and gradient as
 * PyTorch's. Needs Gather on run-time indices; skipped while the build
 * refuses it (that op is someone else's branch). */
TEST(quirks_tied_lm_export)
{
	char path[600], msg[800];
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_plan *p = NULL;
	json_error_t jerr;
	json_t *ref, *v;
	double worst_y = 0, worst_g = 0;
	size_t i;

	snprintf(path, sizeof(path), "%s/" FIXTURES "/quirk_tied_lm_op13.json", pc_test_root());
	REQUIRE_MSG((ref = json_load_file(path, 0, &jerr)), "%s: %s", path, jerr.text);
	snprintf(path, sizeof(path), "%s/" FIXTURES "/quirk_tied_lm_op13.onnx", pc_test_root());
	if (pc_onnx_load_file(path, &g, &err)) {
		pc_error_format(&err, msg, sizeof(msg));
		if (err.code == PC_ERR_UNSUPPORTED && strstr(msg, "Gather runs only on int64 shape values"))
			pc_test_skip(t, "Gather on run-time indices is not in this build");
		else
			pc_test_fail(t, __FILE__, __LINE__, "%s", msg);
		json_decref(ref);
		return;
	}
	CHECK_INT(pc_graph_param_tensors(g), 1);
	CHECK_INT(pc_graph_param_count(g), json_integer_value(json_object_get(ref, "param_count")));
	CHECK(has_param(g, "emb.weight", 40));
	p = pc_plan_new(g, 2, PC_PLAN_GRAD, &err);
	if (!p || !pc_plan_input_int64(p) ||
	    json_array_size(json_object_get(ref, "logits")) != (size_t)(2 * pc_plan_positions(p) * pc_plan_classes(p))) {
		pc_test_fail(t, __FILE__, __LINE__, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	json_array_foreach(json_object_get(ref, "tokens"), i, v) pc_plan_input_int64(p)[i] = json_integer_value(v);
	pc_plan_forward(p);
	json_array_foreach(json_object_get(ref, "logits"), i, v)
	{
		double a = pc_plan_output(p)[i], b = json_real_value(v);
		worst_y = fmax(worst_y, fabs(a - b));
		CHECK_MSG(fabs(a - b) <= 1e-5 + 1e-5 * fabs(b), "logits[%zu]: %.8g, PyTorch %.8g", i, a, b);
	}
	json_array_foreach(json_object_get(ref, "output_grad"), i, v) pc_plan_output_grad(p)[i] = (float)json_real_value(v);
	pc_plan_zero_weight_grad(p);
	pc_plan_backward(p);
	json_array_foreach(json_object_get(ref, "grad_emb"), i, v)
	{
		double a = pc_plan_weight_grad(p)[i], b = json_real_value(v);
		worst_g = fmax(worst_g, fabs(a - b));
		CHECK_MSG(fabs(a - b) <= 1e-5 + 1e-5 * fabs(b), "d emb.weight[%zu]: %.8g, PyTorch %.8g", i, a, b);
	}
	CHECK(worst_y < 1e-5 && worst_g < 1e-5);
out:
	pc_plan_free(p);
	pc_graph_free(g);
	json_decref(ref);
}

/* --- non-finite initializers ----------------------------------------------- */

TEST(quirks_attention_mask_is_a_constant)
{
	static const int64_t in_dims[2] = {-1, 3}, w_dims[2] = {3, 3}, v_dims[1] = {3};
	static const float w[9] = {0.5f, -0.3f, 0.2f, 0.1f, 0.4f, -0.6f, -0.2f, 0.3f, 0.7f};
	static const float bias[3] = {0.1f, 0.0f, -0.1f};
	const float mask[3] = {0.0f, -INFINITY, 0.0f};
	const float nan_v[3] = {0.0f, NAN, 0.0f}, inf_v[3] = {INFINITY, 0.0f, 0.0f};
	const float x[6] = {1.0f, -2.0f, 0.5f, 0.25f, 1.5f, -1.0f};
	struct ob_model b;
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	struct pc_plan *p;
	char msg[800];

	ob_init(&b, 13, "x", 2, in_dims, "y");
	ob_float(&b, "W", 2, w_dims, w);
	ob_float(&b, "B", 1, v_dims, bias);
	ob_float(&b, "mask", 1, v_dims, mask);
	ob_attr_int(ob_node(&b, "Gemm", "gemm", (const char *const[]){"x", "W", "B", NULL},
			    (const char *const[]){"h", NULL}),
		    &b, "transB", 1);
	ob_node(&b, "Add", "masked", (const char *const[]){"h", "mask", NULL}, (const char *const[]){"hm", NULL});
	ob_node(&b, "Softmax", "sm", (const char *const[]){"hm", NULL}, (const char *const[]){"y", NULL});
	REQUIRE_MSG(load_ob(&b, &g, &err) == PC_OK, "%s", pc_error_format(&err, msg, sizeof(msg)));
	CHECK_INT(pc_graph_param_count(g), 12);
	CHECK(pc_graph_find_param(g, "mask") < 0);
	CHECK(pc_graph_buffer(g, "mask", NULL) != NULL);
	p = pc_plan_new(g, 2, PC_PLAN_GRAD, &err);
	REQUIRE(p);
	memcpy(pc_plan_input(p), x, sizeof(x));
	pc_plan_forward(p);
	for (int n = 0; n < 2; n++) {
		double h[3], den;
		for (int j = 0; j < 3; j++) {
			h[j] = bias[j];
			for (int k = 0; k < 3; k++)
				h[j] += (double)x[n * 3 + k] * w[j * 3 + k];
		}
		den = exp(h[0]) + exp(h[2]);
		CHECK_CLOSE(pc_plan_output(p)[n * 3 + 0], exp(h[0]) / den, 1e-6, 1e-5);
		CHECK(pc_plan_output(p)[n * 3 + 1] == 0.0f);
		CHECK_CLOSE(pc_plan_output(p)[n * 3 + 2], exp(h[2]) / den, 1e-6, 1e-5);
	}
	pc_plan_free(p);
	pc_graph_free(g);

	/* NaN and +inf are constants too */
	b.inits[2].raw_data.data = (uint8_t *)nan_v;
	REQUIRE(load_ob(&b, &g, &err) == PC_OK);
	CHECK_INT(pc_graph_param_count(g), 12);
	pc_graph_free(g);
	b.inits[2].raw_data.data = (uint8_t *)inf_v;
	REQUIRE(load_ob(&b, &g, &err) == PC_OK);
	CHECK_INT(pc_graph_param_count(g), 12);
	CHECK(pc_graph_find_param(g, "mask") < 0);
	pc_graph_free(g);
}

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

/* 50,000 Relu nodes, and 50,000 Identity nodes (one alias chain for the
 * plan to resolve); each loads, keeps its order and computes its output. */
TEST(quirks_long_chain_loads_and_runs)
{
	static const char *const ops[2] = {"Relu", "Identity"};
	const float x[8] = {1.5f, -2.0f, 0.0f, 3.25f, -0.5f, 0.75f, -1e-3f, 2.0f};

	for (int o = 0; o < 2; o++) {
		struct pc_error err = {0};
		struct pc_graph *g = chain(50000, ops[o], NULL, &err);
		struct pc_plan *p;
		char msg[800];

		REQUIRE_MSG(g, "%s: %s", ops[o], pc_error_format(&err, msg, sizeof(msg)));
		CHECK_INT(pc_graph_node_count(g), 50000);
		CHECK(strcmp(pc_graph_node_name(g, 0), "n0") == 0);
		CHECK(strcmp(pc_graph_node_name(g, 49999), "n49999") == 0);
		CHECK(strcmp(pc_graph_node_op(g, 25000), ops[o]) == 0);
		p = pc_plan_new(g, 2, PC_PLAN_INPUT_GRAD, &err);
		REQUIRE_MSG(p, "%s: %s", ops[o], pc_error_format(&err, msg, sizeof(msg)));
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		for (int i = 0; i < 8; i++)
			CHECK(pc_plan_output(p)[i] == (o == 1 || x[i] > 0 ? x[i] : 0.0f));
		/* and back through all of them */
		for (int i = 0; i < 8; i++)
			pc_plan_output_grad(p)[i] = (float)(i + 1);
		pc_plan_backward(p);
		for (int i = 0; i < 8; i++)
			CHECK(pc_plan_input_grad(p)[i] == (o == 1 || x[i] > 0 ? (float)(i + 1) : 0.0f));
		pc_plan_free(p);
		pc_graph_free(g);
	}
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
