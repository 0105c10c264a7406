/* report: JSON documents. Numbers are written by jansson with 17 significant
 * digits, so a report read back gives the same doubles. */
#include "paracorr/report.h"

#include <math.h>
#include <stdlib.h>

#include "paracorr/plan.h"

/* The failures pc_report_alloc_failures counts: per thread, because the
 * daemon's threads build documents at the same time. */
static _Thread_local unsigned long json_failures;

static void *json_alloc(size_t n)
{
	void *p = malloc(n);

	if (!p)
		json_failures++;
	return p;
}

static void json_release(void *p)
{
	free(p);
}

/* jansson wants its allocator set before its first call: before main,
 * then. Its blocks then come from the core's malloc, so that the tests'
 * allocation-failure injector (tests/allocfail.c) reaches them too. */
__attribute__((constructor)) static void json_install(void)
{
	json_set_alloc_funcs(json_alloc, json_release);
}

unsigned long pc_report_alloc_failures(void)
{
	return json_failures;
}

char *pc_report_dumps(const json_t *doc, size_t flags)
{
	unsigned long failures = json_failures;
	char *text = json_dumps(doc, flags);

	if (text && json_failures != failures) {
		free(text);
		return NULL;
	}
	return text;
}

json_t *pc_report_real(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* Norms of a gradient that is not finite (outputs that overflowed) are
 * null, not a failed document. */
json_t *pc_report_norms(const struct pc_norms *n)
{
	return json_pack("{s:o, s:o, s:o}", "l1", pc_report_real(n->l1), "l2", pc_report_real(n->l2), "linf",
			 pc_report_real(n->linf));
}

static json_t *shape_json(const struct pc_shape *s)
{
	json_t *a = json_array();

	for (int i = 0; a && i < s->ndim; i++)
		json_array_append_new(a, json_integer(s->dim[i]));
	return a;
}

json_t *pc_report_gradient(const struct pc_graph *g, const float *grad)
{
	struct pc_norms n;
	unsigned long failures = pc_report_alloc_failures();
	json_t *tensors = json_object(), *root;

	if (!tensors)
		return NULL;
	for (int k = 0; k < pc_graph_param_tensors(g); k++) {
		const struct pc_param *pt = pc_graph_param(g, k);
		pc_norms_compute(grad + pt->offset, pt->count, &n);
		json_object_set_new(tensors, pt->name,
				    json_pack("{s:o, s:I, s:s, s:o, s:o, s:o}", "shape", shape_json(&pt->shape),
					      "numel", (json_int_t)pt->count, "node", pt->node, "l1", pc_report_real(n.l1),
					      "l2", pc_report_real(n.l2), "linf", pc_report_real(n.linf)));
	}
	pc_norms_compute(grad, pc_graph_param_count(g), &n);
	root = json_pack("{s:o, s:o}", "model", pc_report_norms(&n), "tensors", tensors);
	/* a tensor whose entry could not be made would be missing */
	if (root && pc_report_alloc_failures() != failures) {
		json_decref(root);
		return NULL;
	}
	return root;
}

const char *pc_report_output_kind(enum pc_output_kind k)
{
	return k == PC_OUTPUT_PROBS ? "probs" : k == PC_OUTPUT_LOGPROBS ? "logprobs" : "logits";
}

json_t *pc_report_eval(const struct pc_graph *g, const struct pc_eval *e, const float *grad)
{
	unsigned long failures = pc_report_alloc_failures();
	json_t *root = json_pack("{s:I}", "samples", (json_int_t)e->samples);

	if (!root)
		return NULL;
	if (e->sequence)
		json_object_set_new(root, "tokens", json_integer((json_int_t)e->tokens));
	json_object_set_new(root, "loss", pc_report_real(e->loss));
	if (e->sequence)
		json_object_set_new(root, "perplexity", pc_report_real(e->perplexity));
	json_object_set_new(root, "accuracy", json_real(e->accuracy));
	if (e->non_finite)
		json_object_set_new(root, "non_finite", json_integer((json_int_t)e->non_finite));
	json_object_set_new(root, "output", json_string(pc_report_output_kind(pc_graph_output_kind(g))));
	if (grad)
		json_object_set_new(root, "gradient", pc_report_gradient(g, grad));
	if (pc_report_alloc_failures() != failures || (grad && !json_object_get(root, "gradient"))) {
		json_decref(root);
		return NULL;
	}
	return root;
}

json_t *pc_report_op_times(struct pc_runner *r)
{
	int n = pc_plan_op_kinds();
	struct pc_plan_op_time *rows = calloc((size_t)n, sizeof(*rows));
	json_t *out = json_object();

	if (!rows || !out) {
		free(rows);
		json_decref(out);
		return NULL;
	}
	for (int w = 0; w < pc_runner_threads(r); w++)
		pc_plan_profile_add(pc_runner_plan(r, w), rows);
	for (int i = 0; i < n; i++)
		if (rows[i].forward_calls || rows[i].backward_calls)
			json_object_set_new(out, rows[i].op,
					    json_pack("{s:f, s:f, s:I, s:I}", "forward", rows[i].forward, "backward",
						      rows[i].backward, "forward_calls", (json_int_t)rows[i].forward_calls,
						      "backward_calls", (json_int_t)rows[i].backward_calls));
	free(rows);
	return out;
}
