/* Tests of the dense op families: Gemm and MatMul (gemm.c), the broadcasting
 * binary ops (elementwise.c) and the activations (activation.c), plus the
 * agreement of pc_sgemm with its plain C oracle.
 *
 * Each op runs inside a small graph built with the builder API; values are
 * compared with naive loops written here (index arithmetic per element, the
 * slow obvious way), gradients with central finite differences (gc_check)
 * on the input and on every parameter. Graphs whose op output is not 2-D
 * end in Flatten, since a graph's output must be [N, classes]. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "paracorr/plan.h"
#include "paracorr/sgemm.h"
#include "test.h"

/* --- graph building ------------------------------------------------------- */

static struct pc_shape shape_of(int ndim, const int64_t *dims)
{
	struct pc_shape s = {.ndim = ndim};

	for (int i = 0; i < ndim; i++)
		s.dim[i] = dims[i];
	return s;
}

#define SHP(...) shape_of((int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR_SHAPE ((struct pc_shape){.ndim = 0})

#define MAXP 6
#define MAXN 6

struct fparam {
	const char *name;
	struct pc_shape shape;
	const float *data;
};

struct iparam {
	const char *name;
	struct pc_shape shape;
	const int64_t *data;
};

/* Lists end at the first NULL name / op / input. */
struct nspec {
	const char *op, *name;
	const char *in[4]; /* "" = omitted optional input */
	const char *out;
	struct pc_attr attr[4];
};

struct gspec {
	int opset;
	struct pc_shape x; /* the input "x"; dim 0 = -1 for a dynamic batch */
	struct fparam p[MAXP];
	struct iparam ip[MAXP];
	struct nspec node[MAXN];
	const char *output;
};

/* A finished graph, or NULL with err set. */
static struct pc_graph *build(const struct gspec *s, struct pc_error *err)
{
	struct pc_graph *g = pc_graph_new(s->opset ? s->opset : 13, err);

	if (!g)
		return NULL;
	if (pc_graph_add_input(g, "x", &s->x, err))
		goto fail;
	for (int i = 0; i < MAXP && s->p[i].name; i++)
		if (pc_graph_add_float(g, s->p[i].name, &s->p[i].shape, s->p[i].data, err))
			goto fail;
	for (int i = 0; i < MAXP && s->ip[i].name; i++)
		if (pc_graph_add_int64(g, s->ip[i].name, &s->ip[i].shape, s->ip[i].data, err))
			goto fail;
	for (int k = 0; k < MAXN && s->node[k].op; k++) {
		const struct nspec *n = &s->node[k];
		const char *outs[1] = {n->out};
		int n_in = 0, n_attr = 0;
		while (n_in < 4 && n->in[n_in])
			n_in++;
		while (n_attr < 4 && n->attr[n_attr].name)
			n_attr++;
		if (pc_graph_add_node(g, n->op, n->name, n_in, n->in, 1, outs, n_attr, n->attr, err))
			goto fail;
	}
	if (pc_graph_add_output(g, s->output, err) || pc_graph_finish(g, err))
		goto fail;
	return g;
fail:
	pc_graph_free(g);
	return NULL;
}

#define REQUIRE_GRAPH(g, spec, err)                                                                               \
	do {                                                                                                      \
		char msg_[800];                                                                                   \
		(g) = build((spec), &(err));                                                                      \
		if (!(g)) {                                                                                       \
			pc_test_fail(t, __FILE__, __LINE__, "build: %s", pc_error_format(&(err), msg_, sizeof(msg_))); \
			return;                                                                                   \
		}                                                                                                 \
	} while (0)

/* Building must fail at finish with `code` and an error naming `node`. */
static void expect_build_error(struct pc_test *t, const struct gspec *s, enum pc_status code, const char *node)
{
	struct pc_error err = {0};
	struct pc_graph *g = build(s, &err);
	char msg[800];

	pc_error_format(&err, msg, sizeof(msg));
	CHECK_MSG(g == NULL, "graph built; expected %s", pc_status_name(code));
	CHECK_MSG(err.code == code, "expected %s, got %s: %s", pc_status_name(code), pc_status_name(err.code), msg);
	CHECK_MSG(strstr(err.where, node) != NULL, "error '%s' does not name node '%s'", msg, node);
	pc_graph_free(g);
}

/* Forward at `batch` with input x; returns the plan (output readable). */
static struct pc_plan *forward(struct pc_test *t, const struct pc_graph *g, int batch, const float *x)
{
	struct pc_error err = {0};
	struct pc_plan *p = pc_plan_new(g, batch, 0, &err);
	char msg[800];

	if (!p) {
		pc_test_fail(t, __FILE__, __LINE__, "plan: %s", pc_error_format(&err, msg, sizeof(msg)));
		return NULL;
	}
	memcpy(pc_plan_input(p), x, (size_t)(batch * pc_plan_sample_numel(p)) * sizeof(float));
	pc_plan_forward(p);
	return p;
}

static void check_output(struct pc_test *t, const struct pc_plan *p, const float *want, int64_t n, double atol,
			 double rtol, const char *what)
{
	const float *got = pc_plan_output(p);
	int bad = 0;

	CHECK_INT((int64_t)pc_plan_batch(p) * pc_plan_classes(p), n);
	for (int64_t i = 0; i < n; i++)
		if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs((double)want[i])) && bad++ < 5)
			pc_test_fail(t, __FILE__, __LINE__, "%s: out[%lld] = %.9g, expected %.9g", what, (long long)i,
				     (double)got[i], (double)want[i]);
}

static int64_t numel_of(const struct pc_shape *s)
{
	int64_t n = 1;

	for (int i = 0; i < s->ndim; i++)
		n *= s->dim[i];
	return n;
}

/* The input shape at a given batch. */
static struct pc_shape at_batch(struct pc_shape s, int batch)
{
	if (s.ndim > 0 && s.dim[0] == -1)
		s.dim[0] = batch;
	return s;
}

