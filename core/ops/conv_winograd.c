/* ops/conv_winograd: see conv_winograd.h. The transforms are those of
 * Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks"
 * (2016), for F(2x2, 3x3):
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * Every loop over lanes is one vector operation. */
#include "conv_winograd.h"

#include "conv_direct.h"
#include "ops_int.h"

#define L  PC_CONV_LANES
#define NT 16 /* tiles per block: the block's transformed input stays in L2 */

static int64_t round_rm(int64_t m)
{
	return (m + PC_CONV_RM - 1) / PC_CONV_RM * PC_CONV_RM;
}

int64_t pc_conv_wino_u_size(const struct pc_wino *w)
{
	return 16 * round_rm(w->m) * w->c;
}

/* taps and positions (int32 in float slots), V, the block's products */
int64_t pc_conv_wino_ws_size(const struct pc_wino *w)
{
	return w->c + NT + 16 * w->c * NT * L + 16 * PC_CONV_RM * NT * L;
}

/* Vectorised over the PC_CONV_RM channels of a block, which the packing
 * keeps contiguous: the transform runs once per forward call, on weights
 * that a study changes between calls. */
PC_HOT void pc_conv_wino_weights(const struct pc_wino *w, const float *weight, float *u)
{
	enum { R = PC_CONV_RM };
	int64_t mr = round_rm(w->m);

	for (int64_t m0 = 0; m0 < mr; m0 += R)
		for (int64_t c = 0; c < w->c; c++) {
			float g[9][R], gg[4][3][R], t[4][4][R];
			for (int r = 0; r < R; r++)
				for (int e = 0; e < 9; e++)
					g[e][r] = m0 + r < w->m ? weight[((m0 + r) * w->c + c) * 9 + e] : 0.0f;
			for (int j = 0; j < 3; j++)
				for (int r = 0; r < R; r++) {
					float a = g[j][r], b = g[3 + j][r], d = g[6 + j][r];
					gg[0][j][r] = a;
					gg[1][j][r] = 0.5f * (a + b + d);
					gg[2][j][r] = 0.5f * (a - b + d);
					gg[3][j][r] = d;
				}
			for (int i = 0; i < 4; i++)
				for (int r = 0; r < R; r++) {
					t[i][0][r] = gg[i][0][r];
					t[i][1][r] = 0.5f * (gg[i][0][r] + gg[i][1][r] + gg[i][2][r]);
					t[i][2][r] = 0.5f * (gg[i][0][r] - gg[i][1][r] + gg[i][2][r]);
					t[i][3][r] = gg[i][2][r];
				}
			/* [xi][m-block][c][RM], xi = 4*i + j */
			for (int xi = 0; xi < 16; xi++)
				for (int r = 0; r < R; r++)
					u[(xi * mr + m0) * w->c + c * R + r] = t[xi / 4][xi % 4][r];
		}
}

/* One vector of PC_CONV_LANES floats (a 4-wide SSE quadruple on the
 * baseline build, one register on AVX-512), named so that the transforms'
 * temporaries stay in registers. Unaligned: rows of the layout are 64
 * bytes apart but the buffers are only float-aligned. */
typedef float vlanes __attribute__((vector_size(L * sizeof(float)), aligned(sizeof(float))));

#define VL(p) (*(const vlanes *)(p))
#define VS(p) (*(vlanes *)(p))

