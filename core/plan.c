/* plan: prepare a finished graph for one batch size, and run it.
 *
 * Preparation walks the nodes once: each op's infer sets its output shapes
 * and folds int64 shape arithmetic; then one arena holds every activation,
 * a second every activation gradient, and one workspace serves all nodes.
 * Reshape-like ops alias their input instead of copying. Parameter tensors
 * point into one flat array of weights, the plan's own copy or one its owner
 * shares among plans, so writing that array is all it takes to run a
 * corrupted model. */
#include "graph_int.h"

#include <stdlib.h>
#include <string.h>

#include "paracorr/limits.h"
#include "paracorr/sys.h"

#define ARENA_ALIGN 16 /* floats: 64 bytes */

static size_t round_up(int64_t n)
{
	return (size_t)((n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
}

static void *alloc_floats(size_t n)
{
	size_t bytes = (n ? n : 1) * sizeof(float);

	void *p;

	bytes = (bytes + 63) / 64 * 64;
	p = aligned_alloc(64, bytes);
	pc_sys_advise_huge(p, bytes);
	return p;
}

/* 64-byte aligned floats that read as zero without being cleared: calloc
 * hands a large block out as fresh zero pages, which cost nothing until
 * written. The block's own address is kept just below the one returned,
 * for free_zeroed_floats. */
static float *alloc_zeroed_floats(size_t n)
{
	char *raw = calloc(1, (n ? n : 1) * sizeof(float) + 64 + sizeof(void *));
	uintptr_t at;

	if (!raw)
		return NULL;
	pc_sys_advise_huge(raw, (n ? n : 1) * sizeof(float) + 64 + sizeof(void *));
	at = ((uintptr_t)raw + sizeof(void *) + 63) / 64 * 64;
	memcpy((char *)at - sizeof(void *), &raw, sizeof(raw));
	return (float *)at;
}

static void free_zeroed_floats(float *f)
{
	void *raw;

	if (!f)
		return;
	memcpy(&raw, (char *)f - sizeof(void *), sizeof(raw));
	free(raw);
}

/* Aliases share their root's storage; walk in node order so chains
 * resolve. Run again whenever a root's pointers change. */
static void resolve_aliases(struct pc_plan *p)
{
	const struct pc_graph *g = p->g;

	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];
		if (!pc_plan_aliases(p, n))
			continue;
		struct pc_tensor *in = &p->t[n->in[0]], *out = &p->t[n->out[0]];
		out->data = in->data;
		out->grad = in->grad;
		out->ival = in->ival;
	}
}

/* Parameter values read p->w; param >= 0 binds that parameter's values
 * to data instead (NULL: back to p->w). */
static void bind_params(struct pc_plan *p, int param, const float *data)
{
	const struct pc_graph *g = p->g;

	for (int v = 0; v < g->n_values; v++) {
		const struct pc_value *val = &g->values[v];
		if (val->kind != PC_VALUE_PARAM || (param >= 0 && val->param != param))
			continue;
		/* the plan never writes a parameter: data stays the caller's */
		p->t[v].data = data ? (float *)(uintptr_t)data : p->w + g->ptab[val->param].offset;
	}
}

/* Parameter values add their gradient into p->gw. */
static void bind_grads(struct pc_plan *p)
{
	const struct pc_graph *g = p->g;

	for (int v = 0; v < g->n_values; v++)
		if (g->values[v].kind == PC_VALUE_PARAM)
			p->t[v].grad = p->gw ? p->gw + g->ptab[g->values[v].param].offset : NULL;
}

static int init_graph_values(struct pc_plan *p, struct pc_error *err)
{
	const struct pc_graph *g = p->g;

	for (int v = 0; v < g->n_values; v++) {
		const struct pc_value *val = &g->values[v];
		struct pc_tensor *t = &p->t[v];
		if (val->kind == PC_VALUE_ACT)
			continue;
		t->dtype = val->dtype;
		t->shape = val->shape;
		if (val->kind == PC_VALUE_INPUT) {
			for (int i = 0; i < t->shape.ndim; i++) {
				if (i == 0 && t->shape.dim[0] == -1)
					t->shape.dim[0] = p->batch;
				else if (i == 0 && t->shape.dim[0] != p->batch)
					return pc_error_set(err, PC_ERR_INVALID, val->name,
							    "input has a fixed batch of %lld; use batch size %lld",
							    (long long)t->shape.dim[0], (long long)t->shape.dim[0]);
				else if (t->shape.dim[i] <= 0)
					return pc_error_set(err, PC_ERR_UNSUPPORTED, val->name,
							    "input dimension %d is symbolic or empty; only the batch "
							    "axis may be",
							    i);
			}
			if (t->shape.ndim < 1)
				return pc_error_set(err, PC_ERR_UNSUPPORTED, val->name, "input is a scalar");
		}
		if (pc_shape_numel(&t->shape, &t->numel, val->name, err))
			return PC_ERR_SHAPE;
		if (val->kind == PC_VALUE_CONST) {
			t->is_static = 1;
			t->data = val->fdata;
			t->ival = val->idata;
		}
	}
	bind_params(p, -1, NULL);
	bind_grads(p);
	return PC_OK;
}

/* The buffers a training pass moves in place (the op table's stats_inputs)
 * get a copy of the plan's own: the graph is shared and read-only, and
 * training one plan must not move another's. Only float initializers can
 * be moved; others stay as they are, for the trainer to refuse. */
