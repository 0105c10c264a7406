/* curvature: paracorr's central-difference Hessian-vector products, top
 * eigenvalues and trace against PyTorch's double-backward numbers in
 * float64 (tests/reference/make_curvature_refs.py) on two fixtures. Set
 * PARACORR_CURV_VERBOSE=1 to print the measured errors. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/analysis.h"
#include "paracorr/curvature.h"
#include "paracorr/groups.h"
#include "paracorr/onnx.h"
#include "paracorr/sys.h"
#include "gradcheck.h"
#include "onnx_build.h"
#include "test.h"

struct cfix {
	struct pc_graph *g;
	struct pc_dataset *d;
	struct pc_runner *r;
	json_t *ref; /* this fixture's object */
	json_t *root;
};

static int verbose(void)
{
	return getenv("PARACORR_CURV_VERBOSE") != NULL;
}

/* PARACORR_CURV_TAU overrides the displacement, to measure its effect. */
static const struct pc_curv_opts *opts(void)
{
	static struct pc_curv_opts o;

	o.tau = getenv("PARACORR_CURV_TAU") ? atof(getenv("PARACORR_CURV_TAU")) : 0;
	return &o;
}

static void cfix_free(struct cfix *f)
{
	pc_runner_free(f->r);
	pc_dataset_free(f->d);
	pc_graph_free(f->g);
	json_decref(f->root);
}

static int cfix_load(struct pc_test *t, const char *model, int threads, struct cfix *f)
{
	struct pc_error err = {0};
	char path[512], msg[800];
	json_error_t jerr;

	memset(f, 0, sizeof(*f));
	snprintf(path, sizeof(path), "%s/" FIX "curvature_refs.json", pc_test_root());
	f->root = json_load_file(path, 0, &jerr);
	if (!f->root || !(f->ref = json_object_get(json_object_get(f->root, "fixtures"), model))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, f->root ? "no such fixture" : jerr.text);
		cfix_free(f);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/" FIX "%s", pc_test_root(), model);
	if (pc_onnx_load_file(path, &f->g, &err) ||
	    pc_dataset_load(T10K_X, T10K_Y, NULL, json_integer_value(json_object_get(f->ref, "samples")), &f->d,
			    &err) ||
	    !(f->r = pc_runner_new(f->g, 100, threads, PC_PLAN_GRAD, &err))) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		cfix_free(f);
		return 0;
	}
	return 1;
}

static int all_params(const struct pc_graph *g, int *idx)
{
	int n = pc_graph_param_tensors(g);

	for (int i = 0; i < n; i++)
		idx[i] = i;
	return n;
}

static int param_named(const struct pc_graph *g, const char *name)
{
	for (int i = 0; i < pc_graph_param_tensors(g); i++)
		if (strcmp(pc_graph_param(g, i)->name, name) == 0)
			return i;
	return -1;
}

static double num_of(const json_t *row, const char *a, const char *b)
{
	return json_number_value(json_object_get(json_object_get(row, a), b));
}

