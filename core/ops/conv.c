/* ops/conv: 2-D Conv (NCHW input, M x C/group x kH x kW weight, optional
 * bias), forward and backward.
 *
 * Design. Attributes are parsed once at load; the geometry (padding after
 * auto_pad, output size, chunk size) is a pure function of the attributes
 * and the input/weight shapes, recomputed by infer, forward and backward
 * alike, so a graph shared by several plans is never written after load.
 *
 * Forward has three paths, chosen per call:
 *   - where the CPU has AVX-512 or AVX2, the direct kernel of conv_direct.h
 *     with 16 samples in the vector lanes (any stride, dilation, groups),
 *     and for 3x3 stride-1 convolutions Winograd F(2x2, 3x3) on the same
 *     layout (conv_winograd.h);
 *   - otherwise im2col + pc_sgemm: samples are processed in chunks (BLAS
 *     wants wide matrices and a 7x7 map is 49 columns), im2col of `chunk`
 *     samples, one group at a time, into col [K, chunk*OH*OW] (K = C/group
 *     * kH * kW), one sgemm per group, then a scatter to NCHW; stride-1
 *     convolutions use the "wide rows" variant (conv_forward_wide). A
 *     1x1, stride-1, unpadded conv needs no im2col at all.
 * Every path sums in float; they differ by rounding only (the tests run
 * each against the same reference).
 *
 * Backward recomputes the columns (the workspace is shared by every node,
 * so nothing survives from forward): dW += dY col^T, dB += sum dY, and only
 * when the input has a gradient dX += col2im(W^T dY). A study runs one
 * backward pass and dozens of forward ones, which is where the kernels
 * went. */
#include "../graph_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "conv_direct.h"
#include "conv_winograd.h"
#include "paracorr/sgemm.h"

/* Columns per sgemm worth reaching by chunking samples together. */
#define CONV_TARGET_COLS 1024
/* The direct kernel's workspace bound (floats: 64 MiB); larger layers take
 * the im2col path. */
#define DIRECT_WS_BUDGET ((int64_t)16 << 20)
/* Upper bound on the workspace a chunk may take (floats: 64 MiB). A single
 * sample's columns are always allowed, whatever their size. */
#define CONV_WS_BUDGET ((int64_t)16 << 20)
/* The direct weight gradient sums over output positions with the samples
 * in the lanes and reduces the lanes once per tap block and call: on maps
 * of a few positions those reductions outweighed the products until a call
 * covered several 16-sample chunks (below). With that, direct on every map
 * beats sgemm on the small ones: ResNet-18 on 32x32 inputs, one thread,
 * perf samples of `paracorr eval`, ~12K with sgemm below 8 positions, 11-12K
 * below 4, 9-10K with direct everywhere. */
/* So that a small map's lane reductions are fewer, one call of the kernel
 * sums over the positions of several 16-sample chunks, up to this many
 * positions, with their inputs laid out side by side in at most
 * WGRAD_INPUT_FLOATS (kept within a core's cache). */
#define WGRAD_CALL_POS 64
#define WGRAD_INPUT_FLOATS ((int64_t)256 << 10)

struct conv_attrs {
	enum pc_auto_pad auto_pad;
	int has_kernel;
	int64_t kernel[2];
	int64_t stride[2];
	int64_t dilation[2];
	int64_t pads[4]; /* top, left, bottom, right */
	int64_t group;
};

/* Everything forward and backward need, derived from attributes + shapes. */
struct conv_geom {
	int64_t n, c, h, w;	/* input */
	int64_t m, kh, kw;	/* weight */
	int64_t oh, ow;		/* output */
	int64_t sh, sw, dh, dw; /* stride, dilation */
	int64_t pt, pl;		/* leading pads actually applied */
	int64_t group, cg, mg;	/* groups; channels in, out per group */
	int64_t k;		/* rows of col: cg * kh * kw */
	int64_t hw, ohw;
	int64_t chunk; /* samples per sgemm */
	int64_t ws;    /* workspace floats */
	int direct;    /* 1x1, stride 1, no pad: the input is col */
	/* stride 1, dilation 1: the "wide rows" forward (see conv_forward_wide) */
	int wide;
	int64_t hp, wp; /* padded input */
	int64_t wchunk; /* samples per sgemm on that path */
	/* the direct kernel (conv_direct.h) */
	int dok;	/* its layout fits the kernel's int32 offsets */
	int64_t hq, wq; /* padded input rows and columns the windows read */
	int64_t rs, cs; /* input rows, columns per layout row, column: the
			   stride of a 1-high, 1-wide kernel, else 1 */
	int wino;	/* 3x3, stride 1: Winograd F(2x2, 3x3) (conv_winograd.h) */
	/* The kernel cropped to the taps that meet the input (see
	 * crop_geometry): kh, kw, k, pt, pl and everything after them describe
	 * the cropped kernel; fkh, fkw are the weight's, ci, cj the first
	 * kept tap. */
	int crop;
	int64_t fkh, fkw, ci, cj;
};

int pc_conv_init(struct pc_node *n, struct pc_error *err)
{
	struct conv_attrs *a = calloc(1, sizeof(*a));
	const char *auto_pad;
	int present, rc;

	if (!a)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
	a->stride[0] = a->stride[1] = 1;
	a->dilation[0] = a->dilation[1] = 1;
	if ((rc = pc_attr_auto_pad(n, &a->auto_pad, &auto_pad, err)) ||
	    (rc = pc_attr_window_ints(n, "kernel_shape", 2, 1, a->kernel, &a->has_kernel, err)) ||
	    (rc = pc_attr_window_ints(n, "strides", 2, 1, a->stride, &present, err)) ||
	    (rc = pc_attr_window_ints(n, "dilations", 2, 1, a->dilation, &present, err)) ||
	    (rc = pc_attr_window_ints(n, "pads", 4, 0, a->pads, &present, err)) ||
	    (rc = pc_attr_int(n, "group", 1, &a->group, err)))
		goto fail;
	if (a->group < 1 || a->group > PC_WINDOW_ATTR_MAX) {
		rc = pc_node_error(err, n, PC_ERR_UNSUPPORTED, "attribute 'group' is %lld; must be in 1..%lld",
				   (long long)a->group, (long long)PC_WINDOW_ATTR_MAX);
		goto fail;
	}
	if (a->auto_pad != PC_AUTO_PAD_NOTSET && (a->pads[0] | a->pads[1] | a->pads[2] | a->pads[3])) {
		rc = pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				   "attribute 'pads' cannot be combined with attribute 'auto_pad' = '%s'", auto_pad);
		goto fail;
	}
	free(n->priv);
	n->priv = a;
	return PC_OK;
fail:
	free(a);
	return rc;
}

/* Output length and leading pad along one axis. Returns 0 when no window
 * fits (the effective kernel is larger than the padded input). */
