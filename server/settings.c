/* settings: one table drives defaults, parsing, range checks and printing,
 * so a setting added here is configurable from every source at once. */
#include "settings.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "workers.h"

enum setting_type { SET_INT, SET_STR };

struct setting {
	const char *name;
	enum setting_type type;
	size_t offset;
	size_t size; /* for strings: the buffer size */
	long min, max;
	const char *def;
	const char *help; /* one line for --help; config/paracorr.conf says more */
};

#define INT_SETTING(n, lo, hi, d, h) {#n, SET_INT, offsetof(struct pcd_settings, n), 0, lo, hi, d, h}
#define STR_SETTING(n, d, h)                                                                                      \
	{#n, SET_STR, offsetof(struct pcd_settings, n), sizeof(((struct pcd_settings *)0)->n), 0, 0, d, h}

static const struct setting table[] = {
	STR_SETTING(listen, "127.0.0.1", "address to listen on, an IPv4 or IPv6 literal"),
	INT_SETTING(port, 0, 65535, "8080", "TCP port (0: any free one)"),
	STR_SETTING(data_dir, "/var/lib/paracorr",
		    "uploads (with PostgreSQL: their cache), the SQLite store, temporary files"),
	STR_SETTING(store, "sqlite", "the job store: sqlite (in data_dir) or postgresql://user@host:port/db"),
	INT_SETTING(cache_max_mb, 0, 16777216, "10240",
		    "with PostgreSQL: MiB of uploads this node caches in data_dir (0: no bound)"),
	INT_SETTING(workers, 0, 256, "0", "jobs run at once (0: cores/4, 1 to 4)"),
	INT_SETTING(threads_per_job, 0, 1024, "0", "study threads per job (0: cores/workers)"),
	INT_SETTING(http_threads, 1, 64, "4", "HTTP polling threads (they never run a study)"),
	INT_SETTING(cache_mb, 0, 1048576, "1024", "MiB of cached clean activations per job (0: none)"),
	INT_SETTING(max_attempts, 1, 100, "3", "runs of a job interrupted by crashes before it fails"),
	INT_SETTING(max_queue, 0, 1000000, "1000", "queued jobs before a submission gets 503 (0: no bound)"),
	INT_SETTING(max_model_mb, 1, 2048, "512", "largest model upload (MiB)"),
	INT_SETTING(max_dataset_mb, 1, 4096, "1024", "largest dataset upload, also decompressed (MiB)"),
	INT_SETTING(validate_mb, 0, 1048576, "4096",
		    "address space of an upload's check, a child process (MiB; 0: no bound)"),
	INT_SETTING(validate_cpu_s, 0, 86400, "60", "CPU time of an upload's check (s; 0: no bound)"),
	INT_SETTING(max_spec_kb, 1, 65536, "256", "largest job spec (KiB)"),
	INT_SETTING(max_model_nodes, 1, 100000000, "200000", "a model's nodes, counted before it is decoded"),
	INT_SETTING(max_model_values, 1, 1000000000, "1000000",
		    "a model's named values (initializers, graph inputs, node outputs)"),
	INT_SETTING(max_plan_mb, 1, 1048576, "4096",
		    "memory of one plan: activations, gradients, workspace, op state (MiB)"),
	INT_SETTING(max_dataset_decoded_mb, 1, 1048576, "2048", "a dataset's decoded samples and labels (MiB)"),
	INT_SETTING(max_job_work, 0, 2000000000, "10000", "a job's estimated work in 10^9 multiply-adds (0: no bound)"),
	INT_SETTING(connection_timeout_s, 1, 3600, "60", "idle connection timeout (s)"),
	INT_SETTING(max_connections, 1, 100000, "256", "open connections in all"),
	INT_SETTING(max_connections_per_ip, 0, 100000, "64", "open connections per client address (0: no bound)"),
	INT_SETTING(connection_memory_kb, 16, 65536, "128", "memory per connection, headers and buffers (KiB)"),
	STR_SETTING(tokens_file, "", "bearer tokens, lines TOKEN [tenant=NAME] [role=admin|user] (empty: none)"),
	STR_SETTING(cors_origins, "", "dashboard origins granted CORS, comma-separated, or * (empty: none)"),
	STR_SETTING(allowed_hosts, "", "Host names answered besides listen, localhost and loopback, or *"),
	INT_SETTING(allow_anonymous, 0, 1, "0", "1: listen beyond loopback without a tokens_file"),
	INT_SETTING(tenant_max_queued_jobs, 0, 1000000, "100", "a tenant's queued jobs before 429 (0: no bound)"),
	INT_SETTING(tenant_max_stored_mb, 0, 16777216, "10240", "a tenant's uploads before 507 (MiB; 0: no bound)"),
	INT_SETTING(min_free_disk_mb, 0, 1048576, "512", "/readyz fails below this free disk space (MiB)"),
	INT_SETTING(drain_timeout_s, 1, 3600, "8", "on SIGTERM, seconds running jobs get to reach a checkpoint"),
	INT_SETTING(poll_ms, 10, 60000, "1000", "how often an idle worker looks at the queue (ms)"),
	STR_SETTING(node_name, "", "this node's name, unique per database (empty: <hostname>:<port>)"),
	INT_SETTING(lease_ms, 1000, 3600000, "30000", "a claimed job's lease, renewed by its heartbeats (ms)"),
};

/* Keys of the shared config file that belong to the CLI. */
static const char *const foreign_keys[] = {"threads", "batch_size", "blas_coretype"};

static const struct setting *find(const char *key)
{
	char norm[64];
	size_t i;

	for (i = 0; key[i] && i + 1 < sizeof(norm); i++)
		norm[i] = key[i] == '-' ? '_' : (char)tolower((unsigned char)key[i]);
	norm[i] = '\0';
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (!strcmp(table[i].name, norm))
			return &table[i];
	return NULL;
}

static int is_foreign(const char *key)
{
	size_t i;

	for (i = 0; i < sizeof(foreign_keys) / sizeof(foreign_keys[0]); i++)
		if (!strcmp(foreign_keys[i], key))
			return 1;
	return 0;
}

void pcd_settings_default(struct pcd_settings *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		pcd_settings_set(s, table[i].name, table[i].def, "default", NULL);
}

void pcd_settings_limits(const struct pcd_settings *s, struct pc_limits *l)
{
	l->max_nodes = s->max_model_nodes;
	l->max_values = s->max_model_values;
	l->max_plan_bytes = (uint64_t)s->max_plan_mb << 20;
	l->max_decoded_bytes = (uint64_t)s->max_dataset_decoded_mb << 20;
}

double pcd_settings_max_work(const struct pcd_settings *s)
{
	return (double)s->max_job_work * 1e9;
}

void pcd_settings_resolve(struct pcd_settings *s)
{
	pcd_workers_auto_size(&s->workers, &s->threads_per_job);
}

void pcd_settings_node_name(const struct pcd_settings *s, char *out, size_t size)
{
	char host[256];

	if (s->node_name[0]) {
		snprintf(out, size, "%s", s->node_name);
		return;
	}
	if (gethostname(host, sizeof(host)) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (s->port)
		snprintf(out, size, "%.100s:%d", host, s->port);
	else
		snprintf(out, size, "%.100s:pid%ld", host, (long)getpid());
}

int pcd_settings_set(struct pcd_settings *s, const char *key, const char *value, const char *origin,
		     struct pc_error *err)
{
	const struct setting *e = find(key);
	char *end;
	long v;

	if (!e)
		return pc_error_set(err, PC_ERR_INVALID, key, "unknown setting (from %s)", origin);
	if (e->type == SET_STR) {
		if (strlen(value) >= e->size)
			return pc_error_set(err, PC_ERR_INVALID, e->name, "value too long (from %s)", origin);
		memcpy((char *)s + e->offset, value, strlen(value) + 1);
		return 0;
	}
	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end)
		return pc_error_set(err, PC_ERR_INVALID, e->name, "'%s' is not an integer (from %s)", value, origin);
	if (v < e->min || v > e->max)
		return pc_error_set(err, PC_ERR_INVALID, e->name, "%ld is outside %ld..%ld (from %s)", v, e->min,
				    e->max, origin);
	*(int *)((char *)s + e->offset) = (int)v;
	return 0;
}

static char *trim(char *p)
{
	char *q;

	while (isspace((unsigned char)*p))
		p++;
	q = p + strlen(p);
	while (q > p && isspace((unsigned char)q[-1]))
		*--q = '\0';
	return p;
}

int pcd_settings_load_file(struct pcd_settings *s, const char *path, struct pc_error *err)
{
	char *line = NULL, origin[1100];
	size_t cap = 0;
	ssize_t len;
	FILE *f = fopen(path, "r");
	int lineno = 0, rc = 0;

	if (!f)
		return pc_error_set(err, PC_ERR_IO, path, "cannot open the config file: %s", strerror(errno));
	/* whole lines of any length: a long line read in pieces would make
	 * its tail (of a comment, say) a setting of its own */
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *p, *eq, *key, *val;

		lineno++;
		snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
		if (memchr(line, '\0', (size_t)len)) {
			rc = pc_error_set(err, PC_ERR_INVALID, origin, "a NUL byte in the line");
			break;
		}
		if ((p = strchr(line, '#')))
			*p = '\0';
		p = trim(line);
		if (!*p)
			continue;
		if (!(eq = strchr(p, '='))) {
			rc = pc_error_set(err, PC_ERR_INVALID, origin, "expected `key = value`");
			break;
		}
		*eq = '\0';
		key = trim(p);
		val = trim(eq + 1);
		if (is_foreign(key))
			continue;
		if ((rc = pcd_settings_set(s, key, val, origin, err)))
			break;
	}
	free(line);
	fclose(f);
	return rc;
}

