/* validate: see validate.h. The parent spawns (posix_spawn: no fork of a
 * process whose other threads hold locks, no atfork handlers) and reads at
 * most MAX_OUTPUT bytes within a wall-clock deadline; the child sets its
 * limits before it reads a byte of the upload. */
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job.h"
#include "json_out.h"
#include "paracorr/data.h"
#include "paracorr/limits.h"
#include "paracorr/onnx.h"
#include "paracorr/sys.h"

extern char **environ;

/* The description of a model with a few thousand tensors is a few hundred
 * KiB; a child that writes more is not the validator. */
#define MAX_OUTPUT (64u << 20)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* --- the checks themselves ------------------------------------------------- */

static int model_check(const char *path, const char *id, uint64_t bytes, json_t **info, struct pc_error *err)
{
	struct pc_graph *g = NULL;
	int rc = pc_onnx_load_file(path, &g, err);

	if (rc)
		return rc;
	*info = pcd_model_info(g, id, bytes);
	pc_graph_free(g);
	return *info ? PC_OK : pc_error_set(err, PC_ERR_NOMEM, "model", "out of memory");
}

/* A read-only mapping of a stored part (the page cache holds it, not the
 * heap); an empty file maps nothing. */
struct mapping {
	void *p;
	size_t len;
};

static int map_file(const char *path, struct mapping *m, struct pc_error *err)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	m->p = NULL;
	m->len = 0;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return pc_error_set(err, PC_ERR_IO, "dataset", "cannot read the upload: %s", strerror(errno));
	}
	m->len = (size_t)st.st_size;
	if (m->len) {
		m->p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m->p == MAP_FAILED) {
			m->p = NULL;
			close(fd);
			return pc_error_set(err, PC_ERR_IO, "dataset", "cannot map the upload: %s", strerror(errno));
		}
	}
	close(fd);
	return PC_OK;
}

static void unmap(struct mapping *m)
{
	if (m->p)
		munmap(m->p, m->len);
}

static json_t *dataset_info(const struct pc_dataset *d, const char *id, uint64_t bytes, int labels_part)
{
	json_t *o = json_pack("{s:s, s:I, s:I, s:o, s:I, s:s, s:b}", "id", id, "bytes", (json_int_t)bytes, "samples",
			      (json_int_t)d->n, "shape", pcd_shape_json(&d->sample), "classes", (json_int_t)d->classes,
			      "dtype",
			      d->tokens ? pc_dtype_name(d->input_dtype) : d->input_dtype == 2 ? "uint8" : "float32",
			      "labels_part", labels_part);

	/* per-token labels: how many per sample and how many count */
	if (o && d->label_ndim == 2) {
		json_object_set_new(o, "labels", json_string("per_token"));
		json_object_set_new(o, "positions", json_integer((json_int_t)d->positions));
		json_object_set_new(o, "tokens", json_integer((json_int_t)d->labelled));
	}
	return o;
}

static int dataset_check(const char *xpath, const char *ypath, const char *id, uint64_t bytes, uint64_t max_bytes,
			 json_t **info, struct pc_error *err)
{
	struct mapping xm = {0}, ym = {0};
	struct pc_dataset *d = NULL;
	struct pc_preprocess pp;
	int rc;

	if ((rc = map_file(xpath, &xm, err)) || (ypath && (rc = map_file(ypath, &ym, err))))
		goto done;
	/* no model yet: token ids and per-token labels are taken as they come,
	 * and a job checks them against its model */
	pc_preprocess_default(&pp);
	pp.inputs = PC_DATA_INPUTS_AUTO;
	pp.labels = PC_DATA_LABELS_AUTO;
	rc = pc_dataset_load_memory_max(xm.p ? xm.p : "", xm.len, ypath ? (ym.p ? ym.p : "") : NULL, ym.len, &pp, 0,
					max_bytes, &d, err);
	if (rc) {
		/* a malformed dataset is the client's content */
		if (err->code == PC_ERR_INVALID || err->code == PC_ERR_SHAPE)
			err->code = PC_ERR_FORMAT;
		goto done;
	}
	if (!(*info = dataset_info(d, id, bytes, ypath != NULL)))
		rc = pc_error_set(err, PC_ERR_NOMEM, "dataset", "out of memory");
done:
	pc_dataset_free(d);
	unmap(&xm);
	unmap(&ym);
	return rc;
}