static int64_t out_len(enum pc_auto_pad mode, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
		       int64_t *lead)
{
	int64_t ek = (k - 1) * d + 1, o, total;

	*lead = 0;
	switch (mode) {
	case PC_AUTO_PAD_VALID:
		return in < ek ? 0 : (in - ek) / s + 1;
	case PC_AUTO_PAD_SAME_UPPER:
	case PC_AUTO_PAD_SAME_LOWER:
		o = (in + s - 1) / s;
		total = (o - 1) * s + ek - in;
		if (total < 0)
			total = 0;
		*lead = mode == PC_AUTO_PAD_SAME_UPPER ? total / 2 : total - total / 2;
		return o;
	case PC_AUTO_PAD_NOTSET:
	default:
		*lead = pb;
		return in + pb + pe < ek ? 0 : (in + pb + pe - ek) / s + 1;
	}
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t round_rm(int64_t m)
{
	return (m + PC_CONV_RM - 1) / PC_CONV_RM * PC_CONV_RM;
}

/* The direct path's padded input: one group of PC_CONV_LANES samples. */
static int64_t direct_input(const struct conv_geom *g)
{
	return g->cg * g->hq * g->wq * PC_CONV_LANES;
}

/* Chunks of PC_CONV_LANES samples per call of the direct weight gradient. */
static int64_t wgrad_chunks(const struct conv_geom *g)
{
	int64_t nb = (WGRAD_CALL_POS + g->ohw - 1) / g->ohw, chunks = (g->n + PC_CONV_LANES - 1) / PC_CONV_LANES;

	if (nb > chunks)
		nb = chunks;
	if (nb > WGRAD_INPUT_FLOATS / direct_input(g))
		nb = WGRAD_INPUT_FLOATS / direct_input(g);
	return nb > 1 ? nb : 1;
}

/* The weight gradient's workspace: tap and position tables, the dY block
 * and the inputs of wgrad_chunks chunks. */
static int64_t wgrad_ws(const struct conv_geom *g)
{
	int64_t nb = wgrad_chunks(g);

	return g->k + nb * g->ohw + PC_CONV_RM * nb * g->ohw * PC_CONV_LANES + nb * direct_input(g);
}

/* Workspace of the direct path: tap and position offsets (int32 in float
 * slots), the group's packed weights, one block of output rows, the input. */
static struct pc_wino wino_of(const struct conv_geom *g)
{
	struct pc_wino w = {g->cg, g->mg, g->hq, g->wq, g->oh, g->ow, (g->oh + 1) / 2, (g->ow + 1) / 2};

	return w;
}

static int64_t direct_ws(const struct conv_geom *g)
{
	if (g->wino) {
		struct pc_wino w = wino_of(g);
		return pc_conv_wino_u_size(&w) + pc_conv_wino_ws_size(&w) + g->mg * g->ohw * PC_CONV_LANES +
		       direct_input(g);
	}
	return g->k + g->ohw + round_rm(g->mg) * g->k + PC_CONV_RM * g->ohw * PC_CONV_LANES + direct_input(g);
}

/* Checks the shapes against the attributes and derives the geometry of the
 * whole kernel. */
static int geometry_full(const struct pc_node *n, const struct conv_attrs *a, const struct pc_shape *xs,
			 const struct pc_shape *wsh, const struct pc_shape *bs, struct conv_geom *g,
			 struct pc_error *err)
{
	char b1[96], b2[96];
	int64_t per_sample, chunk;

	memset(g, 0, sizeof(*g));
	if (xs->ndim != 4)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input has shape %s; only 2-D convolutions (input N x C x H x W) are supported",
				     pc_shape_format(xs, b1, sizeof(b1)));
	if (wsh->ndim != 4)
		return pc_node_error(err, n, PC_ERR_SHAPE, "weight has shape %s; expected M x C/group x kH x kW",
				     pc_shape_format(wsh, b1, sizeof(b1)));
	g->n = xs->dim[0];
	g->c = xs->dim[1];
	g->h = xs->dim[2];
	g->w = xs->dim[3];
	g->m = wsh->dim[0];
	g->kh = wsh->dim[2];
	g->kw = wsh->dim[3];
	g->group = a->group;
	if (g->m < 1 || wsh->dim[1] < 1 || g->kh < 1 || g->kw < 1)
		return pc_node_error(err, n, PC_ERR_SHAPE, "weight has shape %s; every dimension must be >= 1",
				     pc_shape_format(wsh, b1, sizeof(b1)));
	if (g->c % g->group || g->m % g->group)
		return pc_node_error(err, n, PC_ERR_SHAPE,
				     "attribute 'group' = %lld does not divide the %lld input channels and %lld "
				     "output channels",
				     (long long)g->group, (long long)g->c, (long long)g->m);
	g->cg = g->c / g->group;
	g->mg = g->m / g->group;
	if (wsh->dim[1] != g->cg)
		return pc_node_error(err, n, PC_ERR_SHAPE,
				     "weight %s has %lld input channels; input %s with group %lld needs %lld",
				     pc_shape_format(wsh, b1, sizeof(b1)), (long long)wsh->dim[1],
				     pc_shape_format(xs, b2, sizeof(b2)), (long long)g->group, (long long)g->cg);
	if (a->has_kernel && (a->kernel[0] != g->kh || a->kernel[1] != g->kw))
		return pc_node_error(
		    err, n, PC_ERR_SHAPE, "attribute 'kernel_shape' [%lld,%lld] does not match the weight %s",
		    (long long)a->kernel[0], (long long)a->kernel[1], pc_shape_format(wsh, b1, sizeof(b1)));
	if (bs && (bs->ndim != 1 || bs->dim[0] != g->m))
		return pc_node_error(err, n, PC_ERR_SHAPE, "bias has shape %s; expected [%lld]",
				     pc_shape_format(bs, b1, sizeof(b1)), (long long)g->m);
	g->sh = a->stride[0];
	g->sw = a->stride[1];
	g->dh = a->dilation[0];
	g->dw = a->dilation[1];
	g->oh = out_len(a->auto_pad, g->h, g->kh, g->sh, g->dh, a->pads[0], a->pads[2], &g->pt);
	g->ow = out_len(a->auto_pad, g->w, g->kw, g->sw, g->dw, a->pads[1], a->pads[3], &g->pl);
	if (g->oh < 1 || g->ow < 1)
		return pc_node_error(err, n, PC_ERR_SHAPE,
				     "kernel %lldx%lld (dilations %lld,%lld) is larger than the padded input %s "
				     "(pads %lld,%lld,%lld,%lld)",
				     (long long)g->kh, (long long)g->kw, (long long)g->dh, (long long)g->dw,
				     pc_shape_format(xs, b1, sizeof(b1)), (long long)a->pads[0], (long long)a->pads[1],
				     (long long)a->pads[2], (long long)a->pads[3]);
	g->hw = g->h * g->w;
	g->ohw = g->oh * g->ow;
	g->k = g->cg * g->kh * g->kw;
	/* sgemm takes int dimensions */
	if (g->k > INT_MAX || g->ohw > INT_MAX || g->hw > INT_MAX || g->m > INT_MAX || g->k * g->ohw > PC_MAX_NUMEL)
		return pc_node_error(err, n, PC_ERR_LIMIT, "convolution of input %s and weight %s is too large",
				     pc_shape_format(xs, b1, sizeof(b1)), pc_shape_format(wsh, b2, sizeof(b2)));
	g->direct = g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pl == 0 && g->oh == g->h &&
		    g->ow == g->w;

	/* chunk: enough samples to reach CONV_TARGET_COLS columns, within budget */
	per_sample = (g->k + g->mg) * g->ohw;
	chunk = g->ohw >= CONV_TARGET_COLS ? 1 : (CONV_TARGET_COLS + g->ohw - 1) / g->ohw;
	chunk = min64(chunk, g->n);
	chunk = min64(chunk, CONV_WS_BUDGET / per_sample);
	chunk = min64(chunk, INT_MAX / g->ohw);
	g->chunk = chunk < 1 ? 1 : chunk;
	if (g->chunk > 1)
		g->ws = per_sample * g->chunk;
	else
		g->ws = g->direct ? 0 : g->k * g->ohw;

	g->wide = !g->direct && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1;
	if (g->wide) {
		int64_t ocols;
		g->hp = g->oh + g->kh - 1;
		g->wp = g->ow + g->kw - 1;
		ocols = g->oh * g->wp;
		per_sample = g->cg * g->hp * g->wp + (g->k + g->mg) * ocols;
		chunk = ocols >= CONV_TARGET_COLS ? 1 : (CONV_TARGET_COLS + ocols - 1) / ocols;
		chunk = min64(chunk, g->n);
		chunk = min64(chunk, CONV_WS_BUDGET / per_sample);
		chunk = min64(chunk, INT_MAX / ocols);
		g->wchunk = chunk < 1 ? 1 : chunk;
		if (per_sample * g->wchunk > g->ws)
			g->ws = per_sample * g->wchunk;
	}

	/* a 1-high (1-wide) kernel reads only every sh-th row (sw-th column):
	 * lay out those alone */
	g->rs = g->kh == 1 ? g->sh : 1;
	g->cs = g->kw == 1 && g->sw <= 2 ? g->sw : 1;
	g->hq = ((g->oh - 1) * g->sh + (g->kh - 1) * g->dh) / g->rs + 1;
	g->wq = ((g->ow - 1) * g->sw + (g->kw - 1) * g->dw) / g->cs + 1;
	/* Winograd pays off once the channel products outweigh the transforms */
	g->wino = g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 && g->group == 1 &&
		  g->cg >= 4 && g->mg >= PC_CONV_RM;
	if (g->wino) {
		/* whole 2x2 tiles: one more zero row or column for odd sizes */
		g->hq = (g->oh + 1) / 2 * 2 + 2;
		g->wq = (g->ow + 1) / 2 * 2 + 2;
	}
	g->dok = direct_input(g) < INT32_MAX / 4 && direct_ws(g) <= DIRECT_WS_BUDGET &&
		 g->c * g->hw < INT32_MAX / PC_CONV_LANES;
	if (g->dok && direct_ws(g) > g->ws)
		g->ws = direct_ws(g);
	return PC_OK;
}

