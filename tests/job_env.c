/* The test environment of job_env.h. */
#include "job_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "be_util.h"
#include "test.h"

struct pcd_blob_writer *job_env_copy_in(struct pcd_blobs *b, const char *path)
{
	struct pcd_blob_writer *w = NULL;
	size_t len;
	char *data = be_read_file(path, &len);

	if (!data)
		return NULL;
	if (pcd_blob_writer_begin(b, 0, &w, NULL) == PC_OK && pcd_blob_writer_write(w, data, len, NULL) != PC_OK) {
		pcd_blob_writer_abort(w);
		w = NULL;
	}
	free(data);
	return w;
}

int job_env_setup(struct job_env *e, const char *where)
{
	char path[PATH_MAX];
	struct pcd_blob_writer *w, *x, *y;
	struct pc_error err = {0};

	memset(e, 0, sizeof(*e));
	if (access(T10K_X, R_OK) != 0 || access(T10K_Y, R_OK) != 0)
		return 1;
	if (!be_tmpdir(e->dir, sizeof(e->dir)))
		return -1;
	snprintf(path, sizeof(path), "%s/paracorr.db", e->dir);
	if (pcd_store_open(where ? where : path, &e->store, &err))
		return -1;
	snprintf(path, sizeof(path), "%s/data", e->dir);
	if (pcd_blobs_open(path, &e->blobs, &err))
		return -1;
	snprintf(path, sizeof(path), "%s/tests/reference/fixtures/mlp_op13.onnx", pc_test_root());
	if (!(w = job_env_copy_in(e->blobs, path)) || pcd_blob_writer_finish(w, e->model, &err) ||
	    pcd_blobs_commit_model(e->blobs, w, NULL, &err) ||
	    pcd_store_model_put(e->store, "default", e->model, 1, "{}", NULL, &err))
		return -1;
	x = job_env_copy_in(e->blobs, T10K_X);
	y = job_env_copy_in(e->blobs, T10K_Y);
	if (!x || !y) {
		pcd_blob_writer_abort(x);
		pcd_blob_writer_abort(y);
		return -1;
	}
	if (pcd_blobs_commit_dataset(e->blobs, x, y, e->dataset, NULL, &err) ||
	    pcd_store_dataset_put(e->store, "default", e->dataset, 1, "{}", NULL, &err))
		return -1;
	return 0;
}

void job_env_teardown(struct job_env *e)
{
	pcd_store_close(e->store);
	pcd_blobs_free(e->blobs);
	if (e->dir[0])
		be_rmtree(e->dir);
}
