/* ops/logic: comparisons (Equal, Less, Greater, LessOrEqual,
 * GreaterOrEqual), boolean logic (Not, And, Or, Xor), Where and Mod, and
 * the generators ConstantOfShape, Range and Trilu.
 *
 * Dtypes follow the plan's contract: float elements live in t->data, int64
 * and bool elements in t->ival (bool as 0/1). A comparison or logic op
 * yields bool; Where and Mod yield their operands' type. None of these ops
 * folds by hand: infer sets shapes and dtypes, forward computes from
 * whatever the inputs hold, and the plan runs forward once at prepare time
 * when every input is known then (the usual case: these ops mostly build
 * attention masks and window indices from shapes), or at every pass when an
 * input is a run-time tensor (a padding mask Equal(tokens, 0)).
 *
 * Operands broadcast as numpy does. The walk is the one elementwise.c uses
 * for two operands, generalised to three: output axes of extent 1 are
 * dropped, neighbouring axes on which every operand broadcasts the same way
 * are merged, and an odometer moves each operand's offset once per row of
 * the innermost merged axis, along which each operand steps by 1 or by 0.
 *
 * Gradients: comparisons and logic ops have none (their outputs are bool).
 * Where passes dY to X where the condition holds and to Y elsewhere; Mod
 * on floats (C fmod, ONNX fmod=1) has dA = dY and dB = -trunc(A/B) dY,
 * torch's derivative of fmod (the function jumps where A/B crosses an
 * integer; between jumps those are exact); Trilu passes dY through the kept
 * triangle. Range and ConstantOfShape have no float input to send one to. */
#include "../graph_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* --- shared --------------------------------------------------------------- */

static void *alloc_priv(struct pc_node *n, size_t size, struct pc_error *err)
{
	void *pr = calloc(1, size);

	if (!pr)
		pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	n->priv = pr;
	return pr;
}

static int err_code(const struct pc_error *err)
{
	return err && err->code ? (int)err->code : PC_ERR_INTERNAL;
}

/* Ops that exist only from some opset: refuse an older model naming both. */
static int need_opset(const struct pc_node *n, int since, struct pc_error *err)
{
	if (pc_op_opset(n) < since)
		return pc_node_error(err, n, PC_ERR_FORMAT, "%s exists from opset %d; the model is at %d", n->op_type,
				     since, pc_op_opset(n));
	return PC_OK;
}

/* Input i exists and has dtype `want`. */
static int need_dtype(struct pc_plan *p, const struct pc_node *n, int i, enum pc_dtype want, struct pc_error *err)
{
	const struct pc_tensor *t = pc_op_in(p, n, i);

	if (!t)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d is missing", i);
	if (t->dtype != want)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d is %s; it must be %s", i,
				     pc_dtype_name(t->dtype), pc_dtype_name(want));
	return PC_OK;
}

/* Inputs a and b exist and share a dtype that `allowed` (a bit per dtype
 * code) contains; `what` lists them for the message. */
static int need_same_dtype(struct pc_plan *p, const struct pc_node *n, int a, int b, unsigned allowed,
			   const char *what, struct pc_error *err)
{
	const struct pc_tensor *ta = pc_op_in(p, n, a), *tb = pc_op_in(p, n, b);

	if (!ta || !tb)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d is missing", ta ? b : a);
	if (ta->dtype != tb->dtype)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d is %s and input %d is %s; they must match", a,
				     pc_dtype_name(ta->dtype), b, pc_dtype_name(tb->dtype));
	if ((unsigned)ta->dtype >= 32 || !(allowed & (1u << ta->dtype)))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "inputs are %s; this op takes %s",
				     pc_dtype_name(ta->dtype), what);
	return PC_OK;
}

#define DT_BIT(d) (1u << (d))
#define DT_FLOAT DT_BIT(PC_DTYPE_FLOAT)
#define DT_INT64 DT_BIT(PC_DTYPE_INT64)
#define DT_BOOL DT_BIT(PC_DTYPE_BOOL)

/* --- broadcasting over up to three operands ------------------------------- */

#define NB_MAX 3

