/* blobs: content-addressed upload files (layout and durability rules in
 * blobs.h).
 *
 * Everything is written under datadir/tmp first and moved into place by
 * rename(2), which is atomic within one file system, so a reader never
 * sees half a file and a crash leaves only temp files, which the next
 * pcd_blobs_open removes. A dataset is staged as a whole directory in tmp
 * and renamed once, so its parts appear together.
 *
 * A write that fails for want of space (ENOSPC, EDQUOT) is PC_ERR_NOSPACE,
 * answered 507; the writer removes its temp file at once, so the space the
 * partial upload took is back before the answer goes out.
 *
 * Shared, the files are a cache and nothing in it is precious: a fetch is
 * written to tmp/ and renamed into place like an upload, but not fsynced
 * (a file a crash damaged fails its hash and is fetched again), and a
 * failure to cache what the database already holds is not the upload's.
 * Jobs hold what they read (a count per upload, under cache_lock), and
 * the eviction, which runs after each addition to the cache and each
 * release, skips what is held; its order is the entries' mtime, which
 * every use sets to now (atime is not kept on every mount). */
#include "blobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobdb.h"
#include "sha256.h"

/* An upload a job reads from the cache now: never evicted. */
struct held {
	int dataset;
	char id[65];
	int refs;
};

struct pcd_blobs {
	char *dir;
	/* see pcd_blobs_record_lock */
	pthread_mutex_t record_lock;
	/* shared (pcd_blobs_share): the database holds the bytes, the
	 * directories are a cache of them bounded by cache_max bytes */
	struct pcd_blobdb *db;
	uint64_t cache_max;
	/* guards held and the eviction scan */
	pthread_mutex_t cache_lock;
	struct held *held;
	size_t n_held, cap_held;
};

struct pcd_blob_writer {
	struct pcd_blobs *b;
	int fd;
	int finished;
	uint64_t bytes, max_bytes;
	struct pcd_sha256 hash;
	char id[65];
	char path[PATH_MAX];
};

int pcd_blobs_id_valid(const char *id)
{
	int i;

	if (!id)
		return 0;
	for (i = 0; i < 64; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return id[64] == '\0';
}

static int fsync_dir(const char *path, struct pc_error *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return pc_error_set(err, pc_status_of_errno(errno), path, "cannot open directory: %s", strerror(errno));
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return pc_error_set(err, pc_status_of_errno(e), path, "fsync: %s", strerror(e));
	}
	close(fd);
	return PC_OK;
}

static int make_dir(const char *path, struct pc_error *err)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return pc_error_set(err, pc_status_of_errno(errno), path, "cannot create directory: %s", strerror(errno));
	return PC_OK;
}

