/* A job's progress is the whole job's: a harden job's three stages (the
 * study, the epochs, the study again) report one fraction that only grows
 * from 0 to 1 and one estimate of the time left, while phase, done and total
 * stay the current stage's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be_util.h"
#include "job.h"
#include "test.h"

#define FM "/usr/share/datasets/fashion-mnist/"
#define MAX_CALLS 20000

struct call {
	char phase[96];
	long long done, total;
	double fraction, elapsed, remaining;
};

struct calls {
	struct call v[MAX_CALLS];
	int n, overflow;
};

static void record(const struct pc_progress *pr, void *arg)
{
	struct calls *c = arg;
	struct call *k;

	if (c->n == MAX_CALLS) {
		c->overflow = 1;
		return;
	}
	k = &c->v[c->n++];
	snprintf(k->phase, sizeof(k->phase), "%s", pr->phase ? pr->phase : "");
	k->done = (long long)pr->done;
	k->total = (long long)pr->total;
	k->fraction = pr->fraction;
	k->elapsed = pr->elapsed;
	k->remaining = pr->remaining;
}

static int run(struct pc_test *t, const char *out, const char *ckpt, struct calls *c)
{
	const char *text = "{\"kind\": \"harden\", \"model\": \"cnn\", \"dataset\": {\"inputs\": \"x\", \"labels\": \"y\"}, "
			   "\"limit\": 300, \"seed\": 1, \"corruption\": {\"norms\": [\"l2\"], \"epsilons\": [0.5, 1], "
			   "\"random_trials\": 2, \"groups\": [\"model\"]}, \"training\": {\"dataset\": {\"inputs\": "
			   "\"a\", \"labels\": \"b\"}, \"limit\": 640, \"epochs\": 2, \"batch_size\": 64, "
			   "\"optimizer\": \"sgd\", \"lr\": 0.01, \"act\": {\"norm\": \"l2\", \"epsilon\": 0.1}}}";
	char model[1024], *rtext = NULL;
	struct pc_spec spec;
	struct pc_error err = {0};
	struct pcd_job_opts o;
	struct pcd_job_files files = {0};
	json_t *root = json_loads(text, 0, NULL);
	int rc;

	if (!root || pc_spec_parse(root, &spec, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "spec: %s: %s", err.where, err.text);
		json_decref(root);
		return -1;
	}
	json_decref(root);
	snprintf(model, sizeof(model), "%s/" FIX "cnn_op17.onnx", pc_test_root());
	files.model = model;
	files.inputs = FM "t10k-images-idx3-ubyte.gz";
	files.labels = FM "t10k-labels-idx1-ubyte.gz";
	files.train_inputs = FM "train-images-idx3-ubyte.gz";
	files.train_labels = FM "train-labels-idx1-ubyte.gz";
	pcd_job_opts_default(&o);
	o.timing_seconds = 0;
	o.model_out = out;
	o.checkpoint = ckpt;
	o.progress = record;
	o.progress_arg = c;
	rc = pcd_job_run_spec(&spec, &files, &o, &rtext, NULL, &err);
	if (rc)
		pc_test_fail(t, __FILE__, __LINE__, "harden: %s: %s", err.where, err.text);
	free(rtext);
	pc_spec_free(&spec);
	return rc;
}

/* The first call whose phase starts with prefix, from index from; -1 none. */
static int first(const struct calls *c, int from, const char *prefix)
{
	for (int i = from; i < c->n; i++)
		if (!strncmp(c->v[i].phase, prefix, strlen(prefix)))
			return i;
	return -1;
}

/* Every call: a fraction in [0, 1] that never falls, time left >= 0 once
 * there is a rate (and 0 at the end), the elapsed time never falling. */
static void check_monotone(struct pc_test *t, const struct calls *c)
{
	for (int i = 0; i < c->n; i++) {
		const struct call *k = &c->v[i];

		CHECK_MSG(k->fraction >= 0 && k->fraction <= 1, "call %d (%s): fraction %g", i, k->phase, k->fraction);
		CHECK_MSG(k->remaining == -1.0 || k->remaining >= 0, "call %d: remaining %g", i, k->remaining);
		if (i > 0) {
			CHECK_MSG(k->fraction >= c->v[i - 1].fraction, "call %d (%s): fraction %.9f after %.9f (%s)", i,
				  k->phase, k->fraction, c->v[i - 1].fraction, c->v[i - 1].phase);
			CHECK_MSG(k->elapsed >= c->v[i - 1].elapsed, "call %d: elapsed fell", i);
		}
	}
	REQUIRE(c->n > 0);
	CHECK_CLOSE(c->v[c->n - 1].fraction, 1.0, 1e-12, 0);
	CHECK_CLOSE(c->v[c->n - 1].remaining, 0.0, 1e-9, 0);
}

TEST(job_progress_spans_a_harden_jobs_stages)
{
	static struct calls c, again;
	char dir[256], out[300], ckpt[300];
	int b, e1, e2, a;

	REQUIRE(be_tmpdir(dir, sizeof(dir)));
	snprintf(out, sizeof(out), "%s/hard.onnx", dir);
	snprintf(ckpt, sizeof(ckpt), "%s/ckpt", dir);
	memset(&c, 0, sizeof(c));
	if (run(t, out, ckpt, &c))
		goto done;
	REQUIRE(!c.overflow);
	check_monotone(t, &c);

	/* the stages in order, each phase named for its stage */
	b = first(&c, 0, "before: ");
	e1 = first(&c, 0, "training epoch 1 of 2");
	e2 = first(&c, 0, "training epoch 2 of 2");
	a = first(&c, 0, "after: ");
	CHECK_MSG(b == 0, "the first call is '%s'", c.v[0].phase);
	CHECK_MSG(b < e1 && e1 < e2 && e2 < a, "stages at %d, %d, %d, %d", b, e1, e2, a);
	CHECK(first(&c, e1, "before: ") < 0 && first(&c, a, "training") < 0);
	/* training counts steps (640 / 64 a epoch), the studies passes */
	CHECK_INT(c.v[e2 - 1].done, 10);
	CHECK_INT(c.v[e2 - 1].total, 10);
	/* the two studies weigh the same: what the first ends at, the second starts after */
	CHECK_CLOSE(c.v[e1 - 1].fraction, 1.0 - c.v[a - 1].fraction, 1e-12, 0);
	CHECK_MSG(c.v[e1 - 1].fraction > 0 && c.v[e1 - 1].fraction < 0.5, "the study's share: %g", c.v[e1 - 1].fraction);
	/* an estimate from the first study on */
	CHECK(c.v[e1].remaining >= 0);

	/* the same job again from its checkpoint: both epochs done, so no
	 * training, and the fraction still climbs from 0 to 1 */
	memset(&again, 0, sizeof(again));
	if (run(t, out, ckpt, &again))
		goto done;
	check_monotone(t, &again);
	CHECK(first(&again, 0, "training") < 0);
	a = first(&again, 0, "after: ");
	REQUIRE(a > 0);
	CHECK_CLOSE(again.v[a - 1].fraction, c.v[e1 - 1].fraction, 1e-12, 0);
done:
	be_rmtree(dir);
}
