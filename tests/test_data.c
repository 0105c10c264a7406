/* Tests of the dataset loader: the real Fashion-MNIST test set, round trips
 * through IDX and NPY files the tests write (plain and gzipped), the
 * preprocessing arithmetic, and a suite of malformed files that must fail
 * with an error naming the problem, never crash (run it under ASan). */
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "paracorr/data.h"
#include "paracorr/limits.h"

#define FMNIST "/usr/share/datasets/fashion-mnist/"

/* ---- building files in memory ---- */

struct buf {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *d, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void put_uint(struct buf *b, uint64_t v, size_t n, int big_endian)
{
	unsigned char bytes[8];

	for (size_t i = 0; i < n; i++)
		bytes[big_endian ? n - 1 - i : i] = (unsigned char)(v >> (8 * i));
	put(b, bytes, n);
}

static void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* An element of a host array as its bits. */
static uint64_t host_bits(const void *data, size_t esize, size_t i)
{
	const unsigned char *p = (const unsigned char *)data + i * esize;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	switch (esize) {
	case 1:
		memcpy(&u8, p, 1);
		return u8;
	case 2:
		memcpy(&u16, p, 2);
		return u16;
	case 4:
		memcpy(&u32, p, 4);
		return u32;
	default:
		memcpy(&u64, p, 8);
		return u64;
	}
}

/* An IDX file: type code, dims, then count host-order elements written
 * big-endian. */
static struct buf idx_make(int type, int ndim, const uint32_t *dims, const void *data, size_t esize, size_t count)
{
	struct buf b = {0};
	unsigned char magic[4] = {0, 0, (unsigned char)type, (unsigned char)ndim};

	put(&b, magic, 4);
	for (int i = 0; i < ndim; i++)
		put_uint(&b, dims[i], 4, 1);
	for (size_t i = 0; i < count; i++)
		put_uint(&b, host_bits(data, esize, i), esize, 1);
	return b;
}

/* An NPY file of the given major version and header dict, padded as numpy
 * pads it; elements are written little-endian unless big_endian. */
static struct buf npy_make(int major, const char *dict, const void *data, size_t esize, size_t count, int big_endian)
{
	struct buf b = {0};
	size_t lenfield = major == 1 ? 2 : 4, dlen = strlen(dict), total = 8 + lenfield + dlen + 1, pad;
	unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};

	pad = (64 - total % 64) % 64;
	put(&b, magic, 8);
	put_uint(&b, dlen + pad + 1, lenfield, 0);
	put(&b, dict, dlen);
	for (size_t i = 0; i < pad; i++)
		put(&b, " ", 1);
	put(&b, "\n", 1);
	for (size_t i = 0; i < count; i++)
		put_uint(&b, host_bits(data, esize, i), esize, big_endian);
	return b;
}

/* gzip of b, in memory, as gzwrite would write it. */
static struct buf gz_make(const struct buf *b)
{
	struct buf out = {0};
	z_stream zs;
	unsigned char chunk[16384];
	int zrc;

