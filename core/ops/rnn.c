/* ops/rnn: LSTM and GRU, forward and backpropagation through time.
 *
 * ONNX semantics (LSTM gates in the order i, o, f, c; GRU z, r, h), the
 * default activations only (Sigmoid for the gates, Tanh for the candidate
 * and the cell output), no peepholes, no clip, no coupled input gate: what
 * torch.onnx.export writes for nn.LSTM and nn.GRU (GRU with
 * linear_before_reset = 1; 0 is supported too). Directions forward,
 * reverse and bidirectional; layout 0 (X [T, N, I]) and 1 (X [N, T, I]).
 *
 * Rows. Everything per time step and batch entry is a "row", numbered as X
 * numbers them: row(t, n) = t*N + n in layout 0, n*T + t in layout 1. The
 * rows of one time step are then N rows a constant stride apart (1 or T
 * rows), which BLAS takes as a leading dimension, so no layout needs a
 * transposed copy:
 *   - the input projection X W^T + biases of all time steps is ONE sgemm
 *     into the gate buffer [rows, G*H];
 *   - each step adds h_prev R^T over the batch with one sgemm (two for GRU
 *     with linear_before_reset = 0, whose candidate needs r first), then
 *     activates the gates in place in a flat loop;
 *   - backward walks the steps in reverse, turning dh into the gate
 *     gradients dG row by row and returning dh_prev = dG R with one sgemm
 *     per step; dW = dG^T X, dR = dG^T H_prev and dX = dG W are then one
 *     sgemm each over all time steps, because dG and the saved H_prev are
 *     stored in the same row order as X.
 *
 * Saved for backward, per direction: the activated gates [rows, G*H], the
 * hidden state each row starts from [rows, H], and [rows, H] each of the
 * LSTM's c_prev and tanh(C_t), or the GRU's r (.) h_prev (lbr 0) or
 * h_prev R_h^T + Rb_h (lbr 1). A plan that computes gradients keeps them in
 * node state (pc_op_reserve_state), since other nodes reuse the workspace
 * between this forward and this backward; an inference plan keeps them in
 * the shared workspace, where they cost nothing once the node is done.
 *
 * sequence_lens (int32/int64 [N], any values 0..T) masks time steps: a row
 * with t >= len[n] keeps its state unchanged and writes 0 to Y, so Y_h and
 * Y_c hold the state after the last real step (after t = 0 for reverse).
 * Static lengths are checked at prepare; lengths computed at run time are
 * clamped into 0..T, since a forward pass cannot fail. */
#include "../graph_int.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/sgemm.h"

enum { IN_X, IN_W, IN_R, IN_B, IN_SEQ, IN_H0, IN_C0, IN_P };
enum { OUT_Y, OUT_YH, OUT_YC };

/* hidden_size above this is refused: far past any real model, and it keeps
 * every product of dimensions below inside int64 */
#define RNN_HIDDEN_MAX ((int64_t)1 << 20)

struct rnn_attrs {
	int lstm;	/* LSTM (4 gates) or GRU (3) */
	int dirs;	/* 1 or 2 */
	int reverse;	/* direction "reverse" (dirs == 1) */
	int layout;	/* 0 or 1 */
	int lbr;	/* GRU linear_before_reset */
	int64_t hidden; /* hidden_size; 0 when absent (R's shape gives it) */
};

/* --- init: attributes ------------------------------------------------------- */

static int ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return *a == *b;
}

/* activations, when given, must be the defaults (f, g[, h]) per direction;
 * names are compared without case, as runtimes do. */
static int check_activations(const struct pc_node *n, const struct rnn_attrs *a, struct pc_error *err)
{
	static const char *const lstm_acts[] = {"Sigmoid", "Tanh", "Tanh"};
	static const char *const gru_acts[] = {"Sigmoid", "Tanh"};
	const struct pc_attr *at = pc_attr_get(n, "activations");
	const char *const *want = a->lstm ? lstm_acts : gru_acts;
	int per = a->lstm ? 3 : 2;

	if (!at)
		return PC_OK;
	if (at->type != PC_ATTR_STRINGS)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'activations' must be a list of strings");
	if (at->n != per * a->dirs)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'activations' has %d names; %s takes %d", at->n,
				     a->dirs == 2 ? "bidirectional" : "one direction", per * a->dirs);
	for (int i = 0; i < at->n; i++)
		if (!at->strings[i] || !ieq(at->strings[i], want[i % per]))
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					     "attribute 'activations' names '%s' at position %d; only the defaults "
					     "(%s) are supported",
					     at->strings[i] ? at->strings[i] : "", i,
					     a->lstm ? "Sigmoid, Tanh, Tanh" : "Sigmoid, Tanh");
	return PC_OK;
}

