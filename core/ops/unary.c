/* ops/unary: elementwise math: Abs, Neg, Reciprocal, Sqrt, Exp, Log, Erf,
 * HardSwish and HardSigmoid, and Pow with numpy broadcasting.
 *
 * The one-input ops share one implementation dispatching on the node's op,
 * each a flat loop over the tensor (the op chosen outside the loop). Their
 * numerics follow PyTorch's float32 CPU kernels, which is what the models
 * were trained and checked with: the same formula in the same order (e.g.
 * HardSwish is x * clamp(x + 3, 0, 6) / 6, not x * (x/6 + 1/2)), libm for
 * the transcendental functions, and torch's derivatives, including what it
 * does at kinks and outside the domain:
 *   Abs        dx = g * sign(x), 0 at 0
 *   Neg        dx = -g
 *   Reciprocal dx = -g * y^2
 *   Sqrt       dx = g / (2y): inf at 0; Sqrt(-1) = NaN
 *   Exp        dx = g * y
 *   Log        dx = g / x: Log(0) = -inf with gradient inf
 *   Erf        dx = 2/sqrt(pi) * exp(-x^2) * g
 *   HardSwish  dx = 0 for x < -3, g * (x/3 + 1/2) for -3 <= x < 3, g from
 *              3 on: the right-hand derivative at both kinks (-g/2 at -3, g
 *              at 3) and NaN at NaN, as torch's vectorised kernel does. Its
 *              scalar loop, which only takes the last few (< 16 on AVX2)
 *              elements of a tensor, gives 3g/2 at 3 and g at NaN instead;
 *              the kernel that computes nearly every element is the one
 *              followed here.
 *   HardSigmoid dx = alpha * g where 0 < alpha*x + beta < 1, else 0
 * Abs and Neg also take int64 tensors (index and shape arithmetic), which
 * have no gradient.
 *
 * HardSigmoid with torch's own parameters (alpha = 1/6 as a float, beta =
 * 1/2: what torch.onnx writes for F.hardsigmoid, and for F.hardswish before
 * opset 14 as x * HardSigmoid(x)) computes clamp(x + 3, 0, 6) / 6 as torch
 * does; alpha*x + beta loses the low bits near x = -3 to cancellation.
 *
 * Pow broadcasts base and exponent. A static scalar exponent is how
 * torch.onnx writes x ** c (a Constant), and torch's tensor ** scalar
 * special-cases the common exponents: 2 is x*x, 3 is x*x*x, 0.5 sqrt, -0.5
 * 1/sqrt, -1 1/x, -2 1/(x*x), so those are computed the same way here (they
 * differ from powf in the last bit, and at -0 and -inf); its gradient is
 * e * pow(x, e - 1) * g through the same special cases, 0 when e is 0. Any
 * other exponent (computed, a weight, several values) uses powf per
 * element, as torch's tensor ** tensor does, with its gradients:
 *   d base     = 0 where e == 0, else g * e * b^(e-1)
 *   d exponent = g * (0 where b == 0 and e >= 0, else b^e * ln b)
 * so a negative base gives NaN for the exponent's gradient, as in torch.
 * A broadcast operand's gradient is the sum over the axes it is broadcast
 * along (accumulated in double). An int64 exponent (opset 12+) is read as
 * float, so magnitudes past 2^24 round (torch promotes it to float too).
 * Nothing here needs workspace. */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>

/* --- the one-input ops ------------------------------------------------------ */

int pc_unary_init(struct pc_node *n, struct pc_error *err)
{
	if (n->op == PC_OP_HARDSWISH && pc_op_opset(n) < 14)
		return pc_node_error(err, n, PC_ERR_FORMAT, "HardSwish exists from opset 14; the model is at %d",
				     pc_op_opset(n));
	return PC_OK;
}

int pc_unary_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	int rc;

	if (x && x->dtype == PC_DTYPE_INT64 && (n->op == PC_OP_ABS || n->op == PC_OP_NEG))
		return pc_op_set_output(p, n, 0, PC_DTYPE_INT64, &x->shape, err);
	if ((rc = pc_op_need_float(p, n, 0, err)))
		return rc;
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &x->shape, err);
}

/* Integer Abs and Neg wrap at INT64_MIN (as two's complement machines and
 * numpy do) instead of overflowing, which is undefined in C. */