int pcd_settings_from_args(struct pcd_settings *s, int argc, char **argv, struct pc_error *err)
{
	const char *config = getenv("PARACORR_CONFIG");
	char env[96], key[64];
	size_t i;
	int a, rc;

	pcd_settings_default(s);
	/* the config file first, wherever --config sits among the flags */
	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--config") && a + 1 < argc)
			config = argv[a + 1];
		else if (!strncmp(argv[a], "--config=", 9))
			config = argv[a] + 9;
	}
	if (config && config[0] && (rc = pcd_settings_load_file(s, config, err)))
		return rc;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		size_t k;
		const char *v;

		/* the prefix the CLI's variables share: one config, one namespace */
		snprintf(env, sizeof(env), "PARACORR_");
		for (k = 0; table[i].name[k]; k++)
			env[9 + k] = (char)toupper((unsigned char)table[i].name[k]);
		env[9 + k] = '\0';
		if ((v = getenv(env)) && (rc = pcd_settings_set(s, table[i].name, v, env, err)))
			return rc;
	}
	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *val, *eq;
		size_t n;

		if (strncmp(arg, "--", 2))
			return pc_error_set(err, PC_ERR_INVALID, arg, "unexpected argument (settings are --key value)");
		arg += 2;
		if (!strcmp(arg, "print-config")) {
			s->print_config = 1;
			continue;
		}
		if ((eq = strchr(arg, '='))) {
			n = (size_t)(eq - arg);
			val = eq + 1;
		} else {
			n = strlen(arg);
			if (a + 1 >= argc)
				return pc_error_set(err, PC_ERR_INVALID, arg, "missing value");
			val = argv[++a];
		}
		if (n >= sizeof(key))
			return pc_error_set(err, PC_ERR_INVALID, arg, "unknown setting");
		memcpy(key, arg, n);
		key[n] = '\0';
		if (!strcmp(key, "config"))
			continue;
		if ((rc = pcd_settings_set(s, key, val, "flag", err)))
			return rc;
	}
	pcd_settings_resolve(s);
	return pcd_settings_validate(s, err);
}

