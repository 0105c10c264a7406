/* charts: see charts.h. A chart is first gathered from the report into a
 * struct plot (series of points, reference lines, axis titles), then drawn
 * by one renderer, so that every chart shares axes, ticks, legend and the
 * series contract. The plot area has a fixed size (a chart is a picture to
 * glance at); the canvas grows to the right and down to fit the legend. */
#include "charts.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "markup.h"
#include "summary.h"

#define LEFT	  78
#define PLOT_W	  500
#define TOP	  44
#define PLOT_H	  340
#define BOTTOM	  62
#define LEGEND_X  (LEFT + PLOT_W + 22)
#define LEGEND_DY 18
#define MAX_BARS  20
#define MAX_REFS  2
/* characters of a name shown in a legend or beside a bar; the data-series
 * attribute and <title> keep the whole text */
#define SHOW_CHARS 44
/* The axes' reach: within it a decade, a step and a tick are normal finite
 * doubles; draw_ticks draws at most MAX_TICKS per axis whatever the range. */
#define AXIS_MAX 1e300
#define AXIS_MIN_LOG 1e-300
#define MAX_TICKS 64

/* Okabe-Ito, told apart with the common colour-vision deficiencies; its
 * yellow is left out (too pale on white), and the order makes each pair
 * (gradient, random) of one setting contrast */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000", "#56B4E9"};
#define N_COLOURS ((int)(sizeof(palette) / sizeof(palette[0])))

enum style { SOLID, DASHED, DOTTED, DOTS, BARS };

struct point {
	double x, y;
	const char *text; /* a bar's name, borrowed from the report */
};

struct series {
	char label[128];
	enum style style;
	int colour;
	int n, cap;
	struct point *pt;
};

struct ref {
	double y;
	enum style style;
	char label[64];
};

struct plot {
	char title[256], xlabel[128], ylabel[96];
	int xlog, ylog;
	double xmin, xmax, ymin, ymax;
	struct series *s;
	int n_series, cap_series;
	struct ref ref[MAX_REFS];
	int n_refs;
	int diagonal;
	int rows;      /* > 0: y is a position drawn as this many rows of bars, no y ticks */
	char note[96]; /* a line under the legend (what the chart leaves out), or "" */
};

/* --- text ------------------------------------------------------------------ */

/* Cuts a trailing incomplete UTF-8 sequence, which snprintf may leave when
 * it truncates, so that the document stays well-formed. */
static void utf8_trim(char *s)
{
	size_t n = strlen(s), i = n, want;
	unsigned char lead;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
		i--;
	if (i == 0)
		return;
	lead = (unsigned char)s[i - 1];
	want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	if (n - (i - 1) < want)
		s[i - 1] = '\0';
}

static void text_printf(char *s, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void text_printf(char *s, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s, size, fmt, ap);
	va_end(ap);
	utf8_trim(s);
}

