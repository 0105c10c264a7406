/* The paracorr program end to end: JSON on stdout, errors on stderr with a
 * non-zero exit, reports reproducible byte for byte. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "be_util.h"
#include "json_out.h"
#include "test.h"

/* the most of a command's stdout a test keeps (a report is well under it) */
#define CLI_OUT_MAX (16 << 20)

struct outcome {
	int status; /* exit code, -1 when it did not exit */
	char *out;  /* stdout, malloc'd */
	char *err;  /* stderr, malloc'd */
};

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf) {
			buf[fread(buf, 1, (size_t)n, f)] = '\0';
		}
	}
	fclose(f);
	return buf;
}

/* Runs "$PARACORR_BIN args" through the shell; NULL binary = skip. */
static int run(struct pc_test *t, const char *args, struct outcome *o)
{
	const char *bin = getenv("PARACORR_BIN");
	char dir[] = "/tmp/pc_cli_XXXXXX", cmd[4096], err[64];

	memset(o, 0, sizeof(*o));
	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORR_BIN is not set (make test sets it)");
		return 0;
	}
	if (!mkdtemp(dir)) {
		pc_test_fail(t, __FILE__, __LINE__, "mkdtemp failed");
		return 0;
	}
	snprintf(err, sizeof(err), "%s/err", dir);
	/* a relative PARACORR_BIN is relative to the project root too */
	snprintf(cmd, sizeof(cmd), "'%s' %s 2> %s", bin, args, err);
	o->out = malloc(CLI_OUT_MAX);
	o->status = o->out ? be_run(cmd, o->out, CLI_OUT_MAX, 300) : -1;
	o->err = slurp(err);
	unlink(err);
	rmdir(dir);
	return 1;
}

static void done(struct outcome *o)
{
	free(o->out);
	free(o->err);
	o->out = o->err = NULL;
}

static json_t *load_ref(struct pc_test *t, const char *name)
{
	char path[512];
	json_error_t jerr;
	json_t *r;

	snprintf(path, sizeof(path), "%s/" FIX "%s.json", pc_test_root(), name);
	r = json_load_file(path, 0, &jerr);
	if (!r)
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", path, jerr.text);
	return r;
}

TEST(cli_eval_matches_reference)
{
	struct outcome o;
	json_t *ref = load_ref(t, "cnn_op17"), *got;
	json_error_t jerr;

	if (!ref || !run(t, "eval --model " FIX "cnn_op17.onnx --inputs " T10K_X " --labels " T10K_Y
			    " --limit 1000 --batch-size 100 --threads 2",
			 &o)) {
		json_decref(ref);
		return;
	}
	CHECK_INT(o.status, 0);
	got = o.out ? json_loads(o.out, 0, &jerr) : NULL;
	CHECK_MSG(got != NULL, "stdout is not JSON: %s", o.err ? o.err : "");
	if (got) {
		/* the answer form of json_out.h, one final newline: the bytes
		 * every other JSON the CLI prints has */
		char *form = pcd_json_text(got, PCD_JSON_ANSWER);
		size_t n = form ? strlen(form) : 0;

		CHECK_MSG(form && !strncmp(o.out, form, n) && !strcmp(o.out + n, "\n"),
			  "stdout is not the answer form of its JSON");
		free(form);
		CHECK_INT(json_integer_value(json_object_get(got, "samples")), 1000);
		CHECK_CLOSE(json_number_value(json_object_get(got, "loss")),
			    json_number_value(json_object_get(ref, "loss")), 0, 1e-4);
		CHECK(json_number_value(json_object_get(got, "accuracy")) ==
		      json_number_value(json_object_get(ref, "accuracy")));
		CHECK_INT(json_object_size(json_object_get(json_object_get(got, "gradient"), "tensors")),
			  json_object_size(json_object_get(json_object_get(ref, "gradient"), "tensors")));
		CHECK_CLOSE(json_number_value(json_object_get(
				    json_object_get(json_object_get(got, "gradient"), "model"), "l2")),
			    json_number_value(json_object_get(
				    json_object_get(json_object_get(ref, "gradient"), "model"), "l2")),
			    0, 1e-3);
		json_decref(got);
	}
	done(&o);
	json_decref(ref);
}

