/* spec: the job spec of design.md, parsed and checked.
 *
 * Every field has a default; a bad field fails with its JSON path and the
 * values it accepts (`corruption.epsilons[2]: must be > 0`). Unknown fields
 * are errors too, so a typo never silently runs the default. The report
 * echoes pc_spec_to_json: the spec with every default filled in. */
#ifndef PARACORR_SPEC_H
#define PARACORR_SPEC_H

#include <jansson.h>
#include <stdint.h>

#include "paracorr/data.h"
#include "paracorr/error.h"
#include "paracorr/faults.h"
#include "paracorr/graph.h"

#define PC_SPEC_MAX_NORMS 16
#define PC_SPEC_MAX_EPSILONS 64
#define PC_SPEC_MAX_SPARSITY 16
#define PC_SPEC_MAX_TRIALS 1000
#define PC_SPEC_MAX_STEPS 1000
#define PC_SPEC_MAX_EPOCHS 1000
#define PC_SPEC_MAX_FORMATS 4
#define PC_SPEC_MAX_BER 16
#define PC_SPEC_MAX_BIT_WEIGHTS 1000000
#define PC_SPEC_MAX_FLIPS 10000

enum pc_group_kind {
	PC_GROUP_MODEL = 1,
	PC_GROUP_TENSOR = 2,
	PC_GROUP_LAYER = 4,
};

enum pc_eps_scale {
	PC_EPS_ABSOLUTE,
	PC_EPS_RMS,	 /* eps * sqrt(|P|) */
	PC_EPS_RELATIVE, /* eps * ||w_P||_p */
};

#define PC_SPEC_MAX_BLOCKS 8

/* One block of corruption settings. A spec holds one (the design's
 * "corruption" object) or several (an array of such objects), each run on
 * its own groups, e.g. a model-wide sweep and a per-tensor probe. */
struct pc_corruption {
	int n_norms;
	double norms[PC_SPEC_MAX_NORMS]; /* p >= 1; INFINITY for linf */
	int n_epsilons;
	double epsilons[PC_SPEC_MAX_EPSILONS];
	int n_sparsity;
	int64_t sparsity[PC_SPEC_MAX_SPARSITY]; /* 0 = dense */
	enum pc_eps_scale epsilon_scale;
	int random_trials; /* trials per setting; with sequential trials, the most */
	/* sequential trials ("random_trials": {"min", "max", "ci_halfwidth"}):
	 * per setting, trials run until every radius's 95% accuracy interval
	 * is at most ci_halfwidth wide on each side, from trials_min on, or
	 * random_trials ran */
	int trials_sequential;
	int trials_min;
	double trials_ci_halfwidth;
	int steps;
	unsigned groups; /* enum pc_group_kind bits */
	int n_group_order;
	enum pc_group_kind group_order[3]; /* as the spec listed them */
	/* "critical": the critical radius of every setting (critical.h) */
	int has_critical;
	double critical_drop;	   /* accuracy_drop, in (0, 1] */
	double critical_tolerance; /* relative, in (0, 0.5]; default 0.01 */
};

#define PC_SPEC_MAX_ACT_GROUP 64

/* The "training" block of a harden job: fine-tuning with ACT (train.h). */
struct pc_training {
	char *inputs;	/* training dataset: inputs path, or a dataset id (API); owned */
	char *labels;	/* its labels path; NULL with an id or a one-file dataset; owned */
	int64_t limit;	/* 0 = all samples */
	int epochs, batch_size;
	int adam;	/* optimizer: 0 "sgd", 1 "adam" */
	int cosine;	/* schedule: 0 "constant", 1 "cosine" */
	double lr, momentum, weight_decay;
	uint64_t seed;
	double act_p, act_epsilon, act_lambda;
	int64_t act_sparsity;
	int act_steps;
	int n_act_group; /* 0: the whole model */
	char *act_group[PC_SPEC_MAX_ACT_GROUP]; /* tensor or node (layer) names; owned */
};

enum pc_faults_method {
	PC_FAULTS_SEARCH_BEST, /* paracorr's search (the default) */
	PC_FAULTS_SEARCH_BFA,  /* plain progressive bit search, Rakin et al. 2019 */
};

