#!/usr/bin/python3
"""Reference numbers for models quantized in ONNX QDQ form (core/ops/quant.c).

Writes, under tests/reference/fixtures/:

  qdq_float_op13.onnx  a small CNN in float: Conv(1->4, 3x3, pad 1) -> Relu ->
                       MaxPool 2 -> Flatten -> Gemm(64->5, transB=1);
  qdq_cnn_op13.onnx    the same CNN in QDQ form, as ONNX Runtime's quantizer
                       writes it: the input and the Relu output pass through
                       uint8 QuantizeLinear -> DequantizeLinear pairs (with
                       non-zero zero points), the Conv weight is int8 per
                       output channel (axis 0), the Gemm weight int8 per
                       tensor (zero point 1, to exercise it), the biases float;
  qdq_inputs_f32.npy, qdq_labels_i64.npy   those 4 inputs and labels as a
                       dataset;
  qdq_cnn.json         on 4 fixed inputs and labels: the QDQ model's outputs,
                       mean cross-entropy loss and its gradient with respect
                       to the stored integers of both weights (through
                       DequantizeLinear; QuantizeLinear's gradient is the
                       straight-through estimator, dy / scale inside the
                       range, 0 where it saturated); the float model's outputs;
                       and the outputs and loss with bit 7 of the Gemm
                       weight's code 0 flipped (the int8 integer q becomes
                       q ^ 0x80 as a two's-complement byte).

  qdq_torch_op13.onnx, qdq_torch.json   a fake-quantized Linear exported by
                       torch.onnx.export (zero points as Constant nodes), with
                       its outputs and gradients from the module itself.

Everything is computed here with numpy and torch in float32, from the
arrays the models are written from, independently of paracorr. The models
are written with onnx.helper. Deterministic (fixed numpy seed).

Run with Debian's python3-torch, python3-onnx, python3-numpy:
    /usr/bin/python3 tests/reference/make_qdq_fixtures.py
"""
import json
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
OPSET = 13


def f32(x):
    return np.asarray(x, dtype=np.float32)


def quantize(x, scale, zp, lo, hi, axis=None):
    """ONNX QuantizeLinear in float32: saturate(rint(x / scale) + zp)."""
    s, z = f32(scale), f32(zp)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return np.clip(np.rint(f32(x) / s) + z, lo, hi).astype(np.float32)


