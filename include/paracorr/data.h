/* data: labelled datasets loaded from IDX, NPY, CSV or safetensors files,
 * plain or gzipped, from disk or from memory.
 *
 * IDX and NPY hold one array each: inputs and labels are two files. CSV and
 * safetensors hold both in one file, given as the inputs with no labels.
 *
 * Formats are detected by content, never by file name:
 *   gzip  (1f 8b) wrapping one IDX or NPY file; concatenated members are
 *         one stream; the decompressed size is capped;
 *   IDX   00 00 <type> <ndim> then ndim big-endian uint32 dims, then the
 *         big-endian elements (types 08 uint8, 09 int8, 0B int16, 0C int32,
 *         0D float32, 0E float64);
 *   NPY   versions 1.0, 2.0 and 3.0, C order, descr '|u1' '|i1' '<i2'
 *         '<u2' '<i4' '<i8' '<f4' '<f8' (either byte order).
 *   safetensors  an 8-byte little-endian header length (at most
 *         PC_DATA_SAFETENSORS_MAX_HEADER and within the file), a JSON header
 *         with tensors "inputs" (F32 or U8, samples first) and "labels"
 *         (I64, I32 or U8, one dim), each {dtype, shape, data_offsets}
 *         whose offsets must lie in the data section and match shape and
 *         dtype; other tensors and "__metadata__" are ignored.
 *   CSV   any other printable text: one row per sample, numbers separated
 *         by commas, the label (an integer >= 0) in the last column; an
 *         optional header row (a first row whose last field is not a
 *         number); every row the same width. Inputs become float32 of
 *         shape [rows, columns - 1]. Errors name the line and column.
 * Inputs must be uint8 or float32 with the samples along the first dim,
 * or, for a model whose input is int64 (a language model), token ids:
 * int64, int32, uint16 or uint8, kept as integers (never preprocessed) and
 * never negative. Labels are integers (uint8, int8, int16, uint16, int32,
 * int64) in [0, 2^20): one dim (N), a class per sample, or, for a sequence
 * model, two (N, T), a class per token, where PC_LABEL_IGNORE (-100) marks
 * a token left out of the loss and accuracy, as PyTorch's ignore_index.
 * struct pc_preprocess says which the model takes (pc_eval_data_for). Bytes after the data
 * the header describes are an error, as they mean the header does not
 * describe the file. */
#ifndef PARACORR_DATA_H
#define PARACORR_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "paracorr/error.h"
#include "paracorr/tensor.h"

/* Largest safetensors JSON header accepted. */
#define PC_DATA_SAFETENSORS_MAX_HEADER ((uint64_t)100 << 20)
/* Largest file accepted, before or after gzip decompression. */
#define PC_DATA_MAX_BYTES ((uint64_t)4 << 30)
/* Labels must lie in [0, PC_DATA_MAX_CLASSES). */
#define PC_DATA_MAX_CLASSES  (1 << 20)
#define PC_DATA_MAX_CHANNELS 16
/* A per-token label that counts for nothing (padding). */
#define PC_LABEL_IGNORE (-100)

/* How the inputs file is read. */
enum pc_data_inputs {
	PC_DATA_INPUTS_FLOAT = 0,  /* uint8 or float32, preprocessed into floats */
	PC_DATA_INPUTS_TOKENS = 1, /* integer token ids kept as int64: the model's input is int64 */
	PC_DATA_INPUTS_AUTO = 2,   /* tokens when the file holds int64, int32 or uint16, floats
				      otherwise: for describing a dataset before any model is known */
};

/* What the labels file must hold. */
enum pc_data_labels {
	PC_DATA_LABELS_SAMPLE = 0, /* (N): a class per sample */
	PC_DATA_LABELS_TOKEN = 1,  /* (N, T): a class per token, the model's output is [N, T, V] */
	PC_DATA_LABELS_AUTO = 2,   /* either, as the file's rank says */
};

