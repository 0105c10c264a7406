/* onnx: translate a decoded ModelProto into a graph.
 *
 * The translation is mechanical; the work is in refusing what is not sound:
 * every dims list, element count, data length, type code and attribute kind
 * is checked here, because protobuf-c only guarantees well-formed wire
 * encoding. Graph-level checks (names, cycles, ops, shapes) belong to
 * pc_graph_finish, which this calls last. */
#include "paracorr/onnx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph_int.h"
#include "onnx.pb-c.h"
#include "paracorr/limits.h"
#include "paracorr/sys.h"

enum { ONNX_FLOAT = 1, ONNX_UINT8 = 2, ONNX_INT8 = 3, ONNX_INT32 = 6, ONNX_INT64 = 7, ONNX_BOOL = 9, ONNX_DOUBLE = 11 };
enum {
	ATTR_FLOAT = 1,
	ATTR_INT = 2,
	ATTR_STRING = 3,
	ATTR_TENSOR = 4,
	ATTR_GRAPH = 5,
	ATTR_FLOATS = 6,
	ATTR_INTS = 7,
	ATTR_STRINGS = 8,
	ATTR_TENSORS = 9,
	ATTR_GRAPHS = 10,
};

/* A tensor's data converted to float or int64, owned by the caller. An
 * int8 or uint8 tensor becomes float (exact) and says so in `stored`. */
struct tensor_data {
	enum pc_dtype dtype;
	struct pc_shape shape;
	void *data;
	enum pc_stored_type stored;
};

static int is_default_domain(const char *d)
{
	return !d || !d[0] || strcmp(d, "ai.onnx") == 0;
}

static int convert_tensor(const Onnx__TensorProto *t, const char *what, ProtobufCBinaryData *take,
			  struct tensor_data *out, struct pc_error *err)
{
	int64_t n;
	size_t esize, want;
	struct pc_error shape_err = {0};
	const char *name = t->name && t->name[0] ? t->name : what;
	int dt = t->has_data_type ? t->data_type : 0;

	memset(out, 0, sizeof(*out));
	if (t->n_external_data || (t->has_data_location && t->data_location == 1))
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name,
				    "tensor stores its data in an external file (external_data); paracorr needs "
				    "a self-contained model");
	if (t->n_dims > PC_MAX_DIMS)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name, "tensor has rank %zu; at most %d", t->n_dims,
				    PC_MAX_DIMS);
	out->shape.ndim = (int)t->n_dims;
	for (size_t i = 0; i < t->n_dims; i++)
		out->shape.dim[i] = t->dims[i];
	/* a shape the file states wrongly is a malformed file, not a shape
	 * error of the graph: the same code as every other tensor check */
	if (pc_shape_numel(&out->shape, &n, name, &shape_err))
		return pc_error_set(err, PC_ERR_FORMAT, name, "%s", shape_err.text);
	switch (dt) {
	case ONNX_FLOAT:
	case ONNX_DOUBLE:
		out->dtype = PC_DTYPE_FLOAT;
		esize = dt == ONNX_FLOAT ? 4 : 8;
		break;
	case ONNX_INT8:
	case ONNX_UINT8:
		out->dtype = PC_DTYPE_FLOAT;
		out->stored = dt == ONNX_INT8 ? PC_STORED_INT8 : PC_STORED_UINT8;
		esize = 1;
		break;
	case ONNX_INT64:
	case ONNX_INT32:
	case ONNX_BOOL:
		out->dtype = dt == ONNX_BOOL ? PC_DTYPE_BOOL : PC_DTYPE_INT64;
		esize = dt == ONNX_INT64 ? 8 : dt == ONNX_INT32 ? 4 : 1;
		break;
	default:
		return pc_error_set(err, PC_ERR_UNSUPPORTED, name,
				    "tensor has data type %d (%s); paracorr reads float, double, int8, uint8, int32, "
				    "int64 and bool",
				    dt, pc_dtype_name(dt));
	}
	want = (size_t)n * esize;
	/* lengths first: a lying header must not make us allocate */
	if (t->has_raw_data) {
		if (t->raw_data.len != want) {
			char buf[160];
			return pc_error_set(err, PC_ERR_FORMAT, name, "raw_data has %zu bytes; dims %s of %s need %zu",
					    t->raw_data.len, pc_shape_format(&out->shape, buf, sizeof(buf)),
					    pc_dtype_name(dt), want);
		}
	} else {
		/* bool, int8 and uint8, like int32, travel in int32_data */
		size_t have = dt == ONNX_FLOAT	  ? t->n_float_data
			      : dt == ONNX_DOUBLE ? t->n_double_data
			      : dt == ONNX_INT64  ? t->n_int64_data
						  : t->n_int32_data;
		const char *field = dt == ONNX_FLOAT	? "float_data"
				    : dt == ONNX_DOUBLE ? "double_data"
				    : dt == ONNX_INT64	? "int64_data"
							: "int32_data";
		if (have != (size_t)n) {
			char buf[160];
			return pc_error_set(err, PC_ERR_FORMAT, name, "%s has %zu values; dims %s need %lld", field,
					    have, pc_shape_format(&out->shape, buf, sizeof(buf)), (long long)n);
		}
	}
	/* A model's weights are nearly all of its bytes: move them out of the
	 * message instead of holding a second copy while the graph is built
	 * (protobuf-c allocates each bytes field on its own, with malloc
	 * through pb_alloc, so free() owns it; malloc's alignment suits float). */
	if (take && take->data == t->raw_data.data && t->has_raw_data && dt == ONNX_FLOAT && want > 0) {
		out->data = take->data;
		take->data = NULL;
		take->len = 0;
		return PC_OK;
	}
	out->data = malloc(n ? (size_t)n * pc_dtype_size(out->dtype) : 1);
	if (!out->data)
		return pc_error_set(err, PC_ERR_NOMEM, name, "out of memory for %lld elements", (long long)n);
	if (t->has_raw_data && dt == ONNX_FLOAT) {
		memcpy(out->data, t->raw_data.data, want);
		return PC_OK;
	}
	for (int64_t i = 0; i < n; i++) {
		const unsigned char *raw = t->raw_data.data;
		/* raw_data is little-endian, as is every machine this builds on */
		if (t->has_raw_data) {
			if (dt == ONNX_FLOAT) {
				memcpy((float *)out->data + i, raw + 4 * i, 4);
			} else if (dt == ONNX_DOUBLE) {
				double d;
				memcpy(&d, raw + 8 * i, 8);
				((float *)out->data)[i] = (float)d;
			} else if (dt == ONNX_INT64) {
				memcpy((int64_t *)out->data + i, raw + 8 * i, 8);
			} else if (dt == ONNX_INT32) {
				int32_t v;
				memcpy(&v, raw + 4 * i, 4);
				((int64_t *)out->data)[i] = v;
			} else if (out->stored) {
				((float *)out->data)[i] = pc_stored_value(out->stored, raw[i]);
			} else {
				((int64_t *)out->data)[i] = raw[i] != 0;
			}
		} else if (dt == ONNX_FLOAT) {
			((float *)out->data)[i] = t->float_data[i];
		} else if (dt == ONNX_DOUBLE) {
			((float *)out->data)[i] = (float)t->double_data[i];
		} else if (dt == ONNX_INT64) {
			((int64_t *)out->data)[i] = t->int64_data[i];
		} else if (dt == ONNX_INT32) {
			((int64_t *)out->data)[i] = t->int32_data[i];
		} else if (out->stored) {
			int32_t v = t->int32_data[i];
			if (v < (dt == ONNX_INT8 ? -128 : 0) || v > (dt == ONNX_INT8 ? 127 : 255)) {
				free(out->data);
				out->data = NULL;
				return pc_error_set(err, PC_ERR_FORMAT, name, "int32_data[%lld] = %d is outside %s",
						    (long long)i, (int)v, pc_dtype_name(dt));
			}
			((float *)out->data)[i] = (float)v;
		} else {
			((int64_t *)out->data)[i] = t->int32_data[i] != 0;
		}
	}
	return PC_OK;
}
/* Old exporters leave AttributeProto.type unset: infer it from content. */
static int attr_kind(const Onnx__AttributeProto *a)
{
	if (a->has_type && a->type)
		return a->type;
	if (a->g || a->n_graphs)
		return a->g ? ATTR_GRAPH : ATTR_GRAPHS;
	if (a->t)
		return ATTR_TENSOR;
	if (a->n_floats)
		return ATTR_FLOATS;
	if (a->n_ints)
		return ATTR_INTS;
	if (a->n_strings)
		return ATTR_STRINGS;
	if (a->n_tensors)
		return ATTR_TENSORS;
	if (a->has_s)
		return ATTR_STRING;
	if (a->has_f)
		return ATTR_FLOAT;
	if (a->has_i)
		return ATTR_INT;
	return 0;
}