static int join(char *buf, size_t size, struct pc_error *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int join(char *buf, size_t size, struct pc_error *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return pc_error_set(err, PC_ERR_LIMIT, "path", "path too long");
	return PC_OK;
}

/* Removes a file, or a directory one level deep (a staged dataset). */
static void remove_entry(const char *path)
{
	DIR *d;
	struct dirent *e;
	char sub[PATH_MAX];

	if (unlink(path) == 0 || (errno != EISDIR && errno != EPERM))
		return;
	d = opendir(path);
	if (d) {
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (join(sub, sizeof(sub), NULL, "%s/%s", path, e->d_name) == PC_OK)
				unlink(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

static void clean_tmp(const char *tmp)
{
	DIR *d = opendir(tmp);
	struct dirent *e;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (join(path, sizeof(path), NULL, "%s/%s", tmp, e->d_name) == PC_OK)
			remove_entry(path);
	}
	closedir(d);
}

int pcd_blobs_open(const char *datadir, struct pcd_blobs **out, struct pc_error *err)
{
	static const char *const subdirs[] = {"tmp", "models", "datasets", "artifacts"};
	struct pcd_blobs *b = NULL;
	char path[PATH_MAX];
	size_t i;
	int rc;

	*out = NULL;
	if (!datadir || !*datadir)
		return pc_error_set(err, PC_ERR_INVALID, "datadir", "is empty");
	if ((rc = make_dir(datadir, err)))
		return rc;
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		if ((rc = join(path, sizeof(path), err, "%s/%s", datadir, subdirs[i])) || (rc = make_dir(path, err)))
			return rc;
	}
	if ((rc = join(path, sizeof(path), err, "%s/tmp", datadir)))
		return rc;
	clean_tmp(path);
	b = calloc(1, sizeof(*b));
	if (!b || !(b->dir = strdup(datadir))) {
		free(b);
		return pc_error_set(err, PC_ERR_NOMEM, "blobs", "out of memory");
	}
	pthread_mutex_init(&b->record_lock, NULL);
	pthread_mutex_init(&b->cache_lock, NULL);
	*out = b;
	return PC_OK;
}

void pcd_blobs_free(struct pcd_blobs *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->record_lock);
	pthread_mutex_destroy(&b->cache_lock);
	pcd_blobdb_free(b->db);
	free(b->held);
	free(b->dir);
	free(b);
}

int pcd_blobs_share(struct pcd_blobs *b, const char *url, uint64_t cache_max_bytes, size_t chunk_bytes,
		    struct pc_error *err)
{
	int rc;

	if (b->db)
		return pc_error_set(err, PC_ERR_INTERNAL, "blobs", "already shared");
	if ((rc = pcd_blobdb_open(url, chunk_bytes, &b->db, err)))
		return rc;
	b->cache_max = cache_max_bytes;
	return PC_OK;
}

int pcd_blobs_shared(const struct pcd_blobs *b)
{
	return b->db != NULL;
}

/* ---- the cache of a shared store ----------------------------------------- */

/* A cached upload: the eviction's view of it. */
struct cached {
	int dataset;
	char id[65];
	uint64_t bytes;
	struct timespec used; /* the entry's mtime: touched at each use */
};

static int is_held(const struct pcd_blobs *b, int dataset, const char *id)
{
	for (size_t i = 0; i < b->n_held; i++)
		if (b->held[i].dataset == dataset && !strcmp(b->held[i].id, id))
			return 1;
	return 0;
}

static int hold(struct pcd_blobs *b, int dataset, const char *id, struct pc_error *err)
{
	size_t i;

	pthread_mutex_lock(&b->cache_lock);
	for (i = 0; i < b->n_held; i++)
		if (b->held[i].dataset == dataset && !strcmp(b->held[i].id, id)) {
			b->held[i].refs++;
			pthread_mutex_unlock(&b->cache_lock);
			return PC_OK;
		}
	if (b->n_held == b->cap_held) {
		size_t cap = b->cap_held ? 2 * b->cap_held : 8;
		struct held *h = realloc(b->held, cap * sizeof(*h));

		if (!h) {
			pthread_mutex_unlock(&b->cache_lock);
			return pc_error_set(err, PC_ERR_NOMEM, "blobs", "out of memory");
		}
		b->held = h;
		b->cap_held = cap;
	}
	b->held[b->n_held].dataset = dataset;
	snprintf(b->held[b->n_held].id, sizeof(b->held[0].id), "%s", id);
	b->held[b->n_held].refs = 1;
	b->n_held++;
	pthread_mutex_unlock(&b->cache_lock);
	return PC_OK;
}

static void unhold(struct pcd_blobs *b, int dataset, const char *id)
{
	pthread_mutex_lock(&b->cache_lock);
	for (size_t i = 0; i < b->n_held; i++)
		if (b->held[i].dataset == dataset && !strcmp(b->held[i].id, id)) {
			if (--b->held[i].refs == 0)
				b->held[i] = b->held[--b->n_held];
			break;
		}
	pthread_mutex_unlock(&b->cache_lock);
}

static int older(const void *x, const void *y)
{
	const struct cached *a = x, *c = y;

	if (a->used.tv_sec != c->used.tv_sec)
		return a->used.tv_sec < c->used.tv_sec ? -1 : 1;
	if (a->used.tv_nsec != c->used.tv_nsec)
		return a->used.tv_nsec < c->used.tv_nsec ? -1 : 1;
	return strcmp(a->id, c->id);
}

/* Appends the cached entries of one directory (models/ or datasets/) to
 * *v; entries that are not an upload's are left alone. */
static void scan_cache(const struct pcd_blobs *b, int dataset, struct cached **v, size_t *n, size_t *cap)
{
	char dir[PATH_MAX], path[PATH_MAX];
	DIR *d;
	struct dirent *e;

	if (join(dir, sizeof(dir), NULL, "%s/%s", b->dir, dataset ? "datasets" : "models") || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		struct cached c = {.dataset = dataset};
		struct stat st;
		size_t len = strlen(e->d_name);

		if (len != (dataset ? 64u : 69u) || (!dataset && strcmp(e->d_name + 64, ".onnx")))
			continue;
		memcpy(c.id, e->d_name, 64);
		c.id[64] = '\0';
		if (!pcd_blobs_id_valid(c.id) || join(path, sizeof(path), NULL, "%s/%s", dir, e->d_name) ||
		    stat(path, &st) != 0)
			continue;
		c.used = st.st_mtim;
		c.bytes = (uint64_t)st.st_size;
		if (dataset) {
			static const char *const parts[] = {"inputs", "labels"};
			char part[PATH_MAX];
			struct stat ps;

			c.bytes = 0;
			for (int i = 0; i < 2; i++)
				if (!join(part, sizeof(part), NULL, "%s/%s", path, parts[i]) && stat(part, &ps) == 0)
					c.bytes += (uint64_t)ps.st_size;
		}
		if (*n == *cap) {
			size_t nc = *cap ? 2 * *cap : 64;
			struct cached *nv = realloc(*v, nc * sizeof(**v));

			if (!nv)
				break;
			*v = nv;
			*cap = nc;
		}
		(*v)[(*n)++] = c;
	}
	closedir(d);
}

/* Removes cached uploads, least recently used first, until the cache is
 * within its bound; an upload a job holds stays. Out of memory for the
 * scan: nothing is evicted now, the next call tries again. */
static void cache_evict(struct pcd_blobs *b)
{
	struct cached *v = NULL;
	size_t n = 0, cap = 0, i;
	uint64_t total = 0;
	char path[PATH_MAX], gone[PATH_MAX];

	if (!b->db || !b->cache_max)
		return;
	pthread_mutex_lock(&b->cache_lock);
	scan_cache(b, 0, &v, &n, &cap);
	scan_cache(b, 1, &v, &n, &cap);
	for (i = 0; i < n; i++)
		total += v[i].bytes;
	if (total > b->cache_max && n > 1)
		qsort(v, n, sizeof(*v), older);
	for (i = 0; i < n && total > b->cache_max; i++) {
		if (is_held(b, v[i].dataset, v[i].id))
			continue;
		if (!v[i].dataset) {
			if (join(path, sizeof(path), NULL, "%s/models/%s.onnx", b->dir, v[i].id) || unlink(path) != 0)
				continue;
		} else {
			/* gone as a whole by one rename, as a delete does */
			if (join(path, sizeof(path), NULL, "%s/datasets/%s", b->dir, v[i].id) ||
			    join(gone, sizeof(gone), NULL, "%s/tmp/evicted-%s", b->dir, v[i].id) || rename(path, gone) != 0)
				continue;
			remove_entry(gone);
		}
		total -= v[i].bytes;
	}
	pthread_mutex_unlock(&b->cache_lock);
	free(v);
}

/* The sha256 hex of a file's content; -1 when it cannot be read. */
static int hash_file(const char *path, char hex[65])
{
	char buf[65536];
	struct pcd_sha256 h;
	uint8_t d[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t k;

	if (fd < 0)
		return -1;
	pcd_sha256_init(&h);
	while ((k = read(fd, buf, sizeof(buf))) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			close(fd);
			return -1;
		}
		pcd_sha256_update(&h, buf, (size_t)k);
	}
	close(fd);
	pcd_sha256_final(&h, d);
	pcd_sha256_hex(d, hex);
	return 0;
}

/* Fetches one blob into a new temp file in tmp/ (path receives its name)
 * or into the file path names when create is 0. sha gets its checked
 * sha256. */
static int fetch_to(struct pcd_blobs *b, const char *kind, const char *id, const char *part, char *path,
		    int create, char sha[65], struct pc_error *err)
{
	int fd, rc;

	if (create) {
		if ((rc = join(path, PATH_MAX, err, "%s/tmp/fetch-XXXXXX", b->dir)))
			return rc;
		fd = mkostemp(path, O_CLOEXEC);
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (fd < 0)
		return pc_error_set(err, pc_status_of_errno(errno), kind, "cannot create a file in the cache: %s",
				    strerror(errno));
	rc = pcd_blobdb_fetch(b->db, kind, id, part, fd, sha, err);
	if (close(fd) != 0 && !rc)
		rc = pc_error_set(err, pc_status_of_errno(errno), kind, "cannot write to the cache: %s", strerror(errno));
	if (rc)
		unlink(path);
	return rc;
}

/* The model in the cache, verified, or fetched into it (b->db set). */
static int cache_model(struct pcd_blobs *b, const char *id, const char *path, struct pc_error *err)
{
	char hex[65], tmp[PATH_MAX];
	int rc;

	if (hash_file(path, hex) == 0) {
		if (!strcmp(hex, id)) {
			utimensat(AT_FDCWD, path, NULL, 0); /* used now: the last to evict */
			return PC_OK;
		}
		unlink(path); /* damaged on disk: fetched again */
	}
	if ((rc = fetch_to(b, "model", id, "", tmp, 1, hex, err)))
		return rc;
	if (strcmp(hex, id)) {
		unlink(tmp);
		return pc_error_set(err, PC_ERR_IO, "model", "the database's bytes of model %s have another sha256", id);
	}
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return pc_error_set(err, pc_status_of_errno(errno), "model", "cannot put model %s in the cache: %s", id,
				    strerror(errno));
	}
	cache_evict(b);
	return PC_OK;
}

/* The dataset in the cache, verified, or fetched into it (b->db set). */
static int cache_dataset(struct pcd_blobs *b, const char *id, const char *dst, const char *inputs,
			 const char *labels, struct pc_error *err)
{
	char xh[65], yh[65], got[65], stage[PATH_MAX], part[PATH_MAX], gone[PATH_MAX];
	struct stat st;
	int rc, has_labels;

	if (hash_file(inputs, xh) == 0) {
		has_labels = stat(labels, &st) == 0;
		if (!has_labels || hash_file(labels, yh) == 0) {
			pcd_blobs_dataset_id(xh, has_labels ? yh : NULL, got);
			if (!strcmp(got, id)) {
				utimensat(AT_FDCWD, dst, NULL, 0);
				return PC_OK;
			}
		}
	}
	/* absent or damaged: whatever is there goes as a whole */
	if (!join(gone, sizeof(gone), NULL, "%s/tmp/damaged-%s", b->dir, id) && rename(dst, gone) == 0)
		remove_entry(gone);
	rc = pcd_blobdb_stat(b->db, "dataset", id, "labels", NULL, NULL, err);
	if (rc && rc != PC_ERR_NOT_FOUND)
		return rc;
	has_labels = rc == PC_OK;
	if ((rc = join(stage, sizeof(stage), err, "%s/tmp/fetch-XXXXXX", b->dir)))
		return rc;
	if (!mkdtemp(stage))
		return pc_error_set(err, pc_status_of_errno(errno), "dataset", "cannot create a directory in the cache: %s",
				    strerror(errno));
	if ((rc = join(part, sizeof(part), err, "%s/inputs", stage)) ||
	    (rc = fetch_to(b, "dataset", id, "inputs", part, 0, xh, err)))
		goto out;
	if (has_labels && ((rc = join(part, sizeof(part), err, "%s/labels", stage)) ||
			   (rc = fetch_to(b, "dataset", id, "labels", part, 0, yh, err))))
		goto out;
	pcd_blobs_dataset_id(xh, has_labels ? yh : NULL, got);
	if (strcmp(got, id)) {
		rc = pc_error_set(err, PC_ERR_IO, "dataset", "the database's parts of dataset %s make another id", id);
		goto out;
	}
	if (rename(stage, dst) != 0 && errno != EEXIST && errno != ENOTEMPTY) {
		rc = pc_error_set(err, pc_status_of_errno(errno), "dataset", "cannot put dataset %s in the cache: %s", id,
				  strerror(errno));
		goto out;
	}
	/* (another worker may have put the same one there first) */
	rc = PC_OK;
out:
	remove_entry(stage);
	if (!rc)
		cache_evict(b);
	return rc;
}

pthread_mutex_t *pcd_blobs_record_lock(struct pcd_blobs *b)
{
	return &b->record_lock;
}

int pcd_blob_writer_begin(struct pcd_blobs *b, uint64_t max_bytes, struct pcd_blob_writer **out,
			  struct pc_error *err)
{
	struct pcd_blob_writer *w;
	int rc;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return pc_error_set(err, PC_ERR_NOMEM, "upload", "out of memory");
	w->b = b;
	w->max_bytes = max_bytes;
	w->fd = -1;
	if ((rc = join(w->path, sizeof(w->path), err, "%s/tmp/upload-XXXXXX", b->dir)))
		goto fail;
	/* mkostemp creates the file 0600, which is what uploads should be */
	w->fd = mkostemp(w->path, O_CLOEXEC);
	if (w->fd < 0) {
		rc = pc_error_set(err, pc_status_of_errno(errno), "upload", "cannot create a temp file in %s/tmp: %s",
				  b->dir, strerror(errno));
		goto fail;
	}
	pcd_sha256_init(&w->hash);
	*out = w;
	return PC_OK;
fail:
	free(w);
	return rc;
}

/* Closes and removes the temp file of a writer that failed: what it holds
 * is of no use, and on a full disk its space is wanted at once. */
static void writer_drop_file(struct pcd_blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->path[0])
		unlink(w->path);
	w->path[0] = '\0';
}

