/* runner: data-parallel passes over a dataset.
 *
 * A runner holds one plan per thread, all reading the runner's one copy of
 * the weights, and a pool of threads that stays up between calls. Inside an
 * item a worker must not write the weights; to run a layer on other
 * weights (one layer on a direction) it binds them to its own plan
 * (pc_plan_bind_param) and unbinds them before the item ends. Work
 * is a list of items (usually shards of batches); pc_runner_map hands them
 * out and returns when all are done. Each plan runs BLAS single-threaded:
 * the parallelism is across batches, which scales better on small layers
 * and keeps every product computed the same way whatever the thread count.
 * The plans share one copy of the running statistics training moves (plan
 * 0's, pc_plan_stats), as one model has.
 *
 * The weights may be changed only between pc_runner_map calls. */
#ifndef PARACORR_RUNNER_H
#define PARACORR_RUNNER_H

#include "paracorr/plan.h"

struct pc_runner;

typedef void (*pc_runner_fn)(struct pc_plan *p, int worker, int item, void *arg);

struct pc_runner *pc_runner_new(const struct pc_graph *g, int batch, int threads, unsigned flags,
				struct pc_error *err);
void pc_runner_free(struct pc_runner *r);

int pc_runner_threads(const struct pc_runner *r);
int pc_runner_batch(const struct pc_runner *r);
struct pc_plan *pc_runner_plan(struct pc_runner *r, int worker);
const struct pc_graph *pc_runner_graph(const struct pc_runner *r);
/* Write weights [offset, offset + count), which every worker reads. */
void pc_runner_write(struct pc_runner *r, int64_t offset, int64_t count, const float *src);

/* Calls fn for every item in [0, items), items taken in increasing order by
 * whichever worker is free; fn must not depend on which worker runs it for
 * its result. The calling thread works too. */
void pc_runner_map(struct pc_runner *r, int items, pc_runner_fn fn, void *arg);

/* pc_plan_set_training on every worker's plan; between maps only. */
void pc_runner_set_training(struct pc_runner *r, int on, int update_stats);

/* pc_plan_set_dropout on every worker's plan; between maps only. */
void pc_runner_set_dropout(struct pc_runner *r, uint64_t seed);

#endif
