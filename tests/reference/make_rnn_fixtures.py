#!/usr/bin/python3
"""Reference fixtures for paracorr's LSTM and GRU ops (tests/test_ops_rnn.c).

Builds small nn.LSTM / nn.GRU models (2 layers, bidirectional, batch_first
True and False), exports them with torch.onnx.export at opsets 14 and 17 and
writes, per model, the ONNX file and a JSON of what torch computes for a
fixed input: the output, the gradient of L = sum(out * Rw) with respect to
the input, and per ONNX initializer the norms and a few elements of dL/dW.

Rw[k] = cos(0.7 k) over the flattened output (float64, then float32), so the
C test makes the same weights without reading them.

The exporter reorders the gates (torch i,f,g,o -> ONNX i,o,f,c for LSTM;
r,z,n -> z,r,h for GRU) and concatenates directions and biases. Each ONNX
initializer is matched, by exact value, to the same transform of the torch
parameters, and receives the same transform of their gradients.

Two variants per cell and batch_first:
  *_h0: the initial states are learned parameters (fixed batch of 2); torch
        folds their per-layer slices into initializers, so the graph holds
        only LSTM/GRU, Transpose, Reshape, Concat, Flatten, Constant.
  *_zero: no initial state and a dynamic batch axis: torch builds the zero
        state with Shape/Gather/Unsqueeze/Concat/ConstantOfShape/Slice.
Plus lstm_bf1_h0_op14_acts.onnx, the lstm_bf1_h0_op14 model with the
default activations spelled out ("sigmoid", "Tanh", "TANH" per direction;
same JSON) and lstm_bf1_h0_op14_relu.onnx with a Relu activation (refused).

Run with Debian's Python (torch 1.13, onnx 1.12):

    /usr/bin/python3 tests/reference/make_rnn_fixtures.py
"""

import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")

T, N, I, H, LAYERS = 5, 2, 3, 4, 2
SEED = 20240611
SAMPLES = 6  # gradient elements written per initializer

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


class Net(nn.Module):
    """x is [N, T, I] whatever batch_first says: paracorr's batch axis is the
    input's first. The output is [N, C]: Y, then h_n and (LSTM) c_n, each
    brought to batch-first and flattened."""

    def __init__(self, cell, batch_first, learned_state):
        super().__init__()
        self.cell = cell
        self.batch_first = batch_first
        self.learned = learned_state
        self.rnn = getattr(nn, cell)(I, H, num_layers=LAYERS, bidirectional=True, batch_first=batch_first)
        if learned_state:
            self.h0 = nn.Parameter(torch.randn(2 * LAYERS, N, H) * 0.5)
            if cell == "LSTM":
                self.c0 = nn.Parameter(torch.randn(2 * LAYERS, N, H) * 0.5)

    def forward(self, x):
        if not self.batch_first:
            x = x.transpose(0, 1)
        if self.learned:
            state = (self.h0, self.c0) if self.cell == "LSTM" else self.h0
            y, st = self.rnn(x, state)
        else:
            y, st = self.rnn(x)
        if not self.batch_first:
            y = y.transpose(0, 1)
        parts = [y.flatten(1)]
        if self.cell == "LSTM":
            parts += [st[0].transpose(0, 1).flatten(1), st[1].transpose(0, 1).flatten(1)]
        else:
            parts.append(st.transpose(0, 1).flatten(1))
        return torch.cat(parts, 1)


