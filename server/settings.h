/* settings: the daemon's configuration, one table of entries (name, type,
 * bounds, default, help) that parsing, validation, --print-config, --help
 * and the documentation all read.
 *
 * Precedence, lowest first: built-in defaults, the config file
 * (`key = value`, `#` comments; --config FILE), environment variables
 * PARACORR_<KEY> (upper case), then flags `--key value` / `--key=value`.
 * An unknown key or an out-of-range value is an error naming the setting. */
#ifndef PARACORR_SERVER_SETTINGS_H
#define PARACORR_SERVER_SETTINGS_H

#include <stdio.h>

#include "paracorr/error.h"
#include "paracorr/limits.h"

struct pcd_settings {
	char listen[64];
	int port;
	char data_dir[1024];
	char store[1024]; /* "sqlite" (data_dir/paracorr.db) or a postgresql:// URL */
	int cache_max_mb; /* with PostgreSQL: the bound of data_dir's cache of uploads; 0: none */
	int workers;	     /* 0: auto (pcd_settings_resolve) */
	int threads_per_job; /* 0: auto */
	int http_threads;
	int cache_mb;
	int max_attempts;
	int max_queue;
	int max_model_mb;
	int max_dataset_mb;
	int validate_mb;
	int validate_cpu_s;
	int max_spec_kb;
	int max_model_nodes;	    /* the loaders' caps (pcd_settings_limits) */
	int max_model_values;
	int max_plan_mb;
	int max_dataset_decoded_mb;
	int max_job_work; /* 10^9 multiply-adds a job may plan (pc_spec_work); 0: no bound */
	int connection_timeout_s;
	int max_connections;
	int max_connections_per_ip;
	int connection_memory_kb;
	char tokens_file[1024];
	char cors_origins[1024]; /* comma-separated origins, "" = no CORS */
	char allowed_hosts[1024]; /* Host names besides loopback and listen, "*" = any */
	int allow_anonymous;	  /* listen beyond loopback without tokens */
	int tenant_max_queued_jobs; /* per tenant; 0: no bound */
	int tenant_max_stored_mb;   /* per tenant, its upload records; 0: no bound */
	int min_free_disk_mb;
	int drain_timeout_s;
	int poll_ms;
	char node_name[129]; /* "" at first: "<hostname>:<port>" (pcd_settings_node_name) */
	int lease_ms;	     /* a claim's lease, renewed by heartbeats */
	int print_config; /* --print-config: print the effective settings and exit */
};

/* Fills the defaults of the table (workers and threads_per_job 0: auto). */
void pcd_settings_default(struct pcd_settings *s);

/* Turns auto values into numbers: workers from the core count (cores/4,
 * 1..4), threads_per_job = cores / workers, so that workers x
 * threads_per_job <= online cores. */
void pcd_settings_resolve(struct pcd_settings *s);

/* The core's caps from the settings, for pc_limits_set at startup. */
void pcd_settings_limits(const struct pcd_settings *s, struct pc_limits *l);
/* The node's name: node_name, or "<hostname>:<port>" when it is empty
 * ("<hostname>:pid<pid>" for port 0, which differs at each start). */
void pcd_settings_node_name(const struct pcd_settings *s, char *out, size_t size);
/* max_job_work in multiply-adds (0: no bound). */
double pcd_settings_max_work(const struct pcd_settings *s);

/* Applies one setting by name (dashes or underscores); `origin` names the
 * source in errors ("flag", "PARACORR_PORT", "paracorr.conf:12"). */
int pcd_settings_set(struct pcd_settings *s, const char *key, const char *value, const char *origin,
		     struct pc_error *err);

/* Reads a config file. Keys the CLI reads from the same file (threads,
 * batch_size, blas_coretype) are accepted and ignored. */
int pcd_settings_load_file(struct pcd_settings *s, const char *path, struct pc_error *err);

/* The whole chain: defaults, the file named by --config (or
 * PARACORR_CONFIG), the environment, then argv flags. */
int pcd_settings_from_args(struct pcd_settings *s, int argc, char **argv, struct pc_error *err);

/* Cross-field checks (workers x threads, limits); run after loading. */
int pcd_settings_validate(const struct pcd_settings *s, struct pc_error *err);

/* `key = value` lines of every setting. */
void pcd_settings_print(const struct pcd_settings *s, FILE *f);

/* Whether argv asks for --help (or -h) where a flag may stand, not as a
 * setting's value; paracorrd asks before it reads any setting, so that a
 * bad config file or environment does not hide the usage text. */
int pcd_settings_wants_help(int argc, char **argv);
/* The usage text: the options, and every setting as its flag with its
 * range, default and help line. */
void pcd_settings_usage(FILE *f);

#endif