static const struct gc_opts GC_DEFAULT = {
	.batch = 3, .eps = 1e-2, .atol = 1e-3, .rtol = 1e-2, .samples = 64, .seed = 11, .check_input = 1};

/* --- naive references ------------------------------------------------------- */

/* Offset into a tensor of shape s of the output index idx (rank r), numpy
 * broadcasting: s aligns to the right, unit axes repeat. */
static int64_t bcast_offset(const struct pc_shape *s, const int64_t *idx, int r)
{
	int64_t off = 0;

	for (int i = 0; i < s->ndim; i++) {
		int64_t d = s->dim[i];
		off = off * d + (d == 1 ? 0 : idx[i + r - s->ndim]);
	}
	return off;
}

static int next_index(int64_t *idx, const int64_t *dim, int r)
{
	for (int i = r - 1; i >= 0; i--) {
		if (++idx[i] < dim[i])
			return 1;
		idx[i] = 0;
	}
	return 0;
}

static struct pc_shape ref_bcast_shape(const struct pc_shape *a, const struct pc_shape *b)
{
	struct pc_shape y = {.ndim = a->ndim > b->ndim ? a->ndim : b->ndim};

	for (int i = 0; i < y.ndim; i++) {
		int ia = i - (y.ndim - a->ndim), ib = i - (y.ndim - b->ndim);
		int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
		y.dim[i] = da > db ? da : db;
	}
	return y;
}

static float ref_op(const char *op, float x, float z)
{
	if (!strcmp(op, "Add"))
		return x + z;
	if (!strcmp(op, "Sub"))
		return x - z;
	if (!strcmp(op, "Mul"))
		return x * z;
	return x / z;
}

static void ref_binary(const char *op, const float *a, const struct pc_shape *as, const float *b,
		       const struct pc_shape *bs, float *y)
{
	struct pc_shape ys = ref_bcast_shape(as, bs);
	int64_t idx[PC_MAX_DIMS] = {0}, k = 0;

	do
		y[k++] = ref_op(op, a[bcast_offset(as, idx, ys.ndim)], b[bcast_offset(bs, idx, ys.ndim)]);
	while (next_index(idx, ys.dim, ys.ndim));
}

/* numpy matmul, by the definition. */
static void ref_matmul(const float *a, const struct pc_shape *as, const float *b, const struct pc_shape *bs, float *y)
{
	struct pc_shape pa = *as, pb = *bs, ba = {0}, bb = {0}, bo;
	int64_t idx[PC_MAX_DIMS] = {0}, m, n, k, out = 0;

	if (pa.ndim == 1) {
		pa.dim[1] = pa.dim[0];
		pa.dim[0] = 1;
		pa.ndim = 2;
	}
	if (pb.ndim == 1) {
		pb.dim[1] = 1;
		pb.ndim = 2;
	}
	m = pa.dim[pa.ndim - 2];
	k = pa.dim[pa.ndim - 1];
	n = pb.dim[pb.ndim - 1];
	ba.ndim = pa.ndim - 2;
	bb.ndim = pb.ndim - 2;
	memcpy(ba.dim, pa.dim, sizeof(int64_t) * (size_t)ba.ndim);
	memcpy(bb.dim, pb.dim, sizeof(int64_t) * (size_t)bb.ndim);
	bo = ref_bcast_shape(&ba, &bb);
	do {
		const float *am = a + bcast_offset(&ba, idx, bo.ndim) * m * k;
		const float *bm = b + bcast_offset(&bb, idx, bo.ndim) * k * n;
		for (int64_t i = 0; i < m; i++)
			for (int64_t j = 0; j < n; j++) {
				double s = 0;
				for (int64_t q = 0; q < k; q++)
					s += (double)am[i * k + q] * bm[q * n + j];
				y[out++] = (float)s;
			}
	} while (next_index(idx, bo.dim, bo.ndim));
}

/* --- pc_sgemm against its oracle --------------------------------------------- */

TEST(ops_dense_sgemm_matches_ref)
{
	static const int sizes[][3] = {{7, 5, 9}, {33, 47, 65}, {1, 13, 3}};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
		for (int ta = 0; ta < 2; ta++)
			for (int tb = 0; tb < 2; tb++) {
				/* padded leading dimensions: rows longer than what is read */
				int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
				int ra = ta ? k : m, rb = tb ? n : k;
				float *a = malloc(sizeof(float) * (size_t)(ra * lda));
				float *b = malloc(sizeof(float) * (size_t)(rb * ldb));
				float *c1 = malloc(sizeof(float) * (size_t)(m * ldc));
				float *c2 = malloc(sizeof(float) * (size_t)(m * ldc));
				REQUIRE(a && b && c1 && c2);
				gc_fill(a, ra * lda, 1 + s, -1, 1);
				gc_fill(b, rb * ldb, 2 + s, -1, 1);
				gc_fill(c1, m * ldc, 3 + s, -1, 1);
				memcpy(c2, c1, sizeof(float) * (size_t)(m * ldc));
				pc_sgemm(ta, tb, m, n, k, 1.3f, a, lda, b, ldb, 0.7f, c1, ldc);
				pc_sgemm_ref(ta, tb, m, n, k, 1.3f, a, lda, b, ldb, 0.7f, c2, ldc);
				for (int i = 0; i < m; i++)
					for (int j = 0; j < ldc; j++) {
						/* padding columns of C must be left alone */
						if (j >= n)
							CHECK(c1[i * ldc + j] == c2[i * ldc + j]);
						else
							CHECK_CLOSE(c1[i * ldc + j], c2[i * ldc + j], 1e-5, 1e-5);
					}
				free(a);
				free(b);
				free(c1);
				free(c2);
			}
	}
}

/* --- Gemm -------------------------------------------------------------------- */

