/* paracorr check, the CI gate: every metric against a report whose numbers
 * are known, requirements that hold and that fail, malformed requirements,
 * and the command's exit codes and JUnit XML. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be_util.h"
#include "check.h"
#include "test.h"

/* A report with one model-wide and one layer result, a critical entry
 * whose random side found no radius, and a faults section. */
static const char report_text[] =
	"{\"clean\": {\"loss\": 0.345, \"accuracy\": 0.8739},"
	" \"results\": ["
	"  {\"group\": \"model\", \"norm\": \"l2\", \"epsilon\": 0.1, \"sparsity\": 0, \"steps\": 1,"
	"   \"gradient\": {\"loss\": 0.41, \"accuracy\": 0.8579, \"loss_change\": 0.065},"
	"   \"random\": {\"loss_mean\": 0.3451, \"accuracy_mean\": 0.8738, \"loss_change_mean\": 0.0001}},"
	"  {\"group\": \"layer:fc3\", \"norm\": \"linf\", \"epsilon\": 0.001, \"sparsity\": 10, \"steps\": 1,"
	"   \"gradient\": {\"loss\": null, \"accuracy\": 0.1, \"loss_change\": null},"
	"   \"random\": {\"loss_mean\": 0.36, \"accuracy_mean\": 0.87, \"loss_change_mean\": 0.015}}],"
	" \"critical\": [{\"group\": \"model\", \"norm\": \"l2\", \"sparsity\": 0, \"accuracy_drop\": 0.05,"
	"   \"gradient\": {\"epsilon\": 0.21, \"accuracy\": 0.82, \"evaluations\": 9},"
	"   \"random\": {\"epsilon\": null, \"evaluations\": 12}, \"ratio\": null}],"
	" \"faults\": {\"random\": [{\"format\": \"int8\", \"ber\": 0.0001, \"group\": \"model\","
	"   \"accuracy_mean\": 0.86}],"
	"  \"search\": [{\"format\": \"int8\", \"group\": \"model\", \"method\": \"best\", \"reached\": true,"
	"   \"flips\": [{}, {}, {}]},"
	"   {\"format\": \"int8\", \"group\": \"model\", \"method\": \"bfa\", \"reached\": false,"
	"   \"flips\": [{}, {}, {}, {}, {}]}]},"
	" \"curvature\": {\"eigenvalues\": [20.5, 18.25], \"trace\": 113.5, \"groups\": {\"layer:fc3\":"
	"   {\"eigenvalues\": [14.0], \"trace\": null}}}}";

static json_t *report(struct pc_test *t)
{
	json_error_t jerr;
	json_t *r = json_loads(report_text, 0, &jerr);

	if (!r)
		pc_test_fail(t, __FILE__, __LINE__, "the test report does not parse: %s", jerr.text);
	return r;
}

/* The requirement holds (want 1), fails (0) or names a metric the report
 * lacks (-1), with value v when present. */
static void expect(struct pc_test *t, const json_t *r, const char *expr, int want, double v)
{
	struct pcd_check c;
	struct pc_error err = {0};
	int rc = pcd_check_eval(r, expr, &c, &err);

	CHECK_MSG(rc == PC_OK, "'%s': %s", expr, err.text);
	if (want < 0) {
		CHECK_MSG(!c.present && !c.ok && c.why[0], "'%s' should be missing from the report", expr);
		return;
	}
	CHECK_MSG(c.present, "'%s' not found: %s", expr, c.why);
	CHECK_MSG(c.ok == want, "'%s' %s (value %g): %s", expr, want ? "should hold" : "should fail", c.value, c.why);
	CHECK_MSG(c.value == v || (isinf(v) && isinf(c.value)), "'%s' read %g, expected %g", expr, c.value, v);
	if (!want)
		CHECK_MSG(strstr(c.why, "is not") != NULL, "'%s': the failure says '%s'", expr, c.why);
}

