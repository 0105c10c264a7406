#!/usr/bin/python3
"""Reference curvature numbers for paracorr, computed with PyTorch in float64.

For a committed fixture (mlp_op13.onnx, cnn_op17.onnx) on the first SAMPLES
Fashion-MNIST test images (x / 255, as every reference here), with the
model's float32 weights widened to float64 and evaluated by the interpreter
of make_fixtures.py:

  - exact Hessian-vector products of the mean loss by double backward
    (torch.autograd.grad with create_graph=True), for seeded vectors v of
    the whole model (v.Hv and ||Hv||) and of one layer (Hv itself, rounded
    to 9 significant digits, so a test can take the relative error of the
    whole vector);
  - the top eigenvalues of the model's Hessian by Lanczos with full
    reorthogonalisation in float64, run until the residual of each Ritz
    pair is below 1e-7 of its value;
  - the trace by Hutchinson's estimator with TRACE_SAMPLES Rademacher
    vectors, with its standard error and 95% interval.

The vectors are reproducible in C: element i of vector (seed) is
mix64(seed + (i + 1) * golden) of splitmix64 (include/paracorr/rng.h), its
top 53 bits read as u in [0, 1), v_i = 2u - 1.

It also checks the double-backward HVP itself against a central difference
of float64 gradients on a tiny model (4 -> 5 -> 3, tanh), which must agree
to 1e-7 relative, and records that agreement.

And, for cnn_op17.onnx, the second-order estimate of the study's gradient
corruption (SECOND_ORDER): per group (the model, one tensor) and norm (L2,
Linf), the direction u of paracorr's one-step corruption (g / ||g||_2 for
L2, sign(g) for Linf, g the float64 gradient of the group), the dual norm
||g||_q and u.Hu, from which second_order(eps) = eps ||g||_q + eps^2 u.Hu / 2.

Run with Debian's Python (model names as arguments recompute only those;
--second-order recomputes only that section):

    /usr/bin/python3 tests/reference/make_curvature_refs.py [mlp_tanh_op13.onnx ...] [--second-order]

It also writes mlp_tanh_op13.onnx: mlp_op13.onnx with Tanh for ReLU, a
model whose loss is smooth in its weights.

Writes tests/reference/fixtures/curvature_refs.json.
"""

import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402

SAMPLES = 500
VECTOR_SEEDS = [11, 12, 13]
EIGENVALUES = 3
LANCZOS_MAX = 120
TRACE_SAMPLES = {"mlp_op13.onnx": 3000, "cnn_op17.onnx": 200, "mlp_tanh_op13.onnx": 3000}  # a CNN HVP is ~2 s
TRACE_SEED = 5
FIXTURES = [("mlp_op13.onnx", "fc2.weight"), ("cnn_op17.onnx", "conv2.weight"), ("mlp_tanh_op13.onnx", "fc2.weight")]
GOLDEN = np.uint64(0x9e3779b97f4a7c15)


def mix64(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xbf58476d1ce4e5b9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94d049bb133111eb)
    return z ^ (z >> np.uint64(31))


