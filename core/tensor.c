/* tensor: shape arithmetic with overflow checks, used wherever a size comes
 * from a file or a request before anything is allocated from it. */
#include "paracorr/tensor.h"

#include <stdio.h>
#include <string.h>

int pc_shape_numel(const struct pc_shape *s, int64_t *numel, const char *what, struct pc_error *err)
{
	int64_t n = 1, nonzero = 1;
	char buf[160];

	if (s->ndim < 0 || s->ndim > PC_MAX_DIMS)
		return pc_error_set(err, PC_ERR_SHAPE, what, "rank %d is outside 0..%d", s->ndim, PC_MAX_DIMS);
	for (int i = 0; i < s->ndim; i++) {
		int64_t d = s->dim[i];
		if (d < 0)
			return pc_error_set(err, PC_ERR_SHAPE, what, "dimension %d of %s is negative", i,
					    pc_shape_format(s, buf, sizeof(buf)));
		if (d != 0 && n > PC_MAX_NUMEL / d)
			return pc_error_set(err, PC_ERR_SHAPE, what, "shape %s has more than 2^40 elements",
					    pc_shape_format(s, buf, sizeof(buf)));
		/* a zero dimension makes the tensor empty, but strides and spans
		 * are products over the others: those must fit too */
		if (d != 0 && nonzero > PC_MAX_NUMEL / d)
			return pc_error_set(err, PC_ERR_SHAPE, what,
					    "shape %s is empty, but its other dimensions span more than 2^40 elements",
					    pc_shape_format(s, buf, sizeof(buf)));
		n *= d;
		if (d != 0)
			nonzero *= d;
	}
	*numel = n;
	return PC_OK;
}

int64_t pc_shape_count(const struct pc_shape *s)
{
	return pc_shape_span(s, 0, s->ndim);
}

int64_t pc_shape_span(const struct pc_shape *s, int from, int to)
{
	int64_t n = 1;

	for (int i = from; i < to; i++)
		n *= s->dim[i];
	return n;
}

int pc_shape_equal(const struct pc_shape *a, const struct pc_shape *b)
{
	if (a->ndim != b->ndim)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->dim[i] != b->dim[i])
			return 0;
	return 1;
}

const char *pc_shape_format(const struct pc_shape *s, char *buf, size_t size)
{
	size_t used = 0;
	int n;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	n = snprintf(buf, size, "[");
	used = n > 0 ? (size_t)n : 0;
	for (int i = 0; i < s->ndim && i < PC_MAX_DIMS && used < size; i++) {
		n = snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)s->dim[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (used < size)
		snprintf(buf + used, size - used, "]");
	return buf;
}

size_t pc_dtype_size(enum pc_dtype dtype)
{
	return dtype == PC_DTYPE_FLOAT ? sizeof(float) : sizeof(int64_t);
}

const char *pc_dtype_name(int onnx_dtype)
{
	static const char *const names[] = {
		"undefined", "float", "uint8",	 "int8",       "uint16",     "int16",
		"int32",     "int64", "string",	 "bool",       "float16",    "double",
		"uint32",    "uint64", "complex64", "complex128", "bfloat16",
	};

	if (onnx_dtype >= 0 && (size_t)onnx_dtype < sizeof(names) / sizeof(names[0]))
		return names[onnx_dtype];
	return "unknown";
}
