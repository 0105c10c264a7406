/* ops/common: what every op uses: attribute access with type checks, node
 * errors, the plan's tensors, static outputs and workspace reservation. */
#include "../graph_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum pc_op pc_op_lookup(const char *name)
{
	for (int op = 0; op < PC_OP_COUNT; op++)
		if (pc_op_table[op].name && strcmp(pc_op_table[op].name, name) == 0)
			return (enum pc_op)op;
	return PC_OP_COUNT;
}

int pc_node_error(struct pc_error *err, const struct pc_node *n, enum pc_status code, const char *fmt, ...)
{
	char where[160], text[512];
	va_list ap;

	snprintf(where, sizeof(where), "node '%s' (%s)", n->name, n->op_type);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return pc_error_set(err, code, where, "%s", text);
}

const struct pc_attr *pc_attr_get(const struct pc_node *n, const char *name)
{
	for (int i = 0; i < n->n_attr; i++)
		if (strcmp(n->attr[i].name, name) == 0)
			return &n->attr[i];
	return NULL;
}

static int wrong_type(const struct pc_node *n, const char *name, const char *want, struct pc_error *err)
{
	return pc_node_error(err, n, PC_ERR_FORMAT, "attribute '%s' must be %s", name, want);
}

int pc_attr_int(const struct pc_node *n, const char *name, int64_t def, int64_t *out, struct pc_error *err)
{
	const struct pc_attr *a = pc_attr_get(n, name);

	*out = def;
	if (!a)
		return PC_OK;
	if (a->type != PC_ATTR_INT)
		return wrong_type(n, name, "an int", err);
	*out = a->i;
	return PC_OK;
}

int pc_attr_float(const struct pc_node *n, const char *name, float def, float *out, struct pc_error *err)
{
	const struct pc_attr *a = pc_attr_get(n, name);

	*out = def;
	if (!a)
		return PC_OK;
	if (a->type != PC_ATTR_FLOAT)
		return wrong_type(n, name, "a float", err);
	*out = a->f;
	return PC_OK;
}

int pc_attr_string(const struct pc_node *n, const char *name, const char *def, const char **out,
		   struct pc_error *err)
{
	const struct pc_attr *a = pc_attr_get(n, name);

	*out = def;
	if (!a)
		return PC_OK;
	if (a->type != PC_ATTR_STRING || !a->s)
		return wrong_type(n, name, "a string", err);
	*out = a->s;
	return PC_OK;
}

int pc_attr_ints(const struct pc_node *n, const char *name, int max, int64_t *out, int *count,
		 struct pc_error *err)
{
	const struct pc_attr *a = pc_attr_get(n, name);

	*count = -1;
	if (!a)
		return PC_OK;
	if (a->type != PC_ATTR_INTS)
		return wrong_type(n, name, "a list of ints", err);
	if (a->n > max)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "attribute '%s' has %d values; at most %d", name,
				     a->n, max);
	for (int i = 0; i < a->n; i++)
		out[i] = a->ints[i];
	*count = a->n;
	return PC_OK;
}

int pc_attr_auto_pad(const struct pc_node *n, enum pc_auto_pad *out, const char **name, struct pc_error *err)
{
	static const struct {
		const char *name;
		enum pc_auto_pad mode;
	} modes[] = {
		{"NOTSET", PC_AUTO_PAD_NOTSET},
		{"VALID", PC_AUTO_PAD_VALID},
		{"SAME_UPPER", PC_AUTO_PAD_SAME_UPPER},
		{"SAME_LOWER", PC_AUTO_PAD_SAME_LOWER},
	};
	int rc = pc_attr_string(n, "auto_pad", "NOTSET", name, err);

	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(*name, modes[i].name) == 0) {
			*out = modes[i].mode;
			return PC_OK;
		}
	return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
			     "attribute 'auto_pad' is '%s'; supported: NOTSET, VALID, SAME_UPPER, SAME_LOWER", *name);
}

