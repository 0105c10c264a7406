/* Charts: each SVG parses as XML (expat), has one path.series per series
 * with the promised number of points, and its points map back through the
 * plot's declared axes to the report's numbers. Malformed reports name the
 * field; names that are not XML-safe are escaped. */
#include <expat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charts.h"
#include "summary.h"
#include "test.h"

#define MAX_PATHS 40
#define MAX_PTS	  512

struct svg_info {
	int ok, elements, depth;
	int n_paths, n_refs, n_markers;
	char label[MAX_PATHS][160];
	int points[MAX_PATHS];
	int dashed[MAX_PATHS];
	char d[MAX_PATHS][MAX_PTS * 24];
	double x0, x1, y0, y1, xmin, xmax, ymin, ymax;
	int xlog, ylog, has_plot, has_title, has_legend, n_ticks;
	int in_title;
	char title[256];
};

static const char *attr(const char **a, const char *name)
{
	for (; a && a[0]; a += 2)
		if (!strcmp(a[0], name))
			return a[1];
	return NULL;
}

static double num_attr(const char **a, const char *name)
{
	const char *v = attr(a, name);

	return v ? atof(v) : NAN;
}

static void on_start(void *arg, const char *name, const char **a)
{
	struct svg_info *s = arg;
	const char *c = attr(a, "class");

	s->elements++;
	s->depth++;
	if (!strcmp(name, "title") && s->depth == 2) {
		s->has_title = 1;
		s->in_title = 1;
	}
	if (!c)
		return;
	if (!strcmp(name, "g") && !strcmp(c, "plot")) {
		s->has_plot = 1;
		s->x0 = num_attr(a, "data-x0");
		s->x1 = num_attr(a, "data-x1");
		s->y0 = num_attr(a, "data-y0");
		s->y1 = num_attr(a, "data-y1");
		s->xmin = num_attr(a, "data-xmin");
		s->xmax = num_attr(a, "data-xmax");
		s->ymin = num_attr(a, "data-ymin");
		s->ymax = num_attr(a, "data-ymax");
		s->xlog = (int)num_attr(a, "data-xlog");
		s->ylog = (int)num_attr(a, "data-ylog");
	}
	if (!strcmp(name, "g") && !strcmp(c, "legend"))
		s->has_legend = 1;
	if (!strcmp(name, "text") && !strcmp(c, "tick"))
		s->n_ticks++;
	if (!strcmp(name, "line") && !strcmp(c, "reference"))
		s->n_refs++;
	if (!strcmp(name, "circle") && !strcmp(c, "marker"))
		s->n_markers++;
	if (!strcmp(name, "path") && !strcmp(c, "series") && s->n_paths < MAX_PATHS) {
		const char *l = attr(a, "data-series"), *n = attr(a, "data-points"), *d = attr(a, "d");

		snprintf(s->label[s->n_paths], sizeof(s->label[0]), "%s", l ? l : "");
		s->points[s->n_paths] = n ? atoi(n) : -1;
		s->dashed[s->n_paths] = attr(a, "stroke-dasharray") != NULL;
		snprintf(s->d[s->n_paths], sizeof(s->d[0]), "%s", d ? d : "");
		s->n_paths++;
	}
}

static void on_end(void *arg, const char *name)
{
	struct svg_info *s = arg;

	s->depth--;
	s->in_title = 0;
	(void)name;
}

static void on_text(void *arg, const char *text, int len)
{
	struct svg_info *s = arg;
	size_t have = strlen(s->title);

	if (s->in_title && have + (size_t)len < sizeof(s->title)) {
		memcpy(s->title + have, text, (size_t)len);
		s->title[have + (size_t)len] = '\0';
	}
}

/* Parses svg; 1 when it is well-formed XML with an <svg> root in the SVG
 * namespace, a viewBox and a size. */
static int parse_svg(const char *svg, struct svg_info *s)
{
	XML_Parser p = XML_ParserCreate("UTF-8");

	memset(s, 0, sizeof(*s));
	XML_SetUserData(p, s);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	s->ok = XML_Parse(p, svg, (int)strlen(svg), 1) == XML_STATUS_OK &&
		!strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 ", 53) &&
		strstr(svg, " width=\"") && strstr(svg, " height=\"");
	if (!s->ok)
		fprintf(stderr, "  XML error at line %lu: %s\n", (unsigned long)XML_GetCurrentLineNumber(p),
			XML_ErrorString(XML_GetErrorCode(p)));
	XML_ParserFree(p);
	return s->ok;
}

/* The M/L points of a path's d, into xs, ys (up to max); their count. */
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
	double t = (py - s->y0) / (s->y1 - s->y0);

	return s->ylog ? pow(10, log10(s->ymin) + t * (log10(s->ymax) - log10(s->ymin)))
		       : s->ymin + t * (s->ymax - s->ymin);
}

/* Within 0.5% of the axis (of its decades on a log axis). */
static int near_x(const struct svg_info *s, double px, double v)
{
	return s->xlog ? fabs(log10(data_x(s, px) / v)) <= 0.005 * log10(s->xmax / s->xmin)
		       : fabs(data_x(s, px) - v) <= 0.005 * fabs(s->xmax - s->xmin);
}

static int near_y(const struct svg_info *s, double py, double v)
{
	return s->ylog ? fabs(log10(data_y(s, py) / v)) <= 0.005 * log10(s->ymax / s->ymin)
		       : fabs(data_y(s, py) - v) <= 0.005 * fabs(s->ymax - s->ymin);
}

/* Every path keeps the contract: data-points is the number of points in d. */
static int contract_kept(const struct svg_info *s)
{
	double x, y;

	for (int i = 0; i < s->n_paths; i++)
		if (s->points[i] != path_points(s->d[i], &x, &y, 0))
			return 0;
	return 1;
}

/* A result row. random_acc < 0: no random trials. */
static json_t *row(const char *group, const char *norm, double eps, double acc, double dl, double fo, double random_acc)
{
	json_t *r = json_pack("{s:s, s:s, s:f, s:f, s:i, s:i, s:f, s:{s:f, s:f, s:f}, s:i}", "group", group, "norm",
			      norm, "epsilon", eps, "epsilon_effective", eps, "sparsity", 0, "steps", 1, "first_order",
			      fo, "gradient", "loss", 0.3 + dl, "accuracy", acc, "loss_change", dl, "block", 0);

	if (random_acc >= 0)
		json_object_set_new(r, "random",
				    json_pack("{s:i, s:i, s:f, s:f, s:f}", "trials", 3, "seed", 1, "accuracy_mean",
					      random_acc, "accuracy_min", random_acc - 0.01, "loss_change_mean", 1e-4));
	else
		json_object_set_new(r, "random", json_null());
	return r;
}

