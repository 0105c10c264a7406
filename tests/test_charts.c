/* Charts: each SVG parses as XML (expat), has one path.series per series
 * with the promised number of points, and its points map back through the
 * plot's declared axes to the report's numbers. */
#include <expat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../server/charts.h"
#include "test.h"

#define MAX_PATHS 32

struct svg_info {
	int ok, elements;
	int n_paths;
	char label[MAX_PATHS][128];
	int points[MAX_PATHS];
	char d[MAX_PATHS][8192];
	double x0, x1, y0, y1, xmin, xmax, ymin, ymax;
	int xlog, has_plot, has_title;
};

static const char *attr(const char **a, const char *name)
{
	for (; a && a[0]; a += 2)
		if (!strcmp(a[0], name))
			return a[1];
	return NULL;
}

static void on_start(void *arg, const char *name, const char **a)
{
	struct svg_info *s = arg;
	const char *c = attr(a, "class");

	s->elements++;
	if (!strcmp(name, "title"))
		s->has_title = 1;
	if (!strcmp(name, "g") && c && !strcmp(c, "plot")) {
		s->has_plot = 1;
		s->x0 = atof(attr(a, "data-x0"));
		s->x1 = atof(attr(a, "data-x1"));
		s->y0 = atof(attr(a, "data-y0"));
		s->y1 = atof(attr(a, "data-y1"));
		s->xmin = atof(attr(a, "data-xmin"));
		s->xmax = atof(attr(a, "data-xmax"));
		s->ymin = atof(attr(a, "data-ymin"));
		s->ymax = atof(attr(a, "data-ymax"));
		s->xlog = atoi(attr(a, "data-xlog"));
	}
	if (!strcmp(name, "path") && c && !strcmp(c, "series") && s->n_paths < MAX_PATHS) {
		const char *l = attr(a, "data-series"), *n = attr(a, "data-points"), *d = attr(a, "d");

		snprintf(s->label[s->n_paths], sizeof(s->label[0]), "%s", l ? l : "");
		s->points[s->n_paths] = n ? atoi(n) : -1;
		snprintf(s->d[s->n_paths], sizeof(s->d[0]), "%s", d ? d : "");
		s->n_paths++;
	}
}

static void on_end(void *arg, const char *name)
{
	(void)arg;
	(void)name;
}

/* Parses svg; 1 when it is well-formed XML with an <svg> root. */
static int parse_svg(const char *svg, struct svg_info *s)
{
	XML_Parser p = XML_ParserCreate("UTF-8");

	memset(s, 0, sizeof(*s));
	XML_SetUserData(p, s);
	XML_SetElementHandler(p, on_start, on_end);
	s->ok = XML_Parse(p, svg, (int)strlen(svg), 1) == XML_STATUS_OK && !strncmp(svg, "<svg ", 5);
	if (!s->ok)
		fprintf(stderr, "  XML error at line %lu: %s\n", (unsigned long)XML_GetCurrentLineNumber(p),
			XML_ErrorString(XML_GetErrorCode(p)));
	XML_ParserFree(p);
	return s->ok;
}

/* The M/L points of a path's d, into xs, ys; their count. */
static int path_points(const char *d, double *xs, double *ys, int max)
{
	int n = 0;

	for (const char *p = d; *p; p++) {
		double x, y;

		if ((*p == 'M' || *p == 'L') && sscanf(p + 1, "%lf %lf", &x, &y) == 2) {
			if (n < max) {
				xs[n] = x;
				ys[n] = y;
			}
			n++;
		}
	}
	return n;
}

static int find_path(const struct svg_info *s, const char *label)
{
	for (int i = 0; i < s->n_paths; i++)
		if (!strcmp(s->label[i], label))
			return i;
	return -1;
}

static double data_x(const struct svg_info *s, double px)
{
	double t = (px - s->x0) / (s->x1 - s->x0);

	return s->xlog ? pow(10, log10(s->xmin) + t * (log10(s->xmax) - log10(s->xmin)))
		       : s->xmin + t * (s->xmax - s->xmin);
}

