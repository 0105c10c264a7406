/* The fuzz targets (targets.h): each feeds one input to one parser the
 * way the daemon or the CLI does, and frees what it got, so that ASan's
 * leak check and UBSan see every path. Nothing here may keep state that
 * changes what a later input does, except the HTTP target's data
 * directory, which is emptied every HTTP_RESET inputs (an input that
 * needs an earlier upload carries that upload itself). */
#include "targets.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blobs.h"
#include "charts.h"
#include "http_server.h"
#include "job.h"
#include "prom.h"
#include "settings.h"
#include "store.h"
#include "workers.h"
#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/onnx.h"
#include "paracorr/spec.h"

/* A failure must say what failed: an error code with an empty message is
 * a bug in the parser (the daemon would answer a problem with no detail). */
static void check_err(int rc, const struct pc_error *err)
{
	if (rc && (!err->text[0] || err->code != (enum pc_status)rc)) {
		fprintf(stderr, "fuzz: error %d without its message (code %d, where '%s')\n", rc, (int)err->code,
			err->where);
		abort();
	}
}

/* --- file-reading parsers: the input as a file ---------------------------- */

/* One memfd, rewritten per input; parsers open it by its /proc path, which
 * gives each open its own offset. */
static int as_file(const uint8_t *data, size_t size, char *path, size_t path_size)
{
	static int fd = -1;
	size_t off = 0;

	if (fd < 0 && (fd = memfd_create("pcf-input", MFD_CLOEXEC)) < 0) {
		perror("fuzz: memfd_create");
		abort();
	}
	if (ftruncate(fd, 0)) {
		perror("fuzz: ftruncate");
		abort();
	}
	while (off < size) {
		ssize_t k = pwrite(fd, data + off, size - off, (off_t)off);

		if (k <= 0) {
			perror("fuzz: pwrite");
			abort();
		}
		off += (size_t)k;
	}
	snprintf(path, path_size, "/proc/self/fd/%d", fd);
	return 0;
}

/* --- the targets ---------------------------------------------------------- */

int pcf_onnx(const uint8_t *data, size_t size)
{
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_preprocess pp;
	int rc = pc_onnx_load_buffer(data, size, &g, &err);

	check_err(rc, &err);
	if (!rc) {
		json_t *info;

		/* what an upload asks of a loaded model next: its description
		 * (the upload's answer, which must exist for every model the
		 * loader accepts: a name JSON cannot hold would make it NULL)
		 * and what data it takes */
		if (!(info = pcd_model_info(g, "0000000000000000000000000000000000000000000000000000000000000000",
					    (uint64_t)size))) {
			fprintf(stderr, "fuzz: pcd_model_info of a loaded model is NULL\n");
			abort();
		}
		json_decref(info);
		pc_preprocess_default(&pp);
		pc_error_clear(&err);
		check_err(pc_eval_data_for(g, &pp, &err), &err);
	}
	pc_graph_free(g);
	return 0;
}

int pcf_data(const uint8_t *data, size_t size)
{
	static const int64_t limits[4] = {0, 1, 3, 1000};
	struct pc_error err = {0};
	struct pc_dataset *d = NULL;
	struct pc_preprocess pp;
	const uint8_t *labels = NULL;
	size_t n_inputs, n_labels = 0;
	unsigned mode;
	int rc;

	if (size < 1)
		return 0;
	mode = data[0];
	data++;
	size--;
	pc_preprocess_default(&pp);
	pp.inputs = (enum pc_data_inputs)((mode & 3) % 3);
	pp.labels = (enum pc_data_labels)(((mode >> 2) & 3) % 3);
	if (mode & 0x20) {
		pp.scale_set = 1;
		pp.scale = 0.5;
		pp.n_mean = pp.n_std = 1;
		pp.mean[0] = 0.25;
		pp.std[0] = 2;
	}
	n_inputs = size;
	if (mode & 0x10) {
		uint32_t split;

		if (size < 4)
			return 0;
		split = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
		data += 4;
		size -= 4;
		n_inputs = split < size ? split : size;
		labels = data + n_inputs;
		n_labels = size - n_inputs;
	}
	/* a cap well under -rss_limit_mb: a gzip bomb is refused, not run */
	rc = pc_dataset_load_memory_max(data, n_inputs, labels, n_labels, &pp, limits[(mode >> 6) & 3],
					(uint64_t)64 << 20, &d, &err);
	check_err(rc, &err);
	if (!rc && (!d || d->n < 1 || (!d->x && !d->tokens) || !d->y))
		abort(); /* a dataset the loader accepted must hold samples */
	pc_dataset_free(d);
	return 0;
}

