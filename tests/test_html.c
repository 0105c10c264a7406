/* HTML report: the page holds every results row of the report with the
 * report's own numbers (read back from data-value), every chart the report
 * lists as the exact SVG bytes charts.c draws, nothing external (no script,
 * no src, no href), names escaped, the same bytes twice; a harden report
 * gets a before and an after section; what is not a report is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charts.h"
#include "html.h"
#include "test.h"

static json_t *load(const char *rel)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), rel);
	return json_load_file(path, 0, NULL);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* The data-value of <td data-field="FIELD"> within the row starting at row. */
static int row_value(const char *row, const char *field, double *v)
{
	char key[96];
	const char *end = strstr(row, "</tr>"), *p;

	snprintf(key, sizeof(key), "data-field=\"%s\" data-value=\"", field);
	if (!(p = strstr(row, key)) || (end && p > end))
		return 0;
	*v = strtod(p + strlen(key), NULL);
	return 1;
}

static int same(double a, double b)
{
	return a == b || fabs(a - b) <= 1e-15 * fmax(fabs(a), fabs(b));
}

/* Each results row of study, in order, against the page's rows from p on;
 * returns where the last row ended. */
static const char *check_rows(struct pc_test *t, const char *p, const json_t *study)
{
	const json_t *results = json_object_get(study, "results"), *r;
	size_t i;

	json_array_foreach(results, i, r)
	{
		const json_t *g = json_object_get(r, "gradient");
		double v;

		p = strstr(p, "<tr data-group=\"");
		if (!p) {
			CHECK_MSG(0, "row %zu of %zu missing", i, json_array_size(results));
			return NULL;
		}
		if (json_is_number(json_object_get(r, "first_order")))
			CHECK_MSG(row_value(p, "first_order", &v) &&
					  same(v, json_number_value(json_object_get(r, "first_order"))),
				  "row %zu first_order", i);
		if (json_is_number(json_object_get(g, "loss_change")))
			CHECK_MSG(row_value(p, "gradient.loss_change", &v) &&
					  same(v, json_number_value(json_object_get(g, "loss_change"))),
				  "row %zu gradient.loss_change", i);
		CHECK_MSG(row_value(p, "epsilon", &v) && same(v, json_number_value(json_object_get(r, "epsilon"))),
			  "row %zu epsilon", i);
		p += 4;
	}
	return p;
}

static void check_self_contained(struct pc_test *t, const char *html)
{
	CHECK(!strncmp(html, "<!DOCTYPE html>", 15));
	CHECK(strstr(html, "</html>\n") && !strcmp(strstr(html, "</html>\n"), "</html>\n"));
	CHECK_MSG(!strstr(html, "<script") && !strstr(html, " src=") && !strstr(html, "href=") &&
			  !strstr(html, "url("),
		  "the page refers to something outside itself");
}

TEST(html_of_the_demo_report)
{
	json_t *rep = load("api/examples/demo-report.json"), *list, *c;
	struct pc_error err = {0};
	char *html = NULL, *again = NULL;
	size_t len = 0, len2 = 0, i;

	REQUIRE(rep);
	REQUIRE_MSG(pcd_report_html(rep, &html, &len, &err) == PC_OK, "%s", err.text);
	CHECK(strlen(html) == len);
	check_self_contained(t, html);
	for (const char *s = "clean\0charts\0results\0ranking\0spec\0"; *s; s += strlen(s) + 1) {
		char sec[64];

		snprintf(sec, sizeof(sec), "<section data-section=\"%s\">", s);
		CHECK_MSG(count(html, sec) == 1, "section %s", s);
	}
	CHECK_INT(count(html, "<tr data-group=\""), json_array_size(json_object_get(rep, "results")));
	check_rows(t, html, rep);

	list = pcd_charts_list(rep);
	REQUIRE(json_array_size(list) >= 2);
	CHECK_INT(count(html, "<figure data-chart=\""), json_array_size(list));
	json_array_foreach(list, i, c)
	{
		char *svg = NULL;

		REQUIRE(pcd_chart_svg(rep, json_string_value(json_object_get(c, "name")), &svg, &err) == PC_OK);
		CHECK_MSG(strstr(html, svg), "chart %s is not the SVG charts.c draws",
			  json_string_value(json_object_get(c, "name")));
		free(svg);
	}
	json_decref(list);

	REQUIRE(pcd_report_html(rep, &again, &len2, &err) == PC_OK);
	CHECK(len2 == len && !memcmp(again, html, len));
	free(again);
	free(html);
	json_decref(rep);
}

