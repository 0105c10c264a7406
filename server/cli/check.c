/* check: the CI gate over a report (check.h).
 *
 * Each metric is a row: its name, how many positional arguments it takes,
 * which key=value options it accepts, and a lookup that finds the number in
 * the report. A harden report is checked on its "after" study (the model a
 * user ships); the "before" study is there for comparison only. */
#include "check.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "markup.h"

#define CHECK_MAX_ARGS 8
#define CHECK_MAX_REQS 64
#define EXIT_USAGE 2

struct args {
	int n;
	char pos[CHECK_MAX_ARGS][64];
	/* options, with their defaults filled in before lookup */
	char group[64];
	char method[16];
	long long sparsity;
	long long steps;
};

/* Fills *v with the metric's value and returns 1, or returns 0 with why
 * set when the report does not hold it. Argument errors are PC_ERR_INVALID
 * (returned as -code). */
typedef int (*lookup_fn)(const json_t *study, const struct args *a, double *v, char *why, size_t why_size,
			 struct pc_error *err);

struct metric {
	const char *name;
	int min_args, max_args;
	const char *options; /* accepted option keys, comma-separated */
	lookup_fn lookup;
	const char *usage;
};

static int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!*s)
		return -1;
	v = strtod(s, &end);
	if (*end || !isfinite(v))
		return -1;
	*out = v;
	return 0;
}

