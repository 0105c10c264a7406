/* ops/conv_winograd: 3x3 stride-1 Conv as Winograd F(2x2, 3x3) on the
 * sample-lane layout of conv_direct.h.
 *
 * Why: the 3x3 convolutions are most of a ResNet's work, and F(2x2, 3x3)
 * computes a 2x2 output tile with 16 multiplies per channel pair instead of
 * 36. Its transforms only add, subtract and halve, so it loses almost
 * nothing to rounding (relative differences near 1e-6 against the direct
 * sum). The 16 products per tile are 16 matrix products over the channels,
 * which is the direct kernel again, with the channels as taps and the tiles
 * as positions.
 *
 * Input: xp[c][hq][wq][lanes] (conv.c's padded layout, with hq >= 2*th + 2,
 * wq >= 2*tw + 2 for th x tw tiles, zero past the image). Output:
 * yw[m][oh*ow][lanes], which conv.c copies out with the bias. */
#ifndef PARACORR_OPS_CONV_WINOGRAD_H
#define PARACORR_OPS_CONV_WINOGRAD_H

#include <stdint.h>

struct pc_wino {
	int64_t c, m;	/* input, output channels */
	int64_t hq, wq; /* padded input */
	int64_t oh, ow; /* output */
	int64_t th, tw; /* tiles */
};

/* Floats of the transformed weights, and of the scratch pc_conv_wino_run
 * needs besides xp, u and yw. */
int64_t pc_conv_wino_u_size(const struct pc_wino *w);
int64_t pc_conv_wino_ws_size(const struct pc_wino *w);

/* u = G g G^T of every (m, c) of weight [m][c][3][3], packed for the
 * kernel. */
void pc_conv_wino_weights(const struct pc_wino *w, const float *weight, float *u);

/* yw from xp for every output channel. */
void pc_conv_wino_run(const struct pc_wino *w, const float *xp, const float *u, float *ws, float *yw);

#endif