static int own_stats(struct pc_plan *p, struct pc_error *err)
{
	const struct pc_graph *g = p->g;

	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];

		for (int i = 0; i < n->n_in; i++) {
			int v = n->in[i];
			struct pc_tensor *t = v >= 0 ? &p->t[v] : NULL;

			if (!t || !(pc_op_table[n->op].stats_inputs & (1u << i)) || g->values[v].kind != PC_VALUE_CONST ||
			    t->dtype != PC_DTYPE_FLOAT || !t->data || t->owned)
				continue;
			if (!(t->owned = malloc((size_t)t->numel * sizeof(float) + 1)))
				return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory for input %d", i);
			memcpy(t->owned, t->data, (size_t)t->numel * sizeof(float));
			t->data = t->owned;
			p->stats[p->n_stats++] = v;
		}
	}
	return PC_OK;
}

/* Whether every input of n is known before the run: constants and static
 * values. Parameters are not (they are corrupted), nor is the data input. */
static int all_inputs_static(const struct pc_plan *p, const struct pc_node *n)
{
	for (int i = 0; i < n->n_in; i++)
		if (n->in[i] >= 0 && !p->t[n->in[i]].is_static)
			return 0;
	return 1;
}

/* Static storage of output i, counted against the plan's budget. */
static int static_storage(struct pc_plan *p, const struct pc_node *n, struct pc_tensor *t, int i,
			  struct pc_error *err)
{
	size_t bytes = (size_t)t->numel * pc_dtype_size(t->dtype);

	if (t->numel > PC_PLAN_MAX_STATIC_ELEMENTS)
		return pc_node_error(err, n, PC_ERR_LIMIT, "constant output %d has %lld elements (at most %lld)", i,
				     (long long)t->numel, (long long)PC_PLAN_MAX_STATIC_ELEMENTS);
	if (pc_plan_count_static(p, bytes, err))
		return pc_node_error(err, n, PC_ERR_LIMIT,
				     "constants computed at load would pass %d MiB in all (output %d adds %zu bytes)",
				     (int)(PC_PLAN_MAX_STATIC_BYTES >> 20), i, bytes);
	free(t->owned);
	t->owned = calloc((size_t)t->numel + 1, pc_dtype_size(t->dtype));
	if (!t->owned)
		return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory for constant output %d", i);
	if (t->dtype == PC_DTYPE_FLOAT)
		t->data = t->owned;
	else
		t->ival = t->owned;
	t->is_static = 1;
	return PC_OK;
}

/* Constant folding: node k's inputs are all static, so its outputs are
 * computed once, here, by the op's own forward, and become static. Ops
 * never fold by hand; shape subgraphs (Shape, Gather, Range, Where, ...)
 * and masks become constants at load. */
static int fold_node(struct pc_plan *p, int k, struct pc_error *err)
{
	const struct pc_node *n = &p->g->nodes[k];
	int rc;

	for (int j = 0; j < n->n_out; j++) {
		struct pc_tensor *t;
		if (n->out[j] < 0)
			continue;
		t = &p->t[n->out[j]];
		if (!t->is_static && (rc = static_storage(p, n, t, j, err)))
			return rc;
	}
	/* the op may use the shared workspace and its own state, which
	 * allocate() has not handed out yet */
	if (p->ws_floats > p->fold_ws_floats) {
		if (p->ws_floats > pc_limits_get()->max_plan_bytes / sizeof(float))
			return pc_node_error(err, n, PC_ERR_LIMIT,
					     "folding it at load needs a workspace of %llu bytes; the plan's limit "
					     "(max_plan_mb) is %llu MiB",
					     (unsigned long long)p->ws_floats * sizeof(float),
					     (unsigned long long)(pc_limits_get()->max_plan_bytes >> 20));
		free(p->ws);
		p->ws = alloc_floats(p->ws_floats);
		if (!p->ws)
			return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory for the workspace");
		p->fold_ws_floats = p->ws_floats;
	}
	if (p->state_floats[k] && !p->state[k]) {
		if (p->state_floats[k] > pc_limits_get()->max_plan_bytes / sizeof(float))
			return pc_node_error(err, n, PC_ERR_LIMIT,
					     "its state needs %llu bytes; the plan's limit (max_plan_mb) is %llu MiB",
					     (unsigned long long)p->state_floats[k] * sizeof(float),
					     (unsigned long long)(pc_limits_get()->max_plan_bytes >> 20));
		p->state[k] = alloc_zeroed_floats(p->state_floats[k]);
		if (!p->state[k])
			return pc_node_error(err, n, PC_ERR_NOMEM, "out of memory for the node's state");
	}
	pc_op_table[n->op].forward(p, n);
	return PC_OK;
}

int pc_plan_count_static(struct pc_plan *p, size_t bytes, struct pc_error *err)
{
	if (bytes > PC_PLAN_MAX_STATIC_BYTES - p->static_bytes)
		return PC_ERR_LIMIT;
	p->static_bytes += bytes;
	return PC_OK;
}