/* The kernel taps of one axis that read the input for some output
 * position: tap i reads rows i*d - p + o*s for o in [0, olen), and one
 * that falls wholly in the padding multiplies zeros. [*lo, *hi] is the
 * smallest range holding every tap that may read the input; an empty one
 * (the whole window in the padding) gives lo > hi. */
static void axis_taps(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p, int64_t olen, int64_t *lo, int64_t *hi)
{
	*lo = k;
	*hi = -1;
	for (int64_t i = 0; i < k; i++) {
		int64_t first = i * d - p, last = first + (olen - 1) * s;
		if (last >= 0 && first <= in - 1) {
			if (*lo == k)
				*lo = i;
			*hi = i;
		}
	}
}

/* Checks the shapes against the attributes and derives the geometry. err
 * may be NULL (forward and backward, where infer has already passed).
 *
 * Deep layers of a network fed small images run 3x3 kernels on 2x2 and
 * 1x1 maps, where most taps only ever meet the zero padding: ResNet-18 on
 * 32x32 inputs spends a quarter of its convolution arithmetic there. The
 * geometry then describes the same convolution with the kernel cropped to
 * the taps that can meet the input (a 3x3, pad-1 kernel on a 1x1 map is a
 * 1x1 convolution) and explicit pads: the same outputs, the sums in a
 * different order only where the dropped terms were zeros. */
static int conv_geometry(const struct pc_node *n, const struct conv_attrs *a, const struct pc_shape *xs,
			 const struct pc_shape *wsh, const struct pc_shape *bs, struct conv_geom *g,
			 struct pc_error *err)
{
	struct conv_attrs ca = {.auto_pad = PC_AUTO_PAD_NOTSET};
	struct pc_shape cw = *wsh;
	struct conv_geom cg;
	int64_t i0, i1, j0, j1;
	int rc;

	if ((rc = geometry_full(n, a, xs, wsh, bs, g, err)))
		return rc;
	axis_taps(g->h, g->kh, g->sh, g->dh, g->pt, g->oh, &i0, &i1);
	axis_taps(g->w, g->kw, g->sw, g->dw, g->pl, g->ow, &j0, &j1);
	if (i0 > i1 || j0 > j1 || (i1 - i0 + 1 == g->kh && j1 - j0 + 1 == g->kw))
		return PC_OK;
	ca.stride[0] = g->sh;
	ca.stride[1] = g->sw;
	ca.dilation[0] = g->dh;
	ca.dilation[1] = g->dw;
	ca.group = g->group;
	ca.pads[0] = g->pt - i0 * g->dh;
	ca.pads[1] = g->pl - j0 * g->dw;
	cw.dim[2] = i1 - i0 + 1;
	cw.dim[3] = j1 - j0 + 1;
	/* the trailing pads that keep the output size, when they are not negative */
	ca.pads[2] = (g->oh - 1) * g->sh + (cw.dim[2] - 1) * g->dh + 1 - g->h - ca.pads[0];
	ca.pads[3] = (g->ow - 1) * g->sw + (cw.dim[3] - 1) * g->dw + 1 - g->w - ca.pads[1];
	for (int i = 0; i < 4; i++)
		if (ca.pads[i] < 0)
			return PC_OK;
	if (geometry_full(n, &ca, xs, &cw, bs, &cg, NULL) || cg.oh != g->oh || cg.ow != g->ow)
		return PC_OK;
	cg.crop = 1;
	cg.fkh = g->kh;
	cg.fkw = g->kw;
	cg.ci = i0;
	cg.cj = j0;
	*g = cg;
	return PC_OK;
}

