/* ops/elementwise: Add, Sub, Mul and Div with numpy broadcasting, one
 * implementation dispatching on the node's op.
 *
 * Broadcasting is reduced to a walk over rows: axes of extent 1 are
 * dropped and neighbouring axes that broadcast the same way (neither
 * operand, only A, only B) are merged, so a same-shape op becomes one row,
 * a bias add [N,C,H,W] + [1,C,1,1] becomes N*C rows of H*W with a scalar
 * operand, and [2,1,3] + [4,1] becomes rows of 3 against a scalar. The
 * innermost merged axis is then one of three patterns (both contiguous,
 * A contiguous and B one value, or the reverse), each a plain loop the
 * compiler vectorises; the outer axes move row offsets with an odometer,
 * once per row, never per element.
 *
 * Backward walks the same rows: the gradient of an operand that is
 * contiguous along the row adds element by element; one broadcast along
 * the row adds the row's sum (accumulated in double). Visiting a row of
 * the operand several times is what sums the gradient over its broadcast
 * axes, so no workspace is needed.
 *
 * int64 operands are shape arithmetic: both must be known at prepare time,
 * and infer folds the result (as it does when both float operands are
 * constants). */
#include "../graph_int.h"

#include <stdlib.h>
#include <string.h>

/* Inner-row patterns. */
enum row_pat {
	ROW_SAME,     /* A and B contiguous */
	ROW_B_SCALAR, /* A contiguous, B one value */
	ROW_A_SCALAR, /* A one value, B contiguous */
};

struct bcast {
	int nd;				/* merged rank, >= 1 */
	int64_t dim[PC_MAX_DIMS];	/* merged extents */
	int64_t sa[PC_MAX_DIMS];	/* A's element step per merged axis; 0 = broadcast */
	int64_t sb[PC_MAX_DIMS];
	int64_t len, rows;		/* the innermost axis, and the product of the others */
	enum row_pat pat;
};

static void bcast_plan(const struct pc_shape *a, const struct pc_shape *b, const struct pc_shape *y,
		       struct bcast *bc)
{
	int r = y->ndim, nd = 0, pats[PC_MAX_DIMS];
	int64_t step_a = 1, step_b = 1;

	for (int i = 0; i < r; i++) {
		int ia = i - (r - a->ndim), ib = i - (r - b->ndim);
		int64_t d = y->dim[i], da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
		int pat = (da == 1) | (db == 1) << 1; /* bit 0: A broadcast, bit 1: B broadcast */
		if (d == 1)
			continue;
		if (nd > 0 && pats[nd - 1] == pat) {
			bc->dim[nd - 1] *= d;
		} else {
			bc->dim[nd] = d;
			pats[nd++] = pat;
		}
	}
	if (nd == 0) {
		bc->dim[0] = 1;
		pats[nd++] = 0;
	}
	for (int i = nd - 1; i >= 0; i--) {
		bc->sa[i] = (pats[i] & 1) ? 0 : step_a;
		bc->sb[i] = (pats[i] & 2) ? 0 : step_b;
		if (!(pats[i] & 1))
			step_a *= bc->dim[i];
		if (!(pats[i] & 2))
			step_b *= bc->dim[i];
	}
	bc->nd = nd;
	bc->len = bc->dim[nd - 1];
	bc->rows = 1;
	for (int i = 0; i < nd - 1; i++)
		bc->rows *= bc->dim[i];
	bc->pat = pats[nd - 1] == 2 ? ROW_B_SCALAR : pats[nd - 1] == 1 ? ROW_A_SCALAR : ROW_SAME;
}

/* Move to the next row: *oa and *ob are A's and B's element offsets. */
static inline void bcast_next(const struct bcast *bc, int64_t *idx, int64_t *oa, int64_t *ob)
{
	for (int i = bc->nd - 2; i >= 0; i--) {
		*oa += bc->sa[i];
		*ob += bc->sb[i];
		if (++idx[i] < bc->dim[i])
			return;
		*oa -= bc->sa[i] * bc->dim[i];
		*ob -= bc->sb[i] * bc->dim[i];
		idx[i] = 0;
	}
}

