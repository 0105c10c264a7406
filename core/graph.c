/* graph: building and checking a model.
 *
 * Values and nodes are appended by name; pc_graph_finish resolves names,
 * sorts the nodes into execution order, rejects what cannot run (unknown
 * ops, attributes, arities, cycles), decides which float initializers are
 * trained weights, and proves the shapes by preparing a batch-1 plan. After
 * finish the graph never changes. */
#include "graph_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/sys.h"

static char *dup_str(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);

	if (d)
		memcpy(d, s, n);
	return d;
}

size_t pc_utf8_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			k = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07, min = 0x10000;
		else
			return i;
		if (n - i - 1 < k)
			return i;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += k + 1;
	}
	return n;
}

/* A name the builder was given: UTF-8, since names go into JSON reports and
 * error messages (the ONNX loader checks this on the wire already, with the
 * byte offset). The name itself is not printed: it is what is broken. */
static int check_name(const char *name, const char *where, const char *what, struct pc_error *err)
{
	size_t n = strlen(name), ok = pc_utf8_prefix((const unsigned char *)name, n);

	if (ok < n)
		return pc_error_set(err, PC_ERR_FORMAT, where, "%s is not valid UTF-8 (byte %zu is 0x%02x)", what, ok,
				    (unsigned char)name[ok]);
	return PC_OK;
}

/* --- name map: FNV-1a, open addressing ------------------------------------ */

static uint64_t hash_name(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	/* The table indexes by the low bits, and FNV-1a's low bits never see its
	 * high ones (a product carries only upwards): murmur3's fmix64 makes the
	 * slot depend on all 64. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static int map_grow(struct pc_graph *g)
{
	size_t cap = g->names.cap ? g->names.cap * 2 : 64;
	int *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -1;
	for (int v = 0; v < g->n_values; v++) {
		size_t i = hash_name(g->values[v].name) & (cap - 1);
		while (slot[i])
			i = (i + 1) & (cap - 1);
		slot[i] = v + 1;
	}
	free(g->names.slot);
	g->names.slot = slot;
	g->names.cap = cap;
	return 0;
}

int pc_graph_lookup(const struct pc_graph *g, const char *name)
{
	size_t i;

	if (!g->names.cap)
		return -1;
	i = hash_name(name) & (g->names.cap - 1);
	while (g->names.slot[i]) {
		int v = g->names.slot[i] - 1;
		if (strcmp(g->values[v].name, name) == 0)
			return v;
		i = (i + 1) & (g->names.cap - 1);
	}
	return -1;
}

/* Append a value named name; returns its index or -1 with err set. */
static int add_value(struct pc_graph *g, const char *name, enum pc_value_kind kind, struct pc_error *err)
{
	struct pc_value *v;
	size_t i;

	if (g->finished)
		return -pc_error_set(err, PC_ERR_INVALID, name, "graph is already finished");
	if (!name[0])
		return -pc_error_set(err, PC_ERR_FORMAT, "graph", "a value has an empty name");
	if (check_name(name, "graph", "a value's name", err))
		return -PC_ERR_FORMAT;
	if (pc_graph_lookup(g, name) >= 0)
		return -pc_error_set(err, PC_ERR_FORMAT, name, "value '%s' is defined twice", name);
	if (g->n_values == g->cap_values) {
		int cap = g->cap_values ? g->cap_values * 2 : 32;
		struct pc_value *nv = realloc(g->values, (size_t)cap * sizeof(*nv));
		if (!nv)
			return -pc_error_set(err, PC_ERR_NOMEM, name, "out of memory adding a value");
		g->values = nv;
		g->cap_values = cap;
	}
	/* keep the map at most half full */
	if ((size_t)(g->n_values + 1) * 2 > g->names.cap && map_grow(g) < 0)
		return -pc_error_set(err, PC_ERR_NOMEM, name, "out of memory adding a value");
	v = &g->values[g->n_values];
	memset(v, 0, sizeof(*v));
	v->name = dup_str(name);
	if (!v->name)
		return -pc_error_set(err, PC_ERR_NOMEM, name, "out of memory adding a value");
	v->kind = kind;
	v->producer = -1;
	v->param = -1;
	v->first_consumer = -1;
	i = hash_name(name) & (g->names.cap - 1);
	while (g->names.slot[i])
		i = (i + 1) & (g->names.cap - 1);
	g->names.slot[i] = g->n_values + 1;
	return g->n_values++;
}

struct pc_graph *pc_graph_new(int opset, struct pc_error *err)
{
	struct pc_graph *g;

	if (opset < PC_OPSET_MIN || opset > PC_OPSET_MAX) {
		pc_error_set(err, PC_ERR_UNSUPPORTED, "opset_import",
			     "default-domain opset %d is not supported (supported: %d to %d)", opset, PC_OPSET_MIN,
			     PC_OPSET_MAX);
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		pc_error_set(err, PC_ERR_NOMEM, "graph", "out of memory");
		return NULL;
	}
	g->opset = opset;
	g->input = -1;
	g->output = -1;
	return g;
}

static int check_shape(const struct pc_shape *shape, const char *name, int allow_symbolic, struct pc_error *err)
{
	struct pc_shape s = *shape;
	int64_t n;

	if (s.ndim < 0 || s.ndim > PC_MAX_DIMS)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name, "rank %d is outside 0..%d", s.ndim, PC_MAX_DIMS);
	for (int i = 0; i < s.ndim; i++) {
		if (allow_symbolic && s.dim[i] == -1)
			s.dim[i] = 1;
	}
	return pc_shape_numel(&s, &n, name, err);
}

int pc_graph_add_input(struct pc_graph *g, const char *name, const struct pc_shape *shape, struct pc_error *err)
{
	return pc_graph_add_input_typed(g, name, shape, PC_DTYPE_FLOAT, err);
}

