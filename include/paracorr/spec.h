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
#include "paracorr/graph.h"

#define PC_SPEC_MAX_NORMS 16
#define PC_SPEC_MAX_EPSILONS 64
#define PC_SPEC_MAX_SPARSITY 16
#define PC_SPEC_MAX_TRIALS 1000
#define PC_SPEC_MAX_STEPS 1000
#define PC_SPEC_MAX_EPOCHS 1000

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
	int random_trials;
	int steps;
	unsigned groups; /* enum pc_group_kind bits */
	int n_group_order;
	enum pc_group_kind group_order[3]; /* as the spec listed them */
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
};

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
 * parameters) for "layer", in every corruption block. */
#define PC_WORK_PER_PASS 1e6

/* What the estimate needs of a model. */
struct pc_work_model {
	int64_t parameters;
	int64_t tensors; /* parameter tensors */
	int64_t layers;	 /* nodes that read parameters */
};

void pc_work_model_of(const struct pc_graph *g, struct pc_work_model *m);
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