static int rnn_parse(struct pc_node *n, struct rnn_attrs *a, struct pc_error *err)
{
	const char *dir;
	int64_t v;
	int rc;

	if ((rc = pc_attr_string(n, "direction", "forward", &dir, err)))
		return rc;
	if (strcmp(dir, "forward") == 0) {
		a->dirs = 1;
	} else if (strcmp(dir, "reverse") == 0) {
		a->dirs = 1;
		a->reverse = 1;
	} else if (strcmp(dir, "bidirectional") == 0) {
		a->dirs = 2;
	} else {
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'direction' is '%s'; must be forward, reverse or bidirectional", dir);
	}
	if ((rc = pc_attr_int(n, "hidden_size", 0, &a->hidden, err)))
		return rc;
	if (pc_attr_get(n, "hidden_size") && (a->hidden < 1 || a->hidden > RNN_HIDDEN_MAX))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "attribute 'hidden_size' is %lld; must be in 1..%lld",
				     (long long)a->hidden, (long long)RNN_HIDDEN_MAX);
	/* layout arrived with opset 14; before it the attribute does not exist */
	if (pc_attr_get(n, "layout") && n->opset < 14)
		return pc_node_error(err, n, PC_ERR_FORMAT,
				     "attribute 'layout' exists from opset 14; the model is opset %d", n->opset);
	if ((rc = pc_attr_int(n, "layout", 0, &v, err)))
		return rc;
	if (v != 0 && v != 1)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "attribute 'layout' is %lld; must be 0 or 1",
				     (long long)v);
	a->layout = (int)v;
	if ((rc = check_activations(n, a, err)))
		return rc;
	/* alpha and beta only parameterise activations other than the defaults */
	if (pc_attr_get(n, "activation_alpha"))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'activation_alpha' is not supported: only the default activations, "
				     "which take no parameters");
	if (pc_attr_get(n, "activation_beta"))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'activation_beta' is not supported: only the default activations, "
				     "which take no parameters");
	if (pc_attr_get(n, "clip"))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'clip' (cell clipping) is not supported; export without it");
	if (a->lstm) {
		if ((rc = pc_attr_int(n, "input_forget", 0, &v, err)))
			return rc;
		if (v != 0)
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					     "attribute 'input_forget' is %lld; coupled input and forget gates are "
					     "not supported (only 0)",
					     (long long)v);
		if (n->n_in > IN_P && n->in[IN_P] >= 0)
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					     "input 7 (P, peephole weights) is not supported; export without "
					     "peepholes");
	} else {
		if ((rc = pc_attr_int(n, "linear_before_reset", 0, &v, err)))
			return rc;
		if (v != 0 && v != 1)
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					     "attribute 'linear_before_reset' is %lld; must be 0 or 1", (long long)v);
		a->lbr = (int)v;
	}
	return PC_OK;
}

static int rnn_init(struct pc_node *n, int lstm, struct pc_error *err)
{
	struct rnn_attrs *a = calloc(1, sizeof(*a));
	int rc;

	if (!a)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	a->lstm = lstm;
	rc = rnn_parse(n, a, err);
	if (rc) {
		free(a);
		return rc;
	}
	free(n->priv);
	n->priv = a;
	return PC_OK;
}

int pc_lstm_init(struct pc_node *n, struct pc_error *err)
{
	return rnn_init(n, 1, err);
}

int pc_gru_init(struct pc_node *n, struct pc_error *err)
{
	return rnn_init(n, 0, err);
}

/* --- dimensions --------------------------------------------------------------- */

struct rnn_dims {
	int T, N, I, H, D, G, GH;
	int ts, rs;	       /* row step per time step, per batch entry */
	int rows;	       /* T * N */
	size_t gate_f, hid_f;  /* rows * GH, rows * H */
	size_t dir_f;	       /* saved floats per direction */
	size_t fwd_ws, bwd_ws; /* scratch floats */
};

/* a * b into *out unless it passes PC_MAX_NUMEL (both non-negative) */
static int mul_ok(int64_t a, int64_t b, int64_t *out)
{
	if (a != 0 && b > PC_MAX_NUMEL / a)
		return 0;
	*out = a * b;
	return 1;
}

static int fits_int(int64_t v)
{
	return v >= 0 && v <= INT_MAX;
}

/* Input i must be a float tensor of exactly `want`. */
static int need_shape(struct pc_plan *p, const struct pc_node *n, int i, const char *what, const struct pc_shape *want,
		      struct pc_error *err)
{
	const struct pc_tensor *t = pc_op_in(p, n, i);
	char a[96], b[96];

	if (t->dtype != PC_DTYPE_FLOAT)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d (%s) is %s; it must be float", i, what,
				     pc_dtype_name(t->dtype));
	if (!pc_shape_equal(&t->shape, want))
		return pc_node_error(err, n, PC_ERR_SHAPE, "input %d (%s) has shape %s; expected %s", i, what,
				     pc_shape_format(&t->shape, a, sizeof(a)), pc_shape_format(want, b, sizeof(b)));
	return PC_OK;
}

static struct pc_shape shape3(int64_t a, int64_t b, int64_t c)
{
	struct pc_shape s = {.ndim = 3, .dim = {a, b, c}};

	return s;
}

/* Checks every input against X, W and R and fills d; err may be NULL
 * (forward and backward re-derive what infer proved). */
