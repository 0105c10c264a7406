/* The one test file on core/graph_int.h: it answers plan_value.h's queries,
 * which the public interface lacks, for the op tests. */
#include <stddef.h>

#include "graph_int.h"
#include "plan_value.h"

const struct pc_test_value *pc_test_plan_value(const struct pc_plan *p, const char *name, struct pc_test_value *out)
{
	int v = pc_graph_lookup(p->g, name);
	const struct pc_tensor *x;

	if (v < 0)
		return NULL;
	x = &p->t[v];
	out->dtype = x->dtype;
	out->shape = x->shape;
	out->numel = x->numel;
	out->is_static = x->is_static;
	out->producer = p->g->values[v].producer;
	out->data = x->data;
	out->ival = x->ival;
	return out;
}

const char *pc_test_node_output_name(const struct pc_graph *g, int k, int i)
{
	if (k < 0 || k >= g->n_nodes || i < 0 || i >= g->nodes[k].n_out)
		return NULL;
	return g->values[g->nodes[k].out[i]].name;
}
