/* Storage formats and single-bit faults (faults.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/faults.h"
#include "paracorr/rng.h"

struct ftensor {
	int64_t offset, count;
	int bits; /* exposed per element; 0 = protected */
	int axis; /* int8 quantization axis, -1 per tensor */
	int64_t channels, inner; /* channel of element j: (j / inner) % channels */
	float *scale; /* into s->scales; NULL unless quantized */
	enum pc_stored_type stored; /* int8 format: the tensor's own integers (a QDQ weight) */
};

struct pc_faults_store {
	enum pc_faults_format format;
	int64_t n;
	uint32_t *code;
	int n_tensors;
	struct ftensor *t;
	float *scales;
};

uint32_t pc_faults_f32_bits(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof u);
	return u;
}

float pc_faults_bits_f32(uint32_t u)
{
	float x;

	memcpy(&x, &u, sizeof x);
	return x;
}

/* Drops the low `shift` bits of m rounding to nearest even; a carry out of
 * the mantissa runs into the exponent field of the caller's code, which is
 * what rounding up to the next binade (or to inf) needs. */
static uint32_t round_shift(uint32_t m, int shift)
{
	uint32_t kept = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);

	if (rem > half || (rem == half && (kept & 1)))
		kept++;
	return kept;
}

uint16_t pc_faults_f32_to_f16(float x)
{
	uint32_t u = pc_faults_f32_bits(x);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	int exp = (int)((u >> 23) & 0xff);
	uint32_t mant = u & 0x7fffff;
	int e = exp - 127 + 15;

	if (exp == 0xff)
		return mant ? (uint16_t)(sign | 0x7e00 | (mant >> 13)) : (uint16_t)(sign | 0x7c00);
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00);
	if (e >= 1)
		return (uint16_t)(sign | round_shift(((uint32_t)e << 23) | mant, 13));
	/* below 2^-25 everything rounds to zero, 2^-25 itself (a tie) to even
	 * zero; float32 subnormals are far below */
	if (e < -10)
		return sign;
	return (uint16_t)(sign | round_shift(mant | 0x800000, 14 - e));
}

float pc_faults_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	int exp = (h >> 10) & 0x1f;
	uint32_t mant = h & 0x3ff;

	if (exp == 0x1f)
		return pc_faults_bits_f32(sign | 0x7f800000 | (mant << 13));
	if (exp == 0) {
		int e = -14;

		if (mant == 0)
			return pc_faults_bits_f32(sign);
		while (!(mant & 0x400)) {
			mant <<= 1;
			e--;
		}
		return pc_faults_bits_f32(sign | ((uint32_t)(e + 127) << 23) | ((mant & 0x3ff) << 13));
	}
	return pc_faults_bits_f32(sign | ((uint32_t)(exp - 15 + 127) << 23) | (mant << 13));
}

uint16_t pc_faults_f32_to_bf16(float x)
{
	uint32_t u = pc_faults_f32_bits(x);

	/* rounding a NaN could carry it into inf: keep it a quiet NaN */
	if ((u & 0x7f800000) == 0x7f800000 && (u & 0x7fffff))
		return (uint16_t)((u >> 16) | 0x0040);
	return (uint16_t)round_shift(u, 16);
}

float pc_faults_bf16_to_f32(uint16_t h)
{
	return pc_faults_bits_f32((uint32_t)h << 16);
}

int8_t pc_faults_quantize(float w, float scale)
{
	float q;

	if (!(scale > 0.0f))
		return 0;
	/* rintf in the default rounding mode: half to even */
	q = rintf(w / scale);
	if (q > 127.0f)
		q = 127.0f;
	if (q < -127.0f)
		q = -127.0f;
	return (int8_t)q;
}

int pc_faults_format_bits(enum pc_faults_format f)
{
	switch (f) {
	case PC_FAULTS_FLOAT16:
	case PC_FAULTS_BFLOAT16:
		return 16;
	case PC_FAULTS_INT8:
		return 8;
	default:
		return 32;
	}
}

const char *pc_faults_format_name(enum pc_faults_format f)
{
	switch (f) {
	case PC_FAULTS_FLOAT16:
		return "float16";
	case PC_FAULTS_BFLOAT16:
		return "bfloat16";
	case PC_FAULTS_INT8:
		return "int8";
	default:
		return "float32";
	}
}

/* The output channel axis of parameter p as node k's input i, or -1 when
 * that read is not a weight input of Conv, Gemm or MatMul. */
