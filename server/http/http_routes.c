/* http_routes: the API's routes, one row each in pcd_routes, and their
 * handlers. A handler runs once the request body is complete (see
 * http_server.c), validates, talks to the store and the blobs, and answers
 * with one of the pcd_send_* helpers. None of them runs a study: a job is a
 * row for the workers, who are woken by pcd_workers_notify. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <microhttpd.h>

#include "assets.h"
#include "blobs.h"
#include "charts.h"
#include "compare.h"
#include "json_out.h"
#include "html.h"
#include "http_server.h"
#include "ingest.h"
#include "log.h"
#include "job.h"
#include "paracorr/graph.h"
#include "paracorr/spec.h"
#include "prom.h"
#include "settings.h"
#include "store.h"
#include "validate.h"
#include "workers.h"

#define LIST_DEFAULT  50
#define LIST_MAX      500

/* ?limit= in 1..LIST_MAX; -1 (after answering 400) when malformed. */
static int list_limit(struct pcd_req *r)
{
	const char *q = pcd_req_query(r, "limit");
	char *end;
	long v;

	if (!q)
		return LIST_DEFAULT;
	errno = 0;
	v = strtol(q, &end, 10);
	if (errno || end == q || *end || v < 1 || v > LIST_MAX) {
		pcd_send_problem(r, PC_ERR_BAD_REQUEST, "limit", NULL, "must be an integer in 1..%d", LIST_MAX);
		return -1;
	}
	return (int)v;
}

/* The stored info text as an object, with created_at added, and for the
 * admin role the tenant the record belongs to. */
static json_t *rec_json(struct pcd_req *r, const struct pcd_blob_rec *rec, int with_created)
{
	json_t *o = json_loads(rec->info ? rec->info : "{}", 0, NULL);

	if (!o)
		o = json_object();
	if (o)
		json_object_set_new(o, "name", rec->name[0] ? json_string(rec->name) : json_null());
	if (o && with_created)
		json_object_set_new(o, "created_at", json_string(rec->created_at));
	if (o && pcd_req_admin(r) && rec->tenant[0])
		json_object_set_new(o, "tenant", json_string(rec->tenant));
	return o;
}

/* An upload's ?name=, checked before its body is read (the route's
 * before hook): a bad one costs the client no upload. */
static int upload_before(struct pcd_req *r)
{
	const char *name = pcd_req_query(r, "name");
	struct pc_error err = {0};

	if (name && pcd_name_check("name", name, PC_ERR_BAD_REQUEST, &err)) {
		pcd_send_error(r, &err);
		return 1;
	}
	return 0;
}

/* The name of an upload: ?name=, else (a dataset's form) the name part,
 * else the file name the inputs part came with, else (a raw model) the
 * Content-Disposition header's file name; *name NULL when none. 0
 * after answering a bad name part (?name= was checked by upload_before). */
static int upload_name_param(struct pcd_req *r, int form, const char **name)
{
	struct pc_error err = {0};

	*name = pcd_req_query(r, "name");
	if (*name)
		return 1;
	if (!form) {
		*name = pcd_req_disposition_filename(r); /* NULL unless a valid name */
		return 1;
	}
	if ((*name = pcd_req_form_name(r))) {
		if (pcd_name_check("name", *name, PC_ERR_BAD_REQUEST, &err)) {
			pcd_send_error(r, &err);
			return 0;
		}
		return 1;
	}
	*name = pcd_req_inputs_filename(r); /* checked by the sink */
	return 1;
}

/* Records an upload's name (when the request gave one) and puts the
 * record's name into its answer info. */
static int upload_named(struct pcd_req *r, enum pcd_upload upload, const char *id, const char *name, json_t *info,
			struct pc_error *err)
{
	struct pcd_app *app = pcd_req_app(r);
	int rc;

	if (name && (rc = pcd_store_upload_name(app->store, upload, pcd_req_tenant(r), id, name, err)))
		return rc;
	if (name || !json_object_get(info, "name"))
		json_object_set_new(info, "name", name ? json_string(name) : json_null());
	return PC_OK;
}

/* The stored-bytes quota: PC_OK when tenant may add bytes more, else
 * PC_ERR_STORAGE_QUOTA naming tenant_max_stored_mb. */
static int storage_quota(struct pcd_req *r, uint64_t bytes, struct pc_error *err)
{
	struct pcd_app *app = pcd_req_app(r);
	int64_t stored = 0;
	uint64_t limit = (uint64_t)app->settings->tenant_max_stored_mb << 20;
	int rc;

	if (!limit)
		return PC_OK;
	if ((rc = pcd_store_tenant_usage(app->store, pcd_req_tenant(r), NULL, &stored, err)))
		return rc;
	if (stored < 0 || (uint64_t)stored + bytes <= limit)
		return PC_OK;
	return pc_error_set(err, PC_ERR_STORAGE_QUOTA, "tenant_max_stored_mb",
			    "this upload of %" PRIu64 " bytes would take the tenant's uploads to %" PRIu64
			    " bytes, above %d MiB; delete uploads it no longer needs",
			    bytes, (uint64_t)stored + bytes, app->settings->tenant_max_stored_mb);
}

static int storage_quota_admit(void *arg, uint64_t bytes, struct pc_error *err)
{
	return storage_quota(arg, bytes, err);
}

/* The old shape, for the dataset route: whether the upload may go on;
 * answers (and returns 0) when not. */
static int storage_quota_ok(struct pcd_req *r, uint64_t bytes)
{
	struct pc_error err = {0};

	if (!storage_quota(r, bytes, &err))
		return 1;
	pcd_send_error(r, &err);
	return 0;
}

/* --- operations ---------------------------------------------------------- */

