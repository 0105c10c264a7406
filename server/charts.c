/* charts: see charts.h. A chart is first gathered into a struct plot
 * (series of points, reference lines, axes) from the report, then drawn by
 * one renderer, so that every chart shares axes, ticks, legend and the
 * series contract. Sizes are fixed: a chart is a picture to glance at. */
#include "charts.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W	   760
#define H	   440
#define LEFT	   72
#define RIGHT	   200 /* the legend's column */
#define TOP	   44
#define BOTTOM	   58
#define MAX_SERIES 24
#define MAX_POINTS 256
#define MAX_BARS   15

/* Okabe-Ito: told apart with the common colour-vision deficiencies */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};

enum style { SOLID, DASHED, DOTTED, DOTS, BARS };

struct series {
	char label[96];
	enum style style;
	int colour;
	int n;
	double x[MAX_POINTS], y[MAX_POINTS];
	char bar_label[MAX_BARS][64];
};

struct plot {
	char title[200], xlabel[80], ylabel[80];
	int xlog, ylog;
	double xmin, xmax, ymin, ymax;
	int n_series;
	struct series *s; /* MAX_SERIES */
	int has_hline, has_diagonal;
	int rows; /* > 0: y is a rank drawn as this many rows of bars, no y ticks */
	double hline;
	char hline_label[64];
};

/* --- a growing text buffer --------------------------------------------- */

struct buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && (size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = (b->cap ? b->cap * 2 : 8192) + (size_t)n;
			char *q = realloc(b->p, cap);

			if (!q) {
				b->oom = 1;
				return;
			}
			b->p = q;
			b->cap = cap;
		}
	}
}

/* Text as XML character data or an attribute value. */
static void bescape(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': bprintf(b, "&lt;"); break;
		case '>': bprintf(b, "&gt;"); break;
		case '&': bprintf(b, "&amp;"); break;
		case '"': bprintf(b, "&quot;"); break;
		case '\'': bprintf(b, "&apos;"); break;
		default:
			/* control characters are not allowed in XML 1.0 */
			bprintf(b, "%c", (unsigned char)*s < 0x20 ? ' ' : *s);
		}
	}
}

/* --- reading the report -------------------------------------------------- */

static int get_number(const json_t *o, const char *key, const char *where, double *v, struct pc_error *err)
{
	const json_t *x = json_object_get(o, key);

	if (!json_is_number(x))
		return pc_error_set(err, PC_ERR_FORMAT, where, "%s is not a number", key);
	*v = json_number_value(x);
	return 0;
}

static const char *norm_of(const json_t *row, char *buf, size_t size)
{
	const json_t *n = json_object_get(row, "norm");

	if (json_is_string(n))
		return json_string_value(n);
	snprintf(buf, size, json_is_number(n) ? "l%g" : "?", json_number_value(n));
	return buf;
}

static const char *group_of(const json_t *row)
{
	const json_t *g = json_object_get(row, "group");

	return json_is_string(g) ? json_string_value(g) : "";
}

static double opt_number(const json_t *o, const char *key)
{
	const json_t *x = json_object_get(o, key);

	return json_is_number(x) ? json_number_value(x) : NAN;
}

/* The settings that make one line of the accuracy chart. */
static void setting_key(const json_t *row, char *key, size_t size)
{
	char nb[32];

	snprintf(key, size, "%s|%g|%g|%g", norm_of(row, nb, sizeof(nb)), opt_number(row, "sparsity"),
		 opt_number(row, "steps"), opt_number(row, "block"));
}

static int results_of(const json_t *report, const json_t **out, struct pc_error *err)
{
	const json_t *res = json_object_get(report, "results");

	if (!json_is_array(res))
		return pc_error_set(err, PC_ERR_FORMAT, "results", "is not an array");
	*out = res;
	return 0;
}

/* The group the accuracy chart draws: "model", or the one with the most
 * results when a study has no whole-model block. */
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

static struct series *new_series(struct plot *p, const char *label, enum style style, int colour)
{
	struct series *s;

