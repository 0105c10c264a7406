/* Tests of LSTM and GRU (ops/rnn.c).
 *
 * Each case is a small graph: the input x [N, T, I] (a Transpose makes it
 * [T, N, I] for layout 0), one LSTM or GRU node with random W, R, B and
 * initial states as initializers, and its outputs Y, Y_h, Y_c brought to
 * [N, ...], flattened and concatenated into the graph output [N, C].
 *   - Values against a reference written here in double precision straight
 *     from the ONNX equations, one batch entry and time step at a time.
 *   - Gradients of x, W, R, B, initial_h and initial_c against central
 *     finite differences (gc_check), in every direction, both layouts, with
 *     and without initial states and sequence lengths.
 *   - Refusals at load of what the op does not support.
 *   - Agreement with PyTorch: nn.LSTM / nn.GRU exported by torch.onnx.export
 *     (tests/reference/make_rnn_fixtures.py), outputs and gradients. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

#define MAX_T 6
#define MAX_N 4
#define MAX_I 5
#define MAX_H 5
#define MAX_G 4

enum cell { LSTM, GRU0, GRU1 }; /* GRU with linear_before_reset 0 / 1 */

struct rnn_case {
	enum cell cell;
	const char *direction; /* "forward", "reverse", "bidirectional" */
	int layout;
	int T, N, I, H;
	int no_b, h0, c0;	      /* optional inputs present */
	const int64_t *seq;	      /* sequence_lens (N values), or NULL */
	int skip_y, skip_yh, skip_yc; /* outputs not read (Y stays named, the others are omitted) */
	int omit_y;		      /* Y is the empty name (with skip_y) */
	int opset;		      /* 0 = 14 */
	int n_attr;		      /* extra attributes on the node */
	struct pc_attr attr[3];
	int with_p;	/* an LSTM peephole input */
	int seq_float;	/* sequence_lens as a float tensor */
	int seq_input;	/* sequence_lens is the graph's (int64) input; x an initializer */
	int seq_output; /* the output is Y as [N, T, D*H] (layout 1, Y only) */
	uint64_t seed;
};

struct rnn_data {
	int D, G, fixed;
	float w[2 * MAX_G * MAX_H * MAX_I], r[2 * MAX_G * MAX_H * MAX_H], b[2 * 2 * MAX_G * MAX_H];
	float h0[2 * MAX_N * MAX_H], c0[2 * MAX_N * MAX_H];
	float x[MAX_N * MAX_T * MAX_I]; /* x when it is an initializer (seq_input) */
};

static struct pc_shape shp(int ndim, int64_t a, int64_t b, int64_t c, int64_t d)
{
	struct pc_shape s = {.ndim = ndim, .dim = {a, b, c, d}};

	return s;
}

static int lstm_of(const struct rnn_case *c)
{
	return c->cell == LSTM;
}

static int dirs_of(const struct rnn_case *c)
{
	return strcmp(c->direction, "bidirectional") == 0 ? 2 : 1;
}

static void make_data(const struct rnn_case *c, struct rnn_data *d)
{
	int D = dirs_of(c), G = lstm_of(c) ? 4 : 3;

	memset(d, 0, sizeof(*d));
	d->D = D;
	d->G = G;
	/* initial states and sequence lengths have the batch in their shape */
	d->fixed = c->h0 || c->c0 || c->seq || c->seq_input;
	gc_fill(d->w, (int64_t)D * G * c->H * c->I, c->seed + 1, -0.6f, 0.6f);
	gc_fill(d->r, (int64_t)D * G * c->H * c->H, c->seed + 2, -0.6f, 0.6f);
	gc_fill(d->b, (int64_t)D * 2 * G * c->H, c->seed + 3, -0.4f, 0.4f);
	gc_fill(d->h0, (int64_t)D * c->N * c->H, c->seed + 4, -0.7f, 0.7f);
	gc_fill(d->c0, (int64_t)D * c->N * c->H, c->seed + 5, -0.7f, 0.7f);
	gc_fill(d->x, (int64_t)c->N * c->T * c->I, c->seed + 9, -1.0f, 1.0f);
}

/* A finished graph for case c, or NULL with err set. */
static struct pc_graph *build(const struct rnn_case *c, const struct rnn_data *d, struct pc_error *err)
{
	int D = d->D, G = d->G, H = c->H, N = c->N, lstm = lstm_of(c), k = 0;
	struct pc_graph *g = pc_graph_new(c->opset ? c->opset : 14, err);
	struct pc_shape xs = shp(3, d->fixed ? N : -1, c->T, c->I, 0);
	struct pc_shape ss = c->layout ? shp(3, N, D, H, 0) : shp(3, D, N, H, 0);
	struct pc_attr attrs[8];
	const char *flat[3];
	int n_flat = 0, n_attr = 0;
	int64_t perm_x[] = {1, 0, 2}, perm_y[] = {2, 0, 1, 3}, perm_s[] = {1, 0, 2};
	float pdata[2 * 3 * MAX_H] = {0};
	float seqf[MAX_N];