static int h_healthz(struct pcd_req *r)
{
	return pcd_send_json(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

static int h_readyz(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pc_error err = {0};
	struct statvfs vfs;
	char detail[640] = "";
	uint64_t free_mb = 0;

	if (atomic_load(&app->draining))
		snprintf(detail, sizeof(detail), "draining for shutdown");
	else if (pcd_store_ping(app->store, &err))
		snprintf(detail, sizeof(detail), "the database is not writable: %s", err.text);
	else if (statvfs(app->settings->data_dir, &vfs) != 0)
		snprintf(detail, sizeof(detail), "cannot stat the data directory: %s", strerror(errno));
	else if ((free_mb = (uint64_t)vfs.f_bavail * vfs.f_frsize >> 20) < (uint64_t)app->settings->min_free_disk_mb)
		snprintf(detail, sizeof(detail), "%" PRIu64 " MiB free on the data directory's disk, below %d",
			 free_mb, app->settings->min_free_disk_mb);
	if (detail[0])
		return pcd_send_problem(r, PC_ERR_BUSY, NULL, (const char *const[]){"Retry-After", RETRY_AFTER_S, NULL},
					"%s", detail);
	return pcd_send_json(r, 200, json_pack("{s:s, s:I}", "status", "ready", "free_disk_mb", (json_int_t)free_mb),
			     NULL);
}

static int h_metrics(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	int64_t queued = 0, running = 0;
	char *text;
	int rc;

	pcd_store_queue_depth(app->store, &queued, &running, NULL);
	if (!(text = pcd_prom_render(app->prom, queued, running, atomic_load(&app->draining))))
		return pcd_send_problem(r, PC_ERR_NOMEM, NULL, NULL, "out of memory");
	rc = pcd_send_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
	free(text);
	return rc;
}

/* The OpenAPI document, built into the binary (assets.h). */
static int h_openapi(struct pcd_req *r)
{
	struct pcd_asset a;

	if (!pcd_asset_find("/v1/openapi.yaml", &a))
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "the OpenAPI document is not built in");
	return pcd_send_text(r, 200, a.content_type, (const char *)a.data, a.size);
}

/* --- models -------------------------------------------------------------- */

static int h_model_post(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pcd_blob_writer **w = pcd_req_model_writer(r);
	struct pcd_ingest in = {&app->validator, app->blobs,	       app->store,
				pcd_blobs_record_lock(app->blobs),	 storage_quota_admit, r};
	struct pc_error err = {0};
	struct pcd_blob_rec rec = {0};
	char id[65], loc[100];
	json_t *info = NULL;
	uint64_t bytes = pcd_blob_writer_bytes(*w);
	const char *name;
	int existed = 0;

	if (!upload_name_param(r, 0, &name))
		return MHD_YES;
	pcd_prom_upload(app->prom, "model", bytes);
	if (pcd_blob_writer_finish(*w, id, &err))
		goto fail;
	/* known content of this tenant: its stored description, without
	 * loading it again. Only the tenant's own record counts: another
	 * tenant's copy of these bytes gets the answer of new content (201),
	 * so the status never says what others uploaded. */
	if (pcd_store_model_get(app->store, pcd_req_tenant(r), id, &rec, NULL) == PC_OK &&
	    pcd_blobs_model_exists(app->blobs, id)) {
		info = rec_json(r, &rec, 0);
		/* a file name is a default: it does not rename a named model */
		if (name && name != pcd_req_query(r, "name") && rec.name[0])
			name = NULL;
		pcd_blob_rec_free(&rec);
		if (upload_named(r, PCD_UPLOAD_MODEL, id, name, info, &err)) {
			json_decref(info);
			goto fail;
		}
		return pcd_send_json(r, 200, info, NULL);
	}
	/* the quota before the validation's work, and again under the lock */
	if (storage_quota(r, bytes, &err) || pcd_model_ingest(&in, pcd_req_tenant(r), w, id, bytes, &info, &existed, &err))
		goto fail;
	if (upload_named(r, PCD_UPLOAD_MODEL, id, name, info, &err)) {
		json_decref(info);
		goto fail;
	}
	pcd_log("info", "msg=\"model stored\" model=%s bytes=%" PRIu64 " tenant=%s req_id=%s", id, bytes,
		pcd_req_tenant(r), pcd_req_request_id(r));
	snprintf(loc, sizeof(loc), "/v1/models/%s", id);
	return pcd_send_json(r, existed ? 200 : 201, info, (const char *const[]){"Location", loc, NULL});
fail:
	return pcd_send_error(r, &err);
}

static int blob_get(struct pcd_req *r, int dataset)
{
	struct pcd_app *app = pcd_req_app(r);
	const char *id = pcd_req_id_param(r);
	struct pcd_blob_rec rec = {0};
	struct pc_error err = {0};
	json_t *o;

	if (!pcd_blobs_id_valid(id))
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, dataset ? "no such dataset" : "no such model");
	if ((dataset ? pcd_store_dataset_get : pcd_store_model_get)(app->store, pcd_req_scope(r), id, &rec, &err))
		return err.code == PC_ERR_NOT_FOUND
			       ? pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, dataset ? "no such dataset" : "no such model")
			       : pcd_send_error(r, &err);
	o = rec_json(r, &rec, 1);
	pcd_blob_rec_free(&rec);
	return pcd_send_json(r, 200, o, NULL);
}

