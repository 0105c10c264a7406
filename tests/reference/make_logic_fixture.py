#!/usr/bin/python3
"""A torch-exported model that exercises the logic ops, and its outputs.

Writes fixtures/logic_op14.onnx and fixtures/logic_op14.json, which
tests/test_ops_logic.c (ops_logic_torch_export) compares paracorr against.
The module computes, from x [N, 6]:

    n = x.shape[1]; idx = arange(n)              Shape, Gather, Cast, Range
    even = idx % 2 == 0                          Mod (fmod=0), Equal
    h = lin(x); h = where(even, h, -2 h)         Gemm, Mul, Where
    m = ones(n, n).triu(1)                       ConstantOfShape, Trilu
    z = (h @ m).masked_fill(~(h > 0), -1)        MatMul, Greater, Not, Cast(bool), Where
    out = z + float(float(idx) < 3) + fmod(h, 0.3)   Cast, Less, Mod (fmod=1)

exported at opset 14 without constant folding, so every op stays in the file
(the shape part is folded by paracorr at load instead). The JSON holds an
input batch, the output torch computes for it, and the gradients of
L = sum(out * r) for a fixed r with respect to the input and to lin.weight
and lin.bias (torch autograd; fmod's derivative is 1 for its dividend, and
the masks pass nothing where they hold the constant).

The input is redrawn until every h is at least 1e-3 from 0 and every
h / 0.3 at least 1e-3 from an integer, so that float rounding differences
between implementations cannot flip a mask or a remainder.

Run with Debian's python3-torch, python3-onnx:
    /usr/bin/python3 tests/reference/make_logic_fixture.py
"""
import json
import os

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")


class Logic(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        n = x.shape[1]
        idx = torch.arange(n)
        even = (idx % 2) == 0
        h = self.lin(x)
        h = torch.where(even, h, h * -2.0)
        m = torch.ones(n, n).triu(1)
        z = (h @ m).masked_fill(~(h > 0), -1.0)
        return z + (idx.float() < 3).float() + torch.fmod(h, 0.3)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = Logic().eval()
    path = os.path.join(FIX, "logic_op14.onnx")
    torch.onnx.export(model, torch.zeros(2, 6), path, opset_version=14, input_names=["input"],
                      output_names=["out"], dynamic_axes={"input": {0: "N"}, "out": {0: "N"}},
                      do_constant_folding=False)
    gen = torch.Generator().manual_seed(1)
    while True:
        x = torch.randn(4, 6, generator=gen)
        with torch.no_grad():
            h = model.lin(x)
            h = torch.where((torch.arange(6) % 2) == 0, h, h * -2.0)
        q = h / 0.3
        if h.abs().min() > 1e-3 and (q - q.round()).abs().min() > 1e-3:
            break
    r = torch.randn(4, 6, generator=gen)
    x.requires_grad_(True)
    out = model(x)
    (out * r).sum().backward()
    ref = {
        "model": "logic_op14.onnx",
        "input_shape": list(x.shape),
        "input": x.detach().flatten().tolist(),
        "output": out.detach().flatten().tolist(),
        "r": r.flatten().tolist(),
        "grad_input": x.grad.flatten().tolist(),
        "grad_lin.weight": model.lin.weight.grad.flatten().tolist(),
        "grad_lin.bias": model.lin.bias.grad.flatten().tolist(),
    }
    with open(os.path.join(FIX, "logic_op14.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