/* The cropped weight and its gradient, at the start of the workspace. */
static int64_t crop_floats(const struct conv_geom *g)
{
	return g->crop ? 2 * ((g->m * g->k + 15) / 16 * 16) : 0;
}

/* Copies the kept taps of the full weight w into wc, or (back) adds the
 * cropped gradient dwc into the full one. */
static void crop_weight(const struct conv_geom *g, const float *w, float *wc)
{
	/* rows of one or two taps: a loop, not a memcpy per row */
	for (int64_t r = 0; r < g->m * g->cg; r++)
		for (int64_t i = 0; i < g->kh; i++)
			for (int64_t j = 0; j < g->kw; j++)
				wc[(r * g->kh + i) * g->kw + j] = w[(r * g->fkh + g->ci + i) * g->fkw + g->cj + j];
}

static void crop_grad_add(const struct conv_geom *g, const float *dwc, float *dw)
{
	for (int64_t r = 0; r < g->m * g->cg; r++)
		for (int64_t i = 0; i < g->kh; i++)
			for (int64_t j = 0; j < g->kw; j++)
				dw[(r * g->fkh + g->ci + i) * g->fkw + g->cj + j] += dwc[(r * g->kh + i) * g->kw + j];
}

/* dX of a stride-1, undilated, ungrouped convolution is a convolution of
 * dY, padded by k-1-p, with the kernel flipped and its channels swapped:
 * the geometry of that convolution, when the direct kernels can run it. */
static int transposed_geometry(const struct pc_node *n, const struct conv_geom *g, struct conv_geom *t)
{
	struct conv_attrs a = {.auto_pad = PC_AUTO_PAD_NOTSET, .stride = {1, 1}, .dilation = {1, 1}, .group = 1};
	struct pc_shape xs = {.ndim = 4, .dim = {g->n, g->m, g->oh, g->ow}};
	struct pc_shape wsh = {.ndim = 4, .dim = {g->c, g->m, g->kh, g->kw}};

	if (g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->group != 1)
		return 0;
	a.pads[0] = g->kh - 1 - g->pt;
	a.pads[1] = g->kw - 1 - g->pl;
	a.pads[2] = g->h - g->oh + g->pt;
	a.pads[3] = g->w - g->ow + g->pl;
	for (int i = 0; i < 4; i++)
		if (a.pads[i] < 0)
			return 0;
	return geometry_full(n, &a, &xs, &wsh, NULL, t, NULL) == PC_OK && t->dok && t->oh == g->h && t->ow == g->w;
}

static int geometry_of(struct pc_plan *p, const struct pc_node *n, struct conv_geom *g, struct pc_error *err)
{
	const struct pc_tensor *b = pc_op_in(p, n, 2);

	return conv_geometry(n, pc_op_priv(n), &pc_op_in(p, n, 0)->shape, &pc_op_in(p, n, 1)->shape,
			     b ? &b->shape : NULL, g, err);
}

int pc_conv_infer(struct pc_plan *p, const struct pc_node *n, struct pc_error *err)
{
	struct conv_geom g;
	struct pc_shape ys;
	int rc;

	if ((rc = pc_op_need_float(p, n, 0, err)) || (rc = pc_op_need_float(p, n, 1, err)))
		return rc;
	if (pc_op_in(p, n, 2) && (rc = pc_op_need_float(p, n, 2, err)))
		return rc;
	if ((rc = geometry_of(p, n, &g, err)))
		return rc;
	ys.ndim = 4;
	ys.dim[0] = g.n;
	ys.dim[1] = g.m;
	ys.dim[2] = g.oh;
	ys.dim[3] = g.ow;
	if ((rc = pc_op_set_output(p, n, 0, PC_DTYPE_FLOAT, &ys, err)))
		return rc;
	pc_op_reserve_ws(p, (size_t)(crop_floats(&g) + g.ws));
	if (g.dok)
		pc_op_reserve_ws(p, (size_t)(crop_floats(&g) + wgrad_ws(&g)));
	{
		struct conv_geom t;
		if (transposed_geometry(n, &g, &t))
			pc_op_reserve_ws(p, (size_t)(crop_floats(&g) + direct_ws(&t) + g.m * g.k));
	}
	if (g.dok && g.wino) {
		/* the transformed weights, kept with the weights they came from */
		struct pc_wino wi = wino_of(&g);
		pc_op_reserve_state(p, n, 1 + (size_t)(g.m * g.k) + (size_t)pc_conv_wino_u_size(&wi));
	}
	return PC_OK;
}

/* Output positions o in [0, olen) whose input index o*s + off lies in
 * [0, in): the half-open range [*lo, *hi). */
static void valid_range(int64_t off, int64_t s, int64_t in, int64_t olen, int64_t *lo, int64_t *hi)
{
	int64_t l = off >= 0 ? 0 : (-off + s - 1) / s;
	int64_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / s + 1;

	if (h > olen)
		h = olen;
	if (l > h)
		l = h;
	*lo = l;
	*hi = h;
}

/* col [k, ns*ohw] from the cg channels at x (sample stride c*hw). Rows are
 * short (an output row of a small image), so the copies are plain loops and
 * the zero fills only run where padding is. */
static void im2col(const struct conv_geom *g, const float *x, int64_t ns, float *col)
{
	int64_t cols = ns * g->ohw, ow_n = g->ow;

	for (int64_t c = 0; c < g->cg; c++) {
		for (int64_t i = 0; i < g->kh; i++) {
			int64_t yoff = i * g->dh - g->pt, oh_lo, oh_hi;
			valid_range(yoff, g->sh, g->h, g->oh, &oh_lo, &oh_hi);
			for (int64_t j = 0; j < g->kw; j++) {
				int64_t xoff = j * g->dw - g->pl, ow_lo, ow_hi;
				float *row = col + ((c * g->kh + i) * g->kw + j) * cols;
				valid_range(xoff, g->sw, g->w, g->ow, &ow_lo, &ow_hi);
				for (int64_t s = 0; s < ns; s++) {
					const float *xc = x + (s * g->c + c) * g->hw;
					float *dst = row + s * g->ohw;
					for (int64_t q = 0; q < oh_lo * ow_n; q++)
						dst[q] = 0.0f;
					for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
						const float *xr = xc + (oh * g->sh + yoff) * g->w + xoff;
						float *d = dst + oh * ow_n;
						for (int64_t ow = 0; ow < ow_lo; ow++)
							d[ow] = 0.0f;
						if (g->sw == 1)
							for (int64_t ow = ow_lo; ow < ow_hi; ow++)
								d[ow] = xr[ow];
						else
							for (int64_t ow = ow_lo; ow < ow_hi; ow++)
								d[ow] = xr[ow * g->sw];
						for (int64_t ow = ow_hi; ow < ow_n; ow++)
							d[ow] = 0.0f;
					}
					for (int64_t q = oh_hi * ow_n; q < g->oh * ow_n; q++)
						dst[q] = 0.0f;
				}
			}
		}
	}
}

