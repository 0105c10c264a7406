/* Tests of the random bit-error study (core/fstudy.c) and its sampler
 * (pc_faults_sample), against tests/reference/fixtures/faults_cnn_op17.json,
 * numbers of make_faults_refs.py computed with numpy and PyTorch apart from
 * paracorr's code. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/analysis.h"
#include "paracorr/fstudy.h"
#include "paracorr/onnx.h"
#include "paracorr/sys.h"
#include "test.h"


struct fixture {
	json_t *ref;
	struct pc_graph *g;
	struct pc_dataset *d;
	struct pc_runner *r;
	int64_t samples;
	int all[64]; /* every parameter tensor: the "model" group */
	int n_all;
};

static void free_fixture(struct fixture *f)
{
	pc_runner_free(f->r);
	pc_dataset_free(f->d);
	pc_graph_free(f->g);
	json_decref(f->ref);
}

/* The reference, cnn_op17 and its first `samples` test images (the
 * reference's when 0), and a runner of `threads`. */
static int load_fixture(struct pc_test *t, int64_t samples, int threads, struct fixture *f)
{
	struct pc_error err = {0};
	char path[512], msg[800];
	json_error_t jerr;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/" FIX "faults_cnn_op17.json", pc_test_root());
	f->ref = json_load_file(path, 0, &jerr);
	if (!f->ref) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
		return 0;
	}
	f->samples = samples ? samples : json_integer_value(json_object_get(f->ref, "samples"));
	snprintf(path, sizeof(path), "%s/" FIX "cnn_op17.onnx", pc_test_root());
	if (pc_onnx_load_file(path, &f->g, &err) || pc_dataset_load(T10K_X, T10K_Y, NULL, f->samples, &f->d, &err) ||
	    !(f->r = pc_runner_new(f->g, 500, threads, 0, &err))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		free_fixture(f);
		return 0;
	}
	f->n_all = pc_graph_param_tensors(f->g);
	for (int i = 0; i < f->n_all; i++)
		f->all[i] = i;
	return 1;
}