static double data_y(const struct svg_info *s, double py)
{
	return s->ymin + (py - s->y0) / (s->y1 - s->y0) * (s->ymax - s->ymin);
}

/* A result row. random_acc < 0: no random trials. */
static json_t *row(const char *group, const char *norm, double eps, double acc, double dl, double fo, double random_acc)
{
	json_t *r = json_pack("{s:s, s:s, s:f, s:f, s:i, s:i, s:f, s:{s:f, s:f, s:f}, s:i}", "group", group, "norm", norm,
			      "epsilon", eps, "epsilon_effective", eps, "sparsity", 0, "steps", 1, "first_order", fo,
			      "gradient", "loss", 0.3 + dl, "accuracy", acc, "loss_change", dl, "block", 0);

	if (random_acc >= 0)
		json_object_set_new(r, "random",
				    json_pack("{s:i, s:f, s:f, s:f}", "trials", 3, "accuracy_mean", random_acc,
					      "accuracy_min", random_acc - 0.01, "loss_change_mean", 1e-4));
	return r;
}

/* A report: l2 at three radii spanning 100x (with random trials), linf at
 * two (without), two layers, a ranking with awkward names. */
static json_t *report_fixture(void)
{
	json_t *res = json_array(), *rank = json_array();

	json_array_append_new(res, row("model", "l2", 0.01, 0.86, 0.01, 0.005, 0.87));
	json_array_append_new(res, row("model", "l2", 0.1, 0.80, 0.2, 0.05, 0.869));
	json_array_append_new(res, row("model", "l2", 1.0, 0.40, 3.0, 0.5, 0.86));
	json_array_append_new(res, row("model", "linf", 0.001, 0.84, 0.05, 0.02, -1));
	json_array_append_new(res, row("model", "linf", 0.01, 0.30, 4.0, 0.2, -1));
	json_array_append_new(res, row("layer:/conv<1>/Conv", "l2", 0.1, 0.85, 0.02, 0.01, -1));
	json_array_append_new(res, row("layer:a&\"b\"", "l2", 0.1, 0.83, 0.04, 0.02, -1));
	json_array_append_new(rank, json_pack("{s:s, s:s, s:f, s:i, s:f, s:f, s:i, s:i}", "group", "layer:a&\"b\"",
					      "norm", "l2", "epsilon", 0.1, "sparsity", 0, "loss_change", 0.04,
					      "accuracy", 0.83, "rank", 1, "block", 0));
	json_array_append_new(rank, json_pack("{s:s, s:s, s:f, s:i, s:f, s:f, s:i, s:i}", "group",
					      "layer:/conv<1>/Conv", "norm", "l2", "epsilon", 0.1, "sparsity", 0,
					      "loss_change", 0.02, "accuracy", 0.85, "rank", 2, "block", 0));
	return json_pack("{s:i, s:{s:f, s:f}, s:o, s:o}", "version", 1, "clean", "loss", 0.3, "accuracy", 0.87,
			 "results", res, "ranking", rank);
}

static int listed(const json_t *list, const char *name)
{
	size_t i;
	json_t *c;

	json_array_foreach(list, i, c)
	if (!strcmp(json_string_value(json_object_get(c, "name")), name))
		return 1;
	return 0;
}

static char *draw(struct pc_test *t, const json_t *rep, const char *name, struct svg_info *s)
{
	struct pc_error err = {0};
	char *svg = NULL;

	if (pcd_chart_svg(rep, name, &svg, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "chart %s: %s: %s", name, err.where, err.text);
		return NULL;
	}
	if (!parse_svg(svg, s))
		pc_test_fail(t, __FILE__, __LINE__, "chart %s does not parse as XML", name);
	return svg;
}