int pc_graph_add_input_typed(struct pc_graph *g, const char *name, const struct pc_shape *shape,
			     enum pc_dtype dtype, struct pc_error *err)
{
	int v;

	if (dtype != PC_DTYPE_FLOAT && dtype != PC_DTYPE_INT64)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name,
				    "graph input has element type %s; paracorr feeds float inputs and int64 token ids",
				    pc_dtype_name(dtype));

	if (g->input >= 0)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name,
				    "the model has more than one data input ('%s' and '%s'); paracorr takes one",
				    g->values[g->input].name, name);
	if (check_shape(shape, name, 1, err))
		return err ? err->code : PC_ERR_SHAPE;
	v = add_value(g, name, PC_VALUE_INPUT, err);
	if (v < 0)
		return -v;
	g->values[v].dtype = dtype;
	g->values[v].shape = *shape;
	g->input = v;
	return PC_OK;
}

int pc_graph_adopt_initializer(struct pc_graph *g, const char *name, const struct pc_shape *shape,
			       enum pc_dtype dtype, void *data, struct pc_error *err)
{
	int v;

	if (dtype != PC_DTYPE_FLOAT && dtype != PC_DTYPE_INT64 && dtype != PC_DTYPE_BOOL) {
		free(data);
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name, "initializer of type %s", pc_dtype_name(dtype));
	}
	if (check_shape(shape, name, 0, err)) {
		free(data);
		return err ? err->code : PC_ERR_SHAPE;
	}
	v = add_value(g, name, PC_VALUE_CONST, err);
	if (v < 0) {
		free(data);
		return -v;
	}
	g->values[v].dtype = dtype;
	g->values[v].shape = *shape;
	if (dtype == PC_DTYPE_FLOAT)
		g->values[v].fdata = data;
	else
		g->values[v].idata = data;
	return PC_OK;
}

static int add_initializer(struct pc_graph *g, const char *name, const struct pc_shape *shape, enum pc_dtype dtype,
			   const void *data, struct pc_error *err)
{
	int64_t n;
	size_t esize = pc_dtype_size(dtype);
	void *copy;

	if (dtype != PC_DTYPE_FLOAT && dtype != PC_DTYPE_INT64 && dtype != PC_DTYPE_BOOL)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name, "initializer of type %s", pc_dtype_name(dtype));
	if (check_shape(shape, name, 0, err))
		return err ? err->code : PC_ERR_SHAPE;
	pc_shape_numel(shape, &n, name, err);
	copy = malloc(n ? (size_t)n * esize : 1);
	if (!copy)
		return pc_error_set(err, PC_ERR_NOMEM, name, "out of memory copying an initializer");
	if (n)
		memcpy(copy, data, (size_t)n * esize);
	return pc_graph_adopt_initializer(g, name, shape, dtype, copy, err);
}

int pc_graph_add_float(struct pc_graph *g, const char *name, const struct pc_shape *shape, const float *data,
		       struct pc_error *err)
{
	return add_initializer(g, name, shape, PC_DTYPE_FLOAT, data, err);
}

int pc_graph_add_int64(struct pc_graph *g, const char *name, const struct pc_shape *shape, const int64_t *data,
		       struct pc_error *err)
{
	return add_initializer(g, name, shape, PC_DTYPE_INT64, data, err);
}

int pc_graph_add_initializer(struct pc_graph *g, const char *name, const struct pc_shape *shape,
			     enum pc_dtype dtype, const void *data, struct pc_error *err)
{
	return add_initializer(g, name, shape, dtype, data, err);
}

static void free_attr(struct pc_attr *a)
{
	free((void *)a->name);
	free((void *)a->s);
	free((void *)a->floats);
	free((void *)a->ints);
	free((void *)a->strings); /* one block: the pointers, then the characters */
	free((void *)a->tdata);
}

/* n strings copied into one block: n pointers, then the characters. */
static const char *const *copy_strings(const char *const *src, int n)
{
	size_t bytes = (size_t)n * sizeof(char *);
	char **list, *chars;

	for (int i = 0; i < n; i++)
		bytes += strlen(src[i] ? src[i] : "") + 1;
	list = malloc(bytes);
	if (!list)
		return NULL;
	chars = (char *)(list + n);
	for (int i = 0; i < n; i++) {
		size_t len = strlen(src[i] ? src[i] : "") + 1;
		memcpy(chars, src[i] ? src[i] : "", len);
		list[i] = chars;
		chars += len;
	}
	return (const char *const *)list;
}

static int copy_attr(struct pc_attr *dst, const struct pc_attr *src, const char *where, struct pc_error *err)
{
	memset(dst, 0, sizeof(*dst));
	dst->type = src->type;
	dst->f = src->f;
	dst->i = src->i;
	dst->n = src->n;
	dst->tdtype = src->tdtype;
	dst->tshape = src->tshape;
	dst->name = dup_str(src->name ? src->name : "");
	if (!dst->name)
		goto nomem;
	if (src->s && !(dst->s = dup_str(src->s)))
		goto nomem;
	if (src->n < 0)
		return pc_error_set(err, PC_ERR_FORMAT, where, "attribute '%s' has a negative count", src->name);
	if (src->floats && src->n) {
		float *f = malloc((size_t)src->n * sizeof(*f));
		if (!f)
			goto nomem;
		memcpy(f, src->floats, (size_t)src->n * sizeof(*f));
		dst->floats = f;
	}
	if (src->ints && src->n) {
		int64_t *iv = malloc((size_t)src->n * sizeof(*iv));
		if (!iv)
			goto nomem;
		memcpy(iv, src->ints, (size_t)src->n * sizeof(*iv));
		dst->ints = iv;
	}
	if (src->strings && src->n && !(dst->strings = copy_strings(src->strings, src->n)))
		goto nomem;
	if (src->type == PC_ATTR_TENSOR) {
		int64_t n;
		size_t esize;
		void *d;
		if (src->tdtype != PC_DTYPE_FLOAT && src->tdtype != PC_DTYPE_INT64 && src->tdtype != PC_DTYPE_BOOL)
			return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
					    "attribute '%s': tensor of type %s is not supported (float, int64, bool)",
					    src->name, pc_dtype_name(src->tdtype));
		if (pc_shape_numel(&src->tshape, &n, where, err))
			return PC_ERR_SHAPE;
		esize = pc_dtype_size(src->tdtype);
		d = malloc(n ? (size_t)n * esize : 1);
		if (!d)
			goto nomem;
		if (n)
			memcpy(d, src->tdata, (size_t)n * esize);
		dst->tdata = d;
	}
	return PC_OK;
