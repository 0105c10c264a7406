/* job: one analysis job run start to finish, shared by `paracorr run` and
 * the daemon's workers so that both produce the same report bytes.
 *
 * spec -> model (ONNX) and dataset loaded -> input shape checked ->
 * pc_study_run -> report JSON text dumped with JSON_INDENT(2) |
 * JSON_REAL_PRECISION(17) (no trailing newline; the CLI adds one). */
#ifndef PARACORR_SERVER_JOB_H
#define PARACORR_SERVER_JOB_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "paracorr/analysis.h"
#include "paracorr/error.h"
#include "paracorr/graph.h"
#include "paracorr/data.h"
#include "paracorr/spec.h"
#include "job_ckpt.h"
#include "model_info.h"
#include "scrub.h"
#include "store.h"

struct pcd_blobs;

struct pcd_job_opts {
	int threads;	    /* compute threads for the study (>= 1) */
	/* harden jobs: where the hardened model is written (required), and a
	 * checkpoint file resumed from when it exists and rewritten after
	 * every epoch (NULL: none) */
	const char *model_out;
	const char *checkpoint;
	size_t cache_bytes; /* pc_study_opts.cache_bytes */
	int timing_seconds; /* pc_study_opts.timing_seconds */
	int profile;	    /* pc_study_opts.profile */
	pc_progress_fn progress;
	void *progress_arg;
	pc_cancel_fn cancel;
	void *cancel_arg;
	/* the job's estimated work (pc_spec_work) may not pass this many
	 * multiply-adds, checked once the model and data are loaded; 0: no
	 * bound (the daemon checks max_job_work at submission) */
	double max_work;
	/* the job's name and labels (a JSON object's text, the store's form),
	 * copied to the report's top level so that the file says what it is
	 * when it travels alone (compare, check, report --html); NULL, "" and
	 * "{}": none */
	const char *name;
	const char *labels;
	/* Sharded studies (analysis.h, store.h "sharded studies"). With a store
	 * and the job's id, an analyze job whose spec asks for shards runs its
	 * prefix and hands its items to shard jobs (*waiting = 1, no report),
	 * or, once they all succeeded, merges their parts into the report;
	 * without a store (the CLI) it runs whole, which gives the same report.
	 * auto_shards is what "shards": "auto" means (the workers setting). */
	struct pcd_store *store;
	const char *job_id;
	const char *claim_token; /* the attempt's, which the hand-over carries */
	const char *spec_text; /* the job's spec as submitted (pcd_job_run sets it) */
	int auto_shards;
	int *waiting;
	/* the row of the job kind table to run (NULL: the spec's kind): "shard"
	 * for a shard job, whose parent and items these are */
	const char *kind;
	const char *shard_parent;
	int64_t shard_first, shard_last;
};

/* The name of a sharded study's prefix state in the store (job_state). */
#define PCD_JOB_PREFIX_STATE "prefix"

/* A shard job's spec text: {"parent", "index", "first", "last", "spec"
 * (the parent's spec)}; parse gives back the parent's spec text (malloc'd)
 * and the rest. PC_ERR_FORMAT naming the field. */
int pcd_job_shard_spec(const char *parent_id, int index, int64_t first, int64_t last, const char *parent_spec,
		       char **text, struct pc_error *err);
int pcd_job_shard_spec_parse(const char *text, char parent_id[PCD_JOB_ID_LEN + 1], int *index, int64_t *first,
			     int64_t *last, char **parent_spec, struct pc_error *err);

/* The CLI's default max_work: the daemon's default max_job_work. */
#define PCD_DEFAULT_MAX_WORK_G 10000

/* Defaults: 1 thread, PC_STUDY_DEFAULT_CACHE, timing on, no callbacks, no
 * work bound. */
void pcd_job_opts_default(struct pcd_job_opts *o);

/* The files a spec's names resolve to (labels NULL when the inputs file
 * holds both); the training dataset's for harden jobs. */
struct pcd_job_files {
	const char *model, *inputs, *labels;
	const char *train_inputs, *train_labels;
};