static void unary_int64(enum pc_op op, const int64_t *x, int64_t *restrict y, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		uint64_t u = (uint64_t)x[i], neg = 0u - u;
		y[i] = (int64_t)(op == PC_OP_NEG || x[i] < 0 ? neg : u);
	}
}

/* The float forward; EXPR computes y from float v. */
#define UNARY_LOOP(EXPR)                                                                                          \
	do {                                                                                                      \
		for (int64_t i = 0; i < n; i++) {                                                                 \
			float v = x[i];                                                                           \
			y[i] = (EXPR);                                                                            \
		}                                                                                                 \
	} while (0)

static inline float hardswish(float v)
{
	/* torch: x * min(max(x + 3, 0), 6) / 6; NaN stays NaN */
	float c = v + 3.0f;
	c = c < 0.0f ? 0.0f : c;
	c = c > 6.0f ? 6.0f : c;
	return v * c / 6.0f;
}

/* erf, branch-free so that the loop vectorizes (glibc's erff is a call per
 * element, and a third of a GPT's time in its GELUs). Below |x| = 1 an odd
 * polynomial in x; above, 1 - erfc(x) with erfc(x) = e^-x^2 / x P(1/x^2),
 * P of degree 8 up to 2 and of degree 7 beyond (the Cephes library's erff
 * and erfcf coefficients), e^-x^2 by the vectorizable pc_exp_nonpos; past
 * |x| = 10 erfc is below float's resolution of 1 and the result is +-1.
 * Within about 2e-7 of erf. NaN stays NaN. */
static inline float erf_f(float x)
{
	static const float P[9] = {2.326819970068386e-2f, -1.387039388740657e-1f, 3.687424674597105e-1f,
				   -5.824733027278666e-1f, 6.210004621745983e-1f, -4.944515323274145e-1f,
				   3.404879937665872e-1f, -2.741127028184656e-1f, 5.638259427386472e-1f};
	static const float R[9] = {0.0f,
				   -1.047766399936249e+1f,
				   1.297719955372516e+1f,
				   -7.495518717768503e+0f,
				   2.921019019210786e+0f,
				   -1.015265279202700e+0f,
				   4.218463358204948e-1f,
				   -2.820767439740514e-1f,
				   5.641895067754075e-1f};
	float a = x < 0.0f ? -x : x, xs, z, ac, q, y, e, p, small, big, m;
	int near = 0;

	/* Selects between inputs and constants only, and the two branches
	 * blended by a multiply: GCC would otherwise sink each branch's
	 * arithmetic behind its condition and, since float operations may
	 * trap, not vectorize the loop. */
	xs = a < 1.0f ? x : 0.0f;
	z = xs * xs;
	ac = a < 1.0f ? 1.0f : a;
	ac = ac > 10.0f ? 10.0f : ac;
	near = ac < 2.0f;
	q = 1.0f / ac;
	y = q * q;
	e = pc_exp_nonpos(-ac * ac);
	small = xs * ((((((7.853861353153693e-5f * z - 8.010193625184903e-4f) * z + 5.188327685732524e-3f) * z -
			 2.685381193529856e-2f) * z + 1.128358514861418e-1f) * z - 3.761262582423300e-1f) * z +
		      1.128379165726710e+0f);
	p = 0.0f;
	for (int k = 0; k < 9; k++)
		p = p * y + (near ? P[k] : R[k]);
	big = 1.0f - e * q * p;
	big = x < 0.0f ? -big : big;
	m = (float)(a < 1.0f);
	/* NaN: a < 1 is false, big is finite; x + 0 * big keeps the NaN */
	return small * m + big * (1.0f - m) + (a != a ? x : 0.0f);
}

PC_HOT static void unary_run(enum pc_op op, const float *x, float *restrict y, int64_t n)
{
	switch (op) {
	case PC_OP_ABS:
		UNARY_LOOP(fabsf(v));
		break;
	case PC_OP_NEG:
		UNARY_LOOP(-v);
		break;
	case PC_OP_RECIPROCAL:
		UNARY_LOOP(1.0f / v);
		break;
	case PC_OP_SQRT:
		UNARY_LOOP(sqrtf(v));
		break;
	case PC_OP_EXP:
		UNARY_LOOP(expf(v));
		break;
	case PC_OP_LOG:
		UNARY_LOOP(logf(v));
		break;
	case PC_OP_ERF:
		UNARY_LOOP(erf_f(v));
		break;
	case PC_OP_HARDSWISH:
		UNARY_LOOP(hardswish(v));
		break;
	default:
		break;
	}
}