int pc_attr_window_ints(const struct pc_node *n, const char *name, int want, int64_t min, int64_t *out,
			int *present, struct pc_error *err)
{
	int64_t v[PC_MAX_DIMS * 2];
	int count, rc;

	rc = pc_attr_ints(n, name, PC_MAX_DIMS * 2, v, &count, err);
	if (rc)
		return rc;
	*present = count >= 0;
	if (count < 0)
		return PC_OK;
	if (count != want)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "attribute '%s' has %d values; only 2-D windows are supported (%d values)", name,
				     count, want);
	for (int i = 0; i < want; i++) {
		if (v[i] < min || v[i] > PC_WINDOW_ATTR_MAX)
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
					     "attribute '%s' has value %lld; must be in %lld..%lld", name,
					     (long long)v[i], (long long)min, (long long)PC_WINDOW_ATTR_MAX);
		out[i] = v[i];
	}
	return PC_OK;
}

struct pc_tensor *pc_op_in(struct pc_plan *p, const struct pc_node *n, int i)
{
	if (i < 0 || i >= n->n_in || n->in[i] < 0)
		return NULL;
	return &p->t[n->in[i]];
}

struct pc_tensor *pc_op_out(struct pc_plan *p, const struct pc_node *n, int i)
{
	if (i < 0 || i >= n->n_out || n->out[i] < 0)
		return NULL;
	return &p->t[n->out[i]];
}

int pc_op_n_in(const struct pc_node *n)
{
	return n->n_in;
}

int pc_op_n_out(const struct pc_node *n)
{
	return n->n_out;
}

void *pc_op_priv(const struct pc_node *n)
{
	return n->priv;
}

int pc_op_opset(const struct pc_node *n)
{
	return n->opset;
}

float *pc_op_ws(struct pc_plan *p)
{
	return p->ws;
}

int pc_op_set_output(struct pc_plan *p, const struct pc_node *n, int i, enum pc_dtype dtype,
		     const struct pc_shape *shape, struct pc_error *err)
{
	struct pc_tensor *t = pc_op_out(p, n, i);
	char what[48];

	if (!t)
		return PC_OK; /* omitted optional output */
	snprintf(what, sizeof(what), "output %d", i);
	if (shape->ndim < 0 || shape->ndim > PC_MAX_DIMS)
		return pc_node_error(err, n, PC_ERR_SHAPE, "output %d would have rank %d", i, shape->ndim);
	if (pc_shape_numel(shape, &t->numel, what, NULL)) {
		char buf[160];
		return pc_node_error(err, n, PC_ERR_SHAPE, "output %d would have shape %s", i,
				     pc_shape_format(shape, buf, sizeof(buf)));
	}
	t->dtype = dtype;
	t->shape = *shape;
	return PC_OK;
}

static void *static_output(struct pc_plan *p, const struct pc_node *n, int i, enum pc_dtype dtype,
			   const struct pc_shape *shape, struct pc_error *err)
{
	struct pc_tensor *t = pc_op_out(p, n, i);
	size_t esize = pc_dtype_size(dtype);

	if (!t) {
		pc_node_error(err, n, PC_ERR_INTERNAL, "static output %d is omitted", i);
		return NULL;
	}
	if (pc_op_set_output(p, n, i, dtype, shape, err))
		return NULL;
	/* static tensors are shape arithmetic: keep them small */
	if (t->numel > PC_PLAN_MAX_STATIC_ELEMENTS) {
		pc_node_error(err, n, PC_ERR_LIMIT, "constant output %d has %lld elements", i, (long long)t->numel);
		return NULL;
	}
	if (pc_plan_count_static(p, (size_t)t->numel * esize, err)) {
		pc_node_error(err, n, PC_ERR_LIMIT, "constants computed at load would pass %d MiB in all",
			      (int)(PC_PLAN_MAX_STATIC_BYTES >> 20));
		return NULL;
	}
	free(t->owned);
	t->owned = calloc((size_t)t->numel + 1, esize);
	if (!t->owned) {
		pc_node_error(err, n, PC_ERR_NOMEM, "out of memory");
		return NULL;
	}
	t->is_static = 1;
	if (dtype == PC_DTYPE_FLOAT)
		t->data = t->owned;
	else
		t->ival = t->owned;
	return t->owned;
}

