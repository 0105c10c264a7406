/* onnx: load a model from an ONNX file as torch.onnx.export writes it.
 *
 * protobuf-c decodes the wire format and checks nothing else, so every
 * count, dimension, type and name is validated here before use. Loading
 * refuses external data, subgraphs, model-local functions, non-default
 * domains and opsets outside 11..17, each with an error naming the tensor,
 * node or attribute. */
#ifndef PARACORR_ONNX_H
#define PARACORR_ONNX_H

#include <stddef.h>

#include "paracorr/error.h"
#include "paracorr/graph.h"

/* Files larger than this are refused before reading (protobuf's own limit). */
#define PC_ONNX_MAX_BYTES ((size_t)2 << 30)

/* On success *out is a finished graph owned by the caller (pc_graph_free). */
int pc_onnx_load_file(const char *path, struct pc_graph **out, struct pc_error *err);
int pc_onnx_load_buffer(const void *data, size_t len, struct pc_graph **out, struct pc_error *err);

#endif