	if (p->n_series >= MAX_SERIES)
		return NULL;
	s = &p->s[p->n_series++];
	memset(s, 0, sizeof(*s));
	snprintf(s->label, sizeof(s->label), "%s", label);
	s->style = style;
	s->colour = colour % (int)(sizeof(palette) / sizeof(palette[0]));
	return s;
}

static void add_point(struct series *s, double x, double y)
{
	if (s && s->n < MAX_POINTS && isfinite(x) && isfinite(y)) {
		s->x[s->n] = x;
		s->y[s->n] = y;
		s->n++;
	}
}

/* Sorts a series by x, so lines are drawn left to right. */
static void sort_series(struct series *s)
{
	for (int i = 1; i < s->n; i++)
		for (int j = i; j > 0 && s->x[j - 1] > s->x[j]; j--) {
			double t = s->x[j];
			s->x[j] = s->x[j - 1];
			s->x[j - 1] = t;
			t = s->y[j];
			s->y[j] = s->y[j - 1];
			s->y[j - 1] = t;
		}
}

/* Accuracy against epsilon for `group` of a results array, one colour per
 * setting; prefix names the series (harden: "before " / "after "). */
static int accuracy_series(struct plot *p, const json_t *results, const char *group, const char *prefix,
			   int harden_after, int *colour, struct pc_error *err)
{
	char keys[MAX_SERIES][96];
	int n_keys = 0;
	size_t i, k;

	for (i = 0; i < json_array_size(results); i++) {
		const json_t *row = json_array_get(results, i);
		char key[96], where[64];

		if (!json_is_object(row))
			return pc_error_set(err, PC_ERR_FORMAT, "results", "entry %zu is not an object", i);
		if (strcmp(group_of(row), group))
			continue;
		setting_key(row, key, sizeof(key));
		for (k = 0; k < (size_t)n_keys && strcmp(keys[k], key); k++)
			;
		if (k < (size_t)n_keys || n_keys == MAX_SERIES / 3)
			continue;
		snprintf(keys[n_keys++], sizeof(keys[0]), "%s", key);
		snprintf(where, sizeof(where), "results[%zu]", i);
		{
			char nb[32], label[96], sp[48] = "";
			const json_t *first = row;
			struct series *g, *rm = NULL, *rw = NULL;
			double sparsity = opt_number(first, "sparsity"), steps = opt_number(first, "steps");

			if (sparsity > 0)
				snprintf(sp, sizeof(sp), ", %g%% sparse", sparsity);
			if (steps > 1)
				snprintf(sp + strlen(sp), sizeof(sp) - strlen(sp), ", %g steps", steps);
			snprintf(label, sizeof(label), "%s%s gradient%s", prefix, norm_of(first, nb, sizeof(nb)), sp);
			if (!(g = new_series(p, label, harden_after || !prefix[0] ? SOLID : DASHED, *colour)))
				return 0;
			if (!prefix[0]) {
				snprintf(label, sizeof(label), "%s random mean%s", norm_of(first, nb, sizeof(nb)), sp);
				/* random in the next colour: the gap between the two is the point */
				rm = new_series(p, label, DASHED, *colour + 1);
				snprintf(label, sizeof(label), "%s random worst%s", norm_of(first, nb, sizeof(nb)), sp);
				rw = new_series(p, label, DOTTED, *colour + 1);
			}
			for (k = i; k < json_array_size(results); k++) {
				const json_t *o = json_array_get(results, k), *gr, *rd;
				char ok[96];
				double eps = 0, acc = 0;

				if (!json_is_object(o) || strcmp(group_of(o), group))
					continue;
				setting_key(o, ok, sizeof(ok));
				if (strcmp(ok, key))
					continue;
				snprintf(where, sizeof(where), "results[%zu]", k);
				gr = json_object_get(o, "gradient");
				if (get_number(o, "epsilon", where, &eps, err) || get_number(gr, "accuracy", where, &acc, err))
					return PC_ERR_FORMAT;
				add_point(g, eps, 100 * acc);
				rd = json_object_get(o, "random");
				if (json_is_object(rd)) {
					add_point(rm, eps, 100 * opt_number(rd, "accuracy_mean"));
					add_point(rw, eps, 100 * opt_number(rd, "accuracy_min"));
				}
			}
			sort_series(g);
			if (rm)
				sort_series(rm);
			if (rw)
				sort_series(rw);
			/* a setting without random trials draws no empty series */
			if (rw && rw->n == 0)
				p->n_series--;
			if (rm && rm->n == 0)
				p->n_series--;
			*colour += prefix[0] ? 1 : 2;
		}
	}
	return 0;
}

