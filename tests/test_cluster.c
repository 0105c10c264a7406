/* Many paracorrd nodes on one PostgreSQL database (README, "Running a
 * cluster"): three daemons on 127.0.0.2, 127.0.0.3 and 127.0.0.4, each with
 * its own data directory, share one database of the run's throwaway
 * server (pg_util.h).
 *
 * cluster_three_nodes_one_killed: jobs submitted to all three; one node is
 * SIGKILLed while it runs a job; its lease runs out, another node requeues
 * the job and runs it. Every job succeeds, the killed one after exactly two
 * attempts and the others after one; every node (the killed one restarted)
 * serves byte-identical reports, equal (timing aside) to a single SQLite
 * node's report of the same spec; at least two nodes ran jobs.
 *
 * cluster_partitioned_node_is_fenced: a real partition. node-a runs in a
 * network namespace the test makes (ip netns, a veth pair; PostgreSQL
 * listens on the host's end too) and is cut off mid-job by taking the link
 * down: its lease runs out, node-b requeues and finishes the job; the link
 * comes back and node-a's late write is refused, the report staying
 * node-b's. Skipped, saying why, where namespaces cannot be made (not
 * root); then cluster_stopped_node_is_fenced still covers the fencing:
 * a node frozen (SIGSTOP) mid-job neither heartbeats nor writes, and once
 * thawed (SIGCONT) finds its lease lost in the same way.
 *
 * Uploads live in the database: the model goes to one node and the dataset
 * to another (upload_spread), and every node runs jobs that need both.
 * Every wait is bounded. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "be_util.h"
#include "pg_util.h"
#include "test.h"

#define N_NODES	    3
#define N_JOBS	    6
#define LEASE_MS    "3000"
#define WAIT_JOBS_S 400 /* longest wait for every job */

static const char *const hosts[N_NODES] = {"127.0.0.2", "127.0.0.3", "127.0.0.4"};
static const char *const names[N_NODES] = {"node-a", "node-b", "node-c"};

/* long enough (a few seconds on a loaded machine) to be caught running */
#define JOB_SPEC                                                                                                       \
	"{\"model\": \"%s\", \"dataset\": \"%s\", \"limit\": 64, \"batch_size\": 16, \"seed\": %d, "                   \
	"\"corruption\": {\"norms\": [\"l2\", \"linf\"], \"epsilons\": [0.05, 0.2, 0.5, 1], \"random_trials\": 400, "  \
	"\"groups\": [\"model\", \"tensor\"]}}"

static const char *const cluster_defaults[] = {"--workers",  "1",  "--threads-per-job",	 "1", "--poll-ms", "200",
					       "--cache-mb", "64", "--min-free-disk-mb", "1", NULL};

/* The id of an upload's answer (201 or 200) into id; the status. */
static long upload_id(struct be_resp *r, char id[65])
{
	json_t *j = be_resp_json(r);
	long st = r->status;

	if (j && json_is_string(json_object_get(j, "id")))
		snprintf(id, 65, "%s", json_string_value(json_object_get(j, "id")));
	json_decref(j);
	be_resp_free(r);
	return st;
}

/* The fixture model to node d, its id into model; 1 when uploaded. */
static int upload_model(const struct be_daemon *d, char model[65])
{
	char path[PATH_MAX];
	struct be_resp r;
	size_t len;
	char *data;
	long st;

	snprintf(path, sizeof(path), "%s/" FIX "mlp_op13.onnx", pc_test_root());
	if (!(data = be_read_file(path, &len)))
		return 0;
	st = be_daemon_request(d, "POST", "/v1/models", "application/octet-stream", data, len, NULL, 0, &r) ? -1 : upload_id(&r, model);
	free(data);
	return st == 201 || st == 200;
}

