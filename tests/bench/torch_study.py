#!/usr/bin/python3
"""The benchmark study done the PyTorch way: the peer paracorr is timed against.

    /usr/bin/python3 tests/bench/torch_study.py --model M.onnx --threads T [--out R.json]

Runs, on the spec's dataset (the Fashion-MNIST test images, or for the
language models NPY token ids and next-token labels), exactly the study of
the bench specs (tests/bench/specs/*.json):
  1. clean loss and accuracy;
  2. the gradient g of the mean cross-entropy over all samples;
  3. model-wide L2 sweep: for each epsilon, the gradient corruption
     eps * g / ||g||_2, and `trials` random corruptions eps * z / ||z||_2 with
     z ~ N(0, I) drawn once per trial and reused at every epsilon;
  4. every parameter tensor alone: eps 0.1 along its own gradient.
It works as a competent PyTorch user would: batches of `batch`, torch.no_grad
for evaluations, weights corrupted in place and restored from a saved copy,
and steps 1 and 2 share one forward pass (the gradient pass also yields the
clean loss and accuracy; paracorr does the same).

Vision models: the ONNX file itself, evaluated by the torch-functional ONNX
interpreter of tests/reference/make_fixtures.py (the graph paracorr runs,
with the same weights), with its per-node bookkeeping done once at load and
Gemm mapped to F.linear as nn.Linear would run it.

Language models (an int64 "tokens" input; the preserve exports of
tests/reference/make_lm.py, whose initializers are named after the module's
parameters): not the interpreter, which would run the LSTM step by step in
Python and so be an unfair peer, but the module itself, make_lm.LSTMLM
(nn.Embedding, the fused nn.LSTM, nn.Linear with the tied weight) or
make_lm.GPT (LayerNorm, Linear, batched matmul attention with the causal
mask, softmax, GELU, as the file was exported from), rebuilt with the file's
weights: every parameter of the module must be found in the file with its
shape (a buffer too when the file has it: the exporter keeps one copy of the
identical causal masks), and every float initializer of the file must be a parameter,
so the parameters corrupted are exactly paracorr's. The loss is the mean
cross-entropy over the labelled tokens (label -100 is ignored, as PyTorch's
ignore_index), the accuracy that of the arg-max over the same tokens, both
over the whole dataset (paracorr's definition, docs/method.md).

Timing (wall clock, time.perf_counter): `total_s` runs from just after the
imports to the end of the study, so it includes loading the ONNX model and
the dataset (gunzip, parse, scale) but not interpreter start-up or `import
torch`; this matches the paracorr side, whose process time includes its
own model and dataset load (its start-up is a few milliseconds). `study_s`
is the study alone.

Threads: the caller sets OMP_NUM_THREADS, MKL_NUM_THREADS and
OPENBLAS_NUM_THREADS to T before Python starts (they are read when torch
loads); torch.set_num_threads(T) is called here as well.

Prints one JSON object (to stdout, or to --out).
"""

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--epsilons", default="0.01,0.05,0.1,0.2,0.5,1")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--tensor-epsilon", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inputs", default="/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")
    ap.add_argument("--labels", default="/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    ap.add_argument("--out", default=None)
    return ap.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, str(ARGS.threads))

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
    import make_fixtures as mf
    import onnx
    from onnx import numpy_helper
    import make_lm
except ImportError as e:
    sys.exit("torch_study: %s (needs Debian's python3-torch, python3-onnx, python3-numpy: "
             "make deps-reference)" % e)

# make_fixtures pins 2 threads and deterministic kernels for its fixtures;
# the benchmark wants the thread count asked for and torch's usual kernels.
torch.use_deterministic_algorithms(False)
torch.set_num_threads(ARGS.threads)


IGNORE = -100


class LanguageModel:
    """A make_lm module rebuilt with the weights of an ONNX preserve export;
    .params are its parameters under the file's initializer names."""

    def __init__(self, path):
        mp = onnx.load(path)
        init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in mp.graph.initializer}
        if "lstm.weight_ih_l0" in init:
            cls, emb = make_lm.LSTMLM, "emb.weight"
        elif "wte.weight" in init:
            cls, emb = make_lm.GPT, "wte.weight"
        else:
            sys.exit("torch_study: %s is not one of tests/reference/make_lm.py's models" % path)
        self.model = cls(int(init[emb].shape[0]))
        state = self.model.state_dict()
        params = {n for n, t in self.model.state_dict(keep_vars=True).items() if isinstance(t, torch.nn.Parameter)}
        for key, t in state.items():
            # the tied head is the embedding's weight, one initializer
            src = emb if key == "head.weight" else key
            if src not in init and key not in params:
                continue  # a buffer the exporter shared (the causal mask): the module's own
            if src not in init or tuple(init[src].shape) != tuple(t.shape):
                sys.exit("torch_study: %s: module tensor %s %s is not in the file" % (path, key, tuple(t.shape)))
            state[key] = init[src].to(t.dtype)
        self.model.load_state_dict(state)
        self.model.eval()
        self.params = dict(self.model.named_parameters())
        floats = sorted(n for n, t in init.items() if t.is_floating_point())
        if floats != sorted(self.params):
            sys.exit("torch_study: %s: float initializers %s are not the module's parameters %s"
                     % (path, floats, sorted(self.params)))

    def output_kind(self):
        return "logits"

    def run(self, x):
        return self.model(x)