static json_t *rank_row(const char *group, double eps, double dl, int rank)
{
	return json_pack("{s:s, s:s, s:f, s:i, s:f, s:f, s:i, s:i}", "group", group, "norm", "l2", "epsilon", eps,
			 "sparsity", 0, "loss_change", dl, "accuracy", 0.8, "rank", rank, "block", 1);
}

/* A report: l2 at three radii spanning 100x (with random trials, out of
 * order), linf at two (without), two layers, a ranking with awkward names. */
static json_t *report_fixture(void)
{
	json_t *res = json_array(), *rank = json_array();

	json_array_append_new(res, row("model", "l2", 0.01, 0.86, 0.01, 0.005, 0.87));
	json_array_append_new(res, row("model", "l2", 1.0, 0.40, 3.0, 0.5, 0.86));
	json_array_append_new(res, row("model", "l2", 0.1, 0.80, 0.2, 0.05, 0.869));
	json_array_append_new(res, row("model", "linf", 0.001, 0.84, 0.05, 0.02, -1));
	json_array_append_new(res, row("model", "linf", 0.01, 0.30, 4.0, 0.2, -1));
	json_array_append_new(res, row("layer:/conv<1>/Conv", "l2", 0.1, 0.85, 0.02, 0.01, -1));
	json_array_append_new(res, row("layer:a&\"b\"", "l2", 0.1, 0.83, 0.04, 0.02, -1));
	json_array_append_new(rank, rank_row("layer:a&\"b\"", 0.1, 0.04, 1));
	json_array_append_new(rank, rank_row("layer:/conv<1>/Conv", 0.1, 0.02, 2));
	return json_pack("{s:i, s:{s:f, s:f}, s:o, s:o}", "version", 1, "clean", "loss", 0.3, "accuracy", 0.87,
			 "results", res, "ranking", rank);
}

static int listed(const json_t *list, const char *name)
{
	size_t i;
	json_t *c;

	json_array_foreach(list, i, c)
	{
		if (!strcmp(json_string_value(json_object_get(c, "name")), name))
			return 1;
	}
	return 0;
}

static char *draw_at(struct pc_test *t, int line, const json_t *rep, const char *name, struct svg_info *s)
{
	struct pc_error err = {0};
	char *svg = NULL;

	memset(s, 0, sizeof(*s));
	if (pcd_chart_svg(rep, name, &svg, &err)) {
		pc_test_fail(t, __FILE__, line, "chart %s: %s: %s", name, err.where, err.text);
		return NULL;
	}
	if (!parse_svg(svg, s))
		pc_test_fail(t, __FILE__, line, "chart %s does not parse as XML", name);
	else if (!s->has_title || !s->has_plot || !s->has_legend || !s->n_ticks || !contract_kept(s))
		pc_test_fail(t, __FILE__, line, "chart %s: title %d, plot %d, legend %d, ticks %d, contract %d", name,
			     s->has_title, s->has_plot, s->has_legend, s->n_ticks, contract_kept(s));
	return svg;
}

#define draw(rep, name, s) draw_at(t, __LINE__, rep, name, s)

TEST(charts_accuracy_follows_the_report)
{
	json_t *rep = report_fixture(), *list = pcd_charts_list(rep);
	struct svg_info *s = malloc(sizeof(*s));
	static const double eps[] = {0.01, 0.1, 1.0}, acc[] = {86, 80, 40}, rnd[] = {87, 86.9, 86};
	double xs[16], ys[16];
	char *svg, *again = NULL;
	struct pc_error err = {0};
	int i, k;

	REQUIRE(rep && list && s);
	CHECK_INT(json_array_size(list), 3);
	CHECK(listed(list, "accuracy") && listed(list, "loss") && listed(list, "ranking") && !listed(list, "harden"));
	CHECK(!strcmp(json_string_value(json_object_get(json_array_get(list, 0), "name")), "accuracy"));
	CHECK(json_is_string(json_object_get(json_array_get(list, 0), "title")));
	svg = draw(rep, "accuracy", s);
	REQUIRE(svg && s->ok);
	/* l2: gradient, random mean, random worst; linf: gradient only */
	CHECK_INT(s->n_paths, 4);
	CHECK(find_path(s, "l2 gradient") >= 0 && find_path(s, "l2 random mean") >= 0 &&
	      find_path(s, "l2 random worst") >= 0 && find_path(s, "linf gradient") >= 0);
	CHECK_MSG(s->xlog == 1 && s->ylog == 0, "radii over three decades want a log axis");
	CHECK_INT(s->n_refs, 1); /* the clean accuracy */
	/* the drawn points map back to the numbers, sorted by radius */
	i = find_path(s, "l2 gradient");
	REQUIRE(i >= 0);
	CHECK(!s->dashed[i]);
	CHECK_INT(s->points[i], 3);
	CHECK_INT(path_points(s->d[i], xs, ys, 16), 3);
	for (k = 0; k < 3; k++) {
		CHECK_MSG(near_x(s, xs[k], eps[k]), "x %d: %g vs %g", k, data_x(s, xs[k]), eps[k]);
		CHECK_MSG(near_y(s, ys[k], acc[k]), "y %d: %g vs %g", k, data_y(s, ys[k]), acc[k]);
	}
	CHECK(ys[0] < ys[1] && ys[1] < ys[2]); /* a higher accuracy is higher up */
	i = find_path(s, "l2 random mean");
	REQUIRE(i >= 0);
	CHECK(s->dashed[i]);
	CHECK_INT(path_points(s->d[i], xs, ys, 16), 3);
	for (k = 0; k < 3; k++)
		CHECK(near_y(s, ys[k], rnd[k]));
	i = find_path(s, "l2 random worst");
	REQUIRE(i >= 0);
	path_points(s->d[i], xs, ys, 16);
	CHECK(s->dashed[i] && near_y(s, ys[0], 86));
	CHECK_INT(s->points[find_path(s, "linf gradient")], 2);
	CHECK(s->ymin >= 0 && s->ymax <= 100 && s->ymin <= 30 && s->ymax >= 87);
	CHECK(strstr(svg, "accuracy (%)") != NULL && strstr(svg, "corruption radius \u03b5") != NULL);
	/* the same report, the same bytes */
	REQUIRE(pcd_chart_svg(rep, "accuracy", &again, &err) == PC_OK);
	CHECK(!strcmp(svg, again));
	free(again);
	free(svg);

	/* radii within a factor of 20: a linear axis */
	{
		json_t *lin =
		    json_pack("{s:{s:f, s:f}, s:[o, o, o]}", "clean", "loss", 0.3, "accuracy", 0.9, "results",
			      row("model", "l2", 0.5, 0.8, 0.1, 0.1, 0.9), row("model", "l2", 1, 0.7, 0.3, 0.2, 0.9),
			      row("model", "l2", 2, 0.5, 1, 0.4, 0.89));
		svg = draw(lin, "accuracy", s);
		CHECK(svg && s->xlog == 0 && s->xmin <= 0.5 && s->xmax >= 2);
		CHECK(svg && strstr(svg, "\u03b5 (l2"));
		free(svg);
		json_decref(lin);
	}
	free(s);
	json_decref(list);
	json_decref(rep);
}