/* The fixture dataset to node d, its id into ds; 1 when uploaded. */
static int upload_dataset(const struct be_daemon *d, char ds[65])
{
	char xi[PATH_MAX], yi[PATH_MAX];
	struct be_part p[2];
	struct be_resp r;
	long st;

	snprintf(xi, sizeof(xi), "%s/" FIX "sample64_u8.npy", pc_test_root());
	snprintf(yi, sizeof(yi), "%s/" FIX "labels64_i64.npy", pc_test_root());
	st = be_daemon_request(d, "POST", "/v1/datasets", NULL, NULL, 0, p, be_dataset_parts(p, xi, yi), &r) ? -1 : upload_id(&r, ds);
	return st == 201 || st == 200;
}

/* Both uploads to node d. */
static int upload_to(const struct be_daemon *d, char model[65], char ds[65])
{
	return upload_model(d, model) && upload_dataset(d, ds);
}

/* The model to the first node and the dataset to the second (see the top):
 * every node's jobs need both, so each node fetches from the database what
 * it was not given. */
static int upload_spread(struct be_daemon *nodes, int n, char model[65], char ds[65])
{
	model[0] = ds[0] = '\0';
	return upload_model(&nodes[0], model) && upload_dataset(&nodes[n > 1 ? 1 : 0], ds);
}

/* POSTs a job spec to d; its id into id, 1 when accepted. */
static int submit_spec(const struct be_daemon *d, const char *spec, char id[64])
{
	struct be_resp r;
	json_t *j;
	int ok;

	if (be_daemon_request(d, "POST", "/v1/jobs", "application/json", spec, strlen(spec), NULL, 0, &r))
		return 0;
	j = be_resp_json(&r);
	ok = r.status == 202 && j && json_is_string(json_object_get(j, "id"));
	if (ok)
		snprintf(id, 64, "%s", json_string_value(json_object_get(j, "id")));
	json_decref(j);
	be_resp_free(&r);
	return ok;
}

static int submit_job(const struct be_daemon *d, const char *model, const char *ds, int seed, char id[64])
{
	char spec[1024];

	snprintf(spec, sizeof(spec), JOB_SPEC, model, ds, seed);
	return submit_spec(d, spec, id);
}

/* GET /v1/jobs/{id} from d: the job object (NULL when no answer). */
static json_t *job_get(const struct be_daemon *d, const char *id)
{
	char path[512];
	struct be_resp r;
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/v1/jobs/%s", id);
	if (be_daemon_request(d, "GET", path, NULL, NULL, 0, NULL, 0, &r) == 0 && r.status == 200)
		j = be_resp_json(&r);
	be_resp_free(&r);
	return j;
}

static const char *jstr(json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	return v ? v : "";
}

/* Waits (bounded: tries x 50 ms) until one of the jobs runs on node name;
 * its index, -1 when none did. */
static int wait_running_on(const struct be_daemon *ask, char ids[][64], int n, const char *name, int tries)
{
	for (int k = 0; k < tries; k++) {
		for (int i = 0; i < n; i++) {
			json_t *j = job_get(ask, ids[i]);
			int hit = j && !strcmp(jstr(j, "status"), "running") && !strcmp(jstr(j, "node"), name);

			json_decref(j);
			if (hit)
				return i;
		}
		be_sleep_ms(50);
	}
	return -1;
}

/* Waits (bounded) until every job is finished; 1 when they all are. */
static int wait_finished(const struct be_daemon *ask, char ids[][64], int n, int seconds)
{
	for (int k = 0; k < seconds * 4; k++) {
		int done = 0;

		for (int i = 0; i < n; i++) {
			json_t *j = job_get(ask, ids[i]);
			const char *st = jstr(j, "status");

			done += !strcmp(st, "succeeded") || !strcmp(st, "failed") || !strcmp(st, "cancelled");
			json_decref(j);
		}
		if (done == n)
			return 1;
		be_sleep_ms(250);
	}
	return 0;
}