static double num(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static enum pc_faults_format format_of(const char *name)
{
	if (!strcmp(name, "float16"))
		return PC_FAULTS_FLOAT16;
	if (!strcmp(name, "bfloat16"))
		return PC_FAULTS_BFLOAT16;
	if (!strcmp(name, "int8"))
		return PC_FAULTS_INT8;
	return PC_FAULTS_FLOAT32;
}

static enum pc_faults_scaling scaling_of(json_t *row)
{
	const char *q = str(row, "quantization");

	return q && !strcmp(q, "per_channel") ? PC_FAULTS_PER_CHANNEL : PC_FAULTS_PER_TENSOR;
}

static struct pc_fstudy *study(struct pc_test *t, struct fixture *f, enum pc_faults_format fmt,
			       enum pc_faults_scaling sc)
{
	struct pc_error err = {0};
	struct pc_fstudy *s = NULL;
	char msg[800];

	if (pc_fstudy_new(f->r, f->d, 0, fmt, sc, NULL, NULL, &s, &err))
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
	return s;
}

/* Whether worker w's weights equal want bit for bit. */
static int runner_holds(struct fixture *f, int w, const float *want)
{
	return !memcmp(pc_plan_weights(pc_runner_plan(f->r, w)), want,
		       (size_t)pc_graph_param_count(f->g) * sizeof(float));
}

/* Whether every worker holds the study's clean decoded weights. */
static int runner_holds_format(struct fixture *f, const struct pc_fstudy *s)
{
	float *decoded = malloc((size_t)pc_graph_param_count(f->g) * sizeof(float));
	int ok = decoded != NULL;

	if (decoded)
		pc_faults_decode(pc_fstudy_store(s), decoded);
	for (int w = 0; ok && w < pc_runner_threads(f->r); w++)
		ok = runner_holds(f, w, decoded);
	free(decoded);
	return ok;
}

/* Every format's clean numbers equal PyTorch's rounding and quantization;
 * float32 is the untouched model bit for bit, and freeing a study puts the
 * float32 weights back in every worker. */
TEST(fstudy_clean_matches_pytorch)
{
	struct fixture f;
	struct pc_error err = {0};
	struct pc_eval plain;
	json_t *row;
	size_t i;

	if (!load_fixture(t, 0, 2, &f))
		return;
	REQUIRE(pc_eval_run(f.r, f.d, 0, NULL, NULL, NULL, &plain, &err) == 0);
	json_array_foreach(json_object_get(f.ref, "clean"), i, row)
	{
		enum pc_faults_format fmt = format_of(str(row, "format"));
		struct pc_fstudy *s = study(t, &f, fmt, scaling_of(row));
		const struct pc_eval *c;

		if (!s)
			break;
		c = pc_fstudy_clean(s);
		CHECK_MSG(fabs(c->loss - num(row, "loss")) <= 1e-5, "%s %s: loss %.8f, PyTorch %.8f",
			  str(row, "format"), str(row, "quantization") ? str(row, "quantization") : "", c->loss,
			  num(row, "loss"));
		CHECK_MSG(c->accuracy == num(row, "accuracy"), "%s: accuracy %.4f, PyTorch %.4f", str(row, "format"),
			  c->accuracy, num(row, "accuracy"));
		CHECK_INT(pc_faults_exposed_bits(pc_fstudy_store(s), f.all, f.n_all, NULL), num(row, "exposed_bits"));
		CHECK_INT(pc_fstudy_passes(s), 1);
		if (fmt == PC_FAULTS_FLOAT32)
			CHECK(c->loss == plain.loss && c->correct == plain.correct);
		pc_fstudy_free(s);
		CHECK(runner_holds(&f, 0, pc_graph_params(f.g)) && runner_holds(&f, 1, pc_graph_params(f.g)));
	}
	CHECK_INT(i, 5);
	free_fixture(&f);
}

/* One chosen bit of one chosen weight per format: the value before and
 * after, and the loss and accuracy after, as PyTorch has them; the runner
 * holds the format's clean weights again afterwards. */
TEST(fstudy_fixed_flips_match)
{
	struct fixture f;
	json_t *row;
	size_t i;

	if (!load_fixture(t, 0, 2, &f))
		return;
	json_array_foreach(json_object_get(f.ref, "fixed"), i, row)
	{
		struct pc_fstudy *s = study(t, &f, format_of(str(row, "format")), scaling_of(row));
		int p = pc_graph_find_param(f.g, str(row, "tensor"));
		struct pc_faults_bitref flip;
		struct pc_error err = {0};
		struct pc_eval ev;
		float after = 0.0f;

		if (!s)
			break;
		REQUIRE(p >= 0);
		flip.elem = pc_graph_param(f.g, p)->offset + (int64_t)num(row, "element");
		flip.bit = (int)num(row, "bit");
		CHECK(pc_faults_value(pc_fstudy_store(s), flip.elem) == (float)num(row, "before"));
		CHECK(pc_faults_flipped_value(pc_fstudy_store(s), flip.elem, flip.bit, &after, &err) == 0);
		CHECK_MSG(after == (float)num(row, "after"), "%s: flipped value %.9g, PyTorch %.9g", str(row, "format"),
			  after, num(row, "after"));
		REQUIRE(pc_fstudy_eval_flips(s, &flip, 1, &ev, &err) == 0);
		CHECK_MSG(fabs(ev.loss - num(row, "loss")) <= 1e-5, "%s bit %d: loss %.8f, PyTorch %.8f",
			  str(row, "format"), flip.bit, ev.loss, num(row, "loss"));
		CHECK_MSG(ev.accuracy == num(row, "accuracy"), "%s bit %d: accuracy %.4f, PyTorch %.4f",
			  str(row, "format"), flip.bit, ev.accuracy, num(row, "accuracy"));
		/* the flip moved the loss: a test of a real change */
		CHECK(fabs(ev.loss - pc_fstudy_clean(s)->loss) > 1e-4);
		CHECK(pc_faults_value(pc_fstudy_store(s), flip.elem) == (float)num(row, "before"));
		CHECK(runner_holds_format(&f, s));
		pc_fstudy_free(s);
	}
	CHECK_INT(i, 5);
	free_fixture(&f);
}

/* |a - b| within 4 standard errors of the difference of two means. */
static void check_means(struct pc_test *t, const char *what, double ma, double sa, double na, double mb, double sb,
			double nb)
{
	double se = sqrt(sa * sa / na + sb * sb / nb);

	CHECK_MSG(fabs(ma - mb) <= 4.0 * se, "%s: %.6g vs PyTorch %.6g, 4 standard errors %.3g", what, ma, mb,
		  4.0 * se);
}

/* The random trials' means agree with an independent Monte Carlo of the
 * same model (numpy's generator, flips drawn as Binomial + without
 * replacement) within their sampling error. */
TEST(fstudy_ber_matches_pytorch)
{
	struct fixture f;
	json_t *row;
	size_t i;
	int compared_loss = 0;

	if (!load_fixture(t, 0, 2, &f))
		return;
	json_array_foreach(json_object_get(f.ref, "random"), i, row)
	{
		enum pc_faults_format fmt = format_of(str(row, "format"));
		struct pc_fstudy *s = study(t, &f, fmt, scaling_of(row));
		struct pc_fstudy_random r;
		struct pc_error err = {0};
		int trials = (int)num(row, "trials");
		double ber = num(row, "ber"), bits = num(row, "exposed_bits"), t0, t1;
		int64_t resumed;
		char msg[800];

		if (!s)
			break;
		resumed = pc_fstudy_resumed(s);
		t0 = pc_sys_seconds();
		REQUIRE_MSG(pc_fstudy_random(s, f.all, f.n_all, ber, trials, 11, &r, &err) == 0, "%s",
			    pc_error_format(&err, msg, sizeof(msg)));
		t1 = pc_sys_seconds();
		printf("  fstudy %s ber %g: %d trials, %lld passes (%lld from a cut), %.2f s; flips %.2f, accuracy %.4f +- %.4f "
		       "(PyTorch %.4f +- %.4f), loss %.4g (PyTorch %.4g), non-finite %d (PyTorch %d)\n",
		       str(row, "format"), ber, trials, (long long)r.passes, (long long)(pc_fstudy_resumed(s) - resumed),
		       t1 - t0, r.flips_mean, r.accuracy.mean,
		       r.accuracy.std, num(row, "accuracy_mean"), num(row, "accuracy_std"), r.loss.mean,
		       num(row, "loss_mean"), r.non_finite, (int)num(row, "non_finite"));
		CHECK_INT(r.trials, trials);
		check_means(t, "flips", r.flips_mean, sqrt(bits * ber * (1 - ber)), trials, bits * ber, 0, 1);
		check_means(t, "reference flips", num(row, "flips_mean"), sqrt(bits * ber * (1 - ber)), trials,
			    bits * ber, 0, 1);
		check_means(t, "accuracy", r.accuracy.mean, r.accuracy.std, trials, num(row, "accuracy_mean"),
			    num(row, "accuracy_std"), trials);
		/* float32's few flips hit the top exponent bit now and then, and
		 * those trials' losses reach 1e34: a mean dominated by a handful
		 * of trials, whose standard error would let any value pass. The
		 * loss is compared where its spread is below its mean (int8). */
		if (num(row, "loss_std") < num(row, "loss_mean"))
			check_means(t, "loss", r.loss.mean, r.loss.std, (double)r.loss.n, num(row, "loss_mean"),
				    num(row, "loss_std"), num(row, "loss_trials"));
		else
			CHECK(r.loss.max > 1e6 * pc_fstudy_clean(s)->loss);
		CHECK(r.accuracy.min <= r.accuracy.mean && r.accuracy.ci95[0] < r.accuracy.mean &&
		      r.accuracy.mean < r.accuracy.ci95[1]);
		CHECK_INT(r.loss.n + r.non_finite, trials);
		compared_loss += num(row, "loss_std") < num(row, "loss_mean");
		pc_fstudy_free(s);
	}
	CHECK_INT(i, 2);
	CHECK_INT(compared_loss, 1);
	free_fixture(&f);
}

/* A trial that flips nothing is the clean result and runs no pass: on a
 * small group most trials flip nothing, and the passes are exactly the
 * others. */
TEST(fstudy_zero_flip_trials_cost_no_pass)
{
	struct fixture f;
	struct pc_fstudy *s;
	struct pc_fstudy_random r;
	struct pc_faults_bitref *flips = NULL;
	struct pc_error err = {0};
	int64_t count = 0, cap = 0, before;
	int group[1], zeros = 0, trials = 40;

	if (!load_fixture(t, 500, 2, &f))
		return;
	group[0] = pc_graph_find_param(f.g, "fc3.bias"); /* 10 floats: 320 bits */
	REQUIRE(group[0] >= 0);
	s = study(t, &f, PC_FAULTS_FLOAT32, PC_FAULTS_PER_TENSOR);
	if (!s)
		goto out;
	for (int k = 0; k < trials; k++) {
		REQUIRE(pc_fstudy_trial_flips(s, group, 1, 1e-3, 5, k, &flips, &count, &cap, &err) == 0);
		zeros += count == 0;
	}
	CHECK(zeros > trials / 2 && zeros < trials);
	before = pc_fstudy_passes(s);
	REQUIRE(pc_fstudy_random(s, group, 1, 1e-3, trials, 5, &r, &err) == 0);
	CHECK_INT(r.passes, trials - zeros);
	CHECK_INT(pc_fstudy_passes(s) - before, trials - zeros);
	/* the zero-flip trials carry the clean accuracy */
	CHECK(r.accuracy.max >= pc_fstudy_clean(s)->accuracy && r.accuracy.min <= pc_fstudy_clean(s)->accuracy);
	pc_fstudy_free(s);
out:
	free(flips);
	free_fixture(&f);
}

/* The same seed gives the same numbers at 1 and 2 threads, bit for bit. */
TEST(fstudy_same_at_1_and_2_threads)
{
	struct fstudy_run {
		struct pc_eval clean;
		struct pc_fstudy_random r;
		struct pc_fstudy_bit b;
	} run[2];

	memset(run, 0, sizeof(run));
	for (int k = 0; k < 2; k++) {
		struct fixture f;
		struct pc_fstudy *s;
		struct pc_error err = {0};

		if (!load_fixture(t, 500, k + 1, &f))
			return;
		s = study(t, &f, PC_FAULTS_INT8, PC_FAULTS_PER_CHANNEL);
		if (s) {
			run[k].clean = *pc_fstudy_clean(s);
			CHECK(pc_fstudy_random(s, f.all, f.n_all, 1e-3, 4, 9, &run[k].r, &err) == 0);
			CHECK(pc_fstudy_bit(s, f.all, f.n_all, 6, 30, 3, 9, &run[k].b, &err) == 0);
			pc_fstudy_free(s);
		}
		free_fixture(&f);
	}
	CHECK(run[0].clean.loss == run[1].clean.loss && run[0].clean.correct == run[1].clean.correct);
	CHECK(run[0].r.flips_mean == run[1].r.flips_mean && run[0].r.flips_mean > 100);
	CHECK(run[0].r.accuracy.mean == run[1].r.accuracy.mean && run[0].r.accuracy.std == run[1].r.accuracy.std);
	CHECK(run[0].r.loss.mean == run[1].r.loss.mean && run[0].r.loss.ci95[1] == run[1].r.loss.ci95[1]);
	CHECK(run[0].b.accuracy_mean == run[1].b.accuracy_mean && run[0].b.loss_mean == run[1].b.loss_mean);
	CHECK(run[0].b.accuracy_min == run[1].b.accuracy_min);
}

/* The tensor holding flat element i. */
static int tensor_at(const struct pc_graph *g, int64_t i)
{
	for (int p = 0; p < pc_graph_param_tensors(g); p++)
		if (i >= pc_graph_param(g, p)->offset && i < pc_graph_param(g, p)->offset + pc_graph_param(g, p)->count)
			return p;
	return -1;
}

/* The skip sampler's flip count has the Binomial(bits, ber) mean and
 * variance, its flips are distinct, in order and never on a protected bit,
 * a higher ber on the same stream never flips fewer, and the flips agree
 * with pc_faults_exposed_at's numbering. */
TEST(fstudy_sampler_statistics)
{
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_faults_store *s8 = NULL, *s32 = NULL;
	struct pc_faults_bitref *flips = NULL;
	int64_t count = 0, cap = 0, bits, protected_seen = 0;
	int all[64], n_all, small[1];
	char path[512];
	int bad_order = 0, bad_bit = 0, fewer = 0;

	snprintf(path, sizeof(path), "%s/" FIX "cnn_op17.onnx", pc_test_root());
	REQUIRE(pc_onnx_load_file(path, &g, &err) == 0);
	n_all = pc_graph_param_tensors(g);
	for (int i = 0; i < n_all; i++)
		all[i] = i;
	if (pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR, &s8, &err) ||
	    pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_FLOAT32, PC_FAULTS_PER_TENSOR, &s32, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", err.text);
		goto out;
	}
	/* int8 over the whole model, biases (protected) included */
	bits = pc_faults_exposed_bits(s8, all, n_all, NULL);
	for (int i = 0; i < n_all; i++)
		protected_seen += pc_faults_tensor_bits(s8, i) == 0;
	CHECK(protected_seen == 5);
	{
		const int trials = 2000;
		const double ber = 1e-4;
		double sum = 0, sq = 0, mean, var, want = bits * ber, want_var = bits * ber * (1 - ber);

		for (int k = 0; k < trials; k++) {
			int64_t elem;
			int bit;

			REQUIRE(pc_faults_sample(s8, all, n_all, ber, 1000 + k, &flips, &count, &cap, &err) == 0);
			sum += count;
			sq += (double)count * count;
			for (int64_t j = 0; j < count; j++) {
				int p = tensor_at(g, flips[j].elem);

				if (p < 0 || pc_faults_tensor_bits(s8, p) == 0 || flips[j].bit < 0 || flips[j].bit > 7)
					bad_bit++;
				if (j > 0 && !(flips[j].elem > flips[j - 1].elem ||
					       (flips[j].elem == flips[j - 1].elem && flips[j].bit > flips[j - 1].bit)))
					bad_order++;
			}
			/* the first flip of trial 0 is the exposed bit it names */
			if (k == 0 && count > 0) {
				int64_t pos = 0;
				for (int p = 0; p < tensor_at(g, flips[0].elem); p++)
					pos += pc_faults_tensor_bits(s8, p) * pc_graph_param(g, p)->count;
				pos += (flips[0].elem - pc_graph_param(g, tensor_at(g, flips[0].elem))->offset) * 8 +
				       flips[0].bit;
				REQUIRE(pc_faults_exposed_at(s8, all, n_all, pos, &elem, &bit, &err) == 0);
				CHECK(elem == flips[0].elem && bit == flips[0].bit);
			}
		}
		mean = sum / trials;
		var = (sq - sum * mean) / (trials - 1);
		CHECK_MSG(fabs(mean - want) <= 4.0 * sqrt(want_var / trials), "flips per trial %.3f, expected %.3f",
			  mean, want);
		/* the variance of a sample variance of n draws is about
		 * 2 sigma^4 / (n - 1) for a near-normal count */
		CHECK_MSG(fabs(var - want_var) <= 4.0 * want_var * sqrt(2.0 / (trials - 1)),
			  "variance %.3f, expected %.3f", var, want_var);
	}
	CHECK_INT(bad_bit, 0);
	CHECK_INT(bad_order, 0);
	/* a high rate on a small group: the geometric gaps at their coarsest */
	small[0] = pc_graph_find_param(g, "fc3.bias");
	REQUIRE(small[0] >= 0);
	{
		const int trials = 4000;
		const double ber = 0.3, n_bits = 320;
		double sum = 0;

		for (int k = 0; k < trials; k++) {
			REQUIRE(pc_faults_sample(s32, small, 1, ber, 77 + k, &flips, &count, &cap, &err) == 0);
			sum += count;
		}
		CHECK_MSG(fabs(sum / trials - n_bits * ber) <= 4.0 * sqrt(n_bits * ber * (1 - ber) / trials),
			  "flips per trial %.3f at ber 0.3, expected %.1f", sum / trials, n_bits * ber);
	}
	/* common random numbers: the same stream never flips fewer at a
	 * higher rate */
	for (int k = 0; k < 200; k++) {
		int64_t lo;

		REQUIRE(pc_faults_sample(s8, all, n_all, 1e-4, k, &flips, &count, &cap, &err) == 0);
		lo = count;
		REQUIRE(pc_faults_sample(s8, all, n_all, 3e-4, k, &flips, &count, &cap, &err) == 0);
		fewer += count < lo;
	}
	CHECK_INT(fewer, 0);
	/* a group of protected tensors alone flips nothing */
	small[0] = pc_graph_find_param(g, "fc1.bias");
	REQUIRE(pc_faults_sample(s8, small, 1, 0.5, 3, &flips, &count, &cap, &err) == 0);
	CHECK_INT(count, 0);
out:
	free(flips);
	pc_faults_store_free(s8);
	pc_faults_store_free(s32);
	pc_graph_free(g);
}

