#!/usr/bin/python3
"""Reference numbers for paracorr's bit-fault study (issue 15), computed
with numpy and PyTorch, independently of paracorr's code.

For cnn_op17.onnx on the first 2000 Fashion-MNIST test images, evaluated by
the interpreter of make_fixtures.py (as make_analysis_refs.py does):

- the clean loss and accuracy of each storage format: float32 (the file),
  float16 and bfloat16 (every parameter rounded to nearest even by torch),
  and int8 per tensor and per channel: the weights read by Conv, Gemm or
  MatMul as input 1 quantized symmetrically, scale = max|w| / 127 in
  float32 (over the tensor or each output channel), q = rint(w / scale)
  (half to even) clamped to [-127, 127], decoded as q * scale in float32;
  every other parameter stays float32;
- one fixed flip per format (a chosen tensor, element and bit of the
  stored code): the value before and after and the loss and accuracy after;
- a Monte Carlo of random bit errors over the whole model with numpy's own
  generator: per trial the number of flipped bits is Binomial(exposed bits,
  ber) and the flipped bits are drawn without replacement, which is the
  distribution of independent flips with probability ber. float32 at 1e-6
  (about two flips a trial) and int8 per tensor at 1e-3 (about 490), 200
  trials each: mean and sample std of accuracy, and of the loss over the
  trials whose loss is finite, with the count of the others.

A prediction is the first arg-max of a row, and a row holding a NaN is a
wrong prediction, as paracorr's eval.h defines it (torch's argmax would
pick the NaN). The cross-entropy is taken in float64 from the float32
outputs, as paracorr's eval does: a flipped float32 exponent gives logits
near 1e37, whose float32 loss average overflows.

Run with Debian's Python (about a minute on one core):

    /usr/bin/python3 tests/reference/make_faults_refs.py

Writes tests/reference/fixtures/faults_cnn_op17.json.
"""

import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

MODEL = "cnn_op17.onnx"
SAMPLES = 2000
BATCH = 500
TRIALS = 200
SEED = 15
# (format, quantization, ber): a few flips a trial in float32, hundreds in int8
BER_RUNS = [("float32", None, 1e-6), ("int8", "per_tensor", 1e-3)]
# (format, quantization, tensor, element, bit): a clear exponent bit of a
# float (the weight grows 16 times, finite), int8's sign bit and bit 6
FIXED = [("float32", None, "fc1.weight", 1234, 25),
         ("float16", None, "conv2.weight", 777, 12),
         ("bfloat16", None, "conv1.weight", 42, 9),
         ("int8", "per_tensor", "fc1.weight", 1234, 7),
         ("int8", "per_channel", "conv2.weight", 777, 6)]
BITS = {"float32": 32, "float16": 16, "bfloat16": 16, "int8": 8}


def evaluate(it, x, y, kind):
    """Mean loss (NaN when any batch's is not finite) and accuracy."""
    with torch.no_grad():
        loss, correct = 0.0, 0
        for i in range(0, x.shape[0], BATCH):
            o = it.run(x[i:i + BATCH])
            yb = y[i:i + BATCH]
            # in float64 from the float32 outputs, as paracorr's eval: a
            # float32 mean of losses near 1e37 overflows into a NaN that
            # no single sample has
            loss += mf.loss_of(o.double(), yb, kind).item() * o.shape[0]
            ok = (o.argmax(1) == yb) & ~torch.isnan(o).any(1)
            correct += ok.sum().item()
    loss /= x.shape[0]
    return (loss if math.isfinite(loss) else float("nan")), correct / x.shape[0]


def weight_axis(model):
    """name -> output channel axis for the int8-quantizable initializers:
    every read is input 1 of Conv (axis 0), Gemm (0 with transB, else 1) or
    MatMul (the last axis of a matrix)."""
    dims = {t.name: len(t.dims) for t in model.graph.initializer}
    axis, bad = {}, set()
    for n in model.graph.node:
        tb = [a.i for a in n.attribute if a.name == "transB"]
        for i, name in enumerate(n.input):
            if name not in dims:
                continue
            a = None
            if i == 1 and n.op_type == "Conv":
                a = 0
            elif i == 1 and n.op_type == "Gemm" and dims[name] == 2:
                a = 0 if (tb and tb[0]) else 1
            elif i == 1 and n.op_type == "MatMul" and dims[name] >= 2:
                a = dims[name] - 1
            if a is None or (name in axis and axis[name] != a):
                bad.add(name)
            else:
                axis[name] = a
    return {k: v for k, v in axis.items() if k not in bad}