/* The report's body from d (malloc'd), NULL when there is none. */
static char *report_text(const struct be_daemon *d, const char *id)
{
	char path[512], *text = NULL;
	struct be_resp r;

	snprintf(path, sizeof(path), "/v1/jobs/%s/report", id);
	if (be_daemon_request(d, "GET", path, NULL, NULL, 0, NULL, 0, &r) == 0 && r.status == 200 && r.body)
		text = strdup(r.body);
	be_resp_free(&r);
	return text;
}

/* After node-a lost the job to node-b: it succeeded there on the second
 * attempt; node-b's report text (malloc'd), or NULL. */
static char *taken_over(struct pc_test *t, const struct be_daemon *b, const char *id)
{
	json_t *j = job_get(b, id);
	char *rep;

	CHECK_MSG(!strcmp(jstr(j, "status"), "succeeded") && !strcmp(jstr(j, "node"), names[1]) &&
			  json_integer_value(json_object_get(j, "attempts")) == 2,
		  "after the takeover: %s on %s, %lld attempts", jstr(j, "status"), jstr(j, "node"),
		  (long long)json_integer_value(json_object_get(j, "attempts")));
	json_decref(j);
	rep = report_text(b, id);
	CHECK(rep != NULL);
	return rep;
}

/* A report without what measures the run rather than the result: the
 * timing object (what --reproducible leaves out). */
static json_t *without_timing(const char *text)
{
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;

	if (j)
		json_object_del(j, "timing");
	return j;
}

static int start_node(struct be_daemon *d, int i, const char *url)
{
	const char *extra[] = {"--store", url, "--node-name", names[i], "--lease-ms", LEASE_MS, NULL};

	return be_daemon_start_on(d, hosts[i], getenv("PARACORRD_BIN"), cluster_defaults, extra);
}

/* The database and the nodes' directories; 1 when ready. */
static int cluster_setup(struct pc_test *t, char *url, size_t size, struct be_daemon *nodes, int n)
{
	char why[600];
	struct pgu *pg;

	if (!pgu_available(why, sizeof(why))) {
		pc_test_skip(t, why);
		return 0;
	}
	if (!getenv("PARACORRD_BIN")) {
		pc_test_skip(t, "PARACORRD_BIN is not set");
		return 0;
	}
	if (!(pg = pgu_shared(why, sizeof(why))) || !pgu_new_db(pg, url, size)) {
		pc_test_fail(t, __FILE__, __LINE__, "no PostgreSQL database: %s", pg ? pg->why : why);
		return 0;
	}
	memset(nodes, 0, sizeof(*nodes) * (size_t)n);
	for (int i = 0; i < n; i++) {
		if (!be_tmpdir(nodes[i].dir, sizeof(nodes[i].dir)) || !start_node(&nodes[i], i, url)) {
			pc_test_fail(t, __FILE__, __LINE__, "node %s did not start", names[i]);
			for (int k = 0; k <= i; k++) {
				if (nodes[k].pid > 0)
					be_daemon_stop(&nodes[k], SIGKILL, NULL);
				if (nodes[k].dir[0])
					be_rmtree(nodes[k].dir);
			}
			return 0;
		}
	}
	return 1;
}

static void cluster_teardown(struct be_daemon *nodes, int n)
{
	for (int i = 0; i < n; i++) {
		if (nodes[i].pid > 0)
			be_daemon_stop(&nodes[i], SIGKILL, NULL);
		be_rmtree(nodes[i].dir);
	}
}

/* The same spec's report from one SQLite node (timing aside), NULL when
 * it could not be had. */
static json_t *sqlite_report(struct pc_test *t, int seed)
{
	struct be_daemon d;
	char model[65] = "", ds[65] = "", id[64] = "", *text = NULL;
	json_t *rep = NULL;

	memset(&d, 0, sizeof(d));
	if (!be_tmpdir(d.dir, sizeof(d.dir)) || !be_daemon_start(&d, getenv("PARACORRD_BIN"), cluster_defaults, NULL)) {
		pc_test_fail(t, __FILE__, __LINE__, "the SQLite node did not start");
		return NULL;
	}
	if (upload_to(&d, model, ds) && submit_job(&d, model, ds, seed, id) &&
	    wait_finished(&d, (char(*)[64])id, 1, WAIT_JOBS_S))
		text = report_text(&d, id);
	rep = without_timing(text);
	free(text);
	be_daemon_stop(&d, SIGTERM, NULL);
	be_rmtree(d.dir);
	return rep;
}