int pcd_blob_writer_write(struct pcd_blob_writer *w, const void *buf, size_t len, struct pc_error *err)
{
	const char *p = buf;
	size_t left = len;

	if (w->finished)
		return pc_error_set(err, PC_ERR_INTERNAL, "upload", "write after finish");
	if (w->fd < 0)
		return pc_error_set(err, PC_ERR_INTERNAL, "upload", "write after a failed write");
	if (w->max_bytes && (len > w->max_bytes || w->bytes > w->max_bytes - len))
		return pc_error_set(err, PC_ERR_LIMIT, "upload", "larger than the limit of %llu bytes (at byte %llu)",
				    (unsigned long long)w->max_bytes, (unsigned long long)w->bytes);
	while (left) {
		ssize_t n = write(w->fd, p, left);
		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			writer_drop_file(w);
			return pc_error_set(err, pc_status_of_errno(e), "upload", "write at byte %llu: %s",
					    (unsigned long long)(w->bytes + (len - left)), strerror(e));
		}
		p += n;
		left -= (size_t)n;
	}
	pcd_sha256_update(&w->hash, buf, len);
	w->bytes += len;
	return PC_OK;
}

uint64_t pcd_blob_writer_bytes(const struct pcd_blob_writer *w)
{
	return w->bytes;
}

