/* groups: the layer groups, one per PyTorch module (the rule is in
 * paracorr/groups.h and docs/method.md).
 *
 * Every step is one pass: module names per parameter, a string hash from
 * module name to group, a counting sort of the groups by first node. A
 * 12-block model has ~200 tensors and ~3000 nodes; a quadratic pass over
 * them per group was what this replaces. */
#include "paracorr/groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/graph.h"

/* --- names ---------------------------------------------------------------- */

static int is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Whether s[0, n) is one non-empty identifier. */
static int is_ident(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!is_ident_char(s[i]))
			return 0;
	return 1;
}

/* Whether name is a state_dict name: two or more dot-separated identifiers.
 * *last receives the offset of the last component. */
static int is_state_dict_name(const char *name, size_t *last)
{
	size_t start = 0, i = 0;
	int parts = 0;

	for (;; i++) {
		if (name[i] == '.' || name[i] == '\0') {
			if (!is_ident(name + start, i - start))
				return 0;
			parts++;
			if (name[i] == '\0')
				break;
			start = i + 1;
		}
	}
	*last = start;
	return parts >= 2;
}

/* The layer of an RNN tensor's last component, `(weight|bias)_(ih|hh|hr)_l<k>`
 * with an optional `_reverse`, or -1. */
static long rnn_layer(const char *c)
{
	const char *p;
	char *end;
	long k;

	if (!strncmp(c, "weight_", 7))
		p = c + 7;
	else if (!strncmp(c, "bias_", 5))
		p = c + 5;
	else
		return -1;
	if (strncmp(p, "ih_l", 4) && strncmp(p, "hh_l", 4) && strncmp(p, "hr_l", 4))
		return -1;
	p += 4;
	if (*p < '0' || *p > '9')
		return -1;
	k = strtol(p, &end, 10);
	if (k < 0 || k > 1000000 || (*end && strcmp(end, "_reverse")))
		return -1;
	return k;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* The module of a state_dict name (rule 1), or NULL when out of memory. */
static char *state_dict_module(const char *name, size_t last)
{
	long k = rnn_layer(name + last);
	char *m;

	if (k < 0)
		return dup_n(name, last - 1);
	m = malloc(last + 24);
	if (m)
		snprintf(m, last + 24, "%.*s.l%ld", (int)(last - 1), name, k);
	return m;
}

/* The module path a PyTorch scope spells (rule 2b): node name
 * `/a/a.0/b/b.1/Op` -> `a.0.b.1`. PyTorch writes a container's child as
 * `<container>.<index>` right after the container, so a component that
 * extends the previous one by `.` replaces it rather than nesting. Empty
 * components are skipped. Returns "" for the root scope, NULL when out of
 * memory. */
static char *scope_path(const char *node)
{
	size_t len = strlen(node), n = 0, base = 0, prev = 0, prev_len = 0;
	const char *end = strrchr(node, '/');
	char *path = malloc(len + 1);
	int have_prev = 0;

	if (!path)
		return NULL;
	for (const char *c = node + 1; c < end;) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		size_t clen = slash ? (size_t)(slash - c) : (size_t)(end - c);
		if (clen) {
			/* `<prev>.<index>` replaces prev; base is where prev began */
			if (have_prev && clen > prev_len && !memcmp(c, node + prev, prev_len) && c[prev_len] == '.')
				n = base;
			else
				base = n;
			if (n)
				path[n++] = '.';
			memcpy(path + n, c, clen);
			n += clen;
			have_prev = 1;
			prev = (size_t)(c - node);
			prev_len = clen;
		}
		c += clen + 1;
	}
	path[n] = '\0';
	return path;
}

/* --- a string map ---------------------------------------------------------- */