nomem:
	return pc_error_set(err, PC_ERR_NOMEM, where, "out of memory copying attributes");
}

static int cmp_attr_name(const void *a, const void *b)
{
	return strcmp((*(const struct pc_attr *const *)a)->name, (*(const struct pc_attr *const *)b)->name);
}

/* Two attributes of one name are refused: which one an op would read is up
 * to its lookup order, and ONNX forbids it. Sorted, so that a node with
 * many attributes costs n log n. */
static int check_attr_names(const struct pc_node *n, const char *where, struct pc_error *err)
{
	const struct pc_attr **by_name;
	int rc = PC_OK;

	if (n->n_attr < 2)
		return PC_OK;
	by_name = malloc((size_t)n->n_attr * sizeof(*by_name));
	if (!by_name)
		return pc_error_set(err, PC_ERR_NOMEM, where, "out of memory");
	for (int a = 0; a < n->n_attr; a++)
		by_name[a] = &n->attr[a];
	qsort(by_name, (size_t)n->n_attr, sizeof(*by_name), cmp_attr_name);
	for (int a = 1; a < n->n_attr && !rc; a++)
		if (strcmp(by_name[a - 1]->name, by_name[a]->name) == 0)
			rc = pc_error_set(err, PC_ERR_FORMAT, where, "attribute '%s' appears more than once",
					  by_name[a]->name);
	free(by_name);
	return rc;
}

int pc_graph_add_node(struct pc_graph *g, const char *op_type, const char *name, int n_in, const char *const *inputs,
		      int n_out, const char *const *outputs, int n_attr, const struct pc_attr *attrs,
		      struct pc_error *err)
{
	struct pc_node *n;
	char where[160];
	int rc;

	if (g->finished)
		return pc_error_set(err, PC_ERR_INVALID, name, "graph is already finished");
	if (n_in < 0 || n_out < 1 || n_attr < 0)
		return pc_error_set(err, PC_ERR_FORMAT, name, "node has %d inputs and %d outputs", n_in, n_out);
	if (g->n_nodes == g->cap_nodes) {
		int cap = g->cap_nodes ? g->cap_nodes * 2 : 32;
		struct pc_node *nn = realloc(g->nodes, (size_t)cap * sizeof(*nn));
		if (!nn)
			return pc_error_set(err, PC_ERR_NOMEM, name, "out of memory adding a node");
		g->nodes = nn;
		g->cap_nodes = cap;
	}
	n = &g->nodes[g->n_nodes];
	memset(n, 0, sizeof(*n));
	g->n_nodes++; /* from here on pc_graph_free releases what n holds */
	n->op = PC_OP_COUNT;
	n->opset = g->opset;
	n->name = dup_str(name && name[0] ? name : "");
	n->op_type = dup_str(op_type);
	n->in = calloc((size_t)n_in + 1, sizeof(*n->in));
	n->in_names = calloc((size_t)n_in + 1, sizeof(*n->in_names));
	n->out = calloc((size_t)n_out, sizeof(*n->out));
	n->attr = calloc((size_t)n_attr + 1, sizeof(*n->attr));
	if (!n->name || !n->op_type || !n->in || !n->in_names || !n->out || !n->attr)
		return pc_error_set(err, PC_ERR_NOMEM, name, "out of memory adding a node");
	/* names are checked before any message prints them */
	snprintf(where, sizeof(where), "node #%d", g->n_nodes - 1);
	if (check_name(n->name, where, "the node's name", err) || check_name(n->op_type, where, "the op type", err))
		return PC_ERR_FORMAT;
	snprintf(where, sizeof(where), "node '%s' (%s)", n->name, op_type);
	for (int i = 0; i < n_in; i++) {
		char what[32];
		n->in_names[i] = dup_str(inputs[i] ? inputs[i] : "");
		if (!n->in_names[i])
			return pc_error_set(err, PC_ERR_NOMEM, where, "out of memory");
		n->n_in++;
		snprintf(what, sizeof(what), "input %d's name", i);
		if (check_name(n->in_names[i], where, what, err))
			return PC_ERR_FORMAT;
	}
	for (int i = 0; i < n_attr; i++) {
		char what[40];
		snprintf(what, sizeof(what), "attribute %d's name", i);
		if (check_name(attrs[i].name ? attrs[i].name : "", where, what, err))
			return PC_ERR_FORMAT;
		if (attrs[i].type == PC_ATTR_STRING && attrs[i].s &&
		    check_name(attrs[i].s, where, "a string attribute's value", err))
			return PC_ERR_FORMAT;
		rc = copy_attr(&n->attr[i], &attrs[i], where, err);
		n->n_attr++;
		if (rc)
			return rc;
	}
	if ((rc = check_attr_names(n, where, err)))
		return rc;
	for (int i = 0; i < n_out; i++) {
		char omitted[48];
		const char *oname = outputs[i];
		int v;
		if (!oname || !oname[0]) {
			if (i > 0) {
				n->out[i] = -1;
				n->n_out++;
				continue;
			}
			/* An omitted first output (LSTM's and GRU's Y, when only the
			 * final state is read): every node keeps an output 0, so it
			 * gets a name of its own, computed and read by nothing. */
			snprintf(omitted, sizeof(omitted), "#%d:output 0 (omitted)", g->n_nodes - 1);
			oname = omitted;
		}
		v = add_value(g, oname, PC_VALUE_ACT, err);
		if (v < 0)
			return -v;
		g->values[v].producer = g->n_nodes - 1;
		n->out[i] = v;
		n->n_out++;
	}
	return PC_OK;
}