/* Runs a parsed spec on files. The report echoes spec as given. On
 * success *report_text (malloc'd, caller frees) and, when report is not
 * NULL, *report (new reference) are set. PC_ERR_CANCELLED when the cancel
 * callback stopped it.
 *
 * A harden job (spec->has_training) studies the model, fine-tunes it with
 * ACT on the training dataset, writes the hardened model to o->model_out,
 * and studies it again; its report is {version, kind "harden", spec,
 * model, dataset, training {epochs: [{epoch, loss, accuracy,
 * loss_corrupted, accuracy_corrupted, lr, seconds}], ...}, before, after,
 * hardened {parameters, weight_change_l2}}, before and after being the two
 * studies' reports without their spec. */
int pcd_job_run_spec(const struct pc_spec *spec, const struct pcd_job_files *files, const struct pcd_job_opts *o,
		     char **report_text, json_t **report, struct pc_error *err);

/* Runs a job spec as the API takes it: spec_text is JSON whose "model" is
 * a model id and whose "dataset" is a dataset id (a string). The job's
 * kind checks it again (the check of the submission, against store), and
 * the ids it references are resolved to blob paths, which never appear in
 * errors (they name "model", "inputs" or "labels" instead). Errors as
 * pcd_job_run_spec; a spec error keeps the field path in err->where. */
int pcd_job_run(const char *spec_text, struct pcd_store *store, struct pcd_blobs *blobs,
		const struct pcd_job_opts *o, char **report_text, struct pc_error *err);

/* --- the kinds of job -------------------------------------------------------
 *
 * A job kind is a row: its name (the spec's kind), check, run, the artifact
 * it leaves (a model file in the job's artifacts directory, registered as a
 * model of the service and recorded in the store; NULL: none) and the spec
 * fields that name uploads. A new kind is a new row; nothing else asks
 * which kind a job is. */

/* A spec field naming an upload: offsets of its id (or the CLI's path)
 * and labels path in struct pc_spec (spec_labels 0: none), of the paths
 * it resolves to in struct pcd_job_files, and the names those paths go by
 * in errors. */
struct pcd_job_ref_field {
	const char *field; /* "training.dataset" */
	const char *what;  /* "training dataset", in messages */
	enum pcd_upload upload;
	size_t spec_id, spec_labels;
	size_t files_path, files_labels;
	const char *hide[2];
};

struct pcd_job_kind;
/* The single validation of a job, at submission (the routes) and at run
 * time (pcd_job_run): every upload the kind's fields name is a record
 * scope sees (PCD_ALL_TENANTS: any), given by id, with labels the model
 * can score; the work estimate is within max_work (<= 0: no bound). Fills
 * refs with every upload the job references. PC_ERR_INVALID naming the
 * field, PC_ERR_TOO_MUCH_WORK. */
typedef int (*pcd_job_check_fn)(const struct pcd_job_kind *k, const struct pc_spec *spec, struct pcd_store *store,
				const char *scope, double max_work, struct pcd_job_refs *refs, struct pc_error *err);
/* Runs the job on its loaded model g and evaluation dataset d; *report
 * (new reference) without the timing of the load. */
typedef int (*pcd_job_run_fn)(const struct pc_spec *spec, const struct pc_preprocess *pp, struct pc_graph *g,
			      const struct pc_dataset *d, const struct pcd_job_files *files,
			      const struct pcd_job_opts *o, json_t **report, struct pc_error *err);

struct pcd_job_kind {
	const char *name;
	pcd_job_check_fn check;
	pcd_job_run_fn run;
	const char *artifact;
	const struct pcd_job_ref_field *const *refs; /* NULL-terminated */
};

/* The row of kind name; NULL when there is none. */
const struct pcd_job_kind *pcd_job_kind_find(const char *name);
/* The check both rows use (pcd_job_check_fn). */
int pcd_job_check(const struct pcd_job_kind *k, const struct pc_spec *spec, struct pcd_store *store,
		  const char *scope, double max_work, struct pcd_job_refs *refs, struct pc_error *err);

struct pcd_store;
/* The checks on the job's model that need no load of it, from the stored
 * descriptions of its model and datasets as tenant sees them (NULL: any
 * tenant's): pc_spec_check_model, then the estimated work (pc_spec_work)
 * against max_work (multiply-adds; <= 0: no bound): PC_ERR_TOO_MUCH_WORK
 * naming max_job_work, the estimate and the limit. */
int pcd_job_check_work(struct pcd_store *store, const char *tenant, const struct pc_spec *spec, double max_work,
		       struct pc_error *err);

#endif