int pcf_spec(const uint8_t *data, size_t size)
{
	struct pc_error err = {0};
	struct pc_spec spec;
	json_t *root = json_loadb((const char *)data, size, 0, NULL), *back;
	int rc;

	if (!root)
		return 0;
	memset(&spec, 0, sizeof(spec));
	rc = pc_spec_parse(root, &spec, &err);
	check_err(rc, &err);
	json_decref(root);
	if (!rc) {
		/* the report echoes the spec: that must always work */
		if (!(back = pc_spec_to_json(&spec)))
			abort();
		json_decref(back);
	}
	pc_spec_free(&spec);
	return 0;
}

int pcf_settings(const uint8_t *data, size_t size)
{
	struct pc_error err = {0};
	struct pcd_settings s;
	char path[64];
	int rc;

	as_file(data, size, path, sizeof(path));
	pcd_settings_default(&s);
	rc = pcd_settings_load_file(&s, path, &err);
	check_err(rc, &err);
	if (!rc) {
		pcd_settings_resolve(&s);
		check_err(pcd_settings_validate(&s, &err), &err);
	}
	return 0;
}

int pcf_tokens(const uint8_t *data, size_t size)
{
	struct pc_error err = {0};
	struct pcd_tokens *toks = NULL;
	char path[64];
	int rc;

	as_file(data, size, path, sizeof(path));
	rc = pcd_http_tokens_load(path, &toks, &err);
	check_err(rc, &err);
	if (!rc && (!toks || toks->n < 1))
		abort(); /* success means at least one token */
	for (size_t i = 0; toks && i < toks->n; i++) {
		const char *tn = toks->v[i].tenant;
		if (!tn[0] || strlen(tn) > PCD_TENANT_MAX || strspn(tn, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
								    "0123456789._-") != strlen(tn))
			abort(); /* a tenant is a valid name */
	}
	pcd_http_tokens_free(toks);
	return 0;
}

int pcf_ckpt(const uint8_t *data, size_t size)
{
	static const int64_t state_floats[4] = {0, 1, 7, 1000};
	char path[64];
	float *state;
	int64_t steps;
	json_t *curve;
	int done;

	if (size < 1)
		return 0;
	as_file(data + 1, size - 1, path, sizeof(path));
	done = pcd_ckpt_read(path, state_floats[data[0] & 3], &state, &steps, &curve);
	if (done < 0 || (done > 0 && (!state || !json_is_array(curve) || json_array_size(curve) != (size_t)done)) ||
	    (done == 0 && (state || curve)))
		abort();
	free(state);
	json_decref(curve);
	return 0;
}

int pcf_charts(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"accuracy", "loss", "ranking", "harden", "nope"};
	json_t *rep = json_loadb((const char *)data, size, 0, NULL), *list;

	if (!rep)
		return 0;
	list = pcd_charts_list(rep);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct pc_error err = {0};
		char *svg = NULL;
		int rc = pcd_chart_svg(rep, names[i], &svg, &err);
		int listed = 0;
		size_t k;
		json_t *c;

		check_err(rc, &err);
		json_array_foreach(list, k, c) listed |= !strcmp(json_string_value(json_object_get(c, "name")), names[i]);
		/* a chart is offered exactly when it draws (charts.h) */
		if ((rc == 0) != (svg != NULL) || (list && listed != (rc == 0)) || (svg && strncmp(svg, "<svg", 4)))
			abort();
		free(svg);
	}
	json_decref(list);
	json_decref(rep);
	return 0;
}

/* --- HTTP ------------------------------------------------------------------ */

#define HTTP_RESET 256

static struct {
	int ready;
	char dir[64];
	struct pcd_settings s;
	struct pcd_app app;
	struct pcd_http *http;
	struct pcd_tokens *tokens;
	unsigned inputs;
} H;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

/* An empty data directory with a fresh store, blobs and workers. The
 * workers go first: their lease keeper sweeps the store it was given.
 * They never run a job (drained at once): a queued job stays queued, so
 * every input sees the same service and no study runs under the fuzzer. */
static void http_fresh(void)
{
	struct pc_error err = {0};
	struct pcd_workers_cfg wcfg;
	char db[128];

	pcd_workers_free(H.app.workers);
	H.app.workers = NULL;
	pcd_store_close(H.app.store);
	pcd_blobs_free(H.app.blobs);
	H.app.store = NULL;
	H.app.blobs = NULL;
	nftw(H.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(H.dir, 0700) && errno != EEXIST) {
		perror("fuzz: mkdir");
		abort();
	}
	snprintf(db, sizeof(db), "%s/paracorr.db", H.dir);
	if (pcd_blobs_open(H.dir, &H.app.blobs, &err) || pcd_store_open(db, &H.app.store, &err)) {
		fprintf(stderr, "fuzz: data directory %s: %s: %s\n", H.dir, err.where, err.text);
		abort();
	}
	pcd_workers_cfg_default(&wcfg);
	wcfg.n_workers = 1;
	wcfg.threads_per_job = 1;
	if (pcd_workers_start(&wcfg, H.app.store, H.app.blobs, &H.app.workers, &err)) {
		fprintf(stderr, "fuzz: workers: %s\n", err.text);
		abort();
	}
	pcd_workers_drain_timed(H.app.workers, 0);
}

