/* Uploads shared through PostgreSQL (blobdb.h, pcd_blobs_share): two nodes
 * on one database, each with a data directory of its own, as two pairs of
 * store and blobs in this process (the second store never recovers, so it
 * takes no daemon lock; two full daemons on one database are refused in
 * this version). What one node uploads, the other runs a job on, with the
 * same report; a damaged cached file is fetched again; a damaged chunk in
 * the database fails the job naming the blob and the chunk; the cache
 * stays within its bound and never drops what a job holds; a delete
 * removes the chunks no other upload uses; an unreachable server is
 * PC_ERR_BUSY. */
#include <dirent.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "be_util.h"
#include "blobs.h"
#include "job.h"
#include "job_env.h"
#include "pg_util.h"
#include "sha256.h"
#include "store.h"
#include "test.h"
#include "workers.h"

#define CHUNK (64 * 1024) /* several chunks per model (438 KB) */
#define SPEC_REST                                                                                                      \
	"\"limit\": 64, \"batch_size\": 32, \"seed\": 3, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.1, "   \
	"1], \"random_trials\": 2}"

struct node {
	char dir[1024];
	struct pcd_store *store;
	struct pcd_blobs *blobs;
};

struct env {
	char url[PATH_MAX];
	struct node a, b;
	char model[65], dataset[65];
};

/* The one integer the query gives; -1 when it fails. */
static long long count(const char *url, const char *sql)
{
	PGconn *c = PQconnectdb(url);
	PGresult *r = NULL;
	long long n = -1;

	if (PQstatus(c) == CONNECTION_OK && (r = PQexec(c, sql)) && PQresultStatus(r) == PGRES_TUPLES_OK &&
	    PQntuples(r) == 1)
		n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	PQfinish(c);
	return n;
}

static int node_open(struct node *n, const char *url, uint64_t cache_max)
{
	char path[PATH_MAX];
	struct pc_error err = {0};

	if (!be_tmpdir(n->dir, sizeof(n->dir)))
		return -1;
	snprintf(path, sizeof(path), "%s/data", n->dir);
	if (pcd_store_open(url, &n->store, &err) || pcd_blobs_open(path, &n->blobs, &err) ||
	    pcd_blobs_share(n->blobs, url, cache_max, CHUNK, &err)) {
		fprintf(stderr, "  node: %s: %s\n", err.where, err.text);
		return -1;
	}
	return 0;
}

static void node_close(struct node *n)
{
	pcd_store_close(n->store);
	pcd_blobs_free(n->blobs);
	if (n->dir[0])
		be_rmtree(n->dir);
}

/* Uploads the model at path (relative to the root) on node n; its id. */
static int upload_model(struct node *n, const char *rel, char id[65], int *existed)
{
	char path[PATH_MAX];
	struct pcd_blob_writer *w;
	struct pc_error err = {0};

	snprintf(path, sizeof(path), "%s/%s", pc_test_root(), rel);
	if (!(w = job_env_copy_in(n->blobs, path)) || pcd_blob_writer_finish(w, id, &err) ||
	    pcd_blobs_commit_model(n->blobs, w, existed, &err) ||
	    pcd_store_model_put(n->store, "default", id, 1, "{}", NULL, &err)) {
		fprintf(stderr, "  upload: %s\n", err.text);
		return -1;
	}
	return 0;
}

static int upload_dataset(struct node *n, char id[65])
{
	struct pcd_blob_writer *x = job_env_copy_in(n->blobs, T10K_X), *y = job_env_copy_in(n->blobs, T10K_Y);
	struct pc_error err = {0};

	if (!x || !y) {
		pcd_blob_writer_abort(x);
		pcd_blob_writer_abort(y);
		return -1;
	}
	if (pcd_blobs_commit_dataset(n->blobs, x, y, id, NULL, &err) ||
	    pcd_store_dataset_put(n->store, "default", id, 1, "{}", NULL, &err)) {
		fprintf(stderr, "  upload: %s\n", err.text);
		return -1;
	}
	return 0;
}

/* 0 ready, 1 skip (why says so), -1 failure. Node a has the model and the
 * dataset uploaded; node b has an empty data directory. */