struct nbc {
	int nd, k;
	int64_t dim[PC_MAX_DIMS];
	int64_t st[NB_MAX][PC_MAX_DIMS]; /* operand j's element step per merged axis; 0 = broadcast */
	int64_t step[NB_MAX];		 /* the same along the innermost axis: 0 or 1 */
	int64_t len, rows;		 /* the innermost axis, and the product of the others */
};

/* The output shape of k operands, or PC_ERR_SHAPE naming them. */
static int broadcast_all(struct pc_plan *p, const struct pc_node *n, int k, struct pc_shape *out,
			 struct pc_error *err)
{
	struct pc_shape s = pc_op_in(p, n, 0)->shape;

	for (int j = 1; j < k; j++) {
		struct pc_shape next;
		if (pc_broadcast_shape(&s, &pc_op_in(p, n, j)->shape, &next)) {
			char buf[NB_MAX][96];
			for (int i = 0; i < k; i++)
				pc_shape_format(&pc_op_in(p, n, i)->shape, buf[i], sizeof(buf[i]));
			return pc_node_error(err, n, PC_ERR_SHAPE, "input shapes %s, %s%s%s do not broadcast", buf[0],
					     buf[1], k > 2 ? ", " : "", k > 2 ? buf[2] : "");
		}
		s = next;
	}
	*out = s;
	return PC_OK;
}

static void nbc_plan(int k, const struct pc_tensor *const *in, const struct pc_shape *y, struct nbc *b)
{
	int r = y->ndim, nd = 0;
	unsigned pats[PC_MAX_DIMS];
	int64_t acc[NB_MAX];

	memset(b, 0, sizeof(*b));
	b->k = k;
	for (int i = 0; i < r; i++) {
		int64_t d = y->dim[i];
		unsigned pat = 0; /* bit j: operand j is broadcast along this axis */
		if (d == 1)
			continue;
		for (int j = 0; j < k; j++) {
			int ij = i - (r - in[j]->shape.ndim);
			if (ij < 0 || in[j]->shape.dim[ij] == 1)
				pat |= 1u << j;
		}
		if (nd > 0 && pats[nd - 1] == pat) {
			b->dim[nd - 1] *= d;
		} else {
			b->dim[nd] = d;
			pats[nd++] = pat;
		}
	}
	if (nd == 0) {
		b->dim[0] = 1;
		pats[nd++] = 0;
	}
	for (int j = 0; j < k; j++)
		acc[j] = 1;
	for (int i = nd - 1; i >= 0; i--)
		for (int j = 0; j < k; j++) {
			int bc = (pats[i] >> j) & 1;
			b->st[j][i] = bc ? 0 : acc[j];
			if (!bc)
				acc[j] *= b->dim[i];
		}
	b->nd = nd;
	b->len = b->dim[nd - 1];
	b->rows = 1;
	for (int i = 0; i < nd - 1; i++)
		b->rows *= b->dim[i];
	for (int j = 0; j < k; j++)
		b->step[j] = b->st[j][nd - 1];
}

/* Move every operand's offset to the next row. */
static inline void nbc_next(const struct nbc *b, int64_t *idx, int64_t *off)
{
	for (int i = b->nd - 2; i >= 0; i--) {
		for (int j = 0; j < b->k; j++)
			off[j] += b->st[j][i];
		if (++idx[i] < b->dim[i])
			return;
		for (int j = 0; j < b->k; j++)
			off[j] -= b->st[j][i] * b->dim[i];
		idx[i] = 0;
	}
}

/* The walk of a node's first k inputs against output 0. */
static void nbc_of(struct pc_plan *p, const struct pc_node *n, int k, struct nbc *b)
{
	const struct pc_tensor *in[NB_MAX];

	for (int j = 0; j < k; j++)
		in[j] = pc_op_in(p, n, j);
	nbc_plan(k, in, &pc_op_out(p, n, 0)->shape, b);
}

/* Rows of a two-operand op: EXPR of a[oa + j*sa] and b[ob + j*sb] into
 * y[r*len + j]. */
