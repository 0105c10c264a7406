/* onnx: load a model from an ONNX file as torch.onnx.export writes it.
 *
 * protobuf-c decodes the wire format and checks nothing else, so every
 * count, dimension, type and name is validated here before use. Loading
 * refuses external data, subgraphs, model-local functions, non-default
 * domains and opsets outside 11..17, each with an error naming the tensor,
 * node or attribute; before decoding, the wire format itself is checked
 * (nesting depth, varints, lengths, UTF-8 strings), naming the byte offset. */
#ifndef PARACORR_ONNX_H
#define PARACORR_ONNX_H

#include <stddef.h>

#include "paracorr/error.h"
#include "paracorr/graph.h"
#include "paracorr/plan.h"

/* Files larger than this are refused before reading (protobuf's own limit). */
#define PC_ONNX_MAX_BYTES ((size_t)2 << 30)

/* Sub-messages nested deeper than this (the model is level 0; a graph input's
 * dimension is level 6, a subgraph's dimension 9) are refused before
 * decoding, since the decoder recurses once per level. */
#define PC_ONNX_MAX_NESTING 16

/* On success *out is a finished graph owned by the caller (pc_graph_free). */
int pc_onnx_load_file(const char *path, struct pc_graph **out, struct pc_error *err);
int pc_onnx_load_buffer(const void *data, size_t len, struct pc_graph **out, struct pc_error *err);

/* Writing: the source file (the one g was loaded from) with the weight
 * initializers' values replaced by `weights` (param_count floats in g's
 * order, stored as raw_data: floats, and a QDQ model's stored integers as
 * int8/uint8, rounded half to even and saturated), the float buffers
 * training moves by their values in `stats` (pc_plan_stats, such as
 * pc_trainer_stats; NULL: the graph's own) and everything else as it was,
 * unknown fields included. The buffer form returns a malloc'd file the
 * caller frees; the file form writes out_path through a temporary file and
 * a rename. */
int pc_onnx_save_weights_buffer(const void *src, size_t len, const struct pc_graph *g, const float *weights,
				const struct pc_plan *stats, unsigned char **out, size_t *out_len, struct pc_error *err);
int pc_onnx_save_weights(const char *src_path, const struct pc_graph *g, const float *weights,
			 const struct pc_plan *stats, const char *out_path, struct pc_error *err);

#endif