static int same_number(double a, double b)
{
	return fabs(a - b) <= 1e-9 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

static int is_kind(const char *k)
{
	return strcmp(k, "gradient") == 0 || strcmp(k, "random") == 0;
}

static double num(const json_t *o, const char *key, int *ok)
{
	const json_t *v = json_object_get(o, key);

	if (!json_is_number(v)) {
		*ok = 0;
		return NAN;
	}
	return json_number_value(v);
}

/* The result of (group, norm, epsilon, sparsity, steps) in results[]. */
static const json_t *find_result(const json_t *study, const struct args *a, double eps)
{
	const json_t *r;
	size_t i;

	json_array_foreach(json_object_get(study, "results"), i, r)
	{
		int ok = 1;
		const char *g = json_string_value(json_object_get(r, "group"));
		const char *nm = json_string_value(json_object_get(r, "norm"));
		double e = num(r, "epsilon", &ok), sp = num(r, "sparsity", &ok), st = num(r, "steps", &ok);

		if (ok && g && nm && strcmp(g, a->group) == 0 && strcmp(nm, a->pos[0]) == 0 && same_number(e, eps) &&
		    sp == (double)a->sparsity && st == (double)a->steps)
			return r;
	}
	return NULL;
}

/* accuracy / loss / loss_change (norm, epsilon, gradient|random): the
 * random side is the mean over the trials. */
static int result_field(const json_t *study, const struct args *a, const char *grad_key, const char *rand_key,
			double *v, char *why, size_t why_size, struct pc_error *err)
{
	double eps;
	const json_t *r, *side;
	int ok = 1;

	if (parse_double(a->pos[1], &eps) || eps <= 0)
		return -pc_error_set(err, PC_ERR_INVALID, "epsilon", "'%s' is not a positive number", a->pos[1]);
	if (!is_kind(a->pos[2]))
		return -pc_error_set(err, PC_ERR_INVALID, "kind", "'%s' is neither gradient nor random", a->pos[2]);
	if (!(r = find_result(study, a, eps))) {
		snprintf(why, why_size, "no result for group %s, %s, epsilon %s, sparsity %lld, steps %lld", a->group,
			 a->pos[0], a->pos[1], a->sparsity, a->steps);
		return 0;
	}
	side = json_object_get(r, a->pos[2]);
	*v = num(side, strcmp(a->pos[2], "gradient") == 0 ? grad_key : rand_key, &ok);
	if (!ok) {
		/* a loss that overflowed is null (the report counts it as
		 * nonfinite): the worst value, not a missing one */
		if (json_is_null(json_object_get(side, strcmp(a->pos[2], "gradient") == 0 ? grad_key : rand_key))) {
			*v = strstr(grad_key, "accuracy") ? 0.0 : INFINITY;
			return 1;
		}
		snprintf(why, why_size, "the %s side of that result has no %s", a->pos[2],
			 strcmp(a->pos[2], "gradient") == 0 ? grad_key : rand_key);
		return 0;
	}
	return 1;
}

static int m_accuracy(const json_t *s, const struct args *a, double *v, char *why, size_t n, struct pc_error *err)
{
	return result_field(s, a, "accuracy", "accuracy_mean", v, why, n, err);
}

static int m_loss(const json_t *s, const struct args *a, double *v, char *why, size_t n, struct pc_error *err)
{
	return result_field(s, a, "loss", "loss_mean", v, why, n, err);
}

static int m_loss_change(const json_t *s, const struct args *a, double *v, char *why, size_t n,
			 struct pc_error *err)
{
	return result_field(s, a, "loss_change", "loss_change_mean", v, why, n, err);
}

static int clean_field(const json_t *s, const char *key, double *v, char *why, size_t n)
{
	int ok = 1;

	*v = num(json_object_get(s, "clean"), key, &ok);
	if (!ok)
		snprintf(why, n, "the report has no clean.%s", key);
	return ok;
}

static int m_clean_accuracy(const json_t *s, const struct args *a, double *v, char *why, size_t n,
			    struct pc_error *err)
{
	(void)a, (void)err;
	return clean_field(s, "accuracy", v, why, n);
}

static int m_clean_loss(const json_t *s, const struct args *a, double *v, char *why, size_t n, struct pc_error *err)
{
	(void)a, (void)err;
	return clean_field(s, "loss", v, why, n);
}

/* critical(norm [, gradient|random]): the critical radius of that side. An
 * entry whose side found no radius (accuracy never fell by the drop within
 * the search) holds more than any bound: +inf. */
static int m_critical(const json_t *s, const struct args *a, double *v, char *why, size_t n, struct pc_error *err)
{
	const char *kind = a->n > 1 ? a->pos[1] : "gradient";
	const json_t *c;
	size_t i;

	if (!is_kind(kind))
		return -pc_error_set(err, PC_ERR_INVALID, "kind", "'%s' is neither gradient nor random", kind);
	json_array_foreach(json_object_get(s, "critical"), i, c)
	{
		const char *g = json_string_value(json_object_get(c, "group"));
		const char *nm = json_string_value(json_object_get(c, "norm"));
		const json_t *side = json_object_get(c, kind), *e;
		int ok = 1;

		if (!g || !nm || strcmp(g, a->group) || strcmp(nm, a->pos[0]) ||
		    num(c, "sparsity", &ok) != (double)a->sparsity || !ok)
			continue;
		e = json_object_get(side, "epsilon");
		if (json_is_number(e)) {
			*v = json_number_value(e);
			return 1;
		}
		if (json_is_object(side) && (!e || json_is_null(e))) {
			*v = INFINITY;
			return 1;
		}
	}
	snprintf(why, n, "no critical radius for group %s, %s, sparsity %lld (the spec needs \"critical\")", a->group,
		 a->pos[0], a->sparsity);
	return 0;
}

/* flips(format): the committed flips of the bit search that reached its
 * target; a search that did not reach it took more than max_flips: +inf. */
static int m_flips(const json_t *s, const struct args *a, double *v, char *why, size_t n, struct pc_error *err)
{
	const json_t *e;
	size_t i;

	(void)err;
	json_array_foreach(json_object_get(json_object_get(s, "faults"), "search"), i, e)
	{
		const char *f = json_string_value(json_object_get(e, "format"));
		const char *g = json_string_value(json_object_get(e, "group"));
		const char *m = json_string_value(json_object_get(e, "method"));

		if (!f || strcmp(f, a->pos[0]) || (g && strcmp(g, a->group)) || (m && strcmp(m, a->method)))
			continue;
		*v = json_is_true(json_object_get(e, "reached")) ? (double)json_array_size(json_object_get(e, "flips"))
								  : INFINITY;
		return 1;
	}
	snprintf(why, n, "no %s bit search on %s in group %s (the spec needs \"faults\".\"search\")", a->method,
		 a->pos[0], a->group);
	return 0;
}

/* ber_accuracy(format, ber): the mean accuracy of the random bit errors. */
static int m_ber_accuracy(const json_t *s, const struct args *a, double *v, char *why, size_t n,
			  struct pc_error *err)
{
	double ber;
	const json_t *e;
	size_t i;

	if (parse_double(a->pos[1], &ber) || ber <= 0 || ber >= 1)
		return -pc_error_set(err, PC_ERR_INVALID, "ber", "'%s' is not a rate in (0, 1)", a->pos[1]);
	json_array_foreach(json_object_get(json_object_get(s, "faults"), "random"), i, e)
	{
		const char *f = json_string_value(json_object_get(e, "format"));
		const char *g = json_string_value(json_object_get(e, "group"));
		int ok = 1;
		double b = num(e, "ber", &ok);

		if (!ok || !f || strcmp(f, a->pos[0]) || (g && strcmp(g, a->group)) || !same_number(b, ber))
			continue;
		*v = num(e, "accuracy_mean", &ok);
		if (ok)
			return 1;
	}
	snprintf(why, n, "no random bit errors on %s at ber %s in group %s", a->pos[0], a->pos[1], a->group);
	return 0;
}

/* The curvature numbers of a group: the report's curvature object for
 * "model", its groups' entry otherwise; NULL with why set. */
static const json_t *curvature_of(const json_t *s, const char *group, char *why, size_t n)
{
	const json_t *cv = json_object_get(s, "curvature");
	const json_t *g = !cv || !strcmp(group, "model") ? cv : json_object_get(json_object_get(cv, "groups"), group);

	if (!cv)
		snprintf(why, n, "the report has no curvature (the spec needs \"curvature\")");
	else if (!g)
		snprintf(why, n, "no curvature for group %s (the spec's curvature.groups lists its kind)", group);
	return g;
}

/* eigenvalue([K]): the K-th largest Hessian eigenvalue (default 1). */
static int m_eigenvalue(const json_t *s, const struct args *a, double *v, char *why, size_t n,
			struct pc_error *err)
{
	const json_t *g = curvature_of(s, a->group, why, n), *e;
	double k = 1;

	if (a->n > 0 && (parse_double(a->pos[0], &k) || k < 1 || k > 1000 || k != (long long)k))
		return -pc_error_set(err, PC_ERR_INVALID, "k", "'%s' is not an eigenvalue's rank (1, 2, ...)",
				     a->pos[0]);
	if (!g)
		return 0;
	e = json_array_get(json_object_get(g, "eigenvalues"), (size_t)k - 1);
	if (!json_is_number(e)) {
		snprintf(why, n, "group %s has %zu eigenvalues, not %lld (curvature.eigenvalues)", a->group,
			 json_array_size(json_object_get(g, "eigenvalues")), (long long)k);
		return 0;
	}
	*v = json_number_value(e);
	return 1;
}

/* trace(): Hutchinson's estimate of the Hessian's trace. */
static int m_trace(const json_t *s, const struct args *a, double *v, char *why, size_t n, struct pc_error *err)
{
	const json_t *g = curvature_of(s, a->group, why, n);

	(void)err;
	if (!g)
		return 0;
	if (!json_is_number(json_object_get(g, "trace"))) {
		snprintf(why, n, "group %s has no trace (curvature.trace_samples is 0)", a->group);
		return 0;
	}
	*v = json_number_value(json_object_get(g, "trace"));
	return 1;
}

static const struct metric metrics[] = {
	{"accuracy", 3, 3, "group,sparsity,steps", m_accuracy, "accuracy(NORM, EPSILON, gradient|random)"},
	{"loss", 3, 3, "group,sparsity,steps", m_loss, "loss(NORM, EPSILON, gradient|random)"},
	{"loss_change", 3, 3, "group,sparsity,steps", m_loss_change, "loss_change(NORM, EPSILON, gradient|random)"},
	{"clean_accuracy", 0, 0, "", m_clean_accuracy, "clean_accuracy()"},
	{"clean_loss", 0, 0, "", m_clean_loss, "clean_loss()"},
	{"critical", 1, 2, "group,sparsity", m_critical, "critical(NORM[, gradient|random])"},
	{"flips", 1, 1, "group,method", m_flips, "flips(FORMAT)"},
	{"ber_accuracy", 2, 2, "group", m_ber_accuracy, "ber_accuracy(FORMAT, BER)"},
	{"eigenvalue", 0, 1, "group", m_eigenvalue, "eigenvalue([K])"},
	{"trace", 0, 0, "group", m_trace, "trace()"},
};

static const struct metric *find_metric(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
		if (strlen(metrics[i].name) == len && strncmp(metrics[i].name, name, len) == 0)
			return &metrics[i];
	return NULL;
}

static const char *skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static int option_allowed(const struct metric *m, const char *key)
{
	size_t k = strlen(key);

	for (const char *o = m->options; *o;) {
		const char *c = strchr(o, ',');
		size_t n = c ? (size_t)(c - o) : strlen(o);

		if (n == k && strncmp(o, key, n) == 0)
			return 1;
		o += n + (c != NULL);
	}
	return 0;
}

/* One argument "value" or "key=value", trimmed, into a. */
static int add_arg(const struct metric *m, const char *s, size_t len, struct args *a, struct pc_error *err)
{
	char buf[64], *eq, *end;

	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return pc_error_set(err, PC_ERR_INVALID, m->name, "an argument is empty or longer than 63 bytes");
	memcpy(buf, s, len);
	buf[len] = 0;
	if (!(eq = strchr(buf, '='))) {
		if (a->n >= m->max_args)
			return pc_error_set(err, PC_ERR_INVALID, m->name, "takes at most %d arguments: %s", m->max_args,
					    m->usage);
		snprintf(a->pos[a->n++], sizeof(a->pos[0]), "%s", buf);
		return PC_OK;
	}
	*eq++ = 0;
	if (!option_allowed(m, buf))
		return pc_error_set(err, PC_ERR_INVALID, m->name, "has no option '%s'%s%s", buf,
				    m->options[0] ? "; it takes " : "", m->options);
	if (strcmp(buf, "group") == 0)
		snprintf(a->group, sizeof(a->group), "%s", eq);
	else if (strcmp(buf, "method") == 0) {
		if (strcmp(eq, "best") && strcmp(eq, "bfa"))
			return pc_error_set(err, PC_ERR_INVALID, m->name, "method '%s' is neither best nor bfa", eq);
		snprintf(a->method, sizeof(a->method), "%s", eq);
	} else {
		long long v = strtoll(eq, &end, 10);

		if (!*eq || *end || v < 0)
			return pc_error_set(err, PC_ERR_INVALID, m->name, "%s '%s' is not a non-negative integer", buf,
					    eq);
		if (strcmp(buf, "sparsity") == 0)
			a->sparsity = v;
		else
			a->steps = v;
	}
	return PC_OK;
}

enum op { OP_GE, OP_GT, OP_LE, OP_LT, OP_EQ };

static const struct {
	const char *text;
	enum op op;
} ops[] = {{">=", OP_GE}, {"<=", OP_LE}, {"==", OP_EQ}, {">", OP_GT}, {"<", OP_LT}};

static int holds(enum op op, double v, double bound)
{
	switch (op) {
	case OP_GE:
		return v >= bound;
	case OP_GT:
		return v > bound;
	case OP_LE:
		return v <= bound;
	case OP_LT:
		return v < bound;
	case OP_EQ:
		return same_number(v, bound);
	}
	return 0;
}

int pcd_check_eval(const json_t *report, const char *expr, struct pcd_check *out, struct pc_error *err)
{
	const struct metric *m;
	const char *s = skip_space(expr), *name = s, *close;
	struct args a;
	const json_t *study = report;
	double bound;
	size_t oi;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&a, 0, sizeof(a));
	snprintf(a.group, sizeof(a.group), "model");
	snprintf(a.method, sizeof(a.method), "best");
	a.steps = 1;
	snprintf(out->text, sizeof(out->text), "%s", expr);
	while (*s && *s != '(' && *s != ' ')
		s++;
	if (!(m = find_metric(name, (size_t)(s - name)))) {
		char known[256] = "";

		for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++)
			snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s", i ? ", " : "",
				 metrics[i].name);
		return pc_error_set(err, PC_ERR_INVALID, "require", "'%s': unknown metric '%.*s' (known: %s)", expr,
				    (int)(s - name), name, known);
	}
	s = skip_space(s);
	if (*s != '(' || !(close = strchr(s, ')')))
		return pc_error_set(err, PC_ERR_INVALID, "require", "'%s': expected %s", expr, m->usage);
	for (const char *p = skip_space(s + 1); p < close;) {
		const char *c = memchr(p, ',', (size_t)(close - p));
		size_t n = c ? (size_t)(c - p) : (size_t)(close - p);

		if ((rc = add_arg(m, p, n, &a, err)))
			return rc;
		p = c ? skip_space(c + 1) : close;
	}
	if (a.n < m->min_args)
		return pc_error_set(err, PC_ERR_INVALID, "require", "'%s': %s takes %d argument%s: %s", expr, m->name,
				    m->min_args, m->min_args == 1 ? "" : "s", m->usage);
	s = skip_space(close + 1);
	for (oi = 0; oi < sizeof(ops) / sizeof(ops[0]); oi++)
		if (strncmp(s, ops[oi].text, strlen(ops[oi].text)) == 0)
			break;
	if (oi == sizeof(ops) / sizeof(ops[0]))
		return pc_error_set(err, PC_ERR_INVALID, "require", "'%s': expected one of >= > <= < == after %s(...)",
				    expr, m->name);
	s = skip_space(s + strlen(ops[oi].text));
	{
		char num_buf[64];
		size_t n = strlen(s);

		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0 || n >= sizeof(num_buf))
			return pc_error_set(err, PC_ERR_INVALID, "require", "'%s': no number after %s", expr,
					    ops[oi].text);
		memcpy(num_buf, s, n);
		num_buf[n] = 0;
		if (parse_double(num_buf, &bound))
			return pc_error_set(err, PC_ERR_INVALID, "require", "'%s': '%s' is not a number", expr,
					    num_buf);
	}
	if (json_is_object(json_object_get(report, "after")))
		study = json_object_get(report, "after");
	rc = m->lookup(study, &a, &out->value, out->why, sizeof(out->why), err);
	if (rc < 0)
		return -rc;
	out->present = rc;
	if (!out->present) {
		out->value = NAN;
		return PC_OK;
	}
	out->ok = holds(ops[oi].op, out->value, bound);
	if (!out->ok)
		snprintf(out->why, sizeof(out->why), "%.6g is not %s %.6g", out->value, ops[oi].text, bound);
	return PC_OK;
}