/* Names come from uploaded models: markup in them is text on the page. */
TEST(html_escapes_names)
{
	json_t *rep = json_pack("{s:{s:f,s:f},s:[{s:s,s:s,s:f,s:i,s:i,s:f,s:{s:f,s:f},s:{s:f,s:f,s:f,s:i}}],"
				"s:{s:s,s:i}}",
				"clean", "accuracy", 0.9, "loss", 0.3, "results", "group", "<script>alert(1)</script>&\"x",
				"norm", "l2", "epsilon", 0.5, "sparsity", 0, "steps", 1, "first_order", 0.25,
				"gradient", "loss_change", 0.5, "accuracy", 0.7, "random", "loss_change_mean", 0.01,
				"accuracy_mean", 0.89, "accuracy_std", 0.01, "trials", 3, "spec", "model",
				"m-\"><img onerror=1>", "seed", 7);
	struct pc_error err = {0};
	char *html = NULL;
	size_t len = 0;

	REQUIRE(rep);
	REQUIRE_MSG(pcd_report_html(rep, &html, &len, &err) == PC_OK, "%s", err.text);
	check_self_contained(t, html);
	CHECK(!strstr(html, "<script>alert") && !strstr(html, "<img"));
	CHECK(strstr(html, "data-group=\"&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x\""));
	CHECK(strstr(html, "m-&quot;&gt;&lt;img onerror=1&gt;"));
	CHECK_INT(count(html, "<tr data-group=\""), 1);
	check_rows(t, html, rep);
	free(html);
	json_decref(rep);
}

/* A harden report: before and after each with its own clean numbers and
 * rows, in that order, and the charts once, for both. */
TEST(html_harden_before_after)
{
	json_t *before = load("api/examples/demo-report.json"), *after = json_deep_copy(before), *rep, *r0;
	struct pc_error err = {0};
	char *html = NULL;
	const char *b, *a, *p;
	size_t len = 0;

	/* a harden report is the study before and after training: the after
	 * side here is the demo study with its first gradient row changed, so
	 * that the page must take each side's numbers from its own study */
	REQUIRE(before && after);
	r0 = json_array_get(json_object_get(after, "results"), 0);
	REQUIRE(json_is_object(json_object_get(r0, "gradient")));
	json_object_set_new(json_object_get(r0, "gradient"), "loss_change", json_real(0.0123456789));
	json_object_set_new(after, "results", json_pack("[O]", r0));
	rep = json_pack("{s:s, s:o, s:o, s:{s:[{s:i, s:f, s:f}]}}", "kind", "harden", "before", before, "after", after,
			"training", "epochs", "epoch", 1, "loss", 0.4, "accuracy", 0.8);
	REQUIRE(rep);
	REQUIRE_MSG(pcd_report_html(rep, &html, &len, &err) == PC_OK, "%s", err.text);
	check_self_contained(t, html);
	b = strstr(html, "<section data-section=\"before\">");
	a = strstr(html, "<section data-section=\"after\">");
	REQUIRE(b && a && b < a);
	CHECK_INT(count(html, "<section data-section=\"clean\">"), 2);
	CHECK_INT(count(html, "<section data-section=\"charts\">"), 1);
	CHECK_INT(count(html, "<tr data-group=\""),
		  json_array_size(json_object_get(before, "results")) + json_array_size(json_object_get(after, "results")));
	p = check_rows(t, b, before);
	CHECK_MSG(p && p <= a, "a before row is after the after section");
	check_rows(t, a, after);
	free(html);
	json_decref(rep);
}