/* Fills attrs[0..n) (strings and tensors borrowed or in *held); the caller
 * frees what held collects. */
static int convert_attrs(const Onnx__NodeProto *np, const char *where, struct pc_attr *attrs, char **strs,
			 struct tensor_data *tensors, struct pc_error *err)
{
	for (size_t i = 0; i < np->n_attribute; i++) {
		const Onnx__AttributeProto *a = np->attribute[i];
		struct pc_attr *d = &attrs[i];
		const char *an = a->name ? a->name : "";
		int kind = attr_kind(a);

		memset(d, 0, sizeof(*d));
		d->name = an;
		if (a->ref_attr_name && a->ref_attr_name[0])
			return pc_error_set(
			    err, PC_ERR_UNSUPPORTED, where,
			    "attribute '%s' refers to a function attribute; functions are not supported", an);
		switch (kind) {
		case ATTR_FLOAT:
			d->type = PC_ATTR_FLOAT;
			d->f = a->f;
			break;
		case ATTR_INT:
			d->type = PC_ATTR_INT;
			d->i = a->i;
			break;
		case ATTR_STRING:
			d->type = PC_ATTR_STRING;
			strs[i] = malloc(a->s.len + 1);
			if (!strs[i])
				return pc_error_set(err, PC_ERR_NOMEM, where, "out of memory");
			if (a->s.len)
				memcpy(strs[i], a->s.data, a->s.len);
			strs[i][a->s.len] = '\0';
			if (strlen(strs[i]) != a->s.len)
				return pc_error_set(err, PC_ERR_FORMAT, where, "attribute '%s' holds a NUL byte", an);
			d->s = strs[i];
			break;
		case ATTR_FLOATS:
			if (a->n_floats > (1u << 20))
				return pc_error_set(err, PC_ERR_LIMIT, where, "attribute '%s' has %zu floats", an,
						    a->n_floats);
			d->type = PC_ATTR_FLOATS;
			d->n = (int)a->n_floats;
			d->floats = a->floats;
			break;
		case ATTR_INTS:
			if (a->n_ints > (1u << 20))
				return pc_error_set(err, PC_ERR_LIMIT, where, "attribute '%s' has %zu ints", an,
						    a->n_ints);
			d->type = PC_ATTR_INTS;
			d->n = (int)a->n_ints;
			d->ints = a->ints;
			break;
		case ATTR_STRINGS: {
			/* one block in strs[i]: the pointers, then NUL-terminated copies */
			size_t bytes;
			char **list, *chars;
			if (a->n_strings > 1024)
				return pc_error_set(err, PC_ERR_LIMIT, where, "attribute '%s' has %zu strings", an,
						    a->n_strings);
			bytes = a->n_strings * sizeof(char *);
			for (size_t k = 0; k < a->n_strings; k++) {
				if (a->strings[k].len > (1u << 20))
					return pc_error_set(err, PC_ERR_LIMIT, where,
							    "attribute '%s' has a string of %zu bytes", an,
							    a->strings[k].len);
				bytes += a->strings[k].len + 1;
			}
			list = malloc(bytes + 1);
			if (!list)
				return pc_error_set(err, PC_ERR_NOMEM, where, "out of memory");
			strs[i] = (char *)list;
			chars = (char *)(list + a->n_strings);
			for (size_t k = 0; k < a->n_strings; k++) {
				size_t len = a->strings[k].len;
				if (len)
					memcpy(chars, a->strings[k].data, len);
				chars[len] = '\0';
				if (strlen(chars) != len)
					return pc_error_set(err, PC_ERR_FORMAT, where,
							    "attribute '%s' holds a NUL byte", an);
				list[k] = chars;
				chars += len + 1;
			}
			d->type = PC_ATTR_STRINGS;
			d->n = (int)a->n_strings;
			d->strings = (const char *const *)list;
			break;
		}
		case ATTR_TENSOR: {
			char what[480];
			snprintf(what, sizeof(what), "%s attribute '%s'", where, an);
			if (!a->t)
				return pc_error_set(err, PC_ERR_FORMAT, where, "attribute '%s' has no tensor", an);
			if (convert_tensor(a->t, what, NULL, &tensors[i], err))
				return err ? err->code : PC_ERR_FORMAT;
			/* PyTorch's exporter writes QDQ zero points as Constant
			 * nodes: add_node marks their output as integers */
			if (tensors[i].stored && (!np->op_type || strcmp(np->op_type, "Constant") != 0))
				return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
						    "attribute '%s' holds an int8/uint8 tensor; paracorr reads those "
						    "only as a Constant's value or an initializer",
						    an);
			d->type = PC_ATTR_TENSOR;
			d->tdtype = tensors[i].dtype;
			d->tshape = tensors[i].shape;
			d->tdata = tensors[i].data;
			break;
		}
		case ATTR_GRAPH:
		case ATTR_GRAPHS:
			return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
					    "attribute '%s' holds a subgraph; control flow (If, Loop, Scan) is not "
					    "supported",
					    an);
		default:
			return pc_error_set(
			    err, PC_ERR_UNSUPPORTED, where,
			    "attribute '%s' has type %d; supported: float, int, string, tensor, floats, "
			    "ints, strings",
			    an, kind);
		}
	}
	return PC_OK;
}