TEST(cluster_three_nodes_one_killed)
{
	struct be_daemon nodes[N_NODES];
	char url[256], model[65], ds[65], ids[N_JOBS][64], *reports[N_JOBS] = {0};
	int victim = 1, killed_job, ran_by[N_NODES] = {0};
	json_t *single = NULL;

	if (!cluster_setup(t, url, sizeof(url), nodes, N_NODES))
		return;
	REQUIRE_MSG(upload_spread(nodes, N_NODES, model, ds), "the uploads failed");
	/* two jobs through each node: the queue is one, whoever takes them */
	for (int i = 0; i < N_JOBS; i++)
		REQUIRE_MSG(submit_job(&nodes[i % N_NODES], model, ds, 10 + i, ids[i]), "submit %d failed", i);
	killed_job = wait_running_on(&nodes[0], ids, N_JOBS, names[victim], 1200);
	REQUIRE_MSG(killed_job >= 0, "no job ran on %s", names[victim]);
	CHECK_INT(be_daemon_stop(&nodes[victim], SIGKILL, NULL), 128 + SIGKILL);
	REQUIRE_MSG(wait_finished(&nodes[0], ids, N_JOBS, WAIT_JOBS_S), "the jobs did not all finish in %d s",
		    WAIT_JOBS_S);
	/* the killed node comes back (its own directory): it serves the
	 * database's jobs too */
	REQUIRE_MSG(start_node(&nodes[victim], victim, url), "%s did not restart", names[victim]);
	for (int i = 0; i < N_JOBS; i++) {
		json_t *j = job_get(&nodes[0], ids[i]);
		const char *node = jstr(j, "node");

		CHECK_MSG(!strcmp(jstr(j, "status"), "succeeded"), "job %d: %s", i, jstr(j, "status"));
		/* once each, and the killed attempt once more */
		CHECK_MSG(json_integer_value(json_object_get(j, "attempts")) == (i == killed_job ? 2 : 1),
			  "job %d (%s on %s): %lld attempts", i, i == killed_job ? "killed" : "not killed", node,
			  (long long)json_integer_value(json_object_get(j, "attempts")));
		if (i == killed_job)
			CHECK_MSG(strcmp(node, names[victim]) != 0, "the killed job finished on %s", node);
		for (int k = 0; k < N_NODES; k++)
			ran_by[k] += !strcmp(node, names[k]);
		json_decref(j);
		/* the same bytes from every node */
		reports[i] = report_text(&nodes[0], ids[i]);
		CHECK_MSG(reports[i], "job %d has no report", i);
		for (int k = 1; k < N_NODES && reports[i]; k++) {
			char *other = report_text(&nodes[k], ids[i]);

			CHECK_MSG(other && !strcmp(other, reports[i]), "job %d's report from %s differs", i, names[k]);
			free(other);
		}
	}
	{
		int nodes_that_ran = 0;

		for (int k = 0; k < N_NODES; k++)
			nodes_that_ran += ran_by[k] > 0;
		CHECK_MSG(nodes_that_ran >= 2, "jobs ran on %d node(s): %d %d %d", nodes_that_ran, ran_by[0], ran_by[1],
			  ran_by[2]);
	}
	/* the killed job's report is the one a single SQLite node makes */
	single = sqlite_report(t, 10 + killed_job);
	{
		json_t *got = without_timing(reports[killed_job]);

		CHECK_MSG(single && got && json_equal(single, got),
			  "the cluster's report of the killed job differs from a single SQLite node's");
		json_decref(got);
	}
	json_decref(single);
	for (int i = 0; i < N_JOBS; i++)
		free(reports[i]);
	cluster_teardown(nodes, N_NODES);
}

