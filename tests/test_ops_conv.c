/* Conv and pooling ops: forward against naive references written here
 * (direct loops, double accumulation, their own output-size arithmetic from
 * the ONNX spec), gradients by finite differences, and load-time errors
 * that name the node.
 *
 * Every test graph is x -> op -> Flatten(axis 1), since a graph's output
 * must be [N, classes]. Speed is measured by `make bench`, not here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ops/conv_direct.h"
#include "paracorr/graph.h"
#include "paracorr/plan.h"
#include "test.h"

/* --- building one-node graphs --------------------------------------------- */

struct init_tensor {
	const char *name;
	struct pc_shape shape;
	const float *data;
};

static struct pc_attr attr_int(const char *name, int64_t v)
{
	struct pc_attr a = {.name = name, .type = PC_ATTR_INT, .i = v};
	return a;
}

static struct pc_attr attr_ints(const char *name, int n, const int64_t *v)
{
	struct pc_attr a = {.name = name, .type = PC_ATTR_INTS, .n = n, .ints = v};
	return a;
}

static struct pc_attr attr_str(const char *name, const char *s)
{
	struct pc_attr a = {.name = name, .type = PC_ATTR_STRING, .s = s};
	return a;
}

static struct pc_shape shape4(int64_t a, int64_t b, int64_t c, int64_t d)
{
	struct pc_shape s = {.ndim = 4, .dim = {a, b, c, d}};
	return s;
}

/* x (batch axis dynamic) -> op(x, inits...) named `name` -> Flatten -> out.
 * NULL with err filled when any step, pc_graph_finish included, fails. */
static struct pc_graph *one_node_graph(const struct pc_shape *xs, const char *op, const char *name, int n_init,
				       const struct init_tensor *inits, int n_attr, const struct pc_attr *attrs,
				       struct pc_error *err)
{
	struct pc_graph *g = pc_graph_new(13, err);
	struct pc_shape in = *xs;
	const char *inputs[4] = {"x"};
	const char *y = "y", *out = "out";
	struct pc_attr axis = attr_int("axis", 1);

	if (!g)
		return NULL;
	in.dim[0] = -1;
	if (pc_graph_add_input(g, "x", &in, err))
		goto fail;
	for (int i = 0; i < n_init; i++) {
		if (inits[i].data && pc_graph_add_float(g, inits[i].name, &inits[i].shape, inits[i].data, err))
			goto fail;
		inputs[1 + i] = inits[i].data ? inits[i].name : "";
	}
	if (pc_graph_add_node(g, op, name, 1 + n_init, inputs, 1, &y, n_attr, attrs, err) ||
	    pc_graph_add_node(g, "Flatten", "flatten", 1, &y, 1, &out, 1, &axis, err) ||
	    pc_graph_add_output(g, "out", err) || pc_graph_finish(g, err))
		goto fail;
	return g;
fail:
	pc_graph_free(g);
	return NULL;
}

static const char *fmt_err(const struct pc_error *err)
{
	static char buf[800];
	return pc_error_format(err, buf, sizeof(buf));
}

/* Runs g forward at batch n on x; returns the plan (caller frees). */
static struct pc_plan *run_forward(struct pc_test *t, const struct pc_graph *g, int n, const float *x, int64_t x_count)
{
	struct pc_error err = {0};
	struct pc_plan *p = pc_plan_new(g, n, 0, &err);

	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "plan: %s", fmt_err(&err));
		return NULL;
	}
	memcpy(pc_plan_input(p), x, (size_t)x_count * sizeof(float));
	pc_plan_forward(p);
	return p;
}

/* --- ONNX output-size arithmetic, written independently of the ops ------- */

/* Output length, leading pad and padded end along one axis. */
static void ref_axis(const char *auto_pad, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
		     int ceil_mode, int64_t *out, int64_t *lead, int64_t *end)
{
	int64_t ek = (k - 1) * d + 1;

	if (auto_pad && strcmp(auto_pad, "VALID") == 0) {
		*out = (int64_t)ceil((double)(in - ek + 1) / (double)s);
		*lead = 0;
		*end = in;
	} else if (auto_pad && strncmp(auto_pad, "SAME_", 5) == 0) {
		int64_t total;
		*out = (int64_t)ceil((double)in / (double)s);
		total = (*out - 1) * s + ek - in;
		if (total < 0)
			total = 0;
		*lead = strcmp(auto_pad, "SAME_UPPER") == 0 ? total / 2 : (total + 1) / 2;
		*end = in + total - *lead;
	} else {
		double q = (double)(in + pb + pe - ek) / (double)s;
		*out = (int64_t)(ceil_mode ? ceil(q) : floor(q)) + 1;
		if (ceil_mode && (*out - 1) * s >= in + pb)
			(*out)--;
		*lead = pb;
		*end = in + pe;
	}
}

/* --- Conv ------------------------------------------------------------------ */

struct conv_case {
	const char *label;
	int n, c, h, w, m, kh, kw;
	int sh, sw, dh, dw;
	int64_t pads[4]; /* top, left, bottom, right */
	int group;
	int bias;
	const char *auto_pad; /* NULL: attribute absent */
	int kernel_attr;      /* also give kernel_shape */
	int forward_only;     /* too big for the finite-difference checks */
};

/* strides 1/2, symmetric and asymmetric pads, dilation, groups, depthwise,
 * 1x1, bias or not, auto_pad, batches of one and several; the last three
 * have outputs big enough that the samples are split into several chunks
 * (with a one-sample tail). */