	memset(&zs, 0, sizeof(zs));
	if (deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	zs.next_in = b->p;
	zs.avail_in = (uInt)b->len;
	do {
		zs.next_out = chunk;
		zs.avail_out = sizeof(chunk);
		zrc = deflate(&zs, Z_FINISH);
		put(&out, chunk, sizeof(chunk) - zs.avail_out);
	} while (zrc == Z_OK);
	if (zrc != Z_STREAM_END)
		abort();
	deflateEnd(&zs);
	return out;
}

/* ---- files in a temporary directory ---- */

struct tmpdir {
	char dir[64];
	char paths[16][128];
	int n;
};

static int tmp_open(struct tmpdir *td)
{
	memset(td, 0, sizeof(*td));
	snprintf(td->dir, sizeof(td->dir), "/tmp/pc_data_XXXXXX");
	return mkdtemp(td->dir) != NULL;
}

static const char *tmp_path(struct tmpdir *td, const char *name)
{
	char path[sizeof(td->paths[0])];

	if (td->n == 16)
		abort();
	snprintf(path, sizeof(path), "%s/%s", td->dir, name);
	memcpy(td->paths[td->n], path, sizeof(path));
	return td->paths[td->n++];
}

static void tmp_close(struct tmpdir *td)
{
	for (int i = 0; i < td->n; i++)
		unlink(td->paths[i]);
	rmdir(td->dir);
}

static int write_plain(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return 0;
	ok = fwrite(b->p, 1, b->len, f) == b->len;
	return fclose(f) == 0 && ok;
}

static int write_gz(const char *path, const struct buf *b)
{
	gzFile f = gzopen(path, "wb");
	int ok;

	if (!f)
		return 0;
	ok = gzwrite(f, b->p, (unsigned)b->len) == (int)b->len;
	return gzclose(f) == Z_OK && ok;
}

/* ---- a small standard dataset: 4 samples of 2×3 uint8, labels 0 1 2 1 ---- */

static const uint32_t small_dims[3] = {4, 2, 3};
static const uint32_t small_ldims[1] = {4};
static uint8_t small_x[24];
static const uint8_t small_y[4] = {0, 1, 2, 1};

static void small_fill(void)
{
	for (int i = 0; i < 24; i++)
		small_x[i] = (uint8_t)(i * 11 % 256);
}

static struct buf small_inputs(void)
{
	small_fill();
	return idx_make(0x08, 3, small_dims, small_x, 1, 24);
}

static struct buf small_labels(void)
{
	return idx_make(0x08, 1, small_ldims, small_y, 1, 4);
}

/* Loads from memory and expects the error code and a substring of
 * "where: text". */
static void expect_error_line(struct pc_test *t, int line, const struct buf *in, const struct buf *lab,
			      uint64_t max_bytes, int code, const char *needle)
{
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	char msg[700];
	int rc = pc_dataset_load_memory_max(in->p, in->len, lab->p, lab->len, NULL, 0, max_bytes, &d, &err);

	pc_error_format(&err, msg, sizeof(msg));
	CHECK_MSG(rc == code, "line %d: status %s, expected %s (%s)", line, pc_status_name(rc), pc_status_name(code),
		  msg);
	CHECK_MSG(rc == (int)err.code, "line %d: returned %d, recorded %d", line, rc, err.code);
	CHECK_MSG(d == NULL, "line %d: a dataset came back with an error", line);
	CHECK_MSG(strstr(msg, needle) != NULL, "line %d: '%s' lacks '%s'", line, msg, needle);
	pc_dataset_free(d);
}

#define EXPECT_ERROR(in, lab, code, needle) expect_error_line(t, __LINE__, in, lab, PC_DATA_MAX_BYTES, code, needle)

/* ---- the real data ---- */

/* Reference numbers computed independently with
 *   /usr/bin/python3 -c "import gzip, numpy as np; ..."
 * reading the gzipped IDX files with gzip.open and numpy.frombuffer
 * (offset 16 for images, 8 for labels): the first ten labels, sums of raw
 * pixel values (int64) and single pixels. */
TEST(data_fashion_mnist_t10k)
{
	static const int first_labels[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	char msg[700];
	int64_t counts[10] = {0};
	double sum0 = 0, sum_last = 0, sum_all = 0;

	if (access(FMNIST "t10k-images-idx3-ubyte.gz", R_OK) != 0) {
		pc_test_skip(t, "dataset-fashion-mnist is not installed");
		return;
	}
	if (pc_dataset_load(FMNIST "t10k-images-idx3-ubyte.gz", FMNIST "t10k-labels-idx1-ubyte.gz", NULL, 0, &d,
			    &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s", pc_error_format(&err, msg, sizeof(msg)));
		return;
	}
	CHECK_INT(d->n, 10000);
	CHECK_INT(d->sample.ndim, 2);
	CHECK_INT(d->sample.dim[0], 28);
	CHECK_INT(d->sample.dim[1], 28);
	CHECK_INT(d->classes, 10);
	CHECK_INT(d->input_dtype, 2);
	for (int i = 0; i < 10; i++)
		CHECK_INT(d->y[i], first_labels[i]);
	for (int64_t i = 0; i < d->n; i++)
		if (d->y[i] >= 0 && d->y[i] < 10)
			counts[d->y[i]]++;
	for (int c = 0; c < 10; c++)
		CHECK_INT(counts[c], 1000);
	for (int i = 0; i < 784; i++) {
		sum0 += d->x[i];
		sum_last += d->x[9999 * 784 + i];
	}
	for (int64_t i = 0; i < d->n * 784; i++)
		sum_all += d->x[i];
	/* default preprocessing: raw / 255 */
	CHECK_CLOSE(sum0 * 255, 33456, 1e-3, 1e-6);
	CHECK_CLOSE(sum_last * 255, 24390, 1e-3, 1e-6);
	CHECK_CLOSE(sum_all * 255, 573469082, 1, 1e-6);
	CHECK_CLOSE(d->x[14 * 28 + 14], 110 / 255.0, 1e-7, 1e-6);
	CHECK_CLOSE(d->x[20 * 28 + 5], 184 / 255.0, 1e-7, 1e-6);
	CHECK_CLOSE(d->x[7 * 28 + 19], 3 / 255.0, 1e-7, 1e-6);
	CHECK_CLOSE(d->x[7 * 28 + 23], 7 / 255.0, 1e-7, 1e-6);
	CHECK(d->x[10 * 28 + 10] == 0.0f);
	CHECK_CLOSE(d->x[9999 * 784 + 14 * 28 + 14], 132 / 255.0, 1e-7, 1e-6);
	pc_dataset_free(d);
}

TEST(data_fashion_mnist_limit)
{
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	double sum = 0;

	if (access(FMNIST "t10k-images-idx3-ubyte.gz", R_OK) != 0) {
		pc_test_skip(t, "dataset-fashion-mnist is not installed");
		return;
	}
	REQUIRE(pc_dataset_load(FMNIST "t10k-images-idx3-ubyte.gz", FMNIST "t10k-labels-idx1-ubyte.gz", NULL, 100, &d,
				&err) == PC_OK);
	CHECK_INT(d->n, 100);
	CHECK_INT(d->classes, 10);
	/* python3: int(x[:100].astype(np.int64).sum()) */
	for (int64_t i = 0; i < 100 * 784; i++)
		sum += d->x[i];
	CHECK_CLOSE(sum * 255, 5854180, 1e-2, 1e-6);
	CHECK_INT(d->y[0], 9);
	pc_dataset_free(d);
	d = NULL;
	REQUIRE(pc_dataset_load(FMNIST "t10k-images-idx3-ubyte.gz", FMNIST "t10k-labels-idx1-ubyte.gz", NULL, 20000, &d,
				&err) == PC_OK);
	CHECK_INT(d->n, 10000);
	pc_dataset_free(d);
}

/* ---- round trips ---- */

static void check_small(struct pc_test *t, const struct pc_dataset *d, double scale)
{
	CHECK_INT(d->n, 4);
	CHECK_INT(d->sample.ndim, 2);
	CHECK_INT(d->sample.dim[0], 2);
	CHECK_INT(d->sample.dim[1], 3);
	CHECK_INT(d->classes, 3);
	for (int i = 0; i < 4; i++)
		CHECK_INT(d->y[i], small_y[i]);
	for (int i = 0; i < 24; i++)
		CHECK_CLOSE(d->x[i], small_x[i] * scale, 1e-7, 1e-6);
}

TEST(data_idx_roundtrip_files)
{
	struct tmpdir td;
	struct buf xi = small_inputs(), yi = small_labels(), xf = {0}, yl = {0};
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	const char *xp, *yp, *xgz, *ygz, *xfp, *ylp;
	float fx[24];
	int32_t y32[4] = {0, 1, 2, 1};
	char msg[700];

	REQUIRE(tmp_open(&td));
	xp = tmp_path(&td, "x.idx");
	yp = tmp_path(&td, "y.idx");
	xgz = tmp_path(&td, "x.idx.gz");
	ygz = tmp_path(&td, "labels"); /* names carry no meaning */
	xfp = tmp_path(&td, "xf.idx");
	ylp = tmp_path(&td, "y32.idx");
	for (int i = 0; i < 24; i++)
		fx[i] = (float)(i - 10) * 0.37f;
	xf = idx_make(0x0D, 3, small_dims, fx, 4, 24);
	yl = idx_make(0x0C, 1, small_ldims, y32, 4, 4);
	REQUIRE(write_plain(xp, &xi) && write_plain(yp, &yi) && write_gz(xgz, &xi) && write_gz(ygz, &yi));
	REQUIRE(write_plain(xfp, &xf) && write_plain(ylp, &yl));

	CHECK(pc_dataset_load(xp, yp, NULL, 0, &d, &err) == PC_OK);
	if (d) {
		check_small(t, d, 1 / 255.0);
		CHECK_INT(d->input_dtype, 2);
	}
	pc_dataset_free(d);
	d = NULL;
	CHECK_MSG(pc_dataset_load(xgz, ygz, NULL, 0, &d, &err) == PC_OK, "%s", pc_error_format(&err, msg, sizeof(msg)));
	if (d)
		check_small(t, d, 1 / 255.0);
	pc_dataset_free(d);
	d = NULL;
	/* plain inputs with gzipped labels */
	CHECK(pc_dataset_load(xp, ygz, NULL, 0, &d, &err) == PC_OK);
	pc_dataset_free(d);
	d = NULL;
	/* float32 inputs are not scaled by default; int32 labels */
	CHECK_MSG(pc_dataset_load(xfp, ylp, NULL, 0, &d, &err) == PC_OK, "%s", pc_error_format(&err, msg, sizeof(msg)));
	if (d) {
		CHECK_INT(d->input_dtype, 1);
		CHECK_INT(d->classes, 3);
		for (int i = 0; i < 24; i++)
			CHECK(d->x[i] == fx[i]);
		for (int i = 0; i < 4; i++)
			CHECK_INT(d->y[i], y32[i]);
	}
	pc_dataset_free(d);
	tmp_close(&td);
	buf_free(&xi);
	buf_free(&yi);
	buf_free(&xf);
	buf_free(&yl);
}

TEST(data_npy_roundtrip)
{
	static const struct {
		const char *descr;
		size_t esize;
	} labels[] = {{"|u1", 1}, {"<i8", 8}, {"<i4", 4}, {"|i1", 1}, {"<i2", 2}};
	uint8_t y8[4] = {1, 0, 3, 2};
	int64_t y64[4] = {1, 0, 3, 2};
	int32_t y32[4] = {1, 0, 3, 2};
	int16_t y16[4] = {1, 0, 3, 2};
	const void *ydata[] = {y8, y64, y32, y8, y16};
	uint8_t xu[4 * 5];
	float xf[4 * 5];
	char dict[256];

	for (int i = 0; i < 20; i++) {
		xu[i] = (uint8_t)(255 - i * 9);
		xf[i] = (float)i * -1.25f + 3.0f;
	}
	for (int major = 1; major <= 3; major++) {
		for (int in_f = 0; in_f < 2; in_f++) {
			for (size_t l = 0; l < sizeof(labels) / sizeof(labels[0]); l++) {
				struct buf xb, yb;
				struct pc_dataset *d = NULL;
				struct pc_error err = {0};
				char msg[700];

				snprintf(dict, sizeof(dict),
					 "{'descr': '%s', 'fortran_order': False, 'shape': (4, 5), }",
					 in_f ? "<f4" : "|u1");
				xb = npy_make(major, dict, in_f ? (const void *)xf : xu, in_f ? 4 : 1, 20, 0);
				snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (4,), }",
					 labels[l].descr);
				yb = npy_make(major, dict, ydata[l], labels[l].esize, 4, 0);
				CHECK_MSG(pc_dataset_load_memory(xb.p, xb.len, yb.p, yb.len, NULL, 0, &d, &err) ==
					      PC_OK,
					  "v%d %s/%s: %s", major, in_f ? "f4" : "u1", labels[l].descr,
					  pc_error_format(&err, msg, sizeof(msg)));
				if (d) {
					CHECK_INT(d->n, 4);
					CHECK_INT(d->sample.ndim, 1);
					CHECK_INT(d->sample.dim[0], 5);
					CHECK_INT(d->classes, 4);
					CHECK_INT(d->input_dtype, in_f ? 1 : 2);
					for (int i = 0; i < 4; i++)
						CHECK_INT(d->y[i], y64[i]);
					for (int i = 0; i < 20; i++)
						CHECK_CLOSE(d->x[i], in_f ? xf[i] : xu[i] / 255.0, 1e-7, 1e-6);
				}
				pc_dataset_free(d);
				buf_free(&xb);
				buf_free(&yb);
			}
		}
	}
}

/* The header dict as other writers (or hands) may spell it. */
TEST(data_npy_header_variants)
{
	static const char *dicts[] = {
	    "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }",
	    "{'shape': (3, 2), 'descr': '<f4', 'fortran_order': False}",
	    "{ 'fortran_order' :False ,'shape':( 3 ,2 , ) ,'descr':'<f4' , }",
	    "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3L, 2L)}",
	    "{'descr':'<f4','fortran_order':False,'shape':(3,2)}",
	};
	float xf[6] = {0.5f, -1, 2, 1e-3f, 100, -7.25f};
	int64_t y[3] = {0, 2, 1};
	struct buf yb = npy_make(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", y, 8, 3, 0);

	for (size_t k = 0; k < sizeof(dicts) / sizeof(dicts[0]) + 1; k++) {
		struct buf xb;
		struct pc_dataset *d = NULL;
		struct pc_error err = {0};
		char msg[700];

		if (k < sizeof(dicts) / sizeof(dicts[0]))
			xb = npy_make(1, dicts[k], xf, 4, 6, 0);
		else /* big-endian elements */
			xb = npy_make(2, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }", xf, 4, 6, 1);
		CHECK_MSG(pc_dataset_load_memory(xb.p, xb.len, yb.p, yb.len, NULL, 0, &d, &err) == PC_OK,
			  "dict %zu: %s", k, pc_error_format(&err, msg, sizeof(msg)));
		if (d) {
			CHECK_INT(d->sample.dim[0], 2);
			for (int i = 0; i < 6; i++)
				CHECK(d->x[i] == xf[i]);
			CHECK_INT(d->classes, 3);
		}
		pc_dataset_free(d);
		buf_free(&xb);
	}
	buf_free(&yb);
}

TEST(data_npy_gz_file)
{
	struct tmpdir td;
	float xf[6] = {1, 2, 3, 4, 5, 6};
	uint8_t y[2] = {1, 0};
	struct buf xb = npy_make(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", xf, 4, 6, 0);
	struct buf yb = npy_make(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", y, 1, 2, 0);
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	const char *xp, *yp;

	REQUIRE(tmp_open(&td));
	xp = tmp_path(&td, "x.npy.gz");
	yp = tmp_path(&td, "y.npy");
	REQUIRE(write_gz(xp, &xb) && write_plain(yp, &yb));
	CHECK(pc_dataset_load(xp, yp, NULL, 0, &d, &err) == PC_OK);
	if (d) {
		CHECK_INT(d->n, 2);
		CHECK(d->x[5] == 6.0f);
		CHECK_INT(d->y[0], 1);
	}
	pc_dataset_free(d);
	tmp_close(&td);
	buf_free(&xb);
	buf_free(&yb);
}

TEST(data_gzip_memory_members)
{
	struct buf xi = small_inputs(), yi = small_labels(), xg = gz_make(&xi), half1 = {0}, half2 = {0}, h1, h2,
		   cat = {0};
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};

	CHECK(pc_dataset_load_memory(xg.p, xg.len, yi.p, yi.len, NULL, 0, &d, &err) == PC_OK);
	if (d)
		check_small(t, d, 1 / 255.0);
	pc_dataset_free(d);
	d = NULL;
	/* two gzip members concatenated are one stream (as `cat a.gz b.gz`) */
	put(&half1, xi.p, 10);
	put(&half2, xi.p + 10, xi.len - 10);
	h1 = gz_make(&half1);
	h2 = gz_make(&half2);
	put(&cat, h1.p, h1.len);
	put(&cat, h2.p, h2.len);
	CHECK(pc_dataset_load_memory(cat.p, cat.len, yi.p, yi.len, NULL, 0, &d, &err) == PC_OK);
	if (d)
		check_small(t, d, 1 / 255.0);
	pc_dataset_free(d);
	buf_free(&xi);
	buf_free(&yi);
	buf_free(&xg);
	buf_free(&half1);
	buf_free(&half2);
	buf_free(&h1);
	buf_free(&h2);
	buf_free(&cat);
}

TEST(data_limit)
{
	uint8_t y[4] = {0, 1, 0, 5};
	struct buf xi = small_inputs(), yi = idx_make(0x08, 1, small_ldims, y, 1, 4);
	static const int64_t limits[] = {2, 0, -1, 4, 100};
	static const int64_t expect[] = {2, 4, 4, 4, 4};

	for (int k = 0; k < 5; k++) {
		struct pc_dataset *d = NULL;
		struct pc_error err = {0};
		CHECK(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, NULL, limits[k], &d, &err) == PC_OK);
		if (!d)
			continue;
		CHECK_INT(d->n, expect[k]);
		/* every label counts towards the classes, whatever the limit */
		CHECK_INT(d->classes, 6);
		for (int64_t i = 0; i < d->n * 6; i++)
			CHECK_CLOSE(d->x[i], small_x[i] / 255.0, 1e-7, 1e-6);
		pc_dataset_free(d);
	}
	buf_free(&xi);
	buf_free(&yi);
}

/* ---- preprocessing ---- */

TEST(data_preprocess_channels)
{
	uint32_t dims[4] = {2, 3, 2, 2};
	uint8_t raw[24];
	uint8_t y[2] = {0, 1};
	uint32_t ld[1] = {2};
	struct buf xi, yi = idx_make(0x08, 1, ld, y, 1, 2);
	struct pc_preprocess pp;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	double mean[3] = {0.485, 0.456, 0.406}, std[3] = {0.229, 0.224, 0.225};

	for (int i = 0; i < 24; i++)
		raw[i] = (uint8_t)(i * 10 + 3);
	xi = idx_make(0x08, 4, dims, raw, 1, 24);

	/* per channel: channel c of sample s holds raw[s*12 + c*4 .. +4] */
	pc_preprocess_default(&pp);
	pp.n_mean = pp.n_std = 3;
	memcpy(pp.mean, mean, sizeof(mean));
	memcpy(pp.std, std, sizeof(std));
	REQUIRE(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 0, &d, &err) == PC_OK);
	for (int s = 0; s < 2; s++)
		for (int c = 0; c < 3; c++)
			for (int k = 0; k < 4; k++) {
				int i = s * 12 + c * 4 + k;
				CHECK_CLOSE(d->x[i], (raw[i] / 255.0 - mean[c]) / std[c], 1e-6, 1e-6);
			}
	pc_dataset_free(d);
	d = NULL;

	/* one value for every channel, and an explicit scale */
	pc_preprocess_default(&pp);
	pp.scale = 0.5;
	pp.scale_set = 1;
	pp.n_mean = 1;
	pp.mean[0] = 10;
	pp.n_std = 1;
	pp.std[0] = 4;
	REQUIRE(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 0, &d, &err) == PC_OK);
	for (int i = 0; i < 24; i++)
		CHECK_CLOSE(d->x[i], (raw[i] * 0.5 - 10) / 4, 1e-6, 1e-6);
	pc_dataset_free(d);
	d = NULL;