def seeded_vector(seed, n):
    """paracorr's pc_curv_seeded_vector: uniform in [-1, 1)."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = mix64(np.uint64(seed) + i * GOLDEN)
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    return torch.from_numpy(2.0 * u - 1.0)


class Model:
    def __init__(self, path, x, y):
        self.it = mf.Interpreter(path)
        # make_fixtures' interpreter has no Tanh (mlp_tanh_op13.onnx needs it)
        self.it.op_Tanh = lambda node, ins, a: torch.tanh(ins[0])
        for name, t in list(self.it.init.items()):
            if t.is_floating_point():
                d = t.detach().double()
                if name in self.it.params:
                    d.requires_grad_(True)
                    self.it.params[name] = d
                self.it.init[name] = d
        self.names = list(self.it.params)   # initializer order = paracorr's parameter order
        self.kind = self.it.output_kind()
        self.x, self.y = x.double(), y

    def loss(self):
        return mf.loss_of(self.it.run(self.x), self.y, self.kind)

    def hvp(self, names, v):
        """H v for the block of `names` (v flat, in their order)."""
        ps = [self.it.params[n] for n in names]
        g = torch.autograd.grad(self.loss(), ps, create_graph=True)
        gf = torch.cat([t.reshape(-1) for t in g])
        hv = torch.autograd.grad(gf @ v, ps)
        return torch.cat([t.reshape(-1) for t in hv]).detach()

    def size(self, names):
        return sum(self.it.params[n].numel() for n in names)


def lanczos_top(op, n, k, gen):
    q = torch.randn(n, dtype=torch.float64, generator=gen)
    q /= q.norm()
    Q, alpha, beta = [q], [], []
    for m in range(LANCZOS_MAX):
        w = op(Q[-1])
        a = float(w @ Q[-1])
        alpha.append(a)
        # full reorthogonalisation, twice
        for _ in range(2):
            for qq in Q:
                w -= (w @ qq) * qq
        b = float(w.norm())
        T = torch.diag(torch.tensor(alpha, dtype=torch.float64))
        for i in range(len(beta)):
            T[i, i + 1] = T[i + 1, i] = beta[i]
        ev, S = torch.linalg.eigh(T)
        top = ev.flip(0)[:k]
        res = (b * S[-1, :].flip(0)[:k]).abs()
        if m + 1 >= k and bool((res <= 1e-7 * top.abs()).all()):
            return [float(t) for t in top], m + 1, [float(r) for r in res]
        beta.append(b)
        Q.append(w / b)
    raise RuntimeError("Lanczos did not converge in %d steps" % LANCZOS_MAX)


def tiny_check():
    """Double-backward HVP against a float64 central difference of the gradient."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, dtype=torch.float64, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    w = torch.randn(4 * 5 + 5 + 5 * 3 + 3, dtype=torch.float64, generator=g) * 0.7

    def loss(w):
        W1, b1 = w[:20].reshape(5, 4), w[20:25]
        W2, b2 = w[25:40].reshape(3, 5), w[40:43]
        return torch.nn.functional.cross_entropy(torch.tanh(x @ W1.T + b1) @ W2.T + b2, y)

    def grad(w):
        w = w.detach().requires_grad_(True)
        return torch.autograd.grad(loss(w), w)[0]

    worst = 0.0
    for s in range(3):
        v = torch.randn(w.numel(), dtype=torch.float64, generator=g)
        wr = w.detach().requires_grad_(True)
        gw = torch.autograd.grad(loss(wr), wr, create_graph=True)[0]
        hv = torch.autograd.grad(gw @ v, wr)[0]
        h = 1e-5
        fd = (grad(w + h * v) - grad(w - h * v)) / (2 * h)
        worst = max(worst, float((hv - fd).norm() / hv.norm()))
    if worst > 1e-7:
        raise RuntimeError("double-backward HVP disagrees with float64 differences: %g" % worst)
    return {"model": "4-5-3 tanh MLP, 16 random samples", "step": 1e-5, "vectors": 3,
            "max_relative_error": worst}