static int rnn_dims(struct pc_plan *p, const struct pc_node *n, struct rnn_dims *d, struct pc_error *err)
{
	const struct rnn_attrs *a = n->priv;
	const struct pc_tensor *x = pc_op_in(p, n, IN_X), *r = pc_op_in(p, n, IN_R);
	const struct pc_tensor *seq = pc_op_in(p, n, IN_SEQ);
	int64_t T, N, I, H, G = a->lstm ? 4 : 3, D = a->dirs, gh, rows, gate_f, hid_f, dir_f, tgh, v;
	struct pc_shape want;
	char sx[96];
	int rc;

	if (x->dtype != PC_DTYPE_FLOAT || x->shape.ndim != 3)
		return pc_node_error(err, n, PC_ERR_SHAPE, "input 0 (X) is %s %s; it must be a 3-D float tensor",
				     pc_dtype_name(x->dtype), pc_shape_format(&x->shape, sx, sizeof(sx)));
	T = x->shape.dim[a->layout ? 1 : 0];
	N = x->shape.dim[a->layout ? 0 : 1];
	I = x->shape.dim[2];
	if (T < 1 || N < 1 || I < 1)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input 0 (X) has shape %s; sequence length, batch and input size must be "
				     "at least 1",
				     pc_shape_format(&x->shape, sx, sizeof(sx)));
	if (r->dtype != PC_DTYPE_FLOAT || r->shape.ndim != 3)
		return pc_node_error(err, n, PC_ERR_SHAPE, "input 2 (R) is %s %s; it must be a 3-D float tensor",
				     pc_dtype_name(r->dtype), pc_shape_format(&r->shape, sx, sizeof(sx)));
	H = a->hidden ? a->hidden : r->shape.dim[2];
	if (H < 1 || H > RNN_HIDDEN_MAX)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "hidden size %lld (R's last dimension) is outside 1..%lld", (long long)H,
				     (long long)RNN_HIDDEN_MAX);
	gh = G * H;
	want = shape3(D, gh, H);
	if ((rc = need_shape(p, n, IN_R, "R", &want, err)))
		return rc;
	want = shape3(D, gh, I);
	if ((rc = need_shape(p, n, IN_W, "W", &want, err)))
		return rc;
	if (pc_op_in(p, n, IN_B)) {
		want = (struct pc_shape){.ndim = 2, .dim = {D, 2 * gh}};
		if ((rc = need_shape(p, n, IN_B, "B", &want, err)))
			return rc;
	}
	want = a->layout ? shape3(N, D, H) : shape3(D, N, H);
	if (pc_op_in(p, n, IN_H0) && (rc = need_shape(p, n, IN_H0, "initial_h", &want, err)))
		return rc;
	if (a->lstm && pc_op_in(p, n, IN_C0) && (rc = need_shape(p, n, IN_C0, "initial_c", &want, err)))
		return rc;
	if (seq) {
		if (seq->dtype != PC_DTYPE_INT64 || seq->shape.ndim != 1 || seq->shape.dim[0] != N)
			return pc_node_error(err, n, PC_ERR_SHAPE,
					     "input 4 (sequence_lens) is %s %s; it must be an integer tensor of "
					     "shape [%lld]",
					     pc_dtype_name(seq->dtype), pc_shape_format(&seq->shape, sx, sizeof(sx)),
					     (long long)N);
		if (seq->is_static)
			for (int64_t i = 0; i < N; i++)
				if (seq->ival[i] < 0 || seq->ival[i] > T)
					return pc_node_error(err, n, PC_ERR_FORMAT,
							     "sequence_lens[%lld] is %lld; lengths must be in "
							     "0..%lld (the sequence length of X)",
							     (long long)i, (long long)seq->ival[i], (long long)T);
	}
	/* BLAS takes int dimensions and strides; the layout-1 step stride is T*G*H */
	if (!mul_ok(T, N, &rows) || !fits_int(rows) || !fits_int(I) || !mul_ok(T, gh, &tgh) || !fits_int(tgh))
		return pc_node_error(err, n, PC_ERR_LIMIT,
				     "sequence %lld x batch %lld x %lld gates exceed the BLAS range", (long long)T,
				     (long long)N, (long long)gh);
	if (!mul_ok(rows, gh, &gate_f) || !mul_ok(rows, H, &hid_f) || !mul_ok(hid_f, a->lstm ? 3 : 2, &v) ||
	    gate_f > PC_MAX_NUMEL - v || !mul_ok(gate_f + v, D, &dir_f))
		return pc_node_error(err, n, PC_ERR_LIMIT, "the saved gates of %lld steps x %lld rows are too large",
				     (long long)T, (long long)N);
	d->T = (int)T;
	d->N = (int)N;
	d->I = (int)I;
	d->H = (int)H;
	d->D = (int)D;
	d->G = (int)G;
	d->GH = (int)gh;
	d->ts = a->layout ? 1 : (int)N;
	d->rs = a->layout ? (int)T : 1;
	d->rows = (int)rows;
	d->gate_f = (size_t)gate_f;
	d->hid_f = (size_t)hid_f;
	d->dir_f = (size_t)(gate_f + v);
	/* forward: the last step's h and c; GRU lbr 1: h_prev R^T of a step */
	d->fwd_ws = (size_t)(2 * N * H + (a->lbr ? N * gh : 0));
	/* backward: dG, the GRU's dlin, dh, dc, a step's d(r h_prev), column sums */
	d->bwd_ws = d->gate_f + d->hid_f + (size_t)(3 * N * H + 2 * gh);
	return PC_OK;
}

static int rnn_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct rnn_attrs *a = n->priv;
	struct rnn_dims d;
	struct pc_shape y, yh;
	size_t saved;
	int rc;

	if ((rc = rnn_dims(p, n, &d, err)))
		return rc;
	if (a->layout)
		y = (struct pc_shape){.ndim = 4, .dim = {d.N, d.T, d.D, d.H}};
	else
		y = (struct pc_shape){.ndim = 4, .dim = {d.T, d.D, d.N, d.H}};
	yh = a->layout ? shape3(d.N, d.D, d.H) : shape3(d.D, d.N, d.H);
	if ((rc = pc_op_set_output(p, n, OUT_Y, PC_DTYPE_FLOAT, &y, err)) ||
	    (rc = pc_op_set_output(p, n, OUT_YH, PC_DTYPE_FLOAT, &yh, err)) ||
	    (a->lstm && (rc = pc_op_set_output(p, n, OUT_YC, PC_DTYPE_FLOAT, &yh, err))))
		return rc;
	saved = d.dir_f * (size_t)d.D;
	if (p->flags & (PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD)) {
		pc_op_reserve_state(p, n, saved);
		pc_op_reserve_ws(p, d.fwd_ws > d.bwd_ws ? d.fwd_ws : d.bwd_ws);
	} else {
		pc_op_reserve_ws(p, saved + d.fwd_ws);
	}
	return PC_OK;
}