/* One output row; EXPR combines float x (from A) and z (from B). */
#define FWD_ROW(EXPR)                                                                                             \
	do {                                                                                                      \
		switch (pat) {                                                                                    \
		case ROW_SAME:                                                                                    \
			for (int64_t j = 0; j < len; j++) {                                                       \
				float x = a[j], z = b[j];                                                         \
				y[j] = (EXPR);                                                                    \
			}                                                                                         \
			break;                                                                                    \
		case ROW_B_SCALAR: {                                                                              \
			const float z = b[0];                                                                     \
			for (int64_t j = 0; j < len; j++) {                                                       \
				float x = a[j];                                                                   \
				y[j] = (EXPR);                                                                    \
			}                                                                                         \
			break;                                                                                    \
		}                                                                                                 \
		case ROW_A_SCALAR: {                                                                              \
			const float x = a[0];                                                                     \
			for (int64_t j = 0; j < len; j++) {                                                       \
				float z = b[j];                                                                   \
				y[j] = (EXPR);                                                                    \
			}                                                                                         \
			break;                                                                                    \
		}                                                                                                 \
		}                                                                                                 \
	} while (0)

static inline void row_block(enum pc_op op, enum row_pat pat, float *restrict y, const float *a, const float *b,
			     int64_t len)
{
	switch (op) {
	case PC_OP_ADD:
		FWD_ROW(x + z);
		break;
	case PC_OP_SUB:
		FWD_ROW(x - z);
		break;
	case PC_OP_MUL:
		FWD_ROW(x * z);
		break;
	default:
		FWD_ROW(x / z);
		break;
	}
}

/* A row in blocks that stay in L1, each followed by the fused Relu when
 * the plan asked for it (relu != NULL; see pc_plan's fuse_relu), which
 * may be computed in place (relu == y) when nothing needs y itself. */
#define ROW_BLOCK 2048

PC_HOT static void forward_row(enum pc_op op, enum row_pat pat, float *y, const float *a, const float *b,
			       int64_t len, float *relu)
{
	for (int64_t j0 = 0; j0 < len; j0 += ROW_BLOCK) {
		int64_t n = len - j0 < ROW_BLOCK ? len - j0 : ROW_BLOCK;
		row_block(op, pat, y + j0, pat == ROW_A_SCALAR ? a : a + j0, pat == ROW_B_SCALAR ? b : b + j0, n);
		if (relu)
			for (int64_t j = j0; j < j0 + n; j++)
				relu[j] = y[j] > 0.0f ? y[j] : 0.0f;
	}
}

static void binary_run(enum pc_op op, const struct bcast *bc, const float *a, const float *b, float *y,
		       float *relu)
{
	int64_t idx[PC_MAX_DIMS] = {0}, oa = 0, ob = 0;

	for (int64_t r = 0; r < bc->rows; r++) {
		forward_row(op, bc->pat, y + r * bc->len, a + oa, b + ob, bc->len, relu ? relu + r * bc->len : NULL);
		bcast_next(bc, idx, &oa, &ob);
	}
}

/* What one output element contributes to the operand X's gradient, from
 * g (dY), x (X's value) and o (the other operand's value). */
enum grad_kind {
	GK_PLUS,   /* g: Add, and Sub's A */
	GK_MINUS,  /* -g: Sub's B */
	GK_TIMES,  /* g * o: Mul */
	GK_OVER,   /* g / o: Div's A (o is B) */
	GK_DENOM,  /* -g * o / x^2: Div's B (x is B, o is A) */
};

/* One row of X's gradient. xs, os: whether X and the other operand are
 * contiguous along the row (never both broadcast). */
