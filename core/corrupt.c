/* corrupt: the mathematics of method.md on one group's contiguous vector:
 * the gradient-based corruption and its dual norm, norms, seeded random
 * directions, and the projection of multi-step corruption.
 *
 * Design. Magnitudes are compared through the bit pattern of |x| (for
 * non-negative finite floats the bits order like the values, and -0 equals
 * +0), so "the n largest |x|, ties lower index first" is one exact rule
 * shared by the sorted order (a stable radix sort of those bits) and the
 * linear-time radix selection used when no order is given; both give the
 * same support.
 * Norms are accumulated in double on values divided by the largest
 * magnitude, so p-th powers neither overflow (1e30^20) nor vanish
 * (1e-30^20). Randomness is a private xoshiro256** per call, seeded from
 * the caller's stream by splitmix64, with polar-method normals: the same
 * stream gives the same bytes on every run of a build, and no state is
 * shared between threads. */
#include "paracorr/corrupt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/rng.h"

#define WHERE "corrupt"

struct pc_corrupt_order {
	int64_t count;
	int64_t *idx;
};

/* The magnitude of x as an integer that orders like |x| (x finite). */
static uint32_t mag_key(float x)
{
	uint32_t b;

	memcpy(&b, &x, sizeof(b));
	return b & 0x7fffffffu;
}

static int valid_p(double p)
{
	return p >= 1.0; /* false for NaN, true for INFINITY */
}

static int check_args(int64_t count, double p, int64_t n, struct pc_error *err)
{
	if (count < 0)
		return pc_error_set(err, PC_ERR_INVALID, WHERE, "negative count %lld", (long long)count);
	if (!valid_p(p))
		return pc_error_set(err, PC_ERR_INVALID, WHERE, "norm p = %g must be a real >= 1 or infinity", p);
	if (n < 0)
		return pc_error_set(err, PC_ERR_INVALID, WHERE, "sparsity n = %lld must be >= 0", (long long)n);
	return PC_OK;
}

static int check_finite(const float *x, int64_t count, const char *what, struct pc_error *err)
{
	for (int64_t i = 0; i < count; i++)
		if (!isfinite(x[i]))
			return pc_error_set(err, PC_ERR_INVALID, WHERE, "%s entry %lld is %g, not finite", what,
					    (long long)i, (double)x[i]);
	return PC_OK;
}

/* The number of entries a corruption may touch: n = 0 and n > count mean
 * all of them. */
static int64_t kept_count(int64_t count, int64_t n)
{
	return n == 0 || n > count ? count : n;
}

/* ---- the sorted order ---- */

/* Largest group the order handles: an entry packs its index in 32 bits. */
#define ORDER_MAX_COUNT ((int64_t)1 << 32)

/* Sorts g's indices by packing each entry as (0x7fffffff - |g| bits) << 32
 * | index and radix-sorting on the upper 31 bits only, LSD, 8 bits a pass:
 * the passes are stable and the entries start in index order, so equal
 * magnitudes keep the lower index first without sorting the index bits.
 * Four sequential passes instead of a comparison sort that would chase
 * g[idx[i]] through memory. a and b hold count entries; returns the one
 * holding the result. */
static uint64_t *radix_order(const float *g, int64_t count, uint64_t *a, uint64_t *b)
{
	uint64_t *src = a, *dst = b, *swap;

	for (int64_t i = 0; i < count; i++)
		a[i] = (uint64_t)(0x7fffffffu - mag_key(g[i])) << 32 | (uint64_t)i;
	for (int shift = 32; shift < 64; shift += 8) {
		int64_t start[256] = {0}, sum = 0;
		int trivial = 0;

		for (int64_t i = 0; i < count; i++)
			start[(src[i] >> shift) & 0xffu]++;
		for (int d = 0; d < 256; d++) {
			int64_t c = start[d];
			trivial |= c == count; /* one bucket: the pass would copy */
			start[d] = sum;
			sum += c;
		}
		if (trivial)
			continue;
		for (int64_t i = 0; i < count; i++)
			dst[start[(src[i] >> shift) & 0xffu]++] = src[i];
		swap = src;
		src = dst;
		dst = swap;
	}
	return src;
}