const char *pcd_blob_writer_path(const struct pcd_blob_writer *w)
{
	return w->path;
}

void pcd_blob_writer_abort(struct pcd_blob_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->path[0])
		unlink(w->path);
	free(w);
}

int pcd_blob_writer_finish(struct pcd_blob_writer *w, char id[65], struct pc_error *err)
{
	uint8_t d[32];

	if (!w->finished) {
		if (w->fd < 0)
			return pc_error_set(err, PC_ERR_INTERNAL, "upload", "finish after a failed write");
		if (fsync(w->fd) != 0) {
			int e = errno;

			writer_drop_file(w);
			return pc_error_set(err, pc_status_of_errno(e), "upload", "fsync: %s", strerror(e));
		}
		pcd_sha256_final(&w->hash, d);
		pcd_sha256_hex(d, w->id);
		w->finished = 1;
	}
	if (id)
		memcpy(id, w->id, 65);
	return PC_OK;
}

/* Closes the writer's file and frees it, leaving the file where it is
 * (it has been renamed away, or is removed by the caller). */
static void writer_release(struct pcd_blob_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w);
}

int pcd_blobs_commit_model(struct pcd_blobs *b, struct pcd_blob_writer *w, int *existed, struct pc_error *err)
{
	char dst[PATH_MAX], dir[PATH_MAX];
	struct stat st;
	int rc;

	if (existed)
		*existed = 0;
	if ((rc = pcd_blob_writer_finish(w, NULL, err)) ||
	    (rc = join(dst, sizeof(dst), err, "%s/models/%s.onnx", b->dir, w->id)) ||
	    (rc = join(dir, sizeof(dir), err, "%s/models", b->dir)))
		goto fail;
	if (b->db) {
		/* the database's copy is the upload; the file is only cached */
		if ((rc = pcd_blobdb_put(b->db, "model", w->id, "", w->path, w->id, existed, err)))
			goto fail;
		if (stat(dst, &st) == 0 || rename(w->path, dst) != 0) {
			pcd_blob_writer_abort(w);
			return PC_OK;
		}
		writer_release(w);
		cache_evict(b);
		return PC_OK;
	}
	if (stat(dst, &st) == 0) {
		/* same bytes already stored: the name says so */
		if (existed)
			*existed = 1;
		pcd_blob_writer_abort(w);
		return PC_OK;
	}
	if (rename(w->path, dst) != 0) {
		rc = pc_error_set(err, pc_status_of_errno(errno), "upload", "cannot move the upload to %s: %s", dst,
				  strerror(errno));
		goto fail;
	}
	writer_release(w);
	return fsync_dir(dir, err);
fail:
	pcd_blob_writer_abort(w);
	return rc;
}

