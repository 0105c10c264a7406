#!/usr/bin/python3
"""Reference numbers for the reduction, LayerNormalization, Softmax and MatMul
tests (tests/test_ops_reduce.c), computed with PyTorch in float32.

Run with Debian's Python (torch 1.13, onnx 1.12):

    /usr/bin/python3 tests/reference/make_reduce_fixtures.py

Writes, under tests/reference/fixtures/:

  reduce_ops.json      op-level cases: each names the op, its attributes and
                       shapes, and the expected output values. Inputs and
                       weights are not stored: both sides compute them with
                       pat() below, whose values are exact in float32.
  ln_attn_op14.onnx    a LayerNorm + two-head attention block exported at
  ln_attn_op17.onnx    opset 14 (LayerNorm decomposed into ReduceMean, Sub,
                       Pow, Sqrt, Div, ...) and 17 (LayerNormalization).
  ln_attn.json         its input (random), output, the gradient of sum(y * R) with
                       respect to the input, and the l2 norm of the gradient
                       with respect to all weights.

Nothing is downloaded; the run takes a few seconds and is deterministic.
"""

import io
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

torch.set_num_threads(1)
torch.manual_seed(20240607)


def pat(n, seed):
    """n values of ((i * 7919 + seed * 104729) % 61 - 30) / 16, i = 0..n-1:
    multiples of 1/16 in [-1.875, 1.875], exact in float32, no repeats
    within 61 consecutive elements. test_ops_reduce.c computes the same."""
    i = np.arange(n, dtype=np.int64)
    return (((i * 7919 + seed * 104729) % 61 - 30).astype(np.float32) / np.float32(16.0))


def tensor(shape, seed, scale=1.0, offset=0.0):
    n = int(np.prod(shape)) if len(shape) else 1
    v = pat(n, seed) * np.float32(scale) + np.float32(offset)
    return torch.from_numpy(v.reshape(shape).copy())


def floats(t):
    return [float(v) for v in t.detach().reshape(-1).numpy().astype(np.float32)]


# --- reductions ---------------------------------------------------------------

# axes None: the attribute / input is absent; "input": axes given as input 1
# (ReduceSum from opset 13). keepdims None: the attribute is absent (1).
REDUCE_CASES = [
    dict(op="ReduceMean", opset=13, shape=[2, 3, 4], axes=[-1], keepdims=None),
    dict(op="ReduceMean", opset=13, shape=[2, 3, 4], axes=[1], keepdims=0),
    dict(op="ReduceMean", opset=11, shape=[2, 3, 4, 5], axes=[1, 3], keepdims=1),
    dict(op="ReduceMean", opset=17, shape=[2, 3, 4], axes=None, keepdims=0),
    dict(op="ReduceMean", opset=13, shape=[2, 1, 6], axes=[1], keepdims=0),
    dict(op="ReduceSum", opset=13, shape=[2, 3, 4], axes=[0, 2], keepdims=0, input=True),
    dict(op="ReduceSum", opset=11, shape=[2, 3, 4], axes=[-2], keepdims=1),
    dict(op="ReduceSum", opset=13, shape=[2, 3, 4], axes=None, keepdims=1, input=True),
    dict(op="ReduceSum", opset=13, shape=[2, 3, 4], axes=[], keepdims=0, input=True, noop=1),
    dict(op="ReduceSum", opset=13, shape=[2, 3, 4], axes=[], keepdims=0, input=True, noop=0),
    dict(op="ReduceSum", opset=13, shape=[2, 4, 3, 2], axes=[3, 1], keepdims=0, input=True),
    dict(op="ReduceMax", opset=13, shape=[2, 3, 4], axes=[1], keepdims=0),
    dict(op="ReduceMax", opset=13, shape=[2, 3, 4, 5], axes=[0, 2, 3], keepdims=1),
    dict(op="ReduceMax", opset=17, shape=[2, 6], axes=[-1], keepdims=1),
    dict(op="ReduceMin", opset=13, shape=[2, 3, 4], axes=[-1], keepdims=0),
    dict(op="ReduceMin", opset=12, shape=[2, 5, 1, 3], axes=[1, 2], keepdims=1),
]


def reduce_ref(c, x):
    rank = x.dim()
    keep = c.get("keepdims")
    keep = 1 if keep is None else keep
    axes = c["axes"]
    if axes is not None and len(axes) == 0 and c.get("noop"):
        return x
    if axes is None or len(axes) == 0:
        axes = list(range(rank))
    dims = tuple(a % rank for a in axes)
    fn = {"ReduceMean": torch.mean, "ReduceSum": torch.sum, "ReduceMax": torch.amax,
          "ReduceMin": torch.amin}[c["op"]]
    return fn(x, dim=dims, keepdim=bool(keep))