	/* mean per channel, std shared */
	pc_preprocess_default(&pp);
	pp.n_mean = 3;
	pp.mean[0] = 1, pp.mean[1] = 2, pp.mean[2] = 3;
	pp.n_std = 1;
	pp.std[0] = 2;
	REQUIRE(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 1, &d, &err) == PC_OK);
	CHECK_INT(d->n, 1);
	for (int i = 0; i < 12; i++)
		CHECK_CLOSE(d->x[i], (raw[i] / 255.0 - (i / 4 + 1)) / 2, 1e-6, 1e-6);
	pc_dataset_free(d);
	d = NULL;

	/* bad settings */
	{
		static const char *needles[] = {"std[1]", "std[0]", "mean has 2 values", "scale", "std has 4"};
		for (int k = 0; k < 5; k++) {
			struct pc_error e = {0};
			pc_preprocess_default(&pp);
			if (k == 0) {
				pp.n_std = 3;
				pp.std[0] = pp.std[2] = 1;
				pp.std[1] = 0;
			} else if (k == 1) {
				pp.n_std = 1;
				pp.std[0] = -1;
			} else if (k == 2) {
				pp.n_mean = 2;
			} else if (k == 3) {
				pp.scale_set = 1;
				pp.scale = NAN;
			} else {
				pp.n_std = 4;
				for (int i = 0; i < 4; i++)
					pp.std[i] = 1;
			}
			CHECK_INT(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 0, &d, &e), PC_ERR_INVALID);
			CHECK(d == NULL);
			CHECK_MSG(strstr(e.text, needles[k]) != NULL, "'%s' lacks '%s'", e.text, needles[k]);
		}
	}
	buf_free(&xi);
	buf_free(&yi);
}