static const struct conv_case conv_cases[] = {
    {"3x3 plain", 2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, 1, 1, NULL, 1, 0},
    {"stride 2 pad 1", 2, 2, 8, 7, 3, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 0},
    {"asymmetric pads", 1, 2, 6, 5, 2, 3, 2, 2, 1, 1, 1, {1, 0, 2, 1}, 1, 0, NULL, 1, 0},
    {"dilation 2", 2, 2, 9, 8, 3, 3, 3, 1, 1, 2, 2, {2, 1, 2, 1}, 1, 1, NULL, 0, 0},
    {"dilation 2 stride 2", 2, 2, 9, 10, 2, 2, 3, 2, 2, 2, 2, {0, 1, 1, 0}, 1, 1, NULL, 0, 0},
    {"group 2", 2, 4, 6, 6, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 2, 1, NULL, 0, 0},
    {"depthwise", 2, 3, 6, 5, 3, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 3, 1, NULL, 0, 0},
    {"depthwise x2", 2, 3, 5, 6, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 3, 0, NULL, 0, 0},
    {"1x1", 3, 4, 5, 5, 3, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, 1, 0, NULL, 1, 0},
    {"1x1 group 2 bias", 2, 4, 3, 5, 4, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, 2, 1, NULL, 0, 0},
    {"1x1 stride 2", 2, 3, 5, 6, 2, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 1, NULL, 0, 0},
    {"1x1 padded", 1, 2, 4, 3, 2, 1, 1, 1, 1, 1, 1, {1, 0, 0, 1}, 1, 1, NULL, 0, 0},
    {"SAME_UPPER", 2, 2, 7, 6, 3, 4, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 1, "SAME_UPPER", 0, 0},
    {"SAME_LOWER", 2, 2, 7, 6, 3, 4, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 1, "SAME_LOWER", 0, 0},
    {"SAME_LOWER stride 1", 1, 2, 5, 5, 2, 2, 2, 1, 1, 1, 1, {0, 0, 0, 0}, 1, 0, "SAME_LOWER", 0, 0},
    {"VALID", 2, 2, 7, 8, 2, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 1, "VALID", 1, 0},
    {"NOTSET explicit", 1, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 1, "NOTSET", 0, 0},
    {"batch 1 5x5", 1, 3, 10, 10, 4, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, 1, 1, NULL, 0, 0},
    {"chunks 3x3", 7, 2, 40, 40, 3, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 0},
    {"chunks 1x1", 7, 3, 40, 40, 2, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, 1, 0, NULL, 0, 0},
    {"chunks grouped stride 2", 5, 4, 64, 64, 4, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 2, 1, NULL, 0, 0},
    /* the direct kernel's and Winograd's edges (ops/conv_direct.h,
     * ops/conv_winograd.h): more samples than one 16-lane chunk with a short
     * tail, output channels that are not a multiple of the 8-channel tile,
     * odd sizes (half tiles), more tiles than one block */
    {"winograd odd", 18, 5, 9, 11, 10, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 1},
    {"winograd unpadded", 3, 4, 8, 7, 8, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, 1, 0, NULL, 0, 1},
    {"winograd 28x28", 17, 16, 28, 28, 16, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 1},
    {"winograd asymmetric", 2, 8, 6, 9, 9, 3, 3, 1, 1, 1, 1, {0, 2, 1, 0}, 1, 1, NULL, 0, 1},
    {"lanes stride 2", 33, 3, 11, 9, 9, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 1},
    {"lanes dilated grouped", 20, 6, 10, 12, 12, 3, 3, 1, 2, 2, 1, {2, 1, 0, 2}, 3, 1, NULL, 0, 1},
    {"lanes 5x5 long rows", 16, 2, 5, 40, 7, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, 1, 1, NULL, 0, 1},
    /* 1-wide kernels lay out only the rows and columns they read */
    {"lanes 1x1 stride 2 wide", 18, 5, 9, 41, 9, 1, 1, 2, 2, 1, 1, {1, 1, 0, 1}, 1, 1, NULL, 0, 1},
    {"lanes 1x1 stride 3", 3, 2, 10, 11, 8, 1, 1, 3, 3, 1, 1, {0, 2, 1, 0}, 1, 0, NULL, 0, 1},
    {"lanes 1x3 stride 2", 17, 3, 8, 33, 5, 1, 3, 2, 2, 1, 1, {0, 1, 0, 1}, 1, 1, NULL, 0, 1},
    /* kernels cropped to the taps that meet the input (conv_geometry): a
     * 3x3 kernel on a 1x1 map is a 1x1 convolution, on a 2x2 map at stride
     * 2 a 2x2 one; rows only, dilated, asymmetric pads, grouped */
    {"crop 1x1 map", 18, 6, 1, 1, 9, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 0},
    {"crop 2x2 stride 2", 17, 5, 2, 2, 10, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 0},
    {"crop rows only", 3, 2, 1, 7, 3, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 0, NULL, 0, 0},
    {"crop dilated", 2, 2, 2, 3, 2, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, 1, 1, NULL, 0, 0},
    {"crop asymmetric", 17, 3, 1, 1, 4, 3, 3, 1, 1, 1, 1, {2, 0, 0, 2}, 1, 1, NULL, 0, 0},
    {"crop grouped", 3, 4, 1, 2, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 2, 1, NULL, 0, 0},
    /* the direct weight gradient sums several 16-sample chunks per call on
     * small maps (wgrad_chunks): all chunks in one call with a short tail,
     * calls of four chunks then one, grouped */
    {"wgrad chunks 4x4", 37, 3, 4, 4, 9, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 1, NULL, 0, 1},
    {"wgrad chunks 4x4 calls", 70, 2, 4, 4, 5, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 0, NULL, 0, 1},
    {"wgrad chunks 2x4 grouped", 35, 4, 2, 4, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 2, 1, NULL, 0, 1},
};

#define N_CONV_CASES ((int)(sizeof(conv_cases) / sizeof(conv_cases[0])))

struct conv_data {
	float *w, *b;
	struct pc_graph *g;
	int64_t oh, ow, pt, pl;
};

static void conv_data_free(struct conv_data *d)
{
	free(d->w);
	free(d->b);
	pc_graph_free(d->g);
	memset(d, 0, sizeof(*d));
}

/* Weights (seeded from the case index), the graph and the reference
 * geometry of a case. 0 on success. */
static int conv_setup(struct pc_test *t, int ci, struct conv_data *d)
{
	const struct conv_case *cs = &conv_cases[ci];
	int64_t kernel[2] = {cs->kh, cs->kw}, strides[2] = {cs->sh, cs->sw}, dil[2] = {cs->dh, cs->dw}, end;
	struct pc_attr attrs[6];
	struct init_tensor inits[2];
	struct pc_shape xs = shape4(cs->n, cs->c, cs->h, cs->w);
	struct pc_error err = {0};
	int64_t wcount = (int64_t)cs->m * (cs->c / cs->group) * cs->kh * cs->kw;
	int na = 0;

	memset(d, 0, sizeof(*d));
	d->w = malloc((size_t)wcount * sizeof(float));
	d->b = malloc((size_t)cs->m * sizeof(float));
	if (!d->w || !d->b) {
		pc_test_fail(t, __FILE__, __LINE__, "out of memory");
		conv_data_free(d);
		return -1;
	}
	gc_fill(d->w, wcount, 100 + (uint64_t)ci, -1.0f, 1.0f);
	gc_fill(d->b, cs->m, 200 + (uint64_t)ci, -1.0f, 1.0f);
	inits[0] = (struct init_tensor){"W", shape4(cs->m, cs->c / cs->group, cs->kh, cs->kw), d->w};
	inits[1] = (struct init_tensor){"B", {.ndim = 1, .dim = {cs->m}}, d->b};
	attrs[na++] = attr_ints("strides", 2, strides);
	attrs[na++] = attr_ints("dilations", 2, dil);
	attrs[na++] = attr_int("group", cs->group);
	if (cs->auto_pad)
		attrs[na++] = attr_str("auto_pad", cs->auto_pad);
	if (!cs->auto_pad || strcmp(cs->auto_pad, "NOTSET") == 0)
		attrs[na++] = attr_ints("pads", 4, cs->pads);
	if (cs->kernel_attr)
		attrs[na++] = attr_ints("kernel_shape", 2, kernel);
	d->g = one_node_graph(&xs, "Conv", "conv0", cs->bias ? 2 : 1, inits, na, attrs, &err);
	if (!d->g) {
		pc_test_fail(t, __FILE__, __LINE__, "case '%s': %s", cs->label, fmt_err(&err));
		conv_data_free(d);
		return -1;
	}
	ref_axis(cs->auto_pad, cs->h, cs->kh, cs->sh, cs->dh, cs->pads[0], cs->pads[2], 0, &d->oh, &d->pt, &end);
	ref_axis(cs->auto_pad, cs->w, cs->kw, cs->sw, cs->dw, cs->pads[1], cs->pads[3], 0, &d->ow, &d->pl, &end);
	return 0;
}