TEST(check_metrics_read_the_report)
{
	json_t *r = report(t);

	REQUIRE(r);
	expect(t, r, "accuracy(l2, 0.1, gradient) >= 0.80", 1, 0.8579);
	expect(t, r, "accuracy(l2, 0.1, gradient) >= 0.86", 0, 0.8579);
	expect(t, r, "accuracy(l2,0.1,random)>0.8738", 0, 0.8738);
	expect(t, r, "  accuracy( l2 , 0.1 , random ) == 0.8738 ", 1, 0.8738);
	expect(t, r, "loss(l2, 0.1, gradient) < 0.5", 1, 0.41);
	expect(t, r, "loss_change(l2, 0.1, random) <= 0.0001", 1, 0.0001);
	expect(t, r, "clean_accuracy() >= 0.87", 1, 0.8739);
	expect(t, r, "clean_loss() < 0.3", 0, 0.345);
	/* options select the layer result; its null loss overflowed: the worst */
	expect(t, r, "accuracy(linf, 0.001, gradient, group=layer:fc3, sparsity=10) >= 0.1", 1, 0.1);
	expect(t, r, "loss_change(linf, 0.001, gradient, group=layer:fc3, sparsity=10) < 1e30", 0, INFINITY);
	expect(t, r, "critical(l2) >= 0.2", 1, 0.21);
	expect(t, r, "critical(l2, gradient) > 0.25", 0, 0.21);
	/* no radius found: above any bound */
	expect(t, r, "critical(l2, random) >= 1000", 1, INFINITY);
	expect(t, r, "flips(int8) >= 3", 1, 3);
	expect(t, r, "flips(int8) > 3", 0, 3);
	expect(t, r, "flips(int8, method=bfa) >= 100", 1, INFINITY);
	expect(t, r, "ber_accuracy(int8, 1e-4) >= 0.85", 1, 0.86);
	expect(t, r, "eigenvalue() <= 25", 1, 20.5);
	expect(t, r, "eigenvalue(2) < 18", 0, 18.25);
	expect(t, r, "eigenvalue(1, group=layer:fc3) <= 14", 1, 14.0);
	expect(t, r, "trace() < 100", 0, 113.5);
	json_decref(r);
}

TEST(check_missing_metrics_fail_and_say_why)
{
	json_t *r = report(t);

	REQUIRE(r);
	expect(t, r, "accuracy(l2, 0.2, gradient) >= 0.5", -1, 0);
	expect(t, r, "accuracy(l2, 0.1, gradient, group=layer:conv1) >= 0.5", -1, 0);
	expect(t, r, "accuracy(l2, 0.1, gradient, steps=3) >= 0.5", -1, 0);
	expect(t, r, "critical(linf) >= 0.01", -1, 0);
	expect(t, r, "flips(float32) >= 1", -1, 0);
	expect(t, r, "ber_accuracy(int8, 1e-6) >= 0.5", -1, 0);
	expect(t, r, "eigenvalue(3) < 1", -1, 0);
	expect(t, r, "eigenvalue(group=layer:fc1) < 1", -1, 0);
	expect(t, r, "trace(group=layer:fc3) < 1", -1, 0);
	json_decref(r);
}

TEST(check_harden_report_is_judged_on_after)
{
	json_error_t jerr;
	json_t *r = json_loads("{\"before\": {\"clean\": {\"loss\": 1, \"accuracy\": 0.5}},"
			       " \"after\": {\"clean\": {\"loss\": 0.5, \"accuracy\": 0.75}}}",
			       0, &jerr);

	REQUIRE(r);
	expect(t, r, "clean_accuracy() >= 0.7", 1, 0.75);
	json_decref(r);
}

