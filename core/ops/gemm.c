/* ops/gemm: Gemm and MatMul, every product through pc_sgemm.
 *
 * Gemm is Y = alpha * op(A) op(B) + beta * C with C broadcast to [M, N].
 * Forward writes beta * C into Y and lets sgemm accumulate on top of it;
 * backward forms dA and dB as two more sgemm calls with beta = 1 (the op
 * contract adds into gradients) and reduces dY over C's broadcast axes.
 *
 * MatMul follows numpy: a 1-D operand gets a unit axis that the output
 * drops, and leading batch axes broadcast. When B is a single matrix the
 * batch of A folds into the rows of one sgemm (the common [N, T, K] x
 * [K, F] case, forward and backward); otherwise one sgemm per batch entry,
 * walked with an odometer over the broadcast batch axes.
 *
 * Nothing is kept per plan: the graph (and so node->priv) is shared by
 * every plan and thread, so forward and backward re-derive the few
 * integers they need from the tensor shapes, which infer has validated. */
#include "../graph_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/sgemm.h"

/* --- Gemm --------------------------------------------------------------- */

struct gemm_attrs {
	float alpha, beta;
	int trans_a, trans_b;
};

/* C's extent along rows (1 or m) and columns (1 or n); cm = 0 without C. */
struct gemm_dims {
	int m, n, k;
	int64_t cm, cn;
};

static int parse_flag(struct pc_node *n, const char *name, int *out, struct pc_error *err)
{
	int64_t v;
	int rc;

	if ((rc = pc_attr_int(n, name, 0, &v, err)))
		return rc;
	if (v != 0 && v != 1)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "attribute '%s' is %lld; it must be 0 or 1", name,
				     (long long)v);
	*out = (int)v;
	return PC_OK;
}

int pc_gemm_init(struct pc_node *n, struct pc_error *err)
{
	struct gemm_attrs *a = calloc(1, sizeof(*a));

	if (!a)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	if (pc_attr_float(n, "alpha", 1.0f, &a->alpha, err) || pc_attr_float(n, "beta", 1.0f, &a->beta, err) ||
	    parse_flag(n, "transA", &a->trans_a, err) || parse_flag(n, "transB", &a->trans_b, err)) {
		free(a);
		return err ? err->code : PC_ERR_FORMAT;
	}
	free(n->priv);
	n->priv = a;
	return PC_OK;
}

static int fits_int(int64_t v)
{
	return v >= 0 && v <= INT_MAX;
}

/* Dimensions of the product; errors (err may be NULL) when the shapes do
 * not fit Gemm. */
static int gemm_dims(struct pc_plan *p, const struct pc_node *n, struct gemm_dims *d, struct pc_error *err)
{
	const struct gemm_attrs *at = n->priv;
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1), *c = pc_op_in(p, n, 2);
	char sa[96], sb[96];
	int64_t m, k, kb, nn;

	if (a->shape.ndim != 2 || b->shape.ndim != 2)
		return pc_node_error(err, n, PC_ERR_SHAPE, "Gemm takes 2-D A and B; got A %s and B %s",
				     pc_shape_format(&a->shape, sa, sizeof(sa)),
				     pc_shape_format(&b->shape, sb, sizeof(sb)));
	m = a->shape.dim[at->trans_a ? 1 : 0];
	k = a->shape.dim[at->trans_a ? 0 : 1];
	kb = b->shape.dim[at->trans_b ? 1 : 0];
	nn = b->shape.dim[at->trans_b ? 0 : 1];
	if (k != kb)
		return pc_node_error(err, n, PC_ERR_SHAPE,
				     "inner dimensions differ: A %s (transA=%d) and B %s (transB=%d)",
				     pc_shape_format(&a->shape, sa, sizeof(sa)), at->trans_a,
				     pc_shape_format(&b->shape, sb, sizeof(sb)), at->trans_b);
	if (!fits_int(m) || !fits_int(nn) || !fits_int(k))
		return pc_node_error(err, n, PC_ERR_LIMIT, "matrix dimensions %lld x %lld x %lld exceed the BLAS range",
				     (long long)m, (long long)k, (long long)nn);
	d->m = (int)m;
	d->n = (int)nn;
	d->k = (int)k;
	d->cm = d->cn = 0;
	if (!c)
		return PC_OK;
	d->cm = c->shape.ndim == 2 ? c->shape.dim[0] : 1;
	d->cn = c->shape.ndim >= 1 ? c->shape.dim[c->shape.ndim - 1] : 1;
	if (c->shape.ndim > 2 || (d->cm != 1 && d->cm != m) || (d->cn != 1 && d->cn != nn))
		return pc_node_error(err, n, PC_ERR_SHAPE, "C of shape %s does not broadcast to [%lld,%lld]",
				     pc_shape_format(&c->shape, sa, sizeof(sa)), (long long)m, (long long)nn);
	return PC_OK;
}