void pcd_blobs_dataset_id(const char inputs_hex[65], const char *labels_hex, char id[65])
{
	struct pcd_sha256 c;
	uint8_t d[32];

	pcd_sha256_init(&c);
	pcd_sha256_update(&c, "inputs", 7); /* with its NUL */
	pcd_sha256_update(&c, inputs_hex, 64);
	if (labels_hex) {
		pcd_sha256_update(&c, "labels", 7);
		pcd_sha256_update(&c, labels_hex, 64);
	}
	pcd_sha256_final(&c, d);
	pcd_sha256_hex(d, id);
}

int pcd_blobs_commit_dataset(struct pcd_blobs *b, struct pcd_blob_writer *inputs, struct pcd_blob_writer *labels,
			     char id[65], int *existed, struct pc_error *err)
{
	char stage[PATH_MAX], part[PATH_MAX], dst[PATH_MAX], dir[PATH_MAX];
	struct pc_error cache_err = {0};
	struct stat st;
	int rc, staged = 0;

	if (existed)
		*existed = 0;
	stage[0] = '\0';
	if ((rc = pcd_blob_writer_finish(inputs, NULL, err)) || (labels && (rc = pcd_blob_writer_finish(labels, NULL, err))))
		goto out;
	pcd_blobs_dataset_id(inputs->id, labels ? labels->id : NULL, id);
	if ((rc = join(dst, sizeof(dst), err, "%s/datasets/%s", b->dir, id)) ||
	    (rc = join(dir, sizeof(dir), err, "%s/datasets", b->dir)))
		goto out;
	if (b->db) {
		int in_existed = 0, lab_existed = 1;

		/* both parts are in before the caller records the dataset */
		if ((rc = pcd_blobdb_put(b->db, "dataset", id, "inputs", inputs->path, inputs->id, &in_existed, err)) ||
		    (labels &&
		     (rc = pcd_blobdb_put(b->db, "dataset", id, "labels", labels->path, labels->id, &lab_existed, err))))
			goto out;
		if (existed)
			*existed = in_existed && lab_existed;
		/* stored: what goes wrong in the cache from here on is the
		 * cache's, not the upload's (a fetch fills it again) */
		err = &cache_err;
		if (stat(dst, &st) == 0)
			goto out;
	} else if (stat(dst, &st) == 0) {
		if (existed)
			*existed = 1;
		goto out;
	}
	if ((rc = join(stage, sizeof(stage), err, "%s/tmp/dataset-XXXXXX", b->dir)))
		goto out;
	if (!mkdtemp(stage)) {
		rc = pc_error_set(err, pc_status_of_errno(errno), "dataset", "cannot create a staging directory: %s",
				  strerror(errno));
		stage[0] = '\0';
		goto out;
	}
	staged = 1;
	if ((rc = join(part, sizeof(part), err, "%s/inputs", stage)))
		goto out;
	if (rename(inputs->path, part) != 0) {
		rc = pc_error_set(err, pc_status_of_errno(errno), "inputs", "cannot stage: %s", strerror(errno));
		goto out;
	}
	inputs->path[0] = '\0';
	if (labels) {
		if ((rc = join(part, sizeof(part), err, "%s/labels", stage)))
			goto out;
		if (rename(labels->path, part) != 0) {
			rc = pc_error_set(err, pc_status_of_errno(errno), "labels", "cannot stage: %s", strerror(errno));
			goto out;
		}
		labels->path[0] = '\0';
	}
	if ((rc = fsync_dir(stage, err)))
		goto out;
	if (rename(stage, dst) != 0) {
		if (errno == EEXIST || errno == ENOTEMPTY) {
			/* another upload of the same dataset won the race */
			if (existed)
				*existed = 1;
			goto out;
		}
		rc = pc_error_set(err, pc_status_of_errno(errno), "dataset", "cannot move the dataset to %s: %s", dst,
				  strerror(errno));
		goto out;
	}
	staged = 0;
	if (b->db)
		cache_evict(b);
	else
		rc = fsync_dir(dir, err);
out:
	if (staged)
		remove_entry(stage);
	if (err == &cache_err)
		rc = PC_OK;
	pcd_blob_writer_abort(inputs);
	pcd_blob_writer_abort(labels);
	return rc;
}