int pc_graph_add_output(struct pc_graph *g, const char *name, struct pc_error *err)
{
	if (check_name(name, "graph.output", "the output's name", err))
		return PC_ERR_FORMAT;
	if (g->output_name)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name,
				    "the model has more than one output ('%s' and '%s'); paracorr takes one (the logits)",
				    g->output_name, name);
	g->output_name = dup_str(name);
	if (!g->output_name)
		return pc_error_set(err, PC_ERR_NOMEM, name, "out of memory");
	return PC_OK;
}

/* --- finish ------------------------------------------------------------------ */

static int resolve_inputs(struct pc_graph *g, struct pc_error *err)
{
	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		for (int i = 0; i < n->n_in; i++) {
			if (!n->in_names[i][0]) {
				n->in[i] = -1;
				continue;
			}
			n->in[i] = pc_graph_lookup(g, n->in_names[i]);
			if (n->in[i] < 0)
				return pc_node_error(err, n, PC_ERR_FORMAT, "input %d '%s' names no value", i,
						     n->in_names[i]);
		}
	}
	return PC_OK;
}

/* Every unknown op in one message, each with the opset it was asked at: as
 * many as fit, then how many more. Names seen are kept in a hash set (node
 * index + 1 of the first node of each unknown op type), so that a file of
 * 100,000 unknown nodes costs linear time, not a scan of the earlier nodes
 * for each one. */
static int check_ops(struct pc_graph *g, struct pc_error *err)
{
	char list[360] = "";
	size_t used = 0, cap = 0;
	int *set = NULL, unknown = 0, listed = 0, nodes = 0, full = 0;

	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		size_t i;
		n->op = pc_op_lookup(n->op_type);
		if (n->op != PC_OP_COUNT)
			continue;
		nodes++;
		if (!set) {
			for (cap = 64; cap < 2 * (size_t)g->n_nodes; cap *= 2)
				;
			if (!(set = calloc(cap, sizeof(*set))))
				return pc_error_set(err, PC_ERR_NOMEM, "graph", "out of memory");
		}
		for (i = hash_name(n->op_type) & (cap - 1); set[i]; i = (i + 1) & (cap - 1))
			if (strcmp(g->nodes[set[i] - 1].op_type, n->op_type) == 0)
				break;
		if (set[i])
			continue;
		set[i] = k + 1;
		unknown++;
		if (!full) {
			/* whole entries only; a very long name is cut at 64 bytes, on a
			 * UTF-8 character boundary */
			size_t len = strlen(n->op_type), cut = len > 64 ? 64 : len;
			int w;
			while (cut < len && cut > 0 && ((unsigned char)n->op_type[cut] & 0xc0) == 0x80)
				cut--;
			w = snprintf(list + used, sizeof(list) - used, "%s%.*s%s (opset %d)", listed ? ", " : "",
				     (int)cut, n->op_type, cut < len ? "..." : "", n->opset);
			if (w < 0 || (size_t)w >= sizeof(list) - used) {
				list[used] = '\0';
				full = 1;
			} else {
				used += (size_t)w;
				listed++;
			}
		}
	}
	free(set);
	if (!unknown)
		return PC_OK;
	if (listed == unknown)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, "graph", "unsupported op%s: %s", unknown > 1 ? "s" : "",
				    list);
	return pc_error_set(err, PC_ERR_UNSUPPORTED, "graph",
			    "unsupported ops: %s and %d more (%d unsupported op types on %d nodes)", list,
			    unknown - listed, unknown, nodes);
}

/* Optional outputs nobody reads (Dropout's mask, MaxPool's indices, the
 * running statistics of a training-mode BatchNormalization) are dropped:
 * inference never needs them, and they may be of types paracorr does not
 * run. Not optional itself: keeping them could refuse, as an unsupported
 * type, a model that loads when memory is plentiful. */
static int drop_unused_outputs(struct pc_graph *g, struct pc_error *err)
{
	unsigned char *used = calloc((size_t)g->n_values + 1, 1);

	if (!used)
		return pc_error_set(err, PC_ERR_NOMEM, "graph", "out of memory");
	for (int k = 0; k < g->n_nodes; k++)
		for (int i = 0; i < g->nodes[k].n_in; i++)
			if (g->nodes[k].in[i] >= 0)
				used[g->nodes[k].in[i]] = 1;
	if (g->output >= 0)
		used[g->output] = 1;
	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		for (int j = 1; j < n->n_out; j++)
			if (n->out[j] >= 0 && !used[n->out[j]]) {
				g->values[n->out[j]].producer = -1;
				n->out[j] = -1;
			}
		/* Split's outputs count even when unused: they set the part sizes */
		while (n->n_out > 1 && n->out[n->n_out - 1] < 0 && !pc_op_table[n->op].keep_outputs)
			n->n_out--;
	}
	free(used);
	return PC_OK;
}

static int attr_allowed(const char *list, const char *name)
{
	size_t len = strlen(name);

	while (list && *list) {
		const char *end = strchr(list, ',');
		size_t l = end ? (size_t)(end - list) : strlen(list);
		if (l == len && strncmp(list, name, len) == 0)
			return 1;
		list = end ? end + 1 : NULL;
	}
	return 0;
}