/* The adjoint of im2col: adds col [k, ns*ohw] into the cg channels at dx. */
static void col2im_add(const struct conv_geom *g, const float *col, int64_t ns, float *dx)
{
	int64_t cols = ns * g->ohw;

	for (int64_t c = 0; c < g->cg; c++) {
		for (int64_t i = 0; i < g->kh; i++) {
			int64_t yoff = i * g->dh - g->pt, oh_lo, oh_hi;
			valid_range(yoff, g->sh, g->h, g->oh, &oh_lo, &oh_hi);
			for (int64_t j = 0; j < g->kw; j++) {
				int64_t xoff = j * g->dw - g->pl, ow_lo, ow_hi;
				const float *row = col + ((c * g->kh + i) * g->kw + j) * cols;
				valid_range(xoff, g->sw, g->w, g->ow, &ow_lo, &ow_hi);
				for (int64_t s = 0; s < ns; s++) {
					float *xc = dx + (s * g->c + c) * g->hw;
					const float *src = row + s * g->ohw;
					for (int64_t oh = oh_lo; oh < oh_hi; oh++) {
						float *xr = xc + (oh * g->sh + yoff) * g->w;
						const float *d = src + oh * g->ow;
						for (int64_t ow = ow_lo; ow < ow_hi; ow++)
							xr[ow * g->sw + xoff] += d[ow];
					}
				}
			}
		}
	}
}

/* One channel plane into its hp x wp padded copy: zero borders, row copies.
 * Pads are never negative here; the window may drop trailing rows or
 * columns of the input (VALID-like padding), which are then not copied. */
static void pad_plane(const struct conv_geom *g, const float *src, float *dst)
{
	int64_t rows = min64(g->h, g->hp - g->pt), cols = min64(g->w, g->wp - g->pl);

	for (int64_t r = 0; r < g->hp; r++) {
		float *d = dst + r * g->wp;
		int64_t sr = r - g->pt;
		if (sr < 0 || sr >= rows) {
			memset(d, 0, (size_t)g->wp * sizeof(float));
			continue;
		}
		for (int64_t q = 0; q < g->pl; q++)
			d[q] = 0.0f;
		memcpy(d + g->pl, src + sr * g->w, (size_t)cols * sizeof(float));
		for (int64_t q = g->pl + cols; q < g->wp; q++)
			d[q] = 0.0f;
	}
}

/* Stride-1 forward without per-row im2col: pad the chunk's input once into
 * hp x wp planes, then compute the output at the padded width wp. Row
 * (c, i, j) of col is then ONE contiguous copy per sample (the plane from
 * offset i*wp + j), instead of oh short copies; the wp - ow extra columns
 * per output row are computed and dropped. Worth it for the small images
 * here, where im2col's short rows dominated the forward pass. */
/* The wide columns of samples [n0, n0 + ns) of group gi: pad into xp when
 * the conv pads, then one contiguous copy per (c, i, j, sample). */
static void wide_columns(const struct conv_geom *g, const float *x, int64_t n0, int64_t ns, int64_t gi, float *xp,
			 float *col)
{
	int64_t plane = g->hp * g->wp, ocols = g->oh * g->wp, cols = ns * ocols;
	int padded = g->pt || g->pl || g->hp != g->h || g->wp != g->w;
	const float *base = x + (n0 * g->c + gi * g->cg) * g->hw;
	int64_t sstride = g->c * g->hw, cstride = g->hw;

	if (padded) {
		for (int64_t s = 0; s < ns; s++)
			for (int64_t c = 0; c < g->cg; c++)
				pad_plane(g, base + s * sstride + c * cstride, xp + (s * g->cg + c) * plane);
		base = xp;
		sstride = g->cg * plane;
		cstride = plane;
	}
	for (int64_t c = 0; c < g->cg; c++)
		for (int64_t i = 0; i < g->kh; i++)
			for (int64_t j = 0; j < g->kw; j++) {
				float *row = col + ((c * g->kh + i) * g->kw + j) * cols;
				int64_t off = i * g->wp + j, avail = plane - off;
				int64_t len = avail < ocols ? avail : ocols;
				for (int64_t s = 0; s < ns; s++) {
					const float *src = base + s * sstride + c * cstride + off;
					float *dst = row + s * ocols;
					memcpy(dst, src, (size_t)len * sizeof(float));
					/* past the plane: only dropped columns read here */
					for (int64_t q = len; q < ocols; q++)
						dst[q] = 0.0f;
				}
			}
}

static void conv_forward_wide(const struct conv_geom *g, const float *x, const float *w, const float *bias, float *y,
			      float *ws)
{
	int64_t plane = g->hp * g->wp, ocols = g->oh * g->wp;

	for (int64_t n0 = 0; n0 < g->n; n0 += g->wchunk) {
		int64_t ns = min64(g->wchunk, g->n - n0), cols = ns * ocols;
		for (int64_t gi = 0; gi < g->group; gi++) {
			float *xp = ws, *col = ws + g->cg * plane * ns, *prod = col + g->k * cols;
			wide_columns(g, x, n0, ns, gi, xp, col);
			pc_sgemm(0, 0, (int)g->mg, (int)cols, (int)g->k, 1.0f, w + gi * g->mg * g->k, (int)g->k, col,
				 (int)cols, 0.0f, prod, (int)cols);
			for (int64_t s = 0; s < ns; s++)
				for (int64_t m = 0; m < g->mg; m++) {
					float b = bias ? bias[gi * g->mg + m] : 0.0f;
					const float *src = prod + m * cols + s * ocols;
					float *dst = y + ((n0 + s) * g->m + gi * g->mg + m) * g->ohw;
					for (int64_t oh = 0; oh < g->oh; oh++)
						for (int64_t ow = 0; ow < g->ow; ow++)
							dst[oh * g->ow + ow] = src[oh * g->wp + ow] + b;
				}
		}
	}
}

/* Backward on the same wide layout: dY is spread over wp-wide rows with
 * zeros in the dropped columns, so dW = dY_wide col^T needs no correction,
 * and the column gradient W^T dY_wide goes back into a padded plane by one
 * contiguous add per (c, i, j, sample) before the padding is cut off. */
