/* The corruption study on the committed fixtures: its shortcuts change no
 * number, the weights come back bit for bit, the report is reproducible,
 * and the numbers behave as method.md says they must. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/analysis.h"
#include "paracorr/onnx.h"
#include "paracorr/stats.h"
#include "test.h"


struct fixture {
	struct pc_graph *g;
	struct pc_dataset *d;
};

static int load_fixture(struct pc_test *t, const char *model, int64_t limit, struct fixture *f)
{
	struct pc_error err = {0};
	char path[512], msg[800];

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/" FIX "%s", pc_test_root(), model);
	if (pc_onnx_load_file(path, &f->g, &err) ||
	    pc_dataset_load(T10K_X, T10K_Y, NULL, limit, &f->d, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		pc_graph_free(f->g);
		return 0;
	}
	return 1;
}

static void free_fixture(struct fixture *f)
{
	pc_dataset_free(f->d);
	pc_graph_free(f->g);
}

/* Runs spec_text (model and dataset filled in) and returns the report. */
static json_t *study(struct pc_test *t, struct fixture *f, const char *corruption, int64_t limit, int threads,
		     int shortcuts)
{
	char text[2048], msg[800];
	struct pc_spec spec;
	struct pc_error err = {0};
	struct pc_study_opts o;
	json_error_t jerr;
	json_t *root, *report = NULL;

	snprintf(text, sizeof(text),
		 "{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"limit\": %lld,"
		 " \"batch_size\": 64, \"seed\": 3, \"corruption\": %s}",
		 (long long)limit, corruption);
	root = json_loads(text, 0, &jerr);
	if (!root) {
		pc_test_fail(t, __FILE__, __LINE__, "bad test spec: %s", jerr.text);
		return NULL;
	}
	if (pc_spec_parse(root, &spec, &err)) {
		json_decref(root);
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		return NULL;
	}
	json_decref(root);
	pc_study_opts_default(&o);
	o.threads = threads;
	o.shortcuts = shortcuts;
	o.timing_seconds = 0;
	if (pc_study_run(f->g, f->d, &spec, &o, &report, &err))
		pc_test_fail(t, __FILE__, __LINE__, "study: %s", pc_error_format(&err, msg, sizeof(msg)));
	pc_spec_free(&spec);
	return report;
}

static double num(json_t *row, const char *a, const char *b)
{
	json_t *x = json_object_get(row, a);
	return json_number_value(b ? json_object_get(x, b) : x);
}

/* The prefix cache and the linear-layer reuse are exact up to rounding:
 * every number matches a study that recomputes everything. Also covers the
 * three group kinds, several norms, sparsity and multi-step. */
TEST(analysis_shortcuts_change_nothing)
{
	struct fixture f;
	const char *c = "[{\"norms\": [\"l2\", \"linf\", 3], \"epsilons\": [0.05, 0.5], \"sparsity\": [0, 50],"
			" \"random_trials\": 2, \"groups\": [\"model\", \"tensor\", \"layer\"]},"
			" {\"norms\": [\"l1\"], \"epsilons\": [0.5], \"steps\": 3, \"random_trials\": 1,"
			" \"groups\": [\"layer\"]}]";
	json_t *fast, *slow;
	size_t i;
	json_t *row;

	if (!load_fixture(t, "cnn_op17.onnx", 300, &f))
		return;
	fast = study(t, &f, c, 300, 2, 1);
	slow = study(t, &f, c, 300, 1, 0);
	REQUIRE(fast && slow);
	REQUIRE(json_array_size(json_object_get(fast, "results")) == json_array_size(json_object_get(slow, "results")));
	/* model + 10 tensors + 5 layers, 3 norms x 2 sparsity x 2 radii; then 5 layers x 1 */
	CHECK_INT(json_array_size(json_object_get(fast, "results")), 16 * 12 + 5);
	CHECK(num(json_object_get(fast, "timing"), "flops_saved", NULL) > 0);
	CHECK(num(json_object_get(slow, "timing"), "flops_saved", NULL) == 0);
	json_array_foreach(json_object_get(fast, "results"), i, row)
	{
		json_t *other = json_array_get(json_object_get(slow, "results"), i);
		CHECK_CLOSE(num(row, "gradient", "loss"), num(other, "gradient", "loss"), 1e-6, 1e-5);
		CHECK_CLOSE(num(row, "gradient", "accuracy"), num(other, "gradient", "accuracy"), 1.0 / 300 + 1e-9, 0);
		if (json_is_object(json_object_get(row, "random")))
			CHECK_CLOSE(num(row, "random", "loss_mean"), num(other, "random", "loss_mean"), 1e-6, 1e-5);
		CHECK(num(row, "first_order", NULL) == num(other, "first_order", NULL));
	}
	json_decref(fast);
	json_decref(slow);
	free_fixture(&f);
}

