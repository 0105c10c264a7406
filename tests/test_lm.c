/* The paper's language-model result on the two character LMs of
 * tests/reference/make_lm.py (a 2-layer LSTM and a 2-block GPT, both with a
 * tied embedding and head), checked against PyTorch.
 *
 * The study runs through pc_study_run with the spec the README's table
 * comes from (api/examples/lm-{lstm,gpt}.json: whole model, L2, five radii,
 * 5 random trials) on the 64 validation sequences. PyTorch's numbers are
 * tests/reference/make_lm_sweep.py's (fixtures/zoo/lm_sweep.json): the
 * loss at w + eps g/||g||_2 over every corruptible weight, in float32.
 *
 * Checked: the clean loss, the first-order estimate eps ||g||_2 and the
 * realised gradient-corruption loss at every radius within 1e-3 relative;
 * and at the radius where PyTorch's gradient corruption multiplies the
 * perplexity by at least 1.5, paracorr's does too while its random
 * corruption of the same size moves the mean perplexity by less than 1%. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "job.h"
#include "be_util.h"
#include "gradcheck.h"
#include "paracorr/analysis.h"
#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "paracorr/spec.h"
#include "paracorr/train.h"
#include "test.h"

#define LM_ZOO "tests/reference/fixtures/zoo/"
/* The unpacked LM files are ~300 KB; anything near this is not ours. */
#define LM_MAX_ONNX (16u << 20)

static double rel_err(double a, double b)
{
	return fabs(a - b) / (fabs(b) > 1e-12 ? fabs(b) : 1e-12);
}

static double jnum2(const json_t *o, const char *a, const char *b)
{
	const json_t *x = json_object_get(o, a);

	return json_number_value(b ? json_object_get(x, b) : x);
}

/* The gzipped ONNX file LM_ZOO/name loaded; NULL with a failure recorded. */
static struct pc_graph *lm_load(struct pc_test *t, const char *name)
{
	char path[1024], msg[800];
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	unsigned char *buf = malloc(LM_MAX_ONNX);
	gzFile in;
	int n;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/" LM_ZOO "%s", pc_test_root(), name);
	in = gzopen(path, "rb");
	if (!buf || !in) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: cannot open", path);
		goto out;
	}
	while (len < LM_MAX_ONNX && (n = gzread(in, buf + len, (unsigned)(LM_MAX_ONNX - len))) > 0)
		len += (size_t)n;
	if (len == 0 || len >= LM_MAX_ONNX) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: unpacks to %zu bytes", path, len);
		goto out;
	}
	if (pc_onnx_load_buffer(buf, len, &g, &err))
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", name, pc_error_format(&err, msg, sizeof(msg)));
out:
	if (in)
		gzclose(in);
	free(buf);
	return g;
}

/* The spec file (relative to the root) parsed, and its dataset loaded as
 * the model takes it (paths in the spec are relative to the root). */