/* Without a "model" block the group with the most results is drawn, and
 * each (norm, sparsity, steps) is its own set of lines. */
TEST(charts_accuracy_settings_and_groups)
{
	json_t *res = json_array(), *rep, *r;
	struct svg_info *s = malloc(sizeof(*s));
	char *svg;

	REQUIRE(res && s);
	json_array_append_new(res, row("layer:fc", "l2", 0.1, 0.8, 0.1, 0.1, 0.85));
	json_array_append_new(res, row("layer:fc", "l2", 0.2, 0.7, 0.2, 0.2, 0.85));
	json_array_append_new(res, row("layer:conv", "l2", 0.1, 0.8, 0.1, 0.1, -1));
	r = row("layer:fc", "l2", 0.1, 0.6, 0.1, 0.1, -1);
	json_object_set_new(r, "sparsity", json_integer(100));
	json_array_append_new(res, r);
	r = row("layer:fc", "l2", 0.2, 0.5, 0.1, 0.1, -1);
	json_object_set_new(r, "steps", json_integer(3));
	json_array_append_new(res, r);
	rep = json_pack("{s:{s:f, s:f}, s:o}", "clean", "loss", 0.3, "accuracy", 0.9, "results", res);
	REQUIRE(rep);
	svg = draw(rep, "accuracy", s);
	REQUIRE(svg && s->ok);
	/* fc: dense (gradient, mean, worst), 100 weights, 3 steps; conv not drawn */
	CHECK_INT(s->n_paths, 5);
	CHECK(find_path(s, "l2 gradient") >= 0 && find_path(s, "l2 gradient, 100 weights") >= 0 &&
	      find_path(s, "l2 gradient, 3 steps") >= 0 && find_path(s, "l2 random worst") >= 0);
	CHECK(find_path(s, "l2 gradient") >= 0 && s->points[find_path(s, "l2 gradient")] == 2);
	CHECK(strstr(s->title, "fc") != NULL);
	free(svg);
	free(s);
	json_decref(rep);
}

TEST(charts_loss_scatter)
{
	json_t *rep = report_fixture();
	struct svg_info *s = malloc(sizeof(*s));
	static const double fo[] = {0.005, 0.01, 0.02, 0.05, 0.5}, dl[] = {0.01, 0.02, 0.04, 0.2, 3.0};
	double xs[16], ys[16];
	char *svg;
	int i, k;

	REQUIRE(rep && s);
	/* a scatter, one series per norm, every result of every group a point */
	svg = draw(rep, "loss", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 2);
	CHECK_MSG(s->xlog && s->ylog, "positive values over decades: log-log");
	CHECK_INT(s->n_refs, 1); /* y = x */
	i = find_path(s, "l2 corruption");
	REQUIRE(i >= 0);
	CHECK_INT(s->points[i], 5);
	CHECK_INT(path_points(s->d[i], xs, ys, 16), 5);
	/* each point is "M x y h 0", a round dot */
	CHECK(strstr(s->d[i], " h 0") != NULL && strstr(svg, "stroke-linecap=\"round\"") != NULL);
	/* sorted by the estimate */
	for (k = 0; k < 5; k++)
		CHECK_MSG(near_x(s, xs[k], fo[k]) && near_y(s, ys[k], dl[k]), "point %d: (%g, %g)", k, data_x(s, xs[k]),
			  data_y(s, ys[k]));
	i = find_path(s, "linf corruption");
	CHECK(i >= 0 && s->points[i] == 2);
	free(svg);

	/* a loss that fell: no log axis can hold it */
	json_object_set_new(json_object_get(json_array_get(json_object_get(rep, "results"), 0), "gradient"),
			    "loss_change", json_real(-0.01));
	svg = draw(rep, "loss", s);
	CHECK(svg && !s->xlog && !s->ylog && s->ymin <= -0.01);
	free(svg);
	free(s);
	json_decref(rep);
}