/* The "faults" block of an analyze job (issue 15): bit flips in the
 * weights as stored in each format. */
struct pc_faults_spec {
	int n_formats;
	enum pc_faults_format formats[PC_SPEC_MAX_FORMATS]; /* as the spec listed them */
	enum pc_faults_scaling quantization;		    /* int8's scales */
	int n_ber;					    /* 0: no random trials */
	double ber[PC_SPEC_MAX_BER];			    /* each in (0, 1) */
	int trials;					    /* seeded trials per ber */
	/* per bit position: the accuracy with that bit flipped in bits_weights
	 * random weights, over bits_trials trials; "bits": true is
	 * {"weights": 1, "trials": trials} */
	int has_bits;
	int bits_weights, bits_trials;
	unsigned groups; /* enum pc_group_kind bits */
	int n_group_order;
	enum pc_group_kind group_order[3]; /* as the spec listed them */
	int has_search;			   /* the worst-case bit search */
	double target_accuracy;		   /* stop at or below it, in [0, 1) */
	int max_flips;
	enum pc_faults_method method;
};

#define PC_SPEC_MAX_EIGENVALUES 20

/* The "curvature" block of an analyze job (curvature.h): the
 * Hessian of the mean loss, for the whole model and for each group of the
 * kinds listed (tensor, layer; "model" is always there), and the
 * second-order estimate of every gradient corruption's loss change. */
struct pc_curvature_spec {
	int eigenvalues;   /* the top k, 1 .. PC_SPEC_MAX_EIGENVALUES; default 1 */
	int iterations;	   /* Lanczos products at most, eigenvalues .. PC_CURV_MAX_ITERATIONS; default 100 */
	int trace_samples; /* Hutchinson vectors, 0 (no trace) .. PC_SPEC_MAX_TRIALS; default 20 */
	unsigned groups;   /* enum pc_group_kind bits */
	int n_group_order;
	enum pc_group_kind group_order[3];
	int second_order; /* each gradient result's second_order; default 1 */
};

struct pc_spec {
	char kind[16];	   /* "analyze" or "harden" */
	char *model;	   /* path (CLI) or id (API); owned */
	char *inputs;	   /* dataset inputs path, or the dataset id (API); owned */
	char *labels;	   /* dataset labels path; NULL with a dataset id; owned */
	int64_t limit;	   /* 0 = all samples */
	int batch_size;
	uint64_t seed;
	struct pc_preprocess pp;
	int pp_scale_given; /* the spec set preprocess.scale */
	int n_blocks;
	int blocks_as_array; /* "corruption" was an array: echo it as one */
	struct pc_corruption blocks[PC_SPEC_MAX_BLOCKS];
	int has_training; /* kind "harden" */
	struct pc_training training;
	int has_faults; /* kind "analyze" only */
	struct pc_faults_spec faults;
	int has_curvature; /* kind "analyze" only */
	struct pc_curvature_spec curvature;
	/* "shards": how the daemon splits the study (analysis.h, "the study in
	 * shards"): 1 .. 64, or PC_SPEC_SHARDS_AUTO (the daemon's rule); default
	 * 1. How a study runs, not what it computes: the report's spec leaves it
	 * out, so a sharded report equals the unsharded one byte for byte. */
	int shards;
};

#define PC_SPEC_SHARDS_AUTO 0
#define PC_SPEC_SHARDS_MAX 64

/* Parses root into *spec (which the caller frees with pc_spec_free). */
int pc_spec_parse(const json_t *root, struct pc_spec *spec, struct pc_error *err);
int pc_spec_parse_file(const char *path, struct pc_spec *spec, struct pc_error *err);
void pc_spec_free(struct pc_spec *spec);

/* The spec with every default filled in (new reference). */
json_t *pc_spec_to_json(const struct pc_spec *spec);


