/* The model zoo against PyTorch (tests/reference/make_zoo.py, make_lm.py):
 * small torchvision classifiers of twelve families and two character-level
 * language models, each exported by torch.onnx.export at opsets 14 and 17,
 * in the default mode (eval, constant folding) and with
 * TrainingMode.PRESERVE without folding (the LMs' default export at opset 17
 * only).
 *
 * One TEST per family, opset and mode, so that a failure names the model. A
 * model that does not load FAILS with the loader's message: the suite is red
 * until the ops it needs exist, on purpose.
 *
 * For every export: the mean loss within 1e-4 relative, the same accuracy,
 * the first output rows within 1e-4, the L2 norm of the gradient of the mean
 * loss w.r.t. all weights within 1e-3 relative, and the weight count the
 * reference counted. Preserve exports hold PyTorch's parameters under their
 * own names: there the count is also the module's, and each tensor's
 * gradient L2 norm is checked by name.
 *
 * The ONNX files are committed gzipped (several would pass 300 KB
 * uncompressed) and unpacked into a temporary directory for
 * pc_onnx_load_file. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "be_util.h"
#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "paracorr/runner.h"
#include "test.h"

#define ZOO "tests/reference/fixtures/zoo"
/* Larger unpacked files are refused: the zoo's are all under 1 MB. */
#define ZOO_MAX_ONNX (64u << 20)

/* Per-tensor gradient norms: relative 1e-3, plus an absolute floor of 1e-8
 * of the model's whole gradient norm, for a tensor whose gradient is
 * (mathematically) about zero and computed as rounding noise on both sides. */
#define ZOO_GRAD_RTOL  1e-3
#define ZOO_GRAD_FLOOR 1e-8

/* REQUIRE that cleans up: these functions hold memory at every check. */
#define ZOO_REQUIRE(cond)                                                                                              \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			pc_test_fail(t, __FILE__, __LINE__, "%s: REQUIRE(%s)", stem, #cond);                           \
			goto out;                                                                                      \
		}                                                                                                      \
	} while (0)

static double rel_err(double a, double b)
{
	return fabs(a - b) / (fabs(b) > 1e-12 ? fabs(b) : 1e-12);
}

