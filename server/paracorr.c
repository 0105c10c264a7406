/* paracorr: the command-line program.
 *
 *   paracorr eval --model M.onnx --inputs X --labels Y [--limit N] [--batch-size B] [--threads T]
 *   paracorr run SPEC.json [--threads T] [--cache-mb M] [--reproducible] [--quiet] [--summary]
 *
 * Results go to stdout as JSON; errors to stderr with a non-zero exit. The
 * CLI owns the process, so it decides how many threads run (--threads,
 * default: the online CPUs); the runner splits batches across them. */
#include <getopt.h>
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blas_select.h"
#include "job.h"
#include "paracorr/analysis.h"
#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "paracorr/report.h"
#include "paracorr/runner.h"
#include "paracorr/spec.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
	fprintf(f, "usage:\n"
		   "  paracorr eval --model M.onnx --inputs X --labels Y [--limit N] [--batch-size B] "
		   "[--threads T]\n"
		   "      clean loss, accuracy and per-tensor gradient norms, as JSON\n"
		   "  paracorr run SPEC.json [--threads T] [--cache-mb M] [--reproducible] [--quiet] [--summary]\n"
		   "      the corruption study of a job spec; the report to stdout, progress to stderr;\n"
		   "      --reproducible leaves out wall-clock timing, making the report byte-identical\n"
		   "  paracorr help\n");
}