def fixture(model, layer, x, y):
    m = Model(os.path.join(mf.OUT, model), x, y)
    out = {"model": model, "samples": SAMPLES, "loss": float(m.loss()),
           "parameters": m.size(m.names), "hvp": [], "layer": {"tensor": layer, "hvp": []}}
    n = m.size(m.names)
    for seed in VECTOR_SEEDS:
        v = seeded_vector(seed, n)
        hv = m.hvp(m.names, v)
        out["hvp"].append({"seed": seed, "vHv": float(v @ hv), "hv_norm": float(hv.norm())})
    nl = m.size([layer])
    v = seeded_vector(VECTOR_SEEDS[0], nl)
    hv = m.hvp([layer], v)
    out["layer"]["hvp"].append({"seed": VECTOR_SEEDS[0], "vHv": float(v @ hv), "hv_norm": float(hv.norm()),
                                "hv": [float("%.9g" % t) for t in hv.tolist()]})
    gen = torch.Generator().manual_seed(3)
    eig, steps, res = lanczos_top(lambda q: m.hvp(m.names, q), n, EIGENVALUES, gen)
    out["eigenvalues"] = eig
    out["lanczos"] = {"steps": steps, "residuals": res}
    gen = torch.Generator().manual_seed(TRACE_SEED)
    vals = []
    for _ in range(TRACE_SAMPLES[model]):
        z = torch.randint(0, 2, (n,), generator=gen).double() * 2 - 1
        vals.append(float(z @ m.hvp(m.names, z)))
    vals = np.array(vals)
    se = float(vals.std(ddof=1) / math.sqrt(len(vals)))
    out["trace"] = {"mean": float(vals.mean()), "std_error": se, "samples": TRACE_SAMPLES[model],
                    "ci95": [float(vals.mean() - 1.96 * se), float(vals.mean() + 1.96 * se)]}
    print(model, "eig", eig, "steps", steps, "trace", out["trace"]["mean"], "+-", 1.96 * se, flush=True)
    return out


SECOND_ORDER = {"model": "cnn_op17.onnx", "groups": {"model": None, "tensor:conv2.weight": ["conv2.weight"]}}


def second_order(x, y):
    m = Model(os.path.join(mf.OUT, SECOND_ORDER["model"]), x, y)
    out = {"model": SECOND_ORDER["model"], "samples": SAMPLES, "rows": []}
    for group, names in SECOND_ORDER["groups"].items():
        names = names or m.names
        ps = [m.it.params[n] for n in names]
        g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(m.loss(), ps)]).detach()
        for norm, u, dual in (("l2", g / g.norm(), float(g.norm())), ("linf", torch.sign(g), float(g.abs().sum()))):
            uhu = float(u @ m.hvp(names, u))
            out["rows"].append({"group": group, "norm": norm, "dual": dual, "uHu": uhu})
            print("second order", group, norm, "dual", dual, "uHu", uhu, flush=True)
    return out


def make_tanh_fixture():
    """mlp_op13.onnx with its ReLUs made Tanh: a loss smooth in the weights,
    where a difference of gradients has no activation kink to cross."""
    import onnx
    m = onnx.load(os.path.join(mf.OUT, "mlp_op13.onnx"))
    for n in m.graph.node:
        if n.op_type == "Relu":
            n.op_type = "Tanh"
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(mf.OUT, "mlp_tanh_op13.onnx"))


def main():
    torch.set_num_threads(1)
    make_tanh_fixture()
    # with model names as arguments, recompute only those and keep the rest
    only = [a for a in sys.argv[1:] if a != "--second-order"]
    so_only = "--second-order" in sys.argv[1:]
    x_all = torch.from_numpy(mf.to_float(mf.read_idx(mf.TEST_IMAGES)))
    y_all = torch.from_numpy(mf.read_idx(mf.TEST_LABELS).astype(np.int64))
    x, y = x_all[:SAMPLES], y_all[:SAMPLES]
    ref = {"samples": SAMPLES, "vector": "v_i = 2 * (mix64(seed + (i + 1) * golden) >> 11) / 2^53 - 1",
           "tiny_fd_check": tiny_check(), "fixtures": {}}
    print("tiny check", ref["tiny_fd_check"], flush=True)
    out_path = os.path.join(mf.OUT, "curvature_refs.json")
    if (only or so_only) and os.path.exists(out_path):
        with open(out_path) as f:
            old = json.load(f)
            ref["fixtures"] = old["fixtures"]
            if "second_order" in old:
                ref["second_order"] = old["second_order"]
    for model, layer in FIXTURES:
        if not so_only and (not only or model in only):
            ref["fixtures"][model] = fixture(model, layer, x, y)
    if so_only or not only:
        ref["second_order"] = second_order(x, y)
    with open(out_path, "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
