#!/usr/bin/python3
"""Reference numbers for paracorr's corruption study, computed with PyTorch.

For a committed fixture (cnn_op17.onnx by default) on the first 2000
Fashion-MNIST test images: the clean loss and gradient, then the
gradient-based corruption of method.md (L2: a = eps * g / ||g||_2; Linf:
a = eps * sign(g)) of the whole model and of two single tensors at several
radii, each applied to the ONNX initializers, evaluated, and restored; and
random L2 corruption of the whole model (z ~ N(0, I) scaled to eps), many
trials, for its mean and spread. The ONNX file is evaluated by the
interpreter of make_fixtures.py, so the weights are exactly the file's.

Run with Debian's Python after make_fixtures.py:

    /usr/bin/python3 tests/reference/make_analysis_refs.py

Writes tests/reference/fixtures/analysis_<model>.json.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

SAMPLES = 2000
BATCH = 500
L2_EPS = [0.01, 0.1, 0.5]
LINF_EPS = [0.0002, 0.001, 0.005]
RANDOM_EPS = [0.5, 2.0]
RANDOM_TRIALS = 20
SEED = 7


def evaluate(it, x, y, kind):
    with torch.no_grad():
        loss, correct = 0.0, 0
        for i in range(0, x.shape[0], BATCH):
            o = it.run(x[i:i + BATCH])
            loss += mf.loss_of(o, y[i:i + BATCH], kind).item() * o.shape[0]
            correct += (o.argmax(1) == y[i:i + BATCH]).sum().item()
    return loss / x.shape[0], correct / x.shape[0]


def gradient(it, x, y, kind):
    for p in it.params.values():
        p.grad = None
    for i in range(0, x.shape[0], BATCH):
        o = it.run(x[i:i + BATCH])
        # the mean over all samples: each batch weighs by its share
        (mf.loss_of(o, y[i:i + BATCH], kind) * (o.shape[0] / x.shape[0])).backward()
    return {n: p.grad.detach().clone() for n, p in it.params.items()}


def corrupt_and_eval(it, x, y, kind, names, direction, eps):
    saved = {n: it.params[n].detach().clone() for n in names}
    with torch.no_grad():
        for n in names:
            it.params[n].add_(eps * direction[n])
    out = evaluate(it, x, y, kind)
    with torch.no_grad():
        for n in names:
            it.params[n].copy_(saved[n])
    return out


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "cnn_op17.onnx"
    path = os.path.join(mf.OUT, model)
    torch.manual_seed(SEED)
    x_all = torch.from_numpy(mf.to_float(mf.read_idx(mf.TEST_IMAGES)))
    y_all = torch.from_numpy(mf.read_idx(mf.TEST_LABELS).astype(np.int64))
    x, y = x_all[:SAMPLES], y_all[:SAMPLES]
    it = mf.Interpreter(path)
    kind = it.output_kind()
    clean_loss, clean_acc = evaluate(it, x, y, kind)
    g = gradient(it, x, y, kind)
    names = list(it.params.keys())
    # two single tensors: the second conv's weight and the first Gemm's weight
    picks = [n for n in names if it.params[n].dim() == 4][1:2] + [n for n in names if it.params[n].dim() == 2][:1]
    groups = [("model", names)] + [("tensor:" + n, [n]) for n in picks]

    results = []
    for label, members in groups:
        l2 = torch.sqrt(sum((g[n].double() ** 2).sum() for n in members)).item()
        for norm, radii in (("l2", L2_EPS), ("linf", LINF_EPS)):
            if norm == "l2":
                direction = {n: (g[n].double() / l2).float() for n in members}
                dual = l2
            else:
                direction = {n: torch.sign(g[n]) for n in members}
                dual = sum(g[n].double().abs().sum().item() for n in members)
            for eps in radii:
                loss, acc = corrupt_and_eval(it, x, y, kind, members, direction, eps)
                results.append({"group": label, "norm": norm, "epsilon": eps, "first_order": eps * dual,
                                "loss": loss, "accuracy": acc})
                mf.log("  %-32s %-4s eps %-7g loss %.5f acc %.4f" % (label, norm, eps, loss, acc))

    random = []
    for eps in RANDOM_EPS:
        losses, accs = [], []
        for k in range(RANDOM_TRIALS):
            z = {n: torch.randn(it.params[n].shape, dtype=torch.float64) for n in names}
            zn = torch.sqrt(sum((z[n] ** 2).sum() for n in names)).item()
            direction = {n: (z[n] / zn).float() for n in names}
            loss, acc = corrupt_and_eval(it, x, y, kind, names, direction, eps)
            losses.append(loss)
            accs.append(acc)
        random.append({"group": "model", "norm": "l2", "epsilon": eps, "trials": RANDOM_TRIALS,
                       "loss_mean": float(np.mean(losses)), "loss_std": float(np.std(losses, ddof=1)),
                       "accuracy_mean": float(np.mean(accs)), "accuracy_std": float(np.std(accs, ddof=1))})
        mf.log("  random l2 eps %g: acc %.4f +- %.4f" % (eps, np.mean(accs), np.std(accs, ddof=1)))

    out = {"model": model, "samples": SAMPLES, "batch_size": BATCH,
           "clean": {"loss": clean_loss, "accuracy": clean_acc},
           "tensors": picks, "gradient": results, "random": random,
           "torch": torch.__version__}
    mf.write_json(os.path.join(mf.OUT, "analysis_" + model.replace(".onnx", ".json")), out)


if __name__ == "__main__":
    main()
