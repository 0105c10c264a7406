/* Content-addressed uploads: ids, limits, commit of existing content,
 * datasets with and without labels, deletion, id validation. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobs.h"
#include "sha256.h"
#include "be_util.h"
#include "test.h"

static int put_model(struct pcd_blobs *b, const char *text, char id[65], int *existed)
{
	struct pcd_blob_writer *w;
	struct pc_error err = {0};
	size_t i, n = strlen(text);
	int rc;

	if ((rc = pcd_blob_writer_begin(b, 0, &w, &err)))
		return rc;
	for (i = 0; i < n; i += 3)
		if ((rc = pcd_blob_writer_write(w, text + i, n - i < 3 ? n - i : 3, &err))) {
			pcd_blob_writer_abort(w);
			return rc;
		}
	if ((rc = pcd_blob_writer_finish(w, id, &err))) {
		pcd_blob_writer_abort(w);
		return rc;
	}
	return pcd_blobs_commit_model(b, w, existed, &err);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

TEST(blobs_model_commit_is_content_addressed)
{
	char dir[PATH_MAX - 16], id[65], id2[65], want[65], path[PATH_MAX], tmp[PATH_MAX];
	struct pcd_blobs *b;
	struct pc_error err = {0};
	int existed = -1;
	char *back;

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	REQUIRE(pcd_blobs_open(dir, &b, &err) == PC_OK);
	REQUIRE(put_model(b, "not really onnx, but bytes", id, &existed) == PC_OK);
	pcd_sha256_hex_of("not really onnx, but bytes", 26, want);
	CHECK(strcmp(id, want) == 0);
	CHECK_INT(existed, 0);
	CHECK(pcd_blobs_model_exists(b, id));
	REQUIRE(pcd_blobs_model_path(b, id, path, sizeof(path), &err) == PC_OK);
	back = be_read_file(path, NULL);
	CHECK(back && strcmp(back, "not really onnx, but bytes") == 0);
	free(back);

	REQUIRE(put_model(b, "not really onnx, but bytes", id2, &existed) == PC_OK);
	CHECK(strcmp(id, id2) == 0);
	CHECK_INT(existed, 1);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	CHECK_INT(count_entries(tmp), 0);

	CHECK_INT(pcd_blobs_delete_model(b, id, &err), PC_OK);
	CHECK(!pcd_blobs_model_exists(b, id));
	pc_error_clear(&err);
	CHECK_INT(pcd_blobs_delete_model(b, id, &err), PC_ERR_NOT_FOUND);
	pcd_blobs_free(b);
	be_rmtree(dir);
}

TEST(blobs_limit_and_abort)
{
	char dir[PATH_MAX - 16], tmp[PATH_MAX];
	struct pcd_blobs *b;
	struct pcd_blob_writer *w;
	struct pc_error err = {0};

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	REQUIRE(pcd_blobs_open(dir, &b, &err) == PC_OK);
	REQUIRE(pcd_blob_writer_begin(b, 10, &w, &err) == PC_OK);
	CHECK_INT(pcd_blob_writer_write(w, "0123456789", 10, &err), PC_OK);
	CHECK_INT(pcd_blob_writer_bytes(w), 10);
	CHECK_INT(pcd_blob_writer_write(w, "x", 1, &err), PC_ERR_LIMIT);
	CHECK(strstr(err.text, "10 bytes") != NULL);
	pcd_blob_writer_abort(w);
	snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
	CHECK_INT(count_entries(tmp), 0);

	/* a temp file left by a crash is removed at the next open */
	pc_error_clear(&err);
	REQUIRE(pcd_blob_writer_begin(b, 0, &w, &err) == PC_OK);
	REQUIRE(pcd_blob_writer_write(w, "abc", 3, &err) == PC_OK);
	CHECK_INT(count_entries(tmp), 1);
	pcd_blobs_free(b);
	REQUIRE(pcd_blobs_open(dir, &b, &err) == PC_OK);
	CHECK_INT(count_entries(tmp), 0);
	pcd_blob_writer_abort(w); /* its file is gone already: harmless */
	pcd_blobs_free(b);
	be_rmtree(dir);
}

static struct pcd_blob_writer *writer_with(struct pcd_blobs *b, const char *text)
{
	struct pcd_blob_writer *w;