#define BINARY_ROWS(bc, A, B, Y, EXPR)                                                                            \
	do {                                                                                                      \
		int64_t idx_[PC_MAX_DIMS] = {0}, off_[NB_MAX] = {0};                                              \
		const int64_t sa_ = (bc)->step[0], sb_ = (bc)->step[1], len_ = (bc)->len;                         \
		for (int64_t r_ = 0; r_ < (bc)->rows; r_++) {                                                     \
			const __typeof__(*(A)) *ar_ = (A) + off_[0];                                              \
			const __typeof__(*(B)) *br_ = (B) + off_[1];                                              \
			__typeof__(*(Y)) *yr_ = (Y) + r_ * len_;                                                  \
			for (int64_t j_ = 0; j_ < len_; j_++) {                                                   \
				__typeof__(*(A)) x = ar_[j_ * sa_];                                               \
				__typeof__(*(B)) z = br_[j_ * sb_];                                               \
				yr_[j_] = (EXPR);                                                                 \
			}                                                                                         \
			nbc_next((bc), idx_, off_);                                                               \
		}                                                                                                 \
	} while (0)

/* --- comparisons ------------------------------------------------------------ */

int pc_compare_init(struct pc_node *n, struct pc_error *err)
{
	if (n->op == PC_OP_LESSOREQUAL || n->op == PC_OP_GREATEROREQUAL)
		return need_opset(n, 12, err);
	return PC_OK;
}

int pc_compare_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	struct pc_shape s;
	int rc;

	/* ONNX's Equal takes bool; the ordering comparisons take numbers only */
	if (n->op == PC_OP_EQUAL)
		rc = need_same_dtype(p, n, 0, 1, DT_FLOAT | DT_INT64 | DT_BOOL, "float, int64 or bool", err);
	else
		rc = need_same_dtype(p, n, 0, 1, DT_FLOAT | DT_INT64, "float or int64", err);
	if (rc || (rc = broadcast_all(p, n, 2, &s, err)))
		return rc;
	return pc_op_set_output(p, n, 0, PC_DTYPE_BOOL, &s, err);
}

#define COMPARE_ROWS(bc, A, B, Y, op)                                                                             \
	do {                                                                                                      \
		switch (op) {                                                                                     \
		case PC_OP_EQUAL:                                                                                 \
			BINARY_ROWS(bc, A, B, Y, x == z);                                                         \
			break;                                                                                    \
		case PC_OP_LESS:                                                                                  \
			BINARY_ROWS(bc, A, B, Y, x < z);                                                          \
			break;                                                                                    \
		case PC_OP_GREATER:                                                                               \
			BINARY_ROWS(bc, A, B, Y, x > z);                                                          \
			break;                                                                                    \
		case PC_OP_LESSOREQUAL:                                                                           \
			BINARY_ROWS(bc, A, B, Y, x <= z);                                                         \
			break;                                                                                    \
		default:                                                                                          \
			BINARY_ROWS(bc, A, B, Y, x >= z);                                                         \
			break;                                                                                    \
		}                                                                                                 \
	} while (0)

/* NaN compares false with everything (so Equal(x, x) finds NaNs by their
 * absence), as in IEEE, numpy and torch. */
void pc_compare_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct nbc bc;

	if (y->numel == 0)
		return;
	nbc_of(p, n, 2, &bc);
	if (a->dtype == PC_DTYPE_FLOAT)
		COMPARE_ROWS(&bc, a->data, b->data, y->ival, n->op);
	else
		COMPARE_ROWS(&bc, a->ival, b->ival, y->ival, n->op);
}

/* --- Not, And, Or, Xor --------------------------------------------------------- */

int pc_not_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	int rc = need_dtype(p, n, 0, PC_DTYPE_BOOL, err);

	if (rc)
		return rc;
	return pc_op_set_output(p, n, 0, PC_DTYPE_BOOL, &pc_op_in(p, n, 0)->shape, err);
}

void pc_not_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0);
	int64_t *y = pc_op_out(p, n, 0)->ival;

	for (int64_t i = 0; i < x->numel; i++)
		y[i] = !x->ival[i];
}

int pc_logical_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	struct pc_shape s;
	int rc;

	if ((rc = need_same_dtype(p, n, 0, 1, DT_BOOL, "bool", err)) || (rc = broadcast_all(p, n, 2, &s, err)))
		return rc;
	return pc_op_set_output(p, n, 0, PC_DTYPE_BOOL, &s, err);
}

