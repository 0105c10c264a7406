/* compare: see compare.h. A section is aligned by one generic pass: a row's
 * key is the text of its key fields, and each output column holds the
 * studies' values at one path of the row, so a new section is a table row
 * here, not new code. */
#include "compare.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "summary.h"

struct study {
	const json_t *r;    /* the study: clean, results, ranking, faults */
	const json_t *spec; /* its spec (a harden report's for before and after) */
	char label[192];
	const char *role; /* "study", "before", "after" */
};

/* One output column: name, and the path of its value in a row ("a.b");
 * "#flips" is the length of the array flips. */
struct col {
	const char *name, *path;
};

struct section {
	const char *rows;	  /* path of the rows in a study */
	const char *out;	  /* path of the aligned rows in the comparison */
	const char *keys[6];	  /* the fields that say which setting a row is */
	const struct col cols[5]; /* the values compared */
};

static const struct section sections[] = {
    {"results",
     "results",
     {"group", "norm", "epsilon", "sparsity", "steps", NULL},
     {{"gradient_accuracy", "gradient.accuracy"},
      {"gradient_loss_change", "gradient.loss_change"},
      {"random_accuracy_mean", "random.accuracy_mean"},
      {NULL, NULL}}},
    {"ranking",
     "ranking",
     {"group", "norm", "epsilon", "sparsity", NULL},
     {{"rank", "rank"}, {"loss_change", "loss_change"}, {NULL, NULL}}},
    {"faults.random",
     "faults_random",
     {"format", "ber", "group", NULL},
     {{"accuracy_mean", "accuracy_mean"}, {"accuracy_min", "accuracy_min"}, {"flips_mean", "flips_mean"},
      {NULL, NULL}}},
    {"faults.search",
     "faults_search",
     {"format", "group", "method", NULL},
     {{"flips", "#flips"}, {"reached", "reached"}, {NULL, NULL}}},
};

#define N_SECTIONS (sizeof(sections) / sizeof(sections[0]))

static int nomem(struct pc_error *err)
{
	return pc_error_set(err, PC_ERR_NOMEM, "compare", "out of memory");
}

/* o at a dotted path ("faults.random"), NULL when any step is missing. */
static const json_t *at(const json_t *o, const char *path)
{
	char step[64];

	while (o && *path) {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(step))
			return NULL;
		memcpy(step, path, n);
		step[n] = '\0';
		o = json_object_get(o, step);
		path += n + (path[n] == '.');
	}
	return o;
}

/* The value a column takes in a row: a new reference, null when missing. */
static json_t *col_value(const json_t *row, const char *path)
{
	const json_t *v;

	if (path[0] == '#') {
		v = at(row, path + 1);
		return json_is_array(v) ? json_integer((json_int_t)json_array_size(v)) : json_null();
	}
	v = at(row, path);
	return v ? json_incref((json_t *)v) : json_null();
}

/* The text of a row's key fields; 0 when it did not fit. */
static int row_key(const json_t *row, const char *const *keys, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; keys[i]; i++) {
		const json_t *v = json_object_get(row, keys[i]);
		int n;

		if (json_is_string(v))
			n = snprintf(buf + used, size - used, "%s\x1f", json_string_value(v));
		else if (json_is_number(v))
			n = snprintf(buf + used, size - used, "%.17g\x1f", json_number_value(v));
		else
			n = snprintf(buf + used, size - used, "-\x1f");
		if (n < 0 || (size_t)n >= size - used)
			return 0;
		used += (size_t)n;
	}
	return 1;
}

/* The first row of rows whose key is key, or NULL. */
static const json_t *find_row(const json_t *rows, const char *const *keys, const char *key)
{
	char k[512];
	const json_t *row;
	size_t i;

	json_array_foreach(rows, i, row)
	{
		if (row_key(row, keys, k, sizeof(k)) && !strcmp(k, key))
			return row;
	}
	return NULL;
}

/* Aligns one section into a new array; unmatched[k] counts study k's rows
 * that some other study lacks. */
