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

/* A column of a table: its header (HTML) and the report field its cells
 * show, a path into the row ("gradient.accuracy": the accuracy of the
 * row's "gradient"; "accuracy_ci95.0": the first entry of that array) that
 * a number cell also names in data-field, where clients read it back;
 * percent shows the number as a percentage. The group and the norm are
 * text cells, as are other strings (COL_TEXT); COL_COUNT shows the length
 * of an array, COL_YESNO a boolean. */
enum col_kind { COL_NUMBER, COL_GROUP, COL_NORM, COL_TEXT, COL_COUNT, COL_YESNO };

struct column {
	const char *header;
	const char *field;
	int percent;
	enum col_kind kind;
};

/* A row's setting: both tables name it by the same columns. */
#define SETTING_COLS                                                                                                   \
	{"group", "group", 0, COL_GROUP},                                                                              \
	{"norm", "norm", 0, COL_NORM},                                                                                 \
	{"&epsilon;", "epsilon", 0, COL_NUMBER},                                                                       \
	{"sparsity", "sparsity", 0, COL_NUMBER}

static const struct column results_cols[] = {
	SETTING_COLS,
	{"steps", "steps", 0, COL_NUMBER},
	{"first-order &Delta;L", "first_order", 0, COL_NUMBER},
	/* only with a curvature block (results_block leaves it out otherwise) */
	{"second-order &Delta;L", "second_order", 0, COL_NUMBER},
	{"gradient &Delta;L", "gradient.loss_change", 0, COL_NUMBER},
	{"gradient accuracy", "gradient.accuracy", 1, COL_NUMBER},
	{"random &Delta;L", "random.loss_change_mean", 0, COL_NUMBER},
	{"random accuracy", "random.accuracy_mean", 1, COL_NUMBER},
	{"random 95% low", "random.accuracy_ci95.0", 1, COL_NUMBER},
	{"random 95% high", "random.accuracy_ci95.1", 1, COL_NUMBER},
	{"random std", "random.accuracy_std", 1, COL_NUMBER},
	{"trials", "random.trials", 0, COL_NUMBER},
};

/* The curvature table: the model's row, then each group's. */
static const struct column curvature_cols[] = {
	{"group", "group", 0, COL_GROUP},
	{"parameters", "parameters", 0, COL_NUMBER},
	{"&lambda;<sub>1</sub>", "eigenvalues.0", 0, COL_NUMBER},
	{"&lambda;<sub>2</sub>", "eigenvalues.1", 0, COL_NUMBER},
	{"&lambda;<sub>3</sub>", "eigenvalues.2", 0, COL_NUMBER},
	{"converged", "converged", 0, COL_YESNO},
	{"trace", "trace", 0, COL_NUMBER},
	{"trace 95% low", "trace_ci95.0", 0, COL_NUMBER},
	{"trace 95% high", "trace_ci95.1", 0, COL_NUMBER},
	{"products", "hvp_count", 0, COL_NUMBER},
};

static const struct column ranking_cols[] = {
	{"rank", "rank", 0, COL_NUMBER},
	SETTING_COLS,
	{"&Delta;L", "loss_change", 0, COL_NUMBER},
	{"accuracy", "accuracy", 1, COL_NUMBER},
};

static const struct column critical_cols[] = {
	{"group", "group", 0, COL_GROUP},
	{"norm", "norm", 0, COL_NORM},
	{"sparsity", "sparsity", 0, COL_NUMBER},
	{"gradient &epsilon;*", "gradient.epsilon", 0, COL_NUMBER},
	{"evaluations", "gradient.evaluations", 0, COL_NUMBER},
	{"random &epsilon;*", "random.epsilon", 0, COL_NUMBER},
	{"evaluations", "random.evaluations", 0, COL_NUMBER},
	{"ratio", "ratio", 0, COL_NUMBER},
};

/* The bit-fault study: each format's clean numbers, random bit errors,
 * bit positions, and the worst-case searches with their flips. */
static const struct column quantized_cols[] = {
	{"format", "format", 0, COL_TEXT},
	{"accuracy", "accuracy", 1, COL_NUMBER},
	{"loss", "loss", 0, COL_NUMBER},
};