class Store:
    """One format's codes of every parameter, and their decoding."""

    def __init__(self, clean, fmt, quant, axes):
        self.fmt, self.codes, self.scales, self.shapes = fmt, {}, {}, {}
        for name, w in clean.items():
            self.shapes[name] = w.shape
            if fmt == "float32":
                self.codes[name] = w.numpy().reshape(-1).view(np.uint32).copy()
            elif fmt == "float16":
                self.codes[name] = w.numpy().astype(np.float16).reshape(-1).view(np.uint16).copy()
            elif fmt == "bfloat16":
                self.codes[name] = w.to(torch.bfloat16).view(torch.int16).numpy().reshape(-1).view(np.uint16).copy()
            elif name in axes:
                a = w.numpy()
                if quant == "per_channel":
                    ax = axes[name]
                    m = np.abs(np.moveaxis(a, ax, 0)).reshape(a.shape[ax], -1).max(1).astype(np.float32)
                    shape = [1] * a.ndim
                    shape[ax] = a.shape[ax]
                    scale = (m / np.float32(127)).reshape(shape)
                else:
                    scale = np.float32(np.abs(a).max()) / np.float32(127)
                scale = np.broadcast_to(np.asarray(scale, dtype=np.float32), a.shape)
                q = np.zeros(a.shape, dtype=np.float32)
                nz = scale > 0
                q[nz] = np.rint(a[nz] / scale[nz])
                q = np.clip(q, -127, 127).astype(np.int8)
                self.codes[name] = q.reshape(-1).view(np.uint8).copy()
                self.scales[name] = scale.reshape(-1).copy()
            else:
                # int8 leaves the tensor in float32: protected, no bits exposed
                self.codes[name] = w.numpy().reshape(-1).view(np.uint32).copy()

    def exposed(self, name):
        return 0 if (self.fmt == "int8" and name not in self.scales) else BITS[self.fmt]

    def decode(self, name, codes=None):
        c = self.codes[name] if codes is None else codes
        if self.fmt == "float16":
            v = c.view(np.float16).astype(np.float32)
        elif self.fmt == "bfloat16":
            v = torch.from_numpy(c.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
        elif self.fmt == "int8" and name in self.scales:
            v = c.view(np.int8).astype(np.float32) * self.scales[name]
        else:
            v = c.view(np.float32)
        return torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32).reshape(self.shapes[name]))

    def load(self, it, flips=None):
        """Writes the decoded parameters into the interpreter, with
        flips {name: [(element, bit), ...]} applied to a copy of the codes."""
        with torch.no_grad():
            for name in self.codes:
                c = self.codes[name]
                if flips and name in flips:
                    c = c.copy()
                    for e, b in flips[name]:
                        c[e] ^= c.dtype.type(1 << b)
                it.params[name].copy_(self.decode(name, c))


