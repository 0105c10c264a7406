/* ops/conv_direct: the register-blocked kernel behind Conv.
 *
 * Why not im2col + sgemm: with the few channels (6 to 64) and small images
 * (28x28 down to 7x7) of the models paracorr studies, the column matrix is
 * kh*kw times the input, OpenBLAS copies it once more to pack it, and its
 * kernels cannot fill the short M dimension: the copies cost more than the
 * multiply-adds.
 *
 * The direct kernel puts PC_CONV_LANES samples in the lanes of a vector:
 * Conv (conv.c) lays a chunk of samples out as xp[c][row][col][lane], padding
 * included, so that every output position and every tap (c, i, j) is a
 * fixed offset, for any stride and dilation, and no lane computes anything
 * that is thrown away (a 7x7 map wastes nothing, which computing positions
 * in the lanes would not achieve).
 *
 * A tile of PC_CONV_RM output channels x 3 positions stays in vector
 * registers while the taps stream over it; the weights are packed
 * [tap][PC_CONV_RM] so each tap's weights are one cache line. The AVX-512
 * and AVX2 versions are chosen at run time from the CPU, so the binary stays
 * portable; without either, Conv keeps its im2col path. */
#ifndef PARACORR_OPS_CONV_DIRECT_H
#define PARACORR_OPS_CONV_DIRECT_H

#include <stdint.h>

#define PC_CONV_RM 8	  /* output channels per register tile */
#define PC_CONV_LANES 16 /* samples per vector (two AVX2 vectors) */

/* Set by tests: to compare against the im2col path (disabled), and to run
 * the AVX2 kernels on a CPU that has AVX-512 (no_avx512). */
extern int pc_conv_direct_disabled;
extern int pc_conv_direct_no_avx512;
int pc_conv_direct_has_avx2(void);

/* Whether this CPU has a direct kernel. */
int pc_conv_direct_available(void);

/* Packs rows [m0, m0 + rows) (rows <= PC_CONV_RM) of w [m][taps] into
 * dst [taps][PC_CONV_RM], zero beyond rows. */
void pc_conv_direct_pack(const float *w, int64_t taps, int64_t m0, int64_t rows, float *dst);

/* For r < PC_CONV_RM, p < npos and every lane l:
 *   y[(r*npos + p)*LANES + l] = sum_t wpk[t*RM + r] * xp[pos[p] + tap[t] + l]
 * (offsets in floats, multiples of PC_CONV_LANES). */
void pc_conv_direct_run(const float *xp, const int32_t *tap, int64_t taps, const int32_t *pos, int64_t npos,
			const float *wpk, float *y);

/* Whether pc_conv_direct_wgrad runs here (AVX-512 only). */
int pc_conv_direct_wgrad_available(void);

/* The weight gradient on the same layout: for r < rows, t < taps,
 *   dw[r*taps + t] += sum over p < npos and lanes of
 *                     dyl[(r*npos + p)*LANES + l] * xp[pos[p] + tap[t] + l] */
void pc_conv_direct_wgrad(const float *xp, const int32_t *tap, int64_t taps, const int32_t *pos, int64_t npos,
			  const float *dyl, int64_t rows, float *dw);

/* The layout's transposes, in registers where the CPU has AVX-512:
 *   gather:  dst[c*LANES + s] = src[s*sstride + c*cstep] for s < ns, 0 for
 *            s >= ns
 *   scatter: dst[s*dstride + p] = src[p*LANES + s] + bias for s < ns, and
 *            when relu is not NULL, relu[same index] = max(that, 0); dst
 *            may be NULL when only relu is wanted; with acc, dst += instead
 *            of = (a gradient; relu is then NULL)
 * for c, p < len; sstride * LANES must fit in int32. */
void pc_conv_direct_gather(const float *src, int64_t sstride, int64_t cstep, int64_t ns, int64_t len, float *dst);
void pc_conv_direct_scatter(const float *src, int64_t len, int64_t ns, float bias, float *dst, int64_t dstride,
			    float *relu, int acc);

#endif