int pc_gemm_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	struct gemm_dims d;
	struct pc_shape y = {.ndim = 2};
	int rc;

	if ((rc = pc_op_need_float(p, n, 0, err)) || (rc = pc_op_need_float(p, n, 1, err)))
		return rc;
	if (pc_op_in(p, n, 2) && (rc = pc_op_need_float(p, n, 2, err)))
		return rc;
	if ((rc = gemm_dims(p, n, &d, err)))
		return rc;
	y.dim[0] = d.m;
	y.dim[1] = d.n;
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &y, err);
}

void pc_gemm_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct gemm_attrs *at = n->priv;
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1), *c = pc_op_in(p, n, 2);
	float *y = pc_op_out(p, n, 0)->data;
	struct gemm_dims d;
	float beta = 0.0f;

	if (gemm_dims(p, n, &d, NULL))
		return;
	if (c && at->beta != 0.0f) {
		/* Y = beta * C, broadcast row by row; sgemm then adds the product */
		for (int i = 0; i < d.m; i++) {
			const float *crow = c->data + (d.cm == 1 ? 0 : (int64_t)i * d.cn);
			float *yrow = y + (int64_t)i * d.n;
			if (d.cn == 1) {
				float v = at->beta * crow[0];
				for (int j = 0; j < d.n; j++)
					yrow[j] = v;
			} else {
				for (int j = 0; j < d.n; j++)
					yrow[j] = at->beta * crow[j];
			}
		}
		beta = 1.0f;
	}
	if (d.k == 0) {
		if (beta == 0.0f)
			memset(y, 0, (size_t)d.m * (size_t)d.n * sizeof(float));
		return;
	}
	pc_sgemm(at->trans_a, at->trans_b, d.m, d.n, d.k, at->alpha, a->data, at->trans_a ? d.m : d.k, b->data,
		 at->trans_b ? d.k : d.n, beta, y, d.n);
}

void pc_gemm_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct gemm_attrs *at = n->priv;
	const struct pc_tensor *a = pc_op_in(p, n, 0), *b = pc_op_in(p, n, 1), *c = pc_op_in(p, n, 2);
	const float *dy = pc_op_out(p, n, 0)->grad;
	struct gemm_dims d;
	int lda, ldb;

	if (gemm_dims(p, n, &d, NULL) || d.m == 0 || d.n == 0)
		return;
	lda = at->trans_a ? d.m : d.k;
	ldb = at->trans_b ? d.k : d.n;
	if (a->grad && d.k > 0) {
		/* dop(A) = alpha dY op(B)^T; stored transposed when transA */
		if (!at->trans_a)
			pc_sgemm(0, !at->trans_b, d.m, d.k, d.n, at->alpha, dy, d.n, b->data, ldb, 1.0f, a->grad, d.k);
		else
			pc_sgemm(at->trans_b, 1, d.k, d.m, d.n, at->alpha, b->data, ldb, dy, d.n, 1.0f, a->grad, d.m);
	}
	if (b->grad && d.k > 0) {
		/* dop(B) = alpha op(A)^T dY; stored transposed when transB */
		if (!at->trans_b)
			pc_sgemm(!at->trans_a, 0, d.k, d.n, d.m, at->alpha, a->data, lda, dy, d.n, 1.0f, b->grad, d.n);
		else
			pc_sgemm(1, at->trans_a, d.n, d.k, d.m, at->alpha, dy, d.n, a->data, lda, 1.0f, b->grad, d.k);
	}
	if (c && c->grad && at->beta != 0.0f) {
		for (int i = 0; i < d.m; i++) {
			float *dc = c->grad + (d.cm == 1 ? 0 : (int64_t)i * d.cn);
			const float *g = dy + (int64_t)i * d.n;
			if (d.cn == 1) {
				double s = 0.0;
				for (int j = 0; j < d.n; j++)
					s += g[j];
				dc[0] += (float)(at->beta * s);
			} else {
				for (int j = 0; j < d.n; j++)
					dc[j] += at->beta * g[j];
			}
		}
	}
}

