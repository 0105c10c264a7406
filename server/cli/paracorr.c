/* paracorr: the command-line program.
 *
 *   paracorr eval --model M.onnx --inputs X --labels Y [--limit N] [--batch-size B] [--threads T]
 *   paracorr run SPEC.json [--threads T] [--cache-mb M] [--reproducible] [--quiet] [--summary] [--profile]
 *   paracorr report REPORT.json
 *   paracorr check REPORT.json --require EXPR... [--junit FILE]   (the CI gate, check.c)
 *   paracorr submit SPEC.json | status JOB | fetch JOB    (a daemon's client)
 *
 * Results go to stdout as JSON; errors to stderr with a non-zero exit. The
 * CLI owns the process, so it decides how many threads run (--threads,
 * default: the online CPUs); the runner splits batches across them. */
#include <getopt.h>
#include <math.h>
#include <time.h>
#include <ctype.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blas_select.h"
#include "check.h"
#include "client.h"
#include "compare.h"
#include "html.h"
#include "job.h"
#include "json_out.h"
#include "names.h"
#include "paracorr/analysis.h"
#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "paracorr/report.h"
#include "paracorr/runner.h"
#include "paracorr/spec.h"
#include "paracorr/sys.h"
#include "problem.h"
#include "summary.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
	fprintf(f, "usage:\n"
		   "  paracorr eval --model M.onnx --inputs X --labels Y [--limit N] [--batch-size B] [--profile] "
		   "[--quiet] [--threads T]\n"
		   "      clean loss, accuracy and per-tensor gradient norms, as JSON, with a progress bar\n"
		   "      on stderr (--quiet: none); --profile prints\n"
		   "      each op kind's forward and backward seconds to stderr\n"
		   "  paracorr run SPEC.json [--threads T] [--cache-mb M] [--max-job-work G] [--reproducible] [--quiet] [--summary]\n"
		   "               [--name NAME] [--label KEY=VALUE]... [--profile]\n"
		   "      the corruption study of a job spec; the report to stdout, progress to stderr;\n"
		   "      --name and --label go on the report's top level, as a daemon's job's do;\n"
		   "      --reproducible leaves out wall-clock timing, making the report byte-identical;\n"
		   "      --profile adds timing.ops (seconds per op kind) and prints it to stderr;\n"
		   "      --max-job-work G refuses a spec estimated at more than G x 10^9 multiply-adds\n"
		   "      (default 10000, 0: no bound; README Limits)\n"
		   "  paracorr run HARDEN.json --out HARDENED.onnx [...]\n"
		   "      a harden job: studies the model, fine-tunes it with ACT, writes the hardened\n"
		   "      model and studies it again; the report has both studies and the training curve\n"
		   "  paracorr report REPORT.json [--top N]\n"
		   "      a report as tables: clean numbers, the model-wide results, the most fragile groups\n"
		   "  paracorr compare A.json B.json [C.json...] [--json]\n"
		   "      reports side by side, aligned by setting, and what their specs differ in;\n"
		   "      a column is headed by its report's name (run --name), else by its file;\n"
		   "      one harden report compares its before and after\n"
		   "  paracorr report --html REPORT.json > REPORT.html\n"
		   "      the report as one self-contained HTML file (charts inline, no scripts)\n"
		   "  paracorr submit SPEC.json [--wait] [--summary] [-o REPORT.json] [--idempotency-key K]\n"
		   "                  [--name NAME] [--label KEY=VALUE]...\n"
		   "      uploads the spec's model and dataset files to a daemon (named after their files)\n"
		   "      and queues the job, with its name and labels; with --wait follows its progress\n"
		   "      and writes the report (stdout, or -o)\n"
		   "  paracorr status JOB [--wait]      a job's status and progress, as JSON\n"
		   "  paracorr fetch JOB [--wait] [-o REPORT.json] [--summary]   a finished job's report\n"
		   "  paracorr fetch JOB --chart NAME [-o NAME.svg]   one of its charts (accuracy, loss, ranking, harden, faults, search, critical)\n"
		   "      the client commands take --server URL (default $PARACORR_SERVER or\n"
		   "      http://127.0.0.1:8080) and --token T (default $PARACORR_TOKEN)\n"
		   "  paracorr check REPORT.json --require EXPR... [--junit FILE]\n"
		   "      the CI gate: exit 0 when every requirement holds, 1 with a table of what failed;\n"
		   "      EXPR is METRIC(ARGS) OP NUMBER, e.g. 'accuracy(l2, 0.1, gradient) >= 0.80',\n"
		   "      'critical(l2) >= 0.05', 'flips(int8) >= 10' (docs/check.md lists the metrics)\n"
		   "  paracorr health [--server URL]   exit 0 when the daemon answers /healthz\n"
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

/* An integer option of a command: its getopt value and flag, the
 * environment variable that sets it too (or NULL), its range and where it
 * goes. */
struct int_opt {
	int c;
	const char *flag, *env;
	long long lo, hi;
	long long *out;
};

/* The options from the environment, where set; the flags parsed later
 * win. -1 on a bad value (said on stderr). */
static int int_opts_env(const struct int_opt *o, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = o[i].env ? getenv(o[i].env) : NULL;

		if (v && v[0] && parse_int(o[i].env, v, o[i].lo, o[i].hi, o[i].out))
			return -1;
	}
	return 0;
}