/* A trial past PC_FAULTS_MAX_FLIPS is PC_ERR_LIMIT naming the ber, not an
 * unbounded allocation. */
TEST(fstudy_sampler_limit)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(17, &err);
	struct pc_shape in = {2, {-1, 512}}, sw = {2, {512, 300}};
	const char *n0[] = {"x", "W"}, *o0[] = {"y"};
	struct pc_faults_store *s = NULL;
	struct pc_faults_bitref *flips = NULL;
	int64_t count = 5, cap = 0;
	float *w = calloc(512 * 300, sizeof(float));
	int group[1] = {0};

	REQUIRE(g && w);
	if (pc_graph_add_input(g, "x", &in, &err) || pc_graph_add_float(g, "W", &sw, w, &err) ||
	    pc_graph_add_node(g, "MatMul", "mm", 2, n0, 1, o0, 0, NULL, &err) || pc_graph_add_output(g, "y", &err) ||
	    pc_graph_finish(g, &err) ||
	    pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_FLOAT32, PC_FAULTS_PER_TENSOR, &s, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", err.text);
		goto out;
	}
	/* 4,915,200 bits at 0.95: about 4.67 M flips, over the 4.19 M cap */
	CHECK_INT(pc_faults_sample(s, group, 1, 0.95, 1, &flips, &count, &cap, &err), PC_ERR_LIMIT);
	CHECK(!strcmp(err.where, "ber") && strstr(err.text, "0.95"));
	CHECK_INT(count, 0);
	CHECK(cap <= PC_FAULTS_MAX_FLIPS);
	pc_error_clear(&err);
	/* under the cap it completes */
	CHECK(pc_faults_sample(s, group, 1, 0.5, 1, &flips, &count, &cap, &err) == 0);
	CHECK(count > 2400000 && count < 2520000);
