/* fstudy: the random bit-error study of issue 15 (item 2), on a runner.
 *
 * A study holds one storage format's codes of a runner's weights
 * (pc_faults_encode) and evaluates them on a dataset: first the format's
 * clean numbers (float16 and bfloat16 rounded, int8 quantized; float32 is
 * the clean model bit for bit), then faulty variants of it. Every variant
 * writes only the elements its flips change into the runner, evaluates
 * (pc_eval_run, all the runner's threads) and writes them back: between
 * calls the runner holds the format's clean decoded weights, and
 * pc_fstudy_free puts the float32 weights it found back.
 *
 * Each result is a function of (seed, format, group, trial) alone: the same
 * numbers at any thread count, and a trial that flips nothing is the
 * format's clean result without a pass.
 *
 * A pass recomputes only from the first node its flips change: the clean
 * pass saves, for every batch, the activations at a cut before the first
 * node that reads each parameter tensor (a pc_prefix cache, prefix.h:
 * deepest first, at most PC_PREFIX_BYTES in all), and a faulty pass restores the deepest cut at or
 * before its first changed node and runs the rest. It gives the same bits
 * as a whole pass. */
#ifndef PARACORR_FSTUDY_H
#define PARACORR_FSTUDY_H

#include <jansson.h>
#include <stdint.h>

#include "paracorr/data.h"
#include "paracorr/error.h"
#include "paracorr/eval.h"
#include "paracorr/faults.h"
#include "paracorr/runner.h"
#include "paracorr/spec.h"
#include "paracorr/stats.h"

struct pc_fstudy;

/* Encodes the runner's current weights (worker 0's, taken as the clean
 * float32 model) into format f (scaling: int8 only), writes the decoded
 * weights into the runner and evaluates them on the first `limit` samples
 * of d (all when limit <= 0): the clean numbers (pc_fstudy_clean). d, the
 * runner and cancel must outlive the study; cancel (may be NULL) is polled
 * before every pass and between its batches, and stops a call with
 * PC_ERR_CANCELLED. */
int pc_fstudy_new(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, enum pc_faults_format f,
		  enum pc_faults_scaling scaling, pc_cancel_fn cancel, void *cancel_arg, struct pc_fstudy **out,
		  struct pc_error *err);
/* Writes the clean float32 weights back into the runner. */
void pc_fstudy_free(struct pc_fstudy *s);

/* The format's clean loss and accuracy ("quantized" in the report). */
const struct pc_eval *pc_fstudy_clean(const struct pc_fstudy *s);
const struct pc_faults_store *pc_fstudy_store(const struct pc_fstudy *s);
/* Evaluation passes run so far, the clean one included, and how many of
 * them resumed from a cut. */
int64_t pc_fstudy_passes(const struct pc_fstudy *s);
int64_t pc_fstudy_resumed(const struct pc_fstudy *s);
/* Whether passes may resume from a cut (on by default); off, every pass
 * runs from the input (the tests compare the two). */
void pc_fstudy_set_cache(struct pc_fstudy *s, int on);

/* Evaluates the format with flips[0..n-1] applied (an element may appear
 * with several bits; a bit twice cancels out), then restores the codes and
 * the runner. n = 0 is the clean result, without a pass. PC_ERR_INVALID,
 * nothing changed, when a flip is not an exposed bit. */
int pc_fstudy_eval_flips(struct pc_fstudy *s, const struct pc_faults_bitref *flips, int64_t n, struct pc_eval *out,
			 struct pc_error *err);

/* --- random trials ------------------------------------------------------------
 *
 * A group is a list of parameter tensor indices (a layer, or every tensor);
 * its exposed bits are pc_faults_exposed_bits'. Trial t of (seed, format,
 * group) draws its flips with pc_faults_sample from one stream derived from
 * (seed, format, group's tensor list, t) by pc_rng_derive, the same stream
 * at every ber: common random numbers, so trial t at a higher ber flips the
 * same or more bits, earlier in the group, and the rows of one group along
 * ber differ by less noise than independent trials would give (the curve of
 * accuracy against ber is smoother than its confidence intervals). */

struct pc_fstudy_random {
	int trials;
	double flips_mean;	  /* flipped bits per trial */
	struct pc_stats accuracy; /* over all trials */
	struct pc_stats loss;	  /* over the trials whose loss is finite */
	int non_finite;		  /* trials whose loss was not (a float16 exponent flip gives inf) */
	int64_t passes;		  /* passes run: the trials that flipped a bit */
};

/* The flips of trial `trial` (the caller's buffer, as pc_faults_sample);
 * PC_ERR_INVALID ("group") as pc_fstudy_random. */