TEST(data_preprocess_float)
{
	float xf[4] = {2, 4, 6, 8};
	uint32_t dims[2] = {2, 2}, ld[1] = {2};
	uint8_t y[2] = {1, 0};
	struct buf xi = idx_make(0x0D, 2, dims, xf, 4, 4), yi = idx_make(0x08, 1, ld, y, 1, 2);
	struct pc_preprocess pp;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};

	/* float inputs: the default scale is 1, an explicit one applies */
	pc_preprocess_default(&pp);
	pp.n_mean = 2;
	pp.mean[0] = 1, pp.mean[1] = 2;
	REQUIRE(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 0, &d, &err) == PC_OK);
	CHECK(d->x[0] == 1 && d->x[1] == 2 && d->x[2] == 5 && d->x[3] == 6);
	pc_dataset_free(d);
	d = NULL;
	pp.scale_set = 1;
	pp.scale = 0.5;
	REQUIRE(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 0, &d, &err) == PC_OK);
	CHECK(d->x[0] == 0 && d->x[1] == 0 && d->x[2] == 2 && d->x[3] == 2);
	pc_dataset_free(d);
	buf_free(&xi);
	buf_free(&yi);
}

/* ---- malformed files ---- */

TEST(data_bad_idx)
{
	struct buf yi = small_labels(), xi = small_inputs(), b = {0};
	uint32_t huge[4] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 2};
	uint32_t zero[3] = {4, 0, 3};
	uint32_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
	uint8_t one = 7;

	/* header shorter than the magic number */
	put(&b, xi.p, 3);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "the magic number needs 4");
	buf_free(&b);
	/* header cut inside the dims */
	put(&b, xi.p, 10);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "3 dims need 16 header bytes, the file has 10");
	buf_free(&b);
	/* data cut: the error names the offset where the file ends */
	put(&b, xi.p, xi.len - 5);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "truncated at byte offset 35");
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "needs 24 bytes from byte offset 16, the file has 19");
	buf_free(&b);
	/* trailing bytes */
	put(&b, xi.p, xi.len);
	put(&b, "xyz", 3);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "3 unexpected bytes after the IDX data at byte offset 40");
	buf_free(&b);
	/* dims whose product overflows */
	b = idx_make(0x08, 4, huge, NULL, 1, 0);
	EXPECT_ERROR(&b, &yi, PC_ERR_SHAPE, "more than 2^40 elements");
	buf_free(&b);
	b = idx_make(0x08, 3, zero, NULL, 1, 0);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "dimension 1 is zero");
	buf_free(&b);
	/* unknown type, rank 0 and rank 9 */
	b = idx_make(0x0A, 1, small_ldims, small_y, 1, 4);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "unknown IDX element type 0x0a");
	buf_free(&b);
	b = idx_make(0x08, 0, NULL, &one, 1, 1);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "IDX rank 0");
	buf_free(&b);
	b = idx_make(0x08, 9, nine, NULL, 1, 0);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "IDX rank 9");
	buf_free(&b);
	/* wrong magic, empty */
	put(&b, "PK\003\004 this is a zip", 18);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "unrecognized format (first bytes 50 4b 03 04)");
	EXPECT_ERROR(&xi, &b, PC_ERR_FORMAT, "labels: unrecognized format");
	buf_free(&b);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "inputs: file is empty");
	buf_free(&xi);
	buf_free(&yi);
}

