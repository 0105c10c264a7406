/* Training and ACT: steps against PyTorch (tests/reference/
 * make_act_reference.py), determinism across threads, checkpoints that
 * resume exactly, and the hardened ONNX file written back and reloaded. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "job.h"
#include "be_util.h"
#include "paracorr/data.h"
#include "paracorr/onnx.h"
#include "paracorr/spec.h"
#include "paracorr/train.h"
#include "test.h"


static int load_fixture(struct pc_test *t, struct pc_graph **g, struct pc_dataset **d)
{
	char m[1024], x[1024], y[1024];
	struct pc_error err = {0};

	snprintf(m, sizeof(m), "%s/" FIX "mlp_op13.onnx", pc_test_root());
	snprintf(x, sizeof(x), "%s/" FIX "sample64_u8.npy", pc_test_root());
	snprintf(y, sizeof(y), "%s/" FIX "labels64_i64.npy", pc_test_root());
	if (pc_onnx_load_file(m, g, &err) || pc_dataset_load(x, y, NULL, 0, d, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "fixtures: %s: %s", err.where, err.text);
		return 0;
	}
	return 1;
}

/* Steps tr through the reference's batches at lr, each step's loss (and
 * with corruption, its loss at w + a) against PyTorch's. */
static void steps_match(struct pc_test *t, struct pc_trainer *tr, const struct pc_dataset *d, const json_t *batches,
			const json_t *steps, double lr, int corrupted, const char *name)
{
	struct pc_error err = {0};
	json_t *b;
	size_t bi;

	json_array_foreach(batches, bi, b)
	{
		json_t *step = json_array_get(steps, bi);
		double want = json_number_value(json_object_get(step, "loss"));
		double want_c = json_number_value(json_object_get(step, "loss_corrupted"));
		struct pc_train_stats st;
		int64_t idx[64];
		size_t k;

		for (k = 0; k < json_array_size(b) && k < 64; k++)
			idx[k] = json_integer_value(json_array_get(b, k));
		REQUIRE_MSG(pc_trainer_step(tr, d, idx, (int)k, lr, &st, &err) == 0, "%s: %s", name, err.text);
		CHECK_MSG(fabs(st.loss - want) < 1e-5 * want, "%s step %zu: loss %.9g vs PyTorch %.9g", name, bi, st.loss,
			  want);
		if (corrupted)
			CHECK_MSG(fabs(st.loss_corrupted - want_c) < 1e-5 * st.loss_corrupted,
				  "%s step %zu: loss at w + a %.9g vs PyTorch %.9g", name, bi, st.loss_corrupted, want_c);
	}
}

/* A tensor after the steps against its reference entry tv: its change from
 * was (count values) when was is given, else its values; pick_atol and
 * l2_atol are the absolute parts of the tolerances. */
static void tensor_matches(struct pc_test *t, const char *name, const char *key, const float *now, const float *was,
			   int64_t count, const json_t *tv, double pick_atol, double l2_atol)
{
	double ref_dl2 = json_number_value(json_object_get(tv, "delta_l2")), dl2 = 0;
	size_t k;

	for (k = 0; k < json_array_size(json_object_get(tv, "indices")); k++) {
		int64_t i = json_integer_value(json_array_get(json_object_get(tv, "indices"), k));
		double want = json_number_value(json_array_get(json_object_get(tv, was ? "deltas" : "values"), k));
		double got = was ? (double)now[i] - was[i] : now[i];

		CHECK_MSG(fabs(got - want) <= 1e-4 * fabs(want) + 1e-4 * ref_dl2 / sqrt((double)count) + pick_atol,
			  "%s %s[%lld]: %.9g vs PyTorch %.9g", name, key, (long long)i, got, want);
	}
	if (!was)
		return;
	for (int64_t i = 0; i < count; i++)
		dl2 += ((double)now[i] - was[i]) * ((double)now[i] - was[i]);
	CHECK_MSG(fabs(sqrt(dl2) - ref_dl2) <= 1e-4 * ref_dl2 + l2_atol, "%s %s: |dw| %.9g vs PyTorch %.9g", name, key,
		  sqrt(dl2), ref_dl2);
}