static int weight_axis(const struct pc_graph *g, int k, int i, int p)
{
	const char *op = pc_graph_node_op(g, k);
	int ndim = pc_graph_param(g, p)->shape.ndim;

	if (i != 1 || ndim < 1)
		return -1;
	if (!strcmp(op, "Conv"))
		return 0;
	if (!strcmp(op, "Gemm"))
		return ndim == 2 ? (pc_graph_node_attr_int(g, k, "transB", 0) ? 0 : 1) : -1;
	/* a 1-D MatMul operand is a vector, not a weight matrix with channels */
	if (!strcmp(op, "MatMul"))
		return ndim >= 2 ? ndim - 1 : -1;
	return -1;
}

int pc_faults_quantizable(const struct pc_graph *g, int p, int *axis)
{
	int found = -1, reads = 0;

	/* already integers: nothing to quantize, no axis to quantize along */
	if (pc_graph_param(g, p)->stored) {
		if (axis)
			*axis = -1;
		return 1;
	}

	for (int k = 0; k < pc_graph_node_count(g); k++) {
		for (int i = 0; i < pc_graph_node_inputs(g, k); i++) {
			int a;

			if (pc_graph_node_input_param(g, k, i) != p)
				continue;
			a = weight_axis(g, k, i, p);
			/* a tied tensor read elsewhere, or along two different
			 * axes, has no one int8 layout: it stays float32 */
			if (a < 0 || (reads && a != found))
				return 0;
			found = a;
			reads++;
		}
	}
	if (!reads)
		return 0;
	if (axis)
		*axis = found;
	return 1;
}

void pc_faults_store_free(struct pc_faults_store *s)
{
	if (!s)
		return;
	free(s->code);
	free(s->t);
	free(s->scales);
	free(s);
}

/* Fills tensor t's scales from its clean values w (max|w|/127 over the
 * tensor or each channel). */
static void compute_scales(struct ftensor *t, const float *w)
{
	int64_t ns = t->axis < 0 ? 1 : t->channels;

	for (int64_t c = 0; c < ns; c++)
		t->scale[c] = 0.0f;
	for (int64_t j = 0; j < t->count; j++) {
		int64_t c = t->axis < 0 ? 0 : (j / t->inner) % t->channels;
		float a = fabsf(w[j]);

		if (a > t->scale[c])
			t->scale[c] = a;
	}
	for (int64_t c = 0; c < ns; c++)
		t->scale[c] = t->scale[c] / 127.0f;
}

static float tensor_scale(const struct ftensor *t, int64_t j)
{
	return t->axis < 0 ? t->scale[0] : t->scale[(j / t->inner) % t->channels];
}

int pc_faults_encode(const struct pc_graph *g, const float *w, enum pc_faults_format f,
		     enum pc_faults_scaling scaling, struct pc_faults_store **out, struct pc_error *err)
{
	struct pc_faults_store *s = calloc(1, sizeof *s);
	int64_t n_scales = 0, used = 0;
	int rc = 0;

	*out = NULL;
	if (!s)
		return pc_error_set(err, PC_ERR_NOMEM, "faults", "out of memory");
	s->format = f;
	s->n = pc_graph_param_count(g);
	s->n_tensors = pc_graph_param_tensors(g);
	s->code = malloc((size_t)(s->n > 0 ? s->n : 1) * sizeof *s->code);
	s->t = calloc((size_t)(s->n_tensors > 0 ? s->n_tensors : 1), sizeof *s->t);
	if (!s->code || !s->t)
		goto nomem;
	for (int p = 0; p < s->n_tensors; p++) {
		const struct pc_param *pp = pc_graph_param(g, p);
		struct ftensor *t = &s->t[p];
		int axis = -1;

		t->offset = pp->offset;
		t->count = pp->count;
		t->axis = -1;
		t->bits = pc_faults_format_bits(f);
		if (f != PC_FAULTS_INT8)
			continue;
		if (pp->stored) {
			t->stored = pp->stored;
			continue;
		}
		if (!pc_faults_quantizable(g, p, &axis)) {
			t->bits = 0;
			continue;
		}
		t->channels = 1;
		t->inner = 1;
		if (scaling == PC_FAULTS_PER_CHANNEL) {
			t->axis = axis;
			t->channels = pp->shape.dim[axis];
			for (int d = axis + 1; d < pp->shape.ndim; d++)
				t->inner *= pp->shape.dim[d];
		}
		n_scales += t->channels;
	}
	if (n_scales) {
		s->scales = malloc((size_t)n_scales * sizeof *s->scales);
		if (!s->scales)
			goto nomem;
	}
	for (int64_t i = 0; i < s->n; i++) {
		switch (f) {
		case PC_FAULTS_FLOAT16:
			s->code[i] = pc_faults_f32_to_f16(w[i]);
			break;
		case PC_FAULTS_BFLOAT16:
			s->code[i] = pc_faults_f32_to_bf16(w[i]);
			break;
		default:
			s->code[i] = pc_faults_f32_bits(w[i]);
			break;
		}
	}
	for (int p = 0; p < s->n_tensors && f == PC_FAULTS_INT8; p++) {
		struct ftensor *t = &s->t[p];

		if (t->stored) {
			/* the integer itself, never re-quantized: an int8 value's
			 * two's complement byte, a uint8 value's byte */
			for (int64_t j = 0; j < t->count; j++)
				s->code[t->offset + j] = pc_stored_byte(t->stored, w[t->offset + j]);
			continue;
		}
		/* an empty tensor has no scale to find (and s->scales may be
		 * NULL) */
		if (!t->bits || !t->count)
			continue;
		t->scale = s->scales + used;
		used += t->channels;
		compute_scales(t, w + t->offset);
		for (int64_t j = 0; j < t->count; j++)
			s->code[t->offset + j] = (uint8_t)pc_faults_quantize(w[t->offset + j], tensor_scale(t, j));
	}
	*out = s;
	return 0;
nomem:
	rc = pc_error_set(err, PC_ERR_NOMEM, "faults", "out of memory");
	pc_faults_store_free(s);
	return rc;
}

