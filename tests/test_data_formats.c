/* CSV and safetensors datasets from hand-built bytes, well-formed and not:
 * every malformed file fails with its line and column, or byte offset. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "paracorr/data.h"
#include "be_util.h"
#include "test.h"

static int load_text(const char *text, struct pc_dataset **d, struct pc_error *err)
{
	return pc_dataset_load_memory(text, strlen(text), NULL, 0, NULL, 0, d, err);
}

TEST(data_csv_with_header_and_crlf)
{
	struct pc_dataset *d;
	struct pc_error err = {0};

	REQUIRE(load_text("x0, x1 ,label\r\n1, 2.5,0\r\n-3,4e1,1\r\n0,0.25,1\r\n\r\n", &d, &err) == PC_OK);
	CHECK_INT(d->n, 3);
	CHECK_INT(d->sample.ndim, 1);
	CHECK_INT(d->sample.dim[0], 2);
	CHECK_INT(d->classes, 2);
	CHECK_INT(d->input_dtype, 1);
	CHECK(d->x[0] == 1.0f && d->x[1] == 2.5f && d->x[2] == -3.0f && d->x[3] == 40.0f && d->x[5] == 0.25f);
	CHECK(d->y[0] == 0 && d->y[1] == 1 && d->y[2] == 1);
	pc_dataset_free(d);
}

TEST(data_csv_without_header_and_limit)
{
	struct pc_dataset *d;
	struct pc_error err = {0};

	REQUIRE(pc_dataset_load_memory("0.5,1,2\n1,0,0\n7,7,1", 19, NULL, 0, NULL, 2, &d, &err) == PC_OK);
	CHECK_INT(d->n, 2);
	CHECK_INT(d->classes, 3); /* every label counts, whatever the limit */
	CHECK(d->x[0] == 0.5f && d->y[0] == 2 && d->y[1] == 0);
	pc_dataset_free(d);
}

static void expect_csv_error(struct pc_test *t, const char *text, enum pc_status code, const char *needle)
{
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	int rc = load_text(text, &d, &err);

	CHECK_MSG(rc == (int)code, "%s: got %s (%s), want %s", text, pc_status_name(rc), err.text,
		  pc_status_name(code));
	CHECK_MSG(strstr(err.text, needle) != NULL, "%s: '%s' does not mention '%s'", text, err.text, needle);
	CHECK(d == NULL);
	pc_dataset_free(d);
}

TEST(data_csv_errors_name_line_and_column)
{
	expect_csv_error(t, "1,2,0\n3,4\n", PC_ERR_FORMAT, "line 2 has 2 columns; line 1 has 3");
	expect_csv_error(t, "a,b,c\n1,x,0\n", PC_ERR_FORMAT, "line 2, column 2: 'x'");
	expect_csv_error(t, "1,2,0\n1,2,-1\n", PC_ERR_FORMAT, "line 2, column 3: label -1");
	expect_csv_error(t, "1,2,0.5\n", PC_ERR_FORMAT, "line 1, column 3: label 0.5");
	expect_csv_error(t, "1,2,0\n\n1,2,1\n", PC_ERR_FORMAT, "line 2 is empty");
	expect_csv_error(t, "1\n2\n", PC_ERR_FORMAT, "at least one feature");
	expect_csv_error(t, "a,b,label\n", PC_ERR_FORMAT, "no data rows");
	expect_csv_error(t, "1,nan,0\n2,2,1\n", PC_ERR_FORMAT, "line 1, column 2: 'nan'");
	expect_csv_error(t, "1,1e300,0\n2,2,1\n", PC_ERR_FORMAT, "float32 range");
	expect_csv_error(t, "1,,0\n2,2,1\n", PC_ERR_FORMAT, "line 1, column 2: ''");
	expect_csv_error(t, "1,2,0\n3,4,0\n", PC_ERR_FORMAT, "at least 2 classes");
	expect_csv_error(t, "\n\n", PC_ERR_FORMAT, "no rows");
	expect_csv_error(t, "a,b,c\n1,2,x\n", PC_ERR_FORMAT, "line 2, column 3: 'x'");
}