TEST(train_act_steps_match_pytorch)
{
	char path[1024];
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	json_t *ref, *c, *batches;
	size_t ci;

	snprintf(path, sizeof(path), "%s/" FIX "act_mlp_op13.json", pc_test_root());
	ref = json_load_file(path, 0, NULL);
	REQUIRE_MSG(ref, "no %s (tests/reference/make_act_reference.py writes it)", path);
	if (!load_fixture(t, &g, &d))
		goto out;
	batches = json_object_get(ref, "batches");
	json_array_foreach(json_object_get(ref, "cases"), ci, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		struct pc_train_opts o;
		struct pc_trainer *tr = NULL;
		struct pc_error err = {0};
		const char *key;
		json_t *tv;

		pc_train_opts_default(&o);
		o.optimizer = !strcmp(json_string_value(json_object_get(c, "optimizer")), "adam") ? PC_OPT_ADAM : PC_OPT_SGD;
		o.lr = json_number_value(json_object_get(c, "lr"));
		o.momentum = json_number_value(json_object_get(c, "momentum"));
		o.weight_decay = json_number_value(json_object_get(c, "weight_decay"));
		o.act.p = !strcmp(json_string_value(json_object_get(c, "norm")), "linf") ? INFINITY : 2;
		o.act.epsilon = json_number_value(json_object_get(c, "epsilon"));
		o.act.lambda = json_number_value(json_object_get(c, "lambda"));
		if (pc_trainer_new(g, &o, 2, &tr, &err)) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", name, err.text);
			continue;
		}
		steps_match(t, tr, d, batches, json_object_get(c, "steps"), o.lr, o.act.epsilon > 0, name);
		/* the weights after the steps: their change, tensor by tensor */
		json_object_foreach(json_object_get(c, "tensors"), key, tv)
		{
			int pi = pc_graph_find_param(g, key);
			const struct pc_param *p = pi >= 0 ? pc_graph_param(g, pi) : NULL;

			REQUIRE_MSG(p, "no tensor %s", key);
			tensor_matches(t, name, key, pc_trainer_weights(tr) + p->offset, pc_graph_params(g) + p->offset,
				       p->count, tv, 1e-8, 1e-9);
		}
		pc_trainer_free(tr);
	}
out:
	pc_dataset_free(d);
	pc_graph_free(g);
	json_decref(ref);
}

/* Two epochs of ACT with `threads`; the weights into w (param_count). */
static int train_two_epochs(const struct pc_graph *g, const struct pc_dataset *d, int threads, float *w,
			    struct pc_error *err)
{
	struct pc_train_opts o;
	struct pc_trainer *tr;
	struct pc_train_stats st;
	int rc;

	pc_train_opts_default(&o);
	o.epochs = 2;
	o.batch_size = 20;
	o.schedule = PC_LR_COSINE;
	o.act.epsilon = 0.3;
	o.act.steps = 2;
	if ((rc = pc_trainer_new(g, &o, threads, &tr, err)))
		return rc;
	for (int e = 0; e < 2 && !rc; e++)
		rc = pc_trainer_epoch(tr, d, e, NULL, NULL, NULL, NULL, &st, err);
	memcpy(w, pc_trainer_weights(tr), (size_t)pc_graph_param_count(g) * sizeof(float));
	pc_trainer_free(tr);
	return rc;
}

