/* Tests of the storage formats and single-bit faults (core/faults.c).
 *
 * Every expected code below is computed by hand from the IEEE 754 layouts
 * (float16: 1-5-10, bfloat16: 1-8-7) and written as a literal, so the tests
 * do not lean on the conversions under test or on the machine's own. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/faults.h"
#include "allocfail.h"
#include "paracorr/graph.h"
#include "test.h"

static float f(uint32_t u)
{
	return pc_faults_bits_f32(u);
}

#define CHECK_F16(x, want) CHECK_INT(pc_faults_f32_to_f16(x), want)
#define CHECK_BF16(x, want) CHECK_INT(pc_faults_f32_to_bf16(x), want)

TEST(faults_f16_round_nearest_even)
{
	CHECK_F16(1.0f, 0x3c00);
	CHECK_F16(-2.0f, 0xc000);
	CHECK_F16(f(0x3f801000), 0x3c00); /* 1 + 2^-11: tie, to even 1 */
	CHECK_F16(f(0x3f801001), 0x3c01); /* just above the tie */
	CHECK_F16(f(0x3f803000), 0x3c02); /* 1 + 3*2^-11: tie, odd 0x3c01 goes up */
	CHECK_F16(f(0x3f802fff), 0x3c01);
	CHECK_F16(0.1f, 0x2e66);
	CHECK_F16(0.0f, 0x0000);
	CHECK_F16(-0.0f, 0x8000);
	/* a carry out of the mantissa moves to the next binade: 2 - 2^-11, the
	 * tie between 2 - 2^-10 (odd) and 2 */
	CHECK_F16(f(0x3ffff000), 0x4000);
}

TEST(faults_f16_overflow_nan)
{
	CHECK_F16(65504.0f, 0x7bff);
	CHECK_F16(f(0x477fefff), 0x7bff); /* just under 65520 */
	CHECK_F16(65520.0f, 0x7c00);	  /* the tie above the largest finite: inf */
	CHECK_F16(1e6f, 0x7c00);
	CHECK_F16(-1e30f, 0xfc00);
	CHECK_F16(f(0x7f800000), 0x7c00);
	CHECK_F16(f(0xff800000), 0xfc00);
	CHECK_F16(f(0x7fc00000), 0x7e00);
	CHECK_F16(f(0xffc00000), 0xfe00);
	/* a signalling NaN whose payload sits below float16's mantissa must
	 * not become inf */
	CHECK_F16(f(0x7f800001), 0x7e00);
}

TEST(faults_f16_subnormal)
{
	CHECK_F16(f(0x33800000), 0x0001); /* 2^-24, the smallest subnormal */
	CHECK_F16(f(0x33000000), 0x0000); /* 2^-25: tie, to even zero */
	CHECK_F16(f(0x33000001), 0x0001); /* just above it */
	CHECK_F16(f(0x33c00000), 0x0002); /* 1.5 * 2^-24: tie, to even 2 */
	CHECK_F16(f(0x34200000), 0x0002); /* 2.5 * 2^-24: tie, to even 2 */
	CHECK_F16(f(0x387fc000), 0x03ff); /* the largest subnormal, 1023 units */
	CHECK_F16(f(0x387f8000), 0x03fe);
	CHECK_F16(f(0x387fe000), 0x0400); /* 1023.5 units: tie, up to the smallest normal */
	CHECK_F16(f(0x38800000), 0x0400); /* 2^-14 */
	CHECK_F16(f(0xb3800000), 0x8001);
	CHECK_F16(f(0x32ffffff), 0x0000);
	CHECK_F16(f(0x00000001), 0x0000); /* a float32 subnormal */
	CHECK_F16(f(0x80000001), 0x8000);
}

TEST(faults_f16_decode)
{
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x3c00)), 0x3f800000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x0001)), 0x33800000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x03ff)), 0x387fc000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x0200)), 0x38000000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x8000)), 0x80000000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x7bff)), 0x477fe000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x7c00)), 0x7f800000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0xfc00)), 0xff800000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_f16_to_f32(0x3555)), 0x3eaaa000);
	CHECK(isnan(pc_faults_f16_to_f32(0x7c01)));
	/* every finite and infinite code survives the round trip */
	for (uint32_t h = 0; h < 0x10000; h++) {
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue;
		CHECK_INT(pc_faults_f32_to_f16(pc_faults_f16_to_f32((uint16_t)h)), h);
	}
}