/* --- MatMul ------------------------------------------------------------- */

struct mm_dims {
	int m, n, k;
	int nb;			     /* rank of the broadcast batch */
	int64_t batch[PC_MAX_DIMS];  /* its extents */
	int64_t sa[PC_MAX_DIMS];     /* A's step per batch axis, in matrices (0 = broadcast) */
	int64_t sb[PC_MAX_DIMS];
	int64_t count;		     /* matrices in the batch */
	int fold;		     /* B is one matrix: A's batch folds into rows */
	struct pc_shape out;
};

static int mm_dims(struct pc_plan *p, const struct pc_node *n, struct mm_dims *d, struct pc_error *err)
{
	const struct pc_shape *a = &pc_op_in(p, n, 0)->shape, *b = &pc_op_in(p, n, 1)->shape;
	int ra = a->ndim, rb = b->ndim, na, nbb;
	int64_t m, k, kb, nn, s_a = 1, s_b = 1, bcount = 1;
	char sa[96], sb[96];

	if (ra < 1 || rb < 1)
		return pc_node_error(err, n, PC_ERR_SHAPE, "MatMul takes operands of rank 1 or more; got %s and %s",
				     pc_shape_format(a, sa, sizeof(sa)), pc_shape_format(b, sb, sizeof(sb)));
	m = ra == 1 ? 1 : a->dim[ra - 2];
	k = a->dim[ra - 1];
	kb = rb == 1 ? b->dim[0] : b->dim[rb - 2];
	nn = rb == 1 ? 1 : b->dim[rb - 1];
	if (k != kb)
		return pc_node_error(err, n, PC_ERR_SHAPE, "inner dimensions differ: %s times %s",
				     pc_shape_format(a, sa, sizeof(sa)), pc_shape_format(b, sb, sizeof(sb)));
	if (!fits_int(m) || !fits_int(nn) || !fits_int(k))
		return pc_node_error(err, n, PC_ERR_LIMIT, "matrix dimensions %lld x %lld x %lld exceed the BLAS range",
				     (long long)m, (long long)k, (long long)nn);
	d->m = (int)m;
	d->n = (int)nn;
	d->k = (int)k;
	na = ra > 2 ? ra - 2 : 0;
	nbb = rb > 2 ? rb - 2 : 0;
	d->nb = na > nbb ? na : nbb;
	d->count = 1;
	for (int i = d->nb - 1; i >= 0; i--) {
		int ia = i - (d->nb - na), ib = i - (d->nb - nbb);
		int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
		if (da != db && da != 1 && db != 1)
			return pc_node_error(err, n, PC_ERR_SHAPE, "batch dimensions of %s and %s do not broadcast",
					     pc_shape_format(a, sa, sizeof(sa)), pc_shape_format(b, sb, sizeof(sb)));
		d->batch[i] = da == 1 ? db : da;
		d->sa[i] = da == 1 ? 0 : s_a;
		d->sb[i] = db == 1 ? 0 : s_b;
		s_a *= da;
		s_b *= db;
		bcount *= db;
		d->count *= d->batch[i];
	}
	d->fold = bcount == 1 && d->count * m <= INT_MAX;
	d->out.ndim = d->nb;
	for (int i = 0; i < d->nb; i++)
		d->out.dim[i] = d->batch[i];
	if (ra > 1)
		d->out.dim[d->out.ndim++] = m;
	if (rb > 1)
		d->out.dim[d->out.ndim++] = nn;
	return PC_OK;
}