TEST(ops_gemm_linear)
{
	/* y = x W^T + b: the Linear layer; the weight is B with transB = 1 */
	float w[12], bias[3], x[8], want[6];
	struct gspec s = {
		.x = SHP(-1, 4),
		.p = {{"W", SHP(3, 4), w}, {"b", SHP(3), bias}},
		.node = {{"Gemm", "fc", {"x", "W", "b"}, "y", {{.name = "transB", .type = PC_ATTR_INT, .i = 1}}}},
		.output = "y",
	};
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_plan *p;
	struct gc_opts o = GC_DEFAULT;

	gc_fill(w, 12, 1, -1, 1);
	gc_fill(bias, 3, 2, -1, 1);
	gc_fill(x, 8, 3, -1, 1);
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 3; j++) {
			double acc = bias[j];
			for (int q = 0; q < 4; q++)
				acc += (double)x[i * 4 + q] * w[j * 4 + q];
			want[i * 3 + j] = (float)acc;
		}
	REQUIRE_GRAPH(g, &s, err);
	p = forward(t, g, 2, x);
	if (p)
		check_output(t, p, want, 6, 1e-6, 1e-5, "linear");
	pc_plan_free(p);
	/* the weight gradient must be exact: tight tolerances, every element */
	o.eps = 1e-2;
	o.atol = 2e-4;
	o.rtol = 2e-3;
	CHECK(gc_check(t, g, &o) == 12 + 3 + 12);
	o.batch = 1;
	CHECK(gc_check(t, g, &o) > 0);
	pc_graph_free(g);
}

/* Every transA/transB combination with alpha, beta and each form of C. A is
 * the input (transposed first when transA, so the batch stays M); the
 * batch-sized forms of C are computed from the input (MatMul with a weight),
 * the others are parameters of their own shape. */
TEST(ops_gemm_trans_alpha_beta_bias_forms)
{
	enum { M = 3, K = 4, N = 5 };
	static const int64_t perm10[2] = {1, 0};
	static const char *const forms[] = {"none", "scalar", "[N]", "[1,N]", "[M,1]", "[M,N]"};
	float bdata[K * N], cdata[N], pcw[K * N], x[M * K], want[M * N];

	gc_fill(bdata, K * N, 21, -1, 1);
	gc_fill(cdata, N, 22, -1, 1);
	gc_fill(pcw, K * N, 23, -1, 1);
	gc_fill(x, M * K, 24, -1, 1);
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++)
			for (int f = 0; f < 6; f++) {
				struct gspec s = {.x = SHP(-1, K), .output = "y"};
				struct pc_error err = {0};
				struct pc_graph *g;
				struct pc_plan *p;
				struct gc_opts o = GC_DEFAULT;
				float cfull[M * N];
				int k = 0, np = 0;
				char what[64];

				snprintf(what, sizeof(what), "transA=%d transB=%d C %s", ta, tb, forms[f]);
				s.p[np++] = (struct fparam){"B", tb ? SHP(N, K) : SHP(K, N), bdata};
				if (ta)
					s.node[k++] = (struct nspec){
						"Transpose", "tr", {"x"}, "xt",
						{{.name = "perm", .type = PC_ATTR_INTS, .n = 2, .ints = perm10}}};
				if (f == 1)
					s.p[np++] = (struct fparam){"C", SCALAR_SHAPE, cdata};
				else if (f == 2)
					s.p[np++] = (struct fparam){"C", SHP(N), cdata};
				else if (f == 3)
					s.p[np++] = (struct fparam){"C", SHP(1, N), cdata};
				else if (f == 4 || f == 5) {
					s.p[np++] = (struct fparam){"Pc", f == 4 ? SHP(K, 1) : SHP(K, N), pcw};
					s.node[k++] = (struct nspec){.op = "MatMul", .name = "mc", .in = {"x", "Pc"}, .out = "C"};
				}
				s.node[k++] = (struct nspec){"Gemm", "gemm0", {ta ? "xt" : "x", "B", f ? "C" : NULL}, "y",
							     {{.name = "alpha", .type = PC_ATTR_FLOAT, .f = 0.7f},
							      {.name = "beta", .type = PC_ATTR_FLOAT, .f = 1.3f},
							      {.name = "transA", .type = PC_ATTR_INT, .i = ta},
							      {.name = "transB", .type = PC_ATTR_INT, .i = tb}}};
				{
					const float alpha = 0.7f, beta = 1.3f;
					for (int i = 0; i < M; i++)
						for (int j = 0; j < N; j++) {
							double c = 0;
							if (f == 1)
								c = cdata[0];
							else if (f == 2 || f == 3)
								c = cdata[j];
							else if (f == 4 || f == 5) {
								int w = f == 4 ? 1 : N;
								for (int q = 0; q < K; q++)
									c += (double)x[i * K + q] * pcw[q * w + (f == 4 ? 0 : j)];
							}
							cfull[i * N + j] = (float)c;
						}
					for (int i = 0; i < M; i++)
						for (int j = 0; j < N; j++) {
							double acc = 0;
							for (int q = 0; q < K; q++)
								acc += (double)x[i * K + q] *
								       (tb ? bdata[j * K + q] : bdata[q * N + j]);
							want[i * N + j] = (float)(alpha * acc + (f ? beta * cfull[i * N + j] : 0));
						}
				}
				g = build(&s, &err);
				if (!g) {
					char msg[800];
					pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what,
						     pc_error_format(&err, msg, sizeof(msg)));
					continue;
				}
				p = forward(t, g, M, x);
				if (p)
					check_output(t, p, want, M * N, 1e-5, 1e-5, what);
				pc_plan_free(p);
				o.batch = M;
				CHECK_MSG(gc_check(t, g, &o) > 0, "%s: nothing checked", what);
				pc_graph_free(g);
			}
}