enum pc_faults_format pc_faults_store_format(const struct pc_faults_store *s)
{
	return s->format;
}

/* The tensor holding flat element i, or NULL (a gap in the table). */
/* The graph lays parameters out in table order, one after another
 * (graph.h), so the tensors are already sorted by offset. */
static const struct ftensor *tensor_of(const struct pc_faults_store *s, int64_t i)
{
	int lo = 0, hi = s->n_tensors - 1;

	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		const struct ftensor *t = &s->t[mid];

		if (i < t->offset)
			hi = mid - 1;
		else if (i >= t->offset + t->count)
			lo = mid + 1;
		else
			return t;
	}
	return NULL;
}

static float decode_code(const struct pc_faults_store *s, const struct ftensor *t, int64_t i, uint32_t code)
{
	switch (s->format) {
	case PC_FAULTS_FLOAT16:
		return pc_faults_f16_to_f32((uint16_t)code);
	case PC_FAULTS_BFLOAT16:
		return pc_faults_bf16_to_f32((uint16_t)code);
	case PC_FAULTS_INT8:
		if (t && t->stored)
			return pc_stored_value(t->stored, (uint8_t)code);
		if (t && t->bits)
			return (float)(int8_t)(uint8_t)code * tensor_scale(t, i - t->offset);
		return pc_faults_bits_f32(code);
	default:
		return pc_faults_bits_f32(code);
	}
}

float pc_faults_value(const struct pc_faults_store *s, int64_t i)
{
	return decode_code(s, s->format == PC_FAULTS_INT8 ? tensor_of(s, i) : NULL, i, s->code[i]);
}

void pc_faults_decode(const struct pc_faults_store *s, float *w)
{
	/* tensor by tensor: no search per element */
	for (int p = 0; p < s->n_tensors; p++) {
		const struct ftensor *t = &s->t[p];

		for (int64_t j = t->offset; j < t->offset + t->count; j++)
			w[j] = decode_code(s, t, j, s->code[j]);
	}
}

uint32_t pc_faults_code(const struct pc_faults_store *s, int64_t i)
{
	return s->code[i];
}

const float *pc_faults_scales(const struct pc_faults_store *s, int p, int64_t *n)
{
	const struct ftensor *t = &s->t[p];

	*n = t->scale ? t->channels : 0;
	return t->scale;
}

int pc_faults_axis(const struct pc_faults_store *s, int p)
{
	return s->t[p].scale ? s->t[p].axis : -1;
}

int pc_faults_tensor_bits(const struct pc_faults_store *s, int p)
{
	return s->t[p].bits;
}

int64_t pc_faults_exposed_bits(const struct pc_faults_store *s, const int *params, int n, int *n_tensors)
{
	int64_t bits = 0;
	int exposed = 0;

	for (int k = 0; k < n; k++) {
		const struct ftensor *t = &s->t[params[k]];

		bits += t->count * t->bits;
		exposed += t->bits && t->count;
	}
	if (n_tensors)
		*n_tensors = exposed;
	return bits;
}