TEST(train_same_for_any_thread_count_and_resumes_exactly)
{
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	float *w1, *w2, *w3, *state;
	int64_t n, steps;

	if (!load_fixture(t, &g, &d))
		return;
	n = pc_graph_param_count(g);
	w1 = malloc((size_t)n * sizeof(float));
	w2 = malloc((size_t)n * sizeof(float));
	w3 = malloc((size_t)n * sizeof(float));
	REQUIRE(w1 && w2 && w3);
	REQUIRE(train_two_epochs(g, d, 1, w1, &err) == 0);
	REQUIRE(train_two_epochs(g, d, 2, w2, &err) == 0);
	CHECK_MSG(!memcmp(w1, w2, (size_t)n * sizeof(float)), "1 and 2 threads train to different weights");
	CHECK(memcmp(w1, pc_graph_params(g), (size_t)n * sizeof(float)) != 0);
	/* a checkpoint after epoch 0, loaded into a new trainer, gives epoch 1
	 * exactly as the uninterrupted run did */
	{
		struct pc_train_opts o;
		struct pc_trainer *a, *b;
		struct pc_train_stats st;

		pc_train_opts_default(&o);
		o.epochs = 2;
		o.batch_size = 20;
		o.schedule = PC_LR_COSINE;
		o.act.epsilon = 0.3;
		o.act.steps = 2;
		REQUIRE(pc_trainer_new(g, &o, 2, &a, &err) == 0);
		REQUIRE(pc_trainer_epoch(a, d, 0, NULL, NULL, NULL, NULL, &st, &err) == 0);
		state = malloc((size_t)pc_trainer_state_size(a) * sizeof(float));
		REQUIRE(state);
		pc_trainer_state_save(a, state, &steps);
		pc_trainer_free(a);
		REQUIRE(pc_trainer_new(g, &o, 1, &b, &err) == 0);
		pc_trainer_state_load(b, state, steps);
		REQUIRE(pc_trainer_epoch(b, d, 1, NULL, NULL, NULL, NULL, &st, &err) == 0);
		CHECK_MSG(!memcmp(pc_trainer_weights(b), w1, (size_t)n * sizeof(float)), "the resumed run differs");
		CHECK(st.samples == 64 && st.loss > 0 && st.loss_corrupted > st.loss);
		CHECK(fabs(st.lr - 0.01 * 0.5 * (1 + cos(M_PI / 2))) < 1e-15);
		pc_trainer_free(b);
		free(state);
	}
	/* the control (epsilon 0) trains to other weights */
	{
		struct pc_train_opts o;
		struct pc_trainer *c;
		struct pc_train_stats st;

		pc_train_opts_default(&o);
		o.batch_size = 20;
		REQUIRE(pc_trainer_new(g, &o, 2, &c, &err) == 0);
		REQUIRE(pc_trainer_epoch(c, d, 0, NULL, NULL, NULL, NULL, &st, &err) == 0);
		CHECK(st.loss_corrupted == 0 && memcmp(pc_trainer_weights(c), w1, (size_t)n * sizeof(float)));
		pc_trainer_free(c);
	}
	/* bad options are named */
	{
		struct pc_train_opts o;
		struct pc_trainer *c = NULL;

		pc_train_opts_default(&o);
		o.act.lambda = 1.5;
		pc_error_clear(&err);
		CHECK(pc_trainer_new(g, &o, 1, &c, &err) == PC_ERR_INVALID && strstr(err.where, "lambda") && !c);
	}
	free(w1);
	free(w2);
	free(w3);
	pc_dataset_free(d);
	pc_graph_free(g);
}

TEST(train_hardened_onnx_reloads_with_its_weights)
{
	struct pc_graph *g = NULL, *g2 = NULL;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	char dir[1024], src[1024], out[1200], cmd[3000];
	float *w;
	int64_t n;

	if (!load_fixture(t, &g, &d))
		return;
	n = pc_graph_param_count(g);
	REQUIRE((w = malloc((size_t)n * sizeof(float))));
	REQUIRE(train_two_epochs(g, d, 2, w, &err) == 0);
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(src, sizeof(src), "%s/" FIX "mlp_op13.onnx", pc_test_root());
	snprintf(out, sizeof(out), "%s/hardened.onnx", dir);
	REQUIRE_MSG(pc_onnx_save_weights(src, g, w, NULL, out, &err) == 0, "%s: %s", err.where, err.text);
	REQUIRE_MSG(pc_onnx_load_file(out, &g2, &err) == 0, "%s: %s", err.where, err.text);
	CHECK_INT(pc_graph_param_count(g2), n);
	CHECK_MSG(!memcmp(pc_graph_params(g2), w, (size_t)n * sizeof(float)), "the reloaded weights differ");
	CHECK_INT(pc_graph_node_count(g2), pc_graph_node_count(g));
	for (int i = 0; i < pc_graph_param_tensors(g); i++)
		CHECK(!strcmp(pc_graph_param(g, i)->name, pc_graph_param(g2, i)->name));
	/* python3-onnx's checker, where Debian's python3-onnx is installed */
	if (access("/usr/bin/python3", X_OK) == 0 &&
	    system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0) {
		snprintf(cmd, sizeof(cmd),
			 "/usr/bin/python3 -c 'import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, "
			 "full_check=True)' '%s'",
			 out);
		CHECK_MSG(system(cmd) == 0, "onnx.checker refuses %s", out);
	}
	/* weights of another graph: refused, naming what does not fit */
	{
		unsigned char *bytes = NULL;
		size_t len;
		char *srcbuf = be_read_file(src, &len);

		REQUIRE(srcbuf);
		pc_error_clear(&err);
		CHECK(pc_onnx_save_weights_buffer("garbage", 7, g, w, NULL, &bytes, &len, &err) == PC_ERR_FORMAT && !bytes);
		free(srcbuf);
	}
	pc_graph_free(g2);
	be_rmtree(dir);
	free(w);
	pc_dataset_free(d);
	pc_graph_free(g);
}