void pc_unary_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	struct pc_tensor *y = pc_op_out(p, n, 0);

	if (x->dtype == PC_DTYPE_INT64)
		unary_int64(n->op, x->ival, y->ival, x->numel);
	else
		unary_run(n->op, x->data, y->data, x->numel);
}

/* The backward; EXPR is what one element adds to dx, from float xv (the
 * input), yv (the output) and gv (the output's gradient). */
#define GRAD_LOOP(EXPR)                                                                                           \
	do {                                                                                                      \
		for (int64_t i = 0; i < n; i++) {                                                                 \
			float xv = x[i], yv = y[i], gv = g[i];                                                    \
			(void)xv;                                                                                 \
			(void)yv;                                                                                 \
			dx[i] += (EXPR);                                                                          \
		}                                                                                                 \
	} while (0)

/* 2 / sqrt(pi), as torch's float kernel multiplies it */
#define TWO_OVER_SQRT_PI 1.12837916709551257390f

static inline float abs_grad(float xv, float gv)
{
	/* g * sign(x): the selects keep the loop free of branches */
	float s = xv > 0.0f ? 1.0f : 0.0f;
	s = xv < 0.0f ? -1.0f : s;
	return gv * s;
}

static inline float hardswish_grad(float xv, float gv)
{
	/* torch's vectorised kernel: 0 below -3, g from 3 on, g * (x/3 + 1/2)
	 * between and for NaN (where both comparisons fail) */
	float d = gv * (xv / 3.0f + 0.5f);
	d = xv >= 3.0f ? gv : d;
	return xv < -3.0f ? 0.0f : d;
}

PC_HOT static void unary_grad(enum pc_op op, const float *x, const float *y, const float *g, float *restrict dx,
			      int64_t n)
{
	switch (op) {
	case PC_OP_ABS:
		GRAD_LOOP(abs_grad(xv, gv));
		break;
	case PC_OP_NEG:
		GRAD_LOOP(-gv);
		break;
	case PC_OP_RECIPROCAL:
		GRAD_LOOP(-gv * (yv * yv));
		break;
	case PC_OP_SQRT:
		GRAD_LOOP(gv / (2.0f * yv));
		break;
	case PC_OP_EXP:
		GRAD_LOOP(gv * yv);
		break;
	case PC_OP_LOG:
		GRAD_LOOP(gv / xv);
		break;
	case PC_OP_ERF:
		GRAD_LOOP(TWO_OVER_SQRT_PI * pc_exp_nonpos(-(xv * xv)) * gv);
		break;
	case PC_OP_HARDSWISH:
		GRAD_LOOP(hardswish_grad(xv, gv));
		break;
	default:
		break;
	}
}

void pc_unary_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);

	if (!x->grad || !y->grad || x->dtype != PC_DTYPE_FLOAT)
		return;
	unary_grad(n->op, x->data, y->data, y->grad, x->grad, x->numel);
}

/* --- HardSigmoid ------------------------------------------------------------ */

struct hardsigmoid_attrs {
	float alpha, beta;
	int torch_form; /* alpha = 1/6, beta = 1/2: clamp(x + 3, 0, 6) / 6 */
};

int pc_hardsigmoid_init(struct pc_node *n, struct pc_error *err)
{
	struct hardsigmoid_attrs *a;
	float alpha, beta;
	int rc;

	if ((rc = pc_attr_float(n, "alpha", 0.2f, &alpha, err)) || (rc = pc_attr_float(n, "beta", 0.5f, &beta, err)))
		return rc;
	if (!isfinite(alpha) || !isfinite(beta))
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute '%s' is %g; it must be finite",
				     isfinite(alpha) ? "beta" : "alpha", (double)(isfinite(alpha) ? beta : alpha));
	a = malloc(sizeof(*a));
	if (!a)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	a->alpha = alpha;
	a->beta = beta;
	a->torch_form = alpha == 1.0f / 6.0f && beta == 0.5f;
	free(n->priv);
	n->priv = a;
	return PC_OK;
}

int pc_hardsigmoid_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	int rc = pc_op_need_float(p, n, 0, err);

	if (rc)
		return rc;
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &pc_op_in(p, n, 0)->shape, err);
}