out:
	free(flips);
	free(w);
	pc_faults_store_free(s);
	pc_graph_free(g);
}

/* Field names of every bit; one bit position per kind of field behaves as
 * a stored number must: a mantissa LSB moves nothing, float32's top
 * exponent bit breaks the model, int8's sign bit hurts. */
TEST(fstudy_bits)
{
	struct fixture f;
	struct pc_fstudy *s;
	struct pc_fstudy_bit lsb, top, small;
	struct pc_error err = {0};
	int group[1];

	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_FLOAT32, 31), "sign"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_FLOAT32, 30), "exponent"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_FLOAT32, 23), "exponent"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_FLOAT32, 22), "mantissa"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_FLOAT16, 15), "sign"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_FLOAT16, 10), "exponent"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_FLOAT16, 9), "mantissa"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_BFLOAT16, 7), "exponent"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_BFLOAT16, 6), "mantissa"));
	CHECK(!strcmp(pc_fstudy_bit_field(PC_FAULTS_INT8, 7), "int8"));
	CHECK(!pc_fstudy_bit_field(PC_FAULTS_INT8, 8) && !pc_fstudy_bit_field(PC_FAULTS_FLOAT16, 16));
	CHECK(!pc_fstudy_bit_field(PC_FAULTS_FLOAT32, -1));

	if (!load_fixture(t, 500, 2, &f))
		return;
	s = study(t, &f, PC_FAULTS_FLOAT32, PC_FAULTS_PER_TENSOR);
	if (!s)
		goto out;
	REQUIRE(pc_fstudy_bit(s, f.all, f.n_all, 0, 100, 3, 1, &lsb, &err) == 0);
	REQUIRE(pc_fstudy_bit(s, f.all, f.n_all, 30, 100, 3, 1, &top, &err) == 0);
	CHECK(!strcmp(lsb.field, "mantissa") && !strcmp(top.field, "exponent"));
	CHECK(lsb.weights == 100 && lsb.trials == 3 && lsb.passes == 3 && lsb.bit == 0);
	CHECK(fabs(lsb.accuracy_mean - pc_fstudy_clean(s)->accuracy) <= 1.0 / 500);
	CHECK(top.accuracy_mean < pc_fstudy_clean(s)->accuracy - 0.3);
	CHECK(top.accuracy_min <= top.accuracy_mean);
	/* more weights than the group has: all of them, once each */
	group[0] = pc_graph_find_param(f.g, "fc3.bias");
	REQUIRE(pc_fstudy_bit(s, group, 1, 31, 1000, 2, 1, &small, &err) == 0);
	CHECK_INT(small.weights, 10);
	CHECK(!strcmp(small.field, "sign"));
	/* both trials flip the sign of every bias: the same numbers */
	{
		struct pc_faults_bitref flips[10];
		struct pc_eval ev;

		for (int k = 0; k < 10; k++) {
			flips[k].elem = pc_graph_param(f.g, group[0])->offset + k;
			flips[k].bit = 31;
		}
		REQUIRE(pc_fstudy_eval_flips(s, flips, 10, &ev, &err) == 0);
		CHECK(small.accuracy_mean == ev.accuracy && small.accuracy_min == ev.accuracy);
		CHECK(fabs(small.loss_mean - ev.loss) <= 1e-12 * fabs(ev.loss));
	}
	pc_fstudy_free(s);
	s = study(t, &f, PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR);
	if (!s)
		goto out;
	REQUIRE(pc_fstudy_bit(s, f.all, f.n_all, 7, 200, 3, 1, &top, &err) == 0);
	REQUIRE(pc_fstudy_bit(s, f.all, f.n_all, 0, 200, 3, 1, &lsb, &err) == 0);
	CHECK(!strcmp(top.field, "int8"));
	CHECK(top.accuracy_mean < lsb.accuracy_mean);
	pc_fstudy_free(s);
