#!/usr/bin/python3
"""Reference critical radii for paracorr's study, computed with PyTorch.

For a committed fixture (cnn_op17.onnx by default) on the first SAMPLES
Fashion-MNIST test images: the clean accuracy and gradient, then for the
whole model and two layers (a layer: every initializer its node reads) the
L2 dense gradient direction u = g / ||g||_2, and the radius at which the
accuracy of w + eps u first falls below clean - DROP, by the rule of
method.md ("The critical radius"): the sweep's radii bracket it (the
smallest radius below the budget, the largest under it within it, 0 if
none), doubling from the largest radius when none is below, then
bisection until hi - lo <= TOL hi. The ONNX file is evaluated by the
interpreter of make_fixtures.py, so the weights are exactly the file's.

Run with Debian's Python after make_fixtures.py:

    /usr/bin/python3 tests/reference/make_critical_refs.py

Writes tests/reference/fixtures/critical_<model>.json.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_analysis_refs as ar  # noqa: E402
import make_fixtures as mf  # noqa: E402

SAMPLES = 1000
SWEEP = [0.1, 0.5, 1.0, 2.0]
DROP = 0.05
TOL = 0.01
MAX_DOUBLINGS = 20
MAX_BISECTIONS = 30


def critical(accuracy_at, clean):
    budget = clean - DROP
    known = [(e, accuracy_at(e)) for e in SWEEP]
    below = [e for e, a in known if a < budget]
    hi = min(below) if below else None
    lo = max([e for e, _ in known if hi is None or e < hi] or [0.0])
    evals = 0
    if hi is None:
        e = 2 * max(SWEEP)
        for _ in range(MAX_DOUBLINGS):
            evals += 1
            if accuracy_at(e) < budget:
                hi = e
                break
            lo = e
            e *= 2
        if hi is None:
            return None, evals
    for _ in range(MAX_BISECTIONS):
        if hi - lo <= TOL * hi:
            break
        mid = 0.5 * (lo + hi)
        evals += 1
        if accuracy_at(mid) < budget:
            hi = mid
        else:
            lo = mid
    return hi, evals


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else "cnn_op17.onnx"
    path = os.path.join(mf.OUT, model)
    x_all = torch.from_numpy(mf.to_float(mf.read_idx(mf.TEST_IMAGES)))
    y_all = torch.from_numpy(mf.read_idx(mf.TEST_LABELS).astype(np.int64))
    x, y = x_all[:SAMPLES], y_all[:SAMPLES]
    it = mf.Interpreter(path)
    kind = it.output_kind()
    _, clean_acc = ar.evaluate(it, x, y, kind)
    g = ar.gradient(it, x, y, kind)
    names = list(it.params.keys())
    groups = [("model", names)]
    for layer in ("conv2", "fc3"):
        groups.append(("layer:" + layer, [n for n in names if n.startswith(layer + ".")]))

    rows = []
    for label, members in groups:
        l2 = torch.sqrt(sum((g[n].double() ** 2).sum() for n in members)).item()
        direction = {n: (g[n].double() / l2).float() for n in members}

        def accuracy_at(eps):
            return ar.corrupt_and_eval(it, x, y, kind, members, direction, eps)[1]

        eps, evals = critical(accuracy_at, clean_acc)
        rows.append({"group": label, "norm": "l2", "sparsity": 0, "epsilon": eps, "evaluations": evals})
        mf.log("  %-20s critical eps %s (%d evaluations)" % (label, eps, evals))

    out = {"model": model, "samples": SAMPLES, "sweep": SWEEP, "accuracy_drop": DROP, "tolerance": TOL,
           "clean": {"accuracy": clean_acc}, "critical": rows, "torch": torch.__version__}
    mf.write_json(os.path.join(mf.OUT, "critical_" + model.replace(".onnx", ".json")), out)


if __name__ == "__main__":
    main()
