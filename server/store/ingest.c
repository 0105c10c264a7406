/* ingest: validate, commit, record (ingest.h). */
#include "ingest.h"

#include <stdlib.h>

#include "json_out.h"
#include "scrub.h"

int pcd_upload_bytes_kept(struct pcd_blobs *blobs, struct pcd_store *store, enum pcd_upload u, const char *tenant,
			  const char *id, struct pc_error *err)
{
	struct pc_error e = {0};
	int dataset = u == PCD_UPLOAD_DATASET;

	if (!pcd_blobs_shared(blobs) || pcd_blobs_stored(blobs, dataset, id, &e) != PC_ERR_NOT_FOUND)
		return PC_OK;
	/* another node's delete of the last record of these bytes ran between
	 * their commit and this record, and took them: the record goes too */
	(dataset ? pcd_store_dataset_delete : pcd_store_model_delete)(store, tenant, id, NULL, NULL);
	return pc_error_set(err, PC_ERR_BUSY, dataset ? "dataset" : "model",
			    "the same bytes were being deleted on another node; upload them again");
}

int pcd_model_ingest(const struct pcd_ingest *in, const char *tenant, struct pcd_blob_writer **w, const char *id,
		     uint64_t bytes, json_t **info, int *existed, struct pc_error *err)
{
	char *text = NULL;
	int rc, file_existed = 0, rec_existed = 0;

	*info = NULL;
	/* the loader names every unsupported op at once */
	if ((rc = pcd_validate_model(in->validator, pcd_blob_writer_path(*w), id, bytes, info, err))) {
		pcd_error_hide_path(err, pcd_blob_writer_path(*w), "model");
		goto fail;
	}
	if (!(text = pcd_json_text(*info, PCD_JSON_COMPACT))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "model", "out of memory");
		goto fail;
	}
	if (in->lock)
		pthread_mutex_lock(in->lock);
	/* again under the lock: two ingests at once must not both pass */
	if (in->admit && (rc = in->admit(in->admit_arg, bytes, err))) {
		if (in->lock)
			pthread_mutex_unlock(in->lock);
		goto fail;
	}
	rc = pcd_blobs_commit_model(in->blobs, *w, &file_existed, err);
	*w = NULL; /* taken by the commit either way */
	if (!rc && (rc = pcd_store_model_put(in->store, tenant, id, (int64_t)bytes, text, &rec_existed, err)) &&
	    !file_existed)
		pcd_blobs_delete_model(in->blobs, id, NULL); /* no file without a record (a full disk) */
	if (!rc && !rec_existed)
		rc = pcd_upload_bytes_kept(in->blobs, in->store, PCD_UPLOAD_MODEL, tenant, id, err);
	if (in->lock)
		pthread_mutex_unlock(in->lock);
	if (existed)
		*existed = rec_existed;
	if (rc)
		goto fail;
	free(text);
	return PC_OK;
fail:
	free(text);
	json_decref(*info);
	*info = NULL;
	return rc;
}
