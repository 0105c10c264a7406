"""Evaluate an ONNX file with torch, so that gradients w.r.t. its initializers
can be taken with autograd.

Used by make_zoo.py and make_lm.py: for an export whose initializers are not
the module's parameters (constant folding folds BatchNorm into the
convolutions, transposes Linear weights, ...) PyTorch's gradient w.r.t. the
file's weights can only come from evaluating the file itself.  Every preserve
export is also run here and compared with its module, so the interpreter is
checked against PyTorch on every graph it is used for.

Inference semantics: BatchNormalization uses its running statistics, Dropout
is the identity.  An op or attribute value this file does not know is an
error, never a guess.
"""

import json

import numpy as np
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper

# ONNX TensorProto data types -> torch
DTYPES = {1: torch.float32, 6: torch.int32, 7: torch.int64, 9: torch.bool, 11: torch.float64}


class Unsupported(Exception):
    pass


def attrs_of(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _ints(t):
    return [int(v) for v in t.reshape(-1).tolist()]


def _pads_2d(pads, nd):
    """ONNX pads [b1, b2, ..., e1, e2, ...] -> F.pad's (last dim first) list."""
    out = []
    for i in reversed(range(nd)):
        out += [pads[i], pads[i + nd]]
    return out


def _window(x, a, nd):
    """Explicit padding of a 2-D window op: symmetric pads go to the op, any
    other is applied first with F.pad (the caller says with what value)."""
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Unsupported("auto_pad %r" % a["auto_pad"])
    pads = list(a.get("pads", [0] * (2 * nd)))
    sym = all(pads[i] == pads[i + nd] for i in range(nd))
    return pads, sym


def op_conv(x, w, b=None, **a):
    nd = w.dim() - 2
    pads, sym = _window(x, a, nd)
    strides = a.get("strides", [1] * nd)
    dil = a.get("dilations", [1] * nd)
    group = a.get("group", 1)
    if not sym:
        x = F.pad(x, _pads_2d(pads, nd))
        pads = [0] * (2 * nd)
    if nd != 2:
        raise Unsupported("Conv of %d spatial dims" % nd)
    return F.conv2d(x, w, b, stride=strides, padding=pads[:nd], dilation=dil, groups=group)


def op_maxpool(x, **a):
    k = a["kernel_shape"]
    nd = len(k)
    pads, sym = _window(x, a, nd)
    if nd != 2 or a.get("storage_order", 0) != 0:
        raise Unsupported("MaxPool form")
    s = a.get("strides", [1] * nd)
    d = a.get("dilations", [1] * nd)
    if not sym:
        x = F.pad(x, _pads_2d(pads, nd), value=float("-inf"))
        pads = [0] * (2 * nd)
    return F.max_pool2d(x, k, s, pads[:nd], d, ceil_mode=bool(a.get("ceil_mode", 0)))


def op_avgpool(x, **a):
    k = a["kernel_shape"]
    nd = len(k)
    pads, sym = _window(x, a, nd)
    if nd != 2 or not sym:
        raise Unsupported("AveragePool form")
    s = a.get("strides", [1] * nd)
    return F.avg_pool2d(x, k, s, pads[:nd], ceil_mode=bool(a.get("ceil_mode", 0)),
                        count_include_pad=bool(a.get("count_include_pad", 0)))


def op_batchnorm(x, scale, bias, mean, var, **a):
    if a.get("training_mode", 0):
        raise Unsupported("BatchNormalization training_mode=1")
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=a.get("epsilon", 1e-5))


def op_layernorm(x, scale, bias=None, **a):
    axis = a.get("axis", -1)
    axis = axis + x.dim() if axis < 0 else axis
    if a.get("stash_type", 1) != 1:
        raise Unsupported("LayerNormalization stash_type")
    return F.layer_norm(x, x.shape[axis:], scale, bias, a.get("epsilon", 1e-5))


def op_gemm(A, B, C=None, **a):
    if a.get("transA", 0):
        A = A.t()
    if a.get("transB", 0):
        B = B.t()
    y = a.get("alpha", 1.0) * (A @ B)
    if C is not None:
        y = y + a.get("beta", 1.0) * C
    return y


