/* gates (plan.h, pc_plan_set_gates): a pass in PC_GATES_RECORD computes
 * what an ordinary pass does, bit for bit, and a pass in PC_GATES_FROZEN
 * at other inputs follows the recorded pieces of Relu, LeakyRelu and Clip
 * and the recorded argmax of MaxPool, in forward and backward. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "onnx_build.h"
#include "paracorr/onnx.h"
#include "paracorr/plan.h"
#include "test.h"

enum gate_op { G_RELU, G_LEAKY, G_CLIP, G_MAXPOOL_3S2, G_MAXPOOL_2S2 };

struct gate_case {
	const char *label;
	enum gate_op op;
};

#define GN 2
#define GC 3
#define GH 7
#define GW 8

static struct pc_graph *gate_graph(enum gate_op op, struct pc_error *err)
{
	static const int64_t dims[4] = {-1, GC, GH, GW}, scalar[1] = {1};
	static const float lo = 0.0f, hi = 1.5f;
	int64_t ks[2], st[2] = {2, 2}, pads[4] = {1, 1, 1, 1};
	static const char *const in1[] = {"x", NULL}, *const clip_in[] = {"x", "lo", "hi", NULL};
	/* the gated op makes z; the model's output must be [N, classes] */
	static const char *const out[] = {"z", NULL}, *const flat_in[] = {"z", NULL}, *const flat_out[] = {"y", NULL};
	struct ob_model b;
	struct pc_graph *g = NULL;
	unsigned char *buf;
	size_t len;
	Onnx__NodeProto *n;

	ob_init(&b, 13, "x", 4, dims, "y");
	switch (op) {
	case G_RELU:
		ob_node(&b, "Relu", "g", in1, out);
		break;
	case G_LEAKY:
		ob_node(&b, "LeakyRelu", "g", in1, out);
		break;
	case G_CLIP:
		ob_float(&b, "lo", 0, scalar, &lo);
		ob_float(&b, "hi", 0, scalar, &hi);
		ob_node(&b, "Clip", "g", clip_in, out);
		break;
	case G_MAXPOOL_3S2:
	case G_MAXPOOL_2S2: {
		/* the builder borrows the attributes' values until ob_pack */
		int64_t k = op == G_MAXPOOL_3S2 ? 3 : 2;
		ks[0] = ks[1] = k;
		n = ob_node(&b, "MaxPool", "g", in1, out);
		ob_attr_ints(n, &b, "kernel_shape", 2, ks);
		ob_attr_ints(n, &b, "strides", 2, st);
		if (op == G_MAXPOOL_3S2)
			ob_attr_ints(n, &b, "pads", 4, pads);
		break;
	}
	}
	ob_node(&b, "Flatten", "flat", flat_in, flat_out);
	buf = ob_pack(&b, &len);
	if (!buf)
		return NULL;
	pc_onnx_load_buffer(buf, len, &g, err);
	free(buf);
	return g;
}

/* The frozen output and input gradient of element i (or output o) from
 * the reference input x0 and the new one x1, computed here the slow way. */
static float piece(enum gate_op op, float x0, float x1, float *slope)
{
	switch (op) {
	case G_RELU:
		*slope = x0 > 0 ? 1.0f : 0.0f;
		return x0 > 0 ? x1 : 0.0f;
	case G_LEAKY:
		*slope = x0 > 0 ? 1.0f : 0.01f;
		return x0 > 0 ? x1 : 0.01f * x1;
	default: /* Clip(0, 1.5) */
		*slope = x0 > 0.0f && x0 < 1.5f ? 1.0f : 0.0f;
		return x0 < 0.0f ? 0.0f : x0 > 1.5f ? 1.5f : x1;
	}
}

/* Index in its plane of the first maximum of output (oh, ow)'s window. */
static int64_t argmax_slow(const float *plane, int k, int pad, int64_t oh, int64_t ow)
{
	int64_t best = -1;

	for (int i = 0; i < k; i++)
		for (int j = 0; j < k; j++) {
			int64_t r = oh * 2 - pad + i, c = ow * 2 - pad + j;
			if (r < 0 || r >= GH || c < 0 || c >= GW)
				continue;
			if (best < 0 || plane[r * GW + c] > plane[best])
				best = r * GW + c;
		}
	return best;
}