void *pc_op_static(struct pc_plan *p, const struct pc_node *n, int i, enum pc_dtype dtype,
		   const struct pc_shape *shape, struct pc_error *err)
{
	return static_output(p, n, i, dtype, shape, err);
}

int64_t *pc_op_static_int64(struct pc_plan *p, const struct pc_node *n, int i, const struct pc_shape *shape,
			    struct pc_error *err)
{
	return static_output(p, n, i, PC_DTYPE_INT64, shape, err);
}

float *pc_op_static_float(struct pc_plan *p, const struct pc_node *n, int i, const struct pc_shape *shape,
			  struct pc_error *err)
{
	return static_output(p, n, i, PC_DTYPE_FLOAT, shape, err);
}

void pc_op_reserve_ws(struct pc_plan *p, size_t floats)
{
	if (floats > p->ws_floats)
		p->ws_floats = floats;
}

void pc_op_reserve_state(struct pc_plan *p, const struct pc_node *n, size_t floats)
{
	p->state_floats[n - p->g->nodes] = floats;
}

float *pc_op_state(struct pc_plan *p, const struct pc_node *n)
{
	return p->state[n - p->g->nodes];
}

void *pc_op_gate(struct pc_plan *p, const struct pc_node *n)
{
	return p->gates ? p->gates[n - p->g->nodes] : NULL;
}

int pc_op_gates_frozen(const struct pc_plan *p)
{
	return p->gate_mode == PC_GATES_FROZEN;
}

int pc_op_need_float(struct pc_plan *p, const struct pc_node *n, int i, struct pc_error *err)
{
	struct pc_tensor *t = pc_op_in(p, n, i);

	if (!t)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d is missing", i);
	if (t->dtype != PC_DTYPE_FLOAT)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d is %s; this op takes float", i,
				     pc_dtype_name(t->dtype));
	return PC_OK;
}

int pc_op_need_static_int64(struct pc_plan *p, const struct pc_node *n, int i, struct pc_error *err)
{
	struct pc_tensor *t = pc_op_in(p, n, i);

	if (!t)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d is missing", i);
	if (t->dtype != PC_DTYPE_INT64 || !t->is_static)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
				     "input %d must be an int64 tensor known before the run (a shape or axes)", i);
	return PC_OK;
}

int pc_op_static_list(struct pc_plan *p, const struct pc_node *n, int i, int max, const int64_t **vals, int *count,
		      struct pc_error *err)
{
	const struct pc_tensor *t;
	int rc;

	*vals = NULL;
	*count = 0;
	if ((rc = pc_op_need_static_int64(p, n, i, err)))
		return rc;
	t = pc_op_in(p, n, i);
	if (t->shape.ndim > 1)
		return pc_node_error(err, n, PC_ERR_FORMAT, "input %d has rank %d; it must be a 1-D list", i,
				     t->shape.ndim);
	if (t->numel > max)
		return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "input %d has %lld values; at most %d", i,
				     (long long)t->numel, max);
	*vals = t->ival;
	*count = (int)t->numel;
	return PC_OK;
}

void pc_shape_strides(const struct pc_shape *s, int64_t *stride)
{
	int64_t acc = 1;

	for (int i = s->ndim - 1; i >= 0; i--) {
		stride[i] = acc;
		acc *= s->dim[i];
	}
}

int pc_broadcast_shape(const struct pc_shape *a, const struct pc_shape *b, struct pc_shape *out)
{
	int nd = a->ndim > b->ndim ? a->ndim : b->ndim;

	out->ndim = nd;
	for (int i = 0; i < nd; i++) {
		int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
		int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
		if (da != db && da != 1 && db != 1)
			return PC_ERR_SHAPE;
		out->dim[i] = da == 1 ? db : da;
	}
	return PC_OK;
}

int pc_axis(int64_t axis, int rank)
{
	if (axis < -rank || axis >= rank)
		return -1;
	return (int)(axis < 0 ? axis + rank : axis);
}