PC_HOT static void hardsigmoid_run(const struct hardsigmoid_attrs *at, const float *x, float *restrict y, int64_t n)
{
	const float alpha = at->alpha, beta = at->beta;

	/* the clamps let NaN through, as torch's do */
	if (at->torch_form)
		for (int64_t i = 0; i < n; i++) {
			float c = x[i] + 3.0f;
			c = c < 0.0f ? 0.0f : c;
			c = c > 6.0f ? 6.0f : c;
			y[i] = c / 6.0f;
		}
	else
		for (int64_t i = 0; i < n; i++) {
			float c = alpha * x[i] + beta;
			c = c < 0.0f ? 0.0f : c;
			y[i] = c > 1.0f ? 1.0f : c;
		}
}

PC_HOT static void hardsigmoid_grad(const struct hardsigmoid_attrs *at, const float *x, const float *g,
				    float *restrict dx, int64_t n)
{
	const float alpha = at->alpha, beta = at->beta;

	/* strictly inside the linear part; the ends and NaN get nothing */
	if (at->torch_form)
		for (int64_t i = 0; i < n; i++) {
			float d = x[i] > -3.0f ? g[i] * (1.0f / 6.0f) : 0.0f;
			dx[i] += x[i] < 3.0f ? d : 0.0f;
		}
	else
		for (int64_t i = 0; i < n; i++) {
			float c = alpha * x[i] + beta, d = c > 0.0f ? alpha * g[i] : 0.0f;
			dx[i] += c < 1.0f ? d : 0.0f;
		}
}

void pc_hardsigmoid_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);

	hardsigmoid_run(pc_op_priv(n), x->data, pc_op_out(p, n, 0)->data, x->numel);
}

void pc_hardsigmoid_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);

	if (!x->grad || !y->grad)
		return;
	hardsigmoid_grad(pc_op_priv(n), x->data, y->grad, x->grad, x->numel);
}

/* --- Pow: broadcasting ------------------------------------------------------- */

/* The output as rows: axes of extent 1 dropped, neighbouring axes that
 * broadcast the same way merged (as elementwise.c does for Add), so a
 * scalar exponent makes one row of the whole tensor. */
struct pow_walk {
	int nd;
	int64_t dim[PC_MAX_DIMS];
	int64_t sb[PC_MAX_DIMS], se[PC_MAX_DIMS]; /* element steps of base and exponent; 0 = broadcast */
	int64_t len, rows;			  /* the innermost axis, and the product of the others */
};

static void pow_walk_plan(const struct pc_shape *b, const struct pc_shape *e, const struct pc_shape *y,
			  struct pow_walk *w)
{
	int r = y->ndim, nd = 0, pats[PC_MAX_DIMS];
	int64_t step_b = 1, step_e = 1;

	for (int i = 0; i < r; i++) {
		int ib = i - (r - b->ndim), ie = i - (r - e->ndim);
		int64_t d = y->dim[i], db = ib >= 0 ? b->dim[ib] : 1, de = ie >= 0 ? e->dim[ie] : 1;
		int pat = (db == 1) | (de == 1) << 1; /* bit 0: base broadcast, bit 1: exponent broadcast */
		if (d == 1)
			continue;
		if (nd > 0 && pats[nd - 1] == pat) {
			w->dim[nd - 1] *= d;
		} else {
			w->dim[nd] = d;
			pats[nd++] = pat;
		}
	}
	if (nd == 0) {
		w->dim[0] = 1;
		pats[nd++] = 0;
	}
	for (int i = nd - 1; i >= 0; i--) {
		w->sb[i] = (pats[i] & 1) ? 0 : step_b;
		w->se[i] = (pats[i] & 2) ? 0 : step_e;
		if (!(pats[i] & 1))
			step_b *= w->dim[i];
		if (!(pats[i] & 2))
			step_e *= w->dim[i];
	}
	w->nd = nd;
	w->len = w->dim[nd - 1];
	w->rows = 1;
	for (int i = 0; i < nd - 1; i++)
		w->rows *= w->dim[i];
}

/* Move to the next row: *ob and *oe are the base's and exponent's offsets. */
static void pow_walk_next(const struct pow_walk *w, int64_t *idx, int64_t *ob, int64_t *oe)
{
	for (int i = w->nd - 2; i >= 0; i--) {
		*ob += w->sb[i];
		*oe += w->se[i];
		if (++idx[i] < w->dim[i])
			return;
		*ob -= w->sb[i] * w->dim[i];
		*oe -= w->se[i] * w->dim[i];
		idx[i] = 0;
	}
}