int pcd_check_junit(FILE *f, const char *suite, const struct pcd_check *c, int n)
{
	int failures = 0;

	for (int i = 0; i < n; i++)
		failures += !c[i].ok;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"%d\" failures=\"%d\">\n", n,
		failures);
	fputs("  <testsuite name=\"", f);
	pcd_markup_text(f, suite);
	fprintf(f, "\" tests=\"%d\" failures=\"%d\" errors=\"0\">\n", n, failures);
	for (int i = 0; i < n; i++) {
		fputs("    <testcase classname=\"paracorr.check\" name=\"", f);
		pcd_markup_text(f, c[i].text);
		if (c[i].ok) {
			fputs("\"/>\n", f);
			continue;
		}
		fputs("\">\n      <failure message=\"", f);
		pcd_markup_text(f, c[i].why);
		fputs("\"/>\n    </testcase>\n", f);
	}
	fputs("  </testsuite>\n</testsuites>\n", f);
	return ferror(f) ? -1 : 0;
}

static void print_table(FILE *f, const struct pcd_check *c, int n, int failed)
{
	int w = 11;

	for (int i = 0; i < n; i++)
		if ((int)strlen(c[i].text) > w)
			w = (int)strlen(c[i].text);
	if (failed)
		fprintf(f, "paracorr check: %d of %d requirement%s failed\n", failed, n, n == 1 ? "" : "s");
	else
		fprintf(f, "paracorr check: all %d requirement%s hold\n", n, n == 1 ? "" : "s");
	fprintf(f, "  %-*s  %-12s  %s\n", w, "requirement", "value", "result");
	for (int i = 0; i < n; i++) {
		char v[32];

		if (c[i].present)
			snprintf(v, sizeof(v), "%.6g", c[i].value);
		else
			snprintf(v, sizeof(v), "-");
		fprintf(f, "  %-*s  %-12s  %s%s%s\n", w, c[i].text, v, c[i].ok ? "ok" : "FAIL", c[i].ok ? "" : ": ",
			c[i].ok ? "" : c[i].why);
	}
}