TEST(html_refuses_what_is_not_a_report)
{
	const char *const bad[] = {"{}", "[]", "{\"clean\": 1}", "{\"before\": {}}", "{\"after\": {}, \"before\": 3}"};
	struct pc_error err;
	char *html = (char *)"x";
	size_t len = 9;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *j = json_loads(bad[i], JSON_DECODE_ANY, NULL);

		memset(&err, 0, sizeof(err));
		REQUIRE(j);
		CHECK_MSG(pcd_report_html(j, &html, &len, &err) == PC_ERR_FORMAT && err.code == PC_ERR_FORMAT,
			  "%s was taken for a report", bad[i]);
		CHECK(html == NULL && len == 0 && strstr(err.text, "not a paracorr report"));
		json_decref(j);
	}
}

/* The faults section: a table per part of the bit-fault study, every
 * number in a data-value the report holds, and the two fault charts. */
TEST(html_faults_section)
{
	json_t *rep = load("api/examples/demo-report.json");
	struct pc_error err = {0};
	char *html = NULL;
	const char *p;
	size_t len = 0;
	double v;

	REQUIRE(rep);
	json_object_set_new(
	    rep, "faults",
	    json_pack("{s:{s:{s:f, s:f}}, s:[{s:s, s:f, s:s, s:i, s:f, s:f, s:f, s:[f, f], s:f}],"
		      " s:[{s:s, s:s, s:i, s:s, s:i, s:i, s:f, s:f}],"
		      " s:[{s:s, s:s, s:s, s:f, s:b, s:{s:f, s:f}, s:[{s:s, s:i, s:i, s:f, s:f, s:f, s:f}]}]}",
		      "quantized", "int8", "loss", 0.31, "accuracy", 0.871, "random", "format", "int8", "ber", 1e-4,
		      "group", "model", "trials", 20, "flips_mean", 11.5, "accuracy_mean", 0.8625, "accuracy_min", 0.8,
		      "accuracy_ci95", 0.855, 0.87, "loss_mean", 0.35, "bits", "format", "int8", "group", "model", "bit",
		      7, "field", "int8", "weights", 4, "trials", 5, "accuracy_mean", 0.6, "accuracy_min", 0.4,
		      "search", "format", "int8", "group", "model", "method", "bfa", "target_accuracy", 0.1, "reached", 1,
		      "clean", "loss", 0.31, "accuracy", 0.871, "flips", "tensor", "fc1.weight<b>", "index", 1234, "bit",
		      7, "before", 0.05, "after", -0.95, "loss", 2.5, "accuracy", 0.09));
	REQUIRE_MSG(pcd_report_html(rep, &html, &len, &err) == PC_OK, "%s", err.text);
	check_self_contained(t, html);
	CHECK_INT(count(html, "<section data-section=\"faults\">"), 1);
	CHECK_INT(count(html, "<figure data-chart=\"faults\">"), 1);
	CHECK_INT(count(html, "<figure data-chart=\"search\">"), 1);
	REQUIRE((p = strstr(html, "<section data-section=\"faults\">")));
	CHECK(strstr(p, "<td data-field=\"format\">int8</td><td data-field=\"accuracy\" data-value=\"0.871\">87.10%</td>"));
	CHECK(row_value(strstr(p, "<td data-field=\"ber\""), "accuracy_ci95.0", &v) && same(v, 0.855));
	CHECK(row_value(strstr(p, "<td data-field=\"ber\""), "accuracy_ci95.1", &v) && same(v, 0.87));
	CHECK(row_value(strstr(p, "<td data-field=\"ber\""), "flips_mean", &v) && same(v, 11.5));
	CHECK(strstr(p, "<td data-field=\"field\">int8</td>"));
	CHECK(strstr(p, "<td data-field=\"flips\">1</td><td data-field=\"reached\">yes</td>"));
	/* a tensor name is text, not markup */
	CHECK(strstr(p, "fc1.weight&lt;b&gt;") && !strstr(p, "fc1.weight<b>"));
	CHECK(row_value(strstr(p, "<td data-field=\"index\""), "after", &v) && same(v, -0.95));
	free(html);
	json_decref(rep);
}

/* The critical radii as their own table, first after the clean numbers,
 * a radius not reached as a dash. */