/* The same spec and seed give the same bytes, whatever the thread count. */
TEST(analysis_report_is_reproducible)
{
	struct fixture f;
	const char *c = "{\"norms\": [\"l2\"], \"epsilons\": [0.1, 1], \"random_trials\": 3, \"sparsity\": [0, 20],"
			" \"groups\": [\"model\", \"tensor\"]}";
	json_t *a, *b;
	char *sa, *sb;

	if (!load_fixture(t, "mlp_op13.onnx", 500, &f))
		return;
	a = study(t, &f, c, 500, 1, 1);
	b = study(t, &f, c, 500, 2, 1);
	REQUIRE(a && b);
	sa = json_dumps(a, JSON_REAL_PRECISION(17) | JSON_SORT_KEYS);
	sb = json_dumps(b, JSON_REAL_PRECISION(17) | JSON_SORT_KEYS);
	CHECK(sa && sb && strcmp(sa, sb) == 0);
	free(sa);
	free(sb);
	json_decref(a);
	json_decref(b);
	free_fixture(&f);
}

/* method.md: the realised loss change approaches the first-order estimate
 * as eps shrinks; the gradient corruption beats every random trial. */
TEST(analysis_first_order_and_random_gap)
{
	struct fixture f;
	const char *c = "{\"norms\": [\"l2\"], \"epsilons\": [0.0003, 0.003, 0.03, 1.0], \"random_trials\": 4,"
			" \"groups\": [\"model\"]}";
	json_t *r, *rows;
	double ratio[4];

	if (!load_fixture(t, "cnn_op17.onnx", 1000, &f))
		return;
	r = study(t, &f, c, 1000, 2, 1);
	REQUIRE(r);
	rows = json_object_get(r, "results");
	REQUIRE(json_array_size(rows) == 4);
	for (int e = 0; e < 4; e++) {
		json_t *row = json_array_get(rows, (size_t)e);
		ratio[e] = num(row, "gradient", "loss_change") / num(row, "first_order", NULL);
		CHECK(num(row, "first_order", NULL) > 0);
		/* the worst random trial does less than the gradient direction */
		CHECK(num(row, "random", "loss_max") - num(r, "clean", "loss") < num(row, "gradient", "loss_change"));
	}
	CHECK_MSG(fabs(ratio[0] - 1.0) < 0.02, "ratio at eps 3e-4: %g", ratio[0]);
	CHECK_MSG(fabs(ratio[0] - 1.0) <= fabs(ratio[2] - 1.0), "ratios %g %g", ratio[0], ratio[2]);
	/* a large radius breaks the model; random corruption barely moves it */
	CHECK(num(json_array_get(rows, 3), "gradient", "accuracy") < num(r, "clean", "accuracy") - 0.2);
	CHECK(num(json_array_get(rows, 3), "random", "accuracy_mean") > num(r, "clean", "accuracy") - 0.05);
	json_decref(r);
	free_fixture(&f);
}

/* A ranking row for each non-model group and setting, sorted. */
TEST(analysis_ranking_sorted)
{
	struct fixture f;
	json_t *r, *row;
	size_t i;
	double last = INFINITY;

	if (!load_fixture(t, "cnn_op17.onnx", 200, &f))
		return;
	r = study(t, &f, "{\"norms\": [\"linf\"], \"epsilons\": [0.01], \"random_trials\": 0, \"groups\": [\"tensor\"]}",
		  200, 1, 1);
	REQUIRE(r);
	CHECK_INT(json_array_size(json_object_get(r, "ranking")), 10);
	json_array_foreach(json_object_get(r, "ranking"), i, row)
	{
		CHECK(num(row, "loss_change", NULL) <= last);
		CHECK_INT(json_integer_value(json_object_get(row, "rank")), i + 1);
		last = num(row, "loss_change", NULL);
	}
	json_decref(r);
	free_fixture(&f);
}

/* The result row for (group, norm, eps); with_random: one that ran random
 * trials (the spec's blocks may repeat a setting without them). */