static int infer_nodes(struct pc_plan *p, unsigned char *need, struct pc_error *err)
{
	const struct pc_graph *g = p->g;

	for (int v = 0; v < g->n_values; v++) {
		enum pc_value_kind kind = g->values[v].kind;
		need[v] = (kind == PC_VALUE_PARAM && (p->flags & PC_PLAN_GRAD)) ||
			  (kind == PC_VALUE_INPUT && (p->flags & PC_PLAN_INPUT_GRAD));
	}
	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];
		const struct pc_op_def *d = &pc_op_table[n->op];
		int any_need = 0, any_runtime = 0, rc;

		for (int i = 0; i < n->n_in; i++) {
			if (n->in[i] < 0)
				continue;
			if (p->t[n->in[i]].dtype == PC_DTYPE_UNDEFINED)
				return pc_node_error(err, n, PC_ERR_INTERNAL, "input %d has no type", i);
			any_need |= need[n->in[i]];
		}
		size_t ws_before = p->ws_floats;
		rc = d->infer(p, n, err);
		if (rc)
			return rc;
		if (p->ws_floats > ws_before)
			p->ws_node = k;
		for (int j = 0; j < n->n_out; j++) {
			struct pc_tensor *t;
			if (n->out[j] < 0)
				continue;
			t = &p->t[n->out[j]];
			if (t->dtype == PC_DTYPE_UNDEFINED)
				return pc_node_error(err, n, PC_ERR_INTERNAL, "output %d was not inferred", j);
			if (!t->is_static)
				any_runtime = 1;
		}
		if (pc_plan_aliases(p, n)) {
			struct pc_tensor *in = &p->t[n->in[0]], *out = &p->t[n->out[0]];
			if (in->numel != out->numel || in->dtype != out->dtype)
				return pc_node_error(err, n, PC_ERR_INTERNAL, "aliased output differs in size");
			out->is_static = in->is_static;
			if (in->is_static) {
				/* a later fold may read it before allocate() resolves aliases */
				out->data = in->data;
				out->ival = in->ival;
			}
			need[n->out[0]] = need[n->in[0]];
			p->run_fwd[k] = 0;
			p->run_bwd[k] = 0;
			continue;
		}
		if (any_runtime && d->forward && all_inputs_static(p, n)) {
			if ((rc = fold_node(p, k, err)))
				return rc;
			any_runtime = 0;
		}
		p->run_fwd[k] = d->forward && any_runtime;
		p->run_bwd[k] = d->backward && any_need;
		for (int j = 0; j < n->n_out; j++)
			if (n->out[j] >= 0)
				need[n->out[j]] = p->run_bwd[k] && p->t[n->out[j]].dtype == PC_DTYPE_FLOAT &&
						  !p->t[n->out[j]].is_static;
	}
	return PC_OK;
}

/* Whether node n's output shares its input's storage in plan p. Dropout
 * does except when training, where it draws a mask (the op table's
 * train_unalias). */
int pc_plan_aliases(const struct pc_plan *p, const struct pc_node *n)
{
	return pc_op_table[n->op].alias && !(pc_op_table[n->op].train_unalias && (p->flags & PC_PLAN_TRAIN));
}

/* The plan's memory against max_plan_mb, from the sizes inferred shapes
 * ask for, before any of it is allocated: act and gact floats of the
 * arenas, the shared workspace, every node's state. A refusal names what
 * asks for the most: the largest activation (with its gradient) and the
 * node that makes it, or the node whose workspace or state it is. */
static int check_budget(const struct pc_plan *p, size_t act, size_t gact, int big_v, size_t big_floats,
			struct pc_error *err)
{
	const struct pc_graph *g = p->g;
	uint64_t limit = pc_limits_get()->max_plan_bytes, cap = limit / sizeof(float);
	uint64_t floats = (uint64_t)act + gact + p->ws_floats;
	int big_state = -1;
	char buf[96];

	for (int k = 0; k < g->n_nodes; k++) {
		floats += p->state_floats[k];
		if (p->state_floats[k] && (big_state < 0 || p->state_floats[k] > p->state_floats[big_state]))
			big_state = k;
	}
	if (floats <= cap)
		return PC_OK;
	if (p->ws_node >= 0 && p->ws_floats >= big_floats &&
	    (big_state < 0 || p->ws_floats >= p->state_floats[big_state]))
		return pc_node_error(err, &g->nodes[p->ws_node], PC_ERR_LIMIT,
				     "at batch %d the plan needs %llu bytes, over max_plan_mb (%llu MiB); this node's "
				     "workspace is %llu bytes of it",
				     p->batch, (unsigned long long)(floats * sizeof(float)),
				     (unsigned long long)(limit >> 20), (unsigned long long)(p->ws_floats * sizeof(float)));
	if (big_state >= 0 && p->state_floats[big_state] >= big_floats)
		return pc_node_error(err, &g->nodes[big_state], PC_ERR_LIMIT,
				     "at batch %d the plan needs %llu bytes, over max_plan_mb (%llu MiB); this node's "
				     "state is %llu bytes of it",
				     p->batch, (unsigned long long)(floats * sizeof(float)),
				     (unsigned long long)(limit >> 20),
				     (unsigned long long)(p->state_floats[big_state] * sizeof(float)));
	if (big_v >= 0 && g->values[big_v].producer >= 0)
		return pc_node_error(err, &g->nodes[g->values[big_v].producer], PC_ERR_LIMIT,
				     "at batch %d the plan needs %llu bytes, over max_plan_mb (%llu MiB); this node's "
				     "output '%s' of shape %s is %llu bytes of it",
				     p->batch, (unsigned long long)(floats * sizeof(float)),
				     (unsigned long long)(limit >> 20), g->values[big_v].name,
				     pc_shape_format(&p->t[big_v].shape, buf, sizeof(buf)),
				     (unsigned long long)(big_floats * sizeof(float)));
	return pc_error_set(err, PC_ERR_LIMIT, big_v >= 0 ? g->values[big_v].name : "plan",
			    "at batch %d the plan needs %llu bytes, over max_plan_mb (%llu MiB)", p->batch,
			    (unsigned long long)(floats * sizeof(float)), (unsigned long long)(limit >> 20));
}