int pc_lstm_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return rnn_infer(p, n, err);
}

int pc_gru_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	return rnn_infer(p, n, err);
}

/* --- shared by forward and backward ----------------------------------------- */

/* One direction's view of the node's tensors. */
struct rnn_run {
	struct rnn_dims d;
	int lstm, dir, reverse, layout, lbr;
	const float *x, *w, *r, *b; /* w, r, b: this direction's slices; b may be NULL */
	const float *h0, *c0;	    /* may be NULL (zeros) */
	const int64_t *seq;	    /* may be NULL (all T) */
	/* saved per direction (see the top of the file) */
	float *gate, *hp, *aux, *tc;
};

static int rnn_setup(struct pc_plan *p, const struct pc_node *n, struct rnn_run *run, float **scratch)
{
	const struct rnn_attrs *a = n->priv;
	const struct pc_tensor *h0 = pc_op_in(p, n, IN_H0), *c0 = a->lstm ? pc_op_in(p, n, IN_C0) : NULL;
	const struct pc_tensor *b = pc_op_in(p, n, IN_B), *seq = pc_op_in(p, n, IN_SEQ);
	float *state = pc_op_state(p, n);

	memset(run, 0, sizeof(*run));
	if (rnn_dims(p, n, &run->d, NULL))
		return -1;
	run->lstm = a->lstm;
	run->layout = a->layout;
	run->lbr = a->lbr;
	run->x = pc_op_in(p, n, IN_X)->data;
	run->w = pc_op_in(p, n, IN_W)->data;
	run->r = pc_op_in(p, n, IN_R)->data;
	run->b = b ? b->data : NULL;
	run->h0 = h0 ? h0->data : NULL;
	run->c0 = c0 ? c0->data : NULL;
	run->seq = seq ? seq->ival : NULL;
	/* the saved buffers come first in the workspace of an inference plan */
	if (state) {
		run->gate = state;
		*scratch = pc_op_ws(p);
	} else {
		run->gate = pc_op_ws(p);
		*scratch = run->gate + run->d.dir_f * (size_t)run->d.D;
	}
	return 0;
}

/* Point run at direction dir's weights and saved buffers. */
static void rnn_direction(struct rnn_run *run, const struct rnn_attrs *a, float *saved0, int dir)
{
	const struct rnn_dims *d = &run->d;
	float *base = saved0 + d->dir_f * (size_t)dir;

	if (dir != run->dir) {
		run->w += (int64_t)(dir - run->dir) * d->GH * d->I;
		run->r += (int64_t)(dir - run->dir) * d->GH * d->H;
		if (run->b)
			run->b += (int64_t)(dir - run->dir) * 2 * d->GH;
	}
	run->dir = dir;
	run->reverse = a->reverse || dir == 1;
	run->gate = base;
	run->hp = base + d->gate_f;
	run->aux = run->hp + d->hid_f;
	run->tc = a->lstm ? run->aux + d->hid_f : NULL;
}

static int64_t row_of(const struct rnn_dims *d, int t, int n)
{
	return (int64_t)t * d->ts + (int64_t)n * d->rs;
}

/* Offset of Y[t, dir, n, :] (layout 0) or Y[n, t, dir, :] (layout 1). */
static int64_t y_off(const struct rnn_run *run, int t, int n)
{
	const struct rnn_dims *d = &run->d;

	if (run->layout)
		return (((int64_t)n * d->T + t) * d->D + run->dir) * d->H;
	return (((int64_t)t * d->D + run->dir) * d->N + n) * d->H;
}

/* Offset of a state tensor's [dir, n, :] (layout 0) or [n, dir, :] (layout 1). */
static int64_t s_off(const struct rnn_run *run, int n)
{
	const struct rnn_dims *d = &run->d;

	if (run->layout)
		return ((int64_t)n * d->D + run->dir) * d->H;
	return ((int64_t)run->dir * d->N + n) * d->H;
}

static int seq_len(const struct rnn_run *run, int n)
{
	int64_t l;

	if (!run->seq)
		return run->d.T;
	l = run->seq[n];
	return l < 0 ? 0 : l > run->d.T ? run->d.T : (int)l;
}

static int time_of(const struct rnn_run *run, int s)
{
	return run->reverse ? run->d.T - 1 - s : s;
}

/* The logistic function through e^-|v| only: no overflow either way, and
 * e / (1 + e) keeps its relative precision far into the negative side. */
static inline float sigm(float v)
{
	float a = v < 0.0f ? -v : v, e = pc_exp_nonpos(-a), q = 1.0f / (1.0f + e);

	return v >= 0.0f ? q : e * q;
}

/* tanh, branch-free: an odd polynomial below |v| = 0.625, where
 * (1 - e) / (1 + e) would cancel (the minimax coefficients of the Cephes
 * library's tanhf, within 2 ulp there), and (1 - e) / (1 + e) with
 * e = e^-2|v| above, where it loses nothing; the sign put back. */