static json_t *find_result(json_t *report, const char *group, const char *norm, double eps, int with_random)
{
	size_t i;
	json_t *row;

	json_array_foreach(json_object_get(report, "results"), i, row)
	{
		json_t *n = json_object_get(row, "norm");
		if (strcmp(json_string_value(json_object_get(row, "group")), group) == 0 && json_is_string(n) &&
		    strcmp(json_string_value(n), norm) == 0 && fabs(num(row, "epsilon", NULL) - eps) <= 1e-12 * eps &&
		    (!with_random || json_is_object(json_object_get(row, "random"))))
			return row;
	}
	return NULL;
}

/* Against PyTorch (tests/reference/make_analysis_refs.py): the realised
 * loss and accuracy of gradient-based corruption within 1e-3 relative, for
 * L2 and Linf at several radii, the model and two single tensors; random
 * corruption's mean accuracy within the sampling noise of PyTorch's. */
TEST(analysis_matches_pytorch)
{
	struct fixture f;
	char path[512], corruption[1024];
	json_error_t jerr;
	json_t *ref, *r, *row;
	size_t i;
	int compared = 0;

	snprintf(path, sizeof(path), "%s/" FIX "analysis_cnn_op17.json", pc_test_root());
	ref = json_load_file(path, 0, &jerr);
	REQUIRE(ref);
	if (!load_fixture(t, "cnn_op17.onnx", json_integer_value(json_object_get(ref, "samples")), &f)) {
		json_decref(ref);
		return;
	}
	snprintf(corruption, sizeof(corruption),
		 "[{\"groups\": [\"model\", \"tensor\"], \"norms\": [\"l2\"], \"epsilons\": [0.01, 0.1, 0.5],"
		 " \"random_trials\": 0},"
		 " {\"groups\": [\"model\", \"tensor\"], \"norms\": [\"linf\"], \"epsilons\": [0.0002, 0.001, 0.005],"
		 " \"random_trials\": 0},"
		 " {\"groups\": [\"model\"], \"norms\": [\"l2\"], \"epsilons\": [0.5, 2.0], \"random_trials\": %d}]",
		 (int)json_integer_value(json_object_get(json_array_get(json_object_get(ref, "random"), 0), "trials")));
	r = study(t, &f, corruption, json_integer_value(json_object_get(ref, "samples")), 2, 1);
	if (!r)
		goto out;
	CHECK_CLOSE(num(r, "clean", "loss"), num(ref, "clean", "loss"), 0, 1e-4);
	CHECK(num(r, "clean", "accuracy") == num(ref, "clean", "accuracy"));
	json_array_foreach(json_object_get(ref, "gradient"), i, row)
	{
		json_t *mine = find_result(r, json_string_value(json_object_get(row, "group")),
					   json_string_value(json_object_get(row, "norm")), num(row, "epsilon", NULL), 0);
		if (!mine) {
			pc_test_fail(t, __FILE__, __LINE__, "no result for %s %s %g",
				     json_string_value(json_object_get(row, "group")),
				     json_string_value(json_object_get(row, "norm")), num(row, "epsilon", NULL));
			continue;
		}
		compared++;
		CHECK_CLOSE(num(mine, "first_order", NULL), num(row, "first_order", NULL), 0, 1e-3);
		CHECK_CLOSE(num(mine, "gradient", "loss"), num(row, "loss", NULL), 0, 1e-3);
		CHECK_CLOSE(num(mine, "gradient", "accuracy"), num(row, "accuracy", NULL), 0, 1e-3);
	}
	CHECK(compared >= 18);
	json_array_foreach(json_object_get(ref, "random"), i, row)
	{
		json_t *mine = find_result(r, "model", "l2", num(row, "epsilon", NULL), 1);
		double k, noise;
		REQUIRE(mine);
		k = num(row, "trials", NULL);
		noise = 3.0 * sqrt((pow(num(mine, "random", "accuracy_std"), 2) + pow(num(row, "accuracy_std", NULL), 2)) / k) +
			0.5 / json_integer_value(json_object_get(ref, "samples"));
		CHECK_MSG(fabs(num(mine, "random", "accuracy_mean") - num(row, "accuracy_mean", NULL)) <= noise,
			  "random eps %g: accuracy %.5f vs PyTorch %.5f (noise %.5f)", num(row, "epsilon", NULL),
			  num(mine, "random", "accuracy_mean"), num(row, "accuracy_mean", NULL), noise);
	}
	json_decref(r);
out:
	json_decref(ref);
	free_fixture(&f);
}

struct watch {
	int calls, stop_after;
	int64_t last_done, total;
	int went_back;
};

static int cancel_after(void *arg)
{
	struct watch *w = arg;

	return ++w->calls > w->stop_after;
}