TEST(charts_accuracy_follows_the_report)
{
	json_t *rep = report_fixture(), *list = pcd_charts_list(rep);
	struct svg_info *s = malloc(sizeof(*s));
	static const double eps[] = {0.01, 0.1, 1.0}, acc[] = {86, 80, 40}, rnd[] = {87, 86.9, 86};
	double xs[16], ys[16];
	char *svg;
	int i, k;

	REQUIRE(rep && list && s);
	CHECK(listed(list, "accuracy") && listed(list, "loss") && listed(list, "ranking") && !listed(list, "harden"));
	svg = draw(t, rep, "accuracy", s);
	REQUIRE(svg && s->ok);
	CHECK(s->has_title && s->has_plot);
	/* l2: gradient, random mean, random worst; linf: gradient only */
	CHECK_INT(s->n_paths, 4);
	CHECK(find_path(s, "l2 gradient") >= 0 && find_path(s, "l2 random mean") >= 0 &&
	      find_path(s, "l2 random worst") >= 0 && find_path(s, "linf gradient") >= 0);
	for (i = 0; i < s->n_paths; i++)
		CHECK_MSG(s->points[i] == path_points(s->d[i], xs, ys, 16), "series %s: data-points %d", s->label[i],
			  s->points[i]);
	CHECK_MSG(s->xlog == 1, "radii over three decades want a log axis");
	/* the drawn points map back to the numbers */
	i = find_path(s, "l2 gradient");
	REQUIRE(i >= 0);
	CHECK_INT(path_points(s->d[i], xs, ys, 16), 3);
	for (k = 0; k < 3; k++) {
		CHECK_MSG(fabs(log10(data_x(s, xs[k]) / eps[k])) < 0.005 * log10(s->xmax / s->xmin), "x %d: %g vs %g", k,
			  data_x(s, xs[k]), eps[k]);
		CHECK_MSG(fabs(data_y(s, ys[k]) - acc[k]) < 0.005 * (s->ymax - s->ymin), "y %d: %g vs %g", k,
			  data_y(s, ys[k]), acc[k]);
	}
	i = find_path(s, "l2 random mean");
	REQUIRE(i >= 0);
	path_points(s->d[i], xs, ys, 16);
	for (k = 0; k < 3; k++)
		CHECK(fabs(data_y(s, ys[k]) - rnd[k]) < 0.005 * (s->ymax - s->ymin));
	CHECK(s->ymin >= 0 && s->ymax <= 100 && s->ymin <= 30 && s->ymax >= 87);
	CHECK(strstr(svg, "accuracy (%)") != NULL);
	free(svg);

	/* radii within a factor of 20: a linear axis */
	{
		json_t *lin = json_pack("{s:{s:f, s:f}, s:[o, o, o]}", "clean", "loss", 0.3, "accuracy", 0.9, "results",
					row("model", "l2", 0.5, 0.8, 0.1, 0.1, 0.9), row("model", "l2", 1, 0.7, 0.3, 0.2, 0.9),
					row("model", "l2", 2, 0.5, 1, 0.4, 0.89));
		svg = draw(t, lin, "accuracy", s);
		CHECK(svg && s->xlog == 0 && s->xmin <= 0.5 && s->xmax >= 2);
		free(svg);
		json_decref(lin);
	}
	free(s);
	json_decref(list);
	json_decref(rep);
}

TEST(charts_loss_and_ranking)
{
	json_t *rep = report_fixture();
	struct svg_info *s = malloc(sizeof(*s));
	double xs[16], ys[16];
	char *svg;
	int i, n_l2, n_linf;

	REQUIRE(rep && s);
	/* loss: a scatter, one series per norm, every result a point */
	svg = draw(t, rep, "loss", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 2);
	n_l2 = (i = find_path(s, "l2 corruption")) >= 0 ? path_points(s->d[i], xs, ys, 16) : -1;
	CHECK_INT(n_l2, 5);
	CHECK(i >= 0 && s->points[i] == 5);
	n_linf = (i = find_path(s, "linf corruption")) >= 0 ? path_points(s->d[i], xs, ys, 16) : -1;
	CHECK_INT(n_linf, 2);
	free(svg);
	/* ranking: one bar per group, names escaped, and it still parses */
	svg = draw(t, rep, "ranking", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 1);
	CHECK_INT(s->points[0], 2);
	CHECK_INT(path_points(s->d[0], xs, ys, 16), 2);
	CHECK(strstr(svg, "a&amp;&quot;b&quot;") != NULL && strstr(svg, "/conv&lt;1&gt;/Conv") != NULL);
	CHECK(!strstr(svg, "<1>"));
	free(svg);
	free(s);
	json_decref(rep);
}

