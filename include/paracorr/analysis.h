/* analysis: the parameter-corruption study of method.md, driven by a job
 * spec and returning the report of design.md.
 *
 * One call runs the whole study: clean evaluation and gradient; for every
 * group, norm, sparsity and radius the gradient-based corruption (one step
 * or projected multi-step) and its realised loss; seeded random corruption
 * of the same size; a ranking of the groups. The daemon's workers call the
 * same function as the CLI, with a progress callback and a cancel flag.
 *
 * Work that cannot change a number is skipped: a group whose parameters
 * all sit at or after node k reuses cached clean activations before k, and
 * a group confined to one linear layer (Gemm, MatMul, Conv) computes that
 * layer once per direction and reuses it for every radius. The report's
 * timing says how many passes and FLOPs that saved. */
#ifndef PARACORR_ANALYSIS_H
#define PARACORR_ANALYSIS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "paracorr/data.h"
#include "paracorr/eval.h"
#include "paracorr/graph.h"
#include "paracorr/spec.h"

struct pc_progress {
	const char *phase; /* "clean evaluation", "gradient corruption", ... */
	int64_t done;	   /* dataset passes done */
	int64_t total;	   /* dataset passes planned */
	double elapsed;	   /* seconds */
	double remaining;  /* seconds, estimated; < 0 when unknown */
	/* of the whole run, in [0, 1]: done / total for one study; a caller
	 * that runs several stages (a harden job) rescales it to the job's */
	double fraction;
};

typedef void (*pc_progress_fn)(const struct pc_progress *pr, void *arg);

struct pc_study_opts {
	int threads;	    /* worker threads (default 1) */
	size_t cache_bytes; /* budget for cached clean activations */
	int timing_seconds; /* put wall-clock seconds in the report (default 1);
			       0 makes the report byte-identical across runs */
	int profile;	    /* with timing_seconds, timing.ops: each op kind's
			       forward and backward seconds (default 0) */
	int shortcuts;	    /* prefix cache and linear-layer reuse (default 1);
			       0 recomputes everything: the tests' oracle */
	pc_progress_fn progress;
	void *progress_arg;
	pc_cancel_fn cancel; /* polled between batches */
	void *cancel_arg;
};

#define PC_STUDY_DEFAULT_CACHE ((size_t)1 << 30)

void pc_study_opts_default(struct pc_study_opts *o);

/* Runs spec on g and d (d already limited and preprocessed as the spec
 * says). On success *report is a new JSON reference owned by the caller.
 * Returns PC_ERR_CANCELLED when the cancel callback asked to stop. */
int pc_study_run(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
		 const struct pc_study_opts *o, json_t **report, struct pc_error *err);

/* --- the study in shards (shard.h: the stored forms) -------------------------
 *
 * A study is a prefix (the clean pass with the gradient) and a list of
 * items, each independent of the others given the prefix: item i < S is
 * one (group, norm, sparsity) setting in the order pc_study_run runs them
 * (every radius, its random trials and its critical radius), then the
 * bit-fault study and the curvature study as one item each when the spec
 * has them. An item's numbers depend only on the spec, the model, the data
 * and the item (the random streams are seeded per group, sparsity and
 * trial), and the merge puts the items' rows back in item order, so the
 * merged report is pc_study_run's byte for byte (the timing aside: it says
 * what each part ran). */

/* The prefix: the clean evaluation and the weight gradient (count floats,
 * owned). */
struct pc_study_prefix {
	struct pc_eval clean;
	int64_t count;
	float *grad;
};

/* Items of spec on g. */
int pc_study_items(const struct pc_graph *g, const struct pc_spec *spec, int64_t *n, struct pc_error *err);

/* The clean pass with the gradient; *out is the caller's (pc_study_prefix_free). */
int pc_study_prefix_run(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
			const struct pc_study_opts *o, struct pc_study_prefix **out, struct pc_error *err);
void pc_study_prefix_free(struct pc_study_prefix *p);

/* Items [first, last) given the prefix pre (one forward pass refills the
 * activation caches and must reproduce pre's clean numbers bit for bit,
 * else PC_ERR_CONFLICT: the prefix is of another model, data or build).
 * *part (new reference) is {first, last, items, spec, results [rows],
 * critical [rows], faults?, curvature?, counts {...}}, what
 * pc_study_merge takes. */
int pc_study_shard_run(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
		       const struct pc_study_opts *o, const struct pc_study_prefix *pre, int64_t first, int64_t last,
		       json_t **part, struct pc_error *err);

/* The report from the prefix and the parts of every item (parts[0 .. n),
 * in item order, each covering the items after the one before; no pass is
 * run). PC_ERR_FORMAT naming the part and field when they do not tile the
 * items or hold other than their items' rows. */
int pc_study_merge(const struct pc_graph *g, const struct pc_dataset *d, const struct pc_spec *spec,
		   const struct pc_study_opts *o, const struct pc_study_prefix *pre, json_t *const *parts, int n,
		   json_t **report, struct pc_error *err);

#endif