static void progress(const struct pc_progress *pr, void *arg)
{
	struct watch *w = arg;

	if (pr->done < w->last_done || (w->total && pr->total != w->total))
		w->went_back = 1;
	w->last_done = pr->done;
	w->total = pr->total;
}

/* The daemon's interface: progress only moves forward and ends at the
 * total; a cancel request stops the study with PC_ERR_CANCELLED. */
TEST(analysis_progress_and_cancel)
{
	struct fixture f;
	struct pc_spec spec;
	struct pc_error err = {0};
	struct pc_study_opts o;
	struct watch w = {0, 1 << 30, 0, 0, 0};
	json_t *root, *report = NULL;

	if (!load_fixture(t, "mlp_op13.onnx", 300, &f))
		return;
	root = json_loads("{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"batch_size\": 50,"
			  " \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, 1], \"random_trials\": 2,"
			  " \"steps\": 2, \"groups\": [\"model\", \"layer\"]}}",
			  0, NULL);
	REQUIRE(root && pc_spec_parse(root, &spec, &err) == PC_OK);
	json_decref(root);
	pc_study_opts_default(&o);
	o.progress = progress;
	o.progress_arg = &w;
	o.cancel = cancel_after;
	o.cancel_arg = &w;
	REQUIRE(pc_study_run(f.g, f.d, &spec, &o, &report, &err) == PC_OK);
	CHECK(!w.went_back);
	CHECK(w.total > 0 && w.last_done == w.total);
	json_decref(report);
	report = NULL;

	/* now stop part-way: an error, no report, nothing leaked (ASan) */
	memset(&w, 0, sizeof(w));
	w.stop_after = 25;
	CHECK_INT(pc_study_run(f.g, f.d, &spec, &o, &report, &err), PC_ERR_CANCELLED);
	CHECK(report == NULL);
	pc_spec_free(&spec);
	free_fixture(&f);
}

/* The plan's cuts, which the prefix cache rests on: a cut at any node k,
 * saved from one plan's clean pass and restored into another plan of the
 * same graph whose activations hold another batch, makes the run from k
 * reproduce the first plan's output bit for bit. */
TEST(analysis_plan_cut_resumes_bitwise)
{
	struct fixture f;
	struct pc_error err = {0};
	struct pc_plan *a = NULL, *b = NULL;
	float *ref = NULL, *saved = NULL;
	int64_t out_n;
	int nn, cuts = 0;

	/* the ResNet's residual Adds make cuts of two values */
	if (!load_fixture(t, "resnet_bn_op17.onnx", 64, &f))
		return;
	a = pc_plan_new(f.g, 16, 0, &err);
	b = pc_plan_new(f.g, 16, 0, &err);
	REQUIRE_MSG(a && b, "%s: %s", err.where, err.text);
	nn = pc_graph_node_count(f.g);
	out_n = 16 * pc_plan_positions(a) * pc_plan_classes(a);
	ref = malloc((size_t)out_n * sizeof(float));
	REQUIRE(ref);
	pc_eval_fill_input(a, f.d, 0, 16);
	pc_plan_forward(a);
	memcpy(ref, pc_plan_output(a), (size_t)out_n * sizeof(float));
	for (int k = 1; k < nn; k++) {
		struct pc_plan_cut *c = NULL;
		REQUIRE_MSG(pc_plan_cut_new(a, k, &c, &err) == PC_OK, "node %d: %s: %s", k, err.where, err.text);
		saved = realloc(saved, (size_t)pc_plan_cut_floats(c) * sizeof(float) + 1);
		REQUIRE(saved);
		pc_plan_cut_save(a, c, saved);
		pc_eval_fill_input(b, f.d, 32, 16);
		pc_plan_forward(b);
		CHECK(memcmp(pc_plan_output(b), ref, (size_t)out_n * sizeof(float)) != 0);
		pc_plan_cut_restore(b, c, saved);
		pc_plan_forward_range(b, k, nn);
		CHECK_MSG(memcmp(pc_plan_output(b), ref, (size_t)out_n * sizeof(float)) == 0, "run from node %d differs",
			  k);
		cuts += pc_plan_cut_floats(c) > 0;
		pc_plan_cut_free(c);
	}
	CHECK(cuts == nn - 1);
	free(saved);
	free(ref);
	pc_plan_free(a);
	pc_plan_free(b);
	free_fixture(&f);
}

/* --- confidence: intervals and sequential trials ---------------------------- */