static void conv_backward_wide(const struct conv_geom *g, const float *x, const float *w, const float *dy, float *dw,
			       float *dx, float *ws)
{
	int64_t plane = g->hp * g->wp, ocols = g->oh * g->wp;

	for (int64_t n0 = 0; n0 < g->n; n0 += g->wchunk) {
		int64_t ns = min64(g->wchunk, g->n - n0), cols = ns * ocols;
		for (int64_t gi = 0; gi < g->group; gi++) {
			float *xp = ws, *col = ws + g->cg * plane * ns, *dyw = col + g->k * cols;
			const float *wg = w + gi * g->mg * g->k;
			for (int64_t s = 0; s < ns; s++)
				for (int64_t m = 0; m < g->mg; m++) {
					const float *src = dy + ((n0 + s) * g->m + gi * g->mg + m) * g->ohw;
					float *dst = dyw + m * cols + s * ocols;
					for (int64_t oh = 0; oh < g->oh; oh++) {
						for (int64_t ow = 0; ow < g->ow; ow++)
							dst[oh * g->wp + ow] = src[oh * g->ow + ow];
						for (int64_t ow = g->ow; ow < g->wp; ow++)
							dst[oh * g->wp + ow] = 0.0f;
					}
				}
			if (dw) {
				wide_columns(g, x, n0, ns, gi, xp, col);
				pc_sgemm(0, 1, (int)g->mg, (int)g->k, (int)cols, 1.0f, dyw, (int)cols, col, (int)cols,
					 1.0f, dw + gi * g->mg * g->k, (int)g->k);
			}
			if (!dx)
				continue;
			pc_sgemm(1, 0, (int)g->k, (int)cols, (int)g->mg, 1.0f, wg, (int)g->k, dyw, (int)cols, 0.0f, col,
				 (int)cols);
			memset(xp, 0, (size_t)(ns * g->cg * plane) * sizeof(float));
			for (int64_t c = 0; c < g->cg; c++)
				for (int64_t i = 0; i < g->kh; i++)
					for (int64_t j = 0; j < g->kw; j++) {
						const float *row = col + ((c * g->kh + i) * g->kw + j) * cols;
						int64_t off = i * g->wp + j, avail = plane - off;
						int64_t len = avail < ocols ? avail : ocols;
						for (int64_t s = 0; s < ns; s++) {
							float *d = xp + (s * g->cg + c) * plane + off;
							const float *r = row + s * ocols;
							for (int64_t q = 0; q < len; q++)
								d[q] += r[q];
						}
					}
			for (int64_t s = 0; s < ns; s++)
				for (int64_t c = 0; c < g->cg; c++) {
					const float *src = xp + (s * g->cg + c) * plane;
					float *dst = dx + ((n0 + s) * g->c + gi * g->cg + c) * g->hw;
					for (int64_t r = 0; r < g->h; r++) {
						int64_t pr = r + g->pt;
						if (pr >= g->hp)
							break;
						for (int64_t q = 0; q < g->w && q + g->pl < g->wp; q++)
							dst[r * g->w + q] += src[pr * g->wp + q + g->pl];
					}
				}
		}
	}
}

/* Samples [n0, n0 + ns) of group gi into xp[c][row][col][lane] with the
 * padding written as zeros, and zero lanes past ns. */
static void lanes_input(const struct conv_geom *g, const float *x, int64_t n0, int64_t ns, int64_t gi, float *xp)
{
	const int64_t lanes = PC_CONV_LANES, sstride = g->c * g->hw;
	int64_t lo, hi;

	valid_range(-g->pl, g->cs, g->w, g->wq, &lo, &hi);
	for (int64_t c = 0; c < g->cg; c++) {
		const float *xc = x + (n0 * g->c + gi * g->cg + c) * g->hw;
		for (int64_t r = 0; r < g->hq; r++) {
			float *d = xp + (c * g->hq + r) * g->wq * lanes;
			int64_t sr = r * g->rs - g->pt;
			if (sr < 0 || sr >= g->h) {
				memset(d, 0, (size_t)(g->wq * lanes) * sizeof(float));
				continue;
			}
			memset(d, 0, (size_t)(lo * lanes) * sizeof(float));
			memset(d + hi * lanes, 0, (size_t)((g->wq - hi) * lanes) * sizeof(float));
			pc_conv_direct_gather(xc + sr * g->w + lo * g->cs - g->pl, sstride, g->cs, ns, hi - lo,
					      d + lo * lanes);
		}
	}
}

/* Forward as Winograd F(2x2, 3x3) on the same layout, PC_CONV_LANES
 * samples at a time; the weights are transformed once per call. */
static void conv_forward_wino(const struct conv_geom *g, const float *x, const float *w, const float *bias, float *y,
			      float *relu, float *ws, float *state, int acc)
{
	const int64_t lanes = PC_CONV_LANES;
	struct pc_wino wi = wino_of(g);
	float *u = ws, *wws = u + pc_conv_wino_u_size(&wi), *yw = wws + pc_conv_wino_ws_size(&wi);
	float *xp = yw + g->mg * g->ohw * lanes;
	size_t wbytes = (size_t)(g->m * g->k) * sizeof(float);

	/* A study runs hundreds of batches on the same weights: transform them
	 * again only when they changed. state = [valid][weights][u]. */
	if (state) {
		u = state + 1 + g->m * g->k;
		if (state[0] != 1.0f || memcmp(state + 1, w, wbytes) != 0) {
			pc_conv_wino_weights(&wi, w, u);
			memcpy(state + 1, w, wbytes);
			state[0] = 1.0f;
		}
	} else {
		pc_conv_wino_weights(&wi, w, u);
	}
	for (int64_t n0 = 0; n0 < g->n; n0 += lanes) {
		int64_t ns = min64(lanes, g->n - n0);
		lanes_input(g, x, n0, ns, 0, xp);
		pc_conv_wino_run(&wi, xp, u, wws, yw);
		for (int64_t m = 0; m < g->m; m++)
			pc_conv_direct_scatter(yw + m * g->ohw * lanes, g->ohw, ns, bias ? bias[m] : 0.0f,
					       y ? y + (n0 * g->m + m) * g->ohw : NULL, g->m * g->ohw,
					       relu ? relu + (n0 * g->m + m) * g->ohw : NULL, acc);
	}
}

/* Forward on the direct kernel (conv_direct.h), PC_CONV_LANES samples at a
 * time: lay the group's input out with the samples in the lanes, run every
 * block of PC_CONV_RM output channels, and copy the rows out with the
 * bias. */