/* The definition: y[n,m,oh,ow] = b[m] + sum over the group's channels and
 * the kernel of w * x, with x zero outside the input. */
static void ref_conv(const struct conv_case *cs, const struct conv_data *d, const float *x, float *y)
{
	int cg = cs->c / cs->group, mg = cs->m / cs->group;

	for (int n = 0; n < cs->n; n++)
		for (int m = 0; m < cs->m; m++)
			for (int64_t oh = 0; oh < d->oh; oh++)
				for (int64_t ow = 0; ow < d->ow; ow++) {
					double acc = cs->bias ? d->b[m] : 0.0;
					for (int c = 0; c < cg; c++) {
						int cin = (m / mg) * cg + c;
						for (int i = 0; i < cs->kh; i++)
							for (int j = 0; j < cs->kw; j++) {
								int64_t ih = oh * cs->sh - d->pt + i * cs->dh;
								int64_t iw = ow * cs->sw - d->pl + j * cs->dw;
								if (ih < 0 || ih >= cs->h || iw < 0 || iw >= cs->w)
									continue;
								acc +=
								    (double)
									d->w[((m * cg + c) * cs->kh + i) * cs->kw + j] *
								    x[((n * cs->c + cin) * cs->h + ih) * cs->w + iw];
							}
					}
					y[((n * cs->m + m) * d->oh + oh) * d->ow + ow] = (float)acc;
				}
}

/* Every case through each path the machine has: the direct kernels
 * (sample lanes, Winograd) where the CPU has AVX2 or AVX-512, and the
 * im2col + sgemm fallback. */
TEST(ops_conv_forward_matches_reference)
{
	/* 0: the best kernels here, 1: im2col, 2: the AVX2 kernels (skipped
	 * where there are none) */
	for (int path = 0; path < 3; path++) {
		if (path == 2 && !pc_conv_direct_has_avx2())
			continue;
		pc_conv_direct_disabled = path == 1;
		pc_conv_direct_no_avx512 = path == 2;
		for (int ci = 0; ci < N_CONV_CASES; ci++) {
			const struct conv_case *cs = &conv_cases[ci];
			struct conv_data d;
			int64_t nx = (int64_t)cs->n * cs->c * cs->h * cs->w, ny;
			float *x, *y;
			struct pc_plan *p;
			int bad = 0;

			if (conv_setup(t, ci, &d))
				continue;
			ny = (int64_t)cs->n * cs->m * d.oh * d.ow;
			x = malloc((size_t)nx * sizeof(float));
			y = malloc((size_t)ny * sizeof(float));
			REQUIRE(x && y);
			gc_fill(x, nx, 300 + (uint64_t)ci, -1.0f, 1.0f);
			ref_conv(cs, &d, x, y);
			p = run_forward(t, d.g, cs->n, x, nx);
			if (p) {
				CHECK_MSG(pc_plan_classes(p) == ny / cs->n, "case '%s': %lld classes, expected %lld",
					  cs->label, (long long)pc_plan_classes(p), (long long)(ny / cs->n));
				for (int64_t i = 0; i < ny && pc_plan_classes(p) == ny / cs->n; i++) {
					double a = pc_plan_output(p)[i], b = y[i];
					if (!(fabs(a - b) <= 1e-5 + 1e-4 * fabs(b)) && bad++ < 3)
						pc_test_fail(t, __FILE__, __LINE__,
							     "case '%s' (%s): y[%lld] = %.7g, expected %.7g", cs->label,
							     path == 1 ? "im2col"
							     : path    ? "avx2"
								       : "direct",
							     (long long)i, a, b);
				}
			}
			pc_plan_free(p);
			free(x);
			free(y);
			conv_data_free(&d);
		}
	}
	pc_conv_direct_disabled = 0;
	pc_conv_direct_no_avx512 = 0;
}

TEST(ops_conv_gradients)
{
	for (int ci = 0; ci < N_CONV_CASES; ci++) {
		const struct conv_case *cs = &conv_cases[ci];
		struct conv_data d;
		int bad = 0, checked;

		if (cs->forward_only || conv_setup(t, ci, &d))
			continue;
		for (int with_input = 1; with_input >= 0; with_input--) {
			struct gc_opts o = {.batch = cs->n,
					    .eps = 1e-2,
					    .atol = 1e-3,
					    .rtol = 1e-2,
					    .seed = 400 + (uint64_t)ci,
					    .check_input = with_input};
			int before = t->failures;
			checked = gc_check(t, d.g, &o);
			CHECK_MSG(checked > 0, "case '%s': nothing checked", cs->label);
			if (t->failures != before && bad++ == 0)
				pc_test_fail(t, __FILE__, __LINE__, "  (above: case '%s', check_input %d)", cs->label,
					     with_input);
		}
		conv_data_free(&d);
	}
}

/* x -> Conv -> Relu -> Flatten: the plan computes the Relu inside the Conv
 * (fuse_relu). Its output must be the separate Conv's output through
 * max(., 0), bit for bit, whether the plan keeps the pre-Relu values or
 * not, on every Conv path; NaN and -0 behave as the Relu op's x > 0 ? x : 0. */