TEST(gates_record_is_the_ordinary_pass_and_frozen_follows_it)
{
	static const struct gate_case cases[] = {{"Relu", G_RELU},
						 {"LeakyRelu", G_LEAKY},
						 {"Clip", G_CLIP},
						 {"MaxPool 3x3 s2 p1", G_MAXPOOL_3S2},
						 {"MaxPool 2x2 s2", G_MAXPOOL_2S2}};
	const int64_t nx = GN * GC * GH * GW;
	float *x0 = malloc(nx * sizeof(float)), *x1 = malloc(nx * sizeof(float)), *d = malloc(nx * sizeof(float));

	REQUIRE(x0 && x1 && d);
	gc_fill(x0, nx, 1, -1.0f, 2.0f);
	gc_fill(d, nx, 2, -0.6f, 0.6f);
	for (int64_t i = 0; i < nx; i++)
		x1[i] = x0[i] + d[i]; /* big enough to cross many kinks */
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const struct gate_case *gc = &cases[c];
		struct pc_error err = {0};
		struct pc_graph *g = gate_graph(gc->op, &err);
		struct pc_plan *p;
		int64_t ny;
		float *y_off, *dx_off;
		int crossed = 0;
		REQUIRE_MSG(g, "%s: %s", gc->label, err.text);
		p = pc_plan_new(g, GN, PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD, &err);
		REQUIRE_MSG(p, "%s", gc->label);
		{
			struct pc_plan_value v;
			REQUIRE(pc_plan_value(p, "y", &v, &err) == 0);
			ny = v.numel;
		}
		CHECK(pc_plan_gate_bytes(p) == (size_t)ny * (gc->op >= G_MAXPOOL_3S2 ? sizeof(int64_t) : 1));
		y_off = malloc(ny * sizeof(float));
		dx_off = malloc(nx * sizeof(float));
		REQUIRE(y_off && dx_off);
		/* the ordinary pass at x0 */
		memcpy(pc_plan_input(p), x0, nx * sizeof(float));
		pc_plan_forward(p);
		memcpy(y_off, pc_plan_output(p), ny * sizeof(float));
		gc_fill(pc_plan_output_grad(p), ny, 3, -1.0f, 1.0f);
		pc_plan_backward(p);
		memcpy(dx_off, pc_plan_input_grad(p), nx * sizeof(float));
		/* recording changes nothing */
		REQUIRE(pc_plan_set_gates(p, PC_GATES_RECORD, &err) == 0);
		pc_plan_forward(p);
		CHECK_MSG(memcmp(pc_plan_output(p), y_off, ny * sizeof(float)) == 0, "%s: record forward", gc->label);
		gc_fill(pc_plan_output_grad(p), ny, 3, -1.0f, 1.0f);
		pc_plan_backward(p);
		CHECK_MSG(memcmp(pc_plan_input_grad(p), dx_off, nx * sizeof(float)) == 0, "%s: record backward",
			  gc->label);
		/* frozen at x1: x0's pieces */
		REQUIRE(pc_plan_set_gates(p, PC_GATES_FROZEN, &err) == 0);
		memcpy(pc_plan_input(p), x1, nx * sizeof(float));
		pc_plan_forward(p);
		gc_fill(pc_plan_output_grad(p), ny, 3, -1.0f, 1.0f);
		pc_plan_backward(p);
		if (gc->op < G_MAXPOOL_3S2) {
			for (int64_t i = 0; i < nx; i++) {
				float slope, want = piece(gc->op, x0[i], x1[i], &slope), dummy;
				crossed += piece(gc->op, x1[i], x1[i], &dummy) != want;
				CHECK_MSG(pc_plan_output(p)[i] == want, "%s: y[%lld] %g, want %g", gc->label,
					  (long long)i, pc_plan_output(p)[i], want);
				CHECK_MSG(pc_plan_input_grad(p)[i] == slope * pc_plan_output_grad(p)[i],
					  "%s: dx[%lld]", gc->label, (long long)i);
			}
		} else {
			int k = gc->op == G_MAXPOOL_3S2 ? 3 : 2, pad = gc->op == G_MAXPOOL_3S2 ? 1 : 0;
			int64_t per_plane = ny / (GN * GC), ohh = gc->op == G_MAXPOOL_3S2 ? 4 : 3;
			int64_t oww = per_plane / ohh;
			float *want_dx = calloc(nx, sizeof(float));
			REQUIRE(want_dx);
			for (int64_t pl = 0; pl < GN * GC; pl++)
				for (int64_t a = 0; a < ohh; a++)
					for (int64_t bb = 0; bb < oww; bb++) {
						int64_t o = pl * ohh * oww + a * oww + bb;
						int64_t at0 = argmax_slow(x0 + pl * GH * GW, k, pad, a, bb);
						int64_t at1 = argmax_slow(x1 + pl * GH * GW, k, pad, a, bb);
						crossed += at0 != at1;
						CHECK_MSG(pc_plan_output(p)[o] == x1[pl * GH * GW + at0], "%s: y[%lld]",
							  gc->label, (long long)o);
						want_dx[pl * GH * GW + at0] += pc_plan_output_grad(p)[o];
					}
			for (int64_t i = 0; i < nx; i++)
				CHECK_MSG(pc_plan_input_grad(p)[i] == want_dx[i], "%s: dx[%lld]", gc->label, (long long)i);
			free(want_dx);
		}
		/* the case means something only where pieces changed */
		CHECK_MSG(crossed > 5, "%s: only %d elements changed piece", gc->label, crossed);
		/* off again: the ordinary pass, and its gate storage gone */
		REQUIRE(pc_plan_set_gates(p, PC_GATES_OFF, &err) == 0);
		memcpy(pc_plan_input(p), x0, nx * sizeof(float));
		pc_plan_forward(p);
		CHECK_MSG(memcmp(pc_plan_output(p), y_off, ny * sizeof(float)) == 0, "%s: off forward", gc->label);
		free(y_off);
		free(dx_off);
		pc_plan_free(p);
		pc_graph_free(g);
	}
	free(x0);
	free(x1);
	free(d);
}
