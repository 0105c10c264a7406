#!/usr/bin/python3
"""Reference values for tests/test_ops_index.c (Gather, Slice, Split, Expand,
Tile, ScatterND), computed with numpy, whose indexing ONNX follows:
x[a:b:c] for Slice, np.take for Gather, np.split, x * np.ones(shape) for
Expand (the ONNX definition), np.tile, and slab assignment for ScatterND.

The input is the tests' ramp, x.flat[i] = 0.25 * i - 1. The script prints C
initialisers that are pasted into the test file:
    /usr/bin/python3 tests/reference/make_index_reference.py
"""
import numpy as np

IMAX = np.iinfo(np.int64).max
IMIN = np.iinfo(np.int64).min


def ramp(*shape):
    n = int(np.prod(shape))
    return (0.25 * np.arange(n, dtype=np.float64) - 1.0).astype(np.float32).reshape(shape)


def lit(name, a):
    a = np.asarray(a)
    flat = ", ".join(("%.9g" % v) if a.dtype.kind == "f" else str(int(v)) for v in a.ravel())
    print("/* %s: shape %s */" % (name, list(a.shape)))
    print("static const %s %s[%d] = {%s};" % ("float" if a.dtype.kind == "f" else "int64_t", name,
                                             max(a.size, 1), flat if a.size else "0"))


def onnx_slice(x, starts, ends, axes=None, steps=None):
    """Slice as ONNX specifies it, through Python slices (numpy clamps the same way)."""
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    sl = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        sl[a] = slice(int(s), int(e), int(st))
    return x[tuple(sl)]


x = ramp(2, 5, 6)
# Slice cases: (name, starts, ends, axes, steps)
SLICES = [
    ("sl_tail", [1], [IMAX], [2], None),
    ("sl_neg", [-2], [-1], [1], None),
    ("sl_rev", [-1], [IMIN], [2], [-1]),
    ("sl_rev2", [4], [0], [1], [-2]),
    ("sl_past", [10], [20], [2], None),
    ("sl_under", [-100], [3], [2], None),
    ("sl_over_rev", [100], [-100], [-1], [-3]),
    ("sl_multi", [0, 1, 2], [IMAX, 4, 6], None, [1, 2, 2]),
    ("sl_bigstep", [0], [IMAX], [-1], [IMAX]),
    ("sl_minstep", [-1], [IMIN], [-1], [IMIN]),
    ("sl_rev_end", [2], [-10], [2], [-1]),
    ("sl_empty", [3], [3], [1], None),
    ("sl_rev_empty", [1], [3], [1], [-1]),
    ("sl_minstart", [IMIN], [IMAX], [1], [2]),
]
for name, s, e, a, st in SLICES:
    if a is None:
        a = list(range(len(s)))
    lit(name, onnx_slice(x, s, e, a, st))

# int64 slice, reversed
k = np.arange(10, 20, dtype=np.int64).reshape(2, 5)
lit("sl_int", onnx_slice(k, [-1, 3], [IMIN, 0], [0, 1], [-1, -1]))

# Gather: axis 1 with 2-D indices (repeats and negatives), axis -1
lit("ga_ax1", np.take(x, np.array([[2, -3], [0, 2]]), axis=1))
lit("ga_last", np.take(x, np.array([5, 0, -1]), axis=2))

# Split along axis 2 in [2, 0, 4] and equal parts along axis 1 of ramp(2, 6, 2)
xs = ramp(2, 4, 6)
parts = np.split(xs, [2, 2], axis=2)
lit("sp_a", parts[0])
lit("sp_c", parts[2])
xe = ramp(2, 6, 2)
for i, p in enumerate(np.split(xe, 3, axis=1)):
    lit("sp_eq%d" % i, p)

# Expand: ramp(2, 1, 3) to [1, 4, 1] and to [2, 1, 1, 1]
xx = ramp(2, 1, 3)
lit("ex_mid", xx * np.ones([1, 4, 1], dtype=np.float32))
lit("ex_lead", xx * np.ones([2, 1, 1, 1], dtype=np.float32))

# Tile: ramp(2, 2, 3) by [1, 2, 3]
lit("ti", np.tile(ramp(2, 2, 3), [1, 2, 3]))

# ScatterND on ramp(2, 4, 3): k = 2 with a repeated index (the last wins), k = 3
xd = ramp(2, 4, 3)
upd = np.array([[10, 11, 12], [20, 21, 22], [30, 31, 32]], dtype=np.float32)
out = xd.copy()
for idx, u in zip([[0, 1], [1, -1], [0, 1]], upd):
    out[tuple(idx)] = u
lit("sc_k2", out)
out = xd.copy()
for idx, u in zip([[1, 2, 0], [0, 0, -1]], [7.0, 8.0]):
    out[tuple(idx)] = u
lit("sc_k3", out)

# int64 values moved at run time (ops_index_int64_runtime_moves): token ids
# through views, Transpose, Concat, Slice, Split, Expand, Tile and ScatterND
ids = np.array([[0, 1, 2], [3, 4, 5]], dtype=np.int64)
u = ids[:, None, :]                       # Unsqueeze axes [1]
tr = np.transpose(u, (2, 0, 1))           # [3, 2, 1]
sq = tr[:, :, 0]                          # Squeeze axes [2]
rs = sq.reshape(2, 3)
cat = np.concatenate([rs, ids, np.array([[6], [7]])], axis=1)
lit("mv_rs", rs)
lit("mv_cat", cat)
sl = cat[:, ::-2]
lit("mv_sl", sl)
p3, p4 = np.split(cat, [3], axis=1)
lit("mv_p4", p4)
lit("mv_ex", p3 * np.ones([2, 2, 3], dtype=np.int64))
ti = np.tile(sl, [1, 2])
sc = ti.copy()
sc[0, 7] = 8
sc[1, 0] = 9
lit("mv_sc", sc)