static const struct column ber_cols[] = {
	{"format", "format", 0, COL_TEXT},
	{"group", "group", 0, COL_GROUP},
	{"bit error rate", "ber", 0, COL_NUMBER},
	{"trials", "trials", 0, COL_NUMBER},
	{"flips (mean)", "flips_mean", 0, COL_NUMBER},
	{"accuracy", "accuracy_mean", 1, COL_NUMBER},
	{"95% low", "accuracy_ci95.0", 1, COL_NUMBER},
	{"95% high", "accuracy_ci95.1", 1, COL_NUMBER},
	{"worst", "accuracy_min", 1, COL_NUMBER},
	{"loss", "loss_mean", 0, COL_NUMBER},
};

static const struct column bits_cols[] = {
	{"format", "format", 0, COL_TEXT},
	{"group", "group", 0, COL_GROUP},
	{"bit", "bit", 0, COL_NUMBER},
	{"field", "field", 0, COL_TEXT},
	{"weights", "weights", 0, COL_NUMBER},
	{"trials", "trials", 0, COL_NUMBER},
	{"accuracy", "accuracy_mean", 1, COL_NUMBER},
	{"worst", "accuracy_min", 1, COL_NUMBER},
};

static const struct column search_cols[] = {
	{"format", "format", 0, COL_TEXT},
	{"group", "group", 0, COL_GROUP},
	{"method", "method", 0, COL_TEXT},
	{"target", "target_accuracy", 1, COL_NUMBER},
	{"clean", "clean.accuracy", 1, COL_NUMBER},
	{"flips", "flips", 0, COL_COUNT},
	{"reached", "reached", 0, COL_YESNO},
};

static const struct column flip_cols[] = {
	{"tensor", "tensor", 0, COL_GROUP},
	{"index", "index", 0, COL_NUMBER},
	{"bit", "bit", 0, COL_NUMBER},
	{"before", "before", 0, COL_NUMBER},
	{"after", "after", 0, COL_NUMBER},
	{"loss", "loss", 0, COL_NUMBER},
	{"accuracy", "accuracy", 1, COL_NUMBER},
};

#define N_COLS(cols) (sizeof(cols) / sizeof((cols)[0]))

/* The value at a field path of row; NULL where any step is missing. A
 * step into an array is its index. */
static const json_t *field_of(const json_t *row, const char *path)
{
	for (;;) {
		size_t n = strcspn(path, ".");

		if (json_is_array(row))
			row = json_array_get(row, (size_t)strtoul(path, NULL, 10));
		else
			row = json_object_getn(row, path, n);
		if (!path[n])
			return row;
		path += n + 1;
	}
}

static void table_head(FILE *f, const struct column *cols, size_t n)
{
	fputs("<table><thead><tr>", f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "<th%s>%s</th>", cols[i].kind == COL_GROUP ? " class=\"l\"" : "", cols[i].header);
	fputs("</tr></thead><tbody>\n", f);
}

static void table_cells(FILE *f, const struct column *cols, size_t n, const json_t *row)
{
	char nb[32];

	for (size_t i = 0; i < n; i++) {
		switch (cols[i].kind) {
		case COL_NUMBER:
			cell(f, cols[i].field, field_of(row, cols[i].field), cols[i].percent);
			break;
		case COL_GROUP:
			fputs("<td class=\"l\">", f);
			pcd_markup_text(f, str(row, cols[i].field));
			fputs("</td>", f);
			break;
		case COL_NORM:
			fputs("<td>", f);
			pcd_markup_text(f, pcd_summary_norm(row, nb, sizeof(nb)));
			fputs("</td>", f);
			break;
		case COL_TEXT:
			fprintf(f, "<td data-field=\"%s\">", cols[i].field);
			pcd_markup_text(f, str(row, cols[i].field));
			fputs("</td>", f);
			break;
		case COL_COUNT:
			fprintf(f, "<td data-field=\"%s\">%zu</td>", cols[i].field,
				json_array_size(field_of(row, cols[i].field)));
			break;
		case COL_YESNO: {
			const json_t *v = field_of(row, cols[i].field);

			fprintf(f, "<td data-field=\"%s\">%s</td>", cols[i].field,
				!json_is_boolean(v) ? "-" : json_is_true(v) ? "yes" : "no");
			break;
		}
		}
	}
}