TEST(ops_conv_fused_relu_matches_separate)
{
	static const int64_t pads[4] = {1, 1, 1, 1}, one[2] = {1, 1};
	struct pc_shape xs = shape4(-1, 8, 9, 7), ws = shape4(12, 8, 3, 3), bs = {.ndim = 1, .dim = {12}};
	struct pc_attr attrs[3] = {attr_ints("pads", 4, pads), attr_ints("strides", 2, one),
				   attr_ints("dilations", 2, one)};
	struct init_tensor inits[2] = {{"W", ws, NULL}, {"B", bs, NULL}};
	struct pc_attr axis = attr_int("axis", 1);
	const char *cin[3] = {"x", "W", "B"}, *y = "y", *r = "r", *out = "out";
	const int n = 18;
	int64_t nx = (int64_t)n * 8 * 9 * 7, ny = (int64_t)n * 12 * 9 * 7;
	float w[12 * 8 * 9], b[12], *x = malloc((size_t)nx * sizeof(float));
	struct pc_error err = {0};
	struct pc_graph *plain = NULL, *fused = pc_graph_new(13, &err);

	REQUIRE(x && fused);
	gc_fill(w, 12 * 8 * 9, 11, -1.0f, 1.0f);
	gc_fill(b, 12, 12, -1.0f, 1.0f);
	gc_fill(x, nx, 13, -1.0f, 1.0f);
	x[5] = NAN; /* reaches some outputs through the window */
	inits[0].data = w;
	inits[1].data = b;
	xs.dim[0] = 1;
	plain = one_node_graph(&xs, "Conv", "conv0", 2, inits, 3, attrs, &err);
	xs.dim[0] = -1;
	REQUIRE_MSG(plain, "%s", fmt_err(&err));
	REQUIRE_MSG(!pc_graph_add_input(fused, "x", &xs, &err) && !pc_graph_add_float(fused, "W", &ws, w, &err) &&
			!pc_graph_add_float(fused, "B", &bs, b, &err) &&
			!pc_graph_add_node(fused, "Conv", "conv0", 3, cin, 1, &y, 3, attrs, &err) &&
			!pc_graph_add_node(fused, "Relu", "relu0", 1, &y, 1, &r, 0, NULL, &err) &&
			!pc_graph_add_node(fused, "Flatten", "flatten", 1, &r, 1, &out, 1, &axis, &err) &&
			!pc_graph_add_output(fused, "out", &err) && !pc_graph_finish(fused, &err),
		    "%s", fmt_err(&err));
	for (int path = 0; path < 2; path++) {
		struct pc_plan *ref, *p;
		pc_conv_direct_disabled = path;
		ref = run_forward(t, plain, n, x, nx);
		p = pc_plan_new(fused, n, 0, &err);
		REQUIRE_MSG(ref && p, "%s", fmt_err(&err));
		for (int keep = 1; keep >= 0; keep--) {
			int bad = 0;
			memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
			pc_plan_keep_fused(p, keep);
			pc_plan_forward(p);
			for (int64_t i = 0; i < ny; i++) {
				float v = pc_plan_output(ref)[i], want = v > 0.0f ? v : 0.0f,
				      got = pc_plan_output(p)[i];
				if (memcmp(&want, &got, sizeof(float)) != 0 && bad++ < 3)
					pc_test_fail(t, __FILE__, __LINE__,
						     "%s path, keep %d: r[%lld] = %.9g, want %.9g",
						     path ? "im2col" : "direct", keep, (long long)i, got, want);
			}
		}
		pc_plan_free(ref);
		pc_plan_free(p);
	}
	pc_conv_direct_disabled = 0;
	pc_graph_free(plain);
	pc_graph_free(fused);
	free(x);
}

/* Winograd keeps its transformed weights between calls (pc_op_state):
 * after the weights change in place, as a study changes them, the next
 * forward must use the new ones. */
TEST(ops_conv_winograd_sees_new_weights)
{
	int ci = -1;
	struct conv_data d;
	struct pc_plan *p, *fresh;
	struct pc_error err = {0};
	int64_t nx, ny, wn;
	float *x;

	for (int i = 0; i < N_CONV_CASES; i++)
		if (strcmp(conv_cases[i].label, "winograd odd") == 0)
			ci = i;
	REQUIRE(ci >= 0 && conv_setup(t, ci, &d) == 0);
	nx = (int64_t)conv_cases[ci].n * conv_cases[ci].c * conv_cases[ci].h * conv_cases[ci].w;
	wn = pc_graph_param(d.g, pc_graph_find_param(d.g, "W"))->count;
	x = malloc((size_t)nx * sizeof(float));
	REQUIRE(x);
	gc_fill(x, nx, 77, -1.0f, 1.0f);
	p = run_forward(t, d.g, conv_cases[ci].n, x, nx);
	REQUIRE(p);
	for (int64_t i = 0; i < wn; i++)
		pc_plan_weights(p)[pc_graph_param(d.g, pc_graph_find_param(d.g, "W"))->offset + i] *= -0.5f;
	pc_plan_forward(p);
	fresh = pc_plan_new(d.g, conv_cases[ci].n, 0, &err);
	REQUIRE(fresh);
	memcpy(pc_plan_weights(fresh), pc_plan_weights(p), (size_t)pc_graph_param_count(d.g) * sizeof(float));
	memcpy(pc_plan_input(fresh), x, (size_t)nx * sizeof(float));
	pc_plan_forward(fresh);
	ny = pc_plan_classes(p) * conv_cases[ci].n;
	CHECK_MSG(memcmp(pc_plan_output(p), pc_plan_output(fresh), (size_t)ny * sizeof(float)) == 0,
		  "a plan that ran on the old weights gives another output than a fresh one on the new");
	pc_plan_free(p);
	pc_plan_free(fresh);
	free(x);
	conv_data_free(&d);
}

/* Backward on the direct kernels (the input gradient of a stride-1
 * convolution as a convolution of dY, the weight gradient on the lane
 * layout) must agree with the im2col path's on every case, tightly, where
 * the gradient checks above only bound it by finite differences. */