/* More shards than one node's single worker can take before the others
 * claim some: each is a fraction of a second of compute, and every node is
 * woken by the hand-over's NOTIFY (or polls every 200 ms). 6 of the spec's
 * 14 items (model and 6 tensors, at 2 norms). */
#define N_SHARDS	6
#define WAIT_SHARDED_S	120

/* A sharded study on three nodes: the shards are claimed by more than one
 * node, each listed with the node that ran it, and the merged report is
 * the unsharded one's (timing aside), served the same by every node. */
TEST(cluster_sharded_study_over_three_nodes)
{
	struct be_daemon nodes[N_NODES];
	char url[256], model[65], ds[65], ids[2][64], whole[1024], sharded[1100], *text[2] = {0};
	int ran_by[N_NODES] = {0}, nodes_that_ran = 0;
	json_t *j = NULL, *shards, *rep[2] = {0};

	if (!cluster_setup(t, url, sizeof(url), nodes, N_NODES))
		return;
	REQUIRE_MSG(upload_spread(nodes, N_NODES, model, ds), "the uploads failed");
	/* the same study, with "shards" as its first member */
	snprintf(whole, sizeof(whole), JOB_SPEC, model, ds, 60);
	snprintf(sharded, sizeof(sharded), "{\"shards\": %d, %s", N_SHARDS, whole + 1);
	/* through the node that has neither upload, and the unsharded one
	 * through another: the queue is one */
	REQUIRE_MSG(submit_spec(&nodes[2], sharded, ids[0]), "the sharded job was not accepted");
	REQUIRE_MSG(submit_spec(&nodes[1], whole, ids[1]), "the unsharded job was not accepted");
	REQUIRE_MSG(wait_finished(&nodes[0], ids, 2, WAIT_SHARDED_S), "the jobs did not finish in %d s",
		    WAIT_SHARDED_S);
	j = job_get(&nodes[0], ids[1]);
	CHECK_MSG(!strcmp(jstr(j, "status"), "succeeded"), "the unsharded job: %s", jstr(j, "status"));
	json_decref(j);
	j = job_get(&nodes[0], ids[0]);
	CHECK_MSG(!strcmp(jstr(j, "status"), "succeeded"), "the sharded job: %s", jstr(j, "status"));
	shards = json_object_get(j, "shards");
	CHECK_MSG(json_array_size(shards) == N_SHARDS, "%zu shards listed, not %d", json_array_size(shards),
		  N_SHARDS);
	for (size_t i = 0; i < json_array_size(shards); i++) {
		json_t *s = json_array_get(shards, i);
		const char *node = jstr(s, "node");
		int k;

		CHECK_INT(json_integer_value(json_object_get(s, "index")), i);
		CHECK_MSG(!strcmp(jstr(s, "status"), "succeeded"), "shard %zu: %s", i, jstr(s, "status"));
		for (k = 0; k < N_NODES && strcmp(node, names[k]); k++)
			;
		CHECK_MSG(k < N_NODES, "shard %zu ran on \"%s\", none of the nodes", i, node);
		if (k < N_NODES)
			ran_by[k]++;
	}
	for (int k = 0; k < N_NODES; k++)
		nodes_that_ran += ran_by[k] > 0;
	CHECK_MSG(nodes_that_ran >= 2, "the shards ran on %d node(s): %d %d %d", nodes_that_ran, ran_by[0],
		  ran_by[1], ran_by[2]);
	json_decref(j);
	for (int i = 0; i < 2; i++) {
		text[i] = report_text(&nodes[0], ids[i]);
		rep[i] = without_timing(text[i]);
		CHECK_MSG(rep[i], "the %s job has no report", i ? "unsharded" : "sharded");
	}
	CHECK_MSG(rep[0] && rep[1] && json_equal(rep[0], rep[1]),
		  "the sharded report differs from the unsharded one (timing aside)");
	/* the merged report is in the database: the same bytes from every node */
	for (int k = 1; k < N_NODES && text[0]; k++) {
		char *other = report_text(&nodes[k], ids[0]);

		CHECK_MSG(other && !strcmp(other, text[0]), "the sharded report from %s differs", names[k]);
		free(other);
	}
	for (int i = 0; i < 2; i++) {
		json_decref(rep[i]);
		free(text[i]);
	}
	cluster_teardown(nodes, N_NODES);
}