TEST(faults_bf16_codes)
{
	CHECK_BF16(1.0f, 0x3f80);
	CHECK_BF16(f(0x3f808000), 0x3f80); /* 1 + 2^-8: tie, to even */
	CHECK_BF16(f(0x3f818000), 0x3f82); /* tie from odd 0x3f81: up */
	CHECK_BF16(f(0x3f808001), 0x3f81);
	CHECK_BF16(f(0x7f7f7fff), 0x7f7f);
	CHECK_BF16(f(0x7f7f8000), 0x7f80); /* tie above the largest finite: inf */
	CHECK_BF16(f(0x7f7fffff), 0x7f80);
	CHECK_BF16(f(0xff7fffff), 0xff80);
	CHECK_BF16(f(0x00018000), 0x0002); /* subnormal tie from odd: up */
	CHECK_BF16(f(0x00008000), 0x0000); /* subnormal tie from even zero */
	CHECK_BF16(f(0x00008001), 0x0001);
	CHECK_BF16(f(0x7f800000), 0x7f80);
	CHECK_BF16(f(0x7f800001), 0x7fc0); /* a NaN stays a NaN, not inf */
	CHECK_BF16(f(0xffffffff), 0xffff);
	CHECK_INT(pc_faults_f32_bits(pc_faults_bf16_to_f32(0x3f81)), 0x3f810000);
	CHECK_INT(pc_faults_f32_bits(pc_faults_bf16_to_f32(0x8001)), 0x80010000);
}

TEST(faults_int8_quantize)
{
	CHECK_INT(pc_faults_quantize(2.5f, 1.0f), 2);
	CHECK_INT(pc_faults_quantize(3.5f, 1.0f), 4);
	CHECK_INT(pc_faults_quantize(-2.5f, 1.0f), -2);
	CHECK_INT(pc_faults_quantize(0.5f, 1.0f), 0);
	CHECK_INT(pc_faults_quantize(-0.5f, 1.0f), 0);
	CHECK_INT(pc_faults_quantize(1.5f, 1.0f), 2);
	CHECK_INT(pc_faults_quantize(127.0f, 1.0f), 127);
	CHECK_INT(pc_faults_quantize(127.5f, 1.0f), 127);
	CHECK_INT(pc_faults_quantize(200.0f, 1.0f), 127);
	CHECK_INT(pc_faults_quantize(-200.0f, 1.0f), -127); /* never -128 */
	CHECK_INT(pc_faults_quantize(-1.25f, 0.5f), -2);    /* -2.5: tie to even */
	CHECK_INT(pc_faults_quantize(3.0f, 0.0f), 0);
}

/* x[-1,2] -> Gemm(W1[4,2] transB=1, b1) -> MatMul(W2[4,3]) -> Gemm(W3[3,3],
 * b3) -> y; and W2 read by MatMul as input 1 only. */
