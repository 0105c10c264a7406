#!/usr/bin/python3
"""Regenerate paracorr's reference fixtures.

Trains small Fashion-MNIST models with PyTorch, exports them to ONNX, and
computes reference numbers (loss, accuracy, output rows, gradient norms per
corruptible initializer) by evaluating each ONNX FILE with a small interpreter
written here on top of torch functional ops, so that folded weights and
training-mode exports are handled exactly as the file says.

Run with Debian's Python (torch 1.13, onnx 1.12):

    /usr/bin/python3 tests/reference/make_fixtures.py

Nothing is downloaded.  Outputs go to tests/reference/fixtures/.
"""

import copy
import gzip
import json
import math
import os
import struct
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")
DATA = "/usr/share/datasets/fashion-mnist"
TEST_IMAGES = DATA + "/t10k-images-idx3-ubyte.gz"
TEST_LABELS = DATA + "/t10k-labels-idx1-ubyte.gz"
TRAIN_IMAGES = DATA + "/train-images-idx3-ubyte.gz"
TRAIN_LABELS = DATA + "/train-labels-idx1-ubyte.gz"

REF_SAMPLES = 1000      # samples behind "loss", "accuracy", "gradient"
LOGIT_ROWS = [0, 1, 2, 3]
SEED = 20240601

DYNAMIC_AXES = {"input": {0: "N"}, "logits": {0: "N"}}


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------

def seed_everything(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


# One intra-op thread: on a loaded 2-core machine, torch's OpenMP pool with 2
# threads was ~40x slower per training step (83 ms vs 2 ms for the MLP), and a
# single thread also fixes the summation order.  PARACORR_REF_THREADS overrides.
THREADS = int(os.environ.get("PARACORR_REF_THREADS", "1"))
torch.set_num_threads(THREADS)
torch.use_deterministic_algorithms(True)
seed_everything(SEED)


# ---------------------------------------------------------------------------
# IDX reader (gzip or plain)
# ---------------------------------------------------------------------------

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError("%s: not an IDX file (bad magic)" % path)
    code, ndim = raw[2], raw[3]
    if code not in IDX_TYPES:
        raise ValueError("%s: unknown IDX element type 0x%02x" % (path, code))
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    dtype = IDX_TYPES[code]
    count = int(np.prod(dims)) if ndim else 1
    off = 4 + 4 * ndim
    need = off + count * dtype.itemsize
    if len(raw) != need:
        raise ValueError("%s: size %d, header says %d" % (path, len(raw), need))
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=off)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


def to_float(images_u8):
    """uint8 N×28×28 -> float32 N×1×28×28, scaled by 1/255 (x / 255, rounded once)."""
    x = images_u8.astype(np.float32) / np.float32(255.0)
    return x[:, None, :, :]


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------