/* 1 when getopt's c is one of the options (set from arg), 0 when it is
 * none of them, -1 on a bad value (said on stderr). */
static int int_opts_flag(const struct int_opt *o, size_t n, int c, const char *arg)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].c == c)
			return parse_int(o[i].flag, arg, o[i].lo, o[i].hi, o[i].out) ? -1 : 1;
	return 0;
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

/* paracorr eval's bar: batches done of the pass (one forward and, with
 * the gradient, one backward), with the time left */
struct eval_bar {
	struct pcd_progress_bar bar;
	double t0;
};

static void eval_progress(void *arg, int64_t done, int64_t batches)
{
	struct eval_bar *b = arg;
	double elapsed = pc_sys_seconds() - b->t0;

	pcd_progress_draw(&b->bar, "clean evaluation", (long long)done, (long long)batches, "batches", elapsed,
			  done > 0 ? elapsed / (double)done * (double)(batches - done) : -1.0, done >= batches, stderr);
}

static int cmd_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		{"model", required_argument, NULL, 'm'},      {"inputs", required_argument, NULL, 'i'},
		{"labels", required_argument, NULL, 'l'},     {"limit", required_argument, NULL, 'n'},
		{"batch-size", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
		{"profile", no_argument, NULL, 'p'},	      {"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0},
	};
	const char *model = NULL, *inputs = NULL, *labels = NULL;
	int profile = 0, quiet = 0;
	struct eval_bar eb = {{isatty(2), 0}, 0};
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
	char *text = NULL;
	const struct int_opt ints[] = {
		{'n', "--limit", NULL, 1, (long long)1 << 40, &limit},
		{'b', "--batch-size", NULL, 1, 65536, &batch},
		{'t', "--threads", "PARACORR_THREADS", 1, 1024, &threads},
	};
	const size_t n_ints = sizeof(ints) / sizeof(ints[0]);
	int c, k, rc = 1;

	if (int_opts_env(ints, n_ints))
		return EXIT_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if ((k = int_opts_flag(ints, n_ints, c, optarg))) {
			if (k < 0)
				return EXIT_USAGE;
			continue;
		}
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
		case 'p':
			profile = 1;
			break;
		case 'q':
			quiet = 1;
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
	/* token ids and per-token labels when the model takes them */
	if (pc_eval_data_for(g, &pp, &err) || pc_dataset_load(inputs, labels, &pp, limit, &d, &err))
		goto out;
	sample = *pc_graph_input_shape(g);
	sample.ndim--;
	memmove(sample.dim, sample.dim + 1, sizeof(sample.dim[0]) * (size_t)sample.ndim);
	if (pc_dataset_check_input(d, &sample, &err))
		goto out;
	r = pc_runner_new(g, choose_batch(g, batch, d->n), (int)threads, PC_PLAN_GRAD, &err);
	if (!r)
		goto out;
	grad = pc_sys_malloc_huge((size_t)pc_graph_param_count(g) * sizeof(float) + 1);
	if (!grad) {
		pc_error_set(&err, PC_ERR_NOMEM, "eval", "out of memory");
		goto out;
	}
	for (int w = 0; profile && w < pc_runner_threads(r); w++)
		if (pc_plan_set_profile(pc_runner_plan(r, w), 1, &err))
			goto out;
	eb.t0 = pc_sys_seconds();
	if (pc_eval_run_progress(r, d, 0, grad, NULL, NULL, quiet ? NULL : eval_progress, &eb, &ev, &err))
		goto out;
	if (profile) {
		json_t *ops = pc_report_op_times(r);
		pcd_profile_print(ops, stderr);
		json_decref(ops);
	}
	doc = pc_report_eval(g, &ev, grad);
	if (!(text = pcd_json_text(doc, PCD_JSON_ANSWER)) || fputs(text, stdout) == EOF) {
		pc_error_set(&err, PC_ERR_IO, "stdout", "cannot write the report");
		goto out;
	}
	fputc('\n', stdout);
	rc = 0;
out:
	if (rc)
		fail(&err);
	free(text);
	json_decref(doc);
	free(grad);
	pc_runner_free(r);
	pc_dataset_free(d);
	pc_graph_free(g);
	return rc;
}