static int add_node(struct pc_graph *g, const Onnx__NodeProto *np, size_t index, struct pc_error *err)
{
	char where[200];
	const char *op = np->op_type ? np->op_type : "";
	const char *name = np->name && np->name[0] ? np->name : NULL;
	char fallback[32];
	size_t na = np->n_attribute;
	struct pc_attr *attrs = NULL;
	char **strs = NULL;
	struct tensor_data *tensors = NULL;
	int rc;

	if (!name) {
		snprintf(fallback, sizeof(fallback), "#%zu", index);
		name = fallback;
	}
	snprintf(where, sizeof(where), "node '%s' (%s)", name, op);
	if (!op[0])
		return pc_error_set(err, PC_ERR_FORMAT, where, "node has no op_type");
	if (!is_default_domain(np->domain))
		return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
				    "op is in domain '%s'; paracorr runs only the default ONNX domain", np->domain);
	if (np->n_input > 1024 || np->n_output > 64 || na > 256)
		return pc_error_set(err, PC_ERR_LIMIT, where, "node has %zu inputs, %zu outputs, %zu attributes",
				    np->n_input, np->n_output, na);
	for (size_t i = 0; i < np->n_input; i++)
		if (!np->input[i])
			return pc_error_set(err, PC_ERR_FORMAT, where, "input %zu has no name", i);
	for (size_t i = 0; i < np->n_output; i++)
		if (!np->output[i])
			return pc_error_set(err, PC_ERR_FORMAT, where, "output %zu has no name", i);
	attrs = calloc(na + 1, sizeof(*attrs));
	strs = calloc(na + 1, sizeof(*strs));
	tensors = calloc(na + 1, sizeof(*tensors));
	if (!attrs || !strs || !tensors) {
		rc = pc_error_set(err, PC_ERR_NOMEM, where, "out of memory");
		goto out;
	}
	rc = convert_attrs(np, where, attrs, strs, tensors, err);
	if (rc)
		goto out;
	rc = pc_graph_add_node(g, op, name, (int)np->n_input, (const char *const *)np->input, (int)np->n_output,
			       (const char *const *)np->output, (int)na, attrs, err);
	/* a Constant of int8/uint8 values: its output holds integers, as such
	 * an initializer does (a zero point; check_int_uses keeps it one) */
	for (size_t i = 0; !rc && i < na && np->n_output > 0 && np->output[0][0]; i++)
		if (tensors[i].stored)
			g->values[pc_graph_lookup(g, np->output[0])].stored = tensors[i].stored;
out:
	for (size_t i = 0; strs && tensors && i < na; i++) {
		free(strs[i]);
		free(tensors[i].data);
	}
	free(strs);
	free(tensors);
	free(attrs);
	return rc;
}

static int add_input(struct pc_graph *g, const Onnx__ValueInfoProto *vi, struct pc_error *err)
{
	const Onnx__TypeProto__Tensor *tt;
	struct pc_shape shape = {0};

	if (vi->type == NULL || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
	    !(tt = vi->type->tensor_type))
		return pc_error_set(err, PC_ERR_UNSUPPORTED, vi->name, "graph input is not a tensor");
	int elem = tt->has_elem_type ? tt->elem_type : 0;
	/* token ids arrive as int64 (int32 inputs are fed the same values) */
	if (elem != ONNX_FLOAT && elem != ONNX_INT64 && elem != ONNX_INT32)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, vi->name,
				    "graph input has element type %s; paracorr feeds float inputs and int64 or "
				    "int32 token ids",
				    pc_dtype_name(elem));
	if (!tt->shape)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, vi->name, "graph input has no shape");
	if (tt->shape->n_dim > PC_MAX_DIMS)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, vi->name, "graph input has rank %zu", tt->shape->n_dim);
	shape.ndim = (int)tt->shape->n_dim;
	for (size_t i = 0; i < tt->shape->n_dim; i++) {
		const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
		if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
			if (d->dim_value < 1)
				return pc_error_set(err, PC_ERR_FORMAT, vi->name, "graph input dimension %zu is %lld",
						    i, (long long)d->dim_value);
			shape.dim[i] = d->dim_value;
		} else {
			shape.dim[i] = -1; /* symbolic: plan.c allows it on the batch axis only */
		}
	}
	return pc_graph_add_input_typed(g, vi->name, &shape, elem == ONNX_FLOAT ? PC_DTYPE_FLOAT : PC_DTYPE_INT64, err);
}