int pc_corrupt_order_new(const float *g, int64_t count, struct pc_corrupt_order **out, struct pc_error *err)
{
	struct pc_corrupt_order *o = NULL;
	uint64_t *a = NULL, *b = NULL, *sorted;
	int rc;

	*out = NULL;
	if (count < 0)
		return pc_error_set(err, PC_ERR_INVALID, WHERE, "negative count %lld", (long long)count);
	if (count > ORDER_MAX_COUNT)
		return pc_error_set(err, PC_ERR_LIMIT, WHERE,
				    "an order of %lld entries is past 2^32; select without one (order NULL)",
				    (long long)count);
	if ((rc = check_finite(g, count, "gradient", err)))
		return rc;
	o = calloc(1, sizeof(*o));
	if (!o)
		goto nomem;
	o->count = count;
	if (count > 0) {
		a = malloc((size_t)count * sizeof(*a));
		b = malloc((size_t)count * sizeof(*b));
		if (!a || !b)
			goto nomem;
		sorted = radix_order(g, count, a, b);
		/* unpack in place: the buffer becomes the index array */
		o->idx = (int64_t *)sorted;
		for (int64_t i = 0; i < count; i++)
			o->idx[i] = (int64_t)(sorted[i] & 0xffffffffu);
		free(sorted == a ? b : a);
	}
	*out = o;
	return PC_OK;
nomem:
	free(a);
	free(b);
	pc_corrupt_order_free(o);
	return pc_error_set(err, PC_ERR_NOMEM, WHERE, "order of %lld indices", (long long)count);
}

void pc_corrupt_order_free(struct pc_corrupt_order *o)
{
	if (!o)
		return;
	free(o->idx);
	free(o);
}

int64_t pc_corrupt_order_count(const struct pc_corrupt_order *o)
{
	return o->count;
}

const int64_t *pc_corrupt_order_indices(const struct pc_corrupt_order *o)
{
	return o->idx;
}

/* ---- linear-time top-k selection ---- */

/* The key of the k-th largest magnitude of x (1 <= k <= count), found by
 * four 8-bit radix passes, and how many entries with exactly that key
 * belong to the top k (those of lowest index). */
static void topk_threshold(const float *x, int64_t count, int64_t k, uint32_t *thr, int64_t *ties)
{
	uint32_t prefix = 0, mask = 0;
	int64_t need = k;

	for (int shift = 24; shift >= 0; shift -= 8) {
		int64_t hist[256] = {0};
		int d = 255;

		for (int64_t i = 0; i < count; i++) {
			uint32_t key = mag_key(x[i]);
			if ((key & mask) == prefix)
				hist[(key >> shift) & 0xffu]++;
		}
		/* the entries matching prefix number at least need, so d stays >= 0 */
		while (hist[d] < need) {
			need -= hist[d];
			d--;
		}
		prefix |= (uint32_t)d << shift;
		mask |= 0xffu << shift;
	}
	*thr = prefix;
	*ties = need;
}

/* out[i] = x[i] (copy) or 1 (mark) for the top k of x, 0 elsewhere; out
 * may be x. */
static void keep_topk(const float *x, int64_t count, int64_t k, float *out, int copy)
{
	uint32_t thr;
	int64_t ties;

	topk_threshold(x, count, k, &thr, &ties);
	for (int64_t i = 0; i < count; i++) {
		uint32_t key = mag_key(x[i]);
		int keep = key > thr;
		if (key == thr && ties > 0) {
			keep = 1;
			ties--;
		}
		out[i] = keep ? (copy ? x[i] : 1.0f) : 0.0f;
	}
}

/* ---- gradient-based corruption ---- */

static int64_t argmax_mag(const float *g, int64_t count)
{
	int64_t best = 0;
	uint32_t kb = mag_key(g[0]);

	for (int64_t i = 1; i < count; i++) {
		uint32_t k = mag_key(g[i]);
		if (k > kb) {
			kb = k;
			best = i;
		}
	}
	return best;
}