static void conv_forward_direct(const struct conv_geom *g, const float *x, const float *w, const float *bias, float *y,
				float *relu, float *ws, int acc)
{
	const int64_t lanes = PC_CONV_LANES;
	int32_t *tap = (int32_t *)ws, *pos = tap + g->k;
	float *wpk = ws + g->k + g->ohw, *yw = wpk + round_rm(g->mg) * g->k, *xp = yw + PC_CONV_RM * g->ohw * lanes;

	for (int64_t c = 0, t = 0; c < g->cg; c++)
		for (int64_t i = 0; i < g->kh; i++)
			for (int64_t j = 0; j < g->kw; j++, t++)
				tap[t] = (int32_t)(((c * g->hq + i * g->dh) * g->wq + j * g->dw) * lanes);
	for (int64_t oh = 0, q = 0; oh < g->oh; oh++)
		for (int64_t ow = 0; ow < g->ow; ow++, q++)
			pos[q] = (int32_t)((oh * (g->sh / g->rs) * g->wq + ow * (g->sw / g->cs)) * lanes);
	for (int64_t n0 = 0; n0 < g->n; n0 += lanes) {
		int64_t ns = min64(lanes, g->n - n0);
		for (int64_t gi = 0; gi < g->group; gi++) {
			lanes_input(g, x, n0, ns, gi, xp);
			for (int64_t m0 = 0; m0 < g->mg; m0 += PC_CONV_RM)
				pc_conv_direct_pack(w + gi * g->mg * g->k, g->k, m0, min64(PC_CONV_RM, g->mg - m0),
						    wpk + m0 * g->k);
			for (int64_t m0 = 0; m0 < g->mg; m0 += PC_CONV_RM) {
				int64_t rows = min64(PC_CONV_RM, g->mg - m0);
				pc_conv_direct_run(xp, tap, g->k, pos, g->ohw, wpk + m0 * g->k, yw);
				for (int64_t r = 0; r < rows; r++) {
					int64_t m = gi * g->mg + m0 + r;
					float b = bias ? bias[m] : 0.0f;
					pc_conv_direct_scatter(yw + r * g->ohw * lanes, g->ohw, ns, b,
							       y ? y + (n0 * g->m + m) * g->ohw : NULL, g->m * g->ohw,
							       relu ? relu + (n0 * g->m + m) * g->ohw : NULL, acc);
				}
			}
		}
	}
}

/* The portable path: im2col (per chunk of samples) and pc_sgemm. */
static void conv_forward_im2col(const struct conv_geom *g0, const float *x, const float *w, const float *bias, float *y,
				float *ws)
{
	const struct conv_geom g = *g0;

	for (int64_t n0 = 0; n0 < g.n; n0 += g.chunk) {
		int64_t ns = min64(g.chunk, g.n - n0), cols = ns * g.ohw;
		const float *xs = x + n0 * g.c * g.hw;
		float *ys = y + n0 * g.m * g.ohw;
		for (int64_t gi = 0; gi < g.group; gi++) {
			const float *wg = w + gi * g.mg * g.k;
			const float *xg = xs + gi * g.cg * g.hw;
			if (ns == 1) {
				/* straight into the output, bias first */
				float *yg = ys + gi * g.mg * g.ohw;
				const float *col = xg;
				float beta = 0.0f;
				if (!g.direct) {
					im2col(&g, xg, 1, ws);
					col = ws;
				}
				if (bias) {
					for (int64_t m = 0; m < g.mg; m++) {
						float b = bias[gi * g.mg + m];
						for (int64_t q = 0; q < g.ohw; q++)
							yg[m * g.ohw + q] = b;
					}
					beta = 1.0f;
				}
				pc_sgemm(0, 0, (int)g.mg, (int)g.ohw, (int)g.k, 1.0f, wg, (int)g.k, col, (int)g.ohw,
					 beta, yg, (int)g.ohw);
			} else {
				float *col = ws, *prod = ws + g.k * cols;
				im2col(&g, xg, ns, col);
				pc_sgemm(0, 0, (int)g.mg, (int)cols, (int)g.k, 1.0f, wg, (int)g.k, col, (int)cols, 0.0f,
					 prod, (int)cols);
				for (int64_t s = 0; s < ns; s++) {
					for (int64_t m = 0; m < g.mg; m++) {
						float b = bias ? bias[gi * g.mg + m] : 0.0f;
						const float *src = prod + m * cols + s * g.ohw;
						float *dst = ys + (s * g.m + gi * g.mg + m) * g.ohw;
						for (int64_t q = 0; q < g.ohw; q++)
							dst[q] = src[q] + b;
					}
				}
			}
		}
	}
}

void pc_conv_forward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *xt = pc_op_in(p, n, 0), *wt = pc_op_in(p, n, 1), *bt = pc_op_in(p, n, 2);
	struct pc_tensor *yt = pc_op_out(p, n, 0);
	float *ws = pc_op_ws(p), *yd;
	const float *w = wt->data;
	struct conv_geom g;

	if (geometry_of(p, n, &g, NULL))
		return; /* infer proved the shapes; unreachable */
	if (g.crop) {
		crop_weight(&g, wt->data, ws);
		w = ws;
		ws += crop_floats(&g);
	}
	/* with a fused Relu that nothing else needs, store only its output */
	yd = p->relu_out && !p->keep_fused ? NULL : yt->data;
	if (g.dok && g.wino && pc_conv_direct_available()) {
		conv_forward_wino(&g, xt->data, w, bt ? bt->data : NULL, yd, p->relu_out, ws, pc_op_state(p, n), 0);
		return;
	}
	if (g.dok && pc_conv_direct_available()) {
		conv_forward_direct(&g, xt->data, w, bt ? bt->data : NULL, yd, p->relu_out, ws, 0);
		return;
	}
	if (g.wide)
		conv_forward_wide(&g, xt->data, w, bt ? bt->data : NULL, yt->data, ws);
	else
		conv_forward_im2col(&g, xt->data, w, bt ? bt->data : NULL, yt->data, ws);
	/* the fallback paths take a fused Relu as a pass of its own */
	if (p->relu_out)
		for (int64_t i = 0; i < yt->numel; i++)
			p->relu_out[i] = yt->data[i] > 0.0f ? yt->data[i] : 0.0f;
}

static void bias_grad(const struct conv_geom *g, const float *dy, float *db)
{
	for (int64_t m = 0; m < g->m; m++) {
		double acc = 0.0;
		for (int64_t s = 0; s < g->n; s++) {
			const float *r = dy + (s * g->m + m) * g->ohw;
			for (int64_t q = 0; q < g->ohw; q++)
				acc += r[q];
		}
		db[m] += (float)acc;
	}
}

/* dW on the direct kernel: per wgrad_chunks chunks of PC_CONV_LANES
 * samples and group, the inputs in the forward's layout side by side, dY
 * gathered the same way, and pc_conv_direct_wgrad per block of output
 * channels over all their positions. */