	if (!g)
		return NULL;
	if (c->seq_input) {
		if (pc_graph_add_input_typed(g, "seq", &(struct pc_shape){1, {N}}, PC_DTYPE_INT64, err) ||
		    pc_graph_add_float(g, "x", &xs, d->x, err))
			goto fail;
	} else if (pc_graph_add_input(g, "x", &xs, err)) {
		goto fail;
	}
	if (pc_graph_add_float(g, "W", &(struct pc_shape){3, {D, G * H, c->I}}, d->w, err) ||
	    pc_graph_add_float(g, "R", &(struct pc_shape){3, {D, G * H, H}}, d->r, err) ||
	    (!c->no_b && pc_graph_add_float(g, "B", &(struct pc_shape){2, {D, 2 * G * H}}, d->b, err)) ||
	    (c->h0 && pc_graph_add_float(g, "h0", &ss, d->h0, err)) ||
	    (c->c0 && pc_graph_add_float(g, "c0", &ss, d->c0, err)) ||
	    (c->with_p && pc_graph_add_float(g, "P", &(struct pc_shape){2, {D, 3 * H}}, pdata, err)))
		goto fail;
	if (c->seq && !c->seq_float && pc_graph_add_int64(g, "seq", &(struct pc_shape){1, {N}}, c->seq, err))
		goto fail;
	if (c->seq && c->seq_float) {
		for (int i = 0; i < N; i++)
			seqf[i] = (float)c->seq[i];
		if (pc_graph_add_float(g, "seq", &(struct pc_shape){1, {N}}, seqf, err))
			goto fail;
	}
	if (!c->layout) {
		struct pc_attr pa = {.name = "perm", .type = PC_ATTR_INTS, .n = 3, .ints = perm_x};
		if (pc_graph_add_node(g, "Transpose", "to_tni", 1, (const char *[]){"x"}, 1, (const char *[]){"xt"}, 1,
				      &pa, err))
			goto fail;
	}
	attrs[n_attr++] = (struct pc_attr){.name = "direction", .type = PC_ATTR_STRING, .s = c->direction};
	attrs[n_attr++] = (struct pc_attr){.name = "hidden_size", .type = PC_ATTR_INT, .i = H};
	if (c->layout)
		attrs[n_attr++] = (struct pc_attr){.name = "layout", .type = PC_ATTR_INT, .i = 1};
	if (c->cell != LSTM && !(c->n_attr && strcmp(c->attr[0].name, "linear_before_reset") == 0))
		attrs[n_attr++] =
		    (struct pc_attr){.name = "linear_before_reset", .type = PC_ATTR_INT, .i = c->cell == GRU1};
	for (int i = 0; i < c->n_attr; i++)
		attrs[n_attr++] = c->attr[i];
	{
		const char *in[8] = {c->layout ? "x" : "xt",
				     "W",
				     "R",
				     c->no_b ? "" : "B",
				     c->seq || c->seq_input ? "seq" : "",
				     c->h0 ? "h0" : "",
				     c->c0 ? "c0" : "",
				     "P"};
		const char *out[3] = {c->omit_y ? "" : "Y", c->skip_yh ? "" : "Y_h", c->skip_yc ? "" : "Y_c"};
		int n_in = c->with_p ? 8 : lstm ? 7 : 6, n_out = lstm ? 3 : 2;
		if (pc_graph_add_node(g, lstm ? "LSTM" : "GRU", "rnn", n_in, in, n_out, out, n_attr, attrs, err))
			goto fail;
	}
	if (c->seq_output) {
		static const int64_t target[3] = {0, 0, -1};
		if (pc_graph_add_int64(g, "target", &(struct pc_shape){1, {3}}, target, err) ||
		    pc_graph_add_node(g, "Reshape", "to_ntv", 2, (const char *[]){"Y", "target"}, 1,
				      (const char *[]){"out"}, 0, NULL, err))
			goto fail;
		k = 3; /* no flattening */
	}
	/* each used output to [N, ...], flattened */
	for (; k < 3; k++) {
		static const char *const names[] = {"Y", "Y_h", "Y_c"}, *const tr[] = {"Yt", "Y_ht", "Y_ct"};
		static const char *const fl[] = {"Yf", "Y_hf", "Y_cf"};
		struct pc_attr axis = {.name = "axis", .type = PC_ATTR_INT, .i = 1};
		const char *src = names[k];
		if ((k == 0 && c->skip_y) || (k == 1 && c->skip_yh) || (k == 2 && (c->skip_yc || !lstm)))
			continue;
		if (!c->layout) {
			struct pc_attr pa = {
			    .name = "perm", .type = PC_ATTR_INTS, .n = k ? 3 : 4, .ints = k ? perm_s : perm_y};
			if (pc_graph_add_node(g, "Transpose", tr[k], 1, &src, 1, &tr[k], 1, &pa, err))
				goto fail;
			src = tr[k];
		}
		if (pc_graph_add_node(g, "Flatten", fl[k], 1, &src, 1, &fl[k], 1, &axis, err))
			goto fail;
		flat[n_flat++] = fl[k];
	}
	if (n_flat) {
		struct pc_attr axis = {.name = "axis", .type = PC_ATTR_INT, .i = 1};
		if (pc_graph_add_node(g, "Concat", "cat", n_flat, flat, 1, (const char *[]){"out"}, 1, &axis, err))
			goto fail;
	}
	if (pc_graph_add_output(g, "out", err) || pc_graph_finish(g, err))
		goto fail;
	return g;
fail:
	pc_graph_free(g);
	return NULL;
}

/* --- the reference ------------------------------------------------------------------ */

static double sigmoid_d(double v)
{
	return 1.0 / (1.0 + exp(-v));
}

/* Expected graph output [N, C] for input xin [N, T, I]: the equations of
 * the ONNX spec, per direction, batch entry and step, in double. */
static void reference(const struct rnn_case *c, const struct rnn_data *d, const float *xin, double *out, int64_t *cols)
{
	int T = c->T, N = c->N, I = c->I, H = c->H, D = d->D, G = d->G, lstm = lstm_of(c);
	int reverse = strcmp(c->direction, "reverse") == 0;
	/* y[t][dir][n][j], yh/yc[dir][n][j] */
	static double y[MAX_T][2][MAX_N][MAX_H], yh[2][MAX_N][MAX_H], yc[2][MAX_N][MAX_H];
	int64_t C = 0;

	memset(y, 0, sizeof(y));
	for (int dir = 0; dir < D; dir++) {
		const float *W = d->w + (int64_t)dir * G * H * I, *R = d->r + (int64_t)dir * G * H * H;
		const float *Wb = c->no_b ? NULL : d->b + (int64_t)dir * 2 * G * H, *Rb = Wb ? Wb + G * H : NULL;
		int rev = reverse || dir == 1;
		for (int n = 0; n < N; n++) {
			double h[MAX_H], cs[MAX_H];
			int len = c->seq ? (int)c->seq[n] : T;
			for (int j = 0; j < H; j++) {
				int64_t off =
				    c->layout ? ((int64_t)n * D + dir) * H + j : ((int64_t)dir * N + n) * H + j;
				h[j] = c->h0 ? d->h0[off] : 0.0;
				cs[j] = c->c0 ? d->c0[off] : 0.0;
			}
			for (int s = 0; s < len; s++) {
				int t = rev ? len - 1 - s : s;
				const float *xt = xin + ((int64_t)n * T + t) * I;
				double pre_x[MAX_G * MAX_H], pre_h[MAX_G * MAX_H], nh[MAX_H];
				/* x W^T + Wb and h R^T + Rb, per gate row */
				for (int q = 0; q < G * H; q++) {
					double a = Wb ? Wb[q] : 0.0, b = Rb ? Rb[q] : 0.0;
					for (int i = 0; i < I; i++)
						a += (double)xt[i] * W[(int64_t)q * I + i];
					for (int m = 0; m < H; m++)
						b += h[m] * R[(int64_t)q * H + m];
					pre_x[q] = a;
					pre_h[q] = b;
				}
				if (lstm) {
					for (int j = 0; j < H; j++) {
						double ig = sigmoid_d(pre_x[j] + pre_h[j]);
						double og = sigmoid_d(pre_x[H + j] + pre_h[H + j]);
						double fg = sigmoid_d(pre_x[2 * H + j] + pre_h[2 * H + j]);
						double cg = tanh(pre_x[3 * H + j] + pre_h[3 * H + j]);
						cs[j] = fg * cs[j] + ig * cg;
						nh[j] = og * tanh(cs[j]);
					}
				} else {
					double z[MAX_H], r[MAX_H];
					for (int j = 0; j < H; j++) {
						z[j] = sigmoid_d(pre_x[j] + pre_h[j]);
						r[j] = sigmoid_d(pre_x[H + j] + pre_h[H + j]);
					}
					for (int j = 0; j < H; j++) {
						double hc;
						if (c->cell == GRU1) {
							hc = tanh(pre_x[2 * H + j] + r[j] * pre_h[2 * H + j]);
						} else {
							/* (r (.) h) R_h^T + Rb_h */
							double b = Rb ? Rb[2 * H + j] : 0.0;
							for (int m = 0; m < H; m++)
								b += r[m] * h[m] * R[(int64_t)(2 * H + j) * H + m];
							hc = tanh(pre_x[2 * H + j] + b);
						}
						nh[j] = (1.0 - z[j]) * hc + z[j] * h[j];
					}
				}
				for (int j = 0; j < H; j++) {
					h[j] = nh[j];
					y[t][dir][n][j] = h[j];
				}
			}
			for (int j = 0; j < H; j++) {
				yh[dir][n][j] = h[j];
				yc[dir][n][j] = cs[j];
			}
		}
	}
	for (int n = 0; n < N; n++) {
		int64_t col = 0;
		double *row = out + (int64_t)n * 4 * MAX_T * 2 * MAX_H;
		if (!c->skip_y)
			for (int t = 0; t < T; t++)
				for (int dir = 0; dir < D; dir++)
					for (int j = 0; j < H; j++)
						row[col++] = y[t][dir][n][j];
		if (!c->skip_yh)
			for (int dir = 0; dir < D; dir++)
				for (int j = 0; j < H; j++)
					row[col++] = yh[dir][n][j];
		if (lstm && !c->skip_yc)
			for (int dir = 0; dir < D; dir++)
				for (int j = 0; j < H; j++)
					row[col++] = yc[dir][n][j];
		C = col;
	}
	*cols = C;
}

