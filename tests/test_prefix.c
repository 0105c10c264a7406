/* The prefix cache (core/prefix.c): a pass resumed from a cut gives the
 * bits of the whole pass, from the deepest cut at or before the changed
 * node, on a CNN and on a ResNet; without a cut it runs whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paracorr/graph.h"
#include "paracorr/onnx.h"
#include "paracorr/prefix.h"
#include "test.h"

static int same_eval(const struct pc_eval *a, const struct pc_eval *b)
{
	return memcmp(&a->loss, &b->loss, sizeof a->loss) == 0 &&
	       memcmp(&a->accuracy, &b->accuracy, sizeof a->accuracy) == 0;
}

/* Every tensor in turn scaled by 1.5: the resumed pass against the whole
 * one, and the runner's weights back to the captured ones after each. */
static void check_model(struct pc_test *t, const char *model, int64_t samples)
{
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_runner *r = NULL;
	struct pc_prefix *c = NULL;
	struct pc_eval clean, ev, whole;
	char path[512], msg[800];
	int resumed_any = 0, whole_any = 0;

	snprintf(path, sizeof(path), "%s/" FIX "%s", pc_test_root(), model);
	if (pc_onnx_load_file(path, &g, &err) || pc_dataset_load(T10K_X, T10K_Y, NULL, samples, &d, &err) ||
	    !(r = pc_runner_new(g, 32, 2, 0, &err)) || pc_prefix_new(r, d, 0, NULL, 0, NULL, NULL, &c, &err) ||
	    pc_eval_run_hooked(r, d, 0, NULL, NULL, NULL, pc_prefix_hook(c), c, &clean, &err)) {
		pc_test_fail(t, __FILE__, __LINE__, "%s: %s", model, pc_error_format(&err, msg, sizeof(msg)));
		goto out;
	}
	CHECK_MSG(pc_prefix_cuts(c) >= 3, "%s: %d cuts", model, pc_prefix_cuts(c));
	for (int p = 0; p < pc_graph_param_tensors(g); p++) {
		const struct pc_param *pt = pc_graph_param(g, p);
		float *w = malloc((size_t)pt->count * sizeof *w + 1);
		int resumed = -1;

		REQUIRE(w);
		for (int64_t i = 0; i < pt->count; i++)
			w[i] = 1.5f * pc_graph_params(g)[pt->offset + i];
		pc_runner_write(r, pt->offset, pt->count, w);
		memset(&err, 0, sizeof err);
		if (pc_prefix_pass(c, pt->node_index, &ev, &resumed, &err) ||
		    pc_eval_run(r, d, 0, NULL, NULL, NULL, &whole, &err)) {
			pc_test_fail(t, __FILE__, __LINE__, "%s: %s", model, pc_error_format(&err, msg, sizeof(msg)));
			free(w);
			goto out;
		}
		CHECK_MSG(same_eval(&ev, &whole), "%s %s: loss %.17g acc %.17g resumed, %.17g %.17g whole", model,
			  pt->name, ev.loss, ev.accuracy, whole.loss, whole.accuracy);
		/* node 0 has nothing before it to cut */
		CHECK(pt->node_index > 0 || resumed == 0);
		resumed_any += resumed == 1;
		whole_any += resumed == 0;
		pc_runner_write(r, pt->offset, pt->count, pc_graph_params(g) + pt->offset);
		free(w);
	}
	CHECK(resumed_any > 0 && whole_any > 0);
	/* the clean weights again: the resumed pass is the captured one */
	CHECK(!pc_prefix_pass(c, pc_graph_node_count(g), &ev, &whole_any, &err) && same_eval(&ev, &clean));
out:
	pc_prefix_free(c);
	pc_runner_free(r);
	pc_dataset_free(d);
	pc_graph_free(g);
}

TEST(prefix_resumed_same_bits)
{
	check_model(t, "cnn_op17.onnx", 100);
	check_model(t, "resnet_op17.onnx", 40);
}

TEST(prefix_bad_tensor)
{
	struct pc_error err = {0};
	struct pc_graph *g = NULL;
	struct pc_dataset *d = NULL;
	struct pc_runner *r = NULL;
	struct pc_prefix *c = NULL;
	char path[512];
	int bad = 1 << 20;

	snprintf(path, sizeof(path), "%s/" FIX "cnn_op17.onnx", pc_test_root());
	REQUIRE(!pc_onnx_load_file(path, &g, &err));
	REQUIRE(!pc_dataset_load(T10K_X, T10K_Y, NULL, 8, &d, &err));
	REQUIRE((r = pc_runner_new(g, 8, 1, 0, &err)) != NULL);
	CHECK(pc_prefix_new(r, d, 0, &bad, 1, NULL, NULL, &c, &err) == PC_ERR_INVALID && !c);
	CHECK(err.code == PC_ERR_INVALID && !strcmp(err.where, "prefix"));
	pc_runner_free(r);
	pc_dataset_free(d);
	pc_graph_free(g);
}