static double jnum(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* gz into path; 0 or -1 with msg set. */
static int gunzip_file(const char *gz, const char *path, char *msg, size_t size)
{
	gzFile in = gzopen(gz, "rb");
	FILE *out = NULL;
	char buf[1 << 16];
	size_t total = 0;
	int n, rc = -1;

	if (!in) {
		snprintf(msg, size, "%s: %s", gz, strerror(errno));
		return -1;
	}
	out = fopen(path, "wb");
	if (!out) {
		snprintf(msg, size, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((n = gzread(in, buf, sizeof(buf))) > 0) {
		total += (size_t)n;
		if (total > ZOO_MAX_ONNX) {
			snprintf(msg, size, "%s: unpacks to more than %u bytes", gz, ZOO_MAX_ONNX);
			goto out;
		}
		if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
			snprintf(msg, size, "%s: write failed", path);
			goto out;
		}
	}
	if (n < 0) {
		int e;
		snprintf(msg, size, "%s: %s", gz, gzerror(in, &e));
		goto out;
	}
	rc = 0;
out:
	if (out && fclose(out) != 0 && rc == 0) {
		snprintf(msg, size, "%s: write failed", path);
		rc = -1;
	}
	gzclose(in);
	return rc;
}

/* What every zoo check shares: the reference JSON, the graph loaded from
 * the unpacked file, the temporary directory. */
struct zoo {
	json_t *ref;
	struct pc_graph *g;
	char dir[512];
};

static void zoo_close(struct zoo *z)
{
	pc_graph_free(z->g);
	json_decref(z->ref);
	if (z->dir[0])
		be_rmtree(z->dir);
}

/* Loads stem's JSON and model; on failure records it and returns -1. */
static int zoo_open(struct pc_test *t, const char *stem, struct zoo *z)
{
	char path[1024], onnx[1024], msg[1024];
	struct pc_error err = {0};
	json_error_t jerr;

	memset(z, 0, sizeof(*z));
	snprintf(path, sizeof(path), "%s/" ZOO "/%s.json", pc_test_root(), stem);
	z->ref = json_load_file(path, 0, &jerr);
	if (!z->ref) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
		return -1;
	}
	if (!be_tmpdir(z->dir, sizeof(z->dir))) {
		z->dir[0] = '\0';
		pc_test_fail(t, __FILE__, __LINE__, "%s: no temporary directory", stem);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/" ZOO "/%s", pc_test_root(),
		 json_string_value(json_object_get(z->ref, "model")));
	snprintf(onnx, sizeof(onnx), "%s/%s.onnx", z->dir, stem);
	if (gunzip_file(path, onnx, msg, sizeof(msg))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", stem, msg);
		return -1;
	}
	if (pc_onnx_load_file(onnx, &z->g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s does not load: %s", stem,
			     pc_error_format(&err, msg, sizeof(msg)));
		return -1;
	}
	return 0;
}

/* The gradient checks shared by both kinds of model: the whole norm, the
 * weight count and, for preserve exports, each tensor's norm by name. */
static void check_gradient(struct pc_test *t, const char *stem, const struct zoo *z, const float *grad, double loss_rel)
{
	const json_t *gref = json_object_get(z->ref, "gradient");
	const json_t *tensors = json_object_get(gref, "tensors");
	int preserve = strcmp(json_string_value(json_object_get(z->ref, "mode")), "preserve") == 0;
	double total = jnum(gref, "l2"), worst = 0;
	struct pc_norms n;
	const char *key;
	json_t *val;

	pc_norms_compute(grad, pc_graph_param_count(z->g), &n);
	CHECK_MSG(rel_err(n.l2, total) <= 1e-3, "%s: gradient L2 norm %.9g, PyTorch %.9g (relative %.3g)", stem, n.l2,
		  total, rel_err(n.l2, total));
	CHECK_MSG(
	    pc_graph_param_count(z->g) == (int64_t)json_integer_value(json_object_get(z->ref, "parameters")),
	    "%s: %lld weights, the reference counts %lld in %lld tensors (paracorr has %d tensors)", stem,
	    (long long)pc_graph_param_count(z->g), (long long)json_integer_value(json_object_get(z->ref, "parameters")),
	    (long long)json_integer_value(json_object_get(z->ref, "parameter_tensors")), pc_graph_param_tensors(z->g));
	if (!preserve) {
		printf("  %s: relative error of the loss %.2g, of the gradient L2 norm %.2g\n", stem, loss_rel,
		       rel_err(n.l2, total));
		return;
	}
	/* PyTorch's parameters are the file's weights, by name */
	CHECK_INT(pc_graph_param_count(z->g), json_integer_value(json_object_get(z->ref, "module_parameters")));
	CHECK_INT(pc_graph_param_tensors(z->g), json_object_size(tensors));
	json_object_foreach((json_t *)tensors, key, val)
	{
		int k = pc_graph_find_param(z->g, key);
		struct pc_norms tn;
		double theirs = jnum(val, "l2");
		if (k < 0) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: PyTorch parameter %s is not a weight here", stem, key);
			continue;
		}
		CHECK_MSG(pc_graph_param(z->g, k)->count == (int64_t)json_integer_value(json_object_get(val, "numel")),
			  "%s: %s has %lld values, PyTorch %lld", stem, key, (long long)pc_graph_param(z->g, k)->count,
			  (long long)json_integer_value(json_object_get(val, "numel")));
		pc_norms_compute(grad + pc_graph_param(z->g, k)->offset, pc_graph_param(z->g, k)->count, &tn);
		if (rel_err(tn.l2, theirs) > worst)
			worst = rel_err(tn.l2, theirs);
		CHECK_MSG(fabs(tn.l2 - theirs) <= ZOO_GRAD_RTOL * fabs(theirs) + ZOO_GRAD_FLOOR * total,
			  "%s: gradient of %s: L2 %.9g, PyTorch %.9g", stem, key, tn.l2, theirs);
	}
	printf("  %s: relative error of the loss %.2g, of the gradient L2 norm %.2g, largest per tensor %.2g\n", stem,
	       loss_rel, rel_err(n.l2, total), worst);
}

/* --- image classifiers ---------------------------------------------------- */