static int env_setup(struct env *e, uint64_t b_cache_max, char *why, size_t size)
{
	struct pgu *pg;

	memset(e, 0, sizeof(*e));
	if (!pgu_available(why, size))
		return 1;
	if (access(T10K_X, R_OK) != 0 || access(T10K_Y, R_OK) != 0) {
		snprintf(why, size, "no Fashion-MNIST under /usr/share/datasets");
		return 1;
	}
	if (!(pg = pgu_shared(why, size)) || !pgu_new_db(pg, e->url, sizeof(e->url)))
		return -1;
	if (node_open(&e->a, e->url, 0) || node_open(&e->b, e->url, b_cache_max))
		return -1;
	if (upload_model(&e->a, FIX "mlp_op13.onnx", e->model, NULL) || upload_dataset(&e->a, e->dataset))
		return -1;
	return 0;
}

static void env_teardown(struct env *e)
{
	node_close(&e->a);
	node_close(&e->b);
}

/* One byte of chunk idx of the model changed in the database, behind the
 * store's back; 0 with why on failure. */
static int damage_chunk(const struct env *e, int idx, int byte, char *why, size_t size)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "UPDATE blob_chunks SET data = set_byte(data, %d, (get_byte(data, %d) + 1) %% 256) WHERE sha256 = "
		 "(SELECT chunk FROM blob_parts WHERE kind = 'model' AND id = '%s' AND idx = %d)",
		 byte, byte, e->model, idx);
	return pgu_exec(e->url, sql, why, size);
}

static char *spec_for(const char *model, const char *dataset)
{
	char *s = malloc(1024);

	if (s)
		snprintf(s, 1024, "{\"model\": \"%s\", \"dataset\": \"%s\", %s}", model, dataset, SPEC_REST);
	return s;
}

static int run_job(struct node *n, const char *spec, char **report, struct pc_error *err)
{
	struct pcd_job_opts o;

	pcd_job_opts_default(&o);
	o.timing_seconds = 0;
	o.threads = 1;
	*report = NULL;
	return pcd_job_run(spec, n->store, n->blobs, &o, report, err);
}

static void cached_path(const struct node *n, const char *what, const char *id, const char *tail, char *buf,
			size_t size)
{
	snprintf(buf, size, "%s/data/%s/%s%s", n->dir, what, id, tail);
}

/* The sha256 hex of a file, "" when it cannot be read. */
static void file_hash(const char *path, char hex[65])
{
	size_t len;
	char *data = be_read_file(path, &len);

	hex[0] = '\0';
	if (data)
		pcd_sha256_hex_of(data, len, hex);
	free(data);
}

static int flip_byte(const char *path, long at)
{
	FILE *f = fopen(path, "r+b");
	int c, ok = 0;

	if (f && fseek(f, at, SEEK_SET) == 0 && (c = fgetc(f)) != EOF && fseek(f, at, SEEK_SET) == 0 &&
	    fputc(c ^ 0x01, f) != EOF)
		ok = 1;
	if (f && fclose(f) != 0)
		ok = 0;
	return ok;
}

/* Bytes of the files under a directory and its subdirectories (the
 * cache: models/ and datasets/<id>/); *n_files counts them. */
static long long dir_bytes(const char *dir, int *n_files)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long long total = 0;
	char path[PATH_MAX + 300];
	struct stat st;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			total += dir_bytes(path, n_files);
		} else {
			total += st.st_size;
			(*n_files)++;
		}
	}
	closedir(d);
	return total;
}

static long long cache_bytes(const struct node *n, int *n_files, long long *largest_file)
{
	char path[PATH_MAX];
	long long total = 0;
	DIR *d;
	struct dirent *e;
	struct stat st;

	*n_files = 0;
	*largest_file = 0;
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/data/%s", n->dir, i ? "datasets" : "models");
		total += dir_bytes(path, n_files);
		/* the largest single file, for the "bound plus one file" */
		if (!i && (d = opendir(path))) {
			while ((e = readdir(d))) {
				char p[PATH_MAX + 300];

				snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
				if (e->d_name[0] != '.' && stat(p, &st) == 0 && st.st_size > *largest_file)
					*largest_file = st.st_size;
			}
			closedir(d);
		}
	}
	return total;
}

