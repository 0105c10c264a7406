/* report: JSON documents. Numbers are written by jansson with 17 significant
 * digits, so a report read back gives the same doubles. */
#include "paracorr/report.h"

#include <math.h>

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
	return root;
}

const char *pc_report_output_kind(enum pc_output_kind k)
{
	return k == PC_OUTPUT_PROBS ? "probs" : k == PC_OUTPUT_LOGPROBS ? "logprobs" : "logits";
}

json_t *pc_report_eval(const struct pc_graph *g, const struct pc_eval *e, const float *grad)
{
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
	return root;
}