/* --- axes ---------------------------------------------------------------- */

/* A step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double nice_step(double span, int want)
{
	double raw = span / want, p = pow(10, floor(log10(raw))), f = raw / p;

	return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Widens [lo, hi] to whole ticks (linear) or decades (log). */
static void fit_axis(double *lo, double *hi, int log_scale)
{
	if (log_scale) {
		/* ends at 1, 2 or 5 times a power of ten, so the data fills the
		 * width; ticks fall on those values too */
		double dl = pow(10, floor(log10(*lo) + 1e-9)), dh = pow(10, floor(log10(*hi) - 1e-9));

		*lo = *lo >= 5 * dl * (1 - 1e-9) ? 5 * dl : *lo >= 2 * dl * (1 - 1e-9) ? 2 * dl : dl;
		*hi = *hi <= dh * (1 + 1e-9) ? dh : *hi <= 2 * dh * (1 + 1e-9) ? 2 * dh : *hi <= 5 * dh * (1 + 1e-9) ? 5 * dh : 10 * dh;
		if (*hi <= *lo)
			*hi = *lo * 10;
		return;
	}
	if (*hi <= *lo) {
		double d = fabs(*lo) > 0 ? fabs(*lo) * 0.1 : 1;
		*lo -= d;
		*hi += d;
	}
	{
		double step = nice_step(*hi - *lo, 5);
		*lo = floor(*lo / step + 1e-9) * step;
		*hi = ceil(*hi / step - 1e-9) * step;
	}
}

static double px_x(const struct plot *p, double x)
{
	double t = p->xlog ? (log10(x) - log10(p->xmin)) / (log10(p->xmax) - log10(p->xmin))
			   : (x - p->xmin) / (p->xmax - p->xmin);

	return LEFT + t * (W - LEFT - RIGHT);
}

static double px_y(const struct plot *p, double y)
{
	double t = p->ylog ? (log10(y) - log10(p->ymin)) / (log10(p->ymax) - log10(p->ymin))
			   : (y - p->ymin) / (p->ymax - p->ymin);

	return H - BOTTOM - t * (H - TOP - BOTTOM);
}

/* A tick label: short, no trailing zeros. */
static void tick_text(double v, char *buf, size_t size)
{
	if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3))
		snprintf(buf, size, "%.0e", v);
	else
		snprintf(buf, size, "%.4g", v);
}