TEST(data_csv_and_labels_file_together_refused)
{
	struct pc_dataset *d;
	struct pc_error err = {0};
	static const unsigned char idx_labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 0, 1};

	CHECK_INT(pc_dataset_load_memory("1,2,0\n3,4,1\n", 12, idx_labels, sizeof(idx_labels), NULL, 0, &d, &err),
		  PC_ERR_INVALID);
	CHECK(strstr(err.text, "give no labels file") != NULL);
	/* and a CSV given as the labels of something else */
	pc_error_clear(&err);
	CHECK_INT(pc_dataset_load_memory(idx_labels, sizeof(idx_labels), "1,2,0\n3,4,1\n", 12, NULL, 0, &d, &err),
		  PC_ERR_FORMAT);
	CHECK(strstr(err.text, "give it as the inputs alone") != NULL);
	/* IDX inputs need their labels */
	pc_error_clear(&err);
	CHECK_INT(pc_dataset_load_memory(idx_labels, sizeof(idx_labels), NULL, 0, NULL, 0, &d, &err), PC_ERR_INVALID);
	CHECK(strstr(err.text, "no labels file") != NULL);
}

TEST(data_csv_from_file_without_labels_path)
{
	char dir[PATH_MAX - 32], path[PATH_MAX];
	struct pc_dataset *d;
	struct pc_error err = {0};
	FILE *f;

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/d.csv", dir);
	f = fopen(path, "w");
	REQUIRE(f);
	fputs("f1,f2,f3,y\n0,0,0,0\n1,1,1,1\n2,2,2,2\n", f);
	fclose(f);
	REQUIRE(pc_dataset_load(path, NULL, NULL, 0, &d, &err) == PC_OK);
	CHECK_INT(d->n, 3);
	CHECK_INT(d->sample.dim[0], 3);
	CHECK_INT(d->classes, 3);
	pc_dataset_free(d);
	be_rmtree(dir);
}

/* header JSON, padded with spaces to a multiple of 8, then data */
static unsigned char *st_build(const char *header, const void *data, size_t dlen, size_t *len)
{
	size_t h = strlen(header), hp = (h + 7) / 8 * 8;
	unsigned char *b = malloc(8 + hp + dlen);

	if (!b)
		return NULL;
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)hp >> (8 * i));
	memcpy(b + 8, header, h);
	memset(b + 8 + h, ' ', hp - h);
	memcpy(b + 8 + hp, data, dlen);
	*len = 8 + hp + dlen;
	return b;
}

struct st_data {
	float x[6];
	int64_t y[3];
};

static int st_load(const char *header, const void *data, size_t dlen, struct pc_dataset **d, struct pc_error *err)
{
	size_t len;
	unsigned char *b = st_build(header, data, dlen, &len);
	int rc;

	if (!b)
		return -1;
	rc = pc_dataset_load_memory(b, len, NULL, 0, NULL, 0, d, err);
	free(b);
	return rc;
}

#define ST_GOOD                                                                                                   \
	"{\"__metadata__\": {\"format\": \"pt\"}, \"inputs\": {\"dtype\": \"F32\", \"shape\": [3, 2], "          \
	"\"data_offsets\": [0, 24]}, \"labels\": {\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [24, 48]}}"

TEST(data_safetensors_inputs_and_labels)
{
	struct st_data sd = {{1, 2, 3, 4, 5, 6}, {0, 2, 1}};
	struct pc_dataset *d;
	struct pc_error err = {0};
	unsigned char u8[6 + 12];
	int32_t lab[3] = {1, 0, 1};

	REQUIRE(st_load(ST_GOOD, &sd, sizeof(sd), &d, &err) == PC_OK);
	CHECK_INT(d->n, 3);
	CHECK_INT(d->sample.dim[0], 2);
	CHECK_INT(d->classes, 3);
	CHECK(d->x[0] == 1.0f && d->x[5] == 6.0f && d->y[1] == 2);
	pc_dataset_free(d);

	/* uint8 inputs (scaled by 1/255) and int32 labels */
	memset(u8, 255, 6);
	memcpy(u8 + 6, lab, sizeof(lab));
	REQUIRE(st_load("{\"labels\": {\"dtype\": \"I32\", \"shape\": [3], \"data_offsets\": [6, 18]}, \"inputs\": "
			"{\"dtype\": \"U8\", \"shape\": [3, 1, 2], \"data_offsets\": [0, 6]}, \"extra\": {\"dtype\": "
			"\"BF16\", \"shape\": [1], \"data_offsets\": [0, 2]}}",
			u8, sizeof(u8), &d, &err) == PC_OK);
	CHECK_INT(d->input_dtype, 2);
	CHECK_INT(d->sample.ndim, 2);
	CHECK(d->x[0] == 1.0f && d->y[0] == 1 && d->y[1] == 0);
	pc_dataset_free(d);
}