static double dotd(const double *a, const double *b, int64_t n)
{
	double s = 0;

	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* HVPs of the whole model (v.Hv, ||Hv||) and of one layer (the whole
 * vector) within 0.5% of PyTorch's. */
static void check_hvps(struct pc_test *t, const char *model)
{
	struct cfix f;
	struct pc_error err = {0};
	struct pc_curv *c = NULL;
	int idx[64], n, layer;
	double *v = NULL, *hv = NULL;
	json_t *rows, *lay;
	int64_t size;

	if (!cfix_load(t, model, 2, &f))
		return;
	n = all_params(f.g, idx);
	REQUIRE(pc_curv_new(f.r, f.d, 0, idx, n, opts(), &c, &err) == 0);
	size = pc_curv_size(c);
	CHECK_INT(size, json_integer_value(json_object_get(f.ref, "parameters")));
	v = malloc((size_t)size * sizeof(double));
	hv = malloc((size_t)size * sizeof(double));
	REQUIRE(v && hv);
	rows = json_object_get(f.ref, "hvp");
	REQUIRE(json_array_size(rows) == 3);
	for (size_t k = 0; k < json_array_size(rows); k++) {
		json_t *row = json_array_get(rows, k);
		double want_vhv = json_number_value(json_object_get(row, "vHv"));
		double want_norm = json_number_value(json_object_get(row, "hv_norm")), got_vhv, got_norm;
		pc_curv_seeded_vector((uint64_t)json_integer_value(json_object_get(row, "seed")), size, v);
		REQUIRE(pc_curv_hvp(c, v, hv, &err) == 0);
		got_vhv = dotd(v, hv, size);
		got_norm = sqrt(dotd(hv, hv, size));
		if (verbose())
			fprintf(stderr, "%s model seed %lld: vHv %.6g (torch %.6g, rel %.2e), ||Hv|| %.6g (torch %.6g, rel %.2e)\n",
				model, (long long)json_integer_value(json_object_get(row, "seed")), got_vhv, want_vhv,
				fabs(got_vhv - want_vhv) / fabs(want_vhv), got_norm, want_norm,
				fabs(got_norm - want_norm) / want_norm);
		CHECK_CLOSE(got_vhv, want_vhv, 0, 5e-3);
		CHECK_CLOSE(got_norm, want_norm, 0, 5e-3);
	}
	CHECK_INT(pc_curv_hvp_count(c), 3);
	/* every pass wrote the clean weights back bit for bit */
	for (int w = 0; w < pc_runner_threads(f.r); w++)
		CHECK(memcmp(pc_plan_weights(pc_runner_plan(f.r, w)), pc_graph_params(f.g),
			     (size_t)pc_graph_param_count(f.g) * sizeof(float)) == 0);
	pc_curv_free(c);
	c = NULL;

	lay = json_object_get(f.ref, "layer");
	layer = param_named(f.g, json_string_value(json_object_get(lay, "tensor")));
	REQUIRE(layer >= 0);
	REQUIRE(pc_curv_new(f.r, f.d, 0, &layer, 1, opts(), &c, &err) == 0);
	{
		json_t *row = json_array_get(json_object_get(lay, "hvp"), 0), *want = json_object_get(row, "hv");
		int64_t m = pc_curv_size(c);
		double num = 0, den = 0;
		REQUIRE((int64_t)json_array_size(want) == m);
		pc_curv_seeded_vector((uint64_t)json_integer_value(json_object_get(row, "seed")), m, v);
		REQUIRE(pc_curv_hvp(c, v, hv, &err) == 0);
		for (int64_t i = 0; i < m; i++) {
			double d = hv[i] - json_number_value(json_array_get(want, (size_t)i));
			num += d * d;
			den += json_number_value(json_array_get(want, (size_t)i)) *
			       json_number_value(json_array_get(want, (size_t)i));
		}
		if (verbose())
			fprintf(stderr, "%s layer %s: ||Hv - Hv_torch|| / ||Hv_torch|| = %.2e\n", model,
				json_string_value(json_object_get(lay, "tensor")), sqrt(num / den));
		CHECK_MSG(sqrt(num / den) <= 5e-3, "relative error %g", sqrt(num / den));
	}

	pc_curv_free(c);
	free(v);
	free(hv);
	cfix_free(&f);
}

/* The top eigenvalue within 1% and, when check_trace, the trace within the
 * combined 95% error of the two estimates. */
static void check_spectrum(struct pc_test *t, const char *model, int trace_samples, int check_trace)
{
	struct cfix f;
	struct pc_error err = {0};
	struct pc_curv *c = NULL;
	struct pc_stats st;
	int idx[64], n, found, steps, conv;
	double eig[3], want_t, want_hw;
	json_t *we, *tr;

	if (!cfix_load(t, model, 2, &f))
		return;
	n = all_params(f.g, idx);
	REQUIRE(pc_curv_new(f.r, f.d, 0, idx, n, opts(), &c, &err) == 0);
	REQUIRE(pc_curv_top(c, 3, 60, 9, eig, &found, &steps, &conv, &err) == 0);
	we = json_object_get(f.ref, "eigenvalues");
	if (verbose())
		fprintf(stderr, "%s eigenvalues %.6g %.6g %.6g (torch %.6g %.6g %.6g), %d steps, converged %d\n", model,
			eig[0], eig[1], eig[2], json_number_value(json_array_get(we, 0)),
			json_number_value(json_array_get(we, 1)), json_number_value(json_array_get(we, 2)), steps, conv);
	CHECK_INT(found, 3);
	CHECK(conv);
	CHECK_INT(pc_curv_hvp_count(c), steps);
	CHECK_CLOSE(eig[0], json_number_value(json_array_get(we, 0)), 0, 1e-2);
	if (!trace_samples) {
		pc_curv_free(c);
		cfix_free(&f);
		return;
	}
	REQUIRE(pc_curv_trace(c, trace_samples, 21, &st, &err) == 0);
	tr = json_object_get(f.ref, "trace");
	want_t = json_number_value(json_object_get(tr, "mean"));
	want_hw = 1.96 * json_number_value(json_object_get(tr, "std_error"));
	if (verbose())
		fprintf(stderr, "%s trace %.6g [%.6g, %.6g] (%d samples), torch %.6g +- %.3g\n", model, st.mean,
			st.ci95[0], st.ci95[1], trace_samples, want_t, want_hw);
	if (check_trace) {
		double hw = (st.ci95[1] - st.ci95[0]) / 2;
		CHECK_MSG(fabs(st.mean - want_t) <= sqrt(hw * hw + want_hw * want_hw), "trace %g vs %g", st.mean,
			  want_t);
	}
	CHECK_INT(pc_curv_hvp_count(c), steps + trace_samples);

	pc_curv_free(c);
	cfix_free(&f);
}

/* ReLU and max-pool models: the products are of the pass with its gates
 * frozen at the clean weights (plan.h), the function PyTorch's double
 * backward differentiates, so they hold to the same 0.5% as on the smooth
 * model, and the trace with them. */
TEST(curvature_hvp_matches_pytorch_relu_mlp)
{
	check_hvps(t, "mlp_op13.onnx");
}

TEST(curvature_hvp_matches_pytorch_relu_cnn)
{
	check_hvps(t, "cnn_op17.onnx");
}

TEST(curvature_spectrum_matches_pytorch_relu_mlp)
{
	check_spectrum(t, "mlp_op13.onnx", 100, 1);
}

TEST(curvature_spectrum_matches_pytorch_relu_cnn)
{
	check_spectrum(t, "cnn_op17.onnx", 40, 1);
}

/* A product is the same bits at one thread and at two. */
TEST(curvature_hvp_is_thread_count_independent)
{
	struct cfix f1, f2;
	struct pc_error err = {0};
	struct pc_curv *c1 = NULL, *c2 = NULL;
	int idx[64], n;
	double *v = NULL, *h1 = NULL, *h2 = NULL;
	int64_t size;

	if (!cfix_load(t, "cnn_op17.onnx", 1, &f1))
		return;
	if (!cfix_load(t, "cnn_op17.onnx", 2, &f2)) {
		cfix_free(&f1);
		return;
	}
	n = all_params(f1.g, idx);
	REQUIRE(pc_curv_new(f1.r, f1.d, 0, idx, n, NULL, &c1, &err) == 0);
	REQUIRE(pc_curv_new(f2.r, f2.d, 0, idx, n, NULL, &c2, &err) == 0);
	size = pc_curv_size(c1);
	v = malloc((size_t)size * sizeof(double));
	h1 = malloc((size_t)size * sizeof(double));
	h2 = malloc((size_t)size * sizeof(double));
	REQUIRE(v && h1 && h2);
	pc_curv_seeded_vector(4, size, v);
	REQUIRE(pc_curv_hvp(c1, v, h1, &err) == 0);
	REQUIRE(pc_curv_hvp(c2, v, h2, &err) == 0);
	CHECK(memcmp(h1, h2, (size_t)size * sizeof(double)) == 0);
	/* and again on the same runner */
	REQUIRE(pc_curv_hvp(c2, v, h2, &err) == 0);
	CHECK(memcmp(h1, h2, (size_t)size * sizeof(double)) == 0);
	if (verbose()) {
		/* the cost of a product in gradient passes, printed, never asserted */
		float *g = malloc((size_t)pc_graph_param_count(f1.g) * sizeof(float));
		struct pc_eval ev;
		double t0 = pc_sys_seconds(), tg, th;
		REQUIRE(g);
		for (int k = 0; k < 10; k++)
			REQUIRE(pc_eval_run(f1.r, f1.d, 0, g, NULL, NULL, &ev, &err) == 0);
		tg = (pc_sys_seconds() - t0) / 10;
		t0 = pc_sys_seconds();
		for (int k = 0; k < 10; k++)
			REQUIRE(pc_curv_hvp(c1, v, h1, &err) == 0);
		th = (pc_sys_seconds() - t0) / 10;
		fprintf(stderr, "cnn_op17.onnx, 1 thread: gradient pass %.4f s, HVP %.4f s = %.2f gradient passes\n", tg,
			th, th / tg);
		free(g);
	}

	pc_curv_free(c1);
	pc_curv_free(c2);
	free(v);
	free(h1);
	free(h2);
	cfix_free(&f1);
	cfix_free(&f2);
}

TEST(curvature_rejects_bad_arguments)
{
	struct cfix f;
	struct pc_error err = {0};
	struct pc_curv *c = NULL;
	int idx[64], n, found, steps, conv, bad = 99;
	double eig[4];
	struct pc_stats st;

	if (!cfix_load(t, "mlp_op13.onnx", 1, &f))
		return;
	CHECK(pc_curv_new(f.r, f.d, 0, &bad, 1, NULL, &c, &err) == PC_ERR_INVALID);
	CHECK(strcmp(err.where, "group") == 0);
	n = all_params(f.g, idx);
	memset(&err, 0, sizeof(err));
	REQUIRE(pc_curv_new(f.r, f.d, 0, idx, n, opts(), &c, &err) == 0);
	CHECK(pc_curv_top(c, 4, 3, 1, eig, &found, &steps, &conv, &err) == PC_ERR_INVALID);
	CHECK(strcmp(err.where, "eigenvalues") == 0);
	memset(&err, 0, sizeof(err));
	CHECK(pc_curv_top(c, 1, PC_CURV_MAX_ITERATIONS + 1, 1, eig, &found, &steps, &conv, &err) == PC_ERR_INVALID);
	CHECK(strcmp(err.where, "iterations") == 0);
	memset(&err, 0, sizeof(err));
	CHECK(pc_curv_trace(c, 0, 1, &st, &err) == PC_ERR_INVALID);
	CHECK(strcmp(err.where, "trace_samples") == 0);
	{
		int64_t m = pc_curv_size(c);
		double *v = calloc((size_t)m, sizeof(double)), *hv = malloc((size_t)m * sizeof(double));
		REQUIRE(v && hv);
		memset(&err, 0, sizeof(err));
		/* zero: a zero product without a pass */
		hv[0] = 1;
		CHECK(pc_curv_hvp(c, v, hv, &err) == 0);
		CHECK(hv[0] == 0);
		v[7] = INFINITY;
		CHECK(pc_curv_hvp(c, v, hv, &err) == PC_ERR_INVALID);
		CHECK(strcmp(err.where, "vector") == 0);
		free(v);
		free(hv);
	}
	CHECK_INT(pc_curv_hvp_count(c), 0);

	pc_curv_free(c);
	cfix_free(&f);
}

TEST(curvature_hvp_matches_pytorch_smooth_mlp)
{
	check_hvps(t, "mlp_tanh_op13.onnx");
}

TEST(curvature_spectrum_matches_pytorch_smooth_mlp)
{
	check_spectrum(t, "mlp_tanh_op13.onnx", 100, 1);
}


/* --- a tiny ReLU MLP against its Hessian in double precision ------------- */

enum { TINY_IN = 4, TINY_HID = 5, TINY_OUT = 3, TINY_N = 64 };
/* the parameter vector as paracorr's table orders it: W1, B1, W2, B2 */
enum { TINY_W1 = 0, TINY_B1 = TINY_W1 + TINY_HID * TINY_IN, TINY_W2 = TINY_B1 + TINY_HID,
       TINY_B2 = TINY_W2 + TINY_OUT * TINY_HID, TINY_P = TINY_B2 + TINY_OUT };

/* The mean cross-entropy's gradient at w in double, the Relu gates taken
 * from gate_w (the pass PyTorch's double backward differentiates: its
 * Relu has no second derivative). */
static void tiny_grad(const double *w, const double *gate_w, const float *x, const int32_t *y, double *g)
{
	memset(g, 0, TINY_P * sizeof(double));
	for (int s = 0; s < TINY_N; s++) {
		double h[TINY_HID], r[TINY_HID], z[TINY_OUT], dz[TINY_OUT], dr[TINY_HID], m = -INFINITY, sum = 0;
		for (int j = 0; j < TINY_HID; j++) {
			double a = w[TINY_B1 + j], a0 = gate_w[TINY_B1 + j];
			for (int i = 0; i < TINY_IN; i++) {
				a += w[TINY_W1 + j * TINY_IN + i] * x[s * TINY_IN + i];
				a0 += gate_w[TINY_W1 + j * TINY_IN + i] * x[s * TINY_IN + i];
			}
			h[j] = a0 > 0; /* the gate */
			r[j] = h[j] * a;
		}
		for (int k = 0; k < TINY_OUT; k++) {
			z[k] = w[TINY_B2 + k];
			for (int j = 0; j < TINY_HID; j++)
				z[k] += w[TINY_W2 + k * TINY_HID + j] * r[j];
			m = z[k] > m ? z[k] : m;
		}
		for (int k = 0; k < TINY_OUT; k++)
			sum += exp(z[k] - m);
		for (int k = 0; k < TINY_OUT; k++)
			dz[k] = (exp(z[k] - m) / sum - (k == y[s])) / TINY_N;
		for (int j = 0; j < TINY_HID; j++) {
			dr[j] = 0;
			for (int k = 0; k < TINY_OUT; k++) {
				g[TINY_W2 + k * TINY_HID + j] += dz[k] * r[j];
				dr[j] += dz[k] * w[TINY_W2 + k * TINY_HID + j];
			}
			dr[j] *= h[j];
			g[TINY_B1 + j] += dr[j];
			for (int i = 0; i < TINY_IN; i++)
				g[TINY_W1 + j * TINY_IN + i] += dr[j] * x[s * TINY_IN + i];
		}
		for (int k = 0; k < TINY_OUT; k++)
			g[TINY_B2 + k] += dz[k];
	}
}

TEST(curvature_hvp_matches_double_precision_differences_tiny_relu_mlp)
{
	static const int64_t in_dims[2] = {-1, TINY_IN}, w1d[2] = {TINY_HID, TINY_IN}, b1d[1] = {TINY_HID},
			     w2d[2] = {TINY_OUT, TINY_HID}, b2d[1] = {TINY_OUT};
	static const char *const g1_in[] = {"x", "W1", "B1", NULL}, *const g1_out[] = {"h", NULL};
	static const char *const r_in[] = {"h", NULL}, *const r_out[] = {"r", NULL};
	static const char *const g2_in[] = {"r", "W2", "B2", NULL}, *const g2_out[] = {"y", NULL};
	float wf[TINY_P];
	double w0[TINY_P], wp[TINY_P], wm[TINY_P], gp[TINY_P], gm[TINY_P], v[TINY_P], hv[TINY_P], want[TINY_P];
	double num = 0, den = 0, hd = 1e-5;
	struct ob_model b;
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_runner *r = NULL;
	struct pc_curv *c = NULL;
	struct pc_error err = {0};
	unsigned char *buf;
	size_t len;
	int idx[4] = {0, 1, 2, 3};

	gc_fill(wf, TINY_P, 7, -1.0f, 1.0f);
	ob_init(&b, 13, "x", 2, in_dims, "y");
	ob_float(&b, "W1", 2, w1d, wf + TINY_W1);
	ob_float(&b, "B1", 1, b1d, wf + TINY_B1);
	ob_float(&b, "W2", 2, w2d, wf + TINY_W2);
	ob_float(&b, "B2", 1, b2d, wf + TINY_B2);
	ob_attr_int(ob_node(&b, "Gemm", "fc1", g1_in, g1_out), &b, "transB", 1);
	ob_node(&b, "Relu", "relu", r_in, r_out);
	ob_attr_int(ob_node(&b, "Gemm", "fc2", g2_in, g2_out), &b, "transB", 1);
	buf = ob_pack(&b, &len);
	REQUIRE(buf);
	REQUIRE(pc_onnx_load_buffer(buf, len, &g, &err) == 0);
	free(buf);
	REQUIRE(pc_graph_param_count(g) == TINY_P && pc_graph_param_tensors(g) == 4);
	d = calloc(1, sizeof(*d));
	REQUIRE(d);
	d->x = malloc(TINY_N * TINY_IN * sizeof(float));
	d->y = malloc(TINY_N * sizeof(int32_t));
	REQUIRE(d->x && d->y);
	d->n = TINY_N;
	d->sample.ndim = 1;
	d->sample.dim[0] = TINY_IN;
	d->positions = 1;
	d->label_ndim = 1;
	d->labelled = TINY_N;
	d->classes = TINY_OUT;
	d->input_dtype = 1;
	gc_fill(d->x, TINY_N * TINY_IN, 8, -2.0f, 2.0f);
	for (int s = 0; s < TINY_N; s++)
		d->y[s] = (int32_t)((s * 7) % TINY_OUT);
	/* batches of 16 on two threads: the product sums four of them */
	r = pc_runner_new(g, 16, 2, PC_PLAN_GRAD, &err);
	REQUIRE(r);
	REQUIRE(pc_curv_new(r, d, 0, idx, 4, NULL, &c, &err) == 0);
	REQUIRE(pc_curv_size(c) == TINY_P);
	pc_curv_seeded_vector(3, TINY_P, v);
	REQUIRE(pc_curv_hvp(c, v, hv, &err) == 0);
	/* the reference: a central difference in double of the double
	 * gradient with the gates of w0, whose error is O(hd^2) */
	for (int i = 0; i < TINY_P; i++) {
		w0[i] = pc_graph_params(g)[i];
		wp[i] = w0[i] + hd * v[i];
		wm[i] = w0[i] - hd * v[i];
	}
	tiny_grad(wp, w0, d->x, d->y, gp);
	tiny_grad(wm, w0, d->x, d->y, gm);
	for (int i = 0; i < TINY_P; i++) {
		want[i] = (gp[i] - gm[i]) / (2 * hd);
		num += (hv[i] - want[i]) * (hv[i] - want[i]);
		den += want[i] * want[i];
	}
	if (verbose())
		fprintf(stderr, "tiny ReLU MLP: ||Hv - Hv_double|| / ||Hv_double|| = %.2e (||Hv|| %.4g)\n",
			sqrt(num / den), sqrt(den));
	CHECK(den > 1e-4);
	CHECK_MSG(sqrt(num / den) <= 1e-3, "relative error %g", sqrt(num / den));

	pc_curv_free(c);
	pc_runner_free(r);
	pc_dataset_free(d);
	pc_graph_free(g);
}

/* --- the curvature block of a study ---------------------------------------- */

/* The report of the study of spec text on the fixture, at 2 threads and
 * without timing; *spec filled (the caller frees it). NULL after failing
 * the test. */
static json_t *study_report(struct pc_test *t, const struct cfix *f, const char *text, struct pc_spec *spec)
{
	struct pc_error err = {0};
	struct pc_study_opts o;
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr), *report = NULL;
	char msg[800];

	memset(spec, 0, sizeof(*spec));
	if (!root) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", jerr.text);
		return NULL;
	}
	if (pc_spec_parse(root, spec, &err)) {
		json_decref(root);
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		return NULL;
	}
	json_decref(root);
	pc_study_opts_default(&o);
	o.threads = 2;
	o.timing_seconds = 0;
	if (pc_study_run(f->g, f->d, spec, &o, &report, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		return NULL;
	}
	return report;
}

