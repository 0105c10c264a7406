/* faults: storage formats of the weights and their single-bit faults
 * (issue 15).
 *
 * A parameter vector is encoded into a format (float32, float16,
 * bfloat16, int8), one code per element; a fault flips one bit of one code
 * and the model then runs on the decoded vector. float16 and bfloat16 round
 * to nearest even by hand on the bits, so the result does not depend on the
 * compiler or the machine. In int8 only the weights read by Conv, Gemm or
 * MatMul as their weight input are quantized (scale = max|w|/127, per tensor
 * or per output channel); every other element keeps its float32 bits and is
 * protected: it exposes no bit.
 *
 * A model quantized in ONNX QDQ form already stores integers: a parameter
 * whose pc_param.stored is INT8 or UINT8 (an initializer read by
 * DequantizeLinear as input 0) holds those integers as floats. In int8 its
 * code is the integer itself, never re-quantized: the two's complement byte
 * of an int8, the byte of a uint8; it decodes to that integer (the graph's
 * DequantizeLinear applies its scale and zero point) and exposes 8 bits,
 * with no scale (pc_faults_scales: none, pc_faults_axis: -1). In the float
 * formats it is any parameter: the float bits of its value. */
#ifndef PARACORR_FAULTS_H
#define PARACORR_FAULTS_H

#include <stdint.h>

#include "paracorr/error.h"
#include "paracorr/graph.h"

enum pc_faults_format {
	PC_FAULTS_FLOAT32,
	PC_FAULTS_FLOAT16,
	PC_FAULTS_BFLOAT16,
	PC_FAULTS_INT8,
};

enum pc_faults_scaling {
	PC_FAULTS_PER_TENSOR,
	PC_FAULTS_PER_CHANNEL,
};

/* --- scalar codes ---------------------------------------------------------- */

/* Round to nearest even; overflow gives inf, NaN stays a (quiet) NaN with
 * its sign, subnormal results are produced exactly. */
uint16_t pc_faults_f32_to_f16(float x);
float pc_faults_f16_to_f32(uint16_t h);
uint16_t pc_faults_f32_to_bf16(float x);
float pc_faults_bf16_to_f32(uint16_t h);
/* round-half-to-even(w / scale) clamped to [-127, 127]; 0 when scale is 0
 * (an all-zero tensor or channel). */
int8_t pc_faults_quantize(float w, float scale);
uint32_t pc_faults_f32_bits(float x);
float pc_faults_bits_f32(uint32_t u);

/* Bits per code of a format: 32, 16, 16, 8. */
int pc_faults_format_bits(enum pc_faults_format f);
/* "float32", "float16", "bfloat16", "int8". */
const char *pc_faults_format_name(enum pc_faults_format f);

/* --- int8-quantizable tensors --------------------------------------------- */

/* Whether parameter tensor p is int8-quantizable: every read of it is the
 * weight input (input 1) of a Conv, Gemm or MatMul. *axis receives its output
 * channel axis: Conv 0, Gemm 0 with transB = 1 and 1 without, MatMul the
 * last (a 1-D MatMul operand is a vector, not a weight: it stays float).
 * A QDQ model's stored integers (pc_param.stored) count as quantizable,
 * with *axis -1: they are int8 codes as they stand. */
int pc_faults_quantizable(const struct pc_graph *g, int p, int *axis);

/* --- an encoded vector ------------------------------------------------------- */

struct pc_faults_store;

/* Encodes w (pc_graph_param_count(g) floats, laid out as g's parameter
 * table) into format f; scaling matters for int8 only. */
int pc_faults_encode(const struct pc_graph *g, const float *w, enum pc_faults_format f,
		     enum pc_faults_scaling scaling, struct pc_faults_store **out, struct pc_error *err);
void pc_faults_store_free(struct pc_faults_store *s);

