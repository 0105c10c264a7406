/* sgemm: OpenBLAS behind one function, and the plain C oracle beside it. */
#include "paracorr/sgemm.h"

#include <cblas.h>

void pc_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
	      int ldb, float beta, float *c, int ldc)
{
	if (m <= 0 || n <= 0)
		return;
	cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n,
		    k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void pc_sgemm_ref(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
		  const float *b, int ldb, float beta, float *c, int ldc)
{
	for (int i = 0; i < m; i++) {
		for (int j = 0; j < n; j++) {
			double acc = 0.0;
			for (int p = 0; p < k; p++) {
				float av = trans_a ? a[(long)p * lda + i] : a[(long)i * lda + p];
				float bv = trans_b ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
				acc += (double)av * bv;
			}
			/* beta == 0 must ignore C, which may hold NaN garbage */
			c[(long)i * ldc + j] = (float)(alpha * acc + (beta != 0.0f ? beta * c[(long)i * ldc + j] : 0.0f));
		}
	}
}