#define REF_ROW (4 * MAX_T * 2 * MAX_H)

static const char *describe(const struct rnn_case *c, char *buf, size_t size)
{
	static const char *const cells[] = {"LSTM", "GRU lbr=0", "GRU lbr=1"};

	snprintf(buf, size, "%s %s layout %d%s%s%s%s", cells[c->cell], c->direction, c->layout, c->no_b ? " no-B" : "",
		 c->h0 ? " h0" : "", c->c0 ? " c0" : "", c->seq ? " seq" : "");
	return buf;
}

#define REQUIRE_BUILT(g, c, d, err)                                                                                    \
	do {                                                                                                           \
		char msg_[800], what_[128];                                                                            \
		(g) = build((c), (d), &(err));                                                                         \
		if (!(g)) {                                                                                            \
			pc_test_fail(t, __FILE__, __LINE__, "%s: build: %s", describe((c), what_, sizeof(what_)),      \
				     pc_error_format(&(err), msg_, sizeof(msg_)));                                     \
			return -1;                                                                                     \
		}                                                                                                      \
	} while (0)

/* Forward of case c in an inference plan and in a gradient plan (the saved
 * gates live in the workspace in one, in node state in the other); both
 * against the reference. Returns the largest |error|, -1 on failure. */
static double check_forward(struct pc_test *t, const struct rnn_case *c, double atol, double rtol)
{
	static double ref[MAX_N * REF_ROW];
	struct pc_error err = {0};
	struct rnn_data d;
	struct pc_graph *g;
	float out0[MAX_N * REF_ROW];
	double worst = 0.0;
	int64_t cols = 0;
	char what[128], msg[800];

	make_data(c, &d);
	REQUIRE_BUILT(g, c, &d, err);
	describe(c, what, sizeof(what));
	for (int pass = 0; pass < 2; pass++) {
		struct pc_plan *p = pc_plan_new(g, c->N, pass ? PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD : 0, &err);
		const float *got;
		int bad = 0;
		if (!p) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: plan: %s", what,
				     pc_error_format(&err, msg, sizeof(msg)));
			break;
		}
		gc_fill(pc_plan_input(p), (int64_t)c->N * c->T * c->I, c->seed + 9, -1.0f, 1.0f);
		pc_plan_forward(p);
		reference(c, &d, pc_plan_input(p), ref, &cols);
		/* [N, C], or [N, T, D*H] for a sequence output */
		CHECK_INT(pc_plan_positions(p) * pc_plan_classes(p), cols);
		got = pc_plan_output(p);
		for (int n = 0; n < c->N && pc_plan_positions(p) * pc_plan_classes(p) == cols; n++)
			for (int64_t j = 0; j < cols; j++) {
				double want = ref[(int64_t)n * REF_ROW + j], v = got[(int64_t)n * cols + j];
				double e = fabs(v - want);
				if (e > worst)
					worst = e;
				if (!(e <= atol + rtol * fabs(want)) && bad++ < 4)
					pc_test_fail(t, __FILE__, __LINE__, "%s: out[%d][%lld] = %.9g, expected %.9g",
						     what, n, (long long)j, v, want);
				if (!pass)
					out0[(int64_t)n * cols + j] = (float)v;
				else
					CHECK_MSG(out0[(int64_t)n * cols + j] == (float)v,
						  "%s: the gradient plan's forward differs at [%d][%lld]", what, n,
						  (long long)j);
			}
		pc_plan_free(p);
	}
	pc_graph_free(g);
	return worst;
}

static const struct gc_opts GC_RNN = {.eps = 1e-2, .atol = 5e-5, .rtol = 5e-4, .samples = 64, .check_input = 1};

static int check_grads(struct pc_test *t, const struct rnn_case *c)
{
	struct pc_error err = {0};
	struct rnn_data d;
	struct pc_graph *g;
	struct gc_opts o = GC_RNN;
	int checked;

	make_data(c, &d);
	REQUIRE_BUILT(g, c, &d, err);
	o.batch = c->N;
	o.seed = c->seed + 17;
	checked = gc_check(t, g, &o);
	pc_graph_free(g);
	return checked;
}

static const char *const DIRECTIONS[] = {"forward", "reverse", "bidirectional"};
static const int64_t SEQ_MIXED[MAX_N] = {4, 1, 3};
static const int64_t SEQ_ZERO[MAX_N] = {0, 4, 2};

