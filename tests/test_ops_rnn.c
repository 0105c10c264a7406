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
	int no_b, h0, c0;	  /* optional inputs present */
	const int64_t *seq;	  /* sequence_lens (N values), or NULL */
	int skip_y, skip_yh, skip_yc; /* outputs not read (Y stays named, the others are omitted) */
	int opset;		  /* 0 = 14 */
	int n_attr;		  /* extra attributes on the node */
	struct pc_attr attr[3];
	int with_p;	/* an LSTM peephole input */
	int seq_float; /* sequence_lens as a float tensor */
	uint64_t seed;
};

struct rnn_data {
	int D, G, fixed;
	float w[2 * MAX_G * MAX_H * MAX_I], r[2 * MAX_G * MAX_H * MAX_H], b[2 * 2 * MAX_G * MAX_H];
	float h0[2 * MAX_N * MAX_H], c0[2 * MAX_N * MAX_H];
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
	d->fixed = c->h0 || c->c0 || c->seq;
	gc_fill(d->w, (int64_t)D * G * c->H * c->I, c->seed + 1, -0.6f, 0.6f);
	gc_fill(d->r, (int64_t)D * G * c->H * c->H, c->seed + 2, -0.6f, 0.6f);
	gc_fill(d->b, (int64_t)D * 2 * G * c->H, c->seed + 3, -0.4f, 0.4f);
	gc_fill(d->h0, (int64_t)D * c->N * c->H, c->seed + 4, -0.7f, 0.7f);
	gc_fill(d->c0, (int64_t)D * c->N * c->H, c->seed + 5, -0.7f, 0.7f);
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
	if (pc_graph_add_input(g, "x", &xs, err))
		goto fail;
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
	if (c->cell != LSTM)
		attrs[n_attr++] = (struct pc_attr){.name = "linear_before_reset", .type = PC_ATTR_INT, .i = c->cell == GRU1};
	for (int i = 0; i < c->n_attr; i++)
		attrs[n_attr++] = c->attr[i];
	{
		const char *in[8] = {c->layout ? "x" : "xt", "W", "R", c->no_b ? "" : "B", c->seq ? "seq" : "",
				     c->h0 ? "h0" : "", c->c0 ? "c0" : "", "P"};
		const char *out[3] = {"Y", c->skip_yh ? "" : "Y_h", c->skip_yc ? "" : "Y_c"};
		int n_in = c->with_p ? 8 : lstm ? 7 : 6, n_out = lstm ? 3 : 2;
		if (pc_graph_add_node(g, lstm ? "LSTM" : "GRU", "rnn", n_in, in, n_out, out, n_attr, attrs, err))
			goto fail;
	}
	/* each used output to [N, ...], flattened */
	for (k = 0; k < 3; k++) {
		static const char *const names[] = {"Y", "Y_h", "Y_c"}, *const tr[] = {"Yt", "Y_ht", "Y_ct"};
		static const char *const fl[] = {"Yf", "Y_hf", "Y_cf"};
		struct pc_attr axis = {.name = "axis", .type = PC_ATTR_INT, .i = 1};
		const char *src = names[k];
		if ((k == 0 && c->skip_y) || (k == 1 && c->skip_yh) || (k == 2 && (c->skip_yc || !lstm)))
			continue;
		if (!c->layout) {
			struct pc_attr pa = {.name = "perm", .type = PC_ATTR_INTS, .n = k ? 3 : 4, .ints = k ? perm_s : perm_y};
			if (pc_graph_add_node(g, "Transpose", tr[k], 1, &src, 1, &tr[k], 1, &pa, err))
				goto fail;
			src = tr[k];
		}
		if (pc_graph_add_node(g, "Flatten", fl[k], 1, &src, 1, &fl[k], 1, &axis, err))
			goto fail;
		flat[n_flat++] = fl[k];
	}
	{
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
static void reference(const struct rnn_case *c, const struct rnn_data *d, const float *xin, double *out,
		      int64_t *cols)
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
				int64_t off = c->layout ? ((int64_t)n * D + dir) * H + j : ((int64_t)dir * N + n) * H + j;
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

#define REQUIRE_BUILT(g, c, d, err)                                                                               \
	do {                                                                                                      \
		char msg_[800], what_[128];                                                                       \
		(g) = build((c), (d), &(err));                                                                    \
		if (!(g)) {                                                                                       \
			pc_test_fail(t, __FILE__, __LINE__, "%s: build: %s", describe((c), what_, sizeof(what_)), \
				     pc_error_format(&(err), msg_, sizeof(msg_)));                                \
			return -1;                                                                                \
		}                                                                                                 \
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
			pc_test_fail(t, __FILE__, __LINE__, "%s: plan: %s", what, pc_error_format(&err, msg, sizeof(msg)));
			break;
		}
		gc_fill(pc_plan_input(p), (int64_t)c->N * c->T * c->I, c->seed + 9, -1.0f, 1.0f);
		pc_plan_forward(p);
		reference(c, &d, pc_plan_input(p), ref, &cols);
		CHECK_INT(pc_plan_classes(p), cols);
		got = pc_plan_output(p);
		for (int n = 0; n < c->N && pc_plan_classes(p) == cols; n++)
			for (int64_t j = 0; j < cols; j++) {
				double want = ref[(int64_t)n * REF_ROW + j], v = got[(int64_t)n * cols + j];
				double e = fabs(v - want);
				if (e > worst)
					worst = e;
				if (!(e <= atol + rtol * fabs(want)) && bad++ < 4)
					pc_test_fail(t, __FILE__, __LINE__, "%s: out[%d][%lld] = %.9g, expected %.9g", what, n,
						     (long long)j, v, want);
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
							.seq = seq == 1 ? SEQ_MIXED : seq == 2 ? SEQ_ZERO : NULL,
							/* B omitted in some cases, read in most */
							.no_b = (cell + dir + layout + seq) % 4 == 3,
							.seed = 100u * (uint64_t)(cell * 36 + dir * 12 + layout * 6 + states * 3 + seq),
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