/* How many lines of the daemon log at dir contain s. */
static int log_count(const char *dir, const char *s)
{
	char path[PATH_MAX], *text, *p;
	size_t len;
	int n = 0;

	snprintf(path, sizeof(path), "%s/daemon.log", dir);
	if (!(text = be_read_file(path, &len)))
		return 0;
	for (p = text; (p = strstr(p, s)); p += strlen(s))
		n++;
	free(text);
	return n;
}

TEST(cluster_stopped_node_is_fenced)
{
	struct be_daemon nodes[2];
	char url[256], model[65], ds[65], id[1][64], *rep = NULL, *rep_after = NULL;
	json_t *j;

	if (!cluster_setup(t, url, sizeof(url), nodes, 2))
		return;
	REQUIRE_MSG(upload_spread(nodes, 2, model, ds), "the uploads failed");
	/* only node-a may claim it: node-b is frozen before the submit ... */
	kill(nodes[1].pid, SIGSTOP);
	REQUIRE(submit_job(&nodes[0], model, ds, 40, id[0]));
	REQUIRE_MSG(wait_running_on(&nodes[0], id, 1, names[0], 1200) == 0, "the job did not run on node-a");
	/* ... then node-a freezes mid-job (a partition: no heartbeat, no
	 * write) and node-b thaws, sweeps the expired lease and runs it */
	kill(nodes[0].pid, SIGSTOP);
	kill(nodes[1].pid, SIGCONT);
	REQUIRE_MSG(wait_finished(&nodes[1], id, 1, WAIT_JOBS_S), "node-b did not finish the job");
	rep = taken_over(t, &nodes[1], id[0]);
	/* node-a thaws: its next heartbeat or its outcome is refused; wait
	 * (bounded) for its log to say the result was dropped */
	kill(nodes[0].pid, SIGCONT);
	{
		int k;

		for (k = 0; k < 1200 && log_count(nodes[0].dir, "lease lost") == 0; k++)
			be_sleep_ms(100);
		CHECK_MSG(k < 1200, "node-a never found its lease lost");
	}
	CHECK_INT(log_count(nodes[0].dir, "cannot record the outcome"), 0);
	/* the report is still node-b's, byte for byte, from both nodes */
	j = job_get(&nodes[0], id[0]);
	CHECK_MSG(!strcmp(jstr(j, "node"), names[1]) && json_integer_value(json_object_get(j, "attempts")) == 2,
		  "after node-a came back: on %s, %lld attempts", jstr(j, "node"),
		  (long long)json_integer_value(json_object_get(j, "attempts")));
	json_decref(j);
	rep_after = report_text(&nodes[0], id[0]);
	CHECK(rep && rep_after && !strcmp(rep, rep_after));
	free(rep);
	free(rep_after);
	cluster_teardown(nodes, 2);
}

/* --- a real partition, in a network namespace ------------------------------ */

/* The namespace of cluster_partitioned_node_is_fenced: node-a runs in it,
 * behind a veth pair whose host side the test takes down and up again. */
struct netns {
	char name[32], host_if[16], ns_if[16];
	char host_addr[32], ns_addr[32];
	int made;
};

static int sh(const char *fmt, const char *a, const char *b, const char *c)
{
	char cmd[512], out[1024];

	snprintf(cmd, sizeof(cmd), fmt, a, b ? b : "", c ? c : "");
	return be_run(cmd, out, sizeof(out), 30) == 0;
}