/* Every cell x direction x layout x (initial states) x (sequence lengths). */
static int for_each_case(struct pc_test *t, int (*fn)(struct pc_test *, const struct rnn_case *, void *), void *arg)
{
	int count = 0;

	for (int cell = 0; cell < 3; cell++)
		for (int dir = 0; dir < 3; dir++)
			for (int layout = 0; layout < 2; layout++)
				for (int states = 0; states < 2; states++)
					for (int seq = 0; seq < 3; seq++) {
						struct rnn_case c = {
						    .cell = (enum cell)cell,
						    .direction = DIRECTIONS[dir],
						    .layout = layout,
						    .T = 4,
						    .N = 3,
						    .I = 3,
						    .H = 4,
						    .h0 = states,
						    .c0 = states && cell == LSTM,
						    .seq = seq == 1   ? SEQ_MIXED
							   : seq == 2 ? SEQ_ZERO
								      : NULL,
						    /* B omitted in some cases, read in most */
						    .no_b = (cell + dir + layout + seq) % 4 == 3,
						    .seed = 100u * (uint64_t)(cell * 36 + dir * 12 + layout * 6 +
									      states * 3 + seq),
						};
						count += fn(t, &c, arg);
					}
	return count;
}

static int forward_case(struct pc_test *t, const struct rnn_case *c, void *arg)
{
	double *worst = arg, e = check_forward(t, c, 2e-6, 1e-5);

	if (e > *worst)
		*worst = e;
	return e >= 0.0;
}

TEST(rnn_forward_matches_reference)
{
	double worst = 0.0;
	int cases = for_each_case(t, forward_case, &worst);

	CHECK_INT(cases, 3 * 3 * 2 * 2 * 3);
	printf("  LSTM/GRU: largest |error| against the double reference over %d graphs: %.3g\n", cases, worst);
}

static int grad_case(struct pc_test *t, const struct rnn_case *c, void *arg)
{
	int checked = check_grads(t, c), params = 2 + !c->no_b + c->h0 + c->c0;
	char what[128];

	/* every parameter tensor and the input were compared */
	CHECK_MSG(checked > params * 8, "%s: only %d elements checked", describe(c, what, sizeof(what)), checked);
	(void)arg;
	return checked > 0;
}

TEST(rnn_gradients_match_finite_differences)
{
	int cases = for_each_case(t, grad_case, NULL);

	CHECK_INT(cases, 3 * 3 * 2 * 2 * 3);
}

/* --- PyTorch fixtures ------------------------------------------------------------------ */

#define FIXTURES "tests/reference/fixtures"

struct torch_worst {
	double out, grad;
	int models;
};

static int float_array(json_t *a, float *dst, size_t max)
{
	size_t n = json_array_size(a);

	if (!json_is_array(a) || n > max)
		return -1;
	for (size_t i = 0; i < n; i++)
		dst[i] = (float)json_number_value(json_array_get(a, i));
	return (int)n;
}

static double close_err(double got, double want, double atol, double rtol)
{
	/* how far past the tolerance, as a fraction of it: <= 1 passes */
	return fabs(got - want) / (atol + rtol * fabs(want));
}

/* Loads onnx (or the JSON's own model), runs forward and backward at the
 * fixture's batch and compares with torch. Returns 0, or the load status
 * when the model does not load (err holds why). */
static int check_torch(struct pc_test *t, const char *json_name, const char *onnx_name, struct torch_worst *worst,
		       struct pc_error *err)
{
	char path[512], msg[800];
	json_error_t jerr;
	json_t *ref, *params;
	struct pc_graph *g = NULL;
	struct pc_plan *p = NULL;
	static float x[256], want[1024], gin[256];
	int nx, nout, batch, rc = 0;
	int64_t classes;
	const char *key;
	json_t *val;

	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s.json", pc_test_root(), json_name);
	ref = json_load_file(path, 0, &jerr);
	if (!ref) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
		return -1;
	}
	snprintf(path, sizeof(path), "%s/" FIXTURES "/%s", pc_test_root(),
		 onnx_name ? onnx_name : json_string_value(json_object_get(ref, "model")));
	if ((rc = pc_onnx_load_file(path, &g, err)))
		goto out;
	nx = float_array(json_object_get(ref, "x"), x, 256);
	nout = float_array(json_object_get(ref, "output"), want, 1024);
	float_array(json_object_get(ref, "input_grad"), gin, 256);
	batch = (int)json_integer_value(json_array_get(json_object_get(ref, "input_shape"), 0));
	classes = json_integer_value(json_object_get(ref, "classes"));
	p = pc_plan_new(g, batch, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, err);
	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: plan: %s", json_name, pc_error_format(err, msg, sizeof(msg)));
		goto out;
	}
	if (nx != batch * pc_plan_sample_numel(p) || nout != batch * classes || pc_plan_classes(p) != classes) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: fixture sizes %d, %d do not fit the plan", json_name, nx,
			     nout);
		goto out;
	}
	memcpy(pc_plan_input(p), x, (size_t)nx * sizeof(float));
	pc_plan_forward(p);
	for (int i = 0; i < nout; i++) {
		double e = close_err(pc_plan_output(p)[i], want[i], 1e-6, 1e-5);
		if (e > worst->out)
			worst->out = e;
		CHECK_MSG(e <= 1.0, "%s: out[%d] = %.9g, torch %.9g", json_name, i, (double)pc_plan_output(p)[i],
			  (double)want[i]);
	}
	for (int i = 0; i < nout; i++)
		pc_plan_output_grad(p)[i] = (float)cos(0.7 * i);
	pc_plan_backward(p);
	for (int i = 0; i < nx; i++) {
		double e = close_err(pc_plan_input_grad(p)[i], gin[i], 1e-6, 1e-4);
		if (e > worst->grad)
			worst->grad = e;
		CHECK_MSG(e <= 1.0, "%s: dx[%d] = %.9g, torch %.9g", json_name, i, (double)pc_plan_input_grad(p)[i],
			  (double)gin[i]);
	}
	params = json_object_get(ref, "params");
	CHECK_INT(json_object_size(params), pc_graph_param_tensors(g));
	json_object_foreach(params, key, val)
	{
		int k = pc_graph_find_param(g, key);
		const struct pc_param *pt;
		const float *gw;
		double l1 = 0, l2 = 0, linf = 0, ref_norm[3];
		static const char *const norms[] = {"l1", "l2", "linf"};
		json_t *idx = json_object_get(val, "index"), *vals = json_object_get(val, "values");
		if (k < 0) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: no parameter %s", json_name, key);
			continue;
		}
		pt = pc_graph_param(g, k);
		gw = pc_plan_weight_grad(p) + pt->offset;
		for (int64_t i = 0; i < pt->count; i++) {
			double v = fabs((double)gw[i]);
			l1 += v;
			l2 += v * v;
			linf = v > linf ? v : linf;
		}
		l2 = sqrt(l2);
		for (int m = 0; m < 3; m++) {
			double got = m == 0 ? l1 : m == 1 ? l2 : linf, e;
			ref_norm[m] = json_number_value(json_object_get(val, norms[m]));
			e = close_err(got, ref_norm[m], 1e-7, 1e-4);
			if (e > worst->grad)
				worst->grad = e;
			CHECK_MSG(e <= 1.0, "%s: %s of d%s = %.9g, torch %.9g", json_name, norms[m], key, got,
				  ref_norm[m]);
		}
		for (size_t i = 0; i < json_array_size(idx); i++) {
			int64_t at = json_integer_value(json_array_get(idx, i));
			double w = json_number_value(json_array_get(vals, i)), e;
			if (at < 0 || at >= pt->count) {
				pc_test_fail(t, __FILE__, __LINE__, "%s: index %lld of %s", json_name, (long long)at,
					     key);
				break;
			}
			e = close_err(gw[at], w, 1e-6, 1e-4);
			if (e > worst->grad)
				worst->grad = e;
			CHECK_MSG(e <= 1.0, "%s: d%s[%lld] = %.9g, torch %.9g", json_name, key, (long long)at,
				  (double)gw[at], w);
		}
	}
	worst->models++;