/* A study of cnn_op17 on the references' 500 images with a curvature
 * block: the report's curvature against PyTorch's eigenvalues and trace,
 * every gradient row's second_order against eps ||g||_q + eps^2 u.Hu / 2
 * from PyTorch's u.Hu for the same direction, and multi-step rows with
 * their own product. (The groups' numbers: the next test.) */
TEST(curvature_study_block_matches_pytorch_cnn)
{
	struct cfix f;
	struct pc_spec spec;
	json_t *report = NULL, *cv, *rows, *row, *so_refs;
	size_t i;
	int checked = 0;
	const char *text =
		"{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"limit\": 500,"
		" \"batch_size\": 100, \"seed\": 5,"
		" \"corruption\": [{\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.01, 0.1], \"random_trials\": 1,"
		"   \"groups\": [\"model\", \"tensor\"]},"
		"  {\"norms\": [\"l2\"], \"epsilons\": [0.05], \"steps\": 3, \"random_trials\": 1, \"groups\": [\"model\"]}],"
		" \"curvature\": {\"eigenvalues\": 2, \"trace_samples\": 30}}";

	if (!cfix_load(t, "cnn_op17.onnx", 2, &f))
		return;
	report = study_report(t, &f, text, &spec);
	REQUIRE(report);
	cv = json_object_get(report, "curvature");
	REQUIRE(json_is_object(cv));
	{
		json_t *we = json_object_get(f.ref, "eigenvalues"), *tr = json_object_get(f.ref, "trace");
		double lo = json_number_value(json_array_get(json_object_get(cv, "trace_ci95"), 0));
		double hi = json_number_value(json_array_get(json_object_get(cv, "trace_ci95"), 1));
		double want_t = json_number_value(json_object_get(tr, "mean"));
		double want_hw = 1.96 * json_number_value(json_object_get(tr, "std_error")), hw = (hi - lo) / 2;
		CHECK_INT(json_array_size(json_object_get(cv, "eigenvalues")), 2);
		for (int k = 0; k < 2; k++)
			CHECK_CLOSE(json_number_value(json_array_get(json_object_get(cv, "eigenvalues"), (size_t)k)),
				    json_number_value(json_array_get(we, (size_t)k)), 0, 1e-2);
		CHECK(json_is_true(json_object_get(cv, "converged")));
		CHECK_MSG(fabs(json_number_value(json_object_get(cv, "trace")) - want_t) <=
				  sqrt(hw * hw + want_hw * want_hw),
			  "trace %g vs %g", json_number_value(json_object_get(cv, "trace")), want_t);
		CHECK_INT(json_integer_value(json_object_get(cv, "hvp_count")),
			  json_integer_value(json_object_get(cv, "lanczos_steps")) + 30);
		CHECK_INT(json_integer_value(json_object_get(cv, "parameters")),
			  json_integer_value(json_object_get(f.ref, "parameters")));
		CHECK_INT(json_object_size(json_object_get(cv, "groups")), 0);
	}
	so_refs = json_object_get(json_object_get(f.root, "second_order"), "rows");
	REQUIRE(json_array_size(so_refs) == 4);
	rows = json_object_get(report, "results");
	json_array_foreach(rows, i, row)
	{
		const char *group = json_string_value(json_object_get(row, "group"));
		const char *norm = json_string_value(json_object_get(row, "norm"));
		double eps = json_number_value(json_object_get(row, "epsilon_effective"));
		json_t *ref;
		size_t k;
		REQUIRE_MSG(json_is_number(json_object_get(row, "second_order")), "row %zu has no second_order", i);
		if (json_integer_value(json_object_get(row, "steps")) > 1) {
			/* a multi-step corruption is its own direction: its estimate
			 * is near the realised change at a small radius */
			double change = num_of(row, "gradient", "loss_change");
			CHECK_CLOSE(json_number_value(json_object_get(row, "second_order")), change, 0, 0.2);
			continue;
		}
		json_array_foreach(so_refs, k, ref)
		{
			double want;
			if (strcmp(json_string_value(json_object_get(ref, "group")), group) != 0 ||
			    strcmp(json_string_value(json_object_get(ref, "norm")), norm) != 0)
				continue;
			want = eps * json_number_value(json_object_get(ref, "dual")) +
			       0.5 * eps * eps * json_number_value(json_object_get(ref, "uHu"));
			if (verbose())
				fprintf(stderr, "%s %s eps %g: second_order %.8g, torch %.8g, first_order %.6g, realised %.6g\n",
					group, norm, eps, json_number_value(json_object_get(row, "second_order")), want,
					json_number_value(json_object_get(row, "first_order")),
					num_of(row, "gradient", "loss_change"));
			CHECK_CLOSE(json_number_value(json_object_get(row, "second_order")), want, 0, 1e-3);
			checked++;
		}
	}
	CHECK_INT(checked, 8);
	json_decref(report);
	pc_spec_free(&spec);
	cfix_free(&f);
}