def op_gather(x, idx, **a):
    axis = a.get("axis", 0)
    axis = axis + x.dim() if axis < 0 else axis
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    r = x.movedim(axis, 0)[idx]
    k = idx.dim()
    return r.movedim(list(range(k)), list(range(axis, axis + k)))


def op_slice(x, starts, ends, axes=None, steps=None):
    starts, ends = _ints(starts), _ints(ends)
    axes = _ints(axes) if axes is not None else list(range(len(starts)))
    steps = _ints(steps) if steps is not None else [1] * len(starts)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        if st == 0:
            raise Unsupported("Slice step 0")
        ax = ax + x.dim() if ax < 0 else ax
        dim = x.shape[ax]
        s = s + dim if s < 0 else s
        e = e + dim if e < 0 else e
        # the ONNX clamping: [0, dim] going forward, [-1, dim - 1] going back
        if st > 0:
            s, e = min(max(s, 0), dim), min(max(e, 0), dim)
        else:
            s, e = min(max(s, 0), dim - 1), min(max(e, -1), dim - 1)
        x = x.index_select(ax, torch.arange(s, e, st, dtype=torch.int64))
    return x


def op_reshape(x, shape, **a):
    shape = _ints(shape)
    if not a.get("allowzero", 0):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def op_unsqueeze(x, axes_in=None, **a):
    axes = _ints(axes_in) if axes_in is not None else list(a["axes"])
    r = x.dim() + len(axes)
    for ax in sorted(v + r if v < 0 else v for v in axes):
        x = x.unsqueeze(ax)
    return x


def op_squeeze(x, axes_in=None, **a):
    axes = _ints(axes_in) if axes_in is not None else a.get("axes")
    if axes is None:
        return x.squeeze()
    for ax in sorted((v + x.dim() if v < 0 else v for v in axes), reverse=True):
        x = x.squeeze(ax)
    return x


def op_reducemean(x, axes_in=None, **a):
    # (inputs are named *_in: attributes arrive as keywords of the same name)
    axes = _ints(axes_in) if axes_in is not None else a.get("axes")
    keep = bool(a.get("keepdims", 1))
    if axes is None:
        axes = list(range(x.dim()))
    return x.mean(dim=list(axes), keepdim=keep)


def op_div(a_, b_):
    if a_.is_floating_point():
        return a_ / b_
    return torch.div(a_, b_, rounding_mode="trunc")


def op_mod(a_, b_, **a):
    if a.get("fmod", 0):
        return torch.fmod(a_, b_)
    if a_.is_floating_point():
        raise Unsupported("Mod fmod=0 of floats")
    return torch.remainder(a_, b_)


def op_pad(x, pads, value=None, **a):
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise Unsupported("Pad mode %s" % mode)
    p = _ints(pads)
    v = float(value.reshape(-1)[0]) if value is not None else 0.0
    return F.pad(x, _pads_2d(p, x.dim()), value=v)


def op_scatternd(data, indices, updates, **a):
    if a.get("reduction", b"none") not in (b"none", "none"):
        raise Unsupported("ScatterND reduction")
    k = indices.shape[-1]
    idx = tuple(indices[..., i] for i in range(k))
    return data.index_put(idx, updates)