static void conv_wgrad_direct(const struct conv_geom *g, const float *x, const float *dy, float *dw, float *ws)
{
	const int64_t lanes = PC_CONV_LANES, nb = wgrad_chunks(g), xin = direct_input(g);
	int32_t *tap = (int32_t *)ws, *pos = tap + g->k;
	float *dyl = ws + g->k + nb * g->ohw, *xp = dyl + PC_CONV_RM * nb * g->ohw * lanes;

	for (int64_t c = 0, t = 0; c < g->cg; c++)
		for (int64_t i = 0; i < g->kh; i++)
			for (int64_t j = 0; j < g->kw; j++, t++)
				tap[t] = (int32_t)(((c * g->hq + i * g->dh) * g->wq + j * g->dw) * lanes);
	for (int64_t b = 0, q = 0; b < nb; b++)
		for (int64_t oh = 0; oh < g->oh; oh++)
			for (int64_t ow = 0; ow < g->ow; ow++, q++)
				pos[q] = (int32_t)(b * xin +
						   (oh * (g->sh / g->rs) * g->wq + ow * (g->sw / g->cs)) * lanes);
	for (int64_t n0 = 0; n0 < g->n; n0 += nb * lanes) {
		int64_t nc = min64(nb, (g->n - n0 + lanes - 1) / lanes), npos = nc * g->ohw;
		for (int64_t gi = 0; gi < g->group; gi++) {
			for (int64_t b = 0; b < nc; b++)
				lanes_input(g, x, n0 + b * lanes, min64(lanes, g->n - n0 - b * lanes), gi, xp + b * xin);
			for (int64_t m0 = 0; m0 < g->mg; m0 += PC_CONV_RM) {
				int64_t rows = min64(PC_CONV_RM, g->mg - m0);
				for (int64_t r = 0; r < rows; r++)
					for (int64_t b = 0; b < nc; b++)
						pc_conv_direct_gather(
						    dy + ((n0 + b * lanes) * g->m + gi * g->mg + m0 + r) * g->ohw,
						    g->m * g->ohw, 1, min64(lanes, g->n - n0 - b * lanes), g->ohw,
						    dyl + (r * npos + b * g->ohw) * lanes);
				pc_conv_direct_wgrad(xp, tap, g->k, pos, npos, dyl, rows,
						     dw + (gi * g->mg + m0) * g->k);
			}
		}
	}
}

/* dW += and dX += of the convolution g of x with w (either may be NULL). */
static void conv_backward(const struct pc_node *n, const struct conv_geom *gp, const float *x, const float *w,
			  const float *dy, float *dw, float *dx, float *ws)
{
	const struct conv_geom g = *gp;

	if (dx && pc_conv_direct_available()) {
		struct conv_geom t;
		if (transposed_geometry(n, &g, &t)) {
			/* the flipped, transposed kernel after the kernel's workspace */
			float *wf = ws + direct_ws(&t);
			for (int64_t m = 0; m < g.m; m++)
				for (int64_t c = 0; c < g.c; c++)
					for (int64_t i = 0; i < g.kh; i++)
						for (int64_t j = 0; j < g.kw; j++)
							wf[((c * g.m + m) * g.kh + i) * g.kw + j] =
							    w[((m * g.c + c) * g.kh + (g.kh - 1 - i)) * g.kw +
							      (g.kw - 1 - j)];
			if (t.wino)
				conv_forward_wino(&t, dy, wf, NULL, dx, NULL, ws, NULL, 1);
			else
				conv_forward_direct(&t, dy, wf, NULL, dx, NULL, ws, 1);
			dx = NULL;
			if (!dw)
				return;
		}
	}
	if (dw && g.dok && pc_conv_direct_wgrad_available()) {
		conv_wgrad_direct(&g, x, dy, dw, ws);
		dw = NULL;
		if (!dx)
			return;
	}
	if (g.wide) {
		conv_backward_wide(&g, x, w, dy, dw, dx, ws);
		return;
	}
	for (int64_t n0 = 0; n0 < g.n; n0 += g.chunk) {
		int64_t ns = min64(g.chunk, g.n - n0), cols = ns * g.ohw;
		const float *xs = x + n0 * g.c * g.hw;
		const float *dys = dy + n0 * g.m * g.ohw;
		float *dxs = dx ? dx + n0 * g.c * g.hw : NULL;
		for (int64_t gi = 0; gi < g.group; gi++) {
			const float *wg = w + gi * g.mg * g.k;
			float *dwg = dw ? dw + gi * g.mg * g.k : NULL;
			const float *xg = xs + gi * g.cg * g.hw;
			float *dxg = dxs ? dxs + gi * g.cg * g.hw : NULL;
			const float *dyg;
			int ld;
			if (ns == 1) {
				dyg = dys + gi * g.mg * g.ohw;
				ld = (int)g.ohw;
				if (g.direct) {
					if (dwg)
						pc_sgemm(0, 1, (int)g.mg, (int)g.k, ld, 1.0f, dyg, ld, xg, ld, 1.0f,
							 dwg, (int)g.k);
					if (dxg)
						pc_sgemm(1, 0, (int)g.k, ld, (int)g.mg, 1.0f, wg, (int)g.k, dyg, ld,
							 1.0f, dxg, ld);
					continue;
				}
			} else {
				/* gather this group's dY rows into [mg, cols] after the columns */
				float *prod = ws + g.k * cols;
				for (int64_t s = 0; s < ns; s++)
					for (int64_t m = 0; m < g.mg; m++)
						memcpy(prod + m * cols + s * g.ohw,
						       dys + (s * g.m + gi * g.mg + m) * g.ohw,
						       (size_t)g.ohw * sizeof(float));
				dyg = prod;
				ld = (int)cols;
			}
			if (dwg) {
				im2col(&g, xg, ns, ws);
				pc_sgemm(0, 1, (int)g.mg, (int)g.k, ld, 1.0f, dyg, ld, ws, ld, 1.0f, dwg, (int)g.k);
			}
			if (dxg) {
				pc_sgemm(1, 0, (int)g.k, ld, (int)g.mg, 1.0f, wg, (int)g.k, dyg, ld, 0.0f, ws, ld);
				col2im_add(&g, ws, ns, dxg);
			}
		}
	}
}

void pc_conv_backward(struct pc_plan *p, const struct pc_node *n)
{
	const struct pc_tensor *xt = pc_op_in(p, n, 0), *wt = pc_op_in(p, n, 1), *bt = pc_op_in(p, n, 2);
	const struct pc_tensor *yt = pc_op_out(p, n, 0);
	float *ws = pc_op_ws(p), *dwc;
	struct conv_geom g;

	if (!yt->grad || geometry_of(p, n, &g, NULL))
		return;
	if (bt && bt->grad)
		bias_grad(&g, yt->grad, bt->grad);
	if (!wt->grad && !xt->grad)
		return;
	if (!g.crop) {
		conv_backward(n, &g, xt->data, wt->data, yt->grad, wt->grad, xt->grad, ws);
		return;
	}
	/* the cropped kernel's weight and gradient, then its workspace */
	dwc = ws + crop_floats(&g) / 2;
	crop_weight(&g, wt->data, ws);
	if (wt->grad)
		memset(dwc, 0, (size_t)(g.m * g.k) * sizeof(float));
	conv_backward(n, &g, xt->data, ws, yt->grad, wt->grad ? dwc : NULL, xt->grad, ws + crop_floats(&g));
	if (wt->grad)
		crop_grad_add(&g, dwc, wt->grad);
}