out:
	free_fixture(&f);
}

static void check_invalid(struct pc_test *t, int rc, struct pc_error *err, const char *field)
{
	CHECK_MSG(rc == PC_ERR_INVALID && !strcmp(err->where, field), "rc %d where \"%s\", expected \"%s\" (%s)", rc,
		  err->where, field, err->text);
	pc_error_clear(err);
}

/* Bad arguments are PC_ERR_INVALID naming the field, and change nothing. */
TEST(fstudy_bad_arguments)
{
	struct fixture f;
	struct pc_fstudy *s;
	struct pc_fstudy_random r;
	struct pc_fstudy_bit b;
	struct pc_faults_bitref *flips = NULL, bad = {0, 8};
	struct pc_error err = {0};
	struct pc_eval ev;
	int64_t count, cap = 0, passes;
	int group[2] = {0, 0}, nine[1] = {99}, bias[1];
	const double bers[] = {0.0, 1.0, -1e-3, 1.5, NAN};

	if (!load_fixture(t, 200, 1, &f))
		return;
	s = study(t, &f, PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR);
	if (!s)
		goto out;
	passes = pc_fstudy_passes(s);
	for (size_t i = 0; i < sizeof(bers) / sizeof(bers[0]); i++) {
		check_invalid(t, pc_fstudy_random(s, f.all, f.n_all, bers[i], 3, 1, &r, &err), &err, "ber");
		check_invalid(t, pc_faults_sample(pc_fstudy_store(s), f.all, f.n_all, bers[i], 1, &flips, &count, &cap,
						  &err),
			      &err, "ber");
	}
	check_invalid(t, pc_fstudy_random(s, f.all, f.n_all, 1e-3, 0, 1, &r, &err), &err, "trials");
	check_invalid(t, pc_fstudy_random(s, f.all, 0, 1e-3, 3, 1, &r, &err), &err, "group");
	check_invalid(t, pc_fstudy_random(s, nine, 1, 1e-3, 3, 1, &r, &err), &err, "group");
	check_invalid(t, pc_fstudy_random(s, group, 2, 1e-3, 3, 1, &r, &err), &err, "group");
	check_invalid(t, pc_fstudy_trial_flips(s, nine, 1, 1e-3, 1, 0, &flips, &count, &cap, &err), &err, "group");
	check_invalid(t, pc_fstudy_bit(s, f.all, f.n_all, 8, 10, 3, 1, &b, &err), &err, "bit");
	check_invalid(t, pc_fstudy_bit(s, f.all, f.n_all, -1, 10, 3, 1, &b, &err), &err, "bit");
	check_invalid(t, pc_fstudy_bit(s, f.all, f.n_all, 3, 0, 3, 1, &b, &err), &err, "weights");
	check_invalid(t, pc_fstudy_bit(s, f.all, f.n_all, 3, 10, 0, 1, &b, &err), &err, "trials");
	bias[0] = pc_graph_find_param(f.g, "fc1.bias");
	check_invalid(t, pc_fstudy_bit(s, bias, 1, 3, 10, 3, 1, &b, &err), &err, "group");
	/* bit 8 of an int8 code is not exposed: nothing flipped, nothing run */
	bad.elem = pc_graph_param(f.g, 0)->offset;
	CHECK_INT(pc_fstudy_eval_flips(s, &bad, 1, &ev, &err), PC_ERR_INVALID);
	pc_error_clear(&err);
	CHECK_INT(pc_fstudy_passes(s), passes);
	CHECK(runner_holds_format(&f, s));
	pc_fstudy_free(s);
out:
	free(flips);
	free_fixture(&f);
}

