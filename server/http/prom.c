/* prom: counters and histograms in fixed tables under one mutex. Series are
 * few (routes x methods x codes), so a linear search is cheaper than a
 * hash and keeps the code obvious. A series that does not fit the table is
 * counted in an overflow counter instead of allocating on a request path. */
#include "prom.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/version.h"

#define MAX_REQ_SERIES 256
#define MAX_ROUTES     64
#define MAX_JOB_SERIES 32
#define N_REQ_BUCKETS  10
#define N_JOB_BUCKETS  10

static const double req_buckets[N_REQ_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5};
static const double job_buckets[N_JOB_BUCKETS] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800};

struct req_series {
	const char *route, *method;
	int code;
	uint64_t count;
};

struct hist {
	uint64_t bucket[N_REQ_BUCKETS > N_JOB_BUCKETS ? N_REQ_BUCKETS : N_JOB_BUCKETS];
	uint64_t count;
	double sum;
};

struct route_hist {
	const char *route;
	struct hist h;
};

struct job_series {
	char kind[16], outcome[16];
	uint64_t count;
};

struct pcd_prom {
	pthread_mutex_t mu;
	struct req_series req[MAX_REQ_SERIES];
	int n_req;
	struct route_hist rh[MAX_ROUTES];
	int n_rh;
	struct job_series jobs[MAX_JOB_SERIES];
	int n_jobs;
	struct hist job_hist;
	uint64_t upload_model, upload_dataset, overflow;
	char node[160]; /* the label every series carries: node="..." */
};

struct pcd_prom *pcd_prom_new(const char *node)
{
	struct pcd_prom *p = calloc(1, sizeof(*p));

	if (p && pthread_mutex_init(&p->mu, NULL)) {
		free(p);
		return NULL;
	}
	/* node names have no quotes or backslashes (pcd_store_set_node): no
	 * escaping needed */
	if (p)
		snprintf(p->node, sizeof(p->node), "node=\"%s\"", node && node[0] ? node : "local");
	return p;
}

void pcd_prom_free(struct pcd_prom *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->mu);
	free(p);
}

static void hist_add(struct hist *h, const double *bounds, int n, double v)
{
	int i;

	for (i = 0; i < n; i++)
		if (v <= bounds[i])
			h->bucket[i]++;
	h->count++;
	h->sum += v;
}

void pcd_prom_request(struct pcd_prom *p, const char *route, const char *method, int code, double seconds)
{
	int i;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->n_req; i++)
		if (p->req[i].route == route && p->req[i].method == method && p->req[i].code == code)
			break;
	if (i == p->n_req && p->n_req < MAX_REQ_SERIES) {
		p->req[i].route = route;
		p->req[i].method = method;
		p->req[i].code = code;
		p->n_req++;
	}
	if (i < p->n_req)
		p->req[i].count++;
	else
		p->overflow++;
	for (i = 0; i < p->n_rh; i++)
		if (p->rh[i].route == route)
			break;
	if (i == p->n_rh && p->n_rh < MAX_ROUTES)
		p->rh[p->n_rh++].route = route;
	if (i < p->n_rh)
		hist_add(&p->rh[i].h, req_buckets, N_REQ_BUCKETS, seconds);
	pthread_mutex_unlock(&p->mu);
}

void pcd_prom_job(struct pcd_prom *p, const char *kind, const char *outcome, double seconds)
{
	int i;

	pthread_mutex_lock(&p->mu);
	for (i = 0; i < p->n_jobs; i++)
		if (!strcmp(p->jobs[i].kind, kind) && !strcmp(p->jobs[i].outcome, outcome))
			break;
	if (i == p->n_jobs && p->n_jobs < MAX_JOB_SERIES) {
		snprintf(p->jobs[i].kind, sizeof(p->jobs[i].kind), "%s", kind);
		snprintf(p->jobs[i].outcome, sizeof(p->jobs[i].outcome), "%s", outcome);
		p->n_jobs++;
	}
	if (i < p->n_jobs)
		p->jobs[i].count++;
	else
		p->overflow++;
	hist_add(&p->job_hist, job_buckets, N_JOB_BUCKETS, seconds);
	pthread_mutex_unlock(&p->mu);
}

void pcd_prom_upload(struct pcd_prom *p, const char *kind, uint64_t bytes)
{
	pthread_mutex_lock(&p->mu);
	if (!strcmp(kind, "model"))
		p->upload_model += bytes;
	else
		p->upload_dataset += bytes;
	pthread_mutex_unlock(&p->mu);
}