static int blob_delete(struct pcd_req *r, int dataset)
{
	struct pcd_app *app = pcd_req_app(r);
	const char *id = pcd_req_id_param(r);
	struct pc_error err = {0};
	char q[600];
	int unused = 0;

	if (!pcd_blobs_id_valid(id))
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, dataset ? "no such dataset" : "no such model");
	/* the record first: it refuses while a pending job names the id */
	pthread_mutex_lock(pcd_blobs_record_lock(app->blobs));
	if ((dataset ? pcd_store_dataset_delete : pcd_store_model_delete)(app->store, pcd_req_scope(r), id, &unused,
									  &err)) {
		pthread_mutex_unlock(pcd_blobs_record_lock(app->blobs));
		if (err.code == PC_ERR_NOT_FOUND)
			return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, dataset ? "no such dataset" : "no such model");
		return pcd_send_error(r, &err);
	}
	pc_error_clear(&err);
	/* the file is shared by every tenant that uploaded these bytes: it goes
	 * with the last record */
	if (unused && (dataset ? pcd_blobs_delete_dataset : pcd_blobs_delete_model)(app->blobs, id, &err) &&
	    err.code != PC_ERR_NOT_FOUND)
		pcd_log("warn", "msg=\"blob delete failed\" id=%s error=%s req_id=%s", id,
			pcd_log_quote(err.text, q, sizeof(q)), pcd_req_request_id(r));
	pthread_mutex_unlock(pcd_blobs_record_lock(app->blobs));
	return pcd_send_text(r, 204, NULL, "", 0);
}

static int blob_list(struct pcd_req *r, int dataset)
{
	struct pcd_app *app = pcd_req_app(r);
	const char *cursor = pcd_req_query(r, "cursor"), *name = pcd_req_query(r, "name");
	struct pcd_blob_rec *recs = NULL;
	struct pc_error err = {0};
	int limit = list_limit(r);
	size_t n = 0, i;
	char after[65] = "", after_tenant[PCD_TENANT_MAX + 1] = "", next[65 + PCD_TENANT_MAX + 1];
	json_t *items, *o;

	if (limit < 0)
		return MHD_YES;
	/* the cursor is the last id, and for the admin role ":tenant" after
	 * it (one id may be listed once per tenant) */
	if (cursor) {
		const char *colon = strchr(cursor, ':');
		size_t idn = colon ? (size_t)(colon - cursor) : strlen(cursor);

		if (idn >= sizeof(after) || (colon && !pcd_tenant_name_valid(colon + 1)))
			return pcd_send_problem(r, PC_ERR_BAD_REQUEST, "cursor", NULL, "malformed");
		memcpy(after, cursor, idn);
		after[idn] = '\0';
		if (colon)
			snprintf(after_tenant, sizeof(after_tenant), "%s", colon + 1);
	}
	if (name && pcd_name_check("name", name, PC_ERR_BAD_REQUEST, &err))
		return pcd_send_error(r, &err);
	if ((dataset ? pcd_store_dataset_list : pcd_store_model_list)(app->store, pcd_req_scope(r), name, after,
								      after_tenant, limit, &recs, &n, &err))
		return pcd_send_error(r, &err);
	items = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(items, rec_json(r, &recs[i], 1));
	if (n == (size_t)limit)
		snprintf(next, sizeof(next), "%s%s%s", recs[n - 1].id, pcd_req_admin(r) ? ":" : "",
			 pcd_req_admin(r) ? recs[n - 1].tenant : "");
	o = json_pack("{s:o, s:o}", "items", items, "next_cursor", n == (size_t)limit ? json_string(next) : json_null());
	pcd_blob_recs_free(recs, n);
	return pcd_send_json(r, 200, o, NULL);
}

static int h_model_get(struct pcd_req *r)
{
	return blob_get(r, 0);
}

static int h_model_delete(struct pcd_req *r)
{
	return blob_delete(r, 0);
}

static int h_model_list(struct pcd_req *r)
{
	return blob_list(r, 0);
}

/* --- datasets ------------------------------------------------------------ */

static int h_dataset_post(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pcd_blob_writer **xw = pcd_req_part_writer(r, "inputs"), **yw = pcd_req_part_writer(r, "labels");
	struct pc_error err = {0};
	struct pcd_blob_rec rec = {0};
	char xid[65], yid[65], id[65], loc[100], *info_text = NULL;
	json_t *info = NULL;
	uint64_t bytes;
	const char *name;
	int existed = 0, file_existed = 0, rc;

	if (!upload_name_param(r, 1, &name))
		return MHD_YES;
	if (!*xw) {
		pc_error_set(&err, PC_ERR_FORMAT, "inputs", "the form has no inputs part");
		goto fail;
	}
	bytes = pcd_blob_writer_bytes(*xw) + (*yw ? pcd_blob_writer_bytes(*yw) : 0);
	pcd_prom_upload(app->prom, "dataset", bytes);
	if (pcd_blob_writer_finish(*xw, xid, &err) || (*yw && pcd_blob_writer_finish(*yw, yid, &err)))
		goto fail;
	pcd_blobs_dataset_id(xid, *yw ? yid : NULL, id);
	/* as for a model: only this tenant's own record makes it known */
	if (pcd_store_dataset_get(app->store, pcd_req_tenant(r), id, &rec, NULL) == PC_OK &&
	    pcd_blobs_dataset_exists(app->blobs, id)) {
		info = rec_json(r, &rec, 0);
		/* a file name is a default: it does not rename a named dataset */
		if (name && name == pcd_req_inputs_filename(r) && rec.name[0])
			name = NULL;
		pcd_blob_rec_free(&rec);
		if (upload_named(r, PCD_UPLOAD_DATASET, id, name, info, &err))
			goto fail;
		return pcd_send_json(r, 200, info, NULL);
	}
	if (!storage_quota_ok(r, bytes))
		return MHD_YES;
	/* validation, in a child process: counts, label range, decompressed
	 * size under the limit */
	if (pcd_validate_dataset(&app->validator, pcd_blob_writer_path(*xw), *yw ? pcd_blob_writer_path(*yw) : NULL,
				 id, bytes, (uint64_t)app->settings->max_dataset_mb << 20, &info, &err)) {
		pcd_error_hide_path(&err, pcd_blob_writer_path(*xw), "inputs");
		if (*yw)
			pcd_error_hide_path(&err, pcd_blob_writer_path(*yw), "labels");
		goto fail;
	}
	if (!(info_text = pcd_json_text(info, PCD_JSON_COMPACT))) {
		pc_error_set(&err, PC_ERR_NOMEM, "dataset", "out of memory");
		goto fail;
	}
	pthread_mutex_lock(pcd_blobs_record_lock(app->blobs));
	if (!storage_quota_ok(r, bytes)) { /* as for a model */
		pthread_mutex_unlock(pcd_blobs_record_lock(app->blobs));
		free(info_text);
		json_decref(info);
		return MHD_YES;
	}
	rc = pcd_blobs_commit_dataset(app->blobs, *xw, *yw, id, &file_existed, &err);
	*xw = *yw = NULL; /* taken by the commit either way */
	if (!rc && (rc = pcd_store_dataset_put(app->store, pcd_req_tenant(r), id, (int64_t)bytes, info_text, &existed,
					       &err)) && !file_existed)
		pcd_blobs_delete_dataset(app->blobs, id, NULL); /* as for a model */
	if (!rc && !existed)
		rc = pcd_upload_bytes_kept(app->blobs, app->store, PCD_UPLOAD_DATASET, pcd_req_tenant(r), id, &err);
	pthread_mutex_unlock(pcd_blobs_record_lock(app->blobs));
	if (rc || (rc = upload_named(r, PCD_UPLOAD_DATASET, id, name, info, &err)))
		goto fail;
	free(info_text);
	pcd_log("info", "msg=\"dataset stored\" dataset=%s bytes=%" PRIu64 " tenant=%s req_id=%s", id, bytes,
		pcd_req_tenant(r), pcd_req_request_id(r));
	snprintf(loc, sizeof(loc), "/v1/datasets/%s", id);
	return pcd_send_json(r, existed ? 200 : 201, info, (const char *const[]){"Location", loc, NULL});
fail:
	free(info_text);
	json_decref(info);
	return pcd_send_error(r, &err);
}