/* Operands are 0/1 by the contract; the != 0 keeps a stray value from
 * leaking through as something other than a bool. */
void pc_logical_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct nbc bc;

	if (y->numel == 0)
		return;
	nbc_of(p, n, 2, &bc);
	switch (n->op) {
	case PC_OP_AND:
		BINARY_ROWS(&bc, a->ival, b->ival, y->ival, (x != 0) & (z != 0));
		break;
	case PC_OP_OR:
		BINARY_ROWS(&bc, a->ival, b->ival, y->ival, (x != 0) | (z != 0));
		break;
	default:
		BINARY_ROWS(&bc, a->ival, b->ival, y->ival, (x != 0) ^ (z != 0));
		break;
	}
}

/* --- Where ----------------------------------------------------------------------- */

int pc_where_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	struct pc_shape s;
	int rc;

	if ((rc = need_dtype(p, n, 0, PC_DTYPE_BOOL, err)) ||
	    (rc = need_same_dtype(p, n, 1, 2, DT_FLOAT | DT_INT64 | DT_BOOL, "float, int64 or bool", err)) ||
	    (rc = broadcast_all(p, n, 3, &s, err)))
		return rc;
	return pc_op_set_output(p, n, 0, pc_op_in(p, n, 1)->dtype, &s, err);
}

#define WHERE_ROWS(bc, C, X, Z, Y)                                                                                \
	do {                                                                                                      \
		int64_t idx_[PC_MAX_DIMS] = {0}, off_[NB_MAX] = {0};                                              \
		const int64_t sc_ = (bc)->step[0], sx_ = (bc)->step[1], sz_ = (bc)->step[2], len_ = (bc)->len;    \
		for (int64_t r_ = 0; r_ < (bc)->rows; r_++) {                                                     \
			const int64_t *cr_ = (C) + off_[0];                                                       \
			const __typeof__(*(X)) *xr_ = (X) + off_[1], *zr_ = (Z) + off_[2];                        \
			__typeof__(*(Y)) *yr_ = (Y) + r_ * len_;                                                  \
			for (int64_t j_ = 0; j_ < len_; j_++)                                                     \
				yr_[j_] = cr_[j_ * sc_] ? xr_[j_ * sx_] : zr_[j_ * sz_];                          \
			nbc_next((bc), idx_, off_);                                                               \
		}                                                                                                 \
	} while (0)

void pc_where_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *c = pc_op_in(p, n, 0), *x = pc_op_in(p, n, 1), *z = pc_op_in(p, n, 2);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct nbc bc;

	if (y->numel == 0)
		return;
	nbc_of(p, n, 3, &bc);
	if (x->dtype == PC_DTYPE_FLOAT)
		WHERE_ROWS(&bc, c->ival, x->data, z->data, y->data);
	else
		WHERE_ROWS(&bc, c->ival, x->ival, z->ival, y->ival);
}

/* dX gets dY where the condition holds (which = 1), dY where it does not
 * (which = 2). A row along which the operand is broadcast adds its sum,
 * kept in double. */
static void where_grad(const struct nbc *bc, const int64_t *c, const float *g, float *dx, int which)
{
	int64_t idx[PC_MAX_DIMS] = {0}, off[NB_MAX] = {0};
	const int64_t sc = bc->step[0], sx = bc->step[which], len = bc->len;
	const int64_t want = which == 1;

	for (int64_t r = 0; r < bc->rows; r++) {
		const int64_t *cr = c + off[0];
		const float *gr = g + r * len;
		float *dr = dx + off[which];
		if (sx) {
			for (int64_t j = 0; j < len; j++)
				dr[j] += (cr[j * sc] != 0) == want ? gr[j] : 0.0f;
		} else {
			double acc = 0.0;
			for (int64_t j = 0; j < len; j++)
				acc += (cr[j * sc] != 0) == want ? gr[j] : 0.0f;
			dr[0] += (float)acc;
		}
		nbc_next(bc, idx, off);
	}
}