/* --- the paper's claim on Fashion-MNIST, through a harden job -------------- */

#define FM "/usr/share/datasets/fashion-mnist/"

/* Runs the harden job with ACT radius eps; the report (new reference). */
static json_t *harden(struct pc_test *t, double eps, const char *out)
{
	char text[2048], model[1024];
	struct pc_spec spec;
	struct pc_error err = {0};
	struct pcd_job_opts o;
	struct pcd_job_files files = {0};
	json_t *root, *report = NULL;
	char *rtext = NULL;

	snprintf(text, sizeof(text),
		 "{\"kind\": \"harden\", \"model\": \"cnn\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, "
		 "\"limit\": 5000, \"seed\": 1, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.5, 1], "
		 "\"random_trials\": 0, \"groups\": [\"model\"]}, \"training\": {\"dataset\": {\"inputs\": \"a\", "
		 "\"labels\": \"b\"}, \"limit\": 20000, \"epochs\": 1, \"batch_size\": 64, \"optimizer\": \"sgd\", "
		 "\"lr\": 0.01, \"momentum\": 0.9, \"schedule\": \"cosine\", \"act\": {\"norm\": \"l2\", \"epsilon\": %g}}}",
		 eps);
	root = json_loads(text, 0, NULL);
	if (!root || pc_spec_parse(root, &spec, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "spec: %s: %s", err.where, err.text);
		json_decref(root);
		return NULL;
	}
	json_decref(root);
	snprintf(model, sizeof(model), "%s/" FIX "cnn_op17.onnx", pc_test_root());
	files.model = model;
	files.inputs = FM "t10k-images-idx3-ubyte.gz";
	files.labels = FM "t10k-labels-idx1-ubyte.gz";
	files.train_inputs = FM "train-images-idx3-ubyte.gz";
	files.train_labels = FM "train-labels-idx1-ubyte.gz";
	pcd_job_opts_default(&o);
	o.threads = 2;
	o.timing_seconds = 0;
	o.model_out = out;
	if (pcd_job_run_spec(&spec, &files, &o, &rtext, &report, &err))
		pc_test_fail(t, __FILE__, __LINE__, "harden eps %g: %s: %s", eps, err.where, err.text);
	free(rtext);
	pc_spec_free(&spec);
	return report;
}

static double after_accuracy(const json_t *rep, double radius)
{
	const json_t *after = json_object_get(rep, "after"), *r;
	size_t i;

	if (radius == 0)
		return json_number_value(json_object_get(json_object_get(after, "clean"), "accuracy"));
	json_array_foreach(json_object_get(after, "results"), i, r)
	if (json_number_value(json_object_get(r, "epsilon")) == radius)
		return json_number_value(json_object_get(json_object_get(r, "gradient"), "accuracy"));
	return NAN;
}

TEST(train_act_hardens_a_fashion_mnist_cnn)
{
	char dir[1024], out0[1100], out1[1100];
	json_t *control, *act;
	struct pc_graph *g = NULL;
	struct pc_error err = {0};

	if (access(FM "train-images-idx3-ubyte.gz", R_OK) || access(FM "t10k-images-idx3-ubyte.gz", R_OK)) {
		pc_test_skip(t, "no Fashion-MNIST under /usr/share/datasets (dataset-fashion-mnist)");
		return;
	}
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(out0, sizeof(out0), "%s/control.onnx", dir);
	snprintf(out1, sizeof(out1), "%s/act.onnx", dir);
	/* the same seed, data, optimiser and epoch; only the corruption differs */
	control = harden(t, 0, out0);
	act = harden(t, 0.3, out1);
	REQUIRE(control && act);
	{
		double c0 = after_accuracy(control, 0), a0 = after_accuracy(act, 0);
		double c1 = after_accuracy(control, 1), a1 = after_accuracy(act, 1);

		fprintf(stderr, "  clean: control %.2f%%, ACT %.2f%%; at L2 radius 1: control %.2f%%, ACT %.2f%%\n",
			100 * c0, 100 * a0, 100 * c1, 100 * a1);
		CHECK_MSG(a0 >= c0 - 0.015, "ACT costs %.2f points of clean accuracy", 100 * (c0 - a0));
		CHECK_MSG(c0 - c1 >= 0.20, "the control loses only %.2f points at radius 1", 100 * (c0 - c1));
		CHECK_MSG(a1 >= c1 + 0.10, "ACT is only %.2f points above the control at radius 1", 100 * (a1 - c1));
	}
	/* the report: the curve, both studies, the hardened model reloads */
	CHECK_INT(json_array_size(json_object_get(json_object_get(act, "training"), "epochs")), 1);
	CHECK(json_is_object(json_object_get(act, "before")) && !json_object_get(json_object_get(act, "before"), "spec"));
	CHECK(json_number_value(json_object_get(json_object_get(act, "hardened"), "weight_change_l2")) > 0);
	CHECK_MSG(pc_onnx_load_file(out1, &g, &err) == 0, "%s", err.text);
	pc_graph_free(g);
	json_decref(control);
	json_decref(act);
	be_rmtree(dir);
}

