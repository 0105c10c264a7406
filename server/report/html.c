/* html: a report as one self-contained HTML file (html.h). Written with
 * open_memstream: the document is built once, in order, and its size is
 * bounded by the report's (every row of it is one table row). */
#include "html.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "charts.h"
#include "paracorr/version.h"
#include "markup.h"
#include "summary.h"

#define HTML_TOP 20 /* ranking rows shown per setting */

static const char style[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;max-width:1100px;"
	"margin:24px auto;padding:0 16px}"
	"h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de}"
	"h3{font-size:15px;margin:18px 0 6px}.meta{color:#59636e;margin:0 0 12px}"
	"table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}"
	"th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right}th{background:#f6f8fa}"
	"td.l,th.l{text-align:left}figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}"
	"figcaption{font-weight:600;margin-bottom:4px}svg{max-width:100%;height:auto}"
	".clean{font-size:16px}.clean b{font-size:20px}pre{background:#f6f8fa;padding:8px;overflow:auto;"
	"font-size:12px}";

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* A number cell: the report's value at full precision in data-value, a
 * readable one shown; "-" where the report has none (null: not finite). */
static void cell(FILE *f, const char *field, const json_t *v, int percent)
{
	fprintf(f, "<td data-field=\"%s\"", field);
	if (!json_is_number(v)) {
		fputs(">-</td>", f);
		return;
	}
	fprintf(f, " data-value=\"%.17g\">", json_number_value(v));
	if (percent)
		fprintf(f, "%.2f%%", 100.0 * json_number_value(v));
	else
		fprintf(f, "%.6g", json_number_value(v));
	fputs("</td>", f);
}

static void clean_block(FILE *f, const json_t *study)
{
	const json_t *c = json_object_get(study, "clean");

	fputs("<section data-section=\"clean\"><h2>Clean model</h2><p class=\"clean\">", f);
	if (json_is_number(json_object_get(c, "accuracy")))
		fprintf(f, "accuracy <b>%.2f%%</b>", 100.0 * json_number_value(json_object_get(c, "accuracy")));
	if (json_is_number(json_object_get(c, "loss")))
		fprintf(f, " &middot; loss <b>%.6g</b>", json_number_value(json_object_get(c, "loss")));
	if (json_is_number(json_object_get(c, "perplexity")))
		fprintf(f, " &middot; perplexity <b>%.6g</b>", json_number_value(json_object_get(c, "perplexity")));
	fputs("</p></section>\n", f);
}

static void results_block(FILE *f, const json_t *study)
{
	const json_t *results = json_object_get(study, "results"), *r;
	size_t i;

	if (!json_array_size(results))
		return;
	fputs("<section data-section=\"results\"><h2>Results</h2>\n"
	      "<p class=\"meta\">Gradient-based corruption (the worst case the gradient predicts) against random "
	      "corruption of the same size; random numbers are means over the trials.</p>\n<table><thead><tr>"
	      "<th class=\"l\">group</th><th>norm</th><th>&epsilon;</th><th>sparsity</th><th>steps</th>"
	      "<th>first-order &Delta;L</th><th>gradient &Delta;L</th><th>gradient accuracy</th>"
	      "<th>random &Delta;L</th><th>random accuracy</th><th>random std</th><th>trials</th>"
	      "</tr></thead><tbody>\n",
	      f);
	json_array_foreach(results, i, r)
	{
		const json_t *g = json_object_get(r, "gradient"), *rnd = json_object_get(r, "random");
		char nb[32];
		const char *norm = pcd_summary_norm(r, nb, sizeof(nb));

		fputs("<tr data-group=\"", f);
		pcd_markup_text(f, str(r, "group"));
		fputs("\" data-norm=\"", f);
		pcd_markup_text(f, norm);
		fprintf(f, "\" data-epsilon=\"%.17g\" data-sparsity=\"%lld\" data-steps=\"%lld\"><td class=\"l\">",
			json_number_value(json_object_get(r, "epsilon")),
			(long long)json_integer_value(json_object_get(r, "sparsity")),
			(long long)json_integer_value(json_object_get(r, "steps")));
		pcd_markup_text(f, str(r, "group"));
		fputs("</td><td>", f);
		pcd_markup_text(f, norm);
		fputs("</td>", f);
		cell(f, "epsilon", json_object_get(r, "epsilon"), 0);
		cell(f, "sparsity", json_object_get(r, "sparsity"), 0);
		cell(f, "steps", json_object_get(r, "steps"), 0);
		cell(f, "first_order", json_object_get(r, "first_order"), 0);
		cell(f, "gradient.loss_change", json_object_get(g, "loss_change"), 0);
		cell(f, "gradient.accuracy", json_object_get(g, "accuracy"), 1);
		cell(f, "random.loss_change_mean", json_object_get(rnd, "loss_change_mean"), 0);
		cell(f, "random.accuracy_mean", json_object_get(rnd, "accuracy_mean"), 1);
		cell(f, "random.accuracy_std", json_object_get(rnd, "accuracy_std"), 1);
		cell(f, "random.trials", json_object_get(rnd, "trials"), 0);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></section>\n", f);
}

/* The most fragile groups: the first HTML_TOP ranks of each setting. */
static void ranking_block(FILE *f, const json_t *study)
{
	const json_t *rk = json_object_get(study, "ranking"), *e;
	size_t i;

	if (!json_array_size(rk))
		return;
	fprintf(f, "<section data-section=\"ranking\"><h2>Most fragile groups</h2>\n<p class=\"meta\">Per setting, "
		   "the groups by the loss change their gradient-based corruption causes (top %d).</p>\n"
		   "<table><thead><tr><th>rank</th><th class=\"l\">group</th><th>norm</th><th>&epsilon;</th>"
		   "<th>sparsity</th><th>&Delta;L</th><th>accuracy</th></tr></thead><tbody>\n",
		HTML_TOP);
	json_array_foreach(rk, i, e)
	{
		char nb[32];
		const char *norm = pcd_summary_norm(e, nb, sizeof(nb));

		if (json_integer_value(json_object_get(e, "rank")) > HTML_TOP)
			continue;
		fputs("<tr data-rank-group=\"", f);
		pcd_markup_text(f, str(e, "group"));
		fputs("\">", f);
		cell(f, "rank", json_object_get(e, "rank"), 0);
		fputs("<td class=\"l\">", f);
		pcd_markup_text(f, str(e, "group"));
		fputs("</td><td>", f);
		pcd_markup_text(f, norm);
		fputs("</td>", f);
		cell(f, "epsilon", json_object_get(e, "epsilon"), 0);
		cell(f, "sparsity", json_object_get(e, "sparsity"), 0);
		cell(f, "loss_change", json_object_get(e, "loss_change"), 0);
		cell(f, "accuracy", json_object_get(e, "accuracy"), 1);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></section>\n", f);
}

static void charts_block(FILE *f, const json_t *report)
{
	json_t *list = pcd_charts_list(report), *c;
	size_t i;

	if (!json_array_size(list)) {
		json_decref(list);
		return;
	}
	fputs("<section data-section=\"charts\"><h2>Charts</h2>\n", f);
	json_array_foreach(list, i, c)
	{
		struct pc_error err = {0};
		char *svg = NULL;
		const char *name = str(c, "name");

		if (pcd_chart_svg(report, name, &svg, &err))
			continue;
		fputs("<figure data-chart=\"", f);
		pcd_markup_text(f, name);
		fputs("\"><figcaption>", f);
		pcd_markup_text(f, str(c, "title"));
		fputs("</figcaption>\n", f);
		fputs(svg, f);
		fputs("</figure>\n", f);
		free(svg);
	}
	fputs("</section>\n", f);
	json_decref(list);
}

static void about(FILE *f, const json_t *report, const json_t *study)
{
	const json_t *m = json_object_get(study, "model"), *d = json_object_get(study, "dataset");
	const json_t *spec = json_object_get(report, "spec");
	const char *model = json_string_value(json_object_get(spec, "model"));

	fputs("<h1>paracorr report</h1>\n<p class=\"meta\">", f);
	if (model) {
		fputs("model <code>", f);
		pcd_markup_text(f, model);
		fputs("</code>", f);
	}
	if (json_is_integer(json_object_get(m, "parameters")))
		fprintf(f, " &middot; %lld parameters", (long long)json_integer_value(json_object_get(m, "parameters")));
	if (json_is_integer(json_object_get(d, "samples")))
		fprintf(f, " &middot; %lld samples", (long long)json_integer_value(json_object_get(d, "samples")));
	if (json_is_integer(json_object_get(spec, "seed")))
		fprintf(f, " &middot; seed %lld", (long long)json_integer_value(json_object_get(spec, "seed")));
	fputs("</p>\n", f);
}

static void spec_block(FILE *f, const json_t *report)
{
	const json_t *spec = json_object_get(report, "spec");
	char *text;

	if (!spec || !(text = json_dumps(spec, JSON_INDENT(2) | JSON_SORT_KEYS)))
		return;
	fputs("<section data-section=\"spec\"><h2>Spec</h2><pre>", f);
	pcd_markup_text(f, text);
	fputs("</pre></section>\n", f);
	free(text);
}

int pcd_report_html(const json_t *report, char **html, size_t *len, struct pc_error *err)
{
	const json_t *before = json_object_get(report, "before"), *after = json_object_get(report, "after");
	int harden = json_is_object(before) && json_is_object(after);
	FILE *f;

	*html = NULL;
	*len = 0;
	if (!json_is_object(report) || (!harden && !json_is_object(json_object_get(report, "clean"))))
		return pc_error_set(err, PC_ERR_FORMAT, "report",
				    "not a paracorr report (no \"clean\" object, nor \"before\" and \"after\")");
	if (!(f = open_memstream(html, len)))
		return pc_error_set(err, PC_ERR_NOMEM, "report", "out of memory for the HTML report");
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		   "<meta name=\"generator\" content=\"paracorr %s\">\n<title>paracorr report</title>\n<style>%s</style>"
		   "</head>\n<body>\n",
		PC_VERSION, style);
	about(f, report, harden ? before : report);
	if (harden) {
		fputs("<p class=\"meta\">A harden job: the model as uploaded (before) and after adversarial "
		      "corruption-resistant training (after).</p>\n",
		      f);
		charts_block(f, report);
		fputs("<section data-section=\"before\"><h2>Before hardening</h2>\n", f);
		clean_block(f, before);
		results_block(f, before);
		fputs("</section>\n<section data-section=\"after\"><h2>After hardening</h2>\n", f);
		clean_block(f, after);
		results_block(f, after);
		ranking_block(f, after);
		fputs("</section>\n", f);
	} else {
		clean_block(f, report);
		charts_block(f, report);
		results_block(f, report);
		ranking_block(f, report);
	}
	spec_block(f, report);
	fprintf(f, "<p class=\"meta\">Written by paracorr %s. Definitions: the project's docs/method.md.</p>\n"
		   "</body></html>\n",
		PC_VERSION);
	if (fclose(f) || !*html) {
		free(*html);
		*html = NULL;
		*len = 0;
		return pc_error_set(err, PC_ERR_NOMEM, "report", "out of memory for the HTML report");
	}
	return PC_OK;
}