/* At exit only the directory goes: libFuzzer may exit from a signal or a
 * timeout with MHD's thread inside a request, where stopping MHD could
 * wait; what H holds stays reachable, so LeakSanitizer does not count it. */
static void http_cleanup(void)
{
	nftw(H.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void http_init(void)
{
	struct pc_error err = {0};
	const char *tmp = getenv("TMPDIR");

	signal(SIGPIPE, SIG_IGN);
	/* tmpfs where there is one: uploads and the store fsync, which on a
	 * disk would be most of the time per input */
	if (!tmp || strlen(tmp) >= 40)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(H.dir, sizeof(H.dir), "%s/pcf-http-XXXXXX", tmp);
	if (!mkdtemp(H.dir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	pcd_settings_default(&H.s);
	snprintf(H.s.data_dir, sizeof(H.s.data_dir), "%s", H.dir);
	H.s.max_model_mb = 1;
	H.s.max_dataset_mb = 1;
	H.s.min_free_disk_mb = 0;
	/* 32 KiB, the largest pool MHD takes from malloc: a larger one is an
	 * mmap, its pages faulted in, zeroed and unmapped (with a TLB flush of
	 * every CPU) per connection, which was half the time per input. Only
	 * where MHD itself answers 431 moves (headers of ~16 KiB, not ~64);
	 * bodies still stream through in pieces */
	H.s.connection_memory_kb = 32;
	pcd_settings_resolve(&H.s);
	H.app.settings = &H.s;
	atomic_init(&H.app.draining, 0);
	/* one token: a request without it exercises the refusal, the seeds
	 * that carry it everything behind */
	{
		struct pc_error err = {0};
		if (pcd_http_tokens_parse("fuzz", "fuzz-token\n", 11, &H.tokens, &err))
			abort();
	}
	H.app.tokens = H.tokens;
	http_fresh();
	if (!(H.app.prom = pcd_prom_new("fuzz")))
		abort();
	if (pcd_http_start_unbound(&H.app, &H.http, &err)) {
		fprintf(stderr, "fuzz: http: %s: %s\n", err.where, err.text);
		abort();
	}
	atexit(http_cleanup);
	H.ready = 1;
}

/* Reads what fd holds without waiting: the bytes read, or -1 once its
 * peer has closed and everything is read. */
static ssize_t drain(int fd, char *buf, size_t size)
{
	ssize_t got = 0;

	for (;;) {
		ssize_t k = recv(fd, buf, size, MSG_DONTWAIT);

		if (k > 0)
			got += k;
		else if (k < 0 && errno == EINTR)
			continue;
		else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return got;
		else
			return -1;
	}
}

int pcf_http(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer;
	char buf[65536];
	int sv[2], shut = 0, idle = 0;
	size_t off = 0;

	if (!H.ready)
		http_init();
	if (++H.inputs % HTTP_RESET == 0)
		http_fresh();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		perror("fuzz: socketpair");
		abort();
	}
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peer.sin_port = htons(40000);
	if (pcd_http_add_connection(H.http, sv[1], (struct sockaddr *)&peer, sizeof(peer))) {
		perror("fuzz: MHD_add_connection");
		abort();
	}
	/* the whole request, then end of input: MHD answers what it got and
	 * closes, and the answer is read to its end. MHD runs in this thread
	 * between our sends and reads, so no thread waits for another: a
	 * round waits (up to 10 ms, less on any activity) only after one in
	 * which no byte moved, and MHD's connection timeout ends a connection
	 * that never moves again */
	for (;;) {
		ssize_t got;
		int moved = 0;

		if (off < size) {
			ssize_t k = send(sv[0], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (k > 0) {
				off += (size_t)k;
				moved = 1;
			} else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
				off = size; /* MHD closed early (an answer to a bad request) */
			}
		}
		if (off == size && !shut) {
			shutdown(sv[0], SHUT_WR);
			shut = 1;
		}
		if (pcd_http_run(H.http, idle ? 10 : 0)) {
			fprintf(stderr, "fuzz: MHD_run_wait failed\n");
			abort();
		}
		if ((got = drain(sv[0], buf, sizeof(buf))) < 0)
			break;
		idle = !moved && !got;
	}
	close(sv[0]);
	return 0;
}

const struct pcf_target pcf_targets[] = {
	{"onnx", pcf_onnx},	    {"data", pcf_data},	    {"spec", pcf_spec},
	{"settings", pcf_settings}, {"tokens", pcf_tokens}, {"ckpt", pcf_ckpt},
	{"charts", pcf_charts},	    {"http", pcf_http},	    {NULL, NULL},
};