def reduce_cases():
    out = []
    for k, c in enumerate(REDUCE_CASES):
        c = dict(c, seed=100 + k)
        x = tensor(c["shape"], c["seed"])
        y = reduce_ref(c, x)
        c["out_shape"] = list(y.shape)
        c["expected"] = floats(y)
        out.append(c)
    return out


# --- LayerNormalization -----------------------------------------------------------

LN_CASES = [
    dict(shape=[2, 3, 8], axis=-1, scale=[8], bias=[8]),
    dict(shape=[2, 3, 4], axis=-2, scale=[3, 4], bias=[3, 4], epsilon=1e-3),
    dict(shape=[2, 3, 4], axis=1, scale=[4], bias=[1, 4]),
    dict(shape=[2, 4, 6], axis=-1, scale=[6], bias=None, stash_type=1),
    dict(shape=[2, 2, 3, 4], axis=-3, scale=[2, 3, 4], bias=[4]),
    # rows far from zero: a one-pass E[x^2] - E[x]^2 in float loses them
    dict(shape=[2, 3, 8], axis=-1, scale=[8], bias=[8], offset=1000.0, stats=True),
]


def ln_cases():
    out = []
    for k, c in enumerate(LN_CASES):
        c = dict(c, seed=200 + k)
        x = tensor(c["shape"], c["seed"], 1.0, c.get("offset", 0.0))
        w = tensor(c["scale"], c["seed"] + 50, 0.5, 1.0)
        b = tensor(c["bias"], c["seed"] + 60, 0.25) if c["bias"] else None
        eps = c.get("epsilon", 1e-5)
        rank = len(c["shape"])
        ax = c["axis"] % rank
        dims = tuple(range(ax, rank))
        # The reference is torch's float32 layer norm where the affine
        # shapes are the normalised shape; otherwise the same formula with
        # broadcasting (F.layer_norm takes no broadcast weights).
        norm_shape = c["shape"][ax:]
        if c["scale"] == norm_shape and (b is None or c["bias"] == norm_shape) and not c.get("offset"):
            y = F.layer_norm(x, norm_shape, w, b, eps)
            mean = x.mean(dim=dims, keepdim=True)
            inv = torch.rsqrt(x.var(dim=dims, unbiased=False, keepdim=True) + eps)
        else:
            # far from zero, torch's float32 kernel is itself off in the
            # last digits: the reference is float64, rounded once
            xd = x.double()
            mean = xd.mean(dim=dims, keepdim=True)
            var = ((xd - mean) ** 2).mean(dim=dims, keepdim=True)
            inv = 1.0 / torch.sqrt(var + eps)
            y = (xd - mean) * inv * w.double() + (b.double() if b is not None else 0.0)
        c["expected"] = floats(y)
        if c.get("stats"):
            c["mean"] = floats(mean)
            c["invstd"] = floats(inv)
        out.append(c)
    return out


# --- Softmax and LogSoftmax --------------------------------------------------------

SM_CASES = [
    dict(op="Softmax", opset=13, shape=[2, 2, 3, 5], axis=-1),
    dict(op="Softmax", opset=13, shape=[2, 2, 3, 5], axis=1),
    dict(op="Softmax", opset=13, shape=[2, 3, 4], axis=None),
    dict(op="Softmax", opset=11, shape=[2, 2, 3, 5], axis=2),
    dict(op="Softmax", opset=11, shape=[2, 3, 4], axis=None),
    dict(op="Softmax", opset=13, shape=[2, 2, 3, 37], axis=-1, scale=50.0),
    dict(op="LogSoftmax", opset=13, shape=[2, 2, 3, 5], axis=-1),
    dict(op="LogSoftmax", opset=13, shape=[2, 2, 3, 5], axis=2),
    dict(op="LogSoftmax", opset=12, shape=[2, 2, 3, 5], axis=-2),
    dict(op="LogSoftmax", opset=13, shape=[2, 2, 3, 37], axis=-1, scale=50.0),
]


def sm_cases():
    out = []
    for k, c in enumerate(SM_CASES):
        c = dict(c, seed=300 + k)
        x = tensor(c["shape"], c["seed"], c.get("scale", 1.0))
        rank = len(c["shape"])
        fn = torch.softmax if c["op"] == "Softmax" else torch.log_softmax
        if c["opset"] >= 13:
            y = fn(x, dim=(-1 if c["axis"] is None else c["axis"]))
        else:
            ax = (1 if c["axis"] is None else c["axis"]) % rank
            rows = int(np.prod(c["shape"][:ax]))
            y = fn(x.reshape(rows, -1), dim=1).reshape(x.shape)
        c["expected"] = floats(y)
        out.append(c)
    return out


# --- MatMul --------------------------------------------------------------------------

