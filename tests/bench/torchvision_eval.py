#!/usr/bin/python3
"""The evaluation of a torchvision model in PyTorch, for `make bench`.

    /usr/bin/python3 tests/bench/torchvision_eval.py --make DIR --model resnet18
        writes DIR/resnet18.onnx (torchvision's architecture, 10 classes, seeded
        random weights, ONNX opset 14, batch dimension dynamic), DIR/tv_x.npy
        (N float32 inputs of 3x32x32, seeded normal) and DIR/tv_y.npy (int64
        labels in 0..9); files already there are kept
    /usr/bin/python3 tests/bench/torchvision_eval.py --time --model resnet18 --dir DIR
        --threads T --batch B [--limit N]
        evaluates as `paracorr eval` does (eval mode, BatchNorm on its running
        statistics, mean cross-entropy, accuracy, the gradient of the mean loss
        with respect to every parameter), batch by batch, and prints JSON
        {"seconds", "loss", "accuracy", "gradient_l2"}: seconds from after the
        model and data are in memory to the last gradient, so PyTorch is timed
        without its loading and paracorr (timed as a whole process) with it.

The weights are random: the bench times the arithmetic, which does not depend
on them, and the cross-check compares the two on the same numbers.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torchvision

N_DEFAULT = 1000
CLASSES = 10


def build(name):
    torch.manual_seed(0)
    ctor = getattr(torchvision.models, name)
    m = ctor(num_classes=CLASSES)
    m.eval()
    return m


def make(d, name, n):
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, name + ".onnx")
    if not os.path.exists(path):
        m = build(name)
        x = torch.zeros(2, 3, 32, 32)
        tmp = path + ".tmp"
        torch.onnx.export(m, x, tmp, opset_version=14, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
        os.replace(tmp, path)
        torch.save(m.state_dict(), os.path.join(d, name + ".pt"))
    xp, yp = os.path.join(d, "tv_x.npy"), os.path.join(d, "tv_y.npy")
    if not (os.path.exists(xp) and os.path.exists(yp)):
        rng = np.random.default_rng(1)
        np.save(xp, rng.standard_normal((n, 3, 32, 32), dtype=np.float32))
        np.save(yp, rng.integers(0, CLASSES, size=n, dtype=np.int64))


def time_eval(d, name, threads, batch, limit):
    torch.set_num_threads(threads)
    m = build(name)
    m.load_state_dict(torch.load(os.path.join(d, name + ".pt")))
    m.eval()
    x = torch.from_numpy(np.load(os.path.join(d, "tv_x.npy")))
    y = torch.from_numpy(np.load(os.path.join(d, "tv_y.npy")))
    if limit:
        x, y = x[:limit], y[:limit]
    n = x.shape[0]
    t0 = time.perf_counter()
    m.zero_grad(set_to_none=True)
    loss_sum, correct = 0.0, 0
    for i in range(0, n, batch):
        out = m(x[i:i + batch])
        loss = torch.nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum") / n
        loss.backward()
        loss_sum += float(loss.detach()) * n
        correct += int((out.detach().argmax(1) == y[i:i + batch]).sum())
    g2 = sum(float((p.grad.double() ** 2).sum()) for p in m.parameters() if p.grad is not None)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "loss": loss_sum / n, "accuracy": correct / n, "gradient_l2": g2 ** 0.5}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make", metavar="DIR")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--dir")
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--samples", type=int, default=N_DEFAULT)
    a = ap.parse_args()
    if a.make:
        make(a.make, a.model, a.samples)
        return 0
    if a.time and a.dir:
        print(json.dumps(time_eval(a.dir, a.model, a.threads, a.batch, a.limit)))
        return 0
    ap.error("give --make DIR or --time --dir DIR")
    return 2


if __name__ == "__main__":
    sys.exit(main())
