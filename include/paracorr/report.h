/* report: the JSON documents paracorr returns, built with jansson. Each
 * function returns a new reference owned by the caller (json_decref), or
 * NULL when out of memory. */
#ifndef PARACORR_REPORT_H
#define PARACORR_REPORT_H

#include <jansson.h>

#include "paracorr/eval.h"
#include "paracorr/graph.h"

/* {"l1", "l2", "linf"} */
json_t *pc_report_norms(const struct pc_norms *n);

/* {"model": norms, "tensors": {name: {"shape","numel","node","l1","l2","linf"}}}
 * for the weight gradient g (pc_graph_param_count floats). */
json_t *pc_report_gradient(const struct pc_graph *g, const float *grad);

/* The `paracorr eval` document: samples, loss, accuracy, output kind and
 * the gradient (omitted when grad is NULL); for a sequence model also the
 * labelled tokens and the perplexity; non_finite when some loss was not
 * finite (the loss is null then). */
json_t *pc_report_eval(const struct pc_graph *g, const struct pc_eval *e, const float *grad);

const char *pc_report_output_kind(enum pc_output_kind k);

/* v as a JSON real, or null when it is not finite (a loss that overflowed:
 * method.md reports no number for it). */
json_t *pc_report_real(double v);

#endif