TEST(ops_gemm_rejects_bad_shapes)
{
	float w[12] = {0}, c[12] = {0};
	struct gspec rank3 = {
		.x = SHP(-1, 2, 3),
		.p = {{"W", SHP(3, 4), w}},
		.node = {{"Gemm", "gemm3d", {"x", "W"}, "y"}},
		.output = "y",
	};
	struct gspec inner = {
		.x = SHP(-1, 5),
		.p = {{"W", SHP(3, 4), w}},
		.node = {{"Gemm", "gemm_k", {"x", "W"}, "y", {{.name = "transB", .type = PC_ATTR_INT, .i = 1}}}},
		.output = "y",
	};
	struct gspec badc = {
		.x = SHP(-1, 4),
		.p = {{"W", SHP(4, 3), w}, {"C", SHP(3, 3), c}},
		.node = {{"Gemm", "gemm_c", {"x", "W", "C"}, "y"}},
		.output = "y",
	};
	struct gspec flag = {
		.x = SHP(-1, 4),
		.p = {{"W", SHP(4, 3), w}},
		.node = {{"Gemm", "gemm_t", {"x", "W"}, "y", {{.name = "transA", .type = PC_ATTR_INT, .i = 2}}}},
		.output = "y",
	};

	expect_build_error(t, &rank3, PC_ERR_SHAPE, "gemm3d");
	expect_build_error(t, &inner, PC_ERR_SHAPE, "gemm_k");
	/* C [3,3] against Y [2,3] at the load-time check (batch 2) */
	expect_build_error(t, &badc, PC_ERR_SHAPE, "gemm_c");
	expect_build_error(t, &flag, PC_ERR_UNSUPPORTED, "gemm_t");
}

/* --- MatMul ------------------------------------------------------------------ */

struct mm_case {
	const char *what;
	struct pc_shape x, w; /* x has a dynamic batch */
	int w_first;	      /* MatMul(W, x) instead of MatMul(x, W) */
	int flatten;
};

TEST(ops_matmul_values_and_grad)
{
	static const struct mm_case cases[] = {
		{"2-D", {2, {-1, 4}}, {2, {4, 3}}, 0, 0},
		{"batched x matrix (folded)", {3, {-1, 3, 4}}, {2, {4, 5}}, 0, 1},
		{"both batches broadcast", {4, {-1, 1, 3, 4}}, {3, {2, 4, 5}}, 0, 1},
		{"weight batch, input broadcast", {4, {-1, 1, 4, 5}}, {3, {2, 3, 4}}, 1, 1},
		{"1-D times batched", {3, {-1, 4, 3}}, {1, {4}}, 1, 0},
		{"batched times 1-D", {3, {-1, 3, 4}}, {1, {4}}, 0, 0},
	};
	const int batch = 2;

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct mm_case *mc = &cases[c];
		float w[64], x[256], want[256];
		struct pc_shape xs = at_batch(mc->x, batch);
		struct gspec s = {.x = mc->x, .p = {{"W", mc->w, w}}, .output = mc->flatten ? "out" : "y"};
		struct pc_error err = {0};
		struct pc_graph *g;
		struct pc_plan *p;
		struct gc_opts o = GC_DEFAULT;
		char msg[800];

		s.node[0] = (struct nspec){
			.op = "MatMul", .name = "mm", .in = {mc->w_first ? "W" : "x", mc->w_first ? "x" : "W"}, .out = "y"};
		if (mc->flatten)
			s.node[1] = (struct nspec){
				"Flatten", "flat", {"y"}, "out", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}};
		gc_fill(w, numel_of(&mc->w), 31 + c, -1, 1);
		gc_fill(x, numel_of(&xs), 41 + c, -1, 1);
		if (mc->w_first)
			ref_matmul(w, &mc->w, x, &xs, want);
		else
			ref_matmul(x, &xs, w, &mc->w, want);
		g = build(&s, &err);
		if (!g) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", mc->what, pc_error_format(&err, msg, sizeof(msg)));
			continue;
		}
		p = forward(t, g, batch, x);
		if (p)
			check_output(t, p, want, (int64_t)batch * pc_plan_classes(p), 1e-5, 1e-5, mc->what);
		pc_plan_free(p);
		o.batch = batch;
		CHECK_MSG(gc_check(t, g, &o) > 0, "%s: nothing checked", mc->what);
		pc_graph_free(g);
	}
}

TEST(ops_matmul_rejects_bad_shapes)
{
	float w[60] = {0};
	struct gspec inner = {
		.x = SHP(-1, 4),
		.p = {{"W", SHP(5, 3), w}},
		.node = {{"MatMul", "mm_k", {"x", "W"}, "y"}},
		.output = "y",
	};
	struct gspec batch = {
		.x = SHP(-1, 2, 3, 4),
		.p = {{"W", SHP(3, 4, 5), w}},
		.node = {{"MatMul", "mm_b", {"x", "W"}, "y"},
			 {"Flatten", "flat", {"y"}, "out", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}}},
		.output = "out",
	};
	struct gspec scalar = {
		.x = SHP(-1, 4),
		.p = {{"W", SCALAR_SHAPE, w}},
		.node = {{"MatMul", "mm_s", {"x", "W"}, "y"}},
		.output = "y",
	};

	expect_build_error(t, &inner, PC_ERR_SHAPE, "mm_k");
	expect_build_error(t, &batch, PC_ERR_SHAPE, "mm_b");
	expect_build_error(t, &scalar, PC_ERR_SHAPE, "mm_s");
}

/* --- Add, Sub, Mul, Div -------------------------------------------------------- */

struct bin_case {
	const char *what;
	struct pc_shape x, p;
	int p_first; /* op(P, x) instead of op(x, P) */
	int batch;
};