int pcd_check_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"require", required_argument, NULL, 'r'}, {"junit", required_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	const char *reqs[CHECK_MAX_REQS], *junit = NULL;
	struct pcd_check *res = NULL;
	struct pc_error err = {0};
	json_error_t jerr;
	json_t *rep = NULL;
	int n = 0, c, failed = 0, rc = EXIT_USAGE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r' && n < CHECK_MAX_REQS)
			reqs[n++] = optarg;
		else if (c == 'j')
			junit = optarg;
		else {
			fprintf(stderr, c == 'r' ? "paracorr check: at most %d requirements\n"
						 : "usage: paracorr check REPORT.json --require EXPR... [--junit FILE]\n",
				CHECK_MAX_REQS);
			return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || n == 0) {
		fprintf(stderr, "usage: paracorr check REPORT.json --require EXPR... [--junit FILE]\n");
		return EXIT_USAGE;
	}
	if (!(res = calloc((size_t)n, sizeof(*res)))) {
		fprintf(stderr, "paracorr check: out of memory\n");
		return 1;
	}
	if (!(rep = json_load_file(argv[optind], 0, &jerr))) {
		fprintf(stderr, "paracorr check: %s: line %d column %d: %s\n", argv[optind], jerr.line, jerr.column,
			jerr.text);
		rc = 1;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (pcd_check_eval(rep, reqs[i], &res[i], &err)) {
			char buf[600];

			fprintf(stderr, "paracorr check: %s\n", pc_error_format(&err, buf, sizeof(buf)));
			goto out;
		}
		failed += !res[i].ok;
	}
	print_table(failed ? stderr : stdout, res, n, failed);
	rc = failed ? 1 : 0;
	if (junit) {
		FILE *f = fopen(junit, "w");
		int bad = !f;

		if (f) {
			bad = pcd_check_junit(f, argv[optind], res, n) != 0;
			bad |= fclose(f) != 0;
		}
		if (bad) {
			fprintf(stderr, "paracorr check: cannot write %s\n", junit);
			rc = 1;
		}
	}
out:
	json_decref(rep);
	free(res);
	return rc;
}
