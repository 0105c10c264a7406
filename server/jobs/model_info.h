/* model_info: the JSON description of a model the API gives. */
#ifndef PARACORR_SERVER_MODEL_INFO_H
#define PARACORR_SERVER_MODEL_INFO_H

#include <jansson.h>
#include <stdint.h>

#include "paracorr/graph.h"

/* A model's description as the API gives it: id, bytes, parameters,
 * opset, inputs, outputs, classes, ops, tensors (new reference). */
json_t *pcd_model_info(const struct pc_graph *g, const char *id, uint64_t bytes);
/* [d0, d1, ...] */
json_t *pcd_shape_json(const struct pc_shape *s);

#endif