def gate_order(cell, t):
    """torch's gate blocks (rows) in ONNX order."""
    k = t.shape[0] // (4 if cell == "LSTM" else 3)
    blocks = [t[i * k:(i + 1) * k] for i in range(t.shape[0] // k)]
    order = [0, 3, 1, 2] if cell == "LSTM" else [1, 0, 2]
    return torch.cat([blocks[i] for i in order], 0)


def candidates(net):
    """(value, grad) pairs of what the exporter writes as initializers."""
    out = []
    rnn = net.rnn
    for layer in range(LAYERS):
        def param(kind, suffix):
            return getattr(rnn, "%s_l%d%s" % (kind, layer, suffix))

        for what in ("W", "R", "B"):
            vals, grads = [], []
            for suffix in ("", "_reverse"):
                if what == "W":
                    p = [param("weight_ih", suffix)]
                elif what == "R":
                    p = [param("weight_hh", suffix)]
                else:
                    p = [param("bias_ih", suffix), param("bias_hh", suffix)]
                vals.append(torch.cat([gate_order(net.cell, q.detach()) for q in p], 0))
                grads.append(torch.cat([gate_order(net.cell, q.grad) for q in p], 0))
            out.append((torch.stack(vals).numpy(), torch.stack(grads).numpy()))
        if net.learned:
            states = [net.h0] + ([net.c0] if net.cell == "LSTM" else [])
            for s in states:
                out.append((s.detach()[2 * layer:2 * layer + 2].numpy(), s.grad[2 * layer:2 * layer + 2].numpy()))
    return out


def output_weights(count):
    return np.cos(0.7 * np.arange(count, dtype=np.float64)).astype(np.float32)


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def make(cell, batch_first, learned, opset):
    name = "%s_bf%d_%s_op%d" % (cell.lower(), int(batch_first), "h0" if learned else "zero", opset)
    torch.manual_seed(SEED + (cell == "GRU") * 100 + batch_first * 10 + learned)
    net = Net(cell, batch_first, learned)
    x = torch.randn(N, T, I)
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(net, (x,), path, opset_version=opset, input_names=["x"], output_names=["out"],
                      dynamic_axes=None if learned else {"x": {0: "N"}, "out": {0: "N"}})

    xg = x.clone().requires_grad_(True)
    out = net(xg)
    rw = torch.from_numpy(output_weights(out.numel())).reshape(out.shape)
    (out * rw).sum().backward()

    model = onnx.load(path)
    cands = candidates(net)
    used = set()
    params = {}
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        v = numpy_helper.to_array(init)
        hits = [i for i, (cv, _) in enumerate(cands) if cv.shape == v.shape and np.array_equal(cv, v)]
        if len(hits) != 1 or hits[0] in used:
            raise SystemExit("%s: initializer %s %s matches %d torch tensors" % (name, init.name, v.shape, len(hits)))
        used.add(hits[0])
        g = cands[hits[0]][1].astype(np.float64).reshape(-1)
        idx = np.linspace(0, g.size - 1, SAMPLES).round().astype(int)
        params[init.name] = {
            "shape": list(v.shape),
            "l1": float(np.abs(g).sum()),
            "l2": float(np.sqrt((g * g).sum())),
            "linf": float(np.abs(g).max()),
            "index": [int(i) for i in idx],
            "values": [float(g[i]) for i in idx],
        }
    if len(used) != len(cands):
        raise SystemExit("%s: %d of %d torch tensors are not initializers" % (name, len(cands) - len(used), len(cands)))
    ops = sorted({n.op_type for n in model.graph.node})
    ref = {
        "model": name + ".onnx",
        "cell": cell,
        "batch_first": batch_first,
        "opset": opset,
        "ops": ops,
        "input_shape": [N, T, I],
        "x": floats(x),
        "classes": int(out.shape[1]),
        "output": floats(out.detach()),
        "input_grad": floats(xg.grad),
        "params": params,
    }
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    print(name, "ops:", " ".join(ops), "initializers:", len(params))
    return model, name


def with_activations(model, name, acts, suffix):
    """The same model with an explicit activations attribute on every LSTM."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for n in m.graph.node:
        if n.op_type == "LSTM":
            n.attribute.append(helper.make_attribute("activations", acts))
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + suffix + ".onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    for cell in ("LSTM", "GRU"):
        for batch_first in (False, True):
            for learned in (True, False):
                for opset in (14, 17):
                    model, name = make(cell, batch_first, learned, opset)
                    if (cell, batch_first, learned, opset) == ("LSTM", True, True, 14):
                        with_activations(model, name, ["sigmoid", "Tanh", "TANH"] * 2, "_acts")
                        with_activations(model, name, ["Sigmoid", "Tanh", "Relu"] * 2, "_relu")


if __name__ == "__main__":
    main()