/* An int8 / uint8 initializer (or Constant) is read as the integers
 * DequantizeLinear turns into real numbers (its input 0) or as a zero point
 * (input 2 of either QDQ op); anywhere else its floats would silently be
 * taken for real values. */
static int check_int_uses(const struct pc_graph *g, const Onnx__GraphProto *gp, struct pc_error *err)
{
	for (size_t k = 0; k < gp->n_node; k++) {
		const Onnx__NodeProto *np = gp->node[k];
		const char *op = np->op_type ? np->op_type : "";
		int dq = strcmp(op, "DequantizeLinear") == 0, q = strcmp(op, "QuantizeLinear") == 0;

		for (size_t i = 0; i < np->n_input; i++) {
			int v = np->input[i][0] ? pc_graph_lookup(g, np->input[i]) : -1;
			char where[200];

			if (v < 0 || !g->values[v].stored || (dq && i == 0) || ((dq || q) && i == 2))
				continue;
			if (np->name && np->name[0])
				snprintf(where, sizeof(where), "node '%s' (%s)", np->name, op);
			else
				snprintf(where, sizeof(where), "node '#%zu' (%s)", k, op);
			return pc_error_set(err, PC_ERR_UNSUPPORTED, where,
					    "input %zu is the %s tensor '%s'; paracorr reads int8/uint8 "
					    "tensors only as DequantizeLinear's input 0 or as a zero point",
					    i, g->values[v].stored == PC_STORED_INT8 ? "int8" : "uint8", np->input[i]);
		}
	}
	return PC_OK;
}

static int translate(Onnx__ModelProto *m, struct pc_graph **out, struct pc_error *err)
{
	Onnx__GraphProto *gp = m->graph;
	struct pc_graph *g = NULL;
	int64_t opset = -1;
	int rc = PC_OK;

	if (!gp)
		return pc_error_set(err, PC_ERR_FORMAT, "model", "the file holds no graph (not an ONNX model?)");
	if (m->n_functions)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, "model.functions",
				    "the model defines %zu local functions; not supported", m->n_functions);
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *os = m->opset_import[i];
		if (is_default_domain(os->domain))
			opset = os->has_version ? os->version : -1;
	}
	if (opset < 0)
		return pc_error_set(err, PC_ERR_FORMAT, "model.opset_import", "no opset for the default ONNX domain");
	if (opset < PC_OPSET_MIN || opset > PC_OPSET_MAX)
		return pc_error_set(err, PC_ERR_UNSUPPORTED, "model.opset_import",
				    "opset %lld is not supported (supported: %d to %d)", (long long)opset, PC_OPSET_MIN,
				    PC_OPSET_MAX);
	g = pc_graph_new((int)opset, err);
	if (!g)
		return err ? err->code : PC_ERR_NOMEM;
	for (size_t i = 0; i < gp->n_initializer; i++) {
		Onnx__TensorProto *t = gp->initializer[i];
		struct tensor_data td;
		char what[48];
		snprintf(what, sizeof(what), "initializer #%zu", i);
		if (!t->name || !t->name[0]) {
			rc = pc_error_set(err, PC_ERR_FORMAT, what, "initializer has no name");
			goto fail;
		}
		rc = convert_tensor(t, what, &t->raw_data, &td, err);
		if (rc)
			goto fail;
		rc = pc_graph_adopt_initializer(g, t->name, &td.shape, td.dtype, td.data, err);
		if (rc)
			goto fail;
		g->values[pc_graph_lookup(g, t->name)].stored = td.stored;
	}
	for (size_t i = 0; i < gp->n_input; i++) {
		const Onnx__ValueInfoProto *vi = gp->input[i];
		if (!vi->name || !vi->name[0]) {
			rc = pc_error_set(err, PC_ERR_FORMAT, "graph.input", "input #%zu has no name", i);
			goto fail;
		}
		/* IR < 4 lists initializers among the inputs too */
		if (pc_graph_lookup(g, vi->name) >= 0)
			continue;
		rc = add_input(g, vi, err);
		if (rc)
			goto fail;
	}
	for (size_t i = 0; i < gp->n_node; i++) {
		rc = add_node(g, gp->node[i], i, err);
		if (rc)
			goto fail;
	}
	if ((rc = check_int_uses(g, gp, err)))
		goto fail;
	for (size_t i = 0; i < gp->n_output; i++) {
		const char *name = gp->output[i]->name;
		if (!name || !name[0]) {
			rc = pc_error_set(err, PC_ERR_FORMAT, "graph.output", "output #%zu has no name", i);
			goto fail;
		}
		rc = pc_graph_add_output(g, name, err);
		if (rc)
			goto fail;
	}
	rc = pc_graph_finish(g, err);
	if (rc)
		goto fail;
	*out = g;
	return PC_OK;
fail:
	pc_graph_free(g);
	return rc ? rc : PC_ERR_FORMAT;
}

/* --- the wire format, checked before protobuf-c sees it ---------------------
 *
 * protobuf-c unpacks a sub-message by recursing, one C frame per level, and
 * the ONNX schema is recursive (GraphProto > NodeProto > AttributeProto.g >
 * GraphProto ...): a 50 KB file nesting a few thousand levels overflows the
 * stack of the thread that loads it, the daemon's HTTP thread included. So
 * the buffer is walked here first, without recursion: an explicit stack
 * PC_ONNX_MAX_NESTING deep, descending exactly into the fields protobuf-c
 * would unpack as sub-messages (read from the generated descriptors, so the
 * walk follows core/onnx.proto if it grows). It refuses deeper nesting,
 * malformed tags and varints, lengths past the end of their message and
 * group wire types, each naming the byte offset; fields the schema does not
 * know are skipped, as protobuf-c skips them.
 *
 * It also checks every string field: UTF-8 (names go into JSON reports and
 * error messages, where invalid bytes would be dropped or break the body)
 * and no NUL byte (protobuf-c would silently cut the name there). */