/* labels is never empty: every series has its node label */
static void hist_render(FILE *out, const char *name, const char *labels, const struct hist *h,
			const double *bounds, int n)
{
	int i;

	for (i = 0; i < n; i++)
		fprintf(out, "%s_bucket{%s,le=\"%g\"} %llu\n", name, labels, bounds[i], (unsigned long long)h->bucket[i]);
	fprintf(out, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)h->count);
	fprintf(out, "%s_sum{%s} %.6f\n", name, labels, h->sum);
	fprintf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

char *pcd_prom_render(struct pcd_prom *p, int64_t queued, int64_t running, int draining)
{
	char *text = NULL, labels[512];
	const char *node = p->node;
	size_t len = 0;
	FILE *out;
	int i, failed;

	/* a write that fails (no memory) leaves the stream in error */
	if (!(out = open_memstream(&text, &len)))
		return NULL;
	pthread_mutex_lock(&p->mu);
	fprintf(out, "# HELP paracorr_build_info Build information.\n# TYPE paracorr_build_info gauge\n");
	fprintf(out, "paracorr_build_info{version=\"%s\",%s} 1\n", PC_VERSION, node);
	fprintf(out, "# HELP paracorr_http_requests_total HTTP requests by route template, method and status.\n");
	fprintf(out, "# TYPE paracorr_http_requests_total counter\n");
	for (i = 0; i < p->n_req; i++)
		fprintf(out, "paracorr_http_requests_total{route=\"%s\",method=\"%s\",code=\"%d\",%s} %llu\n",
			p->req[i].route, p->req[i].method, p->req[i].code, node, (unsigned long long)p->req[i].count);
	fprintf(out, "# HELP paracorr_http_request_duration_seconds HTTP request duration by route template.\n");
	fprintf(out, "# TYPE paracorr_http_request_duration_seconds histogram\n");
	for (i = 0; i < p->n_rh; i++) {
		snprintf(labels, sizeof(labels), "route=\"%s\",%s", p->rh[i].route, node);
		hist_render(out, "paracorr_http_request_duration_seconds", labels, &p->rh[i].h, req_buckets,
			    N_REQ_BUCKETS);
	}
	fprintf(out, "# HELP paracorr_jobs_total Jobs ended, by kind and outcome.\n");
	fprintf(out, "# TYPE paracorr_jobs_total counter\n");
	for (i = 0; i < p->n_jobs; i++)
		fprintf(out, "paracorr_jobs_total{kind=\"%s\",outcome=\"%s\",%s} %llu\n", p->jobs[i].kind,
			p->jobs[i].outcome, node, (unsigned long long)p->jobs[i].count);
	fprintf(out, "# HELP paracorr_job_duration_seconds Wall time of job runs.\n");
	fprintf(out, "# TYPE paracorr_job_duration_seconds histogram\n");
	hist_render(out, "paracorr_job_duration_seconds", node, &p->job_hist, job_buckets, N_JOB_BUCKETS);
	fprintf(out, "# HELP paracorr_queue_depth Jobs queued and running in the store (shared by every node of one "
		     "database).\n# TYPE paracorr_queue_depth gauge\n");
	fprintf(out, "paracorr_queue_depth{state=\"queued\",%s} %lld\n", node, (long long)queued);
	fprintf(out, "paracorr_queue_depth{state=\"running\",%s} %lld\n", node, (long long)running);
	fprintf(out, "# HELP paracorr_upload_bytes_total Bytes received in uploads.\n");
	fprintf(out, "# TYPE paracorr_upload_bytes_total counter\n");
	fprintf(out, "paracorr_upload_bytes_total{kind=\"model\",%s} %llu\n", node, (unsigned long long)p->upload_model);
	fprintf(out, "paracorr_upload_bytes_total{kind=\"dataset\",%s} %llu\n", node,
		(unsigned long long)p->upload_dataset);
	fprintf(out, "# HELP paracorr_draining 1 while the daemon drains for shutdown.\n");
	fprintf(out, "# TYPE paracorr_draining gauge\nparacorr_draining{%s} %d\n", node, draining);
	fprintf(out, "# HELP paracorr_metric_series_dropped_total Observations without room for their series.\n");
	fprintf(out, "# TYPE paracorr_metric_series_dropped_total counter\n");
	fprintf(out, "paracorr_metric_series_dropped_total{%s} %llu\n", node, (unsigned long long)p->overflow);
	pthread_mutex_unlock(&p->mu);
	failed = ferror(out);
	if (fclose(out) != 0 || failed) {
		free(text);
		return NULL;
	}
	return text;
}
