/* gemm_bench: how close paracorr's Conv comes to the machine's sgemm rate.
 *
 *   gemm_bench [--threads 1,2] [--seconds S] [--corename]
 *
 * For each convolution of the benchmark models (the LeNet and the small
 * ResNet of tests/reference/make_fixtures.py, batch 256) it measures
 *   - OpenBLAS sgemm (through pc_sgemm) at that layer's im2col shape:
 *     M = out channels, K = C*kh*kw, N = chunk*OH*OW, where chunk is the
 *     number of samples paracorr's conv puts in one product (enough to reach
 *     1024 columns, as core/ops/conv.c does);
 *   - paracorr's Conv op itself: a one-Conv graph (Conv then Flatten, since a
 *     graph's output is rank 2) planned for batch 256, pc_plan_forward timed;
 * and a large square sgemm, at each thread count (pc_blas_set_threads).
 * GFLOPS count 2*M*K*N multiply-adds only (no bias, no im2col). Each
 * measurement repeats the call until it has run for --seconds and takes the
 * best of three such rounds, so a neighbour's burst of load costs less.
 * --corename prints the OpenBLAS kernel class in use (after the same
 * re-execution paracorr does) and exits: the bench gives PyTorch, which
 * loads the same OpenBLAS, the same kernels. */
#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "blas_select.h"
#include "paracorr/graph.h"
#include "paracorr/plan.h"
#include "paracorr/sgemm.h"
#include "paracorr/sys.h"

#define BATCH 256
#define TARGET_COLS 1024
#define MAX_THREADS 8
#define SQUARE 2048

struct layer {
	const char *name;
	int c, h, w;	/* input */
	int m, k;	/* out channels, square kernel */
	int stride, pad;
};

/* The Conv nodes of cnn_op17 and resnet_op17 (BatchNorm folded into the
 * convs by the export, hence the biases). */
static const struct layer layers[] = {
	{"cnn.conv1", 1, 28, 28, 6, 5, 1, 2},
	{"cnn.conv2", 6, 14, 14, 16, 5, 1, 0},
	{"resnet.stem", 1, 28, 28, 16, 3, 1, 1},
	{"resnet.layer1.conv", 16, 28, 28, 16, 3, 1, 1},
	{"resnet.layer2.conv1", 16, 28, 28, 32, 3, 2, 1},
	{"resnet.layer2.conv2", 32, 14, 14, 32, 3, 1, 1},
	{"resnet.layer2.short", 16, 28, 28, 32, 1, 2, 0},
	{"resnet.layer3.conv1", 32, 14, 14, 64, 3, 2, 1},
	{"resnet.layer3.conv2", 64, 7, 7, 64, 3, 1, 1},
	{"resnet.layer3.short", 32, 7, 7, 64, 1, 1, 0},
};

/* A fixed xorshift stream: the numbers do not matter, only that they are
 * ordinary floats (no denormals, no NaN). */
static void fill(float *x, int64_t n, uint64_t seed)
{
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (int64_t i = 0; i < n; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		x[i] = (float)((double)(s >> 40) / (double)(1ull << 24)) - 0.5f;
	}
}

struct sgemm_job {
	int m, n, k;
	const float *a, *b;
	float *c;
};

struct conv_job {
	struct pc_plan *plan;
};

static int run_sgemm(void *arg)
{
	struct sgemm_job *j = arg;

	pc_sgemm(0, 0, j->m, j->n, j->k, 1.0f, j->a, j->k, j->b, j->n, 0.0f, j->c, j->n);
	return 0;
}

static int run_conv(void *arg)
{
	struct conv_job *j = arg;

	pc_plan_forward(j->plan);
	return 0;
}

static int out_size(int in, int k, int stride, int pad)
{
	return (in + 2 * pad - k) / stride + 1;
}

/* A graph holding one Conv of layer l (weights and bias filled with
 * arbitrary values), then Flatten. */
static struct pc_graph *conv_graph(const struct layer *l, struct pc_error *err)
{
	struct pc_shape xs = {4, {-1, l->c, l->h, l->w}};
	struct pc_shape ws = {4, {l->m, l->c, l->k, l->k}};
	struct pc_shape bs = {1, {l->m}};
	int64_t kernel[2] = {l->k, l->k}, strides[2] = {l->stride, l->stride};
	int64_t pads[4] = {l->pad, l->pad, l->pad, l->pad};
	struct pc_attr conv_attrs[3] = {
	    {.name = "kernel_shape", .type = PC_ATTR_INTS, .n = 2, .ints = kernel},
	    {.name = "strides", .type = PC_ATTR_INTS, .n = 2, .ints = strides},
	    {.name = "pads", .type = PC_ATTR_INTS, .n = 4, .ints = pads},
	};
	struct pc_attr flat_attr = {.name = "axis", .type = PC_ATTR_INT, .i = 1};
	const char *conv_in[3] = {"x", "W", "B"}, *conv_out[1] = {"y"};
	const char *flat_in[1] = {"y"}, *flat_out[1] = {"out"};
	int64_t wn = (int64_t)l->m * l->c * l->k * l->k;
	float *wdata = malloc((size_t)(wn + l->m) * sizeof(float));
	struct pc_graph *g = NULL;