struct strmap {
	const char **key; /* not owned */
	int *val;
	size_t cap; /* a power of two */
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

static int strmap_init(struct strmap *m, size_t n)
{
	m->cap = 16;
	while (m->cap < 2 * n + 1)
		m->cap <<= 1;
	m->key = calloc(m->cap, sizeof(*m->key));
	m->val = calloc(m->cap, sizeof(*m->val));
	return m->key && m->val ? 0 : -1;
}

static void strmap_free(struct strmap *m)
{
	free(m->key);
	free(m->val);
}

/* The slot of key: holding it, or empty where it goes. */
static size_t strmap_slot(const struct strmap *m, const char *key)
{
	size_t i = (size_t)hash_str(key) & (m->cap - 1);

	while (m->key[i] && strcmp(m->key[i], key))
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* --- building --------------------------------------------------------------- */

static int is_rnn(const struct pc_graph *g, int k)
{
	const char *op = pc_graph_node_op(g, k);

	return !strcmp(op, "LSTM") || !strcmp(op, "GRU") || !strcmp(op, "RNN");
}

/* Whether parameter table entry i (-1: not a parameter) has a state_dict
 * name. */
static int named_param(const struct pc_graph *g, int i)
{
	size_t last;

	return i >= 0 && is_state_dict_name(pc_graph_param(g, i)->name, &last);
}

/* owner[k], for a MatMul, Gemm or Conv k: the parameter whose module a
 * constant-folded weight of k joins (rule 2a), or -1. A named parameter k
 * reads itself (a Gemm's bias) comes first, then one an Add adds to k's
 * output. */
static void linear_owners(const struct pc_graph *g, int *owner)
{
	int nn = pc_graph_node_count(g);

	for (int k = 0; k < nn; k++) {
		owner[k] = -1;
		if (!pc_graph_node_linear_op(g, k))
			continue;
		for (int i = 1; i < pc_graph_node_inputs(g, k) && owner[k] < 0; i++)
			if (named_param(g, pc_graph_node_input_param(g, k, i)))
				owner[k] = pc_graph_node_input_param(g, k, i);
	}
	for (int k = 0; k < nn; k++) {
		if (strcmp(pc_graph_node_op(g, k), "Add") || pc_graph_node_inputs(g, k) != 2)
			continue;
		for (int a = 0; a < 2; a++) {
			int p = pc_graph_node_input_producer(g, k, a), b = pc_graph_node_input_param(g, k, 1 - a);
			if (p < 0 || !named_param(g, b))
				continue;
			if (pc_graph_node_linear_op(g, p) && owner[p] < 0)
				owner[p] = b;
		}
	}
}

/* reader[k]: the node whose module node k's weight joins. A QDQ weight's
 * first reader is its DequantizeLinear, whose output the MatMul, Gemm or
 * Conv reads: the layer is that node's, as for the float weight the
 * quantizer replaced (bias and weight in one group). Other nodes read for
 * themselves. */
static void weight_readers(const struct pc_graph *g, int *reader)
{
	int nn = pc_graph_node_count(g);

	for (int k = 0; k < nn; k++)
		reader[k] = k;
	for (int k = 0; k < nn; k++) {
		if (!pc_graph_node_linear_op(g, k))
			continue;
		for (int i = 1; i < pc_graph_node_inputs(g, k); i++) {
			int p = pc_graph_node_input_producer(g, k, i);

			if (p >= 0 && reader[p] == p && !strcmp(pc_graph_node_op(g, p), "DequantizeLinear"))
				reader[p] = k;
		}
	}
}

/* ordinal[k], for an LSTM/GRU/RNN node k with a PyTorch scope: how many such
 * nodes of the same scope run before it; -1 for other nodes. */
static int rnn_ordinals(const struct pc_graph *g, int *ordinal, struct pc_error *err)
{
	struct strmap m = {0};
	int nn = pc_graph_node_count(g);
	char **scopes = calloc((size_t)nn + 1, sizeof(char *));
	int rc = PC_OK;

	if (!scopes || strmap_init(&m, (size_t)nn)) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "groups", "out of memory");
		goto out;
	}
	for (int k = 0; k < nn; k++) {
		const char *name = pc_graph_node_name(g, k);
		size_t s;
		ordinal[k] = -1;
		if (!is_rnn(g, k) || name[0] != '/')
			continue;
		if (!(scopes[k] = scope_path(name))) {
			rc = pc_error_set(err, PC_ERR_NOMEM, "groups", "out of memory");
			goto out;
		}
		s = strmap_slot(&m, scopes[k]);
		if (!m.key[s])
			m.key[s] = scopes[k];
		ordinal[k] = m.val[s]++;
	}
out:
	strmap_free(&m);
	for (int k = 0; scopes && k < nn; k++)
		free(scopes[k]);
	free(scopes);
	return rc;
}

/* The module of parameter i (rules 2b and 2c), NULL when out of memory. */
static char *scoped_module(const struct pc_graph *g, int i, int k, const int *ordinal)
{
	const struct pc_param *pt = pc_graph_param(g, i);
	const char *name = pc_graph_node_name(g, k), *op = pc_graph_node_op(g, k);
	char *m, *full;
	size_t len;

	/* "/" alone (no scope, no op name) names nothing: as an unnamed node */
	if (name[0] != '/' || !name[1]) {
		if (name[0] && name[0] != '/')
			return dup_n(name, strlen(name));
		len = strlen(op) + 16;
		if ((m = malloc(len)))
			snprintf(m, len, "%s#%d", op, k);
		return m;
	}
	if (!(m = scope_path(name)))
		return NULL;
	if (!m[0]) {
		const char *own = is_ident(pt->name, strlen(pt->name)) ? pt->name : name + 1;
		free(m);
		if (!(m = dup_n(own, strlen(own))))
			return NULL;
	}
	if (ordinal[k] < 0)
		return m;
	len = strlen(m) + 16;
	full = malloc(len);
	if (full)
		snprintf(full, len, "%s.l%d", m, ordinal[k]);
	free(m);
	return full;
}