TEST(check_malformed_requirements_name_the_problem)
{
	static const struct {
		const char *expr, *needle;
	} bad[] = {
		{"acc(l2) > 1", "unknown metric 'acc'"},
		{"accuracy l2 > 1", "expected accuracy(NORM, EPSILON"},
		{"accuracy(l2, 0.1) >= 0.5", "takes 3 arguments"},
		{"accuracy(l2, 0.1, gradient, 3) >= 0.5", "at most 3 arguments"},
		{"accuracy(l2, 0.1, worst) >= 0.5", "'worst' is neither gradient nor random"},
		{"accuracy(l2, -1, gradient) >= 0.5", "'-1' is not a positive number"},
		{"accuracy(l2, 0.1, gradient, foo=1) >= 0.5", "no option 'foo'"},
		{"accuracy(l2, 0.1, gradient, sparsity=x) >= 0.5", "'x' is not a non-negative integer"},
		{"accuracy(l2, 0.1, gradient) => 0.5", "expected one of >= > <= < =="},
		{"accuracy(l2, 0.1, gradient) >= ", "no number after >="},
		{"accuracy(l2, 0.1, gradient) >= 0.5x", "'0.5x' is not a number"},
		{"flips(int8, method=greedy) >= 1", "neither best nor bfa"},
		{"ber_accuracy(int8, 2) >= 1", "not a rate in (0, 1)"},
		{"eigenvalue(0) < 1", "'0' is not an eigenvalue's rank"},
		{"eigenvalue(1.5) < 1", "'1.5' is not an eigenvalue's rank"},
		{"trace(1) < 1", "at most 0 arguments"},
	};
	json_t *r = report(t);

	REQUIRE(r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pcd_check c;
		struct pc_error err = {0};
		int rc = pcd_check_eval(r, bad[i].expr, &c, &err);

		CHECK_MSG(rc == PC_ERR_INVALID && err.code == PC_ERR_INVALID, "'%s' returned %d", bad[i].expr, rc);
		CHECK_MSG(strstr(err.text, bad[i].needle) != NULL, "'%s': message '%s' lacks '%s'", bad[i].expr,
			  err.text, bad[i].needle);
	}
	json_decref(r);
}

/* The command as CI runs it: exit status, the table, the JUnit file. */
static int run_check(struct pc_test *t, const char *dir, const char *args, char **out, char **err)
{
	const char *bin = getenv("PARACORR_BIN");
	char cmd[4096];
	int st;

	snprintf(cmd, sizeof(cmd), "'%s' check %s/report.json %s > %s/out 2> %s/err", bin, dir, args, dir, dir);
	st = be_run(cmd, NULL, 0, 120);
	snprintf(cmd, sizeof(cmd), "%s/out", dir);
	*out = be_read_file(cmd, NULL);
	snprintf(cmd, sizeof(cmd), "%s/err", dir);
	*err = be_read_file(cmd, NULL);
	if (!*out || !*err)
		pc_test_fail(t, __FILE__, __LINE__, "no output of '%s'", args);
	return st;
}

static int count(const char *s, const char *needle)
{
	int n = 0;

	for (; s && (s = strstr(s, needle)); s += strlen(needle))
		n++;
	return n;
}

TEST(check_command_exit_codes_and_junit)
{
	char dir[256], path[512], *out = NULL, *err = NULL, *xml;
	FILE *f;
	int rc;

	if (!getenv("PARACORR_BIN")) {
		pc_test_skip(t, "PARACORR_BIN is not set (make test sets it)");
		return;
	}
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/report.json", dir);
	REQUIRE((f = fopen(path, "w")));
	fputs(report_text, f);
	fclose(f);

	rc = run_check(t, dir, "--require 'accuracy(l2, 0.1, gradient) >= 0.80' --require 'critical(l2) >= 0.2'",
		       &out, &err);
	CHECK_INT(rc, 0);
	CHECK_MSG(out && strstr(out, "all 2 requirements hold"), "stdout: %s", out);
	free(out), free(err);

	snprintf(path, sizeof(path), "--require 'accuracy(l2, 0.1, gradient) >= 0.80' --require 'flips(int8) >= 10' "
				     "--require 'critical(linf) >= 0.01' --junit %s/junit.xml",
		 dir);
	rc = run_check(t, dir, path, &out, &err);
	CHECK_INT(rc, 1);
	CHECK_MSG(err && strstr(err, "2 of 3 requirements failed") && strstr(err, "FAIL: 3 is not >= 10") &&
			  strstr(err, "FAIL: no critical radius for group model, linf"),
		  "stderr: %s", err);
	free(out), free(err);
	snprintf(path, sizeof(path), "%s/junit.xml", dir);
	xml = be_read_file(path, NULL);
	REQUIRE_MSG(xml, "no %s", path);
	CHECK_MSG( strstr(xml, "<testsuite name=") && strstr(xml, "tests=\"3\" failures=\"2\" errors=\"0\""),
		  "junit: %s", xml);
	CHECK_INT(count(xml, "<testcase "), 3);
	CHECK_INT(count(xml, "<failure message="), 2);
	CHECK_MSG(strstr(xml, "name=\"flips(int8) &gt;= 10\""), "junit escapes the requirement: %s", xml);
	free(xml);

	rc = run_check(t, dir, "--require 'nope() > 1'", &out, &err);
	CHECK_INT(rc, 2);
	CHECK_MSG(err && strstr(err, "unknown metric 'nope'"), "stderr: %s", err);
	free(out), free(err);
	rc = run_check(t, dir, "", &out, &err);
	CHECK_INT(rc, 2);
	free(out), free(err);
	be_rmtree(dir);
}