/* A --label KEY=VALUE into labels (again: replaces); -1 when malformed,
 * said on stderr. */
static int label_arg(json_t *labels, const char *arg)
{
	const char *eq = strchr(arg, '=');
	char key[PCD_LABEL_KEY_MAX + 1];

	if (!eq || eq == arg || (size_t)(eq - arg) > PCD_LABEL_KEY_MAX || json_object_size(labels) >= PCD_LABELS_MAX) {
		fprintf(stderr, "paracorr: --label takes KEY=VALUE (a key of 1 to %d characters), at most %d times\n",
			PCD_LABEL_KEY_MAX, PCD_LABELS_MAX);
		return -1;
	}
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = '\0';
	if (json_object_set_new(labels, key, json_string(eq + 1))) {
		fprintf(stderr, "paracorr: --label '%s' is not UTF-8\n", arg);
		return -1;
	}
	return 0;
}

static void show_progress(const struct pc_progress *pr, void *arg)
{
	pcd_progress_draw(arg, pr->phase, (long long)pr->done, (long long)pr->total, pcd_progress_unit(pr->phase),
			  pr->elapsed, pr->remaining, pr->done >= pr->total, stderr);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'}, {"cache-mb", required_argument, NULL, 'c'},
		{"reproducible", no_argument, NULL, 'r'},  {"quiet", no_argument, NULL, 'q'},
		{"summary", no_argument, NULL, 's'},	   {"out", required_argument, NULL, 'o'},
		{"max-job-work", required_argument, NULL, 'w'}, {"help", no_argument, NULL, 'h'},
		{"name", required_argument, NULL, 'n'},	   {"label", required_argument, NULL, 'l'},
		{"profile", no_argument, NULL, 'p'},	   {NULL, 0, NULL, 0},
	};
	const char *out_model = NULL, *name = NULL;
	int profile = 0;
	json_t *labels = json_object();
	char *labels_text = NULL;
	struct pcd_job_files files = {0};
	long long threads = sysconf(_SC_NPROCESSORS_ONLN), cache_mb = PC_STUDY_DEFAULT_CACHE >> 20;
	long long max_work_g = PCD_DEFAULT_MAX_WORK_G;
	struct pc_error err = {0};
	struct pc_spec spec;
	struct pcd_job_opts jo;
	struct pcd_progress_bar ps = {isatty(2), 0};
	json_t *report = NULL;
	char *text = NULL;
	const struct int_opt ints[] = {
		{'t', "--threads", "PARACORR_THREADS", 1, 256, &threads},
		{'c', "--cache-mb", "PARACORR_CACHE_MB", 0, (long long)1 << 30, &cache_mb},
		{'w', "--max-job-work", "PARACORR_MAX_JOB_WORK", 0, 2000000000, &max_work_g},
	};
	const size_t n_ints = sizeof(ints) / sizeof(ints[0]);
	int c, k, rc = 1, quiet = 0, spec_ok = 0, summary = 0, timing_seconds = 1;

	if (!labels || int_opts_env(ints, n_ints)) {
		json_decref(labels);
		return EXIT_USAGE;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if ((k = int_opts_flag(ints, n_ints, c, optarg))) {
			if (k < 0) {
				json_decref(labels);
				return EXIT_USAGE;
			}
			continue;
		}
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'l':
			if (label_arg(labels, optarg)) {
				json_decref(labels);
				return EXIT_USAGE;
			}
			break;
		case 'r':
			timing_seconds = 0;
			break;
		case 'p':
			profile = 1;
			break;
		case 'q':
			quiet = 1;
			break;
		case 's':
			summary = 1;
			break;
		case 'o':
			out_model = optarg;
			break;
		case 'h':
			json_decref(labels);
			usage(stdout);
			return 0;
		default:
			json_decref(labels);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		json_decref(labels);
		fprintf(stderr, "paracorr run: one SPEC.json is required\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	/* the checks of the daemon's submission, so that the report says the
	 * same whichever ran it */
	if ((name && pcd_name_check("--name", name, PC_ERR_INVALID, &err)) || pcd_labels_check(labels, &err))
		goto out;
	if (!(labels_text = json_dumps(labels, JSON_COMPACT))) {
		pc_error_set(&err, PC_ERR_NOMEM, "--label", "out of memory");
		goto out;
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
	jo.profile = profile;
	jo.max_work = (double)max_work_g * 1e9;
	jo.name = name;
	jo.labels = labels_text;
	if (!quiet) {
		jo.progress = show_progress;
		jo.progress_arg = &ps;
	}
	files.model = spec.model;
	files.inputs = spec.inputs;
	files.labels = spec.labels;
	files.train_inputs = spec.training.inputs;
	files.train_labels = spec.training.labels;
	jo.model_out = out_model;
	if (spec.has_training && !out_model) {
		pc_error_set(&err, PC_ERR_INVALID, "--out", "a harden job writes a model: give --out PATH.onnx");
		goto out;
	}
	if (pcd_job_run_spec(&spec, &files, &jo, &text, &report, &err))
		goto out;
	if (fputs(text, stdout) == EOF) {
		pc_error_set(&err, PC_ERR_IO, "stdout", "cannot write the report");
		goto out;
	}
	fputc('\n', stdout);
	if (summary)
		pcd_summary_print(report, 5, stderr);
	if (profile) {
		const json_t *tm = json_object_get(report, "timing");
		/* a harden report's timing is its studies' */
		pcd_profile_print(json_object_get(tm ? tm : json_object_get(json_object_get(report, "after"), "timing"),
						  "ops"),
				  stderr);
	}
	rc = 0;
out:
	if (rc)
		fail(&err);
	free(text);
	free(labels_text);
	json_decref(labels);
	json_decref(report);
	if (spec_ok)
		pc_spec_free(&spec);
	return rc;
}

/* --- talking to a daemon ------------------------------------------------ */

/* Options the client commands share. */
struct client_opts {
	const char *server, *token, *out, *chart;
	int wait, summary, quiet;
	const char *idem;
	const char *name;	   /* submit --name */
	const char *labels[32];	   /* submit --label K=V, repeatable */
	int n_labels;
};

static int client_getopt(int argc, char **argv, struct client_opts *o, int *first_arg)
{
	static const struct option opts[] = {
		{"server", required_argument, NULL, 'S'}, {"token", required_argument, NULL, 'T'},
		{"output", required_argument, NULL, 'o'}, {"wait", no_argument, NULL, 'w'},
		{"summary", no_argument, NULL, 's'},	  {"quiet", no_argument, NULL, 'q'},
		{"idempotency-key", required_argument, NULL, 'k'}, {"chart", required_argument, NULL, 'c'},
		{"name", required_argument, NULL, 'n'}, {"label", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'S': o->server = optarg; break;
		case 'T': o->token = optarg; break;
		case 'o': o->out = optarg; break;
		case 'w': o->wait = 1; break;
		case 's': o->summary = 1; break;
		case 'q': o->quiet = 1; break;
		case 'k': o->idem = optarg; break;
		case 'c': o->chart = optarg; break;
		case 'n': o->name = optarg; break;
		case 'l':
			if (!strchr(optarg, '=') || optarg[0] == '=' ||
			    o->n_labels == (int)(sizeof(o->labels) / sizeof(o->labels[0]))) {
				fprintf(stderr, "paracorr %s: --label takes KEY=VALUE, at most %zu times\n", argv[0],
					sizeof(o->labels) / sizeof(o->labels[0]));
				return EXIT_USAGE;
			}
			o->labels[o->n_labels++] = optarg;
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "paracorr %s: one argument is required\n", argv[0]);
		usage(stderr);
		return EXIT_USAGE;
	}
	*first_arg = optind;
	return 0;
}

/* Whether s is an upload id (64 lower-case hex digits) rather than a path. */
static int is_upload_id(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return i == 64;
}

/* The id from an upload's answer (200 or 201), else the problem. */
static int upload_answer(struct pcd_client_resp *r, const char *what, char id[65], struct pc_error *err)
{
	json_t *j;
	const char *s;

	if (r->status != 200 && r->status != 201)
		return pcd_client_problem(r, what, err);
	j = json_loadb(r->body, r->len, 0, NULL);
	s = json_string_value(json_object_get(j, "id"));
	if (!s || !is_upload_id(s)) {
		json_decref(j);
		return pc_error_set(err, PC_ERR_FORMAT, what, "the server's answer has no id");
	}
	memcpy(id, s, 65);
	json_decref(j);
	return 0;
}

static int upload_dataset_field(const struct pcd_client *c, json_t *obj, const char *key, int quiet,
				struct pc_error *err);

/* spec.model and spec.dataset given as files become uploads and their ids;
 * ids are kept. The content addressing makes a second upload a no-op. */
static int upload_spec_files(const struct pcd_client *c, json_t *spec, int quiet, struct pc_error *err)
{
	json_t *m = json_object_get(spec, "model"), *d = json_object_get(spec, "dataset");
	struct pcd_client_resp r;
	char id[65], path[512];
	int rc;

	if (json_is_string(m) && !is_upload_id(json_string_value(m))) {
		struct pcd_client cu = *c;

		cu.upload_label = quiet ? NULL : "uploading the model";
		if (!quiet)
			fprintf(stderr, "uploading the model %s\n", json_string_value(m));
		pcd_client_named_path("/v1/models", json_string_value(m), path, sizeof(path));
		if ((rc = pcd_client_do(&cu, "POST", path, "application/octet-stream", NULL, 0,
					json_string_value(m), NULL, &r, err)))
			return rc;
		rc = upload_answer(&r, "model", id, err);
		pcd_client_resp_free(&r);
		if (rc)
			return rc;
		json_object_set_new(spec, "model", json_string(id));
	}
	if (json_is_object(d) && (rc = upload_dataset_field(c, spec, "dataset", quiet, err)))
		return rc;
	/* a harden job's training data travels the same way */
	d = json_object_get(json_object_get(spec, "training"), "dataset");
	if (json_is_object(d) && (rc = upload_dataset_field(c, json_object_get(spec, "training"), "dataset", quiet, err)))
		return rc;
	return 0;
}

/* obj[key] given as {"inputs", "labels"} paths becomes an upload and its id. */
static int upload_dataset_field(const struct pcd_client *c, json_t *obj, const char *key, int quiet,
				struct pc_error *err)
{
	json_t *d = json_object_get(obj, key);
	struct pcd_client_resp r;
	char id[65], path[512];
	int rc;

	{
		const char *x = json_string_value(json_object_get(d, "inputs"));
		const char *y = json_string_value(json_object_get(d, "labels"));
		const char *parts[] = {"inputs", x, y ? "labels" : NULL, y, NULL};
		struct pcd_client cu = *c;

		if (!x)
			return pc_error_set(err, PC_ERR_INVALID, "dataset.inputs", "must be a path");
		if (!quiet)
			fprintf(stderr, "uploading the dataset %s%s%s\n", x, y ? " + " : "", y ? y : "");
		cu.upload_label = quiet ? NULL : "uploading the dataset";
		pcd_client_named_path("/v1/datasets", x, path, sizeof(path));
		if ((rc = pcd_client_do(&cu, "POST", path, NULL, NULL, 0, NULL, parts, &r, err)))
			return rc;
		rc = upload_answer(&r, key, id, err);
		pcd_client_resp_free(&r);
		if (rc)
			return rc;
		json_object_set_new(obj, key, json_string(id));
	}
	return 0;
}

/* Writes text to path, or stdout when path is NULL or "-". */
static int write_out(const char *path, const char *text, size_t len, struct pc_error *err)
{
	FILE *f = path && strcmp(path, "-") ? fopen(path, "wb") : stdout;
	int bad;

	if (!f)
		return pc_error_set(err, PC_ERR_IO, path, "cannot create the file");
	bad = fwrite(text, 1, len, f) != len || (len && text[len - 1] != '\n' && fputc('\n', f) == EOF);
	if (f != stdout)
		bad |= fclose(f) != 0;
	else
		bad |= fflush(f) != 0;
	return bad ? pc_error_set(err, PC_ERR_IO, path ? path : "stdout", "cannot write") : 0;
}

/* GET /v1/jobs/{id}: the job object, or NULL with err set. */
static json_t *get_job(const struct pcd_client *c, const char *id, struct pc_error *err)
{
	struct pcd_client_resp r;
	char path[256];
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	if (pcd_client_do(c, "GET", path, NULL, NULL, 0, NULL, NULL, &r, err))
		return NULL;
	if (r.status != 200)
		pcd_client_problem(&r, "job", err);
	else if (!(j = json_loadb(r.body, r.len, 0, NULL)))
		pc_error_set(err, PC_ERR_FORMAT, "job", "the server's answer is not JSON");
	pcd_client_resp_free(&r);
	return j;
}

static int is_finished(const char *status)
{
	return status && (!strcmp(status, "succeeded") || !strcmp(status, "failed") || !strcmp(status, "cancelled"));
}

/* The daemon's estimate of the seconds a job has left; -1 when it has none. */
static double eta(const json_t *progress)
{
	const json_t *r = json_object_get(progress, "remaining_seconds");

	return json_is_number(r) ? json_number_value(r) : -1.0;
}

/* Follows a job until it finishes, drawing its progress; the final job. */
static json_t *follow_job(const struct pcd_client *c, const char *id, int quiet, struct pc_error *err)
{
	struct pcd_progress_bar bar = {isatty(2), 0};
	struct timespec pause = {0, 300 * 1000000L};
	double t0 = pc_sys_seconds();
	json_t *j;

	for (;;) {
		const char *st;
		json_t *p;

		if (!(j = get_job(c, id, err)))
			return NULL;
		st = json_string_value(json_object_get(j, "status"));
		p = json_object_get(j, "progress");
		if (!quiet && (json_is_object(p) || is_finished(st))) {
			char phase[96];

			snprintf(phase, sizeof(phase), "%s%s%s", st ? st : "?", json_is_object(p) ? ": " : "",
				 json_is_object(p) ? json_string_value(json_object_get(p, "phase")) : "");
			pcd_progress_draw(&bar, phase, (long long)json_integer_value(json_object_get(p, "done")),
					  (long long)json_integer_value(json_object_get(p, "total")),
					  pcd_progress_unit(json_string_value(json_object_get(p, "phase"))),
					  pc_sys_seconds() - t0, eta(p), is_finished(st), stderr);
		}
		if (is_finished(st))
			return j;
		json_decref(j);
		nanosleep(&pause, NULL);
	}
}

/* GET the report of a job into *text. */
static int fetch_report(const struct pcd_client *c, const char *id, char **text, size_t *len, struct pc_error *err)
{
	struct pcd_client_resp r;
	char path[256];
	int rc;

	snprintf(path, sizeof(path), "/v1/jobs/%s/report", id);
	if ((rc = pcd_client_do(c, "GET", path, NULL, NULL, 0, NULL, NULL, &r, err)))
		return rc;
	if (r.status != 200) {
		rc = pcd_client_problem(&r, "report", err);
		pcd_client_resp_free(&r);
		return rc;
	}
	*text = r.body;
	*len = r.len;
	return 0;
}

/* A finished job: the report out (and the summary), or its error. */
static int finish_job(const struct pcd_client *c, json_t *job, const struct client_opts *o, struct pc_error *err)
{
	const char *id = json_string_value(json_object_get(job, "id"));
	const char *st = json_string_value(json_object_get(job, "status"));
	char *text = NULL;
	size_t len = 0;
	json_t *rep;
	int rc;

	if (st && !strcmp(st, "failed")) {
		char detail[sizeof(err->text)];

		return pc_error_set(err, PC_ERR_INTERNAL, id, "the job failed: %s",
				    pcd_problem_cli_text(json_object_get(job, "error"), "no detail", detail,
							 sizeof(detail)));
	}
	if (st && !strcmp(st, "cancelled"))
		return pc_error_set(err, PC_ERR_CANCELLED, id, "the job was cancelled");
	if ((rc = fetch_report(c, id, &text, &len, err)))
		return rc;
	rc = write_out(o->out, text, len, err);
	if (!rc && o->summary && (rep = json_loadb(text, len, 0, NULL))) {
		pcd_summary_print(rep, 5, stderr);
		json_decref(rep);
	}
	free(text);
	return rc;
}

/* One of a finished job's charts (an SVG) to -o or stdout. */
static int fetch_chart(const struct pcd_client *c, const char *id, const struct client_opts *o, struct pc_error *err)
{
	struct pcd_client_resp r;
	char path[400];
	int rc;

	if (strpbrk(o->chart, "/?#%") || strlen(o->chart) > 64)
		return pc_error_set(err, PC_ERR_INVALID, "--chart", "'%s' is not a chart name", o->chart);
	snprintf(path, sizeof(path), "/v1/jobs/%s/charts/%s.svg", id, o->chart);
	if ((rc = pcd_client_do(c, "GET", path, NULL, NULL, 0, NULL, NULL, &r, err)))
		return rc;
	rc = r.status == 200 ? write_out(o->out, r.body, r.len, err) : pcd_client_problem(&r, "chart", err);
	pcd_client_resp_free(&r);
	return rc;
}

/* --name and --label into the submit body (a label given again replaces
 * the spec file's); the daemon checks them. */
static int submit_meta(json_t *spec, const struct client_opts *o, struct pc_error *err)
{
	json_t *labels = json_object_get(spec, "labels");

	if (o->name && json_object_set_new(spec, "name", json_string(o->name)))
		return pc_error_set(err, PC_ERR_INVALID, "--name", "must be UTF-8");
	if (!o->n_labels)
		return 0;
	if (!json_is_object(labels)) {
		labels = json_object();
		if (json_object_set_new(spec, "labels", labels))
			return pc_error_set(err, PC_ERR_NOMEM, "--label", "out of memory");
	}
	for (int i = 0; i < o->n_labels; i++) {
		const char *eq = strchr(o->labels[i], '=');
		char key[64];

		if ((size_t)(eq - o->labels[i]) >= sizeof(key))
			return pc_error_set(err, PC_ERR_INVALID, "--label", "the key of '%s' is longer than 63", o->labels[i]);
		memcpy(key, o->labels[i], (size_t)(eq - o->labels[i]));
		key[eq - o->labels[i]] = '\0';
		if (json_object_set_new(labels, key, json_string(eq + 1)))
			return pc_error_set(err, PC_ERR_INVALID, "--label", "'%s' is not UTF-8", o->labels[i]);
	}
	return 0;
}

static int cmd_submit(int argc, char **argv)
{
	struct client_opts o = {0};
	struct pcd_client c;
	struct pcd_client_resp r = {0};
	struct pc_error err = {0};
	json_error_t jerr;
	json_t *spec = NULL, *job = NULL;
	char *body = NULL, hdr[300];
	int arg, rc;

	if ((rc = client_getopt(argc, argv, &o, &arg)))
		return rc;
	rc = 1;
	if (pcd_client_init(&c, o.server, o.token, &err))
		goto out;
	if (!(spec = json_load_file(argv[arg], 0, &jerr))) {
		pc_error_set(&err, PC_ERR_FORMAT, argv[arg], "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
		goto out;
	}
	if (upload_spec_files(&c, spec, o.quiet, &err) || submit_meta(spec, &o, &err))
		goto out;
	if (!(body = pcd_json_text(spec, PCD_JSON_COMPACT))) {
		pc_error_set(&err, PC_ERR_NOMEM, "spec", "out of memory");
		goto out;
	}
	if (o.idem) {
		if (strpbrk(o.idem, "\r\n") || strlen(o.idem) > 255) {
			pc_error_set(&err, PC_ERR_INVALID, "--idempotency-key", "1 to 255 characters on one line");
			goto out;
		}
		snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", o.idem);
		c.extra = hdr;
	}
	if (pcd_client_do(&c, "POST", "/v1/jobs", "application/json", body, strlen(body), NULL, NULL, &r, &err))
		goto out;
	if (r.status != 202) {
		pcd_client_problem(&r, "spec", &err);
		goto out;
	}
	if (!(job = json_loadb(r.body, r.len, 0, NULL))) {
		pc_error_set(&err, PC_ERR_FORMAT, "job", "the server's answer is not JSON");
		goto out;
	}
	if (!o.quiet)
		fprintf(stderr, "job %s queued (%s%s)\n", json_string_value(json_object_get(job, "id")), c.base,
			r.location);
	if (!o.wait) {
		rc = write_out(o.out, r.body, r.len, &err) ? 1 : 0;
		goto out;
	}
	{
		json_t *done = follow_job(&c, json_string_value(json_object_get(job, "id")), o.quiet, &err);
		if (!done)
			goto out;
		json_decref(job);
		job = done;
	}
	rc = finish_job(&c, job, &o, &err) ? 1 : 0;
out:
	if (rc && err.code)
		fail(&err);
	pcd_client_resp_free(&r);
	free(body);
	json_decref(spec);
	json_decref(job);
	return rc;
}

/* status and fetch: the options, the client and the job, followed to its
 * end with --wait. NULL with *rc the exit status (the error printed). */
static json_t *open_job(int argc, char **argv, struct client_opts *o, struct pcd_client *c, int *arg, int *rc)
{
	struct pc_error err = {0};
	json_t *job = NULL;

	if ((*rc = client_getopt(argc, argv, o, arg)))
		return NULL;
	*rc = 1;
	if (!pcd_client_init(c, o->server, o->token, &err))
		job = o->wait ? follow_job(c, argv[*arg], o->quiet, &err) : get_job(c, argv[*arg], &err);
	if (!job)
		fail(&err);
	return job;
}

static int cmd_status(int argc, char **argv)
{
	struct client_opts o = {0};
	struct pcd_client c;
	struct pc_error err = {0};
	json_t *job;
	char *text;
	int arg, rc;

	if (!(job = open_job(argc, argv, &o, &c, &arg, &rc)))
		return rc;
	if (!(text = pcd_json_text(job, PCD_JSON_ANSWER)))
		pc_error_set(&err, PC_ERR_NOMEM, "job", "out of memory");
	rc = !text || write_out(o.out, text, strlen(text), &err) ? fail(&err) : 0;
	free(text);
	json_decref(job);
	return rc;
}

static int cmd_fetch(int argc, char **argv)
{
	struct client_opts o = {0};
	struct pcd_client c;
	struct pc_error err = {0};
	json_t *job;
	int arg, rc;

	if (!(job = open_job(argc, argv, &o, &c, &arg, &rc)))
		return rc;
	if (o.chart ? fetch_chart(&c, argv[arg], &o, &err) : finish_job(&c, job, &o, &err))
		rc = fail(&err);
	else
		rc = 0;
	json_decref(job);
	return rc;
}

/* GET /healthz: exit 0 when the daemon answers 200 (container health checks). */
static int cmd_health(int argc, char **argv)
{
	struct client_opts o = {0};
	struct pcd_client c;
	struct pcd_client_resp r;
	struct pc_error err = {0};
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--server") && i + 1 < argc)
			o.server = argv[++i];
		else {
			fprintf(stderr, "paracorr health: usage: paracorr health [--server URL]\n");
			return EXIT_USAGE;
		}
	}
	if (pcd_client_init(&c, o.server, "", &err) ||
	    pcd_client_do(&c, "GET", "/healthz", NULL, NULL, 0, NULL, NULL, &r, &err))
		return fail(&err);
	if (r.status == 200)
		rc = 0;
	else
		fprintf(stderr, "paracorr health: %s/healthz answered %ld\n", c.base, r.status);
	pcd_client_resp_free(&r);
	return rc;
}

static int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{"top", required_argument, NULL, 't'}, {"html", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	long long top = 5;
	int html = 0;
	json_error_t jerr;
	json_t *rep;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'h') {
			html = 1;
			continue;
		}
		if (c != 't' || parse_int("--top", optarg, 0, 1000, &top)) {
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "paracorr report: one REPORT.json is required\n");
		return EXIT_USAGE;
	}
	if (!(rep = json_load_file(argv[optind], 0, &jerr))) {
		fprintf(stderr, "paracorr: error: %s: line %d column %d: %s\n", argv[optind], jerr.line, jerr.column,
			jerr.text);
		return 1;
	}
	if (!json_is_object(rep) ||
	    (!json_is_object(json_object_get(rep, "clean")) && !json_is_object(json_object_get(rep, "before")))) {
		fprintf(stderr, "paracorr: error: %s: not a paracorr report (no \"clean\" object)\n", argv[optind]);
		json_decref(rep);
		return 1;
	}
	if (html) {
		struct pc_error err = {0};
		char *text = NULL;
		size_t len = 0;
		int rc = pcd_report_html(rep, &text, &len, &err);

		json_decref(rep);
		if (rc)
			return fail(&err);
		rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
		free(text);
		if (rc)
			fprintf(stderr, "paracorr report: cannot write the HTML to stdout\n");
		return rc;
	}
	pcd_summary_print(rep, (int)top, stdout);
	json_decref(rep);
	return 0;
}