out:
	pc_plan_free(p);
	pc_graph_free(g);
	json_decref(ref);
	return rc;
}

static const char *const TORCH_H0[] = {
    "lstm_bf0_h0_op14", "lstm_bf0_h0_op17", "lstm_bf1_h0_op14", "lstm_bf1_h0_op17",
    "gru_bf0_h0_op14",	"gru_bf0_h0_op17",  "gru_bf1_h0_op14",	"gru_bf1_h0_op17",
};
static const char *const TORCH_ZERO[] = {
    "lstm_bf0_zero_op14", "lstm_bf0_zero_op17", "lstm_bf1_zero_op14", "lstm_bf1_zero_op17",
    "gru_bf0_zero_op14",  "gru_bf0_zero_op17",	"gru_bf1_zero_op14",  "gru_bf1_zero_op17",
};

/* 2-layer bidirectional nn.LSTM / nn.GRU with learned initial states: the
 * ops of these exports all exist, so every one must load and agree. */
TEST(rnn_torch_learned_state)
{
	struct torch_worst worst = {0};
	struct pc_error err = {0};
	char msg[800];

	for (size_t i = 0; i < sizeof(TORCH_H0) / sizeof(TORCH_H0[0]); i++) {
		pc_error_clear(&err);
		if (check_torch(t, TORCH_H0[i], NULL, &worst, &err))
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", TORCH_H0[i],
				     pc_error_format(&err, msg, sizeof(msg)));
	}
	/* the default activations written out load and compute the same */
	pc_error_clear(&err);
	if (check_torch(t, "lstm_bf1_h0_op14", "lstm_bf1_h0_op14_acts.onnx", &worst, &err))
		pc_test_fail(t, __FILE__, __LINE__, "acts: %s", pc_error_format(&err, msg, sizeof(msg)));
	CHECK_INT(worst.models, 9);
	printf("  LSTM/GRU vs PyTorch, %d models: worst output error %.3g, gradient error %.3g of the tolerance\n",
	       worst.models, worst.out, worst.grad);
}

/* The default exports (zero initial state, dynamic batch) build the state
 * with ConstantOfShape and Slice; while those ops are missing the test
 * says so instead of passing. */
TEST(rnn_torch_zero_state)
{
	struct torch_worst worst = {0};
	struct pc_error err = {0};
	char msg[800], missing[900] = "";

	for (size_t i = 0; i < sizeof(TORCH_ZERO) / sizeof(TORCH_ZERO[0]); i++) {
		pc_error_clear(&err);
		if (!check_torch(t, TORCH_ZERO[i], NULL, &worst, &err))
			continue;
		pc_error_format(&err, msg, sizeof(msg));
		if (err.code == PC_ERR_UNSUPPORTED && strstr(msg, "unsupported op") && !strstr(msg, "LSTM") &&
		    !strstr(msg, "GRU"))
			snprintf(missing, sizeof(missing), "%s", msg);
		else
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", TORCH_ZERO[i], msg);
	}
	if (missing[0] && !worst.models) {
		pc_test_skip(t, missing);
		return;
	}
	CHECK_MSG(!missing[0], "some zero-state fixtures load and some do not: %s", missing);
	CHECK_INT(worst.models, 8);
	printf("  LSTM/GRU vs PyTorch (zero state), %d models: worst output error %.3g, gradient error %.3g of the "
	       "tolerance\n",
	       worst.models, worst.out, worst.grad);
}

TEST(rnn_torch_relu_activation_refused)
{
	struct pc_graph *g = NULL;
	struct pc_error err = {0};
	char path[512], msg[800];

	snprintf(path, sizeof(path), "%s/" FIXTURES "/lstm_bf1_h0_op14_relu.onnx", pc_test_root());
	CHECK(pc_onnx_load_file(path, &g, &err) == PC_ERR_UNSUPPORTED);
	pc_error_format(&err, msg, sizeof(msg));
	CHECK_MSG(strstr(msg, "'activations'") && strstr(msg, "Relu") && strstr(msg, "(LSTM)"), "message: %s", msg);
	pc_graph_free(g);
}

/* --- sizes and output subsets ------------------------------------------------------------- */

static const int64_t SEQ_ONE[1] = {1};
static const int64_t SEQ_FOUR[MAX_N] = {6, 0, 3, 5};