TEST(charts_ranking_bars)
{
	json_t *rep = report_fixture(), *rank = json_array();
	struct svg_info *s = malloc(sizeof(*s));
	double xs[32], ys[32];
	char *svg, name[32];
	int k;

	REQUIRE(rep && rank && s);
	svg = draw(rep, "ranking", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 1);
	CHECK_INT(s->points[0], 2);
	CHECK_INT(path_points(s->d[0], xs, ys, 16), 2);
	/* names escaped, without their kind, and the document still parses */
	CHECK(strstr(svg, "a&amp;&quot;b&quot;") != NULL && strstr(svg, "/conv&lt;1&gt;/Conv") != NULL);
	CHECK(!strstr(svg, "<1>") && !strstr(svg, ">layer:"));
	free(svg);

	/* 25 groups at 0.5 beat 2 at 0.1: the top 20 by loss change, in order,
	 * whatever the order of the report, and a line for the 5 left out */
	for (k = 0; k < 25; k++) {
		snprintf(name, sizeof(name), "tensor:w%02d", k);
		json_array_append_new(rank, rank_row(name, 0.5, 0.01 * ((k * 7) % 25 + 1), 25 - k));
	}
	json_array_append_new(rank, rank_row("layer:x", 0.1, 9, 1));
	json_array_append_new(rank, rank_row("layer:y", 0.1, 8, 2));
	json_object_set_new(rep, "ranking", rank);
	svg = draw(rep, "ranking", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 1);
	CHECK_INT(s->points[0], 20);
	REQUIRE(path_points(s->d[0], xs, ys, 32) == 20);
	CHECK(strstr(s->title, "0.5") != NULL && strstr(s->title, "l2") != NULL);
	CHECK_MSG(strstr(s->title, "The 20 most fragile of 25 groups") != NULL, "%s", s->title);
	CHECK(strstr(svg, ">5 more groups not shown</text>") != NULL);
	CHECK(!strstr(svg, ">x (") && strstr(svg, ">w") != NULL);
	/* a bar's outline goes from 0 to its value: "M x0 y H x1 V ..." */
	for (k = 0; k < 20; k++) {
		const char *m = s->d[0];
		double x0, y, x1;

		for (int j = 0; j <= k; j++)
			m = strchr(m + (j > 0), 'M');
		REQUIRE(m && sscanf(m, "M %lf %lf H %lf", &x0, &y, &x1) == 3);
		CHECK_MSG(near_x(s, x0, 0) && near_x(s, x1, 0.01 * (25 - k)), "bar %d: %g", k, data_x(s, x1));
		if (k)
			CHECK(ys[k] > ys[k - 1]);
	}
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
	json_object_set_new(rep, "results",
			    json_pack("[{s:s, s:s, s:f, s:{s:s}}]", "group", "model", "norm", "l2", "epsilon", 0.1,
				      "gradient", "accuracy", "high"));
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "accuracy", &svg, &err), PC_ERR_FORMAT);
	CHECK_MSG(!strcmp(err.where, "results[0].gradient.accuracy"), "%s: %s", err.where, err.text);
	CHECK(svg == NULL);
	list = pcd_charts_list(rep);
	CHECK(list && json_array_size(list) == 0);
	json_decref(list);
	/* a random outcome whose mean is not a number */
	json_object_set_new(rep, "results", json_array());
	json_array_append_new(json_object_get(rep, "results"), row("model", "l2", 0.1, 0.8, 0.1, 0.1, 0.8));
	json_object_set_new(json_object_get(json_array_get(json_object_get(rep, "results"), 0), "random"),
			    "accuracy_mean", json_string("0.8"));
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "accuracy", &svg, &err), PC_ERR_FORMAT);
	CHECK_MSG(!strcmp(err.where, "results[0].random.accuracy_mean"), "%s", err.where);
	/* the ranking malformed */
	json_object_set_new(rep, "ranking",
			    json_pack("[{s:s, s:s, s:f, s:s}]", "group", "layer:a", "norm", "l2", "epsilon", 0.1,
				      "loss_change", "big"));
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "ranking", &svg, &err), PC_ERR_FORMAT);
	CHECK_MSG(!strcmp(err.where, "ranking[0].loss_change"), "%s", err.where);
	/* no results: nothing to draw; a report that is not an object */
	json_object_set_new(rep, "results", json_array());
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(rep, "loss", &svg, &err), PC_ERR_NOT_FOUND);
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(json_object_get(rep, "results"), "loss", &svg, &err), PC_ERR_FORMAT);
	CHECK(svg == NULL);
	json_decref(rep);
}

TEST(charts_harden_before_after)
{
	json_t *before = report_fixture(), *after = report_fixture(), *rep, *list, *bad;
	struct svg_info *s = malloc(sizeof(*s));
	struct pc_error err = {0};
	double xs[8], ys[8];
	char *svg = NULL;
	int b, a;

	REQUIRE(before && after && s);
	/* after hardening: 0.40 at radius 1 becomes 0.70 */
	json_object_set_new(json_object_get(json_array_get(json_object_get(after, "results"), 1), "gradient"),
			    "accuracy", json_real(0.70));
	json_object_set_new(json_object_get(after, "clean"), "accuracy", json_real(0.86));
	rep = json_pack("{s:s, s:O, s:O, s:{s:[{s:i, s:f, s:f}]}}", "kind", "harden", "before", before, "after", after,
			"training", "epochs", "epoch", 1, "loss", 0.4, "accuracy", 0.8);
	REQUIRE(rep);
	list = pcd_charts_list(rep);
	CHECK(list && listed(list, "harden") && !listed(list, "accuracy"));
	json_decref(list);
	svg = draw(rep, "harden", s);
	REQUIRE(svg && s->ok);
	/* gradient lines per norm, before (dashed) and after (solid) */
	CHECK_INT(s->n_paths, 4);
	b = find_path(s, "before: l2 gradient");
	a = find_path(s, "after: l2 gradient");
	REQUIRE(b >= 0 && a >= 0);
	CHECK(s->dashed[b] && !s->dashed[a]);
	CHECK(s->points[b] == 3 && s->points[a] == 3);
	CHECK_INT(s->n_refs, 2); /* the clean accuracy before and after */
	path_points(s->d[a], xs, ys, 8);
	CHECK_MSG(near_y(s, ys[2], 70), "after at 1: %g", data_y(s, ys[2]));
	path_points(s->d[b], xs, ys, 8);
	CHECK(near_y(s, ys[2], 40));
	free(svg);
	/* only with both halves */
	bad = json_pack("{s:s, s:O}", "kind", "harden", "before", before);
	REQUIRE(bad);
	CHECK_INT(pcd_chart_svg(bad, "harden", &svg, &err), PC_ERR_NOT_FOUND);
	list = pcd_charts_list(bad);
	CHECK(list && !listed(list, "harden"));
	json_decref(list);
	json_object_set_new(bad, "after", json_string("soon"));
	pc_error_clear(&err);
	CHECK_INT(pcd_chart_svg(bad, "harden", &svg, &err), PC_ERR_FORMAT);
	CHECK(!strcmp(err.where, "after"));
	json_decref(bad);
	free(s);
	json_decref(rep);
	json_decref(before);
	json_decref(after);
}

/* Big studies and hostile names: no series or point is dropped, and text
 * cut for display stays valid UTF-8. */