TEST(pgblobs_job_on_another_node_equals_the_uploaders)
{
	struct env e;
	struct pc_error err = {0};
	char why[600], *spec = NULL, *on_a = NULL, *on_b = NULL, path[PATH_MAX], hex[65];
	struct stat st;
	int rc = env_setup(&e, 0, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	/* node b's data directory has none of it: the database has */
	cached_path(&e.b, "models", e.model, ".onnx", path, sizeof(path));
	CHECK(stat(path, &st) != 0);
	REQUIRE((spec = spec_for(e.model, e.dataset)));
	CHECK_MSG(run_job(&e.b, spec, &on_b, &err) == PC_OK, "%s: %s", err.where, err.text);
	pc_error_clear(&err);
	CHECK_MSG(run_job(&e.a, spec, &on_a, &err) == PC_OK, "%s: %s", err.where, err.text);
	CHECK(on_a && on_b && strcmp(on_a, on_b) == 0);
	/* b now caches both, byte for byte */
	file_hash(path, hex);
	CHECK(!strcmp(hex, e.model));
	cached_path(&e.b, "datasets", e.dataset, "/labels", path, sizeof(path));
	CHECK(stat(path, &st) == 0 && st.st_size == 5125);
	/* the database holds each blob once: model, inputs, labels */
	CHECK_INT(count(e.url, "SELECT count(*) FROM blobs"), 3);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blob_parts WHERE kind = 'model'"), (438340 + CHUNK - 1) / CHUNK);
	CHECK_INT(count(e.url, "SELECT max(octet_length(data)) FROM blob_chunks"), CHUNK);
	free(spec);
	free(on_a);
	free(on_b);
	env_teardown(&e);
}

TEST(pgblobs_damaged_cache_file_is_fetched_again)
{
	struct env e;
	struct pc_error err = {0};
	char why[600], *spec = NULL, *first = NULL, *again = NULL, model[PATH_MAX], inputs[PATH_MAX], hex[65];
	int rc = env_setup(&e, 0, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	REQUIRE((spec = spec_for(e.model, e.dataset)));
	REQUIRE_MSG(run_job(&e.b, spec, &first, &err) == PC_OK, "%s", err.text);
	cached_path(&e.b, "models", e.model, ".onnx", model, sizeof(model));
	cached_path(&e.b, "datasets", e.dataset, "/inputs", inputs, sizeof(inputs));
	/* a weight's byte in the model, and one of the images */
	REQUIRE(flip_byte(model, 300000));
	REQUIRE(flip_byte(inputs, 1000000));
	file_hash(model, hex);
	CHECK(strcmp(hex, e.model) != 0);
	CHECK_MSG(run_job(&e.b, spec, &again, &err) == PC_OK, "%s", err.text);
	CHECK(first && again && strcmp(first, again) == 0);
	file_hash(model, hex);
	CHECK(!strcmp(hex, e.model));
	/* no fetch's temp file is left */
	{
		char tmp[PATH_MAX];
		int n = 0;

		snprintf(tmp, sizeof(tmp), "%s/data/tmp", e.b.dir);
		dir_bytes(tmp, &n);
		CHECK_INT(n, 0);
	}
	free(spec);
	free(first);
	free(again);
	env_teardown(&e);
}

TEST(pgblobs_damaged_chunk_fails_the_job_naming_it)
{
	struct env e;
	struct pc_error err = {0};
	char why[600], *spec = NULL, *report = NULL, want[300], path[PATH_MAX];
	struct stat st;
	int n = 0, rc = env_setup(&e, 0, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	REQUIRE_MSG(damage_chunk(&e, 2, 7, why, sizeof(why)), "%s", why);
	REQUIRE((spec = spec_for(e.model, e.dataset)));
	CHECK_INT(run_job(&e.b, spec, &report, &err), PC_ERR_IO);
	CHECK(!report);
	snprintf(want, sizeof(want), "the model %s is damaged in the database: chunk 2 of 7 does not match its sha256",
		 e.model);
	CHECK_MSG(!strcmp(err.where, "model") && !strcmp(err.text, want), "%s: %s", err.where, err.text);
	/* nothing of it in b's cache, no temp file left */
	cached_path(&e.b, "models", e.model, ".onnx", path, sizeof(path));
	CHECK(stat(path, &st) != 0);
	snprintf(path, sizeof(path), "%s/data/tmp", e.b.dir);
	dir_bytes(path, &n);
	CHECK_INT(n, 0);
	free(spec);
	env_teardown(&e);
}

TEST(pgblobs_cache_stays_within_its_bound)
{
	struct env e;
	struct pc_error err = {0};
	char why[600], other[65], *spec[2] = {NULL, NULL}, *report = NULL, path[PATH_MAX], ipath[PATH_MAX];
	char lpath[PATH_MAX];
	/* the dataset and one model fit, not two models */
	const uint64_t bound = 4422079 + 5125 + 438420 + 1000;
	long long bytes, largest;
	struct stat st;
	int files, rc = env_setup(&e, bound, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	REQUIRE(upload_model(&e.a, FIX "mlp_tanh_op13.onnx", other, NULL) == 0);
	REQUIRE(strcmp(other, e.model) != 0);
	REQUIRE((spec[0] = spec_for(e.model, e.dataset)) && (spec[1] = spec_for(other, e.dataset)));
	for (int i = 0; i < 6; i++) {
		CHECK_MSG(run_job(&e.b, spec[i % 2], &report, &err) == PC_OK, "job %d: %s", i, err.text);
		free(report);
		report = NULL;
		bytes = cache_bytes(&e.b, &files, &largest);
		CHECK_MSG((uint64_t)bytes <= bound + (uint64_t)largest, "job %d: %lld bytes cached", i, bytes);
		/* the model of this job stayed, the other went */
		cached_path(&e.b, "models", i % 2 ? other : e.model, ".onnx", path, sizeof(path));
		CHECK(stat(path, &st) == 0);
		cached_path(&e.b, "models", i % 2 ? e.model : other, ".onnx", path, sizeof(path));
		CHECK_MSG(i == 0 || stat(path, &st) != 0, "job %d: the other model is still cached", i);
	}
	/* a held model is never evicted, even beyond the bound; once released
	 * the bound holds again */
	REQUIRE(pcd_blobs_model_acquire(e.b.blobs, e.model, path, sizeof(path), &err) == PC_OK);
	REQUIRE(pcd_blobs_model_acquire(e.b.blobs, other, path, sizeof(path), &err) == PC_OK);
	REQUIRE(pcd_blobs_dataset_acquire(e.b.blobs, e.dataset, ipath, lpath, sizeof(ipath), NULL, &err) == PC_OK);
	cached_path(&e.b, "models", e.model, ".onnx", path, sizeof(path));
	CHECK(stat(path, &st) == 0);
	cached_path(&e.b, "models", other, ".onnx", path, sizeof(path));
	CHECK(stat(path, &st) == 0);
	pcd_blobs_release(e.b.blobs, 0, e.model);
	cached_path(&e.b, "models", e.model, ".onnx", path, sizeof(path));
	CHECK(stat(path, &st) != 0);
	pcd_blobs_release(e.b.blobs, 0, other);
	pcd_blobs_release(e.b.blobs, 1, e.dataset);
	bytes = cache_bytes(&e.b, &files, &largest);
	CHECK_MSG((uint64_t)bytes <= bound, "%lld bytes cached", bytes);
	free(spec[0]);
	free(spec[1]);
	env_teardown(&e);
}

TEST(pgblobs_delete_removes_the_chunks_no_other_upload_uses)
{
	struct env e;
	struct pc_error err = {0};
	char why[600], twin[65], sql[300];
	long long chunks;
	int unused = 0, existed = 0, rc = env_setup(&e, 0, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	chunks = count(e.url, "SELECT count(*) FROM blob_chunks");
	CHECK_INT(chunks, 7 + (4422079 + CHUNK - 1) / CHUNK + 1);
	/* the same bytes again, from the other node: the same rows */
	REQUIRE(upload_model(&e.b, FIX "mlp_op13.onnx", twin, &existed) == 0);
	CHECK(!strcmp(twin, e.model) && existed);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blob_chunks"), chunks);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blobs"), 3);
	/* a record of the id keeps the bytes, whoever asks */
	CHECK_INT(pcd_blobs_delete_model(e.b.blobs, e.model, &err), PC_OK);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blob_chunks"), chunks);
	/* the last record gone: the model's blob and its 7 chunks go, the
	 * dataset's stay */
	REQUIRE(pcd_store_model_delete(e.a.store, PCD_ALL_TENANTS, e.model, &unused, &err) == PC_OK);
	CHECK(unused);
	CHECK_INT(pcd_blobs_delete_model(e.a.blobs, e.model, &err), PC_OK);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blob_parts WHERE id = '%s'", e.model);
	CHECK_INT(count(e.url, sql), 0);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blobs"), 2);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blob_chunks"), chunks - 7);
	CHECK(!pcd_blobs_model_exists(e.a.blobs, e.model));
	/* and the dataset in turn: nothing left */
	REQUIRE(pcd_store_dataset_delete(e.a.store, PCD_ALL_TENANTS, e.dataset, &unused, &err) == PC_OK);
	CHECK_INT(pcd_blobs_delete_dataset(e.a.blobs, e.dataset, &err), PC_OK);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blob_chunks"), 0);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blob_parts"), 0);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blobs"), 0);
	env_teardown(&e);
}

