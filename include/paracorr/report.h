/* report: the JSON documents paracorr returns, built with jansson. Each
 * function returns a new reference owned by the caller (json_decref), or
 * NULL when out of memory. */
#ifndef PARACORR_REPORT_H
#define PARACORR_REPORT_H

#include <jansson.h>

#include "paracorr/eval.h"
#include "paracorr/graph.h"
#include "paracorr/runner.h"

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

/* {op: {"forward", "backward" (seconds, summed over the workers),
 * "forward_calls", "backward_calls"}} of the runner's plans' profiles
 * (pc_plan_set_profile), the op kinds that ran, in the op table's order. */
json_t *pc_report_op_times(struct pc_runner *r);

/* jansson allocations that failed on the calling thread so far. jansson
 * allocates through the core (report.c installs its allocator before main)
 * and its setters drop a NULL value without a word, and its parser reports
 * a failed allocation as a syntax error: a caller that reads this before
 * and after building or parsing a document knows whether memory ran out
 * on the way, and so whether the document is whole. */
unsigned long pc_report_alloc_failures(void);

/* json_dumps(doc, flags), or NULL when memory ran out on the way: jansson's
 * dump leaves out an object key whose text it could not append and still
 * returns the rest. The caller frees the text with free. */
char *pc_report_dumps(const json_t *doc, size_t flags);

/* v as a JSON real, or null when it is not finite (a loss that overflowed:
 * method.md reports no number for it). */
json_t *pc_report_real(double v);

#endif