def op_split(x, split_in=None, **a):
    axis = a.get("axis", 0)
    split = _ints(split_in) if split_in is not None else a.get("split")
    n = a["__n_out"]
    if split is None:
        if x.shape[axis] % n:
            raise Unsupported("Split of %d into %d" % (x.shape[axis], n))
        split = [x.shape[axis] // n] * n
    return list(torch.split(x, list(split), dim=axis))


def op_constant(**a):
    if "value" in a:
        return torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
    if "value_float" in a:
        return torch.tensor(a["value_float"], dtype=torch.float32)
    if "value_floats" in a:
        return torch.tensor(a["value_floats"], dtype=torch.float32)
    if "value_int" in a:
        return torch.tensor(a["value_int"], dtype=torch.int64)
    if "value_ints" in a:
        return torch.tensor(a["value_ints"], dtype=torch.int64)
    raise Unsupported("Constant form %s" % sorted(a))


def op_constantofshape(shape, **a):
    if "value" in a:
        v = torch.from_numpy(numpy_helper.to_array(a["value"]).copy()).reshape(-1)
    else:
        v = torch.zeros(1, dtype=torch.float32)
    return v.expand(_ints(shape)).clone()


def op_expand(x, shape):
    out = torch.broadcast_shapes(tuple(x.shape), tuple(_ints(shape)))
    return x.expand(out)


def op_lstm(X, W, R, B=None, seq_lens=None, h0=None, c0=None, P=None, **a):
    """ONNX LSTM, forward direction, default activations, gates i, o, f, c."""
    if a.get("direction", b"forward") not in (b"forward", "forward") or P is not None:
        raise Unsupported("LSTM direction/peepholes")
    if a.get("layout", 0) != 0 or a.get("input_forget", 0) or "clip" in a or "activations" in a:
        raise Unsupported("LSTM attributes %s" % sorted(a))
    if seq_lens is not None and bool((seq_lens != X.shape[0]).any()):
        raise Unsupported("LSTM with short sequences")
    H = a["hidden_size"]
    T, N = X.shape[0], X.shape[1]
    Wd, Rd = W[0], R[0]
    b = B[0][:4 * H] + B[0][4 * H:] if B is not None else torch.zeros(4 * H)
    h = h0[0] if h0 is not None else torch.zeros(N, H)
    c = c0[0] if c0 is not None else torch.zeros(N, H)
    ys = []
    for t in range(T):
        g = X[t] @ Wd.t() + h @ Rd.t() + b
        i, o, f, cc = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        i, o, f, cc = torch.sigmoid(i), torch.sigmoid(o), torch.sigmoid(f), torch.tanh(cc)
        c = f * c + i * cc
        h = o * torch.tanh(c)
        ys.append(h)
    Y = torch.stack(ys, 0).unsqueeze(1)
    return [Y, h.unsqueeze(0), c.unsqueeze(0)]


def op_trilu(x, k=None, **a):
    k = int(k.reshape(-1)[0]) if k is not None else 0
    return torch.triu(x, k) if a.get("upper", 1) else torch.tril(x, k)


def _cast(x, **a):
    return x.to(DTYPES[a["to"]])


OPS = {
    "Add": lambda a_, b_: a_ + b_,
    "Sub": lambda a_, b_: a_ - b_,
    "Mul": lambda a_, b_: a_ * b_,
    "Div": op_div,
    "Mod": op_mod,
    "Pow": lambda a_, b_: torch.pow(a_, b_),
    "Sqrt": torch.sqrt,
    "Erf": torch.erf,
    "Exp": torch.exp,
    "Log": torch.log,
    "Neg": torch.neg,
    "Abs": torch.abs,
    "Relu": F.relu,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "HardSigmoid": lambda x, **a: torch.clamp(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0.0, 1.0),
    "HardSwish": F.hardswish,
    "LeakyRelu": lambda x, **a: F.leaky_relu(x, a.get("alpha", 0.01)),
    "Clip": lambda x, lo=None, hi=None: torch.clamp(x, lo, hi),
    "Softmax": lambda x, **a: torch.softmax(x, a.get("axis", -1)),
    "LogSoftmax": lambda x, **a: torch.log_softmax(x, a.get("axis", -1)),
    "Conv": op_conv,
    "MaxPool": op_maxpool,
    "AveragePool": op_avgpool,
    "GlobalAveragePool": lambda x: x.mean(dim=list(range(2, x.dim())), keepdim=True),
    "BatchNormalization": op_batchnorm,
    "LayerNormalization": op_layernorm,
    "Gemm": op_gemm,
    "MatMul": torch.matmul,
    "Flatten": lambda x, **a: x.reshape(int(np.prod(x.shape[:a.get("axis", 1)])), -1),
    "Reshape": op_reshape,
    "Transpose": lambda x, **a: x.permute(a["perm"]) if "perm" in a else x.permute(*reversed(range(x.dim()))),
    "Concat": lambda *xs, **a: torch.cat(xs, a["axis"]),
    "Split": op_split,
    "Identity": lambda x: x,
    "Dropout": lambda x, *rest, **a: x,
    "Constant": op_constant,
    "ConstantOfShape": op_constantofshape,
    "Shape": lambda x, **a: torch.tensor(list(x.shape), dtype=torch.int64)[a.get("start", 0):a.get("end", None)],
    "Gather": op_gather,
    "Slice": op_slice,
    "Unsqueeze": op_unsqueeze,
    "Squeeze": op_squeeze,
    "Cast": _cast,
    "ReduceMean": op_reducemean,
    "Equal": torch.eq,
    "Less": torch.lt,
    "Greater": torch.gt,
    "Not": torch.logical_not,
    "Where": torch.where,
    "Expand": op_expand,
    "Range": lambda s, l, d: torch.arange(s.item(), l.item(), d.item(), dtype=s.dtype),
    "Pad": op_pad,
    "ScatterND": op_scatternd,
    "LSTM": op_lstm,
    "Trilu": op_trilu,
}

# Ops whose attributes are passed to the function (the rest take none).
TAKES_ATTRS = {
    "HardSigmoid", "LeakyRelu", "Softmax", "LogSoftmax", "Conv", "MaxPool", "AveragePool", "BatchNormalization",
    "LayerNormalization", "Gemm", "Flatten", "Reshape", "Transpose", "Concat", "Split", "Dropout", "Constant",
    "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Squeeze", "Cast", "ReduceMean", "Mod", "Pad", "ScatterND",
    "LSTM", "Trilu",
}
# Attributes a node may carry that change nothing here.
IGNORED_ATTRS = {"Dropout": {"seed"}, "BatchNormalization": {"momentum"}}


def weight_initializers(model, buffer_inputs):
    """Names of the float initializers paracorr counts as parameters: read by
    some node, and never at one of buffer_inputs' positions."""
    floats = {i.name for i in model.graph.initializer if i.data_type == 1}
    used, buffers = set(), set()
    for n in model.graph.node:
        for k, name in enumerate(n.input):
            if name in floats:
                used.add(name)
                if k in buffer_inputs.get(n.op_type, ()):
                    buffers.add(name)
    return [i.name for i in model.graph.initializer if i.name in used and i.name not in buffers]


def run(model, feeds, grad_names=()):
    """Evaluates the graph on feeds ({input name: tensor}); returns (outputs
    in graph order, {initializer name: leaf tensor}) where the initializers
    named in grad_names require grad."""
    env, leaves = dict(feeds), {}
    grad_names = set(grad_names)
    for init in model.graph.initializer:
        t = torch.from_numpy(numpy_helper.to_array(init).copy())
        if init.name in grad_names:
            t.requires_grad_(True)
        leaves[init.name] = t
        env[init.name] = t
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise Unsupported("domain %s" % node.domain)
        fn = OPS.get(node.op_type)
        if fn is None:
            raise Unsupported("op %s (node %s)" % (node.op_type, node.name))
        args = [env[n] if n else None for n in node.input]
        while args and args[-1] is None:
            args.pop()
        a = attrs_of(node)
        for k in IGNORED_ATTRS.get(node.op_type, ()):
            a.pop(k, None)
        if node.op_type == "Split":
            a["__n_out"] = len(node.output)
        if node.op_type in TAKES_ATTRS:
            out = fn(*args, **a)
        else:
            if a:
                raise Unsupported("%s attributes %s" % (node.op_type, sorted(a)))
            out = fn(*args)
        if not isinstance(out, (list, tuple)):
            out = [out]
        # a Dropout's mask and BatchNormalization's extra outputs are not computed
        for name, val in zip(node.output, out):
            if name:
                env[name] = val
    return [env[o.name] for o in model.graph.output], leaves


def dump_reference(ref):
    """A reference JSON as text: one line per field and per gradient tensor,
    no indentation (the zoo's JSON is a megabyte of numbers; this keeps it
    diffable at two thirds of the indented size)."""
    c = lambda v: json.dumps(v, separators=(",", ":"))
    fields = []
    for key, val in ref.items():
        if key == "gradient":
            head = "".join(c(k) + ":" + c(v) + "," for k, v in val.items() if k != "tensors")
            tensors = ",\n ".join(c(k) + ":" + c(v) for k, v in val["tensors"].items())
            fields.append(c(key) + ":{" + head + '"tensors":{\n ' + tensors + "}}")
        else:
            fields.append(c(key) + ":" + c(val))
    return "{\n" + ",\n".join(fields) + "\n}\n"