static json_t *align(const struct section *sec, const struct study *st, int ns, json_int_t *unmatched)
{
	const json_t *first = at(st[0].r, sec->rows), *row;
	json_t *out = json_array();
	char key[512];
	size_t i;

	if (!out)
		return NULL;
	for (int s = 0; s < ns; s++)
		json_array_foreach(at(st[s].r, sec->rows), i, row)
		{
			int everywhere = row_key(row, sec->keys, key, sizeof(key));

			for (int o = 0; everywhere && o < ns; o++)
				everywhere = find_row(at(st[o].r, sec->rows), sec->keys, key) != NULL;
			unmatched[s] += !everywhere;
		}
	json_array_foreach(first, i, row)
	{
		const json_t *rows[PCD_COMPARE_MAX];
		json_t *o;
		int s;

		if (!row_key(row, sec->keys, key, sizeof(key)))
			continue;
		/* a setting twice in one study (two blocks) is compared once */
		if (find_row(first, sec->keys, key) != row)
			continue;
		for (s = 0; s < ns && (rows[s] = find_row(at(st[s].r, sec->rows), sec->keys, key)); s++)
			;
		if (s < ns)
			continue;
		if (!(o = json_object()) || json_array_append_new(out, o))
			goto fail;
		for (int f = 0; sec->keys[f]; f++) {
			const json_t *v = json_object_get(row, sec->keys[f]);

			if (v && json_object_set(o, sec->keys[f], (json_t *)v))
				goto fail;
		}
		for (int c = 0; sec->cols[c].name; c++) {
			json_t *vals = json_array();

			if (!vals || json_object_set_new(o, sec->cols[c].name, vals))
				goto fail;
			for (s = 0; s < ns; s++)
				if (json_array_append_new(vals, col_value(rows[s], sec->cols[c].path)))
					goto fail;
		}
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

/* Every leaf of spec under prefix, as pointer -> value, into leaves (in the
 * spec's order); an array is one leaf. */
static int flatten(const json_t *spec, const char *prefix, json_t *leaves)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)spec, k, v)
	{
		char ptr[512];
		size_t used = (size_t)snprintf(ptr, sizeof(ptr), "%s/", prefix);

		/* JSON pointer escapes: ~ as ~0, / as ~1 */
		for (const char *c = k; *c && used + 3 < sizeof(ptr); c++)
			used += (size_t)snprintf(ptr + used, sizeof(ptr) - used, "%s",
						 *c == '~' ? "~0" : *c == '/' ? "~1" : (char[2]){*c, '\0'});
		if (json_is_object(v)) {
			if (flatten(v, ptr, leaves))
				return -1;
		} else if (!json_object_get(leaves, ptr) && json_object_set(leaves, ptr, v)) {
			return -1;
		}
	}
	return 0;
}

static json_t *differences(const struct study *st, int ns)
{
	json_t *leaves[PCD_COMPARE_MAX] = {0}, *all = json_object(), *out = json_array(), *v;
	const char *ptr;
	int s;

	if (!all || !out)
		goto fail;
	for (s = 0; s < ns; s++)
		if (!(leaves[s] = json_object()) || flatten(st[s].spec, "", leaves[s]) || flatten(st[s].spec, "", all))
			goto fail;
	json_object_foreach(all, ptr, v)
	{
		json_t *vals = json_array(), *row;
		int same = 1;

		if (!vals)
			goto fail;
		for (s = 0; s < ns; s++) {
			const json_t *x = json_object_get(leaves[s], ptr), *x0 = json_object_get(leaves[0], ptr);

			same &= (x && x0 && json_equal(x, x0)) || (!x && !x0);
			if (json_array_append_new(vals, x ? json_incref((json_t *)x) : json_null())) {
				json_decref(vals);
				goto fail;
			}
		}
		if (same) {
			json_decref(vals);
			continue;
		}
		if (!(row = json_pack("{s:s, s:o}", "pointer", ptr, "values", vals)) || json_array_append_new(out, row))
			goto fail;
	}
	for (s = 0; s < ns; s++)
		json_decref(leaves[s]);
	json_decref(all);
	return out;
fail:
	for (s = 0; s < ns; s++)
		json_decref(leaves[s]);
	json_decref(all);
	json_decref(out);
	return NULL;
}