#define GRAD_ROW(EXPR)                                                                                            \
	do {                                                                                                      \
		if (xs && os) {                                                                                   \
			for (int64_t j = 0; j < len; j++) {                                                       \
				float gj = g[j], xj = x[j], oj = o[j];                                            \
				(void)xj;                                                                         \
				(void)oj;                                                                         \
				dx[j] += (EXPR);                                                                  \
			}                                                                                         \
		} else if (xs) {                                                                                  \
			const float oj = o[0];                                                                    \
			(void)oj;                                                                                 \
			for (int64_t j = 0; j < len; j++) {                                                       \
				float gj = g[j], xj = x[j];                                                       \
				(void)xj;                                                                         \
				dx[j] += (EXPR);                                                                  \
			}                                                                                         \
		} else {                                                                                          \
			/* four partial sums: no single add chain bounds the loop */                              \
			const float xj = x[0];                                                                    \
			double acc[4] = {0.0, 0.0, 0.0, 0.0};                                                     \
			int64_t j = 0;                                                                            \
			(void)xj;                                                                                 \
			for (; j + 4 <= len; j += 4)                                                              \
				for (int u = 0; u < 4; u++) {                                                     \
					float gj = g[j + u], oj = o[j + u];                                       \
					(void)oj;                                                                 \
					acc[u] += (EXPR);                                                         \
				}                                                                                 \
			for (; j < len; j++) {                                                                    \
				float gj = g[j], oj = o[j];                                                       \
				(void)oj;                                                                         \
				acc[0] += (EXPR);                                                                 \
			}                                                                                         \
			dx[0] += (float)((acc[0] + acc[1]) + (acc[2] + acc[3]));                                  \
		}                                                                                                 \
	} while (0)

static void grad_row(enum grad_kind kind, int xs, int os, float *restrict dx, const float *g, const float *x,
		     const float *o, int64_t len)
{
	switch (kind) {
	case GK_PLUS:
		GRAD_ROW(gj);
		break;
	case GK_MINUS:
		GRAD_ROW(-gj);
		break;
	case GK_TIMES:
		GRAD_ROW(gj * oj);
		break;
	case GK_OVER:
		GRAD_ROW(gj / oj);
		break;
	case GK_DENOM:
		GRAD_ROW(-(gj * oj) / (xj * xj));
		break;
	}
}

/* Add into dX (X is operand `which`) over every output row. */
static void grad_run(enum grad_kind kind, int which, const struct bcast *bc, const float *g, const float *a,
		     const float *b, float *dx)
{
	int64_t idx[PC_MAX_DIMS] = {0}, oa = 0, ob = 0;
	int xs, os;

	if (which == 0) {
		xs = bc->pat != ROW_A_SCALAR;
		os = bc->pat != ROW_B_SCALAR;
	} else {
		xs = bc->pat != ROW_B_SCALAR;
		os = bc->pat != ROW_A_SCALAR;
	}
	for (int64_t r = 0; r < bc->rows; r++) {
		const float *gr = g + r * bc->len;
		if (which == 0)
			grad_row(kind, xs, os, dx + oa, gr, a + oa, b + ob, bc->len);
		else
			grad_row(kind, xs, os, dx + ob, gr, b + ob, a + oa, bc->len);
		bcast_next(bc, idx, &oa, &ob);
	}
}

/* --- int64 shape arithmetic, folded at prepare time ---------------------- */

static int fold_int64(const struct pc_node *n, const struct bcast *bc, const int64_t *a, const int64_t *b,
		      int64_t *y, struct pc_error *err)
{
	int64_t idx[PC_MAX_DIMS] = {0}, oa = 0, ob = 0;
	int64_t sa = bc->sa[bc->nd - 1], sb = bc->sb[bc->nd - 1];

	for (int64_t r = 0; r < bc->rows; r++) {
		for (int64_t j = 0; j < bc->len; j++) {
			int64_t x = a[oa + j * sa], z = b[ob + j * sb], v = 0;
			int overflow = 0;
			switch (n->op) {
			case PC_OP_ADD:
				overflow = __builtin_add_overflow(x, z, &v);
				break;
			case PC_OP_SUB:
				overflow = __builtin_sub_overflow(x, z, &v);
				break;
			case PC_OP_MUL:
				overflow = __builtin_mul_overflow(x, z, &v);
				break;
			default:
				if (z == 0)
					return pc_node_error(err, n, PC_ERR_INVALID,
							     "integer division by zero in shape arithmetic");
				overflow = x == INT64_MIN && z == -1;
				v = overflow ? 0 : x / z;
				break;
			}
			if (overflow)
				return pc_node_error(err, n, PC_ERR_INVALID, "int64 overflow in shape arithmetic");
			y[r * bc->len + j] = v;
		}
		bcast_next(bc, idx, &oa, &ob);
	}
	return PC_OK;
}

