/* model_info: a model's description as the API gives it (model_info.h),
 * built once at upload from the loaded graph and stored with its record. */
#include "model_info.h"

#include <string.h>

#include "paracorr/faults.h"

json_t *pcd_shape_json(const struct pc_shape *s)
{
	json_t *a = json_array();
	int i;

	for (i = 0; a && i < s->ndim; i++)
		json_array_append_new(a, json_integer(s->dim[i]));
	return a;
}

json_t *pcd_model_info(const struct pc_graph *g, const char *id, uint64_t bytes)
{
	static const char *const kinds[] = {"logits", "probabilities", "log_probabilities"};
	json_t *o, *ops = json_array(), *tensors = json_array();
	int i, j, n = pc_graph_node_count(g);

	for (i = 0; ops && i < n; i++) {
		const char *op = pc_graph_node_op(g, i);
		for (j = 0; j < i && strcmp(pc_graph_node_op(g, j), op); j++)
			;
		if (j == i)
			json_array_append_new(ops, json_string(op));
	}
	for (i = 0; tensors && i < pc_graph_param_tensors(g); i++) {
		const struct pc_param *p = pc_graph_param(g, i);
		int axis;

		json_array_append_new(tensors, json_pack("{s:s, s:o, s:s, s:b}", "name", p->name, "shape",
							 pcd_shape_json(&p->shape), "node", p->node ? p->node : "",
							 "quantizable", pc_faults_quantizable(g, i, &axis)));
	}
	o = json_pack("{s:s, s:I, s:I, s:i, s:[{s:s, s:o}], s:[{s:s, s:s}], s:I, s:o, s:o}", "id", id, "bytes",
		      (json_int_t)bytes, "parameters", (json_int_t)pc_graph_param_count(g), "opset",
		      pc_graph_opset(g), "inputs", "name", pc_graph_input_name(g), "shape",
		      pcd_shape_json(pc_graph_input_shape(g)), "outputs", "name", pc_graph_output_name(g), "kind",
		      kinds[pc_graph_output_kind(g)], "classes", (json_int_t)pc_graph_classes(g), "ops", ops,
		      "tensors", tensors);
	return o;
}