static int h_dataset_get(struct pcd_req *r)
{
	return blob_get(r, 1);
}

static int h_dataset_delete(struct pcd_req *r)
{
	return blob_delete(r, 1);
}

static int h_dataset_list(struct pcd_req *r)
{
	return blob_list(r, 1);
}

/* --- jobs ---------------------------------------------------------------- */

/* A sharded job's shards, [{index, node, status, job}] ("node" that of
 * the shard's latest attempt, null before one), and while they run its
 * progress: the shards' mean fraction, a succeeded one counting 1, done
 * the shards succeeded. A job without shards is left as it is. */
static void shards_json(struct pcd_store *store, const struct pcd_job *j, json_t *o)
{
	struct pcd_shard *v = NULL;
	size_t n = 0, done = 0;
	double sum = 0;
	json_t *a;

	if (pcd_store_job_shards(store, j->id, &v, &n, NULL) || !n || !(a = json_array()))
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *p = v[i].progress ? json_loads(v[i].progress, 0, NULL) : NULL;

		json_array_append_new(a, json_pack("{s:i, s:o, s:s, s:s}", "index", v[i].index, "node",
						   v[i].node[0] ? json_string(v[i].node) : json_null(), "status",
						   pcd_job_status_name(v[i].status), "job", v[i].id));
		if (v[i].status == PCD_JOB_SUCCEEDED)
			done++, sum += 1.0;
		else if (json_is_number(json_object_get(p, "fraction")))
			sum += json_number_value(json_object_get(p, "fraction"));
		json_decref(p);
	}
	json_object_set_new(o, "shards", a);
	if (j->status == PCD_JOB_RUNNING)
		json_object_set_new(o, "progress",
				    json_pack("{s:s, s:I, s:I, s:f}", "phase", done == n ? "merge" : "shards", "done",
					      (json_int_t)done, "total", (json_int_t)n, "fraction", sum / (double)n));
out:
	pcd_shards_free(v, n);
}

/* The job object, with the model a succeeded job's kind left (its
 * artifact, recorded in the store) linked, and for the admin role the
 * job's tenant. */
static json_t *job_json(struct pcd_req *r, const struct pcd_job *j)
{
	struct pcd_app *app = pcd_req_app(r);
	const struct pcd_job_kind *k = pcd_job_kind_find(j->kind);
	json_t *o = pcd_job_to_json(j);
	char id[65], link[200];

	if (o && pcd_req_admin(r))
		json_object_set_new(o, "tenant", json_string(j->tenant));
	if (o)
		shards_json(app->store, j, o);
	if (o && j->status == PCD_JOB_SUCCEEDED && k && k->artifact &&
	    pcd_store_job_artifact_get(app->store, j->id, k->artifact, id, NULL) == PC_OK) {
		snprintf(link, sizeof(link), "/v1/jobs/%s/artifacts/%s", j->id, k->artifact);
		json_object_set_new(json_object_get(o, "links"), "model", json_string(link));
		snprintf(link, sizeof(link), "/v1/models/%s", id);
		json_object_set_new(json_object_get(o, "links"), "hardened_model", json_string(link));
	}
	return o;
}

static int send_job(struct pcd_req *r, unsigned status, const struct pcd_job *j, const char *const *extra)
{
	json_t *o = job_json(r, j);

	if (!o)
		return pcd_send_problem(r, PC_ERR_NOMEM, NULL, NULL, "out of memory");
	return pcd_send_json(r, status, o, extra);
}

