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

/* Threads OpenBLAS may use. Set on purpose by whoever owns the cores (the
 * CLI, the daemon's worker pool), so that workers and BLAS threads do not
 * oversubscribe the machine. */
void pc_blas_set_threads(int n);

#endif