TEST(data_bad_npy)
{
	float xf[6] = {0};
	uint8_t y[3] = {0, 1, 2};
	struct buf yb = npy_make(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", y, 1, 3, 0);
	struct buf good = npy_make(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", xf, 4, 6, 0);
	struct buf b = {0};
	static const struct {
		const char *dict;
		int code;
		const char *needle;
	} cases[] = {
	    {"{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", PC_ERR_UNSUPPORTED, "Fortran order"},
	    {"{'descr': '<c8', 'fortran_order': False, 'shape': (3, 2), }", PC_ERR_UNSUPPORTED, "descr '<c8'"},
	    {"{'descr': '|f4', 'fortran_order': False, 'shape': (3, 2), }", PC_ERR_UNSUPPORTED, "descr '|f4'"},
	    {"{'descr': 'f4', 'fortran_order': False, 'shape': (3, 2), }", PC_ERR_UNSUPPORTED, "descr 'f4'"},
	    {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", PC_ERR_UNSUPPORTED, "structured"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), 'extra': 1}", PC_ERR_FORMAT, "key 'extra'"},
	    {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)}", PC_ERR_FORMAT,
	     "repeated key 'descr'"},
	    {"{'descr': '<f4', 'shape': (3, 2)}", PC_ERR_FORMAT, "lacks 'fortran_order'"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), ", PC_ERR_FORMAT, "not terminated"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2", PC_ERR_FORMAT, "not terminated"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2)} junk", PC_ERR_FORMAT, "only padding"},
	    {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3, 2)}", PC_ERR_FORMAT, "True or False"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, -2)}", PC_ERR_FORMAT, "a dimension"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0)}", PC_ERR_FORMAT, "dimension 1 is zero"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999, 2)}", PC_ERR_SHAPE, "2^40"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1048576, 1048576, 2)}", PC_ERR_SHAPE, "2^40"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': ()}", PC_ERR_SHAPE, "scalar"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", PC_ERR_UNSUPPORTED,
	     "more than 8 dims"},
	    {"['descr', '<f4']", PC_ERR_FORMAT, "expected '{'"},
	    {"{descr: '<f4'}", PC_ERR_FORMAT, "expected a quoted key"},
	    {"{'descr' '<f4'}", PC_ERR_FORMAT, "expected ':'"},
	    {"{'descr': '<f4", PC_ERR_FORMAT, "not terminated"},
	    {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2) 'x'}", PC_ERR_FORMAT, "expected ',' or '}'"},
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		/* 6 elements suit the (3, 2) cases; others fail before the data */
		b = npy_make(1, cases[k].dict, xf, 4, 6, 0);
		expect_error_line(t, (int)(1000 + k), &b, &yb, PC_DATA_MAX_BYTES, cases[k].code, cases[k].needle);
		buf_free(&b);
	}
	/* the header length points past the end of the file */
	put(&b, good.p, good.len);
	b.p[8] = 0xff, b.p[9] = 0x7f;
	EXPECT_ERROR(&b, &yb, PC_ERR_FORMAT, "header length 32767 (byte offset 8) points past the end");
	buf_free(&b);
	/* truncated before and inside the length field */
	put(&b, good.p, 7);
	EXPECT_ERROR(&b, &yb, PC_ERR_FORMAT, "magic and version need 8");
	buf_free(&b);
	put(&b, good.p, 9);
	EXPECT_ERROR(&b, &yb, PC_ERR_FORMAT, "header length field ends at byte offset 10");
	buf_free(&b);
	/* truncated data names the offset */
	put(&b, good.p, good.len - 4);
	EXPECT_ERROR(&b, &yb, PC_ERR_FORMAT,
		     "truncated at byte offset 148: shape [3,2] of float needs 24 bytes "
		     "from byte offset 128, the file has 20");
	buf_free(&b);
	/* unknown version */
	put(&b, good.p, good.len);
	b.p[6] = 4;
	EXPECT_ERROR(&b, &yb, PC_ERR_UNSUPPORTED, "NPY version 4.0");
	buf_free(&b);
	buf_free(&good);
	buf_free(&yb);
}