# "x" is the graph input (batch 2), "W" a weight; w_first: MatMul(W, x);
# "xT": MatMul(x, transpose of x over its last two axes), both operands
# activations.
MM_CASES = [
    dict(x=[2, 5, 8], w=[8, 6]),
    dict(x=[2, 2, 3, 4], w=[2, 4, 5]),
    dict(x=[2, 4, 5], w=[3, 4], w_first=True),
    dict(x=[2, 1, 3, 4], w=[3, 4, 2]),
    dict(x=[2, 4], w=[4]),
    dict(x=[2, 4, 3], w=[4], w_first=True),
    dict(x=[2, 3, 4], w=[1, 4, 3]),
    dict(x=[2, 2, 3, 4], w=None),
]


def mm_cases():
    out = []
    for k, c in enumerate(MM_CASES):
        c = dict(c, seed=400 + k)
        x = tensor(c["x"], c["seed"])
        if c["w"] is None:
            y = torch.matmul(x, x.transpose(-1, -2))
        else:
            w = tensor(c["w"], c["seed"] + 50)
            y = torch.matmul(w, x) if c.get("w_first") else torch.matmul(x, w)
        c["out_shape"] = list(y.shape)
        c["expected"] = floats(y)
        out.append(c)
    return out


# --- the exported block ---------------------------------------------------------------

class Block(nn.Module):
    """x[N, T, D] -> LayerNorm -> two-head attention -> mean + 0.5 max over T."""

    def __init__(self, t=5, d=8, heads=2):
        super().__init__()
        self.t, self.d, self.h, self.dh = t, d, heads, d // heads
        self.scale = 1.0 / (self.dh ** 0.5)
        self.ln = nn.LayerNorm(d)
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)

    def forward(self, x):
        h = self.ln(x)

        def split(z):
            return z.reshape(-1, self.t, self.h, self.dh).transpose(1, 2)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        a = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * self.scale, dim=-1)
        o = torch.matmul(a, v).transpose(1, 2).reshape(-1, self.t, self.d)
        return o.mean(dim=1) + 0.5 * torch.amax(o, dim=1)


def block_fixture():
    m = Block()
    with torch.no_grad():
        m.ln.weight.copy_(1.0 + 0.2 * torch.randn(8))
        m.ln.bias.copy_(0.2 * torch.randn(8))
        for lin in (m.q, m.k, m.v):
            lin.weight.mul_(2.0)
    m.eval()
    n = 3
    # random, not pat(): pat's tokens are often shifts of one another, which
    # LayerNorm maps to the same vector, and the max over T then sees exact
    # ties in one implementation and last-bit differences in another
    x = torch.randn(n, 5, 8) + 0.25
    files = {}
    for opset in (14, 17):
        f = io.BytesIO()
        torch.onnx.export(m, x, f, opset_version=opset, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        name = "ln_attn_op%d.onnx" % opset
        onnx.checker.check_model(onnx.load_from_string(f.getvalue()))
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(f.getvalue())
        files[str(opset)] = name
    xr = x.clone().requires_grad_(True)
    y = m(xr)
    r = tensor(list(y.shape), 501)
    (y * r).sum().backward()
    g2 = sum(float((p.grad.double() ** 2).sum()) for p in m.parameters())
    return {
        "models": files,
        "batch": n,
        "input_shape": list(x.shape),
        "input": floats(x),
        "output": floats(y),
        "r_seed": 501,
        "input_grad": floats(xr.grad),
        "weight_grad_l2": g2 ** 0.5,
    }


def write_json(path, obj):
    """One line per case: small diffs when a case changes."""
    with open(path, "w") as fh:
        fh.write("{\n")
        keys = list(obj)
        for i, k in enumerate(keys):
            v = obj[k]
            end = ",\n" if i + 1 < len(keys) else "\n"
            if isinstance(v, list) and v and isinstance(v[0], dict):
                fh.write(" %s: [\n" % json.dumps(k))
                fh.write(",\n".join("  " + json.dumps(c) for c in v))
                fh.write("\n ]" + end)
            else:
                fh.write(" %s: %s%s" % (json.dumps(k), json.dumps(v), end))
        fh.write("}\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    ops = {
        "generator": "tests/reference/make_reduce_fixtures.py (torch %s, float32)" % torch.__version__,
        "reduce": reduce_cases(),
        "layernorm": ln_cases(),
        "softmax": sm_cases(),
        "matmul": mm_cases(),
    }
    write_json(os.path.join(OUT, "reduce_ops.json"), ops)
    block = block_fixture()
    block["generator"] = ops["generator"]
    write_json(os.path.join(OUT, "ln_attn.json"), block)
    print("wrote reduce_ops.json, ln_attn.json, " + ", ".join(block["models"].values()))


if __name__ == "__main__":
    main()