static int check_nodes(struct pc_graph *g, struct pc_error *err)
{
	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		const struct pc_op_def *d = &pc_op_table[n->op];
		int n_in = n->n_in;

		/* trailing omitted optional inputs do not count */
		while (n_in > 0 && n->in[n_in - 1] < 0)
			n_in--;
		if (n_in < d->min_in || n_in > d->max_in)
			return pc_node_error(err, n, PC_ERR_FORMAT, "has %d inputs; %s takes %d to %d", n_in, d->name,
					     d->min_in, d->max_in);
		if (n->n_out < d->min_out || n->n_out > d->max_out)
			return pc_node_error(err, n, PC_ERR_UNSUPPORTED, "has %d outputs; %s here takes %d to %d",
					     n->n_out, d->name, d->min_out, d->max_out);
		for (int i = 0; i < d->min_in; i++)
			if (n->in[i] < 0)
				return pc_node_error(err, n, PC_ERR_FORMAT, "required input %d is missing", i);
		for (int a = 0; a < n->n_attr; a++)
			if (!attr_allowed(d->attrs, n->attr[a].name))
				return pc_node_error(err, n, PC_ERR_UNSUPPORTED,
						     "attribute '%s' is not supported (accepted: %s)", n->attr[a].name,
						     d->attrs && d->attrs[0] ? d->attrs : "none");
	}
	return PC_OK;
}

/* Kahn's algorithm with a min-heap on file position: among ready nodes the
 * earliest in the file runs first, so a file already in order keeps it. */
static void heap_push(int *heap, int *len, int k)
{
	int i = (*len)++;

	while (i > 0 && heap[(i - 1) / 2] > k) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = k;
}

static int heap_pop(int *heap, int *len)
{
	int top = heap[0], last = heap[--(*len)], i = 0;

	for (;;) {
		int c = 2 * i + 1;
		if (c >= *len)
			break;
		if (c + 1 < *len && heap[c + 1] < heap[c])
			c++;
		if (heap[c] >= last)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (*len)
		heap[i] = last;
	return top;
}

static int sort_nodes(struct pc_graph *g, struct pc_error *err)
{
	int n = g->n_nodes, nv = g->n_values, rc = PC_OK, done = 0, hlen = 0, edges = 0;
	int *pending = calloc((size_t)n + 1, sizeof(int));
	int *order = calloc((size_t)n + 1, sizeof(int));
	int *heap = calloc((size_t)n + 1, sizeof(int));
	int *first = calloc((size_t)nv + 2, sizeof(int)); /* CSR: consumers of each value */
	int *cons = NULL;
	struct pc_node *sorted = NULL;

	if (!pending || !order || !heap || !first)
		goto nomem;
	for (int k = 0; k < n; k++)
		for (int i = 0; i < g->nodes[k].n_in; i++) {
			int v = g->nodes[k].in[i];
			if (v < 0)
				continue;
			first[v + 1]++;
			edges++;
			if (g->values[v].producer >= 0)
				pending[k]++;
		}
	for (int v = 0; v < nv; v++)
		first[v + 1] += first[v];
	cons = malloc(((size_t)edges + 1) * sizeof(int));
	if (!cons)
		goto nomem;
	{
		int *cursor = calloc((size_t)nv + 1, sizeof(int));
		if (!cursor)
			goto nomem;
		for (int k = 0; k < n; k++)
			for (int i = 0; i < g->nodes[k].n_in; i++) {
				int v = g->nodes[k].in[i];
				if (v >= 0)
					cons[first[v] + cursor[v]++] = k;
			}
		free(cursor);
	}
	for (int k = 0; k < n; k++)
		if (!pending[k])
			heap_push(heap, &hlen, k);
	while (hlen) {
		int k = heap_pop(heap, &hlen);
		order[done++] = k;
		for (int j = 0; j < g->nodes[k].n_out; j++) {
			int v = g->nodes[k].out[j];
			if (v < 0)
				continue;
			for (int c = first[v]; c < first[v + 1]; c++)
				if (--pending[cons[c]] == 0)
					heap_push(heap, &hlen, cons[c]);
		}
	}
	if (done < n) {
		for (int k = 0; k < n; k++)
			if (pending[k]) {
				rc = pc_node_error(err, &g->nodes[k], PC_ERR_FORMAT,
						   "the graph has a cycle through this node");
				goto out;
			}
	}
	sorted = malloc((size_t)n * sizeof(*sorted) + 1);
	if (!sorted)
		goto nomem;
	for (int k = 0; k < n; k++)
		sorted[k] = g->nodes[order[k]];
	memcpy(g->nodes, sorted, (size_t)n * sizeof(*sorted));
	/* producers are node indices: renumber them */
	for (int k = 0; k < n; k++)
		for (int j = 0; j < g->nodes[k].n_out; j++)
			if (g->nodes[k].out[j] >= 0)
				g->values[g->nodes[k].out[j]].producer = k;
	goto out;
nomem:
	rc = pc_error_set(err, PC_ERR_NOMEM, "graph", "out of memory sorting nodes");
out:
	free(sorted);
	free(cons);
	free(first);
	free(heap);
	free(pending);
	free(order);
	return rc;
}

static int init_nodes(struct pc_graph *g, struct pc_error *err)
{
	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		const struct pc_op_def *d = &pc_op_table[n->op];
		if (d->init) {
			int rc = d->init(n, err);
			if (rc)
				return rc;
		}
	}
	return PC_OK;
}

static int is_buffer_slot(const struct pc_node *n, int i)
{
	return i < 32 && (pc_op_table[n->op].buffer_inputs & (1u << i));
}

/* Running statistics: what fold_identities gives a copy of its own when it
 * arrives through Identity (the op table's stats_inputs); other buffer inputs
 * (Clip's bounds, Pad's value) read through Identity are what they always
 * were, a computed value (a bound derived from a weight is trainable). */
static int is_stats_slot(const struct pc_node *n, int i)
{
	return i < 32 && (pc_op_table[n->op].stats_inputs & (1u << i));
}