static inline float tanh_f(float v)
{
	float a = v < 0.0f ? -v : v, z = v * v, e = pc_exp_nonpos(-2.0f * a), big, small;

	small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
		 3.33332819422e-1f) *
			z * v +
		v;
	big = (1.0f - e) / (1.0f + e);
	big = v < 0.0f ? -big : big;
	return a < 0.625f ? small : big;
}

/* Gate rows start as the biases (input and recurrent summed where the
 * equations add them), then one sgemm adds X W^T for every time step. */
static void input_projection(const struct rnn_run *run, int split_h)
{
	const struct rnn_dims *d = &run->d;
	int gh = d->GH, h = d->H;

	if (run->b) {
		for (int64_t row = 0; row < d->rows; row++) {
			float *g = run->gate + row * gh;
			for (int j = 0; j < gh; j++)
				g[j] = run->b[j] + (split_h && j >= 2 * h ? 0.0f : run->b[gh + j]);
		}
	}
	pc_sgemm(0, 1, d->rows, gh, d->I, 1.0f, run->x, d->I, run->w, d->I, run->b ? 1.0f : 0.0f, run->gate, gh);
}

/* Before the first step: each row's h_prev (and c_prev) is the initial state. */
static void initial_state(const struct rnn_run *run)
{
	const struct rnn_dims *d = &run->d;
	int t0 = time_of(run, 0);

	for (int n = 0; n < d->N; n++) {
		float *h = run->hp + row_of(d, t0, n) * d->H;
		if (run->h0)
			memcpy(h, run->h0 + s_off(run, n), (size_t)d->H * sizeof(float));
		else
			memset(h, 0, (size_t)d->H * sizeof(float));
		if (run->lstm) {
			float *c = run->aux + row_of(d, t0, n) * d->H;
			if (run->c0)
				memcpy(c, run->c0 + s_off(run, n), (size_t)d->H * sizeof(float));
			else
				memset(c, 0, (size_t)d->H * sizeof(float));
		}
	}
}

/* Where row (t, n)'s new state goes: the next step's h_prev (c_prev), or
 * the scratch rows after the last step. */
static float *next_h(const struct rnn_run *run, int s, int n, float *last)
{
	const struct rnn_dims *d = &run->d;

	if (s == d->T - 1)
		return last + (int64_t)n * d->H;
	return run->hp + row_of(d, time_of(run, s + 1), n) * d->H;
}

static float *next_c(const struct rnn_run *run, int s, int n, float *last)
{
	const struct rnn_dims *d = &run->d;

	if (s == d->T - 1)
		return last + (int64_t)n * d->H;
	return run->aux + row_of(d, time_of(run, s + 1), n) * d->H;
}

static void write_y(const struct rnn_run *run, float *y, int t, int n, const float *h, int active)
{
	if (!y)
		return;
	if (active)
		memcpy(y + y_off(run, t, n), h, (size_t)run->d.H * sizeof(float));
	else
		memset(y + y_off(run, t, n), 0, (size_t)run->d.H * sizeof(float));
}

static void write_state(const struct rnn_run *run, float *out, const float *last)
{
	if (!out)
		return;
	for (int n = 0; n < run->d.N; n++)
		memcpy(out + s_off(run, n), last + (int64_t)n * run->d.H, (size_t)run->d.H * sizeof(float));
}

/* out[n] = in[n] for the batch rows of one state tensor slice: used for
 * the gradients of Y_h / Y_c (gather) and initial_h / initial_c (add). */
static void gather_state(const struct rnn_run *run, float *dst, const float *src)
{
	for (int n = 0; n < run->d.N; n++) {
		if (src)
			memcpy(dst + (int64_t)n * run->d.H, src + s_off(run, n), (size_t)run->d.H * sizeof(float));
		else
			memset(dst + (int64_t)n * run->d.H, 0, (size_t)run->d.H * sizeof(float));
	}
}

static void add_state(const struct rnn_run *run, float *dst, const float *src)
{
	if (!dst)
		return;
	for (int n = 0; n < run->d.N; n++) {
		float *o = dst + s_off(run, n);
		const float *g = src + (int64_t)n * run->d.H;
		for (int j = 0; j < run->d.H; j++)
			o[j] += g[j];
	}
}

/* --- LSTM ------------------------------------------------------------------------ */

/* One row of one step: g holds the pre-activations (i, o, f, c) and
 * receives the gate values; writes h and C of the step and tanh(C). */
PC_HOT static void lstm_cell(float *restrict g, const float *restrict cprev, float *restrict tc, float *restrict h,
		      float *restrict c, int H)
{
	for (int j = 0; j < H; j++) {
		float i = sigm(g[j]), o = sigm(g[H + j]), f = sigm(g[2 * H + j]), cc = tanh_f(g[3 * H + j]);
		float cn = f * cprev[j] + i * cc, t = tanh_f(cn);
		g[j] = i;
		g[H + j] = o;
		g[2 * H + j] = f;
		g[3 * H + j] = cc;
		tc[j] = t;
		c[j] = cn;
		h[j] = o * t;
	}
}