/* The widest accuracy half-width over a report's results; -1 when one has none. */
static double widest(json_t *rep)
{
	json_t *row, *ci;
	size_t i;
	double w = 0;

	json_array_foreach(json_object_get(rep, "results"), i, row)
	{
		ci = json_object_get(json_object_get(row, "random"), "accuracy_ci95");
		if (!json_is_array(ci))
			return -1;
		w = fmax(w, (json_number_value(json_array_get(ci, 1)) - json_number_value(json_array_get(ci, 0))) / 2);
	}
	return w;
}

#define SEQ_MAX 30
#define SEQ_BLOCK "{\"groups\": [\"model\"], \"norms\": [\"l2\"], \"epsilons\": [0.5, 2.0], \"random_trials\": "

TEST(analysis_sequential_trials_stop_at_the_interval)
{
	static json_t *fixed[SEQ_MAX + 1];
	double hw[SEQ_MAX + 1], target;
	char block[256];
	struct fixture f;
	json_t *seq = NULL, *row;
	size_t i;
	int want = -1;

	if (!load_fixture(t, "mlp_op13.onnx", 500, &f))
		return;
	/* fixed K = 2..30: the first K trials of any run are these (common
	 * random numbers), so each is what a sequential run stopping at K says */
	for (int k = 2; k <= SEQ_MAX; k++) {
		snprintf(block, sizeof(block), SEQ_BLOCK "%d}", k);
		REQUIRE((fixed[k] = study(t, &f, block, 500, 1, 1)));
		hw[k] = widest(fixed[k]);
		REQUIRE_MSG(hw[k] > 0, "K %d: no spread, or no interval", k);
		json_array_foreach(json_object_get(fixed[k], "results"), i, row)
		{
			json_t *r = json_object_get(row, "random"), *ci = json_object_get(r, "accuracy_ci95");
			double m = num(r, "accuracy_mean", NULL), h = pc_stats_t975(k - 1) * num(r, "accuracy_std", NULL) /
								   sqrt((double)k);

			CHECK_CLOSE(json_number_value(json_array_get(ci, 0)), m - h, 1e-12, 1e-9);
			CHECK_CLOSE(json_number_value(json_array_get(ci, 1)), m + h, 1e-12, 1e-9);
			CHECK(json_is_array(json_object_get(r, "loss_ci95")));
			CHECK(!strcmp(json_string_value(json_object_get(r, "stopped")), "fixed"));
		}
	}
	/* a target the intervals reach part way: the first K >= min that meets it */
	target = hw[12];
	for (int k = 5; k <= SEQ_MAX && want < 0; k++)
		if (hw[k] <= target)
			want = k;
	REQUIRE(want >= 5 && want <= 12);
	snprintf(block, sizeof(block), SEQ_BLOCK "{\"min\": 5, \"max\": %d, \"ci_halfwidth\": %.17g}}", SEQ_MAX, target);
	REQUIRE((seq = study(t, &f, block, 500, 1, 1)));
	json_array_foreach(json_object_get(seq, "results"), i, row)
	{
		json_t *r = json_object_get(row, "random"),
		       *w = json_object_get(json_array_get(json_object_get(fixed[want], "results"), i), "random");

		CHECK_INT(json_integer_value(json_object_get(r, "trials")), want);
		CHECK(!strcmp(json_string_value(json_object_get(r, "stopped")), "ci_halfwidth"));
		CHECK(json_equal(json_object_get(r, "accuracy_ci95"), json_object_get(w, "accuracy_ci95")));
		CHECK(num(r, "loss_mean", NULL) == num(w, "loss_mean", NULL));
	}
	json_decref(seq);
	/* one it cannot reach: all 30, and it says so */
	snprintf(block, sizeof(block), SEQ_BLOCK "{\"min\": 5, \"max\": %d, \"ci_halfwidth\": 1e-9}}", SEQ_MAX);
	REQUIRE((seq = study(t, &f, block, 500, 1, 1)));
	json_array_foreach(json_object_get(seq, "results"), i, row)
	{
		json_t *r = json_object_get(row, "random");

		CHECK_INT(json_integer_value(json_object_get(r, "trials")), SEQ_MAX);
		CHECK(!strcmp(json_string_value(json_object_get(r, "stopped")), "max"));
	}
	CHECK_CLOSE(widest(seq), hw[SEQ_MAX], 0, 0);
	/* the spec echoes the form it was given */
	{
		json_t *c = json_object_get(json_object_get(seq, "spec"), "corruption"),
		       *rt = json_object_get(c, "random_trials");

		CHECK(json_is_object(rt) && json_integer_value(json_object_get(rt, "min")) == 5 &&
		      json_integer_value(json_object_get(rt, "max")) == SEQ_MAX);
	}
	json_decref(seq);
	for (int k = 2; k <= SEQ_MAX; k++)
		json_decref(fixed[k]);
	free_fixture(&f);
}

