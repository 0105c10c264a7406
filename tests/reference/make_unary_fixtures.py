#!/usr/bin/python3
"""Reference numbers for the elementwise math ops (core/ops/unary.c).

Writes, under tests/reference/fixtures/:

  unary_ops.json     op-level cases: inputs (with 0, -0, +-3, +-inf, NaN and
                     the domain edges), torch's float32 outputs, and torch's
                     autograd gradients of sum(y * r) for a fixed r, for Abs,
                     Neg, Reciprocal, Sqrt, Exp, Log, Erf, HardSwish,
                     HardSigmoid and Pow (scalar and tensor exponents,
                     broadcasting either way, int64 exponents);
  unary_op{11,14,17}.onnx   one small model (Linear, then erf, exp, pow,
                     hardswish, hardsigmoid, sqrt, log, reciprocal, abs, neg,
                     both GELUs, a learned exponent, then Linear), exported by
                     torch.onnx.export at each opset (at 11 HardSwish is
                     written as x * HardSigmoid(x));
  unary_model.json   that model's output on fixed inputs, and the gradients
                     of sum(out * r) for each initializer and for the input,
                     from the nn.Module itself.

tests/test_ops_unary.c compares paracorr against both files.

Non-finite floats are written as the strings "inf", "-inf" and "nan"
(JSON has no such numbers); finite ones with 9 significant digits, which
round-trip float32 exactly.

Run with Debian's python3-torch, python3-onnx, python3-numpy:
    /usr/bin/python3 tests/reference/make_unary_fixtures.py
"""
import io
import json
import math
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")

torch.set_num_threads(1)
torch.manual_seed(20240607)
RNG = np.random.default_rng(20240607)


def enc(v):
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0.0:
        return -0.0 if math.copysign(1.0, v) < 0 else 0.0
    return float("%.9g" % v)


def flat(t):
    return [enc(v) for v in t.detach().reshape(-1).tolist()]


def f32(a):
    return torch.tensor(np.asarray(a, dtype=np.float32))


# Points where the ops have edges: zeros of both signs, the HardSwish and
# HardSigmoid kinks, the domains of Log and Sqrt, overflow, non-finite.
SPECIALS = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 2.5, -2.5, 1e-3, -1e-3, 10.0, -10.0,
            float("inf"), float("-inf"), float("nan"), 0.7]
K = 16


def unary_inputs():
    rand = RNG.uniform(-4.0, 4.0, size=K).astype(np.float32)
    return f32(np.concatenate([np.array(SPECIALS, dtype=np.float32), rand])).reshape(2, K)


def grad_of(fn, *args):
    """y = fn(*args) and the gradient of sum(y * r) for each argument."""
    leaves = [a.clone().requires_grad_(True) for a in args]
    y = fn(*leaves)
    r = f32(RNG.uniform(-1.0, 1.0, size=tuple(y.shape)))
    (y * r).sum().backward()
    return y.detach(), r, [l.grad for l in leaves]


def unary_case(name, op, fn, attrs=None, x=None):
    x = unary_inputs() if x is None else x
    y, r, (dx,) = grad_of(fn, x)
    if op == "HardSwish" and x.numel() % 16 == 0:
        # torch's vectorised kernel (every element here: 32 is a multiple of
        # its 16-float step on AVX2) takes the right-hand derivative at 3 and
        # gives NaN at NaN; its scalar tail loop gives 1.5 g and g.  The
        # fixture records the vectorised convention: check it is the one seen.
        at3 = (x == 3.0)
        assert torch.equal(dx[at3], r[at3]), "torch's HardSwish gradient at 3 is not g"
        assert bool(torch.isnan(dx[torch.isnan(x)]).all()), "torch's HardSwish gradient at NaN is not NaN"
    c = {"name": name, "kind": "unary", "op": op, "shape": list(x.shape), "x": flat(x), "r": flat(r),
         "y": flat(y), "dx": flat(dx)}
    if attrs:
        c["attrs"] = attrs
    return c


