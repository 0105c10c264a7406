/* prefix: the activation cache that lets a pass resume part way (issue 15).
 *
 * A study that changes one parameter tensor at a time need not rerun the
 * nodes before that tensor's first reader: their outputs are those of the
 * unchanged weights. A prefix cache holds, for every batch of a dataset,
 * the activations at cuts (pc_plan_cut) placed at the first node that
 * reads each of a set of parameter tensors, and resumes a pass from the
 * deepest cut at or before a given node.
 *
 * Policy:
 * - Cuts go at the first readers of the chosen tensors, deepest first
 *   (those save the most per pass), while PC_PREFIX_BYTES lasts; a cut the
 *   plan cannot make (a run-time integer crosses it) or that does not fit
 *   is left out, and passes that would start there resume from an earlier
 *   cut or run whole. The budget holds every batch of the dataset at once.
 * - The cache holds what the last pass run with pc_prefix_capture as its
 *   hook computed, at the weights the runner had then. The caller must
 *   recapture whenever it changes weights read before a cut it will resume
 *   from: fstudy captures once, at the clean weights, and changes a tensor
 *   only for one pass; bitsearch recaptures on each step's gradient pass,
 *   at the weights with every committed flip, before it tries candidates.
 * - A resumed pass gives the same bits as the whole pass: the batches are
 *   summed in their order, as pc_eval_run sums them. */
#ifndef PARACORR_PREFIX_H
#define PARACORR_PREFIX_H

#include <stdint.h>

#include "paracorr/data.h"
#include "paracorr/error.h"
#include "paracorr/eval.h"
#include "paracorr/plan.h"
#include "paracorr/runner.h"

/* What one cache may hold. */
#define PC_PREFIX_BYTES ((int64_t)256 << 20)

struct pc_prefix;

/* A cache for passes of runner r over the first `limit` samples of d (0 or
 * more than d->n: all), with cuts at the first readers of parameter tensors
 * params[0 .. n_params) (params NULL: every tensor). Nothing is captured
 * yet. r and d must outlive it. */
int pc_prefix_new(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const int *params, int n_params,
		  pc_cancel_fn cancel, void *cancel_arg, struct pc_prefix **out, struct pc_error *err);
void pc_prefix_free(struct pc_prefix *c);
/* Cuts the cache holds. */
int pc_prefix_cuts(const struct pc_prefix *c);

/* The pc_eval_hook that fills the cache (arg: the cache), or NULL when the
 * cache has no cut; pass it to pc_eval_run_hooked with the same d and
 * limit. */
pc_eval_hook pc_prefix_hook(const struct pc_prefix *c);

/* A pass of the runner's weights, which differ from those of the last
 * capture in nodes `start` and later only: from the deepest cut at or
 * before start (*resumed = 1), else the whole pass (*resumed = 0). */
int pc_prefix_pass(struct pc_prefix *c, int start, struct pc_eval *out, int *resumed, struct pc_error *err);

#endif