struct stopper {
	int calls, stop_after;
};

static int stop_after(void *arg)
{
	struct stopper *st = arg;

	return ++st->calls > st->stop_after;
}

/* A cancel stops a study between passes with PC_ERR_CANCELLED, and the
 * runner gets the format's clean weights back. */
TEST(fstudy_cancel)
{
	struct fixture f;
	struct pc_fstudy *s = NULL;
	struct pc_fstudy_random r;
	struct pc_error err = {0};
	struct stopper st = {0, 1 << 30};

	if (!load_fixture(t, 1000, 2, &f))
		return;
	REQUIRE(pc_fstudy_new(f.r, f.d, 0, PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR, stop_after, &st, &s, &err) == 0);
	st.stop_after = st.calls + 5;
	CHECK_INT(pc_fstudy_random(s, f.all, f.n_all, 1e-3, 50, 1, &r, &err), PC_ERR_CANCELLED);
	CHECK(pc_fstudy_passes(s) < 10);
	CHECK(runner_holds_format(&f, s));
	pc_fstudy_free(s);
	CHECK(runner_holds(&f, 0, pc_graph_params(f.g)));
	/* cancelled before the clean pass: no study */
	st.calls = 0;
	st.stop_after = 0;
	pc_error_clear(&err);
	CHECK_INT(pc_fstudy_new(f.r, f.d, 0, PC_FAULTS_FLOAT16, PC_FAULTS_PER_TENSOR, stop_after, &st, &s, &err),
		  PC_ERR_CANCELLED);
	CHECK(!s);
	CHECK(runner_holds(&f, 0, pc_graph_params(f.g)));
	free_fixture(&f);
}

/* The report rows: exactly the named fields, non-finite numbers null. */
TEST(fstudy_json_rows)
{
	static const char *random_keys[] = {"format",	     "ber",	      "group",	       "trials",
					    "flips_mean",    "accuracy_mean", "accuracy_std",  "accuracy_min",
					    "accuracy_ci95", "loss_mean",     "loss_std",      "loss_ci95",
					    "non_finite"};
	static const char *bit_keys[] = {"format", "group",	    "bit",	    "field",	 "weights",
					 "trials", "accuracy_mean", "accuracy_min", "loss_mean"};
	struct pc_fstudy_random r;
	struct pc_fstudy_bit b;
	const double acc[] = {0.5, 0.7}, one_loss = 2.0;
	struct pc_error err = {0};
	json_t *row;

	memset(&r, 0, sizeof(r));
	r.trials = 2;
	r.flips_mean = 3.5;
	REQUIRE(pc_stats_summarize(acc, 2, &r.accuracy, &err) == 0);
	REQUIRE(pc_stats_summarize(&one_loss, 1, &r.loss, &err) == 0);
	r.non_finite = 1;
	row = pc_fstudy_random_json(PC_FAULTS_FLOAT16, 1e-5, "layer:fc1", &r);
	REQUIRE(row);
	CHECK_INT(json_object_size(row), 13);
	for (size_t i = 0; i < sizeof(random_keys) / sizeof(random_keys[0]); i++)
		CHECK_MSG(json_object_get(row, random_keys[i]), "no %s", random_keys[i]);
	CHECK(!strcmp(str(row, "format"), "float16") && !strcmp(str(row, "group"), "layer:fc1"));
	CHECK(num(row, "ber") == 1e-5 && num(row, "accuracy_mean") == 0.6 && num(row, "loss_mean") == 2.0);
	CHECK_INT(json_integer_value(json_object_get(row, "trials")), 2);
	CHECK_INT(json_integer_value(json_object_get(row, "non_finite")), 1);
	CHECK(json_array_size(json_object_get(row, "accuracy_ci95")) == 2);
	CHECK(json_real_value(json_array_get(json_object_get(row, "accuracy_ci95"), 0)) < 0.5 &&
	      json_real_value(json_array_get(json_object_get(row, "accuracy_ci95"), 1)) > 0.7);
	/* one finite loss: no spread, no interval */
	CHECK(json_is_null(json_object_get(row, "loss_std")));
	CHECK(json_is_null(json_array_get(json_object_get(row, "loss_ci95"), 0)) &&
	      json_is_null(json_array_get(json_object_get(row, "loss_ci95"), 1)));
	json_decref(row);

	memset(&b, 0, sizeof(b));
	b.bit = 30;
	b.field = pc_fstudy_bit_field(PC_FAULTS_FLOAT32, 30);
	b.weights = 100;
	b.trials = 3;
	b.accuracy_mean = 0.1;
	b.accuracy_min = 0.09;
	b.loss_mean = NAN;
	row = pc_fstudy_bit_json(PC_FAULTS_FLOAT32, "model", &b);
	REQUIRE(row);
	CHECK_INT(json_object_size(row), 9);
	for (size_t i = 0; i < sizeof(bit_keys) / sizeof(bit_keys[0]); i++)
		CHECK_MSG(json_object_get(row, bit_keys[i]), "no %s", bit_keys[i]);
	CHECK(!strcmp(str(row, "field"), "exponent") && !strcmp(str(row, "format"), "float32"));
	CHECK_INT(json_integer_value(json_object_get(row, "bit")), 30);
	CHECK_INT(json_integer_value(json_object_get(row, "weights")), 100);
	CHECK(json_is_null(json_object_get(row, "loss_mean")) && num(row, "accuracy_min") == 0.09);
	json_decref(row);
}