static void lstm_forward_dir(const struct rnn_run *run, float *y, float *yh, float *yc, float *scratch)
{
	const struct rnn_dims *d = &run->d;
	int H = d->H, gh = d->GH;
	float *last_h = scratch, *last_c = scratch + (size_t)d->N * H;

	input_projection(run, 0);
	initial_state(run);
	for (int s = 0; s < d->T; s++) {
		int t = time_of(run, s);
		int64_t r0 = row_of(d, t, 0);
		pc_sgemm(0, 1, d->N, gh, H, 1.0f, run->hp + r0 * H, d->rs * H, run->r, H, 1.0f, run->gate + r0 * gh,
			 d->rs * gh);
		for (int n = 0; n < d->N; n++) {
			int64_t row = row_of(d, t, n);
			float *hprev = run->hp + row * H, *cprev = run->aux + row * H;
			float *h = next_h(run, s, n, last_h), *c = next_c(run, s, n, last_c);
			int active = t < seq_len(run, n);
			lstm_cell(run->gate + row * gh, cprev, run->tc + row * H, h, c, H);
			if (!active) {
				/* a padded step leaves the state as it was */
				memcpy(h, hprev, (size_t)H * sizeof(float));
				memcpy(c, cprev, (size_t)H * sizeof(float));
			}
			write_y(run, y, t, n, h, active);
		}
	}
	write_state(run, yh, last_h);
	write_state(run, yc, last_c);
}

/* One row of one step backward: from dh and dc (after the step) to the
 * pre-activation gradients dg; leaves dc_prev in dc and zeroes dh, which
 * the step's sgemm then fills with dh_prev. */
PC_HOT static void lstm_cell_back(const float *restrict g, const float *restrict cprev, const float *restrict tc,
				  float *restrict dh, float *restrict dc, float *restrict dg, int H)
{
	for (int j = 0; j < H; j++) {
		float i = g[j], o = g[H + j], f = g[2 * H + j], cc = g[3 * H + j], t = tc[j];
		float dC = dc[j] + dh[j] * o * (1.0f - t * t);
		dg[j] = dC * cc * i * (1.0f - i);
		dg[H + j] = dh[j] * t * o * (1.0f - o);
		dg[2 * H + j] = dC * cprev[j] * f * (1.0f - f);
		dg[3 * H + j] = dC * i * (1.0f - cc * cc);
		dc[j] = dC * f;
		dh[j] = 0.0f;
	}
}

/* --- GRU -------------------------------------------------------------------------- */

/* linear_before_reset = 1: rec holds h_prev R^T of the row (z, r, h parts);
 * rbh is Rb_h or NULL. Saves lin = h_prev R_h^T + Rb_h in aux. */
PC_HOT static void gru_cell_lbr(float *restrict g, const float *restrict rec, const float *restrict rbh,
			 const float *restrict hprev, float *restrict lin, float *restrict h, int H)
{
	for (int j = 0; j < H; j++) {
		float z = sigm(g[j] + rec[j]), r = sigm(g[H + j] + rec[H + j]);
		float l = rec[2 * H + j] + (rbh ? rbh[j] : 0.0f), c = tanh_f(g[2 * H + j] + r * l);
		g[j] = z;
		g[H + j] = r;
		g[2 * H + j] = c;
		lin[j] = l;
		h[j] = (1.0f - z) * c + z * hprev[j];
	}
}

static void gru_forward_dir(const struct rnn_run *run, float *y, float *yh, float *scratch)
{
	const struct rnn_dims *d = &run->d;
	int H = d->H, gh = d->GH;
	float *last_h = scratch, *rec = scratch + 2 * (size_t)d->N * H;
	const float *rbh = run->b ? run->b + gh + 2 * H : NULL;

	input_projection(run, run->lbr);
	initial_state(run);
	for (int s = 0; s < d->T; s++) {
		int t = time_of(run, s);
		int64_t r0 = row_of(d, t, 0);
		const float *hp0 = run->hp + r0 * H;
		float *g0 = run->gate + r0 * gh;
		if (run->lbr) {
			pc_sgemm(0, 1, d->N, gh, H, 1.0f, hp0, d->rs * H, run->r, H, 0.0f, rec, gh);
		} else {
			/* z and r first: the candidate's recurrent input is (r (.) h_prev) R_h^T */
			pc_sgemm(0, 1, d->N, 2 * H, H, 1.0f, hp0, d->rs * H, run->r, H, 1.0f, g0, d->rs * gh);
			for (int n = 0; n < d->N; n++) {
				int64_t row = row_of(d, t, n);
				float *g = run->gate + row * gh, *rh = run->aux + row * H;
				const float *hprev = run->hp + row * H;
				for (int j = 0; j < 2 * H; j++)
					g[j] = sigm(g[j]);
				for (int j = 0; j < H; j++)
					rh[j] = g[H + j] * hprev[j];
			}
			pc_sgemm(0, 1, d->N, H, H, 1.0f, run->aux + r0 * H, d->rs * H, run->r + (int64_t)2 * H * H, H,
				 1.0f, g0 + 2 * H, d->rs * gh);
		}
		for (int n = 0; n < d->N; n++) {
			int64_t row = row_of(d, t, n);
			float *g = run->gate + row * gh, *h = next_h(run, s, n, last_h);
			const float *hprev = run->hp + row * H;
			int active = t < seq_len(run, n);
			if (run->lbr) {
				gru_cell_lbr(g, rec + (int64_t)n * gh, rbh, hprev, run->aux + row * H, h, H);
			} else {
				for (int j = 0; j < H; j++) {
					float z = g[j], c = tanh_f(g[2 * H + j]);
					g[2 * H + j] = c;
					h[j] = (1.0f - z) * c + z * hprev[j];
				}
			}
			if (!active)
				memcpy(h, hprev, (size_t)H * sizeof(float));
			write_y(run, y, t, n, h, active);
		}
	}
	write_state(run, yh, last_h);
}