static int lm_spec_data(struct pc_test *t, const struct pc_graph *g, const char *spec_path, struct pc_spec *spec,
			struct pc_dataset **d)
{
	char path[1024], xp[1024], yp[1024], msg[800];
	struct pc_error err = {0};
	struct pc_preprocess pp;

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), spec_path);
	if (pc_spec_parse_file(path, spec, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", spec_path, pc_error_format(&err, msg, sizeof(msg)));
		return -1;
	}
	snprintf(xp, sizeof(xp), "%s/%s", pc_test_root(), spec->inputs);
	snprintf(yp, sizeof(yp), "%s/%s", pc_test_root(), spec->labels ? spec->labels : "");
	pp = spec->pp;
	if (pc_eval_data_for(g, &pp, &err) || pc_dataset_load(xp, yp, &pp, spec->limit, d, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", spec_path, pc_error_format(&err, msg, sizeof(msg)));
		pc_spec_free(spec);
		return -1;
	}
	return 0;
}

static json_t *lm_sweep_ref(struct pc_test *t)
{
	char path[1024];
	json_error_t jerr;
	json_t *r;

	snprintf(path, sizeof(path), "%s/" LM_ZOO "lm_sweep.json", pc_test_root());
	r = json_load_file(path, 0, &jerr);
	if (!r)
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
	return r;
}

/* The study of `family`'s spec against make_lm_sweep.py's numbers. */
static void lm_sweep(struct pc_test *t, const char *family)
{
	json_t *all = lm_sweep_ref(t), *report = NULL;
	const json_t *ref = json_object_get(all, family), *rows, *results;
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_spec spec;
	struct pc_study_opts o;
	struct pc_error err = {0};
	double clean_loss, clean_ppl, gap_eps, gap_grad = NAN, gap_rand = NAN, worst = 0;
	int spec_ok = 0, matched = 0;
	char msg[800];
	size_t i;

	if (!ref) {
		pc_test_fail(t, __FILE__, __LINE__, "lm_sweep.json has no %s", family);
		goto out;
	}
	if (!(g = lm_load(t, json_string_value(json_object_get(ref, "model")))))
		goto out;
	if (lm_spec_data(t, g, json_string_value(json_object_get(ref, "spec")), &spec, &d))
		goto out;
	spec_ok = 1;
	CHECK_INT(pc_graph_param_count(g), json_integer_value(json_object_get(ref, "parameters")));
	pc_study_opts_default(&o);
	o.threads = 2;
	o.timing_seconds = 0;
	if (pc_study_run(g, d, &spec, &o, &report, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: study: %s", family, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	clean_loss = jnum2(report, "clean", "loss");
	clean_ppl = jnum2(report, "clean", "perplexity");
	CHECK_MSG(rel_err(clean_loss, jnum2(ref, "clean", "loss")) <= 1e-4, "%s: clean loss %.9g, PyTorch %.9g", family,
		  clean_loss, jnum2(ref, "clean", "loss"));
	CHECK_CLOSE(clean_ppl, exp(clean_loss), 0, 1e-12);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(report, "dataset"), "tokens")),
		  json_integer_value(json_object_get(ref, "tokens")));
	rows = json_object_get(ref, "sweep");
	results = json_object_get(report, "results");
	gap_eps = jnum2(ref, "gap_epsilon", NULL);
	CHECK_INT(json_array_size(results), json_array_size(rows));
	for (i = 0; i < json_array_size(rows) && i < json_array_size(results); i++) {
		const json_t *want = json_array_get(rows, i), *got = json_array_get(results, i);
		const json_t *gr = json_object_get(got, "gradient"), *rd = json_object_get(got, "random");
		double eps = jnum2(want, "epsilon", NULL), loss = jnum2(gr, "loss", NULL);

		CHECK_MSG(strcmp(json_string_value(json_object_get(got, "group")), "model") == 0 &&
			      jnum2(got, "epsilon", NULL) == eps,
			  "%s: result %zu is not the model at eps %g", family, i, eps);
		CHECK_MSG(rel_err(loss, jnum2(want, "loss", NULL)) <= 1e-3,
			  "%s eps %g: gradient corruption loss %.9g, PyTorch %.9g (relative %.2g)", family, eps, loss,
			  jnum2(want, "loss", NULL), rel_err(loss, jnum2(want, "loss", NULL)));
		CHECK_MSG(rel_err(jnum2(got, "first_order", NULL), jnum2(want, "first_order", NULL)) <= 1e-3,
			  "%s eps %g: first-order estimate %.9g, PyTorch eps ||g|| %.9g", family, eps,
			  jnum2(got, "first_order", NULL), jnum2(want, "first_order", NULL));
		/* accuracy: tokens whose top two outputs are close may flip
		 * under float rounding; a few of 2036 at most */
		CHECK_CLOSE(jnum2(gr, "accuracy", NULL), jnum2(want, "accuracy", NULL), 3e-3, 0);
		CHECK_INT(json_integer_value(json_object_get(rd, "trials")), 5);
		if (rel_err(loss, jnum2(want, "loss", NULL)) <= 1e-3)
			matched++;
		worst = fmax(worst, rel_err(loss, jnum2(want, "loss", NULL)));
		if (eps == gap_eps) {
			gap_grad = jnum2(gr, "perplexity", NULL);
			gap_rand = jnum2(rd, "perplexity_mean", NULL);
		}
	}
	CHECK_INT(matched, json_array_size(rows));
	REQUIRE_MSG(!isnan(gap_grad), "%s: no result at the gap radius %g", family, gap_eps);
	CHECK_MSG(gap_grad >= 1.5 * clean_ppl, "%s eps %g: gradient corruption perplexity %.4g, clean %.4g (< 1.5x)",
		  family, gap_eps, gap_grad, clean_ppl);
	CHECK_MSG(fabs(gap_rand - clean_ppl) / clean_ppl < 0.01,
		  "%s eps %g: random corruption mean perplexity %.6g, clean %.6g (>= 1%%)", family, gap_eps, gap_rand,
		  clean_ppl);
	printf("  %s: %d radii within 1e-3 of PyTorch (largest relative error %.2g); at eps %g perplexity %.3f -> "
	       "%.3f (x%.2f) by the gradient, %.4f (%+.3f%%) by random corruption\n",
	       family, matched, worst, gap_eps, clean_ppl, gap_grad, gap_grad / clean_ppl, gap_rand,
	       100.0 * (gap_rand - clean_ppl) / clean_ppl);
out:
	json_decref(report);
	if (spec_ok)
		pc_spec_free(&spec);
	pc_dataset_free(d);
	pc_graph_free(g);
	json_decref(all);
}