void pc_where_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *c = pc_op_in(p, n, 0), *x = pc_op_in(p, n, 1), *z = pc_op_in(p, n, 2);
	const struct pc_tensor *y = pc_op_out(p, n, 0);
	struct nbc bc;

	if (y->numel == 0 || !y->grad || y->dtype != PC_DTYPE_FLOAT)
		return;
	nbc_of(p, n, 3, &bc);
	if (x->grad)
		where_grad(&bc, c->ival, y->grad, x->grad, 1);
	if (z->grad)
		where_grad(&bc, c->ival, y->grad, z->grad, 2);
}

/* --- Mod --------------------------------------------------------------------------- */

struct mod_priv {
	int fmod;
};

int pc_mod_init(struct pc_node *n, struct pc_error *err)
{
	struct mod_priv *pr;
	int64_t fmod;
	int rc;

	if ((rc = pc_attr_int(n, "fmod", 0, &fmod, err)))
		return rc;
	if (fmod != 0 && fmod != 1)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'fmod' is %lld; it must be 0 or 1",
				     (long long)fmod);
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->fmod = (int)fmod;
	return PC_OK;
}

int pc_mod_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct mod_priv *pr = pc_op_priv(n);
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	struct pc_shape s;
	int rc;

	if ((rc = need_same_dtype(p, n, 0, 1, DT_FLOAT | DT_INT64, "float or int64", err)) ||
	    (rc = broadcast_all(p, n, 2, &s, err)))
		return rc;
	if (a->dtype == PC_DTYPE_FLOAT && !pr->fmod)
		return pc_node_error(err, n, PC_ERR_FORMAT,
				     "attribute 'fmod' is 0 but the inputs are float; ONNX requires fmod=1 for floats");
	/* a known divisor of 0 is a broken model; a run-time one gives 0 */
	if (a->dtype == PC_DTYPE_INT64 && b->is_static && b->ival)
		for (int64_t i = 0; i < b->numel; i++)
			if (b->ival[i] == 0)
				return pc_node_error(err, n, PC_ERR_INVALID, "integer Mod by zero (input 1, element %lld)",
						     (long long)i);
	return pc_op_set_output(p, n, 0, a->dtype, &s, err);
}

/* Integer remainders without C's undefined cases: x % 0 is 0 (as numpy
 * gives, there is no error path at run time) and INT64_MIN % -1 is 0. With
 * floor (fmod=0) the result takes the divisor's sign, like Python's %. */
static inline int64_t imod_trunc(int64_t x, int64_t z)
{
	return z == 0 || z == -1 ? 0 : x % z;
}

static inline int64_t imod_floor(int64_t x, int64_t z)
{
	int64_t r = imod_trunc(x, z);

	return r != 0 && ((r < 0) != (z < 0)) ? r + z : r;
}

void pc_mod_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct mod_priv *pr = pc_op_priv(n);
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct nbc bc;

	if (y->numel == 0)
		return;
	nbc_of(p, n, 2, &bc);
	if (a->dtype == PC_DTYPE_FLOAT)
		BINARY_ROWS(&bc, a->data, b->data, y->data, fmodf(x, z));
	else if (pr->fmod)
		BINARY_ROWS(&bc, a->ival, b->ival, y->ival, imod_trunc(x, z));
	else
		BINARY_ROWS(&bc, a->ival, b->ival, y->ival, imod_floor(x, z));
}

/* fmod(a, b) = a - trunc(a / b) * b: dA = dY, dB = -trunc(a / b) dY, with
 * the quotient rounded in float as torch's backward computes it. */
void pc_mod_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	const struct pc_tensor *y = pc_op_out(p, n, 0);
	int64_t idx[PC_MAX_DIMS] = {0}, off[NB_MAX] = {0};
	struct nbc bc;

	if (y->numel == 0 || !y->grad || y->dtype != PC_DTYPE_FLOAT)
		return;
	nbc_of(p, n, 2, &bc);
	for (int64_t r = 0; r < bc.rows; r++) {
		const float *g = y->grad + r * bc.len, *ar = a->data + off[0], *br = b->data + off[1];
		const int64_t sa = bc.step[0], sb = bc.step[1];
		double ga = 0.0, gb = 0.0;
		for (int64_t j = 0; j < bc.len; j++) {
			float q = truncf(ar[j * sa] / br[j * sb]);
			if (a->grad) {
				if (sa)
					a->grad[off[0] + j] += g[j];
				else
					ga += g[j];
			}
			if (b->grad) {
				if (sb)
					b->grad[off[1] + j] -= q * g[j];
				else
					gb -= (double)q * g[j];
			}
		}
		if (a->grad && !sa)
			a->grad[off[0]] += (float)ga;
		if (b->grad && !sb)
			b->grad[off[1]] += (float)gb;
		nbc_next(&bc, idx, off);
	}
}