/* --- the child --------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return !*s || *end || errno || *s == '-';
}

static void set_limits(uint64_t max_mb, uint64_t cpu_s)
{
	struct rlimit core = {0, 0};

	setrlimit(RLIMIT_CORE, &core);
	if (cpu_s) {
		/* SIGXCPU at the soft limit, SIGKILL a second later */
		struct rlimit cpu = {(rlim_t)cpu_s, (rlim_t)cpu_s + 1};
		setrlimit(RLIMIT_CPU, &cpu);
	}
#ifndef UNDER_ASAN
	/* ASan reserves terabytes of shadow address space at start-up: under
	 * it the cap would fail every check, so it holds only without */
	if (max_mb) {
		struct rlimit as = {(rlim_t)max_mb << 20, (rlim_t)max_mb << 20};
		setrlimit(RLIMIT_AS, &as);
	}
#else
	(void)max_mb;
#endif
}

/* The loaders' caps (limits.h) as four arguments: the child must refuse
 * what the daemon's settings refuse, not what the defaults do. */
#define N_CAPS 4

static void caps_args(char out[N_CAPS][32])
{
	const struct pc_limits *l = pc_limits_get();

	snprintf(out[0], 32, "%lld", (long long)l->max_nodes);
	snprintf(out[1], 32, "%lld", (long long)l->max_values);
	snprintf(out[2], 32, "%llu", (unsigned long long)l->max_plan_bytes);
	snprintf(out[3], 32, "%llu", (unsigned long long)l->max_decoded_bytes);
}

static int caps_parse(char **arg, struct pc_limits *l)
{
	uint64_t v[N_CAPS];

	for (int i = 0; i < N_CAPS; i++)
		if (parse_u64(arg[i], &v[i]) || (i < 2 && v[i] > INT64_MAX))
			return 1;
	l->max_nodes = (int64_t)v[0];
	l->max_values = (int64_t)v[1];
	l->max_plan_bytes = v[2];
	l->max_decoded_bytes = v[3];
	return 0;
}

/* argv: PROG --validate model PATH ID BYTES MAX_MB CPU_S CAPS...
 *       PROG --validate dataset INPUTS LABELS|"" ID BYTES MAX_BYTES MAX_MB CPU_S CAPS...
 * with CAPS the four of caps_args. */
int pcd_validate_main(int argc, char **argv)
{
	struct pc_error err = {0};
	struct pc_limits caps;
	uint64_t bytes, max_bytes = 0, max_mb, cpu_s;
	json_t *info = NULL, *out;
	int model = argc == 8 + N_CAPS && !strcmp(argv[2], "model"), rc;
	char *text;

	if (!model && !(argc == 10 + N_CAPS && !strcmp(argv[2], "dataset"))) {
		fprintf(stderr, "%s --validate: usage: model PATH ID BYTES MAX_MB CPU_S NODES VALUES PLAN DECODED | "
				"dataset INPUTS LABELS ID BYTES MAX_BYTES MAX_MB CPU_S NODES VALUES PLAN DECODED\n",
			argv[0]);
		return 2;
	}
	if (parse_u64(argv[model ? 5 : 6], &bytes) || (!model && parse_u64(argv[7], &max_bytes)) ||
	    parse_u64(argv[model ? 6 : 8], &max_mb) || parse_u64(argv[model ? 7 : 9], &cpu_s) ||
	    caps_parse(argv + (model ? 8 : 10), &caps)) {
		fprintf(stderr, "%s --validate: a size is not a number\n", argv[0]);
		return 2;
	}
	pc_limits_set(&caps);
	set_limits(max_mb, cpu_s);
	if (model)
		rc = model_check(argv[3], argv[4], bytes, &info, &err);
	else
		rc = dataset_check(argv[3], argv[4][0] ? argv[4] : NULL, argv[5], bytes, max_bytes, &info, &err);
	if (rc)
		out = json_pack("{s:{s:s, s:s, s:s}}", "error", "status", pc_status_name(err.code), "where", err.where,
				"text", err.text);
	else
		out = json_pack("{s:o}", "info", info);
	if (!out || !(text = pcd_json_text(out, PCD_JSON_COMPACT)))
		return 3; /* no memory left for the answer: the parent reports it */
	rc = fputs(text, stdout) < 0 || fflush(stdout) != 0;
	free(text);
	json_decref(out);
	return rc ? 4 : 0;
}