TEST(cli_errors_go_to_stderr)
{
	static const struct {
		const char *args;
		int status;
		const char *needle;
	} cases[] = {
		{"eval --model /nonexistent.onnx --inputs " T10K_X " --labels " T10K_Y, 1, "/nonexistent.onnx: cannot open"},
		{"eval --model " FIX "cnn_op17.onnx --inputs " T10K_Y " --labels " T10K_Y, 1, "per sample"},
		{"eval --model " FIX "cnn_op17.onnx", 2, "required"},
		{"eval --model " FIX "cnn_op17.onnx --inputs x --labels y --limit 0", 2, "--limit"},
		{"eval --model " FIX "cnn_op17.onnx --inputs x --labels y --batch-size 70000", 2, "--batch-size"},
		{"run --cache-mb -1 /nonexistent.json", 2, "--cache-mb"},
		{"run --max-job-work lots /nonexistent.json", 2, "--max-job-work"},
		{"frobnicate", 2, "unknown command"},
		{"run /nonexistent.json", 1, "/nonexistent.json"},
		{"eval --model " T10K_Y " --inputs " T10K_X " --labels " T10K_Y, 1, "ONNX"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct outcome o;
		if (!run(t, cases[i].args, &o))
			return;
		CHECK_MSG(o.status == cases[i].status, "'%s' exited %d, expected %d", cases[i].args, o.status,
			  cases[i].status);
		CHECK_MSG(o.err && strstr(o.err, cases[i].needle), "'%s': stderr '%s' lacks '%s'", cases[i].args,
			  o.err ? o.err : "", cases[i].needle);
		CHECK_MSG(!o.out || !o.out[0], "'%s' wrote to stdout", cases[i].args);
		done(&o);
	}
}

static int write_spec(const char *path, const char *corruption)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fprintf(f,
		"{\"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" T10K_X "\", \"labels\": \"" T10K_Y
		"\"}, \"limit\": 400, \"batch_size\": 50, \"seed\": 9, \"corruption\": %s}\n",
		corruption);
	return fclose(f);
}

TEST(cli_run_reproducible_and_progress)
{
	char dir[] = "/tmp/pc_spec_XXXXXX", spec[128], args[256];
	struct outcome a, b;

	REQUIRE(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "%s/spec.json", dir);
	REQUIRE(write_spec(spec, "{\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.1, 1], \"random_trials\": 2,"
				 " \"groups\": [\"model\", \"layer\"]}") == 0);
	snprintf(args, sizeof(args), "run --reproducible --threads 1 %s", spec);
	if (!run(t, args, &a))
		goto out;
	snprintf(args, sizeof(args), "run --reproducible --threads 2 %s", spec);
	if (!run(t, args, &b)) {
		done(&a);
		goto out;
	}
	CHECK_INT(a.status, 0);
	CHECK_INT(b.status, 0);
	CHECK_MSG(a.out && b.out && strcmp(a.out, b.out) == 0, "reports differ between runs");
	CHECK_MSG(a.err && strstr(a.err, "passes"), "no progress on stderr: %s", a.err ? a.err : "");
	if (a.out) {
		json_error_t jerr;
		json_t *r = json_loads(a.out, 0, &jerr);
		CHECK(r != NULL);
		/* model + 3 layers, 2 norms x 2 radii */
		CHECK_INT(json_array_size(json_object_get(r, "results")), 16);
		CHECK(json_object_get(json_object_get(r, "timing"), "seconds") == NULL);
		CHECK(json_object_get(json_object_get(r, "timing"), "phases") == NULL);
		CHECK(json_is_object(json_object_get(r, "spec")));
		json_decref(r);
	}
	done(&a);
	done(&b);
out:
	unlink(spec);
	rmdir(dir);
}

TEST(cli_run_bad_spec_names_field)
{
	char dir[] = "/tmp/pc_spec_XXXXXX", spec[128], args[256];
	struct outcome o;

	REQUIRE(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "%s/spec.json", dir);
	REQUIRE(write_spec(spec, "{\"epsilons\": [0.1, -1]}") == 0);
	snprintf(args, sizeof(args), "run %s", spec);
	if (run(t, args, &o)) {
		CHECK_INT(o.status, 1);
		CHECK_MSG(o.err && strstr(o.err, "corruption.epsilons[1]: must be > 0"), "stderr: %s",
			  o.err ? o.err : "");
		done(&o);
	}
	unlink(spec);
	rmdir(dir);
}