/* V[xi][c][k][lanes] = B^T d B of tiles [t0, t0 + nt). */
PC_HOT static void input_transform(const struct pc_wino *w, const float *xp, int64_t t0, int64_t nt, float *v)
{
	int64_t row = w->wq * L, step = w->c * nt * L; /* next input row; next xi */

	for (int64_t c = 0; c < w->c; c++)
		for (int64_t k = 0; k < nt; k++) {
			int64_t ty = (t0 + k) / w->tw, tx = (t0 + k) % w->tw;
			const float *d = xp + ((c * w->hq + 2 * ty) * w->wq + 2 * tx) * L;
			float *o = v + (c * nt + k) * L;
			vlanes t[4][4];
			for (int j = 0; j < 4; j++) {
				vlanes d0 = VL(d + j * L), d1 = VL(d + row + j * L), d2 = VL(d + 2 * row + j * L),
				       d3 = VL(d + 3 * row + j * L);
				t[0][j] = d0 - d2;
				t[1][j] = d1 + d2;
				t[2][j] = d2 - d1;
				t[3][j] = d1 - d3;
			}
			for (int i = 0; i < 4; i++) {
				VS(o + (4 * i) * step) = t[i][0] - t[i][2];
				VS(o + (4 * i + 1) * step) = t[i][1] + t[i][2];
				VS(o + (4 * i + 2) * step) = t[i][2] - t[i][1];
				VS(o + (4 * i + 3) * step) = t[i][1] - t[i][3];
			}
		}
}

/* yw rows [m0, m0 + rows) of tiles [t0, t0 + nt) from the products
 * mb[xi][r][k][lanes]: A^T M A, dropping outputs past the image. */
PC_HOT static void output_transform(const struct pc_wino *w, const float *mb, int64_t m0, int64_t rows, int64_t t0,
				    int64_t nt, float *yw)
{
	int64_t ohw = w->oh * w->ow, step = PC_CONV_RM * nt * L; /* next xi */

	for (int64_t r = 0; r < rows; r++)
		for (int64_t k = 0; k < nt; k++) {
			int64_t ty = (t0 + k) / w->tw, tx = (t0 + k) % w->tw;
			const float *m = mb + (r * nt + k) * L;
			vlanes t[2][4], y[2][2];
			for (int j = 0; j < 4; j++) {
				vlanes a = VL(m + j * step), b = VL(m + (4 + j) * step), c = VL(m + (8 + j) * step),
				       d = VL(m + (12 + j) * step);
				t[0][j] = a + b + c;
				t[1][j] = b - c - d;
			}
			for (int i = 0; i < 2; i++) {
				y[i][0] = t[i][0] + t[i][1] + t[i][2];
				y[i][1] = t[i][1] - t[i][2] - t[i][3];
			}
			for (int i = 0; i < 2; i++)
				for (int j = 0; j < 2; j++) {
					int64_t oy = 2 * ty + i, ox = 2 * tx + j;
					if (oy < w->oh && ox < w->ow)
						VS(yw + ((m0 + r) * ohw + oy * w->ow + ox) * L) = y[i][j];
				}
		}
}

void pc_conv_wino_run(const struct pc_wino *w, const float *xp, const float *u, float *ws, float *yw)
{
	int32_t *tap = (int32_t *)ws, *pos = tap + w->c;
	float *v = ws + w->c + NT, *mb = v + 16 * w->c * NT * L;
	int64_t tiles = w->th * w->tw, mr = round_rm(w->m);

	for (int64_t t0 = 0; t0 < tiles; t0 += NT) {
		int64_t nt = tiles - t0 < NT ? tiles - t0 : NT;
		for (int64_t c = 0; c < w->c; c++)
			tap[c] = (int32_t)(c * nt * L);
		for (int64_t k = 0; k < nt; k++)
			pos[k] = (int32_t)(k * L);
		input_transform(w, xp, t0, nt, v);
		for (int64_t m0 = 0; m0 < w->m; m0 += PC_CONV_RM) {
			int64_t rows = w->m - m0 < PC_CONV_RM ? w->m - m0 : PC_CONV_RM;
			for (int xi = 0; xi < 16; xi++)
				pc_conv_direct_run(v + xi * w->c * nt * L, tap, w->c, pos, nt,
						   u + (xi * mr + m0) * w->c, mb + xi * PC_CONV_RM * nt * L);
			output_transform(w, mb, m0, rows, t0, nt, yw);
		}
	}
}