static int utf8_chars(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

/* Text as XML character data or an attribute value, at most max characters
 * (0: all), an ellipsis marking the cut. */
static void bescape_max(FILE *out, const char *s, int max)
{
	int chars = 0;

	for (; *s; s++) {
		if (((unsigned char)*s & 0xC0) != 0x80 && max && ++chars > max) {
			fprintf(out, "\u2026");
			return;
		}
		pcd_markup_char(out, *s);
	}
}

/* The same, cut in the middle: a module path's head says where it is and
 * its tail which module (`encoder.layers.e…_11.self_attention.out_proj`),
 * so both stay, the tail the longer. */
static void bescape_mid(FILE *out, const char *s, int max)
{
	int total = utf8_chars(s), head = max / 3, tail = max - head - 1, chars = 0;

	if (total <= max) {
		bescape_max(out, s, 0);
		return;
	}
	for (; *s; s++) {
		int lead = ((unsigned char)*s & 0xC0) != 0x80;
		chars += lead;
		if (chars == head + 1 && lead)
			fprintf(out, "\u2026");
		if (chars <= head || chars > total - tail)
			pcd_markup_char(out, *s);
	}
}

static int nomem(struct pc_error *err)
{
	return pc_error_set(err, PC_ERR_NOMEM, "charts", "out of memory");
}

/* --- series ------------------------------------------------------------------ */

static void plot_free(struct plot *p)
{
	for (int i = 0; i < p->n_series; i++)
		free(p->s[i].pt);
	free(p->s);
}

static struct series *new_series(struct plot *p, const char *label, enum style style, int colour)
{
	struct series *s;

	if (p->n_series == p->cap_series) {
		int cap = p->cap_series ? 2 * p->cap_series : 8;
		struct series *q = realloc(p->s, (size_t)cap * sizeof(*q));

		if (!q)
			return NULL;
		p->s = q;
		p->cap_series = cap;
	}
	s = &p->s[p->n_series++];
	memset(s, 0, sizeof(*s));
	text_printf(s->label, sizeof(s->label), "%s", label);
	s->style = style;
	s->colour = colour % N_COLOURS;
	return s;
}

static int add_point(struct series *s, double x, double y, const char *text)
{
	if (s->n == s->cap) {
		int cap = s->cap ? 2 * s->cap : 16;
		struct point *q = realloc(s->pt, (size_t)cap * sizeof(*q));

		if (!q)
			return -1;
		s->pt = q;
		s->cap = cap;
	}
	s->pt[s->n++] = (struct point){x, y, text};
	return 0;
}

/* Sorts a series by x, stable, so that lines run left to right and equal
 * radii keep the report's order. */
static void sort_series(struct series *s)
{
	for (int i = 1; i < s->n; i++)
		for (int j = i; j > 0 && s->pt[j - 1].x > s->pt[j].x; j--) {
			struct point t = s->pt[j];

			s->pt[j] = s->pt[j - 1];
			s->pt[j - 1] = t;
		}
}

/* --- reading the report ------------------------------------------------------- */

/* o[key] as a number; PC_ERR_FORMAT naming "path.key" when it is not one. */
static int get_number(const json_t *o, const char *path, const char *key, double *v, struct pc_error *err)
{
	const json_t *x = json_object_get(o, key);
	char where[128];

	if (json_is_number(x)) {
		*v = json_number_value(x);
		return 0;
	}
	text_printf(where, sizeof(where), "%s.%s", path, key);
	return pc_error_set(err, PC_ERR_FORMAT, where, "%s is %s, not a number", key,
			    x ? "of another type" : "missing");
}

static double opt_number(const json_t *o, const char *key)
{
	const json_t *x = json_object_get(o, key);

	return json_is_number(x) ? json_number_value(x) : NAN;
}

static const char *group_of(const json_t *row)
{
	const json_t *g = json_object_get(row, "group");

	return json_is_string(g) ? json_string_value(g) : "";
}

/* A group's name without its "layer:" or "tensor:" kind. */
static const char *short_group(const char *g)
{
	if (!strncmp(g, "layer:", 6))
		return g + 6;
	if (!strncmp(g, "tensor:", 7))
		return g + 7;
	return g;
}

static int results_of(const json_t *report, const char *path, const json_t **out, struct pc_error *err)
{
	const json_t *res = json_object_get(report, "results");
	char where[64];
	size_t i;

	text_printf(where, sizeof(where), "%sresults", path);
	if (!json_is_array(res))
		return pc_error_set(err, PC_ERR_FORMAT, where, "is %s, not an array",
				    res ? "of another type" : "missing");
	for (i = 0; i < json_array_size(res); i++)
		if (!json_is_object(json_array_get(res, i)))
			return pc_error_set(err, PC_ERR_FORMAT, where, "entry %zu is not an object", i);
	*out = res;
	return 0;
}

/* The group the accuracy chart draws: "model", or the one with the most
 * results (the first of those) when a study has no whole-model block. */
static const char *main_group(const json_t *results)
{
	const char *best = NULL;
	size_t i, k, best_n = 0;

	for (i = 0; i < json_array_size(results); i++)
		if (!strcmp(group_of(json_array_get(results, i)), "model"))
			return "model";
	for (i = 0; i < json_array_size(results); i++) {
		const char *g = group_of(json_array_get(results, i));
		size_t n = 0;

		for (k = 0; k < json_array_size(results); k++)
			n += !strcmp(g, group_of(json_array_get(results, k)));
		if (n > best_n) {
			best_n = n;
			best = g;
		}
	}
	return best;
}

/* The norm every row of group uses, or NULL when they differ. */
static const char *common_norm(const json_t *results, const char *group, char *buf, size_t size)
{
	const json_t *first = NULL;
	char na[32], nb[32];

	for (size_t i = 0; i < json_array_size(results); i++) {
		const json_t *row = json_array_get(results, i);

		if (strcmp(group_of(row), group))
			continue;
		if (!first)
			first = row;
		else if (strcmp(pcd_summary_norm(first, na, sizeof(na)), pcd_summary_norm(row, nb, sizeof(nb))))
			return NULL;
	}
	if (!first)
		return NULL;
	text_printf(buf, size, "%s", pcd_summary_norm(first, na, sizeof(na)));
	return buf;
}

/* What sets one line of the accuracy chart apart: its norm, sparsity and
 * steps, as "norm|words" where the words end its legend label (so equal
 * words are one line). */
static void setting_words(const json_t *row, char *words, size_t size)
{
	double sparsity = opt_number(row, "sparsity"), steps = opt_number(row, "steps");
	char nb[32], norm[48], sp[32] = "", st[32] = "";

	/* a whole norm, however long, so that the '|' always stays */
	text_printf(norm, sizeof(norm), "%s", pcd_summary_norm(row, nb, sizeof(nb)));
	if (sparsity > 0)
		snprintf(sp, sizeof(sp), ", %g weights", sparsity);
	if (steps > 1)
		snprintf(st, sizeof(st), ", %g steps", steps);
	text_printf(words, size, "%s|%s%s", norm, sp, st);
}

enum acc_mode { ACC_STUDY, ACC_BEFORE, ACC_AFTER };

/* The points of setting `key` of group: gradient accuracy into g, and for a
 * study the random mean and worst trial into series rm and rm + 1, which
 * are made at the first random result (-1 until then). */
static int setting_points(struct plot *p, const json_t *results, const char *group, const char *key, size_t from,
			  const char *path, enum acc_mode mode, int g, int *rm, int rcolour, struct pc_error *err)
{
	const char *sep = strchr(key, '|');
	char label[128], where[64], rk[96];
	size_t i;

	for (i = from; i < json_array_size(results); i++) {
		const json_t *row = json_array_get(results, i), *rd;
		double eps = 0, acc = 0, mean = 0, worst = 0;
		int rc;

		setting_words(row, rk, sizeof(rk));
		if (strcmp(group_of(row), group) || strcmp(rk, key))
			continue;
		text_printf(where, sizeof(where), "%sresults[%zu]", path, i);
		if ((rc = get_number(row, where, "epsilon", &eps, err)))
			return rc;
		text_printf(where, sizeof(where), "%sresults[%zu].gradient", path, i);
		if ((rc = get_number(json_object_get(row, "gradient"), where, "accuracy", &acc, err)))
			return rc;
		if (add_point(&p->s[g], eps, 100 * acc, NULL))
			return nomem(err);
		rd = json_object_get(row, "random");
		if (mode != ACC_STUDY || !rd || json_is_null(rd))
			continue;
		text_printf(where, sizeof(where), "%sresults[%zu].random", path, i);
		if ((rc = get_number(rd, where, "accuracy_mean", &mean, err)) ||
		    (rc = get_number(rd, where, "accuracy_min", &worst, err)))
			return rc;
		if (*rm < 0) {
			*rm = p->n_series;
			text_printf(label, sizeof(label), "%.*s random mean%s", (int)(sep - key), key, sep + 1);
			if (!new_series(p, label, DASHED, rcolour))
				return nomem(err);
			text_printf(label, sizeof(label), "%.*s random worst%s", (int)(sep - key), key, sep + 1);
			if (!new_series(p, label, DOTTED, rcolour))
				return nomem(err);
		}
		if (add_point(&p->s[*rm], eps, 100 * mean, NULL) || add_point(&p->s[*rm + 1], eps, 100 * worst, NULL))
			return nomem(err);
	}
	return 0;
}

/* Accuracy (in percent) against epsilon for `group` of a results array: per
 * setting a gradient line and, for a study, the random mean and worst trial.
 * path prefixes the fields named in errors ("before." for harden). */
static int accuracy_series(struct plot *p, const json_t *results, const char *group, const char *path,
			   enum acc_mode mode, struct pc_error *err)
{
	static const char *const prefix[] = {"", "before: ", "after: "};
	size_t i, n = json_array_size(results);
	char(*keys)[96] = malloc((n ? n : 1) * sizeof(*keys));
	size_t *first = malloc((n ? n : 1) * sizeof(*first));
	int n_keys = 0, rc = 0;

	if (!keys || !first) {
		rc = nomem(err);
		goto fail;
	}
	for (i = 0; i < n; i++) {
		const json_t *row = json_array_get(results, i);
		char key[96];
		int k;

		if (strcmp(group_of(row), group))
			continue;
		setting_words(row, key, sizeof(key));
		for (k = 0; k < n_keys && strcmp(keys[k], key); k++)
			;
		if (k == n_keys) {
			memcpy(keys[n_keys], key, sizeof(key));
			first[n_keys++] = i;
		}
	}
	for (int k = 0; k < n_keys; k++) {
		const char *sep = strchr(keys[k], '|');
		char label[128];
		/* up to three settings get two colours each, gradient and random
		 * apart at a glance; more share one colour per setting */
		int pairs = mode == ACC_STUDY && n_keys <= N_COLOURS / 2;
		int colour = pairs ? 2 * k : k, g = p->n_series, rm = -1;

		text_printf(label, sizeof(label), "%s%.*s gradient%s", prefix[mode], (int)(sep - keys[k]), keys[k],
			    sep + 1);
		if (!new_series(p, label, mode == ACC_BEFORE ? DASHED : SOLID, colour)) {
			rc = nomem(err);
			goto fail;
		}
		if ((rc =
			 setting_points(p, results, group, keys[k], first[k], path, mode, g, &rm, colour + pairs, err)))
			goto fail;
		sort_series(&p->s[g]);
		if (rm >= 0) {
			sort_series(&p->s[rm]);
			sort_series(&p->s[rm + 1]);
		}
	}
fail:
	free(keys);
	free(first);
	return rc;
}
/* --- axes ----------------------------------------------------------------------- */

/* A step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double span, int want)
{
	double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;

	return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Widens [lo, hi] to whole ticks (linear) or to 1, 2 or 5 times a power of
 * ten (log), so that the data fills the axis and its ends carry ticks. */
static void fit_axis(double *lo, double *hi, int log_scale)
{
	double step;

	if (log_scale) {
		double dl = pow(10, floor(log10(*lo) + 1e-9)), dh = pow(10, floor(log10(*hi) - 1e-9));

		*lo = *lo >= 5 * dl * (1 - 1e-9) ? 5 * dl : *lo >= 2 * dl * (1 - 1e-9) ? 2 * dl : dl;
		if (*hi <= dh * (1 + 1e-9))
			*hi = dh;
		else if (*hi <= 2 * dh * (1 + 1e-9))
			*hi = 2 * dh;
		else if (*hi <= 5 * dh * (1 + 1e-9))
			*hi = 5 * dh;
		else
			*hi = 10 * dh;
		if (*hi <= *lo)
			*hi = *lo * 10;
		return;
	}
	/* a span below a millionth of the values is one value: its ticks would
	 * not be distinct numbers (beyond 2^53 the tick index stops counting) */
	if (*hi - *lo <= 1e-6 * fmax(fabs(*lo), fabs(*hi))) {
		double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;

		*lo -= d;
		*hi += d;
	}
	step = nice_step(*hi - *lo, 5);
	*lo = floor(*lo / step + 1e-9) * step;
	*hi = ceil(*hi / step - 1e-9) * step;
}

static double px_x(const struct plot *p, double x)
{
	double t = p->xlog ? (log10(x) - log10(p->xmin)) / (log10(p->xmax) - log10(p->xmin))
			   : (x - p->xmin) / (p->xmax - p->xmin);

	return LEFT + t * PLOT_W;
}

static double px_y(const struct plot *p, double y)
{
	double t = p->ylog ? (log10(y) - log10(p->ymin)) / (log10(p->ymax) - log10(p->ymin))
			   : (y - p->ymin) / (p->ymax - p->ymin);

	return TOP + PLOT_H - t * PLOT_H;
}

/* A tick label: short, no trailing zeros; powers as "1e-4", not "1e-04". */
static void tick_text(double v, char *buf, size_t size)
{
	char *e;
	int exp;

	if (v == 0 || (fabs(v) < 1e5 && fabs(v) >= 1e-3)) {
		snprintf(buf, size, "%.4g", v);
		return;
	}
	snprintf(buf, size, "%.0e", v);
	if ((e = strchr(buf, 'e')) && sscanf(e + 1, "%d", &exp) == 1)
		snprintf(e, size - (size_t)(e - buf), "e%d", exp);
}

static void tick(FILE *out, const struct plot *p, int xaxis, double v)
{
	char t[32];

	tick_text(v, t, sizeof(t));
	if (xaxis) {
		double x = px_x(p, v);

		fprintf(out,
			"<line class=\"grid\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>"
			"<line class=\"axis\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>"
			"<text class=\"tick\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
			x, TOP, x, TOP + PLOT_H, x, TOP + PLOT_H, x, TOP + PLOT_H + 5, x, TOP + PLOT_H + 19, t);
	} else {
		double y = px_y(p, v);

		fprintf(out,
			"<line class=\"grid\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>"
			"<line class=\"axis\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>"
			"<text class=\"tick\" x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
			LEFT, y, LEFT + PLOT_W, y, LEFT - 5, y, LEFT, y, LEFT - 8, y + 4, t);
	}
}

static void draw_ticks(FILE *out, const struct plot *p, int xaxis)
{
	double lo = xaxis ? p->xmin : p->ymin, hi = xaxis ? p->xmax : p->ymax, step, v0;
	int log_scale = xaxis ? p->xlog : p->ylog;

	if (log_scale) {
		/* 2 and 5 between the decades when their labels have room: a
		 * third of a decade must hold a label's width (x) or height (y) */
		double per_decade = (xaxis ? PLOT_W : PLOT_H) / log10(hi / lo);
		int minors = per_decade >= (xaxis ? 140 : 80);

		int n = 0;

		for (double d = pow(10, floor(log10(lo) + 1e-9)); d <= hi * 1.0001 && n < MAX_TICKS; d *= 10, n++)
			for (int m = 0; m < 3; m++) {
				double v = d * (m == 0 ? 1 : m == 1 ? 2 : 5);

				if (v <= hi * 1.0001 && v >= lo * 0.9999 && (m == 0 || minors))
					tick(out, p, xaxis, v);
			}
		return;
	}
	step = nice_step(hi - lo, xaxis ? 6 : 5);
	v0 = ceil(lo / step - 1e-9);
	/* multiples of the step, not a running sum, so 0.3 stays 0.3 */
	for (int i = 0; (v0 + i) * step <= hi + step * 1e-6 && i < MAX_TICKS; i++) {
		double v = (v0 + i) * step;

		tick(out, p, xaxis, fabs(v) < step * 1e-9 ? 0 : v);
	}
}

enum scale { LINEAR, AUTO, LOG };


/* Data ranges, with the scales chosen: AUTO is log when a positive axis
 * spans more than a factor of 20 (radii usually grow geometrically); LOG
 * is for positive data only. */
static void choose_ranges(struct plot *p, enum scale xscale, enum scale yscale, int y_percent)
{
	double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;

	for (int i = 0; i < p->n_series; i++)
		for (int k = 0; k < p->s[i].n; k++) {
			xlo = fmin(xlo, p->s[i].pt[k].x);
			xhi = fmax(xhi, p->s[i].pt[k].x);
			ylo = fmin(ylo, p->s[i].pt[k].y);
			yhi = fmax(yhi, p->s[i].pt[k].y);
		}
	for (int i = 0; i < p->n_refs; i++) {
		ylo = fmin(ylo, p->ref[i].y);
		yhi = fmax(yhi, p->ref[i].y);
	}
	if (!isfinite(xlo)) {
		xlo = xscale == LOG ? 0.1 : 0;
		xhi = 1;
	}
	if (!isfinite(ylo)) {
		ylo = yscale == LOG ? 0.1 : 0;
		yhi = 1;
	}
	p->xlog = xscale == LOG || (xscale == AUTO && xlo > 0 && xhi / xlo > 20);
	p->ylog = yscale == LOG || (yscale == AUTO && ylo > 0 && yhi / ylo > 20);
	if (p->diagonal && !p->xlog && !p->ylog) {
		/* y = x must cross the plot corner to corner: one range for both */
		xlo = ylo = fmin(xlo, ylo);
		xhi = yhi = fmax(xhi, yhi);
	}
	/* values a report cannot mean (a radius of 1e308, a denormal loss) are
	 * clamped to where the axis arithmetic stays finite and normal */
	xlo = fmax(xlo, p->xlog ? AXIS_MIN_LOG : -AXIS_MAX);
	xhi = fmin(fmax(xhi, xlo), AXIS_MAX);
	ylo = fmax(ylo, p->ylog ? AXIS_MIN_LOG : -AXIS_MAX);
	yhi = fmin(fmax(yhi, ylo), AXIS_MAX);
	if (y_percent) {
		/* some air above the clean line and below the worst point */
		ylo = fmax(0, ylo - 2);
		yhi = fmin(100, yhi + 2);
	}
	fit_axis(&xlo, &xhi, p->xlog);
	fit_axis(&ylo, &yhi, p->ylog);
	if (y_percent) {
		ylo = fmax(0, ylo);
		yhi = fmin(100, yhi);
	}
	p->xmin = xlo;
	p->xmax = xhi;
	p->ymin = ylo;
	p->ymax = yhi;
}

/* --- drawing -------------------------------------------------------------------- */

static const char *dash_of(enum style s)
{
	return s == DASHED ? " stroke-dasharray=\"7 4\"" : s == DOTTED ? " stroke-dasharray=\"2 3\"" : "";
}

static const char *width_of(enum style s)
{
	return s == DOTTED ? "1.5" : "2.5";
}

static int legend_rows(const struct plot *p)
{
	return p->n_series + p->n_refs + p->diagonal + (p->note[0] != '\0');
}

/* The legend's width, from its longest label at about 7.5 px a character. */
static int legend_width(const struct plot *p)
{
	int chars = 12, c;

	for (int i = 0; i < p->n_series; i++)
		if ((c = utf8_chars(p->s[i].label)) > chars)
			chars = c > SHOW_CHARS ? SHOW_CHARS + 1 : c;
	for (int i = 0; i < p->n_refs; i++)
		if ((c = utf8_chars(p->ref[i].label)) > chars)
			chars = c;
	/* the note starts where the labels do, 28 px right */
	if ((c = utf8_chars(p->note) - 4) > chars)
		chars = c;
	return 44 + chars * 15 / 2;
}

static void draw_legend(FILE *out, const struct plot *p)
{
	int x = LEGEND_X, y = TOP + 6;

	fprintf(out, "<g class=\"legend\">\n");
	for (int i = 0; i < p->n_series; i++, y += LEGEND_DY) {
		const struct series *s = &p->s[i];

		if (s->style == DOTS)
			fprintf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>", x + 11, y, palette[s->colour]);
		else if (s->style == BARS)
			fprintf(out,
				"<rect x=\"%d\" y=\"%d\" width=\"22\" height=\"10\" fill=\"%s\" fill-opacity=\"0.45\" "
				"stroke=\"%s\"/>",
				x, y - 5, palette[s->colour], palette[s->colour]);
		else
			fprintf(out,
				"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"%s\"%s/>",
				x, y, x + 22, y, palette[s->colour], width_of(s->style), dash_of(s->style));
		fprintf(out, "<text x=\"%d\" y=\"%d\">", x + 28, y + 4);
		bescape_max(out, s->label, SHOW_CHARS);
		fprintf(out, "</text>\n");
	}
	for (int i = 0; i < p->n_refs; i++, y += LEGEND_DY) {
		fprintf(out,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#666\" stroke-width=\"1.5\"%s/>"
			"<text x=\"%d\" y=\"%d\">",
			x, y, x + 22, y, dash_of(p->ref[i].style), x + 28, y + 4);
		pcd_markup_text(out, p->ref[i].label);
		fprintf(out, "</text>\n");
	}
	if (p->diagonal)
		fprintf(out,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#666\" stroke-width=\"1.5\"%s/>"
			"<text x=\"%d\" y=\"%d\">y = x</text>\n",
			x, y, x + 22, y, dash_of(DOTTED), x + 28, y + 4);
	if (p->diagonal)
		y += LEGEND_DY;
	if (p->note[0]) {
		fprintf(out, "<text class=\"note\" x=\"%d\" y=\"%d\" fill=\"#555\">", x, y + 4);
		pcd_markup_text(out, p->note);
		fprintf(out, "</text>\n");
	}
	fprintf(out, "</g>\n");
}

static void draw_series(FILE *out, const struct plot *p, const struct series *s)
{
	const char *col = palette[s->colour];
	double half = p->rows ? 0.35 * PLOT_H / p->rows : 0;
	double x0 = px_x(p, fmin(fmax(0, p->xmin), p->xmax));

	fprintf(out, "<path class=\"series\" data-series=\"");
	pcd_markup_text(out, s->label);
	fprintf(out, "\" data-points=\"%d\" d=\"", s->n);
	for (int k = 0; k < s->n; k++) {
		double x = px_x(p, s->pt[k].x), y = px_y(p, s->pt[k].y);
		const char *sep = k ? " " : "";

		if (s->style == BARS)
			fprintf(out, "%sM %.2f %.2f H %.2f V %.2f H %.2f Z", sep, x0, y - half, x, y + half, x0);
		else if (s->style == DOTS)
			fprintf(out, "%sM %.2f %.2f h 0", sep, x, y);
		else
			fprintf(out, "%s%c %.2f %.2f", sep, k ? 'L' : 'M', x, y);
	}
	if (s->style == BARS)
		fprintf(out, "\" fill=\"%s\" fill-opacity=\"0.45\" stroke=\"%s\"/>\n", col, col);
	else if (s->style == DOTS)
		fprintf(out, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"7\" stroke-linecap=\"round\" opacity=\"0.8\"/>\n",
		    col);
	else
		fprintf(out, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s stroke-linejoin=\"round\"/>\n", col,
			width_of(s->style), dash_of(s->style));
	/* the points of a solid line as dots, so that a single radius still
	 * shows; circles, not paths, so they never count as a series */
	if (s->style == SOLID)
		for (int k = 0; k < s->n; k++)
			fprintf(out, "<circle class=\"marker\" cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n",
				px_x(p, s->pt[k].x), px_y(p, s->pt[k].y), col);
	/* a bar's name and value sit in the plot, left of the bar */
	if (s->style == BARS)
		for (int k = 0; k < s->n; k++) {
			const char *name = s->pt[k].text ? s->pt[k].text : "";

			fprintf(out, "<text class=\"bar-label\" x=\"%.2f\" y=\"%.2f\" font-size=\"11\" fill=\"#111\">",
				x0 + 4, px_y(p, s->pt[k].y) + 4);
			/* the whole name on hover when the label is cut */
			if (utf8_chars(name) > SHOW_CHARS) {
				fprintf(out, "<title>");
				pcd_markup_text(out, name);
				fprintf(out, "</title>");
			}
			bescape_mid(out, name, SHOW_CHARS);
			fprintf(out, " (%.3g)</text>\n", s->pt[k].x);
		}
}

static char *render(const struct plot *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out;
	int failed, width = LEGEND_X + legend_width(p) + 10;
	int height = TOP + PLOT_H + BOTTOM, legend_bottom = TOP + 6 + LEGEND_DY * legend_rows(p) + 10;

	if (legend_bottom > height)
		height = legend_bottom;
	/* a write that fails (no memory) leaves the stream in error */
	if (!(out = open_memstream(&text, &len)))
		return NULL;
	fprintf(out,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
		"font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif\" "
		"font-size=\"12\" fill=\"#222\">\n<title>",
		width, height, width, height);
	pcd_markup_text(out, p->title);
	fprintf(out, "</title>\n<style>.grid{stroke:#e6e6e6;stroke-width:1}.tick{fill:#444}"
		    ".axis{stroke:#333;stroke-width:1.2}</style>\n"
		    "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
	fprintf(out, "<text class=\"chart-title\" x=\"%d\" y=\"26\" font-size=\"15\" font-weight=\"600\">", LEFT);
	bescape_max(out, p->title, 80);
	fprintf(out, "</text>\n");
	/* the axes' ends are whole ticks, so 6 digits hold them exactly */
	fprintf(out,
		"<g class=\"plot\" data-x0=\"%d\" data-x1=\"%d\" data-y0=\"%d\" data-y1=\"%d\" data-xmin=\"%.6g\" "
		"data-xmax=\"%.6g\" data-ymin=\"%.6g\" data-ymax=\"%.6g\" data-xlog=\"%d\" data-ylog=\"%d\">\n",
		LEFT, LEFT + PLOT_W, TOP + PLOT_H, TOP, p->xmin, p->xmax, p->ymin, p->ymax, p->xlog, p->ylog);
	draw_ticks(out, p, 1);
	if (!p->rows)
		draw_ticks(out, p, 0);
	fprintf(out,
		"<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
		"<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
		LEFT, TOP + PLOT_H, LEFT + PLOT_W, TOP + PLOT_H, LEFT, TOP, LEFT, TOP + PLOT_H);
	for (int i = 0; i < p->n_refs; i++)
		if (p->ref[i].y >= p->ymin && p->ref[i].y <= p->ymax)
			fprintf(out,
				"<line class=\"reference\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#666\" "
				"stroke-width=\"1.5\"%s/>\n",
				LEFT, px_y(p, p->ref[i].y), LEFT + PLOT_W, px_y(p, p->ref[i].y),
				dash_of(p->ref[i].style));
	if (p->diagonal) {
		double lo = fmax(p->xmin, p->ymin), hi = fmin(p->xmax, p->ymax);

		if (hi > lo)
			fprintf(out,
			    "<line class=\"reference\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#666\" "
			    "stroke-width=\"1.5\"%s/>\n",
			    px_x(p, lo), px_y(p, lo), px_x(p, hi), px_y(p, hi), dash_of(DOTTED));
	}
	for (int i = 0; i < p->n_series; i++)
		draw_series(out, p, &p->s[i]);
	fprintf(out, "</g>\n");
	fprintf(out, "<text class=\"axis-title\" x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">",
		LEFT + PLOT_W / 2, TOP + PLOT_H + 44);
	pcd_markup_text(out, p->xlabel);
	fprintf(out,
		"</text>\n<text class=\"axis-title\" transform=\"translate(20 %d) rotate(-90)\" text-anchor=\"middle\" "
		"font-size=\"13\">",
		TOP + PLOT_H / 2);
	pcd_markup_text(out, p->ylabel);
	fprintf(out, "</text>\n");
	draw_legend(out, p);
	fprintf(out, "</svg>\n");
	failed = ferror(out);
	if (fclose(out) != 0 || failed) {
		free(text);
		return NULL;
	}
	return text;
}

/* --- the charts ------------------------------------------------------------------ */

static int chart_accuracy(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *results = NULL;
	const char *group, *norm;
	char nb[48];
	double clean = 0;
	int rc;

	if ((rc = results_of(report, "", &results, err)))
		return rc;
	if (!(group = main_group(results)))
		return pc_error_set(err, PC_ERR_NOT_FOUND, "results", "no results to draw");
	if ((rc = accuracy_series(p, results, group, "", ACC_STUDY, err)))
		return rc;
	if (json_object_get(report, "clean")) {
		if ((rc = get_number(json_object_get(report, "clean"), "clean", "accuracy", &clean, err)))
			return rc;
		p->ref[p->n_refs].y = 100 * clean;
		p->ref[p->n_refs].style = DOTTED;
		text_printf(p->ref[p->n_refs].label, sizeof(p->ref[0].label), "clean %.2f%%", 100 * clean);
		p->n_refs++;
	}
	if (!strcmp(group, "model"))
		text_printf(p->title, sizeof(p->title), "Accuracy under corruption of the whole model");
	else
		text_printf(p->title, sizeof(p->title), "Accuracy under corruption of %s", group);
	norm = common_norm(results, group, nb, sizeof(nb));
	if (norm)
		text_printf(p->xlabel, sizeof(p->xlabel), "corruption radius \u03b5 (%s norm of the weight change)",
			    norm);
	else
		text_printf(p->xlabel, sizeof(p->xlabel), "corruption radius \u03b5 (each series in its own norm)");
	text_printf(p->ylabel, sizeof(p->ylabel), "accuracy (%%)");
	choose_ranges(p, AUTO, LINEAR, 1);
	return 0;
}

static int chart_loss(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *results = NULL;
	int rc, positive = 1, second = 0;
	size_t i;

	if ((rc = results_of(report, "", &results, err)))
		return rc;
	for (i = 0; i < json_array_size(results); i++) {
		const json_t *row = json_array_get(results, i);
		char nb[32], where[64], label[128];
		double fo = 0, dl = 0;
		int k;

		/* null: the estimate or the corrupted loss was not finite, no
		 * point to draw */
		if (json_is_null(json_object_get(row, "first_order")) ||
		    json_is_null(json_object_get(json_object_get(row, "gradient"), "loss_change")))
			continue;
		text_printf(where, sizeof(where), "results[%zu]", i);
		if ((rc = get_number(row, where, "first_order", &fo, err)))
			return rc;
		text_printf(where, sizeof(where), "results[%zu].gradient", i);
		if ((rc = get_number(json_object_get(row, "gradient"), where, "loss_change", &dl, err)))
			return rc;
		text_printf(label, sizeof(label), "%s corruption", pcd_summary_norm(row, nb, sizeof(nb)));
		for (k = 0; k < p->n_series && strcmp(p->s[k].label, label); k++)
			;
		if (k == p->n_series && !new_series(p, label, DOTS, k))
			return nomem(err);
		if (add_point(&p->s[k], fo, dl, NULL))
			return nomem(err);
		positive &= fo > 0 && dl > 0;
		/* with a curvature block: the same change against the estimate
		 * with the quadratic term, its own series */
		if (json_is_number(json_object_get(row, "second_order"))) {
			double so = json_number_value(json_object_get(row, "second_order"));

			text_printf(label, sizeof(label), "%s, second order", pcd_summary_norm(row, nb, sizeof(nb)));
			for (k = 0; k < p->n_series && strcmp(p->s[k].label, label); k++)
				;
			if (k == p->n_series && !new_series(p, label, DOTS, k))
				return nomem(err);
			if (add_point(&p->s[k], so, dl, NULL))
				return nomem(err);
			positive &= so > 0;
			second = 1;
		}
	}
	if (!p->n_series)
		return pc_error_set(err, PC_ERR_NOT_FOUND, "results", "no results to draw");
	for (int s = 0; s < p->n_series; s++) {
		size_t len = strlen(p->s[s].label), tail = strlen(" corruption");

		sort_series(&p->s[s]);
		/* beside the second-order series, the others say what they are */
		if (second && len > tail && !strcmp(p->s[s].label + len - tail, " corruption")) {
			p->s[s].label[len - tail] = 0;
			text_printf(p->s[s].label + (len - tail), sizeof(p->s[s].label) - (len - tail), ", first order");
		}
	}
	p->diagonal = 1;
	if (second) {
		text_printf(p->title, sizeof(p->title), "Realised loss change against its first- and second-order estimates");
		text_printf(p->xlabel, sizeof(p->xlabel),
			    "estimate of the loss change (nats): \u03b5\u00b7\u2016g\u2016, and + \u00bd a\u1d40Ha");
	} else {
		text_printf(p->title, sizeof(p->title), "Realised loss change against its first-order estimate");
		text_printf(p->xlabel, sizeof(p->xlabel),
			    "first-order estimate \u03b5\u00b7\u2016g\u2016 of the loss change (nats)");
	}
	text_printf(p->ylabel, sizeof(p->ylabel), "loss change under gradient corruption (nats)");
	/* log on one axis only would bend y = x: both or neither */
	choose_ranges(p, positive ? AUTO : LINEAR, positive ? AUTO : LINEAR, 0);
	if (p->xlog || p->ylog)
		choose_ranges(p, LOG, LOG, 0);
	return 0;
}

/* The ranking's setting: norm, radius, sparsity and block. */
static void ranking_key(const json_t *row, char *key, size_t size)
{
	char nb[32];

	text_printf(key, size, "%s|%.17g|%g|%g", pcd_summary_norm(row, nb, sizeof(nb)), opt_number(row, "epsilon"),
		    opt_number(row, "sparsity"), opt_number(row, "block"));
}

/* The ranking entry whose setting ranks the most groups with a finite loss
 * change; the larger radius on a tie, where corruption tells the groups
 * apart more clearly. keys[i] is entry i's setting. */
static size_t ranking_setting(const json_t *ranking, char (*keys)[96])
{
	size_t i, k, n = json_array_size(ranking), best = 0, best_count = 0;

	for (i = 0; i < n; i++) {
		size_t count = 0;

		/* only changes with a number make bars */
		if (json_is_null(json_object_get(json_array_get(ranking, i), "loss_change")))
			continue;
		for (k = 0; k < n; k++)
			count += !strcmp(keys[i], keys[k]) &&
				 !json_is_null(json_object_get(json_array_get(ranking, k), "loss_change"));
		if (count > best_count ||
		    (count == best_count && opt_number(json_array_get(ranking, i), "epsilon") >
						opt_number(json_array_get(ranking, best), "epsilon"))) {
			best_count = count;
			best = i;
		}
	}
	return best;
}

static int chart_ranking(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *ranking = json_object_get(report, "ranking"), *head;
	size_t i, h, n, pick[MAX_BARS];
	char(*keys)[96] = NULL, nb[32], sp[48];
	struct series *s;
	json_t *own, *row0;
	int n_pick = 0, n_ranked = 0, rc = 0;

	if (!ranking || json_is_null(ranking))
		return pc_error_set(err, PC_ERR_NOT_FOUND, "ranking", "the report has no ranking");
	if (!json_is_array(ranking))
		return pc_error_set(err, PC_ERR_FORMAT, "ranking", "is not an array");
	/* the rows of blocks ranked by critical radius are the critical chart's */
	if (!(own = json_array()))
		return nomem(err);
	json_array_foreach((json_t *)ranking, i, row0)
	{
		const char *by = json_string_value(json_object_get(row0, "by"));

		if (!(by && !strcmp(by, "critical_radius")) && json_array_append(own, row0)) {
			json_decref(own);
			return nomem(err);
		}
	}
	ranking = own;
	if (!(n = json_array_size(ranking))) {
		json_decref(own);
		return pc_error_set(err, PC_ERR_NOT_FOUND, "ranking",
				    json_array_size(json_object_get(report, "ranking"))
					    ? "the ranking is by critical radius (the critical chart draws it)"
					    : "the ranking is empty");
	}
	if (!(keys = malloc(n * sizeof(*keys)))) {
		json_decref(own);
		return nomem(err);
	}
	for (i = 0; i < n; i++) {
		const json_t *row = json_array_get(ranking, i);
		char where[64];
		double v = 0;

		text_printf(where, sizeof(where), "ranking[%zu]", i);
		if (!json_is_object(row)) {
			rc = pc_error_set(err, PC_ERR_FORMAT, where, "is not an object");
			goto fail;
		}
		if (!json_is_string(json_object_get(row, "group"))) {
			rc = pc_error_set(err, PC_ERR_FORMAT, where, "group is not a string");
			goto fail;
		}
		if ((rc = get_number(row, where, "epsilon", &v, err)) ||
		    (!json_is_null(json_object_get(row, "loss_change")) &&
		     (rc = get_number(row, where, "loss_change", &v, err))))
			goto fail;
		ranking_key(row, keys[i], sizeof(keys[0]));
	}
	h = ranking_setting(ranking, keys);
	head = json_array_get(ranking, h);
	/* the top MAX_BARS of that setting by loss change, largest first; the
	 * report's order on a tie */
	for (i = 0; i < n; i++) {
		const json_t *row = json_array_get(ranking, i);
		int j;

		/* a loss change of null (not finite) has no bar length */
		if (strcmp(keys[i], keys[h]) || json_is_null(json_object_get(row, "loss_change")))
			continue;
		for (j = n_pick; j > 0 && opt_number(json_array_get(ranking, pick[j - 1]), "loss_change") <
					      opt_number(row, "loss_change");
		     j--)
			if (j < MAX_BARS)
				pick[j] = pick[j - 1];
		if (j < MAX_BARS)
			pick[j] = i;
		if (n_pick < MAX_BARS)
			n_pick++;
	}
	if (!n_pick) {
		rc = pc_error_set(err, PC_ERR_NOT_FOUND, "ranking", "no group's loss change is finite");
		goto fail;
	}
	for (i = 0; i < n; i++)
		n_ranked += !strcmp(keys[i], keys[h]) &&
			    !json_is_null(json_object_get(json_array_get(ranking, i), "loss_change"));
	if (!(s = new_series(p, "loss change", BARS, 1))) {
		rc = nomem(err);
		goto fail;
	}
	for (int r = 0; r < n_pick; r++) {
		const json_t *row = json_array_get(ranking, pick[r]);

		if (add_point(s, opt_number(row, "loss_change"), r + 1, short_group(group_of(row)))) {
			rc = nomem(err);
			goto fail;
		}
	}
	if (opt_number(head, "sparsity") > 0)
		snprintf(sp, sizeof(sp), "%g weights", opt_number(head, "sparsity"));
	else
		snprintf(sp, sizeof(sp), "dense");
	/* a 12-block model ranks ~50 layers: the top MAX_BARS by name, and a
	 * line saying how many more the report ranks */
	if (n_ranked > n_pick) {
		text_printf(p->title, sizeof(p->title), "The %d most fragile of %d groups (%s, \u03b5 = %g, %s)",
			    n_pick, n_ranked, pcd_summary_norm(head, nb, sizeof(nb)), opt_number(head, "epsilon"), sp);
		text_printf(p->note, sizeof(p->note), "%d more group%s not shown", n_ranked - n_pick,
			    n_ranked - n_pick == 1 ? "" : "s");
	} else {
		text_printf(p->title, sizeof(p->title), "The %d most fragile groups (%s, \u03b5 = %g, %s)", n_pick,
			    pcd_summary_norm(head, nb, sizeof(nb)), opt_number(head, "epsilon"), sp);
	}
	text_printf(p->xlabel, sizeof(p->xlabel), "loss change under gradient corruption (nats)");
	text_printf(p->ylabel, sizeof(p->ylabel), "rank (1: most fragile)");
	choose_ranges(p, LINEAR, LINEAR, 0);
	if (p->xmin > 0)
		p->xmin = 0;
	/* positions are drawn as rows, top down: the y range is the row range */
	p->rows = n_pick < 5 ? 5 : n_pick;
	p->ymin = p->rows + 0.5;
	p->ymax = 0.5;
fail:
	free(keys);
	json_decref(own);
	return rc;
}

static int chart_harden(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *before = json_object_get(report, "before"), *after = json_object_get(report, "after");
	const json_t *rb = NULL, *ra = NULL;
	const char *group, *norm;
	char nb[48];
	int rc;

	if (!before || !after || json_is_null(before) || json_is_null(after))
		return pc_error_set(err, PC_ERR_NOT_FOUND, "before", "not a harden report");
	if (!json_is_object(before) || !json_is_object(after))
		return pc_error_set(err, PC_ERR_FORMAT, json_is_object(before) ? "after" : "before",
				    "is not an object");
	if ((rc = results_of(before, "before.", &rb, err)) || (rc = results_of(after, "after.", &ra, err)))
		return rc;
	if (!(group = main_group(rb)))
		return pc_error_set(err, PC_ERR_NOT_FOUND, "before.results", "no results to draw");
	if ((rc = accuracy_series(p, rb, group, "before.", ACC_BEFORE, err)) ||
	    (rc = accuracy_series(p, ra, group, "after.", ACC_AFTER, err)))
		return rc;
	for (int i = 0; i < 2; i++) {
		const json_t *clean = json_object_get(i ? after : before, "clean");
		double acc = 0;

		if (!clean)
			continue;
		if ((rc = get_number(clean, i ? "after.clean" : "before.clean", "accuracy", &acc, err)))
			return rc;
		p->ref[p->n_refs].y = 100 * acc;
		p->ref[p->n_refs].style = i ? SOLID : DASHED;
		text_printf(p->ref[p->n_refs].label, sizeof(p->ref[0].label), "clean %s %.2f%%", i ? "after" : "before",
			    100 * acc);
		p->n_refs++;
	}
	if (!strcmp(group, "model"))
		text_printf(p->title, sizeof(p->title),
			    "Accuracy under gradient corruption, before and after hardening");
	else
		text_printf(p->title, sizeof(p->title),
			    "Accuracy of %s under gradient corruption, before and after hardening", group);
	norm = common_norm(rb, group, nb, sizeof(nb));
	if (norm)
		text_printf(p->xlabel, sizeof(p->xlabel), "corruption radius \u03b5 (%s norm of the weight change)",
			    norm);
	else
		text_printf(p->xlabel, sizeof(p->xlabel), "corruption radius \u03b5 (each series in its own norm)");
	text_printf(p->ylabel, sizeof(p->ylabel), "accuracy (%%)");
	choose_ranges(p, AUTO, LINEAR, 1);
	return 0;
}

/* A faults section's rows of `key` (an array): PC_ERR_NOT_FOUND when the
 * report has none, PC_ERR_FORMAT when it is not an array. */
static int faults_rows(const json_t *report, const char *key, const json_t **out, struct pc_error *err)
{
	const json_t *faults = json_object_get(report, "faults"), *rows = json_object_get(faults, key);
	char where[64];

	text_printf(where, sizeof(where), "faults.%s", key);
	if (!rows || json_is_null(rows))
		return pc_error_set(err, PC_ERR_NOT_FOUND, where, "the report has no %s", where);
	if (!json_is_array(rows))
		return pc_error_set(err, PC_ERR_FORMAT, where, "is not an array");
	if (!json_array_size(rows))
		return pc_error_set(err, PC_ERR_NOT_FOUND, where, "no rows to draw");
	*out = rows;
	return 0;
}

/* The series labelled `label`, made with style and colour when new. */
static struct series *series_named(struct plot *p, const char *label, enum style style, int colour)
{
	for (int k = 0; k < p->n_series; k++)
		if (!strcmp(p->s[k].label, label))
			return &p->s[k];
	return new_series(p, label, style, colour);
}

/* Index of format name among the formats seen so far (added when new), for
 * one colour per format. */
static int format_index(const char *name, const char **seen, int *n, int max)
{
	int k;

	for (k = 0; k < *n && strcmp(seen[k], name); k++)
		;
	if (k == *n && *n < max)
		seen[(*n)++] = name;
	return k;
}

static int chart_faults(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *rows = NULL, *row;
	const char *group = NULL, *formats[8];
	int rc, n_formats = 0;
	size_t i;

	if ((rc = faults_rows(report, "random", &rows, err)))
		return rc;
	/* the whole model when the study has it, else the first group */
	json_array_foreach(rows, i, row)
	{
		if (!group || !strcmp(group_of(row), "model"))
			group = group_of(row);
	}
	json_array_foreach(rows, i, row)
	{
		const char *fmt = json_is_string(json_object_get(row, "format"))
					  ? json_string_value(json_object_get(row, "format"))
					  : "?";
		char label[128], where[64];
		double ber = 0, mean = 0, worst = 0;
		struct series *sm, *sw;
		int k;

		if (strcmp(group_of(row), group))
			continue;
		text_printf(where, sizeof(where), "faults.random[%zu]", i);
		if ((rc = get_number(row, where, "ber", &ber, err)) ||
		    (rc = get_number(row, where, "accuracy_mean", &mean, err)) ||
		    (rc = get_number(row, where, "accuracy_min", &worst, err)))
			return rc;
		if (!(ber > 0))
			return pc_error_set(err, PC_ERR_FORMAT, where, "ber is %g, not in (0, 1)", ber);
		k = format_index(fmt, formats, &n_formats, 8);
		text_printf(label, sizeof(label), "%s random mean", fmt);
		if (!(sm = series_named(p, label, SOLID, k)))
			return nomem(err);
		if (add_point(sm, ber, 100 * mean, NULL))
			return nomem(err);
		text_printf(label, sizeof(label), "%s random worst", fmt);
		if (!(sw = series_named(p, label, DOTTED, k)))
			return nomem(err);
		if (add_point(sw, ber, 100 * worst, NULL))
			return nomem(err);
	}
	for (int s = 0; s < p->n_series; s++)
		sort_series(&p->s[s]);
	if (!strcmp(group, "model"))
		text_printf(p->title, sizeof(p->title), "Accuracy under random bit errors in the stored weights");
	else
		text_printf(p->title, sizeof(p->title), "Accuracy under random bit errors in %s", group);
	text_printf(p->xlabel, sizeof(p->xlabel), "bit error rate (probability that a stored bit flips)");
	text_printf(p->ylabel, sizeof(p->ylabel), "accuracy (%%)");
	choose_ranges(p, LOG, LINEAR, 1);
	return 0;
}

static int chart_search(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *rows = NULL, *row;
	const char *group = NULL;
	double target = NAN;
	int rc;
	size_t i;

	if ((rc = faults_rows(report, "search", &rows, err)))
		return rc;
	json_array_foreach(rows, i, row)
	{
		if (!group || !strcmp(group_of(row), "model"))
			group = group_of(row);
	}
	json_array_foreach(rows, i, row)
	{
		const json_t *flips = json_object_get(row, "flips"), *fl;
		const char *fmt = json_is_string(json_object_get(row, "format"))
					  ? json_string_value(json_object_get(row, "format"))
					  : "?";
		const char *method = json_is_string(json_object_get(row, "method"))
					     ? json_string_value(json_object_get(row, "method"))
					     : "?";
		char label[128], where[64];
		double acc = 0, t = 0;
		struct series *sr;
		size_t k;

		if (strcmp(group_of(row), group))
			continue;
		text_printf(where, sizeof(where), "faults.search[%zu]", i);
		if ((rc = get_number(row, where, "target_accuracy", &t, err)))
			return rc;
		if (!json_is_array(flips))
			return pc_error_set(err, PC_ERR_FORMAT, where, "flips is not an array");
		/* one target line when every search shares it */
		target = isnan(target) || target == 100 * t ? 100 * t : INFINITY;
		text_printf(where, sizeof(where), "faults.search[%zu].clean", i);
		if ((rc = get_number(json_object_get(row, "clean"), where, "accuracy", &acc, err)))
			return rc;
		text_printf(label, sizeof(label), "%s %s", fmt, method);
		if (!(sr = new_series(p, label, strcmp(method, "bfa") ? SOLID : DASHED, p->n_series)))
			return nomem(err);
		if (add_point(sr, 0, 100 * acc, NULL))
			return nomem(err);
		json_array_foreach(flips, k, fl)
		{
			text_printf(where, sizeof(where), "faults.search[%zu].flips[%zu]", i, k);
			if ((rc = get_number(fl, where, "accuracy", &acc, err)))
				return rc;
			if (add_point(sr, (double)(k + 1), 100 * acc, NULL))
				return nomem(err);
		}
	}
	if (isfinite(target)) {
		p->ref[p->n_refs].y = target;
		p->ref[p->n_refs].style = DOTTED;
		text_printf(p->ref[p->n_refs].label, sizeof(p->ref[0].label), "target %.2f%%", target);
		p->n_refs++;
	}
	if (!strcmp(group, "model"))
		text_printf(p->title, sizeof(p->title), "Accuracy against flipped bits, worst-case search");
	else
		text_printf(p->title, sizeof(p->title), "Accuracy against flipped bits in %s, worst-case search", group);
	text_printf(p->xlabel, sizeof(p->xlabel), "bits flipped");
	text_printf(p->ylabel, sizeof(p->ylabel), "accuracy (%%)");
	choose_ranges(p, LINEAR, LINEAR, 1);
	return 0;
}

/* critical: per group of the first setting of critical[] (its norm,
 * sparsity and block), the gradient critical radius and the random one as
 * two bars, gradient above random; a radius not reached has no bar. */
static int chart_critical(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *crit = json_object_get(report, "critical"), *head, *row;
	struct series *sg, *sr;
	char nb[32], sp[48];
	size_t i, n = json_array_size(crit);
	int groups = 0;

	if (!json_is_array(crit) || !n)
		return pc_error_set(err, PC_ERR_NOT_FOUND, "critical", "the report has no critical radii");
	head = json_array_get(crit, 0);
	if (!json_is_object(head))
		return pc_error_set(err, PC_ERR_FORMAT, "critical[0]", "is not an object");
	if (!(sg = new_series(p, "gradient critical radius", BARS, 0)) ||
	    !(sr = new_series(p, "random critical radius", BARS, 1)))
		return nomem(err);
	json_array_foreach(crit, i, row)
	{
		const json_t *ge = json_object_get(json_object_get(row, "gradient"), "epsilon");
		const json_t *re = json_object_get(json_object_get(row, "random"), "epsilon");
		char na[32];

		if (!json_is_object(row) || !json_is_string(json_object_get(row, "group")) ||
		    strcmp(pcd_summary_norm(row, na, sizeof(na)), pcd_summary_norm(head, nb, sizeof(nb))) ||
		    opt_number(row, "sparsity") != opt_number(head, "sparsity") ||
		    json_integer_value(json_object_get(row, "block")) != json_integer_value(json_object_get(head, "block")))
			continue;
		if (groups >= MAX_BARS / 2)
			break;
		/* the names live in the report: add_point keeps the pointer */
		if (json_is_number(ge) && add_point(sg, json_number_value(ge), 2 * groups + 1, short_group(group_of(row))))
			return nomem(err);
		if (json_is_number(re) && add_point(sr, json_number_value(re), 2 * groups + 2, short_group(group_of(row))))
			return nomem(err);
		groups++;
	}
	if (!sg->n && !sr->n)
		return pc_error_set(err, PC_ERR_NOT_FOUND, "critical", "no critical radius was reached");
	if (opt_number(head, "sparsity") > 0)
		snprintf(sp, sizeof(sp), "%g weights", opt_number(head, "sparsity"));
	else
		snprintf(sp, sizeof(sp), "dense");
	text_printf(p->title, sizeof(p->title), "Critical radius: accuracy below clean \u2212 %g (%s, %s)",
		    opt_number(head, "accuracy_drop"), pcd_summary_norm(head, nb, sizeof(nb)), sp);
	text_printf(p->xlabel, sizeof(p->xlabel), "critical radius \u03b5*");
	text_printf(p->ylabel, sizeof(p->ylabel), "group");
	choose_ranges(p, LINEAR, LINEAR, 0);
	if (p->xmin > 0)
		p->xmin = 0;
	p->rows = 2 * groups < 5 ? 5 : 2 * groups;
	p->ymin = p->rows + 0.5;
	p->ymax = 0.5;
	return 0;
}

static const struct {
	const char *name, *title;
	int (*build)(const json_t *report, struct plot *p, struct pc_error *err);
} charts[] = {
    {"accuracy", "Accuracy against corruption radius", chart_accuracy},
    {"loss", "Loss change against its first-order (and second-order) estimate", chart_loss},
    {"ranking", "The most fragile groups", chart_ranking},
    {"harden", "Accuracy before and after hardening", chart_harden},
    {"faults", "Accuracy against the bit error rate", chart_faults},
    {"search", "Accuracy against flipped bits", chart_search},
    {"critical", "Critical radius per group, gradient against random", chart_critical},
};

#define N_CHARTS (sizeof(charts) / sizeof(charts[0]))

int pcd_chart_svg(const json_t *report, const char *name, char **svg, struct pc_error *err)
{
	struct plot p;
	size_t i;
	int rc;

	*svg = NULL;
	for (i = 0; i < N_CHARTS && strcmp(charts[i].name, name); i++)
		;
	if (i == N_CHARTS)
		return pc_error_set(err, PC_ERR_NOT_FOUND, name, "no such chart");
	if (!json_is_object(report))
		return pc_error_set(err, PC_ERR_FORMAT, "report", "is not an object");
	memset(&p, 0, sizeof(p));
	if ((rc = charts[i].build(report, &p, err)))
		goto fail;
	if (!(*svg = render(&p)))
		rc = nomem(err);
fail:
	plot_free(&p);
	return rc;
}

json_t *pcd_charts_list(const json_t *report)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; list && i < N_CHARTS; i++) {
		struct pc_error err = {0};
		char *svg = NULL;

		/* a chart is offered when it draws: one piece of code decides both */
		if (pcd_chart_svg(report, charts[i].name, &svg, &err) == 0 &&
		    json_array_append_new(list,
					  json_pack("{s:s, s:s}", "name", charts[i].name, "title", charts[i].title))) {
			json_decref(list);
			list = NULL;
		}
		free(svg);
	}
	return list;
}