TEST(ops_binary_broadcast_values_and_grad)
{
	static const char *const ops[] = {"Add", "Sub", "Mul", "Div"};
	static const struct bin_case cases[] = {
		{"same shape", {2, {-1, 5}}, {2, {1, 5}}, 0, 1},
		{"row broadcast", {2, {-1, 5}}, {2, {1, 5}}, 0, 3},
		{"scalar", {3, {-1, 2, 3}}, {0, {0}}, 0, 2},
		{"scalar first", {3, {-1, 2, 3}}, {0, {0}}, 1, 2},
		{"[N,C] + [C]", {2, {-1, 4}}, {1, {4}}, 0, 3},
		{"bias [1,C,1,1]", {4, {-1, 3, 2, 2}}, {4, {1, 3, 1, 1}}, 0, 2},
		{"bias [C,1,1]", {4, {-1, 3, 2, 2}}, {3, {3, 1, 1}}, 0, 2},
		{"bias first", {4, {-1, 3, 2, 2}}, {3, {3, 1, 1}}, 1, 2},
		{"[2,1,3] + [4,1]", {3, {-1, 1, 3}}, {2, {4, 1}}, 0, 2},
		{"[4,1] + [2,1,3]", {3, {-1, 1, 3}}, {2, {4, 1}}, 1, 2},
		{"[N,4,1] + [1,3]", {3, {-1, 4, 1}}, {2, {1, 3}}, 0, 2},
		{"[N,1,3,1] + [2,1,4]", {4, {-1, 1, 3, 1}}, {3, {2, 1, 4}}, 0, 2},
	};

	for (size_t o_ = 0; o_ < 4; o_++)
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			const struct bin_case *bc = &cases[c];
			int div = !strcmp(ops[o_], "Div");
			float pd[64], x[256], want[256];
			struct pc_shape xs = at_batch(bc->x, bc->batch), ys = ref_bcast_shape(&xs, &bc->p);
			int flat = ys.ndim != 2;
			struct gspec s = {.x = bc->x, .p = {{"P", bc->p, pd}}, .output = flat ? "out" : "y"};
			struct pc_error err = {0};
			struct pc_graph *g;
			struct pc_plan *p;
			struct gc_opts o = GC_DEFAULT;
			char what[96], msg[800];

			snprintf(what, sizeof(what), "%s %s", ops[o_], bc->what);
			s.node[0] = (struct nspec){
				.op = ops[o_], .name = "bin", .in = {bc->p_first ? "P" : "x", bc->p_first ? "x" : "P"}, .out = "y"};
			if (flat)
				s.node[1] = (struct nspec){
					"Flatten", "flat", {"y"}, "out", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}};
			/* Div: keep denominators away from zero */
			gc_fill(pd, numel_of(&bc->p), 51 + c, div ? 0.5f : -1.0f, div ? 1.5f : 1.0f);
			gc_fill(x, numel_of(&xs), 61 + c, div ? 0.5f : -1.0f, div ? 1.5f : 1.0f);
			if (bc->p_first)
				ref_binary(ops[o_], pd, &bc->p, x, &xs, want);
			else
				ref_binary(ops[o_], x, &xs, pd, &bc->p, want);
			g = build(&s, &err);
			if (!g) {
				pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what, pc_error_format(&err, msg, sizeof(msg)));
				continue;
			}
			p = forward(t, g, bc->batch, x);
			if (p)
				check_output(t, p, want, numel_of(&ys), 1e-6, 1e-6, what);
			pc_plan_free(p);
			o.batch = bc->batch;
			if (div) {
				o.input_lo = 0.5f;
				o.input_hi = 1.5f;
			}
			CHECK_MSG(gc_check(t, g, &o) > 0, "%s: nothing checked", what);
			pc_graph_free(g);
		}
}

/* The same tensor on both sides: both gradient contributions must land. */
TEST(ops_binary_same_operand_twice)
{
	static const char *const ops[] = {"Add", "Sub", "Mul", "Div"};

	for (int k = 0; k < 4; k++) {
		float w[6];
		struct gspec s = {
			.x = SHP(-1, 3),
			.p = {{"W", SHP(1, 3), w}},
			.node = {{"Mul", "scale", {"x", "W"}, "xw"}, {ops[k], "self", {"xw", "xw"}, "y"}},
			.output = "y",
		};
		struct pc_error err = {0};
		struct pc_graph *g;
		struct gc_opts o = GC_DEFAULT;

		gc_fill(w, 3, 70 + k, 0.5f, 1.5f);
		REQUIRE_GRAPH(g, &s, err);
		o.input_lo = 0.5f;
		o.input_hi = 1.5f;
		CHECK(gc_check(t, g, &o) > 0);
		pc_graph_free(g);
	}
}

/* Constant operands: no gradient for them, values still right; two float
 * constants fold at prepare time. */
TEST(ops_binary_constant_operands)
{
	static const float c1[3] = {1.0f, -2.0f, 0.5f}, c2[3] = {2.0f, 4.0f, -1.0f};
	struct gspec s = {
		.x = SHP(-1, 3),
		.node = {{"Constant", "k1", {NULL}, "c1",
			  {{.name = "value",
			    .type = PC_ATTR_TENSOR,
			    .tdtype = PC_DTYPE_FLOAT,
			    .tshape = {2, {1, 3}},
			    .tdata = c1}}},
			 {"Constant", "k2", {NULL}, "c2",
			  {{.name = "value", .type = PC_ATTR_TENSOR, .tdtype = PC_DTYPE_FLOAT, .tshape = {1, {3}}, .tdata = c2}}},
			 {"Mul", "fold", {"c1", "c2"}, "c12"},
			 {"Sub", "sub", {"x", "c12"}, "y"}},
		.output = "y",
	};
	float x[6], want[6];
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_plan *p;
	struct gc_opts o = GC_DEFAULT;

	gc_fill(x, 6, 5, -1, 1);
	for (int i = 0; i < 6; i++)
		want[i] = x[i] - c1[i % 3] * c2[i % 3];
	REQUIRE_GRAPH(g, &s, err);
	CHECK_INT(pc_graph_param_count(g), 0);
	p = forward(t, g, 2, x);
	if (p)
		check_output(t, p, want, 6, 0, 0, "x - c1*c2");
	pc_plan_free(p);
	CHECK(gc_check(t, g, &o) > 0);
	pc_graph_free(g);
}

