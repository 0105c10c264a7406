/* ops/conv_direct: see conv_direct.h for the layout and why. */
#include "conv_direct.h"

#include <immintrin.h>
#include <stddef.h>

#define RQ 3 /* positions per tile */

int pc_conv_direct_disabled;
int pc_conv_direct_no_avx512;

/* The AVX-512 kernels, unless a test asked for the AVX2 ones. */
static int use_avx512(void)
{
	return !pc_conv_direct_no_avx512 && __builtin_cpu_supports("avx512f");
}

int pc_conv_direct_has_avx2(void)
{
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int pc_conv_direct_available(void)
{
	if (pc_conv_direct_disabled)
		return 0;
	return use_avx512() || pc_conv_direct_has_avx2();
}

void pc_conv_direct_pack(const float *w, int64_t taps, int64_t m0, int64_t rows, float *dst)
{
	for (int64_t t = 0; t < taps; t++)
		for (int64_t r = 0; r < PC_CONV_RM; r++)
			dst[t * PC_CONV_RM + r] = r < rows ? w[(m0 + r) * taps + t] : 0.0f;
}

/* One tile of 8 channels x rq positions (rq constant after inlining): the
 * accumulators stay in registers, each tap costs rq loads and 8 broadcasts
 * for 8*rq FMAs. */
__attribute__((target("avx512f,fma"), always_inline)) static inline void tile_avx512(const float *xp,
										     const int32_t *tap, int64_t taps,
										     const int32_t *pos, int64_t npos,
										     const float *wpk, float *y, int rq)
{
	__m512 acc[PC_CONV_RM][RQ];
	const float *x[RQ];
	const float *w = wpk;

	for (int v = 0; v < rq; v++)
		x[v] = xp + pos[v];
#pragma GCC unroll 8
	for (int r = 0; r < PC_CONV_RM; r++)
		for (int v = 0; v < rq; v++)
			acc[r][v] = _mm512_setzero_ps();
	for (int64_t t = 0; t < taps; t++, w += PC_CONV_RM) {
		__m512 xv[RQ];
		for (int v = 0; v < rq; v++)
			xv[v] = _mm512_loadu_ps(x[v] + tap[t]);
#pragma GCC unroll 8
		for (int r = 0; r < PC_CONV_RM; r++) {
			__m512 b = _mm512_set1_ps(w[r]);
			for (int v = 0; v < rq; v++)
				acc[r][v] = _mm512_fmadd_ps(b, xv[v], acc[r][v]);
		}
	}
#pragma GCC unroll 8
	for (int r = 0; r < PC_CONV_RM; r++)
		for (int v = 0; v < rq; v++)
			_mm512_storeu_ps(y + (r * npos + v) * PC_CONV_LANES, acc[r][v]);
}

__attribute__((target("avx512f,fma"))) static void run_avx512(const float *xp, const int32_t *tap, int64_t taps,
							      const int32_t *pos, int64_t npos, const float *wpk,
							      float *y)
{
	int64_t p = 0;

	/* tiles of three; a remainder of one after them is better run as two
	 * tiles of two than as a one-wide tile at a third of the rate */
	for (; p + RQ <= npos && npos - p != 4; p += RQ)
		tile_avx512(xp, tap, taps, pos + p, npos, wpk, y + p * PC_CONV_LANES, RQ);
	for (; p + 2 <= npos; p += 2)
		tile_avx512(xp, tap, taps, pos + p, npos, wpk, y + p * PC_CONV_LANES, 2);
	if (p < npos)
		tile_avx512(xp, tap, taps, pos + p, npos, wpk, y + p * PC_CONV_LANES, 1);
}

/* AVX2 has 16 registers: 4 channels x one position (two vectors of 8
 * lanes) in 8 accumulators, over both halves of the packed block. */
__attribute__((target("avx2,fma"))) static void run_avx2(const float *xp, const int32_t *tap, int64_t taps,
							 const int32_t *pos, int64_t npos, const float *wpk, float *y)
{
	for (int half = 0; half < 2; half++) {
		for (int64_t p = 0; p < npos; p++) {
			__m256 acc[4][2];
			const float *x = xp + pos[p], *w = wpk + half * 4;
#pragma GCC unroll 4
			for (int r = 0; r < 4; r++)
				acc[r][0] = acc[r][1] = _mm256_setzero_ps();
			for (int64_t t = 0; t < taps; t++, w += PC_CONV_RM) {
				__m256 x0 = _mm256_loadu_ps(x + tap[t]);
				__m256 x1 = _mm256_loadu_ps(x + tap[t] + 8);
#pragma GCC unroll 4
				for (int r = 0; r < 4; r++) {
					__m256 b = _mm256_broadcast_ss(w + r);
					acc[r][0] = _mm256_fmadd_ps(b, x0, acc[r][0]);
					acc[r][1] = _mm256_fmadd_ps(b, x1, acc[r][1]);
				}
			}
#pragma GCC unroll 4
			for (int r = 0; r < 4; r++) {
				float *yr = y + ((half * 4 + r) * npos + p) * PC_CONV_LANES;
				_mm256_storeu_ps(yr, acc[r][0]);
				_mm256_storeu_ps(yr + 8, acc[r][1]);
			}
		}
	}
}

/* r[i][j] -> r[j][i] for a 16 x 16 block: unpack pairs, shuffle quads,
 * then exchange 128-bit lanes twice. */
__attribute__((target("avx512f"), always_inline)) static inline void transpose16(__m512 r[16])
{
	__m512 t[16];

#pragma GCC unroll 8
	for (int i = 0; i < 8; i++) {
		t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
		t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
	}
#pragma GCC unroll 4
	for (int i = 0; i < 4; i++) {
		r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
		r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
		r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
		r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
	}
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++) {
		t[k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x88);
		t[4 + k] = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xDD);
		t[8 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x88);
		t[12 + k] = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xDD);
	}