	if (pcd_blob_writer_begin(b, 0, &w, NULL))
		return NULL;
	if (pcd_blob_writer_write(w, text, strlen(text), NULL)) {
		pcd_blob_writer_abort(w);
		return NULL;
	}
	return w;
}

TEST(blobs_dataset_parts_and_id)
{
	char dir[PATH_MAX], id[65], id2[65], in[PATH_MAX], lab[PATH_MAX], hx[65], hy[65], want[65];
	struct pcd_blobs *b;
	struct pc_error err = {0};
	struct pcd_sha256 c;
	uint8_t d[32];
	int existed = -1, has_labels = -1;
	char *back;

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	REQUIRE(pcd_blobs_open(dir, &b, &err) == PC_OK);
	REQUIRE(pcd_blobs_commit_dataset(b, writer_with(b, "XX"), writer_with(b, "YY"), id, &existed, &err) == PC_OK);
	CHECK_INT(existed, 0);
	/* the documented derivation, spelled out */
	pcd_sha256_hex_of("XX", 2, hx);
	pcd_sha256_hex_of("YY", 2, hy);
	pcd_sha256_init(&c);
	pcd_sha256_update(&c, "inputs\0", 7);
	pcd_sha256_update(&c, hx, 64);
	pcd_sha256_update(&c, "labels\0", 7);
	pcd_sha256_update(&c, hy, 64);
	pcd_sha256_final(&c, d);
	pcd_sha256_hex(d, want);
	CHECK(strcmp(id, want) == 0);
	REQUIRE(pcd_blobs_dataset_paths(b, id, in, lab, sizeof(in), &has_labels, &err) == PC_OK);
	CHECK_INT(has_labels, 1);
	back = be_read_file(lab, NULL);
	CHECK(back && strcmp(back, "YY") == 0);
	free(back);

	REQUIRE(pcd_blobs_commit_dataset(b, writer_with(b, "XX"), writer_with(b, "YY"), id2, &existed, &err) == PC_OK);
	CHECK_INT(existed, 1);
	CHECK(strcmp(id, id2) == 0);

	/* inputs alone: another id, no labels file */
	REQUIRE(pcd_blobs_commit_dataset(b, writer_with(b, "XX"), NULL, id2, &existed, &err) == PC_OK);
	CHECK(strcmp(id, id2) != 0);
	REQUIRE(pcd_blobs_dataset_paths(b, id2, in, lab, sizeof(in), &has_labels, &err) == PC_OK);
	CHECK_INT(has_labels, 0);
	CHECK(pcd_blobs_dataset_exists(b, id2));

	CHECK_INT(pcd_blobs_delete_dataset(b, id, &err), PC_OK);
	CHECK(!pcd_blobs_dataset_exists(b, id));
	CHECK(pcd_blobs_dataset_exists(b, id2));
	CHECK_INT(pcd_blobs_delete_dataset(b, id, NULL), PC_ERR_NOT_FOUND);
	pcd_blobs_free(b);
	be_rmtree(dir);
}

TEST(blobs_ids_validated_before_paths)
{
	char dir[PATH_MAX], path[PATH_MAX], lab[PATH_MAX];
	char upper[65];
	struct pcd_blobs *b;
	struct pc_error err = {0};

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	REQUIRE(pcd_blobs_open(dir, &b, &err) == PC_OK);
	memset(upper, 'A', 64);
	upper[64] = '\0';
	CHECK(!pcd_blobs_id_valid(upper));
	CHECK(!pcd_blobs_id_valid("../../etc/passwd"));
	CHECK(!pcd_blobs_id_valid(""));
	CHECK(!pcd_blobs_id_valid(NULL));
	upper[0] = 'a';
	memset(upper, 'a', 64);
	CHECK(pcd_blobs_id_valid(upper));
	CHECK_INT(pcd_blobs_model_path(b, "../models/x", path, sizeof(path), &err), PC_ERR_INVALID);
	CHECK_INT(pcd_blobs_dataset_paths(b, "..", path, lab, sizeof(path), NULL, NULL), PC_ERR_INVALID);
	CHECK_INT(pcd_blobs_delete_dataset(b, "..", NULL), PC_ERR_INVALID);
	CHECK_INT(pcd_blobs_model_path(b, upper, path, 8, NULL), PC_ERR_LIMIT);
	pcd_blobs_free(b);
	be_rmtree(dir);
}