TEST(rnn_sizes_and_output_subsets)
{
	const struct rnn_case cases[] = {
	    /* one of everything */
	    {.cell = LSTM, .direction = "bidirectional", .T = 1, .N = 1, .I = 1, .H = 1, .seed = 7},
	    {.cell = GRU1,
	     .direction = "reverse",
	     .layout = 1,
	     .T = 1,
	     .N = 1,
	     .I = 1,
	     .H = 1,
	     .h0 = 1,
	     .seq = SEQ_ONE,
	     .seed = 8},
	    /* the largest sizes here, I > H and I < H */
	    {.cell = GRU1, .direction = "forward", .layout = 1, .T = 6, .N = 4, .I = 5, .H = 2, .seed = 9},
	    {.cell = LSTM,
	     .direction = "bidirectional",
	     .layout = 1,
	     .T = 6,
	     .N = 4,
	     .I = 2,
	     .H = 5,
	     .h0 = 1,
	     .c0 = 1,
	     .seq = SEQ_FOUR,
	     .seed = 10},
	    {.cell = GRU0, .direction = "bidirectional", .T = 6, .N = 4, .I = 5, .H = 5, .seq = SEQ_FOUR, .seed = 11},
	    /* any subset of the outputs read */
	    {.cell = LSTM,
	     .direction = "reverse",
	     .layout = 1,
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_y = 1,
	     .seed = 12},
	    {.cell = LSTM,
	     .direction = "forward",
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_yh = 1,
	     .skip_yc = 1,
	     .seed = 13},
	    {.cell = LSTM,
	     .direction = "bidirectional",
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_yh = 1,
	     .h0 = 1,
	     .c0 = 1,
	     .seed = 14},
	    {.cell = LSTM,
	     .direction = "bidirectional",
	     .layout = 1,
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_y = 1,
	     .skip_yh = 1,
	     .seq = SEQ_MIXED,
	     .seed = 15},
	    {.cell = GRU0,
	     .direction = "bidirectional",
	     .layout = 1,
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_y = 1,
	     .h0 = 1,
	     .seed = 16},
	    {.cell = GRU1,
	     .direction = "reverse",
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_yh = 1,
	     .seq = SEQ_ZERO,
	     .seed = 17},
	    /* Y omitted (the empty name) */
	    {.cell = LSTM,
	     .direction = "bidirectional",
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_y = 1,
	     .omit_y = 1,
	     .seed = 19},
	    {.cell = GRU1,
	     .direction = "forward",
	     .layout = 1,
	     .T = 4,
	     .N = 3,
	     .I = 3,
	     .H = 4,
	     .skip_y = 1,
	     .omit_y = 1,
	     .h0 = 1,
	     .seed = 20},
	    /* only initial_c, no B; opset 11 (no layout attribute) */
	    {.cell = LSTM,
	     .direction = "forward",
	     .T = 3,
	     .N = 2,
	     .I = 3,
	     .H = 3,
	     .c0 = 1,
	     .no_b = 1,
	     .opset = 11,
	     .seed = 18},
	};
	double worst = 0.0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double e = check_forward(t, &cases[i], 2e-6, 1e-5);
		if (e > worst)
			worst = e;
		CHECK(check_grads(t, &cases[i]) > 0);
	}
	CHECK(worst < 1e-5);
}

/* A plan of another batch than the graph was checked at (dynamic batch). */
TEST(rnn_other_batch_sizes)
{
	for (int n = 1; n <= MAX_N; n++) {
		struct rnn_case c = {.cell = (enum cell)(n % 3),
				     .direction = "bidirectional",
				     .layout = n % 2,
				     .T = 3,
				     .N = n,
				     .I = 2,
				     .H = 3,
				     .seed = 40u + (uint64_t)n};
		CHECK(check_forward(t, &c, 2e-6, 1e-5) >= 0.0);
	}
}

/* Backward adds: a second backward after one forward doubles the weight
 * gradients exactly (the saved gates are not consumed), and the input
 * gradient, which the plan clears, comes out the same. */
