/* Agreement with PyTorch on the committed fixtures (tests/reference/): loss,
 * accuracy, output rows and per-tensor gradient norms of every model, as
 * the reference script computed them with torch from the same ONNX files. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "paracorr/runner.h"
#include "test.h"

#define FIXTURES "tests/reference/fixtures"

static const char *const fixtures[] = {
	"mlp_op13", "mlp_logsoftmax_op13", "cnn_op13", "cnn_op17", "resnet_op13", "resnet_op17", "resnet_bn_op13",
	"resnet_bn_op17",
};

static double rel_err(double a, double b)
{
	return fabs(a - b) / (fabs(b) > 1e-12 ? fabs(b) : 1e-12);
}

struct ref_worst {
	double loss, grad;
};

static void check_fixture(struct pc_test *t, const char *name, int batch, int threads, struct ref_worst *worst)
{
	char path[512], msg[800];
	struct pc_error err = {0};
	json_error_t jerr;
	json_t *ref;
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_runner *r = NULL;
	struct pc_plan *p;
	float *grad = NULL;
	struct pc_preprocess pp;
	struct pc_eval ev;
	json_t *tensors, *rows, *idx;
	const char *key;
	json_t *val;
	int64_t limit;

	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s.json", pc_test_root(), name);
	ref = json_load_file(path, 0, &jerr);
	if (!ref) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
		return;
	}
	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s", pc_test_root(),
		 json_string_value(json_object_get(ref, "model")));
	if (pc_onnx_load_file(path, &g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", name, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	limit = json_integer_value(json_object_get(json_object_get(ref, "dataset"), "limit"));
	pc_preprocess_default(&pp);
	if (pc_dataset_load(json_string_value(json_object_get(json_object_get(ref, "dataset"), "inputs")),
			    json_string_value(json_object_get(json_object_get(ref, "dataset"), "labels")), &pp, limit,
			    &d, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", name, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	r = pc_runner_new(g, batch, threads, PC_PLAN_GRAD, &err);
	grad = malloc((size_t)pc_graph_param_count(g) * sizeof(float) + 1);
	if (!r || !grad || pc_eval_run(r, d, limit, grad, NULL, NULL, &ev, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", name, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	p = pc_runner_plan(r, 0);
	CHECK_INT(ev.samples, json_integer_value(json_object_get(ref, "samples")));
	CHECK_MSG(rel_err(ev.loss, json_real_value(json_object_get(ref, "loss"))) <= 1e-4, "%s: loss %.9g vs %.9g",
		  name, ev.loss, json_real_value(json_object_get(ref, "loss")));
	if (rel_err(ev.loss, json_real_value(json_object_get(ref, "loss"))) > worst->loss)
		worst->loss = rel_err(ev.loss, json_real_value(json_object_get(ref, "loss")));
	CHECK_MSG(fabs(ev.accuracy - json_number_value(json_object_get(ref, "accuracy"))) < 1e-12,
		  "%s: accuracy %.6f vs %.6f", name, ev.accuracy, json_number_value(json_object_get(ref, "accuracy")));

	/* the output rows of the first samples, from a plain forward pass */
	rows = json_object_get(json_object_get(ref, "logits"), "values");
	idx = json_object_get(json_object_get(ref, "logits"), "indices");
	{
		int64_t sample = pc_plan_sample_numel(p), classes = pc_plan_classes(p);
		size_t nrows = json_array_size(idx);
		memset(pc_plan_input(p), 0, (size_t)batch * (size_t)sample * sizeof(float));
		for (size_t r = 0; r < nrows && (int)r < batch; r++)
			memcpy(pc_plan_input(p) + r * sample, d->x + json_integer_value(json_array_get(idx, r)) * sample,
			       (size_t)sample * sizeof(float));
		pc_plan_forward(p);
		for (size_t r = 0; r < nrows && (int)r < batch; r++)
			for (int64_t c = 0; c < classes; c++)
				CHECK_CLOSE(pc_plan_output(p)[r * classes + c],
					    json_number_value(json_array_get(json_array_get(rows, r), (size_t)c)), 1e-4,
					    1e-4);
	}

	/* gradient norms, per tensor and of the whole model */
	tensors = json_object_get(json_object_get(ref, "gradient"), "tensors");
	CHECK_INT(json_object_size(tensors), pc_graph_param_tensors(g));
	json_object_foreach(tensors, key, val)
	{
		int k = pc_graph_find_param(g, key);
		struct pc_norms n;
		const char *norms[3] = {"l1", "l2", "linf"};
		if (k < 0) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: tensor %s is not a parameter here", name, key);
			continue;
		}
		CHECK_MSG(strcmp(pc_graph_param(g, k)->node, json_string_value(json_object_get(val, "node"))) == 0,
			  "%s: %s consumed by %s, reference says %s", name, key, pc_graph_param(g, k)->node,
			  json_string_value(json_object_get(val, "node")));
		pc_norms_compute(grad + pc_graph_param(g, k)->offset, pc_graph_param(g, k)->count,
				 &n);
		for (int m = 0; m < 3; m++) {
			double mine = m == 0 ? n.l1 : m == 1 ? n.l2 : n.linf;
			double theirs = json_number_value(json_object_get(val, norms[m]));
			double e = rel_err(mine, theirs);
			if (e > worst->grad)
				worst->grad = e;
			CHECK_MSG(e <= 1e-3, "%s: %s gradient %s %.9g vs %.9g", name, key, norms[m], mine, theirs);
		}
	}