/* Training-mode BatchNormalization: two SGD steps (plain and with ACT) on a
 * Conv-BN-ReLU-Linear network against PyTorch in train mode: losses,
 * weight changes and the running statistics. */
TEST(train_batchnorm_training_mode_matches_pytorch)
{
	char path[1024], x[1024], y[1024];
	struct pc_error err = {0};
	struct pc_dataset *d = NULL;
	json_t *ref, *c;
	size_t ci;

	snprintf(path, sizeof(path), "%s/" FIX "act_bn_op17.json", pc_test_root());
	REQUIRE_MSG((ref = json_load_file(path, 0, NULL)), "no %s", path);
	snprintf(x, sizeof(x), "%s/" FIX "sample64_u8.npy", pc_test_root());
	snprintf(y, sizeof(y), "%s/" FIX "labels64_i64.npy", pc_test_root());
	REQUIRE(pc_dataset_load(x, y, NULL, 0, &d, &err) == 0);
	json_array_foreach(json_object_get(ref, "cases"), ci, c)
	{
		const char *name = json_string_value(json_object_get(c, "name")), *key;
		struct pc_graph *g = NULL;
		struct pc_train_opts o;
		struct pc_trainer *tr = NULL;
		float *w0;
		json_t *tv;

		snprintf(path, sizeof(path), "%s/" FIX "cnn_bn_tiny_op17.onnx", pc_test_root());
		REQUIRE_MSG(pc_onnx_load_file(path, &g, &err) == 0, "%s", err.text);
		w0 = malloc((size_t)pc_graph_param_count(g) * sizeof(float));
		REQUIRE(w0);
		memcpy(w0, pc_graph_params(g), (size_t)pc_graph_param_count(g) * sizeof(float));
		pc_train_opts_default(&o);
		o.lr = 0.05;
		o.momentum = 0.9;
		o.act.epsilon = json_number_value(json_object_get(c, "epsilon"));
		REQUIRE(pc_trainer_new(g, &o, 2, &tr, &err) == 0);
		steps_match(t, tr, d, json_object_get(ref, "batches"), json_object_get(c, "steps"), o.lr,
			    o.act.epsilon > 0, name);
		json_object_foreach(json_object_get(c, "tensors"), key, tv)
		{
			int pi = pc_graph_find_param(g, key);
			int64_t count;

			if (pi >= 0) {
				const struct pc_param *p = pc_graph_param(g, pi);

				/* + 1e-6: a conv bias before a BatchNorm has no gradient at
				 * all, which float rounding leaves at 1e-8 and PyTorch's
				 * double at 1e-16 */
				tensor_matches(t, name, key, pc_trainer_weights(tr) + p->offset, w0 + p->offset, p->count, tv,
					       1e-7, 1e-6);
			} else {
				/* a running statistic: moved in the trainer's plan */
				const float *now = NULL;

				for (int i = 0; !now && i < pc_plan_stats_count(pc_trainer_stats(tr)); i++) {
					const char *sn;
					const float *data = pc_plan_stats(pc_trainer_stats(tr), i, &count, &sn);

					now = strcmp(sn, key) ? NULL : data;
				}

				REQUIRE_MSG(now, "%s: no tensor %s", name, key);
				tensor_matches(t, name, key, now, NULL, count, tv, 1e-7, 1e-6);
			}
		}
		pc_trainer_free(tr);
		free(w0);
		pc_graph_free(g);
	}
	pc_dataset_free(d);
	json_decref(ref);
}

/* The hardened file keeps what paracorr does not read: a field unknown to
 * its .proto comes back byte for byte. */