/* The exit status of tests/schema_check.py on docs (space-separated
 * paths) against schema (job or report); its findings go to the log. */
static int schema_check(struct pc_test *t, const char *schema, const char *docs)
{
	char cmd[2048], out[8192];
	int st;

	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/schema_check.py %s %s 2>&1", schema, docs);
	st = be_run(cmd, out, sizeof(out), 120);
	if (st != 0 && out[0])
		fprintf(stderr, "  %s: %s", t->name, out);
	return st;
}

/* api/job.schema.json and api/report.schema.json describe what paracorr
 * reads and writes: the examples and the specs it runs validate, and the
 * reports of an analyze job (two blocks, layer groups, steps, sparsity),
 * with and without timing, and of a harden job validate too. A report
 * with a field of the wrong type must not, or the check proves nothing. */
TEST(cli_reports_match_the_schemas)
{
	char dir[] = "/tmp/pc_schema_XXXXXX", path[256], args[1400], docs[1024];
	struct outcome o = {0};
	FILE *f;

	if (access("/usr/bin/python3", X_OK) || be_run("/usr/bin/python3 -c 'import jsonschema, yaml'", NULL, 0, 60)) {
		pc_test_skip(t, "needs Debian's python3-jsonschema and python3-yaml (make deps-test)");
		return;
	}
	REQUIRE(mkdtemp(dir));
	CHECK_INT(schema_check(t, "job",
			       "api/examples/demo-cnn.json api/examples/lm-gpt.json api/examples/lm-lstm.json "
			       "api/examples/lm-lstm-harden.json"),
		  0);
	CHECK_INT(schema_check(t, "report", "api/examples/demo-report.json"), 0);
	CHECK_INT(schema_check(t, "openapi", ""), 0);

	snprintf(path, sizeof(path), "%s/analyze.json", dir);
	REQUIRE(write_spec(path, "[{\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.1, 1], \"random_trials\": 2,"
				 " \"groups\": [\"model\", \"layer\"], \"steps\": 3},"
				 " {\"norms\": [\"l1\", 3], \"epsilons\": [0.5], \"sparsity\": [10], \"groups\": [\"tensor\"],"
				 " \"epsilon_scale\": \"relative\", \"critical\": {\"accuracy_drop\": 0.1}}]") == 0);
	for (int reproducible = 0; reproducible < 2; reproducible++) {
		/* the second run named and labelled: on the report's top level */
		snprintf(args, sizeof(args), "run %s--threads 2 %s", reproducible ? "--reproducible --name 'mlp v2' "
					     "--label arch=mlp --label prec=fp32 --label prec=int8 " : "", path);
		if (!run(t, args, &o))
			goto out;
		CHECK_INT(o.status, 0);
		{
			json_t *rep = json_loads(o.out ? o.out : "", 0, NULL), *lb = json_object_get(rep, "labels");

			if (reproducible)
				CHECK_MSG(!strcmp(json_string_value(json_object_get(rep, "name")) ?: "", "mlp v2") &&
						  json_object_size(lb) == 2 &&
						  !strcmp(json_string_value(json_object_get(lb, "arch")) ?: "", "mlp") &&
						  !strcmp(json_string_value(json_object_get(lb, "prec")) ?: "", "int8"),
					  "the report's name and labels");
			else
				CHECK_MSG(rep && !json_object_get(rep, "name") && !lb, "an unnamed run's report has a name");
			json_decref(rep);
		}
		snprintf(docs, sizeof(docs), "%s/report%d.json", dir, reproducible);
		REQUIRE((f = fopen(docs, "w")));
		fputs(o.out ? o.out : "", f);
		fclose(f);
		done(&o);
	}
	/* paracorr compare: the named report's column by its name, the
	 * other's by its file; and the HTML of the named one titled by it */
	snprintf(args, sizeof(args), "compare %s/report0.json %s/report1.json", dir, dir);
	if (!run(t, args, &o))
		goto out;
	snprintf(docs, sizeof(docs), "%s/report0.json", dir);
	CHECK_MSG(o.status == 0 && o.out && strstr(o.out, "mlp v2") && strstr(o.out, docs) &&
			  !strstr(o.out, "report1.json"),
		  "compare: %d %s", o.status, o.out ? o.out : "");
	done(&o);
	snprintf(args, sizeof(args), "report --html %s/report1.json", dir);
	if (!run(t, args, &o))
		goto out;
	CHECK_MSG(o.status == 0 && o.out && strstr(o.out, "<title>mlp v2 &middot; paracorr report</title>") &&
			  strstr(o.out, "<h1 data-field=\"name\">mlp v2</h1>") &&
			  strstr(o.out, "<code data-label=\"prec\">prec=int8</code>"),
		  "report --html of a named report: %d", o.status);
	done(&o);
	/* a bad name or label: refused before any work, naming the option */
	snprintf(args, sizeof(args), "run --name '' %s", path);
	if (!run(t, args, &o))
		goto out;
	CHECK_MSG(o.status == 1 && o.err && strstr(o.err, "--name"), "an empty --name: %d %s", o.status, o.err);
	done(&o);
	snprintf(args, sizeof(args), "run --label 'a b=1' %s", path);
	if (!run(t, args, &o))
		goto out;
	CHECK_MSG(o.status == 1 && o.err && strstr(o.err, "labels"), "a bad --label key: %d %s", o.status, o.err);
	done(&o);
	snprintf(docs, sizeof(docs), "%s/faults.json", dir);
	REQUIRE(write_spec(docs, "[], \"faults\": {\"formats\": [\"int8\", \"float16\"], \"quantization\": "
				 "\"per_channel\", \"ber\": [1e-6, 1e-4], \"trials\": 4, \"bits\": {\"weights\": 4, "
				 "\"trials\": 1}, \"groups\": [\"model\", \"layer\"], \"search\": {\"target_accuracy\": 0.2, "
				 "\"max_flips\": 5, \"method\": \"bfa\"}}") == 0);
	CHECK_INT(schema_check(t, "job", docs), 0);
	snprintf(args, sizeof(args), "run --reproducible --threads 2 %s", docs);
	if (!run(t, args, &o))
		goto out;
	CHECK_MSG(o.status == 0, "faults run: %s", o.err ? o.err : "");
	snprintf(docs, sizeof(docs), "%s/freport.json", dir);
	REQUIRE((f = fopen(docs, "w")));
	fputs(o.out ? o.out : "", f);
	fclose(f);
	done(&o);
	CHECK_INT(schema_check(t, "report", docs), 0);
	/* with timing: the phases' seconds, adding up to no more than the whole */
	{
		json_t *r, *ph, *v;
		const char *name;
		double sum = 0;
		snprintf(docs, sizeof(docs), "%s/report0.json", dir);
		r = json_load_file(docs, 0, NULL);
		REQUIRE(r);
		ph = json_object_get(json_object_get(r, "timing"), "phases");
		CHECK(json_is_number(json_object_get(ph, "clean evaluation")) &&
		      json_is_number(json_object_get(ph, "multi-step corruption")) &&
		      json_is_number(json_object_get(ph, "multi-step corruption, groups")) &&
		      json_is_number(json_object_get(ph, "gradient corruption, groups")) &&
		      json_is_number(json_object_get(ph, "critical radius")));
		json_object_foreach(ph, name, v) sum += json_number_value(v);
		CHECK_MSG(sum > 0 && sum <= json_number_value(json_object_get(json_object_get(r, "timing"), "seconds")),
			  "phases add up to %g", sum);
		json_decref(r);
	}
	/* a curvature block: the report's curvature object and second_order */
	snprintf(docs, sizeof(docs), "%s/curvature.json", dir);
	REQUIRE(write_spec(docs, "[{\"norms\": [\"l2\"], \"epsilons\": [0.1, 1], \"random_trials\": 2,"
				 " \"groups\": [\"model\"], \"steps\": 2}, {\"epsilons\": [0.5], \"random_trials\": 0,"
				 " \"groups\": [\"tensor\"]}], \"curvature\": {\"eigenvalues\": 2, \"iterations\": 20,"
				 " \"trace_samples\": 3, \"groups\": [\"layer\"]}") == 0);
	CHECK_INT(schema_check(t, "job", docs), 0);
	snprintf(args, sizeof(args), "run --reproducible --threads 2 %s", docs);
	if (!run(t, args, &o))
		goto out;
	CHECK_MSG(o.status == 0, "curvature run: %s", o.err ? o.err : "");
	snprintf(docs, sizeof(docs), "%s/creport.json", dir);
	REQUIRE((f = fopen(docs, "w")));
	fputs(o.out ? o.out : "", f);
	fclose(f);
	done(&o);
	CHECK_INT(schema_check(t, "report", docs), 0);
	{
		json_t *r = json_load_file(docs, 0, NULL), *row;
		size_t i, with = 0;
		REQUIRE(r);
		{
		json_t *groups = json_object_get(json_object_get(r, "curvature"), "groups");
		/* fc1, fc2, fc3 */
		CHECK(json_object_size(groups) == 3 && json_object_get(groups, "layer:fc3"));
		}
		json_array_foreach(json_object_get(r, "results"), i, row) with += json_is_number(
			json_object_get(row, "second_order"));
		CHECK_INT(with, json_array_size(json_object_get(r, "results")));
		/* the schema can fail here too: an eigenvalue as a string */
		json_array_set_new(json_object_get(json_object_get(r, "curvature"), "eigenvalues"), 0,
				   json_string("big"));
		snprintf(docs, sizeof(docs), "%s/cbroken.json", dir);
		CHECK_INT(json_dump_file(r, docs, 0), 0);
		json_decref(r);
		CHECK_INT(schema_check(t, "report", docs), 1);
	}
	snprintf(docs, sizeof(docs), "%s/analyze.json", dir);
	CHECK_INT(schema_check(t, "job", docs), 0);
	snprintf(docs, sizeof(docs), "%s/report0.json %s/report1.json", dir, dir);
	CHECK_INT(schema_check(t, "report", docs), 0);

	snprintf(path, sizeof(path), "%s/harden.json", dir);
	REQUIRE((f = fopen(path, "w")));
	fprintf(f,
		"{\"kind\": \"harden\", \"model\": \"" FIX "mlp_op13.onnx\", \"dataset\": {\"inputs\": \"" T10K_X
		"\", \"labels\": \"" T10K_Y "\"}, \"limit\": 200, \"batch_size\": 50, \"seed\": 3,"
		" \"corruption\": {\"epsilons\": [0.5], \"random_trials\": 2},"
		" \"training\": {\"dataset\": {\"inputs\": \"" T10K_X "\", \"labels\": \"" T10K_Y "\"},"
		" \"limit\": 200, \"epochs\": 1, \"batch_size\": 50, \"act\": {\"epsilon\": 0.5}}}\n");
	fclose(f);
	snprintf(args, sizeof(args), "run --reproducible --threads 2 --name 'mlp hardened' --label act=0.5 --out %s/hardened.onnx %s", dir, path);
	if (!run(t, args, &o))
		goto out;
	CHECK_MSG(o.status == 0, "harden run: %s", o.err ? o.err : "");
	snprintf(docs, sizeof(docs), "%s/hreport.json", dir);
	REQUIRE((f = fopen(docs, "w")));
	fputs(o.out ? o.out : "", f);
	fclose(f);
	done(&o);
	snprintf(docs, sizeof(docs), "%s/harden.json", dir);
	CHECK_INT(schema_check(t, "job", docs), 0);
	snprintf(docs, sizeof(docs), "%s/hreport.json", dir);
	CHECK_INT(schema_check(t, "report", docs), 0);

	/* the check can fail: a report whose clean accuracy is a string */
	{
		json_t *r;
		snprintf(docs, sizeof(docs), "%s/report1.json", dir);
		r = json_load_file(docs, 0, NULL);
		REQUIRE(r);
		json_object_set_new(json_object_get(r, "clean"), "accuracy", json_string("high"));
		snprintf(docs, sizeof(docs), "%s/broken.json", dir);
		CHECK_INT(json_dump_file(r, docs, 0), 0);
		json_decref(r);
		CHECK_INT(schema_check(t, "report", docs), 1);
	}
out:
	done(&o);
	be_rmtree(dir);
}