/* A spec error: the field, and the problem the error table gives it. */
static int spec_problem(struct pcd_req *r, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int spec_problem(struct pcd_req *r, const char *where, const char *fmt, ...)
{
	struct pc_error err = {.code = PC_ERR_INVALID};
	va_list ap;

	snprintf(err.where, sizeof(err.where), "%s", where);
	va_start(ap, fmt);
	vsnprintf(err.text, sizeof(err.text), fmt, ap);
	va_end(ap);
	return pcd_send_error(r, &err);
}

/* Takes the "name" and "labels" of a submit body out of root, checked
 * (PC_ERR_INVALID naming the field), into meta (its strings owned, freed
 * by job_meta_free) and *spec_text the spec without them (NULL when the
 * body had neither: the body is the spec as it is). */
static int job_meta_take(json_t *root, struct pcd_job_meta *meta, char **spec_text, struct pc_error *err)
{
	json_t *name = json_object_get(root, "name"), *labels = json_object_get(root, "labels");
	int rc;

	*spec_text = NULL;
	memset(meta, 0, sizeof(*meta));
	if (!name && !labels)
		return PC_OK;
	if (name && !json_is_null(name) &&
	    (rc = json_is_string(name) ? pcd_name_check("name", json_string_value(name), PC_ERR_INVALID, err)
				       : pc_error_set(err, PC_ERR_INVALID, "name", "must be a string")))
		return rc;
	if (labels && !json_is_null(labels) && (rc = pcd_labels_check(labels, err)))
		return rc;
	if (json_is_string(name) && !(meta->name = strdup(json_string_value(name))))
		goto nomem;
	if (json_is_object(labels) && !(meta->labels = json_dumps(labels, JSON_COMPACT | JSON_SORT_KEYS)))
		goto nomem;
	json_object_del(root, "name");
	json_object_del(root, "labels");
	if (!(*spec_text = json_dumps(root, JSON_COMPACT)))
		goto nomem;
	return PC_OK;
nomem:
	free((char *)meta->name);
	free((char *)meta->labels);
	memset(meta, 0, sizeof(*meta));
	return pc_error_set(err, PC_ERR_NOMEM, "job", "out of memory");
}

static void job_meta_free(struct pcd_job_meta *meta, char *spec_text)
{
	free((char *)meta->name);
	free((char *)meta->labels);
	memset(meta, 0, sizeof(*meta));
	free(spec_text);
}

static int h_job_post(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	const char *key = pcd_req_header(r, "Idempotency-Key");
	const char *const retry[] = {"Retry-After", RETRY_AFTER_S, NULL};
	const struct pcd_job_kind *kind;
	struct pcd_job_refs refs;
	struct pc_error err = {0};
	struct pc_spec spec;
	struct pcd_job job = {0};
	struct pcd_job_meta meta = {0};
	json_error_t jerr;
	char loc[64], *spec_text = NULL;
	const char *body;
	size_t len;
	json_t *root;
	int created = 0, rc;

	if (atomic_load(&app->draining))
		return pcd_send_problem(r, PC_ERR_BUSY, NULL, retry, "the service is shutting down");
	if (key && (!key[0] || strlen(key) > 255))
		return pcd_send_problem(r, PC_ERR_BAD_REQUEST, NULL, NULL, "Idempotency-Key must be 1 to 255 characters");
	body = pcd_req_body(r, &len);
	if (!(root = json_loadb(body, len, 0, &jerr)))
		return pcd_send_problem(r, PC_ERR_BAD_REQUEST, NULL, NULL, "invalid JSON at line %d column %d: %s",
					jerr.line, jerr.column, jerr.text);
	if (!json_is_object(root)) {
		json_decref(root);
		return spec_problem(r, "", "the job spec must be a JSON object");
	}
	/* name and labels are the job's, not the study's: the spec goes on
	 * without them */
	if (job_meta_take(root, &meta, &spec_text, &err)) {
		json_decref(root);
		return pcd_send_error(r, &err);
	}
	rc = pc_spec_parse(root, &spec, &err);
	json_decref(root);
	if (rc) {
		job_meta_free(&meta, spec_text);
		return pcd_send_error(r, &err);
	}
	/* the kind's check: the same validation the job gets when it runs */
	if (!(kind = pcd_job_kind_find(spec.kind))) {
		pc_spec_free(&spec);
		job_meta_free(&meta, spec_text);
		return spec_problem(r, "kind", "no job kind with this name");
	}
	if (kind->check(kind, &spec, app->store, pcd_req_scope(r), pcd_settings_max_work(app->settings), &refs, &err)) {
		pc_spec_free(&spec);
		job_meta_free(&meta, spec_text);
		return pcd_send_error(r, &err);
	}
	rc = pcd_store_job_submit_meta(app->store, pcd_req_tenant(r), pcd_req_admin(r), spec.kind,
				       spec_text ? spec_text : body, &meta, &refs, key, app->settings->max_queue,
				       app->settings->tenant_max_queued_jobs, &job, &created, &err);
	pc_spec_free(&spec);
	job_meta_free(&meta, spec_text);
	if (rc == PC_ERR_BUSY)
		return pcd_send_problem(r, PC_ERR_BUSY, NULL, retry, "the job queue is full");
	if (rc == PC_ERR_QUOTA)
		return pcd_send_problem(r, PC_ERR_QUOTA, "tenant_max_queued_jobs", retry,
					"this tenant has %d jobs queued already; submit again once one has started",
					app->settings->tenant_max_queued_jobs);
	if (rc == PC_ERR_CONFLICT)
		return pcd_send_problem(r, PC_ERR_CONFLICT, NULL, NULL, "this Idempotency-Key was used with a different spec");
	if (rc)
		return pcd_send_error(r, &err);
	if (created) {
		pcd_workers_notify(app->workers);
		pcd_log("info", "msg=\"job queued\" job=%s kind=%s tenant=%s req_id=%s", job.id, job.kind, job.tenant,
			pcd_req_request_id(r));
	}
	snprintf(loc, sizeof(loc), "/v1/jobs/%s", job.id);
	rc = send_job(r, 202, &job,
		      (const char *const[]){"Location", loc, "Idempotent-Replayed", created ? "false" : "true", NULL});
	pcd_job_free(&job);
	return rc;
}

static int job_not_found(struct pcd_req *r)
{
	return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "no such job");
}

