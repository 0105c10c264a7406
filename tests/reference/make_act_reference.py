#!/usr/bin/python3
"""Reference numbers for adversarial corruption-resistant training (ACT).

Runs ACT steps (method.md) with PyTorch on the committed MLP fixture and the
64-sample fixture data, and writes fixtures/act_mlp_op13.json, which
tests/test_train.c compares paracorr's steps against:

  1. forward and backward on the batch at w: g
  2. a = gradient-based corruption of g (l2: eps g/||g||_2; linf: eps sign g),
     over all parameters, held constant
  3. forward and backward at w + a: g'
  4. restore w, optimiser step with (1 - lambda) g + lambda g'

The MLP is evaluated straight from the ONNX file (Flatten, Gemm, Relu), so
the reference does not depend on how the fixture was trained.

Run with Debian's python3-torch, python3-onnx, python3-numpy:
    /usr/bin/python3 tests/reference/make_act_reference.py
"""
import json
import os

import numpy as np
import onnx
import onnx.numpy_helper
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")

# The mini-batches (sample indices into sample64): the C test uses the same.
BATCHES = [[5, 17, 2, 40, 33, 8, 61, 0, 12, 27, 50, 44, 19, 3, 58, 36],
           [9, 1, 63, 22, 30, 47, 14, 55, 6, 38, 11, 25]]

CASES = [
    {"name": "sgd_l2", "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
     "norm": "l2", "epsilon": 0.5, "lambda": 1.0},
    {"name": "adam_linf_mix", "optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "weight_decay": 1e-4,
     "norm": "linf", "epsilon": 0.002, "lambda": 0.5},
    {"name": "sgd_plain", "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0,
     "norm": "l2", "epsilon": 0.0, "lambda": 1.0},
]


def load_mlp(path):
    m = onnx.load(path)
    params = {}
    for t in m.graph.initializer:
        params[t.name] = torch.tensor(onnx.numpy_helper.to_array(t).astype(np.float64))
    nodes = [(n.op_type, list(n.input), list(n.output),
              {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}) for n in m.graph.node]
    order = [t.name for t in m.graph.initializer]
    return nodes, params, order, m.graph.input[0].name, m.graph.output[0].name


def forward(nodes, params, x, inp, out):
    v = {inp: x}
    for op, ins, outs, attrs in nodes:
        a = [v[i] if i in v else params[i] for i in ins]
        if op == "Flatten":
            r = a[0].reshape(a[0].shape[0], -1)
        elif op == "Gemm":
            w = a[1].t() if attrs.get("transB", 0) else a[1]
            r = attrs.get("alpha", 1.0) * (a[0] @ w) + attrs.get("beta", 1.0) * a[2]
        elif op == "Relu":
            r = torch.relu(a[0])
        else:
            raise SystemExit("unsupported op " + op)
        v[outs[0]] = r
    return v[out]


def grad_at(nodes, params, order, x, y, inp, out):
    ps = {k: p.clone().requires_grad_(True) for k, p in params.items()}
    logits = forward(nodes, ps, x, inp, out)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    acc = (logits.argmax(1) == y).double().mean().item()
    return loss.item(), acc, {k: ps[k].grad.detach().clone() for k in order}


