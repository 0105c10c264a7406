/* curv_bench: what one Hessian-vector product costs, in gradient passes.
 *
 *   curv_bench MODEL.onnx INPUTS LABELS [--samples N] [--threads 1,2] [--seconds S]
 *
 * For each thread count it times, on the same runner (batch 100) and the
 * first N samples, a clean gradient pass (pc_eval_run with a gradient: one
 * forward and one backward pass over the data) and a product of the whole
 * model's Hessian with a seeded vector (pc_curv_hvp: a gate-recording
 * forward pass and two forward and backward passes), and prints their
 * ratio, which should stay under 2.5. Each is timed by bench_time_call;
 * the ratio of two numbers measured side by side is what to read, not the
 * seconds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "blas_select.h"
#include "paracorr/curvature.h"
#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/onnx.h"
#include "paracorr/runner.h"
#include "paracorr/sys.h"

#define MAX_THREADS 8

struct job {
	struct pc_runner *r;
	const struct pc_dataset *d;
	int64_t samples;
	struct pc_curv *c;
	float *g;
	double *v, *hv;
	struct pc_error err;
};

static int run_grad(void *arg)
{
	struct job *j = arg;
	struct pc_eval ev;

	return pc_eval_run(j->r, j->d, j->samples, j->g, NULL, NULL, &ev, &j->err);
}

static int run_hvp(void *arg)
{
	struct job *j = arg;

	return pc_curv_hvp(j->c, j->v, j->hv, &j->err);
}

int main(int argc, char **argv)
{
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	int threads[MAX_THREADS] = {1, 2}, n_threads = 2, rc = 1;
	int64_t samples = 1000;
	double seconds = 2.0;
	char msg[800];

	pc_blas_select_kernels(argv);
	pc_blas_set_threads(1);
	if (argc < 4) {
		fprintf(stderr, "usage: %s MODEL.onnx INPUTS LABELS [--samples N] [--threads 1,2] [--seconds S]\n",
			argv[0]);
		return 2;
	}
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--samples") && i + 1 < argc) {
			samples = strtoll(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = strtod(argv[++i], NULL);
		} else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
			if (!(n_threads = bench_parse_threads(argv[++i], threads, MAX_THREADS))) {
				fprintf(stderr, "%s: --threads %s: a list of counts from 1 to 256\n", argv[0], argv[i]);
				return 2;
			}
		} else {
			fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
			return 2;
		}
	}
	if (samples < 1 || seconds <= 0 || n_threads < 1) {
		fprintf(stderr, "%s: --samples, --seconds and --threads must be positive\n", argv[0]);
		return 2;
	}
	if (pc_onnx_load_file(argv[1], &g, &err) || pc_dataset_load(argv[2], argv[3], NULL, samples, &d, &err))
		goto fail;
	printf("%-8s %8s %10s %10s %8s\n", "threads", "samples", "grad_s", "hvp_s", "ratio");
	for (int k = 0; k < n_threads; k++) {
		struct job j = {0};
		int np = pc_graph_param_tensors(g), *idx = malloc((size_t)np * sizeof(int));
		double tg, th;
		int bad = !idx;

		j.d = d;
		j.samples = samples;
		for (int i = 0; !bad && i < np; i++)
			idx[i] = i;
		if (!bad && !(j.r = pc_runner_new(g, 100, threads[k], PC_PLAN_GRAD, &err)))
			bad = 1;
		if (!bad && pc_curv_new(j.r, d, samples, idx, np, NULL, &j.c, &err))
			bad = 1;
		if (!bad) {
			j.g = malloc((size_t)pc_graph_param_count(g) * sizeof(float));
			j.v = malloc((size_t)pc_curv_size(j.c) * sizeof(double));
			j.hv = malloc((size_t)pc_curv_size(j.c) * sizeof(double));
			if (!j.g || !j.v || !j.hv) {
				pc_error_set(&err, PC_ERR_NOMEM, "curv_bench", "out of memory");
				bad = 1;
			}
		}
		if (!bad) {
			pc_curv_seeded_vector(1, pc_curv_size(j.c), j.v);
			bad = (tg = bench_time_call(run_grad, &j, seconds)) < 0 || (th = bench_time_call(run_hvp, &j, seconds)) < 0;
			if (bad)
				err = j.err;
		}
		if (!bad)
			printf("%-8d %8lld %10.4f %10.4f %8.2f\n", threads[k], (long long)samples, tg, th, th / tg);
		free(j.g);
		free(j.v);
		free(j.hv);
		pc_curv_free(j.c);
		pc_runner_free(j.r);
		free(idx);
		if (bad)
			goto fail;
	}
	rc = 0;
	goto done;
fail:
	fprintf(stderr, "%s: %s\n", argv[0], pc_error_format(&err, msg, sizeof(msg)));
done:
	pc_dataset_free(d);
	pc_graph_free(g);
	return rc;
}