int pc_corrupt_gradient(const float *g, int64_t count, const struct pc_corrupt_order *order, double p, int64_t n,
			float *u, double *dual, int *zero, struct pc_error *err)
{
	double m = 0.0, s = 0.0;
	int64_t k;
	int rc;

	*dual = 0.0;
	*zero = 1;
	if ((rc = check_args(count, p, n, err)))
		return rc;
	if (order && order->count != count)
		return pc_error_set(err, PC_ERR_INVALID, WHERE, "order of %lld entries for a gradient of %lld",
				    (long long)order->count, (long long)count);
	if ((rc = check_finite(g, count, "gradient", err)))
		return rc;
	if (count == 0)
		return PC_OK;
	memset(u, 0, (size_t)count * sizeof(*u));
	k = kept_count(count, n);

	if (p == 1.0) {
		/* the top entry is kept whatever n is */
		int64_t j = order ? order->idx[0] : argmax_mag(g, count);
		if (g[j] == 0.0f)
			return PC_OK;
		u[j] = g[j] > 0.0f ? 1.0f : -1.0f;
		*dual = fabs((double)g[j]);
		*zero = 0;
		return PC_OK;
	}

	/* mark the kept support with 1 in u, then every pass reads the marks */
	if (k == count) {
		for (int64_t i = 0; i < count; i++)
			u[i] = 1.0f;
	} else if (order) {
		for (int64_t j = 0; j < k; j++)
			u[order->idx[j]] = 1.0f;
	} else {
		keep_topk(g, count, k, u, 0);
	}
	for (int64_t i = 0; i < count; i++)
		if (u[i] != 0.0f && fabs((double)g[i]) > m)
			m = fabs((double)g[i]);
	if (m == 0.0) {
		memset(u, 0, (size_t)count * sizeof(*u));
		return PC_OK;
	}

	if (isinf(p)) {
		/* q = 1: the dual norm of float values cannot overflow a double sum */
		for (int64_t i = 0; i < count; i++) {
			if (u[i] == 0.0f)
				continue;
			if (g[i] == 0.0f) {
				u[i] = 0.0f;
				continue;
			}
			s += fabs((double)g[i]);
			u[i] = g[i] > 0.0f ? 1.0f : -1.0f;
		}
		*dual = s;
	} else if (p == 2.0) {
		double inv;
		for (int64_t i = 0; i < count; i++) {
			if (u[i] != 0.0f) {
				double r = fabs((double)g[i]) / m;
				s += r * r;
			}
		}
		inv = 1.0 / sqrt(s);
		for (int64_t i = 0; i < count; i++)
			if (u[i] != 0.0f)
				u[i] = g[i] == 0.0f ? 0.0f : (float)((double)g[i] / m * inv);
		*dual = m * sqrt(s);
	} else {
		/* With r_i = |h_i| / m and S = sum r_i^q: ||h||_q = m S^(1/q) and
		 * u_i = sign(h_i) r_i^(q-1) S^(-1/p), since (q-1)/q = 1/p. q - 1 =
		 * 1/(p-1) is taken directly so p near 1 (q huge) and p huge (q
		 * near 1) keep their precision; r <= 1 so powers only underflow,
		 * to entries of no weight. */
		double qm1 = 1.0 / (p - 1.0), q = 1.0 + qm1, scale;
		for (int64_t i = 0; i < count; i++)
			if (u[i] != 0.0f && g[i] != 0.0f)
				s += pow(fabs((double)g[i]) / m, q);
		scale = pow(s, -1.0 / p);
		for (int64_t i = 0; i < count; i++) {
			double r;
			if (u[i] == 0.0f)
				continue;
			if (g[i] == 0.0f) {
				u[i] = 0.0f;
				continue;
			}
			r = fabs((double)g[i]) / m;
			u[i] = (float)copysign(pow(r, qm1) * scale, (double)g[i]);
		}
		*dual = m * pow(s, (p - 1.0) / p);
	}
	*zero = 0;
	return PC_OK;
}

/* ---- norms and scaling ---- */

double pc_corrupt_norm(const float *x, int64_t count, double p)
{
	double m = 0.0, s = 0.0;

	if (!valid_p(p))
		return NAN;
	for (int64_t i = 0; i < count; i++) {
		double a = fabs((double)x[i]);
		if (isnan(a))
			return NAN;
		if (a > m)
			m = a;
	}
	if (m == 0.0 || isinf(m) || isinf(p))
		return m;
	if (p == 1.0) {
		for (int64_t i = 0; i < count; i++)
			s += fabs((double)x[i]);
		return s;
	}
	if (p == 2.0) {
		for (int64_t i = 0; i < count; i++) {
			double r = fabs((double)x[i]) / m;
			s += r * r;
		}
		return m * sqrt(s);
	}
	for (int64_t i = 0; i < count; i++)
		if (x[i] != 0.0f)
			s += pow(fabs((double)x[i]) / m, p);
	return m * pow(s, 1.0 / p);
}