/* --- the parent -------------------------------------------------------------- */

static enum pc_status status_named(const char *name)
{
	int c = pc_status_parse(name);

	return c < 0 ? PC_ERR_INTERNAL : (enum pc_status)c;
}

/* The environment for the child: this one, with one BLAS thread (the check
 * folds a few constants; a thread pool per upload would cost more). */
static char **child_env(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	if (!(env = malloc((n + 2) * sizeof(*env))))
		return NULL;
	env[k++] = "OPENBLAS_NUM_THREADS=1";
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "OPENBLAS_NUM_THREADS=", 21))
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
}

/* Reads the child's answer until EOF, the deadline or MAX_OUTPUT. Returns
 * 0, or 1 when the deadline passed, 2 when the answer is too long. */
static int read_answer(int fd, double deadline, char **buf, size_t *len)
{
	size_t cap = 0;

	*buf = NULL;
	*len = 0;
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		double left = deadline - pc_sys_seconds();
		ssize_t got;
		int r;

		if (left <= 0)
			return 1;
		r = poll(&pfd, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return 1;
		if (*len + 65536 + 1 > cap) {
			size_t ncap = cap ? 2 * cap : 131072;
			char *nb;
			if (ncap > MAX_OUTPUT + 65536 + 1)
				return 2;
			if (!(nb = realloc(*buf, ncap)))
				return 2;
			*buf = nb;
			cap = ncap;
		}
		got = read(fd, *buf + *len, 65536);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		*len += (size_t)got;
		if (*len > MAX_OUTPUT)
			return 2;
	}
	(*buf)[*len] = '\0';
	return 0;
}

static int run_child(const struct pcd_validator *v, char *const argv[], const char *what, json_t **info,
		     struct pc_error *err)
{
	posix_spawn_file_actions_t fa;
	char **env = child_env(), *out = NULL;
	int fds[2] = {-1, -1}, status = 0, rc, got;
	/* the CPU limit, with room for a loaded machine; without one, ten minutes */
	double deadline = pc_sys_seconds() + (v->max_cpu_s ? 4.0 * v->max_cpu_s + 10 : 600);
	size_t len = 0;
	pid_t pid;
	json_t *ans = NULL, *e;