TEST(lm_lstm_gradient_sweep_matches_torch)
{
	lm_sweep(t, "lstm");
}

TEST(lm_gpt_gradient_sweep_matches_torch)
{
	lm_sweep(t, "gpt");
}

/* The whole LM's weight gradient (every tensor, the tied embedding and head
 * included) by central differences of sum(logits * R) over all N*T*V
 * outputs, on random token ids below the embedding's rows. */
static void lm_gradcheck(struct pc_test *t, const char *name, int samples)
{
	struct pc_graph *g = lm_load(t, name);
	struct gc_opts o = {0};
	struct gc_stats st;
	int checked, expected = 0;

	if (!g)
		return;
	o.batch = 2;
	/* Float32 rounding of the 2*32*87 logits (|z| up to ~10) puts noise of
	 * ~1e-4 on the summed objective, ~5e-3 on a difference quotient of step
	 * 1e-2 (a key bias, whose true gradient is 0 by softmax's shift
	 * invariance, comes out at 2e-3); a larger step meets the trained
	 * models' curvature (3% off at 5e-2). Most checked gradients are O(0.1)
	 * to O(10): a missing use of the tied weight or a dropped position is
	 * far outside these bounds. */
	o.eps = 1e-2;
	o.atol = 6e-3;
	o.rtol = 2e-2;
	o.samples = samples;
	o.seed = 11;
	for (int k = 0; k < pc_graph_param_tensors(g); k++) {
		int64_t c = pc_graph_param(g, k)->count;
		expected += c < samples ? (int)c : samples;
	}
	checked = gc_check_stats(t, g, &o, &st);
	CHECK_INT(checked, expected);
	/* the bounds are loose for noise; most gradients must be well above them */
	CHECK_MSG(2 * st.significant > checked, "%s: only %d of %d gradients exceed 10 * atol", name, st.significant,
		  checked);
	printf("  %s: %d weights in %d tensors checked against central differences (%d above 10 * atol), "
	       "largest error %.2g\n",
	       name, checked, pc_graph_param_tensors(g), st.significant, st.worst);
	pc_graph_free(g);
}

TEST(lm_lstm_gradcheck_whole_model)
{
	lm_gradcheck(t, "lm_lstm_op17_preserve.onnx.gz", 24);
}

TEST(lm_gpt_gradcheck_whole_model)
{
	lm_gradcheck(t, "lm_gpt_op17_preserve.onnx.gz", 8);
}

/* ---- ACT hardening of the LSTM LM through a harden job ---- */

/* api/examples/lm-lstm-harden.json made small enough for a test (512 of
 * its training sequences, one epoch, lr 3e-3, the study at radius 1 with 2
 * random trials) with ACT radius eps, run as a harden job; the report
 * (new reference), the hardened model written to out. */