/* Per-group numbers obey Cauchy's interlacing: a group's Hessian is a
 * principal block of the model's, so its top eigenvalue is at most the
 * model's, and a layer's (weight and bias) at least its weight's. */
TEST(curvature_study_groups_interlace)
{
	struct cfix f;
	struct pc_spec spec;
	struct pc_error err = {0};
	char msg[800];
	json_t *report = NULL, *cv, *groups, *gj;
	const char *name;
	struct pc_layer_groups lg;
	double top, w2, l2;
	const char *text = "{\"model\": \"m\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, \"limit\": 500,"
			   " \"batch_size\": 100, \"corruption\": [],"
			   " \"curvature\": {\"trace_samples\": 0, \"groups\": [\"tensor\", \"layer\"]}}";

	if (!cfix_load(t, "mlp_op13.onnx", 2, &f))
		return;
	report = study_report(t, &f, text, &spec);
	REQUIRE(report);
	cv = json_object_get(report, "curvature");
	groups = json_object_get(cv, "groups");
	top = json_number_value(json_array_get(json_object_get(cv, "eigenvalues"), 0));
	CHECK_CLOSE(top, json_number_value(json_array_get(json_object_get(f.ref, "eigenvalues"), 0)), 0, 1e-2);
	CHECK(json_is_null(json_object_get(cv, "trace")) && json_is_null(json_object_get(cv, "trace_ci95")));
	/* a group per tensor and per layer */
	REQUIRE(pc_layer_groups_build(f.g, &lg, &err) == 0);
	CHECK_INT(json_object_size(groups), (size_t)(pc_graph_param_tensors(f.g) + lg.n));
	for (int i = 0; i < pc_graph_param_tensors(f.g); i++) {
		snprintf(msg, sizeof(msg), "tensor:%s", pc_graph_param(f.g, i)->name);
		CHECK_MSG(json_object_get(groups, msg), "no %s", msg);
	}
	for (int j = 0; j < lg.n; j++) {
		snprintf(msg, sizeof(msg), "layer:%s", lg.g[j].name);
		CHECK_MSG(json_object_get(groups, msg), "no %s", msg);
	}
	pc_layer_groups_free(&lg);
	json_object_foreach(groups, name, gj)
	{
		double e = json_number_value(json_array_get(json_object_get(gj, "eigenvalues"), 0));
		CHECK_MSG(e <= top * (1 + 1e-3), "%s: %g above the model's %g", name, e, top);
		CHECK(json_is_true(json_object_get(gj, "converged")));
	}
	w2 = json_number_value(json_array_get(json_object_get(json_object_get(groups, "tensor:fc2.weight"), "eigenvalues"), 0));
	l2 = json_number_value(json_array_get(json_object_get(json_object_get(groups, "layer:fc2"), "eigenvalues"), 0));
	CHECK_MSG(w2 > 0 && l2 >= w2 * (1 - 1e-3), "layer %g, its weight %g", l2, w2);
	CHECK_INT(json_integer_value(json_object_get(json_object_get(groups, "layer:fc2"), "parameters")),
		  pc_graph_param(f.g, param_named(f.g, "fc2.weight"))->count +
			  pc_graph_param(f.g, param_named(f.g, "fc2.bias"))->count);
	json_decref(report);
	pc_spec_free(&spec);
	cfix_free(&f);
}