TEST(data_bad_dataset)
{
	struct buf xi = small_inputs(), yi = small_labels(), b = {0};
	int64_t y64[4] = {0, 1, -1, 1};
	uint32_t three[1] = {3}, two[2] = {4, 1};
	float fy[4] = {0, 1, 2, 1};
	int64_t x64[4] = {1, 2, 3, 4};
	float xnan[4] = {1, NAN, 3, 4};
	uint8_t zeros[4] = {0, 0, 0, 0};

	/* count mismatch */
	b = idx_make(0x08, 1, three, small_y, 1, 3);
	EXPECT_ERROR(&xi, &b, PC_ERR_SHAPE, "labels: 3 labels for 4 input samples");
	buf_free(&b);
	/* labels out of range */
	b = npy_make(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", y64, 8, 4, 0);
	EXPECT_ERROR(&xi, &b, PC_ERR_FORMAT, "label -1 (index 2) is outside [0, 2^31)");
	buf_free(&b);
	y64[2] = (int64_t)1 << 31;
	b = npy_make(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", y64, 8, 4, 0);
	EXPECT_ERROR(&xi, &b, PC_ERR_FORMAT, "label 2147483648 (index 2) is outside");
	buf_free(&b);
	y64[2] = INT64_MIN;
	b = npy_make(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", y64, 8, 4, 0);
	EXPECT_ERROR(&xi, &b, PC_ERR_FORMAT, "is outside [0, 2^31)");
	buf_free(&b);
	y64[2] = 1 << 20;
	b = npy_make(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", y64, 8, 4, 0);
	EXPECT_ERROR(&xi, &b, PC_ERR_LIMIT, "more than 1048576 classes");
	buf_free(&b);
	/* a single class */
	b = idx_make(0x08, 1, small_ldims, zeros, 1, 4);
	EXPECT_ERROR(&xi, &b, PC_ERR_FORMAT, "at least 2 classes");
	buf_free(&b);
	/* labels of the wrong type or rank */
	b = idx_make(0x0D, 1, small_ldims, fy, 4, 4);
	EXPECT_ERROR(&xi, &b, PC_ERR_UNSUPPORTED, "labels must be integers");
	buf_free(&b);
	b = idx_make(0x08, 2, two, small_y, 1, 4);
	EXPECT_ERROR(&xi, &b, PC_ERR_SHAPE, "labels have shape [4,1]");
	buf_free(&b);
	/* inputs of an unsupported type, or not finite */
	b = npy_make(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4, 1), }", x64, 8, 4, 0);
	EXPECT_ERROR(&b, &yi, PC_ERR_UNSUPPORTED, "inputs hold int64");
	buf_free(&b);
	b = npy_make(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 1), }", xnan, 4, 4, 0);
	EXPECT_ERROR(&b, &yi, PC_ERR_INVALID, "sample 1 element 0 is nan");
	buf_free(&b);
	buf_free(&xi);
	buf_free(&yi);
}

TEST(data_bad_gzip)
{
	struct buf xi = small_inputs(), yi = small_labels(), gz = gz_make(&xi), b = {0}, zeros = {0}, bomb, nested;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	static unsigned char block[4096];

	/* corrupt deflate data: an invalid block type (11) in the first byte */
	put(&b, gz.p, gz.len);
	b.p[10] = 0x07;
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "corrupt gzip stream");
	buf_free(&b);
	/* truncated stream */
	put(&b, gz.p, gz.len - 6);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "gzip stream is truncated");
	buf_free(&b);
	/* a corrupt trailer (CRC) */
	put(&b, gz.p, gz.len);
	b.p[gz.len - 8] ^= 0xff;
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "corrupt gzip stream");
	buf_free(&b);
	/* garbage after the stream */
	put(&b, gz.p, gz.len);
	put(&b, "junk", 4);
	EXPECT_ERROR(&b, &yi, PC_ERR_FORMAT, "4 bytes of garbage after the gzip stream");
	buf_free(&b);
	/* gzip inside gzip */
	nested = gz_make(&gz);
	EXPECT_ERROR(&nested, &yi, PC_ERR_UNSUPPORTED, "gzip inside gzip");
	buf_free(&nested);
	/* a bomb: 4 MiB of zeros, a few KiB compressed, against a 64 KiB cap */
	for (int i = 0; i < 1024; i++)
		put(&zeros, block, sizeof(block));
	bomb = gz_make(&zeros);
	CHECK(bomb.len < 16384);
	expect_error_line(t, __LINE__, &bomb, &yi, 65536, PC_ERR_LIMIT, "decompresses to more than 65536 bytes");
	/* the boundary: a cap of exactly the decompressed size inflates (and
	 * then the zeros fail as IDX), one byte less does not */
	expect_error_line(t, __LINE__, &bomb, &yi, zeros.len, PC_ERR_FORMAT, "unknown IDX element type 0x00");
	expect_error_line(t, __LINE__, &bomb, &yi, zeros.len - 1, PC_ERR_LIMIT, "decompresses to more than");
	/* a small last member makes the size hint (its ISIZE) useless: the
	 * buffer must grow, and stop growing at the cap */
	{
		struct buf tail = gz_make(&yi), cat = {0};
		put(&cat, bomb.p, bomb.len);
		put(&cat, tail.p, tail.len);
		expect_error_line(t, __LINE__, &cat, &yi, PC_DATA_MAX_BYTES, PC_ERR_FORMAT,
				  "unknown IDX element type 0x00");
		expect_error_line(t, __LINE__, &cat, &yi, 1 << 20, PC_ERR_LIMIT, "more than 1048576 bytes");
		buf_free(&tail);
		buf_free(&cat);
	}
	/* the cap also holds for plain files, at exactly their size too */
	expect_error_line(t, __LINE__, &xi, &yi, 30, PC_ERR_LIMIT, "file has 40 bytes; at most 30");
	CHECK(pc_dataset_load_memory_max(xi.p, xi.len, yi.p, yi.len, NULL, 0, 40, &d, &err) == PC_OK);
	pc_dataset_free(d);
	d = NULL;
	buf_free(&bomb);
	buf_free(&zeros);
	buf_free(&gz);
	buf_free(&xi);
	buf_free(&yi);
}