static void expect_st_error(struct pc_test *t, const char *header, size_t dlen, enum pc_status code,
			    const char *needle)
{
	struct st_data sd = {{1, 2, 3, 4, 5, 6}, {0, 2, 1}};
	struct pc_dataset *d = NULL;
	struct pc_error err = {0};
	int rc = st_load(header, &sd, dlen, &d, &err);

	CHECK_MSG(rc == (int)code, "%s: got %s (%s), want %s", header, pc_status_name(rc), err.text,
		  pc_status_name(code));
	CHECK_MSG(strstr(err.text, needle) != NULL, "'%s' does not mention '%s'", err.text, needle);
	pc_dataset_free(d);
}

TEST(data_safetensors_malformed)
{
	struct pc_dataset *d;
	struct pc_error err = {0};
	unsigned char b[64];

	expect_st_error(t, ST_GOOD, 40, PC_ERR_FORMAT, "outside the 40 data bytes");
	expect_st_error(t,
			"{\"inputs\": {\"dtype\": \"F32\", \"shape\": [3, 2], \"data_offsets\": [0, 20]}, \"labels\": "
			"{\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [24, 48]}}",
			48, PC_ERR_FORMAT, "hold 20 bytes; shape and dtype need 24");
	expect_st_error(t,
			"{\"inputs\": {\"dtype\": \"F16\", \"shape\": [3, 2], \"data_offsets\": [0, 12]}, \"labels\": "
			"{\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [24, 48]}}",
			48, PC_ERR_UNSUPPORTED, "dtype F16");
	expect_st_error(t, "{\"inputs\": {\"dtype\": \"F32\", \"shape\": [3, 2], \"data_offsets\": [0, 24]}}", 48,
			PC_ERR_FORMAT, "no tensor 'labels'");
	expect_st_error(t,
			"{\"inputs\": {\"dtype\": \"F32\", \"shape\": [3, 2], \"data_offsets\": [0, 24]}, \"labels\": "
			"{\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [30, 24]}}",
			48, PC_ERR_FORMAT, "data_offsets [30, 24]");
	expect_st_error(t,
			"{\"inputs\": {\"dtype\": \"F32\", \"shape\": [3, 2], \"data_offsets\": [0, 24]}, \"labels\": "
			"{\"dtype\": \"I64\", \"shape\": [3, 1], \"data_offsets\": [24, 48]}}",
			48, PC_ERR_SHAPE, "one dim");
	expect_st_error(t,
			"{\"inputs\": {\"dtype\": \"F32\", \"shape\": [3, -2], \"data_offsets\": [0, 24]}, \"labels\": "
			"{\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [24, 48]}}",
			48, PC_ERR_FORMAT, "shape[1]");
	expect_st_error(t, "{\"inputs\": 1, \"labels\": 2}", 48, PC_ERR_FORMAT, "needs dtype, shape and data_offsets");
	expect_st_error(t, "{\"inputs\": {}, \"inputs\": {}}", 48, PC_ERR_FORMAT, "byte offset");

	/* the header length against the file size and the cap */
	memset(b, ' ', sizeof(b));
	memset(b, 0, 8);
	b[0] = 200; /* 200 > 56 bytes left */
	b[8] = '{';
	CHECK_INT(pc_dataset_load_memory(b, sizeof(b), NULL, 0, NULL, 0, &d, &err), PC_ERR_FORMAT);
	CHECK(strstr(err.text, "runs past the end of the file") != NULL);
	pc_error_clear(&err);
	b[0] = 0, b[3] = 0x10; /* 256 MiB */
	CHECK_INT(pc_dataset_load_memory(b, sizeof(b), NULL, 0, NULL, 0, &d, &err), PC_ERR_LIMIT);
	CHECK(strstr(err.text, "over the limit") != NULL);
	/* truncated: under 10 bytes is not taken for safetensors at all */
	pc_error_clear(&err);
	CHECK(pc_dataset_load_memory(b, 9, NULL, 0, NULL, 0, &d, &err) != PC_OK);
}