TEST(charts_refuse_what_is_not_there)
{
	json_t *rep = report_fixture(), *list;
	struct pc_error err = {0};
	char *svg = NULL;

	REQUIRE(rep);
	CHECK_INT(pcd_chart_svg(rep, "pie", &svg, &err), PC_ERR_NOT_FOUND);
	CHECK(svg == NULL);
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "harden", &svg, &err), PC_ERR_NOT_FOUND);
	/* no ranking: not listed, not drawn */
	json_object_del(rep, "ranking");
	list = pcd_charts_list(rep);
	CHECK(list && !listed(list, "ranking") && listed(list, "accuracy"));
	json_decref(list);
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "ranking", &svg, &err), PC_ERR_NOT_FOUND);
	/* malformed: the field is named */
	json_object_set_new(rep, "results", json_integer(3));
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "accuracy", &svg, &err), PC_ERR_FORMAT);
	CHECK(!strcmp(err.where, "results"));
	json_object_set_new(rep, "results", json_pack("[{s:s, s:s, s:f, s:{s:s}}]", "group", "model", "norm", "l2",
							     "epsilon", 0.1, "gradient", "accuracy", "high"));
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "accuracy", &svg, &err), PC_ERR_FORMAT);
	CHECK_MSG(!strcmp(err.where, "results[0]") && strstr(err.text, "accuracy"), "%s: %s", err.where, err.text);
	list = pcd_charts_list(rep);
	CHECK(list && json_array_size(list) == 0);
	json_decref(list);
	json_decref(rep);
}

TEST(charts_harden_before_after)
{
	json_t *before = report_fixture(), *after = report_fixture(), *rep, *list;
	struct svg_info *s = malloc(sizeof(*s));
	char *svg;

	REQUIRE(before && after && s);
	rep = json_pack("{s:s, s:o, s:o}", "kind", "harden", "before", before, "after", after);
	list = pcd_charts_list(rep);
	CHECK(list && listed(list, "harden"));
	svg = draw(t, rep, "harden", s);
	REQUIRE(svg && s->ok);
	/* gradient lines per norm, before and after */
	CHECK_INT(s->n_paths, 4);
	CHECK(find_path(s, "before: l2 gradient") >= 0 && find_path(s, "after: l2 gradient") >= 0);
	free(svg);
	free(s);
	json_decref(list);
	json_decref(rep);
}

TEST(charts_of_a_real_report)
{
	char path[1024];
	json_t *rep, *list, *c;
	struct svg_info *s = malloc(sizeof(*s));
	size_t i;

	snprintf(path, sizeof(path), "%s/api/examples/demo-report.json", pc_test_root());
	rep = json_load_file(path, 0, NULL);
	REQUIRE(s);
	if (!rep || !json_is_array(json_object_get(rep, "results"))) {
		json_decref(rep);
		free(s);
		pc_test_skip(t, "the fixture is not a report");
		return;
	}
	list = pcd_charts_list(rep);
	CHECK(list && json_array_size(list) >= 2);
	json_array_foreach(list, i, c)
	{
		char *svg = draw(t, rep, json_string_value(json_object_get(c, "name")), s);

		CHECK(svg && s->ok && s->n_paths >= 1);
		for (int k = 0; k < s->n_paths; k++) {
			double xs[1], ys[1];
			CHECK(s->points[k] == path_points(s->d[k], xs, ys, 0));
		}
		free(svg);
	}
	json_decref(list);
	json_decref(rep);
	free(s);
}