TEST(pgblobs_a_chunk_two_uploads_share_stays_for_the_other)
{
	struct env e;
	struct pc_error err = {0};
	char why[600], id[65], path[PATH_MAX], inputs[PATH_MAX], labels[PATH_MAX], hex[65];
	struct pcd_blob_writer *x;
	int unused = 0, has_labels = 1, rc = env_setup(&e, 0, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	/* a dataset whose inputs are the model's very bytes: the same chunks */
	snprintf(path, sizeof(path), "%s/" FIX "mlp_op13.onnx", pc_test_root());
	REQUIRE((x = job_env_copy_in(e.a.blobs, path)));
	REQUIRE(pcd_blobs_commit_dataset(e.a.blobs, x, NULL, id, NULL, &err) == PC_OK);
	REQUIRE(pcd_store_dataset_put(e.a.store, "default", id, 1, "{}", NULL, &err) == PC_OK);
	REQUIRE(pcd_store_model_delete(e.a.store, PCD_ALL_TENANTS, e.model, &unused, &err) == PC_OK);
	REQUIRE(pcd_blobs_delete_model(e.a.blobs, e.model, &err) == PC_OK);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blob_chunks"), 7 + (4422079 + CHUNK - 1) / CHUNK + 1);
	/* node b fetches it whole */
	CHECK_MSG(pcd_blobs_dataset_acquire(e.b.blobs, id, inputs, labels, sizeof(inputs), &has_labels, &err) == PC_OK,
		  "%s", err.text);
	CHECK(!has_labels);
	file_hash(inputs, hex);
	CHECK(!strcmp(hex, e.model));
	pcd_blobs_release(e.b.blobs, 1, id);
	env_teardown(&e);
}

TEST(pgblobs_unreachable_server_is_busy)
{
	struct pcd_blobs *b = NULL;
	struct pc_error err = {0};
	char dir[PATH_MAX - 64], path[PATH_MAX], model[PATH_MAX];
	const char *id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/data", dir);
	REQUIRE(pcd_blobs_open(path, &b, &err) == PC_OK);
	/* port 1 of the loopback: nothing listens, refused at once */
	REQUIRE(pcd_blobs_share(b, "postgresql://paracorr@127.0.0.1:1/none?connect_timeout=2", 0, 0, &err) == PC_OK);
	CHECK_INT(pcd_blobs_model_acquire(b, id, model, sizeof(model), &err), PC_ERR_BUSY);
	CHECK_MSG(!strncmp(err.text, "the PostgreSQL store is unreachable: ", 37), "%s", err.text);
	CHECK(!pcd_blobs_model_exists(b, id));
	pcd_blobs_free(b);
	be_rmtree(dir);
}

/* --- two daemons, one after the other, on one database --------------------- */

/* The "id" of a JSON answer with this status into id; 0 done. */
static int answer_id(const struct be_resp *r, long status, char *id, size_t size)
{
	json_t *j = r->status == status ? be_resp_json(r) : NULL;
	const char *s = json_string_value(json_object_get(j, "id"));

	if (s)
		snprintf(id, size, "%s", s);
	json_decref(j);
	return s ? 0 : -1;
}

/* Submits spec, waits (bounded) for the job to finish, and gives its
 * report without "timing" (NULL when it did not succeed); the job's id
 * into id. */
static json_t *daemon_job(const struct be_daemon *d, const char *spec, char id[64])
{
	struct be_resp r;
	char path[128];
	json_t *j, *rep = NULL;
	const char *status = "";

	if (be_daemon_request(d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, 0, &r) ||
	    answer_id(&r, 202, id, 64)) {
		fprintf(stderr, "  submit: %ld %s\n", r.status, r.body ? r.body : "");
		be_resp_free(&r);
		return NULL;
	}
	be_resp_free(&r);
	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	for (int i = 0; i < 1200; i++) {
		if (be_daemon_request(d, "GET", path, NULL, NULL, 0, NULL, 0, &r) != 0)
			return NULL;
		j = be_resp_json(&r);
		status = json_string_value(json_object_get(j, "status"));
		status = status && !strcmp(status, "succeeded")					 ? "succeeded"
			 : status && (!strcmp(status, "failed") || !strcmp(status, "cancelled")) ? "failed"
												 : "";
		if (status[0] && strcmp(status, "succeeded"))
			fprintf(stderr, "  job: %s\n", r.body ? r.body : "");
		json_decref(j);
		be_resp_free(&r);
		if (status[0])
			break;
		be_sleep_ms(100);
	}
	if (strcmp(status, "succeeded"))
		return NULL;
	snprintf(path, sizeof(path), "/v1/jobs/%s/report", id);
	if (be_daemon_request(d, "GET", path, NULL, NULL, 0, NULL, 0, &r) == 0 && r.status == 200 && (rep = be_resp_json(&r)))
		json_object_del(rep, "timing");
	be_resp_free(&r);
	return rep;
}

TEST(pgblobs_a_daemon_with_another_data_dir_runs_the_uploads)
{
	const char *bin = getenv("PARACORRD_BIN");
	char url[PATH_MAX], why[600], model[65] = "", ds[65] = "", spec[1024], px[PATH_MAX], py[PATH_MAX];
	char path[PATH_MAX + 200], job[64] = "", hjob[64] = "", hspec[1024];
	struct be_resp ra = {0}, rb = {0};
	json_t *hrep;
	const char *defaults[] = {"--workers",		"1", "--threads-per-job", "1", "--poll-ms", "50",
				  "--min-free-disk-mb", "1", "--store",		  url, NULL};
	struct be_daemon a, b;
	struct be_resp r;
	struct be_part parts[2];
	struct stat st;
	struct pgu *pg;
	json_t *on_a = NULL, *on_b = NULL;
	size_t len;
	char *bytes;

	if (!bin || !bin[0]) {
		pc_test_skip(t, "PARACORRD_BIN is not set (make test sets it)");
		return;
	}
	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG((pg = pgu_shared(why, sizeof(why))) && pgu_new_db(pg, url, sizeof(url)), "no database: %s", why);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	REQUIRE(be_tmpdir(a.dir, sizeof(a.dir)) && be_tmpdir(b.dir, sizeof(b.dir)));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	REQUIRE_MSG(be_daemon_start(&a, bin, defaults, NULL), "daemon a did not start (%s/daemon.log)", a.dir);
	snprintf(px, sizeof(px), "%s/" FIX "mlp_op13.onnx", pc_test_root());
	REQUIRE((bytes = be_read_file(px, &len)));
	CHECK(be_daemon_request(&a, "POST", "/v1/models", "application/octet-stream", bytes, len, NULL, 0, &r) == 0 &&
	      answer_id(&r, 201, model, sizeof(model)) == 0);
	be_resp_free(&r);
	free(bytes);
	snprintf(px, sizeof(px), "%s/" FIX "sample64_u8.npy", pc_test_root());
	snprintf(py, sizeof(py), "%s/" FIX "labels64_i64.npy", pc_test_root());
	CHECK(be_daemon_request(&a, "POST", "/v1/datasets", NULL, NULL, 0, parts, be_dataset_parts(parts, px, py), &r) == 0 &&
	      answer_id(&r, 201, ds, sizeof(ds)) == 0);
	be_resp_free(&r);
	snprintf(
	    spec, sizeof(spec),
	    "{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 48, \"batch_size\": 16, \"seed\": 5, \"corruption\":"
	    " {\"norms\": [\"l2\"], \"epsilons\": [0.05, 0.5], \"random_trials\": 2}}",
	    model, ds);
	CHECK_MSG((on_a = daemon_job(&a, spec, job)), "no report on daemon a");
	/* a harden job: its model is registered, so in the database */
	snprintf(hspec, sizeof(hspec),
		 "{\"kind\": \"harden\", \"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 32, \"seed\": 2, "
		 "\"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.5], \"random_trials\": 1, \"groups\": "
		 "[\"model\"]}, \"training\": {\"dataset\": \"%s\", \"epochs\": 1, \"batch_size\": 16}}",
		 model, ds, ds);
	hrep = daemon_job(&a, hspec, hjob);
	CHECK_MSG(hrep, "the harden job on a did not succeed");
	snprintf(path, sizeof(path), "/v1/jobs/%s/artifacts/model.onnx", hjob);
	CHECK(be_daemon_request(&a, "GET", path, NULL, NULL, 0, NULL, 0, &ra) == 0 && ra.status == 200 && ra.len > 0);
	/* a stops before b starts: b has the model from nowhere but the database */
	CHECK_INT(be_daemon_stop(&a, SIGTERM, NULL), 0);
	REQUIRE_MSG(be_daemon_start(&b, bin, defaults, NULL), "daemon b did not start (%s/daemon.log)", b.dir);
	snprintf(path, sizeof(path), "%s/data/models/%s.onnx", b.dir, model);
	CHECK(stat(path, &st) != 0);
	CHECK_MSG((on_b = daemon_job(&b, spec, job)), "no report on daemon b");
	CHECK_MSG(on_a && on_b && json_equal(on_a, on_b), "the reports of a and b differ");
	CHECK(stat(path, &st) == 0 && st.st_size == 438340);
	/* the hardened model a made, downloaded from b: the same bytes */
	snprintf(path, sizeof(path), "/v1/jobs/%s/artifacts/model.onnx", hjob);
	CHECK(be_daemon_request(&b, "GET", path, NULL, NULL, 0, NULL, 0, &rb) == 0);
	CHECK_MSG(rb.status == 200 && ra.status == 200 && rb.len == ra.len && !memcmp(rb.body, ra.body, ra.len),
		  "the artifact on b: %ld, %zu bytes (a: %zu)", rb.status, rb.len, ra.len);
	be_resp_free(&ra);
	be_resp_free(&rb);
	json_decref(hrep);
	/* the model's record and bytes, deleted on b, are gone for every node */
	snprintf(path, sizeof(path), "/v1/models/%s", model);
	CHECK(be_daemon_request(&b, "DELETE", path, NULL, NULL, 0, NULL, 0, &r) == 0 && r.status == 204);
	be_resp_free(&r);
	snprintf(path, sizeof(path), "SELECT count(*) FROM blobs WHERE kind = 'model' AND id = '%s'", model);
	CHECK_INT(count(url, path), 0);
	snprintf(path, sizeof(path), "%s/data/models/%s.onnx", b.dir, model);
	CHECK(stat(path, &st) != 0);
	json_decref(on_a);
	json_decref(on_b);
	be_daemon_stop(&b, SIGTERM, NULL);
	be_rmtree(a.dir);
	be_rmtree(b.dir);
}

TEST(pgblobs_schema_1_is_migrated_to_the_current_one)
{
	struct pcd_store *s = NULL;
	struct pc_error err = {0};
	char url[PATH_MAX], why[600];
	struct pgu *pg;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG((pg = pgu_shared(why, sizeof(why))) && pgu_new_db(pg, url, sizeof(url)), "no database: %s", why);
	REQUIRE(pcd_store_open(url, &s, &err) == PC_OK);
	REQUIRE(pcd_store_model_put(s, "default", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 1,
				    "{}", NULL, &err) == PC_OK);
	pcd_store_close(s);
	s = NULL;
	/* a database as version 1 left it */
	REQUIRE_MSG(pgu_exec(url,
			     "DROP TABLE blob_parts, blobs, blob_chunks; DROP INDEX jobs_running_lease;"
			     " ALTER TABLE jobs DROP COLUMN lease_expires_at, DROP COLUMN claim_token, DROP COLUMN node;"
			     " DROP TABLE job_state; DROP INDEX jobs_parent;"
			     " ALTER TABLE jobs DROP COLUMN parent_id, DROP COLUMN shard_index, DROP COLUMN waiting;"
			     " UPDATE paracorr_schema SET version = 1",
			     why, sizeof(why)),
		    "%s", why);
	CHECK_INT(
	    count(url, "SELECT count(*) FROM pg_tables WHERE tablename IN ('blob_parts', 'blobs', 'blob_chunks')"), 0);
	REQUIRE_MSG(pcd_store_open(url, &s, &err) == PC_OK, "%s", err.text);
	CHECK_INT(count(url, "SELECT max(version) FROM paracorr_schema"), 4);
	CHECK_INT(
	    count(url, "SELECT count(*) FROM pg_tables WHERE tablename IN ('blob_parts', 'blobs', 'blob_chunks')"), 3);
	CHECK_INT(count(url, "SELECT count(*) FROM models"), 1);
	pcd_store_close(s);
}

struct put_arg {
	struct node *n;
	char id[65];
	int existed, rc;
};

static void *put_thread(void *arg)
{
	struct put_arg *p = arg;
	char path[PATH_MAX];
	struct pcd_blob_writer *w;
	struct pc_error err = {0};

	snprintf(path, sizeof(path), "%s/" FIX "cnn_op13.onnx", pc_test_root());
	p->rc = -1;
	if ((w = job_env_copy_in(p->n->blobs, path)) && !pcd_blob_writer_finish(w, p->id, &err))
		p->rc = pcd_blobs_commit_model(p->n->blobs, w, &p->existed, &err);
	else
		pcd_blob_writer_abort(w);
	return NULL;
}

TEST(pgblobs_two_nodes_storing_the_same_bytes_at_once_store_them_once)
{
	struct env e;
	struct put_arg pa = {0}, pb = {0};
	pthread_t ta, tb;
	char why[600], sql[300];
	int rc = env_setup(&e, 0, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	pa.n = &e.a;
	pb.n = &e.b;
	REQUIRE(pthread_create(&ta, NULL, put_thread, &pa) == 0);
	REQUIRE(pthread_create(&tb, NULL, put_thread, &pb) == 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_INT(pa.rc, PC_OK);
	CHECK_INT(pb.rc, PC_OK);
	CHECK(!strcmp(pa.id, pb.id));
	/* one of them wrote, the other found it written */
	CHECK_INT(pa.existed + pb.existed, 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM blob_parts WHERE kind = 'model' AND id = '%s'", pa.id);
	CHECK_INT(count(e.url, sql), (249010 + CHUNK - 1) / CHUNK);
	CHECK_INT(count(e.url, "SELECT count(*) FROM blobs WHERE kind = 'model'"), 2);
	env_teardown(&e);
}

/* Through node b's worker pool: the job a damaged chunk stops is failed,
 * its problem names the model and the chunk. */
TEST(pgblobs_worker_fails_a_job_on_a_damaged_chunk)
{
	struct env e;
	struct pcd_workers_cfg cfg;
	struct pcd_workers *w = NULL;
	struct pcd_job j = {0}, got = {0};
	struct pc_error err = {0};
	char why[600], want[200], *spec = NULL;
	int rc = env_setup(&e, 0, why, sizeof(why));

	if (rc == 1) {
		pc_test_skip(t, why);
		return;
	}
	REQUIRE_MSG(rc == 0, "setup failed");
	REQUIRE_MSG(damage_chunk(&e, 6, 0, why, sizeof(why)), "%s", why);
	REQUIRE((spec = spec_for(e.model, e.dataset)));
	REQUIRE(pcd_store_job_submit(e.a.store, "default", 0, "analyze", spec, NULL, NULL, 0, 0, &j, NULL, &err) ==
		PC_OK);
	pcd_workers_cfg_default(&cfg);
	cfg.n_workers = 1;
	cfg.threads_per_job = 1;
	cfg.poll_ms = 50;
	cfg.timing_seconds = 0;
	cfg.quiet = 1;
	REQUIRE(pcd_workers_start(&cfg, e.b.store, e.b.blobs, &w, &err) == PC_OK);
	pcd_workers_notify(w);
	for (int i = 0; i < 1200; i++) {
		pcd_job_free(&got);
		if (pcd_store_job_get(e.a.store, PCD_ALL_TENANTS, j.id, &got, NULL) != PC_OK ||
		    pcd_job_status_finished(got.status))
			break;
		be_sleep_ms(50);
	}
	pcd_workers_free(w);
	CHECK_INT(got.status, PCD_JOB_FAILED);
	snprintf(want, sizeof(want), "the model %s is damaged in the database: chunk 6 of 7", e.model);
	CHECK_MSG(got.error && strstr(got.error, want), "%s", got.error ? got.error : "(no problem)");
	pcd_job_free(&got);
	pcd_job_free(&j);
	free(spec);
	env_teardown(&e);
}