int pc_fstudy_trial_flips(const struct pc_fstudy *s, const int *params, int n, double ber, uint64_t seed, int trial,
			  struct pc_faults_bitref **flips, int64_t *count, int64_t *cap, struct pc_error *err);

/* `trials` random trials at bit error rate ber over the group params[0..n-1].
 * PC_ERR_INVALID naming the field: "ber" outside (0, 1), "trials" < 1,
 * "group" empty or naming no tensor of the model; PC_ERR_LIMIT ("ber") when
 * a trial would flip more than PC_FAULTS_MAX_FLIPS bits. */
int pc_fstudy_random(struct pc_fstudy *s, const int *params, int n, double ber, int trials, uint64_t seed,
		     struct pc_fstudy_random *out, struct pc_error *err);

/* --- per bit position ----------------------------------------------------------
 *
 * Trial t flips bit b of `weights` distinct exposed elements of the group,
 * drawn uniformly (Floyd's algorithm) from a stream of (seed, format, group,
 * t) that does not depend on b: every bit position is tried on the same
 * elements, so the rows of one group compare the bits, not the draws. */

struct pc_fstudy_bit {
	int bit;
	const char *field; /* pc_fstudy_bit_field */
	int64_t weights;   /* elements flipped per trial: the request, at most the group's exposed elements */
	int trials;
	double accuracy_mean, accuracy_min;
	double loss_mean; /* over all trials: not finite (null) when a trial's loss was not */
	int64_t passes;
};

/* "sign", "exponent" or "mantissa" for bit b of a float format (float32:
 * 31, 30..23, 22..0; float16: 15, 14..10, 9..0; bfloat16: 15, 14..7,
 * 6..0), "int8" for every int8 bit. */
const char *pc_fstudy_bit_field(enum pc_faults_format f, int bit);

/* PC_ERR_INVALID naming the field: "bit" outside the format's bits,
 * "weights" < 1, "trials" < 1, "group" empty, naming no tensor, or exposing
 * no bit (int8 biases). */
int pc_fstudy_bit(struct pc_fstudy *s, const int *params, int n, int bit, int64_t weights, int trials, uint64_t seed,
		  struct pc_fstudy_bit *out, struct pc_error *err);

/* --- report rows ---------------------------------------------------------------
 *
 * Non-finite numbers are null. NULL when out of memory. */

/* {"format", "ber", "group", "trials", "flips_mean", "accuracy_mean",
 *  "accuracy_std", "accuracy_min", "accuracy_ci95": [lo, hi], "loss_mean",
 *  "loss_std", "loss_ci95": [lo, hi], "non_finite"} */
json_t *pc_fstudy_random_json(enum pc_faults_format f, double ber, const char *group,
			      const struct pc_fstudy_random *r);
/* {"format", "group", "bit", "field", "weights", "trials", "accuracy_mean",
 *  "accuracy_min", "loss_mean"} */
json_t *pc_fstudy_bit_json(enum pc_faults_format f, const char *group, const struct pc_fstudy_bit *b);

/* --- the faults block of a spec -------------------------------------------------- */

struct pc_fstudy_spec_opts {
	pc_cancel_fn cancel; /* may be NULL */
	void *cancel_arg;
	/* after each group of each format: the passes run since the last call */
	void (*progress)(void *arg, int64_t passes);
	void *progress_arg;
};

/* Runs spec's faults block on runner r, which holds the clean float32
 * weights (with PC_PLAN_GRAD plans when the block searches), over the first
 * `limit` samples of d (all when limit <= 0; a search reads all of d, which
 * the study has limited already). Per format in the spec's order: its clean
 * numbers, then per group of the block (model, one per tensor, one per
 * layer, in the block's order, named as the corruption study names them)
 * the bits it exposes, the random trials of every ber, the bit positions
 * and the worst-case search; a group that exposes no bit (an int8 group of
 * biases) has only its row of exposed bits. *out receives the report's
 * "faults" section: {"quantized": {format: {"loss", "accuracy"}},
 * "exposed": [{"format", "group", "tensors", "bits"}], "random": [...],
 * "bits": [...], "search": [...], "passes", "resumed"}, the rows as
 * pc_fstudy_random_json, pc_fstudy_bit_json and pc_bitsearch_json write
 * them. On return the runner holds the clean weights again. */
int pc_fstudy_run_spec(struct pc_runner *r, const struct pc_dataset *d, int64_t limit, const struct pc_spec *spec,
		       const struct pc_fstudy_spec_opts *o, json_t **out, struct pc_error *err);

#endif