static json_t *lm_harden(struct pc_test *t, double eps, const char *out)
{
	char path[1024], model[1024], gz[1024], msg[800], xp[1024], yp[1024], txp[1024], typ[1024];
	json_error_t jerr;
	json_t *root, *tr, *report = NULL;
	struct pc_spec spec;
	struct pc_error err = {0};
	struct pcd_job_opts o;
	struct pcd_job_files files = {0};
	char *text = NULL;
	int spec_ok = 0;

	snprintf(path, sizeof(path), "%s/api/examples/lm-lstm-harden.json", pc_test_root());
	if (!(root = json_load_file(path, 0, &jerr))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
		return NULL;
	}
	tr = json_object_get(root, "training");
	json_object_set_new(tr, "limit", json_integer(512));
	json_object_set_new(tr, "epochs", json_integer(1));
	json_object_set_new(tr, "lr", json_real(3e-3));
	json_object_set_new(json_object_get(tr, "act"), "epsilon", json_real(eps));
	json_object_set_new(json_object_get(root, "corruption"), "epsilons", json_pack("[f]", 1.0));
	json_object_set_new(json_object_get(root, "corruption"), "random_trials", json_integer(2));
	if (pc_spec_parse(root, &spec, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "spec: %s", pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	spec_ok = 1;
	/* the model unpacked next to the hardened one (the job rewrites it) */
	snprintf(gz, sizeof(gz), "%s/" LM_ZOO "lm_lstm_op17_preserve.onnx.gz", pc_test_root());
	snprintf(model, sizeof(model), "%s.src.onnx", out);
	{
		gzFile in = gzopen(gz, "rb");
		FILE *f = fopen(model, "wb");
		char buf[1 << 16];
		int n = 0;
		while (in && f && (n = gzread(in, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, (size_t)n, f);
		if (in)
			gzclose(in);
		if (!in || !f || n < 0 || fclose(f)) {
			pc_test_fail(t, __FILE__, __LINE__, "cannot unpack %s into %s", gz, model);
			goto out;
		}
	}
	snprintf(xp, sizeof(xp), "%s/%s", pc_test_root(), spec.inputs);
	snprintf(yp, sizeof(yp), "%s/%s", pc_test_root(), spec.labels);
	snprintf(txp, sizeof(txp), "%s/%s", pc_test_root(), spec.training.inputs);
	snprintf(typ, sizeof(typ), "%s/%s", pc_test_root(), spec.training.labels);
	files.model = model;
	files.inputs = xp;
	files.labels = yp;
	files.train_inputs = txp;
	files.train_labels = typ;
	pcd_job_opts_default(&o);
	o.threads = 2;
	o.timing_seconds = 0;
	o.model_out = out;
	if (pcd_job_run_spec(&spec, &files, &o, &text, &report, &err))
		pc_test_fail(t, __FILE__, __LINE__, "harden eps %g: %s", eps, pc_error_format(&err, msg, sizeof(msg)));
out:
	free(text);
	if (spec_ok)
		pc_spec_free(&spec);
	json_decref(root);
	return report;
}

/* A study's clean perplexity, or (radius > 0) its gradient corruption's
 * perplexity at that radius, or (random) its random mean perplexity. */
static double study_ppl(const json_t *study, double radius, int random)
{
	const json_t *results = json_object_get(study, "results");

	if (radius == 0)
		return jnum2(study, "clean", "perplexity");
	for (size_t i = 0; i < json_array_size(results); i++) {
		const json_t *r = json_array_get(results, i);
		if (jnum2(r, "epsilon", NULL) == radius)
			return jnum2(json_object_get(r, random ? "random" : "gradient"),
				     random ? "perplexity_mean" : "perplexity", NULL);
	}
	return NAN;
}

/* The same fine-tuning with and without ACT (radius 1): ACT's model is
 * clearly less fragile at the corruption radius it trained against, its
 * clean perplexity is not worse than the control's by more than 3%, and the
 * job's report speaks in tokens. */
TEST(lm_lstm_act_harden_job)
{
	char dir[1024], out0[1100], out1[1100], msg[800];
	json_t *control = NULL, *act = NULL;
	struct pc_graph *g = NULL;
	struct pc_error err = {0};

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(out0, sizeof(out0), "%s/control.onnx", dir);
	snprintf(out1, sizeof(out1), "%s/act.onnx", dir);
	control = lm_harden(t, 0, out0);
	act = lm_harden(t, 1.0, out1);
	if (!control || !act)
		goto out;
	{
		const json_t *ca = json_object_get(control, "after"), *aa = json_object_get(act, "after");
		const json_t *ep = json_array_get(json_object_get(json_object_get(act, "training"), "epochs"), 0);
		double c0 = study_ppl(ca, 0, 0), a0 = study_ppl(aa, 0, 0), c1 = study_ppl(ca, 1, 0),
		       a1 = study_ppl(aa, 1, 0), ar = study_ppl(aa, 1, 1);
		double b0 = study_ppl(json_object_get(act, "before"), 0, 0);

		printf("  clean perplexity: before %.3f, control %.3f, ACT %.3f; under L2 gradient corruption of "
		       "radius 1: control %.3f, ACT %.3f (random %.3f)\n",
		       b0, c0, a0, c1, a1, ar);
		CHECK_MSG(a1 <= 0.9 * c1, "ACT's perplexity at radius 1 is %.3f, the control's %.3f: not 10%% lower",
			  a1, c1);
		CHECK_MSG(a0 <= 1.03 * c0, "ACT's clean perplexity %.3f is > 3%% above the control's %.3f", a0, c0);
		CHECK_MSG(fabs(ar - a0) / a0 < 0.01,
			  "random corruption moves the hardened model's perplexity %.3f to %.3f", a0, ar);
		CHECK_CLOSE(b0, 6.800657, 0, 1e-5); /* make_lm.py's clean perplexity */
		/* the training set is counted in tokens, its curve in perplexity */
		CHECK_INT(json_integer_value(json_object_get(json_object_get(act, "training"), "samples")), 512);
		CHECK_INT(json_integer_value(json_object_get(json_object_get(act, "training"), "tokens")), 512 * 32);
		CHECK_INT(json_integer_value(json_object_get(json_object_get(act, "training"), "steps")), 16);
		CHECK_CLOSE(jnum2(ep, "perplexity", NULL), exp(jnum2(ep, "loss", NULL)), 0, 1e-12);
		CHECK_MSG(jnum2(ep, "loss_corrupted", NULL) > jnum2(ep, "loss", NULL),
			  "the epoch's loss at w + a (%.4f) is not above the loss at w (%.4f)",
			  jnum2(ep, "loss_corrupted", NULL), jnum2(ep, "loss", NULL));
	}
	/* the hardened file reloads with int64 token input and its weights */
	CHECK_MSG(pc_onnx_load_file(out1, &g, &err) == 0, "%s", pc_error_format(&err, msg, sizeof(msg)));
	if (g)
		CHECK_INT(pc_graph_param_count(g), 72215);
out:
	pc_graph_free(g);
	json_decref(control);
	json_decref(act);
	be_rmtree(dir);
}

/* ---- one ACT step against PyTorch ---- */

/* make_lm_act_step.py's step: SGD (no momentum) at lr 0.1 with ACT (l2,
 * radius 0.5, the whole model, lambda 1) on validation sequences 56..63
 * (int64 tokens; the last has 12 positions labelled -100). The losses at w
 * and w + a and every tensor's weight change against PyTorch's. */
static void lm_act_step(struct pc_test *t, const char *family)
{
	char path[1024], msg[800];
	json_error_t jerr;
	json_t *all;
	const json_t *ref, *tensors, *val;
	const char *key;
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_spec spec;
	struct pc_train_opts o;
	struct pc_trainer *tr = NULL;
	struct pc_train_stats st;
	struct pc_error err = {0};
	int64_t idx[8];
	float *w0 = NULL;
	double worst = 0;
	int spec_ok = 0, seen = 0;

	snprintf(path, sizeof(path), "%s/" LM_ZOO "lm_act_step.json", pc_test_root());
	if (!(all = json_load_file(path, 0, &jerr))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
		return;
	}
	ref = json_object_get(all, family);
	tensors = json_object_get(ref, "tensors");
	if (!ref || json_array_size(json_object_get(all, "batch")) != 8) {
		pc_test_fail(t, __FILE__, __LINE__, "lm_act_step.json: no %s step of 8 sequences", family);
		goto out;
	}
	for (int i = 0; i < 8; i++)
		idx[i] = json_integer_value(json_array_get(json_object_get(all, "batch"), (size_t)i));
	if (!(g = lm_load(t, json_string_value(json_object_get(ref, "model")))))
		goto out;
	if (lm_spec_data(t, g, "api/examples/lm-lstm.json", &spec, &d))
		goto out;
	spec_ok = 1;
	pc_train_opts_default(&o);
	o.batch_size = 8;
	o.optimizer = PC_OPT_SGD;
	o.momentum = 0;
	o.lr = jnum2(all, "lr", NULL);
	o.act.p = 2;
	o.act.epsilon = jnum2(all, "epsilon", NULL);
	o.act.lambda = 1;
	if (!(w0 = malloc((size_t)pc_graph_param_count(g) * sizeof(float))))
		goto out;
	memcpy(w0, pc_graph_params(g), (size_t)pc_graph_param_count(g) * sizeof(float));
	if (pc_trainer_new(g, &o, 2, &tr, &err) || pc_trainer_step(tr, d, idx, 8, o.lr, &st, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", family, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	CHECK(st.sequence);
	CHECK_INT(st.tokens, json_integer_value(json_object_get(ref, "tokens")));
	CHECK_CLOSE(st.loss, jnum2(ref, "loss", NULL), 0, 1e-5);
	CHECK_CLOSE(st.loss_corrupted, jnum2(ref, "loss_corrupted", NULL), 0, 1e-5);
	json_object_foreach((json_t *)tensors, key, val)
	{
		int k = pc_graph_find_param(g, key);
		const struct pc_param *pt;
		const float *w = pc_trainer_weights(tr);
		double l2 = 0;

		if (k < 0) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: PyTorch's weight %s is not a parameter here", family,
				     key);
			continue;
		}
		pt = pc_graph_param(g, k);
		CHECK_INT(pt->count, json_integer_value(json_object_get(val, "numel")));
		for (int64_t i = 0; i < pt->count; i++) {
			double dlt = (double)w[pt->offset + i] - w0[pt->offset + i];
			l2 += dlt * dlt;
		}
		l2 = sqrt(l2);
		/* a weight change is lr * g1 rounded into float32 weights: its
		 * norm to 1e-4, single elements to 1e-4 of the tensor's norm
		 * (a change below a weight's ulp is lost on both sides) */
		CHECK_MSG(rel_err(l2, jnum2(val, "delta_l2", NULL)) <= 1e-4, "%s %s: weight change %.9g, PyTorch %.9g",
			  family, key, l2, jnum2(val, "delta_l2", NULL));
		worst = fmax(worst, rel_err(l2, jnum2(val, "delta_l2", NULL)));
		for (size_t i = 0; i < json_array_size(json_object_get(val, "delta_first")); i++) {
			double want = json_number_value(json_array_get(json_object_get(val, "delta_first"), i));
			double got = (double)w[pt->offset + (int64_t)i] - w0[pt->offset + (int64_t)i];
			CHECK_MSG(fabs(got - want) <= 1e-4 * jnum2(val, "delta_l2", NULL) + 1e-8,
				  "%s %s[%zu]: change %.9g, PyTorch %.9g", family, key, i, got, want);
		}
		seen++;
	}
	CHECK_INT(seen, pc_graph_param_tensors(g));
	printf("  %s: one ACT step on %lld tokens: loss %.6f, at w + a %.6f; %d weight changes within %.2g of "
	       "PyTorch\n",
	       family, (long long)st.tokens, st.loss, st.loss_corrupted, seen, worst);
out:
	pc_trainer_free(tr);
	free(w0);
	if (spec_ok)
		pc_spec_free(&spec);
	pc_dataset_free(d);
	pc_graph_free(g);
	json_decref(all);
}

TEST(lm_lstm_act_step_matches_torch)
{
	lm_act_step(t, "lstm");
}

TEST(lm_gpt_act_step_matches_torch)
{
	lm_act_step(t, "gpt");
}

/* Token ids have no gradient: asking gradcheck for one is an error it
 * reports (into a scratch record here, so this test passes when it does),
 * not a read of a NULL float input. */
TEST(lm_gradcheck_refuses_an_input_gradient_of_token_ids)
{
	struct pc_graph *g = lm_load(t, "lm_lstm_op17_preserve.onnx.gz");
	struct pc_test scratch = {"(expected) gradcheck of token ids", 0, 0};
	struct gc_opts o = {0};

	REQUIRE(g);
	o.batch = 1;
	o.eps = 1e-2;
	o.samples = 1;
	o.check_input = 1;
	CHECK_INT(gc_check(&scratch, g, &o), 0);
	CHECK_INT(scratch.failures, 1);
	pc_graph_free(g);
}