TEST(rnn_backward_adds)
{
	for (int cell = 0; cell < 3; cell++) {
		struct rnn_case c = {.cell = (enum cell)cell,
				     .direction = "bidirectional",
				     .layout = cell == 1,
				     .T = 4,
				     .N = 3,
				     .I = 3,
				     .H = 4,
				     .h0 = 1,
				     .c0 = cell == LSTM,
				     .seq = SEQ_MIXED,
				     .seed = 60};
		struct pc_error err = {0};
		struct rnn_data d;
		struct pc_graph *g;
		struct pc_plan *p;
		float *gw1, *gx1;
		int64_t np, nx, nout;
		char msg[800];
		int bad = 0;

		make_data(&c, &d);
		g = build(&c, &d, &err);
		REQUIRE_MSG(g, "build: %s", pc_error_format(&err, msg, sizeof(msg)));
		p = pc_plan_new(g, c.N, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
		REQUIRE_MSG(p, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		np = pc_graph_param_count(g);
		nx = (int64_t)c.N * pc_plan_sample_numel(p);
		nout = (int64_t)c.N * pc_plan_classes(p);
		gw1 = malloc((size_t)np * sizeof(float));
		gx1 = malloc((size_t)nx * sizeof(float));
		REQUIRE(gw1 && gx1);
		gc_fill(pc_plan_input(p), nx, 61, -1.0f, 1.0f);
		gc_fill(pc_plan_output_grad(p), nout, 62, -1.0f, 1.0f);
		pc_plan_forward(p);
		pc_plan_backward(p);
		memcpy(gw1, pc_plan_weight_grad(p), (size_t)np * sizeof(float));
		memcpy(gx1, pc_plan_input_grad(p), (size_t)nx * sizeof(float));
		pc_plan_backward(p);
		for (int64_t i = 0; i < np; i++)
			if (pc_plan_weight_grad(p)[i] != 2.0f * gw1[i] && bad++ < 3)
				pc_test_fail(t, __FILE__, __LINE__,
					     "cell %d: dw[%lld] = %.9g after two passes, %.9g after one", cell,
					     (long long)i, (double)pc_plan_weight_grad(p)[i], (double)gw1[i]);
		for (int64_t i = 0; i < nx; i++)
			if (pc_plan_input_grad(p)[i] != gx1[i] && bad++ < 6)
				pc_test_fail(t, __FILE__, __LINE__, "cell %d: dx[%lld] changed", cell, (long long)i);
		/* and the gradients are not all zero */
		CHECK(gw1[0] != 0.0f || gw1[np - 1] != 0.0f);
		free(gw1);
		free(gx1);
		pc_plan_free(p);
		pc_graph_free(g);
	}
}

/* --- activations and refusals --------------------------------------------------------------- */

static struct pc_attr a_strings(const char *name, int n, const char *const *v)
{
	return (struct pc_attr){.name = name, .type = PC_ATTR_STRINGS, .n = n, .strings = v};
}

TEST(rnn_default_activations_accepted)
{
	static const char *const lstm_bi[] = {"Sigmoid", "Tanh", "Tanh", "sigmoid", "tanh", "TANH"};
	static const char *const gru_fw[] = {"Sigmoid", "Tanh"};
	struct rnn_case c1 = {.cell = LSTM,
			      .direction = "bidirectional",
			      .T = 3,
			      .N = 2,
			      .I = 2,
			      .H = 3,
			      .n_attr = 1,
			      .attr = {a_strings("activations", 6, lstm_bi)},
			      .seed = 70};
	struct rnn_case c2 = {.cell = GRU1,
			      .direction = "forward",
			      .layout = 1,
			      .T = 3,
			      .N = 2,
			      .I = 2,
			      .H = 3,
			      .n_attr = 1,
			      .attr = {a_strings("activations", 2, gru_fw)},
			      .seed = 71};

	/* the reference uses the defaults: the values must match it */
	CHECK(check_forward(t, &c1, 2e-6, 1e-5) >= 0.0);
	CHECK(check_forward(t, &c2, 2e-6, 1e-5) >= 0.0);
}

/* Building must fail at load with `code`, naming the node and `text`. */
static void expect_refused(struct pc_test *t, const struct rnn_case *c, enum pc_status code, const char *text)
{
	struct pc_error err = {0};
	struct rnn_data d;
	struct pc_graph *g;
	char msg[800], what[128];

	make_data(c, &d);
	g = build(c, &d, &err);
	pc_error_format(&err, msg, sizeof(msg));
	describe(c, what, sizeof(what));
	CHECK_MSG(g == NULL, "%s: built; expected a refusal mentioning %s", what, text);
	CHECK_MSG(err.code == code, "%s: expected %s, got %s: %s", what, pc_status_name(code), pc_status_name(err.code),
		  msg);
	CHECK_MSG(strstr(err.where, "'rnn'") != NULL, "%s: error does not name the node: %s", what, msg);
	CHECK_MSG(strstr(msg, text) != NULL, "%s: error does not mention '%s': %s", what, text, msg);
	pc_graph_free(g);
}

static const int64_t SEQ_LONG[3] = {4, 5, 1}, SEQ_NEG[3] = {4, -1, 1};

TEST(rnn_unsupported_refused_at_load)
{
	static const char *const relu[] = {"Sigmoid", "Relu", "Tanh"};
	static const char *const two[] = {"Sigmoid", "Tanh"};
	static const float alpha[] = {1.0f};
	const struct rnn_case base = {.cell = LSTM, .direction = "forward", .T = 4, .N = 3, .I = 3, .H = 4, .seed = 80};
	struct rnn_case c;

	c = base;
	c.with_p = 1;
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "peephole");
	c = base;
	c.n_attr = 1;
	c.attr[0] = (struct pc_attr){.name = "clip", .type = PC_ATTR_FLOAT, .f = 3.0f};
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'clip'");
	c.cell = GRU1;
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'clip'");
	c = base;
	c.n_attr = 1;
	c.attr[0] = (struct pc_attr){.name = "input_forget", .type = PC_ATTR_INT, .i = 1};
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'input_forget'");
	c = base;
	c.n_attr = 1;
	c.attr[0] = a_strings("activations", 3, relu);
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'activations'");
	c.attr[0] = a_strings("activations", 2, two); /* LSTM takes 3 */
	expect_refused(t, &c, PC_ERR_FORMAT, "'activations'");
	c.cell = GRU0;
	c.attr[0] = a_strings("activations", 3, relu); /* GRU takes 2 */
	expect_refused(t, &c, PC_ERR_FORMAT, "'activations'");
	c.attr[0] = (struct pc_attr){.name = "activations", .type = PC_ATTR_STRING, .s = "Sigmoid"};
	expect_refused(t, &c, PC_ERR_FORMAT, "'activations'");
	c = base;
	c.n_attr = 1;
	c.attr[0] = (struct pc_attr){.name = "activation_alpha", .type = PC_ATTR_FLOATS, .n = 1, .floats = alpha};
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'activation_alpha'");
	c.attr[0].name = "activation_beta";
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'activation_beta'");
	c = base;
	c.direction = "sideways";
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'direction'");
	c = base;
	c.n_attr = 1;
	c.attr[0] = (struct pc_attr){.name = "layout", .type = PC_ATTR_INT, .i = 2};
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'layout'");
	c = base;
	c.layout = 1;
	c.opset = 13;
	expect_refused(t, &c, PC_ERR_FORMAT, "'layout'");
	c = base;
	c.cell = GRU0;
	c.n_attr = 1;
	c.attr[0] = (struct pc_attr){.name = "linear_before_reset", .type = PC_ATTR_INT, .i = 2};
	expect_refused(t, &c, PC_ERR_UNSUPPORTED, "'linear_before_reset'");
	c = base;
	c.n_attr = 0;
	c.seq = SEQ_LONG;
	expect_refused(t, &c, PC_ERR_FORMAT, "sequence_lens[1] is 5");
	c.seq = SEQ_NEG;
	expect_refused(t, &c, PC_ERR_FORMAT, "sequence_lens[1] is -1");
	c.seq = SEQ_MIXED;
	c.seq_float = 1;
	expect_refused(t, &c, PC_ERR_SHAPE, "sequence_lens");
}

/* Shapes that disagree with X, W, R or hidden_size, built by hand; text
 * NULL: the graph must build. */
static void expect_shape_refused(struct pc_test *t, const char *op, int64_t hidden, struct pc_shape ws,
				 struct pc_shape rs, struct pc_shape bs, struct pc_shape hs, const char *text)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(14, &err);
	static float zeros[4096];
	struct pc_attr attrs[2] = {{.name = "hidden_size", .type = PC_ATTR_INT, .i = hidden},
				   {.name = "direction", .type = PC_ATTR_STRING, .s = "forward"}};
	const char *in[6] = {"x", "W", "R", "B", "", "h0"};
	struct pc_attr axis = {.name = "axis", .type = PC_ATTR_INT, .i = 1};
	char msg[800];

	REQUIRE(g);
	if (pc_graph_add_input(g, "x", &(struct pc_shape){3, {4, 3, 3}}, &err) ||
	    pc_graph_add_float(g, "W", &ws, zeros, &err) || pc_graph_add_float(g, "R", &rs, zeros, &err) ||
	    pc_graph_add_float(g, "B", &bs, zeros, &err) || pc_graph_add_float(g, "h0", &hs, zeros, &err) ||
	    pc_graph_add_node(g, op, "rnn", 6, in, 1, (const char *[]){"Y"}, hidden ? 2 : 1, hidden ? attrs : attrs + 1,
			      &err) ||
	    pc_graph_add_node(g, "Flatten", "fl", 1, (const char *[]){"Y"}, 1, (const char *[]){"out"}, 1, &axis,
			      &err) ||
	    pc_graph_add_output(g, "out", &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "building: %s", pc_error_format(&err, msg, sizeof(msg)));
		pc_graph_free(g);
		return;
	}
	if (!text) {
		CHECK_MSG(pc_graph_finish(g, &err) == PC_OK, "finish: %s", pc_error_format(&err, msg, sizeof(msg)));
		pc_graph_free(g);
		return;
	}
	CHECK(pc_graph_finish(g, &err) != PC_OK);
	pc_error_format(&err, msg, sizeof(msg));
	CHECK_MSG(strstr(msg, "'rnn'") && strstr(msg, text), "expected '%s': %s", text, msg);
	pc_graph_free(g);
}