static int h_job_get(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pc_error err = {0};
	struct pcd_job job = {0};
	int rc;

	if (pcd_store_job_get(app->store, pcd_req_scope(r), pcd_req_id_param(r), &job, &err))
		return err.code == PC_ERR_NOT_FOUND ? job_not_found(r) : pcd_send_error(r, &err);
	rc = send_job(r, 200, &job, NULL);
	pcd_job_free(&job);
	return rc;
}

static int h_job_report(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pc_error err = {0};
	char *text = NULL;
	int rc;

	if (pcd_store_job_report(app->store, pcd_req_scope(r), pcd_req_id_param(r), &text, &err)) {
		if (err.code == PC_ERR_NOT_FOUND)
			return job_not_found(r);
		if (err.code == PC_ERR_CONFLICT)
			return pcd_send_problem(r, PC_ERR_CONFLICT, NULL, NULL, "the job has no report (not finished, or it did not succeed)");
		return pcd_send_error(r, &err);
	}
	rc = pcd_send_text(r, 200, "application/json", text, strlen(text));
	free(text);
	return rc;
}

static int h_job_cancel(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pc_error err = {0};
	struct pcd_job job = {0};
	enum pcd_job_status after;
	int rc;

	if (pcd_store_job_cancel(app->store, pcd_req_scope(r), pcd_req_id_param(r), &after, &err)) {
		if (err.code == PC_ERR_NOT_FOUND)
			return job_not_found(r);
		if (err.code == PC_ERR_CONFLICT)
			return pcd_send_problem(r, PC_ERR_CONFLICT, NULL, NULL, "the job has already finished");
		return pcd_send_error(r, &err);
	}
	pcd_log("info", "msg=\"job cancel\" job=%s status=%s req_id=%s", pcd_req_id_param(r),
		pcd_job_status_name(after), pcd_req_request_id(r));
	if (pcd_store_job_get(app->store, pcd_req_scope(r), pcd_req_id_param(r), &job, &err))
		return pcd_send_error(r, &err);
	/* 202 while a running job has yet to reach its next check */
	rc = send_job(r, after == PCD_JOB_CANCELLED ? 200 : 202, &job, NULL);
	pcd_job_free(&job);
	return rc;
}

/* DELETE cancels a pending job (design.md) and removes a finished one. */
static int h_job_delete(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pc_error err = {0};
	struct pcd_job job = {0};
	int finished;

	if (pcd_store_job_get(app->store, pcd_req_scope(r), pcd_req_id_param(r), &job, &err))
		return err.code == PC_ERR_NOT_FOUND ? job_not_found(r) : pcd_send_error(r, &err);
	finished = pcd_job_status_finished(job.status);
	pcd_job_free(&job);
	if (!finished)
		return h_job_cancel(r);
	if (pcd_store_job_delete(app->store, pcd_req_scope(r), pcd_req_id_param(r), &err)) {
		if (err.code == PC_ERR_NOT_FOUND)
			return job_not_found(r);
		return pcd_send_error(r, &err);
	}
	/* the registered model stays: it is a model of the service now */
	pcd_blobs_delete_artifacts(app->blobs, pcd_req_id_param(r));
	return pcd_send_text(r, 204, NULL, "", 0);
}

static int h_job_list(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	const char *status = pcd_req_query(r, "status"), *cursor = pcd_req_query(r, "cursor");
	const char *labels[PCD_LABELS_MAX];
	char keys[PCD_LABELS_MAX][PCD_LABEL_KEY_MAX + 1];
	struct pcd_job_filter f = {.status = status, .name = pcd_req_query(r, "name")};
	struct pcd_job *jobs = NULL;
	struct pc_error err = {0};
	int64_t after = 0;
	int limit = list_limit(r);
	size_t n = 0, i;
	char next[32];
	json_t *items, *o;

	if (limit < 0)
		return MHD_YES;
	if (status && pcd_job_status_parse(status) < 0)
		return pcd_send_problem(r, PC_ERR_BAD_REQUEST, "status", NULL,
					"must be queued, running, succeeded, failed or cancelled");
	if (cursor) {
		char *end;

		errno = 0;
		after = strtoll(cursor, &end, 10);
		if (errno || end == cursor || *end || after < 0)
			return pcd_send_problem(r, PC_ERR_BAD_REQUEST, "cursor", NULL, "malformed");
	}
	if (f.name && pcd_name_check("name", f.name, PC_ERR_BAD_REQUEST, &err))
		return pcd_send_error(r, &err);
	if ((f.n_labels = pcd_req_query_all(r, "label", labels, PCD_LABELS_MAX)) > PCD_LABELS_MAX)
		return pcd_send_problem(r, PC_ERR_BAD_REQUEST, "label", NULL, "at most %d label filters", PCD_LABELS_MAX);
	for (int k = 0; k < f.n_labels; k++) {
		if (pcd_label_filter_parse(labels[k], keys[k], &f.label_values[k], &err))
			return pcd_send_error(r, &err);
		f.label_keys[k] = keys[k];
	}
	if (pcd_store_job_find(app->store, pcd_req_scope(r), &f, after, limit, &jobs, &n, &err))
		return pcd_send_error(r, &err);
	items = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(items, job_json(r, &jobs[i]));
	if (n == (size_t)limit)
		snprintf(next, sizeof(next), "%" PRId64, jobs[n - 1].seq);
	o = json_pack("{s:o, s:o}", "items", items, "next_cursor", n == (size_t)limit ? json_string(next) : json_null());
	pcd_jobs_free(jobs, n);
	return pcd_send_json(r, 200, o, NULL);
}

/* The report of a succeeded job, parsed; NULL after answering, with *rc
 * the answer's MHD result (MHD_NO closes a connection that could not be
 * answered, rather than have MHD call the handler again and again). */