/* A pass resumed from the prefix cache gives the same bits as a whole
 * pass, for flips in one layer, in several, and in the first one (which
 * has no cut before it). */
TEST(fstudy_prefix_cache_same_bits)
{
	static const char *layers[] = {"fc3.bias", "fc2.weight", "fc1.weight", "conv2.weight", "conv1.weight"};
	struct fixture f;
	struct pc_fstudy *s;
	struct pc_error err = {0};
	int group[1];

	if (!load_fixture(t, 700, 2, &f))
		return;
	s = study(t, &f, PC_FAULTS_FLOAT16, PC_FAULTS_PER_TENSOR);
	if (!s)
		goto out;
	for (size_t i = 0; i < sizeof(layers) / sizeof(layers[0]); i++) {
		struct pc_fstudy_random on, off;
		int64_t resumed = pc_fstudy_resumed(s);

		group[0] = pc_graph_find_param(f.g, layers[i]);
		REQUIRE(group[0] >= 0);
		pc_fstudy_set_cache(s, 1);
		REQUIRE(pc_fstudy_random(s, group, 1, 2e-3, 4, 3, &on, &err) == 0);
		if (i < 4)
			CHECK_MSG(pc_fstudy_resumed(s) - resumed == on.passes && on.passes > 0,
				  "%s: %lld of %lld passes resumed", layers[i],
				  (long long)(pc_fstudy_resumed(s) - resumed), (long long)on.passes);
		else
			CHECK_INT(pc_fstudy_resumed(s), resumed);
		resumed = pc_fstudy_resumed(s);
		pc_fstudy_set_cache(s, 0);
		REQUIRE(pc_fstudy_random(s, group, 1, 2e-3, 4, 3, &off, &err) == 0);
		CHECK_INT(pc_fstudy_resumed(s), resumed);
		CHECK_MSG(on.accuracy.mean == off.accuracy.mean && on.loss.mean == off.loss.mean &&
			  on.loss.std == off.loss.std && on.flips_mean == off.flips_mean && on.non_finite == off.non_finite,
			  "%s: cached loss %.17g accuracy %.17g, whole pass %.17g %.17g", layers[i], on.loss.mean,
			  on.accuracy.mean, off.loss.mean, off.accuracy.mean);
	}
	/* two layers: from the earlier one's cut */
	{
		struct pc_faults_bitref flips[2];
		struct pc_eval on, off;

		flips[0].elem = pc_graph_param(f.g, pc_graph_find_param(f.g, "fc2.weight"))->offset + 17;
		flips[1].elem = pc_graph_param(f.g, pc_graph_find_param(f.g, "conv2.weight"))->offset + 5;
		flips[0].bit = flips[1].bit = 14;
		pc_fstudy_set_cache(s, 1);
		REQUIRE(pc_fstudy_eval_flips(s, flips, 2, &on, &err) == 0);
		pc_fstudy_set_cache(s, 0);
		REQUIRE(pc_fstudy_eval_flips(s, flips, 2, &off, &err) == 0);
		CHECK(on.correct == off.correct && (on.loss == off.loss || (isnan(on.loss) && isnan(off.loss))));
		CHECK(on.correct != pc_fstudy_clean(s)->correct || on.loss != pc_fstudy_clean(s)->loss);
	}
	pc_fstudy_free(s);
out:
	free_fixture(&f);
}

/* One layer's random study with and without the cache: the time it saves
 * (printed; the numbers are compared above). */
TEST(fstudy_prefix_cache_speed)
{
	struct fixture f;
	struct pc_fstudy *s;
	struct pc_fstudy_random on, off;
	struct pc_error err = {0};
	int group[1];
	double t0, t1, t2;

	if (!load_fixture(t, 0, 2, &f))
		return;
	s = study(t, &f, PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR);
	if (!s)
		goto out;
	group[0] = pc_graph_find_param(f.g, "fc1.weight");
	t0 = pc_sys_seconds();
	REQUIRE(pc_fstudy_random(s, group, 1, 1e-4, 20, 1, &on, &err) == 0);
	t1 = pc_sys_seconds();
	pc_fstudy_set_cache(s, 0);
	REQUIRE(pc_fstudy_random(s, group, 1, 1e-4, 20, 1, &off, &err) == 0);
	t2 = pc_sys_seconds();
	printf("  fstudy int8 fc1.weight ber 1e-4, 20 trials (%lld passes): %.3f s from the cut, %.3f s whole\n",
	       (long long)on.passes, t1 - t0, t2 - t1);
	CHECK(on.accuracy.mean == off.accuracy.mean && on.loss.mean == off.loss.mean);
	CHECK(on.passes == 20);
	pc_fstudy_free(s);
out:
	free_fixture(&f);
}