static void results_block(FILE *f, const json_t *study)
{
	const json_t *results = json_object_get(study, "results"), *r;
	struct column cols[N_COLS(results_cols)];
	size_t i, n_cols = 0;
	int second = json_object_get(json_array_get(results, 0), "second_order") != NULL;

	if (!json_array_size(results))
		return;
	fputs("<section data-section=\"results\"><h2>Results</h2>\n"
	      "<p class=\"meta\">Gradient-based corruption (the worst case the gradient predicts) against random "
	      "corruption of the same size; random numbers are means over the trials.</p>\n",
	      f);
	for (i = 0; i < N_COLS(results_cols); i++)
		if (second || strcmp(results_cols[i].field, "second_order"))
			cols[n_cols++] = results_cols[i];
	table_head(f, cols, n_cols);
	json_array_foreach(results, i, r)
	{
		char nb[32];

		fputs("<tr data-group=\"", f);
		pcd_markup_text(f, str(r, "group"));
		fputs("\" data-norm=\"", f);
		pcd_markup_text(f, pcd_summary_norm(r, nb, sizeof(nb)));
		fprintf(f, "\" data-epsilon=\"%.17g\" data-sparsity=\"%lld\" data-steps=\"%lld\">",
			json_number_value(json_object_get(r, "epsilon")),
			(long long)json_integer_value(json_object_get(r, "sparsity")),
			(long long)json_integer_value(json_object_get(r, "steps")));
		table_cells(f, cols, n_cols, r);
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
		   "the groups by the loss change their gradient-based corruption causes (top %d).</p>\n",
		HTML_TOP);
	table_head(f, ranking_cols, N_COLS(ranking_cols));
	json_array_foreach(rk, i, e)
	{
		if (json_integer_value(json_object_get(e, "rank")) > HTML_TOP)
			continue;
		fputs("<tr data-rank-group=\"", f);
		pcd_markup_text(f, str(e, "group"));
		fputs("\">", f);
		table_cells(f, ranking_cols, N_COLS(ranking_cols), e);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></section>\n", f);
}

/* The critical radii, the headline: one row per group, norm and sparsity. */
static void critical_block(FILE *f, const json_t *study)
{
	const json_t *crit = json_object_get(study, "critical"), *e;
	size_t i;

	if (!json_array_size(crit))
		return;
	fprintf(f, "<section data-section=\"critical\"><h2>Critical radius</h2>\n<p class=\"meta\">The radius at which "
		   "accuracy first falls below clean &minus; %g, to %g relative; a dash: not reached. "
		   "Ratio: random over gradient.</p>\n",
		json_number_value(json_object_get(json_array_get(crit, 0), "accuracy_drop")),
		json_number_value(json_object_get(json_array_get(crit, 0), "tolerance")));
	table_head(f, critical_cols, N_COLS(critical_cols));
	json_array_foreach(crit, i, e)
	{
		fputs("<tr>", f);
		table_cells(f, critical_cols, N_COLS(critical_cols), e);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></section>\n", f);
}

/* The Hessian's top eigenvalues and trace (the first three eigenvalues;
 * the report has all of them). */
static void curvature_block(FILE *f, const json_t *study)
{
	const json_t *cv = json_object_get(study, "curvature"), *g;
	const char *name;
	json_t *row;

	if (!json_is_object(cv))
		return;
	fprintf(f, "<section data-section=\"curvature\"><h2>Curvature</h2>\n<p class=\"meta\">The Hessian of the mean "
		   "loss, for the whole model and each group: its top eigenvalues (Lanczos) and its trace "
		   "(Hutchinson, %lld Rademacher vectors, with a 95%% interval); products: Hessian-vector products "
		   "used.</p>\n",
		(long long)json_integer_value(json_object_get(cv, "trace_samples")));
	table_head(f, curvature_cols, N_COLS(curvature_cols));
	if ((row = json_deep_copy(cv))) {
		json_object_del(row, "groups");
		json_object_set_new(row, "group", json_string("model"));
		fputs("<tr data-group=\"model\">", f);
		table_cells(f, curvature_cols, N_COLS(curvature_cols), row);
		fputs("</tr>\n", f);
		json_decref(row);
	}
	json_object_foreach((json_t *)json_object_get(cv, "groups"), name, g)
	{
		if (!(row = json_deep_copy(g)))
			continue;
		json_object_set_new(row, "group", json_string(name));
		fputs("<tr data-group=\"", f);
		pcd_markup_text(f, name);
		fputs("\">", f);
		table_cells(f, curvature_cols, N_COLS(curvature_cols), row);
		fputs("</tr>\n", f);
		json_decref(row);
	}
	fputs("</tbody></table></section>\n", f);
}

/* The rows of one table of the faults section, with a heading. */
static void rows_table(FILE *f, const char *title, const char *meta, const struct column *cols, size_t n,
		       const json_t *rows)
{
	const json_t *r;
	size_t i;

	fputs("<h3>", f);
	pcd_markup_text(f, title);
	fprintf(f, "</h3>\n<p class=\"meta\">%s</p>\n", meta);
	table_head(f, cols, n);
	json_array_foreach(rows, i, r)
	{
		fputs("<tr>", f);
		table_cells(f, cols, n, r);
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table>\n", f);
}

static void faults_block(FILE *f, const json_t *study)
{
	const json_t *faults = json_object_get(study, "faults"), *q = json_object_get(faults, "quantized"), *v;
	const json_t *search = json_object_get(faults, "search");
	json_t *qrows;
	const char *fmt;
	size_t i;

	if (!json_is_object(faults))
		return;
	fputs("<section data-section=\"faults\"><h2>Bit faults</h2>\n", f);
	if (json_object_size(q) && (qrows = json_array())) {
		json_object_foreach((json_t *)q, fmt, v)
			json_array_append_new(qrows, json_pack("{s:s, s:O?, s:O?}", "format", fmt, "accuracy",
							       json_object_get(v, "accuracy"), "loss", json_object_get(v, "loss")));
		rows_table(f, "The model as stored", "float16 and bfloat16 rounded to nearest even, int8 quantized.",
			   quantized_cols, N_COLS(quantized_cols), qrows);
		json_decref(qrows);
	}
	if (json_array_size(json_object_get(faults, "random")))
		rows_table(f, "Random bit errors",
			   "Every exposed bit flips with probability ber; means over the trials with their 95% interval.",
			   ber_cols, N_COLS(ber_cols), json_object_get(faults, "random"));
	if (json_array_size(json_object_get(faults, "bits")))
		rows_table(f, "Per bit position", "The bit flipped in that many random weights, over the trials.", bits_cols,
			   N_COLS(bits_cols), json_object_get(faults, "bits"));
	if (json_array_size(search)) {
		const json_t *srch;

		rows_table(f, "Worst-case bit search", "Flips committed until accuracy reached the target (or the budget ran out).",
			   search_cols, N_COLS(search_cols), search);
		json_array_foreach(search, i, srch)
		{
			char title[256];

			if (!json_array_size(json_object_get(srch, "flips")))
				continue;
			snprintf(title, sizeof(title), "Flips of the %s search, %s", str(srch, "method"), str(srch, "format"));
			rows_table(f, title, "In the order committed; loss and accuracy after each.", flip_cols,
				   N_COLS(flip_cols), json_object_get(srch, "flips"));
		}
	}
	fputs("</section>\n", f);
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

	const char *name = json_string_value(json_object_get(report, "name"));
	const char *key;
	json_t *v;

	/* a named job's report is titled by its name, its labels under it */
	if (name) {
		fputs("<h1 data-field=\"name\">", f);
		pcd_markup_text(f, name);
		fputs("</h1>\n", f);
	} else {
		fputs("<h1>paracorr report</h1>\n", f);
	}
	if (json_object_size(json_object_get(report, "labels"))) {
		fputs("<p class=\"meta\" data-field=\"labels\">", f);
		json_object_foreach(json_object_get(report, "labels"), key, v)
		{
			fputs("<code data-label=\"", f);
			pcd_markup_text(f, key);
			fputs("\">", f);
			pcd_markup_text(f, key);
			fputc('=', f);
			pcd_markup_text(f, json_string_value(v) ? json_string_value(v) : "");
			fputs("</code> ", f);
		}
		fputs("</p>\n", f);
	}
	fputs("<p class=\"meta\">", f);
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
		   "<meta name=\"generator\" content=\"paracorr %s\">\n<title>",
		PC_VERSION);
	if (json_is_string(json_object_get(report, "name"))) {
		pcd_markup_text(f, json_string_value(json_object_get(report, "name")));
		fputs(" &middot; ", f);
	}
	fprintf(f, "paracorr report</title>\n<style>%s</style></head>\n<body>\n", style);
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
		critical_block(f, report);
		charts_block(f, report);
		results_block(f, report);
		ranking_block(f, report);
		faults_block(f, report);
		curvature_block(f, report);
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
