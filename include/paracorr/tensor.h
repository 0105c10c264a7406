/* tensor: shapes and element types. Tensors are dense, row-major (NCHW for
 * images); float32 carries data, int64 carries shapes, indices and token
 * ids, bool carries masks. */
#ifndef PARACORR_TENSOR_H
#define PARACORR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "paracorr/error.h"

#define PC_MAX_DIMS 8
/* Element counts above this are refused when read from a file: 2^40 floats
 * is 4 TiB, far past anything a model or dataset here can hold. */
#define PC_MAX_NUMEL ((int64_t)1 << 40)

/* Numbered as ONNX TensorProto.DataType, so a file's code maps directly.
 * INT64 and BOOL tensors both keep one int64_t per element (BOOL as 0/1):
 * one integer path for every index, shape and mask op. */
enum pc_dtype {
	PC_DTYPE_UNDEFINED = 0,
	PC_DTYPE_FLOAT = 1,
	PC_DTYPE_INT64 = 7,
	PC_DTYPE_BOOL = 9,
};

/* Bytes one element takes in a plan or graph: 4 for FLOAT, 8 otherwise. */
size_t pc_dtype_size(enum pc_dtype dtype);

struct pc_shape {
	int ndim;
	int64_t dim[PC_MAX_DIMS];
};

/* Product of dims into *numel; PC_ERR_SHAPE (naming `what`) when a dim is
 * negative or the product passes PC_MAX_NUMEL. A scalar has numel 1. */
int pc_shape_numel(const struct pc_shape *s, int64_t *numel, const char *what, struct pc_error *err);

/* Product of dims of an already validated shape. */
int64_t pc_shape_count(const struct pc_shape *s);

/* Product of dim[from..to) of a validated shape. */
int64_t pc_shape_span(const struct pc_shape *s, int from, int to);

int pc_shape_equal(const struct pc_shape *a, const struct pc_shape *b);

/* "[2,3,4]" into buf; returns buf. */
const char *pc_shape_format(const struct pc_shape *s, char *buf, size_t size);

const char *pc_dtype_name(int onnx_dtype);

/* Memory-bound loops (activations, pools, elementwise,
 * the study's axpys) compiled for AVX-512,
 * AVX2 and the baseline, picked at load from the CPU: the baseline alone
 * would run them 4 lanes wide, and building for one CPU would make the
 * binary unportable. The arithmetic per element is the same in each. */
#if defined(__clang__) && __clang_major__ < 16
/* clang 14 (the fuzz build's) names the resolver of a clone "f.ifunc", so
 * a call to f from another file does not link: the baseline only there */
#define PC_HOT
#else
#define PC_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

#endif