TEST(train_export_keeps_unknown_fields)
{
	static const unsigned char extra[] = {0x90, 0x03, 0x2a}; /* field 50, varint 42 */
	char path[1024];
	size_t len, out_len;
	char *src;
	unsigned char *buf, *out = NULL;
	struct pc_graph *g = NULL;
	struct pc_error err = {0};

	snprintf(path, sizeof(path), "%s/" FIX "mlp_op13.onnx", pc_test_root());
	REQUIRE((src = be_read_file(path, &len)));
	REQUIRE((buf = malloc(len + sizeof(extra))));
	memcpy(buf, src, len);
	memcpy(buf + len, extra, sizeof(extra));
	REQUIRE_MSG(pc_onnx_load_buffer(buf, len + sizeof(extra), &g, &err) == 0, "%s", err.text);
	REQUIRE(pc_onnx_save_weights_buffer(buf, len + sizeof(extra), g, pc_graph_params(g), NULL, &out, &out_len, &err) == 0);
	CHECK(memmem(out, out_len, extra, sizeof(extra)) != NULL);
	pc_graph_free(g);
	g = NULL;
	CHECK(pc_onnx_load_buffer(out, out_len, &g, &err) == 0);
	pc_graph_free(g);
	free(out);
	free(buf);
	free(src);
}

/* act.group: tensors and layers by name, refused by name when unknown. */
TEST(train_harden_group_names)
{
	char model[1024], x[1024], y[1024], text[2048], out[1100], dir[1024];
	struct pcd_job_files files = {0};
	struct pcd_job_opts o;
	/* a node name, report names (layer:, tensor:, a bare module); unknown
	 * names and a layer asked for as a tensor */
	static const char *const groups[] = {"[\"fc3.weight\", \"/fc1/Gemm\"]",
					     "[\"layer:fc1\", \"tensor:fc3.weight\", \"fc2\"]",
					     "[\"fc3.weight\", \"fc9\"]", "[\"tensor:fc1\"]"};

	snprintf(model, sizeof(model), "%s/" FIX "mlp_op13.onnx", pc_test_root());
	snprintf(x, sizeof(x), "%s/" FIX "sample64_u8.npy", pc_test_root());
	snprintf(y, sizeof(y), "%s/" FIX "labels64_i64.npy", pc_test_root());
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(out, sizeof(out), "%s/h.onnx", dir);
	files.model = model;
	files.inputs = files.train_inputs = x;
	files.labels = files.train_labels = y;
	pcd_job_opts_default(&o);
	o.model_out = out;
	o.timing_seconds = 0;
	for (int k = 0; k < 4; k++) {
		struct pc_spec spec;
		struct pc_error err = {0};
		json_t *root, *rep = NULL;
		char *rtext = NULL;
		int rc;

		snprintf(text, sizeof(text),
			 "{\"kind\": \"harden\", \"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, "
			 "\"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.5], \"random_trials\": 0, \"groups\": "
			 "[\"model\"]}, \"training\": {\"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"epochs\": 1, "
			 "\"batch_size\": 16, \"act\": {\"epsilon\": 0.2, \"steps\": 2, \"group\": %s}}}",
			 groups[k]);
		REQUIRE((root = json_loads(text, 0, NULL)));
		REQUIRE(pc_spec_parse(root, &spec, &err) == 0);
		json_decref(root);
		rc = pcd_job_run_spec(&spec, &files, &o, &rtext, &rep, &err);
		if (k < 2) {
			CHECK_MSG(rc == 0, "%s: %s", err.where, err.text);
			CHECK(rep && json_number_value(json_object_get(json_object_get(rep, "hardened"), "weight_change_l2")) > 0);
			/* ACT on the group raised the loss at w + a above the loss at w */
			CHECK(rep && json_number_value(json_object_get(json_array_get(json_object_get(json_object_get(rep, "training"),
												      "epochs"),
										    0),
								   "loss_corrupted")) >
					     json_number_value(json_object_get(
						     json_array_get(json_object_get(json_object_get(rep, "training"), "epochs"), 0), "loss")));
		} else if (k == 2) {
			CHECK_INT(rc, PC_ERR_INVALID);
			CHECK_MSG(!strcmp(err.where, "training.act.group[1]") && strstr(err.text, "fc9"), "%s: %s", err.where,
				  err.text);
		} else {
			CHECK_INT(rc, PC_ERR_INVALID);
			CHECK_MSG(!strcmp(err.where, "training.act.group[0]") && strstr(err.text, "tensor:fc1"), "%s: %s",
				  err.where, err.text);
		}
		free(rtext);
		json_decref(rep);
		pc_spec_free(&spec);
	}
	be_rmtree(dir);
}