/* int64 shape arithmetic folds at prepare time: [-1,3]*[1,2] + 0 - 0, / 1
 * is Reshape's target [-1, 6]; division by zero is a load error. */
TEST(ops_binary_int64_fold)
{
	static const int64_t a[2] = {-1, 3}, b[2] = {1, 2}, z[2] = {0, 0}, one[2] = {1, 1};
	struct gspec s = {
		.x = SHP(-1, 2, 3),
		.ip = {{"a", SHP(2), a}, {"b", SHP(2), b}, {"z", SHP(2), z}, {"one", SHP(2), one}},
		.node = {{"Mul", "m", {"a", "b"}, "s1"},
			 {"Add", "ad", {"s1", "z"}, "s2"},
			 {"Sub", "sb", {"s2", "z"}, "s3"},
			 {"Div", "dv", {"s3", "one"}, "s4"},
			 {"Reshape", "rs", {"x", "s4"}, "y"}},
		.output = "y",
	};
	float x[12];
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_plan *p;

	gc_fill(x, 12, 9, -1, 1);
	REQUIRE_GRAPH(g, &s, err);
	p = forward(t, g, 2, x);
	if (p) {
		CHECK_INT(pc_plan_classes(p), 6);
		check_output(t, p, x, 12, 0, 0, "reshaped");
	}
	pc_plan_free(p);
	pc_graph_free(g);
	s.node[3].in[1] = "z";
	s.node[3].name = "div_zero";
	expect_build_error(t, &s, PC_ERR_INVALID, "div_zero");
}

TEST(ops_binary_rejects_bad_broadcast)
{
	float w[4] = {0};
	struct gspec s = {
		.x = SHP(-1, 3),
		.p = {{"W", SHP(4), w}},
		.node = {{"Add", "add_bad", {"x", "W"}, "y"}},
		.output = "y",
	};
	struct gspec s2 = {
		.x = SHP(-1, 2, 3),
		.p = {{"W", SHP(3, 1), w}},
		.node = {{"Mul", "mul_bad", {"x", "W"}, "y"},
			 {"Flatten", "flat", {"y"}, "out", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}}},
		.output = "out",
	};
	static const int64_t ints[3] = {1, 2, 3};
	struct gspec mixed = {
		.x = SHP(-1, 3),
		.ip = {{"I", SHP(3), ints}},
		.node = {{"Add", "add_mixed", {"x", "I"}, "y"}},
		.output = "y",
	};

	expect_build_error(t, &s, PC_ERR_SHAPE, "add_bad");
	expect_build_error(t, &s2, PC_ERR_SHAPE, "mul_bad");
	expect_build_error(t, &mixed, PC_ERR_UNSUPPORTED, "add_mixed");
}

/* --- pointwise activations ------------------------------------------------------ */

/* gc_check draws the input from its seed; the tests step the seed until no
 * input lies within a few eps of a kink (finite differences across a kink
 * measure neither side). */
static int input_clear_of(uint64_t seed, int64_t n, float lo, float hi, const float *points, int n_points,
			  double margin)
{
	float x[512];

	gc_fill(x, n, seed, lo, hi);
	for (int64_t i = 0; i < n; i++)
		for (int k = 0; k < n_points; k++)
			if (fabs((double)x[i] - points[k]) < margin)
				return 0;
	return 1;
}

static float ref_act(const char *op, float alpha, float v)
{
	if (!strcmp(op, "Relu"))
		return v > 0 ? v : 0;
	if (!strcmp(op, "LeakyRelu"))
		return v > 0 ? v : alpha * v;
	if (!strcmp(op, "Sigmoid"))
		return (float)(1.0 / (1.0 + exp(-(double)v)));
	return (float)tanh((double)v);
}

TEST(ops_act_pointwise)
{
	static const struct {
		const char *op;
		int has_alpha;
		float alpha;
	} acts[] = {{"Relu", 0, 0}, {"LeakyRelu", 0, 0.01f}, {"LeakyRelu", 1, 0.2f}, {"Sigmoid", 0, 0}, {"Tanh", 0, 0}};
	const float zero = 0.0f;

	for (size_t a = 0; a < sizeof(acts) / sizeof(acts[0]); a++) {
		float x[24], want[24];
		struct gspec s = {
			.x = SHP(-1, 6),
			.node = {{acts[a].op, "act", {"x"}, "y"}},
			.output = "y",
		};
		struct pc_error err = {0};
		struct pc_graph *g;
		struct pc_plan *p;
		struct gc_opts o = GC_DEFAULT;

		if (acts[a].has_alpha)
			s.node[0].attr[0] = (struct pc_attr){.name = "alpha", .type = PC_ATTR_FLOAT, .f = acts[a].alpha};
		/* wide inputs: Sigmoid and Tanh saturate, both signs of large values */
		gc_fill(x, 24, 80 + a, -6, 6);
		for (int i = 0; i < 24; i++)
			want[i] = ref_act(acts[a].op, acts[a].alpha, x[i]);
		REQUIRE_GRAPH(g, &s, err);
		p = forward(t, g, 4, x);
		if (p)
			check_output(t, p, want, 24, 1e-7, 1e-6, acts[a].op);
		pc_plan_free(p);
		o.eps = 1e-3;
		o.batch = 4;
		o.input_lo = -3;
		o.input_hi = 3;
		while (!input_clear_of(o.seed, 24, -3, 3, &zero, 1, 4 * o.eps))
			o.seed++;
		CHECK(gc_check(t, g, &o) == 24);
		pc_graph_free(g);
	}
}

/* Backward must add into the input's gradient, never assign: x feeds both
 * the op and an Add, whose backward runs first. */