out:
	free(grad);
	pc_runner_free(r);
	pc_dataset_free(d);
	pc_graph_free(g);
	json_decref(ref);
}

TEST(reference_fixtures_match_pytorch)
{
	struct ref_worst worst = {0, 0};

	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++)
		check_fixture(t, fixtures[i], 128, 1, &worst);
	printf("  largest relative disagreement with PyTorch: loss %.3g, gradient norm %.3g\n", worst.loss,
	       worst.grad);
}

/* The batch size must not change any number beyond rounding: a batch that
 * does not divide the sample count exercises the padded last batch. */
TEST(reference_batch_size_invariant)
{
	struct ref_worst worst = {0, 0};

	check_fixture(t, "cnn_op17", 7, 1, &worst);
	check_fixture(t, "resnet_bn_op13", 300, 2, &worst);
}

/* NPY datasets (float32 and uint8 inputs, int64 labels) give the numbers
 * PyTorch gives on the same 64 samples. */
TEST(reference_npy_inputs)
{
	static const char *const inputs[] = {"sample64_f32.npy", "sample64_u8.npy"};
	char path[512], xp[512], yp[512], msg[800];
	json_error_t jerr;
	json_t *ref;
	struct pc_graph *g = NULL;
	struct pc_error err = {0};

	snprintf(path, sizeof(path), "%s/" FIXTURES "/npy64.json", pc_test_root());
	ref = json_load_file(path, 0, &jerr);
	REQUIRE(ref);
	snprintf(path, sizeof(path), "%s/" FIXTURES "/cnn_op17.onnx", pc_test_root());
	if (pc_onnx_load_file(path, &g, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		json_decref(ref);
		return;
	}
	for (int i = 0; i < 2; i++) {
		struct pc_dataset *d = NULL;
		struct pc_runner *r = NULL;
		struct pc_eval ev;
		snprintf(xp, sizeof(xp), "%s/" FIXTURES "/%s", pc_test_root(), inputs[i]);
		snprintf(yp, sizeof(yp), "%s/" FIXTURES "/labels64_i64.npy", pc_test_root());
		if (pc_dataset_load(xp, yp, NULL, 0, &d, &err) || !(r = pc_runner_new(g, 16, 1, 0, &err)) ||
		    pc_eval_run(r, d, 0, NULL, NULL, NULL, &ev, &err)) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", inputs[i], pc_error_format(&err, msg, sizeof(msg)));
		} else {
			CHECK_INT(ev.samples, 64);
			CHECK_CLOSE(ev.loss, json_number_value(json_object_get(ref, "loss")), 0, 1e-5);
			CHECK(ev.accuracy == json_number_value(json_object_get(ref, "accuracy")));
		}
		pc_runner_free(r);
		pc_dataset_free(d);
	}
	pc_graph_free(g);
	json_decref(ref);
}

/* The gradient does not depend on the thread count: fixed shards summed in
 * a fixed order (what makes a report reproducible on any machine). */
TEST(reference_gradient_thread_invariant)
{
	char path[512];
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	float *g1, *g2;
	struct pc_eval e1, e2;
	struct pc_runner *r1, *r2;

	snprintf(path, sizeof(path), "%s/" FIXTURES "/resnet_bn_op17.onnx", pc_test_root());
	REQUIRE(pc_onnx_load_file(path, &g, &err) == PC_OK);
	REQUIRE(pc_dataset_load("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
				"/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", NULL, 200, &d, &err) ==
		PC_OK);
	g1 = malloc((size_t)pc_graph_param_count(g) * sizeof(float));
	g2 = malloc((size_t)pc_graph_param_count(g) * sizeof(float));
	r1 = pc_runner_new(g, 16, 1, PC_PLAN_GRAD, &err);
	r2 = pc_runner_new(g, 16, 2, PC_PLAN_GRAD, &err);
	REQUIRE(g1 && g2 && r1 && r2);
	REQUIRE(pc_eval_run(r1, d, 0, g1, NULL, NULL, &e1, &err) == PC_OK);
	REQUIRE(pc_eval_run(r2, d, 0, g2, NULL, NULL, &e2, &err) == PC_OK);
	CHECK(e1.loss == e2.loss);
	CHECK(memcmp(g1, g2, (size_t)pc_graph_param_count(g) * sizeof(float)) == 0);
	pc_runner_free(r1);
	pc_runner_free(r2);
	free(g1);
	free(g2);
	pc_dataset_free(d);
	pc_graph_free(g);
}
