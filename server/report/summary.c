/* summary: see summary.h. Reports are read defensively: a report from an
 * older version or another kind of job prints what it has. */
#include "summary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/sys.h"

static double num(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *pcd_summary_norm(const json_t *row, char *buf, size_t size)
{
	const json_t *n = json_object_get(row, "norm");

	if (json_is_string(n))
		return json_string_value(n);
	snprintf(buf, size, json_is_number(n) ? "l%g" : "?", json_number_value(n));
	return buf;
}

/* "87.39%" or "-" */
static const char *pct(double v, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.2f%%", 100.0 * v);
	return buf;
}

/* The random accuracy as "87.39% ± 0.21" (the half-width of its 95%
 * interval, in points), or the mean alone where there is no interval. */
static const char *pct_ci(const json_t *rd, char *buf, size_t size)
{
	const json_t *ci = json_object_get(rd, "accuracy_ci95");
	double m = num(rd, "accuracy_mean");

	if (isnan(m))
		return pct(m, buf, size);
	if (!json_is_array(ci) || json_array_size(ci) != 2)
		snprintf(buf, size, "%.2f%%", 100.0 * m);
	else
		snprintf(buf, size, "%.2f%% \u00b1 %.2f", 100.0 * m,
			 50.0 * (json_number_value(json_array_get(ci, 1)) - json_number_value(json_array_get(ci, 0))));
	return buf;
}

static const char *real(double v, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.4g", v);
	return buf;
}

/* Equal, with two missing fields equal too. */
static int same(double a, double b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* Whether two results belong to one setting line-up (same block, norm,
 * sparsity and steps): the rows of one model-wide table. */
static int same_setting(const json_t *a, const json_t *b)
{
	char na[32], nb[32];

	return same(num(a, "block"), num(b, "block")) && same(num(a, "sparsity"), num(b, "sparsity")) &&
	       same(num(a, "steps"), num(b, "steps")) && !strcmp(pcd_summary_norm(a, na, sizeof(na)), pcd_summary_norm(b, nb, sizeof(nb)));
}

static void print_model_tables(const json_t *results, int seq, FILE *f)
{
	size_t i, k, n = json_array_size(results);
	char b1[32], b2[32], b3[32], b4[32], b5[32], nb[32];

	for (i = 0; i < n; i++) {
		const json_t *head = json_array_get(results, i);
		const json_t *grp = json_object_get(head, "group");
		int first = 1;

		if (!json_is_string(grp) || strcmp(json_string_value(grp), "model"))
			continue;
		/* the first row of its setting starts the table */
		for (k = 0; k < i; k++) {
			const json_t *o = json_array_get(results, k);
			if (json_is_string(json_object_get(o, "group")) &&
			    !strcmp(json_string_value(json_object_get(o, "group")), "model") && same_setting(o, head))
				break;
		}
		if (k < i)
			continue;
		for (k = i; k < n; k++) {
			const json_t *row = json_array_get(results, k), *gr, *rd;

			if (!json_is_string(json_object_get(row, "group")) ||
			    strcmp(json_string_value(json_object_get(row, "group")), "model") || !same_setting(row, head))
				continue;
			if (first) {
				fprintf(f, "\nthe whole model, %s corruption, sparsity %s, %s step%s:\n",
					pcd_summary_norm(head, nb, sizeof(nb)), real(num(head, "sparsity"), b1, sizeof(b1)),
					real(num(head, "steps"), b2, sizeof(b2)), num(head, "steps") == 1 ? "" : "s");
				fprintf(f, "  %10s  %12s  %17s  %12s  %12s  %12s", "epsilon", "gradient acc",
					"random acc, 95%", "random worst", "loss change", "first-order");
				if (json_object_get(head, "second_order"))
					fprintf(f, "  %12s", "second-order");
				/* a sequence model's perplexity under gradient corruption */
				fputs(seq ? "    perplexity\n" : "\n", f);
				first = 0;
			}
			gr = json_object_get(row, "gradient");
			rd = json_object_get(row, "random");
			fprintf(f, "  %10s  %12s  %18s  %12s  %12s  %12s", real(num(row, "epsilon"), b1, sizeof(b1)),
				pct(num(gr, "accuracy"), b2, sizeof(b2)), pct_ci(rd, b3, sizeof(b3)),
				pct(num(rd, "accuracy_min"), b4, sizeof(b4)), real(num(gr, "loss_change"), b5, sizeof(b5)),
				real(num(row, "first_order"), nb, sizeof(nb)));
			if (json_object_get(head, "second_order"))
				fprintf(f, "  %12s", real(num(row, "second_order"), b1, sizeof(b1)));
			if (seq)
				fprintf(f, "  %12s", real(num(gr, "perplexity"), b1, sizeof(b1)));
			fputc('\n', f);
		}
	}
}

/* The ranking setting with the most groups (ties: the larger epsilon),
 * then its first `top` entries by rank. */
static void print_ranking(const json_t *ranking, int top, FILE *f)
{
	size_t i, k, n = json_array_size(ranking), best = n, best_count = 0;
	char nb[32], b1[32], b2[32], b3[32];

	for (i = 0; i < n; i++) {
		const json_t *a = json_array_get(ranking, i);
		size_t count = 0;

		if (json_object_get(a, "by")) /* by critical radius: print_critical's table */
			continue;

		for (k = 0; k < n; k++) {
			const json_t *b = json_array_get(ranking, k);
			if (same_setting(a, b) && same(num(a, "epsilon"), num(b, "epsilon")))
				count++;
		}
		if (count > best_count ||
		    (count == best_count && best < n && num(a, "epsilon") > num(json_array_get(ranking, best), "epsilon"))) {
			best = i;
			best_count = count;
		}
	}
	if (best == n || top <= 0)
		return;
	{
		const json_t *h = json_array_get(ranking, best);
		fprintf(f, "\nthe most fragile of %zu groups (%s, epsilon %s, sparsity %s):\n", best_count,
			pcd_summary_norm(h, nb, sizeof(nb)), real(num(h, "epsilon"), b1, sizeof(b1)),
			real(num(h, "sparsity"), b2, sizeof(b2)));
		fprintf(f, "  %4s  %-40s  %12s  %12s\n", "rank", "group", "loss change", "accuracy");
		for (int r = 1; r <= top; r++) {
			for (k = 0; k < n; k++) {
				const json_t *row = json_array_get(ranking, k);
				const json_t *g = json_object_get(row, "group");

				if (num(row, "rank") != r || !same_setting(row, h) || !same(num(row, "epsilon"), num(h, "epsilon")))
					continue;
				fprintf(f, "  %4d  %-40.40s  %12s  %12s\n", r, json_is_string(g) ? json_string_value(g) : "?",
					real(num(row, "loss_change"), b1, sizeof(b1)),
					pct(num(row, "accuracy"), b3, sizeof(b3)));
			}
		}
	}
}

static void print_harden(const json_t *report, int top, FILE *f)
{
	const json_t *curve = json_object_get(json_object_get(report, "training"), "epochs"), *e;
	char b1[32], b2[32], b3[32], b4[32];
	size_t i;
	/* a sequence model's curve has perplexities too */
	int seq = json_is_object(json_array_get(curve, 0)) && json_object_get(json_array_get(curve, 0), "perplexity");

	fprintf(f, "training (%s):\n  %5s  %10s  %10s  %14s  %14s  %10s", "loss and accuracy over the epoch's batches",
		"epoch", "loss", "accuracy", "loss at w+a", "accuracy at w+a", "lr");
	fputs(seq ? "  perplexity\n" : "\n", f);
	json_array_foreach(curve, i, e) {
		fprintf(f, "  %5.0f  %10s  %10s  %14s  %14s  %10.4g", num(e, "epoch"), real(num(e, "loss"), b1, sizeof(b1)),
			pct(num(e, "accuracy"), b2, sizeof(b2)), real(num(e, "loss_corrupted"), b3, sizeof(b3)),
			pct(num(e, "accuracy_corrupted"), b4, sizeof(b4)), num(e, "lr"));
		if (seq)
			fprintf(f, "  %10s", real(num(e, "perplexity"), b1, sizeof(b1)));
		fputc('\n', f);
	}
	fprintf(f, "\n=== before hardening ===\n");
	pcd_summary_print(json_object_get(report, "before"), top, f);
	fprintf(f, "\n=== after hardening ===\n");
	pcd_summary_print(json_object_get(report, "after"), top, f);
}

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : dflt;
}

/* A column of a text table: its head, the row's field, its width (< 0:
 * left-aligned, cut to fit) and how its cell reads the field. */
enum tcol_kind { T_TEXT, T_REAL, T_INT, T_PCT, T_PCT_PAIR, T_REAL_PAIR, T_COUNT, T_YESNO, T_FINAL_PCT };

struct tcol {
	const char *head, *field;
	int width;
	enum tcol_kind kind;
};

/* The cell of column c in row, into buf. */
static const char *tcell(const struct tcol *c, const json_t *row, char *buf, size_t size)
{
	const json_t *v = json_object_get(row, c->field);
	char lo[32], hi[32];

	switch (c->kind) {
	case T_TEXT:
		return str_or(row, c->field, "?");
	case T_REAL:
		return real(num(row, c->field), buf, size);
	case T_INT:
		if (!json_is_number(v))
			return "-";
		snprintf(buf, size, "%.0f", json_number_value(v));
		return buf;
	case T_PCT:
		return pct(num(row, c->field), buf, size);
	case T_PCT_PAIR:
		if (!json_is_number(json_array_get(v, 0)) || !json_is_number(json_array_get(v, 1)))
			snprintf(buf, size, "-");
		else
			snprintf(buf, size, "[%s, %s]", pct(json_number_value(json_array_get(v, 0)), lo, sizeof(lo)),
				 pct(json_number_value(json_array_get(v, 1)), hi, sizeof(hi)));
		return buf;
	case T_REAL_PAIR:
		if (!json_is_number(json_array_get(v, 0)) || !json_is_number(json_array_get(v, 1)))
			snprintf(buf, size, "-");
		else
			snprintf(buf, size, "[%s, %s]", real(json_number_value(json_array_get(v, 0)), lo, sizeof(lo)),
				 real(json_number_value(json_array_get(v, 1)), hi, sizeof(hi)));
		return buf;
	case T_COUNT:
		snprintf(buf, size, "%zu", json_array_size(v));
		return buf;
	case T_YESNO:
		return !json_is_boolean(v) ? "-" : json_is_true(v) ? "yes" : "no";
	case T_FINAL_PCT: {
		/* a search's accuracy after its last flip, its clean one without */
		const json_t *last = json_array_get(v, json_array_size(v) - 1);

		return pct(last ? num(last, "accuracy") : num(json_object_get(row, "clean"), "accuracy"), buf, size);
	}
	}
	return "?";
}

static void text_table(FILE *f, const char *title, const struct tcol *cols, size_t n, const json_t *rows)
{
	const json_t *row;
	char buf[80];
	size_t i;

	fprintf(f, "\n%s\n", title);
	for (size_t c = 0; c < n; c++)
		fprintf(f, "  %*s", cols[c].width, cols[c].head);
	fputc('\n', f);
	json_array_foreach(rows, i, row)
	{
		for (size_t c = 0; c < n; c++)
			fprintf(f, "  %*.*s", cols[c].width, cols[c].width < 0 ? -cols[c].width : 80,
				tcell(&cols[c], row, buf, sizeof(buf)));
		fputc('\n', f);
	}
}

#define N_TCOLS(cols) (sizeof(cols) / sizeof((cols)[0]))

static const struct tcol quantized_tcols[] = {
	{"format", "format", -10, T_TEXT}, {"accuracy", "accuracy", 10, T_PCT}, {"loss", "loss", 10, T_REAL}};
static const struct tcol random_tcols[] = {
	{"format", "format", -10, T_TEXT},	  {"group", "group", -24, T_TEXT},
	{"ber", "ber", 10, T_REAL},		  {"flips", "flips_mean", 10, T_REAL},
	{"accuracy", "accuracy_mean", 10, T_PCT}, {"95% interval", "accuracy_ci95", 22, T_PCT_PAIR},
	{"worst", "accuracy_min", 10, T_PCT}};
static const struct tcol bits_tcols[] = {
	{"format", "format", -10, T_TEXT},	  {"group", "group", -24, T_TEXT}, {"bit", "bit", 4, T_REAL},
	{"field", "field", -9, T_TEXT},		  {"weights", "weights", 8, T_REAL},
	{"accuracy", "accuracy_mean", 10, T_PCT}, {"worst", "accuracy_min", 10, T_PCT}};
static const struct tcol search_tcols[] = {
	{"format", "format", -10, T_TEXT},	     {"group", "group", -24, T_TEXT},
	{"method", "method", -6, T_TEXT},	     {"target", "target_accuracy", 10, T_PCT},
	{"flips", "flips", 8, T_COUNT},		     {"accuracy", "flips", 10, T_FINAL_PCT},
	{"reached", "reached", 10, T_YESNO}};

/* The bit-fault study: each format's clean numbers, the random bit errors,
 * the bit positions and the worst-case searches, each a table when the
 * report has it. */
static void print_faults(const json_t *faults, FILE *f)
{
	const json_t *q = json_object_get(faults, "quantized"), *v;
	const char *name;
	json_t *rows;

	if (!json_is_object(faults))
		return;
	if (json_object_size(q) && (rows = json_array())) {
		json_object_foreach((json_t *)q, name, v)
			json_array_append_new(rows, json_pack("{s:s, s:O?, s:O?}", "format", name, "accuracy",
							      json_object_get(v, "accuracy"), "loss", json_object_get(v, "loss")));
		text_table(f, "bit faults, the model as stored:", quantized_tcols, N_TCOLS(quantized_tcols), rows);
		json_decref(rows);
	}
	if (json_array_size(json_object_get(faults, "random")))
		text_table(f, "random bit errors (each stored bit flips with probability ber):", random_tcols,
			   N_TCOLS(random_tcols), json_object_get(faults, "random"));
	if (json_array_size(json_object_get(faults, "bits")))
		text_table(f, "per bit position (the bit flipped in random weights):", bits_tcols, N_TCOLS(bits_tcols),
			   json_object_get(faults, "bits"));
	if (json_array_size(json_object_get(faults, "search")))
		text_table(f, "worst-case bit search:", search_tcols, N_TCOLS(search_tcols), json_object_get(faults, "search"));
}

static const struct tcol critical_tcols[] = {
	{"group", "group", -24, T_TEXT},	  {"norm", "norm", -5, T_TEXT},
	{"sparsity", "sparsity", 8, T_REAL},	  {"gradient eps", "gradient", 12, T_REAL},
	{"evals", "gradient_evals", 5, T_REAL},	  {"random eps", "random", 12, T_REAL},
	{"evals", "random_evals", 5, T_REAL},	  {"ratio", "ratio", 8, T_REAL}};

/* The critical radii first: the one number per group a reader wants (a
 * radius not reached within the search reads "-"). */
static void print_critical(const json_t *critical, FILE *f)
{
	const json_t *c;
	json_t *rows = json_array();
	char nb[32], title[160];
	size_t i;

	if (!rows || !json_array_size(critical)) {
		json_decref(rows);
		return;
	}
	json_array_foreach(critical, i, c)
	{
		const json_t *g = json_object_get(c, "gradient"), *r = json_object_get(c, "random");
		json_array_append_new(rows, json_pack("{s:s, s:s, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "group",
						      str_or(c, "group", "?"), "norm", pcd_summary_norm(c, nb, sizeof(nb)),
						      "sparsity", json_object_get(c, "sparsity"), "gradient",
						      json_object_get(g, "epsilon"), "gradient_evals",
						      json_object_get(g, "evaluations"), "random", json_object_get(r, "epsilon"),
						      "random_evals", json_object_get(r, "evaluations"), "ratio",
						      json_object_get(c, "ratio")));
	}
	c = json_array_get(critical, 0);
	snprintf(title, sizeof(title),
		 "critical radius (accuracy below clean - %.4g; to %.2g relative; random/gradient = ratio):",
		 num(c, "accuracy_drop"), num(c, "tolerance"));
	text_table(f, title, critical_tcols, N_TCOLS(critical_tcols), rows);
	json_decref(rows);
}

static const struct tcol curvature_tcols[] = {
	{"group", "group", -24, T_TEXT},	     {"parameters", "parameters", 10, T_INT},
	{"top eigenvalues", "eigenvalues", -26, T_TEXT}, {"converged", "converged", 9, T_YESNO},
	{"trace", "trace", 10, T_REAL},		     {"95% interval", "trace_ci95", 22, T_REAL_PAIR},
	{"products", "hvp_count", 8, T_INT}};

/* One group's row of the curvature table: its eigenvalues as one cell. */
static json_t *curvature_row(const char *group, const json_t *c)
{
	const json_t *ev = json_object_get(c, "eigenvalues"), *e;
	char cell[96] = "", b[32];
	size_t i, used = 0;

	json_array_foreach(ev, i, e)
	{
		int k = snprintf(cell + used, sizeof(cell) - used, "%s%s", i ? ", " : "",
				 real(json_number_value(e), b, sizeof(b)));
		if (k < 0 || (size_t)k >= sizeof(cell) - used)
			break;
		used += (size_t)k;
	}
	return json_pack("{s:s, s:O?, s:s, s:O?, s:O?, s:O?, s:O?}", "group", group, "parameters",
			 json_object_get(c, "parameters"), "eigenvalues", cell, "converged",
			 json_object_get(c, "converged"), "trace", json_object_get(c, "trace"), "trace_ci95",
			 json_object_get(c, "trace_ci95"), "hvp_count", json_object_get(c, "hvp_count"));
}

/* The Hessian's top eigenvalues and trace, the model's first. */
static void print_curvature(const json_t *curvature, FILE *f)
{
	const json_t *g;
	const char *name;
	json_t *rows;
	char title[128];

	if (!json_is_object(curvature) || !(rows = json_array()))
		return;
	json_array_append_new(rows, curvature_row("model", curvature));
	json_object_foreach((json_t *)json_object_get(curvature, "groups"), name, g)
		json_array_append_new(rows, curvature_row(name, g));
	snprintf(title, sizeof(title), "curvature (Hessian of the mean loss; trace: Hutchinson, %.0f samples):",
		 num(curvature, "trace_samples"));
	text_table(f, title, curvature_tcols, N_TCOLS(curvature_tcols), rows);
	json_decref(rows);
}

void pcd_summary_print(const json_t *report, int top, FILE *f)
{
	const json_t *clean = json_object_get(report, "clean"), *ds = json_object_get(report, "dataset");
	char b1[32], b2[32];
	int seq = json_object_get(clean, "perplexity") != NULL;

	if (json_is_object(json_object_get(report, "before")) && json_is_object(json_object_get(report, "after"))) {
		print_harden(report, top, f);
		return;
	}
	fprintf(f, "clean: accuracy %s, loss %s", pct(num(clean, "accuracy"), b1, sizeof(b1)),
		real(num(clean, "loss"), b2, sizeof(b2)));
	if (seq)
		fprintf(f, ", perplexity %s", real(num(clean, "perplexity"), b1, sizeof(b1)));
	if (json_is_number(json_object_get(clean, "non_finite")))
		fprintf(f, " (not finite for %.0f %s)", num(clean, "non_finite"), seq ? "tokens" : "samples");
	if (json_is_number(json_object_get(ds, "samples")) && json_is_number(json_object_get(ds, "tokens")))
		fprintf(f, " (%.0f samples, %.0f labelled tokens)", num(ds, "samples"), num(ds, "tokens"));
	else if (json_is_number(json_object_get(ds, "samples")))
		fprintf(f, " (%.0f samples)", num(ds, "samples"));
	fputc('\n', f);
	print_critical(json_object_get(report, "critical"), f);
	print_model_tables(json_object_get(report, "results"), seq, f);
	print_ranking(json_object_get(report, "ranking"), top, f);
	print_faults(json_object_get(report, "faults"), f);
	print_curvature(json_object_get(report, "curvature"), f);
}

const char *pcd_progress_unit(const char *phase)
{
	return phase && !strncmp(phase, "training", 8) ? "steps" : "passes";
}

void pcd_progress_draw(struct pcd_progress_bar *b, const char *phase, long long done, long long total,
		       const char *unit, double elapsed, double remaining, int final, FILE *f)
{
	double t = pc_sys_seconds(), frac = total > 0 ? (double)done / (double)total : 0;
	char bar[32];
	int i, w = (int)sizeof(bar) - 1, filled;

	/* a terminal redraws five times a second; a log gets a line every 2 s */
	if (!final && t - b->last_draw < (b->tty ? 0.2 : 2.0))
		return;
	b->last_draw = t;
	if (frac > 1)
		frac = 1;
	if (b->tty) {
		filled = (int)(frac * w + 0.5);
		for (i = 0; i < w; i++)
			bar[i] = i < filled ? '#' : '.';
		bar[w] = '\0';
		fprintf(f, "\r\033[K[%s] %3.0f%% %s, %lld/%lld %s, %.1f s", bar, 100 * frac, phase ? phase : "", done,
			total, unit, elapsed);
	} else {
		fprintf(f, "[%s] %lld/%lld %s (%.0f%%), %.1f s elapsed", phase ? phase : "", done, total, unit,
			100 * frac, elapsed);
	}
	if (remaining >= 0 && !final)
		fprintf(f, ", ~%.0f s left", ceil(remaining));
	fputs(b->tty && !final ? "" : "\n", f);
	fflush(f);
}

struct op_row {
	const char *op;
	double forward, backward;
	long long fcalls, bcalls;
};

static int by_time(const void *a, const void *b)
{
	const struct op_row *x = a, *y = b;
	double tx = x->forward + x->backward, ty = y->forward + y->backward;

	return tx < ty ? 1 : tx > ty ? -1 : strcmp(x->op, y->op);
}

void pcd_profile_print(const json_t *ops, FILE *f)
{
	size_t n = json_object_size(ops), i = 0;
	struct op_row *rows = calloc(n + 1, sizeof(*rows));
	const char *name;
	const json_t *v;
	double total = 0;

	if (!rows || !n) {
		free(rows);
		return;
	}
	json_object_foreach((json_t *)ops, name, v)
	{
		rows[i].op = name;
		rows[i].forward = num(v, "forward");
		rows[i].backward = num(v, "backward");
		rows[i].fcalls = (long long)num(v, "forward_calls");
		rows[i].bcalls = (long long)num(v, "backward_calls");
		total += rows[i].forward + rows[i].backward;
		i++;
	}
	qsort(rows, n, sizeof(*rows), by_time);
	fprintf(f, "\nwhere the time went (seconds summed over the worker threads):\n");
	fprintf(f, "  %-22s %10s %10s %10s %10s %7s\n", "op", "forward_s", "backward_s", "fwd calls", "bwd calls",
		"share");
	for (i = 0; i < n; i++)
		fprintf(f, "  %-22s %10.3f %10.3f %10lld %10lld %6.1f%%\n", rows[i].op, rows[i].forward, rows[i].backward,
			rows[i].fcalls, rows[i].bcalls,
			total > 0 ? 100.0 * (rows[i].forward + rows[i].backward) / total : 0.0);
	fprintf(f, "  %-22s %21.3f\n", "all ops", total);
	free(rows);
}