/* The critical radius of the L2 gradient corruption against a PyTorch
 * bisection on the same direction with the same bracketing rule
 * (make_critical_refs.py), within the bisection tolerance; the search's
 * evaluations within the budget; the random side, the ratio and the
 * ranking by critical radius as the report says. */
TEST(analysis_critical_radius_matches_pytorch)
{
	struct fixture f;
	char path[512];
	json_error_t jerr;
	json_t *ref, *r = NULL, *row, *crit, *rank;
	size_t i;
	int compared = 0;

	snprintf(path, sizeof(path), "%s/" FIX "critical_cnn_op17.json", pc_test_root());
	ref = json_load_file(path, 0, &jerr);
	REQUIRE(ref);
	if (!load_fixture(t, "cnn_op17.onnx", json_integer_value(json_object_get(ref, "samples")), &f)) {
		json_decref(ref);
		return;
	}
	r = study(t, &f,
		  "{\"groups\": [\"model\", \"layer\"], \"norms\": [\"l2\"], \"epsilons\": [0.1, 0.5, 1.0, 2.0],"
		  " \"random_trials\": 2, \"critical\": {\"accuracy_drop\": 0.05}}",
		  json_integer_value(json_object_get(ref, "samples")), 2, 1);
	if (!r)
		goto out;
	CHECK(num(r, "clean", "accuracy") == num(ref, "clean", "accuracy"));
	crit = json_object_get(r, "critical");
	CHECK(json_array_size(crit) == 6); /* the model and its five layers */
	json_array_foreach(json_object_get(ref, "critical"), i, row)
	{
		const char *g = json_string_value(json_object_get(row, "group"));
		json_t *mine = NULL, *c;
		size_t j;
		json_array_foreach(crit, j, c) if (strcmp(json_string_value(json_object_get(c, "group")), g) == 0) mine = c;
		REQUIRE_MSG(mine, "no critical entry for %s", g);
		double pe = num(row, "epsilon", NULL), me = num(mine, "gradient", "epsilon");
		CHECK_MSG(fabs(me - pe) <= 0.01 * fmax(me, pe), "%s: critical radius %.6g, PyTorch %.6g", g, me, pe);
		compared++;
	}
	CHECK(compared == 3);
	json_array_foreach(crit, i, row)
	{
		json_t *gs = json_object_get(row, "gradient"), *rs = json_object_get(row, "random");
		double clean = num(r, "clean", "accuracy");
		CHECK(num(row, "accuracy_drop", NULL) == 0.05 && num(row, "tolerance", NULL) == 0.01);
		/* every gradient radius is bracketed by the sweep: at most 12 new evaluations */
		CHECK(json_is_number(json_object_get(gs, "epsilon")));
		CHECK_MSG(json_integer_value(json_object_get(gs, "evaluations")) <= 12, "%s: %lld evaluations",
			  json_string_value(json_object_get(row, "group")),
			  (long long)json_integer_value(json_object_get(gs, "evaluations")));
		CHECK(num(gs, "accuracy", NULL) < clean - 0.05);
		if (json_is_number(json_object_get(rs, "epsilon"))) {
			CHECK(num(rs, "accuracy", NULL) < clean - 0.05);
			CHECK_CLOSE(num(row, "ratio", NULL), num(rs, "epsilon", NULL) / num(gs, "epsilon", NULL), 0, 1e-12);
		} else {
			CHECK(json_is_null(json_object_get(row, "ratio")));
		}
	}
	/* the ranking: the layers by gradient critical radius, smallest first */
	rank = json_object_get(r, "ranking");
	CHECK(json_array_size(rank) == 5);
	json_array_foreach(rank, i, row)
	{
		CHECK(strcmp(json_string_value(json_object_get(row, "by")), "critical_radius") == 0);
		CHECK(json_integer_value(json_object_get(row, "rank")) == (json_int_t)i + 1);
		if (i > 0)
			CHECK(num(row, "critical_radius", NULL) >=
			      num(json_array_get(rank, i - 1), "critical_radius", NULL));
	}
	json_decref(r);
out:
	json_decref(ref);
	free_fixture(&f);
}