/* src[v]: the float initializer v is, directly or through a chain of
 * Identity nodes, or -1. One pass: nodes are in execution order. */
static int *initializer_sources(const struct pc_graph *g)
{
	int *src = malloc(((size_t)g->n_values + 1) * sizeof(int));

	if (!src)
		return NULL;
	for (int v = 0; v < g->n_values; v++)
		src[v] = g->values[v].kind == PC_VALUE_CONST && g->values[v].dtype == PC_DTYPE_FLOAT ? v : -1;
	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];
		if (n->op == PC_OP_IDENTITY && n->in[0] >= 0 && n->out[0] >= 0)
			src[n->out[0]] = src[n->in[0]];
	}
	return src;
}

/* An Identity whose input is an initializer: it only renames the tensor,
 * and its read is not a use of its own (its readers' are). */
static int is_initializer_identity(const struct pc_node *n, const int *src)
{
	return n->op == PC_OP_IDENTITY && n->out[0] >= 0 && src[n->out[0]] >= 0;
}

/* Initializers read through Identity.
 *
 * torch.onnx.export of a model in eval mode deduplicates initializers of
 * equal value: the second becomes Identity(first), the Identity's output
 * carrying the second's name. So Identity(bn1.bias) may be bn2's running
 * mean, and Identity(bn1.running_mean) a bias. Each Identity output is one
 * tensor of the original model, and how it is read says what it is:
 * - read as running statistics (BatchNormalization's inputs 3, 4): a constant
 *   of its own, a copy of the initializer, so that corrupting the weight
 *   leaves it alone and training updates it apart; the Identity goes.
 * - read only as a weight: the one parameter of its initializer, as a
 *   weight read by two nodes is (a tied weight; the gradient sums). When
 *   the initializer itself is read as statistics, the weight is a copy of
 *   it named after the first such Identity output, and the others read it.
 * A copy lives on as an initializer of its own in pc_onnx_save_weights. */
static int fold_identities(struct pc_graph *g, struct pc_error *err)
{
	int *src = initializer_sources(g), *weight_copy = NULL, kept = 0, rc = PC_OK;
	unsigned char *reads = calloc((size_t)g->n_values + 1, 1), *drop = calloc((size_t)g->n_nodes + 1, 1);

	if (!src || !reads || !drop || !(weight_copy = malloc(((size_t)g->n_values + 1) * sizeof(int)))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "graph", "out of memory");
		goto out;
	}
	/* reads[v]: bit 1 read as running statistics, bit 2 as anything else */
	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];
		if (is_initializer_identity(n, src))
			continue;
		for (int i = 0; i < n->n_in; i++)
			if (n->in[i] >= 0 && src[n->in[i]] >= 0)
				reads[n->in[i]] |= is_stats_slot(n, i) ? 1 : 2;
	}
	for (int v = 0; v < g->n_values; v++)
		weight_copy[v] = -1;
	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		int v, s;
		struct pc_value *val;
		int64_t count;

		if (!is_initializer_identity(n, src))
			continue;
		v = n->out[0];
		s = src[v];
		if (v == g->output)
			continue; /* not runnable anyway; the plan says why */
		/* a statistics read wins, as it does for an initializer read both
		 * ways directly (ONNX exporters write neither) */
		if (!(reads[v] & 1) && !((reads[v] & 2) && (reads[s] & 1)))
			continue; /* the one parameter (or constant) s, renamed */
		if (!(reads[v] & 1) && weight_copy[s] >= 0) {
			n->in[0] = weight_copy[s];
			continue;
		}
		val = &g->values[v];
		count = pc_shape_count(&g->values[s].shape);
		val->fdata = malloc((size_t)count * sizeof(float) + 1);
		if (!val->fdata) {
			rc = pc_error_set(err, PC_ERR_NOMEM, val->name, "out of memory copying '%s'",
					  g->values[s].name);
			goto out;
		}
		memcpy(val->fdata, g->values[s].fdata, (size_t)count * sizeof(float));
		val->kind = PC_VALUE_CONST;
		val->dtype = PC_DTYPE_FLOAT;
		val->shape = g->values[s].shape;
		val->producer = -1;
		drop[k] = 1;
		if (!(reads[v] & 1))
			weight_copy[s] = v;
	}
	/* the Identity nodes that became initializers go; producers renumbered */
	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		if (drop[k]) {
			free(n->name);
			free(n->op_type);
			free(n->in);
			for (int i = 0; i < n->n_in; i++)
				free(n->in_names[i]);
			free(n->in_names);
			free(n->out);
			for (int a = 0; a < n->n_attr; a++)
				free_attr(&n->attr[a]);
			free(n->attr);
			free(n->priv);
			continue;
		}
		g->nodes[kept] = *n;
		for (int j = 0; j < n->n_out; j++)
			if (n->out[j] >= 0)
				g->values[n->out[j]].producer = kept;
		kept++;
	}
	g->n_nodes = kept;
out:
	free(src);
	free(reads);
	free(drop);
	free(weight_copy);
	return rc;
}

/* A weight is a number training moved; an initializer holding -inf or NaN
 * (an attention mask) is a constant of the computation. */
static int all_finite(const struct pc_value *v)
{
	int64_t n = pc_shape_count(&v->shape);

	for (int64_t i = 0; i < n; i++)
		if (!isfinite(v->fdata[i]))
			return 0;
	return 1;
}

/* Float initializers are trained weights unless some node reads them at a
 * buffer position (BN running statistics), they hold a non-finite value,
 * or nothing reads them at all. A weight read by several nodes, directly
 * or through Identity, is one parameter; its first reader (execution order,
 * looking through Identity) is the node it is reported under. */