#pragma GCC unroll 4
	for (int k = 0; k < 4; k++) {
		r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
		r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xDD);
		r[4 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0x88);
		r[12 + k] = _mm512_shuffle_f32x4(t[4 + k], t[12 + k], 0xDD);
	}
}

/* cstep 1 or 2 (a strided 1x1 convolution reads every other column) */
__attribute__((target("avx512f"))) static void gather_avx512(const float *src, int64_t sstride, int64_t cstep,
							     int64_t ns, int64_t len, float *dst)
{
	const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);

	for (int64_t c0 = 0; c0 < len; c0 += 16) {
		int64_t n = len - c0 < 16 ? len - c0 : 16, need = 2 * n - 1;
		__mmask16 k = (__mmask16)((1u << n) - 1);
		__mmask16 klo = (__mmask16)(need >= 16 ? 0xFFFFu : (1u << need) - 1);
		__mmask16 khi = (__mmask16)(need > 16 ? (1u << (need - 16)) - 1 : 0u);
		__m512 r[16];
		/* constant indices throughout, so that r stays in registers */
#pragma GCC unroll 16
		for (int s = 0; s < 16; s++) {
			const float *q = src + s * sstride + c0 * cstep;
			if (s >= ns)
				r[s] = _mm512_setzero_ps();
			else if (cstep == 1)
				r[s] = _mm512_maskz_loadu_ps(k, q);
			else
				r[s] = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(klo, q), even,
							      _mm512_maskz_loadu_ps(khi, q + 16));
		}
		transpose16(r);
#pragma GCC unroll 16
		for (int j = 0; j < 16; j++)
			if (j < n)
				_mm512_storeu_ps(dst + (c0 + j) * PC_CONV_LANES, r[j]);
	}
}

__attribute__((target("avx512f"))) static void scatter_avx512(const float *src, int64_t len, int64_t ns, float bias,
							      float *dst, int64_t dstride, float *relu, int acc)
{
	__m512 b = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();

	for (int64_t p0 = 0; p0 < len; p0 += 16) {
		int64_t n = len - p0 < 16 ? len - p0 : 16;
		__mmask16 k = (__mmask16)((1u << n) - 1);
		__m512 r[16];
#pragma GCC unroll 16
		for (int i = 0; i < 16; i++)
			r[i] = i < n ? _mm512_loadu_ps(src + (p0 + i) * PC_CONV_LANES) : _mm512_setzero_ps();
		transpose16(r);
#pragma GCC unroll 16
		for (int s = 0; s < 16; s++)
			if (s < ns) {
				__m512 v = _mm512_add_ps(r[s], b);
				if (acc)
					v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dst + s * dstride + p0), r[s]);
				if (dst)
					_mm512_mask_storeu_ps(dst + s * dstride + p0, k, v);
				/* x > 0 ? x : 0, as the Relu op computes it (NaN -> 0) */
				if (relu)
					_mm512_mask_storeu_ps(
					    relu + s * dstride + p0, k,
					    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v));
			}
	}
}

