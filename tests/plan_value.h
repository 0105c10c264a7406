/* What the op tests read of a value inside a prepared plan: its shape, its
 * element type, whether preparing computed it (folded), its data.
 *
 * The public interface has no such query yet, so tests/test_ops_internal.c
 * answers it from the internal header, the one test file that includes it:
 * the op tests themselves stay on include/paracorr/. Once plan.h has an
 * equivalent, these become thin calls of it or go. */
#ifndef PARACORR_TEST_PLAN_VALUE_H
#define PARACORR_TEST_PLAN_VALUE_H

#include <stdint.h>

#include "paracorr/graph.h"
#include "paracorr/plan.h"

struct pc_test_value {
	enum pc_dtype dtype; /* PC_DTYPE_UNDEFINED when the plan never made it */
	struct pc_shape shape;
	int64_t numel;
	int is_static; /* computed at prepare time; no node runs to make it */
	int producer;  /* the node making it, -1 for the input and initializers */
	const float *data;
	const int64_t *ival; /* INT64 and BOOL */
};

/* The value called name in p, copied into *out; NULL when p's graph has no
 * such value. */
const struct pc_test_value *pc_test_plan_value(const struct pc_plan *p, const char *name, struct pc_test_value *out);
/* The name of node k's output i, or NULL when it has fewer. */
const char *pc_test_node_output_name(const struct pc_graph *g, int k, int i);

#endif
