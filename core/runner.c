/* runner: a fixed pool of workers, each with its own plan, pulling items
 * from a shared counter. One mutex and two condition variables: the caller
 * publishes a generation, workers take items until none are left, the last
 * one out signals the caller. Nobody spins.
 *
 * The plans read one copy of the weights, the runner's: the graph's clean
 * ones until the first pc_runner_write, which copies them into w (allocated
 * with the runner, so that a write cannot fail, and touched only then). */
#include "paracorr/runner.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/plan.h"
#include "paracorr/sys.h"

struct pc_runner {
	const struct pc_graph *g;
	int threads;
	int batch;
	struct pc_plan **plans;
	float *w;	/* the weights every plan reads once written */
	int w_copied;	/* w holds a copy and the plans read it */
	pthread_t *tids;
	int started;

	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_cond_t done;
	unsigned long generation;
	int stop;
	/* the current map */
	pc_runner_fn fn;
	void *arg;
	int items;
	int next;
	int busy;
};

struct worker_arg {
	struct pc_runner *r;
	int id;
};

/* Take items until none are left; called with the lock held. */
static void drain(struct pc_runner *r, int id)
{
	while (r->next < r->items) {
		int item = r->next++;
		r->busy++;
		pthread_mutex_unlock(&r->lock);
		r->fn(r->plans[id], id, item, r->arg);
		pthread_mutex_lock(&r->lock);
		r->busy--;
	}
	if (r->busy == 0)
		pthread_cond_broadcast(&r->done);
}

static void *worker_main(void *p)
{
	struct worker_arg *wa = p;
	struct pc_runner *r = wa->r;
	int id = wa->id;
	unsigned long seen = 0;

	free(wa);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->stop && r->generation == seen)
			pthread_cond_wait(&r->work, &r->lock);
		if (r->stop)
			break;
		seen = r->generation;
		drain(r, id);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct pc_runner *pc_runner_new(const struct pc_graph *g, int batch, int threads, unsigned flags,
				struct pc_error *err)
{
	struct pc_runner *r;

	if (threads < 1 || threads > 256) {
		pc_error_set(err, PC_ERR_INVALID, "threads", "thread count %d is outside 1..256", threads);
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		goto nomem;
	r->g = g;
	r->threads = threads;
	r->batch = batch;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->work, NULL);
	pthread_cond_init(&r->done, NULL);
	r->plans = calloc((size_t)threads, sizeof(*r->plans));
	r->tids = calloc((size_t)threads, sizeof(*r->tids));
	r->w = pc_sys_malloc_huge((size_t)pc_graph_param_count(g) * sizeof(float) + 1);
	if (!r->plans || !r->tids || !r->w)
		goto nomem;
	for (int i = 0; i < threads; i++) {
		r->plans[i] = pc_plan_new(g, batch, flags | PC_PLAN_SHARED_WEIGHTS, err);
		if (!r->plans[i])
			goto fail;
		/* one set of running statistics for the runner, as one model has */
		if (i > 0)
			pc_plan_share_stats(r->plans[i], r->plans[0]);
	}
	for (int i = 1; i < threads; i++) {
		struct worker_arg *wa = malloc(sizeof(*wa));
		if (!wa)
			goto nomem;
		wa->r = r;
		wa->id = i;
		if (pthread_create(&r->tids[i], NULL, worker_main, wa) != 0) {
			free(wa);
			pc_error_set(err, PC_ERR_NOMEM, "threads", "cannot start worker thread %d", i);
			goto fail;
		}
		r->started++;
	}
	return r;
nomem:
	pc_error_set(err, PC_ERR_NOMEM, "runner", "out of memory");
fail:
	pc_runner_free(r);
	return NULL;
}

void pc_runner_free(struct pc_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = 1;
	pthread_cond_broadcast(&r->work);
	pthread_mutex_unlock(&r->lock);
	for (int i = 1; i <= r->started; i++)
		pthread_join(r->tids[i], NULL);
	for (int i = 0; r->plans && i < r->threads; i++)
		pc_plan_free(r->plans[i]);
	free(r->plans);
	free(r->w);
	free(r->tids);
	pthread_cond_destroy(&r->work);
	pthread_cond_destroy(&r->done);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int pc_runner_threads(const struct pc_runner *r)
{
	return r->threads;
}

int pc_runner_batch(const struct pc_runner *r)
{
	return r->batch;
}

struct pc_plan *pc_runner_plan(struct pc_runner *r, int worker)
{
	return r->plans[worker];
}

const struct pc_graph *pc_runner_graph(const struct pc_runner *r)
{
	return r->g;
}

void pc_runner_write(struct pc_runner *r, int64_t offset, int64_t count, const float *src)
{
	if (!r->w_copied) {
		memcpy(r->w, pc_graph_params(r->g), (size_t)pc_graph_param_count(r->g) * sizeof(float));
		for (int i = 0; i < r->threads; i++)
			pc_plan_use_weights(r->plans[i], r->w);
		r->w_copied = 1;
	}
	memcpy(r->w + offset, src, (size_t)count * sizeof(float));
}

void pc_runner_map(struct pc_runner *r, int items, pc_runner_fn fn, void *arg)
{
	pthread_mutex_lock(&r->lock);
	r->fn = fn;
	r->arg = arg;
	r->items = items;
	r->next = 0;
	r->busy = 0;
	r->generation++;
	pthread_cond_broadcast(&r->work);
	drain(r, 0);
	while (r->next < r->items || r->busy > 0)
		pthread_cond_wait(&r->done, &r->lock);
	pthread_mutex_unlock(&r->lock);
}

void pc_runner_set_training(struct pc_runner *r, int on, int update_stats)
{
	for (int w = 0; w < pc_runner_threads(r); w++)
		pc_plan_set_training(pc_runner_plan(r, w), on, update_stats);
}

void pc_runner_set_dropout(struct pc_runner *r, uint64_t seed)
{
	for (int w = 0; w < pc_runner_threads(r); w++)
		pc_plan_set_dropout(pc_runner_plan(r, w), seed);
}
