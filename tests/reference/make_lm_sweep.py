#!/usr/bin/python3
"""PyTorch's numbers for the whole-model L2 gradient corruption of the two
language models (tests/test_lm.c checks paracorr's study against them).

For each LM preserve export at opset 17 (the files make_lm.py wrote) and the
validation set next to them, in float32 as paracorr runs:

  w  the file's corruptible weights (onnx_torch.weight_initializers, the same
     rule as paracorr's, docs/method.md: a tied embedding/head is one
     initializer read by two nodes, so one parameter whose gradient is the
     sum over both uses);
  g  the gradient of the mean cross-entropy over the labelled tokens
     (ignore_index -100) with respect to all of w;
  a  = eps * g / ||g||_2 over all of w (method.md, p = 2, dense, group
     "model");

and at every radius of the spec (api/examples/lm-{lstm,gpt}.json) the loss,
perplexity and token accuracy at w + a. It also gives the first-order
estimate eps * ||g||_2, and the mean loss of `RANDOM_TRIALS` random
directions eps * z / ||z||_2 (z standard normal, torch's generator, so not
paracorr's draws: the test only uses them to say the gap is not an accident
of one generator).

The radius the test checks the gap at is the smallest spec radius at which
PyTorch's gradient corruption multiplies the perplexity by at least
GAP_FACTOR (1.5, the issue's "raises perplexity by at least 50%").

    /usr/bin/python3 tests/reference/make_lm_sweep.py

writes tests/reference/fixtures/zoo/lm_sweep.json (a few seconds).
"""

import gzip
import json
import math
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F

import onnx_torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ZOO = os.path.join(HERE, "fixtures", "zoo")
IGNORE = -100
BUFFER_INPUTS = {"BatchNormalization": {3, 4}, "Clip": {1, 2}, "Pad": {2}}
GAP_FACTOR = 1.5
RANDOM_TRIALS = 5
SEED = 1
MODELS = [("lstm", "lm_lstm_op17_preserve", "api/examples/lm-lstm.json"),
          ("gpt", "lm_gpt_op17_preserve", "api/examples/lm-gpt.json")]

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)




def evaluate(model, names, x, y, values, grad=False):
    """Runs the file with its weights replaced by values ({name: tensor});
    returns (loss, correct, labelled, {name: grad} or None)."""
    # onnx_torch.run reads initializers from the model: feed the values by
    # replacing them in a copy of the graph's initializer list
    saved = {}
    for init in model.graph.initializer:
        if init.name in values:
            saved[init.name] = onnx.TensorProto()
            saved[init.name].CopyFrom(init)
            init.CopyFrom(onnx.numpy_helper.from_array(values[init.name].detach().numpy(), init.name))
    try:
        (out,), leaves = onnx_torch.run(model, {"tokens": x}, names if grad else ())
    finally:
        for init in model.graph.initializer:
            if init.name in saved:
                init.CopyFrom(saved[init.name])
    V = out.shape[-1]
    flat, t = out.reshape(-1, V), y.reshape(-1)
    keep = t != IGNORE
    mean = F.cross_entropy(flat, t, ignore_index=IGNORE)
    grads = None
    if grad:
        mean.backward()
        grads = {n: leaves[n].grad if leaves[n].grad is not None else torch.zeros_like(leaves[n]) for n in names}
    o = flat.detach().double()[keep]
    loss = float(F.cross_entropy(o, t[keep]))
    correct = int((o.argmax(1) == t[keep]).sum())
    return loss, correct, int(keep.sum()), grads


def sweep(family, stem, spec_path, x, y):
    spec = json.load(open(os.path.join(ROOT, spec_path)))
    c = spec["corruption"]
    assert c["groups"] == ["model"] and c["norms"] == ["l2"] and c["sparsity"] == [0]
    assert c.get("steps", 1) == 1 and c.get("epsilon_scale", "absolute") == "absolute"
    model = onnx.load_from_string(gzip.open(os.path.join(ZOO, stem + ".onnx.gz")).read())
    names = onnx_torch.weight_initializers(model, BUFFER_INPUTS)
    w = {i.name: torch.from_numpy(onnx.numpy_helper.to_array(i).copy()) for i in model.graph.initializer
         if i.name in names}
    loss0, correct0, tokens, g = evaluate(model, names, x, y, {}, grad=True)
    # ||g|| in double, the direction in float32 as paracorr writes it
    gnorm = math.sqrt(sum(float(g[n].double().pow(2).sum()) for n in names))
    numel = sum(w[n].numel() for n in names)
    gen = torch.Generator().manual_seed(SEED)
    dirs = []
    for _ in range(RANDOM_TRIALS):
        z = {n: torch.randn(w[n].shape, generator=gen, dtype=torch.float64) for n in names}
        zn = math.sqrt(sum(float(z[n].pow(2).sum()) for n in names))
        dirs.append({n: z[n] / zn for n in names})
    rows = []
    for eps in c["epsilons"]:
        a = {n: w[n] + (eps * g[n].double() / gnorm).float() for n in names}
        loss, correct, _, _ = evaluate(model, names, x, y, a)
        rl = []
        for d in dirs:
            r = {n: w[n] + (eps * d[n]).float() for n in names}
            rl.append(evaluate(model, names, x, y, r)[0])
        rows.append({"epsilon": eps, "first_order": eps * gnorm, "loss": loss, "perplexity": math.exp(loss),
                     "accuracy": correct / tokens, "loss_change": loss - loss0,
                     "random_loss_mean": float(np.mean(rl)),
                     "random_perplexity_mean": float(np.mean([math.exp(v) for v in rl]))})
        print("  %s eps %-5g loss %.6f  perplexity %8.3f  accuracy %.4f  random perplexity %.4f" %
              (family, eps, loss, math.exp(loss), correct / tokens, rows[-1]["random_perplexity_mean"]))
    gap = next((r["epsilon"] for r in rows if r["perplexity"] >= GAP_FACTOR * math.exp(loss0)), None)
    if gap is None:
        raise SystemExit("%s: no radius of %s raises the perplexity %gx" % (family, spec_path, GAP_FACTOR))
    print("  %s: clean loss %.6f (perplexity %.3f), %d parameters, ||g|| %.6g, gap checked at eps %g" %
          (family, loss0, math.exp(loss0), numel, gnorm, gap))
    return {"model": stem + ".onnx.gz", "spec": spec_path, "parameters": numel,
            "parameter_tensors": len(names), "tokens": tokens, "clean": {"loss": loss0,
            "perplexity": math.exp(loss0), "accuracy": correct0 / tokens}, "gradient_l2": gnorm,
            "gap_epsilon": gap, "sweep": rows}


def main():
    x = torch.from_numpy(np.load(os.path.join(ZOO, "lm_tokens_i64.npy")))
    y = torch.from_numpy(np.load(os.path.join(ZOO, "lm_labels_i64.npy")))
    out = {"about": "make_lm_sweep.py: whole-model L2 gradient corruption of the LM preserve exports at opset 17 "
                    "on the validation set, PyTorch float32",
           "gap_factor": GAP_FACTOR, "random_trials": RANDOM_TRIALS, "random_seed": SEED,
           "versions": {"torch": torch.__version__, "onnx": onnx.__version__}}
    for family, stem, spec in MODELS:
        out[family] = sweep(family, stem, spec, x, y)
    path = os.path.join(ZOO, "lm_sweep.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