/* --- the work budget -------------------------------------------------------
 *
 * A job's estimated work, in multiply-adds, from the spec and the model
 * before it runs: every per-field bound can hold while their product plans
 * a billion passes. A pass is one forward (or forward and backward) run
 * over the samples it reads, costed at samples x parameters plus a fixed
 * PC_WORK_PER_PASS for what every pass costs whatever its size (writing
 * the corrupted weights, the threads' hand-over):
 *
 *   analyze: S x (n x P + C)        S = passes of the study (below)
 *   harden:  2 x S x (n x P + C) + E x (1 + K) x (m x P + C)
 *
 * n samples of the dataset (after limit), m of the training dataset, P
 * parameters, E epochs, K ACT steps (0 without ACT). A study makes
 * 1 + sum over groups of norms x sparsity x epsilons x (steps' + trials)
 * passes, steps' = steps + 1 when steps > 1, else 1, with one group for
 * "model", one per parameter tensor for "tensor", one per layer (node with
 * parameters) for "layer", in every corruption block. A block with
 * "critical" adds per group, norm and sparsity the search's bound,
 * PC_CRITICAL_MAX_EVALUATIONS x (steps' + trials) (the gradient's search
 * and the random one, each evaluation of the random one all the trials). A faults block adds,
 * per group G of its groups (counted the same way) and per format:
 *
 *   1 + B x T + (bits ? b x T' : 0) + (search ? F x (1 + t_G) + 1 : 0)
 *
 * the format's clean pass, T trials for each of the B bit error rates,
 * T' trials for each of the format's b bits per code (32, 16, 16, 8), and
 * a search of at most F flips, each a gradient pass and c candidates per
 * tensor of G (c = 1 for "bfa", PC_BITSEARCH_BEST_CANDIDATES for "best") (t_G: every tensor for "model", 1 for a tensor, the layer's
 * own, which over all the layers are every tensor once), and one pass to
 * start it. A curvature block adds, per group of the model and of its
 * kinds, 3 x (iterations + trace_samples) (a Hessian-vector product is a
 * forward pass and two forward and backward ones), and with second_order
 * 3 per gradient setting of every block (one per radius with steps > 1). */
#define PC_WORK_PER_PASS 1e6

/* What the estimate needs of a model. */
struct pc_work_model {
	int64_t parameters;
	int64_t tensors;     /* parameter tensors */
	int64_t layers;	     /* nodes that read parameters */
	int64_t quantizable; /* int8-quantizable tensors (pc_faults_quantizable); -1 unknown */
};

/* The checks that need the model, on what the estimate knows of it (so the
 * daemon makes them at submission from the stored description, and a run
 * again on the loaded graph): "int8" among the faults formats on a model
 * without an int8-quantizable parameter tensor fails on faults.formats[i];
 * nothing is refused when m->quantizable is unknown. */
int pc_spec_check_model(const struct pc_spec *spec, const struct pc_work_model *m, struct pc_error *err);

void pc_work_model_of(const struct pc_graph *g, struct pc_work_model *m);
/* The passes of the spec's faults block (0 without one), as the formula
 * above counts them: an upper bound, as a search may stop early. */
double pc_spec_fault_passes(const struct pc_spec *spec, const struct pc_work_model *m);
/* The passes of the spec's curvature block (0 without one), as above. */
double pc_spec_curvature_passes(const struct pc_spec *spec, const struct pc_work_model *m);
/* Passes one study of the spec makes (its clean pass included). */
double pc_spec_study_passes(const struct pc_spec *spec, const struct pc_work_model *m);
/* The estimate above; samples and train_samples before the spec's limits
 * (which it applies). */
double pc_spec_work(const struct pc_spec *spec, const struct pc_work_model *m, int64_t samples,
		    int64_t train_samples);
/* PC_ERR_TOO_MUCH_WORK naming max_job_work, the estimate and the limit when the
 * estimate passes max_work (multiply-adds; <= 0: no bound). */
int pc_spec_check_work(const struct pc_spec *spec, const struct pc_work_model *m, int64_t samples,
		       int64_t train_samples, double max_work, struct pc_error *err);

/* "l1", "l2", "linf" or the number. */
json_t *pc_spec_norm_json(double p);
const char *pc_eps_scale_name(enum pc_eps_scale s);

#endif