TEST(ops_dense_grad_accumulates)
{
	static const char *const ops[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax",
					  "LogSoftmax", "Clip", "MatMul", "Gemm", "Mul"};
	const float zero = 0.0f;

	for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
		float w[16];
		int weighted = k >= 7;
		struct gspec s = {
			.x = SHP(-1, 4),
			.node = {{.op = ops[k], .name = "op", .in = {"x", weighted ? "W" : NULL}, .out = "a"},
				 {.op = "Add", .name = "skip", .in = {"a", "x"}, .out = "y"}},
			.output = "y",
		};
		struct pc_error err = {0};
		struct pc_graph *g;
		struct gc_opts o = GC_DEFAULT;

		int64_t nw = !weighted ? 0 : strcmp(ops[k], "Mul") ? 16 : 4;
		if (weighted)
			s.p[0] = (struct fparam){"W", nw == 4 ? SHP(4) : SHP(4, 4), w};
		gc_fill(w, 16, 5 + k, -1, 1);
		REQUIRE_GRAPH(g, &s, err);
		o.eps = 1e-3;
		while (!input_clear_of(o.seed, 12, -1, 1, &zero, 1, 4 * o.eps))
			o.seed++;
		CHECK_MSG(gc_check(t, g, &o) == 12 + nw, "%s", ops[k]);
		pc_graph_free(g);
	}
}

/* --- Softmax and LogSoftmax -------------------------------------------------------- */

struct sm_case {
	int opset;
	int has_axis;
	int64_t axis;
	struct pc_shape x;
	int64_t outer, d, inner; /* by hand, at batch 2 */
};

static void ref_softmax(const float *x, float *y, int64_t outer, int64_t d, int64_t inner, int log_out)
{
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			double m = -INFINITY, s = 0;
			for (int64_t j = 0; j < d; j++)
				m = fmax(m, x[(o * d + j) * inner + i]);
			for (int64_t j = 0; j < d; j++)
				s += exp(x[(o * d + j) * inner + i] - m);
			for (int64_t j = 0; j < d; j++) {
				double v = x[(o * d + j) * inner + i] - m;
				y[(o * d + j) * inner + i] = (float)(log_out ? v - log(s) : exp(v) / s);
			}
		}
}

TEST(ops_softmax_axes_and_opsets)
{
	static const struct sm_case cases[] = {
		{13, 0, 0, {2, {-1, 5}}, 2, 5, 1},
		{13, 1, 1, {3, {-1, 3, 4}}, 2, 3, 4},
		{13, 1, -1, {3, {-1, 3, 4}}, 6, 4, 1},
		{13, 1, 0, {3, {-1, 3, 4}}, 1, 2, 12},
		{13, 1, -2, {4, {-1, 2, 3, 2}}, 4, 3, 2},
		{11, 0, 0, {3, {-1, 3, 4}}, 2, 12, 1},
		{11, 1, 2, {3, {-1, 3, 4}}, 6, 4, 1},
		{11, 1, 0, {3, {-1, 3, 4}}, 1, 24, 1},
		{11, 0, 0, {2, {-1, 5}}, 2, 5, 1},
		{12, 1, -1, {4, {-1, 2, 3, 2}}, 12, 2, 1},
	};

	for (int lg = 0; lg < 2; lg++)
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			const struct sm_case *sc = &cases[c];
			const char *op = lg ? "LogSoftmax" : "Softmax";
			int flat = sc->x.ndim != 2;
			float x[64], want[64];
			struct gspec s = {.opset = sc->opset, .x = sc->x, .output = flat ? "out" : "y"};
			struct pc_error err = {0};
			struct pc_graph *g;
			struct pc_plan *p;
			struct gc_opts o = GC_DEFAULT;
			int64_t n = sc->outer * sc->d * sc->inner;
			char what[96], msg[800];

			snprintf(what, sizeof(what), "%s opset %d axis %s%lld", op, sc->opset, sc->has_axis ? "" : "default ",
				 (long long)sc->axis);
			s.node[0] = (struct nspec){.op = op, .name = "sm", .in = {"x"}, .out = "y"};
			if (sc->has_axis)
				s.node[0].attr[0] = (struct pc_attr){.name = "axis", .type = PC_ATTR_INT, .i = sc->axis};
			if (flat)
				s.node[1] = (struct nspec){
					"Flatten", "flat", {"y"}, "out", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}};
			gc_fill(x, n, 90 + c, -3, 3);
			x[1] = 40.0f; /* a large logit: the max subtraction must keep it finite */
			ref_softmax(x, want, sc->outer, sc->d, sc->inner, lg);
			g = build(&s, &err);
			if (!g) {
				pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what, pc_error_format(&err, msg, sizeof(msg)));
				continue;
			}
			p = forward(t, g, 2, x);
			if (p)
				check_output(t, p, want, n, 1e-6, 1e-5, what);
			pc_plan_free(p);
			o.batch = 2;
			o.eps = 1e-3;
			o.input_lo = -2;
			o.input_hi = 2;
			CHECK_MSG(gc_check(t, g, &o) > 0, "%s: nothing checked", what);
			pc_graph_free(g);
		}
}

/* Gradients through a weight into a softmax along a strided axis. */
TEST(ops_softmax_weight_grad)
{
	float w[12];
	struct gspec s = {
		.x = SHP(-1, 3, 4),
		.p = {{"W", SHP(3, 4), w}},
		.node = {{"Mul", "scale", {"x", "W"}, "xw"},
			 {"LogSoftmax", "lsm", {"xw"}, "y", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}},
			 {"Flatten", "flat", {"y"}, "out", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}}},
		.output = "out",
	};
	struct pc_error err = {0};
	struct pc_graph *g;
	struct gc_opts o = GC_DEFAULT;

	gc_fill(w, 12, 3, -2, 2);
	REQUIRE_GRAPH(g, &s, err);
	o.eps = 1e-3;
	CHECK(gc_check(t, g, &o) == 12 + 36);
	pc_graph_free(g);
}