struct grad_block {
	size_t off, floats;
};

static int by_offset(const void *a, const void *b)
{
	const struct grad_block *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Offsets in the activation-gradient arena, by liveness. The gradient of a
 * root of storage (with its aliases) is first written by the backward of
 * its last reader (seeded before any, for the output) and last read by its
 * producer's, after which pc_plan_backward clears it: gradients whose spans
 * of nodes do not meet share floats. The input's lasts to the end, for the
 * caller. First fit, in value order. off[v] for every root that gets a
 * gradient, *total the arena's floats. */
static int layout_grads(const struct pc_plan *p, const unsigned char *need, const int *root, size_t *off,
			size_t *total, struct pc_error *err)
{
	const struct pc_graph *g = p->g;
	int *lo = malloc(((size_t)g->n_values + 1) * sizeof(int));
	int *hi = malloc(((size_t)g->n_values + 1) * sizeof(int));
	int *placed = malloc(((size_t)g->n_values + 1) * sizeof(int));
	struct grad_block *meet = malloc(((size_t)g->n_values + 1) * sizeof(*meet));
	int n_placed = 0;

	*total = 0;
	if (!lo || !hi || !placed || !meet) {
		free(lo);
		free(hi);
		free(placed);
		free(meet);
		return pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory");
	}
	for (int v = 0; v < g->n_values; v++) {
		const struct pc_tensor *t = &p->t[v];
		enum pc_value_kind kind = g->values[v].kind;
		lo[v] = hi[v] = -2; /* no gradient of its own */
		if (t->dtype != PC_DTYPE_FLOAT || t->is_static || root[v] != v || !need[v] ||
		    (kind != PC_VALUE_ACT && kind != PC_VALUE_INPUT))
			continue;
		lo[v] = hi[v] = kind == PC_VALUE_INPUT ? -1 : g->values[v].producer;
	}
	for (int v = 0; v < g->n_values; v++) {
		int r = root[v];
		if (lo[r] == -2)
			continue;
		if (p->last_use[v] > hi[r])
			hi[r] = p->last_use[v];
		if (v == g->output)
			hi[r] = g->n_nodes;
	}
	for (int v = 0; v < g->n_values; v++) {
		size_t floats = round_up(p->t[v].numel), at = 0;
		int n_meet = 0;
		if (lo[v] == -2)
			continue;
		for (int j = 0; j < n_placed; j++) {
			int u = placed[j];
			if (lo[u] <= hi[v] && lo[v] <= hi[u])
				meet[n_meet++] = (struct grad_block){off[u], round_up(p->t[u].numel)};
		}
		qsort(meet, (size_t)n_meet, sizeof(*meet), by_offset);
		for (int j = 0; j < n_meet && meet[j].off < at + floats; j++)
			if (meet[j].off + meet[j].floats > at)
				at = meet[j].off + meet[j].floats;
		off[v] = at;
		placed[n_placed++] = v;
		if (at + floats > *total)
			*total = at + floats;
	}
	free(lo);
	free(hi);
	free(placed);
	free(meet);
	return PC_OK;
}

static int allocate(struct pc_plan *p, const unsigned char *need, struct pc_error *err)
{
	const struct pc_graph *g = p->g;
	size_t act = 0, gact = 0, gact_shared = 0;
	/* the value whose storage each value uses: itself, or the root of its
	 * alias chain; one pass in execution order resolves every chain */
	int *root = malloc(((size_t)g->n_values + 1) * sizeof(int));
	size_t *goff = malloc(((size_t)g->n_values + 1) * sizeof(size_t));

	if (!root || !goff) {
		free(root);
		free(goff);
		return pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory");
	}
	for (int v = 0; v < g->n_values; v++)
		root[v] = v;
	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];
		if (pc_plan_aliases(p, n))
			root[n->out[0]] = root[n->in[0]];
	}

	/* first pass sizes the arenas, second hands out pointers */
	for (int pass = 0; pass < 2; pass++) {
		int big_v = -1;
		size_t big_floats = 0;
		act = gact = 0;
		for (int v = 0; v < g->n_values; v++) {
			struct pc_tensor *t = &p->t[v];
			enum pc_value_kind kind = g->values[v].kind;
			size_t floats;
			if (t->dtype == PC_DTYPE_UNDEFINED || t->is_static || root[v] != v ||
			    (kind != PC_VALUE_ACT && kind != PC_VALUE_INPUT))
				continue;
			if (t->dtype != PC_DTYPE_FLOAT) {
				/* run-time integers (token ids, masks): 8 bytes each, no gradient;
				 * offsets are multiples of 64 bytes, so int64-aligned */
				if (pass)
					t->ival = (int64_t *)(void *)(p->act + act);
				floats = round_up(2 * t->numel);
				act += floats;
			} else {
				if (pass)
					t->data = p->act + act;
				floats = round_up(t->numel);
				act += floats;
				if (need[v]) {
					if (pass)
						t->grad = p->gact + goff[v];
					gact += round_up(t->numel);
					floats *= 2;
				}
			}
			if (floats > big_floats) {
				big_floats = floats;
				big_v = v;
			}
		}
		if (!pass) {
			int rc;
			/* the budget counts every gradient apart: an upper bound */
			if ((rc = check_budget(p, act, gact, big_v, big_floats, err)) || (p->flags & PC_PLAN_SHAPES) ||
			    (rc = layout_grads(p, need, root, goff, &gact_shared, err))) {
				free(root);
				free(goff);
				return rc;
			}
			p->act = alloc_floats(act);
			/* zero from the start: backward keeps it zero outside each
			 * gradient's span */
			p->gact = alloc_zeroed_floats(gact_shared);
			if (p->ws_floats > p->fold_ws_floats) {
				free(p->ws);
				p->ws = alloc_floats(p->ws_floats);
			} else if (!p->ws) {
				p->ws = alloc_floats(0);
			}
			if (!p->act || !p->gact || !p->ws) {
				free(root);
				free(goff);
				return pc_error_set(err, PC_ERR_NOMEM, "plan",
						    "out of memory for %zu MiB of activations at batch %d",
						    (act + gact_shared + p->ws_floats) * sizeof(float) >> 20, p->batch);
			}
			p->act_floats = act;
			p->gact_floats = gact_shared;
		}
	}
	free(root);
	free(goff);
	for (int k = 0; k < g->n_nodes; k++) {
		if (!p->state_floats[k] || p->state[k])
			continue;
		p->state[k] = alloc_zeroed_floats(p->state_floats[k]);
		if (!p->state[k])
			return pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory for node %s's state",
					    g->nodes[k].name);
	}
	resolve_aliases(p);
	return PC_OK;
}