static void draw_ticks(struct buf *b, const struct plot *p, int xaxis)
{
	double lo = xaxis ? p->xmin : p->ymin, hi = xaxis ? p->xmax : p->ymax;
	int log_scale = xaxis ? p->xlog : p->ylog;
	char t[32];

	if (log_scale) {
		int decades = (int)floor(log10(hi / lo) + 0.5);
		static const double minors[] = {2, 5};

		for (double d = pow(10, floor(log10(lo) + 1e-9)); d <= hi * 1.0001; d *= 10) {
			for (int m = -1; m < 2; m++) {
				double v = m < 0 ? d : d * minors[m];
				double pos;

				if (v > hi * 1.0001 || v < lo * 0.9999 || (m >= 0 && decades > 3))
					continue;
				pos = xaxis ? px_x(p, v) : px_y(p, v);
				tick_text(v, t, sizeof(t));
				if (xaxis)
					bprintf(b,
						"<line class=\"grid\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>"
						"<text class=\"tick\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
						pos, TOP, pos, H - BOTTOM, pos, H - BOTTOM + 16, t);
				else
					bprintf(b,
						"<line class=\"grid\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>"
						"<text class=\"tick\" x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
						LEFT, pos, W - RIGHT, pos, LEFT - 6, pos + 4, t);
			}
		}
		return;
	}
	{
		double step = nice_step(hi - lo, xaxis ? 6 : 5);

		for (double v = ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-6; v += step) {
			double pos = xaxis ? px_x(p, v) : px_y(p, v);

			tick_text(fabs(v) < step * 1e-9 ? 0 : v, t, sizeof(t));
			if (xaxis)
				bprintf(b,
					"<line class=\"grid\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>"
					"<text class=\"tick\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
					pos, TOP, pos, H - BOTTOM, pos, H - BOTTOM + 16, t);
			else
				bprintf(b,
					"<line class=\"grid\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>"
					"<text class=\"tick\" x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
					LEFT, pos, W - RIGHT, pos, LEFT - 6, pos + 4, t);
		}
	}
}

static const char *dash_of(enum style s)
{
	return s == DASHED ? " stroke-dasharray=\"7 4\"" : s == DOTTED ? " stroke-dasharray=\"2 3\"" : "";
}

static void draw_legend(struct buf *b, const struct plot *p)
{
	int y = TOP + 4;

	bprintf(b, "<g class=\"legend\">\n");
	for (int i = 0; i < p->n_series; i++, y += 18) {
		const struct series *s = &p->s[i];
		int x = W - RIGHT + 14;

		if (s->style == DOTS)
			bprintf(b, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>", x + 11, y, palette[s->colour]);
		else if (s->style == BARS)
			bprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"22\" height=\"10\" fill=\"%s\"/>", x, y - 5,
				palette[s->colour]);
		else
			bprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"%s\"%s/>", x, y,
				x + 22, y, palette[s->colour], s->style == DOTTED ? "1.5" : "2.5", dash_of(s->style));
		bprintf(b, "<text x=\"%d\" y=\"%d\">", x + 28, y + 4);
		bescape(b, s->label);
		bprintf(b, "</text>\n");
	}
	if (p->has_hline) {
		bprintf(b,
			"<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#777\" stroke-width=\"1.5\" "
			"stroke-dasharray=\"1 3\"/><text x=\"%d\" y=\"%d\">",
			W - RIGHT + 14, y, W - RIGHT + 36, y, W - RIGHT + 42, y + 4);
		bescape(b, p->hline_label);
		bprintf(b, "</text>\n");
	}
	bprintf(b, "</g>\n");
}

/* Data ranges, with the scales chosen: log when a positive axis spans more
 * than a factor of 20 (radii usually grow geometrically). */