/* First half of a GRU row backward: dz and dn from dh; with lbr also dr and
 * dlin (lin is saved). Leaves dh = dh (.) z, the direct path to h_prev. */
PC_HOT static void gru_cell_back(const float *restrict g, const float *restrict hprev, const float *restrict lin,
				 float *restrict dh, float *restrict dg, float *restrict dl, int H)
{
	for (int j = 0; j < H; j++) {
		float z = g[j], c = g[2 * H + j], dn = dh[j] * (1.0f - z) * (1.0f - c * c);
		dg[j] = dh[j] * (hprev[j] - c) * z * (1.0f - z);
		dg[2 * H + j] = dn;
		if (lin) {
			float r = g[H + j];
			dg[H + j] = dn * lin[j] * r * (1.0f - r);
			dl[j] = dn * r;
		}
		dh[j] *= z;
	}
}

/* --- forward ------------------------------------------------------------------------ */

static void rnn_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct rnn_attrs *a = n->priv;
	struct pc_tensor *ty = pc_op_out(p, n, OUT_Y), *tyh = pc_op_out(p, n, OUT_YH);
	struct pc_tensor *tyc = a->lstm ? pc_op_out(p, n, OUT_YC) : NULL;
	struct rnn_run run;
	float *scratch, *saved0;

	if (rnn_setup(p, n, &run, &scratch))
		return;
	saved0 = run.gate;
	for (int dir = 0; dir < run.d.D; dir++) {
		rnn_direction(&run, a, saved0, dir);
		if (a->lstm)
			lstm_forward_dir(&run, ty ? ty->data : NULL, tyh ? tyh->data : NULL, tyc ? tyc->data : NULL,
					 scratch);
		else
			gru_forward_dir(&run, ty ? ty->data : NULL, tyh ? tyh->data : NULL, scratch);
	}
}

void pc_lstm_forward(struct pc_plan *p, const struct pc_node *n)
{
	rnn_forward(p, n);
}

void pc_gru_forward(struct pc_plan *p, const struct pc_node *n)
{
	rnn_forward(p, n);
}

/* --- backward ----------------------------------------------------------------------- */

struct rnn_grads {
	const float *dy, *dyh, *dyc; /* output gradients, NULL when none flows */
	float *dx, *dw, *dr, *db, *dh0, *dc0;
};

static float *grad_of(struct pc_tensor *t)
{
	return t ? t->grad : NULL;
}

/* dW, dR, dX and dB of one direction from its dG (rows in X's order). */
static void weight_grads(const struct rnn_run *run, const struct rnn_grads *gr, const float *dg, const float *dl,
			 float *colsum)
{
	const struct rnn_dims *d = &run->d;
	int H = d->H, gh = d->GH, rows = d->rows;
	int64_t dir = run->dir;

	if (gr->dw)
		pc_sgemm(1, 0, gh, d->I, rows, 1.0f, dg, gh, run->x, d->I, 1.0f, gr->dw + dir * gh * d->I, d->I);
	if (gr->dx)
		pc_sgemm(0, 0, rows, d->I, gh, 1.0f, dg, gh, run->w, d->I, 1.0f, gr->dx, d->I);
	if (gr->dr) {
		float *dr = gr->dr + dir * gh * H;
		if (!run->lstm && run->lbr) {
			/* GRU lbr 1: R_h's gradient is dlin^T h_prev */
			pc_sgemm(1, 0, 2 * H, H, rows, 1.0f, dg, gh, run->hp, H, 1.0f, dr, H);
			pc_sgemm(1, 0, H, H, rows, 1.0f, dl, H, run->hp, H, 1.0f, dr + (int64_t)2 * H * H, H);
		} else if (!run->lstm) {
			/* GRU lbr 0: R_h multiplies r (.) h_prev */
			pc_sgemm(1, 0, 2 * H, H, rows, 1.0f, dg, gh, run->hp, H, 1.0f, dr, H);
			pc_sgemm(1, 0, H, H, rows, 1.0f, dg + 2 * H, gh, run->aux, H, 1.0f, dr + (int64_t)2 * H * H, H);
		} else {
			pc_sgemm(1, 0, gh, H, rows, 1.0f, dg, gh, run->hp, H, 1.0f, dr, H);
		}
	}
	if (gr->db) {
		float *db = gr->db + dir * 2 * gh;
		float *sl = colsum + gh;
		memset(colsum, 0, 2 * (size_t)gh * sizeof(float));
		for (int64_t row = 0; row < rows; row++) {
			const float *g = dg + row * gh;
			for (int j = 0; j < gh; j++)
				colsum[j] += g[j];
			if (dl) {
				const float *l = dl + row * H;
				for (int j = 0; j < H; j++)
					sl[j] += l[j];
			}
		}
		for (int j = 0; j < gh; j++) {
			db[j] += colsum[j];
			/* Rb_h sits inside the reset product when lbr = 1 */
			db[gh + j] += dl && j >= 2 * H ? sl[j - 2 * H] : colsum[j];
		}
	}
}