def monte_carlo(it, s, clean, x, y, kind, ber, trials, rng):
    """`trials` random trials of store s at bit error rate ber over the
    whole model: per trial Binomial(exposed bits, ber) flips drawn without
    replacement. Its row of the reference (without format and quantization)."""
    names = list(clean.keys())
    layout = [(n, clean[n].numel(), s.exposed(n)) for n in names if s.exposed(n)]
    total = sum(c * b for _, c, b in layout)
    accs, losses, flips_total, non_finite = [], [], 0, 0
    for _ in range(trials):
        count = int(rng.binomial(total, ber))
        picked = np.sort(rng.choice(total, size=count, replace=False)) if count else []
        flips_total += count
        flips = {}
        for pos in picked:
            pos = int(pos)
            for n, c, b in layout:
                if pos < c * b:
                    flips.setdefault(n, []).append((pos // b, pos % b))
                    break
                pos -= c * b
        s.load(it, flips)
        loss, acc = evaluate(it, x, y, kind)
        accs.append(acc)
        if math.isfinite(loss):
            losses.append(loss)
        else:
            non_finite += 1
    return {"ber": ber, "group": "model", "trials": trials, "exposed_bits": total,
            "flips_mean": flips_total / trials, "accuracy_mean": float(np.mean(accs)),
            "accuracy_std": float(np.std(accs, ddof=1)), "accuracy_min": float(np.min(accs)),
            "loss_mean": float(np.mean(losses)) if losses else float("nan"),
            "loss_std": float(np.std(losses, ddof=1)) if len(losses) > 1 else float("nan"),
            "loss_trials": len(losses), "non_finite": non_finite}


def main():
    path = os.path.join(mf.OUT, MODEL)
    x_all = torch.from_numpy(mf.to_float(mf.read_idx(mf.TEST_IMAGES)))
    y_all = torch.from_numpy(mf.read_idx(mf.TEST_LABELS).astype(np.int64))
    x, y = x_all[:SAMPLES], y_all[:SAMPLES]
    it = mf.Interpreter(path)
    kind = it.output_kind()
    clean = {n: p.detach().clone() for n, p in it.params.items()}
    names = list(clean.keys())
    axes = weight_axis(it.model)

    stores = {}
    clean_rows = []
    for fmt, quant in (("float32", None), ("float16", None), ("bfloat16", None), ("int8", "per_tensor"),
                       ("int8", "per_channel")):
        s = Store(clean, fmt, quant, axes)
        stores[(fmt, quant)] = s
        s.load(it)
        loss, acc = evaluate(it, x, y, kind)
        bits = sum(s.exposed(n) * clean[n].numel() for n in names)
        clean_rows.append({"format": fmt, "quantization": quant, "exposed_bits": bits, "loss": loss,
                           "accuracy": acc})
        mf.log("  clean %-8s %-11s bits %8d loss %.6f acc %.4f" % (fmt, quant or "", bits, loss, acc))

    fixed = []
    for fmt, quant, name, elem, bit in FIXED:
        s = stores[(fmt, quant)]
        before = float(s.decode(name).reshape(-1)[elem])
        c = s.codes[name].copy()
        c[elem] ^= c.dtype.type(1 << bit)
        after = float(s.decode(name, c).reshape(-1)[elem])
        s.load(it, {name: [(elem, bit)]})
        loss, acc = evaluate(it, x, y, kind)
        fixed.append({"format": fmt, "quantization": quant, "tensor": name, "element": elem, "bit": bit,
                      "before": before, "after": after, "loss": loss, "accuracy": acc})
        mf.log("  flip %-8s %-11s %s[%d] bit %d: %.6g -> %.6g, loss %.6f acc %.4f"
               % (fmt, quant or "", name, elem, bit, before, after, loss, acc))

    rng = np.random.default_rng(SEED)
    random = []
    for fmt, quant, ber in BER_RUNS:
        row = monte_carlo(it, stores[(fmt, quant)], clean, x, y, kind, ber, TRIALS, rng)
        row = dict({"format": fmt, "quantization": quant}, **row)
        random.append(row)
        mf.log("  ber %-8s %g: flips %.2f acc %.4f +- %.4f (min %.4f) loss %.4f +- %.4f, %d non-finite"
               % (fmt, ber, row["flips_mean"], row["accuracy_mean"], row["accuracy_std"], row["accuracy_min"],
                  row["loss_mean"], row["loss_std"], non_finite))

    out = {"model": MODEL, "samples": SAMPLES, "batch_size": BATCH, "seed": SEED, "clean": clean_rows,
           "fixed": fixed, "random": random, "torch": torch.__version__, "numpy": np.__version__}
    mf.write_json(os.path.join(mf.OUT, "faults_" + MODEL.replace(".onnx", ".json")), out)


if __name__ == "__main__":
    main()