static struct pc_graph *dense_graph(struct pc_error *err)
{
	static const float w1[8] = {127.0f, -2.5f, 3.5f, -4.0f, 5.0f, 6.0f, -7.0f, 8.0f};
	static const float b1[4] = {0.25f, -1.0f, 2.0f, 3.0f};
	static const float w2[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	static const float w3[9] = {1.0f, 0.0f, 0.0f, 0.0f, -0.5f, 0.0f, 0.0f, 0.0f, 0.0f};
	static const float b3[3] = {1.0f, 2.0f, 3.0f};
	struct pc_shape in = {2, {-1, 2}}, s1 = {2, {4, 2}}, v4 = {1, {4}}, s2 = {2, {4, 3}}, s3 = {2, {3, 3}},
			v3 = {1, {3}};
	const char *n0[] = {"x", "W1", "b1"}, *o0[] = {"h1"};
	const char *n1[] = {"h1", "W2"}, *o1[] = {"h2"};
	const char *n2[] = {"h2", "W3", "b3"}, *o2[] = {"y"};
	struct pc_attr tb = {.name = "transB", .type = PC_ATTR_INT, .i = 1};
	struct pc_graph *g = pc_graph_new(17, err);

	if (!g)
		return NULL;
	if (pc_graph_add_input(g, "x", &in, err) || pc_graph_add_float(g, "W1", &s1, w1, err) ||
	    pc_graph_add_float(g, "b1", &v4, b1, err) || pc_graph_add_float(g, "W2", &s2, w2, err) ||
	    pc_graph_add_float(g, "W3", &s3, w3, err) || pc_graph_add_float(g, "b3", &v3, b3, err) ||
	    pc_graph_add_node(g, "Gemm", "fc1", 3, n0, 1, o0, 1, &tb, err) ||
	    pc_graph_add_node(g, "MatMul", "mm", 2, n1, 1, o1, 0, NULL, err) ||
	    pc_graph_add_node(g, "Gemm", "fc3", 3, n2, 1, o2, 0, NULL, err) || pc_graph_add_output(g, "y", err) ||
	    pc_graph_finish(g, err)) {
		pc_graph_free(g);
		return NULL;
	}
	return g;
}

TEST(faults_quantizable_axes)
{
	struct pc_error err = {0};
	struct pc_graph *g = dense_graph(&err);
	int axis = -9;

	REQUIRE_MSG(g, "%s", err.text);
	CHECK(pc_faults_quantizable(g, pc_graph_find_param(g, "W1"), &axis));
	CHECK_INT(axis, 0); /* Gemm, transB = 1: B is [N, K] */
	CHECK(pc_faults_quantizable(g, pc_graph_find_param(g, "W2"), &axis));
	CHECK_INT(axis, 1); /* MatMul: the last axis */
	CHECK(pc_faults_quantizable(g, pc_graph_find_param(g, "W3"), &axis));
	CHECK_INT(axis, 1); /* Gemm, transB = 0: B is [K, N] */
	CHECK(!pc_faults_quantizable(g, pc_graph_find_param(g, "b1"), &axis));
	CHECK(!pc_faults_quantizable(g, pc_graph_find_param(g, "b3"), &axis));
	pc_graph_free(g);
}

TEST(faults_quantizable_conv)
{
	struct pc_error err = {0};
	struct pc_graph *g = pc_graph_new(17, &err);
	struct pc_shape in = {4, {-1, 1, 1, 1}}, sw = {4, {2, 1, 1, 1}}, sb = {1, {2}};
	static const float w[2] = {0.5f, -1.0f}, b[2] = {0.0f, 1.0f};
	const char *n0[] = {"x", "W", "B"}, *o0[] = {"c"}, *n1[] = {"c"}, *o1[] = {"y"};
	int axis = -9;

	REQUIRE(g);
	if (pc_graph_add_input(g, "x", &in, &err) || pc_graph_add_float(g, "W", &sw, w, &err) ||
	    pc_graph_add_float(g, "B", &sb, b, &err) || pc_graph_add_node(g, "Conv", "conv", 3, n0, 1, o0, 0, NULL, &err) ||
	    pc_graph_add_node(g, "Flatten", "flat", 1, n1, 1, o1, 0, NULL, &err) ||
	    pc_graph_add_output(g, "y", &err) || pc_graph_finish(g, &err)) {
		pc_graph_free(g);
		REQUIRE_MSG(0, "%s", err.text);
	}
	CHECK(pc_faults_quantizable(g, pc_graph_find_param(g, "W"), &axis));
	CHECK_INT(axis, 0);
	CHECK(!pc_faults_quantizable(g, pc_graph_find_param(g, "B"), &axis));
	pc_graph_free(g);
}

TEST(faults_int8_per_tensor)
{
	struct pc_error err = {0};
	struct pc_graph *g = dense_graph(&err);
	struct pc_faults_store *s = NULL;
	static const int8_t q1[8] = {127, -2, 4, -4, 5, 6, -7, 8};
	int p1, pb, n_t = 0, all[5];
	const struct pc_param *w1;
	int64_t ns = 0;
	const float *sc;
	float v = 0;

	REQUIRE_MSG(g, "%s", err.text);
	REQUIRE(pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR, &s, &err) == 0);
	p1 = pc_graph_find_param(g, "W1");
	pb = pc_graph_find_param(g, "b1");
	w1 = pc_graph_param(g, p1);
	sc = pc_faults_scales(s, p1, &ns);
	REQUIRE(sc && ns == 1);
	CHECK_INT(pc_faults_f32_bits(sc[0]), 0x3f800000); /* 127 / 127 */
	CHECK_INT(pc_faults_axis(s, p1), -1);
	for (int j = 0; j < 8; j++) {
		CHECK_INT(pc_faults_code(s, w1->offset + j), (uint8_t)q1[j]);
		CHECK_INT(pc_faults_f32_bits(pc_faults_value(s, w1->offset + j)), pc_faults_f32_bits((float)q1[j]));
	}
	/* the sign bit of 5 (0000 0101) gives 1000 0101 = -123 */
	CHECK(pc_faults_flipped_value(s, w1->offset + 4, 7, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(-123.0f));
	CHECK_INT(pc_faults_code(s, w1->offset + 4), 0x05); /* unchanged */
	REQUIRE(pc_faults_flip(s, w1->offset + 4, 7, &v, &err) == 0);
	CHECK_INT(pc_faults_code(s, w1->offset + 4), 0x85);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(-123.0f));
	REQUIRE(pc_faults_flip(s, w1->offset + 4, 7, &v, &err) == 0);
	CHECK_INT(pc_faults_code(s, w1->offset + 4), 0x05);
	/* 127 = 0111 1111: its sign bit gives 1111 1111 = -1; bit 0 of 5 gives 4 */
	CHECK(pc_faults_flipped_value(s, w1->offset + 0, 7, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(-1.0f));
	CHECK(pc_faults_flipped_value(s, w1->offset + 4, 0, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(4.0f));
	/* -4 = 1111 1100: bit 6 gives 1011 1100 = -68 */
	CHECK(pc_faults_flipped_value(s, w1->offset + 3, 6, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(-68.0f));

	/* biases are protected: float32 bits, no exposed bit */
	CHECK_INT(pc_faults_tensor_bits(s, pb), 0);
	CHECK_INT(pc_faults_tensor_bits(s, p1), 8);
	CHECK(pc_faults_scales(s, pb, &ns) == NULL && ns == 0);
	CHECK_INT(pc_faults_f32_bits(pc_faults_value(s, pc_graph_param(g, pb)->offset)), 0x3e800000);
	err = (struct pc_error){0};
	CHECK_INT(pc_faults_flip(s, pc_graph_param(g, pb)->offset, 0, &v, &err), PC_ERR_INVALID);
	err = (struct pc_error){0};
	CHECK_INT(pc_faults_flip(s, w1->offset, 8, &v, &err), PC_ERR_INVALID);
	err = (struct pc_error){0};
	CHECK_INT(pc_faults_flip(s, pc_graph_param_count(g), 0, &v, &err), PC_ERR_INVALID);

	for (int p = 0; p < 5; p++)
		all[p] = p;
	CHECK_INT(pc_faults_exposed_bits(s, all, 5, &n_t), (8 + 12 + 9) * 8);
	CHECK_INT(n_t, 3);
	pc_faults_store_free(s);
	pc_graph_free(g);
}

TEST(faults_int8_per_channel)
{
	struct pc_error err = {0};
	struct pc_graph *g = dense_graph(&err);
	struct pc_faults_store *s = NULL;
	/* W1 rows (axis 0): {127, -2.5} max 127, {3.5, -4} max 4, {5, 6} max 6,
	 * {-7, 8} max 8: 3.5*127/4 = 111.125, 5*127/6 = 105.8, 7*127/8 = 111.1 */
	static const int8_t q1[8] = {127, -2, 111, -127, 106, 127, -111, 127};
	/* W2 columns (axis 1): maxima 10, 11, 12; 1*127/10 = 12.7, 2*127/11 =
	 * 23.1, 3*127/12 = 31.75, 4*127/10 = 50.8, 5*127/11 = 57.7, 6*127/12 =
	 * 63.5 (exactly, in float too: a tie, to even 64), 7*127/10 = 88.9,
	 * 8*127/11 = 92.4, 9*127/12 = 95.25 */
	static const int8_t q2[12] = {13, 23, 32, 51, 58, 64, 89, 92, 95, 127, 127, 127};
	const struct pc_param *w1, *w2;
	int p1, p2, p3;
	int64_t ns = 0;
	const float *sc;
	float *dec;

	REQUIRE_MSG(g, "%s", err.text);
	REQUIRE(pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_INT8, PC_FAULTS_PER_CHANNEL, &s, &err) == 0);
	p1 = pc_graph_find_param(g, "W1");
	p2 = pc_graph_find_param(g, "W2");
	p3 = pc_graph_find_param(g, "W3");
	w1 = pc_graph_param(g, p1);
	w2 = pc_graph_param(g, p2);
	CHECK_INT(pc_faults_axis(s, p1), 0);
	CHECK_INT(pc_faults_axis(s, p2), 1);
	CHECK_INT(pc_faults_axis(s, p3), 1);
	sc = pc_faults_scales(s, p1, &ns);
	REQUIRE(sc && ns == 4);
	CHECK_INT(pc_faults_f32_bits(sc[0]), pc_faults_f32_bits(1.0f));
	CHECK_INT(pc_faults_f32_bits(sc[1]), pc_faults_f32_bits(4.0f / 127.0f));
	CHECK_INT(pc_faults_f32_bits(sc[3]), pc_faults_f32_bits(8.0f / 127.0f));
	for (int j = 0; j < 8; j++)
		CHECK_INT(pc_faults_code(s, w1->offset + j), (uint8_t)q1[j]);
	sc = pc_faults_scales(s, p2, &ns);
	REQUIRE(sc && ns == 3);
	CHECK_INT(pc_faults_f32_bits(sc[2]), pc_faults_f32_bits(12.0f / 127.0f));
	for (int j = 0; j < 12; j++)
		CHECK_INT(pc_faults_code(s, w2->offset + j), (uint8_t)q2[j]);
	/* W3's column 2 is all zero: scale 0, every code 0 */
	sc = pc_faults_scales(s, p3, &ns);
	REQUIRE(sc && ns == 3);
	CHECK_INT(pc_faults_f32_bits(sc[2]), 0);

	/* decode: q * its channel's scale, biases bit for bit */
	dec = calloc((size_t)pc_graph_param_count(g), sizeof *dec);
	REQUIRE(dec);
	pc_faults_decode(s, dec);
	CHECK_INT(pc_faults_f32_bits(dec[w1->offset + 2]), pc_faults_f32_bits(111.0f * (4.0f / 127.0f)));
	CHECK_INT(pc_faults_f32_bits(dec[w2->offset + 4]), pc_faults_f32_bits(58.0f * (11.0f / 127.0f)));
	CHECK_INT(pc_faults_f32_bits(dec[pc_graph_param(g, pc_graph_find_param(g, "b3"))->offset + 2]),
		  pc_faults_f32_bits(3.0f));
	for (int64_t i = 0; i < pc_graph_param_count(g); i++)
		CHECK_INT(pc_faults_f32_bits(dec[i]), pc_faults_f32_bits(pc_faults_value(s, i)));
	free(dec);
	pc_faults_store_free(s);
	pc_graph_free(g);
}

TEST(faults_float_formats_flip)
{
	struct pc_error err = {0};
	struct pc_graph *g = dense_graph(&err);
	struct pc_faults_store *s = NULL;
	int pb, p1, n_t = 0, all[5];
	int64_t b1;
	float v = 0;
	float *dec;

	REQUIRE_MSG(g, "%s", err.text);
	for (int p = 0; p < 5; p++)
		all[p] = p;
	pb = pc_graph_find_param(g, "b1");
	p1 = pc_graph_find_param(g, "W1");
	b1 = pc_graph_param(g, pb)->offset; /* b1 = {0.25, -1, 2, 3} */

	REQUIRE(pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_FLOAT32, PC_FAULTS_PER_TENSOR, &s, &err) == 0);
	CHECK_INT(pc_faults_exposed_bits(s, all, 5, &n_t), 36 * 32);
	CHECK_INT(n_t, 5);
	CHECK_INT(pc_faults_code(s, b1 + 1), 0xbf800000);
	/* -1 = 0xbf800000: bit 30 gives 0xff800000 = -inf, bit 31 gives +1 */
	CHECK(pc_faults_flipped_value(s, b1 + 1, 30, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), 0xff800000);
	CHECK(pc_faults_flipped_value(s, b1 + 1, 31, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), 0x3f800000);
	CHECK(pc_faults_flipped_value(s, b1 + 1, 0, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), 0xbf800001);
	/* float32 is the weights' own bits: decoding is the identity */
	dec = calloc((size_t)pc_graph_param_count(g), sizeof *dec);
	REQUIRE(dec);
	pc_faults_decode(s, dec);
	CHECK(memcmp(dec, pc_graph_params(g), (size_t)pc_graph_param_count(g) * sizeof *dec) == 0);
	pc_faults_store_free(s);

	REQUIRE(pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_FLOAT16, PC_FAULTS_PER_TENSOR, &s, &err) == 0);
	CHECK_INT(pc_faults_exposed_bits(s, all, 5, &n_t), 36 * 16);
	CHECK_INT(pc_faults_tensor_bits(s, pb), 16);
	CHECK_INT(pc_faults_code(s, b1 + 2), 0x4000); /* 2 */
	/* 2 = 0 10000 0000000000: bit 14 gives 0x0000 = +0, bit 13 0x6000 = 512 */
	CHECK(pc_faults_flipped_value(s, b1 + 2, 14, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), 0x00000000);
	CHECK(pc_faults_flipped_value(s, b1 + 2, 13, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(512.0f));
	CHECK_INT(pc_faults_code(s, b1 + 0), 0x3400); /* 0.25 */
	/* 0x3400 ^ bit 14 = 0x7400 = 2^14 */
	REQUIRE(pc_faults_flip(s, b1 + 0, 14, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(16384.0f));
	CHECK_INT(pc_faults_f32_bits(pc_faults_value(s, b1 + 0)), pc_faults_f32_bits(16384.0f));
	err = (struct pc_error){0};
	CHECK_INT(pc_faults_flip(s, b1, 16, &v, &err), PC_ERR_INVALID);
	/* 127 in float16: 0x57f0 */
	CHECK_INT(pc_faults_code(s, pc_graph_param(g, p1)->offset), 0x57f0);
	pc_faults_store_free(s);

	REQUIRE(pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_BFLOAT16, PC_FAULTS_PER_TENSOR, &s, &err) == 0);
	CHECK_INT(pc_faults_code(s, b1 + 3), 0x4040); /* 3 */
	/* 3 = 0 10000000 1000000: bit 6 gives 0x4000 = 2, bit 15 gives -3 */
	CHECK(pc_faults_flipped_value(s, b1 + 3, 6, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(2.0f));
	CHECK(pc_faults_flipped_value(s, b1 + 3, 15, &v, &err) == 0);
	CHECK_INT(pc_faults_f32_bits(v), pc_faults_f32_bits(-3.0f));
	pc_faults_store_free(s);
	free(dec);
	pc_graph_free(g);
}

TEST(faults_exposed_enumeration)
{
	struct pc_error err = {0};
	struct pc_graph *g = dense_graph(&err);
	struct pc_faults_store *s = NULL;
	int list[3], n_t = 0, bit = -1;
	int64_t elem = -1, total;

	REQUIRE_MSG(g, "%s", err.text);
	REQUIRE(pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_INT8, PC_FAULTS_PER_TENSOR, &s, &err) == 0);
	/* a group of W2, b1 (protected) and W1, in that order */
	list[0] = pc_graph_find_param(g, "W2");
	list[1] = pc_graph_find_param(g, "b1");
	list[2] = pc_graph_find_param(g, "W1");
	total = pc_faults_exposed_bits(s, list, 3, &n_t);
	CHECK_INT(total, (12 + 8) * 8);
	CHECK_INT(n_t, 2);
	REQUIRE(pc_faults_exposed_at(s, list, 3, 0, &elem, &bit, &err) == 0);
	CHECK_INT(elem, pc_graph_param(g, list[0])->offset);
	CHECK_INT(bit, 0);
	REQUIRE(pc_faults_exposed_at(s, list, 3, 12 * 8 - 1, &elem, &bit, &err) == 0);
	CHECK_INT(elem, pc_graph_param(g, list[0])->offset + 11);
	CHECK_INT(bit, 7);
	/* the next one skips the protected bias */
	REQUIRE(pc_faults_exposed_at(s, list, 3, 12 * 8 + 3 * 8 + 5, &elem, &bit, &err) == 0);
	CHECK_INT(elem, pc_graph_param(g, list[2])->offset + 3);
	CHECK_INT(bit, 5);
	CHECK_INT(pc_faults_exposed_at(s, list, 3, total, &elem, &bit, &err), PC_ERR_INVALID);
	err = (struct pc_error){0};
	CHECK_INT(pc_faults_exposed_at(s, list, 3, -1, &elem, &bit, &err), PC_ERR_INVALID);
	pc_faults_store_free(s);
	pc_graph_free(g);
}

/* x -> MatMul(W) -> Gemm(W, transB = tb) -> y: W tied, read along axis 1
 * by MatMul and along axis tb ? 0 : 1 by Gemm. */
static struct pc_graph *tied_graph(int tb, struct pc_error *err)
{
	static const float w[4] = {1.0f, 2.0f, 3.0f, 4.0f};
	struct pc_shape in = {2, {-1, 2}}, sw = {2, {2, 2}};
	const char *n0[] = {"x", "W"}, *o0[] = {"h"}, *n1[] = {"h", "W"}, *o1[] = {"y"};
	struct pc_attr a = {.name = "transB", .type = PC_ATTR_INT, .i = tb};
	struct pc_graph *g = pc_graph_new(17, err);