static void lstm_backward_dir(const struct rnn_run *run, const struct rnn_grads *gr, float *ws)
{
	const struct rnn_dims *d = &run->d;
	int H = d->H, gh = d->GH;
	float *dg = ws, *dh = dg + d->gate_f, *dc = dh + (size_t)d->N * H, *colsum = dc + (size_t)d->N * H;

	gather_state(run, dh, gr->dyh);
	gather_state(run, dc, gr->dyc);
	for (int s = d->T - 1; s >= 0; s--) {
		int t = time_of(run, s);
		int64_t r0 = row_of(d, t, 0);
		for (int n = 0; n < d->N; n++) {
			int64_t row = row_of(d, t, n);
			float *dhn = dh + (int64_t)n * H;
			if (t >= seq_len(run, n)) {
				/* padding: the state passed through unchanged and Y was 0 */
				memset(dg + row * gh, 0, (size_t)gh * sizeof(float));
				continue;
			}
			if (gr->dy) {
				const float *g = gr->dy + y_off(run, t, n);
				for (int j = 0; j < H; j++)
					dhn[j] += g[j];
			}
			lstm_cell_back(run->gate + row * gh, run->aux + row * H, run->tc + row * H, dhn,
				       dc + (int64_t)n * H, dg + row * gh, H);
		}
		pc_sgemm(0, 0, d->N, H, gh, 1.0f, dg + r0 * gh, d->rs * gh, run->r, H, 1.0f, dh, H);
	}
	add_state(run, gr->dh0, dh);
	add_state(run, gr->dc0, dc);
	weight_grads(run, gr, dg, NULL, colsum);
}

static void gru_backward_dir(const struct rnn_run *run, const struct rnn_grads *gr, float *ws)
{
	const struct rnn_dims *d = &run->d;
	int H = d->H, gh = d->GH;
	float *dg = ws, *dl = dg + d->gate_f, *dh = dl + d->hid_f, *tmp = dh + (size_t)d->N * H;
	float *colsum = tmp + 2 * (size_t)d->N * H;

	gather_state(run, dh, gr->dyh);
	for (int s = d->T - 1; s >= 0; s--) {
		int t = time_of(run, s);
		int64_t r0 = row_of(d, t, 0);
		for (int n = 0; n < d->N; n++) {
			int64_t row = row_of(d, t, n);
			float *dhn = dh + (int64_t)n * H;
			if (t >= seq_len(run, n)) {
				memset(dg + row * gh, 0, (size_t)gh * sizeof(float));
				memset(dl + row * H, 0, (size_t)H * sizeof(float));
				continue;
			}
			if (gr->dy) {
				const float *g = gr->dy + y_off(run, t, n);
				for (int j = 0; j < H; j++)
					dhn[j] += g[j];
			}
			gru_cell_back(run->gate + row * gh, run->hp + row * H, run->lbr ? run->aux + row * H : NULL,
				      dhn, dg + row * gh, dl + row * H, H);
		}
		if (run->lbr) {
			pc_sgemm(0, 0, d->N, H, H, 1.0f, dl + r0 * H, d->rs * H, run->r + (int64_t)2 * H * H, H, 1.0f,
				 dh, H);
		} else {
			/* d(r (.) h_prev) = dn R_h, then dr and the reset path to h_prev */
			pc_sgemm(0, 0, d->N, H, H, 1.0f, dg + r0 * gh + 2 * H, d->rs * gh, run->r + (int64_t)2 * H * H,
				 H, 0.0f, tmp, H);
			for (int n = 0; n < d->N; n++) {
				int64_t row = row_of(d, t, n);
				float *g = dg + row * gh, *dhn = dh + (int64_t)n * H;
				const float *gv = run->gate + row * gh, *hprev = run->hp + row * H,
					    *drh = tmp + (int64_t)n * H;
				if (t >= seq_len(run, n))
					continue;
				for (int j = 0; j < H; j++) {
					float r = gv[H + j];
					g[H + j] = drh[j] * hprev[j] * r * (1.0f - r);
					dhn[j] += drh[j] * r;
				}
			}
		}
		pc_sgemm(0, 0, d->N, H, 2 * H, 1.0f, dg + r0 * gh, d->rs * gh, run->r, H, 1.0f, dh, H);
	}
	add_state(run, gr->dh0, dh);
	weight_grads(run, gr, dg, run->lbr ? dl : NULL, colsum);
}

static void rnn_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct rnn_attrs *a = n->priv;
	struct pc_tensor *ty = pc_op_out(p, n, OUT_Y), *tyh = pc_op_out(p, n, OUT_YH);
	struct pc_tensor *tyc = a->lstm ? pc_op_out(p, n, OUT_YC) : NULL;
	struct rnn_grads gr = {
	    .dy = grad_of(ty),
	    .dyh = grad_of(tyh),
	    .dyc = grad_of(tyc),
	    .dx = grad_of(pc_op_in(p, n, IN_X)),
	    .dw = grad_of(pc_op_in(p, n, IN_W)),
	    .dr = grad_of(pc_op_in(p, n, IN_R)),
	    .db = grad_of(pc_op_in(p, n, IN_B)),
	    .dh0 = grad_of(pc_op_in(p, n, IN_H0)),
	    .dc0 = a->lstm ? grad_of(pc_op_in(p, n, IN_C0)) : NULL,
	};
	struct rnn_run run;
	float *ws, *saved0;

	/* the saved activations exist only in node state (gradient plans) */
	if (!pc_op_state(p, n) || rnn_setup(p, n, &run, &ws))
		return;
	saved0 = run.gate;
	for (int dir = 0; dir < run.d.D; dir++) {
		rnn_direction(&run, a, saved0, dir);
		if (a->lstm)
			lstm_backward_dir(&run, &gr, ws);
		else
			gru_backward_dir(&run, &gr, ws);
	}
}

void pc_lstm_backward(struct pc_plan *p, const struct pc_node *n)
{
	rnn_backward(p, n);
}

void pc_gru_backward(struct pc_plan *p, const struct pc_node *n)
{
	rnn_backward(p, n);
}