	if (!wdata) {
		pc_error_set(err, PC_ERR_NOMEM, l->name, "out of memory");
		return NULL;
	}
	fill(wdata, wn + l->m, 7);
	g = pc_graph_new(17, err);
	if (!g || pc_graph_add_input(g, "x", &xs, err) || pc_graph_add_float(g, "W", &ws, wdata, err) ||
	    pc_graph_add_float(g, "B", &bs, wdata + wn, err) ||
	    pc_graph_add_node(g, "Conv", "conv", 3, conv_in, 1, conv_out, 3, conv_attrs, err) ||
	    pc_graph_add_node(g, "Flatten", "flatten", 1, flat_in, 1, flat_out, 1, &flat_attr, err) ||
	    pc_graph_add_output(g, "out", err) || pc_graph_finish(g, err)) {
		pc_graph_free(g);
		g = NULL;
	}
	free(wdata);
	return g;
}

/* GFLOPS of paracorr's Conv on layer l at batch BATCH; < 0 on error. */
static double conv_gflops(const struct layer *l, double seconds)
{
	struct pc_error err = {0};
	struct pc_graph *g = conv_graph(l, &err);
	struct pc_plan *p = NULL;
	struct conv_job job;
	int oh = out_size(l->h, l->k, l->stride, l->pad), ow = out_size(l->w, l->k, l->stride, l->pad);
	double flops = 2.0 * l->m * l->c * l->k * l->k * (double)BATCH * oh * ow, t;
	char buf[800];

	if (g)
		p = pc_plan_new(g, BATCH, 0, &err);
	if (!p) {
		fprintf(stderr, "gemm_bench: %s: %s\n", l->name, pc_error_format(&err, buf, sizeof(buf)));
		pc_graph_free(g);
		return -1.0;
	}
	fill(pc_plan_input(p), (int64_t)BATCH * pc_plan_sample_numel(p), 3);
	job.plan = p;
	t = bench_time_call(run_conv, &job, seconds);
	pc_plan_free(p);
	pc_graph_free(g);
	return flops / t * 1e-9;
}

/* GFLOPS of one m x k by k x n sgemm; < 0 on error. */
static double sgemm_gflops(int m, int n, int k, double seconds)
{
	float *a = malloc((size_t)m * k * sizeof(float));
	float *b = malloc((size_t)k * n * sizeof(float));
	float *c = malloc((size_t)m * n * sizeof(float));
	struct sgemm_job job = {m, n, k, a, b, c};
	double gf = -1.0;

	if (a && b && c) {
		fill(a, (int64_t)m * k, 1);
		fill(b, (int64_t)k * n, 2);
		gf = 2.0 * m * n * k / bench_time_call(run_sgemm, &job, seconds) * 1e-9;
	} else {
		fprintf(stderr, "gemm_bench: out of memory for sgemm %dx%dx%d\n", m, n, k);
	}
	free(a);
	free(b);
	free(c);
	return gf;
}


int main(int argc, char **argv)
{
	int threads[MAX_THREADS] = {1, 2}, n_threads = 2, failed = 0;
	double seconds = 0.2;

	pc_blas_select_kernels(argv);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--corename") == 0) {
			printf("%s\n", openblas_get_corename());
			return 0;
		} else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
			n_threads = bench_parse_threads(argv[++i], threads, MAX_THREADS);
			if (!n_threads) {
				fprintf(stderr, "gemm_bench: --threads wants a list such as 1,2\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			seconds = strtod(argv[++i], NULL);
			if (!(seconds > 0.0 && seconds < 60.0)) {
				fprintf(stderr, "gemm_bench: --seconds wants a number in (0, 60)\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: gemm_bench [--threads 1,2] [--seconds S] [--corename]\n");
			return 2;
		}
	}
	printf("OpenBLAS kernels: %s; conv batch %d; GFLOPS = 2*M*K*N / best time\n", openblas_get_corename(),
	       BATCH);
	printf("%-20s %3s %4s %5s %6s %3s  %10s %10s %6s\n", "conv layer", "thr", "M", "K", "N", "ch", "conv_gflops",
	       "sgemm_gflops", "ratio");
	for (int ti = 0; ti < n_threads; ti++) {
		pc_blas_set_threads(threads[ti]);
		for (size_t li = 0; li < sizeof(layers) / sizeof(layers[0]); li++) {
			const struct layer *l = &layers[li];
			int oh = out_size(l->h, l->k, l->stride, l->pad), ow = out_size(l->w, l->k, l->stride, l->pad);
			int ohw = oh * ow, kk = l->c * l->k * l->k;
			int chunk = ohw >= TARGET_COLS ? 1 : (TARGET_COLS + ohw - 1) / ohw;
			double cg, sg;

			if (chunk > BATCH)
				chunk = BATCH;
			cg = conv_gflops(l, seconds);
			sg = sgemm_gflops(l->m, chunk * ohw, kk, seconds);
			if (cg < 0 || sg < 0) {
				failed = 1;
				continue;
			}
			printf("%-20s %3d %4d %5d %6d %3d  %10.1f %10.1f %6.2f\n", l->name, threads[ti], l->m, kk,
			       chunk * ohw, chunk, cg, sg, cg / sg);
			fflush(stdout);
		}
	}
	for (int ti = 0; ti < n_threads; ti++) {
		double sg;

		pc_blas_set_threads(threads[ti]);
		sg = sgemm_gflops(SQUARE, SQUARE, SQUARE, seconds);
		if (sg < 0) {
			failed = 1;
			continue;
		}
		printf("%-20s %3d %4d %5d %6d %3s  %10s %10.1f %6s\n", "square sgemm", threads[ti], SQUARE, SQUARE,
		       SQUARE, "-", "-", sg, "-");
	}
	return failed;
}