def hardsigmoid_onnx(alpha, beta):
    """ONNX's max(0, min(1, alpha * x + beta)) in float32, and its gradient
    alpha * g strictly inside (0, 1): torch has no such op for other alpha
    and beta, so the gradient is written out rather than taken from clamp
    (whose gradient includes the ends)."""
    a, b = np.float32(alpha), np.float32(beta)

    class HS(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.clamp(x * float(a) + float(b), 0.0, 1.0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            v = x * float(a) + float(b)
            return torch.where((v > 0) & (v < 1), g * float(a), torch.zeros_like(g))

    return HS.apply


def pow_cases():
    cases = []
    base = unary_inputs()
    # x ** c: torch's tensor ** scalar kernels
    for e in [2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 0.0, 1.0, 1.7, -1.3]:
        y, r, (dx,) = grad_of(lambda b: b ** e, base)
        cases.append({"name": "Pow x**%g" % e, "kind": "pow_const", "shape": list(base.shape), "x": flat(base),
                      "exp": {"dtype": "float", "shape": [], "values": [enc(e)]},
                      "r": flat(r), "y": flat(y), "dx": flat(dx)})
    # an int64 scalar exponent is the same kernel as torch's x ** 2
    y, r, (dx,) = grad_of(lambda b: b ** 2, base)
    cases.append({"name": "Pow x**int64 2", "kind": "pow_const", "shape": list(base.shape), "x": flat(base),
                  "exp": {"dtype": "int64", "shape": [], "values": [2]}, "r": flat(r), "y": flat(y),
                  "dx": flat(dx)})
    # an int64 vector exponent: tensor ** tensor
    ev = np.array([(i % 6) - 2 for i in range(K)], dtype=np.int64)
    y, r, (dx,) = grad_of(lambda b: torch.pow(b, torch.tensor(ev)), base)
    cases.append({"name": "Pow x**int64 [K]", "kind": "pow_const", "shape": list(base.shape), "x": flat(base),
                  "exp": {"dtype": "int64", "shape": [K], "values": [int(v) for v in ev]}, "r": flat(r),
                  "y": flat(y), "dx": flat(dx)})
    # a constant float vector exponent: tensor ** tensor, no gradient to it
    evf = f32(RNG.uniform(-2.0, 3.0, size=K))
    y, r, (dx,) = grad_of(lambda b: torch.pow(b, evf), base)
    cases.append({"name": "Pow x**const [K]", "kind": "pow_const", "shape": list(base.shape), "x": flat(base),
                  "exp": {"dtype": "float", "shape": [K], "values": flat(evf)}, "r": flat(r), "y": flat(y),
                  "dx": flat(dx)})

    # tensor ** tensor with the exponent a weight: both gradients, with the
    # special bases (0, -0, negative, inf, NaN) against exponents of every
    # sign, same shape and broadcast
    def pow_param_exp(name, b, eshape):
        e = f32(RNG.uniform(-2.0, 3.0, size=eshape))
        if len(eshape) == 2 and eshape[1] >= 4:
            e[0, :4] = f32([0.0, 2.0, -1.0, 0.5])
        y, r, (db, de) = grad_of(torch.pow, b, e)
        return {"name": name, "kind": "pow_param_exp", "shape": list(b.shape), "x": flat(b),
                "exp": {"dtype": "float", "shape": list(eshape), "values": flat(e)},
                "r": flat(r), "y": flat(y), "dx": flat(db), "dparam": flat(de)}

    cases.append(pow_param_exp("Pow x**W same shape", base, (2, K)))
    cases.append(pow_param_exp("Pow x**W [K]", base, (K,)))
    cases.append(pow_param_exp("Pow x**W scalar", base, ()))
    b3 = f32(RNG.uniform(0.2, 3.0, size=(2, 3, 4)))
    b3[0, 0, :3] = f32([0.0, -1.5, 2.0])
    cases.append(pow_param_exp("Pow x[2,3,4]**W[3,1]", b3, (3, 1)))
    cases.append(pow_param_exp("Pow x[2,3,4]**W[1,4]", b3, (1, 4)))

    # a weight base raised to the input: the base's gradient sums over the
    # batch
    def pow_param_base(name, bshape, x):
        b = f32(RNG.uniform(0.2, 3.0, size=bshape))
        flatb = b.reshape(-1)
        flatb[:3] = f32([0.0, -2.0, 1.0])[: flatb.numel()]
        y, r, (db, dx) = grad_of(torch.pow, b, x)
        return {"name": name, "kind": "pow_param_base", "shape": list(x.shape), "x": flat(x),
                "base": {"shape": list(bshape), "values": flat(b)},
                "r": flat(r), "y": flat(y), "dx": flat(dx), "dparam": flat(db)}

    xe = f32(RNG.uniform(-2.0, 2.0, size=(2, K)))
    xe[0, :4] = f32([0.0, 2.0, -1.0, 3.0])
    cases.append(pow_param_base("Pow W[K]**x", (K,), xe))
    x3 = f32(RNG.uniform(-2.0, 2.0, size=(2, 3, 4)))
    cases.append(pow_param_base("Pow W[3,1]**x[2,3,4]", (3, 1), x3))
    return cases


def op_cases():
    sixth = float(np.float32(1.0 / 6.0))
    cases = [
        unary_case("Abs", "Abs", torch.abs),
        unary_case("Neg", "Neg", torch.neg),
        unary_case("Reciprocal", "Reciprocal", torch.reciprocal),
        unary_case("Sqrt", "Sqrt", torch.sqrt),
        unary_case("Exp", "Exp", torch.exp),
        unary_case("Log", "Log", torch.log),
        unary_case("Erf", "Erf", torch.erf),
        # Erf where erf(x) ~ 2x/sqrt(pi): relative accuracy near 0
        unary_case("Erf small", "Erf", torch.erf,
                   x=f32(np.concatenate([RNG.uniform(-1e-3, 1e-3, size=K), RNG.uniform(-6, 6, size=K)])).reshape(2, K)),
        unary_case("HardSwish", "HardSwish", F.hardswish),
        unary_case("HardSigmoid torch", "HardSigmoid", F.hardsigmoid, attrs={"alpha": sixth}),
        # just above -3, where alpha * x + beta would cancel to a few bits
        unary_case("HardSigmoid torch near -3", "HardSigmoid", F.hardsigmoid, attrs={"alpha": sixth},
                   x=f32(-3.0 + RNG.uniform(1e-4, 0.05, size=2 * K)).reshape(2, K)),
        unary_case("HardSwish near -3", "HardSwish", F.hardswish,
                   x=f32(-3.0 + RNG.uniform(1e-4, 0.05, size=2 * K)).reshape(2, K)),
        unary_case("HardSigmoid default", "HardSigmoid", hardsigmoid_onnx(0.2, 0.5)),
        unary_case("HardSigmoid 0.3 -0.1", "HardSigmoid", hardsigmoid_onnx(0.3, -0.1),
                   attrs={"alpha": float(np.float32(0.3)), "beta": float(np.float32(-0.1))}),
    ]
    return cases + pow_cases()


# --- the ONNX model -----------------------------------------------------------

class UnaryNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 5)
        self.p = nn.Parameter(torch.linspace(0.5, 2.5, 8))

    def forward(self, x):
        h = self.fc1(x)
        s = torch.sigmoid(h)
        a = torch.erf(h) + torch.exp(-h * h) + 0.1 * h ** 2 + F.hardswish(h) + F.hardsigmoid(h)
        b = torch.sqrt(torch.abs(h) + 1.0) + torch.log(h * h + 1.0) + torch.reciprocal(1.0 + h * h) - (-h)
        c = s ** 0.5 + s ** self.p + torch.pow(2.0, torch.tanh(h)) + 0.05 * h ** 3
        d = F.gelu(h) + F.gelu(h, approximate="tanh")
        return self.fc2(a + b + c + d)


def export_model(model, opset):
    f = io.BytesIO()
    torch.onnx.export(model, torch.zeros(2, 6), f, opset_version=opset, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    data = f.getvalue()
    m = onnx.load_from_string(data)
    onnx.checker.check_model(m)
    path = os.path.join(FIX, "unary_op%d.onnx" % opset)
    with open(path, "wb") as out:
        out.write(data)
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return os.path.basename(path), ops, [t.name for t in m.graph.initializer]


def model_fixture():
    model = UnaryNet()
    model.eval()
    x = torch.randn(4, 6) * 1.5
    xg = x.clone().requires_grad_(True)
    out = model(xg)
    r = f32(RNG.uniform(-1.0, 1.0, size=tuple(out.shape)))
    model.zero_grad()
    (out * r).sum().backward()
    grads = {name: {"shape": list(p.shape), "values": flat(p.grad)} for name, p in model.named_parameters()}
    files = {}
    for opset in (11, 14, 17):
        name, ops, inits = export_model(model, opset)
        files[str(opset)] = {"file": name, "ops": ops, "initializers": inits}
    return {"input_shape": list(x.shape), "input": flat(x), "r": flat(r), "output": flat(out),
            "input_grad": flat(xg.grad), "grads": grads, "models": files}


def main():
    os.makedirs(FIX, exist_ok=True)
    # one case a line, compact
    with open(os.path.join(FIX, "unary_ops.json"), "w") as f:
        f.write('{"generator": "tests/reference/make_unary_fixtures.py", "torch": "%s", "cases": [\n'
                % torch.__version__)
        f.write(",\n".join(json.dumps(c, separators=(",", ":"), allow_nan=False) for c in op_cases()))
        f.write("\n]}\n")
    fx = model_fixture()
    with open(os.path.join(FIX, "unary_model.json"), "w") as f:
        json.dump(dict(generator="tests/reference/make_unary_fixtures.py", torch=torch.__version__, **fx), f,
                  indent=1, allow_nan=False)
        f.write("\n")
    for k, v in fx["models"].items():
        print("opset", k, v["file"], v["ops"])


if __name__ == "__main__":
    main()