/* Several reports (files) side by side: a table, or the comparison as
 * JSON (the body GET /v1/compare answers). */
static int cmd_compare(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	json_t *reps[PCD_COMPARE_MAX] = {0}, *cmp = NULL;
	const char *labels[PCD_COMPARE_MAX];
	struct pc_error err = {0};
	int as_json = 0, n, c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'j') {
			usage(stderr);
			return EXIT_USAGE;
		}
		as_json = 1;
	}
	n = argc - optind;
	if (n < 1 || n > PCD_COMPARE_MAX) {
		fprintf(stderr, "paracorr compare: 2 to %d REPORT.json files, or one of a harden job\n", PCD_COMPARE_MAX);
		return EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		json_error_t jerr;

		labels[i] = argv[optind + i];
		if (!(reps[i] = json_load_file(labels[i], 0, &jerr))) {
			fprintf(stderr, "paracorr: error: %s: line %d column %d: %s\n", labels[i], jerr.line, jerr.column,
				jerr.text);
			goto out;
		}
	}
	/* a report's name (paracorr run --name, a job's) heads its column
	 * when no other report has the same; else its file does */
	for (int i = 0; i < n; i++) {
		const char *name = json_string_value(json_object_get(reps[i], "name"));
		int unique = name != NULL;

		for (int k = 0; unique && k < n; k++)
			unique = k == i || !json_equal(json_object_get(reps[k], "name"), json_object_get(reps[i], "name"));
		if (unique)
			labels[i] = name;
	}
	if (pcd_compare(reps, labels, n, &cmp, &err)) {
		rc = fail(&err);
		goto out;
	}
	if (as_json) {
		char *text = pcd_json_text(cmp, PCD_JSON_ANSWER);

		rc = text && fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0 ? 0 : 1;
		free(text);
	} else {
		pcd_compare_print(cmp, stdout);
		rc = fflush(stdout) == 0 ? 0 : 1;
	}
out:
	for (int i = 0; i < n; i++)
		json_decref(reps[i]);
	json_decref(cmp);
	return rc;
}

static int cmd_help(int argc, char **argv)
{
	(void)argc, (void)argv;
	usage(stdout);
	return 0;
}

/* The commands: a command is a row. */
static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{"eval", cmd_eval},	    {"run", cmd_run},	  {"submit", cmd_submit},	{"status", cmd_status},
	{"fetch", cmd_fetch},	    {"report", cmd_report}, {"check", pcd_check_main}, {"health", cmd_health},
	{"compare", cmd_compare},
	{"help", cmd_help},	    {"--help", cmd_help},
};

int main(int argc, char **argv)
{
	pc_blas_select_kernels(argv);
	pc_blas_set_threads(1);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "paracorr: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