TEST(data_bad_files)
{
	struct tmpdir td;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	struct buf yi = small_labels();
	const char *yp, *missing;

	REQUIRE(tmp_open(&td));
	yp = tmp_path(&td, "y.idx");
	missing = tmp_path(&td, "missing.idx");
	REQUIRE(write_plain(yp, &yi));
	CHECK_INT(pc_dataset_load(missing, yp, NULL, 0, &d, &err), PC_ERR_NOT_FOUND);
	CHECK(strcmp(err.where, missing) == 0);
	CHECK(d == NULL);
	pc_error_clear(&err);
	/* a directory */
	CHECK_INT(pc_dataset_load(yp, td.dir, NULL, 0, &d, &err), PC_ERR_IO);
	CHECK(strcmp(err.where, td.dir) == 0);
	pc_error_clear(&err);
	/* a count mismatch names the labels file */
	{
		struct buf xi = small_inputs(), y3 = {0};
		uint32_t three[1] = {3};
		const char *xp = tmp_path(&td, "x.idx"), *y3p = tmp_path(&td, "y3.idx");
		y3 = idx_make(0x08, 1, three, small_y, 1, 3);
		REQUIRE(write_plain(xp, &xi) && write_plain(y3p, &y3));
		CHECK_INT(pc_dataset_load(xp, y3p, NULL, 0, &d, &err), PC_ERR_SHAPE);
		CHECK(strcmp(err.where, y3p) == 0);
		buf_free(&xi);
		buf_free(&y3);
	}
	tmp_close(&td);
	buf_free(&yi);
}

/* Every prefix of a valid file, and many single-byte corruptions, must
 * fail cleanly or load: never crash or read out of bounds (ASan watches). */
TEST(data_fuzz_prefixes_and_flips)
{
	struct buf xi = small_inputs(), yi = small_labels(), files[3];
	float xf[6] = {1, 2, 3, 4, 5, 6};
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	files[0] = xi;
	files[1] = gz_make(&xi);
	files[2] = npy_make(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 1, 1), }", xf, 4, 4, 0);
	for (int f = 0; f < 3; f++) {
		for (size_t len = 0; len < files[f].len; len++) {
			struct pc_dataset *d = NULL;
			struct pc_error err = {0};
			/* an exact copy, so ASan sees any read past len */
			unsigned char *p = malloc(len ? len : 1);
			REQUIRE(p);
			memcpy(p, files[f].p, len);
			CHECK_MSG(pc_dataset_load_memory(p, len, yi.p, yi.len, NULL, 0, &d, &err) != PC_OK,
				  "file %d prefix %zu loaded", f, len);
			CHECK(d == NULL);
			CHECK(err.code != PC_OK && err.text[0]);
			free(p);
		}
		for (int k = 0; k < 3000; k++) {
			struct pc_dataset *d = NULL;
			struct pc_error err = {0};
			unsigned char *p = malloc(files[f].len);
			int rc;
			REQUIRE(p);
			memcpy(p, files[f].p, files[f].len);
			for (int flips = 0; flips < 1 + k % 3; flips++) {
				rng = rng * 6364136223846793005ull + 1442695040888963407ull;
				p[(rng >> 33) % files[f].len] = (unsigned char)(rng >> 20);
			}
			rc = pc_dataset_load_memory(p, files[f].len, yi.p, yi.len, NULL, 0, &d, &err);
			CHECK((rc == PC_OK) == (d != NULL));
			CHECK(rc == PC_OK || err.text[0]);
			pc_dataset_free(d);
			free(p);
		}
	}
	for (int f = 0; f < 3; f++)
		buf_free(&files[f]);
	buf_free(&yi);
}