/* Marks the nodes whose forward can take the Relu after them along (see
 * fuse_relu): node k+1 is a Relu reading k's output, nobody else reads it,
 * and it is not the graph's output. A range that starts at the Relu, as
 * the study's shortcuts do after writing a layer's output themselves, runs
 * the Relu on its own. */
static int plan_fusion(struct pc_plan *p, struct pc_error *err)
{
	const struct pc_graph *g = p->g;
	int *readers = calloc((size_t)g->n_values + 1, sizeof(int));

	if (!readers)
		return pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory");
	for (int k = 0; k < g->n_nodes; k++)
		for (int j = 0; j < g->nodes[k].n_in; j++)
			if (g->nodes[k].in[j] >= 0)
				readers[g->nodes[k].in[j]]++;
	for (int k = 0; k + 1 < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k], *r = &g->nodes[k + 1];
		int v = n->out[0];
		p->fuse_relu[k] = pc_op_table[n->op].relu_epilogue && r->op == PC_OP_RELU && r->in[0] == v &&
				  readers[v] == 1 && v != g->output && p->run_fwd[k] && p->run_fwd[k + 1] &&
				  p->t[v].numel == p->t[r->out[0]].numel;
	}
	free(readers);
	return PC_OK;
}

struct pc_plan *pc_plan_new(const struct pc_graph *g, int batch, unsigned flags, struct pc_error *err)
{
	struct pc_plan *p = NULL;
	unsigned char *need = NULL;
	const struct pc_tensor *out;

