/* limits: the process-wide caps on what one model, dataset or plan may
 * cost, so that a small hostile file cannot make the loaders build a large
 * structure. The loaders read them; a program sets them once at startup
 * (paracorrd from its settings, paracorr from its defaults) before any
 * thread loads anything. Every cap is checked before the memory it guards
 * is allocated, and a refusal is PC_ERR_LIMIT naming the cap. */
#ifndef PARACORR_LIMITS_H
#define PARACORR_LIMITS_H

#include <stdint.h>

struct pc_limits {
	int64_t max_nodes;	    /* nodes of one ONNX graph */
	int64_t max_values;	    /* its named values: initializers, inputs, node outputs */
	uint64_t max_plan_bytes;    /* activations, their gradients, workspace and op state of one plan */
	uint64_t max_decoded_bytes; /* one dataset's decoded samples and labels */
};

#define PC_LIMITS_DEFAULT_NODES 200000
#define PC_LIMITS_DEFAULT_VALUES 1000000
#define PC_LIMITS_DEFAULT_PLAN_MB 4096
#define PC_LIMITS_DEFAULT_DECODED_MB 2048

/* Replaces the caps in force (not thread-safe: call before loading). */
void pc_limits_set(const struct pc_limits *l);
const struct pc_limits *pc_limits_get(void);

#endif