static json_t *job_report_of(struct pcd_req *r, const char *id, const char *where, int *rc)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pc_error err = {0};
	char *text = NULL;
	json_t *rep;

	if (pcd_store_job_report(app->store, pcd_req_scope(r), id, &text, &err)) {
		if (err.code == PC_ERR_NOT_FOUND)
			*rc = pcd_send_problem(r, PC_ERR_NOT_FOUND, where, NULL, "no such job");
		else if (err.code == PC_ERR_CONFLICT)
			*rc = pcd_send_problem(r, PC_ERR_CONFLICT, where, NULL, "the job has no report (not finished, or it did not succeed)");
		else
			*rc = pcd_send_error(r, &err);
		return NULL;
	}
	rep = json_loads(text, 0, NULL);
	free(text);
	if (!rep)
		*rc = pcd_send_problem(r, PC_ERR_INTERNAL, where, NULL, "the stored report is not JSON");
	return rep;
}

static json_t *job_report_json(struct pcd_req *r, int *rc)
{
	return job_report_of(r, pcd_req_id_param(r), NULL, rc);
}

/* GET /v1/compare?jobs=A,B[,...]: the reports of finished jobs side by side
 * (compare.h); one harden job compares its before and after. */
static int h_compare(struct pcd_req *r)
{
	const char *q = pcd_req_query(r, "jobs");
	json_t *reps[PCD_COMPARE_MAX] = {0}, *cmp = NULL;
	char ids[PCD_COMPARE_MAX][PCD_JOB_ID_LEN + 1], where[32];
	const char *labels[PCD_COMPARE_MAX];
	struct pc_error err = {0};
	int n = 0, rc = MHD_NO;

	if (!q || !q[0])
		return pcd_send_problem(r, PC_ERR_BAD_REQUEST, "jobs", NULL,
					"must list 2 to %d job ids separated by commas (or one harden job)", PCD_COMPARE_MAX);
	for (const char *p = q;; p++) {
		size_t len = strcspn(p, ",");

		if (n == PCD_COMPARE_MAX)
			return pcd_send_problem(r, PC_ERR_BAD_REQUEST, "jobs", NULL, "compares at most %d jobs",
						PCD_COMPARE_MAX);
		snprintf(where, sizeof(where), "jobs[%d]", n);
		snprintf(ids[n], sizeof(ids[n]), "%.*s", (int)(len < PCD_JOB_ID_LEN ? len : PCD_JOB_ID_LEN), p);
		if (len != PCD_JOB_ID_LEN || !pcd_blobs_job_id_valid(ids[n]))
			return pcd_send_problem(r, PC_ERR_BAD_REQUEST, where, NULL,
						"is not a job id (\"j-\" and 16 hex digits)");
		labels[n] = ids[n];
		n++;
		p += len;
		if (!*p)
			break;
	}
	for (int i = 0; i < n; i++) {
		snprintf(where, sizeof(where), "jobs[%d]", i);
		if (!(reps[i] = job_report_of(r, ids[i], where, &rc)))
			goto out;
	}
	if (pcd_compare(reps, labels, n, &cmp, &err)) {
		/* the indices of compare's "reports[i]" are the query's */
		if (!strncmp(err.where, "reports", 7)) {
			memmove(err.where + 4, err.where + 7, strlen(err.where + 7) + 1);
			memcpy(err.where, "jobs", 4);
		}
		rc = pcd_send_error(r, &err);
		goto out;
	}
	rc = pcd_send_json(r, 200, cmp, NULL);
out:
	for (int i = 0; i < n; i++)
		json_decref(reps[i]);
	return rc;
}

static int h_job_charts(struct pcd_req *r)
{
	int answered = MHD_NO;
	json_t *rep = job_report_json(r, &answered), *list, *c;
	char href[256];
	size_t i;

	if (!rep)
		return answered;
	list = pcd_charts_list(rep);
	json_decref(rep);
	if (!list)
		return pcd_send_problem(r, PC_ERR_NOMEM, NULL, NULL, "out of memory");
	json_array_foreach(list, i, c)
	{
		snprintf(href, sizeof(href), "/v1/jobs/%s/charts/%s.svg", pcd_req_id_param(r),
			 json_string_value(json_object_get(c, "name")));
		json_object_set_new(c, "href", json_string(href));
	}
	return pcd_send_json(r, 200, json_pack("{s:o}", "items", list), NULL);
}

/* The report as one self-contained HTML file (html.h). */
static int h_job_report_html(struct pcd_req *r)
{
	struct pc_error err = {0};
	char *html = NULL;
	size_t len = 0;
	json_t *rep;
	int rc;

	if (!(rep = job_report_json(r, &rc)))
		return rc;
	rc = pcd_report_html(rep, &html, &len, &err);
	json_decref(rep);
	if (rc)
		return pcd_send_error(r, &err);
	rc = pcd_send_text(r, 200, "text/html; charset=utf-8", html, len);
	free(html);
	return rc;
}

static int h_job_chart(struct pcd_req *r)
{
	const char *file = pcd_req_name_param(r);
	size_t n = strlen(file);
	struct pc_error err = {0};
	char name[64], *svg = NULL;
	json_t *rep;
	int rc;

	/* the name carries its format, so a browser saves it as what it is */
	if (n <= 4 || n - 4 >= sizeof(name) || strcmp(file + n - 4, ".svg"))
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "no such chart (charts are <name>.svg)");
	memcpy(name, file, n - 4);
	name[n - 4] = '\0';
	if (!(rep = job_report_json(r, &rc)))
		return rc;
	rc = pcd_chart_svg(rep, name, &svg, &err);
	json_decref(rep);
	if (rc == PC_ERR_NOT_FOUND)
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "this job's report has no such chart");
	if (rc)
		return pcd_send_error(r, &err);
	rc = pcd_send_text(r, 200, "image/svg+xml; charset=utf-8", svg, strlen(svg));
	free(svg);
	return rc;
}