	if (!g->finished) {
		pc_error_set(err, PC_ERR_INVALID, "plan", "graph is not finished");
		return NULL;
	}
	if (batch < 1 || batch > (1 << 20)) {
		pc_error_set(err, PC_ERR_INVALID, "batch_size", "batch size %d is outside 1..1048576", batch);
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		goto nomem;
	p->g = g;
	p->batch = batch;
	p->flags = flags;
	p->t = calloc((size_t)g->n_values + 1, sizeof(*p->t));
	p->run_fwd = calloc((size_t)g->n_nodes + 1, 1);
	p->run_bwd = calloc((size_t)g->n_nodes + 1, 1);
	p->fuse_relu = calloc((size_t)g->n_nodes + 1, 1);
	p->state = calloc((size_t)g->n_nodes + 1, sizeof(*p->state));
	p->state_floats = calloc((size_t)g->n_nodes + 1, sizeof(*p->state_floats));
	p->last_use = malloc(((size_t)g->n_values + 1) * sizeof(int));
	p->stats = malloc(((size_t)g->n_values + 1) * sizeof(int));
	p->keep_fused = 1;
	p->ws_node = -1;
	need = calloc((size_t)g->n_values + 1, 1);
	if (!p->t || !p->run_fwd || !p->run_bwd || !p->fuse_relu || !p->state || !p->state_floats || !need ||
	    !p->last_use || !p->stats)
		goto nomem;
	/* a plan that never runs, or whose owner keeps the weights, reads the
	 * graph's: the copy is the largest buffer of a plan */
	if (flags & (PC_PLAN_SHAPES | PC_PLAN_SHARED_WEIGHTS)) {
		p->w = g->params;
	} else {
		if (!(p->w = alloc_floats((size_t)g->n_params)))
			goto nomem;
		memcpy(p->w, g->params, (size_t)g->n_params * sizeof(float));
	}
	for (int v = 0; v < g->n_values; v++)
		p->last_use[v] = -1;
	for (int k = 0; k < g->n_nodes; k++)
		for (int i = 0; i < g->nodes[k].n_in; i++)
			if (g->nodes[k].in[i] >= 0)
				p->last_use[g->nodes[k].in[i]] = k;
	if ((flags & (PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD)) && !(flags & PC_PLAN_SHAPES)) {
		/* calloc hands a large block out as fresh zero pages: nothing is
		 * cleared up front, and a gradient kept elsewhere
		 * (pc_plan_swap_weight_grad) costs no memory here */
		p->gw = pc_sys_calloc_huge((size_t)g->n_params + 1, sizeof(float));
		if (!p->gw)
			goto nomem;
	}
	if (init_graph_values(p, err) || own_stats(p, err) || infer_nodes(p, need, err) || allocate(p, need, err) || plan_fusion(p, err))
		goto fail;
	out = &p->t[g->output];
	if (out->dtype != PC_DTYPE_FLOAT || (out->shape.ndim != 2 && out->shape.ndim != 3) ||
	    out->shape.dim[0] != batch || out->is_static) {
		char buf[96];
		pc_error_set(err, PC_ERR_UNSUPPORTED, g->output_name,
			     "output has shape %s; paracorr needs float scores of shape [N, classes] or, for a "
			     "sequence model, [N, T, vocabulary]",
			     pc_shape_format(&out->shape, buf, sizeof(buf)));
		goto fail;
	}
	if (out->shape.dim[out->shape.ndim - 1] < 2) {
		pc_error_set(err, PC_ERR_UNSUPPORTED, g->output_name, "output has %lld classes; need at least 2",
			     (long long)out->shape.dim[out->shape.ndim - 1]);
		goto fail;
	}
	if (flags & (PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD)) {
		p->og = alloc_floats((size_t)out->numel);
		if (!p->og)
			goto nomem;
		memset(p->og, 0, (size_t)out->numel * sizeof(float));
	}
	free(need);
	return p;
nomem:
	pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory preparing batch %d", batch);
fail:
	free(need);
	pc_plan_free(p);
	return NULL;
}

void pc_plan_free(struct pc_plan *p)
{
	if (!p)
		return;
	if (p->t)
		for (int v = 0; v < p->g->n_values; v++)
			free(p->t[v].owned);
	free(p->t);
	free(p->stats);
	if (!(p->flags & (PC_PLAN_SHAPES | PC_PLAN_SHARED_WEIGHTS)))
		free(p->w);
	free(p->gw);
	free(p->act);
	free_zeroed_floats(p->gact);
	free(p->ws);
	free(p->og);
	free(p->run_fwd);
	free(p->run_bwd);
	free(p->fuse_relu);
	free(p->last_use);
	if (p->state)
		for (int k = 0; k < p->g->n_nodes; k++)
			free_zeroed_floats(p->state[k]);
	free(p->state);
	free(p->state_floats);
	pc_plan_set_gates(p, PC_GATES_OFF, NULL);
	free(p->prof);
	free(p);
}

const struct pc_graph *pc_plan_graph(const struct pc_plan *p)
{
	return p->g;
}

int pc_plan_batch(const struct pc_plan *p)
{
	return p->batch;
}

int64_t pc_plan_sample_numel(const struct pc_plan *p)
{
	return p->t[p->g->input].numel / p->batch;
}

int64_t pc_plan_classes(const struct pc_plan *p)
{
	const struct pc_shape *s = &p->t[p->g->output].shape;

	return s->dim[s->ndim - 1];
}

int64_t pc_plan_positions(const struct pc_plan *p)
{
	const struct pc_shape *s = &p->t[p->g->output].shape;

	return s->ndim == 3 ? s->dim[1] : 1;
}

size_t pc_plan_bytes(const struct pc_plan *p)
{
	size_t floats = p->act_floats + p->gact_floats + p->ws_floats + (size_t)p->g->n_params;

	for (int k = 0; k < p->g->n_nodes; k++)
		floats += p->state_floats[k];

	if (p->flags & (PC_PLAN_GRAD | PC_PLAN_INPUT_GRAD))
		floats += (size_t)p->g->n_params;
	return floats * sizeof(float);
}

int pc_plan_stats_count(const struct pc_plan *p)
{
	return p->n_stats;
}

float *pc_plan_stats(const struct pc_plan *p, int i, int64_t *numel, const char **name)
{
	const struct pc_tensor *t = &p->t[p->stats[i]];

	if (numel)
		*numel = t->numel;
	if (name)
		*name = p->g->values[p->stats[i]].name;
	return t->data;
}

void pc_plan_share_stats(struct pc_plan *p, const struct pc_plan *from)
{
	for (int i = 0; i < p->n_stats; i++) {
		struct pc_tensor *t = &p->t[p->stats[i]];

		free(t->owned);
		t->owned = NULL;
		t->data = from->t[p->stats[i]].data;
	}
}

float *pc_plan_input(struct pc_plan *p)
{
	const struct pc_tensor *t = &p->t[p->g->input];

	return t->dtype == PC_DTYPE_FLOAT ? t->data : NULL;
}

int64_t *pc_plan_input_int64(struct pc_plan *p)
{
	const struct pc_tensor *t = &p->t[p->g->input];

	return t->dtype == PC_DTYPE_INT64 ? t->ival : NULL;
}

enum pc_dtype pc_plan_input_dtype(const struct pc_plan *p)
{
	return p->t[p->g->input].dtype;
}

int pc_plan_value(const struct pc_plan *p, const char *name, struct pc_plan_value *out, struct pc_error *err)
{
	int v = pc_graph_lookup(p->g, name);
	const struct pc_tensor *x;

	if (v < 0)
		return pc_error_set(err, PC_ERR_NOT_FOUND, name, "the graph has no value named '%s'", name);
	x = &p->t[v];
	out->dtype = x->dtype;
	out->shape = x->shape;
	out->numel = x->numel;
	out->is_static = x->is_static;
	out->producer = p->g->values[v].producer;
	out->data = x->data;
	out->ival = x->ival;
	return PC_OK;
}

const float *pc_plan_output(const struct pc_plan *p)
{
	return p->t[p->g->output].data;
}

float *pc_plan_output_grad(struct pc_plan *p)
{
	return p->og;
}

const float *pc_plan_input_grad(const struct pc_plan *p)
{
	return (p->flags & PC_PLAN_INPUT_GRAD) ? p->t[p->g->input].grad : NULL;
}

float *pc_plan_weights(struct pc_plan *p)
{
	return p->w;
}

void pc_plan_use_weights(struct pc_plan *p, float *w)
{
	if (!(p->flags & PC_PLAN_SHARED_WEIGHTS))
		return;
	p->w = w;
	bind_params(p, -1, NULL);
	resolve_aliases(p);
}

void pc_plan_bind_param(struct pc_plan *p, int param, const float *data)
{
	bind_params(p, param, data);
	resolve_aliases(p);
}

float *pc_plan_swap_weight_grad(struct pc_plan *p, float *gw)
{
	float *was = p->gw;

	if (!was)
		return NULL;
	p->gw = gw;
	bind_grads(p);
	resolve_aliases(p);
	return was;
}

float *pc_plan_weight_grad(struct pc_plan *p)
{
	return p->gw;
}

void pc_plan_zero_weight_grad(struct pc_plan *p)
{
	if (p->gw)
		memset(p->gw, 0, (size_t)p->g->n_params * sizeof(float));
}

int pc_plan_set_profile(struct pc_plan *p, int on, struct pc_error *err)
{
	if (!on) {
		free(p->prof);
		p->prof = NULL;
		return PC_OK;
	}
	if (!p->prof && !(p->prof = calloc(PC_OP_COUNT, sizeof(*p->prof))))
		return pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory for the profile");
	return PC_OK;
}

int pc_plan_op_kinds(void)
{
	return PC_OP_COUNT;
}

void pc_plan_profile_add(const struct pc_plan *p, struct pc_plan_op_time *rows)
{
	for (int i = 0; i < PC_OP_COUNT; i++) {
		rows[i].op = pc_op_table[i].name;
		if (!p->prof)
			continue;
		rows[i].forward += p->prof[i].forward;
		rows[i].backward += p->prof[i].backward;
		rows[i].forward_calls += p->prof[i].forward_calls;
		rows[i].backward_calls += p->prof[i].backward_calls;
	}
}

/* Node k's forward, timed when profiling. */
static void run_forward(struct pc_plan *p, int k)
{
	const struct pc_node *n = &p->g->nodes[k];
	double t0;

	if (!p->prof) {
		pc_op_table[n->op].forward(p, n);
		return;
	}
	t0 = pc_sys_seconds();
	pc_op_table[n->op].forward(p, n);
	p->prof[n->op].forward += pc_sys_seconds() - t0;
	p->prof[n->op].forward_calls++;
}

void pc_plan_forward_range(struct pc_plan *p, int first, int last)
{
	const struct pc_graph *g = p->g;

	if (first < 0)
		first = 0;
	if (last > g->n_nodes)
		last = g->n_nodes;
	for (int k = first; k < last; k++) {
		if (!p->run_fwd[k])
			continue;
		if (p->fuse_relu[k] && k + 1 < last && !p->gates) {
			p->relu_out = p->t[g->nodes[k + 1].out[0]].data;
			run_forward(p, k);
			p->relu_out = NULL;
			k++; /* the Relu is done */
			continue;
		}
		run_forward(p, k);
	}
}

static size_t node_gate_bytes(const struct pc_plan *p, int k)
{
	const struct pc_node *n = &p->g->nodes[k];
	size_t b = pc_op_table[n->op].gate_bytes;

	return b && p->run_fwd[k] && n->out[0] >= 0 ? b * (size_t)p->t[n->out[0]].numel : 0;
}

size_t pc_plan_gate_bytes(const struct pc_plan *p)
{
	size_t s = 0;

	for (int k = 0; k < p->g->n_nodes; k++)
		s += node_gate_bytes(p, k);
	return s;
}

int pc_plan_set_gates(struct pc_plan *p, enum pc_plan_gates mode, struct pc_error *err)
{
	const struct pc_graph *g = p->g;

	if (mode == PC_GATES_OFF) {
		if (p->gates)
			for (int k = 0; k < g->n_nodes; k++)
				free(p->gates[k]);
		free(p->gates);
		p->gates = NULL;
		p->gate_mode = PC_GATES_OFF;
		return PC_OK;
	}
	if (p->flags & PC_PLAN_SHAPES)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, "plan", "a shapes-only plan does not run");
	if (!p->gates) {
		if (!(p->gates = calloc((size_t)g->n_nodes + 1, sizeof(*p->gates))))
			goto nomem;
		for (int k = 0; k < g->n_nodes; k++) {
			size_t b = node_gate_bytes(p, k);
			if (b && !(p->gates[k] = malloc(b)))
				goto nomem;
		}
	}
	p->gate_mode = mode;
	return PC_OK;
nomem:
	pc_plan_set_gates(p, PC_GATES_OFF, NULL);
	return pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory for %zu bytes of gates", pc_plan_gate_bytes(p));
}