int pc_faults_exposed_at(const struct pc_faults_store *s, const int *params, int n, int64_t k, int64_t *elem,
			 int *bit, struct pc_error *err)
{
	int64_t left = k;

	for (int j = 0; j < n && left >= 0; j++) {
		const struct ftensor *t = &s->t[params[j]];
		int64_t bits = t->count * t->bits;

		if (left < bits) {
			*elem = t->offset + left / t->bits;
			*bit = (int)(left % t->bits);
			return 0;
		}
		left -= bits;
	}
	return pc_error_set(err, PC_ERR_INVALID, "faults", "exposed bit %lld out of range", (long long)k);
}

/* The tensor of element i when bit b of it is exposed, else an error. */
static int check_bit(const struct pc_faults_store *s, int64_t i, int b, const struct ftensor **t,
		     struct pc_error *err)
{
	if (i < 0 || i >= s->n)
		return pc_error_set(err, PC_ERR_INVALID, "faults", "element %lld out of range", (long long)i);
	*t = tensor_of(s, i);
	if (!*t || b < 0 || b >= (*t)->bits)
		return pc_error_set(err, PC_ERR_INVALID, "faults", "bit %d of element %lld is not exposed in %s", b,
				    (long long)i, pc_faults_format_name(s->format));
	return 0;
}

int pc_faults_flipped_value(const struct pc_faults_store *s, int64_t i, int b, float *value,
			    struct pc_error *err)
{
	const struct ftensor *t;
	int rc = check_bit(s, i, b, &t, err);

	if (rc)
		return rc;
	*value = decode_code(s, t, i, s->code[i] ^ (1u << b));
	return 0;
}

int pc_faults_flip(struct pc_faults_store *s, int64_t i, int b, float *value, struct pc_error *err)
{
	const struct ftensor *t;
	int rc = check_bit(s, i, b, &t, err);

	if (rc)
		return rc;
	s->code[i] ^= 1u << b;
	if (value)
		*value = decode_code(s, t, i, s->code[i]);
	return 0;
}

/* Appends a flip to the caller's buffer, growing it by half. */
static int push_flip(struct pc_faults_bitref **flips, int64_t *count, int64_t *cap, int64_t elem, int bit)
{
	if (*count == *cap) {
		int64_t want = *cap < 64 ? 64 : *cap + *cap / 2;
		struct pc_faults_bitref *grown;

		if (want > PC_FAULTS_MAX_FLIPS)
			want = PC_FAULTS_MAX_FLIPS;
		grown = realloc(*flips, (size_t)want * sizeof **flips);
		if (!grown)
			return PC_ERR_NOMEM;
		*flips = grown;
		*cap = want;
	}
	(*flips)[*count].elem = elem;
	(*flips)[*count].bit = bit;
	(*count)++;
	return 0;
}

int pc_faults_sample(const struct pc_faults_store *s, const int *params, int n, double ber, uint64_t stream,
		     struct pc_faults_bitref **flips, int64_t *count, int64_t *cap, struct pc_error *err)
{
	int64_t total = pc_faults_exposed_bits(s, params, n, NULL), k = -1, base = 0;
	double lq;
	int j = 0;

	*count = 0;
	if (!(ber > 0.0 && ber < 1.0))
		return pc_error_set(err, PC_ERR_INVALID, "ber", "bit error rate %g is outside (0, 1)", ber);
	lq = log1p(-ber);
	for (;;) {
		/* 53 random bits, shifted off zero so that log(u) is finite */
		double u = ((double)(pc_rng_splitmix64(&stream) >> 11) + 1.0) * 0x1p-53;
		double gap = floor(log(u) / lq);
		const struct ftensor *t;

		/* compared in double first: at a tiny ber the gap passes any
		 * int64 */
		if (!(gap < (double)(total - 1 - k)))
			break;
		k += 1 + (int64_t)gap;
		if (*count == PC_FAULTS_MAX_FLIPS) {
			*count = 0;
			return pc_error_set(err, PC_ERR_LIMIT, "ber",
					    "bit error rate %g flips more than %lld of the %lld exposed bits in one trial",
					    ber, (long long)PC_FAULTS_MAX_FLIPS, (long long)total);
		}
		/* k only grows: walk the tensors along with it */
		for (t = &s->t[params[j]]; k >= base + t->count * t->bits; t = &s->t[params[++j]])
			base += t->count * t->bits;
		if (push_flip(flips, count, cap, t->offset + (k - base) / t->bits, (int)((k - base) % t->bits))) {
			*count = 0;
			return pc_error_set(err, PC_ERR_NOMEM, "faults", "out of memory");
		}
	}
	return 0;
}