/* A real report: `paracorr run` with "critical" on the demo CNN, then
 * check reads its critical[] as the report states it (the value printed,
 * >= holds at the radius and > fails). */
TEST(check_critical_of_a_real_report)
{
	char dir[256], path[512], cmd[2048], expr[256], *out = NULL, *err = NULL;
	const char *bin = getenv("PARACORR_BIN");
	json_t *rep, *c, *fc3 = NULL;
	json_error_t jerr;
	FILE *f;
	size_t i;
	double g, r;

	if (!bin) {
		pc_test_skip(t, "PARACORR_BIN is not set (make test sets it)");
		return;
	}
	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/spec.json", dir);
	REQUIRE((f = fopen(path, "w")));
	fprintf(f,
		"{\"model\": \"%s/" FIX "cnn_op17.onnx\", \"dataset\": {\"inputs\": \"" T10K_X "\", \"labels\": \"" T10K_Y
		"\"}, \"limit\": 500, \"seed\": 2, \"corruption\": {\"groups\": [\"layer\"], \"norms\": [\"l2\"],"
		" \"epsilons\": [0.1, 0.5], \"random_trials\": 2, \"critical\": {\"accuracy_drop\": 0.05}}}",
		pc_test_root());
	fclose(f);
	snprintf(cmd, sizeof(cmd), "'%s' run --reproducible --quiet --threads 2 %s > %s/report.json", bin, path, dir);
	REQUIRE(be_run(cmd, NULL, 0, 300) == 0);
	snprintf(path, sizeof(path), "%s/report.json", dir);
	REQUIRE((rep = json_load_file(path, 0, &jerr)));
	json_array_foreach(json_object_get(rep, "critical"), i, c)
		if (!strcmp(json_string_value(json_object_get(c, "group")), "layer:fc3"))
			fc3 = c;
	REQUIRE(fc3);
	g = json_number_value(json_object_get(json_object_get(fc3, "gradient"), "epsilon"));
	r = json_number_value(json_object_get(json_object_get(fc3, "random"), "epsilon"));
	REQUIRE(g > 0 && r > 0);
	snprintf(expr, sizeof(expr), "--require 'critical(l2, group=layer:fc3) >= %.17g' "
				     "--require 'critical(l2, random, group=layer:fc3) <= %.17g'", g, r);
	CHECK_INT(run_check(t, dir, expr, &out, &err), 0);
	CHECK_MSG(out && strstr(out, "all 2 requirements hold"), "stdout: %s", out);
	free(out), free(err);
	snprintf(expr, sizeof(expr), "--require 'critical(l2, group=layer:fc3) > %.17g'", g);
	CHECK_INT(run_check(t, dir, expr, &out, &err), 1);
	CHECK_MSG(err && strstr(err, "1 of 1 requirement failed"), "stderr: %s", err);
	free(out), free(err);
	json_decref(rep);
}