TEST(ops_softmax_rejects_bad_axis)
{
	struct gspec s = {
		.x = SHP(-1, 3, 4),
		.node = {{"Softmax", "sm_axis", {"x"}, "y", {{.name = "axis", .type = PC_ATTR_INT, .i = 3}}},
			 {"Flatten", "flat", {"y"}, "out", {{.name = "axis", .type = PC_ATTR_INT, .i = 1}}}},
		.output = "out",
	};

	expect_build_error(t, &s, PC_ERR_SHAPE, "sm_axis");
	s.opset = 11;
	s.node[0].attr[0].i = -4;
	expect_build_error(t, &s, PC_ERR_SHAPE, "sm_axis");
}

/* --- Clip ----------------------------------------------------------------------------- */

static void ref_clip(const float *x, float *y, int64_t n, float lo, float hi)
{
	for (int64_t i = 0; i < n; i++)
		y[i] = lo > hi ? hi : x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}

/* Bounds given as initializers are buffers (static, no gradient); bounds
 * computed from parameters (here through Identity) get the exact gradient:
 * the sum of dY where the bound is the result. */
TEST(ops_clip_bounds)
{
	static const struct {
		const char *what;
		int has_lo, has_hi;
		float lo, hi;
	} cases[] = {
		{"no bounds", 0, 0, -INFINITY, INFINITY},
		{"min only", 1, 0, -0.3f, INFINITY},
		{"max only", 0, 1, -INFINITY, 0.45f},
		{"both", 1, 1, -0.3f, 0.45f},
		{"min > max", 1, 1, 0.5f, -0.5f},
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
		for (int trained = 0; trained < 2; trained++) {
			float lo = cases[c].lo, hi = cases[c].hi, x[24], want[24];
			struct gspec s = {.x = SHP(-1, 6), .output = "y"};
			struct pc_error err = {0};
			struct pc_graph *g;
			struct pc_plan *p;
			struct gc_opts o = GC_DEFAULT;
			const float kinks[2] = {lo, hi};
			int np = 0, k = 0;
			char what[96];

			snprintf(what, sizeof(what), "%s, %s bounds", cases[c].what, trained ? "trained" : "buffer");
			if (cases[c].has_lo)
				s.p[np++] = (struct fparam){"lo", SCALAR_SHAPE, &cases[c].lo};
			if (cases[c].has_hi)
				s.p[np++] = (struct fparam){"hi", SCALAR_SHAPE, &cases[c].hi};
			if (trained && cases[c].has_lo)
				s.node[k++] = (struct nspec){.op = "Identity", .name = "idlo", .in = {"lo"}, .out = "lo_t"};
			if (trained && cases[c].has_hi)
				s.node[k++] = (struct nspec){.op = "Identity", .name = "idhi", .in = {"hi"}, .out = "hi_t"};
			s.node[k++] = (struct nspec){
				.op = "Clip",
				.name = "clip",
				.in = {"x", cases[c].has_lo ? (trained ? "lo_t" : "lo") : (cases[c].has_hi ? "" : NULL),
				       cases[c].has_hi ? (trained ? "hi_t" : "hi") : NULL},
				.out = "y"};
			gc_fill(x, 24, 100 + c, -1, 1);
			ref_clip(x, want, 24, lo, hi);
			g = build(&s, &err);
			if (!g) {
				char msg[800];
				pc_test_fail(t, __FILE__, __LINE__, "%s: %s", what, pc_error_format(&err, msg, sizeof(msg)));
				continue;
			}
			CHECK_INT(pc_graph_param_tensors(g), trained ? np : 0);
			p = forward(t, g, 4, x);
			if (p)
				check_output(t, p, want, 24, 0, 0, what);
			pc_plan_free(p);
			o.batch = 4;
			o.eps = 1e-3;
			while (!input_clear_of(o.seed, 24, -1, 1, kinks, 2, 4 * o.eps))
				o.seed++;
			CHECK_MSG(gc_check(t, g, &o) == 24 + (trained ? np : 0), "%s", what);
			pc_graph_free(g);
		}
}

/* Constant bounds (ReLU6 as exported): static, no parameters. */
TEST(ops_clip_constant_bounds)
{
	struct gspec s = {
		.x = SHP(-1, 5),
		.node = {{"Constant", "k0", {NULL}, "zero", {{.name = "value_float", .type = PC_ATTR_FLOAT, .f = 0.0f}}},
			 {"Constant", "k6", {NULL}, "six", {{.name = "value_float", .type = PC_ATTR_FLOAT, .f = 6.0f}}},
			 {"Clip", "relu6", {"x", "zero", "six"}, "y"}},
		.output = "y",
	};
	float x[10], want[10];
	const float kinks[2] = {0.0f, 6.0f};
	struct pc_error err = {0};
	struct pc_graph *g;
	struct pc_plan *p;
	struct gc_opts o = GC_DEFAULT;

	gc_fill(x, 10, 7, -8, 8);
	ref_clip(x, want, 10, 0, 6);
	REQUIRE_GRAPH(g, &s, err);
	CHECK_INT(pc_graph_param_count(g), 0);
	p = forward(t, g, 2, x);
	if (p)
		check_output(t, p, want, 10, 0, 0, "relu6");
	pc_plan_free(p);
	o.batch = 2;
	o.eps = 1e-3;
	o.input_lo = -8;
	o.input_hi = 8;
	while (!input_clear_of(o.seed, 10, -8, 8, kinks, 2, 4 * o.eps))
		o.seed++;
	CHECK(gc_check(t, g, &o) == 10);
	pc_graph_free(g);
}

TEST(ops_clip_rejects_vector_bound)
{
	float lo[2] = {0, 0};
	struct gspec s = {
		.x = SHP(-1, 2),
		.p = {{"lo", SHP(2), lo}},
		.node = {{"Clip", "clip_vec", {"x", "lo"}, "y"}},
		.output = "y",
	};

	expect_build_error(t, &s, PC_ERR_SHAPE, "clip_vec");
}