/* --- ConstantOfShape ------------------------------------------------------------------ */

struct constofshape_priv {
	enum pc_dtype dtype;
	float f;
	int64_t i;
};

int pc_constofshape_init(struct pc_node *n, struct pc_error *err)
{
	const struct pc_attr *a = pc_attr_get(n, "value");
	struct constofshape_priv *pr;
	int64_t numel;

	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->dtype = PC_DTYPE_FLOAT; /* ONNX's default: float 0 */
	if (!a)
		return PC_OK;
	if (a->type != PC_ATTR_TENSOR)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'value' must be a tensor");
	if (pc_shape_numel(&a->tshape, &numel, "value", NULL) || numel != 1 || !a->tdata) {
		char buf[96];
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'value' has shape %s; it must hold one element",
				     pc_shape_format(&a->tshape, buf, sizeof(buf)));
	}
	switch (a->tdtype) {
	case PC_DTYPE_FLOAT:
		memcpy(&pr->f, a->tdata, sizeof(float));
		break;
	case PC_DTYPE_INT64:
	case PC_DTYPE_BOOL:
		memcpy(&pr->i, a->tdata, sizeof(int64_t));
		if (a->tdtype == PC_DTYPE_BOOL)
			pr->i = pr->i != 0;
		break;
	default:
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute 'value' is a %s tensor; only float, int64 and bool",
				     pc_dtype_name(a->tdtype));
	}
	pr->dtype = a->tdtype;
	return PC_OK;
}

int pc_constofshape_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct constofshape_priv *pr = pc_op_priv(n);
	const struct pc_tensor *in = pc_op_in(p, n, 0);
	struct pc_shape s;
	int rc;

	if ((rc = pc_op_need_static_int64(p, n, 0, err)))
		return rc;
	if (in->shape.ndim != 1)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 0 has rank %d; the shape must be a 1-D list",
				     in->shape.ndim);
	if (in->numel > PC_MAX_DIMS)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "the shape has %lld dimensions; at most %d",
				     (long long)in->numel, PC_MAX_DIMS);
	s.ndim = (int)in->numel;
	for (int i = 0; i < s.ndim; i++) {
		if (in->ival[i] < 0)
			return pc_node_error(err, n, PC_ERR_FORMAT, "dimension %d of the shape is %lld; it must be >= 0",
					     i, (long long)in->ival[i]);
		s.dim[i] = in->ival[i];
	}
	/* pc_op_set_output refuses more than PC_MAX_NUMEL elements */
	return pc_op_set_output(p, n, 0, pr->dtype, &s, err);
}

void pc_constofshape_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct constofshape_priv *pr = pc_op_priv(n);
	struct pc_tensor *y = pc_op_out(p, n, 0);

	if (pr->dtype == PC_DTYPE_FLOAT)
		for (int64_t i = 0; i < y->numel; i++)
			y->data[i] = pr->f;
	else
		for (int64_t i = 0; i < y->numel; i++)
			y->ival[i] = pr->i;
}

/* --- Range ------------------------------------------------------------------------------ */

/* Input i is a known scalar of the dtype of input 0 (float or int64). A
 * one-element 1-D tensor is taken too: some exporters write [1]. */