static int split_params(struct pc_graph *g, struct pc_error *err)
{
	unsigned char *buffer = calloc((size_t)g->n_values + 1, 1), *weight = NULL;
	int *src = initializer_sources(g);
	int64_t total = 0, off = 0;
	int count = 0, rc = PC_OK;

	if (!buffer || !src || !(weight = calloc((size_t)g->n_values + 1, 1))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "graph", "out of memory");
		goto out;
	}
	for (int k = 0; k < g->n_nodes; k++) {
		const struct pc_node *n = &g->nodes[k];
		if (is_initializer_identity(n, src))
			continue;
		for (int i = 0; i < n->n_in; i++) {
			int v = n->in[i], s;
			if (v < 0)
				continue;
			s = src[v] >= 0 ? src[v] : v;
			if (g->values[s].first_consumer < 0)
				g->values[s].first_consumer = k;
			/* the value read, not its source: a bound computed from a weight
			 * (through Identity) leaves the weight a weight */
			if (is_buffer_slot(n, i))
				buffer[v] = 1;
		}
	}
	for (int v = 0; v < g->n_values; v++) {
		struct pc_value *val = &g->values[v];
		weight[v] = val->kind == PC_VALUE_CONST && val->dtype == PC_DTYPE_FLOAT && !buffer[v] &&
			    val->first_consumer >= 0 && all_finite(val);
		if (weight[v]) {
			total += pc_shape_count(&val->shape);
			count++;
		}
	}
	g->params = pc_sys_malloc_huge((size_t)total * sizeof(float) + 1);
	g->ptab = calloc((size_t)count + 1, sizeof(*g->ptab));
	if (!g->params || !g->ptab) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "graph", "out of memory for %lld parameters",
				  (long long)total);
		goto out;
	}
	for (int v = 0; v < g->n_values; v++) {
		struct pc_value *val = &g->values[v];
		struct pc_param *pt;
		int64_t n;
		if (!weight[v])
			continue;
		n = pc_shape_count(&val->shape);
		memcpy(g->params + off, val->fdata, (size_t)n * sizeof(float));
		free(val->fdata);
		val->fdata = g->params + off;
		val->kind = PC_VALUE_PARAM;
		val->param = g->n_ptab;
		pt = &g->ptab[g->n_ptab++];
		pt->name = val->name;
		pt->shape = val->shape;
		pt->offset = off;
		pt->count = n;
		pt->node_index = val->first_consumer;
		pt->node = g->nodes[val->first_consumer].name;
		pt->stored = val->stored;
		off += n;
	}
	g->n_params = total;
out:
	free(buffer);
	free(weight);
	free(src);
	return rc;
}

uint8_t pc_stored_byte(enum pc_stored_type type, float v)
{
	float lo = type == PC_STORED_INT8 ? -128.0f : 0.0f, hi = type == PC_STORED_INT8 ? 127.0f : 255.0f;
	float q = rintf(v);

	q = q < lo ? lo : q > hi ? hi : q;
	if (q != q)
		q = 0.0f;
	return type == PC_STORED_INT8 ? (uint8_t)(int8_t)q : (uint8_t)q;
}

float pc_stored_value(enum pc_stored_type type, uint8_t byte)
{
	return type == PC_STORED_INT8 ? (float)(int8_t)byte : (float)byte;
}

int pc_graph_finish(struct pc_graph *g, struct pc_error *err)
{
	struct pc_plan *trial;
	int rc, out_prod;

	if (g->finished)
		return pc_error_set(err, PC_ERR_INVALID, "graph", "graph is already finished");
	if (g->input < 0)
		return pc_error_set(err, PC_ERR_FORMAT, "graph.input", "the model has no data input");
	if (!g->output_name)
		return pc_error_set(err, PC_ERR_FORMAT, "graph.output", "the model has no output");
	/* unknown ops first: that error names them all, whatever else is wrong */
	if ((rc = check_ops(g, err)) || (rc = resolve_inputs(g, err)))
		return rc;
	g->output = pc_graph_lookup(g, g->output_name);
	if (g->output < 0)
		return pc_error_set(err, PC_ERR_FORMAT, "graph.output", "output '%s' names no value", g->output_name);
	if (g->values[g->output].kind != PC_VALUE_ACT)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, "graph.output",
				    "output '%s' is not computed by any node", g->output_name);
	if ((rc = drop_unused_outputs(g, err)) || (rc = check_nodes(g, err)) || (rc = sort_nodes(g, err)) || (rc = fold_identities(g, err)) ||
	    (rc = init_nodes(g, err)) ||
	    (rc = split_params(g, err)))
		return rc;
	out_prod = g->values[g->output].producer;
	g->out_kind = PC_OUTPUT_LOGITS;
	if (g->nodes[out_prod].op == PC_OP_SOFTMAX)
		g->out_kind = PC_OUTPUT_PROBS;
	else if (g->nodes[out_prod].op == PC_OP_LOGSOFTMAX)
		g->out_kind = PC_OUTPUT_LOGPROBS;
	g->finished = 1;
	/* Shapes are proven at load: a small plan sees every op's infer. Batch
	 * 2, not 1, so that a squeeze of size-1 dims cannot eat the batch axis. */
	{
		const struct pc_shape *in = &g->values[g->input].shape;
		trial = pc_plan_new(g, in->ndim > 0 && in->dim[0] > 0 ? (int)in->dim[0] : 2, PC_PLAN_SHAPES, err);
	}
	if (!trial) {
		g->finished = 0;
		return err ? err->code : PC_ERR_SHAPE;
	}
	g->classes = pc_plan_classes(trial);
	g->positions = pc_plan_positions(trial);
	pc_plan_free(trial);
	return PC_OK;
}