TEST(charts_large_and_awkward)
{
	json_t *res = json_array(), *rank = json_array(), *rep;
	struct svg_info *s = malloc(sizeof(*s));
	char group[256], norm[8], *svg;
	int n = 0, k, total = 0;

	REQUIRE(res && rank && s);
	for (k = 0; k < 300; k++) {
		/* a long name of two-byte characters, to be cut for display */
		snprintf(group, sizeof(group), "tensor:%s%d<&'\">",
			 "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
			 "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
			 "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9",
			 k);
		snprintf(norm, sizeof(norm), "l%d", 2 + k % 10);
		json_array_append_new(res,
				      row(group, norm, 0.001 * (k + 1), 0.5, 0.001 * (k + 1), 0.001 * (k + 1), 0.6));
		json_array_append_new(rank, rank_row(group, 0.1, 0.001 * (k + 1), k + 1));
		n++;
	}
	rep = json_pack("{s:{s:f, s:f}, s:o, s:o}", "clean", "loss", 0.3, "accuracy", 0.9, "results", res, "ranking",
			rank);
	REQUIRE(rep);
	svg = draw(rep, "loss", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 10);
	for (k = 0; k < s->n_paths; k++)
		total += s->points[k];
	CHECK_INT(total, n);
	free(svg);
	svg = draw(rep, "accuracy", s);
	CHECK(svg && s->ok);
	free(svg);
	svg = draw(rep, "ranking", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->points[0], 20);
	CHECK(strstr(svg, "\u2026") != NULL);
	free(svg);
	free(s);
	json_decref(rep);
}

/* A real report: every chart it lists draws, parses and keeps the
 * contract. The analysis fixture is used when it is a report. */
TEST(charts_of_a_real_report)
{
	static const char *const files[] = {"tests/reference/fixtures/analysis_cnn_op17.json",
					    "api/examples/demo-report.json"};
	struct svg_info *s = malloc(sizeof(*s));
	int reports = 0;

	REQUIRE(s);
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		char path[1024];
		json_t *rep, *list, *c, *results;
		size_t i;

		snprintf(path, sizeof(path), "%s/%s", pc_test_root(), files[f]);
		rep = json_load_file(path, 0, NULL);
		results = json_object_get(rep, "results");
		/* the analysis fixture holds PyTorch's numbers, not a report */
		if (!json_is_array(results) || !json_is_object(json_object_get(rep, "clean"))) {
			json_decref(rep);
			continue;
		}
		reports++;
		list = pcd_charts_list(rep);
		CHECK(list && json_array_size(list) >= 2 && listed(list, "accuracy") && listed(list, "loss"));
		json_array_foreach(list, i, c)
		{
			const char *name = json_string_value(json_object_get(c, "name"));
			char *svg = draw(rep, name, s);

			CHECK_MSG(svg && s->ok && s->n_paths >= 1, "%s: %s", files[f], name);
			if (svg && !strcmp(name, "loss")) {
				int total = 0;

				for (int k = 0; k < s->n_paths; k++)
					total += s->points[k];
				CHECK_INT(total, json_array_size(results));
			}
			free(svg);
		}
		json_decref(list);
		json_decref(rep);
	}
	free(s);
	if (!reports)
		pc_test_skip(t, "no fixture is a report");
}

/* A 12-block GPT's layer ranking: 50 module groups (4 Linears a block, the
 * embeddings) and one long torchvision-style path. The chart draws the 20
 * most fragile by name, largest first, one row each with room between the
 * labels, says how many more there are, and cuts the long name in the
 * middle so that its module (the tail) still shows, the whole name in the
 * label's <title>. */