class MLP(nn.Module):
    def __init__(self, log_softmax=False):
        super().__init__()
        self.log_softmax = log_softmax
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(784, 128)
        self.fc2 = nn.Linear(128, 64)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.flatten(x)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        if self.log_softmax:
            x = torch.log_softmax(x, dim=1)
        return x


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        # deliberately view(): a dynamic-batch export writes
        # Shape/Gather/Unsqueeze/Concat/Reshape for it
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU.

    shortcut: identity when shape is kept; otherwise a 1×1 conv + BN
    projection, either strided ("conv") or preceded by a 2×2 AvgPool2d with a
    stride-1 1×1 conv ("avgpool", ResNet-D style, so AveragePool appears in
    the export).
    """

    def __init__(self, cin, cout, stride, shortcut="conv"):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride == 1 and cin == cout:
            self.shortcut = nn.Identity()
        elif shortcut == "conv":
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                nn.BatchNorm2d(cout))
        elif shortcut == "avgpool":
            self.shortcut = nn.Sequential(
                # count_include_pad=False: with the default True, torch 1.13
                # writes an all-zero Pad node in front of the AveragePool
                nn.AvgPool2d(stride, count_include_pad=False),
                nn.Conv2d(cin, cout, 1, stride=1, bias=False),
                nn.BatchNorm2d(cout))
        else:
            raise ValueError(shortcut)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU())
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2, shortcut="conv")
        self.layer3 = BasicBlock(32, 64, 2, shortcut="avgpool")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.stem(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.dropout(x))


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def train(model, x, y, epochs, batch, lr, seed, subset=None):
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0] if subset is None else subset
    steps = epochs * ((n + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    t0 = time.time()
    for ep in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)[:n]
        total, seen = 0.0, 0
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        log("    epoch %d: train loss %.4f (%d samples, %.1fs)"
            % (ep + 1, total / seen, seen, time.time() - t0))
    model.eval()
    return model


@torch.no_grad()
def module_accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / x.shape[0]


# ---------------------------------------------------------------------------
# ONNX interpreter (inference semantics, float32, torch autograd)
# ---------------------------------------------------------------------------

ONNX_TO_TORCH = {
    onnx.TensorProto.FLOAT: torch.float32,
    onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.FLOAT16: torch.float16,
    onnx.TensorProto.INT64: torch.int64,
    onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.INT16: torch.int16,
    onnx.TensorProto.INT8: torch.int8,
    onnx.TensorProto.UINT8: torch.uint8,
    onnx.TensorProto.BOOL: torch.bool,
}


class OnnxError(Exception):
    pass


def attrs_of(node):
    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        out[a.name] = v
    return out


def spatial_padding(x, pads, nd, fill):
    """ONNX pads [b1..bn, e1..en] -> symmetric padding for torch, or pad x."""
    pads = list(pads) if pads else [0] * (2 * nd)
    begin, end = pads[:nd], pads[nd:]
    if begin == end:
        return x, begin
    spec = []
    for d in reversed(range(nd)):
        spec += [begin[d], end[d]]
    return F.pad(x, spec, value=fill), [0] * nd


def check_auto_pad(node, a):
    if a.get("auto_pad", "NOTSET") != "NOTSET":
        raise OnnxError("%s: auto_pad=%s not supported" % (node.name, a["auto_pad"]))


def norm_axis(axis, rank):
    return axis + rank if axis < 0 else axis


class Interpreter:
    def __init__(self, path):
        self.path = path
        self.model = onnx.load(path)
        onnx.checker.check_model(self.model)
        g = self.model.graph
        self.opset = None
        for imp in self.model.opset_import:
            if imp.domain in ("", "ai.onnx"):
                self.opset = imp.version
        if self.opset is None:
            raise OnnxError("%s: no default-domain opset" % path)
        bn_buffers = set()
        for n in g.node:
            if n.op_type == "BatchNormalization":
                bn_buffers.update(n.input[3:5])
        self.consumer = {}
        for n in g.node:
            for i in n.input:
                if i and i not in self.consumer:
                    self.consumer[i] = n.name
        self.init = {}
        self.params = {}   # corruptible: name -> tensor (requires_grad)
        for t in g.initializer:
            arr = numpy_helper.to_array(t).copy()
            ten = torch.from_numpy(arr)
            if ten.is_floating_point():
                if ten.dtype != torch.float32:
                    raise OnnxError("%s: initializer %s is %s, not float32"
                                    % (path, t.name, ten.dtype))
                if t.name not in bn_buffers:
                    ten.requires_grad_(True)
                    self.params[t.name] = ten
            self.init[t.name] = ten
        self.input_name = [i.name for i in g.input if i.name not in self.init][0]
        self.output_names = [o.name for o in g.output]

    def output_kind(self):
        name = "logits" if "logits" in self.output_names else self.output_names[0]
        prod = [n for n in self.model.graph.node if name in n.output][0]
        return {"LogSoftmax": "logprobs", "Softmax": "probs"}.get(prod.op_type, "logits")

    def op_types(self):
        seen = []
        for n in self.model.graph.node:
            if n.op_type not in seen:
                seen.append(n.op_type)
        return seen

    def run(self, x):
        env = dict(self.init)
        env[self.input_name] = x
        for node in self.model.graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise OnnxError("%s: node %s has domain %r"
                                % (self.path, node.name, node.domain))
            fn = getattr(self, "op_" + node.op_type, None)
            if fn is None:
                raise OnnxError("%s: op %s (node %s) not supported by the interpreter"
                                % (self.path, node.op_type, node.name))
            ins = []
            for i in node.input:
                if i == "":
                    ins.append(None)
                elif i in env:
                    ins.append(env[i])
                else:
                    raise OnnxError("%s: node %s reads undefined %s" % (self.path, node.name, i))
            outs = fn(node, ins, attrs_of(node))
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for name, val in zip(node.output, outs):
                if name:
                    env[name] = val
        out = "logits" if "logits" in self.output_names else self.output_names[0]
        return env[out]

    # ---- ops ---------------------------------------------------------------

    def op_Conv(self, node, ins, a):
        check_auto_pad(node, a)
        x, w = ins[0], ins[1]
        b = ins[2] if len(ins) > 2 else None
        nd = w.dim() - 2
        if nd != 2:
            raise OnnxError("%s: only 2-D Conv" % node.name)
        x, pad = spatial_padding(x, a.get("pads"), nd, 0.0)
        return F.conv2d(x, w, b, stride=a.get("strides", [1] * nd), padding=pad,
                        dilation=a.get("dilations", [1] * nd), groups=a.get("group", 1))

    def op_MaxPool(self, node, ins, a):
        check_auto_pad(node, a)
        if len([o for o in node.output if o]) > 1:
            raise OnnxError("%s: MaxPool Indices output not supported" % node.name)
        if a.get("storage_order", 0) != 0:
            raise OnnxError("%s: storage_order" % node.name)
        k = a["kernel_shape"]
        nd = len(k)
        x, pad = spatial_padding(ins[0], a.get("pads"), nd, float("-inf"))
        return F.max_pool2d(x, k, stride=a.get("strides", [1] * nd), padding=pad,
                            dilation=a.get("dilations", [1] * nd),
                            ceil_mode=bool(a.get("ceil_mode", 0)))

    def op_AveragePool(self, node, ins, a):
        check_auto_pad(node, a)
        k = a["kernel_shape"]
        nd = len(k)
        pads = list(a.get("pads", [0] * 2 * nd))
        if pads[:nd] != pads[nd:]:
            raise OnnxError("%s: asymmetric AveragePool pads" % node.name)
        return F.avg_pool2d(ins[0], k, stride=a.get("strides", [1] * nd), padding=pads[:nd],
                            ceil_mode=bool(a.get("ceil_mode", 0)),
                            count_include_pad=bool(a.get("count_include_pad", 0)))

    def op_Pad(self, node, ins, a):
        mode = a.get("mode", "constant")
        if mode != "constant":
            raise OnnxError("%s: Pad mode %s not supported" % (node.name, mode))
        if self.opset < 11:
            raise OnnxError("%s: Pad before opset 11 not supported" % node.name)
        x = ins[0]
        pads = [int(v) for v in ins[1].tolist()]
        value = float(ins[2].item()) if len(ins) > 2 and ins[2] is not None else 0.0
        r = x.dim()
        spec = []
        for d in reversed(range(r)):
            spec += [pads[d], pads[d + r]]
        return F.pad(x, spec, value=value)

    def op_GlobalAveragePool(self, node, ins, a):
        x = ins[0]
        return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)

    def op_BatchNormalization(self, node, ins, a):
        # inference semantics whatever training_mode / output count says
        x, scale, bias, mean, var = ins
        y = F.batch_norm(x, mean, var, scale, bias, training=False,
                         eps=a.get("epsilon", 1e-5))
        extra = [mean, var, mean, var][:len(node.output) - 1]
        return [y] + extra

    def op_Dropout(self, node, ins, a):
        x = ins[0]
        return [x, torch.ones(x.shape, dtype=torch.bool)]

    def op_Gemm(self, node, ins, a):
        A, B = ins[0], ins[1]
        C = ins[2] if len(ins) > 2 else None
        if a.get("transA", 0):
            A = A.t()
        if a.get("transB", 0):
            B = B.t()
        y = A @ B
        alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
        if alpha != 1.0:
            y = alpha * y
        if C is not None:
            y = y + (C if beta == 1.0 else beta * C)
        return y

    def op_MatMul(self, node, ins, a):
        return torch.matmul(ins[0], ins[1])

    def op_Add(self, node, ins, a):
        return ins[0] + ins[1]

    def op_Sub(self, node, ins, a):
        return ins[0] - ins[1]

    def op_Mul(self, node, ins, a):
        return ins[0] * ins[1]

    def op_Div(self, node, ins, a):
        if not ins[0].is_floating_point():
            return torch.div(ins[0], ins[1], rounding_mode="trunc")
        return ins[0] / ins[1]

    def op_Relu(self, node, ins, a):
        return F.relu(ins[0])

    def op_Identity(self, node, ins, a):
        return ins[0]

    def op_Flatten(self, node, ins, a):
        x = ins[0]
        axis = norm_axis(a.get("axis", 1), x.dim())
        lead = 1
        for d in x.shape[:axis]:
            lead *= d
        return x.reshape(lead, -1)

    def op_Reshape(self, node, ins, a):
        x, shape = ins[0], [int(v) for v in ins[1].tolist()]
        if not a.get("allowzero", 0):
            shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        return x.reshape(shape)

    def op_Shape(self, node, ins, a):
        dims = list(ins[0].shape)
        r = len(dims)
        start = a.get("start", 0)
        end = a.get("end", r)
        start = min(max(start + r if start < 0 else start, 0), r)
        end = min(max(end + r if end < 0 else end, 0), r)
        return torch.tensor(dims[start:end], dtype=torch.int64)

    def op_Gather(self, node, ins, a):
        x, idx = ins
        axis = norm_axis(a.get("axis", 0), x.dim())
        idx = idx.to(torch.int64)
        idx = torch.where(idx < 0, idx + x.shape[axis], idx)
        picked = x.index_select(axis, idx.reshape(-1))
        return picked.reshape(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]))

    def _axes(self, node, ins, a):
        if self.opset >= 13:
            return None if len(ins) < 2 or ins[1] is None else [int(v) for v in ins[1].tolist()]
        return a.get("axes")

    def op_Unsqueeze(self, node, ins, a):
        x = ins[0]
        axes = self._axes(node, ins, a)
        rank = x.dim() + len(axes)
        for ax in sorted(norm_axis(v, rank) for v in axes):
            x = x.unsqueeze(ax)
        return x

    def op_Squeeze(self, node, ins, a):
        x = ins[0]
        axes = self._axes(node, ins, a)
        if axes is None:
            return x.squeeze()
        for ax in sorted((norm_axis(v, x.dim()) for v in axes), reverse=True):
            if x.shape[ax] != 1:
                raise OnnxError("%s: squeeze of dim %d of size %d" % (node.name, ax, x.shape[ax]))
            x = x.squeeze(ax)
        return x

    def op_Concat(self, node, ins, a):
        return torch.cat(ins, dim=a["axis"])

    def op_Constant(self, node, ins, a):
        if "value" in a:
            return torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        for key, dt in (("value_float", torch.float32), ("value_floats", torch.float32),
                        ("value_int", torch.int64), ("value_ints", torch.int64)):
            if key in a:
                return torch.tensor(a[key], dtype=dt)
        raise OnnxError("%s: Constant form %s not supported" % (node.name, list(a)))

    def op_Cast(self, node, ins, a):
        return ins[0].to(ONNX_TO_TORCH[a["to"]])

    def op_LogSoftmax(self, node, ins, a):
        if self.opset < 13:
            raise OnnxError("%s: LogSoftmax before opset 13 not supported" % node.name)
        return torch.log_softmax(ins[0], dim=a.get("axis", -1))

    def op_Softmax(self, node, ins, a):
        if self.opset < 13:
            raise OnnxError("%s: Softmax before opset 13 not supported" % node.name)
        return torch.softmax(ins[0], dim=a.get("axis", -1))


# ---------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------

def loss_of(out, y, kind):
    if kind == "logits":
        return F.cross_entropy(out, y)
    picked = out.gather(1, y[:, None])[:, 0]
    if kind == "logprobs":
        return -picked.mean()
    return -torch.log(picked).mean()


def norms(g64):
    a = np.abs(g64)
    return {"l1": float(a.sum()), "l2": float(math.sqrt(float((g64 * g64).sum()))),
            "linf": float(a.max()) if a.size else 0.0}


def reference(path, x_test, y_test):
    it = Interpreter(path)
    kind = it.output_kind()
    xs, ys = x_test[:REF_SAMPLES], y_test[:REF_SAMPLES]
    out = it.run(xs)
    loss = loss_of(out, ys, kind)
    for p in it.params.values():
        p.grad = None
    loss.backward()
    tensors = {}
    flat = []
    for name, p in it.params.items():
        if p.grad is None:
            g = np.zeros(tuple(p.shape), dtype=np.float64)
            log("    note: %s gets no gradient (unused)" % name)
        else:
            g = p.grad.detach().numpy().astype(np.float64)
        flat.append(g.reshape(-1))
        entry = {"shape": list(p.shape), "numel": int(p.numel()),
                 "node": it.consumer.get(name, "")}
        entry.update(norms(g))
        tensors[name] = entry
    model_norms = norms(np.concatenate(flat))
    acc = (out.argmax(1) == ys).double().mean().item()
    rows = out.detach()[LOGIT_ROWS].tolist()
    # full test set, no grad
    with torch.no_grad():
        tot_loss, correct, n = 0.0, 0, x_test.shape[0]
        for i in range(0, n, 1000):
            o = it.run(x_test[i:i + 1000])
            tot_loss += loss_of(o, y_test[i:i + 1000], kind).item() * o.shape[0]
            correct += (o.argmax(1) == y_test[i:i + 1000]).sum().item()
    fixture = {
        "model": os.path.basename(path),
        "opset": it.opset,
        "output": kind,
        "dataset": {"inputs": TEST_IMAGES, "labels": TEST_LABELS, "limit": REF_SAMPLES},
        "samples": REF_SAMPLES,
        "loss": float(loss.item()),
        "accuracy": float(acc),
        "logits": {"indices": LOGIT_ROWS, "values": rows},
        "gradient": {"model": model_norms, "tensors": tensors},
        "full": {"samples": n, "loss": tot_loss / n, "accuracy": correct / n},
    }
    return it, fixture


def describe(path):
    m = onnx.load(path)
    onnx.checker.check_model(m)
    counts = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    opset = [i.version for i in m.opset_import if i.domain in ("", "ai.onnx")][0]
    info = {"opset": opset, "ops": counts, "size": os.path.getsize(path)}
    bn = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    if bn:
        info["bn_outputs"] = sorted({len(n.output) for n in bn})
        info["bn_attrs"] = sorted({tuple(sorted((a.name, str(onnx.helper.get_attribute_value(a)))
                                               for a in n.attribute)) for n in bn})
    drop = [n for n in m.graph.node if n.op_type == "Dropout"]
    if drop:
        info["dropout"] = [(list(n.input), list(n.output), attrs_of(n)) for n in drop]
    consts = [n for n in m.graph.node if n.op_type == "Constant"]
    if consts:
        info["constants"] = [(n.name, n.output[0], numpy_helper.to_array(attrs_of(n)["value"]).tolist()
                              if "value" in attrs_of(n) else attrs_of(n)) for n in consts]
    casts = [n for n in m.graph.node if n.op_type == "Cast"]
    if casts:
        info["casts"] = [(n.name, attrs_of(n)) for n in casts]
    info["initializers"] = {t.name: (onnx.TensorProto.DataType.Name(t.data_type), list(t.dims))
                            for t in m.graph.initializer}
    info["graph_inputs"] = [i.name for i in m.graph.input]
    info["graph_outputs"] = [o.name for o in m.graph.output]
    info["node_names"] = [n.name for n in m.graph.node]
    return info


def export(model, path, opset, dummy, **kw):
    torch.onnx.export(model, dummy, path, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes=DYNAMIC_AXES, **kw)


def restore_bn_stats(path, trained, traced):
    """The train-mode trace runs one forward pass in training mode, which
    updates the BN running statistics (momentum 0.1 toward the dummy batch)
    before torch writes them as initializers.  Put the trained model's values
    back so the file computes, in inference mode, the same function as the
    folded export.  Every other initializer must equal the trained value."""
    m = onnx.load(path)
    file_drift, restored = 0.0, 0
    for t in m.graph.initializer:
        if t.name not in trained:
            continue
        arr = numpy_helper.to_array(t)
        want = trained[t.name].numpy()
        if t.name.endswith("running_mean") or t.name.endswith("running_var"):
            file_drift = max(file_drift, float(np.abs(arr.astype(np.float64) - want).max()))
            if not np.array_equal(arr, traced[t.name].numpy()):
                log("    note: %s in the file is neither the traced value" % t.name)
            t.CopyFrom(numpy_helper.from_array(want.astype(arr.dtype), t.name))
            restored += 1
        elif not np.array_equal(arr, want):
            raise SystemExit("%s: initializer %s differs from the trained model" % (path, t.name))
    onnx.checker.check_model(m)
    onnx.save(m, path)
    log("    the file held the traced stats (max |diff| %.3g from the trained ones); "
        "restored %d running mean/var initializers" % (file_drift, restored))
    return file_drift


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def main():
    t_start = time.time()
    os.makedirs(OUT, exist_ok=True)
    log("torch %s, onnx %s, numpy %s" % (torch.__version__, onnx.__version__, np.__version__))

    tr_x_u8, tr_y = read_idx(TRAIN_IMAGES), read_idx(TRAIN_LABELS)
    te_x_u8, te_y = read_idx(TEST_IMAGES), read_idx(TEST_LABELS)
    assert tr_x_u8.shape == (60000, 28, 28) and te_x_u8.shape == (10000, 28, 28)
    x_train = torch.from_numpy(to_float(tr_x_u8))
    y_train = torch.from_numpy(tr_y.astype(np.int64))
    x_test = torch.from_numpy(to_float(te_x_u8))
    y_test = torch.from_numpy(te_y.astype(np.int64))
    dummy = x_test[:2].clone()

    # ---- train ----
    log("training mlp")
    mlp = train(MLP(), x_train, y_train, epochs=3, batch=64, lr=2e-3, seed=SEED + 1)
    mlp_ls = MLP(log_softmax=True)
    mlp_ls.load_state_dict(mlp.state_dict())
    mlp_ls.eval()
    log("training cnn")
    cnn = train(LeNet(), x_train, y_train, epochs=3, batch=64, lr=3e-3, seed=SEED + 2)
    log("training resnet")
    resnet = train(SmallResNet(), x_train, y_train, epochs=1, batch=64, lr=4e-3,
                   seed=SEED + 3, subset=int(os.environ.get("RESNET_SUBSET", "60000")))
    for name, m in (("mlp", mlp), ("cnn", cnn), ("resnet", resnet)):
        log("  %s module test accuracy: %.4f" % (name, module_accuracy(m, x_test, y_test)))

    # ---- export ----
    files = []   # (file, module used for the sanity check)
    export(mlp, os.path.join(OUT, "mlp_op13.onnx"), 13, dummy)
    files.append(("mlp_op13.onnx", mlp))
    export(mlp_ls, os.path.join(OUT, "mlp_logsoftmax_op13.onnx"), 13, dummy)
    files.append(("mlp_logsoftmax_op13.onnx", mlp_ls))
    for op in (13, 17):
        export(cnn, os.path.join(OUT, "cnn_op%d.onnx" % op), op, dummy)
        files.append(("cnn_op%d.onnx" % op, cnn))
    for op in (17, 13):
        export(resnet, os.path.join(OUT, "resnet_op%d.onnx" % op), op, dummy)
        files.append(("resnet_op%d.onnx" % op, resnet))
    bn_drift = {}
    trained = {k: v.detach().clone() for k, v in resnet.state_dict().items()}
    for op in (13, 17):
        path = os.path.join(OUT, "resnet_bn_op%d.onnx" % op)
        twin = copy.deepcopy(resnet)
        export(twin, path, op, dummy,
               training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
        after = twin.state_dict()
        drift = max((after[k].double() - trained[k].double()).abs().max().item()
                    for k in trained if "running" in k)
        log("  resnet_bn_op%d: the train-mode trace moved the copy's BN running stats "
            "by up to %.3g (copy left in training=%s)" % (op, drift, twin.training))
        bn_drift[op] = restore_bn_stats(path, trained, after)
        files.append(("resnet_bn_op%d.onnx" % op, resnet))
    # the original must be untouched and in eval mode
    assert not resnet.training

    # ---- describe ----
    descriptions = {}
    expected = {
        "mlp_op13.onnx": {"Flatten", "Gemm", "Relu"},
        "mlp_logsoftmax_op13.onnx": {"Flatten", "Gemm", "Relu", "LogSoftmax"},
        "cnn_op13.onnx": {"Conv", "Relu", "MaxPool", "Shape", "Gather", "Unsqueeze",
                          "Concat", "Reshape", "Gemm"},
        "resnet_op17.onnx": {"Conv", "Relu", "Add", "AveragePool", "GlobalAveragePool",
                             "Flatten", "Gemm"},
        "resnet_bn_op13.onnx": {"Conv", "BatchNormalization", "Relu", "Add", "AveragePool",
                                "GlobalAveragePool", "Flatten", "Gemm", "Dropout"},
    }
    expected["cnn_op17.onnx"] = expected["cnn_op13.onnx"]
    expected["resnet_op13.onnx"] = expected["resnet_op17.onnx"]
    expected["resnet_bn_op17.onnx"] = expected["resnet_bn_op13.onnx"]
    for fname, _ in files:
        d = describe(os.path.join(OUT, fname))
        descriptions[fname] = d
        log("\n%s (opset %d, %d bytes)" % (fname, d["opset"], d["size"]))
        log("  ops: %s" % ", ".join("%s x%d" % kv for kv in d["ops"].items()))
        missing = expected[fname] - set(d["ops"])
        if missing:
            raise SystemExit("%s: expected op types missing: %s" % (fname, sorted(missing)))
        if "bn_outputs" in d:
            log("  BatchNormalization output counts: %s; attributes: %s"
                % (d["bn_outputs"], d["bn_attrs"]))
        for key in ("dropout", "constants", "casts"):
            if key in d:
                log("  %s: %s" % (key, d[key]))
        log("  graph inputs: %s" % d["graph_inputs"])
        log("  graph outputs: %s" % d["graph_outputs"])
        log("  nodes: %s" % d["node_names"])
        log("  initializers: %s" % d["initializers"])

    # ---- references ----
    summary = []
    for fname, module in files:
        path = os.path.join(OUT, fname)
        log("\nreference for %s" % fname)
        it, fx = reference(path, x_test, y_test)
        with torch.no_grad():
            ref = module(x_test[:REF_SAMPLES])
            got = it.run(x_test[:REF_SAMPLES])
        diff = (ref - got).abs().max().item()
        log("  interpreter vs module.eval(): max |diff| = %.3g" % diff)
        if diff > 1e-4:
            raise SystemExit("%s: interpreter disagrees with the module (%.3g)" % (fname, diff))
        write_json(os.path.join(OUT, fname.replace(".onnx", ".json")), fx)
        log("  output %s, loss %.6f, accuracy %.4f, full loss %.6f, full accuracy %.4f, "
            "%d corruptible tensors, grad l2 %.6g"
            % (fx["output"], fx["loss"], fx["accuracy"], fx["full"]["loss"],
               fx["full"]["accuracy"], len(fx["gradient"]["tensors"]),
               fx["gradient"]["model"]["l2"]))
        summary.append((fname, fx, diff))

    # ---- NPY fixtures ----
    u8 = np.ascontiguousarray(te_x_u8[:64])
    f32 = np.ascontiguousarray(to_float(u8)[:, 0])
    lab = te_y[:64].astype(np.int64)
    np.save(os.path.join(OUT, "sample64_u8.npy"), u8)
    np.save(os.path.join(OUT, "sample64_f32.npy"), f32)
    np.save(os.path.join(OUT, "labels64_i64.npy"), lab)
    it = Interpreter(os.path.join(OUT, "cnn_op17.onnx"))
    with torch.no_grad():
        o = it.run(torch.from_numpy(f32[:, None]))
        yl = torch.from_numpy(lab)
        npy = {"model": "cnn_op17.onnx", "samples": 64,
               "loss": float(F.cross_entropy(o, yl).item()),
               "accuracy": float((o.argmax(1) == yl).double().mean().item())}
    write_json(os.path.join(OUT, "npy64.json"), npy)

    # ---- summary ----
    log("\nsummary")
    for fname, fx, diff in summary:
        log("  %-26s opset %2d %-8s acc %.4f loss %.5f | full acc %.4f loss %.5f | diff %.2g"
            % (fname, fx["opset"], fx["output"], fx["accuracy"], fx["loss"],
               fx["full"]["accuracy"], fx["full"]["loss"], diff))
    log("  npy64 (cnn_op17, 64 samples): loss %.6f accuracy %.4f" % (npy["loss"], npy["accuracy"]))
    log("  BN stat drift of the train-mode trace on the copy: %s" % bn_drift)
    log("\nfiles")
    for f in sorted(os.listdir(OUT)):
        log("  %-30s %8d bytes" % (f, os.path.getsize(os.path.join(OUT, f))))
    log("total time %.1fs" % (time.time() - t_start))


if __name__ == "__main__":
    main()