static int parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	if (!*s || *end || v < lo || v > hi) {
		fprintf(stderr, "paracorr: %s: '%s' is not an integer in %lld..%lld\n", opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* A setting from the environment, when set; the flags parsed later win. */
static int env_int(const char *name, long long lo, long long hi, long long *out)
{
	const char *v = getenv(name);

	return v && v[0] ? parse_int(name, v, lo, hi, out) : 0;
}

static int fail(const struct pc_error *err)
{
	char buf[800];

	fprintf(stderr, "paracorr: error: %s\n", pc_error_format(err, buf, sizeof(buf)));
	return 1;
}

/* Batch for a model: its fixed batch when it has one, else the request
 * capped at the sample count. */
static int choose_batch(const struct pc_graph *g, long long want, int64_t samples)
{
	const struct pc_shape *in = pc_graph_input_shape(g);

	if (in->ndim > 0 && in->dim[0] > 0)
		return (int)in->dim[0];
	if (want > samples)
		want = samples;
	return (int)(want < 1 ? 1 : want);
}

static int cmd_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},      {"inputs", required_argument, NULL, 'i'},
		{"labels", required_argument, NULL, 'l'},     {"limit", required_argument, NULL, 'n'},
		{"batch-size", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *model = NULL, *inputs = NULL, *labels = NULL;
	long long limit = 0, batch = 256, threads = sysconf(_SC_NPROCESSORS_ONLN);
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_runner *r = NULL;
	float *grad = NULL;
	struct pc_preprocess pp;
	struct pc_shape sample;
	struct pc_eval ev;
	json_t *doc = NULL;
	int c, rc = 1;

	if (env_int("PARACORR_THREADS", 1, 1024, &threads))
		return EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			model = optarg;
			break;
		case 'i':
			inputs = optarg;
			break;
		case 'l':
			labels = optarg;
			break;
		case 'n':
			if (parse_int("--limit", optarg, 1, (long long)1 << 40, &limit))
				return EXIT_USAGE;
			break;
		case 'b':
			if (parse_int("--batch-size", optarg, 1, 65536, &batch))
				return EXIT_USAGE;
			break;
		case 't':
			if (parse_int("--threads", optarg, 1, 1024, &threads))
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (!model || !inputs || !labels || optind != argc) {
		fprintf(stderr, "paracorr eval: --model, --inputs and --labels are required\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (pc_onnx_load_file(model, &g, &err))
		goto out;
	pc_preprocess_default(&pp);
	if (pc_dataset_load(inputs, labels, &pp, limit, &d, &err))
		goto out;
	sample = *pc_graph_input_shape(g);
	sample.ndim--;
	memmove(sample.dim, sample.dim + 1, sizeof(sample.dim[0]) * (size_t)sample.ndim);
	if (pc_dataset_check_input(d, &sample, &err))
		goto out;
	r = pc_runner_new(g, choose_batch(g, batch, d->n), (int)threads, PC_PLAN_GRAD, &err);
	if (!r)
		goto out;
	grad = malloc((size_t)pc_graph_param_count(g) * sizeof(float) + 1);
	if (!grad) {
		pc_error_set(&err, PC_ERR_NOMEM, "eval", "out of memory");
		goto out;
	}
	if (pc_eval_run(r, d, 0, grad, NULL, NULL, &ev, &err))
		goto out;
	doc = pc_report_eval(g, &ev, grad);
	if (!doc || json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0) {
		pc_error_set(&err, PC_ERR_IO, "stdout", "cannot write the report");
		goto out;
	}
	fputc('\n', stdout);
	rc = 0;
out:
	if (rc)
		fail(&err);
	json_decref(doc);
	free(grad);
	pc_runner_free(r);
	pc_dataset_free(d);
	pc_graph_free(g);
	return rc;
}

struct progress_state {
	double last;
	int tty;
};

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One line per update on a terminal (rewritten in place), at most one every
 * two seconds in a log. */
static void show_progress(const struct pc_progress *pr, void *arg)
{
	struct progress_state *ps = arg;
	double t = wall();
	int last = pr->done >= pr->total;

	if (!last && t - ps->last < (ps->tty ? 0.2 : 2.0))
		return;
	ps->last = t;
	fprintf(stderr, "%s[%s] %lld/%lld passes, %.1f s elapsed", ps->tty ? "\r\033[K" : "", pr->phase,
		(long long)pr->done, (long long)pr->total, pr->elapsed);
	if (pr->remaining >= 0 && !last)
		fprintf(stderr, ", ~%.0f s remaining", ceil(pr->remaining));
	fputs(ps->tty && !last ? "" : "\n", stderr);
	fflush(stderr);
}

static const char *norm_name(json_t *n, char *buf, size_t size)
{
	if (json_is_string(n))
		return json_string_value(n);
	snprintf(buf, size, "l%g", json_number_value(n));
	return buf;
}

/* The model-group results as a table on stderr, for people. */
static void print_summary(json_t *report)
{
	json_t *clean = json_object_get(report, "clean"), *row;
	size_t i;
	char nb[32];

	fprintf(stderr, "clean: loss %.4f, accuracy %.4f\n", json_number_value(json_object_get(clean, "loss")),
		json_number_value(json_object_get(clean, "accuracy")));
	fprintf(stderr, "%-6s %-5s %8s %12s %14s %14s %14s\n", "group", "norm", "epsilon", "first-order",
		"grad loss chg", "grad accuracy", "random acc");
	json_array_foreach(json_object_get(report, "results"), i, row)
	{
		json_t *gr = json_object_get(row, "gradient"), *rd = json_object_get(row, "random");
		if (strcmp(json_string_value(json_object_get(row, "group")), "model") != 0)
			continue;
		fprintf(stderr, "%-6s %-5s %8g %12.4f %14.4f %14.4f %14.4f\n", "model",
			norm_name(json_object_get(row, "norm"), nb, sizeof(nb)),
			json_number_value(json_object_get(row, "epsilon")),
			json_number_value(json_object_get(row, "first_order")),
			json_number_value(json_object_get(gr, "loss_change")),
			json_number_value(json_object_get(gr, "accuracy")),
			json_is_object(rd) ? json_number_value(json_object_get(rd, "accuracy_mean")) : NAN);
	}
	json_array_foreach(json_object_get(report, "ranking"), i, row)
	{
		if (i == 0)
			fprintf(stderr, "most fragile groups:\n");
		if (json_integer_value(json_object_get(row, "rank")) == 1)
			fprintf(stderr, "  %-5s eps %-8g %s (loss change %.4f)\n",
				norm_name(json_object_get(row, "norm"), nb, sizeof(nb)),
				json_number_value(json_object_get(row, "epsilon")),
				json_string_value(json_object_get(row, "group")),
				json_number_value(json_object_get(row, "loss_change")));
	}
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'}, {"cache-mb", required_argument, NULL, 'c'},
		{"reproducible", no_argument, NULL, 'r'},  {"quiet", no_argument, NULL, 'q'},
		{"summary", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},	   {NULL, 0, NULL, 0},
	};
	long long threads = sysconf(_SC_NPROCESSORS_ONLN), cache_mb = PC_STUDY_DEFAULT_CACHE >> 20;
	struct pc_error err = {0};
	struct pc_spec spec;
	struct pcd_job_opts jo;
	struct progress_state ps = {0, isatty(2)};
	json_t *report = NULL;
	char *text = NULL;
	int c, rc = 1, quiet = 0, spec_ok = 0, summary = 0, timing_seconds = 1;

	if (env_int("PARACORR_THREADS", 1, 256, &threads) || env_int("PARACORR_CACHE_MB", 0, (long long)1 << 30, &cache_mb))
		return EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_int("--threads", optarg, 1, 256, &threads))
				return EXIT_USAGE;
			break;
		case 'c':
			if (parse_int("--cache-mb", optarg, 0, (long long)1 << 30, &cache_mb))
				return EXIT_USAGE;
			break;
		case 'r':
			timing_seconds = 0;
			break;
		case 'q':
			quiet = 1;
			break;
		case 's':
			summary = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "paracorr run: one SPEC.json is required\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (pc_spec_parse_file(argv[optind], &spec, &err))
		goto out;
	spec_ok = 1;
	if (!spec.labels) {
		pc_error_set(&err, PC_ERR_INVALID, "dataset",
			     "the CLI needs {\"inputs\": path, \"labels\": path}; dataset ids are for the daemon");
		goto out;
	}
	pcd_job_opts_default(&jo);
	jo.threads = (int)threads;
	jo.cache_bytes = (size_t)cache_mb << 20;
	jo.timing_seconds = timing_seconds;
	if (!quiet) {
		jo.progress = show_progress;
		jo.progress_arg = &ps;
	}
	if (pcd_job_run_spec(&spec, spec.model, spec.inputs, spec.labels, &jo, &text, &report, &err))
		goto out;
	if (fputs(text, stdout) == EOF) {
		pc_error_set(&err, PC_ERR_IO, "stdout", "cannot write the report");
		goto out;
	}
	fputc('\n', stdout);
	if (summary)
		print_summary(report);
	rc = 0;
out:
	if (rc)
		fail(&err);
	free(text);
	json_decref(report);
	if (spec_ok)
		pc_spec_free(&spec);
	return rc;
}

int main(int argc, char **argv)
{
	pc_blas_select_kernels(argv);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "eval") == 0)
		return cmd_eval(argc - 1, argv + 1);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 1, argv + 1);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "paracorr: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
