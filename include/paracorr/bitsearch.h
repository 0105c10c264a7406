/* bitsearch: the worst-case bit flips of a stored model (issue 15, item 3).
 *
 * Progressive bit search as BFA defines it (Rakin, He, Fan, "Bit-Flip
 * Attack: Crushing Neural Network with Progressive Bit Search", ICCV 2019),
 * on the codes of a pc_faults_store: each pass takes the gradient of the
 * mean loss at the current weights, ranks every exposed bit of each
 * candidate layer by the first-order loss change of its flip, g_i *
 * (flipped value - value), evaluates the loss with each layer's best flip
 * applied alone, and commits the flip whose realised loss is highest; it
 * stops when the accuracy is at or below the target or after max_flips
 * flips. A candidate layer is one parameter tensor of the group that
 * exposes bits.
 *
 * Orders, so that a search is reproducible: a flipped value that is not
 * finite ranks as +inf or -inf by the sign of its change times the
 * gradient's, a NaN score ranks last, ties go to the lowest tensor, element
 * and bit; a realised loss that is not finite counts as +inf, ties go to
 * the lowest tensor.
 *
 * PC_BITSEARCH_BEST spends the same kind of work (gradients and single-flip
 * evaluations) differently: it evaluates the best few candidates of every
 * layer rather than one, and commits the flip that lowers the accuracy
 * most (the realised loss breaks ties), which is what the target asks.
 *
 * Evaluations resume from a prefix cache (prefix.h) with cuts at the first
 * reader of each tensor of the group, within PC_PREFIX_BYTES: each step's
 * gradient pass, at the weights with every committed flip, captures them,
 * and a candidate of tensor T, which changes nothing before T's first
 * reader, resumes from the deepest cut at or before it. Results are the
 * same bits as whole passes give. */
#ifndef PARACORR_BITSEARCH_H
#define PARACORR_BITSEARCH_H

#include <stdint.h>

#include <jansson.h>

#include "paracorr/data.h"
#include "paracorr/error.h"
#include "paracorr/eval.h"
#include "paracorr/faults.h"
#include "paracorr/runner.h"

enum pc_bitsearch_method {
	PC_BITSEARCH_BFA,
	PC_BITSEARCH_BEST,
};

/* Candidates BEST evaluates per layer unless told otherwise. Measured on
 * int8 per tensor, flips to 10% for 1, 2, 4, 8, 16 candidates: cnn_op17
 * (512 images) 19, 17, 15, 18, 12; mlp_op13 (512) >40, 40, 25, 19, 17;
 * resnet_op17 (256) 6, 6, 5, 5, 5. 16 would save about a quarter of the
 * flips again at four times the evaluations per pass. Committing by the realised loss,
 * as BFA does, with 4 candidates: 23, >40, 5. */
#define PC_BITSEARCH_BEST_CANDIDATES 4
/* More would be a slow search, not a better one. */
#define PC_BITSEARCH_MAX_CANDIDATES 1024

struct pc_bitsearch_opts {
	enum pc_bitsearch_method method;
	double target_accuracy; /* in [0, 1) */
	int max_flips;		/* >= 1 */
	int candidates;		/* BEST: per layer, 0 for the default; BFA: 1 */
	const char *group;	/* the group's name in the result ("model", "layer:fc1") */
	const int *params;	/* the group's parameter tensors, ascending */
	int n_params;
	pc_cancel_fn cancel; /* polled between passes and batches; may be NULL */
	void *cancel_arg;
	int no_cache; /* 1: every evaluation a whole pass (the same results) */
};

/* "bfa", "best". */
const char *pc_bitsearch_method_name(enum pc_bitsearch_method m);

struct pc_bitsearch_flip {
	int tensor;	  /* parameter table index */
	const char *name; /* the tensor's name, borrowed from the graph */
	int64_t index;	  /* flat element within the tensor */
	int bit;	  /* 0 = least significant bit of the code */
	float before, after;
	double loss, accuracy; /* after this flip, with every earlier one */
};

struct pc_bitsearch_result {
	enum pc_faults_format format;
	enum pc_bitsearch_method method;
	char *group; /* owned */
	double target_accuracy;
	int reached; /* the accuracy came to the target or below */
	struct pc_eval clean;
	struct pc_bitsearch_flip *flips; /* owned */
	int n_flips;
	int64_t gradients;   /* passes with a gradient, the clean one included */
	int64_t evaluations; /* passes without one */
	int64_t resumed;     /* of the evaluations, those resumed from a cut */
};

/* Searches the bits of s exposed in the group on runner r (whose plans have
 * PC_PLAN_GRAD and run pc_runner_graph(r), the graph s was encoded from)
 * over the samples of d. The runner's weights are overwritten with s's
 * decoded ones first. On return, success or not, s holds its original codes
 * and the runner the decoded weights of s again. Bad options are
 * PC_ERR_INVALID naming the field (faults.search.target_accuracy,
 * faults.search.max_flips, faults.search.method, faults.groups for a group
 * that exposes no bit). *out is filled on success; free it with
 * pc_bitsearch_result_free. */
int pc_bitsearch_run(struct pc_runner *r, const struct pc_dataset *d, struct pc_faults_store *s,
		     const struct pc_bitsearch_opts *o, struct pc_bitsearch_result *out, struct pc_error *err);
void pc_bitsearch_result_free(struct pc_bitsearch_result *res);

/* {"format", "group", "method", "target_accuracy", "reached",
 *  "clean": {"loss", "accuracy"}, "flips": [{"tensor", "index", "bit",
 *  "before", "after", "loss", "accuracy"}], "gradients", "evaluations",
 *  "resumed"},
 * numbers that are not finite as null. */
int pc_bitsearch_json(const struct pc_bitsearch_result *res, json_t **out, struct pc_error *err);

#endif