TEST(ops_conv_grad_paths_agree)
{
	for (int ci = 0; ci < N_CONV_CASES; ci++) {
		const struct conv_case *cs = &conv_cases[ci];
		struct conv_data d;
		int64_t nx = (int64_t)cs->n * cs->c * cs->h * cs->w, ny;
		float *x, *dy, *dx[3] = {NULL, NULL, NULL}, *dw[3] = {NULL, NULL, NULL};
		int64_t np;
		struct pc_error err = {0};
		int bad = 0;

		if (conv_setup(t, ci, &d))
			continue;
		ny = (int64_t)cs->n * cs->m * d.oh * d.ow;
		np = pc_graph_param_count(d.g);
		x = malloc((size_t)nx * sizeof(float));
		dy = malloc((size_t)ny * sizeof(float));
		REQUIRE(x && dy);
		gc_fill(x, nx, 500 + (uint64_t)ci, -1.0f, 1.0f);
		gc_fill(dy, ny, 600 + (uint64_t)ci, -1.0f, 1.0f);
		/* 0: the best kernels here, 1: im2col, 2: the AVX2 kernels */
		int paths = pc_conv_direct_has_avx2() ? 3 : 2;
		for (int path = 0; path < paths; path++) {
			struct pc_plan *p = pc_plan_new(d.g, cs->n, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
			pc_conv_direct_disabled = path == 1;
			pc_conv_direct_no_avx512 = path == 2;
			REQUIRE_MSG(p, "case '%s': %s", cs->label, fmt_err(&err));
			memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
			pc_plan_forward(p);
			memcpy(pc_plan_output_grad(p), dy, (size_t)ny * sizeof(float));
			pc_plan_backward(p);
			dx[path] = malloc((size_t)nx * sizeof(float));
			dw[path] = malloc((size_t)np * sizeof(float));
			REQUIRE(dx[path] && dw[path]);
			memcpy(dx[path], pc_plan_input_grad(p), (size_t)nx * sizeof(float));
			memcpy(dw[path], pc_plan_weight_grad(p), (size_t)np * sizeof(float));
			pc_plan_free(p);
		}
		pc_conv_direct_disabled = 0;
		pc_conv_direct_no_avx512 = 0;
		for (int q = 0; q < paths; q += 2) {
			for (int64_t i = 0; i < nx; i++) {
				double a = dx[q][i], b = dx[1][i];
				if (!(fabs(a - b) <= 1e-5 + 1e-5 * fabs(b)) && bad++ < 3)
					pc_test_fail(t, __FILE__, __LINE__,
						     "case '%s': dx[%lld] = %.8g (%s), %.8g (im2col)", cs->label,
						     (long long)i, a, q ? "avx2" : "direct", b);
			}
			/* dW sums over every sample and position: a looser bound */
			for (int64_t i = 0; i < np; i++) {
				double a = dw[q][i], b = dw[1][i];
				if (!(fabs(a - b) <= 1e-4 + 1e-5 * fabs(b)) && bad++ < 3)
					pc_test_fail(t, __FILE__, __LINE__,
						     "case '%s': dW[%lld] = %.8g (%s), %.8g (im2col)", cs->label,
						     (long long)i, a, q ? "avx2" : "direct", b);
			}
		}
		free(x);
		free(dy);
		for (int q = 0; q < 3; q++) {
			free(dx[q]);
			free(dw[q]);
		}
		conv_data_free(&d);
	}
}

/* Backward adds: two passes without zeroing give twice one pass. */
TEST(ops_conv_backward_accumulates)
{
	const int ci = 1, cj = 18; /* one chunk-per-sample case, one chunked */
	const int pick[2] = {ci, cj};

	for (int k = 0; k < 2; k++) {
		const struct conv_case *cs = &conv_cases[pick[k]];
		struct conv_data d;
		struct pc_error err = {0};
		struct pc_plan *p;
		float *first;
		int64_t np;

		if (conv_setup(t, pick[k], &d))
			continue;
		p = pc_plan_new(d.g, cs->n, PC_PLAN_GRAD, &err);
		REQUIRE(p);
		np = pc_graph_param_count(d.g);
		first = malloc((size_t)np * sizeof(float));
		REQUIRE(first);
		gc_fill(pc_plan_input(p), (int64_t)cs->n * pc_plan_sample_numel(p), 9, -1.0f, 1.0f);
		gc_fill(pc_plan_output_grad(p), (int64_t)cs->n * pc_plan_classes(p), 10, -1.0f, 1.0f);
		pc_plan_forward(p);
		pc_plan_backward(p);
		memcpy(first, pc_plan_weight_grad(p), (size_t)np * sizeof(float));
		pc_plan_backward(p);
		for (int64_t i = 0; i < np; i++)
			CHECK_CLOSE(pc_plan_weight_grad(p)[i], 2.0f * first[i], 1e-5, 1e-5);
		free(first);
		pc_plan_free(p);
		conv_data_free(&d);
	}
}

/* Conv errors surface at pc_graph_finish and name the node. */
static void expect_conv_error(struct pc_test *t, const struct pc_shape *xs, const struct pc_shape *wsh, int n_attr,
			      const struct pc_attr *attrs, const char *needle)
{
	struct pc_error err = {0};
	int64_t wn = 1;
	float *w;
	struct init_tensor init;
	struct pc_graph *g;

	for (int i = 0; i < wsh->ndim; i++)
		wn *= wsh->dim[i];
	w = calloc((size_t)wn, sizeof(float));
	if (!w) {
		pc_test_fail(t, __FILE__, __LINE__, "out of memory");
		return;
	}
	init = (struct init_tensor){"W", *wsh, w};
	g = one_node_graph(xs, "Conv", "bad_conv", 1, &init, n_attr, attrs, &err);
	CHECK_MSG(g == NULL, "expected an error mentioning '%s'", needle);
	if (!g) {
		const char *msg = fmt_err(&err);
		CHECK_MSG(strstr(msg, "bad_conv") != NULL, "message '%s' does not name the node", msg);
		CHECK_MSG(strstr(msg, needle) != NULL, "message '%s' lacks '%s'", msg, needle);
	}
	pc_graph_free(g);
	free(w);
}

TEST(ops_conv_errors)
{
	struct pc_shape x = shape4(1, 4, 5, 5), w3 = shape4(2, 4, 3, 3);
	int64_t pads1[4] = {1, 1, 1, 1}, k5[2] = {5, 5}, s3[3] = {1, 1, 1}, zero2[2] = {0, 1};
	struct pc_attr a;

	{ /* kernel larger than the padded input */
		struct pc_shape w7 = shape4(2, 4, 7, 7);
		a = attr_ints("pads", 4, pads1);
		expect_conv_error(t, &x, &w7, 0, NULL, "larger than the padded input");
		expect_conv_error(t, &x, &w7, 0, NULL, "7x7");
		{
			struct pc_shape w8 = shape4(2, 4, 8, 3);
			expect_conv_error(t, &x, &w8, 1, &a, "larger than the padded input");
		}
		a = attr_str("auto_pad", "VALID");
		expect_conv_error(t, &x, &w7, 1, &a, "larger than the padded input");
	}
	{ /* group not dividing the channels */
		struct pc_shape x3 = shape4(1, 3, 5, 5), wg = shape4(2, 1, 3, 3);
		a = attr_int("group", 2);
		expect_conv_error(t, &x3, &wg, 1, &a, "group");
		/* group dividing C but not M */
		struct pc_shape wm = shape4(3, 2, 3, 3);
		expect_conv_error(t, &x, &wm, 1, &a, "group");
		a = attr_int("group", 0);
		expect_conv_error(t, &x, &w3, 1, &a, "group");
	}
	{ /* weight channels disagreeing with the input */
		struct pc_shape wc = shape4(2, 3, 3, 3);
		expect_conv_error(t, &x, &wc, 0, NULL, "input channels");
		a = attr_int("group", 2); /* needs 2 per group, has 4 */
		expect_conv_error(t, &x, &w3, 1, &a, "input channels");
	}
	a = attr_str("auto_pad", "SAME");
	expect_conv_error(t, &x, &w3, 1, &a, "auto_pad");
	a = attr_ints("kernel_shape", 2, k5);
	expect_conv_error(t, &x, &w3, 1, &a, "kernel_shape");
	a = attr_ints("strides", 3, s3);
	expect_conv_error(t, &x, &w3, 1, &a, "2-D");
	a = attr_ints("dilations", 2, zero2);
	expect_conv_error(t, &x, &w3, 1, &a, "dilations");
	{ /* values that would overflow the size arithmetic */
		int64_t huge[4] = {INT64_MAX, 0, INT64_MAX, 0};
		a = attr_ints("pads", 4, huge);
		expect_conv_error(t, &x, &w3, 1, &a, "pads");
		a = attr_int("group", INT64_MAX);
		expect_conv_error(t, &x, &w3, 1, &a, "group");
	}
	{ /* pads together with SAME_UPPER */
		struct pc_attr two[2] = {attr_str("auto_pad", "SAME_UPPER"), attr_ints("pads", 4, pads1)};
		expect_conv_error(t, &x, &w3, 2, two, "pads");
	}
	{ /* 1-D and 3-D convolutions */
		struct pc_shape x1 = {.ndim = 3, .dim = {1, 4, 9}}, w1 = {.ndim = 3, .dim = {2, 4, 3}};
		struct pc_shape x5 = {.ndim = 5, .dim = {1, 4, 3, 3, 3}}, w5 = {.ndim = 5, .dim = {2, 4, 2, 2, 2}};
		expect_conv_error(t, &x1, &w1, 0, NULL, "2-D");
		expect_conv_error(t, &x5, &w5, 0, NULL, "2-D");
	}
	{ /* a bias of the wrong length */
		struct pc_error err = {0};
		float w[2 * 4 * 9] = {0}, b[3] = {0};
		struct init_tensor inits[2] = {{"W", w3, w}, {"B", {.ndim = 1, .dim = {3}}, b}};
		struct pc_graph *g = one_node_graph(&x, "Conv", "bad_conv", 2, inits, 0, NULL, &err);
		CHECK(g == NULL);
		CHECK(strstr(fmt_err(&err), "bias") != NULL);
		pc_graph_free(g);
	}
}

/* --- pooling --------------------------------------------------------------- */

enum pool_kind { MAXP, AVGP };

struct pool_case {
	const char *label;
	enum pool_kind kind;
	int n, c, h, w, kh, kw, sh, sw, dh, dw;
	int64_t pads[4];
	int ceil_mode, count_include_pad;
	const char *auto_pad;
};

static const struct pool_case pool_cases[] = {
    {"max 2x2 s2", MAXP, 2, 2, 6, 6, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, NULL},
    {"max 3x3 s2 p1", MAXP, 2, 2, 7, 7, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 0, NULL},
    {"max overlapping s1", MAXP, 1, 2, 5, 6, 3, 2, 1, 1, 1, 1, {0, 0, 0, 0}, 0, 0, NULL},
    {"max dilation 2 asym", MAXP, 1, 2, 8, 7, 3, 2, 1, 2, 2, 2, {1, 2, 1, 0}, 0, 0, NULL},
    {"max ceil", MAXP, 1, 2, 8, 8, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 0, NULL},
    {"max ceil drops last", MAXP, 1, 2, 5, 5, 2, 2, 2, 2, 1, 1, {1, 1, 1, 1}, 1, 0, NULL},
    {"max SAME_UPPER", MAXP, 2, 1, 7, 6, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, "SAME_UPPER"},
    {"max SAME_LOWER", MAXP, 1, 2, 5, 5, 2, 2, 1, 1, 1, 1, {0, 0, 0, 0}, 0, 0, "SAME_LOWER"},
    {"max VALID", MAXP, 1, 2, 7, 8, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, "VALID"},
    {"avg 3x3 p1 exclude pad", AVGP, 2, 2, 5, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 0, 0, NULL},
    {"avg 3x3 p1 include pad", AVGP, 2, 2, 5, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 0, 1, NULL},
    {"avg asym ceil exclude", AVGP, 1, 2, 8, 7, 3, 3, 2, 2, 1, 1, {1, 0, 2, 1}, 1, 0, NULL},
    {"avg asym ceil include", AVGP, 1, 2, 8, 7, 3, 3, 2, 2, 1, 1, {1, 0, 2, 1}, 1, 1, NULL},
    {"avg ceil past pad include", AVGP, 1, 1, 6, 6, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 1, NULL},
    {"avg 2x2 s2", AVGP, 2, 3, 6, 4, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, NULL},
    {"avg SAME_UPPER exclude", AVGP, 1, 2, 5, 7, 2, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, "SAME_UPPER"},
    {"avg SAME_LOWER include", AVGP, 1, 2, 5, 7, 2, 3, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 1, "SAME_LOWER"},
};

#define N_POOL_CASES ((int)(sizeof(pool_cases) / sizeof(pool_cases[0])))

struct pool_geom {
	int64_t oh, ow, pt, pl, endh, endw;
};

static void pool_ref_geom(const struct pool_case *pc, struct pool_geom *g)
{
	ref_axis(pc->auto_pad, pc->h, pc->kh, pc->sh, pc->dh, pc->pads[0], pc->pads[2], pc->ceil_mode, &g->oh, &g->pt,
		 &g->endh);
	ref_axis(pc->auto_pad, pc->w, pc->kw, pc->sw, pc->dw, pc->pads[1], pc->pads[3], pc->ceil_mode, &g->ow, &g->pl,
		 &g->endw);
}

static struct pc_graph *pool_graph(const struct pool_case *pc, struct pc_error *err)
{
	int64_t kernel[2] = {pc->kh, pc->kw}, strides[2] = {pc->sh, pc->sw}, dil[2] = {pc->dh, pc->dw};
	struct pc_attr attrs[7];
	struct pc_shape xs = shape4(pc->n, pc->c, pc->h, pc->w);
	int na = 0;

	attrs[na++] = attr_ints("kernel_shape", 2, kernel);
	attrs[na++] = attr_ints("strides", 2, strides);
	attrs[na++] = attr_int("ceil_mode", pc->ceil_mode);
	if (pc->auto_pad)
		attrs[na++] = attr_str("auto_pad", pc->auto_pad);
	else
		attrs[na++] = attr_ints("pads", 4, pc->pads);
	if (pc->kind == MAXP)
		attrs[na++] = attr_ints("dilations", 2, dil);
	else
		attrs[na++] = attr_int("count_include_pad", pc->count_include_pad);
	return one_node_graph(&xs, pc->kind == MAXP ? "MaxPool" : "AveragePool", "pool0", 0, NULL, na, attrs, err);
}

/* Max or mean over each window by its definition; for max also the gap
 * between the largest and second largest value of the tightest window. */
static void ref_pool(const struct pool_case *pc, const struct pool_geom *g, const float *x, float *y, double *min_gap)
{
	*min_gap = INFINITY;
	for (int pl = 0; pl < pc->n * pc->c; pl++)
		for (int64_t oh = 0; oh < g->oh; oh++)
			for (int64_t ow = 0; ow < g->ow; ow++) {
				double sum = 0.0, best = -INFINITY, second = -INFINITY;
				int64_t count = 0, padded = 0;
				for (int i = 0; i < pc->kh; i++)
					for (int j = 0; j < pc->kw; j++) {
						int64_t ih = oh * pc->sh - g->pt + i * pc->dh;
						int64_t iw = ow * pc->sw - g->pl + j * pc->dw;
						double v;
						if (ih < g->endh && iw < g->endw)
							padded++;
						if (ih < 0 || ih >= pc->h || iw < 0 || iw >= pc->w)
							continue;
						v = x[(pl * pc->h + ih) * pc->w + iw];
						sum += v;
						count++;
						if (v > best) {
							second = best;
							best = v;
						} else if (v > second) {
							second = v;
						}
					}
				if (count > 1 && best - second < *min_gap)
					*min_gap = best - second;
				if (pc->kind == MAXP)
					y[(pl * g->oh + oh) * g->ow + ow] = (float)best;
				else
					y[(pl * g->oh + oh) * g->ow + ow] =
					    (float)(sum / (double)(pc->count_include_pad ? padded : count));
			}
}

TEST(ops_conv_pool_forward_matches_reference)
{
	for (int ci = 0; ci < N_POOL_CASES; ci++) {
		const struct pool_case *pc = &pool_cases[ci];
		struct pool_geom pg;
		struct pc_error err = {0};
		struct pc_graph *g = pool_graph(pc, &err);
		int64_t nx = (int64_t)pc->n * pc->c * pc->h * pc->w, ny;
		float *x, *y;
		double gap;
		struct pc_plan *p;
		int bad = 0;

		if (!g) {
			pc_test_fail(t, __FILE__, __LINE__, "case '%s': %s", pc->label, fmt_err(&err));
			continue;
		}
		pool_ref_geom(pc, &pg);
		ny = (int64_t)pc->n * pc->c * pg.oh * pg.ow;
		x = malloc((size_t)nx * sizeof(float));
		y = malloc((size_t)ny * sizeof(float));
		REQUIRE(x && y);
		gc_fill(x, nx, 500 + (uint64_t)ci, -1.0f, 1.0f);
		ref_pool(pc, &pg, x, y, &gap);
		p = run_forward(t, g, pc->n, x, nx);
		if (p) {
			CHECK_MSG(pc_plan_classes(p) == ny / pc->n, "case '%s': %lld classes, expected %lld", pc->label,
				  (long long)pc_plan_classes(p), (long long)(ny / pc->n));
			for (int64_t i = 0; i < ny && pc_plan_classes(p) == ny / pc->n; i++) {
				double a = pc_plan_output(p)[i], b = y[i];
				if (!(fabs(a - b) <= 1e-6 + 1e-5 * fabs(b)) && bad++ < 3)
					pc_test_fail(t, __FILE__, __LINE__, "case '%s': y[%lld] = %.7g, expected %.7g",
						     pc->label, (long long)i, a, b);
			}
		}
		pc_plan_free(p);
		free(x);
		free(y);
		pc_graph_free(g);
	}
}

TEST(ops_conv_pool_gradients)
{
	const double eps = 1e-3;

	for (int ci = 0; ci < N_POOL_CASES; ci++) {
		const struct pool_case *pc = &pool_cases[ci];
		struct pool_geom pg;
		struct pc_error err = {0};
		struct pc_graph *g = pool_graph(pc, &err);
		struct gc_opts o = {
		    .batch = pc->n, .eps = eps, .atol = 1e-3, .rtol = 1e-2, .check_input = 1, .samples = 200};
		int64_t nx = (int64_t)pc->n * pc->c * pc->h * pc->w;
		float *x;
		double gap = 0.0;
		int before = t->failures;

		if (!g) {
			pc_test_fail(t, __FILE__, __LINE__, "case '%s': %s", pc->label, fmt_err(&err));
			continue;
		}
		pool_ref_geom(pc, &pg);
		x = malloc((size_t)nx * sizeof(float));
		REQUIRE(x);
		/* MaxPool: pick the first seed whose windows have no near-ties, so
		 * the finite differences never move an arg-max */
		o.seed = 600;
		if (pc->kind == MAXP) {
			float *y = malloc((size_t)(pc->n * pc->c * pg.oh * pg.ow) * sizeof(float));
			REQUIRE(y);
			for (; o.seed < 1600; o.seed++) {
				gc_fill(x, nx, o.seed, -1.0f, 1.0f);
				ref_pool(pc, &pg, x, y, &gap);
				if (gap > 4 * eps)
					break;
			}
			free(y);
			CHECK_MSG(gap > 4 * eps, "case '%s': no tie-free seed", pc->label);
		}
		CHECK(gc_check(t, g, &o) > 0);
		if (t->failures != before)
			pc_test_fail(t, __FILE__, __LINE__, "  (above: case '%s')", pc->label);
		free(x);
		pc_graph_free(g);
	}
}

/* With every window inside the input, a 2x2 stride-2 MaxPool's gradient is
 * dy at each window's maximum and zero elsewhere, ties going to the first. */
TEST(ops_conv_maxpool_ties_first)
{
	struct pool_case pc = {"ties", MAXP, 1, 1, 2, 4, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, 0, 0, NULL};
	struct pc_error err = {0};
	struct pc_graph *g = pool_graph(&pc, &err);
	struct pc_plan *p;
	const float x[8] = {1, 3, 5, 5, 3, 2, 5, 5};
	const float want[8] = {0, 0.5f, -2, 0, 0, 0, 0, 0};

	REQUIRE(g);
	p = pc_plan_new(g, 1, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
	REQUIRE(p);
	memcpy(pc_plan_input(p), x, sizeof(x));
	pc_plan_forward(p);
	CHECK_CLOSE(pc_plan_output(p)[0], 3.0f, 0, 0);
	CHECK_CLOSE(pc_plan_output(p)[1], 5.0f, 0, 0);
	pc_plan_output_grad(p)[0] = 0.5f;
	pc_plan_output_grad(p)[1] = -2.0f;
	pc_plan_backward(p);
	for (int i = 0; i < 8; i++)
		CHECK_CLOSE(pc_plan_input_grad(p)[i], want[i], 0, 0);
	pc_plan_free(p);
	pc_graph_free(g);
}

/* The ResNet stem's 3x3 stride-2 padded windows (the spans path, whose
 * backward finds the tap holding forward's output): ties go to the first
 * maximum in row-major order, also across overlapping windows, a NaN
 * takes its window's gradient, and a -0 beside +0 and 0s changes nothing. */
TEST(ops_conv_maxpool_3x3_s2_ties_and_nan)
{
	struct pool_case pc = {"3x3 s2 p1", MAXP, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 0, NULL};
	struct pc_error err = {0};
	struct pc_graph *g = pool_graph(&pc, &err);
	struct pc_plan *p;
	const float x[16] = {2, 7, 7, 1, 7, 0, -0.0f, 3, 7, 0, NAN, 9, 1, 1, 1, 1};
	const float dy[4] = {0.5f, -2, 4, 8};
	/* windows: rows 0-1 x cols 0-1, rows 0-1 x cols 1-3, rows 1-3 x cols
	 * 0-1, rows 1-3 x cols 1-3 */
	const float want[16] = {0, -1.5f, 0, 0, 4, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0};

	REQUIRE(g);
	p = pc_plan_new(g, 1, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
	REQUIRE(p);
	memcpy(pc_plan_input(p), x, sizeof(x));
	pc_plan_forward(p);
	CHECK(pc_plan_output(p)[0] == 7.0f && pc_plan_output(p)[1] == 7.0f && pc_plan_output(p)[2] == 7.0f);
	CHECK(isnan(pc_plan_output(p)[3]));
	memcpy(pc_plan_output_grad(p), dy, sizeof(dy));
	pc_plan_backward(p);
	for (int i = 0; i < 16; i++)
		CHECK_MSG(pc_plan_input_grad(p)[i] == want[i], "dx[%d] = %g, not %g", i, pc_plan_input_grad(p)[i],
			  want[i]);
	pc_plan_free(p);
	pc_graph_free(g);
}

/* A NaN in a window (corrupted weights make them) comes out of MaxPool, in
 * the 2x2 fast path as in the general one, and takes the window's gradient. */
TEST(ops_conv_maxpool_nan_propagates)
{
	for (int fast = 0; fast < 2; fast++) {
		/* 2x2 stride 2 takes the fast path; stride 1 over a 2x3 row the general one */
		struct pool_case pc = {"nan", MAXP,	    1, 1, 2,   4, 2, 2, fast ? 2 : 1, fast ? 2 : 1, 1,
				       1,     {0, 0, 0, 0}, 0, 0, NULL};
		struct pc_error err = {0};
		struct pc_graph *g = pool_graph(&pc, &err);
		struct pc_plan *p;
		const float x[8] = {1, NAN, 5, 5, 3, 2, 5, 5};

		REQUIRE(g);
		p = pc_plan_new(g, 1, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
		REQUIRE(p);
		memcpy(pc_plan_input(p), x, sizeof(x));
		pc_plan_forward(p);
		CHECK(isnan(pc_plan_output(p)[0]));
		CHECK(pc_plan_output(p)[fast ? 1 : 2] == 5.0f);
		memset(pc_plan_output_grad(p), 0, (size_t)pc_plan_classes(p) * sizeof(float));
		pc_plan_output_grad(p)[0] = 0.5f;
		pc_plan_backward(p);
		CHECK(pc_plan_input_grad(p)[1] == 0.5f);
		CHECK(pc_plan_input_grad(p)[0] == 0.0f);
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

/* Hand-computed AveragePool with padding: on a 2x2 input of 1,2,3,4 with
 * kernel 2, stride 1 and pads 1 on the top and left, the four windows hold
 * {1}, {1,2}, {1,3}, {1,2,3,4}. */
TEST(ops_conv_avgpool_by_hand)
{
	const float x[4] = {1, 2, 3, 4};
	const float excl[4] = {1, 1.5f, 2, 2.5f}, incl[4] = {0.25f, 0.75f, 1, 2.5f};

	for (int cip = 0; cip <= 1; cip++) {
		struct pool_case pc = {"hand", AVGP, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1, {1, 1, 0, 0}, 0, cip, NULL};
		struct pc_error err = {0};
		struct pc_graph *g = pool_graph(&pc, &err);
		struct pc_plan *p;
		/* Flatten needs 2+ classes: the output is 1x1x2x2 */
		REQUIRE(g);
		p = run_forward(t, g, 1, x, 4);
		REQUIRE(p);
		for (int i = 0; i < 4; i++)
			CHECK_CLOSE(pc_plan_output(p)[i], (cip ? incl : excl)[i], 1e-6, 1e-6);
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

TEST(ops_conv_global_average_pool)
{
	struct pc_shape xs = shape4(3, 4, 5, 3);
	struct pc_error err = {0};
	struct pc_graph *g = one_node_graph(&xs, "GlobalAveragePool", "gap0", 0, NULL, 0, NULL, &err);
	float x[3 * 4 * 5 * 3];
	struct pc_plan *p;
	struct gc_opts o = {.batch = 3, .eps = 1e-2, .atol = 1e-4, .rtol = 1e-3, .seed = 7, .check_input = 1};

	if (!g)
		pc_test_fail(t, __FILE__, __LINE__, "%s", fmt_err(&err));
	REQUIRE(g);
	gc_fill(x, 180, 77, -2.0f, 2.0f);
	p = run_forward(t, g, 3, x, 180);
	REQUIRE(p);
	CHECK_INT(pc_plan_classes(p), 4);
	for (int pl = 0; pl < 12; pl++) {
		double acc = 0.0;
		for (int q = 0; q < 15; q++)
			acc += x[pl * 15 + q];
		CHECK_CLOSE(pc_plan_output(p)[pl], acc / 15.0, 1e-6, 1e-5);
	}
	pc_plan_free(p);
	CHECK(gc_check(t, g, &o) > 0);
	pc_graph_free(g);

	{ /* 2-D only */
		struct pc_shape x3 = {.ndim = 3, .dim = {1, 4, 5}};
		g = one_node_graph(&x3, "GlobalAveragePool", "gap_bad", 0, NULL, 0, NULL, &err);
		CHECK(g == NULL);
		CHECK(strstr(fmt_err(&err), "gap_bad") != NULL);
		pc_graph_free(g);
	}
}

static void expect_pool_error(struct pc_test *t, const char *op, const struct pc_shape *xs, int n_attr,
			      const struct pc_attr *attrs, const char *needle)
{
	struct pc_error err = {0};
	struct pc_graph *g = one_node_graph(xs, op, "bad_pool", 0, NULL, n_attr, attrs, &err);

	CHECK_MSG(g == NULL, "%s: expected an error mentioning '%s'", op, needle);
	if (!g) {
		const char *msg = fmt_err(&err);
		CHECK_MSG(strstr(msg, "bad_pool") != NULL, "message '%s' does not name the node", msg);
		CHECK_MSG(strstr(msg, needle) != NULL, "message '%s' lacks '%s'", msg, needle);
	}
	pc_graph_free(g);
}

TEST(ops_conv_pool_errors)
{
	struct pc_shape x = shape4(1, 2, 4, 4);
	int64_t k2[2] = {2, 2}, k5[2] = {5, 5}, k3[3] = {2, 2, 2}, pads_big[4] = {3, 0, 0, 0}, p1[4] = {1, 1, 1, 1};
	int64_t d3[2] = {3, 3};
	const char *ops[2] = {"MaxPool", "AveragePool"};

	for (int i = 0; i < 2; i++) {
		struct pc_attr a[3];
		expect_pool_error(t, ops[i], &x, 0, NULL, "kernel_shape");
		a[0] = attr_ints("kernel_shape", 2, k5);
		expect_pool_error(t, ops[i], &x, 1, a, "larger than the padded input");
		a[0] = attr_ints("kernel_shape", 3, k3);
		expect_pool_error(t, ops[i], &x, 1, a, "2-D");
		a[0] = attr_ints("kernel_shape", 2, k2);
		a[1] = attr_str("auto_pad", "SAME");
		expect_pool_error(t, ops[i], &x, 2, a, "auto_pad");
		a[1] = attr_int("ceil_mode", 2);
		expect_pool_error(t, ops[i], &x, 2, a, "ceil_mode");
		a[1] = attr_ints("pads", 4, pads_big); /* the first window is all padding */
		expect_pool_error(t, ops[i], &x, 2, a, "padding");
		{
			int64_t huge[4] = {0, INT64_MAX, 0, INT64_MAX};
			a[1] = attr_ints("pads", 4, huge);
			expect_pool_error(t, ops[i], &x, 2, a, "pads");
		}
		a[1] = attr_str("auto_pad", "VALID");
		a[2] = attr_ints("pads", 4, p1);
		expect_pool_error(t, ops[i], &x, 3, a, "pads");
		{
			struct pc_shape x3 = {.ndim = 3, .dim = {1, 2, 4}};
			expect_pool_error(t, ops[i], &x3, 1, a, "2-D");
		}
	}
	{
		struct pc_attr a[2] = {attr_ints("kernel_shape", 2, k2), attr_int("storage_order", 1)};
		expect_pool_error(t, "MaxPool", &x, 2, a, "storage_order");
		a[1] = attr_ints("dilations", 2, d3); /* dilated 2x2 on 4x4 with stride 1: fits */
		{
			struct pc_error err = {0};
			struct pc_graph *g = one_node_graph(&x, "MaxPool", "ok_pool", 0, NULL, 2, a, &err);
			CHECK_MSG(g != NULL, "%s", fmt_err(&err));
			pc_graph_free(g);
		}
		a[1] = attr_int("count_include_pad", 2);
		expect_pool_error(t, "AveragePool", &x, 2, a, "count_include_pad");
	}
}
