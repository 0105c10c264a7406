#!/usr/bin/python3
"""Fixtures of tests/test_sequence.c: token datasets and a tiny language model.

Writes into tests/reference/fixtures/:
  seq_tokens_{i64,i32,u16,u8}.npy   the same token ids [3, 4] in four dtypes
  seq_labels_i64.npy                 next-token labels [3, 4], -100 where ignored
  seq_lm_op14.onnx                   the tiny LM exported by torch.onnx.export
  seq_lm.json                        its weights and PyTorch's numbers
                                     (also the loss at the study's l2 gradient
                                     corruption of the whole model, eps 0.1, 1)

The model: logits = Embedding(V=5, D=3)(tokens) @ W + b, written with
nn.Embedding and nn.Linear (W = head.weight.T), so the ONNX export is
Gather -> MatMul -> Add with an [N, T, V] output. PyTorch's numbers are the
mean token cross-entropy with ignore_index=-100 (F.cross_entropy's mean
over the labelled tokens), its exp (perplexity), the token accuracy
(arg-max, first maximum) and the gradient of that mean with respect to
the embedding, W, b and the logits, all in float64 from the float32
weights so that the C side's double accumulation is compared against the
exact value.

Run with Debian's Python (torch 1.13, onnx 1.12):

    /usr/bin/python3 tests/reference/make_seq_fixtures.py
"""

import json
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
V, D, N, T = 5, 3, 3, 4
IGNORE = -100

# ids repeat (rows 1 and 2 hit the same embedding rows several times) and
# cover the whole vocabulary; every sample has an ignored position
TOKENS = [[0, 1, 2, 3], [4, 4, 1, 0], [2, 3, 3, 4]]
LABELS = [[1, 2, 3, IGNORE], [4, 1, 0, IGNORE], [IGNORE, 3, 4, 2]]


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.head = nn.Linear(D, V)

    def forward(self, tokens):
        return self.head(self.emb(tokens))


def main():
    torch.manual_seed(20261202)
    E = (torch.randn(V, D) * 0.9).float()
    W = (torch.randn(D, V) * 0.8).float()
    b = (torch.randn(V) * 0.3).float()
    tokens = torch.tensor(TOKENS, dtype=torch.int64)
    labels = torch.tensor(LABELS, dtype=torch.int64)

    # the reference numbers in float64 from the float32 weights
    e64 = E.double().requires_grad_(True)
    w64 = W.double().requires_grad_(True)
    b64 = b.double().requires_grad_(True)
    logits = (e64[tokens] @ w64 + b64)
    logits.retain_grad()
    loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE)
    loss.backward()
    mask = labels.reshape(-1) != IGNORE
    pred = logits.detach().reshape(-1, V).argmax(dim=1)
    correct = int((pred[mask] == labels.reshape(-1)[mask]).sum())
    labelled = int(mask.sum())

    # the same through float32 PyTorch, as a check that float32 agrees
    m = TinyLM()
    with torch.no_grad():
        m.emb.weight.copy_(E)
        m.head.weight.copy_(W.t())
        m.head.bias.copy_(b)
    loss32 = F.cross_entropy(m(tokens).reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE)
    assert abs(loss32.item() - loss.item()) < 1e-6, (loss32.item(), loss.item())

    os.makedirs(OUT, exist_ok=True)
    ids = np.array(TOKENS, dtype=np.int64)
    for name, dt in (("i64", np.int64), ("i32", np.int32), ("u16", np.uint16), ("u8", np.uint8)):
        np.save(os.path.join(OUT, "seq_tokens_%s.npy" % name), ids.astype(dt))
    np.save(os.path.join(OUT, "seq_labels_i64.npy"), np.array(LABELS, dtype=np.int64))

    path = os.path.join(OUT, "seq_lm_op14.onnx")
    torch.onnx.export(m, (tokens,), path, input_names=["tokens"], output_names=["logits"],
                      dynamic_axes={"tokens": {0: "N"}, "logits": {0: "N"}}, opset_version=14)
    # the initializers' names in the file, and which weight each is
    mo = onnx.load(path)
    grads = {"emb": e64.grad.numpy(), "W": w64.grad.numpy(), "b": b64.grad.numpy()}
    norms = {}
    for init in mo.graph.initializer:
        a = numpy_helper.to_array(init)
        for key, ref in (("emb", E.numpy()), ("W", W.numpy()), ("b", b.numpy())):
            if a.shape == ref.shape and np.array_equal(a, ref):
                norms[init.name] = float(np.sqrt((grads[key] ** 2).sum()))
    assert len(norms) == 3, norms
    ops = sorted({n.op_type for n in mo.graph.node})

    # the study's gradient corruption of the whole model, l2, dense: the
    # weights w + eps g / ||g||_2 rounded to float32, evaluated in float64
    g = torch.cat([e64.grad.reshape(-1), w64.grad.reshape(-1), b64.grad.reshape(-1)])
    u = g / g.norm()
    w0 = torch.cat([E.double().reshape(-1), W.double().reshape(-1), b.double().reshape(-1)])
    corrupted = {}
    for eps in (0.1, 1.0):
        wc = (w0 + eps * u).float().double()
        ec, wm, bc = wc[:V * D].reshape(V, D), wc[V * D:V * D + D * V].reshape(D, V), wc[V * D + D * V:]
        lc = F.cross_entropy((ec[tokens] @ wm + bc).reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE)
        corrupted["%g" % eps] = lc.item()

    ref = {
        "V": V, "D": D, "N": N, "T": T,
        "tokens": TOKENS, "labels": LABELS,
        "embedding": E.numpy().reshape(-1).tolist(),
        "W": W.numpy().reshape(-1).tolist(),
        "b": b.numpy().tolist(),
        "loss": loss.item(),
        "perplexity": math.exp(loss.item()),
        "accuracy": correct / labelled,
        "correct": correct,
        "tokens_labelled": labelled,
        "logits": logits.detach().reshape(-1).tolist(),
        "grad_logits": logits.grad.reshape(-1).tolist(),
        "grad_embedding": e64.grad.reshape(-1).tolist(),
        "grad_W": w64.grad.reshape(-1).tolist(),
        "grad_b": b64.grad.tolist(),
        "onnx_grad_l2": norms,
        "model_l2_corrupted_loss": corrupted,
        "onnx_ops": ops,
    }
    with open(os.path.join(OUT, "seq_lm.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print("loss %.9f perplexity %.9f accuracy %d/%d ops %s" % (loss.item(), math.exp(loss.item()), correct,
                                                            labelled, ops))


if __name__ == "__main__":
    main()