def load_model(path):
    if path.endswith(".gz"):
        sys.exit("torch_study: give the decompressed model (run_bench.py writes it)")
    graph = onnx.load(path).graph
    if graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64:
        return LanguageModel(path)
    return StudyInterpreter(path)


def load_dataset(inputs, labels, limit):
    """(inputs, labels, count): count is the samples, or the labelled tokens."""
    if inputs.endswith(".npy"):
        xs = torch.from_numpy(np.ascontiguousarray(np.load(inputs)[:limit].astype(np.int64)))
        ys = torch.from_numpy(np.ascontiguousarray(np.load(labels)[:limit].astype(np.int64)))
        if xs.dim() != 2 or tuple(xs.shape) != tuple(ys.shape):
            sys.exit("torch_study: token inputs %s and labels %s must both be [N, T]"
                     % (tuple(xs.shape), tuple(ys.shape)))
        return xs, ys, int((ys != IGNORE).sum())
    images = mf.read_idx(inputs)[:limit]
    lab = mf.read_idx(labels)[:limit]
    xs = torch.from_numpy(np.ascontiguousarray(mf.to_float(images)))
    return xs, torch.from_numpy(lab.astype(np.int64)), int(xs.shape[0])


class StudyInterpreter(mf.Interpreter):
    """The reference interpreter with node dispatch and attributes resolved
    once, Gemm as F.linear, and a Dropout without a mask allocation."""

    def __init__(self, path):
        super().__init__(path)
        self.steps = []
        for node in self.model.graph.node:
            fn = getattr(self, "op_" + node.op_type, None)
            if fn is None or node.domain not in ("", "ai.onnx"):
                raise mf.OnnxError("%s: node %s (%s) not supported" % (path, node.name, node.op_type))
            self.steps.append((fn, node, list(node.input), list(node.output), mf.attrs_of(node)))
        self.out_name = "logits" if "logits" in self.output_names else self.output_names[0]

    def run(self, x):
        env = dict(self.init)
        env[self.input_name] = x
        for fn, node, inputs, outputs, a in self.steps:
            outs = fn(node, [env[i] if i else None for i in inputs], a)
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for name, val in zip(outputs, outs):
                if name:
                    env[name] = val
        return env[self.out_name]

    def op_Gemm(self, node, ins, a):
        if (a.get("transB", 0) and not a.get("transA", 0) and a.get("alpha", 1.0) == 1.0
                and a.get("beta", 1.0) == 1.0 and ins[0].dim() == 2):
            return F.linear(ins[0], ins[1], ins[2] if len(ins) > 2 else None)
        return super().op_Gemm(node, ins, a)

    def op_Dropout(self, node, ins, a):
        return [ins[0]] + [None] * (len(node.output) - 1)


def loss_sum(out, y, kind):
    if out.dim() == 3:  # [N, T, V] logits, [N, T] labels
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), ignore_index=IGNORE,
                               reduction="sum")
    if kind == "logits":
        return F.cross_entropy(out, y, reduction="sum")
    picked = out.gather(1, y[:, None])[:, 0]
    return -picked.sum() if kind == "logprobs" else -torch.log(picked).sum()


def n_correct(out, y):
    if out.dim() == 3:
        return ((out.argmax(2) == y) & (y != IGNORE)).sum().item()
    return (out.argmax(1) == y).sum().item()


def evaluate(it, xs, ys, count, kind, batch):
    """Mean loss and accuracy of the model's current weights."""
    n = xs.shape[0]
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, n, batch):
            out = it.run(xs[i:i + batch])
            yb = ys[i:i + batch]
            total += loss_sum(out, yb, kind).item()
            correct += n_correct(out, yb)
    return total / count, correct / count