/* The count of one op kind's forward and backward runs in a --profile
 * table on stderr (-1: no row). */
static int profile_calls(const char *err, const char *op, long long *fwd, long long *bwd)
{
	char head[64];
	const char *row;
	double fs, bs;

	snprintf(head, sizeof(head), "\n  %-22s ", op);
	if (!err || !(row = strstr(err, head)))
		return -1;
	return sscanf(row + strlen(head), "%lf %lf %lld %lld", &fs, &bs, fwd, bwd) == 4 && fs >= 0 && bs >= 0 ? 0 : -1;
}

/* eval's progress and --profile: the per-op table counts every node run (cnn_op17: two Conv,
 * two MaxPool and three Gemm nodes, 400 samples in 4 batches of 100), and
 * run's report carries the same rows in timing.ops, none without it. */
TEST(cli_profile_counts_every_op_run)
{
	char dir[] = "/tmp/pc_prof_XXXXXX", spec[128], args[512];
	struct outcome o;
	long long f = 0, b = 0;
	json_t *r;

	if (!run(t, "eval --model " FIX "cnn_op17.onnx --inputs " T10K_X " --labels " T10K_Y
		    " --limit 400 --batch-size 100 --threads 2 --profile",
		 &o))
		return;
	CHECK_INT(o.status, 0);
	CHECK_MSG(o.err && strstr(o.err, "where the time went"), "%s", o.err ? o.err : "");
	CHECK_MSG(profile_calls(o.err, "Conv", &f, &b) == 0 && f == 8 && b == 8, "Conv %lld, %lld: %s", f, b, o.err);
	CHECK_MSG(profile_calls(o.err, "MaxPool", &f, &b) == 0 && f == 8 && b == 8, "MaxPool %lld, %lld", f, b);
	CHECK_MSG(profile_calls(o.err, "Gemm", &f, &b) == 0 && f == 12 && b == 12, "Gemm %lld, %lld", f, b);
	CHECK(o.out && strstr(o.out, "\"accuracy\""));
	/* the progress of the pass, batch by batch, on stderr */
	CHECK_MSG(o.err && strstr(o.err, "[clean evaluation] 4/4 batches (100%)"), "%s", o.err ? o.err : "");
	done(&o);
	if (!run(t, "eval --model " FIX "cnn_op17.onnx --inputs " T10K_X " --labels " T10K_Y
		    " --limit 400 --batch-size 100 --quiet",
		 &o))
		return;
	CHECK_INT(o.status, 0);
	CHECK_MSG(!o.err || !strstr(o.err, "batches"), "--quiet drew progress: %s", o.err);
	done(&o);

	REQUIRE(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "%s/spec.json", dir);
	REQUIRE(write_spec(spec, "{\"norms\": [\"l2\"], \"epsilons\": [0.1], \"random_trials\": 1, \"groups\": [\"model\"]}") ==
		0);
	for (int profile = 0; profile < 2; profile++) {
		snprintf(args, sizeof(args), "run --quiet --threads 2 %s%s", profile ? "--profile " : "", spec);
		if (!run(t, args, &o))
			break;
		CHECK_INT(o.status, 0);
		r = o.out ? json_loads(o.out, 0, NULL) : NULL;
		CHECK(r != NULL);
		if (profile) {
			const json_t *gemm = json_object_get(json_object_get(json_object_get(r, "timing"), "ops"), "Gemm");
			/* the clean pass and its gradient, then two evaluations: 3 nodes x 8 batches x 3 passes */
			CHECK_MSG(json_integer_value(json_object_get(gemm, "forward_calls")) > 0 &&
					  json_integer_value(json_object_get(gemm, "backward_calls")) == 3 * 8,
				  "%s", o.out);
			CHECK(o.err && strstr(o.err, "where the time went"));
		} else {
			CHECK(!json_object_get(json_object_get(r, "timing"), "ops"));
		}
		json_decref(r);
		done(&o);
	}
	be_rmtree(dir);
}