int pc_matmul_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	struct mm_dims d;
	int rc;

	if ((rc = pc_op_need_float(p, n, 0, err)) || (rc = pc_op_need_float(p, n, 1, err)) ||
	    (rc = mm_dims(p, n, &d, err)))
		return rc;
	return pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &d.out, err);
}

/* Advance the batch odometer; *oa and *ob are A's and B's matrix indices. */
static void mm_next(const struct mm_dims *d, int64_t *idx, int64_t *oa, int64_t *ob)
{
	for (int i = d->nb - 1; i >= 0; i--) {
		*oa += d->sa[i];
		*ob += d->sb[i];
		if (++idx[i] < d->batch[i])
			return;
		*oa -= d->sa[i] * d->batch[i];
		*ob -= d->sb[i] * d->batch[i];
		idx[i] = 0;
	}
}

void pc_matmul_forward(struct pc_plan *p, const struct pc_node *n)
{
	const float *a = pc_op_in(p, n, 0)->data, *b = pc_op_in(p, n, 1)->data;
	float *y = pc_op_out(p, n, 0)->data;
	int64_t idx[PC_MAX_DIMS] = {0}, oa = 0, ob = 0, sza, szb, szy;
	struct mm_dims d;

	if (mm_dims(p, n, &d, NULL))
		return;
	if (d.k == 0) {
		memset(y, 0, (size_t)(d.count * d.m * d.n) * sizeof(float));
		return;
	}
	if (d.fold) {
		pc_sgemm(0, 0, (int)(d.count * d.m), d.n, d.k, 1.0f, a, d.k, b, d.n, 0.0f, y, d.n);
		return;
	}
	sza = (int64_t)d.m * d.k;
	szb = (int64_t)d.k * d.n;
	szy = (int64_t)d.m * d.n;
	for (int64_t t = 0; t < d.count; t++) {
		pc_sgemm(0, 0, d.m, d.n, d.k, 1.0f, a + oa * sza, d.k, b + ob * szb, d.n, 0.0f, y + t * szy, d.n);
		mm_next(&d, idx, &oa, &ob);
	}
}

void pc_matmul_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *ta = pc_op_in(p, n, 0), *tb = pc_op_in(p, n, 1);
	const float *dy = pc_op_out(p, n, 0)->grad;
	int64_t idx[PC_MAX_DIMS] = {0}, oa = 0, ob = 0, sza, szb, szy;
	struct mm_dims d;

	if (mm_dims(p, n, &d, NULL) || d.k == 0 || d.m == 0 || d.n == 0)
		return;
	if (d.fold) {
		int rows = (int)(d.count * d.m);
		if (ta->grad)
			pc_sgemm(0, 1, rows, d.k, d.n, 1.0f, dy, d.n, tb->data, d.n, 1.0f, ta->grad, d.k);
		if (tb->grad)
			pc_sgemm(1, 0, d.k, d.n, rows, 1.0f, ta->data, d.k, dy, d.n, 1.0f, tb->grad, d.n);
		return;
	}
	sza = (int64_t)d.m * d.k;
	szb = (int64_t)d.k * d.n;
	szy = (int64_t)d.m * d.n;
	/* a broadcast operand receives the sum over the batch: beta = 1 */
	for (int64_t t = 0; t < d.count; t++) {
		const float *g = dy + t * szy;
		if (ta->grad)
			pc_sgemm(0, 1, d.m, d.k, d.n, 1.0f, g, d.n, tb->data + ob * szb, d.n, 1.0f, ta->grad + oa * sza,
				 d.k);
		if (tb->grad)
			pc_sgemm(1, 0, d.k, d.n, d.m, 1.0f, ta->data + oa * sza, d.k, g, d.n, 1.0f, tb->grad + ob * szb,
				 d.n);
		mm_next(&d, idx, &oa, &ob);
	}
}