/* --- Pow: a static scalar exponent --------------------------------------------- */

/* torch's tensor ** scalar, which picks a kernel by the exponent's value. */
enum pow_kind {
	POW_GENERAL, /* powf */
	POW_SQUARE,
	POW_CUBE,
	POW_SQRT,
	POW_RSQRT,
	POW_RECIP,
	POW_INV_SQUARE,
};

static enum pow_kind pow_kind_of(double e)
{
	if (e == 0.5)
		return POW_SQRT;
	if (e == -0.5)
		return POW_RSQRT;
	if (e == -1.0)
		return POW_RECIP;
	if (e == 2.0)
		return POW_SQUARE;
	if (e == 3.0)
		return POW_CUBE;
	if (e == -2.0)
		return POW_INV_SQUARE;
	return POW_GENERAL;
}

/* y[i] = EXPR(v) * scale over a flat tensor, for each kind: the forward
 * (scale NULL) and the base's gradient share it. */
#define POW_SCALAR_LOOP(EXPR)                                                                                     \
	do {                                                                                                      \
		if (g)                                                                                            \
			for (int64_t i = 0; i < n; i++) {                                                         \
				float v = x[i];                                                                   \
				y[i] += g[i] * (ef * (EXPR));                                                     \
			}                                                                                         \
		else                                                                                              \
			for (int64_t i = 0; i < n; i++) {                                                         \
				float v = x[i];                                                                   \
				y[i] = (EXPR);                                                                    \
			}                                                                                         \
	} while (0)

/* g == NULL: y = x^e. Otherwise y += g * (ef * x^e), torch's gradient
 * e * x^(e-1) * g when called with e - 1 and ef = (float)e. */
PC_HOT static void pow_scalar_run(double e, float ef, const float *x, const float *g, float *restrict y, int64_t n)
{
	const float e32 = (float)e;

	switch (pow_kind_of(e)) {
	case POW_SQUARE:
		POW_SCALAR_LOOP(v * v);
		break;
	case POW_CUBE:
		POW_SCALAR_LOOP(v * v * v);
		break;
	case POW_SQRT:
		POW_SCALAR_LOOP(sqrtf(v));
		break;
	case POW_RSQRT:
		POW_SCALAR_LOOP(1.0f / sqrtf(v));
		break;
	case POW_RECIP:
		POW_SCALAR_LOOP(1.0f / v);
		break;
	case POW_INV_SQUARE:
		POW_SCALAR_LOOP(1.0f / (v * v));
		break;
	case POW_GENERAL:
		POW_SCALAR_LOOP(powf(v, e32));
		break;
	}
}

/* --- Pow: the op ------------------------------------------------------------- */

int pc_pow_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *b = pc_op_in(p, n, 0), *e = pc_op_in(p, n, 1);
	struct pc_shape ys;
	char sb[96], se[96];
	int rc;

	if (!b || !e)
		return pc_node_error(err, n, PC_ERR_FORMAT, "needs two inputs");
	if (b->dtype != PC_DTYPE_FLOAT)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "the base (input 0) is %s; only a float base is supported",
				     pc_dtype_name(b->dtype));
	if (e->dtype == PC_DTYPE_INT64) {
		/* Pow-7 has one type for both inputs; Pow-12 lets them differ */
		if (pc_op_opset(n) < 12)
			return pc_node_error(err, n, PC_ERR_FORMAT,
					     "the exponent (input 1) is int64 and the base float; before opset 12 "
					     "they must have the same type, and the model is at %d",
					     pc_op_opset(n));
	} else if ((rc = pc_op_need_float(p, n, 1, err))) {
		return rc;
	}
	if (pc_broadcast_shape(&b->shape, &e->shape, &ys))
		return pc_node_error(err, n, PC_ERR_SHAPE, "input shapes %s and %s do not broadcast",
				     pc_shape_format(&b->shape, sb, sizeof(sb)), pc_shape_format(&e->shape, se, sizeof(se)));
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &ys, err);
}

/* The exponent's values, float or int64, read in place element by element
 * (powf dominates the cost) rather than converted into the workspace. */
struct pow_exp {
	const float *f;	  /* float data, or NULL */
	const int64_t *i; /* int64 values when f is NULL */
};

