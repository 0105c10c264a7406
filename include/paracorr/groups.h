/* groups: the `layer` groups of a graph, one per PyTorch module.
 *
 * A layer group is every parameter tensor one module owns, named by the
 * module's path as PyTorch writes it (`blocks.3.attn.qkv`, `lstm.l0`), so a
 * 12-block model has a few dozen named groups rather than one per ONNX
 * node. The rule (docs/method.md, "group") for parameter tensor P:
 *  1. P's name is a state_dict name (two or more dot-separated components of
 *     letters, digits and `_`): the module is the name without its last
 *     component; an RNN tensor (`weight_ih_l0`, `bias_hh_l1_reverse`, ...)
 *     belongs to `<module>.l<k>`, both directions in one layer;
 *  2. otherwise (a constant-folded tensor such as `onnx::MatMul_123`), with
 *     n the first node reading P (for a QDQ weight, the MatMul, Gemm or
 *     Conv reading its DequantizeLinear's output):
 *     a. n is a MatMul, Gemm or Conv whose output an Add adds to a tensor with
 *        a state_dict name: that tensor's module (the Linear whose bias it is);
 *     b. n's name is a PyTorch scope (`/blocks/blocks.0/qkv/MatMul`): the
 *        module path the scope spells (`blocks.0.qkv`); for an LSTM or GRU
 *        node `.l<k>` is added, k counting those nodes in that scope in
 *        execution order (PyTorch exports one per layer); a node at the root
 *        scope (`/MatMul`) names the group by P itself when P's name is one
 *        identifier, else by the node's name without the `/`;
 *     c. otherwise (not a PyTorch export): n's name, or `<op>#<index>` when
 *        it has none or is `/` alone: one group per reading node.
 * Groups are ordered by their first reading node, ties by their first
 * parameter; each group's parameters by parameter table index. Building
 * them takes time linear in parameters, nodes and node inputs. */
#ifndef PARACORR_GROUPS_H
#define PARACORR_GROUPS_H

#include <stdint.h>

#include "paracorr/error.h"
#include "paracorr/graph.h"

struct pc_layer_group {
	char *name;  /* the module path, without the report's "layer:" */
	int *params; /* parameter table indices, ascending */
	int n_params;
	int64_t count; /* floats in all */
	int start;     /* the first node reading any of them */
};

struct pc_layer_groups {
	struct pc_layer_group *g;
	int n;
	int *params_storage; /* every group's params, owned */
};

/* Fills *out (zeroed first) with g's layer groups; g must be finished. */
int pc_layer_groups_build(const struct pc_graph *g, struct pc_layer_groups *out, struct pc_error *err);
void pc_layer_groups_free(struct pc_layer_groups *lg);

#endif