static void scale_by(float *a, int64_t count, double s)
{
	for (int64_t i = 0; i < count; i++)
		a[i] = (float)((double)a[i] * s);
}

/* Rounding each scaled entry to float can leave the norm a few ulps above
 * the radius; shrink with a doubling margin until inside. The margin
 * reaches 1 (a = 0) after at most 25 rounds, so this ends. */
static void shrink_into(float *a, int64_t count, double p, double eps)
{
	double margin = 0.0;

	for (;;) {
		double nrm = pc_corrupt_norm(a, count, p);
		if (!(nrm > eps))
			return;
		scale_by(a, count, eps / nrm * (1.0 - margin));
		margin = margin == 0.0 ? 0x1p-23 : (margin * 2.0 < 1.0 ? margin * 2.0 : 1.0);
	}
}

void pc_corrupt_rescale(float *a, int64_t count, double p, double eps)
{
	double nrm = pc_corrupt_norm(a, count, p);

	if (!(nrm > 0.0) || isinf(nrm))
		return;
	scale_by(a, count, eps / nrm);
}

/* ---- projection ---- */

static int cmp_float_desc(const void *pa, const void *pb)
{
	float a = *(const float *)pa, b = *(const float *)pb;

	return (a < b) - (a > b);
}

/* Euclidean projection onto { ||a||_1 <= eps } of a point outside it:
 * soft thresholding at theta, where theta makes sum max(|a_i| - theta, 0)
 * = eps. With mu the magnitudes sorted descending and c_j their prefix
 * sums, theta = (c_rho - eps) / rho for the largest rho with mu_rho >
 * (c_rho - eps) / rho. mu holds room for every non-zero entry of a. */
static void project_l1(float *a, int64_t count, double eps, float *mu)
{
	int64_t m = 0, rho = 1;
	double c = 0.0, c_rho, theta;

	for (int64_t i = 0; i < count; i++)
		if (a[i] != 0.0f)
			mu[m++] = fabsf(a[i]);
	qsort(mu, (size_t)m, sizeof(*mu), cmp_float_desc);
	c_rho = mu[0];
	for (int64_t j = 0; j < m; j++) {
		c += mu[j];
		if ((double)mu[j] * (double)(j + 1) > c - eps) {
			rho = j + 1;
			c_rho = c;
		}
	}
	theta = (c_rho - eps) / (double)rho;
	for (int64_t i = 0; i < count; i++) {
		double v = fabs((double)a[i]) - theta;
		a[i] = v > 0.0 ? (float)copysign(v, (double)a[i]) : 0.0f;
	}
}

int pc_corrupt_project(float *a, int64_t count, double p, int64_t n, double eps, struct pc_error *err)
{
	float *mu = NULL;
	int64_t k;
	int rc;

	if ((rc = check_args(count, p, n, err)))
		return rc;
	if (!(eps > 0.0) || isinf(eps))
		return pc_error_set(err, PC_ERR_INVALID, WHERE, "radius eps = %g must be finite and > 0", eps);
	if ((rc = check_finite(a, count, "corruption", err)))
		return rc;
	if (count == 0)
		return PC_OK;
	k = kept_count(count, n);
	if (p == 1.0) {
		/* allocated before a changes, so a failure leaves a as it was */
		mu = malloc((size_t)k * sizeof(*mu));
		if (!mu)
			return pc_error_set(err, PC_ERR_NOMEM, WHERE, "l1 projection of %lld entries", (long long)k);
	}
	if (k < count)
		keep_topk(a, count, k, a, 1);

	if (isinf(p)) {
		/* the largest float not above eps, so clipped entries stay inside */
		float lim = (float)eps;
		if ((double)lim > eps)
			lim = nextafterf(lim, 0.0f);
		for (int64_t i = 0; i < count; i++) {
			if (a[i] > lim)
				a[i] = lim;
			else if (a[i] < -lim)
				a[i] = -lim;
		}
		return PC_OK;
	}
	if (pc_corrupt_norm(a, count, p) > eps) {
		if (p == 1.0)
			project_l1(a, count, eps, mu);
		else
			scale_by(a, count, eps / pc_corrupt_norm(a, count, p));
		shrink_into(a, count, p, eps);
	}
	free(mu);
	return PC_OK;
}