def main():
    nodes, params0, order, inp, out = load_mlp(os.path.join(FIX, "mlp_op13.onnx"))
    x_all = torch.tensor(np.load(os.path.join(FIX, "sample64_u8.npy")).astype(np.float64) / 255.0)
    x_all = x_all.reshape(x_all.shape[0], 1, 28, 28)
    y_all = torch.tensor(np.load(os.path.join(FIX, "labels64_i64.npy")).astype(np.int64))
    result = {"model": "mlp_op13.onnx", "data": "sample64_u8.npy / 255, labels64_i64.npy",
              "batches": BATCHES, "cases": []}
    for case in CASES:
        params = {k: v.clone() for k, v in params0.items()}
        buf = {k: torch.zeros_like(v) for k, v in params.items()}
        vv = {k: torch.zeros_like(v) for k, v in params.items()}
        steps = []
        for t, idx in enumerate(BATCHES, start=1):
            x, y = x_all[idx], y_all[idx]
            loss, acc, g = grad_at(nodes, params, order, x, y, inp, out)
            step = {"loss": loss, "accuracy": acc}
            d = g
            if case["epsilon"] > 0:
                flat = torch.cat([g[k].reshape(-1) for k in order])
                if case["norm"] == "l2":
                    a = {k: case["epsilon"] * g[k] / flat.norm() for k in order}
                else:
                    a = {k: case["epsilon"] * torch.sign(g[k]) for k in order}
                wa = {k: params[k] + a[k].to(params[k].dtype) for k in order}
                loss_c, acc_c, g2 = grad_at(nodes, wa, order, x, y, inp, out)
                step["loss_corrupted"] = loss_c
                step["accuracy_corrupted"] = acc_c
                lam = case["lambda"]
                d = {k: (1 - lam) * g[k] + lam * g2[k] for k in order}
            # the optimiser, as torch.optim defines it (float64 here)
            for k in order:
                dk = d[k] + case["weight_decay"] * params[k]
                if case["optimizer"] == "sgd":
                    if case["momentum"] > 0:
                        buf[k] = dk.clone() if t == 1 else case["momentum"] * buf[k] + dk
                        dk = buf[k]
                    params[k] = params[k] - case["lr"] * dk
                else:
                    b1, b2, eps = 0.9, 0.999, 1e-8
                    buf[k] = b1 * buf[k] + (1 - b1) * dk
                    vv[k] = b2 * vv[k] + (1 - b2) * dk * dk
                    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
                    params[k] = params[k] - case["lr"] / bc1 * buf[k] / (vv[k].sqrt() / bc2 ** 0.5 + eps)
            steps.append(step)
        tensors = {}
        for k in order:
            v = params[k].reshape(-1)
            delta = v - params0[k].reshape(-1)
            picks = sorted(set([0, 1, 2, v.numel() // 3, v.numel() // 2, v.numel() - 1]))
            tensors[k] = {"l2": v.norm().item(), "delta_l2": delta.norm().item(),
                          "indices": picks, "values": [v[i].item() for i in picks],
                          "deltas": [delta[i].item() for i in picks]}
        result["cases"].append(dict(case, steps=steps, tensors=tensors))
    path = os.path.join(FIX, "act_mlp_op13.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", path)
    bn_reference(x_all, y_all)


def bn_reference(x_all, y_all):
    """Training-mode BatchNormalization: a tiny Conv-BN-ReLU-Linear network,
    exported with BatchNorm unfolded, then two SGD steps in train mode (batch
    statistics, running statistics moved by momentum 0.1, i.e. ONNX's 0.9),
    without corruption and with ACT; only the pass at w moves the running
    statistics (they are put back after the pass at w + a)."""
    torch.manual_seed(7)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10)).double()
    net.train()
    with torch.no_grad():  # running statistics away from their initial 0 and 1
        for i in range(3):
            net(x_all[16 * i:16 * i + 16])
    net.eval()
    path = os.path.join(FIX, "cnn_bn_tiny_op17.onnx")
    torch.onnx.export(net.float(), torch.zeros(1, 1, 28, 28), path, opset_version=17, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    net = net.double()
    state0 = {k: v.clone() for k, v in net.state_dict().items()}
    out = {"model": "cnn_bn_tiny_op17.onnx", "batches": BATCHES, "cases": []}
    for case in [{"name": "bn_sgd_plain", "epsilon": 0.0}, {"name": "bn_sgd_act_l2", "epsilon": 0.5}]:
        net.load_state_dict(state0)
        net.train()
        params = dict(net.named_parameters())
        bufs = {k: torch.zeros_like(v) for k, v in params.items()}
        steps = []
        for t, idx in enumerate(BATCHES, start=1):
            x, y = x_all[idx], y_all[idx]
            net.zero_grad()
            logits = net(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            loss.backward()
            g = {k: p.grad.detach().clone() for k, p in params.items()}
            step = {"loss": loss.item()}
            if case["epsilon"] > 0:
                flat = torch.cat([v.reshape(-1) for v in g.values()])
                running = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
                with torch.no_grad():
                    for k, p in params.items():
                        p += case["epsilon"] * g[k] / flat.norm()
                net.zero_grad()
                loss_c = torch.nn.functional.cross_entropy(net(x), y)
                loss_c.backward()
                step["loss_corrupted"] = loss_c.item()
                with torch.no_grad():
                    for k, p in params.items():
                        p -= case["epsilon"] * g[k] / flat.norm()
                    for k, v in running.items():
                        net.state_dict()[k].copy_(v)
                g = {k: p.grad.detach().clone() for k, p in params.items()}
            with torch.no_grad():
                for k, p in params.items():
                    bufs[k] = g[k].clone() if t == 1 else 0.9 * bufs[k] + g[k]
                    p -= 0.05 * bufs[k]
            steps.append(step)
        sd = net.state_dict()
        tensors = {}
        for k, v in sd.items():
            if "num_batches" in k:
                continue
            v = v.reshape(-1)
            d = v - state0[k].reshape(-1)
            picks = sorted(set([0, 1, v.numel() // 2, v.numel() - 1]))
            tensors[k] = {"l2": v.norm().item(), "delta_l2": d.norm().item(), "indices": picks,
                          "values": [v[i].item() for i in picks], "deltas": [d[i].item() for i in picks]}
        out["cases"].append(dict(case, lr=0.05, momentum=0.9, steps=steps, tensors=tensors))
    with open(os.path.join(FIX, "act_bn_op17.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", os.path.join(FIX, "act_bn_op17.json"), "and", path)


if __name__ == "__main__":
    main()