/* --- the op -------------------------------------------------------------- */

/* Float constants fold up to this many elements (the plan's limit on static
 * tensors); a larger product of constants is computed at run time. */
#define FOLD_MAX ((int64_t)1 << 24)

int pc_binary_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	struct pc_shape ys;
	struct bcast bc;
	char sa[96], sb[96];

	if (!a || !b)
		return pc_node_error(err, n, PC_ERR_FORMAT, "needs two inputs");
	if (a->dtype != b->dtype)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input 0 is %s and input 1 is %s; they must match",
				     pc_dtype_name(a->dtype), pc_dtype_name(b->dtype));
	if (pc_broadcast_shape(&a->shape, &b->shape, &ys))
		return pc_node_error(err, n, PC_ERR_SHAPE, "input shapes %s and %s do not broadcast",
				     pc_shape_format(&a->shape, sa, sizeof(sa)), pc_shape_format(&b->shape, sb, sizeof(sb)));
	bcast_plan(&a->shape, &b->shape, &ys, &bc);
	if (a->dtype == PC_DTYPE_INT64) {
		int64_t *y;
		int rc;
		if ((rc = pc_op_need_static_int64(p, n, 0, err)) || (rc = pc_op_need_static_int64(p, n, 1, err)))
			return rc;
		if (!a->ival || !b->ival)
			return pc_node_error(err, n, PC_ERR_INTERNAL, "a static int64 input has no values yet");
		y = pc_op_static_int64(p, n, 0, &ys, err);
		if (!y)
			return err ? err->code : PC_ERR_INTERNAL;
		if (pc_shape_count(&ys) == 0)
			return PC_OK;
		return fold_int64(n, &bc, a->ival, b->ival, y, err);
	}
	if (a->dtype != PC_DTYPE_FLOAT)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "inputs are %s; this op takes float or int64",
				     pc_dtype_name(a->dtype));
	if (a->is_static && b->is_static && a->data && b->data && pc_shape_count(&ys) <= FOLD_MAX) {
		/* constants: compute once, here */
		float *y = pc_op_static_float(p, n, 0, &ys, err);
		if (!y)
			return err ? err->code : PC_ERR_INTERNAL;
		if (pc_shape_count(&ys) > 0)
			binary_run(n->op, &bc, a->data, b->data, y, NULL);
		return PC_OK;
	}
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &ys, err);
}

void pc_binary_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	struct pc_tensor *y = pc_op_out(p, n, 0);
	struct bcast bc;

	if (y->numel == 0)
		return;
	bcast_plan(&a->shape, &b->shape, &y->shape, &bc);
	/* a fused Relu that is all anyone reads: compute in its buffer */
	binary_run(n->op, &bc, a->data, b->data, p->relu_out && !p->keep_fused ? p->relu_out : y->data, p->relu_out);
}

void pc_binary_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1);
	const struct pc_tensor *y = pc_op_out(p, n, 0);
	enum grad_kind ka, kb;
	struct bcast bc;

	if (y->numel == 0 || !y->grad)
		return;
	switch (n->op) {
	case PC_OP_ADD:
		ka = GK_PLUS;
		kb = GK_PLUS;
		break;
	case PC_OP_SUB:
		ka = GK_PLUS;
		kb = GK_MINUS;
		break;
	case PC_OP_MUL:
		ka = GK_TIMES;
		kb = GK_TIMES;
		break;
	default:
		ka = GK_OVER;
		kb = GK_DENOM;
		break;
	}
	bcast_plan(&a->shape, &b->shape, &y->shape, &bc);
	if (a->grad)
		grad_run(ka, 0, &bc, y->grad, a->data, b->data, a->grad);
	if (b->grad)
		grad_run(kb, 1, &bc, y->grad, a->data, b->data, b->grad);
}