/* Each format's clean accuracy, for the formats every study has. */
static json_t *quantized(const struct study *st, int ns)
{
	const json_t *q0 = at(st[0].r, "faults.quantized"), *v;
	json_t *out = json_object();
	const char *fmt;

	json_object_foreach((json_t *)q0, fmt, v)
	{
		json_t *vals = json_array();
		int s;

		if (!out || !vals || json_object_set_new(out, fmt, json_pack("{s:o}", "accuracy", vals)))
			goto fail;
		for (s = 0; s < ns; s++) {
			const json_t *qs = json_object_get(at(st[s].r, "faults.quantized"), fmt);

			if (!qs)
				break;
			if (json_array_append_new(vals, col_value(qs, "accuracy")))
				goto fail;
		}
		if (s < ns)
			json_object_del(out, fmt);
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

static int is_study(const json_t *r)
{
	return json_is_object(json_object_get(r, "clean")) && json_is_array(json_object_get(r, "results"));
}

static int is_harden(const json_t *r)
{
	return is_study(json_object_get(r, "before")) && is_study(json_object_get(r, "after"));
}

static int studies_of(json_t *const *reports, const char *const *labels, int n, struct study *st, int *ns,
		      struct pc_error *err)
{
	char where[32];

	if (n < 1 || n > PCD_COMPARE_MAX)
		return pc_error_set(err, PC_ERR_INVALID, "reports", "compares 2 to %d reports (or one harden report), not %d",
				    PCD_COMPARE_MAX, n);
	*ns = 0;
	for (int i = 0; i < n; i++) {
		const json_t *r = reports[i];

		snprintf(where, sizeof(where), "reports[%d]", i);
		if (!json_is_object(r) || (!is_study(r) && !is_harden(r)))
			return pc_error_set(err, PC_ERR_INVALID, where, "%s is not the report of a finished study", labels[i]);
		if (is_harden(r) && n == 1) {
			st[0] = (struct study){json_object_get(r, "before"), json_object_get(r, "spec"), "", "before"};
			st[1] = (struct study){json_object_get(r, "after"), json_object_get(r, "spec"), "", "after"};
			snprintf(st[0].label, sizeof(st[0].label), "%s before", labels[i]);
			snprintf(st[1].label, sizeof(st[1].label), "%s after", labels[i]);
			*ns = 2;
			return 0;
		}
		if (n == 1)
			return pc_error_set(err, PC_ERR_INVALID, "reports",
					    "one report is compared only when it is a harden report (before and after)");
		st[*ns] = (struct study){is_harden(r) ? json_object_get(r, "after") : r, json_object_get(r, "spec"), "",
					 is_harden(r) ? "after" : "study"};
		snprintf(st[*ns].label, sizeof(st[0].label), is_harden(r) ? "%s (hardened)" : "%s", labels[i]);
		(*ns)++;
	}
	return 0;
}

int pcd_compare(json_t *const *reports, const char *const *labels, int n, json_t **out, struct pc_error *err)
{
	struct study st[PCD_COMPARE_MAX + 1];
	json_int_t unmatched[PCD_COMPARE_MAX + 1] = {0};
	json_t *cmp = NULL, *list, *um;
	int ns = 0, rc;

	*out = NULL;
	if ((rc = studies_of(reports, labels, n, st, &ns, err)))
		return rc;
	if (!(cmp = json_object()) || !(list = json_array()) || json_object_set_new(cmp, "studies", list))
		goto fail;
	for (int s = 0; s < ns; s++) {
		const json_t *clean = json_object_get(st[s].r, "clean");

		if (json_array_append_new(list,
					  json_pack("{s:s, s:s, s:{s:o, s:o}, s:o, s:o}", "label", st[s].label, "role",
						    st[s].role, "clean", "loss", col_value(clean, "loss"), "accuracy",
						    col_value(clean, "accuracy"), "parameters",
						    col_value(st[s].r, "model.parameters"), "samples",
						    col_value(st[s].r, "dataset.samples"))))
			goto fail;
	}
	if (json_object_set_new(cmp, "differences", differences(st, ns)))
		goto fail;
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (json_object_set_new(cmp, sections[i].out, align(&sections[i], st, ns, unmatched)))
			goto fail;
	if (json_object_set_new(cmp, "faults_quantized", quantized(st, ns)) || !(um = json_array()) ||
	    json_object_set_new(cmp, "unmatched", um))
		goto fail;
	for (int s = 0; s < ns; s++)
		if (json_array_append_new(um, json_integer(unmatched[s])))
			goto fail;
	*out = cmp;
	return 0;
fail:
	json_decref(cmp);
	return nomem(err);
}

/* --- text ------------------------------------------------------------------ */

static const char *str_of(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "?";
}

static const char *cell(const json_t *v, int percent, char *buf, size_t size)
{
	if (json_is_boolean(v))
		snprintf(buf, size, "%s", json_is_true(v) ? "yes" : "no");
	else if (!json_is_number(v))
		snprintf(buf, size, "-");
	else if (percent)
		snprintf(buf, size, "%.2f%%", 100 * json_number_value(v));
	else
		snprintf(buf, size, "%.4g", json_number_value(v));
	return buf;
}

/* A row's values of column name, one cell per study. */
static void cells(const json_t *row, const char *name, int percent, FILE *f)
{
	const json_t *vals = json_object_get(row, name), *v;
	char b[32];
	size_t i;

	json_array_foreach(vals, i, v)
		fprintf(f, "  %10s", cell(v, percent, b, sizeof(b)));
}

static void heads(const char *what, int ns, FILE *f)
{
	char b[32];

	for (int s = 0; s < ns; s++) {
		snprintf(b, sizeof(b), "%s [%d]", what, s + 1);
		fprintf(f, "  %10s", b);
	}
}

void pcd_compare_print(const json_t *cmp, FILE *f)
{
	const json_t *studies = json_object_get(cmp, "studies"), *row, *v;
	char nb[32], b1[32], b2[32], last[160] = "";
	int ns = (int)json_array_size(studies);
	size_t i, k;

	fprintf(f, "studies:\n");
	json_array_foreach(studies, i, row)
		fprintf(f, "  [%zu] %s: clean accuracy %s, loss %s\n", i + 1,
			json_string_value(json_object_get(row, "label")),
			cell(at(row, "clean.accuracy"), 1, b1, sizeof(b1)), cell(at(row, "clean.loss"), 0, b2, sizeof(b2)));
	if (json_array_size(json_object_get(cmp, "differences"))) {
		fprintf(f, "\nwhat differs:\n");
		json_array_foreach(json_object_get(cmp, "differences"), i, row)
		{
			fprintf(f, "  %s:", json_string_value(json_object_get(row, "pointer")));
			json_array_foreach(json_object_get(row, "values"), k, v)
			{
				char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);

				fprintf(f, "%s %s", k ? " |" : "", t ? t : "?");
				free(t);
			}
			fputc('\n', f);
		}
	}
	json_array_foreach(json_object_get(cmp, "results"), i, row)
	{
		const char *norm = pcd_summary_norm(row, nb, sizeof(nb));
		double steps = json_number_value(json_object_get(row, "steps"));
		char head[160];

		if (strcmp(str_of(row, "group"), "model"))
			continue;
		snprintf(head, sizeof(head), "%s|%.17g|%.17g", norm, json_number_value(json_object_get(row, "sparsity")),
			 steps);
		if (strcmp(head, last)) {
			snprintf(last, sizeof(last), "%s", head);
			fprintf(f, "\nthe whole model, %s corruption, sparsity %s, %s step%s:\n  %10s", norm,
				cell(json_object_get(row, "sparsity"), 0, b1, sizeof(b1)),
				cell(json_object_get(row, "steps"), 0, b2, sizeof(b2)), steps == 1 ? "" : "s", "epsilon");
			heads("gradient", ns, f);
			heads("random", ns, f);
			fputc('\n', f);
		}
		fprintf(f, "  %10s", cell(json_object_get(row, "epsilon"), 0, b1, sizeof(b1)));
		cells(row, "gradient_accuracy", 1, f);
		cells(row, "random_accuracy_mean", 1, f);
		fputc('\n', f);
	}
	if (json_object_size(json_object_get(cmp, "faults_quantized"))) {
		const char *fmt;

		fprintf(f, "\nbit faults, the model as stored:\n  %-10s", "format");
		heads("accuracy", ns, f);
		fputc('\n', f);
		json_object_foreach(json_object_get(cmp, "faults_quantized"), fmt, v)
		{
			fprintf(f, "  %-10s", fmt);
			cells(v, "accuracy", 1, f);
			fputc('\n', f);
		}
	}
	if (json_array_size(json_object_get(cmp, "faults_random"))) {
		fprintf(f, "\nrandom bit errors:\n  %-10s  %-24s  %10s", "format", "group", "ber");
		heads("accuracy", ns, f);
		fputc('\n', f);
		json_array_foreach(json_object_get(cmp, "faults_random"), i, row)
		{
			fprintf(f, "  %-10s  %-24.24s  %10s", str_of(row, "format"),
				str_of(row, "group"),
				cell(json_object_get(row, "ber"), 0, b1, sizeof(b1)));
			cells(row, "accuracy_mean", 1, f);
			fputc('\n', f);
		}
	}
	if (json_array_size(json_object_get(cmp, "faults_search"))) {
		fprintf(f, "\nworst-case bit search:\n  %-10s  %-24s  %-6s", "format", "group", "method");
		heads("flips", ns, f);
		heads("reached", ns, f);
		fputc('\n', f);
		json_array_foreach(json_object_get(cmp, "faults_search"), i, row)
		{
			fprintf(f, "  %-10s  %-24.24s  %-6s", str_of(row, "format"),
				str_of(row, "group"),
				str_of(row, "method"));
			cells(row, "flips", 0, f);
			cells(row, "reached", 0, f);
			fputc('\n', f);
		}
	}
	json_array_foreach(json_object_get(cmp, "unmatched"), i, v)
	{
		if (json_integer_value(v))
			fprintf(f, "\n[%zu] has %lld rows that another study lacks (not compared)", i + 1,
				(long long)json_integer_value(v));
	}
	fputc('\n', f);
}
