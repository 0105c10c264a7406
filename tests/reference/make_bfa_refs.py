#!/usr/bin/python3
"""Reference flip sequence of plain BFA (progressive bit search), computed
with PyTorch and numpy, independently of paracorr.

The model (cnn_op17.onnx) is evaluated by make_fixtures.py's interpreter, so
the weights are exactly the file's. Its Conv, Gemm and MatMul weights are
quantized to int8 per tensor: scale = max|w| / 127 in float32, q =
round-half-to-even(w / scale) clamped to [-127, 127], stored as two's
complement bytes; every other parameter stays float. The search runs on the
first 512 Fashion-MNIST test images (preprocessed as make_analysis_refs.py:
uint8 / 255), target accuracy 0.1, at most 30 flips:

  repeat: the gradient of the mean loss at the current weights; per
  quantized tensor the bit whose flip has the largest g * (flipped value -
  value) (ties: the lowest element, then bit); the loss with that one flip
  applied; commit the flip whose loss is highest (ties: the lowest tensor,
  in the file's initializer order); stop at accuracy <= 0.1.

Run with Debian's Python:

    /usr/bin/python3 tests/reference/make_bfa_refs.py

Writes tests/reference/fixtures/bfa_cnn_op17.json: every committed flip
(tensor, index, bit, before, after, loss, accuracy) and, per step, every
layer's candidate with its first-order score and realised loss, so that a
test can tell a near-tie from a real disagreement.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

MODEL = "cnn_op17.onnx"
SAMPLES = 512
TARGET = 0.1
MAX_FLIPS = 30
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")


def quantized_names(it):
    """Initializers every read of which is input 1 of a Conv, Gemm or MatMul."""
    reads = {}
    for n in it.model.graph.node:
        for k, name in enumerate(n.input):
            reads.setdefault(name, []).append(n.op_type in QUANTIZED_OPS and k == 1)
    return [n for n in it.params if reads.get(n) and all(reads[n]) and it.params[n].dim() >= 2]


def evaluate(it, x, y, kind):
    with torch.no_grad():
        o = it.run(x)
        loss = mf.loss_of(o, y, kind).item()
        acc = (o.argmax(1) == y).sum().item() / x.shape[0]
    return (loss if np.isfinite(loss) else float("inf")), acc


def gradient(it, x, y, kind):
    for p in it.params.values():
        p.grad = None
    mf.loss_of(it.run(x), y, kind).backward()
    return {n: p.grad.detach().numpy().astype(np.float64).ravel() for n, p in it.params.items()}


def flipped(q, scale):
    """Every bit flip of every code: values [numel, 8] in float32."""
    codes = (q.astype(np.int16) & 0xFF).astype(np.uint8)
    out = np.empty((q.size, 8), dtype=np.float32)
    for b in range(8):
        c = (codes ^ np.uint8(1 << b)).astype(np.int16)
        c = np.where(c >= 128, c - 256, c)
        out[:, b] = c.astype(np.float32) * scale
    return out


def main():
    path = os.path.join(mf.OUT, MODEL)
    x = torch.from_numpy(mf.to_float(mf.read_idx(mf.TEST_IMAGES)))[:SAMPLES]
    y = torch.from_numpy(mf.read_idx(mf.TEST_LABELS).astype(np.int64))[:SAMPLES]
    it = mf.Interpreter(path)
    kind = it.output_kind()
    names = list(it.params.keys())
    quant = quantized_names(it)

    # int8 codes and the scale of each quantized tensor; the model runs on
    # the decoded values from here on
    q, scale = {}, {}
    with torch.no_grad():
        for n in quant:
            w = it.params[n].detach().numpy().ravel()
            scale[n] = np.float32(np.abs(w).max()) / np.float32(127.0)
            q[n] = np.clip(np.rint(w / scale[n]), -127, 127).astype(np.int16)
            dec = q[n].astype(np.float32) * scale[n]
            it.params[n].copy_(torch.from_numpy(dec.reshape(it.params[n].shape)))

    clean_loss, clean_acc = evaluate(it, x, y, kind)
    mf.log("int8 clean loss %.5f acc %.4f" % (clean_loss, clean_acc))
    flips, steps = [], []
    acc = clean_acc
    while acc > TARGET and len(flips) < MAX_FLIPS:
        g = gradient(it, x, y, kind)
        cands = []
        for n in quant:
            cur = q[n].astype(np.float32) * scale[n]
            after = flipped(q[n], scale[n])
            score = g[n][:, None] * (after.astype(np.float64) - cur.astype(np.float64)[:, None])
            k = int(np.argmax(score))  # the first maximum: lowest element, then bit
            e, b = divmod(k, 8)
            flat = it.params[n].view(-1)
            with torch.no_grad():
                before = flat[e].item()
                flat[e] = float(after[e, b])
            loss, a = evaluate(it, x, y, kind)
            with torch.no_grad():
                flat[e] = before
            cands.append({"tensor": n, "index": e, "bit": b, "score": float(score[e, b]), "loss": loss,
                          "accuracy": a, "before": float(cur[e]), "after": float(after[e, b])})
        best = 0
        for i in range(1, len(cands)):
            if cands[i]["loss"] > cands[best]["loss"]:
                best = i
        c = cands[best]
        n, e, b = c["tensor"], c["index"], c["bit"]
        code = (int(q[n][e]) & 0xFF) ^ (1 << b)
        q[n][e] = code - 256 if code >= 128 else code
        with torch.no_grad():
            it.params[n].view(-1)[e] = c["after"]
        acc = c["accuracy"]
        flips.append({k: c[k] for k in ("tensor", "index", "bit", "before", "after", "loss", "accuracy")})
        steps.append(cands)
        mf.log("  flip %2d: %-14s %6d bit %d  %.5f -> %.5f  loss %.5f acc %.4f"
               % (len(flips), n, e, b, c["before"], c["after"], c["loss"], acc))

    out = {"model": MODEL, "samples": SAMPLES, "format": "int8", "quantization": "per_tensor", "group": "model",
           "method": "bfa", "target_accuracy": TARGET, "max_flips": MAX_FLIPS, "reached": acc <= TARGET,
           "quantized": quant, "parameters": names,
           "clean": {"loss": clean_loss, "accuracy": clean_acc}, "flips": flips, "candidates": steps,
           "torch": torch.__version__}
    mf.write_json(os.path.join(mf.OUT, "bfa_" + MODEL.replace(".onnx", ".json")), out)


if __name__ == "__main__":
    main()