static int range_scalar(struct pc_plan *p, const struct pc_node *n, int i, struct pc_error *err)
{
	static const char *const names[] = {"start", "limit", "delta"};
	const struct pc_tensor *t = pc_op_in(p, n, i), *t0 = pc_op_in(p, n, 0);

	if (!t)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d (%s) is missing", i, names[i]);
	if (t->dtype != PC_DTYPE_FLOAT && t->dtype != PC_DTYPE_INT64)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d (%s) is %s; Range takes float or int64", i,
				     names[i], pc_dtype_name(t->dtype));
	if (t->dtype != t0->dtype)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d (%s) is %s and input 0 (start) is %s; they must match",
				     i, names[i], pc_dtype_name(t->dtype), pc_dtype_name(t0->dtype));
	if (!t->is_static || (t->dtype == PC_DTYPE_FLOAT ? !t->data : !t->ival))
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input %d (%s) must be known before the run: the output's length depends on it", i,
				     names[i]);
	if (t->numel != 1 || t->shape.ndim > 1)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d (%s) has %lld elements in rank %d; it must be a scalar",
				     i, names[i], (long long)t->numel, t->shape.ndim);
	return PC_OK;
}

/* ceil(diff / delta) for delta != 0 in exact integer arithmetic. */
static __int128 ceil_div(__int128 diff, __int128 delta)
{
	if (delta < 0) {
		diff = -diff;
		delta = -delta;
	}
	if (diff <= 0)
		return 0;
	return (diff + delta - 1) / delta;
}

int pc_range_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *start, *limit, *delta;
	struct pc_shape s = {.ndim = 1};
	int rc;

	for (int i = 0; i < 3; i++)
		if ((rc = range_scalar(p, n, i, err)))
			return rc;
	start = pc_op_in(p, n, 0);
	limit = pc_op_in(p, n, 1);
	delta = pc_op_in(p, n, 2);
	if (start->dtype == PC_DTYPE_INT64) {
		__int128 len;
		if (delta->ival[0] == 0)
			return pc_node_error(err, n, PC_ERR_INVALID, "input 2 (delta) is 0");
		len = ceil_div((__int128)limit->ival[0] - start->ival[0], delta->ival[0]);
		if (len > PC_MAX_NUMEL)
			return pc_node_error(err, n, PC_ERR_LIMIT, "Range(%lld, %lld, %lld) would have more than 2^40 elements",
					     (long long)start->ival[0], (long long)limit->ival[0], (long long)delta->ival[0]);
		s.dim[0] = (int64_t)len;
	} else {
		/* in double, as numpy's arange (ONNX's reference) computes it */
		double a = start->data[0], b = limit->data[0], d = delta->data[0], len;
		if (!isfinite(a) || !isfinite(b) || !isfinite(d))
			return pc_node_error(err, n, PC_ERR_INVALID, "Range(%g, %g, %g) has a value that is not finite", a,
					     b, d);
		if (d == 0.0)
			return pc_node_error(err, n, PC_ERR_INVALID, "input 2 (delta) is 0");
		len = ceil((b - a) / d);
		if (!(len <= (double)PC_MAX_NUMEL))
			return pc_node_error(err, n, PC_ERR_LIMIT, "Range(%g, %g, %g) would have more than 2^40 elements",
					     a, b, d);
		s.dim[0] = len > 0.0 ? (int64_t)len : 0;
	}
	return pc_op_set_output(p, n, 0, start->dtype, &s, err);
}

/* output[i] = start + i * delta; int64 values lie between start and limit,
 * so they cannot overflow; float ones are rounded once from double. */
void pc_range_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *start = pc_op_in(p, n, 0), *delta = pc_op_in(p, n, 2);
	struct pc_tensor *y = pc_op_out(p, n, 0);

	if (start->dtype == PC_DTYPE_INT64)
		for (int64_t i = 0; i < y->numel; i++)
			y->ival[i] = (int64_t)((__int128)start->ival[0] + (__int128)i * delta->ival[0]);
	else
		for (int64_t i = 0; i < y->numel; i++)
			y->data[i] = (float)((double)start->data[0] + (double)i * (double)delta->data[0]);
}

/* --- Trilu --------------------------------------------------------------------------------- */

struct trilu_priv {
	int upper;
};

int pc_trilu_init(struct pc_node *n, struct pc_error *err)
{
	struct trilu_priv *pr;
	int64_t upper;
	int rc;

	if ((rc = need_opset(n, 14, err)) || (rc = pc_attr_int(n, "upper", 1, &upper, err)))
		return rc;
	if (upper != 0 && upper != 1)
		return pc_node_error(err, n, PC_ERR_FORMAT, "attribute 'upper' is %lld; it must be 0 or 1",
				     (long long)upper);
	if (!(pr = alloc_priv(n, sizeof(*pr), err)))
		return err_code(err);
	pr->upper = (int)upper;
	return PC_OK;
}