TEST(charts_ranking_many_layers)
{
	static const char *const part[] = {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"};
	static const char long_name[] = "encoder.layers.encoder_layer_11.self_attention.out_proj";
	json_t *rank = json_array(), *res = json_array(), *rep;
	struct svg_info *s = malloc(sizeof(*s));
	char names[51][80], group[96], *svg;
	double value[51], last_y = -1;
	int order[51], n = 0, bars = 0;
	const char *at;

	REQUIRE(rank && res && s);
	for (int b = 0; b < 12; b++)
		for (int j = 0; j < 4; j++)
			snprintf(names[n++], sizeof(names[0]), "blocks.%d.%s", b, part[j]);
	snprintf(names[n++], sizeof(names[0]), "wte");
	snprintf(names[n++], sizeof(names[0]), "wpe");
	snprintf(names[n++], sizeof(names[0]), "%s", long_name);
	/* distinct loss changes in a scrambled order (17 is prime to 51): the
	 * long name the largest */
	for (int k = 0; k < n; k++) {
		value[k] = k == n - 1 ? 1.0 : 0.001 * ((k * 17) % 50 + 1);
		snprintf(group, sizeof(group), "layer:%s", names[k]);
		json_array_append_new(rank, rank_row(group, 0.5, value[k], k + 1));
	}
	json_array_append_new(res, row("model", "l2", 0.5, 0.5, 0.3, 0.2, -1));
	/* the expected order: by value, largest first */
	for (int k = 0; k < n; k++)
		order[k] = k;
	for (int a = 0; a < n; a++)
		for (int c = a + 1; c < n; c++)
			if (value[order[c]] > value[order[a]]) {
				int tmp = order[a];
				order[a] = order[c];
				order[c] = tmp;
			}
	rep = json_pack("{s:{s:f, s:f}, s:o, s:o}", "clean", "loss", 0.3, "accuracy", 0.9, "results", res, "ranking",
			rank);
	REQUIRE(rep);
	svg = draw(rep, "ranking", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 1);
	CHECK_INT(s->points[0], 20);
	CHECK_MSG(strstr(s->title, "The 20 most fragile of 51 groups") != NULL, "%s", s->title);
	CHECK(strstr(svg, "<text class=\"note\"") && strstr(svg, ">31 more groups not shown</text>"));
	for (at = strstr(svg, "class=\"bar-label\""); at; at = strstr(at + 1, "class=\"bar-label\""), bars++) {
		const char *text = strchr(at, '>') + 1, *end = strstr(text, " (");
		char shown[160];
		double y;
		int chars = 0;

		REQUIRE(sscanf(strstr(at, " y=\"") + 4, "%lf", &y) == 1 && end && bars < 20);
		/* 11 px text on rows at least 15 px apart: no two labels touch */
		CHECK_MSG(last_y < 0 || y - last_y >= 15, "bar %d at y %g, the one above at %g", bars, y, last_y);
		last_y = y;
		if (!strncmp(text, "<title>", 7)) {
			CHECK_MSG(!strncmp(text + 7, long_name, strlen(long_name)), "bar %d: %.60s", bars, text);
			text = strstr(text, "</title>") + 8;
		}
		snprintf(shown, sizeof(shown), "%.*s", (int)(end - text), text);
		for (const char *c = shown; *c; c++)
			chars += ((unsigned char)*c & 0xC0) != 0x80;
		CHECK_MSG(chars <= 44, "bar %d: %s is %d characters", bars, shown, chars);
		if (order[bars] == n - 1) {
			/* the long name: cut in the middle, its module kept */
			CHECK_MSG(strstr(shown, "\u2026") && strstr(shown, "_11.self_attention.out_proj") &&
				      !strncmp(shown, "encoder.layers", 14),
				  "the long name shows as %s", shown);
		} else {
			CHECK_MSG(!strcmp(shown, names[order[bars]]), "bar %d is %s, want %s", bars, shown,
				  names[order[bars]]);
		}
	}
	CHECK_INT(bars, 20);
	/* the 21st is not drawn */
	snprintf(group, sizeof(group), ">%s (", names[order[20]]);
	CHECK(!strstr(svg, group));
	free(svg);
	free(s);
	json_decref(rep);
}

static json_t *ber_row(const char *format, const char *group, double ber, double mean, double worst)
{
	return json_pack("{s:s, s:f, s:s, s:i, s:f, s:f, s:f, s:f, s:[f, f], s:f}", "format", format, "ber", ber,
			 "group", group, "trials", 20, "flips_mean", ber * 1e6, "accuracy_mean", mean, "accuracy_std",
			 0.01, "accuracy_min", worst, "accuracy_ci95", mean - 0.005, mean + 0.005, "loss_mean", 0.4);
}

static json_t *faults_fixture(void)
{
	return json_pack(
	    "{s:{s:f, s:f}, s:{s:{s:{s:f, s:f}, s:{s:f, s:f}}, s:[o, o, o, o, o], s:[o, o]}}", "clean", "loss", 0.3,
	    "accuracy", 0.88, "faults", "quantized", "float32", "loss", 0.3, "accuracy", 0.88, "int8", "loss", 0.31,
	    "accuracy", 0.875, "random",
	    /* float32 out of order, to be sorted by ber; a layer row not drawn */
	    ber_row("float32", "model", 1e-4, 0.30, 0.10), ber_row("float32", "model", 1e-6, 0.86, 0.80),
	    ber_row("int8", "model", 1e-6, 0.875, 0.87), ber_row("int8", "model", 1e-4, 0.85, 0.83),
	    ber_row("int8", "layer:fc1", 1e-4, 0.5, 0.4), "search",
	    json_pack("{s:s, s:s, s:s, s:f, s:b, s:{s:f, s:f}, s:[{s:f}, {s:f}, {s:f}]}", "format", "int8", "group",
		      "model", "method", "bfa", "target_accuracy", 0.1, "reached", 1, "clean", "loss", 0.31,
		      "accuracy", 0.875, "flips", "accuracy", 0.6, "accuracy", 0.3, "accuracy", 0.09),
	    json_pack("{s:s, s:s, s:s, s:f, s:b, s:{s:f, s:f}, s:[{s:f}, {s:f}]}", "format", "int8", "group", "model",
		      "method", "best", "target_accuracy", 0.1, "reached", 1, "clean", "loss", 0.31, "accuracy", 0.875,
		      "flips", "accuracy", 0.4, "accuracy", 0.08));
}

TEST(charts_faults_accuracy_against_ber)
{
	json_t *rep = faults_fixture(), *list = pcd_charts_list(rep), *plain = report_fixture();
	json_t *plain_list = pcd_charts_list(plain);
	struct svg_info *s = malloc(sizeof(*s));
	static const double bers[] = {1e-6, 1e-4}, f32[] = {86, 30}, i8[] = {87.5, 85}, i8w[] = {87, 83};
	double xs[8], ys[8];
	char *svg;
	int i, k;

	REQUIRE(rep && list && s && plain_list);
	CHECK(listed(list, "faults") && listed(list, "search"));
	CHECK(!listed(plain_list, "faults") && !listed(plain_list, "search"));
	svg = draw(rep, "faults", s);
	REQUIRE(svg && s->ok);
	/* per format a mean and a worst line; the layer's row is not the model's */
	CHECK_INT(s->n_paths, 4);
	CHECK_MSG(s->xlog == 1, "the bit error rate is drawn on a log axis");
	i = find_path(s, "float32 random mean");
	REQUIRE(i >= 0);
	CHECK(!s->dashed[i]);
	CHECK_INT(path_points(s->d[i], xs, ys, 8), 2);
	for (k = 0; k < 2; k++) {
		CHECK_MSG(near_x(s, xs[k], bers[k]), "x %d: %g vs %g", k, data_x(s, xs[k]), bers[k]);
		CHECK_MSG(near_y(s, ys[k], f32[k]), "y %d: %g vs %g", k, data_y(s, ys[k]), f32[k]);
	}
	i = find_path(s, "int8 random mean");
	REQUIRE(i >= 0);
	CHECK_INT(path_points(s->d[i], xs, ys, 8), 2);
	for (k = 0; k < 2; k++)
		CHECK(near_x(s, xs[k], bers[k]) && near_y(s, ys[k], i8[k]));
	i = find_path(s, "int8 random worst");
	REQUIRE(i >= 0);
	CHECK(s->dashed[i]);
	CHECK_INT(path_points(s->d[i], xs, ys, 8), 2);
	for (k = 0; k < 2; k++)
		CHECK(near_y(s, ys[k], i8w[k]));
	CHECK(strstr(svg, "bit error rate") != NULL);
	free(svg);
	free(s);
	json_decref(list);
	json_decref(plain_list);
	json_decref(plain);
	json_decref(rep);
}

TEST(charts_search_accuracy_against_flips)
{
	json_t *rep = faults_fixture();
	struct svg_info *s = malloc(sizeof(*s));
	static const double bfa[] = {87.5, 60, 30, 9}, best[] = {87.5, 40, 8};
	double xs[8], ys[8];
	struct pc_error err = {0};
	char *svg = NULL;
	int i, k;

	REQUIRE(rep && s);
	svg = draw(rep, "search", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 2);
	CHECK_INT(s->n_refs, 1); /* the target */
	i = find_path(s, "int8 bfa");
	REQUIRE(i >= 0);
	CHECK(s->dashed[i]);
	CHECK_INT(path_points(s->d[i], xs, ys, 8), 4);
	for (k = 0; k < 4; k++)
		CHECK_MSG(near_x(s, xs[k], k) && near_y(s, ys[k], bfa[k]), "bfa point %d: (%g, %g)", k,
			  data_x(s, xs[k]), data_y(s, ys[k]));
	i = find_path(s, "int8 best");
	REQUIRE(i >= 0);
	CHECK(!s->dashed[i]);
	CHECK_INT(path_points(s->d[i], xs, ys, 8), 3);
	for (k = 0; k < 3; k++)
		CHECK(near_x(s, xs[k], k) && near_y(s, ys[k], best[k]));
	free(svg);
	/* a malformed row names its field */
	json_object_set_new(json_array_get(json_object_get(json_object_get(rep, "faults"), "search"), 1), "flips",
			    json_pack("[{s:s}]", "accuracy", "x"));
	svg = NULL;
	CHECK_INT(pcd_chart_svg(rep, "search", &svg, &err), PC_ERR_FORMAT);
	CHECK_MSG(!strcmp(err.where, "faults.search[1].flips[0].accuracy"), "where: %s", err.where);
	free(svg);
	free(s);
	json_decref(rep);
}

TEST(charts_faults_summary_tables)
{
	json_t *rep = faults_fixture();
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	REQUIRE(rep);
	REQUIRE((f = open_memstream(&text, &len)));
	pcd_summary_print(rep, 5, f);
	fclose(f);
	REQUIRE(text);
	CHECK_MSG(strstr(text, "  int8            87.50%        0.31\n") != NULL, "%s", text);
	CHECK_MSG(strstr(text, "  float32     model                          1e-06           1      86.00%        "
			       "[85.50%, 86.50%]      80.00%\n") != NULL,
		  "%s", text);
	CHECK_MSG(strstr(text, "  int8        model                     bfa         10.00%         3       9.00%"
			       "         yes\n") != NULL,
		  "%s", text);
	CHECK_MSG(strstr(text, "  int8        model                     best        10.00%         2       8.00%"
			       "         yes\n") != NULL,
		  "%s", text);
	free(text);
	json_decref(rep);
}

/* critical[]: three l2 groups (conv1's random radius not reached) and one linf */
static json_t *critical_fixture(void)
{
	json_t *crit;

	crit = json_pack("[{s:s, s:s, s:i, s:f, s:f, s:{s:f, s:f, s:i}, s:{s:f, s:f, s:i}, s:f},"
			 " {s:s, s:s, s:i, s:f, s:f, s:{s:f, s:f, s:i}, s:{s:n, s:n, s:i}, s:n},"
			 " {s:s, s:s, s:i, s:f, s:f, s:{s:f, s:f, s:i}, s:{s:f, s:f, s:i}, s:f},"
			 " {s:s, s:s, s:i, s:f, s:f, s:{s:f, s:f, s:i}, s:{s:f, s:f, s:i}, s:f}]",
			 "group", "layer:fc3", "norm", "l2", "sparsity", 0, "accuracy_drop", 0.05, "tolerance", 0.01,
			 "gradient", "epsilon", 0.2, "accuracy", 0.8, "evaluations", 7, "random", "epsilon", 2.0,
			 "accuracy", 0.8, "evaluations", 8, "ratio", 10.0, "group", "layer:conv1", "norm", "l2",
			 "sparsity", 0, "accuracy_drop", 0.05, "tolerance", 0.01, "gradient", "epsilon", 1.0,
			 "accuracy", 0.8, "evaluations", 7, "random", "epsilon", "accuracy", "evaluations", 20,
			 "ratio", "group", "layer:fc1", "norm", "l2", "sparsity", 0, "accuracy_drop", 0.05,
			 "tolerance", 0.01, "gradient", "epsilon", 0.5, "accuracy", 0.8, "evaluations", 7, "random",
			 "epsilon", 20.0, "accuracy", 0.8, "evaluations", 9, "ratio", 40.0, "group", "layer:fc1",
			 "norm", "linf", "sparsity", 0, "accuracy_drop", 0.05, "tolerance", 0.01, "gradient",
			 "epsilon", 0.001, "accuracy", 0.8, "evaluations", 7, "random", "epsilon", 0.01, "accuracy",
			 0.8, "evaluations", 9, "ratio", 10.0);
	return crit;
}

/* critical: a gradient and a random bar per group, gradient above random,
 * from 0 to the radius; a radius not reached has no bar; listed only when
 * the report has critical[] */
TEST(charts_critical_bars)
{
	json_t *rep = report_fixture(), *crit;
	struct svg_info *s = malloc(sizeof(*s));
	double xs[8], ys[8];
	static const double want_g[] = {0.2, 1.0, 0.5}, want_r[] = {2.0, 20.0};
	char *svg;
	json_t *list;

	REQUIRE(rep && s);
	list = pcd_charts_list(rep);
	CHECK(list && !listed(list, "critical"));
	json_decref(list);
	crit = critical_fixture();
	REQUIRE(crit);
	json_object_set_new(rep, "critical", crit);
	list = pcd_charts_list(rep);
	CHECK(list && listed(list, "critical"));
	json_decref(list);
	svg = draw(rep, "critical", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 2);
	CHECK(!strcmp(s->label[0], "gradient critical radius") && !strcmp(s->label[1], "random critical radius"));
	/* the l2 setting only: three gradient bars, two random ones */
	CHECK_INT(s->points[0], 3);
	CHECK_INT(s->points[1], 2);
	REQUIRE(path_points(s->d[0], xs, ys, 8) == 3);
	for (int k = 0; k < 3; k++) {
		const char *m = s->d[0];
		double x0, y, x1;
		for (int j = 0; j <= k; j++)
			m = strchr(m + (j > 0), 'M');
		REQUIRE(m && sscanf(m, "M %lf %lf H %lf", &x0, &y, &x1) == 3);
		CHECK_MSG(near_x(s, x0, 0) && near_x(s, x1, want_g[k]), "gradient bar %d: %g", k, data_x(s, x1));
	}
	for (int k = 0; k < 2; k++) {
		const char *m = s->d[1];
		double x0, y, x1;
		for (int j = 0; j <= k; j++)
			m = strchr(m + (j > 0), 'M');
		REQUIRE(m && sscanf(m, "M %lf %lf H %lf", &x0, &y, &x1) == 3);
		CHECK_MSG(near_x(s, x1, want_r[k]), "random bar %d: %g", k, data_x(s, x1));
	}
	CHECK(strstr(s->title, "0.05") && strstr(s->title, "l2") && strstr(s->title, "dense"));
	CHECK(strstr(svg, ">fc3 (0.2)</text>") && strstr(svg, ">fc1 (20)</text>") != NULL);
	CHECK(contract_kept(s));
	free(svg);
	free(s);
	json_decref(rep);
}

/* the summary's critical table comes first, a radius not reached as "-" */
TEST(charts_critical_summary_table)
{
	json_t *rep = report_fixture();
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	REQUIRE(rep);
	json_object_set_new(rep, "critical", critical_fixture());
	REQUIRE((f = open_memstream(&text, &len)));
	pcd_summary_print(rep, 5, f);
	fclose(f);
	REQUIRE(text);
	CHECK_MSG(strstr(text, "critical radius (accuracy below clean - 0.05; to 0.01 relative") != NULL, "%s", text);
	CHECK_MSG(strstr(text, "  layer:fc3                 l2            0           0.2      7             2      8"
			       "        10\n") != NULL,
		  "%s", text);
	CHECK_MSG(strstr(text, "  layer:conv1               l2            0             1      7             -     20"
			       "         -\n") != NULL,
		  "%s", text);
	CHECK(strstr(text, "critical radius") < strstr(text, "the whole model"));
	free(text);
	json_decref(rep);
}

/* A spec mixing a critical block with ordinary ones: the ranking chart
 * draws the ordinary blocks' rows, as if the critical rows were not there,
 * and a ranking of critical rows only offers no ranking chart. */
TEST(charts_ranking_leaves_critical_rows_out)
{
	json_t *rep = report_fixture(), *mixed, *only, *row, *list;
	char *plain = NULL, *with = NULL;
	struct pc_error err = {0};

	REQUIRE(rep);
	REQUIRE(pcd_chart_svg(rep, "ranking", &plain, &err) == 0);
	mixed = json_deep_copy(rep);
	row = json_pack("{s:s, s:s, s:i, s:s, s:f, s:f, s:f, s:i}", "group", "layer:fc1", "norm", "l2", "sparsity", 0,
			"by", "critical_radius", "critical_radius", 0.25, "accuracy", 0.8, "random_critical_radius", 3.0,
			"rank", 1);
	json_array_insert_new(json_object_get(mixed, "ranking"), 0, row);
	CHECK(pcd_chart_svg(mixed, "ranking", &with, &err) == 0);
	CHECK_MSG(plain && with && !strcmp(plain, with), "the critical row changed the ranking chart");
	only = json_deep_copy(mixed);
	json_object_set_new(only, "ranking", json_array());
	json_array_append(json_object_get(only, "ranking"), row);
	list = pcd_charts_list(only);
	CHECK(list && !listed(list, "ranking"));
	free(with);
	with = NULL;
	memset(&err, 0, sizeof(err));
	CHECK(pcd_chart_svg(only, "ranking", &with, &err) != 0 && strstr(err.text, "by critical radius"));
	json_decref(list);
	json_decref(only);
	json_decref(mixed);
	json_decref(rep);
	free(plain);
	free(with);
}

/* A curvature block's numbers: each gradient row's second_order, a series
 * of its own in the loss chart (x the estimate, y the realised change) and
 * a column of the model table; the curvature object, a table of its own. */
TEST(charts_second_order_and_curvature)
{
	json_t *rep = report_fixture(), *row;
	struct svg_info *s = malloc(sizeof(*s));
	static const double dl[] = {0.01, 0.02, 0.04, 0.2, 3.0};
	double xs[16], ys[16];
	char *svg, *text = NULL;
	size_t len = 0, i;
	FILE *f;
	int k;

	REQUIRE(rep && s);
	json_array_foreach(json_object_get(rep, "results"), i, row)
	{
		const json_t *lc = json_object_get(json_object_get(row, "gradient"), "loss_change");
		if (json_is_number(lc))
			json_object_set_new(row, "second_order", json_real(0.9 * json_number_value(lc)));
	}
	svg = draw(rep, "loss", s);
	REQUIRE(svg && s->ok);
	CHECK_INT(s->n_paths, 4);
	CHECK(find_path(s, "l2 corruption") < 0);
	CHECK(find_path(s, "l2, first order") >= 0 && find_path(s, "linf, first order") >= 0);
	k = find_path(s, "l2, second order");
	REQUIRE(k >= 0);
	CHECK_INT(path_points(s->d[k], xs, ys, 16), 5);
	for (int j = 0; j < 5; j++)
		CHECK_MSG(near_x(s, xs[j], 0.9 * dl[j]) && near_y(s, ys[j], dl[j]), "point %d: (%g, %g)", j,
			  data_x(s, xs[j]), data_y(s, ys[j]));
	CHECK(strstr(svg, "first- and second-order estimates") != NULL);
	free(svg);

	json_object_set_new(rep, "curvature",
			    json_pack("{s:i, s:[f, f], s:b, s:i, s:f, s:[f, f], s:i, s:i, s:f, s:{s:{s:i, s:[f], s:b, "
				      "s:i, s:n, s:n, s:i, s:i}}}",
				      "parameters", 61706, "eigenvalues", 20.48, 18.64, "converged", 1, "lanczos_steps",
				      13, "trace", 113.0, "trace_ci95", 95.17, 130.9, "trace_samples", 30, "hvp_count",
				      43, "tau", 5e-4, "groups", "layer:fc3", "parameters", 850, "eigenvalues", 14.0,
				      "converged", 0, "lanczos_steps", 100, "trace", "trace_ci95", "trace_samples", 0,
				      "hvp_count", 100));
	REQUIRE((f = open_memstream(&text, &len)));
	pcd_summary_print(rep, 5, f);
	fclose(f);
	REQUIRE(text);
	CHECK_MSG(strstr(text, "first-order  second-order\n") != NULL, "%s", text);
	CHECK_MSG(strstr(text, "curvature (Hessian of the mean loss; trace: Hutchinson, 30 samples):") != NULL, "%s",
		  text);
	CHECK_MSG(strstr(text, "  model                          61706  20.48, 18.64                      yes         113"
			       "          [95.17, 130.9]        43\n") != NULL,
		  "%s", text);
	CHECK_MSG(strstr(text, "  layer:fc3                        850  14                                 no           -"
			       "                       -       100\n") != NULL,
		  "%s", text);
	free(text);
	free(s);
	json_decref(rep);
}