int pcd_blobs_model_path(const struct pcd_blobs *b, const char *id, char *buf, size_t size, struct pc_error *err)
{
	if (!pcd_blobs_id_valid(id))
		return pc_error_set(err, PC_ERR_INVALID, "model", "not a model id (64 lowercase hex digits)");
	return join(buf, size, err, "%s/models/%s.onnx", b->dir, id);
}

int pcd_blobs_dataset_paths(const struct pcd_blobs *b, const char *id, char *inputs, char *labels, size_t size,
			    int *has_labels, struct pc_error *err)
{
	struct stat st;
	int rc;

	if (!pcd_blobs_id_valid(id))
		return pc_error_set(err, PC_ERR_INVALID, "dataset", "not a dataset id (64 lowercase hex digits)");
	if ((rc = join(inputs, size, err, "%s/datasets/%s/inputs", b->dir, id)) ||
	    (rc = join(labels, size, err, "%s/datasets/%s/labels", b->dir, id)))
		return rc;
	if (has_labels)
		*has_labels = stat(labels, &st) == 0;
	return PC_OK;
}

int pcd_blobs_model_exists(const struct pcd_blobs *b, const char *id)
{
	char path[PATH_MAX];
	struct stat st;

	if (b->db)
		return pcd_blobs_id_valid(id) && pcd_blobdb_stat(b->db, "model", id, "", NULL, NULL, NULL) == PC_OK;
	return pcd_blobs_model_path(b, id, path, sizeof(path), NULL) == PC_OK && stat(path, &st) == 0;
}