/* The faults block in a whole study (pc_study_run): the report's faults
 * section holds, per format and group, what the calls above give on their
 * own, the same at 1 and 2 threads, and a group of int8 biases only has its
 * row of exposed bits. */
static json_t *study_report(struct pc_test *t, struct fixture *f, const char *spec_text, int threads)
{
	struct pc_study_opts o;
	struct pc_error err = {0};
	struct pc_spec spec;
	json_t *root, *rep = NULL;
	char msg[800];

	root = json_loads(spec_text, 0, NULL);
	if (!root || pc_spec_parse(root, &spec, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "spec: %s", pc_error_format(&err, msg, sizeof(msg)));
		json_decref(root);
		return NULL;
	}
	json_decref(root);
	pc_study_opts_default(&o);
	o.threads = threads;
	o.timing_seconds = 0;
	if (pc_study_run(f->g, f->d, &spec, &o, &rep, &err))
		pc_test_fail(t, __FILE__, __LINE__, "study: %s", pc_error_format(&err, msg, sizeof(msg)));
	pc_spec_free(&spec);
	return rep;
}

#define FAULTS_SPEC                                                                                                    \
	"{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"seed\": 5, \"batch_size\": 250, "   \
	"\"corruption\": [], \"faults\": {\"formats\": [\"int8\", \"float16\"], \"ber\": [1e-5], \"trials\": 6, "   \
	"\"bits\": {\"weights\": 3, \"trials\": 2}, \"groups\": [\"model\", \"tensor\"]}}"

TEST(fstudy_in_the_study)
{
	struct fixture f;
	struct pc_fstudy *s = NULL;
	struct pc_fstudy_random rnd;
	struct pc_fstudy_bit bit;
	struct pc_error err = {0};
	json_t *one = NULL, *two = NULL, *faults, *row;
	int np, bias = -1, n_exposed_rows = 0;
	size_t i;

	if (!load_fixture(t, 500, 2, &f))
		return;
	np = pc_graph_param_tensors(f.g);
	REQUIRE((one = study_report(t, &f, FAULTS_SPEC, 1)) && (two = study_report(t, &f, FAULTS_SPEC, 2)));
	CHECK_MSG(json_equal(one, two), "the report depends on the thread count");
	faults = json_object_get(one, "faults");
	REQUIRE(faults);
	CHECK(json_array_size(json_object_get(one, "results")) == 0);
	/* per format: the model and every tensor */
	CHECK_INT(json_array_size(json_object_get(faults, "exposed")), 2 * (1 + np));
	/* the int8 model, fresh: the same clean numbers and trials */
	s = study(t, &f, PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR);
	REQUIRE(s);
	row = json_object_get(json_object_get(faults, "quantized"), "int8");
	CHECK(json_real_value(json_object_get(row, "accuracy")) == pc_fstudy_clean(s)->accuracy);
	/* the study's batches may be smaller (cache-sized): the loss's sum order differs */
	CHECK_CLOSE(json_real_value(json_object_get(row, "loss")), pc_fstudy_clean(s)->loss, 0, 1e-6);
	REQUIRE(pc_fstudy_random(s, f.all, f.n_all, 1e-5, 6, 5, &rnd, &err) == 0);
	row = json_array_get(json_object_get(faults, "random"), 0);
	CHECK(!strcmp(str(row, "format"), "int8") && !strcmp(str(row, "group"), "model"));
	CHECK(num(row, "accuracy_mean") == rnd.accuracy.mean && num(row, "flips_mean") == rnd.flips_mean);
	REQUIRE(pc_fstudy_bit(s, f.all, f.n_all, 7, 3, 2, 5, &bit, &err) == 0);
	json_array_foreach(json_object_get(faults, "bits"), i, row)
	{
		if (!strcmp(str(row, "format"), "int8") && !strcmp(str(row, "group"), "model") && num(row, "bit") == 7)
			CHECK(num(row, "accuracy_mean") == bit.accuracy_mean);
	}
	/* int8 leaves a bias in float: its tensor group exposes nothing and has no other row */
	for (int p = 0; p < np && bias < 0; p++)
		if (strstr(pc_graph_param(f.g, p)->name, "bias"))
			bias = p;
	REQUIRE(bias >= 0);
	json_array_foreach(json_object_get(faults, "exposed"), i, row)
	{
		char want[300];

		snprintf(want, sizeof(want), "tensor:%s", pc_graph_param(f.g, bias)->name);
		if (!strcmp(str(row, "group"), want)) {
			n_exposed_rows++;
			CHECK(num(row, "bits") == (!strcmp(str(row, "format"), "int8") ? 0 : 16 * (double)pc_graph_param(f.g, bias)->count));
		}
	}
	CHECK_INT(n_exposed_rows, 2);
	json_array_foreach(json_object_get(faults, "random"), i, row)
	{
		char want[300];

		snprintf(want, sizeof(want), "tensor:%s", pc_graph_param(f.g, bias)->name);
		CHECK_MSG(strcmp(str(row, "group"), want) || strcmp(str(row, "format"), "int8"),
			  "an int8 bias group has random trials");
	}
	/* per format: (1 + np) groups x 1 ber, less the int8 groups of biases */
	CHECK(json_array_size(json_object_get(faults, "random")) < (size_t)(2 * (1 + np)));
	CHECK(num(faults, "passes") > 0);
	pc_fstudy_free(s);
	json_decref(one);
	json_decref(two);
	free_fixture(&f);
}