enum pc_faults_format pc_faults_store_format(const struct pc_faults_store *s);
/* Decodes every element into w (pc_graph_param_count floats). */
void pc_faults_decode(const struct pc_faults_store *s, float *w);
/* Decoded value of flat element i. */
float pc_faults_value(const struct pc_faults_store *s, int64_t i);
/* Code of element i: the float32 bits, the float16/bfloat16 code, or the
 * int8 two's complement byte (protected int8 elements: their float32 bits). */
uint32_t pc_faults_code(const struct pc_faults_store *s, int64_t i);

/* Scales of parameter tensor p in int8 (per tensor: 1, per channel: one per
 * output channel, in channel order); *n receives their count, NULL and 0
 * when p is not quantized. */
const float *pc_faults_scales(const struct pc_faults_store *s, int p, int64_t *n);
/* The quantization axis of p, -1 per tensor or when p is not quantized. */
int pc_faults_axis(const struct pc_faults_store *s, int p);

/* --- exposed bits ----------------------------------------------------------- */

/* Bits exposed per element of tensor p: the format's bits, 0 when p is
 * protected (int8, not quantizable). */
int pc_faults_tensor_bits(const struct pc_faults_store *s, int p);
/* Exposed bits of the tensors params[0..n-1] (a layer group, or every
 * tensor), and how many of them expose any. */
int64_t pc_faults_exposed_bits(const struct pc_faults_store *s, const int *params, int n, int *n_tensors);
/* The k-th exposed bit (0 <= k < pc_faults_exposed_bits) of that list, in
 * tensor order, then element, then bit (0 = least significant): its flat
 * element and bit. PC_ERR_INVALID when k is out of range. */
int pc_faults_exposed_at(const struct pc_faults_store *s, const int *params, int n, int64_t k, int64_t *elem,
			 int *bit, struct pc_error *err);

/* Flips bit b of element i in place (flipping it again restores the code
 * bit for bit) and returns the decoded value into *value. PC_ERR_INVALID
 * when i is out of range or the bit is not exposed. */
int pc_faults_flip(struct pc_faults_store *s, int64_t i, int b, float *value, struct pc_error *err);
/* The decoded value element i would have with bit b flipped, the store
 * unchanged. */
int pc_faults_flipped_value(const struct pc_faults_store *s, int64_t i, int b, float *value,
			    struct pc_error *err);

/* --- random bit errors ---------------------------------------------------- */

/* At most this many flips in one random trial: 4 Mi of 16 bytes, 64 MiB.
 * A ResNet-18 in float32 exposes 3.7e8 bits, so this is a bit error rate of
 * about 1e-2 on it, far past any model's collapse. */
#define PC_FAULTS_MAX_FLIPS ((int64_t)1 << 22)

struct pc_faults_bitref {
	int64_t elem; /* flat element */
	int bit;      /* 0 = least significant bit of its code */
};

/* The flips of one random trial at bit error rate ber over the exposed bits
 * of params[0..n-1] (pc_faults_exposed_at's order): every exposed bit flips
 * independently with probability ber. Drawn by skip sampling, never one
 * draw per bit: the gap before the next flipped bit is geometric,
 * floor(log(u) / log1p(-ber)), from one uniform u in (0, 1] per flip, the
 * uniforms being the splitmix64 outputs of the state `stream` in order. So
 * the same stream at another ber uses the same uniforms: each gap shrinks
 * as ber grows, the i-th flip moves to the same or an earlier bit and the
 * count never falls (common random numbers).
 *
 * *flips (the caller's, NULL at first; grown with realloc, *cap its
 * capacity in entries) receives the flips in increasing exposed-bit order,
 * each bit at most once, and *count their number. PC_ERR_INVALID (where
 * "ber") unless 0 < ber < 1; PC_ERR_LIMIT (where "ber", naming it) when
 * the trial would flip more than PC_FAULTS_MAX_FLIPS bits; *count is 0
 * after an error. */
int pc_faults_sample(const struct pc_faults_store *s, const int *params, int n, double ber, uint64_t stream,
		     struct pc_faults_bitref **flips, int64_t *count, int64_t *cap, struct pc_error *err);

#endif