int pcd_blobs_dataset_exists(const struct pcd_blobs *b, const char *id)
{
	char in[PATH_MAX], lab[PATH_MAX];
	struct stat st;

	if (b->db)
		return pcd_blobs_id_valid(id) && pcd_blobdb_stat(b->db, "dataset", id, "inputs", NULL, NULL, NULL) == PC_OK;
	return pcd_blobs_dataset_paths(b, id, in, lab, sizeof(in), NULL, NULL) == PC_OK && stat(in, &st) == 0;
}

int pcd_blobs_stored(const struct pcd_blobs *b, int dataset, const char *id, struct pc_error *err)
{
	if (!pcd_blobs_id_valid(id))
		return pc_error_set(err, PC_ERR_INVALID, dataset ? "dataset" : "model", "not an id (64 lowercase hex digits)");
	if (!b->db)
		return (dataset ? pcd_blobs_dataset_exists : pcd_blobs_model_exists)(b, id)
			       ? PC_OK
			       : pc_error_set(err, PC_ERR_NOT_FOUND, dataset ? "dataset" : "model", "no such upload");
	return pcd_blobdb_stat(b->db, dataset ? "dataset" : "model", id, dataset ? "inputs" : "", NULL, NULL, err);
}

int pcd_blobs_model_acquire(struct pcd_blobs *b, const char *id, char *path, size_t size, struct pc_error *err)
{
	struct stat st;
	int rc;

	if ((rc = pcd_blobs_model_path(b, id, path, size, err)))
		return rc;
	if (!b->db)
		return stat(path, &st) == 0 ? PC_OK : pc_error_set(err, PC_ERR_NOT_FOUND, "model", "no model %s", id);
	if ((rc = hold(b, 0, id, err)))
		return rc;
	if ((rc = cache_model(b, id, path, err)))
		unhold(b, 0, id);
	return rc;
}