struct wire_level {
	const ProtobufCMessageDescriptor *desc;
	const ProtobufCFieldDescriptor *field; /* the parent's field holding it; NULL for the model */
	size_t index;			       /* its place among that field's occurrences */
	size_t end;			       /* one past its last byte */
	uint32_t seen[32];		       /* occurrences so far of each field number below 32 */
};

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_LEN = 2, WIRE_FIXED32 = 5 };

/* A varint at *pos, within end: 0; -1 when it runs past end; -2 when it is
 * longer than 10 bytes or beyond 64 bits. */
static int wire_varint(const unsigned char *b, size_t end, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 10; i++) {
		unsigned char c;
		if (*pos >= end)
			return -1;
		c = b[(*pos)++];
		if (i == 9 && c > 1)
			return -2;
		v |= (uint64_t)(c & 0x7f) << (7 * i);
		if (!(c & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -2;
}

/* "graph.node[3].attribute[0]" for levels 1..depth, then `last` (a field of
 * the innermost, or NULL) with its index. */
static const char *wire_path(const struct wire_level *lv, int depth, const ProtobufCFieldDescriptor *last,
			     size_t last_index, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 1; i <= depth + (last != NULL) && used < size; i++) {
		const ProtobufCFieldDescriptor *f = i <= depth ? lv[i].field : last;
		size_t index = i <= depth ? lv[i].index : last_index;
		int w = f->label == PROTOBUF_C_LABEL_REPEATED
			    ? snprintf(buf + used, size - used, "%s%s[%zu]", i > 1 ? "." : "", f->name, index)
			    : snprintf(buf + used, size - used, "%s%s", i > 1 ? "." : "", f->name);
		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (!buf[0])
		snprintf(buf, size, "the model");
	return buf;
}

/* One more named value (an initializer, a graph input or a node output)
 * against max_values. */
static int count_value(int64_t *values, const struct pc_limits *lim, size_t at, struct pc_error *err)
{
	if (++*values <= lim->max_values)
		return PC_OK;
	return pc_error_set(err, PC_ERR_LIMIT, "model",
			    "the model names more than %lld values (initializers, inputs and node outputs; value %lld "
			    "at byte offset %zu); the limit is %lld",
			    (long long)lim->max_values, (long long)*values, at, (long long)lim->max_values);
}

static int check_wire(const unsigned char *b, size_t len, struct pc_error *err)
{
	struct wire_level lv[PC_ONNX_MAX_NESTING + 1];
	const struct pc_limits *lim = pc_limits_get();
	char path[200];
	size_t pos = 0;
	int depth = 0;
	/* counted here, before protobuf-c unpacks a struct for each: a node
	 * takes 2 bytes of the file and a hundred of memory */
	int64_t nodes = 0, values = 0;

	memset(&lv[0], 0, sizeof(lv[0]));
	lv[0].desc = &onnx__model_proto__descriptor;
	lv[0].end = len;
	for (;;) {
		const ProtobufCFieldDescriptor *f;
		struct wire_level *cur;
		size_t at, index = 0, end;
		uint64_t tag, n;
		int rc;

		while (pos == lv[depth].end) {
			if (depth == 0)
				return PC_OK;
			depth--;
		}
		cur = &lv[depth];
		end = cur->end;
		at = pos;
		if ((rc = wire_varint(b, end, &pos, &tag)) || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
			return pc_error_set(err, PC_ERR_FORMAT, "model",
					    "malformed field tag at byte offset %zu, in %s: %s", at,
					    wire_path(lv, depth, NULL, 0, path, sizeof(path)),
					    rc == -1   ? "it runs past the end of its message"
					    : rc == -2 ? "a varint longer than 10 bytes"
						       : "field number 0 or above 2^29-1");
		f = protobuf_c_message_descriptor_get_field(cur->desc, (unsigned)(tag >> 3));
		if (tag >> 3 < 32)
			index = cur->seen[tag >> 3]++;
		switch ((int)(tag & 7)) {
		case WIRE_VARINT:
			at = pos;
			if ((rc = wire_varint(b, end, &pos, &n)))
				return pc_error_set(err, PC_ERR_FORMAT, "model",
						    "malformed varint at byte offset %zu (field %llu of %s): %s", at,
						    (unsigned long long)(tag >> 3),
						    wire_path(lv, depth, NULL, 0, path, sizeof(path)),
						    rc == -1 ? "it runs past the end of its message"
							     : "longer than 10 bytes or beyond 64 bits");
			break;
		case WIRE_FIXED64:
		case WIRE_FIXED32: {
			size_t w = (tag & 7) == WIRE_FIXED64 ? 8 : 4;
			if (end - pos < w)
				return pc_error_set(
				    err, PC_ERR_FORMAT, "model",
				    "field %llu at byte offset %zu (in %s) needs %zu bytes; its message "
				    "has %zu left",
				    (unsigned long long)(tag >> 3), at,
				    wire_path(lv, depth, NULL, 0, path, sizeof(path)), w, end - pos);
			pos += w;
			break;
		}
		case WIRE_LEN:
			if ((rc = wire_varint(b, end, &pos, &n)) || n > end - pos) {
				char what[240];
				if (f)
					wire_path(lv, depth, f, index, what, sizeof(what));
				else
					snprintf(what, sizeof(what), "field %llu of %s", (unsigned long long)(tag >> 3),
						 wire_path(lv, depth, NULL, 0, path, sizeof(path)));
				return pc_error_set(err, PC_ERR_FORMAT, "model", "%s at byte offset %zu: %s", what, at,
						    rc == -1   ? "its length runs past the end of its message"
						    : rc == -2 ? "its length is a varint longer than 10 bytes"
							       : "its length passes the end of its message");
			}
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				if (f->descriptor == &onnx__node_proto__descriptor && ++nodes > lim->max_nodes)
					return pc_error_set(
					    err, PC_ERR_LIMIT, "model",
					    "the model has more than %lld nodes (node %lld at byte offset "
					    "%zu); the limit is %lld",
					    (long long)lim->max_nodes, (long long)nodes, at, (long long)lim->max_nodes);
				if (cur->desc == &onnx__graph_proto__descriptor &&
				    (!strcmp(f->name, "initializer") || !strcmp(f->name, "input")) &&
				    (rc = count_value(&values, lim, at, err)))
					return rc;
				if (depth == PC_ONNX_MAX_NESTING)
					return pc_error_set(
					    err, PC_ERR_LIMIT, "model",
					    "sub-messages nest to depth %d at byte offset %zu (%s); the limit is %d "
					    "(no model paracorr can run nests this deep)",
					    depth + 1, at, wire_path(lv, depth, f, index, path, sizeof(path)),
					    PC_ONNX_MAX_NESTING);
				depth++;
				memset(&lv[depth], 0, sizeof(lv[depth]));
				lv[depth].desc = f->descriptor;
				lv[depth].field = f;
				lv[depth].index = index;
				lv[depth].end = pos + n;
				continue;
			}
			if (f && f->type == PROTOBUF_C_TYPE_STRING && cur->desc == &onnx__node_proto__descriptor &&
			    !strcmp(f->name, "output") && (rc = count_value(&values, lim, at, err)))
				return rc;
			if (f && f->type == PROTOBUF_C_TYPE_STRING) {
				size_t ok = pc_utf8_prefix(b + pos, n);
				const void *nul = memchr(b + pos, 0, n);
				if (nul && (size_t)((const unsigned char *)nul - (b + pos)) <= ok)
					return pc_error_set(err, PC_ERR_FORMAT, "model",
							    "%s holds a NUL byte at byte offset %zu",
							    wire_path(lv, depth, f, index, path, sizeof(path)),
							    (size_t)((const unsigned char *)nul - b));
				if (ok < n)
					return pc_error_set(err, PC_ERR_FORMAT, "model",
							    "%s is not valid UTF-8: byte 0x%02x at byte offset %zu",
							    wire_path(lv, depth, f, index, path, sizeof(path)),
							    b[pos + ok], pos + ok);
			}
			pos += n;
			break;
		default:
			return pc_error_set(err, PC_ERR_FORMAT, "model",
					    "field %llu at byte offset %zu (in %s) has wire type %d; protobuf groups "
					    "and unknown wire types are not ONNX",
					    (unsigned long long)(tag >> 3), at,
					    wire_path(lv, depth, NULL, 0, path, sizeof(path)), (int)(tag & 7));
		}
	}
}

/* protobuf-c allocates through this rather than its default: unpack
 * returns NULL for a malformed file and for an allocation that failed
 * alike, and the flag tells them apart (an upload that met a full heap is
 * not a bad file). It also makes protobuf-c's allocations calls to malloc
 * from the core, which the tests' allocation-failure injector counts. */
struct pb_heap {
	ProtobufCAllocator a;
	int failed;
};

static void *pb_alloc(void *data, size_t size)
{
	/* a weight's raw_data: filled by one copy, its faults the cost */
	void *p = pc_sys_malloc_huge(size);

	if (!p)
		((struct pb_heap *)data)->failed = 1;
	return p;
}

static void pb_free(void *data, void *p)
{
	free(p);
}

static void pb_heap_init(struct pb_heap *h)
{
	h->a.alloc = pb_alloc;
	h->a.free = pb_free;
	h->a.allocator_data = h;
	h->failed = 0;
}

/* m unpacked from b[0..len), or an error naming why not. */
static int unpack_model(const void *b, size_t len, struct pb_heap *h, Onnx__ModelProto **m, struct pc_error *err)
{
	pb_heap_init(h);
	if ((*m = onnx__model_proto__unpack(&h->a, len, b)))
		return PC_OK;
	if (h->failed)
		return pc_error_set(err, PC_ERR_NOMEM, "model", "out of memory decoding %zu bytes of ONNX", len);
	return pc_error_set(err, PC_ERR_FORMAT, "model",
			    "%zu bytes that do not decode as an ONNX ModelProto (truncated or not ONNX)", len);
}

/* The graph of the ONNX bytes data[0..len); owned, when not NULL, is data
 * itself, freed as soon as it is decoded so that the file's bytes and the
 * graph's are never all held at once. */
static int load(const void *data, size_t len, void *owned, struct pc_graph **out, struct pc_error *err)
{
	Onnx__ModelProto *m;
	struct pb_heap heap;
	int rc;

	*out = NULL;
	if (len == 0)
		rc = pc_error_set(err, PC_ERR_FORMAT, "model", "the file is empty");
	else if (len > PC_ONNX_MAX_BYTES)
		rc = pc_error_set(err, PC_ERR_LIMIT, "model", "the file has %zu bytes; the limit is %zu", len,
				  PC_ONNX_MAX_BYTES);
	else if (!(rc = check_wire(data, len, err)))
		rc = unpack_model(data, len, &heap, &m, err);
	free(owned);
	if (rc)
		return rc;
	rc = translate(m, out, err);
	onnx__model_proto__free_unpacked(m, &heap.a);
	return rc;
}

int pc_onnx_load_buffer(const void *data, size_t len, struct pc_graph **out, struct pc_error *err)
{
	return load(data, len, NULL, out, err);
}

int pc_onnx_load_file(const char *path, struct pc_graph **out, struct pc_error *err)
{
	unsigned char *buf;
	size_t size;
	int rc;

	*out = NULL;
	if ((rc = pc_sys_read_file(path, PC_ONNX_MAX_BYTES, &buf, &size, err)))
		return rc;
	rc = load(buf, size, buf, out, err);
	if (rc && err && err->where[0] && strcmp(err->where, "model") == 0)
		snprintf(err->where, sizeof(err->where), "%s", path);
	return rc;
}

/* t's values replaced by n = numel(shape) floats, as raw_data. */
static int set_raw(Onnx__TensorProto *t, const float *data, const struct pc_shape *shape, struct pc_error *err)
{
	int64_t numel = 1, tn = 1;

	for (int d = 0; d < shape->ndim; d++)
		numel *= shape->dim[d];
	for (size_t d = 0; d < t->n_dims; d++)
		tn *= t->dims[d];
	if (tn != numel)
		return pc_error_set(err, PC_ERR_FORMAT, t->name, "has %lld values; the graph's has %lld", (long long)tn,
				    (long long)numel);
	free(t->float_data);
	t->float_data = NULL;
	t->n_float_data = 0;
	free(t->raw_data.data);
	t->raw_data.len = (size_t)numel * sizeof(float);
	if (!(t->raw_data.data = malloc(t->raw_data.len ? t->raw_data.len : 1))) {
		t->raw_data.len = 0;
		return pc_error_set(err, PC_ERR_NOMEM, t->name, "out of memory");
	}
	memcpy(t->raw_data.data, data, t->raw_data.len);
	t->has_raw_data = 1;
	return 0;
}

/* t's values replaced by the n stored integers of an int8 / uint8
 * parameter, as raw bytes. Weights trained off the integers are rounded
 * half to even and saturated to the type: the file can hold nothing else. */
static int set_stored(Onnx__TensorProto *t, const float *data, int64_t n, enum pc_stored_type type,
		      struct pc_error *err)
{
	free(t->int32_data);
	t->int32_data = NULL;
	t->n_int32_data = 0;
	free(t->raw_data.data);
	t->raw_data.len = (size_t)n;
	if (!(t->raw_data.data = malloc(n ? (size_t)n : 1))) {
		t->raw_data.len = 0;
		return pc_error_set(err, PC_ERR_NOMEM, t->name, "out of memory");
	}
	for (int64_t i = 0; i < n; i++)
		t->raw_data.data[i] = pc_stored_byte(type, data[i]);
	t->has_raw_data = 1;
	return 0;
}

/* A float initializer named name holding data (shape's count of floats),
 * allocated as protobuf-c frees it. */
static Onnx__TensorProto *new_initializer(const char *name, const struct pc_shape *shape, const float *data)
{
	Onnx__TensorProto *t = malloc(sizeof(*t));
	size_t n = (size_t)pc_shape_count(shape);

	if (!t)
		return NULL;
	onnx__tensor_proto__init(t);
	t->name = malloc(strlen(name) + 1);
	t->dims = malloc((size_t)shape->ndim * sizeof(*t->dims) + 1);
	t->raw_data.data = malloc(n * sizeof(float) + 1);
	if (!t->name || !t->dims || !t->raw_data.data) {
		protobuf_c_message_free_unpacked(&t->base, NULL);
		return NULL;
	}
	memcpy(t->name, name, strlen(name) + 1);
	t->n_dims = (size_t)shape->ndim;
	for (int d = 0; d < shape->ndim; d++)
		t->dims[d] = shape->dim[d];
	t->has_data_type = 1;
	t->data_type = ONNX_FLOAT;
	t->has_raw_data = 1;
	t->raw_data.len = n * sizeof(float);
	memcpy(t->raw_data.data, data, n * sizeof(float));
	return t;
}

/* The graph value a source Identity node names as its output, or NULL. */
static const struct pc_value *identity_output(const Onnx__NodeProto *np, const struct pc_graph *g)
{
	int v;

	if (!np->op_type || strcmp(np->op_type, "Identity") != 0 || np->n_input != 1 || np->n_output != 1 ||
	    !np->input[0] || !np->output[0] || (v = pc_graph_lookup(g, np->output[0])) < 0)
		return NULL;
	return &g->values[v];
}

/* Whether the graph made val (an Identity output in the source) an
 * initializer of its own. */
static int is_folded(const struct pc_value *val)
{
	return val && val->producer < 0 &&
	       (val->kind == PC_VALUE_PARAM ||
		(val->kind == PC_VALUE_CONST && val->dtype == PC_DTYPE_FLOAT && val->fdata));
}

/* The source's Identity nodes that loading folded (graph.c's
 * fold_identities): an Identity output the graph holds as an initializer of
 * its own (running statistics copied out of a weight, a weight copied out
 * of statistics) becomes that initializer, with the graph's values, and the
 * node goes; one the graph made read another initializer reads it here too.
 * *params counts the weight tensors written. */
static int write_folded(Onnx__GraphProto *gp, const struct pc_graph *g, const float *weights, int *params,
			struct pc_error *err)
{
	size_t add = 0, keep = 0, k;
	int rc = PC_OK;

	/* counted first, so that the initializer list grows once and the node
	 * list is compacted in one pass: linear however many there are */
	for (k = 0; k < gp->n_node; k++)
		add += is_folded(identity_output(gp->node[k], g));
	if (add) {
		Onnx__TensorProto **grown = realloc(gp->initializer, (gp->n_initializer + add) * sizeof(*grown));
		if (!grown)
			return pc_error_set(err, PC_ERR_NOMEM, "model", "out of memory");
		gp->initializer = grown;
	}
	for (k = 0; k < gp->n_node && !rc; k++) {
		Onnx__NodeProto *np = gp->node[k];
		const struct pc_value *val = identity_output(np, g);
		Onnx__TensorProto *t;

		if (val && val->producer >= 0) {
			const struct pc_node *gn = &g->nodes[val->producer];
			const char *reads =
			    gn->op == PC_OP_IDENTITY && gn->in[0] >= 0 ? g->values[gn->in[0]].name : NULL;
			if (reads && strcmp(reads, np->input[0]) != 0) {
				char *name = malloc(strlen(reads) + 1);
				if (!name) {
					rc = pc_error_set(err, PC_ERR_NOMEM, "model", "out of memory");
					break;
				}
				memcpy(name, reads, strlen(reads) + 1);
				free(np->input[0]);
				np->input[0] = name;
			}
		}
		if (!is_folded(val)) {
			gp->node[keep++] = np;
			continue;
		}
		t = new_initializer(val->name, &val->shape,
				    val->kind == PC_VALUE_PARAM ? weights + g->ptab[val->param].offset : val->fdata);
		if (!t) {
			rc = pc_error_set(err, PC_ERR_NOMEM, val->name, "out of memory");
			break;
		}
		gp->initializer[gp->n_initializer++] = t;
		*params += val->kind == PC_VALUE_PARAM;
		protobuf_c_message_free_unpacked(&np->base, NULL);
	}
	/* on an error the nodes not reached stay, so that the model frees whole */
	for (; k < gp->n_node; k++)
		gp->node[keep++] = gp->node[k];
	gp->n_node = keep;
	return rc;
}

/* The values to write for buffer val: stats' copy when it has one. */
static const float *stats_values(const struct pc_plan *stats, const struct pc_value *val)
{
	for (int i = 0; stats && i < pc_plan_stats_count(stats); i++) {
		const char *name;
		const float *data = pc_plan_stats(stats, i, NULL, &name);

		if (strcmp(name, val->name) == 0)
			return data;
	}
	return val->fdata;
}

int pc_onnx_save_weights_buffer(const void *src, size_t len, const struct pc_graph *g, const float *weights,
				const struct pc_plan *stats, unsigned char **out, size_t *out_len, struct pc_error *err)
{
	Onnx__ModelProto *m;
	struct pb_heap heap;
	int rc = 0, replaced = 0;

	*out = NULL;
	*out_len = 0;
	/* the source was loaded once, but it is read again: the same guard */
	if ((rc = check_wire(src, len, err)))
		return rc;
	/* the fields replaced below are freed and made with free and malloc:
	 * the same heap as pb_heap's */
	if ((rc = unpack_model(src, len, &heap, &m, err)))
		return rc;
	if (!m->graph) {
		rc = pc_error_set(err, PC_ERR_FORMAT, "model", "no graph");
		goto out;
	}
	for (size_t i = 0; i < m->graph->n_initializer; i++) {
		Onnx__TensorProto *t = m->graph->initializer[i];
		const struct pc_param *p;
		int64_t numel = 1;
		int k;

		if (!t->name)
			continue;
		if ((k = pc_graph_find_param(g, t->name)) < 0) {
			/* a float buffer training may have moved (BatchNormalization's
			 * running statistics) is written with stats' values */
			int v = pc_graph_lookup(g, t->name);
			const struct pc_value *val = v >= 0 ? &g->values[v] : NULL;

			if (val && val->kind == PC_VALUE_CONST && val->dtype == PC_DTYPE_FLOAT && val->fdata &&
			    t->has_data_type && t->data_type == 1 &&
			    (rc = set_raw(t, stats_values(stats, val), &val->shape, err)))
				goto out;
			continue;
		}
		p = pc_graph_param(g, k);
		for (size_t d = 0; d < t->n_dims; d++)
			numel *= t->dims[d];
		if (p->stored) {
			if (numel != p->count || !t->has_data_type || t->data_type != (int)p->stored) {
				rc = pc_error_set(
				    err, PC_ERR_FORMAT, t->name,
				    "the source's initializer is not the %s tensor of %lld values the graph has",
				    pc_dtype_name((int)p->stored), (long long)p->count);
				goto out;
			}
			if ((rc = set_stored(t, weights + p->offset, p->count, p->stored, err)))
				goto out;
			replaced++;
			continue;
		}
		if (numel != p->count || !t->has_data_type || t->data_type != 1) {
			rc = pc_error_set(
			    err, PC_ERR_FORMAT, t->name,
			    "the source's initializer is not the float tensor of %lld values the graph has",
			    (long long)p->count);
			goto out;
		}
		/* the values as raw little-endian bytes, whatever field held them */
		free(t->float_data);
		t->float_data = NULL;
		t->n_float_data = 0;
		free(t->raw_data.data);
		t->raw_data.len = (size_t)p->count * sizeof(float);
		if (!(t->raw_data.data = malloc(t->raw_data.len ? t->raw_data.len : 1))) {
			t->raw_data.len = 0;
			rc = pc_error_set(err, PC_ERR_NOMEM, t->name, "out of memory");
			goto out;
		}
		memcpy(t->raw_data.data, weights + p->offset, t->raw_data.len);
		t->has_raw_data = 1;
		replaced++;
	}
	if ((rc = write_folded(m->graph, g, weights, &replaced, err)))
		goto out;
	if (replaced != pc_graph_param_tensors(g)) {
		rc = pc_error_set(err, PC_ERR_FORMAT, "model", "the source has %d of the graph's %d weight tensors",
				  replaced, pc_graph_param_tensors(g));
		goto out;
	}
	*out_len = onnx__model_proto__get_packed_size(m);
	if (!(*out = malloc(*out_len ? *out_len : 1))) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "model", "out of memory for %zu bytes", *out_len);
		goto out;
	}
	onnx__model_proto__pack(m, *out);
out:
	onnx__model_proto__free_unpacked(m, &heap.a);
	return rc;
}