static int listen_is_loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

int pcd_settings_validate(const struct pcd_settings *s, struct pc_error *err)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	/* anyone who reaches the port could upload and run jobs */
	if (s->listen[0] && !listen_is_loopback(s->listen) && !s->tokens_file[0] && !s->allow_anonymous)
		return pc_error_set(err, PC_ERR_INVALID, "listen",
				    "%s is reachable beyond this machine and no tokens_file is set; set tokens_file, "
				    "or allow_anonymous = 1 to serve anyone who can reach the port",
				    s->listen);

	if (!s->data_dir[0])
		return pc_error_set(err, PC_ERR_INVALID, "data_dir", "must not be empty");
	if (strcmp(s->store, "sqlite") != 0 && !pcd_store_is_url(s->store))
		return pc_error_set(err, PC_ERR_INVALID, "store",
				    "must be sqlite or a PostgreSQL URL postgresql://user@host:port/database");
	if (!s->listen[0])
		return pc_error_set(err, PC_ERR_INVALID, "listen", "must not be empty");
	if (cores > 0 && (long)s->workers * s->threads_per_job > cores)
		pcd_log("warn", "msg=\"workers x threads_per_job exceeds the online cores\" workers=%d threads_per_job=%d "
			"cores=%ld",
			s->workers, s->threads_per_job, cores);
	return 0;
}