	if (!env || pipe2(fds, O_CLOEXEC)) {
		free(env);
		return pc_error_set(err, PC_ERR_NOMEM, what, "cannot start the upload's check: %s", strerror(errno));
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
	/* the daemon's sockets, database and blobs stay out of the child */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	rc = posix_spawn(&pid, v->exe, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	close(fds[1]);
	if (rc) {
		close(fds[0]);
		return pc_error_set(err, PC_ERR_INTERNAL, what, "cannot start the upload's check (%s): %s", v->exe,
				    strerror(rc));
	}
	got = read_answer(fds[0], deadline, &out, &len);
	close(fds[0]);
	if (got)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got == 1) {
		rc = pc_error_set(err, PC_ERR_LIMIT, what, "checking the upload took longer than %.0f s",
				  v->max_cpu_s ? 4.0 * v->max_cpu_s + 10 : 600);
		goto done;
	}
	if (got == 2) {
		rc = pc_error_set(err, PC_ERR_INTERNAL, what, "the upload's check answered more than %u bytes",
				  MAX_OUTPUT);
		goto done;
	}
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		if (sig == SIGXCPU || (sig == SIGKILL && v->max_cpu_s))
			rc = pc_error_set(err, PC_ERR_LIMIT, what,
					  "checking the upload took more than %d s of CPU (validate_cpu_s)", v->max_cpu_s);
		else
			rc = pc_error_set(err, PC_ERR_INTERNAL, what,
					  "the upload's check crashed (signal %d, %s); nothing was stored", sig,
					  strsignal(sig));
		goto done;
	}
	ans = len ? json_loads(out, 0, NULL) : NULL;
	if (!ans || WEXITSTATUS(status)) {
		rc = pc_error_set(err, v->max_mb && WEXITSTATUS(status) == 3 ? PC_ERR_LIMIT : PC_ERR_INTERNAL, what,
				  "the upload's check failed (exit status %d) without an answer",
				  WEXITSTATUS(status));
		goto done;
	}
	if ((e = json_object_get(ans, "error"))) {
		enum pc_status code = status_named(json_string_value(json_object_get(e, "status")) ?: "");
		const char *where = json_string_value(json_object_get(e, "where")) ?: "";
		const char *text = json_string_value(json_object_get(e, "text")) ?: "";
		/* out of memory under the cap is the upload's size, not the server's */
		if (code == PC_ERR_NOMEM && v->max_mb)
			rc = pc_error_set(err, PC_ERR_LIMIT, where,
					  "checking the upload needs more than %d MiB (validate_mb): %s", v->max_mb,
					  text);
		else
			rc = pc_error_set(err, code == PC_OK ? PC_ERR_INTERNAL : code, where, "%s", text);
		goto done;
	}
	if (!(*info = json_object_get(ans, "info"))) {
		rc = pc_error_set(err, PC_ERR_INTERNAL, what, "the upload's check answered without a description");
		goto done;
	}
	json_incref(*info);
	rc = PC_OK;
done:
	json_decref(ans);
	free(out);
	return rc;
}

int pcd_validate_model(const struct pcd_validator *v, const char *path, const char *id, uint64_t bytes,
		       json_t **info, struct pc_error *err)
{
	char b[32], mb[32], cpu[32], caps[N_CAPS][32];

	*info = NULL;
	if (!v || !v->exe)
		return model_check(path, id, bytes, info, err);
	caps_args(caps);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)bytes);
	snprintf(mb, sizeof(mb), "%d", v->max_mb);
	snprintf(cpu, sizeof(cpu), "%d", v->max_cpu_s);
	return run_child(v,
			 (char *const[]){(char *)v->exe, "--validate", "model", (char *)path, (char *)id, b, mb, cpu,
					 caps[0], caps[1], caps[2], caps[3], NULL},
			 "model", info, err);
}

int pcd_validate_dataset(const struct pcd_validator *v, const char *inputs, const char *labels, const char *id,
			 uint64_t bytes, uint64_t max_bytes, json_t **info, struct pc_error *err)
{
	char b[32], mx[32], mb[32], cpu[32], caps[N_CAPS][32];

	*info = NULL;
	if (!v || !v->exe)
		return dataset_check(inputs, labels, id, bytes, max_bytes, info, err);
	caps_args(caps);
	snprintf(b, sizeof(b), "%llu", (unsigned long long)bytes);
	snprintf(mx, sizeof(mx), "%llu", (unsigned long long)max_bytes);
	snprintf(mb, sizeof(mb), "%d", v->max_mb);
	snprintf(cpu, sizeof(cpu), "%d", v->max_cpu_s);
	return run_child(v,
			 (char *const[]){(char *)v->exe, "--validate", "dataset", (char *)inputs,
					 (char *)(labels ? labels : ""), (char *)id, b, mx, mb, cpu, caps[0], caps[1], caps[2], caps[3], NULL},
			 "dataset", info, err);
}