static int h_job_artifact(struct pcd_req *r)
{
	struct pcd_app *app = pcd_req_app(r);
	struct pc_error err = {0};
	struct pcd_job job = {0};
	const struct pcd_job_kind *kind;
	char dir[4096], path[4200], disp[120];
	struct stat st;
	int fd, done;

	if (strcmp(pcd_req_name_param(r), "model.onnx"))
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "no such artifact (a harden job has model.onnx)");
	if (pcd_store_job_get(app->store, pcd_req_scope(r), pcd_req_id_param(r), &job, &err))
		return err.code == PC_ERR_NOT_FOUND ? job_not_found(r) : pcd_send_error(r, &err);
	kind = pcd_job_kind_find(job.kind);
	done = job.status == PCD_JOB_SUCCEEDED && kind && kind->artifact &&
	       !strcmp(kind->artifact, pcd_req_name_param(r));
	pcd_job_free(&job);
	if (!done)
		return pcd_send_problem(r, PC_ERR_CONFLICT, NULL, NULL, "only a succeeded harden job has a hardened model");
	if (pcd_blobs_artifacts_dir(app->blobs, pcd_req_id_param(r), 0, dir, sizeof(dir), &err))
		return pcd_send_error(r, &err);
	snprintf(path, sizeof(path), "%s/model.onnx", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && pcd_blobs_shared(app->blobs)) {
		/* another node ran the job: the model it registered is in the
		 * database, and the open fd keeps it while the cache evicts */
		char model_id[65];

		if (pcd_store_job_artifact_get(app->store, pcd_req_id_param(r), "model.onnx", model_id, &err) == PC_OK &&
		    pcd_blobs_model_acquire(app->blobs, model_id, path, sizeof(path), &err) == PC_OK) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			pcd_blobs_release(app->blobs, 0, model_id);
		}
		if (fd < 0 && err.code && err.code != PC_ERR_NOT_FOUND)
			return pcd_send_error(r, &err);
	}
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "the hardened model is gone");
	}
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s-hardened.onnx\"", pcd_req_id_param(r));
	return pcd_send_file(r, 200, "application/octet-stream", fd, (uint64_t)st.st_size,
			     (const char *const[]){"Content-Disposition", disp, NULL});
}

/* --- the dashboard ------------------------------------------------------- */

static int h_asset(struct pcd_req *r)
{
	struct pcd_asset a;
	const char *path = pcd_req_url(r);

	if (!strcmp(path, "/"))
		path = "/index.html";
	if (!pcd_asset_find(path, &a))
		return pcd_send_problem(r, PC_ERR_NOT_FOUND, NULL, NULL, "no such resource");
	return pcd_send_text(r, 200, a.content_type, (const char *)a.data, a.size);
}

/* --- the table ----------------------------------------------------------- */

const struct pcd_route pcd_routes[] = {
	{"GET", "/healthz", h_healthz, PCD_BODY_NONE, 1, 0, NULL},
	{"GET", "/readyz", h_readyz, PCD_BODY_NONE, 1, 0, NULL},
	/* its queue depths are every tenant's */
	{"GET", "/metrics", h_metrics, PCD_BODY_NONE, 0, 1, NULL},
	{"GET", "/v1/openapi.yaml", h_openapi, PCD_BODY_NONE, 1, 0, NULL},
	{"POST", "/v1/models", h_model_post, PCD_BODY_MODEL, 0, 0, upload_before},
	{"GET", "/v1/models", h_model_list, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/models/{id}", h_model_get, PCD_BODY_NONE, 0, 0, NULL},
	{"HEAD", "/v1/models/{id}", h_model_get, PCD_BODY_NONE, 0, 0, NULL},
	{"DELETE", "/v1/models/{id}", h_model_delete, PCD_BODY_NONE, 0, 0, NULL},
	{"POST", "/v1/datasets", h_dataset_post, PCD_BODY_MULTIPART, 0, 0, upload_before},
	{"GET", "/v1/datasets", h_dataset_list, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/datasets/{id}", h_dataset_get, PCD_BODY_NONE, 0, 0, NULL},
	{"HEAD", "/v1/datasets/{id}", h_dataset_get, PCD_BODY_NONE, 0, 0, NULL},
	{"DELETE", "/v1/datasets/{id}", h_dataset_delete, PCD_BODY_NONE, 0, 0, NULL},
	{"POST", "/v1/jobs", h_job_post, PCD_BODY_JSON, 0, 0, NULL},
	{"GET", "/v1/jobs", h_job_list, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/jobs/{id}", h_job_get, PCD_BODY_NONE, 0, 0, NULL},
	{"DELETE", "/v1/jobs/{id}", h_job_delete, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/jobs/{id}/report", h_job_report, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/jobs/{id}/report.html", h_job_report_html, PCD_BODY_NONE, 0, 0, NULL},
	{"POST", "/v1/jobs/{id}/cancel", h_job_cancel, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/jobs/{id}/charts", h_job_charts, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/jobs/{id}/charts/{name}", h_job_chart, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/jobs/{id}/artifacts/{name}", h_job_artifact, PCD_BODY_NONE, 0, 0, NULL},
	{"GET", "/v1/compare", h_compare, PCD_BODY_NONE, 0, 0, NULL},
	/* the dashboard: public, it asks for the token itself */
	{"GET", "/", h_asset, PCD_BODY_NONE, 1, 0, NULL},
	{"GET", "/app.js", h_asset, PCD_BODY_NONE, 1, 0, NULL},
	{"GET", "/style.css", h_asset, PCD_BODY_NONE, 1, 0, NULL},
};

const size_t pcd_n_routes = sizeof(pcd_routes) / sizeof(pcd_routes[0]);