/* The module of parameter i, NULL when out of memory. */
static char *module_of(const struct pc_graph *g, int i, const int *reader, const int *owner, const int *ordinal)
{
	const struct pc_param *pt = pc_graph_param(g, i);
	size_t last;
	int k = reader[pt->node_index];

	if (is_state_dict_name(pt->name, &last))
		return state_dict_module(pt->name, last);
	if (owner[k] >= 0 && is_state_dict_name(pc_graph_param(g, owner[k])->name, &last))
		return state_dict_module(pc_graph_param(g, owner[k])->name, last);
	return scoped_module(g, i, k, ordinal);
}

void pc_layer_groups_free(struct pc_layer_groups *lg)
{
	if (!lg)
		return;
	for (int i = 0; lg->g && i < lg->n; i++)
		free(lg->g[i].name);
	free(lg->g);
	free(lg->params_storage);
	memset(lg, 0, sizeof(*lg));
}

int pc_layer_groups_build(const struct pc_graph *g, struct pc_layer_groups *out, struct pc_error *err)
{
	int np = pc_graph_param_tensors(g), nn = pc_graph_node_count(g), n_groups = 0, rc = PC_OK;
	char **mod = calloc((size_t)np + 1, sizeof(char *));
	int *gid = malloc(((size_t)np + 1) * sizeof(int)), *owner = malloc(((size_t)nn + 1) * sizeof(int));
	int *ordinal = malloc(((size_t)nn + 1) * sizeof(int)), *bucket = calloc((size_t)nn + 2, sizeof(int));
	int *reader = malloc(((size_t)nn + 1) * sizeof(int));
	int *fill = NULL;
	struct pc_layer_group *tmp = NULL;
	struct strmap m = {0};

	memset(out, 0, sizeof(*out));
	if (!mod || !gid || !owner || !ordinal || !bucket || !reader || strmap_init(&m, (size_t)np)) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "groups", "out of memory");
		goto out;
	}
	linear_owners(g, owner);
	weight_readers(g, reader);
	if ((rc = rnn_ordinals(g, ordinal, err)))
		goto out;
	tmp = calloc((size_t)np + 1, sizeof(*tmp));
	out->params_storage = malloc(((size_t)np + 1) * sizeof(int));
	fill = calloc((size_t)np + 1, sizeof(int));
	if (!tmp || !out->params_storage || !fill) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "groups", "out of memory");
		goto out;
	}
	/* a group per distinct module, numbered in order of first parameter */
	for (int i = 0; i < np; i++) {
		size_t s;
		if (!(mod[i] = module_of(g, i, reader, owner, ordinal))) {
			rc = pc_error_set(err, PC_ERR_NOMEM, "groups", "out of memory");
			goto out;
		}
		s = strmap_slot(&m, mod[i]);
		if (!m.key[s]) {
			/* the group takes the name; the map's key points at it */
			tmp[n_groups].name = mod[i];
			tmp[n_groups].start = nn;
			mod[i] = NULL;
			m.key[s] = tmp[n_groups].name;
			m.val[s] = n_groups++;
		}
		gid[i] = m.val[s];
		tmp[gid[i]].n_params++;
		tmp[gid[i]].count += pc_graph_param(g, i)->count;
		if (pc_graph_param(g, i)->node_index < tmp[gid[i]].start)
			tmp[gid[i]].start = pc_graph_param(g, i)->node_index;
	}
	/* parameter lists, ascending, in one shared array */
	for (int j = 0, off = 0; j < n_groups; j++) {
		tmp[j].params = out->params_storage + off;
		off += tmp[j].n_params;
	}
	for (int i = 0; i < np; i++)
		tmp[gid[i]].params[fill[gid[i]]++] = i;
	/* stable counting sort by start node */
	out->g = calloc((size_t)n_groups + 1, sizeof(*out->g));
	if (!out->g) {
		rc = pc_error_set(err, PC_ERR_NOMEM, "groups", "out of memory");
		goto out;
	}
	for (int j = 0; j < n_groups; j++)
		bucket[tmp[j].start + 1]++;
	for (int k = 0; k < nn; k++)
		bucket[k + 1] += bucket[k];
	for (int j = 0; j < n_groups; j++) {
		out->g[bucket[tmp[j].start]++] = tmp[j];
		tmp[j].name = NULL;
	}
	out->n = n_groups;
out:
	for (int j = 0; tmp && j < n_groups; j++)
		free(tmp[j].name);
	for (int i = 0; mod && i < np; i++)
		free(mod[i]);
	free(tmp);
	free(fill);
	free(mod);
	free(gid);
	free(owner);
	free(ordinal);
	free(reader);
	free(bucket);
	strmap_free(&m);
	if (rc)
		pc_layer_groups_free(out);
	return rc;
}