int pc_trilu_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *k = pc_op_in(p, n, 1);

	if (!x)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 0 is missing");
	if (x->dtype != PC_DTYPE_FLOAT && x->dtype != PC_DTYPE_INT64 && x->dtype != PC_DTYPE_BOOL)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 0 is %s; Trilu takes float, int64 or bool",
				     pc_dtype_name(x->dtype));
	if (x->shape.ndim < 2)
		return pc_node_error(err, n, PC_ERR_SHAPE, "input 0 has rank %d; Trilu needs at least 2",
				     x->shape.ndim);
	/* k only moves the diagonal, not the shape: it may be a run-time value */
	if (k && k->dtype != PC_DTYPE_INT64)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 1 (k) is %s; it must be int64",
				     pc_dtype_name(k->dtype));
	if (k && (k->numel != 1 || k->shape.ndim > 1))
		return pc_node_error(err, n, PC_ERR_FORMAT, "input 1 (k) has %lld elements in rank %d; it must be a scalar",
				     (long long)k->numel, k->shape.ndim);
	return pc_op_set_output(p, n, 0, x->dtype, &x->shape, err);
}

/* Element (i, j) of each matrix is kept when j - i >= k (upper) or
 * j - i <= k (lower); columns [lo, hi) of row i are the kept ones. */
static void trilu_cols(int upper, int64_t k, int64_t i, int64_t rows, int64_t cols, int64_t *lo, int64_t *hi)
{
	/* k may be anything an int64 holds; beyond [-rows, cols] every row
	 * keeps all or nothing, as at the bound, and i + k cannot overflow */
	int64_t kk = k < -rows ? -rows : k > cols ? cols : k;
	int64_t edge = i + kk; /* the first kept column (upper) / the last kept (lower) */

	if (upper) {
		*lo = edge < 0 ? 0 : edge > cols ? cols : edge;
		*hi = cols;
	} else {
		*lo = 0;
		*hi = edge + 1 < 0 ? 0 : edge + 1 > cols ? cols : edge + 1;
	}
}

/* Forward (backward = 0) copies the kept triangle of X and zeroes the rest;
 * backward adds dY of the kept triangle into dX. */
static void trilu_run(struct pc_plan *p, const struct pc_node *n, int backward)
{
	const struct trilu_priv *pr = pc_op_priv(n);
	const struct pc_tensor *x = pc_op_in(p, n, 0), *kt = pc_op_in(p, n, 1);
	const struct pc_tensor *y = pc_op_out(p, n, 0);
	int r = x->shape.ndim;
	int64_t rows = x->shape.dim[r - 2], cols = x->shape.dim[r - 1], k = kt ? kt->ival[0] : 0;
	int64_t mats = rows > 0 && cols > 0 ? x->numel / (rows * cols) : 0;

	for (int64_t m = 0; m < mats; m++)
		for (int64_t i = 0; i < rows; i++) {
			int64_t lo, hi, base = (m * rows + i) * cols;
			trilu_cols(pr->upper, k, i, rows, cols, &lo, &hi);
			if (backward) {
				for (int64_t j = lo; j < hi; j++)
					x->grad[base + j] += y->grad[base + j];
			} else if (x->dtype == PC_DTYPE_FLOAT) {
				for (int64_t j = 0; j < cols; j++)
					y->data[base + j] = j >= lo && j < hi ? x->data[base + j] : 0.0f;
			} else {
				for (int64_t j = 0; j < cols; j++)
					y->ival[base + j] = j >= lo && j < hi ? x->ival[base + j] : 0;
			}
		}
}

void pc_trilu_forward(struct pc_plan *p, const struct pc_node *n)
{
	trilu_run(p, n, 0);
}

void pc_trilu_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *x = pc_op_in(p, n, 0), *y = pc_op_out(p, n, 0);

	if (x->grad && y->grad && y->dtype == PC_DTYPE_FLOAT)
		trilu_run(p, n, 1);
}