static void netns_remove(struct netns *n)
{
	if (!n->made)
		return;
	/* the namespace's end of the pair goes with it, and so its peer */
	sh("ip netns del %s 2>&1", n->name, NULL, NULL);
	sh("ip link del %s 2>/dev/null; true", n->host_if, NULL, NULL);
	n->made = 0;
}

/* 1 when made; else why says why not (no root, no netns support). */
static int netns_make(struct netns *n, char *why, size_t size)
{
	int id = (int)getpid();

	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "pcns%d", id);
	snprintf(n->host_if, sizeof(n->host_if), "pch%d", id % 10000000);
	snprintf(n->ns_if, sizeof(n->ns_if), "pcn%d", id % 10000000);
	snprintf(n->host_addr, sizeof(n->host_addr), "10.213.%d.1", id % 250);
	snprintf(n->ns_addr, sizeof(n->ns_addr), "10.213.%d.2", id % 250);
	if (geteuid() != 0) {
		snprintf(why, size, "network namespaces need root");
		return 0;
	}
	if (!sh("ip netns add %s 2>&1", n->name, NULL, NULL)) {
		snprintf(why, size, "ip netns add failed (no network namespaces here)");
		return 0;
	}
	n->made = 1;
	if (!sh("ip link add %s type veth peer name %s 2>&1", n->host_if, n->ns_if, NULL) ||
	    !sh("ip link set %s netns %s 2>&1", n->ns_if, n->name, NULL) ||
	    !sh("ip addr add %s/24 dev %s 2>&1", n->host_addr, n->host_if, NULL) ||
	    !sh("ip link set %s up 2>&1", n->host_if, NULL, NULL) ||
	    !sh("ip netns exec %s ip addr add %s/24 dev %s 2>&1", n->name, n->ns_addr, n->ns_if) ||
	    !sh("ip netns exec %s ip link set %s up 2>&1", n->name, n->ns_if, NULL) ||
	    !sh("ip netns exec %s ip link set lo up 2>&1", n->name, NULL, NULL)) {
		snprintf(why, size, "the veth pair could not be set up");
		netns_remove(n);
		return 0;
	}
	return 1;
}

/* node-a of a partition: in the namespace, through a wrapper that enters
 * it (ip netns exec replaces itself with the daemon: d->pid is the
 * daemon's), its store on the host's side of the pair. */
static int start_in_netns(struct be_daemon *d, const struct netns *n, const char *url)
{
	const char *extra[] = {"--store",	    url, "--node-name", names[0], "--lease-ms", LEASE_MS,
			       "--allow-anonymous", "1", NULL};
	char wrapper[PATH_MAX];
	FILE *f;

	snprintf(wrapper, sizeof(wrapper), "%s/in-netns.sh", d->dir);
	if (!(f = fopen(wrapper, "w")))
		return 0;
	fprintf(f, "#!/bin/sh\nexec ip netns exec %s '%s' \"$@\"\n", n->name, getenv("PARACORRD_BIN"));
	if (fclose(f) != 0 || chmod(wrapper, 0755) != 0)
		return 0;
	return be_daemon_start_on(d, n->ns_addr, wrapper, cluster_defaults, extra);
}

/* A node cut off from PostgreSQL mid-job by a real partition (its link
 * down): it goes on computing and cannot write; its lease runs out, the
 * other node requeues the job and finishes it; the link comes back, and
 * the cut-off node's late write is refused (its log says the lease was
 * lost) while the report stays the other node's, byte for byte. */