TEST(data_check_input)
{
	struct pc_dataset d = {.n = 1, .sample = {2, {28, 28}}};
	struct pc_shape m1 = {3, {1, 28, 28}}, m3 = {3, {3, 28, 28}}, same = {2, {28, 28}}, other = {2, {28, 27}},
			flat = {1, {784}}, two = {4, {1, 1, 28, 28}};
	struct pc_error err = {0};

	CHECK_INT(pc_dataset_check_input(&d, &same, &err), PC_OK);
	CHECK_INT(pc_dataset_check_input(&d, &m1, &err), PC_OK);
	CHECK_INT(pc_dataset_check_input(&d, &m3, &err), PC_ERR_SHAPE);
	CHECK_MSG(strstr(err.text, "[28,28]") && strstr(err.text, "[3,28,28]"), "%s", err.text);
	pc_error_clear(&err);
	CHECK_INT(pc_dataset_check_input(&d, &other, &err), PC_ERR_SHAPE);
	pc_error_clear(&err);
	CHECK_INT(pc_dataset_check_input(&d, &flat, &err), PC_ERR_SHAPE);
	pc_error_clear(&err);
	CHECK_INT(pc_dataset_check_input(&d, &two, &err), PC_ERR_SHAPE);
	/* a stored channel dim matches the model exactly */
	d.sample = m1;
	CHECK_INT(pc_dataset_check_input(&d, &m1, NULL), PC_OK);
	CHECK_INT(pc_dataset_check_input(&d, &same, NULL), PC_ERR_SHAPE);
}

/* An H×W sample is one channel (N×28×28 data for an N×1×28×28 model), so a
 * single mean/std applies to it and a per-channel list must have one value;
 * a 1-D sample has one channel per feature. */
TEST(data_preprocess_image_is_one_channel)
{
	uint8_t px[8] = {0, 51, 102, 153, 204, 255, 0, 255};
	uint32_t dims[3] = {2, 2, 2}, ld[1] = {2};
	uint8_t y[2] = {0, 1};
	struct buf xi = idx_make(0x08, 3, dims, px, 1, 8), yi = idx_make(0x08, 1, ld, y, 1, 2);
	struct pc_preprocess pp;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};

	pc_preprocess_default(&pp);
	pp.n_mean = 1;
	pp.mean[0] = 0.5;
	pp.n_std = 1;
	pp.std[0] = 0.5;
	REQUIRE(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 0, &d, &err) == PC_OK);
	CHECK_CLOSE(d->x[0], -1.0, 1e-6, 0);
	CHECK_CLOSE(d->x[5], 1.0, 1e-6, 0);
	CHECK_CLOSE(d->x[1], (51.0 / 255.0 - 0.5) / 0.5, 1e-6, 0);
	pc_dataset_free(d);
	d = NULL;
	pp.n_mean = 2;
	pp.mean[1] = 0.1;
	CHECK_INT(pc_dataset_load_memory(xi.p, xi.len, yi.p, yi.len, &pp, 0, &d, &err), PC_ERR_INVALID);
	CHECK(d == NULL);
	CHECK_MSG(strstr(err.text, "1 channels") != NULL, "%s", err.text);
	buf_free(&xi);
	buf_free(&yi);
}

/* ---- the decoded-size cap (max_dataset_decoded_mb) ---- */

/* 300 uint8 images of 32x32 are 307,200 bytes in the file and 1,228,800
 * as floats, plus 1,200 of labels: over a 1 MiB cap, and refused naming
 * the file, its shape and the bytes before the float buffer exists; a
 * gzip of it (a few hundred bytes) the same. Under the default cap it
 * loads. */
TEST(data_decoded_size_is_capped)
{
	static const uint32_t dims[3] = {300, 32, 32}, ldims[1] = {300};
	struct pc_limits saved = *pc_limits_get(), small = saved;
	uint8_t *x = calloc(300 * 32 * 32, 1), y[300];
	struct buf xi, yi, xz;
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};

	REQUIRE(x);
	for (int i = 0; i < 300; i++)
		y[i] = (uint8_t)(i % 10);
	xi = idx_make(0x08, 3, dims, x, 1, 300 * 32 * 32);
	yi = idx_make(0x08, 1, ldims, y, 1, 300);
	xz = gz_make(&xi);
	CHECK_MSG(xz.len < 4096, "the gzip has %zu bytes", xz.len);
	small.max_decoded_bytes = (uint64_t)1 << 20;
	pc_limits_set(&small);
	EXPECT_ERROR(&xi, &yi, PC_ERR_LIMIT,
		     "inputs: shape [300,32,32] of uint8 decodes to 1230000 bytes of floats and labels, over "
		     "max_dataset_decoded_mb (1 MiB)");
	EXPECT_ERROR(&xz, &yi, PC_ERR_LIMIT, "decodes to 1230000 bytes");
	/* the CLI's path names the file */
	{
		struct tmpdir td;
		const char *xp, *yp;
		char msg[700];
		REQUIRE(tmp_open(&td));
		xp = tmp_path(&td, "x.idx.gz");
		yp = tmp_path(&td, "y.idx");
		CHECK(write_plain(xp, &xz) && write_plain(yp, &yi));
		CHECK_INT(pc_dataset_load(xp, yp, NULL, 0, &d, &err), PC_ERR_LIMIT);
		pc_error_format(&err, msg, sizeof(msg));
		CHECK_MSG(strstr(msg, xp) && strstr(msg, "max_dataset_decoded_mb"), "%s", msg);
		/* a limit of 200 samples fits: the cap is on what is kept */
		pc_error_clear(&err);
		CHECK_INT(pc_dataset_load(xp, yp, NULL, 200, &d, &err), PC_OK);
		CHECK(d && d->n == 200);
		pc_dataset_free(d);
		d = NULL;
		tmp_close(&td);
	}
	pc_limits_set(&saved);
	pc_error_clear(&err);
	CHECK_INT(pc_dataset_load_memory(xz.p, xz.len, yi.p, yi.len, NULL, 0, &d, &err), PC_OK);
	CHECK(d && d->n == 300);
	pc_dataset_free(d);
	buf_free(&xi);
	buf_free(&yi);
	buf_free(&xz);
	free(x);
}