def clean_and_gradient(it, xs, ys, count, kind, batch):
    """One pass: clean loss and accuracy, and the gradient of the mean loss."""
    n = xs.shape[0]
    for p in it.params.values():
        p.grad = None
    total, correct = 0.0, 0
    for i in range(0, n, batch):
        out = it.run(xs[i:i + batch])
        yb = ys[i:i + batch]
        loss = loss_sum(out, yb, kind)
        (loss / count).backward()
        total += loss.item()
        correct += n_correct(out.detach(), yb)
    grads = {}
    for name, p in it.params.items():
        grads[name] = p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
        p.grad = None
    return total / count, correct / count, grads


def l2(tensors):
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in tensors))


def set_weights(it, saved, direction, scale):
    """w = saved + scale * direction on the tensors direction names."""
    with torch.no_grad():
        for name, d in direction.items():
            it.params[name].copy_(saved[name] + scale * d)


def restore(it, saved, names):
    with torch.no_grad():
        for name in names:
            it.params[name].copy_(saved[name])


def mean_std(v):
    m = sum(v) / len(v)
    return m, math.sqrt(sum((x - m) ** 2 for x in v) / len(v))


def main():
    epsilons = [float(e) for e in ARGS.epsilons.split(",")]
    t0 = time.perf_counter()

    it = load_model(ARGS.model)
    kind = it.output_kind()
    xs, ys, count = load_dataset(ARGS.inputs, ARGS.labels, ARGS.limit)
    t_loaded = time.perf_counter()

    clean_loss, clean_acc, grads = clean_and_gradient(it, xs, ys, count, kind, ARGS.batch)
    saved = {name: p.detach().clone() for name, p in it.params.items()}
    names = list(it.params)
    passes = 1

    # 3. the model-wide L2 sweep
    gnorm = l2(grads.values())
    model_rows = []
    for eps in epsilons:
        row = {"epsilon": eps, "first_order": eps * gnorm}
        if gnorm > 0:
            set_weights(it, saved, grads, eps / gnorm)
            row["loss"], row["accuracy"] = evaluate(it, xs, ys, count, kind, ARGS.batch)
            passes += 1
        model_rows.append(row)
    restore(it, saved, names)
    gen = torch.Generator().manual_seed(ARGS.seed)
    rand = {eps: [] for eps in epsilons}
    for _ in range(ARGS.trials):
        z = {name: torch.randn(p.shape, generator=gen) for name, p in it.params.items()}
        znorm = l2(z.values())
        for eps in epsilons:
            set_weights(it, saved, z, eps / znorm)
            rand[eps].append(evaluate(it, xs, ys, count, kind, ARGS.batch))
            passes += 1
    restore(it, saved, names)
    for row in model_rows:
        r = rand[row["epsilon"]]
        if r:
            row["random_loss_mean"], row["random_loss_std"] = mean_std([x[0] for x in r])
            row["random_accuracy_mean"], row["random_accuracy_std"] = mean_std([x[1] for x in r])

    # 4. each tensor alone along its own gradient
    eps = ARGS.tensor_epsilon
    tensor_rows = []
    for name in names:
        gt = grads[name]
        n = l2([gt])
        row = {"tensor": name, "epsilon": eps, "first_order": eps * n}
        if n > 0:
            set_weights(it, saved, {name: gt}, eps / n)
            row["loss"], row["accuracy"] = evaluate(it, xs, ys, count, kind, ARGS.batch)
            restore(it, saved, [name])
            passes += 1
        tensor_rows.append(row)
    t_end = time.perf_counter()

    for name in names:
        if not torch.equal(it.params[name].detach(), saved[name]):
            sys.exit("torch_study: %s not restored" % name)

    result = {
        "model": os.path.basename(ARGS.model),
        "threads": ARGS.threads,
        "torch": torch.__version__,
        "batch": ARGS.batch,
        "samples": int(xs.shape[0]),
        "tokens": count if xs.dtype == torch.int64 else None,
        "output": kind,
        "timing": {
            "total_s": t_end - t0,
            "load_s": t_loaded - t0,
            "study_s": t_end - t_loaded,
            "evaluation_passes": passes,
            "measured": "wall clock from after the imports: ONNX and dataset load + study; "
                        "interpreter start-up and import excluded",
        },
        "clean": {"loss": clean_loss, "accuracy": clean_acc},
        "gradient": {"l2": gnorm, "tensors": {name: l2([grads[name]]) for name in names}},
        "model_rows": model_rows,
        "tensor_rows": tensor_rows,
    }
    text = json.dumps(result, indent=1)
    if ARGS.out:
        with open(ARGS.out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