def main():
    rng = np.random.default_rng(20261203)
    torch.set_num_threads(1)
    n = 4
    x = f32(rng.uniform(-1.0, 1.0, size=(n, 1, 8, 8)))
    labels = [0, 3, 1, 4]
    w1 = f32(rng.normal(0.0, 0.5, size=(4, 1, 3, 3)))
    b1 = f32(rng.normal(0.0, 0.1, size=(4,)))
    w2 = f32(rng.normal(0.0, 0.3, size=(5, 64)))
    b2 = f32(rng.normal(0.0, 0.1, size=(5,)))

    # quantization parameters as a calibrating quantizer would choose them
    s_in, zp_in = np.float32(2.0 / 255.0), 128
    s1 = f32(np.abs(w1).reshape(4, -1).max(axis=1) / 127.0)
    q1 = quantize(w1, s1, np.zeros(4), -128, 127, axis=0)
    s2, zp2 = np.float32(np.abs(w2).max() / 126.0), 1
    q2 = quantize(w2, s2, zp2, -128, 127)
    s_act, zp_act = np.float32(0.02), 3

    # --- the float model ---------------------------------------------------
    def float_graph():
        nodes = [
            helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
            helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Flatten", ["p1"], ["f1"], name="flatten"),
            helper.make_node("Gemm", ["f1", "w2", "b2"], ["y"], name="fc", transB=1),
        ]
        inits = [numpy_helper.from_array(a, name) for a, name in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
        return nodes, inits

    def model(nodes, inits, name):
        g = helper.make_graph(
            nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="paracorr-qdq")
        onnx.checker.check_model(m)
        return m

    nodes, inits = float_graph()
    onnx.save(model(nodes, inits, "cnn_float"), os.path.join(OUT, "qdq_float_op13.onnx"))

    # --- the QDQ model -------------------------------------------------------
    def t_int8(a, name):
        return helper.make_tensor(name, TensorProto.INT8, a.shape, a.astype(np.int8).tobytes(), raw=True)

    def t_uint8_scalar(v, name):
        return helper.make_tensor(name, TensorProto.UINT8, [], [v])

    qnodes = [
        helper.make_node("QuantizeLinear", ["x", "s_in", "zp_in"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s_in", "zp_in"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w1_q", "w1_s", "w1_zp"], ["w1_d"], name="dq_w1", axis=0),
        helper.make_node("Conv", ["xd", "w1_d", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
        helper.make_node("QuantizeLinear", ["r1", "s_act", "zp_act"], ["r1q"], name="q_act"),
        helper.make_node("DequantizeLinear", ["r1q", "s_act", "zp_act"], ["r1d"], name="dq_act"),
        helper.make_node("MaxPool", ["r1d"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p1"], ["f1"], name="flatten"),
        helper.make_node("DequantizeLinear", ["w2_q", "w2_s", "w2_zp"], ["w2_d"], name="dq_w2"),
        helper.make_node("Gemm", ["f1", "w2_d", "b2"], ["y"], name="fc", transB=1),
    ]
    qinits = [
        numpy_helper.from_array(np.array(s_in, dtype=np.float32), "s_in"),
        t_uint8_scalar(zp_in, "zp_in"),
        t_int8(q1, "w1_q"),
        numpy_helper.from_array(s1, "w1_s"),
        # the per-channel zero point in int32_data, the other form the loader reads
        helper.make_tensor("w1_zp", TensorProto.INT8, [4], [0, 0, 0, 0]),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(np.array(s_act, dtype=np.float32), "s_act"),
        t_uint8_scalar(zp_act, "zp_act"),
        t_int8(q2, "w2_q"),
        numpy_helper.from_array(np.array(s2, dtype=np.float32), "w2_s"),
        helper.make_tensor("w2_zp", TensorProto.INT8, [], [zp2]),
        numpy_helper.from_array(b2, "b2"),
    ]
    onnx.save(model(qnodes, qinits, "cnn_qdq"), os.path.join(OUT, "qdq_cnn_op13.onnx"))

    # --- reference numbers, torch in float32 ---------------------------------
    def ste_quant(t, scale, zp, lo, hi):
        """QuantizeLinear forward, straight-through estimator backward."""
        v = torch.round(t / scale) + zp  # round half to even, as rint
        mask = ((v >= lo) & (v <= hi)).to(t.dtype)
        return torch.clamp(v, lo, hi).detach() + mask * (t / scale - (t / scale).detach())

    def qdq_forward(q1v, q2v, want_grad):
        tq1 = torch.tensor(q1v, requires_grad=want_grad)
        tq2 = torch.tensor(q2v, requires_grad=want_grad)
        xt = torch.tensor(x)
        sin = torch.tensor(s_in)
        xd = (ste_quant(xt, sin, float(zp_in), 0.0, 255.0) - float(zp_in)) * sin
        wd1 = (tq1 - 0.0) * torch.tensor(s1).reshape(4, 1, 1, 1)
        c1 = F.conv2d(xd, wd1, torch.tensor(b1), padding=1)
        r1 = F.relu(c1)
        sa = torch.tensor(s_act)
        r1d = (ste_quant(r1, sa, float(zp_act), 0.0, 255.0) - float(zp_act)) * sa
        f1 = F.max_pool2d(r1d, 2).reshape(n, -1)
        wd2 = (tq2 - float(zp2)) * torch.tensor(s2)
        y = f1 @ wd2.t() + torch.tensor(b2)
        return y, tq1, tq2

    y, tq1, tq2 = qdq_forward(q1, q2, True)
    loss = F.cross_entropy(y, torch.tensor(labels))
    loss.backward()

    with torch.no_grad():
        yf = F.conv2d(torch.tensor(x), torch.tensor(w1), torch.tensor(b1), padding=1)
        yf = F.max_pool2d(F.relu(yf), 2).reshape(n, -1) @ torch.tensor(w2).t() + torch.tensor(b2)
        q2f = q2.copy()
        code = np.int8(q2f[0, 0]).view(np.uint8) ^ np.uint8(0x80)
        q2f[0, 0] = np.float32(code.view(np.int8))
        yflip, _, _ = qdq_forward(q1, q2f, False)
        flip_loss = F.cross_entropy(yflip, torch.tensor(labels))

    def floats(a):
        return [float("%.9g" % v) for v in np.asarray(a, dtype=np.float32).ravel()]

    ref = {
        "input": floats(x),
        "labels": labels,
        "output": floats(y.detach().numpy()),
        "loss": float(loss.item()),
        "float_output": floats(yf.numpy()),
        "params": {
            "w1_q": {"stored": "int8", "values": floats(q1), "grad": floats(tq1.grad.numpy())},
            "w2_q": {"stored": "int8", "values": floats(q2), "grad": floats(tq2.grad.numpy())},
        },
        "flip": {"param": "w2_q", "index": 0, "bit": 7, "before": float(q2[0, 0]), "after": float(q2f[0, 0]),
                 "output": floats(yflip.numpy()), "loss": float(flip_loss.item())},
    }
    np.save(os.path.join(OUT, "qdq_inputs_f32.npy"), x)
    np.save(os.path.join(OUT, "qdq_labels_i64.npy"), np.array(labels, dtype=np.int64))
    with open(os.path.join(OUT, "qdq_cnn.json"), "w") as fp:
        json.dump(ref, fp, indent=1)
        fp.write("\n")
    print("loss %.6f, float model output[0] %s" % (loss.item(), floats(yf.numpy())[:5]))
    torch_fake_quant()


class FakeQuantLinear(torch.nn.Module):
    """A layer as PyTorch's quantization-aware training exports it: fake
    quantization of the input (uint8, per tensor) and of the weight (int8,
    per output channel) before a float Linear."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        # an observer's numbers: fixed at export, as after calibration
        self.register_buffer("w_scale", (self.fc.weight.detach().abs().amax(dim=1) / 127.0).float())
        self.register_buffer("w_zero", torch.zeros(3, dtype=torch.int32))

    def forward(self, x):
        x = torch.fake_quantize_per_tensor_affine(x, 0.05, 128, 0, 255)
        w = torch.fake_quantize_per_channel_affine(self.fc.weight, self.w_scale, self.w_zero, 0, -128, 127)
        return F.linear(x, w, self.fc.bias)


def torch_fake_quant():
    """qdq_torch_op13.onnx: FakeQuantLinear exported by torch.onnx.export,
    whose zero points are Constant nodes of uint8/int8 values and whose
    float weight reaches the Linear through QuantizeLinear -> DequantizeLinear;
    qdq_torch.json: its outputs on 4 inputs (one saturating) and, for a fixed
    r, the gradients of sum(y * r) from the module itself (PyTorch's fake
    quantization backward is the straight-through estimator too)."""
    torch.manual_seed(7)
    m = FakeQuantLinear()
    x = torch.tensor(np.random.default_rng(7).uniform(-3.0, 3.0, size=(4, 4)).astype(np.float32))
    x[0, 0] = 9.0  # saturates: no gradient flows to it
    path = os.path.join(OUT, "qdq_torch_op13.onnx")
    torch.onnx.export(m, x, path, opset_version=OPSET, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
    xr = x.clone().requires_grad_(True)
    y = m(xr)
    r = torch.tensor(np.random.default_rng(8).normal(size=(4, 3)).astype(np.float32))
    (y * r).sum().backward()
    ops = {}
    for node in onnx.load(path).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1

    def floats(a):
        return [float("%.9g" % v) for v in np.asarray(a, dtype=np.float32).ravel()]

    ref = {
        "ops": ops,
        "input": floats(x.numpy()),
        "output": floats(y.detach().numpy()),
        "r": floats(r.numpy()),
        "input_grad": floats(xr.grad.numpy()),
        "grads": {"fc.weight": floats(m.fc.weight.grad.numpy()), "fc.bias": floats(m.fc.bias.grad.numpy())},
    }
    with open(os.path.join(OUT, "qdq_torch.json"), "w") as fp:
        json.dump(ref, fp, indent=1)
        fp.write("\n")


if __name__ == "__main__":
    main()