/* ---- random corruption ---- */

uint64_t pc_rng_derive(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	const uint64_t v[4] = {a, b, c, d};
	uint64_t h = pc_rng_mix64(seed + PC_RNG_GOLDEN);

	/* each step is a bijection of both h and v[i], so every argument
	 * changes the result */
	for (int i = 0; i < 4; i++)
		h = pc_rng_mix64((h ^ pc_rng_mix64(v[i] + PC_RNG_GOLDEN * (uint64_t)(i + 2))) + PC_RNG_GOLDEN);
	return h;
}

struct rng {
	uint64_t s[4];
	int has_spare;
	double spare;
};

static void rng_seed(struct rng *r, uint64_t stream)
{
	uint64_t x = stream;

	/* splitmix64 outputs are distinct, so the state is never all zero */
	for (int i = 0; i < 4; i++)
		r->s[i] = pc_rng_splitmix64(&x);
	r->has_spare = 0;
	r->spare = 0.0;
}

static uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256** */
static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return out;
}

/* Uniform in [0, range), range >= 1, without modulo bias: draws below
 * 2^64 mod range are rejected, leaving a multiple of range values. */
static uint64_t rng_below(struct rng *r, uint64_t range)
{
	uint64_t low = (0 - range) % range, x;

	do
		x = rng_next(r);
	while (x < low);
	return x % range;
}

/* Uniform in [0, 1) on the 2^-53 grid. */
static double rng_unit(struct rng *r)
{
	return (double)(rng_next(r) >> 11) * 0x1p-53;
}

/* Standard normal by Marsaglia's polar method: two per accepted pair, the
 * second kept for the next call. */
static double rng_normal(struct rng *r)
{
	double x, y, s, f;

	if (r->has_spare) {
		r->has_spare = 0;
		return r->spare;
	}
	do {
		x = 2.0 * rng_unit(r) - 1.0;
		y = 2.0 * rng_unit(r) - 1.0;
		s = x * x + y * y;
	} while (s >= 1.0 || s == 0.0);
	f = sqrt(-2.0 * log(s) / s);
	r->spare = y * f;
	r->has_spare = 1;
	return x * f;
}

int pc_corrupt_random(int64_t count, double p, int64_t n, uint64_t stream, float *u, struct pc_error *err)
{
	struct rng r;
	int64_t k;
	int rc;

	if ((rc = check_args(count, p, n, err)))
		return rc;
	if (count == 0)
		return pc_error_set(err, PC_ERR_INVALID, WHERE, "%s", "no random direction in an empty group");
	k = kept_count(count, n);
	rng_seed(&r, stream);
	memset(u, 0, (size_t)count * sizeof(*u));

	/* the support, marked with 1 in u: Floyd's algorithm draws a uniform
	 * k-subset with k draws and needs no memory beyond the marks */
	if (k == count) {
		for (int64_t i = 0; i < count; i++)
			u[i] = 1.0f;
	} else {
		for (int64_t j = count - k; j < count; j++) {
			int64_t t = (int64_t)rng_below(&r, (uint64_t)j + 1);
			if (u[t] != 0.0f)
				t = j;
			u[t] = 1.0f;
		}
	}

	/* the direction, drawn in index order */
	for (int64_t i = 0; i < count; i++) {
		float z;
		if (u[i] == 0.0f)
			continue;
		if (isinf(p)) {
			u[i] = rng_next(&r) >> 63 ? -1.0f : 1.0f;
			continue;
		}
		/* a draw that rounds to 0 would shrink the support: redraw */
		do
			z = (float)rng_normal(&r);
		while (z == 0.0f);
		u[i] = z;
	}
	if (!isinf(p))
		scale_by(u, count, 1.0 / pc_corrupt_norm(u, count, p));
	return PC_OK;
}