/* x = (raw * scale - mean[c]) / std[c], where c is the channel: the first
 * dim of a C×H×W sample, each feature of a 1-D sample; an H×W sample has
 * one channel. A mean or std of
 * length 1 applies to every channel; of length C, one value per channel;
 * length 0 means mean 0 / std 1. Without scale_set, uint8 inputs are
 * scaled by 1/255 and float inputs are left as they are. Token inputs
 * (`inputs`) are not preprocessed: a scale, mean or std is an error there. */
struct pc_preprocess {
	enum pc_data_inputs inputs; /* default PC_DATA_INPUTS_FLOAT */
	enum pc_data_labels labels; /* default PC_DATA_LABELS_SAMPLE */
	double scale;
	int scale_set;
	int n_mean;
	double mean[PC_DATA_MAX_CHANNELS];
	int n_std;
	double std[PC_DATA_MAX_CHANNELS];
};

/* Defaults: no scale set (1/255 for uint8, 1 for float), mean 0, std 1. */
void pc_preprocess_default(struct pc_preprocess *pp);

struct pc_dataset {
	int64_t n;		/* samples */
	struct pc_shape sample; /* shape of one sample as stored, e.g. [28,28] */
	float *x;		/* n * numel(sample) floats, preprocessed; NULL for tokens */
	int64_t *tokens;	/* n * numel(sample) token ids >= 0, or NULL for floats */
	int32_t *y;		/* n * positions labels, each in [0, classes) or, per
				   token, PC_LABEL_IGNORE */
	int64_t positions;	/* labels per sample: 1, or T for (N, T) labels */
	int label_ndim;		/* 1: a class per sample; 2: a class per token */
	int64_t labelled;	/* labels of the n samples that are not PC_LABEL_IGNORE */
	int64_t classes;	/* max label + 1 over all labels in the file */
	int input_dtype;	/* stored inputs, ONNX numbering: 2 uint8, 1 float,
				   4 uint16, 6 int32, 7 int64 */
};

/* Loads inputs and labels and preprocesses the inputs (pp NULL: defaults).
 * labels_path is NULL when the inputs file holds the labels (CSV,
 * safetensors), and must be NULL then.
 * limit > 0 keeps the first `limit` samples (all when there are fewer);
 * limit <= 0 keeps all. Every label in the file is validated and counts
 * towards classes, whatever the limit. On success *out is a new dataset the
 * caller frees with pc_dataset_free; on failure *out is NULL and err names
 * the file (its path) and what is wrong. */
int pc_dataset_load(const char *inputs_path, const char *labels_path, const struct pc_preprocess *pp, int64_t limit,
		    struct pc_dataset **out, struct pc_error *err);

/* The same from buffers the caller keeps owning (labels NULL as above);
 * errors name "inputs" or "labels". */
int pc_dataset_load_memory(const void *inputs, size_t inputs_len, const void *labels, size_t labels_len,
			   const struct pc_preprocess *pp, int64_t limit, struct pc_dataset **out,
			   struct pc_error *err);

/* pc_dataset_load_memory with a cap of max_bytes (instead of
 * PC_DATA_MAX_BYTES) on each decompressed file: a larger one fails with
 * PC_ERR_LIMIT before more memory is spent on it. */
int pc_dataset_load_memory_max(const void *inputs, size_t inputs_len, const void *labels, size_t labels_len,
			       const struct pc_preprocess *pp, int64_t limit, uint64_t max_bytes,
			       struct pc_dataset **out, struct pc_error *err);

/* NULL is fine. */
void pc_dataset_free(struct pc_dataset *d);

/* Whether the samples fit a model input whose per-sample shape (the dims
 * after the batch axis) is model_sample: equal shapes, or the model has one
 * more leading dim of size 1 (28×28 data for a 1×28×28 input: the singleton
 * channel). The layout is the same in both cases, so d->x feeds the model
 * as it is. PC_ERR_SHAPE naming both shapes otherwise. */
int pc_dataset_check_input(const struct pc_dataset *d, const struct pc_shape *model_sample, struct pc_error *err);

#endif