void pc_graph_free(struct pc_graph *g)
{
	if (!g)
		return;
	for (int k = 0; k < g->n_nodes; k++) {
		struct pc_node *n = &g->nodes[k];
		free(n->name);
		free(n->op_type);
		free(n->in);
		if (n->in_names)
			for (int i = 0; i < n->n_in; i++)
				free(n->in_names[i]);
		free(n->in_names);
		free(n->out);
		for (int a = 0; a < n->n_attr; a++)
			free_attr(&n->attr[a]);
		free(n->attr);
		free(n->priv);
	}
	for (int v = 0; v < g->n_values; v++) {
		struct pc_value *val = &g->values[v];
		free(val->name);
		if (val->kind != PC_VALUE_PARAM)
			free(val->fdata);
		free(val->idata);
	}
	free(g->nodes);
	free(g->values);
	free(g->names.slot);
	free(g->output_name);
	free(g->params);
	free(g->ptab);
	free(g);
}

/* --- queries ---------------------------------------------------------------- */

int pc_graph_opset(const struct pc_graph *g)
{
	return g->opset;
}

const char *pc_graph_input_name(const struct pc_graph *g)
{
	return g->values[g->input].name;
}

const struct pc_shape *pc_graph_input_shape(const struct pc_graph *g)
{
	return &g->values[g->input].shape;
}

const char *pc_graph_output_name(const struct pc_graph *g)
{
	return g->output_name;
}

enum pc_output_kind pc_graph_output_kind(const struct pc_graph *g)
{
	return g->out_kind;
}

int64_t pc_graph_classes(const struct pc_graph *g)
{
	return g->classes;
}

int64_t pc_graph_positions(const struct pc_graph *g)
{
	return g->positions;
}

enum pc_dtype pc_graph_input_dtype(const struct pc_graph *g)
{
	return g->values[g->input].dtype;
}

int pc_graph_node_count(const struct pc_graph *g)
{
	return g->n_nodes;
}

const char *pc_graph_node_name(const struct pc_graph *g, int i)
{
	return g->nodes[i].name;
}

const char *pc_graph_node_op(const struct pc_graph *g, int i)
{
	return g->nodes[i].op_type;
}

int pc_graph_node_inputs(const struct pc_graph *g, int k)
{
	return g->nodes[k].n_in;
}

const char *pc_graph_node_input_name(const struct pc_graph *g, int k, int i)
{
	int v = g->nodes[k].in[i];

	return v >= 0 ? g->values[v].name : NULL;
}

int64_t pc_graph_node_attr_int(const struct pc_graph *g, int k, const char *name, int64_t dflt)
{
	const struct pc_node *n = &g->nodes[k];

	for (int a = 0; a < n->n_attr; a++)
		if (n->attr[a].type == PC_ATTR_INT && !strcmp(n->attr[a].name, name))
			return n->attr[a].i;
	return dflt;
}

const char *pc_graph_node_output_name(const struct pc_graph *g, int k, int i)
{
	if (k < 0 || k >= g->n_nodes || i < 0 || i >= g->nodes[k].n_out)
		return NULL;
	return g->values[g->nodes[k].out[i]].name;
}

int pc_graph_node_input_param(const struct pc_graph *g, int k, int i)
{
	int v = g->nodes[k].in[i];

	return v >= 0 && g->values[v].kind == PC_VALUE_PARAM ? g->values[v].param : -1;
}

int pc_graph_node_input_producer(const struct pc_graph *g, int k, int i)
{
	int v = g->nodes[k].in[i];

	return v >= 0 && g->values[v].kind == PC_VALUE_ACT ? g->values[v].producer : -1;
}

int pc_graph_node_linear_op(const struct pc_graph *g, int k)
{
	return pc_op_table[g->nodes[k].op].linear;
}

int pc_graph_node_stats_input(const struct pc_graph *g, int k, int i)
{
	return i >= 0 && i < 32 && (pc_op_table[g->nodes[k].op].stats_inputs >> i & 1u);
}

int pc_graph_node_linear(const struct pc_graph *g, int k)
{
	const struct pc_node *n = &g->nodes[k];

	if (!pc_op_table[n->op].linear || n->in[0] < 0 || g->values[n->in[0]].kind == PC_VALUE_PARAM ||
	    g->values[n->in[0]].kind == PC_VALUE_CONST)
		return 0;
	for (int i = 1; i < n->n_in; i++)
		if (n->in[i] >= 0 && g->values[n->in[i]].kind == PC_VALUE_ACT)
			return 0;
	return 1;
}

int pc_graph_param_reads(const struct pc_graph *g, int i)
{
	int reads = 0;

	for (int k = 0; k < g->n_nodes; k++)
		for (int j = 0; j < g->nodes[k].n_in; j++)
			reads += g->nodes[k].in[j] >= 0 && g->values[g->nodes[k].in[j]].kind == PC_VALUE_PARAM &&
				 g->values[g->nodes[k].in[j]].param == i;
	return reads;
}

int64_t pc_graph_param_count(const struct pc_graph *g)
{
	return g->n_params;
}

int pc_graph_param_tensors(const struct pc_graph *g)
{
	return g->n_ptab;
}

const struct pc_param *pc_graph_param(const struct pc_graph *g, int i)
{
	return &g->ptab[i];
}

const float *pc_graph_params(const struct pc_graph *g)
{
	return g->params;
}

const float *pc_graph_buffer(const struct pc_graph *g, const char *name, int64_t *numel)
{
	int v = pc_graph_lookup(g, name);
	const struct pc_value *val = v >= 0 ? &g->values[v] : NULL;
	int64_t n = 1;

	if (!val || val->kind != PC_VALUE_CONST || val->dtype != PC_DTYPE_FLOAT || !val->fdata)
		return NULL;
	for (int d = 0; d < val->shape.ndim; d++)
		n *= val->shape.dim[d];
	if (numel)
		*numel = n;
	return val->fdata;
}

int pc_graph_find_param(const struct pc_graph *g, const char *name)
{
	int v = pc_graph_lookup(g, name);

	return v >= 0 ? g->values[v].param : -1;
}