static struct pow_exp pow_exp_of(const struct pc_tensor *e)
{
	return e->dtype == PC_DTYPE_FLOAT ? (struct pow_exp){e->data, NULL} : (struct pow_exp){NULL, e->ival};
}

static inline float pow_exp_at(struct pow_exp ex, int64_t k)
{
	return ex.f ? ex.f[k] : (float)ex.i[k];
}

/* Whether the exponent is one value known before the run: torch's x ** c. */
static int pow_static_scalar(const struct pc_tensor *e)
{
	return e->is_static && e->numel == 1;
}

void pc_pow_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *b = pc_op_in(p, n, 0), *e = pc_op_in(p, n, 1);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	const struct pow_exp ex = pow_exp_of(e);
	const float *bv = b->data;
	int64_t idx[PC_MAX_DIMS] = {0}, ob = 0, oe = 0;
	struct pow_walk w;

	if (y->numel == 0)
		return;
	if (pow_static_scalar(e)) {
		/* one exponent: y has the base's elements in the base's order */
		pow_scalar_run(pow_exp_at(ex, 0), 0.0f, bv, NULL, y->data, y->numel);
		return;
	}
	pow_walk_plan(&b->shape, &e->shape, &y->shape, &w);
	for (int64_t r = 0; r < w.rows; r++) {
		const float *br = bv + ob;
		float *yr = y->data + r * w.len;
		const int64_t ib = w.sb[w.nd - 1], ie = w.se[w.nd - 1];
		for (int64_t j = 0; j < w.len; j++)
			yr[j] = powf(br[j * ib], pow_exp_at(ex, oe + j * ie));
		pow_walk_next(&w, idx, &ob, &oe);
	}
}

static inline float pow_base_grad(float gv, float bv, float ev)
{
	return ev == 0.0f ? 0.0f : gv * (ev * powf(bv, ev - 1.0f));
}

static inline float pow_exp_grad(float gv, float bv, float ev, float yv)
{
	return gv * (bv == 0.0f && ev >= 0.0f ? 0.0f : yv * logf(bv));
}

/* One row of the gradient of the base (which == 0) or the exponent (1):
 * element by element where that operand runs along the row (step 1),
 * summed into its one element where it is broadcast (step 0). The row's
 * base starts at br with step ib, its exponent at element oe with step ie. */
static void pow_grad_row(int which, int64_t step, float *restrict d, const float *g, const float *br, int64_t ib,
			 struct pow_exp ex, int64_t oe, int64_t ie, const float *yr, int64_t len)
{
	double s = 0.0;

	for (int64_t j = 0; j < len; j++) {
		float ev = pow_exp_at(ex, oe + j * ie);
		float v = which ? pow_exp_grad(g[j], br[j * ib], ev, yr[j]) : pow_base_grad(g[j], br[j * ib], ev);
		if (step)
			d[j] += v;
		else
			s += v;
	}
	if (!step)
		d[0] += (float)s;
}

void pc_pow_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *b = pc_op_in(p, n, 0), *e = pc_op_in(p, n, 1), *y = pc_op_out(p, n, 0);
	float *db = b->grad, *de = e->dtype == PC_DTYPE_FLOAT ? e->grad : NULL;
	const struct pow_exp ex = pow_exp_of(e);
	int64_t idx[PC_MAX_DIMS] = {0}, ob = 0, oe = 0;
	struct pow_walk w;

	if (y->numel == 0 || !y->grad || (!db && !de))
		return;
	if (pow_static_scalar(e)) {
		/* a static exponent has no gradient; the base's is
		 * e * x^(e-1) * g through torch's kernels for e - 1 */
		float e0 = pow_exp_at(ex, 0);
		if (db && e0 != 0.0f)
			pow_scalar_run((double)e0 - 1.0, e0, b->data, y->grad, db, y->numel);
		return;
	}
	pow_walk_plan(&b->shape, &e->shape, &y->shape, &w);
	for (int64_t r = 0; r < w.rows; r++) {
		const float *br = b->data + ob, *gr = y->grad + r * w.len, *yr = y->data + r * w.len;
		const int64_t ib = w.sb[w.nd - 1], ie = w.se[w.nd - 1];
		if (db)
			pow_grad_row(0, ib, db + ob, gr, br, ib, ex, oe, ie, yr, w.len);
		if (de)
			pow_grad_row(1, ie, de + oe, gr, br, ib, ex, oe, ie, yr, w.len);
		pow_walk_next(&w, idx, &ob, &oe);
	}
}