void pc_plan_keep_fused(struct pc_plan *p, int keep)
{
	p->keep_fused = keep;
}

void pc_plan_forward(struct pc_plan *p)
{
	pc_plan_forward_range(p, 0, p->g->n_nodes);
}

void pc_plan_backward(struct pc_plan *p)
{
	const struct pc_graph *g = p->g;
	struct pc_tensor *out = &p->t[g->output], *in = &p->t[g->input];

	if (!p->og)
		return;
	/* every gradient but the input's is zero here (see layout_grads) */
	if (in->grad)
		memset(in->grad, 0, (size_t)in->numel * sizeof(float));
	if (out->grad)
		for (int64_t i = 0; i < out->numel; i++)
			out->grad[i] += p->og[i];
	for (int k = g->n_nodes - 1; k >= 0; k--) {
		const struct pc_node *n = &g->nodes[k];
		if (!p->run_bwd[k])
			continue;
		if (p->prof) {
			double t0 = pc_sys_seconds();
			pc_op_table[n->op].backward(p, n);
			p->prof[n->op].backward += pc_sys_seconds() - t0;
			p->prof[n->op].backward_calls++;
		} else {
			pc_op_table[n->op].backward(p, n);
		}
		/* read for the last time: cleared for whichever shares its floats */
		for (int j = 0; j < n->n_out; j++) {
			struct pc_tensor *t = n->out[j] >= 0 ? &p->t[n->out[j]] : NULL;
			if (t && t->grad)
				memset(t->grad, 0, (size_t)t->numel * sizeof(float));
		}
	}
}