static void choose_ranges(struct plot *p, int allow_xlog, int allow_ylog, int y_percent)
{
	double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;

	for (int i = 0; i < p->n_series; i++)
		for (int k = 0; k < p->s[i].n; k++) {
			xlo = fmin(xlo, p->s[i].x[k]);
			xhi = fmax(xhi, p->s[i].x[k]);
			ylo = fmin(ylo, p->s[i].y[k]);
			yhi = fmax(yhi, p->s[i].y[k]);
		}
	if (p->has_hline) {
		ylo = fmin(ylo, p->hline);
		yhi = fmax(yhi, p->hline);
	}
	if (!isfinite(xlo)) {
		xlo = 0;
		xhi = 1;
		ylo = 0;
		yhi = 1;
	}
	p->xlog = allow_xlog && xlo > 0 && xhi / xlo > 20;
	p->ylog = allow_ylog && ylo > 0 && yhi / ylo > 20;
	if (p->has_diagonal && !p->ylog && !p->xlog) {
		/* y = x must fit: one range for both axes */
		xlo = ylo = fmin(xlo, ylo);
		xhi = yhi = fmax(xhi, yhi);
	}
	if (y_percent) {
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

static void draw_series(struct buf *b, const struct plot *p, const struct series *s, int index)
{
	const char *col = palette[s->colour];

	bprintf(b, "<path class=\"series\" data-series=\"");
	bescape(b, s->label);
	bprintf(b, "\" data-points=\"%d\" d=\"", s->n);
	for (int k = 0; k < s->n; k++) {
		if (s->style == BARS) {
			double half = 0.35 * (H - TOP - BOTTOM) / p->rows, y = px_y(p, s->y[k]);
			double x0 = px_x(p, 0), x1 = px_x(p, s->x[k]);

			bprintf(b, "%sM %.2f %.2f H %.2f V %.2f H %.2f Z", k ? " " : "", x0, y - half, x1, y + half, x0);
		} else if (s->style == DOTS) {
			bprintf(b, "%sM %.2f %.2f h 0", k ? " " : "", px_x(p, s->x[k]), px_y(p, s->y[k]));
		} else {
			bprintf(b, "%s%c %.2f %.2f", k ? " " : "", k ? 'L' : 'M', px_x(p, s->x[k]), px_y(p, s->y[k]));
		}
	}
	if (s->style == BARS)
		bprintf(b, "\" fill=\"%s\" fill-opacity=\"0.45\" stroke=\"%s\"/>\n", col, col);
	else if (s->style == DOTS)
		bprintf(b, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"7\" stroke-linecap=\"round\" opacity=\"0.8\"/>\n",
			col);
	else
		bprintf(b, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s stroke-linejoin=\"round\"/>\n", col,
			s->style == DOTTED ? "1.5" : "2.5", dash_of(s->style));
	/* the points of a line, so that a single radius still shows */
	if (s->style == SOLID)
		for (int k = 0; k < s->n; k++)
			bprintf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n", px_x(p, s->x[k]),
				px_y(p, s->y[k]), col);
	(void)index;
}

static char *render(const struct plot *p)
{
	struct buf b = {0};

	bprintf(&b,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
		"font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\" font-size=\"12\">\n<title>",
		W, H, W, H);
	bescape(&b, p->title);
	bprintf(&b, "</title>\n<style>.grid{stroke:#e3e3e3;stroke-width:1}.tick{fill:#444}"
		    ".axis{stroke:#333;stroke-width:1.2}</style>\n"
		    "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
	bprintf(&b, "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"600\">", LEFT);
	bescape(&b, p->title);
	bprintf(&b, "</text>\n");
	bprintf(&b,
		"<g class=\"plot\" data-x0=\"%d\" data-x1=\"%d\" data-y0=\"%d\" data-y1=\"%d\" data-xmin=\"%.17g\" "
		"data-xmax=\"%.17g\" data-ymin=\"%.17g\" data-ymax=\"%.17g\" data-xlog=\"%d\" data-ylog=\"%d\">\n",
		LEFT, W - RIGHT, H - BOTTOM, TOP, p->xmin, p->xmax, p->ymin, p->ymax, p->xlog, p->ylog);
	draw_ticks(&b, p, 1);
	if (!p->rows)
		draw_ticks(&b, p, 0);
	bprintf(&b,
		"<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>"
		"<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n",
		LEFT, H - BOTTOM, W - RIGHT, H - BOTTOM, LEFT, TOP, LEFT, H - BOTTOM);
	if (p->has_hline && p->hline >= p->ymin && p->hline <= p->ymax)
		bprintf(&b,
			"<line class=\"reference\" x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" stroke=\"#777\" "
			"stroke-width=\"1.5\" stroke-dasharray=\"1 3\"/>\n",
			LEFT, px_y(p, p->hline), W - RIGHT, px_y(p, p->hline));
	if (p->has_diagonal) {
		double lo = fmax(p->xmin, p->ymin), hi = fmin(p->xmax, p->ymax);

		if (hi > lo)
			bprintf(&b,
				"<line class=\"reference\" x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#777\" "
				"stroke-width=\"1.5\" stroke-dasharray=\"1 3\"/>\n",
				px_x(p, lo), px_y(p, lo), px_x(p, hi), px_y(p, hi));
	}
	for (int i = 0; i < p->n_series; i++)
		draw_series(&b, p, &p->s[i], i);
	/* bar labels sit in the plot, left of each bar */
	for (int i = 0; i < p->n_series; i++)
		if (p->s[i].style == BARS)
			for (int k = 0; k < p->s[i].n; k++) {
				bprintf(&b, "<text x=\"%.2f\" y=\"%.2f\" font-size=\"11\" fill=\"#111\">", px_x(p, 0) + 4,
					px_y(p, p->s[i].y[k]) + 4);
				bescape(&b, p->s[i].bar_label[k]);
				bprintf(&b, " (%.4g)</text>\n", p->s[i].x[k]);
			}
	bprintf(&b, "</g>\n");
	bprintf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">", LEFT + (W - LEFT - RIGHT) / 2,
		H - 16);
	bescape(&b, p->xlabel);
	bprintf(&b, "</text>\n<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">",
		TOP + (H - TOP - BOTTOM) / 2);
	bescape(&b, p->ylabel);
	bprintf(&b, "</text>\n");
	draw_legend(&b, p);
	bprintf(&b, "</svg>\n");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* --- the charts ---------------------------------------------------------- */

static int chart_accuracy(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *results = NULL, *clean = json_object_get(report, "clean");
	const char *group;
	char nb[32] = "";
	int colour = 0, rc;

	if ((rc = results_of(report, &results, err)))
		return rc;
	if (!(group = main_group(results)))
		return pc_error_set(err, PC_ERR_NOT_FOUND, "results", "no results to draw");
	if ((rc = accuracy_series(p, results, group, "", 0, &colour, err)))
		return rc;
	if (json_is_number(json_object_get(clean, "accuracy"))) {
		p->has_hline = 1;
		p->hline = 100 * json_number_value(json_object_get(clean, "accuracy"));
		snprintf(p->hline_label, sizeof(p->hline_label), "clean %.2f%%", p->hline);
	}
	snprintf(p->title, sizeof(p->title), "Accuracy under corruption of %s%s: gradient-based vs random",
		 strcmp(group, "model") ? "" : "the whole model", strcmp(group, "model") ? group : "");
	{
		/* one norm: name it on the axis */
		const char *norm = NULL;
		for (size_t i = 0; i < json_array_size(results); i++) {
			const json_t *row = json_array_get(results, i);
			if (strcmp(group_of(row), group))
				continue;
			if (norm && strcmp(norm, norm_of(row, nb, sizeof(nb)))) {
				norm = NULL;
				break;
			}
			norm = json_string_value(json_object_get(row, "norm"));
		}
		if (norm)
			snprintf(p->xlabel, sizeof(p->xlabel), "corruption radius \u03b5 (%s norm of the weight change)", norm);
		else
			snprintf(p->xlabel, sizeof(p->xlabel), "corruption radius \u03b5 (norm of the weight change)");
	}
	snprintf(p->ylabel, sizeof(p->ylabel), "accuracy (%%)");
	choose_ranges(p, 1, 0, 1);
	return 0;
}

static int chart_loss(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *results = NULL;
	char norms[8][32];
	int n_norms = 0, rc;
	size_t i;

	if ((rc = results_of(report, &results, err)))
		return rc;
	for (i = 0; i < json_array_size(results); i++) {
		const json_t *row = json_array_get(results, i), *gr;
		char nb[32], where[64];
		const char *nm;
		double fo = 0, dl = 0;
		int k;

		if (!json_is_object(row))
			return pc_error_set(err, PC_ERR_FORMAT, "results", "entry %zu is not an object", i);
		snprintf(where, sizeof(where), "results[%zu]", i);
		gr = json_object_get(row, "gradient");
		if (get_number(row, "first_order", where, &fo, err) || get_number(gr, "loss_change", where, &dl, err))
			return PC_ERR_FORMAT;
		nm = norm_of(row, nb, sizeof(nb));
		for (k = 0; k < n_norms && strcmp(norms[k], nm); k++)
			;
		if (k == n_norms) {
			char label[64];

			if (n_norms == 8)
				continue;
			snprintf(norms[n_norms++], sizeof(norms[0]), "%s", nm);
			snprintf(label, sizeof(label), "%s corruption", nm);
			if (!new_series(p, label, DOTS, k))
				continue;
		}
		add_point(&p->s[k], fo, dl);
	}
	if (!p->n_series)
		return pc_error_set(err, PC_ERR_NOT_FOUND, "results", "no results to draw");
	p->has_diagonal = 1;
	snprintf(p->title, sizeof(p->title), "Realised loss change against its first-order estimate");
	snprintf(p->xlabel, sizeof(p->xlabel), "first-order estimate of the loss change (nats)");
	snprintf(p->ylabel, sizeof(p->ylabel), "loss change under gradient corruption (nats)");
	for (int s = 0; s < p->n_series; s++)
		sort_series(&p->s[s]);
	choose_ranges(p, 1, 1, 0);
	/* a log axis needs every point positive */
	for (int s = 0; s < p->n_series; s++)
		for (int k = 0; k < p->s[s].n; k++)
			if ((p->xlog && p->s[s].x[k] <= 0) || (p->ylog && p->s[s].y[k] <= 0)) {
				choose_ranges(p, 0, 0, 0);
				s = p->n_series;
				break;
			}
	return 0;
}

static int chart_ranking(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *ranking = json_object_get(report, "ranking"), *head = NULL;
	size_t i, k, n = json_array_size(ranking), best_count = 0;
	struct series *s;
	char nb[32];

	if (!json_is_array(ranking))
		return pc_error_set(err, PC_ERR_NOT_FOUND, "ranking", "the report has no ranking");
	/* the setting ranking the most groups; the larger radius on a tie */
	for (i = 0; i < n; i++) {
		const json_t *a = json_array_get(ranking, i);
		char ka[96];
		size_t count = 0;

		if (!json_is_object(a))
			return pc_error_set(err, PC_ERR_FORMAT, "ranking", "entry %zu is not an object", i);
		setting_key(a, ka, sizeof(ka));
		for (k = 0; k < n; k++) {
			const json_t *b = json_array_get(ranking, k);
			char kb[96];

			setting_key(b, kb, sizeof(kb));
			count += !strcmp(ka, kb) && opt_number(a, "epsilon") == opt_number(b, "epsilon");
		}
		if (count > best_count || (count == best_count && head && opt_number(a, "epsilon") > opt_number(head, "epsilon"))) {
			best_count = count;
			head = a;
		}
	}
	if (!head)
		return pc_error_set(err, PC_ERR_NOT_FOUND, "ranking", "the ranking is empty");
	snprintf(p->title, sizeof(p->title), "The most fragile groups (%s, \u03b5 = %g, sparsity %g)",
		 norm_of(head, nb, sizeof(nb)), opt_number(head, "epsilon"), opt_number(head, "sparsity"));
	if (!(s = new_series(p, "loss change", BARS, 1)))
		return pc_error_set(err, PC_ERR_NOMEM, "ranking", "out of memory");
	for (int r = 1; r <= MAX_BARS; r++) {
		char kh[96];

		setting_key(head, kh, sizeof(kh));
		for (k = 0; k < n; k++) {
			const json_t *row = json_array_get(ranking, k);
			const char *g = group_of(row), *colon = strchr(g, ':');
			char kr[96], where[64];
			double dl = 0;

			setting_key(row, kr, sizeof(kr));
			if (opt_number(row, "rank") != r || strcmp(kr, kh) || opt_number(row, "epsilon") != opt_number(head, "epsilon"))
				continue;
			snprintf(where, sizeof(where), "ranking[%zu]", k);
			if (get_number(row, "loss_change", where, &dl, err))
				return PC_ERR_FORMAT;
			snprintf(s->bar_label[s->n], sizeof(s->bar_label[0]), "%s", colon ? colon + 1 : g);
			add_point(s, dl, r);
			break;
		}
	}
	snprintf(p->xlabel, sizeof(p->xlabel), "loss change under gradient corruption (nats)");
	snprintf(p->ylabel, sizeof(p->ylabel), "rank (1: most fragile)");
	choose_ranges(p, 0, 0, 0);
	p->xmin = fmin(0, p->xmin);
	/* ranks are drawn as rows, top down: the y range is the rank range */
	p->rows = s->n < 5 ? 5 : s->n;
	p->ymin = p->rows + 0.5;
	p->ymax = 0.5;
	return 0;
}

static int chart_harden(const json_t *report, struct plot *p, struct pc_error *err)
{
	const json_t *before = json_object_get(report, "before"), *after = json_object_get(report, "after");
	const json_t *rb = NULL, *ra = NULL;
	int colour = 0, rc;

	if (!json_is_object(before) || !json_is_object(after))
		return pc_error_set(err, PC_ERR_NOT_FOUND, "before", "not a harden report");
	if ((rc = results_of(before, &rb, err)) || (rc = results_of(after, &ra, err)))
		return rc;
	if ((rc = accuracy_series(p, rb, "model", "before: ", 0, &colour, err)))
		return rc;
	colour = 0;
	if ((rc = accuracy_series(p, ra, "model", "after: ", 1, &colour, err)))
		return rc;
	if (!p->n_series)
		return pc_error_set(err, PC_ERR_NOT_FOUND, "after", "no whole-model results to draw");
	snprintf(p->title, sizeof(p->title), "Hardening: accuracy under gradient corruption, before and after");
	snprintf(p->xlabel, sizeof(p->xlabel), "corruption radius \u03b5");
	snprintf(p->ylabel, sizeof(p->ylabel), "accuracy (%%)");
	choose_ranges(p, 1, 0, 1);
	return 0;
}

static const struct {
	const char *name, *title;
	int (*build)(const json_t *report, struct plot *p, struct pc_error *err);
} charts[] = {
	{"accuracy", "Accuracy against corruption radius", chart_accuracy},
	{"loss", "Loss change against its first-order estimate", chart_loss},
	{"ranking", "The most fragile groups", chart_ranking},
	{"harden", "Before and after hardening", chart_harden},
};

int pcd_chart_svg(const json_t *report, const char *name, char **svg, struct pc_error *err)
{
	struct plot p;
	size_t i;
	int rc;

	*svg = NULL;
	for (i = 0; i < sizeof(charts) / sizeof(charts[0]) && strcmp(charts[i].name, name); i++)
		;
	if (i == sizeof(charts) / sizeof(charts[0]))
		return pc_error_set(err, PC_ERR_NOT_FOUND, name, "no such chart");
	if (!json_is_object(report))
		return pc_error_set(err, PC_ERR_FORMAT, "report", "is not an object");
	memset(&p, 0, sizeof(p));
	if (!(p.s = calloc(MAX_SERIES, sizeof(*p.s))))
		return pc_error_set(err, PC_ERR_NOMEM, name, "out of memory");
	if ((rc = charts[i].build(report, &p, err)) == 0 && !(*svg = render(&p)))
		rc = pc_error_set(err, PC_ERR_NOMEM, name, "out of memory");
	free(p.s);
	return rc;
}

json_t *pcd_charts_list(const json_t *report)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; list && i < sizeof(charts) / sizeof(charts[0]); i++) {
		struct pc_error err = {0};
		char *svg = NULL;

		/* a chart is offered when it draws: the same code decides both */
		if (pcd_chart_svg(report, charts[i].name, &svg, &err) == 0 && svg)
			json_array_append_new(list, json_pack("{s:s, s:s}", "name", charts[i].name, "title", charts[i].title));
		free(svg);
	}
	return list;
}