TEST(cluster_partitioned_node_is_fenced)
{
	struct netns n;
	struct pgu pg;
	struct be_daemon nodes[2];
	char why[600], url[256], url_a[256], model[65], ds[65], id[1][64], *rep = NULL, *rep_after = NULL, *at;
	const char *extra_b[] = {"--store", url, "--node-name", names[1], "--lease-ms", LEASE_MS, NULL};
	json_t *j;
	int k;

	if (!pgu_available(why, sizeof(why)) || !getenv("PARACORRD_BIN")) {
		pc_test_skip(t, getenv("PARACORRD_BIN") ? why : "PARACORRD_BIN is not set");
		return;
	}
	if (!netns_make(&n, why, sizeof(why))) {
		pc_test_skip(t, why); /* cluster_stopped_node_is_fenced stands in */
		return;
	}
	memset(nodes, 0, sizeof(nodes));
	if (!pgu_init_on(&pg, n.host_addr) || !pgu_new_db(&pg, url, sizeof(url))) {
		CHECK_MSG(0, "no PostgreSQL on %s: %s", n.host_addr, pg.why);
		goto out;
	}
	/* the same database, by the address the namespace reaches */
	if (!(at = strstr(url, "@127.0.0.1:"))) {
		CHECK_MSG(0, "an unexpected URL: %s", url);
		goto out;
	}
	snprintf(url_a, sizeof(url_a), "%.*s@%s%s", (int)(at - url), url, n.host_addr, at + strlen("@127.0.0.1"));
	if (!be_tmpdir(nodes[0].dir, sizeof(nodes[0].dir)) || !start_in_netns(&nodes[0], &n, url_a) ||
	    !be_tmpdir(nodes[1].dir, sizeof(nodes[1].dir)) ||
	    !be_daemon_start_on(&nodes[1], hosts[1], getenv("PARACORRD_BIN"), cluster_defaults, extra_b)) {
		CHECK_MSG(0, "the nodes did not start");
		goto out;
	}
	if (!upload_spread(nodes, 2, model, ds)) {
		CHECK_MSG(0, "the uploads failed");
		goto out;
	}
	/* node-a takes the job (node-b frozen until then) ... */
	kill(nodes[1].pid, SIGSTOP);
	if (!submit_job(&nodes[0], model, ds, 50, id[0]) || wait_running_on(&nodes[0], id, 1, names[0], 1200) != 0) {
		kill(nodes[1].pid, SIGCONT);
		CHECK_MSG(0, "the job did not run on node-a");
		goto out;
	}
	/* ... and is cut off: its link goes down */
	CHECK(sh("ip link set %s down 2>&1", n.host_if, NULL, NULL));
	kill(nodes[1].pid, SIGCONT);
	CHECK_MSG(wait_finished(&nodes[1], id, 1, WAIT_JOBS_S), "node-b did not finish the job");
	rep = taken_over(t, &nodes[1], id[0]);
	/* the link is back: node-a's next write is refused (bounded: libpq
	 * gives a dead connection up after tcp_user_timeout, 60 s) */
	CHECK(sh("ip link set %s up 2>&1", n.host_if, NULL, NULL));
	for (k = 0; k < 1800 && log_count(nodes[0].dir, "lease lost") == 0; k++)
		be_sleep_ms(100);
	CHECK_MSG(k < 1800, "node-a never found its lease lost");
	CHECK_INT(log_count(nodes[0].dir, "cannot record the outcome"), 0);
	j = job_get(&nodes[0], id[0]);
	CHECK_MSG(j && !strcmp(jstr(j, "node"), names[1]) && json_integer_value(json_object_get(j, "attempts")) == 2,
		  "after node-a came back: on %s, %lld attempts", jstr(j, "node"),
		  (long long)json_integer_value(json_object_get(j, "attempts")));
	json_decref(j);
	rep_after = report_text(&nodes[0], id[0]);
	CHECK_MSG(rep && rep_after && !strcmp(rep, rep_after), "the report changed after node-a came back");
out:
	free(rep);
	free(rep_after);
	for (int i = 0; i < 2; i++) {
		if (nodes[i].pid > 0) {
			kill(nodes[i].pid, SIGCONT);
			be_daemon_stop(&nodes[i], SIGKILL, NULL);
		}
		if (nodes[i].dir[0])
			be_rmtree(nodes[i].dir);
	}
	pgu_free(&pg);
	netns_remove(&n);
}