void pc_plan_set_training(struct pc_plan *p, int on, int update_stats)
{
	p->training = on;
	p->update_stats = on && update_stats;
}

void pc_plan_set_rows(struct pc_plan *p, int rows)
{
	p->rows = rows > 0 && rows < p->batch ? rows : 0;
}

void pc_plan_set_dropout(struct pc_plan *p, uint64_t seed)
{
	p->dropout_seed = seed;
}

void pc_plan_set_origin(struct pc_plan *p, int64_t first)
{
	p->first_row = first;
}

const struct pc_shape *pc_plan_output_shape(const struct pc_plan *p)
{
	return &p->t[p->g->output].shape;
}

double pc_plan_node_flops(const struct pc_plan *p, int k)
{
	const struct pc_node *n = &p->g->nodes[k];
	const struct pc_op_def *d = &pc_op_table[n->op];

	if (!p->run_fwd[k])
		return 0.0;
	return d->flops ? d->flops(p, n) : (double)p->t[n->out[0]].numel;
}

float *pc_plan_node_output(struct pc_plan *p, int k)
{
	return p->t[p->g->nodes[k].out[0]].data;
}

int64_t pc_plan_node_output_numel(const struct pc_plan *p, int k)
{
	return p->t[p->g->nodes[k].out[0]].numel;
}

int pc_plan_node_fuses_relu(const struct pc_plan *p, int k)
{
	return p->fuse_relu[k];
}

/* --- cuts ------------------------------------------------------------------ */

struct pc_plan_cut {
	int node;
	int n_values;
	int64_t floats;
	int values[]; /* one per storage, in value order */
};

/* The frontier of node k: values that nodes from k on read and nodes
 * before k (or the input) produce, one per storage since aliases share
 * theirs. Static values are not in it: no pass writes them. */
int pc_plan_cut_new(const struct pc_plan *p, int k, struct pc_plan_cut **out, struct pc_error *err)
{
	const struct pc_graph *g = p->g;
	struct pc_plan_cut *c;

	*out = NULL;
	if (k < 0 || k > g->n_nodes)
		return pc_error_set(err, PC_ERR_INVALID, "plan", "cut at node %d of %d", k, g->n_nodes);
	c = malloc(sizeof(*c) + ((size_t)g->n_values + 1) * sizeof(int));
	if (!c)
		return pc_error_set(err, PC_ERR_NOMEM, "plan", "out of memory");
	c->node = k;
	c->n_values = 0;
	c->floats = 0;
	for (int v = 0; v < g->n_values; v++) {
		const struct pc_tensor *t = &p->t[v];
		int dup = 0;
		if (t->is_static || p->last_use[v] < k)
			continue;
		if (!(g->values[v].kind == PC_VALUE_INPUT ||
		      (g->values[v].kind == PC_VALUE_ACT && g->values[v].producer < k)))
			continue;
		if (t->dtype != PC_DTYPE_FLOAT) {
			free(c);
			return pc_error_set(err, PC_ERR_UNSUPPORTED, g->values[v].name,
					    "a run from node %d reads this integer value (token ids, a mask); a cut "
					    "holds floats only",
					    k);
		}
		for (int j = 0; j < c->n_values && !dup; j++)
			dup = p->t[c->values[j]].data == t->data;
		if (!dup) {
			c->values[c->n_values++] = v;
			c->floats += t->numel;
		}
	}
	*out = c;
	return PC_OK;
}

void pc_plan_cut_free(struct pc_plan_cut *c)
{
	free(c);
}

int64_t pc_plan_cut_floats(const struct pc_plan_cut *c)
{
	return c->floats;
}

void pc_plan_cut_save(const struct pc_plan *p, const struct pc_plan_cut *c, float *dst)
{
	for (int j = 0; j < c->n_values; j++) {
		const struct pc_tensor *t = &p->t[c->values[j]];
		memcpy(dst, t->data, (size_t)t->numel * sizeof(float));
		dst += t->numel;
	}
}

void pc_plan_cut_restore(struct pc_plan *p, const struct pc_plan_cut *c, const float *src)
{
	for (int j = 0; j < c->n_values; j++) {
		struct pc_tensor *t = &p->t[c->values[j]];
		memcpy(t->data, src, (size_t)t->numel * sizeof(float));
		src += t->numel;
	}
}
