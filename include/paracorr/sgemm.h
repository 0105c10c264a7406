/* sgemm: the one seam to BLAS.
 *
 * Every matrix product of the core goes through pc_sgemm (OpenBLAS);
 * pc_sgemm_ref is a plain C implementation kept as the test oracle. Both are
 * row-major: C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, with
 * lda, ldb, ldc the row strides of A, B, C as stored. */
#ifndef PARACORR_SGEMM_H
#define PARACORR_SGEMM_H

void pc_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
	      int ldb, float beta, float *c, int ldc);

void pc_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
		  const float *b, int ldb, float beta, float *c, int ldc);

/* OpenBLAS's own thread count is process-wide state, which the core never
 * sets: the program that owns the cores does (server/blas_select.h). */

#endif