	if (!g)
		return NULL;
	if (pc_graph_add_input(g, "x", &in, err) || pc_graph_add_float(g, "W", &sw, w, err) ||
	    pc_graph_add_node(g, "MatMul", "mm", 2, n0, 1, o0, 0, NULL, err) ||
	    pc_graph_add_node(g, "Gemm", "fc", 2, n1, 1, o1, 1, &a, err) || pc_graph_add_output(g, "y", err) ||
	    pc_graph_finish(g, err)) {
		pc_graph_free(g);
		return NULL;
	}
	return g;
}

TEST(faults_quantizable_tied)
{
	struct pc_error err = {0};
	struct pc_graph *g = tied_graph(0, &err);
	struct pc_faults_store *s = NULL;
	int axis = -9;

	REQUIRE_MSG(g, "%s", err.text);
	CHECK(pc_faults_quantizable(g, pc_graph_find_param(g, "W"), &axis));
	CHECK_INT(axis, 1);
	pc_graph_free(g);
	/* the two reads disagree on the output channel: no one int8 layout, so
	 * W keeps its float32 bits, protected */
	g = tied_graph(1, &err);
	REQUIRE_MSG(g, "%s", err.text);
	CHECK(!pc_faults_quantizable(g, pc_graph_find_param(g, "W"), &axis));
	REQUIRE(pc_faults_encode(g, pc_graph_params(g), PC_FAULTS_INT8, PC_FAULTS_PER_CHANNEL, &s, &err) == 0);
	CHECK_INT(pc_faults_tensor_bits(s, 0), 0);
	CHECK_INT(pc_faults_code(s, 3), 0x40800000);
	pc_faults_store_free(s);
	pc_graph_free(g);
}

/* A second opinion on float16 from the compiler's own conversion (libgcc's
 * or F16C's, both round to nearest even), over float32 patterns spread
 * across every exponent; NaNs need only stay NaNs. */
TEST(faults_f16_matches_compiler)
{
#ifdef __FLT16_MAX__
	for (uint64_t u = 0; u <= 0xffffffffu; u += 4093) {
		float x = f((uint32_t)u);
		_Float16 h = (_Float16)x;
		uint16_t want;

		memcpy(&want, &h, sizeof want);
		if (isnan(x)) {
			CHECK(isnan(pc_faults_f16_to_f32(pc_faults_f32_to_f16(x))));
			continue;
		}
		if (pc_faults_f32_to_f16(x) != want) {
			CHECK_MSG(0, "0x%08x: 0x%04x, the compiler 0x%04x", (unsigned)u, pc_faults_f32_to_f16(x), want);
			return;
		}
	}
#else
	pc_test_skip(t, "no _Float16 in this compiler");
#endif
}

struct encode_arg {
	const struct pc_graph *g;
	enum pc_faults_format f;
};

static int encode_target(void *arg, struct pc_error *err)
{
	struct encode_arg *a = arg;
	struct pc_faults_store *s = NULL;
	int rc = pc_faults_encode(a->g, pc_graph_params(a->g), a->f, PC_FAULTS_PER_CHANNEL, &s, err);

	if (!rc && !s)
		rc = pc_error_set(err, PC_ERR_INTERNAL, "test", "no store");
	pc_faults_store_free(s);
	return rc;
}

/* Every allocation of an encode may fail: PC_ERR_NOMEM, nothing leaked. */
TEST(faults_encode_allocation_failures)
{
	struct pc_error err = {0};
	struct pc_graph *g = dense_graph(&err);
	struct encode_arg a;

	REQUIRE_MSG(g, "%s", err.text);
	a = (struct encode_arg){g, PC_FAULTS_INT8};
	/* the store, its codes, its tensors; int8 adds the scales */
	CHECK(af_sweep(t, "encode int8", encode_target, &a) >= 4);
	a.f = PC_FAULTS_FLOAT16;
	CHECK(af_sweep(t, "encode float16", encode_target, &a) >= 3);
	pc_graph_free(g);
}