TEST(rnn_shape_mismatches_refused_at_load)
{
	/* x is [T=4, N=3, I=3] (layout 0); LSTM with H = 2: W [1,8,3], R [1,8,2], B [1,16], h0 [1,3,2] */
	struct pc_shape w = {3, {1, 8, 3}}, r = {3, {1, 8, 2}}, b = {2, {1, 16}}, h = {3, {1, 3, 2}};

	expect_shape_refused(t, "LSTM", 2, w, r, b, h, NULL); /* the valid one builds */
	expect_shape_refused(t, "LSTM", 3, w, r, b, h, "input 2 (R)");
	expect_shape_refused(t, "LSTM", 2, (struct pc_shape){3, {1, 8, 4}}, r, b, h, "input 1 (W)");
	expect_shape_refused(t, "LSTM", 2, w, r, (struct pc_shape){2, {1, 12}}, h, "input 3 (B)");
	expect_shape_refused(t, "LSTM", 2, w, r, b, (struct pc_shape){3, {3, 1, 2}}, "input 5 (initial_h)");
	expect_shape_refused(t, "LSTM", 2, (struct pc_shape){3, {2, 8, 3}}, (struct pc_shape){3, {2, 8, 2}}, b, h,
			     "input 2 (R)");
	expect_shape_refused(t, "GRU", 2, w, r, b, h, "input 2 (R)"); /* GRU has 3 gates: R [1,6,2] */
	expect_shape_refused(t, "LSTM", 0, w, (struct pc_shape){2, {8, 2}}, b, h, "input 2 (R)");
	expect_shape_refused(t, "LSTM", 1 << 21, w, r, b, h, "'hidden_size'");
}

/* A sequence model's output [N, T, D*H] straight from Y (layout 1). */
TEST(rnn_sequence_output)
{
	for (int cell = 0; cell < 3; cell++) {
		struct rnn_case c = {.cell = (enum cell)cell,
				     .direction = cell == 1 ? "reverse" : "bidirectional",
				     .layout = 1,
				     .T = 5,
				     .N = 2,
				     .I = 3,
				     .H = 4,
				     .skip_yh = 1,
				     .skip_yc = 1,
				     .seq_output = 1,
				     .seed = 90u + (uint64_t)cell};
		CHECK(check_forward(t, &c, 2e-6, 1e-5) >= 0.0);
	}
}

/* sequence_lens computed at run time (here: the graph's int64 input, with x
 * an initializer): read at each forward, values outside 0..T clamped. The
 * same graph with the clamped lengths as a constant and x as the input must
 * give the same output and gradients, bit for bit. */
TEST(rnn_sequence_lens_at_run_time)
{
	static const int64_t runs[3][3] = {{4, 1, 3}, {0, 4, 2}, {9, -3, 2}},
			     clamped[3][3] = {{4, 1, 3}, {0, 4, 2}, {4, 0, 2}};

	for (int cell = 0; cell < 3; cell++) {
		struct rnn_case c = {.cell = (enum cell)cell,
				     .direction = "bidirectional",
				     .layout = cell != 1,
				     .T = 4,
				     .N = 3,
				     .I = 3,
				     .H = 4,
				     .h0 = 1,
				     .c0 = cell == LSTM,
				     .seq_input = 1,
				     .seed = 95};
		struct pc_error err = {0};
		struct rnn_data d;
		struct pc_graph *g, *gs;
		struct pc_plan *p, *ps;
		char msg[800];

		make_data(&c, &d);
		g = build(&c, &d, &err);
		REQUIRE_MSG(g, "build: %s", pc_error_format(&err, msg, sizeof(msg)));
		p = pc_plan_new(g, c.N, PC_PLAN_GRAD, &err);
		REQUIRE_MSG(p, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		REQUIRE(pc_plan_input(p) == NULL && pc_plan_input_int64(p) != NULL);
		for (int r = 0; r < 3; r++) {
			struct rnn_case cs = c;
			int64_t nout = (int64_t)c.N * pc_plan_classes(p), cols = 0;
			static double ref[MAX_N * REF_ROW];
			int bad = 0;
			cs.seq_input = 0;
			cs.seq = clamped[r];
			gs = build(&cs, &d, &err);
			REQUIRE_MSG(gs, "build: %s", pc_error_format(&err, msg, sizeof(msg)));
			ps = pc_plan_new(gs, c.N, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
			REQUIRE_MSG(ps, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
			memcpy(pc_plan_input_int64(p), runs[r], sizeof(runs[r]));
			memcpy(pc_plan_input(ps), d.x, (size_t)(c.N * c.T * c.I) * sizeof(float));
			pc_plan_forward(p);
			pc_plan_forward(ps);
			reference(&cs, &d, d.x, ref, &cols);
			REQUIRE(cols == pc_plan_classes(p) && cols == pc_plan_classes(ps));
			for (int64_t i = 0; i < nout; i++) {
				double want = ref[i / cols * REF_ROW + i % cols];
				if (pc_plan_output(p)[i] != pc_plan_output(ps)[i] && bad++ < 3)
					pc_test_fail(t, __FILE__, __LINE__, "cell %d run %d: out[%lld] %.9g vs %.9g",
						     cell, r, (long long)i, (double)pc_plan_output(p)[i],
						     (double)pc_plan_output(ps)[i]);
				CHECK(fabs(pc_plan_output(p)[i] - want) <= 2e-6 + 1e-5 * fabs(want));
			}
			gc_fill(pc_plan_output_grad(p), nout, 96 + (uint64_t)r, -1.0f, 1.0f);
			memcpy(pc_plan_output_grad(ps), pc_plan_output_grad(p), (size_t)nout * sizeof(float));
			pc_plan_zero_weight_grad(p);
			pc_plan_zero_weight_grad(ps);
			pc_plan_backward(p);
			pc_plan_backward(ps);
			for (int k = 0; k < pc_graph_param_tensors(g); k++) {
				const struct pc_param *pt = pc_graph_param(g, k);
				int ks = pc_graph_find_param(gs, pt->name);
				const float *a = pc_plan_weight_grad(p) + pt->offset, *b;
				if (strcmp(pt->name, "x") == 0) {
					b = pc_plan_input_grad(ps); /* x's gradient as a weight = as the input */
				} else {
					REQUIRE(ks >= 0);
					b = pc_plan_weight_grad(ps) + pc_graph_param(gs, ks)->offset;
				}
				for (int64_t i = 0; i < pt->count; i++)
					if (a[i] != b[i] && bad++ < 6)
						pc_test_fail(t, __FILE__, __LINE__,
							     "cell %d run %d: d%s[%lld] %.9g vs %.9g", cell, r,
							     pt->name, (long long)i, (double)a[i], (double)b[i]);
			}
			pc_plan_free(ps);
			pc_graph_free(gs);
		}
		pc_plan_free(p);
		pc_graph_free(g);
	}
}
