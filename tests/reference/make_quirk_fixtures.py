#!/usr/bin/python3
"""Fixtures for the loader's exporter quirks (tests/test_quirks.c).

torch.onnx.export with training=TrainingMode.PRESERVE and
do_constant_folding=False, of a model in eval mode, deduplicates
initializers of equal VALUE (torch/csrc/jit/passes/onnx/
deduplicate_initializers.cpp, run when model.training is False): the second
of two equal tensors becomes Identity(first), the Identity's output carrying
the second's name. A tiny CNN with two BatchNorms is exported three ways:

  quirk_stats_via_weight_op13   bn1.weight = 1 and bn1.bias = 0 (the fresh
      values) while every other parameter is random: the running statistics
      of both BatchNorms (fresh: mean 0, var 1) arrive as Identity(bn1.bias)
      and Identity(bn1.weight).
  quirk_weight_via_stats_op13   bn1's parameters random, bn2.weight = 1 and
      bn2.bias = 0: bn1's running statistics come first in the file, so
      bn2.weight and bn2.bias (and bn2's statistics) arrive as
      Identity(bn1.running_var) and Identity(bn1.running_mean).
  quirk_fresh_op13              the model as constructed: bn2.weight and
      bn2.bias, distinct parameters in PyTorch, arrive as Identity(bn1.weight)
      and Identity(bn1.bias) (the case where the file's count of weights and
      PyTorch's differ).
  quirk_train_op13              the first model exported in train mode
      (BatchNormalization with five outputs, no deduplication by value).

A tiny language model with a tied embedding and output head
(head.weight = emb.weight, one Parameter) is exported the same way as
quirk_tied_lm_op13: the file reads emb.weight twice (Gather, and Transpose
for the head's MatMul), no Identity. Its .json holds the token batch, the
logits [N, T, V], a fixed output gradient R and PyTorch's gradient of
sum(logits * R) with respect to emb.weight (the sum of both uses).

Each CNN .json holds the PyTorch parameters (name, numel), an input batch, the
PyTorch eval-mode logits, and the logits after one parameter is shifted by
+0.5 in PyTorch (where running statistics are tensors of their own).

Run with Debian's Python (torch 1.13, onnx 1.12):

    /usr/bin/python3 tests/reference/make_quirk_fixtures.py

Nothing is downloaded; outputs go to tests/reference/fixtures/.
"""

import io
import json
import os

import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
SEED = 20240917

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.flatten(1))


class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, tokens):
        return self.head(torch.tanh(self.emb(tokens)))


def tied_lm():
    torch.manual_seed(SEED + 2)
    m = TiedLM().eval()
    f = io.BytesIO()
    torch.onnx.export(m, torch.zeros(2, 5, dtype=torch.long), f, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False,
                      input_names=["tokens"], output_names=["logits"],
                      dynamic_axes={"tokens": {0: "N"}, "logits": {0: "N"}})
    raw = f.getvalue()
    with open(os.path.join(OUT, "quirk_tied_lm_op13.onnx"), "wb") as fp:
        fp.write(raw)
    tokens = torch.tensor([[1, 4, 4, 9, 0], [7, 2, 5, 3, 8]])
    logits = m(tokens)
    r = torch.randn(logits.shape)
    (logits * r).sum().backward()
    ref = {
        "params": [[n, p.numel()] for n, p in m.named_parameters()],
        "param_count": sum(p.numel() for p in m.parameters()),
        "identities": identities(raw),
        "tokens_shape": list(tokens.shape),
        "tokens": tokens.flatten().tolist(),
        "logits_shape": list(logits.shape),
        "logits": logits.detach().flatten().tolist(),
        "output_grad": r.flatten().tolist(),
        "grad_emb": m.emb.weight.grad.flatten().tolist(),
    }
    with open(os.path.join(OUT, "quirk_tied_lm_op13.json"), "w") as fp:
        json.dump(ref, fp, indent=1)
    print("quirk_tied_lm_op13 params", ref["param_count"], "identities", ref["identities"])


def randomize(t):
    with torch.no_grad():
        t.copy_(torch.randn_like(t) * 0.5 + (1.0 if t.dim() == 1 else 0.0))


def build(kind):
    torch.manual_seed(SEED)
    m = TinyCNN()
    if kind == "stats_via_weight":
        # bn1 keeps weight 1, bias 0; bn2's parameters random
        randomize(m.bn2.weight)
        randomize(m.bn2.bias)
    elif kind == "weight_via_stats":
        randomize(m.bn1.weight)
        randomize(m.bn1.bias)
    return m


def export(m, training):
    f = io.BytesIO()
    m.train(training)
    torch.onnx.export(m, torch.zeros(2, 1, 4, 4), f, opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    m.eval()
    return f.getvalue()


def identities(raw):
    g = onnx.load_from_string(raw).graph
    return [[n.input[0], n.output[0]] for n in g.node if n.op_type == "Identity"]


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(SEED + 1)
    x = torch.randn(2, 1, 4, 4)
    cases = [
        ("quirk_stats_via_weight_op13", "stats_via_weight", False, "bn1.bias"),
        ("quirk_weight_via_stats_op13", "weight_via_stats", False, "bn2.bias"),
        ("quirk_fresh_op13", "fresh", False, "bn1.bias"),
        ("quirk_train_op13", "stats_via_weight", True, "bn1.bias"),
    ]
    for name, kind, training, shifted in cases:
        m = build(kind)
        raw = export(m, training)
        with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
            f.write(raw)
        with torch.no_grad():
            logits = m(x)
            dict(m.named_parameters())[shifted].add_(0.5)
            logits_shifted = m(x)
            dict(m.named_parameters())[shifted].sub_(0.5)
        ref = {
            "params": [[n, p.numel()] for n, p in m.named_parameters()],
            "param_count": sum(p.numel() for p in m.parameters()),
            "identities": identities(raw),
            "input_shape": list(x.shape),
            "input": x.flatten().tolist(),
            "logits": logits.flatten().tolist(),
            "shifted": shifted,
            "shift": 0.5,
            "logits_shifted": logits_shifted.flatten().tolist(),
        }
        with open(os.path.join(OUT, name + ".json"), "w") as f:
            json.dump(ref, f, indent=1)
        print(name, "params", ref["param_count"], "identities", ref["identities"])
    tied_lm()


if __name__ == "__main__":
    main()