TEST(html_critical_section)
{
	json_t *rep = load("api/examples/demo-report.json");
	struct pc_error err = {0};
	char *html = NULL;
	size_t len = 0;

	REQUIRE(rep);
	CHECK(!json_object_get(rep, "critical"));
	json_object_set_new(rep, "critical",
			    json_pack("[{s:s, s:s, s:i, s:f, s:f, s:{s:f, s:f, s:i}, s:{s:n, s:n, s:i}, s:n}]", "group",
				      "layer:fc3<b>", "norm", "l2", "sparsity", 0, "accuracy_drop", 0.05, "tolerance", 0.01,
				      "gradient", "epsilon", 0.25, "accuracy", 0.82, "evaluations", 8, "random", "epsilon",
				      "accuracy", "evaluations", 20, "ratio"));
	REQUIRE_MSG(pcd_report_html(rep, &html, &len, &err) == PC_OK, "%s", err.text);
	check_self_contained(t, html);
	CHECK_INT(count(html, "<section data-section=\"critical\">"), 1);
	CHECK(strstr(html, "falls below clean &minus; 0.05, to 0.01 relative") != NULL);
	CHECK(strstr(html, "<td class=\"l\">layer:fc3&lt;b&gt;</td>") != NULL);
	CHECK(strstr(html, "<td data-field=\"gradient.epsilon\" data-value=\"0.25\">0.25</td>") != NULL);
	CHECK(strstr(html, "<td data-field=\"random.epsilon\">-</td>") != NULL);
	CHECK(strstr(html, "<td data-field=\"random.evaluations\" data-value=\"20\">20</td>") != NULL);
	CHECK(strstr(html, "data-section=\"critical\"") < strstr(html, "data-section=\"results\""));
	free(html);
	json_decref(rep);
}

/* A curvature block: the second-order column in the results and the
 * curvature table, the model's row first, numbers as data-value. */
TEST(html_curvature_section)
{
	json_t *rep = load("api/examples/demo-report.json"), *row;
	struct pc_error err = {0};
	char *html = NULL;
	size_t len = 0, i;

	REQUIRE(rep);
	json_array_foreach(json_object_get(rep, "results"), i, row)
		json_object_set_new(row, "second_order", json_real(0.125));
	json_object_set_new(rep, "curvature",
			    json_pack("{s:i, s:[f, f, f], s:b, s:i, s:f, s:[f, f], s:i, s:i, s:f, s:{s:{s:i, s:[f], "
				      "s:b, s:i, s:n, s:n, s:i, s:i}}}",
				      "parameters", 61706, "eigenvalues", 20.5, 18.5, 9.25, "converged", 1,
				      "lanczos_steps", 13, "trace", 113.0, "trace_ci95", 95.0, 131.0, "trace_samples", 30,
				      "hvp_count", 43, "tau", 5e-4, "groups", "layer:fc3<i>", "parameters", 850,
				      "eigenvalues", 14.0, "converged", 0, "lanczos_steps", 100, "trace", "trace_ci95",
				      "trace_samples", 0, "hvp_count", 100));
	REQUIRE_MSG(pcd_report_html(rep, &html, &len, &err) == PC_OK, "%s", err.text);
	check_self_contained(t, html);
	CHECK_INT(count(html, "<section data-section=\"curvature\">"), 1);
	CHECK(strstr(html, "<th>second-order &Delta;L</th>") != NULL);
	CHECK_INT(count(html, "<td data-field=\"second_order\" data-value=\"0.125\">0.125</td>"),
		  (int)json_array_size(json_object_get(rep, "results")));
	CHECK(strstr(html, "<tr data-group=\"model\"><td class=\"l\">model</td><td data-field=\"parameters\" "
			   "data-value=\"61706\">61706</td><td data-field=\"eigenvalues.0\" data-value=\"20.5\">20.5</td>") !=
	      NULL);
	CHECK(strstr(html, "<tr data-group=\"layer:fc3&lt;i&gt;\">") != NULL);
	CHECK(strstr(html, "<td data-field=\"eigenvalues.1\">-</td>") != NULL);
	CHECK(strstr(html, "<td data-field=\"trace\">-</td>") != NULL);
	CHECK(strstr(html, "Hutchinson, 30 Rademacher vectors") != NULL);
	free(html);
	json_decref(rep);
}