/* A URL with its password (scheme://user:password@host) as "***": the
 * printed settings are for reading, not for the secrets in them. */
static void print_url(FILE *f, const char *name, const char *url)
{
	const char *scheme = strstr(url, "://"), *at, *colon;

	if (!scheme || !(at = strchr(scheme + 3, '@')) || !(colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3)))) {
		fprintf(f, "%s = %s\n", name, url);
		return;
	}
	fprintf(f, "%s = %.*s:***%s\n", name, (int)(colon - url), url, at);
}

void pcd_settings_print(const struct pcd_settings *s, FILE *f)
{
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const void *p = (const char *)s + table[i].offset;

		if (table[i].type == SET_INT)
			fprintf(f, "%s = %d\n", table[i].name, *(const int *)p);
		else if (p == s->store)
			print_url(f, table[i].name, s->store);
		else
			fprintf(f, "%s = %s\n", table[i].name, (const char *)p);
	}
}

int pcd_settings_wants_help(int argc, char **argv)
{
	/* read as pcd_settings_from_args reads flags, so that a value that
	 * happens to read -h (--node-name -h) stays a value */
	for (int a = 1; a < argc; a++) {
		const char *arg = argv[a];

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
			return 1;
		if (!strncmp(arg, "--", 2) && strcmp(arg, "--print-config") && !strchr(arg, '='))
			a++;
	}
	return 0;
}

void pcd_settings_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: paracorrd [--config FILE] [--print-config] [--SETTING VALUE]...\n"
		   "       paracorrd --help\n"
		   "\n"
		   "The paracorr service: uploads, jobs and reports over HTTP (api/openapi.yaml).\n"
		   "A setting comes from its default, then the config file, then the environment\n"
		   "variable PARACORR_<SETTING> (PARACORR_DATA_DIR), then its flag (--data-dir DIR\n"
		   "or --data_dir=DIR); an unknown setting or a value out of range stops startup.\n"
		   "\n"
		   "Options:\n"
		   "  --config FILE\n"
		   "      read `key = value` settings from FILE (or PARACORR_CONFIG);\n"
		   "      config/paracorr.conf documents every setting\n"
		   "  --print-config\n"
		   "      print the effective settings and exit\n"
		   "  -h, --help\n"
		   "      print this text and exit\n"
		   "\n"
		   "Settings:\n");
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct setting *e = &table[i];

		fputs("  --", f);
		for (const char *c = e->name; *c; c++)
			fputc(*c == '_' ? '-' : *c, f);
		if (e->type == SET_INT)
			fprintf(f, " N  (%ld..%ld, default %s)\n", e->min, e->max, e->def);
		else
			fprintf(f, " TEXT  (default %s)\n", e->def[0] ? e->def : "empty");
		fprintf(f, "      %s\n", e->help);
	}
}