int pc_onnx_save_weights(const char *src_path, const struct pc_graph *g, const float *weights,
			 const struct pc_plan *stats, const char *out_path, struct pc_error *err)
{
	unsigned char *src = NULL, *dst = NULL;
	size_t len, out_len;
	char tmp[4096];
	FILE *f = NULL;
	int rc;

	if ((rc = pc_sys_read_file(src_path, PC_ONNX_MAX_BYTES, &src, &len, err)) ||
	    (rc = pc_onnx_save_weights_buffer(src, len, g, weights, stats, &dst, &out_len, err)))
		goto out;
	/* a reader never sees half a model: write aside, then rename */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", out_path) >= (int)sizeof(tmp)) {
		rc = pc_error_set(err, PC_ERR_INVALID, out_path, "the path is too long");
		goto out;
	}
	/* a failed write (a full disk is PC_ERR_NOSPACE) leaves no temp file */
	if (!(f = fopen(tmp, "wb")) || fwrite(dst, 1, out_len, f) != out_len || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		rc = pc_error_set(err, pc_status_of_errno(errno), out_path, "cannot write: %s", strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		rc = pc_error_set(err, pc_status_of_errno(errno), out_path, "cannot write: %s", strerror(errno));
		unlink(tmp);
		goto out;
	}
	f = NULL;
	if (rename(tmp, out_path) != 0) {
		rc = pc_error_set(err, pc_status_of_errno(errno), out_path, "cannot rename into place: %s",
				  strerror(errno));
		unlink(tmp);
	}
out:
	if (f) {
		fclose(f);
		unlink(tmp);
	}
	free(src);
	free(dst);
	return rc;
}
