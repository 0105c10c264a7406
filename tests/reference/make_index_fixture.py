#!/usr/bin/python3
"""Exported token models for tests/test_ops_index.c.

fixtures/index_tokens_op13.onnx:
torch.onnx.export (torch 1.13, opset 13, dynamic batch) of an Embedding
followed by flips, slices, a split, a permute and concatenations, so that the
file holds what the exporter really writes for them: Gather on int64 token
ids, Slice with negative steps and INT64_MAX/INT64_MIN ends, Split with a
sizes input, Transpose and Concat, and the Shape -> Gather -> Unsqueeze ->
Concat -> Reshape of x.view(x.size(0), ...).

fixtures/index_scatter_op13.onnx: repeat (Tile), expand(-1, ...) (Expand
behind ConstantOfShape/Equal/Where) and two index_put assignments
(ScatterND with indices built by Range, Expand and Concat at load).

For each, the script prints as C initialisers pasted into the test: the
token ids, torch's output for them, and torch's gradient of sum(y * R) with
respect to the embedding table for R = (k % 7) - 3, k the flat output index.
    /usr/bin/python3 tests/reference/make_index_fixture.py
"""
import io
import os

import numpy as np
import onnx
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")


class Tokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 4)

    def forward(self, ids):                   # ids [N, 6]
        e = self.emb(ids)                     # [N, 6, 4]
        r = torch.flip(e, [1, 2])             # Slice, steps -1
        a, b = torch.split(e, [2, 4], dim=1)  # Split
        s = e[:, 1:5, 1:]                     # Slice [N, 4, 3]
        p = s.permute(0, 2, 1)                # Transpose [N, 3, 4]
        c = torch.cat([b, p], dim=1)          # [N, 7, 4]
        out = torch.cat([r * a[:, :1, :], c], dim=1)  # [N, 13, 4]
        return out.view(out.size(0), 13, 4)


class Scatter(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 4)

    def forward(self, ids):                      # ids [N, 6]
        e = self.emb(ids)                        # [N, 6, 4]
        t = e[:, :3].repeat(1, 2, 1)             # Tile [N, 6, 4]
        x = e[:, 5:6, :].expand(-1, 6, -1)       # Expand [N, 6, 4]
        out = e + t * x
        out[:, 0] = e[:, 1, :] * 2               # ScatterND over (n, 0)
        out[:, :, 3] = out[:, :, 0]              # ScatterND over (n, t, 3)
        return out


def lit(name, a, ctype):
    a = np.asarray(a)
    body = ", ".join(("%.9g" % v) if ctype == "float" else str(int(v)) for v in a.ravel())
    print("/* %s: shape %s */" % (name, list(a.shape)))
    print("static const %s %s[%d] = {%s};" % (ctype, name, a.size, body))


def export(model, ids, name, prefix):
    f = io.BytesIO()
    torch.onnx.export(model, (ids,), f, opset_version=13, input_names=["ids"], output_names=["y"],
                      dynamic_axes={"ids": {0: "N"}, "y": {0: "N"}})
    proto = onnx.load_from_string(f.getvalue())
    onnx.checker.check_model(proto)
    with open(os.path.join(FIX, name), "wb") as fh:
        fh.write(f.getvalue())
    y = model(ids)
    r = torch.tensor([(k % 7) - 3 for k in range(y.numel())], dtype=torch.float32).reshape(y.shape)
    (y * r).sum().backward()
    print("/* %s ops: %s */" % (name, ", ".join(sorted({n.op_type for n in proto.graph.node}))))
    lit(prefix + "_ids", ids.numpy(), "int64_t")
    lit(prefix + "_y", y.detach().numpy(), "float")
    lit(prefix + "_dw", model.emb.weight.grad.numpy(), "float")


def main():
    ids = torch.tensor([[1, 2, 3, 4, 5, 10], [0, 0, 7, 7, 9, 1], [10, 9, 8, 3, 3, 3]], dtype=torch.int64)
    torch.manual_seed(3)
    export(Tokens().eval(), ids, "index_tokens_op13.onnx", "tok")
    torch.manual_seed(4)
    export(Scatter().eval(), ids, "index_scatter_op13.onnx", "sct")


if __name__ == "__main__":
    main()