int pcd_blobs_dataset_acquire(struct pcd_blobs *b, const char *id, char *inputs, char *labels, size_t size,
			      int *has_labels, struct pc_error *err)
{
	char dst[PATH_MAX];
	struct stat st;
	int rc;

	if ((rc = pcd_blobs_dataset_paths(b, id, inputs, labels, size, NULL, err)) ||
	    (rc = join(dst, sizeof(dst), err, "%s/datasets/%s", b->dir, id)))
		return rc;
	if (b->db) {
		if ((rc = hold(b, 1, id, err)))
			return rc;
		if ((rc = cache_dataset(b, id, dst, inputs, labels, err))) {
			unhold(b, 1, id);
			return rc;
		}
	} else if (stat(inputs, &st) != 0) {
		return pc_error_set(err, PC_ERR_NOT_FOUND, "dataset", "no dataset %s", id);
	}
	if (has_labels)
		*has_labels = stat(labels, &st) == 0;
	return PC_OK;
}

void pcd_blobs_release(struct pcd_blobs *b, int dataset, const char *id)
{
	if (!b->db)
		return;
	unhold(b, dataset, id);
	cache_evict(b);
}

int pcd_blobs_job_id_valid(const char *id)
{
	size_t i;

	if (strncmp(id, "j-", 2))
		return 0;
	for (i = 2; id[i]; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return 0;
	return i == 18;
}

int pcd_blobs_artifacts_dir(const struct pcd_blobs *b, const char *job_id, int create, char *buf, size_t size,
			    struct pc_error *err)
{
	int rc;

	if (!pcd_blobs_job_id_valid(job_id))
		return pc_error_set(err, PC_ERR_INVALID, "job", "not a job id");
	if ((rc = join(buf, size, err, "%s/artifacts/%s", b->dir, job_id)))
		return rc;
	return create ? make_dir(buf, err) : PC_OK;
}

void pcd_blobs_delete_artifacts(const struct pcd_blobs *b, const char *job_id)
{
	char path[PATH_MAX];

	if (pcd_blobs_artifacts_dir(b, job_id, 0, path, sizeof(path), NULL) == PC_OK)
		remove_entry(path);
}

int pcd_blobs_delete_model(struct pcd_blobs *b, const char *id, struct pc_error *err)
{
	char path[PATH_MAX], dir[PATH_MAX];
	int rc;

	if ((rc = pcd_blobs_model_path(b, id, path, sizeof(path), err)) ||
	    (rc = join(dir, sizeof(dir), err, "%s/models", b->dir)))
		return rc;
	if (b->db) {
		/* the database's copy, then this node's cached one */
		if ((rc = pcd_blobdb_delete(b->db, "model", id, NULL, err)))
			return rc;
		unlink(path);
		return PC_OK;
	}
	if (unlink(path) != 0) {
		if (errno == ENOENT)
			return pc_error_set(err, PC_ERR_NOT_FOUND, "model", "no model %s", id);
		return pc_error_set(err, PC_ERR_IO, "model", "cannot delete %s: %s", path, strerror(errno));
	}
	return fsync_dir(dir, err);
}

int pcd_blobs_delete_dataset(struct pcd_blobs *b, const char *id, struct pc_error *err)
{
	char path[PATH_MAX], gone[PATH_MAX], dir[PATH_MAX];
	int rc;

	if (!pcd_blobs_id_valid(id))
		return pc_error_set(err, PC_ERR_INVALID, "dataset", "not a dataset id (64 lowercase hex digits)");
	if ((rc = join(path, sizeof(path), err, "%s/datasets/%s", b->dir, id)) ||
	    (rc = join(gone, sizeof(gone), err, "%s/tmp/deleted-%s", b->dir, id)) ||
	    (rc = join(dir, sizeof(dir), err, "%s/datasets", b->dir)))
		return rc;
	if (b->db) {
		if ((rc = pcd_blobdb_delete(b->db, "dataset", id, NULL, err)))
			return rc;
		if (rename(path, gone) == 0)
			remove_entry(gone);
		return PC_OK;
	}
	/* one rename makes the dataset vanish as a whole; the parts go after */
	if (rename(path, gone) != 0) {
		if (errno == ENOENT)
			return pc_error_set(err, PC_ERR_NOT_FOUND, "dataset", "no dataset %s", id);
		return pc_error_set(err, PC_ERR_IO, "dataset", "cannot delete %s: %s", path, strerror(errno));
	}
	remove_entry(gone);
	return fsync_dir(dir, err);
}