void pc_conv_direct_gather(const float *src, int64_t sstride, int64_t cstep, int64_t ns, int64_t len, float *dst)
{
	if (cstep <= 2 && use_avx512()) {
		gather_avx512(src, sstride, cstep, ns, len, dst);
		return;
	}
	for (int64_t c = 0; c < len; c++) {
		for (int64_t s = 0; s < ns; s++)
			dst[c * PC_CONV_LANES + s] = src[s * sstride + c * cstep];
		for (int64_t s = ns; s < PC_CONV_LANES; s++)
			dst[c * PC_CONV_LANES + s] = 0.0f;
	}
}

void pc_conv_direct_scatter(const float *src, int64_t len, int64_t ns, float bias, float *dst, int64_t dstride,
			    float *relu, int acc)
{
	if (use_avx512()) {
		scatter_avx512(src, len, ns, bias, dst, dstride, relu, acc);
		return;
	}
	for (int64_t s = 0; s < ns; s++)
		for (int64_t p = 0; p < len; p++) {
			float v =
			    acc ? dst[s * dstride + p] + src[p * PC_CONV_LANES + s] : src[p * PC_CONV_LANES + s] + bias;
			if (dst)
				dst[s * dstride + p] = v;
			if (relu)
				relu[s * dstride + p] = v > 0.0f ? v : 0.0f;
		}
}

int pc_conv_direct_wgrad_available(void)
{
	return !pc_conv_direct_disabled && use_avx512();
}

/* 8 channels x 3 taps of dW in 24 accumulators: per position eight dY
 * vectors and three input vectors feed 24 FMAs. Positions go in blocks
 * whose dY rows stay in cache while every tap passes over them; the lanes
 * (samples) are summed at the end of each block. */
#define WGRAD_POS_BLOCK 64
__attribute__((target("avx512f"))) void pc_conv_direct_wgrad(const float *xp, const int32_t *tap, int64_t taps,
							     const int32_t *pos, int64_t npos, const float *dyl,
							     int64_t rows, float *dw)
{
	for (int64_t p0 = 0; p0 < npos; p0 += WGRAD_POS_BLOCK) {
		int64_t p1 = npos - p0 < WGRAD_POS_BLOCK ? npos : p0 + WGRAD_POS_BLOCK;
		for (int64_t t0 = 0; t0 < taps; t0 += RQ) {
			int nt = taps - t0 < RQ ? (int)(taps - t0) : RQ;
			__m512 acc[PC_CONV_RM][RQ];
#pragma GCC unroll 8
			for (int r = 0; r < PC_CONV_RM; r++)
				acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
			for (int64_t p = p0; p < p1; p++) {
				const float *xb = xp + pos[p];
				__m512 xv[RQ];
#pragma GCC unroll 3
				for (int v = 0; v < RQ; v++)
					xv[v] = v < nt ? _mm512_loadu_ps(xb + tap[t0 + v]) : _mm512_setzero_ps();
#pragma GCC unroll 8
				for (int r = 0; r < PC_CONV_RM; r++) {
					__m512 d = _mm512_loadu_ps(dyl + (r * npos + p) * PC_CONV_LANES);
#pragma GCC unroll 3
					for (int v = 0; v < RQ; v++)
						acc[r][v] = _mm512_fmadd_ps(d, xv[v], acc[r][v]);
				}
			}
#pragma GCC unroll 8
			for (int r = 0; r < PC_CONV_RM; r++)
#pragma GCC unroll 3
				for (int v = 0; v < RQ; v++)
					if (r < rows && v < nt)
						dw[r * taps + t0 + v] += _mm512_reduce_add_ps(acc[r][v]);
		}
	}
}

void pc_conv_direct_run(const float *xp, const int32_t *tap, int64_t taps, const int32_t *pos, int64_t npos,
			const float *wpk, float *y)
{
	if (use_avx512())
		run_avx512(xp, tap, taps, pos, npos, wpk, y);
	else
		run_avx2(xp, tap, taps, pos, npos, wpk, y);
}