static void zoo_vision(struct pc_test *t, const char *stem)
{
	char path[1024], lpath[1024], msg[1024];
	struct pc_error err = {0};
	struct zoo z;
	struct pc_preprocess pp;
	struct pc_dataset *d = NULL;
	struct pc_runner *r = NULL;
	float *grad = NULL;
	struct pc_eval ev;
	const json_t *ds, *rows, *idx;
	struct pc_plan *p;
	int64_t classes;

	if (zoo_open(t, stem, &z))
		goto out;
	ds = json_object_get(z.ref, "dataset");
	pc_preprocess_default(&pp);
	pp.n_mean = pp.n_std = 1;
	pp.mean[0] = jnum(ds, "mean");
	pp.std[0] = jnum(ds, "std");
	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), json_string_value(json_object_get(ds, "inputs")));
	snprintf(lpath, sizeof(lpath), "%s/%s", pc_test_root(), json_string_value(json_object_get(ds, "labels")));
	/* batches of 8: the mean loss and its gradient accumulate over 4 */
	if (pc_dataset_load(path, lpath, &pp, 0, &d, &err) || !(r = pc_runner_new(z.g, 8, 1, PC_PLAN_GRAD, &err))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", stem, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	grad = malloc((size_t)pc_graph_param_count(z.g) * sizeof(float) + 1);
	ZOO_REQUIRE(grad);
	if (pc_eval_run(r, d, 0, grad, NULL, NULL, &ev, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", stem, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	CHECK_INT(ev.samples, json_integer_value(json_object_get(z.ref, "samples")));
	CHECK_MSG(rel_err(ev.loss, jnum(z.ref, "loss")) <= 1e-4, "%s: loss %.9g, PyTorch %.9g", stem, ev.loss,
		  jnum(z.ref, "loss"));
	CHECK_MSG(ev.correct == json_integer_value(json_object_get(z.ref, "correct")), "%s: %lld correct, PyTorch %lld",
		  stem, (long long)ev.correct, (long long)json_integer_value(json_object_get(z.ref, "correct")));

	/* the output rows of the first samples, from a plain forward pass */
	p = pc_runner_plan(r, 0);
	classes = pc_plan_classes(p);
	CHECK_INT(classes, 10);
	rows = json_object_get(json_object_get(z.ref, "logits"), "values");
	idx = json_object_get(json_object_get(z.ref, "logits"), "indices");
	pc_eval_fill_input(p, d, 0, (int)json_array_size(idx));
	pc_plan_forward(p);
	for (size_t i = 0; i < json_array_size(idx); i++) {
		ZOO_REQUIRE(json_integer_value(json_array_get(idx, i)) == (json_int_t)i);
		for (int64_t c = 0; c < classes; c++)
			CHECK_CLOSE(pc_plan_output(p)[(int64_t)i * classes + c],
				    json_number_value(json_array_get(json_array_get(rows, i), (size_t)c)), 1e-4, 1e-4);
	}
	check_gradient(t, stem, &z, grad, rel_err(ev.loss, jnum(z.ref, "loss")));
out:
	free(grad);
	pc_runner_free(r);
	pc_dataset_free(d);
	zoo_close(&z);
}

#define ZOO_FAMILY(fam)                                                                                                \
	TEST(zoo_##fam##_op14_eval)                                                                                    \
	{                                                                                                              \
		zoo_vision(t, #fam "_op14_eval");                                                                      \
	}                                                                                                              \
	TEST(zoo_##fam##_op14_preserve)                                                                                \
	{                                                                                                              \
		zoo_vision(t, #fam "_op14_preserve");                                                                  \
	}                                                                                                              \
	TEST(zoo_##fam##_op17_eval)                                                                                    \
	{                                                                                                              \
		zoo_vision(t, #fam "_op17_eval");                                                                      \
	}                                                                                                              \
	TEST(zoo_##fam##_op17_preserve)                                                                                \
	{                                                                                                              \
		zoo_vision(t, #fam "_op17_preserve");                                                                  \
	}

ZOO_FAMILY(resnet18)
ZOO_FAMILY(squeezenet)
ZOO_FAMILY(mobilenet_v2)
ZOO_FAMILY(mobilenet_v3_small)
ZOO_FAMILY(efficientnet_b0)
ZOO_FAMILY(regnet)
ZOO_FAMILY(googlenet)
ZOO_FAMILY(convnext)
ZOO_FAMILY(vit)
ZOO_FAMILY(swin)
ZOO_FAMILY(shufflenet_v2)
ZOO_FAMILY(densenet)

/* --- language models ------------------------------------------------------- */

/* An int64 NPY file of two dims as make_lm.py writes it (version 1.0,
 * '<i8', C order). Returns a malloc'd array, or NULL with msg set. */
static int64_t *read_npy_i64(const char *path, int64_t *rows, int64_t *cols, char *msg, size_t size)
{
	size_t len = 0, hlen;
	char *buf = be_read_file(path, &len), *shape;
	int64_t *out = NULL;
	long long a, b;

	if (!buf) {
		snprintf(msg, size, "%s: cannot read", path);
		return NULL;
	}
	if (len < 10 || memcmp(buf, "\x93NUMPY\x01\x00", 8) != 0) {
		snprintf(msg, size, "%s: not an NPY 1.0 file", path);
		goto out;
	}
	hlen = (size_t)(unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
	if (10 + hlen > len || !strstr(buf + 10, "'descr': '<i8'") || !strstr(buf + 10, "'fortran_order': False") ||
	    !(shape = strstr(buf + 10, "'shape': (")) || sscanf(shape, "'shape': (%lld, %lld)", &a, &b) != 2 ||
	    a <= 0 || b <= 0 || a > 1 << 20 || b > 1 << 20 || len - 10 - hlen != (size_t)(a * b) * 8) {
		snprintf(msg, size, "%s: not a C-order int64 matrix of the size the file has", path);
		goto out;
	}
	out = malloc((size_t)(a * b) * sizeof(int64_t));
	if (!out) {
		snprintf(msg, size, "%s: out of memory", path);
		goto out;
	}
	memcpy(out, buf + 10 + hlen, (size_t)(a * b) * sizeof(int64_t)); /* little-endian host */
	*rows = a;
	*cols = b;
out:
	free(buf);
	return out;
}

/* The evaluation's token datasets do not exist yet: the loop is here. Mean
 * cross-entropy over the labelled positions (label != ignore_index), argmax
 * accuracy, and the gradient of the mean loss, over batches of 16
 * sequences. */
static void zoo_lm(struct pc_test *t, const char *stem)
{
	char path[1024], msg[1024];
	struct pc_error err = {0};
	struct zoo z;
	struct pc_plan *p = NULL;
	int64_t *x = NULL, *y = NULL, n = 0, len = 0, ny = 0, leny = 0, V, labelled = 0, correct = 0;
	const json_t *ds, *lg;
	const int batch = 16;
	double loss = 0;
	int64_t ignore;
	float *grad = NULL;

	if (zoo_open(t, stem, &z))
		goto out;
	ds = json_object_get(z.ref, "dataset");
	ignore = json_integer_value(json_object_get(ds, "ignore_index"));
	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), json_string_value(json_object_get(ds, "inputs")));
	if (!(x = read_npy_i64(path, &n, &len, msg, sizeof(msg)))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", msg);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), json_string_value(json_object_get(ds, "labels")));
	if (!(y = read_npy_i64(path, &ny, &leny, msg, sizeof(msg)))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", msg);
		goto out;
	}
	ZOO_REQUIRE(n == ny && len == leny && n % batch == 0);
	if (!(p = pc_plan_new(z.g, batch, PC_PLAN_GRAD, &err))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", stem, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	V = pc_plan_classes(p);
	ZOO_REQUIRE(pc_plan_input_int64(p) != NULL);
	ZOO_REQUIRE(V == json_integer_value(json_object_get(z.ref, "vocab")));
	ZOO_REQUIRE(pc_plan_positions(p) == len && pc_plan_sample_numel(p) == len);
	ZOO_REQUIRE(pc_graph_output_kind(z.g) == PC_OUTPUT_LOGITS);
	for (int64_t i = 0; i < n * len; i++) {
		ZOO_REQUIRE(x[i] >= 0 && x[i] < V);
		ZOO_REQUIRE(y[i] == ignore || (y[i] >= 0 && y[i] < V));
		labelled += y[i] != ignore;
	}
	ZOO_REQUIRE(labelled == json_integer_value(json_object_get(z.ref, "tokens")));

	pc_plan_zero_weight_grad(p);
	for (int64_t b0 = 0; b0 < n; b0 += batch) {
		const float *out;
		float *dout = pc_plan_output_grad(p);
		memcpy(pc_plan_input_int64(p), x + b0 * len, (size_t)(batch * len) * sizeof(int64_t));
		pc_plan_set_rows(p, batch);
		pc_plan_forward(p);
		out = pc_plan_output(p);
		for (int64_t k = 0; k < batch * len; k++) {
			const float *row = out + k * V;
			float *drow = dout + k * V;
			int64_t label = y[b0 * len + k], best = 0;
			double m = row[0], s = 0;
			if (label == ignore) {
				memset(drow, 0, (size_t)V * sizeof(float));
				continue;
			}
			for (int64_t j = 1; j < V; j++) {
				m = row[j] > m ? row[j] : m;
				best = row[j] > row[best] ? j : best;
			}
			for (int64_t j = 0; j < V; j++)
				s += exp((double)row[j] - m);
			loss += m + log(s) - row[label];
			correct += best == label;
			for (int64_t j = 0; j < V; j++)
				drow[j] = (float)(exp((double)row[j] - m) / s / (double)labelled);
			drow[label] -= (float)(1.0 / (double)labelled);
		}
		pc_plan_backward(p);
	}
	loss /= (double)labelled;
	CHECK_MSG(rel_err(loss, jnum(z.ref, "loss")) <= 1e-4, "%s: loss %.9g, PyTorch %.9g", stem, loss,
		  jnum(z.ref, "loss"));
	CHECK_MSG(rel_err(exp(loss), jnum(z.ref, "perplexity")) <= 1e-4, "%s: perplexity %.9g, PyTorch %.9g", stem,
		  exp(loss), jnum(z.ref, "perplexity"));
	CHECK_MSG(correct == json_integer_value(json_object_get(z.ref, "correct")),
		  "%s: %lld tokens right, PyTorch %lld", stem, (long long)correct,
		  (long long)json_integer_value(json_object_get(z.ref, "correct")));
	grad = malloc((size_t)pc_graph_param_count(z.g) * sizeof(float) + 1);
	ZOO_REQUIRE(grad);
	memcpy(grad, pc_plan_weight_grad(p), (size_t)pc_graph_param_count(z.g) * sizeof(float));
	check_gradient(t, stem, &z, grad, rel_err(loss, jnum(z.ref, "loss")));

	/* output rows of sequence 0 at a few positions */
	lg = json_object_get(z.ref, "logits");
	ZOO_REQUIRE(json_integer_value(json_object_get(lg, "sequence")) == 0);
	memcpy(pc_plan_input_int64(p), x, (size_t)(batch * len) * sizeof(int64_t));
	pc_plan_forward(p);
	for (size_t i = 0; i < json_array_size(json_object_get(lg, "positions")); i++) {
		int64_t pos = json_integer_value(json_array_get(json_object_get(lg, "positions"), i));
		const json_t *row = json_array_get(json_object_get(lg, "values"), i);
		ZOO_REQUIRE(pos >= 0 && pos < len && (int64_t)json_array_size(row) == V);
		for (int64_t j = 0; j < V; j++)
			CHECK_CLOSE(pc_plan_output(p)[pos * V + j], json_number_value(json_array_get(row, (size_t)j)),
				    1e-4, 1e-4);
	}
out:
	free(grad);
	free(x);
	free(y);
	pc_plan_free(p);
	zoo_close(&z);
}

/* The LMs' default export only at opset 17 (make_lm.py: size) */
#define ZOO_LM(name)                                                                                                   \
	TEST(zoo_lm_##name##_op14_preserve)                                                                            \
	{                                                                                                              \
		zoo_lm(t, "lm_" #name "_op14_preserve");                                                               \
	}                                                                                                              \
	TEST(zoo_lm_##name##_op17_eval)                                                                                \
	{                                                                                                              \
		zoo_lm(t, "lm_" #name "_op17_eval");                                                                   \
	}                                                                                                              \
	TEST(zoo_lm_##name##_op17_preserve)                                                                            \
	{                                                                                                              \
		zoo_lm(t, "lm_" #name "_op17_preserve");                                                               \
	}

ZOO_LM(lstm)
ZOO_LM(gpt)
