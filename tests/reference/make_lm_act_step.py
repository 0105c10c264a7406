#!/usr/bin/python3
"""PyTorch's numbers for one ACT step on each language model (tests/test_lm.c
checks paracorr's trainer against them): int64 token inputs, per-token
labels with -100 left out, the tied embedding and head as one weight.

For the LM preserve exports at opset 17 (make_lm.py), evaluated with
onnx_torch.py in float32, on the mini-batch of validation sequences
BATCH (the last, with 12 padding positions, among them):

  L(w)  = mean cross-entropy over the batch's labelled tokens (ignore -100);
  g0    = dL/dw at w, over all corruptible weights (method.md);
  a     = EPS * g0 / ||g0||_2 (L2, dense, the whole model);
  g1    = dL/dw at w + a;
  w'    = w - LR * g1 (SGD without momentum; lambda 1, the paper's ACT).

The fixture holds L(w), L(w + a), ||g0||, and per weight tensor the L2 norm
of w' - w and its first FIRST values.

    /usr/bin/python3 tests/reference/make_lm_act_step.py

writes tests/reference/fixtures/zoo/lm_act_step.json (seconds).
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
from make_lm_sweep import BUFFER_INPUTS, IGNORE, ZOO, ROOT

BATCH = list(range(56, 64))
EPS = 0.5
LR = 0.1
FIRST = 6
MODELS = [("lstm", "lm_lstm_op17_preserve"), ("gpt", "lm_gpt_op17_preserve")]

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def loss_and_grad(model, names, x, y, values):
    """Mean token loss and its gradient with the file's weights replaced by
    values ({name: float32 tensor})."""
    saved = {}
    for init in model.graph.initializer:
        if init.name in values:
            saved[init.name] = onnx.TensorProto()
            saved[init.name].CopyFrom(init)
            init.CopyFrom(onnx.numpy_helper.from_array(values[init.name].detach().numpy(), init.name))
    try:
        (out,), leaves = onnx_torch.run(model, {"tokens": x}, names)
    finally:
        for init in model.graph.initializer:
            if init.name in saved:
                init.CopyFrom(saved[init.name])
    loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=IGNORE)
    loss.backward()
    grads = {n: leaves[n].grad if leaves[n].grad is not None else torch.zeros_like(leaves[n]) for n in names}
    return float(loss), grads


def step(family, stem, x, y):
    model = onnx.load_from_string(gzip.open(os.path.join(ZOO, stem + ".onnx.gz")).read())
    names = onnx_torch.weight_initializers(model, BUFFER_INPUTS)
    w = {i.name: torch.from_numpy(onnx.numpy_helper.to_array(i).copy()) for i in model.graph.initializer
         if i.name in names}
    loss0, g0 = loss_and_grad(model, names, x, y, {})
    norm = math.sqrt(sum(float(g0[n].double().pow(2).sum()) for n in names))
    wa = {n: w[n] + (EPS * g0[n].double() / norm).float() for n in names}
    loss1, g1 = loss_and_grad(model, names, x, y, wa)
    tensors = {}
    for n in names:
        new = (w[n].double() - LR * g1[n].double()).float()
        delta = (new.double() - w[n].double()).reshape(-1)
        tensors[n] = {"numel": int(delta.numel()), "delta_l2": float(delta.norm()),
                      "delta_first": delta[:FIRST].tolist()}
    labelled = int((y != IGNORE).sum())
    print("  %s: %d labelled tokens, loss at w %.6f, at w + a %.6f, ||g0|| %.6g" %
          (family, labelled, loss0, loss1, norm))
    return {"model": stem + ".onnx.gz", "tokens": labelled, "loss": loss0, "loss_corrupted": loss1,
            "gradient_l2": norm, "tensors": tensors}


def main():
    x = torch.from_numpy(np.load(os.path.join(ZOO, "lm_tokens_i64.npy")))[BATCH]
    y = torch.from_numpy(np.load(os.path.join(ZOO, "lm_labels_i64.npy")))[BATCH]
    out = {"about": "make_lm_act_step.py: one SGD step of ACT (l2, whole model, lambda 1) on validation sequences "
                    "56..63, PyTorch float32",
           "batch": BATCH, "epsilon": EPS, "lr": LR,
           "versions": {"torch": torch.__version__, "onnx": onnx.__version__}}
    for family, stem in MODELS:
        out[family] = step(family, stem, x, y)
    path = os.path.join(ZOO, "lm_act_step.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(path, ROOT))


if __name__ == "__main__":
    main()
